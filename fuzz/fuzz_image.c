/*
 * libFuzzer target for the image coder's decoder (lmc_image_decode,
 * src/model/image.c): the input's first FUZZ_SHAPE_BYTES bytes choose a
 * small shape, the rest is the payload. Any payload must give a clean error
 * with a message, or an image whose every sample is at most max_value; the
 * decoder must not write past width * height * planes samples (the buffer
 * has exactly that size, so ASan sees it). When the shape bytes ask for it,
 * an image that decodes is then encoded and decoded again and must come
 * back the same (a round trip over whatever images the fuzzer reaches), or
 * be refused as UNSUPPORTED, on which lmc's encoder codes bytes instead.
 *
 * Shape bytes (each field taken modulo its range):
 *   0: width - 1 (1..64)      1: height - 1 (1..64)
 *   2: bits 0-1 planes - 1 (1..4); bit 2 set: the round trip (it triples
 *      the cost of an input, so the fuzzer chooses where to spend it)
 *   3: layout: 0 8-bit (max 255); 1 max = byte 4 + 1 (1..256); 2 max = bytes
 *      4-5 big-endian (0 read as 65535); 3 palette indices (1 plane, max =
 *      byte 4 % 255 + 1); 4 video stack (1 plane, frames of the largest
 *      divisor of height at most byte 5 % height + 1 rows; max 255, or 1023
 *      when byte 4 is odd; quarter-pixel motion vectors when byte 4 has
 *      bit 1 set, else whole pixels); 5 a video stack of layout 2
 *      (lmc_video_decode; frames as in 4, max 255, quarter pixels),
 *      guided by a fixed luma stack of the same shape when byte 4 has bit
 *      2 set (a chroma plane's path: the last plane of a clip whose
 *      first is that luma stack's own payload), of layout 3 when it has bit
 *      3 set, of layout 4 when it has bit 4 set, of layout 5 when it has
 *      bit 5 set (the clip then has that luma stack as its second plane
 *      too, which guides the third as Cb guides Cr)
 * Seeds: fuzz/corpus/image/ (small synthetic images encoded with this
 * layout; docs/FUZZING.md says how they were made).
 *
 * The model is a minimal lmc-image GGUF written to a temporary file once.
 * Every stripe the coder opens allocates and clears tens of MiB of context
 * maps, so this target runs a few inputs per second, not thousands.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "model/video_codec.h"

#define FUZZ_SHAPE_BYTES 6

/* How the payload is decoded: lmc_image_decode, or a video stack (of
 * layout 2, 3 or 4) alone or guided by a luma stack. */
typedef enum { CODED_IMAGE, CODED_VIDEO, CODED_GUIDED_VIDEO } coding;

/* The video stack layout of the input being run (a shape byte). */
static uint32_t video_layout;

static lmc_model *model;
static lmc_pool *pool;

static void check(int condition) {
    if (!condition) abort();
}

/* Writes the model to a temporary file, loads it and removes the file. */
static lmc_model *load_image_model(void) {
    char path[] = "/tmp/lmc_fuzz_image_XXXXXX";
    int fd = mkstemp(path);
    check(fd >= 0);
    close(fd);
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    check(w != NULL);
    check(lmc_gguf_writer_set_str(w, "general.architecture", "lmc-image") == LMC_OK);
    check(lmc_gguf_writer_set_str(w, "general.name", "fuzz-image") == LMC_OK);
    check(lmc_gguf_writer_set_str(w, "lmc.default_kind", "image") == LMC_OK);
    check(lmc_gguf_writer_write(w, path) == LMC_OK);
    lmc_gguf_writer_free(w);
    lmc_model *loaded = NULL;
    lmc_message message;
    check(lmc_model_load(path, 0, &loaded, &message) == LMC_OK);
    remove(path);
    return loaded;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    model = load_image_model();
    pool = lmc_pool_create(1);
    check(pool != NULL);
    return 0;
}

/* The largest divisor of height that is at most limit. */
static uint32_t frame_rows(uint32_t height, uint32_t limit) {
    uint32_t rows = limit;
    while (height % rows != 0)
        rows--;
    return rows;
}

static lmc_image_shape shape_from(const uint8_t *b, coding *how) {
    lmc_image_shape shape;
    memset(&shape, 0, sizeof shape);
    *how = CODED_IMAGE;
    shape.width = b[0] % 64u + 1;
    shape.height = b[1] % 64u + 1;
    shape.planes = (b[2] & 3u) + 1;
    shape.max_value = 255;
    switch (b[3] % 6) {
    case 1:
        shape.max_value = b[4] + 1u;
        break;
    case 2:
        shape.max_value = (uint32_t)b[4] << 8 | b[5];
        if (shape.max_value == 0)
            shape.max_value = 65535;
        break;
    case 3:
        shape.planes = 1;
        shape.palette = 1;
        shape.max_value = b[4] % 255u + 1;
        break;
    case 4:
        shape.planes = 1;
        shape.max_value = b[4] % 2 ? 1023 : 255;
        shape.motion_shift = b[4] & 2 ? 2 : 0;
        shape.frame_height = frame_rows(shape.height, b[5] % shape.height + 1);
        break;
    case 5:
        shape.planes = 1;
        shape.motion_shift = 2;
        shape.frame_height = frame_rows(shape.height, b[5] % shape.height + 1);
        *how = b[4] & 4 ? CODED_GUIDED_VIDEO : CODED_VIDEO;
        video_layout = b[4] & 32   ? LMC_VIDEO_LAYOUT_MIXING
                       : b[4] & 16 ? LMC_VIDEO_LAYOUT_CONTEXTS
                       : b[4] & 8  ? LMC_VIDEO_LAYOUT_ERRORS
                                   : LMC_VIDEO_LAYOUT_TAPS;
        break;
    }
    return shape;
}

/* The fixed luma stack of guided inputs: a gradient with some texture. */
static uint16_t *guide_for(const lmc_image_shape *shape) {
    size_t count = (size_t)shape->width * shape->height;
    uint16_t *guide = malloc(count * sizeof *guide);
    check(guide != NULL);
    for (size_t i = 0; i < count; i++)
        guide[i] = (uint16_t)((i % shape->width * 7 + i / shape->width * 3 + i % 5) % 256);
    return guide;
}

/* A guided stack is the last plane of a clip whose earlier planes are the
 * fixed luma stack (from layout 5 twice: as luma, and as the Cb that
 * guides a Cr), coded as the encoder codes them: the planes are coded
 * together (lmc_video_encode), so their payloads are made for each input. */
#define MAX_CLIP 3

static uint32_t clip_planes(void) {
    return video_layout >= LMC_VIDEO_LAYOUT_MIXING ? 3 : 2;
}

static lmc_status encode_clip(const lmc_image_shape *shape, const uint16_t *guide, const uint16_t *samples,
                              lmc_buf payloads[MAX_CLIP], lmc_message *message) {
    uint32_t count = clip_planes();
    lmc_image_shape shapes[MAX_CLIP] = {*shape, *shape, *shape};
    const uint16_t *planes[MAX_CLIP] = {guide, guide, guide};
    planes[count - 1] = samples;
    for (uint32_t p = 0; p < MAX_CLIP; p++)
        lmc_buf_init(&payloads[p]);
    return lmc_video_encode(model, video_layout, count, shapes, planes, pool, payloads, message);
}

static void free_clip(lmc_buf payloads[MAX_CLIP]) {
    for (uint32_t p = 0; p < MAX_CLIP; p++)
        lmc_buf_free(&payloads[p]);
}

static lmc_status decode(coding how, const lmc_image_shape *shape, const uint16_t *guide, const uint8_t *payload,
                         size_t size, uint16_t *samples, lmc_message *message) {
    if (how == CODED_IMAGE)
        return lmc_image_decode(model, shape, payload, size, pool, samples, message);
    if (!guide)
        return lmc_video_decode(model, video_layout, 1, shape, &payload, &size, pool, &samples, message);
    uint32_t count = clip_planes(), last = count - 1;
    lmc_buf guides[MAX_CLIP];
    check(encode_clip(shape, guide, guide, guides, message) == LMC_OK);
    size_t area = (size_t)shape->width * shape->height;
    uint16_t *decoded_guides = malloc(2 * area * sizeof *decoded_guides);
    check(decoded_guides != NULL);
    lmc_image_shape shapes[MAX_CLIP] = {*shape, *shape, *shape};
    const uint8_t *payloads[MAX_CLIP] = {guides[0].data, guides[1].data, guides[2].data};
    size_t sizes[MAX_CLIP] = {guides[0].size, guides[1].size, guides[2].size};
    uint16_t *planes[MAX_CLIP] = {decoded_guides, decoded_guides + area, NULL};
    payloads[last] = payload;
    sizes[last] = size;
    planes[last] = samples;
    lmc_status status = lmc_video_decode(model, video_layout, count, shapes, payloads, sizes, pool, planes, message);
    for (uint32_t p = 0; p < last && status == LMC_OK; p++)
        check(memcmp(planes[p], guide, area * sizeof *guide) == 0);
    free(decoded_guides);
    free_clip(guides);
    return status;
}

static lmc_status encode(coding how, const lmc_image_shape *shape, const uint16_t *guide, const uint16_t *samples,
                         lmc_buf *payload, lmc_message *message) {
    if (how == CODED_IMAGE)
        return lmc_image_encode(model, shape, samples, pool, payload, message);
    if (!guide)
        return lmc_video_encode(model, video_layout, 1, shape, &samples, pool, payload, message);
    lmc_buf payloads[MAX_CLIP];
    lmc_status status = encode_clip(shape, guide, samples, payloads, message);
    if (status == LMC_OK) {
        const lmc_buf *last = &payloads[clip_planes() - 1];
        check(lmc_buf_append(payload, last->data, last->size) == LMC_OK);
    }
    free_clip(payloads);
    return status;
}

/* Encodes a decoded image and decodes it again: the same samples, unless
 * the encoder refuses the image as a whole. */
static void check_round_trip(coding how, const lmc_image_shape *shape, const uint16_t *guide,
                             const uint16_t *samples, size_t count) {
    lmc_buf payload;
    lmc_buf_init(&payload);
    lmc_message message;
    lmc_status status = encode(how, shape, guide, samples, &payload, &message);
    check(status == LMC_OK || status == LMC_ERR_UNSUPPORTED);
    if (status == LMC_OK) {
        uint16_t *again = malloc(count * sizeof *again);
        check(again != NULL);
        check(decode(how, shape, guide, payload.data, payload.size, again, &message) == LMC_OK);
        check(memcmp(again, samples, count * sizeof *again) == 0);
        free(again);
    }
    lmc_buf_free(&payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < FUZZ_SHAPE_BYTES)
        return 0;
    coding how;
    lmc_image_shape shape = shape_from(data, &how);
    size_t count = (size_t)shape.width * shape.height * shape.planes;
    uint16_t *guide = how == CODED_GUIDED_VIDEO ? guide_for(&shape) : NULL;
    uint16_t *samples = malloc(count * sizeof *samples);
    check(samples != NULL);
    /* The payload in a buffer of its own size, so over-reads are seen. */
    size_t payload_size = size - FUZZ_SHAPE_BYTES;
    uint8_t *payload = malloc(payload_size ? payload_size : 1);
    check(payload != NULL);
    memcpy(payload, data + FUZZ_SHAPE_BYTES, payload_size);
    lmc_message message;
    message.text[0] = '\0';
    lmc_status status = decode(how, &shape, guide, payload, payload_size, samples, &message);
    if (status == LMC_OK) {
        for (size_t i = 0; i < count; i++)
            check(samples[i] <= shape.max_value);
        if (data[2] & 4)
            check_round_trip(how, &shape, guide, samples, count);
    } else {
        /* UNSUPPORTED: a payload may describe an inner shape the coder does
         * not take (a palette of one colour). */
        check(message.text[0] != '\0');
        check(status == LMC_ERR_CORRUPT || status == LMC_ERR_TRUNCATED || status == LMC_ERR_UNSUPPORTED);
    }
    free(payload);
    free(samples);
    free(guide);
    return 0;
}
