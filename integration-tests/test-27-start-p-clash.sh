#!/usr/bin/env bash
# lib.sh's start_p retries on new ports when another process took a chosen
# port before p bound it, and the retry must look like a first start to the
# test: p makes its state before it binds, so a retry that found the failed
# attempt's state was no first run (no c command printed: test-12 failed).
# Here a holder takes the port on purpose.  Also: a state dir that existed
# before start_p stays where it is, and a p that fails for another reason
# still fails the start.
source "$(dirname "$0")/lib.sh"

# hold_port LABEL PORT: a listener on 127.0.0.1:PORT until stopped.
hold_port() {
    $PY - "$2" >"$W/$1.out" 2>&1 <<'PYEOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("held", flush=True)
time.sleep(100)
PYEOF
    track "$!" "$1"
    wait_until 50 0.1 grep -q held "$W/$1.out" || die "$1 could not bind $2"
}

# A fresh state dir and a taken tunnel port.
pick_ports
held=$TUN_PORT
hold_port holder1 "$held"
state=$W/state
start_p p --state-dir "$state"
stop_one holder1
expect_ne "start_p moved p to another tunnel port" "$held" "$TUN_PORT"
expect_true "the failed attempt's log is kept" log_has "$W/p.clash1.log" "Address already in use"
expect_true "the failed attempt's state is kept aside" test -s "$state.clash1/tokens"
expect_true "the retry's log is its own" test "$(count_lines "$W/p.log" 'Address already in use')" -eq 0
expect_true "the retry made the certificate" log_has "$W/p.log" "made a self-signed tunnel certificate"
expect_true "the retry made the tokens file" log_has "$W/p.log" "made tokens file"
wait_until 20 0.1 grep -q -- '--fingerprint' "$W/p.out"
cmd=$(grep -- '--proxy' "$W/p.out" | head -1)
expect_match "the retry printed the c command for its tunnel port" "--proxy [^ ]*:$TUN_PORT( |$)" "$cmd"
tokfile=$(sed -n 's/.*--token-file \([^ ]*\).*/\1/p' <<<"$cmd")
expect_true "the printed token file is the retry's ($tokfile)" test "$(dirname "$tokfile")" = "$(cd "$state" && pwd)"
expect_true "the token in it is the one in $state/tokens" token_in_tokens default "$(cat "$tokfile")" "$state/tokens"
fpr=$(logged_fingerprint "$W/p.log")
stop_one p

# An existing state dir and a taken port: the retry uses that state.
tokens_sum=$(sha_of "$state/tokens")
P_STARTED='' # lib.sh's mark of a started p: cleared, this start may retry too
pick_ports
held=$TUN_PORT
hold_port holder2 "$held"
start_p p2 --state-dir "$state"
stop_one holder2
expect_ne "start_p moved p2 to another tunnel port" "$held" "$TUN_PORT"
expect_eq "the existing tokens file stayed" "$tokens_sum" "$(sha_of "$state/tokens")"
expect_eq "p2 used the existing certificate" "$fpr" "$(logged_fingerprint "$W/p2.log")"
expect_eq "p2 made no tokens file (not a first run)" 0 "$(count_lines "$W/p2.log" 'made tokens file')"
expect_true "p2 printed the c command with the existing token file" grep -qF -- "--token-file $tokfile " "$W/p2.out"
stop_one p2

# A p that fails for another reason fails the start (no retry hides it).
P_STARTED=''
pick_ports
out=$( (start_p bad --state-dir "$W/bad-state" --tokens "$W/no-such-tokens") 2>&1)
rc=$?
expect_ne "start_p failed for a p that cannot start" 0 "$rc"
expect_match "start_p said why" 'p \(bad\) exited during startup' "$out"
expect_true "it did not retry" test ! -e "$W/bad.clash1.log"
finish
