/*
 * Tokenizers from GGUF metadata: the vocabulary tables, the dispatch to
 * byte-level BPE ("gpt2"), SentencePiece ("llama") or lmc's own byte
 * tokenizer ("lmc-bytes"), the splitting of text around user-defined tokens,
 * and decoding.
 *
 * encode reproduces llama.cpp's llama_tokenize(add_special=false,
 * parse_special=false). encode_lossless uses the same algorithms with three
 * changes that make decode(encode_lossless(x)) == x for every byte string:
 * every emitted token is checked to decode to exactly the bytes it covers
 * (else those bytes go out one by one), invalid UTF-8 keeps its raw bytes,
 * and SentencePiece gets no dummy space prefix. Bytes without a byte token
 * become LMC_TOKEN_ESCAPE(byte).
 */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer_internal.h"

#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TYPES "tokenizer.ggml.token_type"

/* ---------------------------------------------------------------- id lists */

lmc_status lmc_tok_ids_push(lmc_tok_ids *ids, int32_t id) {
    if (ids->size == ids->capacity) {
        size_t capacity = ids->capacity ? ids->capacity * 2 : 256;
        int32_t *data = realloc(ids->data, capacity * sizeof *data);
        if (!data) return LMC_ERR_NOMEM;
        ids->data = data;
        ids->capacity = capacity;
    }
    ids->data[ids->size++] = id;
    return LMC_OK;
}

/* ---------------------------------------------------------------- UTF-8 */

static int continuation(uint8_t c) { return (c & 0xC0) == 0x80; }

size_t lmc_tok_utf8_lenient(const uint8_t *p, size_t n, uint32_t *cp) {
    uint8_t c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t length = c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
    if (length == 0 || length > n) return 0;
    uint32_t value = c & (0x7F >> length);
    for (size_t i = 1; i < length; i++) {
        if (!continuation(p[i])) return 0;
        value = value << 6 | (p[i] & 0x3F);
    }
    if (value > 0x10FFFF) return 0;
    *cp = value;
    return length;
}

size_t lmc_tok_utf8_put(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t lmc_tok_utf8_valid(const uint8_t *p, size_t n) {
    uint32_t cp;
    uint8_t canonical[4];
    size_t length = lmc_tok_utf8_lenient(p, n, &cp);
    if (length == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || lmc_tok_utf8_put(cp, canonical) != length) return 0;
    return length;
}

/* ---------------------------------------------------------------- maps */

lmc_status lmc_tok_blob_add(lmc_buf *blob, const void *data, size_t size, lmc_tok_span *span) {
    if (blob->size + size > UINT32_MAX) return LMC_ERR_MODEL_INVALID;
    span->offset = (uint32_t)blob->size;
    span->length = (uint32_t)size;
    return lmc_buf_append(blob, data, size);
}

static uint64_t capacity_for(uint64_t n) {
    uint64_t capacity = 16;
    while (capacity < 2 * n) capacity *= 2;
    return capacity;
}

static int key_equals(const lmc_tokenizer *tok, int32_t id, const uint8_t *text, size_t size) {
    const lmc_tok_span *key = &tok->keys[id];
    return key->length == size && memcmp(tok->blob + key->offset, text, size) == 0;
}

int32_t lmc_tok_map_find(const lmc_tokenizer *tok, const uint8_t *text, size_t size) {
    const lmc_tok_map *map = &tok->by_key;
    if (!map->slots || size == 0) return -1;
    uint64_t hash = lmc_checksum64(text, size);
    uint64_t tag = hash >> 32;
    for (uint64_t i = hash & map->mask;; i = (i + 1) & map->mask) {
        uint64_t slot = map->slots[i];
        if (slot == 0) return -1;
        int32_t id = (int32_t)(uint32_t)slot - 1;
        if ((slot >> 32) == tag && key_equals(tok, id, text, size)) return id;
    }
}

/* Indexes every token with a key; a repeated key keeps its first token. */
static lmc_status build_key_map(lmc_tokenizer *tok) {
    lmc_tok_map *map = &tok->by_key;
    uint64_t capacity = capacity_for((uint64_t)tok->n_vocab);
    map->slots = calloc(capacity, sizeof *map->slots);
    if (!map->slots) return LMC_ERR_NOMEM;
    map->mask = capacity - 1;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const lmc_tok_span *key = &tok->keys[id];
        if (key->length == 0) continue;
        const uint8_t *text = tok->blob + key->offset;
        uint64_t hash = lmc_checksum64(text, key->length);
        uint64_t i = hash & map->mask;
        for (; map->slots[i]; i = (i + 1) & map->mask)
            if (key_equals(tok, (int32_t)(uint32_t)map->slots[i] - 1, text, key->length)) break;
        if (!map->slots[i]) map->slots[i] = (hash >> 32) << 32 | (uint64_t)(id + 1);
    }
    return LMC_OK;
}

/* ---------------------------------------------------------------- merge loop */

static int bigram_before(const lmc_tok_bigram *a, const lmc_tok_bigram *b) {
    return a->priority < b->priority || (a->priority == b->priority && a->left < b->left);
}

/* A 4-ary heap: shallower than a binary one, which matters once it holds
 * the pairs of a long run of text. */
#define HEAP_ARITY 4

static lmc_status heap_push(lmc_tok_heap *heap, lmc_tok_bigram bigram) {
    if (heap->size == heap->capacity) {
        size_t capacity = heap->capacity ? heap->capacity * 2 : 64;
        lmc_tok_bigram *data = realloc(heap->data, capacity * sizeof *data);
        if (!data) return LMC_ERR_NOMEM;
        heap->data = data;
        heap->capacity = capacity;
    }
    size_t i = heap->size++;
    while (i > 0 && bigram_before(&bigram, &heap->data[(i - 1) / HEAP_ARITY])) {
        heap->data[i] = heap->data[(i - 1) / HEAP_ARITY];
        i = (i - 1) / HEAP_ARITY;
    }
    heap->data[i] = bigram;
    return LMC_OK;
}

static lmc_tok_bigram heap_pop(lmc_tok_heap *heap) {
    lmc_tok_bigram top = heap->data[0];
    lmc_tok_bigram last = heap->data[--heap->size];
    size_t i = 0;
    for (;;) {
        size_t first = HEAP_ARITY * i + 1, best = first;
        if (first >= heap->size) break;
        for (size_t c = first + 1; c < first + HEAP_ARITY && c < heap->size; c++)
            if (bigram_before(&heap->data[c], &heap->data[best])) best = c;
        if (!bigram_before(&heap->data[best], &last)) break;
        heap->data[i] = heap->data[best];
        i = best;
    }
    if (heap->size > 0) heap->data[i] = last;
    return top;
}

void lmc_tok_heap_free(lmc_tok_heap *heap) {
    free(heap->data);
    memset(heap, 0, sizeof *heap);
}

static lmc_status queue_pair(lmc_tok_symbol *symbols, int32_t left, lmc_tok_heap *heap, lmc_tok_pair_fn pair,
                             const void *ctx) {
    if (left < 0 || symbols[left].next < 0) return LMC_OK;
    int32_t right = symbols[left].next;
    lmc_tok_bigram bigram = {0, left, symbols[left].length + symbols[right].length, -1};
    if (!pair(ctx, symbols, left, right, &bigram.priority, &bigram.merged)) return LMC_OK;
    return heap_push(heap, bigram);
}

lmc_status lmc_tok_merge(lmc_tok_symbol *symbols, size_t n, lmc_tok_heap *heap, lmc_tok_pair_fn pair,
                         const void *ctx) {
    lmc_status status = LMC_OK;
    heap->size = 0;
    for (size_t i = 0; i + 1 < n && status == LMC_OK; i++) status = queue_pair(symbols, (int32_t)i, heap, pair, ctx);
    while (heap->size > 0 && status == LMC_OK) {
        lmc_tok_bigram bigram = heap_pop(heap);
        lmc_tok_symbol *left = &symbols[bigram.left];
        if (left->length == 0 || left->next < 0) continue;
        lmc_tok_symbol *right = &symbols[left->next];
        /* A symbol only grows by absorbing its right neighbour, so unchanged
         * lengths mean the pair is still the one that was queued. */
        if (left->length + right->length != bigram.size) continue;
        left->length += right->length;
        left->src_length += right->src_length;
        left->id = bigram.merged;
        right->length = 0;
        left->next = right->next;
        if (right->next >= 0) symbols[right->next].prev = bigram.left;
        status = queue_pair(symbols, left->prev, heap, pair, ctx);
        if (status == LMC_OK) status = queue_pair(symbols, bigram.left, heap, pair, ctx);
    }
    return status;
}

/* ---------------------------------------------------------------- emitting */

int lmc_tok_emit_verified(const lmc_tokenizer *tok, int32_t id, const uint8_t *text, size_t size,
                          lmc_tok_ids *out, lmc_status *status) {
    const lmc_tok_span *piece = &tok->pieces[id];
    if (piece->length != size || memcmp(tok->blob + piece->offset, text, size) != 0) return 0;
    *status = lmc_tok_ids_push(out, id);
    return 1;
}

lmc_status lmc_tok_emit_bytes(const lmc_tokenizer *tok, const uint8_t *text, size_t size, lmc_tok_ids *out) {
    lmc_status status = LMC_OK;
    for (size_t i = 0; i < size && status == LMC_OK; i++) {
        int32_t id = tok->byte_token[text[i]];
        status = lmc_tok_ids_push(out, id >= 0 ? id : LMC_TOKEN_ESCAPE(text[i]));
    }
    return status;
}

/* ---------------------------------------------------------------- loading */

static lmc_status load_token_types(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_message *message) {
    lmc_gguf_value_type elem_type;
    uint64_t count;
    for (int32_t id = 0; id < tok->n_vocab; id++) tok->types[id] = LMC_TOKTYPE_NORMAL;
    if (lmc_gguf_find(gguf, KEY_TYPES) < 0) return LMC_OK;
    if (lmc_gguf_get_array(gguf, KEY_TYPES, &elem_type, &count) != 0 || elem_type != LMC_GGUF_INT32 ||
        count < (uint64_t)tok->n_vocab)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "tokenizer: %s must be an int32 array of %d entries",
                        KEY_TYPES, tok->n_vocab);
    const int32_t *types = lmc_gguf_array_data(gguf, KEY_TYPES);
    for (int32_t id = 0; id < tok->n_vocab; id++)
        tok->types[id] = types[id] >= LMC_TOKTYPE_NORMAL && types[id] <= LMC_TOKTYPE_BYTE ? (uint8_t)types[id]
                                                                                        : LMC_TOKTYPE_UNDEFINED;
    return LMC_OK;
}

static int32_t optional_token_id(const lmc_tokenizer *tok, const lmc_gguf *gguf, const char *key,
                                 int32_t fallback) {
    uint32_t id;
    if (lmc_gguf_get_u32(gguf, key, &id) == 0 && id < (uint32_t)tok->n_vocab) return (int32_t)id;
    return fallback < tok->n_vocab ? fallback : -1;
}

/* The token that carries exactly one byte in lossless coding: the one
 * llama.cpp's byte fallback would pick if it decodes to that byte, else any
 * token that does. */
static void find_byte_tokens(lmc_tokenizer *tok) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        const char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        int32_t candidates[2] = {lmc_tok_map_find(tok, (const uint8_t *)name, sizeof name),
                                 lmc_tok_map_find(tok, &byte, 1)};
        tok->byte_token[b] = -1;
        for (int c = 0; c < 2 && tok->byte_token[b] < 0; c++) {
            const lmc_tok_span *piece = candidates[c] >= 0 ? &tok->pieces[candidates[c]] : NULL;
            if (piece && piece->length == 1 && tok->blob[piece->offset] == byte) tok->byte_token[b] = candidates[c];
        }
    }
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const lmc_tok_span *piece = &tok->pieces[id];
        if (piece->length == 1 && tok->byte_token[tok->blob[piece->offset]] < 0)
            tok->byte_token[tok->blob[piece->offset]] = id;
    }
}

static int ascending_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* User-defined tokens are cut out of the text before tokenizing, longest
 * first, even with parse_special=false (as llama.cpp does); control and
 * unknown tokens are not. */
static lmc_status collect_user_defined(lmc_tokenizer *tok) {
    size_t n = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++)
        n += tok->types[id] == LMC_TOKTYPE_USER_DEFINED && tok->pieces[id].length > 0;
    if (n == 0) return LMC_OK;
    /* Sort keys: longest text first, then lowest id. */
    uint64_t *order = malloc(n * sizeof *order);
    tok->user_defined = malloc(n * sizeof *tok->user_defined);
    if (!order || !tok->user_defined) {
        free(order);
        return LMC_ERR_NOMEM;
    }
    for (int32_t id = 0; id < tok->n_vocab; id++)
        if (tok->types[id] == LMC_TOKTYPE_USER_DEFINED && tok->pieces[id].length > 0)
            order[tok->n_user_defined++] = (uint64_t)(UINT32_MAX - tok->pieces[id].length) << 32 | (uint32_t)id;
    qsort(order, n, sizeof *order, ascending_u64);
    for (size_t i = 0; i < n; i++) tok->user_defined[i] = (int32_t)(uint32_t)order[i];
    free(order);
    return LMC_OK;
}

static lmc_status load_vocabulary(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_message *message) {
    lmc_gguf_value_type elem_type;
    uint64_t count;
    if (lmc_gguf_get_array(gguf, KEY_TOKENS, &elem_type, &count) != 0 || elem_type != LMC_GGUF_STRING ||
        count == 0 || count > INT32_MAX / 2)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "tokenizer: %s is missing or not a string array",
                        KEY_TOKENS);
    tok->n_vocab = (int32_t)count;
    tok->types = malloc(count);
    tok->keys = calloc(count, sizeof *tok->keys);
    tok->pieces = calloc(count, sizeof *tok->pieces);
    if (!tok->types || !tok->keys || !tok->pieces) return lmc_fail(message, LMC_ERR_NOMEM, "tokenizer: out of memory");
    lmc_status status = load_token_types(tok, gguf, message);
    if (status != LMC_OK) return status;

    lmc_buf blob;
    lmc_buf_init(&blob);
    status = tok->kind == LMC_TOK_BPE ? lmc_tok_bpe_keys(tok, gguf, &blob, message)
                                      : lmc_tok_spm_keys(tok, gguf, &blob, message);
    tok->blob = blob.data;
    if (status != LMC_OK) return status;
    if (build_key_map(tok) != LMC_OK || collect_user_defined(tok) != LMC_OK)
        return lmc_fail(message, LMC_ERR_NOMEM, "tokenizer: out of memory");
    find_byte_tokens(tok);
    /* llama.cpp's default BOS for SentencePiece is 1; lmc gives BPE none. */
    tok->bos = optional_token_id(tok, gguf, "tokenizer.ggml.bos_token_id", tok->kind == LMC_TOK_SPM ? 1 : -1);
    return LMC_OK;
}

/* lmc's own byte tokenizer: id b is byte b; no tables in the file. */
static lmc_status load_bytes(lmc_tokenizer *tok, const lmc_gguf *gguf) {
    tok->n_vocab = 256;
    tok->pieces = malloc(256 * sizeof *tok->pieces);
    tok->blob = malloc(256);
    if (!tok->pieces || !tok->blob) return LMC_ERR_NOMEM;
    for (int b = 0; b < 256; b++) {
        tok->pieces[b] = (lmc_tok_span){(uint32_t)b, 1};
        tok->blob[b] = (uint8_t)b;
        tok->byte_token[b] = b;
    }
    tok->bos = optional_token_id(tok, gguf, "tokenizer.ggml.bos_token_id", -1);
    return LMC_OK;
}

static lmc_status load_sentencepiece(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_message *message) {
    int prefix;
    lmc_status status = load_vocabulary(tok, gguf, message);
    if (status != LMC_OK) return status;
    tok->add_space_prefix = lmc_gguf_get_bool(gguf, "tokenizer.ggml.add_space_prefix", &prefix) == 0 ? prefix : 1;
    if (lmc_tok_spm_init(tok) != LMC_OK) return lmc_fail(message, LMC_ERR_NOMEM, "tokenizer: out of memory");
    return LMC_OK;
}

static int string_is(lmc_gguf_string s, const char *text) {
    return s.size == strlen(text) && memcmp(s.data, text, s.size) == 0;
}

lmc_status lmc_tokenizer_from_gguf(const lmc_gguf *gguf, lmc_tokenizer **out, lmc_message *message) {
    lmc_gguf_string model;
    *out = NULL;
    if (lmc_gguf_get_str(gguf, "tokenizer.ggml.model", &model) != 0)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "tokenizer: tokenizer.ggml.model is missing");
    lmc_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return lmc_fail(message, LMC_ERR_NOMEM, "tokenizer: out of memory");
    lmc_status status;
    if (string_is(model, "lmc-bytes")) {
        tok->kind = LMC_TOK_BYTES;
        status = load_bytes(tok, gguf);
        if (status != LMC_OK) lmc_fail(message, status, "tokenizer: out of memory");
    } else if (string_is(model, "gpt2")) {
        tok->kind = LMC_TOK_BPE;
        status = load_vocabulary(tok, gguf, message);
        if (status == LMC_OK) status = lmc_tok_bpe_init(tok, gguf, message);
    } else if (string_is(model, "llama")) {
        tok->kind = LMC_TOK_SPM;
        status = load_sentencepiece(tok, gguf, message);
    } else {
        int length = (int)LMC_MIN(model.size, 64);
        status = lmc_fail(message, LMC_ERR_MODEL_INVALID,
                          "tokenizer: unsupported tokenizer.ggml.model '%.*s' (lmc reads gpt2, llama, lmc-bytes)",
                          length, model.data);
    }
    if (status != LMC_OK) {
        lmc_tokenizer_free(tok);
        return status;
    }
    *out = tok;
    return LMC_OK;
}

void lmc_tokenizer_free(lmc_tokenizer *tok) {
    if (!tok) return;
    if (tok->kind == LMC_TOK_BPE) lmc_tok_bpe_free(tok);
    free(tok->types);
    free(tok->scores);
    free(tok->keys);
    free(tok->pieces);
    free(tok->blob);
    free(tok->by_key.slots);
    free(tok->user_defined);
    free(tok->char_pairs.slots);
    free(tok);
}

/* ---------------------------------------------------------------- queries */

int lmc_tokenizer_vocab_size(const lmc_tokenizer *tok) { return tok->n_vocab; }

const char *lmc_tokenizer_type_name(const lmc_tokenizer *tok) {
    switch (tok->kind) {
    case LMC_TOK_BPE: return "gpt2";
    case LMC_TOK_SPM: return "llama";
    default: return "lmc-bytes";
    }
}

int lmc_tokenizer_covers_all_bytes(const lmc_tokenizer *tok) {
    for (int b = 0; b < 256; b++)
        if (tok->byte_token[b] < 0) return 0;
    return 1;
}

int32_t lmc_tokenizer_bos(const lmc_tokenizer *tok) { return tok->bos; }

lmc_status lmc_tokenizer_piece(const lmc_tokenizer *tok, int32_t id, lmc_buf *out) {
    if (LMC_TOKEN_IS_ESCAPE(id)) {
        if (id < LMC_TOKEN_ESCAPE(255)) return LMC_ERR_CORRUPT;
        return lmc_buf_append_byte(out, LMC_TOKEN_ESCAPED_BYTE(id));
    }
    if (id >= tok->n_vocab) return LMC_ERR_CORRUPT;
    const lmc_tok_span *piece = &tok->pieces[id];
    return lmc_buf_append(out, tok->blob + piece->offset, piece->length);
}

lmc_status lmc_tokenizer_decode(const lmc_tokenizer *tok, const int32_t *ids, size_t n_ids, lmc_buf *out) {
    lmc_status status = LMC_OK;
    for (size_t i = 0; i < n_ids && status == LMC_OK; i++) status = lmc_tokenizer_piece(tok, ids[i], out);
    return status;
}

/* ---------------------------------------------------------------- encoding */

/* A run of text, or a user-defined token found in it. */
typedef struct {
    size_t offset, length;
    int32_t token; /* -1 for text */
} fragment;

typedef struct {
    fragment *data;
    size_t size, capacity;
} fragment_list;

static lmc_status fragments_push(fragment_list *list, size_t offset, size_t length, int32_t token) {
    if (list->size == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        fragment *data = realloc(list->data, capacity * sizeof *data);
        if (!data) return LMC_ERR_NOMEM;
        list->data = data;
        list->capacity = capacity;
    }
    list->data[list->size++] = (fragment){offset, length, token};
    return LMC_OK;
}

/* Splits each text fragment at the occurrences of one token, left to right. */
static lmc_status cut_out_token(const uint8_t *text, const fragment_list *in, int32_t token, const uint8_t *needle,
                                size_t needle_size, fragment_list *out) {
    lmc_status status = LMC_OK;
    out->size = 0;
    for (size_t f = 0; f < in->size && status == LMC_OK; f++) {
        fragment frag = in->data[f];
        if (frag.token >= 0) {
            status = fragments_push(out, frag.offset, frag.length, frag.token);
            continue;
        }
        size_t pos = frag.offset, end = frag.offset + frag.length;
        while (status == LMC_OK) {
            const uint8_t *hit = memmem(text + pos, end - pos, needle, needle_size);
            if (!hit) break;
            size_t at = (size_t)(hit - text);
            if (at > pos) status = fragments_push(out, pos, at - pos, -1);
            if (status == LMC_OK) status = fragments_push(out, at, needle_size, token);
            pos = at + needle_size;
        }
        if (status == LMC_OK && pos < end) status = fragments_push(out, pos, end - pos, -1);
    }
    return status;
}

static lmc_status split_user_defined(const lmc_tokenizer *tok, const uint8_t *text, size_t size,
                                     fragment_list *fragments) {
    fragment_list spare = {0};
    lmc_status status = size ? fragments_push(fragments, 0, size, -1) : LMC_OK;
    for (size_t u = 0; u < tok->n_user_defined && status == LMC_OK; u++) {
        int32_t token = tok->user_defined[u];
        const lmc_tok_span *piece = &tok->pieces[token];
        const uint8_t *needle = tok->blob + piece->offset;
        if (!memmem(text, size, needle, piece->length)) continue;
        status = cut_out_token(text, fragments, token, needle, piece->length, &spare);
        fragment_list swap = *fragments;
        *fragments = spare;
        spare = swap;
    }
    free(spare.data);
    return status;
}

static lmc_status encode_fragments(const lmc_tokenizer *tok, const uint8_t *text, const fragment_list *fragments,
                                   int lossless, lmc_tok_ids *out) {
    lmc_status status = LMC_OK;
    int after_special = 1; /* SentencePiece prefixes a space to text at the start or after a token */
    for (size_t f = 0; f < fragments->size && status == LMC_OK; f++) {
        const fragment *frag = &fragments->data[f];
        if (frag->token >= 0) {
            status = lmc_tok_ids_push(out, frag->token);
            after_special = 1;
            continue;
        }
        const uint8_t *part = text + frag->offset;
        if (tok->kind == LMC_TOK_BPE) {
            status = lmc_tok_bpe_encode(tok, part, frag->length, lossless, out);
        } else {
            int prefix = !lossless && tok->add_space_prefix && after_special;
            status = lmc_tok_spm_encode(tok, part, frag->length, lossless, prefix, out);
        }
        after_special = 0;
    }
    return status;
}

static lmc_status encode(const lmc_tokenizer *tok, const uint8_t *text, size_t size, int lossless, int32_t **ids,
                         size_t *n_ids) {
    lmc_tok_ids out = {0};
    lmc_status status = lmc_tok_ids_push(&out, 0); /* a non-NULL result even for empty text */
    out.size = 0;
    if (status == LMC_OK && tok->kind == LMC_TOK_BYTES) {
        for (size_t i = 0; i < size && status == LMC_OK; i++) status = lmc_tok_ids_push(&out, text[i]);
    } else if (status == LMC_OK) {
        fragment_list fragments = {0};
        status = split_user_defined(tok, text, size, &fragments);
        if (status == LMC_OK) status = encode_fragments(tok, text, &fragments, lossless, &out);
        free(fragments.data);
    }
    if (status != LMC_OK) {
        free(out.data);
        *ids = NULL;
        *n_ids = 0;
        return status;
    }
    *ids = out.data;
    *n_ids = out.size;
    return LMC_OK;
}

lmc_status lmc_tokenizer_encode(const lmc_tokenizer *tok, const uint8_t *text, size_t size, int32_t **ids,
                                size_t *n_ids) {
    return encode(tok, text, size, 0, ids, n_ids);
}

lmc_status lmc_tokenizer_encode_lossless(const lmc_tokenizer *tok, const uint8_t *data, size_t size,
                                         int32_t **ids, size_t *n_ids) {
    return encode(tok, data, size, 1, ids, n_ids);
}
