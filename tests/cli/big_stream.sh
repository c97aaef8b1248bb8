#!/bin/bash
# Memory stays bounded by the thread count, not the input size: 96 MiB of
# generated text (24 blocks of 4 MiB, twelve per thread) streams through
# `lmc compress --fast -T 2 -c` and `lmc decompress -c`, round-trips (SHA-256
# of the stream) and peaks under 240 MiB resident each way. Measured: 164 and
# 189 MiB (2 threads x 78 MiB of model tables plus a batch of buffers); a
# build that held the whole input, or a model per block, would need more.
# The 4 GiB version of this run is in bench/README.md (bench/big_stream.py).
source "$(dirname "$0")/helpers.bash" "$@"

command -v python3 >/dev/null || skip "no python3"
[ -n "$ROOT" ] || skip "no repository root given"
python3 "$ROOT/bench/big_stream.py" "$LMC" --size 96M --work "$WORK" -- --fast -T 2 >report.json ||
    fail "the 96 MiB stream did not round-trip: $(cat report.json)"
python3 - report.json <<'PY' || fail "peak memory over 240 MiB: $(cat report.json)"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["round_trip"] == "ok"
for side in ("compress", "decompress"):
    assert r[side]["peak_rss_MiB"] < 240, side
PY
finish
