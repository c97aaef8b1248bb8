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

# A small PPM (an RGB gradient with noise) for the image models.
awk 'BEGIN { srand(7); printf "P6\n48 40\n255\n";
             for (y = 0; y < 40; y++) for (x = 0; x < 48; x++)
                 printf "%c%c%c", (x * 5 + y) % 256, (y * 6 + int(rand() * 9)) % 256, (x * y) % 256 }' >image.ppm

# Token models code the text and mixed inputs; sample models the image.
modes=("--fast")
declare -A inputs_of=([--fast]="text mixed")
while read -r name kind; do
    modes+=("-m $name")
    case "$kind" in
        image) inputs_of["-m $name"]="image.ppm" ;;
        text | bytes) inputs_of["-m $name"]="text mixed" ;;
        *) inputs_of["-m $name"]="" ;;
    esac
done < <("$LMC" models 2>/dev/null | awk 'NR > 1 { print $1, $2 }')

for mode in "${modes[@]}"; do
    for input in ${inputs_of[$mode]}; do
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
