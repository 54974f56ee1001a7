#!/usr/bin/env bash
# The forward link: `c --local-listen` takes requests from local apps and
# sends each over a second TLS connection to p (c the HTTP/2 client there),
# which routes it as a call: to a `p --service NAME=URL`, else to the tunnel
# pool of that name (origin to origin), if the caller's tokens line allows
# it (calls=), marked `tether-caller: <caller>`.
#
#   media   c1 --root media                      (a tunnel)
#   laptop  c2 --local-listen L2 only            (calls media,echo,g,pyg,web)
#   pyg     c3 --upstream h2c:// grpcio server   (a tunnel)
#   web     c4 --upstream http:// header echo    (a tunnel)
#   nocalls c5 --local-listen L5 only            (no calls= column)
#   kiosk   c6 --local-listen L6 --local-to media (calls=*)
#   p --service echo=http:// header echo, --service g=h2c:// grpc-js server
#
# Checked, through the real binaries: media files fetched from c1 by an app
# on laptop's side with HTTP/1.1 and h2c (sha256 equal); 900 ranges at once
# from three h2c apps, twice, more than the link's 100 streams, so c queues them:
# each comes back with its own bytes; a p-side service sees tether-caller:
# laptop and never the app's forged Tether-Caller, nor does an origin called
# by laptop; a public client's Tether-Caller never reaches an origin
# (HTTP/1.1, h2c and HTTPS fronts); calls the tokens file does not allow
# get 403 naming caller and callee (a name outside calls=, a name without
# calls=); gRPC both ways over the forward link (grpcio client -> --service
# g (grpc-js); grpc-js client -> origin pyg (grpcio)) with the test-43
# cases; --local-to; the link redialled after p restarts; a c that only
# calls out serves nothing and holds no tunnel; p's access lines carry
# caller=NAME.
source "$(dirname "$0")/lib.sh"

source "$TT_HERE/grpc/lib.sh" # start_app, grpc_client, expect_checks, app_saw

# --- the tokens file of this test: its own names, with calls= columns
TOK=$W/tokens
{
    echo "# test-44 (NAME TOKEN [calls=...])"
    for n in media laptop pyg web nocalls kiosk; do
        t=$(openssl rand -hex 24)
        printf '%s' "$t" >"$W/token.$n"
        case $n in
        laptop) echo "$n $t calls=media,echo,g,pyg,web,ghost" ;;
        kiosk) echo "$n $t calls=*" ;;
        *) echo "$n $t" ;;
        esac
    done
} >"$TOK"
chmod 600 "$TOK" "$W"/token.*

start_cx() { # LABEL NAME [flags]: c as NAME with this test's token, no --root
    local label=$1 name=$2
    shift 2
    "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name "$name" --token-file "$W/token.$name" \
        --fingerprint "$TT_FPR" "$@" >>"$W/$label.out" 2>>"$W/$label.log" &
    track "$!" "$label"
}

wait_fw_up() { # LABEL [COUNT]: c LABEL's COUNT-th "forward link up"
    wait_until 150 0.1 log_has "$W/$1.log" "forward link up to" "${2:-1}" && return 0
    tail -5 "$W/$1.log"
    return 1
}

# A gRPC client (py|node) through TARGET with :authority AUTH.
client() { GRPC_CLIENT_TIMEOUT=60 grpc_client "$@"; } # py|node TARGET AUTH OUTFILE CASE...

# lfetch PORT HOST PATH [curl args]: a local app's request to c's
# --local-listen PORT with Host HOST -> body ${OUT:-$W/body}, head $W/hdrs,
# $CODE, $HVER (curl's http_version).
lfetch() {
    local port=$1 host=$2 path=$3 res
    shift 3
    rm -f "$W/hdrs"
    res=$(curl -s --max-time 30 -H "Host: $host" -D "$W/hdrs" -o "${OUT:-$W/body}" \
        -w '%{http_code} %{http_version}' "$@" "http://127.0.0.1:$port$path") || true
    touch "$W/hdrs"
    CODE=${res% *}
    HVER=${res#* }
}

# The tether-caller lines a header echo (upstream_app.py /headers) saw.
callers_in() { grep -ai '^tether-caller:' "$1" | tr -d '\r' | tr '\n' '|'; }

# --- the apps, then p with its services, then the c's
pick_ports
read -r L2 L5 L6 HTTPS_PORT < <(free_ports 4)
start_app echo echo
ECHO_PORT=$APP_PORT
start_app web-app echo
WEB_PORT=$APP_PORT
start_app nodeapp node
NODE_PORT=$APP_PORT
start_app pyapp py
PY_PORT=$APP_PORT

P_ARGS=(--cert "$TT_CERT" --key "$TT_KEY" --tokens "$TOK" --domain fwd.test
    --service "echo=http://127.0.0.1:$ECHO_PORT" --service "g=h2c://127.0.0.1:$NODE_PORT"
    --https-listen "127.0.0.1:$HTTPS_PORT")
start_p p "${P_ARGS[@]}"
expect_true "p logs its service echo" log_has "$W/p.log" "service echo: http://127.0.0.1:$ECHO_PORT"
expect_true "p logs its service g" log_has "$W/p.log" "service g: h2c://127.0.0.1:$NODE_PORT"

start_cx c1 media --root "$TT_MEDIA"
start_cx c2 laptop --local-listen "127.0.0.1:$L2"
start_cx c3 pyg --upstream "h2c://127.0.0.1:$PY_PORT"
start_cx c4 web --upstream "http://127.0.0.1:$WEB_PORT"
start_cx c5 nocalls --local-listen "127.0.0.1:$L5"
start_cx c6 kiosk --local-listen "127.0.0.1:$L6" --local-to media
for l in c1 c3 c4; do wait_c_up "$l" || die "$l did not log 'tunnel up'"; done
for l in c2 c5 c6; do wait_fw_up "$l" || die "$l did not log 'forward link up'"; done
good "three tunnels and three forward links are up"
expect_true "c2 listens for local calls" log_has "$W/c2.log" "listening for local calls on 127\.0\.0\.1:$L2"
expect_true "c6 listens for local calls, all to media" log_has "$W/c6.log" "listening for local calls on 127\.0\.0\.1:$L6, all to media"
expect_true "p logs laptop's forward link" log_has "$W/p.log" "forward link up name=laptop peer=127\.0\.0\.1:[0-9]+"

# --- 7. a c that only calls out serves nothing and holds no tunnel
expect_true "c2 (no --root/--upstream) says it serves nothing" log_has "$W/c2.log" "serving nothing \(calls out only\) as laptop"
expect_eq "c2 holds no tunnel: p has no 'tunnel up name=laptop'" 0 "$(count_lines "$W/p.log" 'tunnel up name=laptop ')"
expect_eq "... and c2 logs no 'tunnel up to'" 0 "$(count_lines "$W/c2.log" 'tunnel up to')"
expect_eq "a public request for laptop finds no origin: 503" 503 "$(status_of -H 'Host: laptop.fwd.test' "$(url /)")"

# --- 1. origin to origin: laptop's app fetches media files from c1
for f in photo.jpg "my clip.mp4"; do
    path=/$(q "$f")
    OUT=$W/got.h1 lfetch "$L2" media "$path"
    expect_eq "HTTP/1.1 via laptop's link: GET $f: 200" 200 "$CODE"
    expect_same_file "... the file of media (HTTP/1.1)" "$TT_MEDIA/$f" "$W/got.h1"
    OUT=$W/got.h2 lfetch "$L2" media "$path" --http2-prior-knowledge
    expect_eq "h2c via laptop's link: GET $f: 200 over HTTP/2" "200 2" "$CODE $HVER"
    expect_same_file "... the file of media (h2c)" "$TT_MEDIA/$f" "$W/got.h2"
done
# More streams at once than p's front allows on the link (100): c queues
# them, and each must still go with its own fields (a range of its own).
# Two rounds of three apps: the second also finds the link's HPACK table
# full (a queued request once went with another's fields, mostly then).
for round in 1 2; do
    many=()
    for i in 1 2 3; do
        timeout 40 node "$TT_HERE/h2many.js" "http://127.0.0.1:$L2" media /big-random.bin \
            "$TT_MEDIA/big-random.bin" 300 >"$W/many.$round.$i" 2>"$W/many.$round.$i.err" &
        many+=("$!")
        track "$!" "many-$round-$i"
    done
    wait "${many[@]}"
    for i in 1 2 3; do
        expect_eq "round $round, h2c app $i of 3, 300 ranges at once via laptop's link: each its own bytes" \
            '{"ok":300}' "$(cat "$W/many.$round.$i")$(head -c 300 "$W/many.$round.$i.err")"
    done
done
OUT=$W/got.port lfetch "$L2" media:8080 /photo.jpg
expect_eq "Host media:8080 calls media (the port is not part of the name)" 200 "$CODE"
expect_same_file "... the same file" "$TT_MEDIA/photo.jpg" "$W/got.port"
OUT=$W/got.dom lfetch "$L2" media.fwd.test /photo.jpg
expect_eq "Host media.fwd.test calls media (p's --domain is not part of the name)" 200 "$CODE"
expect_same_file "... the same file" "$TT_MEDIA/photo.jpg" "$W/got.dom"
OUT=$W/got.range lfetch "$L2" media /photo.jpg -r 100-199
expect_eq "a range through the link: 206 of 100 bytes" "206 100" "$CODE $(stat -c %s "$W/got.range")"

# --- 2. Tether-Caller: p's word only
OUT=$W/echo.h1 lfetch "$L2" echo /headers -H 'Tether-Caller: admin'
expect_eq "laptop calls the service echo (HTTP/1.1): 200" 200 "$CODE"
expect_eq "the service sees tether-caller: laptop, only (the app forged admin)" "tether-caller: laptop|" "$(callers_in "$W/echo.h1")"
OUT=$W/echo.h2 lfetch "$L2" echo /headers --http2-prior-knowledge -H 'tether-caller: admin'
expect_eq "laptop calls echo over h2c: 200" "200 2" "$CODE $HVER"
expect_eq "... the service sees tether-caller: laptop, only" "tether-caller: laptop|" "$(callers_in "$W/echo.h2")"
OUT=$W/echo.web lfetch "$L2" web /headers -H 'Tether-Caller: admin'
expect_eq "laptop calls the origin web (an --upstream http:// app): 200" 200 "$CODE"
expect_eq "... the origin's app sees tether-caller: laptop, only" "tether-caller: laptop|" "$(callers_in "$W/echo.web")"
OUT=$W/pub.h1 fetch /headers -H 'Host: web.fwd.test' -H 'Tether-Caller: x'
expect_eq "a public client calls web on p's front: 200" 200 "$CODE"
expect_true "... its answer is the echo" grep -q '^GET /headers' "$W/pub.h1"
expect_eq "... and its Tether-Caller: x does not reach the origin (HTTP/1.1 front)" "" "$(callers_in "$W/pub.h1")"
OUT=$W/pub.h2 fetch /headers --http2-prior-knowledge -H 'Host: web.fwd.test' -H 'tether-caller: x'
expect_eq "... nor through the h2c front" "200 " "$CODE $(callers_in "$W/pub.h2")"
res=$(curl -sk --max-time 10 -o "$W/pub.tls" -w '%{http_code} %{http_version}' -H 'Host: web.fwd.test' \
    -H 'Tether-Caller: x' "https://127.0.0.1:$HTTPS_PORT/headers") || true
expect_eq "... nor through the HTTPS front (h2 by ALPN)" "200 2 " "$res $(callers_in "$W/pub.tls")"
res=$(curl -sk --http1.1 --max-time 10 -o "$W/pub.tls1" -w '%{http_code} %{http_version}' -H 'Host: web.fwd.test' \
    -H 'Tether-Caller: x' "https://127.0.0.1:$HTTPS_PORT/headers") || true
expect_eq "... nor through the HTTPS front (HTTP/1.1)" "200 1.1 " "$res $(callers_in "$W/pub.tls1")"

# --- 3. calls the tokens file does not allow
OUT=$W/deny.1 lfetch "$L2" secret /
expect_eq "laptop calls secret (not in its calls=): 403" 403 "$CODE"
expect_true "... the body names the caller laptop" grep -q "laptop" "$W/deny.1"
expect_true "... and the callee secret" grep -q "secret" "$W/deny.1"
note "403 body: $(head -c 200 "$W/deny.1")"
OUT=$W/deny.2 lfetch "$L2" pyapp /photo.jpg --http2-prior-knowledge
expect_eq "... over h2c too (pyapp is not in its calls=)" "403 2" "$CODE $HVER"
OUT=$W/ghost lfetch "$L2" ghost /
expect_eq "laptop calls ghost (allowed, nothing connected): 503 from p" 503 "$CODE"
echo_calls=$(count_lines "$W/echo.log" 'GET /headers')
OUT=$W/deny.3 lfetch "$L5" media /photo.jpg
expect_eq "nocalls (no calls= column) calls media: 403" 403 "$CODE"
expect_true "... the body names nocalls and media" grep -q "nocalls.*media\|media.*nocalls" "$W/deny.3"
OUT=$W/deny.4 lfetch "$L5" echo /headers
expect_eq "nocalls calls the service echo: 403" 403 "$CODE"
expect_true "... the body names nocalls and echo" grep -q "nocalls.*echo\|echo.*nocalls" "$W/deny.4"
expect_eq "the service never saw nocalls' call" "$echo_calls" "$(count_lines "$W/echo.log" 'GET /headers')"

# A unary call longer than the HTTP/1.1 head timeout (60 s) through the link
# to the h2c service, in the background while the rest runs: the service's
# upstream has no head timeout, the call's deadline governs.
export TT_GRPC_LONG_MS=${TT_GRPC_LONG_MS:-65000}
TT_GRPC_AUTHORITY=g timeout 140 $PY "$G/grpc_py.py" client "127.0.0.1:$L2" long >"$W/long.txt" 2>"$W/long.txt.err" &
long_pid=$!
track "$long_pid" client-long

# --- 5. --local-to: whatever the Host, the call goes to media
OUT=$W/kiosk lfetch "$L6" unrelated.example /photo.jpg
expect_eq "kiosk (--local-to media, calls=*): Host unrelated.example: 200" 200 "$CODE"
expect_same_file "... media's photo.jpg" "$TT_MEDIA/photo.jpg" "$W/kiosk"
OUT=$W/kiosk2 lfetch "$L6" echo "/$(q 'my clip.mp4')" --http2-prior-knowledge
expect_eq "... Host echo over h2c still goes to media" "200 2" "$CODE $HVER"
expect_same_file "... media's my clip.mp4" "$TT_MEDIA/my clip.mp4" "$W/kiosk2"

# --- 4. gRPC both ways over the forward link
cases="unary status big server-stream client-stream bidi deadline cancel concurrent"
checks="unary metadata trailers status big server-stream client-stream bidi deadline cancel concurrent"
# shellcheck disable=SC2086
client py "127.0.0.1:$L2" g py-svc.txt $cases &
gp1=$!
track "$gp1" client-py-svc
# shellcheck disable=SC2086
client node "127.0.0.1:$L2" pyg node-origin.txt $cases &
gp2=$!
track "$gp2" client-node-origin
wait "$gp1" "$gp2"
# shellcheck disable=SC2086
expect_checks py-svc.txt "grpcio client -> laptop's link -> p --service g (grpc-js):" $checks
# shellcheck disable=SC2086
expect_checks node-origin.txt "grpc-js client -> laptop's link -> origin pyg (grpcio):" $checks
# p's own answers to a gRPC call are gRPC answers: a refused call is
# PERMISSION_DENIED with p's reason, not an HTTP 403 read as INTERNAL.
client py "127.0.0.1:$L2" secret denied.txt denied
expect_checks denied.txt "grpcio client -> laptop's link -> 'secret' (not in calls=):" denied
expect_true "p's access line for it: status 200, grpc-status 7" \
    log_has "$W/p.log" 'access client=[^ ]+ method=POST path=/tt\.Test/Echo status=200 .*origin=secret .*caller=laptop end=ok grpc-status=7$'
expect_eq "the grpcio client's cancel reached the service" cancelled "$(app_saw "$W/nodeapp.log" py-cancel)"
expect_eq "the grpcio client's deadline reached the service" cancelled "$(app_saw "$W/nodeapp.log" py-deadline)"
expect_eq "the grpc-js client's cancel reached the origin's app" cancelled "$(app_saw "$W/pyapp.log" node-cancel)"
expect_eq "the grpc-js client's deadline reached the origin's app" cancelled "$(app_saw "$W/pyapp.log" node-deadline)"

# --- p's access lines: caller=NAME for the calls
expect_true "p's access line for laptop's call to media: caller=laptop" \
    log_has "$W/p.log" 'access client=[^ ]+ method=GET path=/photo\.jpg status=200 .*origin=media .*caller=laptop end=ok'
expect_true "... for the call to the service echo" \
    log_has "$W/p.log" 'access client=[^ ]+ method=GET path=/headers status=200 .*origin=echo .*caller=laptop end=ok'
expect_true "... for the refused call to secret: 403" \
    log_has "$W/p.log" 'access client=[^ ]+ method=GET path=/ status=403 .*origin=secret .*caller=laptop end='
expect_true "... for nocalls' refused call" \
    log_has "$W/p.log" 'access client=[^ ]+ method=GET path=/photo\.jpg status=403 .*origin=media .*caller=nocalls end='
expect_true "... for kiosk's call: caller=kiosk, origin media" \
    log_has "$W/p.log" 'access client=[^ ]+ method=GET path=/photo\.jpg status=200 .*origin=media .*caller=kiosk end=ok'
expect_true "... for a gRPC call to the service g: grpc-status 0" \
    log_has "$W/p.log" 'access client=[^ ]+ method=POST path=/tt\.Test/Echo status=200 .*origin=g .*caller=laptop end=ok grpc-status=0$'
expect_true "... for a gRPC call to the origin pyg: grpc-status 0" \
    log_has "$W/p.log" 'access client=[^ ]+ method=POST path=/tt\.Test/Echo status=200 .*origin=pyg .*caller=laptop end=ok grpc-status=0$'
expect_true "the public client's access lines have no caller= (HTTP/1.1, h2c, HTTPS)" \
    log_has "$W/p.log" 'access client=[^ ]+ method=GET path=/headers status=200 .*origin=web (proto=h2 )?(tls=1 )?end=ok$' 4
expect_eq "... and no access line says caller=x" 0 "$(count_lines "$W/p.log" 'caller=x')"
calls=$(count_lines "$W/p.log" 'access .* caller=laptop end=')
note "p logged $calls access lines with caller=laptop"

wait "$long_pid"
expect_checks long.txt "grpcio client -> link -> service g, a unary call of ${TT_GRPC_LONG_MS} ms:" long

# --- 6. p dies mid-stream, then restarts: the gRPC calls in flight over the
# link end UNAVAILABLE (c's exchange ends them with grpc-status 14, as p does
# for a lost tunnel), and the forward link is dialled again
client py "127.0.0.1:$L2" g killed-py.txt killed &
kp=$!
track "$kp" client-killed-py
client node "127.0.0.1:$L2" pyg killed-node.txt killed &
kn=$!
track "$kn" client-killed-node
wait_until 150 0.1 log_has "$W/nodeapp.log" "endless py-killed started" || bad "the service never started the endless stream"
wait_until 150 0.1 log_has "$W/pyapp.log" "endless node-killed started" || bad "the origin's app never started the endless stream"
sleep 0.5
ppid=$(pid_of p)
kill -KILL "$ppid" 2>/dev/null
wait "$ppid" 2>/dev/null # reaped quietly
wait "$kp" "$kn"
expect_checks killed-py.txt "grpcio client -> link -> service g, p killed mid-stream:" killed
expect_checks killed-node.txt "grpc-js client -> link -> origin pyg, p killed mid-stream:" killed
expect_true "c2's access line for a call cut by the lost link: tunnel-lost, grpc-status 14" \
    log_has "$W/c2.log" 'access client=[^ ]+ method=POST path=/tt.Test/Endless status=200 .* end=tunnel-lost grpc-status=14$'
wait_until 100 0.1 log_has "$W/c2.log" "forward link (down|closed)" || bad "c2 did not notice p going: $(tail -2 "$W/c2.log" | tr '\n' '|')"
OUT=$W/gone lfetch "$L2" echo /headers
expect_eq "with p gone, a call gets 503 from c2" 503 "$CODE"
expect_true "... saying that c's forward link is down" grep -q "forward link to p is down" "$W/gone"
start_p p2 "${P_ARGS[@]}"
if wait_until 400 0.1 log_has "$W/c2.log" "forward link up to" 2; then
    good "c2 logged 'forward link up' a second time"
else
    bad "c2 did not redial its forward link within 40 s: $(tail -3 "$W/c2.log" | tr '\n' '|')"
fi
expect_true "the restarted p logs laptop's forward link" \
    wait_until 50 0.1 log_has "$W/p2.log" "forward link up name=laptop"
OUT=$W/echo.again lfetch "$L2" echo /headers
expect_eq "a call to the service after the restart: 200" 200 "$CODE"
expect_eq "... with tether-caller: laptop" "tether-caller: laptop|" "$(callers_in "$W/echo.again")"
if wait_c_up c1 2; then
    OUT=$W/got.again lfetch "$L2" media /photo.jpg --http2-prior-knowledge
    expect_eq "a call to media after the restart: 200" 200 "$CODE"
    expect_same_file "... the file" "$TT_MEDIA/photo.jpg" "$W/got.again"
else
    bad "c1 did not reconnect to the restarted p"
fi
expect_true "the restarted p's access line: caller=laptop" \
    log_has "$W/p2.log" 'access client=[^ ]+ method=GET path=/headers status=200 .*origin=echo .*caller=laptop end=ok'
expect_eq "still no tunnel for laptop" 0 "$(count_lines "$W/p2.log" 'tunnel up name=laptop ')"

# --- no token of this test in any log
for n in media laptop pyg web nocalls kiosk; do
    if grep -rlF -- "$(cat "$W/token.$n")" "$W" --include='*.log' >/dev/null 2>&1; then
        bad "the token of $n appears in $(grep -rlF -- "$(cat "$W/token.$n")" "$W" --include='*.log' | tr '\n' ' ')"
    fi
done
finish
