#!/usr/bin/env bash
# Runs text-en's whole training pipeline on the GPU machine, in the background
# so that it outlives one device command (train/README.md, "text-en").
#
#   bash train/device_text.sh start STAGE N_TRAIN_SHARDS EVAL_DIR   # returns at once
#   bash train/device_text.sh wait SECONDS                          # progress; copies results to $OUT
#
# The data arrives in several calls (64 MiB each), as folders STAGE*/ holding
# train-*.bin.xz and val.bin.xz. start waits until N_TRAIN_SHARDS and val.bin.xz
# are there, trains the tokenizer, tokenizes, then trains the runs listed in
# RUNS below side by side on the one GPU.
set -euo pipefail
work=/tmp/lmc-text
here=$(cd "$(dirname "$0")" && pwd)

# name | train_text.py options (each run gets the same time budget)
RUNS=(
  "a|--dim 256 --layers 6 --heads 4 --kv-heads 2 --hidden 768 --lr 3e-3"
  "b|--dim 256 --layers 8 --heads 4 --kv-heads 2 --hidden 768 --lr 3e-3"
)
BUDGET=${BUDGET:-420}

pipeline() {
  local stage=$1 shards=$2 eval_dir=$3 data=$work/data
  until [ "$(ls "$stage"*/train-*.bin.xz 2>/dev/null | wc -l)" -ge "$shards" ] && ls "$stage"*/val.bin.xz >/dev/null 2>&1; do
    sleep 2
  done
  mkdir -p "$data"
  ln -sf "$(readlink -f "$stage")"*/*.bin.xz "$data/"
  nvidia-smi --query-gpu=name --format=csv,noheader > "$work/gpu.txt" || true
  python3 "$here/text_tokenizer.py" --data "$data" --out "$work/tok" --vocab "${VOCAB:-8192}" \
    --check-dir "$eval_dir" > "$work/tokenizer.log" 2>&1
  local pids=()
  for run in "${RUNS[@]}"; do
    local name=${run%%|*} opts=${run#*|}
    # shellcheck disable=SC2086
    python3 "$here/train_text.py" --tokens "$work/tok" --out "$work/run-$name" --time-budget "$BUDGET" \
      --eval-dir "$eval_dir" $opts > "$work/train-$name.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
}

collect() {
  [ -n "${OUT:-}" ] || return 0
  cp "$work"/*.log "$work"/gpu.txt "$OUT/" 2>/dev/null || true
  cp "$work"/tok/{tokenizer.json,vocab.json,check.json,tokenizer_report.json} "$OUT/" 2>/dev/null || true
  for dir in "$work"/run-*; do
    [ -d "$dir" ] || continue
    mkdir -p "$OUT/$(basename "$dir")"
    cp "$dir"/{report.json,config.json,*.gguf} "$OUT/$(basename "$dir")/" 2>/dev/null || true
  done
}

case $1 in
  start)
    mkdir -p "$work"
    if [ ! -e "$work/started" ]; then
      touch "$work/started"
      setsid bash -c "bash '$0' run '$(readlink -m "$2")' '$3' '$(readlink -m "$4")' > '$work/pipeline.log' 2>&1; touch '$work/done'" < /dev/null &
    fi
    ;;
  run)
    pipeline "$2" "$3" "$4"
    ;;
  wait)
    for ((i = 0; i < $2; i += 5)); do
      [ -e "$work/done" ] && break
      sleep 5
    done
    tail -n 3 "$work"/*.log 2>/dev/null || true
    collect
    [ -e "$work/done" ] && echo PIPELINE-DONE
    ;;
esac
