/*
 * Media blocks (codec 3, docs/FORMAT.md): a whole image, recording or video
 * parsed by the format readers, its samples coded by the kind's sample
 * model and the rest of the file (headers, chunks: the "side" blob) by the
 * --fast context model.
 *
 * Payload: u8 version (1); the item's description as 14 varints; varint
 * side size, varint side payload size (0: stored), the side payload; then
 * the samples' payload to the end. Version 2 (bounded error, lossy.h) has
 * two more varints after the description, the bound D >= 1 and the sum of
 * squared errors, and its samples' payload codes the quantiser's indices;
 * lossless blocks stay version 1, byte for byte.
 *
 * A PNG comes back pixel-exact, not byte-exact (its IDAT is re-compressed),
 * so a media block's checksum covers the item's canonical form (description,
 * side blob, samples) rather than the file's bytes: lmc_media_checksum.
 */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "lib/lib.h"
#include "lib/lossy.h"
#include "model/video_codec.h"

#define MEDIA_PAYLOAD_VERSION 1
#define BOUNDED_PAYLOAD_VERSION 2
#define DESC_FIELDS 14
/* zlib expands at most ~1032:1, and a sample can be one bit of it. */
#define MAX_SAMPLES_PER_FILE_BYTE (8u * 1040u)

static void desc_to_fields(const lmc_media_desc *d, uint64_t *f) {
    const uint64_t fields[DESC_FIELDS] = {d->kind, d->format, d->width, d->height, d->channels,
                                          d->bits, d->valid_bits, d->max_value, d->sample_rate, d->frames,
                                          d->chroma_shift_x, d->chroma_shift_y, d->palette, d->interlaced};
    memcpy(f, fields, sizeof fields);
}

/* Field by field, refusing values the readers never produce. */
static int desc_from_fields(const uint64_t *f, lmc_media_desc *d) {
    for (int i = 2; i < 9; i++)
        if (f[i] > UINT32_MAX)
            return 0;
    if (f[0] < LMC_KIND_IMAGE || f[0] > LMC_KIND_VIDEO || f[1] < LMC_MEDIA_PNG || f[1] > LMC_MEDIA_FLAC ||
        f[10] > 1 || f[11] > 1 || f[12] > 1 || f[13] > 1)
        return 0;
    *d = (lmc_media_desc){(lmc_kind)f[0], (lmc_media_format)f[1], (uint32_t)f[2], (uint32_t)f[3],
                          (uint32_t)f[4], (uint32_t)f[5], (uint32_t)f[6], (uint32_t)f[7], (uint32_t)f[8],
                          f[9], (uint8_t)f[10], (uint8_t)f[11], (uint8_t)f[12], (uint8_t)f[13]};
    return 1;
}

/* Samples the description declares, or 0 if it is not a plausible item
 * (which includes any product that could overflow). */
static uint64_t declared_samples(const lmc_media_desc *d) {
    if (d->kind == LMC_KIND_AUDIO)
        return d->channels >= 1 && d->channels <= 65535 && d->frames <= LMC_MEDIA_MAX_SAMPLES
                   ? d->channels * d->frames : 0;
    if (d->width == 0 || d->height == 0 || d->channels == 0 || d->channels > 4 || d->max_value == 0 ||
        d->max_value > 65535 || (uint64_t)d->width * d->height > LMC_MEDIA_MAX_SAMPLES)
        return 0;
    uint64_t frame = lmc_media_frame_samples(d);
    uint64_t frames = d->kind == LMC_KIND_VIDEO ? d->frames : 1;
    return frames <= LMC_MEDIA_MAX_SAMPLES / LMC_MAX(frame, 1) ? frame * frames : 0;
}

uint64_t lmc_media_checksum(const lmc_media *item) {
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    uint64_t fields[DESC_FIELDS];
    desc_to_fields(&item->desc, fields);
    uint8_t le[8];
    for (int i = 0; i < DESC_FIELDS; i++) {
        lmc_put_le64(le, fields[i]);
        XXH3_64bits_update(&state, le, 8);
    }
    XXH3_64bits_update(&state, item->side, item->side_size);
    /* Samples are hashed in their in-memory form, which the format fixes as
     * little-endian on every platform lmc supports (common.h checks). */
    if (item->samples)
        XXH3_64bits_update(&state, item->samples, item->count * sizeof *item->samples);
    if (item->audio)
        XXH3_64bits_update(&state, item->audio, item->count * sizeof *item->audio);
    return XXH3_64bits_digest(&state);
}

/* ---- Sample payloads by kind ---- */

static lmc_audio_shape audio_shape(const lmc_media_desc *d) {
    return (lmc_audio_shape){d->channels, d->frames, d->bits, d->valid_bits, d->sample_rate};
}

static lmc_image_shape image_shape(const lmc_media_desc *d) {
    return (lmc_image_shape){.width = d->width, .height = d->height, .planes = d->channels,
                             .max_value = d->max_value, .palette = d->palette};
}

/* Video: each plane's frames stacked into one tall one-plane image whose
 * frames are predicted from the frame before; planes one after another,
 * each as `varint size` + image payload. Since 2026-11-28 the planes are
 * preceded by varint 0 (a size no plane has) and a layout mark:
 * VIDEO_QUARTER_PEL, motion vectors in quarter pixels, or a layout of
 * lmc_video_encode, also quarter pixels: LMC_VIDEO_LAYOUT_TAPS (8-tap
 * reference filters; issue 7), LMC_VIDEO_LAYOUT_ERRORS,
 * LMC_VIDEO_LAYOUT_CONTEXTS or LMC_VIDEO_LAYOUT_MIXING (which new archives
 * get). Without a mark, whole pixels. */
#define VIDEO_QUARTER_PEL 1
#define VIDEO_LAYOUT LMC_VIDEO_LAYOUT_MIXING

static lmc_image_shape plane_stack_shape(const lmc_media_desc *d, uint32_t plane, uint32_t motion_shift) {
    uint32_t height = lmc_media_plane_height(d, plane);
    return (lmc_image_shape){.width = lmc_media_plane_width(d, plane), .height = height * (uint32_t)d->frames,
                             .planes = 1, .max_value = d->max_value, .frame_height = height,
                             .motion_shift = motion_shift};
}

/* Reads the layout mark, if any: the motion vectors' precision and the
 * mark itself (*layout; 0 without one). */
static lmc_status read_video_layout(const uint8_t *payload, size_t size, size_t *pos, uint32_t *motion_shift,
                                    uint32_t *layout) {
    size_t at = *pos;
    uint64_t first, mark;
    *motion_shift = 0;
    *layout = 0;
    if (lmc_varint_get(payload, size, &at, &first) != LMC_OK)
        return LMC_ERR_CORRUPT;
    if (first != 0)
        return LMC_OK; /* the first plane's size: whole-pixel vectors */
    if (lmc_varint_get(payload, size, &at, &mark) != LMC_OK ||
        (mark != VIDEO_QUARTER_PEL && (mark < LMC_VIDEO_LAYOUT_TAPS || mark > LMC_VIDEO_LAYOUT_MIXING)))
        return LMC_ERR_CORRUPT;
    *motion_shift = 2;
    *layout = (uint32_t)mark;
    *pos = at;
    return LMC_OK;
}

/* Samples of a frame before plane p's. Plane p's stack starts that many
 * frames' worth into the stacks of every plane, one after another
 * (together as many samples as the item). */
static size_t planes_before(const lmc_media_desc *d, uint32_t p) {
    size_t offset = 0;
    for (uint32_t q = 0; q < p; q++)
        offset += (size_t)lmc_media_plane_width(d, q) * lmc_media_plane_height(d, q);
    return offset;
}

/* Copies plane p of every frame between the item's frame-major samples and
 * its stack (to_stack: item -> stack, else back). */
static void move_plane(const lmc_media_desc *d, uint32_t p, uint16_t *samples, uint16_t *stack, int to_stack) {
    size_t frame = (size_t)lmc_media_frame_samples(d), offset = planes_before(d, p);
    size_t plane = (size_t)lmc_media_plane_width(d, p) * lmc_media_plane_height(d, p);
    for (uint64_t f = 0; f < d->frames; f++) {
        uint16_t *in_item = samples + f * frame + offset, *in_stack = stack + f * plane;
        memcpy(to_stack ? in_stack : in_item, to_stack ? in_item : in_stack, plane * sizeof *stack);
    }
}

/* The plane stacks' shapes and places in `stacks`. */
static void plane_stacks(const lmc_media_desc *d, uint32_t motion_shift, uint16_t *stacks, lmc_image_shape *shapes,
                         uint16_t **planes) {
    for (uint32_t p = 0; p < d->channels; p++) {
        shapes[p] = plane_stack_shape(d, p, motion_shift);
        planes[p] = stacks + planes_before(d, p) * d->frames;
    }
}

static lmc_status encode_video(const lmc_model *model, lmc_pool *pool, const lmc_media *item, lmc_buf *out,
                               lmc_message *message) {
    const lmc_media_desc *d = &item->desc;
    uint16_t *stacks = malloc((size_t)declared_samples(d) * sizeof *stacks);
    lmc_image_shape shapes[LMC_VIDEO_MAX_PLANES];
    uint16_t *planes[LMC_VIDEO_MAX_PLANES];
    lmc_buf payloads[LMC_VIDEO_MAX_PLANES];
    for (uint32_t p = 0; p < LMC_VIDEO_MAX_PLANES; p++)
        lmc_buf_init(&payloads[p]);
    lmc_status status = stacks ? LMC_OK : lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    if (status == LMC_OK) {
        plane_stacks(d, 2, stacks, shapes, planes);
        for (uint32_t p = 0; p < d->channels; p++)
            move_plane(d, p, item->samples, planes[p], 1);
        status = lmc_video_encode(model, VIDEO_LAYOUT, d->channels, shapes, (const uint16_t *const *)planes, pool,
                                  payloads, message);
    }
    if (status == LMC_OK && (lmc_varint_put(out, 0) != LMC_OK || lmc_varint_put(out, VIDEO_LAYOUT) != LMC_OK))
        status = lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    for (uint32_t p = 0; p < d->channels && status == LMC_OK; p++)
        if (lmc_varint_put(out, payloads[p].size) != LMC_OK ||
            lmc_buf_append(out, payloads[p].data, payloads[p].size) != LMC_OK)
            status = lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    for (uint32_t p = 0; p < LMC_VIDEO_MAX_PLANES; p++)
        lmc_buf_free(&payloads[p]);
    free(stacks);
    return status;
}

/* The plane table after the layout mark: each plane's payload. */
static lmc_status read_planes(const lmc_media_desc *d, const uint8_t *payload, size_t size, size_t pos,
                              const uint8_t **plane_payloads, size_t *plane_sizes, lmc_message *message) {
    for (uint32_t p = 0; p < d->channels; p++) {
        uint64_t length;
        if (lmc_varint_get(payload, size, &pos, &length) != LMC_OK || length > size - pos)
            return lmc_fail(message, LMC_ERR_CORRUPT, "video: damaged plane table");
        plane_payloads[p] = payload + pos;
        plane_sizes[p] = (size_t)length;
        pos += (size_t)length;
    }
    return pos == size ? LMC_OK : lmc_fail(message, LMC_ERR_CORRUPT, "video: data after the last plane");
}

/* The planes' stacks: under layout marks 2 to 5 together by
 * lmc_video_decode, under the older marks one by one as images. */
static lmc_status decode_stacks(const lmc_model *model, lmc_pool *pool, uint32_t layout, uint32_t count,
                                const lmc_image_shape *shapes, const uint8_t *const *payloads, const size_t *sizes,
                                uint16_t *const *planes, lmc_message *message) {
    if (layout >= LMC_VIDEO_LAYOUT_TAPS)
        return lmc_video_decode(model, layout, count, shapes, payloads, sizes, pool, planes, message);
    lmc_status status = LMC_OK;
    for (uint32_t p = 0; p < count && status == LMC_OK; p++)
        status = lmc_image_decode(model, &shapes[p], payloads[p], sizes[p], pool, planes[p], message);
    return status;
}

static lmc_status decode_video(const lmc_model *model, lmc_pool *pool, const uint8_t *payload, size_t size,
                               lmc_media *item, lmc_message *message) {
    const lmc_media_desc *d = &item->desc;
    uint16_t *stacks = malloc((size_t)declared_samples(d) * sizeof *stacks);
    lmc_image_shape shapes[LMC_VIDEO_MAX_PLANES];
    uint16_t *planes[LMC_VIDEO_MAX_PLANES];
    const uint8_t *plane_payloads[LMC_VIDEO_MAX_PLANES];
    size_t plane_sizes[LMC_VIDEO_MAX_PLANES], pos = 0;
    uint32_t motion_shift = 0, layout = 0;
    lmc_status status = stacks ? LMC_OK : lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    if (status == LMC_OK && read_video_layout(payload, size, &pos, &motion_shift, &layout) != LMC_OK)
        status = lmc_fail(message, LMC_ERR_CORRUPT, "video: damaged layout mark");
    if (status == LMC_OK)
        status = read_planes(d, payload, size, pos, plane_payloads, plane_sizes, message);
    if (status == LMC_OK) {
        plane_stacks(d, motion_shift, stacks, shapes, planes);
        status = decode_stacks(model, pool, layout, d->channels, shapes, plane_payloads, plane_sizes, planes,
                               message);
    }
    for (uint32_t p = 0; p < d->channels && status == LMC_OK; p++)
        move_plane(d, p, item->samples, planes[p], 0);
    free(stacks);
    return status;
}

uint64_t lmc_media_block_memory(const lmc_media_desc *d, int threads) {
    uint64_t count = declared_samples(d);
    if (d->kind == LMC_KIND_AUDIO)
        return count * sizeof(int32_t) * 3;
    uint64_t samples = count * sizeof(uint16_t);
    if (d->kind == LMC_KIND_IMAGE) {
        lmc_image_shape shape = image_shape(d);
        return samples + lmc_image_memory(&shape, threads);
    }
    /* The item, every plane's stack (together as many samples) and every
     * plane's coder: the planes are coded at the same time. */
    uint64_t total = 2 * samples;
    for (uint32_t p = 0; p < d->channels; p++) {
        lmc_image_shape shape = plane_stack_shape(d, p, 2);
        total += lmc_image_memory(&shape, threads);
    }
    return total;
}

static lmc_model_family family_for(lmc_kind kind) {
    return kind == LMC_KIND_AUDIO ? LMC_FAMILY_AUDIO : LMC_FAMILY_IMAGE;
}

int lmc_media_model_fits(const lmc_model *model, lmc_kind kind) {
    return (kind == LMC_KIND_IMAGE || kind == LMC_KIND_AUDIO || kind == LMC_KIND_VIDEO) &&
           model->family == family_for(kind);
}

static lmc_status encode_samples(const lmc_model *model, lmc_pool *pool, const lmc_media *item, lmc_buf *out,
                                 lmc_message *message) {
    const lmc_media_desc *d = &item->desc;
    if (d->kind == LMC_KIND_IMAGE) {
        lmc_image_shape shape = image_shape(d);
        return lmc_image_encode(model, &shape, item->samples, pool, out, message);
    }
    if (d->kind == LMC_KIND_AUDIO) {
        lmc_audio_shape shape = audio_shape(d);
        return lmc_audio_encode(model, &shape, item->audio, pool, out, message);
    }
    return encode_video(model, pool, item, out, message);
}

static lmc_status decode_samples(const lmc_model *model, lmc_pool *pool, const uint8_t *payload, size_t size,
                                 lmc_media *item, lmc_message *message) {
    const lmc_media_desc *d = &item->desc;
    if (d->kind == LMC_KIND_IMAGE) {
        lmc_image_shape shape = image_shape(d);
        return lmc_image_decode(model, &shape, payload, size, pool, item->samples, message);
    }
    if (d->kind == LMC_KIND_AUDIO) {
        lmc_audio_shape shape = audio_shape(d);
        return lmc_audio_decode(model, &shape, payload, size, pool, item->audio, message);
    }
    return decode_video(model, pool, payload, size, item, message);
}

/* ---- Blocks ---- */

static lmc_status encode_side(const lmc_media *item, lmc_buf *out) {
    lmc_buf coded;
    lmc_buf_init(&coded);
    lmc_status status = item->side_size > 0 ? lmc_cm_compress(item->side, item->side_size, &coded) : LMC_OK;
    int stored = status != LMC_OK || coded.size >= item->side_size;
    if (status == LMC_OK || status == LMC_ERR_NOMEM)
        status = lmc_varint_put(out, item->side_size);
    if (status == LMC_OK)
        status = lmc_varint_put(out, stored ? 0 : coded.size);
    if (status == LMC_OK)
        status = stored ? lmc_buf_append(out, item->side, item->side_size) : lmc_buf_append(out, coded.data, coded.size);
    lmc_buf_free(&coded);
    return status;
}

/* Version, description, for version 2 the bound and the squared error,
 * then the side blob. */
static lmc_status encode_head(const lmc_media *item, uint32_t bound, uint64_t squared_error, lmc_buf *payload,
                              lmc_message *message) {
    uint64_t fields[DESC_FIELDS];
    desc_to_fields(&item->desc, fields);
    lmc_status status = lmc_buf_append_byte(payload, bound ? BOUNDED_PAYLOAD_VERSION : MEDIA_PAYLOAD_VERSION);
    for (int i = 0; i < DESC_FIELDS && status == LMC_OK; i++)
        status = lmc_varint_put(payload, fields[i]);
    if (status == LMC_OK && bound)
        status = lmc_varint_put(payload, bound);
    if (status == LMC_OK && bound)
        status = lmc_varint_put(payload, squared_error);
    if (status == LMC_OK)
        status = encode_side(item, payload);
    return status == LMC_OK ? LMC_OK : lmc_fail(message, status, "out of memory");
}

lmc_status lmc_media_block_encode(const lmc_model *model, lmc_pool *pool, const lmc_media *item, lmc_buf *payload,
                                  lmc_message *message) {
    lmc_status status = encode_head(item, 0, 0, payload, message);
    return status == LMC_OK ? encode_samples(model, pool, item, payload, message) : status;
}

/* What the sample coders see of a quantised item: its indices, whose
 * largest value is the index of max_value (audio keeps its container). */
static lmc_media_desc index_desc(const lmc_media_desc *d, uint32_t bound) {
    lmc_media_desc coded = *d;
    if (d->kind != LMC_KIND_AUDIO)
        coded.max_value = lmc_lossy_index_max(d->max_value, bound);
    return coded;
}

/* A copy of the item's samples (the side blob shared), for the quantiser. */
static lmc_status copy_samples(const lmc_media *item, lmc_media *copy, lmc_message *message) {
    *copy = *item;
    size_t bytes = item->count * (item->audio ? sizeof *item->audio : sizeof *item->samples);
    void *samples = malloc(bytes ? bytes : 1);
    if (!samples)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    memcpy(samples, item->audio ? (const void *)item->audio : (const void *)item->samples, bytes);
    if (item->audio)
        copy->audio = samples;
    else
        copy->samples = samples;
    return LMC_OK;
}

lmc_status lmc_media_block_encode_bounded(const lmc_model *model, lmc_pool *pool, const lmc_media *item,
                                          uint32_t bound, lmc_buf *payload, uint64_t *checksum,
                                          lmc_message *message) {
    if (bound == 0) {
        *checksum = lmc_media_checksum(item);
        return lmc_media_block_encode(model, pool, item, payload, message);
    }
    const char *reason;
    if (bound > LMC_LOSSY_MAX_ERROR || !lmc_lossy_applies(&item->desc, &reason))
        return lmc_fail(message, LMC_ERR_PARAM, "this item cannot be coded with a bounded error of %u", bound);
    lmc_media coded;
    lmc_status status = copy_samples(item, &coded, message);
    if (status != LMC_OK)
        return status;
    void *restored = NULL;
    uint64_t squared_error = 0;
    status = lmc_lossy_quantise(&coded, bound, &restored, &squared_error, message);
    if (status == LMC_OK) {
        lmc_media decoded = *item; /* what the decoder will restore */
        if (decoded.audio)
            decoded.audio = restored;
        else
            decoded.samples = restored;
        *checksum = lmc_media_checksum(&decoded);
        status = encode_head(item, bound, squared_error, payload, message);
    }
    coded.desc = index_desc(&item->desc, bound);
    if (status == LMC_OK)
        status = encode_samples(model, pool, &coded, payload, message);
    free(restored);
    free(coded.audio ? (void *)coded.audio : (void *)coded.samples);
    return status;
}

static lmc_status corrupt(lmc_message *message, const char *what) {
    return lmc_fail(message, LMC_ERR_CORRUPT, "damaged media block: %s", what);
}

/* The bound a version 2 block was coded with (0 for version 1) and its
 * recorded sum of squared errors. */
typedef struct {
    uint32_t bound;
    uint64_t squared_error;
} block_bound;

static lmc_status read_bound(const uint8_t *payload, size_t size, size_t *pos, const lmc_media_desc *desc,
                             block_bound *b, lmc_message *message) {
    uint64_t bound, squared_error;
    const char *reason;
    if (lmc_varint_get(payload, size, pos, &bound) != LMC_OK ||
        lmc_varint_get(payload, size, pos, &squared_error) != LMC_OK)
        return corrupt(message, "truncated error bound");
    if (bound == 0 || bound > LMC_LOSSY_MAX_ERROR || !lmc_lossy_applies(desc, &reason))
        return corrupt(message, "impossible error bound");
    *b = (block_bound){(uint32_t)bound, squared_error};
    return LMC_OK;
}

static lmc_status read_desc(const uint8_t *payload, size_t size, size_t *pos, lmc_media_desc *desc,
                            block_bound *b, lmc_message *message) {
    if (size == 0 || (payload[0] != MEDIA_PAYLOAD_VERSION && payload[0] != BOUNDED_PAYLOAD_VERSION))
        return corrupt(message, "unknown payload version");
    *pos = 1;
    uint64_t fields[DESC_FIELDS];
    for (int i = 0; i < DESC_FIELDS; i++)
        if (lmc_varint_get(payload, size, pos, &fields[i]) != LMC_OK)
            return corrupt(message, "truncated description");
    if (!desc_from_fields(fields, desc))
        return corrupt(message, "impossible description");
    *b = (block_bound){0, 0};
    return payload[0] == BOUNDED_PAYLOAD_VERSION ? read_bound(payload, size, pos, desc, b, message) : LMC_OK;
}

lmc_status lmc_media_block_bound(const uint8_t *payload, size_t size, uint32_t *bound, double *psnr) {
    lmc_media_desc desc;
    block_bound b;
    size_t pos;
    lmc_message message;
    if (read_desc(payload, size, &pos, &desc, &b, &message) != LMC_OK)
        return LMC_ERR_CORRUPT;
    *bound = b.bound;
    *psnr = lmc_lossy_psnr(b.squared_error, declared_samples(&desc), lmc_lossy_peak(&desc));
    return LMC_OK;
}

/* Samples of a bounded block: the indices decoded under the index
 * description, then mapped back to samples. */
static lmc_status decode_bounded_samples(const lmc_model *model, lmc_pool *pool, const uint8_t *payload,
                                         size_t size, uint32_t bound, lmc_media *item, lmc_message *message) {
    lmc_media_desc desc = item->desc;
    item->desc = index_desc(&desc, bound);
    lmc_status status = decode_samples(model, pool, payload, size, item, message);
    item->desc = desc;
    return status == LMC_OK ? lmc_lossy_dequantise(item, bound, message) : status;
}

static lmc_status read_side(const uint8_t *payload, size_t size, size_t *pos, uint64_t raw_size, lmc_media *item,
                            lmc_message *message) {
    uint64_t side_size, coded_size;
    if (lmc_varint_get(payload, size, pos, &side_size) != LMC_OK ||
        lmc_varint_get(payload, size, pos, &coded_size) != LMC_OK || side_size > raw_size + 64)
        return corrupt(message, "bad side-data sizes");
    uint64_t stored_size = coded_size ? coded_size : side_size;
    if (stored_size > size - *pos)
        return corrupt(message, "side data runs past the block");
    item->side = malloc(side_size ? (size_t)side_size : 1);
    if (!item->side)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    item->side_size = (size_t)side_size;
    const uint8_t *data = payload + *pos;
    if (coded_size == 0)
        memcpy(item->side, data, item->side_size);
    else if (lmc_cm_decompress(data, (size_t)coded_size, item->side, item->side_size) != LMC_OK)
        return corrupt(message, "side data does not decode");
    *pos += (size_t)stored_size;
    return LMC_OK;
}

lmc_status lmc_media_block_decode(const lmc_model *model, lmc_pool *pool, const uint8_t *payload, size_t size,
                                  uint64_t raw_size, uint64_t memlimit, lmc_media *item, lmc_message *message) {
    memset(item, 0, sizeof *item);
    size_t pos;
    block_bound bound;
    lmc_status status = read_desc(payload, size, &pos, &item->desc, &bound, message);
    if (status != LMC_OK)
        return status;
    if (!lmc_media_model_fits(model, item->desc.kind))
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "model '%s' cannot decode %s data", model->name,
                        lmc_kind_name(item->desc.kind));
    uint64_t count = declared_samples(&item->desc);
    if (count == 0 && !(item->desc.kind == LMC_KIND_AUDIO && item->desc.frames == 0 && item->desc.channels > 0))
        return corrupt(message, "impossible geometry");
    if (count / MAX_SAMPLES_PER_FILE_BYTE > raw_size + 1)
        return corrupt(message, "more samples than the file could hold");
    uint64_t needed = lmc_media_block_memory(&item->desc, lmc_pool_threads(pool)) + model->file_size;
    if (memlimit && needed > memlimit)
        return lmc_fail(message, LMC_ERR_MEMLIMIT, "decoding this %s needs about %llu MiB, over the memory limit",
                        lmc_kind_name(item->desc.kind), (unsigned long long)(needed >> 20));
    status = read_side(payload, size, &pos, raw_size, item, message);
    if (status == LMC_OK)
        status = lmc_media_alloc_samples(item, count, LMC_MEDIA_MAX_SAMPLES, message);
    if (status == LMC_OK && bound.bound)
        status = decode_bounded_samples(model, pool, payload + pos, size - pos, bound.bound, item, message);
    else if (status == LMC_OK)
        status = decode_samples(model, pool, payload + pos, size - pos, item, message);
    if (status != LMC_OK)
        lmc_media_free(item);
    return status;
}
