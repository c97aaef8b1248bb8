/*
 * The decompression stream: parses records as bytes arrive, checks each
 * block's compressed-data checksum as soon as its payload is complete, and
 * decodes blocks in batches (neural blocks in lockstep, --fast blocks one
 * per thread). A batch's output is released only after every block in it
 * matched its checksum; the end record's totals are checked at finish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "lib/lib.h"

#define MAX_BATCH 64

typedef struct {
    lmc_block_record record;
    size_t payload_offset; /* into the decoder's input buffer */
} pending_block;

struct lmc_decoder {
    lmc_options options;
    char *model_arg;
    lmc_message message;
    lmc_status failed;
    lmc_pool *pool;
    lmc_model *model;
    lmc_neural_coder *coder;
    lmc_neural_config coder_config; /* what the coder was made for */
    lmc_buf input;
    size_t parsed;            /* input bytes parsed so far */
    int have_header;
    lmc_header header;
    lmc_end_record end;
    pending_block pending[MAX_BATCH];
    int pending_count, batch_blocks;
    lmc_buf output;
    size_t output_read;      /* bytes of output already pulled */
    uint64_t members;        /* complete archives seen (they may be concatenated) */
    uint64_t blocks, member_out; /* of the current archive */
    uint64_t total_out, total_in;
    XXH3_state_t *total_hash; /* of the current archive */
};

static lmc_status fail(lmc_decoder *d, lmc_status status) {
    if (d->failed == LMC_OK)
        d->failed = status;
    return status;
}

void lmc_decoder_free(lmc_decoder *d) {
    if (!d)
        return;
    lmc_neural_coder_free(d->coder);
    lmc_model_free(d->model);
    lmc_pool_free(d->pool);
    lmc_buf_free(&d->input);
    lmc_buf_free(&d->output);
    XXH3_freeState(d->total_hash);
    free(d->model_arg);
    free(d);
}

lmc_decoder *lmc_decoder_create(const lmc_options *options, lmc_status *status) {
    lmc_decoder *d = calloc(1, sizeof *d);
    lmc_status result = LMC_ERR_NOMEM;
    if (d) {
        lmc_options_init(&d->options);
        if (options)
            d->options = *options;
        d->model_arg = d->options.model ? strdup(d->options.model) : NULL;
        d->options.model = d->model_arg;
        d->total_hash = XXH3_createState();
        d->pool = lmc_pool_create(lmc_effective_threads(d->options.threads));
        snprintf(d->message.text, sizeof d->message.text, "no error");
        if (d->total_hash && d->pool && (d->model_arg || !options || !options->model)) {
            XXH3_64bits_reset(d->total_hash);
            result = LMC_OK;
        }
    }
    if (result != LMC_OK) {
        lmc_decoder_free(d);
        d = NULL;
    }
    if (status)
        *status = result;
    return d;
}

const char *lmc_decoder_message(const lmc_decoder *d) {
    return d ? d->message.text : "out of memory";
}

/* ---- After the header: the model and the batch size ---- */

static lmc_status check_memory(lmc_decoder *d, uint64_t working) {
    uint64_t limit = d->options.memlimit;
    uint64_t model_bytes = d->model ? d->model->file_size : 0;
    uint64_t buffers = 3ull * d->batch_blocks * d->header.block_size;
    if (limit && model_bytes + working + buffers > limit)
        return lmc_fail(&d->message, LMC_ERR_MEMLIMIT,
                        "decompression needs about %llu MiB, over the memory limit of %llu MiB",
                        (unsigned long long)((model_bytes + working + buffers) >> 20),
                        (unsigned long long)(limit >> 20));
    return LMC_OK;
}

static lmc_neural_config coder_config_for(const lmc_header *h) {
    const int mixed = lmc_codec_mixing(h->codec);
    return (lmc_neural_config){lmc_neural_batch_fit(LMC_NEURAL_DECODE_BATCH_MAX, h->block_size, mixed),
                               h->context_window, h->window_stride, h->block_size, mixed, lmc_codec_lanes(h->codec),
                               h->numerics_version, 0};
}

/* Keeps the loaded model and coder when a concatenated archive uses them again. */
static int model_reusable(const lmc_decoder *d) {
    if (d->header.codec == LMC_CODEC_MEDIA)
        return d->model && !memcmp(d->model->hash, d->header.model_hash, 16);
    lmc_neural_config want = coder_config_for(&d->header);
    const lmc_neural_config *have = &d->coder_config;
    return d->coder && !memcmp(d->model->hash, d->header.model_hash, 16) && have->window == want.window &&
           have->stride == want.stride && have->block_size == want.block_size && have->mixed == want.mixed && have->lanes == want.lanes &&
           have->numerics == want.numerics;
}

static void release_model(lmc_decoder *d) {
    lmc_neural_coder_free(d->coder);
    lmc_model_free(d->model);
    d->coder = NULL;
    d->model = NULL;
}

static lmc_status prepare_model(lmc_decoder *d) {
    lmc_header *h = &d->header;
    if (h->codec != LMC_CODEC_FAST && model_reusable(d))
        return LMC_OK;
    release_model(d);
    if (h->codec == LMC_CODEC_FAST) {
        d->batch_blocks = LMC_MIN(lmc_pool_threads(d->pool), MAX_BATCH);
        return check_memory(d, (uint64_t)d->batch_blocks * lmc_cm_memory(h->block_size));
    }
    lmc_status status = lmc_find_model_by_hash(d->options.model, h->model_name, h->model_hash,
                                               d->options.memlimit, &d->model, &d->message);
    if (status != LMC_OK)
        return status;
    if (h->codec == LMC_CODEC_MEDIA) {
        d->batch_blocks = 1;
        if (!lmc_media_model_fits(d->model, h->kind))
            return lmc_fail(&d->message, LMC_ERR_CORRUPT, "model '%s' does not code %s data", d->model->name,
                            lmc_kind_name(h->kind));
        return LMC_OK;
    }
    if (d->model->family != LMC_FAMILY_LLAMA)
        return lmc_fail(&d->message, LMC_ERR_CORRUPT, "model '%s' is not a token model", d->model->name);
    if (h->context_window > (uint32_t)d->model->llama.context_length)
        return lmc_fail(&d->message, LMC_ERR_CORRUPT, "context window %u exceeds the model's context length %d",
                        h->context_window, d->model->llama.context_length);
    lmc_neural_config config = coder_config_for(h);
    config.decode_groups = lmc_neural_decode_groups(lmc_pool_threads(d->pool));
    /* Fewer blocks in lockstep if that is what fits under the memory limit. */
    d->batch_blocks = config.max_blocks;
    while (config.max_blocks > 1 && check_memory(d, lmc_neural_coder_bytes(d->model, &config)) != LMC_OK)
        d->batch_blocks = config.max_blocks /= 2;
    status = check_memory(d, lmc_neural_coder_bytes(d->model, &config));
    if (status != LMC_OK)
        return status;
    d->coder_config = config;
    return lmc_neural_coder_create(d->model, d->pool, &config, &d->coder, &d->message);
}

/* ---- Decoding a batch ---- */

typedef struct {
    lmc_decoder *decoder;
    lmc_block_job *jobs;
    lmc_status *status;
} fast_jobs;

static void fast_range(void *ctx, int begin, int end) {
    fast_jobs *f = ctx;
    for (int i = begin; i < end; i++)
        f->status[i] = lmc_cm_decompress(f->jobs[i].payload, f->jobs[i].payload_size, f->jobs[i].out, f->jobs[i].raw_size);
}

static lmc_status decode_coded(lmc_decoder *d, lmc_block_job *jobs, int count) {
    if (count == 0)
        return LMC_OK;
    if (d->header.codec != LMC_CODEC_FAST)
        return lmc_neural_decode_blocks(d->coder, jobs, count, &d->message);
    lmc_status status[MAX_BATCH];
    fast_jobs f = {d, jobs, status};
    lmc_pool_for(d->pool, count, fast_range, &f);
    for (int i = 0; i < count; i++)
        if (status[i] != LMC_OK)
            return lmc_fail(&d->message, LMC_ERR_CORRUPT, "damaged block: the fast model's data is inconsistent");
    return LMC_OK;
}

/* The batch is done: its output is released and its payloads dropped. */
static lmc_status finish_batch(lmc_decoder *d, uint64_t raw_bytes) {
    d->blocks += (uint64_t)d->pending_count;
    d->member_out += raw_bytes;
    d->pending_count = 0;
    lmc_buf_consume(&d->input, d->parsed);
    d->parsed = 0;
    if (d->options.progress && d->options.progress(d->options.progress_user, d->total_in, d->total_out))
        return lmc_fail(&d->message, LMC_ERR_INTERRUPTED, "interrupted");
    return LMC_OK;
}

/* A media archive's block (batches of one): the item is decoded, checked
 * against the block's checksum and written out as a file. */
static lmc_status decode_media_block(lmc_decoder *d) {
    const pending_block *p = &d->pending[0];
    const uint8_t *payload = d->input.data + p->payload_offset;
    lmc_buf_compact(&d->output, &d->output_read);
    size_t base = d->output.size;
    uint8_t hashed[8];
    lmc_media item;
    lmc_status status = lmc_media_block_decode(d->model, d->pool, payload, p->record.payload_size,
                                               p->record.raw_size, d->options.memlimit, &item, &d->message);
    if (status != LMC_OK)
        return status;
    uint64_t checksum = lmc_media_checksum(&item);
    if (checksum != p->record.raw_checksum)
        status = lmc_fail(&d->message, LMC_ERR_CORRUPT, "block %llu: decoded data does not match its checksum",
                          (unsigned long long)d->blocks);
    if (status == LMC_OK && lmc_media_write(&item, &d->output, &d->message) != LMC_OK)
        status = lmc_fail(&d->message, LMC_ERR_CORRUPT, "block %llu: the decoded %s cannot be written: %s",
                          (unsigned long long)d->blocks, lmc_kind_name(item.desc.kind), d->message.text);
    lmc_media_free(&item);
    if (status != LMC_OK) {
        d->output.size = base;
        return status;
    }
    lmc_put_le64(hashed, checksum);
    XXH3_64bits_update(d->total_hash, hashed, 8);
    d->total_out += d->output.size - base;
    return finish_batch(d, p->record.raw_size);
}

/* Lays the batch's blocks out in the output buffer, decodes the coded ones
 * in place, and verifies every block's checksum. */
static lmc_status decode_batch(lmc_decoder *d) {
    if (d->header.codec == LMC_CODEC_MEDIA && d->pending[0].record.mode == LMC_BLOCK_CODED)
        return decode_media_block(d);
    lmc_buf_compact(&d->output, &d->output_read);
    size_t base = d->output.size, total = 0;
    for (int i = 0; i < d->pending_count; i++)
        total += d->pending[i].record.raw_size;
    if (lmc_buf_reserve(&d->output, total) != LMC_OK)
        return lmc_fail(&d->message, LMC_ERR_NOMEM, "out of memory");
    lmc_block_job jobs[MAX_BATCH];
    int coded = 0;
    size_t offset = base;
    for (int i = 0; i < d->pending_count; i++) {
        const pending_block *p = &d->pending[i];
        uint8_t *out = d->output.data + offset;
        const uint8_t *payload = d->input.data + p->payload_offset;
        if (p->record.mode == LMC_BLOCK_STORED)
            memcpy(out, payload, p->record.raw_size);
        else
            jobs[coded++] = (lmc_block_job){payload, p->record.payload_size, out, p->record.raw_size};
        offset += p->record.raw_size;
    }
    lmc_status status = decode_coded(d, jobs, coded);
    offset = base;
    for (int i = 0; i < d->pending_count && status == LMC_OK; i++) {
        const lmc_block_record *r = &d->pending[i].record;
        if (lmc_checksum64(d->output.data + offset, r->raw_size) != r->raw_checksum)
            status = lmc_fail(&d->message, LMC_ERR_CORRUPT, "block %llu: decoded data does not match its checksum",
                              (unsigned long long)(d->blocks + (uint64_t)i));
        offset += r->raw_size;
    }
    if (status != LMC_OK)
        return status;
    XXH3_64bits_update(d->total_hash, d->output.data + base, total);
    d->output.size = base + total;
    d->total_out += total;
    return finish_batch(d, total);
}

static lmc_status check_end(lmc_decoder *d) {
    if (d->end.blocks != d->blocks || d->end.total_size != d->member_out)
        return lmc_fail(&d->message, LMC_ERR_CORRUPT, "archive is damaged: end record expects %llu blocks, %llu bytes",
                        (unsigned long long)d->end.blocks, (unsigned long long)d->end.total_size);
    if (d->end.total_checksum != XXH3_64bits_digest(d->total_hash))
        return lmc_fail(&d->message, LMC_ERR_CORRUPT, "archive is damaged: whole-data checksum mismatch");
    return LMC_OK;
}

/* Decodes what is left of an archive, checks its end record, and gets
 * ready for a concatenated one. */
static lmc_status end_member(lmc_decoder *d) {
    lmc_status status = d->pending_count > 0 ? decode_batch(d) : LMC_OK;
    if (status == LMC_OK)
        status = check_end(d);
    if (status != LMC_OK)
        return status;
    d->members++;
    d->have_header = 0;
    d->blocks = 0;
    d->member_out = 0;
    XXH3_64bits_reset(d->total_hash);
    return LMC_OK;
}

/* ---- Parsing ---- */

static lmc_status parse_header(lmc_decoder *d) {
    lmc_status status = lmc_header_read(d->input.data, d->input.size, &d->parsed, &d->header, &d->message);
    if (status == LMC_ERR_NOT_ARCHIVE && d->members > 0)
        return lmc_fail(&d->message, LMC_ERR_CORRUPT, "unexpected data after the end of the archive");
    if (status != LMC_OK)
        return status;
    d->have_header = 1;
    return prepare_model(d);
}

static lmc_status accept_block(lmc_decoder *d, const lmc_block_record *record, size_t record_end) {
    if (d->input.size - record_end < record->payload_size)
        return LMC_ERR_TRUNCATED; /* wait for the whole payload */
    const uint8_t *payload = d->input.data + record_end;
    if (lmc_checksum64(payload, record->payload_size) != record->payload_checksum)
        return lmc_fail(&d->message, LMC_ERR_CORRUPT, "block %llu: compressed data does not match its checksum",
                        (unsigned long long)(d->blocks + (uint64_t)d->pending_count));
    d->pending[d->pending_count++] = (pending_block){*record, record_end};
    d->parsed = record_end + record->payload_size;
    return LMC_OK;
}

static lmc_status parse_record(lmc_decoder *d) {
    size_t pos = d->parsed;
    lmc_record_type type;
    lmc_block_record block;
    lmc_end_record end;
    lmc_status status = lmc_record_read(d->input.data, d->input.size, &pos, &d->header, &type, &block, &end,
                                        &d->message);
    if (status != LMC_OK)
        return status;
    if (type == LMC_RECORD_BLOCK)
        return accept_block(d, &block, pos);
    d->end = end;
    d->parsed = pos;
    return end_member(d);
}

/* Parses as far as the buffered bytes allow; LMC_OK when it needs more.
 * Archives may be concatenated: a header may follow an end record. */
static lmc_status parse_available(lmc_decoder *d) {
    for (;;) {
        lmc_status status;
        if (!d->have_header)
            status = parse_header(d);
        else
            status = parse_record(d);
        if (status == LMC_ERR_TRUNCATED)
            return LMC_OK;
        if (status != LMC_OK)
            return status;
        if (d->pending_count == d->batch_blocks && (status = decode_batch(d)) != LMC_OK)
            return status;
    }
}

lmc_status lmc_decoder_push(lmc_decoder *d, const void *data, size_t size) {
    if (d->failed != LMC_OK)
        return d->failed;
    if (lmc_buf_append(&d->input, data, size) != LMC_OK)
        return fail(d, lmc_fail(&d->message, LMC_ERR_NOMEM, "out of memory"));
    d->total_in += size;
    lmc_status status = parse_available(d);
    return status == LMC_OK ? LMC_OK : fail(d, status);
}


lmc_status lmc_decoder_finish(lmc_decoder *d) {
    if (d->failed != LMC_OK)
        return d->failed;
    lmc_status status = LMC_OK;
    if (d->have_header)
        status = lmc_fail(&d->message, LMC_ERR_TRUNCATED, "archive is truncated (no end record after %llu blocks)",
                          (unsigned long long)(d->blocks + (uint64_t)d->pending_count));
    else if (d->members == 0 || d->parsed < d->input.size)
        status = lmc_fail(&d->message, LMC_ERR_TRUNCATED, "archive is truncated (incomplete header)");
    return status == LMC_OK ? LMC_OK : fail(d, status);
}

size_t lmc_decoder_pull(lmc_decoder *d, void *out, size_t capacity) {
    return lmc_buf_read(&d->output, &d->output_read, out, capacity);
}
