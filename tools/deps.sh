#!/usr/bin/env bash
# Installs, with apt-get, every Debian package tether needs to build, test,
# fuzz and demo.  Fast when everything is already there: it only asks dpkg.
# BENCH=1 adds the reference servers the benchmarks compare against.
set -euo pipefail

build=(build-essential libssl-dev zlib1g-dev node-llhttp openssl)
test=(libcmocka-dev libjansson-dev clang libclang-rt-14-dev curl ffmpeg
      nghttp2-client python3-h2 python3-hpack procps psmisc iproute2 nodejs
      chromium mpv)
bench=(libnghttp2-dev nginx-light nghttp2-server nghttp2-proxy wrk openssh-server
       openssh-client linux-perf time util-linux)

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
