#!/usr/bin/env bash
# Runs every unit-test binary given, then prints one closing line with the totals.
set -u
passed=0; failed=0; status=0
for t in "$@"; do
    out=$("$t" 2>&1) || status=1
    echo "$out" | sed "s|^tests/unit/|$(basename "$(dirname "$(dirname "$t")")"): |"
    line=$(echo "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    [ -n "$line" ] || { echo "$t: no summary line (crashed?)"; f=1; status=1; p=0; }
    passed=$((passed + p)); failed=$((failed + f))
done
echo "unit: $passed passed, $failed failed"
exit $status
