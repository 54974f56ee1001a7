#!/usr/bin/env bash
# A real browser through p: Debian's headless Chromium, driven over the
# DevTools protocol by browser.js (Node's standard library only, CDP over
# --remote-debugging-pipe; no npm package, no browser download).
#  (a) the root listing renders (screenshot listing.png), every link on it
#      answers 200 to the browser's fetch, and real mouse clicks on links
#      (a folder, a folder with index.html, a UTF-8 folder, a name HTML must
#      escape, page.html with its CSS, script and image) land where they should;
#  (b) a page served from a temporary c root with <video src="my clip.mp4">
#      (muted autoplay): the video loads, plays past 1.5 s, a seek to 12 s
#      completes and playback goes on past 13 s; a second player
#      (preload=metadata, its own URL so nothing is cached) seeks to 15 s
#      before playing, which makes Chromium ask for ranges past the start;
#      the JPEG and PNG <img> decode.  The browser's Range requests (seen
#      through CDP's Network events) get 206, and p's access log shows them.
source "$(dirname "$0")/lib.sh"

CHROMIUM=${TT_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || die "$CHROMIUM is missing: 'make deps' (tools/deps.sh) should have installed Debian's chromium"
command -v node >/dev/null || die "node is missing: 'make deps' (tools/deps.sh) should have installed nodejs"

# A test-only root: the clip, the two images and a page that uses them.
root=$W/root
mkdir -p "$root"
cp "$TT_MEDIA/my clip.mp4" "$TT_MEDIA/photo.jpg" "$TT_MEDIA/image.png" "$root/"
cat >"$root/player.html" <<'EOF'
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tether player test</title></head>
<body>
<video src="my clip.mp4" muted autoplay playsinline preload="auto" width="480"></video>
<video id="seeker" src="my clip.mp4?seeker" muted playsinline preload="metadata" width="240"></video>
<p><img id="jpeg" src="photo.jpg" width="200" alt="jpeg"> <img id="png" src="image.png" width="160" alt="png"></p>
</body></html>
EOF

start_pair

# Runs browser.js MODE URL, bounded, with its observations in $W/MODE.res.
browse() { # MODE URL
    local mode=$1 rc=0
    mkdir -p "$W/$mode"
    TT_PIDS_FILE=$W/pids TT_BROWSER_DEADLINE=25 TT_CHROMIUM=$CHROMIUM \
        timeout -k 5 30 node "$TT_HERE/browser.js" "$mode" "$2" "$W/$mode" >"$W/$mode.res" 2>"$W/$mode.err" || rc=$?
    [ "$rc" = 0 ] || bad "browser.js $mode exited $rc: $(grep '^error' "$W/$mode.res" | cut -f2) $(tail -3 "$W/$mode.err")"
}
res() { # MODE KEY -> the value browser.js printed for KEY
    awk -F'\t' -v k="$2" '$1 == k { v = $2 } END { print v }' "$W/$1.res"
}

# ---- (a) the listing and its links
browse listing "$(url /)"
expect_eq "listing: browser.js finished" yes "$(res listing "done")"
n=$(res listing links)
expect_true "listing: the browser sees at least 10 links (saw ${n:-none})" test "${n:-0}" -ge 10
expect_eq "listing: every same-origin link answers 200 to the browser" none "$(res listing links_not_200)"
expect_eq "listing: the name 'tag <b>&amp;.txt' renders as text" yes "$(res listing listing_shows_escaped_name)"
expect_eq "listing: no <script> element (nothing injected by a file name)" 0 "$(res listing listing_scripts)"
expect_eq "click 'sub/' -> /sub/" /sub/ "$(res listing click_sub_path)"
expect_eq "click 'deeper/' -> /sub/deeper/" /sub/deeper/ "$(res listing click_deeper_path)"
expect_eq "/sub/deeper/ shows its index.html" "deeper index.html served for the folder" "$(res listing click_deeper_text)"
expect_eq "click 'été/' -> /été/" /été/ "$(res listing click_ete_path)"
expect_eq "/été/ lists 'vidéo ünïcode.mkv'" yes "$(res listing click_ete_has_mkv)"
expect_eq "click 'tag <b>&amp;.txt' -> that file" "/tag <b>&amp;.txt" "$(res listing click_tag_path)"
expect_eq "'tag <b>&amp;.txt' shows its text" "a file whose name HTML must escape" "$(res listing click_tag_text)"
expect_eq "click 'page.html': its script ran" "tether sample page (loaded)" "$(res listing click_page_title)"
expect_eq "page.html: its stylesheet applied (h1 colour #234)" "rgb(34, 51, 68)" "$(res listing click_page_h1_color)"
expect_eq "page.html: its <img> (photo.jpg) decoded" 800 "$(res listing click_page_img_width)"
expect_true "a screenshot of the listing was taken" test -s "$W/listing/listing.png"

# ---- (b) video, seek, images, from the test root
stop_one c
start_c c2 media "$root"
wait_c_up c2 || die "c (test root) did not log 'tunnel up'"
wait_until 100 0.1 is_status 200 "$(url /player.html)" || die "GET /player.html did not answer 200 within 10 s"
before=$(wc -l <"$W/p.log")

browse media "$(url /player.html)"
expect_eq "media: browser.js finished" yes "$(res media "done")"
expect_match "media: Chromium can play H.264/AAC in MP4" '^(probably|maybe)$' "$(res media can_play_mp4)"
expect_eq "media: no error while loading, playing or seeking" "" "$(res media video_error)"
expect_eq "media: video.error" none "$(res media video_error_code)"
expect_eq "media: duration (s)" 20.0 "$(res media duration)"
expect_eq "media: video size" 640x360 "$(res media video_size)"
expect_eq "media: muted autoplay plays past 1.5 s" yes "$(res media played_past_1_5s)"
expect_eq "media: a seek to 12 s completes" 12.0 "$(res media seeked_to)"
expect_eq "media: playback goes on past 13 s after the seek" yes "$(res media played_after_seek)"
expect_eq "media: a second player (preload=metadata) seeked to 15 s, then played past 16 s" yes "$(res media seeker_played_from_15s)"
expect_eq "media: the second player had no error" "" "$(res media seeker_error)"
expect_eq "media: the JPEG <img> decodes" 800x600 "$(res media jpeg_size)"
expect_eq "media: the PNG <img> decodes" 320x240 "$(res media png_size)"

# The browser's Range requests, as the browser saw them ("Range=>status")
# and as p logged them (206 answers for the clip).  p logs a request when it
# ends, and the browser may have been stopped mid-body: wait for the line.
reqs=$(res media clip_requests)
note "the browser's requests for the clip: $reqs"
expect_match "the browser asked for the clip with Range and got 206" 'bytes=0-=>206' "$reqs"
expect_match "the seeking player asked for a range past the start and got 206" 'bytes=[1-9][0-9]*-[0-9]*=>206' "$reqs"
media_log() { tail -n +"$((before + 1))" "$W/p.log" >"$W/p.media.log"; }
has_206() { media_log; log_has "$W/p.media.log" 'access .*path=/my%20clip\.mp4 status=206'; }
wait_until 50 0.1 has_206
media_log
n206=$(count_lines "$W/p.media.log" 'access .*path=/my%20clip\.mp4 status=206')
expect_true "p's access log shows 206 answers to the browser's ranges of the clip (saw $n206)" test "$n206" -ge 1
n206=$(count_lines "$W/p.media.log" 'access .*path=/my%20clip\.mp4\?seeker status=206')
expect_true "p's access log shows 206 answers to the seeking player's ranges (saw $n206)" test "$n206" -ge 2
# The browser also asks for /favicon.ico, which is not there: 404 is right.
# 499 is p's word for a request the client gave up (a player that seeks
# cancels the range it no longer needs).  Anything else 4xx/5xx is wrong.
nbad=$(grep -vF 'path=/favicon.ico ' "$W/p.media.log" | grep -vF ' status=499 ' | grep -cE 'access .*status=(4|5)[0-9][0-9]') || true
expect_eq "no other 4xx/5xx in p's access log during playback" 0 "$nbad"
finish
