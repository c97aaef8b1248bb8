/* Model tools of the public API: tokenizing text, describing a model file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib.h"

void lmc_free(void *pointer) {
    free(pointer);
}

static void copy_message(const lmc_message *m, char *out, size_t size) {
    if (out && size)
        snprintf(out, size, "%s", m->text);
}

static lmc_status open_model_file(const char *arg, lmc_gguf **gguf, lmc_message *m) {
    char path[1024];
    lmc_status status = lmc_resolve_model_path(arg, path, sizeof path, m);
    if (status == LMC_OK)
        status = lmc_gguf_open(path, gguf, m);
    return status;
}

lmc_status lmc_tokenize(const char *model, const void *text, size_t size, int32_t **ids, size_t *count, char *message,
                        size_t message_size) {
    lmc_message m = {"no error"};
    lmc_gguf *gguf = NULL;
    lmc_tokenizer *tok = NULL;
    *ids = NULL;
    *count = 0;
    lmc_status status = open_model_file(model, &gguf, &m);
    if (status == LMC_OK)
        status = lmc_tokenizer_from_gguf(gguf, &tok, &m);
    if (status == LMC_OK && (status = lmc_tokenizer_encode(tok, text, size, ids, count)) != LMC_OK)
        lmc_fail(&m, status, "tokenization failed");
    lmc_tokenizer_free(tok);
    lmc_gguf_close(gguf);
    copy_message(&m, message, message_size);
    return status;
}

/* ---- Describing a model ---- */

static void print_metadata(lmc_buf *out, const lmc_gguf *g) {
    char line[512];
    for (int i = 0; i < lmc_gguf_n_kv(g); i++) {
        const char *key = lmc_gguf_key(g, i);
        lmc_gguf_value_type type = lmc_gguf_type(g, i);
        lmc_gguf_string s;
        uint64_t u, count;
        float f;
        int n = 0;
        if (type == LMC_GGUF_STRING && lmc_gguf_get_str(g, key, &s) == 0)
            n = snprintf(line, sizeof line, "%s: %.*s\n", key, (int)LMC_MIN(s.size, 200), s.data);
        else if (type == LMC_GGUF_ARRAY && lmc_gguf_get_array(g, key, &(lmc_gguf_value_type){0}, &count) == 0)
            n = snprintf(line, sizeof line, "%s: [%llu values]\n", key, (unsigned long long)count);
        else if ((type == LMC_GGUF_FLOAT32 || type == LMC_GGUF_FLOAT64) && lmc_gguf_get_f32(g, key, &f) == 0)
            n = snprintf(line, sizeof line, "%s: %g\n", key, (double)f);
        else if (lmc_gguf_get_u64(g, key, &u) == 0)
            n = snprintf(line, sizeof line, "%s: %llu\n", key, (unsigned long long)u);
        if (n > 0)
            lmc_buf_append(out, line, LMC_MIN((size_t)n, sizeof line - 1));
    }
}

static void print_tensors(lmc_buf *out, const lmc_gguf *g) {
    uint64_t per_type[64] = {0}, parameters = 0;
    for (int i = 0; i < lmc_gguf_n_tensors(g); i++) {
        const lmc_gguf_tensor *t = lmc_gguf_tensor_at(g, i);
        parameters += t->n_elements;
        if ((unsigned)t->type < 64)
            per_type[t->type] += t->n_elements;
    }
    char line[256];
    int n = snprintf(line, sizeof line, "tensors: %d\nparameters: %llu\n", lmc_gguf_n_tensors(g),
                     (unsigned long long)parameters);
    lmc_buf_append(out, line, (size_t)n);
    for (int type = 0; type < 64; type++) {
        if (!per_type[type])
            continue;
        n = snprintf(line, sizeof line, "tensor type %s: %llu values\n", lmc_ggml_type_name((lmc_ggml_type)type),
                     (unsigned long long)per_type[type]);
        lmc_buf_append(out, line, (size_t)n);
    }
}

static void print_tokenizer(lmc_buf *out, const lmc_gguf *g) {
    lmc_tokenizer *tok;
    lmc_message m;
    char line[256];
    int n;
    if (lmc_tokenizer_from_gguf(g, &tok, &m) == LMC_OK) {
        n = snprintf(line, sizeof line, "tokenizer: %s, %d tokens%s\n", lmc_tokenizer_type_name(tok),
                     lmc_tokenizer_vocab_size(tok), lmc_tokenizer_covers_all_bytes(tok) ? "" : " (bytes escaped)");
        lmc_tokenizer_free(tok);
    } else {
        n = snprintf(line, sizeof line, "tokenizer: unusable (%s)\n", m.text);
    }
    lmc_buf_append(out, line, LMC_MIN((size_t)n, sizeof line - 1));
}

lmc_status lmc_model_describe(const char *model, char **text, char *message, size_t message_size) {
    lmc_message m = {"no error"};
    lmc_gguf *g = NULL;
    *text = NULL;
    lmc_status status = open_model_file(model, &g, &m);
    if (status == LMC_OK) {
        lmc_buf out;
        lmc_buf_init(&out);
        size_t size;
        uint8_t hash[16];
        char hex[33], line[128];
        const uint8_t *bytes = lmc_gguf_bytes(g, &size);
        lmc_hash128(bytes, size, hash);
        lmc_hash_hex(hash, hex);
        int n = snprintf(line, sizeof line, "file size: %zu\nhash: %s\ngguf version: %u\n", size, hex,
                         lmc_gguf_version(g));
        lmc_buf_append(&out, line, (size_t)n);
        print_metadata(&out, g);
        print_tokenizer(&out, g);
        print_tensors(&out, g);
        lmc_buf_append_byte(&out, 0);
        if (out.data)
            *text = (char *)out.data;
        else
            status = lmc_fail(&m, LMC_ERR_NOMEM, "out of memory");
        lmc_gguf_close(g);
    }
    copy_message(&m, message, message_size);
    return status;
}
