#!/usr/bin/env bash
# Each media file fetched through p is byte-for-byte the original (sha256),
# has the right Content-Type and Content-Length, and decodes cleanly.
source "$(dirname "$0")/lib.sh"
start_pair

check_file() { # RELPATH TYPE-REGEX DECODE(0/1)
    local rel=$1 type=$2 decode=$3 ext out
    ext=${rel##*.}
    out="$W/fetched.$ext"
    OUT=$out fetch "/$(q "$rel")"
    expect_eq "GET $rel status" 200 "$CODE"
    expect_same_file "GET $rel equals the original" "$TT_MEDIA/$rel" "$out"
    expect_match "$rel Content-Type" "$type" "$(header_of "$W/hdrs" content-type)"
    local cl
    cl=$(header_of "$W/hdrs" content-length)
    expect_eq "$rel Content-Length" "$(stat -c %s "$TT_MEDIA/$rel")" "$cl"
    if [ "$decode" = 1 ]; then
        if ffmpeg -nostdin -v error -xerror -i "$out" -f null - >"$W/decode.log" 2>&1 && ! [ -s "$W/decode.log" ]; then
            good "$rel decodes cleanly"
        else
            bad "$rel does not decode cleanly: $(head -3 "$W/decode.log")"
        fi
    fi
}

check_file "photo.jpg" '^image/jpeg' 1
check_file "image.png" '^image/png' 1
check_file "tone.mp3" '^audio/(mpeg|mp3)' 1
check_file "my clip.mp4" '^video/mp4' 1
check_file "été/vidéo ünïcode.mkv" '^video/(x-matroska|webm)' 1
check_file "sub/clip.avi" '^video/(x-msvideo|avi|msvideo)' 1
check_file "notes.txt" '^text/plain' 0
check_file "page.html" '^text/html' 0
check_file "style.css" '^text/css' 0
check_file "app.js" '^(text|application)/(javascript|x-javascript|ecmascript)' 0
check_file "data.json" '^application/json' 0
check_file "sub/deeper/readme.txt" '^text/plain' 0
check_file "tag <b>&amp;.txt" '^text/plain' 0
finish
