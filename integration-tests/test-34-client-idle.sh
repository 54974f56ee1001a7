#!/usr/bin/env bash
# p --client-idle: a client connection with no request under way is closed
# after that long, on HTTP/1.1 (keep-alive) and on HTTP/2 (GOAWAY NO_ERROR
# first, RFC 9113 §9.1); a slow download that takes longer than the idle
# time is never cut, on either protocol.
source "$(dirname "$0")/lib.sh"
start_pair "$TT_MEDIA" --client-idle 2

out=$(/usr/bin/python3 "$TT_HERE/idleprobe.py" h1 "$HTTP_PORT" /data.json 6)
note "HTTP/1.1 idle probe: $out"
expect_true "HTTP/1.1: 200, then closed by p after ~2 s idle" \
    awk -v o="$out" 'BEGIN { split(o, f, /[ =]/); exit !(f[2] == 200 && f[4] != "no" && f[4] >= 1.5 && f[4] <= 4.5) }'

out=$(/usr/bin/python3 "$TT_HERE/idleprobe.py" h2 "$HTTP_PORT" /data.json 6)
note "HTTP/2 idle probe: $out"
expect_true "HTTP/2: 200, then closed by p after ~2 s idle" \
    awk -v o="$out" 'BEGIN { split(o, f, /[ =]/); exit !(f[2] == 200 && f[4] != "no" && f[4] >= 1.5 && f[4] <= 4.5) }'
expect_eq "HTTP/2: p said GOAWAY NO_ERROR before closing" "goaway=0" "${out##* }"

# Downloads that outlast the idle time (1 MiB at 256 KiB/s: ~4 s) are use, not idleness.
head -c 1048576 "$TT_MEDIA/big-random.bin" >"$W/want"
code=$(curl -s --max-time 30 --limit-rate 256K -r 0-1048575 -o "$W/h1.bin" -w '%{http_code}' "$(url /big-random.bin)")
expect_eq "HTTP/1.1 slow download longer than --client-idle -> 206" 206 "$code"
expect_same_file "HTTP/1.1 slow download is whole" "$W/want" "$W/h1.bin"
code=$(curl -s --http2-prior-knowledge --max-time 30 --limit-rate 256K -r 0-1048575 -o "$W/h2.bin" -w '%{http_code}' "$(url /big-random.bin)")
expect_eq "HTTP/2 slow download longer than --client-idle -> 206" 206 "$code"
expect_same_file "HTTP/2 slow download is whole" "$W/want" "$W/h2.bin"

code=$("$TT_P" --client-idle 0 2>"$W/bad.err"; echo $?)
expect_eq "--client-idle 0 is refused (exit 2)" 2 "$code"
expect_true "--client-idle 0 says why" grep -q -- "--client-idle" "$W/bad.err"
finish
