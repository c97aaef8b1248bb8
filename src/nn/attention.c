/*
 * Scalar attention kernels: the reference order that the SIMD versions
 * reproduce bit for bit (see kernels.h).
 */
#include <string.h>

#include "common/detmath.h"
#include "nn/kernels.h"

/* One block of keys at once: lane[j][i] is lmc_dot8's lane j for key i of
 * the block (element-wise loops that compilers vectorise without changing
 * the order of any single key's operations). */
void lmc_attn_scores_scalar(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                            float *scores) {
    enum { B = LMC_ATTN_KEY_BLOCK };
    for (int first = 0; first < n_keys; first += B) {
        const float *block = keys + (size_t)first * (size_t)head_dim;
        float lane[8][B] = {{0}};
        for (int d = 0; d < head_dim; d++)
            for (int i = 0; i < B; i++)
                lane[d % 8][i] += q[d] * block[(size_t)d * B + (size_t)i];
        const int n = LMC_MIN(B, n_keys - first);
        for (int i = 0; i < n; i++) {
            float low = (lane[0][i] + lane[1][i]) + (lane[2][i] + lane[3][i]);
            float high = (lane[4][i] + lane[5][i]) + (lane[6][i] + lane[7][i]);
            scores[first + i] = (low + high) * scale;
        }
    }
}

void lmc_attn_scores_group_scalar(const float *q, int n_queries, const float *keys, int head_dim, int n_keys,
                                  float scale, float *scores, size_t scores_stride) {
    for (int i = 0; i < n_queries; i++)
        lmc_attn_scores_scalar(q + (size_t)i * (size_t)head_dim, keys, head_dim, n_keys, scale,
                               scores + (size_t)i * scores_stride);
}

void lmc_attn_mix_scalar(const float *weights, size_t weights_stride, const float *weight_sums, int n_queries,
                         const float *values, int head_dim, int n_values, float *out) {
    for (int i = 0; i < n_queries; i++, weights += weights_stride, out += head_dim) {
        for (int d = 0; d < head_dim; d++)
            out[d] = 0.0f;
        for (int t = 0; t < n_values; t++) {
            const float *v = values + (size_t)t * (size_t)head_dim;
            for (int d = 0; d < head_dim; d++)
                out[d] = out[d] + weights[t] * v[d];
        }
        for (int d = 0; d < head_dim; d++)
            out[d] = out[d] / weight_sums[i];
    }
}

/* ---- int8 attention (numerics v3) ---- */

static int32_t key_dot(const int8_t *q, const int8_t *keys, int padded_dim, int pos) {
    int32_t dot = 0;
    for (int d = 0; d < padded_dim; d++)
        dot += (int32_t)q[d] * (int32_t)keys[lmc_attn8_key_index(padded_dim, pos, d)];
    return dot;
}

void lmc_attn8_scores_scalar(const int8_t *q, const float *factor, int n_queries, const int8_t *keys,
                             const float *k_scale, const int32_t *k_sum, int head_dim, int n_keys, float *scores,
                             size_t scores_stride) {
    (void)k_sum;
    const int padded = lmc_attn8_padded_dim(head_dim);
    for (int i = 0; i < n_queries; i++, q += padded, scores += scores_stride)
        for (int t = 0; t < n_keys; t++)
            scores[t] = (float)key_dot(q, keys, padded, t) * (factor[i] * k_scale[t]);
}

void lmc_attn8_mix_scalar(const int16_t *weights, size_t weights_stride, const float *w_scale,
                          const float *weight_sums, int n_queries, const int8_t *values, int head_dim, int n_values,
                          float *out) {
    for (int i = 0; i < n_queries; i++, weights += weights_stride, out += head_dim)
        for (int d = 0; d < head_dim; d++) {
            int64_t acc = 0;
            for (int t = 0; t < n_values; t++)
                acc += (int64_t)weights[t] * values[lmc_attn8_value_index(head_dim, t, d)];
            out[d] = ((float)acc * w_scale[i]) / weight_sums[i];
        }
}

float lmc_attn8_weights_scalar(const float *e, const float *v_scale, int n, int16_t *wq) {
    float max = 0.0f;
    for (int t = 0; t < n; t++) {
        float w = e[t] * v_scale[t];
        max = w > max ? w : max;
    }
    if (n % 2)
        wq[n] = 0;
    if (!(max > 0.0f)) {
        memset(wq, 0, (size_t)n * sizeof *wq);
        return 0.0f;
    }
    const float r = 32767.0f / max;
    for (int t = 0; t < n; t++) {
        float x = (e[t] * v_scale[t]) * r;
        wq[t] = (int16_t)(!(x >= 0.5f) ? 0 : x >= 32767.0f ? 32767 : (int)(x + 0.5f));
    }
    return max / 32767.0f;
}
