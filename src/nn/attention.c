/*
 * Scalar attention kernels: the reference order that the SIMD versions
 * reproduce bit for bit (see kernels.h).
 */
#include "common/detmath.h"
#include "nn/kernels.h"

void lmc_attn_scores_scalar(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                            float *scores) {
    for (int t = 0; t < n_keys; t++)
        scores[t] = lmc_dot8(q, keys + (size_t)t * (size_t)head_dim, head_dim) * scale;
}

void lmc_attn_mix_scalar(const float *weights, const float *values, int head_dim, int n_values,
                         float weight_sum, float *out) {
    for (int d = 0; d < head_dim; d++)
        out[d] = 0.0f;
    for (int t = 0; t < n_values; t++) {
        const float *v = values + (size_t)t * (size_t)head_dim;
        for (int d = 0; d < head_dim; d++)
            out[d] = out[d] + weights[t] * v[d];
    }
    for (int d = 0; d < head_dim; d++)
        out[d] = out[d] / weight_sum;
}
