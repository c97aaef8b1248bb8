#!/usr/bin/env bash
# Compression and decompression wall time of several lmc builds on the same
# files, each pinned to two cores with AVX2 (the CI machine's shape), on an
# otherwise idle machine such as the device machine's host. Every output is
# checked byte for byte. Best of REPEAT runs.
#   bench/cpu_speed_device.sh KIT REPEAT
# KIT holds bin/ (lmc builds), lib/ (their Debian libraries), data/ (the
# files) and runs (lines "NAME BINARY CORES OPTIONS...": each line runs on
# its own two cores, e.g. 0,1, all lines at once). Run from the repository
# root (models/ is where the builds find their models). Prints one table.
set -euo pipefail
kit=$1
repeat=${2:-2}
export LD_LIBRARY_PATH=$kit/lib LMC_SIMD=avx2 LMC_MODELS=${LMC_MODELS:-$PWD/models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
best() { # cores command...: the fastest wall time of $repeat runs, in seconds
  local cores=$1 t best=
  shift
  for _ in $(seq "$repeat"); do
    t=$( { /usr/bin/time -f %e taskset -c "$cores" "$@" >/dev/null; } 2>&1 | tail -1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
  done
  echo "$best"
}
run_line() { # name binary cores options...
  local name=$1 binary=$2 cores=$3
  shift 3
  for file in "$kit"/data/*; do
    local a=$work/$name.lmc
    taskset -c "$cores" "$kit/bin/$binary" compress -q -T 2 "$@" -c "$file" >"$a"
    "$kit/bin/$binary" decompress -q -T 2 -c "$a" | cmp -s - "$file" || echo "MISMATCH $name $file"
    local c d size
    c=$(best "$cores" "$kit/bin/$binary" compress -q -T 2 "$@" -c "$file")
    d=$(best "$cores" "$kit/bin/$binary" decompress -q -T 2 -c "$a")
    size=$(stat -c %s "$file")
    printf '%-10s %-28s %10s %8s %8s %9.1f %9.1f\n' "$name" "$(basename "$file")" "$(stat -c %s "$a")" \
      "$c" "$d" "$(echo "$size / 1000 / $c" | bc -l)" "$(echo "$size / 1000 / $d" | bc -l)"
  done
}
echo "$(nproc) cores; each build on two of them, AVX2, best of $repeat"
printf '%-10s %-28s %10s %8s %8s %9s %9s\n' build file bytes comp_s dec_s "comp_KB/s" "dec_KB/s"
while read -r name binary cores options; do
  # shellcheck disable=SC2086
  run_line "$name" "$binary" "$cores" $options >"$work/$name.txt" &
done <"$kit/runs"
wait
cat "$work"/*.txt
