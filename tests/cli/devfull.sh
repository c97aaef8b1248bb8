#!/bin/bash
# Write errors (a full disk, simulated by /dev/full) are reported: exit 1 and
# a message naming the cause.
source "$(dirname "$0")/helpers.bash" "$@"

if [ ! -w /dev/full ]; then
    skip "no writable /dev/full here"
fi
make_text text 400
"$LMC" compress --fast -q text || fail "could not make the archive"

expect_full() {
    local what=$1
    shift
    "$@" >/dev/full 2>"$ERR"
    STATUS=$?
    [ "$STATUS" -eq 1 ] || fail "$what: exit status $STATUS, expected 1"
    expect_stderr '^lmc: \(stdout\): write failed: No space left on device$' "$what"
}
expect_full "compress -c > /dev/full" "$LMC" compress --fast -c text
expect_full "compress from stdin > /dev/full" "$LMC" compress --fast - <text
expect_full "decompress -c > /dev/full" "$LMC" decompress -c text.lmc
expect_full "info > /dev/full" "$LMC" info text.lmc
expect_full "--help > /dev/full" "$LMC" --help
finish
