/*
 * The entropy-coding stage: range coder round trips (symbols of any total
 * up to 2^32, bits, mixtures), its behaviour on truncated and garbage input,
 * and the invariants and exact numerics of lmc_cdf_from_logits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coder/coder.h"
#include "common/detmath.h"

#define CDF_TOTAL (1u << LMC_CDF_BITS)

static uint64_t rng_next(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state) {
    return (double)(rng_next(state) >> 11) * 0x1p-53;
}

static uint64_t rng_below(uint64_t *state, uint64_t bound) {
    return rng_next(state) % bound;
}

static double rng_normal(uint64_t *state) {
    double u = rng_unit(state), v = rng_unit(state);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static void *xmalloc(size_t size) {
    void *p = malloc(size);
    assert_non_null(p);
    return p;
}

/* ---- CDF construction for coder tests (independent of cdf.c) ---- */

typedef enum { SHAPE_UNIFORM, SHAPE_ZIPF, SHAPE_EXTREME, SHAPE_RANDOM } cdf_shape;

/* Random frequencies with total 2^LMC_CDF_BITS, each >= 1. */
static void make_cdf(uint64_t *rng, int n, cdf_shape shape, uint32_t *cum) {
    const uint64_t total = CDF_TOTAL;
    double *weight = xmalloc((size_t)n * sizeof *weight);
    double sum = 0.0;
    int hot = (int)rng_below(rng, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        switch (shape) {
        case SHAPE_UNIFORM: weight[i] = 1.0; break;
        case SHAPE_ZIPF: weight[i] = 1.0 / (1.0 + (double)((i * 7919 + hot) % n)); break;
        case SHAPE_EXTREME: weight[i] = i == hot ? 1.0 : 0.0; break;
        default: weight[i] = pow(rng_unit(rng), 8.0); break;
        }
        sum += weight[i];
    }
    uint64_t spread = total - (uint64_t)n, used = 0;
    cum[0] = 0;
    for (int i = 0; i < n; i++) {
        uint64_t f = 1 + (uint64_t)(weight[i] / sum * (double)spread);
        used += f;
        cum[i + 1] = (uint32_t)f; /* frequencies for now */
    }
    /* Double rounding can overshoot by a count or two: trim the largest. */
    int largest = 0;
    for (int i = 1; i < n; i++)
        if (cum[i + 1] > cum[largest + 1]) largest = i;
    if (used > total) {
        cum[largest + 1] -= (uint32_t)(used - total);
        used = total;
    }
    cum[hot + 1] += (uint32_t)(total - used);
    for (int i = 0; i < n; i++) cum[i + 1] += cum[i];
    assert_int_equal(cum[n], total);
    free(weight);
}

/* A symbol drawn from the CDF's own distribution. */
static int sample_symbol(uint64_t *rng, const uint32_t *cum, int n, unsigned total_bits) {
    uint64_t target = rng_next(rng) >> (64 - total_bits);
    int lo = 0, hi = n;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (cum[mid] <= target) lo = mid; else hi = mid;
    }
    return lo;
}

static double ideal_bits(const uint32_t *cum, int s, unsigned total_bits) {
    return (double)total_bits - log2((double)(cum[s + 1] - cum[s]));
}

/* ---- round trips ---- */

static void roundtrip_cdf(uint64_t *rng, int n, cdf_shape shape, int count) {
    uint32_t *cum = xmalloc(((size_t)n + 1) * sizeof *cum);
    int *symbols = xmalloc((size_t)count * sizeof *symbols);
    make_cdf(rng, n, shape, cum);
    lmc_buf out;
    lmc_buf_init(&out);
    lmc_rc_encoder enc;
    lmc_rc_encoder_init(&enc, &out);
    double ideal = 0.0;
    for (int i = 0; i < count; i++) {
        /* Every 16th symbol is a uniformly chosen one, so rare (freq 1)
         * symbols are coded too. */
        symbols[i] = i % 16 == 15 ? (int)rng_below(rng, (uint64_t)n) : sample_symbol(rng, cum, n, LMC_CDF_BITS);
        ideal += ideal_bits(cum, symbols[i], LMC_CDF_BITS);
        lmc_rc_encode_symbol(&enc, cum, symbols[i]);
    }
    assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
    /* Flush at most one byte, per-symbol loss far below a byte in total. */
    /* One byte per 8 bits of information (plus the 8 bits the range may
     * still hold at the end), a tiny truncation loss, at most one flush byte. */
    assert_true((double)out.size <= ideal * (1.0 + 1e-4) / 8.0 + 2.0);

    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, out.data, out.size);
    for (int i = 0; i < count; i++) assert_int_equal(lmc_rc_decode_symbol(&dec, cum, n), symbols[i]);
    assert_false(lmc_rc_decoder_failed(&dec));
    assert_true(lmc_rc_decoder_end_ok(&dec));
    lmc_buf_free(&out);
    free(symbols);
    free(cum);
}

static void test_roundtrip_symbols(void **state) {
    (void)state;
    uint64_t rng = 1;
    const int sizes[] = {2, 3, 17, 256, 257, 32000, 70000};
    const cdf_shape shapes[] = {SHAPE_UNIFORM, SHAPE_ZIPF, SHAPE_EXTREME, SHAPE_RANDOM};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t h = 0; h < sizeof shapes / sizeof shapes[0]; h++) roundtrip_cdf(&rng, sizes[s], shapes[h], 20000);
}

typedef struct {
    uint32_t cum, freq;
    unsigned total_bits;
} raw_symbol;

/* Intervals of every total 2^1 .. 2^32, including freq = total (certain,
 * costs nothing; at most 2^32 - 1 for total 2^32), freq = 1 at both ends and
 * huge frequencies. */
static raw_symbol random_raw_symbol(uint64_t *rng, unsigned total_bits) {
    uint64_t total = 1ull << total_bits;
    raw_symbol sym = {0, 0, total_bits};
    uint64_t cum, freq;
    switch (rng_below(rng, 5)) {
    case 0: cum = 0; freq = total; break;
    case 1: cum = total - 1; freq = 1; break;
    case 2: cum = 0; freq = 1; break;
    case 3: cum = 0; freq = total - (total > 1); break;
    default:
        cum = rng_below(rng, total);
        freq = 1 + rng_below(rng, total - cum);
        break;
    }
    freq = LMC_MAX(freq, 1);
    freq = LMC_MIN(freq, UINT32_MAX);
    sym.cum = (uint32_t)cum;
    sym.freq = (uint32_t)freq;
    return sym;
}

static void test_roundtrip_all_total_bits(void **state) {
    (void)state;
    uint64_t rng = 2;
    const int count = 30000;
    raw_symbol *symbols = xmalloc(count * sizeof *symbols);
    for (int mode = 0; mode <= 32; mode++) {
        /* mode 1..32: one total per stream; mode 0: totals mixed per symbol. */
        lmc_buf out;
        lmc_buf_init(&out);
        lmc_rc_encoder enc;
        lmc_rc_encoder_init(&enc, &out);
        for (int i = 0; i < count; i++) {
            unsigned bits = mode ? (unsigned)mode : 1 + (unsigned)rng_below(&rng, 32);
            symbols[i] = random_raw_symbol(&rng, bits);
            lmc_rc_encode(&enc, symbols[i].cum, symbols[i].freq, symbols[i].total_bits);
        }
        assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
        lmc_rc_decoder dec;
        lmc_rc_decoder_init(&dec, out.data, out.size);
        for (int i = 0; i < count; i++) {
            uint32_t target = lmc_rc_decode_target(&dec, symbols[i].total_bits);
            assert_true(target >= symbols[i].cum);
            assert_true((uint64_t)target < (uint64_t)symbols[i].cum + symbols[i].freq);
            lmc_rc_decode_update(&dec, symbols[i].cum, symbols[i].freq);
        }
        assert_true(lmc_rc_decoder_end_ok(&dec));
        lmc_buf_free(&out);
    }
    free(symbols);
}

static void test_bits_mixed_with_symbols(void **state) {
    (void)state;
    uint64_t rng = 3;
    const int n = 300, count = 50000;
    uint32_t cum[301];
    make_cdf(&rng, n, SHAPE_ZIPF, cum);
    int *values = xmalloc(count * sizeof *values);
    uint32_t *probs = xmalloc(count * sizeof *probs);
    lmc_buf out;
    lmc_buf_init(&out);
    lmc_rc_encoder enc;
    lmc_rc_encoder_init(&enc, &out);
    for (int i = 0; i < count; i++) {
        if (rng_below(&rng, 3) == 0) {
            probs[i] = 0; /* a symbol */
            values[i] = sample_symbol(&rng, cum, n, LMC_CDF_BITS);
            lmc_rc_encode_symbol(&enc, cum, values[i]);
            continue;
        }
        const uint32_t extremes[] = {1, 65535, 32768};
        probs[i] = rng_below(&rng, 4) ? 1 + (uint32_t)rng_below(&rng, 65535) : extremes[rng_below(&rng, 3)];
        /* Mostly the likely value, sometimes the unlikely one. */
        int likely = probs[i] >= 32768;
        values[i] = rng_below(&rng, 10) ? likely : !likely;
        lmc_rc_encode_bit(&enc, probs[i], values[i]);
    }
    assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, out.data, out.size);
    for (int i = 0; i < count; i++) {
        int got = probs[i] ? lmc_rc_decode_bit(&dec, probs[i]) : lmc_rc_decode_symbol(&dec, cum, n);
        assert_int_equal(got, values[i]);
    }
    assert_true(lmc_rc_decoder_end_ok(&dec));
    lmc_buf_free(&out);
    free(values);
    free(probs);
}

/* Thousands of "upper half" symbols make a long run of 0xFF bytes that the
 * encoder must hold back; random symbols after it resolve it (with carries). */
static void test_long_ff_runs(void **state) {
    (void)state;
    uint64_t rng = 4;
    const int count = 40000;
    raw_symbol *symbols = xmalloc(count * sizeof *symbols);
    for (int round = 0; round < 20; round++) {
        lmc_buf out;
        lmc_buf_init(&out);
        lmc_rc_encoder enc;
        lmc_rc_encoder_init(&enc, &out);
        int run = 8000 + (int)rng_below(&rng, 8000);
        for (int i = 0; i < count; i++) {
            if (i >= 100 && i < 100 + run)
                symbols[i] = (raw_symbol){1u << 15, 1u << 15, 16};
            else
                symbols[i] = random_raw_symbol(&rng, 1 + (unsigned)rng_below(&rng, 32));
            lmc_rc_encode(&enc, symbols[i].cum, symbols[i].freq, symbols[i].total_bits);
        }
        assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
        size_t longest = 0, current = 0;
        for (size_t i = 0; i < out.size; i++) {
            current = out.data[i] == 0xFF ? current + 1 : 0;
            if (current > longest) longest = current;
        }
        assert_true(longest >= 900);
        lmc_rc_decoder dec;
        lmc_rc_decoder_init(&dec, out.data, out.size);
        for (int i = 0; i < count; i++) {
            uint32_t target = lmc_rc_decode_target(&dec, symbols[i].total_bits);
            assert_true(target >= symbols[i].cum && (uint64_t)target - symbols[i].cum < symbols[i].freq);
            lmc_rc_decode_update(&dec, symbols[i].cum, symbols[i].freq);
        }
        assert_true(lmc_rc_decoder_end_ok(&dec));
        lmc_buf_free(&out);
    }
    free(symbols);
}

static void test_empty_and_certain_streams(void **state) {
    (void)state;
    lmc_buf out;
    lmc_buf_init(&out);
    lmc_rc_encoder enc;
    lmc_rc_encoder_init(&enc, &out);
    assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
    assert_int_equal(out.size, 0);
    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, out.data, out.size);
    assert_false(lmc_rc_decoder_failed(&dec));
    assert_true(lmc_rc_decoder_end_ok(&dec));

    /* Symbols of probability 1 carry no information: still zero bytes. */
    lmc_rc_encoder_init(&enc, &out);
    for (int i = 0; i < 1000; i++) lmc_rc_encode(&enc, 0, 1u << 20, 20);
    assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
    assert_int_equal(out.size, 0);
    lmc_rc_decoder_init(&dec, NULL, 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(lmc_rc_decode_target(&dec, 20), 0);
        lmc_rc_decode_update(&dec, 0, 1u << 20);
    }
    assert_true(lmc_rc_decoder_end_ok(&dec));

    /* One bit of information takes one byte. */
    lmc_rc_encoder_init(&enc, &out);
    lmc_rc_encode(&enc, 1, 1, 1);
    assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
    assert_int_equal(out.size, 1);
    lmc_buf_free(&out);
}

static void test_encoder_rejects_invalid_intervals(void **state) {
    (void)state;
    lmc_buf out;
    lmc_buf_init(&out);
    const raw_symbol invalid[] = {{0, 0, 8}, {200, 57, 8}, {0, 1, 33}};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        lmc_rc_encoder enc;
        lmc_rc_encoder_init(&enc, &out);
        lmc_rc_encode(&enc, invalid[i].cum, invalid[i].freq, invalid[i].total_bits);
        assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_ERR_INTERNAL);
    }
    const uint32_t bad_probs[] = {0, 65536, 100000};
    for (size_t i = 0; i < 3; i++) {
        lmc_rc_encoder enc;
        lmc_rc_encoder_init(&enc, &out);
        lmc_rc_encode_bit(&enc, bad_probs[i], 1);
        assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_ERR_INTERNAL);
    }
    lmc_buf_free(&out);
}

/* ---- damaged input ---- */

typedef struct {
    int truncations, reported, symbols_matched;
} damage_stats;

static void decode_damaged(const uint8_t *data, size_t size, const uint32_t *cum, int n, const int *symbols,
                           int count, damage_stats *stats) {
    uint8_t *copy = size ? xmalloc(size) : NULL; /* ASan sees any read past `size` */
    if (size) memcpy(copy, data, size);
    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, copy, size);
    int matched = 1;
    for (int i = 0; i < count; i++) matched &= lmc_rc_decode_symbol(&dec, cum, n) == symbols[i];
    int reported = lmc_rc_decoder_failed(&dec) || !lmc_rc_decoder_end_ok(&dec);
    stats->truncations++;
    stats->reported += reported;
    stats->symbols_matched += matched;
    free(copy);
}

static void test_truncated_input(void **state) {
    (void)state;
    uint64_t rng = 5;
    const int n = 1000, count = 3000;
    uint32_t *cum = xmalloc((n + 1) * sizeof *cum);
    int *symbols = xmalloc(count * sizeof *symbols);
    damage_stats stats = {0};
    for (int round = 0; round < 40; round++) {
        make_cdf(&rng, n, round % 2 ? SHAPE_ZIPF : SHAPE_RANDOM, cum);
        lmc_buf out;
        lmc_buf_init(&out);
        lmc_rc_encoder enc;
        lmc_rc_encoder_init(&enc, &out);
        for (int i = 0; i < count; i++) {
            symbols[i] = sample_symbol(&rng, cum, n, LMC_CDF_BITS);
            lmc_rc_encode_symbol(&enc, cum, symbols[i]);
        }
        assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
        assert_true(out.size > 100);
        const size_t cuts[] = {2, 3, 7, 8, 9, 64, out.size / 2, out.size - 1, out.size};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            damage_stats one = {0};
            decode_damaged(out.data, out.size - cuts[c], cum, n, symbols, count, &one);
            /* A truncated stream whose symbols still decode is caught by the
             * exact-length check. */
            if (one.symbols_matched) assert_true(one.reported);
            stats.truncations += one.truncations;
            stats.reported += one.reported;
            stats.symbols_matched += one.symbols_matched;
        }
        /* Two or more extra bytes after the stream are noticed as well. */
        lmc_buf_append_byte(&out, (uint8_t)(1 + rng_below(&rng, 255)));
        lmc_buf_append_byte(&out, (uint8_t)rng_next(&rng));
        damage_stats extra = {0};
        decode_damaged(out.data, out.size, cum, n, symbols, count, &extra);
        if (extra.symbols_matched) assert_true(extra.reported);
        lmc_buf_free(&out);
    }
    print_message("truncations: %d, reported by the decoder: %d, symbols still correct: %d\n", stats.truncations,
                  stats.reported, stats.symbols_matched);
    /* Zero padding of a truncated stream decodes wrong symbols, which the
     * coder cannot always tell from right ones; the block checksum catches
     * those. Most cuts are still reported here. */
    assert_true(stats.reported * 10 >= stats.truncations * 9);
    free(cum);
    free(symbols);
}

static void test_garbage_input(void **state) {
    (void)state;
    uint64_t rng = 6;
    const int n = 5000;
    uint32_t *cum = xmalloc((n + 1) * sizeof *cum);
    make_cdf(&rng, n, SHAPE_ZIPF, cum);
    int failures = 0;
    for (int round = 0; round < 3000; round++) {
        size_t size = (size_t)rng_below(&rng, 300);
        uint8_t *data = size ? xmalloc(size) : NULL;
        int fill = (int)rng_below(&rng, 4); /* random, 0x00, 0xFF, or 0xFF then random */
        for (size_t i = 0; i < size; i++)
            data[i] = fill == 1 ? 0x00 : fill == 2 || (fill == 3 && i < 8) ? 0xFF : (uint8_t)rng_next(&rng);
        lmc_rc_decoder dec;
        lmc_rc_decoder_init(&dec, data, size);
        for (int i = 0; i < 2000; i++) {
            switch (rng_below(&rng, 3)) {
            case 0: {
                int s = lmc_rc_decode_symbol(&dec, cum, n);
                assert_true(s >= 0 && s < n);
                break;
            }
            case 1: {
                int bit = lmc_rc_decode_bit(&dec, 1 + (uint32_t)rng_below(&rng, 65535));
                assert_true(bit == 0 || bit == 1);
                break;
            }
            default: {
                raw_symbol sym = random_raw_symbol(&rng, 1 + (unsigned)rng_below(&rng, 32));
                uint32_t target = lmc_rc_decode_target(&dec, sym.total_bits);
                assert_true((uint64_t)target < (1ull << sym.total_bits));
                lmc_rc_decode_update(&dec, sym.cum, sym.freq); /* usually the wrong interval */
                break;
            }
            }
            assert_true(dec.code < dec.range);
        }
        if (fill == 2 && size >= 7) assert_true(lmc_rc_decoder_failed(&dec)); /* code = 2^56-1 >= range */
        failures += lmc_rc_decoder_failed(&dec);
        free(data);
    }
    print_message("garbage streams reported failed: %d of 3000\n", failures);
    assert_true(failures > 2700);

    /* Misuse: an update without a pending target. */
    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, NULL, 0);
    lmc_rc_decode_update(&dec, 0, 1);
    assert_true(lmc_rc_decoder_failed(&dec));
    free(cum);
}

/* ---- CDFs from logits ---- */

/* numerics v1 exactly as cdf.c's comment words it, written independently.
 * Returns the floored total F before the fix-up. */
static uint64_t reference_cdf(const float *logits, int n, uint32_t *cum) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > m) m = logits[i];
    float *e = xmalloc((size_t)n * sizeof *e);
    for (int i = 0; i < n; i++) {
        if (m == -INFINITY) e[i] = 1.0f;
        else if (isnan(logits[i]) || logits[i] == -INFINITY) e[i] = 0.0f;
        else if (logits[i] == m) e[i] = 1.0f;
        else e[i] = lmc_expf(logits[i] - m);
    }
    float scale = (float)(CDF_TOTAL - (uint32_t)n) / lmc_sum8(e, n);
    uint32_t *f = xmalloc((size_t)n * sizeof *f);
    uint64_t floored = 0;
    int a = 0;
    for (int i = 0; i < n; i++) {
        f[i] = 1 + (uint32_t)(e[i] * scale);
        floored += f[i];
    }
    for (int i = 1; i < n; i++)
        if (f[i] > f[a]) a = i;
    if (floored < CDF_TOTAL) {
        f[a] += (uint32_t)(CDF_TOTAL - floored);
    } else {
        uint64_t x = floored - CDF_TOTAL;
        uint64_t d = x < f[a] - 1 ? x : f[a] - 1;
        f[a] -= (uint32_t)d;
        x -= d;
        for (int i = 0; i < n && x > 0; i++) {
            d = x < f[i] - 1 ? x : f[i] - 1;
            f[i] -= (uint32_t)d;
            x -= d;
        }
    }
    cum[0] = 0;
    for (int i = 0; i < n; i++) cum[i + 1] = cum[i] + f[i];
    free(e);
    free(f);
    return floored;
}

static void assert_valid_cdf(const uint32_t *cum, int n) {
    assert_int_equal(cum[0], 0);
    assert_int_equal(cum[n], CDF_TOTAL);
    for (int i = 0; i < n; i++) assert_true(cum[i + 1] > cum[i]);
}

/* Computes the CDF, checks its invariants and that it matches the
 * reference, a second computation with dirty scratch and the scalar code
 * path (LMC_SIMD=scalar) bit for bit. */
static void check_logits(const float *logits, int n) {
    float *scratch = xmalloc((size_t)n * sizeof *scratch);
    uint32_t *cum = xmalloc(((size_t)n + 1) * sizeof *cum);
    uint32_t *again = xmalloc(((size_t)n + 1) * sizeof *again);
    uint32_t *want = xmalloc(((size_t)n + 1) * sizeof *want);
    memset(scratch, 0xA5, (size_t)n * sizeof *scratch);
    lmc_cdf_from_logits(logits, n, scratch, cum);
    assert_valid_cdf(cum, n);
    memset(scratch, 0x7F, (size_t)n * sizeof *scratch);
    memset(again, 0x5A, ((size_t)n + 1) * sizeof *again);
    lmc_simd_force(LMC_SIMD_SCALAR);
    lmc_cdf_from_logits(logits, n, scratch, again);
    lmc_simd_force(-1);
    assert_memory_equal(cum, again, ((size_t)n + 1) * sizeof *cum);
    reference_cdf(logits, n, want);
    assert_memory_equal(cum, want, ((size_t)n + 1) * sizeof *cum);
    free(scratch);
    free(cum);
    free(again);
    free(want);
}

typedef enum {
    LOGITS_NORMAL, LOGITS_SPECIALS, LOGITS_HUGE, LOGITS_EQUAL, LOGITS_ALL_NEG_INF, LOGITS_ALL_NAN,
    LOGITS_POS_INF, LOGITS_TINY, LOGITS_KINDS
} logits_kind;

static void fill_logits(uint64_t *rng, logits_kind kind, float *logits, int n) {
    double sigma = pow(10.0, (double)rng_below(rng, 7) - 2.0); /* 0.01 .. 10^4 */
    for (int i = 0; i < n; i++) {
        float value = (float)(rng_normal(rng) * sigma);
        switch (kind) {
        case LOGITS_SPECIALS: {
            const float specials[] = {NAN, INFINITY, -INFINITY, -0.0f, 3e38f, -3e38f, 1e-45f};
            if (rng_below(rng, 50) == 0) value = specials[rng_below(rng, 7)];
            break;
        }
        case LOGITS_HUGE: value = (float)((rng_unit(rng) * 2.0 - 1.0) * 3.4e38); break;
        case LOGITS_EQUAL: value = 1.5f; break;
        case LOGITS_ALL_NEG_INF: value = -INFINITY; break;
        case LOGITS_ALL_NAN: value = i % 3 ? NAN : -INFINITY; break;
        case LOGITS_POS_INF: value = i % 97 == 5 ? INFINITY : value; break;
        case LOGITS_TINY: value = (float)(rng_normal(rng) * 1e-40); break;
        default: break;
        }
        logits[i] = value;
    }
}

static void test_cdf_invariants(void **state) {
    (void)state;
    uint64_t rng = 7;
    const int sizes[] = {1, 2, 3, 7, 8, 9, 255, 256, 257, 1000, 32000, 128256, 200000, 1 << 20};
    float *logits = xmalloc((1 << 20) * sizeof *logits);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int kind = 0; kind < LOGITS_KINDS; kind++) {
            if (sizes[s] > 200000 && kind != LOGITS_NORMAL) continue; /* time */
            fill_logits(&rng, (logits_kind)kind, logits, sizes[s]);
            check_logits(logits, sizes[s]);
        }
    }
    for (int trial = 0; trial < 300; trial++) {
        int n = 2 + (int)rng_below(&rng, trial < 250 ? 600 : 60000);
        fill_logits(&rng, (logits_kind)rng_below(&rng, LOGITS_KINDS), logits, n);
        check_logits(logits, n);
    }
    free(logits);
}

static void test_cdf_special_cases(void **state) {
    (void)state;
    uint32_t cum[5];
    float scratch[4];
    /* All -inf or NaN: uniform weights. (float)(2^28 - 4) rounds to 2^28,
     * so each frequency floors to 2^26 + 1 and symbol 0, the lowest index
     * of the largest, gives back the 4 counts of overshoot. */
    const float none[4] = {-INFINITY, NAN, -INFINITY, NAN};
    lmc_cdf_from_logits(none, 4, scratch, cum);
    assert_int_equal(cum[1], (1u << 26) + 1 - 4);
    for (int i = 1; i < 4; i++) assert_int_equal(cum[i + 1] - cum[i], (1u << 26) + 1);
    /* +inf logits share the mass; everything else gets the floor of 1. */
    const float infinite[4] = {INFINITY, 1e30f, INFINITY, NAN};
    lmc_cdf_from_logits(infinite, 4, scratch, cum);
    assert_int_equal(cum[1], (1u << 27) + 1 - 4);
    assert_int_equal(cum[2] - cum[1], 1);
    assert_int_equal(cum[3] - cum[2], (1u << 27) + 1);
    assert_int_equal(cum[4] - cum[3], 1);
    /* One symbol. */
    const float one[1] = {-7.0f};
    lmc_cdf_from_logits(one, 1, scratch, cum);
    assert_int_equal(cum[1], CDF_TOTAL);
}

/* Frequencies follow the softmax: within the floor and a small rounding. */
static void test_cdf_matches_softmax(void **state) {
    (void)state;
    uint64_t rng = 8;
    const int n = 32000;
    float *logits = xmalloc(n * sizeof *logits), *scratch = xmalloc(n * sizeof *scratch);
    uint32_t *cum = xmalloc((n + 1) * sizeof *cum);
    double *p = xmalloc(n * sizeof *p);
    for (int trial = 0; trial < 10; trial++) {
        double sigma = 1.0 + trial;
        double max = -INFINITY, sum = 0.0;
        for (int i = 0; i < n; i++) {
            logits[i] = (float)(rng_normal(&rng) * sigma);
            if (logits[i] > max) max = logits[i];
        }
        for (int i = 0; i < n; i++) sum += p[i] = exp(logits[i] - max);
        lmc_cdf_from_logits(logits, n, scratch, cum);
        int argmax = 0;
        for (int i = 0; i < n; i++) {
            if (logits[i] > logits[argmax]) argmax = i;
        }
        for (int i = 0; i < n; i++) {
            if (i == argmax) continue;
            double want = 1.0 + p[i] / sum * (CDF_TOTAL - n);
            assert_true(fabs((double)(cum[i + 1] - cum[i]) - want) <= 1.0 + 1e-5 * want);
        }
    }
    free(logits);
    free(scratch);
    free(cum);
    free(p);
}

/* Float rounding in S can make the floored total overshoot T by more than
 * the largest frequency can give back: the sweep of step 7 must cope. Lane
 * 0 of the sum reaches 2^16 before 2^16 weights of about 0.0038 arrive in
 * it; each is below half an ulp of the lane (2^-8) and vanishes from S, yet
 * e * scale (scale = 272) floors to 1 count, not 0. The overshoot (2^16)
 * dwarfs the largest frequency (273). */
static void test_cdf_overshoot_sweep(void **state) {
    (void)state;
    const int n = 1 << 20;
    float *logits = xmalloc(n * sizeof *logits);
    uint32_t *cum = xmalloc((n + 1) * sizeof *cum);
    for (int i = 0; i < n; i++) logits[i] = (i % 8 == 0 && i >= n / 2) ? -5.573f : 0.0f;
    uint64_t floored = reference_cdf(logits, n, cum);
    assert_true(floored > CDF_TOTAL + 273); /* the case is really hit */
    assert_int_equal(cum[1] - cum[0], 1); /* the most probable symbols paid it */
    assert_int_equal(cum[2] - cum[1], 1);
    check_logits(logits, n);
    free(logits);
    free(cum);
}

static void test_cdf_find(void **state) {
    (void)state;
    uint64_t rng = 9;
    for (int trial = 0; trial < 200; trial++) {
        int n = 2 + (int)rng_below(&rng, 3000);
        uint32_t *cum = xmalloc(((size_t)n + 1) * sizeof *cum);
        make_cdf(&rng, n, (cdf_shape)(trial % 4), cum);
        for (int s = 0; s < n; s++) {
            assert_int_equal(lmc_cdf_find(cum, n, cum[s]), s);
            assert_int_equal(lmc_cdf_find(cum, n, cum[s + 1] - 1), s);
        }
        free(cum);
    }
}

/* Model-style use: a fresh CDF from logits for every symbol. */
static void test_roundtrip_with_logit_cdfs(void **state) {
    (void)state;
    uint64_t rng = 10;
    const int n = 4096, count = 2000;
    float *logits = xmalloc(n * sizeof *logits), *scratch = xmalloc(n * sizeof *scratch);
    uint32_t *cum = xmalloc((n + 1) * sizeof *cum);
    int *symbols = xmalloc(count * sizeof *symbols);
    lmc_buf out;
    lmc_buf_init(&out);
    lmc_rc_encoder enc;
    lmc_rc_encoder_init(&enc, &out);
    uint64_t seed = rng;
    for (int i = 0; i < count; i++) {
        fill_logits(&rng, i % 50 ? LOGITS_NORMAL : LOGITS_SPECIALS, logits, n);
        lmc_cdf_from_logits(logits, n, scratch, cum);
        symbols[i] = sample_symbol(&rng, cum, n, LMC_CDF_BITS);
        lmc_rc_encode_symbol(&enc, cum, symbols[i]);
    }
    assert_int_equal(lmc_rc_encoder_finish(&enc), LMC_OK);
    rng = seed;
    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, out.data, out.size);
    for (int i = 0; i < count; i++) {
        fill_logits(&rng, i % 50 ? LOGITS_NORMAL : LOGITS_SPECIALS, logits, n);
        lmc_cdf_from_logits(logits, n, scratch, cum);
        (void)sample_symbol(&rng, cum, n, LMC_CDF_BITS); /* keep the generator in step */
        assert_int_equal(lmc_rc_decode_symbol(&dec, cum, n), symbols[i]);
    }
    assert_true(lmc_rc_decoder_end_ok(&dec));
    lmc_buf_free(&out);
    free(logits);
    free(scratch);
    free(cum);
    free(symbols);
}

/* Pins numerics v1: a change of any CDF bit breaks existing archives. */
static void test_cdf_golden_hash(void **state) {
    (void)state;
    uint64_t rng = 11;
    const int n = 50000;
    float *logits = xmalloc(n * sizeof *logits), *scratch = xmalloc(n * sizeof *scratch);
    uint32_t *cum = xmalloc((n + 1) * sizeof *cum);
    uint64_t hash = 0xcbf29ce484222325ull;
    for (int trial = 0; trial < 8; trial++) {
        for (int i = 0; i < n; i++) logits[i] = (float)((int)rng_below(&rng, 20001) - 10000) * (0.001f * (float)(trial + 1));
        lmc_cdf_from_logits(logits, n, scratch, cum);
        for (int i = 0; i <= n; i++) {
            hash ^= cum[i];
            hash *= 0x100000001b3ull;
        }
    }
    print_message("cdf golden hash %016llx\n", (unsigned long long)hash);
    assert_true(hash == 0x54ad573498699649ull);
    free(logits);
    free(scratch);
    free(cum);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_symbols),
        cmocka_unit_test(test_roundtrip_all_total_bits),
        cmocka_unit_test(test_bits_mixed_with_symbols),
        cmocka_unit_test(test_long_ff_runs),
        cmocka_unit_test(test_empty_and_certain_streams),
        cmocka_unit_test(test_encoder_rejects_invalid_intervals),
        cmocka_unit_test(test_truncated_input),
        cmocka_unit_test(test_garbage_input),
        cmocka_unit_test(test_cdf_invariants),
        cmocka_unit_test(test_cdf_special_cases),
        cmocka_unit_test(test_cdf_matches_softmax),
        cmocka_unit_test(test_cdf_overshoot_sweep),
        cmocka_unit_test(test_cdf_find),
        cmocka_unit_test(test_roundtrip_with_logit_cdfs),
        cmocka_unit_test(test_cdf_golden_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
