#!/usr/bin/env bash
# Issue 8 on the GPU machine: the CUDA tests, the engine's speed on the GPU
# against the CPU, and whole-file compression both ways with archives
# exchanged between the GPU and the CPU. Run from the repository root with
# the binaries of a build made with -DLMC_CUDA=ON (bench/gpu_stage.sh stages
# them, the Debian libraries they need, and the input files into
# .device/gpu); writes its log to $OUT/gpu.txt.
set -u
KIT=${KIT:-$PWD/.device/gpu}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.txt") 2>&1
export LD_LIBRARY_PATH=$KIT/lib LMC_MODELS=$PWD/models
BIN=$KIT/bin
now() { echo "$EPOCHREALTIME"; }
timed() {
  local s; s=$(now); "$@"; local rc=$?
  awk -v s="$s" -v e="$(now)" -v rc=$rc -v what="$*" 'BEGIN { printf "TIME %.3f s rc=%d  %s\n", e - s, rc, what }'
  return $rc
}
echo "== machine"; nvidia-smi -L; nproc
echo "== test_cuda"; timed "$BIN/test_cuda" 2>&1 | tail -25
echo "== tests/cli/device.sh"; bash tests/cli/device.sh "$BIN/lmc" "$PWD" 2>&1 | tail -5
if [ "${SKIP_ENGINE:-0}" = 0 ]; then
  echo "== engine: text-en's shape, tokens/s (CPU: 16 threads)"
  shape="--dim 256 --hidden 768 --layers 6 --heads 4 --kv-heads 2 --vocab 8192 --threads 16 --repeat 3"
  for g in 0 1; do
    for rows in 64 512; do
      LMC_GPU=$g "$BIN/lmc_bench_nn" --mode batched --rows $rows --ctx 512 $shape | tail -1 | sed "s/^/gpu=$g batched rows $rows: /"
    done
    for seqs in 1 16 64 256; do
      LMC_GPU=$g "$BIN/lmc_bench_nn" --mode lockstep --seqs $seqs --ctx 512 $shape | tail -1 | sed "s/^/gpu=$g lockstep $seqs: /"
    done
  done
fi
W=/tmp/gpuwork; rm -rf $W; mkdir -p $W
for f in ${FILES:-alice29.txt}; do
  cp "$KIT/data/$f" $W/
  echo "== $f ($(stat -c %s $W/$f) bytes), -T 16"
  timed "$BIN/lmc" compress --device cpu -T 16 -f -o $W/cpu.lmc $W/$f
  timed "$BIN/lmc" compress --device cuda -T 16 -f -o $W/gpu.lmc $W/$f
  cmp $W/cpu.lmc $W/gpu.lmc && echo "ARCHIVES IDENTICAL: $(stat -c %s $W/gpu.lmc) bytes"
  timed "$BIN/lmc" decompress --device cuda -T 16 -f -o $W/cpu_on_gpu $W/cpu.lmc
  cmp $W/cpu_on_gpu $W/$f && echo "CPU ARCHIVE DECODED ON THE GPU"
  if [ "${CPU_DECODE:-1}" = 1 ]; then
    timed "$BIN/lmc" decompress --device cpu -T 16 -f -o $W/gpu_on_cpu $W/gpu.lmc
    cmp $W/gpu_on_cpu $W/$f && echo "GPU ARCHIVE DECODED ON THE CPU"
  fi
done
