#!/usr/bin/env bash
# SC2317: functions run from traps look unreachable; SC2016: ${VAR} in single quotes is meant for
# Pendulum's config loader, which expands it, so that keys are never written to disk.
# shellcheck disable=SC2317,SC2016
#
# The demo behind `make run`: Pendulum in front of a local llama-server, plus whatever cloud
# providers the environment has keys for.
#
# 1. starts the pinned llama-server (scripts/llama.sh) on a free 127.0.0.1 port, serving
#    build/models/tiny.gguf (random weights, see docs/models.md) or $LOCAL_MODEL, and waits
#    until its /health says ok;
# 2. writes build/demo.yaml: provider+model `local`, and one provider with its usual models per
#    API key found (keys are referenced as ${VAR}, never copied into the file);
# 3. runs PENDULUM_BIN serve --config build/demo.yaml in the foreground until it exits or the
#    user presses Ctrl-C, and then stops llama-server.
#
# Why pendulum is a child and not exec'd: after an exec no trap can run, and llama-server would
# outlive the gateway. The script waits on it instead, forwards INT/TERM/HUP to it, and stops
# llama-server on every way out (EXIT trap).
#
# Usage: scripts/run-demo.sh PENDULUM_BIN
# Environment:
#   PORT=8080            where Pendulum listens (127.0.0.1)
#   LOCAL_MODEL=FILE     a real GGUF to serve instead of the random-weight tiny model
#   LOCAL_CTX=N          llama-server context size (default: the tiny model's own 2048, or 4096
#                        for LOCAL_MODEL, whose trained context may need gigabytes of KV cache)
#   LOCAL_THREADS=N      llama-server threads (default: 1 for the tiny model, llama-server's own
#                        choice for LOCAL_MODEL)
#   LLAMA_PORT=N         llama-server's port (default: a free one)
#   HEALTH_TIMEOUT=S     how long to wait for llama-server to load the model (default 120)
#   OPENAI_API_KEY [OPENAI_BASE_URL], ANTHROPIC_API_KEY, CO_API_KEY: cloud providers
set -euo pipefail

die() { echo "run-demo: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: scripts/run-demo.sh PENDULUM_BIN" >&2; exit 2; }

# Resolve paths given relative to the caller's directory before moving to the repository root.
abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }
PENDULUM_BIN=$1
case $PENDULUM_BIN in */*) PENDULUM_BIN=$(abspath "$PENDULUM_BIN") ;; esac
[ -x "$PENDULUM_BIN" ] || command -v "$PENDULUM_BIN" >/dev/null || die "$1 is not executable"
if [ -n "${LOCAL_MODEL:-}" ]; then
    [ -f "$LOCAL_MODEL" ] || die "LOCAL_MODEL=$LOCAL_MODEL: no such file"
    LOCAL_MODEL=$(abspath "$LOCAL_MODEL")
fi

cd "$(dirname "$0")/.."
mkdir -p build

PREFIX=$(scripts/llama.sh --prefix)
LLAMA_SERVER=$PREFIX/bin/llama-server
[ -x "$LLAMA_SERVER" ] || die "$LLAMA_SERVER is missing: run 'make llama' first"

# The tiny model runs on one thread: it is too small to gain from two, and on a busy 2-core
# machine ggml's spinning thread pool then drops from ~1000 to ~10 tokens/s. Its memory needs
# are known, so llama-server's --fit probing (an extra pass over the model) is skipped too.
if [ -n "${LOCAL_MODEL:-}" ]; then
    MODEL=$LOCAL_MODEL
    ALIAS=$(basename "$MODEL" .gguf)
    LLAMA_ARGS=(-c "${LOCAL_CTX:-4096}")
    [ -z "${LOCAL_THREADS:-}" ] || LLAMA_ARGS+=(-t "$LOCAL_THREADS")
else
    MODEL=build/models/tiny.gguf
    ALIAS=tiny-local
    LLAMA_ARGS=(-c "${LOCAL_CTX:-0}" -t "${LOCAL_THREADS:-1}" -fit off) # -c 0: the model's own
    [ -f "$MODEL" ] || die "$MODEL is missing: run 'make model' first"
fi

PORT=${PORT:-8080}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-120}
LLAMA_LOG=build/llama-server.log
CONFIG=build/demo.yaml

# ---- child processes and their cleanup ------------------------------------------------------

LLAMA_PID=
PD_PID=

# Stops a child politely, then for good after 10 s: a stuck child must not hang the terminal.
stop_child() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    trap - EXIT INT TERM HUP
    if [ -n "$PD_PID" ]; then stop_child "$PD_PID"; fi
    if [ -n "$LLAMA_PID" ]; then stop_child "$LLAMA_PID"; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

# ---- llama-server ---------------------------------------------------------------------------

# True when nothing accepts connections on 127.0.0.1:$1 (bash's /dev/tcp: no extra tools).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + RANDOM % 40000))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

# Starts llama-server on $1 and waits for /health; returns 1 if it died (log in $LLAMA_LOG).
start_llama() {
    local port=$1 args deadline
    args=(-m "$MODEL" --host 127.0.0.1 --port "$port" --alias "$ALIAS" "${LLAMA_ARGS[@]}")
    "$LLAMA_SERVER" "${args[@]}" >"$LLAMA_LOG" 2>&1 &
    LLAMA_PID=$!
    deadline=$((SECONDS + HEALTH_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$LLAMA_PID" 2>/dev/null; then
            wait "$LLAMA_PID" 2>/dev/null || true
            LLAMA_PID=
            return 1
        fi
        curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && return 0
        sleep 0.1
    done
    die "llama-server did not become healthy within ${HEALTH_TIMEOUT}s (log: $LLAMA_LOG)"
}

port_free "$PORT" || die "127.0.0.1:$PORT is already in use: choose another with PORT=N make run"

# A random port may be taken between the check and llama-server's bind: retry a few times.
LLAMA_STARTED=
for attempt in 1 2 3; do
    LLAMA_PORT=${LLAMA_PORT:-$(pick_port)} || die "no free port found for llama-server"
    if start_llama "$LLAMA_PORT"; then LLAMA_STARTED=1; break; fi
    grep -qi "bind\|address already in use" "$LLAMA_LOG" || break
    echo "run-demo: port $LLAMA_PORT was taken, retrying ($attempt)" >&2
    LLAMA_PORT=
done
if [ -z "$LLAMA_STARTED" ]; then
    tail -n 20 "$LLAMA_LOG" >&2
    die "llama-server failed to start (log: $LLAMA_LOG)"
fi

# ---- configuration --------------------------------------------------------------------------

CLOUD=()

# Appends one provider block per API key present; the models go to $MODELS_YAML.
write_cloud_providers() {
    if [ -n "${OPENAI_API_KEY:-}" ]; then
        printf '  - name: openai\n    kind: openai\n    api_key: "${OPENAI_API_KEY}"\n'
        [ -z "${OPENAI_BASE_URL:-}" ] || printf '    base_url: "${OPENAI_BASE_URL}"\n'
    fi
    if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
        printf '  - name: anthropic\n    kind: anthropic\n    api_key: "${ANTHROPIC_API_KEY}"\n'
    fi
    if [ -n "${CO_API_KEY:-}" ]; then
        printf '  - name: cohere\n    kind: cohere\n    api_key: "${CO_API_KEY}"\n'
    fi
}

model_yaml() { printf '  - name: %s\n    provider: %s\n    upstream_model: %s\n' "$1" "$2" "${3:-$1}"; }

write_cloud_models() {
    if [ -n "${OPENAI_API_KEY:-}" ]; then
        model_yaml gpt-4o openai
        model_yaml gpt-4o-mini openai
        CLOUD+=("openai: gpt-4o, gpt-4o-mini")
    fi
    if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
        model_yaml claude-sonnet-4-0 anthropic
        CLOUD+=("anthropic: claude-sonnet-4-0 (served once the anthropic adapter lands)")
    fi
    if [ -n "${CO_API_KEY:-}" ]; then
        model_yaml command-r-plus cohere
        CLOUD+=("cohere: command-r-plus (served once the cohere adapter lands)")
    fi
}

write_config() {
    {
        echo "# Written by scripts/run-demo.sh; overwritten on every 'make run'."
        echo "listen: 127.0.0.1:$PORT"
        echo "providers:"
        printf '  - name: local\n    kind: openai\n    base_url: http://127.0.0.1:%s/v1\n' "$LLAMA_PORT"
        write_cloud_providers
        echo "models:"
        model_yaml local local "$ALIAS"
    } >"$CONFIG.tmp"
    # In this shell, not a $(...) subshell, so that CLOUD is filled for the banner.
    write_cloud_models >>"$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
}

banner() {
    echo "Pendulum demo"
    echo "  gateway : http://127.0.0.1:$PORT   (config $CONFIG)"
    echo "  local   : model 'local' -> llama-server 127.0.0.1:$LLAMA_PORT serving $MODEL (log $LLAMA_LOG)"
    if [ -z "${LOCAL_MODEL:-}" ]; then
        echo "            NOTE: this model has RANDOM WEIGHTS: its output is meaningless text. It is"
        echo "            there to exercise the gateway. To serve a real model instead:"
        echo "              LOCAL_MODEL=/path/to/model.gguf make run"
    fi
    if [ "${#CLOUD[@]}" -eq 0 ]; then
        echo "  cloud   : none (set OPENAI_API_KEY, ANTHROPIC_API_KEY or CO_API_KEY to add one)"
    else
        local c
        for c in "${CLOUD[@]}"; do echo "  cloud   : $c"; done
    fi
    echo "  try     : curl -s http://127.0.0.1:$PORT/v1/chat/completions -H 'content-type: application/json' \\"
    echo "              -d '{\"model\":\"local\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'"
    echo "  Ctrl-C stops the gateway and llama-server."
}

write_config
banner

"$PENDULUM_BIN" serve --config "$CONFIG" &
PD_PID=$!
rc=0
wait "$PD_PID" || rc=$?
PD_PID=
exit "$rc"
