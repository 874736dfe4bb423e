#!/usr/bin/env bash
# Rebuilds src/pii/names.c, the first-name and surname lists that the PERSON validator checks,
# from the person-name tables of @faker-js/faker (MIT licence; fetched with npm, the only
# registry besides Debian's that the project's machines reach). The output is committed, so a
# normal build needs neither npm nor node; run this only to change the lists.
#
# Usage: src/pii/names/build.sh      (writes src/pii/names.c)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=10.6.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@faker-js/faker@$version" >/dev/null &&
    tar xzf "faker-js-faker-$version.tgz")
node "$here/extract.mjs" "$tmp/package" "$version" >"$here/../names.c.tmp"
mv "$here/../names.c.tmp" "$here/../names.c"
echo "wrote $here/../names.c"
