/*
 * AVX-512 VNNI int16 x int8 matmul kernel (integer only: no float
 * arithmetic here except the dequantising arithmetic and bias add, which
 * are explicit mul/add intrinsics matching the scalar expression).
 *
 * Each token's activation is two int8 planes (hi, lo; see nn.h), so a
 * token is two int8 rows here. vpdpbusd multiplies unsigned by signed
 * bytes, so each activation byte is offset to x + 128 (a sign-bit flip,
 * which maps [-128, 127] onto [0, 255]) and the excess 128 * sum(w) is
 * taken back with the precomputed row_sum. The int32 sums wrap like the
 * exact ones and equal them whenever the true dot product fits (always,
 * for |x| <= 128, |w| <= 127 and at most 132104 columns).
 *
 * A tile is 4 weight rows x 4 int8 rows (the hi planes of 2 tokens, then
 * their lo planes): 16 accumulators, reduced to one vector whose lane v*4+r
 * holds the dot product of int8 row v with weight row r.
 */
#include <immintrin.h>

#include "nn/kernels.h"

#define TILE_ROWS 4
#define TILE_X 4     /* int8 activation rows of a tile */
#define TILE_TOKENS 2 /* = TILE_X / 2 planes */
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

/* 4 activation rows x 4 weight rows; lane v*4+r of the result is the dot
 * product of x[v] with w[r] plus 128 * sum(w[r]) (see above). */
static __m512i tile_4x4(const int8_t *const w[TILE_ROWS], const int8_t *const x[TILE_X], int cols) {
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

/* 2 activation rows (one token's hi and lo planes) x 4 weight rows; chunks
 * (hi, hi, lo, lo) of the result hold the dot products with rows 0..3 (plus
 * the offset, as in tile_4x4). */
static __m512i tile_2x4(const int8_t *const w[TILE_ROWS], const int8_t *const x[2], int cols) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
            a13 = a00;
    for (int k = 0; k < cols; k += 64) {
        const __mmask64 m = bytes_mask(cols, k);
        LOAD_WEIGHTS(k, m);
        __m512i u = LOAD_OFFSET_X(0, k, m);
        DOT_ROWS(u, a00, a01, a02, a03);
        u = LOAD_OFFSET_X(1, k, m);
        DOT_ROWS(u, a10, a11, a12, a13);
    }
    __m512i t0 = quad_sums(pair_sums(a00, a01), pair_sums(a02, a03));
    __m512i t1 = quad_sums(pair_sums(a10, a11), pair_sums(a12, a13));
    __m512i both = chunk_sums(t0, t1); /* (hi part, hi part, lo part, lo part) */
    return _mm512_add_epi32(both, _mm512_shuffle_i32x4(both, both, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* Which lanes of a 4-float chunk belong to real output rows. */
static __mmask8 row_mask(int n_out) {
    return (__mmask8)((1u << n_out) - 1);
}

/* What the finishing step of every tile of a row block needs, in the lane
 * layout of the tiles' results. */
typedef struct {
    __m512i offset; /* 128 * row_sum, in all four chunks */
    __m256 wscale;  /* the rows' scales, twice */
    __m256 bias;    /* the rows' biases, twice (or zeros) */
    __mmask8 rmask;
} block_constants;

static block_constants block_constants_of(const lmc_qmat *w, const float *bias, int o, int n_out) {
    block_constants k;
    k.rmask = row_mask(n_out);
    k.offset = _mm512_slli_epi32(_mm512_broadcast_i32x4(_mm_maskz_loadu_epi32(k.rmask, w->row_sum + o)), 7);
    __m128 ws = _mm_maskz_loadu_ps(k.rmask, w->scale + o);
    k.wscale = _mm256_set_m128(ws, ws);
    __m128 b = bias ? _mm_maskz_loadu_ps(k.rmask, bias + o) : _mm_setzero_ps();
    k.bias = _mm256_set_m128(b, b);
    return k;
}

/* Removes the +128 offset, dequantises and stores tokens [t0, t0+n_tokens)
 * (1 or 2) x rows [o, o+n_out) of a tile whose chunks hold (hi t0, hi t1,
 * lo t0, lo t1):
 *   ((float)hi * 256 + (float)lo) * (xscale * wscale) (+ bias). */
ALWAYS_INLINE void finish_tile(const block_constants *k, __m512i sums, const float *xscale, int t0, int n_tokens,
                               int with_bias, float *out, size_t stride) {
    __m512 dots = _mm512_cvtepi32_ps(_mm512_sub_epi32(sums, k->offset));
    __m256 hi = _mm512_castps512_ps256(dots);
    __m256 lo = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dots), 1));
    __m256 acc = _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(256.0f)), lo);
    __m256 xs = _mm256_set_m128(_mm_set1_ps(xscale[t0 + n_tokens - 1]), _mm_set1_ps(xscale[t0]));
    __m256 values = _mm256_mul_ps(acc, _mm256_mul_ps(xs, k->wscale));
    if (with_bias)
        values = _mm256_add_ps(values, k->bias);
    _mm_mask_storeu_ps(out, k->rmask, _mm256_castps256_ps128(values));
    if (n_tokens > 1)
        _mm_mask_storeu_ps(out + stride, k->rmask, _mm256_extractf128_ps(values, 1));
}

/* One block of 4 rows (fewer at the end: missing rows repeat the first and
 * are not stored) against tokens [t_begin, t_end). */
static void row_block(const lmc_qmat *w, const int8_t *xq, const float *xscale, int t_begin, int t_end,
                      const float *bias, float *y, int o, int n_out) {
    const size_t cols = (size_t)w->cols, stride = (size_t)w->rows;
    const int8_t *wr[TILE_ROWS];
    for (int r = 0; r < TILE_ROWS; r++)
        wr[r] = w->q + (size_t)(o + (r < n_out ? r : 0)) * cols;
    const block_constants k = block_constants_of(w, bias, o, n_out);
    int t = t_begin;
    for (; t + TILE_TOKENS <= t_end; t += TILE_TOKENS) {
        const int8_t *hi0 = xq + 2 * (size_t)t * cols, *hi1 = hi0 + 2 * cols;
        const int8_t *xt[TILE_X] = {hi0, hi1, hi0 + cols, hi1 + cols}; /* hi t, hi t+1, lo t, lo t+1 */
        finish_tile(&k, tile_4x4(wr, xt, w->cols), xscale, t, TILE_TOKENS, bias != NULL, y + (size_t)t * stride + o,
                    stride);
    }
    if (t < t_end) {
        const int8_t *xt[2] = {xq + 2 * (size_t)t * cols, xq + (2 * (size_t)t + 1) * cols};
        finish_tile(&k, tile_2x4(wr, xt, w->cols), xscale, t, 1, bias != NULL, y + (size_t)t * stride + o, stride);
    }
}

void lmc_q8_kernel_avx512(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end) {
    for (int t0 = 0; t0 < n_rows; t0 += TOKEN_CHUNK) {
        int t1 = LMC_MIN(n_rows, t0 + TOKEN_CHUNK);
        for (int o = row_begin; o < row_end; o += TILE_ROWS)
            row_block(w, xq, xscale, t0, t1, bias, y, o, LMC_MIN(TILE_ROWS, row_end - o));
    }
}

/* ---- 7-bit kernel (numerics v2 and v3) ----
 * The AVX2 7-bit kernel's arithmetic (matmul_avx2.c) with vpdpbusd: a
 * 7-bit activation q (|q| <= 63) plus 64 is an unsigned byte u in [1, 127];
 * one vpdpbusd adds the 4 products of u with signed weights to each int32
 * lane, exactly (no int16 pairs, no saturation), and
 *   dot(q, w) = dot(u, w) - 64 * row_sum(w),
 * below 2^24 in magnitude for at most Q7_MAX_COLS columns, so (float) of it
 * is the contract's float, as in the AVX2 kernel. Tokens go 4 at a time
 * through tiles of 4 weight rows x 4 tokens, 64 columns a step (each weight
 * vector loaded serves the 4 tokens); the 1 to 3 left take the wide tiles
 * below. Matrices whose columns are not whole steps, or wider than
 * Q7_MAX_COLS, take the AVX2 7-bit kernel. */
#define Q7_STEP 64
#define Q7_MAX_COLS 1024
#define Q7_TOKENS 16 /* tokens rebuilt at once: 16 KiB of stack */

/* Tokens [t0, t1)'s lo planes plus 64, as rows of cols bytes. */
static void rebuild_u7(const int8_t *xq, int cols, int t0, int t1, uint8_t *u7) {
    const __m512i offset = _mm512_set1_epi8(LMC_Q7_OFFSET);
    for (int t = t0; t < t1; t++) {
        const int8_t *lo = xq + (2 * (size_t)t + 1) * (size_t)cols;
        uint8_t *out = u7 + (size_t)(t - t0) * (size_t)cols;
        for (int k = 0; k < cols; k += Q7_STEP)
            _mm512_storeu_si512(out + k, _mm512_add_epi8(_mm512_loadu_si512(lo + k), offset));
    }
}

/* The 4 rows' dot(q, w) of one token as floats, from its 4 accumulators. */
ALWAYS_INLINE __m128 u7_sums_4(__m512i a0, __m512i a1, __m512i a2, __m512i a3, __m128i offset) {
    __m512i chunks = quad_sums(pair_sums(a0, a1), pair_sums(a2, a3));
    __m256i halves = _mm256_add_epi32(_mm512_castsi512_si256(chunks), _mm512_extracti64x4_epi64(chunks, 1));
    __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(halves), _mm256_extracti128_si256(halves, 1));
    return _mm_cvtepi32_ps(_mm_sub_epi32(sums, offset));
}

/* Tokens u[0..n) (n = 1, 2 or 4; constant where inlined) against the 4
 * rows from w0_row on: acc[t] holds token t's 4 dots. */
ALWAYS_INLINE void u7_tile(const int8_t *w0_row, size_t cols, const uint8_t *u, int n, __m128i offset,
                           __m128 acc[4]) {
    const int8_t *w1_row = w0_row + cols, *w2_row = w1_row + cols, *w3_row = w2_row + cols;
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
            a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (size_t k = 0; k < cols; k += Q7_STEP) {
        __m512i w0 = _mm512_loadu_si512(w0_row + k), w1 = _mm512_loadu_si512(w1_row + k);
        __m512i w2 = _mm512_loadu_si512(w2_row + k), w3 = _mm512_loadu_si512(w3_row + k);
        const __m512i x0 = _mm512_loadu_si512(u + k);
        DOT_ROWS(x0, a00, a01, a02, a03);
        if (n > 1) {
            const __m512i x1 = _mm512_loadu_si512(u + cols + k);
            DOT_ROWS(x1, a10, a11, a12, a13);
        }
        if (n > 2) {
            const __m512i x2 = _mm512_loadu_si512(u + 2 * cols + k), x3 = _mm512_loadu_si512(u + 3 * cols + k);
            DOT_ROWS(x2, a20, a21, a22, a23);
            DOT_ROWS(x3, a30, a31, a32, a33);
        }
    }
    acc[0] = u7_sums_4(a00, a01, a02, a03, offset);
    if (n > 1)
        acc[1] = u7_sums_4(a10, a11, a12, a13, offset);
    if (n > 2) {
        acc[2] = u7_sums_4(a20, a21, a22, a23, offset);
        acc[3] = u7_sums_4(a30, a31, a32, a33, offset);
    }
}

/* acc * (xscale * wscale) (+ bias) into 4 consecutive outputs: the AVX2
 * 7-bit kernel's expression. */
ALWAYS_INLINE void u7_store(__m128 acc, float xscale, const float *wscale, const float *bias, float *out) {
    __m128 values = _mm_mul_ps(acc, _mm_mul_ps(_mm_set1_ps(xscale), _mm_loadu_ps(wscale)));
    if (bias)
        values = _mm_add_ps(values, _mm_loadu_ps(bias));
    _mm_storeu_ps(out, values);
}

/* ---- Wide tiles for 1 or 2 tokens ----
 * Decoding multiplies a matrix by one or two tokens at a time. There a
 * 4-row tile has too few independent sums to keep vpdpbusd busy, and
 * reducing its accumulators costs as much as the products, so such tokens
 * take tiles of 16 accumulators: 8 rows x 2 tokens, or 16 rows x 1,
 * reduced together into one vector. */

/* Lane k of the result is the sum of a_k's lanes. */
ALWAYS_INLINE __m512i sums_16(__m512i a0, __m512i a1, __m512i a2, __m512i a3, __m512i a4, __m512i a5,
                              __m512i a6, __m512i a7, __m512i a8, __m512i a9, __m512i a10, __m512i a11,
                              __m512i a12, __m512i a13, __m512i a14, __m512i a15) {
    __m512i t0 = quad_sums(pair_sums(a0, a1), pair_sums(a2, a3));
    __m512i t1 = quad_sums(pair_sums(a4, a5), pair_sums(a6, a7));
    __m512i t2 = quad_sums(pair_sums(a8, a9), pair_sums(a10, a11));
    __m512i t3 = quad_sums(pair_sums(a12, a13), pair_sums(a14, a15));
    return chunk_sums(chunk_sums(t0, t1), chunk_sums(t2, t3));
}

#define U7_DOT(a, u, row) a = _mm512_dpbusd_epi32(a, u, _mm512_loadu_si512((row) + k))

/* Tokens u0, u1 against the 8 rows from w0 on: lane 8t + r of the result
 * is dot(u_t, row r). */
ALWAYS_INLINE __m512i u7_tile_8x2(const int8_t *w0, size_t cols, const uint8_t *u0, const uint8_t *u1) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
            a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
    for (size_t k = 0; k < cols; k += Q7_STEP) {
        const __m512i x0 = _mm512_loadu_si512(u0 + k), x1 = _mm512_loadu_si512(u1 + k);
        __m512i w = _mm512_loadu_si512(w0 + k);
        a0 = _mm512_dpbusd_epi32(a0, x0, w), a8 = _mm512_dpbusd_epi32(a8, x1, w);
        w = _mm512_loadu_si512(w0 + cols + k);
        a1 = _mm512_dpbusd_epi32(a1, x0, w), a9 = _mm512_dpbusd_epi32(a9, x1, w);
        w = _mm512_loadu_si512(w0 + 2 * cols + k);
        a2 = _mm512_dpbusd_epi32(a2, x0, w), a10 = _mm512_dpbusd_epi32(a10, x1, w);
        w = _mm512_loadu_si512(w0 + 3 * cols + k);
        a3 = _mm512_dpbusd_epi32(a3, x0, w), a11 = _mm512_dpbusd_epi32(a11, x1, w);
        w = _mm512_loadu_si512(w0 + 4 * cols + k);
        a4 = _mm512_dpbusd_epi32(a4, x0, w), a12 = _mm512_dpbusd_epi32(a12, x1, w);
        w = _mm512_loadu_si512(w0 + 5 * cols + k);
        a5 = _mm512_dpbusd_epi32(a5, x0, w), a13 = _mm512_dpbusd_epi32(a13, x1, w);
        w = _mm512_loadu_si512(w0 + 6 * cols + k);
        a6 = _mm512_dpbusd_epi32(a6, x0, w), a14 = _mm512_dpbusd_epi32(a14, x1, w);
        w = _mm512_loadu_si512(w0 + 7 * cols + k);
        a7 = _mm512_dpbusd_epi32(a7, x0, w), a15 = _mm512_dpbusd_epi32(a15, x1, w);
    }
    return sums_16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
}

/* Token u against the 16 rows from w0 on: lane r of the result is
 * dot(u, row r). */
ALWAYS_INLINE __m512i u7_tile_16x1(const int8_t *w0, size_t cols, const uint8_t *u) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
            a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
    for (size_t k = 0; k < cols; k += Q7_STEP) {
        const __m512i x = _mm512_loadu_si512(u + k);
        U7_DOT(a0, x, w0), U7_DOT(a1, x, w0 + cols), U7_DOT(a2, x, w0 + 2 * cols), U7_DOT(a3, x, w0 + 3 * cols);
        U7_DOT(a4, x, w0 + 4 * cols), U7_DOT(a5, x, w0 + 5 * cols), U7_DOT(a6, x, w0 + 6 * cols);
        U7_DOT(a7, x, w0 + 7 * cols), U7_DOT(a8, x, w0 + 8 * cols), U7_DOT(a9, x, w0 + 9 * cols);
        U7_DOT(a10, x, w0 + 10 * cols), U7_DOT(a11, x, w0 + 11 * cols), U7_DOT(a12, x, w0 + 12 * cols);
        U7_DOT(a13, x, w0 + 13 * cols), U7_DOT(a14, x, w0 + 14 * cols), U7_DOT(a15, x, w0 + 15 * cols);
    }
    return sums_16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
}

/* The 16 lanes of a wide tile from row o on: rows o..o+15 (one token), or
 * rows o..o+7 twice (two tokens). */
ALWAYS_INLINE __m512 wide_floats(const float *p, int pair) {
    return pair ? _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(p)))) : _mm512_loadu_ps(p);
}
ALWAYS_INLINE __m512i wide_ints(const int32_t *p, int pair) {
    return pair ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)) : _mm512_loadu_si512(p);
}

/* u7_store for a wide tile's 16 sums (rows from o on, as wide_floats), the
 * tokens' scales in xs. */
ALWAYS_INLINE __m512 u7_values_16(__m512i sums, const lmc_qmat *w, const float *bias, int o, int pair, __m512 xs) {
    const __m512i offset = _mm512_slli_epi32(wide_ints(w->row_sum + o, pair), 6);
    __m512 acc = _mm512_cvtepi32_ps(_mm512_sub_epi32(sums, offset));
    __m512 values = _mm512_mul_ps(acc, _mm512_mul_ps(xs, wide_floats(w->scale + o, pair)));
    return bias ? _mm512_add_ps(values, wide_floats(bias + o, pair)) : values;
}

/* Tokens t, t + 1 against rows [row_begin, row_end). */
static void u7_pair_rows(const lmc_qmat *w, const uint8_t *u, const float *xscale, int t, const float *bias,
                         float *y, int row_begin, int row_end) {
    const size_t cols = (size_t)w->cols, stride = (size_t)w->rows;
    const __m512 xs = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(xscale[t])),
                                                          _mm256_castps_pd(_mm256_set1_ps(xscale[t + 1])), 1));
    float *out = y + (size_t)t * stride;
    int o = row_begin;
    for (; o + 8 <= row_end; o += 8) {
        const __m512 values = u7_values_16(u7_tile_8x2(w->q + (size_t)o * cols, cols, u, u + cols), w, bias, o, 1, xs);
        _mm256_storeu_ps(out + o, _mm512_castps512_ps256(values));
        _mm256_storeu_ps(out + stride + o, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(values), 1)));
    }
    for (; o + TILE_ROWS <= row_end; o += TILE_ROWS) {
        const __m128i offset = _mm_slli_epi32(_mm_loadu_si128((const __m128i *)(w->row_sum + o)), 6);
        __m128 acc[4];
        u7_tile(w->q + (size_t)o * cols, cols, u, 2, offset, acc);
        u7_store(acc[0], xscale[t], w->scale + o, bias ? bias + o : NULL, out + o);
        u7_store(acc[1], xscale[t + 1], w->scale + o, bias ? bias + o : NULL, out + stride + o);
    }
    if (o < row_end)
        lmc_q7_rows_scalar(w, u, xscale + t, 0, 2, bias, out, o, row_end);
}

/* Token t against rows [row_begin, row_end). */
static void u7_single_rows(const lmc_qmat *w, const uint8_t *u, const float *xscale, int t, const float *bias,
                           float *y, int row_begin, int row_end) {
    const size_t cols = (size_t)w->cols;
    const __m512 xs = _mm512_set1_ps(xscale[t]);
    float *out = y + (size_t)t * (size_t)w->rows;
    int o = row_begin;
    for (; o + 16 <= row_end; o += 16)
        _mm512_storeu_ps(out + o, u7_values_16(u7_tile_16x1(w->q + (size_t)o * cols, cols, u), w, bias, o, 0, xs));
    for (; o + TILE_ROWS <= row_end; o += TILE_ROWS) {
        const __m128i offset = _mm_slli_epi32(_mm_loadu_si128((const __m128i *)(w->row_sum + o)), 6);
        __m128 acc[4];
        u7_tile(w->q + (size_t)o * cols, cols, u, 1, offset, acc);
        u7_store(acc[0], xscale[t], w->scale + o, bias ? bias + o : NULL, out + o);
    }
    if (o < row_end)
        lmc_q7_rows_scalar(w, u, xscale + t, 0, 1, bias, out, o, row_end);
}

/* Rows [row_begin, row_end) against the rebuilt tokens [t0, t1): groups
 * of 4 tokens by 4-row tiles (each weight vector loaded serves 4 tokens),
 * the 1 to 3 left by wide tiles. */
static void u7_rows(const lmc_qmat *w, const uint8_t *u7, const float *xscale, int t0, int t1, const float *bias,
                    float *y, int row_begin, int row_end) {
    const size_t cols = (size_t)w->cols, stride = (size_t)w->rows;
    const int t4 = t0 + (t1 - t0) / 4 * 4;
    int o = row_begin;
    for (; t4 > t0 && o + TILE_ROWS <= row_end; o += TILE_ROWS) {
        const int8_t *w0 = w->q + (size_t)o * cols;
        const float *row_bias = bias ? bias + o : NULL;
        const __m128i offset = _mm_slli_epi32(_mm_loadu_si128((const __m128i *)(w->row_sum + o)), 6);
        for (int t = t0; t < t4; t += 4) {
            __m128 acc[4];
            u7_tile(w0, cols, u7 + (size_t)(t - t0) * cols, 4, offset, acc);
            for (int i = 0; i < 4; i++)
                u7_store(acc[i], xscale[t + i], w->scale + o, row_bias, y + (size_t)(t + i) * stride + o);
        }
    }
    if (t4 > t0 && o < row_end)
        lmc_q7_rows_scalar(w, u7, xscale, t0, t4, bias, y, o, row_end);
    int t = t4;
    if (t1 - t >= 2) {
        u7_pair_rows(w, u7 + (size_t)(t - t0) * cols, xscale, t, bias, y, row_begin, row_end);
        t += 2;
    }
    if (t < t1)
        u7_single_rows(w, u7 + (size_t)(t - t0) * cols, xscale, t, bias, y, row_begin, row_end);
}

void lmc_q7_kernel_avx512(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end) {
    if (w->cols % Q7_STEP != 0 || w->cols > Q7_MAX_COLS || !w->row_sum) {
        lmc_q7_kernel_avx2(w, xq, xscale, n_rows, bias, y, row_begin, row_end);
        return;
    }
    uint8_t u7[Q7_TOKENS * Q7_MAX_COLS] __attribute__((aligned(64)));
    for (int t0 = 0; t0 < n_rows; t0 += Q7_TOKENS) {
        int t1 = LMC_MIN(n_rows, t0 + Q7_TOKENS);
        rebuild_u7(xq, w->cols, t0, t1, u7);
        u7_rows(w, u7, xscale, t0, t1, bias, y, row_begin, row_end);
    }
}
