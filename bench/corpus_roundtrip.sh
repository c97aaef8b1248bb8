#!/usr/bin/env bash
# Round-trips whole files with lmc and reports size, ratio, bits per byte and
# speed both ways; every output is compared byte for byte with its input.
#   bench/corpus_roundtrip.sh LMC_BINARY "COMPRESS OPTIONS" FILE...
# Decompression gets only the thread count (-T) of those options: it finds
# the model from the archive.
# Example:
#   bench/corpus_roundtrip.sh build/lmc "--fast -T 2" ../shared/corpus/text/*
set -euo pipefail
lmc=$1; shift
options=$1; shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
threads=$(echo "$options" | grep -oE -- '-T ?[0-9]+' || true)
printf '%-40s %12s %12s %7s %6s %10s %10s %s\n' file bytes compressed ratio bpb "comp_KB/s" "dec_KB/s" check
total_in=0; total_out=0; failures=0
now() { date +%s.%N; }
for file in "$@"; do
  name=$(basename "$file")
  size=$(stat -c %s "$file")
  t0=$(now)
  # shellcheck disable=SC2086
  "$lmc" compress -q -f $options -o "$work/a.lmc" "$file"
  t1=$(now)
  # shellcheck disable=SC2086
  "$lmc" decompress -q -f $threads -o "$work/out" "$work/a.lmc"
  t2=$(now)
  csize=$(stat -c %s "$work/a.lmc")
  if cmp -s "$file" "$work/out"; then check=ok; else check=MISMATCH; failures=$((failures + 1)); fi
  awk -v n="$name" -v s="$size" -v c="$csize" -v a="$t0" -v b="$t1" -v d="$t2" -v k="$check" 'BEGIN {
    printf "%-40s %12d %12d %7.3f %6.3f %10.1f %10.1f %s\n", n, s, c, s / c, 8 * c / s, s / 1024 / (b - a), s / 1024 / (d - b), k }'
  total_in=$((total_in + size)); total_out=$((total_out + csize))
done
awk -v s="$total_in" -v c="$total_out" 'BEGIN { printf "%-40s %12d %12d %7.3f %6.3f\n", "TOTAL", s, c, s / c, 8 * c / s }'
exit $failures
