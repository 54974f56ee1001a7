#!/usr/bin/env bash
# Runs the integration tests against the real bin/p and bin/c.
#   integration-tests/run.sh [FILTER]
# FILTER (optional) is a substring or extended regexp of test names
# ("ranges", "0[1-4]").  Makes the media once, generates a certificate and
# tokens (openssl) for this run, then runs each test-NN-name.sh in order
# under `timeout 120` (or the seconds of a "# runner-timeout: N" line in the
# test, for one whose fixed waits leave little room on a loaded machine), each in its own work dir (integration-tests/.work/, or
# $TT_WORKROOT: two runs at once in one checkout need one each),
# printing "PASS test-NN-name" or "FAIL test-NN-name" (with the tail of its
# output and logs), then "N passed, N failed".  Exits 1 on any failure.
#
# Every test stops what it started by PID (trap); as a second line of
# defence the runner stops any PID a test recorded and left running.  After
# each test the runner also checks that no generated token appears in any
# p or c log (stderr), whatever the test did.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
here=$(pwd)
repo=$(cd .. && pwd)
filter=${1:-}

# TT_P / TT_C may name other builds of p and c (e.g. sanitizer builds).
export TT_P=${TT_P:-$repo/bin/p} TT_C=${TT_C:-$repo/bin/c} TT_MEDIA=$here/media
for b in "$TT_P" "$TT_C"; do
    [ -x "$b" ] || { echo "FAIL integration-setup: $b is missing (run make)"; echo "0 passed, 1 failed"; exit 1; }
done

if ! ./make-media.sh; then
    echo "FAIL integration-media"
    echo "0 passed, 1 failed"
    exit 1
fi

wr=${TT_WORKROOT:-$here/.work}
rm -rf "$wr"/shared "$wr"/test-*   # only what a run makes: TT_WORKROOT may hold other things
mkdir -p "$wr/shared"
export TT_SHARED=$wr/shared
# Generated for this run: the tunnel certificate, the tokens file, one token
# file per name (lib.sh's make_shared).
# shellcheck source=lib.sh
TT_LIB_NO_SETUP=1 source ./lib.sh
make_shared "$TT_SHARED" || { echo "FAIL integration-setup: openssl"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
failed_names=()
start=$(date +%s)

for t in test-[0-9][0-9]-*.sh; do
    name=${t%.sh}
    if [ -n "$filter" ] && ! [[ "$name" =~ $filter ]]; then continue; fi
    work=$wr/$name
    rm -rf "$work"
    mkdir -p "$work"
    t0=$(date +%s)
    limit=$(sed -n 's/^# runner-timeout: \([0-9]*\).*/\1/p' "$t" | head -1)
    limit=${limit:-120}
    TT_TESTWORK=$work timeout -k 10 "$limit" bash "./$t" >"$wr/$name.out" 2>&1
    rc=$?
    # Leftovers: anything the test recorded and did not stop.
    if [ -f "$work/pids" ]; then
        for pid in $(awk '{ print $1 }' "$work/pids"); do
            if kill -0 "$pid" 2>/dev/null; then
                echo "  runner: $name left PID $pid running; killing it" >>"$wr/$name.out"
                kill -KILL "$pid" 2>/dev/null
            fi
        done
    fi
    # No token in any log (stderr of p and c), whatever happened.
    for tokfile in "$wr"/shared/token.*; do
        tok=$(cat "$tokfile")
        if grep -rlF -- "$tok" "$work" --include='*.log' >/dev/null 2>&1; then
            echo "  FAIL: a token ($(basename "$tokfile")) appears in $(grep -rlF -- "$tok" "$work" --include='*.log' | tr '\n' ' ')" >>"$wr/$name.out"
            rc=1
        fi
    done
    dt=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name (${dt}s)"
        passed=$((passed + 1))
    else
        [ "$rc" -eq 124 ] && echo "  runner: timed out after $limit s" >>"$wr/$name.out"
        echo "FAIL $name (${dt}s, exit $rc)"
        grep -E '^  (FAIL|FATAL|runner)' "$wr/$name.out" | head -30 | sed 's/^/    /'
        echo "    --- last lines of the test output:"
        tail -15 "$wr/$name.out" | sed 's/^/    | /'
        for lg in "$work"/*.log; do
            [ -f "$lg" ] || continue
            echo "    --- tail of $(basename "$lg"):"
            tail -8 "$lg" | sed 's/^/    | /'
        done
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
done

echo "integration: $(($(date +%s) - start)) s; outputs and logs in $wr/"
[ "${#failed_names[@]}" -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
