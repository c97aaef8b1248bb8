#!/bin/bash
# Bounded-error mode through the CLI: `lmc compress --max-error D` on a PPM
# image, a Y4M clip and a WAV recording; `lmc info` shows D and the PSNR;
# `lmc test` passes; the decompressed file is of the same format with every
# sample within D and the PSNR info showed (checked by a plain python3
# reader of PNM, Y4M and WAV); D = 0 is the lossless archive byte for byte;
# the input is kept unless --rm, which removes it only after a full decode;
# non-media input, --fast and bad values are refused; a damaged lossy
# archive is refused; `lmc bench --lossy` writes its table, CSV and SVG on a
# tiny image. Skips (77) without the image-rgb model or python3.
source "$(dirname "$0")/helpers.bash" "$@"

"$LMC" models 2>/dev/null | awk 'NR > 1 && $1 == "image-rgb" { found = 1 } END { exit !found }' ||
    skip "lmc models does not list image-rgb"
command -v python3 >/dev/null || skip "python3 checks the decoded samples"

# raster WIDTH HEIGHT CHANNELS: bytes of ramps with texture.
raster() {
    LC_ALL=C awk -v w="$1" -v h="$2" -v c="$3" 'BEGIN {
        for (y = 0; y < h; y++) for (x = 0; x < w; x++) for (k = 0; k < c; k++)
            printf "%c", (x * 5 + y * 3 + k * 60 + (x * y) % 7) % 256
    }'
}
{ printf 'P6\n48 32\n255\n'; raster 48 32 3; } >rgb.ppm
{
    printf 'YUV4MPEG2 W32 H16 F25:1 Ip A1:1 C420jpeg\n'
    for frame in 0 1 2; do printf 'FRAME\n'; raster 32 24 1; done
} >clip.y4m
python3 - <<'EOF'
import math, struct
frames = 3000
data = b"".join(struct.pack("<hh", int(9000 * math.sin(t * 0.03)) + t % 5, int(7000 * math.sin(t * 0.011)) - t % 3)
                for t in range(frames))
head = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 2, 16000, 64000, 4, 16,
                   b"data", len(data))
open("tone.wav", "wb").write(head + data)
EOF

# check_bound ORIGINAL DECODED D PSNR: every sample within D, and the PSNR
# (all samples, against max_value, or 2^bits - 1 for audio) within 0.01 dB.
check_bound() {
    python3 - "$@" <<'EOF' || fail "$2: samples out of bound or another PSNR"
import math, struct, sys
def pnm(b):
    fields, pos = [], 2
    while len(fields) < 3:
        while b[pos:pos + 1].isspace(): pos += 1
        start = pos
        while not b[pos:pos + 1].isspace(): pos += 1
        fields.append(int(b[start:pos]))
    return list(b[pos + 1:]), fields[2]
def y4m(b):
    head, rest = b.split(b"\n", 1)
    w = int([t for t in head.split() if t[:1] == b"W"][0][1:]); h = int([t for t in head.split() if t[:1] == b"H"][0][1:])
    frame, out = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2), []
    while rest.startswith(b"FRAME"):
        rest = rest.split(b"\n", 1)[1]; out += list(rest[:frame]); rest = rest[frame:]
    return out, 255
def wav(b):
    bits = struct.unpack("<H", b[34:36])[0]; data = b[44:]
    return list(struct.unpack("<%dh" % (len(data) // 2), data)), 2 ** bits - 1
def read(path):
    b = open(path, "rb").read()
    return pnm(b) if b[:1] == b"P" else y4m(b) if b[:4] == b"YUV4" else wav(b)
(a, peak), (d, _) = read(sys.argv[1]), read(sys.argv[2])
bound, shown = int(sys.argv[3]), float(sys.argv[4])
errors = [x - y for x, y in zip(a, d)]
sse = sum(e * e for e in errors)
psnr = 10 * math.log10(peak * peak * len(a) / sse) if sse else math.inf
ok = len(a) == len(d) and max(map(abs, errors)) <= bound and abs(psnr - shown) < 0.01
print("max error", max(map(abs, errors)), "psnr %.3f shown %.2f" % (psnr, shown))
sys.exit(0 if ok else 1)
EOF
}

# round_trip FILE D: compress, info, test, decompress, check.
round_trip() {
    local file=$1 bound=$2 psnr
    expect_status 0 "compress $file -E $bound" "$LMC" compress -q --max-error "$bound" -o "$file.$bound.lmc" "$file"
    expect_file "$file" "the input of a lossy compression is kept"
    expect_status 0 "info $file" "$LMC" info "$file.$bound.lmc"
    expect_stdout "lossy: +max error $bound, PSNR [0-9]+\.[0-9]{2} dB" "info shows D and PSNR"
    psnr=$(sed -n 's/.*PSNR \([0-9.]*\) dB.*/\1/p' "$OUT")
    expect_status 0 "test $file" "$LMC" test "$file.$bound.lmc"
    expect_status 0 "decompress $file" "$LMC" decompress -o "$file.$bound.out" "$file.$bound.lmc"
    cmp -s "$file" "$file.$bound.out" && fail "$file at D=$bound decoded to the original bytes"
    check_bound "$file" "$file.$bound.out" "$bound" "${psnr:-0}"
}

round_trip rgb.ppm 1
round_trip rgb.ppm 4
round_trip clip.y4m 1
round_trip tone.wav 2
[ "$(file_size rgb.ppm.4.lmc)" -lt "$(file_size rgb.ppm.1.lmc)" ] || fail "D=4 is not smaller than D=1"

# D = 0 is lossless, with the lossless archive's bytes.
expect_status 0 "D=0" "$LMC" compress -q --max-error 0 -o zero.lmc rgb.ppm
expect_status 0 "no bound" "$LMC" compress -q -o plain.lmc rgb.ppm
expect_same zero.lmc plain.lmc "--max-error 0"
expect_status 0 "info D=0" "$LMC" info zero.lmc
grep -q "lossy" "$OUT" && fail "a lossless archive's info mentions lossy"

# --rm removes the input only after the archive decoded in full.
cp rgb.ppm gone.ppm
expect_status 0 "--rm" "$LMC" compress -q --max-error 2 --rm gone.ppm
expect_no_file gone.ppm "--rm after a lossy compression"
expect_status 0 "decompress --rm's archive" "$LMC" decompress -q gone.ppm.lmc
check_bound rgb.ppm gone.ppm 2 "$("$LMC" info gone.ppm.lmc | sed -n 's/.*PSNR \([0-9.]*\) dB.*/\1/p')"

# Refusals.
make_text notes.txt 200
expect_status 1 "non-media input" "$LMC" compress --max-error 1 notes.txt
expect_stderr "maximum error applies only to images, audio and video" "non-media refusal"
expect_no_file notes.txt.lmc "a refused compression's output"
expect_status 1 "media as bytes" "$LMC" compress --max-error 1 --kind bytes rgb.ppm
expect_status 2 "--fast" "$LMC" compress --max-error 1 --fast rgb.ppm
expect_status 2 "too large" "$LMC" compress --max-error 70000 rgb.ppm
expect_status 2 "not a number" "$LMC" compress --max-error x rgb.ppm
expect_status 2 "not for decompress" "$LMC" decompress --max-error 1 rgb.ppm.1.lmc
expect_no_temp_files

# A damaged lossy archive is refused.
cp rgb.ppm.1.lmc damaged.lmc
flip_byte damaged.lmc $(($(file_size damaged.lmc) - 30))
expect_status 1 "damaged lossy archive" "$LMC" decompress -c damaged.lmc
expect_stderr "damaged|does not match|checksum" "damage named"

# bench --lossy on a tiny image: lmc's four points (and others when installed).
export PATH="$(dirname "$LMC"):$PATH" # lmc_jpegls beside lmc, when built
{ printf 'P6\n24 16\n255\n'; raster 24 16 3; } >tiny.ppm
expect_status 0 "bench --lossy" "$LMC" bench --lossy -T 1 --csv rd.csv --svg rd.svg tiny.ppm
expect_stdout "lmc --max-error +8 " "bench --lossy table"
expect_file rd.svg "bench --lossy --svg"
grep -q "<svg" rd.svg || fail "rd.svg is not an SVG"
python3 - <<'EOF' || fail "bench --lossy CSV: lmc points missing or out of bound"
import csv, sys
rows = [r for r in csv.DictReader(open("rd.csv")) if r["codec"].startswith("lmc")]
sys.exit(0 if len(rows) == 4 and all(r["ok"] == "1" and int(r["max_error"]) <= int(r["setting"]) for r in rows) else 1)
EOF
finish
