#!/usr/bin/env bash
# Makes the sample media the integration tests and the demo serve, once, into
# integration-tests/media/ (git-ignored).  A stamp file records a complete
# run; without it (or with a different recipe version) everything is made
# again from scratch.  Every video and audio file is checked with ffprobe and
# a full decode; a broken one stops the script loudly.
#
# Layout (names with spaces, UTF-8 and characters HTML must escape on purpose):
#   photo.jpg  image.png  tone.mp3  my clip.mp4 (the biggest video, faststart)
#   notes.txt  page.html  style.css  app.js  data.json  tag <b>&amp;.txt
#   big-random.bin (80 MiB of random bytes: memory bounds need a file larger
#                   than the bound)
#   été/vidéo ünïcode.mkv   sub/clip.avi   sub/deeper/index.html
#   sub/deeper/readme.txt
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
media=${MEDIA_DIR:-$here/media}
recipe=4
# The stamp sits beside the folder, not in it, so listings do not show it.
stamp="$media.complete-v$recipe"

if [ -f "$stamp" ]; then
    exit 0
fi

for tool in ffmpeg ffprobe; do
    command -v "$tool" >/dev/null || { echo "make-media: $tool is missing (tools/deps.sh installs it)" >&2; exit 1; }
done

echo "make-media: making sample media in $media"
rm -rf "$media" "$media".complete-v*
tmp="$media.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/sub/deeper" "$tmp/été"
trap 'rm -rf "$tmp"' EXIT

ff() { ffmpeg -nostdin -hide_banner -v error -y "$@"; }

# Images.
ff -f lavfi -i testsrc2=size=800x600:rate=1 -frames:v 1 -q:v 3 "$tmp/photo.jpg"
ff -f lavfi -i testsrc=size=320x240:rate=1 -frames:v 1 "$tmp/image.png"

# Audio.
ff -f lavfi -i sine=frequency=660:sample_rate=44100:duration=6 -c:a libmp3lame -b:a 128k "$tmp/tone.mp3"

# Videos with sound.  Light noise keeps x264 from compressing the test
# pattern to nothing, so the MP4 is a realistic ~8-9 MB.
ff -f lavfi -i testsrc2=size=640x360:rate=25:duration=20 \
   -f lavfi -i sine=frequency=440:sample_rate=44100:duration=20 \
   -vf noise=alls=12:allf=t -c:v libx264 -preset ultrafast -b:v 3300k -maxrate 3300k -bufsize 3300k \
   -pix_fmt yuv420p -c:a aac -b:a 128k -movflags +faststart "$tmp/my clip.mp4"
ff -f lavfi -i testsrc=size=480x270:rate=25:duration=8 \
   -f lavfi -i sine=frequency=550:sample_rate=44100:duration=8 \
   -vf noise=alls=8:allf=t -c:v libx264 -preset ultrafast -b:v 2500k -maxrate 2500k -bufsize 2500k \
   -pix_fmt yuv420p -c:a libvorbis -q:a 3 "$tmp/été/vidéo ünïcode.mkv"
ff -f lavfi -i testsrc=size=640x360:rate=25:duration=8 \
   -f lavfi -i sine=frequency=330:sample_rate=44100:duration=8 \
   -vf noise=alls=6:allf=t -c:v mpeg4 -q:v 4 -c:a libmp3lame -b:a 128k "$tmp/sub/clip.avi"

# Text.  notes.txt is large and repetitive so gzip has something to do.
{
    echo "tether sample notes"
    for i in $(seq 1 3000); do
        echo "line $i: the quick brown fox jumps over the lazy dog; ünïcode été ✓"
    done
} >"$tmp/notes.txt"
cat >"$tmp/page.html" <<'EOF'
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tether sample page</title>
<link rel="stylesheet" href="style.css"><script src="app.js"></script></head>
<body><h1>tether sample page</h1>
<video controls src="my%20clip.mp4" width="640"></video>
<p><img src="photo.jpg" alt="test pattern"></p></body></html>
EOF
cat >"$tmp/style.css" <<'EOF'
body { font-family: sans-serif; margin: 2em; background: #fafafa; }
h1 { color: #234; }
video, img { max-width: 100%; }
EOF
cat >"$tmp/app.js" <<'EOF'
// tether sample script
document.addEventListener("DOMContentLoaded", function () {
    document.title = document.title + " (loaded)";
});
EOF
cat >"$tmp/data.json" <<'EOF'
{"name": "tether", "files": ["photo.jpg", "image.png", "my clip.mp4"], "nested": {"ok": true, "n": 3}}
EOF
echo "a file whose name HTML must escape" >"$tmp/tag <b>&amp;.txt"
cat >"$tmp/sub/deeper/index.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>deeper index</title></head>
<body><p>deeper index.html served for the folder</p></body></html>
EOF
echo "nested readme" >"$tmp/sub/deeper/readme.txt"
head -c $((80 * 1024 * 1024)) /dev/urandom >"$tmp/big-random.bin"

# Check every video and audio file: ffprobe must see a video stream (images
# and videos) and an audio stream (videos and audio), and a full decode must
# be clean.
check() {
    local f=$1 want=$2 streams
    streams=$(ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$f" | sort -u | tr '\n' ' ')
    for t in $want; do
        case " $streams" in
            *" $t "*) ;;
            *) echo "make-media: BROKEN $f: no $t stream (saw: $streams)" >&2; exit 1 ;;
        esac
    done
    if ! ffmpeg -nostdin -v error -xerror -i "$f" -f null - 2>"$tmp/.decode.log" || [ -s "$tmp/.decode.log" ]; then
        echo "make-media: BROKEN $f: decode errors:" >&2
        cat "$tmp/.decode.log" >&2
        exit 1
    fi
}
check "$tmp/photo.jpg" video
check "$tmp/image.png" video
check "$tmp/tone.mp3" audio
check "$tmp/my clip.mp4" "video audio"
check "$tmp/été/vidéo ünïcode.mkv" "video audio"
check "$tmp/sub/clip.avi" "video audio"
rm -f "$tmp/.decode.log"

# faststart: the top-level moov box must come before mdat. (Not `head | grep -q`:
# grep leaving early makes head die of SIGPIPE, and pipefail calls that a miss.)
top_boxes() { # FILE: the top-level ISO BMFF box types, in file order
    /usr/bin/python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    while True:
        head = f.read(8)
        if len(head) < 8:
            break
        size, kind = struct.unpack(">I4s", head)
        if size == 1:
            size = struct.unpack(">Q", f.read(8))[0] - 8
        elif size == 0:
            print(kind.decode("latin-1")); break
        print(kind.decode("latin-1"))
        f.seek(size - 8, 1)
PY
}
if [ "$(top_boxes "$tmp/my clip.mp4" | grep -E '^(moov|mdat)$' | head -c 4)" != moov ]; then
    echo "make-media: BROKEN my clip.mp4: moov is not at the start (faststart)" >&2
    exit 1
fi

mv "$tmp" "$media"
touch "$stamp"
trap - EXIT
echo "make-media: done ($(du -sh "$media" | cut -f1))"
