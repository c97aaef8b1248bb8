/*
 * AVX2 attention kernels. Float code in this file uses only separate
 * _mm256_mul_ps / _mm256_add_ps / _mm256_div_ps intrinsics (never FMA,
 * although -mfma is on), in exactly the order of attention.c:
 *   - scores: the keys are transposed in blocks (kernels.h), so lane i of
 *     register Lj holds lmc_dot8's lane j for key i: Lj accumulates
 *     q[d] * k[d] for d = j, j+8, ... starting from +0, and the registers
 *     combine as ((L0+L1)+(L2+L3))+((L4+L5)+(L6+L7)); 8 keys per register.
 *   - mix: each output element is its own accumulator, so 8 elements per
 *     register follow the scalar order exactly.
 */
#include <immintrin.h>
#include <string.h>
#include <stdint.h>

#include "nn/kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Lanes below n are all ones (a maskload/maskstore mask). */
static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* acc + q[d + j] * (element d + j of the 8 keys at k). */
#define ACCUMULATE(acc, j) \
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(q[d + (j)]), _mm256_loadu_ps(k + (j) * LMC_ATTN_KEY_BLOCK)))

/* q . k for the 8 keys whose elements are at k, k + LMC_ATTN_KEY_BLOCK, ...;
 * lane i is key i. Registers are named, not arrays, so they stay in registers. */
static __m256 dots_8(const float *q, const float *k, int head_dim) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    int d = 0;
    for (; d + 8 <= head_dim; d += 8, k += 8 * LMC_ATTN_KEY_BLOCK) {
        ACCUMULATE(a0, 0);
        ACCUMULATE(a1, 1);
        ACCUMULATE(a2, 2);
        ACCUMULATE(a3, 3);
        ACCUMULATE(a4, 4);
        ACCUMULATE(a5, 5);
        ACCUMULATE(a6, 6);
        ACCUMULATE(a7, 7);
    }
    /* A partial last group: lanes past head_dim stay +0, as in lmc_dot8. */
    const int rest = head_dim - d;
    if (rest > 0) ACCUMULATE(a0, 0);
    if (rest > 1) ACCUMULATE(a1, 1);
    if (rest > 2) ACCUMULATE(a2, 2);
    if (rest > 3) ACCUMULATE(a3, 3);
    if (rest > 4) ACCUMULATE(a4, 4);
    if (rest > 5) ACCUMULATE(a5, 5);
    if (rest > 6) ACCUMULATE(a6, 6);
    __m256 low = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m256 high = _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7));
    return _mm256_add_ps(low, high);
}

void lmc_attn_scores_avx2(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                          float *scores) {
    const __m256 scale_v = _mm256_set1_ps(scale);
    for (int t = 0; t < n_keys; t += 8) {
        /* Keys t .. t+8 are one half of a block. */
        const float *k = keys + (size_t)(t / LMC_ATTN_KEY_BLOCK) * (size_t)head_dim * LMC_ATTN_KEY_BLOCK +
                         (size_t)(t % LMC_ATTN_KEY_BLOCK);
        __m256 s = _mm256_mul_ps(dots_8(q, k, head_dim), scale_v);
        if (n_keys - t >= 8)
            _mm256_storeu_ps(scores + t, s);
        else
            _mm256_maskstore_ps(scores + t, lanes_below(n_keys - t), s);
    }
}

/* ---- Two queries over one pass of the keys ----
 * The query heads of a kv head read the same keys. Each lane sum Lj is a
 * chain of adds of its own (d = j, j+8, ...), so the chains can run in any
 * order: here lanes j and j+1 of both queries for the 16 keys of a block
 * run together (8 chains: each key vector loaded, each query element
 * broadcast, serves two of them), and are combined as soon as they are
 * complete, in the tree's own order: (L0+L1) then (L2+L3) give the low
 * half, (L4+L5) and (L6+L7) the high half. */

/* L_j + L_j+1 (j even) over the block at k: sums[2h + i] for query i and
 * the keys 8h .. 8h+8 of the block. */
ALWAYS_INLINE void lane_pair_2q(const float *q0, const float *q1, const float *k, int head_dim, int j,
                                __m256 sums[4]) {
    __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, c0 = a0, e0 = a0, c1 = a0, e1 = a0;
    int d = j;
    for (; d + 1 < head_dim; d += 8) {
        const float *ra = k + (size_t)d * LMC_ATTN_KEY_BLOCK, *rb = ra + LMC_ATTN_KEY_BLOCK;
        __m256 u0 = _mm256_set1_ps(q0[d]), v0 = _mm256_set1_ps(q0[d + 1]);
        __m256 u1 = _mm256_set1_ps(q1[d]), v1 = _mm256_set1_ps(q1[d + 1]);
        __m256 ka = _mm256_loadu_ps(ra), kb = _mm256_loadu_ps(rb);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(u0, ka));
        b0 = _mm256_add_ps(b0, _mm256_mul_ps(v0, kb));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(u1, ka));
        b1 = _mm256_add_ps(b1, _mm256_mul_ps(v1, kb));
        __m256 kc = _mm256_loadu_ps(ra + 8), ke = _mm256_loadu_ps(rb + 8);
        c0 = _mm256_add_ps(c0, _mm256_mul_ps(u0, kc));
        e0 = _mm256_add_ps(e0, _mm256_mul_ps(v0, ke));
        c1 = _mm256_add_ps(c1, _mm256_mul_ps(u1, kc));
        e1 = _mm256_add_ps(e1, _mm256_mul_ps(v1, ke));
    }
    if (d < head_dim) { /* lane j has one term more than lane j+1 */
        const float *ra = k + (size_t)d * LMC_ATTN_KEY_BLOCK;
        __m256 u0 = _mm256_set1_ps(q0[d]), u1 = _mm256_set1_ps(q1[d]);
        __m256 ka = _mm256_loadu_ps(ra), kc = _mm256_loadu_ps(ra + 8);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(u0, ka));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(u1, ka));
        c0 = _mm256_add_ps(c0, _mm256_mul_ps(u0, kc));
        c1 = _mm256_add_ps(c1, _mm256_mul_ps(u1, kc));
    }
    sums[0] = _mm256_add_ps(a0, b0);
    sums[1] = _mm256_add_ps(a1, b1);
    sums[2] = _mm256_add_ps(c0, e0);
    sums[3] = _mm256_add_ps(c1, e1);
}

/* dots_8 of q0 and q1 with the 16 keys of the block at k, in lane_pair_2q's
 * order of results. */
static void dots_16_2q(const float *q0, const float *q1, const float *k, int head_dim, __m256 dots[4]) {
    __m256 p[4], r[4], low[4];
    lane_pair_2q(q0, q1, k, head_dim, 0, p);
    lane_pair_2q(q0, q1, k, head_dim, 2, r);
    for (int i = 0; i < 4; i++)
        low[i] = _mm256_add_ps(p[i], r[i]);
    lane_pair_2q(q0, q1, k, head_dim, 4, p);
    lane_pair_2q(q0, q1, k, head_dim, 6, r);
    for (int i = 0; i < 4; i++)
        dots[i] = _mm256_add_ps(low[i], _mm256_add_ps(p[i], r[i]));
}

/* Stores the scores of keys t .. t+8 (those below n_keys). */
static void store_scores(float *scores, int t, int n_keys, __m256 s) {
    if (n_keys - t >= 8)
        _mm256_storeu_ps(scores + t, s);
    else
        _mm256_maskstore_ps(scores + t, lanes_below(n_keys - t), s);
}

void lmc_attn_scores_group_avx2(const float *q, int n_queries, const float *keys, int head_dim, int n_keys,
                                float scale, float *scores, size_t scores_stride) {
    const __m256 scale_v = _mm256_set1_ps(scale);
    int i = 0;
    for (; i + 2 <= n_queries; i += 2) {
        const float *q0 = q + (size_t)i * (size_t)head_dim, *q1 = q0 + head_dim;
        float *s0 = scores + (size_t)i * scores_stride, *s1 = s0 + scores_stride;
        /* Whole blocks: the keys past n_keys are read, their scores not stored. */
        for (int t = 0; t < n_keys; t += LMC_ATTN_KEY_BLOCK) {
            __m256 dots[4];
            dots_16_2q(q0, q1, keys + (size_t)t * (size_t)head_dim, head_dim, dots);
            store_scores(s0, t, n_keys, _mm256_mul_ps(dots[0], scale_v));
            store_scores(s1, t, n_keys, _mm256_mul_ps(dots[1], scale_v));
            if (t + 8 < n_keys) {
                store_scores(s0, t + 8, n_keys, _mm256_mul_ps(dots[2], scale_v));
                store_scores(s1, t + 8, n_keys, _mm256_mul_ps(dots[3], scale_v));
            }
        }
    }
    for (; i < n_queries; i++)
        lmc_attn_scores_avx2(q + (size_t)i * (size_t)head_dim, keys, head_dim, n_keys, scale,
                             scores + (size_t)i * scores_stride);
}

/* out[d0 .. d0+32): four named accumulators. */
static void mix_32(const float *weights, const float *values, int head_dim, int n_values, __m256 sum,
                   float *out, int d0) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float *v = values + d0;
    for (int t = 0; t < n_values; t++, v += head_dim) {
        __m256 w = _mm256_set1_ps(weights[t]);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(w, _mm256_loadu_ps(v)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(w, _mm256_loadu_ps(v + 8)));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(w, _mm256_loadu_ps(v + 16)));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(w, _mm256_loadu_ps(v + 24)));
    }
    _mm256_storeu_ps(out + d0, _mm256_div_ps(a0, sum));
    _mm256_storeu_ps(out + d0 + 8, _mm256_div_ps(a1, sum));
    _mm256_storeu_ps(out + d0 + 16, _mm256_div_ps(a2, sum));
    _mm256_storeu_ps(out + d0 + 24, _mm256_div_ps(a3, sum));
}

/* out[d0 .. d0+8), only the lanes in mask (the rest are neither read nor stored). */
static void mix_8(const float *weights, const float *values, int head_dim, int n_values, __m256 sum,
                  float *out, int d0, __m256i mask) {
    __m256 a = _mm256_setzero_ps();
    const float *v = values + d0;
    for (int t = 0; t < n_values; t++, v += head_dim)
        a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(weights[t]), _mm256_maskload_ps(v, mask)));
    _mm256_maskstore_ps(out + d0, mask, _mm256_div_ps(a, sum));
}

/* The mix reads each value row in 128-byte parts, one per pass over the
 * rows, a stride the hardware prefetcher follows late (the caches of a
 * window are larger than L2): the part PREFETCH_ROWS rows ahead is asked
 * for explicitly. Measured on Zen 3, attention of 48 kv heads over 320
 * positions: about 43 -> 39 ms (4 rows ahead: 40; prefetching the keys of
 * the scores as well made it slower). */
#define PREFETCH_ROWS 8

/* The 128 bytes `ahead` bytes after p. The address is computed as an
 * integer: near the end it lies past the cache, and a prefetch never
 * faults, but a pointer there would not be valid C. */
static void prefetch_128_bytes(const float *p, size_t ahead) {
    uintptr_t at = (uintptr_t)p + ahead;
    _mm_prefetch((const char *)at, _MM_HINT_T0);
    _mm_prefetch((const char *)(at + 64), _MM_HINT_T0);
}

/* out0/out1[d0 .. d0+32) for two queries over the same values. */
static void mix_32_pair(const float *w0, const float *w1, const float *values, int head_dim, int n_values,
                        __m256 sum0, __m256 sum1, float *out0, float *out1, int d0) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const float *v = values + d0;
    const size_t ahead = (size_t)PREFETCH_ROWS * (size_t)head_dim * sizeof(float);
    for (int t = 0; t < n_values; t++, v += head_dim) {
        prefetch_128_bytes(v, ahead);
        __m256 x0 = _mm256_loadu_ps(v), x1 = _mm256_loadu_ps(v + 8);
        __m256 x2 = _mm256_loadu_ps(v + 16), x3 = _mm256_loadu_ps(v + 24);
        __m256 u = _mm256_set1_ps(w0[t]), w = _mm256_set1_ps(w1[t]);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(u, x0));
        b0 = _mm256_add_ps(b0, _mm256_mul_ps(w, x0));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(u, x1));
        b1 = _mm256_add_ps(b1, _mm256_mul_ps(w, x1));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(u, x2));
        b2 = _mm256_add_ps(b2, _mm256_mul_ps(w, x2));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(u, x3));
        b3 = _mm256_add_ps(b3, _mm256_mul_ps(w, x3));
    }
    _mm256_storeu_ps(out0 + d0, _mm256_div_ps(a0, sum0));
    _mm256_storeu_ps(out0 + d0 + 8, _mm256_div_ps(a1, sum0));
    _mm256_storeu_ps(out0 + d0 + 16, _mm256_div_ps(a2, sum0));
    _mm256_storeu_ps(out0 + d0 + 24, _mm256_div_ps(a3, sum0));
    _mm256_storeu_ps(out1 + d0, _mm256_div_ps(b0, sum1));
    _mm256_storeu_ps(out1 + d0 + 8, _mm256_div_ps(b1, sum1));
    _mm256_storeu_ps(out1 + d0 + 16, _mm256_div_ps(b2, sum1));
    _mm256_storeu_ps(out1 + d0 + 24, _mm256_div_ps(b3, sum1));
}

/* out0/out1[d0 .. d0+8) for two queries, only the lanes in mask. */
static void mix_8_pair(const float *w0, const float *w1, const float *values, int head_dim, int n_values,
                       __m256 sum0, __m256 sum1, float *out0, float *out1, int d0, __m256i mask) {
    __m256 a = _mm256_setzero_ps(), b = a;
    const float *v = values + d0;
    for (int t = 0; t < n_values; t++, v += head_dim) {
        __m256 x = _mm256_maskload_ps(v, mask);
        a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(w0[t]), x));
        b = _mm256_add_ps(b, _mm256_mul_ps(_mm256_set1_ps(w1[t]), x));
    }
    _mm256_maskstore_ps(out0 + d0, mask, _mm256_div_ps(a, sum0));
    _mm256_maskstore_ps(out1 + d0, mask, _mm256_div_ps(b, sum1));
}

static void mix_one(const float *weights, float weight_sum, const float *values, int head_dim, int n_values,
                    float *out) {
    const __m256 sum = _mm256_set1_ps(weight_sum);
    int d = 0;
    for (; d + 32 <= head_dim; d += 32)
        mix_32(weights, values, head_dim, n_values, sum, out, d);
    for (; d < head_dim; d += 8)
        mix_8(weights, values, head_dim, n_values, sum, out, d, lanes_below(head_dim - d));
}

static void mix_pair(const float *w0, const float *w1, float weight_sum0, float weight_sum1, const float *values,
                     int head_dim, int n_values, float *out0, float *out1) {
    const __m256 sum0 = _mm256_set1_ps(weight_sum0), sum1 = _mm256_set1_ps(weight_sum1);
    int d = 0;
    for (; d + 32 <= head_dim; d += 32)
        mix_32_pair(w0, w1, values, head_dim, n_values, sum0, sum1, out0, out1, d);
    for (; d < head_dim; d += 8)
        mix_8_pair(w0, w1, values, head_dim, n_values, sum0, sum1, out0, out1, d, lanes_below(head_dim - d));
}

/* Queries go in pairs (twice the independent add chains per value row read). */
void lmc_attn_mix_avx2(const float *weights, size_t weights_stride, const float *weight_sums, int n_queries,
                       const float *values, int head_dim, int n_values, float *out) {
    int i = 0;
    for (; i + 2 <= n_queries; i += 2)
        mix_pair(weights + (size_t)i * weights_stride, weights + (size_t)(i + 1) * weights_stride,
                 weight_sums[i], weight_sums[i + 1], values, head_dim, n_values, out + (size_t)i * (size_t)head_dim,
                 out + (size_t)(i + 1) * (size_t)head_dim);
    for (; i < n_queries; i++)
        mix_one(weights + (size_t)i * weights_stride, weight_sums[i], values, head_dim, n_values,
                out + (size_t)i * (size_t)head_dim);
}

/* ---- int8 attention (numerics v3) ----
 * Scores: vpmaddubsw multiplies unsigned by signed bytes, so the 7-bit
 * queries go in as q + 64 (1..127; a pair of products with keys in
 * [-127, 127] stays within int16) and 64 * k_sum comes off afterwards.
 * One 32-byte load holds 4 elements of each of 8 positions; vpmaddwd by
 * ones adds each position's pairs into int32 lanes, one per position. */

/* The 8 positions of the key block at k, for two queries (b0, b1: q + 64). */
static void key_block_dots_2q(const uint8_t *b0, const uint8_t *b1, const int8_t *k, int padded, __m256i *dot0,
                              __m256i *dot1) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (int g = 0; g < padded; g += 4, k += 4 * LMC_ATTN8_KEY_BLOCK) {
        __m256i keys = _mm256_loadu_si256((const __m256i *)k);
        int32_t w0, w1;
        memcpy(&w0, b0 + g, 4);
        memcpy(&w1, b1 + g, 4);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi32(w0), keys), ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi32(w1), keys), ones));
    }
    *dot0 = a0;
    *dot1 = a1;
}

/* s_t for the 8 positions from t of the raw sums (of q + 64). */
static __m256 block_scores(__m256i raw, const int32_t *k_sum, const float *k_scale, float factor) {
    __m256i dot = _mm256_sub_epi32(raw, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)k_sum), 6));
    __m256 f = _mm256_mul_ps(_mm256_set1_ps(factor), _mm256_loadu_ps(k_scale));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(dot), f);
}

/* q + 64 of one query head into a buffer of padded bytes. */
static void biased_query(const int8_t *q, int padded, uint8_t *out) {
    for (int d = 0; d < padded; d++)
        out[d] = (uint8_t)(q[d] + 64);
}

void lmc_attn8_scores_avx2(const int8_t *q, const float *factor, int n_queries, const int8_t *keys,
                           const float *k_scale, const int32_t *k_sum, int head_dim, int n_keys, float *scores,
                           size_t scores_stride) {
    const int padded = lmc_attn8_padded_dim(head_dim);
    uint8_t b0[LMC_ATTN8_MAX_HEAD_DIM], b1[LMC_ATTN8_MAX_HEAD_DIM];
    for (int i = 0; i < n_queries; i += 2) {
        /* An odd last query pairs with itself; its twin's scores are dropped. */
        const int j = i + 1 < n_queries ? i + 1 : i;
        biased_query(q + (size_t)i * (size_t)padded, padded, b0);
        biased_query(q + (size_t)j * (size_t)padded, padded, b1);
        float *s0 = scores + (size_t)i * scores_stride, *s1 = scores + (size_t)j * scores_stride;
        for (int t = 0; t < n_keys; t += LMC_ATTN8_KEY_BLOCK) {
            __m256i raw0, raw1;
            key_block_dots_2q(b0, b1, keys + (size_t)t * (size_t)padded, padded, &raw0, &raw1);
            store_scores(s0, t, n_keys, block_scores(raw0, k_sum + t, k_scale + t, factor[i]));
            store_scores(s1, t, n_keys, block_scores(raw1, k_sum + t, k_scale + t, factor[j]));
        }
    }
}

/* Mix: each pair of positions is one vpmaddwd of 16 value bytes (8
 * elements x 2 positions, widened to int16) by the pair of 15-bit weights;
 * int32 sums are exact for 512 positions (2 * 256 * 32767 * 127 < 2^31),
 * so longer spans are summed in chunks into int64. */
#define MIX8_CHUNK_PAIRS 256

/* acc[k] += the four int32 lanes' sums, 8 elements each. */
static void add_sums(const __m256i a[4], int64_t *acc) {
    int32_t sums[32];
    for (int k = 0; k < 4; k++)
        _mm256_storeu_si256((__m256i *)(sums + 8 * k), a[k]);
    for (int k = 0; k < 32; k++)
        acc[k] += sums[k];
}

/* The 32 elements from d0 of the pair of positions p, widened to int16. */
static void load_value_pair(const int8_t *values, int head_dim, int d0, int p, __m256i x[4]) {
    const int8_t *v = values + (size_t)p * 2 * (size_t)head_dim + 2 * (size_t)d0;
    for (int k = 0; k < 4; k++)
        x[k] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(v + 16 * k)));
}

static __m256i weight_pair(const int16_t *w, int p) {
    int32_t pair;
    memcpy(&pair, w + 2 * p, 4);
    return _mm256_set1_epi32(pair);
}

/* acc0/acc1[0..32) += the sums of 32 elements from d0 over pairs [p0, p1)
 * for two queries at once (each value pair loaded once for both); w1 ==
 * w0 with acc1 == NULL for one query. */
static void mix8_chunk_32(const int16_t *w0, const int16_t *w1, const int8_t *values, int head_dim, int d0, int p0,
                          int p1, int64_t *acc0, int64_t *acc1) {
    __m256i a[4], b[4];
    for (int k = 0; k < 4; k++)
        a[k] = b[k] = _mm256_setzero_si256();
    for (int p = p0; p < p1; p++) {
        __m256i x[4];
        load_value_pair(values, head_dim, d0, p, x);
        const __m256i u = weight_pair(w0, p), v = weight_pair(w1, p);
        for (int k = 0; k < 4; k++) {
            a[k] = _mm256_add_epi32(a[k], _mm256_madd_epi16(x[k], u));
            b[k] = _mm256_add_epi32(b[k], _mm256_madd_epi16(x[k], v));
        }
    }
    add_sums(a, acc0);
    if (acc1)
        add_sums(b, acc1);
}

/* The scalar sum for elements [d0, head_dim) (fewer than 32 left). */
static void mix8_tail(const int16_t *w, const int8_t *values, int head_dim, int d0, int n_values, int64_t *acc) {
    for (int d = d0; d < head_dim; d++)
        for (int t = 0; t < n_values; t++)
            acc[d] += (int64_t)w[t] * values[lmc_attn8_value_index(head_dim, t, d)];
}

static void mix8_finish(const int64_t *acc, float w_scale, float weight_sum, int head_dim, float *out) {
    for (int k = 0; k < head_dim; k++)
        out[k] = ((float)acc[k] * w_scale) / weight_sum;
}

/* Queries go in pairs (each value pair read once for both). */
void lmc_attn8_mix_avx2(const int16_t *weights, size_t weights_stride, const float *w_scale,
                        const float *weight_sums, int n_queries, const int8_t *values, int head_dim, int n_values,
                        float *out) {
    const int pairs = (n_values + 1) / 2;
    int64_t acc0[LMC_ATTN8_MAX_HEAD_DIM], acc1[LMC_ATTN8_MAX_HEAD_DIM];
    for (int i = 0; i < n_queries; i += 2) {
        const int two = i + 1 < n_queries;
        const int16_t *w0 = weights + (size_t)i * weights_stride, *w1 = two ? w0 + weights_stride : w0;
        memset(acc0, 0, (size_t)head_dim * sizeof *acc0);
        memset(acc1, 0, (size_t)head_dim * sizeof *acc1);
        int d = 0;
        for (; d + 32 <= head_dim; d += 32)
            for (int p = 0; p < pairs; p += MIX8_CHUNK_PAIRS)
                mix8_chunk_32(w0, w1, values, head_dim, d, p, LMC_MIN(pairs, p + MIX8_CHUNK_PAIRS), acc0 + d,
                              two ? acc1 + d : NULL);
        mix8_tail(w0, values, head_dim, d, n_values, acc0);
        mix8_finish(acc0, w_scale[i], weight_sums[i], head_dim, out + (size_t)i * (size_t)head_dim);
        if (two) {
            mix8_tail(w1, values, head_dim, d, n_values, acc1);
            mix8_finish(acc1, w_scale[i + 1], weight_sums[i + 1], head_dim, out + (size_t)(i + 1) * (size_t)head_dim);
        }
    }
}

/* attention.c's weights step on 8 lanes: _mm256_max_ps(w, m) keeps m when
 * w is a NaN, as the scalar comparison does; the rounding's masks are
 * false for NaNs, which give 0. */
float lmc_attn8_weights_avx2(const float *e, const float *v_scale, int n, int16_t *wq) {
    __m256 m = _mm256_setzero_ps();
    int t = 0;
    for (; t + 8 <= n; t += 8)
        m = _mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(e + t), _mm256_loadu_ps(v_scale + t)), m);
    float lanes[8], max;
    _mm256_storeu_ps(lanes, m);
    max = lanes[0];
    for (int j = 1; j < 8; j++)
        max = lanes[j] > max ? lanes[j] : max;
    for (; t < n; t++) {
        float w = e[t] * v_scale[t];
        max = w > max ? w : max;
    }
    if (!(max > 0.0f))
        return lmc_attn8_weights_scalar(e, v_scale, n, wq);
    if (n % 2)
        wq[n] = 0;
    const float r = 32767.0f / max;
    const __m256 r_v = _mm256_set1_ps(r), half = _mm256_set1_ps(0.5f), top = _mm256_set1_ps(32767.0f);
    for (t = 0; t + 16 <= n; t += 16) {
        __m256i q[2];
        for (int k = 0; k < 2; k++) {
            __m256 x = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(e + t + 8 * k), _mm256_loadu_ps(v_scale + t + 8 * k)),
                                     r_v);
            __m256i rounded = _mm256_cvttps_epi32(_mm256_add_ps(x, half));
            rounded = _mm256_and_si256(rounded, _mm256_castps_si256(_mm256_cmp_ps(x, half, _CMP_GE_OQ)));
            q[k] = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(32767),
                                      _mm256_castps_si256(_mm256_cmp_ps(x, top, _CMP_GE_OQ)));
        }
        /* packs works per 128-bit half: the permute restores the order. */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
        _mm256_storeu_si256((__m256i *)(wq + t), packed);
    }
    for (; t < n; t++) {
        float x = (e[t] * v_scale[t]) * r;
        wq[t] = (int16_t)(!(x >= 0.5f) ? 0 : x >= 32767.0f ? 32767 : (int)(x + 0.5f));
    }
    return max / 32767.0f;
}
