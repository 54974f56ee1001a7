#!/usr/bin/env bash
# At the open-file limit p stops accepting for a moment instead of spinning
# on a listener that stays readable: one warning a second with a count, not
# a line per wake-up (an unpaused p wrote hundreds of MB of log in seconds),
# and it serves again as soon as descriptors come back.
source "$(dirname "$0")/lib.sh"
start_pair
ppid_=$(pid_of p)

# p raises its soft limit to the hard one when it starts.
hard=$(awk '/Max open files/ { print $5 }' "/proc/$ppid_/limits")
soft=$(awk '/Max open files/ { print $4 }' "/proc/$ppid_/limits")
expect_eq "p runs with its soft open-file limit raised to the hard one" "$hard" "$soft"

# Now a limit p is close to already (listeners, epoll, the tunnel, the log).
prlimit --pid "$ppid_" --nofile=40:40 || die "prlimit failed"
before=$(count_lines "$W/p.log" 'accept failed')
/usr/bin/python3 - "$HTTP_PORT" 120 4 >"$W/holder.out" 2>&1 <<'EOF' &
import socket, sys, time
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))  # completes in the backlog even unaccepted
        socks.append(s)
    except OSError:
        pass
print("held", len(socks), flush=True)
time.sleep(hold)
for s in socks:
    s.close()
EOF
holder=$!
track "$holder" holder
sleep 3
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$ppid_/stat"; }
t0=$(cpu_ticks)
sleep 1
t1=$(cpu_ticks)
wait "$holder" 2>/dev/null
after=$(count_lines "$W/p.log" 'accept failed')
lines=$((after - before))
expect_true "p said it was out of descriptors" [ "$lines" -ge 1 ]
# Four seconds at the limit: one line a second, with a count in it.
expect_le "accept failures logged at most once a second (4 s at the limit)" 6 "$lines"
log_has "$W/p.log" 'accept failed: Too many open files: pausing accepts for 250 ms \([0-9]+ more' ||
    bad "the accept warning does not say it pauses and how many it held back"
note "p used $((t1 - t0)) CPU ticks (of 100) in one second at the limit"
alive "$ppid_" || die "p died at the fd limit"

# Descriptors back: p accepts again and serves.
prlimit --pid "$ppid_" --nofile=1024:1024
ok=0
for i in 1 2 3; do
    fetch /data.json --max-time 10
    [ "$CODE" = 200 ] && ok=$((ok + 1))
done
expect_eq "p serves again once the clients left" 3 "$ok"
finish
