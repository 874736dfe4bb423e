#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests: its own data directory and socket directory under
# /tmp, a free port on 127.0.0.1, trust authentication, fsync off. Nothing outlives `stop`.
#
# Usage:
#   scripts/pg-test.sh start          starts a cluster; prints its URL, one line:
#                                     postgres://pendulum@127.0.0.1:PORT/postgres
#   scripts/pg-test.sh stop URL|DIR   stops that cluster and removes its directory
#   scripts/pg-test.sh run CMD [ARG]  start, run CMD with PENDULUM_TEST_PG_URL set, stop (also
#                                     when CMD fails or is interrupted); exits with CMD's status.
#                                     Without PostgreSQL, CMD runs with the variable unset.
#
# As root the server runs as the `postgres` user (Debian's postgresql package creates it):
# initdb and postgres refuse to run as root.
# Binaries: $PG_BIN, else the newest /usr/lib/postgresql/*/bin, else initdb on the PATH.
# Needs only initdb, pg_ctl and postgres (the superuser is "pendulum", the database initdb's
# "postgres"). Exit status: 0 ok; 2 the PostgreSQL server binaries are absent (tests skip on this);
# 1 anything else (the server log's tail is printed on stderr).
set -euo pipefail

PREFIX=/tmp/pendulum-pg.
PATH=$PATH:/usr/sbin:/sbin  # runuser

find_bin() {
    if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then echo "$PG_BIN"; return 0; fi
    local d
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    return 1
}

# Runs "$@" as the cluster's owner, from the cluster directory ($DIR).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$DIR" && runuser -u postgres -- "$@")
    else
        (cd "$DIR" && "$@")
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints why and the server log's tail, removes the half-made cluster, exits 1.
die() {
    echo "pg-test: $1" >&2
    [ -f "${DIR:-/nonexistent}/log" ] && tail -n 20 "$DIR/log" >&2
    [ -n "${DIR:-}" ] && stop_dir "$DIR"
    exit 1
}

start() {
    local bin
    if ! bin=$(find_bin); then
        echo "pg-test: PostgreSQL server binaries (initdb, pg_ctl) not found" >&2
        exit 2
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "pg-test: running as root needs the 'postgres' user (Debian's postgresql package)" >&2
        exit 1
    fi
    DIR=$(mktemp -d "${PREFIX}XXXXXX")
    chmod 700 "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    as_owner "$bin/initdb" -D "$DIR/data" -U pendulum --auth=trust -E UTF8 --locale=C -N \
        >"$DIR/log" 2>&1 || die "initdb failed"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR/log"  # the server appends to it

    local port="" p opts
    for _ in $(seq 1 20); do
        p=$((20000 + RANDOM % 40000))
        port_in_use "$p" && continue
        opts="-p $p -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        opts+=" -c max_connections=40 -c shared_buffers=16MB"
        if as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 60 -o "$opts" start \
            >/dev/null 2>&1; then
            port=$p
            break
        fi
        grep -q -e 'could not bind' -e 'in use' "$DIR/log" || break
    done
    [ -n "$port" ] || die "the server did not start"
    echo "$port" >"$DIR/port"
    # initdb's own "postgres" database: needs no createdb (which may be absent from PATH).
    echo "postgres://pendulum@127.0.0.1:$port/postgres"
}

stop_dir() {
    DIR=$1
    case "$DIR" in
    "$PREFIX"*) ;;
    *) echo "pg-test: $DIR is not a pg-test cluster" >&2; exit 1 ;;
    esac
    [ -d "$DIR" ] || return 0
    local bin
    if bin=$(find_bin) && [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

# The cluster directory of a URL (by its port) or the directory itself.
dir_of() {
    if [ -d "$1" ]; then echo "$1"; return 0; fi
    local port f
    port=$(sed -E -n 's|.*:([0-9]+)/.*|\1|p' <<<"$1")
    [ -n "$port" ] || return 1
    for f in "$PREFIX"*/port; do
        [ -f "$f" ] && [ "$(cat "$f")" = "$port" ] && { dirname "$f"; return 0; }
    done
    return 1
}

stop() {
    local d
    if ! d=$(dir_of "${1:?usage: pg-test.sh stop URL|DIR}"); then
        echo "pg-test: no cluster for $1" >&2
        exit 1
    fi
    stop_dir "$d"
}

run() {
    [ $# -gt 0 ] || { echo "usage: pg-test.sh run CMD [ARG...]" >&2; exit 1; }
    local status=0
    RUN_URL=$(start) || status=$?
    if [ "$status" -eq 2 ]; then
        "$@"
        return
    fi
    [ "$status" -eq 0 ] || exit "$status"
    trap 'stop "$RUN_URL"' EXIT
    trap 'exit 130' INT TERM
    PENDULUM_TEST_PG_URL=$RUN_URL "$@" || status=$?
    return "$status"
}

case "${1:-}" in
start) start ;;
stop) shift; stop "$@" ;;
run) shift; run "$@" ;;
*) echo "usage: pg-test.sh start | stop URL|DIR | run CMD [ARG...]" >&2; exit 1 ;;
esac
