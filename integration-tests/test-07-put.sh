#!/usr/bin/env bash
# c --allow-put: PUT creates (201), replaces (204), GET returns what was put;
# an upload interrupted half-way (curl killed mid-body) leaves nothing in the
# folder, neither the file nor a temporary.
source "$(dirname "$0")/lib.sh"

root=$W/putroot
mkdir -p "$root"
echo "already here" >"$root/existing.txt"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
start_c c media "$root" --allow-put
wait_c_up c || die "c did not come up"
wait_until 100 0.1 is_status 200 "$(url /existing.txt)" || die "GET /existing.txt never answered 200"

listing() { (cd "$root" && find . -mindepth 1 | LC_ALL=C sort); }

# 2 MiB of random bytes: big enough to need several windows' worth of frames.
head -c $((2 * 1024 * 1024)) /dev/urandom >"$W/upload.bin"
fetch /upload.bin -X PUT --data-binary @"$W/upload.bin" -H "Content-Type: application/octet-stream" --max-time 20
expect_eq "first PUT -> 201 Created" 201 "$CODE"
expect_same_file "the uploaded file on disk equals what was sent" "$W/upload.bin" "$root/upload.bin"
fetch /upload.bin
expect_eq "GET after PUT -> 200" 200 "$CODE"
expect_same_file "GET returns what was put" "$W/upload.bin" "$W/body"

head -c 300000 /dev/urandom >"$W/upload2.bin"
fetch /upload.bin -X PUT --data-binary @"$W/upload2.bin" --max-time 20
expect_eq "second PUT on the same name -> 204 No Content" 204 "$CODE"
fetch /upload.bin
expect_same_file "GET returns the replacement" "$W/upload2.bin" "$W/body"

# Several uploads bigger than the 1 MiB stream window, body sent at once
# with the head (no Expect: 100-continue), so the window must reopen while
# the stream is busy.  Stops at the first one that does not finish: a stalled
# upload costs its 15 s --max-time.  When curl gives up, the upload must be
# cancelled and leave no temporary behind.
for i in 1 2 3 4 5 6; do
    before=$(listing)
    CODE=$(curl -s --max-time 15 -o /dev/null -w '%{http_code}' -H 'Expect:' -T "$W/upload.bin" "$(url "/loop$i.bin")") || true
    if [ "$CODE" = 201 ] && cmp -s "$W/upload.bin" "$root/loop$i.bin"; then
        good "2 MiB upload $i (no Expect) -> 201, stored whole"
        rm -f "$root/loop$i.bin"
        continue
    fi
    bad "2 MiB upload $i (no Expect): status $CODE (curl gave up after 15 s); on disk: $(cd "$root" && find . -name '.*' -type f -printf '%p=%s ' -o -name "loop$i.bin" -printf '%p=%s ')"
    if wait_until 50 0.1 bash -c '[ "$(cd "$1" && find . -mindepth 1 | LC_ALL=C sort)" = "$2" ]' _ "$root" "$before"; then
        good "the abandoned upload $i left nothing"
    else
        bad "5 s after curl gave up, upload $i left: [$(comm -13 <(echo "$before") <(listing) | tr '\n' ' ')]"
    fi
    break
done

# Chunked upload (no Content-Length): curl -T - reads stdin.
head -c 500000 /dev/urandom >"$W/upload3.bin"
CODE=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' -T - "$(url /chunked.bin)" <"$W/upload3.bin") || true
expect_eq "chunked PUT -> 201" 201 "$CODE"
expect_same_file "chunked upload stored whole" "$W/upload3.bin" "$root/chunked.bin"

# PUT with a name under a UTF-8 folder name and spaces.
mkdir -p "$root/dossier été"
fetch "/$(q "dossier été/mon fichier.txt")" -X PUT --data-binary "bonjour"
expect_eq "PUT to 'dossier été/mon fichier.txt' -> 201" 201 "$CODE"
expect_eq "its content" "bonjour" "$(cat "$root/dossier été/mon fichier.txt" 2>/dev/null)"

# PUT outside the root is refused.
CODE=$(curl -s --path-as-is --max-time 10 -o /dev/null -w '%{http_code}' -X PUT --data-binary x "$(url /%2e%2e/escaped.txt)") || true
expect_match "PUT to /%2e%2e/escaped.txt refused" '^(400|403|404)$' "$CODE"
expect_true "nothing written outside the root" test ! -e "$W/escaped.txt"

# The interrupted upload: a client declares 8 MiB (Content-Length), sends
# 1 MiB and stalls; the test kills it (-9), so p sees the connection drop
# mid-body.  (A raw socket: curl cannot send less than it declares.)
before=$(listing)
$PY - "$HTTP_PORT" <<'PYEOF' >"$W/partial-client.out" 2>&1 &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PUT /partial.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 8388608\r\n\r\n")
s.sendall(os.urandom(1024 * 1024))
print("sent 1 MiB", flush=True)
time.sleep(60)
PYEOF
curl_pid=$!
track "$curl_pid" partial-client
wait_until 100 0.1 log_has "$W/partial-client.out" "sent 1 MiB" || bad "the partial client could not send its first MiB"
# Wait until c has started writing (a temporary appears or grows) or 5 s.
wait_until 50 0.1 bash -c '[ "$(cd "$1" && find . -mindepth 1 | wc -l)" -gt "$2" ]' _ "$root" "$(echo "$before" | wc -l)" \
    && note "a temporary appeared during the upload: $(cd "$root" && find . -mindepth 1 -newer "$W/upload3.bin" | tr '\n' ' ')"
expect_true "partial.bin does not exist while the upload is incomplete" test ! -e "$root/partial.bin"
kill -KILL "$curl_pid" 2>/dev/null
wait "$curl_pid" 2>/dev/null
# Cleanup happens when c learns the stream was cancelled: poll (bounded).
if wait_until 100 0.1 bash -c '[ "$(cd "$1" && find . -mindepth 1 | LC_ALL=C sort)" = "$2" ]' _ "$root" "$before"; then
    good "after the interrupted upload the folder is as before (no file, no temporary)"
else
    bad "after the interrupted upload the folder differs: before [$(echo "$before" | tr '\n' ' ')] after [$(listing | tr '\n' ' ')]"
fi
sleep 1   # a c that wrongly finalises on reset would do it by now
expect_true "partial.bin never appeared" test ! -e "$root/partial.bin"
fetch /partial.bin
expect_eq "GET /partial.bin -> 404" 404 "$CODE"

# A chunked upload cut short the same way.
before=$(listing)
mkfifo "$W/fifo2"
curl -s --max-time 60 -o /dev/null -T - "$(url /partial2.bin)" <"$W/fifo2" &
curl_pid=$!
track "$curl_pid" curl-chunked
exec 8<>"$W/fifo2"
timeout 10 head -c 600000 /dev/urandom >&8
sleep 1
kill -KILL "$curl_pid" 2>/dev/null
wait "$curl_pid" 2>/dev/null
exec 8>&-
if wait_until 100 0.1 bash -c '[ "$(cd "$1" && find . -mindepth 1 | LC_ALL=C sort)" = "$2" ]' _ "$root" "$before"; then
    good "interrupted chunked upload left nothing"
else
    bad "interrupted chunked upload left: [$(listing | tr '\n' ' ')] (before: [$(echo "$before" | tr '\n' ' ')])"
fi
sleep 1
expect_true "partial2.bin never appeared" test ! -e "$root/partial2.bin"

# c still serves after the broken uploads.
fetch /existing.txt
expect_eq "c still serves after the interrupted uploads" 200 "$CODE"
finish
