#!/usr/bin/env bash
# Obtain and build the one llama.cpp Pendulum builds against and tests with.
#
# The source is the git bundle shipped inside the npm package node-llama-cpp (the only channel
# that reaches this machine). It is built once into a cache outside the clone, keyed by the
# npm package version, and reused: a second run prints the prefix and exits at once.
#
# Usage: scripts/llama.sh [--prefix]
#   builds if needed and prints the install prefix (bin/llama-server, bin/llama-quantize, lib/libllama.so,
#   include/llama.h, share/vocab/*.gguf) on stdout as its last line; with --prefix it
#   only prints where that prefix is, building nothing.
set -euo pipefail

NLC_VERSION=3.21.1
CACHE_ROOT=${PENDULUM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pendulum}
KEY=llama.cpp-nlc-$NLC_VERSION
PREFIX=$CACHE_ROOT/$KEY
STAMP=$PREFIX/.built

if [ "${1:-}" = --prefix ]; then
    echo "$PREFIX"
    exit 0
fi
if [ -f "$STAMP" ]; then
    echo "$PREFIX"
    exit 0
fi

for tool in npm git cmake c++; do
    command -v "$tool" >/dev/null || { echo "llama.sh: $tool is missing; run scripts/bootstrap.sh" >&2; exit 1; }
done

work=$CACHE_ROOT/$KEY.work
rm -rf "$work"
mkdir -p "$work"
echo "llama.sh: fetching node-llama-cpp@$NLC_VERSION from npm" >&2
(cd "$work" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null)
tar -xzf "$work/node-llama-cpp-$NLC_VERSION.tgz" -C "$work" package/llama/gitRelease.bundle
git clone -q "$work/package/llama/gitRelease.bundle" "$work/src" 2>/dev/null
echo "llama.sh: building llama.cpp $(git -C "$work/src" rev-parse --short HEAD) (about 5 minutes)" >&2
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DGGML_NATIVE=ON \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH="$PREFIX/lib" >"$work/cmake.log" 2>&1 \
    || { tail -30 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" -j"$(nproc)" --target llama llama-server llama-quantize \
    >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
mkdir -p "$PREFIX/bin" "$PREFIX/lib" "$PREFIX/include" "$PREFIX/share/vocab"
cp -a "$work/build/bin/llama-server" "$work/build/bin/llama-quantize" "$PREFIX/bin/"
cp -a "$work/build/bin/"*.so* "$PREFIX/lib/" 2>/dev/null || true
find "$work/build" -name '*.so*' -path '*/src/*' -exec cp -a {} "$PREFIX/lib/" \;
find "$work/build" -name '*.so*' -path '*/ggml/*' -exec cp -a {} "$PREFIX/lib/" \;
cp -a "$work/src/include/"*.h "$work/src/ggml/include/"*.h "$PREFIX/include/"
cp -a "$work/src/models/"ggml-vocab-*.gguf "$PREFIX/share/vocab/"
git -C "$work/src" rev-parse HEAD >"$PREFIX/COMMIT"
rm -rf "$work"
touch "$STAMP"
echo "$PREFIX"
