#!/usr/bin/env bash
# Tests tools/layers.sh on small trees, one per rule, that break it (and one,
# ok/, that keeps every rule).  Each case folder holds a tree of codec/,
# proto/, proxy/, origin/ files and:
#   expect  RULE<TAB>TEXT lines: the rules that must FAIL (no other may), and
#           a text each that the findings must contain; empty = all PASS
#   grow    optional PATH LINES lines: pad that file with comment lines up to
#           LINES, so the size rule is tested without 1000-line fixtures
#   args    optional extra arguments for tools/layers.sh
# One PASS or FAIL line per case (tools/check.sh counts them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
layers=$here/../../tools/layers.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
for case_dir in "$here"/*/; do
    name=$(basename "$case_dir")
    [ -f "$case_dir/expect" ] || continue
    tree=$work/$name
    cp -r "$case_dir" "$tree"
    if [ -f "$tree/grow" ]; then
        while read -r path lines; do
            have=$(wc -l <"$tree/$path")
            for _ in $(seq $((have + 1)) "$lines"); do echo "/* padding */"; done >>"$tree/$path"
        done <"$tree/grow"
    fi
    args=()
    if [ -f "$tree/args" ]; then read -r -a args <"$tree/args"; fi
    out=$work/$name.out
    rc=0
    "$layers" --root "$tree" "${args[@]}" >"$out" 2>&1 || rc=$?
    problems=()
    want_fail=$(cut -f1 "$tree/expect" | sort -u)
    got_fail=$(sed -n 's/^FAIL layers \([a-z-]*\):.*/\1/p' "$out" | sort -u)
    [ "$want_fail" = "$got_fail" ] ||
        problems+=("rules failed: '$(echo $got_fail)', expected: '$(echo $want_fail)'")
    while IFS=$'\t' read -r rule text; do
        grep -qF -- "$text" "$out" || problems+=("no finding for $rule containing: $text")
    done <"$tree/expect"
    if [ -s "$tree/expect" ]; then want_rc=1; else want_rc=0; fi
    [ "$rc" = "$want_rc" ] || problems+=("exit $rc, expected $want_rc")
    if [ ${#problems[@]} -eq 0 ]; then
        echo "PASS layers fixture $name"; passed=$((passed + 1))
    else
        echo "FAIL layers fixture $name:"
        for p in "${problems[@]}"; do echo "  $p"; done
        echo "  tools/layers.sh said:"; sed 's/^/    /' "$out"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
