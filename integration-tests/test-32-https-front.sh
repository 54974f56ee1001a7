#!/usr/bin/env bash
# runner-timeout: 240 (a 25 s handshake deadline, h2conf and Chromium add up to
# about 80 s on a quiet machine; a loaded one once took it past 120 s)
# p's HTTPS client front (--https-listen): h2 or HTTP/1.1 chosen by ALPN.
# With the tunnel identity (one warn line says so): curl --http2 (version 2)
# and --http1.1 (1.1) fetch whole media files (sha256) and ranges; a 5 MiB
# POST goes through both to an upstream app, which sees x-forwarded-proto
# https and forwarded ...;proto=https (the plaintext port still says http);
# 200 pipelined HTTP/1.1 requests in one TLS write; Node's http2 client over
# TLS; the h2 conformance cases (h2conf.py --tls); a client that stalls
# mid-handshake does not hold up another and is closed by p; plaintext HTTP
# sent to the HTTPS port is closed cleanly; headless Chromium loads the
# listing over h2 when it is installed.  Then p with --listen off and its
# own certificate chain (--https-cert/--https-key): verified by curl against
# the CA, no plaintext listener; bad flag values exit 2 with one line.
source "$(dirname "$0")/lib.sh"

APP="$PY $TT_HERE/upstream_app.py"
read -r HTTP_PORT TUN_PORT HTTPS_PORT < <(free_ports 3)
[ -n "${HTTPS_PORT:-}" ] || die "no free ports"
surl() { echo "https://127.0.0.1:$HTTPS_PORT$1"; }
HS="curl -sk --max-time 60"

start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media \
    --path-prefix /t/ --https-listen "127.0.0.1:$HTTPS_PORT"
wait_until 50 0.1 log_has "$W/p.log" "listening for https clients on 127\.0\.0\.1:$HTTPS_PORT" ||
    die "p did not log 'listening for https clients on 127.0.0.1:$HTTPS_PORT'"
good "p logs 'listening for https clients on 127.0.0.1:$HTTPS_PORT'"
expect_eq "one warn line: the https front uses the tunnel certificate" 1 \
    "$(count_lines "$W/p.log" ' warn the https front uses the tunnel certificate .*--https-cert')"
start_c c media "$TT_MEDIA"
wait_c_up c || die "c did not come up"
rm -f "$W/app.port"
$APP "$W/app.port" 2>>"$W/app.log" &
track "$!" app
wait_until 100 0.1 test -s "$W/app.port" || die "the upstream app did not start"
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name other --token-file "$TT_SHARED/token.other" \
    --fingerprint "$TT_FPR" --upstream "http://127.0.0.1:$(cat "$W/app.port")" \
    >>"$W/c2.out" 2>>"$W/c2.log" &
track "$!" c2
wait_c_up c2 || die "c2 (--upstream) did not come up"
wait_until 100 0.1 is_status 200 -k "$(surl /)" || die "GET / over https did not answer 200 (saw $(status_of -k "$(surl /)"))"

# --- whole files and ranges over h2 and HTTP/1.1
clip=$(q "my clip.mp4")
out=$($HS --http2 -o "$W/clip.h2" -w '%{http_code} %{http_version}' "$(surl "/$clip")")
expect_eq "GET 'my clip.mp4' over https, curl --http2: status and version" "200 2" "$out"
expect_same_file "the video over h2 (TLS) equals the file" "$TT_MEDIA/my clip.mp4" "$W/clip.h2"
out=$($HS --http1.1 -o "$W/clip.h1" -w '%{http_code} %{http_version}' "$(surl "/$clip")")
expect_eq "GET 'my clip.mp4' over https, curl --http1.1: status and version" "200 1.1" "$out"
expect_same_file "the video over HTTP/1.1 (TLS) equals the file" "$TT_MEDIA/my clip.mp4" "$W/clip.h1"
for v in 2 1.1; do
    out=$($HS "--http$v" -o "$W/big.$v" -w '%{http_code}' "$(surl /big-random.bin)")
    expect_eq "GET big-random.bin (80 MiB) over https --http$v" 200 "$out"
    expect_same_file "big-random.bin over https --http$v" "$TT_MEDIA/big-random.bin" "$W/big.$v"
    out=$($HS "--http$v" -r 1000-1999 -D "$W/r.hdrs" -o "$W/range.$v" -w '%{http_code}' "$(surl /tone.mp3)")
    expect_eq "Range 1000-1999 over https --http$v -> 206" 206 "$out"
    dd if="$TT_MEDIA/tone.mp3" of="$W/range.want" bs=1 skip=1000 count=1000 status=none
    expect_same_file "the range's bytes (--http$v)" "$W/range.want" "$W/range.$v"
    expect_eq "Content-Range (--http$v)" "bytes 1000-1999/$(stat -c %s "$TT_MEDIA/tone.mp3")" "$(header_of "$W/r.hdrs" content-range)"
done
expect_true "access lines of h2 over TLS say proto=h2 tls=1" \
    log_has "$W/p.log" 'access client=127\.0\.0\.1:[0-9]+ method=GET path=/my%20clip\.mp4 status=200 .* proto=h2 tls=1'
expect_true "access lines of HTTP/1.1 over TLS say tls=1" \
    log_has "$W/p.log" 'access client=127\.0\.0\.1:[0-9]+ method=GET path=/my%20clip\.mp4 status=200 .*origin=media tls=1 end=ok$'

# --- the origin sees https; request bodies through TLS
for v in 2 1.1; do
    out=$($HS "--http$v" -o "$W/hdrs.$v" -w '%{http_code}' "$(surl /t/other/headers)")
    expect_eq "GET /t/other/headers over https --http$v" 200 "$out"
    expect_match "the app sees x-forwarded-proto: https (--http$v)" "x-forwarded-proto: https" "$(cat "$W/hdrs.$v")"
    expect_match "the app sees forwarded: ...;proto=https (--http$v)" "forwarded: for=127\.0\.0\.1;host=\"127\.0\.0\.1:$HTTPS_PORT\";proto=https" "$(cat "$W/hdrs.$v")"
done
out=$(curl -s --max-time 10 "$(url /t/other/headers)")
expect_match "the plaintext port still says x-forwarded-proto: http" "x-forwarded-proto: http$" "$(echo "$out" | grep x-forwarded-proto)"
head -c $((5 * 1024 * 1024 + 3)) /dev/urandom >"$W/post.bin"
for v in 2 1.1; do
    out=$($HS "--http$v" --data-binary "@$W/post.bin" -H "Content-Type: application/octet-stream" \
        -D "$W/echo.hdrs" -o "$W/echo.$v" -w '%{http_code}' "$(surl /t/other/echo)")
    expect_eq "POST 5 MiB over https --http$v -> 200" 200 "$out"
    expect_same_file "the echo over https --http$v equals the upload" "$W/post.bin" "$W/echo.$v"
done

# --- 200 pipelined requests in one TLS write (bytes buffered in OpenSSL)
out=$($PY - "$HTTPS_PORT" <<'EOF'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20))
one = b"GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n"
s.sendall(one * 199 + b"GET /notes.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    try:
        c = s.recv(65536)
    except ssl.SSLEOFError:
        print("no-close-notify", end=" ")
        break
    if not c:
        break
    data += c
print(data.count(b"HTTP/1.1 200 "))
EOF
)
expect_eq "200 pipelined requests over TLS: 200 answers, then close_notify" 200 "$out"

# --- Node's http2 client over TLS (certificate not checked)
out=$(NODE_TLS_REJECT_UNAUTHORIZED=0 node "$TT_HERE/h2get.js" "$(surl /tone.mp3)" "$W/node.mp3" 2>"$W/node.err")
expect_match "node http2 over TLS: status 200" "status	200" "$out"
expect_same_file "node http2 over TLS: tone.mp3" "$TT_MEDIA/tone.mp3" "$W/node.mp3"
out=$(NODE_TLS_REJECT_UNAUTHORIZED=0 node "$TT_HERE/h2get.js" "$(surl "/$clip")" "$W/node.range" "bytes=100-199" 2>>"$W/node.err")
expect_match "node http2 over TLS: a range -> 206" "status	206" "$out"
expect_eq "node http2 over TLS: 100 bytes" 100 "$(stat -c %s "$W/node.range")"

# --- the h2 conformance cases over TLS
$PY "$TT_HERE/h2conf.py" --tls --media "$TT_MEDIA" "$HTTPS_PORT" >"$W/h2conf.out" 2>&1
rc=$?
if [ "$rc" = 0 ]; then
    good "h2conf --tls: $(grep -E '^[0-9]+ cases:' "$W/h2conf.out")"
else
    bad "h2conf --tls failed (rc $rc), full output in $W/h2conf.out"
    grep -E '^(FAIL|Traceback)' "$W/h2conf.out" | head -20
fi

# --- a client stalled mid-handshake does not block another; p drops it
$PY - "$HTTPS_PORT" "$W/stall.res" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
# The first 11 bytes of a ClientHello (record header and part of the
# handshake header), then silence.
s.sendall(bytes.fromhex("16030100c8010000c40303"))
s.settimeout(30)
t0 = time.time()
try:
    got = s.recv(100)
    res = "closed" if got == b"" else "data"
except socket.timeout:
    res = "timeout"
except OSError:
    res = "closed"
open(sys.argv[2], "w").write("%s %.0f\n" % (res, time.time() - t0))
EOF
track "$!" staller
sleep 0.5
out=$($HS --http2 -o "$W/photo.stall" -w '%{http_code}' "$(surl /photo.jpg)")
expect_eq "another client is served while one stalls mid-handshake" 200 "$out"
expect_same_file "photo.jpg while a handshake stalls" "$TT_MEDIA/photo.jpg" "$W/photo.stall"
if wait_until 250 0.1 test -s "$W/stall.res"; then
    expect_match "p closes the stalled handshake (handshake deadline)" "^closed " "$(cat "$W/stall.res")"
else
    bad "p did not close a handshake stalled for 25 s"
fi

# --- plaintext HTTP sent to the HTTPS port: closed, p goes on
curl -s --max-time 10 -o "$W/plain.body" "http://127.0.0.1:$HTTPS_PORT/notes.txt"
rc=$?
expect_true "plaintext HTTP to the https port: curl sees no HTTP answer (exit $rc)" test "$rc" -ne 0
expect_true "p still runs" alive "$(pid_of p)"
expect_eq "https still answers afterwards" 200 "$(status_of -k --http2 "$(surl /notes.txt)")"

# --- headless Chromium over https (when installed)
CHROMIUM=${TT_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    prof=$W/chromium-profile
    mkdir -p "$prof"
    before=$(count_lines "$W/p.log" 'access .*path=/ status=200 .*proto=h2 tls=1')
    timeout -k 5 40 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --ignore-certificate-errors --user-data-dir="$prof" --dump-dom "$(surl /)" \
        >"$W/chromium.dom" 2>"$W/chromium.log"
    expect_true "Chromium renders the listing over https (sees my clip.mp4)" grep -q "my clip.mp4" "$W/chromium.dom"
    after=$(count_lines "$W/p.log" 'access .*path=/ status=200 .*proto=h2 tls=1')
    expect_true "p's access log shows Chromium's GET / over h2 with TLS" test "$after" -gt "$before"
else
    note "no $CHROMIUM: the browser case is skipped"
fi

# --- --listen off, own certificate chain (CA + leaf) with --https-cert/--https-key
ca=$W/ca
mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=tether-test-ca \
    -days 2 -keyout "$ca/ca.key" -out "$ca/ca.pem" 2>/dev/null || die "openssl (CA) failed"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$ca/leaf.key" -out "$ca/leaf.csr" 2>/dev/null || die "openssl (leaf key) failed"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$ca/ext"
openssl x509 -req -in "$ca/leaf.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 2 -extfile "$ca/ext" -out "$ca/leaf.pem" 2>/dev/null || die "openssl (leaf) failed"
cat "$ca/leaf.pem" "$ca/ca.pem" >"$ca/chain.pem"
read -r P2_HTTPS P2_TUN < <(free_ports 2)
"$TT_P" --listen off --https-listen "127.0.0.1:$P2_HTTPS" --tunnel-listen "127.0.0.1:$P2_TUN" \
    --https-cert "$ca/chain.pem" --https-key "$ca/leaf.key" --cert "$TT_CERT" --key "$TT_KEY" \
    --tokens "$TT_TOKENS" >>"$W/p2.out" 2>>"$W/p2.log" &
track "$!" p2
wait_until 100 0.1 log_has "$W/p2.log" "listening for https clients on 127\.0\.0\.1:$P2_HTTPS" ||
    die "p2 (--listen off) did not log its https listener"
expect_eq "--listen off: no 'listening for clients' line" 0 "$(count_lines "$W/p2.log" 'listening for clients on')"
expect_eq "--https-cert given: no warn line about the tunnel certificate" 0 "$(count_lines "$W/p2.log" 'uses the tunnel certificate')"
out=$(curl -s --max-time 10 --cacert "$ca/ca.pem" -o "$W/p2.body" -w '%{http_code} %{http_version}' "https://127.0.0.1:$P2_HTTPS/x")
expect_eq "curl verifies p2's chain against the CA; no origin -> 503 over h2" "503 2" "$out"
expect_match "the 503 says which name" "no origin" "$(cat "$W/p2.body")"
stop_one p2

# --- bad values: exit 2, one line that says what to do
check_bad() { # WHAT PATTERN FLAGS...
    local what=$1 pat=$2
    shift 2
    local o rc
    o=$("$TT_P" --tunnel-listen 127.0.0.1:0 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" "$@" 2>&1 </dev/null)
    rc=$?
    expect_eq "$what: exit 2" 2 "$rc"
    expect_eq "$what: one line" 1 "$(printf '%s\n' "$o" | wc -l)"
    expect_match "$what: says what to do" "$pat" "$o"
}
check_bad "--listen off alone" "add --https-listen" --listen off
check_bad "--https-cert without --https-key" "--https-cert and --https-key go together" \
    --listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --https-cert "$ca/chain.pem"
check_bad "--https-cert without --https-listen" "need --https-listen" \
    --listen 127.0.0.1:0 --https-cert "$ca/chain.pem" --https-key "$ca/leaf.key"
check_bad "--https-listen with a bad address" "^p: --https-listen: bad port" --listen 127.0.0.1:0 --https-listen 127.0.0.1:x
check_bad "--https-cert that does not exist" "^p: --https-cert/--https-key: cannot load certificate /nonexistent.pem" \
    --listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --https-cert /nonexistent.pem --https-key "$ca/leaf.key"
check_bad "--https-key that does not match" "^p: --https-cert/--https-key: .*(key values mismatch|does not match)" \
    --listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --https-cert "$ca/chain.pem" --https-key "$ca/ca.key"

alive "$(pid_of p)" || bad "p is not running any more (see $W/p.log)"
finish
