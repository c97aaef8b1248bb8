/*
 * libFuzzer target for the archive decoder and inspector: any input must
 * give a clean error, or decode to data whose checksums matched. Decoding
 * runs with --fast archives and stored blocks (neural archives need their
 * model, which a fuzzed header names only by hash). Seeds: fuzz/corpus/archive/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmc.h"

typedef struct {
    const uint8_t *data;
    size_t size, pos;
} memory_reader;

static long read_memory(void *user, void *out, size_t size) {
    memory_reader *r = user;
    size_t n = r->size - r->pos < size ? r->size - r->pos : size;
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
    return (long)n;
}

/* Feeds the input in uneven pieces, as a pipe would. */
static void decode(const uint8_t *data, size_t size) {
    lmc_options options;
    lmc_options_init(&options);
    options.threads = 1;
    options.memlimit = 256u << 20;
    lmc_decoder *d = lmc_decoder_create(&options, NULL);
    if (!d)
        abort();
    uint8_t out[8192];
    lmc_status status = LMC_OK;
    for (size_t pos = 0, piece = 1; pos < size && status == LMC_OK; pos += piece, piece = piece * 3 + 1) {
        if (piece > size - pos)
            piece = size - pos;
        status = lmc_decoder_push(d, data + pos, piece);
        while (lmc_decoder_pull(d, out, sizeof out) > 0) {
        }
    }
    if (status == LMC_OK)
        status = lmc_decoder_finish(d);
    while (lmc_decoder_pull(d, out, sizeof out) > 0) {
    }
    if (status != LMC_OK && lmc_decoder_message(d)[0] == '\0')
        abort(); /* every failure explains itself */
    lmc_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode(data, size);
    memory_reader reader = {data, size, 0};
    lmc_archive_info info;
    char message[256];
    lmc_archive_inspect(read_memory, &reader, &info, message, sizeof message);
    return 0;
}
