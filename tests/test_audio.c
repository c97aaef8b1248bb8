/*
 * The audio sample coder (src/model/audio*.c, lmc_audio_encode /
 * lmc_audio_decode) under small LMC_FAMILY_AUDIO models written to
 * temporary GGUF files: round trips of synthetic recordings (sine + noise,
 * silence, full-scale noise, wasted low bits) at 8, 16, 24 and 32 bits with
 * 1, 2 and 6 channels, 0 and 1 frames; the same payload for 1 and 4
 * threads and every SIMD level; damaged payloads (every truncation, byte
 * flips) that give an error, never a crash or a write past the caller's
 * buffer; refusals (samples out of range, hostile model files); and a real
 * recording of the evaluation corpus when /work/shared is present. The
 * round trips, the determinism and the damage tests run under a version-1
 * model (one predictor) and a version-2 model (two predictors mixed).
 *
 * The test model cuts recordings into segments of SEGMENT_FRAMES frames,
 * so that the multi-segment (parallel) paths run on short signals.
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

#include "format/media.h"
#include "model/model.h"
#include "test_util.h"

#define SEGMENT_FRAMES 1500
#define GUARD_SAMPLES 64
#define GUARD_VALUE 0x5A5A1234

#define MODELS 2 /* version 1 (one predictor) and version 2 (two predictors mixed) */

typedef struct {
    char path[MODELS][128];
    lmc_model *models[MODELS];
    lmc_model *model; /* the one the tests use now */
    lmc_pool *pool1, *pool4;
} fixture;

static fixture fx;
/* The fixture's temporary folder. It is kept out of fx because gcc's
 * -Wrestrict (at -O1) takes a snprintf from one member of fx into another
 * for an overlap. */
static char fixture_dir[64];

/* ---- Models ---- */

typedef lmc_status (*model_extra)(lmc_gguf_writer *w);

static lmc_status write_audio_model(const char *path, model_extra extra) {
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    if (!w)
        return LMC_ERR_NOMEM;
    lmc_status s = lmc_gguf_writer_set_str(w, "general.architecture", "lmc-audio");
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_str(w, "general.name", "test-audio");
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_str(w, "lmc.default_kind", "audio");
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.segment_frames", SEGMENT_FRAMES);
    /* Shorter filters than the shipped model: the tests also run under
     * the sanitizers. */
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.stage0.taps", 64);
    if (s == LMC_OK && extra)
        s = extra(w);
    if (s == LMC_OK)
        s = lmc_gguf_writer_write(w, path);
    lmc_gguf_writer_free(w);
    return s;
}

/* The second predictor of the version-2 test model: slower forgetting, a
 * longer own window and a shorter cross one than the first. */
static lmc_status two_predictors(lmc_gguf_writer *w) {
    lmc_status s = lmc_gguf_writer_set_u32(w, "lmc.audio.version", 2);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.predictors", 2);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.p2.ls.own", 32);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.p2.ls.cross", 8);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.p2.ls.interval", 16);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_f32(w, "lmc.audio.p2.ls.lambda", 0.9998f);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.p2.stage0.taps", 32);
    return s;
}

/* Runs `check` under each test model. */
static void for_each_model(void (*check)(void)) {
    for (int m = 0; m < MODELS; m++) {
        fx.model = fx.models[m];
        check();
    }
    fx.model = fx.models[0];
}

/* Writes a model with `extra` settings and tries to load and use it. */
static lmc_status model_status(model_extra extra, lmc_model **out) {
    char path[160];
    snprintf(path, sizeof path, "%s/variant.gguf", fixture_dir);
    if (write_audio_model(path, extra) != LMC_OK)
        return LMC_ERR_IO;
    lmc_message message;
    lmc_status s = lmc_model_load(path, 0, out, &message);
    unlink(path);
    return s;
}

static int setup(void **state) {
    (void)state;
    memset(&fx, 0, sizeof fx);
    strcpy(fixture_dir, "/tmp/lmc_test_audio_XXXXXX");
    if (!mkdtemp(fixture_dir))
        return -1;
    static const model_extra extras[MODELS] = {NULL, two_predictors};
    for (int m = 0; m < MODELS; m++) {
        snprintf(fx.path[m], sizeof fx.path[m], "%s/audio%d.gguf", fixture_dir, m + 1);
        lmc_message message;
        if (write_audio_model(fx.path[m], extras[m]) != LMC_OK ||
            lmc_model_load(fx.path[m], 0, &fx.models[m], &message) != LMC_OK)
            return -1;
    }
    fx.model = fx.models[0];
    fx.pool1 = lmc_pool_create(1);
    fx.pool4 = lmc_pool_create(4);
    return fx.pool1 && fx.pool4 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    for (int m = 0; m < MODELS; m++) {
        lmc_model_free(fx.models[m]);
        unlink(fx.path[m]);
    }
    lmc_pool_free(fx.pool1);
    lmc_pool_free(fx.pool4);
    rmdir(fixture_dir);
    return 0;
}

/* ---- Signals ---- */

typedef enum { SIGNAL_SINE_NOISE, SIGNAL_SILENCE, SIGNAL_FULL_NOISE, SIGNAL_WASTED_BITS } signal_kind;

static int64_t clamp_bits(int64_t v, uint32_t bits) {
    int64_t high = ((int64_t)1 << (bits - 1)) - 1, low = -high - 1;
    return v < low ? low : v > high ? high : v;
}

/* Bits of noise in SIGNAL_SINE_NOISE: a 12-bit signal-to-noise ratio at
 * every depth (at least 3 bits). */
static uint32_t noise_bits(uint32_t bits) {
    return bits > 15 ? bits - 12 : 3;
}

/* channels x frames samples (planar) of the given kind; the channels share
 * a tone, so the cross-channel prediction has something to find. */
static int32_t *make_signal(signal_kind kind, uint32_t channels, uint64_t frames, uint32_t bits, uint64_t seed) {
    int32_t *s = malloc((size_t)LMC_MAX(channels * frames, 1) * sizeof *s);
    assert_non_null(s);
    uint64_t rng = seed | 1;
    double amplitude = ldexp(1.0, (int)bits - 2);
    for (uint32_t c = 0; c < channels; c++) {
        for (uint64_t t = 0; t < frames; t++) {
            int64_t v = 0;
            uint64_t r = test_rng(&rng);
            switch (kind) {
            case SIGNAL_SINE_NOISE:
                v = (int64_t)(amplitude * sin(0.031 * (double)t + 0.2 * c) * (0.6 + 0.3 * sin(0.0007 * (double)t))) +
                    (int64_t)(r >> (64 - noise_bits(bits))) - ((int64_t)1 << (noise_bits(bits) - 1));
                break;
            case SIGNAL_SILENCE:
                v = 0;
                break;
            case SIGNAL_FULL_NOISE:
                v = (int64_t)(r >> (64 - bits)) - ((int64_t)1 << (bits - 1));
                break;
            case SIGNAL_WASTED_BITS: /* 8 significant bits in the top of the container */
                v = (int64_t)(amplitude * sin(0.05 * (double)t)) & ~(((int64_t)1 << (bits - 8)) - 1);
                break;
            }
            s[c * frames + t] = (int32_t)clamp_bits(v, bits);
        }
    }
    return s;
}

static size_t encode_ok(const lmc_audio_shape *shape, const int32_t *samples, lmc_pool *pool, lmc_buf *payload) {
    lmc_message message = {{0}};
    lmc_status s = lmc_audio_encode(fx.model, shape, samples, pool, payload, &message);
    if (s != LMC_OK)
        fprintf(stderr, "encode: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    return payload->size;
}

/* Decodes into a buffer with guard samples after it and checks the guard. */
static lmc_status decode_guarded(const lmc_audio_shape *shape, const uint8_t *payload, size_t size, lmc_pool *pool,
                                 int32_t *decoded) {
    size_t n = (size_t)shape->channels * shape->frames;
    for (size_t i = 0; i < GUARD_SAMPLES; i++)
        decoded[n + i] = GUARD_VALUE;
    lmc_message message = {{0}};
    lmc_status s = lmc_audio_decode(fx.model, shape, payload, size, pool, decoded, &message);
    for (size_t i = 0; i < GUARD_SAMPLES; i++)
        assert_int_equal(decoded[n + i], GUARD_VALUE);
    return s;
}

/* Encodes, decodes (both with `pool`) and compares; returns the payload size. */
static size_t round_trip(const lmc_audio_shape *shape, const int32_t *samples, lmc_pool *pool) {
    lmc_buf payload;
    lmc_buf_init(&payload);
    size_t size = encode_ok(shape, samples, pool, &payload);
    size_t n = (size_t)shape->channels * shape->frames;
    int32_t *decoded = malloc((n + GUARD_SAMPLES) * sizeof *decoded);
    assert_non_null(decoded);
    assert_int_equal(decode_guarded(shape, payload.data, payload.size, pool, decoded), LMC_OK);
    if (n > 0)
        assert_memory_equal(decoded, samples, n * sizeof *samples);
    free(decoded);
    lmc_buf_free(&payload);
    return size;
}

static double raw_bytes(const lmc_audio_shape *shape) {
    return (double)shape->channels * (double)shape->frames * shape->bits / 8.0;
}

/* ---- Round trips ---- */

static void check_sine_noise_all_depths_and_channels(void) {
    static const uint32_t depths[] = {8, 16, 24, 32};
    static const uint32_t channel_counts[] = {1, 2, 6};
    for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
        for (size_t c = 0; c < sizeof channel_counts / sizeof *channel_counts; c++) {
            lmc_audio_shape shape = {channel_counts[c], 4000, depths[d], depths[d], 44100};
            int32_t *s = make_signal(SIGNAL_SINE_NOISE, shape.channels, shape.frames, shape.bits, 7 + d * 3 + c);
            size_t size = round_trip(&shape, s, fx.pool4);
            /* A tone and uniform noise: little more than the noise's bits. */
            assert_true((double)size < raw_bytes(&shape) * (noise_bits(depths[d]) + 1.5) / depths[d]);
            free(s);
        }
    }
}

static void test_sine_noise_all_depths_and_channels(void **state) {
    (void)state;
    for_each_model(check_sine_noise_all_depths_and_channels);
}

static void test_silence_costs_almost_nothing(void **state) {
    (void)state;
    lmc_audio_shape shape = {2, 100000, 16, 16, 48000};
    int32_t *s = make_signal(SIGNAL_SILENCE, shape.channels, shape.frames, shape.bits, 1);
    size_t size = round_trip(&shape, s, fx.pool4);
    assert_true(size < 600); /* 200000 samples */
    free(s);
}

static void test_full_scale_noise_does_not_expand(void **state) {
    (void)state;
    static const uint32_t depths[] = {8, 16, 24, 32};
    for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
        lmc_audio_shape shape = {1, 20000, depths[d], depths[d], 8000};
        int32_t *s = make_signal(SIGNAL_FULL_NOISE, shape.channels, shape.frames, shape.bits, 99 + d);
        size_t size = round_trip(&shape, s, fx.pool1);
        /* Stored as they are: the samples and the header (a version byte,
         * the segment length and a size per segment). */
        assert_true((double)size <= raw_bytes(&shape) + 4 + 3 * (shape.frames / SEGMENT_FRAMES + 1));
        free(s);
    }
}

static void test_wasted_low_bits_are_not_coded(void **state) {
    (void)state;
    lmc_audio_shape shape = {1, 20000, 24, 24, 44100};
    int32_t *s = make_signal(SIGNAL_WASTED_BITS, shape.channels, shape.frames, shape.bits, 5);
    size_t size = round_trip(&shape, s, fx.pool1);
    /* 8 significant bits of a smooth tone: well under 8 bits per sample,
     * whatever the 16 zero bits below them. */
    assert_true((double)size < shape.frames * 4.0 / 8.0);
    /* The same samples with one odd value in the middle of the second
     * block: that block pays for full precision, the others do not. */
    s[6000] |= 1;
    size_t mixed = round_trip(&shape, s, fx.pool1);
    assert_true(mixed > size);
    free(s);
}

static void check_zero_and_one_frame(void) {
    lmc_audio_shape empty = {2, 0, 16, 16, 44100};
    lmc_buf payload;
    lmc_buf_init(&payload);
    assert_int_equal(encode_ok(&empty, NULL, fx.pool1, &payload), 0);
    lmc_message message;
    assert_int_equal(lmc_audio_decode(fx.model, &empty, payload.data, 0, fx.pool1, NULL, &message), LMC_OK);
    static const uint8_t junk[] = {1, 2, 3};
    assert_int_equal(lmc_audio_decode(fx.model, &empty, junk, sizeof junk, fx.pool1, NULL, &message), LMC_ERR_CORRUPT);
    lmc_buf_free(&payload);

    static const uint32_t depths[] = {8, 16, 24, 32};
    for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
        lmc_audio_shape one = {3, 1, depths[d], depths[d], 8000};
        int32_t s[3] = {-1, (int32_t)clamp_bits(-((int64_t)1 << 40), depths[d]),
                        (int32_t)clamp_bits((int64_t)1 << 40, depths[d])};
        round_trip(&one, s, fx.pool4);
    }
}

static void test_zero_and_one_frame(void **state) {
    (void)state;
    for_each_model(check_zero_and_one_frame);
}

/* The version-2 model's second predictor takes part: its payload differs. */
static void test_second_predictor_is_used(void **state) {
    (void)state;
    lmc_audio_shape shape = {2, 3 * SEGMENT_FRAMES, 16, 16, 44100};
    int32_t *s = make_signal(SIGNAL_SINE_NOISE, shape.channels, shape.frames, shape.bits, 21);
    lmc_buf payload[MODELS];
    for (int m = 0; m < MODELS; m++) {
        fx.model = fx.models[m];
        lmc_buf_init(&payload[m]);
        encode_ok(&shape, s, fx.pool4, &payload[m]);
    }
    fx.model = fx.models[0];
    assert_true(payload[0].size != payload[1].size ||
                memcmp(payload[0].data, payload[1].data, payload[0].size) != 0);
    for (int m = 0; m < MODELS; m++)
        lmc_buf_free(&payload[m]);
    free(s);
}

/* ---- Determinism ---- */

static void check_payload_independent_of_threads_and_simd(void) {
    lmc_audio_shape shape = {6, 4 * SEGMENT_FRAMES + 17, 16, 16, 48000};
    int32_t *s = make_signal(SIGNAL_SINE_NOISE, shape.channels, shape.frames, shape.bits, 11);
    lmc_buf one, four;
    lmc_buf_init(&one);
    lmc_buf_init(&four);
    encode_ok(&shape, s, fx.pool1, &one);
    encode_ok(&shape, s, fx.pool4, &four);
    assert_int_equal(one.size, four.size);
    assert_memory_equal(one.data, four.data, one.size);
    for (int level = LMC_SIMD_SCALAR; level <= LMC_SIMD_AVX512; level++) {
        lmc_simd_force(level);
        lmc_buf again;
        lmc_buf_init(&again);
        encode_ok(&shape, s, fx.pool4, &again);
        assert_int_equal(again.size, one.size);
        assert_memory_equal(again.data, one.data, one.size);
        lmc_buf_free(&again);
    }
    lmc_simd_force(-1);
    /* Decoding with 1 and 4 threads. */
    size_t n = (size_t)shape.channels * shape.frames;
    int32_t *decoded = malloc((n + GUARD_SAMPLES) * sizeof *decoded);
    assert_non_null(decoded);
    assert_int_equal(decode_guarded(&shape, one.data, one.size, fx.pool1, decoded), LMC_OK);
    assert_memory_equal(decoded, s, n * sizeof *s);
    memset(decoded, 0, n * sizeof *decoded);
    assert_int_equal(decode_guarded(&shape, one.data, one.size, fx.pool4, decoded), LMC_OK);
    assert_memory_equal(decoded, s, n * sizeof *s);
    free(decoded);
    lmc_buf_free(&one);
    lmc_buf_free(&four);
    free(s);
}

static void test_payload_independent_of_threads_and_simd(void **state) {
    (void)state;
    for_each_model(check_payload_independent_of_threads_and_simd);
}

/* ---- Damaged payloads ---- */

static void check_truncated_payload_is_an_error(void) {
    lmc_audio_shape shape = {2, 2 * SEGMENT_FRAMES, 16, 16, 22050};
    int32_t *s = make_signal(SIGNAL_SINE_NOISE, shape.channels, shape.frames, shape.bits, 3);
    lmc_buf payload;
    lmc_buf_init(&payload);
    encode_ok(&shape, s, fx.pool1, &payload);
    size_t n = (size_t)shape.channels * shape.frames;
    int32_t *decoded = malloc((n + GUARD_SAMPLES) * sizeof *decoded);
    assert_non_null(decoded);
    /* Every length below the full one (the stream sizes no longer add up). */
    for (size_t len = 0; len < payload.size; len += 1 + len / 64)
        assert_int_not_equal(decode_guarded(&shape, payload.data, len, fx.pool4, decoded), LMC_OK);
    free(decoded);
    lmc_buf_free(&payload);
    free(s);
}

static void test_truncated_payload_is_an_error(void **state) {
    (void)state;
    for_each_model(check_truncated_payload_is_an_error);
}

static void check_corrupted_payload_never_crashes(void) {
    lmc_audio_shape shape = {2, 2 * SEGMENT_FRAMES, 24, 24, 22050};
    int32_t *s = make_signal(SIGNAL_SINE_NOISE, shape.channels, shape.frames, shape.bits, 4);
    lmc_buf payload;
    lmc_buf_init(&payload);
    encode_ok(&shape, s, fx.pool1, &payload);
    size_t n = (size_t)shape.channels * shape.frames;
    int32_t *decoded = malloc((n + GUARD_SAMPLES) * sizeof *decoded);
    uint8_t *damaged = malloc(payload.size);
    assert_non_null(decoded);
    assert_non_null(damaged);
    uint64_t rng = 12345;
    int errors = 0, trials = 0;
    for (size_t pos = 0; pos < payload.size; pos += 1 + payload.size / 97, trials++) {
        memcpy(damaged, payload.data, payload.size);
        damaged[pos] ^= (uint8_t)(1 + test_rng(&rng) % 255);
        lmc_status st = decode_guarded(&shape, damaged, payload.size, fx.pool4, decoded);
        if (st != LMC_OK)
            errors++;
        else /* a change the coder could not see must still decode to valid samples */
            for (size_t i = 0; i < n; i++)
                assert_true(decoded[i] >= -(1 << 23) && decoded[i] < (1 << 23));
    }
    /* A flipped byte changes the rest of its stream: nearly always detected. */
    assert_true(errors * 10 >= trials * 9);
    free(damaged);
    free(decoded);
    lmc_buf_free(&payload);
    free(s);
}

static void test_corrupted_payload_never_crashes(void **state) {
    (void)state;
    for_each_model(check_corrupted_payload_never_crashes);
}

/* ---- Refusals ---- */

static void test_samples_out_of_range_are_refused(void **state) {
    (void)state;
    lmc_audio_shape shape = {1, 4, 16, 16, 8000};
    int32_t s[4] = {0, 1, 40000, 2};
    lmc_buf payload;
    lmc_buf_init(&payload);
    lmc_message message;
    assert_int_equal(lmc_audio_encode(fx.model, &shape, s, fx.pool1, &payload, &message), LMC_ERR_PARAM);
    lmc_audio_shape no_channels = {0, 4, 16, 16, 8000};
    assert_int_equal(lmc_audio_encode(fx.model, &no_channels, s, fx.pool1, &payload, &message), LMC_ERR_PARAM);
    lmc_audio_shape too_wide = {1, 4, 33, 33, 8000};
    assert_int_equal(lmc_audio_encode(fx.model, &too_wide, s, fx.pool1, &payload, &message), LMC_ERR_PARAM);
    lmc_buf_free(&payload);
}

static lmc_status prior_too_short(lmc_gguf_writer *w) {
    static const int16_t values[100] = {0};
    uint64_t ne[1] = {100};
    return lmc_gguf_writer_add_tensor(w, "audio.coder.prior", LMC_GGML_I16, 1, ne, values, sizeof values);
}

static lmc_status mixer_wrong_type(lmc_gguf_writer *w) {
    static const float values[8] = {0};
    uint64_t ne[2] = {4, 2};
    return lmc_gguf_writer_add_tensor(w, "audio.coder.mixer", LMC_GGML_F32, 2, ne, values, sizeof values);
}

static lmc_status order_out_of_range(lmc_gguf_writer *w) {
    return lmc_gguf_writer_set_u32(w, "lmc.audio.ls.own", 1000);
}

static lmc_status lambda_not_a_number(lmc_gguf_writer *w) {
    return lmc_gguf_writer_set_f32(w, "lmc.audio.ls.lambda", NAN);
}

static lmc_status taps_wrong_type(lmc_gguf_writer *w) {
    return lmc_gguf_writer_set_str(w, "lmc.audio.stage1.taps", "many");
}

static lmc_status future_version(lmc_gguf_writer *w) {
    return lmc_gguf_writer_set_u32(w, "lmc.audio.version", 3);
}

/* Two predictors need version 2. */
static lmc_status two_predictors_in_version_1(lmc_gguf_writer *w) {
    return lmc_gguf_writer_set_u32(w, "lmc.audio.predictors", 2);
}

static lmc_status second_order_out_of_range(lmc_gguf_writer *w) {
    lmc_status s = lmc_gguf_writer_set_u32(w, "lmc.audio.version", 2);
    if (s == LMC_OK)
        s = lmc_gguf_writer_set_u32(w, "lmc.audio.predictors", 2);
    return s == LMC_OK ? lmc_gguf_writer_set_u32(w, "lmc.audio.p2.ls.own", 1000) : s;
}

static lmc_status mix_rate_not_a_number(lmc_gguf_writer *w) {
    lmc_status s = two_predictors(w);
    return s == LMC_OK ? lmc_gguf_writer_set_f32(w, "lmc.audio.mix.rate", NAN) : s;
}

static void test_hostile_models_are_refused(void **state) {
    (void)state;
    static const model_extra hostile[] = {prior_too_short, mixer_wrong_type, order_out_of_range,
                                          lambda_not_a_number, taps_wrong_type, future_version,
                                          two_predictors_in_version_1, second_order_out_of_range,
                                          mix_rate_not_a_number};
    lmc_audio_shape shape = {1, 100, 16, 16, 8000};
    int32_t *s = make_signal(SIGNAL_SINE_NOISE, 1, 100, 16, 2);
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        lmc_model *model = NULL;
        assert_int_equal(model_status(hostile[i], &model), LMC_OK);
        lmc_buf payload;
        lmc_buf_init(&payload);
        lmc_message message;
        assert_int_equal(lmc_audio_encode(model, &shape, s, fx.pool1, &payload, &message), LMC_ERR_MODEL_INVALID);
        static const uint8_t some_payload[] = {1, 100, 0};
        int32_t out[100];
        assert_int_equal(lmc_audio_decode(model, &shape, some_payload, sizeof some_payload, fx.pool1, out, &message),
                         LMC_ERR_MODEL_INVALID);
        lmc_buf_free(&payload);
        lmc_model_free(model);
    }
    free(s);
}

static void test_model_of_another_family_is_refused(void **state) {
    (void)state;
    char path[160];
    snprintf(path, sizeof path, "%s/image.gguf", fixture_dir);
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    assert_non_null(w);
    assert_int_equal(lmc_gguf_writer_set_str(w, "general.architecture", "lmc-image"), LMC_OK);
    assert_int_equal(lmc_gguf_writer_write(w, path), LMC_OK);
    lmc_gguf_writer_free(w);
    lmc_model *image = NULL;
    lmc_message message;
    assert_int_equal(lmc_model_load(path, 0, &image, &message), LMC_OK);
    unlink(path);
    lmc_audio_shape shape = {1, 10, 16, 16, 8000};
    int32_t s[10] = {0};
    lmc_buf payload;
    lmc_buf_init(&payload);
    assert_int_equal(lmc_audio_encode(image, &shape, s, fx.pool1, &payload, &message), LMC_ERR_MODEL_INVALID);
    lmc_buf_free(&payload);
    lmc_model_free(image);
}

/* ---- A real recording ---- */

static int read_whole(const char *path, lmc_buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        lmc_buf_append(out, chunk, n);
    fclose(f);
    return 0;
}

/* A corpus speech file (when /work/shared is there) with the shipped model
 * (the test model if it is missing): exact round trip, and smaller than
 * flac -8 --no-padding's 40,038 bytes for it. */
static void test_corpus_recording(void **state) {
    (void)state;
    const char *wav = LMC_TEST_SHARED_DIR "/corpus/audio/speech_librispeech_1034-121119-0022.wav";
    const char *shipped = LMC_TEST_SOURCE_DIR "/models/audio-pcm.gguf";
    lmc_buf file;
    lmc_buf_init(&file);
    if (read_whole(wav, &file) != 0) {
        lmc_buf_free(&file);
        skip();
    }
    lmc_media item;
    lmc_message message;
    assert_int_equal(lmc_media_parse(file.data, file.size, 0, &item, &message), LMC_OK);
    assert_int_equal(item.desc.kind, LMC_KIND_AUDIO);
    lmc_model *loaded = NULL;
    if (access(shipped, R_OK) == 0)
        assert_int_equal(lmc_model_load(shipped, 0, &loaded, &message), LMC_OK);
    const lmc_model *model = loaded ? loaded : fx.model;
    lmc_audio_shape shape = {item.desc.channels, item.desc.frames, item.desc.bits, item.desc.valid_bits,
                             item.desc.sample_rate};
    lmc_buf payload;
    lmc_buf_init(&payload);
    assert_int_equal(lmc_audio_encode(model, &shape, item.audio, fx.pool4, &payload, &message), LMC_OK);
    assert_true(payload.size < 40038);
    int32_t *decoded = malloc(item.count * sizeof *decoded);
    assert_non_null(decoded);
    assert_int_equal(lmc_audio_decode(model, &shape, payload.data, payload.size, fx.pool4, decoded, &message), LMC_OK);
    assert_memory_equal(decoded, item.audio, item.count * sizeof *decoded);
    free(decoded);
    lmc_buf_free(&payload);
    lmc_model_free(loaded);
    lmc_media_free(&item);
    lmc_buf_free(&file);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sine_noise_all_depths_and_channels),
        cmocka_unit_test(test_silence_costs_almost_nothing),
        cmocka_unit_test(test_full_scale_noise_does_not_expand),
        cmocka_unit_test(test_wasted_low_bits_are_not_coded),
        cmocka_unit_test(test_zero_and_one_frame),
        cmocka_unit_test(test_second_predictor_is_used),
        cmocka_unit_test(test_payload_independent_of_threads_and_simd),
        cmocka_unit_test(test_truncated_payload_is_an_error),
        cmocka_unit_test(test_corrupted_payload_never_crashes),
        cmocka_unit_test(test_samples_out_of_range_are_refused),
        cmocka_unit_test(test_hostile_models_are_refused),
        cmocka_unit_test(test_model_of_another_family_is_refused),
        cmocka_unit_test(test_corpus_recording),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
