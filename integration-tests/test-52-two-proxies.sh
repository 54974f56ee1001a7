#!/usr/bin/env bash
# One c, two p (c --proxy given twice): c holds a tunnel to each, both p
# serve the name, c's admin pages show one tunnel per p; kill -9 of one p
# leaves the other serving, c's page says which one is down and why; the p
# started again gets its tunnel back on its own.
source "$(dirname "$0")/lib.sh"

read -r HTTP2 TUN2 CADMIN < <(free_ports 3)
pick_ports
start_p p1 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media
P1_HTTP=$HTTP_PORT P1_TUN=$TUN_PORT
HTTP_PORT=$HTTP2 TUN_PORT=$TUN2 start_p p2 --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" \
    --default media
start_c c media "$TT_MEDIA" --proxy "127.0.0.1:$TUN2" --admin-listen "127.0.0.1:$CADMIN"
wait_c_up c 2 || die "c did not bring up two tunnels"
expect_true "p1 has c's tunnel" log_has "$W/p1.log" "tunnel up name=media"
expect_true "p2 has c's tunnel" log_has "$W/p2.log" "tunnel up name=media"
expect_eq "GET through p1" 200 "$(status_of "http://127.0.0.1:$P1_HTTP/photo.jpg")"
expect_eq "GET through p2" 200 "$(status_of "http://127.0.0.1:$HTTP2/photo.jpg")"

tunnels() { curl -s "http://127.0.0.1:$CADMIN/api/tunnels" >"$W/t.json"; $PY - "$W/t.json" "$@" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(f'{t["proxy"]}={t["state"]}' for t in d["tunnels"] if t["kind"] == "tunnel"))
PYEOF
}
expect_eq "c's /api/tunnels: one tunnel up to each p" \
    "127.0.0.1:$P1_TUN=up 127.0.0.1:$TUN2=up" "$(tunnels)"

kill -9 "$(pid_of p1)"
wait_until 50 0.1 log_has "$W/c.log" "tunnel down \(tunnel 1\)" || bad "c did not notice p1's end"
expect_eq "p2 still serves with p1 gone" 200 "$(status_of "http://127.0.0.1:$HTTP2/photo.jpg")"
expect_match "c's /api/tunnels: p1's tunnel not up, p2's up" \
    "^127\.0\.0\.1:$P1_TUN=(waiting|connecting|resolving|tls|sending|receiving) 127\.0\.0\.1:$TUN2=up$" "$(tunnels)"
expect_eq "c /ready while one tunnel is up" 200 "$(status_of "http://127.0.0.1:$CADMIN/ready")"

HTTP_PORT=$P1_HTTP TUN_PORT=$P1_TUN start_p p1b --cert "$TT_CERT" --key "$TT_KEY" \
    --tokens "$TT_TOKENS" --default media
wait_until 400 0.1 log_has "$W/p1b.log" "tunnel up name=media" || bad "c did not come back to p1"
expect_eq "GET through the restarted p1" 200 "$(status_of "http://127.0.0.1:$P1_HTTP/photo.jpg")"
finish
