/*
 * GGUF reader (versions 2 and 3; they differ only in that v3 may be
 * big-endian, which lmc does not read).
 *
 * Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count; the
 * key/values (string key, u32 type, value); the tensor infos (string name,
 * u32 n_dims, u64 ne[n_dims], u32 type, u64 offset); padding to
 * general.alignment (default 32); the tensor data, each offset relative to
 * the start of the data section and a multiple of the alignment.
 *
 * The file is untrusted: every count, length and offset is checked against
 * the bytes that remain and against overflow before anything is allocated
 * or read, so a malformed file gives an error and never a crash.
 */
#define _POSIX_C_SOURCE 200809L /* open flags, mmap */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DEPTH 8          /* nesting of arrays inside arrays */
#define GGUF_MAX_NAME 1024        /* longest key or tensor name accepted */
#define GGUF_MAX_DIMS 4

typedef struct {
    char *key;
    lmc_gguf_value_type type;
    const uint8_t *value;          /* scalars: the value's bytes in the file */
    lmc_gguf_string string;        /* LMC_GGUF_STRING */
    lmc_gguf_value_type elem_type; /* arrays */
    uint64_t count;
    lmc_gguf_string *strings;      /* string arrays: every element */
    void *numbers;                 /* numeric arrays: an aligned copy of the elements */
} gguf_kv;

struct lmc_gguf {
    const uint8_t *bytes;
    size_t size;
    void *mapping; /* non-NULL when the file is mapped by lmc_gguf_open */
    uint32_t version;
    uint64_t alignment;
    int n_kv;
    gguf_kv *kvs;
    int n_tensors;
    lmc_gguf_tensor *tensors;
    uint64_t data_offset;
};

/* ---------------------------------------------------------------- cursor */

typedef struct {
    const uint8_t *bytes;
    size_t size;
    size_t pos;
    lmc_message *message;
} cursor;

static size_t remaining(const cursor *c) { return c->size - c->pos; }

static lmc_status take(cursor *c, size_t n, const uint8_t **out, const char *what) {
    *out = c->bytes + c->pos;
    if (n > remaining(c))
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: file ends inside %s (offset %zu)", what, c->pos);
    c->pos += n;
    return LMC_OK;
}

static lmc_status take_u32(cursor *c, uint32_t *v, const char *what) {
    const uint8_t *p;
    lmc_status status = take(c, 4, &p, what);
    if (status == LMC_OK) *v = lmc_get_le32(p);
    return status;
}

static lmc_status take_u64(cursor *c, uint64_t *v, const char *what) {
    const uint8_t *p;
    lmc_status status = take(c, 8, &p, what);
    if (status == LMC_OK) *v = lmc_get_le64(p);
    return status;
}

static lmc_status take_string(cursor *c, lmc_gguf_string *s, const char *what) {
    uint64_t length;
    const uint8_t *p;
    lmc_status status = take_u64(c, &length, what);
    if (status != LMC_OK) return status;
    if (length > remaining(c))
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: %s of %llu bytes extends past end of file",
                        what, (unsigned long long)length);
    status = take(c, (size_t)length, &p, what);
    s->data = (const char *)p;
    s->size = length;
    return status;
}

/* A NUL-terminated copy of a key or tensor name, refusing embedded NULs. */
static lmc_status take_name(cursor *c, char **out, const char *what) {
    lmc_gguf_string s = {NULL, 0};
    lmc_status status = take_string(c, &s, what);
    if (status != LMC_OK) return status;
    if (s.size > GGUF_MAX_NAME)
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: %s of %llu bytes is too long", what,
                        (unsigned long long)s.size);
    if (memchr(s.data, 0, (size_t)s.size))
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: %s contains a NUL byte", what);
    *out = malloc((size_t)s.size + 1);
    if (!*out) return lmc_fail(c->message, LMC_ERR_NOMEM, "GGUF: out of memory");
    memcpy(*out, s.data, (size_t)s.size);
    (*out)[s.size] = '\0';
    return LMC_OK;
}

/* ---------------------------------------------------------------- values */

/* Bytes of one value of a fixed-size type; 0 for strings, arrays and
 * unknown types. */
static size_t scalar_size(uint32_t type) {
    switch (type) {
    case LMC_GGUF_UINT8: case LMC_GGUF_INT8: case LMC_GGUF_BOOL: return 1;
    case LMC_GGUF_UINT16: case LMC_GGUF_INT16: return 2;
    case LMC_GGUF_UINT32: case LMC_GGUF_INT32: case LMC_GGUF_FLOAT32: return 4;
    case LMC_GGUF_UINT64: case LMC_GGUF_INT64: case LMC_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int known_value_type(uint32_t type) { return type <= LMC_GGUF_FLOAT64; }

static lmc_status skip_value(cursor *c, uint32_t type, int depth, const char *key);

/* Reads an array header and checks its count against the bytes left: every
 * element takes at least one byte (eight for strings, twelve for arrays),
 * so a count that cannot fit is refused before anything is allocated. */
static lmc_status take_array_header(cursor *c, uint32_t *elem_type, uint64_t *count, const char *key) {
    lmc_status status = take_u32(c, elem_type, "an array type");
    if (status == LMC_OK) status = take_u64(c, count, "an array length");
    if (status != LMC_OK) return status;
    if (!known_value_type(*elem_type))
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: key '%s' has an array of unknown type %u", key,
                        *elem_type);
    size_t min_size = *elem_type == LMC_GGUF_STRING ? 8 : *elem_type == LMC_GGUF_ARRAY ? 12 : scalar_size(*elem_type);
    if (*count > remaining(c) / min_size)
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID,
                        "GGUF: array '%s' of %llu elements extends past end of file", key,
                        (unsigned long long)*count);
    return LMC_OK;
}

static lmc_status skip_array(cursor *c, int depth, const char *key) {
    uint32_t elem_type;
    uint64_t count;
    const uint8_t *p;
    if (depth >= GGUF_MAX_DEPTH)
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: arrays nested too deeply in key '%s'", key);
    lmc_status status = take_array_header(c, &elem_type, &count, key);
    if (status != LMC_OK) return status;
    if (scalar_size(elem_type)) return take(c, (size_t)count * scalar_size(elem_type), &p, "an array");
    for (uint64_t i = 0; i < count && status == LMC_OK; i++) status = skip_value(c, elem_type, depth + 1, key);
    return status;
}

static lmc_status skip_value(cursor *c, uint32_t type, int depth, const char *key) {
    const uint8_t *p;
    lmc_gguf_string s;
    if (type == LMC_GGUF_STRING) return take_string(c, &s, "a string value");
    if (type == LMC_GGUF_ARRAY) return skip_array(c, depth, key);
    if (!scalar_size(type))
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: key '%s' has unknown value type %u", key, type);
    return take(c, scalar_size(type), &p, "a value");
}

/* Top-level arrays keep an index: the strings of string arrays, and an
 * aligned copy of numeric arrays (their bytes in the file may sit at any
 * address). Nested arrays are validated and skipped. */
static lmc_status read_array(cursor *c, gguf_kv *kv) {
    uint32_t elem_type;
    lmc_status status = take_array_header(c, &elem_type, &kv->count, kv->key);
    if (status != LMC_OK) return status;
    kv->elem_type = (lmc_gguf_value_type)elem_type;
    kv->value = c->bytes + c->pos;
    if (elem_type == LMC_GGUF_ARRAY) {
        for (uint64_t i = 0; i < kv->count && status == LMC_OK; i++) status = skip_array(c, 1, kv->key);
        return status;
    }
    if (elem_type == LMC_GGUF_STRING) {
        kv->strings = malloc((size_t)LMC_MAX(kv->count, 1) * sizeof *kv->strings);
        if (!kv->strings) return lmc_fail(c->message, LMC_ERR_NOMEM, "GGUF: out of memory");
        for (uint64_t i = 0; i < kv->count && status == LMC_OK; i++)
            status = take_string(c, &kv->strings[i], "a string array element");
        return status;
    }
    size_t n_bytes = (size_t)kv->count * scalar_size(elem_type);
    const uint8_t *p;
    status = take(c, n_bytes, &p, "an array");
    if (status != LMC_OK) return status;
    kv->numbers = malloc(LMC_MAX(n_bytes, 1));
    if (!kv->numbers) return lmc_fail(c->message, LMC_ERR_NOMEM, "GGUF: out of memory");
    memcpy(kv->numbers, p, n_bytes);
    return LMC_OK;
}

static lmc_status read_kv(cursor *c, gguf_kv *kv) {
    uint32_t type;
    lmc_status status = take_name(c, &kv->key, "a key");
    if (status == LMC_OK) status = take_u32(c, &type, "a value type");
    if (status != LMC_OK) return status;
    if (!known_value_type(type))
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: key '%s' has unknown value type %u", kv->key, type);
    kv->type = (lmc_gguf_value_type)type;
    if (type == LMC_GGUF_ARRAY) return read_array(c, kv);
    if (type == LMC_GGUF_STRING) return take_string(c, &kv->string, "a string value");
    return take(c, scalar_size(type), &kv->value, "a value");
}

/* ---------------------------------------------------------------- tensors */

static lmc_status tensor_size(lmc_gguf_tensor *t, lmc_message *message) {
    uint32_t block_elements = lmc_ggml_block_elements(t->type);
    if (!block_elements)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: tensor '%s' has unsupported type %u", t->name,
                        (unsigned)t->type);
    t->n_elements = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        /* ggml counts elements in int64_t. */
        if (t->ne[d] > (uint64_t)INT64_MAX ||
            (t->ne[d] && t->n_elements > (uint64_t)INT64_MAX / t->ne[d]))
            return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: tensor '%s' has too many elements", t->name);
        t->n_elements *= t->ne[d];
    }
    if (t->ne[0] % block_elements)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID,
                        "GGUF: tensor '%s' has rows of %llu values, not a multiple of the %s block of %u", t->name,
                        (unsigned long long)t->ne[0], lmc_ggml_type_name(t->type), block_elements);
    uint64_t n_blocks = t->n_elements / block_elements;
    if (n_blocks > UINT64_MAX / lmc_ggml_block_bytes(t->type))
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: tensor '%s' is too large", t->name);
    t->n_bytes = n_blocks * lmc_ggml_block_bytes(t->type);
    return LMC_OK;
}

static lmc_status read_tensor_info(cursor *c, lmc_gguf_tensor *t, uint64_t *offset) {
    char *name = NULL;
    uint32_t type;
    lmc_status status = take_name(c, &name, "a tensor name");
    t->name = name;
    if (status == LMC_OK) status = take_u32(c, &t->n_dims, "a tensor's dimension count");
    if (status != LMC_OK) return status;
    if (t->n_dims > GGUF_MAX_DIMS)
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: tensor '%s' has %u dimensions (at most %d)",
                        t->name, t->n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims && status == LMC_OK; d++) status = take_u64(c, &t->ne[d], "a tensor dimension");
    if (status == LMC_OK) status = take_u32(c, &type, "a tensor type");
    if (status == LMC_OK) status = take_u64(c, offset, "a tensor offset");
    if (status != LMC_OK) return status;
    t->type = (lmc_ggml_type)type;
    return tensor_size(t, c->message);
}

typedef struct {
    const char *name;
    uint64_t offset;
    uint64_t n_bytes;
} span;

static int compare_names(const void *a, const void *b) {
    return strcmp(((const span *)a)->name, ((const span *)b)->name);
}

static int compare_offsets(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

/* Sorts the spans by name to find duplicates. */
static lmc_status check_unique(span *spans, size_t n, const char *what, lmc_message *message) {
    qsort(spans, n, sizeof *spans, compare_names);
    for (size_t i = 1; i < n; i++)
        if (strcmp(spans[i - 1].name, spans[i].name) == 0)
            return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: %s '%s' appears twice", what, spans[i].name);
    return LMC_OK;
}

/* Every tensor lies inside the data section, aligned, and no two overlap. */
static lmc_status check_tensor_data(lmc_gguf *g, const uint64_t *offsets, lmc_message *message) {
    uint64_t data_size = g->size - g->data_offset;
    span *spans = malloc((size_t)LMC_MAX(g->n_tensors, 1) * sizeof *spans);
    if (!spans) return lmc_fail(message, LMC_ERR_NOMEM, "GGUF: out of memory");
    lmc_status status = LMC_OK;
    for (int i = 0; i < g->n_tensors && status == LMC_OK; i++) {
        lmc_gguf_tensor *t = &g->tensors[i];
        spans[i] = (span){t->name, offsets[i], t->n_bytes};
        if (offsets[i] % g->alignment)
            status = lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: tensor '%s' is not aligned to %llu bytes",
                              t->name, (unsigned long long)g->alignment);
        else if (offsets[i] > data_size || t->n_bytes > data_size - offsets[i])
            status = lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: tensor '%s' extends past end of file", t->name);
        else
            t->data = g->bytes + g->data_offset + offsets[i];
    }
    if (status == LMC_OK) status = check_unique(spans, (size_t)g->n_tensors, "tensor", message);
    if (status == LMC_OK) {
        /* In offset order, each non-empty tensor starts at or after the
         * furthest end seen so far (offsets and sizes are within the file,
         * so the sums cannot overflow). */
        qsort(spans, (size_t)g->n_tensors, sizeof *spans, compare_offsets);
        uint64_t end = 0;
        const char *end_name = NULL;
        for (int i = 0; i < g->n_tensors && status == LMC_OK; i++) {
            if (!spans[i].n_bytes) continue;
            if (end_name && spans[i].offset < end)
                status = lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: tensors '%s' and '%s' overlap", end_name,
                                  spans[i].name);
            if (spans[i].offset + spans[i].n_bytes > end) {
                end = spans[i].offset + spans[i].n_bytes;
                end_name = spans[i].name;
            }
        }
    }
    free(spans);
    return status;
}

/* ---------------------------------------------------------------- parsing */

static lmc_status read_header(cursor *c, lmc_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    const uint8_t *magic;
    lmc_status status = take(c, 4, &magic, "the header");
    if (status != LMC_OK) return status;
    if (memcmp(magic, "GGUF", 4) != 0)
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: bad magic (not a GGUF file)");
    status = take_u32(c, &g->version, "the header");
    if (status != LMC_OK) return status;
    if (g->version != 2 && g->version != 3) {
        /* A big-endian file reads its version byte-swapped. */
        if (g->version & 0xffff0000u)
            return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: big-endian files are not supported");
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: version %u is not supported (2 and 3 are)",
                        g->version);
    }
    status = take_u64(c, n_tensors, "the header");
    if (status == LMC_OK) status = take_u64(c, n_kv, "the header");
    if (status != LMC_OK) return status;
    /* A key/value takes at least 13 bytes and a tensor info 24. */
    if (*n_kv > remaining(c) / 13 || *n_kv > INT_MAX)
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: %llu key/values cannot fit in the file",
                        (unsigned long long)*n_kv);
    if (*n_tensors > remaining(c) / 24 || *n_tensors > INT_MAX)
        return lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: %llu tensors cannot fit in the file",
                        (unsigned long long)*n_tensors);
    return LMC_OK;
}

static lmc_status read_kvs(cursor *c, lmc_gguf *g, uint64_t n_kv) {
    g->kvs = calloc((size_t)LMC_MAX(n_kv, 1), sizeof *g->kvs);
    if (!g->kvs) return lmc_fail(c->message, LMC_ERR_NOMEM, "GGUF: out of memory");
    lmc_status status = LMC_OK;
    for (uint64_t i = 0; i < n_kv && status == LMC_OK; i++) {
        g->n_kv = (int)i + 1;
        status = read_kv(c, &g->kvs[i]);
    }
    if (status != LMC_OK) return status;
    span *spans = malloc((size_t)LMC_MAX(n_kv, 1) * sizeof *spans);
    if (!spans) return lmc_fail(c->message, LMC_ERR_NOMEM, "GGUF: out of memory");
    for (int i = 0; i < g->n_kv; i++) spans[i] = (span){g->kvs[i].key, 0, 0};
    status = check_unique(spans, (size_t)g->n_kv, "key", c->message);
    free(spans);
    return status;
}

static lmc_status read_alignment(lmc_gguf *g, lmc_message *message) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int index = lmc_gguf_find(g, "general.alignment");
    if (index < 0) return LMC_OK;
    if (g->kvs[index].type != LMC_GGUF_UINT32)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: general.alignment is not a uint32");
    uint32_t alignment = lmc_get_le32(g->kvs[index].value);
    if (alignment == 0 || (alignment & (alignment - 1)))
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: general.alignment %u is not a power of two", alignment);
    g->alignment = alignment;
    return LMC_OK;
}

static lmc_status read_tensors(cursor *c, lmc_gguf *g, uint64_t n_tensors) {
    g->tensors = calloc((size_t)LMC_MAX(n_tensors, 1), sizeof *g->tensors);
    uint64_t *offsets = malloc((size_t)LMC_MAX(n_tensors, 1) * sizeof *offsets);
    lmc_status status = LMC_OK;
    if (!g->tensors || !offsets) status = lmc_fail(c->message, LMC_ERR_NOMEM, "GGUF: out of memory");
    for (uint64_t i = 0; i < n_tensors && status == LMC_OK; i++) {
        g->n_tensors = (int)i + 1;
        status = read_tensor_info(c, &g->tensors[i], &offsets[i]);
    }
    if (status == LMC_OK && n_tensors > 0) {
        uint64_t padding = (g->alignment - c->pos % g->alignment) % g->alignment;
        if (padding > remaining(c))
            status = lmc_fail(c->message, LMC_ERR_MODEL_INVALID, "GGUF: data section starts past end of file");
        else
            g->data_offset = c->pos + padding;
    }
    if (status == LMC_OK) status = check_tensor_data(g, offsets, c->message);
    free(offsets);
    return status;
}

static lmc_status parse(lmc_gguf *g, lmc_message *message) {
    cursor c = {g->bytes, g->size, 0, message};
    uint64_t n_tensors, n_kv;
    lmc_status status = read_header(&c, g, &n_tensors, &n_kv);
    if (status == LMC_OK) status = read_kvs(&c, g, n_kv);
    if (status == LMC_OK) status = read_alignment(g, message);
    if (status == LMC_OK) status = read_tensors(&c, g, n_tensors);
    return status;
}

lmc_status lmc_gguf_open_memory(const void *data, size_t size, lmc_gguf **out, lmc_message *message) {
    *out = NULL;
    lmc_gguf *g = calloc(1, sizeof *g);
    if (!g) return lmc_fail(message, LMC_ERR_NOMEM, "GGUF: out of memory");
    g->bytes = data;
    g->size = data ? size : 0;
    lmc_status status = parse(g, message);
    if (status != LMC_OK) {
        lmc_gguf_close(g);
        return status;
    }
    *out = g;
    return LMC_OK;
}

lmc_status lmc_gguf_open(const char *path, lmc_gguf **out, lmc_message *message) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lmc_fail(message, LMC_ERR_IO, "cannot open model '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lmc_fail(message, LMC_ERR_IO, "model '%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: '%s' is empty", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "GGUF: '%s' is too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    void *mapping = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (mapping == MAP_FAILED) return lmc_fail(message, LMC_ERR_IO, "cannot map model '%s': %s", path, strerror(errno));
    lmc_status status = lmc_gguf_open_memory(mapping, size, out, message);
    if (status != LMC_OK) {
        munmap(mapping, size);
        return status;
    }
    (*out)->mapping = mapping;
    return LMC_OK;
}

void lmc_gguf_close(lmc_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].strings);
        free(g->kvs[i].numbers);
    }
    free(g->kvs);
    for (int i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->tensors);
    if (g->mapping) munmap(g->mapping, g->size);
    free(g);
}

/* ---------------------------------------------------------------- access */

uint32_t lmc_gguf_version(const lmc_gguf *g) { return g->version; }

const uint8_t *lmc_gguf_bytes(const lmc_gguf *g, size_t *size) {
    *size = g->size;
    return g->bytes;
}

int lmc_gguf_n_kv(const lmc_gguf *g) { return g->n_kv; }

int lmc_gguf_find(const lmc_gguf *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->kvs[i].key, key) == 0) return i;
    return -1;
}

const char *lmc_gguf_key(const lmc_gguf *g, int index) {
    return index >= 0 && index < g->n_kv ? g->kvs[index].key : NULL;
}

lmc_gguf_value_type lmc_gguf_type(const lmc_gguf *g, int index) {
    return index >= 0 && index < g->n_kv ? g->kvs[index].type : (lmc_gguf_value_type)-1;
}

static const gguf_kv *find_kv(const lmc_gguf *g, const char *key, lmc_gguf_value_type type) {
    int index = lmc_gguf_find(g, key);
    return index >= 0 && g->kvs[index].type == type ? &g->kvs[index] : NULL;
}

/* Integers of any width and signedness, as a signed flag plus magnitude
 * (enough to check ranges without overflow). */
static int read_integer(lmc_gguf_value_type type, const uint8_t *p, int *negative, uint64_t *magnitude) {
    int64_t s;
    switch (type) {
    case LMC_GGUF_UINT8: *negative = 0; *magnitude = p[0]; return 1;
    case LMC_GGUF_UINT16: *negative = 0; *magnitude = (uint64_t)(p[0] | p[1] << 8); return 1;
    case LMC_GGUF_UINT32: *negative = 0; *magnitude = lmc_get_le32(p); return 1;
    case LMC_GGUF_UINT64: *negative = 0; *magnitude = lmc_get_le64(p); return 1;
    case LMC_GGUF_INT8: s = (int8_t)p[0]; break;
    case LMC_GGUF_INT16: s = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case LMC_GGUF_INT32: s = (int32_t)lmc_get_le32(p); break;
    case LMC_GGUF_INT64: s = (int64_t)lmc_get_le64(p); break;
    default: return 0;
    }
    *negative = s < 0;
    *magnitude = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return 1;
}

static double read_number(lmc_gguf_value_type type, const uint8_t *p) {
    int negative;
    uint64_t magnitude;
    if (read_integer(type, p, &negative, &magnitude)) return negative ? -(double)magnitude : (double)magnitude;
    if (type == LMC_GGUF_BOOL) return p[0] != 0;
    if (type == LMC_GGUF_FLOAT32) {
        uint32_t bits = lmc_get_le32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    if (type == LMC_GGUF_FLOAT64) {
        uint64_t bits = lmc_get_le64(p);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    return 0.0;
}

int lmc_gguf_get_u64(const lmc_gguf *g, const char *key, uint64_t *out) {
    int index = lmc_gguf_find(g, key), negative;
    uint64_t magnitude;
    if (index < 0 || !read_integer(g->kvs[index].type, g->kvs[index].value, &negative, &magnitude) || negative)
        return -1;
    *out = magnitude;
    return 0;
}

int lmc_gguf_get_u32(const lmc_gguf *g, const char *key, uint32_t *out) {
    uint64_t v;
    if (lmc_gguf_get_u64(g, key, &v) != 0 || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

int lmc_gguf_get_f32(const lmc_gguf *g, const char *key, float *out) {
    int index = lmc_gguf_find(g, key);
    if (index < 0) return -1;
    lmc_gguf_value_type type = g->kvs[index].type;
    if (type != LMC_GGUF_FLOAT32 && type != LMC_GGUF_FLOAT64) return -1;
    *out = (float)read_number(type, g->kvs[index].value);
    return 0;
}

int lmc_gguf_get_bool(const lmc_gguf *g, const char *key, int *out) {
    const gguf_kv *kv = find_kv(g, key, LMC_GGUF_BOOL);
    if (!kv) return -1;
    *out = kv->value[0] != 0;
    return 0;
}

int lmc_gguf_get_str(const lmc_gguf *g, const char *key, lmc_gguf_string *out) {
    const gguf_kv *kv = find_kv(g, key, LMC_GGUF_STRING);
    if (!kv) return -1;
    *out = kv->string;
    return 0;
}

int lmc_gguf_get_array(const lmc_gguf *g, const char *key, lmc_gguf_value_type *elem_type, uint64_t *count) {
    const gguf_kv *kv = find_kv(g, key, LMC_GGUF_ARRAY);
    if (!kv) return -1;
    *elem_type = kv->elem_type;
    *count = kv->count;
    return 0;
}

lmc_gguf_string lmc_gguf_array_str(const lmc_gguf *g, const char *key, uint64_t i) {
    const gguf_kv *kv = find_kv(g, key, LMC_GGUF_ARRAY);
    if (!kv || !kv->strings || i >= kv->count) return (lmc_gguf_string){NULL, 0};
    return kv->strings[i];
}

double lmc_gguf_array_num(const lmc_gguf *g, const char *key, uint64_t i) {
    const gguf_kv *kv = find_kv(g, key, LMC_GGUF_ARRAY);
    if (!kv || !kv->numbers || i >= kv->count) return 0.0;
    return read_number(kv->elem_type, (const uint8_t *)kv->numbers + i * scalar_size(kv->elem_type));
}

const void *lmc_gguf_array_data(const lmc_gguf *g, const char *key) {
    const gguf_kv *kv = find_kv(g, key, LMC_GGUF_ARRAY);
    return kv ? kv->numbers : NULL;
}

int lmc_gguf_n_tensors(const lmc_gguf *g) { return g->n_tensors; }

const lmc_gguf_tensor *lmc_gguf_tensor_at(const lmc_gguf *g, int index) {
    return index >= 0 && index < g->n_tensors ? &g->tensors[index] : NULL;
}

const lmc_gguf_tensor *lmc_gguf_tensor_find(const lmc_gguf *g, const char *name) {
    for (int i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}
