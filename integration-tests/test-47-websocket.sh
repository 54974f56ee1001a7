#!/usr/bin/env bash
# WebSocket through tether (RFC 6455 on HTTP/1.1, RFC 8441 on HTTP/2), with
# npm's ws as app and client (integration-tests/ws), node's http2 and
# headless Chromium:
#   names: media -> c --upstream http:// (ws/app.js), other -> c --upstream
#   h2c:// (ws/h2app.js, with and then without extended CONNECT), spare ->
#   c --root.
#  - p's HTTP front: text and binary echo, the subprotocol, 16 MiB each way,
#    ping/pong, close code and reason, 1,000 sockets at once, the app's 403
#    passed on, a quiet socket outliving --client-idle, a slow reader while
#    the app pushes 128 MiB (p's and c's RSS bounded), the access line;
#  - p's HTTPS front (HTTP/1.1 by ALPN) the same basics;
#  - HTTP/2: node's http2 client does extended CONNECT on the h2c front;
#    Chromium opens a WebSocket on the HTTP front (HTTP/1.1 Upgrade) and on
#    the HTTPS front, where p's log shows it went over h2;
#  - refusals: version 8 -> 426 naming 13, no key -> 400, Upgrade: foo ->
#    501, Upgrade: h2c ignored, --root -> 501, an h2c app without extended
#    CONNECT -> 502 saying so;
#  - c killed: the client's socket ends within seconds;
#  - p --stream-idle: a quiet socket is closed (end=stream-idle).
source "$(dirname "$0")/lib.sh"

WSD=$TT_HERE/ws
[ -d "$WSD/node_modules/ws" ] || die "npm's ws is missing: 'make deps' runs npm ci in $WSD"
CLIENT="node $WSD/client.js"

start_node_app() { # LABEL SCRIPT [args] -> $APP_PORT
    local label=$1 script=$2
    shift 2
    rm -f "$W/$label.port"
    node "$WSD/$script" "$W/$label.port" "$@" >>"$W/$label.log" 2>&1 &
    track "$!" "$label"
    wait_until 100 0.1 test -s "$W/$label.port" || die "$label did not start"
    APP_PORT=$(cat "$W/$label.port")
}
start_c_up() { # LABEL NAME URL
    "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name "$2" --token-file "$TT_SHARED/token.$2" \
        --fingerprint "$TT_FPR" --upstream "$3" >>"$W/$1.out" 2>>"$W/$1.log" &
    track "$!" "$1"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
checks() { # WHAT OUTPUT_FILE CHECK-NAMES...: each must have an "ok NAME" line
    local what=$1 f=$2 c
    shift 2
    for c in "$@"; do
        if grep -q "^ok $c " "$f"; then good "$what: $(grep "^ok $c " "$f" | cut -d' ' -f2-)"
        else bad "$what: $c: $(grep "FAIL $c" "$f" || echo 'no result')"; fi
    done
}

read -r HTTPS_PORT < <(free_ports 1)
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --domain test --default media \
    --https-listen "127.0.0.1:$HTTPS_PORT" --client-idle 2
start_node_app app app.js
WS_APP=$APP_PORT
start_c_up c media "http://127.0.0.1:$WS_APP"
start_node_app h2app h2app.js connect
start_c_up c2 other "h2c://127.0.0.1:$APP_PORT"
start_c c3 spare "$TT_MEDIA"
wait_c_up c && wait_c_up c2 && wait_c_up c3 || die "an origin did not come up"
WS=ws://127.0.0.1:$HTTP_PORT

# --- the HTTP front
$CLIENT "$WS" echo proto big ping close many=1000 refused quiet=3500 >"$W/h1.res" 2>&1
checks "HTTP/1.1 front" "$W/h1.res" echo proto big ping close many refused quiet
log_has "$W/p.log" "access client=127\.0\.0\.1:[0-9]+ method=GET path=/echo status=101 bytes=[1-9][0-9]* req_bytes=[1-9][0-9]* dur_ms=[0-9]+ origin=media upgrade=websocket end=ok" &&
    good "the access line: status=101, bytes both ways, upgrade=websocket" ||
    bad "no WebSocket access line as expected in p.log"
log_has "$W/p.log" "status=403 .*upgrade=websocket" && good "the refusal's access line says 403" ||
    bad "no access line for the refused upgrade"

# A slow reader: the app pushes 128 MiB while the client reads nothing for
# 1.5 s (under --client-idle 2: a reader that takes nothing for that long
# is cut, by design).
p_pid=$(pid_of p) c_pid=$(pid_of c)
p0=$(rss_kb "$p_pid") c0=$(rss_kb "$c_pid")
$CLIENT "$WS" slow=128:1500 >"$W/slow.res" 2>&1 &
slow=$!
track "$slow" slow-client
wait_until 50 0.1 grep -q paused "$W/slow.res"
pmax=0 cmax=0
for i in $(seq 1 30); do
    p1=$(rss_kb "$p_pid") c1=$(rss_kb "$c_pid")
    [ "$p1" -gt "$pmax" ] && pmax=$p1
    [ "$c1" -gt "$cmax" ] && cmax=$c1
    sleep 0.1
done
wait "$slow"
checks "slow reader" "$W/slow.res" slow
expect_le "p's RSS growth (KiB) while a reader stalls on 128 MiB" $((100 * 1024)) $((pmax - p0))
expect_le "c's RSS growth (KiB) while a reader stalls on 128 MiB" $((100 * 1024)) $((cmax - c0))

# --- the HTTPS front (HTTP/1.1 by ALPN: ws offers no h2)
$CLIENT "wss://127.0.0.1:$HTTPS_PORT" echo big close >"$W/tls.res" 2>&1
checks "HTTPS front" "$W/tls.res" echo big close
log_has "$W/p.log" "method=GET path=/echo status=101 .*tls=1 upgrade=websocket end=ok" &&
    good "HTTPS: access line with tls=1" || bad "no HTTPS WebSocket access line"

# --- HTTP/2: extended CONNECT from node's http2 client, to an HTTP/1.1 app
# (c does the app's handshake) and to an h2c app (c sends it on).
node "$WSD/h2ws.js" "http://127.0.0.1:$HTTP_PORT" /echo >"$W/h2.res" 2>&1
expect_eq "h2c front, extended CONNECT to the HTTP/1.1 app" "status 200|echo over h2" "$(paste -sd'|' "$W/h2.res")"
node "$WSD/h2ws.js" "http://127.0.0.1:$HTTP_PORT" /echo other.test >"$W/h2app.res" 2>&1
expect_eq "h2c front, extended CONNECT to an h2c app" "status 200|echo over h2" "$(paste -sd'|' "$W/h2app.res")"
log_has "$W/p.log" "method=CONNECT path=/echo status=200 .*origin=other proto=h2 upgrade=websocket end=" &&
    good "h2 access line: CONNECT, 200, proto=h2" || bad "no h2 WebSocket access line"

# --- Chromium on both fronts
for front in "http://127.0.0.1:$HTTP_PORT" "https://127.0.0.1:$HTTPS_PORT"; do
    TT_PIDS_FILE=$W/pids TT_BROWSER_DEADLINE=40 timeout 60 node "$TT_HERE/browser.js" websocket \
        "$front/page.html" "$W" >"$W/chromium.res" 2>&1
    expect_eq "Chromium's WebSocket through $front" "echo:from chromium" \
        "$(awk -F'\t' '$1 == "ws_result" { print $2 }' "$W/chromium.res")"
done
log_has "$W/p.log" "method=CONNECT path=/echo status=200 .*proto=h2 tls=1 upgrade=websocket end=ok" &&
    good "Chromium's HTTPS WebSocket went over HTTP/2 (RFC 8441)" ||
    bad "Chromium's HTTPS WebSocket did not use extended CONNECT over h2"

# --- refusals
hs() { # HOST VERSION KEY UPGRADE -> "status" of a hand-made handshake
    curl -s -o "$W/hs.body" -w '%{http_code}' --max-time 5 --http1.1 -H "Host: $1" \
        -H "Connection: Upgrade" -H "Upgrade: $4" -H "Sec-WebSocket-Version: $2" \
        ${3:+-H "Sec-WebSocket-Key: $3"} "http://127.0.0.1:$HTTP_PORT/echo" -D "$W/hs.head"
}
KEY=dGhlIHNhbXBsZSBub25jZQ==
expect_eq "version 8: 426" 426 "$(hs media.test 8 $KEY websocket)"
expect_match "... naming version 13" '^sec-websocket-version: 13' "$(tr -d '\r' <"$W/hs.head" | grep -i '^sec-websocket-version')"
expect_eq "no Sec-WebSocket-Key: 400" 400 "$(hs media.test 13 '' websocket)"
expect_eq "Upgrade: foo: 501" 501 "$(hs media.test 13 $KEY foo)"
expect_match "... saying only WebSocket is carried" 'only WebSocket' "$(cat "$W/hs.body")"
expect_eq "a WebSocket to --root: 501" 501 "$(hs spare.test 13 $KEY websocket)"
code=$(curl -s -o "$W/h2c.body" -w '%{http_code}' --http1.1 -H "Connection: Upgrade, HTTP2-Settings" \
    -H "Upgrade: h2c" -H "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA" "http://127.0.0.1:$HTTP_PORT/page.html")
expect_eq "Upgrade: h2c is ignored: the page as HTTP/1.1" 200 "$code"

# An h2c app that does not offer extended CONNECT: 502 saying so.
stop_one c2
start_node_app h2plain h2app.js
start_c_up c2b other "h2c://127.0.0.1:$APP_PORT"
wait_c_up c2b || die "c2b did not come up"
expect_eq "an h2c app without extended CONNECT: 502" 502 "$(hs other.test 13 $KEY websocket)"
expect_match "... saying why" 'SETTINGS_ENABLE_CONNECT_PROTOCOL' "$(cat "$W/hs.body")"

# --- c killed mid-socket: the client's socket ends within seconds.
$CLIENT "$WS" wait >"$W/wait.res" 2>&1 &
waiter=$!
track "$waiter" waiter
wait_until 50 0.1 grep -q opened "$W/wait.res" || bad "the waiting client did not open"
kill -9 "$(pid_of c)"
wait_until 100 0.1 grep -q "^ok wait" "$W/wait.res"
checks "c killed" "$W/wait.res" wait
stop_pid "$waiter"

# --- p --stream-idle 2: a quiet socket is closed (c comes back to a new p).
start_c_up cb media "http://127.0.0.1:$WS_APP"
stop_one p
start_p p2 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --domain test --default media \
    --stream-idle 2
wait_until 150 0.1 log_has "$W/p2.log" "tunnel up name=media" || die "c did not reach the new p"
$CLIENT "$WS" wait >"$W/idle.res" 2>&1
checks "--stream-idle" "$W/idle.res" wait
expect_match "... closed by p, not by the client" 'close 1006' "$(cat "$W/idle.res")"
log_has "$W/p2.log" "upgrade=websocket end=stream-idle" && good "access line: end=stream-idle" ||
    bad "no end=stream-idle access line"
finish
