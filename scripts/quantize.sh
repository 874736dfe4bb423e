#!/usr/bin/env bash
# Quantize a GGUF with the pinned llama.cpp's llama-quantize (scripts/llama.sh), e.g. a model
# made by build/mkmodel, to test Pendulum against the quantized formats people actually serve.
#
# Usage: scripts/quantize.sh IN.gguf OUT.gguf TYPE
#   TYPE: any llama-quantize type name, e.g. Q4_K_M, Q8_0, Q5_K_M, F16.
# Environment: QUANT_THREADS (default 2: the machines are small and shared).
# The output is written to OUT.tmp and renamed when complete; llama-quantize's log goes to
# OUT.log and is shown only on failure. On success prints one line: type, size and time.
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: scripts/quantize.sh IN.gguf OUT.gguf TYPE" >&2; exit 2; }
IN=$1 OUT=$2 TYPE=$3
[ -f "$IN" ] || { echo "quantize: $IN: no such file" >&2; exit 1; }

PREFIX=$("$(dirname "$0")/llama.sh" --prefix)
QUANTIZE=$PREFIX/bin/llama-quantize
[ -x "$QUANTIZE" ] || { echo "quantize: $QUANTIZE is missing: run 'make llama' first" >&2; exit 1; }

LOG=$OUT.log
start=$(date +%s.%N)
if ! "$QUANTIZE" "$IN" "$OUT.tmp" "$TYPE" "${QUANT_THREADS:-2}" >"$LOG" 2>&1; then
    rm -f "$OUT.tmp"
    tail -n 20 "$LOG" >&2
    echo "quantize: llama-quantize $TYPE failed (log: $LOG)" >&2
    exit 1
fi
mv "$OUT.tmp" "$OUT"
rm -f "$LOG"
end=$(date +%s.%N)
awk -v o="$OUT" -v t="$TYPE" -v a="$(stat -c %s "$IN")" -v b="$(stat -c %s "$OUT")" \
    -v s="$start" -v e="$end" \
    'BEGIN { printf "quantize: wrote %s (%s): %.1f MB -> %.1f MB in %.1f s\n", o, t, a/1e6, b/1e6, e-s }'
