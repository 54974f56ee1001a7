#!/usr/bin/env bash
# Names are looked up off c's loop (proto/resolve.h):
# - c given `--proxy localhost:PORT` connects and serves (a name, looked up
#   in a helper thread, from /etc/hosts: no network involved);
# - `--upstream http://localhost:PORT` reaches the app, also when the lookup
#   is slow: requests wait for it and then get the app's answer;
# - a lookup that hangs counts as a failed attempt after its timeout (10 s):
#   "tunnel down (tunnel 1): resolving localhost: timed out; next try in
#   X.X s", and c still answers SIGTERM at once (exit 0) while a lookup hangs;
# - an upstream lookup that hangs ends in 502 for the request, not a hang.
#
# How a lookup is made to hang without the network: the test-only variable
# TT_RESOLVE_DELAY_MS (documented in proto/resolve.h) makes each helper
# thread sleep that long before it calls getaddrinfo.  It delays only names,
# never numeric addresses, so `--proxy 127.0.0.1:PORT` is not affected.  It
# stands for a dead DNS server: the thread is stuck and c must not be.
source "$(dirname "$0")/lib.sh"

APP="$PY $TT_HERE/upstream_app.py"

pick_ports
start_p p --cert "$TT_CERT" --key "$TT_KEY" --tokens "$TT_TOKENS" --default media

start_c_as() { # LABEL PROXYHOST [flags...]; environment passes through
    local label=$1 host=$2
    shift 2
    "$TT_C" --proxy "$host:$TUN_PORT" --name media --token-file "$TT_SHARED/token.media" \
        --fingerprint "$TT_FPR" "$@" >>"$W/$label.log" 2>&1 &
    track "$!" "$label"
}

# stops LABEL with SIGTERM and checks that it is gone within 5 s, exit 0.
term_within_5s() {
    local label=$1 pid i rc
    pid=$(pid_of "$label")
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        bad "$label still running 5 s after SIGTERM"
        return
    fi
    wait "$pid"
    rc=$?
    good "$label exited after SIGTERM"
    expect_eq "$label's exit status after SIGTERM" 0 "$rc"
}

# --- 1. --proxy given as a name
start_c_as c localhost --root "$TT_MEDIA"
wait_c_up c || die "c with --proxy localhost:$TUN_PORT did not come up"
expect_true "c logs the name it dials" log_has "$W/c.log" "connecting to localhost:$TUN_PORT \(tunnel 1\)"
fetch /data.json
expect_eq "GET /data.json through p and c (--proxy localhost)" 200 "$CODE"
expect_same_file "... the file's bytes" "$TT_MEDIA/data.json" "$W/body"
term_within_5s c

# --- 2. --upstream by name, with a slow lookup (1.5 s): requests wait for it
rm -f "$W/app.port"
$APP "$W/app.port" 2>>"$W/app.log" &
track "$!" app
wait_until 100 0.1 test -s "$W/app.port" || die "the app did not start"
APP_PORT=$(cat "$W/app.port")
TT_RESOLVE_DELAY_MS=1500 start_c_as cup 127.0.0.1 --upstream "http://localhost:$APP_PORT"
wait_c_up cup || die "c (upstream by name) did not come up"
curl -s -o "$W/hello1" -w '%{http_code}' --max-time 30 "$(url /hello)" >"$W/code1" &
c1=$!
curl -s -o "$W/hello2" -w '%{http_code}' --max-time 30 "$(url /hello)" >"$W/code2" &
c2=$!
wait "$c1" "$c2"
expect_eq "first request while the app's name is looked up" 200 "$(cat "$W/code1")"
expect_eq "second request during the same lookup" 200 "$(cat "$W/code2")"
expect_eq "... the app's body" "$($PY -c 'import sys; sys.stdout.write("hello from the app\n" * 1000)' | sha256sum)" \
    "$(sha256sum <"$W/hello1")"
fetch /hello
expect_eq "a later request (name known now)" 200 "$CODE"
term_within_5s cup

# --- 3. --proxy whose lookup hangs: the timeout is a failed attempt, and
# SIGTERM is answered while the next lookup hangs.
TT_RESOLVE_DELAY_MS=600000 start_c_as chang localhost --root "$TT_MEDIA"
wait_until 50 0.1 log_has "$W/chang.log" "connecting to localhost:$TUN_PORT \(tunnel 1\)" \
    || bad "c (hanging lookup) did not log 'connecting to'"
# SIGTERM during the very first lookup is handled at once, too.
TT_RESOLVE_DELAY_MS=600000 start_c_as cearly localhost --root "$TT_MEDIA"
wait_until 50 0.1 log_has "$W/cearly.log" "connecting to localhost" || bad "c (early) did not log 'connecting to'"
term_within_5s cearly
if wait_until 200 0.1 log_has "$W/chang.log" \
    "tunnel down \(tunnel 1\): resolving localhost: timed out; next try in [0-9]+\.[0-9] s"; then
    good "the hanging lookup is logged as a timed out attempt"
else
    bad "no 'resolving localhost: timed out' line within 20 s"
    tail -5 "$W/chang.log"
fi
# c tries again (a new lookup, hanging too) and still answers SIGTERM.
wait_until 350 0.1 log_has "$W/chang.log" "connecting to localhost" 2 \
    || bad "c did not start a second attempt after the timeout"
term_within_5s chang
expect_true "no 'tunnel up' with a hanging lookup" test "$(count_lines "$W/chang.log" "tunnel up")" = 0

# --- 4. an upstream lookup that hangs ends in 502, c keeps its tunnel
TT_RESOLVE_DELAY_MS=600000 start_c_as cup2 127.0.0.1 --upstream "http://localhost:$APP_PORT"
wait_c_up cup2 || die "c (upstream, hanging lookup) did not come up"
code=$(status_of --max-time 30 "$(url /hello)")
expect_eq "a request whose app name does not resolve gets 502" 502 "$code"
expect_true "c logs the upstream lookup's timeout" log_has "$W/cup2.log" "resolving localhost: timed out"
expect_true "the tunnel stayed up meanwhile" test "$(count_lines "$W/cup2.log" "tunnel down")" = 0
term_within_5s cup2

finish
