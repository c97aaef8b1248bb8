/*
 * Video plane stacks of layouts 2 to 5 (src/model/video_codec.h,
 * lmc_video_plane_encode / _decode: 8-tap reference filters, up to three
 * earlier frames, chroma guided by luma; layout 3 also weighs its
 * predictors by wider local errors, layout 4 also gives its least-squares
 * predictor farther neighbours and its own errors' feedback and lets the
 * errors choose mixer weights and APM cells, layout 5 also guides the
 * second chroma stack by the first and gives first frames farther
 * neighbours still) under a minimal
 * LMC_FAMILY_IMAGE model written to a temporary GGUF file: round trips of
 * stacks of every awkward geometry in every layout, chroma stacks with and without a luma
 * guide (and with a guide that does not fit, which is ignored), the second
 * chroma stack with and without the first as its second guide, the same
 * payload for any thread count, 10-bit stacks (which keep the bilinear
 * reference), layouts that differ and unknown layouts refused, and damaged
 * payloads (every truncation, byte flips) that give an error or legal
 * samples and never write past the caller's buffer.
 *
 * Stacks of older archives decode through lmc_image_decode: test_image.c.
 * An optional argument runs only the tests matching it.
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
#include "model/video_codec.h"
#include "test_util.h"

#define GUARD_SAMPLES 64
#define GUARD_VALUE 0xA5C3u

static struct {
    char dir[64], model_path[128];
    lmc_model *model;
    lmc_pool *pool1, *pool3;
    uint32_t layout; /* of the stacks the helpers code */
    /* A second guide the helpers pass after a first (NULL: none). */
    const lmc_image_shape *second_shape;
    const uint16_t *second;
} fx;

static int setup(void **state) {
    (void)state;
    memset(&fx, 0, sizeof fx);
    strcpy(fx.dir, "/tmp/lmc_test_video_XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.model_path, sizeof fx.model_path, "%s/image.gguf", fx.dir);
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    if (!w)
        return -1;
    lmc_status s = lmc_gguf_writer_set_str(w, "general.architecture", "lmc-image");
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_str(w, "general.name", "test-video");
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_str(w, "lmc.default_kind", "video");
    if (s == LMC_OK)
        s = lmc_gguf_writer_write(w, fx.model_path);
    lmc_gguf_writer_free(w);
    lmc_message message;
    if (s != LMC_OK || lmc_model_load(fx.model_path, 0, &fx.model, &message) != LMC_OK)
        return -1;
    fx.pool1 = lmc_pool_create(1);
    fx.pool3 = lmc_pool_create(3);
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    return fx.pool1 && fx.pool3 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    lmc_model_free(fx.model);
    lmc_pool_free(fx.pool1);
    lmc_pool_free(fx.pool3);
    remove(fx.model_path);
    rmdir(fx.dir);
    return 0;
}

/* ---- Stacks ---- */

static lmc_image_shape stack_of(uint32_t width, uint32_t frame_height, uint32_t frames, uint32_t max_value) {
    lmc_image_shape shape;
    memset(&shape, 0, sizeof shape);
    shape.width = width;
    shape.height = frame_height * frames;
    shape.planes = 1;
    shape.max_value = max_value;
    shape.frame_height = frame_height;
    shape.motion_shift = 2;
    return shape;
}

static size_t sample_count(const lmc_image_shape *shape) {
    return (size_t)shape->width * shape->height;
}

static uint16_t *new_samples(const lmc_image_shape *shape) {
    uint16_t *samples = malloc(sample_count(shape) * sizeof *samples);
    assert_non_null(samples);
    return samples;
}

/* A textured square moving by (dx, dy) per frame over a textured
 * background, with a little noise; scaled to max_value. */
static uint16_t *make_moving(const lmc_image_shape *shape, int dx, int dy, uint64_t seed) {
    uint16_t *samples = new_samples(shape);
    uint32_t fh = shape->frame_height;
    uint64_t rng = seed | 1;
    for (uint32_t y = 0; y < shape->height; y++)
        for (uint32_t x = 0; x < shape->width; x++) {
            int f = (int)(y / fh), fy = (int)(y % fh);
            int sx = (int)x - 4 - f * dx, sy = fy - 3 - f * dy;
            uint32_t v = sx >= 0 && sx < 12 && sy >= 0 && sy < 10 ? 40 + (uint32_t)(sx * 17 ^ sy * 29) % 160
                                                                  : (x * 3 + (uint32_t)fy * 2) % 64;
            v += (uint32_t)(test_rng(&rng) % 5);
            samples[(size_t)y * shape->width + x] = (uint16_t)((uint64_t)v * shape->max_value / 255);
        }
    return samples;
}

static uint16_t *make_noise(const lmc_image_shape *shape, uint64_t seed) {
    uint16_t *samples = new_samples(shape);
    uint64_t rng = seed | 1;
    for (size_t i = 0; i < sample_count(shape); i++)
        samples[i] = (uint16_t)(test_rng(&rng) % ((uint64_t)shape->max_value + 1));
    return samples;
}

/* A chroma stack that follows its luma stack (the mean of the luma pixels
 * under each chroma pixel, turned and offset, plus noise). */
static uint16_t *make_chroma(const lmc_image_shape *chroma, const lmc_image_shape *luma, const uint16_t *luma_samples) {
    uint16_t *samples = new_samples(chroma);
    uint32_t sx = luma->width / chroma->width, sy = luma->frame_height / chroma->frame_height;
    uint64_t rng = 77;
    for (uint32_t y = 0; y < chroma->height; y++)
        for (uint32_t x = 0; x < chroma->width; x++) {
            uint32_t frame = y / chroma->frame_height, row = y % chroma->frame_height, sum = 0;
            for (uint32_t j = 0; j < sy; j++)
                for (uint32_t i = 0; i < sx; i++) {
                    uint32_t lx = LMC_MIN(x * sx + i, luma->width - 1);
                    uint32_t ly = frame * luma->frame_height + LMC_MIN(row * sy + j, luma->frame_height - 1);
                    sum += luma_samples[(size_t)ly * luma->width + lx];
                }
            samples[(size_t)y * chroma->width + x] = (uint16_t)(200 - sum / (sx * sy) / 2 + test_rng(&rng) % 3);
        }
    return samples;
}

/* ---- Coding ---- */

/* The helpers' guides: the first, if any, then fx's second. */
static uint32_t guides_of(const lmc_image_shape *guide_shape, const uint16_t *guide, lmc_video_guide guides[2]) {
    guides[0] = (lmc_video_guide){guide_shape, guide};
    guides[1] = (lmc_video_guide){fx.second_shape, fx.second};
    return guide ? (fx.second ? 2 : 1) : 0;
}

static void encode_plane(const lmc_image_shape *shape, const uint16_t *samples, const lmc_image_shape *guide_shape,
                         const uint16_t *guide, lmc_pool *pool, lmc_buf *payload) {
    lmc_message message = {{0}};
    lmc_buf_init(payload);
    lmc_video_guide guides[2];
    uint32_t count = guides_of(guide_shape, guide, guides);
    lmc_status s = lmc_video_plane_encode(fx.model, fx.layout, shape, samples, guides, count, pool, payload, &message);
    if (s != LMC_OK)
        print_message("encode: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    assert_true(payload->size > 0);
}

/* Decodes a copy of exactly the payload's size (so ASan sees any
 * over-read) into a buffer followed by guard samples, which must stay. */
static lmc_status decode_guarded(const lmc_image_shape *shape, const uint8_t *payload, size_t size,
                                 const lmc_image_shape *guide_shape, const uint16_t *guide, lmc_pool *pool,
                                 uint16_t **decoded, lmc_message *message) {
    uint8_t *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    memcpy(copy, payload, size);
    size_t count = sample_count(shape);
    *decoded = malloc((count + GUARD_SAMPLES) * sizeof **decoded);
    assert_non_null(*decoded);
    for (size_t i = 0; i < count + GUARD_SAMPLES; i++)
        (*decoded)[i] = GUARD_VALUE;
    lmc_video_guide guides[2];
    uint32_t guide_count = guides_of(guide_shape, guide, guides);
    lmc_status s =
        lmc_video_plane_decode(fx.model, fx.layout, shape, copy, size, guides, guide_count, pool, *decoded, message);
    free(copy);
    for (size_t i = 0; i < GUARD_SAMPLES; i++)
        assert_int_equal((*decoded)[count + i], GUARD_VALUE);
    return s;
}

/* Encodes, decodes (with pool) and compares; returns the payload size. */
static size_t check_roundtrip(const lmc_image_shape *shape, const uint16_t *samples,
                              const lmc_image_shape *guide_shape, const uint16_t *guide, lmc_pool *pool) {
    lmc_buf payload;
    encode_plane(shape, samples, guide_shape, guide, fx.pool1, &payload);
    uint16_t *decoded;
    lmc_message message = {{0}};
    lmc_status s = decode_guarded(shape, payload.data, payload.size, guide_shape, guide, pool, &decoded, &message);
    if (s != LMC_OK)
        print_message("decode: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    assert_memory_equal(decoded, samples, sample_count(shape) * sizeof *samples);
    free(decoded);
    size_t size = payload.size;
    lmc_buf_free(&payload);
    return size;
}

static void check_roundtrip_and_free(const lmc_image_shape *shape, uint16_t *samples) {
    check_roundtrip(shape, samples, NULL, NULL, fx.pool1);
    free(samples);
}

/* ---- Round trips ---- */

static void check_stacks(void) {
    lmc_image_shape moving = stack_of(40, 24, 5, 255); /* three earlier frames by the last */
    check_roundtrip_and_free(&moving, make_moving(&moving, 3, -2, 1));
    check_roundtrip_and_free(&moving, make_noise(&moving, 2));
    lmc_image_shape fast = stack_of(40, 24, 4, 255);   /* vectors at the edge of the range */
    check_roundtrip_and_free(&fast, make_moving(&fast, -7, 7, 3));
    lmc_image_shape cut = stack_of(17, 9, 3, 255);     /* blocks cut by the edges */
    check_roundtrip_and_free(&cut, make_moving(&cut, -1, 1, 4));
    lmc_image_shape one_frame = stack_of(5, 4, 1, 255);
    check_roundtrip_and_free(&one_frame, make_noise(&one_frame, 5));
    lmc_image_shape one_row_frames = stack_of(6, 1, 5, 255);
    check_roundtrip_and_free(&one_row_frames, make_noise(&one_row_frames, 6));
    lmc_image_shape one_column = stack_of(1, 7, 4, 255);
    check_roundtrip_and_free(&one_column, make_moving(&one_column, 0, 1, 7));
}

static void test_video_taps_stacks(void **state) {
    (void)state;
    for (fx.layout = LMC_VIDEO_LAYOUT_TAPS; fx.layout <= LMC_VIDEO_LAYOUT_MIXING; fx.layout++)
        check_stacks();
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
}

/* Each layout codes the same stack differently from the one before (a
 * clip with noise, so the local errors matter), and no other layout is
 * accepted. */
static void test_video_layouts(void **state) {
    (void)state;
    lmc_image_shape shape = stack_of(40, 24, 4, 255);
    uint16_t *samples = make_moving(&shape, 2, -1, 60);
    lmc_buf taps, errors, contexts, mixing;
    fx.layout = LMC_VIDEO_LAYOUT_TAPS;
    encode_plane(&shape, samples, NULL, NULL, fx.pool1, &taps);
    fx.layout = LMC_VIDEO_LAYOUT_ERRORS;
    encode_plane(&shape, samples, NULL, NULL, fx.pool1, &errors);
    fx.layout = LMC_VIDEO_LAYOUT_CONTEXTS;
    encode_plane(&shape, samples, NULL, NULL, fx.pool1, &contexts);
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    encode_plane(&shape, samples, NULL, NULL, fx.pool1, &mixing);
    print_message("layout 2: %zu bytes, layout 3: %zu, layout 4: %zu, layout 5: %zu\n", taps.size, errors.size,
                  contexts.size, mixing.size);
    assert_true(taps.size != errors.size || memcmp(taps.data, errors.data, taps.size) != 0);
    assert_true(errors.size != contexts.size || memcmp(errors.data, contexts.data, errors.size) != 0);
    assert_true(contexts.size != mixing.size || memcmp(contexts.data, mixing.data, contexts.size) != 0);
    uint16_t *decoded = malloc(sample_count(&shape) * sizeof *decoded);
    assert_non_null(decoded);
    lmc_message message = {{0}};
    static const uint32_t unknown[] = {0, 1, 6};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        lmc_buf out;
        lmc_buf_init(&out);
        assert_int_equal(lmc_video_plane_encode(fx.model, unknown[i], &shape, samples, NULL, 0, fx.pool1, &out,
                                                &message),
                         LMC_ERR_PARAM);
        assert_int_equal(lmc_video_plane_decode(fx.model, unknown[i], &shape, errors.data, errors.size, NULL, 0,
                                                fx.pool1, decoded, &message),
                         LMC_ERR_PARAM);
        lmc_buf_free(&out);
    }
    free(decoded);
    lmc_buf_free(&taps);
    lmc_buf_free(&errors);
    lmc_buf_free(&contexts);
    lmc_buf_free(&mixing);
    free(samples);
}

/* Layout 4's farther neighbours reach four pixels left and up (layout 5's
 * in a first frame six), and its error feedback follows the vectors into
 * the previous frame: stacks 1 to 7 pixels wide or tall (where those fall
 * outside the frame) and motion that leaves it must still decode exactly. */
static void test_video_contexts_edges(void **state) {
    (void)state;
    for (fx.layout = LMC_VIDEO_LAYOUT_CONTEXTS; fx.layout <= LMC_VIDEO_LAYOUT_MIXING; fx.layout++) {
        for (uint32_t side = 1; side <= 7; side++) {
            lmc_image_shape wide = stack_of(23, side, 3, 255), tall = stack_of(side, 19, 3, 255);
            check_roundtrip_and_free(&wide, make_noise(&wide, 70 + side));
            check_roundtrip_and_free(&tall, make_moving(&tall, 0, 3, 80 + side));
        }
        lmc_image_shape leaving = stack_of(36, 20, 4, 255);
        check_roundtrip_and_free(&leaving, make_moving(&leaving, 6, -5, 90));
    }
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
}

/* Chroma guided by luma: 4:2:0 (even and odd luma sizes), 4:4:4; a guide
 * of another frame count is ignored. The guide must change the payload. */
static void test_video_guided_chroma(void **state) {
    (void)state;
    static const struct {
        uint32_t luma_width, luma_height, chroma_width, chroma_height;
    } cases[] = {{34, 22, 17, 11}, {33, 21, 17, 11}, {20, 12, 20, 12}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lmc_image_shape luma = stack_of(cases[i].luma_width, cases[i].luma_height, 4, 255);
        lmc_image_shape chroma = stack_of(cases[i].chroma_width, cases[i].chroma_height, 4, 255);
        uint16_t *luma_samples = make_moving(&luma, 2, 1, 10 + i);
        uint16_t *chroma_samples = make_chroma(&chroma, &luma, luma_samples);
        size_t guided = check_roundtrip(&chroma, chroma_samples, &luma, luma_samples, fx.pool1);
        size_t alone = check_roundtrip(&chroma, chroma_samples, NULL, NULL, fx.pool1);
        print_message("chroma %ux%u: %zu bytes guided, %zu alone\n", chroma.width, chroma.frame_height, guided,
                      alone);
        lmc_image_shape fewer_frames = luma;
        fewer_frames.height = luma.frame_height * 3;
        check_roundtrip(&chroma, chroma_samples, &fewer_frames, luma_samples, fx.pool1);
        free(luma_samples);
        free(chroma_samples);
    }
    lmc_image_shape luma = stack_of(34, 22, 4, 255), chroma = stack_of(17, 11, 4, 255);
    uint16_t *luma_samples = make_moving(&luma, 2, 1, 20), *chroma_samples = make_chroma(&chroma, &luma, luma_samples);
    lmc_buf guided, alone;
    encode_plane(&chroma, chroma_samples, &luma, luma_samples, fx.pool1, &guided);
    encode_plane(&chroma, chroma_samples, NULL, NULL, fx.pool1, &alone);
    assert_true(guided.size != alone.size || memcmp(guided.data, alone.data, guided.size) != 0);
    lmc_buf_free(&guided);
    lmc_buf_free(&alone);
    free(luma_samples);
    free(chroma_samples);
}

/* Layout 5: the second chroma stack guided by luma and the first (4:2:0
 * with even and odd luma sizes, 4:4:4, one frame, vectors that leave the
 * frame); the second guide must change the payload, and is ignored
 * without a luma guide that fits, where its shape is not the stack's, and
 * under layout 4. */
static void check_second_guide(uint32_t luma_width, uint32_t luma_height, uint32_t width, uint32_t height,
                               uint32_t frames, int dx, int dy, uint32_t seed) {
    lmc_image_shape luma = stack_of(luma_width, luma_height, frames, 255);
    lmc_image_shape chroma = stack_of(width, height, frames, 255);
    uint16_t *luma_samples = make_moving(&luma, dx, dy, seed);
    uint16_t *first = make_chroma(&chroma, &luma, luma_samples);
    uint16_t *second = make_chroma(&chroma, &luma, luma_samples);
    for (size_t i = 0; i < sample_count(&chroma); i++)
        second[i] = (uint16_t)((second[i] + first[i] * 3 + i % 7) / 4); /* like the first, not the same */
    size_t alone = check_roundtrip(&chroma, second, &luma, luma_samples, fx.pool1);
    fx.second_shape = &chroma;
    fx.second = first;
    size_t guided = check_roundtrip(&chroma, second, &luma, luma_samples, fx.pool3);
    print_message("second chroma %ux%u x %u: %zu bytes with the first as guide, %zu without\n", width, height, frames,
                  guided, alone);
    lmc_buf with, without;
    encode_plane(&chroma, second, &luma, luma_samples, fx.pool1, &with);
    fx.second = NULL;
    encode_plane(&chroma, second, &luma, luma_samples, fx.pool1, &without);
    assert_true(with.size != without.size || memcmp(with.data, without.data, with.size) != 0);
    lmc_buf_free(&with);
    lmc_buf_free(&without);
    free(luma_samples);
    free(first);
    free(second);
}

static void test_video_second_guide(void **state) {
    (void)state;
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    check_second_guide(34, 22, 17, 11, 4, 2, 1, 100);
    check_second_guide(33, 21, 17, 11, 3, -3, 2, 101);
    check_second_guide(20, 12, 20, 12, 3, 1, -1, 102);
    check_second_guide(36, 20, 18, 10, 4, 7, -7, 103);
    check_second_guide(10, 8, 5, 4, 1, 0, 0, 104);
    check_second_guide(2, 14, 1, 7, 3, 0, 1, 105);
    /* Ignored: no luma guide, another shape, layout 4. */
    lmc_image_shape luma = stack_of(34, 22, 3, 255), chroma = stack_of(17, 11, 3, 255);
    lmc_image_shape other = stack_of(17, 11, 2, 255);
    uint16_t *luma_samples = make_moving(&luma, 1, 1, 106), *first = make_chroma(&chroma, &luma, luma_samples);
    uint16_t *second = make_noise(&chroma, 107);
    lmc_buf plain, with;
    for (fx.layout = LMC_VIDEO_LAYOUT_CONTEXTS; fx.layout <= LMC_VIDEO_LAYOUT_MIXING; fx.layout++) {
        fx.second = NULL;
        encode_plane(&chroma, second, &luma, luma_samples, fx.pool1, &plain);
        fx.second_shape = fx.layout == LMC_VIDEO_LAYOUT_MIXING ? &other : &chroma;
        fx.second = first;
        encode_plane(&chroma, second, &luma, luma_samples, fx.pool1, &with);
        check_roundtrip(&chroma, second, &luma, luma_samples, fx.pool1);
        assert_int_equal(plain.size, with.size);
        assert_memory_equal(plain.data, with.data, plain.size);
        lmc_buf_free(&plain);
        lmc_buf_free(&with);
    }
    lmc_video_guide guides[2] = {{NULL, NULL}, {&chroma, first}};
    lmc_buf out;
    lmc_buf_init(&out);
    lmc_message message = {{0}};
    assert_int_equal(lmc_video_plane_encode(fx.model, LMC_VIDEO_LAYOUT_MIXING, &chroma, second, guides, 2, fx.pool1,
                                            &out, &message),
                     LMC_OK);
    uint16_t *decoded = malloc(sample_count(&chroma) * sizeof *decoded);
    assert_non_null(decoded);
    assert_int_equal(lmc_video_plane_decode(fx.model, LMC_VIDEO_LAYOUT_MIXING, &chroma, out.data, out.size, NULL, 0,
                                            fx.pool1, decoded, &message),
                     LMC_OK);
    assert_memory_equal(decoded, second, sample_count(&chroma) * sizeof *decoded);
    free(decoded);
    lmc_buf_free(&out);
    fx.second_shape = NULL;
    fx.second = NULL;
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    free(luma_samples);
    free(first);
    free(second);
}

/* More than 8 bits: two channels a sample, the bilinear reference. */
static void test_video_taps_deep(void **state) {
    (void)state;
    lmc_image_shape deep = stack_of(17, 9, 3, 1023);
    check_roundtrip_and_free(&deep, make_moving(&deep, -1, 1, 30));
    lmc_image_shape luma = stack_of(16, 8, 2, 255), chroma = stack_of(8, 4, 2, 65535);
    uint16_t *luma_samples = make_moving(&luma, 1, 0, 31), *chroma_samples = make_noise(&chroma, 32);
    check_roundtrip(&chroma, chroma_samples, &luma, luma_samples, fx.pool1);
    free(luma_samples);
    free(chroma_samples);
}

/* The payload does not depend on the thread count, and decodes with any. */
static void check_threads_same_payload(void) {
    lmc_image_shape shape = stack_of(48, 32, 3, 255);
    uint16_t *samples = make_moving(&shape, 1, 2, 40);
    lmc_buf one, three;
    encode_plane(&shape, samples, NULL, NULL, fx.pool1, &one);
    encode_plane(&shape, samples, NULL, NULL, fx.pool3, &three);
    assert_int_equal(one.size, three.size);
    assert_memory_equal(one.data, three.data, one.size);
    check_roundtrip(&shape, samples, NULL, NULL, fx.pool3);
    lmc_buf_free(&one);
    lmc_buf_free(&three);
    free(samples);
}

static void test_video_threads_same_payload(void **state) {
    (void)state;
    for (fx.layout = LMC_VIDEO_LAYOUT_TAPS; fx.layout <= LMC_VIDEO_LAYOUT_MIXING; fx.layout++)
        check_threads_same_payload();
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
}

/* ---- Damaged payloads ---- */

static void check_damaged(const lmc_image_shape *shape, const uint8_t *payload, size_t size,
                          const lmc_image_shape *guide_shape, const uint16_t *guide) {
    uint16_t *decoded;
    lmc_message message = {{0}};
    lmc_status s = decode_guarded(shape, payload, size, guide_shape, guide, fx.pool1, &decoded, &message);
    if (s == LMC_OK) {
        for (size_t i = 0; i < sample_count(shape); i++)
            assert_true(decoded[i] <= shape->max_value);
    } else {
        assert_true(message.text[0] != '\0');
        assert_true(s == LMC_ERR_CORRUPT || s == LMC_ERR_TRUNCATED);
    }
    free(decoded);
}

/* Every truncation and, byte by byte, one of four flips of a small guided
 * chroma stack of three frames (layout 5: with a second guide). */
static void test_video_damaged(void **state) {
    (void)state;
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    lmc_image_shape luma = stack_of(8, 6, 3, 255), chroma = stack_of(4, 3, 3, 255);
    uint16_t *luma_samples = make_moving(&luma, 1, 1, 50), *chroma_samples = make_noise(&chroma, 51);
    uint16_t *first = make_noise(&chroma, 52);
    fx.second_shape = &chroma;
    fx.second = first;
    lmc_buf payload;
    encode_plane(&chroma, chroma_samples, &luma, luma_samples, fx.pool1, &payload);
    print_message("damaging a payload of %zu bytes\n", payload.size);
    for (size_t n = 0; n < payload.size; n++)
        check_damaged(&chroma, payload.data, n, &luma, luma_samples);
    for (size_t i = 0; i < payload.size; i++) {
        uint8_t mask = masks[i % 4];
        payload.data[i] ^= mask;
        check_damaged(&chroma, payload.data, payload.size, &luma, luma_samples);
        payload.data[i] ^= mask;
    }
    lmc_buf_free(&payload);
    fx.second_shape = NULL;
    fx.second = NULL;
    free(first);
    free(luma_samples);
    free(chroma_samples);
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_taps_stacks),
        cmocka_unit_test(test_video_layouts),
        cmocka_unit_test(test_video_contexts_edges),
        cmocka_unit_test(test_video_guided_chroma),
        cmocka_unit_test(test_video_second_guide),
        cmocka_unit_test(test_video_taps_deep),
        cmocka_unit_test(test_video_threads_same_payload),
        cmocka_unit_test(test_video_damaged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
