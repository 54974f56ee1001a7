#!/usr/bin/env bash
# Flags and trust:
# - --help of p and c lists every agreed flag; --version works; a bad value
#   exits 2 with one line; a malformed tokens file stops p with FILE:LINE.
# - c with a wrong pinned fingerprint never brings a tunnel up (clients get
#   503); c --insecure connects but says loudly it is insecure.
# - --max-tunnels 1: a second tunnel is turned away with 503.
source "$(dirname "$0")/lib.sh"

"$TT_P" --help >"$W/p.help" 2>&1; rc=$?
expect_eq "p --help exits 0" 0 "$rc"
for f in --listen --tunnel-listen --cert --key --state-dir --tokens --domain --path-prefix --default --log-level --ping-interval --ping-timeout --max-tunnels --help --version; do
    grep -qF -- "$f" "$W/p.help" || bad "p --help does not list $f"
done
for d in 0.0.0.0:8080 0.0.0.0:7443 ./tether-state info 15 10 10000; do
    grep -qF -- "$d" "$W/p.help" || bad "p --help does not show the default '$d'"
done
"$TT_C" --help >"$W/c.help" 2>&1; rc=$?
expect_eq "c --help exits 0" 0 "$rc"
for f in --proxy --name --token --token-file TETHER_TOKEN --fingerprint --ca --insecure --root --allow-put --connections --log-level --ping-interval --ping-timeout --auth-backoff --help --version; do
    grep -qF -- "$f" "$W/c.help" || bad "c --help does not list $f"
done
expect_match "p --version" 'p.* [0-9]+\.[0-9]+' "$("$TT_P" --version 2>&1)"
expect_match "c --version" 'c.* [0-9]+\.[0-9]+' "$("$TT_C" --version 2>&1)"

exits2() { # WHAT CMD... : exit 2 and exactly one line of stderr
    local what=$1 rc
    shift
    timeout 10 "$@" >"$W/bad.out" 2>"$W/bad.err"; rc=$?
    if [ "$rc" = 2 ] && [ "$(wc -l <"$W/bad.err")" -eq 1 ]; then
        good "$what: exit 2, one line: $(cat "$W/bad.err")"
    else
        bad "$what: expected exit 2 and one stderr line, saw exit $rc and: $(head -3 "$W/bad.err" | tr '\n' '|')"
    fi
}
exits2 "p --log-level loud" "$TT_P" --log-level loud --state-dir "$W/s1"
exits2 "p --listen nonsense" "$TT_P" --listen nonsense --state-dir "$W/s1"
exits2 "p --ping-interval -3" "$TT_P" --ping-interval -3 --state-dir "$W/s1"
exits2 "p --no-such-flag" "$TT_P" --no-such-flag
exits2 "c without --proxy" "$TT_C" --root "$TT_MEDIA" --token x
exits2 "c --connections 0" "$TT_C" --proxy 127.0.0.1:1 --token x --root "$TT_MEDIA" --connections 0
exits2 "c --fingerprint sha256:zz" "$TT_C" --proxy 127.0.0.1:1 --token x --root "$TT_MEDIA" --fingerprint sha256:zz

printf '# ok\nmedia %s\n\nthis line is wrong because it has four words\n' "$(openssl rand -hex 16)" >"$W/bad.tokens"
pick_ports
timeout 10 "$TT_P" --tokens "$W/bad.tokens" --state-dir "$W/s2" --listen "127.0.0.1:$HTTP_PORT" --tunnel-listen "127.0.0.1:$TUN_PORT" >"$W/tok.out" 2>"$W/tok.err"; rc=$?
expect_eq "p with a malformed tokens file exits 2" 2 "$rc"
expect_match "... naming the file and line 4" "tokens $W/bad.tokens:4: " "$(cat "$W/tok.err")"

# Trust.
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media --max-tunnels 1
wrong_fpr="sha256:$(openssl rand -hex 32)"
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
    --fingerprint "$wrong_fpr" --root "$TT_MEDIA" --auth-backoff 60 >"$W/cpin.out" 2>"$W/cpin.log" &
track "$!" cpin
sleep 3
expect_eq "c with a wrong fingerprint: no tunnel up in c's log" 0 "$(count_lines "$W/cpin.log" 'tunnel up')"
expect_eq "c with a wrong fingerprint: no tunnel up in p's log" 0 "$(count_lines "$W/p.log" 'tunnel up')"
expect_true "c says why (certificate/fingerprint)" grep -qiE 'fingerprint|certificate' "$W/cpin.log"
# Issue 12 C.6: what p presented, what to compare it with, and a wait.
expect_true "c names the certificate p presented" grep -qF "presented certificate $TT_FPR, not the one --fingerprint pins" "$W/cpin.log"
expect_true "... and where to check it (p's log line)" grep -qF "'tunnel certificate fingerprint' line p logs" "$W/cpin.log"
expect_eq "a wrong pin stays wrong: one attempt over 3 s (--auth-backoff)" 1 "$(count_lines "$W/cpin.log" 'connecting to 127\.0\.0\.1:')"
expect_true "p says a c does not trust its certificate, and which pin to give" \
    log_has "$W/p.log" "TLS handshake failed: .*does not trust this certificate: give it --fingerprint $TT_FPR"
expect_eq "clients get 503 meanwhile" 503 "$(status_of "$(url /data.json)")"
stop_one cpin

# Issue 12 C.5: no --fingerprint and no --ca against p's self-signed
# certificate: c says to pin the fingerprint p logged, and shows it.
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
    --root "$TT_MEDIA" --auth-backoff 60 >"$W/cnopin.out" 2>"$W/cnopin.log" &
track "$!" cnopin
if wait_until 100 0.1 log_has "$W/cnopin.log" 'does not trust'; then good "c without a pin says it does not trust p's certificate"; else bad "c without a pin: $(tail -2 "$W/cnopin.log" | tr '\n' '|')"; fi
expect_true "... and gives the flag to pin it, with p's fingerprint" grep -qF -- "pin it: --fingerprint $TT_FPR" "$W/cnopin.log"
expect_eq "... and no tunnel came up" 0 "$(count_lines "$W/cnopin.log" 'tunnel up')"
stop_one cnopin

# Fingerprint with colons, upper case: accepted.
colon_fpr="sha256:$(echo "${TT_FPR#sha256:}" | tr 'a-f' 'A-F' | sed 's/../&:/g; s/:$//')"
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
    --fingerprint "$colon_fpr" --root "$TT_MEDIA" --connections 2 >"$W/c.out" 2>"$W/c.log" &
track "$!" c
wait_c_up c || bad "c with a colon-separated fingerprint did not come up"
wait_until 50 0.1 is_status 200 "$(url /data.json)" || bad "requests do not reach c"
# --max-tunnels 1: the second connection of c is turned away with 503.
if wait_until 100 0.1 log_has "$W/p.log" 'tunnel refused .*status=503'; then good "p refused the second tunnel with 503 (--max-tunnels 1)"; else bad "p did not log 'tunnel refused ... status=503' with --max-tunnels 1"; fi
expect_eq "p's pool never went past 1" 0 "$(count_lines "$W/p.log" 'tunnel up .*pool=2')"
stop_one c

# --insecure: connects, and says so loudly (a warn line).
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
    --insecure --root "$TT_MEDIA" >"$W/cins.out" 2>"$W/cins.log" &
track "$!" cins
wait_c_up cins || bad "c --insecure did not come up"
expect_true "c --insecure logs a warning about it" grep -qiE ' (warn|error) .*insecure' "$W/cins.log"
finish
