#!/usr/bin/env bash
# p --affinity-header: requests with the same value of the header go to the
# same member of a pool while it is up (rendezvous hashing).  Three c serve
# "media", each a folder whose who.txt names it; 40 keys are asked twice
# (always the same member), then one member is stopped: only its keys move,
# to the two left, and every other key stays where it was.
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media --affinity-header X-User
for m in A B C; do
    mkdir -p "$W/root-$m"
    echo "$m" >"$W/root-$m/who.txt"
    start_c "c$m" media "$W/root-$m"
done
for m in A B C; do wait_c_up "c$m" || die "c$m did not come up"; done
wait_until 100 0.1 log_has "$W/p.log" 'tunnel up name=media .*pool=3' || die "p did not get a pool of 3"

who() { curl -s --max-time 10 -H "X-User: $1" "$(url /who.txt)"; } # KEY
declare -A first
same=1
count_a=0 count_b=0 count_c=0
for i in $(seq 1 40); do
    first[$i]=$(who "user-$i")
    for _ in 1 2; do [ "$(who "user-$i")" = "${first[$i]}" ] || same=0; done
    case ${first[$i]} in A) count_a=$((count_a + 1)) ;; B) count_b=$((count_b + 1)) ;; C) count_c=$((count_c + 1)) ;; esac
done
note "40 keys: A $count_a, B $count_b, C $count_c"
expect_eq "a key asked three times gets the same member each time" 1 "$same"
expect_eq "every key was answered by one of the three" 40 $((count_a + count_b + count_c))
expect_true "the keys spread over all three members" test "$count_a" -gt 0 -a "$count_b" -gt 0 -a "$count_c" -gt 0
# Without the header: the usual least-streams pick, so all three serve.
declare -A plain
for i in $(seq 1 12); do plain[$(curl -s --max-time 10 "$(url /who.txt)")]=1; done
expect_eq "requests without the header are spread as before" 3 "${#plain[@]}"

stop_one cB
wait_until 100 0.1 log_has "$W/p.log" 'tunnel down name=media .*pool=2' || die "p did not see cB go"
stayed=1 moved_ok=1 moved=0
for i in $(seq 1 40); do
    now=$(who "user-$i")
    if [ "${first[$i]}" = B ]; then
        moved=$((moved + 1))
        [ "$now" = A ] || [ "$now" = C ] || moved_ok=0
    else
        [ "$now" = "${first[$i]}" ] || stayed=0
    fi
done
expect_eq "with B gone, every key of A and C stays where it was" 1 "$stayed"
expect_eq "B's $moved keys moved to A or C" 1 "$moved_ok"
finish
