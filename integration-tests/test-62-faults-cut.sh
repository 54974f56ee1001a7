#!/usr/bin/env bash
# The tunnel cut abruptly (RST) by faultproxy.py between c and p:
# - mid-download: the client's download ends aborted, p logs why, c
#   reconnects within its backoff and serves again;
# - during the TLS handshake (mid ClientHello, mid certificate) and during
#   the PUT handshake (mid PUT, just before the 101): c logs and retries, and
#   p's open descriptors come back to what they were;
# - mid-upload (c --allow-put): the root holds the whole file or nothing,
#   never a partial one, and a later upload works.
source "$(dirname "$0")/lib.sh"
source "$TT_HERE/faults.sh"
FAULT_ROOT=$W/root
mkdir -p "$FAULT_ROOT"
ln "$TT_MEDIA/big-random.bin" "$FAULT_ROOT/" 2>/dev/null || cp "$TT_MEDIA/big-random.bin" "$FAULT_ROOT/"
cp "$TT_MEDIA/my clip.mp4" "$TT_MEDIA/data.json" "$FAULT_ROOT/"
start_faulty --allow-put
ppid_=$(pid_of p)
fd_base=$(fdcount "$ppid_")
note "p has $fd_base open descriptors with one tunnel up"

# 5. RST mid-download.
downs=$(p_downs)
ups=$(c_ups)
fpq all throttle 4194304
curl -s --max-time 30 -o "$W/dl" "$(url /big-random.bin)" &
dl=$!
track "$dl" curl-dl
wait_until 100 0.1 bash -c '[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 500000 ]' _ "$W/dl" || bad "the download did not get going"
fpq all pass
fpq cur cut rst
wait "$dl"; rc=$?
expect_aborted "RST mid-download" "$rc" "$W/dl" "$TT_MEDIA/big-random.bin"
rm -f "$W/dl"
if wait_until 50 0.1 log_has "$W/p.log" 'tunnel down name=media' $((downs + 1)); then
    expect_match "p logs a reason for the cut tunnel" 'reason=[^ ]' "$(grep 'tunnel down name=media' "$W/p.log" | tail -1)"
else bad "p did not log the tunnel down"; fi
# c's first wait is at most 0.2 s (full jitter); allow it and a handshake.
if wait_until 100 0.1 log_has "$W/c.log" 'tunnel up to' $((ups + 1)); then good "c reconnected after the RST"; else bad "c did not reconnect within 10 s of the RST"; fi
expect_match "c said why and when it retries" 'tunnel down \(tunnel 1\): .+; next try in [0-9.]+ s' "$(grep 'tunnel down' "$W/c.log" | tail -1)"
wait_until 50 0.1 is_status 200 "$(url /data.json)" || bad "no 200 after the reconnect"
OUT=$W/clip fetch "/$(q "my clip.mp4")"
expect_same_file "a download after the reconnect is exact" "$TT_MEDIA/my clip.mp4" "$W/clip"
rm -f "$W/clip"

# 6. Cuts during the handshakes.  Record numbers from this run's first
# connection: up = ClientHello, [CCS], Finished..., PUT; down = ServerHello...
trace=$(fp trace 1)
note "TLS records of the first connection: $trace"
up_list=$(sed 's/.*up=\([^ ]*\).*/\1/' <<<"$trace")
down_list=$(sed 's/.*down=\([^ ]*\).*/\1/' <<<"$trace")
# The PUT: the up stream's second application-data record (TLS 1.3, which p
# and c negotiate: the first carries c's Finished).
put_rec=$(tr ',' '\n' <<<"$up_list" | awk -F/ '$1 == 23 { n++; if (n == 2) { print NR; exit } }')
# The 101: the first down application-data record after the last record of
# 200+ bytes (certificate, session tickets) — it is under 200 bytes.
resp_rec=$(tr ',' '\n' <<<"$down_list" | awk -F/ 'NR > 2 && $2 >= 200 { last = NR } END { print last + 1 }')
note "PUT is up record $put_rec; the 101 is down record $resp_rec"

# Each case with a fresh c: c's backoff only resets after a tunnel stayed up
# 30 s, so a run of cuts on one c would soon wait up to 30 s (by design).
restart_c() {
    stop_one c
    "$TT_C" --proxy "127.0.0.1:$FP_PORT" --name media --token-file "$TT_SHARED/token.media" \
        --fingerprint "$TT_FPR" --root "$FAULT_ROOT" --allow-put "${KA[@]}" >>"$W/c.out" 2>>"$W/c.log" &
    track "$!" c
}
hs_case() { # LABEL DIR REC OFF
    local label=$1 ups_ n0 n1
    fpq next cut-at "$2" "$3" "$4"
    ups_=$(c_ups)
    n0=$(count_lines "$W/c.log" 'tunnel down')
    restart_c
    # The first attempt is cut, the next one works.
    if wait_until 150 0.1 log_has "$W/c.log" 'tunnel up to' $((ups_ + 1)); then good "$label: c retried and came up"; else bad "$label: c not up again within 15 s"; fi
    n1=$(count_lines "$W/c.log" 'tunnel down')
    expect_eq "$label: c logged the failed attempt" 1 $((n1 - n0))
    note "$label: c said: $(grep 'tunnel down' "$W/c.log" | tail -1 | sed 's/.*): //')"
    wait_until 50 0.1 is_status 200 "$(url /data.json)" || bad "$label: no 200 after it"
}
hs_case "cut mid ClientHello" up 1 100
hs_case "cut mid certificate" down 4 100
if [ -n "$put_rec" ]; then
    hs_case "cut mid PUT" up "$put_rec" 60
    expect_true "p logged the handshake lost before its request" \
        log_has "$W/p.log" 'tunnel refused peer=.* status=0 reason=connection lost before the request' 1
fi
[ "$resp_rec" -gt 1 ] && hs_case "cut just before the 101" down "$resp_rec" 0
[ "$resp_rec" -gt 1 ] && hs_case "cut mid 101" down "$resp_rec" 30
note "p logged: $(grep -E 'tunnel (refused|down)' "$W/p.log" | sed 's/^[^ ]* p [a-z]* //' | sort | uniq -c | sed 's/^ *//' | tr '\n' '|')"
expect_true "p logged why the TLS handshakes failed (tunnel refused ... reason=)" log_has "$W/p.log" 'tunnel refused peer=.* reason=' 2
# p's descriptors: back to one tunnel's worth (closing takes a moment).
if wait_until 50 0.1 bash -c '[ "$(find /proc/$1/fd -mindepth 1 -maxdepth 1 | wc -l)" -le "$2" ]' _ "$ppid_" "$fd_base"; then
    good "p's descriptors are back to $fd_base"
else bad "p holds $(fdcount "$ppid_") descriptors, $fd_base before the cuts: $(ls -l /proc/$ppid_/fd | awk '{ print $NF }' | sort | uniq -c | tr '\n' ' ')"; fi
expect_eq "p has one tunnel again (its last tunnel line)" 1 "$(grep -E 'tunnel (up|down) name=media' "$W/p.log" | tail -1 | grep -c 'tunnel up.*pool=1')"

# 8. An upload cut mid-body: the whole file or nothing.
listing() { (cd "$FAULT_ROOT" && find . -mindepth 1 | LC_ALL=C sort); }
head -c $((8 * 1048576)) /dev/urandom >"$W/up.bin"
before=$(listing)
ups=$(c_ups)
fpq all throttle 2097152
curl -s --max-time 30 -o /dev/null -w '%{http_code}' -T "$W/up.bin" "$(url /up.bin)" >"$W/put.code" 2>/dev/null &
put=$!
track "$put" curl-put
# Cut once c has received about 1 MiB of the body (or after 5 s).
wait_until 50 0.1 bash -c '[ "$(cd "$1" && find . -mindepth 1 | wc -l)" -gt "$2" ]' _ "$FAULT_ROOT" "$(echo "$before" | wc -l)" \
    && note "c writes to: $(comm -13 <(echo "$before") <(listing) | tr '\n' ' ')"
sleep 0.5
fpq all pass
fpq cur cut rst
wait "$put"; rc=$?
note "the cut upload: curl exit $rc, status $(cat "$W/put.code")"
expect_ne "the cut upload is not reported as stored (201/204)" 1 "$(grep -cE '^20[14]$' "$W/put.code")"
if wait_until 50 0.1 bash -c '[ "$(cd "$1" && find . -mindepth 1 | LC_ALL=C sort)" = "$2" ]' _ "$FAULT_ROOT" "$before"; then
    good "after the cut upload the root is as before (no file, no temporary)"
elif [ -f "$FAULT_ROOT/up.bin" ] && cmp -s "$W/up.bin" "$FAULT_ROOT/up.bin"; then
    good "after the cut upload the root has the whole file"
else
    bad "after the cut upload the root has: [$(comm -13 <(echo "$before") <(listing) | tr '\n' ' ')] (up.bin: $(size_of "$FAULT_ROOT/up.bin") bytes)"
fi
wait_until 100 0.1 log_has "$W/c.log" 'tunnel up to' $((ups + 1)) || bad "c did not reconnect after the cut upload"
wait_until 50 0.1 is_status 200 "$(url /data.json)" || bad "no 200 after the cut upload"
rm -f "$FAULT_ROOT/up.bin"
CODE=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -T "$W/up.bin" "$(url /up.bin)") || true
expect_eq "an upload after the reconnect -> 201" 201 "$CODE"
expect_same_file "it is stored whole" "$W/up.bin" "$FAULT_ROOT/up.bin"
rm -f "$W/up.bin"
finish
