#!/usr/bin/env bash
# gzip for compressible types when the client asks for it, decoding to the
# original; none without Accept-Encoding, none for video.
source "$(dirname "$0")/lib.sh"
start_pair

orig=$TT_MEDIA/notes.txt
size=$(stat -c %s "$orig")

# The raw compressed body: Content-Encoding gzip, smaller, gunzips to the file.
fetch /notes.txt -H "Accept-Encoding: gzip"
expect_eq "notes.txt with Accept-Encoding: gzip status" 200 "$CODE"
expect_eq "Content-Encoding" gzip "$(header_of "$W/hdrs" content-encoding)"
zsize=$(stat -c %s "$W/body")
if [ "$zsize" -lt $((size / 4)) ]; then good "gzip body is small ($zsize of $size bytes)"; else bad "gzip body is $zsize bytes for a $size-byte repetitive text"; fi
if gzip -dc <"$W/body" >"$W/gunzipped" 2>"$W/gz.err"; then good "the body is valid gzip"; else bad "the body is not valid gzip: $(cat "$W/gz.err")"; fi
expect_same_file "gunzipped body equals notes.txt" "$orig" "$W/gunzipped"
cl=$(header_of "$W/hdrs" content-length)
if [ -n "$cl" ]; then expect_eq "Content-Length (if any) is the compressed size" "$zsize" "$cl"; fi
expect_match "Vary mentions Accept-Encoding" '[Aa]ccept-[Ee]ncoding' "$(header_of "$W/hdrs" vary)"

# curl --compressed: the decoded body equals the original.
fetch /notes.txt --compressed
expect_same_file "curl --compressed notes.txt equals the original" "$orig" "$W/body"
for f in page.html style.css app.js data.json; do
    fetch "/$f" --compressed
    expect_same_file "curl --compressed $f equals the original" "$TT_MEDIA/$f" "$W/body"
done

# Without Accept-Encoding: identity, exact bytes, Content-Length.
fetch /notes.txt
expect_eq "no Accept-Encoding: no Content-Encoding" "" "$(header_of "$W/hdrs" content-encoding)"
expect_eq "no Accept-Encoding: Content-Length" "$size" "$(header_of "$W/hdrs" content-length)"
expect_same_file "no Accept-Encoding: identical bytes" "$orig" "$W/body"

# gzip;q=0 refuses gzip (RFC 9110 12.5.3).
fetch /notes.txt -H "Accept-Encoding: gzip;q=0"
expect_eq "Accept-Encoding: gzip;q=0 -> no gzip" "" "$(header_of "$W/hdrs" content-encoding)"

# Video is not compressible: never gzip.
fetch "/$(q "my clip.mp4")" -H "Accept-Encoding: gzip"
expect_eq "mp4 with Accept-Encoding: gzip -> no Content-Encoding" "" "$(header_of "$W/hdrs" content-encoding)"
expect_same_file "mp4 with Accept-Encoding: gzip is the raw file" "$TT_MEDIA/my clip.mp4" "$W/body"
finish
