#!/usr/bin/env bash
# lmc --mpi scaling (bench/mpi.md): wall-clock seconds to compress and to
# decompress FILE with one process (-T 1 and -T 2) and with 1, 2 and 4 MPI
# ranks of one thread each (4 is oversubscribed on a 2-core machine). Every
# MPI archive is compared with the single-process one, every output with FILE.
# Prints a Markdown table; each time is the best of REPEAT runs (default 1),
# as other work on a shared machine only ever adds time.
#   [REPEAT=N] bench/mpi_scaling.sh BUILD-DIR FILE [COMPRESS-OPTION...]
# BUILD-DIR holds an lmc built with -DLMC_MPI=ON.
set -euo pipefail
lmc=$(cd "$1" && pwd)/lmc
file=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
shift 2
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d "${TMPDIR:-/tmp}/lmc-mpi-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

seconds() { # command...: runs it REPEAT times, prints the least wall-clock seconds
    local start end
    for _ in $(seq "${REPEAT:-1}"); do
        start=$(date +%s.%N)
        "$@" >/dev/null
        end=$(date +%s.%N)
        echo "$start $end"
    done | awk '{ t = $2 - $1; if (NR == 1 || t < best) best = t } END { printf "%.1f", best }'
}

# row LABEL LAUNCHER...: compress and decompress FILE through LAUNCHER
# (env: one process; mpirun ...: with --mpi).
runs=0
row() {
    local label=$1
    shift
    runs=$((runs + 1))
    local archive=$work/$runs.lmc output=$work/$runs.out mpi=()
    [ "$1" = mpirun ] && mpi=(--mpi)
    local c d
    c=$(seconds "$@" "$lmc" compress "${mpi[@]}" -q -f "${options[@]}" -o "$archive" "$file")
    d=$(seconds "$@" "$lmc" decompress "${mpi[@]}" -q -f -T "$threads" -o "$output" "$archive")
    cmp -s "$output" "$file" || { echo "FAIL: $label does not decode to $file" >&2; exit 1; }
    if [ "$runs" -gt 1 ]; then
        cmp -s "$archive" "$work/1.lmc" || { echo "FAIL: $label: the archive differs" >&2; exit 1; }
    fi
    echo "| $label | $c | $d |"
}

echo "| run | compress (s) | decompress (s) |"
echo "|---|---|---|"
threads=1; options=(-T 1 "$@"); row "1 process, -T 1" env
threads=2; options=(-T 2 "$@"); row "1 process, -T 2" env
threads=1; options=(-T 1 "$@")
for n in 1 2 4; do
    row "mpirun -n $n, -T 1 each" mpirun --oversubscribe -n "$n"
done
echo
echo "archive: $(stat -c %s "$work/1.lmc") bytes from $(stat -c %s "$file"); all $runs archives identical"
