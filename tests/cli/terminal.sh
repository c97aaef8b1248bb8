#!/bin/bash
# Behaviour on a terminal (through script(1)'s pseudo-terminal): compressed
# data is refused on terminals without -f, and a progress line appears on
# stderr unless -q.
source "$(dirname "$0")/helpers.bash" "$@"

if ! command -v script >/dev/null || ! script -qec true /dev/null >/dev/null 2>&1; then
    skip "script(1) cannot make a pseudo-terminal here"
fi

# on_terminal COMMAND: runs it with stdin, stdout and stderr on a new
# terminal; what the terminal showed lands in $OUT, the status in STATUS.
on_terminal() {
    script -qec "$1" /dev/null </dev/null >"$OUT" 2>&1
    STATUS=$?
}

make_text text 100
on_terminal "'$LMC' compress --fast -c text"
[ "$STATUS" -eq 1 ] || fail "compressed data to a terminal: exit status $STATUS, expected 1"
expect_stdout 'refusing to write compressed data to a terminal' "compressed data to a terminal"
on_terminal "'$LMC' compress --fast"
expect_stdout 'refusing to write compressed data to a terminal' "stdin to a terminal stdout"
on_terminal "'$LMC' compress --fast -f -c text >/dev/null"
[ "$STATUS" -eq 0 ] || fail "compress -f to a terminal: exit status $STATUS, expected 0"

"$LMC" compress --fast -q text || fail "could not make the archive"
for command in decompress test info; do
    on_terminal "'$LMC' $command"
    [ "$STATUS" -eq 1 ] || fail "$command from a terminal: exit status $STATUS, expected 1"
    expect_stdout 'refusing to read compressed data from a terminal' "$command from a terminal"
done
on_terminal "'$LMC' decompress -c text.lmc"
[ "$STATUS" -eq 0 ] || fail "decompressed data to a terminal: exit status $STATUS, expected 0"
expect_stdout '^line 1: ' "decompressed data to a terminal"

# The progress line: expected only when a run lasts long enough for a draw
# (the first comes after a quarter second); small blocks make the library
# report often.
# timed_on_terminal COMMAND: on_terminal, setting ELAPSED_MS.
timed_on_terminal() {
    local start
    start=$(date +%s%N)
    on_terminal "$1"
    ELAPSED_MS=$((($(date +%s%N) - start) / 1000000))
}
make_text big 12000
timed_on_terminal "'$LMC' compress --fast -T 1 --block-size 16K big"
[ "$STATUS" -eq 0 ] || fail "compress on a terminal: exit status $STATUS"
if [ "$ELAPSED_MS" -gt 600 ]; then
    expect_stdout 'big +[0-9]+%  .* -> .*/s  ETA [0-9]+:[0-9][0-9]' "progress line"
else
    echo "note: compression took ${ELAPSED_MS} ms, too quick for a progress line"
fi
# Decoding shows the share of the original size decoded so far.
timed_on_terminal "'$LMC' decompress -T 1 -c big.lmc >/dev/null"
[ "$STATUS" -eq 0 ] || fail "decompress on a terminal: exit status $STATUS"
if [ "$ELAPSED_MS" -gt 600 ]; then
    expect_stdout 'big.lmc +[0-9]+%  .* -> .*/s  ETA [0-9]+:[0-9][0-9]' "decompression progress line"
else
    echo "note: decompression took ${ELAPSED_MS} ms, too quick for a progress line"
fi
on_terminal "'$LMC' compress --fast -q -f big"
grep -q '%' "$OUT" && fail "-q still shows progress: $(cat "$OUT")"
on_terminal "'$LMC' compress --fast -f big 2>/dev/null"
grep -q '%' "$OUT" && fail "progress shown while stderr is not a terminal"
finish
