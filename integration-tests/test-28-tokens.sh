#!/usr/bin/env bash
# Tokens at rest and their reload (issue 12 B):
# - p's first run keeps only the SHA-256 of the token it makes; c's token
#   file holds the token.
# - `p token add NAME` while p runs: a hashed line, c's token file, the c
#   command that reads it; p reloads (SIGHUP from the pid file) and the new
#   name's c comes up.  `p token list` shows names, never a token.
# - A download under way goes on across reloads, to the last byte.
# - A tokens file that does not parse: p logs why and keeps serving with
#   what it had (the tunnel stays, a new one with the old token comes up).
# - `p token revoke NAME`: p closes that name's tunnel with a log line, and
#   its c is refused from then on.
# - A tokens file with plain tokens is still read, with one warning naming
#   the file and the line.
source "$(dirname "$0")/lib.sh"
pick_ports
S=$W/state
start_p p --state-dir "$S"
fpr=$(logged_fingerprint "$W/p.log")
expect_match "p's tokens file has a hashed entry for default" '^default sha256:[0-9a-f]{64}$' "$(grep '^default' "$S/tokens")"
deftok=$(cat "$S/c-default.token")
expect_true "the token itself is not in p's tokens file" test "$(grep -cF -- "$deftok" "$S/tokens")" -eq 0
expect_true "... but the file checks it" token_in_tokens default "$deftok" "$S/tokens"
expect_true "p wrote its pid file" test "$(cat "$S/p.pid")" = "$(pid_of p)"

# --- add, while p runs
"$TT_P" token add cam --state-dir "$S" --tunnel-listen "127.0.0.1:$TUN_PORT" >"$W/add.out" 2>"$W/add.err"
expect_eq "p token add exits 0" 0 "$?"
cmd=$(grep -- '--proxy' "$W/add.out" | head -1)
expect_match "it prints the c command for cam" "^bin/c --proxy 127\.0\.0\.1:$TUN_PORT --name cam --token-file [^ ]+ --fingerprint $fpr --root DIR$" "$cmd"
camfile=$(sed -n 's/.*--token-file \([^ ]*\).*/\1/p' <<<"$cmd")
camtok=$(cat "$camfile")
expect_match "c's token file holds a 256-bit token" '^[0-9a-f]{64}$' "$camtok"
expect_true "p's tokens file holds cam's hash, not the token" token_in_tokens cam "$camtok" "$S/tokens"
expect_eq "... and not the token" 0 "$(grep -cF -- "$camtok" "$S/tokens")"
expect_true "the comment line stayed" grep -q '^# tether tokens' "$S/tokens"
expect_true "add told the running p" grep -q "told p (pid $(pid_of p)) to reload" "$W/add.out"
if wait_until 50 0.1 log_has "$W/p.log" 'reloaded tokens .*: 2 name'; then good "p reloaded: 2 names"; else bad "p did not log the reload: $(tail -2 "$W/p.log" | tr '\n' '|')"; fi
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name cam --token-file "$camfile" --fingerprint "$fpr" \
    --root "$TT_MEDIA" --auth-backoff 60 >"$W/c.out" 2>"$W/c.log" &
track "$!" c
wait_c_up c || die "the c of the added name did not come up"
wait_until 50 0.1 is_status 200 "$(url /data.json)" || bad "GET through the added name: $(status_of "$(url /data.json)")"

"$TT_P" token list --state-dir "$S" >"$W/list.out" 2>&1
expect_eq "p token list: the names and their calls=" $'default calls=(none)\ncam calls=(none)' "$(awk '{ print $1, $2 }' "$W/list.out")"
expect_eq "p token list shows no token" 0 "$(grep -cF -e "$camtok" -e "$deftok" "$W/list.out")"
"$TT_P" token add cam --state-dir "$S" >"$W/add2.out" 2>"$W/add2.err"; rc=$?
expect_eq "adding a name twice is refused" 1 "$rc"
expect_true "... saying to revoke it first" grep -q "p token revoke cam" "$W/add2.err"

# --- a download goes on across reloads
# 32 MiB at 8 MiB/s: more than the socket buffers and p hold, so p is
# still sending when the reloads come (its access line comes after them).
curl -s --limit-rate 8M -r 0-33554431 -o "$W/big" "$(url /big-random.bin)" &
dl=$!
sleep 1
kill -HUP "$(pid_of p)"
"$TT_P" token add spare2 --state-dir "$S" >/dev/null 2>&1
kill -HUP "$(pid_of p)"
wait "$dl"
expect_eq "the download under way ended well across 3 reloads" 0 "$?"
head -c 33554432 "$TT_MEDIA/big-random.bin" >"$W/big.want"
expect_same_file "... every byte" "$W/big.want" "$W/big"
rm -f "$W/big" "$W/big.want"
expect_true "p logged 3 more reloads" log_has "$W/p.log" 'reloaded tokens' 4
expect_eq "... all before the download's access line (it was under way)" "reloaded reloaded reloaded reloaded access" \
    "$(grep -oE 'reloaded tokens|access .*path=/big-random.bin' "$W/p.log" | awk '{ print $1 }' | tr '\n' ' ' | sed 's/ $//')"

# --- a file that does not parse
cp "$S/tokens" "$W/tokens.good"
echo "this line has far too many words" >>"$S/tokens"
bad_line=$(wc -l <"$S/tokens")
kill -HUP "$(pid_of p)"
if wait_until 50 0.1 log_has "$W/p.log" "reload failed: tokens $S/tokens:$bad_line: .*the configuration in use stays"; then
    good "a broken tokens file: p says which line and keeps what it had"
else
    bad "no 'reload failed' line for line $bad_line: $(tail -2 "$W/p.log" | tr '\n' '|')"
fi
expect_eq "... cam's tunnel stays" 0 "$(count_lines "$W/p.log" 'tunnel closed')"
expect_eq "... requests go on" 200 "$(status_of "$(url /data.json)")"
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name cam --token-file "$camfile" --fingerprint "$fpr" \
    --root "$TT_MEDIA" >"$W/c2.out" 2>"$W/c2.log" &
track "$!" c2
wait_c_up c2 || bad "a new tunnel with the old tokens did not come up after the broken reload"
stop_one c2
cp "$W/tokens.good" "$S/tokens"

# --- revoke
"$TT_P" token revoke cam --state-dir "$S" >"$W/revoke.out" 2>&1
expect_eq "p token revoke exits 0" 0 "$?"
expect_true "... removed c's token file" test ! -e "$camfile"
expect_eq "... and cam's line" 0 "$(grep -c '^cam ' "$S/tokens")"
if wait_until 50 0.1 log_has "$W/p.log" 'tunnel closed name=cam peer=127\.0\.0\.1:[0-9]+ reason=its token was revoked'; then
    good "p closed the revoked name's tunnel, saying why"
else
    bad "p did not close cam's tunnel: $(tail -3 "$W/p.log" | tr '\n' '|')"
fi
if wait_until 100 0.1 log_has "$W/c.log" 'proxy rejected the token for name cam \(401'; then good "cam's c is refused from then on (401)"; else bad "cam's c: $(tail -2 "$W/c.log" | tr '\n' '|')"; fi
expect_eq "requests for cam now get 503" 503 "$(status_of "$(url /data.json)")"
stop_one c
stop_one p
expect_true "p removed its pid file at exit" test ! -e "$S/p.pid"

# --- plain tokens: read, one warning naming the file and the line
pick_ports
start_p p2 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
expect_eq "one warning about plain tokens" 1 "$(count_lines "$W/p2.log" 'kept in plain text')"
expect_true "... naming the file and the first line" log_has "$W/p2.log" "warn tokens $TT_TOKENS:2: 3 token\(s\) kept in plain text"
start_c cp media "$TT_MEDIA"
wait_c_up cp || bad "a plain token no longer works"
finish
