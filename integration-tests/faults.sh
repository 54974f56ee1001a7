# shellcheck shell=bash
# Helpers for the fault-injection tests (test-6x-faults-*.sh), sourced after
# lib.sh: p, faultproxy.py in front of p's tunnel port, and c dialing the
# fault proxy.  Short keepalive on both ends so a dead path shows in seconds.

read -r -a KA <<<"${FAULT_KA:---ping-interval 1 --ping-timeout 1}"

# start_faulty [c flags...]: p (default media), the fault proxy, c serving
# ${FAULT_ROOT:-$TT_MEDIA} through it; returns once GET / answers 200.
start_faulty() {
    pick_ports
    start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media "${KA[@]}"
    $PY "$TT_HERE/faultproxy.py" --target "127.0.0.1:$TUN_PORT" --ports-file "$W/fp.ports" --log "$W/fp.txt" &
    track "$!" fp
    wait_until 100 0.1 test -s "$W/fp.ports" || die "the fault proxy did not start"
    read -r FP_PORT FP_CTL <"$W/fp.ports"
    "$TT_C" --proxy "127.0.0.1:$FP_PORT" --name media --token-file "$TT_SHARED/token.media" \
        --fingerprint "$TT_FPR" --root "${FAULT_ROOT:-$TT_MEDIA}" "${KA[@]}" "$@" \
        >>"$W/c.out" 2>>"$W/c.log" &
    track "$!" c
    wait_c_up c || die "c did not come up through the fault proxy"
    wait_until 100 0.1 is_status 200 "$(url /)" || die "GET / through p and the fault proxy: $(status_of "$(url /)")"
}

# fp COMMAND...: one command to the fault proxy; prints its answer, fails
# unless it starts with "ok".
fp() {
    local r=""
    exec 9<>"/dev/tcp/127.0.0.1/$FP_CTL" || return 1
    echo "$*" >&9
    read -r -t 10 r <&9
    exec 9>&-
    echo "$r"
    [[ "$r" == ok* ]]
}

fpq() { fp "$@" >/dev/null || bad "fault proxy refused '$*'"; }

c_ups() { count_lines "$W/c.log" 'tunnel up to'; }
p_downs() { count_lines "$W/p.log" 'tunnel down name=media'; }
fdcount() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Known product gaps: checked only with TT_KNOWN_GAPS=1 (see
# notes/fault-findings.md); otherwise noted and skipped.
gap() { # WHAT CMD...
    local what=$1
    shift
    if [ "${TT_KNOWN_GAPS:-0}" = 1 ]; then expect_true "$what" "$@"; else note "known gap, not checked: $what"; fi
}

# The aborted-download rule: curl failed (18: partial file, or 52/56), and
# the bytes it got are fewer than the file and are the file's beginning.
expect_aborted() { # WHAT RC FILE WANTFILE
    local what=$1 rc=$2 got want
    got=$(size_of "$3")
    want=$(size_of "$4")
    note "$what: curl exit $rc with $got of $want bytes"
    if [ "$rc" = 28 ]; then bad "$what: curl hit --max-time (the client hung)"; return; fi
    expect_ne "$what: the transfer is reported broken (curl exit non-zero)" 0 "$rc"
    if [ "$got" -lt "$want" ]; then good "$what: short of the whole file"; else bad "$what: got all $got bytes"; fi
    head -c "$got" "$4" >"$W/want.part"
    expect_same_file "$what: the bytes received are the file's beginning" "$W/want.part" "$3"
    rm -f "$W/want.part"
}
