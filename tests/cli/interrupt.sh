#!/bin/bash
# SIGINT and SIGTERM during compression and decompression: exit status 1, no
# output file and no temporary file left behind.
source "$(dirname "$0")/helpers.bash" "$@"

# Background jobs of a shell without job control ignore SIGINT (and lmc,
# like gzip, keeps an ignored SIGINT ignored); job control gives them the
# default handling, as from an interactive shell.
set -m

# wait_for_temp DIR: waits until lmc's temporary output exists (up to 10 s).
wait_for_temp() {
    local tries=0
    until [ -n "$(find "$1" -maxdepth 1 -name '.*.??????' -type f)" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || return 1
        sleep 0.05
    done
}

# interrupt_fed SIGNAL WHAT ARGS...: lmc reads a pipe that stays open, so the
# signal surely arrives mid-stream.
interrupt_fed() {
    local signal=$1 what=$2
    shift 2
    rm -f feed
    mkfifo feed
    "$LMC" "$@" <feed 2>"$ERR" &
    local pid=$!
    exec 3>feed
    head -c 100000 "$SOURCE" >&3
    if wait_for_temp .; then
        kill -s "$signal" "$pid"
    else
        fail "$what: no temporary output appeared"
        kill -s KILL "$pid"
    fi
    wait "$pid"
    local status=$?
    exec 3>&-
    [ "$status" -eq 1 ] || fail "$what: exit status $status, expected 1"
    expect_stderr '^lmc: interrupted$' "$what"
    expect_no_file out "$what"
    expect_no_temp_files
}

make_text text 3000
SOURCE=text
interrupt_fed INT "SIGINT while compressing a pipe" compress --fast -o out -
interrupt_fed TERM "SIGTERM while compressing a pipe" compress --fast -o out -
"$LMC" compress --fast -q -c text text text text >many.lmc 2>/dev/null
SOURCE=many.lmc
interrupt_fed INT "SIGINT while decompressing a pipe" decompress -o out -

# A regular file: the signal may come after lmc is done (the machine or the
# library may be fast); then the output must be complete.
make_text big 60000
"$LMC" compress --fast -q big 2>"$ERR" &
pid=$!
wait_for_temp . && kill -s INT "$pid"
wait "$pid"
status=$?
if [ "$status" -eq 0 ]; then
    echo "note: compression ended before the signal"
    expect_status 0 "archive made before the signal" "$LMC" test big.lmc
else
    [ "$status" -eq 1 ] || fail "SIGINT while compressing a file: exit status $status, expected 1"
    expect_no_file big.lmc "SIGINT while compressing a file"
fi
expect_file big "SIGINT keeps the input"
expect_no_temp_files
finish
