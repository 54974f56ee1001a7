#!/usr/bin/env bash
# HEAD: the GET's headers and no body at all (checked on the raw socket);
# 304 by If-None-Match and by If-Modified-Since, and 200 when the validator
# does not match; If-Range with the right and a wrong ETag.
source "$(dirname "$0")/lib.sh"
start_pair

f="my clip.mp4"
p="/$(q "$f")"
size=$(stat -c %s "$TT_MEDIA/$f")

# HEAD through curl: status and headers.
CODE=$(curl -s -I --max-time 10 -D "$W/head.hdrs" -o /dev/null -w '%{http_code}' "$(url "$p")")
expect_eq "HEAD status" 200 "$CODE"
expect_eq "HEAD Content-Length is the file's size" "$size" "$(header_of "$W/head.hdrs" content-length)"
expect_match "HEAD Content-Type" '^video/mp4' "$(header_of "$W/head.hdrs" content-type)"
expect_match "HEAD Accept-Ranges" '^bytes' "$(header_of "$W/head.hdrs" accept-ranges)"
etag=$(header_of "$W/head.hdrs" etag)
lm=$(header_of "$W/head.hdrs" last-modified)
expect_match "HEAD has a strong ETag" '^"[^"]+"$' "$etag"
expect_match "HEAD has an HTTP-date Last-Modified" '^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$' "$lm"
want_lm=$(TZ=GMT date -d "@$(stat -c %Y "$TT_MEDIA/$f")" '+%a, %d %b %Y %H:%M:%S GMT')
expect_eq "Last-Modified is the file's mtime" "$want_lm" "$lm"

# HEAD on the raw socket: after the head, not one byte (a body after a HEAD
# answer would desynchronise the next request on the connection).  A GET
# follows on the same connection to prove it is still in step.
printf 'HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$p" >"$W/req"
$RAW req 127.0.0.1 "$HTTP_PORT" --head --idle 2 <"$W/req" >"$W/raw.out"
expect_eq "raw HEAD: one response" 1 "$(count_lines "$W/raw.out" '^RESPONSE')"
expect_eq "raw HEAD: status" "STATUS 200" "$(grep '^STATUS' "$W/raw.out" | head -1)"
expect_eq "raw HEAD: no bytes after the head" 0 "$(count_lines "$W/raw.out" '^TRAILING')"
printf 'HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$p" >"$W/req2"
$RAW req 127.0.0.1 "$HTTP_PORT" --idle 3 <"$W/req2" >"$W/raw2.out"
# Parse leniently: the HEAD response has no body, the GET has data.json's.
mapfile -t statuses < <(grep '^STATUS' "$W/raw2.out")
expect_eq "HEAD then GET on one connection: two responses" 2 "${#statuses[@]}"
expect_eq "the GET after the HEAD gets data.json" "BODY $(stat -c %s "$TT_MEDIA/data.json") $(sha_of "$TT_MEDIA/data.json")" "$(grep '^BODY' "$W/raw2.out" | sed -n 2p)"

# GET with If-None-Match: the ETag -> 304, no body; another ETag -> 200.
fetch "$p" -H "If-None-Match: $etag"
expect_eq "If-None-Match with the ETag -> 304" 304 "$CODE"
expect_eq "304 has no body" 0 "$(stat -c %s "$W/body" 2>/dev/null || echo 0)"
expect_eq "304 repeats the ETag" "$etag" "$(header_of "$W/hdrs" etag)"
fetch "$p" -H 'If-None-Match: "not-the-etag"'
expect_eq "If-None-Match with another ETag -> 200" 200 "$CODE"
fetch "$p" -H "If-None-Match: \"x\", $etag"
expect_eq "If-None-Match with a list holding the ETag -> 304" 304 "$CODE"
fetch "$p" -H "If-None-Match: *"
expect_eq "If-None-Match: * on an existing file -> 304" 304 "$CODE"

# If-Modified-Since: Last-Modified itself -> 304; a date long before -> 200.
fetch "$p" -H "If-Modified-Since: $lm"
expect_eq "If-Modified-Since = Last-Modified -> 304" 304 "$CODE"
fetch "/data.json" -H "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"
expect_eq "If-Modified-Since in 2000 -> 200" 200 "$CODE"
expect_same_file "If-Modified-Since in 2000 -> the whole file" "$TT_MEDIA/data.json" "$W/body"
# If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
fetch "/data.json" -H 'If-None-Match: "nope"' -H "If-Modified-Since: $(date -u -d '+1 day' '+%a, %d %b %Y %H:%M:%S GMT')"
expect_eq "If-None-Match (no match) beats If-Modified-Since -> 200" 200 "$CODE"

# If-Range: matching ETag -> the range; another ETag -> the whole file.
fetch "/data.json" -H "Range: bytes=0-9" -H "If-Range: $(curl -s -I "$(url /data.json)" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')"
expect_eq "If-Range with the ETag -> 206" 206 "$CODE"
expect_eq "If-Range with the ETag -> 10 bytes" 10 "$(stat -c %s "$W/body")"
fetch "/data.json" -H "Range: bytes=0-9" -H 'If-Range: "stale"'
expect_eq "If-Range with a stale ETag -> 200" 200 "$CODE"
expect_same_file "If-Range with a stale ETag -> the whole file" "$TT_MEDIA/data.json" "$W/body"
finish
