#!/usr/bin/env bash
# HTTP/2 conformance of p's h2c front (RFC 9113, RFC 7541), case by case as
# the conformance tool h2spec runs them (h2conf.py: its "generic", "http2"
# and "hpack" groups plus a few more), against p with its default name
# served by a real c.  Every case must pass; afterwards p still serves.
source "$(dirname "$0")/lib.sh"

start_pair "$TT_MEDIA"

$PY "$TT_HERE/h2conf.py" --media "$TT_MEDIA" "$HTTP_PORT" >"$W/h2conf.out" 2>&1
rc=$?
sed -n '/^by section/,$p' "$W/h2conf.out"
if [ "$rc" = 0 ]; then
    good "h2conf: $(grep -E '^[0-9]+ cases:' "$W/h2conf.out")"
else
    bad "h2conf failed (rc $rc), full output in $W/h2conf.out"
    grep -E '^(FAIL|Traceback)' "$W/h2conf.out" | head -40
fi

alive "$(pid_of p)" || bad "p is not running any more (see $W/p.log)"
alive "$(pid_of c)" || bad "c is not running any more (see $W/c.log)"
code=$(curl -s --http2-prior-knowledge --max-time 10 -o "$W/photo.after" -w '%{http_code}' "$(url /photo.jpg)")
expect_eq "p still serves h2c after the conformance run" 200 "$code"
expect_same_file "photo.jpg after the run" "$TT_MEDIA/photo.jpg" "$W/photo.after"
finish
