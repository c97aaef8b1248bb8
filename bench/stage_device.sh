#!/usr/bin/env bash
# Stages what bench/device_corpus.sh needs into .device/ (git-ignored): a
# static lmc, the corpus, and stories260K converted to GGUF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stage=$root/.device
rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/models"
cmake -S "$root" -B "$root/build-static" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_EXE_LINKER_FLAGS=-static >/dev/null
cmake --build "$root/build-static" -j2 --target lmc lmc_llama2c_to_gguf >/dev/null
cp "$root/build-static/lmc" "$stage/bin/"
cp -r "$root/../shared/corpus" "$stage/corpus"
rm -f "$stage/corpus"/*.md "$stage/corpus"/*.csv
"$root/build-static/lmc_llama2c_to_gguf" "$root/../shared/peer/llama2c/stories260K.bin" \
  "$root/../shared/peer/llama2c/tok512.bin" "$stage/models/stories260K.gguf"
du -sh "$stage"
