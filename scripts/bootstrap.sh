#!/usr/bin/env bash
# Install the Debian packages Pendulum's build, tests and benchmarks need, and only those missing.
#
# Why a script and not a README line: machines (developers' and CI's) are handed over fresh, so
# whatever the project needs must be installed by its own files; `make deps` (and so `make test`
# and `make run`) calls this first. It must therefore cost nothing when all is present: one
# dpkg-query for all packages, no apt-get, no output.
#
# Usage: scripts/bootstrap.sh
# Exit status: 0 when everything is present (or was installed), 1 when something is missing and
# we are not root (the exact command to run is printed), or when apt-get failed (its log tail is
# printed).
set -euo pipefail

# build-essential pkg-config: compile; libevent/libcurl/jansson/yaml: Pendulum's libraries;
# clang + libclang-rt-dev: the fuzzers (clang only recommends the libFuzzer/sanitizer runtimes,
# which --no-install-recommends would skip); cmake git: llama.cpp (scripts/llama.sh);
# wrk nginx-light: bench; curl ca-certificates: scripts and npm; sqlite3/libpq: the ledger;
# postgresql: the ledger's tests (a throwaway cluster); prometheus: promtool checks /metrics;
# libvectorscan-dev: the PII scanner; libpcre2-dev: its naive baseline in bench/pii;
# chromium: the web page's test (driven by playwright-core from npm).
PACKAGES=(build-essential pkg-config clang libclang-rt-dev libevent-dev libcurl4-openssl-dev
          libjansson-dev libyaml-dev cmake git wrk nginx-light curl ca-certificates
          libsqlite3-dev libpq-dev postgresql prometheus libvectorscan-dev libpcre2-dev chromium)

# node and npm may come from elsewhere than Debian (e.g. nodesource's nodejs bundles npm, and
# Debian's npm would conflict with it): install Debian's only when the command is missing.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

# Prints the packages of "$@" that are not fully installed, one per line. dpkg-query prints
# nothing for a package it has never heard of, so absence from its output also means missing.
missing_packages() {
    local installed
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
                awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }') || true
    local p
    for p in "$@"; do
        grep -qx -- "$p" <<<"$installed" || echo "$p"
    done
}

mapfile -t MISSING < <(missing_packages "${PACKAGES[@]}")
[ "${#MISSING[@]}" -eq 0 ] && exit 0

CMD="apt-get update && apt-get install -y --no-install-recommends ${MISSING[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing packages: ${MISSING[*]}; run as root:" >&2
    echo "  $CMD" >&2
    exit 1
fi

LOG=$(mktemp "${TMPDIR:-/tmp}/pendulum-bootstrap.XXXXXX.log")
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update && apt-get install -y --no-install-recommends "${MISSING[@]}"; } >"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    echo "bootstrap: '$CMD' failed; full log in $LOG" >&2
    exit 1
fi
rm -f "$LOG"
echo "bootstrap: installed ${MISSING[*]}"
