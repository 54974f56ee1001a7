#!/usr/bin/env bash
# p --proxy-protocol on, behind Debian's HAProxy (send-proxy-v2): the access
# log and X-Forwarded-For carry the real client's address (curl's own
# source port, not HAProxy's), on the HTTP front and the HTTPS one; a
# connection without the header is closed unanswered; a header that names
# an IPv6 client is taken as sent (a hand-made header, checked in the log).
source "$(dirname "$0")/lib.sh"
command -v haproxy >/dev/null || die "haproxy is missing: 'make deps' (tools/deps.sh) installs Debian's haproxy"

read -r HTTPS_PORT HA_HTTP HA_HTTPS < <(free_ports 3)
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media \
    --proxy-protocol on --https-listen "127.0.0.1:$HTTPS_PORT"
start_c c media "$TT_MEDIA"
wait_c_up c || die "c did not come up"

cat >"$W/haproxy.cfg" <<CFG
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http_in
    bind 127.0.0.1:$HA_HTTP
    default_backend p_http
frontend https_in
    bind 127.0.0.1:$HA_HTTPS
    default_backend p_https
backend p_http
    server p1 127.0.0.1:$HTTP_PORT send-proxy-v2
backend p_https
    server p1 127.0.0.1:$HTTPS_PORT send-proxy-v2
CFG
haproxy -db -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 &
track "$!" haproxy
wait_until 50 0.1 is_status 200 "http://127.0.0.1:$HA_HTTP/photo.jpg" || die "no answer through HAProxy: $(tail -3 "$W/haproxy.log")"

port=$(curl -s -o "$W/photo.jpg" -w '%{local_port}' "http://127.0.0.1:$HA_HTTP/photo.jpg")
expect_same_file "photo through HAProxy and p" "$TT_MEDIA/photo.jpg" "$W/photo.jpg"
expect_true "p logs the real client (curl's port $port), not HAProxy's" \
    log_has "$W/p.log" "access client=127\.0\.0\.1:$port method=GET path=/photo\.jpg status=200"
port=$(curl -sk -o /dev/null -w '%{local_port}' "https://127.0.0.1:$HA_HTTPS/photo.jpg")
expect_true "HTTPS front: p logs the real client (curl's port $port)" \
    log_has "$W/p.log" "access client=127\.0\.0\.1:$port method=GET path=/photo\.jpg status=200 .*tls=1"
port=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{local_port}' "http://127.0.0.1:$HA_HTTP/photo.jpg")
expect_true "h2c front: p logs the real client (curl's port $port)" \
    log_has "$W/p.log" "access client=127\.0\.0\.1:$port method=GET path=/photo\.jpg status=200 .*proto=h2"

# Straight to p without the header: closed, no answer.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(url /photo.jpg)" || true)
expect_eq "a request without the PROXY header gets no answer" 000 "$code"

# A hand-made v2 header naming [2001:db8::7]:4242, then a request.
$PY - "$HTTP_PORT" >"$W/v6.out" 2>&1 <<'PYEOF'
import socket, struct, sys
sig = b"\r\n\r\n\x00\r\nQUIT\n"
src = socket.inet_pton(socket.AF_INET6, "2001:db8::7")
dst = socket.inet_pton(socket.AF_INET6, "::1")
body = src + dst + struct.pack("!HH", 4242, 80)
hdr = sig + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(hdr + b"GET /photo.jpg HTTP/1.1\r\nHost: media\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(data.split(b"\r\n", 1)[0].decode())
PYEOF
expect_match "the hand-made header's request is answered" '^HTTP/1.1 200' "$(head -1 "$W/v6.out")"
expect_true "p logs the client the header named" log_has "$W/p.log" 'access client=\[2001:db8::7\]:4242 method=GET path=/photo\.jpg status=200'
finish
