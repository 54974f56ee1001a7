#!/usr/bin/env bash
# --config FILE for p and c (issue 12 B):
# - the shipped examples (docs/examples/p.conf, c.conf) are accepted by the
#   real binaries, flags overriding what must differ on this machine;
# - a key the file sets is used (p's tokens, c's name, token file, pin and
#   allow-put = yes), a flag given too wins over the file;
# - a bad value or an unknown key stops either program with exit 2 and one
#   line naming the file, the line and the key.
source "$(dirname "$0")/lib.sh"
ex=$TT_REPO/docs/examples
pick_ports

# p on the shipped example: its listeners and state folder overridden.
start_p pex --config "$ex/p.conf" --state-dir "$W/pex-state"
expect_true "p runs on docs/examples/p.conf" alive "$(pid_of pex)"
expect_true "... with the file's log level and its own state folder" test -s "$W/pex-state/tokens"
stop_one pex

# p with a file of its own: tokens, cert, key and default from the file;
# the listen address in the file is wrong and the flag fixes it.
cat >"$W/p.conf" <<EOF
# test p
listen = 127.0.0.1:1
tokens = $TT_TOKENS
cert = $TT_CERT
key = $TT_KEY
default = media
path-prefix = /t/
log-level = debug
EOF
pick_ports
start_p p --config "$W/p.conf"
expect_true "--listen on the command line overrides the file's listen" log_has "$W/p.log" "listening for clients on 127\.0\.0\.1:$HTTP_PORT"
expect_true "the file's log-level is used" log_has "$W/p.log" ' p debug '

# c on the shipped example: proxy, token file, pin and root from flags.
mkdir -p "$W/up"
"$TT_C" --config "$ex/c.conf" --proxy "127.0.0.1:$TUN_PORT" --name media \
    --token-file "$TT_SHARED/token.media" --fingerprint "$TT_FPR" --root "$TT_MEDIA" \
    >"$W/cex.out" 2>"$W/cex.log" &
track "$!" cex
wait_c_up cex || bad "c on docs/examples/c.conf did not come up"
expect_eq "... and serves" 200 "$(status_of "$(url /data.json)")"
stop_one cex

# c with a file of its own: only --proxy on the command line.
cat >"$W/c.conf" <<EOF
name = media
token-file = $TT_SHARED/token.media
fingerprint = $TT_FPR
root = $W/up
allow-put = yes
EOF
"$TT_C" --config "$W/c.conf" --proxy "127.0.0.1:$TUN_PORT" >"$W/c.out" 2>"$W/c.log" &
track "$!" c
wait_c_up c || die "c with its config file did not come up"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -T "$TT_MEDIA/data.json" "$(url /put.json)")
expect_eq "allow-put = yes in the file: PUT makes the file (201)" 201 "$code"
expect_same_file "... with the bytes sent" "$TT_MEDIA/data.json" "$W/up/put.json"
stop_one c

# SIGHUP re-reads the file (issue 12 B): the default route moves to
# 'other' while media's tunnel and a download on it go on; a file that no
# longer parses changes nothing and says why; a listener change is said to
# need a restart.
mkdir -p "$W/other"
echo "the other origin" >"$W/other/who.txt"
start_c cm media "$TT_MEDIA"
start_c co other "$W/other"
wait_c_up cm && wait_c_up co || die "the two origins did not come up"
wait_until 50 0.1 is_status 200 "$(url /data.json)" || die "GET /data.json: $(status_of "$(url /data.json)")"
expect_eq "default = media: /who.txt goes to media (which has none)" 404 "$(status_of "$(url /who.txt)")"
downs=$(count_lines "$W/p.log" 'tunnel down')
curl -s --limit-rate 8M -r 0-33554431 -o "$W/big" "$(url /t/media/big-random.bin)" &
dl=$!
sleep 1
cp "$TT_CERT" "$W/cert2.pem"
sed -i 's/^default = media$/default = other/' "$W/p.conf"
sed -i "s|^cert = .*|cert = $W/cert2.pem|" "$W/p.conf"
kill -HUP "$(pid_of p)"
if wait_until 50 0.1 log_has "$W/p.log" "reloaded --config $W/p.conf"; then good "p reloaded its config file"; else bad "no reload line: $(tail -2 "$W/p.log" | tr '\n' '|')"; fi
expect_eq "... and the default route moved to other" "the other origin" "$(curl -s --max-time 5 "$(url /who.txt)")"
expect_true "... a changed cert is said to need a restart" log_has "$W/p.log" 'reload: cert changed: that takes a restart'
expect_eq "... no tunnel was dropped" "$downs" "$(count_lines "$W/p.log" 'tunnel down')"
echo "ping-timeout = soon" >>"$W/p.conf"
n=$(wc -l <"$W/p.conf")
kill -HUP "$(pid_of p)"
if wait_until 50 0.1 log_has "$W/p.log" "reload failed: --config $W/p.conf:$n: key 'ping-timeout': .*the configuration in use stays"; then
    good "a broken config file: p says where and keeps what it had"
else
    bad "no 'reload failed' line: $(tail -2 "$W/p.log" | tr '\n' '|')"
fi
expect_eq "... the route it had stays" "the other origin" "$(curl -s --max-time 5 "$(url /who.txt)")"
wait "$dl"
expect_eq "a download that began before both reloads ended well" 0 "$?"
head -c 33554432 "$TT_MEDIA/big-random.bin" >"$W/big.want"
expect_same_file "... every byte of its 32 MiB" "$W/big.want" "$W/big"
expect_eq "... p was still sending it after the reloads (its access line comes later)" "reloaded reload access" \
    "$(grep -oE 'reloaded --config|reload failed|access .*big-random\.bin' "$W/p.log" | awk '{ print $1 }' | tr '\n' ' ' | sed 's/ $//')"
rm -f "$W/big" "$W/big.want"

exits2() { # WHAT WANT-REGEX CMD...: exit 2, one line matching WANT
    local what=$1 want=$2 rc
    shift 2
    timeout 10 "$@" >"$W/bad.out" 2>"$W/bad.err"; rc=$?
    if [ "$rc" = 2 ] && [ "$(wc -l <"$W/bad.err")" -eq 1 ] && grep -qE -- "$want" "$W/bad.err"; then
        good "$what: exit 2: $(cat "$W/bad.err")"
    else
        bad "$what: expected exit 2 and one line /$want/, saw exit $rc and: $(head -3 "$W/bad.err" | tr '\n' '|')"
    fi
}
printf '# a comment\n\nlisten = 127.0.0.1:0\nping-interval = -3\n' >"$W/bad1.conf"
exits2 "p: a bad value" "^p: --config $W/bad1.conf:4: key 'ping-interval': .*-3" "$TT_P" --config "$W/bad1.conf"
printf 'listen = 127.0.0.1:0\nno-such-key = 1\n' >"$W/bad2.conf"
exits2 "p: an unknown key" "^p: --config $W/bad2.conf:2: key 'no-such-key': unknown key" "$TT_P" --config "$W/bad2.conf"
printf 'listen = 127.0.0.1:0\nthis line has no equals sign\n' >"$W/bad3.conf"
exits2 "p: a line that is not key = value" "^p: --config $W/bad3.conf:2: not 'key = value'" "$TT_P" --config "$W/bad3.conf"
exits2 "p: a missing file" "^p: --config $W/none.conf: No such file" "$TT_P" --config "$W/none.conf"
printf 'proxy = 127.0.0.1:1\nname = media\nfingerprint = sha256:zz\n' >"$W/bad4.conf"
exits2 "c: a bad value" "^c: --config $W/bad4.conf:3: key 'fingerprint': " "$TT_C" --config "$W/bad4.conf" --token x --root "$TT_MEDIA"
printf 'proxy = 127.0.0.1:1\nallow-put = maybe\n' >"$W/bad5.conf"
exits2 "c: a yes/no key" "^c: --config $W/bad5.conf:2: key 'allow-put': 'maybe' is not yes or no" "$TT_C" --config "$W/bad5.conf" --token x --root "$TT_MEDIA"
printf '[c]\nproxy = 127.0.0.1:1\n' >"$W/bad6.conf"
exits2 "c: sections" "^c: --config $W/bad6.conf:2: key 'proxy': sections" "$TT_C" --config "$W/bad6.conf" --token x --root "$TT_MEDIA"
finish
