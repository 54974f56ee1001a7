#!/usr/bin/env bash
# p --admin-listen: /live and /ready answer 200; /metrics is Prometheus text
# that Debian's python3-prometheus-client parses, with the name's tunnel
# and the requests just made counted; /api/tunnels lists the tunnel with
# its peer; /status renders in headless Chromium (a screenshot, and the
# name in its DOM); an unknown path is 404 and a POST 405; while p drains
# (SIGTERM with a download in flight) /ready says 503 at once, requests
# are still served for --drain-delay, then the drain begins; /live stays 200.
# c --admin-listen: a c with a wrong token is not ready and says 401 was
# why; a good one is ready with its tunnel up in /metrics.
source "$(dirname "$0")/lib.sh"

CHROMIUM=${TT_CHROMIUM:-/usr/bin/chromium}
read -r ADMIN_PORT < <(free_ports 1)
start_pair "$TT_MEDIA" --admin-listen "127.0.0.1:$ADMIN_PORT" --drain-delay 3
admin() { echo "http://127.0.0.1:$ADMIN_PORT$1"; }

expect_eq "/live" 200 "$(status_of "$(admin /live)")"
expect_eq "/ready while serving" 200 "$(status_of "$(admin /ready)")"
expect_eq "an unknown admin path" 404 "$(status_of "$(admin /nope)")"
expect_eq "POST to /metrics" 405 "$(status_of -X POST "$(admin /metrics)")"

for i in 1 2 3; do curl -s -o /dev/null "$(url /photo.jpg)"; done
curl -s -o /dev/null "$(url /no-such-file)"
# A c with a wrong token: one refusal for reason "token" at p; c's own
# admin pages say it is not ready, and why.
read -r CADMIN_BAD CADMIN_OK < <(free_ports 2)
echo "0000000000000000000000000000000000000000000000000000000000000000" >"$W/bad.token"
TOKEN_FILE=$W/bad.token start_c badc media "$TT_MEDIA" --auth-backoff 60 \
    --admin-listen "127.0.0.1:$CADMIN_BAD"
wait_until 100 0.1 log_has "$W/p.log" "tunnel refused .*status=401" || bad "p did not log the wrong token's refusal"
wait_until 50 0.1 is_status 503 "http://127.0.0.1:$CADMIN_BAD/ready"
expect_eq "c (wrong token) /ready" 503 "$(status_of "http://127.0.0.1:$CADMIN_BAD/ready")"
curl -s "http://127.0.0.1:$CADMIN_BAD/api/tunnels" >"$W/c-bad.json"
expect_true "c (wrong token) /api/tunnels: not up, last error names the 401" $PY - "$W/c-bad.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["tunnels"][0]
assert t["state"] != "up" and "401" in t["last_error"] and t["disconnects"] >= 1, d
PYEOF
stop_one badc
# A second, good c with admin pages: ready, its tunnel up.
start_c c2 media "$TT_MEDIA" --admin-listen "127.0.0.1:$CADMIN_OK"
wait_c_up c2 || bad "c2 did not come up"
expect_eq "c /ready with its tunnel up" 200 "$(status_of "http://127.0.0.1:$CADMIN_OK/ready")"
curl -s "http://127.0.0.1:$CADMIN_OK/metrics" >"$W/c-metrics.txt"
expect_true "c's /metrics parses, one tunnel up" $PY - "$W/c-metrics.txt" <<'PYEOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
f = {m.name: m for m in text_string_to_metric_families(open(sys.argv[1]).read())}
assert f["tether_c_tunnels_up"].samples[0].value == 1, f["tether_c_tunnels_up"]
assert f["tether_c_connects"].samples[0].value >= 1
PYEOF
stop_one c2

curl -s "$(admin /metrics)" >"$W/metrics.txt"
$PY - "$W/metrics.txt" >"$W/metrics.res" 2>&1 <<'PYEOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = {f.name: f for f in text_string_to_metric_families(text)}
def value(family, **labels):
    for s in fams[family].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None
print("tunnels_media", value("tether_tunnels", name="media"))
print("requests", value("tether_requests"))
print("ok2xx", value("tether_responses", **{"class": "2xx"}))
print("err4xx", value("tether_responses", **{"class": "4xx"}))
print("to_client", value("tether_body_bytes", direction="to_client"))
print("rss", value("tether_resident_memory_bytes"))
print("refused_token", value("tether_refusals", what="tunnel", reason="token"))
print("dur_count", value("tether_request_duration_seconds", le="+Inf"))
print("families", len(fams))
PYEOF
rc=$?
cat "$W/metrics.res"
expect_eq "prometheus_client parses /metrics" 0 "$rc"
m() { awk -v k="$1" '$1 == k { print $2 }' "$W/metrics.res"; }
expect_eq "tether_tunnels{name=media}" 1.0 "$(m tunnels_media)"
expect_true "requests counted (>= 4)" $PY -c "import sys; sys.exit(0 if float('$(m requests)') >= 4 else 1)"
expect_true "2xx responses counted (>= 3)" $PY -c "import sys; sys.exit(0 if float('$(m ok2xx)') >= 3 else 1)"
expect_true "a 4xx response counted" $PY -c "import sys; sys.exit(0 if float('$(m err4xx)') >= 1 else 1)"
photo=$(stat -c %s "$TT_MEDIA/photo.jpg")
expect_true "bytes to clients counted (>= 3 photos)" $PY -c "import sys; sys.exit(0 if float('$(m to_client)') >= 3 * $photo else 1)"
expect_true "the wrong token counted as a refusal (reason token)" $PY -c "import sys; sys.exit(0 if float('$(m refused_token)') >= 1 else 1)"
expect_true "request durations in the histogram (>= 4)" $PY -c "import sys; sys.exit(0 if float('$(m dur_count)') >= 4 else 1)"
expect_true "RSS reported" $PY -c "import sys; sys.exit(0 if float('$(m rss)') > 1e6 else 1)"

curl -s "$(admin /api/tunnels)" >"$W/tunnels.json"
expect_true "/api/tunnels lists media's tunnel with its peer and uptime" $PY - "$W/tunnels.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
names = {n["name"]: n for n in d["names"]}
t = names["media"]["tunnels"]
assert len(t) == 1 and t[0]["peer"].startswith("127.0.0.1:") and t[0]["up_seconds"] >= 0, d
assert d["draining"] is False and d["tunnels"] == 1, d
PYEOF

if [ -x "$CHROMIUM" ]; then
    timeout 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --user-data-dir="$W/chromium" \
        --window-size=1000,700 --screenshot="$W/status.png" "$(admin /status)" >"$W/chromium.out" 2>&1
    expect_true "Chromium took a screenshot of /status" test -s "$W/status.png"
    timeout 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --user-data-dir="$W/chromium" \
        --dump-dom "$(admin /status)" >"$W/status.dom" 2>>"$W/chromium.out"
    expect_true "the rendered /status names media and its tunnel" grep -q "media.*1 tunnel" "$W/status.dom"
else
    bad "$CHROMIUM is missing: 'make deps' should have installed Debian's chromium"
fi

# Drain: a slow download keeps p draining; /ready turns 503 at once.
curl -s --limit-rate 2M -o /dev/null "$(url /big-random.bin)" &
slow=$!
track "$slow" slow-curl
sleep 0.5
kill -TERM "$(pid_of p)"
wait_until 50 0.1 is_status 503 "$(admin /ready)"
expect_eq "/ready after SIGTERM (--drain-delay)" 503 "$(status_of "$(admin /ready)")"
expect_eq "a request during --drain-delay is still served" 200 "$(status_of "$(url /photo.jpg)")"
expect_eq "/live while draining" 200 "$(status_of "$(admin /live)")"
wait_until 60 0.1 log_has "$W/p.log" "draining \\(grace" || bad "p did not begin its drain after --drain-delay"
expect_eq "/ready while draining" 503 "$(status_of "$(admin /ready)")"
stop_pid "$slow"
finish
