#!/bin/bash
# Round trips with --fast: several files at once, pipes, -c, -o, mode flags,
# metadata, and names that look like options.
source "$(dirname "$0")/helpers.bash" "$@"

mkdir orig
: >orig/empty
printf 'x' >orig/one
make_text orig/text 600
make_binary orig/binary 20000
make_text "orig/with space" 20
chmod 640 orig/text
touch -d '2001-02-03 04:05:06' orig/text
cp -p orig/* .

# Several inputs at once; the inputs stay.
expect_status 0 "compress several" "$LMC" compress --fast -q empty one text binary "with space"
[ ! -s "$OUT" ] && [ ! -s "$ERR" ] || fail "compress -q printed something"
for name in empty one text binary "with space"; do
    expect_file "$name.lmc" "compress several"
    expect_same "$name" "orig/$name" "compress keeps $name"
done
[ "$(stat -c %a text.lmc)" = 640 ] || fail "archive mode $(stat -c %a text.lmc), expected 640"
[ "$(stat -c %Y text.lmc)" = "$(stat -c %Y orig/text)" ] || fail "archive mtime differs from the input's"

# Decompress them all where the originals were.
rm empty one text binary "with space"
expect_status 0 "decompress several" "$LMC" decompress empty.lmc one.lmc text.lmc binary.lmc "with space.lmc"
for name in empty one text binary "with space"; do
    expect_same "$name" "orig/$name" "round trip of $name"
    expect_file "$name.lmc" "decompress keeps $name.lmc"
done
[ "$(stat -c %a text)" = 640 ] || fail "decompressed mode $(stat -c %a text), expected 640"
[ "$(stat -c %Y text)" = "$(stat -c %Y orig/text)" ] || fail "decompressed mtime differs"

# Pipes: stdin to stdout both ways, with and without '-'.
"$LMC" compress --fast <orig/text | "$LMC" decompress >piped || fail "pipe round trip failed"
expect_same piped orig/text "pipe round trip"
cat orig/binary | "$LMC" compress --fast - >stdin.lmc || fail "compress - failed"
"$LMC" decompress -c - <stdin.lmc >piped2 || fail "decompress -c - failed"
expect_same piped2 orig/binary "round trip through '-'"
expect_no_file -.lmc "'-' names no file"

# -c and -o.
rm text.lmc
expect_status 0 "compress -c" "$LMC" compress --fast -c text
expect_no_file text.lmc "compress -c writes no file"
cp "$OUT" c.lmc
expect_status 0 "decompress -c" "$LMC" decompress -c c.lmc
expect_same "$OUT" orig/text "-c round trip"
expect_status 0 "compress -o" "$LMC" compress --fast -o custom.bin text
expect_file custom.bin "compress -o"
expect_no_file text.lmc "compress -o writes only the named file"
expect_status 0 "decompress -o (no .lmc suffix needed)" "$LMC" decompress -o back custom.bin
expect_same back orig/text "-o round trip"
expect_status 0 "compress -o -" "$LMC" compress --fast -o - text
expect_same "$OUT" c.lmc "-o - is stdout"

# Decompressing several archives to stdout concatenates their contents.
expect_status 0 "decompress -c of two archives" "$LMC" decompress -c one.lmc c.lmc
cat orig/one orig/text >joined
expect_same "$OUT" joined "decompress -c of two archives"

# Mode flags instead of the command word, options after the files, -k.
expect_status 0 "-z" "$LMC" -z one --fast -f -k
expect_status 0 "-d -c" "$LMC" -d -c one.lmc
expect_same "$OUT" orig/one "-d -c"
expect_status 0 "-t" "$LMC" -t one.lmc c.lmc
expect_status 0 "-l" "$LMC" -l one.lmc
expect_stdout 'original size' "-l shows info"

# A file whose name starts with '-', after '--'.
cp orig/one ./-dash
expect_status 0 "compress -- -dash" "$LMC" compress --fast -- -dash
expect_file ./-dash.lmc "compress -- -dash"
rm ./-dash
expect_status 0 "decompress -- -dash.lmc" "$LMC" decompress -- -dash.lmc
expect_same ./-dash orig/one "round trip of -dash"

# Threads and block size do not change the decoded bytes.
expect_status 0 "compress -T 1 --block-size 4K" "$LMC" compress --fast -T 1 --block-size 4K -o small-blocks.lmc binary
expect_status 0 "decompress -T 2" "$LMC" decompress -T 2 -c small-blocks.lmc
expect_same "$OUT" orig/binary "round trip with 4 KiB blocks"

expect_no_temp_files
finish
