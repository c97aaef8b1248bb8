#!/usr/bin/env bash
# The main job: build lmc, then compress and decompress a shipped sample with
# the default model, printing sizes, ratio and speed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" build
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$root/build" -j"$(nproc)" >/dev/null
lmc="$root/build/lmc"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sample="$root/samples/sample.txt"
"$lmc" models
echo
"$lmc" compress -v -o "$work/sample.txt.lmc" "$sample"
"$lmc" decompress -v -o "$work/sample.txt" "$work/sample.txt.lmc"
cmp "$sample" "$work/sample.txt"
"$lmc" info "$work/sample.txt.lmc"
echo "round trip OK: $(stat -c %s "$sample") -> $(stat -c %s "$work/sample.txt.lmc") bytes"
