#!/usr/bin/env bash
# Trains models/image-rgb.gguf: the image coder's mixers start from the
# weights it ends with on training photographs, averaged (tools/lmc_image_train.c).
# CPU only, deterministic: the same build and images give the same file.
#   train/train_image.sh [BUILD_DIR] [TRAIN_IMAGE_DIR] [OUT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
images=${2:-$root/../shared/train/image}
out=${3:-$root/models/image-rgb.gguf}
cmake --build "$build" --target lmc_image_train >/dev/null
# Every third PNG in name order (72 of the 216 PNGs; the JPEG-only sets are
# left out: their 8x8 block artefacts are not what lossless inputs look like).
mapfile -t chosen < <(ls "$images"/*.png | LC_ALL=C sort | awk 'NR % 3 == 0')
"$build/lmc_image_train" -o "$out" "${chosen[@]}"
