/*
 * Whether two images show the same pixels, whatever their layout: lossless
 * codecs and optimisers legitimately turn RGB into gray or a palette, drop
 * an opaque alpha channel, narrow 16 bits to 8 when no value needs more, or
 * give gray back as RGB. Both images are therefore read as RGBA, each
 * channel a fraction of its largest value, and compared exactly.
 *
 * lmc_media_parse gives a palette image's indices (see format/media.h), so
 * the palette (PLTE) and the transparency (tRNS) are read here from the PNG
 * file's chunks; lmc_media_parse has checked the file's structure already.
 */
#include <string.h>

#include "cli/bench.h"

#define PNG_SIGNATURE_SIZE 8
#define CHUNK_OVERHEAD 12 /* length, type, CRC */
#define OPAQUE UINT32_MAX /* an alpha value meaning "no alpha": 1 of any maximum */

typedef struct {
    const lmc_media *item;
    const uint8_t *palette; /* PLTE: RGB triples */
    size_t palette_entries;
    const uint8_t *alpha;   /* tRNS of a palette image: one alpha per entry, the rest opaque */
    size_t alpha_entries;
    int has_key;            /* tRNS of a gray or RGB image: this colour is transparent */
    uint32_t key[3];
} rgba_view;

typedef struct {
    uint32_t value[4]; /* R, G, B, A */
    uint32_t max[4];
} rgba_pixel;

static uint32_t big_endian32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void read_transparency(rgba_view *view, const uint8_t *data, uint32_t length) {
    const lmc_media_desc *desc = &view->item->desc;
    if (desc->palette) {
        view->alpha = data;
        view->alpha_entries = length;
        return;
    }
    uint32_t colours = desc->channels == 1 ? 1 : 3; /* PNG allows no tRNS beside an alpha channel */
    if ((desc->channels != 1 && desc->channels != 3) || length < 2 * colours) return;
    view->has_key = 1;
    for (uint32_t c = 0; c < colours; c++) view->key[c] = (uint32_t)data[2 * c] << 8 | data[2 * c + 1];
}

/* Finds PLTE and tRNS among a PNG file's chunks (nothing for other formats). */
static void read_png_chunks(rgba_view *view, const uint8_t *file, size_t size) {
    if (view->item->desc.format != LMC_MEDIA_PNG) return;
    size_t at = PNG_SIGNATURE_SIZE;
    while (at <= size && size - at >= CHUNK_OVERHEAD) {
        uint32_t length = big_endian32(file + at);
        const uint8_t *type = file + at + 4, *data = file + at + 8;
        if (length > size - at - CHUNK_OVERHEAD) return;
        if (memcmp(type, "PLTE", 4) == 0) {
            view->palette = data;
            view->palette_entries = length / 3;
        }
        if (memcmp(type, "tRNS", 4) == 0) read_transparency(view, data, length);
        if (memcmp(type, "IEND", 4) == 0) return;
        at += CHUNK_OVERHEAD + (size_t)length;
    }
}

/* Sample of plane c at pixel index i. */
static uint32_t plane_sample(const lmc_media *item, uint32_t c, size_t i) {
    return item->samples[(size_t)c * item->desc.width * item->desc.height + i];
}

static void set_channel(rgba_pixel *pixel, int channel, uint32_t value, uint32_t max) {
    pixel->value[channel] = value;
    pixel->max[channel] = max;
}

/* Returns 0 for an index beyond the palette (no colour: never equal). */
static int palette_pixel(const rgba_view *view, size_t i, rgba_pixel *pixel) {
    uint32_t index = plane_sample(view->item, 0, i);
    if (index >= view->palette_entries) return 0;
    for (int c = 0; c < 3; c++) set_channel(pixel, c, view->palette[3 * index + c], 255);
    set_channel(pixel, 3, index < view->alpha_entries ? view->alpha[index] : 255, 255);
    return 1;
}

static int is_key_colour(const rgba_view *view, size_t i, uint32_t colours) {
    if (!view->has_key) return 0;
    for (uint32_t c = 0; c < colours; c++)
        if (plane_sample(view->item, c, i) != view->key[c]) return 0;
    return 1;
}

/* Pixel i of the image as RGBA. Returns 0 if it has no colour. */
static int pixel_at(const rgba_view *view, size_t i, rgba_pixel *pixel) {
    const lmc_media_desc *desc = &view->item->desc;
    if (desc->palette) return palette_pixel(view, i, pixel);
    uint32_t max = desc->max_value;
    uint32_t colours = desc->channels <= 2 ? 1 : 3; /* gray (+ alpha) or RGB (+ alpha) */
    for (int c = 0; c < 3; c++) set_channel(pixel, c, plane_sample(view->item, colours == 1 ? 0 : (uint32_t)c, i), max);
    if (desc->channels == 2 || desc->channels == 4)
        set_channel(pixel, 3, plane_sample(view->item, colours, i), max);
    else
        set_channel(pixel, 3, is_key_colour(view, i, colours) ? 0 : OPAQUE, OPAQUE);
    return 1;
}

static int same_pixel(const rgba_pixel *a, const rgba_pixel *b) {
    for (int c = 0; c < 4; c++)
        if ((uint64_t)a->value[c] * b->max[c] != (uint64_t)b->value[c] * a->max[c]) return 0;
    return 1;
}

/* Images lmc_media_parse read: one plane per channel, or one of indices. */
static int usable(const lmc_media *item) {
    const lmc_media_desc *desc = &item->desc;
    int channels_ok = desc->palette ? desc->channels == 1 : desc->channels >= 1 && desc->channels <= 4;
    return desc->kind == LMC_KIND_IMAGE && channels_ok && desc->max_value > 0 &&
           item->count == (size_t)desc->width * desc->height * desc->channels;
}

int bench_pixels_equal(const lmc_media *a, const uint8_t *a_file, size_t a_size, const lmc_media *b,
                       const uint8_t *b_file, size_t b_size) {
    if (!usable(a) || !usable(b) || a->desc.width != b->desc.width || a->desc.height != b->desc.height) return 0;
    rgba_view views[2] = {{.item = a}, {.item = b}};
    read_png_chunks(&views[0], a_file, a_size);
    read_png_chunks(&views[1], b_file, b_size);
    size_t pixels = (size_t)a->desc.width * a->desc.height;
    for (size_t i = 0; i < pixels; i++) {
        rgba_pixel x, y;
        if (!pixel_at(&views[0], i, &x) || !pixel_at(&views[1], i, &y) || !same_pixel(&x, &y)) return 0;
    }
    return 1;
}
