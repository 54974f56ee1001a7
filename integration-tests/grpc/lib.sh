# Helpers shared by the gRPC integration tests (test-43, test-44); sourced
# after integration-tests/lib.sh.  G is this folder.
G=$TT_HERE/grpc
command -v node >/dev/null || die "node is missing (tools/deps.sh installs it)"
[ -d "$G/node_modules/@grpc/grpc-js" ] || die "@grpc/grpc-js is missing (make deps: npm ci in integration-tests/grpc)"
$PY -c 'import grpc' 2>/dev/null || die "python3-grpcio is missing (make deps)"

# start_app LABEL py|node|echo [server flags] -> APP_PORT: a gRPC server in
# Python or Node (grpc_py.py / grpc_node.js), or the HTTP echo app.
start_app() {
    local label=$1 kind=$2
    shift 2
    rm -f "$W/$label.port"
    case $kind in
    py) $PY "$G/grpc_py.py" server "$W/$label.port" "$@" 2>>"$W/$label.log" & ;;
    node) node "$G/grpc_node.js" server "$W/$label.port" 2>>"$W/$label.log" & ;;
    echo) $PY "$TT_HERE/upstream_app.py" "$W/$label.port" 2>>"$W/$label.log" & ;;
    esac
    track "$!" "$label"
    wait_until 150 0.1 test -s "$W/$label.port" || die "the app $label did not start"
    APP_PORT=$(cat "$W/$label.port")
}

# grpc_client py|node TARGET AUTHORITY OUTFILE CASE...: the client's CHECK
# lines go to $W/OUTFILE (GRPC_CLIENT_TIMEOUT seconds at most, 110).
grpc_client() {
    local kind=$1 target=$2 auth=$3 out=$4
    shift 4
    if [ "$kind" = py ]; then
        TT_GRPC_AUTHORITY=$auth timeout "${GRPC_CLIENT_TIMEOUT:-110}" $PY "$G/grpc_py.py" client "$target" "$@" >>"$W/$out" 2>>"$W/$out.err"
    else
        TT_GRPC_AUTHORITY=$auth timeout "${GRPC_CLIENT_TIMEOUT:-110}" node "$G/grpc_node.js" client "$target" "$@" >>"$W/$out" 2>>"$W/$out.err"
    fi
}

# One assertion per expected CHECK line of a client's output.
expect_checks() { # OUTFILE WHO CASE...
    local out=$1 who=$2 c line
    shift 2
    for c in "$@"; do
        line=$(grep -a "^CHECK $c: " "$W/$out" | tail -1)
        if [[ "$line" == "CHECK $c: ok"* ]]; then
            good "$who $c: ${line#CHECK $c: ok }"
        elif [ -n "$line" ]; then
            bad "$who $c: ${line#CHECK $c: FAIL }"
        else
            bad "$who $c: no result (client stderr: $(tail -c 300 "$W/$out.err" 2>/dev/null | tr '\n' ' '))"
        fi
    done
}

# The app's log line for request X-ID: "cancelled" or "answered", once one
# of them is there (the app's sleeps are 20 s, the client deadlines 30 s: a
# cancel within that can only be tether passing one on).
app_saw() { # LOG ID
    wait_until 250 0.1 log_has "$1" "sleep $2 (cancelled|answered)" || { echo none; return; }
    grep -oE "sleep $2 (cancelled|answered)" "$1" | tail -1 | awk '{ print $3 }'
}
