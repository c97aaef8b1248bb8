/*
 * llama2.c checkpoint and tokenizer -> Llama GGUF.
 *
 * Checkpoint (karpathy/llama2.c run.c, "legacy" format): seven int32
 * dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (a
 * negative vocab_size means the classifier is not shared with the
 * embedding), then float32 arrays in this order: token embedding
 * [vocab][dim]; attention RMS weights [layers][dim]; wq [layers][dim][dim];
 * wk, wv [layers][kv_dim][dim]; wo [layers][dim][dim]; FFN RMS weights
 * [layers][dim]; w1 (gate) [layers][hidden][dim]; w2 (down)
 * [layers][dim][hidden]; w3 (up) [layers][hidden][dim]; final RMS [dim];
 * two unused RoPE tables of seq_len * head_size / 2 floats each; then the
 * classifier [vocab][dim] if it is not shared. Every matrix is row-major
 * [out][in], which is ggml's layout with ne = {in, out}. llama2.c's RoPE
 * rotates adjacent pairs, as llama.cpp's "llama" architecture does, so
 * Q and K are copied unpermuted.
 *
 * Tokenizer: int32 max_token_length, then per token float32 score, int32
 * length and the bytes. llama2.c's exporter wrote spaces for
 * SentencePiece's U+2581 and "\n<s>\n" / "\n</s>\n" for BOS and EOS; the
 * GGUF gets SentencePiece's own pieces back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define HEADER_INTS 7
#define TOKEN_NORMAL 1
#define TOKEN_UNKNOWN 2
#define TOKEN_CONTROL 3
#define TOKEN_BYTE 6

typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared_classifier;
} checkpoint_config;

static lmc_status read_file(const char *path, uint8_t **data, size_t *size, lmc_message *message) {
    FILE *file = fopen(path, "rb");
    if (!file) return lmc_fail(message, LMC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    lmc_buf buf;
    lmc_buf_init(&buf);
    lmc_status status = LMC_OK;
    uint8_t chunk[1 << 16];
    size_t n;
    while (status == LMC_OK && (n = fread(chunk, 1, sizeof chunk, file)) > 0) status = lmc_buf_append(&buf, chunk, n);
    if (status == LMC_OK && ferror(file)) status = LMC_ERR_IO;
    fclose(file);
    if (status != LMC_OK) {
        lmc_buf_free(&buf);
        return lmc_fail(message, status, "cannot read '%s'", path);
    }
    *data = buf.data;
    *size = buf.size;
    return LMC_OK;
}

static float float_at(const uint8_t *p) {
    uint32_t bits = lmc_get_le32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---------------------------------------------------------------- checkpoint */

/* Floats of the weights (after the header) that the configuration implies. */
static uint64_t expected_floats(const checkpoint_config *c) {
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden, layers = (uint64_t)c->layers;
    uint64_t kv_dim = dim / (uint64_t)c->heads * (uint64_t)c->kv_heads, head = dim / (uint64_t)c->heads;
    uint64_t per_layer = 2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * dim * hidden;
    uint64_t n = (uint64_t)c->vocab * dim + layers * per_layer + dim + (uint64_t)c->seq_len * head;
    return c->shared_classifier ? n : n + (uint64_t)c->vocab * dim;
}

static lmc_status parse_config(const uint8_t *data, size_t size, checkpoint_config *c, lmc_message *message) {
    if (size < HEADER_INTS * 4) return lmc_fail(message, LMC_ERR_MODEL_INVALID, "llama2.c: checkpoint too short");
    int32_t h[HEADER_INTS];
    for (int i = 0; i < HEADER_INTS; i++) h[i] = (int32_t)lmc_get_le32(data + 4 * i);
    *c = (checkpoint_config){h[0], h[1], h[2], h[3], h[4], h[5] < 0 ? -h[5] : h[5], h[6], h[5] > 0};
    /* Bounds that keep every product below 2^62 and rule out nonsense. */
    const int32_t limit = 1 << 20;
    if (c->dim <= 0 || c->dim > limit || c->hidden <= 0 || c->hidden > limit || c->layers <= 0 ||
        c->layers > 4096 || c->heads <= 0 || c->kv_heads <= 0 || c->vocab <= 0 || c->vocab > limit ||
        c->seq_len <= 0 || c->seq_len > limit || c->dim % c->heads || c->heads % c->kv_heads ||
        (c->dim / c->heads) % 2)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID,
                        "llama2.c: implausible header (dim %d, hidden %d, %d layers, %d heads, %d kv heads, "
                        "vocab %d, seq_len %d)", h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    uint64_t want = HEADER_INTS * 4 + 4 * expected_floats(c);
    if ((uint64_t)size != want)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "llama2.c: checkpoint has %zu bytes, the header implies %llu",
                        size, (unsigned long long)want);
    return LMC_OK;
}

/* Adds `count` consecutive matrices (or vectors, rows 0) of the checkpoint,
 * one per layer, named blk.N.<suffix>; advances *pos past them. */
static lmc_status add_per_layer(lmc_gguf_writer *w, const checkpoint_config *c, const uint8_t *data, uint64_t *pos,
                                const char *suffix, uint64_t cols, uint64_t rows) {
    uint64_t ne[2] = {cols, rows};
    uint64_t n_bytes = 4 * cols * (rows ? rows : 1);
    lmc_status status = LMC_OK;
    for (int i = 0; i < c->layers && status == LMC_OK; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.%s", i, suffix);
        status = lmc_gguf_writer_add_tensor(w, name, LMC_GGML_F32, rows ? 2 : 1, ne, data + *pos, n_bytes);
        *pos += n_bytes;
    }
    return status;
}

static lmc_status add_weights(lmc_gguf_writer *w, const checkpoint_config *c, const uint8_t *data) {
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden, vocab = (uint64_t)c->vocab;
    uint64_t head = dim / (uint64_t)c->heads, kv_dim = head * (uint64_t)c->kv_heads;
    uint64_t pos = HEADER_INTS * 4;
    uint64_t embd_ne[2] = {dim, vocab};
    lmc_status status = lmc_gguf_writer_add_tensor(w, "token_embd.weight", LMC_GGML_F32, 2, embd_ne, data + pos,
                                                   4 * dim * vocab);
    pos += 4 * dim * vocab;
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "attn_norm.weight", dim, 0);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "attn_q.weight", dim, dim);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "attn_k.weight", dim, kv_dim);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "attn_v.weight", dim, kv_dim);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "attn_output.weight", dim, dim);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "ffn_norm.weight", dim, 0);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "ffn_gate.weight", dim, hidden);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "ffn_down.weight", hidden, dim);
    if (status == LMC_OK) status = add_per_layer(w, c, data, &pos, "ffn_up.weight", dim, hidden);
    uint64_t norm_ne[1] = {dim};
    if (status == LMC_OK)
        status = lmc_gguf_writer_add_tensor(w, "output_norm.weight", LMC_GGML_F32, 1, norm_ne, data + pos, 4 * dim);
    pos += 4 * dim + 4 * (uint64_t)c->seq_len * head; /* the unused RoPE tables */
    if (status == LMC_OK && !c->shared_classifier)
        status = lmc_gguf_writer_add_tensor(w, "output.weight", LMC_GGML_F32, 2, embd_ne, data + pos, 4 * dim * vocab);
    return status;
}

static lmc_status add_hparams(lmc_gguf_writer *w, const checkpoint_config *c, const char *name) {
    lmc_status status = lmc_gguf_writer_set_str(w, "general.architecture", "llama");
    if (status == LMC_OK) status = lmc_gguf_writer_set_str(w, "general.name", name);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->seq_len);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->layers);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->hidden);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->heads);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->kv_heads);
    if (status == LMC_OK)
        status = lmc_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->dim / c->heads));
    if (status == LMC_OK) status = lmc_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    if (status == LMC_OK) status = lmc_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    return status;
}

/* ---------------------------------------------------------------- tokenizer */

typedef struct {
    char **pieces;
    uint64_t *lengths;
    float *scores;
    int32_t *types;
    int n;
    int32_t bos, eos, unk;
} vocabulary;

static void free_vocabulary(vocabulary *v) {
    for (int i = 0; v->pieces && i < v->n; i++) free(v->pieces[i]);
    free(v->pieces);
    free(v->lengths);
    free(v->scores);
    free(v->types);
}

static int is_byte_piece(const uint8_t *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    return n == 6 && memcmp(s, "<0x", 3) == 0 && strchr(hex, s[3]) && strchr(hex, s[4]) && s[3] && s[4] &&
           s[5] == '>';
}

/* The SentencePiece piece and token type of a llama2.c token. */
static lmc_status restore_piece(vocabulary *v, int id, const uint8_t *s, size_t n) {
    static const char space_marker[] = "\xe2\x96\x81"; /* U+2581 */
    int type = TOKEN_NORMAL;
    if (n == 5 && memcmp(s, "<unk>", 5) == 0) {
        type = TOKEN_UNKNOWN;
        v->unk = id;
    } else if (n == 5 && memcmp(s, "\n<s>\n", 5) == 0) {
        type = TOKEN_CONTROL;
        s += 1, n = 3;
        v->bos = id;
    } else if (n == 6 && memcmp(s, "\n</s>\n", 6) == 0) {
        type = TOKEN_CONTROL;
        s += 1, n = 4;
        v->eos = id;
    } else if (is_byte_piece(s, n)) {
        type = TOKEN_BYTE;
    }
    char *piece = malloc(3 * n + 1);
    if (!piece) return LMC_ERR_NOMEM;
    size_t length = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' && type == TOKEN_NORMAL) {
            memcpy(piece + length, space_marker, 3);
            length += 3;
        } else {
            piece[length++] = (char)s[i];
        }
    }
    piece[length] = '\0';
    v->pieces[id] = piece;
    v->lengths[id] = length;
    v->types[id] = type;
    return LMC_OK;
}

static lmc_status parse_tokenizer(const uint8_t *data, size_t size, int vocab, vocabulary *v, lmc_message *message) {
    memset(v, 0, sizeof *v);
    v->bos = v->eos = v->unk = -1;
    v->pieces = calloc((size_t)vocab, sizeof *v->pieces);
    v->lengths = calloc((size_t)vocab, sizeof *v->lengths);
    v->scores = calloc((size_t)vocab, sizeof *v->scores);
    v->types = calloc((size_t)vocab, sizeof *v->types);
    v->n = vocab;
    if (!v->pieces || !v->lengths || !v->scores || !v->types)
        return lmc_fail(message, LMC_ERR_NOMEM, "llama2.c: out of memory");
    if (size < 4) return lmc_fail(message, LMC_ERR_MODEL_INVALID, "llama2.c: tokenizer too short");
    uint32_t max_length = lmc_get_le32(data);
    size_t pos = 4;
    for (int id = 0; id < vocab; id++) {
        if (size - pos < 8)
            return lmc_fail(message, LMC_ERR_MODEL_INVALID, "llama2.c: tokenizer ends at token %d of %d", id, vocab);
        v->scores[id] = float_at(data + pos);
        uint32_t length = lmc_get_le32(data + pos + 4);
        pos += 8;
        if (length == 0 || length > max_length || length > size - pos)
            return lmc_fail(message, LMC_ERR_MODEL_INVALID, "llama2.c: token %d has a bad length %u", id, length);
        if (restore_piece(v, id, data + pos, length) != LMC_OK)
            return lmc_fail(message, LMC_ERR_NOMEM, "llama2.c: out of memory");
        pos += length;
    }
    if (pos != size)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "llama2.c: tokenizer has %zu bytes after %d tokens",
                        size - pos, vocab);
    if (v->bos < 0 || v->eos < 0 || v->unk < 0)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "llama2.c: tokenizer lacks <unk>, <s> or </s>");
    return LMC_OK;
}

static lmc_status add_tokenizer(lmc_gguf_writer *w, const vocabulary *v) {
    lmc_status status = lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (status == LMC_OK)
        status = lmc_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v->pieces, v->lengths,
                                               (uint64_t)v->n);
    if (status == LMC_OK)
        status = lmc_gguf_writer_set_array(w, "tokenizer.ggml.scores", LMC_GGUF_FLOAT32, v->scores, (uint64_t)v->n);
    if (status == LMC_OK)
        status = lmc_gguf_writer_set_array(w, "tokenizer.ggml.token_type", LMC_GGUF_INT32, v->types, (uint64_t)v->n);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (status == LMC_OK) status = lmc_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (status == LMC_OK) status = lmc_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    if (status == LMC_OK) status = lmc_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
    return status;
}

/* ---------------------------------------------------------------- entry point */

/* The checkpoint's file name without folder and extension. */
static void base_name(const char *path, char *out, size_t capacity) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t length = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    length = LMC_MIN(length, capacity - 1);
    memcpy(out, base, length);
    out[length] = '\0';
}

lmc_status lmc_llama2c_convert(const char *checkpoint_path, const char *tokenizer_path, const char *gguf_path,
                               lmc_message *message) {
    uint8_t *checkpoint = NULL, *tokenizer = NULL;
    size_t checkpoint_size = 0, tokenizer_size = 0;
    checkpoint_config config;
    vocabulary vocab = {0};
    lmc_gguf_writer *w = NULL;
    char name[64];
    base_name(checkpoint_path, name, sizeof name);
    lmc_status status = read_file(checkpoint_path, &checkpoint, &checkpoint_size, message);
    if (status == LMC_OK) status = read_file(tokenizer_path, &tokenizer, &tokenizer_size, message);
    if (status == LMC_OK) status = parse_config(checkpoint, checkpoint_size, &config, message);
    if (status == LMC_OK) status = parse_tokenizer(tokenizer, tokenizer_size, config.vocab, &vocab, message);
    if (status == LMC_OK && !(w = lmc_gguf_writer_create()))
        status = lmc_fail(message, LMC_ERR_NOMEM, "llama2.c: out of memory");
    if (status == LMC_OK && (status = add_hparams(w, &config, name)) != LMC_OK)
        lmc_fail(message, status, "llama2.c: cannot set the model's metadata");
    if (status == LMC_OK && (status = add_tokenizer(w, &vocab)) != LMC_OK)
        lmc_fail(message, status, "llama2.c: cannot set the tokenizer's metadata");
    if (status == LMC_OK && (status = add_weights(w, &config, checkpoint)) != LMC_OK)
        lmc_fail(message, status, "llama2.c: cannot add the weights");
    if (status == LMC_OK && (status = lmc_gguf_writer_write(w, gguf_path)) != LMC_OK)
        lmc_fail(message, status, "cannot write '%s': %s", gguf_path, strerror(errno));
    lmc_gguf_writer_free(w);
    free_vocabulary(&vocab);
    free(checkpoint);
    free(tokenizer);
    return status;
}
