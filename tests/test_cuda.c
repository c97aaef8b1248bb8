/*
 * The CUDA matmul backend (src/nn/cuda.h) against the CPU, bit for bit:
 * random and extreme int8 matrices and int16 activations of many shapes
 * (odd sizes, the text-en shapes), biases, several matrices per call,
 * subnormal and zero scales, a device copy dropped by lmc_qmat_release,
 * and whole forward passes of models/text-en.gguf (batched, chunked and
 * lockstep on several threads) whose logits must not change when the
 * matmuls go to the GPU.
 *
 * Exits 77 (ctest: skipped) when lmc was built without CUDA
 * (-DLMC_CUDA=ON) or no CUDA device is usable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "nn/cuda.h"
#include "nn/kernels.h"
#include "test_util.h"

static uint64_t rng_state = 1;

/* Uniform in [-1, 1). */
static float rng_float(void) {
    return (float)((double)(test_rng(&rng_state) >> 11) * 0x1p-52 - 1.0);
}

static int rng_int(int n) {
    return (int)(test_rng(&rng_state) % (uint64_t)n);
}

static void *checked_malloc(size_t size) {
    void *p = malloc(size ? size : 1);
    assert_non_null(p);
    return p;
}

/* Floats compared as their bit patterns (so -0 != +0 and NaNs must match);
 * the first difference is printed. */
static void assert_same_bits(const float *want, const float *got, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &want[i], sizeof a);
        memcpy(&b, &got[i], sizeof b);
        if (a != b) {
            print_error("%s: value %zu differs: CPU %08x (%.9g), GPU %08x (%.9g)\n", what, i, a, (double)want[i], b,
                        (double)got[i]);
            fail();
        }
    }
}

/* ---- Matrices and activations ---- */

typedef enum { VALUES_RANDOM, VALUES_EXTREME } values_kind;

typedef struct {
    lmc_qmat m;
    int8_t *q;
    float *scale;
} test_matrix;

/* Random weights, or all +-127 (the largest sums); scales of every size
 * down to subnormal products, and a zero row scale. */
static void matrix_init(test_matrix *t, int rows, int cols, values_kind kind) {
    t->q = checked_malloc((size_t)rows * (size_t)cols);
    t->scale = checked_malloc((size_t)rows * sizeof(float));
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        t->q[i] = (int8_t)(kind == VALUES_EXTREME ? (i % 5 == 0 ? -127 : 127) : rng_int(255) - 127);
    for (int o = 0; o < rows; o++)
        t->scale[o] = o % 17 == 3 ? 1e-12f * (1.0f + rng_float()) : (1.5f + 0.5f * rng_float()) / (127.0f * 16.0f);
    if (rows > 5)
        t->scale[5] = 0.0f;
    t->m = (lmc_qmat){.q = t->q, .scale = t->scale, .rows = rows, .cols = cols};
    assert_int_equal(lmc_qmat_prepare(&t->m), LMC_OK);
}

static void matrix_free(test_matrix *t) {
    lmc_qmat_release(&t->m);
    free(t->q);
    free(t->scale);
}

typedef struct {
    int8_t *xq;    /* [n_rows][2][cols] */
    float *xscale; /* [n_rows] */
} test_input;

/* Rows quantised by the engine's rule; row 1 all zeros, row 2 so small
 * that xscale * scale[o] is subnormal (a GPU flushing subnormals would give
 * 0); extreme inputs quantise to +-32512 everywhere. */
static void input_init(test_input *in, int n_rows, int cols, values_kind kind) {
    float *x = checked_malloc((size_t)cols * sizeof(float));
    in->xq = checked_malloc(2 * (size_t)n_rows * (size_t)cols);
    in->xscale = checked_malloc((size_t)n_rows * sizeof(float));
    for (int t = 0; t < n_rows; t++) {
        const float magnitude = t == 1 ? 0.0f : t == 2 ? 1e-33f : 3.0f;
        for (int k = 0; k < cols; k++)
            x[k] = kind == VALUES_EXTREME ? (k % 3 == 0 ? -magnitude : magnitude) : magnitude * rng_float();
        in->xscale[t] = lmc_quantize_activation(x, cols, in->xq + 2 * (size_t)t * (size_t)cols);
    }
    free(x);
}

static void input_free(test_input *in) {
    free(in->xq);
    free(in->xscale);
}

static float *random_bias(int rows) {
    float *bias = checked_malloc((size_t)rows * sizeof(float));
    for (int o = 0; o < rows; o++)
        bias[o] = 0.3f * rng_float();
    return bias;
}

/* ---- Single matmuls against the CPU ---- */

static lmc_pool *pool;

/* The CPU's result (GPU routing off) and the GPU's, called directly. */
static void compare_matmul(const lmc_qmat *w, const test_input *in, int n_rows, const float *bias,
                           const char *what) {
    const size_t n = (size_t)n_rows * (size_t)w->rows;
    float *want = checked_malloc(n * sizeof(float)), *got = checked_malloc(n * sizeof(float));
    lmc_cuda_force(0, 0);
    lmc_matmul_q8(pool, w, in->xq, in->xscale, n_rows, bias, want);
    memset(got, 0xA5, n * sizeof(float));
    const lmc_matmul_job job = {w, bias, got};
    assert_int_equal(lmc_cuda_matmul_q8_multi(pool, &job, 1, in->xq, in->xscale, n_rows), LMC_OK);
    assert_same_bits(want, got, n, what);
    lmc_cuda_force(-1, 0);
    free(want);
    free(got);
}

static void check_shape(int rows, int cols, values_kind kind) {
    static const int token_counts[] = {1, 2, 3, 31, 32, 33, 100};
    test_matrix m;
    matrix_init(&m, rows, cols, kind);
    float *bias = random_bias(rows);
    for (size_t i = 0; i < sizeof token_counts / sizeof token_counts[0]; i++) {
        const int n_rows = token_counts[i];
        test_input in;
        input_init(&in, n_rows, cols, kind);
        char what[96];
        snprintf(what, sizeof what, "%d x %d, %d rows%s", rows, cols, n_rows,
                 kind == VALUES_EXTREME ? ", extreme" : "");
        compare_matmul(&m.m, &in, n_rows, NULL, what);
        compare_matmul(&m.m, &in, n_rows, bias, what);
        input_free(&in);
    }
    free(bias);
    matrix_free(&m);
}

static void test_matmul_shapes_bit_exact(void **unused) {
    (void)unused;
    static const int shapes[][2] = {{1, 1},    {7, 33},    {33, 7},   {1, 65},    {64, 768},
                                    {65, 129}, {256, 256}, {128, 256}, {768, 256}, {256, 768},
                                    {8192, 256}, {100, 1000}};
    rng_state = 11;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        check_shape(shapes[s][0], shapes[s][1], VALUES_RANDOM);
}

/* Sums far above 2^24, where (float)acc rounds. */
static void test_matmul_extreme_values_bit_exact(void **unused) {
    (void)unused;
    rng_state = 12;
    check_shape(64, 768, VALUES_EXTREME);
    check_shape(9, 4099, VALUES_EXTREME);
}

/* ---- The engine's dispatch ---- */

/* lmc_matmul_q8_multi with routing on: three matrices sharing one input
 * (q, k, v with biases), one GPU call, the CPU's bits. */
static void test_multi_dispatch_uses_gpu(void **unused) {
    (void)unused;
    rng_state = 13;
    enum { COLS = 256, N_ROWS = 45 };
    static const int rows[3] = {256, 128, 129};
    test_matrix m[3];
    float *bias[3], *want[3], *got[3];
    for (int j = 0; j < 3; j++) {
        matrix_init(&m[j], rows[j], COLS, VALUES_RANDOM);
        bias[j] = j == 1 ? NULL : random_bias(rows[j]);
        want[j] = checked_malloc((size_t)N_ROWS * (size_t)rows[j] * sizeof(float));
        got[j] = checked_malloc((size_t)N_ROWS * (size_t)rows[j] * sizeof(float));
    }
    test_input in;
    input_init(&in, N_ROWS, COLS, VALUES_RANDOM);
    lmc_matmul_job cpu_jobs[3], gpu_jobs[3];
    for (int j = 0; j < 3; j++) {
        cpu_jobs[j] = (lmc_matmul_job){&m[j].m, bias[j], want[j]};
        gpu_jobs[j] = (lmc_matmul_job){&m[j].m, bias[j], got[j]};
    }
    lmc_cuda_force(0, 0);
    lmc_matmul_q8_multi(pool, cpu_jobs, 3, in.xq, in.xscale, N_ROWS);
    lmc_cuda_force(1, 0);
    const uint64_t before = lmc_cuda_matmul_count();
    lmc_matmul_q8_multi(pool, gpu_jobs, 3, in.xq, in.xscale, N_ROWS);
    assert_int_equal(lmc_cuda_matmul_count(), before + 1);
    lmc_cuda_force(-1, 0);
    for (int j = 0; j < 3; j++) {
        assert_same_bits(want[j], got[j], (size_t)N_ROWS * (size_t)rows[j], "multi");
        free(want[j]);
        free(got[j]);
        free(bias[j]);
        matrix_free(&m[j]);
    }
    input_free(&in);
}

/* New weights in the same buffers after lmc_qmat_release: the device copy
 * of the old ones must not be used. */
static void test_release_drops_device_copy(void **unused) {
    (void)unused;
    rng_state = 14;
    enum { ROWS = 96, COLS = 200, N_ROWS = 5 };
    test_matrix m;
    matrix_init(&m, ROWS, COLS, VALUES_RANDOM);
    test_input in;
    input_init(&in, N_ROWS, COLS, VALUES_RANDOM);
    compare_matmul(&m.m, &in, N_ROWS, NULL, "before release");
    lmc_qmat_release(&m.m);
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
        m.q[i] = (int8_t)(rng_int(255) - 127);
    m.m = (lmc_qmat){.q = m.q, .scale = m.scale, .rows = ROWS, .cols = COLS};
    assert_int_equal(lmc_qmat_prepare(&m.m), LMC_OK);
    compare_matmul(&m.m, &in, N_ROWS, NULL, "after release");
    input_free(&in);
    matrix_free(&m);
}

/* ---- Whole forward passes of text-en ---- */

enum { N_POS = 150, N_SEQS = 3 };

static lmc_model *text_en;

static const char *models_dir(void) {
    const char *env = getenv("LMC_MODELS");
    return env && *env && !strchr(env, ':') ? env : LMC_TEST_SOURCE_DIR "/models";
}

/* Sequence 0's logits, all positions per call in chunks of max_rows. */
static void run_batched(int max_rows, const int32_t *tokens, float *logits) {
    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(&text_en->llama, 1, N_POS, max_rows, &s), LMC_OK);
    int seqs[N_POS], positions[N_POS];
    for (int i = 0; i < N_POS; i++)
        seqs[i] = 0, positions[i] = i;
    lmc_llama_forward(s, pool, seqs, tokens, positions, N_POS, logits);
    lmc_llama_state_free(s);
}

/* All sequences one position per call (decompression's lockstep: each
 * thread runs its rows' whole pass, so several threads call the GPU at
 * once); sequence 0's logits. */
static void run_lockstep(int32_t tokens[N_SEQS][N_POS], float *logits) {
    const int vocab = text_en->llama.vocab;
    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(&text_en->llama, N_SEQS, N_POS, N_SEQS, &s), LMC_OK);
    float *step_logits = checked_malloc((size_t)N_SEQS * (size_t)vocab * sizeof(float));
    for (int pos = 0; pos < N_POS; pos++) {
        int seqs[N_SEQS], positions[N_SEQS];
        int32_t toks[N_SEQS];
        for (int i = 0; i < N_SEQS; i++)
            seqs[i] = i, positions[i] = pos, toks[i] = tokens[i][pos];
        lmc_llama_forward(s, pool, seqs, toks, positions, N_SEQS, step_logits);
        memcpy(logits + (size_t)pos * (size_t)vocab, step_logits, (size_t)vocab * sizeof(float));
    }
    free(step_logits);
    lmc_llama_state_free(s);
}

static void test_text_en_forward_same_logits(void **unused) {
    (void)unused;
    if (!text_en)
        skip();
    rng_state = 15;
    const int vocab = text_en->llama.vocab;
    int32_t tokens[N_SEQS][N_POS];
    for (int s = 0; s < N_SEQS; s++)
        for (int i = 0; i < N_POS; i++)
            tokens[s][i] = rng_int(vocab);
    const size_t size = (size_t)N_POS * (size_t)vocab * sizeof(float);
    float *want = checked_malloc(size), *got = checked_malloc(size);

    lmc_cuda_force(0, 0);
    run_batched(N_POS, tokens[0], want);
    lmc_cuda_force(1, 0); /* every matmul on the GPU */
    uint64_t before = lmc_cuda_matmul_count();
    run_batched(N_POS, tokens[0], got);
    assert_true(lmc_cuda_matmul_count() >= before + 6 * 4 + 1); /* qkv, wo, gate+up, down per layer; output */
    assert_same_bits(want, got, size / sizeof(float), "batched, all on the GPU");
    memset(got, 0, size);
    run_batched(7, tokens[0], got);
    assert_same_bits(want, got, size / sizeof(float), "chunks of 7 rows, all on the GPU");
    memset(got, 0, size);
    before = lmc_cuda_matmul_count();
    run_lockstep(tokens, got);
    assert_true(lmc_cuda_matmul_count() > before);
    assert_same_bits(want, got, size / sizeof(float), "lockstep, all on the GPU");
    /* The default threshold (or LMC_GPU_MIN_MACS): in chunks of 40 rows the
     * output matmul goes to the GPU, the small ones stay on the CPU. */
    lmc_cuda_force(-1, 0);
    const int64_t threshold = lmc_cuda_min_macs();
    lmc_cuda_force(1, threshold);
    memset(got, 0, size);
    before = lmc_cuda_matmul_count();
    run_batched(40, tokens[0], got);
    print_message("default threshold %lld: %llu of the matmuls on the GPU\n", (long long)threshold,
                  (unsigned long long)(lmc_cuda_matmul_count() - before));
    assert_same_bits(want, got, size / sizeof(float), "chunks of 40 rows, default threshold");
    lmc_cuda_force(-1, 0);
    free(want);
    free(got);
}

static int load_text_en(void **unused) {
    (void)unused;
    char path[1024];
    snprintf(path, sizeof path, "%s/text-en.gguf", models_dir());
    lmc_message message;
    if (access(path, R_OK) != 0 || lmc_model_load_weights(path, 0, &text_en, &message) != LMC_OK) {
        print_message("text-en forward skipped: cannot load %s\n", path);
        text_en = NULL;
    }
    pool = lmc_pool_create(4);
    return pool ? 0 : -1;
}

static int free_text_en(void **unused) {
    (void)unused;
    lmc_model_free(text_en);
    lmc_pool_free(pool);
    return 0;
}

int main(void) {
    if (!lmc_cuda_available()) {
#ifdef LMC_HAVE_CUDA
        printf("test_cuda: skipped: no usable CUDA device\n");
#else
        printf("test_cuda: skipped: lmc was built without CUDA (cmake -DLMC_CUDA=ON)\n");
#endif
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_shapes_bit_exact),
        cmocka_unit_test(test_matmul_extreme_values_bit_exact),
        cmocka_unit_test(test_multi_dispatch_uses_gpu),
        cmocka_unit_test(test_release_drops_device_copy),
        cmocka_unit_test(test_text_en_forward_same_logits),
    };
    return cmocka_run_group_tests(tests, load_text_en, free_text_en);
}
