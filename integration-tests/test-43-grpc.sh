#!/usr/bin/env bash
# Real gRPC through p and `c --upstream h2c://`: Debian's python3-grpcio and
# npm's @grpc/grpc-js (integration-tests/grpc/, installed by tools/deps.sh),
# each as client and as server, crossed (a Python client calls the Node
# server and the other way round).  No hand-written frames: both sides are
# the libraries, with raw-bytes messages (grpc/grpc_py.py says the methods).
#
#   media  -> c1 -> Python server
#   other  -> c2 -> Node server
#   spare  -> c3 -> Python server with grpc core's keepalive enforcement at
#                   its tightest (--strict-keepalive: a client that pings an
#                   idle stream is cut off within 45 s)
#
# p routes by :authority (--domain grpc.test).  While the functional cases
# run on media and other, spare carries the long ones: a server stream
# silent for TT_GRPC_IDLE_MS and a unary RPC of TT_GRPC_LONG_MS (both 65 s
# by default: longer than the HTTP/1.1 head timeout, and long enough that
# c's old 15 s pings to the app would have been punished; set both to
# 130000 for the issue's "idle longer than 2 minutes", outside run.sh's
# 120 s limit).  A control case proves that enforcement is real: a client
# that pings every second straight to that server loses its stream.
#
# Checked: unary, server / client / bidi streaming, 16 MiB each way (within
# a 10 s deadline, TT_GRPC_BIG_DEADLINE: c used to stall until its next
# 15 s PING to the app, and with no app pings now it would never end),
# metadata with -bin, trailers, status with details, deadline and client
# cancel (the app sees the cancel), 100 concurrent RPCs, c killed mid-stream
# (UNAVAILABLE), c's --upstream-timeout giving up (UNAVAILABLE, and the app's
# stream reset at once), and c's access line (what happened to the stream,
# grpc-status), and p's (end=, grpc-status).
source "$(dirname "$0")/lib.sh"

source "$TT_HERE/grpc/lib.sh"
export TT_GRPC_IDLE_MS=${TT_GRPC_IDLE_MS:-65000} TT_GRPC_LONG_MS=${TT_GRPC_LONG_MS:-65000}

start_cu() { # LABEL NAME APP_PORT [flags]: c forwarding NAME to the app
    local label=$1 name=$2 port=$3
    shift 3
    "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name "$name" --token-file "$TT_SHARED/token.$name" \
        --fingerprint "$TT_FPR" --upstream "h2c://127.0.0.1:$port" "$@" \
        >>"$W/$label.out" 2>>"$W/$label.log" &
    track "$!" "$label"
}

# Runs a client (py|node) through p's front for AUTHORITY's name with CASES.
client() { # py|node AUTHORITY OUTFILE CASE...
    local kind=$1 auth=$2 out=$3
    shift 3
    grpc_client "$kind" "127.0.0.1:$HTTP_PORT" "$auth" "$out" "$@"
}

pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --domain grpc.test --default media --client-idle 10
start_app pyapp py
PY_PORT=$APP_PORT
start_app nodeapp node
start_app strict py --strict-keepalive
STRICT_PORT=$APP_PORT
start_cu c1 media "$PY_PORT"
start_cu c2 other "$(cat "$W/nodeapp.port")"
start_cu c3 spare "$STRICT_PORT"
for l in c1 c2 c3; do wait_c_up "$l" || die "$l did not log 'tunnel up'"; done

# --- the long cases first, in the background, on spare alone: nothing else
# crosses that app connection, so it stays silent.
long_pids=()
for k in py node; do
    for case in idle long; do
        client "$k" spare.grpc.test "$case-$k.txt" "$case" &
        long_pids+=("$!")
        track "$!" "client-$case-$k"
    done
done

# The control: pinging an idle stream is punished by this app.
TT_GRPC_AUTHORITY= timeout 60 $PY "$G/grpc_py.py" client "127.0.0.1:$STRICT_PORT" pinger >"$W/pinger.txt" 2>"$W/pinger.txt.err"
expect_checks pinger.txt "control, straight to the strict app:" pinger

# --- the functional cases, crossed
cases="unary status big server-stream client-stream bidi deadline cancel concurrent"
checks="unary metadata trailers status big server-stream client-stream bidi deadline cancel concurrent"
# shellcheck disable=SC2086
client py other.grpc.test py-node.txt $cases
# shellcheck disable=SC2086
expect_checks py-node.txt "python client -> node server:" $checks
# shellcheck disable=SC2086
client node media.grpc.test node-py.txt $cases
# shellcheck disable=SC2086
expect_checks node-py.txt "node client -> python server:" $checks

# The cancels reached the apps (their sleeps would have run 20 s).
expect_eq "the python client's cancel reached the node server" cancelled "$(app_saw "$W/nodeapp.log" py-cancel)"
expect_eq "the node client's cancel reached the python server" cancelled "$(app_saw "$W/pyapp.log" node-cancel)"
expect_eq "the python client's deadline reached the node server" cancelled "$(app_saw "$W/nodeapp.log" py-deadline)"
expect_eq "the node client's deadline reached the python server" cancelled "$(app_saw "$W/pyapp.log" node-deadline)"

# --- c's access line: what happened to each stream, and grpc-status
expect_true "c's access line for a unary RPC: status 200, ended, grpc-status 0" \
    log_has "$W/c1.log" 'access stream=[0-9]+ method=POST path=/tt.Test/Echo status=200 .*end=ok grpc-status=0'
expect_true "... for a failed RPC: grpc-status 9 (FAILED_PRECONDITION)" \
    log_has "$W/c1.log" 'access stream=[0-9]+ method=POST path=/tt.Test/Echo status=200 .*end=ok grpc-status=9'
expect_true "... for a cancelled RPC: the reset p passed on, no grpc-status" \
    log_has "$W/c1.log" 'access stream=[0-9]+ method=POST path=/tt.Test/Sleep status=[0-9]+ .*end=reset-by-p\(CANCEL\)$'

# --- p's access line: what became of each response, and grpc-status
expect_true "p's access line for a unary RPC: ended whole, grpc-status 0" \
    log_has "$W/p.log" 'access client=[^ ]+ method=POST path=/tt.Test/Echo status=200 .* proto=h2 end=ok grpc-status=0$'
expect_true "... for a failed RPC: grpc-status 9" \
    log_has "$W/p.log" 'access client=[^ ]+ method=POST path=/tt.Test/Echo status=200 .* end=ok grpc-status=9$'
expect_true "... for a cancelled RPC: the client left, no grpc-status" \
    log_has "$W/p.log" 'access client=[^ ]+ method=POST path=/tt.Test/Sleep status=[0-9]+ .* end=client-gone$'

# --- c killed mid-stream: p ends the clients' streams with grpc-status 14,
# UNAVAILABLE (what gRPC clients retry on), never OK and never a reset that
# reads as INTERNAL.
client py media.grpc.test killed-py.txt killed &
kp=$!
track "$kp" client-killed-py
client node other.grpc.test killed-node.txt killed &
kn=$!
track "$kn" client-killed-node
wait_until 150 0.1 log_has "$W/pyapp.log" "endless py-killed started" || bad "the python server never started the endless stream"
wait_until 150 0.1 log_has "$W/nodeapp.log" "endless node-killed started" || bad "the node server never started the endless stream"
sleep 0.5
c1pid=$(pid_of c1)
c2pid=$(pid_of c2)
kill -KILL "$c1pid" "$c2pid" 2>/dev/null
wait "$c1pid" "$c2pid" 2>/dev/null # reaped quietly (no "Killed" from bash)
wait "$kp" "$kn"
expect_checks killed-py.txt "python client, c killed mid-stream:" killed
expect_checks killed-node.txt "node client, c killed mid-stream:" killed
expect_true "p's access line for a stream whose tunnel went: tunnel-lost, grpc-status 14" \
    log_has "$W/p.log" 'access client=[^ ]+ method=POST path=/tt.Test/Endless status=200 .* end=tunnel-lost grpc-status=14$'

# --- c gives up (--upstream-timeout): UNAVAILABLE, and the app's stream is
# reset at once (the app would sleep 20 s; the client's deadline is 30 s)
start_cu c1b media "$PY_PORT" --upstream-timeout 1.5
start_cu c2b other "$(cat "$W/nodeapp.port")" --upstream-timeout 1.5
if wait_c_up c1b && wait_c_up c2b; then
    client py media.grpc.test gaveup-py.txt head-timeout
    expect_checks gaveup-py.txt "python client, c's --upstream-timeout 1.5:" head-timeout
    expect_eq "c reset the python server's stream when it gave up" cancelled "$(app_saw "$W/pyapp.log" py-gaveup)"
    client node other.grpc.test gaveup-node.txt head-timeout
    expect_checks gaveup-node.txt "node client, c's --upstream-timeout 1.5:" head-timeout
    expect_eq "c reset the node server's stream when it gave up" cancelled "$(app_saw "$W/nodeapp.log" node-gaveup)"
    expect_true "c's access line says it gave up: 504" \
        log_has "$W/c1b.log" 'access stream=[0-9]+ method=POST path=/tt.Test/Sleep status=504 '
else
    bad "c with --upstream-timeout 1.5 did not come up: $(tail -1 "$W/c1b.log")"
fi

# --- the long cases: an idle stream and a slow RPC outlive what used to cut them
wait "${long_pids[@]}"
expect_checks idle-py.txt "python client, a server stream silent for ${TT_GRPC_IDLE_MS} ms:" idle
expect_checks idle-node.txt "node client, a server stream silent for ${TT_GRPC_IDLE_MS} ms:" idle
expect_checks long-py.txt "python client, a unary RPC of ${TT_GRPC_LONG_MS} ms:" long
expect_checks long-node.txt "node client, a unary RPC of ${TT_GRPC_LONG_MS} ms:" long
expect_eq "the strict app never sent c a GOAWAY" 0 "$(count_lines "$W/c3.log" 'sent GOAWAY')"
finish
