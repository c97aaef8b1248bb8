/*
 * The neural codec end to end with a small random Llama model written as a
 * GGUF file: round trips across window boundaries, and the determinism
 * contract: archives identical for every thread count and SIMD level, and
 * each decodes under every other (compression evaluates a window's rows
 * together, decompression runs blocks in lockstep one row at a time).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "test_util.h"

#define DIM 48
#define HIDDEN 100
#define LAYERS 2
#define HEADS 4
#define KV_HEADS 2
#define VOCAB 256

/* The model lives alone in a private folder: the overlay test searches that
 * folder for its base by hash, and a copy anywhere else (another run's, in
 * a shared /tmp) must not be able to stand in for it. */
static char model_dir[64];
static char model_path[256];

static lmc_status add_matrix(lmc_gguf_writer *w, const char *name, int rows, int cols, uint64_t *rng) {
    int8_t *q = malloc((size_t)rows * cols);
    float *scale = malloc((size_t)rows * sizeof *scale);
    for (int i = 0; i < rows * cols; i++)
        q[i] = (int8_t)((int)(test_rng(rng) % 255) - 127);
    for (int r = 0; r < rows; r++)
        scale[r] = 0.4f / (127.0f * 8.0f);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows}, ne_scale[1] = {(uint64_t)rows};
    char scale_name[128];
    snprintf(scale_name, sizeof scale_name, "%s.scale", name);
    lmc_status status = lmc_gguf_writer_add_tensor(w, name, LMC_GGML_I8, 2, ne, q, (uint64_t)rows * cols);
    if (status == LMC_OK)
        status = lmc_gguf_writer_add_tensor(w, scale_name, LMC_GGML_F32, 1, ne_scale, scale, (uint64_t)rows * 4);
    free(q);
    free(scale);
    return status;
}

static lmc_status add_vector(lmc_gguf_writer *w, const char *name, int n, float value) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = value;
    uint64_t ne[1] = {(uint64_t)n};
    lmc_status status = lmc_gguf_writer_add_tensor(w, name, LMC_GGML_F32, 1, ne, v, (uint64_t)n * 4);
    free(v);
    return status;
}

static void write_metadata(lmc_gguf_writer *w) {
    lmc_gguf_writer_set_str(w, "general.architecture", "llama");
    lmc_gguf_writer_set_str(w, "general.name", "test-random");
    lmc_gguf_writer_set_u32(w, "llama.embedding_length", DIM);
    lmc_gguf_writer_set_u32(w, "llama.block_count", LAYERS);
    lmc_gguf_writer_set_u32(w, "llama.feed_forward_length", HIDDEN);
    lmc_gguf_writer_set_u32(w, "llama.attention.head_count", HEADS);
    lmc_gguf_writer_set_u32(w, "llama.attention.head_count_kv", KV_HEADS);
    lmc_gguf_writer_set_u32(w, "llama.context_length", 64);
    lmc_gguf_writer_set_u32(w, "llama.rope.dimension_count", DIM / HEADS);
    lmc_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    lmc_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", "lmc-bytes");
    lmc_gguf_writer_set_str(w, "lmc.default_kind", "bytes");
    /* A small window and stride so short test blocks cross several windows. */
    lmc_gguf_writer_set_u32(w, "lmc.block_size", 3000);
    lmc_gguf_writer_set_u32(w, "lmc.context_window", 40);
    lmc_gguf_writer_set_u32(w, "lmc.window_stride", 24);
}

static int write_random_model(void **state) {
    (void)state;
    snprintf(model_dir, sizeof model_dir, "/tmp/lmc-test-model-XXXXXX");
    if (!mkdtemp(model_dir))
        return -1;
    snprintf(model_path, sizeof model_path, "%s/test-random.gguf", model_dir);
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    uint64_t rng = 12345;
    write_metadata(w);
    float *embedding = malloc((size_t)VOCAB * DIM * sizeof *embedding);
    for (int i = 0; i < VOCAB * DIM; i++)
        embedding[i] = (float)((int)(test_rng(&rng) % 2001) - 1000) / 1000.0f;
    uint64_t ne[2] = {DIM, VOCAB};
    lmc_status status = lmc_gguf_writer_add_tensor(w, "token_embd.weight", LMC_GGML_F32, 2, ne, embedding,
                                                   (uint64_t)VOCAB * DIM * 4);
    free(embedding);
    static const char *const names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    const int rows[] = {DIM, DIM / HEADS * KV_HEADS, DIM / HEADS * KV_HEADS, DIM, HIDDEN, HIDDEN, DIM};
    const int cols[] = {DIM, DIM, DIM, DIM, DIM, DIM, HIDDEN};
    for (int layer = 0; layer < LAYERS && status == LMC_OK; layer++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", layer);
        status = add_vector(w, name, DIM, 1.0f);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", layer);
        if (status == LMC_OK)
            status = add_vector(w, name, DIM, 1.0f);
        for (int m = 0; m < 7 && status == LMC_OK; m++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", layer, names[m]);
            status = add_matrix(w, name, rows[m], cols[m], &rng);
        }
    }
    if (status == LMC_OK)
        status = add_vector(w, "output_norm.weight", DIM, 1.0f);
    if (status == LMC_OK)
        status = add_matrix(w, "output.weight", VOCAB, DIM, &rng);
    if (status == LMC_OK)
        status = lmc_gguf_writer_write(w, model_path);
    lmc_gguf_writer_free(w);
    return status == LMC_OK ? 0 : -1;
}

static int remove_model(void **state) {
    (void)state;
    unlink(model_path);
    rmdir(model_dir);
    return 0;
}

static lmc_options model_options(int threads) {
    lmc_options options;
    lmc_options_init(&options);
    options.model = model_path;
    options.threads = threads;
    return options;
}

/* Text with a repeated phrase, so a model with a window sees its context. */
static uint8_t *make_input(size_t size) {
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 77);
    return data;
}

static void test_round_trip_across_windows(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 2, 39, 40, 41, 64, 65, 3000, 7001};
    uint8_t *data = make_input(7001);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        lmc_options options = model_options(2);
        lmc_buf archive, output;
        lmc_buf_init(&archive);
        lmc_buf_init(&output);
        assert_int_equal(test_compress(&options, data, sizes[i], 1000, &archive), LMC_OK);
        assert_int_equal(test_decompress(&options, archive.data, archive.size, 333, &output, 0), LMC_OK);
        assert_int_equal(output.size, sizes[i]);
        assert_memory_equal(output.data, data, sizes[i]);
        lmc_buf_free(&archive);
        lmc_buf_free(&output);
    }
    free(data);
}

/* By default tokens are coded mixed with the adaptive model (codec 5);
 * --no-mix gives the model alone (codec 0). Both round-trip, and on text
 * that repeats itself the mixture codes fewer bytes. */
static void test_mixed_and_model_only(void **state) {
    (void)state;
    size_t size = 6000;
    uint8_t *data = make_input(size);
    size_t archive_size[2];
    for (int model_only = 0; model_only < 2; model_only++) {
        lmc_options options = model_options(2);
        options.model_only = model_only;
        lmc_buf archive, output;
        lmc_buf_init(&archive);
        lmc_buf_init(&output);
        assert_int_equal(test_compress(&options, data, size, 1000, &archive), LMC_OK);
        assert_int_equal(archive.data[7], model_only ? 0 : 5); /* the header's codec byte */
        assert_int_equal(test_decompress(&options, archive.data, archive.size, 777, &output, 0), LMC_OK);
        assert_int_equal(output.size, size);
        assert_memory_equal(output.data, data, size);
        archive_size[model_only] = archive.size;
        lmc_buf_free(&archive);
        lmc_buf_free(&output);
    }
    assert_true(archive_size[0] < archive_size[1]);
    free(data);
}

/* Every (threads, SIMD) pair makes the same archive, and decodes the others'. */
static void test_determinism_matrix(void **state) {
    (void)state;
    size_t size = 7001; /* three blocks: lockstep decoding of blocks of unequal length */
    uint8_t *data = make_input(size);
    static const int threads[] = {1, 2, 8};
    static const int levels[] = {LMC_SIMD_SCALAR, LMC_SIMD_AVX2, LMC_SIMD_AVX512};
    lmc_buf reference;
    lmc_buf_init(&reference);
    for (int t = 0; t < 3; t++) {
        for (int l = 0; l < 3; l++) {
            lmc_simd_force(levels[l]);
            lmc_options options = model_options(threads[t]);
            lmc_buf archive, output;
            lmc_buf_init(&archive);
            lmc_buf_init(&output);
            assert_int_equal(test_compress(&options, data, size, size, &archive), LMC_OK);
            if (reference.size == 0)
                lmc_buf_append(&reference, archive.data, archive.size);
            assert_int_equal(archive.size, reference.size);
            assert_memory_equal(archive.data, reference.data, archive.size);
            /* Decode the reference under a different thread count and level. */
            lmc_simd_force(levels[(l + 1) % 3]);
            lmc_options other = model_options(threads[(t + 1) % 3]);
            assert_int_equal(test_decompress(&other, reference.data, reference.size, 4096, &output, 0), LMC_OK);
            assert_int_equal(output.size, size);
            assert_memory_equal(output.data, data, size);
            lmc_buf_free(&archive);
            lmc_buf_free(&output);
        }
    }
    lmc_simd_force(-1);
    lmc_buf_free(&reference);
    free(data);
}

/* The wrong model is refused by hash, not silently used. */
static void test_wrong_model(void **state) {
    (void)state;
    uint8_t *data = make_input(500);
    lmc_options options = model_options(1);
    lmc_buf archive, output;
    lmc_buf_init(&archive);
    lmc_buf_init(&output);
    assert_int_equal(test_compress(&options, data, 500, 500, &archive), LMC_OK);
    archive.data[40] ^= 1; /* inside the model hash: caught by the header check first */
    assert_int_equal(test_decompress(&options, archive.data, archive.size, 4096, &output, 1), LMC_ERR_CORRUPT);
    archive.data[40] ^= 1;
    /* A model file with other bytes is a different model. */
    char other[300];
    snprintf(other, sizeof other, "%s.other.gguf", model_path);
    FILE *in = fopen(model_path, "rb"), *out = fopen(other, "wb");
    int c;
    while ((c = fgetc(in)) != EOF)
        fputc(c, out);
    fputc(0, out);
    fclose(in);
    fclose(out);
    setenv("LMC_MODELS", "/nonexistent", 1);
    lmc_options wrong = model_options(1);
    wrong.model = other;
    assert_int_equal(test_decompress(&wrong, archive.data, archive.size, 4096, &output, 1), LMC_ERR_MODEL_MISMATCH);
    unlink(other);
    lmc_buf_free(&archive);
    lmc_buf_free(&output);
    free(data);
}

/* An overlay (the base's metadata, lmc.base_model_hash, and one replaced
 * tensor) codes with the replaced tensor and the base's others: its archive
 * differs from the base's, round-trips, and records the overlay's hash; with
 * the base missing, loading fails and names it. */
static void test_overlay_model(void **state) {
    (void)state;
    char folder[128], overlay_path[256], moved_base[300];
    snprintf(folder, sizeof folder, "/tmp/lmc-test-overlay-%d", (int)getpid());
    assert_int_equal(mkdir(folder, 0700), 0);
    snprintf(overlay_path, sizeof overlay_path, "%s/overlay.gguf", folder);
    uint8_t base_hash[16];
    lmc_model *base;
    lmc_message message;
    assert_int_equal(lmc_model_load(model_path, 0, &base, &message), LMC_OK);
    memcpy(base_hash, base->hash, 16);
    lmc_model_free(base);
    char hex[33];
    lmc_hash_hex(base_hash, hex);
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    write_metadata(w);
    lmc_gguf_writer_set_str(w, "general.name", "test-overlay");
    lmc_gguf_writer_set_str(w, "lmc.base_model", "test-random");
    lmc_gguf_writer_set_str(w, "lmc.base_model_hash", hex);
    assert_int_equal(add_vector(w, "blk.1.ffn_norm.weight", DIM, 3.0f), LMC_OK);
    assert_int_equal(lmc_gguf_writer_write(w, overlay_path), LMC_OK);
    lmc_gguf_writer_free(w);

    uint8_t *data = make_input(2000);
    lmc_options options = model_options(2);
    lmc_buf with_base, with_overlay, output;
    lmc_buf_init(&with_base);
    lmc_buf_init(&with_overlay);
    lmc_buf_init(&output);
    assert_int_equal(test_compress(&options, data, 2000, 2000, &with_base), LMC_OK);
    /* The base is found by hash in the search folders (LMC_MODELS). */
    setenv("LMC_MODELS", model_dir, 1);
    options.model = overlay_path;
    assert_int_equal(test_compress(&options, data, 2000, 2000, &with_overlay), LMC_OK);
    assert_true(with_base.size != with_overlay.size || memcmp(with_base.data, with_overlay.data, with_base.size));
    assert_int_equal(test_decompress(&options, with_overlay.data, with_overlay.size, 500, &output, 0), LMC_OK);
    assert_int_equal(output.size, 2000);
    assert_memory_equal(output.data, data, 2000);
    /* Without its base, the overlay does not load. */
    snprintf(moved_base, sizeof moved_base, "%s/elsewhere.bin", folder);
    assert_int_equal(rename(model_path, moved_base), 0);
    lmc_buf_free(&output);
    lmc_buf_init(&output);
    assert_int_equal(test_decompress(&options, with_overlay.data, with_overlay.size, 500, &output, 1),
                     LMC_ERR_MODEL_NOT_FOUND);
    assert_int_equal(rename(moved_base, model_path), 0);
    unlink(overlay_path);
    rmdir(folder);
    lmc_buf_free(&with_base);
    lmc_buf_free(&with_overlay);
    lmc_buf_free(&output);
    free(data);
}

/* Every truncation and every bit flip of a small neural archive fails
 * cleanly, or (if the flip hit nothing that matters) decodes the same data. */
static void test_corruption_sweep(void **state) {
    (void)state;
    size_t size = 300;
    uint8_t *data = make_input(size);
    lmc_options options = model_options(1);
    lmc_buf archive;
    lmc_buf_init(&archive);
    assert_int_equal(test_compress(&options, data, size, size, &archive), LMC_OK);
    for (size_t cut = 0; cut < archive.size; cut++) {
        lmc_buf output;
        lmc_buf_init(&output);
        assert_int_not_equal(test_decompress(&options, archive.data, cut, 4096, &output, 1), LMC_OK);
        lmc_buf_free(&output);
    }
    for (size_t bit = 0; bit < archive.size * 8; bit++) {
        archive.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        lmc_buf output;
        lmc_buf_init(&output);
        if (test_decompress(&options, archive.data, archive.size, 4096, &output, 1) == LMC_OK) {
            assert_int_equal(output.size, size);
            assert_memory_equal(output.data, data, size);
        }
        lmc_buf_free(&output);
        archive.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    lmc_buf_free(&archive);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_across_windows),
        cmocka_unit_test(test_mixed_and_model_only),
        cmocka_unit_test(test_overlay_model),
        cmocka_unit_test(test_determinism_matrix),
        cmocka_unit_test(test_wrong_model),
        cmocka_unit_test(test_corruption_sweep),
    };
    return cmocka_run_group_tests(tests, write_random_model, remove_model);
}
