#!/usr/bin/env bash
# Domain variants of text-en on the GPU machine (train/README.md, "Domain variants").
#   bash train/device_domain.sh BASE_HASH EVAL_DIR OUT
# Runs finetune.py for each domain and setting below, one after another, and
# copies the reports and overlay files to OUT/<domain>-<setting>/.
set -euo pipefail
hash=$1 eval_dir=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
# setting | finetune.py options
SETTINGS=(
  "l45|--tune-layers 4,5 --lr 1e-3 --steps 1500"
  "all|--tune-layers all --lr 3e-4 --steps 1500"
)
for domain in legal medical; do
  case $domain in
    legal) files=("$eval_dir"/legal_*) ;;
    medical) files=("$eval_dir"/medical_*) ;;
  esac
  for setting in "${SETTINGS[@]}"; do
    name=${setting%%|*} opts=${setting#*|}
    dir=$out/$domain-$name
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    python3 "$here/finetune.py" --base "$here/../models/text-en.gguf" --base-hash "$hash" \
      --tokenizer "$here/text-en.tokenizer.json" --data "$here/data-domain" --domain "$domain" \
      --out "$dir" $opts -- "${files[@]}" > "$dir/log.txt" 2>&1 || echo "failed: $domain $name"
    tail -n 1 "$dir/log.txt"
  done
done
