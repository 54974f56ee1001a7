#!/usr/bin/env bash
# HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) on p's --listen port, next
# to HTTP/1.1: whole files (sha256), a range, HEAD, 404 from c, 503 for a
# name with no tunnel (path prefix and --domain), 20 concurrent streams on one
# connection (nghttp) and 100 over h2load, a PUT body through to c
# --allow-put, a client that resets its stream mid-download or vanishes
# (p keeps serving), and HTTP/1.1 still served on the same port.  Then a fake
# c (h2front.py) checks what curl cannot: trailers (gRPC's grpc-status), the
# tunnel dying mid-body (RST_STREAM INTERNAL_ERROR to the client, never a
# clean end), before the head (502), and a client reset reaching c as
# RST_STREAM CANCEL.
source "$(dirname "$0")/lib.sh"

H2="curl -s --http2-prior-knowledge --max-time 60"
start_pair "$TT_MEDIA" --path-prefix /t/ --domain example.test
putroot=$W/putroot
mkdir -p "$putroot"
start_c c2 other "$putroot" --allow-put
wait_c_up c2 || die "c2 (other, --allow-put) did not come up"

# --- whole files, range, HEAD, 404
code=$($H2 -o "$W/clip.mp4" -w '%{http_code} %{http_version}' "$(url "/$(q "my clip.mp4")")")
expect_eq "GET 'my clip.mp4' over h2c: status and version" "200 2" "$code"
expect_same_file "the video over h2c equals the file" "$TT_MEDIA/my clip.mp4" "$W/clip.mp4"
code=$($H2 -o "$W/big.bin" -w '%{http_code}' "$(url /big-random.bin)")
expect_eq "GET big-random.bin (80 MiB, many windows) over h2c" 200 "$code"
expect_same_file "big-random.bin over h2c equals the file" "$TT_MEDIA/big-random.bin" "$W/big.bin"

code=$($H2 -r 1000-1999 -D "$W/r.hdrs" -o "$W/range" -w '%{http_code}' "$(url /tone.mp3)")
expect_eq "Range 1000-1999 over h2c -> 206" 206 "$code"
dd if="$TT_MEDIA/tone.mp3" of="$W/range.want" bs=1 skip=1000 count=1000 status=none
expect_same_file "the range's bytes" "$W/range.want" "$W/range"
expect_eq "Content-Range" "bytes 1000-1999/$(stat -c %s "$TT_MEDIA/tone.mp3")" "$(header_of "$W/r.hdrs" content-range)"

code=$($H2 -I -D "$W/head.hdrs" -o "$W/head.body" -w '%{http_code}' "$(url /photo.jpg)")
expect_eq "HEAD over h2c -> 200" 200 "$code"
expect_eq "HEAD content-length is the file's size" "$(stat -c %s "$TT_MEDIA/photo.jpg")" "$(header_of "$W/head.hdrs" content-length)"
# curl -I writes the head to -o as well: nothing may follow it.
expect_eq "HEAD has no body" "$(stat -c %s "$W/head.hdrs")" "$(stat -c %s "$W/head.body")"

code=$($H2 -o /dev/null -w '%{http_code}' "$(url /no-such-file.txt)")
expect_eq "a missing file over h2c -> 404 (from c)" 404 "$code"

# --- no tunnel for the name: 503 + Retry-After, by path prefix and by :authority
code=$($H2 -D "$W/503.hdrs" -o "$W/503.body" -w '%{http_code}' "$(url /t/spare/x)")
expect_eq "/t/spare/x (no tunnel for 'spare') -> 503" 503 "$code"
expect_eq "503 has Retry-After" 5 "$(header_of "$W/503.hdrs" retry-after)"
expect_true "503 body names 'spare'" grep -q "spare" "$W/503.body"
code=$($H2 -H "Host: spare.example.test" -D "$W/503b.hdrs" -o /dev/null -w '%{http_code}' "$(url /x)")
expect_eq ":authority spare.example.test (--domain) -> 503" 503 "$code"
code=$($H2 -H "Host: other.example.test" -o /dev/null -w '%{http_code}' "$(url /)")
expect_eq ":authority other.example.test routes to c2 -> 200" 200 "$code"

# --- many streams on one connection
nghttp -n -s -m 20 -t 30 "$(url /photo.jpg)" >"$W/nghttp.out" 2>&1
n200=$(grep -cE '^ +[0-9]+ .* 200 ' "$W/nghttp.out") || true
expect_eq "nghttp -m 20: 20 concurrent streams on one connection, all 200" 20 "$n200"
h2load -n 100 -c 2 -m 20 "$(url /notes.txt)" >"$W/h2load.out" 2>&1
expect_true "h2load 100 requests, 2 connections x 20 streams: 100 succeeded" \
    grep -qE 'requests: 100 total, 100 started, 100 done, 100 succeeded' "$W/h2load.out"
expect_true "h2load: 100 2xx" grep -qE 'status codes: 100 2xx' "$W/h2load.out"

# --- a body through (PUT to c --allow-put)
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >"$W/up.bin"
code=$($H2 -X PUT --data-binary @"$W/up.bin" -o /dev/null -w '%{http_code}' "$(url /t/other/up.bin)")
expect_eq "PUT 3 MiB over h2c -> 201" 201 "$code"
expect_same_file "the file c wrote equals the upload" "$W/up.bin" "$putroot/up.bin"
code=$($H2 -o "$W/up.back" -w '%{http_code}' "$(url /t/other/up.bin)")
expect_same_file "GET returns the upload" "$W/up.bin" "$W/up.back"

# --- clients that leave: a curl killed mid-download (connection gone) ...
$H2 --limit-rate 200K -o /dev/null "$(url /big-random.bin)" &
cpid=$!
track "$cpid" curl-gone
sleep 1.5
kill -KILL "$cpid" 2>/dev/null
wait "$cpid" 2>/dev/null
if wait_until 100 0.1 log_has "$W/p.log" 'access .*path=/big-random\.bin status=200 bytes=[0-9]+ .*proto=h2' 2; then
    good "p logged the abandoned h2 download (connection gone)"
else
    bad "p did not log the abandoned h2 download within 10 s"
fi

# --- and the HTTP/1.1 front on the same port
code=$(curl -s --http1.1 --max-time 30 -o "$W/h1.mp3" -w '%{http_code} %{http_version}' "$(url /tone.mp3)")
expect_eq "HTTP/1.1 on the same port" "200 1.1" "$code"
expect_same_file "tone.mp3 over HTTP/1.1" "$TT_MEDIA/tone.mp3" "$W/h1.mp3"
expect_true "access lines of h2 requests say proto=h2" log_has "$W/p.log" 'access client=127\.0\.0\.1:[0-9]+ method=GET path=/photo\.jpg status=200 bytes=38049 dur_ms=[0-9]+ origin=media proto=h2'

# --- a client RST mid-download on a live connection, then the fake-c cases
stop_one c2
$PY "$TT_HERE/h2front.py" "$W" "$HTTP_PORT" "$TUN_PORT" client-rst trailers die-mid-body die-before-head \
    || FAILS=$((FAILS + 1))

code=$($H2 -o "$W/photo.after" -w '%{http_code}' "$(url /photo.jpg)")
expect_eq "p still serves h2c after everything" 200 "$code"
expect_same_file "photo.jpg after everything" "$TT_MEDIA/photo.jpg" "$W/photo.after"
alive "$(pid_of p)" || bad "p is not running any more (see $W/p.log)"
finish
