#!/usr/bin/env bash
# A dead network path between c and p (faultproxy.py stops forwarding but
# keeps both sockets open), mid-download, with 1 s keepalives on both ends:
# - both directions stalled, then only p -> c stalled (c's answers flow, p's
#   requests and WINDOW_UPDATEs do not);
# each time the client's download ends aborted (never a hang, never a short
# body that looks whole), p logs the tunnel down, new requests get 503 while
# no tunnel is up, and once the path works again c reconnects by itself and
# a new download is exact.
source "$(dirname "$0")/lib.sh"
source "$TT_HERE/faults.sh"
start_faulty
big=$TT_MEDIA/big-random.bin

stall_case() { # LABEL DIR
    local label=$1 dir=$2 downs ups dl rc
    downs=$(p_downs)
    ups=$(c_ups)
    fpq all throttle 4194304   # so the download is still running when the path dies
    rm -f "$W/dl"
    curl -s --max-time 30 -o "$W/dl" "$(url /big-random.bin)" &
    dl=$!
    track "$dl" "curl-$label"
    wait_until 100 0.1 bash -c '[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 500000 ]' _ "$W/dl" \
        || bad "$label: the download did not get going"
    fpq all stall "$dir"    # every open connection and every new one
    wait "$dl"; rc=$?
    expect_aborted "$label" "$rc" "$W/dl" "$big"
    if wait_until 100 0.1 log_has "$W/p.log" 'tunnel down name=media' $((downs + 1)); then
        good "$label: p logged: $(grep 'tunnel down name=media' "$W/p.log" | tail -1 | sed 's/.* reason=/reason=/')"
    else
        bad "$label: p did not log the tunnel down within 10 s"
    fi
    fetch /data.json
    expect_eq "$label: a request while no tunnel is up -> 503" 503 "$CODE"
    expect_match "$label: the 503 has Retry-After" '^[0-9]+$' "$(header_of "$W/hdrs" retry-after)"
    fpq all pass
    if wait_until 200 0.1 log_has "$W/c.log" 'tunnel up to' $((ups + 1)); then good "$label: c reconnected by itself"; else bad "$label: c did not reconnect within 20 s"; fi
    wait_until 100 0.1 is_status 200 "$(url /data.json)" || bad "$label: no 200 after the reconnect"
    OUT=$W/clip fetch "/$(q "my clip.mp4")"
    expect_eq "$label: a new download -> 200" 200 "$CODE"
    expect_same_file "$label: the new download is exact" "$TT_MEDIA/my clip.mp4" "$W/clip"
    rm -f "$W/dl" "$W/clip"
}

stall_case "stall both directions" both
stall_case "stall p->c only" down
# For completeness: c -> p only (p's requests arrive, nothing comes back).
stall_case "stall c->p only" up
note "c's 'tunnel down' lines: $(grep 'tunnel down' "$W/c.log" | sed 's/.*tunnel down [^:]*: //' | tr '\n' '|')"
finish
