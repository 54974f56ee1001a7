#!/usr/bin/env bash
# p with only a state dir: it makes its certificate and a tokens file on the
# first run, prints the fingerprint (equal to the certificate's) and the exact
# c command.  Then p is killed (-9) and restarted on the same ports and state
# dir: same certificate, same tokens, and c reconnects by itself and serves.
source "$(dirname "$0")/lib.sh"
pick_ports
state=$W/state
start_p p --state-dir "$state"

expect_true "p made $state/tunnel-cert.pem" test -s "$state/tunnel-cert.pem"
expect_true "p made $state/tunnel-key.pem" test -s "$state/tunnel-key.pem"
expect_true "p made $state/tokens" test -s "$state/tokens"
fpr=$(logged_fingerprint "$W/p.log")
expect_match "p logged its fingerprint" '^sha256:[0-9a-f]{64}$' "$fpr"
expect_eq "the logged fingerprint is the certificate's sha256" "$(cert_fingerprint "$state/tunnel-cert.pem")" "$fpr"
key_mode=$(stat -c %a "$state/tunnel-key.pem" 2>/dev/null)
expect_match "the key is not readable by others (mode $key_mode)" '^[0-7][0-7]0$' "$key_mode"

# The printed command: bin/c --proxy HOST:PORT --name default --token-file F --fingerprint F --root DIR
# (a file for c, never the token itself: a command line shows in ps).
wait_until 20 0.1 grep -q -- '--fingerprint' "$W/p.out"
cmd=$(grep -- '--proxy' "$W/p.out" | head -1)
note "p printed: $cmd"
expect_match "the command names the tunnel port" "--proxy [^ ]*:$TUN_PORT( |$)" "$cmd"
expect_match "the command names 'default'" '--name default( |$)' "$cmd"
expect_match "the command has the fingerprint" "--fingerprint $fpr( |$)" "$cmd"
expect_eq "the command holds no --token" "" "$(grep -o -- '--token ' <<<"$cmd")"
tokfile=$(sed -n 's/.*--token-file \([^ ]*\).*/\1/p' <<<"$cmd")
expect_true "the command names c's token file ($tokfile)" test -s "$tokfile"
expect_match "c's token file is not readable by others" '^[0-7]00$' "$(stat -c %a "$tokfile" 2>/dev/null)"
tok=$(cat "$tokfile")
expect_match "c's token file holds 256 random bits as hex" '^[0-9a-f]{64}$' "$tok"
expect_true "the token in c's file is the one $state/tokens checks" token_in_tokens default "$tok" "$state/tokens"
tokens_sum=$(sha_of "$state/tokens")

# c as printed, the token from its file.
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name default --token-file "$tokfile" --fingerprint "$fpr" --root "$TT_MEDIA" \
    >"$W/c.out" 2>"$W/c.log" &
track "$!" c
wait_c_up c || die "c did not come up with the printed command"
wait_until 100 0.1 is_status 200 "$(url /data.json)" || die "GET /data.json never answered 200 (the only name connected must take it)"
good "the only connected name serves requests without --default"

# Kill p hard.
kill -KILL "$(pid_of p)"
wait "$(pid_of p)" 2>/dev/null
if wait_until 100 0.1 log_has "$W/c.log" 'tunnel down'; then good "c noticed p was gone"; else bad "c did not log 'tunnel down' within 10 s"; fi
sleep 1
expect_true "c keeps running while p is away" alive "$(pid_of c)"

# Restart p on the same ports and state dir.  The old listening sockets are
# gone; accepted connections may sit in TIME_WAIT, which SO_REUSEADDR allows.
start_p p2 --state-dir "$state"
expect_eq "the restarted p reuses the certificate (same fingerprint)" "$fpr" "$(logged_fingerprint "$W/p2.log")"
expect_eq "the restarted p reuses the tokens file" "$tokens_sum" "$(sha_of "$state/tokens")"
# Not a first run, and still p says how c connects and where the token is.
expect_eq "the restarted p prints the same c command" "$cmd" "$(grep -- '--proxy' "$W/p2.out" | head -1)"
expect_true "... and logs where c's token is" log_has "$W/p2.log" "c for name default reads its token from $tokfile"
# c retries with backoff (capped near 30 s); a few seconds are expected.
if wait_until 400 0.1 log_has "$W/c.log" 'tunnel up to' 2; then good "c reconnected by itself"; else bad "c did not reconnect within 40 s: $(tail -3 "$W/c.log" | tr '\n' '|')"; fi
if wait_until 50 0.1 is_status 200 "$(url /data.json)"; then good "requests through the restarted p reach c"; else bad "GET through the restarted p: $(status_of "$(url /data.json)")"; fi
expect_true "the restarted p logged 'tunnel up name=default'" log_has "$W/p2.log" 'tunnel up name=default peer=127\.0\.0\.1:[0-9]+ pool=1'
n_retry=$(count_lines "$W/c.log" 'next try in')
note "c logged $n_retry 'next try in' lines while p was away"
expect_true "c said when it would try again" test "$n_retry" -ge 1
finish
