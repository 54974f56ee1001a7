#!/usr/bin/env bash
# c --upstream http://HOST:PORT: every request through p is forwarded to a
# local HTTP/1.1 app (upstream_app.py) and the answer streamed back.
# Checked through p with curl: a GET equal to the app's body, hop-by-hop
# fields dropped and x-forwarded-* passed on, a 5 MiB POST echoed (sha256)
# with Content-Length and with chunked framing, a chunked response (whole,
# and its trailers seen over p's h2c front), HEAD and 204 without a body,
# a response cut mid-body is never a clean end, keep-alive reuse (the app
# sees fewer connections than requests), a client that aborts an endless
# stream leaves c serving others and the app sees the stream end, and 502
# when the app is down.
source "$(dirname "$0")/lib.sh"

APP="$PY $TT_HERE/upstream_app.py"

start_app() { # LABEL -> APP_PORT
    rm -f "$W/$1.port"
    $APP "$W/$1.port" 2>>"$W/$1.log" &
    track "$!" "$1"
    wait_until 100 0.1 test -s "$W/$1.port" || die "the app ($1) did not start"
    APP_PORT=$(cat "$W/$1.port")
}

start_c_upstream() { # LABEL URL [flags]
    local label=$1 up=$2
    shift 2
    "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
        --fingerprint "$TT_FPR" --upstream "$up" "$@" >>"$W/$label.out" 2>>"$W/$label.log" &
    track "$!" "$label"
}

# --- the command line: exactly one of --root and --upstream
out=$("$TT_C" --proxy 127.0.0.1:1 --token t 2>&1)
rc=$?
expect_eq "neither --root nor --upstream: exit 2" 2 "$rc"
expect_match "... and says what is missing" "--root DIR, --upstream URL or --tcp HOST:PORT is required" "$out"
out=$("$TT_C" --proxy 127.0.0.1:1 --token t --root "$W" --upstream http://127.0.0.1:1 2>&1)
rc=$?
expect_eq "both: exit 2" 2 "$rc"
expect_match "... and says so" "not both" "$out"
out=$("$TT_C" --proxy 127.0.0.1:1 --token t --upstream ftp://x:1 2>&1)
expect_match "a bad URL: one line" "^c: --upstream 'ftp://x:1': want http://HOST:PORT or h2c://HOST:PORT" "$out"

pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
start_app app
start_c_upstream c "http://127.0.0.1:$APP_PORT"
wait_c_up c || die "c did not log 'tunnel up'"
wait_until 100 0.1 is_status 200 "$(url /hello)" || die "GET /hello through p did not answer 200"
expect_true "c logs what it serves" log_has "$W/c.log" "serving the app at http://127.0.0.1:$APP_PORT"

# --- GET
$PY -c 'import sys; sys.stdout.buffer.write(b"hello from the app\n" * 1000)' >"$W/hello.want"
OUT=$W/hello fetch /hello
expect_eq "GET /hello: 200" 200 "$CODE"
expect_same_file "GET /hello: the app's body" "$W/hello.want" "$W/hello"
expect_eq "the app's Content-Type" "text/plain" "$(header_of "$W/hdrs" content-type)"
expect_eq "a field the app's Connection names is dropped" "" "$(header_of "$W/hdrs" x-hop)"
expect_eq "Keep-Alive is dropped" "" "$(header_of "$W/hdrs" keep-alive)"

$PY -c 'import sys; n=3000000; b=bytes(i % 251 for i in range(251*64)); sys.stdout.buffer.write((b*(n//len(b)+1))[:n])' >"$W/bytes.want"
OUT=$W/bytes fetch "/bytes?n=3000000"
expect_same_file "GET 3 MB of pattern" "$W/bytes.want" "$W/bytes"

OUT=$W/headers fetch /headers -H "X-Custom: 42" -H "Cookie: a=1"
expect_match "the request line reached the app" "^GET /headers" "$(head -1 "$W/headers")"
expect_match "Host is the client's" "host: 127.0.0.1:$HTTP_PORT" "$(cat "$W/headers")"
expect_match "a custom field reached the app" "x-custom: 42" "$(cat "$W/headers")"
expect_match "x-forwarded-for from p reached the app" "x-forwarded-for: 127.0.0.1" "$(cat "$W/headers")"
expect_match "forwarded from p reached the app" "forwarded: for=127.0.0.1" "$(cat "$W/headers")"

# --- POST echo, 5 MiB, Content-Length and chunked
head -c $((5 * 1024 * 1024)) /dev/urandom >"$W/post.bin"
want=$(sha_of "$W/post.bin")
OUT=$W/echo fetch /echo --data-binary "@$W/post.bin" -H "Content-Type: application/octet-stream"
expect_eq "POST 5 MiB: 200" 200 "$CODE"
expect_eq "the app saw the body (sha256)" "$want" "$(header_of "$W/hdrs" x-body-sha256)"
expect_eq "... sent with Content-Length" "length" "$(header_of "$W/hdrs" x-body-framing)"
expect_same_file "the echo equals what was posted" "$W/post.bin" "$W/echo"
OUT=$W/echo2 fetch /echo --data-binary "@$W/post.bin" -H "Transfer-Encoding: chunked"
expect_eq "chunked POST 5 MiB: the app saw the body" "$want" "$(header_of "$W/hdrs" x-body-sha256)"
expect_eq "... sent chunked" "chunked" "$(header_of "$W/hdrs" x-body-framing)"
expect_same_file "the chunked echo equals what was posted" "$W/post.bin" "$W/echo2"
OUT=$W/echo3 fetch /echo -X POST
expect_eq "POST without a body: the app saw an empty one" "$(sha256sum </dev/null | cut -d' ' -f1)" "$(header_of "$W/hdrs" x-body-sha256)"

# --- a chunked response and its trailers
$PY - >"$W/chunked.want" <<'EOF'
import sys
for i in range(10):
    sys.stdout.buffer.write(("chunk %d " % i).encode() * (100 * (i + 1)))
EOF
OUT=$W/chunked fetch /chunked
expect_eq "GET /chunked: 200" 200 "$CODE"
expect_same_file "the chunked body, whole" "$W/chunked.want" "$W/chunked"
nghttp -v --no-dep --timeout=10 "$(url /chunked)" >"$W/nghttp.txt" 2>&1
want_sum=$(sha_of "$W/chunked.want")
# The trailers arrive in a HEADERS frame after the DATA (p's h2c front);
# nghttp prints a block's fields before the frame's line.
trailer_block=$(awk '/recv DATA/ { d = 1 } d' "$W/nghttp.txt")
expect_match "the chunked trailers reach an h2 client as trailers (x-checksum)" "x-checksum: $want_sum" "$trailer_block"
expect_match "... and x-done" "x-done: yes" "$trailer_block"

# --- HEAD, 204, 304
code=$(curl -s -I -D "$W/head.hdrs" -o "$W/head.body" -w '%{http_code}' --max-time 10 "$(url /hello)")
expect_eq "HEAD: 200" 200 "$code"
expect_eq "HEAD keeps the app's Content-Length" 19000 "$(header_of "$W/head.hdrs" content-length)"
expect_eq "HEAD has no body" "$(stat -c %s "$W/head.hdrs")" "$(stat -c %s "$W/head.body")"
OUT=$W/s204 fetch /status/204
expect_eq "204 from the app" 204 "$CODE"
expect_eq "204 has no body" 0 "$(stat -c %s "$W/s204")"
OUT=$W/s304 fetch /status/304
expect_eq "304 from the app" 304 "$CODE"
OUT=$W/nf fetch /nothing-here
expect_eq "404 from the app passes through" 404 "$CODE"
OUT=$W/after fetch /hello
expect_same_file "GET after HEAD/204/304 on reused connections" "$W/hello.want" "$W/after"

# --- the app dies mid-body: never a clean end
OUT=$W/die fetch /die
expect_ne "a body cut by the app is not a clean end (curl fails)" 0 "$CURL_RC"
expect_true "c logs the cut" log_has "$W/c.log" "mid-response: resetting the stream"

# --- keep-alive reuse
before=$(curl -s --max-time 10 "$(url /conns)")
for i in $(seq 1 20); do
    curl -s -o /dev/null --max-time 10 "$(url /hello)"
done
after=$(curl -s --max-time 10 "$(url /conns)")
expect_le "21 sequential requests use at most 3 new app connections" 3 "$((after - before))"

# --- a client aborts an endless stream; c keeps serving
curl -s --max-time 30 -o "$W/slow.out" "$(url /slow)" &
slow=$!
track "$slow" curl-slow
wait_until 100 0.1 test -s "$W/slow.out" || bad "no bytes of /slow within 10 s"
sleep 0.5
kill -KILL "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
if wait_until 100 0.1 log_has "$W/app.log" "/slow client went away"; then
    good "the app saw the aborted stream end (c closed that connection)"
else
    bad "the app kept streaming /slow 10 s after the client left"
fi
ok=0
for i in 1 2 3 4 5; do
    OUT=$W/again fetch /hello
    [ "$CODE" = 200 ] && cmp -s "$W/again" "$W/hello.want" && ok=$((ok + 1))
done
expect_eq "c serves after the abort" 5 "$ok"

# --- several at once: the pool grows
for i in 1 2 3 4 5 6; do
    curl -s --max-time 30 -o "$W/par.$i" "$(url /bytes?n=3000000)" &
    track "$!" "par-$i"
done
for pid in $(awk '$2 ~ /^par-/ { print $1 }' "$W/pids"); do wait "$pid"; done
ok=0
for i in 1 2 3 4 5 6; do cmp -s "$W/par.$i" "$W/bytes.want" && ok=$((ok + 1)); done
expect_eq "6 concurrent 3 MB downloads all whole" 6 "$ok"

# --- the app is down: 502
stop_one app
OUT=$W/down fetch /hello
expect_eq "app down: 502" 502 "$CODE"
expect_match "... with a plain body that says so" "refused the connection" "$(cat "$W/down")"
start_app app2
# c keeps its URL: the new app has another port, so start a c for it.
stop_one c
start_c_upstream c2 "http://127.0.0.1:$APP_PORT"
wait_c_up c2 || die "c2 did not come up"
wait_until 100 0.1 is_status 200 "$(url /hello)" || bad "a new c did not serve the new app"
good "a new app behind a new c serves"
finish
