#!/usr/bin/env bash
# The demo behind `make run`: Pendulum with its embedded llama.cpp engine serving a local model,
# plus a cloud provider for every API key found in the environment.
#
# 1. writes build/demo.yaml: provider `local` (kind llama: the engine inside the gateway) serving
#    build/models/tiny.gguf (random weights, a real tokenizer: docs/models.md) or $LOCAL_MODEL,
#    as the model `local`; one provider and its usual models per API key
#    (OPENAI_API_KEY, ANTHROPIC_API_KEY, CO_API_KEY);
# 2. runs `pendulum serve` in the foreground until Ctrl-C (pendulum drains and exits).
#
# Keys are written as ${VAR} references, expanded by the config loader: never to disk.
#
# Environment:
#   PORT=N               gateway port (default 8080)
#   LOCAL_MODEL=F.gguf   a real GGUF model instead of the tiny random one
#   LOCAL_CTX=N          context size (default: the model's own)
#   LOCAL_THREADS=N      inference threads (default: 1 for the tiny model, else one per core)
set -euo pipefail

die() { echo "run-demo: $*" >&2; exit 1; }
[ $# -eq 1 ] || { echo "usage: scripts/run-demo.sh PENDULUM_BIN" >&2; exit 2; }

abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }
PENDULUM_BIN=$1
case $PENDULUM_BIN in */*) PENDULUM_BIN=$(abspath "$PENDULUM_BIN") ;; esac
[ -x "$PENDULUM_BIN" ] || command -v "$PENDULUM_BIN" >/dev/null || die "$1 is not executable"
if [ -n "${LOCAL_MODEL:-}" ]; then
    [ -f "$LOCAL_MODEL" ] || die "LOCAL_MODEL=$LOCAL_MODEL: no such file"
    MODEL=$(abspath "$LOCAL_MODEL")
    THREADS=${LOCAL_THREADS:-0}
fi

cd "$(dirname "$0")/.."
mkdir -p build
if [ -z "${LOCAL_MODEL:-}" ]; then
    MODEL=$(pwd)/build/models/tiny.gguf
    [ -f "$MODEL" ] || die "$MODEL is missing: run 'make model' first"
    THREADS=${LOCAL_THREADS:-1} # the tiny model gains nothing from a second thread
fi
PORT=${PORT:-8080}
CONFIG=build/demo.yaml
CLOUD=()

model_yaml() { printf '  - { name: %s, provider: %s, upstream_model: %s }\n' "$1" "$2" "${3:-$1}"; }

write_cloud_providers() {
    if [ -n "${OPENAI_API_KEY:-}" ]; then
        printf '  - { name: openai, kind: openai, api_key: "${OPENAI_API_KEY}"'
        [ -z "${OPENAI_BASE_URL:-}" ] || printf ', base_url: "${OPENAI_BASE_URL}"'
        printf ' }\n'
    fi
    [ -z "${ANTHROPIC_API_KEY:-}" ] || printf '  - { name: anthropic, kind: anthropic, api_key: "${ANTHROPIC_API_KEY}" }\n'
    [ -z "${CO_API_KEY:-}" ] || printf '  - { name: cohere, kind: cohere, api_key: "${CO_API_KEY}" }\n'
}

write_cloud_models() {
    if [ -n "${OPENAI_API_KEY:-}" ]; then
        model_yaml gpt-4o openai
        model_yaml gpt-4o-mini openai
        CLOUD+=("openai: gpt-4o, gpt-4o-mini")
    fi
    if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
        model_yaml claude-sonnet-4-0 anthropic
        CLOUD+=("anthropic: claude-sonnet-4-0")
    fi
    if [ -n "${CO_API_KEY:-}" ]; then
        model_yaml command-r-plus cohere
        CLOUD+=("cohere: command-r-plus")
    fi
}

write_config() {
    {
        echo "# Written by scripts/run-demo.sh; overwritten on every 'make run'."
        echo "listen: 127.0.0.1:$PORT"
        echo "providers:"
        printf '  - { name: local, kind: llama, model_path: "%s", ctx_size: %s, threads: %s }\n' \
            "$MODEL" "${LOCAL_CTX:-0}" "$THREADS"
        write_cloud_providers
        echo "models:"
        model_yaml local local
    } >"$CONFIG.tmp"
    write_cloud_models >>"$CONFIG.tmp" # in this shell, so that CLOUD is filled for the banner
    mv "$CONFIG.tmp" "$CONFIG"
}

banner() {
    echo "Pendulum demo"
    echo "  gateway : http://127.0.0.1:$PORT   (config $CONFIG; /ui for the dashboard)"
    echo "  local   : model 'local' -> the embedded llama.cpp engine serving $MODEL"
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
    echo "  Ctrl-C stops the gateway."
}

write_config
banner
exec "$PENDULUM_BIN" serve --config "$CONFIG"
