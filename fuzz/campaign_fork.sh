#!/bin/bash
# A long fuzzing campaign for a many-core machine (issue 9; run on the GPU
# machine's CPUs, docs/FUZZING.md): every libFuzzer target, built on the CPU
# machine (ASan+UBSan, clang 14), in fork mode, JOBS processes each, for
# SECONDS, corpora grown from fuzz/corpus/<name>.
# Run from the repository root; FUZZ_KIT (default .device/fuzz) holds bin/
# (the fuzz_* binaries of a -DLMC_FUZZ=ON build) and lib/ (the .so files
# they need, for a machine without Debian's packages):
#   fuzz/campaign_fork.sh start SECONDS JOBS   (returns at once; setsid)
#   fuzz/campaign_fork.sh wait                 (until all exit; logs to $OUT)
ROOT=$PWD H=${FUZZ_KIT:-$PWD/.device/fuzz} W=/tmp/fz OUT=${OUT:-/tmp/out}
export LD_LIBRARY_PATH=$H/lib
case $1 in
start)
  S=$2 J=$3
  rm -rf $W; mkdir -p $W
  nproc > $W/nproc; free -g > $W/free
  for f in $H/bin/fuzz_*; do
    n=${f##*/fuzz_}
    mkdir -p $W/$n $W/crash-$n
    cp -r $ROOT/fuzz/corpus/$n $W/seeds-$n
    (cd $W && setsid nohup $f -fork=$J -max_total_time=$S -rss_limit_mb=2048 -timeout=20 -max_len=65536 \
        -artifact_prefix=$W/crash-$n/ $W/$n $W/seeds-$n > $W/$n.log 2>&1 < /dev/null &)
  done
  sleep 20; ls $W; for l in $W/*.log; do echo "== $l"; tail -2 $l; done ;;
wait)
  while pgrep -f "fuzz_.*-fork=" > /dev/null; do sleep 10; done
  mkdir -p $OUT
  cat $W/nproc $W/free
  for l in $W/*.log; do
    n=$(basename $l .log)
    cp $l $OUT/
    echo "$n: $(grep -E '^#[0-9]+' $l | tail -1)  corpus $(ls $W/$n | wc -l) files  crashes $(ls $W/crash-$n | wc -l)"
    grep -E "ERROR|SUMMARY|deadly|crash-|leak" $l | head -5
  done
  for n in $(ls $W | grep '^crash-'); do [ -n "$(ls $W/$n)" ] && tar czf $OUT/$n.tgz -C $W $n; done
  true ;;
*) echo "usage: run.sh start SECONDS JOBS | wait" ;;
esac
