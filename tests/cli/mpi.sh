#!/usr/bin/env bash
# lmc --mpi (an MPI build, cmake -DLMC_MPI=ON): archives made by 1, 2 and 4
# ranks (oversubscribed) are byte for byte those of one process, decode back
# under --mpi, a failing rank's error reaches rank 0, damage is named, and a
# rank that dies fails the job without leaving an output. Skipped (77)
# without an MPI build of lmc or without mpirun.
source "$(dirname "$0")/helpers.bash" "$@"

command -v mpirun >/dev/null 2>&1 || skip "no mpirun (Debian: openmpi-bin)"
# The options used here (--oversubscribe, MPMD ':', ranks as mpirun's children) are OpenMPI's.
mpirun --version 2>/dev/null | grep -q "Open MPI" || skip "mpirun is not OpenMPI's"
# OpenMPI refuses to run as root unless told that it is meant.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# ranks N ARGS...: lmc ARGS under mpirun with N ranks (a deadlock would fail, not hang).
ranks() {
    local n=$1
    shift
    timeout 300 mpirun --oversubscribe -n "$n" "$LMC" "$@"
}

: >empty
run ranks 1 compress --mpi -q -o probe.lmc empty
if [ "$STATUS" -eq 2 ] && grep -q "needs an lmc built with MPI" "$ERR"; then
    skip "lmc was built without MPI (-DLMC_MPI=ON)"
fi
[ "$STATUS" -eq 0 ] || fail "mpirun -n 1 lmc compress --mpi: status $STATUS: $(head -c 400 "$ERR")"

make_text text.txt 6000
make_binary random.bin 100000
make_text small.txt 250
{ printf 'P6\n48 32\n255\n'; awk 'BEGIN { for (y = 0; y < 32; y++) for (x = 0; x < 48; x++)
    printf "%c%c%c", (x * 5 + y) % 256, (y * 7) % 256, (x * y) % 256 }'; } >image.ppm

# same_archives NAME FILE RANKS OPTION...: the archive of FILE made with
# --mpi on each count of RANKS equals the single-process one, and decodes
# back to FILE with --mpi on as many ranks.
same_archives() {
    local name=$1 file=$2 counts=$3
    shift 3
    expect_status 0 "$name: plain compress" "$LMC" compress -q -T 1 "$@" -o "$name.lmc" "$file"
    for n in $counts; do
        expect_status 0 "$name: compress on $n ranks" ranks "$n" compress --mpi -q -T 1 "$@" -o "$name.$n.lmc" "$file"
        expect_same "$name.lmc" "$name.$n.lmc" "$name: archive of $n ranks"
        expect_status 0 "$name: decompress on $n ranks" ranks "$n" decompress --mpi -q -T 1 -o "$name.$n.out" "$name.$n.lmc"
        expect_same "$file" "$name.$n.out" "$name: decoded on $n ranks"
    done
}

same_archives fast text.txt "1 2 4" --fast --block-size 16K
same_archives stored random.bin "2 4" --fast --block-size 16K
same_archives model small.txt "2 4" --block-size 4K
same_archives image image.ppm "2" # one media block: rank 0 codes it alone
same_archives empty empty "2"

# Standard output under mpirun is a terminal to lmc (OpenMPI forwards it
# through one), hence -f.
ranks 2 compress --mpi -q -f -T 1 --fast --block-size 16K -c <text.txt >stdout.lmc 2>"$ERR" ||
    fail "compress --mpi -c: $(head -c 400 "$ERR")"
expect_same fast.lmc stdout.lmc "compress --mpi to standard output"

# Damage is named as the single-process decoder names it; nothing is written.
cp fast.lmc damaged.lmc
flip_byte damaged.lmc $(($(file_size damaged.lmc) / 2))
expect_status 1 "damaged archive" ranks 2 decompress --mpi -T 1 -o damaged.out damaged.lmc
expect_stderr "does not match its checksum" "damaged archive"
expect_no_file damaged.out "damaged archive"

# A rank's failure reaches rank 0: here rank 1 alone is given a model file
# that does not exist, and the archive's model (a copy, so its hash is
# found nowhere else) is unknown to it.
cp "$ROOT/models/bytes-v1.gguf" own.gguf
printf 'x' >>own.gguf
head -c 4096 random.bin >few.bin
expect_status 1 "rank 1 without the model" timeout 300 mpirun --oversubscribe \
    -n 1 "$LMC" compress --mpi -T 1 -m own.gguf --block-size 1K -o few.lmc few.bin : \
    -n 1 "$LMC" compress --mpi -T 1 -m missing.gguf --block-size 1K -o few.lmc few.bin
expect_stderr "rank 1: .*not found" "rank 1 without the model"
expect_no_file few.lmc "rank 1 without the model"

# A rank killed mid-job: mpirun ends the job and rank 0 leaves no output.
make_text long.txt 2500
mpirun --oversubscribe -n 2 "$LMC" compress --mpi -T 1 --block-size 8K long.txt >"$OUT" 2>"$ERR" &
job=$!
for _ in $(seq 300); do
    [ -n "$(find . -maxdepth 1 -name '.long.txt.lmc.*')" ] && break
    sleep 0.1
done
killed=
for pid in $(pgrep -P "$job"); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then
        kill -KILL "$pid" && killed=$pid
    fi
done
wait "$job"
STATUS=$?
[ -n "$killed" ] || fail "rank death: rank 1's process was not found"
[ "$STATUS" -ne 0 ] || fail "rank death: mpirun exited with status 0"
expect_stderr "rank 1 .*signal 9" "rank death"
expect_no_file long.txt.lmc "rank death"
expect_no_temp_files

finish
