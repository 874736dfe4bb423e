#!/usr/bin/env bash
# Runs each libFuzzer binary for a bounded time (FUZZ_SECONDS, default 20) from its seed corpus
# in tests/fuzz/corpus/<name>/ (read-only; new inputs go to a scratch dir). A crash fails the run.
set -u
secs=${FUZZ_SECONDS:-20}
status=0
for f in "$@"; do
    name=$(basename "$f")
    seeds=tests/fuzz/corpus/$name
    scratch=$(mktemp -d)
    args=("$scratch")
    [ -d "$seeds" ] && args+=("$seeds")
    if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "${args[@]}" >"$scratch.log" 2>&1; then
        echo "fuzz $name: ok ($(grep -Eo 'Done [0-9]+ runs' "$scratch.log" | tail -1))"
    else
        echo "fuzz $name: FAILED"; tail -40 "$scratch.log"; status=1
    fi
    rm -rf "$scratch" "$scratch.log"
done
exit $status
