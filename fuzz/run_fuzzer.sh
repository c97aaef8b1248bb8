#!/bin/bash
# Runs one libFuzzer target for a bounded time over a scratch copy of its
# seed corpus: FUZZER SEED-DIR SECONDS. A crash leaves its input in the
# current folder (crash-*) and fails the test; add such inputs to the seed
# corpus once fixed, so they stay regression tests.
set -u
fuzzer=$1 seeds=$2 seconds=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -max_len=65536 \
    -print_final_stats=1 "$scratch" "$seeds" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY)|deadly|Test unit written"
exit "${PIPESTATUS[0]}"
