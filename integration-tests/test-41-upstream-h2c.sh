#!/usr/bin/env bash
# c --upstream h2c://HOST:PORT: tunnel streams forwarded to an HTTP/2 app
# (prior knowledge, like a gRPC server; upstream_h2app.js on node's http2),
# checked through p's h2c front and HTTP/1.1 front: the body, the trailers
# (grpc-status) arriving at an HTTP/2 client as trailers, a 5 MiB echo both
# ways with the app's sha256 trailer, many streams on one app connection,
# the app's RST_STREAM passed to p with its code (mid-body: the client sees
# the reset), 16 MiB to a client with a 64 KiB window, the client's
# cancel reaching the app as CANCEL, the app gone (502 before a head,
# RST_STREAM INTERNAL_ERROR mid-body) and back (c reconnects).
source "$(dirname "$0")/lib.sh"

command -v node >/dev/null || die "node is missing (tools/deps.sh installs it)"
H2="curl -s --http2-prior-knowledge --max-time 30"

start_h2app() { # LABEL [PORT] -> APP_PORT
    rm -f "$W/$1.port"
    node "$TT_HERE/upstream_h2app.js" "$W/$1.port" "${2:-0}" 2>>"$W/$1.log" &
    track "$!" "$1"
    wait_until 100 0.1 test -s "$W/$1.port" || die "the h2 app ($1) did not start"
    APP_PORT=$(cat "$W/$1.port")
}

pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
start_h2app app
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
    --fingerprint "$TT_FPR" --upstream "h2c://127.0.0.1:$APP_PORT" >>"$W/c.out" 2>>"$W/c.log" &
track "$!" c
wait_c_up c || die "c did not log 'tunnel up'"
wait_until 100 0.1 is_status 200 "$(url /hello)" || die "GET /hello through p did not answer 200"

# --- the body, over both fronts
$PY -c 'import sys; sys.stdout.buffer.write(b"hello h2\n" * 1000)' >"$W/hello.want"
code=$($H2 -o "$W/hello.h2" -w '%{http_code} %{http_version}' "$(url /hello)")
expect_eq "GET /hello over h2c: status and version" "200 2" "$code"
expect_same_file "the app's body over h2c" "$W/hello.want" "$W/hello.h2"
OUT=$W/hello.h1 fetch /hello
expect_same_file "the app's body over HTTP/1.1" "$W/hello.want" "$W/hello.h1"
expect_eq "the app's content-type" "application/grpc" "$(header_of "$W/hdrs" content-type)"

# --- trailers: grpc-status after the DATA, in a HEADERS frame that ends the stream
nghttp -v --no-dep --timeout=10 -H 'te: trailers' "$(url /hello)" >"$W/nghttp.txt" 2>&1
after_data=$(awk '/recv DATA/ { d = 1 } d' "$W/nghttp.txt")
expect_match "grpc-status arrives as a trailer" "recv \(stream_id=1\) grpc-status: 0" "$after_data"
expect_match "grpc-message too" "grpc-message: ok" "$after_data"
expect_match "the trailers end the stream" "recv HEADERS frame <[^>]*flags=0x05" "$after_data"
expect_true "te: trailers reached the app" log_has "$W/app.log" "GET /hello te=trailers"

# --- a 5 MiB echo: the body back, the app's sha256 as a trailer
head -c $((5 * 1024 * 1024)) /dev/urandom >"$W/post.bin"
want=$(sha_of "$W/post.bin")
code=$($H2 --data-binary "@$W/post.bin" -o "$W/echo.h2" -w '%{http_code}' "$(url /echo)")
expect_eq "POST 5 MiB /echo over h2c: 200" 200 "$code"
expect_same_file "the echo over h2c equals what was posted" "$W/post.bin" "$W/echo.h2"
OUT=$W/echo.h1 fetch /echo --data-binary "@$W/post.bin"
expect_same_file "the echo over HTTP/1.1 equals what was posted" "$W/post.bin" "$W/echo.h1"
nghttp -v --no-dep --timeout=30 -d "$W/post.bin" "$(url /echo)" 2>&1 | grep -a 'recv (stream_id=1) x-body-sha256' >"$W/echo.trailer"
expect_match "the app's sha256 of the upload arrives as a trailer" "x-body-sha256: $want" "$(cat "$W/echo.trailer")"

# --- a client with a small window (nghttp -w 16: 64 KiB): 16 MiB from the
# app pass through p's and c's windows, c giving the app's window back as p
# takes the bytes.  Those WINDOW_UPDATEs once waited in the app
# connection's output for c's next PING to the app (15 s): 45 s here.
got=$(nghttp -w 16 --no-dep --timeout=10 "$(url /big)" 2>/dev/null | wc -c)
expect_eq "16 MiB to a client with a 64 KiB window, within a 10 s deadline" $((16 << 20)) "$got"

# --- many streams share the one app connection
nghttp -n --no-dep --timeout=30 -m 20 "$(url /hello)" >/dev/null 2>&1
expect_eq "20 concurrent streams: still one app connection" 1 "$(count_lines "$W/app.log" '^h2app: session')"

# --- resets both ways
code=$($H2 -o /dev/null -w '%{http_code}' "$(url /reset)")
# c resets p's stream with the app's code; p, with no head yet, answers 502.
expect_eq "the app resets before answering: the client gets 502 from p" 502 "$code"
expect_true "c passed the app's code on (ENHANCE_YOUR_CALM)" log_has "$W/c.log" "the app reset its stream \(ENHANCE_YOUR_CALM\)"
$H2 -o "$W/mid.out" "$(url /reset-mid)"
rc=$?
expect_ne "a body the app reset mid-way is not a clean end (curl fails)" 0 "$rc"
expect_eq "... after the first 64 KiB" 65536 "$(stat -c %s "$W/mid.out" 2>/dev/null || echo 0)"

$H2 -o "$W/slow.out" "$(url /slow)" &
slow=$!
track "$slow" curl-slow
wait_until 100 0.1 test -s "$W/slow.out" || bad "no bytes of /slow within 10 s"
kill -KILL "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
if wait_until 100 0.1 log_has "$W/app.log" "slow stream closed rstCode=8"; then
    good "the client's cancel reaches the app as RST_STREAM(CANCEL)"
else
    bad "the app did not see CANCEL within 10 s: $(grep 'slow stream' "$W/app.log")"
fi
code=$($H2 -o /dev/null -w '%{http_code}' "$(url /hello)")
expect_eq "c serves after the resets" 200 "$code"

# --- the app dies mid-body, then is gone, then back
$H2 -o "$W/slow2.out" "$(url /slow)" &
slow=$!
track "$slow" curl-slow2
wait_until 100 0.1 test -s "$W/slow2.out" || bad "no bytes of /slow within 10 s"
port=$APP_PORT
stop_one app
wait "$slow"
rc=$?
expect_true "the app gone mid-body: the client sees an error, not a clean end (curl rc $rc)" test "$rc" != 0 -a "$rc" != 28
code=$($H2 -o "$W/down.body" -w '%{http_code}' "$(url /hello)")
expect_eq "the app down: 502" 502 "$code"
expect_match "... with a body that says so" "refused the connection" "$(cat "$W/down.body")"
start_h2app app2 "$port"
if wait_until 100 0.1 is_status 200 "$(url /hello)"; then
    good "the app back on its port: c reconnects and serves"
else
    bad "c did not serve the restarted app within 10 s"
fi
code=$($H2 -o "$W/hello.again" -w '%{http_code}' "$(url /hello)")
expect_same_file "the body after the restart" "$W/hello.want" "$W/hello.again"
finish
