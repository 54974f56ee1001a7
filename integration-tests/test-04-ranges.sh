#!/usr/bin/env bash
# Ranges the way players ask: bytes=512-2047, a suffix over the last 16 KiB,
# an open-ended range, a multi-range (multipart/byteranges, every part
# checked), a 416 past the end; and no gzip on a range.
source "$(dirname "$0")/lib.sh"
start_pair

f="my clip.mp4"
orig="$TT_MEDIA/$f"
p="/$(q "$f")"
size=$(stat -c %s "$orig")

slice() { # START LEN -> $W/want
    tail -c +"$(($1 + 1))" "$orig" | head -c "$2" >"$W/want"
}

# bytes=512-2047
fetch "$p" -H "Range: bytes=512-2047"
expect_eq "bytes=512-2047 status" 206 "$CODE"
expect_eq "bytes=512-2047 Content-Range" "bytes 512-2047/$size" "$(header_of "$W/hdrs" content-range)"
expect_eq "bytes=512-2047 Content-Length" 1536 "$(header_of "$W/hdrs" content-length)"
slice 512 1536
expect_same_file "bytes=512-2047 body is the file's bytes 512..2047" "$W/want" "$W/body"

# A suffix range: the last 16 KiB.
fetch "$p" -H "Range: bytes=-16384"
expect_eq "bytes=-16384 status" 206 "$CODE"
expect_eq "bytes=-16384 Content-Range" "bytes $((size - 16384))-$((size - 1))/$size" "$(header_of "$W/hdrs" content-range)"
slice $((size - 16384)) 16384
expect_same_file "bytes=-16384 body is the last 16 KiB" "$W/want" "$W/body"

# Open-ended, as a player seeking near the end.
start=$((size - 100000))
fetch "$p" -H "Range: bytes=$start-"
expect_eq "bytes=$start- status" 206 "$CODE"
expect_eq "bytes=$start- Content-Range" "bytes $start-$((size - 1))/$size" "$(header_of "$W/hdrs" content-range)"
slice "$start" 100000
expect_same_file "bytes=$start- body" "$W/want" "$W/body"

# A range whose end is past the file: clipped to the end (RFC 9110 14.1.2).
fetch "/data.json" -H "Range: bytes=10-999999"
dsize=$(stat -c %s "$TT_MEDIA/data.json")
expect_eq "range past the end status" 206 "$CODE"
expect_eq "range past the end Content-Range is clipped" "bytes 10-$((dsize - 1))/$dsize" "$(header_of "$W/hdrs" content-range)"

# Multi-range: three parts, one a suffix.
fetch "$p" -H "Range: bytes=0-99,4096-8191,-500"
expect_eq "multi-range status" 206 "$CODE"
ctype=$(header_of "$W/hdrs" content-type)
expect_match "multi-range Content-Type" '^multipart/byteranges; *boundary=' "$ctype"
if $RAW multipart "$W/body" "$ctype" "$orig" 0-99 4096-8191 -500 >"$W/mp.out" 2>&1; then
    good "multipart/byteranges: 3 parts, each with the right Content-Range and bytes"
else
    bad "multipart/byteranges body wrong: $(tr '\n' ';' <"$W/mp.out")"
fi
cl=$(header_of "$W/hdrs" content-length)
if [ -n "$cl" ]; then expect_eq "multi-range Content-Length matches the body" "$(stat -c %s "$W/body")" "$cl"; fi

# 416: a range that starts past the end.
fetch "$p" -H "Range: bytes=$size-"
expect_eq "bytes=$size- (past the end) status" 416 "$CODE"
expect_eq "416 Content-Range" "bytes */$size" "$(header_of "$W/hdrs" content-range)"
fetch "$p" -H "Range: bytes=$((size + 10))-$((size + 20))"
expect_eq "range wholly past the end -> 416" 416 "$CODE"

# A malformed Range: ignored (200, the whole file) or refused (416); never
# a 206 or an error of another kind.
fetch "/data.json" -H "Range: bytes=abc"
expect_match "malformed Range -> 200 or 416" '^(200|416)$' "$CODE"
if [ "$CODE" = 200 ]; then expect_same_file "malformed Range ignored -> whole file" "$TT_MEDIA/data.json" "$W/body"; fi

# No gzip on a range, even when the client accepts it.
fetch "/notes.txt" -H "Range: bytes=100-1099" -H "Accept-Encoding: gzip"
expect_eq "range of notes.txt with Accept-Encoding: gzip status" 206 "$CODE"
expect_eq "no Content-Encoding on a range" "" "$(header_of "$W/hdrs" content-encoding)"
tail -c +101 "$TT_MEDIA/notes.txt" | head -c 1000 >"$W/want"
expect_same_file "range of notes.txt is the raw bytes 100..1099" "$W/want" "$W/body"

# A range deep inside the 80 MiB file (offsets past 2^26, seek correctness).
big=$TT_MEDIA/big-random.bin
bsize=$(stat -c %s "$big")
off=$((bsize - 5000000))
fetch /big-random.bin -H "Range: bytes=$off-$((off + 65535))"
expect_eq "deep range in big-random.bin status" 206 "$CODE"
tail -c +"$((off + 1))" "$big" | head -c 65536 >"$W/want"
expect_same_file "deep range in big-random.bin" "$W/want" "$W/body"
finish
