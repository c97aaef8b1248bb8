/*
 * GGUF reading and writing, tensor types and model loading.
 *
 * The writer and reader round-trip every metadata type; the real
 * vocabulary-only files of llama.cpp load; every tensor type dequantises to
 * exactly the values of the ggml formulas (blocks are built here by a
 * reference encoder that knows the integers it chose, so the expected
 * values never come from the library's decoder); malformed files (every
 * truncation, every byte corrupted, absurd counts, sizes and offsets) give
 * errors, never crashes; and synthetic models of each supported
 * architecture load into the engine's matrices.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, mkdtemp */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <unistd.h>

#include "model/model.h"
#include "test_util.h"

/* ==================================================================== helpers */

static float rng_float(uint64_t *state) {
    /* Uniform in [-1, 1). */
    return (float)((double)(test_rng(state) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* float -> IEEE half by truncation, for values in the normal half range
 * (the tests only need some exact half near the value). */
static uint16_t to_half(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint32_t sign = (bits >> 16) & 0x8000u;
    int exponent = (int)((bits >> 23) & 0xff) - 127 + 15;
    if ((bits & 0x7fffffffu) == 0 || exponent <= 0) return (uint16_t)sign;
    assert_true(exponent < 31);
    return (uint16_t)(sign | (uint32_t)exponent << 10 | ((bits >> 13) & 0x3ffu));
}

static void put_le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void buf_u32(lmc_buf *b, uint32_t v) {
    uint8_t bytes[4];
    lmc_put_le32(bytes, v);
    assert_int_equal(lmc_buf_append(b, bytes, 4), LMC_OK);
}

static void buf_u64(lmc_buf *b, uint64_t v) {
    uint8_t bytes[8];
    lmc_put_le64(bytes, v);
    assert_int_equal(lmc_buf_append(b, bytes, 8), LMC_OK);
}

static void buf_str(lmc_buf *b, const char *s) {
    buf_u64(b, strlen(s));
    assert_int_equal(lmc_buf_append(b, s, strlen(s)), LMC_OK);
}

static void buf_header(lmc_buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    assert_int_equal(lmc_buf_append(b, "GGUF", 4), LMC_OK);
    buf_u32(b, version);
    buf_u64(b, n_tensors);
    buf_u64(b, n_kv);
}

static void buf_kv_u32(lmc_buf *b, const char *key, uint32_t v) {
    buf_str(b, key);
    buf_u32(b, LMC_GGUF_UINT32);
    buf_u32(b, v);
}

static void buf_tensor_info(lmc_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                            uint64_t offset) {
    buf_str(b, name);
    buf_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) buf_u64(b, ne[d]);
    buf_u32(b, type);
    buf_u64(b, offset);
}

static void buf_pad(lmc_buf *b, size_t alignment, size_t extra_bytes) {
    while (b->size % alignment) assert_int_equal(lmc_buf_append_byte(b, 0), LMC_OK);
    for (size_t i = 0; i < extra_bytes; i++) assert_int_equal(lmc_buf_append_byte(b, (uint8_t)i), LMC_OK);
}

/* Reads every key, value, array element and (small) tensor, as a user of a
 * hostile file would; sanitizers catch any out-of-bounds access. */
static void walk_everything(const lmc_gguf *g) {
    size_t size;
    const uint8_t *bytes = lmc_gguf_bytes(g, &size);
    for (int i = 0; i < lmc_gguf_n_kv(g); i++) {
        const char *key = lmc_gguf_key(g, i);
        assert_non_null(key);
        assert_int_equal(lmc_gguf_find(g, key), i);
        uint64_t u64, count;
        uint32_t u32;
        float f32;
        int b;
        lmc_gguf_string s;
        lmc_gguf_value_type elem;
        (void)lmc_gguf_get_u64(g, key, &u64);
        (void)lmc_gguf_get_u32(g, key, &u32);
        (void)lmc_gguf_get_f32(g, key, &f32);
        (void)lmc_gguf_get_bool(g, key, &b);
        if (lmc_gguf_get_str(g, key, &s) == 0 && s.size)
            assert_true((const uint8_t *)s.data >= bytes && (const uint8_t *)s.data + s.size <= bytes + size);
        if (lmc_gguf_get_array(g, key, &elem, &count) == 0) {
            (void)lmc_gguf_array_data(g, key);
            for (uint64_t j = 0; j < count && j < 4096; j++) {
                lmc_gguf_string e = lmc_gguf_array_str(g, key, j);
                if (e.size) assert_true((const uint8_t *)e.data + e.size <= bytes + size);
                (void)lmc_gguf_array_num(g, key, j);
            }
        }
    }
    for (int i = 0; i < lmc_gguf_n_tensors(g); i++) {
        const lmc_gguf_tensor *t = lmc_gguf_tensor_at(g, i);
        assert_ptr_equal(lmc_gguf_tensor_find(g, t->name), t);
        assert_true((const uint8_t *)t->data >= bytes && (const uint8_t *)t->data + t->n_bytes <= bytes + size);
        if (t->n_elements <= 4096) {
            float *out = malloc((size_t)LMC_MAX(t->n_elements, 1) * sizeof *out);
            assert_non_null(out);
            lmc_message m;
            (void)lmc_tensor_to_f32(t, out, &m);
            free(out);
        }
    }
}

/* Opens a copy of exactly `size` bytes (so sanitizers see any overread). */
static lmc_status open_copy(const uint8_t *data, size_t size, lmc_message *m) {
    uint8_t *copy = malloc(LMC_MAX(size, 1));
    assert_non_null(copy);
    if (size) memcpy(copy, data, size);
    lmc_gguf *g = NULL;
    lmc_status status = lmc_gguf_open_memory(copy, size, &g, m);
    if (status == LMC_OK) {
        walk_everything(g);
        lmc_gguf_close(g);
    } else {
        assert_null(g);
        assert_true(strlen(m->text) > 0);
    }
    free(copy);
    return status;
}

static void expect_invalid(const lmc_buf *b, const char *message_part) {
    lmc_message m = {{0}};
    lmc_status status = open_copy(b->data, b->size, &m);
    if (status == LMC_OK || !strstr(m.text, message_part))
        fail_msg("expected an error containing '%s', got status %d: '%s'", message_part, status, m.text);
    assert_int_equal(status, LMC_ERR_MODEL_INVALID);
}

static void expect_valid(const lmc_buf *b) {
    lmc_message m = {{0}};
    lmc_status status = open_copy(b->data, b->size, &m);
    if (status != LMC_OK) fail_msg("expected a valid file, got '%s'", m.text);
}

/* ==================================================================== metadata */

static void test_metadata_round_trip(void **state) {
    (void)state;
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    assert_non_null(w);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int32_t i32 = -2000000000;
    uint64_t u64 = 0x123456789abcdef0ull;
    int64_t i64 = -0x123456789abcdefll;
    double f64 = 3.141592653589793;
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.u8", LMC_GGUF_UINT8, &u8), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.i8", LMC_GGUF_INT8, &i8), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.u16", LMC_GGUF_UINT16, &u16), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.i16", LMC_GGUF_INT16, &i16), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_u32(w, "t.u32", 4000000000u), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.i32", LMC_GGUF_INT32, &i32), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_f32(w, "t.f32", -1.5f), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_bool(w, "t.bool", 7), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_str(w, "t.str", "héllo"), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.u64", LMC_GGUF_UINT64, &u64), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.i64", LMC_GGUF_INT64, &i64), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "t.f64", LMC_GGUF_FLOAT64, &f64), LMC_OK);
    const float floats[3] = {1.0f, -2.5f, 1e-30f};
    const int16_t shorts[4] = {-1, 2, -3, 32767};
    const uint8_t bools[2] = {1, 0};
    assert_int_equal(lmc_gguf_writer_set_array(w, "a.f32", LMC_GGUF_FLOAT32, floats, 3), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_array(w, "a.i16", LMC_GGUF_INT16, shorts, 4), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_array(w, "a.bool", LMC_GGUF_BOOL, bools, 2), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_array(w, "a.empty", LMC_GGUF_UINT64, NULL, 0), LMC_OK);
    const char *strings[3] = {"a", "", "with\0nul"};
    const uint64_t lengths[3] = {1, 0, 8};
    assert_int_equal(lmc_gguf_writer_set_str_array(w, "a.str", strings, lengths, 3), LMC_OK);
    /* Duplicate keys, strings as numeric arrays and empty keys are refused. */
    assert_int_equal(lmc_gguf_writer_set_u32(w, "t.u32", 1), LMC_ERR_PARAM);
    assert_int_equal(lmc_gguf_writer_set_array(w, "a.bad", LMC_GGUF_STRING, strings, 1), LMC_ERR_PARAM);
    assert_int_equal(lmc_gguf_writer_set_u32(w, "", 1), LMC_ERR_PARAM);

    lmc_buf file;
    lmc_buf_init(&file);
    assert_int_equal(lmc_gguf_writer_write_buf(w, &file), LMC_OK);
    lmc_gguf_writer_free(w);
    lmc_gguf *g;
    lmc_message m;
    assert_int_equal(lmc_gguf_open_memory(file.data, file.size, &g, &m), LMC_OK);
    assert_int_equal(lmc_gguf_version(g), 3);
    assert_int_equal(lmc_gguf_n_kv(g), 17);
    assert_int_equal(lmc_gguf_n_tensors(g), 0);
    assert_string_equal(lmc_gguf_key(g, 0), "t.u8");
    assert_int_equal(lmc_gguf_type(g, 0), LMC_GGUF_UINT8);
    assert_int_equal(lmc_gguf_type(g, lmc_gguf_find(g, "t.f64")), LMC_GGUF_FLOAT64);
    assert_int_equal(lmc_gguf_find(g, "missing"), -1);
    assert_null(lmc_gguf_key(g, 17));

    uint64_t v64;
    uint32_t v32;
    float f;
    int b;
    assert_int_equal(lmc_gguf_get_u64(g, "t.u8", &v64), 0);
    assert_int_equal(v64, 200);
    assert_int_equal(lmc_gguf_get_u64(g, "t.i8", &v64), -1); /* negative */
    assert_int_equal(lmc_gguf_get_u32(g, "t.u16", &v32), 0);
    assert_int_equal(v32, 60000);
    assert_int_equal(lmc_gguf_get_u32(g, "t.u32", &v32), 0);
    assert_int_equal(v32, 4000000000u);
    assert_int_equal(lmc_gguf_get_u64(g, "t.u64", &v64), 0);
    assert_true(v64 == u64);
    assert_int_equal(lmc_gguf_get_u32(g, "t.u64", &v32), -1); /* does not fit */
    assert_int_equal(lmc_gguf_get_u64(g, "t.i64", &v64), -1);
    assert_int_equal(lmc_gguf_get_u64(g, "t.str", &v64), -1);
    assert_int_equal(lmc_gguf_get_f32(g, "t.f32", &f), 0);
    assert_true(f == -1.5f);
    assert_int_equal(lmc_gguf_get_f32(g, "t.f64", &f), 0);
    assert_true(f == (float)f64);
    assert_int_equal(lmc_gguf_get_f32(g, "t.u32", &f), -1);
    assert_int_equal(lmc_gguf_get_bool(g, "t.bool", &b), 0);
    assert_int_equal(b, 1);
    lmc_gguf_string s;
    assert_int_equal(lmc_gguf_get_str(g, "t.str", &s), 0);
    assert_int_equal(s.size, 6);
    assert_memory_equal(s.data, "héllo", 6);
    assert_int_equal(lmc_gguf_get_str(g, "t.u8", &s), -1);

    lmc_gguf_value_type elem;
    uint64_t count;
    assert_int_equal(lmc_gguf_get_array(g, "a.f32", &elem, &count), 0);
    assert_int_equal(elem, LMC_GGUF_FLOAT32);
    assert_int_equal(count, 3);
    assert_memory_equal(lmc_gguf_array_data(g, "a.f32"), floats, sizeof floats);
    assert_true(lmc_gguf_array_num(g, "a.f32", 2) == (double)1e-30f);
    assert_true(lmc_gguf_array_num(g, "a.i16", 0) == -1.0);
    assert_true(lmc_gguf_array_num(g, "a.i16", 3) == 32767.0);
    assert_true(lmc_gguf_array_num(g, "a.i16", 4) == 0.0); /* out of range */
    assert_true(lmc_gguf_array_num(g, "a.bool", 0) == 1.0);
    assert_int_equal(lmc_gguf_get_array(g, "a.empty", &elem, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(lmc_gguf_get_array(g, "a.str", &elem, &count), 0);
    assert_int_equal(elem, LMC_GGUF_STRING);
    assert_int_equal(count, 3);
    assert_null(lmc_gguf_array_data(g, "a.str"));
    lmc_gguf_string e = lmc_gguf_array_str(g, "a.str", 2);
    assert_int_equal(e.size, 8);
    assert_memory_equal(e.data, "with\0nul", 8);
    assert_int_equal(lmc_gguf_array_str(g, "a.str", 1).size, 0);
    assert_null(lmc_gguf_array_str(g, "a.str", 3).data);
    assert_null(lmc_gguf_array_str(g, "a.f32", 0).data);
    assert_int_equal(lmc_gguf_get_array(g, "t.u8", &elem, &count), -1);
    lmc_gguf_close(g);
    lmc_buf_free(&file);
}

/* Arrays of arrays (which no lmc key uses) are read past correctly. */
static void test_nested_arrays(void **state) {
    (void)state;
    lmc_buf b;
    lmc_buf_init(&b);
    buf_header(&b, 3, 0, 3);
    buf_str(&b, "nested");
    buf_u32(&b, LMC_GGUF_ARRAY);
    buf_u32(&b, LMC_GGUF_ARRAY); /* two arrays ... */
    buf_u64(&b, 2);
    buf_u32(&b, LMC_GGUF_UINT16); /* ... of three u16 */
    buf_u64(&b, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(lmc_buf_append(&b, "\x01\x02", 2), LMC_OK);
    buf_u32(&b, LMC_GGUF_STRING); /* ... and of two strings */
    buf_u64(&b, 2);
    buf_str(&b, "x");
    buf_str(&b, "yz");
    buf_str(&b, "deep");
    buf_u32(&b, LMC_GGUF_ARRAY);
    for (int depth = 0; depth < 7; depth++) {
        buf_u32(&b, LMC_GGUF_ARRAY);
        buf_u64(&b, 1);
    }
    buf_u32(&b, LMC_GGUF_INT8);
    buf_u64(&b, 0);
    buf_kv_u32(&b, "after", 77);
    lmc_gguf *g;
    lmc_message m;
    assert_int_equal(lmc_gguf_open_memory(b.data, b.size, &g, &m), LMC_OK);
    lmc_gguf_value_type elem;
    uint64_t count;
    assert_int_equal(lmc_gguf_get_array(g, "nested", &elem, &count), 0);
    assert_int_equal(elem, LMC_GGUF_ARRAY);
    assert_int_equal(count, 2);
    assert_null(lmc_gguf_array_data(g, "nested"));
    assert_null(lmc_gguf_array_str(g, "nested", 0).data);
    uint32_t after;
    assert_int_equal(lmc_gguf_get_u32(g, "after", &after), 0);
    assert_int_equal(after, 77);
    lmc_gguf_close(g);

    /* One level deeper than the reader allows. */
    lmc_buf too_deep;
    lmc_buf_init(&too_deep);
    buf_header(&too_deep, 3, 0, 1);
    buf_str(&too_deep, "deep");
    buf_u32(&too_deep, LMC_GGUF_ARRAY);
    for (int depth = 0; depth < 9; depth++) {
        buf_u32(&too_deep, LMC_GGUF_ARRAY);
        buf_u64(&too_deep, 1);
    }
    buf_u32(&too_deep, LMC_GGUF_INT8);
    buf_u64(&too_deep, 0);
    expect_invalid(&too_deep, "nested too deeply");
    lmc_buf_free(&too_deep);
    lmc_buf_free(&b);
}

/* ==================================================================== tensors */

static void test_tensor_round_trip_and_alignment(void **state) {
    (void)state;
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    const uint8_t bytes3[3] = {1, 2, 3};
    float floats[15];
    for (int i = 0; i < 15; i++) floats[i] = (float)i * 0.25f - 1.0f;
    uint64_t ne3[1] = {3}, ne53[2] = {5, 3}, ne1[4] = {1, 1, 1, 1};
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "a", LMC_GGML_I8, 1, ne3, bytes3, 3), LMC_OK);
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "b", LMC_GGML_F32, 2, ne53, floats, sizeof floats), LMC_OK);
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "c", LMC_GGML_F32, 4, ne1, floats, 4), LMC_OK);
    /* Wrong byte count, duplicate name, block size not dividing ne[0]. */
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "d", LMC_GGML_F32, 1, ne3, floats, 8), LMC_ERR_PARAM);
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "a", LMC_GGML_I8, 1, ne3, bytes3, 3), LMC_ERR_PARAM);
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "e", LMC_GGML_Q8_0, 1, ne3, bytes3, 3), LMC_ERR_PARAM);
    assert_int_equal(lmc_gguf_writer_set_str(w, "general.name", "tensors"), LMC_OK);
    lmc_buf file;
    lmc_buf_init(&file);
    assert_int_equal(lmc_gguf_writer_write_buf(w, &file), LMC_OK);

    /* The file writer gives the same bytes. */
    char path[] = "/tmp/lmc_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(lmc_gguf_writer_write(w, path), LMC_OK);
    lmc_gguf_writer_free(w);
    lmc_gguf *g;
    lmc_message m;
    assert_int_equal(lmc_gguf_open(path, &g, &m), LMC_OK);
    size_t size;
    const uint8_t *mapped = lmc_gguf_bytes(g, &size);
    assert_int_equal(size, file.size);
    assert_memory_equal(mapped, file.data, size);
    assert_int_equal(lmc_gguf_n_tensors(g), 3);
    const lmc_gguf_tensor *a = lmc_gguf_tensor_find(g, "a"), *b = lmc_gguf_tensor_find(g, "b");
    const lmc_gguf_tensor *c = lmc_gguf_tensor_at(g, 2);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(c->name, "c");
    assert_null(lmc_gguf_tensor_find(g, "d"));
    assert_null(lmc_gguf_tensor_at(g, 3));
    assert_int_equal(a->type, LMC_GGML_I8);
    assert_int_equal(a->n_dims, 1);
    assert_int_equal(a->n_elements, 3);
    assert_int_equal(a->n_bytes, 3);
    assert_memory_equal(a->data, bytes3, 3);
    assert_int_equal(b->n_dims, 2);
    assert_int_equal(b->ne[0], 5);
    assert_int_equal(b->ne[1], 3);
    assert_int_equal(b->ne[2], 1);
    assert_int_equal(b->n_elements, 15);
    assert_memory_equal(b->data, floats, sizeof floats);
    assert_int_equal(c->n_dims, 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(((const uint8_t *)lmc_gguf_tensor_at(g, i)->data - mapped) % 32, 0);
    float out[15];
    assert_int_equal(lmc_tensor_to_f32(b, out, &m), LMC_OK);
    assert_memory_equal(out, floats, sizeof floats);
    assert_int_equal(lmc_tensor_rows_to_f32(b, 1, 2, out, &m), LMC_OK);
    assert_memory_equal(out, floats + 5, 10 * sizeof(float));
    assert_int_equal(lmc_tensor_rows_to_f32(b, 2, 2, out, &m), LMC_ERR_PARAM);
    lmc_gguf_close(g);
    unlink(path);
    lmc_buf_free(&file);
}

/* general.alignment moves tensor data to its own boundary. */
static void test_custom_alignment(void **state) {
    (void)state;
    for (int variant = 0; variant < 5; variant++) {
        static const uint32_t alignments[] = {64, 64, 48, 0, 64};
        lmc_buf b;
        lmc_buf_init(&b);
        uint64_t ne[1] = {4};
        buf_header(&b, 2, 2, 1);
        if (variant == 4) {
            buf_str(&b, "general.alignment");
            buf_u32(&b, LMC_GGUF_UINT64);
            buf_u64(&b, 64);
        } else {
            buf_kv_u32(&b, "general.alignment", alignments[variant]);
        }
        buf_tensor_info(&b, "x", 1, ne, LMC_GGML_F32, 0);
        buf_tensor_info(&b, "y", 1, ne, LMC_GGML_F32, variant == 1 ? 32 : 64);
        buf_pad(&b, 64, 128);
        if (variant == 0) {
            lmc_gguf *g;
            lmc_message m;
            assert_int_equal(lmc_gguf_open_memory(b.data, b.size, &g, &m), LMC_OK);
            assert_int_equal(lmc_gguf_version(g), 2);
            const lmc_gguf_tensor *y = lmc_gguf_tensor_find(g, "y");
            assert_int_equal((const uint8_t *)y->data - b.data, (b.size - 128) + 64);
            assert_int_equal(((const uint8_t *)y->data)[0], 64);
            lmc_gguf_close(g);
        } else {
            expect_invalid(&b, variant == 1 ? "not aligned" : variant == 4 ? "not a uint32" : "power of two");
        }
        lmc_buf_free(&b);
    }
}

/* ==================================================================== real files */

static const char *shared_dir(void) {
    const char *dir = getenv("LMC_SHARED_DIR");
    return dir ? dir : LMC_TEST_SHARED_DIR;
}

static void test_vocab_only_files(void **state) {
    (void)state;
    static const struct {
        const char *name, *model, *token0;
        uint64_t n_tokens;
        uint64_t n_merges;
    } files[] = {
        {"llama-bpe", "gpt2", "!", 128256, 280147},
        {"gpt-2", "gpt2", "!", 50257, 50000},
        {"llama-spm", "llama", "<unk>", 32000, 0},
        {"starcoder", "gpt2", "<|endoftext|>", 49152, 48872},
    };
    char path[1024];
    snprintf(path, sizeof path, "%s/peer/gguf-vocab", shared_dir());
    if (access(path, R_OK) != 0) {
        print_message("skipped: %s is missing\n", path);
        skip();
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/peer/gguf-vocab/ggml-vocab-%s.gguf", shared_dir(), files[i].name);
        lmc_gguf *g;
        lmc_message m;
        if (lmc_gguf_open(path, &g, &m) != LMC_OK) fail_msg("%s: %s", path, m.text);
        assert_int_equal(lmc_gguf_n_tensors(g), 0);
        lmc_gguf_string s;
        assert_int_equal(lmc_gguf_get_str(g, "general.name", &s), 0);
        assert_int_equal(s.size, strlen(files[i].name));
        assert_memory_equal(s.data, files[i].name, s.size);
        assert_int_equal(lmc_gguf_get_str(g, "tokenizer.ggml.model", &s), 0);
        assert_memory_equal(s.data, files[i].model, s.size);
        lmc_gguf_value_type elem;
        uint64_t count;
        assert_int_equal(lmc_gguf_get_array(g, "tokenizer.ggml.tokens", &elem, &count), 0);
        assert_int_equal(elem, LMC_GGUF_STRING);
        assert_int_equal(count, files[i].n_tokens);
        s = lmc_gguf_array_str(g, "tokenizer.ggml.tokens", 0);
        assert_int_equal(s.size, strlen(files[i].token0));
        assert_memory_equal(s.data, files[i].token0, s.size);
        assert_int_equal(lmc_gguf_get_array(g, "tokenizer.ggml.token_type", &elem, &count), 0);
        assert_int_equal(count, files[i].n_tokens);
        if (files[i].n_merges) {
            assert_int_equal(lmc_gguf_get_array(g, "tokenizer.ggml.merges", &elem, &count), 0);
            assert_int_equal(count, files[i].n_merges);
        }
        walk_everything(g);
        lmc_gguf_close(g);
        /* Not a model: no weights. */
        lmc_model *model;
        assert_int_equal(lmc_model_load_weights(path, 0, &model, &m), LMC_ERR_MODEL_INVALID);
        assert_null(model);
    }
    /* The SentencePiece file's byte tokens and scores. */
    snprintf(path, sizeof path, "%s/peer/gguf-vocab/ggml-vocab-llama-spm.gguf", shared_dir());
    lmc_gguf *g;
    lmc_message m;
    assert_int_equal(lmc_gguf_open(path, &g, &m), LMC_OK);
    lmc_gguf_string s = lmc_gguf_array_str(g, "tokenizer.ggml.tokens", 3);
    assert_memory_equal(s.data, "<0x00>", 6);
    assert_true(lmc_gguf_array_num(g, "tokenizer.ggml.token_type", 3) == 6.0);
    assert_true(lmc_gguf_array_num(g, "tokenizer.ggml.scores", 1000) < 0.0);
    uint32_t bos;
    assert_int_equal(lmc_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos), 0);
    assert_int_equal(bos, 1);
    lmc_gguf_close(g);
}

/* ==================================================================== dequantisation */

/* Reference of IEEE half semantics from first principles (ldexp). */
static void test_half_conversion_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        int exponent = (h >> 10) & 31, mantissa = h & 1023;
        double magnitude = exponent == 0 ? ldexp(mantissa, -24)
                           : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                            : ldexp(1024 + mantissa, exponent - 25);
        float want = (float)((h & 0x8000) ? -magnitude : magnitude);
        float got = lmc_half_to_float((uint16_t)h);
        if (isnan(want)) {
            assert_true(isnan(got));
            uint32_t bits;
            memcpy(&bits, &got, 4);
            assert_int_equal((bits >> 13) & 1023, mantissa); /* payload kept */
        } else {
            assert_memory_equal(&got, &want, 4);
        }
    }
}

#define TEST_ROW 512
#define TEST_ROWS 3
#define TEST_N (TEST_ROW * TEST_ROWS)

/* A reference encoder fills `blocks` with an encoding of x and writes into
 * `expected` the value each element must decode to under the ggml formula,
 * computed from the integers it chose. */
typedef void (*encoder_fn)(const float *x, uint8_t *blocks, float *expected);

static float half_value(uint16_t h) { return lmc_half_to_float(h); }

static int clamp_int(long v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : (int)v; }

static float abs_max(const float *x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

static void min_max(const float *x, int n, float *lo, float *hi) {
    *lo = *hi = x[0];
    for (int i = 1; i < n; i++) {
        *lo = fminf(*lo, x[i]);
        *hi = fmaxf(*hi, x[i]);
    }
}

/* Q8_0: half d, 32 x int8; x = q * d. */
static void encode_q8_0(const float *x, uint8_t *out, float *expected) {
    for (int b = 0; b < TEST_N / 32; b++, x += 32, expected += 32, out += 34) {
        uint16_t dh = to_half(abs_max(x, 32) / 127.0f);
        float d = half_value(dh);
        put_le16(out, dh);
        for (int j = 0; j < 32; j++) {
            int q = clamp_int(lroundf(x[j] / d), -127, 127);
            out[2 + j] = (uint8_t)(int8_t)q;
            expected[j] = (float)q * d;
        }
    }
}

/* Q4_0: half d, nibbles (value j low, value j + 16 high); x = (q - 8) * d. */
static void encode_q4_0(const float *x, uint8_t *out, float *expected) {
    for (int b = 0; b < TEST_N / 32; b++, x += 32, expected += 32, out += 18) {
        uint16_t dh = to_half(abs_max(x, 32) / 7.0f);
        float d = half_value(dh);
        put_le16(out, dh);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = clamp_int(lroundf(x[j] / d) + 8, 0, 15);
            expected[j] = (float)(q[j] - 8) * d;
        }
        for (int j = 0; j < 16; j++) out[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
    }
}

/* Q4_1: half d, half m, nibbles; x = q * d + m. */
static void encode_q4_1(const float *x, uint8_t *out, float *expected) {
    for (int b = 0; b < TEST_N / 32; b++, x += 32, expected += 32, out += 20) {
        float lo, hi;
        min_max(x, 32, &lo, &hi);
        uint16_t dh = to_half((hi - lo) / 15.0f), mh = to_half(lo);
        float d = half_value(dh), m = half_value(mh);
        put_le16(out, dh);
        put_le16(out + 2, mh);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = clamp_int(lroundf((x[j] - m) / d), 0, 15);
            expected[j] = (float)q[j] * d + m;
        }
        for (int j = 0; j < 16; j++) out[4 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
    }
}

/* The fifth bits of 32 five-bit values: bit j of the little-endian word. */
static void pack_q5(const int *q, uint8_t *qh, uint8_t *qs) {
    uint32_t high = 0;
    for (int j = 0; j < 32; j++) high |= (uint32_t)((q[j] >> 4) & 1) << j;
    lmc_put_le32(qh, high);
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

/* Q5_0: half d, u32 qh, nibbles; x = (q - 16) * d. */
static void encode_q5_0(const float *x, uint8_t *out, float *expected) {
    for (int b = 0; b < TEST_N / 32; b++, x += 32, expected += 32, out += 22) {
        uint16_t dh = to_half(abs_max(x, 32) / 15.0f);
        float d = half_value(dh);
        put_le16(out, dh);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = clamp_int(lroundf(x[j] / d) + 16, 0, 31);
            expected[j] = (float)(q[j] - 16) * d;
        }
        pack_q5(q, out + 2, out + 6);
    }
}

/* Q5_1: half d, half m, u32 qh, nibbles; x = q * d + m. */
static void encode_q5_1(const float *x, uint8_t *out, float *expected) {
    for (int b = 0; b < TEST_N / 32; b++, x += 32, expected += 32, out += 24) {
        float lo, hi;
        min_max(x, 32, &lo, &hi);
        uint16_t dh = to_half((hi - lo) / 31.0f), mh = to_half(lo);
        float d = half_value(dh), m = half_value(mh);
        put_le16(out, dh);
        put_le16(out + 2, mh);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = clamp_int(lroundf((x[j] - m) / d), 0, 31);
            expected[j] = (float)q[j] * d + m;
        }
        pack_q5(q, out + 4, out + 8);
    }
}

/* The 12 bytes of Q4_K/Q5_K's eight 6-bit scales and mins. */
static void pack_k_scales(const int *sc, const int *mn, uint8_t *s) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
}

/* Q4_K / Q5_K: eight sub-blocks of 32 with 6-bit scale and min over half
 * d and dmin; x = (d * sc) * q - (dmin * m). bits is 4 or 5. */
static void encode_k(const float *x, uint8_t *out, float *expected, int bits) {
    int levels = (1 << bits) - 1, block_bytes = bits == 4 ? 144 : 176;
    for (int b = 0; b < TEST_N / 256; b++, x += 256, expected += 256, out += block_bytes) {
        float scale[8], neg_min[8], max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 8; j++) {
            float lo, hi;
            min_max(x + 32 * j, 32, &lo, &hi);
            lo = fminf(lo, 0.0f);
            scale[j] = (hi - lo) / (float)levels;
            neg_min[j] = -lo;
            max_scale = fmaxf(max_scale, scale[j]);
            max_min = fmaxf(max_min, neg_min[j]);
        }
        uint16_t dh = to_half(max_scale / 63.0f), dminh = to_half(max_min / 63.0f);
        float d = half_value(dh), dmin = half_value(dminh);
        put_le16(out, dh);
        put_le16(out + 2, dminh);
        int sc[8], mn[8], q[256];
        for (int j = 0; j < 8; j++) {
            sc[j] = clamp_int(lroundf(scale[j] / d), 1, 63);
            mn[j] = clamp_int(lroundf(neg_min[j] / dmin), 0, 63);
            float ds = d * (float)sc[j], dm = dmin * (float)mn[j];
            for (int l = 0; l < 32; l++) {
                int k = 32 * j + l;
                q[k] = clamp_int(lroundf((x[k] + dm) / ds), 0, levels);
                expected[k] = ds * (float)q[k] - dm;
            }
        }
        pack_k_scales(sc, mn, out + 4);
        uint8_t *qh = out + 16, *qs = out + (bits == 4 ? 16 : 48);
        if (bits == 5) memset(qh, 0, 32);
        for (int i = 0; i < 4; i++)
            for (int l = 0; l < 32; l++) {
                int lo = q[64 * i + l], hi = q[64 * i + 32 + l];
                qs[32 * i + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
                if (bits == 5) qh[l] |= (uint8_t)(((lo >> 4) & 1) << (2 * i) | ((hi >> 4) & 1) << (2 * i + 1));
            }
    }
}

static void encode_q4_k(const float *x, uint8_t *out, float *expected) { encode_k(x, out, expected, 4); }
static void encode_q5_k(const float *x, uint8_t *out, float *expected) { encode_k(x, out, expected, 5); }

/* Q6_K: ql[128], qh[64], int8 scales[16] (one per 16 values), half d;
 * x = (d * sc) * (q - 32). In each half of 128 values, value l + 32k
 * takes a nibble of ql[l] (k even) or ql[l + 32] (k odd), low for k < 2,
 * and bits 2k..2k+1 of qh[l]. */
static void encode_q6_k(const float *x, uint8_t *out, float *expected) {
    for (int b = 0; b < TEST_N / 256; b++, x += 256, expected += 256, out += 210) {
        float scale[16], max_scale = 0.0f;
        for (int j = 0; j < 16; j++) {
            scale[j] = abs_max(x + 16 * j, 16) / 31.0f;
            max_scale = fmaxf(max_scale, scale[j]);
        }
        uint16_t dh = to_half(max_scale / 127.0f);
        float d = half_value(dh);
        int8_t *sc = (int8_t *)(out + 192);
        int q[256];
        for (int j = 0; j < 16; j++) {
            /* Alternate signs so negative scales are covered too. */
            int s = clamp_int(lroundf(scale[j] / d), 1, 127) * (j % 3 == 1 ? -1 : 1);
            sc[j] = (int8_t)s;
            for (int l = 0; l < 16; l++) {
                int k = 16 * j + l;
                q[k] = clamp_int(lroundf(x[k] / (d * (float)s)), -32, 31) + 32;
                expected[k] = d * (float)s * (float)(q[k] - 32);
            }
        }
        uint8_t *ql = out, *qh = out + 128;
        for (int half = 0; half < 2; half++)
            for (int l = 0; l < 32; l++) {
                const int *v = q + 128 * half + l;
                ql[64 * half + l] = (uint8_t)((v[0] & 15) | (v[64] & 15) << 4);
                ql[64 * half + l + 32] = (uint8_t)((v[32] & 15) | (v[96] & 15) << 4);
                qh[32 * half + l] = (uint8_t)((v[0] >> 4) | (v[32] >> 4) << 2 | (v[64] >> 4) << 4 | (v[96] >> 4) << 6);
            }
        put_le16(out + 208, dh);
    }
}

/* Element types: raw values and their exact float. */
static void encode_f32(const float *x, uint8_t *out, float *expected) {
    memcpy(out, x, TEST_N * 4);
    memcpy(expected, x, TEST_N * 4);
}

static void encode_f16(const float *x, uint8_t *out, float *expected) {
    for (int i = 0; i < TEST_N; i++) {
        uint16_t h = to_half(x[i] * 1000.0f);
        put_le16(out + 2 * i, h);
        int e = (h >> 10) & 31, mant = h & 1023;
        double magnitude = e ? ldexp(1024 + mant, e - 25) : ldexp(mant, -24);
        expected[i] = (float)((h & 0x8000) ? -magnitude : magnitude);
    }
}

static void encode_bf16(const float *x, uint8_t *out, float *expected) {
    for (int i = 0; i < TEST_N; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        put_le16(out + 2 * i, (uint16_t)(bits >> 16));
        bits &= 0xffff0000u;
        memcpy(&expected[i], &bits, 4);
    }
}

static void encode_i8(const float *x, uint8_t *out, float *expected) {
    for (int i = 0; i < TEST_N; i++) {
        int v = clamp_int(lroundf(x[i] * 128.0f), -128, 127);
        out[i] = (uint8_t)(int8_t)v;
        expected[i] = (float)v;
    }
}

static void encode_i16(const float *x, uint8_t *out, float *expected) {
    for (int i = 0; i < TEST_N; i++) {
        int v = clamp_int(lroundf(x[i] * 32768.0f), -32768, 32767);
        put_le16(out + 2 * i, (uint16_t)(int16_t)v);
        expected[i] = (float)v;
    }
}

static void encode_i32(const float *x, uint8_t *out, float *expected) {
    for (int i = 0; i < TEST_N; i++) {
        int32_t v = (int32_t)lround((double)x[i] / 3.0 * 2147483647.0);
        lmc_put_le32(out + 4 * i, (uint32_t)v);
        expected[i] = (float)v;
    }
}

static void test_dequantise_every_type(void **state) {
    (void)state;
    static const struct {
        lmc_ggml_type type;
        encoder_fn encode;
        uint32_t block_elements, block_bytes;
        float tolerance; /* of the reference encoder, relative to max |x| */
    } types[] = {
        {LMC_GGML_F32, encode_f32, 1, 4, 0.0f},      {LMC_GGML_F16, encode_f16, 1, 2, -1.0f},
        {LMC_GGML_BF16, encode_bf16, 1, 2, 0.01f},   {LMC_GGML_Q8_0, encode_q8_0, 32, 34, 0.01f},
        {LMC_GGML_Q4_0, encode_q4_0, 32, 18, 0.1f},  {LMC_GGML_Q4_1, encode_q4_1, 32, 20, 0.1f},
        {LMC_GGML_Q5_0, encode_q5_0, 32, 22, 0.05f}, {LMC_GGML_Q5_1, encode_q5_1, 32, 24, 0.05f},
        {LMC_GGML_Q4_K, encode_q4_k, 256, 144, 0.15f}, {LMC_GGML_Q5_K, encode_q5_k, 256, 176, 0.08f},
        {LMC_GGML_Q6_K, encode_q6_k, 256, 210, 0.05f}, {LMC_GGML_I8, encode_i8, 1, 1, -1.0f},
        {LMC_GGML_I16, encode_i16, 1, 2, -1.0f},     {LMC_GGML_I32, encode_i32, 1, 4, -1.0f},
    };
    float *x = malloc(TEST_N * sizeof *x), *expected = malloc(TEST_N * sizeof *expected);
    float *got = malloc(TEST_N * sizeof *got);
    uint8_t *blocks = calloc(TEST_N, 8);
    assert_true(x && expected && got && blocks);
    uint64_t rng = 12345;
    for (int i = 0; i < TEST_N; i++) x[i] = rng_float(&rng) * (i % 97 == 0 ? 3.0f : 1.0f);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        lmc_ggml_type type = types[t].type;
        assert_int_equal(lmc_ggml_block_elements(type), types[t].block_elements);
        assert_int_equal(lmc_ggml_block_bytes(type), types[t].block_bytes);
        uint64_t n_bytes = (uint64_t)TEST_N / types[t].block_elements * types[t].block_bytes;
        types[t].encode(x, blocks, expected);
        lmc_gguf_writer *w = lmc_gguf_writer_create();
        uint64_t ne[2] = {TEST_ROW, TEST_ROWS};
        assert_int_equal(lmc_gguf_writer_add_tensor(w, "t", type, 2, ne, blocks, n_bytes), LMC_OK);
        lmc_buf file;
        lmc_buf_init(&file);
        assert_int_equal(lmc_gguf_writer_write_buf(w, &file), LMC_OK);
        lmc_gguf_writer_free(w);
        lmc_gguf *g;
        lmc_message m;
        assert_int_equal(lmc_gguf_open_memory(file.data, file.size, &g, &m), LMC_OK);
        const lmc_gguf_tensor *tensor = lmc_gguf_tensor_find(g, "t");
        assert_int_equal(tensor->n_bytes, n_bytes);
        assert_int_equal(lmc_tensor_to_f32(tensor, got, &m), LMC_OK);
        for (int i = 0; i < TEST_N; i++)
            if (memcmp(&got[i], &expected[i], 4) != 0)
                fail_msg("%s element %d: got %.9g, the formula gives %.9g", lmc_ggml_type_name(type), i, got[i],
                         expected[i]);
        /* Row access agrees with the whole tensor. */
        assert_int_equal(lmc_tensor_rows_to_f32(tensor, 2, 1, got, &m), LMC_OK);
        assert_memory_equal(got, expected + 2 * TEST_ROW, TEST_ROW * sizeof(float));
        /* The reference encoder approximates its input (a check on the test). */
        if (types[t].tolerance >= 0.0f)
            for (int i = 0; i < TEST_N; i++) assert_true(fabsf(expected[i] - x[i]) <= types[t].tolerance * 3.0f);
        lmc_gguf_close(g);
        lmc_buf_free(&file);
    }
    /* Known types without a dequantiser are refused by name. */
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    uint64_t ne[1] = {256};
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "q2", LMC_GGML_Q2_K, 1, ne, blocks, 84), LMC_OK);
    lmc_buf file;
    lmc_buf_init(&file);
    assert_int_equal(lmc_gguf_writer_write_buf(w, &file), LMC_OK);
    lmc_gguf_writer_free(w);
    lmc_gguf *g;
    lmc_message m;
    assert_int_equal(lmc_gguf_open_memory(file.data, file.size, &g, &m), LMC_OK);
    assert_int_equal(lmc_tensor_to_f32(lmc_gguf_tensor_at(g, 0), got, &m), LMC_ERR_UNSUPPORTED);
    assert_non_null(strstr(m.text, "q2_K"));
    lmc_gguf_close(g);
    lmc_buf_free(&file);
    assert_string_equal(lmc_ggml_type_name(LMC_GGML_Q6_K), "q6_K");
    assert_string_equal(lmc_ggml_type_name((lmc_ggml_type)99), "unknown");
    free(x);
    free(expected);
    free(got);
    free(blocks);
}

/* ==================================================================== malformed files */

/* A small valid file with every kind of key and two tensors. */
static void small_valid_file(lmc_buf *out) {
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    uint16_t u16 = 7;
    assert_int_equal(lmc_gguf_writer_set_str(w, "general.architecture", "llama"), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_u32(w, "n", 3), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_scalar(w, "s", LMC_GGUF_UINT16, &u16), LMC_OK);
    const char *tokens[3] = {"a", "bc", "<0x00>"};
    assert_int_equal(lmc_gguf_writer_set_str_array(w, "tokens", tokens, NULL, 3), LMC_OK);
    const float scores[3] = {0.5f, -1.0f, 2.0f};
    assert_int_equal(lmc_gguf_writer_set_array(w, "scores", LMC_GGUF_FLOAT32, scores, 3), LMC_OK);
    uint8_t q8[34 * 2] = {0};
    put_le16(q8, 0x3c00);
    q8[5] = 9;
    const float f[4] = {1, 2, 3, 4};
    uint64_t ne_q[1] = {64}, ne_f[2] = {2, 2};
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "q", LMC_GGML_Q8_0, 1, ne_q, q8, sizeof q8), LMC_OK);
    assert_int_equal(lmc_gguf_writer_add_tensor(w, "f", LMC_GGML_F32, 2, ne_f, f, sizeof f), LMC_OK);
    lmc_buf_init(out);
    assert_int_equal(lmc_gguf_writer_write_buf(w, out), LMC_OK);
    lmc_gguf_writer_free(w);
}

static void test_every_truncation_fails(void **state) {
    (void)state;
    lmc_buf file;
    small_valid_file(&file);
    expect_valid(&file);
    for (size_t size = 0; size < file.size; size++) {
        lmc_message m;
        if (open_copy(file.data, size, &m) != LMC_ERR_MODEL_INVALID)
            fail_msg("truncation to %zu of %zu bytes was accepted", size, file.size);
    }
    lmc_buf_free(&file);
}

/* Every byte replaced by a few values: errors or valid files, no crashes. */
static void test_every_corruption_is_safe(void **state) {
    (void)state;
    lmc_buf file;
    small_valid_file(&file);
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    int rejected = 0;
    for (size_t pos = 0; pos < file.size; pos++) {
        uint8_t original = file.data[pos];
        for (size_t v = 0; v < sizeof values; v++) {
            file.data[pos] = original ^ values[v] ? values[v] : (uint8_t)~values[v];
            lmc_message m;
            rejected += open_copy(file.data, file.size, &m) != LMC_OK;
        }
        file.data[pos] = original;
    }
    /* Most corruptions of the metadata must be noticed. */
    assert_true(rejected > 100);
    lmc_buf_free(&file);
}

static void test_bad_headers(void **state) {
    (void)state;
    lmc_buf b;
    lmc_buf_init(&b);
    buf_header(&b, 3, 0, 0);
    expect_valid(&b);
    memcpy(b.data, "GGML", 4);
    expect_invalid(&b, "bad magic");
    static const struct {
        uint32_t version;
        const char *message;
    } versions[] = {{0, "version 0"}, {1, "version 1"}, {4, "version 4"}, {0x03000000u, "big-endian"}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        b.size = 0;
        buf_header(&b, versions[i].version, 0, 0);
        expect_invalid(&b, versions[i].message);
    }
    b.size = 0;
    buf_header(&b, 3, 0, UINT64_MAX);
    expect_invalid(&b, "key/values cannot fit");
    b.size = 0;
    buf_header(&b, 3, (uint64_t)1 << 62, 0);
    expect_invalid(&b, "tensors cannot fit");
    b.size = 0;
    buf_header(&b, 3, 0, 1);
    buf_u64(&b, UINT64_MAX); /* key length */
    buf_u64(&b, 0);
    buf_u64(&b, 0);
    expect_invalid(&b, "past end of file");
    lmc_buf_free(&b);
}

static void test_bad_values(void **state) {
    (void)state;
    lmc_buf b;
    lmc_buf_init(&b);
    /* Unknown value type. */
    buf_header(&b, 3, 0, 1);
    buf_str(&b, "k");
    buf_u32(&b, 13);
    buf_u32(&b, 0);
    expect_invalid(&b, "unknown value type 13");
    /* String value longer than the file. */
    b.size = 0;
    buf_header(&b, 3, 0, 1);
    buf_str(&b, "k");
    buf_u32(&b, LMC_GGUF_STRING);
    buf_u64(&b, 1000);
    buf_str(&b, "short");
    expect_invalid(&b, "past end of file");
    /* Arrays with absurd counts, of numbers and of strings. */
    static const uint32_t elem_types[] = {LMC_GGUF_UINT8, LMC_GGUF_FLOAT64, LMC_GGUF_STRING, LMC_GGUF_ARRAY};
    for (size_t i = 0; i < 4; i++) {
        b.size = 0;
        buf_header(&b, 3, 0, 1);
        buf_str(&b, "arr");
        buf_u32(&b, LMC_GGUF_ARRAY);
        buf_u32(&b, elem_types[i]);
        buf_u64(&b, (uint64_t)1 << 60);
        buf_u64(&b, 0);
        expect_invalid(&b, "past end of file");
    }
    b.size = 0;
    buf_header(&b, 3, 0, 1);
    buf_str(&b, "arr");
    buf_u32(&b, LMC_GGUF_ARRAY);
    buf_u32(&b, 99);
    buf_u64(&b, 0);
    expect_invalid(&b, "unknown type 99");
    /* Duplicate key, NUL in a key. */
    b.size = 0;
    buf_header(&b, 3, 0, 2);
    buf_kv_u32(&b, "same", 1);
    buf_kv_u32(&b, "same", 2);
    expect_invalid(&b, "key 'same' appears twice");
    b.size = 0;
    buf_header(&b, 3, 0, 1);
    buf_u64(&b, 3);
    assert_int_equal(lmc_buf_append(&b, "a\0b", 3), LMC_OK);
    buf_u32(&b, LMC_GGUF_UINT8);
    assert_int_equal(lmc_buf_append_byte(&b, 1), LMC_OK);
    expect_invalid(&b, "NUL");
    lmc_buf_free(&b);
}

static void test_bad_tensors(void **state) {
    (void)state;
    lmc_buf b;
    lmc_buf_init(&b);
    uint64_t ne4[1] = {4};
    /* The base case is valid. */
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 1, ne4, LMC_GGML_F32, 0);
    buf_pad(&b, 32, 16);
    expect_valid(&b);
    /* Data one byte short. */
    b.size -= 1;
    expect_invalid(&b, "tensor 'x' extends past end of file");
    /* Too many dimensions. */
    b.size = 0;
    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 5, ne5, LMC_GGML_F32, 0);
    buf_pad(&b, 32, 16);
    expect_invalid(&b, "5 dimensions");
    /* Element counts that overflow. */
    uint64_t huge[4] = {(uint64_t)1 << 32, (uint64_t)1 << 32, 2, 1};
    b.size = 0;
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 4, huge, LMC_GGML_F32, 0);
    buf_pad(&b, 32, 16);
    expect_invalid(&b, "too many elements");
    uint64_t big[2] = {(uint64_t)1 << 61, 2};
    b.size = 0;
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 2, big, LMC_GGML_F64, 0);
    buf_pad(&b, 32, 16);
    expect_invalid(&b, "too large");
    uint64_t neg[1] = {UINT64_MAX};
    b.size = 0;
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 1, neg, LMC_GGML_I8, 0);
    buf_pad(&b, 32, 16);
    expect_invalid(&b, "too many elements");
    /* Huge, unaligned and wrapping offsets. */
    static const uint64_t offsets[] = {UINT64_MAX - 15, 32, 8, (uint64_t)1 << 63};
    static const char *const offset_messages[] = {"not aligned", "past end of file", "not aligned", "past end of file"};
    for (size_t i = 0; i < 4; i++) {
        b.size = 0;
        buf_header(&b, 3, 1, 0);
        buf_tensor_info(&b, "x", 1, ne4, LMC_GGML_F32, offsets[i]);
        buf_pad(&b, 32, 16);
        expect_invalid(&b, offset_messages[i]);
    }
    /* Unknown type, and a block type whose rows are not whole blocks. */
    b.size = 0;
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 1, ne4, 20, 0);
    buf_pad(&b, 32, 16);
    expect_invalid(&b, "unsupported type 20");
    b.size = 0;
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 1, ne4, LMC_GGML_Q4_0, 0);
    buf_pad(&b, 32, 16);
    expect_invalid(&b, "not a multiple");
    /* Overlapping tensors, including one hidden behind an empty tensor. */
    uint64_t ne16[1] = {16}, ne0[1] = {0};
    b.size = 0;
    buf_header(&b, 3, 2, 0);
    buf_tensor_info(&b, "x", 1, ne16, LMC_GGML_F32, 0);
    buf_tensor_info(&b, "y", 1, ne4, LMC_GGML_F32, 32);
    buf_pad(&b, 32, 64);
    expect_invalid(&b, "overlap");
    b.size = 0;
    buf_header(&b, 3, 3, 0);
    buf_tensor_info(&b, "x", 1, ne16, LMC_GGML_F32, 0);
    buf_tensor_info(&b, "empty", 1, ne0, LMC_GGML_F32, 32);
    buf_tensor_info(&b, "y", 1, ne4, LMC_GGML_F32, 32);
    buf_pad(&b, 32, 64);
    expect_invalid(&b, "tensors 'x' and 'y' overlap");
    /* Two tensors of the same name. */
    b.size = 0;
    buf_header(&b, 3, 2, 0);
    buf_tensor_info(&b, "x", 1, ne4, LMC_GGML_F32, 0);
    buf_tensor_info(&b, "x", 1, ne4, LMC_GGML_F32, 32);
    buf_pad(&b, 32, 64);
    expect_invalid(&b, "tensor 'x' appears twice");
    /* Tensor infos but no room for the data section's padding. */
    b.size = 0;
    buf_header(&b, 3, 1, 0);
    buf_tensor_info(&b, "x", 1, ne0, LMC_GGML_F32, 0);
    assert_true(b.size % 32 != 0); /* so the data section needs padding */
    expect_invalid(&b, "data section starts past end of file");
    lmc_buf_free(&b);
}

static void test_open_errors(void **state) {
    (void)state;
    lmc_gguf *g;
    lmc_message m;
    assert_int_equal(lmc_gguf_open("/nonexistent/model.gguf", &g, &m), LMC_ERR_IO);
    assert_null(g);
    assert_non_null(strstr(m.text, "/nonexistent/model.gguf"));
    assert_int_equal(lmc_gguf_open("/tmp", &g, &m), LMC_ERR_IO);
    char path[] = "/tmp/lmc_test_empty_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(lmc_gguf_open(path, &g, &m), LMC_ERR_MODEL_INVALID);
    unlink(path);
    assert_int_equal(lmc_gguf_open_memory(NULL, 0, &g, &m), LMC_ERR_MODEL_INVALID);
}

/* ==================================================================== models */

/* A tiny Llama-family model: the float weights it was made from, so tests
 * can derive what the loader must produce. */
enum { M_DIM = 32, M_HIDDEN = 64, M_LAYERS = 2, M_HEADS = 4, M_KV = 2, M_HEAD_DIM = 8, M_VOCAB = 64, M_CTX = 128 };
#define M_KV_ROWS (M_KV * M_HEAD_DIM)

typedef enum { FORM_F32, FORM_Q8_0, FORM_NATIVE } weight_form;

typedef struct {
    const char *arch;
    weight_form form;
    int tied, fused, biases, extra_tensor, wrong_shape, rope_scaling, no_name, lmc_keys;
    int int8_min; /* native form: blk.1.ffn_down.weight holds a -128 */
} model_spec;

typedef struct {
    float embd[M_VOCAB * M_DIM], out[M_VOCAB * M_DIM], norm[M_DIM];
    float wq[M_LAYERS][M_DIM * M_DIM], wk[M_LAYERS][M_KV_ROWS * M_DIM], wv[M_LAYERS][M_KV_ROWS * M_DIM];
    float wo[M_LAYERS][M_DIM * M_DIM], gate[M_LAYERS][M_HIDDEN * M_DIM], up[M_LAYERS][M_HIDDEN * M_DIM];
    float down[M_LAYERS][M_DIM * M_HIDDEN], bq[M_LAYERS][M_DIM], bk[M_LAYERS][M_KV_ROWS];
} model_weights;

static void fill(float *x, size_t n, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = rng_float(rng) * 0.5f;
}

static void make_weights(model_weights *mw) {
    uint64_t rng = 99;
    fill(mw->embd, sizeof mw->embd / 4, &rng);
    fill(mw->out, sizeof mw->out / 4, &rng);
    fill(mw->norm, M_DIM, &rng);
    fill(&mw->wq[0][0], sizeof mw->wq / 4, &rng);
    fill(&mw->wk[0][0], sizeof mw->wk / 4, &rng);
    fill(&mw->wv[0][0], sizeof mw->wv / 4, &rng);
    fill(&mw->wo[0][0], sizeof mw->wo / 4, &rng);
    fill(&mw->gate[0][0], sizeof mw->gate / 4, &rng);
    fill(&mw->up[0][0], sizeof mw->up / 4, &rng);
    fill(&mw->down[0][0], sizeof mw->down / 4, &rng);
    fill(&mw->bq[0][0], sizeof mw->bq / 4, &rng);
    fill(&mw->bk[0][0], sizeof mw->bk / 4, &rng);
}

/* Q8_0 blocks of a float matrix (same rule as encode_q8_0). */
static void to_q8_0(const float *x, size_t n, uint8_t *out) {
    for (size_t b = 0; b < n / 32; b++, x += 32, out += 34) {
        uint16_t dh = to_half(abs_max(x, 32) / 127.0f);
        float d = half_value(dh);
        put_le16(out, dh);
        for (int j = 0; j < 32; j++) out[2 + j] = (uint8_t)(int8_t)clamp_int(lroundf(x[j] / d), -127, 127);
    }
}

/* Adds a [rows][cols] matrix in the spec's form. */
static void add_matrix(lmc_gguf_writer *w, const model_spec *spec, const char *name, const float *x, int rows,
                       int cols) {
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    size_t n = (size_t)rows * (size_t)cols;
    if (spec->form == FORM_F32) {
        assert_int_equal(lmc_gguf_writer_add_tensor(w, name, LMC_GGML_F32, 2, ne, x, n * 4), LMC_OK);
    } else if (spec->form == FORM_Q8_0) {
        uint8_t *q = malloc(n / 32 * 34);
        to_q8_0(x, n, q);
        assert_int_equal(lmc_gguf_writer_add_tensor(w, name, LMC_GGML_Q8_0, 2, ne, q, n / 32 * 34), LMC_OK);
        free(q);
    } else {
        int8_t *q = malloc(n);
        float *scale = malloc((size_t)rows * 4);
        for (int r = 0; r < rows; r++) scale[r] = lmc_quantize_row(x + (size_t)r * cols, cols, q + (size_t)r * cols);
        if (spec->int8_min && strcmp(name, "blk.1.ffn_down.weight") == 0) q[n - 1] = INT8_MIN;
        char scale_name[96];
        snprintf(scale_name, sizeof scale_name, "%s.scale", name);
        uint64_t ne_scale[1] = {(uint64_t)rows};
        assert_int_equal(lmc_gguf_writer_add_tensor(w, name, LMC_GGML_I8, 2, ne, q, n), LMC_OK);
        assert_int_equal(lmc_gguf_writer_add_tensor(w, scale_name, LMC_GGML_F32, 1, ne_scale, scale, (size_t)rows * 4),
                         LMC_OK);
        free(q);
        free(scale);
    }
}

static void add_vector(lmc_gguf_writer *w, const char *name, const float *x, int n) {
    uint64_t ne[1] = {(uint64_t)n};
    assert_int_equal(lmc_gguf_writer_add_tensor(w, name, LMC_GGML_F32, 1, ne, x, (uint64_t)n * 4), LMC_OK);
}

static void set_arch_u32(lmc_gguf_writer *w, const char *arch, const char *suffix, uint32_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    assert_int_equal(lmc_gguf_writer_set_u32(w, key, v), LMC_OK);
}

static void add_layer(lmc_gguf_writer *w, const model_spec *spec, const model_weights *mw, int i) {
    char name[64];
#define LAYER_NAME(suffix) (snprintf(name, sizeof name, "blk.%d.%s", i, suffix), name)
    add_vector(w, LAYER_NAME("attn_norm.weight"), mw->norm, M_DIM);
    add_vector(w, LAYER_NAME("ffn_norm.weight"), mw->norm, M_DIM);
    if (spec->fused) {
        float *qkv = malloc(sizeof mw->wq[i] + sizeof mw->wk[i] + sizeof mw->wv[i]);
        memcpy(qkv, mw->wq[i], sizeof mw->wq[i]);
        memcpy(qkv + M_DIM * M_DIM, mw->wk[i], sizeof mw->wk[i]);
        memcpy(qkv + M_DIM * M_DIM + M_KV_ROWS * M_DIM, mw->wv[i], sizeof mw->wv[i]);
        add_matrix(w, spec, LAYER_NAME("attn_qkv.weight"), qkv, M_DIM + 2 * M_KV_ROWS, M_DIM);
        free(qkv);
        float *gate_up = malloc(2 * sizeof mw->gate[i]);
        memcpy(gate_up, mw->gate[i], sizeof mw->gate[i]);
        memcpy(gate_up + M_HIDDEN * M_DIM, mw->up[i], sizeof mw->up[i]);
        add_matrix(w, spec, LAYER_NAME("ffn_up.weight"), gate_up, 2 * M_HIDDEN, M_DIM);
        free(gate_up);
    } else {
        add_matrix(w, spec, LAYER_NAME("attn_q.weight"), mw->wq[i], spec->wrong_shape ? M_KV_ROWS : M_DIM, M_DIM);
        add_matrix(w, spec, LAYER_NAME("attn_k.weight"), mw->wk[i], M_KV_ROWS, M_DIM);
        add_matrix(w, spec, LAYER_NAME("attn_v.weight"), mw->wv[i], M_KV_ROWS, M_DIM);
        add_matrix(w, spec, LAYER_NAME("ffn_gate.weight"), mw->gate[i], M_HIDDEN, M_DIM);
        add_matrix(w, spec, LAYER_NAME("ffn_up.weight"), mw->up[i], M_HIDDEN, M_DIM);
    }
    add_matrix(w, spec, LAYER_NAME("attn_output.weight"), mw->wo[i], M_DIM, M_DIM);
    add_matrix(w, spec, LAYER_NAME("ffn_down.weight"), mw->down[i], M_DIM, M_HIDDEN);
    if (spec->biases) {
        add_vector(w, LAYER_NAME("attn_q.bias"), mw->bq[i], M_DIM);
        add_vector(w, LAYER_NAME("attn_k.bias"), mw->bk[i], M_KV_ROWS);
        add_vector(w, LAYER_NAME("attn_v.bias"), mw->bk[i], M_KV_ROWS);
    }
#undef LAYER_NAME
}

static void write_model(const char *path, const model_spec *spec, const model_weights *mw) {
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    assert_int_equal(lmc_gguf_writer_set_str(w, "general.architecture", spec->arch), LMC_OK);
    if (!spec->no_name) assert_int_equal(lmc_gguf_writer_set_str(w, "general.name", "tiny test model"), LMC_OK);
    set_arch_u32(w, spec->arch, "embedding_length", M_DIM);
    set_arch_u32(w, spec->arch, "feed_forward_length", M_HIDDEN);
    set_arch_u32(w, spec->arch, "block_count", M_LAYERS);
    set_arch_u32(w, spec->arch, "attention.head_count", M_HEADS);
    set_arch_u32(w, spec->arch, "attention.head_count_kv", M_KV);
    set_arch_u32(w, spec->arch, "context_length", M_CTX);
    set_arch_u32(w, spec->arch, "rope.dimension_count", M_HEAD_DIM);
    char key[128];
    snprintf(key, sizeof key, "%s.rope.freq_base", spec->arch);
    assert_int_equal(lmc_gguf_writer_set_f32(w, key, 500000.0f), LMC_OK);
    if (spec->rope_scaling) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", spec->arch);
        assert_int_equal(lmc_gguf_writer_set_str(w, key, "linear"), LMC_OK);
    }
    if (spec->lmc_keys) {
        assert_int_equal(lmc_gguf_writer_set_str(w, "lmc.default_kind", "text"), LMC_OK);
        assert_int_equal(lmc_gguf_writer_set_u32(w, "lmc.block_size", 4096), LMC_OK);
        assert_int_equal(lmc_gguf_writer_set_u32(w, "lmc.context_window", 64), LMC_OK);
        assert_int_equal(lmc_gguf_writer_set_u32(w, "lmc.window_stride", 16), LMC_OK);
    }
    add_matrix(w, spec, "token_embd.weight", mw->embd, M_VOCAB, M_DIM);
    for (int i = 0; i < M_LAYERS; i++) add_layer(w, spec, mw, i);
    add_vector(w, "output_norm.weight", mw->norm, M_DIM);
    if (!spec->tied) add_matrix(w, spec, "output.weight", mw->out, M_VOCAB, M_DIM);
    if (spec->extra_tensor) add_vector(w, "blk.0.attn_output.bias", mw->norm, M_DIM);
    assert_int_equal(lmc_gguf_writer_write(w, path), LMC_OK);
    lmc_gguf_writer_free(w);
}

/* What the loader must make of a float matrix given in `form`. */
static void expect_matrix(const lmc_qmat *m, const float *x, int rows, int cols, weight_form form) {
    assert_int_equal(m->rows, rows);
    assert_int_equal(m->cols, cols);
    assert_non_null(m->row_sum);
    float *row = malloc((size_t)cols * 4);
    int8_t *q = malloc((size_t)cols);
    uint8_t *blocks = malloc((size_t)cols / 32 * 34);
    for (int r = 0; r < rows; r++) {
        const float *source = x + (size_t)r * cols;
        if (form == FORM_Q8_0) {
            /* What the file holds, decoded by the formula. */
            to_q8_0(source, (size_t)cols, blocks);
            for (int j = 0; j < cols; j++) {
                const uint8_t *block = blocks + 34 * (j / 32);
                row[j] = (float)(int8_t)block[2 + j % 32] * half_value((uint16_t)(block[0] | block[1] << 8));
            }
            source = row;
        }
        float scale = lmc_quantize_row(source, cols, q);
        assert_true(scale == m->scale[r]);
        assert_memory_equal(q, m->q + (size_t)r * cols, (size_t)cols);
        int32_t sum = 0;
        for (int j = 0; j < cols; j++) sum += q[j];
        assert_int_equal(sum, m->row_sum[r]);
    }
    free(row);
    free(q);
    free(blocks);
}

static void expect_model(const lmc_model *model, const model_spec *spec, const model_weights *mw) {
    const lmc_llama *l = &model->llama;
    assert_int_equal(l->dim, M_DIM);
    assert_int_equal(l->hidden_dim, M_HIDDEN);
    assert_int_equal(l->n_layers, M_LAYERS);
    assert_int_equal(l->n_heads, M_HEADS);
    assert_int_equal(l->n_kv_heads, M_KV);
    assert_int_equal(l->head_dim, M_HEAD_DIM);
    assert_int_equal(l->vocab, M_VOCAB);
    assert_int_equal(l->context_length, M_CTX);
    assert_true(l->rope_base == 500000.0f);
    assert_true(l->norm_eps == 1e-5f);
    assert_int_equal(l->rope_neox, strcmp(spec->arch, "llama") != 0);
    assert_memory_equal(l->out_norm, mw->norm, sizeof mw->norm);
    for (int i = 0; i < M_LAYERS; i++) {
        const lmc_llama_layer *layer = &l->layers[i];
        assert_memory_equal(layer->attn_norm, mw->norm, sizeof mw->norm);
        assert_memory_equal(layer->ffn_norm, mw->norm, sizeof mw->norm);
        expect_matrix(&layer->wq, mw->wq[i], M_DIM, M_DIM, spec->form);
        expect_matrix(&layer->wk, mw->wk[i], M_KV_ROWS, M_DIM, spec->form);
        expect_matrix(&layer->wv, mw->wv[i], M_KV_ROWS, M_DIM, spec->form);
        expect_matrix(&layer->wo, mw->wo[i], M_DIM, M_DIM, spec->form);
        expect_matrix(&layer->w_gate, mw->gate[i], M_HIDDEN, M_DIM, spec->form);
        expect_matrix(&layer->w_up, mw->up[i], M_HIDDEN, M_DIM, spec->form);
        expect_matrix(&layer->w_down, mw->down[i], M_DIM, M_HIDDEN, spec->form);
        if (spec->biases) {
            assert_memory_equal(layer->bq, mw->bq[i], sizeof mw->bq[i]);
            assert_memory_equal(layer->bk, mw->bk[i], sizeof mw->bk[i]);
            assert_memory_equal(layer->bv, mw->bk[i], sizeof mw->bk[i]);
        } else {
            assert_null(layer->bq);
            assert_null(layer->bk);
            assert_null(layer->bv);
        }
    }
    expect_matrix(&l->output, spec->tied ? mw->embd : mw->out, M_VOCAB, M_DIM, spec->form);
    /* The embedding as floats. */
    if (spec->form == FORM_F32) {
        assert_memory_equal(l->tok_embd, mw->embd, sizeof mw->embd);
    } else if (spec->form == FORM_NATIVE) {
        for (int r = 0; r < M_VOCAB; r++) {
            int8_t q[M_DIM];
            float scale = lmc_quantize_row(mw->embd + r * M_DIM, M_DIM, q);
            for (int j = 0; j < M_DIM; j++) assert_true(l->tok_embd[r * M_DIM + j] == (float)q[j] * scale);
        }
    }
}

static char temp_dir[64];

static int make_temp_dir(void **state) {
    (void)state;
    strcpy(temp_dir, "/tmp/lmc_test_models_XXXXXX");
    return mkdtemp(temp_dir) ? 0 : -1;
}

static int remove_temp_dir(void **state) {
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", temp_dir);
    return system(command) == 0 ? 0 : -1;
}

static lmc_status load_spec(const model_spec *spec, const char *file, uint64_t memlimit, lmc_model **model,
                            lmc_message *m) {
    static model_weights mw;
    make_weights(&mw);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", temp_dir, file);
    write_model(path, spec, &mw);
    lmc_status status = lmc_model_load_weights(path, memlimit, model, m);
    if (status == LMC_OK) expect_model(*model, spec, &mw);
    return status;
}

static void test_load_llama_f32(void **state) {
    (void)state;
    model_spec spec = {.arch = "llama", .form = FORM_F32};
    lmc_model *model;
    lmc_message m;
    if (load_spec(&spec, "llama-f32.gguf", 0, &model, &m) != LMC_OK) fail_msg("%s", m.text);
    assert_string_equal(model->name, "tiny test model");
    assert_string_equal(model->architecture, "llama");
    assert_null(model->tokenizer);
    assert_int_equal(model->kind, LMC_KIND_AUTO);
    assert_int_equal(model->default_block_size, 1u << 20);
    assert_int_equal(model->context_window, M_CTX);
    assert_int_equal(model->window_stride, M_CTX / 2);
    size_t size;
    const uint8_t *bytes = lmc_gguf_bytes(model->gguf, &size);
    assert_int_equal(model->file_size, size);
    uint8_t hash[16];
    lmc_hash128(bytes, size, hash);
    assert_memory_equal(model->hash, hash, 16);
    /* The F32 embedding is used in place. */
    assert_true((const uint8_t *)model->llama.tok_embd > bytes &&
                (const uint8_t *)model->llama.tok_embd < bytes + size);
    lmc_model_free(model);
}

static void test_load_native_tied(void **state) {
    (void)state;
    model_spec spec = {.arch = "llama", .form = FORM_NATIVE, .tied = 1, .no_name = 1, .lmc_keys = 1};
    lmc_model *model;
    lmc_message m;
    if (load_spec(&spec, "native-tied.gguf", 0, &model, &m) != LMC_OK) fail_msg("%s", m.text);
    assert_string_equal(model->name, "native-tied");
    assert_int_equal(model->kind, LMC_KIND_TEXT);
    assert_int_equal(model->default_block_size, 4096);
    assert_int_equal(model->context_window, 64);
    assert_int_equal(model->window_stride, 16);
    /* Native matrices are used from the mapped file. */
    size_t size;
    const uint8_t *bytes = lmc_gguf_bytes(model->gguf, &size);
    const int8_t *q = model->llama.layers[1].w_down.q;
    assert_true((const uint8_t *)q > bytes && (const uint8_t *)q < bytes + size);
    assert_ptr_equal(model->llama.output.q, lmc_gguf_tensor_find(model->gguf, "token_embd.weight")->data);
    lmc_model_free(model);
}

/* A native weight of -128 is outside the format's [-127, 127]: refused
 * rather than coded differently by different SIMD kernels. */
static void test_load_native_rejects_int8_min(void **state) {
    (void)state;
    model_spec spec = {.arch = "llama", .form = FORM_NATIVE, .int8_min = 1};
    lmc_model *model;
    lmc_message m;
    assert_int_equal(load_spec(&spec, "native-int8-min.gguf", 0, &model, &m), LMC_ERR_MODEL_INVALID);
    assert_non_null(strstr(m.text, "blk.1.ffn_down.weight holds -128"));
}

static void test_load_qwen2_q8_0(void **state) {
    (void)state;
    model_spec spec = {.arch = "qwen2", .form = FORM_Q8_0, .biases = 1, .tied = 1};
    lmc_model *model;
    lmc_message m;
    if (load_spec(&spec, "qwen2.gguf", 0, &model, &m) != LMC_OK) fail_msg("%s", m.text);
    assert_int_equal(model->llama.rope_neox, 1);
    lmc_model_free(model);
    /* qwen2 without its biases is malformed. */
    spec.biases = 0;
    assert_int_equal(load_spec(&spec, "qwen2-nobias.gguf", 0, &model, &m), LMC_ERR_MODEL_INVALID);
    assert_non_null(strstr(m.text, "blk.0.attn_q.bias"));
}

static void test_load_phi3_fused(void **state) {
    (void)state;
    model_spec spec = {.arch = "phi3", .form = FORM_F32, .fused = 1};
    lmc_model *model;
    lmc_message m;
    if (load_spec(&spec, "phi3.gguf", 0, &model, &m) != LMC_OK) fail_msg("%s", m.text);
    lmc_model_free(model);
    spec.form = FORM_NATIVE;
    if (load_spec(&spec, "phi3-native.gguf", 0, &model, &m) != LMC_OK) fail_msg("%s", m.text);
    lmc_model_free(model);
}

static void test_load_errors(void **state) {
    (void)state;
    lmc_model *model;
    lmc_message m;
    model_spec unknown = {.arch = "mamba", .form = FORM_F32};
    assert_int_equal(load_spec(&unknown, "unknown.gguf", 0, &model, &m), LMC_ERR_MODEL_INVALID);
    assert_null(model);
    assert_non_null(strstr(m.text, "'mamba'"));
    model_spec extra = {.arch = "llama", .form = FORM_F32, .extra_tensor = 1};
    assert_int_equal(load_spec(&extra, "extra.gguf", 0, &model, &m), LMC_ERR_MODEL_INVALID);
    assert_non_null(strstr(m.text, "blk.0.attn_output.bias"));
    model_spec shape = {.arch = "llama", .form = FORM_F32, .wrong_shape = 1};
    assert_int_equal(load_spec(&shape, "shape.gguf", 0, &model, &m), LMC_ERR_MODEL_INVALID);
    assert_non_null(strstr(m.text, "blk.0.attn_q.weight has shape"));
    model_spec scaling = {.arch = "llama", .form = FORM_F32, .rope_scaling = 1};
    assert_int_equal(load_spec(&scaling, "scaling.gguf", 0, &model, &m), LMC_ERR_MODEL_INVALID);
    assert_non_null(strstr(m.text, "linear"));
    /* Converting F32 weights needs about 26 KB here: over a 20 KB limit. */
    model_spec f32 = {.arch = "llama", .form = FORM_F32};
    assert_int_equal(load_spec(&f32, "limit.gguf", 20000, &model, &m), LMC_ERR_MEMLIMIT);
    assert_null(model);
    assert_non_null(strstr(m.text, "memory limit"));
    /* The native form needs only the float embedding, norms and row sums
     * (about 12 KB). */
    model_spec native = {.arch = "llama", .form = FORM_NATIVE};
    if (load_spec(&native, "limit-native.gguf", 20000, &model, &m) != LMC_OK) fail_msg("%s", m.text);
    lmc_model_free(model);
    char path[256];
    snprintf(path, sizeof path, "%s/missing.gguf", temp_dir);
    assert_int_equal(lmc_model_load_weights(path, 0, &model, &m), LMC_ERR_IO);
    assert_null(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_round_trip),
        cmocka_unit_test(test_nested_arrays),
        cmocka_unit_test(test_tensor_round_trip_and_alignment),
        cmocka_unit_test(test_custom_alignment),
        cmocka_unit_test(test_vocab_only_files),
        cmocka_unit_test(test_half_conversion_exhaustive),
        cmocka_unit_test(test_dequantise_every_type),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_every_corruption_is_safe),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_load_llama_f32),
        cmocka_unit_test(test_load_native_tied),
        cmocka_unit_test(test_load_native_rejects_int8_min),
        cmocka_unit_test(test_load_qwen2_q8_0),
        cmocka_unit_test(test_load_phi3_fused),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
