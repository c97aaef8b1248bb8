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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/media.h"

/* Keeps each run small: an image of 4 Mi samples is plenty to find bugs. */
#define FUZZ_MAX_SAMPLES ((uint64_t)1 << 22)

static void check(int condition) {
    if (!condition) abort();
}

static int same_samples(const lmc_media *a, const lmc_media *b) {
    if (a->count != b->count)
        return 0;
    if (a->samples)
        return b->samples && memcmp(a->samples, b->samples, a->count * sizeof *a->samples) == 0;
    return b->audio && memcmp(a->audio, b->audio, a->count * sizeof *a->audio) == 0;
}

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

static void check_roundtrip(const uint8_t *data, size_t size) {
    lmc_media item, again;
    lmc_message message;
    if (lmc_media_parse(data, size, FUZZ_MAX_SAMPLES, &item, &message) != LMC_OK) {
        check(item.samples == NULL && item.audio == NULL && item.side == NULL && message.text[0] != '\0');
        return;
    }
    check(item.count == (item.desc.kind == LMC_KIND_AUDIO ? item.desc.frames * item.desc.channels
                                                          : item.desc.frames * lmc_media_frame_samples(&item.desc)));
    lmc_buf out;
    lmc_buf_init(&out);
    check(lmc_media_write(&item, &out, &message) == LMC_OK);
    if (item.desc.format != LMC_MEDIA_PNG) /* byte-exact formats */
        check(out.size == size && memcmp(out.data, data, size) == 0);
    check(lmc_media_parse(out.data, out.size, FUZZ_MAX_SAMPLES, &again, &message) == LMC_OK);
    check(lmc_media_desc_equal(&item.desc, &again.desc));
    check(same_samples(&item, &again));
    check(item.side_size == again.side_size && memcmp(item.side, again.side, item.side_size) == 0);
    lmc_media_free(&again);
    lmc_media_free(&item);
    lmc_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    check_roundtrip(copy, size);
    free(copy);
    return 0;
}
