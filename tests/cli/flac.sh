#!/bin/bash
# FLAC input through the CLI: FLAC files made with the flac tools (stereo
# 16-bit with tags, a seek table, padding and a picture; mono 24-bit; an
# ID3v2-tagged one) are compressed as audio samples, checked by `lmc test`
# and restored sample-exact: `flac -t` accepts the restored file, it decodes
# to the same samples as the original, and metaflac lists the same blocks,
# tags and picture. A FLAC the reader refuses (cut short) is coded as bytes
# with a notice and comes back byte for byte; a damaged archive is refused.
# Skips (77) without the audio-pcm model or without flac and metaflac.
source "$(dirname "$0")/helpers.bash" "$@"

"$LMC" models 2>/dev/null | awk 'NR > 1 && $1 == "audio-pcm" { found = 1 } END { exit !found }' ||
    skip "lmc models does not list audio-pcm"
command -v flac >/dev/null && command -v metaflac >/dev/null || skip "flac and metaflac are not installed"

# pcm FRAMES CHANNELS BYTES: little-endian signed samples, waves plus a little noise.
pcm() {
    LC_ALL=C awk -v n="$1" -v c="$2" -v b="$3" 'BEGIN {
        srand(7); full = 2 ^ (8 * b - 1)
        for (t = 0; t < n; t++)
            for (k = 0; k < c; k++) {
                v = int(sin(t * (k + 1) * 0.031) * full * 0.6 + (rand() - 0.5) * 64)
                if (v < 0) v += 2 * full
                for (i = 0; i < b; i++) { printf "%c", v % 256; v = int(v / 256) }
            }
    }'
}

RAW="--force-raw-format --endian=little --sign=signed"
mkdir orig
pcm 30000 2 2 >stereo.raw
flac $RAW --channels=2 --bps=16 --sample-rate=44100 -s -8 -S 1s --padding=100 \
    -T TITLE="A test tone" -T ARTIST=lmc -o orig/stereo.flac stereo.raw
head -c 300 /dev/urandom >cover.bin
metaflac --import-picture-from="3|image/x-test|cover|10x10x24|cover.bin" orig/stereo.flac
pcm 12000 1 3 >mono.raw
flac $RAW --channels=1 --bps=24 --sample-rate=96000 -s -5 -b 1152 -o orig/mono24.flac mono.raw
{ printf 'ID3\4\0\0\0\0\0\10TIT2abcd'; cat orig/mono24.flac; } >orig/id3.flac

# decoded FILE: the MD5 of FILE's samples as flac decodes them.
decoded() {
    flac -d -s -c $RAW "$1" 2>/dev/null | md5sum | cut -d' ' -f1
}

# blocks FILE: metaflac's list of FILE's blocks, without what re-encoding
# changes (frame sizes, the seek points' byte offsets).
blocks() {
    metaflac --list "$1" | sed -E '/framesize/d; s/, stream_offset=[0-9]+//'
}

expect_sample_exact() {
    local file=$1
    cp "orig/$file" "$file"
    expect_status 0 "compress $file" "$LMC" compress -f "$file"
    [ "$STATUS" -eq 0 ] || return
    [ ! -s "$ERR" ] || fail "compress $file printed: $(head -c 300 "$ERR")"
    expect_status 0 "info $file" "$LMC" info "$file.lmc"
    expect_stdout 'kind: +audio$' "info $file"
    expect_stdout 'coding: +samples' "info $file"
    expect_status 0 "test $file" "$LMC" test "$file.lmc"
    rm -f "$file"
    expect_status 0 "decompress $file" "$LMC" decompress "$file.lmc"
    expect_file "$file" "decompress $file"
    flac -t -s "$file" 2>/dev/null || fail "flac -t rejects the restored $file"
    [ "$(decoded "$file")" = "$(decoded "orig/$file")" ] || fail "restored $file decodes to other samples"
    case $file in
    id3.flac) cmp -s -n 18 "$file" "orig/$file" || fail "restored $file lost its ID3v2 tag" ;;
    *)
        [ "$(blocks "$file")" = "$(blocks "orig/$file")" ] || fail "restored $file has other metadata blocks"
        [ "$(metaflac --export-tags-to=- "$file")" = "$(metaflac --export-tags-to=- "orig/$file")" ] ||
            fail "restored $file has other tags"
        ;;
    esac
}

for file in stereo.flac mono24.flac id3.flac; do
    expect_sample_exact "$file"
done
metaflac --export-picture-to=cover.out stereo.flac && cmp -s cover.out cover.bin ||
    fail "restored stereo.flac lost its picture"

# Cut short: STREAMINFO declares more samples than the frames hold.
head -c 5000 orig/stereo.flac >orig/cut.flac
cp orig/cut.flac cut.flac
expect_status 0 "compress cut.flac" "$LMC" compress -f cut.flac
expect_stderr '^lmc: cut.flac: .*coded as bytes instead' "compress cut.flac"
rm -f cut.flac
expect_status 0 "decompress cut.flac" "$LMC" decompress cut.flac.lmc
expect_same cut.flac orig/cut.flac "round trip of cut.flac"

# A damaged FLAC archive: exit 1 and a message, no output left.
size=$(file_size mono24.flac.lmc)
cp mono24.flac.lmc damaged.lmc
flip_byte damaged.lmc $((size / 2))
expect_status 1 "test of a damaged archive" "$LMC" test damaged.lmc
expect_stderr '^lmc: damaged.lmc: ' "test of a damaged archive"
expect_status 1 "decompress of a damaged archive" "$LMC" decompress damaged.lmc
expect_no_file damaged "decompress of a damaged archive"
expect_no_temp_files
finish
