#!/usr/bin/env bash
# Ordinary client aborts never cost the tunnel: 300 HTTP/1.1 clients that
# start a big download and leave, 4 h2c connections resetting 100 streams
# each (p's streams per connection, under its budget), and one h2c connection that
# holds 90 zero-window downloads and closes.  Each becomes RST_STREAM(CANCEL)
# from p to c; p paces them so c's rapid-reset defence (which stays on: the
# fake-p flood test) never fires, and every byte c sent on those streams
# goes back to the connection window, so the downloads after are whole.
source "$(dirname "$0")/lib.sh"
start_pair
storm() { $PY "$TT_HERE/abortstorm.py" "$HTTP_PORT" /big-random.bin "$@" >>"$W/storm.out" 2>&1 || bad "abortstorm $* failed: $(tail -3 "$W/storm.out")"; }

check_tunnel() { # WHAT
    if log_has "$W/c.log" "too many stream resets|ENHANCE_YOUR_CALM|tunnel closed"; then
        bad "$1: c dropped the tunnel: $(grep -E 'too many stream resets|ENHANCE_YOUR_CALM|tunnel closed' "$W/c.log" | head -2)"
    else
        good "$1: the tunnel stayed up"
    fi
    expect_eq "$1: p's tunnel was never down" 0 "$(count_lines "$W/p.log" 'tunnel down')"
    fetch /data.json --max-time 10
    expect_eq "$1: a request after it is served" 200 "$CODE"
}

storm h1 300
check_tunnel "300 HTTP/1.1 clients leaving mid-download"
storm h2reset 4 100
check_tunnel "4 h2c connections x 100 resets"
storm h2close 90
check_tunnel "an h2c connection with 90 zero-window downloads closing"
sed 's/^/    /' "$W/storm.out"
# The window of every aborted download came back: whole files still flow.
for i in 1 2 3; do
    OUT=$W/big.$i fetch /big-random.bin --max-time 60
    expect_same_file "a whole big download after the storms ($i)" "$TT_MEDIA/big-random.bin" "$W/big.$i"
done
finish
