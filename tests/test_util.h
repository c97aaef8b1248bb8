/* Helpers shared by the tests: data generators and whole-buffer round trips. */
#ifndef LMC_TEST_UTIL_H
#define LMC_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "lmc.h"

/* xorshift64*: reproducible test data without libc's rand(). */
static inline uint64_t test_rng(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* English-like text from a small vocabulary, so models find structure. */
static inline void test_fill_text(uint8_t *out, size_t size, uint64_t seed) {
    static const char *const words[] = {"the", "model", "predicts", "each", "next", "token", "and", "a",
                                        "range", "coder", "writes", "bits", "of", "data", "block", "is",
                                        "compressed", "with", "care", "\n", "in", "order", ",", "."};
    uint64_t state = seed | 1;
    size_t pos = 0;
    while (pos < size) {
        const char *w = words[test_rng(&state) % (sizeof words / sizeof words[0])];
        for (size_t i = 0; w[i] && pos < size; i++)
            out[pos++] = (uint8_t)w[i];
        if (pos < size)
            out[pos++] = ' ';
    }
}

static inline void test_fill_random(uint8_t *out, size_t size, uint64_t seed) {
    uint64_t state = seed | 1;
    for (size_t i = 0; i < size; i++)
        out[i] = (uint8_t)(test_rng(&state) >> 56);
}

/* Compresses data in chunks of `chunk` bytes; returns the status. */
static inline lmc_status test_compress(const lmc_options *options, const uint8_t *data, size_t size, size_t chunk,
                                       lmc_buf *archive) {
    lmc_status status;
    lmc_encoder *e = lmc_encoder_create(options, &status);
    if (!e)
        return status;
    uint8_t out[4096];
    for (size_t pos = 0; pos < size && status == LMC_OK; pos += chunk) {
        status = lmc_encoder_push(e, data + pos, LMC_MIN(chunk, size - pos));
        size_t n;
        while ((n = lmc_encoder_pull(e, out, sizeof out)) > 0)
            lmc_buf_append(archive, out, n);
    }
    if (status == LMC_OK)
        status = lmc_encoder_finish(e);
    size_t n;
    while ((n = lmc_encoder_pull(e, out, sizeof out)) > 0)
        lmc_buf_append(archive, out, n);
    if (status != LMC_OK)
        fprintf(stderr, "compress: %s\n", lmc_encoder_message(e));
    lmc_encoder_free(e);
    return status;
}

static inline lmc_status test_decompress(const lmc_options *options, const uint8_t *archive, size_t size,
                                         size_t chunk, lmc_buf *output, int quiet) {
    lmc_status status;
    lmc_decoder *d = lmc_decoder_create(options, &status);
    if (!d)
        return status;
    uint8_t out[4096];
    for (size_t pos = 0; pos < size && status == LMC_OK; pos += chunk) {
        status = lmc_decoder_push(d, archive + pos, LMC_MIN(chunk, size - pos));
        size_t n;
        while ((n = lmc_decoder_pull(d, out, sizeof out)) > 0)
            lmc_buf_append(output, out, n);
    }
    if (status == LMC_OK)
        status = lmc_decoder_finish(d);
    size_t n;
    while ((n = lmc_decoder_pull(d, out, sizeof out)) > 0)
        lmc_buf_append(output, out, n);
    if (status != LMC_OK && !quiet)
        fprintf(stderr, "decompress: %s\n", lmc_decoder_message(d));
    lmc_decoder_free(d);
    return status;
}

#endif /* LMC_TEST_UTIL_H */
