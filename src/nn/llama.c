/*
 * The Llama forward pass, batch invariant and deterministic.
 *
 * Every float that reaches the logits is computed per row in a fixed
 * order that does not depend on the other rows of the call, the thread
 * count or the SIMD level (the CUDA port must follow the same steps):
 *
 *   RMSNorm     ss = lmc_dot8(x, x, dim)                (lane order of detmath.h)
 *               r  = lmc_rsqrtf(ss / (float)dim + eps)
 *               y[i] = (x[i] * r) * w[i]
 *   matmuls     activations quantised per row by the state's rule (nn.h): to
 *               int16 (numerics v1, lmc_quantize_activation) or 7 bits (v2,
 *               lmc_quantize_activation7), as two int8 planes; int8 x int8 ->
 *               exact int32 per plane, combined and scaled as in nn.h
 *               (matmul.c); then + bias (qwen2)
 *   RoPE        pair i (0 <= i < head_dim/2) is (v[2i], v[2i+1]) for llama,
 *               (v[i], v[i+head_dim/2]) for neox; with c, s from the tables:
 *               a' = a*c - b*s;  b' = a*s + b*c   (products rounded, then +/-)
 *               tables: freq_i = lmc_exp(-(2i/head_dim) * lmc_log(base)),
 *               lmc_sincos(pos * freq_i) in double, each rounded to float
 *   attention   for query head h, kv head h / (n_heads / n_kv_heads):
 *               s_t = lmc_dot8(q, k_t, head_dim) * (1.0f / sqrtf(head_dim))
 *               for t = 0..pos; m = max s_t; e_t = lmc_expf(s_t - m);
 *               S = lmc_sum8(e, pos + 1);
 *               out[d] = (((0 + e_0*v_0[d]) + e_1*v_1[d]) + ...) / S
 *               int8 attention (numerics v3; kernels.h, "int8 attention"):
 *               keys and values cached as int8 with a scale per position,
 *               7-bit queries, exact integer dot products, the same softmax,
 *               15-bit weights and exact integer sums of the weighted values
 *   residual    x[i] = x[i] + proj[i]
 *   FFN         h[i] = lmc_silu(gate[i]) * up[i]
 *   logits      output matmul of the final RMSNorm
 *   slide       lmc_llama_slide moves cached keys back by `stride` positions:
 *               with c, s the tables' entries at position stride,
 *               a' = a*c + b*s;  b' = b*c - a*s  (products rounded, then +/-);
 *               an int8 key is first taken back to floats (q * scale) and
 *               quantised again after
 *
 * Tokens outside [0, vocab) embed as zeros.
 *
 * GPU: when the CUDA backend is enabled (nn/cuda.h), a state runs every
 * call on the device (nn/cuda/llama_cuda.cu, the same steps bit for bit)
 * and remembers what each sequence's caches were made from (its rows and
 * slides since it last started at position 0), so that if the device fails
 * it can rebuild the caches here and go on on the CPU.
 *
 * Threads: a call whose rows all belong to different sequences (lockstep
 * decoding) gives each thread a part of the rows to run through the whole
 * pass; any other call runs step by step, each step split across threads
 * (output rows of a matmul, rows, or the kv heads of the rows in attention).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/detmath.h"
#include "nn/cuda.h"
#include "nn/kernels.h"

/* Attention scratch buffers (score rows of one kv head's query heads): at most this many
 * threads or row groups work on attention at once. */
#define ATTN_SLOTS 64
/* Attention slots per thread: spare ones let a thread that is free take
 * over from one the operating system has descheduled. */
#define ATTN_SLOTS_PER_THREAD 4
/* Per-row work (norms, RoPE, quantisation, SwiGLU: a few operations per
 * element) runs on the pool only for at least this many elements, and
 * attention only for at least this many (row, head, key) dot products:
 * below that handing work to another thread costs more than it saves. */
#define ROWS_PARALLEL_MIN_ELEMENTS 4096
#define ATTN_PARALLEL_MIN_DOTS 512
#define ALIGNMENT 64
/* lmc_llama_rows_per_sequence on the CPU: 512 measured no faster than 64
 * (compressing alice29.txt: 2% more user time). */
#define CPU_ROWS_PER_SEQUENCE 64

/* With the GPU, what a sequence's caches were made from since its last row
 * at position 0, in order: a token (>= 0) is a row at the position after
 * the previous one; HISTORY_SLIDE, stride, length is an lmc_llama_slide;
 * HISTORY_SEEK, position makes the next row's position `position`. */
#define HISTORY_SLIDE (-1)
#define HISTORY_SEEK (-2)
typedef struct {
    int32_t *entries;
    size_t count, capacity;
    size_t pending; /* entries a call being reserved for may add */
    int next_pos;   /* the position a row must have to need no HISTORY_SEEK */
} cache_history;

struct lmc_llama_state {
    const lmc_llama *model;
    lmc_nn_rules rules;         /* how matmul inputs are quantised, how attention computes */
    int n_seqs, max_pos, max_rows;
    int key_pos;                /* max_pos rounded up to whole key blocks (of either layout) */
    int q_dim, kv_dim, act_width;
    float attn_scale;
    void *memory;
    float *rope_cos, *rope_sin; /* [max_pos][head_dim / 2] */
    /* Float attention: */
    float *k_cache;             /* [n_seqs][n_layers][n_kv_heads] key blocks of key_pos positions (kernels.h) */
    float *v_cache;             /* [n_seqs][n_layers][n_kv_heads][max_pos][head_dim] */
    /* int8 attention (kernels.h), per (sequence, layer, kv head): */
    int8_t *k8_cache;           /* key blocks of key_pos positions, padded dim */
    int8_t *v8_cache;           /* key_pos positions in pairs */
    float *k_scale, *v_scale;   /* [key_pos] */
    int32_t *k_sum;             /* [key_pos] */
    float *x;                   /* [max_rows][dim] residual stream */
    float *act;                 /* [max_rows][act_width] normalised / gated activations */
    float *q, *k, *v;           /* [max_rows][q_dim], [max_rows][kv_dim] x2 */
    float *att;                 /* [max_rows][q_dim] attention output */
    float *proj;                /* [max_rows][dim] output of wo / w_down */
    float *gate, *up;           /* [max_rows][hidden_dim] */
    int8_t *xq;                 /* [max_rows][2][act_width] quantised matmul input (hi, lo planes) */
    float *xscale;              /* [max_rows] */
    int slot_floats;            /* group * max_pos + group: the scores and weight sums of a group */
    float *scores;              /* [ATTN_SLOTS][slot_floats] */
    uint32_t *seq_mark;         /* [n_seqs] the last call (mark) that had a row of the sequence */
    uint32_t mark;
    lmc_cuda_llama *gpu;        /* the device runs the calls, or NULL */
    cache_history *history;     /* with gpu: [n_seqs] how each sequence's caches were made */
};

static void free_history(lmc_llama_state *s);

/* ---- Memory layout: one aligned allocation ---- */

/* Byte offsets of every buffer in the allocation, and its total size. */
typedef struct {
    uint64_t rope_cos, rope_sin, k_cache, v_cache, k8_cache, v8_cache, k_scale, v_scale, k_sum;
    uint64_t x, act, q, k, v, att, proj, gate, up, xq, xscale, scores, seq_mark;
    uint64_t total;
} state_layout;

static int max3(int a, int b, int c) {
    return LMC_MAX(a, LMC_MAX(b, c));
}

/* Reserves an aligned block of `bytes` at the end of the layout. */
static uint64_t reserve(uint64_t *total, uint64_t bytes) {
    uint64_t at = *total;
    *total += (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    return at;
}

static int key_positions(int max_pos, lmc_attn_rule rule) {
    const int block = rule == LMC_ATTN_INT8 ? LMC_ATTN8_KEY_BLOCK : LMC_ATTN_KEY_BLOCK;
    return (max_pos + block - 1) / block * block;
}

/* Floats of one attention slot: a score row per query head of a kv head,
 * then their weight sums; for int8 attention then their factors (kernels.h)
 * and weight scales, their 7-bit queries and their 15-bit weights. */
static int slot_floats(const lmc_llama *m, int max_pos, lmc_attn_rule rule) {
    const int group = m->n_heads / m->n_kv_heads;
    const int floats = group * max_pos + group;
    if (rule != LMC_ATTN_INT8)
        return floats;
    const int query_floats = lmc_attn8_padded_dim(m->head_dim) / 4, weight_floats = key_positions(max_pos, rule) / 2;
    return floats + group * (2 + query_floats + weight_floats);
}

static state_layout layout_of(const lmc_llama *m, lmc_nn_rules rules, int n_seqs, int max_pos, int max_rows) {
    const uint64_t f = sizeof(float), rows = (uint64_t)max_rows, pos = (uint64_t)max_pos;
    const uint64_t q_dim = (uint64_t)m->n_heads * (uint64_t)m->head_dim;
    const uint64_t kv_dim = (uint64_t)m->n_kv_heads * (uint64_t)m->head_dim;
    const uint64_t act_width = (uint64_t)max3(m->dim, (int)q_dim, m->hidden_dim);
    const uint64_t rope_bytes = pos * (uint64_t)(m->head_dim / 2) * f;
    const uint64_t heads = (uint64_t)n_seqs * (uint64_t)m->n_layers * (uint64_t)m->n_kv_heads;
    const uint64_t key_pos = (uint64_t)key_positions(max_pos, rules.attn);
    state_layout l;
    memset(&l, 0, sizeof l);
    l.rope_cos = reserve(&l.total, rope_bytes);
    l.rope_sin = reserve(&l.total, rope_bytes);
    if (rules.attn == LMC_ATTN_INT8) {
        l.k8_cache = reserve(&l.total, heads * key_pos * (uint64_t)lmc_attn8_padded_dim(m->head_dim));
        l.v8_cache = reserve(&l.total, heads * key_pos * (uint64_t)m->head_dim);
        l.k_scale = reserve(&l.total, heads * key_pos * f);
        l.v_scale = reserve(&l.total, heads * key_pos * f);
        l.k_sum = reserve(&l.total, heads * key_pos * sizeof(int32_t));
    } else {
        l.k_cache = reserve(&l.total, heads * key_pos * (uint64_t)m->head_dim * f);
        l.v_cache = reserve(&l.total, heads * pos * (uint64_t)m->head_dim * f);
    }
    l.x = reserve(&l.total, rows * (uint64_t)m->dim * f);
    l.act = reserve(&l.total, rows * act_width * f);
    l.q = reserve(&l.total, rows * q_dim * f);
    l.k = reserve(&l.total, rows * kv_dim * f);
    l.v = reserve(&l.total, rows * kv_dim * f);
    l.att = reserve(&l.total, rows * q_dim * f);
    l.proj = reserve(&l.total, rows * (uint64_t)m->dim * f);
    l.gate = reserve(&l.total, rows * (uint64_t)m->hidden_dim * f);
    l.up = reserve(&l.total, rows * (uint64_t)m->hidden_dim * f);
    l.xq = reserve(&l.total, rows * 2 * act_width);
    l.xscale = reserve(&l.total, rows * f);
    l.scores = reserve(&l.total, (uint64_t)ATTN_SLOTS * (uint64_t)slot_floats(m, max_pos, rules.attn) * f);
    l.seq_mark = reserve(&l.total, (uint64_t)n_seqs * sizeof(uint32_t));
    return l;
}

uint64_t lmc_llama_state_bytes(const lmc_llama *model, lmc_nn_rules rules, int n_seqs, int max_pos, int max_rows) {
    return sizeof(lmc_llama_state) + layout_of(model, rules, n_seqs, max_pos, max_rows).total;
}

/* ---- Validation ---- */

static int qmat_is(const lmc_qmat *w, int rows, int cols) {
    return w->q && w->scale && w->row_sum && w->rows == rows && w->cols == cols;
}

static int layer_is_valid(const lmc_llama *m, const lmc_llama_layer *l) {
    const int q_dim = m->n_heads * m->head_dim, kv_dim = m->n_kv_heads * m->head_dim;
    return l->attn_norm && l->ffn_norm && qmat_is(&l->wq, q_dim, m->dim) && qmat_is(&l->wk, kv_dim, m->dim) &&
           qmat_is(&l->wv, kv_dim, m->dim) && qmat_is(&l->wo, m->dim, q_dim) &&
           qmat_is(&l->w_gate, m->hidden_dim, m->dim) && qmat_is(&l->w_up, m->hidden_dim, m->dim) &&
           qmat_is(&l->w_down, m->dim, m->hidden_dim);
}

static int model_is_valid(const lmc_llama *m) {
    if (m->dim <= 0 || m->hidden_dim <= 0 || m->n_layers <= 0 || m->n_heads <= 0 || m->n_kv_heads <= 0 ||
        m->head_dim <= 0 || m->head_dim % 2 != 0 || m->n_heads % m->n_kv_heads != 0 || m->vocab <= 0 ||
        !m->tok_embd || !m->layers || !m->out_norm || !qmat_is(&m->output, m->vocab, m->dim) ||
        !(m->rope_base > 0.0f))
        return 0;
    for (int i = 0; i < m->n_layers; i++)
        if (!layer_is_valid(m, &m->layers[i]))
            return 0;
    return 1;
}

/* ---- State ---- */

/* cos/sin of pos * base^(-2i/head_dim), computed in double, rounded once. */
static void fill_rope_tables(lmc_llama_state *s) {
    const int half = s->model->head_dim / 2;
    const double log_base = lmc_log((double)s->model->rope_base);
    for (int i = 0; i < half; i++) {
        double exponent = (double)(2 * i) / (double)s->model->head_dim;
        double freq = lmc_exp(-exponent * log_base);
        for (int pos = 0; pos < s->max_pos; pos++) {
            double sin_v, cos_v;
            lmc_sincos((double)pos * freq, &sin_v, &cos_v);
            s->rope_cos[(size_t)pos * (size_t)half + (size_t)i] = (float)cos_v;
            s->rope_sin[(size_t)pos * (size_t)half + (size_t)i] = (float)sin_v;
        }
    }
}

/* With the GPU asked for and usable, the device state; on any failure the
 * CPU state alone serves. */
static void attach_gpu(lmc_llama_state *s) {
    if (!lmc_cuda_enabled())
        return;
    s->history = calloc((size_t)s->n_seqs, sizeof *s->history);
    if (!s->history ||
        lmc_cuda_llama_create(s->model, s->rules, s->n_seqs, s->max_pos, s->max_rows, s->rope_cos, s->rope_sin,
                              &s->gpu) != LMC_OK) {
        free(s->history);
        s->history = NULL;
    }
}

int lmc_llama_rows_per_sequence(const lmc_llama_state *state) {
    return state->gpu ? state->max_rows : LMC_MIN(CPU_ROWS_PER_SEQUENCE, state->max_rows);
}

lmc_status lmc_llama_state_create(const lmc_llama *model, lmc_nn_rules rules, int n_seqs, int max_pos,
                                  int max_rows, lmc_llama_state **out) {
    *out = NULL;
    if (!model || n_seqs <= 0 || max_pos <= 0 || max_rows <= 0 || !model_is_valid(model) ||
        (rules.attn == LMC_ATTN_INT8 && model->head_dim > LMC_ATTN8_MAX_HEAD_DIM))
        return LMC_ERR_PARAM;
    state_layout l = layout_of(model, rules, n_seqs, max_pos, max_rows);
    if (l.total > SIZE_MAX)
        return LMC_ERR_NOMEM;
    lmc_llama_state *s = calloc(1, sizeof *s);
    if (!s)
        return LMC_ERR_NOMEM;
    s->memory = aligned_alloc(ALIGNMENT, (size_t)l.total);
    if (!s->memory) {
        free(s);
        return LMC_ERR_NOMEM;
    }
    uint8_t *base = s->memory;
    s->model = model;
    s->rules = rules;
    s->n_seqs = n_seqs;
    s->max_pos = max_pos;
    s->max_rows = max_rows;
    s->key_pos = key_positions(max_pos, rules.attn);
    s->slot_floats = slot_floats(model, max_pos, rules.attn);
    s->q_dim = model->n_heads * model->head_dim;
    s->kv_dim = model->n_kv_heads * model->head_dim;
    s->act_width = max3(model->dim, s->q_dim, model->hidden_dim);
    s->attn_scale = 1.0f / sqrtf((float)model->head_dim);
    s->rope_cos = (float *)(base + l.rope_cos);
    s->rope_sin = (float *)(base + l.rope_sin);
    if (rules.attn == LMC_ATTN_INT8) {
        s->k8_cache = (int8_t *)(base + l.k8_cache);
        s->v8_cache = (int8_t *)(base + l.v8_cache);
        s->k_scale = (float *)(base + l.k_scale);
        s->v_scale = (float *)(base + l.v_scale);
        s->k_sum = (int32_t *)(base + l.k_sum);
    } else {
        s->k_cache = (float *)(base + l.k_cache);
        s->v_cache = (float *)(base + l.v_cache);
    }
    s->x = (float *)(base + l.x);
    s->act = (float *)(base + l.act);
    s->q = (float *)(base + l.q);
    s->k = (float *)(base + l.k);
    s->v = (float *)(base + l.v);
    s->att = (float *)(base + l.att);
    s->proj = (float *)(base + l.proj);
    s->gate = (float *)(base + l.gate);
    s->up = (float *)(base + l.up);
    s->xq = (int8_t *)(base + l.xq);
    s->xscale = (float *)(base + l.xscale);
    s->scores = (float *)(base + l.scores);
    s->seq_mark = (uint32_t *)(base + l.seq_mark);
    /* Positions are always written before they are read; zeroing keeps
     * tools like valgrind quiet about the never-read padding. */
    memset(s->memory, 0, (size_t)l.total);
    fill_rope_tables(s);
    attach_gpu(s);
    *out = s;
    return LMC_OK;
}

void lmc_llama_state_free(lmc_llama_state *state) {
    if (!state)
        return;
    lmc_cuda_llama_free(state->gpu);
    free_history(state);
    free(state->memory);
    free(state);
}

/* ---- Forward pass ---- */

typedef struct forward_ctx forward_ctx;
typedef void (*row_fn)(const forward_ctx *c, int row);

/* The state's scratch rows one forward works on: row r of the forward is
 * row first + r of the state's buffers (parts of a call running on
 * different threads use disjoint rows). */
typedef struct {
    float *x, *act, *q, *k, *v, *att, *proj, *gate, *up, *xscale;
    int8_t *xq;
    float *scores; /* its first attention slot */
} scratch_rows;

/* What one forward (a call, a chunk of max_rows rows, or a part of one on
 * its own thread) works on. */
struct forward_ctx {
    lmc_llama_state *s;
    const lmc_llama *m;
    lmc_pool *pool;             /* NULL inside a part: the part runs on one thread */
    const int *seqs;
    const int32_t *tokens;
    const int *positions;
    int n;
    float *logits;              /* [n][vocab] or NULL */
    scratch_rows r;
    int layer;
    row_fn fn;
    const float *norm_weight;   /* RMSNorm weight of the current step */
    const float *residual;      /* added to x before the norm, or NULL */
    lmc_attn_scores_group_fn scores_fn;
    lmc_attn_mix_fn mix_fn;
    lmc_softmax_fn softmax_fn;
    lmc_swiglu_fn swiglu_fn;
    lmc_quantize_fn quantize_fn;
    lmc_quantize_fn quantize7_fn; /* the queries of int8 attention */
    lmc_attn8_scores_fn scores8_fn;
    lmc_attn8_mix_fn mix8_fn;
    lmc_attn8_weights_fn weights8_fn;
    void (*attend_fn)(const forward_ctx *c, int row, int kv_head, float *slot); /* attend or attend8 */
    int attn_slots;
};

static scratch_rows scratch_at(const lmc_llama_state *s, int first, int slot) {
    const size_t row = (size_t)first;
    return (scratch_rows){
        .x = s->x + row * (size_t)s->model->dim,
        .act = s->act + row * (size_t)s->act_width,
        .q = s->q + row * (size_t)s->q_dim,
        .k = s->k + row * (size_t)s->kv_dim,
        .v = s->v + row * (size_t)s->kv_dim,
        .att = s->att + row * (size_t)s->q_dim,
        .proj = s->proj + row * (size_t)s->model->dim,
        .gate = s->gate + row * (size_t)s->model->hidden_dim,
        .up = s->up + row * (size_t)s->model->hidden_dim,
        .xscale = s->xscale + row,
        .xq = s->xq + 2 * row * (size_t)s->act_width,
        .scores = s->scores + (size_t)slot * (size_t)s->slot_floats,
    };
}

static void rows_range(void *ctx_, int begin, int end) {
    const forward_ctx *c = ctx_;
    for (int row = begin; row < end; row++)
        c->fn(c, row);
}

/* Runs fn on every row of `width` elements; rows are independent, so the
 * split is free. */
static void for_each_row(forward_ctx *c, row_fn fn, int width) {
    c->fn = fn;
    if ((int64_t)c->n * width < ROWS_PARALLEL_MIN_ELEMENTS)
        rows_range(c, 0, c->n);
    else
        lmc_pool_for(c->pool, c->n, rows_range, c);
}

static void quantize_activation(const forward_ctx *c, int row, const float *values, int width) {
    c->r.xscale[row] = c->quantize_fn(values, width, c->r.xq + 2 * (size_t)row * (size_t)width);
}

static void rms_norm(const float *x, const float *weight, int dim, float eps, float *out) {
    float sum_squares = lmc_dot8(x, x, dim);
    float r = lmc_rsqrtf(sum_squares / (float)dim + eps);
    for (int i = 0; i < dim; i++)
        out[i] = (x[i] * r) * weight[i];
}

static void row_embed(const forward_ctx *c, int row) {
    const int dim = c->m->dim;
    float *x = c->r.x + (size_t)row * (size_t)dim;
    int32_t token = c->tokens[row];
    if (token >= 0 && token < c->m->vocab)
        memcpy(x, c->m->tok_embd + (size_t)token * (size_t)dim, (size_t)dim * sizeof *x);
    else
        memset(x, 0, (size_t)dim * sizeof *x);
}

/* x += residual (if any); act = RMSNorm(x); xq = quantise(act). */
static void row_residual_norm(const forward_ctx *c, int row) {
    const int dim = c->m->dim;
    float *x = c->r.x + (size_t)row * (size_t)dim;
    if (c->residual) {
        const float *r = c->residual + (size_t)row * (size_t)dim;
        for (int i = 0; i < dim; i++)
            x[i] = x[i] + r[i];
    }
    float *act = c->r.act + (size_t)row * (size_t)dim;
    rms_norm(x, c->norm_weight, dim, c->m->norm_eps, act);
    quantize_activation(c, row, act, dim);
}

static void rope_rotate(float *v, int head_dim, int neox, const float *cos_row, const float *sin_row) {
    const int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = v[a], x1 = v[b], c = cos_row[i], s = sin_row[i];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}

static size_t cache_head(const lmc_llama_state *s, int seq, int layer, int kv_head) {
    const lmc_llama *m = s->model;
    return ((size_t)seq * (size_t)m->n_layers + (size_t)layer) * (size_t)m->n_kv_heads + (size_t)kv_head;
}

/* Where the key blocks of a kv head start in k_cache. */
static size_t key_offset(const lmc_llama_state *s, int seq, int layer, int kv_head) {
    return cache_head(s, seq, layer, kv_head) * (size_t)s->key_pos * (size_t)s->model->head_dim;
}

/* Where the value of a position starts in v_cache. */
static size_t value_offset(const lmc_llama_state *s, int seq, int layer, int kv_head, int pos) {
    return (cache_head(s, seq, layer, kv_head) * (size_t)s->max_pos + (size_t)pos) * (size_t)s->model->head_dim;
}

/* Quantises a rotated key and stores it at `pos` of its int8 cache. */
static void store_key8(lmc_llama_state *s, size_t head, const float *key, int pos) {
    const int hd = s->model->head_dim, padded = lmc_attn8_padded_dim(hd);
    int8_t q[LMC_ATTN8_MAX_HEAD_DIM];
    s->k_scale[head * (size_t)s->key_pos + (size_t)pos] = lmc_quantize_row(key, hd, q);
    int8_t *keys = s->k8_cache + head * (size_t)s->key_pos * (size_t)padded;
    int32_t sum = 0;
    for (int d = 0; d < hd; d++) {
        keys[lmc_attn8_key_index(padded, pos, d)] = q[d];
        sum += q[d];
    }
    s->k_sum[head * (size_t)s->key_pos + (size_t)pos] = sum;
}

static void store_value8(lmc_llama_state *s, size_t head, const float *value, int pos) {
    const int hd = s->model->head_dim;
    int8_t q[LMC_ATTN8_MAX_HEAD_DIM];
    s->v_scale[head * (size_t)s->key_pos + (size_t)pos] = lmc_quantize_row(value, hd, q);
    int8_t *values = s->v8_cache + head * (size_t)s->key_pos * (size_t)hd;
    for (int d = 0; d < hd; d++)
        values[lmc_attn8_value_index(hd, pos, d)] = q[d];
}

static void store_kv(lmc_llama_state *s, int seq, int layer, int kv_head, const float *key, const float *value,
                     int pos) {
    const int hd = s->model->head_dim;
    if (s->rules.attn == LMC_ATTN_INT8) {
        const size_t head = cache_head(s, seq, layer, kv_head);
        store_key8(s, head, key, pos);
        store_value8(s, head, value, pos);
        return;
    }
    float *keys = s->k_cache + key_offset(s, seq, layer, kv_head);
    for (int d = 0; d < hd; d++)
        keys[lmc_attn_key_index(hd, pos, d)] = key[d];
    memcpy(s->v_cache + value_offset(s, seq, layer, kv_head, pos), value, (size_t)hd * sizeof(float));
}

/* Rotates q and k, then stores k and v at the row's cache position. */
static void row_rope_and_cache(const forward_ctx *c, int row) {
    lmc_llama_state *s = c->s;
    const lmc_llama *m = c->m;
    const int hd = m->head_dim, pos = c->positions[row], seq = c->seqs[row];
    const float *cos_row = s->rope_cos + (size_t)pos * (size_t)(hd / 2);
    const float *sin_row = s->rope_sin + (size_t)pos * (size_t)(hd / 2);
    float *q = c->r.q + (size_t)row * (size_t)s->q_dim;
    for (int h = 0; h < m->n_heads; h++)
        rope_rotate(q + (size_t)h * (size_t)hd, hd, m->rope_neox, cos_row, sin_row);
    float *k = c->r.k + (size_t)row * (size_t)s->kv_dim;
    const float *v = c->r.v + (size_t)row * (size_t)s->kv_dim;
    for (int h = 0; h < m->n_kv_heads; h++) {
        float *k_head = k + (size_t)h * (size_t)hd;
        rope_rotate(k_head, hd, m->rope_neox, cos_row, sin_row);
        store_kv(s, seq, c->layer, h, k_head, v + (size_t)h * (size_t)hd, pos);
    }
}

/* The query heads of one kv head, for one row, over cache positions
 * 0..pos; slot holds their score rows, then their weight sums. */
static void attend(const forward_ctx *c, int row, int kv_head, float *slot) {
    const lmc_llama_state *s = c->s;
    const int hd = c->m->head_dim, n_keys = c->positions[row] + 1, seq = c->seqs[row];
    const int group = c->m->n_heads / c->m->n_kv_heads;
    const size_t q_at = (size_t)row * (size_t)s->q_dim + (size_t)kv_head * (size_t)group * (size_t)hd;
    const float *keys = s->k_cache + key_offset(s, seq, c->layer, kv_head);
    float *sums = slot + (size_t)group * (size_t)s->max_pos;
    c->scores_fn(c->r.q + q_at, group, keys, hd, n_keys, s->attn_scale, slot, (size_t)s->max_pos);
    for (int i = 0; i < group; i++)
        sums[i] = c->softmax_fn(slot + (size_t)i * (size_t)s->max_pos, n_keys);
    c->mix_fn(slot, (size_t)s->max_pos, sums, group, s->v_cache + value_offset(s, seq, c->layer, kv_head, 0), hd,
              n_keys, c->r.att + q_at);
}

/* attend for int8 attention (kernels.h): the slot's score rows and weight
 * sums, then the query heads' factors, weight scales, 7-bit queries and
 * 15-bit weights. */
static void attend8(const forward_ctx *c, int row, int kv_head, float *slot) {
    const lmc_llama_state *s = c->s;
    const int hd = c->m->head_dim, padded = lmc_attn8_padded_dim(hd), n_keys = c->positions[row] + 1;
    const int group = c->m->n_heads / c->m->n_kv_heads;
    const size_t q_at = (size_t)row * (size_t)s->q_dim + (size_t)kv_head * (size_t)group * (size_t)hd;
    const size_t head = cache_head(s, c->seqs[row], c->layer, kv_head), entries = head * (size_t)s->key_pos;
    float *sums = slot + (size_t)group * (size_t)s->max_pos, *factors = sums + group, *w_scales = factors + group;
    int8_t *queries = (int8_t *)(w_scales + group);
    int16_t *weights = (int16_t *)(queries + (size_t)group * (size_t)padded);
    int8_t planes[2 * LMC_ATTN8_MAX_HEAD_DIM];
    for (int i = 0; i < group; i++) {
        int8_t *query = queries + (size_t)i * (size_t)padded;
        float scale = c->quantize7_fn(c->r.q + q_at + (size_t)i * (size_t)hd, hd, planes);
        memcpy(query, planes + hd, (size_t)hd);
        memset(query + hd, 0, (size_t)(padded - hd));
        factors[i] = scale * s->attn_scale;
    }
    c->scores8_fn(queries, factors, group, s->k8_cache + head * (size_t)s->key_pos * (size_t)padded,
                  s->k_scale + entries, s->k_sum + entries, hd, n_keys, slot, (size_t)s->max_pos);
    for (int i = 0; i < group; i++) {
        float *e = slot + (size_t)i * (size_t)s->max_pos;
        sums[i] = c->softmax_fn(e, n_keys);
        w_scales[i] = c->weights8_fn(e, s->v_scale + entries, n_keys, weights + (size_t)i * (size_t)s->key_pos);
    }
    c->mix8_fn(weights, (size_t)s->key_pos, w_scales, sums, group,
               s->v8_cache + head * (size_t)s->key_pos * (size_t)hd, hd, n_keys, c->r.att + q_at);
}

/* Slot i takes items (row, kv head) i, i + slots, ... (interleaved, because
 * later positions cost more) with its own scratch. */
static void attention_slots(void *ctx_, int begin, int end) {
    const forward_ctx *c = ctx_;
    const int n_kv = c->m->n_kv_heads, items = c->n * n_kv;
    for (int slot = begin; slot < end; slot++) {
        float *scratch = c->r.scores + (size_t)slot * (size_t)c->s->slot_floats;
        for (int item = slot; item < items; item += c->attn_slots)
            c->attend_fn(c, item / n_kv, item % n_kv, scratch);
    }
}

static void row_quantize_attention(const forward_ctx *c, int row) {
    quantize_activation(c, row, c->r.att + (size_t)row * (size_t)c->s->q_dim, c->s->q_dim);
}

/* act = silu(gate) * up; xq = quantise(act). */
static void row_swiglu(const forward_ctx *c, int row) {
    const int hidden = c->m->hidden_dim;
    const float *gate = c->r.gate + (size_t)row * (size_t)hidden;
    const float *up = c->r.up + (size_t)row * (size_t)hidden;
    float *act = c->r.act + (size_t)row * (size_t)hidden;
    c->swiglu_fn(gate, up, hidden, act);
    quantize_activation(c, row, act, hidden);
}

static void attention(forward_ctx *c) {
    int64_t dots = 0;
    for (int row = 0; row < c->n; row++)
        dots += (int64_t)(c->positions[row] + 1) * c->m->n_heads;
    const int items = c->n * c->m->n_kv_heads;
    const int threads = lmc_pool_threads(c->pool);
    c->attn_slots = LMC_MIN(LMC_MIN(threads > 1 ? threads * ATTN_SLOTS_PER_THREAD : 1, ATTN_SLOTS), items);
    if (dots < ATTN_PARALLEL_MIN_DOTS)
        c->attn_slots = 1;
    lmc_pool_for(c->pool, c->attn_slots, attention_slots, c);
}

static void attention_block(forward_ctx *c, const lmc_llama_layer *l) {
    const lmc_matmul_job qkv[3] = {{&l->wq, l->bq, c->r.q}, {&l->wk, l->bk, c->r.k}, {&l->wv, l->bv, c->r.v}};
    lmc_matmul_q8_multi(c->pool, qkv, 3, c->r.xq, c->r.xscale, c->n, c->s->rules.act);
    for_each_row(c, row_rope_and_cache, c->s->q_dim + c->s->kv_dim);
    attention(c);
    for_each_row(c, row_quantize_attention, c->s->q_dim);
    lmc_matmul_q8(c->pool, &l->wo, c->r.xq, c->r.xscale, c->n, NULL, c->r.proj, c->s->rules.act);
}

static void ffn_block(forward_ctx *c, const lmc_llama_layer *l) {
    const lmc_matmul_job gate_up[2] = {{&l->w_gate, NULL, c->r.gate}, {&l->w_up, NULL, c->r.up}};
    lmc_matmul_q8_multi(c->pool, gate_up, 2, c->r.xq, c->r.xscale, c->n, c->s->rules.act);
    for_each_row(c, row_swiglu, c->m->hidden_dim);
    lmc_matmul_q8(c->pool, &l->w_down, c->r.xq, c->r.xscale, c->n, NULL, c->r.proj, c->s->rules.act);
}

static void forward_rows(forward_ctx *c) {
    const lmc_llama *m = c->m;
    for_each_row(c, row_embed, m->dim);
    c->residual = NULL;
    for (int layer = 0; layer < m->n_layers; layer++) {
        const lmc_llama_layer *l = &m->layers[layer];
        c->layer = layer;
        c->norm_weight = l->attn_norm;
        for_each_row(c, row_residual_norm, m->dim);
        attention_block(c, l);
        c->residual = c->r.proj;
        c->norm_weight = l->ffn_norm;
        for_each_row(c, row_residual_norm, m->dim);
        ffn_block(c, l);
    }
    c->norm_weight = m->out_norm;
    for_each_row(c, row_residual_norm, m->dim);
    if (c->logits)
        lmc_matmul_q8(c->pool, &m->output, c->r.xq, c->r.xscale, c->n, NULL, c->logits, c->s->rules.act);
}

/* ---- Lockstep calls: one part per thread ----
 * When every row of a call belongs to a different sequence (lockstep
 * decoding), no row depends on another: each thread can run the whole
 * forward pass on its own rows, with no synchronisation between the ~60
 * steps of a pass (each step still computes every value exactly as
 * above, so the results do not change). */

typedef struct {
    const forward_ctx *whole;
    int parts;
} parts_ctx;

static void run_parts(void *ctx_, int begin, int end) {
    const parts_ctx *p = ctx_;
    const forward_ctx *whole = p->whole;
    for (int part = begin; part < end; part++) {
        int first = (int)((int64_t)whole->n * part / p->parts);
        int last = (int)((int64_t)whole->n * (part + 1) / p->parts);
        forward_ctx c = *whole;
        c.pool = NULL;
        c.seqs += first;
        c.tokens += first;
        c.positions += first;
        c.n = last - first;
        c.logits = whole->logits ? whole->logits + (size_t)first * (size_t)whole->m->vocab : NULL;
        c.r = scratch_at(whole->s, first, part); /* a call's rows start at scratch row 0 */
        forward_rows(&c);
    }
}

/* Whether no two rows of the call share a sequence. */
static int rows_independent(lmc_llama_state *s, const int *seqs, int n) {
    if (++s->mark == 0) { /* wrapped: forget every old mark */
        memset(s->seq_mark, 0, (size_t)s->n_seqs * sizeof *s->seq_mark);
        s->mark = 1;
    }
    for (int i = 0; i < n; i++) {
        if (s->seq_mark[seqs[i]] == s->mark)
            return 0;
        s->seq_mark[seqs[i]] = s->mark;
    }
    return 1;
}

static void forward_call(forward_ctx *c) {
    const int parts = LMC_MIN(LMC_MIN(lmc_pool_threads(c->pool), c->n), ATTN_SLOTS);
    if (parts > 1 && rows_independent(c->s, c->seqs, c->n)) {
        parts_ctx p = {c, parts};
        lmc_pool_for(c->pool, parts, run_parts, &p);
    } else {
        forward_rows(c);
    }
}

static lmc_quantize_fn quantizer_for(lmc_act_rule rule, int simd) {
    if (rule == LMC_ACT_INT7)
        return simd ? lmc_quantize_activation7_avx2 : lmc_quantize_activation7_scalar;
    return simd ? lmc_quantize_activation_avx2 : lmc_quantize_activation_scalar;
}

static void forward_on_cpu(lmc_llama_state *state, lmc_pool *pool, const int *seqs, const int32_t *tokens,
                           const int *positions, int n, float *logits) {
    const lmc_simd_level level = lmc_simd_selected();
    const int simd = level >= LMC_SIMD_AVX2;
    for (int i = 0; i < n; i++)
        assert(seqs[i] >= 0 && seqs[i] < state->n_seqs && positions[i] >= 0 && positions[i] < state->max_pos);
    /* Chunks of max_rows rows run one after another: every row's result is
     * independent of its neighbours, so chunking changes nothing. */
    for (int first = 0; first < n; first += state->max_rows) {
        forward_ctx c = {
            .s = state, .m = state->model, .pool = pool,
            .seqs = seqs + first, .tokens = tokens + first, .positions = positions + first,
            .n = LMC_MIN(state->max_rows, n - first),
            .logits = logits ? logits + (size_t)first * (size_t)state->model->vocab : NULL,
            .r = scratch_at(state, 0, 0),
            .scores_fn = level >= LMC_SIMD_AVX512 ? lmc_attn_scores_group_avx512
                         : simd                    ? lmc_attn_scores_group_avx2
                                                   : lmc_attn_scores_group_scalar,
            .mix_fn = level >= LMC_SIMD_AVX512 ? lmc_attn_mix_avx512
                      : simd                    ? lmc_attn_mix_avx2
                                                : lmc_attn_mix_scalar,
            .softmax_fn = simd ? lmc_softmax_avx2 : lmc_softmax_scalar,
            .swiglu_fn = simd ? lmc_swiglu_avx2 : lmc_swiglu_scalar,
            .quantize_fn = quantizer_for(state->rules.act, simd),
            .quantize7_fn = quantizer_for(LMC_ACT_INT7, simd),
            .scores8_fn = simd ? lmc_attn8_scores_avx2 : lmc_attn8_scores_scalar,
            .mix8_fn = simd ? lmc_attn8_mix_avx2 : lmc_attn8_mix_scalar,
            .weights8_fn = simd ? lmc_attn8_weights_avx2 : lmc_attn8_weights_scalar,
            .attend_fn = state->rules.attn == LMC_ATTN_INT8 ? attend8 : attend,
        };
        forward_call(&c);
    }
}

/* ---- Sliding a window on the CPU (lmc_llama_slide) ---- */

/* Rotation pair (x0, x1) turned back by the angle whose cosine and sine
 * are c and sn: a' = a*c + b*s, b' = b*c - a*s (products rounded, then the
 * sum), the rule of both cache layouts. */
static void rotate_back(float x0, float x1, float c, float sn, float *a, float *b) {
    *a = x0 * c + x1 * sn;
    *b = x1 * c - x0 * sn;
}

/* One kv head's keys [stride + 1, length) to [1, length - stride), rotated
 * back by stride positions (in increasing order: a key is read before its
 * place is written). */
static void slide_keys(const lmc_llama_state *s, float *keys, int stride, int length) {
    const int hd = s->model->head_dim, half = hd / 2, neox = s->model->rope_neox;
    const float *cos_row = s->rope_cos + (size_t)stride * (size_t)half;
    const float *sin_row = s->rope_sin + (size_t)stride * (size_t)half;
    for (int pos = stride + 1; pos < length; pos++)
        for (int i = 0; i < half; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = keys[lmc_attn_key_index(hd, pos, a)], x1 = keys[lmc_attn_key_index(hd, pos, b)];
            rotate_back(x0, x1, cos_row[i], sin_row[i], &keys[lmc_attn_key_index(hd, pos - stride, a)],
                        &keys[lmc_attn_key_index(hd, pos - stride, b)]);
        }
}

/* slide_keys for an int8 cache: each moved key is taken back to floats
 * ((float)q * scale), rotated as slide_keys does and quantised again. */
static void slide_keys8(lmc_llama_state *s, size_t head, int stride, int length) {
    const int hd = s->model->head_dim, half = hd / 2, neox = s->model->rope_neox, padded = lmc_attn8_padded_dim(hd);
    const float *cos_row = s->rope_cos + (size_t)stride * (size_t)half;
    const float *sin_row = s->rope_sin + (size_t)stride * (size_t)half;
    const int8_t *keys = s->k8_cache + head * (size_t)s->key_pos * (size_t)padded;
    const float *scales = s->k_scale + head * (size_t)s->key_pos;
    float key[LMC_ATTN8_MAX_HEAD_DIM];
    for (int pos = stride + 1; pos < length; pos++) {
        for (int i = 0; i < half; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = (float)keys[lmc_attn8_key_index(padded, pos, a)] * scales[pos];
            float x1 = (float)keys[lmc_attn8_key_index(padded, pos, b)] * scales[pos];
            rotate_back(x0, x1, cos_row[i], sin_row[i], &key[a], &key[b]);
        }
        store_key8(s, head, key, pos - stride);
    }
}

static void slide_values8(lmc_llama_state *s, size_t head, int stride, int length) {
    const int hd = s->model->head_dim;
    int8_t *values = s->v8_cache + head * (size_t)s->key_pos * (size_t)hd;
    float *scales = s->v_scale + head * (size_t)s->key_pos;
    for (int pos = stride + 1; pos < length; pos++) {
        for (int d = 0; d < hd; d++)
            values[lmc_attn8_value_index(hd, pos - stride, d)] = values[lmc_attn8_value_index(hd, pos, d)];
        scales[pos - stride] = scales[pos];
    }
}

static void slide_on_cpu(lmc_llama_state *s, const int *seqs, int n, int stride, int length) {
    const lmc_llama *m = s->model;
    if (s->rules.attn == LMC_ATTN_INT8) {
        for (int i = 0; i < n; i++)
            for (int layer = 0; layer < m->n_layers; layer++)
                for (int h = 0; h < m->n_kv_heads; h++) {
                    slide_keys8(s, cache_head(s, seqs[i], layer, h), stride, length);
                    slide_values8(s, cache_head(s, seqs[i], layer, h), stride, length);
                }
        return;
    }
    const size_t kept = (size_t)(length - stride - 1) * (size_t)m->head_dim;
    for (int i = 0; i < n; i++)
        for (int layer = 0; layer < m->n_layers; layer++)
            for (int h = 0; h < m->n_kv_heads; h++) {
                slide_keys(s, s->k_cache + key_offset(s, seqs[i], layer, h), stride, length);
                memmove(s->v_cache + value_offset(s, seqs[i], layer, h, 1),
                        s->v_cache + value_offset(s, seqs[i], layer, h, stride + 1), kept * sizeof(float));
            }
}

/* ---- The GPU's history, for rebuilding its caches on the CPU ---- */

static void free_history(lmc_llama_state *s) {
    if (!s->history)
        return;
    for (int seq = 0; seq < s->n_seqs; seq++)
        free(s->history[seq].entries);
    free(s->history);
    s->history = NULL;
}

/* Room for `more` entries after the history's last. */
static int history_reserve(cache_history *h, size_t more) {
    if (h->count + more <= h->capacity)
        return 1;
    size_t capacity = LMC_MAX(h->capacity * 2, h->count + more + 256);
    int32_t *entries = realloc(h->entries, capacity * sizeof *entries);
    if (!entries)
        return 0;
    h->entries = entries;
    h->capacity = capacity;
    return 1;
}

/* Room to record n rows of seqs, each taking up to 3 entries (a
 * HISTORY_SEEK and its position, then the token), or a slide of each of
 * the n sequences (3 entries); 0 if memory ran out. */
static int history_reserve_rows(lmc_llama_state *s, const int *seqs, int n) {
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        cache_history *h = &s->history[seqs[i]];
        h->pending += 3;
        ok = history_reserve(h, h->pending);
    }
    for (int i = 0; i < n; i++)
        s->history[seqs[i]].pending = 0;
    return ok;
}

static void history_put(cache_history *h, int32_t value) {
    h->entries[h->count++] = value;
}

/* Records rows the device has run (room reserved). Tokens the model does
 * not know embed as zeros whatever their value, so they are kept as vocab
 * (negative entries are markers). */
static void remember_rows(lmc_llama_state *s, const int *seqs, const int32_t *tokens, const int *positions, int n) {
    for (int i = 0; i < n; i++) {
        cache_history *h = &s->history[seqs[i]];
        if (positions[i] == 0)
            h->count = 0;
        else if (positions[i] != h->next_pos) {
            history_put(h, HISTORY_SEEK);
            history_put(h, positions[i]);
        }
        history_put(h, tokens[i] >= 0 && tokens[i] < s->model->vocab ? tokens[i] : s->model->vocab);
        h->next_pos = positions[i] + 1;
    }
}

static void remember_slides(lmc_llama_state *s, const int *seqs, int n, int stride, int length) {
    for (int i = 0; i < n; i++) {
        cache_history *h = &s->history[seqs[i]];
        history_put(h, HISTORY_SLIDE);
        history_put(h, stride);
        history_put(h, length);
        h->next_pos = length - stride;
    }
}

/* Rebuilds one sequence's caches on the CPU from its history, REPLAY_ROWS
 * rows per call. */
#define REPLAY_ROWS 64
static void replay_history(lmc_llama_state *s, lmc_pool *pool, int seq) {
    const cache_history *h = &s->history[seq];
    int seqs[REPLAY_ROWS], positions[REPLAY_ROWS], n = 0, pos = 0;
    int32_t tokens[REPLAY_ROWS];
    for (size_t i = 0; i < h->count; i++) {
        int32_t entry = h->entries[i];
        if (entry == HISTORY_SEEK) {
            pos = h->entries[++i];
            continue;
        }
        if (entry == HISTORY_SLIDE || n == REPLAY_ROWS) {
            if (n > 0)
                forward_on_cpu(s, pool, seqs, tokens, positions, n, NULL);
            n = 0;
        }
        if (entry == HISTORY_SLIDE) {
            int stride = h->entries[i + 1], length = h->entries[i + 2];
            slide_on_cpu(s, &seq, 1, stride, length);
            pos = length - stride;
            i += 2;
            continue;
        }
        seqs[n] = seq;
        tokens[n] = entry;
        positions[n++] = pos++;
    }
    if (n > 0)
        forward_on_cpu(s, pool, seqs, tokens, positions, n, NULL);
}

/* The device failed (or its history could not grow): drop it, and rebuild
 * every sequence's caches on the CPU. */
static void fall_back_to_cpu(lmc_llama_state *s, lmc_pool *pool) {
    lmc_cuda_llama_free(s->gpu);
    s->gpu = NULL;
    for (int seq = 0; seq < s->n_seqs; seq++)
        replay_history(s, pool, seq);
    free_history(s);
}

void lmc_llama_forward(lmc_llama_state *state, lmc_pool *pool, const int *seqs, const int32_t *tokens,
                       const int *positions, int n, float *logits) {
    if (state->gpu) {
        if (history_reserve_rows(state, seqs, n) &&
            lmc_cuda_llama_forward(state->gpu, seqs, tokens, positions, n, logits) == LMC_OK) {
            remember_rows(state, seqs, tokens, positions, n);
            return;
        }
        fall_back_to_cpu(state, pool);
    }
    forward_on_cpu(state, pool, seqs, tokens, positions, n, logits);
}

/* ---- Sliding a window ---- */

void lmc_llama_slide(lmc_llama_state *state, lmc_pool *pool, const int *seqs, int n, int stride, int length) {
    assert(stride > 0 && stride < length && length <= state->max_pos);
    if (state->gpu) {
        if (history_reserve_rows(state, seqs, n) &&
            lmc_cuda_llama_slide(state->gpu, seqs, n, stride, length) == LMC_OK) {
            remember_slides(state, seqs, n, stride, length);
            return;
        }
        fall_back_to_cpu(state, pool);
    }
    slide_on_cpu(state, seqs, n, stride, length);
}
