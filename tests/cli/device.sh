#!/bin/bash
# --device and --devices: malformed values and --devices without --mpi are
# usage errors (2); an archive made with --device cuda is byte for byte the
# CPU's, and each decodes under the other setting (with a GPU: really on
# the GPU; without one, or without CUDA in the build: a warning, and the
# CPU), for two blocks of text and one small file of every kind;
# LMC_DEVICE=cpu overrides nothing given on the command line. Skips (77)
# without the default text model (it checks the neural path).
source "$(dirname "$0")/helpers.bash" "$@"

"$LMC" models 2>/dev/null | awk 'NR > 1 && $1 == "text-en" { found = 1 } END { exit !found }' ||
    skip "lmc models does not list text-en"

for bad in gpu cuda: cuda:x cuda:-1 "cuda:1 "; do
    expect_status 2 "--device '$bad'" "$LMC" compress --device "$bad" -c /dev/null
    expect_stderr "invalid device" "--device '$bad'"
done
expect_status 2 "--devices 0,x" "$LMC" compress --devices 0,x -c /dev/null
expect_status 2 "--devices 0,1 without --mpi" "$LMC" compress --devices 0,1 -c /dev/null
expect_stderr "need --mpi" "--devices 0,1 without --mpi"
expect_status 2 "--device with --devices" "$LMC" compress --device cuda --devices 0 -c /dev/null
expect_status 2 "--devices on test" "$LMC" test --devices 0 /dev/null

# Two blocks of text, so both the batched encoder and lockstep decoding run.
for i in $(seq 1 60); do echo "Line $i: the GPU computes what the CPU computes, bit for bit."; done >text.txt
expect_status 0 "compress on the CPU" "$LMC" compress --device cpu -T 2 --block-size 2K -o cpu.lmc text.txt
expect_status 0 "compress with --device cuda" "$LMC" compress --device cuda -T 2 --block-size 2K -o gpu.lmc text.txt
if grep -q "computing on the CPU" "$ERR"; then
    echo "note: no usable GPU here: $(head -c 200 "$ERR")"
    expect_stderr "^lmc: --device cuda: .*; computing on the CPU" "the warning names the device and the reason"
else
    [ ! -s "$ERR" ] || fail "--device cuda on a GPU: unexpected stderr $(head -c 200 "$ERR")"
fi
expect_same cpu.lmc gpu.lmc "archives made with --device cpu and --device cuda"
expect_status 0 "GPU archive decoded on the CPU" "$LMC" decompress --device cpu -c gpu.lmc
cmp -s "$OUT" text.txt || fail "GPU archive decoded on the CPU differs"
expect_status 0 "CPU archive decoded with --device cuda:0" "$LMC" decompress --device cuda:0 -c cpu.lmc
cmp -s "$OUT" text.txt || fail "CPU archive decoded with --device cuda:0 differs"
# One small file of every kind (tests/golden's inputs): the same archive on
# either device, decoded on the other (the media coders run on the CPU
# whatever the device; the contract is the same).
if [ -n "$ROOT" ] && [ -d "$ROOT/tests/golden" ]; then
    for input in sample.txt bytes.bin image.ppm audio.wav video.y4m; do
        file=$ROOT/tests/golden/$input
        expect_status 0 "$input with --device cuda" "$LMC" compress --device cuda -T 2 -o "g-$input.lmc" "$file"
        expect_status 0 "$input with --device cpu" "$LMC" compress --device cpu -T 2 -o "c-$input.lmc" "$file"
        expect_same "g-$input.lmc" "c-$input.lmc" "$input: archives of both devices"
        expect_status 0 "$input: GPU archive on the CPU" "$LMC" decompress --device cpu -c "g-$input.lmc"
        cmp -s "$OUT" "$file" || fail "$input: GPU archive decoded on the CPU differs"
        expect_status 0 "$input: CPU archive with --device cuda" "$LMC" decompress --device cuda -c "c-$input.lmc"
        cmp -s "$OUT" "$file" || fail "$input: CPU archive decoded with --device cuda differs"
    done
fi
expect_status 0 "-q silences the warning" "$LMC" compress -q --device cuda:7 -c text.txt
[ ! -s "$ERR" ] || fail "-q: stderr $(head -c 200 "$ERR")"
LMC_DEVICE=cpu expect_status 0 "LMC_DEVICE=cpu with --device cuda" "$LMC" compress --device cuda -T 2 --block-size 2K -c text.txt
cmp -s "$OUT" cpu.lmc || fail "the archive depends on LMC_DEVICE"
finish
