/*
 * The whole Llama forward pass on a CUDA device, bit-identical to
 * src/nn/llama.c (whose header comment lists the steps and their orders).
 *
 * The state lives on the device: norms, biases and RoPE tables copied
 * once, the weights shared through the matmul backend's device copies, the
 * KV caches of every sequence, and scratch rows. A call stages the rows'
 * embeddings (looked up on the host: a row copy), positions and sequences
 * in pinned memory, then replays the CUDA graph recorded for its row count
 * on the state's own stream: the uploads, about a dozen kernels per layer,
 * and the copy of the logits back to pinned memory.
 *
 * Exactness, step by step:
 *   - reductions that must follow lmc_dot8 / lmc_sum8 run their 8 lanes as
 *     8 threads, each adding its elements left to right, then one thread
 *     combines the lanes in the documented tree;
 *   - maxima (activation scales, the softmax maximum) are order-free, as
 *     long as NaNs are skipped exactly as the CPU skips them;
 *   - every float operation is an _rn intrinsic (never fused), and
 *     transcendental functions come from detmath.cuh;
 *   - the matmuls are the exact int32 kernel of matmul_cuda.cu.
 * Parallelism only ever splits work between independent outputs, so the
 * thread layout can change without changing a bit.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/cuda/detmath.cuh"
#include "nn/cuda/internal.cuh"

#define ROW_THREADS 256  /* threads of the per-row kernels */
#define ATTN_THREADS 128 /* threads per (row, query head) in attention */
#define MAX_HEAD_DIM 256 /* larger heads stay on the CPU */
#define MIX_TILE 32      /* value rows per shared-memory tile in attention */
#define ALIGNMENT 256

typedef struct {
    const float *attn_norm, *ffn_norm, *bq, *bk, *bv; /* device copies (biases may be NULL) */
    lmc_cuda_weights wq, wk, wv, wo, gate, up, down;
} device_layer;

struct lmc_cuda_llama {
    const lmc_llama *m;
    int n_seqs, max_pos, max_rows, q_dim, kv_dim;
    float attn_scale;
    float act_qmax;            /* the activation rule's QMAX (nn.h): LMC_ACT_QMAX or LMC_ACT7_QMAX */
    size_t attn_shared;        /* dynamic shared memory of attention_kernel or attention8_kernel */
    cudaStream_t stream;
    device_layer *layers;      /* host array of device pointers */
    lmc_cuda_weights output;
    const float *out_norm;
    void *device_memory;       /* everything below, one allocation */
    const float *rope_cos, *rope_sin; /* [max_pos][head_dim / 2] */
    float *k_cache, *v_cache;  /* per (sequence, layer, kv head): keys [head_dim][max_pos] (transposed),
                                  values [max_pos][head_dim]; with int8 attention, int8 keys and values
                                  [max_pos][head_dim] in the same places */
    float *k_scale, *v_scale;  /* int8 attention: [sequence][layer][kv head][max_pos] */
    int attn8;                 /* the state's attention rule is LMC_ATTN_INT8 */
    float *x, *act, *q, *k, *v, *att, *proj, *gate, *up, *logits;
    int8_t *xq;                /* [max_rows][2][pitch of the widest input] */
    float *xscale;
    int *row_seq, *row_pos;    /* [max_rows] each */
    void *host_memory;         /* pinned: the embeddings and row tables to upload */
    float *h_x;                /* [max_rows][dim] */
    int *h_rows;               /* [2][max_rows]: sequences, then positions */
    float *h_logits;           /* [max_rows][vocab] */
    cudaGraphExec_t *graphs;   /* [2][max_rows + 1]: a call of n rows without, then with logits */
};

/* ---- Per-row kernels ---- */

/* roundf(clamp(v, -qmax, qmax)) as qmat.c computes it. */
static __device__ int quantize_value(float v, float qmax) {
    if (!(v == v))
        return 0;
    float clamped = v > qmax ? qmax : v < -qmax ? -qmax : v;
    int i = (int)clamped;
    float fraction = __fsub_rn(clamped, (float)i);
    return i + (fraction >= 0.5f) - (fraction <= -0.5f);
}

/* The largest m of the block's threads (at most ROW_THREADS), NaNs skipped
 * (other > m is false for a NaN), as max_abs_of in qmat.c does. Every
 * thread gets the result; call it from every thread. */
static __device__ float block_max(float m) {
    __shared__ float warp_max[ROW_THREADS / 32];
    __shared__ float result;
    for (int offset = 16; offset > 0; offset /= 2) {
        float other = __shfl_down_sync(0xffffffffu, m, offset);
        if (other > m)
            m = other;
    }
    if (threadIdx.x % 32 == 0)
        warp_max[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float all = warp_max[0];
        for (int w = 1; w < (int)(blockDim.x / 32); w++)
            if (warp_max[w] > all)
                all = warp_max[w];
        result = all;
    }
    __syncthreads();
    return result;
}

/* lmc_quantize_activation (qmax LMC_ACT_QMAX) or lmc_quantize_activation7
 * (LMC_ACT7_QMAX: hi is then 0) of x[0..n) into planes hi = planes[0..pitch),
 * lo = planes[pitch..2 pitch) (zeros after n), by the whole block. */
static __device__ void block_quantize(const float *x, int n, float qmax, int8_t *planes, size_t pitch,
                                      float *scale_out) {
    float m = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float a = fabsf(x[i]);
        if (a > m)
            m = a;
    }
    const float scale = __fdiv_rn(block_max(m), qmax);
    const int usable = scale > 0.0f;
    for (size_t i = threadIdx.x; i < pitch; i += blockDim.x) {
        int q = usable && i < (size_t)n ? quantize_value(__fdiv_rn(x[i], scale), qmax) : 0;
        int h = (q + 128 + 256 * 128) / 256 - 128;
        planes[i] = (int8_t)h;
        planes[pitch + i] = (int8_t)(q - 256 * h);
    }
    if (threadIdx.x == 0)
        *scale_out = usable ? scale : 0.0f;
}

/* Row blockIdx.x: x += residual (if any); act = RMSNorm(x) * weight;
 * planes = quantise(act). */
static __global__ void norm_kernel(float *x_all, const float *residual_all, const float *weight, int dim, float eps,
                                   float *act_all, float qmax, int8_t *xq, size_t pitch, float *xscale) {
    __shared__ float lanes[8];
    __shared__ float r_shared;
    const size_t row = blockIdx.x;
    float *x = x_all + row * (size_t)dim;
    float *act = act_all + row * (size_t)dim;
    if (residual_all) {
        const float *residual = residual_all + row * (size_t)dim;
        for (int i = threadIdx.x; i < dim; i += blockDim.x)
            x[i] = __fadd_rn(x[i], residual[i]);
    }
    __syncthreads();
    if (threadIdx.x < 8)
        lanes[threadIdx.x] = det_dot_lane(x, x, 1, dim, (int)threadIdx.x);
    __syncthreads();
    if (threadIdx.x == 0)
        r_shared = det_rsqrtf(__fadd_rn(__fdiv_rn(det_combine_lanes(lanes), (float)dim), eps));
    __syncthreads();
    const float r = r_shared;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        act[i] = __fmul_rn(__fmul_rn(x[i], r), weight[i]);
    __syncthreads();
    block_quantize(act, dim, qmax, xq + row * 2 * pitch, pitch, &xscale[row]);
}

/* Row blockIdx.x of src (rows of `stride` floats, n used) quantised. */
static __global__ void quantize_kernel(const float *src, size_t stride, int n, float qmax, int8_t *xq,
                                       size_t pitch, float *xscale) {
    const size_t row = blockIdx.x;
    block_quantize(src + row * stride, n, qmax, xq + row * 2 * pitch, pitch, &xscale[row]);
}

/* act = silu(gate) * up, elementwise over count values. */
static __global__ void swiglu_kernel(const float *gate, const float *up, size_t count, float *act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x)
        act[i] = __fmul_rn(det_silu(gate[i]), up[i]);
}

/* y[t][o] += bias[o] (qwen2), after the scaled product as on the CPU. */
static __global__ void bias_kernel(float *y, const float *bias, int rows, size_t count) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(y[i], bias[i % (size_t)rows]);
}

typedef struct {
    int n_layers, n_kv_heads, max_pos, head_dim;
} cache_shape;

/* Where the vectors of (sequence, layer, kv head) start in a cache. */
static __device__ size_t cache_at(cache_shape c, int seq, int layer, int kv_head) {
    return (((size_t)seq * (size_t)c.n_layers + (size_t)layer) * (size_t)c.n_kv_heads + (size_t)kv_head) *
           (size_t)c.max_pos * (size_t)c.head_dim;
}

/* Element indices of rotation pair i of a head: adjacent (llama) or half a
 * head apart (neox). */
static __device__ int2 pair_of(int i, int head_dim, int neox) {
    return neox ? make_int2(i, i + head_dim / 2) : make_int2(2 * i, 2 * i + 1);
}

/* a' = a*c - b*s, b' = a*s + b*c (products rounded, then the sum). */
static __device__ float2 rotate(float a, float b, float c, float s) {
    return make_float2(__fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s)), __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c)));
}

/* The row's n_heads query heads rotated in place, by the whole block. */
static __device__ void rotate_queries(float *q, int n_heads, int hd, int neox, const float *cos_row,
                                      const float *sin_row) {
    const int half = hd / 2;
    for (int item = threadIdx.x; item < n_heads * half; item += blockDim.x) {
        float *head = q + (size_t)(item / half) * (size_t)hd;
        const int i = item % half;
        const int2 p = pair_of(i, hd, neox);
        const float2 r = rotate(head[p.x], head[p.y], cos_row[i], sin_row[i]);
        head[p.x] = r.x;
        head[p.y] = r.y;
    }
}

/* Row blockIdx.x: rotates its query heads in place, and writes its rotated
 * keys and its values at its position of its sequence's caches. Keys are
 * stored transposed ([head_dim][max_pos] per head), so that the threads of
 * attention, one key each, read neighbouring words. */
static __global__ void rope_cache_kernel(float *q_all, const float *k_all, const float *v_all, const int *row_seq,
                                         const int *row_pos, const float *rope_cos, const float *rope_sin,
                                         int n_heads, int neox, cache_shape c, int layer, float *k_cache,
                                         float *v_cache) {
    const int row = blockIdx.x, pos = row_pos[row], seq = row_seq[row];
    const int hd = c.head_dim, half = hd / 2, q_dim = n_heads * hd, kv_dim = c.n_kv_heads * hd;
    const float *cos_row = rope_cos + (size_t)pos * (size_t)half, *sin_row = rope_sin + (size_t)pos * (size_t)half;
    rotate_queries(q_all + (size_t)row * (size_t)q_dim, n_heads, hd, neox, cos_row, sin_row);
    const float *k = k_all + (size_t)row * (size_t)kv_dim;
    for (int item = threadIdx.x; item < c.n_kv_heads * half; item += blockDim.x) {
        const int h = item / half, i = item % half;
        const float *head = k + (size_t)h * (size_t)hd;
        const int2 p = pair_of(i, hd, neox);
        const float2 r = rotate(head[p.x], head[p.y], cos_row[i], sin_row[i]);
        float *keys = k_cache + cache_at(c, seq, layer, h);
        keys[(size_t)p.x * (size_t)c.max_pos + (size_t)pos] = r.x;
        keys[(size_t)p.y * (size_t)c.max_pos + (size_t)pos] = r.y;
    }
    const float *v = v_all + (size_t)row * (size_t)kv_dim;
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x)
        v_cache[cache_at(c, seq, layer, i / hd) + (size_t)pos * (size_t)hd + (size_t)(i % hd)] = v[i];
}

/* lmc_llama_slide of sequence `seq`: block (layer, kv head) blockIdx.x,
 * thread i < head_dim/2 moves rotation pair i of the keys, thread d <
 * head_dim value element d, position by position in increasing order (each
 * is read before its place is written). The keys are rotated back as
 * llama.c's slide_keys does: a' = a*c + b*s, b' = b*c - a*s. */
static __global__ void slide_kernel(cache_shape c, int seq, int stride, int length, int neox,
                                    const float *rope_cos, const float *rope_sin, float *k_cache,
                                    float *v_cache) {
    const int layer = blockIdx.x / c.n_kv_heads, h = blockIdx.x % c.n_kv_heads;
    const int hd = c.head_dim, half = hd / 2, t = threadIdx.x;
    float *keys = k_cache + cache_at(c, seq, layer, h), *values = v_cache + cache_at(c, seq, layer, h);
    if (t < half) {
        const int2 p = pair_of(t, hd, neox);
        const float cs = rope_cos[(size_t)stride * (size_t)half + (size_t)t];
        const float sn = rope_sin[(size_t)stride * (size_t)half + (size_t)t];
        float *ka = keys + (size_t)p.x * (size_t)c.max_pos, *kb = keys + (size_t)p.y * (size_t)c.max_pos;
        for (int pos = stride + 1; pos < length; pos++) {
            const float a = ka[pos], b = kb[pos];
            ka[pos - stride] = __fadd_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
            kb[pos - stride] = __fsub_rn(__fmul_rn(b, cs), __fmul_rn(a, sn));
        }
    }
    if (t < hd)
        for (int pos = stride + 1; pos < length; pos++)
            values[(size_t)(pos - stride) * (size_t)hd + (size_t)t] = values[(size_t)pos * (size_t)hd + (size_t)t];
}

/* The softmax of scores[0..n) in place, by the whole block, as the CPU
 * computes it (lmc_softmax_fn): e_t = lmc_expf(s_t - max) with the CPU's
 * maximum (from scores[0], NaNs skipped after it) found from each thread's
 * maximum of the scores it wrote; returns lmc_sum8 of the e_t to every
 * thread. */
static __device__ float block_softmax(float *scores, int n, float thread_max) {
    __shared__ float lanes[8];
    __shared__ float sum;
    const float m = block_max(thread_max); /* its barrier: every score is written */
    const float first = scores[0], max = first != first || !(m > first) ? first : m;
    /* Thread 0 overwrites scores[0] below: every thread must have read it
     * first (without this barrier a late warp could take the exponential
     * for the score, and a rare call gave other logits than the CPU's). */
    __syncthreads();
    for (int t = threadIdx.x; t < n; t += blockDim.x)
        scores[t] = det_expf(__fsub_rn(scores[t], max));
    __syncthreads();
    if (threadIdx.x < 8) {
        float lane = 0.0f;
        for (int t = threadIdx.x; t < n; t += 8)
            lane = __fadd_rn(lane, scores[t]);
        lanes[threadIdx.x] = lane;
    }
    __syncthreads();
    if (threadIdx.x == 0)
        sum = det_combine_lanes(lanes);
    __syncthreads();
    return sum;
}

/* Query head blockIdx.y of row blockIdx.x over its cache positions
 * 0..pos: scores (lmc_dot8 order, times the scale), softmax (the CPU's
 * maximum, lmc_expf, lmc_sum8), and the weighted values summed position by
 * position. Shared memory: head_dim floats of query, max_pos scores, then
 * a tile of MIX_TILE value rows. */
static __global__ void attention_kernel(const float *q_all, const int *row_seq, const int *row_pos, int n_heads,
                                        cache_shape c, int layer, float scale, const float *k_cache,
                                        const float *v_cache, float *out_all) {
    extern __shared__ float shared[];
    const int row = blockIdx.x, head = blockIdx.y, hd = c.head_dim;
    const int n_keys = row_pos[row] + 1, kv_head = head / (n_heads / c.n_kv_heads);
    float *query = shared, *scores = shared + hd;
    const size_t q_at = (size_t)row * (size_t)n_heads * (size_t)hd + (size_t)head * (size_t)hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
        query[d] = q_all[q_at + (size_t)d];
    __syncthreads();
    const float *keys = k_cache + cache_at(c, row_seq[row], layer, kv_head);
    const float *values = v_cache + cache_at(c, row_seq[row], layer, kv_head);
    float m = -__int_as_float(0x7f800000);
    for (int t = threadIdx.x; t < n_keys; t += blockDim.x) {
        float lane[8];
        for (int j = 0; j < 8; j++)
            lane[j] = det_dot_lane(query, keys + t, (size_t)c.max_pos, hd, j);
        const float s = __fmul_rn(det_combine_lanes(lane), scale);
        scores[t] = s;
        if (s > m)
            m = s;
    }
    /* The CPU's maximum starts from scores[0] and skips NaNs after it: the
     * block's maximum, unless scores[0] is a NaN or not below it. */
    const float sum = block_softmax(scores, n_keys, m);
    /* Each output element is one chain of adds over the positions; tiles of
     * MIX_TILE value rows are first copied to shared memory by every thread
     * (contiguous, coalesced), so the chains wait on shared memory only. */
    float *tile = scores + c.max_pos;
    float acc[MAX_HEAD_DIM / ATTN_THREADS] = {};
    for (int first = 0; first < n_keys; first += MIX_TILE) {
        const int count = n_keys - first < MIX_TILE ? n_keys - first : MIX_TILE;
        __syncthreads();
        for (int i = threadIdx.x; i < count * hd; i += blockDim.x)
            tile[i] = values[(size_t)first * (size_t)hd + (size_t)i];
        __syncthreads();
        for (int t = 0; t < count; t++) {
            const float weight = scores[first + t];
#pragma unroll
            for (int k = 0; k < MAX_HEAD_DIM / ATTN_THREADS; k++) {
                const int d = (int)threadIdx.x + k * ATTN_THREADS;
                if (d < hd)
                    acc[k] = __fadd_rn(acc[k], __fmul_rn(weight, tile[t * hd + d]));
            }
        }
    }
    float *out = out_all + q_at;
#pragma unroll
    for (int k = 0; k < MAX_HEAD_DIM / ATTN_THREADS; k++) {
        const int d = (int)threadIdx.x + k * ATTN_THREADS;
        if (d < hd)
            out[d] = __fdiv_rn(acc[k], sum);
    }
}

/* ---- int8 attention (numerics v3, kernels.h) ---- */

/* Index of (sequence, layer, kv head, position) in the scale arrays. */
static __device__ size_t scale_at(cache_shape c, int seq, int layer, int kv_head, int pos) {
    return (((size_t)seq * (size_t)c.n_layers + (size_t)layer) * (size_t)c.n_kv_heads + (size_t)kv_head) *
               (size_t)c.max_pos + (size_t)pos;
}

/* The weight rule (qmat.c, QMAX 127) of x[0..n) by the whole block: q[i]
 * for i < n, and the scale. */
static __device__ void block_quantize_row(const float *x, int n, int8_t *q, float *scale_out) {
    float m = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float a = fabsf(x[i]);
        if (a > m)
            m = a;
    }
    const float scale = __fdiv_rn(block_max(m), 127.0f);
    const int usable = scale > 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        q[i] = (int8_t)(usable ? quantize_value(__fdiv_rn(x[i], scale), 127.0f) : 0);
    if (threadIdx.x == 0)
        *scale_out = usable ? scale : 0.0f;
}

/* rope_cache_kernel for int8 attention: the rotated queries in place, each
 * kv head's rotated key and its value quantised into the caches. Shared:
 * one head of floats. */
static __global__ void rope_cache8_kernel(float *q_all, const float *k_all, const float *v_all, const int *row_seq,
                                          const int *row_pos, const float *rope_cos, const float *rope_sin,
                                          int n_heads, int neox, cache_shape c, int layer, int8_t *k_cache,
                                          int8_t *v_cache, float *k_scale, float *v_scale) {
    __shared__ float head_buf[MAX_HEAD_DIM];
    const int row = blockIdx.x, pos = row_pos[row], seq = row_seq[row];
    const int hd = c.head_dim, half = hd / 2, q_dim = n_heads * hd, kv_dim = c.n_kv_heads * hd;
    const float *cos_row = rope_cos + (size_t)pos * (size_t)half, *sin_row = rope_sin + (size_t)pos * (size_t)half;
    rotate_queries(q_all + (size_t)row * (size_t)q_dim, n_heads, hd, neox, cos_row, sin_row);
    for (int h = 0; h < c.n_kv_heads; h++) {
        const float *key = k_all + (size_t)row * (size_t)kv_dim + (size_t)h * (size_t)hd;
        for (int i = threadIdx.x; i < half; i += blockDim.x) {
            const int2 p = pair_of(i, hd, neox);
            const float2 r = rotate(key[p.x], key[p.y], cos_row[i], sin_row[i]);
            head_buf[p.x] = r.x;
            head_buf[p.y] = r.y;
        }
        __syncthreads();
        const size_t at = cache_at(c, seq, layer, h) + (size_t)pos * (size_t)hd;
        block_quantize_row(head_buf, hd, k_cache + at, &k_scale[scale_at(c, seq, layer, h, pos)]);
        block_quantize_row(v_all + (size_t)row * (size_t)kv_dim + (size_t)h * (size_t)hd, hd, v_cache + at,
                           &v_scale[scale_at(c, seq, layer, h, pos)]);
        __syncthreads();
    }
}

/* slide_kernel for int8 caches (llama.c's slide_keys8): block (layer, kv
 * head) blockIdx.x moves position after position in increasing order, each
 * key taken back to floats, rotated back and quantised again. */
static __global__ void slide8_kernel(cache_shape c, int seq, int stride, int length, int neox,
                                     const float *rope_cos, const float *rope_sin, int8_t *k_cache,
                                     int8_t *v_cache, float *k_scale, float *v_scale) {
    __shared__ float key[MAX_HEAD_DIM];
    const int layer = blockIdx.x / c.n_kv_heads, h = blockIdx.x % c.n_kv_heads;
    const int hd = c.head_dim, half = hd / 2;
    int8_t *keys = k_cache + cache_at(c, seq, layer, h), *values = v_cache + cache_at(c, seq, layer, h);
    float *ks = k_scale + scale_at(c, seq, layer, h, 0), *vs = v_scale + scale_at(c, seq, layer, h, 0);
    for (int pos = stride + 1; pos < length; pos++) {
        const int8_t *from = keys + (size_t)pos * (size_t)hd;
        const float scale = ks[pos];
        for (int i = threadIdx.x; i < half; i += blockDim.x) {
            const int2 p = pair_of(i, hd, neox);
            const float a = __fmul_rn((float)from[p.x], scale), b = __fmul_rn((float)from[p.y], scale);
            const float cs = rope_cos[(size_t)stride * (size_t)half + (size_t)i];
            const float sn = rope_sin[(size_t)stride * (size_t)half + (size_t)i];
            key[p.x] = __fadd_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
            key[p.y] = __fsub_rn(__fmul_rn(b, cs), __fmul_rn(a, sn));
        }
        for (int d = threadIdx.x; d < hd; d += blockDim.x)
            values[(size_t)(pos - stride) * (size_t)hd + (size_t)d] = values[(size_t)pos * (size_t)hd + (size_t)d];
        if (threadIdx.x == 0)
            vs[pos - stride] = vs[pos];
        __syncthreads();
        block_quantize_row(key, hd, keys + (size_t)(pos - stride) * (size_t)hd, &ks[pos - stride]);
        __syncthreads();
    }
}

/* attention_kernel for int8 attention, the steps of kernels.h: the query
 * head quantised to 7 bits, exact integer dot products, the same softmax,
 * 15-bit weights and exact int64 sums of the weighted values. Shared
 * memory: max_pos scores, then max_pos weights (int). */
static __global__ void attention8_kernel(const float *q_all, const int *row_seq, const int *row_pos, int n_heads,
                                         cache_shape c, int layer, float attn_scale, const int8_t *k_cache,
                                         const int8_t *v_cache, const float *k_scale, const float *v_scale,
                                         float *out_all) {
    extern __shared__ float shared[];
    __shared__ int query[MAX_HEAD_DIM];
    const int row = blockIdx.x, head = blockIdx.y, hd = c.head_dim, seq = row_seq[row];
    const int n_keys = row_pos[row] + 1, kv_head = head / (n_heads / c.n_kv_heads);
    float *scores = shared;
    int *weights = (int *)(shared + c.max_pos);
    const float *q = q_all + (size_t)row * (size_t)n_heads * (size_t)hd + (size_t)head * (size_t)hd;
    /* The 7-bit rule on the query head. */
    float m = 0.0f;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float a = fabsf(q[d]);
        if (a > m)
            m = a;
    }
    const float qs = __fdiv_rn(block_max(m), (float)LMC_ACT7_QMAX);
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
        query[d] = qs > 0.0f ? quantize_value(__fdiv_rn(q[d], qs), (float)LMC_ACT7_QMAX) : 0;
    const float a = __fmul_rn(qs > 0.0f ? qs : 0.0f, attn_scale);
    __syncthreads();
    const int8_t *keys = k_cache + cache_at(c, seq, layer, kv_head);
    const int8_t *values = v_cache + cache_at(c, seq, layer, kv_head);
    const float *ks = k_scale + scale_at(c, seq, layer, kv_head, 0), *vs = v_scale + scale_at(c, seq, layer, kv_head, 0);
    float top = -__int_as_float(0x7f800000);
    for (int t = threadIdx.x; t < n_keys; t += blockDim.x) {
        const int8_t *k = keys + (size_t)t * (size_t)hd;
        int dot = 0;
        for (int d = 0; d < hd; d++)
            dot += query[d] * (int)k[d];
        const float s = __fmul_rn((float)dot, __fmul_rn(a, ks[t]));
        scores[t] = s;
        if (s > top)
            top = s;
    }
    const float sum = block_softmax(scores, n_keys, top);
    /* Weights: w_t = e_t * vs_t to 15 bits of their maximum. */
    float w_max = 0.0f;
    for (int t = threadIdx.x; t < n_keys; t += blockDim.x) {
        const float w = __fmul_rn(scores[t], vs[t]);
        if (w > w_max)
            w_max = w;
    }
    w_max = block_max(w_max);
    const int usable = w_max > 0.0f;
    const float r = usable ? __fdiv_rn(32767.0f, w_max) : 0.0f;
    for (int t = threadIdx.x; t < n_keys; t += blockDim.x) {
        const float x = __fmul_rn(__fmul_rn(scores[t], vs[t]), r);
        weights[t] = !usable || !(x >= 0.5f) ? 0 : x >= 32767.0f ? 32767 : (int)__fadd_rn(x, 0.5f);
    }
    __syncthreads();
    const float w_scale = usable ? __fdiv_rn(w_max, 32767.0f) : 0.0f;
    float *out = out_all + (size_t)row * (size_t)n_heads * (size_t)hd + (size_t)head * (size_t)hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        long long acc = 0;
        for (int t = 0; t < n_keys; t++)
            acc += (long long)weights[t] * values[(size_t)t * (size_t)hd + (size_t)d];
        out[d] = __fdiv_rn(__fmul_rn(__ll2float_rn(acc), w_scale), sum);
    }
}

/* ---- State ---- */

static size_t attention_shared_bytes(const lmc_llama *m, int max_pos, int attn8) {
    if (attn8)
        return (size_t)max_pos * (sizeof(float) + sizeof(int));
    return ((size_t)m->head_dim * (1 + MIX_TILE) + (size_t)max_pos) * sizeof(float);
}

static size_t reserve(size_t *total, size_t bytes) {
    size_t at = *total;
    *total += (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    return at;
}

static int widest_input(const lmc_llama *m) {
    return LMC_MAX(m->dim, LMC_MAX(m->n_heads * m->head_dim, m->hidden_dim));
}

/* Norm weights and biases (floats of each layer, then the output norm). */
static size_t parameter_floats(const lmc_llama *m) {
    const size_t per_layer = 2 * (size_t)m->dim + (size_t)m->n_heads * (size_t)m->head_dim +
                             2 * (size_t)m->n_kv_heads * (size_t)m->head_dim;
    return (size_t)m->n_layers * per_layer + (size_t)m->dim;
}

/* Offsets of the device buffers in one allocation. */
typedef struct {
    size_t params, rope_cos, rope_sin, k_cache, v_cache, k_scale, v_scale, x, act, q, k, v, att, proj, gate, up,
        logits, xq, xscale, rows, total;
} device_layout;

static device_layout device_layout_of(const lmc_llama *m, int n_seqs, int max_pos, int max_rows) {
    const size_t f = sizeof(float), rows = (size_t)max_rows, q_dim = (size_t)m->n_heads * (size_t)m->head_dim;
    const size_t kv_dim = (size_t)m->n_kv_heads * (size_t)m->head_dim;
    const size_t rope = (size_t)max_pos * (size_t)(m->head_dim / 2) * f;
    const size_t cache = (size_t)n_seqs * (size_t)m->n_layers * kv_dim * (size_t)max_pos * f;
    device_layout l;
    memset(&l, 0, sizeof l);
    l.params = reserve(&l.total, parameter_floats(m) * f);
    l.rope_cos = reserve(&l.total, rope);
    l.rope_sin = reserve(&l.total, rope);
    l.k_cache = reserve(&l.total, cache);
    l.v_cache = reserve(&l.total, cache);
    l.k_scale = reserve(&l.total, cache / (size_t)m->head_dim);
    l.v_scale = reserve(&l.total, cache / (size_t)m->head_dim);
    l.x = reserve(&l.total, rows * (size_t)m->dim * f);
    l.act = reserve(&l.total, rows * (size_t)widest_input(m) * f);
    l.q = reserve(&l.total, rows * q_dim * f);
    l.k = reserve(&l.total, rows * kv_dim * f);
    l.v = reserve(&l.total, rows * kv_dim * f);
    l.att = reserve(&l.total, rows * q_dim * f);
    l.proj = reserve(&l.total, rows * (size_t)m->dim * f);
    l.gate = reserve(&l.total, rows * (size_t)m->hidden_dim * f);
    l.up = reserve(&l.total, rows * (size_t)m->hidden_dim * f);
    l.logits = reserve(&l.total, rows * (size_t)m->vocab * f);
    l.xq = reserve(&l.total, rows * 2 * lmc_cuda_pitch(widest_input(m)));
    l.xscale = reserve(&l.total, rows * f);
    l.rows = reserve(&l.total, 2 * rows * sizeof(int));
    return l;
}

/* Copies n floats (or none, for NULL) to the device at *at; returns the
 * device pointer (NULL for NULL) and advances *at. */
static const float *upload_floats(const float *host, size_t n, float **at, cudaError_t *error) {
    if (!host || *error != cudaSuccess)
        return NULL;
    float *device = *at;
    *error = cudaMemcpy(device, host, n * sizeof(float), cudaMemcpyHostToDevice);
    *at += n;
    return device;
}

static lmc_status upload_parameters(lmc_cuda_llama *g, float *params) {
    const lmc_llama *m = g->m;
    const size_t dim = (size_t)m->dim, q_dim = (size_t)g->q_dim, kv_dim = (size_t)g->kv_dim;
    cudaError_t error = cudaSuccess;
    float *at = params;
    for (int i = 0; i < m->n_layers; i++) {
        const lmc_llama_layer *l = &m->layers[i];
        device_layer *d = &g->layers[i];
        d->attn_norm = upload_floats(l->attn_norm, dim, &at, &error);
        d->ffn_norm = upload_floats(l->ffn_norm, dim, &at, &error);
        d->bq = upload_floats(l->bq, q_dim, &at, &error);
        d->bk = upload_floats(l->bk, kv_dim, &at, &error);
        d->bv = upload_floats(l->bv, kv_dim, &at, &error);
    }
    g->out_norm = upload_floats(m->out_norm, dim, &at, &error);
    lmc_status status = lmc_cuda_check(error);
    for (int i = 0; i < m->n_layers && status == LMC_OK; i++) {
        const lmc_llama_layer *l = &m->layers[i];
        device_layer *d = &g->layers[i];
        const lmc_qmat *host[7] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        lmc_cuda_weights *device[7] = {&d->wq, &d->wk, &d->wv, &d->wo, &d->gate, &d->up, &d->down};
        for (int j = 0; j < 7 && status == LMC_OK; j++)
            status = lmc_cuda_weights_of(host[j], device[j]);
    }
    return status == LMC_OK ? lmc_cuda_weights_of(&m->output, &g->output) : status;
}

static void place_buffers(lmc_cuda_llama *g, const device_layout *l) {
    char *base = (char *)g->device_memory;
    g->rope_cos = (const float *)(base + l->rope_cos);
    g->rope_sin = (const float *)(base + l->rope_sin);
    g->k_cache = (float *)(base + l->k_cache);
    g->v_cache = (float *)(base + l->v_cache);
    g->k_scale = (float *)(base + l->k_scale);
    g->v_scale = (float *)(base + l->v_scale);
    g->x = (float *)(base + l->x);
    g->act = (float *)(base + l->act);
    g->q = (float *)(base + l->q);
    g->k = (float *)(base + l->k);
    g->v = (float *)(base + l->v);
    g->att = (float *)(base + l->att);
    g->proj = (float *)(base + l->proj);
    g->gate = (float *)(base + l->gate);
    g->up = (float *)(base + l->up);
    g->logits = (float *)(base + l->logits);
    g->xq = (int8_t *)(base + l->xq);
    g->xscale = (float *)(base + l->xscale);
    g->row_seq = (int *)(base + l->rows);
    g->row_pos = g->row_seq + g->max_rows;
}

static cudaError_t allocate_host(lmc_cuda_llama *g) {
    const size_t rows = (size_t)g->max_rows;
    const size_t x_bytes = rows * (size_t)g->m->dim * sizeof(float), rows_bytes = 2 * rows * sizeof(int);
    const size_t logits_bytes = rows * (size_t)g->m->vocab * sizeof(float);
    cudaError_t error = cudaMallocHost(&g->host_memory, x_bytes + rows_bytes + logits_bytes);
    if (error != cudaSuccess)
        return error;
    g->h_x = (float *)g->host_memory;
    g->h_rows = (int *)((char *)g->host_memory + x_bytes);
    g->h_logits = (float *)((char *)g->host_memory + x_bytes + rows_bytes);
    return cudaSuccess;
}

lmc_status lmc_cuda_llama_create(const lmc_llama *m, lmc_nn_rules rules, int n_seqs, int max_pos, int max_rows,
                                 const float *rope_cos, const float *rope_sin, lmc_cuda_llama **out) {
    *out = NULL;
    if (!lmc_cuda_available() || m->head_dim > MAX_HEAD_DIM || lmc_cuda_bind() != cudaSuccess)
        return LMC_ERR_UNSUPPORTED;
    lmc_cuda_llama *g = (lmc_cuda_llama *)calloc(1, sizeof *g);
    if (!g)
        return LMC_ERR_NOMEM;
    g->m = m;
    g->n_seqs = n_seqs;
    g->max_pos = max_pos;
    g->max_rows = max_rows;
    g->q_dim = m->n_heads * m->head_dim;
    g->kv_dim = m->n_kv_heads * m->head_dim;
    g->attn_scale = 1.0f / sqrtf((float)m->head_dim);
    g->act_qmax = rules.act == LMC_ACT_INT7 ? (float)LMC_ACT7_QMAX : (float)LMC_ACT_QMAX;
    g->attn8 = rules.attn == LMC_ATTN_INT8;
    g->layers = (device_layer *)calloc((size_t)m->n_layers, sizeof *g->layers);
    g->graphs = (cudaGraphExec_t *)calloc(2 * ((size_t)max_rows + 1), sizeof *g->graphs);
    const device_layout l = device_layout_of(m, n_seqs, max_pos, max_rows);
    g->attn_shared = attention_shared_bytes(m, max_pos, g->attn8);
    const size_t rope_bytes = (size_t)max_pos * (size_t)(m->head_dim / 2) * sizeof(float);
    cudaError_t error = g->layers && g->graphs ? cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking)
                                  : cudaErrorMemoryAllocation;
    /* Beyond the default 48 KiB of dynamic shared memory, a kernel must ask. */
    if (error == cudaSuccess && g->attn_shared > 48 * 1024)
        error = g->attn8 ? cudaFuncSetAttribute(attention8_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)g->attn_shared)
                         : cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)g->attn_shared);
    if (error == cudaSuccess)
        error = cudaMalloc(&g->device_memory, l.total);
    if (error == cudaSuccess) {
        place_buffers(g, &l);
        error = cudaMemset(g->device_memory, 0, l.total);
    }
    if (error == cudaSuccess)
        error = cudaMemcpy((void *)g->rope_cos, rope_cos, rope_bytes, cudaMemcpyHostToDevice);
    if (error == cudaSuccess)
        error = cudaMemcpy((void *)g->rope_sin, rope_sin, rope_bytes, cudaMemcpyHostToDevice);
    if (error == cudaSuccess)
        error = allocate_host(g);
    lmc_status status = lmc_cuda_check(error);
    if (status == LMC_OK)
        status = upload_parameters(g, (float *)((char *)g->device_memory + l.params));
    if (status != LMC_OK) {
        lmc_cuda_llama_free(g);
        return status;
    }
    *out = g;
    return LMC_OK;
}

void lmc_cuda_llama_free(lmc_cuda_llama *g) {
    if (!g)
        return;
    lmc_cuda_bind();
    if (g->stream)
        cudaStreamSynchronize(g->stream);
    for (size_t i = 0; g->graphs && i < 2 * ((size_t)g->max_rows + 1); i++)
        if (g->graphs[i])
            cudaGraphExecDestroy(g->graphs[i]);
    free(g->graphs);
    cudaFree(g->device_memory);
    cudaFreeHost(g->host_memory);
    if (g->stream)
        cudaStreamDestroy(g->stream);
    free(g->layers);
    free(g);
}

/* ---- Forward pass ---- */

static unsigned elementwise_blocks(size_t count) {
    size_t blocks = (count + ROW_THREADS - 1) / ROW_THREADS;
    return (unsigned)(blocks < 4096 ? (blocks ? blocks : 1) : 4096);
}

/* Embeddings of the rows' tokens (zeros outside the vocabulary) and the
 * row tables, into the pinned buffers the call's graph uploads. */
static void stage_rows(lmc_cuda_llama *g, const int *seqs, const int32_t *tokens, const int *positions, int n) {
    const lmc_llama *m = g->m;
    const size_t dim = (size_t)m->dim;
    for (int i = 0; i < n; i++) {
        float *x = g->h_x + (size_t)i * dim;
        if (tokens[i] >= 0 && tokens[i] < m->vocab)
            memcpy(x, m->tok_embd + (size_t)tokens[i] * dim, dim * sizeof *x);
        else
            memset(x, 0, dim * sizeof *x);
    }
    memcpy(g->h_rows, seqs, (size_t)n * sizeof *seqs);
    memcpy(g->h_rows + g->max_rows, positions, (size_t)n * sizeof *positions);
}

static cudaError_t upload_rows(lmc_cuda_llama *g, int n) {
    cudaError_t error = cudaMemcpyAsync(g->x, g->h_x, (size_t)n * (size_t)g->m->dim * sizeof(float),
                                        cudaMemcpyHostToDevice, g->stream);
    if (error == cudaSuccess)
        error = cudaMemcpyAsync(g->row_seq, g->h_rows, 2 * (size_t)g->max_rows * sizeof(int),
                                cudaMemcpyHostToDevice, g->stream);
    return error;
}

static cudaError_t launch_norm(lmc_cuda_llama *g, int n, const float *residual, const float *weight) {
    const int dim = g->m->dim;
    norm_kernel<<<n, ROW_THREADS, 0, g->stream>>>(g->x, residual, weight, dim, g->m->norm_eps, g->act,
                                                  g->act_qmax, g->xq, lmc_cuda_pitch(dim), g->xscale);
    return cudaGetLastError();
}

/* Products of the quantised rows with up to three matrices in one launch,
 * then their biases (qwen2) added as the CPU adds them. */
static cudaError_t launch_matmuls(lmc_cuda_llama *g, int n, int n_jobs, const lmc_cuda_weights *const *w,
                                  const float *const *bias, float *const *y) {
    cudaError_t error = lmc_cuda_launch_q8(w, y, n_jobs, g->xq, g->xscale, n, g->stream);
    for (int j = 0; j < n_jobs && error == cudaSuccess; j++) {
        if (!bias || !bias[j])
            continue;
        const size_t count = (size_t)n * (size_t)w[j]->rows;
        bias_kernel<<<elementwise_blocks(count), ROW_THREADS, 0, g->stream>>>(y[j], bias[j], w[j]->rows, count);
        error = cudaGetLastError();
    }
    return error;
}

static cudaError_t launch_matmul(lmc_cuda_llama *g, int n, const lmc_cuda_weights *w, float *y) {
    return launch_matmuls(g, n, 1, &w, NULL, &y);
}

static cudaError_t launch_quantize(lmc_cuda_llama *g, int n, const float *src, int width) {
    quantize_kernel<<<n, ROW_THREADS, 0, g->stream>>>(src, (size_t)width, width, g->act_qmax, g->xq,
                                                      lmc_cuda_pitch(width), g->xscale);
    return cudaGetLastError();
}

static cudaError_t attention_block(lmc_cuda_llama *g, int n, int layer) {
    const lmc_llama *m = g->m;
    const device_layer *l = &g->layers[layer];
    const cache_shape shape = {m->n_layers, m->n_kv_heads, g->max_pos, m->head_dim};
    const lmc_cuda_weights *qkv[3] = {&l->wq, &l->wk, &l->wv};
    const float *biases[3] = {l->bq, l->bk, l->bv};
    float *outputs[3] = {g->q, g->k, g->v};
    cudaError_t error = launch_matmuls(g, n, 3, qkv, biases, outputs);
    if (error != cudaSuccess)
        return error;
    const dim3 heads((unsigned)n, (unsigned)m->n_heads);
    if (g->attn8) {
        int8_t *keys = (int8_t *)g->k_cache, *values = (int8_t *)g->v_cache;
        rope_cache8_kernel<<<n, ROW_THREADS, 0, g->stream>>>(g->q, g->k, g->v, g->row_seq, g->row_pos, g->rope_cos,
                                                             g->rope_sin, m->n_heads, m->rope_neox, shape, layer, keys,
                                                             values, g->k_scale, g->v_scale);
        attention8_kernel<<<heads, ATTN_THREADS, g->attn_shared, g->stream>>>(
            g->q, g->row_seq, g->row_pos, m->n_heads, shape, layer, g->attn_scale, keys, values, g->k_scale,
            g->v_scale, g->att);
    } else {
        rope_cache_kernel<<<n, ROW_THREADS, 0, g->stream>>>(g->q, g->k, g->v, g->row_seq, g->row_pos, g->rope_cos,
                                                            g->rope_sin, m->n_heads, m->rope_neox, shape, layer,
                                                            g->k_cache, g->v_cache);
        attention_kernel<<<heads, ATTN_THREADS, g->attn_shared, g->stream>>>(
            g->q, g->row_seq, g->row_pos, m->n_heads, shape, layer, g->attn_scale, g->k_cache, g->v_cache, g->att);
    }
    error = cudaGetLastError();
    if (error == cudaSuccess)
        error = launch_quantize(g, n, g->att, g->q_dim);
    return error == cudaSuccess ? launch_matmul(g, n, &l->wo, g->proj) : error;
}

static cudaError_t ffn_block(lmc_cuda_llama *g, int n, int layer) {
    const device_layer *l = &g->layers[layer];
    const int hidden = g->m->hidden_dim;
    const lmc_cuda_weights *gate_up[2] = {&l->gate, &l->up};
    float *outputs[2] = {g->gate, g->up};
    cudaError_t error = launch_matmuls(g, n, 2, gate_up, NULL, outputs);
    if (error != cudaSuccess)
        return error;
    const size_t count = (size_t)n * (size_t)hidden;
    swiglu_kernel<<<elementwise_blocks(count), ROW_THREADS, 0, g->stream>>>(g->gate, g->up, count, g->act);
    error = cudaGetLastError();
    if (error == cudaSuccess)
        error = launch_quantize(g, n, g->act, hidden);
    return error == cudaSuccess ? launch_matmul(g, n, &l->down, g->proj) : error;
}

/* Queues one call of n rows on the stream: upload, every layer, the final
 * norm, and with logits the output matmul and the copy to pinned memory. */
static cudaError_t enqueue_forward(lmc_cuda_llama *g, int n, int with_logits) {
    const lmc_llama *m = g->m;
    cudaError_t error = upload_rows(g, n);
    for (int layer = 0; layer < m->n_layers && error == cudaSuccess; layer++) {
        error = launch_norm(g, n, layer == 0 ? NULL : g->proj, g->layers[layer].attn_norm);
        if (error == cudaSuccess)
            error = attention_block(g, n, layer);
        if (error == cudaSuccess)
            error = launch_norm(g, n, g->proj, g->layers[layer].ffn_norm);
        if (error == cudaSuccess)
            error = ffn_block(g, n, layer);
    }
    if (error == cudaSuccess)
        error = launch_norm(g, n, g->proj, g->out_norm);
    if (error == cudaSuccess && with_logits)
        error = launch_matmul(g, n, &g->output, g->logits);
    if (error == cudaSuccess && with_logits)
        error = cudaMemcpyAsync(g->h_logits, g->logits, (size_t)n * (size_t)m->vocab * sizeof(float),
                                cudaMemcpyDeviceToHost, g->stream);
    return error;
}

/* A call's ~80 small launches cost more than their work; recorded once
 * per (row count, logits or not) as a CUDA graph, they replay in one
 * launch. Every pointer in them is the state's own, so a graph stays valid
 * for the state's life. */
static cudaError_t graph_for(lmc_cuda_llama *g, int n, int with_logits, cudaGraphExec_t *out) {
    cudaGraphExec_t *slot = &g->graphs[(size_t)with_logits * (size_t)(g->max_rows + 1) + (size_t)n];
    if (*slot) {
        *out = *slot;
        return cudaSuccess;
    }
    cudaGraph_t graph;
    cudaError_t error = cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal);
    if (error != cudaSuccess)
        return error;
    cudaError_t queued = enqueue_forward(g, n, with_logits);
    error = cudaStreamEndCapture(g->stream, &graph);
    if (queued != cudaSuccess)
        error = queued;
    if (error == cudaSuccess) {
        error = cudaGraphInstantiate(slot, graph, 0);
        cudaGraphDestroy(graph);
    }
    *out = *slot;
    return error;
}

static cudaError_t forward_chunk(lmc_cuda_llama *g, const int *seqs, const int32_t *tokens, const int *positions,
                                 int n, float *logits) {
    cudaGraphExec_t graph;
    cudaError_t error = graph_for(g, n, logits != NULL, &graph);
    if (error != cudaSuccess)
        return error;
    stage_rows(g, seqs, tokens, positions, n);
    error = cudaGraphLaunch(graph, g->stream);
    if (error == cudaSuccess)
        error = cudaStreamSynchronize(g->stream);
    if (error == cudaSuccess && logits)
        memcpy(logits, g->h_logits, (size_t)n * (size_t)g->m->vocab * sizeof(float));
    return error;
}

static uint64_t forward_calls;
static int fail_next; /* lmc_cuda_fail_next_forward */

uint64_t lmc_cuda_llama_calls(void) {
    return __atomic_load_n(&forward_calls, __ATOMIC_RELAXED);
}

void lmc_cuda_fail_next_forward(void) {
    __atomic_store_n(&fail_next, 1, __ATOMIC_RELAXED);
}

lmc_status lmc_cuda_llama_forward(lmc_cuda_llama *g, const int *seqs, const int32_t *tokens, const int *positions,
                                  int n, float *logits) {
    if (__atomic_exchange_n(&fail_next, 0, __ATOMIC_RELAXED))
        return LMC_ERR_INTERNAL;
    cudaError_t bound = lmc_cuda_bind();
    if (bound != cudaSuccess)
        return lmc_cuda_check(bound);
    __atomic_fetch_add(&forward_calls, 1, __ATOMIC_RELAXED);
    for (int first = 0; first < n; first += g->max_rows) {
        const int count = n - first < g->max_rows ? n - first : g->max_rows;
        cudaError_t error = forward_chunk(g, seqs + first, tokens + first, positions + first, count,
                                          logits ? logits + (size_t)first * (size_t)g->m->vocab : NULL);
        if (error != cudaSuccess)
            return lmc_cuda_check(error);
    }
    return LMC_OK;
}

lmc_status lmc_cuda_llama_slide(lmc_cuda_llama *g, const int *seqs, int n, int stride, int length) {
    cudaError_t error = lmc_cuda_bind();
    const lmc_llama *m = g->m;
    const cache_shape shape = {m->n_layers, m->n_kv_heads, g->max_pos, m->head_dim};
    const unsigned threads = (unsigned)(m->head_dim + 31) / 32 * 32;
    const unsigned blocks = (unsigned)(m->n_layers * m->n_kv_heads);
    for (int i = 0; i < n && error == cudaSuccess; i++) {
        if (g->attn8)
            slide8_kernel<<<blocks, threads, 0, g->stream>>>(shape, seqs[i], stride, length, m->rope_neox,
                                                             g->rope_cos, g->rope_sin, (int8_t *)g->k_cache,
                                                             (int8_t *)g->v_cache, g->k_scale, g->v_scale);
        else
            slide_kernel<<<blocks, threads, 0, g->stream>>>(shape, seqs[i], stride, length, m->rope_neox,
                                                            g->rope_cos, g->rope_sin, g->k_cache, g->v_cache);
        error = cudaGetLastError();
    }
    if (error == cudaSuccess)
        error = cudaStreamSynchronize(g->stream);
    return error == cudaSuccess ? LMC_OK : lmc_cuda_check(error);
}
