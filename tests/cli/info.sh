#!/bin/bash
# What info, test and models print.
source "$(dirname "$0")/helpers.bash" "$@"

make_text text 700
make_binary binary 5000
"$LMC" compress --fast -q text binary || fail "could not make the archives"

expect_status 0 "info" "$LMC" info text.lmc
expect_stdout '^text.lmc$' "info names the archive"
for field in 'kind: +text' 'model: +none' 'original size: +'"$(file_size text)"' bytes' \
    'archive size: +'"$(file_size text.lmc)"' bytes' 'ratio: +[0-9]+\.[0-9]+ \([0-9.]+ bits per byte\)' \
    'blocks: +[0-9]+ \([0-9]+ stored\)' 'block size: +[0-9]+ bytes' 'context window: ' \
    'format version: +[0-9]+' 'numerics version: +[0-9]+'; do
    expect_stdout "^  $field" "info field /$field/"
done
[ ! -s "$ERR" ] || fail "info wrote to stderr: $(cat "$ERR")"

expect_status 0 "info of two archives" "$LMC" info text.lmc binary.lmc
expect_stdout '^binary.lmc$' "info of two archives"
[ "$(grep -c 'original size' "$OUT")" -eq 2 ] || fail "info of two archives: expected two reports"
expect_status 0 "info from stdin" "$LMC" info <text.lmc
expect_stdout '^\(stdin\)$' "info from stdin"
expect_status 1 "info of a missing file" "$LMC" info missing.lmc text.lmc
expect_stdout '^text.lmc$' "info continues after a missing file"

expect_status 0 "test" "$LMC" test text.lmc binary.lmc
[ ! -s "$OUT" ] && [ ! -s "$ERR" ] || fail "test printed something without -v"
expect_status 0 "test -v" "$LMC" test -v text.lmc
expect_stderr '^lmc: text.lmc: OK$' "test -v"
expect_stderr 'ratio [0-9.]+' "test -v statistics"
expect_status 0 "compress -v" "$LMC" compress --fast -v -f text
expect_stderr '^lmc: text: .* -> .*ratio [0-9.]+, [0-9.]+ bits/byte\), [0-9.]+ s, .*/s$' "compress -v statistics"

expect_status 0 "models" "$LMC" models
expect_stdout '^NAME +KIND +SIZE +HASH +DESCRIPTION' "models header"
expect_status 0 "models -q" "$LMC" models -q
if [ -s "$OUT" ]; then
    model=$(head -n 1 "$OUT")
    "$LMC" models >"$WORK/table" 2>/dev/null
    grep -Eq "^$model +[a-z]+ +[0-9.]+ [KMG]?i?B +[0-9a-f]{32}" "$WORK/table" ||
        fail "models: no row with name, kind, size and hash for $model: $(cat "$WORK/table")"
    expect_status 0 "models -v" "$LMC" models -v
    expect_stdout 'path: /' "models -v shows paths"
else
    echo "note: no models listed; row checks skipped"
fi
finish
