#!/usr/bin/env bash
# p's HTTP/2 client side against a fake c that answers badly.
# A fake c (integration-tests/h2peer.py fakec) dials the real bin/p's tunnel
# listener over TLS, makes the PUT with the shared test token for "media",
# and after the 101 acts as a hostile HTTP/2 server; client requests go
# through p's front with curl.  p runs with the shared cert and tokens and
# --default media.  Cases (see h2peer.py for what each asserts):
#   content-length
#   bad-header
#   huge-headers
#   die-mid-body
#   websocket (an Upgrade before c's first SETTINGS waits for them; an old c: 501)
source "$(dirname "$0")/lib.sh"
pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media 
pid_of p >"$W/p.pid"
$PY "$TT_HERE/h2peer.py" fakec "$W" "$HTTP_PORT" "$TUN_PORT" content-length bad-header huge-headers die-mid-body websocket || FAILS=$((FAILS + 1))
alive "$(pid_of p)" || bad "p is not running any more (see $W/p.log)"
finish
