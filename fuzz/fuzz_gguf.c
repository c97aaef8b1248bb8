/*
 * libFuzzer target for the GGUF reader: any input must give a clean error
 * or a file whose every key, array element and tensor can be read within
 * bounds. Seeds: fuzz/corpus/gguf/ (files from the writer and hand-made
 * malformed ones).
 *
 * Build and run (clang; the reader needs only these sources):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Iinclude \
 *       fuzz/fuzz_gguf.c src/model/gguf.c src/model/tensor.c src/common/common.c \
 *       -lxxhash -lpthread -lm -o fuzz_gguf
 *   ./fuzz_gguf -max_len=65536 fuzz/corpus/gguf
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* Largest tensor dequantised per input (keeps each run fast). */
#define MAX_DEQUANTISED 65536

static void check(int condition) {
    if (!condition) abort();
}

static void walk_metadata(const lmc_gguf *g, const uint8_t *bytes, size_t size) {
    for (int i = 0; i < lmc_gguf_n_kv(g); i++) {
        const char *key = lmc_gguf_key(g, i);
        check(key != NULL && lmc_gguf_find(g, key) == i);
        uint64_t u64, count;
        uint32_t u32;
        float f32;
        int b;
        lmc_gguf_string s;
        lmc_gguf_value_type elem;
        (void)lmc_gguf_type(g, i);
        (void)lmc_gguf_get_u64(g, key, &u64);
        (void)lmc_gguf_get_u32(g, key, &u32);
        (void)lmc_gguf_get_f32(g, key, &f32);
        (void)lmc_gguf_get_bool(g, key, &b);
        if (lmc_gguf_get_str(g, key, &s) == 0 && s.size > 0)
            check((const uint8_t *)s.data >= bytes && (const uint8_t *)s.data + s.size <= bytes + size);
        if (lmc_gguf_get_array(g, key, &elem, &count) != 0) continue;
        (void)lmc_gguf_array_data(g, key);
        for (uint64_t j = 0; j < count; j++) {
            lmc_gguf_string e = lmc_gguf_array_str(g, key, j);
            if (e.size > 0)
                check((const uint8_t *)e.data >= bytes && (const uint8_t *)e.data + e.size <= bytes + size);
            (void)lmc_gguf_array_num(g, key, j);
        }
    }
}

static void walk_tensors(const lmc_gguf *g, const uint8_t *bytes, size_t size) {
    for (int i = 0; i < lmc_gguf_n_tensors(g); i++) {
        const lmc_gguf_tensor *t = lmc_gguf_tensor_at(g, i);
        check(lmc_gguf_tensor_find(g, t->name) == t);
        check((const uint8_t *)t->data >= bytes && t->n_bytes <= size &&
              (const uint8_t *)t->data + t->n_bytes <= bytes + size);
        (void)lmc_ggml_type_name(t->type);
        if (t->n_elements == 0 || t->n_elements > MAX_DEQUANTISED) continue;
        float *out = malloc((size_t)t->n_elements * sizeof *out);
        if (!out) continue;
        lmc_message message;
        (void)lmc_tensor_to_f32(t, out, &message);
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lmc_gguf *g = NULL;
    lmc_message message;
    if (lmc_gguf_open_memory(data, size, &g, &message) != LMC_OK) {
        check(g == NULL && message.text[0] != '\0');
        return 0;
    }
    size_t mapped_size;
    check(lmc_gguf_bytes(g, &mapped_size) == data && mapped_size == size);
    walk_metadata(g, data, size);
    walk_tensors(g, data, size);
    lmc_gguf_close(g);
    return 0;
}
