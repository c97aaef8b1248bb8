#!/usr/bin/env bash
# Makes the golden archives from the originals in this folder: with each
# shipped model that fits the originals, with --fast, and with stories260K
# converted from ../shared (the converter is deterministic, so the same
# model hash is reproduced wherever ../shared exists).
#   tests/golden/make_archives.sh BUILD_DIR
# Run only when adding a new golden set: existing archives must never change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: make_archives.sh BUILD_DIR}
lmc=$build/lmc
originals=(sample.txt bytes.bin image.ppm audio.wav video.y4m)
version=v1
for original in "${originals[@]}"; do
  "$lmc" compress -q -f -o "$here/$version-$original.default.lmc" "$here/$original"
  "$lmc" compress -q -f --fast -o "$here/$version-$original.fast.lmc" "$here/$original"
done
shared=$here/../../../shared/peer/llama2c
if [ -d "$shared" ]; then
  tmp=$(mktemp -d)
  "$build/lmc_llama2c_to_gguf" "$shared/stories260K.bin" "$shared/tok512.bin" "$tmp/stories260K.gguf"
  "$lmc" compress -q -f -m "$tmp/stories260K.gguf" -o "$here/$version-sample.txt.stories260K.lmc" "$here/sample.txt"
  rm -rf "$tmp"
fi
ls -l "$here"/*.lmc
