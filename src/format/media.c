/* The media layer's front door: format dispatch, geometry and helpers. */
#include "format/media.h"

#include <stdlib.h>
#include <string.h>

static int is_png(const uint8_t *p, size_t n) {
    return n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0;
}

static int is_pnm(const uint8_t *p, size_t n) {
    return n >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6' || p[1] == '7');
}

static int is_wav(const uint8_t *p, size_t n) {
    return n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WAVE", 4) == 0;
}

static int is_flac(const uint8_t *p, size_t n) {
    return lmc_flac_signature_offset(p, n) != SIZE_MAX;
}

static int is_y4m(const uint8_t *p, size_t n) {
    return n >= 10 && memcmp(p, "YUV4MPEG2 ", 10) == 0;
}

lmc_status lmc_media_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                           lmc_message *message) {
    memset(item, 0, sizeof *item);
    if (is_png(data, size))
        return lmc_png_parse(data, size, max_samples, item, message);
    if (is_pnm(data, size))
        return lmc_pnm_parse(data, size, max_samples, item, message);
    if (is_wav(data, size))
        return lmc_wav_parse(data, size, max_samples, item, message);
    if (is_y4m(data, size))
        return lmc_y4m_parse(data, size, max_samples, item, message);
    if (is_flac(data, size))
        return lmc_flac_parse(data, size, max_samples, item, message);
    return lmc_fail(message, LMC_ERR_UNSUPPORTED, "not a PNG, PNM, WAV, FLAC or Y4M file");
}

lmc_status lmc_media_write(const lmc_media *item, lmc_buf *out, lmc_message *message) {
    switch (item->desc.format) {
    case LMC_MEDIA_PNG: return lmc_png_write(item, out, message);
    case LMC_MEDIA_PNM: return lmc_pnm_write(item, out, message);
    case LMC_MEDIA_WAV: return lmc_wav_write(item, out, message);
    case LMC_MEDIA_Y4M: return lmc_y4m_write(item, out, message);
    case LMC_MEDIA_FLAC: return lmc_flac_write(item, out, message);
    default: return lmc_fail(message, LMC_ERR_PARAM, "media item has no known format");
    }
}

void lmc_media_free(lmc_media *item) {
    free(item->samples);
    free(item->audio);
    free(item->side);
    memset(item, 0, sizeof *item);
}

static int is_chroma_plane(const lmc_media_desc *desc, uint32_t plane) {
    return desc->kind == LMC_KIND_VIDEO && (plane == 1 || plane == 2);
}

uint32_t lmc_media_plane_width(const lmc_media_desc *desc, uint32_t plane) {
    if (!is_chroma_plane(desc, plane))
        return desc->width;
    uint32_t step = (uint32_t)1 << desc->chroma_shift_x;
    return (uint32_t)(((uint64_t)desc->width + step - 1) / step);
}

uint32_t lmc_media_plane_height(const lmc_media_desc *desc, uint32_t plane) {
    if (!is_chroma_plane(desc, plane))
        return desc->height;
    uint32_t step = (uint32_t)1 << desc->chroma_shift_y;
    return (uint32_t)(((uint64_t)desc->height + step - 1) / step);
}

uint64_t lmc_media_frame_samples(const lmc_media_desc *desc) {
    uint64_t total = 0;
    for (uint32_t p = 0; p < desc->channels; p++)
        total += (uint64_t)lmc_media_plane_width(desc, p) * lmc_media_plane_height(desc, p);
    return total;
}

int lmc_media_desc_equal(const lmc_media_desc *a, const lmc_media_desc *b) {
    return a->kind == b->kind && a->format == b->format && a->width == b->width && a->height == b->height &&
           a->channels == b->channels && a->bits == b->bits && a->valid_bits == b->valid_bits &&
           a->max_value == b->max_value && a->sample_rate == b->sample_rate && a->frames == b->frames &&
           a->chroma_shift_x == b->chroma_shift_x && a->chroma_shift_y == b->chroma_shift_y &&
           a->palette == b->palette && a->interlaced == b->interlaced;
}

lmc_status lmc_media_alloc_samples(lmc_media *item, uint64_t count, uint64_t max_samples, lmc_message *message) {
    if (max_samples == 0)
        max_samples = LMC_MEDIA_MAX_SAMPLES;
    if (count > max_samples)
        return lmc_fail(message, LMC_ERR_MEMLIMIT, "%llu samples exceed the limit of %llu",
                        (unsigned long long)count, (unsigned long long)max_samples);
    size_t element = item->desc.kind == LMC_KIND_AUDIO ? sizeof(int32_t) : sizeof(uint16_t);
    void *array = malloc(count ? (size_t)count * element : 1);
    if (!array)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory for %llu samples", (unsigned long long)count);
    if (item->desc.kind == LMC_KIND_AUDIO)
        item->audio = array;
    else
        item->samples = array;
    item->count = (size_t)count;
    return LMC_OK;
}

lmc_status lmc_media_make_side(lmc_media *item, const uint64_t *header, size_t n_header, const uint8_t *data,
                               size_t size, size_t hole, size_t hole_size, lmc_message *message) {
    lmc_buf side;
    lmc_buf_init(&side);
    lmc_status status = LMC_OK;
    for (size_t i = 0; i < n_header && status == LMC_OK; i++)
        status = lmc_varint_put(&side, header[i]);
    if (status == LMC_OK)
        status = lmc_buf_append(&side, data, hole);
    if (status == LMC_OK)
        status = lmc_buf_append(&side, data + hole + hole_size, size - hole - hole_size);
    if (status != LMC_OK) {
        lmc_buf_free(&side);
        return lmc_fail(message, status, "out of memory for side data");
    }
    item->side = side.data;
    item->side_size = side.size;
    return LMC_OK;
}
