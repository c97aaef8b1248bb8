/*
 * Video clips of layouts 2 to 5 (src/model/video_codec.h,
 * lmc_video_encode / _decode: 8-tap reference filters, up to three
 * earlier frames, chroma guided by luma; layout 3 also weighs its
 * predictors by wider local errors, layout 4 also gives its least-squares
 * predictor farther neighbours and its own errors' feedback and lets the
 * errors choose mixer weights and APM cells, layout 5 also guides the
 * second chroma stack by the first, gives first frames farther neighbours
 * still and luma other hypotheses and a finer mixing) under a minimal
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

/* A clip: its planes' stacks; plane 0 guides the others where it fits. */
typedef struct {
    uint32_t planes;
    lmc_image_shape shapes[LMC_VIDEO_MAX_PLANES];
    const uint16_t *samples[LMC_VIDEO_MAX_PLANES];
} clip;

static clip one_plane(const lmc_image_shape *shape, const uint16_t *samples) {
    clip c = {.planes = 1};
    c.shapes[0] = *shape;
    c.samples[0] = samples;
    return c;
}

static clip guided(const lmc_image_shape *luma, const uint16_t *luma_samples, const lmc_image_shape *chroma,
                   const uint16_t *chroma_samples) {
    clip c = one_plane(luma, luma_samples);
    c.planes = 2;
    c.shapes[1] = *chroma;
    c.samples[1] = chroma_samples;
    return c;
}

static void encode_clip(const clip *c, lmc_pool *pool, lmc_buf *payloads) {
    lmc_message message = {{0}};
    for (uint32_t p = 0; p < c->planes; p++)
        lmc_buf_init(&payloads[p]);
    lmc_status s = lmc_video_encode(fx.model, fx.layout, c->planes, c->shapes, c->samples, pool, payloads, &message);
    if (s != LMC_OK)
        print_message("encode: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    for (uint32_t p = 0; p < c->planes; p++)
        assert_true(payloads[p].size > 0);
}

static void free_payloads(lmc_buf *payloads, uint32_t planes) {
    for (uint32_t p = 0; p < planes; p++)
        lmc_buf_free(&payloads[p]);
}

/* Decodes copies of exactly the payloads' sizes (so ASan sees any
 * over-read) into buffers followed by guard samples, which must stay. */
static lmc_status decode_guarded(const clip *c, const lmc_buf *payloads, lmc_pool *pool,
                                 uint16_t *decoded[LMC_VIDEO_MAX_PLANES], lmc_message *message) {
    const uint8_t *copies[LMC_VIDEO_MAX_PLANES];
    size_t sizes[LMC_VIDEO_MAX_PLANES];
    for (uint32_t p = 0; p < c->planes; p++) {
        sizes[p] = payloads[p].size;
        uint8_t *copy = malloc(sizes[p] ? sizes[p] : 1);
        assert_non_null(copy);
        memcpy(copy, payloads[p].data, sizes[p]);
        copies[p] = copy;
        size_t count = sample_count(&c->shapes[p]);
        decoded[p] = malloc((count + GUARD_SAMPLES) * sizeof *decoded[p]);
        assert_non_null(decoded[p]);
        for (size_t i = 0; i < count + GUARD_SAMPLES; i++)
            decoded[p][i] = GUARD_VALUE;
    }
    lmc_status s = lmc_video_decode(fx.model, fx.layout, c->planes, c->shapes, copies, sizes, pool, decoded, message);
    for (uint32_t p = 0; p < c->planes; p++) {
        free((void *)copies[p]);
        for (size_t i = 0; i < GUARD_SAMPLES; i++)
            assert_int_equal(decoded[p][sample_count(&c->shapes[p]) + i], GUARD_VALUE);
    }
    return s;
}

static void free_decoded(uint16_t *decoded[LMC_VIDEO_MAX_PLANES], uint32_t planes) {
    for (uint32_t p = 0; p < planes; p++)
        free(decoded[p]);
}

/* Encodes (one thread), decodes (with pool) and compares every plane;
 * returns the last plane's payload size. */
static size_t check_roundtrip(const clip *c, lmc_pool *pool) {
    lmc_buf payloads[LMC_VIDEO_MAX_PLANES];
    encode_clip(c, fx.pool1, payloads);
    uint16_t *decoded[LMC_VIDEO_MAX_PLANES];
    lmc_message message = {{0}};
    lmc_status s = decode_guarded(c, payloads, pool, decoded, &message);
    if (s != LMC_OK)
        print_message("decode: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    for (uint32_t p = 0; p < c->planes; p++)
        assert_memory_equal(decoded[p], c->samples[p], sample_count(&c->shapes[p]) * sizeof *decoded[p]);
    free_decoded(decoded, c->planes);
    size_t size = payloads[c->planes - 1].size;
    free_payloads(payloads, c->planes);
    return size;
}

static void check_roundtrip_and_free(const lmc_image_shape *shape, uint16_t *samples) {
    clip c = one_plane(shape, samples);
    check_roundtrip(&c, fx.pool1);
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
 * clip with noise, so the local errors matter), and no other layout (nor
 * a clip of no planes or too many) is accepted. */
static void test_video_layouts(void **state) {
    (void)state;
    lmc_image_shape shape = stack_of(40, 24, 4, 255);
    uint16_t *samples = make_moving(&shape, 2, -1, 60);
    clip c = one_plane(&shape, samples);
    lmc_buf taps, errors, contexts, mixing;
    fx.layout = LMC_VIDEO_LAYOUT_TAPS;
    encode_clip(&c, fx.pool1, &taps);
    fx.layout = LMC_VIDEO_LAYOUT_ERRORS;
    encode_clip(&c, fx.pool1, &errors);
    fx.layout = LMC_VIDEO_LAYOUT_CONTEXTS;
    encode_clip(&c, fx.pool1, &contexts);
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    encode_clip(&c, fx.pool1, &mixing);
    print_message("layout 2: %zu bytes, layout 3: %zu, layout 4: %zu, layout 5: %zu\n", taps.size, errors.size,
                  contexts.size, mixing.size);
    assert_true(taps.size != errors.size || memcmp(taps.data, errors.data, taps.size) != 0);
    assert_true(errors.size != contexts.size || memcmp(errors.data, contexts.data, errors.size) != 0);
    assert_true(contexts.size != mixing.size || memcmp(contexts.data, mixing.data, contexts.size) != 0);
    uint16_t *decoded = malloc(sample_count(&shape) * sizeof *decoded);
    assert_non_null(decoded);
    const uint8_t *payload = errors.data;
    lmc_message message = {{0}};
    static const uint32_t unknown[] = {0, 1, 6};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        lmc_buf out;
        lmc_buf_init(&out);
        assert_int_equal(lmc_video_encode(fx.model, unknown[i], 1, &shape, c.samples, fx.pool1, &out, &message),
                         LMC_ERR_PARAM);
        assert_int_equal(lmc_video_decode(fx.model, unknown[i], 1, &shape, &payload, &errors.size, fx.pool1, &decoded,
                                          &message),
                         LMC_ERR_PARAM);
        lmc_buf_free(&out);
    }
    static const uint32_t plane_counts[] = {0, LMC_VIDEO_MAX_PLANES + 1};
    for (size_t i = 0; i < sizeof plane_counts / sizeof *plane_counts; i++)
        assert_int_equal(lmc_video_decode(fx.model, LMC_VIDEO_LAYOUT_CONTEXTS, plane_counts[i], &shape, &payload,
                                          &errors.size, fx.pool1, &decoded, &message),
                         LMC_ERR_PARAM);
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

/* Two motions, each half of the blocks its own (and a third band in the
 * middle rows), with noise: layout 5's other hypotheses (the neighbouring
 * blocks' vectors through the 8-tap filters) differ from the reference
 * along the halves' edge, reach past the frame at its edges and corners,
 * and must decode exactly, in stacks 1 to 17 pixels on a side too. */
static uint16_t *make_two_motions(const lmc_image_shape *shape, uint64_t seed) {
    uint16_t *samples = new_samples(shape);
    uint32_t fh = shape->frame_height;
    uint64_t rng = seed | 1;
    for (uint32_t y = 0; y < shape->height; y++)
        for (uint32_t x = 0; x < shape->width; x++) {
            int f = (int)(y / fh), fy = (int)(y % fh);
            int shift = x < shape->width / 2 ? 3 * f : fy >= 12 && fy < 20 ? -f : -2 * f;
            int sx = (int)x - shift, sy = fy + (x < shape->width / 2 ? f : 0);
            uint32_t v = (uint32_t)(sx * 37 ^ sy * 23) % 97 + (uint32_t)((sx + sy) & 8) * 12;
            samples[(size_t)y * shape->width + x] = (uint16_t)(v + test_rng(&rng) % 7);
        }
    return samples;
}

static void test_video_mixing_hypotheses(void **state) {
    (void)state;
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    lmc_image_shape two = stack_of(48, 40, 4, 255);
    uint16_t *samples = make_two_motions(&two, 5);
    clip c = one_plane(&two, samples);
    size_t mixing = check_roundtrip(&c, fx.pool3);
    fx.layout = LMC_VIDEO_LAYOUT_CONTEXTS;
    size_t contexts = check_roundtrip(&c, fx.pool1);
    print_message("two motions: layout 4 %zu bytes, layout 5 %zu\n", contexts, mixing);
    free(samples);
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    static const uint32_t sides[] = {1, 2, 7, 9, 16, 17};
    for (size_t i = 0; i < sizeof sides / sizeof *sides; i++) {
        lmc_image_shape wide = stack_of(41, sides[i], 3, 255), tall = stack_of(sides[i], 37, 3, 255);
        check_roundtrip_and_free(&wide, make_two_motions(&wide, 100 + i));
        check_roundtrip_and_free(&tall, make_two_motions(&tall, 200 + i));
    }
}

/* Chroma guided by luma: 4:2:0 (even and odd luma sizes), 4:4:4; a first
 * plane of another frame count guides nothing. The guide must change the
 * payload. */
static void check_guided_chroma(void) {
    static const struct {
        uint32_t luma_width, luma_height, chroma_width, chroma_height;
    } cases[] = {{34, 22, 17, 11}, {33, 21, 17, 11}, {20, 12, 20, 12}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lmc_image_shape luma = stack_of(cases[i].luma_width, cases[i].luma_height, 4, 255);
        lmc_image_shape chroma = stack_of(cases[i].chroma_width, cases[i].chroma_height, 4, 255);
        uint16_t *luma_samples = make_moving(&luma, 2, 1, 10 + i);
        uint16_t *chroma_samples = make_chroma(&chroma, &luma, luma_samples);
        clip with_guide = guided(&luma, luma_samples, &chroma, chroma_samples);
        clip alone = one_plane(&chroma, chroma_samples);
        size_t guided_size = check_roundtrip(&with_guide, fx.pool1);
        size_t alone_size = check_roundtrip(&alone, fx.pool1);
        print_message("chroma %ux%u: %zu bytes guided, %zu alone\n", chroma.width, chroma.frame_height, guided_size,
                      alone_size);
        lmc_image_shape fewer_frames = luma;
        fewer_frames.height = luma.frame_height * 3;
        clip no_fit = guided(&fewer_frames, luma_samples, &chroma, chroma_samples);
        size_t no_fit_size = check_roundtrip(&no_fit, fx.pool3);
        /* Unguided, a later plane is coded as a first one, but for layout
         * 5's mixing, which is the first plane's (luma's) alone. */
        if (fx.layout < LMC_VIDEO_LAYOUT_MIXING)
            assert_int_equal(no_fit_size, alone_size);
        free(luma_samples);
        free(chroma_samples);
    }
    lmc_image_shape luma = stack_of(34, 22, 4, 255), chroma = stack_of(17, 11, 4, 255);
    uint16_t *luma_samples = make_moving(&luma, 2, 1, 20), *chroma_samples = make_chroma(&chroma, &luma, luma_samples);
    clip with_guide = guided(&luma, luma_samples, &chroma, chroma_samples), alone = one_plane(&chroma, chroma_samples);
    lmc_buf guided_payloads[2], alone_payload;
    encode_clip(&with_guide, fx.pool1, guided_payloads);
    encode_clip(&alone, fx.pool1, &alone_payload);
    assert_true(guided_payloads[1].size != alone_payload.size ||
                memcmp(guided_payloads[1].data, alone_payload.data, alone_payload.size) != 0);
    free_payloads(guided_payloads, 2);
    lmc_buf_free(&alone_payload);
    free(luma_samples);
    free(chroma_samples);
}

static void test_video_guided_chroma(void **state) {
    (void)state;
    for (fx.layout = LMC_VIDEO_LAYOUT_CONTEXTS; fx.layout <= LMC_VIDEO_LAYOUT_MIXING; fx.layout++)
        check_guided_chroma();
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
}

/* The payload of a clip's last plane. */
static void encode_last(const clip *c, lmc_buf *last) {
    lmc_buf payloads[LMC_VIDEO_MAX_PLANES];
    encode_clip(c, fx.pool1, payloads);
    *last = payloads[c->planes - 1];
    free_payloads(payloads, c->planes - 1);
}

static int same_buf(const lmc_buf *a, const lmc_buf *b) {
    return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

/* Layout 5: Cr guided by luma and by Cb (4:2:0 with even and odd luma
 * sizes, 4:4:4, one frame, vectors that leave the frame), decoded with 3
 * threads (Cb and Cr share their tasks); Cb's samples must change Cr's
 * payload. */
static void check_second_guide(uint32_t luma_width, uint32_t luma_height, uint32_t width, uint32_t height,
                               uint32_t frames, int dx, int dy, uint32_t seed) {
    lmc_image_shape luma = stack_of(luma_width, luma_height, frames, 255);
    lmc_image_shape chroma = stack_of(width, height, frames, 255);
    uint16_t *luma_samples = make_moving(&luma, dx, dy, seed);
    uint16_t *cb = make_chroma(&chroma, &luma, luma_samples), *noise = make_noise(&chroma, seed + 1);
    uint16_t *cr = make_chroma(&chroma, &luma, luma_samples);
    for (size_t i = 0; i < sample_count(&chroma); i++)
        cr[i] = (uint16_t)((cr[i] + cb[i] * 3 + i % 7) / 4); /* like Cb, not the same */
    clip with_cb = {3, {luma, chroma, chroma}, {luma_samples, cb, cr}};
    clip with_noise = {3, {luma, chroma, chroma}, {luma_samples, noise, cr}};
    size_t guided_size = check_roundtrip(&with_cb, fx.pool3);
    size_t noise_size = check_roundtrip(&with_noise, fx.pool3);
    print_message("Cr %ux%u x %u: %zu bytes after its Cb, %zu after noise\n", width, height, frames, guided_size,
                  noise_size);
    lmc_buf after_cb, after_noise;
    encode_last(&with_cb, &after_cb);
    encode_last(&with_noise, &after_noise);
    assert_false(same_buf(&after_cb, &after_noise));
    lmc_buf_free(&after_cb);
    lmc_buf_free(&after_noise);
    free(luma_samples);
    free(cb);
    free(noise);
    free(cr);
}

/* Cb does not guide Cr without a luma guide that fits, where its shape is
 * not Cr's (Cr is then coded as a second plane would be), nor under
 * layout 4. */
static void check_second_guide_ignored(void) {
    lmc_image_shape luma = stack_of(34, 22, 3, 255), chroma = stack_of(17, 11, 3, 255);
    lmc_image_shape fewer_frames = stack_of(34, 22, 2, 255), other = stack_of(16, 11, 3, 255);
    uint16_t *luma_samples = make_moving(&luma, 1, 1, 106), *cb = make_chroma(&chroma, &luma, luma_samples);
    uint16_t *noise = make_noise(&chroma, 107), *cr = make_noise(&chroma, 108);
    lmc_buf a, b;
    fx.layout = LMC_VIDEO_LAYOUT_CONTEXTS;
    encode_last(&(clip){3, {luma, chroma, chroma}, {luma_samples, cb, cr}}, &a);
    encode_last(&(clip){3, {luma, chroma, chroma}, {luma_samples, noise, cr}}, &b);
    assert_true(same_buf(&a, &b));
    lmc_buf_free(&a);
    lmc_buf_free(&b);
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
    encode_last(&(clip){3, {fewer_frames, chroma, chroma}, {luma_samples, cb, cr}}, &a);
    encode_last(&(clip){3, {fewer_frames, chroma, chroma}, {luma_samples, noise, cr}}, &b);
    assert_true(same_buf(&a, &b));
    lmc_buf_free(&a);
    lmc_buf_free(&b);
    encode_last(&(clip){3, {luma, other, chroma}, {luma_samples, noise, cr}}, &a);
    encode_last(&(clip){2, {luma, chroma}, {luma_samples, cr}}, &b);
    assert_true(same_buf(&a, &b));
    check_roundtrip(&(clip){3, {luma, other, chroma}, {luma_samples, noise, cr}}, fx.pool3);
    lmc_buf_free(&a);
    lmc_buf_free(&b);
    free(luma_samples);
    free(cb);
    free(noise);
    free(cr);
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
    check_second_guide_ignored();
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
}

/* More than 8 bits: two channels a sample, the bilinear reference, no
 * guide (nor guiding). */
static void test_video_taps_deep(void **state) {
    (void)state;
    lmc_image_shape deep = stack_of(17, 9, 3, 1023);
    check_roundtrip_and_free(&deep, make_moving(&deep, -1, 1, 30));
    lmc_image_shape luma = stack_of(16, 8, 2, 255), chroma = stack_of(8, 4, 2, 65535);
    uint16_t *luma_samples = make_moving(&luma, 1, 0, 31), *chroma_samples = make_noise(&chroma, 32);
    clip deep_chroma = guided(&luma, luma_samples, &chroma, chroma_samples);
    check_roundtrip(&deep_chroma, fx.pool3);
    clip deep_luma = guided(&chroma, chroma_samples, &luma, luma_samples);
    check_roundtrip(&deep_luma, fx.pool3);
    free(luma_samples);
    free(chroma_samples);
}

/* Clips of 4:2:0 (Y, U, V) and 4:4:4 with alpha (Y, U, V, A: the later
 * three coded together): the payloads depend neither on the thread count
 * nor on the SIMD level (the coder's AVX2 build against its portable one),
 * and decode with any thread count (a decoder's guided planes then wait
 * for luma's frames). */
static void check_threads_same_payload(void) {
    lmc_image_shape luma = stack_of(48, 32, 3, 255), quarter = stack_of(24, 16, 3, 255);
    uint16_t *luma_samples = make_moving(&luma, 1, 2, 40);
    uint16_t *u = make_chroma(&quarter, &luma, luma_samples), *v = make_noise(&quarter, 41);
    uint16_t *full_u = make_chroma(&luma, &luma, luma_samples), *full_v = make_noise(&luma, 42);
    uint16_t *alpha = make_moving(&luma, -1, 0, 43);
    clip yuv420 = {3, {luma, quarter, quarter}, {luma_samples, u, v}};
    clip yuva444 = {4, {luma, luma, luma, luma}, {luma_samples, full_u, full_v, alpha}};
    const clip *clips[] = {&yuv420, &yuva444};
    for (size_t i = 0; i < 2; i++) {
        lmc_buf one[LMC_VIDEO_MAX_PLANES], three[LMC_VIDEO_MAX_PLANES], portable[LMC_VIDEO_MAX_PLANES];
        encode_clip(clips[i], fx.pool1, one);
        encode_clip(clips[i], fx.pool3, three);
        lmc_simd_force(LMC_SIMD_SCALAR);
        encode_clip(clips[i], fx.pool1, portable);
        lmc_simd_force(-1);
        for (uint32_t p = 0; p < clips[i]->planes; p++) {
            assert_int_equal(one[p].size, three[p].size);
            assert_memory_equal(one[p].data, three[p].data, one[p].size);
            assert_int_equal(one[p].size, portable[p].size);
            assert_memory_equal(one[p].data, portable[p].data, one[p].size);
        }
        check_roundtrip(clips[i], fx.pool3);
        free_payloads(one, clips[i]->planes);
        free_payloads(three, clips[i]->planes);
        free_payloads(portable, clips[i]->planes);
    }
    free(luma_samples);
    free(u);
    free(v);
    free(full_u);
    free(full_v);
    free(alpha);
}

static void test_video_threads_same_payload(void **state) {
    (void)state;
    for (fx.layout = LMC_VIDEO_LAYOUT_TAPS; fx.layout <= LMC_VIDEO_LAYOUT_MIXING; fx.layout++)
        check_threads_same_payload();
    fx.layout = LMC_VIDEO_LAYOUT_MIXING;
}

/* ---- Damaged payloads ---- */

static void check_damaged(const clip *c, const lmc_buf *payloads, lmc_pool *pool) {
    uint16_t *decoded[LMC_VIDEO_MAX_PLANES];
    lmc_message message = {{0}};
    lmc_status s = decode_guarded(c, payloads, pool, decoded, &message);
    if (s == LMC_OK) {
        for (uint32_t p = 0; p < c->planes; p++)
            for (size_t i = 0; i < sample_count(&c->shapes[p]); i++)
                assert_true(decoded[p][i] <= c->shapes[p].max_value);
    } else {
        assert_true(message.text[0] != '\0');
        assert_true(s == LMC_ERR_CORRUPT || s == LMC_ERR_TRUNCATED);
    }
    free_decoded(decoded, c->planes);
}

/* Every truncation and, byte by byte, one of four flips of each payload of
 * a small clip of luma, Cb and Cr (layout 5: Cr follows Cb), three frames,
 * decoded with 3 threads: damaged luma must not leave the chroma decoding
 * (on another thread) waiting, and damaged Cb must not derail Cr. */
static void test_video_damaged(void **state) {
    (void)state;
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    lmc_image_shape luma = stack_of(8, 6, 3, 255), chroma = stack_of(4, 3, 3, 255);
    uint16_t *luma_samples = make_moving(&luma, 1, 1, 50), *cb = make_chroma(&chroma, &luma, luma_samples);
    uint16_t *cr = make_noise(&chroma, 51);
    clip c = {3, {luma, chroma, chroma}, {luma_samples, cb, cr}};
    lmc_buf payloads[3];
    encode_clip(&c, fx.pool1, payloads);
    for (uint32_t p = 0; p < 3; p++) {
        lmc_buf *damaged = &payloads[p];
        size_t size = damaged->size;
        print_message("damaging a payload of %zu bytes\n", size);
        for (damaged->size = 0; damaged->size < size; damaged->size++)
            check_damaged(&c, payloads, fx.pool3);
        for (size_t i = 0; i < size; i++) {
            uint8_t mask = masks[i % 4];
            damaged->data[i] ^= mask;
            check_damaged(&c, payloads, fx.pool3);
            damaged->data[i] ^= mask;
        }
    }
    free_payloads(payloads, 3);
    free(luma_samples);
    free(cb);
    free(cr);
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_taps_stacks),
        cmocka_unit_test(test_video_layouts),
        cmocka_unit_test(test_video_contexts_edges),
        cmocka_unit_test(test_video_mixing_hypotheses),
        cmocka_unit_test(test_video_guided_chroma),
        cmocka_unit_test(test_video_second_guide),
        cmocka_unit_test(test_video_taps_deep),
        cmocka_unit_test(test_video_threads_same_payload),
        cmocka_unit_test(test_video_damaged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
