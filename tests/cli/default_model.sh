#!/bin/bash
# Small round trips with the neural models that `lmc models` lists (skipped
# when it lists none): one named by -m, and the default model for text when
# a listed model is the default for text.
source "$(dirname "$0")/helpers.bash" "$@"

model=$(first_model)
if [ -z "$model" ]; then
    skip "lmc models lists no model"
fi
make_text text 40

expect_status 0 "compress -m $model" "$LMC" compress -q -m "$model" -o named.lmc text
expect_status 0 "info of a model archive" "$LMC" info named.lmc
expect_stdout '^  model hash: +[0-9a-f]{32}$' "info shows the model hash"
grep -Eiq "^  model: +$model\$" "$OUT" || fail "info does not name the model given by -m ($model): $(cat "$OUT")"
expect_status 0 "test a model archive" "$LMC" test named.lmc
expect_status 0 "decompress a model archive" "$LMC" decompress -c named.lmc
expect_same "$OUT" text "round trip with -m $model"

expect_status 1 "compress -m with a missing model" "$LMC" compress -q -m no-such-model -o none.lmc text
expect_stderr '^lmc: text: ' "missing model message"
expect_no_file none.lmc "a missing model leaves no output"

text_model=$("$LMC" models 2>/dev/null | awk 'NR > 1 && $2 == "text" { print $1; exit }')
if [ -n "$text_model" ]; then
    expect_status 0 "compress with the default text model" "$LMC" compress -q text
    expect_status 0 "info of a default-model archive" "$LMC" info text.lmc
    grep -q 'model: +none' "$OUT" && fail "the default model's archive claims no model"
    expect_status 0 "decompress a default-model archive" "$LMC" decompress -c text.lmc
    expect_same "$OUT" text "round trip with the default text model ($text_model)"
else
    echo "note: no listed model is the default for text; default-model round trip skipped"
fi
expect_no_temp_files
finish
