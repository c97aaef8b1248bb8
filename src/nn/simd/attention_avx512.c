/*
 * AVX-512 attention scores: lmc_attn_scores_avx2's order (lmc_dot8's lanes
 * for each key, separate _mm512_mul_ps / _mm512_add_ps, never FMA) for a
 * whole block of 16 transposed keys (kernels.h) per register; and the
 * attention mix in lmc_attn_mix_avx2's order.
 */
#include <immintrin.h>

#include "nn/kernels.h"

_Static_assert(LMC_ATTN_KEY_BLOCK == 16, "one 512-bit register holds one block of keys");

/* acc + q[d + j] * (element d + j of the block's 16 keys at k). */
#define ACCUMULATE(acc, j) \
    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(q[d + (j)]), _mm512_loadu_ps(k + (j) * LMC_ATTN_KEY_BLOCK)))

/* q . k for the 16 keys of the block at k; lane i is key i. */
static __m512 dots_16(const float *q, const float *k, int head_dim) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
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
    __m512 low = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    __m512 high = _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7));
    return _mm512_add_ps(low, high);
}

void lmc_attn_scores_avx512(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                            float *scores) {
    const __m512 scale_v = _mm512_set1_ps(scale);
    for (int t = 0; t < n_keys; t += LMC_ATTN_KEY_BLOCK) {
        __m512 s = _mm512_mul_ps(dots_16(q, keys + (size_t)t * (size_t)head_dim, head_dim), scale_v);
        const int n = n_keys - t;
        if (n >= LMC_ATTN_KEY_BLOCK)
            _mm512_storeu_ps(scores + t, s);
        else
            _mm512_mask_storeu_ps(scores + t, (__mmask16)((1u << n) - 1u), s);
    }
}

void lmc_attn_scores_group_avx512(const float *q, int n_queries, const float *keys, int head_dim, int n_keys,
                                  float scale, float *scores, size_t scores_stride) {
    for (int i = 0; i < n_queries; i++)
        lmc_attn_scores_avx512(q + (size_t)i * (size_t)head_dim, keys, head_dim, n_keys, scale,
                               scores + (size_t)i * scores_stride);
}

/* ---- Attention mix: lmc_attn_mix_avx2's order (per output element, the
 * products w[t] * v[t][d] added in t order with separate mul and add),
 * 16 elements per register. ---- */

static __mmask16 elements_below(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* out[d0 .. d0+16) of one query, only the elements in mask. */
static void mix_16(const float *weights, const float *values, int head_dim, int n_values, __m512 sum, float *out,
                   int d0, __mmask16 mask) {
    __m512 a = _mm512_setzero_ps();
    const float *v = values + d0;
    for (int t = 0; t < n_values; t++, v += head_dim)
        a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(weights[t]), _mm512_maskz_loadu_ps(mask, v)));
    _mm512_mask_storeu_ps(out + d0, mask, _mm512_div_ps(a, sum));
}

/* out0/out1[d0 .. d0+64) for two queries over the same values. */
static void mix_64_pair(const float *w0, const float *w1, const float *values, int head_dim, int n_values,
                        __m512 sum0, __m512 sum1, float *out0, float *out1, int d0) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const float *v = values + d0;
    for (int t = 0; t < n_values; t++, v += head_dim) {
        __m512 x0 = _mm512_loadu_ps(v), x1 = _mm512_loadu_ps(v + 16);
        __m512 x2 = _mm512_loadu_ps(v + 32), x3 = _mm512_loadu_ps(v + 48);
        __m512 u = _mm512_set1_ps(w0[t]), w = _mm512_set1_ps(w1[t]);
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(u, x0));
        b0 = _mm512_add_ps(b0, _mm512_mul_ps(w, x0));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(u, x1));
        b1 = _mm512_add_ps(b1, _mm512_mul_ps(w, x1));
        a2 = _mm512_add_ps(a2, _mm512_mul_ps(u, x2));
        b2 = _mm512_add_ps(b2, _mm512_mul_ps(w, x2));
        a3 = _mm512_add_ps(a3, _mm512_mul_ps(u, x3));
        b3 = _mm512_add_ps(b3, _mm512_mul_ps(w, x3));
    }
    _mm512_storeu_ps(out0 + d0, _mm512_div_ps(a0, sum0));
    _mm512_storeu_ps(out0 + d0 + 16, _mm512_div_ps(a1, sum0));
    _mm512_storeu_ps(out0 + d0 + 32, _mm512_div_ps(a2, sum0));
    _mm512_storeu_ps(out0 + d0 + 48, _mm512_div_ps(a3, sum0));
    _mm512_storeu_ps(out1 + d0, _mm512_div_ps(b0, sum1));
    _mm512_storeu_ps(out1 + d0 + 16, _mm512_div_ps(b1, sum1));
    _mm512_storeu_ps(out1 + d0 + 32, _mm512_div_ps(b2, sum1));
    _mm512_storeu_ps(out1 + d0 + 48, _mm512_div_ps(b3, sum1));
}

static void mix_one(const float *weights, float weight_sum, const float *values, int head_dim, int n_values,
                    float *out) {
    const __m512 sum = _mm512_set1_ps(weight_sum);
    for (int d = 0; d < head_dim; d += 16)
        mix_16(weights, values, head_dim, n_values, sum, out, d, elements_below(head_dim - d));
}

/* Queries go in pairs while 64 elements remain; the rest one query at a time. */
void lmc_attn_mix_avx512(const float *weights, size_t weights_stride, const float *weight_sums, int n_queries,
                         const float *values, int head_dim, int n_values, float *out) {
    int i = 0;
    for (; i + 2 <= n_queries; i += 2) {
        const float *w0 = weights + (size_t)i * weights_stride, *w1 = w0 + weights_stride;
        float *out0 = out + (size_t)i * (size_t)head_dim, *out1 = out0 + head_dim;
        const __m512 sum0 = _mm512_set1_ps(weight_sums[i]), sum1 = _mm512_set1_ps(weight_sums[i + 1]);
        int d = 0;
        for (; d + 64 <= head_dim; d += 64)
            mix_64_pair(w0, w1, values, head_dim, n_values, sum0, sum1, out0, out1, d);
        for (; d < head_dim; d += 16) {
            __mmask16 mask = elements_below(head_dim - d);
            mix_16(w0, values, head_dim, n_values, sum0, out0, d, mask);
            mix_16(w1, values, head_dim, n_values, sum1, out1, d, mask);
        }
    }
    for (; i < n_queries; i++)
        mix_one(weights + (size_t)i * weights_stride, weight_sums[i], values, head_dim, n_values,
                out + (size_t)i * (size_t)head_dim);
}
