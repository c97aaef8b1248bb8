/*
 * libFuzzer target: any byte string must survive encode_lossless followed
 * by decode unchanged, with every tokenizer kind. Real vocabularies come
 * from $LMC_SHARED_DIR/peer/gguf-vocab (default: the shared/ folder beside
 * the source tree); two small built-in ones cover escapes and lmc-bytes.
 * llama.cpp-compatible encode() runs too, for crashes and sanitizer reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#ifndef LMC_FUZZ_SHARED_DIR
#define LMC_FUZZ_SHARED_DIR "../shared"
#endif

#define MAX_TOKENIZERS 8

static lmc_tokenizer *tokenizers[MAX_TOKENIZERS];
static int n_tokenizers;

static void add_from_gguf(lmc_gguf *gguf, const char *what) {
    lmc_message message;
    lmc_tokenizer *tok;
    if (lmc_tokenizer_from_gguf(gguf, &tok, &message) != LMC_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s\n", what, message.text);
        abort();
    }
    tokenizers[n_tokenizers++] = tok;
}

static void add_file(const char *dir, const char *name) {
    char path[4096];
    lmc_gguf *gguf;
    lmc_message message;
    snprintf(path, sizeof path, "%s/peer/gguf-vocab/%s", dir, name);
    if (lmc_gguf_open(path, &gguf, &message) != LMC_OK) {
        fprintf(stderr, "fuzz_tokenizer: skipping %s (%s)\n", path, message.text);
        return;
    }
    add_from_gguf(gguf, path);
    lmc_gguf_close(gguf);
}

/* Builds a tokenizer from a GGUF the writer holds (the writer is freed). */
static void add_written(lmc_gguf_writer *w, const char *what) {
    lmc_buf bytes;
    lmc_gguf *gguf;
    lmc_message message;
    lmc_buf_init(&bytes);
    if (lmc_gguf_writer_write_buf(w, &bytes) != LMC_OK || lmc_gguf_open_memory(bytes.data, bytes.size, &gguf, &message) != LMC_OK)
        abort();
    lmc_gguf_writer_free(w);
    add_from_gguf(gguf, what);
    lmc_gguf_close(gguf);
    lmc_buf_free(&bytes);
}

/* SentencePiece without most byte tokens: escapes, literal "▁", merges. */
static void add_small_spm(void) {
    static const char *const tokens[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xE2\x96\x81", "a", "b", "ab",
                                         ("\xE2\x96\x81" "a"), "\xE2\x96\x81\xE2\x96\x81", "\xC3\xA9", "<0x0A>"};
    static const int32_t types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 6};
    static const float scores[] = {0, 0, 0, 0, -1, -2, -3, -4, -5, -6, -7, 0};
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    if (!w || lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama") != LMC_OK ||
        lmc_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", tokens, NULL, 12) != LMC_OK ||
        lmc_gguf_writer_set_array(w, "tokenizer.ggml.token_type", LMC_GGUF_INT32, types, 12) != LMC_OK ||
        lmc_gguf_writer_set_array(w, "tokenizer.ggml.scores", LMC_GGUF_FLOAT32, scores, 12) != LMC_OK)
        abort();
    add_written(w, "small SentencePiece vocabulary");
}

static void add_bytes(void) {
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    if (!w || lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", "lmc-bytes") != LMC_OK) abort();
    add_written(w, "lmc-bytes");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *shared = getenv("LMC_SHARED_DIR");
    if (!shared) shared = LMC_FUZZ_SHARED_DIR;
    add_file(shared, "ggml-vocab-llama-bpe.gguf");
    add_file(shared, "ggml-vocab-gpt-2.gguf");
    add_file(shared, "ggml-vocab-llama-spm.gguf");
    add_file(shared, "ggml-vocab-starcoder.gguf");
    add_small_spm();
    add_bytes();
    return 0;
}

static void check_round_trip(const lmc_tokenizer *tok, const uint8_t *data, size_t size) {
    int32_t *ids;
    size_t n;
    lmc_buf decoded;
    lmc_buf_init(&decoded);
    if (lmc_tokenizer_encode_lossless(tok, data, size, &ids, &n) != LMC_OK) abort();
    if (lmc_tokenizer_decode(tok, ids, n, &decoded) != LMC_OK) abort();
    if (decoded.size != size || (size && memcmp(decoded.data, data, size) != 0)) {
        fprintf(stderr, "fuzz_tokenizer: %s tokenizer does not round-trip %zu bytes\n",
                lmc_tokenizer_type_name(tok), size);
        abort();
    }
    free(ids);
    lmc_buf_free(&decoded);
    if (lmc_tokenizer_encode(tok, data, size, &ids, &n) != LMC_OK) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= lmc_tokenizer_vocab_size(tok)) abort();
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int t = 0; t < n_tokenizers; t++) check_round_trip(tokenizers[t], data, size);
    return 0;
}
