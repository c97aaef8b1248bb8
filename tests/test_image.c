/*
 * The image coder (src/model/image.c, lmc_image_encode / lmc_image_decode)
 * under minimal LMC_FAMILY_IMAGE models written to temporary GGUF files:
 * round trips of synthetic images of every shape the readers produce and of
 * video plane stacks, the same payload for any thread count, damaged
 * payloads (every truncation, byte flips) that give an error or a valid
 * image and never write past the caller's buffer, and refusals (samples
 * above the maximum, shapes out of range, models of another family or with
 * malformed prior tensors).
 *
 * The coder's constants are still being tuned, so nothing here depends on
 * payload sizes or bytes; only the payload's documented first fields (the
 * transform byte, then the stripe rows) are read, to check that the palette
 * transform and the stripes are really exercised.
 *
 * Every stripe the coder opens allocates and clears its context maps (tens
 * of MiB), so the damage tests use small payloads to stay fast.
 * An optional argument runs only the tests matching it: test_image test_video*
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "test_util.h"

/* The payload's first byte (image.c): how the samples were transformed. */
enum { TRANSFORM_NONE = 0, TRANSFORM_PALETTE = 1 };

/* Extra samples after a decode buffer, filled with a pattern the decoder
 * must leave alone. */
#define GUARD_SAMPLES 64
#define GUARD_VALUE 0xA5C3u

typedef struct {
    char dir[64];
    char image_path[128], audio_path[128], prior_path[128], bad_prior_path[128];
    lmc_model *model;
    lmc_pool *pool1, *pool3;
} fixture;

static fixture fx;

/* ---- Setup: the models and the pools ---- */

/* A media model file: the metadata lmc_model_load needs, and optionally
 * the image coder's two prior tensors (int32, of the given shapes). */
typedef struct {
    const char *architecture, *name, *kind;
    int with_prior;
    uint64_t mixer_ne[2], final_ne[2];
} model_spec;

static lmc_status add_prior_tensor(lmc_gguf_writer *w, int which, const uint64_t ne[2], int32_t value) {
    size_t count = (size_t)(ne[0] * ne[1]);
    int32_t *data = malloc(count * sizeof *data);
    if (!data)
        return LMC_ERR_NOMEM;
    for (size_t i = 0; i < count; i++)
        data[i] = value;
    lmc_status s = lmc_gguf_writer_add_tensor(w, lmc_image_prior_name(which), LMC_GGML_I32, 2, ne, data,
                                              count * sizeof *data);
    free(data);
    return s;
}

static lmc_status write_model(const char *path, const model_spec *spec) {
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    if (!w)
        return LMC_ERR_NOMEM;
    lmc_status s = lmc_gguf_writer_set_str(w, "general.architecture", spec->architecture);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_str(w, "general.name", spec->name);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_str(w, "lmc.default_kind", spec->kind);
    /* Weights unlike the coder's defaults (1/4 per input, 1/3 per mixer). */
    if (s == LMC_OK && spec->with_prior)
        s = add_prior_tensor(w, 0, spec->mixer_ne, 1 << 13);
    if (s == LMC_OK && spec->with_prior)
        s = add_prior_tensor(w, 1, spec->final_ne, 1 << 15);
    if (s == LMC_OK)
        s = lmc_gguf_writer_write(w, path);
    lmc_gguf_writer_free(w);
    return s;
}

static int setup(void **state) {
    (void)state;
    memset(&fx, 0, sizeof fx);
    strcpy(fx.dir, "/tmp/lmc_test_image_XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.image_path, sizeof fx.image_path, "%s/image.gguf", fx.dir);
    snprintf(fx.audio_path, sizeof fx.audio_path, "%s/audio.gguf", fx.dir);
    snprintf(fx.prior_path, sizeof fx.prior_path, "%s/prior.gguf", fx.dir);
    snprintf(fx.bad_prior_path, sizeof fx.bad_prior_path, "%s/bad_prior.gguf", fx.dir);
    model_spec image = {"lmc-image", "test-image", "image", 0, {0, 0}, {0, 0}};
    model_spec audio = {"lmc-audio", "test-audio", "audio", 0, {0, 0}, {0, 0}};
    model_spec prior = {"lmc-image", "test-prior", "image", 1, {0, 0}, {0, 0}};
    lmc_image_prior_shape(0, prior.mixer_ne);
    lmc_image_prior_shape(1, prior.final_ne);
    model_spec bad_prior = prior;
    bad_prior.name = "test-bad-prior";
    bad_prior.mixer_ne[0] += 1; /* one input too many: another coder's tensor */
    if (write_model(fx.image_path, &image) != LMC_OK || write_model(fx.audio_path, &audio) != LMC_OK ||
        write_model(fx.prior_path, &prior) != LMC_OK || write_model(fx.bad_prior_path, &bad_prior) != LMC_OK)
        return -1;
    lmc_message message;
    if (lmc_model_load(fx.image_path, 0, &fx.model, &message) != LMC_OK) {
        fprintf(stderr, "loading the image model: %s\n", message.text);
        return -1;
    }
    fx.pool1 = lmc_pool_create(1);
    fx.pool3 = lmc_pool_create(3);
    return fx.pool1 && fx.pool3 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    lmc_model_free(fx.model);
    lmc_pool_free(fx.pool1);
    lmc_pool_free(fx.pool3);
    remove(fx.image_path);
    remove(fx.audio_path);
    remove(fx.prior_path);
    remove(fx.bad_prior_path);
    rmdir(fx.dir);
    return 0;
}

/* ---- Images ---- */

/* A still image of planes of intensities (palette indices and video stacks
 * set their fields after). */
static lmc_image_shape shape_of(uint32_t width, uint32_t height, uint32_t planes, uint32_t max_value) {
    lmc_image_shape shape;
    memset(&shape, 0, sizeof shape);
    shape.width = width;
    shape.height = height;
    shape.planes = planes;
    shape.max_value = max_value;
    return shape;
}

static size_t sample_count(const lmc_image_shape *shape) {
    return (size_t)shape->width * shape->height * shape->planes;
}

static uint16_t *new_samples(const lmc_image_shape *shape) {
    uint16_t *samples = malloc(sample_count(shape) * sizeof *samples);
    assert_non_null(samples);
    return samples;
}

static uint16_t *sample_at(const lmc_image_shape *shape, uint16_t *samples, uint32_t plane, uint32_t x, uint32_t y) {
    return &samples[((size_t)plane * shape->height + y) * shape->width + x];
}

/* Smooth ramps, a different direction per plane, scaled to max_value. */
static uint16_t *make_gradient(const lmc_image_shape *shape) {
    uint16_t *samples = new_samples(shape);
    uint32_t span = shape->width + shape->height;
    for (uint32_t p = 0; p < shape->planes; p++)
        for (uint32_t y = 0; y < shape->height; y++)
            for (uint32_t x = 0; x < shape->width; x++) {
                uint32_t along = p % 2 ? shape->width - 1 - x + y : x + y;
                *sample_at(shape, samples, p, x, y) = (uint16_t)((uint64_t)along * shape->max_value / span);
            }
    return samples;
}

/* Uniform noise over [0, max_value]. */
static uint16_t *make_noise(const lmc_image_shape *shape, uint64_t seed) {
    uint16_t *samples = new_samples(shape);
    uint64_t rng = seed | 1;
    for (size_t i = 0; i < sample_count(shape); i++)
        samples[i] = (uint16_t)(test_rng(&rng) % ((uint64_t)shape->max_value + 1));
    return samples;
}

/* A pattern with edges in `colours` distinct 8-bit colours (distinct in
 * plane 0 alone, so also for any number of planes). */
static uint16_t *make_few_colours(const lmc_image_shape *shape, uint32_t colours) {
    uint16_t *samples = new_samples(shape);
    for (uint32_t y = 0; y < shape->height; y++)
        for (uint32_t x = 0; x < shape->width; x++) {
            uint32_t colour = ((x / 3) * 7 + (y / 2) * 13 + x * y) % colours;
            for (uint32_t p = 0; p < shape->planes; p++)
                *sample_at(shape, samples, p, x, y) = (uint16_t)(p == 0 ? colour : (colour * 37 * p + 11 * p) % 256);
        }
    return samples;
}

/* ---- Coding ---- */

static void encode_with(const lmc_model *model, const lmc_image_shape *shape, const uint16_t *samples,
                        lmc_pool *pool, lmc_buf *payload) {
    lmc_message message = {{0}};
    lmc_buf_init(payload);
    lmc_status s = lmc_image_encode(model, shape, samples, pool, payload, &message);
    if (s != LMC_OK)
        print_message("encode: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    assert_true(payload->size > 0);
}

static void encode_ok(const lmc_image_shape *shape, const uint16_t *samples, lmc_pool *pool, lmc_buf *payload) {
    encode_with(fx.model, shape, samples, pool, payload);
}

/* A decode buffer of the image's size followed by guard samples. */
static uint16_t *new_guarded(const lmc_image_shape *shape) {
    size_t count = sample_count(shape);
    uint16_t *buffer = malloc((count + GUARD_SAMPLES) * sizeof *buffer);
    assert_non_null(buffer);
    for (size_t i = 0; i < count + GUARD_SAMPLES; i++)
        buffer[i] = GUARD_VALUE;
    return buffer;
}

static void assert_guard_intact(const lmc_image_shape *shape, const uint16_t *buffer) {
    size_t count = sample_count(shape);
    for (size_t i = 0; i < GUARD_SAMPLES; i++)
        assert_int_equal(buffer[count + i], GUARD_VALUE);
}

/* Decodes a payload copied to a buffer of exactly its size (so ASan sees
 * any over-read) into a guarded buffer; returns the status and the buffer. */
static lmc_status decode_guarded_with(const lmc_model *model, const lmc_image_shape *shape, const uint8_t *payload,
                                      size_t size, lmc_pool *pool, uint16_t **decoded, lmc_message *message) {
    uint8_t *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    memcpy(copy, payload, size);
    *decoded = new_guarded(shape);
    lmc_status s = lmc_image_decode(model, shape, copy, size, pool, *decoded, message);
    free(copy);
    assert_guard_intact(shape, *decoded);
    return s;
}

static lmc_status decode_guarded(const lmc_image_shape *shape, const uint8_t *payload, size_t size, lmc_pool *pool,
                                 uint16_t **decoded, lmc_message *message) {
    return decode_guarded_with(fx.model, shape, payload, size, pool, decoded, message);
}

static void assert_decodes_to(const lmc_model *model, const lmc_image_shape *shape, const lmc_buf *payload,
                              lmc_pool *pool, const uint16_t *samples) {
    uint16_t *decoded;
    lmc_message message = {{0}};
    lmc_status s = decode_guarded_with(model, shape, payload->data, payload->size, pool, &decoded, &message);
    if (s != LMC_OK)
        print_message("decode: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    assert_memory_equal(decoded, samples, sample_count(shape) * sizeof *samples);
    free(decoded);
}

/* Encodes, decodes and compares; returns the payload's transform byte. */
static int check_roundtrip(const lmc_image_shape *shape, const uint16_t *samples) {
    lmc_buf payload;
    encode_ok(shape, samples, fx.pool1, &payload);
    assert_decodes_to(fx.model, shape, &payload, fx.pool1, samples);
    int transform = payload.data[0];
    lmc_buf_free(&payload);
    return transform;
}

static void check_roundtrip_and_free(const lmc_image_shape *shape, uint16_t *samples) {
    check_roundtrip(shape, samples);
    free(samples);
}

/* ---- Round trips ---- */

static void test_gradient_rgb(void **state) {
    (void)state;
    lmc_image_shape shape = shape_of(37, 23, 3, 255);
    check_roundtrip_and_free(&shape, make_gradient(&shape));
}

static void test_noise_gray(void **state) {
    (void)state;
    lmc_image_shape shape = shape_of(64, 40, 1, 255);
    check_roundtrip_and_free(&shape, make_noise(&shape, 1));
}

/* 16-bit planes are coded as two channels each (high byte, low byte). */
static void test_sixteen_bit(void **state) {
    (void)state;
    lmc_image_shape rgb = shape_of(21, 17, 3, 65535);
    uint16_t *samples = make_gradient(&rgb);
    *sample_at(&rgb, samples, 0, 0, 0) = 65535; /* the extremes */
    *sample_at(&rgb, samples, 2, 20, 16) = 0;
    *sample_at(&rgb, samples, 1, 10, 8) = 0x8001;
    check_roundtrip_and_free(&rgb, samples);

    lmc_image_shape rgb_noise = shape_of(16, 9, 3, 65535);
    check_roundtrip_and_free(&rgb_noise, make_noise(&rgb_noise, 2));

    lmc_image_shape gray = shape_of(30, 20, 1, 1000);
    samples = make_noise(&gray, 3);
    samples[0] = 1000;
    samples[1] = 0;
    check_roundtrip_and_free(&gray, samples);
    check_roundtrip_and_free(&gray, make_gradient(&gray));
}

static void test_rgba_and_gray_alpha(void **state) {
    (void)state;
    lmc_image_shape rgba = shape_of(25, 19, 4, 255);
    uint16_t *samples = make_gradient(&rgba);
    for (uint32_t y = 0; y < rgba.height; y++) /* alpha: opaque with a transparent hole */
        for (uint32_t x = 0; x < rgba.width; x++)
            *sample_at(&rgba, samples, 3, x, y) = x > 8 && x < 16 && y > 5 && y < 12 ? 0 : 255;
    check_roundtrip_and_free(&rgba, samples);

    lmc_image_shape rgba16 = shape_of(9, 7, 4, 65535); /* 8 channels: the most the coder takes */
    check_roundtrip_and_free(&rgba16, make_noise(&rgba16, 4));

    lmc_image_shape gray_alpha = shape_of(20, 11, 2, 255);
    check_roundtrip_and_free(&gray_alpha, make_noise(&gray_alpha, 5));
}

/* An image of 2 to 256 colours in 2 to 4 planes is coded as indices into
 * its colours; one of 257 is not. */
static void test_palette_transform(void **state) {
    (void)state;
    static const uint32_t colours[] = {2, 17, 200, 256};
    for (size_t i = 0; i < sizeof colours / sizeof colours[0]; i++) {
        lmc_image_shape shape = shape_of(40, 30, 3, 255);
        uint16_t *samples = make_few_colours(&shape, colours[i]);
        assert_int_equal(check_roundtrip(&shape, samples), TRANSFORM_PALETTE);
        free(samples);
    }
    for (uint32_t planes = 2; planes <= 4; planes += 2) {
        lmc_image_shape shape = shape_of(31, 10, planes, 255);
        uint16_t *samples = make_few_colours(&shape, 50);
        assert_int_equal(check_roundtrip(&shape, samples), TRANSFORM_PALETTE);
        free(samples);
    }

    /* 257 colours: the first 257 pixels in distinct colours. */
    lmc_image_shape many = shape_of(32, 16, 3, 255);
    uint16_t *samples = new_samples(&many);
    size_t area = (size_t)many.width * many.height;
    for (size_t i = 0; i < area; i++) {
        uint32_t colour = (uint32_t)LMC_MIN(i, 256u);
        samples[i] = (uint16_t)(colour & 255);
        samples[area + i] = (uint16_t)(colour >> 8);
        samples[2 * area + i] = 7;
    }
    assert_int_equal(check_roundtrip(&many, samples), TRANSFORM_NONE);
    free(samples);
}

/* A true palette image (PNG colour type 3): one plane of indices. */
static void test_palette_indices(void **state) {
    (void)state;
    lmc_image_shape shape = shape_of(33, 21, 1, 5);
    shape.palette = 1;
    uint16_t *samples = make_few_colours(&shape, 6);
    samples[0] = 5;
    check_roundtrip_and_free(&shape, samples);
}

static void test_one_bit(void **state) {
    (void)state;
    lmc_image_shape shape = shape_of(45, 13, 1, 1);
    check_roundtrip_and_free(&shape, make_noise(&shape, 6));
    check_roundtrip_and_free(&shape, make_gradient(&shape));
}

/* Single pixels, rows and columns of several layouts (multi-plane single
 * pixels are one colour: test_single_colour). */
static void test_thin_shapes(void **state) {
    (void)state;
    static const uint32_t layouts[][3] = {{1, 255, 0}, {3, 255, 0}, {4, 65535, 0}, {1, 3, 1}};
    static const uint32_t sizes[][2] = {{1, 1}, {1, 97}, {97, 1}, {2, 1}, {1, 2}};
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            lmc_image_shape shape = shape_of(sizes[i][0], sizes[i][1], layouts[l][0], layouts[l][1]);
            shape.palette = (int)layouts[l][2];
            if (sample_count(&shape) == shape.planes && shape.planes > 1)
                continue;
            check_roundtrip_and_free(&shape, make_noise(&shape, 7 + l * 10 + i));
        }
}

/* A single colour: for several planes, the palette transform's one-entry
 * case. */
static void test_single_colour(void **state) {
    (void)state;
    static const uint32_t sizes[][3] = {{12, 7, 1}, {12, 7, 2}, {12, 7, 3}, {12, 7, 4}, {1, 1, 3}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        lmc_image_shape shape = shape_of(sizes[i][0], sizes[i][1], sizes[i][2], 255);
        uint16_t *samples = new_samples(&shape);
        size_t area = (size_t)shape.width * shape.height;
        for (size_t k = 0; k < sample_count(&shape); k++)
            samples[k] = (uint16_t)(40 + k / area);
        print_message("%u x %u, %u plane(s), one colour\n", shape.width, shape.height, shape.planes);
        check_roundtrip_and_free(&shape, samples);
    }
}

/* Shapes take up to 8 channels: 5 to 8 planes of 8 bits must round trip
 * (or be refused when encoding), with many colours and with few. */
static void test_five_to_eight_planes(void **state) {
    (void)state;
    for (uint32_t planes = 5; planes <= 8; planes++) {
        lmc_image_shape shape = shape_of(24, 12, planes, 255);
        uint16_t *images[2] = {make_noise(&shape, planes), make_few_colours(&shape, 3)};
        for (int k = 0; k < 2; k++) {
            lmc_buf payload;
            lmc_buf_init(&payload);
            lmc_message message = {{0}};
            lmc_status s = lmc_image_encode(fx.model, &shape, images[k], fx.pool1, &payload, &message);
            print_message("%u planes, %s: encode status %d\n", planes, k ? "3 colours" : "noise", (int)s);
            if (s == LMC_OK)
                assert_decodes_to(fx.model, &shape, &payload, fx.pool1, images[k]);
            else
                assert_int_equal(s, LMC_ERR_UNSUPPORTED);
            lmc_buf_free(&payload);
            free(images[k]);
        }
    }
}

/* ---- Video plane stacks ---- */

/* Frames of frame_height rows, stacked: a textured square moving by
 * (dx, dy) per frame over a still background. */
static uint16_t *make_moving(const lmc_image_shape *shape, int dx, int dy) {
    uint16_t *samples = new_samples(shape);
    uint32_t fh = shape->frame_height;
    for (uint32_t y = 0; y < shape->height; y++)
        for (uint32_t x = 0; x < shape->width; x++) {
            int f = (int)(y / fh), fy = (int)(y % fh);
            int sx = (int)x - 4 - f * dx, sy = fy - 3 - f * dy;
            uint32_t v = sx >= 0 && sx < 12 && sy >= 0 && sy < 10 ? 40 + (uint32_t)(sx * 17 ^ sy * 29) % 160
                                                                  : (x * 3 + (uint32_t)fy * 2) % 64;
            samples[(size_t)y * shape->width + x] = (uint16_t)((uint64_t)v * shape->max_value / 255);
        }
    return samples;
}

/* Both vector precisions: whole pixels (archives before 2026-11-28) and
 * quarter pixels. */
static const uint32_t motion_shifts[] = {0, 2};

static void test_video_stacks(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof motion_shifts / sizeof *motion_shifts; i++) {
        lmc_image_shape video = shape_of(40, 24 * 4, 1, 255);
        video.frame_height = 24;
        video.motion_shift = motion_shifts[i];
        check_roundtrip_and_free(&video, make_moving(&video, 3, -2));
        check_roundtrip_and_free(&video, make_noise(&video, 31));

        lmc_image_shape one_frame = shape_of(5, 4, 1, 255);
        one_frame.frame_height = 4;
        one_frame.motion_shift = motion_shifts[i];
        check_roundtrip_and_free(&one_frame, make_noise(&one_frame, 32));

        lmc_image_shape one_row_frames = shape_of(6, 5, 1, 255);
        one_row_frames.frame_height = 1;
        one_row_frames.motion_shift = motion_shifts[i];
        check_roundtrip_and_free(&one_row_frames, make_noise(&one_row_frames, 33));
    }
}

/* Video of more than 8 bits (Y4M C420p10, 16-bit): two channels per
 * plane, so the second channel sees the first and the previous frame. */
static void test_video_deep(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof motion_shifts / sizeof *motion_shifts; i++) {
        lmc_image_shape deep = shape_of(17, 9 * 3, 1, 1023); /* blocks cut by the edges */
        deep.frame_height = 9;
        deep.motion_shift = motion_shifts[i];
        check_roundtrip_and_free(&deep, make_moving(&deep, -1, 1));
        lmc_image_shape full = shape_of(8, 4 * 2, 1, 65535);
        full.frame_height = 4;
        full.motion_shift = motion_shifts[i];
        check_roundtrip_and_free(&full, make_noise(&full, 34));
    }
}

/* A smooth pattern sliding by a quarter pixel per frame: quarter-pixel
 * vectors point exactly where whole ones cannot, and must code it in
 * fewer bytes. */
static uint16_t *make_sliding(const lmc_image_shape *shape) {
    uint16_t *samples = new_samples(shape);
    uint32_t fh = shape->frame_height;
    for (uint32_t y = 0; y < shape->height; y++)
        for (uint32_t x = 0; x < shape->width; x++) {
            double u = (double)x + 0.25 * (double)(y / fh), v = (double)(y % fh);
            double value = 128 + 60 * sin(u * 0.7) * cos(v * 0.45) + 30 * sin(u * 0.23 + v * 0.31);
            samples[(size_t)y * shape->width + x] = (uint16_t)lround(value);
        }
    return samples;
}

static void test_video_quarter_pel(void **state) {
    (void)state;
    size_t sizes[2];
    for (size_t i = 0; i < 2; i++) {
        lmc_image_shape video = shape_of(64, 32 * 6, 1, 255);
        video.frame_height = 32;
        video.motion_shift = motion_shifts[i];
        uint16_t *samples = make_sliding(&video);
        lmc_buf payload;
        lmc_buf_init(&payload);
        encode_ok(&video, samples, fx.pool1, &payload);
        sizes[i] = payload.size;
        check_roundtrip(&video, samples);
        lmc_buf_free(&payload);
        free(samples);
    }
    print_message("sliding video: whole-pixel vectors %zu bytes, quarter-pixel %zu\n", sizes[0], sizes[1]);
    assert_true(sizes[1] < sizes[0]);
}

/* ---- Threads and stripes ---- */

/* Rows per stripe, from a still image's payload header (after the
 * transform byte). */
static uint64_t stripe_rows_of(const lmc_buf *payload) {
    size_t pos = 1;
    uint64_t rows = 0;
    assert_int_equal(lmc_varint_get(payload->data, payload->size, &pos, &rows), LMC_OK);
    return rows;
}

static void test_threads_same_payload(void **state) {
    (void)state;
    /* Stripes hold about 2^18 pixels: 8 x 65540 makes three. */
    lmc_image_shape shape = shape_of(8, 65540, 1, 255);
    uint16_t *samples = new_samples(&shape);
    uint64_t rng = 99;
    for (uint32_t y = 0; y < shape.height; y++)
        for (uint32_t x = 0; x < shape.width; x++)
            *sample_at(&shape, samples, 0, x, y) = (uint16_t)((x * 9 + y / 3 + (test_rng(&rng) >> 62)) & 255);
    lmc_buf one, three;
    encode_ok(&shape, samples, fx.pool1, &one);
    encode_ok(&shape, samples, fx.pool3, &three);
    assert_int_equal(one.data[0], TRANSFORM_NONE);
    uint64_t rows = stripe_rows_of(&one);
    assert_true(rows > 0 && rows * 2 < shape.height); /* at least three stripes */
    assert_int_equal(one.size, three.size);
    assert_memory_equal(one.data, three.data, one.size);
    assert_decodes_to(fx.model, &shape, &one, fx.pool3, samples);
    lmc_buf_free(&one);
    lmc_buf_free(&three);
    free(samples);
}

/* ---- Damaged payloads ---- */

/* A damaged payload must give an error with a message, or an image whose
 * samples are all legal; decode_guarded checks the buffer's end. */
static void check_damaged(const lmc_image_shape *shape, const uint8_t *payload, size_t size, lmc_pool *pool) {
    uint16_t *decoded;
    lmc_message message = {{0}};
    lmc_status s = decode_guarded(shape, payload, size, pool, &decoded, &message);
    if (s == LMC_OK) {
        for (size_t i = 0; i < sample_count(shape); i++)
            assert_true(decoded[i] <= shape->max_value);
    } else {
        assert_true(message.text[0] != '\0');
        assert_true(s == LMC_ERR_CORRUPT || s == LMC_ERR_TRUNCATED);
    }
    free(decoded);
}

static void check_truncations(const lmc_image_shape *shape, const uint16_t *samples) {
    lmc_buf payload;
    encode_ok(shape, samples, fx.pool1, &payload);
    print_message("%u x %u x %u: %zu truncations\n", shape->width, shape->height, shape->planes, payload.size);
    for (size_t n = 0; n < payload.size; n++)
        check_damaged(shape, payload.data, n, fx.pool1);
    lmc_buf_free(&payload);
}

static void test_truncations(void **state) {
    (void)state;
    lmc_image_shape gray = shape_of(5, 4, 1, 255);
    uint16_t *samples = make_noise(&gray, 11);
    check_truncations(&gray, samples);
    free(samples);

    lmc_image_shape palette = shape_of(4, 3, 3, 255); /* palette transform: its table is cut too */
    samples = make_few_colours(&palette, 5);
    check_truncations(&palette, samples);
    free(samples);

    lmc_image_shape wide = shape_of(3, 2, 2, 4095);
    samples = make_noise(&wide, 12);
    check_truncations(&wide, samples);
    free(samples);

    lmc_image_shape video = shape_of(4, 3 * 2, 1, 255); /* motion vectors, then the frames */
    video.frame_height = 3;
    samples = make_noise(&video, 14);
    check_truncations(&video, samples);
    free(samples);
}

/* Flips of each byte (one of four masks, in turn) and of the first bytes
 * by every mask. */
static void check_flips(const lmc_image_shape *shape, const uint16_t *samples, lmc_pool *pool) {
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    lmc_buf payload;
    encode_ok(shape, samples, fx.pool1, &payload);
    print_message("%u x %u x %u: flips of %zu bytes\n", shape->width, shape->height, shape->planes, payload.size);
    for (size_t i = 0; i < payload.size; i++)
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
            if (i >= 3 && m != i % 4)
                continue;
            payload.data[i] ^= masks[m];
            check_damaged(shape, payload.data, payload.size, pool);
            payload.data[i] ^= masks[m];
        }
    lmc_buf_free(&payload);
}

static void test_byte_flips(void **state) {
    (void)state;
    lmc_image_shape gray = shape_of(6, 5, 1, 255);
    uint16_t *samples = make_gradient(&gray);
    check_flips(&gray, samples, fx.pool1);
    free(samples);

    lmc_image_shape palette = shape_of(5, 4, 3, 255);
    samples = make_few_colours(&palette, 4);
    check_flips(&palette, samples, fx.pool1);
    free(samples);

    lmc_image_shape video = shape_of(4, 2 * 2, 1, 255);
    video.frame_height = 2;
    samples = make_noise(&video, 15);
    check_flips(&video, samples, fx.pool1);
    free(samples);

    /* The stripe table: a payload read as 1 or 2 rows per stripe, so that
     * stripe sizes come from the coded bytes. */
    lmc_image_shape three_rows = shape_of(6, 3, 1, 255);
    samples = make_noise(&three_rows, 13);
    lmc_buf payload;
    encode_ok(&three_rows, samples, fx.pool1, &payload);
    assert_int_equal(stripe_rows_of(&payload), 3);
    for (uint8_t rows = 1; rows < 3; rows++) {
        payload.data[1] = rows;
        check_damaged(&three_rows, payload.data, payload.size, fx.pool3);
    }
    lmc_buf_free(&payload);
    free(samples);
}

/* Handmade payloads: empty, unknown transform, zero or too many stripe
 * rows, a palette larger than the payload or with colours cut short. */
static void test_malformed_headers(void **state) {
    (void)state;
    lmc_image_shape shape = shape_of(4, 4, 3, 255);
    static const struct {
        uint8_t bytes[8];
        size_t size;
    } cases[] = {
        {{0}, 0},             /* empty */
        {{2, 1}, 2},          /* unknown transform */
        {{0xff, 1}, 2},
        {{0, 0}, 2},          /* zero stripe rows */
        {{0, 5}, 2},          /* more rows than the image */
        {{0, 0x80}, 2},       /* truncated varint */
        {{1}, 1},             /* palette without its size */
        {{1, 0}, 2},          /* empty palette */
        {{1, 0x81, 0x02}, 3}, /* 257 colours */
        {{1, 2, 1, 2, 3}, 5}, /* a colour cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t *decoded;
        lmc_message message = {{0}};
        lmc_status s = decode_guarded(&shape, cases[i].bytes, cases[i].size, fx.pool1, &decoded, &message);
        print_message("case %zu: %s\n", i, message.text);
        assert_int_equal(s, LMC_ERR_CORRUPT);
        free(decoded);
    }
}

/* ---- Refusals ---- */

/* A payload whose samples exceed the maximum the decoder is given. */
static void check_refused_above(const lmc_image_shape *coded, const uint16_t *samples,
                                const lmc_image_shape *decoded_shape) {
    lmc_buf payload;
    encode_ok(coded, samples, fx.pool1, &payload);
    uint16_t *decoded;
    lmc_message message = {{0}};
    assert_int_equal(decode_guarded(decoded_shape, payload.data, payload.size, fx.pool1, &decoded, &message),
                     LMC_ERR_CORRUPT);
    print_message("%s\n", message.text);
    free(decoded);
    lmc_buf_free(&payload);
}

static void test_sample_above_maximum(void **state) {
    (void)state;
    lmc_image_shape gray = shape_of(8, 8, 1, 255), gray_low = shape_of(8, 8, 1, 100);
    uint16_t *samples = make_noise(&gray_low, 21);
    samples[37] = 101;
    check_refused_above(&gray, samples, &gray_low);
    free(samples);

    lmc_image_shape deep = shape_of(8, 8, 1, 65535), deep_low = shape_of(8, 8, 1, 1000);
    samples = make_noise(&deep_low, 22);
    samples[63] = 40000;
    check_refused_above(&deep, samples, &deep_low);
    free(samples);

    /* Palette transform: a colour above the maximum. */
    lmc_image_shape rgb = shape_of(8, 8, 3, 255), rgb_low = shape_of(8, 8, 3, 100);
    samples = make_few_colours(&rgb, 3);
    for (size_t i = 0; i < sample_count(&rgb); i++)
        samples[i] %= 100;
    samples[9] = 200;
    check_refused_above(&rgb, samples, &rgb_low);
    free(samples);

    /* Palette indices: an index past the last entry. */
    lmc_image_shape indices = shape_of(8, 8, 1, 7), indices_low = shape_of(8, 8, 1, 3);
    indices.palette = indices_low.palette = 1;
    samples = make_noise(&indices_low, 23);
    samples[20] = 7;
    check_refused_above(&indices, samples, &indices_low);
    free(samples);
}

static void test_unsupported_shapes(void **state) {
    (void)state;
    lmc_image_shape shapes[] = {
        shape_of(0, 4, 1, 255), shape_of(4, 0, 1, 255),   shape_of(4, 4, 0, 255),
        shape_of(4, 4, 1, 65536), shape_of(4, 4, 5, 65535), shape_of(4, 4, 9, 255),
        shape_of(4, 4, 1, 255), /* frames of 3 rows in 4 */
        shape_of(4, 4, 3, 255), /* a video stack of 3 planes */
    };
    shapes[6].frame_height = 3;
    shapes[7].frame_height = 2;
    uint16_t samples[4 * 4 * 9] = {0};
    const uint8_t payload[] = {0, 1, 0, 0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        lmc_buf out;
        lmc_buf_init(&out);
        lmc_message message = {{0}};
        assert_int_equal(lmc_image_encode(fx.model, &shapes[i], samples, fx.pool1, &out, &message),
                         LMC_ERR_UNSUPPORTED);
        assert_true(message.text[0] != '\0');
        assert_int_equal(out.size, 0);
        lmc_buf_free(&out);
        assert_int_equal(lmc_image_decode(fx.model, &shapes[i], payload, sizeof payload, fx.pool1, samples, &message),
                         LMC_ERR_UNSUPPORTED);
    }
}

static void test_other_family_refused(void **state) {
    (void)state;
    lmc_model *audio;
    lmc_message message = {{0}};
    assert_int_equal(lmc_model_load(fx.audio_path, 0, &audio, &message), LMC_OK);
    assert_int_equal(audio->family, LMC_FAMILY_AUDIO);
    assert_int_equal(fx.model->family, LMC_FAMILY_IMAGE);

    lmc_image_shape shape = shape_of(5, 4, 3, 255);
    uint16_t *samples = make_gradient(&shape);
    lmc_buf payload, refused;
    encode_ok(&shape, samples, fx.pool1, &payload);
    lmc_buf_init(&refused);
    assert_int_equal(lmc_image_encode(audio, &shape, samples, fx.pool1, &refused, &message), LMC_ERR_MODEL_INVALID);
    assert_non_null(strstr(message.text, "test-audio"));
    uint16_t *decoded;
    message.text[0] = '\0';
    assert_int_equal(decode_guarded_with(audio, &shape, payload.data, payload.size, fx.pool1, &decoded, &message),
                     LMC_ERR_MODEL_INVALID);
    assert_true(message.text[0] != '\0');
    free(decoded);
    lmc_buf_free(&refused);
    lmc_buf_free(&payload);
    free(samples);
    lmc_model_free(audio);
}

/* A model's prior tensors start the mixers: they change the payload, which
 * decodes only under the same model; a tensor of the wrong shape is
 * refused. */
static void test_model_prior(void **state) {
    (void)state;
    lmc_model *prior, *bad;
    lmc_message message = {{0}};
    assert_int_equal(lmc_model_load(fx.prior_path, 0, &prior, &message), LMC_OK);
    assert_int_equal(lmc_model_load(fx.bad_prior_path, 0, &bad, &message), LMC_OK);

    lmc_image_shape shape = shape_of(19, 11, 3, 255);
    uint16_t *samples = make_gradient(&shape);
    lmc_buf plain, with_prior, refused;
    encode_ok(&shape, samples, fx.pool1, &plain);
    encode_with(prior, &shape, samples, fx.pool1, &with_prior);
    assert_true(plain.size != with_prior.size || memcmp(plain.data, with_prior.data, plain.size) != 0);
    assert_decodes_to(prior, &shape, &with_prior, fx.pool1, samples);

    lmc_buf_init(&refused);
    assert_int_equal(lmc_image_encode(bad, &shape, samples, fx.pool1, &refused, &message), LMC_ERR_MODEL_INVALID);
    print_message("%s\n", message.text);
    assert_non_null(strstr(message.text, lmc_image_prior_name(0)));
    uint16_t *decoded;
    assert_int_equal(decode_guarded_with(bad, &shape, plain.data, plain.size, fx.pool1, &decoded, &message),
                     LMC_ERR_MODEL_INVALID);
    free(decoded);
    lmc_buf_free(&refused);
    lmc_buf_free(&plain);
    lmc_buf_free(&with_prior);
    free(samples);
    lmc_model_free(prior);
    lmc_model_free(bad);
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    /* The last three cover cases image.c got wrong when they were written
     * (a one-entry palette, video of more than 8 bits, 5 to 8 planes);
     * under UBSan such a failure aborts the whole run, so they come last. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_rgb),
        cmocka_unit_test(test_noise_gray),
        cmocka_unit_test(test_sixteen_bit),
        cmocka_unit_test(test_rgba_and_gray_alpha),
        cmocka_unit_test(test_palette_transform),
        cmocka_unit_test(test_palette_indices),
        cmocka_unit_test(test_one_bit),
        cmocka_unit_test(test_thin_shapes),
        cmocka_unit_test(test_video_stacks),
        cmocka_unit_test(test_threads_same_payload),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_sample_above_maximum),
        cmocka_unit_test(test_unsupported_shapes),
        cmocka_unit_test(test_other_family_refused),
        cmocka_unit_test(test_model_prior),
        cmocka_unit_test(test_single_colour),
        cmocka_unit_test(test_video_deep),
        cmocka_unit_test(test_video_quarter_pel),
        cmocka_unit_test(test_five_to_eight_planes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
