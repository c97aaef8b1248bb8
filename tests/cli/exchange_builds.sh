#!/bin/bash
# Archives made by one build (this one) and another (LMC_OTHER_BUILD, e.g. a
# gcc build when this is clang) are identical, and each decodes the other's,
# with --fast and with every shipped model, under different thread counts
# and SIMD levels.
source "$(dirname "$0")/helpers.bash" "$@"
OTHER=${LMC_OTHER_BUILD:-}
if [ -z "$OTHER" ] || [ ! -x "$OTHER" ]; then
    echo "SKIP: set LMC_OTHER_BUILD to another build's lmc binary"
    exit 77
fi

make_text text 60
make_binary binary 1500
cat text binary >mixed

modes=("--fast")
while read -r name; do
    modes+=("-m $name")
done < <("$LMC" models -q 2>/dev/null)

for mode in "${modes[@]}"; do
    for input in text mixed; do
        # shellcheck disable=SC2086
        LMC_SIMD=avx512 "$LMC" compress -q -f -T 2 $mode -o "a.$input.lmc" "$input" || fail "$mode: this build failed on $input"
        # shellcheck disable=SC2086
        LMC_SIMD=scalar "$OTHER" compress -q -f -T 1 $mode -o "b.$input.lmc" "$input" || fail "$mode: other build failed on $input"
        cmp -s "a.$input.lmc" "b.$input.lmc" || fail "$mode: archives of $input differ between builds"
        LMC_SIMD=avx2 "$OTHER" decompress -q -f -T 3 -o "a.$input.out" "a.$input.lmc" || fail "$mode: other build cannot decode $input"
        LMC_SIMD=scalar "$LMC" decompress -q -f -T 1 -o "b.$input.out" "b.$input.lmc" || fail "$mode: this build cannot decode $input"
        expect_same "a.$input.out" "$input" "$mode: $input via the other build"
        expect_same "b.$input.out" "$input" "$mode: $input via this build"
    done
done
echo "exchanged archives for: ${modes[*]}"
finish
