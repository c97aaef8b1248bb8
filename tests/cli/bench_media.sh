#!/bin/bash
# lmc bench --fast on a small PNG, WAV and Y4M made here: the media codecs'
# rows (bits per subpixel, ratio against raw PCM) in the table and the CSV,
# codecs not installed shown as missing, and decoders that give other
# samples back (a pixel, a PCM sample) caught as failed round trips.
# Skips (77) without python3 or without any of the media codecs
# (scripts/install-deps.sh bench installs them).
source "$(dirname "$0")/helpers.bash" "$@"

command -v python3 >/dev/null || skip "python3 makes the test files"
IMAGE_CODECS='optipng -o7:optipng|cwebp -lossless -z 9:cwebp dwebp|cjxl -d 0 -e 9:cjxl djxl'
AUDIO_CODECS='flac -8:flac|wavpack -hh -x6:wavpack wvunpack'
VIDEO_CODECS='ffv1 -level 3:ffmpeg|x264 --qp 0:x264 ffmpeg|x265 lossless:ffmpeg'
found=0
for program in optipng cwebp dwebp cjxl djxl flac wavpack wvunpack ffmpeg x264; do
    command -v "$program" >/dev/null && found=1
done
[ "$found" -eq 1 ] || skip "none of the media codecs is installed"

# make_media FOLDER [CHANGED]: image.png (32x16 RGB, 48 colours), palette.png
# (16x8, 4-bit indices, some entries transparent: decoders give it back as
# RGBA), tone.wav (stereo, 16 bits, 3000 frames) and clip.y4m (16x16 4:2:0,
# 2 frames); with CHANGED, one pixel and one PCM sample differ.
make_media() {
    python3 - "$1" "${2:-0}" <<'EOF'
import math, struct, sys, wave, zlib
folder, changed = sys.argv[1], int(sys.argv[2])

def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

width, height = 32, 16
pixels = [[((x * 8) % 256, (y * 16) % 256, ((x // 4 + y) * 40) % 256) for x in range(width)] for y in range(height)]
if changed:
    pixels[5][7] = (pixels[5][7][0] ^ 1,) + pixels[5][7][1:]
rows = b''.join(b'\0' + bytes(v for p in row for v in p) for row in pixels)
with open(folder + '/image.png', 'wb') as out:
    out.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
              chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b''))

palette = bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 77) % 256))
indices = b''.join(b'\0' + bytes(((x + y) % 16) << 4 | (x * y) % 16 for x in range(0, 16, 2)) for y in range(8))
with open(folder + '/palette.png', 'wb') as out:
    out.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 16, 8, 4, 3, 0, 0, 0)) +
              chunk(b'PLTE', palette) + chunk(b'tRNS', bytes([0, 128, 255, 40])) +
              chunk(b'IDAT', zlib.compress(indices, 9)) + chunk(b'IEND', b''))

frames = [(int(9000 * math.sin(t * 0.07)), int(4000 * math.sin(t * 0.011)) + t % 7) for t in range(3000)]
if changed:
    frames[100] = (frames[100][0] + 1, frames[100][1])
with wave.open(folder + '/tone.wav', 'wb') as out:
    out.setnchannels(2)
    out.setsampwidth(2)
    out.setframerate(16000)
    out.writeframes(b''.join(struct.pack('<hh', *f) for f in frames))

with open(folder + '/clip.y4m', 'wb') as out:
    out.write(b'YUV4MPEG2 W16 H16 F25:1 Ip A1:1 C420jpeg\n')
    for f in range(2):
        out.write(b'FRAME\n' + bytes((x * 9 + y * 5 + f * 3) % 256 for y in range(16) for x in range(16)) +
                  bytes((x * 20 + y + f) % 256 for _ in range(2) for y in range(8) for x in range(8)))
EOF
}

mkdir inputs changed
make_media inputs || fail "python3 could not make the media files"
make_media changed 1
export TMPDIR=$WORK

has_programs() {
    local program
    for program in $1; do command -v "$program" >/dev/null || return 1; done
}

# The CSV row of a file and codec.
csv_row() {
    grep -F "inputs/$1,$(file_size "inputs/$1"),$2," results.csv
}

# check_codecs FILE 'NAME:PROGRAMS|...' FIELD LOW HIGH: each codec has a row
# for FILE, "ok" with CSV field FIELD in (LOW, HIGH) when its programs are
# installed, "missing" otherwise.
check_codecs() {
    local file=$1 list=$2 field=$3 low=$4 high=$5 entry name programs row
    IFS='|' read -ra entries <<<"$list"
    for entry in "${entries[@]}"; do
        name=${entry%%:*} programs=${entry#*:}
        row=$(csv_row "$file" "$name")
        [ -n "$row" ] || { fail "CSV lacks the row of $name for $file"; continue; }
        if ! has_programs "$programs"; then
            [ "${row##*,}" = missing ] || fail "$name is not installed, but its row is: $row"
            continue
        fi
        [ "${row##*,}" = ok ] || { fail "$name on $file: $row"; continue; }
        echo "$row" | awk -F, -v f="$field" -v low="$low" -v high="$high" '{ exit !($f > low && $f < high) }' ||
            fail "$name on $file: field $field out of ($low, $high): $row"
        expect_stdout "^inputs/$file +[a-z]+ +[0-9]+ +$name +[0-9]+ .* ok$" "the table row of $name for $file"
    done
}

# CSV fields: 1 file, 2 bytes, 3 codec, 4 compressed, 5 bpb, 6-7 speeds,
# 8 subpixels, 9 bits per subpixel, 10 PCM bytes, 11 PCM ratio, 12 round trip.
expect_status 0 "bench of media files" "$LMC" bench --fast -T 1 --csv results.csv --svg results.svg inputs
expect_stdout '^FILE +KIND +BYTES +CODEC +COMPRESSED +RATIO +BPB +BPSP +PCM RATIO +COMP KB/s +DECOMP KB/s +ROUND TRIP$' \
    "table header with the media columns"
[ "$(head -n 1 results.csv)" = \
    file,bytes,codec,compressed,bits_per_byte,compress_kbps,decompress_kbps,subpixels,bits_per_subpixel,pcm_bytes,pcm_ratio,roundtrip ] ||
    fail "CSV header: $(head -n 1 results.csv)"
grep -q "^inputs/image.png,$(file_size inputs/image.png),lmc --fast,[0-9]*,[0-9.]*,[0-9.]*,[0-9.]*,1536,[0-9.]*,,,ok$" results.csv ||
    fail "lmc's row of image.png lacks 1536 subpixels: $(csv_row image.png 'lmc --fast')"
grep -q "^inputs/tone.wav,$(file_size inputs/tone.wav),lmc --fast,.*,,,12000,[0-9.]*,ok$" results.csv ||
    fail "lmc's row of tone.wav lacks 12000 PCM bytes: $(csv_row tone.wav 'lmc --fast')"
grep -q "^inputs/clip.y4m,$(file_size inputs/clip.y4m),lmc --fast,.*,768,[0-9.]*,,,ok$" results.csv ||
    fail "lmc's row of clip.y4m lacks 768 subpixels: $(csv_row clip.y4m 'lmc --fast')"
check_codecs image.png "$IMAGE_CODECS" 9 0 24
check_codecs palette.png "$IMAGE_CODECS" 9 0 24
check_codecs tone.wav "$AUDIO_CODECS" 11 0 1000
check_codecs clip.y4m "$VIDEO_CODECS" 9 0 24
grep -Eq '^inputs/tone\.wav,[0-9]+,(optipng|cwebp|cjxl|ffv1|x264|x265)' results.csv && fail "an image or video codec ran on audio"
grep -Eq '^inputs/image\.png,[0-9]+,(flac|wavpack|ffv1|x264|x265)' results.csv && fail "an audio or video codec ran on an image"
expect_stdout '^TOTAL +- +[0-9]+ +lmc --fast +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ' "lmc's total with both media columns"
grep -q '>lmc bench: compression ratio' results.svg || fail "SVG of mixed kinds: not a ratio chart"

# Only images: the chart shows bits per subpixel.
expect_status 0 "bench of an image" "$LMC" bench --fast --no-others --svg image.svg inputs/image.png
grep -q '>lmc bench: bits per subpixel' image.svg || fail "SVG of an image: not a bits-per-subpixel chart"
grep -q 'PCM RATIO' "$OUT" && fail "a run without audio shows the PCM column"

# Decoders that give other samples back: the real encoders, then a decoder
# that writes the changed file (a valid file with one sample different).
mkdir broken
COPY=$(command -v cp)
fake_decoder() { # NAME FILE: copies FILE to the argument after -o
    printf '#!/bin/sh\nwhile [ $# -gt 1 ]; do [ "$1" = -o ] && exec "%s" "%s" "$2"; shift; done\nexit 1\n' "$COPY" "$2" \
        >"broken/$1"
    chmod +x "broken/$1"
}
broken=0
if has_programs cwebp; then
    ln -s "$(command -v cwebp)" broken/cwebp
    fake_decoder dwebp "$WORK/changed/image.png"
    broken=1
fi
if has_programs wavpack; then
    ln -s "$(command -v wavpack)" broken/wavpack
    fake_decoder wvunpack "$WORK/changed/tone.wav"
    broken=1
fi
if [ "$broken" -eq 1 ]; then
    expect_status 0 "bench with broken decoders" env PATH="$WORK/broken" "$LMC" bench --fast -T 1 inputs
    if has_programs cwebp; then
        expect_stdout '^inputs/image\.png +image +[0-9]+ +cwebp -lossless -z 9 +- .* FAILED$' "a changed pixel fails"
        expect_stderr '^lmc: inputs/image.png: cwebp -lossless -z 9: round trip failed: the decompressed file has other samples' \
            "a changed pixel is reported"
    fi
    if has_programs wavpack; then
        expect_stdout '^inputs/tone\.wav +audio +[0-9]+ +wavpack -hh -x6 +- .* FAILED$' "a changed PCM sample fails"
        expect_stderr '^lmc: inputs/tone.wav: wavpack -hh -x6: round trip failed' "a changed PCM sample is reported"
    fi
    expect_stdout '^inputs/image\.png +image +[0-9]+ +lmc --fast +[0-9]+ .* ok$' "lmc beside the broken decoders"
fi
[ -z "$(find "$WORK" -maxdepth 1 -name 'lmc-bench.*')" ] || fail "bench left its scratch folder"
finish
