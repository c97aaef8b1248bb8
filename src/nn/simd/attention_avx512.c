/*
 * AVX-512 attention scores: lmc_attn_scores_avx2's order (lmc_dot8's lanes
 * for each key, separate _mm512_mul_ps / _mm512_add_ps, never FMA) for a
 * whole block of 16 transposed keys (kernels.h) per register.
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
