/*
 * AVX-512 VNNI int8 matmul kernel (integer only: no float arithmetic here
 * except the dequantising multiply and bias add, which are explicit
 * mul-then-add intrinsics matching the scalar expression).
 *
 * vpdpbusd multiplies unsigned by signed bytes, so each activation byte is
 * offset to x + 128 (a sign-bit flip) and the excess 128 * sum(w) is taken
 * back with the precomputed row_sum. The int32 sums wrap like the exact
 * ones and equal them whenever the true dot product fits (always, for
 * |x|, |w| <= 127 and at most 133144 columns).
 *
 * A tile is 4 weight rows x 4 tokens: 16 accumulators, reduced to one
 * vector whose lane t*4+r holds the dot product of token t with row r.
 */
#include <immintrin.h>

#include "nn/kernels.h"

#define TILE_ROWS 4
#define TILE_TOKENS 4
/* Tokens whose activation rows stay in cache while a thread walks its rows. */
#define TOKEN_CHUNK 64

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The reductions below work on named registers (arrays of accumulators
 * end up in memory). Within each 128-bit chunk: */
/* lanes (a0+a2, b0+b2, a1+a3, b1+b3): pairs of a and b interleaved; */
ALWAYS_INLINE __m512i pair_sums(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
/* from two pair_sums (of a,b and of c,d): one partial sum each of a, b, c, d; */
ALWAYS_INLINE __m512i quad_sums(__m512i ab, __m512i cd) {
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}
/* and across chunks: chunks (p0+p1, p2+p3) of p then the same of q. */
ALWAYS_INLINE __m512i chunk_sums(__m512i p, __m512i q) {
    return _mm512_add_epi32(_mm512_shuffle_i32x4(p, q, 0x88), _mm512_shuffle_i32x4(p, q, 0xDD));
}

/* One activation vector (offset to unsigned) against the 4 weight vectors. */
#define DOT_ROWS(u, a0, a1, a2, a3)            \
    do {                                       \
        a0 = _mm512_dpbusd_epi32(a0, u, w0);   \
        a1 = _mm512_dpbusd_epi32(a1, u, w1);   \
        a2 = _mm512_dpbusd_epi32(a2, u, w2);   \
        a3 = _mm512_dpbusd_epi32(a3, u, w3);   \
    } while (0)

/* Loads 64 bytes of the 4 weight rows at k (masked: missing bytes are 0). */
#define LOAD_WEIGHTS(k, m)                                                       \
    __m512i w0 = _mm512_maskz_loadu_epi8(m, w[0] + (k));                          \
    __m512i w1 = _mm512_maskz_loadu_epi8(m, w[1] + (k));                          \
    __m512i w2 = _mm512_maskz_loadu_epi8(m, w[2] + (k));                          \
    __m512i w3 = _mm512_maskz_loadu_epi8(m, w[3] + (k))
#define LOAD_OFFSET_X(t, k, m) _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x[t] + (k)), flip)

/* Mask of the valid bytes of the 64 at k: masked-off weight bytes load as
 * 0, so padded products vanish. */
static __mmask64 bytes_mask(int cols, int k) {
    return cols - k >= 64 ? ~(__mmask64)0 : (__mmask64)(~0ULL >> (64 - (cols - k)));
}

/* 4 activation rows x 4 weight rows; lane t*4+r of the result is the dot
 * product of x[t] with w[r] plus 128 * sum(w[r]) (see above). */
static __m512i tile_4x4(const int8_t *const w[TILE_ROWS], const int8_t *const x[TILE_TOKENS], int cols) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
            a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (int k = 0; k < cols; k += 64) {
        const __mmask64 m = bytes_mask(cols, k);
        LOAD_WEIGHTS(k, m);
        __m512i u = LOAD_OFFSET_X(0, k, m);
        DOT_ROWS(u, a00, a01, a02, a03);
        u = LOAD_OFFSET_X(1, k, m);
        DOT_ROWS(u, a10, a11, a12, a13);
        u = LOAD_OFFSET_X(2, k, m);
        DOT_ROWS(u, a20, a21, a22, a23);
        u = LOAD_OFFSET_X(3, k, m);
        DOT_ROWS(u, a30, a31, a32, a33);
    }
    __m512i t0 = quad_sums(pair_sums(a00, a01), pair_sums(a02, a03));
    __m512i t1 = quad_sums(pair_sums(a10, a11), pair_sums(a12, a13));
    __m512i t2 = quad_sums(pair_sums(a20, a21), pair_sums(a22, a23));
    __m512i t3 = quad_sums(pair_sums(a30, a31), pair_sums(a32, a33));
    return chunk_sums(chunk_sums(t0, t1), chunk_sums(t2, t3));
}

/* 1 activation row x 4 weight rows; lanes 0..3 as in tile_4x4. */
static __m512i tile_1x4(const int8_t *const w[TILE_ROWS], const int8_t *x0, int cols) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const int8_t *const x[1] = {x0};
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < cols; k += 64) {
        const __mmask64 m = bytes_mask(cols, k);
        LOAD_WEIGHTS(k, m);
        __m512i u = LOAD_OFFSET_X(0, k, m);
        DOT_ROWS(u, a0, a1, a2, a3);
    }
    __m512i t = quad_sums(pair_sums(a0, a1), pair_sums(a2, a3));
    __m256i half = _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
    __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
    return _mm512_zextsi128_si512(sums);
}

/* Which lanes of a 4-float chunk belong to real output rows. */
static __mmask8 row_mask(int n_out) {
    return (__mmask8)((1u << n_out) - 1);
}

/* Removes the +128 offset, dequantises and stores tokens [t0, t0+n_tokens)
 * x rows [o, o+n_out) of a tile. */
static void finish_tile(const lmc_qmat *w, __m512i sums, const float *xscale, int t0, int n_tokens,
                        const float *bias, float *y, int o, int n_out) {
    const __mmask8 rmask = row_mask(n_out);
    const __m512i xs_index = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m512i offset = _mm512_broadcast_i32x4(_mm_maskz_loadu_epi32(rmask, w->row_sum + o));
    sums = _mm512_sub_epi32(sums, _mm512_slli_epi32(offset, 7));
    __m512 wscale = _mm512_broadcast_f32x4(_mm_maskz_loadu_ps(rmask, w->scale + o));
    __m512 xs = _mm512_permutexvar_ps(
        xs_index, _mm512_castps128_ps512(_mm_maskz_loadu_ps(row_mask(n_tokens), xscale + t0)));
    __m512 values = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(xs, wscale));
    if (bias)
        values = _mm512_add_ps(values, _mm512_broadcast_f32x4(_mm_maskz_loadu_ps(rmask, bias + o)));
    const size_t stride = (size_t)w->rows;
    float *out = y + (size_t)t0 * stride + o;
    _mm_mask_storeu_ps(out, rmask, _mm512_extractf32x4_ps(values, 0));
    if (n_tokens > 1)
        _mm_mask_storeu_ps(out + stride, rmask, _mm512_extractf32x4_ps(values, 1));
    if (n_tokens > 2)
        _mm_mask_storeu_ps(out + 2 * stride, rmask, _mm512_extractf32x4_ps(values, 2));
    if (n_tokens > 3)
        _mm_mask_storeu_ps(out + 3 * stride, rmask, _mm512_extractf32x4_ps(values, 3));
}

/* One block of 4 rows (fewer at the end: missing rows repeat the first and
 * are not stored) against tokens [t_begin, t_end). */
static void row_block(const lmc_qmat *w, const int8_t *xq, const float *xscale, int t_begin, int t_end,
                      const float *bias, float *y, int o, int n_out) {
    const size_t cols = (size_t)w->cols;
    const int8_t *wr[TILE_ROWS];
    for (int r = 0; r < TILE_ROWS; r++)
        wr[r] = w->q + (size_t)(o + (r < n_out ? r : 0)) * cols;
    int t = t_begin;
    for (; t + TILE_TOKENS <= t_end; t += TILE_TOKENS) {
        const int8_t *xt[TILE_TOKENS];
        for (int i = 0; i < TILE_TOKENS; i++)
            xt[i] = xq + (size_t)(t + i) * cols;
        finish_tile(w, tile_4x4(wr, xt, w->cols), xscale, t, 4, bias, y, o, n_out);
    }
    for (; t < t_end; t++)
        finish_tile(w, tile_1x4(wr, xq + (size_t)t * cols, w->cols), xscale, t, 1, bias, y, o, n_out);
}

void lmc_q8_kernel_avx512(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end) {
    for (int t0 = 0; t0 < n_rows; t0 += TOKEN_CHUNK) {
        int t1 = LMC_MIN(n_rows, t0 + TOKEN_CHUNK);
        for (int o = row_begin; o < row_end; o += TILE_ROWS)
            row_block(w, xq, xscale, t0, t1, bias, y, o, LMC_MIN(TILE_ROWS, row_end - o));
    }
}
