#!/usr/bin/env bash
# The body of `make check`: unit tests (cmocka, ASan+UBSan), the layering
# check (tools/layers.sh and its fixtures), a short smoke run of every fuzz
# target, the integration tests through the real binaries, and the benchmark
# harness in its quick mode.  Prints one closing line,
# "N passed, N failed", and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()

note_pass() { passed=$((passed + ${2:-1})); }
note_fail() { failed=$((failed + ${2:-1})); failures+=("$1"); }

echo "== unit tests"
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    log=$(mktemp)
    if "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
    cat "$log"
    ok=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    bad=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    rm -f "$log"
    note_pass "$t" "$ok"
    if [ "$bad" -gt 0 ]; then note_fail "$t" "$bad";
    elif [ "$rc" -ne 0 ]; then note_fail "$t (exit $rc)"; fi
done

# Each rule of tools/layers.sh is one check, and so is each of its fixture
# cases; the objects `make check` just built are reused for nm.
count_lines() {  # NAME LOG: one pass or failure per PASS / FAIL line
    local ok bad
    ok=$(grep -c '^PASS ' "$2" || true)
    bad=$(grep -c '^FAIL ' "$2" || true)
    note_pass "$1" "$ok"
    [ "$bad" -gt 0 ] && note_fail "$1" "$bad"
    return 0
}
echo "== layers (tools/layers.sh)"
log=$(mktemp)
if [ -x tools/layers.sh ]; then
    tools/layers.sh --objs build/rel >"$log" 2>&1; rc=$?
    cat "$log"
    count_lines "tools/layers.sh" "$log"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$log"; then note_fail "tools/layers.sh (exit $rc)"; fi
fi
if [ -x tests/layers/run.sh ]; then
    tests/layers/run.sh >"$log" 2>&1; rc=$?
    grep -v '^[0-9]* passed, [0-9]* failed$' "$log"
    count_lines "tests/layers" "$log"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$log"; then note_fail "tests/layers/run.sh (exit $rc)"; fi
fi
rm -f "$log"

echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS:=5}s each)"
for f in build/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    if FUZZ_SECONDS=$FUZZ_SMOKE_SECONDS tools/fuzz.sh "$f" >/dev/null 2>build/fuzz-smoke.log; then
        echo "PASS fuzz smoke $(basename "$f")"; note_pass "$f"
    else
        tail -40 build/fuzz-smoke.log
        echo "FAIL fuzz smoke $(basename "$f")"; note_fail "$f"
    fi
done

if [ -x integration-tests/run.sh ]; then
    echo "== integration tests"
    log=$(mktemp)
    integration-tests/run.sh 2>&1 | tee "$log"
    ok=$(grep -c '^PASS ' "$log" || true)
    bad=$(grep -c '^FAIL ' "$log" || true)
    note_pass integration "$ok"
    [ "$bad" -gt 0 ] && note_fail "integration tests" "$bad"
    if ! grep -qE '^[0-9]+ passed, [0-9]+ failed' "$log"; then note_fail "integration runner did not finish"; fi
    rm -f "$log"
fi

if [ -x bench/run.sh ]; then
    echo "== bench harness (quick mode: proves it runs, asserts no timing)"
    if BENCH_QUICK=1 bench/run.sh >build/bench-quick.log 2>&1; then
        echo "PASS bench quick"; note_pass bench
    else
        tail -30 build/bench-quick.log; echo "FAIL bench quick"; note_fail bench
    fi
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
