#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages tether needs.  Fast when
# everything is already there: it only asks dpkg.
#   tools/deps.sh        what `make check` needs: build, test, fuzz and demo
#   tools/deps.sh demo   what `make run` needs: the build and what the demo
#                        itself runs (ffmpeg for the sample media, curl), not
#                        the test tool set (clang, Chromium, mpv, sshd...)
# BENCH=1 adds the reference servers the benchmarks compare against.
#
# `make check` runs on a new Debian 12 machine with nothing but these lists,
# so build, demo and test must hold every program it runs: the unit tests, the
# fuzz smoke run, tools/layers.sh, the integration tests and bench/run.sh in
# quick mode.  Quick mode measures the tether rows (curl, h2load, wrk,
# taskset, ss) and skips, with a line saying so, each reference server that
# is not installed, so those stay in the BENCH=1 list.  Some packages a new
# machine already has (python3, openssl, curl, procps, iproute2, util-linux,
# openssh-client) are named anyway because a script calls them, so the list
# says what the project depends on; coreutils and binutils (nm, for
# tools/layers.sh) come with build-essential.
#
# The gRPC test (integration-tests/test-43-grpc.sh) also needs npm's
# @grpc/grpc-js, pinned by integration-tests/grpc/package-lock.json, and the
# WebSocket test (test-47) npm's ws, pinned by integration-tests/ws's: each
# is installed there with `npm ci` (into a git-ignored node_modules) when
# missing, by the npm that comes with node 20.
set -euo pipefail

build=(build-essential libssl-dev zlib1g-dev node-llhttp openssl python3
       libinih-dev pkgconf)   # --config files (inih), found with pkg-config
# tools/demo.sh: integration-tests/make-media.sh (ffmpeg, ffprobe) and the
# first request through the tunnel (curl); the rest is coreutils, grep, sed.
demo=(ffmpeg curl)
test=(libcmocka-dev libjansson-dev   # unit tests
      clang libclang-rt-14-dev       # fuzz targets (libFuzzer)
      nghttp2-client python3-h2 python3-hpack procps psmisc
      iproute2 nodejs chromium mpv   # integration tests
      python3-grpcio python3-protobuf # the gRPC test's Python client and server
      python3-prometheus-client      # the admin test parses /metrics with it
      haproxy                        # the PROXY protocol test's balancer (its own config, own port)
      openssh-server openssh-sftp-server openssh-client # the TCP test's sshd, ssh, scp
      mandoc man-db systemd          # the install test: man pages linted and rendered, units verified
      wrk util-linux)                # bench quick mode (wrk: scenario 3; taskset)
bench=(libnghttp2-dev nginx-light nghttp2-server nghttp2-proxy linux-perf time
       pagekite)   # the reverse HTTP tunnel of scenarios 1 and 3

case "${1:-check}" in
    demo) want=("${build[@]}" "${demo[@]}"); want_npm=0 ;;
    check) want=("${build[@]}" "${demo[@]}" "${test[@]}"); want_npm=1 ;;
    *) echo "usage: tools/deps.sh [demo]" >&2; exit 2 ;;
esac
if [ "${BENCH:-0}" = 1 ]; then want+=("${bench[@]}"); fi

# The npm packages of the gRPC test, after the apt ones (nodejs brings npm).
npm_deps() {
    local root d mod
    root="$(cd "$(dirname "$0")/.." && pwd)/integration-tests"
    # Each folder with its lockfile, and a module whose presence says done.
    for d in "grpc:@grpc/grpc-js" "ws:ws"; do
        mod=${d#*:}
        d=$root/${d%%:*}
        [ -d "$d/node_modules/$mod" ] && continue
        if ! command -v npm >/dev/null; then
            echo "deps: npm is missing (it comes with node 20's nodejs); cannot install $d's packages" >&2
            exit 1
        fi
        echo "deps: npm ci in $d"
        (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    done
}

missing=()
for p in "${want[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in ii*) ;; *) missing+=("$p") ;; esac
done
if [ ${#missing[@]} -eq 0 ]; then
    if [ "$want_npm" = 1 ]; then npm_deps; fi
    exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
        echo "deps: need root (or sudo) to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# openssh-server is here for the private sshd that tests and benchmarks start
# themselves (own config, own port on 127.0.0.1), not for a system service:
# on a machine that does not have it yet, Debian would start sshd on port 22
# at install (systemd's ssh.service or ssh.socket, or the init script).  All
# three skip sshd while /etc/ssh/sshd_not_to_be_run exists (Debian's own
# switch), so it is made before the install; `rm /etc/ssh/sshd_not_to_be_run` and
# `systemctl start ssh` give the machine its ssh service back.  A machine
# that already has openssh-server is left as it is.
case " ${missing[*]} " in *" openssh-server "*)
    if [ ! -e /etc/ssh/sshd_not_to_be_run ]; then
        echo "deps: making /etc/ssh/sshd_not_to_be_run so the install starts no system sshd on port 22"
        $SUDO mkdir -p /etc/ssh
        echo "made by tether's tools/deps.sh: no system sshd (tests start their own)" |
            $SUDO tee /etc/ssh/sshd_not_to_be_run >/dev/null
    fi ;;
esac
# Another apt-get or dpkg (unattended-upgrades on a fresh machine, above all)
# may hold the lock: wait up to 5 minutes for it rather than fail at once.
apt_opts=(-o DPkg::Lock::Timeout=300)
$SUDO apt-get "${apt_opts[@]}" update -qq
$SUDO apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$want_npm" = 1 ]; then npm_deps; fi
echo "deps: done"
