#!/usr/bin/env bash
# Two p behind Debian's HAProxy (mode http, `option httpchk GET /ready` on
# each p's --admin-listen, retries and redispatch), one c holding a tunnel to
# each, under a steady load (loadgen.py: 4 workers fetching media files and
# checking every body's sha256).  Proves issue 12's two claims:
#  - a rolling restart (SIGTERM p1 with --drain-delay, start it again on the
#    same ports, then the same for p2) fails no request at all: /ready turns
#    503 so HAProxy stops sending, in-flight requests finish, idle keep-alive
#    connections close cleanly, and a p just started says /ready 503 until
#    its first tunnel is up, so HAProxy sends it nothing it cannot serve;
#    both restarted p serve again;
#  - kill -9 of one p fails at most the requests in flight on it (one per
#    worker), requests succeed again within a few health-check intervals
#    (HAProxy retries connection failures on the other p meanwhile), and the
#    p started again gets c's tunnel back and serves.
source "$(dirname "$0")/lib.sh"
command -v haproxy >/dev/null || die "haproxy is missing: 'make deps' (tools/deps.sh) installs Debian's haproxy"

WORKERS=4
DELAY=2 # --drain-delay: 10 health-check intervals of 200 ms
read -r P1_ADMIN HTTP2 TUN2 P2_ADMIN HA STATS CADMIN < <(free_ports 7)
pick_ports
P1_HTTP=$HTTP_PORT P1_TUN=$TUN_PORT

p1() { # LABEL: p1 (again) on its ports
    HTTP_PORT=$P1_HTTP TUN_PORT=$P1_TUN start_p "$1" --cert "$TT_CERT" --key "$TT_KEY" \
        --tokens "$TT_TOKENS" --default media --admin-listen "127.0.0.1:$P1_ADMIN" --drain-delay "$DELAY"
}
p2() {
    HTTP_PORT=$HTTP2 TUN_PORT=$TUN2 start_p "$1" --cert "$TT_CERT" --key "$TT_KEY" \
        --tokens "$TT_TOKENS" --default media --admin-listen "127.0.0.1:$P2_ADMIN" --drain-delay "$DELAY"
}
p1 p1
P1_HTTP=$HTTP_PORT P1_TUN=$TUN_PORT # start_p may have moved the first p
p2 p2
# No tunnel yet: every request would be a 503 "no origin", so not ready.
expect_eq "p1 /ready before c dialled in" 503 "$(status_of "http://127.0.0.1:$P1_ADMIN/ready")"
expect_eq "p1 says why" "no tunnel is up" "$(curl -s --max-time 5 "http://127.0.0.1:$P1_ADMIN/ready")"
TUN_PORT=$P1_TUN start_c c media "$TT_MEDIA" --proxy "127.0.0.1:$TUN2" --admin-listen "127.0.0.1:$CADMIN"
wait_c_up c 2 || die "c did not bring up its two tunnels"
wait_until 50 0.1 log_has "$W/p1.log" "tunnel up name=media"
wait_until 50 0.1 log_has "$W/p2.log" "tunnel up name=media"
expect_eq "p1 /ready with c's tunnel" 200 "$(status_of "http://127.0.0.1:$P1_ADMIN/ready")"
expect_eq "p2 /ready with c's tunnel" 200 "$(status_of "http://127.0.0.1:$P2_ADMIN/ready")"

cat >"$W/haproxy.cfg" <<CFG
global
    maxconn 500
    log stderr format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    default-server inter 200ms fastinter 200ms downinter 200ms fall 1 rise 2
frontend fe
    bind 127.0.0.1:$HA
    default_backend ps
backend ps
    balance roundrobin
    option httpchk GET /ready
    server p1 127.0.0.1:$P1_HTTP check port $P1_ADMIN
    server p2 127.0.0.1:$HTTP2 check port $P2_ADMIN
listen stats
    bind 127.0.0.1:$STATS
    stats enable
    stats uri /stats
CFG
haproxy -c -f "$W/haproxy.cfg" >"$W/haproxy-check.log" 2>&1 || die "haproxy rejects the config: $(tail -5 "$W/haproxy-check.log")"
haproxy -db -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 &
track "$!" haproxy

# HAProxy's view of a server (UP, DOWN, "UP 1/2"...), from its stats CSV.
ha_status() { curl -s --max-time 5 "http://127.0.0.1:$STATS/stats;csv" | awk -F, -v s="$1" '$1 == "ps" && $2 == s { print $18 }'; }
ha_up() { [ "$(ha_status "$1")" = UP ]; }
ha_down() { ! ha_up "$1"; }
gone() { ! alive "$1"; }
now() { date +%s.%N; }
# Lines of the load log whose time is in [FROM, TO) and whose verdict is V.
load_count() { # V FROM TO
    awk -v v="$1" -v a="$2" -v b="$3" '$2 == v && $1 >= a && $1 < b { n++ } END { print n + 0 }' "$W/load.txt"
}
access_count() { count_lines "$W/$1.log" "access client=.*status=200"; }

wait_until 100 0.1 ha_up p1 || die "HAProxy does not see p1 up: $(ha_status p1)"
wait_until 100 0.1 ha_up p2 || die "HAProxy does not see p2 up: $(ha_status p2)"
expect_eq "GET through HAProxy" 200 "$(status_of "http://127.0.0.1:$HA/photo.jpg")"

FILES=(photo.jpg notes.txt tone.mp3 sub/clip.avi "my clip.mp4")
$PY "$TT_HERE/loadgen.py" "127.0.0.1:$HA" "$TT_MEDIA" "$W/load.txt" "$W/load.stop" "$WORKERS" "${FILES[@]}" \
    2>"$W/loadgen.log" &
LOAD=$!
track "$LOAD" loadgen
T_LOAD=$(now)
wait_until 200 0.1 log_has "$W/load.txt" " ok " 20 || die "the load did not get going: $(tail -3 "$W/load.txt")"
expect_true "both p serve the load" log_has "$W/p1.log" "access client=" 3
expect_true "p2 serves the load" log_has "$W/p2.log" "access client=" 3

# ---------------------------------------------------------------- rolling restart

# restart LABEL NEWLABEL SERVER START-FUNCTION: SIGTERM, wait for the exit,
# start again on the same ports, wait until c's tunnel is back, HAProxy says
# UP and the new p served some of the load.
restart() {
    local old=$1 new=$2 srv=$3 start=$4 pid
    pid=$(pid_of "$old")
    kill -TERM "$pid"
    wait_until 300 0.1 gone "$pid" || die "$old did not exit within 30 s of SIGTERM"
    wait "$pid" 2>/dev/null
    note "$old exited after SIGTERM; starting $new"
    "$start" "$new"
    wait_until 400 0.1 log_has "$W/$new.log" "tunnel up name=media" || die "c did not come back to $new"
    wait_until 100 0.1 ha_up "$srv" || die "HAProxy does not see $new up: $(ha_status "$srv")"
    wait_until 200 0.1 log_has "$W/$new.log" "access client=.*status=200" 5 ||
        die "$new served no load after its restart"
}

T_RR0=$(now)
restart p1 p1b p1 p1
restart p2 p2b p2 p2
sleep 1
T_RR1=$(now)
expect_true "p1 logged its drain-delay" log_has "$W/p1.log" "/ready says 503 for $DELAY s"
expect_true "p1 drained" log_has "$W/p1.log" "draining \(grace"
expect_true "p2 drained" log_has "$W/p2.log" "draining \(grace"
RR_OK=$(load_count ok "$T_RR0" "$T_RR1")
RR_FAIL=$(load_count fail "$T_LOAD" "$T_RR1")
note "rolling restart: $RR_OK requests ok over $(awk -v a="$T_RR0" -v b="$T_RR1" 'BEGIN { printf "%.1f", b - a }') s, $RR_FAIL failed from the load's start"
expect_eq "no request failed through the rolling restart" 0 "$RR_FAIL"
[ "$RR_FAIL" = 0 ] || grep ' fail ' "$W/load.txt" | head -10 | sed 's/^/    /'
expect_true "at least 50 requests ok during the rolling restart ($RR_OK)" [ "$RR_OK" -ge 50 ]
expect_true "p1 served after its restart ($(access_count p1b) requests)" [ "$(access_count p1b)" -ge 5 ]
expect_true "p2 served after its restart ($(access_count p2b) requests)" [ "$(access_count p2b)" -ge 5 ]

# ---------------------------------------------------------------- kill -9

# Under load, on both p: kill p1b while it is taking requests (it served
# one since we looked).
served_more() { [ "$(access_count "$1")" -gt "$2" ]; }
wait_until 100 0.1 served_more p1b "$(access_count p1b)"
downs=$(count_lines "$W/c.log" "tunnel down \(tunnel 1\)")
T_KILL=$(now)
kill -9 "$(pid_of p1b)"
wait_until 50 0.1 log_has "$W/c.log" "tunnel down \(tunnel 1\)" $((downs + 1)) || bad "c did not notice p1b's end"
wait_until 100 0.1 ha_down p1 || bad "HAProxy did not mark p1 down"
sleep 3
T_K1=$(now)
K_FAIL=$(load_count fail "$T_KILL" "$T_K1")
K_OK=$(load_count ok "$T_KILL" "$T_K1")
# The last failure, and the first success after it, in seconds from the kill.
LAST_FAIL=$(awk -v a="$T_KILL" -v b="$T_K1" '$2 == "fail" && $1 >= a && $1 < b { t = $1 } END { if (t) printf "%.3f", t - a; else print "none" }' "$W/load.txt")
RECOVER=$(awk -v a="$T_KILL" -v b="$T_K1" -v lf="$LAST_FAIL" '
    $1 >= a && $1 < b && $2 == "ok" && (lf == "none" || $1 - a > lf + 0) { printf "%.3f", $1 - a; exit }' "$W/load.txt")
OK_AFTER=$(awk -v a="$T_KILL" -v b="$T_K1" -v lf="$LAST_FAIL" '
    $1 >= a && $1 < b && $2 == "ok" && (lf == "none" || $1 - a > lf + 0) { n++ } END { print n + 0 }' "$W/load.txt")
note "kill -9 of p1b: $K_FAIL failed, $K_OK ok in the next $(awk -v a="$T_KILL" -v b="$T_K1" 'BEGIN { printf "%.1f", b - a }') s; last failure at +${LAST_FAIL} s, first success after it at +${RECOVER:-never} s"
[ "$K_FAIL" = 0 ] || grep ' fail ' "$W/load.txt" | awk -v a="$T_KILL" '$1 >= a' | head -10 | sed 's/^/    /'
expect_le "failures after kill -9: only the requests in flight (one per worker)" "$WORKERS" "$K_FAIL"
PER_WORKER=$(awk -v a="$T_KILL" -v b="$T_K1" '$2 == "fail" && $1 >= a && $1 < b { n[$3]++ } END { m = 0; for (w in n) if (n[w] > m) m = n[w]; print m }' "$W/load.txt")
expect_le "no worker failed twice after the kill" 1 "$PER_WORKER"
# 10 health-check intervals: generous on a busy machine, the failures are
# the requests cut at the kill itself.
if [ "$LAST_FAIL" != none ]; then
    expect_true "the last failure is within 2 s of the kill (+$LAST_FAIL s)" awk -v t="$LAST_FAIL" 'BEGIN { exit !(t <= 2.0) }'
fi
expect_true "requests succeed after the last failure ($OK_AFTER)" [ "$OK_AFTER" -ge 10 ]

p1 p1c
wait_until 400 0.1 log_has "$W/p1c.log" "tunnel up name=media" || bad "c did not come back to p1c"
wait_until 100 0.1 ha_up p1 || bad "HAProxy does not see p1c up: $(ha_status p1)"
wait_until 200 0.1 log_has "$W/p1c.log" "access client=.*status=200" 5 || bad "p1c served no load"
T_END=$(now)
expect_eq "no request failed after p1c started" 0 "$(load_count fail "$T_K1" "$T_END")"

touch "$W/load.stop"
wait_until 300 0.1 gone "$LOAD" || stop_pid "$LOAD"
TOTAL_OK=$(count_lines "$W/load.txt" " ok ")
TOTAL_FAIL=$(count_lines "$W/load.txt" " fail ")
note "whole run: $TOTAL_OK requests ok, $TOTAL_FAIL failed (p1 $(access_count p1), p2 $(access_count p2), p1b $(access_count p1b), p2b $(access_count p2b), p1c $(access_count p1c) served)"
expect_eq "total failures are the kill's" "$K_FAIL" "$TOTAL_FAIL"
finish
