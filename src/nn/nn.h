/*
 * The neural-network stage: a deterministic integer transformer engine.
 *
 * Weights are int8 with one float scale per output row. Activations are
 * quantised per token row to int16 with scale = max|x| / 32512 (a max, so
 * the order does not matter) and stored as two int8 planes, hi and lo, with
 * q = 256 * hi + lo. Each plane's products accumulate exactly in int32,
 * which is associative, so scalar, AVX2, AVX-512 and CUDA kernels and any
 * thread split give identical sums; each output is then
 * ((float)acc_hi * 256 + (float)acc_lo) * (xscale * wscale[o]) in float,
 * the same expression everywhere. Everything else (RMSNorm, softmax, RoPE,
 * SiLU) is float32 in the fixed orders of common/detmath.h.
 *
 * Why int16: with int8 activations, the rounding of the heavy-tailed
 * SwiGLU output (the ffn_down input) and of the classifier input cost more
 * accuracy than the int8 weights do (bench/nn-results.md, "Accuracy").
 *
 * Batch invariance: the value at (sequence, position) depends only on that
 * sequence's tokens up to the position, never on which other rows are
 * evaluated in the same call. Compression evaluates all positions of a
 * block in one call; decompression evaluates one position of many blocks
 * per call (lockstep); both give the same logits bit for bit.
 */
#ifndef LMC_NN_H
#define LMC_NN_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* int8 matrix, row-major [rows][cols], one scale per row. */
typedef struct {
    const int8_t *q;      /* rows*cols values in [-127, 127] */
    const float *scale;   /* rows scales */
    int32_t *row_sum;     /* rows sums of q (precomputed by lmc_qmat_prepare; kernels may use it) */
    int rows, cols;
} lmc_qmat;

/* Computes row_sum (allocates it). The values must not change until
 * lmc_qmat_release (the CUDA backend, nn/cuda.h, keeps a copy until then). */
lmc_status lmc_qmat_prepare(lmc_qmat *m);
void lmc_qmat_release(lmc_qmat *m);

/* The weight rule: quantises n values to int8 in [-127, 127]; returns the
 * scale (max|x| / 127, or 0 for an all-zero row, which then gives zero
 * output). The model loader quantises float weights with it. */
float lmc_quantize_row(const float *x, int n, int8_t *q);

/* Largest |q| of an int16 activation: 127 * 256, so that q = 256 * hi + lo
 * with hi in [-127, 127] and lo in [-128, 127]. */
#define LMC_ACT_QMAX 32512
/* Largest |q| of a 7-bit activation: q + 64 is an unsigned byte, and a pair
 * of its products with weights, at most 2 * 127 * 127, fits int16. */
#define LMC_ACT7_QMAX 63

/* How matmul inputs are quantised (docs/FORMAT.md): numerics v1 to int16,
 * v2 to 7 bits. Both are stored as two int8 planes per row; the 7-bit
 * rule's hi plane is all zeros, so every kernel computes either exactly,
 * and kernels of its own read only lo. */
typedef enum { LMC_ACT_INT16, LMC_ACT_INT7 } lmc_act_rule;

/* The rule of a numerics version (1, 2 or 3). */
static inline lmc_act_rule lmc_act_rule_of(uint32_t numerics) {
    return numerics >= 2 ? LMC_ACT_INT7 : LMC_ACT_INT16;
}

/* How attention computes (docs/FORMAT.md): numerics v1 and v2 keep float
 * keys and values and take float dot products; v3 keeps them as int8 (one
 * scale per position and kv head) and takes integer dot products with
 * 7-bit queries and 15-bit attention weights (kernels.h, "int8
 * attention"): a quarter of the cache memory and a few times less work. */
typedef enum { LMC_ATTN_FLOAT, LMC_ATTN_INT8 } lmc_attn_rule;

/* Everything a numerics version fixes in the engine. */
typedef struct {
    lmc_act_rule act;
    lmc_attn_rule attn;
} lmc_nn_rules;

static inline lmc_nn_rules lmc_nn_rules_of(uint32_t numerics) {
    return (lmc_nn_rules){lmc_act_rule_of(numerics), numerics >= 3 ? LMC_ATTN_INT8 : LMC_ATTN_FLOAT};
}

/* The int16 activation rule: quantises n values to int16 q in
 * [-32512, 32512] and writes them as two int8 planes, planes[0..n) = hi and
 * planes[n..2n) = lo, q = 256 * hi + lo; returns the scale (max|x| / 32512,
 * or 0 for an all-zero row, which then gives zero output). */
float lmc_quantize_activation(const float *x, int n, int8_t *planes);
/* The 7-bit rule: q in [-63, 63] (scale max|x| / 63), hi = 0, lo = q. */
float lmc_quantize_activation7(const float *x, int n, int8_t *planes);

/* y[t][o] = ((float)dot(hi[t], W[o]) * 256 + (float)dot(lo[t], W[o]))
 *           * (xscale[t] * W.scale[o])
 * for t < n_rows, o < W.rows, parallel over o. xq is [n_rows][2][W.cols]
 * int8: each row's hi plane, then its lo plane (the layout of both
 * activation rules; `rule` says which made them). Dispatches to the SIMD
 * level of lmc_simd_selected(). bias may be NULL (added after). */
void lmc_matmul_q8(lmc_pool *pool, const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                   const float *bias, float *y, lmc_act_rule rule);

/* Llama-architecture hyper-parameters and weights (views into the model file
 * or buffers the model loader owns). */
typedef struct {
    const float *attn_norm;            /* [dim] */
    lmc_qmat wq, wk, wv, wo;           /* [n_heads*head_dim][dim], [n_kv*head_dim][dim] x2, [dim][n_heads*head_dim] */
    const float *bq, *bk, *bv;         /* qwen2 attention biases, or NULL */
    const float *ffn_norm;             /* [dim] */
    lmc_qmat w_gate, w_up, w_down;     /* [hidden][dim] x2, [dim][hidden] */
} lmc_llama_layer;

typedef struct {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim;
    int vocab;
    int context_length;     /* positions the model was trained for */
    float rope_base;
    int rope_neox;          /* 0: rotate adjacent pairs (llama); 1: halves (neox/qwen2) */
    float norm_eps;
    const float *tok_embd;  /* [vocab][dim] float */
    lmc_llama_layer *layers;
    const float *out_norm;  /* [dim] */
    lmc_qmat output;        /* [vocab][dim] */
} lmc_llama;

/* Inference state for n_seqs independent sequences of up to max_pos
 * positions each (KV caches), plus scratch for up to max_rows rows per call;
 * it computes by `rules` (lmc_nn_rules_of the numerics). int8 attention
 * needs head_dim <= LMC_ATTN8_MAX_HEAD_DIM. */
typedef struct lmc_llama_state lmc_llama_state;

#define LMC_ATTN8_MAX_HEAD_DIM 512

lmc_status lmc_llama_state_create(const lmc_llama *model, lmc_nn_rules rules, int n_seqs, int max_pos,
                                  int max_rows, lmc_llama_state **out);
void lmc_llama_state_free(lmc_llama_state *state);
/* Bytes lmc_llama_state_create would allocate (for memory limits). */
uint64_t lmc_llama_state_bytes(const lmc_llama *model, lmc_nn_rules rules, int n_seqs, int max_pos, int max_rows);

/* Evaluates n rows: row i feeds token tokens[i] at position positions[i] of
 * sequence seqs[i], writing its K/V into that sequence's cache, and writes
 * the next-token logits [n][vocab] (logits may be NULL to only fill caches).
 * Rows of one sequence must come in increasing position order, and every
 * earlier position of that sequence must already be cached or be in this
 * call. Positions restart at 0 whenever a caller restarts a window. */
void lmc_llama_forward(lmc_llama_state *state, lmc_pool *pool, const int *seqs, const int32_t *tokens,
                       const int *positions, int n, float *logits);

/* Slides the windows of sequences seqs[0..n), each holding positions
 * 0..length-1, forward by `stride` positions (numerics v2, docs/FORMAT.md
 * "sliding windows"): position 0, the sequence's first input, stays (the
 * model leans on it as an attention sink); positions stride+1 .. length-1
 * move to 1 .. length-stride-1, their keys rotated back by `stride`
 * positions, values unchanged; the rest is forgotten. The next row of each
 * sequence then has position length - stride. Needs 0 < stride < length
 * <= max_pos. */
void lmc_llama_slide(lmc_llama_state *state, lmc_pool *pool, const int *seqs, int n, int stride, int length);

/* The most rows of one sequence a call should carry for speed when more are
 * ready (the encoder knows a whole window's tokens at once): a few dozen on
 * the CPU, where a call's activations should stay in cache, and all the
 * state allows on a GPU, where every call has a fixed cost (about 0.4 ms).
 * Results do not depend on how rows are split into calls. */
int lmc_llama_rows_per_sequence(const lmc_llama_state *state);

/* Where forward passes of states created from now on run, process-wide:
 * the CPU (gpu 0), or CUDA device `index` (gpu 1; nn/cuda.h). LMC_OK, or
 * LMC_ERR_UNSUPPORTED with the reason in why when that device cannot be
 * used (no CUDA in this build, no such device...), and the CPU is used. */
lmc_status lmc_nn_use_device(int gpu, int index, char *why, size_t why_size);

#endif /* LMC_NN_H */
