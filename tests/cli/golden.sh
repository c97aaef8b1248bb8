#!/bin/bash
# Golden archives made by earlier versions (tests/golden/) decode, byte for
# byte, in this build, forever. A change to the format, the numerics, the
# coders or a shipped model that breaks one fails here: keep the old path
# for decoding (docs/FORMAT.md, "Compatibility") instead of editing these files.
source "$(dirname "$0")/helpers.bash" "$@"
GOLDEN=$ROOT/tests/golden
BUILD=$(dirname "$LMC")
SHARED=$ROOT/../shared/peer/llama2c
count=0
if [ -d "$SHARED" ] && [ -x "$BUILD/lmc_llama2c_to_gguf" ]; then
    mkdir models
    "$BUILD/lmc_llama2c_to_gguf" "$SHARED/stories260K.bin" "$SHARED/tok512.bin" models/stories260K.gguf \
        || fail "cannot convert stories260K"
    export LMC_MODELS=$WORK/models
fi
for archive in "$GOLDEN"/v*.lmc; do
    [ -e "$archive" ] || continue
    name=$(basename "$archive")
    original=${name#v*-}            # v1-sample.txt.fast.lmc -> sample.txt.fast.lmc
    original=${original%.lmc}       # -> sample.txt.fast
    original=$GOLDEN/${original%.*} # -> sample.txt
    if [[ $name == *stories260K* ]] && [ -z "${LMC_MODELS:-}" ]; then
        echo "skipping $name: ../shared (stories260K) is not available"
        continue
    fi
    expect_status 0 "decode $name" "$LMC" decompress -c "$archive"
    cmp -s "$OUT" "$original" || fail "$name does not decode to $(basename "$original")"
    expect_status 0 "test $name" "$LMC" test "$archive"
    count=$((count + 1))
done
[ "$count" -gt 0 ] || fail "no golden archives found in $GOLDEN"
echo "decoded $count golden archives"
finish
