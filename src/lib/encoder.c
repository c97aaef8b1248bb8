/*
 * The compression stream: input is cut into blocks; each block is coded by
 * the neural codec (all threads on one block: its rows are evaluated
 * together) or, with --fast, by the context-mixing model (one block per
 * thread). A block whose coded form is not smaller is stored raw.
 *
 * Images, audio and video whose kind has a sample model are held until the
 * input ends, parsed, and coded as one media block; input the readers
 * cannot restore exactly falls back to the byte path with a notice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "format/format.h"
#include "lib/lib.h"
#include "lib/lossy.h"

#define DETECT_BYTES (64u << 10) /* prefix examined for the data kind */
#define PROBE_BYTES (8u << 10)   /* prefix the text model candidates code */
#define FAST_BLOCK_SIZE (4u << 20)
#define MAX_FAST_BATCH 64 /* blocks coded in parallel with --fast */

struct lmc_encoder {
    lmc_options options;
    char *model_arg;
    lmc_message message;
    lmc_status failed;       /* sticky first error */
    lmc_pool *pool;
    lmc_model *model;
    lmc_neural_coder *coder;
    lmc_header header;
    int started, finished;
    int media;               /* holding the input for the media coder */
    char notice[LMC_MESSAGE_SIZE];
    int batch_blocks;        /* blocks coded per batch */
    lmc_buf input;           /* bytes not yet coded */
    lmc_buf output;
    size_t output_read;      /* bytes of output already pulled */
    uint64_t blocks, total_in, total_out;
    XXH3_state_t *total_hash;
};

static lmc_status fail(lmc_encoder *e, lmc_status status) {
    if (e->failed == LMC_OK)
        e->failed = status;
    return status;
}

void lmc_encoder_free(lmc_encoder *e) {
    if (!e)
        return;
    lmc_neural_coder_free(e->coder);
    lmc_model_free(e->model);
    lmc_pool_free(e->pool);
    lmc_buf_free(&e->input);
    lmc_buf_free(&e->output);
    XXH3_freeState(e->total_hash);
    free(e->model_arg);
    free(e);
}

lmc_encoder *lmc_encoder_create(const lmc_options *options, lmc_status *status) {
    lmc_encoder *e = calloc(1, sizeof *e);
    lmc_status result = LMC_ERR_NOMEM;
    if (e) {
        lmc_options_init(&e->options);
        if (options)
            e->options = *options;
        e->model_arg = e->options.model ? strdup(e->options.model) : NULL;
        e->options.model = e->model_arg;
        e->total_hash = XXH3_createState();
        e->pool = lmc_pool_create(lmc_effective_threads(e->options.threads));
        snprintf(e->message.text, sizeof e->message.text, "no error");
        if (e->total_hash && e->pool && (e->model_arg || !options || !options->model)) {
            XXH3_64bits_reset(e->total_hash);
            result = LMC_OK;
        }
        if (result == LMC_OK && (e->options.block_size > LMC_MAX_BLOCK_SIZE || e->options.lanes < 0 ||
                                 e->options.lanes > LMC_LANES_MAX))
            result = LMC_ERR_PARAM;
        if (result == LMC_OK && (e->options.max_error > LMC_LOSSY_MAX_ERROR ||
                                 (e->options.max_error && e->options.fast)))
            result = LMC_ERR_PARAM;
    }
    if (result != LMC_OK) {
        lmc_encoder_free(e);
        e = NULL;
    }
    if (status)
        *status = result;
    return e;
}

const char *lmc_encoder_message(const lmc_encoder *e) {
    return e ? e->message.text : "out of memory";
}

const char *lmc_encoder_notice(const lmc_encoder *e) {
    return e && e->notice[0] ? e->notice : NULL;
}

/* ---- Starting: kind, model, header ---- */

static lmc_status check_memory(lmc_encoder *e, uint64_t working) {
    uint64_t limit = e->options.memlimit;
    uint64_t model_bytes = e->model ? e->model->file_size : 0;
    uint64_t buffers = 3ull * e->batch_blocks * e->header.block_size;
    if (limit && model_bytes + working + buffers > limit)
        return lmc_fail(&e->message, LMC_ERR_MEMLIMIT,
                        "compression needs about %llu MiB, over the memory limit of %llu MiB",
                        (unsigned long long)((model_bytes + working + buffers) >> 20),
                        (unsigned long long)(limit >> 20));
    return LMC_OK;
}

/* The header's model fields. */
static void name_model(lmc_encoder *e) {
    snprintf(e->header.model_name, sizeof e->header.model_name, "%s", e->model->name);
    memcpy(e->header.model_hash, e->model->hash, 16);
}

/* Byte coding under a Llama-family model: the one already loaded, else
 * model_arg's, else the default for model_kind. */
static lmc_status start_model(lmc_encoder *e, const char *model_arg, lmc_kind model_kind) {
    lmc_status status = LMC_OK;
    if (!e->model)
        status = lmc_find_model_for_encoding(model_arg, model_kind, e->options.memlimit, &e->model, &e->message);
    if (status != LMC_OK)
        return status;
    lmc_model *m = e->model;
    if (m->family != LMC_FAMILY_LLAMA)
        return lmc_fail(&e->message, LMC_ERR_PARAM, "model '%s' codes %s data, not %s data", m->name,
                        lmc_kind_name(m->kind), lmc_kind_name(e->header.kind));
    name_model(e);
    e->header.codec = !e->options.model_only && lmc_neural_can_mix(m) ? LMC_CODEC_MIXED_LANES : LMC_CODEC_MODEL;
    const int mixed = lmc_codec_mixing(e->header.codec);
    e->header.block_size = e->options.block_size ? e->options.block_size : lmc_neural_default_block_size(m, mixed);
    uint32_t window = e->options.context_window ? e->options.context_window : m->context_window;
    uint32_t stride = e->options.window_stride ? e->options.window_stride : LMC_MIN(m->window_stride, window);
    if (window < 2 || stride == 0 || stride > window || window > (uint32_t)m->llama.context_length)
        return lmc_fail(&e->message, LMC_ERR_PARAM,
                        "context window %u / stride %u not usable with model '%s' (context length %d)", window, stride,
                        m->name, m->llama.context_length);
    e->header.context_window = window;
    e->header.window_stride = stride;
    /* Several blocks share each model call (bigger matmuls, one thread per
     * block for the coding): fewer if that is what fits the memory limit. */
    int batch = lmc_neural_batch_fit(lmc_neural_encode_batch(lmc_pool_threads(e->pool)), e->header.block_size, mixed);
    const int codec_lanes = lmc_codec_lanes(e->header.codec);
    const int lanes = codec_lanes && e->options.lanes ? e->options.lanes : codec_lanes;
    lmc_neural_config config = {batch, window, stride, e->header.block_size, mixed, lanes,
                                e->header.numerics_version, 0};
    e->batch_blocks = config.max_blocks;
    while (config.max_blocks > 1 && check_memory(e, lmc_neural_coder_bytes(m, &config)) != LMC_OK)
        e->batch_blocks = config.max_blocks /= 2;
    status = check_memory(e, lmc_neural_coder_bytes(m, &config));
    if (status != LMC_OK)
        return status;
    return lmc_neural_coder_create(m, e->pool, &config, &e->coder, &e->message);
}

/* The better of the loaded model and the variant `name` on the probe
 * (*best: the loaded model's probe size); a variant that cannot be loaded
 * or run is passed over. */
static void try_text_variant(lmc_encoder *e, const char *name, size_t *best) {
    lmc_model *variant = NULL;
    lmc_message ignored;
    size_t size;
    if (lmc_find_model_for_encoding(name, LMC_KIND_TEXT, e->options.memlimit, &variant, &ignored) == LMC_OK &&
        variant->family == LMC_FAMILY_LLAMA &&
        lmc_neural_probe_size(variant, e->pool, e->input.data, PROBE_BYTES, &size, &ignored) == LMC_OK &&
        size < *best) {
        *best = size;
        lmc_model *loser = e->model;
        e->model = variant;
        variant = loser;
    }
    lmc_model_free(variant);
}

/* Text without -m: the default text model and each of its domain variants
 * code the input's first PROBE_BYTES under the model alone, and the
 * smallest wins (the default on a tie). On the corpus this picks the legal
 * variant for court opinions, the medical one for the NCBI disease file
 * and the default for the rest (bench/README.md). Inputs shorter than
 * DETECT_BYTES keep the default: the probe (three models over PROBE_BYTES,
 * about 0.9 s on 2 cores) would add 40% to the time of a 60 KB file, such
 * as the corpus's 61,669-byte BC5CDR sample, which the medical variant
 * codes 3.5% smaller. */
static lmc_status choose_text_model(lmc_encoder *e) {
    lmc_status status = lmc_find_model_for_encoding(NULL, LMC_KIND_TEXT, e->options.memlimit, &e->model, &e->message);
    if (status != LMC_OK || e->input.size < DETECT_BYTES || e->model->kind != LMC_KIND_TEXT ||
        e->model->family != LMC_FAMILY_LLAMA)
        return status;
    size_t best;
    status = lmc_neural_probe_size(e->model, e->pool, e->input.data, PROBE_BYTES, &best, &e->message);
    for (const char *const *name = lmc_text_model_variants(); *name && status == LMC_OK; name++)
        try_text_variant(e, *name, &best);
    return status;
}

static int is_media_kind(lmc_kind kind) {
    return kind == LMC_KIND_IMAGE || kind == LMC_KIND_AUDIO || kind == LMC_KIND_VIDEO;
}

/* Loads the model for a media kind; holds the input when it is a sample
 * model (the header waits for the media block), else leaves the model for
 * byte coding. */
static lmc_status start_media(lmc_encoder *e) {
    lmc_status status = lmc_find_model_for_encoding(e->options.model, e->header.kind, e->options.memlimit,
                                                    &e->model, &e->message);
    if (status == LMC_OK && lmc_media_model_fits(e->model, e->header.kind)) {
        e->media = 1;
        e->batch_blocks = 1;
    } else if (status == LMC_OK && e->options.max_error) {
        status = lmc_fail(&e->message, LMC_ERR_UNSUPPORTED, "a maximum error needs a sample model; '%s' codes bytes",
                          e->model->name);
    }
    return status;
}

static lmc_status start(lmc_encoder *e) {
    e->started = 1;
    e->header.format_version = LMC_FORMAT_VERSION;
    e->header.numerics_version = LMC_NUMERICS_VERSION;
    e->header.kind = e->options.kind != LMC_KIND_AUTO
                         ? e->options.kind
                         : lmc_format_detect(e->input.data, LMC_MIN(e->input.size, DETECT_BYTES));
    lmc_status status;
    if (e->options.fast) {
        e->header.codec = LMC_CODEC_FAST;
        snprintf(e->header.model_name, sizeof e->header.model_name, "fast-cm1");
        e->header.block_size = e->options.block_size ? e->options.block_size : FAST_BLOCK_SIZE;
        e->batch_blocks = LMC_MIN(lmc_pool_threads(e->pool), MAX_FAST_BATCH);
        status = check_memory(e, (uint64_t)e->batch_blocks * lmc_cm_memory(e->header.block_size));
    } else {
        if (e->options.max_error && !is_media_kind(e->header.kind))
            return lmc_fail(&e->message, LMC_ERR_UNSUPPORTED,
                            "a maximum error applies only to images, audio and video, not to %s data",
                            lmc_kind_name(e->header.kind));
        status = is_media_kind(e->header.kind) ? start_media(e) : LMC_OK;
        if (status == LMC_OK && e->media)
            return LMC_OK;
        if (status == LMC_OK && e->header.kind == LMC_KIND_TEXT && !e->options.model)
            status = choose_text_model(e);
        if (status == LMC_OK)
            status = start_model(e, e->options.model, e->header.kind);
    }
    if (status == LMC_OK)
        status = lmc_header_write(&e->output, &e->header);
    return status;
}

/* The media coder gives up on this input: byte coding with the default
 * byte model, and a notice saying why. */
static lmc_status fall_back_to_bytes(lmc_encoder *e, const char *reason) {
    if (e->options.max_error)
        return lmc_fail(&e->message, LMC_ERR_UNSUPPORTED, "cannot code it with a maximum error: %.440s", reason);
    snprintf(e->notice, sizeof e->notice, "%.440s; coded as bytes instead (byte-exact)", reason);
    lmc_model_free(e->model);
    e->model = NULL;
    e->media = 0;
    lmc_status status = start_model(e, NULL, LMC_KIND_BYTES);
    if (status == LMC_OK)
        status = lmc_header_write(&e->output, &e->header);
    return status;
}

/* ---- Coding blocks ---- */

typedef struct {
    lmc_encoder *encoder;
    const uint8_t *data;
    size_t sizes[MAX_FAST_BATCH];
    lmc_buf payloads[MAX_FAST_BATCH];
    lmc_status status[MAX_FAST_BATCH];
} fast_batch;

static void fast_range(void *ctx, int begin, int end) {
    fast_batch *batch = ctx;
    uint32_t block_size = batch->encoder->header.block_size;
    for (int i = begin; i < end; i++)
        batch->status[i] = lmc_cm_compress(batch->data + (size_t)i * block_size, batch->sizes[i], &batch->payloads[i]);
}

/* media_checksum: a media block's checksum of its item (NULL for byte
 * blocks); the whole-archive checksum then takes its 8 bytes in place of
 * the block's data. */
static lmc_status emit_block(lmc_encoder *e, const uint8_t *raw, size_t raw_size, const lmc_buf *payload,
                             const uint64_t *media_checksum) {
    lmc_block_record record;
    int stored = payload->size >= raw_size;
    record.mode = stored ? LMC_BLOCK_STORED : LMC_BLOCK_CODED;
    record.raw_size = raw_size;
    record.payload_size = stored ? raw_size : payload->size;
    record.raw_checksum = stored || !media_checksum ? lmc_checksum64(raw, raw_size) : *media_checksum;
    record.payload_checksum = stored ? record.raw_checksum : lmc_checksum64(payload->data, payload->size);
    lmc_buf_compact(&e->output, &e->output_read);
    size_t before = e->output.size;
    lmc_status status = lmc_block_record_write(&e->output, &record);
    if (status == LMC_OK)
        status = lmc_buf_append(&e->output, stored ? raw : payload->data, record.payload_size);
    if (status != LMC_OK)
        return lmc_fail(&e->message, status, "out of memory");
    if (stored || !media_checksum) {
        XXH3_64bits_update(e->total_hash, raw, raw_size);
    } else {
        uint8_t le[8];
        lmc_put_le64(le, *media_checksum);
        XXH3_64bits_update(e->total_hash, le, 8);
    }
    e->blocks++;
    e->total_in += raw_size;
    e->total_out += e->output.size - before;
    return LMC_OK;
}

/* Neural blocks: coded together, emitted in order. */
static lmc_status code_neural_blocks(lmc_encoder *e, int count, size_t bytes) {
    const uint32_t block_size = e->header.block_size;
    lmc_buf payloads[LMC_NEURAL_ENCODE_BATCH_MAX];
    for (int i = 0; i < count; i++)
        lmc_buf_init(&payloads[i]);
    lmc_status status = lmc_neural_encode_blocks(e->coder, e->input.data, bytes, payloads, &e->message);
    for (int i = 0; i < count && status == LMC_OK; i++) {
        const size_t first = (size_t)i * block_size;
        status = emit_block(e, e->input.data + first, LMC_MIN(block_size, bytes - first), &payloads[i], NULL);
    }
    for (int i = 0; i < count; i++)
        lmc_buf_free(&payloads[i]);
    return status;
}

/* Codes `count` blocks from the front of the input (the last may be short). */
static lmc_status code_blocks(lmc_encoder *e, int count, size_t bytes) {
    uint32_t block_size = e->header.block_size;
    lmc_status status = LMC_OK;
    if (e->options.fast) {
        fast_batch *batch = calloc(1, sizeof *batch);
        if (!batch)
            return lmc_fail(&e->message, LMC_ERR_NOMEM, "out of memory");
        batch->encoder = e;
        batch->data = e->input.data;
        for (int i = 0; i < count; i++) {
            batch->sizes[i] = LMC_MIN(block_size, bytes - (size_t)i * block_size);
            lmc_buf_init(&batch->payloads[i]);
        }
        lmc_pool_for(e->pool, count, fast_range, batch);
        for (int i = 0; i < count && status == LMC_OK; i++) {
            status = batch->status[i];
            if (status == LMC_OK)
                status = emit_block(e, e->input.data + (size_t)i * block_size, batch->sizes[i], &batch->payloads[i], NULL);
            else
                lmc_fail(&e->message, status, "fast model failed on a block");
        }
        for (int i = 0; i < count; i++)
            lmc_buf_free(&batch->payloads[i]);
        free(batch);
    } else {
        status = code_neural_blocks(e, count, bytes);
    }
    if (status != LMC_OK)
        return status;
    lmc_buf_consume(&e->input, bytes);
    if (e->options.progress && e->options.progress(e->options.progress_user, e->total_in, e->total_out))
        return lmc_fail(&e->message, LMC_ERR_INTERRUPTED, "interrupted");
    return LMC_OK;
}

/* ---- Media ---- */

static int same_item(const lmc_media *a, const lmc_media *b) {
    size_t element = a->samples ? sizeof *a->samples : sizeof *a->audio;
    const void *sa = a->samples ? (const void *)a->samples : (const void *)a->audio;
    const void *sb = b->samples ? (const void *)b->samples : (const void *)b->audio;
    return lmc_media_desc_equal(&a->desc, &b->desc) && a->count == b->count && a->side_size == b->side_size &&
           memcmp(a->side, b->side, a->side_size) == 0 && (a->count == 0 || memcmp(sa, sb, a->count * element) == 0);
}

/* Formats whose writer re-compresses the samples (PNG's IDAT, FLAC's
 * frames): the file comes back sample for sample, not byte for byte. */
static int is_sample_exact_format(lmc_media_format format) {
    return format == LMC_MEDIA_PNG || format == LMC_MEDIA_FLAC;
}

/* 1 if the writer restores the input from the item: byte for byte, or for
 * PNG and FLAC (re-compressed) sample for sample with every other chunk or
 * metadata block. */
static int restorable(const lmc_media *item, const uint8_t *data, size_t size) {
    lmc_buf written;
    lmc_buf_init(&written);
    lmc_message message;
    int ok = lmc_media_write(item, &written, &message) == LMC_OK;
    if (ok && !is_sample_exact_format(item->desc.format)) {
        ok = written.size == size && memcmp(written.data, data, size) == 0;
    } else if (ok) {
        lmc_media again;
        ok = lmc_media_parse(written.data, written.size, 0, &again, &message) == LMC_OK;
        ok = ok && same_item(item, &again);
        lmc_media_free(&again);
    }
    lmc_buf_free(&written);
    return ok;
}

/* The bound the item is coded with: the option's, unless its samples must
 * stay exact (with a notice). */
static uint32_t bound_for(lmc_encoder *e, const lmc_media *item) {
    const char *reason;
    if (e->options.max_error == 0 || lmc_lossy_applies(&item->desc, &reason))
        return e->options.max_error;
    snprintf(e->notice, sizeof e->notice, "%s; coded losslessly", reason);
    return 0;
}

static lmc_status code_media_item(lmc_encoder *e, const lmc_media *item) {
    lmc_buf payload;
    lmc_buf_init(&payload);
    uint64_t checksum;
    lmc_status status =
        lmc_media_block_encode_bounded(e->model, e->pool, item, bound_for(e, item), &payload, &checksum, &e->message);
    if (status == LMC_ERR_UNSUPPORTED) {
        char reason[LMC_MESSAGE_SIZE];
        snprintf(reason, sizeof reason, "%s", e->message.text);
        lmc_buf_free(&payload);
        return fall_back_to_bytes(e, reason);
    }
    e->header.codec = LMC_CODEC_MEDIA;
    e->header.block_size = LMC_MAX_BLOCK_SIZE;
    e->header.context_window = e->header.window_stride = 0;
    name_model(e);
    if (status == LMC_OK)
        status = lmc_header_write(&e->output, &e->header);
    if (status == LMC_OK)
        status = emit_block(e, e->input.data, e->input.size, &payload, &checksum);
    lmc_buf_free(&payload);
    if (status == LMC_OK)
        lmc_buf_consume(&e->input, e->input.size);
    return status;
}

/* The whole input as one media block, or the byte path if the readers
 * cannot take it exactly. */
static lmc_status code_media(lmc_encoder *e) {
    lmc_media item;
    lmc_message why;
    lmc_status status = lmc_media_parse(e->input.data, e->input.size, 0, &item, &why);
    if (status == LMC_ERR_NOMEM)
        return lmc_fail(&e->message, status, "%s", why.text);
    if (status != LMC_OK) {
        char reason[LMC_MESSAGE_SIZE];
        snprintf(reason, sizeof reason, "not coded as %s: %.400s", lmc_kind_name(e->header.kind), why.text);
        return fall_back_to_bytes(e, reason);
    }
    if (item.desc.kind != e->header.kind && !lmc_media_model_fits(e->model, item.desc.kind)) {
        lmc_media_free(&item);
        return fall_back_to_bytes(e, "the model does not code this kind of media");
    }
    e->header.kind = item.desc.kind;
    uint64_t needed = e->input.size + lmc_media_block_memory(&item.desc, lmc_pool_threads(e->pool)) +
                      e->model->file_size;
    if (e->options.memlimit && needed > e->options.memlimit) {
        lmc_media_free(&item);
        return lmc_fail(&e->message, LMC_ERR_MEMLIMIT, "compression needs about %llu MiB, over the memory limit of %llu MiB",
                        (unsigned long long)(needed >> 20), (unsigned long long)(e->options.memlimit >> 20));
    }
    if (!restorable(&item, e->input.data, e->input.size)) {
        lmc_media_free(&item);
        return fall_back_to_bytes(e, "the file cannot be restored exactly from its samples");
    }
    status = code_media_item(e, &item);
    lmc_media_free(&item);
    e->media = 0;
    return status;
}

static lmc_status code_full_batches(lmc_encoder *e) {
    size_t batch_bytes = (size_t)e->batch_blocks * e->header.block_size;
    while (e->input.size >= batch_bytes) {
        lmc_status status = code_blocks(e, e->batch_blocks, batch_bytes);
        if (status != LMC_OK)
            return status;
    }
    return LMC_OK;
}

lmc_status lmc_encoder_push(lmc_encoder *e, const void *data, size_t size) {
    if (e->failed != LMC_OK)
        return e->failed;
    if (e->finished)
        return fail(e, lmc_fail(&e->message, LMC_ERR_PARAM, "push after finish"));
    if (lmc_buf_append(&e->input, data, size) != LMC_OK)
        return fail(e, lmc_fail(&e->message, LMC_ERR_NOMEM, "out of memory"));
    lmc_status status = LMC_OK;
    if (!e->started && e->input.size >= DETECT_BYTES)
        status = start(e);
    if (status == LMC_OK && e->media && e->input.size > LMC_MAX_BLOCK_SIZE)
        status = fall_back_to_bytes(e, "larger than one media block (64 MiB)");
    if (status == LMC_OK && e->started && !e->media)
        status = code_full_batches(e);
    return status == LMC_OK ? LMC_OK : fail(e, status);
}

lmc_status lmc_encoder_finish(lmc_encoder *e) {
    if (e->failed != LMC_OK)
        return e->failed;
    if (e->finished)
        return LMC_OK;
    lmc_status status = e->started ? LMC_OK : start(e);
    if (status == LMC_OK && e->media)
        status = code_media(e);
    if (status == LMC_OK)
        status = code_full_batches(e);
    while (status == LMC_OK && e->input.size > 0) {
        uint32_t block_size = e->header.block_size;
        int count = (int)LMC_MIN((e->input.size + block_size - 1) / block_size, (size_t)e->batch_blocks);
        status = code_blocks(e, count, LMC_MIN(e->input.size, (size_t)count * block_size));
    }
    if (status == LMC_OK) {
        lmc_end_record end = {e->blocks, e->total_in, XXH3_64bits_digest(e->total_hash)};
        status = lmc_end_record_write(&e->output, &end);
        if (status != LMC_OK)
            lmc_fail(&e->message, status, "out of memory");
    }
    e->finished = 1;
    return status == LMC_OK ? LMC_OK : fail(e, status);
}

size_t lmc_encoder_pull(lmc_encoder *e, void *out, size_t capacity) {
    return lmc_buf_read(&e->output, &e->output_read, out, capacity);
}

/* ---- Planning for callers that code the blocks themselves (lib.h) ---- */

lmc_status lmc_encoder_plan(lmc_encoder *e, const void *prefix, size_t size, lmc_header *header, int *media) {
    if (e->failed != LMC_OK)
        return e->failed;
    if (e->started)
        return fail(e, lmc_fail(&e->message, LMC_ERR_PARAM, "plan after the stream started"));
    lmc_status status = lmc_buf_append(&e->input, prefix, size);
    status = status == LMC_OK ? start(e) : lmc_fail(&e->message, status, "out of memory");
    *header = e->header;
    *media = e->media;
    if (status == LMC_OK && !e->media) {
        /* The caller codes the blocks: the stream's model would only hold memory. */
        lmc_neural_coder_free(e->coder);
        lmc_model_free(e->model);
        e->coder = NULL;
        e->model = NULL;
        e->finished = 1;
    }
    return status == LMC_OK ? LMC_OK : fail(e, status);
}
