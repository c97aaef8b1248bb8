/*
 * Tests of the deterministic integer transformer engine (src/nn): the two
 * quantisation rules (int8 weights, int16 activations as two int8 planes),
 * the matmul against an exact reference on every SIMD level, the attention
 * kernels against the scalar order, and whole Llama forward passes on
 * random in-memory models: batched, incremental and lockstep evaluation,
 * thread counts and SIMD levels must give identical logits, and a float64
 * reference forward must agree closely.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/detmath.h"
#include "nn/kernels.h"
#include "nn/nn.h"
#include "test_llama_models.h"

/* ---- Deterministic random numbers ---- */

static uint64_t rng_state;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_float(void) {
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

static int rng_int(int n) {
    return (int)(rng_next() % (uint64_t)n);
}

static void *checked_malloc(size_t size) {
    void *p = malloc(size);
    assert_non_null(p);
    return p;
}

static lmc_simd_level best_level(void) {
    lmc_simd_force(-1);
    return lmc_simd_selected();
}

/* ---- The thread pool (the engine's parallel steps) ---- */

typedef struct {
    int *visits;
    int calls; /* ranges seen, to check the pool splits big loops */
} visit_ctx;

static void visit_range(void *ctx_, int begin, int end) {
    visit_ctx *ctx = ctx_;
    assert_true(begin < end);
    for (int i = begin; i < end; i++)
        ctx->visits[i]++;
    __atomic_fetch_add(&ctx->calls, 1, __ATOMIC_RELAXED);
}

/* Every index exactly once, for loops of every size, back to back (the
 * spinning hand-over) and after pauses long enough for the workers to
 * fall asleep (the sleeping one). */
static void test_pool_visits_each_index_once(void **unused) {
    (void)unused;
    static const int threads[] = {1, 2, 3, 8};
    static const int sizes[] = {0, 1, 2, 3, 7, 64, 1000, 100000};
    enum { ROUNDS = 50 };
    int *visits = checked_malloc(100000 * sizeof *visits);
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        lmc_pool *pool = lmc_pool_create(threads[t]);
        assert_non_null(pool);
        assert_int_equal(lmc_pool_threads(pool), threads[t]);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            int n = sizes[k];
            memset(visits, 0, (size_t)(n > 0 ? n : 1) * sizeof *visits);
            visit_ctx ctx = {visits, 0};
            for (int round = 0; round < ROUNDS; round++) {
                lmc_pool_for(pool, n, visit_range, &ctx);
                if (round % 10 == 9) {
                    struct timespec pause = {0, 2000000}; /* 2 ms: the workers go to sleep */
                    nanosleep(&pause, NULL);
                }
            }
            for (int i = 0; i < n; i++)
                assert_int_equal(visits[i], ROUNDS);
            if (threads[t] > 1 && n >= 64)
                assert_true(ctx.calls > ROUNDS); /* split into several ranges */
        }
        lmc_pool_free(pool);
    }
    free(visits);
}

/* ---- lmc_quantize_row ---- */

static void test_quantize_zeros(void **unused) {
    (void)unused;
    float x[5] = {0.0f, -0.0f, 0.0f, 0.0f, 0.0f};
    int8_t q[5] = {1, 1, 1, 1, 1};
    assert_true(lmc_quantize_row(x, 5, q) == 0.0f);
    for (int i = 0; i < 5; i++)
        assert_int_equal(q[i], 0);
    /* So small that max/127 underflows: treated as zeros. */
    float tiny[2] = {1e-45f, -1e-45f};
    assert_true(lmc_quantize_row(tiny, 2, q) == 0.0f);
    assert_int_equal(q[0], 0);
    assert_int_equal(q[1], 0);
}

static void test_quantize_huge_value(void **unused) {
    (void)unused;
    float x[4] = {1.0f, -3e38f, 2.0f, -1.0f};
    int8_t q[4];
    float scale = lmc_quantize_row(x, 4, q);
    assert_true(scale == 3e38f / 127.0f);
    assert_int_equal(q[0], 0);
    assert_int_equal(q[1], -127);
    assert_int_equal(q[2], 0);
    assert_int_equal(q[3], 0);
}

static void test_quantize_rounds_half_away(void **unused) {
    (void)unused;
    /* scale = 127 / 127 = 1 exactly, so x / scale = x. */
    float x[9] = {127.0f, 0.5f, -0.5f, 1.5f, -2.5f, 126.5f, 0.49999997f, -126.49999f, NAN};
    int8_t expected[9] = {127, 1, -1, 2, -3, 127, 0, -126, 0};
    int8_t q[9];
    assert_true(lmc_quantize_row(x, 9, q) == 1.0f);
    for (int i = 0; i < 9; i++)
        assert_int_equal(q[i], expected[i]);
}

static void test_quantize_matches_roundf(void **unused) {
    (void)unused;
    rng_state = 11;
    float x[333];
    int8_t q[333];
    for (int i = 0; i < 333; i++)
        x[i] = rng_float() * 7.0f;
    float scale = lmc_quantize_row(x, 333, q);
    for (int i = 0; i < 333; i++) {
        float v = fminf(fmaxf(x[i] / scale, -127.0f), 127.0f);
        assert_int_equal(q[i], (int)roundf(v));
    }
}

/* ---- lmc_quantize_activation ---- */

/* The int16 value that two planes of an activation row hold. */
static int plane_value(const int8_t *planes, int n, int i) {
    return 256 * planes[i] + planes[n + i];
}

static void test_activation_zeros(void **unused) {
    (void)unused;
    float x[5] = {0.0f, -0.0f, 0.0f, 0.0f, 0.0f};
    int8_t q[10];
    memset(q, 1, sizeof q);
    assert_true(lmc_quantize_activation(x, 5, q) == 0.0f);
    for (int i = 0; i < 10; i++)
        assert_int_equal(q[i], 0);
    float tiny[2] = {1e-42f, -1e-42f};
    memset(q, 1, sizeof q);
    assert_true(lmc_quantize_activation(tiny, 2, q) == 0.0f);
    for (int i = 0; i < 4; i++)
        assert_int_equal(q[i], 0);
}

/* Rounding, the clamp, NaN and every corner of the plane split, scalar and
 * AVX2 (41 values: the AVX2 loop of 32 and a tail). */
static void test_activation_planes(void **unused) {
    (void)unused;
    /* max|x| = 32512 makes the scale exactly 1, so x / scale = x. */
    static const struct {
        float x;
        int hi, lo;
    } cases[] = {{32512.0f, 127, 0},  {-32512.0f, -127, 0}, {0.5f, 0, 1},       {-0.5f, 0, -1},
                 {1.5f, 0, 2},        {-2.5f, 0, -3},       {127.49f, 0, 127},  {127.5f, 1, -128},
                 {-127.5f, 0, -128},  {-128.5f, -1, 127},   {255.5f, 1, 0},     {383.0f, 1, 127},
                 {384.0f, 2, -128},   {32511.0f, 127, -1},  {32383.0f, 126, 127}, {-32383.0f, -126, -127},
                 {0.49999997f, 0, 0}, {NAN, 0, 0},          {-0.0f, 0, 0},      {1000.25f, 4, -24}};
    enum { N = 41 };
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    float x[N];
    int8_t q[2][2 * N];
    for (int i = 0; i < N; i++)
        x[i] = cases[i % n_cases].x;
    const lmc_quantize_fn rules[2] = {lmc_quantize_activation_scalar, lmc_quantize_activation_avx2};
    for (int r = 0; r < (best_level() >= LMC_SIMD_AVX2 ? 2 : 1); r++) {
        assert_true(rules[r](x, N, q[r]) == 1.0f);
        for (int i = 0; i < N; i++) {
            assert_int_equal(q[r][i], cases[i % n_cases].hi);
            assert_int_equal(q[r][N + i], cases[i % n_cases].lo);
        }
    }
}

static void test_activation_matches_roundf(void **unused) {
    (void)unused;
    rng_state = 12;
    enum { N = 333 };
    float x[N];
    int8_t q[2 * N];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++)
            x[i] = rng_float() * (float)(1 + round * round);
        x[rng_int(N)] = 1e30f * (float)(round - 10); /* one outlier, or a zero */
        float scale = lmc_quantize_activation(x, N, q);
        float max_abs = 0.0f;
        for (int i = 0; i < N; i++)
            max_abs = fmaxf(max_abs, fabsf(x[i]));
        assert_true(scale == max_abs / 32512.0f);
        for (int i = 0; i < N; i++) {
            float v = fminf(fmaxf(x[i] / scale, -32512.0f), 32512.0f);
            assert_int_equal(plane_value(q, N, i), (int)roundf(v));
            assert_true(q[i] >= -127 && q[i] <= 127);
        }
    }
}

/* The 7-bit rule: hi all zeros, lo = roundf(clamp(x / scale, -63, 63)),
 * scalar and AVX2 alike (tails, a zero row, NaN, an outlier). */
static void test_activation7_matches_roundf(void **unused) {
    (void)unused;
    rng_state = 13;
    enum { N = 333 };
    float x[N];
    int8_t q[2][2 * N];
    const lmc_quantize_fn rules[2] = {lmc_quantize_activation7_scalar, lmc_quantize_activation7_avx2};
    for (int round = 0; round < 24; round++) {
        const int n = round < 12 ? N : 1 + rng_int(40);
        for (int i = 0; i < n; i++)
            x[i] = round == 5 ? 0.0f : rng_float() * (float)(1 + round * round);
        x[rng_int(n)] = round == 7 ? NAN : round == 9 ? 1e30f : x[0];
        float max_abs = 0.0f;
        for (int i = 0; i < n; i++)
            max_abs = fmaxf(max_abs, fabsf(x[i]));
        for (int r = 0; r < (best_level() >= LMC_SIMD_AVX2 ? 2 : 1); r++) {
            memset(q[r], 0x55, sizeof q[r]);
            float scale = rules[r](x, n, q[r]);
            assert_true(scale == (round == 5 ? 0.0f : max_abs / 63.0f));
            for (int i = 0; i < n; i++) {
                assert_int_equal(q[r][i], 0);
                int want = 0;
                if (scale > 0.0f && x[i] == x[i])
                    want = (int)roundf(fminf(fmaxf(x[i] / scale, -63.0f), 63.0f));
                assert_int_equal(q[r][n + i], want);
            }
        }
        if (best_level() >= LMC_SIMD_AVX2)
            assert_memory_equal(q[0], q[1], 2 * (size_t)n);
    }
}

/* ---- int16 x int8 matmul ---- */

/* Exact dot product of n int8 values, in int64. */
static int64_t dot_exact(const int8_t *x, const int8_t *w, int n) {
    int64_t acc = 0;
    for (int k = 0; k < n; k++)
        acc += (int64_t)x[k] * (int64_t)w[k];
    return acc;
}

/* The contract's expression, with the dot products in int64. */
static void reference_matmul(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                             const float *bias, float *y) {
    const size_t cols = (size_t)w->cols;
    for (int t = 0; t < n_rows; t++)
        for (int o = 0; o < w->rows; o++) {
            const int8_t *row = w->q + (size_t)o * cols, *hi = xq + 2 * (size_t)t * cols, *lo = hi + cols;
            int64_t acc_hi = dot_exact(hi, row, w->cols), acc_lo = dot_exact(lo, row, w->cols);
            assert_true(acc_hi == (int32_t)acc_hi && acc_lo == (int32_t)acc_lo);
            float value = ((float)acc_hi * 256.0f + (float)acc_lo) * (xscale[t] * w->scale[o]);
            y[(size_t)t * (size_t)w->rows + (size_t)o] = bias ? value + bias[o] : value;
        }
}

/* Random activation planes: hi in [-127, 127], lo in [-128, 127]. */
static void random_planes(int8_t *xq, int n_rows, int cols) {
    for (int t = 0; t < n_rows; t++)
        for (int k = 0; k < cols; k++) {
            xq[(2 * (size_t)t) * (size_t)cols + (size_t)k] = (int8_t)(rng_int(255) - 127);
            xq[(2 * (size_t)t + 1) * (size_t)cols + (size_t)k] = (int8_t)(rng_int(256) - 128);
        }
}

/* Random 7-bit activations: hi 0, lo in [-63, 63]. */
static void random_planes7(int8_t *xq, int n_rows, int cols) {
    for (int t = 0; t < n_rows; t++)
        for (int k = 0; k < cols; k++) {
            xq[(2 * (size_t)t) * (size_t)cols + (size_t)k] = 0;
            xq[(2 * (size_t)t + 1) * (size_t)cols + (size_t)k] = (int8_t)(rng_int(127) - 63);
        }
}

/* Rows 0 and 1 (when more rows follow) at the extremes of the rule's
 * range against weight rows of +-127, the largest sums the kernels must keep
 * exact: int16 127 * 256 - 128 and -127 * 256 - 128 (the lo plane's -128
 * included); 7-bit 63 and -63. */
static void saturate_planes(int8_t *xq, int n_rows, int cols, lmc_act_rule rule) {
    static const int8_t int16_planes[2][2] = {{127, -128}, {-127, -128}}, int7_planes[2][2] = {{0, 63}, {0, -63}};
    for (int t = 0; t < 2 && t + 1 < n_rows; t++) {
        const int8_t *v = rule == LMC_ACT_INT7 ? int7_planes[t] : int16_planes[t];
        memset(xq + 2 * (size_t)t * (size_t)cols, v[0], (size_t)cols);
        memset(xq + (2 * (size_t)t + 1) * (size_t)cols, v[1], (size_t)cols);
    }
}

static void check_matmul_shape(int rows, int cols, int n_rows, int with_bias, lmc_act_rule rule, lmc_pool *pools[3]) {
    test_qmat w;
    test_qmat_init(&w, rows, cols);
    int8_t *xq = checked_malloc(2 * (size_t)n_rows * (size_t)cols);
    float *xscale = checked_malloc((size_t)n_rows * sizeof(float));
    float *bias = checked_malloc((size_t)rows * sizeof(float));
    size_t out_size = (size_t)n_rows * (size_t)rows * sizeof(float);
    float *expected = checked_malloc(out_size), *got = checked_malloc(out_size);
    if (rule == LMC_ACT_INT7)
        random_planes7(xq, n_rows, cols);
    else
        random_planes(xq, n_rows, cols);
    saturate_planes(xq, n_rows, cols, rule);
    if (rows > 1) {
        memset(w.q, 127, (size_t)cols);
        memset(w.q + cols, -127, (size_t)cols);
        lmc_qmat_release(&w.m);
        assert_int_equal(lmc_qmat_prepare(&w.m), LMC_OK);
    }
    for (int t = 0; t < n_rows; t++)
        xscale[t] = 0.01f + 0.01f * rng_float();
    for (int o = 0; o < rows; o++)
        bias[o] = rng_float();
    const float *b = with_bias ? bias : NULL;
    reference_matmul(&w.m, xq, xscale, n_rows, b, expected);

    for (int level = 0; level <= (int)best_level(); level++) {
        const lmc_q8_kernel kernel = lmc_q8_kernel_for((lmc_simd_level)level, rule);
        memset(got, 0xff, out_size);
        kernel(&w.m, xq, xscale, n_rows, b, got, 0, rows);
        assert_memory_equal(got, expected, out_size);
        /* A sub-range writes exactly its rows. */
        if (rows > 5) {
            memset(got, 0, out_size);
            kernel(&w.m, xq, xscale, n_rows, b, got, 2, rows - 3);
            for (int t = 0; t < n_rows; t++)
                for (int o = 0; o < rows; o++) {
                    float want = (o >= 2 && o < rows - 3) ? expected[(size_t)t * (size_t)rows + (size_t)o] : 0.0f;
                    assert_true(got[(size_t)t * (size_t)rows + (size_t)o] == want);
                }
        }
        lmc_simd_force(level);
        for (int p = 0; p < 3; p++) {
            memset(got, 0xff, out_size);
            lmc_matmul_q8(pools[p], &w.m, xq, xscale, n_rows, b, got, rule);
            assert_memory_equal(got, expected, out_size);
        }
        lmc_simd_force(-1);
    }
    free(xq);
    free(xscale);
    free(bias);
    free(expected);
    free(got);
    test_qmat_free(&w);
}

static void test_matmul_all_levels_exact(void **unused) {
    (void)unused;
    rng_state = 1;
    lmc_pool *pools[3] = {lmc_pool_create(1), lmc_pool_create(2), lmc_pool_create(8)};
    for (int p = 0; p < 3; p++)
        assert_non_null(pools[p]);
    /* 1024 and 1025: the widest matrix of the AVX2 int16 kernel and the
     * narrowest of its two-plane kernel. */
    static const int cols_list[] = {1, 7, 31, 32, 33, 63, 64, 65, 100, 172, 256, 300, 1000, 1024, 1025};
    static const int rows_list[] = {1, 3, 4, 5, 8, 13, 37, 300};
    static const int n_rows_list[] = {1, 2, 3, 4, 5, 9, 17, 70};
    for (size_t c = 0; c < sizeof cols_list / sizeof cols_list[0]; c++)
        for (size_t r = 0; r < sizeof rows_list / sizeof rows_list[0]; r++) {
            int n_rows = n_rows_list[(c + r) % (sizeof n_rows_list / sizeof n_rows_list[0])];
            for (int rule = LMC_ACT_INT16; rule <= LMC_ACT_INT7; rule++)
                check_matmul_shape(rows_list[r], cols_list[c], n_rows, (int)((c + r) & 1), (lmc_act_rule)rule,
                                   pools);
        }
    /* Large enough that the pool really splits the work. */
    check_matmul_shape(1000, 256, 130, 1, LMC_ACT_INT16, pools);
    check_matmul_shape(1000, 256, 130, 1, LMC_ACT_INT7, pools);
    for (int p = 0; p < 3; p++)
        lmc_pool_free(pools[p]);
}

static void test_matmul_unprepared_matrix(void **unused) {
    (void)unused;
    rng_state = 2;
    test_qmat w;
    test_qmat_init(&w, 9, 80);
    int8_t xq[3 * 2 * 80];
    float xscale[3] = {0.5f, 0.25f, 1.0f}, expected[27], got[27];
    random_planes(xq, 3, 80);
    reference_matmul(&w.m, xq, xscale, 3, NULL, expected);
    lmc_qmat unprepared = w.m;
    unprepared.row_sum = NULL;
    lmc_matmul_q8(NULL, &unprepared, xq, xscale, 3, NULL, got, LMC_ACT_INT16);
    assert_memory_equal(got, expected, sizeof got);
    random_planes7(xq, 3, 80);
    reference_matmul(&w.m, xq, xscale, 3, NULL, expected);
    lmc_matmul_q8(NULL, &unprepared, xq, xscale, 3, NULL, got, LMC_ACT_INT7);
    assert_memory_equal(got, expected, sizeof got);
    test_qmat_free(&w);
}

/* ---- Attention kernels ---- */

/* Transposes n row-major keys into the key block layout of kernels.h; the
 * unused positions of the last block get other values, which must not
 * change any stored score. */
static void pack_keys(const float *rows, int hd, int n, float *blocks) {
    int padded = (n + LMC_ATTN_KEY_BLOCK - 1) / LMC_ATTN_KEY_BLOCK * LMC_ATTN_KEY_BLOCK;
    for (int t = 0; t < padded; t++)
        for (int d = 0; d < hd; d++)
            blocks[lmc_attn_key_index(hd, t, d)] = t < n ? rows[(size_t)t * (size_t)hd + (size_t)d] : rng_float() * 1e30f;
}

static void test_attention_kernels_match_scalar(void **unused) {
    (void)unused;
    rng_state = 3;
    if (best_level() < LMC_SIMD_AVX2)
        skip();
    static const int head_dims[] = {2, 4, 6, 8, 12, 24, 32, 40, 64, 72, 128, 136};
    enum { MAX_KEYS = 37, MAX_HD = 136, PADDED_KEYS = 48 };
    float *keys = checked_malloc(MAX_KEYS * MAX_HD * sizeof(float));
    float *blocks = checked_malloc(PADDED_KEYS * MAX_HD * sizeof(float));
    enum { MAX_QUERIES = 3 };
    float q[MAX_HD], weights[MAX_QUERIES * MAX_KEYS], sums[MAX_QUERIES] = {3.0f, 0.75f, 5.0f};
    float want[MAX_QUERIES * MAX_HD], got[MAX_QUERIES * MAX_HD];
    for (size_t h = 0; h < sizeof head_dims / sizeof head_dims[0]; h++) {
        int hd = head_dims[h];
        for (int n = 1; n <= MAX_KEYS; n += 3) {
            for (int i = 0; i < n * hd; i++)
                keys[i] = rng_float() * 3.0f;
            pack_keys(keys, hd, n, blocks);
            for (int i = 0; i < hd; i++)
                q[i] = rng_float() * 3.0f;
            for (int i = 0; i < MAX_QUERIES; i++)
                for (int t = 0; t < n; t++)
                    weights[i * MAX_KEYS + t] = rng_float() + 1.0f;
            lmc_attn_scores_scalar(q, blocks, hd, n, 0.125f, want);
            for (int t = 0; t < n; t++)
                assert_true(want[t] == lmc_dot8(q, keys + (size_t)t * (size_t)hd, hd) * 0.125f);
            lmc_attn_scores_avx2(q, blocks, hd, n, 0.125f, got);
            assert_memory_equal(got, want, (size_t)n * sizeof(float));
            if (best_level() >= LMC_SIMD_AVX512) {
                lmc_attn_scores_avx512(q, blocks, hd, n, 0.125f, got);
                assert_memory_equal(got, want, (size_t)n * sizeof(float));
            }
            /* Each query of a group gets the same bits as that query alone. */
            float alone[MAX_HD];
            for (int queries = 1; queries <= MAX_QUERIES; queries++) {
                float group_q[MAX_QUERIES * MAX_HD], rows[MAX_QUERIES * MAX_KEYS];
                for (int i = 0; i < queries * hd; i++)
                    group_q[i] = rng_float() * 3.0f;
                lmc_attn_scores_group_avx2(group_q, queries, blocks, hd, n, 0.125f, rows, MAX_KEYS);
                for (int i = 0; i < queries; i++) {
                    lmc_attn_scores_scalar(group_q + i * hd, blocks, hd, n, 0.125f, want);
                    assert_memory_equal(rows + i * MAX_KEYS, want, (size_t)n * sizeof(float));
                }

                lmc_attn_mix_scalar(weights, MAX_KEYS, sums, queries, keys, hd, n, want);
                lmc_attn_mix_avx2(weights, MAX_KEYS, sums, queries, keys, hd, n, got);
                assert_memory_equal(got, want, (size_t)queries * (size_t)hd * sizeof(float));
                if (best_level() >= LMC_SIMD_AVX512) {
                    lmc_attn_mix_avx512(weights, MAX_KEYS, sums, queries, keys, hd, n, got);
                    assert_memory_equal(got, want, (size_t)queries * (size_t)hd * sizeof(float));
                }
                lmc_attn_mix_scalar(weights + (queries - 1) * MAX_KEYS, MAX_KEYS, &sums[queries - 1], 1, keys, hd, n, alone);
                assert_memory_equal(alone, want + (size_t)(queries - 1) * (size_t)hd, (size_t)hd * sizeof(float));
            }
        }
    }
    free(blocks);
    free(keys);
}

/* ---- int8 attention (numerics v3) ---- */

/* Random int8 keys and values of n positions (plain rows of head_dim) in
 * the kernels' layouts; the unused positions of the last block and pair
 * get random bytes, which no result may depend on. */
static void pack_int8(const int8_t *rows, int hd, int n, int8_t *keys, int8_t *values) {
    const int padded = lmc_attn8_padded_dim(hd);
    const int whole = (n + LMC_ATTN8_KEY_BLOCK - 1) / LMC_ATTN8_KEY_BLOCK * LMC_ATTN8_KEY_BLOCK;
    for (int t = 0; t < whole; t++)
        for (int d = 0; d < padded; d++) {
            int8_t v = t < n && d < hd ? rows[(size_t)t * (size_t)hd + (size_t)d] : (int8_t)rng_int(256);
            keys[lmc_attn8_key_index(padded, t, d)] = d < hd || t >= n ? v : 0; /* padding dims are zeros */
            if (d < hd)
                values[lmc_attn8_value_index(hd, t, d)] = v;
        }
}

static int8_t random_int8(int limit) {
    return (int8_t)(rng_int(2 * limit + 1) - limit);
}

/* The scalar kernels against the formulas of kernels.h on plain rows, and
 * the AVX2 kernels against the scalar ones bit for bit: head sizes with
 * partial groups of 4 and 32, odd position counts, spans past the AVX2
 * mix's 512-position int32 chunks, and extreme bytes. */
static void test_attention8_kernels(void **unused) {
    (void)unused;
    rng_state = 8;
    static const int head_dims[] = {2, 6, 12, 32, 40, 64, 100, 128};
    static const int counts[] = {1, 2, 7, 8, 9, 31, 64, 333, 512, 513, 1100};
    enum { MAX_N = 1100, MAX_HD = 128, QUERIES = 3 };
    int8_t *rows = checked_malloc(MAX_N * MAX_HD), *keys = checked_malloc((MAX_N + 8) * MAX_HD);
    int8_t *values = checked_malloc((MAX_N + 8) * MAX_HD);
    float *k_scale = checked_malloc((MAX_N + 8) * sizeof(float)), *v_scale = checked_malloc((MAX_N + 8) * sizeof(float));
    int32_t *k_sum = checked_malloc((MAX_N + 8) * sizeof(int32_t));
    float *want = checked_malloc(QUERIES * MAX_N * sizeof(float)), *got = checked_malloc(QUERIES * MAX_N * sizeof(float));
    int16_t *wq = checked_malloc(QUERIES * (MAX_N + 2) * sizeof(int16_t));
    int16_t *wq2 = checked_malloc((MAX_N + 2) * sizeof(int16_t));
    int8_t q[QUERIES * MAX_HD];
    float factor[QUERIES] = {0.01f, -0.3f, 2.5f}, w_scale[QUERIES], sums[QUERIES];
    for (size_t h = 0; h < sizeof head_dims / sizeof head_dims[0]; h++)
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            const int hd = head_dims[h], n = counts[c], padded = lmc_attn8_padded_dim(hd);
            const int extreme = (int)(c % 3) == 0; /* all keys -127 or 127, queries +-63 */
            for (int i = 0; i < n * hd; i++)
                rows[i] = extreme ? (int8_t)(rng_int(2) ? 127 : -127) : random_int8(127);
            pack_int8(rows, hd, n, keys, values);
            for (int t = 0; t < n + 8; t++) {
                k_scale[t] = rng_float() + 1.5f;
                v_scale[t] = t % 5 == 0 ? 0.0f : rng_float() + 1.5f;
                k_sum[t] = 0;
                for (int d = 0; d < hd && t < n; d++)
                    k_sum[t] += rows[(size_t)t * (size_t)hd + (size_t)d];
            }
            for (int i = 0; i < QUERIES; i++)
                for (int d = 0; d < padded; d++)
                    q[i * padded + d] = d >= hd ? 0 : extreme ? (int8_t)(rng_int(2) ? 63 : -63) : random_int8(63);
            for (int queries = 1; queries <= QUERIES; queries++) {
                lmc_attn8_scores_scalar(q, factor, queries, keys, k_scale, k_sum, hd, n, want, MAX_N);
                for (int i = 0; i < queries; i++)
                    for (int t = 0; t < n; t++) {
                        int32_t dot = 0;
                        for (int d = 0; d < hd; d++)
                            dot += q[i * padded + d] * rows[(size_t)t * (size_t)hd + (size_t)d];
                        assert_true(want[i * MAX_N + t] == (float)dot * (factor[i] * k_scale[t]));
                    }
                lmc_attn8_scores_avx2(q, factor, queries, keys, k_scale, k_sum, hd, n, got, MAX_N);
                for (int i = 0; i < queries; i++)
                    assert_memory_equal(got + i * MAX_N, want + i * MAX_N, (size_t)n * sizeof(float));
            }
            /* Weights from softmax-like e (with exact zeros and a NaN-free
             * maximum), then the mix. */
            for (int i = 0; i < QUERIES; i++) {
                float *e = want + i * MAX_N;
                for (int t = 0; t < n; t++)
                    e[t] = t % 7 == 3 ? 0.0f : lmc_expf(-fabsf(rng_float() * 20.0f));
                w_scale[i] = lmc_attn8_weights_scalar(e, v_scale, n, wq + i * (MAX_N + 2));
                wq2[n] = 12345;
                assert_true(lmc_attn8_weights_avx2(e, v_scale, n, wq2) == w_scale[i]);
                assert_memory_equal(wq2, wq + i * (MAX_N + 2), (size_t)(n + n % 2) * sizeof(int16_t));
                sums[i] = 1.0f + (float)i;
            }
            for (int queries = 1; queries <= QUERIES; queries++) {
                lmc_attn8_mix_scalar(wq, MAX_N + 2, w_scale, sums, queries, values, hd, n, want);
                for (int i = 0; i < queries; i++)
                    for (int d = 0; d < hd; d++) {
                        int64_t acc = 0;
                        for (int t = 0; t < n; t++)
                            acc += (int64_t)wq[i * (MAX_N + 2) + t] * rows[(size_t)t * (size_t)hd + (size_t)d];
                        assert_true(want[i * hd + d] == ((float)acc * w_scale[i]) / sums[i]);
                    }
                if (best_level() >= LMC_SIMD_AVX2) {
                    lmc_attn8_mix_avx2(wq, MAX_N + 2, w_scale, sums, queries, values, hd, n, got);
                    assert_memory_equal(got, want, (size_t)queries * (size_t)hd * sizeof(float));
                }
            }
        }
    free(rows), free(keys), free(values), free(k_scale), free(v_scale), free(k_sum), free(want), free(got);
    free(wq), free(wq2);
}

/* The weights step's rule at its edges: the largest weight is 32767, halves
 * round up, all-zero inputs give zeros and scale 0, NaN products give 0. */
static void test_attention8_weights_rule(void **unused) {
    (void)unused;
    const lmc_attn8_weights_fn fns[2] = {lmc_attn8_weights_scalar, lmc_attn8_weights_avx2};
    for (int f = 0; f < (best_level() >= LMC_SIMD_AVX2 ? 2 : 1); f++) {
        float e[17], vs[17];
        int16_t wq[18];
        for (int t = 0; t < 17; t++)
            e[t] = 1.0f, vs[t] = 0.0f;
        assert_true(fns[f](e, vs, 17, wq) == 0.0f);
        for (int t = 0; t < 18; t++)
            assert_int_equal(wq[t], 0);
        for (int t = 0; t < 17; t++)
            vs[t] = 1.0f, e[t] = (float)t / 32767.0f * 2.0f; /* max 32/32767: r = 1023.96875 */
        e[5] = NAN;
        float scale = fns[f](e, vs, 17, wq);
        assert_true(scale == e[16] / 32767.0f);
        assert_int_equal(wq[16], 32767);
        assert_int_equal(wq[5], 0);
        assert_int_equal(wq[0], 0);
        assert_int_equal(wq[17], 0);
        for (int t = 1; t < 16; t++) {
            float x = (e[t] * vs[t]) * (32767.0f / e[16]);
            if (t != 5)
                assert_int_equal(wq[t], (int)floorf(x + 0.5f));
        }
    }
}

/* ---- Per-row float operations ---- */

/* Values that reach every branch of lmc_expf: normal, subnormal results,
 * underflow to 0, overflow, the exact limits, NaN and infinities. */
static const float special_values[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -87.0f, -87.5f, -88.0f, -100.0f,
                                       -103.9f, -104.0f, -104.1f, -150.0f, 88.0f, 88.5f, 88.7f, 88.75f,
                                       89.0f, 89.1f, -88.5f, -88.9f, 1e30f, -1e30f, 1e-40f, INFINITY, -INFINITY, NAN};

static float wide_random(void) {
    int n_special = (int)(sizeof special_values / sizeof special_values[0]);
    int pick = rng_int(4 * n_special);
    return pick < n_special ? special_values[pick] : rng_float() * 110.0f;
}

/* Bit for bit, except that any two NaNs match: the x86 hadd instruction
 * adds its pair in the other order, which only shows in which NaN payload
 * survives (and a NaN never reaches a valid CDF anyway). */
static void assert_same_floats(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) {
        if (a[i] != a[i] && b[i] != b[i])
            continue;
        assert_memory_equal(&a[i], &b[i], sizeof(float));
    }
}

static void test_rowops_match_scalar(void **unused) {
    (void)unused;
    rng_state = 4;
    if (best_level() < LMC_SIMD_AVX2)
        skip();
    enum { N = 300 };
    float x[N], a[N], b[N], up[N];
    int8_t qa[2 * N], qb[2 * N];
    for (int round = 0; round < 400; round++) {
        int n = 1 + rng_int(round < 200 ? 40 : N);
        for (int i = 0; i < n; i++) {
            /* Narrow values keep whole vectors in lmc_expf's usual range. */
            x[i] = round % 4 == 1 ? rng_float() * 40.0f : wide_random();
            up[i] = rng_float() * 4.0f;
        }
        /* Softmax with max 0: outputs are lmc_expf of the inputs themselves. */
        if (round % 2 == 0) {
            x[0] = 0.0f;
            for (int i = 1; i < n; i++)
                if (x[i] > 0.0f || x[i] != x[i])
                    x[i] = -x[i] == -x[i] ? -x[i] : -1.0f;
        }
        memcpy(a, x, sizeof x);
        memcpy(b, x, sizeof x);
        float sum_a = lmc_softmax_scalar(a, n), sum_b = lmc_softmax_avx2(b, n);
        assert_same_floats(&sum_a, &sum_b, 1);
        assert_same_floats(a, b, n);
        if (round % 2 == 0)
            for (int i = 0; i < n; i++) {
                float e = lmc_expf(x[i]);
                assert_same_floats(&b[i], &e, 1);
            }

        lmc_swiglu_scalar(x, up, n, a);
        lmc_swiglu_avx2(x, up, n, b);
        assert_same_floats(a, b, n);

        for (int i = 0; i < n; i++)
            x[i] = round % 3 == 0 ? wide_random() : rng_float() * (float)(1 + round);
        float scale_a = lmc_quantize_row_scalar(x, n, qa), scale_b = lmc_quantize_row_avx2(x, n, qb);
        assert_memory_equal(&scale_a, &scale_b, sizeof scale_a);
        assert_memory_equal(qa, qb, (size_t)n);
        scale_a = lmc_quantize_activation_scalar(x, n, qa);
        scale_b = lmc_quantize_activation_avx2(x, n, qb);
        assert_memory_equal(&scale_a, &scale_b, sizeof scale_a);
        assert_memory_equal(qa, qb, 2 * (size_t)n);
    }
}

/* The kernels of lmc_cdf_from_logits: NaN mapping and maximum, frequencies
 * with their total and first largest (ties are common: weights drawn from a
 * few values), and running sums; every length, so every tail is hit. */
static void test_cdf_kernels_match_scalar(void **unused) {
    (void)unused;
    rng_state = 5;
    if (best_level() < LMC_SIMD_AVX2)
        skip();
    enum { N = 300 };
    float x[N], va[N], vb[N];
    uint32_t fa[N + 1], fb[N + 1];
    for (int round = 0; round < 600; round++) {
        int n = 1 + rng_int(round < 300 ? 40 : N);
        for (int i = 0; i < n; i++)
            x[i] = round % 4 == 0 ? -INFINITY : wide_random();
        float ma = lmc_cdf_values_scalar(x, n, va), mb = lmc_cdf_values_avx2(x, n, vb);
        assert_same_floats(&ma, &mb, 1);
        assert_memory_equal(va, vb, (size_t)n * sizeof *va);

        const int levels = 1 + rng_int(5);
        for (int i = 0; i < n; i++)
            x[i] = round % 3 == 0 ? (float)rng_int(levels) / (float)levels : 0.5f + 0.5f * rng_float();
        float scale = (float)(1u << 28) / (float)(1 + rng_int(1 << 20));
        int argmax_a = -1, argmax_b = -2;
        uint64_t total_a = lmc_cdf_freqs_scalar(x, n, scale, fa, &argmax_a);
        uint64_t total_b = lmc_cdf_freqs_avx2(x, n, scale, fb, &argmax_b);
        assert_true(total_a == total_b);
        assert_int_equal(argmax_a, argmax_b);
        assert_memory_equal(fa, fb, (size_t)n * sizeof *fa);

        for (int i = 0; i <= n; i++)
            fa[i] = fb[i] = (uint32_t)rng_next();
        lmc_prefix_sums_scalar(fa, n);
        lmc_prefix_sums_avx2(fb, n);
        assert_memory_equal(fa, fb, ((size_t)n + 1) * sizeof *fa);
    }
}

/* ---- Evaluation schedules ---- */

enum { N_POS = 72, N_SEQS = 3, MAX_POS = 80 };

/* Logits of sequence 0 (tokens[0]), all positions in one call. */
static void run_batched(const lmc_llama *m, lmc_nn_rules rules, lmc_pool *pool, int max_rows, int32_t tokens[N_SEQS][N_POS],
                        float *logits) {
    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(m, rules, 1, MAX_POS, max_rows, &s), LMC_OK);
    int seqs[N_POS], positions[N_POS];
    for (int i = 0; i < N_POS; i++)
        seqs[i] = 0, positions[i] = i;
    lmc_llama_forward(s, pool, seqs, tokens[0], positions, N_POS, logits);
    lmc_llama_state_free(s);
}

/* One call per position. */
static void run_incremental(const lmc_llama *m, lmc_nn_rules rules, lmc_pool *pool, int32_t tokens[N_SEQS][N_POS],
                            float *logits) {
    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(m, rules, 1, MAX_POS, 1, &s), LMC_OK);
    for (int i = 0; i < N_POS; i++) {
        int seq = 0;
        lmc_llama_forward(s, pool, &seq, &tokens[0][i], &i, 1, logits + (size_t)i * (size_t)m->vocab);
    }
    lmc_llama_state_free(s);
}

/* Sequence 0 one position per call together with the other sequences
 * (stored in slots 2, 0, 1 so that slot numbers differ too); sequence 1 is
 * first prefilled 9 positions at once together with sequence 2's first
 * position, then goes on in lockstep at a different offset. */
static void run_lockstep(const lmc_llama *m, lmc_nn_rules rules, lmc_pool *pool, int32_t tokens[N_SEQS][N_POS],
                         float *logits) {
    lmc_llama_state *s;
    const int slot[N_SEQS] = {2, 0, 1};
    const int vocab = m->vocab;
    assert_int_equal(lmc_llama_state_create(m, rules, N_SEQS, MAX_POS, 16, &s), LMC_OK);
    float *scratch = checked_malloc(16 * (size_t)vocab * sizeof(float));
    int seqs[16], positions[16];
    int32_t toks[16];
    int n = 0;
    for (int i = 0; i < 9; i++)
        seqs[n] = slot[1], positions[n] = i, toks[n++] = tokens[1][i];
    seqs[n] = slot[2], positions[n] = 0, toks[n++] = tokens[2][0];
    lmc_llama_forward(s, pool, seqs, toks, positions, n, scratch);
    for (int step = 0; step < N_POS; step++) {
        n = 0;
        if (step + 1 < N_POS)
            seqs[n] = slot[2], positions[n] = step + 1, toks[n++] = tokens[2][step + 1];
        seqs[n] = slot[0], positions[n] = step, toks[n++] = tokens[0][step];
        if (step + 9 < N_POS)
            seqs[n] = slot[1], positions[n] = step + 9, toks[n++] = tokens[1][step + 9];
        lmc_llama_forward(s, pool, seqs, toks, positions, n, scratch);
        int own = step + 1 < N_POS ? 1 : 0;
        memcpy(logits + (size_t)step * (size_t)vocab, scratch + (size_t)own * (size_t)vocab,
               (size_t)vocab * sizeof(float));
    }
    free(scratch);
    lmc_llama_state_free(s);
}

/* ---- float64 reference forward ---- */

static double round_half_away(double v) {
    return v < 0 ? -floor(-v + 0.5) : floor(v + 0.5);
}

/* The engine's recipe in double: activations quantised to +-qmax,
 * dequantised weights. */
static void ref_matmul(const lmc_qmat *w, double qmax, const double *x, const float *bias, double *y) {
    double max_abs = 0;
    for (int k = 0; k < w->cols; k++)
        max_abs = fmax(max_abs, fabs(x[k]));
    double scale = max_abs / qmax;
    for (int o = 0; o < w->rows; o++) {
        double acc = 0;
        for (int k = 0; k < w->cols; k++) {
            double q = scale > 0 ? round_half_away(x[k] / scale) : 0.0;
            acc += q * (double)w->q[(size_t)o * (size_t)w->cols + (size_t)k];
        }
        y[o] = acc * scale * (double)w->scale[o] + (bias ? (double)bias[o] : 0.0);
    }
}

static void ref_rms_norm(const double *x, const float *w, int dim, double eps, double *out) {
    double ss = 0;
    for (int i = 0; i < dim; i++)
        ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / dim + eps);
    for (int i = 0; i < dim; i++)
        out[i] = x[i] * r * (double)w[i];
}

static void ref_rope(double *v, int hd, int pos, double base, int neox) {
    for (int i = 0; i < hd / 2; i++) {
        double angle = pos * pow(base, -2.0 * i / hd);
        int a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
        double x0 = v[a], x1 = v[b];
        v[a] = x0 * cos(angle) - x1 * sin(angle);
        v[b] = x0 * sin(angle) + x1 * cos(angle);
    }
}

/* x[0..n) quantised to +-qmax and back (the engine's rules in double). */
static void ref_quantize(double *x, int n, double qmax) {
    double max_abs = 0;
    for (int i = 0; i < n; i++)
        max_abs = fmax(max_abs, fabs(x[i]));
    double scale = max_abs / qmax;
    for (int i = 0; i < n; i++)
        x[i] = scale > 0 ? round_half_away(x[i] / scale) * scale : 0.0;
}

/* int8 attention's weights: e_t * vs_t to 15 bits of their maximum, and
 * back over the values' scales (the quantised values are then x_t * vs_t). */
static void ref_weights8(double *e, const double *v_scale, int n) {
    double max = 0;
    for (int t = 0; t < n; t++)
        max = fmax(max, e[t] * v_scale[t]);
    for (int t = 0; t < n; t++)
        e[t] = max > 0 && v_scale[t] > 0 ? floor(e[t] * v_scale[t] / max * 32767.0 + 0.5) * max / 32767.0 / v_scale[t]
                                         : 0.0;
}

static double max_abs_of(const double *x, int n) {
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* Logits of every position of one sequence by `rules`. */
static void reference_forward(const lmc_llama *m, lmc_nn_rules rules, const int32_t *tokens, int n, double *logits) {
    const double qmax = rules.act == LMC_ACT_INT7 ? LMC_ACT7_QMAX : LMC_ACT_QMAX;
    const int attn8 = rules.attn == LMC_ATTN_INT8;
    const int dim = m->dim, hd = m->head_dim, q_dim = m->n_heads * hd, kv_dim = m->n_kv_heads * hd;
    const int hidden = m->hidden_dim, group = m->n_heads / m->n_kv_heads;
    size_t big = (size_t)LMC_MAX(LMC_MAX(dim, q_dim), hidden);
    double *x = checked_malloc(dim * sizeof(double)), *xb = checked_malloc(big * sizeof(double));
    double *q = checked_malloc(q_dim * sizeof(double)), *att = checked_malloc(q_dim * sizeof(double));
    double *gate = checked_malloc(hidden * sizeof(double)), *up = checked_malloc(hidden * sizeof(double));
    double *proj = checked_malloc(dim * sizeof(double)), *scores = checked_malloc(n * sizeof(double));
    double *kc = checked_malloc((size_t)m->n_layers * n * kv_dim * sizeof(double));
    double *vc = checked_malloc((size_t)m->n_layers * n * kv_dim * sizeof(double));
    double *v_scale = checked_malloc((size_t)m->n_layers * n * m->n_kv_heads * sizeof(double));
    for (int pos = 0; pos < n; pos++) {
        for (int i = 0; i < dim; i++)
            x[i] = m->tok_embd[(size_t)tokens[pos] * dim + i];
        for (int layer = 0; layer < m->n_layers; layer++) {
            const lmc_llama_layer *l = &m->layers[layer];
            double *k = kc + ((size_t)layer * n + pos) * kv_dim, *v = vc + ((size_t)layer * n + pos) * kv_dim;
            ref_rms_norm(x, l->attn_norm, dim, m->norm_eps, xb);
            ref_matmul(&l->wq, qmax, xb, l->bq, q);
            ref_matmul(&l->wk, qmax, xb, l->bk, k);
            ref_matmul(&l->wv, qmax, xb, l->bv, v);
            for (int h = 0; h < m->n_heads; h++)
                ref_rope(q + h * hd, hd, pos, m->rope_base, m->rope_neox);
            for (int h = 0; h < m->n_kv_heads; h++)
                ref_rope(k + h * hd, hd, pos, m->rope_base, m->rope_neox);
            for (int h = 0; h < m->n_kv_heads && attn8; h++) {
                v_scale[(size_t)layer * n * m->n_kv_heads + (size_t)pos * m->n_kv_heads + h] = max_abs_of(v + h * hd, hd) / 127;
                ref_quantize(k + h * hd, hd, 127);
                ref_quantize(v + h * hd, hd, 127);
            }
            for (int h = 0; h < m->n_heads && attn8; h++)
                ref_quantize(q + h * hd, hd, LMC_ACT7_QMAX);
            for (int h = 0; h < m->n_heads; h++) {
                int g = h / group;
                double max = -INFINITY, sum = 0;
                for (int t = 0; t <= pos; t++) {
                    const double *kt = kc + ((size_t)layer * n + t) * kv_dim + g * hd;
                    double dot = 0;
                    for (int d = 0; d < hd; d++)
                        dot += q[h * hd + d] * kt[d];
                    scores[t] = dot / sqrt((double)hd);
                    max = fmax(max, scores[t]);
                }
                for (int t = 0; t <= pos; t++)
                    sum += scores[t] = exp(scores[t] - max);
                if (attn8) {
                    double vs[MAX_POS];
                    for (int t = 0; t <= pos; t++)
                        vs[t] = v_scale[(size_t)layer * n * m->n_kv_heads + (size_t)t * m->n_kv_heads + g];
                    ref_weights8(scores, vs, pos + 1);
                }
                for (int d = 0; d < hd; d++) {
                    double acc = 0;
                    for (int t = 0; t <= pos; t++)
                        acc += scores[t] * vc[((size_t)layer * n + t) * kv_dim + g * hd + d];
                    att[h * hd + d] = acc / sum;
                }
            }
            ref_matmul(&l->wo, qmax, att, NULL, proj);
            for (int i = 0; i < dim; i++)
                x[i] += proj[i];
            ref_rms_norm(x, l->ffn_norm, dim, m->norm_eps, xb);
            ref_matmul(&l->w_gate, qmax, xb, NULL, gate);
            ref_matmul(&l->w_up, qmax, xb, NULL, up);
            for (int i = 0; i < hidden; i++)
                xb[i] = gate[i] / (1.0 + exp(-gate[i])) * up[i];
            ref_matmul(&l->w_down, qmax, xb, NULL, proj);
            for (int i = 0; i < dim; i++)
                x[i] += proj[i];
        }
        ref_rms_norm(x, m->out_norm, dim, m->norm_eps, xb);
        ref_matmul(&m->output, qmax, xb, NULL, logits + (size_t)pos * m->vocab);
    }
    free(x), free(xb), free(q), free(att), free(gate), free(up), free(proj), free(scores), free(kc), free(vc), free(v_scale);
}

/* ---- Forward-pass tests ---- */

/* Every schedule, SIMD level and thread count gives the same logits with
 * `rules`, within `tolerance` (relative to the largest logit) of the
 * float64 reference of the same rules. */
static void check_model_rule(const model_config *cfg, uint64_t seed, lmc_nn_rules rules, double tolerance) {
    test_model tm;
    test_model_init(&tm, cfg, seed);
    rng_state = seed;
    const lmc_llama *m = &tm.llama;
    int32_t tokens[N_SEQS][N_POS];
    for (int s = 0; s < N_SEQS; s++)
        for (int i = 0; i < N_POS; i++)
            tokens[s][i] = rng_int(cfg->vocab);
    const size_t size = (size_t)N_POS * (size_t)cfg->vocab * sizeof(float);
    float *expected = checked_malloc(size), *got = checked_malloc(size);
    lmc_pool *pools[3] = {lmc_pool_create(1), lmc_pool_create(2), lmc_pool_create(8)};
    for (int p = 0; p < 3; p++)
        assert_non_null(pools[p]);

    lmc_simd_force(-1);
    run_batched(m, rules, pools[0], N_POS, tokens, expected);
    for (int level = 0; level <= (int)best_level(); level++) {
        lmc_simd_force(level);
        for (int p = 0; p < 3; p++) {
            memset(got, 0, size);
            run_batched(m, rules, pools[p], N_POS, tokens, got);
            assert_memory_equal(got, expected, size);
        }
        memset(got, 0, size);
        run_batched(m, rules, pools[1], 7, tokens, got); /* chunks of max_rows = 7 */
        assert_memory_equal(got, expected, size);
        memset(got, 0, size);
        run_incremental(m, rules, pools[level % 3], tokens, got);
        assert_memory_equal(got, expected, size);
        memset(got, 0, size);
        run_lockstep(m, rules, pools[(level + 1) % 3], tokens, got);
        assert_memory_equal(got, expected, size);
    }
    lmc_simd_force(-1);

    double *ref = checked_malloc((size_t)N_POS * (size_t)cfg->vocab * sizeof(double));
    reference_forward(m, rules, tokens[0], N_POS, ref);
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < (size_t)N_POS * (size_t)cfg->vocab; i++) {
        max_diff = fmax(max_diff, fabs((double)expected[i] - ref[i]));
        max_ref = fmax(max_ref, fabs(ref[i]));
    }
    print_message("model dim %d hd %d, %s activations, %s attention: max |logit - float64 reference| / max |logit| "
                  "= %.3g\n",
                  cfg->dim, m->head_dim, rules.act == LMC_ACT_INT7 ? "7-bit" : "int16",
                  rules.attn == LMC_ATTN_INT8 ? "int8" : "float", max_diff / max_ref);
    assert_true(max_ref > 0.1);
    assert_true(max_diff / max_ref < tolerance);

    free(ref);
    for (int p = 0; p < 3; p++)
        lmc_pool_free(pools[p]);
    free(expected);
    free(got);
    test_model_free(&tm);
}

/* Numerics 1 and 2 within 3e-4 of the reference. Quantising keys, values
 * and queries for int8 attention, the reference's doubles and the engine's
 * floats (apart in the sixth digit) round a value near a tie differently
 * now and then: one step of an int8 key moved logits by up to 7e-4 (int16
 * activations, bound 2e-3), and where that moves a 7-bit activation by one
 * step (1/63 of its row's maximum: numerics 3) by 2% of the largest
 * logit, so there the bound only catches gross errors. */
static void check_model(const model_config *cfg, uint64_t seed) {
    check_model_rule(cfg, seed, lmc_nn_rules_of(1), 3e-4);
    check_model_rule(cfg, seed, lmc_nn_rules_of(2), 3e-4);
    check_model_rule(cfg, seed, (lmc_nn_rules){LMC_ACT_INT16, LMC_ATTN_INT8}, 2e-3);
    check_model_rule(cfg, seed, lmc_nn_rules_of(3), 0.1);
}

static void test_llama_rope_pairs(void **unused) {
    (void)unused;
    const model_config cfg = {.dim = 64, .hidden = 172, .layers = 2, .heads = 4, .kv_heads = 2, .vocab = 256};
    check_model(&cfg, 100);
}

static void test_qwen2_biases_neox(void **unused) {
    (void)unused;
    const model_config cfg = {.dim = 96, .hidden = 172, .layers = 2, .heads = 4, .kv_heads = 2, .vocab = 300,
                              .neox = 1, .biases = 1};
    check_model(&cfg, 200);
}

/* head_dim 12: attention kernels with partial lane groups; no GQA sharing. */
static void test_odd_head_dim(void **unused) {
    (void)unused;
    const model_config cfg = {.dim = 96, .hidden = 100, .layers = 1, .heads = 8, .kv_heads = 8, .vocab = 77};
    check_model(&cfg, 300);
}

/* ---- Sliding windows (lmc_llama_slide) ---- */

enum { SLIDE_WINDOW = 32, SLIDE_STRIDE = 12 };

/* Sequence 0 (tokens[0]) through sliding windows of SLIDE_WINDOW
 * positions: every output's logits, rows in calls of at most `per_call`;
 * with `lockstep`, the other two sequences run beside it in other slots,
 * one position each per call, on a schedule of their own. */
static void run_sliding(const lmc_llama *m, lmc_nn_rules rules, lmc_pool *pool, int per_call, int lockstep,
                        int32_t tokens[N_SEQS][N_POS], float *logits) {
    lmc_llama_state *s;
    const int slot[N_SEQS] = {lockstep ? 1 : 0, 2, 0};
    const int n_seqs = lockstep ? N_SEQS : 1, vocab = m->vocab;
    assert_int_equal(lmc_llama_state_create(m, rules, n_seqs, SLIDE_WINDOW, per_call + 2, &s), LMC_OK);
    float *scratch = checked_malloc((size_t)(per_call + 2) * (size_t)vocab * sizeof(float));
    int seqs[SLIDE_WINDOW + 2], positions[SLIDE_WINDOW + 2], other_pos[N_SEQS] = {0, 0, 5};
    int32_t toks[SLIDE_WINDOW + 2];
    int pos = 0;
    for (int i = 0; i < N_POS;) {
        if (pos == SLIDE_WINDOW) {
            lmc_llama_slide(s, pool, &slot[0], 1, SLIDE_STRIDE, SLIDE_WINDOW);
            pos = SLIDE_WINDOW - SLIDE_STRIDE;
        }
        int n = 0, own = i;
        for (; n < per_call && pos < SLIDE_WINDOW && i < N_POS; n++, i++, pos++)
            seqs[n] = slot[0], positions[n] = pos, toks[n] = tokens[0][i];
        const int own_rows = n;
        for (int o = 1; o < n_seqs; o++) { /* the others: one row each, sliding at their own times */
            if (other_pos[o] == SLIDE_WINDOW) {
                lmc_llama_slide(s, pool, &slot[o], 1, SLIDE_STRIDE, SLIDE_WINDOW);
                other_pos[o] = SLIDE_WINDOW - SLIDE_STRIDE;
            }
            seqs[n] = slot[o], positions[n] = other_pos[o], toks[n++] = tokens[o][(own + o) % N_POS];
            other_pos[o]++;
        }
        if (lockstep && other_pos[2] == 6) /* sequence 2 restarted at 5: fill 0..4 first */
            for (int p = 0; p < 5; p++) {
                int sq = slot[2], pp = p;
                lmc_llama_forward(s, pool, &sq, &tokens[2][p], &pp, 1, NULL);
            }
        lmc_llama_forward(s, pool, seqs, toks, positions, n, scratch);
        memcpy(logits + (size_t)own * (size_t)vocab, scratch, (size_t)own_rows * (size_t)vocab * sizeof(float));
    }
    free(scratch);
    lmc_llama_state_free(s);
}

/* A slide gives the same bits on every SIMD level, thread count, split of
 * rows into calls and slot, with other sequences sliding beside it. */
static void check_slide_deterministic(lmc_nn_rules rules) {
    const model_config cfg = {.dim = 64, .hidden = 172, .layers = 2, .heads = 4, .kv_heads = 2, .vocab = 256};
    test_model tm;
    test_model_init(&tm, &cfg, 500);
    rng_state = 500;
    int32_t tokens[N_SEQS][N_POS];
    for (int q = 0; q < N_SEQS; q++)
        for (int i = 0; i < N_POS; i++)
            tokens[q][i] = rng_int(cfg.vocab);
    const size_t size = (size_t)N_POS * (size_t)cfg.vocab * sizeof(float);
    float *expected = checked_malloc(size), *got = checked_malloc(size), *fresh = checked_malloc(size);
    lmc_pool *pools[2] = {lmc_pool_create(1), lmc_pool_create(3)};
    assert_non_null(pools[0]);
    assert_non_null(pools[1]);
    lmc_simd_force(-1);
    run_sliding(&tm.llama, rules, pools[0], SLIDE_WINDOW, 0, tokens, expected);
    for (int level = 0; level <= (int)best_level(); level++) {
        lmc_simd_force(level);
        for (int p = 0; p < 2; p++) {
            memset(got, 0, size);
            run_sliding(&tm.llama, rules, pools[p], 1 + 6 * p, 0, tokens, got);
            assert_memory_equal(got, expected, size);
            memset(got, 0, size);
            run_sliding(&tm.llama, rules, pools[p], 1, 1, tokens, got);
            assert_memory_equal(got, expected, size);
        }
    }
    lmc_simd_force(-1);
    /* The slid caches differ from re-reading the kept tokens (2 layers: the
     * kept keys and values were made with more context). */
    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(&tm.llama, rules, 1, SLIDE_WINDOW, SLIDE_WINDOW, &s), LMC_OK);
    int seqs[SLIDE_WINDOW], positions[SLIDE_WINDOW];
    int32_t toks[SLIDE_WINDOW];
    toks[0] = tokens[0][0];
    for (int p = 1; p < SLIDE_WINDOW; p++)
        toks[p] = tokens[0][p + SLIDE_STRIDE];
    for (int p = 0; p < SLIDE_WINDOW; p++)
        seqs[p] = 0, positions[p] = p;
    lmc_llama_forward(s, pools[0], seqs, toks, positions, SLIDE_WINDOW - SLIDE_STRIDE, NULL);
    lmc_llama_forward(s, pools[0], seqs, toks + SLIDE_WINDOW - SLIDE_STRIDE, positions + SLIDE_WINDOW - SLIDE_STRIDE,
                      1, fresh);
    assert_memory_not_equal(fresh, expected + (size_t)SLIDE_WINDOW * (size_t)cfg.vocab,
                            (size_t)cfg.vocab * sizeof(float));
    lmc_llama_state_free(s);
    for (int p = 0; p < 2; p++)
        lmc_pool_free(pools[p]);
    free(expected), free(got), free(fresh);
    test_model_free(&tm);
}

static void test_slide_deterministic(void **unused) {
    (void)unused;
    check_slide_deterministic(lmc_nn_rules_of(2));
    check_slide_deterministic(lmc_nn_rules_of(3));
}

/* With one layer a cached key or value depends on its token and position
 * only, so after a slide the next outputs equal (up to the rounding of the
 * keys' second rotation) those of a fresh window holding the sink and the
 * kept tokens at their new positions. */
static void check_slide_moves(const model_config *cfg, uint64_t seed, lmc_nn_rules rules, double tolerance) {
    test_model tm;
    test_model_init(&tm, cfg, seed);
    rng_state = seed;
    const int vocab = cfg->vocab, kept = SLIDE_WINDOW - SLIDE_STRIDE, after = 6;
    int32_t tokens[SLIDE_WINDOW + 6];
    for (int i = 0; i < SLIDE_WINDOW + after; i++)
        tokens[i] = rng_int(vocab);
    int seqs[SLIDE_WINDOW], positions[SLIDE_WINDOW];
    for (int p = 0; p < SLIDE_WINDOW; p++)
        seqs[p] = 0, positions[p] = p;
    const size_t size = (size_t)after * (size_t)vocab * sizeof(float);
    float *slid = checked_malloc(size), *fresh = checked_malloc(size);
    lmc_pool *pool = lmc_pool_create(2);
    assert_non_null(pool);

    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(&tm.llama, rules, 1, SLIDE_WINDOW, SLIDE_WINDOW, &s), LMC_OK);
    lmc_llama_forward(s, pool, seqs, tokens, positions, SLIDE_WINDOW, NULL);
    lmc_llama_slide(s, pool, seqs, 1, SLIDE_STRIDE, SLIDE_WINDOW);
    lmc_llama_forward(s, pool, seqs, tokens + SLIDE_WINDOW, positions + kept, after, slid);
    lmc_llama_state_free(s);

    int32_t window[SLIDE_WINDOW];
    window[0] = tokens[0];
    for (int p = 1; p < kept; p++)
        window[p] = tokens[p + SLIDE_STRIDE];
    memcpy(window + kept, tokens + SLIDE_WINDOW, (size_t)after * sizeof *window);
    assert_int_equal(lmc_llama_state_create(&tm.llama, rules, 1, SLIDE_WINDOW, SLIDE_WINDOW, &s), LMC_OK);
    lmc_llama_forward(s, pool, seqs, window, positions, kept, NULL);
    lmc_llama_forward(s, pool, seqs, window + kept, positions + kept, after, fresh);
    lmc_llama_state_free(s);

    double max_diff = 0, max_fresh = 0;
    for (size_t i = 0; i < (size_t)after * (size_t)vocab; i++) {
        max_diff = fmax(max_diff, fabs((double)slid[i] - (double)fresh[i]));
        max_fresh = fmax(max_fresh, fabs((double)fresh[i]));
    }
    print_message("slide (neox %d, activations %d, attention %d): max |slid - fresh| / max |fresh| = %.3g\n",
                  cfg->neox, (int)rules.act, (int)rules.attn, max_diff / max_fresh);
    assert_true(max_fresh > 0.1);
    assert_true(max_diff / max_fresh < tolerance);
    lmc_pool_free(pool);
    free(slid), free(fresh);
    test_model_free(&tm);
}

static void test_slide_moves_keys_and_values(void **unused) {
    (void)unused;
    const model_config pairs = {.dim = 64, .hidden = 172, .layers = 1, .heads = 4, .kv_heads = 2, .vocab = 256};
    const model_config neox = {.dim = 96, .hidden = 172, .layers = 1, .heads = 4, .kv_heads = 2, .vocab = 300,
                               .neox = 1, .biases = 1};
    for (uint32_t numerics = 1; numerics <= 2; numerics++) {
        check_slide_moves(&pairs, 600, lmc_nn_rules_of(numerics), 1e-4);
        check_slide_moves(&neox, 700, lmc_nn_rules_of(numerics), 1e-4);
    }
    {
        const lmc_nn_rules int8_attention = {LMC_ACT_INT16, LMC_ATTN_INT8};
        check_slide_moves(&pairs, 600, int8_attention, 1e-2);
        check_slide_moves(&neox, 700, int8_attention, 1e-2);
    }
}

static void test_state_rejects_bad_shapes(void **unused) {
    (void)unused;
    const model_config cfg = {.dim = 64, .hidden = 172, .layers = 1, .heads = 4, .kv_heads = 2, .vocab = 50};
    test_model tm;
    test_model_init(&tm, &cfg, 400);
    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(&tm.llama, lmc_nn_rules_of(3), 0, 16, 4, &s), LMC_ERR_PARAM);
    assert_null(s);
    lmc_llama bad = tm.llama;
    bad.n_kv_heads = 3;
    assert_int_equal(lmc_llama_state_create(&bad, lmc_nn_rules_of(3), 1, 16, 4, &s), LMC_ERR_PARAM);
    bad = tm.llama;
    bad.hidden_dim = 171;
    assert_int_equal(lmc_llama_state_create(&bad, lmc_nn_rules_of(3), 1, 16, 4, &s), LMC_ERR_PARAM);
    assert_true(lmc_llama_state_bytes(&tm.llama, lmc_nn_rules_of(2), 2, 16, 4) > 2ull * 2 * 16 * 32 * sizeof(float));
    /* int8 caches: a quarter of the float ones' bytes, and the scales. */
    assert_true(lmc_llama_state_bytes(&tm.llama, lmc_nn_rules_of(3), 2, 256, 4) <
                lmc_llama_state_bytes(&tm.llama, lmc_nn_rules_of(2), 2, 256, 4));
    assert_int_equal(lmc_llama_state_create(&tm.llama, lmc_nn_rules_of(3), 2, 16, 4, &s), LMC_OK);
    lmc_llama_state_free(s);
    test_model_free(&tm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_visits_each_index_once),
        cmocka_unit_test(test_quantize_zeros),
        cmocka_unit_test(test_quantize_huge_value),
        cmocka_unit_test(test_quantize_rounds_half_away),
        cmocka_unit_test(test_quantize_matches_roundf),
        cmocka_unit_test(test_activation_zeros),
        cmocka_unit_test(test_activation_planes),
        cmocka_unit_test(test_activation_matches_roundf),
        cmocka_unit_test(test_activation7_matches_roundf),
        cmocka_unit_test(test_matmul_all_levels_exact),
        cmocka_unit_test(test_matmul_unprepared_matrix),
        cmocka_unit_test(test_attention_kernels_match_scalar),
        cmocka_unit_test(test_attention8_kernels),
        cmocka_unit_test(test_attention8_weights_rule),
        cmocka_unit_test(test_rowops_match_scalar),
        cmocka_unit_test(test_cdf_kernels_match_scalar),
        cmocka_unit_test(test_llama_rope_pairs),
        cmocka_unit_test(test_qwen2_biases_neox),
        cmocka_unit_test(test_odd_head_dim),
        cmocka_unit_test(test_slide_deterministic),
        cmocka_unit_test(test_slide_moves_keys_and_values),
        cmocka_unit_test(test_state_rejects_bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
