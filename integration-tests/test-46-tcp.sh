#!/usr/bin/env bash
# TCP services: `p --tcp-listen ADDR=NAME` turns each TCP connection it
# accepts at ADDR into an HTTP/2 CONNECT stream on a tunnel of NAME, and
# `c --tcp HOST:PORT` connects that stream to one local TCP service.
#
#   ssh   c --tcp sshd (a private OpenSSH sshd: own host key, own config,
#         own port, an authorized key made for this run)   <- p T_SSH
#   echo  c --tcp tcp_echo.py serve echo                    <- p T_ECHO
#   half  c --tcp tcp_echo.py serve half                    <- p T_HALF
#   ghost no c at all                                       <- p T_GHOST
#
# Checked, through the real binaries and real programs: ssh runs a command
# (echo hello; uname -s); scp sends a 300 MB random file up and back (sha256
# equal both ways); 100 connections at once each get exactly their own bytes
# back (up to 2 MiB each, so stream flow control matters); a client that
# half-closes (SHUT_WR) still gets the server's whole reply, sent after its
# FIN, then EOF; a connection to a name with no origin is closed at once and
# p's log says why; c killed (-KILL) while 5 connections sit idle: each ends
# (EOF or reset) within 10 s, a new one is closed at once, and p lives on.
#
# TT_TCP_DIRECT=1 runs the same clients straight at the services, without p
# or c (a check of the harness itself): the ghost name is then a server that
# closes at once, and the process killed is the echo server itself.  The
# dial addresses (*_AT) are the only difference; p's log is not read then.
source "$(dirname "$0")/lib.sh"

TCP=$TT_HERE/tcp_echo.py
DIRECT=${TT_TCP_DIRECT:-0}
BIG_MB=${TT_TCP_BIG_MB:-300}

for prog in /usr/sbin/sshd ssh scp ssh-keygen ss timeout; do
    command -v "$prog" >/dev/null ||
        die "$prog is missing (make deps installs it: openssh-server, openssh-client, iproute2, coreutils)"
done
[ -x /usr/lib/openssh/sftp-server ] ||
    die "/usr/lib/openssh/sftp-server is missing (scp speaks SFTP; make deps installs openssh-sftp-server)"

# The big file goes whatever happens (three copies of it would sit in $W).
big_gone_then_exit() {
    local rc=$?
    rm -f "$W"/big.*
    (exit "$rc")
    on_exit
}
trap big_gone_then_exit EXIT

# --- a private sshd on a free port of 127.0.0.1
SD=$W/sshd
mkdir -p "$SD"
chmod 700 "$SD"
ssh-keygen -q -t ed25519 -N '' -C tether-test-host -f "$SD/host_ed25519" || die "ssh-keygen (host key) failed"
ssh-keygen -q -t ed25519 -N '' -C tether-test-user -f "$SD/id_ed25519" || die "ssh-keygen (user key) failed"
cp "$SD/id_ed25519.pub" "$SD/authorized_keys"
SSH_USER=$(id -un)
read -r SSHD_PORT < <(free_ports 1)
cat >"$SD/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SD/host_ed25519
PidFile $SD/sshd.pid
AuthorizedKeysFile $SD/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel INFO
EOF
# sshd will not start without its privilege separation directory, which is a
# system one that Debian's ssh service makes when it starts (and tools/deps.sh
# keeps that service from starting): made here only when it is absent, and
# left in place (it is empty and harmless).
if [ ! -d /run/sshd ]; then
    note "making /run/sshd (sshd's privilege separation directory, a system directory; it was missing)"
    mkdir -m 0755 /run/sshd || die "cannot make /run/sshd (sshd needs it; run as root)"
fi
/usr/sbin/sshd -t -f "$SD/sshd_config" 2>"$W/sshd-t.log" || die "sshd -t refused the config: $(tr '\n' ' ' <"$W/sshd-t.log")"
/usr/sbin/sshd -D -e -f "$SD/sshd_config" 2>>"$W/sshd.log" &
track "$!" sshd

# --- the TCP servers (tcp_echo.py, each on its own free port)
start_srv() { # LABEL MODE -> SRV_PORT
    rm -f "$W/$1.port"
    $PY "$TCP" serve "$2" "$W/$1.port" 2>>"$W/$1.log" &
    track "$!" "$1"
    wait_until 100 0.1 test -s "$W/$1.port" || die "tcp_echo.py serve $2 did not start"
    SRV_PORT=$(cat "$W/$1.port")
}
start_srv echo-srv echo
ECHO_PORT=$SRV_PORT
start_srv half-srv half
HALF_PORT=$SRV_PORT
start_srv close-srv close
CLOSE_PORT=$SRV_PORT

listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
wait_until 100 0.1 listening "$SSHD_PORT" || die "sshd is not listening on $SSHD_PORT: $(tail -3 "$W/sshd.log" | tr '\n' ' ')"

banner_of() { # PORT: the first line a server sends
    $PY - "$1" <<'EOF'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
    s.settimeout(3)
    b = b""
    while b"\n" not in b:
        r = s.recv(256)
        if not r:
            break
        b += r
    print(b.split(b"\n")[0].decode("latin-1").strip())
except OSError as e:
    print("error: %s" % e)
EOF
}
is_ssh_banner() { [[ "$(banner_of "$1")" == SSH-2.0-* ]]; }

# --- p and the c's, unless the harness runs alone
if [ "$DIRECT" = 1 ]; then
    note "TT_TCP_DIRECT=1: the clients dial the services straight, no p or c (a check of the harness only)"
    SSH_AT=$SSHD_PORT ECHO_AT=$ECHO_PORT HALF_AT=$HALF_PORT GHOST_AT=$CLOSE_PORT
    VIA="straight"
else
    TOK=$W/tokens
    {
        echo "# test-46 (NAME TOKEN)"
        for n in ssh echo half ghost; do
            t=$(openssl rand -hex 24)
            printf '%s' "$t" >"$W/token.$n"
            echo "$n $t"
        done
        # The origin side calling out (part C): ssh (an origin) and techo
        # (p's --service), not half.
        t=$(openssl rand -hex 24)
        printf '%s' "$t" >"$W/token.laptop"
        echo "laptop $t calls=ssh,techo"
    } >"$TOK"
    chmod 600 "$TOK" "$W"/token.*
    pick_ports
    read -r T_SSH T_ECHO T_HALF T_GHOST < <(free_ports 4)
    start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TOK" \
        --tcp-listen "127.0.0.1:$T_SSH=ssh" --tcp-listen "127.0.0.1:$T_ECHO=echo" \
        --tcp-listen "127.0.0.1:$T_HALF=half" --tcp-listen "127.0.0.1:$T_GHOST=ghost" \
        --service "techo=tcp://127.0.0.1:$ECHO_PORT"
    for port in "$T_SSH" "$T_ECHO" "$T_HALF" "$T_GHOST"; do
        wait_until 50 0.1 listening "$port" || die "p does not listen on 127.0.0.1:$port (--tcp-listen): $(tail -5 "$W/p.log" | tr '\n' ' ')"
    done
    start_ct() { # NAME HOST:PORT: c --tcp, labelled c-NAME
        "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name "$1" --token-file "$W/token.$1" \
            --fingerprint "$TT_FPR" --tcp "$2" >>"$W/c-$1.out" 2>>"$W/c-$1.log" &
        track "$!" "c-$1"
    }
    start_ct ssh "127.0.0.1:$SSHD_PORT"
    start_ct echo "127.0.0.1:$ECHO_PORT"
    start_ct half "127.0.0.1:$HALF_PORT"
    for n in ssh echo half; do
        wait_c_up "c-$n" || die "c --name $n --tcp did not log 'tunnel up' within 15 s"
    done
    # c on the calling side: local TCP ports joined by name over its forward link
    read -r L_SSH L_ECHO L_DENY < <(free_ports 3)
    "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name laptop --token-file "$W/token.laptop" \
        --fingerprint "$TT_FPR" --local-tcp "127.0.0.1:$L_SSH=ssh" \
        --local-tcp "127.0.0.1:$L_ECHO=techo" --local-tcp "127.0.0.1:$L_DENY=half" \
        >>"$W/c-laptop.out" 2>>"$W/c-laptop.log" &
    track "$!" c-laptop
    wait_until 150 0.1 log_has "$W/c-laptop.log" "forward link up to" || die "c --local-tcp: no forward link: $(tail -3 "$W/c-laptop.log" | tr '\n' ' ')"
    SSH_AT=$T_SSH ECHO_AT=$T_ECHO HALF_AT=$T_HALF GHOST_AT=$T_GHOST
    VIA="through p"
fi
note "ports: sshd $SSHD_PORT, echo $ECHO_PORT, half $HALF_PORT, close $CLOSE_PORT; dialled ($VIA): ssh $SSH_AT, echo $ECHO_AT, half $HALF_AT, ghost $GHOST_AT"

# The whole path answers before the checks begin.
wait_until 50 0.2 is_ssh_banner "$SSH_AT" || die "no SSH banner at $SSH_AT ($VIA) within 10 s: saw [$(banner_of "$SSH_AT")]"
wait_until 50 0.2 $PY "$TCP" many "127.0.0.1:$ECHO_AT" 1 >/dev/null ||
    die "no echo at $ECHO_AT ($VIA) within 10 s: $($PY "$TCP" many "127.0.0.1:$ECHO_AT" 1)"

# --- 1. OpenSSH: a command, then scp of BIG_MB MB up and back
SSH_OPTS=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o IdentitiesOnly=yes -o ConnectTimeout=10 -o LogLevel=ERROR -i "$SD/id_ed25519")
out=$(timeout 30 ssh "${SSH_OPTS[@]}" -p "$SSH_AT" "$SSH_USER@127.0.0.1" 'echo hello; uname -s' 2>"$W/ssh.err")
rc=$?
expect_eq "ssh $VIA runs 'echo hello; uname -s' (exit $rc$([ -s "$W/ssh.err" ] && echo ", stderr: $(head -c 200 "$W/ssh.err" | tr '\n' ' ')"))" \
    "hello|Linux|" "$(tr '\n' '|' <<<"$out")"

head -c "$((BIG_MB * 1000 * 1000))" /dev/urandom >"$W/big.src" || die "cannot make the $BIG_MB MB file"
t0=$(date +%s.%N)
timeout 60 scp "${SSH_OPTS[@]}" -q -P "$SSH_AT" "$W/big.src" "$SSH_USER@127.0.0.1:$W/big.up" 2>"$W/scp-up.err" ||
    bad "scp up $VIA failed (exit $?): $(head -c 300 "$W/scp-up.err" | tr '\n' ' ')"
t1=$(date +%s.%N)
timeout 60 scp "${SSH_OPTS[@]}" -q -P "$SSH_AT" "$SSH_USER@127.0.0.1:$W/big.up" "$W/big.down" 2>"$W/scp-down.err" ||
    bad "scp down $VIA failed (exit $?): $(head -c 300 "$W/scp-down.err" | tr '\n' ' ')"
t2=$(date +%s.%N)
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
note "scp $BIG_MB MB $VIA: up $(secs "$t0" "$t1") s, down $(secs "$t1" "$t2") s"
expect_same_file "scp up $VIA: the $BIG_MB MB file arrived whole" "$W/big.src" "$W/big.up"
expect_same_file "scp down $VIA: the $BIG_MB MB file came back whole" "$W/big.src" "$W/big.down"
rm -f "$W"/big.*

# --- 2. 100 connections at once to the echo server
# check WHAT CMD...: a tcp_echo.py client, its "ok: ..." or "FAIL: ..." line
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then good "$what: ${out#ok: }"; else bad "$what: ${out#FAIL: }"; fi
}
check "echo $VIA" timeout 90 $PY "$TCP" many "127.0.0.1:$ECHO_AT" 100

# A reader that stalls after its window grew: p holds what was in flight
# (it used to cut such a client once more than 256 KiB waited).
check "slow reader $VIA" timeout 90 $PY "$TCP" slow "127.0.0.1:$ECHO_AT"

# --- 3. half-close: the client's FIN, then the server's whole reply
check "half-close $VIA" timeout 30 $PY "$TCP" half "127.0.0.1:$HALF_AT"

# --- 4. a name with no origin: closed at once, and p says why
# (only p's lines from here on: its startup lines may name ghost and tcp too)
p_lines=0
[ -f "$W/p.log" ] && p_lines=$(wc -l <"$W/p.log")
check "no origin ($VIA)" timeout 15 $PY "$TCP" closed "127.0.0.1:$GHOST_AT" 5
ghost_lines() { tail -n "+$((p_lines + 1))" "$W/p.log" | grep -i 'ghost' | grep -i 'tcp'; }
ghost_logged() { [ -n "$(ghost_lines)" ]; }
if [ "$DIRECT" != 1 ]; then
    if wait_until 30 0.1 ghost_logged; then
        good "p logged why: $(ghost_lines | tail -1)"
    else
        bad "p logged no line naming 'ghost' and 'tcp' after the refused connection: $(tail -n "+$((p_lines + 1))" "$W/p.log" | tail -3 | tr '\n' '|')"
    fi
fi

# --- 4b. from the origin side (c --local-tcp over the forward link)
if [ "$DIRECT" != 1 ]; then
    out=$(timeout 30 ssh "${SSH_OPTS[@]}" -p "$L_SSH" "$SSH_USER@127.0.0.1" 'echo via-laptop' 2>"$W/ssh-l.err")
    expect_eq "ssh from c --local-tcp -> p -> c --tcp (origin to origin)" "via-laptop" "$out"
    check "echo from c --local-tcp -> p --service techo=tcp://" timeout 60 $PY "$TCP" many "127.0.0.1:$L_ECHO" 20
    check "a name laptop's calls= does not list: closed" timeout 15 $PY "$TCP" closed "127.0.0.1:$L_DENY" 5
    expect_true "... and c says p refused it (403)" log_has "$W/c-laptop.log" "tcp client=.* name=half: refused, 403"
    expect_true "p's access line for laptop's ssh: CONNECT, caller=laptop" \
        log_has "$W/p.log" "access client=[^ ]+ method=CONNECT .*origin=ssh proto=h2 tls=1 caller=laptop end=ok"
fi

# --- 5. the origin killed while 5 connections sit idle
if [ "$DIRECT" = 1 ]; then victim=echo-srv; else victim=c-echo; fi
rm -f "$W/idle.ready" "$W/idle.go"
$PY "$TCP" idle "127.0.0.1:$ECHO_AT" 5 "$W/idle.ready" "$W/idle.go" 10 >"$W/idle.out" 2>&1 &
idle_pid=$!
track "$idle_pid" idle-client
if wait_until 100 0.1 test -s "$W/idle.ready"; then
    kill -KILL "$(pid_of "$victim")"
    wait "$(pid_of "$victim")" 2>/dev/null
    touch "$W/idle.go"
    note "killed $victim (-KILL) with 5 idle connections open"
else
    bad "the 5 idle connections did not open: $(cat "$W/idle.out")"
fi
wait "$idle_pid"
rc=$?
out=$(cat "$W/idle.out")
if [ "$rc" = 0 ]; then good "$victim killed: ${out#ok: }"; else bad "$victim killed (exit $rc): ${out#FAIL: }"; fi
if [ "$DIRECT" != 1 ]; then
    check "with c-echo gone, a new connection for echo" timeout 15 $PY "$TCP" closed "127.0.0.1:$ECHO_AT" 5
    expect_true "p is still running" alive "$(pid_of p)"
    expect_true "ssh's name still answers through p (SSH banner)" is_ssh_banner "$SSH_AT"
fi
finish
