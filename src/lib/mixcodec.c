/*
 * The mixed codec (docs/FORMAT.md, codecs 2 and 4): each token is coded as its
 * bytes, bit by bit, under a mixture of the neural model and a context-mixing
 * model that learns the block as it is coded (model/cm.c).
 *
 * The neural model gives a distribution over tokens (integer frequencies).
 * Sorted by their bytes (lmc_piece_index), the tokens that agree with the
 * bytes coded so far form a run [lo, hi), so the model's probability of the
 * next bit is a ratio of prefix sums over that run. The context-mixing model
 * takes it as one input of its mixer, next to its own order-n, word and match
 * predictions, and the mixer's output codes the bit. Bits the vocabulary
 * decides (every token of the run agrees on them) cost nothing. When the
 * bytes so far are themselves a token and longer tokens remain, one binary
 * "the token ends here" decision is coded under the model's probability.
 * With the mixer trusting the model alone this codes exactly -log2 p(token);
 * what the adaptive model adds is what it knows about this block.
 *
 * Integer arithmetic only, so both sides compute identical probabilities.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/lib.h"

/* A lane: a contiguous part of the block, coded as a sequence of its own
 * (lmc_mix_block_set_lanes). */
typedef struct {
    size_t start, pos, end;
    int32_t previous[2];   /* the lane's last two tokens (canonical ids, newest first), 0 at its start */
} mix_lane;

struct lmc_mix_block {
    const lmc_piece_index *index;
    lmc_cm *cm;
    uint8_t *out;          /* decoder: where decoded bytes go (NULL when encoding) */
    const uint8_t *data;   /* the block's bytes (encoder) or out (decoder) */
    mix_lane lanes[LMC_CM_LANES_MAX];
    int lane_count;
    mix_lane *at;          /* the lane being coded */
    uint32_t *own_sums;    /* [count + 1]: sums made here (lmc_mix_encode_token, lmc_mix_decode_token) */
    const uint32_t *sums;  /* the current token's prefix sums of the frequencies in sorted order */
};

static const lmc_mix_observer *observer;

void lmc_mix_observe(const lmc_mix_observer *o) {
    observer = o;
}

typedef struct {
    lmc_rc_encoder *enc;   /* exactly one of enc, dec */
    lmc_rc_decoder *dec;
} bit_coder;

lmc_status lmc_mix_block_open(const lmc_piece_index *index, const uint8_t *data, uint8_t *out, size_t size,
                              int version, lmc_mix_block **block) {
    *block = NULL;
    lmc_mix_block *b = calloc(1, sizeof *b);
    if (!b)
        return LMC_ERR_NOMEM;
    b->index = index;
    b->out = out;
    b->data = out ? out : data;
    b->lanes[0].end = size;
    b->lane_count = 1;
    b->at = &b->lanes[0];
    b->own_sums = malloc(((size_t)index->count + 1) * sizeof *b->own_sums);
    lmc_status status = b->own_sums ? lmc_cm_open(size, b->data, version, &b->cm) : LMC_ERR_NOMEM;
    if (status != LMC_OK) {
        lmc_mix_block_close(b);
        return status;
    }
    *block = b;
    if (observer)
        observer->block(observer->user, size);
    return LMC_OK;
}

void lmc_mix_block_close(lmc_mix_block *b) {
    if (!b)
        return;
    lmc_cm_close(b->cm);
    free(b->own_sums);
    free(b);
}

size_t lmc_mix_block_bytes(const lmc_piece_index *index, size_t size) {
    return sizeof(lmc_mix_block) + ((size_t)index->count + 1) * sizeof(uint32_t) + lmc_cm_mixed_memory(size);
}

lmc_status lmc_mix_block_set_lanes(lmc_mix_block *b, const size_t *starts, int count) {
    lmc_status status = lmc_cm_set_lanes(b->cm, starts, count);
    if (status != LMC_OK)
        return status;
    const size_t size = b->lanes[0].end;
    for (int lane = 0; lane < count; lane++)
        b->lanes[lane] = (mix_lane){starts[lane], starts[lane], lane + 1 < count ? starts[lane + 1] : size, {0, 0}};
    b->lane_count = count;
    if (observer && count > 1)
        observer->lanes(observer->user, starts, count);
    return LMC_OK;
}

void lmc_mix_select_lane(lmc_mix_block *b, int lane) {
    if (b->at == &b->lanes[lane])
        return;
    b->at = &b->lanes[lane];
    lmc_cm_select_lane(b->cm, lane);
    if (observer)
        observer->lane(observer->user, lane);
}

size_t lmc_mix_block_position(const lmc_mix_block *b) {
    size_t coded = 0;
    for (int lane = 0; lane < b->lane_count; lane++)
        coded += b->lanes[lane].pos - b->lanes[lane].start;
    return coded;
}

void lmc_mix_sorted_sums(const lmc_piece_index *ix, const uint32_t *cum, uint32_t *sums) {
    uint32_t total = 0;
    sums[0] = 0;
    for (int i = 0; i < ix->count; i++) {
        int32_t id = ix->sorted_ids[i];
        total += cum ? cum[id + 1] - cum[id] : 1u;
        sums[i + 1] = total;
    }
}

/* First i in [lo, hi) whose byte at depth is >= value (all have length > depth). */
static int first_at_least(const lmc_piece_index *ix, int lo, int hi, uint32_t depth, uint32_t value) {
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (ix->bytes[ix->offset[mid] + depth] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* part / whole as P * 65536 in [1, 65535] (whole > 0). */
static uint32_t ratio16(uint32_t part, uint32_t whole) {
    uint64_t p = ((uint64_t)part << 16) / whole;
    return (uint32_t)LMC_MAX(1u, LMC_MIN(p, 65535u));
}

static int code_bit(bit_coder *c, uint32_t p1, int bit) {
    if (c->enc) {
        lmc_rc_encode_bit(c->enc, p1, bit);
        return bit;
    }
    return lmc_rc_decode_bit(c->dec, p1);
}

/* Codes the next byte of the token within run [*lo, *hi) at `depth`; the
 * encoder passes the byte, the decoder -1. Returns the byte. */
static uint32_t code_byte(lmc_mix_block *b, bit_coder *c, int *lo, int *hi, uint32_t depth, int byte) {
    const lmc_piece_index *ix = b->index;
    uint32_t prefix = 0; /* the bits decided so far */
    for (int k = 7; k >= 0; k--) {
        uint32_t one = prefix << (k + 1) | 1u << k; /* smallest byte with this prefix and bit k set */
        int split = first_at_least(ix, *lo, *hi, depth, one);
        int bit;
        uint32_t model = 0;
        if (split == *lo || split == *hi) { /* the vocabulary decides this bit */
            bit = split == *lo;
            lmc_cm_predict_bit(b->cm, bit ? 65535u : 1u);
        } else {
            model = ratio16(b->sums[*hi] - b->sums[split], b->sums[*hi] - b->sums[*lo]);
            bit = code_bit(c, lmc_cm_predict_bit(b->cm, model), byte < 0 ? -1 : (byte >> k) & 1);
        }
        if (observer)
            observer->bit(observer->user, model, bit);
        lmc_cm_update_bit(b->cm, bit);
        if (bit)
            *lo = split;
        else
            *hi = split;
        prefix = prefix << 1 | (uint32_t)bit;
    }
    return prefix;
}

/* Codes one token; `target` is the encoder's token (its canonical id), or -1
 * when decoding. Returns the token's canonical id, or -1 if the data runs
 * past the block (damage). */
static int32_t code_token(lmc_mix_block *b, bit_coder *c, const uint32_t *sums, int32_t target) {
    const lmc_piece_index *ix = b->index;
    const uint8_t *want = NULL;
    uint32_t want_length = 0;
    if (target >= 0) {
        int r = ix->rank[target];
        want = ix->bytes + ix->offset[r];
        want_length = lmc_piece_length(ix, r);
    }
    b->sums = sums;
    int lo = 0, hi = ix->count;
    for (uint32_t depth = 0;; depth++) {
        if (depth > 0 && lmc_piece_length(ix, lo) == depth) { /* the bytes so far are a token */
            if (hi - lo == 1)
                return ix->sorted_ids[lo];
            uint32_t model = ratio16(b->sums[lo + 1] - b->sums[lo], b->sums[hi] - b->sums[lo]);
            uint32_t p_end = lmc_cm_predict_end(b->cm, model, (uint32_t)ix->sorted_ids[lo],
                                                 (uint32_t)b->at->previous[0], (uint32_t)b->at->previous[1], depth);
            int end = code_bit(c, p_end, want ? want_length == depth : -1);
            if (observer)
                observer->end(observer->user, model, (uint32_t)ix->sorted_ids[lo], (uint32_t)b->at->previous[0],
                              (uint32_t)b->at->previous[1], depth, end);
            lmc_cm_update_end(b->cm, end);
            if (end)
                return ix->sorted_ids[lo];
            lo++;
        }
        if (b->at->pos >= b->at->end)
            return -1;
        uint32_t byte = code_byte(b, c, &lo, &hi, depth, want ? want[depth] : -1);
        if (b->out)
            b->out[b->at->pos] = (uint8_t)byte;
        b->at->pos++;
        lmc_cm_end_byte(b->cm, byte);
    }
}

static void remember(lmc_mix_block *b, int32_t id) {
    b->at->previous[1] = b->at->previous[0];
    b->at->previous[0] = id;
}

void lmc_mix_encode_sorted(lmc_mix_block *b, lmc_rc_encoder *rc, const uint32_t *sums, int32_t id) {
    bit_coder c = {rc, NULL};
    remember(b, code_token(b, &c, sums, id));
}

int32_t lmc_mix_decode_sorted(lmc_mix_block *b, lmc_rc_decoder *rc, const uint32_t *sums) {
    bit_coder c = {NULL, rc};
    int32_t id = code_token(b, &c, sums, -1);
    if (id >= 0)
        remember(b, id);
    return id;
}

void lmc_mix_encode_token(lmc_mix_block *b, lmc_rc_encoder *rc, const uint32_t *cum, int32_t id) {
    lmc_mix_sorted_sums(b->index, cum, b->own_sums);
    lmc_mix_encode_sorted(b, rc, b->own_sums, id);
}

int32_t lmc_mix_decode_token(lmc_mix_block *b, lmc_rc_decoder *rc, const uint32_t *cum) {
    lmc_mix_sorted_sums(b->index, cum, b->own_sums);
    return lmc_mix_decode_sorted(b, rc, b->own_sums);
}
