#!/usr/bin/env bash
# Builds the engine tests and runs them against the pinned llama-server on the same model.
#
#   tests/engine/run.sh [MODEL.gguf]        (default build/models/tiny.gguf; run from the repo root)
#
# Builds into $OUT (default /tmp/enginebuild/tests), starts llama-server twice on free
# 127.0.0.1 ports (chat: -c 2048 -np 1 -t 1; embeddings: --embeddings --pooling mean), runs
# test_text, test_hugepages and test_engine, stops the servers. Exit status: 0 when every test passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-build/models/tiny.gguf}
P=$(scripts/llama.sh --prefix)
OUT=${OUT:-/tmp/enginebuild/tests}
mkdir -p "$OUT"
CF=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wvla -O2 -g -Isrc -Itests/unit
    -I"$P/include" $(pkg-config --cflags jansson libcurl))
SRC=(src/engine/*.c src/core/arena.c src/core/buf.c src/core/log.c src/core/result.c
     src/canon/chat.c src/canon/embed.c src/proto/openai.c src/proto/fastev.c src/proto/jsonr.c src/proto/jsonw.c
     src/proto/sse.c)
LIBS=(-L"$P/lib" -Wl,-rpath,"$P/lib" -lllama -lggml -lggml-base
      $(pkg-config --libs jansson libcurl) -lpthread -lm)
cc "${CF[@]}" ${EXTRA_CFLAGS:-} -o "$OUT/test_text" tests/engine/test_text.c "${SRC[@]}" "${LIBS[@]}"
cc "${CF[@]}" ${EXTRA_CFLAGS:-} -o "$OUT/test_engine" tests/engine/test_engine.c "${SRC[@]}" "${LIBS[@]}"
cc "${CF[@]}" ${EXTRA_CFLAGS:-} -o "$OUT/test_hugepages" tests/engine/test_hugepages.c "${SRC[@]}" "${LIBS[@]}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start_server() { # port args...
    local port=$1; shift
    "$P/bin/llama-server" -m "$MODEL" --host 127.0.0.1 --port "$port" -t 1 -fit off "$@" \
        >"$OUT/server-$port.log" 2>&1 &
    pids+=($!)
}
wait_healthy() {
    for _ in $(seq 1 300); do
        curl -sf "127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "llama-server on port $1 did not start; see $OUT/server-$1.log" >&2
    return 1
}
CHAT=$(free_port); start_server "$CHAT" -c 2048 -np 1
EMB=$(free_port); start_server "$EMB" -c 2048 -np 1 --embeddings --pooling mean
wait_healthy "$CHAT"; wait_healthy "$EMB"

status=0
"$OUT/test_text" "$MODEL" || status=1
"$OUT/test_hugepages" || status=1
"$OUT/test_engine" "$MODEL" "http://127.0.0.1:$CHAT" "http://127.0.0.1:$EMB" || status=1
exit $status
