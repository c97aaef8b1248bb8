#!/bin/bash
# lmc tokenize against llama.cpp's test vectors, lmc models --inspect, and
# compress's --window/--stride tuning knobs.
source "$(dirname "$0")/helpers.bash" "$@"

# The peer material: LMC_SHARED_DIR (set by ctest), else beside the repository.
find_vocab_folder() {
    local shared
    for shared in "${LMC_SHARED_DIR:-}" "${ROOT:+$ROOT/../shared}" /work/shared; do
        if [ -n "$shared" ] && [ -d "$shared/peer/gguf-vocab" ]; then
            echo "$shared/peer/gguf-vocab"
            return
        fi
    done
}
VOCABS=$(find_vocab_folder)

# test_vector VOCAB N: the Nth input of VOCAB.inp, byte for byte, into
# "input", and the expected ids (line N of VOCAB.out) into "expected".
test_vector() {
    awk -v n="$2" 'BEGIN { RS = "\n__ggml_vocab_test__\n" } NR == n { printf "%s", $0 }' "$1.inp" >input
    sed -n "$2p" "$1.out" | sed 's/^ //' >expected
}

# Inputs 12, 19 and 33: "Hello world", " this is 🦙.cpp", and a mix of
# apostrophes, emoji, CJK and digits.
check_tokenize_vectors() {
    local vocab n
    for vocab in "$VOCABS"/*.gguf; do
        for n in 12 19 33; do
            test_vector "$vocab" "$n"
            expect_status 0 "tokenize $(basename "$vocab") #$n" "$LMC" tokenize -m "$vocab" <input
            cmp -s "$OUT" expected ||
                fail "tokenize $(basename "$vocab") #$n: got '$(cat "$OUT")', expected '$(cat expected)'"
        done
    done
}

check_tokenize() {
    local vocab=$VOCABS/ggml-vocab-llama-bpe.gguf
    printf 'Hello world' >input
    expect_status 0 "tokenize" "$LMC" tokenize -m "$vocab" <input
    [ "$(cat "$OUT")" = "9906 1917" ] || fail "tokenize 'Hello world': got '$(cat "$OUT")', expected '9906 1917'"
    [ "$(wc -l <"$OUT")" -eq 1 ] || fail "tokenize: expected one newline-terminated line"
    expect_status 0 "tokenize of nothing" "$LMC" tokenize -m "$vocab" </dev/null
    [ "$(od -An -c "$OUT" | tr -d ' ')" = '\n' ] || fail "tokenize of nothing: expected an empty line"
    check_tokenize_vectors
}

check_inspect() {
    local vocab=$VOCABS/ggml-vocab-llama-spm.gguf field
    expect_status 0 "models --inspect" "$LMC" models --inspect "$vocab"
    for field in "file size: $(file_size "$vocab")" 'hash: [0-9a-f]{32}' 'gguf version: [0-9]+' \
        'general.architecture: llama' 'tokenizer.ggml.model: llama' 'tokenizer: .*32000 tokens' 'tensors: 0'; do
        expect_stdout "^$field\$" "models --inspect field /$field/"
    done
    expect_status 1 "models --inspect of a missing model" "$LMC" models --inspect no-such-model
    expect_stderr '^lmc: no-such-model: ' "models --inspect of a missing model"
}

check_tool_errors() {
    expect_status 2 "tokenize without -m" "$LMC" tokenize </dev/null
    expect_status 2 "tokenize with a file" "$LMC" tokenize -m x input
    expect_status 2 "--window for decompress" "$LMC" decompress --window 64 x.lmc
    expect_status 2 "--window nonsense" "$LMC" compress --window many input
    expect_status 2 "--stride -1" "$LMC" compress --stride -1 input
    expect_status 2 "--inspect without a model" "$LMC" models --inspect
    expect_status 2 "--inspect for info" "$LMC" info --inspect x x.lmc
    echo x >input
    expect_status 1 "tokenize with a missing model" "$LMC" tokenize -m no-such-model <input
    expect_stderr '^lmc: no-such-model: ' "tokenize with a missing model"
    [ ! -s "$OUT" ] || fail "tokenize with a missing model printed ids"
}

# A smaller window and stride than the model's are recorded and decode back.
check_window() {
    local model=$1
    make_text text 60
    expect_status 0 "compress --window 32 --stride 8" "$LMC" compress -m "$model" --window 32 --stride 8 -T 2 text
    expect_status 0 "info" "$LMC" info text.lmc
    expect_stdout '^  context window: +32 tokens \(stride 8\)' "--window/--stride recorded"
    expect_status 0 "decompress" "$LMC" decompress -c text.lmc
    expect_same "$OUT" text "--window/--stride round trip"
    expect_status 1 "a stride above the window" "$LMC" compress -m "$model" --window 16 --stride 17 -f text
    expect_stderr 'window|stride' "a stride above the window"
}

check_tool_errors
if [ -n "$VOCABS" ]; then
    check_tokenize
    check_inspect
else
    echo "note: no peer/gguf-vocab folder; tokenize and --inspect checks skipped"
fi
model=$(first_model)
if [ -n "$model" ]; then
    check_window "$model"
else
    echo "note: no models listed; --window/--stride round trip skipped"
fi
finish
