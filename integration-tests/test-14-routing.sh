#!/usr/bin/env bash
# Routing: by path prefix (--path-prefix /t/: /t/NAME/rest goes to NAME with
# /t/NAME stripped; listings' links work under the prefix), by Host
# (--domain), --default for the rest; 503 with Retry-After (plain text naming
# the name) when no c serves the name, also before any c connected.
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --path-prefix /t/ --domain example.test --default other

# Before any c: 503 + Retry-After, for the default and for a prefix name.
fetch /whoami.txt
expect_eq "no c at all: the default name -> 503" 503 "$CODE"
expect_match "503 Retry-After" '^[0-9]+$' "$(header_of "$W/hdrs" retry-after)"
expect_match "503 is plain text" '^text/plain' "$(header_of "$W/hdrs" content-type)"
expect_true "the 503 body names 'other'" grep -q other "$W/body"
fetch /t/media/whoami.txt
expect_eq "no c: /t/media/ -> 503" 503 "$CODE"
expect_true "that 503 body names 'media'" grep -q media "$W/body"

mkdir -p "$W/other/deep"
echo "other" >"$W/other/whoami.txt"
echo "other deep" >"$W/other/deep/file.txt"
start_c cm media "$TT_MEDIA"
start_c co other "$W/other"
wait_c_up cm || die "c media did not come up"
wait_c_up co || die "c other did not come up"
wait_until 100 0.1 is_status 200 "$(url /t/media/data.json)" || die "/t/media/data.json never answered 200"

# Path prefix: stripped, to the right c.
fetch /t/media/data.json
expect_eq "/t/media/data.json status" 200 "$CODE"
expect_same_file "/t/media/data.json is media's data.json" "$TT_MEDIA/data.json" "$W/body"
fetch /t/other/whoami.txt
expect_eq "/t/other/whoami.txt" "200:other" "$CODE:$(cat "$W/body")"
fetch /t/other/deep/file.txt
expect_eq "/t/other/deep/file.txt" "200:other deep" "$CODE:$(cat "$W/body")"
OUT=$W/clip.mp4 fetch "/t/media/$(q "my clip.mp4")" -H "Range: bytes=512-2047"
expect_eq "a range under the prefix" 206 "$CODE"
expect_eq "its Content-Range" "bytes 512-2047/$(stat -c %s "$TT_MEDIA/my clip.mp4")" "$(header_of "$W/hdrs" content-range)"
# Unknown name under the prefix -> 503 naming it.
fetch /t/nobody/x
expect_eq "/t/nobody/x (no such c) -> 503" 503 "$CODE"
expect_match "its Retry-After" '^[0-9]+$' "$(header_of "$W/hdrs" retry-after)"
expect_true "the 503 body names 'nobody'" grep -q nobody "$W/body"

# A listing under the prefix: links must lead back through the prefix.
fetch /t/media/sub/
expect_eq "/t/media/sub/ listing" 200 "$CODE"
cp "$W/body" "$W/sub.html"
nlinks=0
while IFS=$'\t' read -r href abs; do
    case "$abs" in *clip.avi|*deeper/) ;; *) continue ;; esac
    nlinks=$((nlinks + 1))
    expect_match "listing link '$href' stays under /t/media/" "^http://127\.0\.0\.1:$HTTP_PORT/t/media/sub/" "$abs"
    expect_eq "listing link '$href' works" 200 "$(status_of "$abs")"
done < <($RAW links "$W/sub.html" "$(url /t/media/sub/)")
expect_eq "the listing under the prefix links clip.avi and deeper/" 2 "$nlinks"
fetch /t/media/
expect_eq "/t/media/ root listing" 200 "$CODE"
cp "$W/body" "$W/root.html"
while IFS=$'\t' read -r href abs; do
    case "$href" in *data.json) ;; *) continue ;; esac
    expect_eq "root listing link to data.json under the prefix works" 200 "$(status_of "$abs")"
done < <($RAW links "$W/root.html" "$(url /t/media/)")

# Host routing.
fetch /whoami.txt -H "Host: other.example.test"
expect_eq "Host: other.example.test" "200:other" "$CODE:$(cat "$W/body")"
fetch /data.json -H "Host: media.example.test"
expect_eq "Host: media.example.test" 200 "$CODE"
expect_same_file "Host: media.example.test serves media's file" "$TT_MEDIA/data.json" "$W/body"
fetch /data.json -H "Host: media.example.test:$HTTP_PORT"
expect_eq "Host with a port: media.example.test:PORT" 200 "$CODE"
fetch /data.json -H "Host: MEDIA.Example.Test"
expect_eq "Host is case-insensitive (MEDIA.Example.Test)" 200 "$CODE"
fetch /x -H "Host: ghost.example.test"
expect_eq "Host: ghost.example.test (no such c) -> 503" 503 "$CODE"
expect_true "its body names 'ghost'" grep -q ghost "$W/body"

# --default: anything else goes to "other".
fetch /whoami.txt
expect_eq "no prefix, plain Host -> --default other" "200:other" "$CODE:$(cat "$W/body")"
fetch /whoami.txt -H "Host: www.elsewhere.test"
expect_eq "a foreign Host -> --default other" "200:other" "$CODE:$(cat "$W/body")"
finish
