/*
 * lmc_bench_nn: tokens per second of the int8 Llama engine on a random
 * byte-level model, in the two shapes the coder uses:
 *   batched   one sequence, --rows positions per call (compression)
 *   lockstep  --seqs sequences, one position of each per call (decompression)
 *   matmul    lmc_matmul_q8 alone: a [hidden][dim] matrix times --rows rows
 *   pool      one lmc_pool_for of 8 x 1 us of work, against the same work serially
 *   attention the attention of one decoding step alone (scores, softmax and
 *             weighted values of each kv head's query heads, as llama.c's
 *             attend, or attend8 under --numerics 3), for every position <
 *             --ctx of --seqs sequences over --layers x --kv-heads caches
 *             each: microseconds per token
 *   cdf       lmc_cdf_from_logits over --vocab logits: microseconds per CDF
 * Each run fills the whole context (--ctx positions per sequence), so the
 * attention cost is the average over a window. --repeat N runs it N times
 * and reports the fastest run (the machine may be shared) and the median.
 *
 * usage: lmc_bench_nn [--mode batched|lockstep|matmul|pool|attention|cdf] [--rows N] [--seqs B] [--ctx N]
 *                     [--dim D] [--hidden F] [--layers L] [--heads H] [--kv-heads K]
 *                     [--vocab V] [--threads T] [--simd scalar|avx2|avx512] [--repeat N]
 *                     [--numerics 1|2|3]
 * --numerics picks the rules (nn.h): 1 int16 activations, 2 7-bit
 * activations, 3 (the default, what new archives use) 7-bit activations and
 * int8 attention.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coder/coder.h"
#include "nn/kernels.h"
#include "nn/nn.h"

typedef struct {
    const char *mode;
    int rows, seqs, ctx, dim, hidden, layers, heads, kv_heads, vocab, threads, repeat;
    int numerics;
    lmc_nn_rules rules;
    const char *simd;
} options;

static uint64_t rng_state = 1;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_float(void) {
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

/* The random model lives until the process exits. */
static void *bench_alloc(size_t size) {
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "lmc_bench_nn: out of memory\n");
        exit(1);
    }
    return p;
}

static float *random_floats(size_t n, float center, float spread) {
    float *p = bench_alloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = center + spread * rng_float();
    return p;
}

static lmc_qmat random_qmat(int rows, int cols) {
    int8_t *q = bench_alloc((size_t)rows * (size_t)cols);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        q[i] = (int8_t)((int)(rng_next() % 255) - 127);
    lmc_qmat m = {.q = q, .scale = random_floats((size_t)rows, 1.5f / (127.0f * sqrtf((float)cols)), 0.001f),
                  .rows = rows, .cols = cols};
    if (lmc_qmat_prepare(&m) != LMC_OK) {
        fprintf(stderr, "lmc_bench_nn: lmc_qmat_prepare failed\n");
        exit(1);
    }
    return m;
}

static lmc_llama random_model(const options *o) {
    const int hd = o->dim / o->heads;
    lmc_llama m = {.dim = o->dim, .hidden_dim = o->hidden, .n_layers = o->layers, .n_heads = o->heads,
                   .n_kv_heads = o->kv_heads, .head_dim = hd, .vocab = o->vocab, .context_length = o->ctx,
                   .rope_base = 10000.0f, .norm_eps = 1e-5f};
    m.tok_embd = random_floats((size_t)o->vocab * (size_t)o->dim, 0.0f, 1.0f);
    lmc_llama_layer *layers = bench_alloc((size_t)o->layers * sizeof *layers);
    for (int i = 0; i < o->layers; i++) {
        layers[i] = (lmc_llama_layer){
            .attn_norm = random_floats((size_t)o->dim, 1.0f, 0.1f),
            .wq = random_qmat(o->heads * hd, o->dim),
            .wk = random_qmat(o->kv_heads * hd, o->dim),
            .wv = random_qmat(o->kv_heads * hd, o->dim),
            .wo = random_qmat(o->dim, o->heads * hd),
            .ffn_norm = random_floats((size_t)o->dim, 1.0f, 0.1f),
            .w_gate = random_qmat(o->hidden, o->dim),
            .w_up = random_qmat(o->hidden, o->dim),
            .w_down = random_qmat(o->dim, o->hidden),
        };
    }
    m.layers = layers;
    m.out_norm = random_floats((size_t)o->dim, 1.0f, 0.1f);
    m.output = random_qmat(o->vocab, o->dim);
    return m;
}

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_seconds(void) {
    return clock_seconds(CLOCK_MONOTONIC);
}

/* CPU time of all threads: on a shared machine, tokens per CPU-second is
 * steadier than wall-clock speed. */
static double cpu_seconds(void) {
    return clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
}

static int parse_int(const char *name, const char *value) {
    char *end;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || *end || v <= 0 || v > 1 << 20) {
        fprintf(stderr, "lmc_bench_nn: %s needs a positive integer\n", name);
        exit(2);
    }
    return (int)v;
}

static options parse_options(int argc, char **argv) {
    options o = {.mode = "batched", .rows = 256, .seqs = 16, .ctx = 512, .dim = 256, .hidden = 688,
                 .layers = 6, .heads = 8, .kv_heads = 4, .vocab = 256, .threads = 1, .repeat = 1, .numerics = 3,
                 .simd = NULL};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--mode") && v) o.mode = v;
        else if (!strcmp(a, "--simd") && v) o.simd = v;
        else if (!strcmp(a, "--rows")) o.rows = parse_int(a, v);
        else if (!strcmp(a, "--seqs")) o.seqs = parse_int(a, v);
        else if (!strcmp(a, "--ctx")) o.ctx = parse_int(a, v);
        else if (!strcmp(a, "--dim")) o.dim = parse_int(a, v);
        else if (!strcmp(a, "--hidden")) o.hidden = parse_int(a, v);
        else if (!strcmp(a, "--layers")) o.layers = parse_int(a, v);
        else if (!strcmp(a, "--heads")) o.heads = parse_int(a, v);
        else if (!strcmp(a, "--kv-heads")) o.kv_heads = parse_int(a, v);
        else if (!strcmp(a, "--vocab")) o.vocab = parse_int(a, v);
        else if (!strcmp(a, "--threads")) o.threads = parse_int(a, v);
        else if (!strcmp(a, "--repeat")) o.repeat = parse_int(a, v);
        else if (!strcmp(a, "--numerics")) o.numerics = parse_int(a, v);
        else {
            fprintf(stderr, "lmc_bench_nn: unknown or incomplete option %s (see the source header)\n", a);
            exit(2);
        }
    }
    if (strcmp(o.mode, "batched") && strcmp(o.mode, "lockstep") && strcmp(o.mode, "matmul") &&
        strcmp(o.mode, "pool") && strcmp(o.mode, "attention") && strcmp(o.mode, "cdf")) {
        fprintf(stderr, "lmc_bench_nn: --mode is batched, lockstep, matmul, pool, attention or cdf\n");
        exit(2);
    }
    o.rules = lmc_nn_rules_of((uint32_t)o.numerics);
    return o;
}

static void force_simd(const char *name) {
    if (!name)
        return;
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    for (int level = 0; level < 3; level++)
        if (!strcmp(name, names[level])) {
            lmc_simd_force(level);
            return;
        }
    fprintf(stderr, "lmc_bench_nn: --simd is scalar, avx2 or avx512\n");
    exit(2);
}

/* Evaluates every position of every sequence; returns the wall seconds
 * taken and sets *cpu to the CPU seconds. */
static double run(const options *o, lmc_llama_state *state, lmc_pool *pool, int n_seqs, int rows_per_call,
                  float *logits, double *cpu) {
    int *seqs = bench_alloc((size_t)rows_per_call * sizeof *seqs);
    int *positions = bench_alloc((size_t)rows_per_call * sizeof *positions);
    int32_t *tokens = bench_alloc((size_t)rows_per_call * sizeof *tokens);
    const int batched = n_seqs == 1;
    double start = now_seconds(), cpu_start = cpu_seconds();
    for (int step = 0; step < o->ctx; step += batched ? rows_per_call : 1) {
        int n = batched ? LMC_MIN(rows_per_call, o->ctx - step) : n_seqs;
        for (int i = 0; i < n; i++) {
            seqs[i] = batched ? 0 : i;
            positions[i] = batched ? step + i : step;
            tokens[i] = (int32_t)(rng_next() % (uint64_t)o->vocab);
        }
        lmc_llama_forward(state, pool, seqs, tokens, positions, n, logits);
    }
    double seconds = now_seconds() - start;
    *cpu = cpu_seconds() - cpu_start;
    free(seqs);
    free(positions);
    free(tokens);
    return seconds;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Multiply-adds per second of one matmul shape, repeated for ~0.5 s. */
static void bench_matmul(const options *o, lmc_pool *pool) {
    lmc_qmat w = random_qmat(o->hidden, o->dim);
    /* Activations: two int8 planes per row (nn.h), quantised by the rule. */
    int8_t *xq = bench_alloc(2 * (size_t)o->rows * (size_t)o->dim);
    float *x = random_floats((size_t)o->dim, 0.0f, 1.0f);
    float *xscale = bench_alloc((size_t)o->rows * sizeof(float));
    float *y = bench_alloc((size_t)o->rows * (size_t)o->hidden * sizeof(float));
    for (int t = 0; t < o->rows; t++) {
        int8_t *planes = xq + 2 * (size_t)t * (size_t)o->dim;
        xscale[t] = o->rules.act == LMC_ACT_INT7 ? lmc_quantize_activation7(x, o->dim, planes)
                                            : lmc_quantize_activation(x, o->dim, planes);
    }
    free(x);
    long calls = 0;
    double start = now_seconds(), seconds;
    do {
        lmc_matmul_q8(pool, &w, xq, xscale, o->rows, NULL, y, o->rules.act);
        calls++;
    } while ((seconds = now_seconds() - start) < 0.5);
    double macs = (double)calls * o->rows * (double)o->hidden * o->dim;
    printf("mode=matmul simd=%s numerics=%d threads=%d out=%d cols=%d rows=%d: %.1f GMAC/s, %.1f us per call\n",
           lmc_simd_name(lmc_simd_selected()), o->numerics, o->threads, o->hidden, o->dim, o->rows, macs / seconds * 1e-9,
           seconds / (double)calls * 1e6);
    free(xq);
    free(y);
}

/* About 1 us of work per index, which no compiler can remove. */
static void busy_range(void *ctx, int begin, int end) {
    volatile uint32_t *sink = ctx;
    for (int i = begin; i < end; i++) {
        uint32_t x = (uint32_t)i;
        for (int k = 0; k < 1000; k++)
            x = x * 1664525u + 1013904223u;
        sink[i % 64] = x;
    }
}

/* Microseconds per parallel loop of 8 x 1 us, back to back for ~0.5 s (the
 * engine's parallel steps follow each other closely like this), against the
 * same loop without the pool: what a parallel step gains or loses. */
static void bench_pool(const options *o, lmc_pool *pool) {
    static uint32_t sink[64];
    const int n = 8;
    double serial_start = now_seconds();
    for (int i = 0; i < 1000; i++)
        busy_range(sink, 0, n);
    double serial = (now_seconds() - serial_start) / 1000.0;
    long calls = 0;
    double start = now_seconds(), cpu_start = cpu_seconds(), seconds;
    do {
        for (int i = 0; i < 100; i++)
            lmc_pool_for(pool, n, busy_range, sink);
        calls += 100;
    } while ((seconds = now_seconds() - start) < 0.5);
    printf("mode=pool threads=%d: %.2f us per lmc_pool_for of %d x 1 us (%.2f CPU-us); %.2f us without the pool\n",
           o->threads, seconds / (double)calls * 1e6, n, (cpu_seconds() - cpu_start) / (double)calls * 1e6,
           serial * 1e6);
}

/* The fastest of --repeat runs of fn, in seconds. */
static double best_of(const options *o, void (*fn)(void *), void *ctx) {
    double best = 0.0;
    for (int r = 0; r < o->repeat; r++) {
        double start = now_seconds();
        fn(ctx);
        double seconds = now_seconds() - start;
        if (r == 0 || seconds < best)
            best = seconds;
    }
    return best;
}

typedef struct {
    const options *o;
    int head_dim, group, heads, key_pos;
    float *keys, *values, *q, *slot, *out;
    lmc_attn_scores_group_fn scores;
    lmc_softmax_fn softmax;
    lmc_attn_mix_fn mix;
    /* int8 attention: */
    int8_t *keys8, *values8, *q8;
    float *k_scale, *v_scale, *factors, *w_scales;
    int32_t *k_sum;
    int16_t *weights;
    lmc_attn8_scores_fn scores8;
    lmc_attn8_mix_fn mix8;
    lmc_attn8_weights_fn weights8;
} attention_bench;

/* Every position of every sequence, layer and kv head, as a decoding step
 * does it: the caches of all heads together are as large as a decoder's. */
static void attention_pass(void *ctx) {
    attention_bench *a = ctx;
    const int hd = a->head_dim, group = a->group, ctx_len = a->o->ctx;
    for (int pos = 0; pos < ctx_len; pos++)
        for (int h = 0; h < a->heads; h++) {
            const float *keys = a->keys + (size_t)h * (size_t)a->key_pos * (size_t)hd;
            const float *values = a->values + (size_t)h * (size_t)ctx_len * (size_t)hd;
            float *sums = a->slot + (size_t)group * (size_t)ctx_len;
            a->scores(a->q, group, keys, hd, pos + 1, 0.125f, a->slot, (size_t)ctx_len);
            for (int i = 0; i < group; i++)
                sums[i] = a->softmax(a->slot + (size_t)i * (size_t)ctx_len, pos + 1);
            a->mix(a->slot, (size_t)ctx_len, sums, group, values, hd, pos + 1, a->out);
        }
}

/* attention_pass for int8 attention: the steps of llama.c's attend8 but
 * the query's quantisation. */
static void attention_pass8(void *ctx) {
    attention_bench *a = ctx;
    const int hd = a->head_dim, group = a->group, ctx_len = a->o->ctx, padded = lmc_attn8_padded_dim(hd);
    for (int pos = 0; pos < ctx_len; pos++)
        for (int h = 0; h < a->heads; h++) {
            const size_t entries = (size_t)h * (size_t)a->key_pos;
            float *sums = a->slot + (size_t)group * (size_t)ctx_len;
            a->scores8(a->q8, a->factors, group, a->keys8 + entries * (size_t)padded, a->k_scale + entries,
                       a->k_sum + entries, hd, pos + 1, a->slot, (size_t)ctx_len);
            for (int i = 0; i < group; i++) {
                float *e = a->slot + (size_t)i * (size_t)ctx_len;
                sums[i] = a->softmax(e, pos + 1);
                a->w_scales[i] = a->weights8(e, a->v_scale + entries, pos + 1, a->weights + (size_t)i * (size_t)a->key_pos);
            }
            a->mix8(a->weights, (size_t)a->key_pos, a->w_scales, sums, group, a->values8 + entries * (size_t)hd, hd,
                    pos + 1, a->out);
        }
}

static int8_t *random_bytes(size_t n, int limit) {
    int8_t *p = bench_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (int8_t)((int)(rng_next() % (uint64_t)(2 * limit + 1)) - limit);
    return p;
}

/* The int8 caches and scratch of bench_attention under --numerics 3. */
static void setup_attention8(attention_bench *a) {
    const int simd = lmc_simd_selected() >= LMC_SIMD_AVX2, padded = lmc_attn8_padded_dim(a->head_dim);
    const size_t entries = (size_t)a->heads * (size_t)a->key_pos;
    a->keys8 = random_bytes(entries * (size_t)padded, 127);
    a->values8 = random_bytes(entries * (size_t)a->head_dim, 127);
    a->q8 = random_bytes((size_t)a->group * (size_t)padded, 63);
    a->k_scale = random_floats(entries, 0.02f, 0.01f);
    a->v_scale = random_floats(entries, 0.02f, 0.01f);
    a->factors = random_floats((size_t)a->group, 0.02f, 0.01f);
    a->w_scales = bench_alloc((size_t)a->group * sizeof(float));
    a->k_sum = bench_alloc(entries * sizeof(int32_t));
    for (size_t e = 0; e < entries; e++)
        a->k_sum[e] = 0; /* any value: the time does not depend on it */
    a->weights = bench_alloc((size_t)a->group * (size_t)a->key_pos * sizeof(int16_t));
    a->scores8 = simd ? lmc_attn8_scores_avx2 : lmc_attn8_scores_scalar;
    a->mix8 = simd ? lmc_attn8_mix_avx2 : lmc_attn8_mix_scalar;
    a->weights8 = simd ? lmc_attn8_weights_avx2 : lmc_attn8_weights_scalar;
}

/* Random floats in [-1, 1) at a cache-line boundary, as the engine's caches. */
static float *aligned_random_floats(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof *p + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "lmc_bench_nn: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = rng_float();
    return p;
}

static void bench_attention(const options *o) {
    const int simd = lmc_simd_selected() >= LMC_SIMD_AVX2, avx512 = lmc_simd_selected() >= LMC_SIMD_AVX512;
    attention_bench a = {.o = o, .head_dim = o->dim / o->heads, .group = o->heads / o->kv_heads};
    const int attn8 = o->rules.attn == LMC_ATTN_INT8;
    a.heads = o->seqs * o->layers * o->kv_heads;
    a.key_pos = (o->ctx + LMC_ATTN_KEY_BLOCK - 1) / LMC_ATTN_KEY_BLOCK * LMC_ATTN_KEY_BLOCK;
    if (attn8)
        setup_attention8(&a);
    else {
        a.keys = aligned_random_floats((size_t)a.heads * (size_t)a.key_pos * (size_t)a.head_dim);
        a.values = aligned_random_floats((size_t)a.heads * (size_t)o->ctx * (size_t)a.head_dim);
    }
    a.q = random_floats((size_t)o->heads * (size_t)a.head_dim, 0.0f, 1.0f);
    a.slot = bench_alloc(((size_t)a.group * (size_t)o->ctx + (size_t)a.group) * sizeof(float));
    a.out = bench_alloc((size_t)a.group * (size_t)a.head_dim * sizeof(float));
    a.scores = avx512 ? lmc_attn_scores_group_avx512 : simd ? lmc_attn_scores_group_avx2 : lmc_attn_scores_group_scalar;
    a.softmax = simd ? lmc_softmax_avx2 : lmc_softmax_scalar;
    a.mix = avx512 ? lmc_attn_mix_avx512 : simd ? lmc_attn_mix_avx2 : lmc_attn_mix_scalar;
    double seconds = best_of(o, attn8 ? attention_pass8 : attention_pass, &a);
    printf("mode=attention simd=%s numerics=%d head_dim=%d heads=%d/%d layers=%d seqs=%d ctx=%d: %.2f us per token "
           "(best of %d, %.1f ms per pass)\n",
           lmc_simd_name(lmc_simd_selected()), o->numerics, a.head_dim, o->heads, o->kv_heads, o->layers, o->seqs, o->ctx,
           seconds / ((double)o->ctx * o->seqs) * 1e6, o->repeat, seconds * 1e3);
}

typedef struct {
    int n;
    float *logits, *scratch;
    uint32_t *cum;
} cdf_bench;

enum { CDF_CALLS = 1000 };

static void cdf_calls(void *ctx) {
    cdf_bench *c = ctx;
    for (int i = 0; i < CDF_CALLS; i++)
        lmc_cdf_from_logits(c->logits, c->n, c->scratch, c->cum);
}

/* Logits spread like a language model's (about 20 nats between the most
 * and the least likely symbol). */
static void bench_cdf(const options *o) {
    cdf_bench c = {.n = o->vocab};
    c.logits = random_floats((size_t)c.n, -5.0f, 10.0f);
    c.scratch = bench_alloc((size_t)c.n * sizeof(float));
    c.cum = bench_alloc(((size_t)c.n + 1) * sizeof(uint32_t));
    double seconds = best_of(o, cdf_calls, &c);
    printf("mode=cdf simd=%s vocab=%d: %.2f us per CDF (best of %d x %d calls)\n", lmc_simd_name(lmc_simd_selected()),
           c.n, seconds / CDF_CALLS * 1e6, o->repeat, CDF_CALLS);
}

int main(int argc, char **argv) {
    options o = parse_options(argc, argv);
    force_simd(o.simd);
    if (!strcmp(o.mode, "attention")) {
        bench_attention(&o);
        return 0;
    }
    if (!strcmp(o.mode, "cdf")) {
        bench_cdf(&o);
        return 0;
    }
    if (!strcmp(o.mode, "matmul") || !strcmp(o.mode, "pool")) {
        lmc_pool *pool = lmc_pool_create(o.threads);
        if (!pool)
            return 1;
        if (!strcmp(o.mode, "pool"))
            bench_pool(&o, pool);
        else
            bench_matmul(&o, pool);
        lmc_pool_free(pool);
        return 0;
    }
    lmc_llama model = random_model(&o);
    const int lockstep = !strcmp(o.mode, "lockstep");
    const int n_seqs = lockstep ? o.seqs : 1, rows_per_call = lockstep ? o.seqs : o.rows;
    lmc_llama_state *state;
    if (lmc_llama_state_create(&model, o.rules, n_seqs, o.ctx, rows_per_call, &state) != LMC_OK) {
        fprintf(stderr, "lmc_bench_nn: cannot create the state (check the shapes)\n");
        return 1;
    }
    lmc_pool *pool = lmc_pool_create(o.threads);
    float *logits = bench_alloc((size_t)rows_per_call * (size_t)o.vocab * sizeof(float));
    if (!pool) {
        fprintf(stderr, "lmc_bench_nn: cannot create the thread pool\n");
        return 1;
    }
    double *seconds = bench_alloc((size_t)o.repeat * sizeof *seconds), cpu_total = 0.0;
    for (int i = 0; i < o.repeat; i++) {
        double cpu;
        seconds[i] = run(&o, state, pool, n_seqs, rows_per_call, logits, &cpu);
        cpu_total += cpu;
    }
    qsort(seconds, (size_t)o.repeat, sizeof *seconds, compare_doubles);
    double tokens = (double)n_seqs * (double)o.ctx;
    printf("mode=%s simd=%s threads=%d dim=%d hidden=%d layers=%d heads=%d/%d vocab=%d ctx=%d %s=%d: "
           "%.0f tokens/s (best of %d, %.3f s; median %.0f /s), %.0f tokens per CPU-second\n",
           o.mode, lmc_simd_name(lmc_simd_selected()), o.threads, o.dim, o.hidden, o.layers, o.heads, o.kv_heads,
           o.vocab, o.ctx, lockstep ? "seqs" : "rows", rows_per_call, tokens / seconds[0], o.repeat, seconds[0],
           tokens / seconds[o.repeat / 2], tokens * o.repeat / cpu_total);
    free(seconds);
    lmc_pool_free(pool);
    lmc_llama_state_free(state);
    free(logits);
    return 0;
}
