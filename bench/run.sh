#!/usr/bin/env bash
# tether's side-by-side benchmarks (issue 4), on loopback.
#
#   bench/run.sh                 full suite, rewrites docs/benchmarks.md
#   BENCH_RUNS=3 bench/run.sh    fewer runs per figure (default 5)
#   BENCH_QUICK=1 bench/run.sh   tiny files, one run, short durations: proves the
#                                harness works (make check); never fails on speed,
#                                only on a wrong download or a system that will not start
#   BENCH_PIN=0                  no taskset pinning
#   BENCH_SYSTEMS="nginx tether" only these systems (nginx nghttpd nghttpx nghttpx16 ssh pagekite
#                                tether tether@baseline)
#                                pagekite (Debian's, a reverse HTTP tunnel: front-end and
#                                back-end -> nginx) runs scenarios 1 and 3 only: it moves a few
#                                MB/s, so its scenario 1 fetches the first PK_BYTES (64 MiB) of
#                                the file with a Range request, and scenario 2's 2 GiB would
#                                take it ten minutes a pass
#   BENCH_PROFILE=0              skip the perf record of p and c (full mode only)
#   BENCH_BASELINE=DIR           also run DIR/p and DIR/c (another build of tether) as
#                                the row "tether@baseline", in every scenario tether
#                                runs, in the same run: before/after on one machine state.
#                                Such a run does not rewrite docs/benchmarks.md.
#   BENCH_CALLGRIND=0            skip scenario 6 (instructions per request under valgrind
#                                callgrind; on by default when valgrind is installed)
#   BENCH_CG_N=2000              scenario 6: requests in the short run (the long one does 2N)
#   BENCH_CG_RUNS=2              scenario 6: repeats of each N / 2N pair (quick mode: 1)
#   BENCH_ONLY=callgrind         run only scenario 6 (no other system is started; does
#                                not rewrite docs/benchmarks.md)
#   BENCH_ONLY=fairness          run only scenario 7 (fairness: a good client's latency
#                                while each abuse runs; fresh p and c per system; does
#                                not rewrite docs/benchmarks.md)
#   BENCH_FAIRNESS=0             skip scenario 7
#   BENCH_FAIR_D=8               scenario 7: seconds per abuse (quick mode: 2)
#   BENCH_FAIR_RUNS=2            scenario 7: passes over every abuse (quick mode: 1)
#   BENCH_ONLY=grpc              run only scenario 8 (gRPC through p -> c --upstream h2c://,
#                                the reverse path, and through c --local-listen -> p --service,
#                                the forward link, against the same client calling the same
#                                server directly; does not rewrite docs/benchmarks.md)
#   BENCH_GRPC=0                 skip scenario 8 (it needs python3-grpcio; skipped when absent)
#   BENCH_GRPC_N=2000            scenario 8: timed sequential unary calls per pass (quick mode: 20)
#   BENCH_GRPC_STREAM=100000     scenario 8: messages of 100 bytes in the server stream (quick: 200)
#   BENCH_GRPC_SERVER=aio        scenario 8: grpcio's asyncio server (aio) or its thread-pool one (sync)
#                                BENCH_SYSTEMS: scenario 8's reference "grpc-direct" runs whenever
#                                tether, tether-fwd or grpc-direct is selected; "tether" selects
#                                both paths, "tether-fwd" the forward one alone
#   BENCH_ONLY=tcp               run only scenario 9 (TCP bulk: one connection moving 1 GiB
#                                each way to a service on 127.0.0.1, directly, through
#                                ssh -R and through p --tcp-listen -> c --tcp; does not
#                                rewrite docs/benchmarks.md)
#   BENCH_TCP=0                  skip scenario 9
#   BENCH_TCP_SIZE=1073741824    scenario 9: bytes per transfer (quick mode: 64 MiB)
#                                BENCH_SYSTEMS: "tether" and "ssh" (or "ssh-tcp") select its
#                                paths, "tcp-direct" its reference (run whenever either is)
#   BENCH_ONLY=ws                run only scenario 10 (WebSocket echo through p -> c --upstream
#                                http:// against the same node ws client and server direct;
#                                does not rewrite docs/benchmarks.md)
#   BENCH_WS=0                   skip scenario 10 (it needs node and integration-tests/ws's ws)
#   BENCH_WS_ROUNDS=5000         scenario 10: sequential echo round trips per pass (quick: 200)
#   BENCH_WS_COUNT=200000        scenario 10: messages, 16 in flight, per pass (quick: 2000)
#
# Systems serve the same files from bench/.work/www*; every server binds
# 127.0.0.1 on a free port; every process started here is stopped by PID.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
W=$ROOT/bench/.work
QUICK=${BENCH_QUICK:-0}
RUNS=${BENCH_RUNS:-5}
PIN=${BENCH_PIN:-1}
PROFILE=${BENCH_PROFILE:-1}
BASELINE=${BENCH_BASELINE:-}
CALLGRIND=${BENCH_CALLGRIND:-1}
FAIRNESS=${BENCH_FAIRNESS:-1}
GRPC=${BENCH_GRPC:-1}
TCP=${BENCH_TCP:-1}
WS=${BENCH_WS:-1}
GRPC_SERVER=${BENCH_GRPC_SERVER:-aio}
ONLY=${BENCH_ONLY:-}
PY=/usr/bin/python3
[ "$QUICK" = 1 ] && RUNS=1
case "$ONLY" in ''|callgrind|fairness|grpc|tcp|ws) ;; *) echo "bench: ERROR: BENCH_ONLY=$ONLY: the parts that run alone are 'callgrind', 'fairness', 'grpc', 'tcp' and 'ws'" >&2; exit 1 ;; esac
case "$GRPC_SERVER" in aio|sync) ;; *) echo "bench: ERROR: BENCH_GRPC_SERVER=$GRPC_SERVER: 'aio' or 'sync'" >&2; exit 1 ;; esac

if [ "$QUICK" = 1 ]; then
    WWW=$W/www-quick
    BIG=$((1 << 20)); MID=$((64 << 10)); SMALL=1024
    S2N=8; WRK_D=1; LAT_RATE=100; LAT_D=1; IDLE_N=20; SLOW_N=5; SLOW_D=3; SLOW_RATE=256K
    CG_N=${BENCH_CG_N:-20}; CG_WARM=8; CG_RUNS=${BENCH_CG_RUNS:-1}
    FAIR_D=${BENCH_FAIR_D:-2}; FAIR_RUNS=${BENCH_FAIR_RUNS:-1}; FAIR_RATE=100; FAIR_AFTER=2
    FAIR_A_N=4; FAIR_A_S=8; FAIR_B_M=2; FAIR_B_S=8; FAIR_C_N=30; FAIR_C_C=2; FAIR_C_S=10; FAIR_D_C=20; FAIR_D_M=8
    GRPC_WARM=5; GRPC_N=${BENCH_GRPC_N:-20}; GRPC_STREAM=${BENCH_GRPC_STREAM:-200}; GRPC_BIG=$((1 << 20)); GRPC_BIG_REPS=1
    TCP_SIZE=${BENCH_TCP_SIZE:-$((64 << 20))}
    WS_ROUNDS=${BENCH_WS_ROUNDS:-200}; WS_COUNT=${BENCH_WS_COUNT:-2000}; WS_WINDOW=16
else
    WWW=$W/www
    BIG=$((1 << 30)); MID=$((64 << 20)); SMALL=1024
    S2N=32; WRK_D=5; LAT_RATE=${BENCH_LAT_RATE:-500}; LAT_D=5; IDLE_N=1000; SLOW_N=100; SLOW_D=20; SLOW_RATE=1M
    CG_N=${BENCH_CG_N:-2000}; CG_WARM=200; CG_RUNS=${BENCH_CG_RUNS:-2}
    FAIR_D=${BENCH_FAIR_D:-8}; FAIR_RUNS=${BENCH_FAIR_RUNS:-2}; FAIR_RATE=100; FAIR_AFTER=5
    FAIR_A_N=32; FAIR_A_S=64; FAIR_B_M=4; FAIR_B_S=50; FAIR_C_N=300; FAIR_C_C=10; FAIR_C_S=20; FAIR_D_C=100; FAIR_D_M=32
    GRPC_WARM=200; GRPC_N=${BENCH_GRPC_N:-2000}; GRPC_STREAM=${BENCH_GRPC_STREAM:-100000}; GRPC_BIG=$((16 << 20)); GRPC_BIG_REPS=3
    TCP_SIZE=${BENCH_TCP_SIZE:-$((1 << 30))}
    WS_ROUNDS=${BENCH_WS_ROUNDS:-5000}; WS_COUNT=${BENCH_WS_COUNT:-200000}; WS_WINDOW=16
fi
mkdir -p "$W/logs" "$WWW"
RES=$W/results.tsv; META=$W/meta; ERR=$W/errors; SERIES=$W/slow-series.txt; PROF=$W/profile.txt
: >"$RES"; : >"$META"; : >"$ERR"; rm -f "$W/fair.meta" "$W/grpc.meta" "$W/tcp.meta" "$W/ws.meta"; rm -f "$SERIES" "$SERIES.baseline" "$PROF"

log() { echo "bench: $*" >&2; }
err() { echo "bench: ERROR: $*" >&2; echo "$*" >>"$ERR"; }

# The tether rows need these clients in every mode (quick mode too: `make
# check` runs it); the reference servers are optional and skipped when absent.
need=()
for tool in curl:curl h2load:nghttp2-client wrk:wrk openssl:openssl ss:iproute2 \
            numfmt:coreutils sha256sum:coreutils taskset:util-linux ps:procps; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool%%:*} (Debian package ${tool#*:})")
done
[ -x "$PY" ] || need+=("$PY (Debian package python3)")
if [ ${#need[@]} -gt 0 ]; then
    err "missing: ${need[*]}; run tools/deps.sh (make deps) to install them"; exit 1
fi
if [ -n "$BASELINE" ]; then
    BASELINE=$(cd "$BASELINE" 2>/dev/null && pwd) || { err "BENCH_BASELINE=$BENCH_BASELINE is not a folder"; exit 1; }
    [ -x "$BASELINE/p" ] && [ -x "$BASELINE/c" ] ||
        { err "BENCH_BASELINE=$BASELINE must hold another build's p and c (cp bin/p bin/c there)"; exit 1; }
fi

# ---------------------------------------------------------------- processes
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.3
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {   # stop one process we started, by PID, and forget it
    local p=$1 keep=() q
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
}

NCPU=$(nproc)
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
    CLI="taskset -c 0"; SRV="taskset -c 1"
    PINNING="clients (curl, h2load, wrk, latency probe) on cpu 0, every server-side process on cpu 1"
else
    CLI=""; SRV=""
    PINNING="none (BENCH_PIN=0 or fewer than 2 cpus)"
fi

USED_PORTS=" "
freeport() {
    local p
    while :; do
        p=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        USED_PORTS+="$p "; echo "$p"; return
    done
}

wait_port() {  # PORT SECONDS
    local end=$((SECONDS + $2))
    while [ $SECONDS -le $end ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

descendants() {  # PID...: those PIDs and every live descendant
    ps -e -o pid=,ppid= | awk -v roots="$*" '
        { kids[$2] = kids[$2] " " $1 }
        END { n = split(roots, q, " "); out = "";
              for (i = 1; i <= n; i++) { p = q[i]; out = out " " p;
                  m = split(kids[p], k, " "); for (j = 1; j <= m; j++) q[++n] = k[j] }
              print out }'
}

cpu_ticks() {  # sum of utime+stime (clock ticks) of the PIDs
    local t=0 p s
    for p in "$@"; do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        set -- $s
        t=$((t + ${12} + ${13}))
    done
    echo $t
}

kb_field() {  # FIELD PID...: sum of a /proc/PID/status field, in kB
    local f=$1 t=0 p v; shift
    for p in "$@"; do
        v=$(awk -v f="$f:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo $t
}

repin() {  # CPU PID...: move those processes, their threads and children
    local cpu=$1 p; shift
    for p in $(descendants "$@"); do taskset -a -p -c "$cpu" "$p" >/dev/null 2>&1; done
}

reset_hwm() { local p; for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null; done; }

record() {  # SCENARIO METRIC UNIT BETTER SYSTEM VALUE
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

# ---------------------------------------------------------------- files
SUMS=$WWW.sums   # checksums beside, not inside, the served folder
gen() {  # NAME SIZE
    local f=$WWW/$1 sum=$SUMS/$1.sha256
    mkdir -p "$WWW" "$SUMS"
    if [ "$(stat -c %s "$f" 2>/dev/null)" != "$2" ]; then
        log "generating $f ($2 bytes from /dev/urandom)"
        head -c "$2" /dev/urandom >"$f.tmp" && mv "$f.tmp" "$f" || { err "cannot write $f"; exit 1; }
    fi
    if [ ! -s "$sum" ] || [ "$f" -nt "$sum" ]; then sha256sum <"$f" | cut -d' ' -f1 >"$sum"; fi
}
gen_all() { gen big.bin "$BIG"; gen mid.bin "$MID"; gen small.bin "$SMALL"; }

# ---------------------------------------------------------------- systems
# Per system: URL base, client flags for curl, root PIDs of the proxy side and
# of the origin side (server-side CPU and memory are summed over their trees).
declare -A BASE CURLF PROXY_ROOTS ORIGIN_ROOTS
# Scenario 1's bytes where a system fetches only the start of the file (a
# Range request), and the systems that run scenarios 1 and 3 alone.
declare -A S1BYTES ONLY13
PK_BYTES=$((64 << 20))
SYSTEMS=()
ABSENT=()

have() { command -v "$1" >/dev/null 2>&1; }
absent_list() { local a out=""; for a in "${ABSENT[@]}"; do out+="${out:+; }$a"; done; echo "$out"; }

want() {  # SYSTEM: selected by BENCH_SYSTEMS?
    [ -z "${BENCH_SYSTEMS:-}" ] && return 0
    case " $BENCH_SYSTEMS " in *" $1 "*) return 0 ;; esac
    return 1
}

make_cert() {
    [ -s "$W/tls/cert.pem" ] && return 0
    mkdir -p "$W/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" 2>/dev/null
}

NGINX_PORT=
start_nginx() {
    local d=$W/nginx port
    port=$(freeport)
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $WWW;
    }
}
EOF
    $SRV nginx -e "$d/error.log" -c "$d/nginx.conf" >"$W/logs/nginx.out" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    if ! wait_port "$port" 10; then err "nginx did not start: $(tail -3 "$W/logs/nginx.out" "$d/error.log" 2>/dev/null | tr '\n' ' ')"; return 1; fi
    NGINX_PORT=$port; NGINX_PID=$pid
}

start_nghttpd() {
    local port; port=$(freeport)
    $SRV nghttpd -a 127.0.0.1 -n 1 -d "$WWW" "$port" "$W/tls/key.pem" "$W/tls/cert.pem" \
        >"$W/logs/nghttpd.out" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    if ! wait_port "$port" 10; then err "nghttpd did not start: $(tail -3 "$W/logs/nghttpd.out" | tr '\n' ' ')"; return 1; fi
    NGHTTPD_PORT=$port; NGHTTPD_PID=$pid
}

start_nghttpx() {  # VARIANT: default (as packaged) or big (16 MiB stream windows)
    local v=$1 port extra=()
    port=$(freeport)
    : >"$W/nghttpx.conf"
    # nghttpx's backend stream window defaults to 64 KiB, which caps one
    # download on loopback; the "big" variant raises it to 16 MiB (the
    # connection window already defaults to 2 GiB) so nghttpx is also measured
    # at its best, as tether uses MiB windows too.
    [ "$v" = big ] && extra=(--backend-http2-window-size=$((16 << 20)))
    $SRV nghttpx --conf="$W/nghttpx.conf" -n 1 \
        -f "127.0.0.1,$port;no-tls" \
        -b "127.0.0.1,$NGHTTPD_PORT;;proto=h2;tls" -k "${extra[@]}" \
        --errorlog-file="$W/logs/nghttpx-$v.err" --pid-file="$W/nghttpx-$v.pid" \
        >"$W/logs/nghttpx-$v.out" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    if ! wait_port "$port" 10; then err "nghttpx did not start: $(tail -3 "$W/logs/nghttpx-$v.err" | tr '\n' ' ')"; return 1; fi
    NGHTTPX_PORT=$port; NGHTTPX_PID=$pid
}

# pagekite's front-end (the public side, as p) and back-end (beside the
# content, as c) in front of nginx, with a shared secret for the kite
# "127.0.0.1" (clients send Host: 127.0.0.1:PORT, as to every system here).
# --keepalive=86400: pagekite 1.5.2's back-end pings an idle tunnel on its
# "auto" schedule and, on loopback, trips over its own ping (a traceback and
# a dropped tunnel); a day-long interval keeps the tunnel as a long run needs.
start_pagekite() {  # -> PK_PORT PK_FE_PID PK_BE_PID
    local fport secret
    fport=$(freeport); secret=$(openssl rand -hex 16)
    $SRV pagekite --clean --nullui --isfrontend --host=127.0.0.1 --ports="$fport" --protos=http \
        --domain="http:127.0.0.1:$secret" --logfile="$W/logs/pagekite-fe.log" >"$W/logs/pagekite-fe.out" 2>&1 &
    local fpid=$!; PIDS+=("$fpid")
    if ! wait_port "$fport" 15; then err "pagekite front-end did not start: $(tail -3 "$W/logs/pagekite-fe.out" | tr '\n' ' ')"; return 1; fi
    $SRV pagekite --clean --nullui --frontend="127.0.0.1:$fport" --keepalive=86400 \
        --service_on="http:127.0.0.1:127.0.0.1:$NGINX_PORT:$secret" \
        --logfile="$W/logs/pagekite-be.log" >"$W/logs/pagekite-be.out" 2>&1 &
    local bpid=$!; PIDS+=("$bpid")
    PK_PORT=$fport; PK_FE_PID=$fpid; PK_BE_PID=$bpid
    if ! wait_tunnel "$fport" 30; then err "pagekite: no 200 through its front-end within 30 s: $(tail -3 "$W/logs/pagekite-be.out" "$W/logs/pagekite-fe.out" | tr '\n' ' ')"; return 1; fi
}

start_ssh() {  # [TARGET_PORT [TAG]]: sshd and ssh -R to TARGET_PORT (nginx's by default) -> SSH_PORT SSHD_PID SSH_PID
    local d=$W/ssh sport rport target=${1:-$NGINX_PORT} tag=${2:+-$2}
    mkdir -p "$d"; chmod 700 "$d"
    [ -s "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519" -C tether-bench-host
    [ -s "$d/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/id_ed25519" -C tether-bench-user
    cp "$d/id_ed25519.pub" "$d/authorized_keys"
    sport=$(freeport); rport=$(freeport)
    cat >"$d/sshd_config$tag" <<EOF
Port $sport
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd$tag.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
GatewayPorts no
X11Forwarding no
PrintMotd no
LogLevel ERROR
EOF
    # privilege separation needs its empty directory (Debian's service makes it)
    mkdir -p /run/sshd 2>/dev/null
    $SRV /usr/sbin/sshd -D -e -f "$d/sshd_config$tag" >"$W/logs/sshd$tag.out" 2>&1 &
    local spid=$!; PIDS+=("$spid")
    if ! wait_port "$sport" 10; then err "sshd did not start: $(tail -3 "$W/logs/sshd$tag.out" | tr '\n' ' ')"; return 1; fi
    $SRV ssh -N -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ExitOnForwardFailure=yes -o LogLevel=ERROR -i "$d/id_ed25519" -p "$sport" \
        -R "127.0.0.1:$rport:127.0.0.1:$target" root@127.0.0.1 >"$W/logs/ssh$tag.out" 2>&1 &
    local cpid=$!; PIDS+=("$cpid")
    if ! wait_port "$rport" 15; then err "ssh -R did not start: $(tail -3 "$W/logs/ssh$tag.out" "$W/logs/sshd$tag.out" | tr '\n' ' ')"; return 1; fi
    SSH_PORT=$rport; SSHD_PID=$spid; SSH_PID=$cpid
}

TOKEN=
FPR=
p_cmd() {  # LISTEN_PORT TUNNEL_PORT LEVEL [BIN_DIR]
    echo "${4:-$ROOT/bin}/p --listen 127.0.0.1:$1 --tunnel-listen 127.0.0.1:$2 --state-dir $W/tether-state --tokens $W/tokens --default bench --log-level $3"
}
c_cmd() {  # TUNNEL_PORT CONNECTIONS [BIN_DIR]
    echo "${3:-$ROOT/bin}/c --proxy 127.0.0.1:$1 --name bench --token $TOKEN --fingerprint sha256:$FPR --root $WWW --log-level warn --connections $2"
}

tether_fingerprint() {
    # p writes its certificate into --state-dir once; its log gives the pin for c.
    [ -s "$W/tokens" ] || { mkdir -p "$W"; echo "bench $(openssl rand -hex 24)" >"$W/tokens"; chmod 600 "$W/tokens"; }
    TOKEN=$(awk '$1 == "bench" { print $2 }' "$W/tokens")
    local pp pt pid
    pp=$(freeport); pt=$(freeport)
    $(p_cmd "$pp" "$pt" info) >"$W/logs/p-first.out" 2>&1 &
    pid=$!; PIDS+=("$pid")
    for _ in $(seq 100); do
        FPR=$(sed -n 's/.*tunnel certificate fingerprint sha256:\([0-9A-Fa-f:]*\).*/\1/p' "$W/logs/p-first.out" | head -1)
        [ -n "$FPR" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    stop_pid "$pid"
    [ -n "$FPR" ] || { err "bin/p did not log its certificate fingerprint: $(tail -3 "$W/logs/p-first.out" | tr '\n' ' ')"; return 1; }
}

start_pc() {  # TAG CONNECTIONS [BIN_DIR]  -> sets P_PID C_PID P_PORT PT_PORT
    local tag=$1 conns=$2 bin=${3:-$ROOT/bin}
    P_PORT=$(freeport); PT_PORT=$(freeport)
    $SRV $(p_cmd "$P_PORT" "$PT_PORT" "${BENCH_P_LOG:-warn}" "$bin") >"$W/logs/p-$tag.out" 2>&1 &
    P_PID=$!; PIDS+=("$P_PID")
    if ! wait_port "$PT_PORT" 10 || ! wait_port "$P_PORT" 5; then
        err "bin/p ($tag) did not start: $(tail -3 "$W/logs/p-$tag.out" | tr '\n' ' ')"; return 1
    fi
    $SRV $(c_cmd "$PT_PORT" "$conns" "$bin") >"$W/logs/c-$tag.out" 2>&1 &
    C_PID=$!; PIDS+=("$C_PID")
}

wait_tunnel() {  # PORT SECONDS: until a request through p answers 200
    local end=$((SECONDS + $2)) code
    while [ $SECONDS -le $end ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/small.bin")
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

# The tether systems: this tree's build, and with BENCH_BASELINE another
# one, each with its own p and c.  Both p read the same state folder (one
# certificate, one tokens file), so the one fingerprint pins both.
TETHERS=()
declare -A TBIN TTAG
TBIN[tether]=$ROOT/bin; TTAG[tether]=main
TBIN[tether@baseline]=$BASELINE; TTAG[tether@baseline]=baseline
TBIN[tether-fwd]=$ROOT/bin; TTAG[tether-fwd]=fwd   # scenario 8's forward link

start_tether() {  # SYSTEM
    local sys=$1 bin=${TBIN[$1]} tag=${TTAG[$1]}
    [ -x "$bin/p" ] && [ -x "$bin/c" ] || { err "$bin/p or $bin/c missing (run make)"; return 1; }
    [ -n "$FPR" ] || tether_fingerprint || return 1
    start_pc "$tag" 1 "$bin" || return 1
    if ! wait_tunnel "$P_PORT" 20; then
        err "$sys: no 200 through p within 20 s: $(tail -3 "$W/logs/c-$tag.out" "$W/logs/p-$tag.out" | tr '\n' ' ')"; return 1
    fi
    SYSTEMS+=("$sys"); TETHERS+=("$sys")
    BASE[$sys]=http://127.0.0.1:$P_PORT; CURLF[$sys]=""
    PROXY_ROOTS[$sys]=$P_PID; ORIGIN_ROOTS[$sys]=$C_PID
}

setup_systems() {
    local s
    make_cert
    if want nginx || want ssh || want pagekite; then
        if have nginx; then start_nginx || exit 1; else ABSENT+=("nginx (nginx-light), ssh -R and pagekite (need nginx)"); fi
    fi
    if want nginx && [ -n "$NGINX_PORT" ]; then
        SYSTEMS+=(nginx); BASE[nginx]=http://127.0.0.1:$NGINX_PORT; CURLF[nginx]=""
        PROXY_ROOTS[nginx]=""; ORIGIN_ROOTS[nginx]=$NGINX_PID
    fi
    if want nghttpd || want nghttpx || want nghttpx16; then
        if have nghttpd; then start_nghttpd || exit 1; else ABSENT+=("nghttpd (nghttp2-server)"); fi
    fi
    if want nghttpd && [ -n "${NGHTTPD_PORT:-}" ]; then
        SYSTEMS+=(nghttpd); BASE[nghttpd]=https://127.0.0.1:$NGHTTPD_PORT; CURLF[nghttpd]="--http2 -k"
        PROXY_ROOTS[nghttpd]=""; ORIGIN_ROOTS[nghttpd]=$NGHTTPD_PID
    fi
    local v sys
    for v in default big; do
        sys=nghttpx; [ $v = big ] && sys=nghttpx16
        want $sys || continue
        if ! have nghttpx; then ABSENT+=("$sys (nghttp2-proxy)")
        elif [ -n "${NGHTTPD_PORT:-}" ]; then
            start_nghttpx $v || exit 1
            SYSTEMS+=($sys); BASE[$sys]=http://127.0.0.1:$NGHTTPX_PORT; CURLF[$sys]=""
            PROXY_ROOTS[$sys]=$NGHTTPX_PID; ORIGIN_ROOTS[$sys]=$NGHTTPD_PID
        fi
    done
    if want ssh; then
        if ! have sshd && [ ! -x /usr/sbin/sshd ]; then ABSENT+=("ssh -R (openssh-server)")
        elif ! have ssh; then ABSENT+=("ssh -R (openssh-client)")
        elif [ -n "$NGINX_PORT" ]; then
            start_ssh || exit 1
            SYSTEMS+=(ssh); BASE[ssh]=http://127.0.0.1:$SSH_PORT; CURLF[ssh]=""
            PROXY_ROOTS[ssh]="$SSHD_PID $SSH_PID"; ORIGIN_ROOTS[ssh]=$NGINX_PID
        fi
    fi
    if want pagekite; then
        if ! have pagekite; then ABSENT+=("pagekite (pagekite)")
        elif [ -n "$NGINX_PORT" ]; then
            start_pagekite || exit 1
            SYSTEMS+=(pagekite); BASE[pagekite]=http://127.0.0.1:$PK_PORT; CURLF[pagekite]=""
            PROXY_ROOTS[pagekite]=$PK_FE_PID; ORIGIN_ROOTS[pagekite]="$PK_BE_PID $NGINX_PID"
            S1BYTES[pagekite]=$((PK_BYTES < BIG ? PK_BYTES : BIG)); ONLY13[pagekite]=1
        fi
    fi
    # Baseline first, so the rows read before -> after.
    if [ -n "$BASELINE" ] && { want tether || want tether@baseline; }; then
        start_tether tether@baseline || exit 1
    fi
    if want tether; then start_tether tether || exit 1; fi
    if [ ${#ABSENT[@]} -gt 0 ]; then
        log "absent, skipped: $(absent_list); BENCH=1 tools/deps.sh installs them (make bench does)"
    fi
    log "systems: ${SYSTEMS[*]}"
}

server_pids() { descendants ${PROXY_ROOTS[$1]} ${ORIGIN_ROOTS[$1]}; }

# ---------------------------------------------------------------- checks
verify() {  # SYSTEM: every file downloads whole and exact
    local s=$1 n got want ok=0 files=(small mid big)
    [ -n "${ONLY13[$s]:-}" ] && files=(small mid)   # its scenario 1 fetches a Range of big.bin
    for n in "${files[@]}"; do
        want=$(cat "$SUMS/$n.bin.sha256")
        # shellcheck disable=SC2086
        got=$(timeout 120 curl -sS --fail ${CURLF[$s]} --max-time 110 "${BASE[$s]}/$n.bin" | sha256sum | cut -d' ' -f1)
        if [ "$got" != "$want" ]; then err "$s: $n.bin downloaded wrong (sha256 $got, want $want)"; ok=1; fi
    done
    return $ok
}

# ---------------------------------------------------------------- scenarios
S1="1: one $(numfmt --to=iec-i --suffix=B $BIG) file, one curl (HTTP/1.1; nghttpd: TLS h2)"
S2="2: $S2N concurrent downloads of $(numfmt --to=iec-i --suffix=B $MID) (h2load --h1 -c$S2N; nghttpd: TLS h2)"
S3="3: 1 KiB file, wrk -c32 -t2 -d${WRK_D}s (nghttpd: h2load -c32 -m1)"
# The same wrk runs counted in work done instead of time: less moved by other
# load on this shared machine than requests/s.
S3W="3: server-side work per request during the wrk runs (perf stat -p)"
S3L="3: 1 KiB file, open loop at $LAT_RATE req/s for ${LAT_D}s (bench/latency.py, HTTP/1.1)"
S4="4: peak RSS during scenario 2 (VmHWM, reset before each run)"
S5="5: CPU per GiB moved, scenario 1 (server-side processes)"
# The same downloads with a core per side, as when p and c (or nghttpx and
# nghttpd) run on different machines: the proxy side shares cpu 0 with the
# client, the origin side keeps cpu 1.  Pinned as above, the two ends of
# every tunnel compete for one core and the figure is CPU per byte.
S1S="1s: scenario 1, a core per side (client + proxy side on cpu 0, origin side on cpu 1)"
S2S="2s: scenario 2, a core per side (client + proxy side on cpu 0, origin side on cpu 1)"

scen1() {  # SYSTEM [SCENARIO]: the CPU figures only in the default layout
    local s=$1 scen=${2:-$S1} pids t0 t1 out code size speed cyc perfo="" perfpid=""
    local bytes=${S1BYTES[$s]:-$BIG} range=() okcode=200
    [ "$bytes" -lt "$BIG" ] && { range=(-r "0-$((bytes - 1))"); okcode=206; }
    pids=$(server_pids "$s")
    if [ "$HAVE_PERF" = 1 ]; then
        perfo=$W/perf-$s.txt
        perf stat -x, -e cycles -p "$(echo $pids | tr ' ' ,)" -o "$perfo" >/dev/null 2>&1 &
        perfpid=$!; sleep 0.2
    fi
    t0=$(cpu_ticks $pids)
    # shellcheck disable=SC2086
    out=$($CLI curl -sS ${CURLF[$s]} --max-time 300 "${range[@]}" -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' "${BASE[$s]}/big.bin")
    t1=$(cpu_ticks $pids)
    if [ -n "$perfpid" ]; then kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null; fi
    read -r code size speed <<<"$out"
    if [ "$code" != $okcode ] || [ "$size" != "$bytes" ]; then err "$s scenario 1: status $code, $size of $bytes bytes"; return; fi
    record "$scen" throughput GB/s + "$s" "$(awk -v b="$speed" 'BEGIN { printf "%.4f", b / 1e9 }')"
    [ "$scen" = "$S1" ] || return
    record "$S5" "CPU user+sys (/proc/PID/stat)" "s/GiB" - "$s" \
        "$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v b="$bytes" 'BEGIN { printf "%.4f", t / hz / (b / 1073741824) }')"
    if [ -n "$perfo" ]; then
        cyc=$(awk -F, '$3 == "cycles" || $3 ~ /^cycles/ { print $1 }' "$perfo" | head -1)
        case "$cyc" in ''|*[!0-9]*) ;; *)
            record "$S5" "cycles (perf stat -p)" "Gcycles/GiB" - "$s" \
                "$(awk -v c="$cyc" -v b="$bytes" 'BEGIN { printf "%.4f", c / 1e9 / (b / 1073741824) }')" ;;
        esac
    fi
}

h2load_args() {  # SYSTEM
    if [ "$1" = nghttpd ]; then echo ""; else echo "--h1"; fi
}

scen2() {  # SYSTEM [SCENARIO]: the RSS figures only in the default layout
    local s=$1 scen=${2:-$S2} ppids opids out secs ok
    ppids=$(descendants ${PROXY_ROOTS[$s]}); opids=$(descendants ${ORIGIN_ROOTS[$s]})
    reset_hwm $ppids $opids
    out=$($CLI timeout 300 h2load $(h2load_args "$s") -n "$S2N" -c "$S2N" -m 1 "${BASE[$s]}/mid.bin" 2>&1)
    secs=$(sed -n 's/^finished in \([0-9.]*\)\(us\|ms\|s\),.*/\1 \2/p' <<<"$out")
    ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
    if [ -z "$secs" ] || [ "$ok" != "$S2N" ]; then err "$s scenario 2: $(grep -E 'finished|status codes|requests:' <<<"$out" | tr '\n' ' ')"; return; fi
    record "$scen" throughput GB/s + "$s" "$(awk -v t="$secs" -v n="$S2N" -v b="$MID" 'BEGIN { split(t, a, " "); if (a[2] == "ms") a[1] /= 1e3; if (a[2] == "us") a[1] /= 1e6; printf "%.4f", n * b / a[1] / 1e9 }')"
    [ "$scen" = "$S2" ] || return
    [ -n "$ppids" ] && [ "$ppids" != " " ] && record "$S4" "proxy-side peak RSS" MiB - "$s" "$(mib "$(kb_field VmHWM $ppids)")"
    record "$S4" "origin-side peak RSS" MiB - "$s" "$(mib "$(kb_field VmHWM $opids)")"
}

scen3() {
    local s=$1 out rps lat
    if [ "$s" = nghttpd ]; then
        out=$($CLI timeout 60 h2load -c 32 -t 2 -m 1 -D "$WRK_D" "${BASE[$s]}/small.bin" 2>&1)
        rps=$(sed -n 's/^finished in [0-9.]*[mu]\?s, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
        if [ -z "$rps" ] || grep -qE '^status codes: [0-9]+ 2xx, [1-9]' <<<"$out"; then err "$s scenario 3: $(grep -E 'finished|status' <<<"$out" | tr '\n' ' ')"; return; fi
        record "$S3" requests/s "req/s" + "$s" "$rps"
        return
    fi
    local perfo="" perfpid="" n ins cyc
    if [ "$HAVE_PERF" = 1 ]; then
        perfo=$W/perf3-$s.txt
        perf stat -x, -e instructions,cycles -p "$(echo $(server_pids "$s") | tr ' ' ,)" -o "$perfo" >/dev/null 2>&1 &
        perfpid=$!; sleep 0.2
    fi
    out=$($CLI timeout 60 wrk -c 32 -t 2 -d "${WRK_D}s" "${BASE[$s]}/small.bin" 2>&1)
    if [ -n "$perfpid" ]; then
        kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null
        n=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
        ins=$(awk -F, '$3 ~ /^instructions/ { print $1 }' "$perfo" | head -1)
        cyc=$(awk -F, '$3 ~ /^cycles/ { print $1 }' "$perfo" | head -1)
        case "$n$ins$cyc" in ''|*[!0-9]*) ;; *)
            [ "$n" -gt 0 ] && {
                record "$S3W" "instructions per request" "k" - "$s" "$(awk -v i="$ins" -v n="$n" 'BEGIN { printf "%.2f", i / n / 1e3 }')"
                record "$S3W" "cycles per request" "k" - "$s" "$(awk -v c="$cyc" -v n="$n" 'BEGIN { printf "%.2f", c / n / 1e3 }')"
            } ;;
        esac
    fi
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    if [ -z "$rps" ] || grep -qE 'Non-2xx|Socket errors' <<<"$out"; then err "$s scenario 3 (wrk): $(grep -E 'Requests/sec|Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ')"; fi
    [ -n "$rps" ] && record "$S3" requests/s "req/s" + "$s" "$rps"
    lat=$($CLI timeout 60 $PY bench/latency.py 127.0.0.1 "${BASE[$s]##*:}" /small.bin "$LAT_RATE" "$LAT_D" "$SMALL")
    local rc=$?
    if [ $rc -ne 0 ]; then err "$s scenario 3 (latency): $lat"; return; fi
    record "$S3L" "p50 latency" ms - "$s" "$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["p50_ms"])' "$lat")"
    record "$S3L" "p99 latency" ms - "$s" "$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["p99_ms"])' "$lat")"
}

# Scenario 4b: a fresh p holding IDLE_N idle tunnels.  c caps --connections at
# TT_ORIGIN_MAX_CONNECTIONS (256), so several c processes share the count.
IDLE_PER_C=250
scen4_idle() {  # SYSTEM (tether or tether@baseline)
    local sys=$1 bin=${TBIN[$1]} scen="4: $IDLE_N idle tunnels" est=0 base left n k=0 cs=()
    n=$IDLE_N; [ "$n" -gt $IDLE_PER_C ] && n=$IDLE_PER_C
    start_pc "idle-${TTAG[$sys]}" "$n" "$bin" || return
    cs+=("$C_PID"); left=$((IDLE_N - n))
    while [ $left -gt 0 ]; do
        k=$((k + 1)); n=$left; [ "$n" -gt $IDLE_PER_C ] && n=$IDLE_PER_C
        $SRV $(c_cmd "$PT_PORT" "$n" "$bin") >"$W/logs/c-idle-${TTAG[$sys]}$k.out" 2>&1 &
        cs+=($!); PIDS+=($!); left=$((left - n))
    done
    local end=$((SECONDS + 90))
    base=$(kb_field VmRSS "$P_PID")
    while [ $SECONDS -le $end ]; do
        est=$(ss -Htn state established "( sport = :$PT_PORT )" 2>/dev/null | wc -l)
        [ "$est" -ge "$IDLE_N" ] && break
        kill -0 "$P_PID" 2>/dev/null || break
        sleep 0.5
    done
    if [ "$est" -lt "$IDLE_N" ]; then
        err "$sys idle tunnels: only $est of $IDLE_N tunnels connected: $(tail -2 "$W/logs/c-idle-${TTAG[$sys]}.out" "$W/logs/p-idle-${TTAG[$sys]}.out" | tr '\n' ' ')"
    else
        sleep 2
        wait_tunnel "$P_PORT" 10 || err "$sys idle tunnels: p with $IDLE_N tunnels does not answer"
        record "$scen" "p RSS" MiB - "$sys" "$(mib "$(kb_field VmRSS "$P_PID")")"
        record "$scen" "p peak RSS (VmHWM)" MiB - "$sys" "$(mib "$(kb_field VmHWM "$P_PID")")"
        record "$scen" "c RSS, all c processes (${#cs[@]})" MiB - "$sys" "$(mib "$(kb_field VmRSS "${cs[@]}")")"
        log "$sys idle tunnels: p RSS $(mib "$base") MiB before, $(mib "$(kb_field VmRSS "$P_PID")") MiB with $est tunnels (${#cs[@]} c processes)"
    fi
    for k in "${cs[@]}"; do stop_pid "$k"; done
    stop_pid "$P_PID"
}

# Scenario 4c: SLOW_N clients each pull the big file at SLOW_RATE for SLOW_D s
# through a fresh p and c; p's RSS is sampled each second.
scen4_slow() {  # SYSTEM (tether or tether@baseline)
    local sys=$1 scen="4: $SLOW_N slow clients ($SLOW_RATE/s each, big file, ${SLOW_D}s)" i cpids=() rss first="" last max=0 total=0
    local series=$SERIES
    [ "$sys" = tether ] || series=$SERIES.${TTAG[$sys]}
    start_pc "slow-${TTAG[$sys]}" 1 "${TBIN[$sys]}" || return
    wait_tunnel "$P_PORT" 20 || { err "$sys slow clients: tunnel did not come up"; stop_pid "$C_PID"; stop_pid "$P_PID"; return; }
    mkdir -p "$W/slow"; rm -f "$W/slow/"*
    for i in $(seq "$SLOW_N"); do
        $CLI curl -s --limit-rate "$SLOW_RATE" --max-time "$((SLOW_D + 3))" -o /dev/null \
            -w '%{http_code} %{size_download}\n' "http://127.0.0.1:$P_PORT/big.bin" >"$W/slow/$i" 2>/dev/null &
        cpids+=($!)
    done
    echo "second  p VmRSS (MiB)" >"$series"
    for i in $(seq "$SLOW_D"); do
        sleep 1
        rss=$(mib "$(kb_field VmRSS "$P_PID")")
        echo "$i  $rss" >>"$series"
        [ -z "$first" ] && [ "$i" -ge 2 ] && first=$rss
        last=$rss
        max=$(awk -v a="$max" -v b="$rss" 'BEGIN { print (b > a) ? b : a }')
    done
    for i in "${cpids[@]}"; do wait "$i" 2>/dev/null; done
    local bad=0
    for i in $(seq "$SLOW_N"); do
        read -r code size <"$W/slow/$i" || { code=0; size=0; }
        total=$((total + size))
        [ "$code" = 200 ] && [ "$size" -gt 0 ] || bad=$((bad + 1))
    done
    [ $bad -gt 0 ] && err "$sys slow clients: $bad of $SLOW_N got no 200 with data"
    [ -z "$first" ] && first=$last
    record "$scen" "p RSS at 2 s" MiB - "$sys" "$first"
    record "$scen" "p RSS at end" MiB - "$sys" "$last"
    record "$scen" "p RSS max" MiB - "$sys" "$max"
    echo "clients moved $(numfmt --to=iec-i --suffix=B $total) in total ($(awk -v t=$total -v n="$SLOW_N" -v d="$SLOW_D" 'BEGIN { printf "%.2f", t / n / d / 1048576 }') MiB/s per client)" >>"$series"
    stop_pid "$C_PID"; stop_pid "$P_PID"
}

profile_tether() {  # perf record p and c over one scenario-1 download, and count their syscalls
    [ "$HAVE_PERF" = 1 ] || return
    local data=$W/perf.data pp sc=$W/perf-syscalls.txt
    local TP_PID=${PROXY_ROOTS[tether]} TC_PID=${ORIGIN_ROOTS[tether]}
    perf record -F 999 -o "$data" -p "$TP_PID,$TC_PID" >/dev/null 2>&1 &
    pp=$!
    sleep 0.3
    $CLI curl -s --max-time 120 -o /dev/null "${BASE[tether]}/big.bin"
    kill -INT "$pp" 2>/dev/null; wait "$pp" 2>/dev/null
    perf stat --per-thread -x, -e raw_syscalls:sys_enter -p "$TP_PID,$TC_PID" -o "$sc" >/dev/null 2>&1 &
    pp=$!
    sleep 0.3
    $CLI curl -s --max-time 120 -o /dev/null "${BASE[tether]}/big.bin"
    kill -INT "$pp" 2>/dev/null; wait "$pp" 2>/dev/null
    {
        echo "perf record -F 999 -p <p>,<c> during one $(numfmt --to=iec-i --suffix=B $BIG) download."
        echo
        echo "Share of samples by process and library:"
        perf report -i "$data" --stdio --no-children --sort comm,dso 2>/dev/null | grep -E '^ +[0-9.]+%' | head -14
        echo
        echo "Top symbols (libcrypto has no symbols here: its hex addresses are AES-GCM code):"
        perf report -i "$data" --stdio --no-children --sort comm,sym 2>/dev/null | grep -E '^ +[0-9.]+%' | head -25
        echo
        echo "System calls during one more $(numfmt --to=iec-i --suffix=B $BIG) download (perf stat -e raw_syscalls:sys_enter), per MiB moved:"
        awk -F, -v b="$BIG" 'NF >= 3 && $2 ~ /^[0-9]+$/ { split($1, a, "-"); n[a[1]] += $2 }
            END { for (k in n) printf "  %-10s %10d calls, %.1f per MiB\n", k, n[k], n[k] / (b / 1048576) }' "$sc"
    } >"$PROF"
}

# ---------------------------------------------------------------- scenario 6
# Instructions per request under valgrind's callgrind: a count of the work
# done, not of time, so the same binaries and inputs give (nearly) the same
# figure however busy the shared machine is.  A fresh pair of server-side
# processes runs under callgrind for each count: start, one checked curl
# (the tunnel is up), CG_WARM requests of warm-up, then N requests (h2load
# -c4 -m1, the 1 KiB file, HTTP/1.1 or h2c on the plaintext port), SIGTERM,
# and callgrind's totals.  The same again with 2N requests; the slope
# (I(2N) - I(N)) / N is the work per request, with start-up, the tunnel's TLS
# handshake, the warm-up, h2load's 4 connections and the drain cancelled.
S6="6: instructions per request, valgrind callgrind (1 KiB file, h2load -c4 -m1 on the plaintext port, slope of $CG_N and $((2 * CG_N)) requests; reference: nghttpx as p, nghttpd as c)"
CG_WAIT=180    # seconds: a start or a stop under callgrind is ~50x slower
CG_SYSTEMS=()
CG_UNHANDLED=" "
CG_NOTE=

cg_vg() {  # OUT_PREFIX: the valgrind command line (one out file per process, %p)
    echo "valgrind --tool=callgrind --trace-children=yes --dump-line=no --callgrind-out-file=$1.%p.cg --log-file=$1.%p.vg"
}

cg_total() {  # OUT_PREFIX: Ir summed over that prefix's out files (every process)
    local f t=0 v n=0
    for f in "$1".*.cg; do
        [ -s "$f" ] || continue
        v=$(awk '/^totals:/ { print $2; exit } /^summary:/ { s = $2 } END { if (s != "") print s }' "$f" | head -1)
        case "$v" in ''|*[!0-9]*) return 1 ;; esac
        t=$((t + v)); n=$((n + 1))
    done
    [ $n -gt 0 ] && echo $t
}

cg_stop() {  # PID: SIGTERM and wait for callgrind to write its file (KILL loses it)
    local p=$1 keep=() q rc=0
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq $((CG_WAIT * 5))); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; rc=1; fi
    wait "$p" 2>/dev/null
    for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
    return $rc
}

cg_up() {  # PORT: one curl of small.bin answers 200 with the right bytes (polled once a second)
    local end=$((SECONDS + CG_WAIT)) code f=$W/cg/small.got
    while [ $SECONDS -le $end ]; do
        code=$(curl -s -o "$f" -w '%{http_code}' --max-time 20 "http://127.0.0.1:$1/small.bin")
        if [ "$code" = 200 ]; then
            [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(cat "$SUMS/small.bin.sha256")" ] && return 0
            err "callgrind: small.bin through port $1 downloaded wrong"; return 1
        fi
        sleep 1
    done
    return 1
}

cg_h2load() {  # WHAT PROTO N URL: N requests, all 2xx
    local out ok flag=""
    [ "$2" = h1 ] && flag=--h1
    out=$($CLI timeout $((CG_WAIT * 2)) h2load $flag -n "$3" -c 4 -m 1 "$4" 2>&1)
    ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
    [ "$ok" = "$3" ] && return 0
    err "$1: h2load $flag -n $3: $(grep -E 'finished|status codes|requests:' <<<"$out" | tr '\n' ' ')"
    return 1
}

cg_once() {  # SYSTEM PROTO N -> CG_I="I_proxy I_origin" (not in a subshell: PIDS must see the processes)
    local sys=$1 proto=$2 n=$3 d=$W/cg pre port tport ppid= opid= ok=0 ip io
    CG_I=
    pre=$d/${sys//@/-}-$proto-$n
    rm -f "$pre".p.* "$pre".c.*
    port=$(freeport)
    if [ "$sys" = nghttpx ]; then
        tport=$(freeport)
        $SRV $(cg_vg "$pre.c") nghttpd -a 127.0.0.1 -n 1 -d "$WWW" "$tport" "$W/tls/key.pem" "$W/tls/cert.pem" \
            >"$W/logs/cg-nghttpd.out" 2>&1 &
        opid=$!; PIDS+=("$opid")
        if wait_port "$tport" "$CG_WAIT"; then
            : >"$d/nghttpx.conf"
            $SRV $(cg_vg "$pre.p") nghttpx --conf="$d/nghttpx.conf" -n 1 -f "127.0.0.1,$port;no-tls" \
                -b "127.0.0.1,$tport;;proto=h2;tls" -k --errorlog-file="$W/logs/cg-nghttpx.err" \
                --pid-file="$d/nghttpx.pid" >"$W/logs/cg-nghttpx.out" 2>&1 &
            ppid=$!; PIDS+=("$ppid")
        fi
    else
        local bin=${TBIN[$sys]}
        tport=$(freeport)
        $SRV $(cg_vg "$pre.p") $(p_cmd "$port" "$tport" warn "$bin") >"$W/logs/cg-p.out" 2>&1 &
        ppid=$!; PIDS+=("$ppid")
        if wait_port "$tport" "$CG_WAIT" && wait_port "$port" "$CG_WAIT"; then
            $SRV $(cg_vg "$pre.c") $(c_cmd "$tport" 1 "$bin") >"$W/logs/cg-c.out" 2>&1 &
            opid=$!; PIDS+=("$opid")
        fi
    fi
    if [ -z "${ppid:-}" ] || [ -z "${opid:-}" ]; then
        err "$sys callgrind: did not start: $(tail -2 "$W"/logs/cg-*.out 2>/dev/null | tr '\n' ' ')"; ok=1
    elif ! cg_up "$port"; then
        err "$sys callgrind: no 200 through port $port within $CG_WAIT s"; ok=1
    else
        cg_h2load "$sys callgrind warm-up ($proto)" "$proto" "$CG_WARM" "http://127.0.0.1:$port/small.bin" &&
            cg_h2load "$sys callgrind ($proto)" "$proto" "$n" "http://127.0.0.1:$port/small.bin" || ok=1
    fi
    # Proxy side first for nghttpx (nghttpd answers nothing once it is gone);
    # origin side first for tether, so that c does not redial a draining p.
    if [ "$sys" = nghttpx ]; then
        [ -n "${ppid:-}" ] && { cg_stop "$ppid" || { err "$sys callgrind: proxy side did not stop on SIGTERM"; ok=1; }; }
        [ -n "${opid:-}" ] && { cg_stop "$opid" || { err "$sys callgrind: origin side did not stop on SIGTERM"; ok=1; }; }
    else
        [ -n "${opid:-}" ] && { cg_stop "$opid" || { err "$sys callgrind: c did not stop on SIGTERM"; ok=1; }; }
        [ -n "${ppid:-}" ] && { cg_stop "$ppid" || { err "$sys callgrind: p did not stop on SIGTERM"; ok=1; }; }
    fi
    local u
    for u in $(sed -n 's/.*WARNING: unhandled [a-z0-9]*-linux syscall: \([0-9]*\).*/\1/p' "$pre".*.vg 2>/dev/null | sort -u); do
        case " $CG_UNHANDLED " in *" $u "*) ;; *) CG_UNHANDLED+="$u " ;; esac
    done
    [ $ok = 0 ] || return 1
    ip=$(cg_total "$pre.p") && io=$(cg_total "$pre.c") || { err "$sys callgrind: no totals in $pre.*.cg"; return 1; }
    CG_I="$ip $io"
}

scen6() {  # SYSTEM PROTO: one slope
    local sys=$1 proto=$2 a b label
    label=HTTP/1.1; [ "$proto" = h2c ] && label=h2c
    cg_once "$sys" "$proto" "$CG_N" || return
    a=$CG_I
    cg_once "$sys" "$proto" $((2 * CG_N)) || return
    b=$CG_I
    set -- $a $b
    log "callgrind $sys $proto: I($CG_N) = $1 + $2, I($((2 * CG_N))) = $3 + $4 (proxy + origin side)"
    record "$S6" "$label: p" "k instructions" - "$sys" "$(awk -v a="$1" -v b="$3" -v n="$CG_N" 'BEGIN { printf "%.2f", (b - a) / n / 1e3 }')"
    record "$S6" "$label: c" "k instructions" - "$sys" "$(awk -v a="$2" -v b="$4" -v n="$CG_N" 'BEGIN { printf "%.2f", (b - a) / n / 1e3 }')"
    record "$S6" "$label: p+c" "k instructions" - "$sys" "$(awk -v a="$(($1 + $2))" -v b="$(($3 + $4))" -v n="$CG_N" 'BEGIN { printf "%.2f", (b - a) / n / 1e3 }')"
}

callgrind_all() {
    CG_SYSTEMS=()
    if ! have valgrind; then
        log "scenario 6 skipped: valgrind is not installed (Debian package valgrind)"
        ABSENT+=("scenario 6, callgrind instructions per request (valgrind)"); return
    fi
    [ -n "$BASELINE" ] && { want tether || want tether@baseline; } && CG_SYSTEMS+=(tether@baseline)
    want tether && CG_SYSTEMS+=(tether)
    if want nghttpx; then
        if have nghttpx && have nghttpd; then CG_SYSTEMS+=(nghttpx)
        else log "scenario 6: reference nghttpx -> nghttpd skipped: not installed (Debian packages nghttp2-proxy, nghttp2-server)"
        fi
    fi
    [ ${#CG_SYSTEMS[@]} -gt 0 ] || return
    make_cert
    [ -n "$FPR" ] || tether_fingerprint || return
    mkdir -p "$W/cg"; rm -f "$W/cg/"*
    local r s proto
    for r in $(seq "$CG_RUNS"); do
        for proto in h1 h2c; do
            log "run $r/$CG_RUNS: scenario 6 (callgrind, $proto): ${CG_SYSTEMS[*]}"
            for s in "${CG_SYSTEMS[@]}"; do scen6 "$s" "$proto"; done
        done
    done
    # valgrind answers a system call it does not know with ENOSYS, and the
    # program takes its fallback: 437 is openat2, c's one-call way to a
    # file (valgrind 3.19 lacks it), so c counts its realpath() route.
    local u names=""
    for u in $CG_UNHANDLED; do names+="${names:+, }$u$([ "$u" = 437 ] && echo " (openat2: c served every file by its realpath() route instead)")"; done
    if [ -n "$names" ]; then
        CG_NOTE="valgrind $(valgrind --version | sed 's/valgrind-//') does not know system call $names; under callgrind it returns ENOSYS, so those figures include the fallback path"
        log "scenario 6: $CG_NOTE"
    fi
}

# ---------------------------------------------------------------- scenario 7
# Fairness: one good client (bench/latency.py, open loop, FAIR_RATE req/s of
# the 1 KiB file over HTTP/1.1 keep-alive) while each abuse runs alone for
# FAIR_D s against a fresh proxy side and origin side; its p50, p99 and error
# count per abuse, and p's RSS at the start, at its peak and FAIR_AFTER s after
# the last abuse.  Abusers run niced on the client cpu, so the good client wins
# the client core and what it sees is the server side's doing.
STORM=$ROOT/integration-tests/abortstorm.py
FAIR_ABUSES="none a b c d"
fair_desc() {  # ABUSE: what it is, for the scenario's rows and the report
    case $1 in
        none) echo "alone (no abuse)" ;;
        a) echo "stalled readers: $FAIR_A_N HTTP/1.1 + $FAIR_A_S zero-window h2c streams on the big file" ;;
        b) echo "zero-window h2c: $FAIR_B_M connections x $FAIR_B_S streams on the big file" ;;
        c) echo "abort burst: abortstorm h1 $FAIR_C_N + h2reset $FAIR_C_C x $FAIR_C_S, repeated" ;;
        d) echo "overload: h2load -c $FAIR_D_C -m $FAIR_D_M -D $FAIR_D (h2c, 1 KiB file)" ;;
    esac
}
S7="7: fairness, a good client ($FAIR_RATE req/s of 1 KiB, HTTP/1.1 keep-alive, open loop) during each abuse for ${FAIR_D}s"
FAIR_SYSTEMS=()

fair_start() {  # SYSTEM -> FAIR_PORT FAIR_PROXY (p's PID / nghttpx's) FAIR_STOP (PIDs, stop order)
    local sys=$1
    if [ "$sys" = nghttpx ]; then
        local keep_d=${NGHTTPD_PORT:-} keep_dp=${NGHTTPD_PID:-} keep_x=${NGHTTPX_PORT:-} keep_xp=${NGHTTPX_PID:-}
        start_nghttpd || return 1
        FAIR_STOP="$NGHTTPD_PID"
        start_nghttpx default || { stop_pid "$NGHTTPD_PID"; return 1; }
        FAIR_PORT=$NGHTTPX_PORT; FAIR_PROXY=$NGHTTPX_PID; FAIR_STOP="$NGHTTPX_PID $NGHTTPD_PID"
        NGHTTPD_PORT=$keep_d; NGHTTPD_PID=$keep_dp; NGHTTPX_PORT=$keep_x; NGHTTPX_PID=$keep_xp
    else
        start_pc "fair-${TTAG[$sys]}" 1 "${TBIN[$sys]}" || return 1
        FAIR_PORT=$P_PORT; FAIR_PROXY=$P_PID; FAIR_STOP="$C_PID $P_PID"   # c first: no redial
    fi
    wait_tunnel "$FAIR_PORT" 20 && return 0
    err "$sys fairness: no 200 through port $FAIR_PORT within 20 s"
    local q; for q in $FAIR_STOP; do stop_pid "$q"; done
    return 1
}

fair_abuse() {  # ABUSE PORT OUT: starts it in the background -> FAIR_APID
    local port=$2 out=$3 i nice="nice -n 10 $CLI"
    case $1 in
        a) $nice $PY "$STORM" "$port" /big.bin stall "$FAIR_A_N" "$FAIR_A_S" $((FAIR_D + 1)) >"$out" 2>&1 & ;;
        b) ( for i in $(seq "$FAIR_B_M"); do
                 $nice $PY "$STORM" "$port" /big.bin stall 0 "$FAIR_B_S" $((FAIR_D + 1)) &
             done; wait ) >"$out" 2>&1 & ;;
        c) ( end=$((SECONDS + FAIR_D))
             while [ $SECONDS -lt $end ]; do
                 $nice $PY "$STORM" "$port" /big.bin h1 "$FAIR_C_N"
                 $nice $PY "$STORM" "$port" /big.bin h2reset "$FAIR_C_C" "$FAIR_C_S"
             done ) >"$out" 2>&1 & ;;
        d) $nice timeout $((FAIR_D + 30)) h2load -c "$FAIR_D_C" -m "$FAIR_D_M" -D "$FAIR_D" \
               "http://127.0.0.1:$port/small.bin" >"$out" 2>&1 & ;;
    esac
    FAIR_APID=$!; PIDS+=("$FAIR_APID")
}

fair_reap() {  # PID SECONDS: wait for an abuse to end by itself, else stop it and its children by PID
    local p=$1 end=$((SECONDS + $2)) q keep=()
    while [ $SECONDS -le $end ] && kill -0 "$p" 2>/dev/null; do sleep 0.2; done
    if kill -0 "$p" 2>/dev/null; then
        for q in $(descendants "$p"); do kill -TERM "$q" 2>/dev/null; done
        sleep 0.5
        for q in $(descendants "$p"); do kill -KILL "$q" 2>/dev/null; done
    fi
    wait "$p" 2>/dev/null
    for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
}

scen7() {  # SYSTEM: one pass of every abuse against a fresh proxy side and origin side
    local sys=$1 d=$W/fair ab out lat rc errs p50 p99 big bigpid code size secs start peak after ppids i
    mkdir -p "$d"
    fair_start "$sys" || return
    ppids=$(descendants "$FAIR_PROXY")
    for ab in $FAIR_ABUSES; do
        out=$d/${sys//@/-}-$ab.out; rm -f "$out" "$d/big.out"
        if [ "$ab" = a ]; then   # RSS at the start: after the calm phase, before any abuse
            start=$(kb_field VmRSS $ppids); reset_hwm $ppids
        fi
        FAIR_APID=
        if [ "$ab" != none ]; then
            fair_abuse "$ab" "$FAIR_PORT" "$out"
            if [ "$ab" = a ] || [ "$ab" = b ]; then   # the streams are held before the good client starts
                for i in $(seq 60); do
                    [ "$(grep -c 'hold' "$out" 2>/dev/null)" -ge "$([ "$ab" = b ] && echo "$FAIR_B_M" || echo 1)" ] && break
                    kill -0 "$FAIR_APID" 2>/dev/null || break
                    sleep 0.1
                done
            else
                sleep 0.3
            fi
        fi
        bigpid=
        if [ "$ab" = a ]; then   # the good client's one whole big download, beside the stalled ones
            $CLI curl -s -o /dev/null --max-time 300 -w '%{http_code} %{size_download} %{time_total}\n' \
                "http://127.0.0.1:$FAIR_PORT/big.bin" >"$d/big.out" 2>/dev/null &
            bigpid=$!; PIDS+=("$bigpid")
        fi
        lat=$($CLI timeout $((FAIR_D + 30)) $PY bench/latency.py 127.0.0.1 "$FAIR_PORT" /small.bin "$FAIR_RATE" "$FAIR_D" "$SMALL")
        rc=$?
        errs=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["errors"])' "$lat" 2>/dev/null)
        if [ -z "$errs" ]; then
            err "$sys fairness ($ab): the good client did not report (rc $rc): $lat"
            [ -n "$FAIR_APID" ] && fair_reap "$FAIR_APID" 0
            [ -n "$bigpid" ] && fair_reap "$bigpid" 0
            continue
        fi
        p50=$($PY -c 'import json,sys; v = json.loads(sys.argv[1])["p50_ms"]; print("" if v is None else v)' "$lat")
        p99=$($PY -c 'import json,sys; v = json.loads(sys.argv[1])["p99_ms"]; print("" if v is None else v)' "$lat")
        if [ -n "$bigpid" ]; then
            fair_reap "$bigpid" 300
            read -r code size secs <"$d/big.out" || { code=0; size=0; secs=; }
            if [ "$code" = 200 ] && [ "$size" = "$BIG" ]; then
                record "$S7" "a: big download beside them" s - "$sys" "$secs"
            else
                errs=$((errs + 1)); log "$sys fairness (a): the good big download got status $code, $size of $BIG bytes"
            fi
        fi
        [ -n "$FAIR_APID" ] && fair_reap "$FAIR_APID" 30
        [ "$ab" = none ] || log "$sys fairness ($ab): $(grep -E '^(stall|h1|h2reset|h2close):|^status codes|^requests:' "$out" | sort | uniq -c | head -4 | sed 's/^ *//' | tr '\n' ';')"
        [ "$errs" -gt 0 ] && log "$sys fairness ($ab): $errs good-client errors, first: $($PY -c 'import json,sys; print(json.loads(sys.argv[1])["first_error"])' "$lat" 2>/dev/null)"
        [ -n "$p50" ] && record "$S7" "$ab: p50 latency" ms - "$sys" "$p50"
        [ -n "$p99" ] && record "$S7" "$ab: p99 latency" ms - "$sys" "$p99"
        record "$S7" "$ab: good-client errors" count - "$sys" "$errs"
        kill -0 "$FAIR_PROXY" 2>/dev/null || { err "$sys fairness: the proxy side died during abuse $ab"; break; }
        sleep 1   # what one abuse leaves behind settles before the next
    done
    if kill -0 "$FAIR_PROXY" 2>/dev/null && [ -n "${start:-}" ]; then
        peak=$(kb_field VmHWM $ppids)
        sleep "$FAIR_AFTER"
        after=$(kb_field VmRSS $ppids)
        record "$S7" "p RSS at start" MiB - "$sys" "$(mib "$start")"
        record "$S7" "p peak RSS (VmHWM)" MiB - "$sys" "$(mib "$peak")"
        record "$S7" "p RSS ${FAIR_AFTER}s after" MiB - "$sys" "$(mib "$after")"
        record "$S7" "p RSS after / start" x - "$sys" "$(awk -v a="$after" -v s="$start" 'BEGIN { printf "%.3f", s ? a / s : 0 }')"
        log "$sys fairness: p RSS $(mib "$start") MiB at start, peak $(mib "$peak"), $(mib "$after") ${FAIR_AFTER}s after"
    fi
    local q; for q in $FAIR_STOP; do stop_pid "$q"; done
}

fairness_all() {
    FAIR_SYSTEMS=()
    [ -n "$BASELINE" ] && { want tether || want tether@baseline; } && FAIR_SYSTEMS+=(tether@baseline)
    want tether && FAIR_SYSTEMS+=(tether)
    if want nghttpx; then
        if have nghttpx && have nghttpd; then FAIR_SYSTEMS+=(nghttpx)
        else
            log "scenario 7: reference nghttpx -> nghttpd skipped: not installed (Debian packages nghttp2-proxy, nghttp2-server; BENCH=1 tools/deps.sh)"
            ABSENT+=("scenario 7 reference nghttpx -> nghttpd (nghttp2-proxy, nghttp2-server)")
        fi
    fi
    [ ${#FAIR_SYSTEMS[@]} -gt 0 ] || return
    "$PY" -c 'import h2' 2>/dev/null || { err "scenario 7 needs python3-h2 for integration-tests/abortstorm.py (tools/deps.sh)"; return; }
    make_cert
    [ -n "$FPR" ] || tether_fingerprint || return
    local ab r s
    for ab in $FAIR_ABUSES; do echo "fair_$ab=$(fair_desc "$ab")" >>"$W/fair.meta"; done
    for r in $(seq "$FAIR_RUNS"); do
        for s in "${FAIR_SYSTEMS[@]}"; do
            log "run $r/$FAIR_RUNS: scenario 7 (fairness, ${FAIR_D}s per abuse): $s"
            scen7 "$s"
        done
    done
}

# ---------------------------------------------------------------- scenario 8
# gRPC (issue 10): the same client (bench/grpc_bench.py on Debian's
# python3-grpcio) calls the same server, once directly (the row
# "grpc-direct") and twice through tether: the reverse path (the row
# "tether": client -> p's h2c front -> tunnel -> c --upstream h2c:// ->
# server) and the forward link (the row "tether-fwd": client -> c
# --local-listen -> forward link -> p --service g=h2c:// -> server, the
# calls' :authority set to g; its own p and c, this tree's build only, and
# a tokens file whose line gives the name calls=g).  Per pass and system, each phase on a
# fresh channel: GRPC_N sequential unary calls of 16 bytes after GRPC_WARM
# of warm-up (p50, p99), one server stream of GRPC_STREAM x 100 bytes
# (messages/s), GRPC_BIG_REPS unary calls of GRPC_BIG each way (median
# time).  Within each pass every phase runs over all systems in turn (the
# unary calls of direct, reverse and forward, then the streams, then the
# big calls), and the overhead (tether
# p50 - direct p50) and the stream ratio are taken within each pass, so a
# drift of the shared machine between passes does not enter them.  p's and
# c's CPU per call and per message come from /proc/PID/task/*/schedstat
# (nanoseconds), the warm-up and the first call included.
S8="8: gRPC (python3-grpcio, $GRPC_SERVER server): $GRPC_N sequential unary calls of 16 B, a server stream of $GRPC_STREAM x 100 B, $(numfmt --to=iec-i --suffix=B $GRPC_BIG) each way"
GRPC_SYSTEMS=()
declare -A GPORT GSTOP GAUTH

sched_ns() {  # PID...: CPU time of every thread of those processes, ns
    local t=0 p f v
    for p in "$@"; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r v _ 2>/dev/null <"$f" || continue
            t=$((t + v))
        done
    done
    echo $t
}

grpc_up() {  # PORT SECONDS [AUTHORITY]: until an empty Echo through that port answers 200
    local end=$((SECONDS + $2)) out host=()
    [ -n "${3:-}" ] && host=(-H "Host: $3")   # curl sends it as the :authority
    while [ $SECONDS -le $end ]; do
        out=$(printf '\0\0\0\0\0' | curl -s --http2-prior-knowledge --max-time 2 -o /dev/null "${host[@]}" \
            -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
            -w '%{http_code}' "http://127.0.0.1:$1/tb.Bench/Echo" 2>/dev/null)
        [ "$out" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

start_upstream_pc() {  # LABEL TAG BIN_DIR UPSTREAM -> UP_PORT UP_P UP_C: p, and c --upstream UPSTREAM
    local label=$1 tag=$2 bin=$3 up=$4 pt
    UP_PORT=$(freeport); pt=$(freeport)
    $SRV $(p_cmd "$UP_PORT" "$pt" "${BENCH_P_LOG:-warn}" "$bin") >"$W/logs/p-$tag.out" 2>&1 &
    UP_P=$!; PIDS+=("$UP_P")
    if ! wait_port "$pt" 10 || ! wait_port "$UP_PORT" 5; then
        err "$label: bin/p did not start: $(tail -3 "$W/logs/p-$tag.out" | tr '\n' ' ')"; stop_pid "$UP_P"; return 1
    fi
    $SRV "$bin/c" --proxy "127.0.0.1:$pt" --name bench --token "$TOKEN" --fingerprint "sha256:$FPR" \
        --upstream "$up" --log-level warn --connections 1 >"$W/logs/c-$tag.out" 2>&1 &
    UP_C=$!; PIDS+=("$UP_C")
}

grpc_start_tether() {  # SYSTEM APP_PORT -> GPORT GSTOP
    local sys=$1 app=$2 bin=${TBIN[$1]} tag=grpc-${TTAG[$1]} pp pid cpid
    start_upstream_pc "$sys gRPC" "$tag" "$bin" "h2c://127.0.0.1:$app" || return 1
    pp=$UP_PORT; pid=$UP_P; cpid=$UP_C
    GSTOP[$sys]="$cpid $pid"   # c first: no redial
    if ! grpc_up "$pp" 20; then
        err "$sys gRPC: no answer through p within 20 s: $(tail -3 "$W/logs/c-$tag.out" "$W/logs/p-$tag.out" | tr '\n' ' ')"
        stop_pid "$cpid"; stop_pid "$pid"; return 1
    fi
    GPORT[$sys]=$pp
}

GRPC_SVC=g   # the forward link's p --service name, the calls' :authority
grpc_start_fwd() {  # SYSTEM APP_PORT -> GPORT GSTOP GAUTH: c --local-listen -> p --service
    local sys=$1 app=$2 bin=${TBIN[$1]} tag=grpc-fwd pp pt ll pid cpid tok=$W/grpc/tokens
    pp=$(freeport); pt=$(freeport); ll=$(freeport)
    (umask 077; echo "bench $TOKEN calls=$GRPC_SVC" >"$tok")
    $SRV "$bin/p" --listen "127.0.0.1:$pp" --tunnel-listen "127.0.0.1:$pt" --state-dir "$W/tether-state" \
        --tokens "$tok" --service "$GRPC_SVC=h2c://127.0.0.1:$app" --log-level "${BENCH_P_LOG:-warn}" \
        >"$W/logs/p-$tag.out" 2>&1 &
    pid=$!; PIDS+=("$pid")
    if ! wait_port "$pt" 10; then
        err "$sys gRPC: bin/p --service did not start: $(tail -3 "$W/logs/p-$tag.out" | tr '\n' ' ')"; stop_pid "$pid"; return 1
    fi
    $SRV "$bin/c" --proxy "127.0.0.1:$pt" --name bench --token "$TOKEN" --fingerprint "sha256:$FPR" \
        --local-listen "127.0.0.1:$ll" --log-level warn >"$W/logs/c-$tag.out" 2>&1 &
    cpid=$!; PIDS+=("$cpid")
    GSTOP[$sys]="$cpid $pid"   # c first: no redial
    if ! wait_port "$ll" 10 || ! grpc_up "$ll" 20 "$GRPC_SVC"; then
        err "$sys gRPC: no answer through c --local-listen within 20 s: $(tail -3 "$W/logs/c-$tag.out" "$W/logs/p-$tag.out" | tr '\n' ' ')"
        stop_pid "$cpid"; stop_pid "$pid"; return 1
    fi
    GPORT[$sys]=$ll; GAUTH[$sys]=$GRPC_SVC
}

grpc_client() {  # SYSTEM PHASE A B -> GOUT (its JSON), GCPU (p+c ns, tether only); 1 on failure
    local sys=$1 a b rc auth=(); shift
    [ -n "${GAUTH[$sys]:-}" ] && auth=(--authority "${GAUTH[$sys]}")
    a=$(sched_ns ${GSTOP[$sys]:-})
    GOUT=$($CLI timeout 400 $PY bench/grpc_bench.py client "127.0.0.1:${GPORT[$sys]}" "$@" "${auth[@]}")
    rc=$?
    b=$(sched_ns ${GSTOP[$sys]:-})
    GCPU=$((b - a))
    if [ $rc -ne 0 ]; then err "$sys gRPC ($1): rc $rc: $(tail -c 300 <<<"$GOUT")"; return 1; fi
}

jget() { $PY -c 'import json,sys; v = json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

scen8() {  # one pass: each phase over every system in turn, so a system's phase
    local s p50 mps big   # runs seconds, not a whole pass, after direct's
    declare -A P50 MPS BIG
    for s in "${GRPC_SYSTEMS[@]}"; do
        if grpc_client "$s" unary "$GRPC_WARM" "$GRPC_N"; then
            p50=$(jget "$GOUT" unary_p50_us); P50[$s]=$p50
            record "$S8" "unary p50 latency" "µs" - "$s" "$p50"
            record "$S8" "unary p99 latency" "µs" - "$s" "$(jget "$GOUT" unary_p99_us)"
            [ "$s" = grpc-direct ] || record "$S8" "p+c CPU per unary call (schedstat)" "µs" - "$s" \
                "$(awk -v t="$GCPU" -v n=$((GRPC_N + GRPC_WARM + 1)) 'BEGIN { printf "%.1f", t / n / 1e3 }')"
        fi
    done
    for s in "${GRPC_SYSTEMS[@]}"; do
        if grpc_client "$s" stream "$GRPC_STREAM" 100; then
            mps=$(jget "$GOUT" stream_msgs_per_s); MPS[$s]=$mps
            record "$S8" "server stream" "msgs/s" + "$s" "$mps"
            [ "$s" = grpc-direct ] || record "$S8" "p+c CPU per stream message (schedstat)" "µs" - "$s" \
                "$(awk -v t="$GCPU" -v n="$GRPC_STREAM" 'BEGIN { printf "%.2f", t / n / 1e3 }')"
        fi
    done
    for s in "${GRPC_SYSTEMS[@]}"; do
        if grpc_client "$s" big "$GRPC_BIG" "$GRPC_BIG_REPS"; then
            big=$(jget "$GOUT" big_s); BIG[$s]=$big
            record "$S8" "$(numfmt --to=iec-i --suffix=B $GRPC_BIG) each way, one unary call" s - "$s" "$big"
        fi
    done
    local d=grpc-direct
    for s in "${GRPC_SYSTEMS[@]}"; do
        [ "$s" = $d ] && continue
        [ -n "${P50[$s]:-}" ] && [ -n "${P50[$d]:-}" ] &&
            record "$S8" "unary overhead: p50 - direct p50 (same pass)" "µs" - "$s" \
                "$(awk -v a="${P50[$s]}" -v b="${P50[$d]}" 'BEGIN { printf "%.1f", a - b }')"
        [ -n "${MPS[$s]:-}" ] && [ -n "${MPS[$d]:-}" ] &&
            record "$S8" "server stream / direct (same pass)" x + "$s" \
                "$(awk -v a="${MPS[$s]}" -v b="${MPS[$d]}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
        [ -n "${BIG[$s]:-}" ] && [ -n "${BIG[$d]:-}" ] &&
            record "$S8" "$(numfmt --to=iec-i --suffix=B $GRPC_BIG) each way / direct (same pass)" x - "$s" \
                "$(awk -v a="${BIG[$s]}" -v b="${BIG[$d]}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
    done
    [ -n "${P50[tether-fwd]:-}" ] && [ -n "${P50[tether]:-}" ] &&
        record "$S8" "forward: unary p50 - reverse p50 (same pass)" "µs" - tether-fwd \
            "$(awk -v a="${P50[tether-fwd]}" -v b="${P50[tether]}" 'BEGIN { printf "%.1f", a - b }')"
}

grpc_all() {
    GRPC_SYSTEMS=()
    if ! "$PY" -c 'import grpc' 2>/dev/null; then
        log "scenario 8 skipped: python3-grpcio is not installed (tools/deps.sh installs it)"
        ABSENT+=("scenario 8, gRPC (python3-grpcio)"); return
    fi
    local want_t=0 want_f=0 s q d=$W/grpc r
    want tether && want_t=1
    { want tether || want tether-fwd; } && want_f=1
    { [ $want_t = 1 ] || [ $want_f = 1 ] || want grpc-direct; } && GRPC_SYSTEMS+=(grpc-direct)
    [ -n "$BASELINE" ] && { want tether || want tether@baseline; } && GRPC_SYSTEMS+=(tether@baseline)
    [ $want_t = 1 ] && GRPC_SYSTEMS+=(tether)
    [ $want_f = 1 ] && GRPC_SYSTEMS+=(tether-fwd)
    [ ${#GRPC_SYSTEMS[@]} -gt 0 ] || return
    mkdir -p "$d"; rm -f "$d/port"
    local sflag=""; [ "$GRPC_SERVER" = sync ] && sflag=--sync
    $SRV $PY bench/grpc_bench.py server "$d/port" $sflag >"$W/logs/grpc-server.out" 2>&1 &
    local app=$!; PIDS+=("$app")
    for _ in $(seq 150); do [ -s "$d/port" ] && break; kill -0 "$app" 2>/dev/null || break; sleep 0.1; done
    if [ ! -s "$d/port" ]; then err "scenario 8: the gRPC server did not start: $(tail -3 "$W/logs/grpc-server.out" | tr '\n' ' ')"; stop_pid "$app"; return; fi
    local aport; aport=$(cat "$d/port")
    GPORT[grpc-direct]=$aport; GSTOP[grpc-direct]=""
    grpc_up "$aport" 10 || { err "scenario 8: the gRPC server does not answer on $aport"; stop_pid "$app"; return; }
    echo "grpc=python3-grpcio $($PY -c 'import grpc; print(grpc.__version__)'), $GRPC_SERVER server (bench/grpc_bench.py)" >"$W/grpc.meta"
    local up=()
    for s in "${GRPC_SYSTEMS[@]}"; do
        [ "$s" = grpc-direct ] && { up+=("$s"); continue; }
        make_cert
        [ -n "$FPR" ] || tether_fingerprint || continue
        if [ "$s" = tether-fwd ]; then grpc_start_fwd "$s" "$aport" && up+=("$s")
        else grpc_start_tether "$s" "$aport" && up+=("$s"); fi
    done
    GRPC_SYSTEMS=("${up[@]}")
    for r in $(seq "$RUNS"); do
        log "run $r/$RUNS: scenario 8 (gRPC): ${GRPC_SYSTEMS[*]}"
        scen8
    done
    for s in "${GRPC_SYSTEMS[@]}"; do for q in ${GSTOP[$s]:-}; do stop_pid "$q"; done; done
    stop_pid "$app"
}

# ---------------------------------------------------------------- scenario 9
# TCP bulk (issue 11): one TCP connection moves TCP_SIZE bytes to a service
# on 127.0.0.1 (bench/tcp_bulk.py: os.sendfile out of a random 64 MiB
# pattern file, sent over and over, recv_into a 4 MiB buffer in; the
# receiver counts to EOF), "up" (client -> service: the client sends, then
# half-closes; its time ends at the service's count) and "down" (service ->
# client: the service sends, the client counts to EOF).  Three paths, one
# service: "tcp-direct" (client -> service), "ssh-tcp" (client -> sshd's
# remote forward, ssh -R -> service; its own sshd and ssh, as start_ssh
# makes them) and "tether" (client -> p --tcp-listen -> one tunnel ->
# c --tcp -> service; its own p and c).  Before any timing every path moves
# a pattern both ways with SHA-256 checked at the receiver.  Within each pass
# each direction runs over all paths in turn, and the ratios tether / ssh -R
# and tether / direct are taken within the pass.  CPU: utime+stime
# (/proc/PID/stat, as scenario 5) of p and of c, and of sshd (its tree) +
# ssh, around each transfer, per GiB.  tether@baseline is not run here (an
# older build may lack --tcp-listen).
S9="9: TCP bulk, one connection, $(numfmt --to=iec-i --suffix=B $TCP_SIZE) each way (bench/tcp_bulk.py)"
TCP_SYSTEMS=()
declare -A TCPPORT TCPSTOP TCPCPU

tcp_client() {  # SYSTEM DIR BYTES [--sum] -> TOUT (its JSON); 1 on failure
    local sys=$1 rc; shift
    TOUT=$($CLI timeout 300 $PY bench/tcp_bulk.py client "127.0.0.1:${TCPPORT[$sys]}" "$1" "$2" "$W/tcp/pattern.bin" "${@:3}" 2>&1)
    rc=$?
    [ $rc -eq 0 ] && return 0
    err "$sys TCP bulk ($1 $2${3:+ $3}): rc $rc: $(tail -c 300 <<<"$TOUT")"; return 1
}

tcp_up() {  # PORT SECONDS: until one byte comes down through that port
    local end=$((SECONDS + $2))
    while [ $SECONDS -le $end ]; do
        timeout 5 $PY bench/tcp_bulk.py client "127.0.0.1:$1" down 1 "$W/tcp/pattern.bin" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

tcp_start_tether() {  # SVC_PORT -> TCPPORT[tether] TCPSTOP TCPCPU
    local svc=$1 bin=$ROOT/bin tag=tcp pp pt tp pid cpid tok=$W/tcp/tokens
    pp=$(freeport); pt=$(freeport); tp=$(freeport)
    (umask 077; echo "bench $TOKEN" >"$tok")
    $SRV "$bin/p" --listen "127.0.0.1:$pp" --tunnel-listen "127.0.0.1:$pt" --state-dir "$W/tether-state" \
        --tokens "$tok" --tcp-listen "127.0.0.1:$tp=bench" --log-level "${BENCH_P_LOG:-warn}" \
        >"$W/logs/p-$tag.out" 2>&1 &
    pid=$!; PIDS+=("$pid")
    if ! wait_port "$pt" 10; then
        err "tether TCP: bin/p --tcp-listen did not start: $(tail -3 "$W/logs/p-$tag.out" | tr '\n' ' ')"; stop_pid "$pid"; return 1
    fi
    $SRV "$bin/c" --proxy "127.0.0.1:$pt" --name bench --token "$TOKEN" --fingerprint "sha256:$FPR" \
        --tcp "127.0.0.1:$svc" --log-level warn --connections 1 >"$W/logs/c-$tag.out" 2>&1 &
    cpid=$!; PIDS+=("$cpid")
    TCPSTOP[tether]="$cpid $pid"   # c first: no redial
    if ! tcp_up "$tp" 20; then
        err "tether TCP: no byte through p --tcp-listen within 20 s: $(tail -3 "$W/logs/c-$tag.out" "$W/logs/p-$tag.out" | tr '\n' ' ')"
        stop_pid "$cpid"; stop_pid "$pid"; return 1
    fi
    TCPPORT[tether]=$tp; TCPCPU[tether]="$pid $cpid"
}

tcp_start_ssh() {  # SVC_PORT -> TCPPORT[ssh-tcp] TCPSTOP TCPCPU
    start_ssh "$1" tcp || return 1
    TCPSTOP[ssh-tcp]="$SSH_PID $SSHD_PID"
    if ! tcp_up "$SSH_PORT" 20; then
        err "ssh -R (TCP): no byte through the forward within 20 s: $(tail -3 "$W/logs/ssh-tcp.out" "$W/logs/sshd-tcp.out" | tr '\n' ' ')"
        stop_pid "$SSH_PID"; stop_pid "$SSHD_PID"; return 1
    fi
    TCPPORT[ssh-tcp]=$SSH_PORT; TCPCPU[ssh-tcp]="$SSHD_PID $SSH_PID"
}

per_gib() {  # TICKS BYTES: seconds per GiB
    awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v b="$2" 'BEGIN { printf "%.4f", t / hz / (b / 1073741824) }'
}

scen9() {  # one pass: each direction over every path in turn
    local d s mbs t0 t1 p0 p1 c0 c1 pids what
    declare -A MBS
    for d in up down; do
        what="$d (client -> service)"; [ $d = down ] && what="down (service -> client)"
        for s in "${TCP_SYSTEMS[@]}"; do
            pids=$(descendants ${TCPCPU[$s]:-})
            t0=$(cpu_ticks $pids)
            if [ "$s" = tether ]; then p0=$(cpu_ticks ${TCPCPU[$s]%% *}); c0=$(cpu_ticks ${TCPCPU[$s]##* }); fi
            tcp_client "$s" "$d" "$TCP_SIZE" || continue
            t1=$(cpu_ticks $pids)
            mbs=$(jget "$TOUT" mb_per_s); MBS[$s]=$mbs
            record "$S9" "$what" "MB/s" + "$s" "$mbs"
            [ "$s" = tcp-direct ] && continue
            record "$S9" "$d: forwarder CPU user+sys (p+c; sshd+ssh)" "s/GiB" - "$s" "$(per_gib $((t1 - t0)) "$TCP_SIZE")"
            if [ "$s" = tether ]; then
                p1=$(cpu_ticks ${TCPCPU[$s]%% *}); c1=$(cpu_ticks ${TCPCPU[$s]##* })
                record "$S9" "$d: p CPU user+sys" "s/GiB" - "$s" "$(per_gib $((p1 - p0)) "$TCP_SIZE")"
                record "$S9" "$d: c CPU user+sys" "s/GiB" - "$s" "$(per_gib $((c1 - c0)) "$TCP_SIZE")"
            fi
        done
        [ -n "${MBS[tether]:-}" ] || continue
        [ -n "${MBS[ssh-tcp]:-}" ] && record "$S9" "$d: tether / ssh -R (same pass)" x + tether \
            "$(awk -v a="${MBS[tether]}" -v b="${MBS[ssh-tcp]}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
        [ -n "${MBS[tcp-direct]:-}" ] && record "$S9" "$d: tether / direct (same pass)" x + tether \
            "$(awk -v a="${MBS[tether]}" -v b="${MBS[tcp-direct]}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
        MBS=()
    done
}

tcp_all() {
    TCP_SYSTEMS=()
    local s q d=$W/tcp r vsize up=()
    local want_s=0 want_t=0
    want tether && want_t=1
    { want ssh || want ssh-tcp; } && want_s=1
    { [ $want_t = 1 ] || [ $want_s = 1 ] || want tcp-direct; } && TCP_SYSTEMS+=(tcp-direct)
    [ $want_s = 1 ] && TCP_SYSTEMS+=(ssh-tcp)
    [ $want_t = 1 ] && TCP_SYSTEMS+=(tether)
    [ ${#TCP_SYSTEMS[@]} -gt 0 ] || return
    mkdir -p "$d"; rm -f "$d/port"
    [ "$(stat -c %s "$d/pattern.bin" 2>/dev/null)" = $((64 << 20)) ] ||
        $PY bench/tcp_bulk.py pattern "$d/pattern.bin" $((64 << 20)) || { err "scenario 9: cannot write $d/pattern.bin"; return; }
    $SRV $PY bench/tcp_bulk.py serve "$d/port" "$d/pattern.bin" >"$W/logs/tcp-service.out" 2>&1 &
    local svc=$!; PIDS+=("$svc")
    for _ in $(seq 100); do [ -s "$d/port" ] && break; kill -0 "$svc" 2>/dev/null || break; sleep 0.1; done
    if [ ! -s "$d/port" ]; then err "scenario 9: bench/tcp_bulk.py serve did not start: $(tail -3 "$W/logs/tcp-service.out" | tr '\n' ' ')"; stop_pid "$svc"; return; fi
    local sport; sport=$(cat "$d/port")
    TCPPORT[tcp-direct]=$sport; TCPSTOP[tcp-direct]=""; TCPCPU[tcp-direct]=""
    for s in "${TCP_SYSTEMS[@]}"; do
        case $s in
            tcp-direct) up+=("$s") ;;
            ssh-tcp)
                if [ ! -x /usr/sbin/sshd ] || ! have ssh; then ABSENT+=("scenario 9's ssh -R (openssh-server, openssh-client)")
                else tcp_start_ssh "$sport" && up+=("$s"); fi ;;
            tether)
                [ -n "$FPR" ] || tether_fingerprint || continue
                tcp_start_tether "$sport" && up+=("$s") ;;
        esac
    done
    TCP_SYSTEMS=()
    # quick mode checks 4 MiB: a hashing receiver is slow enough to trip p's
    # reset of a slow TCP client (bench/analysis.md, scenario 9), which
    # quick mode, a check of the harness, must not hinge on
    vsize=$((64 << 20)); [ "$QUICK" = 1 ] && vsize=$((4 << 20)); [ "$TCP_SIZE" -lt $vsize ] && vsize=$TCP_SIZE
    for s in "${up[@]}"; do   # the bytes arrive whole and exact, both ways, before any timing
        tcp_client "$s" up "$vsize" --sum && tcp_client "$s" down "$vsize" --sum && TCP_SYSTEMS+=("$s")
    done
    echo "tcp=bench/tcp_bulk.py ($PY $($PY -c 'import platform; print(platform.python_version())')), $(numfmt --to=iec-i --suffix=B "$TCP_SIZE") per transfer, checked first with $(numfmt --to=iec-i --suffix=B "$vsize") each way (SHA-256)" >"$W/tcp.meta"
    for r in $(seq "$RUNS"); do
        [ ${#TCP_SYSTEMS[@]} -gt 0 ] || break
        log "run $r/$RUNS: scenario 9 (TCP bulk): ${TCP_SYSTEMS[*]}"
        scen9
    done
    for s in "${up[@]}"; do for q in ${TCPSTOP[$s]:-}; do stop_pid "$q"; done; done
    stop_pid "$svc"
}

# ---------------------------------------------------------------- scenario 10
# WebSocket (issue 11): node's ws package (integration-tests/ws pins it) as
# an echo server on 127.0.0.1 and as the client (bench/ws_bench.js), once
# directly ("ws-direct") and once through p's HTTP/1.1 front -> one tunnel
# -> c --upstream http:// -> the same server ("tether": the Upgrade becomes
# an extended CONNECT stream, RFC 8441).  One socket per pass: WS_ROUNDS
# sequential echo round trips of 32 bytes (the round-trip time, p50 and
# p99), then WS_COUNT messages of 32 bytes with WS_WINDOW in flight
# (messages per second).  The overhead and the ratio are taken within each
# pass, as scenario 8 does.
S10="10: WebSocket echo, one socket, 32-byte messages (bench/ws_bench.js, node ws)"
WS_SYSTEMS=()
declare -A WSPORT WSSTOP

ws_client() {  # SYSTEM -> WOUT (its JSON); 1 on failure
    local rc
    WOUT=$($CLI timeout 120 env NODE_PATH="$WS_MODULES" node bench/ws_bench.js client \
        "ws://127.0.0.1:${WSPORT[$1]}/echo" "$WS_ROUNDS" "$WS_WINDOW" "$WS_COUNT" 32 2>&1)
    rc=$?
    [ $rc -eq 0 ] && return 0
    err "$1 WebSocket: rc $rc: $(tail -c 300 <<<"$WOUT")"; return 1
}

ws_start_tether() {  # APP_PORT -> WSPORT[tether] WSSTOP[tether]
    local app=$1 tag=ws pp pid cpid
    start_upstream_pc "tether WebSocket" "$tag" "$ROOT/bin" "http://127.0.0.1:$app" || return 1
    pp=$UP_PORT; pid=$UP_P; cpid=$UP_C
    WSSTOP[tether]="$cpid $pid"   # c first: no redial
    WSPORT[tether]=$pp
    local end=$((SECONDS + 20))
    while [ $SECONDS -le $end ]; do
        WS_ROUNDS=1 WS_COUNT=1 WS_WINDOW=1 ws_client tether 2>/dev/null && return 0
        sleep 0.3
    done
    err "tether WebSocket: no echo through p within 20 s: $(tail -3 "$W/logs/c-$tag.out" "$W/logs/p-$tag.out" | tr '\n' ' ')"
    stop_pid "$cpid"; stop_pid "$pid"; return 1
}

scen10() {  # one pass over every path
    local s
    declare -A P50 MPS
    for s in "${WS_SYSTEMS[@]}"; do
        ws_client "$s" || continue
        P50[$s]=$(jget "$WOUT" rtt_p50_us); MPS[$s]=$(jget "$WOUT" msgs_per_s)
        record "$S10" "echo round trip p50" "µs" - "$s" "${P50[$s]}"
        record "$S10" "echo round trip p99" "µs" - "$s" "$(jget "$WOUT" rtt_p99_us)"
        record "$S10" "messages/s, $WS_WINDOW in flight" "msg/s" + "$s" "${MPS[$s]}"
    done
    [ -n "${P50[tether]:-}" ] && [ -n "${P50[ws-direct]:-}" ] || return
    record "$S10" "round trip p50 - direct p50 (same pass)" "µs" - tether \
        "$(awk -v a="${P50[tether]}" -v b="${P50[ws-direct]}" 'BEGIN { printf "%.1f", a - b }')"
    record "$S10" "messages/s / direct (same pass)" x + tether \
        "$(awk -v a="${MPS[tether]}" -v b="${MPS[ws-direct]}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
}

ws_all() {
    WS_SYSTEMS=()
    local d=$W/ws s q up=()
    want tether && WS_SYSTEMS+=(ws-direct tether)
    want ws-direct && [ ${#WS_SYSTEMS[@]} = 0 ] && WS_SYSTEMS+=(ws-direct)
    [ ${#WS_SYSTEMS[@]} -gt 0 ] || return
    WS_MODULES=$ROOT/integration-tests/ws/node_modules
    if ! have node || [ ! -d "$WS_MODULES/ws" ]; then
        log "scenario 10 skipped: node's ws package is not installed (make deps installs it into integration-tests/ws)"
        ABSENT+=("scenario 10, WebSocket (node and integration-tests/ws's npm ws: make deps)"); return
    fi
    mkdir -p "$d"; rm -f "$d/port"
    $SRV env NODE_PATH="$WS_MODULES" node bench/ws_bench.js serve "$d/port" >"$W/logs/ws-server.out" 2>&1 &
    local app=$!; PIDS+=("$app")
    for _ in $(seq 100); do [ -s "$d/port" ] && break; kill -0 "$app" 2>/dev/null || break; sleep 0.1; done
    if [ ! -s "$d/port" ]; then err "scenario 10: the ws echo server did not start: $(tail -3 "$W/logs/ws-server.out" | tr '\n' ' ')"; stop_pid "$app"; return; fi
    WSPORT[ws-direct]=$(cat "$d/port"); WSSTOP[ws-direct]=""
    for s in "${WS_SYSTEMS[@]}"; do
        case $s in
            ws-direct) up+=("$s") ;;
            tether) [ -n "$FPR" ] || tether_fingerprint || continue
                    ws_start_tether "${WSPORT[ws-direct]}" && up+=("$s") ;;
        esac
    done
    WS_SYSTEMS=("${up[@]}")
    echo "ws=node $(node --version) with ws $(node -p 'require(process.argv[1] + "/ws/package.json").version' "$WS_MODULES"), $WS_ROUNDS round trips then $WS_COUNT messages ($WS_WINDOW in flight) per pass" >"$W/ws.meta"
    for r in $(seq "$RUNS"); do
        log "run $r/$RUNS: scenario 10 (WebSocket): ${WS_SYSTEMS[*]}"
        scen10
    done
    for s in "${up[@]}"; do for q in ${WSSTOP[$s]:-}; do stop_pid "$q"; done; done
    stop_pid "$app"
}

# ---------------------------------------------------------------- main
START=$SECONDS
HAVE_PERF=0
if [ "$QUICK" != 1 ] && have perf && perf stat -e cycles -o /dev/null true >/dev/null 2>&1; then HAVE_PERF=1; fi
if [ "$ONLY" = callgrind ]; then
    gen small.bin "$SMALL"   # scenario 6 serves only the small file
elif [ "$ONLY" = fairness ]; then
    gen big.bin "$BIG"; gen small.bin "$SMALL"   # scenario 7 serves these two
elif [ "$ONLY" = grpc ] || [ "$ONLY" = tcp ] || [ "$ONLY" = ws ]; then :   # scenarios 8, 9 and 10 serve no file
else
    gen_all
    setup_systems
    [ ${#SYSTEMS[@]} -gt 0 ] || { err "no system could run"; exit 1; }

    log "verifying downloads (sha256) through every system"
    for s in "${SYSTEMS[@]}"; do verify "$s" || true; done
    if [ -s "$ERR" ]; then log "a download was wrong: not measuring"; cat "$ERR" >&2; exit 1; fi

    for r in $(seq "$RUNS"); do
        log "run $r/$RUNS: scenario 1"; for s in "${SYSTEMS[@]}"; do scen1 "$s"; done
    done
    for r in $(seq "$RUNS"); do
        log "run $r/$RUNS: scenario 2"; for s in "${SYSTEMS[@]}"; do [ -n "${ONLY13[$s]:-}" ] || scen2 "$s"; done
    done
    if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
        for r in $(seq "$RUNS"); do
            log "run $r/$RUNS: scenarios 1 and 2, a core per side"
            for s in "${SYSTEMS[@]}"; do
                [ -n "${PROXY_ROOTS[$s]}" ] && [ -z "${ONLY13[$s]:-}" ] || continue
                repin 0 ${PROXY_ROOTS[$s]}
                scen1 "$s" "$S1S"; scen2 "$s" "$S2S"
                repin 1 ${PROXY_ROOTS[$s]}
            done
        done
    fi
    for r in $(seq "$RUNS"); do
        log "run $r/$RUNS: scenario 3"; for s in "${SYSTEMS[@]}"; do scen3 "$s"; done
    done
    for s in "${TETHERS[@]}"; do
        log "scenario 4 ($s): $IDLE_N idle tunnels"; scen4_idle "$s"
        log "scenario 4 ($s): $SLOW_N slow clients"; scen4_slow "$s"
    done
    if [[ " ${SYSTEMS[*]} " == *" tether "* ]]; then
        [ "$QUICK" != 1 ] && [ "$PROFILE" = 1 ] && { log "profiling p and c (perf record)"; profile_tether; }
    fi

fi
if [ "$ONLY" = "" ] || [ "$ONLY" = fairness ]; then
    if [ "$FAIRNESS" = 1 ]; then fairness_all; else log "scenario 7 (fairness) skipped: BENCH_FAIRNESS=0"; fi
fi
if [ "$ONLY" = "" ] || [ "$ONLY" = grpc ]; then
    if [ "$GRPC" = 1 ] || [ "$ONLY" = grpc ]; then grpc_all; else log "scenario 8 (gRPC) skipped: BENCH_GRPC=0"; fi
fi
if [ "$ONLY" = "" ] || [ "$ONLY" = tcp ]; then
    if [ "$TCP" = 1 ] || [ "$ONLY" = tcp ]; then tcp_all; else log "scenario 9 (TCP bulk) skipped: BENCH_TCP=0"; fi
fi
if [ "$ONLY" = "" ] || [ "$ONLY" = ws ]; then
    if [ "$WS" = 1 ] || [ "$ONLY" = ws ]; then ws_all; else log "scenario 10 (WebSocket) skipped: BENCH_WS=0"; fi
fi
if [ "$ONLY" = fairness ] || [ "$ONLY" = grpc ] || [ "$ONLY" = tcp ] || [ "$ONLY" = ws ]; then :
elif [ "$CALLGRIND" = 1 ] || [ "$ONLY" = callgrind ]; then
    callgrind_all
else
    log "scenario 6 (callgrind) skipped: BENCH_CALLGRIND=0"
fi

{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$NCPU"
    echo "cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel=$(uname -r)"
    echo "mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    cmd="bench/run.sh"; [ -n "${MAKELEVEL:-}" ] && cmd="make bench"
    envs=$(env | grep -E '^BENCH_' | sort | tr '\n' ' ')
    echo "command=${envs}${cmd}"
    echo "runs=$RUNS"
    echo "pinning=$PINNING"
    # Only what is installed: an absent reference has no version to show.
    v=()
    have nginx && v+=("$(nginx -v 2>&1 | sed 's/.*: //')")
    have nghttpx && v+=("nghttp2 $(nghttpx --version 2>/dev/null | awk '{print $2}' | sed 's/nghttp2\///')")
    have ssh && v+=("$(ssh -V 2>&1 | cut -d, -f1)")
    [ -n "${BASE[pagekite]:-}" ] && v+=("pagekite $(dpkg-query -W -f '${Version}' pagekite 2>/dev/null)")
    [ ${#CG_SYSTEMS[@]} -gt 0 ] && v+=("$(valgrind --version)")
    v+=("curl $(curl --version | awk 'NR==1 {print $2}')" "wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
        "$(openssl version | cut -d' ' -f1-2)" "tether $(bin/p --version 2>/dev/null | head -1)")
    [ -n "$BASELINE" ] && v+=("tether@baseline $("$BASELINE/p" --version 2>/dev/null | head -1) ($BASELINE)")
    vs=""; for x in "${v[@]}"; do vs+="${vs:+, }$x"; done
    echo "versions=$vs"
    [ -n "$BASELINE" ] && echo "baseline=$BASELINE"
    [ -n "$CG_NOTE" ] && echo "cg_note=$CG_NOTE"
    [ -s "$W/fair.meta" ] && cat "$W/fair.meta"
    [ -s "$W/grpc.meta" ] && cat "$W/grpc.meta"
    [ -s "$W/tcp.meta" ] && cat "$W/tcp.meta"
    [ -s "$W/ws.meta" ] && cat "$W/ws.meta"
    [ ${#ABSENT[@]} -gt 0 ] && echo "absent=$(absent_list)"
    [ -s "$ERR" ] && echo "errors=$(tr '\n' ';' <"$ERR")"
} >"$META"

echo
echo "tether bench ($([ "$QUICK" = 1 ] && echo "QUICK mode: tiny files, 1 run, figures mean nothing" || echo "$RUNS runs")$([ "$ONLY" = callgrind ] && echo ", only scenario 6: $CG_RUNS repeats")$([ "$ONLY" = fairness ] && echo ", only scenario 7: $FAIR_RUNS runs")$([ "$ONLY" = grpc ] && echo ", only scenario 8")$([ "$ONLY" = tcp ] && echo ", only scenario 9")$([ "$ONLY" = ws ] && echo ", only scenario 10")), $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $NCPU, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
[ ${#ABSENT[@]} -gt 0 ] && echo "absent systems (packages not installed): $(absent_list)"
DOCARGS=()
[ "$QUICK" = 1 ] && DOCARGS=(--quick)
if [ "$QUICK" != 1 ] && [ -z "${BENCH_SYSTEMS:-}" ] && [ -z "$BASELINE" ] && [ -z "$ONLY" ]; then DOCARGS=(--doc docs/benchmarks.md --method bench/method.md --notes bench/analysis.md --profile "$PROF"); fi
$PY bench/report.py "$RES" "$META" --series "$SERIES" "${DOCARGS[@]}"
echo
echo "bench: took $((SECONDS - START)) s"
if [ -s "$ERR" ]; then echo "bench: errors:"; sed 's/^/  /' "$ERR"; exit 1; fi
[[ " ${DOCARGS[*]} " == *" --doc "* ]] && echo "bench: wrote docs/benchmarks.md"
exit 0
