#!/usr/bin/env bash
# Two c under one name form a pool: p logs pool=2, requests alternate between
# them (each serves its own folder, so the answer says who served), and when
# one is killed the other serves everything.  One c with --connections 2 also
# makes a pool of two.
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
mkdir -p "$W/a" "$W/b"
echo "A" >"$W/a/whoami.txt"
echo "B" >"$W/b/whoami.txt"
start_c ca media "$W/a"
wait_c_up ca || die "c A did not come up"
wait_until 50 0.1 log_has "$W/p.log" 'tunnel up name=media peer=127\.0\.0\.1:[0-9]+ pool=1' || bad "p did not log pool=1 for the first c"
start_c cb media "$W/b"
wait_c_up cb || die "c B did not come up"
if wait_until 50 0.1 log_has "$W/p.log" 'tunnel up name=media peer=127\.0\.0\.1:[0-9]+ pool=2'; then good "p logged pool=2"; else bad "p did not log 'tunnel up name=media ... pool=2'"; fi

# Sequential requests: with no open streams the members tie, and ties go
# round-robin, so both must answer among 10 requests.
seen_a=0 seen_b=0 other=0
for i in $(seq 1 10); do
    fetch /whoami.txt
    case "$CODE:$(cat "$W/body" 2>/dev/null)" in
        200:A) seen_a=$((seen_a + 1)) ;;
        200:B) seen_b=$((seen_b + 1)) ;;
        *) other=$((other + 1)); bad "request $i: status $CODE body [$(head -c 80 "$W/body")]" ;;
    esac
done
note "10 requests: A served $seen_a, B served $seen_b"
expect_true "both members of the pool served (A $seen_a, B $seen_b)" test "$seen_a" -gt 0 -a "$seen_b" -gt 0
expect_true "round-robin on ties: neither served more than 7 of 10" test "$seen_a" -le 7 -a "$seen_b" -le 7

# Kill A: B serves everything.
kill -KILL "$(pid_of ca)"
wait "$(pid_of ca)" 2>/dev/null
if wait_until 100 0.1 log_has "$W/p.log" 'tunnel down name=media peer=127\.0\.0\.1:[0-9]+ reason=.* pool=1'; then good "p logged the member leaving (pool=1)"; else bad "p did not log 'tunnel down name=media ... pool=1'"; fi
all_b=0
for i in $(seq 1 10); do
    fetch /whoami.txt
    if [ "$CODE:$(cat "$W/body" 2>/dev/null)" = "200:B" ]; then all_b=$((all_b + 1)); else bad "after A died, request $i: status $CODE body [$(head -c 80 "$W/body")]"; fi
done
expect_eq "after A was killed, B served all 10 requests" 10 "$all_b"
stop_one cb
wait_until 50 0.1 log_has "$W/p.log" 'tunnel down name=media .*pool=0' || bad "p did not log pool=0 after B stopped"

# One c, --connections 2: a pool of two from one process.
start_c cc media "$W/a" --connections 2
if wait_until 100 0.1 log_has "$W/cc.log" 'tunnel up to' 2; then good "c --connections 2 brought up two tunnels"; else bad "c --connections 2: $(count_lines "$W/cc.log" 'tunnel up to') tunnel(s) up"; fi
n=$(count_lines "$W/p.log" 'tunnel up name=media .*pool=2')
expect_true "p logged pool=2 again for the two connections of one c" test "$n" -ge 2
fetch /whoami.txt
expect_eq "a request through the two-connection pool" "200:A" "$CODE:$(cat "$W/body")"
finish
