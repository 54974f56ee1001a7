#!/usr/bin/env bash
# Interim (1xx) responses end to end (RFC 9110 §15.2, RFC 9113 §8.1): an app
# behind `c --upstream` sends 103 Early Hints (Link: </style.css>;
# rel=preload) and 102 before its 200.  Checked through p: an HTTP/1.1
# client (raw socket, exact bytes, and curl -D) gets each 1xx as a head of
# its own before the 200, with the hop-by-hop fields the app's Connection
# named dropped and the app's unasked 100 Continue not passed on; an
# HTTP/1.0 client gets only the 200; an h2c client gets the 103 as HEADERS
# before the final ones; at most 8 interim heads per request reach a client
# when the app sends 20; with Expect: 100-continue the client sees exactly
# one 100 (p's own).  The same through an h2c app (node's http2,
# additionalHeaders).
source "$(dirname "$0")/lib.sh"

H2="curl -s --http2-prior-knowledge --max-time 30"

start_app() { # LABEL -> APP_PORT
    rm -f "$W/$1.port"
    $PY "$TT_HERE/upstream_app.py" "$W/$1.port" 2>>"$W/$1.log" &
    track "$!" "$1"
    wait_until 100 0.1 test -s "$W/$1.port" || die "the app ($1) did not start"
    APP_PORT=$(cat "$W/$1.port")
}

# raw VERSION PATH: one request on a fresh socket with Connection: close;
# prints each head's status line and fields (CR removed), a "--" line after
# each head, and "BODY <text>" for the body of the final one.
raw() {
    $PY - "$HTTP_PORT" "$1" "$2" <<'EOF'
import socket, sys
port, ver, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(("GET %s HTTP/%s\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % (path, ver)).encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
while data:
    head, sep, data = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    print("\n".join(lines))
    print("--")
    if not lines[0].split(" ")[1].startswith("1"):
        print("BODY " + data.decode("latin-1").rstrip("\n"))
        break
EOF
}

pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media --log-level debug
start_app app
"$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
    --fingerprint "$TT_FPR" --upstream "http://127.0.0.1:$APP_PORT" --log-level debug \
    >>"$W/c.out" 2>>"$W/c.log" &
track "$!" c
wait_c_up c || die "c did not log 'tunnel up'"
wait_until 100 0.1 is_status 200 "$(url /hello)" || die "GET /hello through p did not answer 200"

# --- HTTP/1.1, exact bytes
raw 1.1 /early-hints >"$W/raw11"
expect_eq "HTTP/1.1: the heads in order (103, 102, 200; no 100)" \
    "HTTP/1.1 103 Early Hints|HTTP/1.1 102 Processing|HTTP/1.1 200 OK" \
    "$(grep -E '^HTTP/' "$W/raw11" | paste -sd'|')"
first=$(awk '/^--$/ { exit } { print }' "$W/raw11")
expect_true "the 103 carries the app's Link" grep -qx "link: </style.css>; rel=preload" <<<"$first"
expect_true "... and its X-Hint" grep -qx "x-hint: 1" <<<"$first"
expect_eq "... without the field its Connection named" "" "$(echo "$first" | grep -i '^x-hop')"
expect_eq "... nor Connection itself" "" "$(echo "$first" | grep -i '^connection')"
expect_eq "... nor the Content-Length a 1xx may not carry (RFC 9110 §8.6)" "" "$(echo "$first" | grep -i '^content-length')"
expect_eq "the 200's body" "BODY early hints done" "$(grep '^BODY' "$W/raw11")"

# --- HTTP/1.1 with curl
fetch /early-hints --http1.1
expect_eq "curl --http1.1: 200" 200 "$CODE"
expect_eq "curl's dump: 103, 102, 200" "HTTP/1.1 103 Early Hints|HTTP/1.1 102 Processing|HTTP/1.1 200 OK" \
    "$(tr -d '\r' <"$W/hdrs" | grep -E '^HTTP/' | sed 's/ *$//' | paste -sd'|')"
expect_match "curl's dump: the Link of the 103" "link: </style.css>; rel=preload" "$(tr -d '\r' <"$W/hdrs")"
expect_eq "curl: the body" "early hints done" "$(cat "$W/body")"

# --- HTTP/1.0: no 1xx at all (RFC 9110 §15.2)
raw 1.0 /early-hints >"$W/raw10"
expect_eq "HTTP/1.0: only the final head" "HTTP/1.1 200 OK" "$(grep -E '^HTTP/' "$W/raw10" | paste -sd'|')"
expect_eq "HTTP/1.0: the body" "BODY early hints done" "$(grep '^BODY' "$W/raw10")"

# --- h2c front
$H2 -D "$W/h2hdrs" -o "$W/h2body" "$(url /early-hints)"
expect_eq "h2c: 103, 102, 200" "HTTP/2 103|HTTP/2 102|HTTP/2 200" \
    "$(tr -d '\r' <"$W/h2hdrs" | grep -E '^HTTP/' | sed 's/ *$//' | paste -sd'|')"
expect_match "h2c: the Link of the 103" "link: </style.css>; rel=preload" "$(tr -d '\r' <"$W/h2hdrs")"
expect_eq "h2c: the body" "early hints done" "$(cat "$W/h2body")"

# --- a flood of 1xx: at most 8 reach the client, then the 200
raw 1.1 "/early-hints?n=20" >"$W/flood11"
expect_eq "HTTP/1.1: 8 of the app's 20 interim heads" 8 "$(grep -c '^HTTP/1.1 1' "$W/flood11")"
expect_eq "... then the 200 and its body" "BODY early hints done" "$(grep '^BODY' "$W/flood11")"
$H2 -D "$W/flood2" -o /dev/null "$(url '/early-hints?n=20')"
expect_eq "h2c: 8 of the app's 20 interim heads" 8 "$(tr -d '\r' <"$W/flood2" | grep -c '^HTTP/2 1')"
expect_eq "... then the 200" "HTTP/2 200" "$(tr -d '\r' <"$W/flood2" | grep -E '^HTTP/' | sed 's/ *$//' | tail -1)"
expect_true "c says it dropped the rest (debug)" log_has "$W/c.log" "from the app dropped \(more than 8 1xx\)"

# --- Expect: 100-continue: one 100, p's own; the app's is not passed on
head -c 5000 /dev/urandom >"$W/small.bin"
fetch /early-hints --http1.1 -X GET --data-binary "@$W/small.bin" -H "Expect: 100-continue"
expect_eq "Expect: 200" 200 "$CODE"
expect_eq "Expect: exactly one 100 Continue, then 103, 102, 200" \
    "HTTP/1.1 100 Continue|HTTP/1.1 103 Early Hints|HTTP/1.1 102 Processing|HTTP/1.1 200 OK" \
    "$(tr -d '\r' <"$W/hdrs" | grep -E '^HTTP/' | sed 's/ *$//' | paste -sd'|')"

# --- an h2c app: its 1xx HEADERS go through c the same way
if command -v node >/dev/null; then
    cat >"$W/h2app.js" <<'EOF'
'use strict';
const http2 = require('http2');
const fs = require('fs');
const server = http2.createServer();
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  const n = headers[':path'] === '/flood' ? 20 : 1;
  for (let i = 0; i < n; i++)
    stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload', 'x-hint': String(i + 1) });
  stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 12 });
  stream.end('h2 app done\n');
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[2] + '.tmp', String(server.address().port));
  fs.renameSync(process.argv[2] + '.tmp', process.argv[2]);
});
EOF
    node "$W/h2app.js" "$W/h2app.port" 2>>"$W/h2app.log" &
    track "$!" h2app
    wait_until 100 0.1 test -s "$W/h2app.port" || die "the h2 app did not start"
    stop_one c
    "$TT_C" --proxy "127.0.0.1:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
        --fingerprint "$TT_FPR" --upstream "h2c://127.0.0.1:$(cat "$W/h2app.port")" --log-level debug \
        >>"$W/c2.out" 2>>"$W/c2.log" &
    track "$!" c2
    wait_c_up c2 || die "c2 did not log 'tunnel up'"
    wait_until 100 0.1 is_status 200 "$(url /x)" || die "the h2c app does not answer through p"
    raw 1.1 /x >"$W/rawh2app"
    expect_eq "h2c app, HTTP/1.1 client: 103 then 200" "HTTP/1.1 103 Early Hints|HTTP/1.1 200 OK" \
        "$(grep -E '^HTTP/' "$W/rawh2app" | paste -sd'|')"
    expect_true "... with the Link" grep -qx "link: </style.css>; rel=preload" "$W/rawh2app"
    expect_eq "... and the body" "BODY h2 app done" "$(grep '^BODY' "$W/rawh2app")"
    $H2 -D "$W/h2h2" -o /dev/null "$(url /x)"
    expect_eq "h2c app, h2c client: 103 then 200" "HTTP/2 103|HTTP/2 200" \
        "$(tr -d '\r' <"$W/h2h2" | grep -E '^HTTP/' | sed 's/ *$//' | paste -sd'|')"
    raw 1.1 /flood >"$W/rawh2flood"
    expect_eq "h2c app sending 20: 8 reach the client" 8 "$(grep -c '^HTTP/1.1 1' "$W/rawh2flood")"
    raw 1.0 /x >"$W/rawh2app10"
    expect_eq "h2c app, HTTP/1.0 client: only the 200" "HTTP/1.1 200 OK" \
        "$(grep -E '^HTTP/' "$W/rawh2app10" | paste -sd'|')"
else
    note "node is missing: the h2c app part is skipped (tools/deps.sh installs it)"
fi

expect_eq "p logged no error" "" "$(grep -E ' p error ' "$W/p.log" | head -3)"
finish
