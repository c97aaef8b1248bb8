#!/bin/bash
# A long fuzzing campaign over every target, for the report in
# docs/FUZZING.md: each target runs SECONDS under ASan+UBSan (the fuzz build),
# JOBS targets at a time, growing a persistent corpus in CORPUS-DIR/<target>
# (seeded from fuzz/corpus/<name>/). Prints one line per target: executions,
# coverage (libFuzzer's cov: edges and ft: features), peak RSS, crashes.
#   fuzz/campaign.sh FUZZ-BUILD-DIR CORPUS-DIR SECONDS [JOBS]
set -u
build=$1 store=$2 seconds=$3 jobs=${4:-1}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$store"
run_one() {
  local fuzzer=$1 name=${1##*/fuzz_}
  local dir=$store/$name log=$store/$name.log
  mkdir -p "$dir" "$store/crashes-$name"
  "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$store/crashes-$name/" "$dir" "$here/corpus/$name" >"$log" 2>&1
  local status=$?
  local done_line execs rss crashes
  done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  crashes=$(find "$store/crashes-$name" -type f | wc -l)
  printf '%-10s exit %d  executions %s  %s  peak RSS %s MB  corpus %d files  crashes %d\n' "$name" "$status" \
    "${execs:-?}" "$(echo "$done_line" | grep -oE 'cov: [0-9]+ ft: [0-9]+')" "${rss:-?}" \
    "$(find "$dir" -type f | wc -l)" "$crashes"
}
export -f run_one
export store seconds here
ls "$build"/fuzz_* | grep -v '\.' | xargs -P "$jobs" -I{} bash -c 'run_one {}'
