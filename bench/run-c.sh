#!/usr/bin/env bash
# bench/run-c.sh: builds and runs the in-process C benchmarks against libpendulum.a.
#
#   bench/run-c.sh translate [SECONDS]   dialect translation per request and per stream event
#   bench/run-c.sh route [SECONDS]       routing decision (score + PII scan + policy)
#   bench/run-c.sh ledger_writer [--records N] [--batch B] [--ids gateway|random]
#                                        the SQLite ledger writer's CPU per record
#
# SECONDS: per measurement (default 1.5; each benchmark makes about ten measurements).
# BUILD (default build) is the build directory; the library is made there with the Makefile
# (release variant) and the benchmark binary goes to $BUILD/bench/. LIB_SRC, when set, is
# passed to make (to build the library from a subset of src/). CPUS (default: every online
# CPU, e.g. "0 1"): the benchmark runs once pinned to each (taskset), because the cores of this
# VM do not run at one speed (bench/README.md, "The two cores"); CPUS=any runs it once, unpinned.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
PKGS=(libevent_pthreads libevent libcurl jansson yaml-0.1 sqlite3 libpq libhs)

usage() { echo "usage: bench/run-c.sh translate|route [seconds per measurement] | ledger_writer [options]" >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in translate | route | ledger_writer) ;; *) usage ;; esac
NAME=$1
shift

cd "$ROOT"
case "$BUILD" in /*) OUT=$BUILD ;; *) OUT=$ROOT/$BUILD ;; esac
LIB="$OUT/release/libpendulum.a"
make_args=(-j2 "BUILD=$BUILD")
[ -n "${LIB_SRC:-}" ] && make_args+=("LIB_SRC=$LIB_SRC")
# the target spelled as the Makefile spells it ($(BUILD)/release/...): an absolute path would
# be another target to make, and objects made under one spelling miss the other's dependencies
make "${make_args[@]}" "$BUILD/release/libpendulum.a" >&2

mkdir -p "$OUT/bench"
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -g -Isrc -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla \
    $(pkg-config --cflags "${PKGS[@]}") "bench/$NAME.c" "$LIB" \
    $(pkg-config --libs "${PKGS[@]}") -lpthread -lm -o "$OUT/bench/$NAME"
CPUS=${CPUS:-$(seq -s ' ' 0 $(($(nproc) - 1)))}
if [ "$CPUS" = any ]; then
    exec "$OUT/bench/$NAME" "$@"
fi
for cpu in $CPUS; do
    echo "== pinned to CPU $cpu (taskset -c $cpu) =="
    taskset -c "$cpu" "$OUT/bench/$NAME" "$@"
    echo
done
