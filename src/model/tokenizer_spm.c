/*
 * SentencePiece tokenization of "llama" vocabularies, as llama.cpp's
 * llm_tokenizer_spm does it: spaces become U+2581 ("▁"), an optional dummy
 * "▁" goes in front, the text splits into UTF-8 characters, and adjacent
 * symbols merge while their concatenation is a token, highest score first
 * (ties: leftmost). Symbols that are not tokens fall back to byte tokens
 * "<0xNN>".
 *
 * Lossless mode differs in three ways (see tokenizer.c): no dummy prefix;
 * invalid UTF-8 splits into single bytes, and a literal "▁" in the input
 * never merges (it would decode as a space), so it goes out as bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer_internal.h"

#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"

static const uint8_t space_mark[3] = {0xE2, 0x96, 0x81}; /* U+2581 */

/* ---------------------------------------------------------------- loading */

static lmc_status load_scores(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_message *message) {
    lmc_gguf_value_type elem_type;
    uint64_t count;
    tok->scores = calloc((size_t)tok->n_vocab, sizeof *tok->scores);
    if (!tok->scores) return lmc_fail(message, LMC_ERR_NOMEM, "tokenizer: out of memory");
    if (lmc_gguf_find(gguf, KEY_SCORES) < 0) return LMC_OK;
    if (lmc_gguf_get_array(gguf, KEY_SCORES, &elem_type, &count) != 0 ||
        (elem_type != LMC_GGUF_FLOAT32 && elem_type != LMC_GGUF_INT32) || count < (uint64_t)tok->n_vocab)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID,
                        "tokenizer: %s must be a float32 or int32 array of %d entries", KEY_SCORES, tok->n_vocab);
    const void *data = lmc_gguf_array_data(gguf, KEY_SCORES);
    for (int32_t id = 0; id < tok->n_vocab; id++)
        tok->scores[id] = elem_type == LMC_GGUF_FLOAT32 ? ((const float *)data)[id] : (float)((const int32_t *)data)[id];
    return LMC_OK;
}

static int hex_digit(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" names byte NN; returns -1 for any other text. */
static int byte_token_value(lmc_gguf_string text) {
    const uint8_t *t = (const uint8_t *)text.data;
    if (text.size != 6 || memcmp(t, "<0x", 3) != 0 || t[5] != '>') return -1;
    int high = hex_digit(t[3]), low = hex_digit(t[4]);
    return high < 0 || low < 0 ? -1 : high << 4 | low;
}

/* A normal token's bytes: its text with every "▁" read as a space. */
static lmc_status add_unescaped(lmc_buf *blob, lmc_gguf_string text, lmc_tok_span *span) {
    lmc_status status = lmc_tok_blob_add(blob, NULL, 0, span);
    const uint8_t *t = (const uint8_t *)text.data;
    size_t i = 0;
    while (i < text.size && status == LMC_OK) {
        if (i + 3 <= text.size && memcmp(t + i, space_mark, 3) == 0) {
            status = lmc_buf_append_byte(blob, ' ');
            span->length += 1;
            i += 3;
        } else {
            status = lmc_buf_append_byte(blob, t[i]);
            span->length += 1;
            i += 1;
        }
    }
    return status == LMC_OK && blob->size > UINT32_MAX ? LMC_ERR_MODEL_INVALID : status;
}

static lmc_status add_piece(lmc_buf *blob, uint8_t type, lmc_gguf_string text, lmc_tok_span *piece) {
    int byte;
    switch (type) {
    case LMC_TOKTYPE_NORMAL: return add_unescaped(blob, text, piece);
    case LMC_TOKTYPE_USER_DEFINED: return lmc_tok_blob_add(blob, text.data, text.size, piece);
    case LMC_TOKTYPE_BYTE:
        byte = byte_token_value(text);
        if (byte >= 0) {
            uint8_t b = (uint8_t)byte;
            return lmc_tok_blob_add(blob, &b, 1, piece);
        }
        return lmc_tok_blob_add(blob, NULL, 0, piece);
    default: return lmc_tok_blob_add(blob, NULL, 0, piece); /* control, unknown, unused: no text */
    }
}

lmc_status lmc_tok_spm_keys(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_buf *blob, lmc_message *message) {
    lmc_status status = load_scores(tok, gguf, message);
    for (int32_t id = 0; id < tok->n_vocab && status == LMC_OK; id++) {
        lmc_gguf_string text = lmc_gguf_array_str(gguf, KEY_TOKENS, (uint64_t)id);
        status = lmc_tok_blob_add(blob, text.data, text.size, &tok->keys[id]);
        if (status == LMC_OK) status = add_piece(blob, tok->types[id], text, &tok->pieces[id]);
        if (status != LMC_OK)
            return lmc_fail(message, status, "tokenizer: %s",
                            status == LMC_ERR_NOMEM ? "out of memory" : "vocabulary too large");
    }
    return status;
}

/* ---------------------------------------------------------------- character pairs */

/* Two characters side by side, as a set key (never 0). */
static uint64_t char_pair_key(uint32_t first, uint32_t second) { return ((uint64_t)first << 21 | second) + 1; }

static int set_contains(const lmc_tok_set *set, uint64_t key) {
    for (uint64_t i = lmc_tok_mix(key) & set->mask;; i = (i + 1) & set->mask) {
        if (set->slots[i] == key) return 1;
        if (set->slots[i] == 0) return 0;
    }
}

static void set_insert(lmc_tok_set *set, uint64_t key) {
    uint64_t i = lmc_tok_mix(key) & set->mask;
    while (set->slots[i] && set->slots[i] != key) i = (i + 1) & set->mask;
    set->slots[i] = key;
}

/* The code point of a symbol that is exactly one well-formed character. */
static int single_char(const uint8_t *text, size_t length, uint32_t *cp) {
    return lmc_tok_utf8_valid(text, length) == length && lmc_tok_utf8_lenient(text, length, cp) == length;
}

/* Every pair of consecutive well-formed characters found anywhere inside a
 * key (at every offset, so keys with stray bytes are covered too). */
lmc_status lmc_tok_spm_init(lmc_tokenizer *tok) {
    uint64_t total = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++) total += tok->keys[id].length;
    uint64_t capacity = 16;
    while (capacity < 2 * total) capacity *= 2;
    tok->char_pairs.slots = calloc(capacity, sizeof *tok->char_pairs.slots);
    if (!tok->char_pairs.slots) return LMC_ERR_NOMEM;
    tok->char_pairs.mask = capacity - 1;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const uint8_t *key = tok->blob + tok->keys[id].offset;
        size_t size = tok->keys[id].length;
        for (size_t p = 0; p < size; p++) {
            uint32_t first, second;
            size_t a = lmc_tok_utf8_valid(key + p, size - p);
            if (a == 0 || p + a >= size) continue;
            size_t b = lmc_tok_utf8_valid(key + p + a, size - p - a);
            if (b == 0) continue;
            lmc_tok_utf8_lenient(key + p, a, &first);
            lmc_tok_utf8_lenient(key + p + a, b, &second);
            set_insert(&tok->char_pairs, char_pair_key(first, second));
        }
    }
    return LMC_OK;
}

/* 1 if no merge can ever join symbols a and b: no token holds their
 * characters side by side, so the text can be split there without changing
 * the result. Symbols that are not single characters count as joinable. */
static int is_barrier(const lmc_tokenizer *tok, const uint8_t *text, const lmc_tok_symbol *a, const lmc_tok_symbol *b) {
    uint32_t first, second;
    if (a->opaque || b->opaque) return 1;
    if (!single_char(text + a->offset, a->length, &first) || !single_char(text + b->offset, b->length, &second))
        return 0;
    return !set_contains(&tok->char_pairs, char_pair_key(first, second));
}

/* ---------------------------------------------------------------- symbols */

typedef struct {
    lmc_buf text;            /* the working text: spaces as "▁" */
    lmc_tok_symbol *symbols;
    size_t n_symbols, capacity;
} spm_work;

static lmc_status add_symbol(spm_work *w, const void *bytes, size_t length, size_t src_offset, size_t src_length,
                             int opaque) {
    if (w->n_symbols == w->capacity) {
        size_t capacity = w->capacity ? w->capacity * 2 : 256;
        lmc_tok_symbol *symbols = realloc(w->symbols, capacity * sizeof *symbols);
        if (!symbols) return LMC_ERR_NOMEM;
        w->symbols = symbols;
        w->capacity = capacity;
    }
    int32_t index = (int32_t)w->n_symbols++;
    w->symbols[index] = (lmc_tok_symbol){(uint32_t)w->text.size, (uint32_t)length, (uint32_t)src_offset,
                                         (uint32_t)src_length, index - 1, index + 1, -1, (uint8_t)opaque};
    return lmc_buf_append(&w->text, bytes, length);
}

/* llama.cpp's character split: the lead byte alone decides the length. */
static size_t lead_byte_length(uint8_t lead) {
    static const uint8_t lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lengths[lead >> 4];
}

/* The symbols of llama.cpp: "▁"-escaped text, split by lead bytes. */
static lmc_status split_as_llama(spm_work *w, const uint8_t *text, size_t size, int space_prefix) {
    lmc_buf escaped;
    lmc_buf_init(&escaped);
    lmc_status status = space_prefix ? lmc_buf_append(&escaped, space_mark, 3) : LMC_OK;
    for (size_t i = 0; i < size && status == LMC_OK; i++)
        status = text[i] == ' ' ? lmc_buf_append(&escaped, space_mark, 3) : lmc_buf_append_byte(&escaped, text[i]);
    for (size_t i = 0; i < escaped.size && status == LMC_OK;) {
        size_t length = LMC_MIN(lead_byte_length(escaped.data[i]), escaped.size - i);
        status = add_symbol(w, escaped.data + i, length, 0, 0, 0);
        i += length;
    }
    lmc_buf_free(&escaped);
    return status;
}

/* Lossless symbols: whole valid characters, single invalid bytes, and
 * literal "▁" characters that may not merge; each remembers its input bytes. */
static lmc_status split_lossless(spm_work *w, const uint8_t *text, size_t size) {
    lmc_status status = LMC_OK;
    for (size_t i = 0; i < size && status == LMC_OK;) {
        size_t length = lmc_tok_utf8_valid(text + i, size - i);
        if (length == 0) {
            status = add_symbol(w, text + i, 1, i, 1, 0);
            i += 1;
        } else if (text[i] == ' ') {
            status = add_symbol(w, space_mark, 3, i, 1, 0);
        } else {
            int literal_mark = length == 3 && memcmp(text + i, space_mark, 3) == 0;
            status = add_symbol(w, text + i, length, i, length, literal_mark);
        }
        i += length;
    }
    return status;
}

/* ---------------------------------------------------------------- merging */

typedef struct {
    const lmc_tokenizer *tok;
    const uint8_t *text;
} spm_context;

/* Orders scores as integers, highest score giving the lowest priority;
 * -0 and +0 are equal, as in a float comparison. */
static uint32_t score_priority(float score) {
    uint32_t bits;
    if (score == 0.0f) score = 0.0f;
    memcpy(&bits, &score, sizeof bits);
    uint32_t ordered = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
    return UINT32_MAX - ordered;
}

static int spm_pair(const void *ctx, const lmc_tok_symbol *symbols, int32_t left, int32_t right, uint32_t *priority,
                    int32_t *merged) {
    const spm_context *c = ctx;
    const lmc_tok_symbol *l = &symbols[left], *r = &symbols[right];
    if (l->opaque || r->opaque) return 0;
    int32_t id = lmc_tok_map_find(c->tok, c->text + l->offset, l->length + r->length);
    if (id < 0) return 0;
    *priority = score_priority(c->tok->scores[id]);
    *merged = id;
    return 1;
}

/* llama.cpp's byte fallback: "<0xNN>", else the one-byte token. */
static int32_t llama_byte_token(const lmc_tokenizer *tok, uint8_t byte) {
    static const char hex[] = "0123456789ABCDEF";
    const char name[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
    int32_t id = lmc_tok_map_find(tok, (const uint8_t *)name, sizeof name);
    return id >= 0 ? id : lmc_tok_map_find(tok, &byte, 1);
}

static lmc_status emit_symbol(const lmc_tokenizer *tok, const spm_work *w, const lmc_tok_symbol *s,
                              const uint8_t *input, int lossless, lmc_tok_ids *out) {
    lmc_status status = LMC_OK;
    if (lossless) {
        const uint8_t *src = input + s->src_offset;
        if (s->id >= 0 && lmc_tok_emit_verified(tok, s->id, src, s->src_length, out, &status)) return status;
        return lmc_tok_emit_bytes(tok, src, s->src_length, out);
    }
    if (s->id >= 0) return lmc_tok_ids_push(out, s->id);
    /* Where llama.cpp finds no byte token it throws; lmc escapes the byte. */
    for (uint32_t i = 0; i < s->length && status == LMC_OK; i++) {
        uint8_t byte = w->text.data[s->offset + i];
        int32_t id = llama_byte_token(tok, byte);
        status = lmc_tok_ids_push(out, id >= 0 ? id : LMC_TOKEN_ESCAPE(byte));
    }
    return status;
}

/* Merges and emits symbols[start .. start + count), an independent run. */
static lmc_status encode_run(const lmc_tokenizer *tok, spm_work *w, size_t start, size_t count, const uint8_t *input,
                             int lossless, lmc_tok_heap *heap, lmc_tok_ids *out) {
    lmc_tok_symbol *run = w->symbols + start;
    for (size_t j = 0; j < count; j++) {
        run[j].prev = (int32_t)j - 1;
        run[j].next = j + 1 < count ? (int32_t)j + 1 : -1;
    }
    spm_context ctx = {tok, w->text.data};
    lmc_status status = lmc_tok_merge(run, count, heap, spm_pair, &ctx);
    for (int32_t i = 0; i != -1 && status == LMC_OK; i = run[i].next)
        status = emit_symbol(tok, w, &run[i], input, lossless, out);
    return status;
}

lmc_status lmc_tok_spm_encode(const lmc_tokenizer *tok, const uint8_t *text, size_t size, int lossless,
                              int space_prefix, lmc_tok_ids *out) {
    if (size > (UINT32_MAX - 3) / 3) return LMC_ERR_UNSUPPORTED; /* offsets are 32-bit */
    spm_work w = {0};
    lmc_tok_heap heap = {0};
    lmc_buf_init(&w.text);
    lmc_status status = lossless ? split_lossless(&w, text, size) : split_as_llama(&w, text, size, space_prefix);
    for (size_t i = 0; i < w.n_symbols && status == LMC_OK; i++) {
        lmc_tok_symbol *s = &w.symbols[i];
        s->id = s->opaque ? -1 : lmc_tok_map_find(tok, w.text.data + s->offset, s->length);
    }
    size_t start = 0;
    for (size_t i = 0; i < w.n_symbols && status == LMC_OK; i++) {
        if (i + 1 < w.n_symbols && !is_barrier(tok, w.text.data, &w.symbols[i], &w.symbols[i + 1])) continue;
        status = encode_run(tok, &w, start, i + 1 - start, text, lossless, &heap, out);
        start = i + 1;
    }
    lmc_tok_heap_free(&heap);
    lmc_buf_free(&w.text);
    free(w.symbols);
    return status;
}
