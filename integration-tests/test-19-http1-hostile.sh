#!/usr/bin/env bash
# Hostile and edge-case HTTP/1.1 clients on p's front, against RFC 9112 (message
# syntax) and RFC 9110 (semantics): smuggling vectors (framing, chunk syntax,
# field syntax), request-target forms, Host, versions, methods, keep-alive,
# Expect, pipelining, HEAD/204/304 framing, header limits, slowloris and a
# half-closed client.  p1 serves the media through c --root; p2 forwards to
# upstream_app.py through c --upstream, so what the origin saw can be checked.
#
# Cases p does not pass yet run only with TT_KNOWN_GAPS=1 (see
# /work/notes/hostile-findings.md); TT_SLOW=1 also waits out the 60 s body
# idle timeout.
source "$(dirname "$0")/lib.sh"

PROBE="$PY $TT_HERE/h1probe.py"
GAPS=${TT_KNOWN_GAPS:-0}

# known_gap WHAT: true when the known-gap cases are to run.
known_gap() {
    if [ "$GAPS" = 1 ]; then return 0; fi
    note "known gap, not checked (TT_KNOWN_GAPS=1 runs it): $1"
    return 1
}

# probe NAME PORT [h1probe flags]: stdin is the request; output in $W/NAME.out
probe() {
    local name=$1 port=$2
    shift 2
    $PROBE "$port" "$@" >"$W/$name.out" 2>&1
}
statuses() { grep '^STATUS' "$W/$1.out" | sed 's/STATUS //' | paste -sd, -; }
ending() { grep '^END' "$W/$1.out" | sed 's/END //'; }
interims() { grep -c '^INTERIM' "$W/$1.out"; }
app_saw() { grep -cF -- "$1" "$W/app.log" || true; }

start_pair
P1=$HTTP_PORT
pick_ports
start_p p2 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
rm -f "$W/app.port"
$PY "$TT_HERE/upstream_app.py" "$W/app.port" 2>>"$W/app.log" &
track "$!" app
wait_until 100 0.1 test -s "$W/app.port" || die "the app did not start"
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
    --fingerprint "$TT_FPR" --upstream "http://127.0.0.1:$(cat "$W/app.port")" >>"$W/c2.out" 2>>"$W/c2.log" &
track "$!" c2
wait_c_up c2 || die "c2 (upstream) did not come up"
P2=$HTTP_PORT
HTTP_PORT=$P1
wait_until 100 0.1 is_status 200 "http://127.0.0.1:$P2/hello" || die "GET /hello through p2 did not answer 200"

# ============================================================ framing / smuggling

# RFC 9112 §6.3 (3): Transfer-Encoding with Content-Length (either order) -> 400, close.
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n' | probe tecl "$P2"
expect_eq "TE then CL: one 400 (RFC 9112 §6.3)" "400" "$(statuses tecl)"
expect_eq "TE then CL: closed" eof "$(ending tecl)"

# RFC 9112 §6.1: chunked must not be applied twice; must be the final coding.
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n' | probe tecc "$P2"
expect_eq "TE: chunked, chunked -> 400 (RFC 9112 §6.1)" "400" "$(statuses tecc)"
expect_eq "... closed" eof "$(ending tecc)"
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n' | probe tecg "$P2"
expect_eq "TE: chunked, gzip (chunked not last) -> 400 (RFC 9112 §6.3)" "400" "$(statuses tecg)"
expect_eq "... closed" eof "$(ending tecg)"

# RFC 9112 §6.3 (4): TE present in a request and chunked not final -> 400 and
# close; the origin must never see such a request.
for te in gzip identity; do
    printf 'POST /te-only-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n0\r\n\r\n' "$te" "$te" | probe "te-$te" "$P2"
    expect_eq "TE: $te: connection closed" eof "$(ending "te-$te")"
    expect_eq "TE: $te -> 400 (RFC 9112 §6.3)" "400" "$(statuses "te-$te")"
    sleep 0.3
    expect_eq "TE: $te never reached the origin" 0 "$(app_saw "/te-only-$te")"
done

# RFC 9112 §6.1: a transfer coding p does not understand (gzip before chunked)
# SHOULD get 501; forwarding it would hand the origin gzip bytes as identity.
printf 'POST /te-gzip-chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n' | probe tegc "$P2"
expect_eq "TE: gzip, chunked -> 501 (RFC 9112 §6.1)" "501" "$(statuses tegc)"
expect_eq "... closed" eof "$(ending tegc)"
expect_eq "... never reached the origin" 0 "$(app_saw /te-gzip-chunked)"
# ... also when the codings come in two fields.
printf 'POST /te-gzip-chunked2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' | probe tegc2 "$P2"
expect_eq "TE: gzip / TE: chunked (two fields) -> 501 (RFC 9112 §6.1)" "501 eof" "$(statuses tegc2) $(ending tegc2)"

# RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 -> faulty framing, close after.
printf 'POST /echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /hello HTTP/1.0\r\n\r\n' | probe te10 "$P2"
expect_eq "TE in HTTP/1.0: at most one response" 1 "$(grep -c '^RESPONSE' "$W/te10.out")"
expect_eq "TE in HTTP/1.0: closed after it" eof "$(ending te10)"
# ... also when the client asks for keep-alive (an HTTP/1.0 hop before p
# would have read no body, and the next request from a different byte).
printf 'GET /notes.txt HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /data.json HTTP/1.0\r\nHost: a\r\n\r\n' | probe te10ka "$P2"
expect_eq "TE in HTTP/1.0 with keep-alive: one response, then closed" "1 eof" "$(grep -c '^RESPONSE' "$W/te10ka.out") $(ending te10ka)"

# RFC 9112 §5.2: obs-fold is refused with 400 (p does not unfold it), also
# inside Transfer-Encoding (where an unfolding hop and a refusing one would
# frame the body differently) and when the fold arrives in a later read.
printf 'GET /headers HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\nConnection: close\r\n\r\n' >"$W/fold.req"
probe fold "$P2" <"$W/fold.req"
expect_eq "obs-fold -> 400 (RFC 9112 §5.2)" "400" "$(statuses fold)"
probe foldsplit "$P2" --idle 2 --split 43 <"$W/fold.req"
expect_eq "obs-fold split before the fold's SP -> 400" "400" "$(statuses foldsplit)"
printf 'POST /fold-te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' | probe foldte "$P2"
expect_eq "obs-fold inside Transfer-Encoding -> 400, closed" "400 eof" "$(statuses foldte) $(ending foldte)"
expect_eq "... never reached the origin" 0 "$(app_saw /fold-te)"

# RFC 9112 §7.1, §2.2: the last chunk's trailer section and the empty line
# that ends the message are CRLF lines; p refuses a bare LF there as it does
# everywhere else (a hop that reads LF differently would start the next
# request elsewhere).
printf 'POST /lf-end HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n' | probe lfend "$P2"
expect_eq "0 CRLF LF at the end of a chunked body -> 400 only" "400" "$(statuses lfend)"
expect_eq "... closed" eof "$(ending lfend)"
printf 'POST /lf-trailer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\n\r\n' | probe lftrl "$P2"
expect_eq "a trailer line ended by a bare LF -> 400" "400" "$(statuses lftrl)"
# A proper trailer section still works, and the next request after it too,
# also when the section comes a byte at a time.
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$W/trlok.req"
probe trlok "$P2" <"$W/trlok.req"
expect_eq "chunked with a trailer, then a pipelined GET: both answered" "200,200" "$(statuses trlok)"
probe trlok2 "$P2" --idle 2 --split 82 <"$W/trlok.req"
expect_eq "... with the trailer section split across reads" "200,200" "$(statuses trlok2)"

# Fields with '_' in their names are dropped (as nginx does), on both
# fronts: a CGI/WSGI app would read them as the '-' ones.
printf 'GET /headers HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nTransfer_Encoding: chunked\r\nX-Kept: 1\r\nConnection: close\r\n\r\n' | probe under "$P2"
expect_eq "underscore fields: 200" 200 "$(statuses under)"
expect_eq "... X_Forwarded_For and Transfer_Encoding never reach the app" 0 "$(grep -ciE 'x_forwarded_for|transfer_encoding|6\.6\.6\.6' "$W/under.out")"
expect_eq "... the other fields do" 1 "$(grep -c 'x-kept: 1' "$W/under.out")"
curl -s --http2-prior-knowledge --max-time 10 -H 'x_forwarded_for: 6.6.6.6' -H 'x-kept: 1' -o "$W/under2.body" "http://127.0.0.1:$P2/headers"
expect_eq "... nor over h2c" "0 1" "$(grep -ciE 'x_forwarded_for|6\.6\.6\.6' "$W/under2.body") $(grep -c 'x-kept: 1' "$W/under2.body")"

# RFC 9113 §3.1 retired the h2c upgrade and RFC 9110 §7.8 lets a server
# ignore Upgrade: the GET is answered as HTTP/1.1, and a request pipelined
# behind it too.
printf 'GET /data.json HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | probe h2cup "$P1"
expect_eq "Upgrade: h2c ignored: both pipelined requests answered" "200,200" "$(statuses h2cup)"
expect_eq "... no 101 among them" 0 "$(grep -c '^STATUS 101' "$W/h2cup.out")"

# RFC 9112 §5.1: no whitespace between field name and colon -> 400.
printf 'GET /data.json HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n' | probe wscolon "$P1"
expect_eq "tab before the colon -> 400 (RFC 9112 §5.1)" "400" "$(statuses wscolon)"
# RFC 9112 §2.2: whitespace before the first field line -> reject (400).
printf 'GET /data.json HTTP/1.1\r\n X-A: b\r\nHost: a\r\n\r\n' | probe wsfirst "$P1"
expect_eq "whitespace before the first field -> 400 (RFC 9112 §2.2)" "400" "$(statuses wsfirst)"
# RFC 9112 §2.2: a bare LF MAY be accepted; p refuses it (safe: no ambiguity).
printf 'GET /data.json HTTP/1.1\nHost: a\n\n' | probe barelf "$P1"
expect_eq "bare LF line endings -> 400 (RFC 9112 §2.2 allows refusing)" "400" "$(statuses barelf)"
# RFC 9112 §2.2 bare CR, RFC 9110 §5.5 NUL/CTL in values: rejected.
for v in 'a\rb' 'a\000b' 'a\001b' 'a\177b'; do
    # shellcheck disable=SC2059 # the escapes in $v are meant to be expanded
    printf "GET /data.json HTTP/1.1\r\nHost: a\r\nX-V: $v\r\n\r\n" | probe ctl "$P1"
    expect_eq "field value with $v -> 400 (RFC 9110 §5.5, RFC 9112 §2.2)" "400" "$(statuses ctl)"
done

# RFC 9112 §7.1: chunk-size is hex; a size that overflows or is not hex is a
# framing error: 400 and close, and nothing after it is taken as a request.
for sz in FFFFFFFFFFFFFFFFF -5 0x5; do
    printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\nhello\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n' "$sz" | probe chunk "$P2"
    expect_eq "chunk size $sz: no response is a 200" "" "$(statuses chunk | tr ',' '\n' | grep -x 200)"
    expect_eq "chunk size $sz: closed" eof "$(ending chunk)"
    expect_eq "chunk size $sz -> 400 (RFC 9112 §7.1)" "400" "$(statuses chunk)"
done

# RFC 9112 §7.1: chunk-data is followed by CRLF.  llhttp 8 skips two bytes
# there unchecked: "helloXX0\r\n\r\n" then ends the body, and the next
# request is served: a parser discrepancy usable for smuggling.
# p checks those two bytes itself, also when they come in a later read
# (--split sends the bytes after N in a second write, after a pause).
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n' >"$W/nocrlf.req"
probe nocrlf "$P2" --idle 2 <"$W/nocrlf.req"
expect_eq "chunk data + XX instead of CRLF -> 400 only (RFC 9112 §7.1)" "400" "$(statuses nocrlf)"
expect_eq "... closed" eof "$(ending nocrlf)"
# "\rX" after the data: the CR passes, the X must not (cut before, between, after).
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\rX0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n' >"$W/nocrlf2.req"
for at in 68 69 70; do
    probe nocrlf "$P2" --idle 2 --split "$at" <"$W/nocrlf2.req"
    expect_eq "CR then X after chunk data, input cut at byte $at: 400 only, closed" "400 eof" "$(statuses nocrlf) $(ending nocrlf)"
done
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n' >"$W/okchunk.req"
for at in 86 87 88 89; do
    probe okchunk "$P2" --split "$at" <"$W/okchunk.req"
    expect_eq "a good chunked body cut at byte $at: 200, body intact" "200 HEADER x-body-sha256: $(printf helloabc | sha256sum | cut -d' ' -f1)" \
        "$(statuses okchunk) $(grep -i '^HEADER X-Body-Sha256' "$W/okchunk.out")"
done

# RFC 9112 §7.1.1: chunk extensions are ignored, not refused.
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;name=value\r\nhello\r\n0;last=1\r\n\r\n' | probe ext1 "$P2"
expect_eq "chunk extension token=token: served" "200" "$(statuses ext1)"
expect_eq "... the body without the extension" "HEADER x-body-sha256: $(printf hello | sha256sum | cut -d' ' -f1)" "$(grep -i '^HEADER X-Body-Sha256' "$W/ext1.out")"
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;a="quoted value"\r\nhello\r\n0\r\n\r\n' | probe ext2 "$P2"
expect_eq "chunk extension with a quoted-string value: served (RFC 9112 §7.1.1)" "200" "$(statuses ext2)"
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n' | probe ext3 "$P2"
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;a=b;c=d\r\nhello\r\n0\r\n\r\n' | probe ext4 "$P2"
if known_gap "chunk extensions after BWS, or two with token values (llhttp 8.1 refuses them)"; then
    expect_eq "chunk extension after BWS: served (RFC 9112 §7.1.1)" "200" "$(statuses ext3)"
    expect_eq "two chunk extensions ;a=b;c=d: served (RFC 9112 §7.1.1)" "200" "$(statuses ext4)"
fi

# RFC 9110 §6.5.1: framing/routing fields in trailers are never used as such.
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 99\r\nHost: evil\r\n\r\n' | probe trl "$P2"
expect_eq "trailers with Content-Length/Host: served, body intact" "200 HEADER x-body-sha256: $(printf hello | sha256sum | cut -d' ' -f1)" \
    "$(statuses trl) $(grep -i '^HEADER X-Body-Sha256' "$W/trl.out")"
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n' | probe trlte "$P2"
expect_eq "trailer Transfer-Encoding refused -> 400 (RFC 9110 §6.5.1)" "400" "$(statuses trlte)"

# ============================================================ request target and Host

# RFC 9112 §3.2.2: absolute-form is accepted; its authority replaces Host.
printf 'GET http://example.com/headers HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n' | probe abs "$P2"
expect_eq "absolute-form: 200" "200" "$(statuses abs)"
expect_true "absolute-form: the origin saw host example.com" grep -q '^BODYTEXT GET /headers\\nhost: example.com\\n' "$W/abs.out"
# https:// too; p routes by its authority and keeps the front connection's
# own scheme (plaintext here: x-forwarded-proto stays http).
printf 'GET HTTPS://example.com/headers HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n' | probe abss "$P2"
expect_eq "absolute-form https://: 200 (RFC 9112 §3.2.2 MUST accept)" "200" "$(statuses abss)"
expect_true "... the origin saw host example.com and x-forwarded-proto http" \
    grep -q '^BODYTEXT GET /headers\\nhost: example.com\\n.*x-forwarded-proto: http\\n' "$W/abss.out"
printf 'GET http://example.com?abs=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n' | probe absq "$P2"
sleep 0.3
expect_eq "absolute-form http://h?q: the origin saw /?abs=1 (RFC 9112 §3.2.2, RFC 3986 §3.2)" 1 "$(app_saw '"GET /?abs=1 HTTP/1.1"')"
printf 'GET http://example.com HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n' | probe absn "$P2"
expect_eq "absolute-form http://h (no path): served as / ($(statuses absn))" 1 "$(grep -c '^STATUS [0-9]' "$W/absn.out")"
printf 'GET http://u:pw@example.com/headers HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | probe absu "$P2"
expect_eq "absolute-form with userinfo -> 400 (RFC 9110 §4.2.4)" "400" "$(statuses absu)"
for t in 'http:///headers' 'http://a b/headers' 'http://example.com:80x/headers' 'ftp://example.com/x'; do
    printf 'GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' "$t" | probe absbad "$P2"
    expect_eq "target '$t' -> 400 (RFC 9110 §4.2.1, RFC 3986 §3.2)" "400" "$(statuses absbad)"
done

# RFC 9112 §3.2.4: asterisk-form for OPTIONS is forwarded (not refused).
printf 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | probe star "$P1"
expect_match "OPTIONS *: answered by the origin (2xx) (RFC 9112 §3.2.4)" '^2[0-9][0-9]$' "$(statuses star)"
printf 'GET * HTTP/1.1\r\nHost: a\r\n\r\n' | probe stget "$P1"
expect_eq "GET *: 400 (asterisk-form is OPTIONS only, RFC 9112 §3.2.4)" "400" "$(statuses stget)"
# RFC 9110 §9.3.6: CONNECT (authority-form) is refused, connection closed.
printf 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n' | probe connect "$P1"
expect_match "CONNECT: 405/501 (RFC 9112 §3.2.3)" '^(405|501)$' "$(statuses connect)"
expect_eq "CONNECT: closed" eof "$(ending connect)"
printf 'GET  HTTP/1.1\r\nHost: a\r\n\r\n' | probe empty "$P1"
expect_eq "empty request target -> 400 (RFC 9112 §3)" "400" "$(statuses empty)"
{ printf 'GET /'; head -c 20000 /dev/zero | tr '\0' a; printf ' HTTP/1.1\r\nHost: a\r\n\r\n'; } | probe long "$P1"
expect_eq "20000-byte target -> 414 (RFC 9112 §3, RFC 9110 §15.5.15)" "414" "$(statuses long)"
for t in '/../../../../etc/passwd' '/%2e%2e/%2e%2e/etc/passwd' '/data.json%00.txt'; do
    printf 'GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' "$t" | probe trav "$P1"
    expect_match "$t: refused (400/403/404)" '^(400|403|404)$' "$(statuses trav)"
done
printf 'GET /headers#frag HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | probe frag "$P2"
expect_eq "request target with #fragment -> 400 (RFC 9112 §3.2, no fragment in origin-form)" "400" "$(statuses frag)"

# RFC 9112 §3.2: HTTP/1.1 without Host, or with two -> 400.
printf 'GET /data.json HTTP/1.1\r\n\r\n' | probe nohost "$P1"
expect_eq "HTTP/1.1 without Host -> 400 (RFC 9112 §3.2)" "400" "$(statuses nohost)"
printf 'GET /data.json HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' | probe twohost "$P1"
expect_eq "two Host fields -> 400 (RFC 9112 §3.2)" "400" "$(statuses twohost)"
# RFC 9112 §3.2: ... or a Host with an invalid value -> 400.
printf 'GET /headers HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n' | probe badhost "$P2"
printf 'GET /headers HTTP/1.1\r\nHost: evil.example/@x\r\nConnection: close\r\n\r\n' | probe badhost2 "$P2"
expect_eq "Host: 'a b' -> 400 (RFC 9112 §3.2)" "400" "$(statuses badhost)"
expect_eq "Host: 'evil.example/@x' -> 400 (RFC 9112 §3.2)" "400" "$(statuses badhost2)"
for h in 'u@example.com' 'example.com:8o' 'example.com:123456' '[::1' 'ex%zzample'; do
    printf 'GET /headers HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$h" | probe badhost3 "$P2"
    expect_eq "Host: '$h' -> 400 (RFC 9112 §3.2, RFC 3986 §3.2.2)" "400" "$(statuses badhost3)"
done
for h in 'example.com:8080' '[::1]:80' '127.0.0.1' 'ex-am_ple.com.'; do
    printf 'GET /headers HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$h" | probe goodhost "$P2"
    expect_eq "Host: '$h' is valid: served" "200" "$(statuses goodhost)"
done

# ============================================================ versions and methods

printf 'GET /data.json http/1.1\r\nHost: a\r\n\r\n' | probe lcver "$P1"
expect_eq "lowercase http/1.1 -> 400 (HTTP-name is case-sensitive, RFC 9112 §2.3)" "400" "$(statuses lcver)"
printf 'get /data.json HTTP/1.1\r\nHost: a\r\n\r\n' | probe lcget "$P1"
expect_match "'get' is not GET: refused (RFC 9110 §9.1)" '^(400|405|501)$' "$(statuses lcget)"
printf 'GET /data.json HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n' | probe v12 "$P1"
printf 'GET /data.json HTTP/2.0\r\nHost: a\r\n\r\n' | probe v20 "$P1"
printf 'GET /data.json HTTP/3.0\r\nHost: a\r\n\r\n' | probe v30 "$P1"
printf 'FROB /data.json HTTP/1.1\r\nHost: a\r\n\r\n' | probe frob "$P1"
expect_eq "HTTP/1.2 is served as HTTP/1.1 (RFC 9110 §2.5)" "200" "$(statuses v12)"
expect_eq "HTTP/2.0 in an HTTP/1 request line -> 505 (RFC 9110 §15.6.6)" "505" "$(statuses v20)"
expect_eq "HTTP/3.0 -> 505 (RFC 9110 §15.6.6)" "505" "$(statuses v30)"
expect_eq "unknown method FROB -> 501 (RFC 9110 §9.1)" "501" "$(statuses frob)"

# ============================================================ connection management

# RFC 9112 §9.3: HTTP/1.0 + keep-alive stays open (and says so); HTTP/1.0
# without it closes after one response.
printf 'GET /data.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /notes.txt HTTP/1.0\r\n\r\nGET /data.json HTTP/1.0\r\n\r\n' | probe ka10 "$P1"
expect_eq "HTTP/1.0 keep-alive: two responses, then closed" "200,200 eof" "$(statuses ka10) $(ending ka10)"
expect_eq "... the first says connection: keep-alive" "keep-alive" "$(grep -m1 -i '^HEADER connection:' "$W/ka10.out" | sed 's/.*: //')"
# RFC 9112 §9.6: Connection: close (any case, in a list) ends the connection.
printf 'GET /data.json HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: a\r\n\r\n' | probe close "$P1"
expect_eq "Connection: ..., CLOSE: one response, then closed" "200 eof" "$(statuses close) $(ending close)"

# RFC 9110 §10.1.1: 100-continue -> 100, then the final response.
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello' | probe e100 "$P2" --expect100
expect_eq "Expect: 100-continue: one 100 Continue" 1 "$(interims e100)"
expect_eq "... then 200 with the body echoed" "200 HEADER x-body-sha256: $(printf hello | sha256sum | cut -d' ' -f1)" \
    "$(statuses e100) $(grep -i '^HEADER X-Body-Sha256' "$W/e100.out")"
# RFC 9110 §10.1.1 / §15.2: never a 1xx to an HTTP/1.0 client.
printf 'POST /echo HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello' | probe e100v10 "$P2" --expect100 --idle 1
expect_eq "HTTP/1.0 + Expect: 100-continue: no 1xx (RFC 9110 §15.2 MUST NOT)" 0 "$(interims e100v10)"
expect_eq "HTTP/1.0 + Expect: still answered" 200 "$(statuses e100v10)"
# RFC 9110 §10.1.1: another expectation MAY get 417.
printf 'POST /echo-e417 HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello' | probe e417 "$P2"
expect_eq "Expect: teapot -> 417 (RFC 9110 §10.1.1)" "417" "$(statuses e417)"
expect_eq "... never reached the origin" 0 "$(app_saw /echo-e417)"

# RFC 9112 §9.3.2: pipelined requests with a body in the middle, answered in order.
printf 'GET /hello HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /status/204 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | probe pipe "$P2"
expect_eq "pipelined GET, POST+body, GET 204, GET: in order" "200,200,204,200 eof" "$(statuses pipe) $(ending pipe)"
expect_eq "... the POST body reached the origin whole" "HEADER x-body-sha256: $(printf hello | sha256sum | cut -d' ' -f1)" "$(grep -i '^HEADER X-Body-Sha256' "$W/pipe.out")"
expect_eq "... nothing trailing" 0 "$(count_lines "$W/pipe.out" '^TRAILING')"

# RFC 9110 §9.3.1: a body on GET is forwarded as framed, the next request intact.
printf 'GET /data.json HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /notes.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | probe getbody "$P1"
expect_eq "GET with a body, then a GET: two 200s" "200,200 eof" "$(statuses getbody) $(ending getbody)"
# (Not checked through p2: upstream_app.py does not read a GET's body, which
# would then spoil c's pooled connection to it for the next request.)

# RFC 9110 §9.3.2, §15.3.5, §15.4.5: HEAD, 204 and 304 carry no body (even when the
# origin's answer is chunked); the response after them is intact.
printf 'HEAD /chunked HTTP/1.1\r\nHost: a\r\n\r\nHEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | probe nobody "$P2"
expect_eq "HEAD chunked, HEAD, 304, 204, GET: statuses" "200,200,304,204,200 eof" "$(statuses nobody) $(ending nobody)"
expect_eq "... the last body is the app's /hello (no stray bytes before it)" "BODY 19000 $($PY -c 'import hashlib; print(hashlib.sha256(b"hello from the app\n" * 1000).hexdigest())')" \
    "$(grep '^BODY ' "$W/nobody.out" | tail -1)"
expect_eq "... 204 and 304 without Transfer-Encoding" 0 "$(sed -n '/^STATUS 30[4]/,/^BODY/p;/^STATUS 204/,/^BODY/p' "$W/nobody.out" | grep -ci 'transfer-encoding')"

# RFC 6585 §5: too many fields, or one huge field -> 431.
{ printf 'GET /data.json HTTP/1.1\r\nHost: a\r\n'; for i in $(seq 1 200); do printf 'X-%d: a\r\n' "$i"; done; printf '\r\n'; } | probe many "$P1"
expect_eq "200 small fields -> 431 (RFC 6585 §5)" "431 eof" "$(statuses many) $(ending many)"
{ printf 'GET /data.json HTTP/1.1\r\nHost: a\r\nX-Big: '; head -c 70000 /dev/zero | tr '\0' b; printf '\r\n\r\n'; } | probe huge "$P1"
expect_eq "one 70 KB field -> 431 (RFC 6585 §5)" "431 eof" "$(statuses huge) $(ending huge)"

# RFC 9112 §9.6: a client that half-closes after a whole request still reads its answer.
printf 'GET /data.json HTTP/1.1\r\nHost: a\r\n\r\n' | probe half "$P1" --shut
expect_eq "request then shutdown(SHUT_WR): 200, then closed" "200 eof" "$(statuses half) $(ending half)"
printf 'GET /data.json HTTP/1.0\r\n\r\n' | probe half10 "$P1" --shut
expect_eq "... HTTP/1.0 too" "200 eof" "$(statuses half10) $(ending half10)"
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' | probe halfpost "$P2" --shut
expect_eq "... a POST with its whole body: 200, body intact, closed" "200 eof HEADER x-body-sha256: $(printf hello | sha256sum | cut -d' ' -f1)" \
    "$(statuses halfpost) $(ending halfpost) $(grep -i '^HEADER X-Body-Sha256' "$W/halfpost.out")"
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\nhello' | probe halfpart "$P2" --shut
expect_eq "... a POST cut short by the half-close: no response, closed" " eof" "$(statuses halfpart) $(ending halfpart)"

# Slowloris (RFC 9110 §15.5.9): a head trickled byte by byte gets 408 and a close
# after the head timeout (10 s); a silent connection is closed; a stalled body
# does not stop p serving others.
printf 'GET /data.json HTTP/1.1\r\nHost: a\r\nX-Slow: ' | probe slowhead "$P1" --trickle 30 --idle 2 &
sh_pid=$!
: | probe silent "$P1" --idle 30 &
si_pid=$!
printf 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab' | probe slowbody "$P2" --idle "$([ "${TT_SLOW:-0}" = 1 ] && echo 75 || echo 3)" &
sb_pid=$!
sleep 2
fetch /data.json
expect_eq "while slow clients hold connections, p1 serves others" 200 "$CODE"
expect_eq "... and p2 too" 200 "$(status_of "http://127.0.0.1:$P2/hello")"
wait "$sh_pid" "$si_pid" "$sb_pid"
expect_eq "slowloris head: 408, then closed" "408 eof" "$(statuses slowhead) $(ending slowhead)"
expect_eq "silent connection: closed without a response" " eof" "$(statuses silent) $(ending silent)"
if [ "${TT_SLOW:-0}" = 1 ]; then
    expect_eq "stalled body: closed after the idle timeout" eof "$(ending slowbody)"
fi

# ============================================================ still alive
alive "$(pid_of p)" || bad "p1 is not running any more (see $W/p.log)"
alive "$(pid_of p2)" || bad "p2 is not running any more (see $W/p2.log)"
fetch /data.json
expect_eq "after all that, p1 still serves" 200 "$CODE"
expect_eq "after all that, p2 still serves" 200 "$(status_of "http://127.0.0.1:$P2/hello")"
finish
