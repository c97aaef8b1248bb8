/*
 * A vocabulary's byte strings in sorted order, so that a token can be coded
 * as its bytes (the mixed codec): the tokens that start with a given byte
 * prefix are then one contiguous run of the sorted list, found by binary
 * search, and the model's probability of that prefix is a difference of two
 * prefix sums.
 *
 * Tokens whose pieces are equal (a byte-fallback token and a normal token for
 * the same byte, say) collapse to one: the smallest id stands for the bytes,
 * and the mixed codec feeds that id to the model on both sides. Tokens without
 * bytes (control tokens) cannot be coded as bytes and are left out.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

typedef struct {
    int32_t id;
    const uint8_t *bytes;
    uint32_t length;
} piece_ref;

static int compare_pieces(const void *a_, const void *b_) {
    const piece_ref *a = a_, *b = b_;
    uint32_t common = LMC_MIN(a->length, b->length);
    int c = common ? memcmp(a->bytes, b->bytes, common) : 0;
    if (c != 0)
        return c;
    if (a->length != b->length)
        return a->length < b->length ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int same_bytes(const piece_ref *a, const piece_ref *b) {
    return a->length == b->length && !memcmp(a->bytes, b->bytes, a->length);
}

void lmc_piece_index_free(lmc_piece_index *index) {
    if (!index)
        return;
    free(index->sorted_ids);
    free(index->offset);
    free(index->bytes);
    free(index->canonical);
    free(index->rank);
    memset(index, 0, sizeof *index);
}

/* Every token's piece, concatenated in id order, with refs into it. */
static lmc_status collect_pieces(const lmc_tokenizer *tok, int vocab, lmc_buf *all, piece_ref *refs) {
    size_t *starts = malloc((size_t)vocab * sizeof *starts);
    if (!starts)
        return LMC_ERR_NOMEM;
    lmc_status status = LMC_OK;
    for (int id = 0; id < vocab && status == LMC_OK; id++) {
        starts[id] = all->size;
        status = lmc_tokenizer_piece(tok, id, all);
    }
    for (int id = 0; id < vocab && status == LMC_OK; id++) {
        size_t end = id + 1 < vocab ? starts[id + 1] : all->size;
        refs[id] = (piece_ref){id, all->data + starts[id], (uint32_t)(end - starts[id])};
    }
    free(starts);
    return status;
}

static lmc_status fill_index(lmc_piece_index *ix, const piece_ref *sorted, int n, int vocab, size_t total_bytes) {
    ix->sorted_ids = malloc((size_t)LMC_MAX(n, 1) * sizeof *ix->sorted_ids);
    ix->offset = malloc(((size_t)n + 1) * sizeof *ix->offset);
    ix->bytes = malloc(LMC_MAX(total_bytes, (size_t)1));
    ix->canonical = malloc((size_t)vocab * sizeof *ix->canonical);
    ix->rank = malloc((size_t)vocab * sizeof *ix->rank);
    if (!ix->sorted_ids || !ix->offset || !ix->bytes || !ix->canonical || !ix->rank)
        return LMC_ERR_NOMEM;
    for (int id = 0; id < vocab; id++)
        ix->canonical[id] = ix->rank[id] = -1;
    int count = 0;
    uint32_t used = 0;
    for (int i = 0; i < n; i++) {
        /* Sorted by bytes, then id: the first of equal pieces is the smallest id. */
        if (i == 0 || !same_bytes(&sorted[i - 1], &sorted[i])) {
            ix->sorted_ids[count] = sorted[i].id;
            ix->offset[count] = used;
            memcpy(ix->bytes + used, sorted[i].bytes, sorted[i].length);
            used += sorted[i].length;
            count++;
        }
        ix->canonical[sorted[i].id] = ix->sorted_ids[count - 1];
        ix->rank[sorted[i].id] = count - 1;
    }
    ix->offset[count] = used;
    ix->count = count;
    ix->vocab = vocab;
    return LMC_OK;
}

lmc_status lmc_piece_index_build(const lmc_tokenizer *tok, int vocab, lmc_piece_index *out) {
    memset(out, 0, sizeof *out);
    vocab = LMC_MIN(vocab, lmc_tokenizer_vocab_size(tok));
    if (vocab <= 0)
        return LMC_ERR_PARAM;
    lmc_buf all;
    lmc_buf_init(&all);
    piece_ref *refs = malloc((size_t)vocab * sizeof *refs);
    lmc_status status = refs ? collect_pieces(tok, vocab, &all, refs) : LMC_ERR_NOMEM;
    if (status == LMC_OK && all.size > UINT32_MAX)
        status = LMC_ERR_MODEL_INVALID;
    int n = 0;
    size_t total = 0;
    for (int id = 0; status == LMC_OK && id < vocab; id++)
        if (refs[id].length > 0) {
            total += refs[id].length;
            refs[n++] = refs[id];
        }
    if (status == LMC_OK) {
        qsort(refs, (size_t)n, sizeof *refs, compare_pieces);
        status = fill_index(out, refs, n, vocab, total);
    }
    free(refs);
    lmc_buf_free(&all);
    if (status != LMC_OK)
        lmc_piece_index_free(out);
    return status;
}
