/*
 * AVX2 int16 x int8 matmul kernels (integer only, except the dequantising
 * arithmetic and bias add, explicit mul/add intrinsics matching the scalar
 * code). Two kernels compute the same bits; the contract (kernels.h) fixes
 *   acc = (float)dot(hi, w) * 256.0f + (float)dot(lo, w)
 *
 * Narrow matrices (at most NARROW_MAX_COLS columns, every matrix of the shipped
 * models) take the int16 kernel: it rebuilds each activation's int16
 * q = 256 * hi + lo and multiplies it with the sign-extended weights by
 * vpmaddwd, half the multiplies of the two-plane kernel. Its exact integer
 * D = dot(q, w) = 256 * dot(hi, w) + dot(lo, w) gives the contract's float:
 * both dots are at most NARROW_MAX_COLS * 128 * 127 < 2^24 in magnitude, so the
 * contract's two conversions and its * 256 are exact and its one rounded
 * addition rounds D itself, as (float)D does. D can pass 2^31, so its last
 * two partial sums are added in double (exact) and rounded once to float.
 *
 * Numerics v2's 7-bit activations (hi planes zero, |lo| <= 63) take the
 * 7-bit kernel where their shape allows (lmc_q7_kernel_avx2, below).
 *
 * Wider matrices take the two-plane kernel: vpmaddubsw multiplies unsigned
 * by signed bytes into saturating int16 pairs. With |x| as the unsigned
 * operand and w carrying x's sign (vpsignb), each pair is at most
 * 2 * 128 * 127 = 32512 < 32767 (|x| <= 128 for the lo plane, |w| <= 127),
 * so it never saturates; vpmaddwd by 1 widens the pairs to exact int32 sums.
 */
#include <immintrin.h>
#include <string.h>

#include "nn/kernels.h"

#define TILE_ROWS 4
#define TILE_PLANES 2
/* Tokens whose activation rows stay in cache while a thread walks its rows. */
#define TOKEN_CHUNK 64

/* The int16 kernel's column limit (see above), and how many tokens' int16
 * activations it rebuilds at once (32 KiB of stack). */
#define NARROW_MAX_COLS 1024
#define Q16_TOKENS 16
#define Q16_STEP 16 /* int16 columns per vector */

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define LOAD(p) _mm256_loadu_si256((const __m256i *)(p))

/* ---- Shared by both kernels: dequantising and storing a tile ---- */

/* The rows' scales and biases (zeros where absent), loaded once per row
 * block. */
typedef struct {
    __m128 wscale, bias;
} block_constants;

static block_constants block_constants_of(const lmc_qmat *w, const float *bias, int o, int n_out) {
    if (n_out == TILE_ROWS) /* straight loads: scalar stores read back as a vector stall the pipeline */
        return (block_constants){_mm_loadu_ps(w->scale + o), bias ? _mm_loadu_ps(bias + o) : _mm_setzero_ps()};
    float wscale[4] = {0}, row_bias[4] = {0};
    for (int r = 0; r < n_out; r++) {
        wscale[r] = w->scale[o + r];
        row_bias[r] = bias ? bias[o + r] : 0.0f;
    }
    return (block_constants){_mm_loadu_ps(wscale), _mm_loadu_ps(row_bias)};
}

/* Stores one token x rows [o, o+n_out): acc * (xscale * wscale) (+ bias),
 * acc being the contract's float of each row. */
ALWAYS_INLINE void store_rows(const block_constants *k, __m128 acc, float xscale, int with_bias, float *out,
                              int n_out) {
    __m128 values = _mm_mul_ps(acc, _mm_mul_ps(_mm_set1_ps(xscale), k->wscale));
    if (with_bias)
        values = _mm_add_ps(values, k->bias);
    if (n_out == TILE_ROWS) {
        _mm_storeu_ps(out, values);
        return;
    }
    float result[4];
    _mm_storeu_ps(result, values);
    for (int r = 0; r < n_out; r++)
        out[r] = result[r];
}

/* The first n_out of the 4 weight rows at o (missing rows repeat the first
 * and are not stored). */
static void tile_weight_rows(const lmc_qmat *w, int o, int n_out, const int8_t *wr[TILE_ROWS]) {
    for (int r = 0; r < TILE_ROWS; r++)
        wr[r] = w->q + (size_t)(o + (r < n_out ? r : 0)) * (size_t)w->cols;
}

/* ---- int16 kernel ---- */

/* Tokens [t0, t1) as int16 rows of `padded` columns, zeros after cols. */
static void rebuild_q16(const int8_t *xq, int cols, int padded, int t0, int t1, int16_t *q16) {
    for (int t = t0; t < t1; t++) {
        const int8_t *hi = xq + 2 * (size_t)t * (size_t)cols, *lo = hi + cols;
        int16_t *out = q16 + (size_t)(t - t0) * (size_t)padded;
        int k = 0;
        for (; k + Q16_STEP <= cols; k += Q16_STEP) {
            __m256i h = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(hi + k)));
            __m256i l = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(lo + k)));
            _mm256_storeu_si256((__m256i *)(out + k), _mm256_add_epi16(_mm256_slli_epi16(h, 8), l));
        }
        for (; k < cols; k++)
            out[k] = (int16_t)(256 * hi[k] + lo[k]);
        for (; k < padded; k++)
            out[k] = 0;
    }
}

/* 16 weights sign-extended to int16. */
ALWAYS_INLINE __m256i load_w16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

/* The 4 weight rows of a tile, with their last partial 16 columns copied
 * to zero-padded storage (reading them in place would run past the
 * matrix). */
typedef struct {
    const int8_t *row[TILE_ROWS];
    int full;                          /* columns in whole steps */
    int8_t tail[TILE_ROWS][Q16_STEP];  /* the rest, zero-padded (unset if none) */
} weight_tile;

static void weight_tile_init(weight_tile *t, const int8_t *const wr[TILE_ROWS], int cols) {
    t->full = cols - cols % Q16_STEP;
    for (int r = 0; r < TILE_ROWS; r++)
        t->row[r] = wr[r];
    if (t->full == cols)
        return;
    memset(t->tail, 0, sizeof t->tail);
    for (int r = 0; r < TILE_ROWS; r++)
        memcpy(t->tail[r], wr[r] + t->full, (size_t)(cols - t->full));
}

/* acc + x . w over 16 columns, in 8 int32 lanes. */
ALWAYS_INLINE __m256i madd_step(__m256i acc, __m256i x, __m256i w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w));
}

/* The exact dot products of 4 accumulators of 8 lanes as the contract's
 * floats. Two rounds of pairwise adds stay in int32 (each sum covers at
 * most 4 lanes of at most NARROW_MAX_COLS / 16 products of pairs:
 * 4 * 64 * 2 * 32640 * 128 < 2^31); the last add is done in double. */
ALWAYS_INLINE __m128 exact_sums_4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    __m256i quarter = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    __m256d low = _mm256_cvtepi32_pd(_mm256_castsi256_si128(quarter));
    __m256d high = _mm256_cvtepi32_pd(_mm256_extracti128_si256(quarter, 1));
    return _mm256_cvtpd_ps(_mm256_add_pd(low, high));
}

/* One token against the 4 rows. */
static __m128 dots_4x1(const weight_tile *w, const int16_t *x, int padded) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k < w->full; k += Q16_STEP) {
        __m256i xv = LOAD(x + k);
        a0 = madd_step(a0, xv, load_w16(w->row[0] + k));
        a1 = madd_step(a1, xv, load_w16(w->row[1] + k));
        a2 = madd_step(a2, xv, load_w16(w->row[2] + k));
        a3 = madd_step(a3, xv, load_w16(w->row[3] + k));
    }
    if (k < padded) {
        __m256i xv = LOAD(x + k);
        a0 = madd_step(a0, xv, load_w16(w->tail[0]));
        a1 = madd_step(a1, xv, load_w16(w->tail[1]));
        a2 = madd_step(a2, xv, load_w16(w->tail[2]));
        a3 = madd_step(a3, xv, load_w16(w->tail[3]));
    }
    return exact_sums_4(a0, a1, a2, a3);
}

#define MADD_ROWS(xv, a0, a1, a2, a3)        \
    do {                                     \
        a0 = madd_step(a0, xv, w0);          \
        a1 = madd_step(a1, xv, w1);          \
        a2 = madd_step(a2, xv, w2);          \
        a3 = madd_step(a3, xv, w3);          \
    } while (0)

/* Two tokens against the 4 rows: each widened weight vector serves both. */
static void dots_4x2(const weight_tile *w, const int16_t *x0, const int16_t *x1, int padded, __m128 *acc0,
                     __m128 *acc1) {
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00;
    __m256i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    int k = 0;
    for (; k < w->full; k += Q16_STEP) {
        __m256i w0 = load_w16(w->row[0] + k), w1 = load_w16(w->row[1] + k);
        __m256i w2 = load_w16(w->row[2] + k), w3 = load_w16(w->row[3] + k);
        __m256i xv0 = LOAD(x0 + k), xv1 = LOAD(x1 + k);
        MADD_ROWS(xv0, a00, a01, a02, a03);
        MADD_ROWS(xv1, a10, a11, a12, a13);
    }
    if (k < padded) {
        __m256i w0 = load_w16(w->tail[0]), w1 = load_w16(w->tail[1]);
        __m256i w2 = load_w16(w->tail[2]), w3 = load_w16(w->tail[3]);
        __m256i xv0 = LOAD(x0 + k), xv1 = LOAD(x1 + k);
        MADD_ROWS(xv0, a00, a01, a02, a03);
        MADD_ROWS(xv1, a10, a11, a12, a13);
    }
    *acc0 = exact_sums_4(a00, a01, a02, a03);
    *acc1 = exact_sums_4(a10, a11, a12, a13);
}

/* Rows [o, o+n_out) against the rebuilt tokens [t0, t1). */
static void row_block_q16(const lmc_qmat *w, const int16_t *q16, int padded, const float *xscale, int t0, int t1,
                          const float *bias, float *y, int o, int n_out) {
    const int8_t *wr[TILE_ROWS];
    tile_weight_rows(w, o, n_out, wr);
    weight_tile tile;
    weight_tile_init(&tile, wr, w->cols);
    const block_constants k = block_constants_of(w, bias, o, n_out);
    float *out = y + o;
    const size_t stride = (size_t)w->rows;
    int t = t0;
    for (; t + 2 <= t1; t += 2) {
        __m128 acc0, acc1;
        const int16_t *x0 = q16 + (size_t)(t - t0) * (size_t)padded;
        dots_4x2(&tile, x0, x0 + padded, padded, &acc0, &acc1);
        store_rows(&k, acc0, xscale[t], bias != NULL, out + (size_t)t * stride, n_out);
        store_rows(&k, acc1, xscale[t + 1], bias != NULL, out + (size_t)(t + 1) * stride, n_out);
    }
    if (t < t1) {
        __m128 acc = dots_4x1(&tile, q16 + (size_t)(t - t0) * (size_t)padded, padded);
        store_rows(&k, acc, xscale[t], bias != NULL, out + (size_t)t * stride, n_out);
    }
}

/* ---- Whole tiles: the fast path ----
 * Tiles of 4 rows whose columns fill whole steps (every matrix of the
 * shipped models) skip row_block_q16's set-up: with one or two tokens per
 * call (decoding), that set-up costs as much as the dot products, and the
 * loops below are bound by widening the weights alone. Same products, sums
 * and dequantising as row_block_q16. */

/* One token against the 4 rows from w0 on. */
ALWAYS_INLINE __m128 whole_dots_4x1(const int8_t *w0, size_t cols, const int16_t *x) {
    const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t k = 0; k < cols; k += Q16_STEP) {
        __m256i xv = LOAD(x + k);
        a0 = madd_step(a0, xv, load_w16(w0 + k));
        a1 = madd_step(a1, xv, load_w16(w1 + k));
        a2 = madd_step(a2, xv, load_w16(w2 + k));
        a3 = madd_step(a3, xv, load_w16(w3 + k));
    }
    return exact_sums_4(a0, a1, a2, a3);
}

/* Two tokens against the 4 rows from w0 on. */
ALWAYS_INLINE void whole_dots_4x2(const int8_t *w0_row, size_t cols, const int16_t *x0, const int16_t *x1,
                                  __m128 *acc0, __m128 *acc1) {
    const int8_t *w1_row = w0_row + cols, *w2_row = w1_row + cols, *w3_row = w2_row + cols;
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00;
    __m256i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    for (size_t k = 0; k < cols; k += Q16_STEP) {
        __m256i w0 = load_w16(w0_row + k), w1 = load_w16(w1_row + k);
        __m256i w2 = load_w16(w2_row + k), w3 = load_w16(w3_row + k);
        __m256i xv0 = LOAD(x0 + k), xv1 = LOAD(x1 + k);
        MADD_ROWS(xv0, a00, a01, a02, a03);
        MADD_ROWS(xv1, a10, a11, a12, a13);
    }
    *acc0 = exact_sums_4(a00, a01, a02, a03);
    *acc1 = exact_sums_4(a10, a11, a12, a13);
}

/* store_rows for a whole tile: acc * (xscale * wscale) (+ bias). */
ALWAYS_INLINE void store_tile(__m128 acc, float xscale, const float *wscale, const float *bias, float *out) {
    __m128 values = _mm_mul_ps(acc, _mm_mul_ps(_mm_set1_ps(xscale), _mm_loadu_ps(wscale)));
    if (bias)
        values = _mm_add_ps(values, _mm_loadu_ps(bias));
    _mm_storeu_ps(out, values);
}

/* The whole tiles from row_begin on against the rebuilt tokens [t0, t1);
 * returns the first row left for row_block_q16. */
static int whole_tiles_q16(const lmc_qmat *w, const int16_t *q16, int padded, const float *xscale, int t0,
                           int t1, const float *bias, float *y, int row_begin, int row_end) {
    const size_t cols = (size_t)w->cols, stride = (size_t)w->rows;
    if (cols % Q16_STEP != 0)
        return row_begin;
    int o = row_begin;
    for (; o + TILE_ROWS <= row_end; o += TILE_ROWS) {
        const int8_t *w0 = w->q + (size_t)o * cols;
        const float *row_bias = bias ? bias + o : NULL;
        int t = t0;
        for (; t + 2 <= t1; t += 2) {
            const int16_t *x0 = q16 + (size_t)(t - t0) * (size_t)padded;
            __m128 acc0, acc1;
            whole_dots_4x2(w0, cols, x0, x0 + padded, &acc0, &acc1);
            store_tile(acc0, xscale[t], w->scale + o, row_bias, y + (size_t)t * stride + o);
            store_tile(acc1, xscale[t + 1], w->scale + o, row_bias, y + (size_t)(t + 1) * stride + o);
        }
        if (t < t1)
            store_tile(whole_dots_4x1(w0, cols, q16 + (size_t)(t - t0) * (size_t)padded), xscale[t],
                       w->scale + o, row_bias, y + (size_t)t * stride + o);
    }
    return o;
}

static void kernel_q16(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows, const float *bias,
                       float *y, int row_begin, int row_end) {
    const int padded = (w->cols + Q16_STEP - 1) / Q16_STEP * Q16_STEP;
    int16_t q16[Q16_TOKENS * NARROW_MAX_COLS] __attribute__((aligned(32)));
    for (int t0 = 0; t0 < n_rows; t0 += Q16_TOKENS) {
        int t1 = LMC_MIN(n_rows, t0 + Q16_TOKENS);
        rebuild_q16(xq, w->cols, padded, t0, t1, q16);
        int o = whole_tiles_q16(w, q16, padded, xscale, t0, t1, bias, y, row_begin, row_end);
        for (; o < row_end; o += TILE_ROWS)
            row_block_q16(w, q16, padded, xscale, t0, t1, bias, y, o, LMC_MIN(TILE_ROWS, row_end - o));
    }
}

/* ---- 7-bit kernel ----
 * A 7-bit activation q (|q| <= 63) plus 64 is an unsigned byte u in
 * [1, 127], so vpmaddubsw multiplies 32 of them with 32 signed weights into
 * 16 int16 pairs of at most 2 * 127 * 127 = 32258 in magnitude: never
 * saturated. vpmaddwd by 1 widens the pairs to exact int32 sums, and
 * dot(q, w) = dot(u, w) - 64 * row_sum(w), exact, below 2^24 in magnitude
 * (NARROW_MAX_COLS * 63 * 127), so (float) of it is the contract's float
 * (the hi planes' dot is 0). One multiply instruction per 32 products and
 * no widening of the weights: about 20% less time for a whole compression
 * or decompression with text-en than the int16 kernel. Matrices whose
 * columns are not whole steps of 32, or wider than NARROW_MAX_COLS, take
 * the general kernels. */
#define Q7_STEP 32

/* Tokens [t0, t1)'s lo planes plus 64, as rows of cols bytes. */
static void rebuild_u7(const int8_t *xq, int cols, int t0, int t1, uint8_t *u7) {
    const __m256i offset = _mm256_set1_epi8(LMC_Q7_OFFSET);
    for (int t = t0; t < t1; t++) {
        const int8_t *lo = xq + (2 * (size_t)t + 1) * (size_t)cols;
        uint8_t *out = u7 + (size_t)(t - t0) * (size_t)cols;
        for (int k = 0; k < cols; k += Q7_STEP)
            _mm256_storeu_si256((__m256i *)(out + k), _mm256_add_epi8(LOAD(lo + k), offset));
    }
}

/* acc + the 32 products u * w, in 8 int32 lanes. */
ALWAYS_INLINE __m256i u7_step(__m256i acc, __m256i u, __m256i w, __m256i ones) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, w), ones));
}

/* The 4 rows' dot(q, w) as floats: each accumulator's lanes summed (int32:
 * at most NARROW_MAX_COLS * 127 * 127 in all), minus offset = 64 * row_sum. */
ALWAYS_INLINE __m128 u7_sums_4(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m128i offset) {
    __m256i quarter = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(quarter), _mm256_extracti128_si256(quarter, 1));
    return _mm_cvtepi32_ps(_mm_sub_epi32(sums, offset));
}

/* One token against the 4 rows from w0 on. */
ALWAYS_INLINE __m128 u7_dots_4x1(const int8_t *w0, size_t cols, const uint8_t *u, __m128i offset) {
    const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t k = 0; k < cols; k += Q7_STEP) {
        __m256i uv = LOAD(u + k);
        a0 = u7_step(a0, uv, LOAD(w0 + k), ones);
        a1 = u7_step(a1, uv, LOAD(w1 + k), ones);
        a2 = u7_step(a2, uv, LOAD(w2 + k), ones);
        a3 = u7_step(a3, uv, LOAD(w3 + k), ones);
    }
    return u7_sums_4(a0, a1, a2, a3, offset);
}

/* Two tokens against the 4 rows from w0 on: each weight load serves both. */
ALWAYS_INLINE void u7_dots_4x2(const int8_t *w0_row, size_t cols, const uint8_t *u0, const uint8_t *u1,
                               __m128i offset, __m128 *acc0, __m128 *acc1) {
    const int8_t *w1_row = w0_row + cols, *w2_row = w1_row + cols, *w3_row = w2_row + cols;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00;
    __m256i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    for (size_t k = 0; k < cols; k += Q7_STEP) {
        __m256i w0 = LOAD(w0_row + k), w1 = LOAD(w1_row + k), w2 = LOAD(w2_row + k), w3 = LOAD(w3_row + k);
        __m256i uv0 = LOAD(u0 + k), uv1 = LOAD(u1 + k);
        a00 = u7_step(a00, uv0, w0, ones);
        a01 = u7_step(a01, uv0, w1, ones);
        a02 = u7_step(a02, uv0, w2, ones);
        a03 = u7_step(a03, uv0, w3, ones);
        a10 = u7_step(a10, uv1, w0, ones);
        a11 = u7_step(a11, uv1, w1, ones);
        a12 = u7_step(a12, uv1, w2, ones);
        a13 = u7_step(a13, uv1, w3, ones);
    }
    *acc0 = u7_sums_4(a00, a01, a02, a03, offset);
    *acc1 = u7_sums_4(a10, a11, a12, a13, offset);
}

/* Rows [row_begin, row_end) against the rebuilt tokens [t0, t1). */
static void u7_rows(const lmc_qmat *w, const uint8_t *u7, const float *xscale, int t0, int t1, const float *bias,
                    float *y, int row_begin, int row_end) {
    const size_t cols = (size_t)w->cols, stride = (size_t)w->rows;
    int o = row_begin;
    for (; o + TILE_ROWS <= row_end; o += TILE_ROWS) {
        const int8_t *w0 = w->q + (size_t)o * cols;
        const float *row_bias = bias ? bias + o : NULL;
        const __m128i offset = _mm_slli_epi32(_mm_loadu_si128((const __m128i *)(w->row_sum + o)), 6);
        int t = t0;
        for (; t + 2 <= t1; t += 2) {
            const uint8_t *u0 = u7 + (size_t)(t - t0) * cols;
            __m128 acc0, acc1;
            u7_dots_4x2(w0, cols, u0, u0 + cols, offset, &acc0, &acc1);
            store_tile(acc0, xscale[t], w->scale + o, row_bias, y + (size_t)t * stride + o);
            store_tile(acc1, xscale[t + 1], w->scale + o, row_bias, y + (size_t)(t + 1) * stride + o);
        }
        if (t < t1)
            store_tile(u7_dots_4x1(w0, cols, u7 + (size_t)(t - t0) * cols, offset), xscale[t], w->scale + o,
                       row_bias, y + (size_t)t * stride + o);
    }
    if (o < row_end)
        lmc_q7_rows_scalar(w, u7, xscale, t0, t1, bias, y, o, row_end);
}

void lmc_q7_kernel_avx2(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                        const float *bias, float *y, int row_begin, int row_end) {
    if (w->cols % Q7_STEP != 0 || w->cols > NARROW_MAX_COLS || !w->row_sum) {
        lmc_q8_kernel_avx2(w, xq, xscale, n_rows, bias, y, row_begin, row_end);
        return;
    }
    uint8_t u7[Q16_TOKENS * NARROW_MAX_COLS] __attribute__((aligned(32)));
    for (int t0 = 0; t0 < n_rows; t0 += Q16_TOKENS) {
        int t1 = LMC_MIN(n_rows, t0 + Q16_TOKENS);
        rebuild_u7(xq, w->cols, t0, t1, u7);
        u7_rows(w, u7, xscale, t0, t1, bias, y, row_begin, row_end);
    }
}

/* ---- Two-plane kernel ----
 * A tile is 4 weight rows x the 2 planes (hi, lo) of one token: 8
 * accumulators, reduced to one vector whose lane p*4+r holds the dot
 * product of plane p with row r. */

/* Lane i of the result = sum of the 8 lanes of a_i (named registers:
 * arrays of accumulators end up in memory). */
ALWAYS_INLINE __m256i sum_lanes_8(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5,
                                  __m256i a6, __m256i a7) {
    __m256i s01 = _mm256_hadd_epi32(a0, a1), s23 = _mm256_hadd_epi32(a2, a3);
    __m256i s45 = _mm256_hadd_epi32(a4, a5), s67 = _mm256_hadd_epi32(a6, a7);
    /* Each 128-bit half now holds that half's partial sums of a0..a3 and a4..a7. */
    __m256i low = _mm256_hadd_epi32(s01, s23), high = _mm256_hadd_epi32(s45, s67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(low, high, 0x20),
                            _mm256_permute2x128_si256(low, high, 0x31));
}

/* acc + sum of the 32 products x*w, in 8 int32 lanes. */
ALWAYS_INLINE __m256i dot_step(__m256i acc, __m256i abs_x, __m256i x, __m256i w) {
    __m256i pairs = _mm256_maddubs_epi16(abs_x, _mm256_sign_epi8(w, x));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

#define DOT_ROWS(xv, a0, a1, a2, a3)                \
    do {                                            \
        __m256i ax = _mm256_abs_epi8(xv);           \
        a0 = dot_step(a0, ax, xv, w0);              \
        a1 = dot_step(a1, ax, xv, w1);              \
        a2 = dot_step(a2, ax, xv, w2);              \
        a3 = dot_step(a3, ax, xv, w3);              \
    } while (0)
/* Exact dot products of 2 activation planes with 4 weight rows; lane p*4+r
 * holds x[p] . w[r]. */
static __m256i tile_dots(const int8_t *const w[TILE_ROWS], const int8_t *const x[TILE_PLANES], int cols) {
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00;
    __m256i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    int k = 0;
    for (; k + 32 <= cols; k += 32) {
        __m256i w0 = LOAD(w[0] + k), w1 = LOAD(w[1] + k), w2 = LOAD(w[2] + k), w3 = LOAD(w[3] + k);
        __m256i x0 = LOAD(x[0] + k), x1 = LOAD(x[1] + k);
        DOT_ROWS(x0, a00, a01, a02, a03);
        DOT_ROWS(x1, a10, a11, a12, a13);
    }
    __m256i sums = sum_lanes_8(a00, a01, a02, a03, a10, a11, a12, a13);
    if (k < cols) {
        int32_t tail[8];
        for (int p = 0; p < TILE_PLANES; p++)
            for (int r = 0; r < TILE_ROWS; r++) {
                int32_t s = 0;
                for (int i = k; i < cols; i++)
                    s += (int32_t)x[p][i] * (int32_t)w[r][i];
                tail[p * 4 + r] = s;
            }
        sums = _mm256_add_epi32(sums, _mm256_loadu_si256((const __m256i *)tail));
    }
    return sums;
}

/* The contract's float of each row from a tile_dots result. */
ALWAYS_INLINE __m128 plane_sums(__m256i sums) {
    __m256 planes = _mm256_cvtepi32_ps(sums);
    return _mm_add_ps(_mm_mul_ps(_mm256_castps256_ps128(planes), _mm_set1_ps(256.0f)),
                      _mm256_extractf128_ps(planes, 1));
}

/* Rows [o, o+n_out) against tokens [t_begin, t_end). */
static void row_block_planes(const lmc_qmat *w, const int8_t *xq, const float *xscale, int t_begin, int t_end,
                             const float *bias, float *y, int o, int n_out) {
    const size_t cols = (size_t)w->cols;
    const int8_t *wr[TILE_ROWS];
    tile_weight_rows(w, o, n_out, wr);
    const block_constants k = block_constants_of(w, bias, o, n_out);
    for (int t = t_begin; t < t_end; t++) {
        const int8_t *planes[TILE_PLANES] = {xq + 2 * (size_t)t * cols, xq + (2 * (size_t)t + 1) * cols};
        store_rows(&k, plane_sums(tile_dots(wr, planes, w->cols)), xscale[t], bias != NULL,
                   y + (size_t)t * (size_t)w->rows + o, n_out);
    }
}

static void kernel_planes(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows, const float *bias,
                          float *y, int row_begin, int row_end) {
    for (int t0 = 0; t0 < n_rows; t0 += TOKEN_CHUNK) {
        int t1 = LMC_MIN(n_rows, t0 + TOKEN_CHUNK);
        for (int o = row_begin; o < row_end; o += TILE_ROWS)
            row_block_planes(w, xq, xscale, t0, t1, bias, y, o, LMC_MIN(TILE_ROWS, row_end - o));
    }
}

void lmc_q8_kernel_avx2(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                        const float *bias, float *y, int row_begin, int row_end) {
    if (w->cols <= NARROW_MAX_COLS)
        kernel_q16(w, xq, xscale, n_rows, bias, y, row_begin, row_end);
    else
        kernel_planes(w, xq, xscale, n_rows, bias, y, row_begin, row_end);
}
