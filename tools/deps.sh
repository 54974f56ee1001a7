#!/usr/bin/env bash
# Installs, with apt-get, every Debian package tether needs to build, test,
# fuzz and demo.  Fast when everything is already there: it only asks dpkg.
# BENCH=1 adds the reference servers the benchmarks compare against.
#
# `make check` runs on a new Debian 12 machine with nothing but this list, so
# the first two lists must hold every program it runs: the unit tests, the
# fuzz smoke run, tools/layers.sh, the integration tests and bench/run.sh in
# quick mode.  Quick mode measures the tether rows (curl, h2load, wrk,
# taskset, ss) and skips, with a line saying so, each reference server that
# is not installed, so those stay in the BENCH=1 list.  Some packages a new
# machine already has (python3, openssl, curl, procps, iproute2, util-linux)
# are named anyway because a script calls them, so the list says what the
# project depends on; coreutils and binutils (nm, for tools/layers.sh) come
# with build-essential.
set -euo pipefail

build=(build-essential libssl-dev zlib1g-dev node-llhttp openssl python3)
test=(libcmocka-dev libjansson-dev   # unit tests
      clang libclang-rt-14-dev       # fuzz targets (libFuzzer)
      curl ffmpeg nghttp2-client python3-h2 python3-hpack procps psmisc
      iproute2 nodejs chromium mpv   # integration tests
      wrk util-linux)                # bench quick mode (wrk: scenario 3; taskset)
bench=(libnghttp2-dev nginx-light nghttp2-server nghttp2-proxy openssh-server
       openssh-client linux-perf time)

want=("${build[@]}" "${test[@]}")
if [ "${BENCH:-0}" = 1 ]; then want+=("${bench[@]}"); fi

missing=()
for p in "${want[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in ii*) ;; *) missing+=("$p") ;; esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
        echo "deps: need root (or sudo) to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
