#!/usr/bin/env bash
# Issue 8, the large-model target: the engine's tokens per second on the
# GPU for a Llama-3.2-1B-shaped model with random int8 weights (dim 2048,
# FFN 8192, 16 layers, 32 query and 8 KV heads, a 128,256-token vocabulary:
# 1.24 billion parameters), in compression's shape (batched rows) and
# decompression's (lockstep); then compute-sanitizer over test_cuda.
# Run from the repository root on the GPU machine (KIT as in gpu_device.sh).
set -u
KIT=${KIT:-$PWD/.device/gpu}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_1b.txt") 2>&1
export LD_LIBRARY_PATH=$KIT/lib LMC_MODELS=$PWD/models
nvidia-smi -L
shape="--dim 2048 --hidden 8192 --layers 16 --heads 32 --kv-heads 8 --vocab 128256 --threads 16 --repeat 2"
LMC_GPU=1 "$KIT/bin/lmc_bench_nn" --mode batched --rows 512 --ctx 512 $shape | tail -1
LMC_GPU=1 "$KIT/bin/lmc_bench_nn" --mode lockstep --seqs 64 --ctx 256 $shape | tail -1
if [ "${SANITIZE:-1}" = 1 ]; then
  echo "== compute-sanitizer --tool memcheck test_cuda"
  timeout 300 compute-sanitizer --tool memcheck "$KIT/bin/test_cuda" 2>&1 | tail -6
fi
