#!/usr/bin/env bash
# Runs each libFuzzer binary given for FUZZ_SECONDS with its committed seed
# corpus (read-only) and the shared dictionary; new inputs go to
# build/fuzz-corpus/<name>.  Exits non-zero if any target found a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
rc=0
for bin in "$@"; do
    name=$(basename "$bin")
    work=build/fuzz-corpus/$name
    mkdir -p "$work" build/fuzz-artifacts
    seeds=fuzz/corpus/${name#fuzz_}
    args=(-max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build/fuzz-artifacts/"$name"- -rss_limit_mb=2048)
    [ -f fuzz/h2.dict ] && args+=(-dict=fuzz/h2.dict)
    dirs=("$work")
    [ -d "$seeds" ] && dirs+=("$seeds")
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" "${args[@]}" "${dirs[@]}"; then
        echo "fuzz: $name FOUND A CRASH (see build/fuzz-artifacts/)" >&2
        rc=1
    fi
done
exit $rc
