#!/usr/bin/env bash
# Makes the golden archives from the originals in this folder: with each
# shipped model that fits the originals, with --fast, and with stories260K
# converted from ../shared (the converter is deterministic, so the same
# model hash is reproduced wherever ../shared exists).
#   tests/golden/make_archives.sh BUILD_DIR [VERSION ORIGINAL...]
# Run only when adding a new golden set: existing archives must never change.
# Sets: v1 (2026-11, every original); v2 (2026-12-07, video.y4m: video
# layout 5, lmc at 6bca124; audio.wav: audio model version 2,
# audio-pcm-v2, lmc at b616ecc; default model only); v3 (2026-12-07,
# sample.txt and bytes.bin: the mixed codec's second model, codec 4, lmc at
# 5e5051c); v4 (2026-12-07, lanes.txt: the mixed codec in lanes, codec 5, two
# lanes; lanes.txt is the first 32,000 bytes of docs/FORMAT.md at 7e83123);
# v5 (2026-12-07, lanes.txt: numerics v2, windows slide their caches and
# activations are 7-bit, two lanes); v6 (2026-12-07, lanes.txt: numerics v3,
# int8 attention, two lanes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: make_archives.sh BUILD_DIR [VERSION ORIGINAL...]}
lmc=$build/lmc
version=${2:-v1}
if [ $# -gt 2 ]; then
  originals=("${@:3}")
else
  originals=(sample.txt bytes.bin image.ppm audio.wav video.y4m)
fi
for original in "${originals[@]}"; do
  "$lmc" compress -q -f -o "$here/$version-$original.default.lmc" "$here/$original"
  # --fast codes every kind as bytes: v1's archives cover it.
  [ "$version" = v1 ] && "$lmc" compress -q -f --fast -o "$here/$version-$original.fast.lmc" "$here/$original"
done
shared=$here/../../../shared/peer/llama2c
if [ -d "$shared" ] && [ "$version" = v1 ]; then
  tmp=$(mktemp -d)
  "$build/lmc_llama2c_to_gguf" "$shared/stories260K.bin" "$shared/tok512.bin" "$tmp/stories260K.gguf"
  "$lmc" compress -q -f -m "$tmp/stories260K.gguf" -o "$here/$version-sample.txt.stories260K.lmc" "$here/sample.txt"
  rm -rf "$tmp"
fi
ls -l "$here"/*.lmc
