/*
 * GGUF v3 writer for converters and tests.
 *
 * Key/values are encoded when they are set (in GGUF's little-endian wire
 * form), tensors are copied; writing lays out the header, the key/values,
 * the tensor infos, and the tensor data with every tensor aligned to 32
 * bytes (GGUF's default alignment, so no general.alignment key is needed).
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define WRITER_ALIGNMENT 32
#define WRITER_MAX_NAME 63 /* llama.cpp's limit (GGML_MAX_NAME - 1) */

typedef struct {
    char *key;
    lmc_buf value; /* u32 type followed by the value, as in the file */
} writer_kv;

typedef struct {
    char *name;
    lmc_ggml_type type;
    uint32_t n_dims;
    uint64_t ne[4];
    uint8_t *data;
    uint64_t n_bytes;
} writer_tensor;

struct lmc_gguf_writer {
    writer_kv *kvs;
    size_t n_kvs, kv_capacity;
    writer_tensor *tensors;
    size_t n_tensors, tensor_capacity;
};

lmc_gguf_writer *lmc_gguf_writer_create(void) { return calloc(1, sizeof(lmc_gguf_writer)); }

void lmc_gguf_writer_free(lmc_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kvs; i++) {
        free(w->kvs[i].key);
        lmc_buf_free(&w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* ---------------------------------------------------------------- encoding */

static lmc_status put_u32(lmc_buf *b, uint32_t v) {
    uint8_t bytes[4];
    lmc_put_le32(bytes, v);
    return lmc_buf_append(b, bytes, 4);
}

static lmc_status put_u64(lmc_buf *b, uint64_t v) {
    uint8_t bytes[8];
    lmc_put_le64(bytes, v);
    return lmc_buf_append(b, bytes, 8);
}

static lmc_status put_string(lmc_buf *b, const char *s, uint64_t length) {
    lmc_status status = put_u64(b, length);
    return status == LMC_OK ? lmc_buf_append(b, s, (size_t)length) : status;
}

static size_t scalar_size(lmc_gguf_value_type type) {
    switch (type) {
    case LMC_GGUF_UINT8: case LMC_GGUF_INT8: case LMC_GGUF_BOOL: return 1;
    case LMC_GGUF_UINT16: case LMC_GGUF_INT16: return 2;
    case LMC_GGUF_UINT32: case LMC_GGUF_INT32: case LMC_GGUF_FLOAT32: return 4;
    case LMC_GGUF_UINT64: case LMC_GGUF_INT64: case LMC_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Appends count values of a fixed-size type, read from host memory (every
 * supported host is little-endian, like the file, but write byte by byte
 * so the encoding never depends on it). */
static lmc_status put_scalars(lmc_buf *b, lmc_gguf_value_type type, const void *values, uint64_t count) {
    size_t size = scalar_size(type);
    const uint8_t *p = values;
    lmc_status status = lmc_buf_reserve(b, (size_t)count * size);
    for (uint64_t i = 0; i < count && status == LMC_OK; i++, p += size) {
        uint8_t bytes[8];
        uint64_t v = 0;
        if (type == LMC_GGUF_BOOL) v = p[0] != 0;
        else if (size == 1) v = p[0];
        else if (size == 2) { uint16_t x; memcpy(&x, p, 2); v = x; }
        else if (size == 4) { uint32_t x; memcpy(&x, p, 4); v = x; }
        else memcpy(&v, p, 8);
        lmc_put_le64(bytes, v);
        status = lmc_buf_append(b, bytes, size);
    }
    return status;
}

/* Starts a new key/value: refuses empty or duplicate keys. */
static lmc_status new_kv(lmc_gguf_writer *w, const char *key, lmc_gguf_value_type type, lmc_buf **value) {
    if (!w || !key || !*key) return LMC_ERR_PARAM;
    for (size_t i = 0; i < w->n_kvs; i++)
        if (strcmp(w->kvs[i].key, key) == 0) return LMC_ERR_PARAM;
    if (w->n_kvs == w->kv_capacity) {
        size_t capacity = w->kv_capacity ? 2 * w->kv_capacity : 16;
        writer_kv *kvs = realloc(w->kvs, capacity * sizeof *kvs);
        if (!kvs) return LMC_ERR_NOMEM;
        w->kvs = kvs;
        w->kv_capacity = capacity;
    }
    writer_kv *kv = &w->kvs[w->n_kvs];
    kv->key = strdup(key);
    if (!kv->key) return LMC_ERR_NOMEM;
    lmc_buf_init(&kv->value);
    lmc_status status = put_u32(&kv->value, (uint32_t)type);
    if (status != LMC_OK) {
        free(kv->key);
        lmc_buf_free(&kv->value);
        return status;
    }
    w->n_kvs++;
    *value = &kv->value;
    return LMC_OK;
}

/* Removes the key/value new_kv just added (when encoding its value failed). */
static lmc_status drop_last_kv(lmc_gguf_writer *w, lmc_status status) {
    w->n_kvs--;
    free(w->kvs[w->n_kvs].key);
    lmc_buf_free(&w->kvs[w->n_kvs].value);
    return status;
}

lmc_status lmc_gguf_writer_set_scalar(lmc_gguf_writer *w, const char *key, lmc_gguf_value_type type,
                                      const void *value) {
    lmc_buf *b;
    if (!scalar_size(type) || !value) return LMC_ERR_PARAM;
    lmc_status status = new_kv(w, key, type, &b);
    if (status != LMC_OK) return status;
    status = put_scalars(b, type, value, 1);
    return status == LMC_OK ? LMC_OK : drop_last_kv(w, status);
}

lmc_status lmc_gguf_writer_set_u32(lmc_gguf_writer *w, const char *key, uint32_t v) {
    return lmc_gguf_writer_set_scalar(w, key, LMC_GGUF_UINT32, &v);
}

lmc_status lmc_gguf_writer_set_f32(lmc_gguf_writer *w, const char *key, float v) {
    return lmc_gguf_writer_set_scalar(w, key, LMC_GGUF_FLOAT32, &v);
}

lmc_status lmc_gguf_writer_set_bool(lmc_gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return lmc_gguf_writer_set_scalar(w, key, LMC_GGUF_BOOL, &b);
}

lmc_status lmc_gguf_writer_set_str(lmc_gguf_writer *w, const char *key, const char *v) {
    lmc_buf *b;
    if (!v) return LMC_ERR_PARAM;
    lmc_status status = new_kv(w, key, LMC_GGUF_STRING, &b);
    if (status != LMC_OK) return status;
    status = put_string(b, v, strlen(v));
    return status == LMC_OK ? LMC_OK : drop_last_kv(w, status);
}

lmc_status lmc_gguf_writer_set_array(lmc_gguf_writer *w, const char *key, lmc_gguf_value_type elem_type,
                                     const void *values, uint64_t count) {
    lmc_buf *b;
    if (!scalar_size(elem_type) || (count && !values)) return LMC_ERR_PARAM;
    lmc_status status = new_kv(w, key, LMC_GGUF_ARRAY, &b);
    if (status != LMC_OK) return status;
    status = put_u32(b, (uint32_t)elem_type);
    if (status == LMC_OK) status = put_u64(b, count);
    if (status == LMC_OK) status = put_scalars(b, elem_type, values, count);
    return status == LMC_OK ? LMC_OK : drop_last_kv(w, status);
}

lmc_status lmc_gguf_writer_set_str_array(lmc_gguf_writer *w, const char *key, const char *const *strings,
                                         const uint64_t *lengths, uint64_t count) {
    lmc_buf *b;
    if (count && !strings) return LMC_ERR_PARAM;
    lmc_status status = new_kv(w, key, LMC_GGUF_ARRAY, &b);
    if (status != LMC_OK) return status;
    status = put_u32(b, LMC_GGUF_STRING);
    if (status == LMC_OK) status = put_u64(b, count);
    for (uint64_t i = 0; i < count && status == LMC_OK; i++)
        status = put_string(b, strings[i], lengths ? lengths[i] : strlen(strings[i]));
    return status == LMC_OK ? LMC_OK : drop_last_kv(w, status);
}

/* ---------------------------------------------------------------- tensors */

static int valid_shape(lmc_ggml_type type, uint32_t n_dims, const uint64_t *ne, uint64_t n_bytes) {
    uint32_t block_elements = lmc_ggml_block_elements(type);
    if (!block_elements || n_dims < 1 || n_dims > 4 || ne[0] % block_elements) return 0;
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || n_elements > (uint64_t)INT64_MAX / ne[d]) return 0;
        n_elements *= ne[d];
    }
    uint64_t n_blocks = n_elements / block_elements;
    return n_blocks <= UINT64_MAX / lmc_ggml_block_bytes(type) && n_blocks * lmc_ggml_block_bytes(type) == n_bytes;
}

lmc_status lmc_gguf_writer_add_tensor(lmc_gguf_writer *w, const char *name, lmc_ggml_type type, uint32_t n_dims,
                                      const uint64_t *ne, const void *data, uint64_t n_bytes) {
    if (!w || !name || !*name || strlen(name) > WRITER_MAX_NAME || !ne || !data || n_bytes > SIZE_MAX ||
        !valid_shape(type, n_dims, ne, n_bytes))
        return LMC_ERR_PARAM;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return LMC_ERR_PARAM;
    if (w->n_tensors == w->tensor_capacity) {
        size_t capacity = w->tensor_capacity ? 2 * w->tensor_capacity : 16;
        writer_tensor *tensors = realloc(w->tensors, capacity * sizeof *tensors);
        if (!tensors) return LMC_ERR_NOMEM;
        w->tensors = tensors;
        w->tensor_capacity = capacity;
    }
    writer_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(n_bytes ? (size_t)n_bytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return LMC_ERR_NOMEM;
    }
    memcpy(t->data, data, (size_t)n_bytes);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->n_bytes = n_bytes;
    w->n_tensors++;
    return LMC_OK;
}

/* ---------------------------------------------------------------- output */

/* Where the bytes go: a buffer, or a file through a bounded buffer. */
typedef struct {
    lmc_buf *buf;
    FILE *file;
} sink;

static lmc_status sink_flush(sink *s, lmc_buf *pending) {
    if (!s->file || pending->size == 0) return LMC_OK;
    if (fwrite(pending->data, 1, pending->size, s->file) != pending->size) return LMC_ERR_IO;
    pending->size = 0;
    return LMC_OK;
}

static uint64_t align_up(uint64_t offset) {
    return (offset + WRITER_ALIGNMENT - 1) / WRITER_ALIGNMENT * WRITER_ALIGNMENT;
}

static lmc_status put_padding(lmc_buf *b, uint64_t *position) {
    static const uint8_t zeros[WRITER_ALIGNMENT];
    size_t padding = (size_t)(align_up(*position) - *position);
    *position += padding;
    return lmc_buf_append(b, zeros, padding);
}

/* Header, key/values and tensor infos; offsets packed with alignment. */
static lmc_status put_metadata(const lmc_gguf_writer *w, lmc_buf *b) {
    lmc_status status = lmc_buf_append(b, "GGUF", 4);
    if (status == LMC_OK) status = put_u32(b, 3);
    if (status == LMC_OK) status = put_u64(b, w->n_tensors);
    if (status == LMC_OK) status = put_u64(b, w->n_kvs);
    for (size_t i = 0; i < w->n_kvs && status == LMC_OK; i++) {
        status = put_string(b, w->kvs[i].key, strlen(w->kvs[i].key));
        if (status == LMC_OK) status = lmc_buf_append(b, w->kvs[i].value.data, w->kvs[i].value.size);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors && status == LMC_OK; i++) {
        const writer_tensor *t = &w->tensors[i];
        status = put_string(b, t->name, strlen(t->name));
        if (status == LMC_OK) status = put_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && status == LMC_OK; d++) status = put_u64(b, t->ne[d]);
        if (status == LMC_OK) status = put_u32(b, (uint32_t)t->type);
        if (status == LMC_OK) status = put_u64(b, offset);
        offset = align_up(offset + t->n_bytes);
    }
    return status;
}

static lmc_status write_all(lmc_gguf_writer *w, sink *s) {
    lmc_buf local;
    lmc_buf *b = s->buf ? s->buf : &local;
    lmc_buf_init(&local);
    size_t start = b->size;
    lmc_status status = put_metadata(w, b);
    uint64_t position = b->size - start;
    if (status == LMC_OK && w->n_tensors) status = put_padding(b, &position);
    if (status == LMC_OK) status = sink_flush(s, b);
    for (size_t i = 0; i < w->n_tensors && status == LMC_OK; i++) {
        const writer_tensor *t = &w->tensors[i];
        if (s->file) {
            if (fwrite(t->data, 1, (size_t)t->n_bytes, s->file) != t->n_bytes) status = LMC_ERR_IO;
        } else {
            status = lmc_buf_append(b, t->data, (size_t)t->n_bytes);
        }
        position += t->n_bytes;
        if (status == LMC_OK && i + 1 < w->n_tensors) status = put_padding(b, &position);
        if (status == LMC_OK) status = sink_flush(s, b);
    }
    lmc_buf_free(&local);
    return status;
}

lmc_status lmc_gguf_writer_write_buf(lmc_gguf_writer *w, lmc_buf *out) {
    if (!w || !out) return LMC_ERR_PARAM;
    size_t start = out->size;
    sink s = {out, NULL};
    lmc_status status = write_all(w, &s);
    if (status != LMC_OK) out->size = start;
    return status;
}

lmc_status lmc_gguf_writer_write(lmc_gguf_writer *w, const char *path) {
    if (!w || !path) return LMC_ERR_PARAM;
    FILE *file = fopen(path, "wb");
    if (!file) return LMC_ERR_IO;
    sink s = {NULL, file};
    lmc_status status = write_all(w, &s);
    if (fclose(file) != 0 && status == LMC_OK) status = LMC_ERR_IO;
    if (status != LMC_OK) remove(path);
    return status;
}
