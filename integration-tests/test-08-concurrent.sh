#!/usr/bin/env bash
# 50 concurrent downloads of the biggest video through one tunnel: every one
# complete and byte-identical (sha256), curl exit 0, status 200.
source "$(dirname "$0")/lib.sh"
start_pair

f="my clip.mp4"
want=$(sha_of "$TT_MEDIA/$f")
u=$(url "/$(q "$f")")
mkdir -p "$W/dl"
pids=()
for i in $(seq 1 50); do
    # Hash on the fly: no 50 copies on disk.  pipefail makes a curl failure
    # the pipeline's status.
    bash -c 'set -o pipefail; curl -sS --max-time 90 -w "%{http_code}\n" -o >(sha256sum | cut -d" " -f1 >"$2.sha") "$1" >"$2.code" 2>"$2.err"; echo $? >"$2.rc"' \
        _ "$u" "$W/dl/$i" &
    pids+=($!)
    track "$!" "dl-$i"
done
for pid in "${pids[@]}"; do wait "$pid"; done
sleep 0.5   # the sha256sum process substitutions finish writing

ok=0
for i in $(seq 1 50); do
    rc=$(cat "$W/dl/$i.rc" 2>/dev/null || echo none)
    code=$(cat "$W/dl/$i.code" 2>/dev/null || echo none)
    sha=$(cat "$W/dl/$i.sha" 2>/dev/null || echo none)
    if [ "$rc" = 0 ] && [ "$code" = 200 ] && [ "$sha" = "$want" ]; then
        ok=$((ok + 1))
    else
        bad "download $i: curl exit $rc, status $code, sha256 ${sha:0:16} (want ${want:0:16}) $(head -c 200 "$W/dl/$i.err" 2>/dev/null)"
    fi
done
expect_eq "downloads complete and identical" 50 "$ok"
size=$(stat -c %s "$TT_MEDIA/$f")
expect_eq "p logged 50 access lines (status=200 bytes=$size)" 50 "$(count_lines "$W/p.log" "access .*method=GET .*status=200 bytes=$size ")"
# Both programs are still up.
expect_true "p is alive" alive "$(pid_of p)"
expect_true "c is alive" alive "$(pid_of c)"
fetch /data.json
expect_eq "a request after the burst works" 200 "$CODE"
finish
