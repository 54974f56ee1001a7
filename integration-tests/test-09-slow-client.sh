#!/usr/bin/env bash
# Slow clients finish correctly while p's (and c's) memory stays bounded.
#
# The bound: p returns tunnel window only for bytes it has written to the
# client, so per stream it holds at most one stream window (1 MiB) of body,
# and per tunnel at most the connection window (16 MiB).  Two streams here:
# at most ~2 MiB of body buffered, plus the process's fixed cost (a few MiB).
# 64 MiB leaves a wide margin for allocator slack, yet a p (or c) that reads
# ahead of the client buffers most of the 80 MiB file and goes past it.  The
# file being larger than the bound is what lets this test fail.
# Peak memory is read from /proc/PID/status (VmHWM, the high-water mark of
# VmRSS) and VmRSS is sampled while the transfers run.  No timing assertion.
source "$(dirname "$0")/lib.sh"
start_pair

bound_kib=$((64 * 1024))
ppid_=$(pid_of p)
cpid_=$(pid_of c)
note "p RSS at start: $(rss_kib "$ppid_") KiB, c RSS at start: $(rss_kib "$cpid_") KiB"

vid="my clip.mp4"
curl -s --max-time 100 --limit-rate 2M -o "$W/slow.mp4" -w '%{http_code}' "$(url "/$(q "$vid")")" >"$W/slow.code" 2>&1 &
slow_pid=$!
track "$slow_pid" curl-slow
curl -s --max-time 100 --limit-rate 8M -o "$W/big.bin" -w '%{http_code}' "$(url /big-random.bin)" >"$W/big.code" 2>&1 &
big_pid=$!
track "$big_pid" curl-big

max_p=0
max_c=0
for ((i = 0; i < 1000; i++)); do   # at most ~100 s; curl's --max-time ends it first
    r=$(rss_kib "$ppid_"); [ "$r" -gt "$max_p" ] && max_p=$r
    r=$(rss_kib "$cpid_"); [ "$r" -gt "$max_c" ] && max_c=$r
    alive "$slow_pid" || alive "$big_pid" || break
    sleep 0.1
done
wait "$slow_pid"; slow_rc=$?
wait "$big_pid"; big_rc=$?
hwm_p=$(awk '/^VmHWM:/ { print $2 }' "/proc/$ppid_/status" 2>/dev/null || echo 0)
hwm_c=$(awk '/^VmHWM:/ { print $2 }' "/proc/$cpid_/status" 2>/dev/null || echo 0)
note "p: sampled max VmRSS $max_p KiB, VmHWM $hwm_p KiB; c: sampled max $max_c KiB, VmHWM $hwm_c KiB"

expect_eq "slow (2 MB/s) video download: curl exit" 0 "$slow_rc"
expect_eq "slow video download: status" 200 "$(cat "$W/slow.code")"
expect_same_file "slow video download is complete and identical" "$TT_MEDIA/$vid" "$W/slow.mp4"
expect_eq "slow (8 MB/s) 80 MiB download: curl exit" 0 "$big_rc"
expect_eq "slow 80 MiB download: status" 200 "$(cat "$W/big.code")"
expect_same_file "slow 80 MiB download is complete and identical" "$TT_MEDIA/big-random.bin" "$W/big.bin"
expect_le "p's sampled VmRSS (KiB) stays under 64 MiB" "$bound_kib" "$max_p"
expect_le "p's peak VmHWM (KiB) stays under 64 MiB" "$bound_kib" "$hwm_p"
expect_le "c's sampled VmRSS (KiB) stays under 64 MiB" "$bound_kib" "$max_c"
expect_le "c's peak VmHWM (KiB) stays under 64 MiB" "$bound_kib" "$hwm_c"
rm -f "$W/big.bin" "$W/slow.mp4"
finish
