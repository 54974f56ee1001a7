#!/usr/bin/env bash
# The tunnel listener under hostile peers: half-open connections from many
# addresses cannot keep a real c out (a cap per address, and at the cap in
# all the oldest handshake makes room), and wrong tokens from one address
# slow down after ten a minute with the refusal lines capped, while a valid
# token from another address still gets in at once.
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media

# 40 source addresses x 30 half-open connections (TCP only, no TLS byte):
# 1,200, more than p's 1,024 handshake slots; each one p drops is opened
# again at once, for as long as the test runs.
/usr/bin/python3 - "$TUN_PORT" 40 30 "$W/flood.stop" >"$W/flood.out" 2>&1 <<'PY' &
import os, resource, selectors, socket, sys, time
port, addrs, per, stop = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def dial(src):
    s = socket.socket()
    s.bind((src, 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return s
sel = selectors.DefaultSelector()
held = 0
for a in range(addrs):
    src = "127.0.0.%d" % (a + 2)
    for _ in range(per):
        try:
            sel.register(dial(src), selectors.EVENT_READ, src)
            held += 1
        except OSError as e:
            print("dial failed:", e, flush=True)
print("holding", held, flush=True)
reopened = 0
while not os.path.exists(stop):
    for key, _ in sel.select(0.2):
        # p closed it (readable at EOF): open another from the same address.
        sel.unregister(key.fileobj)
        key.fileobj.close()
        try:
            sel.register(dial(key.data), selectors.EVENT_READ, key.data)
            reopened += 1
        except OSError:
            pass
print("reopened", reopened, flush=True)
PY
flood=$!
track "$flood" flood
wait_until 100 0.1 grep -q holding "$W/flood.out" || die "the flood did not start"
sleep 1
start_c c media "$TT_MEDIA"
if wait_until 100 0.1 log_has "$W/c.log" "tunnel up"; then
    good "a real c got in while 1,200 half-open connections held the listener"
else
    bad "c did not get its tunnel within 10 s of starting (p log: $(grep -c 'tunnel refused' "$W/p.log") refusals)"
fi
log_has "$W/p.log" "handshakes already under way from this address|dropped for a newer one" ||
    bad "p did not say why it dropped the flood's connections"
touch "$W/flood.stop"
wait "$flood" 2>/dev/null
note "flood: $(tr '\n' ' ' <"$W/flood.out")"
expect_le "refusal lines stay capped (10 a second) through the flood" 200 "$(count_lines "$W/p.log" 'tunnel refused')"

# Wrong tokens from 127.0.0.3, one after another.
/usr/bin/python3 - "$TUN_PORT" 25 >"$W/guess.out" 2>&1 <<'PY'
import socket, ssl, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
codes = []
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.0.3", 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    t = ctx.wrap_socket(s, server_hostname="localhost")
    t.sendall(("PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Tether-Name: media\r\nTether-Version: 1\r\nConnection: Upgrade\r\n"
               "Upgrade: tether-h2r\r\nContent-Length: 0\r\n\r\n" % ("%048x" % i)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = t.recv(4096)
        if not b:
            break
        head += b
    codes.append(head.split(b" ")[1].decode() if head else "none")
    t.close()
print(" ".join(codes))
PY
expect_eq "25 wrong tokens: 25 x 401" "$(printf '401 %.0s' $(seq 25) | sed 's/ $//')" "$(cat "$W/guess.out")"
log_has "$W/p.log" "tunnel handshakes from 127\.0\.0\.3 slowed: 11 refused" ||
    bad "p did not slow down the guesser at 127.0.0.3"
# A valid c from another address is not slowed: its tunnel comes back at once.
stop_one c
start_c c2 media "$TT_MEDIA"
wait_until 50 0.1 log_has "$W/c2.log" "tunnel up" || bad "a valid c did not get in after the guesses"
fetch /data.json --max-time 10
expect_eq "and serves" 200 "$CODE"
finish
