#!/usr/bin/env bash
# The HTTP/1.1 front: keep-alive (two URLs on one connection), pipelining
# (three requests in one write, three responses in order), and request
# smuggling refused: Content-Length with Transfer-Encoding -> 400 and close,
# two different Content-Lengths -> 400 and close.
source "$(dirname "$0")/lib.sh"
start_pair

# Keep-alive: curl with two URLs reuses the connection.
curl -sv --max-time 20 -o "$W/k1" -w '%{http_code} %{num_connects}\n' "$(url /data.json)" \
    -o "$W/k2" "$(url /notes.txt)" >"$W/keep.out" 2>"$W/keep.err"
expect_eq "keep-alive: two 200s, the second without a new connect" $'200 1\n200 0' "$(cat "$W/keep.out")"
expect_true "curl says it re-used the connection" grep -q 'Re-using existing connection' "$W/keep.err"
expect_same_file "keep-alive: first body" "$TT_MEDIA/data.json" "$W/k1"
expect_same_file "keep-alive: second body" "$TT_MEDIA/notes.txt" "$W/k2"

# Pipelining: three requests in one write.
{
    printf 'GET /data.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
    printf 'GET /no-such-file HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
    printf 'GET /notes.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
} >"$W/pipe.req"
$RAW req 127.0.0.1 "$HTTP_PORT" --idle 5 <"$W/pipe.req" >"$W/pipe.out"
expect_eq "pipelining: three responses" 3 "$(count_lines "$W/pipe.out" '^RESPONSE')"
expect_eq "pipelining: statuses in order" "STATUS 200,STATUS 404,STATUS 200" "$(grep '^STATUS' "$W/pipe.out" | paste -sd,)"
expect_eq "pipelining: first body is data.json" "BODY $(stat -c %s "$TT_MEDIA/data.json") $(sha_of "$TT_MEDIA/data.json")" "$(grep '^BODY' "$W/pipe.out" | sed -n 1p)"
expect_eq "pipelining: third body is notes.txt" "BODY $(stat -c %s "$TT_MEDIA/notes.txt") $(sha_of "$TT_MEDIA/notes.txt")" "$(grep '^BODY' "$W/pipe.out" | sed -n 3p)"
expect_eq "pipelining: closed after Connection: close" "END eof" "$(tail -1 "$W/pipe.out")"
expect_eq "pipelining: nothing extra" 0 "$(count_lines "$W/pipe.out" '^TRAILING')"

# Smuggling: CL + TE.  The bytes after the head would be a second request to
# a proxy that trusted the wrong length: it must never be answered.
printf 'POST /data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' \
    | $RAW req 127.0.0.1 "$HTTP_PORT" --idle 5 >"$W/smug1.out"
expect_eq "Content-Length + Transfer-Encoding -> 400" "STATUS 400" "$(grep '^STATUS' "$W/smug1.out" | head -1)"
expect_eq "... and only that one response" 1 "$(count_lines "$W/smug1.out" '^RESPONSE')"
expect_eq "... and the connection is closed" "END eof" "$(tail -1 "$W/smug1.out")"

printf 'GET /data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello' \
    | $RAW req 127.0.0.1 "$HTTP_PORT" --idle 5 >"$W/smug2.out"
expect_eq "two different Content-Lengths -> 400" "STATUS 400" "$(grep '^STATUS' "$W/smug2.out" | head -1)"
expect_eq "... and the connection is closed" "END eof" "$(tail -1 "$W/smug2.out")"

printf 'GET /data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n' \
    | $RAW req 127.0.0.1 "$HTTP_PORT" --idle 5 >"$W/smug3.out"
expect_eq "Transfer-Encoding not ending in chunked -> 400" "STATUS 400" "$(grep '^STATUS' "$W/smug3.out" | head -1)"

printf 'GET /data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' \
    | $RAW req 127.0.0.1 "$HTTP_PORT" --idle 5 >"$W/len.out"
note "a GET with a 1-byte body then a request: $(grep '^STATUS' "$W/len.out" | paste -sd,)"
# ("ET" is a well-formed method token p does not know: 501, RFC 9110 §9.1.)
if grep -q '^STATUS 400' "$W/len.out" || ! grep -q '^RESPONSE 2' "$W/len.out" || grep -Eqx 'STATUS (400|501)' <<<"$(grep '^STATUS' "$W/len.out" | sed -n 2p)"; then
    good "the byte counted as body was not taken as the start of a request line that succeeds"
else
    # The second "request" starts with "ET /notes.txt": it must not be served as a GET.
    bad "a request line cut by Content-Length was answered: $(grep '^STATUS' "$W/len.out" | paste -sd,)"
fi

# Obsolete line folding and a space before the colon are refused (RFC 9112 5.1, 5.2).
printf 'GET /data.json HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n' | $RAW req 127.0.0.1 "$HTTP_PORT" --idle 5 >"$W/ws.out"
expect_eq "whitespace before the colon -> 400" "STATUS 400" "$(grep '^STATUS' "$W/ws.out" | head -1)"

# After all that p still serves.
fetch /data.json
expect_eq "p still serves" 200 "$CODE"
finish
