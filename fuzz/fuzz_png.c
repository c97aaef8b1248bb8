/*
 * libFuzzer target for the image readers, PNG (libpng) and PNM, through
 * lmc_media_parse (src/format/media.h): any input must
 * give a clean error or an item that writes back and re-parses to the same
 * description, samples and side data (the round-trip property). Seeds:
 * fuzz/corpus/png/ (small PNGs of every colour type and depth, interlaced,
 * with ancillary chunks, an APNG; a few PGM/PPM/PAM files).
 *
 * Mutated PNG chunks almost never keep a valid CRC, and libpng refuses
 * critical chunks with a wrong one, so the target first rewrites every
 * complete chunk's CRC: the mutations then reach libpng's decoder and the
 * round trip. (The CRC checks themselves are covered by tests/test_media.c.)
 *
 * Build: cmake -DCMAKE_C_COMPILER=clang -DLMC_FUZZ=ON; run with
 * fuzz/run_fuzzer.sh build/fuzz/fuzz_png fuzz/corpus/png SECONDS.
 */
#include "media_roundtrip.h"

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = crc >> 1 ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* Rewrites the CRC of every complete chunk of a PNG in place. */
static void fix_crcs(uint8_t *p, size_t size) {
    if (size < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) != 0)
        return;
    for (size_t pos = 8; size - pos >= 12;) {
        size_t length = (size_t)p[pos] << 24 | (size_t)p[pos + 1] << 16 | (size_t)p[pos + 2] << 8 | p[pos + 3];
        if (length > size - pos - 12)
            return;
        uint32_t crc = crc32_png(p + pos + 4, length + 4);
        uint8_t *out = p + pos + 8 + length;
        out[0] = (uint8_t)(crc >> 24);
        out[1] = (uint8_t)(crc >> 16);
        out[2] = (uint8_t)(crc >> 8);
        out[3] = (uint8_t)crc;
        pos += length + 12;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    check_roundtrip(copy, size, lmc_media_parse);
    free(copy);
    return 0;
}
