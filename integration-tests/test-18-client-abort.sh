#!/usr/bin/env bash
# Clients that leave mid-download (a player seeking away, a closed tab): p
# notices, ends the request (an access line), cancels the stream at c, and
# the tunnel keeps serving.  Each abort happens while p is holding back
# (the client reads slowly, so p has stopped reading from the tunnel for that
# stream): the case where a hangup is easy to miss.
source "$(dirname "$0")/lib.sh"
start_pair

for i in 1 2 3 4 5; do
    curl -s --max-time 60 --limit-rate 200K -o /dev/null "$(url /big-random.bin)" &
    pid=$!
    track "$pid" "curl-$i"
done
sleep 2
for pid in $(awk '$2 ~ /^curl-/ { print $1 }' "$W/pids"); do
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
done
# p must log the five requests as finished (whatever status it picks) soon
# after the clients are gone; a p that missed the hangups logs nothing until
# c has pushed all 80 MiB, which a 200 KB/s client would never take.
if wait_until 100 0.1 log_has "$W/p.log" 'access .*path=/big-random\.bin' 5; then
    good "p ended all 5 abandoned downloads"
else
    bad "within 10 s of the clients leaving, p logged $(count_lines "$W/p.log" 'access .*path=/big-random\.bin') of 5 access lines for them"
fi
grep 'path=/big-random.bin' "$W/p.log" | sed 's/^/    /'
ok=0
for i in $(seq 1 5); do
    fetch /data.json --max-time 10
    [ "$CODE" = 200 ] && ok=$((ok + 1))
done
expect_eq "the tunnel still serves after the aborts" 5 "$ok"
OUT=$W/clip.mp4 fetch "/$(q "my clip.mp4")"
expect_same_file "a whole video after the aborts" "$TT_MEDIA/my clip.mp4" "$W/clip.mp4"
finish
