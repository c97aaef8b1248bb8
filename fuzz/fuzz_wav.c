/*
 * libFuzzer target for the WAV reader (src/format/media.h): any input must
 * pass media_roundtrip.h's round-trip check. Seeds:
 * fuzz/corpus/wav/ (generated WAV variants).
 *
 * Build: cmake -DCMAKE_C_COMPILER=clang -DLMC_FUZZ=ON; run with
 * fuzz/run_fuzzer.sh build/fuzz/fuzz_wav fuzz/corpus/wav SECONDS.
 */
#include "media_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_roundtrip(data, size, lmc_wav_parse);
    return 0;
}
