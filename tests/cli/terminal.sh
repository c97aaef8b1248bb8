#!/bin/bash
# Behaviour on a terminal (through script(1)'s pseudo-terminal): compressed
# data is refused on terminals without -f, and a progress line appears on
# stderr unless -q.
source "$(dirname "$0")/helpers.bash" "$@"

if ! command -v script >/dev/null || ! script -qec true /dev/null >/dev/null 2>&1; then
    echo "SKIP: script(1) cannot make a pseudo-terminal here"
    exit 0
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

# The progress line: drawn only when the work lasts long enough (timed first
# without a terminal); small blocks make the library report often.
make_text big 12000
start=$(date +%s%N)
"$LMC" compress --fast -T 1 --block-size 16K -c big >/dev/null || fail "compress big"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
on_terminal "'$LMC' compress --fast -T 1 --block-size 16K big"
[ "$STATUS" -eq 0 ] || fail "compress on a terminal: exit status $STATUS"
if [ "$elapsed_ms" -gt 500 ]; then
    expect_stdout 'big +[0-9]+%  .* -> .*/s  ETA [0-9]+:[0-9][0-9]' "progress line"
else
    echo "note: compression took ${elapsed_ms} ms, too quick for a progress line"
fi
on_terminal "'$LMC' compress --fast -q -f big"
grep -q '%' "$OUT" && fail "-q still shows progress: $(cat "$OUT")"
on_terminal "'$LMC' compress --fast -f big 2>/dev/null"
grep -q '%' "$OUT" && fail "progress shown while stderr is not a terminal"
finish
