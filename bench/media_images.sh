#!/usr/bin/env bash
# Per image: lmc archive bytes, compress and decompress seconds, and whether
# the decoded PNG has the original's pixels (python3 with PIL).
#   bench/media_images.sh [BUILD_DIR] [IMAGE_DIR] > results.txt
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lmc=${1:-$root/build}/lmc
images=${2:-$root/../shared/corpus/image}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for f in "$images"/*.png; do
  b=$(basename "$f" .png)
  s=$(date +%s.%N); "$lmc" compress -q -f -T 2 -c "$f" > "$scratch/$b.lmc"; m=$(date +%s.%N)
  "$lmc" decompress -q -T 2 -c "$scratch/$b.lmc" > "$scratch/$b.png"; e=$(date +%s.%N)
  same=$(/usr/bin/python3 -c "import sys, numpy; from PIL import Image
print((numpy.asarray(Image.open(sys.argv[1])) == numpy.asarray(Image.open(sys.argv[2]))).all())" "$f" "$scratch/$b.png")
  echo "$b $(stat -c %s "$scratch/$b.lmc") $(echo "$m - $s" | bc) $(echo "$e - $m" | bc) $same"
done
