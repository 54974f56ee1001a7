#!/usr/bin/env bash
# `make run` / `make demo`: the whole tunnel on this machine.
#
# Makes the sample media (integration-tests/make-media.sh), starts bin/p on
# two free loopback ports with a fresh state dir (p makes its certificate and
# a token on this first run and prints the bin/c command), starts bin/c with
# that fingerprint and token serving integration-tests/media, prints the URL
# to open and a curl example, and shows p's and c's log lines as they come.
# Ctrl-C (or SIGTERM) stops both, by PID.  DEMO_SECONDS=N stops by itself
# after N seconds (for tests).  DEMO_STATE=DIR keeps the state in DIR instead
# of a temporary folder.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)

P=$repo/bin/p
C=$repo/bin/c
for b in "$P" "$C"; do
    [ -x "$b" ] || { echo "demo: $b is missing: run make" >&2; exit 1; }
done
integration-tests/make-media.sh || { echo "demo: could not make the sample media" >&2; exit 1; }
media=$repo/integration-tests/media

if [ -n "${DEMO_STATE:-}" ]; then
    state=$DEMO_STATE
    mkdir -p "$state"
    keep_state=1
else
    state=$(mktemp -d "${TMPDIR:-/tmp}/tether-demo.XXXXXX")
    keep_state=0
fi

p_pid=
c_pid=
cleanup() {
    local pid i
    for pid in $c_pid $p_pid; do
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    for pid in $c_pid $p_pid; do
        for ((i = 0; i < 120; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$keep_state" = 0 ]; then rm -rf "$state"; fi
}
trap 'echo; echo "demo: stopping p and c"; exit 0' INT TERM
trap cleanup EXIT

read -r http_port tun_port < <(/usr/bin/python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
[ -n "${tun_port:-}" ] || { echo "demo: no free port" >&2; exit 1; }

"$P" --listen "127.0.0.1:$http_port" --tunnel-listen "127.0.0.1:$tun_port" --state-dir "$state" \
    >"$state/p.out" 2>"$state/p.log" &
p_pid=$!

# p prints its fingerprint (log) and, having made the tokens file, the bin/c
# command line (stdout).
fpr=
tokfile=
for ((i = 0; i < 100; i++)); do
    kill -0 "$p_pid" 2>/dev/null || { echo "demo: p exited:" >&2; cat "$state/p.log" >&2; exit 1; }
    fpr=$(grep -o 'fingerprint sha256:[0-9a-fA-F:]*' "$state/p.log" | head -1 | sed 's/^fingerprint //')
    tokfile=$(sed -n 's/.*--token-file \([^ ]*\).*/\1/p' "$state/p.out" | head -1)
    if [ -n "$fpr" ] && [ -n "$tokfile" ] && grep -q 'listening for tunnels' "$state/p.log"; then break; fi
    sleep 0.1
done
[ -n "$fpr" ] && [ -s "$tokfile" ] || { echo "demo: p did not print its fingerprint and c's token file:" >&2; cat "$state/p.log" "$state/p.out" >&2; exit 1; }

# The token comes from the file p wrote for c, not the command line (ps shows that).
"$C" --proxy "127.0.0.1:$tun_port" --name default --token-file "$tokfile" --fingerprint "$fpr" --root "$media" \
    >"$state/c.out" 2>"$state/c.log" &
c_pid=$!

up=0
for ((i = 0; i < 100; i++)); do
    kill -0 "$c_pid" 2>/dev/null || { echo "demo: c exited:" >&2; cat "$state/c.log" >&2; exit 1; }
    if grep -q 'tunnel up' "$state/c.log" \
        && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$http_port/")" = 200 ]; then
        up=1
        break
    fi
    sleep 0.1
done
[ "$up" = 1 ] || { echo "demo: the tunnel did not come up:" >&2; tail -20 "$state/p.log" "$state/c.log" >&2; exit 1; }

cat <<EOF

  tether demo: p (proxy) and c (origin) are running on loopback.

    open          http://127.0.0.1:$http_port/
    a video       http://127.0.0.1:$http_port/my%20clip.mp4
    with curl     curl -v -r 512-2047 -o part.bin "http://127.0.0.1:$http_port/my%20clip.mp4"
                  curl -s "http://127.0.0.1:$http_port/" | head

    p  pid $p_pid  clients on 127.0.0.1:$http_port, tunnels on 127.0.0.1:$tun_port
    c  pid $c_pid  serving $media
    tunnel certificate $fpr
    state and logs in $state$([ "$keep_state" = 0 ] && echo " (removed on exit)")

  Ctrl-C stops both.  Log lines follow.

EOF

# Follow the logs (no tail -f: one less process to stop) until Ctrl-C, a
# program exits, or DEMO_SECONDS passes.
seen_p=0
seen_c=0
show_new() {
    local n
    n=$(wc -l <"$state/p.log")
    if [ "$n" -gt "$seen_p" ]; then sed -n "$((seen_p + 1)),${n}p" "$state/p.log"; seen_p=$n; fi
    n=$(wc -l <"$state/c.log")
    if [ "$n" -gt "$seen_c" ]; then sed -n "$((seen_c + 1)),${n}p" "$state/c.log"; seen_c=$n; fi
}
seen_p=$(grep -c '' "$state/p.log")
seen_c=$(grep -c '' "$state/c.log")
start=$SECONDS
while :; do
    show_new
    if ! kill -0 "$p_pid" 2>/dev/null; then echo "demo: p exited" >&2; exit 1; fi
    if ! kill -0 "$c_pid" 2>/dev/null; then echo "demo: c exited" >&2; exit 1; fi
    if [ -n "${DEMO_SECONDS:-}" ] && [ $((SECONDS - start)) -ge "$DEMO_SECONDS" ]; then
        echo "demo: $DEMO_SECONDS s passed, stopping"
        exit 0
    fi
    sleep 1
done
