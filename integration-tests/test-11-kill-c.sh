#!/usr/bin/env bash
# kill -9 of c in the middle of a download:
# - the client sees an aborted transfer (curl fails, e.g. exit 18 "partial
#   file"), never a short body that looks complete;
# - p keeps serving others: another name's c still answers, and the killed
#   name gets 503 with Retry-After while no c serves it;
# - a restarted c serves again within seconds.
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --domain test.local
mkdir -p "$W/other"
echo "served by other" >"$W/other/whoami.txt"
start_c c media "$TT_MEDIA"
start_c cother other "$W/other"
wait_c_up c || die "c (media) did not come up"
wait_c_up cother || die "c (other) did not come up"
H_MEDIA="Host: media.test.local"
H_OTHER="Host: other.test.local"
wait_until 100 0.1 is_status 200 -H "$H_MEDIA" "$(url /data.json)" || die "media.test.local never answered 200"

# The 80 MiB file: much more than the kernel's socket buffers (several MiB
# on loopback) can hold, so p cannot have passed the whole body on before c
# dies.  (With the 8 MiB video, p may legitimately have written every byte
# into the sockets before the kill.)
f="big-random.bin"
size=$(stat -c %s "$TT_MEDIA/$f")
curl -s --max-time 60 --limit-rate 1M -H "$H_MEDIA" -o "$W/partial.mp4" "$(url "/$(q "$f")")" 2>"$W/curl.err" &
dl=$!
track "$dl" curl-dl
# Kill c once the client has a few hundred KiB.
wait_until 100 0.1 bash -c '[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 300000 ]' _ "$W/partial.mp4" \
    || bad "the download did not get going (have $(stat -c %s "$W/partial.mp4" 2>/dev/null || echo 0) bytes)"
kill -KILL "$(pid_of c)"
wait "$(pid_of c)" 2>/dev/null
wait "$dl"; rc=$?
got=$(stat -c %s "$W/partial.mp4" 2>/dev/null || echo 0)
note "curl exit $rc with $got of $size bytes"
expect_ne "the client's transfer is aborted (curl exit non-zero)" 0 "$rc"
if [ "$got" -lt "$size" ]; then good "the client has less than the whole file ($got < $size)"; else bad "the client got $got bytes of $size after c was killed"; fi
# The bytes it did get are the file's first bytes.
head -c "$got" "$TT_MEDIA/$f" >"$W/want"
expect_same_file "the partial bytes are the file's beginning" "$W/want" "$W/partial.mp4"

wait_until 50 0.1 log_has "$W/p.log" 'tunnel down name=media' || bad "p did not log 'tunnel down name=media' within 5 s"

# p keeps serving others.
fetch /whoami.txt -H "$H_OTHER"
expect_eq "other.test.local still served by its c" 200 "$CODE"
expect_eq "other's content" "served by other" "$(cat "$W/body")"
# media: nobody serves it now -> 503 with Retry-After, plain text naming it.
fetch /data.json -H "$H_MEDIA"
expect_eq "media.test.local with no c -> 503" 503 "$CODE"
expect_match "503 has Retry-After" '^[0-9]+$' "$(header_of "$W/hdrs" retry-after)"
expect_true "the 503 body names 'media'" grep -q media "$W/body"
expect_true "p is alive" alive "$(pid_of p)"

# A restarted c serves again within seconds.
start_c c2 media "$TT_MEDIA"
wait_c_up c2 || bad "restarted c did not come up"
if wait_until 100 0.1 is_status 200 -H "$H_MEDIA" "$(url /data.json)"; then good "media.test.local served again by the restarted c"; else bad "media.test.local not served within 10 s of the restart"; fi
OUT=$W/full.mp4 fetch "/$(q "my clip.mp4")" -H "$H_MEDIA"
expect_same_file "a whole video download works again" "$TT_MEDIA/my clip.mp4" "$W/full.mp4"
rm -f "$W/partial.mp4" "$W/want"
finish
