#!/usr/bin/env bash
# Stages what bench/device_corpus.sh needs into .device/ (git-ignored): a
# static lmc, the corpus, and stories260K converted to GGUF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stage=$root/.device
# Only what this script makes is replaced: other staged data (train/) stays.
rm -rf "$stage/bin" "$stage/models" "$stage/corpus" && mkdir -p "$stage/bin" "$stage/models"
# The objects of a normal build, linked statically by hand (pkg-config's
# imported targets name the shared libraries).
cmake -S "$root" -B "$root/build-static" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$root/build-static" -j2 --target lmc lmc_llama2c_to_gguf >/dev/null
gcc -static -o "$stage/bin/lmc" "$root"/build-static/CMakeFiles/lmc.dir/src/cli/*.o "$root/build-static/liblmc.a" \
  -l:libxxhash.a -l:libpcre2-8.a -l:libpng16.a -l:libz.a -lpthread -lm
cp -r "$root/../shared/corpus" "$stage/corpus"
rm -f "$stage/corpus"/*.md "$stage/corpus"/*.csv
"$root/build-static/lmc_llama2c_to_gguf" "$root/../shared/peer/llama2c/stories260K.bin" \
  "$root/../shared/peer/llama2c/tok512.bin" "$stage/models/stories260K.gguf"
du -sh "$stage"
