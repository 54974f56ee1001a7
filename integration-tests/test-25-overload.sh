#!/usr/bin/env bash
# More requests at once than c allows streams on its tunnel (1000): p uses
# every stream c allows and queues the rest (bounded in count and time)
# instead of answering 503 at once.  And one h2c connection cannot take all
# the streams: it gets 100, and everyone else is served meanwhile.
source "$(dirname "$0")/lib.sh"
start_pair
# 100 connections x 32 streams = 3,200 at once for a 2.6 KiB image.
h2load -n 20000 -c 100 -m 32 "$(url /image.png)" >"$W/h2load.out" 2>&1
sed -n '/^requests:/,/^status codes:/p' "$W/h2load.out" | sed 's/^/    /'
expect_true "h2load: 20000 succeeded, none failed or errored" grep -qE '^requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored' "$W/h2load.out"
expect_true "... all 2xx" grep -qE '^status codes: 20000 2xx' "$W/h2load.out"
# 300 HTTP/1.1 clients at once.
ok=$($PY - "$HTTP_PORT" <<'PY'
import socket, sys, threading
port = int(sys.argv[1])
codes = []
def one():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /image.png HTTP/1.1\r\nHost: media\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    codes.append(data[9:12])
ts = [threading.Thread(target=one) for _ in range(300)]
for t in ts: t.start()
for t in ts: t.join()
print(sum(1 for c in codes if c == b"200"))
PY
)
expect_eq "300 HTTP/1.1 clients at once: all 200" 300 "$ok"
# One h2c connection holding 100 zero-window downloads (its cap) while
# others are served.
$PY "$TT_HERE/abortstorm.py" "$HTTP_PORT" /big-random.bin stall 0 100 4 >"$W/stall.out" 2>&1 &
track "$!" staller
wait_until 100 0.1 grep -q 'without reading' "$W/stall.out" || die "the staller did not start: $(cat "$W/stall.out")"
sed 's/^/    /' "$W/stall.out"
fetch /data.json --max-time 10
expect_eq "served while one connection holds its 100 streams" 200 "$CODE"
finish
