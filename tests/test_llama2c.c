/*
 * Conformance with llama2.c: the stories260K checkpoint converted to GGUF
 * and run by lmc's integer engine must agree with the logits and the greedy
 * text that llama2.c's own run.c produced (shared/peer/llama2c).
 *
 * A float32 forward pass written here from run.c's algorithm checks the
 * conversion itself (it must match the reference logits to rounding), so
 * that a disagreement of the integer engine is measured against a known-good
 * model, not mistaken for a conversion error.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <unistd.h>

#include "model/model.h"
#include "test_util.h"

static char shared[1024];
static char temp_dir[64];
static char gguf_path[128];

static const char *peer_file(const char *name) {
    static char path[1200];
    snprintf(path, sizeof path, "%s/peer/llama2c/%s", shared, name);
    return path;
}

static uint8_t *read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    lmc_buf buf;
    lmc_buf_init(&buf);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) assert_int_equal(lmc_buf_append(&buf, chunk, n), LMC_OK);
    fclose(f);
    *size = buf.size;
    return buf.data;
}

/* ==================================================================== float reference */

/* llama2.c's weights, read back from the converted GGUF as floats. */
typedef struct {
    int dim, hidden, layers, heads, kv_heads, head, vocab;
    float *embd, *out_norm, *cls;
    float **attn_norm, **ffn_norm, **wq, **wk, **wv, **wo, **w1, **w2, **w3;
    float *k_cache, *v_cache; /* [layers][max_pos][kv_dim] */
    int max_pos;
} reference;

static float *tensor_floats(const lmc_gguf *g, const char *name) {
    const lmc_gguf_tensor *t = lmc_gguf_tensor_find(g, name);
    if (!t) fail_msg("converted model lacks %s", name);
    float *x = malloc((size_t)t->n_elements * sizeof *x);
    lmc_message m;
    assert_int_equal(lmc_tensor_to_f32(t, x, &m), LMC_OK);
    return x;
}

static float **layer_floats(const lmc_gguf *g, int layers, const char *suffix) {
    float **x = calloc((size_t)layers, sizeof *x);
    for (int i = 0; i < layers; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.%s", i, suffix);
        x[i] = tensor_floats(g, name);
    }
    return x;
}

static void reference_load(reference *r, const lmc_llama *shape, const lmc_gguf *g, int max_pos) {
    r->dim = shape->dim;
    r->hidden = shape->hidden_dim;
    r->layers = shape->n_layers;
    r->heads = shape->n_heads;
    r->kv_heads = shape->n_kv_heads;
    r->head = shape->head_dim;
    r->vocab = shape->vocab;
    r->embd = tensor_floats(g, "token_embd.weight");
    r->out_norm = tensor_floats(g, "output_norm.weight");
    r->cls = lmc_gguf_tensor_find(g, "output.weight") ? tensor_floats(g, "output.weight") : r->embd;
    r->attn_norm = layer_floats(g, r->layers, "attn_norm.weight");
    r->ffn_norm = layer_floats(g, r->layers, "ffn_norm.weight");
    r->wq = layer_floats(g, r->layers, "attn_q.weight");
    r->wk = layer_floats(g, r->layers, "attn_k.weight");
    r->wv = layer_floats(g, r->layers, "attn_v.weight");
    r->wo = layer_floats(g, r->layers, "attn_output.weight");
    r->w1 = layer_floats(g, r->layers, "ffn_gate.weight");
    r->w2 = layer_floats(g, r->layers, "ffn_down.weight");
    r->w3 = layer_floats(g, r->layers, "ffn_up.weight");
    r->max_pos = max_pos;
    size_t cache = (size_t)r->layers * (size_t)max_pos * (size_t)(r->kv_heads * r->head);
    r->k_cache = calloc(cache, sizeof(float));
    r->v_cache = calloc(cache, sizeof(float));
}

static void free_layers(float **x, int layers) {
    for (int i = 0; i < layers; i++) free(x[i]);
    free(x);
}

static void reference_free(reference *r) {
    if (r->cls != r->embd) free(r->cls);
    free(r->embd);
    free(r->out_norm);
    float **all[] = {r->attn_norm, r->ffn_norm, r->wq, r->wk, r->wv, r->wo, r->w1, r->w2, r->w3};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free_layers(all[i], r->layers);
    free(r->k_cache);
    free(r->v_cache);
}

static void rmsnorm(float *out, const float *x, const float *w, int n) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / (float)n + 1e-5f);
    for (int i = 0; i < n; i++) out[i] = w[i] * (ss * x[i]);
}

static void matvec(float *out, const float *x, const float *w, int n_in, int n_out) {
    for (int o = 0; o < n_out; o++) {
        float sum = 0.0f;
        for (int i = 0; i < n_in; i++) sum += w[(size_t)o * n_in + i] * x[i];
        out[o] = sum;
    }
}

/* run.c's forward(): logits of the token after `token` at `pos`. */
static void reference_forward(reference *r, int token, int pos, float *logits) {
    int dim = r->dim, kv_dim = r->kv_heads * r->head, kv_mul = r->heads / r->kv_heads;
    float x[1024], xb[1024], xb2[1024], q[1024], hb[4096], hb2[4096], att[4096];
    assert_true(dim <= 1024 && r->hidden <= 4096 && pos < 4096);
    memcpy(x, r->embd + (size_t)token * dim, (size_t)dim * sizeof *x);
    for (int l = 0; l < r->layers; l++) {
        float *k = r->k_cache + ((size_t)l * r->max_pos + pos) * kv_dim;
        float *v = r->v_cache + ((size_t)l * r->max_pos + pos) * kv_dim;
        rmsnorm(xb, x, r->attn_norm[l], dim);
        matvec(q, xb, r->wq[l], dim, dim);
        matvec(k, xb, r->wk[l], dim, kv_dim);
        matvec(v, xb, r->wv[l], dim, kv_dim);
        for (int i = 0; i < dim; i += 2) {
            float freq = 1.0f / powf(10000.0f, (float)(i % r->head) / (float)r->head);
            float c = cosf((float)pos * freq), s = sinf((float)pos * freq);
            for (int which = 0; which < (i < kv_dim ? 2 : 1); which++) {
                float *vec = which == 0 ? q : k;
                float v0 = vec[i], v1 = vec[i + 1];
                vec[i] = v0 * c - v1 * s;
                vec[i + 1] = v0 * s + v1 * c;
            }
        }
        for (int h = 0; h < r->heads; h++) {
            const float *qh = q + h * r->head;
            float max = -INFINITY, sum = 0.0f;
            for (int t = 0; t <= pos; t++) {
                const float *kt = r->k_cache + ((size_t)l * r->max_pos + t) * kv_dim + (h / kv_mul) * r->head;
                float score = 0.0f;
                for (int i = 0; i < r->head; i++) score += qh[i] * kt[i];
                att[t] = score / sqrtf((float)r->head);
                max = fmaxf(max, att[t]);
            }
            for (int t = 0; t <= pos; t++) {
                att[t] = expf(att[t] - max);
                sum += att[t];
            }
            float *out = xb + h * r->head;
            memset(out, 0, (size_t)r->head * sizeof *out);
            for (int t = 0; t <= pos; t++) {
                const float *vt = r->v_cache + ((size_t)l * r->max_pos + t) * kv_dim + (h / kv_mul) * r->head;
                for (int i = 0; i < r->head; i++) out[i] += att[t] / sum * vt[i];
            }
        }
        matvec(xb2, xb, r->wo[l], dim, dim);
        for (int i = 0; i < dim; i++) x[i] += xb2[i];
        rmsnorm(xb, x, r->ffn_norm[l], dim);
        matvec(hb, xb, r->w1[l], dim, r->hidden);
        matvec(hb2, xb, r->w3[l], dim, r->hidden);
        for (int i = 0; i < r->hidden; i++) hb[i] = hb[i] / (1.0f + expf(-hb[i])) * hb2[i];
        matvec(xb, hb, r->w2[l], r->hidden, dim);
        for (int i = 0; i < dim; i++) x[i] += xb[i];
    }
    rmsnorm(x, x, r->out_norm, dim);
    matvec(logits, x, r->cls, dim, r->vocab);
}

/* ==================================================================== setup */

static int setup(void **state) {
    (void)state;
    const char *dir = getenv("LMC_SHARED_DIR");
    snprintf(shared, sizeof shared, "%s", dir ? dir : LMC_TEST_SHARED_DIR);
    strcpy(temp_dir, "/tmp/lmc_test_llama2c_XXXXXX");
    if (!mkdtemp(temp_dir)) return -1;
    snprintf(gguf_path, sizeof gguf_path, "%s/stories260K.gguf", temp_dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", temp_dir);
    return system(command) == 0 ? 0 : -1;
}

static void skip_without_peer_files(void) {
    if (access(peer_file("stories260K.bin"), R_OK) != 0) {
        print_message("skipped: %s is missing\n", peer_file("stories260K.bin"));
        skip();
    }
}

/* Converts once; every test needs the GGUF. */
static void convert(void) {
    if (access(gguf_path, R_OK) == 0) return;
    lmc_message m;
    char tokenizer[1200];
    snprintf(tokenizer, sizeof tokenizer, "%s", peer_file("tok512.bin"));
    if (lmc_llama2c_convert(peer_file("stories260K.bin"), tokenizer, gguf_path, &m) != LMC_OK)
        fail_msg("conversion failed: %s", m.text);
}

/* The model with its tokenizer; without one if the tokenizer refuses it
 * (then the engine is still checked on token ids). */
static lmc_model *load_model(void) {
    lmc_model *model;
    lmc_message m;
    if (lmc_model_load(gguf_path, 0, &model, &m) == LMC_OK) return model;
    print_message("note: lmc_model_load failed (%s); loading the weights alone\n", m.text);
    if (lmc_model_load_weights(gguf_path, 0, &model, &m) != LMC_OK) fail_msg("%s", m.text);
    return model;
}

/* story.logits: int32 n, int32 vocab, int32 tokens[n], float logits[n][vocab]. */
typedef struct {
    int n, vocab;
    int32_t *tokens;
    float *logits;
} story;

static void read_story(story *s) {
    size_t size;
    uint8_t *data = read_whole(peer_file("story.logits"), &size);
    assert_true(size >= 8);
    s->n = (int)lmc_get_le32(data);
    s->vocab = (int)lmc_get_le32(data + 4);
    assert_true(s->n > 0 && s->vocab > 0);
    assert_int_equal(size, 8 + 4 * (size_t)s->n + 4 * (size_t)s->n * (size_t)s->vocab);
    s->tokens = malloc((size_t)s->n * sizeof *s->tokens);
    s->logits = malloc((size_t)s->n * (size_t)s->vocab * sizeof *s->logits);
    memcpy(s->tokens, data + 8, (size_t)s->n * 4);
    memcpy(s->logits, data + 8 + 4 * (size_t)s->n, (size_t)s->n * (size_t)s->vocab * 4);
    free(data);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Logit gap between the best and second-best token. */
static float top_margin(const float *x, int n) {
    int best = argmax(x, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != best) second = fmaxf(second, x[i]);
    return x[best] - second;
}

/* Positions whose reference top-2 gap is at least this many logits have a
 * clear next token (346 of the story's 386). */
#define DECISIVE_MARGIN 0.25f

/* KL(p || q) in nats between the softmaxes of two logit rows. */
static double kl_divergence(const float *p_logits, const float *q_logits, int n) {
    double p_max = p_logits[argmax(p_logits, n)], q_max = q_logits[argmax(q_logits, n)];
    double p_sum = 0.0, q_sum = 0.0;
    for (int i = 0; i < n; i++) {
        p_sum += exp(p_logits[i] - p_max);
        q_sum += exp(q_logits[i] - q_max);
    }
    double kl = 0.0;
    for (int i = 0; i < n; i++) {
        double log_p = p_logits[i] - p_max - log(p_sum), log_q = q_logits[i] - q_max - log(q_sum);
        kl += exp(log_p) * (log_p - log_q);
    }
    return kl;
}

/* The story's logits with 2 threads on every SIMD level equal `expected`
 * bit for bit (so the agreement figures below hold everywhere). */
static void assert_same_on_every_level(const lmc_llama *m, const story *st, const float *expected) {
    lmc_llama_state *engine;
    assert_int_equal(lmc_llama_state_create(m, lmc_nn_rules_of(1), 1, st->n, st->n, &engine), LMC_OK);
    lmc_pool *pool = lmc_pool_create(2);
    int *seqs = calloc((size_t)st->n, sizeof *seqs), *positions = malloc((size_t)st->n * sizeof *positions);
    for (int i = 0; i < st->n; i++) positions[i] = i;
    size_t size = (size_t)st->n * (size_t)st->vocab * sizeof(float);
    float *logits = malloc(size);
    lmc_simd_force(-1);
    lmc_simd_level best = lmc_simd_selected();
    for (int level = 0; level <= (int)best; level++) {
        lmc_simd_force(level);
        memset(logits, 0, size);
        lmc_llama_forward(engine, pool, seqs, st->tokens, positions, st->n, logits);
        assert_memory_equal(logits, expected, size);
    }
    lmc_simd_force(-1);
    free(seqs);
    free(positions);
    free(logits);
    lmc_pool_free(pool);
    lmc_llama_state_free(engine);
}

/* ==================================================================== tests */

static void test_conversion(void **state) {
    (void)state;
    skip_without_peer_files();
    convert();
    lmc_gguf *g;
    lmc_message m;
    assert_int_equal(lmc_gguf_open(gguf_path, &g, &m), LMC_OK);
    lmc_gguf_string s;
    assert_int_equal(lmc_gguf_get_str(g, "general.architecture", &s), 0);
    assert_memory_equal(s.data, "llama", 5);
    assert_int_equal(lmc_gguf_get_str(g, "general.name", &s), 0);
    assert_int_equal(s.size, 11);
    assert_memory_equal(s.data, "stories260K", 11);
    static const struct {
        const char *key;
        uint32_t value;
    } sizes[] = {{"llama.embedding_length", 64}, {"llama.block_count", 5},        {"llama.attention.head_count", 8},
                 {"llama.attention.head_count_kv", 4}, {"llama.context_length", 512}, {"llama.rope.dimension_count", 8},
                 {"tokenizer.ggml.bos_token_id", 1}, {"tokenizer.ggml.eos_token_id", 2},
                 {"tokenizer.ggml.unknown_token_id", 0}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint32_t v;
        assert_int_equal(lmc_gguf_get_u32(g, sizes[i].key, &v), 0);
        assert_int_equal(v, sizes[i].value);
    }
    float f;
    assert_int_equal(lmc_gguf_get_f32(g, "llama.rope.freq_base", &f), 0);
    assert_true(f == 10000.0f);
    assert_int_equal(lmc_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f), 0);
    assert_true(f == 1e-5f);
    /* The tokenizer: SentencePiece pieces and types restored. */
    assert_int_equal(lmc_gguf_get_str(g, "tokenizer.ggml.model", &s), 0);
    assert_memory_equal(s.data, "llama", 5);
    lmc_gguf_value_type elem;
    uint64_t count;
    assert_int_equal(lmc_gguf_get_array(g, "tokenizer.ggml.tokens", &elem, &count), 0);
    assert_int_equal(count, 512);
    static const char *const first[4] = {"<unk>", "<s>", "</s>", "<0x00>"};
    static const int types[4] = {2, 3, 3, 6};
    for (int i = 0; i < 4; i++) {
        s = lmc_gguf_array_str(g, "tokenizer.ggml.tokens", (uint64_t)i);
        assert_int_equal(s.size, strlen(first[i]));
        assert_memory_equal(s.data, first[i], s.size);
        assert_true(lmc_gguf_array_num(g, "tokenizer.ggml.token_type", (uint64_t)i) == types[i]);
    }
    s = lmc_gguf_array_str(g, "tokenizer.ggml.tokens", 258);
    assert_memory_equal(s.data, "<0xFF>", 6);
    int markers = 0, spaces = 0;
    for (uint64_t i = 259; i < count; i++) {
        s = lmc_gguf_array_str(g, "tokenizer.ggml.tokens", i);
        markers += s.size >= 3 && memcmp(s.data, "\xe2\x96\x81", 3) == 0;
        spaces += memchr(s.data, ' ', (size_t)s.size) != NULL;
        assert_true(lmc_gguf_array_num(g, "tokenizer.ggml.token_type", i) == 1);
    }
    assert_true(markers > 50);
    assert_int_equal(spaces, 0);
    /* Scores are llama2.c's: the merge ranks, decreasing. */
    assert_true(lmc_gguf_array_num(g, "tokenizer.ggml.scores", 300) > lmc_gguf_array_num(g, "tokenizer.ggml.scores", 500));
    /* Weights: bit-identical floats from the checkpoint (shared classifier). */
    size_t size;
    uint8_t *checkpoint = read_whole(peer_file("stories260K.bin"), &size);
    const lmc_gguf_tensor *embd = lmc_gguf_tensor_find(g, "token_embd.weight");
    assert_int_equal(embd->type, LMC_GGML_F32);
    assert_int_equal(embd->ne[0], 64);
    assert_int_equal(embd->ne[1], 512);
    assert_memory_equal(embd->data, checkpoint + 28, embd->n_bytes);
    const lmc_gguf_tensor *wq0 = lmc_gguf_tensor_find(g, "blk.0.attn_q.weight");
    size_t wq_offset = 28 + 4 * (512 * 64 + 5 * 64);
    assert_memory_equal(wq0->data, checkpoint + wq_offset, wq0->n_bytes);
    const lmc_gguf_tensor *norm = lmc_gguf_tensor_find(g, "output_norm.weight");
    assert_memory_equal(norm->data, checkpoint + size - 4 * (64 + 512 * 8), 256);
    assert_null(lmc_gguf_tensor_find(g, "output.weight"));
    assert_int_equal(lmc_gguf_n_tensors(g), 1 + 9 * 5 + 1);
    free(checkpoint);
    lmc_gguf_close(g);
    /* Broken inputs give errors. */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/bad.gguf", temp_dir);
    assert_int_equal(lmc_llama2c_convert(peer_file("tok512.bin"), peer_file("tok512.bin"), bad, &m),
                     LMC_ERR_MODEL_INVALID);
    assert_int_equal(lmc_llama2c_convert(peer_file("stories260K.bin"), peer_file("story.txt"), bad, &m),
                     LMC_ERR_MODEL_INVALID);
    assert_int_equal(lmc_llama2c_convert("/nonexistent.bin", peer_file("tok512.bin"), bad, &m), LMC_ERR_IO);
    assert_int_equal(access(bad, F_OK), -1);
}

/* The float forward of the converted weights reproduces llama2.c. */
static void test_float_reference_matches(void **state) {
    (void)state;
    skip_without_peer_files();
    convert();
    lmc_model *model = load_model();
    story st;
    read_story(&st);
    assert_int_equal(st.vocab, model->llama.vocab);
    reference r;
    reference_load(&r, &model->llama, model->gguf, st.n);
    float *logits = malloc((size_t)st.vocab * sizeof *logits);
    double max_diff = 0.0;
    for (int pos = 0; pos < st.n; pos++) {
        reference_forward(&r, st.tokens[pos], pos, logits);
        for (int i = 0; i < st.vocab; i++)
            max_diff = fmax(max_diff, fabs((double)logits[i] - st.logits[(size_t)pos * st.vocab + i]));
    }
    print_message("float32 reference vs llama2.c: max |logit difference| %.3g over %d positions\n", max_diff, st.n);
    assert_true(max_diff < 1e-3);
    free(logits);
    reference_free(&r);
    free(st.tokens);
    free(st.logits);
    lmc_model_free(model);
}

/* The integer engine (int8 weights, int16 activations), all positions of
 * the story in one batched call. */
static void test_engine_logits(void **state) {
    (void)state;
    skip_without_peer_files();
    convert();
    lmc_model *model = load_model();
    story st;
    read_story(&st);
    lmc_llama_state *engine;
    assert_int_equal(lmc_llama_state_create(&model->llama, lmc_nn_rules_of(1), 1, st.n, st.n, &engine), LMC_OK);
    lmc_pool *pool = lmc_pool_create(1);
    int *seqs = calloc((size_t)st.n, sizeof *seqs), *positions = malloc((size_t)st.n * sizeof *positions);
    for (int i = 0; i < st.n; i++) positions[i] = i;
    float *logits = malloc((size_t)st.n * (size_t)st.vocab * sizeof *logits);
    lmc_llama_forward(engine, pool, seqs, st.tokens, positions, st.n, logits);
    assert_same_on_every_level(&model->llama, &st, logits);
    int agree = 0, decisive = 0, decisive_agree = 0;
    double kl_sum = 0.0, kl_max = 0.0;
    for (int pos = 0; pos < st.n; pos++) {
        const float *ours = logits + (size_t)pos * st.vocab, *ref = st.logits + (size_t)pos * st.vocab;
        int same = argmax(ours, st.vocab) == argmax(ref, st.vocab);
        agree += same;
        if (top_margin(ref, st.vocab) >= DECISIVE_MARGIN) {
            decisive++;
            decisive_agree += same;
        }
        double kl = kl_divergence(ref, ours, st.vocab);
        kl_sum += kl;
        kl_max = fmax(kl_max, kl);
    }
    double top1 = (double)agree / st.n, kl_mean = kl_sum / st.n;
    print_message("integer engine vs llama2.c over %d positions: top-1 agreement %.2f%% (%d), on the %d decisive "
                  "positions %d, mean KL %.5f nats (max %.4f)\n", st.n, 100.0 * top1, agree, decisive,
                  decisive_agree, kl_mean, kl_max);
    /* Quantisation noise (now almost all from the int8 weights: the
     * activations are int16) flips near-ties only (stories260K is tiny:
     * dim 64, and 5 positions have a reference top-2 gap under 0.015);
     * where llama2.c's choice is clear the engine must make it too. The
     * engine is bit-identical on every SIMD level and thread count, so
     * these numbers (98.70 %, 381 positions; KL 0.00054) are exact. */
    assert_true(top1 >= 0.98);
    assert_true(agree >= 381);
    assert_int_equal(decisive_agree, decisive);
    assert_true(kl_mean <= 0.01);
    assert_true(kl_mean <= 0.001);
    free(seqs);
    free(positions);
    free(logits);
    lmc_pool_free(pool);
    lmc_llama_state_free(engine);
    free(st.tokens);
    free(st.logits);
    lmc_model_free(model);
}

/* The tokenizer made from the converted vocabulary encodes the story as
 * llama2.c did. */
static void test_tokenizer_matches(void **state) {
    (void)state;
    skip_without_peer_files();
    convert();
    lmc_model *model = load_model();
    if (!model->tokenizer) {
        lmc_model_free(model);
        print_message("skipped: no tokenizer for the converted model\n");
        skip();
    }
    story st;
    read_story(&st);
    size_t size;
    uint8_t *text = read_whole(peer_file("story.txt"), &size);
    int32_t *ids;
    size_t n_ids;
    assert_int_equal(lmc_tokenizer_encode(model->tokenizer, text, size, &ids, &n_ids), LMC_OK);
    assert_int_equal(lmc_tokenizer_bos(model->tokenizer), 1);
    assert_int_equal(n_ids, (size_t)st.n - 1);
    assert_memory_equal(ids, st.tokens + 1, n_ids * sizeof *ids);
    free(ids);
    free(text);
    free(st.tokens);
    free(st.logits);
    lmc_model_free(model);
}

/* The text of a token as run.c prints it: U+2581 as a space, the space
 * after BOS dropped, <0xNN> as the byte, unprintable single bytes skipped. */
static void append_piece(const lmc_gguf *g, int32_t previous, int32_t token, lmc_buf *text) {
    lmc_gguf_string s = lmc_gguf_array_str(g, "tokenizer.ggml.tokens", (uint64_t)token);
    uint8_t piece[64];
    size_t n = 0;
    for (uint64_t i = 0; i < s.size && n < sizeof piece; i++) {
        if (i + 3 <= s.size && memcmp(s.data + i, "\xe2\x96\x81", 3) == 0) {
            piece[n++] = ' ';
            i += 2;
        } else {
            piece[n++] = (uint8_t)s.data[i];
        }
    }
    size_t start = previous == 1 && n > 0 && piece[0] == ' ' ? 1 : 0;
    unsigned byte;
    if (n == 6 && sscanf((const char *)piece, "<0x%02X>", &byte) == 1) {
        piece[0] = (uint8_t)byte;
        n = 1;
    }
    if (n - start == 1 && !(piece[start] >= 32 && piece[start] < 127) && piece[start] != '\n' &&
        piece[start] != '\t' && piece[start] != ' ')
        return;
    assert_int_equal(lmc_buf_append(text, piece + start, n - start), LMC_OK);
}

typedef int (*next_token_fn)(void *ctx, int32_t token, int pos);

/* Greedy decoding from BOS as run.c -t 0 does; returns how many generated
 * tokens keep the text a prefix of the reference. */
static int greedy_agreement(const lmc_gguf *g, next_token_fn next, void *ctx, const uint8_t *want, size_t want_size,
                            int steps) {
    lmc_buf text;
    lmc_buf_init(&text);
    int32_t token = 1;
    int matching = 0;
    for (int pos = 0; pos + 1 < steps; pos++) {
        int32_t following = next(ctx, token, pos);
        if (following == 1) break;
        append_piece(g, token, following, &text);
        if (text.size > want_size || memcmp(text.data, want, text.size) != 0) break;
        matching++;
        token = following;
    }
    lmc_buf_free(&text);
    return matching;
}

typedef struct {
    lmc_llama_state *engine;
    lmc_pool *pool;
    float *logits;
    int vocab;
} engine_ctx;

static int engine_next(void *ctx, int32_t token, int pos) {
    engine_ctx *e = ctx;
    int seq = 0;
    lmc_llama_forward(e->engine, e->pool, &seq, &token, &pos, 1, e->logits);
    return argmax(e->logits, e->vocab);
}

typedef struct {
    reference *r;
    float *logits;
} reference_ctx;

static int reference_next(void *ctx, int32_t token, int pos) {
    reference_ctx *c = ctx;
    reference_forward(c->r, token, pos, c->logits);
    return argmax(c->logits, c->r->vocab);
}

static void test_greedy_text(void **state) {
    (void)state;
    skip_without_peer_files();
    convert();
    lmc_model *model = load_model();
    size_t want_size;
    uint8_t *want = read_whole(peer_file("stories260K.greedy256.txt"), &want_size);
    const int steps = 256;
    engine_ctx e = {NULL, lmc_pool_create(1), malloc((size_t)model->llama.vocab * sizeof(float)), model->llama.vocab};
    assert_int_equal(lmc_llama_state_create(&model->llama, lmc_nn_rules_of(1), 1, steps, 1, &e.engine), LMC_OK);
    int int8_tokens = greedy_agreement(model->gguf, engine_next, &e, want, want_size, steps);
    reference r;
    reference_load(&r, &model->llama, model->gguf, steps);
    reference_ctx rc = {&r, e.logits};
    int float_tokens = greedy_agreement(model->gguf, reference_next, &rc, want, want_size, steps);
    print_message("greedy decoding from BOS matches llama2.c's text for %d tokens (integer engine), %d (float32 "
                  "reference), of %d\n", int8_tokens, float_tokens, steps - 1);
    /* The float model of the converted weights reproduces the whole text.
     * Greedy integer decoding follows it until the first near-tie flips a
     * choice: 61 tokens, the same on every SIMD level and thread count
     * (bit-identical logits); a broken engine would diverge at once. */
    assert_int_equal(float_tokens, steps - 1);
    assert_true(int8_tokens >= 61);
    reference_free(&r);
    lmc_llama_state_free(e.engine);
    lmc_pool_free(e.pool);
    free(e.logits);
    free(want);
    lmc_model_free(model);
}

/* Weights stored natively (I8 + per-row scale) load to the same matrices
 * as the float weights re-quantised at load. */
static void test_native_form_is_equivalent(void **state) {
    (void)state;
    skip_without_peer_files();
    convert();
    lmc_model *f32;
    lmc_message m;
    if (lmc_model_load_weights(gguf_path, 0, &f32, &m) != LMC_OK) fail_msg("%s", m.text);
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    const lmc_gguf *g = f32->gguf;
    static const char *const u32_keys[] = {"llama.context_length", "llama.embedding_length", "llama.block_count",
                                           "llama.feed_forward_length", "llama.attention.head_count",
                                           "llama.attention.head_count_kv"};
    assert_int_equal(lmc_gguf_writer_set_str(w, "general.architecture", "llama"), LMC_OK);
    for (size_t i = 0; i < sizeof u32_keys / sizeof u32_keys[0]; i++) {
        uint32_t v;
        assert_int_equal(lmc_gguf_get_u32(g, u32_keys[i], &v), 0);
        assert_int_equal(lmc_gguf_writer_set_u32(w, u32_keys[i], v), LMC_OK);
    }
    for (int i = 0; i < lmc_gguf_n_tensors(g); i++) {
        const lmc_gguf_tensor *t = lmc_gguf_tensor_at(g, i);
        float *x = malloc((size_t)t->n_elements * sizeof *x);
        assert_int_equal(lmc_tensor_to_f32(t, x, &m), LMC_OK);
        if (t->n_dims == 2 && strcmp(t->name, "token_embd.weight") != 0) {
            int rows = (int)t->ne[1], cols = (int)t->ne[0];
            int8_t *q = malloc((size_t)t->n_elements);
            float *scale = malloc((size_t)rows * sizeof *scale);
            for (int r = 0; r < rows; r++) scale[r] = lmc_quantize_row(x + (size_t)r * cols, cols, q + (size_t)r * cols);
            char name[96];
            snprintf(name, sizeof name, "%s.scale", t->name);
            uint64_t ne_scale[1] = {(uint64_t)rows};
            assert_int_equal(lmc_gguf_writer_add_tensor(w, t->name, LMC_GGML_I8, 2, t->ne, q, t->n_elements), LMC_OK);
            assert_int_equal(lmc_gguf_writer_add_tensor(w, name, LMC_GGML_F32, 1, ne_scale, scale, (uint64_t)rows * 4),
                             LMC_OK);
            free(q);
            free(scale);
        } else {
            assert_int_equal(lmc_gguf_writer_add_tensor(w, t->name, LMC_GGML_F32, t->n_dims, t->ne, x, t->n_bytes),
                             LMC_OK);
        }
        free(x);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/native.gguf", temp_dir);
    assert_int_equal(lmc_gguf_writer_write(w, path), LMC_OK);
    lmc_gguf_writer_free(w);
    lmc_model *native;
    if (lmc_model_load_weights(path, 0, &native, &m) != LMC_OK) fail_msg("%s", m.text);
    const lmc_llama *a = &f32->llama, *b = &native->llama;
    for (int l = 0; l < a->n_layers; l++) {
        const lmc_qmat *ma[] = {&a->layers[l].wq, &a->layers[l].wk, &a->layers[l].wv, &a->layers[l].wo,
                                &a->layers[l].w_gate, &a->layers[l].w_up, &a->layers[l].w_down};
        const lmc_qmat *mb[] = {&b->layers[l].wq, &b->layers[l].wk, &b->layers[l].wv, &b->layers[l].wo,
                                &b->layers[l].w_gate, &b->layers[l].w_up, &b->layers[l].w_down};
        for (int j = 0; j < 7; j++) {
            assert_int_equal(ma[j]->rows, mb[j]->rows);
            assert_memory_equal(ma[j]->q, mb[j]->q, (size_t)ma[j]->rows * (size_t)ma[j]->cols);
            assert_memory_equal(ma[j]->scale, mb[j]->scale, (size_t)ma[j]->rows * sizeof(float));
            assert_memory_equal(ma[j]->row_sum, mb[j]->row_sum, (size_t)ma[j]->rows * sizeof(int32_t));
        }
    }
    assert_memory_equal(a->output.q, b->output.q, (size_t)a->vocab * (size_t)a->dim);
    lmc_model_free(native);
    lmc_model_free(f32);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversion),
        cmocka_unit_test(test_float_reference_matches),
        cmocka_unit_test(test_engine_logits),
        cmocka_unit_test(test_tokenizer_matches),
        cmocka_unit_test(test_greedy_text),
        cmocka_unit_test(test_native_form_is_equivalent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
