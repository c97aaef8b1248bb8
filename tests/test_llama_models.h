/*
 * Random Llama models for the engine's tests (test_nn, test_cuda): int8
 * matrices with per-row scales, norms near 1, optional qwen2 biases and
 * neox rotation, from a seeded generator of their own.
 */
#ifndef LMC_TEST_LLAMA_MODELS_H
#define LMC_TEST_LLAMA_MODELS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

static uint64_t model_rng_state;

/* splitmix64 */
static inline uint64_t model_rng_next(void) {
    uint64_t z = (model_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float model_rng_float(void) {
    return (float)((double)(model_rng_next() >> 11) * 0x1p-52 - 1.0);
}

static inline void *model_malloc(size_t size) {
    void *p = malloc(size ? size : 1);
    assert_non_null(p);
    return p;
}

/* ---- Random int8 matrices ---- */

typedef struct {
    lmc_qmat m;
    int8_t *q;
    float *scale;
} test_qmat;

/* Weights with float magnitude about 1/sqrt(cols), so activations stay O(1). */
static inline void test_qmat_init(test_qmat *t, int rows, int cols) {
    t->q = model_malloc((size_t)rows * (size_t)cols);
    t->scale = model_malloc((size_t)rows * sizeof(float));
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        t->q[i] = (int8_t)((int)(model_rng_next() % 255) - 127);
    for (int o = 0; o < rows; o++)
        t->scale[o] = (1.5f + 0.5f * model_rng_float()) / (127.0f * sqrtf((float)cols));
    t->m = (lmc_qmat){.q = t->q, .scale = t->scale, .rows = rows, .cols = cols};
    assert_int_equal(lmc_qmat_prepare(&t->m), LMC_OK);
}

static inline void test_qmat_free(test_qmat *t) {
    lmc_qmat_release(&t->m);
    free(t->q);
    free(t->scale);
}

/* ---- Random Llama models ---- */

typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, neox, biases;
} model_config;

typedef struct {
    lmc_llama llama;
    lmc_llama_layer *layers;
    test_qmat *mats; /* 7 per layer, then the output */
    float **floats;  /* every float buffer, to free */
    int n_floats;
} test_model;

static inline float *model_floats(test_model *tm, size_t n, float center, float spread) {
    float *p = model_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = center + spread * model_rng_float();
    tm->floats[tm->n_floats++] = p;
    return p;
}

static inline void test_model_init(test_model *tm, const model_config *cfg, uint64_t seed) {
    model_rng_state = seed;
    memset(tm, 0, sizeof *tm);
    const int hd = cfg->dim / cfg->heads, q_dim = cfg->heads * hd, kv_dim = cfg->kv_heads * hd;
    tm->layers = calloc((size_t)cfg->layers, sizeof *tm->layers);
    tm->mats = calloc((size_t)cfg->layers * 7 + 1, sizeof *tm->mats);
    tm->floats = calloc((size_t)cfg->layers * 5 + 2, sizeof *tm->floats);
    assert_non_null(tm->layers);
    assert_non_null(tm->mats);
    assert_non_null(tm->floats);
    lmc_llama *m = &tm->llama;
    *m = (lmc_llama){.dim = cfg->dim, .hidden_dim = cfg->hidden, .n_layers = cfg->layers,
                     .n_heads = cfg->heads, .n_kv_heads = cfg->kv_heads, .head_dim = hd,
                     .vocab = cfg->vocab, .context_length = 512, .rope_base = 10000.0f,
                     .rope_neox = cfg->neox, .norm_eps = 1e-5f, .layers = tm->layers};
    m->tok_embd = model_floats(tm, (size_t)cfg->vocab * (size_t)cfg->dim, 0.0f, 1.0f);
    for (int i = 0; i < cfg->layers; i++) {
        lmc_llama_layer *l = &tm->layers[i];
        test_qmat *w = &tm->mats[i * 7];
        test_qmat_init(&w[0], q_dim, cfg->dim);
        test_qmat_init(&w[1], kv_dim, cfg->dim);
        test_qmat_init(&w[2], kv_dim, cfg->dim);
        test_qmat_init(&w[3], cfg->dim, q_dim);
        test_qmat_init(&w[4], cfg->hidden, cfg->dim);
        test_qmat_init(&w[5], cfg->hidden, cfg->dim);
        test_qmat_init(&w[6], cfg->dim, cfg->hidden);
        l->wq = w[0].m, l->wk = w[1].m, l->wv = w[2].m, l->wo = w[3].m;
        l->w_gate = w[4].m, l->w_up = w[5].m, l->w_down = w[6].m;
        l->attn_norm = model_floats(tm, (size_t)cfg->dim, 1.0f, 0.2f);
        l->ffn_norm = model_floats(tm, (size_t)cfg->dim, 1.0f, 0.2f);
        if (cfg->biases) {
            l->bq = model_floats(tm, (size_t)q_dim, 0.0f, 0.3f);
            l->bk = model_floats(tm, (size_t)kv_dim, 0.0f, 0.3f);
            l->bv = model_floats(tm, (size_t)kv_dim, 0.0f, 0.3f);
        }
    }
    m->out_norm = model_floats(tm, (size_t)cfg->dim, 1.0f, 0.2f);
    test_qmat_init(&tm->mats[cfg->layers * 7], cfg->vocab, cfg->dim);
    m->output = tm->mats[cfg->layers * 7].m;
}

static inline void test_model_free(test_model *tm) {
    for (int i = 0; i < tm->llama.n_layers * 7 + 1; i++)
        test_qmat_free(&tm->mats[i]);
    for (int i = 0; i < tm->n_floats; i++)
        free(tm->floats[i]);
    free(tm->mats);
    free(tm->floats);
    free(tm->layers);
}

#endif /* LMC_TEST_LLAMA_MODELS_H */
