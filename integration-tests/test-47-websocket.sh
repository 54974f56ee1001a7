#!/usr/bin/env bash
# WebSocket through tether (RFC 6455 on HTTP/1.1, RFC 8441 on HTTP/2), with
# npm's ws as app and client (integration-tests/ws), node's http2, a raw
# Python socket and headless Chromium:
#   names: media -> c --upstream http:// (ws/app.js), other -> c --upstream
#   h2c:// (ws/h2app.js, with and then without extended CONNECT), spare ->
#   c --root, laptop -> c --local-listen --local-to media (calls=media).
#  - p's HTTP front and its HTTPS front (HTTP/1.1 by ALPN), each: text and
#    binary echo, the subprotocol, permessage-deflate negotiated end to end,
#    16 MiB each way (sha256), ping/pong, close codes both ways (4001 from
#    the app, 4002 from the client, as the other side saw them), 1,000
#    sockets at once, the app's 403 passed on; raw bytes that are no frames
#    (to an h2c app that pipes them back) with p's Sec-WebSocket-Accept
#    checked by hand, and half-close (FIN -> END_STREAM -> FIN);
#  - a slow reader while the app pushes 200 MiB: the app is held back and
#    p's and c's RSS stay bounded; the access lines;
#  - HTTP/2: node's http2 client does extended CONNECT on the h2c front and
#    the h2 (ALPN) front, to the HTTP/1.1 app (c does the app's handshake)
#    and to the h2c app; 8 MiB raw with END_STREAM both ways; Chromium opens
#    a WebSocket on the HTTP front (HTTP/1.1 Upgrade) and on the HTTPS
#    front, where p's log shows it went over h2 (the page itself came over
#    h2, so Chromium has an h2 connection with ENABLE_CONNECT_PROTOCOL);
#  - refusals: version 8 -> 426 naming 13, no key or a bad one -> 400,
#    Upgrade: foo -> 501, a fragment in the target -> 400, the app's 200
#    (no 101) -> 502, the app's 304 passed on with its fields, Upgrade: h2c ignored, --root -> 501, an h2c app
#    without extended CONNECT -> 502 saying so;
#  - c --local-listen: a local ws client reaches media's app through p;
#  - c killed: the clients' sockets end within seconds (HTTP/1.1 and h2);
#  - p --client-idle 1 does not cut quiet sockets (HTTP/1.1 and h2) and
#    p --stream-idle 5 closes them (end=stream-idle; h2: a reset).
# 1,000 sockets need about 2,100 descriptors in c and the node processes
# (p raises its own soft limit; --max-clients defaults to 3/4 of it): the
# soft limit is raised to the hard one here.
source "$(dirname "$0")/lib.sh"

WSD=$TT_HERE/ws
[ -d "$WSD/node_modules/ws" ] || die "npm's ws is missing: 'make deps' runs npm ci in $WSD"
CLIENT="node $WSD/client.js"
MANY=1000
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge 2200 ] ||
    die "the open-file hard limit is $hard: $MANY sockets at once need about 2,200"
ulimit -n "$hard" 2>/dev/null || ulimit -n 65536 || die "cannot raise the open-file limit"

start_node_app() { # LABEL SCRIPT [args] -> $APP_PORT
    local label=$1 script=$2
    shift 2
    rm -f "$W/$label.port"
    node "$WSD/$script" "$W/$label.port" "$@" >>"$W/$label.log" 2>&1 &
    track "$!" "$label"
    wait_until 100 0.1 test -s "$W/$label.port" || die "$label did not start"
    APP_PORT=$(cat "$W/$label.port")
}
start_cw() { # LABEL NAME [c flags...]: c as NAME with this test's tokens
    local label=$1 name=$2
    shift 2
    "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name "$name" --token-file "$W/token.$name" \
        --fingerprint "$TT_FPR" "$@" >>"$W/$label.out" 2>>"$W/$label.log" &
    track "$!" "$label"
}
checks() { # WHAT OUTPUT_FILE CHECK-NAMES...: each must have an "ok NAME" line
    local what=$1 f=$2 c
    shift 2
    for c in "$@"; do
        if grep -q "^ok $c " "$f"; then good "$what: $(grep "^ok $c " "$f" | cut -d' ' -f2-)"
        else bad "$what: $c: $(grep "^FAIL $c " "$f" || echo 'no result')"; fi
    done
}
expect_ge() { # WHAT MIN SEEN
    if [ "$3" -ge "$2" ]; then good "$1 ($3 >= $2)"; else bad "$1: expected at least $2, saw $3"; fi
}
# The line of FILE matching every extended regexp given (in any order).
line_with() { # FILE REGEX...
    local f=$1
    shift
    awk -v n=$# 'BEGIN { for (i = 1; i <= n; i++) re[i] = ARGV[i + 1]; ARGC = 2 }
        { ok = 1; for (i = 1; i <= n; i++) if ($0 !~ re[i]) ok = 0; if (ok) { print; exit } }' "$f" "$@"
}

# This test's tokens: the shared names, and laptop, which may call media.
cp "$TT_TOKENS" "$W/tokens"
for n in media other spare; do cp "$TT_SHARED/token.$n" "$W/token.$n"; done
openssl rand -hex 24 | tr -d '\n' >"$W/token.laptop"
echo "laptop $(cat "$W/token.laptop") calls=media" >>"$W/tokens"
chmod 600 "$W/tokens" "$W"/token.*

read -r HTTPS_PORT LOCAL_PORT < <(free_ports 2)
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$W/tokens" --domain test --default media \
    --https-listen "127.0.0.1:$HTTPS_PORT"
start_node_app app app.js
WS_APP=$APP_PORT
start_cw c media --upstream "http://127.0.0.1:$WS_APP"
start_node_app h2app h2app.js connect
start_cw c2 other --upstream "h2c://127.0.0.1:$APP_PORT"
start_cw c3 spare --root "$TT_MEDIA"
start_cw c4 laptop --local-listen "127.0.0.1:$LOCAL_PORT" --local-to media
wait_c_up c && wait_c_up c2 && wait_c_up c3 || die "an origin did not come up"
wait_until 150 0.1 log_has "$W/c4.log" "forward link up to" || die "laptop's forward link did not come up"

# --- a slow reader, first, while p and c are small: the app pushes 200 MiB
# while the client reads nothing for 3 s (under p's --client-idle, 60 s
# here: a reader that takes no byte for that long is cut, by design).
p_pid=$(pid_of p) c_pid=$(pid_of c)
p0=$(rss_kib "$p_pid") c0=$(rss_kib "$c_pid")
$CLIENT "ws://127.0.0.1:$HTTP_PORT" slow=200:3000 >"$W/slow.res" 2>&1 &
slow=$!
track "$slow" slow-client
wait_until 100 0.1 grep -q paused "$W/slow.res" || bad "the slow reader did not start"
pmax=0 cmax=0 samples=0
for ((samples = 0; samples < 600; samples++)); do # the pause and the 200 MiB after it
    p1=$(rss_kib "$p_pid") c1=$(rss_kib "$c_pid")
    [ "$p1" -gt "$pmax" ] && pmax=$p1
    [ "$c1" -gt "$cmax" ] && cmax=$c1
    alive "$slow" || break
    sleep 0.1
done
wait "$slow"
checks "slow reader" "$W/slow.res" slow
expect_ge "RSS sampled while the reader paused 3 s (about 10 a second)" 5 "$samples"
pushed=$(awk '$1 == "progress" { print $2 }' "$W/slow.res")
expect_le "what the app could write (bytes) while the reader paused, of 200 MiB" $((100 << 20)) "${pushed:-999999999999}"
expect_le "p's RSS growth (KiB) with a reader stalled on 200 MiB" $((100 * 1024)) $((pmax - p0))
expect_le "c's RSS growth (KiB) with a reader stalled on 200 MiB" $((100 * 1024)) $((cmax - c0))

# --- the HTTP front and the HTTPS front (HTTP/1.1 by ALPN: ws offers no h2)
ALL=(echo proto deflate big ping close closeby "many=$MANY" refused)
$CLIENT "ws://127.0.0.1:$HTTP_PORT" "${ALL[@]}" >"$W/h1.res" 2>&1
checks "HTTP front" "$W/h1.res" "${ALL[@]%%=*}"
$CLIENT "wss://127.0.0.1:$HTTPS_PORT" "${ALL[@]}" >"$W/tls.res" 2>&1
checks "HTTPS front" "$W/tls.res" "${ALL[@]%%=*}"
expect_eq "the app saw the client's close code and reason, once per front" 2 \
    "$(count_lines "$W/app.log" '^app saw close 4002 client says bye$')"

log_has "$W/p.log" "access client=127\.0\.0\.1:[0-9]+ method=GET path=/echo status=101 bytes=[1-9][0-9]* req_bytes=[1-9][0-9]* dur_ms=[0-9]+ origin=media upgrade=websocket end=ok$" &&
    good "the access line: GET, status=101, bytes both ways, duration, upgrade=websocket end=ok" ||
    bad "no WebSocket access line as expected in p.log"
# The 16 MiB echo: at least 16 MiB each way in one line.
big=$(awk '/method=GET path=\/echo status=101 .* upgrade=websocket end=ok$/ && !/tls=1/ {
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        if (v["bytes"] >= 16777216 && v["req_bytes"] >= 16777216) n++ } END { print n + 0 }' "$W/p.log")
expect_eq "one access line counts the 16 MiB each way (HTTP front)" 1 "$big"
# p logs a socket when it has seen its end, which may be just after the
# client has exited; a client that exits before the close handshake is done
# (the 1,000 at once, on a busy machine) is logged end=client-gone, which is
# a whole line all the same.
wait_until 200 0.1 log_has "$W/p.log" 'path=/echo status=101 .*upgrade=websocket end=' $((2 * MANY))
expect_ge "an access line per socket: the $MANY of each front and more" $((2 * MANY)) \
    "$(count_lines "$W/p.log" 'path=/echo status=101 .*upgrade=websocket end=')"
log_has "$W/p.log" "method=GET path=/echo status=101 .* tls=1 upgrade=websocket end=ok$" &&
    good "HTTPS: access line with tls=1" || bad "no HTTPS WebSocket access line"
log_has "$W/p.log" "method=GET path=/refuse status=403 .*upgrade=websocket" &&
    good "the refusal's access line says 403" || bad "no access line for the refused upgrade"

# --- bytes that are no WebSocket frames, to the h2c app's pipe: opaque,
# with p's Sec-WebSocket-Accept checked by hand, and half-close.
$PY "$WSD/rawws.py" 127.0.0.1 "$HTTP_PORT" other.test /raw 4194304 >"$W/raw.res" 2>&1
checks "raw bytes, HTTP front" "$W/raw.res" handshake raw
$PY "$WSD/rawws.py" 127.0.0.1 "$HTTPS_PORT" other.test /raw 4194304 tls >"$W/rawtls.res" 2>&1
checks "raw bytes, HTTPS front" "$W/rawtls.res" handshake raw

# --- HTTP/2: extended CONNECT from node's http2 client
h2() { # WHAT EXPECTED BASE PATH AUTHORITY [opts]
    local what=$1 want=$2
    shift 2
    node "$WSD/h2ws.js" "$@" >"$W/h2.res" 2>&1
    expect_eq "$what" "$want" "$(paste -sd'|' "$W/h2.res")"
}
h2 "h2c front, extended CONNECT to the HTTP/1.1 app" "status 200|echo over h2" \
    "http://127.0.0.1:$HTTP_PORT" /echo -
h2 "h2c front, extended CONNECT to the h2c app" "status 200|echo over h2" \
    "http://127.0.0.1:$HTTP_PORT" /echo other.test
h2 "h2 front (ALPN), extended CONNECT to the HTTP/1.1 app" "status 200|echo over h2" \
    "https://127.0.0.1:$HTTPS_PORT" /echo media.test
h2 "h2 front (ALPN), extended CONNECT to the h2c app" "status 200|echo over h2" \
    "https://127.0.0.1:$HTTPS_PORT" /echo other.test
h2 "h2c front, 8 MiB raw each way, END_STREAM both ways" "status 200|raw 8388608 same, ended" \
    "http://127.0.0.1:$HTTP_PORT" /raw other.test raw=8388608
h2 "h2c front, the app's 403 as the stream's answer" "status 403" \
    "http://127.0.0.1:$HTTP_PORT" /refuse media.test
log_has "$W/p.log" "method=CONNECT path=/echo status=200 .*origin=other proto=h2 upgrade=websocket end=" &&
    good "h2 access line: CONNECT, 200, proto=h2, upgrade=websocket" || bad "no h2 WebSocket access line"
log_has "$W/p.log" "method=CONNECT path=/echo status=200 .*origin=media proto=h2 tls=1 upgrade=websocket end=" &&
    good "h2 (TLS) access line: proto=h2 tls=1" || bad "no h2-over-TLS WebSocket access line"

# --- Chromium on both fronts: the page (over h2 on HTTPS) echoes a text
# and a 64 KiB binary message.
for front in "http://127.0.0.1:$HTTP_PORT" "https://127.0.0.1:$HTTPS_PORT"; do
    TT_PIDS_FILE=$W/pids TT_BROWSER_DEADLINE=40 timeout 60 node "$TT_HERE/browser.js" websocket \
        "$front/page.html" "$W" >"$W/chromium.res" 2>&1
    expect_eq "Chromium's WebSocket through $front" "echo:from chromium binary:65536 same" \
        "$(awk -F'\t' '$1 == "ws_result" { print $2 }' "$W/chromium.res")"
done
log_has "$W/p.log" 'method=GET path=/echo\?from=chromium status=101 .* upgrade=websocket end=ok$' &&
    good "Chromium on the HTTP front: HTTP/1.1 Upgrade, 101" || bad "no access line for Chromium's HTTP/1.1 WebSocket"
log_has "$W/p.log" 'method=CONNECT path=/echo\?from=chromium status=200 .*proto=h2 tls=1 upgrade=websocket end=ok$' &&
    good "Chromium's HTTPS WebSocket went over HTTP/2 (RFC 8441 extended CONNECT)" ||
    bad "Chromium's HTTPS WebSocket did not use extended CONNECT over h2: $(grep 'from=chromium' "$W/p.log" | tail -1)"

# --- refusals
hs() { # HOST VERSION KEY UPGRADE -> "status" of a hand-made handshake
    curl -s -o "$W/hs.body" -w '%{http_code}' --max-time 5 --http1.1 -H "Host: $1" \
        -H "Connection: Upgrade" -H "Upgrade: $4" -H "Sec-WebSocket-Version: $2" \
        ${3:+-H "Sec-WebSocket-Key: $3"} "http://127.0.0.1:$HTTP_PORT/echo" -D "$W/hs.head"
}
KEY=dGhlIHNhbXBsZSBub25jZQ==
expect_eq "version 8: 426" 426 "$(hs media.test 8 $KEY websocket)"
expect_eq "... naming version 13" 13 "$(header_of "$W/hs.head" sec-websocket-version)"
expect_eq "no Sec-WebSocket-Key: 400" 400 "$(hs media.test 13 '' websocket)"
expect_eq "a Sec-WebSocket-Key of 8 bytes, not 16: 400" 400 "$(hs media.test 13 c2hvcnRrZXk= websocket)"
expect_eq "Upgrade: foo: 501" 501 "$(hs media.test 13 $KEY foo)"
expect_match "... saying only WebSocket is carried" 'only WebSocket' "$(cat "$W/hs.body")"
hs_to() { # HOST PATH -> "status" of a valid handshake to PATH
    curl -s -o "$W/hs.body" -w '%{http_code}' --max-time 5 --http1.1 -H "Host: $1" \
        -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
        -H "Sec-WebSocket-Key: $KEY" "http://127.0.0.1:$HTTP_PORT$2" -D "$W/hs.head"
}
expect_eq "an app's 200 to the upgrade (no 101): 502, not an open socket" 502 "$(hs_to media.test /ok200)"
expect_match "... saying the app did not switch" '200' "$(cat "$W/hs.body")"
expect_eq "an app's 304 refusal is passed on" 304 "$(hs_to media.test /refuse304)"
expect_eq "... with the app's own field" yes "$(header_of "$W/hs.head" x-refused)"
printf 'GET /echo#frag HTTP/1.1\r\nHost: media.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n' "$KEY" |
    $RAW req 127.0.0.1 "$HTTP_PORT" --idle 3 >"$W/frag.res"
expect_eq "an upgrade whose target has a fragment: 400 (RFC 9112 §3.2)" "STATUS 400" "$(grep -m1 '^STATUS' "$W/frag.res")"
expect_eq "a WebSocket to --root: 501" 501 "$(hs spare.test 13 $KEY websocket)"
code=$(curl -s -o "$W/h2c.body" -w '%{http_code} %{http_version}' --http1.1 -H "Connection: Upgrade, HTTP2-Settings" \
    -H "Upgrade: h2c" -H "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA" "http://127.0.0.1:$HTTP_PORT/page.html")
expect_eq "Upgrade: h2c is ignored: the page, over HTTP/1.1" "200 1.1" "$code"
expect_match "... the app's page itself" 'from=chromium' "$(cat "$W/h2c.body")"

# --- c --local-listen: a local ws client, through laptop's forward link and
# p, to media's app.
$CLIENT "ws://127.0.0.1:$LOCAL_PORT" echo big close >"$W/local.res" 2>&1
checks "c --local-listen --local-to media" "$W/local.res" echo big close
# c is p's HTTP/2 client on the forward link: the socket is an extended
# CONNECT there, whatever the local client spoke.
line=$(line_with "$W/p.log" 'method=CONNECT path=/echo status=200 .*origin=media' 'upgrade=websocket' 'caller=laptop' 'end=ok$')
[ -n "$line" ] && good "p's access line: the socket from laptop (CONNECT, 200, caller=laptop)" ||
    bad "no access line for laptop's WebSocket: $(grep 'caller=laptop' "$W/p.log" | tail -1)"

# An h2c app that does not offer extended CONNECT: 502 saying so.
stop_one c2
start_node_app h2plain h2app.js
start_cw c2b other --upstream "h2c://127.0.0.1:$APP_PORT"
wait_c_up c2b || die "c2b did not come up"
expect_eq "an h2c app without extended CONNECT: 502" 502 "$(hs other.test 13 $KEY websocket)"
expect_match "... saying why" 'SETTINGS_ENABLE_CONNECT_PROTOCOL' "$(cat "$W/hs.body")"

# --- c killed mid-socket: the client's socket ends within seconds.
$CLIENT "ws://127.0.0.1:$HTTP_PORT" wait >"$W/wait.res" 2>&1 &
waiter=$!
track "$waiter" waiter
node "$WSD/h2ws.js" "https://127.0.0.1:$HTTPS_PORT" /echo media.test wait=1 >"$W/wait2.res" 2>&1 &
waiter2=$!
track "$waiter2" waiter-h2
wait_until 50 0.1 grep -q opened "$W/wait.res" || bad "the waiting client did not open"
wait_until 50 0.1 grep -q "status 200" "$W/wait2.res" || bad "the waiting h2 client did not open"
cpid=$(pid_of c)
{ kill -9 "$cpid"; wait "$cpid"; } 2>/dev/null # without bash's "Killed" notice
wait_until 100 0.1 grep -q "^ok wait" "$W/wait.res"
checks "c killed (kill -9)" "$W/wait.res" wait
wait_until 100 0.1 grep -q "after" "$W/wait2.res"
expect_match "c killed (kill -9): the h2 (TLS) client's stream ends too" '^status 200[|](reset [0-9]+|ended) after [0-9]+ ms$' \
    "$(paste -sd'|' "$W/wait2.res")"
stop_pid "$waiter"
stop_pid "$waiter2"

# --- p --client-idle 1 --stream-idle 5 (c comes back to a new p): two quiet
# sockets outlive --client-idle; a third, left quiet, is closed by p.
start_cw cb media --upstream "http://127.0.0.1:$WS_APP"
stop_one p
start_p p2 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$W/tokens" --domain test --default media \
    --client-idle 1 --stream-idle 5
wait_until 150 0.1 log_has "$W/p2.log" "tunnel up name=media" || die "c did not reach the new p"
$CLIENT "ws://127.0.0.1:$HTTP_PORT" quiet=2500 >"$W/quiet.res" 2>&1 &
q1=$!
node "$WSD/h2ws.js" "http://127.0.0.1:$HTTP_PORT" /echo - quiet=2500 >"$W/quiet2.res" 2>&1 &
q2=$!
$CLIENT "ws://127.0.0.1:$HTTP_PORT" wait >"$W/idle.res" 2>&1 &
q3=$!
node "$WSD/h2ws.js" "http://127.0.0.1:$HTTP_PORT" /echo - wait=1 >"$W/idle2.res" 2>&1 &
q4=$!
track "$q1" quiet-h1
track "$q2" quiet-h2
track "$q3" idle-waiter
track "$q4" idle-waiter-h2
wait "$q1" "$q2"
checks "--client-idle 1, HTTP/1.1" "$W/quiet.res" quiet
expect_eq "--client-idle 1, h2c: a quiet extended CONNECT stream stays" "status 200|echo over h2" \
    "$(paste -sd'|' "$W/quiet2.res")"
wait_until 150 0.1 grep -q "^ok wait" "$W/idle.res"
checks "--stream-idle 5" "$W/idle.res" wait
expect_match "... closed by p, not by the client" 'close 1006' "$(grep '^ok wait' "$W/idle.res")"
wait_until 150 0.1 grep -q "after" "$W/idle2.res"
expect_match "--stream-idle 5, h2c: the quiet stream is reset by p" '^status 200[|]reset [0-9]+ after [0-9]+ ms$' \
    "$(paste -sd'|' "$W/idle2.res")"
expect_eq "access lines with end=stream-idle: the HTTP/1.1 socket and the h2 stream" 2 \
    "$(count_lines "$W/p2.log" "upgrade=websocket end=stream-idle$")"
finish
