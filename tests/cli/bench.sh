#!/bin/bash
# lmc bench --fast on two small files: the table, the CSV, the SVG chart,
# --no-others, a codec missing from PATH, and the scratch folder's removal.
source "$(dirname "$0")/helpers.bash" "$@"

mkdir inputs scratch
make_text inputs/b.txt 300
make_binary inputs/a.bin 3000
mkdir inputs/subfolder
make_text inputs/subfolder/ignored.txt 10
export TMPDIR=$WORK/scratch
CODECS='lmc --fast|gzip -9|bzip2 -9|xz -9e|zstd -22|zpaq -m5'
CSV_HEADER=file,bytes,codec,compressed,bits_per_byte,compress_kbps,decompress_kbps,roundtrip

# A CSV row: the file, its size, a codec, then measures or empty fields.
csv_row_pattern() {
    local number='[0-9]+(\.[0-9]+)?'
    echo "^inputs/(a\.bin|b\.txt),[0-9]+,($CODECS),(([0-9]+,$number,$number,$number,ok)|(,,,,(missing|failed)))\$"
}

check_csv() {
    [ "$(head -n 1 results.csv)" = "$CSV_HEADER" ] || fail "CSV header: $(head -n 1 results.csv)"
    [ "$(wc -l <results.csv)" -eq $((1 + 2 * 6)) ] || fail "CSV: expected 12 rows, got: $(cat results.csv)"
    local bad
    bad=$(tail -n +2 results.csv | grep -Ev "$(csv_row_pattern)")
    [ -z "$bad" ] || fail "malformed CSV rows: $bad"
    grep -q "^inputs/b.txt,$(file_size inputs/b.txt),lmc --fast,[0-9]" results.csv || fail "CSV lacks lmc's row for b.txt"
    # Rows follow the files' sorted order.
    [ "$(cut -d, -f1 results.csv | uniq | tr '\n' ' ')" = "file inputs/a.bin inputs/b.txt " ] ||
        fail "CSV rows are not grouped by file in name order"
}

check_svg() {
    grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' results.svg || fail "SVG: no svg element"
    [ "$(tail -n 1 results.svg)" = "</svg>" ] || fail "SVG: does not end with </svg>"
    if command -v xmllint >/dev/null; then
        xmllint --noout results.svg 2>"$WORK/xmllint" || fail "SVG is not well-formed XML: $(cat "$WORK/xmllint")"
    fi
    for label in a.bin b.txt TOTAL 'lmc --fast' 'gzip -9' 'compression ratio'; do
        grep -q ">$label" results.svg || fail "SVG lacks the label '$label'"
    done
    [ "$(grep -c '<rect .*<title>' results.svg)" -ge 3 ] || fail "SVG: too few bars"
}

check_table() {
    expect_stdout '^FILE +KIND +BYTES +CODEC +COMPRESSED +RATIO +BPB +COMP KB/s +DECOMP KB/s +ROUND TRIP$' "table header"
    expect_stdout "^inputs/b\.txt +text +$(file_size inputs/b.txt) +lmc --fast +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +ok$" \
        "lmc row for b.txt"
    expect_stdout '^inputs/a\.bin +bytes +3000 +gzip -9 +[0-9]+ ' "gzip row for a.bin"
    expect_stdout "^TOTAL +- +$(($(file_size inputs/b.txt) + 3000)) +lmc --fast +[0-9]+ +[0-9.]+ +[0-9.]+ " "lmc's total"
    grep -q ignored "$OUT" && fail "bench entered a subfolder"
    expect_no_file inputs/a.bin.lmc "bench writes nothing beside its inputs"
}

expect_status 0 "bench" "$LMC" bench --fast -T 2 --csv results.csv --svg results.svg inputs
check_table
check_csv
check_svg
[ -z "$(ls -A scratch)" ] || fail "bench left its scratch folder: $(ls -A scratch)"

expect_status 0 "bench --no-others" "$LMC" bench --fast --no-others inputs/b.txt inputs/a.bin
[ "$(grep -c 'lmc --fast' "$OUT")" -eq 3 ] || fail "--no-others: expected two rows and a total for lmc: $(cat "$OUT")"
grep -Eq 'gzip|zpaq' "$OUT" && fail "--no-others ran other codecs"
expect_stdout '^inputs/b\.txt ' "files named on the command line keep their order"

# A PATH holding every codec but zpaq.
mkdir tools
for program in gzip bzip2 xz zstd; do
    found=$(command -v "$program") && ln -s "$found" "tools/$program"
done
expect_status 0 "bench without zpaq" env PATH="$WORK/tools" "$LMC" bench --fast --csv missing.csv inputs/a.bin
expect_stdout '^inputs/a\.bin +bytes +3000 +zpaq -m5 +- +- +- +- +- +missing$' "zpaq reported missing"
expect_stdout '^TOTAL +- +- +zpaq -m5 .* missing$' "zpaq's total reported missing"
grep -q '^inputs/a.bin,3000,zpaq -m5,,,,,missing$' missing.csv || fail "CSV lacks zpaq's missing row: $(cat missing.csv)"

# A "gzip" that gives back one byte too many is caught, and only reported.
mkdir broken
printf '#!/bin/sh\ncat\n[ "$1" = -d ] && echo extra\nexit 0\n' >broken/gzip
chmod +x broken/gzip
expect_status 0 "bench with a broken gzip" env PATH="$WORK/broken" "$LMC" bench --fast inputs/a.bin
expect_stdout '^inputs/a\.bin +bytes +3000 +gzip -9 +- .* FAILED$' "a broken codec's round trip fails"
expect_stdout '^TOTAL .* gzip -9 .* 1 FAILED$' "a broken codec's total counts the failure"
expect_stderr '^lmc: inputs/a.bin: gzip -9: round trip failed' "a broken codec is reported"
expect_stdout '^inputs/a\.bin +bytes +3000 +lmc --fast +[0-9]+ .* ok$' "lmc's result beside a broken codec"

expect_status 2 "bench without files" "$LMC" bench --fast
expect_status 2 "--csv for compress" "$LMC" compress --csv x.csv inputs/b.txt
expect_status 1 "bench of a missing file" "$LMC" bench --fast --no-others no-such-file inputs/b.txt
expect_stderr '^lmc: no-such-file: ' "bench of a missing file"
expect_stdout '^inputs/b\.txt ' "bench goes on after a missing file"
finish
