/*
 * Internal kernels of the nn stage, one implementation per SIMD level.
 *
 * Every variant of a kernel computes bit-identical results: the integer
 * matmuls because int32 sums are exact, the float kernels because they
 * perform the same IEEE operations in the same order as the scalar code
 * (products rounded, then added; never fused). tests/test_nn.c calls each
 * variant directly and compares them.
 */
#ifndef LMC_NN_KERNELS_H
#define LMC_NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"

/* ---- int16 x int8 matmul ----
 * Computes y[t][o] for every token t < n_rows and output o in
 * [row_begin, row_end); y has a row stride of w->rows floats. Row t of xq
 * is two planes of w->cols int8 (hi at xq + 2t*cols, lo after it) and
 *   y[t][o] = ((float)dot(hi, w->q[o]) * 256.0f + (float)dot(lo, w->q[o]))
 *             * (xscale[t] * w->scale[o])  (+ bias[o])
 * with both int32 dot products exact (products rounded, then added; the
 * * 256 is exact). The AVX-512 kernel needs w->row_sum. */
typedef void (*lmc_q8_kernel)(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                              const float *bias, float *y, int row_begin, int row_end);

void lmc_q8_kernel_scalar(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end);
void lmc_q8_kernel_avx2(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                        const float *bias, float *y, int row_begin, int row_end);
void lmc_q8_kernel_avx512(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end);

/* 7-bit activations only (their hi planes are zero and |lo| <= 63): the
 * same results from the lo planes alone, on lo + 64, by vpmaddubsw (AVX2)
 * or vpdpbusd (AVX-512 VNNI). */
void lmc_q7_kernel_avx2(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                        const float *bias, float *y, int row_begin, int row_end);
void lmc_q7_kernel_avx512(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end);

/* The 7-bit kernels multiply u = lo + LMC_Q7_OFFSET (unsigned) and take
 * LMC_Q7_OFFSET * row_sum back. Rows [o, row_end) of tokens [t0, t1), whose
 * u rows (w->cols bytes each, token t0 first) are at u7: the rows a kernel
 * leaves after its whole tiles, one at a time, with the same sums (inline:
 * the kernels measured slower calling it out of line). */
#define LMC_Q7_OFFSET 64
static inline void lmc_q7_rows_scalar(const lmc_qmat *w, const uint8_t *u7, const float *xscale, int t0, int t1,
                                      const float *bias, float *y, int o, int row_end) {
    const size_t cols = (size_t)w->cols;
    for (int t = t0; t < t1; t++) {
        const uint8_t *u = u7 + (size_t)(t - t0) * cols;
        for (int r = o; r < row_end; r++) {
            const int8_t *row = w->q + (size_t)r * cols;
            int32_t dot = 0;
            for (size_t k = 0; k < cols; k++)
                dot += (int32_t)u[k] * (int32_t)row[k];
            float value = (float)(dot - LMC_Q7_OFFSET * w->row_sum[r]) * (xscale[t] * w->scale[r]);
            y[(size_t)t * (size_t)w->rows + (size_t)r] = bias ? value + bias[r] : value;
        }
    }
}

lmc_q8_kernel lmc_q8_kernel_for(lmc_simd_level level, lmc_act_rule rule);

/* One matrix of a multi-matmul: the matrices share the quantised input. */
typedef struct {
    const lmc_qmat *w;
    const float *bias; /* or NULL */
    float *y;          /* [n_rows][w->rows] */
} lmc_matmul_job;

/* Runs several matmuls over the same input in one parallel loop (fewer
 * thread wake-ups than one lmc_matmul_q8 per matrix; same results). All
 * matrices must have the same number of columns. */
void lmc_matmul_q8_multi(lmc_pool *pool, const lmc_matmul_job *jobs, int n_jobs, const int8_t *xq,
                         const float *xscale, int n_rows, lmc_act_rule rule);

/* ---- Attention ----
 * The keys of one kv head are stored transposed in blocks of
 * LMC_ATTN_KEY_BLOCK positions, so that one vector load fetches element d of
 * 8 or 16 consecutive positions: block b holds head_dim rows of
 * LMC_ATTN_KEY_BLOCK floats, element d of position p is at
 * lmc_attn_key_index(head_dim, p, d). A key buffer always holds whole blocks:
 * the kernels read the unused positions of the last block (any values) and
 * never store their scores.
 *
 * scores[t] = lmc_dot8(q, key t, head_dim) * scale for t < n_keys (the fixed
 * lane order of detmath.h, bit for bit, evaluated for a block of keys at
 * once: lane j of key t accumulates q[d] * k_t[d] for d = j, j+8, ...). */
#define LMC_ATTN_KEY_BLOCK 16

static inline size_t lmc_attn_key_index(int head_dim, int pos, int d) {
    const size_t block = (size_t)(pos / LMC_ATTN_KEY_BLOCK);
    return (block * (size_t)head_dim + (size_t)d) * LMC_ATTN_KEY_BLOCK + (size_t)(pos % LMC_ATTN_KEY_BLOCK);
}

typedef void (*lmc_attn_scores_fn)(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                                   float *scores);
/* For each query i < n_queries: out[i*head_dim + d] = acc[d] / weight_sums[i]
 * with acc[d] = 0.0f, then acc[d] = acc[d] + weights[i*weights_stride + t] * values[t][d]
 * for t = 0, 1, ..., n_values-1 (values rows of head_dim floats). The queries
 * share the values (the query heads of one kv head): each value row is read
 * once for all of them, and their sums are independent chains of adds. */
typedef void (*lmc_attn_mix_fn)(const float *weights, size_t weights_stride, const float *weight_sums,
                                int n_queries, const float *values, int head_dim, int n_values, float *out);

void lmc_attn_scores_scalar(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                            float *scores);
void lmc_attn_scores_avx2(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                          float *scores);
void lmc_attn_scores_avx512(const float *q, const float *keys, int head_dim, int n_keys, float scale,
                            float *scores);
/* The scores of n_queries queries (q + i*head_dim: the query heads of one
 * kv head) with the same keys, row i at scores + i*scores_stride: each row
 * exactly as lmc_attn_scores_fn gives it. The AVX2 version reads the keys
 * once for two queries; the others call their lmc_attn_scores_fn per query. */
typedef void (*lmc_attn_scores_group_fn)(const float *q, int n_queries, const float *keys, int head_dim,
                                         int n_keys, float scale, float *scores, size_t scores_stride);
void lmc_attn_scores_group_scalar(const float *q, int n_queries, const float *keys, int head_dim, int n_keys,
                                  float scale, float *scores, size_t scores_stride);
void lmc_attn_scores_group_avx2(const float *q, int n_queries, const float *keys, int head_dim, int n_keys,
                                float scale, float *scores, size_t scores_stride);
void lmc_attn_scores_group_avx512(const float *q, int n_queries, const float *keys, int head_dim, int n_keys,
                                  float scale, float *scores, size_t scores_stride);
void lmc_attn_mix_scalar(const float *weights, size_t weights_stride, const float *weight_sums, int n_queries,
                         const float *values, int head_dim, int n_values, float *out);
void lmc_attn_mix_avx2(const float *weights, size_t weights_stride, const float *weight_sums, int n_queries,
                       const float *values, int head_dim, int n_values, float *out);
void lmc_attn_mix_avx512(const float *weights, size_t weights_stride, const float *weight_sums, int n_queries,
                         const float *values, int head_dim, int n_values, float *out);

/* ---- int8 attention (numerics v3, lmc_attn_rule LMC_ATTN_INT8) ----
 * Each position's rotated key and value (per kv head) are quantised by the
 * weight rule (lmc_quantize_row: int8 in [-127, 127], scales ks_t, vs_t),
 * each query head by the 7-bit rule (|q| <= 63, scale qs). For the query
 * heads of a kv head over positions t < n:
 *   scores   s_t = (float)dot(q, k_t) * (a * ks_t), a = qs * (1 / sqrtf(head_dim)),
 *            the dot exact in int32
 *   softmax  e_t = lmc_expf(s_t - max), S = lmc_sum8(e) (lmc_softmax_fn)
 *   weights  w_t = e_t * vs_t, W = max w_t, r = 32767.0f / W,
 *            wq_t = round_half_up(w_t * r) limited to [0, 32767]; wq = 0 and
 *            W = 0 when W is not > 0 (lmc_attn8_weights)
 *   mix      out[d] = ((float)acc_d * (W / 32767.0f)) / S with
 *            acc_d = sum over t of wq_t * v_t[d], exact (int64)
 * Keys are stored in blocks of LMC_ATTN8_KEY_BLOCK positions, four
 * elements of a position together, so that one 32-byte load holds four
 * elements of each of 8 positions; head_dim is padded to a multiple of 4
 * with zeros (lmc_attn8_padded_dim). Values are stored in pairs of
 * positions, element d of both together, so that one vpmaddwd multiplies
 * a pair of weights into two positions' elements. Both layouts hold whole
 * blocks and pairs: kernels read the unused positions of the last one. */
#define LMC_ATTN8_KEY_BLOCK 8

static inline int lmc_attn8_padded_dim(int head_dim) {
    return (head_dim + 3) / 4 * 4;
}

static inline size_t lmc_attn8_key_index(int padded_dim, int pos, int d) {
    return (size_t)(pos / LMC_ATTN8_KEY_BLOCK) * LMC_ATTN8_KEY_BLOCK * (size_t)padded_dim +
           (size_t)(d / 4) * (4 * LMC_ATTN8_KEY_BLOCK) + (size_t)(pos % LMC_ATTN8_KEY_BLOCK) * 4 + (size_t)(d % 4);
}

static inline size_t lmc_attn8_value_index(int head_dim, int pos, int d) {
    return (size_t)(pos / 2) * 2 * (size_t)head_dim + 2 * (size_t)d + (size_t)(pos % 2);
}

/* scores + i*scores_stride, for each query i < n_queries (q + i*padded
 * dim: 7-bit values, zero padded; factor[i] its a): s_t for t < n_keys.
 * k_sum[t] is the sum of key t's elements (the AVX2 kernel multiplies
 * q + 64, an unsigned byte, and subtracts 64 * k_sum). */
typedef void (*lmc_attn8_scores_fn)(const int8_t *q, const float *factor, int n_queries, const int8_t *keys,
                                    const float *k_scale, const int32_t *k_sum, int head_dim, int n_keys,
                                    float *scores, size_t scores_stride);
/* out + i*head_dim for each query i: the mix of weights + i*weights_stride
 * (wq, with a zero after the last when n_values is odd), w_scale[i] = W /
 * 32767.0f and weight_sums[i] = S. */
typedef void (*lmc_attn8_mix_fn)(const int16_t *weights, size_t weights_stride, const float *w_scale,
                                 const float *weight_sums, int n_queries, const int8_t *values, int head_dim,
                                 int n_values, float *out);

void lmc_attn8_scores_scalar(const int8_t *q, const float *factor, int n_queries, const int8_t *keys,
                             const float *k_scale, const int32_t *k_sum, int head_dim, int n_keys, float *scores,
                             size_t scores_stride);
void lmc_attn8_scores_avx2(const int8_t *q, const float *factor, int n_queries, const int8_t *keys,
                           const float *k_scale, const int32_t *k_sum, int head_dim, int n_keys, float *scores,
                           size_t scores_stride);
void lmc_attn8_mix_scalar(const int16_t *weights, size_t weights_stride, const float *w_scale,
                          const float *weight_sums, int n_queries, const int8_t *values, int head_dim, int n_values,
                          float *out);
void lmc_attn8_mix_avx2(const int16_t *weights, size_t weights_stride, const float *w_scale,
                        const float *weight_sums, int n_queries, const int8_t *values, int head_dim, int n_values,
                        float *out);
/* The weights step: wq[t] for t < n (and wq[n] = 0 when n is odd) from the
 * softmax's e and the values' scales; returns W / 32767.0f (0 when W is not
 * > 0). Element-wise products and a maximum: any order gives these bits. */
typedef float (*lmc_attn8_weights_fn)(const float *e, const float *v_scale, int n, int16_t *wq);
float lmc_attn8_weights_scalar(const float *e, const float *v_scale, int n, int16_t *wq);
float lmc_attn8_weights_avx2(const float *e, const float *v_scale, int n, int16_t *wq);

/* ---- Per-row float operations ----
 * softmax: x[t] = lmc_expf(x[t] - max) in place, max = the largest x[t]
 * (x[0] first, NaNs skipped after it); returns lmc_sum8 of the results. */
typedef float (*lmc_softmax_fn)(float *x, int n);
/* out[i] = lmc_silu(gate[i]) * up[i]. */
typedef void (*lmc_swiglu_fn)(const float *gate, const float *up, int n, float *out);

float lmc_softmax_scalar(float *x, int n);
float lmc_softmax_avx2(float *x, int n);
void lmc_swiglu_scalar(const float *gate, const float *up, int n, float *out);
void lmc_swiglu_avx2(const float *gate, const float *up, int n, float *out);

/* ---- CDFs from logits (coder/cdf.c, numerics v1) ----
 * values: v[i] = logits[i] with NaN -> -inf; returns their maximum (-inf
 *   if there is none).
 * freqs: freq[i] = 1 + (uint32_t)(weight[i] * scale), one float product
 *   truncated, for products in [0, 2^29); returns the exact sum of the
 *   freq[i] and sets *argmax to the lowest index of the largest.
 * prefix_sums: cum[0] = 0, then cum[i+1] += cum[i] for i < n (uint32). */
typedef float (*lmc_cdf_values_fn)(const float *logits, int n, float *v);
typedef uint64_t (*lmc_cdf_freqs_fn)(const float *weight, int n, float scale, uint32_t *freq, int *argmax);
typedef void (*lmc_prefix_sums_fn)(uint32_t *cum, int n);

float lmc_cdf_values_scalar(const float *logits, int n, float *v);
float lmc_cdf_values_avx2(const float *logits, int n, float *v);
uint64_t lmc_cdf_freqs_scalar(const float *weight, int n, float scale, uint32_t *freq, int *argmax);
uint64_t lmc_cdf_freqs_avx2(const float *weight, int n, float scale, uint32_t *freq, int *argmax);
void lmc_prefix_sums_scalar(uint32_t *cum, int n);
void lmc_prefix_sums_avx2(uint32_t *cum, int n);

/* The rules of qmat.c per SIMD level: lmc_quantize_row (weights, int8),
 * lmc_quantize_activation (int16 as two int8 planes) and
 * lmc_quantize_activation7 (7 bits, the same planes); each public function
 * picks one. */
typedef float (*lmc_quantize_fn)(const float *x, int n, int8_t *q);
float lmc_quantize_row_scalar(const float *x, int n, int8_t *q);
float lmc_quantize_row_avx2(const float *x, int n, int8_t *q);
float lmc_quantize_activation_scalar(const float *x, int n, int8_t *planes);
float lmc_quantize_activation_avx2(const float *x, int n, int8_t *planes);
float lmc_quantize_activation7_scalar(const float *x, int n, int8_t *planes);
float lmc_quantize_activation7_avx2(const float *x, int n, int8_t *planes);

#endif /* LMC_NN_KERNELS_H */
