#!/bin/bash
# --lanes: how many lanes (parts decoded in lockstep) a text block gets.
# Bad counts are usage errors (2); every count round-trips, and more lanes
# give a different archive of the same text.
source "$(dirname "$0")/helpers.bash" "$@"
for bad in 0 5 x -1; do
    expect_status 2 "--lanes $bad" "$LMC" compress --lanes "$bad" -c /dev/null
done
# About 11,000 tokens of this project's documentation: two lanes of at least
# 4,096 tokens fit (LMC_LANE_MIN_TOKENS).
head -c 32000 "$ROOT"/docs/FORMAT.md >text.txt
for lanes in 1 2; do
    expect_status 0 "compress --lanes $lanes" "$LMC" compress -q -T 2 --lanes "$lanes" -o "$lanes.lmc" text.txt
    expect_status 0 "decompress --lanes $lanes" "$LMC" decompress -T 2 -c "$lanes.lmc"
    expect_same "$OUT" text.txt "round trip with $lanes lanes"
done
cmp -s 1.lmc 2.lmc && fail "one lane and two lanes gave the same archive"
# Decoded on several threads, the two lanes go to lane groups of their own
# (lmc_neural_decode_groups), which take turns at the block's range decoder.
for threads in 1 3; do
    expect_status 0 "decompress -T $threads" "$LMC" decompress -T "$threads" -c 2.lmc
    expect_same "$OUT" text.txt "two lanes decoded on $threads threads"
done
finish
