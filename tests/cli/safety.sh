#!/bin/bash
# Outputs are never clobbered without -f, --rm removes only after success,
# the .lmc suffix rules, and runtime errors (exit 1) that skip one file only.
source "$(dirname "$0")/helpers.bash" "$@"

make_text text 300
make_text other 50
cp text text.orig
cp other other.orig

# An existing output is kept without -f, replaced with it.
echo old >text.lmc
expect_status 1 "compress onto an existing output" "$LMC" compress --fast text
expect_stderr 'text.lmc: already exists' "compress onto an existing output"
[ "$(cat text.lmc)" = old ] || fail "existing output was changed without -f"
expect_status 0 "compress -f" "$LMC" compress --fast -f text
expect_status 0 "compress -f made a valid archive" "$LMC" test text.lmc
expect_status 1 "decompress onto an existing output" "$LMC" decompress text.lmc
expect_stderr 'text: already exists' "decompress onto an existing output"
expect_same text text.orig "existing output kept"
echo changed >text
expect_status 0 "decompress -f" "$LMC" decompress -f text.lmc
expect_same text text.orig "decompress -f replaced the output"
expect_status 1 "-o onto the input itself" "$LMC" compress --fast -f -o text text
expect_same text text.orig "input kept when -o names it"

# --rm: compression removes the input only once the archive is complete.
cp text victim
echo old >victim.lmc
expect_status 1 "compress --rm onto an existing output" "$LMC" compress --fast --rm victim
expect_file victim "--rm keeps the input after a failure"
rm victim.lmc
expect_status 0 "compress --rm" "$LMC" compress --fast --rm victim
expect_no_file victim "compress --rm removes the input"
expect_file victim.lmc "compress --rm"
expect_status 0 "decompress --rm" "$LMC" decompress --rm victim.lmc
expect_no_file victim.lmc "decompress --rm removes the archive"
expect_same victim text.orig "--rm round trip"
cp text.lmc broken.lmc
flip_byte broken.lmc $(($(file_size broken.lmc) / 2))
expect_status 1 "decompress --rm of a corrupt archive" "$LMC" decompress --rm broken.lmc
expect_file broken.lmc "--rm keeps a corrupt archive"
expect_no_file broken "no output from a corrupt archive"

# Suffixes.
cp text.lmc plain
expect_status 1 "decompress without .lmc" "$LMC" decompress plain
expect_stderr 'plain: .*suffix' "decompress without .lmc"
expect_status 0 "decompress without .lmc but -o" "$LMC" decompress -o from-plain plain
expect_same from-plain text.orig "decompress -o of a file without .lmc"
expect_status 1 "compress a .lmc file" "$LMC" compress --fast text.lmc
expect_stderr 'text.lmc: already has the .lmc suffix' "compress a .lmc file"
expect_no_file text.lmc.lmc "compress a .lmc file"
expect_status 0 "compress a .lmc file with -f" "$LMC" compress --fast -f text.lmc
expect_file text.lmc.lmc "compress -f a .lmc file"
cp text.lmc .lmc
expect_status 1 "decompress '.lmc' (no name left)" "$LMC" decompress .lmc

# Several inputs with a missing one: the others are done, the exit status is 1.
rm -f other.lmc text.lmc
expect_status 1 "compress with a missing input" "$LMC" compress --fast text missing other
expect_stderr '^lmc: missing: No such file or directory$' "missing input message"
expect_file text.lmc "inputs before the missing one"
expect_file other.lmc "inputs after the missing one"
rm other
expect_status 1 "decompress with a missing input" "$LMC" decompress missing.lmc other.lmc
expect_same other other.orig "decompress continues after a missing input"

# Inputs that are not files, outputs that cannot be made.
mkdir folder
expect_status 1 "compress a directory" "$LMC" compress --fast folder
expect_stderr 'folder: is a directory' "compress a directory"
expect_status 1 "decompress a directory" "$LMC" decompress folder
expect_status 1 "-o into a missing folder" "$LMC" compress --fast -o no/such/dir/x.lmc text
expect_status 1 "-o names a directory" "$LMC" compress --fast -f -o folder text
if [ "$(id -u)" -ne 0 ]; then
    cp text unreadable
    chmod 000 unreadable
    expect_status 1 "unreadable input" "$LMC" compress --fast unreadable
    expect_stderr 'unreadable: Permission denied' "unreadable input"
    expect_no_file unreadable.lmc "unreadable input"
else
    echo "note: running as root, skipping the unreadable-file check"
fi

expect_no_temp_files
finish
