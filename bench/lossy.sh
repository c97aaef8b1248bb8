#!/usr/bin/env bash
# lmc's bounded-error mode over the corpus (bench/lossy.md):
#   1. `lmc bench --lossy` on every corpus image, video and audio file: lmc at
#      --max-error 1, 2, 4, 8 (each decoded and its largest error checked
#      against D: the run fails otherwise) beside JPEG-LS near-lossless,
#      cjxl -d, x264 and x265 by CRF; table, CSV and one SVG plot per kind;
#   2. the bound checked again from the CSV, independently of lmc's table;
#   3. the PSNR of one clip (lmc D=1 and x265 CRF 8) measured by ffmpeg's psnr
#      filter beside our own computation, to show the two agree;
#   4. the tables of bench/lossy.md (bench/lossy_summary.py).
#   bench/lossy.sh [BUILD_DIR] [CORPUS_DIR]   (one thread, nice; ~70 min)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
corpus=${2:-$root/../shared/corpus}
out=$root/bench/results
mkdir -p "$out"
export PATH="$build:$PATH" # lmc_jpegls, when built with CharLS

nice -n 10 "$build/lmc" bench --lossy -T 1 --csv "$out/lossy.csv" --svg "$root/bench/lossy.svg" \
  "$corpus/image" "$corpus/video" "$corpus/audio" | tee "$out/lossy.txt"

echo "== the bound, from the CSV (lmc rows: max_error <= D)"
/usr/bin/python3 - "$out/lossy.csv" <<'EOF'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["codec"].startswith("lmc")]
bad = [r for r in rows if r["ok"] != "1" or int(r["max_error"]) > int(r["setting"])]
print(f"{len(rows)} lmc points on {len({r['file'] for r in rows})} files; within the bound: {len(rows) - len(bad)}")
for r in bad:
    print("VIOLATION", r["file"], "D =", r["setting"], "max error", r["max_error"])
sys.exit(1 if bad else 0)
EOF

echo "== PSNR cross-check with ffmpeg's psnr filter (foreman_cif_2f)"
clip=$corpus/video/foreman_cif_2f.y4m
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
nice -n 10 "$build/lmc" compress -q -T 1 --max-error 1 -o "$scratch/d1.lmc" "$clip"
nice -n 10 "$build/lmc" decompress -q -T 1 -o "$scratch/d1.y4m" "$scratch/d1.lmc"
"$build/lmc" info "$scratch/d1.lmc" | grep lossy
nice -n 10 ffmpeg -nostdin -loglevel error -f yuv4mpegpipe -i "$clip" -threads 1 -c:v libx265 -preset veryslow \
  -crf 8 -x265-params pools=1:frame-threads=1:log-level=error -f hevc -y "$scratch/x265.hevc"
ffmpeg -nostdin -loglevel error -f hevc -i "$scratch/x265.hevc" -f yuv4mpegpipe -y "$scratch/x265.y4m"
for decoded in "$scratch/d1.y4m" "$scratch/x265.y4m"; do
  ffmpeg -nostdin -hide_banner -i "$decoded" -i "$clip" -lavfi psnr -f null - 2>&1 | grep -o "PSNR y.*" |
    sed "s|^|$(basename "$decoded"): ffmpeg |"
  /usr/bin/python3 - "$clip" "$decoded" <<'EOF'
import sys, numpy as np
def planes(path):
    data = open(path, "rb").read()
    head, rest = data.split(b"\n", 1)
    w = int([t for t in head.split() if t.startswith(b"W")][0][1:])
    h = int([t for t in head.split() if t.startswith(b"H")][0][1:])
    frame = w * h * 3 // 2
    out = []
    while rest.startswith(b"FRAME"):
        rest = rest.split(b"\n", 1)[1]
        out.append(np.frombuffer(rest[:frame], np.uint8))
        rest = rest[frame:]
    return np.concatenate(out).astype(np.int64)
a, b = planes(sys.argv[1]), planes(sys.argv[2])
mse = ((a - b) ** 2).mean()
print(f"{sys.argv[2].split('/')[-1]}: ours PSNR {10 * np.log10(255 ** 2 / mse):.2f} dB, max error {abs(a - b).max()}")
EOF
done

echo "== summary"
/usr/bin/python3 "$root/bench/lossy_summary.py" "$out/lossy.csv" | tee "$out/lossy-summary.md"
