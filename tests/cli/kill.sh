#!/bin/bash
# SIGKILL at any moment leaves the input intact and no complete-looking
# output: lmc writes to a hidden temporary file and renames it into place
# only when the archive (or the decoded file) is complete and verified.
source "$(dirname "$0")/helpers.bash" "$@"

make_text big 400000            # about 24 MB: several seconds of --fast work
cp big big.orig
"$LMC" compress --fast -q -o small.lmc big.orig || fail "reference compression failed"

# kill_after SECONDS CMD...: starts CMD, SIGKILLs it after SECONDS.
kill_after() {
    local delay=$1
    shift
    "$@" >/dev/null 2>&1 &
    local pid=$!
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

for delay in 0.05 0.3 1; do
    kill_after "$delay" "$LMC" compress --fast --rm -T 2 big
    expect_same big big.orig "input after SIGKILL at ${delay}s of compress --rm"
    [ -e big.lmc ] && fail "a complete-looking big.lmc after SIGKILL at ${delay}s"
    kill_after "$delay" "$LMC" decompress -T 2 -o restored small.lmc
    [ -e restored ] && ! cmp -s restored big.orig && fail "a wrong 'restored' after SIGKILL at ${delay}s"
    rm -f restored
    expect_file small.lmc "archive after SIGKILL of decompress"
done
# Whatever a killed run left behind is hidden and named as temporary.
for leftover in .[!.]*; do
    [ -e "$leftover" ] || continue
    case $leftover in
        .big.lmc.* | .restored.* | .stdout | .stderr) ;;
        *) fail "unexpected leftover $leftover" ;;
    esac
done
finish
