/*
 * Blocks coded one call at a time, apart from the streams: an archive
 * header's codec (model, fast or mixed) applied to given blocks. Used by
 * lmc --mpi, which spreads an archive's blocks over processes, so every
 * block must come out byte for byte as lmc_encoder writes it (the same
 * codec calls and the same record rules as encoder.c) and decode with the
 * checks lmc_decoder makes.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/lib.h"

#define MAX_BATCH 64        /* blocks coded together, as the streams do */

struct lmc_block_codec {
    lmc_header header;
    lmc_pool *pool;
    lmc_model *model;       /* NULL for the fast codec */
    lmc_neural_coder *coder;
    int batch;
};

void lmc_block_codec_free(lmc_block_codec *codec) {
    if (!codec)
        return;
    lmc_neural_coder_free(codec->coder);
    lmc_model_free(codec->model);
    lmc_pool_free(codec->pool);
    free(codec);
}

int lmc_block_codec_batch(const lmc_block_codec *codec) {
    return codec->batch;
}

/* The streams' memory rule: the model, the codec's working memory and three
 * buffers of a block per block coded together. */
static lmc_status check_memory(const lmc_block_codec *c, uint64_t memlimit, uint64_t working, int batch,
                               lmc_message *message) {
    uint64_t model_bytes = c->model ? c->model->file_size : 0;
    uint64_t needed = model_bytes + working + 3ull * (uint64_t)batch * c->header.block_size;
    if (memlimit && needed > memlimit)
        return lmc_fail(message, LMC_ERR_MEMLIMIT, "coding needs about %llu MiB, over the memory limit of %llu MiB",
                        (unsigned long long)(needed >> 20), (unsigned long long)(memlimit >> 20));
    return LMC_OK;
}

static lmc_status start_fast(lmc_block_codec *c, uint64_t memlimit, lmc_message *message) {
    c->batch = LMC_MIN(lmc_pool_threads(c->pool), MAX_BATCH);
    return check_memory(c, memlimit, (uint64_t)c->batch * lmc_cm_memory(c->header.block_size), c->batch, message);
}

/* As the decoder prepares the header's model: found by hash, checked
 * against the header; decoding runs blocks in lockstep, as many as fit
 * under the memory limit. */
static lmc_status start_neural(lmc_block_codec *c, const lmc_options *options, int decoding, lmc_message *message) {
    const lmc_header *h = &c->header;
    lmc_status status = lmc_find_model_by_hash(options->model, h->model_name, h->model_hash, options->memlimit,
                                               &c->model, message);
    if (status != LMC_OK)
        return status;
    if (c->model->family != LMC_FAMILY_LLAMA)
        return lmc_fail(message, LMC_ERR_CORRUPT, "model '%s' is not a token model", c->model->name);
    if (h->context_window > (uint32_t)c->model->llama.context_length)
        return lmc_fail(message, LMC_ERR_CORRUPT, "context window %u exceeds the model's context length %d",
                        h->context_window, c->model->llama.context_length);
    const int mixed = lmc_codec_mixing(h->codec);
    int batch = decoding ? LMC_NEURAL_DECODE_BATCH_MAX : lmc_neural_encode_batch(lmc_pool_threads(c->pool));
    lmc_neural_config config = {lmc_neural_batch_fit(batch, h->block_size, mixed), h->context_window,
                                h->window_stride, h->block_size, mixed, lmc_codec_lanes(h->codec),
                                h->numerics_version,
                                decoding ? lmc_neural_decode_groups(lmc_pool_threads(c->pool)) : 0};
    while (config.max_blocks > 1 &&
           check_memory(c, options->memlimit, lmc_neural_coder_bytes(c->model, &config), config.max_blocks,
                        message) != LMC_OK)
        config.max_blocks /= 2;
    c->batch = config.max_blocks;
    status = check_memory(c, options->memlimit, lmc_neural_coder_bytes(c->model, &config), c->batch, message);
    if (status != LMC_OK)
        return status;
    return lmc_neural_coder_create(c->model, c->pool, &config, &c->coder, message);
}

lmc_status lmc_block_codec_create(const lmc_header *header, const lmc_options *options, int decoding,
                                  lmc_block_codec **out, lmc_message *message) {
    *out = NULL;
    if (header->codec == LMC_CODEC_MEDIA)
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "a media archive is one block: code it with the streams");
    lmc_block_codec *c = calloc(1, sizeof *c);
    if (!c)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    c->header = *header;
    c->pool = lmc_pool_create(lmc_effective_threads(options->threads));
    lmc_status status = LMC_OK;
    if (!c->pool)
        status = lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    else if (header->codec == LMC_CODEC_FAST)
        status = start_fast(c, options->memlimit, message);
    else
        status = start_neural(c, options, decoding, message);
    if (status != LMC_OK) {
        lmc_block_codec_free(c);
        return status;
    }
    *out = c;
    return LMC_OK;
}

/* ---- Encoding ---- */

/* A block's record and payload, by encoder.c's rule: stored raw unless the
 * coded payload is smaller. */
static lmc_status append_block(lmc_buf *out, const uint8_t *raw, size_t raw_size, const lmc_buf *payload) {
    int stored = payload->size >= raw_size;
    lmc_block_record record;
    record.mode = stored ? LMC_BLOCK_STORED : LMC_BLOCK_CODED;
    record.raw_size = raw_size;
    record.payload_size = stored ? raw_size : payload->size;
    record.raw_checksum = lmc_checksum64(raw, raw_size);
    record.payload_checksum = stored ? record.raw_checksum : lmc_checksum64(payload->data, payload->size);
    lmc_status status = lmc_block_record_write(out, &record);
    if (status == LMC_OK)
        status = lmc_buf_append(out, stored ? raw : payload->data, record.payload_size);
    return status;
}

typedef struct {
    const uint8_t *data;
    size_t block_size;
    size_t sizes[MAX_BATCH];
    lmc_buf payloads[MAX_BATCH];
    lmc_status status[MAX_BATCH];
} fast_batch;

static void fast_encode_range(void *ctx, int begin, int end) {
    fast_batch *batch = ctx;
    for (int i = begin; i < end; i++)
        batch->status[i] = lmc_cm_compress(batch->data + (size_t)i * batch->block_size, batch->sizes[i],
                                           &batch->payloads[i]);
}

/* count blocks at data, one per thread. */
static lmc_status encode_fast(lmc_block_codec *c, uint64_t first, const uint8_t *data, size_t size, int count,
                              lmc_buf *out, lmc_message *message) {
    fast_batch *batch = calloc(1, sizeof *batch);
    if (!batch)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    batch->data = data;
    batch->block_size = c->header.block_size;
    for (int i = 0; i < count; i++)
        batch->sizes[i] = LMC_MIN(batch->block_size, size - (size_t)i * batch->block_size);
    lmc_pool_for(c->pool, count, fast_encode_range, batch);
    lmc_status status = LMC_OK;
    for (int i = 0; i < count && status == LMC_OK; i++) {
        status = batch->status[i];
        if (status != LMC_OK)
            lmc_fail(message, status, "block %llu: the fast model failed", (unsigned long long)(first + (uint64_t)i));
        else if ((status = append_block(out, data + (size_t)i * batch->block_size, batch->sizes[i],
                                        &batch->payloads[i])) != LMC_OK)
            lmc_fail(message, status, "out of memory");
    }
    for (int i = 0; i < count; i++)
        lmc_buf_free(&batch->payloads[i]);
    free(batch);
    return status;
}

/* The blocks of a batch coded together (lmc_neural_encode_blocks). */
static lmc_status encode_neural(lmc_block_codec *c, const uint8_t *data, size_t size, int count, lmc_buf *out,
                                lmc_message *message) {
    const size_t block_size = c->header.block_size;
    lmc_buf payloads[LMC_NEURAL_ENCODE_BATCH_MAX];
    for (int i = 0; i < count; i++)
        lmc_buf_init(&payloads[i]);
    lmc_status status = lmc_neural_encode_blocks(c->coder, data, size, payloads, message);
    for (int i = 0; i < count && status == LMC_OK; i++) {
        const size_t first = (size_t)i * block_size;
        if ((status = append_block(out, data + first, LMC_MIN(block_size, size - first), &payloads[i])) != LMC_OK)
            lmc_fail(message, status, "out of memory");
    }
    for (int i = 0; i < count; i++)
        lmc_buf_free(&payloads[i]);
    return status;
}

lmc_status lmc_block_codec_encode(lmc_block_codec *c, uint64_t first, const uint8_t *data, size_t size,
                                  lmc_buf *out, lmc_message *message) {
    size_t block_size = c->header.block_size;
    lmc_status status = LMC_OK;
    while (size > 0 && status == LMC_OK) {
        int count = (int)LMC_MIN((size + block_size - 1) / block_size, (size_t)c->batch);
        size_t bytes = LMC_MIN(size, (size_t)count * block_size);
        if (c->header.codec == LMC_CODEC_FAST)
            status = encode_fast(c, first, data, bytes, count, out, message);
        else
            status = encode_neural(c, data, bytes, count, out, message);
        first += (uint64_t)count;
        data += bytes;
        size -= bytes;
    }
    return status;
}

/* ---- Decoding ---- */

typedef struct {
    lmc_block_job *jobs;
    lmc_status status[MAX_BATCH];
} fast_jobs;

static void fast_decode_range(void *ctx, int begin, int end) {
    fast_jobs *f = ctx;
    for (int i = begin; i < end; i++)
        f->status[i] = lmc_cm_decompress(f->jobs[i].payload, f->jobs[i].payload_size, f->jobs[i].out,
                                         f->jobs[i].raw_size);
}

static lmc_status decode_coded(lmc_block_codec *c, lmc_block_job *jobs, int count, lmc_message *message) {
    if (count == 0)
        return LMC_OK;
    if (c->header.codec != LMC_CODEC_FAST)
        return lmc_neural_decode_blocks(c->coder, jobs, count, message);
    fast_jobs f = {jobs, {LMC_OK}};
    lmc_pool_for(c->pool, count, fast_decode_range, &f);
    for (int i = 0; i < count; i++)
        if (f.status[i] != LMC_OK)
            return lmc_fail(message, LMC_ERR_CORRUPT, "damaged block: the fast model's data is inconsistent");
    return LMC_OK;
}

/* A batch of parsed blocks: records and where their payloads are. */
typedef struct {
    uint64_t first;
    int count;
    lmc_block_record records[MAX_BATCH];
    const uint8_t *payloads[MAX_BATCH];
} block_batch;

/* Parses up to the codec's batch of block records from records[*pos..size),
 * checking each payload's checksum as lmc_decoder does. */
static lmc_status parse_batch(const lmc_block_codec *c, const uint8_t *records, size_t size, size_t *pos,
                              block_batch *batch, lmc_message *message) {
    batch->count = 0;
    while (batch->count < c->batch && *pos < size) {
        lmc_block_record *r = &batch->records[batch->count];
        uint64_t index = batch->first + (uint64_t)batch->count;
        lmc_record_type type;
        lmc_end_record end;
        lmc_status status = lmc_record_read(records, size, pos, &c->header, &type, r, &end, message);
        if (status == LMC_ERR_TRUNCATED || (status == LMC_OK && (type != LMC_RECORD_BLOCK || size - *pos < r->payload_size)))
            return lmc_fail(message, LMC_ERR_CORRUPT, "block %llu: not a whole block record", (unsigned long long)index);
        if (status != LMC_OK)
            return status;
        if (lmc_checksum64(records + *pos, r->payload_size) != r->payload_checksum)
            return lmc_fail(message, LMC_ERR_CORRUPT, "block %llu: compressed data does not match its checksum",
                            (unsigned long long)index);
        batch->payloads[batch->count++] = records + *pos;
        *pos += r->payload_size;
    }
    return LMC_OK;
}

/* Lays the batch out at the end of out, decodes the coded blocks in place
 * and verifies every block's checksum, as lmc_decoder does. */
static lmc_status decode_batch(lmc_block_codec *c, const block_batch *batch, lmc_buf *out, lmc_message *message) {
    size_t total = 0;
    for (int i = 0; i < batch->count; i++)
        total += batch->records[i].raw_size;
    if (lmc_buf_reserve(out, total) != LMC_OK)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    lmc_block_job jobs[MAX_BATCH];
    int coded = 0;
    uint8_t *next = out->data + out->size;
    for (int i = 0; i < batch->count; i++) {
        const lmc_block_record *r = &batch->records[i];
        if (r->mode == LMC_BLOCK_STORED)
            memcpy(next, batch->payloads[i], r->raw_size);
        else
            jobs[coded++] = (lmc_block_job){batch->payloads[i], r->payload_size, next, r->raw_size};
        next += r->raw_size;
    }
    lmc_status status = decode_coded(c, jobs, coded, message);
    next = out->data + out->size;
    for (int i = 0; i < batch->count && status == LMC_OK; i++) {
        const lmc_block_record *r = &batch->records[i];
        if (lmc_checksum64(next, r->raw_size) != r->raw_checksum)
            status = lmc_fail(message, LMC_ERR_CORRUPT, "block %llu: decoded data does not match its checksum",
                              (unsigned long long)(batch->first + (uint64_t)i));
        next += r->raw_size;
    }
    if (status == LMC_OK)
        out->size += total;
    return status;
}

lmc_status lmc_block_codec_decode(lmc_block_codec *c, uint64_t first, const uint8_t *records, size_t size,
                                  lmc_buf *out, lmc_message *message) {
    block_batch *batch = malloc(sizeof *batch);
    if (!batch)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    size_t pos = 0;
    lmc_status status = LMC_OK;
    batch->first = first;
    while (pos < size && status == LMC_OK) {
        status = parse_batch(c, records, size, &pos, batch, message);
        if (status == LMC_OK)
            status = decode_batch(c, batch, out, message);
        batch->first += (uint64_t)batch->count;
    }
    free(batch);
    return status;
}
