#!/usr/bin/env bash
# Media players and other real clients through p, as a viewer would use them:
#  - ffprobe over HTTP sees, for each video (MP4, MKV, AVI) and the MP3, the
#    same duration and streams as on the local file;
#  - ffmpeg seeks over HTTP (-ss 3, which reads with Range requests: p's
#    access log shows 206) and decodes the same frames, bit for bit
#    (framemd5), as from the local file;
#  - mpv plays from 2 s for 1 s (null video and audio outputs) and exits 0;
#  - over h2c (HTTP/2 prior knowledge on p's client port): curl and Node's
#    built-in http2 client fetch the video whole (sha256) and a range (206).
source "$(dirname "$0")/lib.sh"

for tool in ffmpeg ffprobe mpv curl node; do
    command -v "$tool" >/dev/null || die "$tool is missing: 'make deps' (tools/deps.sh) should have installed it"
done

start_pair

videos=("my clip.mp4" "été/vidéo ünïcode.mkv" "sub/clip.avi")
lines_before() { wc -l <"$W/p.log"; }
log_since() { tail -n +"$(($1 + 1))" "$W/p.log"; } # LINE_COUNT
# p logs a request when it ends; a player may close its connection after p's
# last write: wait (bounded) until PATTERN shows up after line N.
seen_since() { grep -qE -- "$2" <(log_since "$1"); } # N PATTERN (no pipe: SIGPIPE under pipefail)
wait_log() { wait_until 50 0.1 seen_since "$1" "$2"; } # N PATTERN

# ---- ffprobe: same duration and streams over HTTP as on the file
probe() {
    timeout 30 ffprobe -v error -show_entries \
        format=duration:stream=index,codec_type,codec_name,width,height,r_frame_rate,sample_rate,channels \
        -of compact "$1" 2>&1
}
for f in "${videos[@]}" tone.mp3; do
    want=$(probe "$TT_MEDIA/$f")
    seen=$(probe "$(url "/$(q "$f")")")
    expect_eq "ffprobe over HTTP: '$f' has the local file's duration and streams" "$want" "$seen"
done

# ---- ffmpeg: seek over HTTP, decode 1 s, same frames as from the file
for f in "${videos[@]}"; do
    n=$(lines_before)
    timeout 30 ffmpeg -nostdin -v error -ss 3 -i "$TT_MEDIA/$f" -t 1 -f framemd5 - >"$W/local.md5" 2>"$W/local.err"
    rc=0
    timeout 30 ffmpeg -nostdin -v error -ss 3 -i "$(url "/$(q "$f")")" -t 1 -f framemd5 - >"$W/http.md5" 2>"$W/http.err" || rc=$?
    expect_eq "ffmpeg -ss 3 -t 1 over HTTP: '$f' exits 0" 0 "$rc"
    expect_eq "ffmpeg over HTTP: '$f' prints no error" "" "$(head -3 "$W/http.err")"
    nframes=$(grep -cv '^#' "$W/http.md5") || true
    expect_true "ffmpeg over HTTP: '$f' decoded frames after the seek (saw $nframes)" test "$nframes" -ge 25
    if cmp -s "$W/local.md5" "$W/http.md5"; then
        good "ffmpeg over HTTP: '$f' from 3 s decodes to the same frames (framemd5) as the local file"
    else
        bad "ffmpeg over HTTP: '$f' from 3 s decodes to other frames than the local file: $(diff "$W/local.md5" "$W/http.md5" | head -4 | tr '\n' ' ')"
    fi
    pat="access .*path=/$(q "$f" | sed 's/[.]/\\./g') status=206"
    wait_log "$n" "$pat"
    n206=$(log_since "$n" | grep -cE -- "$pat") || true
    expect_true "p's access log shows 206 answers to ffmpeg's ranges of '$f' (saw $n206)" test "$n206" -ge 1
    nbad=$(log_since "$n" | grep -cE 'access .*status=(4|5)[0-9][0-9]') || true
    expect_eq "no 4xx/5xx for ffmpeg reading '$f'" 0 "$nbad"
done

# ---- mpv: start at 2 s, play 1 s, null outputs, exit 0
for f in "my clip.mp4" "été/vidéo ünïcode.mkv"; do
    n=$(lines_before)
    rc=0
    timeout 30 mpv --no-config --ytdl=no \
        --vo=null --ao=null --start=2 --length=1 "$(url "/$(q "$f")")" >"$W/mpv.out" 2>&1 || rc=$?
    expect_eq "mpv --start=2 --length=1 over HTTP: '$f' exits 0" 0 "$rc"
    expect_true "mpv: '$f' opened a video output (VO: line)" grep -q 'VO: \[null\]' "$W/mpv.out"
    expect_true "mpv: '$f' played to the end of its 1 s (End of file)" grep -q 'Exiting... (End of file)' "$W/mpv.out"
    pat="access .*path=/$(q "$f" | sed 's/[.]/\\./g') status=206"
    wait_log "$n" "$pat"
    n206=$(log_since "$n" | grep -cE -- "$pat") || true
    expect_true "p's access log shows 206 answers to mpv's ranges of '$f' (saw $n206)" test "$n206" -ge 1
done

# ---- h2c: curl and Node's http2 client, whole file and a range
clip=$TT_MEDIA/"my clip.mp4"
U=$(url "/$(q "my clip.mp4")")
size=$(stat -c %s "$clip")
code=$(curl -s --http2-prior-knowledge --max-time 30 -o "$W/h2.mp4" -w '%{http_code} %{http_version}' "$U") || true
expect_eq "curl --http2-prior-knowledge GET the clip: status and version" "200 2" "$code"
expect_same_file "the clip over h2c (curl) equals the file" "$clip" "$W/h2.mp4"
code=$(curl -s --http2-prior-knowledge --max-time 30 -r 4000000-4099999 -o "$W/h2.range" -w '%{http_code} %{http_version}' "$U") || true
expect_eq "curl h2c Range 4000000-4099999: 206 over HTTP/2" "206 2" "$code"
dd if="$clip" of="$W/range.want" bs=100000 skip=40 count=1 status=none
expect_same_file "the range's bytes over h2c (curl)" "$W/range.want" "$W/h2.range"

rc=0
timeout 40 node "$TT_HERE/h2get.js" "$U" "$W/node.mp4" >"$W/node.res" 2>&1 || rc=$?
expect_eq "node http2 client: exit (output: $(tr '\n' ' ' <"$W/node.res"))" 0 "$rc"
expect_eq "node http2 client: status" 200 "$(awk -F'\t' '$1 == "status" { print $2 }' "$W/node.res")"
expect_eq "node http2 client: content-length" "$size" "$(awk -F'\t' '$1 == "content-length" { print $2 }' "$W/node.res")"
expect_same_file "the clip over h2c (node http2) equals the file" "$clip" "$W/node.mp4"
rc=0
timeout 40 node "$TT_HERE/h2get.js" "$U" "$W/node.range" bytes=4000000-4099999 >"$W/node-range.res" 2>&1 || rc=$?
expect_eq "node http2 client, range: exit" 0 "$rc"
expect_eq "node http2 client, range: status" 206 "$(awk -F'\t' '$1 == "status" { print $2 }' "$W/node-range.res")"
expect_eq "node http2 client, range: content-range" "bytes 4000000-4099999/$size" \
    "$(awk -F'\t' '$1 == "content-range" { print $2 }' "$W/node-range.res")"
expect_same_file "the range's bytes over h2c (node http2)" "$W/range.want" "$W/node.range"
finish
