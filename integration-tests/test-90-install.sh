#!/usr/bin/env bash
# `make install` into a temporary DESTDIR, then what was installed, as a user
# and systemd would meet it:
# - the files and their modes, nothing else; paths written into the units;
#   the sysusers.d entry makes p's user (systemd-sysusers --root);
# - the installed tether-p and tether-c: --help, --version, and a real pair
#   started with the command lines of the installed units and the installed
#   example configs, serving a file through p to curl, reloaded the way
#   ExecReload= and `tether-p token add` do it, then stopped with SIGTERM
#   (exit 0 after the drain);
# - the man pages: every flag of --help has an entry under OPTIONS and every
#   entry is a flag of --help, the sections a reader expects, mandoc -Tlint
#   clean, `man -l` renders without a warning, man finds them by name under
#   the installed MANPATH, lexgrog reads their NAME line;
# - the units: `systemd-analyze verify` with nothing to say, and an "OK"
#   exposure from `systemd-analyze security --offline`.
#
# systemd-analyze verify checks that ExecStart's program exists, and the
# units name the final path (/usr/local/bin/tether-p), which a DESTDIR
# install does not create.  So the test verifies a copy of each installed
# unit in which only ExecStart's program is moved into DESTDIR; everything
# else is the installed file.  (--root=DESTDIR is no way out: there it also
# looks for sysinit.target and the rest of systemd inside DESTDIR.)  Its man:
# links are checked against the installed pages (MANPATH into DESTDIR).
#
# No systemd runs here, so the pair is started as the unit would start it:
# ExecStart's arguments with %S (the state directory's parent), %d (the
# credentials folder, where LoadCredential= puts the token) and %i filled in,
# and the units' /etc/tether moved into DESTDIR.
source "$(dirname "$0")/lib.sh"

for tool in mandoc man lexgrog systemd-analyze; do
    command -v "$tool" >/dev/null || die "$tool is missing (tools/deps.sh installs it)"
done

PREFIX=/usr/local
R=$W/root
# The outer make's job server and flags are not this make's business.
mk() { env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory -C "$TT_REPO" "$@"; }
mk install DESTDIR="$R" PREFIX="$PREFIX" >"$W/install.log" 2>&1 ||
    { tail -20 "$W/install.log"; die "make install DESTDIR=$R failed"; }
good "make install DESTDIR=... PREFIX=$PREFIX"

PB=$R$PREFIX/bin/tether-p
CB=$R$PREFIX/bin/tether-c
MANDIR=$R$PREFIX/share/man
U=$R$PREFIX/lib/systemd/system

# ---------------------------------------------------------------- the files

want_files="bin/tether-p 755
bin/tether-c 755
share/man/man1/tether-p.1 644
share/man/man1/tether-c.1 644
lib/systemd/system/tether-p.service 644
lib/systemd/system/tether-c@.service 644
lib/sysusers.d/tether.conf 644
share/doc/tether/examples/p.conf 644
share/doc/tether/examples/c.conf 644"
while read -r f mode; do
    if [ -f "$R$PREFIX/$f" ]; then
        expect_eq "$PREFIX/$f installed, mode $mode" "$mode" "$(stat -c %a "$R$PREFIX/$f")"
    else
        bad "$PREFIX/$f was not installed"
    fi
done <<<"$want_files"
extra=$(cd "$R" && find . -type f | sed 's|^\.||' | sort |
    grep -vxF -f <(sed "s|^|$PREFIX/|; s| .*||" <<<"$want_files"))
expect_eq "make install put no other file anywhere" "" "$extra"
expect_true "make install made /etc/tether for the units' options" test -d "$R/etc/tether"

for u in tether-p.service tether-c@.service; do
    expect_eq "$u has no @PLACEHOLDER@ left" "" "$(grep -o '@[A-Z]*@' "$U/$u" | head -1)"
done
expect_match "tether-p.service runs the installed program" "^ExecStart=$PREFIX/bin/tether-p " \
    "$(grep '^ExecStart=' "$U/tether-p.service")"
expect_match "tether-c@.service runs the installed program" "^ExecStart=$PREFIX/bin/tether-c " \
    "$(grep '^ExecStart=' "$U/tether-c@.service")"
expect_eq "tether-p.service keeps one capability, to bind ports below 1024" \
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE AmbientCapabilities=CAP_NET_BIND_SERVICE" \
    "$(grep -E '^(CapabilityBoundingSet|AmbientCapabilities)=' "$U/tether-p.service" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "tether-c@.service keeps no capability" \
    "CapabilityBoundingSet= AmbientCapabilities=" \
    "$(grep -E '^(CapabilityBoundingSet|AmbientCapabilities)=' "$U/tether-c@.service" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "tether-p.service runs as the user tether" "User=tether" "$(grep '^User=' "$U/tether-p.service")"
expect_eq "tether-c@.service runs as a dynamic user" "DynamicUser=yes" "$(grep '^DynamicUser=' "$U/tether-c@.service")"
# What systemd-sysusers makes of the installed entry, in a root of its own.
mkdir -p "$W/sysroot/etc"
out=$(systemd-sysusers --root="$W/sysroot" "$R$PREFIX/lib/sysusers.d/tether.conf" 2>&1) ||
    bad "systemd-sysusers refused tether.conf: $out"
expect_match "systemd-sysusers makes the system user tether, home /var/lib/tether, no login" \
    '^tether:x:[0-9]+:[0-9]+:[^:]*:/var/lib/tether:/usr/sbin/nologin$' \
    "$(grep '^tether:' "$W/sysroot/etc/passwd" 2>&1)"

# ---------------------------------------------------------------- --help, --version

version=
for prog in p c; do
    bin=$R$PREFIX/bin/tether-$prog
    (cd "$W" && "$bin" --help) >"$W/$prog.help" 2>"$W/$prog.help.err"
    expect_eq "installed tether-$prog --help exits 0" 0 "$?"
    expect_match "tether-$prog --help starts with its usage line" '^usage: ' "$(head -1 "$W/$prog.help")"
    expect_eq "tether-$prog --help writes nothing to stderr" "" "$(cat "$W/$prog.help.err")"
    v=$(cd "$W" && "$bin" --version)
    expect_match "tether-$prog --version names itself and a version" "^tether-$prog [0-9]+\.[0-9]+" "$v"
    [ -z "$version" ] && version=${v#tether-"$prog" }
done

# ---------------------------------------------------------------- man pages

# The options --help lists: its lines that begin with two spaces and a flag.
help_flags() { grep -oE '^  --[a-z][a-z0-9-]*' "$1" | sed 's/^ *//' | sort -u; }
# The entries of a rendered page's OPTIONS section (its subsections too):
# the tags stand 7 columns in, their text 14.
man_entries() { awk '/^[A-Z]/ { sec = $0; next } sec == "OPTIONS" && /^       --[a-z]/ { print $1 }' "$1" | sort -u; }

for prog in p c; do
    page=$MANDIR/man1/tether-$prog.1
    [ -f "$page" ] || continue
    lint=$(mandoc -Tlint "$page" 2>&1)
    expect_eq "mandoc -Tlint tether-$prog.1: rc 0, nothing to say" "0:" "$?:$lint"
    MANWIDTH=100 man -l "$page" >"$W/$prog.man" 2>"$W/$prog.man.err"
    expect_eq "man -l tether-$prog.1 renders (exit 0)" 0 "$?"
    expect_eq "man -l tether-$prog.1: no warning from the formatter" "" "$(cat "$W/$prog.man.err")"
    for s in NAME SYNOPSIS DESCRIPTION OPTIONS FILES SIGNALS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
        expect_true "tether-$prog(1) has a $s section" grep -qx -- "$s" "$W/$prog.man"
    done
    expect_match "tether-$prog(1)'s footer says the version --version prints ($version)" \
        "^tether $version " "$(tail -1 "$W/$prog.man" | sed 's/^ *//')"
    help_flags "$W/$prog.help" >"$W/$prog.help.flags"
    man_entries "$W/$prog.man" >"$W/$prog.man.flags"
    n=$(wc -l <"$W/$prog.help.flags")
    [ "$n" -ge 10 ] || bad "only $n flags read from tether-$prog --help: the help or this test's reading of it changed"
    missing=$(comm -23 "$W/$prog.help.flags" "$W/$prog.man.flags" | tr '\n' ' ')
    stale=$(comm -13 "$W/$prog.help.flags" "$W/$prog.man.flags" | tr '\n' ' ')
    expect_eq "every flag of tether-$prog --help ($n) has an entry under OPTIONS in tether-$prog(1)" "" "$missing"
    expect_eq "every OPTIONS entry of tether-$prog(1) is a flag of tether-$prog --help" "" "$stale"
    expect_eq "man finds tether-$prog by name under the installed MANPATH" "$page" \
        "$(MANPATH=$MANDIR man -w "tether-$prog" 2>&1)"
    expect_match "lexgrog reads tether-$prog(1)'s NAME line (whatis, apropos)" \
        "\"tether-$prog - " "$(lexgrog "$page" 2>&1)"
done

# The example configs name only options the programs have, set or
# commented out ("# key = value").
for prog in p c; do
    f=$R$PREFIX/share/doc/tether/examples/$prog.conf
    [ -f "$f" ] || continue
    keys=$(sed -nE 's/^(# ?)?([a-z][a-z0-9-]*) = .*/--\2/p' "$f" | sort -u)
    [ "$(wc -w <<<"$keys")" -ge 10 ] || bad "only $(wc -w <<<"$keys") keys read from $prog.conf"
    expect_eq "the example $prog.conf uses only flags of tether-$prog --help" "" \
        "$(comm -23 <(echo "$keys") "$W/$prog.help.flags" | tr '\n' ' ')"
done

# ---------------------------------------------------------------- units

mkdir -p "$W/verify"
for u in tether-p.service tether-c@.service; do
    [ -f "$U/$u" ] || continue
    sed "s|^ExecStart=$PREFIX/bin/|ExecStart=$R$PREFIX/bin/|" "$U/$u" >"$W/verify/$u"
    out=$(cd "$W/verify" && MANPATH=$MANDIR systemd-analyze verify "$W/verify/$u" 2>&1)
    rc=$?
    expect_eq "systemd-analyze verify $u: rc 0, nothing to say" "0:" "$rc:$out"
    level=$(cd "$W/verify" && systemd-analyze security --offline=yes "$W/verify/$u" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
    expect_match "systemd-analyze security rates $u OK" '^[0-9.]+ OK$' "$level"
done

# ---------------------------------------------------------------- a real pair

# ExecStart's arguments after the program; the units' /etc is DESTDIR's.
unit_args() { sed -n 's/^ExecStart=[^ ]* //p' "$1" | sed "s|/etc/tether/|$R/etc/tether/|g"; }
p_args=$(unit_args "$U/tether-p.service")
c_args=$(unit_args "$U/tether-c@.service")
expect_match "tether-p.service reads /etc/tether/p.conf" "^--config $R/etc/tether/p.conf " "$p_args"
expect_match "tether-c@.service reads /etc/tether/c-INSTANCE.conf" "^--config $R/etc/tether/c-%i.conf " "$c_args"

# The operator's p.conf: the installed example with this test's ports.
pick_ports
sed -e "s|^listen = .*|listen = 127.0.0.1:$HTTP_PORT|" -e "s|^tunnel-listen = .*|tunnel-listen = 127.0.0.1:$TUN_PORT|" \
    "$R$PREFIX/share/doc/tether/examples/p.conf" >"$R/etc/tether/p.conf"

# StateDirectory=tether, WorkingDirectory=%S/tether: systemd makes the
# folder; p makes its identity and tokens in it on the first start.
state=$W/var-lib/tether
mkdir -p -m 700 "$state"
read -ra pa <<<"${p_args//%S/$W/var-lib}"
cd "$state" || die "cd $state"
TT_P=$PB
# start_p also gives --listen and --tunnel-listen, the same as p.conf's (it
# picks new ports should one be taken meanwhile).
start_p p "${pa[@]}"
cd "$W" || die "cd $W"
for f in tunnel-cert.pem tunnel-key.pem tokens c-default.token p.pid; do
    expect_true "tether-p made $f in the unit's state directory" test -s "$state/$f"
done
expect_eq "the tokens file is for p alone (mode 600)" 600 "$(stat -c %a "$state/tokens" 2>/dev/null)"
fpr=$(logged_fingerprint "$W/p.log")
expect_eq "tether-p logged the fingerprint of the certificate it made" \
    "$(cert_fingerprint "$state/tunnel-cert.pem")" "$fpr"
wait_until 50 0.1 grep -q -- "--token-file $state/c-default.token" "$W/p.out" ||
    bad "tether-p printed no c command reading $state/c-default.token on its first start"

# The operator copies c's token file to /etc/tether/c-INSTANCE.token, and
# LoadCredential=token:... hands it to c in a private folder (%d).
mkdir -p -m 700 "$W/cred"
cp "$state/c-default.token" "$W/cred/token" && chmod 600 "$W/cred/token"
# The operator's c-origin1.conf: the installed example, for this p.  Its
# token-file (/etc/tether/c-default.token, absent here) is overridden by
# the unit's --token-file.
sed -e "s|^proxy = .*|proxy = 127.0.0.1:$TUN_PORT|" -e "s|^name = .*|name = default|" \
    -e "s|^# fingerprint = .*|fingerprint = $fpr|" -e "s|^root = .*|root = $TT_MEDIA|" \
    "$R$PREFIX/share/doc/tether/examples/c.conf" >"$R/etc/tether/c-origin1.conf"
c_args=${c_args//%i/origin1}
read -ra ca <<<"${c_args//%d/$W/cred}"
# A system unit's working directory is /.
(cd / && exec "$CB" "${ca[@]}") >>"$W/c.out" 2>>"$W/c.log" &
track "$!" c
wait_c_up c || die "the installed tether-c did not log 'tunnel up'"
wait_until 100 0.1 is_status 200 "$(url /)" || die "GET / through the installed pair: $(status_of "$(url /)")"

fetch "/$(q 'my clip.mp4')"
expect_eq "GET /my clip.mp4 through the installed tether-p and tether-c" 200 "$CODE"
expect_same_file "the file curl got through the installed pair" "$TT_MEDIA/my clip.mp4" "$W/body"

# systemctl reload: ExecReload= with $MAINPID, then the operator's
# `tether-p token add` with the unit's own options.
reload=$(sed -n 's/^ExecReload=//p' "$U/tether-p.service")
expect_eq "tether-p.service reloads with SIGHUP" '/bin/kill -HUP $MAINPID' "$reload"
n0=$(count_lines "$W/p.log" 'reloaded tokens')
MAINPID=$(pid_of p)
read -ra rl <<<"${reload//\$MAINPID/$MAINPID}"
"${rl[@]}" || bad "ExecReload= ($reload) failed"
wait_until 50 0.1 log_has "$W/p.log" 'reloaded tokens' $((n0 + 1)) || bad "p did not log a reload after ExecReload="
"$PB" token add cam "${pa[@]}" >"$W/token-add.out" 2>&1 || bad "tether-p token add with the unit's options failed: $(cat "$W/token-add.out")"
expect_true "tether-p token add wrote $state/c-cam.token" test -s "$state/c-cam.token"
wait_until 50 0.1 log_has "$W/p.log" 'reloaded tokens' $((n0 + 2)) ||
    bad "p did not reload after tether-p token add (it said: $(tail -2 "$W/token-add.out" | tr '\n' ' '))"
expect_true "GET / still answers 200 after both reloads" is_status 200 "$(url /)"

# SIGTERM, as systemctl stop sends it: each drains and exits 0 (c first: a c
# whose p is gone would dial again).
# (Not in a $(...): only this shell can wait for its children.)
term_status() { # LABEL: TERM, then STATUS is its exit status, or "running" after 15 s
    local pid i
    pid=$(pid_of "$1")
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 150; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    STATUS=running
    alive "$pid" && return
    wait "$pid"
    STATUS=$?
}
term_status c
expect_eq "the installed tether-c exits 0 on SIGTERM" 0 "$STATUS"
term_status p
expect_eq "the installed tether-p exits 0 on SIGTERM" 0 "$STATUS"
rm -f "$R/etc/tether/p.conf" "$R/etc/tether/c-origin1.conf"

# ---------------------------------------------------------------- other prefixes, uninstall

R2=$W/root-opt
mk install DESTDIR="$R2" PREFIX=/opt/tether >"$W/install2.log" 2>&1 || bad "make install PREFIX=/opt/tether failed"
expect_match "PREFIX=/opt/tether: the unit runs /opt/tether/bin/tether-p" '^ExecStart=/opt/tether/bin/tether-p ' \
    "$(grep '^ExecStart=' "$R2/opt/tether/lib/systemd/system/tether-p.service" 2>&1)"
expect_true "PREFIX=/opt/tether: the man pages are under it" test -f "$R2/opt/tether/share/man/man1/tether-c.1"

mk uninstall DESTDIR="$R" PREFIX="$PREFIX" >"$W/uninstall.log" 2>&1 || bad "make uninstall failed"
expect_eq "make uninstall leaves no installed file" "" "$(cd "$R" && find . -type f | tr '\n' ' ')"
finish
