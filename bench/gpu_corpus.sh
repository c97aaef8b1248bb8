#!/usr/bin/env bash
# Issue 8 on the GPU machine, whole files: every text file of the corpus
# compressed with --device cuda (sizes checked against the CPU's archives
# listed in bench/results/bench-text.txt), and one file of every kind
# compressed on the GPU and decompressed on the CPU, and the other way
# round: the same archive and the same output, byte-exact (the original
# file itself, except for PNG, which lmc restores pixel-exact). Run from the repository root after staging the kit
# (bench/gpu_device.sh says how); the corpus files go in $KIT/corpus.
set -u
KIT=${KIT:-$PWD/.device/gpu}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_corpus.txt") 2>&1
export LD_LIBRARY_PATH=$KIT/lib LMC_MODELS=$PWD/models
LMC=$KIT/bin/lmc
W=/tmp/gpucorpus; rm -rf $W; mkdir -p $W
nvidia-smi -L
# -m text-en: the CPU's sizes in bench-text.txt were made with text-en for every file (the
# domain probe, which picks a variant for two files, came later; the kinds below exercise it).
echo "== text corpus, compress --device cuda -T 16 -m text-en"
total_in=0; total_s=0
for f in "$KIT"/corpus/text/*; do
  name=$(basename "$f")
  s=$EPOCHREALTIME
  "$LMC" compress --device cuda -T 16 -m text-en -f -o "$W/$name.lmc" "$f" || echo "FAILED $name"
  e=$EPOCHREALTIME
  size=$(stat -c %s "$W/$name.lmc"); bytes=$(stat -c %s "$f")
  cpu=$(awk -v n="$name" '$4 == "lmc" && index($1, "/" n) { print $5 }' bench/results/bench-text.txt)
  awk -v n="$name" -v b="$bytes" -v z="$size" -v c="$cpu" -v s="$s" -v e="$e" 'BEGIN {
    printf "%-36s %9d bytes -> %8d (CPU archive %s: %s) %7.2f s %7.1f KB/s\n", n, b, z, c, z == c ? "same size" : "DIFFERENT", e - s, b / (e - s) / 1000 }'
  total_in=$((total_in + bytes)); total_s=$(awk -v t="$total_s" -v s="$s" -v e="$e" 'BEGIN { print t + e - s }')
done
awk -v b=$total_in -v t=$total_s 'BEGIN { printf "total %d bytes in %.2f s: %.1f KB/s\n", b, t, b / t / 1000 }'
echo "== every kind: GPU <-> CPU"
for f in "$KIT"/corpus/mixed/*; do
  name=$(basename "$f")
  "$LMC" compress --device cuda -T 16 -f -o "$W/g.lmc" "$f" && "$LMC" compress --device cpu -T 16 -f -o "$W/c.lmc" "$f" &&
  "$LMC" decompress --device cpu -T 16 -f -o "$W/g.out" "$W/g.lmc" && "$LMC" decompress --device cuda -T 16 -f -o "$W/c.out" "$W/c.lmc" &&
  cmp "$W/g.lmc" "$W/c.lmc" && cmp "$W/g.out" "$W/c.out" &&
  case $name in *.png) true ;; *) cmp "$W/g.out" "$f" ;; esac && # PNG comes back pixel-exact, re-encoded
  echo "OK $name: $("$LMC" info "$W/g.lmc" | grep -iE "^ *model" | head -1 | tr -s ' ') archive $(stat -c %s "$W/g.lmc") bytes, identical both ways" ||
  echo "FAILED $name"
done
