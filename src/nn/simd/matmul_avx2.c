/*
 * AVX2 int16 x int8 matmul kernel (integer only, except the dequantising
 * arithmetic and bias add, explicit mul/add intrinsics matching the scalar
 * code).
 *
 * vpmaddubsw multiplies unsigned by signed bytes into saturating int16
 * pairs. With |x| as the unsigned operand and w carrying x's sign
 * (vpsignb), each pair is at most 2 * 128 * 127 = 32512 < 32767 (|x| <= 128
 * for the lo plane, |w| <= 127), so it never saturates; vpmaddwd by 1
 * widens the pairs to exact int32 sums.
 *
 * A tile is 4 weight rows x the 2 planes (hi, lo) of one token: 8
 * accumulators, reduced to one vector whose lane p*4+r holds the dot
 * product of plane p with row r.
 */
#include <immintrin.h>

#include "nn/kernels.h"

#define TILE_ROWS 4
#define TILE_PLANES 2
/* Tokens whose activation rows stay in cache while a thread walks its rows. */
#define TOKEN_CHUNK 64

#define ALWAYS_INLINE static inline __attribute__((always_inline))

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
#define LOAD(p) _mm256_loadu_si256((const __m256i *)(p))

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

/* The rows' scales and biases (zeros where absent), loaded once per row
 * block. */
typedef struct {
    __m128 wscale, bias;
} block_constants;

static block_constants block_constants_of(const lmc_qmat *w, const float *bias, int o, int n_out) {
    float wscale[4] = {0}, row_bias[4] = {0};
    for (int r = 0; r < n_out; r++) {
        wscale[r] = w->scale[o + r];
        row_bias[r] = bias ? bias[o + r] : 0.0f;
    }
    return (block_constants){_mm_loadu_ps(wscale), _mm_loadu_ps(row_bias)};
}

/* Dequantises and stores one token x rows [o, o+n_out) of a tile:
 * ((float)hi * 256 + (float)lo) * (xscale * wscale) (+ bias). */
ALWAYS_INLINE void finish_tile(const block_constants *k, __m256i sums, float xscale, int with_bias, float *out,
                               int n_out) {
    __m256 planes = _mm256_cvtepi32_ps(sums);
    __m128 acc = _mm_add_ps(_mm_mul_ps(_mm256_castps256_ps128(planes), _mm_set1_ps(256.0f)),
                            _mm256_extractf128_ps(planes, 1));
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

/* One block of 4 rows (fewer at the end: missing rows repeat the first and
 * are not stored) against tokens [t_begin, t_end). */
static void row_block(const lmc_qmat *w, const int8_t *xq, const float *xscale, int t_begin, int t_end,
                      const float *bias, float *y, int o, int n_out) {
    const size_t cols = (size_t)w->cols;
    const int8_t *wr[TILE_ROWS];
    for (int r = 0; r < TILE_ROWS; r++)
        wr[r] = w->q + (size_t)(o + (r < n_out ? r : 0)) * cols;
    const block_constants k = block_constants_of(w, bias, o, n_out);
    for (int t = t_begin; t < t_end; t++) {
        const int8_t *planes[TILE_PLANES] = {xq + 2 * (size_t)t * cols, xq + (2 * (size_t)t + 1) * cols};
        finish_tile(&k, tile_dots(wr, planes, w->cols), xscale[t], bias != NULL, y + (size_t)t * (size_t)w->rows + o,
                    n_out);
    }
}

void lmc_q8_kernel_avx2(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                        const float *bias, float *y, int row_begin, int row_end) {
    for (int t0 = 0; t0 < n_rows; t0 += TOKEN_CHUNK) {
        int t1 = LMC_MIN(n_rows, t0 + TOKEN_CHUNK);
        for (int o = row_begin; o < row_end; o += TILE_ROWS)
            row_block(w, xq, xscale, t0, t1, bias, y, o, LMC_MIN(TILE_ROWS, row_end - o));
    }
}
