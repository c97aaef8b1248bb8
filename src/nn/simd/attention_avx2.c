/*
 * AVX2 attention kernels. Float code in this file uses only separate
 * _mm256_mul_ps / _mm256_add_ps / _mm256_div_ps intrinsics (never FMA,
 * although -mfma is on), in exactly the order of attention.c:
 *   - scores: lane j of one register accumulates q[j+8i]*k[j+8i] for
 *     i = 0, 1, ... starting from +0 (lmc_dot8's lanes); a partial last
 *     group adds -0 in unused lanes, which leaves every value unchanged.
 *     Eight keys are combined at once with hadd, whose pairs follow the
 *     tree ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
 *   - mix: each output element is its own accumulator, so 8 elements per
 *     register follow the scalar order exactly.
 */
#include <immintrin.h>

#include "nn/kernels.h"

#define KEYS_PER_GROUP 8

/* detmath.h's lane tree for 8 registers at once: lane j of the result is
 * ((aj0+aj1)+(aj2+aj3))+((aj4+aj5)+(aj6+aj7)) for register aj. */
static inline __m256 combine_lanes_8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                                     __m256 a6, __m256 a7) {
    __m256 s01 = _mm256_hadd_ps(a0, a1), s23 = _mm256_hadd_ps(a2, a3);
    __m256 s45 = _mm256_hadd_ps(a4, a5), s67 = _mm256_hadd_ps(a6, a7);
    __m256 low = _mm256_hadd_ps(s01, s23), high = _mm256_hadd_ps(s45, s67);
    return _mm256_add_ps(_mm256_permute2f128_ps(low, high, 0x20), _mm256_permute2f128_ps(low, high, 0x31));
}

/* Lanes below n are all ones (a maskload/blend mask). */
static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* acc + q * k on the 8 elements at i; a partial group (mask) adds -0 in
 * its unused lanes. Registers are named, not arrays, so they stay in registers. */
#define ACCUMULATE_8_KEYS(product_of)               \
    do {                                            \
        a0 = _mm256_add_ps(a0, product_of(k[0]));   \
        a1 = _mm256_add_ps(a1, product_of(k[1]));   \
        a2 = _mm256_add_ps(a2, product_of(k[2]));   \
        a3 = _mm256_add_ps(a3, product_of(k[3]));   \
        a4 = _mm256_add_ps(a4, product_of(k[4]));   \
        a5 = _mm256_add_ps(a5, product_of(k[5]));   \
        a6 = _mm256_add_ps(a6, product_of(k[6]));   \
        a7 = _mm256_add_ps(a7, product_of(k[7]));   \
    } while (0)
#define FULL_PRODUCT(key) _mm256_mul_ps(qv, _mm256_loadu_ps((key) + i))
#define MASKED_PRODUCT(key) \
    _mm256_blendv_ps(negative_zero, _mm256_mul_ps(qv, _mm256_maskload_ps((key) + i, mask)), mask_ps)

/* q . k for 8 keys, in lane j of the result. */
static __m256 dots_8(const float *q, const float *const k[KEYS_PER_GROUP], int head_dim) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    int i = 0;
    for (; i + 8 <= head_dim; i += 8) {
        __m256 qv = _mm256_loadu_ps(q + i);
        ACCUMULATE_8_KEYS(FULL_PRODUCT);
    }
    if (i < head_dim) {
        const __m256i mask = lanes_below(head_dim - i);
        const __m256 mask_ps = _mm256_castsi256_ps(mask), negative_zero = _mm256_set1_ps(-0.0f);
        __m256 qv = _mm256_maskload_ps(q + i, mask);
        ACCUMULATE_8_KEYS(MASKED_PRODUCT);
    }
    return combine_lanes_8(a0, a1, a2, a3, a4, a5, a6, a7);
}

void lmc_attn_scores_avx2(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                          float *scores) {
    const __m256 scale_v = _mm256_set1_ps(scale);
    for (int t = 0; t < n_keys; t += KEYS_PER_GROUP) {
        int n = LMC_MIN(KEYS_PER_GROUP, n_keys - t);
        /* A short last group repeats its last key; the extra lanes are not stored. */
        const float *k[KEYS_PER_GROUP];
        for (int j = 0; j < KEYS_PER_GROUP; j++)
            k[j] = keys + (size_t)(t + LMC_MIN(j, n - 1)) * (size_t)head_dim;
        __m256 s = _mm256_mul_ps(dots_8(q, k, head_dim), scale_v);
        if (n == KEYS_PER_GROUP)
            _mm256_storeu_ps(scores + t, s);
        else
            _mm256_maskstore_ps(scores + t, lanes_below(n), s);
    }
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

void lmc_attn_mix_avx2(const float *weights, const float *values, int head_dim, int n_values,
                       float weight_sum, float *out) {
    const __m256 sum = _mm256_set1_ps(weight_sum);
    int d = 0;
    for (; d + 32 <= head_dim; d += 32)
        mix_32(weights, values, head_dim, n_values, sum, out, d);
    for (; d < head_dim; d += 8)
        mix_8(weights, values, head_dim, n_values, sum, out, d, lanes_below(head_dim - d));
}
