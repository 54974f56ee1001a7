#!/usr/bin/env bash
# SIGTERM drains: p stops accepting, lets an in-flight download finish
# (grace 10 s), and exits 0; c on SIGTERM also exits 0 and p logs the tunnel
# down.
source "$(dirname "$0")/lib.sh"
start_pair

# 20 MiB of the big file at 8 MB/s: ~2.6 s, more than the socket buffers
# hold (so p really has work in flight when SIGTERM comes), done well within
# the 10 s grace.
curl -s --max-time 30 --limit-rate 8M -H "Range: bytes=0-20971519" -o "$W/dl.mp4" "$(url /big-random.bin)" &
dl=$!
track "$dl" curl-dl
wait_until 100 0.1 bash -c '[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 200000 ]' _ "$W/dl.mp4" || bad "the download did not start"
ppid_=$(pid_of p)
kill -TERM "$ppid_"
# New connections are refused (or closed) once p drains.
sleep 0.5
code=$(status_of "$(url /data.json)")
note "a new request during the drain got: $code"
expect_ne "no new request is served while p drains" 200 "$code"
wait "$dl"; rc=$?
expect_eq "the in-flight download finished (curl exit 0)" 0 "$rc"
head -c 20971520 "$TT_MEDIA/big-random.bin" >"$W/want"
expect_same_file "the in-flight download is whole" "$W/want" "$W/dl.mp4"
rm -f "$W/want" "$W/dl.mp4"
for ((i = 0; i < 120; i++)); do alive "$ppid_" || break; sleep 0.1; done
if alive "$ppid_"; then bad "p still running 12 s after SIGTERM"; else
    wait "$ppid_"; prc=$?
    expect_eq "p exits 0 after SIGTERM" 0 "$prc"
fi

# c: SIGTERM -> exit 0 (p is gone, so nothing in flight).
cpid_=$(pid_of c)
kill -TERM "$cpid_"
for ((i = 0; i < 120; i++)); do alive "$cpid_" || break; sleep 0.1; done
if alive "$cpid_"; then bad "c still running 12 s after SIGTERM"; else
    wait "$cpid_"; crc=$?
    expect_eq "c exits 0 after SIGTERM" 0 "$crc"
fi

# With both up again, c's SIGTERM lets its in-flight download finish and
# shows at p as a tunnel down.
start_p p2 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
start_c c2 media "$TT_MEDIA"
wait_c_up c2 || die "c2 did not come up"
wait_until 50 0.1 log_has "$W/p2.log" 'tunnel up name=media' || bad "p2 did not log the tunnel up"
# c drains too: a download in flight from c when it gets SIGTERM finishes
# whole (c used to stop its --root tunnels at once, cutting it), then c
# exits 0.
curl -s --max-time 30 --limit-rate 8M -H "Range: bytes=0-20971519" -o "$W/dl2.mp4" "$(url /big-random.bin)" &
dl=$!
track "$dl" curl-dl2
wait_until 100 0.1 bash -c '[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 200000 ]' _ "$W/dl2.mp4" || bad "the second download did not start"
c2pid=$(pid_of c2)
kill -TERM "$c2pid"
wait "$dl"; rc=$?
expect_eq "c's in-flight download finished during c's drain (curl exit 0)" 0 "$rc"
head -c 20971520 "$TT_MEDIA/big-random.bin" >"$W/want"
expect_same_file "c's in-flight download is whole" "$W/want" "$W/dl2.mp4"
rm -f "$W/want" "$W/dl2.mp4"
for ((i = 0; i < 120; i++)); do alive "$c2pid" || break; sleep 0.1; done
if alive "$c2pid"; then bad "c2 still running 12 s after SIGTERM"; else
    wait "$c2pid"; crc=$?
    expect_eq "c exits 0 after draining" 0 "$crc"
fi
if wait_until 120 0.1 log_has "$W/p2.log" 'tunnel down name=media'; then good "p logged the tunnel down after c's SIGTERM"; else bad "p did not log 'tunnel down name=media' after c's SIGTERM"; fi
finish
