#!/usr/bin/env bash
# Clients that stop reading hold their own stream window and nothing more:
# p gives the tunnel's connection window back as it buffers for them, so
# everyone else's responses keep flowing, and after --client-idle without
# taking a byte they are closed (HTTP/1.1) or their stream reset (h2).
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media --client-idle 6
start_c c media "$TT_MEDIA"
wait_c_up c || die "c did not come up"

# 2 HTTP/1.1 readers and 8 h2c streams that never read an 80 MiB file:
# 8 h2c streams x 4 MiB of stream window: twice the tunnel's 16 MiB
# connection window (an HTTP/1.1 reader's socket buffers hold some of its).
$PY "$TT_HERE/abortstorm.py" "$HTTP_PORT" /big-random.bin stall 2 8 9 >"$W/stall.out" 2>&1 &
staller=$!
track "$staller" staller
wait_until 100 0.1 grep -q 'without reading' "$W/stall.out" || die "the stalled readers did not start: $(cat "$W/stall.out")"
sleep 1
fetch /data.json --max-time 10
expect_eq "a small request while 10 readers stall" 200 "$CODE"
OUT=$W/big fetch /big-random.bin --max-time 30
expect_same_file "a whole 80 MiB download while 10 readers stall" "$TT_MEDIA/big-random.bin" "$W/big"
OUT=$W/clip.mp4 fetch "/$(q "my clip.mp4")" --http2-prior-knowledge --max-time 30
expect_same_file "an h2c download too" "$TT_MEDIA/my clip.mp4" "$W/clip.mp4"
wait "$staller" 2>/dev/null
sed 's/^/    /' "$W/stall.out"
# Their access lines: ended by p at --client-idle (6 s), before the
# clients themselves went at 9 s.
ended() { grep -E "path=/big-random.bin .*dur_ms=(6|7|8)[0-9]{3} origin=media$1" "$W/p.log" | grep -c .; }
expect_eq "p ended the 2 HTTP/1.1 readers that took nothing for --client-idle" 2 "$(ended '$')"
expect_eq "... and reset the 8 h2c streams" 8 "$(ended ' proto=h2')"
finish
