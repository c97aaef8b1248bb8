#!/bin/bash
# Command-line parsing: help, version, and exit status 2 for usage errors.
source "$(dirname "$0")/helpers.bash" "$@"

expect_status 0 "--version" "$LMC" --version
expect_stdout '^lmc [0-9]+\.[0-9]+\.[0-9]+' "--version"
expect_status 0 "-V" "$LMC" -V

expect_status 0 "--help" "$LMC" --help
for word in compress decompress test info models; do
    expect_stdout "$word" "--help mentions $word"
done
expect_status 0 "-h" "$LMC" -h
expect_status 0 "help" "$LMC" help
for command in compress decompress test info models help; do
    expect_status 0 "help $command" "$LMC" help "$command"
    expect_stdout "Usage: lmc $command" "help $command"
done
expect_status 0 "compress --help" "$LMC" compress --help
expect_stdout "Usage: lmc compress" "compress --help"
expect_status 0 "-d --help" "$LMC" -d --help
expect_stdout "Usage: lmc decompress" "-d --help"

# Usage errors: exit 2, one line on stderr starting with "lmc:".
usage_error() {
    local what="lmc $*"
    expect_status 2 "$what" "$LMC" "$@"
    expect_stderr '^lmc: ' "$what"
    [ "$(wc -l <"$ERR")" -eq 1 ] || fail "$what: expected one line on stderr, got: $(cat "$ERR")"
    [ ! -s "$OUT" ] || fail "$what: wrote to stdout"
}
touch a b
usage_error
usage_error nosuch
usage_error help nosuch
usage_error help compress extra
usage_error a
usage_error compress --bogus a
usage_error compress -x a
usage_error compress -T
usage_error compress -T -1 a
usage_error compress -T many a
usage_error compress --memlimit 12Q a
usage_error compress --memlimit -5 a
usage_error compress --block-size 5G a
usage_error compress --kind nonsense a
usage_error compress -o out a b
usage_error compress -c -o out a
usage_error compress -c a b
usage_error compress --rm -c a
usage_error decompress --rm -o - a
usage_error decompress --fast a
usage_error decompress --kind text a
usage_error info -o x a
usage_error models a
usage_error -d -z a
usage_error compress -d a
usage_error decompress -m
expect_no_file a.lmc "usage errors create nothing"
expect_no_file out "usage errors create nothing"

# Accepted spellings (they fail at run time on a missing file: exit 1, not 2).
for args in "compress --fast -T 0 --memlimit 512M --block-size 64K -k -v" \
    "compress --fast -T4 --memlimit=1G --block-size=1MiB --kind text -q" \
    "decompress -m some-model --memlimit 100KB -T 2" "test -T 1" "info" "-d" "-t" "-l" "-z --fast"; do
    # shellcheck disable=SC2086 # the words are meant to split
    expect_status 1 "lmc $args missing-file" "$LMC" $args missing-file
    expect_stderr '^lmc: missing-file: ' "lmc $args missing-file"
done
finish
