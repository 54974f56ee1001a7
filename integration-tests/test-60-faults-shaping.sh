#!/usr/bin/env bash
# The tunnel through a shaping TCP proxy (faultproxy.py between c and p):
# - every write cut into 1..7-byte pieces (TLS records and HTTP/2 frames
#   arrive at odd boundaries): a GET, a Range and a HEAD are exact;
# - a 2 MiB/s link with 4 concurrent downloads: all whole, p's RSS bounded;
# - 50 ms added to every chunk: requests work, and the 1 s keepalive does
#   not drop the healthy but slow tunnel.
source "$(dirname "$0")/lib.sh"
# A 1 s keepalive on a link that queues ~2 s of c's data (its socket send
# buffer at 2 MiB/s): each PING waits behind that queue and its answer comes
# late, yet the tunnel must stay up, since the peer keeps acknowledging bytes
# (proto/session.c; before that fix the throttled downloads were cut).
FAULT_KA="--ping-interval 1 --ping-timeout 1"
source "$TT_HERE/faults.sh"
start_faulty

# 1. Tiny re-segmentation, both directions, also for a new handshake.
fpq all seg 7
OUT=$W/tone.mp3 fetch /tone.mp3
expect_eq "seg 1..7: GET tone.mp3 -> 200" 200 "$CODE"
expect_same_file "seg 1..7: tone.mp3 is exact" "$TT_MEDIA/tone.mp3" "$W/tone.mp3"
OUT=$W/range fetch "/$(q "my clip.mp4")" -H "Range: bytes=1000000-1065535"
expect_eq "seg 1..7: Range -> 206" 206 "$CODE"
tail -c +1000001 "$TT_MEDIA/my clip.mp4" | head -c 65536 >"$W/want"
expect_same_file "seg 1..7: the range's bytes" "$W/want" "$W/range"
rm -f "$W/hdrs"
CODE=$(curl -s -I --max-time 20 -D "$W/hdrs" -o /dev/null -w '%{http_code}' "$(url /photo.jpg)") || true
expect_eq "seg 1..7: HEAD photo.jpg -> 200" 200 "$CODE"
expect_eq "seg 1..7: HEAD Content-Length" "$(size_of "$TT_MEDIA/photo.jpg")" "$(header_of "$W/hdrs" content-length)"
# A fresh tunnel whose TLS and PUT handshake arrive in tiny pieces.
ups=$(c_ups)
fpq cur cut
wait_until 100 0.1 log_has "$W/c.log" 'tunnel up to' $((ups + 1)) || bad "c did not reconnect through the 1..7-byte link"
wait_until 50 0.1 is_status 200 "$(url /data.json)" || bad "no 200 after the segmented handshake"
OUT=$W/photo fetch /photo.jpg
expect_same_file "seg 1..7 after a segmented handshake: photo.jpg is exact" "$TT_MEDIA/photo.jpg" "$W/photo"
fpq all pass

# 2. A 2 MiB/s link, 4 concurrent 3 MiB range downloads (12 MiB: ~6 s).
fpq all throttle 2097152
ppid_=$(pid_of p)
pids=()
for i in 0 1 2 3; do
    off=$((i * 10 * 1048576))
    curl -s --max-time 40 -H "Range: bytes=$off-$((off + 3145727))" -o "$W/dl$i" -w '%{http_code}' \
        "$(url /big-random.bin)" >"$W/dl$i.code" 2>/dev/null &
    pids+=("$!")
    track "$!" "curl-$i"
done
max_p=0
for ((i = 0; i < 400; i++)); do
    r=$(rss_kib "$ppid_"); [ "$r" -gt "$max_p" ] && max_p=$r
    left=0
    for p_ in "${pids[@]}"; do alive "$p_" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
done
for i in 0 1 2 3; do
    wait "${pids[$i]}"; rc=$?
    off=$((i * 10 * 1048576))
    expect_eq "throttled download $i: curl exit" 0 "$rc"
    expect_eq "throttled download $i: status" 206 "$(cat "$W/dl$i.code")"
    tail -c +$((off + 1)) "$TT_MEDIA/big-random.bin" | head -c 3145728 >"$W/want"
    expect_same_file "throttled download $i is exact" "$W/want" "$W/dl$i"
    rm -f "$W/dl$i"
done
expect_le "p's sampled VmRSS (KiB) during the throttled downloads stays under 64 MiB" $((64 * 1024)) "$max_p"
fpq all pass

# 7. 50 ms per chunk; keepalive (1 s) must not drop a healthy slow tunnel.
downs=$(p_downs)
fpq all latency 50
OUT=$W/notes fetch /notes.txt
expect_eq "latency 50 ms: GET notes.txt -> 200" 200 "$CODE"
expect_same_file "latency 50 ms: notes.txt is exact" "$TT_MEDIA/notes.txt" "$W/notes"
sleep 3.5   # several idle keepalive rounds at 50 ms each way
OUT=$W/photo fetch /photo.jpg
expect_eq "latency 50 ms, after 3.5 s idle: GET -> 200" 200 "$CODE"
expect_eq "p did not drop the slow tunnel" "$downs" "$(p_downs)"
expect_eq "c did not drop the slow tunnel" 0 "$(count_lines "$W/c.log" 'tunnel down.*(ping|PING|timeout|answer)')"
fpq all pass
rm -f "$W/want"
finish
