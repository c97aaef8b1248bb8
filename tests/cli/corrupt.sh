#!/bin/bash
# Damaged archives: truncation and flipped bits are errors (exit 1) and leave
# no output file and no temporary file behind.
source "$(dirname "$0")/helpers.bash" "$@"

make_text text 800
"$LMC" compress --fast -q text || fail "could not make the archive"
size=$(file_size text.lmc)

# expect_rejected ARCHIVE WHAT: every reader refuses it, nothing is left behind.
expect_rejected() {
    local archive=$1 what=$2 output=${1%.lmc}
    expect_status 1 "decompress $what" "$LMC" decompress "$archive"
    expect_stderr "^lmc: $archive: " "decompress $what"
    expect_no_file "$output" "decompress $what"
    expect_status 1 "decompress -c $what" "$LMC" decompress -c "$archive"
    expect_status 1 "test $what" "$LMC" test "$archive"
    expect_stderr "^lmc: $archive: " "test $what"
    expect_no_temp_files
}

# expect_rejected_by_info ARCHIVE WHAT: info checks structure and checksums too.
expect_rejected_by_info() {
    expect_status 1 "info $2" "$LMC" info "$1"
    expect_stderr "^lmc: $1: " "info $2"
}

head -c $((size / 2)) text.lmc >half.lmc
expect_rejected half.lmc "an archive cut in half"
expect_rejected_by_info half.lmc "an archive cut in half"
head -c $((size - 1)) text.lmc >short.lmc
expect_rejected short.lmc "an archive missing its last byte"
expect_rejected_by_info short.lmc "an archive missing its last byte"
head -c 3 text.lmc >tiny.lmc
expect_rejected tiny.lmc "three bytes of an archive"
: >empty.lmc
expect_rejected empty.lmc "an empty file"
make_text notarchive.lmc 5
expect_rejected notarchive.lmc "a text file"
expect_stderr 'notarchive.lmc: ' "a text file"

for offset in 0 4 $((size / 3)) $((size / 2)) $((size - 2)) $((size - 1)); do
    cp text.lmc "flip$offset.lmc"
    flip_byte "flip$offset.lmc" "$offset"
    expect_rejected "flip$offset.lmc" "with byte $offset flipped"
done

# Trailing garbage after a complete archive is not silently accepted either.
cat text.lmc text >trailing.lmc
expect_rejected trailing.lmc "with data after its end"

# The intact archive still decodes (the checks above did not pass by accident).
expect_status 0 "intact archive" "$LMC" decompress -c text.lmc
expect_same "$OUT" text "intact archive"
finish
