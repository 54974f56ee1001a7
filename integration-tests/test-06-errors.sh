#!/usr/bin/env bash
# 404, 405 with Allow, PUT refused without --allow-put, and traversal refused:
# /../, %2e%2e, an encoded slash, NUL, a symlink (file and folder) leading out
# of the root.  Nothing outside the root is ever served.
source "$(dirname "$0")/lib.sh"

root=$W/root
mkdir -p "$root/dir" "$W/outside"
secret="outside-secret-$(openssl rand -hex 8)"
echo "$secret" >"$W/outside/secret.txt"
echo "inside" >"$root/inside.txt"
echo "deep" >"$root/dir/deep.txt"
ln -s "$W/outside/secret.txt" "$root/link-out.txt"
ln -s "$W/outside" "$root/dir-out"
ln -s ../../outside/secret.txt "$root/dir/rel-out.txt"
start_pair "$root"

fetch /inside.txt
expect_eq "control: /inside.txt is served" 200 "$CODE"

fetch /no-such-file.txt
expect_eq "missing file -> 404" 404 "$CODE"
fetch /dir/no/such/thing
expect_eq "missing nested path -> 404" 404 "$CODE"

for m in POST DELETE PATCH; do
    fetch /inside.txt -X "$m" -d x
    expect_eq "$m -> 405" 405 "$CODE"
    allow=$(header_of "$W/hdrs" allow)
    expect_match "$m 405 has Allow listing GET and HEAD" 'GET.*HEAD|HEAD.*GET' "$allow"
    if [[ "$allow" == *PUT* ]]; then bad "Allow lists PUT without --allow-put: $allow"; fi
done
fetch /new.txt -X PUT --data-binary "hello"
expect_eq "PUT without --allow-put -> 405" 405 "$CODE"
expect_true "PUT without --allow-put created nothing" test ! -e "$root/new.txt"

# Traversal: each must be refused (400, 403 or 404) and never show the secret.
refused() { # WHAT PATH
    local what=$1 path=$2
    CODE=$(curl -s --path-as-is --max-time 10 -o "$W/trav.body" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT$path") || true
    if grep -qF "$secret" "$W/trav.body" 2>/dev/null; then
        bad "$what ($path) SERVED THE SECRET outside the root (status $CODE)"
    elif [[ "$CODE" =~ ^(400|403|404)$ ]]; then
        good "$what ($path) refused with $CODE"
    else
        bad "$what ($path): expected 400/403/404, saw $CODE"
    fi
}
rel=$(realpath --relative-to="$root" "$W/outside/secret.txt")   # ../outside/secret.txt
refused "plain /../" "/$rel"
refused "/dir/../../" "/dir/../$rel"
refused "%2e%2e" "/%2e%2e/outside/secret.txt"
refused "%2E%2E mixed case" "/dir/%2E%2E/%2e%2E/outside/secret.txt"
refused "encoded slash ..%2f" "/..%2foutside%2fsecret.txt"
refused "encoded slash in a name" "/dir%2f..%2f..%2foutside%2fsecret.txt"
refused "encoded backslash" "/..%5coutside%5csecret.txt"
refused "double-encoded %252e" "/%252e%252e/outside/secret.txt"
refused "NUL byte" "/inside.txt%00.html"
refused "symlink to a file outside" "/link-out.txt"
refused "symlink to a folder outside" "/dir-out/secret.txt"
refused "relative symlink outside" "/dir/rel-out.txt"
refused "absolute-looking path" "//etc/passwd"
# The encoded slash must not be taken as a separator: /dir%2fdeep.txt is
# not /dir/deep.txt.
CODE=$(status_of --path-as-is "http://127.0.0.1:$HTTP_PORT/dir%2fdeep.txt")
expect_ne "encoded slash is not a path separator (/dir%2fdeep.txt)" 200 "$CODE"

# The listing of a folder holding an outward symlink does not open it.
fetch /dir-out/
expect_true "listing through a symlinked folder outside is refused" test "$CODE" != 200

# p is still fine.
fetch /dir/deep.txt
expect_eq "after all that, /dir/deep.txt is served" 200 "$CODE"
finish
