#!/usr/bin/env bash
# The tunnel handshake's refusals and c's reaction to them:
# - raw PUTs on the TLS listener: no token -> 401, wrong token -> 401,
#   another name's token -> 403, no Upgrade -> 426, garbage -> 400; each
#   answer closes the connection; p logs "tunnel refused ... status=N".
# - c with a wrong token: p refuses (401), c says so in plain words and
#   backs off (--auth-backoff 60): exactly one attempt over 3 s, and clients
#   get 503 meanwhile.  Same for a token of another name (403).
# - Neither token ever appears in a log.
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media

good_tok=$(token_of media)
other_tok=$(token_of other)
wrong_tok=$(openssl rand -hex 24)
printf '%s' "$wrong_tok" >"$W/wrong.token"

hs() { # EXTRA-HEADERS -> prints rawhttp's report
    printf 'PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: 0\r\n\r\n' "$1" \
        | $RAW req 127.0.0.1 "$TUN_PORT" --tls --idle 5
}
up=$'Tether-Name: media\r\nTether-Version: 1\r\nConnection: Upgrade\r\nUpgrade: tether-h2r\r\n'

hs "$up" >"$W/hs1"
expect_eq "handshake without a token -> 401" "STATUS 401" "$(grep '^STATUS' "$W/hs1")"
expect_eq "401 closes the connection" "END eof" "$(tail -1 "$W/hs1")"
hs "Authorization: Bearer $wrong_tok"$'\r\n'"$up" >"$W/hs2"
expect_eq "handshake with a wrong token -> 401" "STATUS 401" "$(grep '^STATUS' "$W/hs2")"
expect_eq "401 closes the connection" "END eof" "$(tail -1 "$W/hs2")"
hs "Authorization: Bearer $other_tok"$'\r\n'"$up" >"$W/hs3"
expect_eq "handshake with another name's token -> 403" "STATUS 403" "$(grep '^STATUS' "$W/hs3")"
expect_eq "403 closes the connection" "END eof" "$(tail -1 "$W/hs3")"
hs "Authorization: Bearer $good_tok"$'\r\nTether-Name: media\r\nTether-Version: 1\r\n' >"$W/hs4"
expect_eq "handshake with a good token but no Upgrade -> 426" "STATUS 426" "$(grep '^STATUS' "$W/hs4")"
printf 'THIS IS NOT HTTP\r\n\r\n' | $RAW req 127.0.0.1 "$TUN_PORT" --tls --idle 5 >"$W/hs5"
expect_eq "garbage on the tunnel listener -> 400" "STATUS 400" "$(grep '^STATUS' "$W/hs5")"
expect_eq "400 closes the connection" "END eof" "$(tail -1 "$W/hs5")"
wait_until 20 0.1 log_has "$W/p.log" 'tunnel refused peer=127\.0\.0\.1:[0-9]+ status=401' 2 || true
expect_eq "p logged 'tunnel refused ... status=401' for both 401s" 2 "$(count_lines "$W/p.log" 'tunnel refused peer=127\.0\.0\.1:[0-9]+ status=401')"
expect_true "p logged 'tunnel refused ... status=403'" log_has "$W/p.log" 'tunnel refused peer=127\.0\.0\.1:[0-9]+ status=403'
# Issue 12 C.7: the line reads as one sentence, the name as a field.
expect_true "p's 403 line: 'name=media reason=the token belongs to another name'" \
    log_has "$W/p.log" 'status=403 name=media reason=the token belongs to another name$'
expect_eq "no tunnel came up from the raw handshakes" 0 "$(count_lines "$W/p.log" 'tunnel up')"

# c with a wrong token.
TOKEN_FILE=$W/wrong.token start_c cwrong media "$TT_MEDIA" --auth-backoff 60
msg='proxy rejected the token for name media \(401 Unauthorized\): check --token; next try in [0-9]+ s'
if wait_until 100 0.1 log_has "$W/cwrong.log" "$msg"; then
    good "c says plainly that the proxy rejected its token"
else
    bad "c did not log /$msg/ within 10 s; its log: $(tail -3 "$W/cwrong.log" | tr '\n' '|')"
fi
n0=$(count_lines "$W/p.log" 'tunnel refused .*status=401')
sleep 3
expect_eq "p refused c's wrong token exactly once over 3 s (c backs off)" $((n0)) "$(count_lines "$W/p.log" 'tunnel refused .*status=401')"
expect_eq "c tried to connect once (one 'connecting to' line)" 1 "$(count_lines "$W/cwrong.log" 'connecting to 127\.0\.0\.1:')"
expect_eq "p saw exactly 3 refused 401 handshakes in all (2 raw + c's one)" 3 "$(count_lines "$W/p.log" 'tunnel refused .*status=401')"
expect_true "c with a wrong token is still running (it waits, it does not exit)" alive "$(pid_of cwrong)"
fetch /data.json
expect_eq "a client meanwhile gets 503 (no tunnel for media)" 503 "$CODE"
expect_match "the 503 has Retry-After" '^[0-9]+$' "$(header_of "$W/hdrs" retry-after)"
stop_one cwrong

# c with another name's token: 403.
TOKEN_FILE=$TT_SHARED/token.other start_c cforbidden media "$TT_MEDIA" --auth-backoff 60
msg='token is not valid for name media \(403 Forbidden\)'
if wait_until 100 0.1 log_has "$W/cforbidden.log" "$msg"; then
    good "c says plainly that the token is not valid for the name (403)"
else
    bad "c did not log /$msg/ within 10 s; its log: $(tail -3 "$W/cforbidden.log" | tr '\n' '|')"
fi
sleep 2
expect_eq "c with a 403 tried once over 2 s" 1 "$(count_lines "$W/cforbidden.log" 'connecting to 127\.0\.0\.1:')"
stop_one cforbidden

# The right token now works (the refusals left p in a good state).
start_c c media "$TT_MEDIA"
wait_c_up c || bad "c with the right token did not come up"
wait_until 50 0.1 is_status 200 "$(url /data.json)" || bad "GET /data.json did not reach c after the refusals"

leaks=0
for t in "$wrong_tok" "$other_tok" "$good_tok"; do
    if grep -qF -- "$t" "$W"/*.log; then leaks=1; bad "a token appears in $(grep -lF -- "$t" "$W"/*.log | tr '\n' ' ')"; fi
done
[ "$leaks" = 0 ] && good "no token (right, wrong or another name's) in any log"
finish
