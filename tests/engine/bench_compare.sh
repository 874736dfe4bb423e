#!/usr/bin/env bash
# bench-local side by side with llama-server on the same model, threads and sequences.
#
#   tests/engine/bench_compare.sh [MODEL.gguf] [PARALLEL] [THREADS] [bench-local options...]
#                                                                       (run from the repo root)
# Builds tools/bench_local.c with a stand-alone main into $OUT (default /tmp/enginebuild/bench),
# starts llama-server on a free port with the context bench-local uses (-c PARALLEL*(512+128+64),
# -np PARALLEL, -t THREADS), and runs the benchmark against both.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-build/models/tiny.gguf}
PAR=${2:-4}
THR=${3:-1}
P=$(scripts/llama.sh --prefix)
OUT=${OUT:-/tmp/enginebuild/bench}
mkdir -p "$OUT"
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -Isrc -I"$P/include" \
   $(pkg-config --cflags jansson libcurl) -o "$OUT/bench_local" \
   tools/bench_local.c tests/engine/bench_main.c src/engine/*.c src/core/buf.c src/core/log.c \
   src/core/result.c src/canon/chat.c src/canon/embed.c src/proto/openai.c src/proto/jsonw.c \
   -L"$P/lib" -Wl,-rpath,"$P/lib" -lllama -lggml -lggml-base \
   $(pkg-config --libs jansson libcurl) -lpthread -lm
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CTX=$((PAR * (512 + 128 + 64)))
"$P/bin/llama-server" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -t "$THR" -fit off \
    -c "$CTX" -np "$PAR" >"$OUT/server.log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
for _ in $(seq 1 1200); do
    curl -sf "127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done
"$OUT/bench_local" --model "$MODEL" --parallel "$PAR" --threads "$THR" --ctx "$CTX" \
    --server "http://127.0.0.1:$PORT" "${@:4}"
