#!/usr/bin/env bash
# On the device: starts bench/device_corpus.sh in the background (it may
# outlast one command) and waits up to WAIT seconds for it, printing the
# results so far. Call again to keep waiting.
#   bash bench/device_run.sh WAIT MODE...
wait_s=$1
shift
mkdir -p /tmp/lmcbench
if [ ! -e /tmp/lmcbench/started ]; then
  touch /tmp/lmcbench/started
  setsid bash -c "bash bench/device_corpus.sh .device /tmp/lmcbench $* >/tmp/lmcbench/log 2>&1; touch /tmp/lmcbench/done" &
fi
for ((i = 0; i < wait_s; i += 10)); do
  [ -e /tmp/lmcbench/done ] && break
  sleep 10
done
cp /tmp/lmcbench/corpus.tsv "$OUT/" 2>/dev/null
echo "lines: $(wc -l </tmp/lmcbench/corpus.tsv 2>/dev/null)"; nproc
[ -e /tmp/lmcbench/done ] && echo DONE && cat /tmp/lmcbench/log | tail -90
