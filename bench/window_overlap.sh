#!/usr/bin/env bash
# Sliding window versus chunks with no overlap, on slices of the corpus text:
# the same model and block size, only the window stride changes.
#   bench/window_overlap.sh LMC_BINARY MODEL SLICE_BYTES STRIDE... 
# Example: bench/window_overlap.sh build/lmc bytes-v1 65536 512 384 256 128
set -euo pipefail
lmc=$1 model=$2 slice=$3
shift 3
strides=("$@")
window=$("$lmc" models --inspect "$model" | awk -F': ' '$1 == "lmc.context_window" {print $2}')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-36s' file
for s in "${strides[@]}"; do printf ' %12s' "stride=$s"; done
printf '\n'
declare -A total
inputs=0
for file in ../shared/corpus/text/*; do
  head -c "$slice" "$file" >"$work/in"
  inputs=$((inputs + $(stat -c %s "$work/in")))
  printf '%-36s' "$(basename "$file")"
  for s in "${strides[@]}"; do
    "$lmc" compress -q -f -m "$model" --window "$window" --stride "$s" -o "$work/a.lmc" "$work/in"
    size=$(stat -c %s "$work/a.lmc")
    total[$s]=$(( ${total[$s]:-0} + size ))
    awk -v c="$size" -v n="$(stat -c %s "$work/in")" 'BEGIN { printf " %12.3f", 8 * c / n }'
  done
  printf '\n'
done
printf '%-36s' "TOTAL bits/byte"
for s in "${strides[@]}"; do
  awk -v c="${total[$s]}" -v n="$inputs" 'BEGIN { printf " %12.3f", 8 * c / n }'
done
printf '\n(window %s tokens; stride = window means chunks with no overlap)\n' "$window"
