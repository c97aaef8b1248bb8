# Shared helpers of the CLI shell tests, sourced by each tests/cli/*.sh (this
# file's suffix keeps ctest from running it as a test of its own).
# Usage in a test: source "$(dirname "$0")/helpers.bash" "$@"
# Then: $LMC is the binary, the current folder is an empty scratch folder,
# check with the expect_* functions and end with finish (or skip, which
# exits with 77, the status ctest counts as skipped).

LMC=${1:?usage: TEST.sh PATH-TO-LMC REPO-ROOT}
ROOT=${2:-}
case $LMC in /*) ;; *) LMC=$PWD/$LMC ;; esac
if [ ! -x "$LMC" ]; then
    echo "FAIL: no lmc binary at $LMC"
    exit 1
fi
if ! "$LMC" --version >/dev/null 2>&1; then
    echo "FAIL: $LMC --version does not run"
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lmc-cli-test.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
FAILURES=0
OUT=$WORK/.stdout
ERR=$WORK/.stderr

fail() {
    echo "FAIL: $*"
    FAILURES=$((FAILURES + 1))
}

# run CMD...: runs it with stdout and stderr captured in $OUT and $ERR; sets STATUS.
run() {
    "$@" >"$OUT" 2>"$ERR"
    STATUS=$?
}

# expect_status WANT WHAT CMD...: runs CMD and checks its exit status.
expect_status() {
    local want=$1 what=$2
    shift 2
    run "$@"
    if [ "$STATUS" -ne "$want" ]; then
        fail "$what: exit status $STATUS, expected $want; stderr: $(head -c 400 "$ERR")"
    fi
}

# expect_stderr PATTERN WHAT: the last run's stderr matches the extended regex.
expect_stderr() {
    grep -Eq -- "$1" "$ERR" || fail "$2: stderr lacks /$1/: $(head -c 400 "$ERR")"
}

# expect_stdout PATTERN WHAT: the last run's stdout matches the extended regex.
expect_stdout() {
    grep -Eq -- "$1" "$OUT" || fail "$2: stdout lacks /$1/: $(head -c 400 "$OUT")"
}

expect_file() {
    [ -f "$1" ] || fail "$2: $1 is missing"
}

expect_no_file() {
    [ ! -e "$1" ] || fail "$2: $1 should not exist"
}

# expect_same A B WHAT: files A and B are identical.
expect_same() {
    cmp -s -- "$1" "$2" || fail "$3: $1 and $2 differ"
}

# expect_no_temp_files [DIR]: no ".NAME.XXXXXX" leftovers of lmc's temporary outputs.
expect_no_temp_files() {
    local leftovers
    leftovers=$(find "${1:-.}" -name '.*.??????' -type f 2>/dev/null)
    [ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"
}

# make_text FILE LINES: deterministic text.
make_text() {
    awk -v n="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "line %d: the quick brown fox %d jumps over %d lazy dogs\n", i, i * 7 % 13, i % 97 }' >"$1"
}

# make_binary FILE BYTES: random bytes.
make_binary() {
    head -c "$2" /dev/urandom >"$1"
}

# flip_byte FILE OFFSET: inverts the lowest bit of one byte in place.
flip_byte() {
    local value
    value=$(od -An -tu1 -j "$2" -N1 -- "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((value ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

file_size() {
    stat -c %s -- "$1"
}

# The first model `lmc models` lists, or nothing.
# The first listed model that codes bytes or text (image and audio models
# code only their media).
first_model() {
    "$LMC" models 2>/dev/null | awk 'NR > 1 && ($2 == "bytes" || $2 == "text") { print $1; exit }'
}

skip() {
    echo "SKIP: $*"
    exit 77
}

finish() {
    if [ "$FAILURES" -gt 0 ]; then
        echo "$FAILURES check(s) failed"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
