#!/bin/bash
# Media archives (codec 3) through the CLI: PNM, PAM and Y4M files made with
# printf, and PNGs of every colour type made with python3 (zlib + struct),
# are compressed as images or video, listed by `lmc info` with their kind,
# checked by `lmc test` and restored: PNM/PAM/Y4M byte for byte, PNG pixel
# for pixel with every other chunk verbatim and in order. Input the readers
# cannot restore exactly (a truncated PNG, an APNG) is coded as bytes with
# a notice (silenced by -q) and comes back byte for byte. A damaged media
# archive is refused with exit 1 and a message. Skips (77) when lmc cannot
# find the image-rgb model; the PNG part is skipped without python3's zlib.
source "$(dirname "$0")/helpers.bash" "$@"

"$LMC" models 2>/dev/null | awk 'NR > 1 && $1 == "image-rgb" { found = 1 } END { exit !found }' ||
    skip "lmc models does not list image-rgb"

# raster WIDTH HEIGHT CHANNELS MAXVAL [SHIFT]: interleaved samples of ramps
# with some texture, one byte each, or two (big-endian) past 255.
raster() {
    LC_ALL=C awk -v w="$1" -v h="$2" -v c="$3" -v m="$4" -v s="${5:-0}" 'BEGIN {
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++)
                for (k = 0; k < c; k++) {
                    v = (int(((x + s) * 7 + y * 5 + k * 50) % 256 * (m + 1) / 256) + ((x + y) % 4 == 0)) % (m + 1)
                    if (m > 255) printf "%c%c", int(v / 256), v % 256
                    else printf "%c", v
                }
    }'
}

mkdir orig
{ printf 'P5\n# a comment\n32 24\n255\n'; raster 32 24 1 255; } >orig/gray.pgm
{ printf 'P6\n40 30\n255\n'; raster 40 30 3 255; } >orig/rgb.ppm
{ printf 'P5\n20 16\n1000\n'; raster 20 16 1 1000; } >orig/gray10.pgm
{ printf 'P6\n16 12\n65535\n'; raster 16 12 3 65535; } >orig/rgb16.ppm
{ printf 'P7\nWIDTH 24\nHEIGHT 16\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n'; raster 24 16 4 255; } >orig/rgba.pam
{ printf 'P7\nWIDTH 20\nHEIGHT 12\nDEPTH 2\nMAXVAL 255\nTUPLTYPE GRAYSCALE_ALPHA\nENDHDR\n'; raster 20 12 2 255; } >orig/graya.pam
{
    printf 'YUV4MPEG2 W16 H8 F25:1 Ip A1:1 C420jpeg\n'
    for frame in 0 1; do
        printf 'FRAME\n'
        raster 16 8 1 255 "$frame"
        raster 8 4 1 255 "$frame"
        raster 8 4 1 255 $((frame + 3))
    done
} >orig/clip.y4m
# 10-bit 4:2:0: two little-endian bytes per sample.
{
    printf 'YUV4MPEG2 W16 H8 F25:1 Ip A1:1 C420p10 XYSCSS=420P10\n'
    for frame in 0 1; do
        printf 'FRAME\n'
        LC_ALL=C awk -v f="$frame" 'BEGIN {
            for (i = 0; i < 16 * 8 + 2 * 8 * 4; i++) { v = (i * 5 + f * 3) % 1024; printf "%c%c", v % 256, int(v / 256) }
        }'
    done
} >orig/clip10.y4m

# expect_coded_as FILE KIND: compress FILE as KIND samples (no notice, a
# coded block), info and test accept the archive, and decompress restores
# it, byte for byte unless it is a PNG (compared by same_png).
expect_coded_as() {
    local file=$1 kind=$2
    cp "orig/$file" "$file"
    expect_status 0 "compress $file" "$LMC" compress -f "$file"
    [ "$STATUS" -eq 0 ] || return
    [ ! -s "$ERR" ] || fail "compress $file printed: $(head -c 300 "$ERR")"
    expect_status 0 "info $file" "$LMC" info "$file.lmc"
    expect_stdout "kind: +$kind\$" "info $file"
    expect_stdout 'coding: +samples' "info $file"
    expect_stdout 'blocks: +1 \(0 stored\)' "info $file"
    expect_status 0 "test $file" "$LMC" test "$file.lmc"
    rm -f "$file"
    expect_status 0 "decompress $file" "$LMC" decompress "$file.lmc"
    case $file in
    *.png) same_png "orig/$file" "$file" || fail "decompressed $file differs from the original" ;;
    *) expect_same "$file" "orig/$file" "round trip of $file" ;;
    esac
}

# expect_coded_as_bytes FILE: compress falls back to byte coding with a
# notice; -q silences it; the archive restores FILE byte for byte.
expect_coded_as_bytes() {
    local file=$1
    cp "orig/$file" "$file"
    expect_status 0 "compress $file" "$LMC" compress -f "$file"
    expect_stderr "^lmc: $file: .*coded as bytes instead" "compress $file"
    expect_status 0 "compress -q $file" "$LMC" compress -q -f "$file"
    [ ! -s "$ERR" ] || fail "compress -q $file printed: $(head -c 300 "$ERR")"
    expect_status 0 "info $file" "$LMC" info "$file.lmc"
    grep -Eq 'coding: +samples' "$OUT" && fail "$file: info says samples for a byte-coded archive"
    expect_status 0 "test $file" "$LMC" test "$file.lmc"
    rm -f "$file"
    expect_status 0 "decompress $file" "$LMC" decompress "$file.lmc"
    expect_same "$file" "orig/$file" "round trip of $file"
}

for file in gray.pgm rgb.ppm gray10.pgm rgb16.ppm rgba.pam graya.pam; do
    expect_coded_as "$file" image
done
expect_coded_as clip.y4m video

# A damaged media archive: flipped bytes in the payload, a cut. Exit 1
# (not a crash), a message naming the archive, no output left behind.
size=$(file_size rgb.ppm.lmc)
for offset in $((size / 3)) $((size / 2)) $((size - 20)); do
    cp rgb.ppm.lmc damaged.lmc
    flip_byte damaged.lmc "$offset"
    expect_status 1 "test of an archive with byte $offset flipped" "$LMC" test damaged.lmc
    expect_stderr '^lmc: damaged.lmc: .*(checksum|damaged|corrupt)' "test of an archive with byte $offset flipped"
    expect_status 1 "decompress of an archive with byte $offset flipped" "$LMC" decompress damaged.lmc
    expect_no_file damaged "decompress of a damaged archive"
done
head -c $((size - 30)) rgb.ppm.lmc >cut.lmc
expect_status 1 "test of a cut media archive" "$LMC" test cut.lmc
expect_stderr '^lmc: cut.lmc: [a-z]' "test of a cut media archive"
expect_no_temp_files

# Shapes the image coder has edge cases for: video of more than 8 bits
# (two channels per plane) and one colour in several planes (a one-entry
# palette) must be coded as samples; 5 planes (PAM allows up to 16) may
# also fall back to bytes, but the archive must always restore the file.
expect_coded_as clip10.y4m video
{ printf 'P6\n12 10\n255\n'; for _ in $(seq 120); do printf '\100\200\300'; done; } >orig/solid.ppm
expect_coded_as solid.ppm image
{ printf 'P7\nWIDTH 32\nHEIGHT 24\nDEPTH 5\nMAXVAL 255\nTUPLTYPE FIVE\nENDHDR\n'; raster 32 24 5 255; } >orig/five.pam
cp orig/five.pam five.pam
expect_status 0 "compress five.pam" "$LMC" compress -f five.pam
if [ "$STATUS" -eq 0 ]; then
    expect_status 0 "test five.pam" "$LMC" test five.pam.lmc
    rm -f five.pam
    expect_status 0 "decompress five.pam" "$LMC" decompress five.pam.lmc
    expect_same five.pam orig/five.pam "round trip of five.pam"
fi

if ! python3 -c 'import struct, sys, zlib' 2>/dev/null; then
    echo "note: no python3 with zlib; PNG checks skipped"
    finish
fi

# png.py make FOLDER: the test PNGs; png.py same A B: exit 0 if A and B
# have the same pixels, the same chunks other than IDAT in the same order
# (the IDAT group where it was) and the same bytes after IEND.
cat >png.py <<'EOF'
import struct, sys, zlib

SIGNATURE = b'\x89PNG\r\n\x1a\n'
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

def passes(width, height, interlaced):
    for x0, y0, dx, dy in ADAM7 if interlaced else [(0, 0, 1, 1)]:
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns > 0 and rows > 0:
            yield x0, y0, dx, dy, columns, rows

def pack(samples, depth):
    if depth == 16:
        return b''.join(struct.pack('>H', v) for v in samples)
    if depth == 8:
        return bytes(samples)
    out, per_byte = bytearray(), 8 // depth
    for i in range(0, len(samples), per_byte):
        group = samples[i:i + per_byte] + [0] * (per_byte - len(samples[i:i + per_byte]))
        byte = 0
        for v in group:
            byte = byte << depth | v
        out.append(byte)
    return bytes(out)

def unpack(line, count, depth):
    if depth == 16:
        return [line[2 * i] << 8 | line[2 * i + 1] for i in range(count)]
    if depth == 8:
        return list(line[:count])
    per_byte, mask = 8 // depth, (1 << depth) - 1
    return [line[i // per_byte] >> (8 - depth * (i % per_byte + 1)) & mask for i in range(count)]

def png(path, width, height, depth, colour, pixel, before=(), after=(), interlaced=False, trailing=b''):
    """pixel(x, y) gives a tuple of samples; before/after: (kind, data) chunks around IDAT."""
    raw = bytearray()
    for x0, y0, dx, dy, columns, rows in passes(width, height, interlaced):
        for r in range(rows):
            samples = [v for i in range(columns) for v in pixel(x0 + i * dx, y0 + r * dy)]
            raw += b'\0' + pack(samples, depth)
    ihdr = struct.pack('>IIBBBBB', width, height, depth, colour, 0, 0, 1 if interlaced else 0)
    body = chunk(b'IHDR', ihdr) + b''.join(chunk(k, d) for k, d in before)
    body += chunk(b'IDAT', zlib.compress(bytes(raw), 9)) + b''.join(chunk(k, d) for k, d in after)
    with open(path, 'wb') as out:
        out.write(SIGNATURE + body + chunk(b'IEND', b'') + trailing)

def read_chunks(path):
    data = open(path, 'rb').read()
    assert data[:8] == SIGNATURE, path + ': not a PNG'
    pos, chunks = 8, []
    while pos < len(data):
        length = struct.unpack('>I', data[pos:pos + 4])[0]
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
        if chunks[-1][0] == b'IEND':
            break
    return chunks, data[pos:]

def unfilter(kind, line, previous, bpp):
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b, c = previous[i], previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 2:
            line[i] = (line[i] + b) & 255
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif kind != 0:
            raise ValueError('filter type %d' % kind)

def pixels(chunks):
    width, height, depth, colour, _, _, interlaced = struct.unpack('>IIBBBBB', dict(chunks)[b'IHDR'])
    channels = CHANNELS[colour]
    raw = zlib.decompress(b''.join(d for k, d in chunks if k == b'IDAT'))
    bpp, image, pos = max(1, channels * depth // 8), {}, 0
    for x0, y0, dx, dy, columns, rows in passes(width, height, interlaced):
        stride = (columns * channels * depth + 7) // 8
        previous = bytearray(stride)
        for r in range(rows):
            line = bytearray(raw[pos + 1:pos + 1 + stride])
            unfilter(raw[pos], line, previous, bpp)
            pos += 1 + stride
            samples = unpack(line, columns * channels, depth)
            for i in range(columns):
                image[x0 + i * dx, y0 + r * dy] = tuple(samples[i * channels:(i + 1) * channels])
            previous = line
    return [image[x, y] for y in range(height) for x in range(width)]

def layout(chunks):
    """The chunks with the IDAT group as one entry."""
    out = []
    for kind, data in chunks:
        if kind != b'IDAT':
            out.append((kind, data))
        elif not out or out[-1] != (b'IDAT', None):
            out.append((b'IDAT', None))
    return out

def same(a, b):
    (ca, ta), (cb, tb) = read_chunks(a), read_chunks(b)
    if layout(ca) != layout(cb):
        print('chunks differ:', [k for k, _ in layout(ca)], [k for k, _ in layout(cb)])
        return False
    if ta != tb:
        print('bytes after IEND differ')
        return False
    if pixels(ca) != pixels(cb):
        print('pixels differ')
        return False
    return True

def make(folder):
    # Smooth but never repeating: deflate does poorly on it, a pixel coder well.
    ramp = lambda x, y, k=0: (x * x * 3 + y * y * 2 + x * y + k * 700) // 16 % 256
    png(folder + '/gray.png', 32, 20, 8, 0, lambda x, y: (ramp(x, y),))
    alpha = lambda x, y: 255 if x > 5 or y > 8 else x * 40 + y
    png(folder + '/gray_alpha.png', 32, 20, 8, 4, lambda x, y: (ramp(x, y), alpha(x, y)))
    png(folder + '/rgb.png', 33, 21, 8, 2, lambda x, y: tuple(ramp(x, y, k) for k in range(3)))
    # For the checker's own test: one sample of one pixel differs.
    png(folder + '/rgb_changed.png', 33, 21, 8, 2,
        lambda x, y: tuple(ramp(x, y, k) ^ (x == 7 and y == 5 and k == 1) for k in range(3)))
    png(folder + '/rgba.png', 30, 20, 8, 6, lambda x, y: tuple(ramp(x, y, k) for k in range(3)) + (alpha(x, y),))
    png(folder + '/gray16.png', 16, 12, 16, 0, lambda x, y: (ramp(x, y) * 257 + x,))
    png(folder + '/rgb16.png', 14, 10, 16, 2, lambda x, y: tuple(ramp(x, y, k) * 256 + y * 3 for k in range(3)))
    png(folder + '/gray1.png', 29, 9, 1, 0, lambda x, y: ((x // 3 + y) % 2,))
    palette = bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, i * 77 % 256))
    png(folder + '/palette4.png', 19, 13, 4, 3, lambda x, y: ((x // 2 + y) % 16,),
        before=[(b'PLTE', palette), (b'tRNS', bytes([0, 128, 255]))])
    png(folder + '/palette8.png', 30, 20, 8, 3, lambda x, y: ((x * y // 7) % 40,),
        before=[(b'PLTE', bytes(range(120)))])
    png(folder + '/rgb_interlaced.png', 23, 17, 8, 2, lambda x, y: tuple(ramp(x, y, k) for k in range(3)),
        interlaced=True)
    png(folder + '/chunks.png', 26, 14, 8, 2, lambda x, y: tuple(ramp(x, y, k) for k in range(3)),
        before=[(b'gAMA', struct.pack('>I', 45455)), (b'tEXt', b'Comment\0made by media.sh'),
                (b'prVt', b'private data \x00\x01\x02')],
        after=[(b'tEXt', b'Author\0after the pixels'), (b'prVt', b'second')], trailing=b'garbage after IEND')
    png(folder + '/apng.png', 16, 8, 8, 2, lambda x, y: tuple(ramp(x, y, k) for k in range(3)),
        before=[(b'acTL', struct.pack('>II', 1, 0)),
                (b'fcTL', struct.pack('>IIIIIHHBB', 0, 16, 8, 0, 0, 1, 10, 0, 0))])
    whole = open(folder + '/rgb.png', 'rb').read()
    with open(folder + '/truncated.png', 'wb') as out:
        out.write(whole[:len(whole) * 2 // 3])

if sys.argv[1] == 'make':
    make(sys.argv[2])
else:
    sys.exit(0 if same(sys.argv[2], sys.argv[3]) else 1)
EOF

same_png() {
    python3 png.py same "$1" "$2"
}

python3 png.py make orig || fail "png.py could not make the test PNGs"
for file in gray.png gray_alpha.png rgb.png rgba.png gray16.png rgb16.png gray1.png palette4.png palette8.png \
    rgb_interlaced.png chunks.png; do
    expect_coded_as "$file" image
done
# The checker itself tells images one sample apart.
same_png orig/rgb.png orig/rgb_changed.png >/dev/null && fail "png.py same: different pixels compare equal"

expect_coded_as_bytes truncated.png
expect_coded_as_bytes apng.png
finish
