#!/usr/bin/env bash
# The root listing through p: every name present, HTML-escaped, and every
# link (spaces, UTF-8, nested folders) leading to the right file or folder;
# a folder with index.html serves that file instead of a listing.
source "$(dirname "$0")/lib.sh"
start_pair

fetch /
expect_eq "GET / status" 200 "$CODE"
expect_match "listing Content-Type is HTML" '^text/html' "$(header_of "$W/hdrs" content-type)"
cp "$W/body" "$W/root.html"

# Names present: plain, with a space, UTF-8 (as UTF-8 text), folders.
for n in "photo.jpg" "image.png" "tone.mp3" "my clip.mp4" "notes.txt" "page.html" "data.json" "sub" "été"; do
    if grep -qF -- "$n" "$W/root.html"; then good "listing shows '$n'"; else bad "listing does not show '$n'"; fi
done
# The name "tag <b>&amp;.txt" must be escaped: &lt;b&gt; and &amp;amp; in the
# text, never a raw <b> tag.
expect_true "listing escapes '<b>' in a name as &lt;b&gt;" grep -qF '&lt;b&gt;' "$W/root.html"
expect_true "listing escapes '&amp;' in a name as &amp;amp;" grep -qF '&amp;amp;' "$W/root.html"
if grep -qF 'tag <b>' "$W/root.html"; then bad "listing contains the raw markup 'tag <b>' (not escaped)"; else good "no raw '<b>' from a file name"; fi

# Sorted: by name (byte order), either all together or folders first.
order=$($RAW links "$W/root.html" "$(url /)" | cut -f1 | $PY -c '
import sys, urllib.parse
names = [urllib.parse.unquote(l.rstrip("\n")) for l in sys.stdin]
names = [n for n in names if n not in ("../", "..", "./", "/") and not n.startswith("?")]
key = lambda n: n.encode()
dirs = [n for n in names if n.endswith("/")]
files = [n for n in names if not n.endswith("/")]
ok = names == sorted(names, key=key) or names == sorted(dirs, key=key) + sorted(files, key=key)
print("sorted" if ok else "unsorted: " + " | ".join(names))')
expect_eq "the listing is sorted by name" sorted "$order"

# Every link resolves to the right thing.
check_links() { # PAGE_URL HTML_FILE
    local page=$1 html=$2 href abs n=0 code rel
    while IFS=$'\t' read -r href abs; do
        case "$abs" in http://127.0.0.1:"$HTTP_PORT"/*) ;; *) continue ;; esac
        n=$((n + 1))
        code=$(curl -s --max-time 30 -o "$W/link.body" -w '%{http_code}' "$abs") || true
        # The local file the link should name.
        rel=$($PY -c 'import sys, urllib.parse; print(urllib.parse.unquote(urllib.parse.urlsplit(sys.argv[1]).path))' "$abs")
        rel=${rel#/}
        if [ "$code" != 200 ]; then
            bad "link '$href' on $page -> $abs answered $code"
        elif [ -f "$TT_MEDIA/$rel" ]; then
            if cmp -s "$TT_MEDIA/$rel" "$W/link.body"; then good "link '$href' -> the file '$rel'"; else bad "link '$href' -> body differs from '$rel'"; fi
        elif [ -d "$TT_MEDIA/$rel" ]; then
            good "link '$href' -> folder '$rel' (200)"
        else
            bad "link '$href' -> '$rel' which is no file or folder under the root"
        fi
    done < <($RAW links "$html" "$page")
    [ "$n" -gt 0 ] || bad "no links found on $page"
}
check_links "$(url /)" "$W/root.html"

fetch "/$(q été)/"
expect_eq "GET /été/ (UTF-8 folder) status" 200 "$CODE"
expect_true "été/ lists the UTF-8 name 'vidéo ünïcode.mkv'" grep -qF "vidéo ünïcode.mkv" "$W/body"
cp "$W/body" "$W/ete.html"
check_links "$(url "/$(q été)/")" "$W/ete.html"

fetch /sub/
expect_eq "GET /sub/ status" 200 "$CODE"
expect_true "sub/ lists clip.avi" grep -qF "clip.avi" "$W/body"
expect_true "sub/ lists deeper" grep -qF "deeper" "$W/body"
cp "$W/body" "$W/sub.html"
check_links "$(url /sub/)" "$W/sub.html"

# A folder without the final slash: either a redirect to the slash or a
# listing whose links still work; curl -L follows, links resolve against the
# final URL.
code=$(curl -s -L --max-time 10 -o "$W/sub2.html" -w '%{http_code} %{url_effective}' "$(url /sub)")
expect_eq "GET /sub (no slash, following redirects) status" 200 "${code%% *}"
check_links "${code#* }" "$W/sub2.html"

# index.html is served for its folder.
fetch /sub/deeper/
expect_eq "GET /sub/deeper/ status" 200 "$CODE"
expect_same_file "sub/deeper/ serves its index.html" "$TT_MEDIA/sub/deeper/index.html" "$W/body"
finish
