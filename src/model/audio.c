/*
 * The audio sample coder (LMC_FAMILY_AUDIO models): lmc_audio_encode and
 * lmc_audio_decode.
 *
 * A recording is cut into segments of whole frames (the last one shorter),
 * coded independently of each other, so decoding runs one segment per
 * thread and the payload does not depend on the thread count. Within a
 * segment each channel is one range-coder stream: channel c is predicted
 * from its own past and from channel c - 1 around the same frame (up to
 * `lookahead` frames ahead, which the decoder has, having decoded channel
 * c - 1 of the segment first). Every sample's prediction
 * (audio_predict.c; with a version-2 model the mix of two predictors,
 * one forgetting fast, one slowly) is rounded, and the residual coded
 * (audio_coder.c).
 *
 * Wasted bits: samples whose low bits are all zero over a block of
 * BLOCK_FRAMES frames (8-bit audio in a 16-bit container, 14-bit
 * recordings, digital gain steps) are coded shifted down, the prediction
 * scaled to match; each block says whether its shift changed.
 *
 * A stream that would come out larger than its samples as they are (noise)
 * is stored instead: each sample in ceil(bits / 8) little-endian bytes.
 *
 * Payload (empty for 0 frames):
 *   u8     format version (1)
 *   varint frames per segment
 *   varint size of each stream * 2 + 1 if it is stored, segment by
 *          segment, channel by channel
 *   the streams, in the same order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/audio_internal.h"

#define PAYLOAD_VERSION 1
#define BLOCK_FRAMES 4096                  /* frames sharing one wasted-bits shift */
#define SHIFT_BITS 6
#define MAX_SEGMENTS ((uint64_t)1 << 24)

typedef struct {
    const lmc_audio_shape *shape;
    const audio_params *params;
    const lmc_cm_tables *tables;
    const int32_t *source;          /* encoding: the samples */
    int32_t *target;                /* decoding: where they go */
    uint64_t segment_frames, segments;
    lmc_buf *streams;               /* encoding: one per stream */
    const uint8_t **inputs;         /* decoding: each stream's bytes */
    uint64_t *input_sizes;
    uint8_t *stored;                /* per stream: samples stored as they are */
    audio_stats *stats;             /* training statistics, or NULL */
    lmc_status *status;             /* per stream (encoding) or segment (decoding) */
} audio_job;

/* ---- One stream ---- */

typedef struct {
    int64_t low, high;              /* the sample range of `bits` bits */
    uint32_t bits;
} sample_range;

static sample_range range_of(uint32_t bits) {
    sample_range r = {-((int64_t)1 << (bits - 1)), ((int64_t)1 << (bits - 1)) - 1, bits};
    return r;
}

/* Low bits that are zero in every sample of the block; the current shift
 * if every sample is zero (any shift fits). */
static uint32_t wasted_bits(const int32_t *x, uint32_t n, uint32_t current) {
    uint32_t all = 0;
    for (uint32_t i = 0; i < n; i++)
        all |= (uint32_t)x[i];
    if (all == 0)
        return current;
    uint32_t shift = 0;
    while (!(all & 1)) {
        all >>= 1;
        shift++;
    }
    return shift;
}

/* The least-squares inputs of frame t: the channel's own last samples,
 * newest first, then the previous channel from `lookahead` frames ahead
 * down (zero outside the segment, which is coded on its own). */
static void fill_inputs(double *in, const audio_predictor_params *params, const int32_t *x,
                        const int32_t *previous, int64_t t, int64_t count) {
    for (uint32_t i = 0; i < params->own; i++) {
        int64_t k = t - 1 - (int64_t)i;
        *in++ = k >= 0 ? (double)x[k] : 0.0;
    }
    if (!previous || params->cross == 0)
        return;
    for (uint32_t i = 0; i < params->cross; i++) {
        int64_t k = t + (int64_t)params->lookahead - (int64_t)i;
        *in++ = k >= 0 && k < count ? (double)previous[k] : 0.0;
    }
}

/* The rounded prediction in units of 2^shift, within the sample range,
 * and where the exact one lies from it. */
static int64_t round_prediction(double prediction, const sample_range *range, uint32_t shift, double *offset) {
    double scaled = prediction / (double)((int64_t)1 << shift);
    double low = (double)(range->low >> shift), high = (double)(range->high >> shift);
    if (!(scaled >= low))
        scaled = low;
    if (!(scaled <= high))
        scaled = high;
    double rounded = floor(scaled + 0.5);
    if (rounded > high)
        rounded = high;
    *offset = scaled - rounded;
    return (int64_t)rounded;
}

/* Where stream (segment, channel) lies in the samples, and its length. */
static size_t stream_base(const audio_job *job, uint64_t segment, uint32_t channel, uint64_t *count) {
    uint64_t first = segment * job->segment_frames;
    *count = LMC_MIN(job->segment_frames, job->shape->frames - first);
    return (size_t)channel * job->shape->frames + first;
}

static uint32_t stored_bytes(const lmc_audio_shape *shape) {
    return (shape->bits + 7) / 8;
}

/* Replaces a coded stream by its samples as they are. */
static lmc_status store_stream(const audio_job *job, uint64_t segment, uint32_t channel, lmc_buf *stream) {
    uint64_t count;
    const int32_t *x = job->source + stream_base(job, segment, channel, &count);
    uint32_t bytes = stored_bytes(job->shape);
    stream->size = 0;
    lmc_status status = lmc_buf_reserve(stream, count * bytes);
    for (uint64_t t = 0; t < count && status == LMC_OK; t++)
        for (uint32_t b = 0; b < bytes; b++)
            stream->data[stream->size++] = (uint8_t)((uint32_t)x[t] >> (8 * b));
    return status;
}

static lmc_status load_stream(const audio_job *job, uint64_t segment, uint32_t channel, const uint8_t *data,
                              uint64_t size) {
    uint64_t count;
    int32_t *x = job->target + stream_base(job, segment, channel, &count);
    const uint32_t bytes = stored_bytes(job->shape), unused = 32 - job->shape->bits;
    if (size != count * bytes)
        return LMC_ERR_CORRUPT;
    for (uint64_t t = 0; t < count; t++) {
        uint32_t v = 0;
        for (uint32_t b = 0; b < bytes; b++)
            v |= (uint32_t)data[t * bytes + b] << (8 * b);
        /* The top bits must be the sign extension of the sample's bits. */
        int32_t value = (int32_t)(v << unused) >> unused;
        if (bytes < 4 && v != ((uint32_t)value & ((1u << (8 * bytes)) - 1)))
            return LMC_ERR_CORRUPT;
        x[t] = value;
    }
    return LMC_OK;
}

/* One stream being coded: its samples, the previous channel's, and models. */
typedef struct {
    const audio_params *params;
    const int32_t *x;               /* the channel's samples in the segment (decoding: as they appear) */
    const int32_t *previous;        /* the previous channel's, or NULL */
    int32_t *out;                   /* decoding: where samples go; NULL when encoding */
    int64_t count;
    sample_range range;
    audio_predictor *predictor[AUDIO_MAX_PREDICTORS];
    audio_mixer mixer;              /* with two predictors */
    audio_coder *coder;
    const audio_bit_coder *bc;
} stream;

/* The block's wasted-bits shift: a flag saying whether it changed, then
 * the new one. LMC_ERR_CORRUPT if a decoded shift leaves no bits. */
static lmc_status code_shift(stream *st, int64_t block, int64_t end, uint32_t *shift) {
    uint32_t next = st->out ? *shift : wasted_bits(st->x + block, (uint32_t)(end - block), *shift);
    if (audio_coder_flag(st->coder, st->bc, next != *shift))
        next = audio_code_raw(st->bc, next, SHIFT_BITS);
    if (next >= st->range.bits)
        return LMC_ERR_CORRUPT;
    *shift = next;
    return LMC_OK;
}

/* Predictor k's prediction of frame t. */
static double predictor_output(stream *st, uint32_t k, int64_t t) {
    fill_inputs(audio_predictor_inputs(st->predictor[k]), &st->params->predictor[k], st->x, st->previous, t,
                st->count);
    return audio_predictor_predict(st->predictor[k]);
}

/* The prediction of frame t: the predictor's, or the mix of both. */
static double predict(stream *st, int64_t t) {
    double first = predictor_output(st, 0, t);
    if (st->params->predictors < 2)
        return first;
    return audio_mixer_mix(&st->mixer, first, predictor_output(st, 1, t));
}

/* Codes frames [block, end) under one shift; LMC_ERR_CORRUPT if a decoded
 * sample falls outside the sample range. */
static lmc_status code_block(stream *st, int64_t block, int64_t end, uint32_t shift) {
    const uint32_t max_length = st->range.bits - shift;
    const int64_t low = st->range.low >> shift, high = st->range.high >> shift;
    for (int64_t t = block; t < end; t++) {
        double offset;
        int64_t rounded = round_prediction(predict(st, t), &st->range, shift, &offset);
        int64_t residual = st->out ? 0 : ((int64_t)st->x[t] >> shift) - rounded;
        residual = audio_coder_code(st->coder, st->bc, residual, offset, max_length);
        if (st->out) {
            int64_t value = rounded + residual;
            if (value < low || value > high)
                return LMC_ERR_CORRUPT;
            st->out[t] = (int32_t)(value * ((int64_t)1 << shift));
        }
        for (uint32_t k = 0; k < st->params->predictors; k++)
            audio_predictor_update(st->predictor[k], st->x[t]);
        if (st->params->predictors > 1)
            audio_mixer_update(&st->mixer, st->x[t]);
    }
    return LMC_OK;
}

/* Codes (or decodes) the channel `channel` of segment `segment`. */
static lmc_status code_stream(const audio_job *job, uint64_t segment, uint32_t channel, const audio_bit_coder *bc) {
    uint64_t frames;
    size_t base = stream_base(job, segment, channel, &frames);
    stream st = {0};
    st.params = job->params;
    st.x = job->target ? job->target + base : job->source + base;
    st.previous = channel > 0 ? st.x - job->shape->frames : NULL;
    st.out = job->target ? job->target + base : NULL;
    st.count = (int64_t)frames;
    st.range = range_of(job->shape->bits);
    st.bc = bc;
    audio_mixer_init(&st.mixer, job->params->mix_rate);
    lmc_status status = LMC_OK;
    for (uint32_t k = 0; k < job->params->predictors && status == LMC_OK; k++) {
        const audio_predictor_params *pp = &job->params->predictor[k];
        status = audio_predictor_create(pp, st.previous && pp->cross > 0, &st.predictor[k]);
    }
    if (status == LMC_OK)
        status = audio_coder_create(job->params, job->tables, &st.coder);
    if (status == LMC_OK && job->stats)
        audio_coder_collect(st.coder, job->stats);
    uint32_t shift = 0;
    for (int64_t block = 0; block < st.count && status == LMC_OK; block += BLOCK_FRAMES) {
        int64_t end = LMC_MIN(block + BLOCK_FRAMES, st.count);
        status = code_shift(&st, block, end, &shift);
        if (status == LMC_OK)
            status = code_block(&st, block, end, shift);
    }
    if (st.coder && job->stats)
        audio_coder_finish_stats(st.coder, job->stats);
    audio_coder_free(st.coder);
    for (uint32_t k = 0; k < AUDIO_MAX_PREDICTORS; k++)
        audio_predictor_free(st.predictor[k]);
    return status;
}

/* ---- Encoding ---- */

static void encode_streams(void *ctx, int begin, int end) {
    const audio_job *job = ctx;
    for (int i = begin; i < end; i++) {
        uint64_t segment = (uint64_t)i / job->shape->channels;
        uint32_t channel = (uint32_t)((uint64_t)i % job->shape->channels);
        lmc_rc_encoder encoder;
        lmc_rc_encoder_init(&encoder, &job->streams[i]);
        audio_bit_coder bc = {&encoder, NULL};
        lmc_status status = code_stream(job, segment, channel, &bc);
        lmc_status finished = lmc_rc_encoder_finish(&encoder);
        if (status == LMC_OK)
            status = finished;
        uint64_t count;
        stream_base(job, segment, channel, &count);
        job->stored[i] = status == LMC_OK && job->streams[i].size > count * stored_bytes(job->shape);
        if (job->stored[i])
            status = store_stream(job, segment, channel, &job->streams[i]);
        job->status[i] = status;
    }
}

static lmc_status check_shape(const lmc_audio_shape *shape, lmc_message *message) {
    if (!shape || shape->channels == 0 || shape->bits == 0 || shape->bits > 32 || shape->valid_bits > shape->bits)
        return lmc_fail(message, LMC_ERR_PARAM, "audio: invalid shape (channels %u, bits %u, valid bits %u)",
                        shape ? shape->channels : 0, shape ? shape->bits : 0, shape ? shape->valid_bits : 0);
    if (shape->frames > SIZE_MAX / sizeof(int32_t) / shape->channels)
        return lmc_fail(message, LMC_ERR_PARAM, "audio: too many samples");
    return LMC_OK;
}

static lmc_status check_samples(const lmc_audio_shape *shape, const int32_t *samples, lmc_message *message) {
    const sample_range range = range_of(shape->bits);
    size_t n = (size_t)shape->channels * shape->frames;
    for (size_t i = 0; i < n; i++)
        if (samples[i] < range.low || samples[i] > range.high)
            return lmc_fail(message, LMC_ERR_PARAM, "audio: sample %d does not fit in %u bits", samples[i],
                            shape->bits);
    return LMC_OK;
}

static lmc_status write_payload(const audio_job *job, uint64_t n_streams, lmc_buf *out, lmc_message *message) {
    lmc_status status = lmc_buf_append_byte(out, PAYLOAD_VERSION);
    if (status == LMC_OK)
        status = lmc_varint_put(out, job->segment_frames);
    for (uint64_t i = 0; i < n_streams && status == LMC_OK; i++)
        status = lmc_varint_put(out, (uint64_t)job->streams[i].size << 1 | job->stored[i]);
    for (uint64_t i = 0; i < n_streams && status == LMC_OK; i++)
        status = lmc_buf_append(out, job->streams[i].data, job->streams[i].size);
    return status == LMC_OK ? LMC_OK : lmc_fail(message, status, "audio: out of memory");
}

static lmc_status encode(const lmc_model *model, const lmc_audio_shape *shape, const int32_t *samples,
                         lmc_pool *pool, audio_stats *stats, lmc_buf *out, lmc_message *message) {
    lmc_status status = check_shape(shape, message);
    if (status == LMC_OK && shape->frames > 0)
        status = check_samples(shape, samples, message);
    if (status != LMC_OK || shape->frames == 0)
        return status;
    audio_params params;
    status = audio_params_load(model, &params, message);
    if (status != LMC_OK)
        return status;
    audio_job job = {0};
    job.shape = shape;
    job.params = &params;
    job.source = samples;
    job.stats = stats;
    job.segment_frames = params.segment_frames;
    job.segments = (shape->frames + params.segment_frames - 1) / params.segment_frames;
    uint64_t n_streams = job.segments * shape->channels;
    if (job.segments > MAX_SEGMENTS || n_streams > INT32_MAX) {
        audio_params_free(&params);
        return lmc_fail(message, LMC_ERR_PARAM, "audio: too many channels or segments");
    }
    lmc_cm_tables *tables = malloc(sizeof *tables);
    job.streams = calloc(n_streams, sizeof *job.streams);
    job.status = calloc(n_streams, sizeof *job.status);
    job.stored = calloc(n_streams, sizeof *job.stored);
    if (!tables || !job.streams || !job.status || !job.stored) {
        status = lmc_fail(message, LMC_ERR_NOMEM, "audio: out of memory");
    } else {
        lmc_cm_tables_build(tables);
        job.tables = tables;
        lmc_pool_for(stats ? NULL : pool, (int)n_streams, encode_streams, &job);
        for (uint64_t i = 0; i < n_streams && status == LMC_OK; i++)
            if (job.status[i] != LMC_OK)
                status = lmc_fail(message, job.status[i], "audio: stream %llu could not be coded",
                                  (unsigned long long)i);
        if (status == LMC_OK)
            status = write_payload(&job, n_streams, out, message);
    }
    for (uint64_t i = 0; job.streams && i < n_streams; i++)
        lmc_buf_free(&job.streams[i]);
    free(job.streams);
    free(job.status);
    free(job.stored);
    free(tables);
    audio_params_free(&params);
    return status;
}

lmc_status lmc_audio_encode(const lmc_model *model, const lmc_audio_shape *shape, const int32_t *samples,
                            lmc_pool *pool, lmc_buf *out, lmc_message *message) {
    return encode(model, shape, samples, pool, NULL, out, message);
}

lmc_status audio_encode_with_stats(const lmc_model *model, const lmc_audio_shape *shape, const int32_t *samples,
                                   lmc_buf *out, audio_stats *stats, lmc_message *message) {
    return encode(model, shape, samples, NULL, stats, out, message);
}

/* ---- Decoding ---- */

static void decode_segments(void *ctx, int begin, int end) {
    const audio_job *job = ctx;
    const uint32_t channels = job->shape->channels;
    for (int segment = begin; segment < end; segment++) {
        lmc_status status = LMC_OK;
        for (uint32_t c = 0; c < channels && status == LMC_OK; c++) {
            uint64_t i = (uint64_t)segment * channels + c;
            if (job->stored[i]) {
                status = load_stream(job, (uint64_t)segment, c, job->inputs[i], job->input_sizes[i]);
                continue;
            }
            lmc_rc_decoder decoder;
            lmc_rc_decoder_init(&decoder, job->inputs[i], job->input_sizes[i]);
            audio_bit_coder bc = {NULL, &decoder};
            status = code_stream(job, (uint64_t)segment, c, &bc);
            if (status == LMC_OK && !lmc_rc_decoder_end_ok(&decoder))
                status = LMC_ERR_CORRUPT;
        }
        job->status[segment] = status;
    }
}

/* Reads the header and finds every stream; LMC_ERR_CORRUPT unless the sizes
 * add up to exactly the payload. */
static lmc_status read_header(audio_job *job, const uint8_t *payload, size_t size, lmc_message *message) {
    size_t pos = 1;
    uint64_t segment_frames;
    if (size < 1 || payload[0] != PAYLOAD_VERSION || lmc_varint_get(payload, size, &pos, &segment_frames) != LMC_OK ||
        segment_frames < AUDIO_MIN_SEGMENT_FRAMES)
        return lmc_fail(message, LMC_ERR_CORRUPT, "audio: damaged payload header");
    uint64_t frames = job->shape->frames;
    uint64_t segments = frames / segment_frames + (frames % segment_frames != 0);
    uint64_t n_streams = segments * job->shape->channels;
    if (segments > MAX_SEGMENTS || n_streams > size - pos || n_streams > INT32_MAX)
        return lmc_fail(message, LMC_ERR_CORRUPT, "audio: damaged payload header");
    job->segment_frames = segment_frames;
    job->segments = segments;
    job->inputs = calloc(n_streams, sizeof *job->inputs);
    job->input_sizes = calloc(n_streams, sizeof *job->input_sizes);
    job->status = calloc(segments, sizeof *job->status);
    job->stored = calloc(n_streams, sizeof *job->stored);
    if (!job->inputs || !job->input_sizes || !job->status || !job->stored)
        return lmc_fail(message, LMC_ERR_NOMEM, "audio: out of memory");
    for (uint64_t i = 0; i < n_streams; i++) {
        uint64_t field;
        if (lmc_varint_get(payload, size, &pos, &field) != LMC_OK)
            return lmc_fail(message, LMC_ERR_CORRUPT, "audio: damaged payload header");
        job->input_sizes[i] = field >> 1;
        job->stored[i] = (uint8_t)(field & 1);
    }
    for (uint64_t i = 0; i < n_streams; i++) {
        if (job->input_sizes[i] > size - pos)
            return lmc_fail(message, LMC_ERR_CORRUPT, "audio: damaged payload (stream sizes)");
        job->inputs[i] = payload + pos;
        pos += job->input_sizes[i];
    }
    if (pos != size)
        return lmc_fail(message, LMC_ERR_CORRUPT, "audio: damaged payload (trailing bytes)");
    return LMC_OK;
}

lmc_status lmc_audio_decode(const lmc_model *model, const lmc_audio_shape *shape, const uint8_t *payload,
                            size_t size, lmc_pool *pool, int32_t *samples, lmc_message *message) {
    lmc_status status = check_shape(shape, message);
    if (status != LMC_OK)
        return status;
    if (shape->frames == 0)
        return size == 0 ? LMC_OK : lmc_fail(message, LMC_ERR_CORRUPT, "audio: payload for no samples");
    audio_params params;
    status = audio_params_load(model, &params, message);
    if (status != LMC_OK)
        return status;
    audio_job job = {0};
    job.shape = shape;
    job.params = &params;
    job.target = samples;
    lmc_cm_tables *tables = malloc(sizeof *tables);
    if (!tables)
        status = lmc_fail(message, LMC_ERR_NOMEM, "audio: out of memory");
    if (status == LMC_OK)
        status = read_header(&job, payload, size, message);
    if (status == LMC_OK) {
        lmc_cm_tables_build(tables);
        job.tables = tables;
        lmc_pool_for(pool, (int)job.segments, decode_segments, &job);
        for (uint64_t s = 0; s < job.segments && status == LMC_OK; s++)
            if (job.status[s] != LMC_OK)
                status = lmc_fail(message, job.status[s], job.status[s] == LMC_ERR_CORRUPT
                                                              ? "audio: damaged payload (segment %llu)"
                                                              : "audio: segment %llu could not be decoded",
                                  (unsigned long long)s);
    }
    free(job.inputs);
    free(job.input_sizes);
    free(job.status);
    free(job.stored);
    free(tables);
    audio_params_free(&params);
    return status;
}
