#!/usr/bin/env bash
# Checks that tether's layers hold: codec < proto < proxy | origin, arrows
# pointing down only.  Five rules, one PASS or FAIL line each (tools/check.sh
# counts them): includes point down; no include cycle; a file over 1000
# lines carries a "size: <reason>" line near its top; the global symbols one
# object takes from another (nm) point down too; no cycle between objects.
# The rules and the size convention are spelled out in tools/layers.py and
# docs/DESIGN.md ("Layers").
#
#   tools/layers.sh                    the tree this script is in; compiles
#                                      the .c files to a temp folder for nm
#   tools/layers.sh --objs build/rel   reuse up-to-date objects from a build
#   tools/layers.sh --root DIR         another tree (tests/layers/ fixtures)
#   tools/layers.sh --no-symbols       includes, cycles and sizes only (no cc, no nm)
#
# Exit 0 when every rule passes, 1 when one fails, 2 on a usage error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x /usr/bin/python3 ]; then
    echo "layers: /usr/bin/python3 is missing: run tools/deps.sh (Debian package python3)" >&2
    exit 2
fi
exec /usr/bin/python3 "$here/layers.py" "$@"
