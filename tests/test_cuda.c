/*
 * The CUDA backend (src/nn/cuda.h) against the CPU, bit for bit: the
 * matmul on random and extreme int8 matrices and int16 activations of many
 * shapes (odd sizes, the text-en shapes), biases, several matrices per
 * call, subnormal and zero scales, a device copy dropped by
 * lmc_qmat_release; and whole forward passes on the GPU of random llama and
 * qwen2 models and of every shipped transformer model, under the block
 * codec's call patterns (batched, chunked, lockstep, window restarts), also
 * with the device failing mid-way (the state goes on on the CPU).
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

#include "container/container.h"
#include "model/model.h"
#include "nn/cuda.h"
#include "nn/kernels.h"
#include "test_llama_models.h"
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
    lmc_act_rule rule;
} test_input;

/* Rows quantised by an activation rule of the engine; row 1 all zeros, row
 * 2 so small that xscale * scale[o] is subnormal (a GPU flushing subnormals
 * would give 0); extreme inputs quantise to +-QMAX everywhere. */
static void input_init(test_input *in, int n_rows, int cols, values_kind kind, lmc_act_rule rule) {
    in->rule = rule;
    float *x = checked_malloc((size_t)cols * sizeof(float));
    in->xq = checked_malloc(2 * (size_t)n_rows * (size_t)cols);
    in->xscale = checked_malloc((size_t)n_rows * sizeof(float));
    for (int t = 0; t < n_rows; t++) {
        const float magnitude = t == 1 ? 0.0f : t == 2 ? 1e-33f : 3.0f;
        for (int k = 0; k < cols; k++)
            x[k] = kind == VALUES_EXTREME ? (k % 3 == 0 ? -magnitude : magnitude) : magnitude * rng_float();
        int8_t *planes = in->xq + 2 * (size_t)t * (size_t)cols;
        in->xscale[t] = rule == LMC_ACT_INT7 ? lmc_quantize_activation7(x, cols, planes)
                                             : lmc_quantize_activation(x, cols, planes);
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
    lmc_matmul_q8(pool, w, in->xq, in->xscale, n_rows, bias, want, in->rule);
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
    for (size_t i = 0; i < sizeof token_counts / sizeof token_counts[0]; i++)
        for (int rule = LMC_ACT_INT16; rule <= LMC_ACT_INT7; rule++) {
            const int n_rows = token_counts[i];
            test_input in;
            input_init(&in, n_rows, cols, kind, (lmc_act_rule)rule);
            char what[96];
            snprintf(what, sizeof what, "%d x %d, %d rows%s, %s activations", rows, cols, n_rows,
                     kind == VALUES_EXTREME ? ", extreme" : "", rule == LMC_ACT_INT7 ? "7-bit" : "int16");
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
    input_init(&in, N_ROWS, COLS, VALUES_RANDOM, LMC_ACT_INT7);
    lmc_matmul_job cpu_jobs[3], gpu_jobs[3];
    for (int j = 0; j < 3; j++) {
        cpu_jobs[j] = (lmc_matmul_job){&m[j].m, bias[j], want[j]};
        gpu_jobs[j] = (lmc_matmul_job){&m[j].m, bias[j], got[j]};
    }
    lmc_cuda_force(0, 0);
    lmc_matmul_q8_multi(pool, cpu_jobs, 3, in.xq, in.xscale, N_ROWS, in.rule);
    lmc_cuda_force(1, 0);
    const uint64_t before = lmc_cuda_matmul_count();
    lmc_matmul_q8_multi(pool, gpu_jobs, 3, in.xq, in.xscale, N_ROWS, in.rule);
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
    input_init(&in, N_ROWS, COLS, VALUES_RANDOM, LMC_ACT_INT7);
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

/* ---- Whole forward passes on the GPU (nn/cuda/llama_cuda.cu) ----
 * Each schedule is a list of calls (rows of sequences, positions and
 * tokens) like those the block codec makes; every call's logits are kept,
 * and the GPU's must equal the CPU's bit for bit. */

enum { N_POS = 150, N_SEQS = 3, MAX_CALL_ROWS = N_POS, MAX_CALLS = 4 * N_POS };

typedef struct {
    int n;
    int seqs[MAX_CALL_ROWS], positions[MAX_CALL_ROWS];
    int32_t tokens[MAX_CALL_ROWS];
    int slide_stride; /* > 0: lmc_llama_slide of seqs[0..n) instead of a forward */
} call;

typedef struct {
    int n_seqs, max_rows, n_calls, total_rows;
    call *calls;
} schedule;

static int32_t token_at(int vocab, int seq, int pos) {
    return (int32_t)(((uint32_t)seq * 7919u + (uint32_t)pos * 104729u + 13u) % (uint32_t)vocab);
}

static call *next_call(schedule *sc) {
    assert_true(sc->n_calls < MAX_CALLS);
    call *c = &sc->calls[sc->n_calls++];
    c->n = 0;
    c->slide_stride = 0;
    return c;
}

static void add_row(schedule *sc, call *c, int vocab, int seq, int pos, int token_offset) {
    assert_true(c->n < MAX_CALL_ROWS);
    c->seqs[c->n] = seq;
    c->positions[c->n] = pos;
    c->tokens[c->n++] = token_at(vocab, seq, pos + token_offset);
    sc->total_rows++;
}

/* Kinds of schedule: every position of one sequence in one call (the state
 * splitting it in chunks of max_rows), lockstep of three sequences at
 * different offsets with a prefill, a window restart (positions start
 * again at 0 in a call of 20 rows), and sliding windows (numerics v2: two
 * sequences in lockstep, each slid when its window is full). */
typedef enum {
    SCHEDULE_BATCHED,
    SCHEDULE_CHUNKED,
    SCHEDULE_LOCKSTEP,
    SCHEDULE_RESTART,
    SCHEDULE_SLIDING,
    SCHEDULE_KINDS
} schedule_kind;

enum { SLIDE_WINDOW = 40, SLIDE_STRIDE = 15 };

/* Two sequences, the second 5 positions ahead, one row each per call;
 * 120 outputs each, so every sequence slides several times. */
static void make_sliding(schedule *sc, int vocab) {
    sc->n_seqs = 2;
    sc->max_rows = 8;
    int pos[2] = {0, 5}, done[2] = {0, 5};
    call *c = next_call(sc);
    for (int p = 0; p < 5; p++)
        add_row(sc, c, vocab, 1, p, 0);
    for (int step = 0; step < 120; step++) {
        for (int seq = 0; seq < 2; seq++)
            if (pos[seq] == SLIDE_WINDOW) {
                c = next_call(sc);
                c->seqs[c->n++] = seq;
                c->slide_stride = SLIDE_STRIDE;
                pos[seq] = SLIDE_WINDOW - SLIDE_STRIDE;
            }
        c = next_call(sc);
        for (int seq = 0; seq < 2; seq++) {
            add_row(sc, c, vocab, seq, pos[seq], done[seq] - pos[seq]);
            pos[seq]++, done[seq]++;
        }
    }
}

static schedule make_schedule(schedule_kind kind, int vocab) {
    schedule sc = {.n_seqs = 1, .max_rows = N_POS, .calls = checked_malloc(MAX_CALLS * sizeof(call))};
    if (kind == SCHEDULE_BATCHED || kind == SCHEDULE_CHUNKED) {
        call *c = next_call(&sc);
        for (int pos = 0; pos < N_POS; pos++)
            add_row(&sc, c, vocab, 0, pos, 0);
        sc.max_rows = kind == SCHEDULE_CHUNKED ? 7 : N_POS;
    } else if (kind == SCHEDULE_LOCKSTEP) {
        sc.n_seqs = N_SEQS;
        sc.max_rows = 16;
        call *c = next_call(&sc);
        for (int pos = 0; pos < 9; pos++)
            add_row(&sc, c, vocab, 1, pos, 0);
        add_row(&sc, c, vocab, 2, 0, 0);
        for (int step = 0; step < N_POS - 9; step++) {
            c = next_call(&sc);
            add_row(&sc, c, vocab, 2, step + 1, 0);
            add_row(&sc, c, vocab, 0, step, 0);
            add_row(&sc, c, vocab, 1, step + 9, 0);
        }
    } else if (kind == SCHEDULE_SLIDING) {
        make_sliding(&sc, vocab);
    } else {
        sc.max_rows = 32;
        for (int first = 0; first < N_POS; first += 16) {
            call *c = next_call(&sc);
            for (int pos = first; pos < first + 16 && pos < N_POS; pos++)
                add_row(&sc, c, vocab, 0, pos, 0);
        }
        call *c = next_call(&sc);
        for (int pos = 0; pos < 20; pos++)
            add_row(&sc, c, vocab, 0, pos, 100);
        for (int pos = 20; pos < 60; pos++)
            add_row(&sc, next_call(&sc), vocab, 0, pos, 100);
    }
    return sc;
}

/* Runs the schedule on a new state computing by the rules of `numerics`;
 * logits gets every row's logits in order. fail_at >= 0 makes the GPU fail
 * at the first forward from that call on (the state must go on on the CPU). */
static void run_schedule(const lmc_llama *m, uint32_t numerics, const schedule *sc, int fail_at, float *logits) {
    lmc_llama_state *s;
    assert_int_equal(lmc_llama_state_create(m, lmc_nn_rules_of(numerics), sc->n_seqs, N_POS, sc->max_rows, &s),
                     LMC_OK);
    size_t at = 0;
    for (int i = 0; i < sc->n_calls; i++) {
        const call *c = &sc->calls[i];
        if (c->slide_stride) {
            lmc_llama_slide(s, pool, c->seqs, c->n, c->slide_stride, SLIDE_WINDOW);
            continue;
        }
        if (i >= fail_at && fail_at >= 0) {
            lmc_cuda_fail_next_forward();
            fail_at = -1;
        }
        lmc_llama_forward(s, pool, c->seqs, c->tokens, c->positions, c->n, logits + at);
        at += (size_t)c->n * (size_t)m->vocab;
    }
    lmc_llama_state_free(s);
}

/* Every schedule under each numerics version on the CPU and on the GPU
 * (and once with a failure in the middle): the same logits, and the GPU
 * really ran. */
static void check_model_on_gpu(const lmc_llama *m, const char *name) {
    for (int kind = 0; kind < LMC_NUMERICS_VERSION * SCHEDULE_KINDS; kind++) {
        const uint32_t numerics = 1 + (uint32_t)(kind / SCHEDULE_KINDS);
        schedule sc = make_schedule((schedule_kind)(kind % SCHEDULE_KINDS), m->vocab);
        const size_t n = (size_t)sc.total_rows * (size_t)m->vocab;
        float *want = checked_malloc(n * sizeof(float)), *got = checked_malloc(n * sizeof(float));
        char what[160];
        lmc_cuda_force(0, 0);
        run_schedule(m, numerics, &sc, -1, want);
        lmc_cuda_force(1, 0);
        const uint64_t before = lmc_cuda_llama_calls();
        memset(got, 0xff, n * sizeof(float));
        run_schedule(m, numerics, &sc, -1, got);
        uint64_t forwards = 0;
        for (int i = 0; i < sc.n_calls; i++)
            forwards += sc.calls[i].slide_stride == 0;
        assert_true(lmc_cuda_llama_calls() >= before + forwards);
        snprintf(what, sizeof what, "%s, schedule %d, numerics %u, on the GPU", name, kind % SCHEDULE_KINDS,
                 (unsigned)numerics);
        assert_same_bits(want, got, n, what);
        memset(got, 0xff, n * sizeof(float));
        run_schedule(m, numerics, &sc, sc.n_calls / 2, got);
        snprintf(what, sizeof what, "%s, schedule %d, numerics %u, GPU failing at call %d", name,
                 kind % SCHEDULE_KINDS, (unsigned)numerics, sc.n_calls / 2);
        assert_same_bits(want, got, n, what);
        lmc_cuda_force(-1, 0);
        free(want);
        free(got);
        free(sc.calls);
    }
}

static void check_random_model(const model_config *cfg, uint64_t seed, const char *name) {
    test_model tm;
    test_model_init(&tm, cfg, seed);
    check_model_on_gpu(&tm.llama, name);
    test_model_free(&tm);
}

static void test_random_llama_forward_on_gpu(void **unused) {
    (void)unused;
    const model_config llama = {.dim = 64, .hidden = 172, .layers = 2, .heads = 4, .kv_heads = 2, .vocab = 256};
    check_random_model(&llama, 100, "llama pairs");
}

static void test_random_qwen2_forward_on_gpu(void **unused) {
    (void)unused;
    const model_config qwen2 = {.dim = 96, .hidden = 172, .layers = 2, .heads = 4, .kv_heads = 2, .vocab = 300,
                                .neox = 1, .biases = 1};
    check_random_model(&qwen2, 200, "qwen2 biases, neox");
}

/* head_dim 12: lanes of unequal length in every dot product. */
static void test_random_odd_head_dim_on_gpu(void **unused) {
    (void)unused;
    const model_config odd = {.dim = 96, .hidden = 100, .layers = 1, .heads = 8, .kv_heads = 8, .vocab = 77};
    check_random_model(&odd, 300, "head_dim 12");
}

static const char *models_dir(void) {
    const char *env = getenv("LMC_MODELS");
    return env && *env && !strchr(env, ':') ? env : LMC_TEST_SOURCE_DIR "/models";
}

/* Every shipped transformer model (the domain overlays on their base):
 * the same logits, hence the same CDFs. */
static void test_shipped_models_forward_on_gpu(void **unused) {
    (void)unused;
    static const char *const names[][2] = {
        {"text-en", NULL}, {"text-en-legal", "text-en"}, {"text-en-medical", "text-en"}, {"bytes-v1", NULL}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024], base[1024];
        snprintf(path, sizeof path, "%s/%s.gguf", models_dir(), names[i][0]);
        lmc_model *model;
        lmc_message message;
        lmc_status status;
        if (names[i][1]) {
            snprintf(base, sizeof base, "%s/%s.gguf", models_dir(), names[i][1]);
            status = lmc_model_load_overlay(path, base, 0, &model, &message);
        } else {
            status = lmc_model_load_weights(path, 0, &model, &message);
        }
        if (status != LMC_OK) {
            print_error("cannot load %s: %s\n", path, message.text);
            fail();
        }
        check_model_on_gpu(&model->llama, names[i][0]);
        lmc_model_free(model);
    }
}

static int create_pool(void **unused) {
    (void)unused;
    pool = lmc_pool_create(4);
    return pool ? 0 : -1;
}

static int free_pool(void **unused) {
    (void)unused;
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
        cmocka_unit_test(test_random_llama_forward_on_gpu),
        cmocka_unit_test(test_random_qwen2_forward_on_gpu),
        cmocka_unit_test(test_random_odd_head_dim_on_gpu),
        cmocka_unit_test(test_shipped_models_forward_on_gpu),
    };
    return cmocka_run_group_tests(tests, create_pool, free_pool);
}
