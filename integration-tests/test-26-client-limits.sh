#!/usr/bin/env bash
# p bounds client connections: --max-clients (more are closed at once, with
# a rate-limited line), and connections still in their TLS handshake on the
# HTTPS front (at 1,024 the oldest goes, so a flood of half-done handshakes
# cannot keep a real browser out).
source "$(dirname "$0")/lib.sh"
pick_ports
HTTPS_PORT=$(free_ports 1)
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media \
    --max-clients 1100 --https-listen "127.0.0.1:$HTTPS_PORT"
start_c c media "$TT_MEDIA"
wait_c_up c || die "c did not come up"

hold() { # PORT N SECS [REQUEST] -> "held N closed-by-p K"
    /usr/bin/python3 - "$@" <<'PY'
import resource, selectors, socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
req = sys.argv[4].encode() if len(sys.argv) > 4 else b""
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if req:
        s.sendall(req)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    socks.append(s)
closed = set()
end = time.time() + secs
while time.time() < end:
    for key, _ in sel.select(0.2):
        try:
            if key.fileobj.recv(65536) != b"":
                continue  # an answer: the connection stays
            closed.add(key.fileobj.fileno())
        except BlockingIOError:
            continue
        except OSError:
            closed.add(key.fileobj.fileno())
        sel.unregister(key.fileobj)
print("held", n, "closed-by-p", len(closed), flush=True)
for s in socks:
    s.close()
PY
}
# 1,200 half-open connections to the HTTPS port: p keeps 1,024 pending.
hold "$HTTPS_PORT" 1200 6 >"$W/tls-flood.out" 2>&1 &
flood=$!
track "$flood" flood
sleep 2
code=$(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HTTPS_PORT/data.json")
expect_eq "an HTTPS client is served during a flood of half-done handshakes" 200 "$code"
wait "$flood" 2>/dev/null
closed=$(awk '{ print $4 }' "$W/tls-flood.out")
expect_true "p let go of the oldest ($closed of 1200) to stay at 1,024 pending" [ "${closed:-0}" -ge 150 ]

# --max-clients 1100: of 1,200 keep-alive clients (each asked once) p keeps
# 1,100.
hold "$HTTP_PORT" 1200 4 $'GET /data.json HTTP/1.1\r\nHost: media\r\n\r\n' >"$W/cap.out" 2>&1
closed=$(awk '{ print $4 }' "$W/cap.out")
expect_true "over --max-clients, connections are closed at once ($closed of 1200)" [ "${closed:-0}" -ge 100 ]
log_has "$W/p.log" "client refused: [0-9]+ connections open \(--max-clients 1100" || bad "p did not say why it refused"
expect_le "the refusal lines are rate-limited" 10 "$(count_lines "$W/p.log" 'client refused')"
fetch /data.json --max-time 10
expect_eq "served again once they left" 200 "$CODE"
finish
