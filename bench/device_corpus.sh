#!/usr/bin/env bash
# Whole-file round trips of the corpus on a many-core machine (the GPU
# machine's CPUs): one file per core, each with one thread, every output
# compared byte for byte. Prepared by bench/stage_device.sh; run there as
#   bash bench/device_corpus.sh .device OUT_DIR MODE...
# where MODE is "default", "fast" or a model file name in .device/models.
set -uo pipefail
stage=$1 out=$2
shift 2
lmc=$stage/bin/lmc
export LMC_MODELS=$PWD/models:$stage/models
jobs=$(nproc)
one() { # MODE FILE -> a TSV line
  local mode=$1 file=$2 opts=()
  case $mode in
    default) ;;
    fast) opts=(--fast) ;;
    *) opts=(-m "$mode") ;;
  esac
  local tmp
  tmp=$(mktemp -d)
  local t0 t1 t2
  t0=$(date +%s.%N)
  "$lmc" compress -q -T 1 "${opts[@]}" -o "$tmp/a.lmc" "$file" 2>"$tmp/err"
  t1=$(date +%s.%N)
  "$lmc" decompress -q -T 1 -o "$tmp/out" "$tmp/a.lmc" 2>>"$tmp/err"
  t2=$(date +%s.%N)
  local check=ok
  cmp -s "$file" "$tmp/out" || check="MISMATCH $(head -c 200 "$tmp/err" | tr '\n\t' '  ')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "${file#"$stage"/}" "$(stat -c %s "$file")" \
    "$(stat -c %s "$tmp/a.lmc" 2>/dev/null || echo 0)" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" \
    "$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}')" "$check"
  rm -rf "$tmp"
}
export -f one
export lmc stage
for mode in "$@"; do
  find "$stage/corpus" -type f -printf '%s %p\n' | sort -rn | cut -d' ' -f2- |
    while read -r f; do printf '%s\0%s\0' "$mode" "$f"; done
done | xargs -0 -n 2 -P "$jobs" bash -c 'one "$0" "$1"' >"$out/corpus.tsv"
sort "$out/corpus.tsv"
