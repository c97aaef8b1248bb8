/*
 * Internals shared by the tokenizer files: the vocabulary tables built from
 * GGUF metadata (tokenizer.c), the byte-level BPE of "gpt2" vocabularies
 * (tokenizer_bpe.c) and the SentencePiece merges of "llama" ones
 * (tokenizer_spm.c). Nothing here is part of the model stage's contract.
 */
#ifndef LMC_TOKENIZER_INTERNAL_H
#define LMC_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* Token types of tokenizer.ggml.token_type (numbering as in llama.cpp). */
enum {
    LMC_TOKTYPE_UNDEFINED = 0,
    LMC_TOKTYPE_NORMAL = 1,
    LMC_TOKTYPE_UNKNOWN = 2,
    LMC_TOKTYPE_CONTROL = 3,
    LMC_TOKTYPE_USER_DEFINED = 4,
    LMC_TOKTYPE_UNUSED = 5,
    LMC_TOKTYPE_BYTE = 6
};

typedef enum { LMC_TOK_BYTES, LMC_TOK_BPE, LMC_TOK_SPM } lmc_tok_kind;

/* A byte string inside the tokenizer's blob. */
typedef struct {
    uint32_t offset;
    uint32_t length;
} lmc_tok_span;

/* Open-addressing map from byte strings (spans of the blob) to token ids.
 * A slot holds the key's hash in its high half and id + 1 in its low half
 * (0: empty). */
typedef struct {
    uint64_t *slots;
    uint64_t mask;
} lmc_tok_map;

/* Open-addressing map from a pair of token ids to the BPE merge joining
 * them: its rank (priority, lower first) and the id of the joined token. */
typedef struct {
    uint64_t key; /* (left + 1) << 32 | (right + 1); 0: empty */
    int32_t rank;
    int32_t merged;
} lmc_tok_pair_slot;

typedef struct {
    lmc_tok_pair_slot *slots;
    uint64_t mask;
} lmc_tok_pair_map;

/* Scrambles an integer key into a hash (for the maps of integer keys). */
static inline uint64_t lmc_tok_mix(uint64_t key) {
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ key >> 29;
}

/* Open-addressing set of non-zero 64-bit keys. */
typedef struct {
    uint64_t *slots;
    uint64_t mask;
} lmc_tok_set;

typedef struct lmc_tok_bpe lmc_tok_bpe; /* pre-tokenizer regexes (tokenizer_bpe.c) */

struct lmc_tokenizer {
    lmc_tok_kind kind;
    int32_t n_vocab;
    int32_t bos;
    uint8_t *types;             /* LMC_TOKTYPE_* per token (not for lmc-bytes) */
    float *scores;              /* SentencePiece merge scores (NULL for other kinds) */
    lmc_tok_span *keys;         /* what a token matches in text; length 0: never matches */
    lmc_tok_span *pieces;       /* the bytes a token decodes to */
    uint8_t *blob;
    lmc_tok_map by_key;
    int32_t byte_token[256];    /* token whose piece is exactly that byte, else -1 */
    int32_t *user_defined;      /* USER_DEFINED tokens, longest text first */
    size_t n_user_defined;
    int add_space_prefix;       /* SentencePiece dummy prefix */
    lmc_tok_set char_pairs;     /* SentencePiece: adjacent character pairs inside some token */
    lmc_tok_pair_map merges;    /* byte-level BPE */
    lmc_tok_bpe *bpe;
};

/* Growable token id list. */
typedef struct {
    int32_t *data;
    size_t size;
    size_t capacity;
} lmc_tok_ids;

lmc_status lmc_tok_ids_push(lmc_tok_ids *ids, int32_t id);

/* ---- The merge loop both BPE and SentencePiece use (as llama.cpp's) ----
 * Symbols form a linked list over a working text; adjacent pairs that may
 * merge wait in a heap, best first; a popped pair whose symbols changed
 * since it was queued is stale and skipped. */
typedef struct {
    uint32_t offset;      /* in the working text */
    uint32_t length;      /* 0: merged into its left neighbour */
    uint32_t src_offset;  /* the input bytes it stands for (they differ from */
    uint32_t src_length;  /* the working text where spaces became U+2581) */
    int32_t prev, next;
    int32_t id;           /* token whose key is the symbol's text, else -1 */
    uint8_t opaque;       /* never merges (a literal U+2581 in lossless SentencePiece) */
} lmc_tok_symbol;

typedef struct {
    uint32_t priority; /* lower first; ties: lower left first */
    int32_t left;      /* the right symbol is left's next */
    uint32_t size;     /* left + right length when queued */
    int32_t merged;    /* the token the pair becomes */
} lmc_tok_bigram;

typedef struct {
    lmc_tok_bigram *data;
    size_t size;
    size_t capacity;
} lmc_tok_heap;

/* Decides whether l and r may merge; fills priority and merged if so. */
typedef int (*lmc_tok_pair_fn)(const void *ctx, const lmc_tok_symbol *symbols, int32_t left, int32_t right,
                               uint32_t *priority, int32_t *merged);

/* Runs the merges to completion over symbols[0..n) (linked in order). */
lmc_status lmc_tok_merge(lmc_tok_symbol *symbols, size_t n, lmc_tok_heap *heap, lmc_tok_pair_fn pair,
                         const void *ctx);
void lmc_tok_heap_free(lmc_tok_heap *heap);

/* UTF-8 as llama.cpp decodes it (overlong forms and surrogates accepted);
 * returns the sequence length, or 0 for an invalid byte. Code points above
 * U+10FFFF count as invalid (llama.cpp cannot re-encode them either). */
size_t lmc_tok_utf8_lenient(const uint8_t *p, size_t n, uint32_t *cp);
/* Length of a well-formed UTF-8 sequence at p (no overlong forms, no
 * surrogates), or 0. */
size_t lmc_tok_utf8_valid(const uint8_t *p, size_t n);
/* Writes cp in UTF-8 (surrogates included); returns the length (1..4). */
size_t lmc_tok_utf8_put(uint32_t cp, uint8_t out[4]);

/* Appends data to the blob and points span at it. */
lmc_status lmc_tok_blob_add(lmc_buf *blob, const void *data, size_t size, lmc_tok_span *span);

/* Token id whose key is exactly text[0..size), or -1. */
int32_t lmc_tok_map_find(const lmc_tokenizer *tok, const uint8_t *text, size_t size);

/* Appends `id` when lossless coding may use it for text[0..size): its piece
 * must be exactly those bytes. Returns 1 if appended, 0 if not usable. */
int lmc_tok_emit_verified(const lmc_tokenizer *tok, int32_t id, const uint8_t *text, size_t size,
                          lmc_tok_ids *out, lmc_status *status);
/* Appends every byte as its byte token, or as an escape where none exists. */
lmc_status lmc_tok_emit_bytes(const lmc_tokenizer *tok, const uint8_t *text, size_t size, lmc_tok_ids *out);

/* Byte-level BPE ("gpt2"). init builds keys and pieces of the BPE kind
 * (raw bytes behind the byte-to-unicode mapping), the merges and the
 * pre-tokenizer; encode tokenizes one fragment of text (no user-defined
 * tokens inside). */
lmc_status lmc_tok_bpe_keys(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_buf *blob, lmc_message *message);
lmc_status lmc_tok_bpe_init(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_message *message);
void lmc_tok_bpe_free(lmc_tokenizer *tok);
lmc_status lmc_tok_bpe_encode(const lmc_tokenizer *tok, const uint8_t *text, size_t size, int lossless,
                              lmc_tok_ids *out);

/* SentencePiece ("llama"). keys and pieces are the token texts, with U+2581
 * standing for a space in pieces' bytes. */
lmc_status lmc_tok_spm_keys(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_buf *blob, lmc_message *message);
/* Records which character pairs occur inside tokens: text splits into
 * independent runs where no token can span a boundary. */
lmc_status lmc_tok_spm_init(lmc_tokenizer *tok);
lmc_status lmc_tok_spm_encode(const lmc_tokenizer *tok, const uint8_t *text, size_t size, int lossless,
                              int space_prefix, lmc_tok_ids *out);

#endif /* LMC_TOKENIZER_INTERNAL_H */
