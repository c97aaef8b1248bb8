/*
 * libFuzzer target for the Y4M reader (src/format/media.h): any input must
 * pass media_roundtrip.h's round-trip check. Seeds:
 * fuzz/corpus/y4m/ (generated Y4M variants).
 *
 * Build: cmake -DCMAKE_C_COMPILER=clang -DLMC_FUZZ=ON; run with
 * fuzz/run_fuzzer.sh build/fuzz/fuzz_y4m fuzz/corpus/y4m SECONDS.
 */
#include "media_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_roundtrip(data, size, lmc_y4m_parse);
    return 0;
}
