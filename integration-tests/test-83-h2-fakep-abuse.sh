#!/usr/bin/env bash
# c's HTTP/2 server side against a hostile fake p: floods, a shut window, silence.
# A fake p (integration-tests/h2peer.py fakep: a TLS listener with a throwaway
# certificate, c pinned to it) accepts the real bin/c's PUT, checks it field
# by field, answers 101 and then speaks HTTP/2 as the client, frame by frame.
# Each case runs on a fresh c; after it the tunnel is killed and c must still
# run, dial in again with a valid PUT and serve on the new tunnel.
# Cases (see h2peer.py for the RFC 9113 section each one checks):
#   rapid-reset
#   continuation-flood
#   no-window
#   no-ping-answer
source "$(dirname "$0")/lib.sh"
$PY "$TT_HERE/h2peer.py" fakep "$W" rapid-reset continuation-flood no-window no-ping-answer || FAILS=$((FAILS + 1))
finish
