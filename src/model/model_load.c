/*
 * Loading a GGUF model for the engine (docs/MODELS.md).
 *
 * Weights are built in two passes over the same code: a counting pass that
 * checks every tensor's name, shape and type and adds up the bytes the
 * converted weights need, then (within the memory limit) one allocation and
 * a filling pass that converts. Matrices already in the engine's native
 * form (I8 plus an F32 "<name>.scale" per row) are used in place from the
 * mapped file; any other type is dequantised and re-quantised per row with
 * the engine's own rule (lmc_quantize_row).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define DEFAULT_BLOCK_SIZE (1u << 20)
#define DEFAULT_MAX_CONTEXT_WINDOW 1024u
#define ARENA_ALIGNMENT 64

typedef struct {
    const lmc_gguf *gguf;
    const lmc_gguf *base_gguf; /* an overlay's base: tensors the overlay lacks */
    const char *arch;
    lmc_message *message;
    uint8_t *base;       /* NULL during the counting pass */
    size_t used;         /* bytes reserved so far */
    uint64_t extra;      /* bytes allocated elsewhere (row sums, scratch) */
    uint8_t *consumed;   /* per tensor: used by the model */
    float *row_scratch;  /* one dequantised row (filling pass) */
} loader;

static int filling(const loader *l) { return l->base != NULL; }

static void *reserve(loader *l, uint64_t bytes) {
    size_t offset = (l->used + ARENA_ALIGNMENT - 1) / ARENA_ALIGNMENT * ARENA_ALIGNMENT;
    l->used = offset + (size_t)bytes;
    return l->base ? l->base + offset : NULL;
}

/* Only the model's own file is checked for unused tensors: an overlay's
 * base keeps the tensors the overlay replaces. */
static void mark_consumed(loader *l, const lmc_gguf_tensor *t) {
    if (lmc_gguf_tensor_find(l->gguf, t->name) == t)
        l->consumed[t - lmc_gguf_tensor_at(l->gguf, 0)] = 1;
}

static const lmc_gguf_tensor *lookup(const loader *l, const char *name) {
    const lmc_gguf_tensor *t = lmc_gguf_tensor_find(l->gguf, name);
    return t || !l->base_gguf ? t : lmc_gguf_tensor_find(l->base_gguf, name);
}

/* ---------------------------------------------------------------- metadata */

static lmc_status arch_u32(loader *l, const char *suffix, int required, uint32_t fallback, uint32_t *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", l->arch, suffix);
    if (lmc_gguf_get_u32(l->gguf, key, out) == 0) return LMC_OK;
    if (lmc_gguf_find(l->gguf, key) >= 0)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: key %s is not an unsigned 32-bit value", key);
    if (required) return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: missing key %s", key);
    *out = fallback;
    return LMC_OK;
}

static lmc_status arch_f32(loader *l, const char *suffix, float fallback, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", l->arch, suffix);
    if (lmc_gguf_get_f32(l->gguf, key, out) == 0) return LMC_OK;
    if (lmc_gguf_find(l->gguf, key) >= 0)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: key %s is not a float", key);
    *out = fallback;
    return LMC_OK;
}

static int fits_int(uint32_t v) { return v > 0 && v <= INT_MAX / 4; }

/* Hyper-parameters (llama.cpp's keys). The head size is key_length when
 * given (models whose heads do not divide the width), else dim / heads. */
static lmc_status read_hparams(loader *l, lmc_llama *m) {
    uint32_t dim, hidden, layers, heads, kv_heads, context, head_dim, value_dim, rope_dims;
    lmc_status status = arch_u32(l, "embedding_length", 1, 0, &dim);
    if (status == LMC_OK) status = arch_u32(l, "feed_forward_length", 1, 0, &hidden);
    if (status == LMC_OK) status = arch_u32(l, "block_count", 1, 0, &layers);
    if (status == LMC_OK) status = arch_u32(l, "attention.head_count", 1, 0, &heads);
    if (status == LMC_OK) status = arch_u32(l, "attention.head_count_kv", 0, heads, &kv_heads);
    if (status == LMC_OK) status = arch_u32(l, "context_length", 1, 0, &context);
    if (status != LMC_OK) return status;
    if (!fits_int(dim) || !fits_int(hidden) || !fits_int(layers) || !fits_int(heads) || !fits_int(kv_heads) ||
        !fits_int(context) || heads % kv_heads != 0)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID,
                        "model: inconsistent sizes (embedding %u, feed-forward %u, %u layers, %u heads, %u kv heads, "
                        "context %u)", dim, hidden, layers, heads, kv_heads, context);
    char key_length[128];
    snprintf(key_length, sizeof key_length, "%s.attention.key_length", l->arch);
    if (lmc_gguf_find(l->gguf, key_length) < 0 && dim % heads)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: %u heads do not divide the width %u", heads, dim);
    status = arch_u32(l, "attention.key_length", 0, dim / heads, &head_dim);
    if (status == LMC_OK) status = arch_u32(l, "attention.value_length", 0, head_dim, &value_dim);
    if (status == LMC_OK) status = arch_u32(l, "rope.dimension_count", 0, head_dim, &rope_dims);
    if (status == LMC_OK) status = arch_f32(l, "rope.freq_base", 10000.0f, &m->rope_base);
    if (status == LMC_OK) status = arch_f32(l, "attention.layer_norm_rms_epsilon", 1e-5f, &m->norm_eps);
    if (status != LMC_OK) return status;
    if (head_dim == 0 || head_dim % 2 || (uint64_t)head_dim * heads > INT_MAX / 4 || value_dim != head_dim)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: unsupported head size %u (values %u)", head_dim,
                        value_dim);
    if (rope_dims != head_dim)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID,
                        "model: partial rotary embeddings (%u of %u dimensions) are not supported", rope_dims, head_dim);
    if (!(m->rope_base > 0.0f) || !(m->norm_eps > 0.0f))
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: rope base and norm epsilon must be positive");
    m->dim = (int)dim;
    m->hidden_dim = (int)hidden;
    m->n_layers = (int)layers;
    m->n_heads = (int)heads;
    m->n_kv_heads = (int)kv_heads;
    m->head_dim = (int)head_dim;
    m->context_length = (int)context;
    return LMC_OK;
}

/* Rope scaling changes every frequency; the engine has plain RoPE only. */
static lmc_status check_rope_scaling(loader *l) {
    char key[128];
    lmc_gguf_string type;
    snprintf(key, sizeof key, "%s.rope.scaling.type", l->arch);
    if (lmc_gguf_get_str(l->gguf, key, &type) == 0 && !(type.size == 4 && memcmp(type.data, "none", 4) == 0))
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: rope scaling '%.*s' is not supported",
                        (int)LMC_MIN(type.size, 32), type.data);
    static const char *const scaling_tensors[] = {"rope_freqs.weight", "rope_factors_long.weight",
                                                  "rope_factors_short.weight"};
    for (size_t i = 0; i < sizeof scaling_tensors / sizeof scaling_tensors[0]; i++)
        if (lmc_gguf_tensor_find(l->gguf, scaling_tensors[i]))
            return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: rope scaling (tensor %s) is not supported",
                            scaling_tensors[i]);
    return LMC_OK;
}

/* ---------------------------------------------------------------- tensors */

/* A tensor of shape [rows][cols] (ggml ne = {cols, rows}; rows 0: a vector). */
static lmc_status find_tensor(loader *l, const char *name, uint64_t cols, uint64_t rows, int required,
                              const lmc_gguf_tensor **out) {
    const lmc_gguf_tensor *t = lookup(l, name);
    *out = NULL;
    if (!t) return required ? lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: missing tensor %s", name) : LMC_OK;
    uint64_t want_rows = rows ? rows : 1;
    if (t->ne[0] != cols || t->ne[1] != want_rows || t->ne[2] != 1 || t->ne[3] != 1)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID,
                        "model: tensor %s has shape [%llu, %llu, %llu, %llu], expected [%llu, %llu]", name,
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                        (unsigned long long)t->ne[3], (unsigned long long)cols, (unsigned long long)want_rows);
    /* Rejects types that cannot be dequantised before anything is allocated. */
    lmc_status status = lmc_tensor_rows_to_f32(t, 0, 0, NULL, l->message);
    if (status != LMC_OK) return status;
    mark_consumed(l, t);
    *out = t;
    return LMC_OK;
}

static lmc_status layer_tensor(loader *l, int layer, const char *suffix, uint64_t cols, uint64_t rows, int required,
                               const lmc_gguf_tensor **out) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", layer, suffix);
    return find_tensor(l, name, cols, rows, required, out);
}

/* The per-row scales of a matrix in the native form (I8 + "<name>.scale"),
 * or NULL if the matrix is in another form. */
static lmc_status native_scales(loader *l, const lmc_gguf_tensor *t, const lmc_gguf_tensor **scales) {
    char name[160];
    *scales = NULL;
    if (t->type != LMC_GGML_I8) return LMC_OK;
    snprintf(name, sizeof name, "%s.scale", t->name);
    const lmc_gguf_tensor *s = lookup(l, name);
    if (!s) return LMC_OK;
    if (s->type != LMC_GGML_F32 || s->ne[0] != t->ne[1] || s->n_elements != t->ne[1])
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: tensor %s must be F32 with one value per row of %s",
                        name, t->name);
    mark_consumed(l, s);
    *scales = s;
    return LMC_OK;
}

/* Float values of rows of a matrix, honouring the native form (q * scale). */
static lmc_status matrix_rows_to_f32(loader *l, const lmc_gguf_tensor *t, const lmc_gguf_tensor *scales,
                                     uint64_t first_row, uint64_t n_rows, float *out) {
    lmc_status status = lmc_tensor_rows_to_f32(t, first_row, n_rows, out, l->message);
    if (status != LMC_OK || !scales) return status;
    float *scale = malloc((size_t)n_rows * sizeof *scale);
    if (!scale) return lmc_fail(l->message, LMC_ERR_NOMEM, "model: out of memory");
    const uint8_t *bytes = (const uint8_t *)scales->data + first_row * 4;
    for (uint64_t r = 0; r < n_rows; r++) {
        uint32_t bits = lmc_get_le32(bytes + 4 * r);
        memcpy(&scale[r], &bits, sizeof bits);
    }
    for (uint64_t r = 0; r < n_rows; r++)
        for (uint64_t c = 0; c < t->ne[0]; c++) out[r * t->ne[0] + c] *= scale[r];
    free(scale);
    return LMC_OK;
}

static int float_aligned(const void *p) { return ((uintptr_t)p % _Alignof(float)) == 0; }

/* The longest matrix row: the scratch one dequantised row needs. */
static uint64_t max_row_length(const lmc_llama *m) {
    uint64_t q_width = (uint64_t)m->n_heads * (uint64_t)m->head_dim;
    return LMC_MAX(LMC_MAX((uint64_t)m->dim, (uint64_t)m->hidden_dim), q_width);
}

/* Whether native int8 weights keep to [-127, 127] (docs/FORMAT.md): the
 * kernels' bounds, and the sign trick of the AVX2 two-plane kernel, assume
 * it, so a -128 would make SIMD levels disagree. */
static int native_weights_in_range(const int8_t *q, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (q[i] == INT8_MIN) return 0;
    return 1;
}

/* Rows [first_row, first_row + rows) of a matrix tensor as an engine matrix. */
static lmc_status load_matrix(loader *l, const lmc_gguf_tensor *t, uint64_t first_row, uint64_t rows, lmc_qmat *out) {
    const lmc_gguf_tensor *scales;
    lmc_status status = native_scales(l, t, &scales);
    if (status != LMC_OK) return status;
    uint64_t cols = t->ne[0];
    out->rows = (int)rows;
    out->cols = (int)cols;
    out->row_sum = NULL;
    l->extra += rows * sizeof(int32_t);
    if (scales) {
        out->q = (const int8_t *)t->data + first_row * cols;
        if (!filling(l) && !native_weights_in_range(out->q, rows * cols))
            return lmc_fail(l->message, LMC_ERR_MODEL_INVALID,
                            "model: tensor %s holds -128; native int8 weights must be in [-127, 127]", t->name);
        const uint8_t *in_file = (const uint8_t *)scales->data + first_row * sizeof(float);
        if (float_aligned(in_file)) {
            out->scale = (const float *)(const void *)in_file;
            return LMC_OK;
        }
        float *copy = reserve(l, rows * sizeof(float));
        if (filling(l)) memcpy(copy, in_file, (size_t)rows * sizeof(float));
        out->scale = copy;
        return LMC_OK;
    }
    int8_t *q = reserve(l, rows * cols);
    float *scale = reserve(l, rows * sizeof(float));
    out->q = q;
    out->scale = scale;
    if (!filling(l)) return LMC_OK;
    for (uint64_t r = 0; r < rows && status == LMC_OK; r++) {
        status = lmc_tensor_rows_to_f32(t, first_row + r, 1, l->row_scratch, l->message);
        scale[r] = lmc_quantize_row(l->row_scratch, (int)cols, q + r * cols);
    }
    return status;
}

/* A float vector (norm weights, biases); NULL when optional and absent. */
static lmc_status load_vector(loader *l, const char *name, uint64_t n, int required, const float **out) {
    const lmc_gguf_tensor *t;
    lmc_status status = find_tensor(l, name, n, 0, required, &t);
    *out = NULL;
    if (status != LMC_OK || !t) return status;
    float *values = reserve(l, n * sizeof(float));
    *out = values;
    return filling(l) ? lmc_tensor_to_f32(t, values, l->message) : LMC_OK;
}

static lmc_status load_layer_vector(loader *l, int layer, const char *suffix, uint64_t n, int required,
                                    const float **out) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", layer, suffix);
    return load_vector(l, name, n, required, out);
}

/* Q, K and V: separate tensors, or phi3's fused attn_qkv (Q rows, then K,
 * then V). */
static lmc_status load_attention(loader *l, const lmc_llama *m, int i, lmc_llama_layer *layer) {
    uint64_t dim = (uint64_t)m->dim, q_rows = (uint64_t)m->n_heads * m->head_dim;
    uint64_t kv_rows = (uint64_t)m->n_kv_heads * m->head_dim;
    const lmc_gguf_tensor *qkv, *wq, *wk, *wv, *wo;
    lmc_status status = layer_tensor(l, i, "attn_qkv.weight", dim, q_rows + 2 * kv_rows, 0, &qkv);
    if (status == LMC_OK && qkv) {
        status = load_matrix(l, qkv, 0, q_rows, &layer->wq);
        if (status == LMC_OK) status = load_matrix(l, qkv, q_rows, kv_rows, &layer->wk);
        if (status == LMC_OK) status = load_matrix(l, qkv, q_rows + kv_rows, kv_rows, &layer->wv);
    } else if (status == LMC_OK) {
        status = layer_tensor(l, i, "attn_q.weight", dim, q_rows, 1, &wq);
        if (status == LMC_OK) status = layer_tensor(l, i, "attn_k.weight", dim, kv_rows, 1, &wk);
        if (status == LMC_OK) status = layer_tensor(l, i, "attn_v.weight", dim, kv_rows, 1, &wv);
        if (status == LMC_OK) status = load_matrix(l, wq, 0, q_rows, &layer->wq);
        if (status == LMC_OK) status = load_matrix(l, wk, 0, kv_rows, &layer->wk);
        if (status == LMC_OK) status = load_matrix(l, wv, 0, kv_rows, &layer->wv);
    }
    if (status == LMC_OK) status = layer_tensor(l, i, "attn_output.weight", q_rows, dim, 1, &wo);
    if (status == LMC_OK) status = load_matrix(l, wo, 0, dim, &layer->wo);
    /* qwen2 always has Q/K/V biases; other Llama-family files may. */
    int biases_required = strcmp(l->arch, "qwen2") == 0;
    if (status == LMC_OK) status = load_layer_vector(l, i, "attn_q.bias", q_rows, biases_required, &layer->bq);
    if (status == LMC_OK) status = load_layer_vector(l, i, "attn_k.bias", kv_rows, biases_required, &layer->bk);
    if (status == LMC_OK) status = load_layer_vector(l, i, "attn_v.bias", kv_rows, biases_required, &layer->bv);
    return status;
}

/* Gate and up: separate tensors, or phi3's fused ffn_up (gate rows first,
 * then up: llama.cpp applies SiLU to the first half). */
static lmc_status load_feed_forward(loader *l, const lmc_llama *m, int i, lmc_llama_layer *layer) {
    uint64_t dim = (uint64_t)m->dim, hidden = (uint64_t)m->hidden_dim;
    const lmc_gguf_tensor *gate, *up, *down;
    lmc_status status = layer_tensor(l, i, "ffn_gate.weight", dim, hidden, 0, &gate);
    if (status == LMC_OK && gate) {
        status = layer_tensor(l, i, "ffn_up.weight", dim, hidden, 1, &up);
        if (status == LMC_OK) status = load_matrix(l, gate, 0, hidden, &layer->w_gate);
        if (status == LMC_OK) status = load_matrix(l, up, 0, hidden, &layer->w_up);
    } else if (status == LMC_OK) {
        status = layer_tensor(l, i, "ffn_up.weight", dim, 2 * hidden, 1, &up);
        if (status == LMC_OK) status = load_matrix(l, up, 0, hidden, &layer->w_gate);
        if (status == LMC_OK) status = load_matrix(l, up, hidden, hidden, &layer->w_up);
    }
    if (status == LMC_OK) status = layer_tensor(l, i, "ffn_down.weight", hidden, dim, 1, &down);
    if (status == LMC_OK) status = load_matrix(l, down, 0, dim, &layer->w_down);
    return status;
}

static lmc_status load_layer(loader *l, const lmc_llama *m, int i, lmc_llama_layer *layer) {
    memset(layer, 0, sizeof *layer);
    lmc_status status = load_layer_vector(l, i, "attn_norm.weight", (uint64_t)m->dim, 1, &layer->attn_norm);
    if (status == LMC_OK) status = load_layer_vector(l, i, "ffn_norm.weight", (uint64_t)m->dim, 1, &layer->ffn_norm);
    if (status == LMC_OK) status = load_attention(l, m, i, layer);
    if (status == LMC_OK) status = load_feed_forward(l, m, i, layer);
    return status;
}

/* The token embedding as floats: in place when the file holds aligned F32. */
static lmc_status load_embedding(loader *l, lmc_llama *m, const lmc_gguf_tensor **out) {
    const lmc_gguf_tensor *t = lookup(l, "token_embd.weight");
    if (!t) return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: missing tensor token_embd.weight");
    if (t->ne[1] == 0 || t->ne[1] > INT_MAX / 4)
        return lmc_fail(l->message, LMC_ERR_MODEL_INVALID, "model: vocabulary of %llu tokens is not supported",
                        (unsigned long long)t->ne[1]);
    m->vocab = (int)t->ne[1];
    lmc_status status = find_tensor(l, "token_embd.weight", (uint64_t)m->dim, (uint64_t)m->vocab, 1, &t);
    const lmc_gguf_tensor *scales = NULL;
    if (status == LMC_OK) status = native_scales(l, t, &scales);
    if (status != LMC_OK) return status;
    *out = t;
    if (t->type == LMC_GGML_F32 && float_aligned(t->data)) {
        m->tok_embd = t->data;
        return LMC_OK;
    }
    float *values = reserve(l, t->n_elements * sizeof(float));
    m->tok_embd = values;
    return filling(l) ? matrix_rows_to_f32(l, t, scales, 0, (uint64_t)m->vocab, values) : LMC_OK;
}

/* Everything after the hyper-parameters; the same code counts and fills. */
static lmc_status build_weights(loader *l, lmc_llama *m) {
    const lmc_gguf_tensor *embedding = NULL, *output = NULL;
    l->used = 0;
    l->extra = max_row_length(m) * sizeof(float); /* row scratch */
    memset(l->consumed, 0, (size_t)LMC_MAX(lmc_gguf_n_tensors(l->gguf), 1));
    lmc_status status = load_embedding(l, m, &embedding);
    if (status != LMC_OK) return status;
    m->layers = reserve(l, (uint64_t)m->n_layers * sizeof *m->layers);
    /* Zeroed so that a failure part way leaves nothing to release by mistake. */
    if (filling(l)) memset(m->layers, 0, (size_t)m->n_layers * sizeof *m->layers);
    lmc_llama_layer counting_layer;
    for (int i = 0; i < m->n_layers && status == LMC_OK; i++)
        status = load_layer(l, m, i, filling(l) ? &m->layers[i] : &counting_layer);
    if (status == LMC_OK) status = load_vector(l, "output_norm.weight", (uint64_t)m->dim, 1, &m->out_norm);
    if (status == LMC_OK)
        status = find_tensor(l, "output.weight", (uint64_t)m->dim, (uint64_t)m->vocab, 0, &output);
    /* No output matrix: the classifier is tied to the embedding. */
    if (status == LMC_OK) status = load_matrix(l, output ? output : embedding, 0, (uint64_t)m->vocab, &m->output);
    for (int i = 0; i < lmc_gguf_n_tensors(l->gguf) && status == LMC_OK; i++)
        if (!l->consumed[i])
            status = lmc_fail(l->message, LMC_ERR_MODEL_INVALID,
                              "model: tensor %s is not used by the %s architecture as lmc runs it",
                              lmc_gguf_tensor_at(l->gguf, i)->name, l->arch);
    return status;
}

static lmc_qmat *layer_matrix(lmc_llama_layer *layer, int which) {
    lmc_qmat *matrices[] = {&layer->wq, &layer->wk, &layer->wv, &layer->wo,
                            &layer->w_gate, &layer->w_up, &layer->w_down};
    return matrices[which];
}

#define MATRICES_PER_LAYER 7

static lmc_status prepare_matrices(lmc_llama *m, lmc_message *message) {
    lmc_status status = lmc_qmat_prepare(&m->output);
    for (int i = 0; i < m->n_layers && status == LMC_OK; i++)
        for (int j = 0; j < MATRICES_PER_LAYER && status == LMC_OK; j++)
            status = lmc_qmat_prepare(layer_matrix(&m->layers[i], j));
    return status == LMC_OK ? LMC_OK : lmc_fail(message, status, "model: cannot prepare the weight matrices");
}

static void release_matrices(lmc_llama *m) {
    if (!m->layers) return;
    lmc_qmat_release(&m->output);
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < MATRICES_PER_LAYER; j++) lmc_qmat_release(layer_matrix(&m->layers[i], j));
}

static int known_architecture(const char *arch, int *rope_neox) {
    static const struct {
        const char *name;
        int rope_neox;
    } table[] = {{"llama", 0}, {"qwen2", 1}, {"phi3", 1}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(arch, table[i].name) == 0) {
            *rope_neox = table[i].rope_neox;
            return 1;
        }
    return 0;
}

static lmc_status load_llama(lmc_model *model, uint64_t memlimit, lmc_message *message) {
    loader l = {model->gguf, model->base_gguf, model->architecture, message, NULL, 0, 0, NULL, NULL};
    lmc_llama *m = &model->llama;
    if (!known_architecture(model->architecture, &m->rope_neox))
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "model: architecture '%s' is not supported",
                        model->architecture);
    lmc_status status = read_hparams(&l, m);
    if (status == LMC_OK) status = check_rope_scaling(&l);
    if (status != LMC_OK) return status;
    l.consumed = malloc((size_t)LMC_MAX(lmc_gguf_n_tensors(l.gguf), 1));
    if (!l.consumed) return lmc_fail(message, LMC_ERR_NOMEM, "model: out of memory");
    status = build_weights(&l, m);
    uint64_t needed = (uint64_t)l.used + l.extra;
    if (status == LMC_OK && memlimit && needed > memlimit)
        status = lmc_fail(message, LMC_ERR_MEMLIMIT,
                          "model: the converted weights need %.1f MiB, over the memory limit of %.1f MiB",
                          (double)needed / (1 << 20), (double)memlimit / (1 << 20));
    if (status == LMC_OK) {
        size_t size = (l.used + ARENA_ALIGNMENT) / ARENA_ALIGNMENT * ARENA_ALIGNMENT;
        l.base = aligned_alloc(ARENA_ALIGNMENT, size);
        l.row_scratch = malloc((size_t)max_row_length(m) * sizeof(float));
        if (!l.base || !l.row_scratch) status = lmc_fail(message, LMC_ERR_NOMEM, "model: out of memory");
        model->owned = l.base;
    }
    if (status == LMC_OK) status = build_weights(&l, m);
    if (status == LMC_OK) status = prepare_matrices(m, message);
    free(l.row_scratch);
    free(l.consumed);
    return status;
}

/* ---------------------------------------------------------------- settings */

/* Copies a string of known length into a fixed array, truncating at a
 * UTF-8 character boundary. */
static void copy_string(char *out, size_t capacity, const char *data, uint64_t size) {
    size_t length = (size_t)LMC_MIN(size, (uint64_t)capacity - 1);
    if (length < size)
        while (length > 0 && ((unsigned char)data[length] & 0xc0) == 0x80) length--;
    memcpy(out, data, length);
    out[length] = '\0';
}

static void model_name(lmc_model *model, const char *path) {
    lmc_gguf_string name;
    if (lmc_gguf_get_str(model->gguf, "general.name", &name) == 0 && name.size > 0) {
        copy_string(model->name, sizeof model->name, name.data, name.size);
        return;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t length = strlen(base);
    if (length > 5 && strcmp(base + length - 5, ".gguf") == 0) length -= 5;
    copy_string(model->name, sizeof model->name, base, length);
}

static lmc_status read_kind(lmc_model *model, lmc_message *message) {
    lmc_gguf_string kind;
    model->kind = LMC_KIND_AUTO;
    if (lmc_gguf_get_str(model->gguf, "lmc.default_kind", &kind) == 0) {
        char text[16];
        copy_string(text, sizeof text, kind.data, kind.size);
        if (kind.size >= sizeof text || lmc_kind_parse(text, &model->kind) != LMC_OK)
            return lmc_fail(message, LMC_ERR_MODEL_INVALID, "model: unknown lmc.default_kind '%s'", text);
    }
    return LMC_OK;
}

static lmc_status read_settings(lmc_model *model, lmc_message *message) {
    const lmc_gguf *g = model->gguf;
    lmc_status status = read_kind(model, message);
    if (status != LMC_OK) return status;
    uint32_t context = (uint32_t)model->llama.context_length;
    model->default_block_size = DEFAULT_BLOCK_SIZE;
    model->context_window = LMC_MIN(context, DEFAULT_MAX_CONTEXT_WINDOW);
    static const char *const keys[] = {"lmc.block_size", "lmc.context_window", "lmc.window_stride"};
    uint32_t *fields[] = {&model->default_block_size, &model->context_window, &model->window_stride};
    for (int i = 0; i < 3; i++)
        if (lmc_gguf_find(g, keys[i]) >= 0 && lmc_gguf_get_u32(g, keys[i], fields[i]) != 0)
            return lmc_fail(message, LMC_ERR_MODEL_INVALID, "model: %s is not an unsigned 32-bit value", keys[i]);
    if (lmc_gguf_find(g, "lmc.window_stride") < 0) model->window_stride = LMC_MAX(model->context_window / 2, 1);
    if (model->default_block_size == 0 || model->context_window < 2 || model->context_window > context ||
        model->window_stride == 0 || model->window_stride > model->context_window)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID,
                        "model: inconsistent settings (block size %u, context window %u of %u, stride %u)",
                        model->default_block_size, model->context_window, context, model->window_stride);
    return LMC_OK;
}

/* lmc's own sample models; everything else is run as a Llama-family model
 * (load_llama refuses architectures it does not know). */
static lmc_model_family model_family(const char *architecture) {
    if (strcmp(architecture, "lmc-image") == 0) return LMC_FAMILY_IMAGE;
    if (strcmp(architecture, "lmc-audio") == 0) return LMC_FAMILY_AUDIO;
    return LMC_FAMILY_LLAMA;
}

/* ---------------------------------------------------------------- entry points */

static lmc_status open_model(const char *path, const char *base_path, uint64_t memlimit, lmc_model **out,
                             lmc_message *message) {
    *out = NULL;
    if (strlen(path) >= sizeof((lmc_model *)0)->path)
        return lmc_fail(message, LMC_ERR_PARAM, "model path is too long");
    lmc_model *model = calloc(1, sizeof *model);
    if (!model) return lmc_fail(message, LMC_ERR_NOMEM, "model: out of memory");
    *out = model;
    strcpy(model->path, path);
    lmc_status status = lmc_gguf_open(path, &model->gguf, message);
    if (status == LMC_OK && base_path) status = lmc_gguf_open(base_path, &model->base_gguf, message);
    if (status != LMC_OK) return status;
    size_t size;
    const uint8_t *bytes = lmc_gguf_bytes(model->gguf, &size);
    model->file_size = size;
    lmc_hash128(bytes, size, model->hash);
    model_name(model, path);
    lmc_gguf_string arch;
    if (lmc_gguf_get_str(model->gguf, "general.architecture", &arch) != 0)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "model: missing key general.architecture");
    copy_string(model->architecture, sizeof model->architecture, arch.data, arch.size);
    if (arch.size >= sizeof model->architecture || memchr(arch.data, 0, (size_t)arch.size))
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "model: architecture '%s...' is not supported",
                        model->architecture);
    model->family = model_family(model->architecture);
    if (model->family != LMC_FAMILY_LLAMA) return read_kind(model, message);
    status = load_llama(model, memlimit, message);
    if (status == LMC_OK) status = read_settings(model, message);
    return status;
}

lmc_status lmc_model_load_weights(const char *path, uint64_t memlimit, lmc_model **out, lmc_message *message) {
    lmc_status status = open_model(path, NULL, memlimit, out, message);
    if (status != LMC_OK) {
        lmc_model_free(*out);
        *out = NULL;
    }
    return status;
}

static lmc_status load_with_tokenizer(const char *path, const char *base_path, uint64_t memlimit, lmc_model **out,
                                      lmc_message *message) {
    lmc_status status = open_model(path, base_path, memlimit, out, message);
    lmc_model *model = *out;
    int tokens = status == LMC_OK && model->family == LMC_FAMILY_LLAMA;
    if (tokens) status = lmc_tokenizer_from_gguf(model->gguf, &model->tokenizer, message);
    if (tokens && status == LMC_OK && lmc_tokenizer_vocab_size(model->tokenizer) > model->llama.vocab)
        status = lmc_fail(message, LMC_ERR_MODEL_INVALID, "model: the tokenizer has %d tokens, the model only %d",
                          lmc_tokenizer_vocab_size(model->tokenizer), model->llama.vocab);
    if (status != LMC_OK) {
        lmc_model_free(model);
        *out = NULL;
    }
    return status;
}

lmc_status lmc_model_load(const char *path, uint64_t memlimit, lmc_model **out, lmc_message *message) {
    return load_with_tokenizer(path, NULL, memlimit, out, message);
}

lmc_status lmc_model_load_overlay(const char *path, const char *base_path, uint64_t memlimit, lmc_model **out,
                                  lmc_message *message) {
    return load_with_tokenizer(path, base_path, memlimit, out, message);
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int lmc_model_base_of(const char *path, char *name, size_t name_size, uint8_t hash[16], lmc_message *message) {
    lmc_gguf *g;
    if (lmc_gguf_open(path, &g, message) != LMC_OK) return -1;
    lmc_gguf_string text;
    int result = 0;
    if (lmc_gguf_get_str(g, "lmc.base_model_hash", &text) == 0) {
        result = text.size == 32 ? 1 : -1;
        for (int i = 0; i < 16 && result == 1; i++) {
            int high = hex_digit(text.data[2 * i]), low = hex_digit(text.data[2 * i + 1]);
            if (high < 0 || low < 0) result = -1;
            else hash[i] = (uint8_t)(high << 4 | low);
        }
        if (result < 0) lmc_fail(message, LMC_ERR_MODEL_INVALID, "model: lmc.base_model_hash is not 32 hex digits");
        name[0] = '\0';
        if (result == 1 && lmc_gguf_get_str(g, "lmc.base_model", &text) == 0)
            copy_string(name, name_size, text.data, text.size);
    }
    lmc_gguf_close(g);
    return result;
}

void lmc_model_free(lmc_model *model) {
    if (!model) return;
    release_matrices(&model->llama);
    if (model->tokenizer) lmc_tokenizer_free(model->tokenizer);
    free(model->owned);
    lmc_gguf_close(model->gguf);
    lmc_gguf_close(model->base_gguf);
    free(model);
}
