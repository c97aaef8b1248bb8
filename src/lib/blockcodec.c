/*
 * Neural block codec: tokens of a block -> model logits -> integer CDFs ->
 * range coder, and back.
 *
 * The model input is x = [BOS] + tokens when the tokenizer has a BOS token,
 * else x = tokens, whose first token is then coded under a uniform CDF.
 * Output row p of the model (after reading x[0..p]) predicts x[p+1].
 *
 * Windowing (docs/FORMAT.md): with window W and stride S, output p is
 * computed by window k = 0 if p < W, else (p - W) / S + 1. Window k starts
 * at x[k*S] with relative position 0 and yields outputs W + (k-1)S ..
 * W + kS - 1 at positions W - S .. W - 1; before them, window k > 0 re-reads
 * its first W - S tokens as context (numerics 1), or keeps window k-1's
 * caches slid by S with x[0] as a sink (numerics 2, lmc_llama_slide).
 * Encoder and decoder follow exactly this schedule, and the engine is
 * batch-invariant, so both see bit-identical logits.
 *
 * A token the vocabulary cannot represent is coded as the extra symbol
 * `vocab` (escape) followed by its byte under a uniform 8-bit CDF; the model
 * then reads token 0 in its place.
 *
 * The mixed codec (codec 2) runs the same schedule but codes each token as
 * its bytes under the model mixed with an adaptive model (mixcodec.c); the
 * model then reads each token's canonical id (lmc_piece_index).
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib.h"
#include "nn/cuda.h"

/* Rows of working memory at least: a small window still gets calls of
 * this many rows when several blocks share them. */
#define MIN_ROWS 64

struct lmc_neural_coder {
    const lmc_model *model;
    lmc_pool *pool;
    lmc_llama_state *state;
    int max_blocks;
    int max_lanes;      /* lanes per block at most (1 but for codec 5) */
    int lane_table;     /* codec 5: each payload starts with its lanes */
    int max_rows;
    int vocab;          /* model vocabulary */
    int symbols;        /* vocab, plus one escape symbol if the tokenizer needs it */
    int has_bos;
    int32_t bos;
    uint32_t window, stride;
    int slide;          /* numerics v2: full windows slide their caches */
    uint32_t block_size;
    int mixed;
    int mix_version;        /* mixed codec only: LMC_CM_MIXED_V1 (codec 2) or _V2 (codec 4) */
    lmc_piece_index pieces; /* mixed codec only */
    /* Rows with logits: max_rows, or for a lane group's coder, which only
     * decodes steps, one per sequence. */
    float *logits;      /* [rows][symbols] */
    float *scratch;     /* [rows][symbols] */
    uint32_t *cum;      /* [rows][symbols + 1] */
    uint32_t *sorted;   /* mixed codec: [rows][symbols + 1], cum's sums in the pieces' order */
    /* Per-call row descriptions. */
    int *seqs, *positions;
    int32_t *tokens;
    /* Decoding in lane groups: a coder of their own each (no pool). */
    lmc_neural_coder **groups;
    int n_groups;
};

static int lanes_of(const lmc_neural_config *config) {
    return LMC_MAX(1, config->lanes);
}

/* Sequences the engine keeps: one per lane of every block of a batch. */
static int sequences_of(const lmc_neural_config *config) {
    return config->max_blocks * lanes_of(config);
}

static int rows_needed(int sequences, uint32_t window) {
    return LMC_MAX((int)window, LMC_MAX(sequences, MIN_ROWS));
}

/* Rows per engine call at most: a lane group's coder (steps_only) calls
 * the engine with one row per sequence, unless windows are re-read. */
static int engine_rows(const lmc_neural_config *config, int steps_only) {
    if (steps_only && lmc_numerics_slides(config->numerics))
        return sequences_of(config);
    return rows_needed(sequences_of(config), config->window);
}

/* Rows with logits (see the coder's logits). */
static int logit_rows(const lmc_neural_config *config, int steps_only) {
    return steps_only ? sequences_of(config) : engine_rows(config, 0);
}

int lmc_neural_decode_groups(int threads) {
    const int groups = LMC_MIN(threads, lmc_cpu_count());
    return groups >= 2 && !lmc_cuda_enabled() ? groups : 0;
}

/* The lane groups a decoding coder keeps (0: none): no more than its
 * sequences. */
static int groups_of(const lmc_neural_config *config) {
    const int groups = LMC_MIN(config->decode_groups, sequences_of(config));
    return groups >= 2 ? groups : 0;
}

/* A group's coder: a share of the sequences as lone lanes, no groups. */
static lmc_neural_config group_config(const lmc_neural_config *config, int groups) {
    lmc_neural_config group = *config;
    group.max_blocks = (sequences_of(config) + groups - 1) / groups;
    group.lanes = 0;
    group.decode_groups = 0;
    return group;
}

/* The model state, the rows' working memory and the piece index. */
static uint64_t engine_bytes(const lmc_model *model, const lmc_neural_config *config, int steps_only) {
    const int rows = engine_rows(config, steps_only);
    const uint64_t symbols = (uint64_t)model->llama.vocab + 1;
    const uint64_t per_logit_row = symbols * (sizeof(float) * 2 + sizeof(uint32_t) * (config->mixed ? 2 : 1));
    return lmc_llama_state_bytes(&model->llama, lmc_nn_rules_of(config->numerics), sequences_of(config),
                                 (int)config->window, rows) +
           (uint64_t)logit_rows(config, steps_only) * per_logit_row + (uint64_t)rows * 3 * sizeof(int) +
           (config->mixed ? symbols * 24 : 0);
}

uint64_t lmc_neural_coder_bytes(const lmc_model *model, const lmc_neural_config *config) {
    uint64_t bytes = engine_bytes(model, config, 0);
    if (config->mixed) {
        /* Each block's prefix sums and adaptive model. */
        uint64_t symbols = (uint64_t)model->llama.vocab + 1;
        bytes += (uint64_t)config->max_blocks * (symbols * sizeof(uint32_t) + lmc_cm_mixed_memory(config->block_size));
    }
    const int groups = groups_of(config);
    if (groups) {
        const lmc_neural_config group = group_config(config, groups);
        bytes += (uint64_t)groups * engine_bytes(model, &group, 1);
    }
    return bytes;
}

int lmc_neural_can_mix(const lmc_model *model) {
    return lmc_tokenizer_covers_all_bytes(model->tokenizer);
}

void lmc_neural_coder_free(lmc_neural_coder *coder) {
    if (!coder)
        return;
    for (int g = 0; g < coder->n_groups; g++)
        lmc_neural_coder_free(coder->groups[g]);
    free(coder->groups);
    lmc_llama_state_free(coder->state);
    lmc_piece_index_free(&coder->pieces);
    free(coder->logits);
    free(coder->scratch);
    free(coder->cum);
    free(coder->sorted);
    free(coder->seqs);
    free(coder->positions);
    free(coder->tokens);
    free(coder);
}

static lmc_status create_coder(const lmc_model *model, lmc_pool *pool, const lmc_neural_config *config, int steps_only,
                               lmc_neural_coder **out, lmc_message *message);

static lmc_status create_groups(lmc_neural_coder *c, const lmc_neural_config *config, lmc_message *message) {
    const int groups = groups_of(config);
    if (!groups)
        return LMC_OK;
    c->groups = calloc((size_t)groups, sizeof *c->groups);
    if (!c->groups)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    const lmc_neural_config group = group_config(config, groups);
    for (; c->n_groups < groups; c->n_groups++) {
        lmc_status status = create_coder(c->model, NULL, &group, 1, &c->groups[c->n_groups], message);
        if (status != LMC_OK)
            return status;
    }
    return LMC_OK;
}

/* steps_only: a lane group's coder (see the coder's logits). */
static lmc_status create_coder(const lmc_model *model, lmc_pool *pool, const lmc_neural_config *config, int steps_only,
                               lmc_neural_coder **out, lmc_message *message) {
    *out = NULL;
    int max_blocks = config->max_blocks;
    uint32_t window = config->window, stride = config->stride;
    if (window < 2 || stride == 0 || stride > window)
        return lmc_fail(message, LMC_ERR_CORRUPT, "invalid context window %u / stride %u", window, stride);
    lmc_neural_coder *c = calloc(1, sizeof *c);
    if (!c)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    c->model = model;
    c->pool = pool;
    c->max_blocks = max_blocks;
    c->max_lanes = lanes_of(config);
    c->lane_table = config->lanes > 0;
    c->max_rows = engine_rows(config, steps_only);
    c->vocab = model->llama.vocab;
    c->symbols = c->vocab + (lmc_tokenizer_covers_all_bytes(model->tokenizer) ? 0 : 1);
    c->bos = lmc_tokenizer_bos(model->tokenizer);
    c->has_bos = c->bos >= 0 && c->bos < c->vocab;
    c->window = window;
    c->stride = stride;
    c->slide = lmc_numerics_slides(config->numerics);
    c->block_size = config->block_size;
    c->mixed = config->mixed;
    c->mix_version = config->mixed == LMC_MIXED_CODEC2 ? LMC_CM_MIXED_V1 : LMC_CM_MIXED_V2;
    if (c->mixed && !lmc_neural_can_mix(model)) {
        free(c);
        return lmc_fail(message, LMC_ERR_CORRUPT, "the mixed codec needs a tokenizer that covers every byte");
    }
    if (c->lane_table && !c->mixed) { /* lanes are measured in the mixed codec's pieces */
        free(c);
        return lmc_fail(message, LMC_ERR_INTERNAL, "lanes without the mixed codec");
    }
    const size_t rows = (size_t)c->max_rows, with_logits = (size_t)logit_rows(config, steps_only);
    c->logits = malloc(with_logits * (size_t)c->symbols * sizeof *c->logits);
    c->scratch = malloc(with_logits * (size_t)c->symbols * sizeof *c->scratch);
    c->cum = malloc(with_logits * ((size_t)c->symbols + 1) * sizeof *c->cum);
    c->seqs = malloc(rows * sizeof *c->seqs);
    c->positions = malloc(rows * sizeof *c->positions);
    c->tokens = malloc(rows * sizeof *c->tokens);
    lmc_status status = LMC_OK;
    if (c->mixed)
        c->sorted = malloc(with_logits * ((size_t)c->symbols + 1) * sizeof *c->sorted);
    if (!c->logits || !c->scratch || !c->cum || !c->seqs || !c->positions || !c->tokens || (c->mixed && !c->sorted))
        status = LMC_ERR_NOMEM;
    else
        status = lmc_llama_state_create(&model->llama, lmc_nn_rules_of(config->numerics), sequences_of(config),
                                        (int)window, c->max_rows, &c->state);
    if (status == LMC_OK && c->mixed)
        status = lmc_piece_index_build(model->tokenizer, c->vocab, &c->pieces);
    if (status != LMC_OK) {
        lmc_neural_coder_free(c);
        return lmc_fail(message, status, "cannot allocate the model's working memory");
    }
    status = create_groups(c, config, message);
    if (status != LMC_OK) {
        lmc_neural_coder_free(c);
        return status;
    }
    *out = c;
    return LMC_OK;
}

lmc_status lmc_neural_coder_create(const lmc_model *model, lmc_pool *pool, const lmc_neural_config *config,
                                   lmc_neural_coder **out, lmc_message *message) {
    return create_coder(model, pool, config, 0, out, message);
}

/* ---- The window schedule ---- */

static uint64_t window_start(const lmc_neural_coder *c, uint64_t p) {
    if (p < c->window)
        return 0;
    return ((p - c->window) / c->stride + 1) * c->stride;
}

/* First output of window k > 0, i.e. where a new window must be primed. */
static int is_window_start(const lmc_neural_coder *c, uint64_t p) {
    return p >= c->window && (p - c->window) % c->stride == 0;
}

/* ---- Per-row CDFs ---- */

/* Where row's values start in cum and sorted. */
static size_t row_start(const lmc_neural_coder *c, int row) {
    return (size_t)row * (size_t)(c->symbols + 1);
}

static const uint32_t *row_cum(const lmc_neural_coder *c, int row) {
    return c->cum + row_start(c, row);
}

static const uint32_t *row_sorted(const lmc_neural_coder *c, int row) {
    return c->sorted + row_start(c, row);
}

/* Escape columns get a logit of -inf: they keep the floor frequency. */
static void row_cdf(lmc_neural_coder *c, int row) {
    float *logits = c->logits + (size_t)row * c->symbols;
    if (c->symbols > c->vocab)
        logits[c->vocab] = -__builtin_inff();
    lmc_cdf_from_logits(logits, c->symbols, c->scratch + (size_t)row * c->symbols,
                        c->cum + row_start(c, row));
}

/* The rows' CDFs; for the mixed codec also their sums in the pieces' order,
 * here on every thread rather than where the tokens are coded one by one. */
static void rows_cdf_range(void *ctx, int begin, int end) {
    lmc_neural_coder *c = ctx;
    for (int row = begin; row < end; row++) {
        row_cdf(c, row);
        if (c->mixed)
            lmc_mix_sorted_sums(&c->pieces, row_cum(c, row), c->sorted + row_start(c, row));
    }
}

/* The uniform CDF codes a block's first token when there is no BOS. */
static void uniform_cdf(lmc_neural_coder *c, uint32_t *cum) {
    float *logits = c->logits;
    for (int i = 0; i < c->symbols; i++)
        logits[i] = 0.0f;
    lmc_cdf_from_logits(logits, c->symbols, c->scratch, cum);
}

/* Logits rows are laid out with stride `symbols`; the engine writes `vocab`
 * columns, so rows are spread out after each call when they differ. */
static void forward(lmc_neural_coder *c, int n, int want_logits) {
    lmc_llama_forward(c->state, c->pool, c->seqs, c->tokens, c->positions, n, want_logits ? c->logits : NULL);
    if (want_logits && c->symbols != c->vocab)
        for (int row = n - 1; row > 0; row--)
            memmove(c->logits + (size_t)row * c->symbols, c->logits + (size_t)row * c->vocab,
                    (size_t)c->vocab * sizeof(float));
}

/* ---- Encoding ---- */

static int32_t model_input(int32_t id) {
    return LMC_TOKEN_IS_ESCAPE(id) ? 0 : id;
}

/* mix is the block's mixed-codec state, NULL for the plain codec; the
 * token is coded under the distribution of the current call's `row`, or
 * the uniform one when row < 0. */
static void encode_token(lmc_neural_coder *c, lmc_mix_block *mix, lmc_rc_encoder *rc, int row, int32_t id) {
    if (mix) {
        if (row < 0)
            lmc_mix_encode_token(mix, rc, NULL, id);
        else
            lmc_mix_encode_sorted(mix, rc, row_sorted(c, row), id);
        return;
    }
    const uint32_t *cum = row < 0 ? NULL : row_cum(c, row);
    if (!cum) {
        uniform_cdf(c, c->cum);
        cum = c->cum;
    }
    int vocab = c->vocab;
    if (LMC_TOKEN_IS_ESCAPE(id)) {
        lmc_rc_encode_symbol(rc, cum, vocab);
        lmc_rc_encode(rc, LMC_TOKEN_ESCAPED_BYTE(id), 1, 8);
    } else {
        lmc_rc_encode_symbol(rc, cum, id);
    }
}

/* Builds x = [BOS] + ids (or ids). */
static lmc_status model_sequence(const lmc_neural_coder *c, const int32_t *ids, size_t n, int32_t **x_out) {
    int32_t *x = malloc((n + 1) * sizeof *x);
    if (!x)
        return LMC_ERR_NOMEM;
    size_t m = 0;
    if (c->has_bos)
        x[m++] = c->bos;
    memcpy(x + m, ids, n * sizeof *ids);
    *x_out = x;
    return LMC_OK;
}

/* The mixed codec feeds the model canonical ids, and codes each token as
 * the block's next bytes: check that the pieces really spell the block. */
static lmc_status canonical_ids(const lmc_neural_coder *c, int32_t *ids, size_t n, const uint8_t *data,
                                size_t size) {
    const lmc_piece_index *ix = &c->pieces;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = LMC_TOKEN_IS_ESCAPE(ids[i]) || ids[i] >= ix->vocab ? -1 : ix->canonical[ids[i]];
        if (id < 0)
            return LMC_ERR_INTERNAL;
        int r = ix->rank[id];
        uint32_t length = lmc_piece_length(ix, r);
        if (length > size - pos || memcmp(ix->bytes + ix->offset[r], data + pos, length))
            return LMC_ERR_INTERNAL;
        pos += length;
        ids[i] = id;
    }
    return pos == size ? LMC_OK : LMC_ERR_INTERNAL;
}

/* One sequence being encoded, or decoded (a block's, or a lane's): its
 * model input and how many outputs (predictions) it needs. */
typedef struct {
    int32_t *x;
    uint64_t outputs;
} sequence;

/* Re-reads the W-S context tokens of every sequence that still has outputs
 * at p, at a window start, in calls of at most max_rows rows (one
 * sequence's rows stay in order). */
static void prime_window(lmc_neural_coder *c, sequence *const *seqs, int count, uint64_t p) {
    uint64_t start = window_start(c, p);
    int n = 0;
    for (int b = 0; b < count; b++) {
        if (p >= seqs[b]->outputs)
            continue;
        for (uint64_t i = start; i < p; i++) {
            if (n == c->max_rows) {
                forward(c, n, 0);
                n = 0;
            }
            c->seqs[n] = b;
            c->tokens[n] = model_input(seqs[b]->x[i]);
            c->positions[n] = (int)(i - start);
            n++;
        }
    }
    if (n > 0)
        forward(c, n, 0);
}

/* Numerics v2: the full windows of the sequences still running keep their
 * caches, slid by the stride (a stride of a whole window keeps nothing: the
 * next window starts at position 0). */
static void slide_windows(lmc_neural_coder *c, sequence *const *seqs, int count, uint64_t p) {
    if (c->stride >= c->window)
        return;
    int n = 0;
    for (int b = 0; b < count; b++)
        if (p < seqs[b]->outputs)
            c->seqs[n++] = b;
    lmc_llama_slide(c->state, c->pool, c->seqs, n, (int)c->stride, (int)c->window);
}

/* Readies the window whose first output is p > 0. */
static void next_window(lmc_neural_coder *c, sequence *const *seqs, int count, uint64_t p) {
    if (c->slide)
        slide_windows(c, seqs, count, p);
    else
        prime_window(c, seqs, count, p);
}

/* ---- Lanes ---- */

/* The lanes of a block of n tokens (codec 5), none without a token. */
static int lanes_for(const lmc_neural_coder *c, size_t n) {
    return (int)LMC_MAX(1, LMC_MIN((size_t)c->max_lanes, n / LMC_LANE_MIN_TOKENS));
}

/* Lane l's first token: the tokens are shared out evenly, in order. */
static size_t lane_first_token(size_t n, int lanes, int l) {
    return n * (size_t)l / (size_t)lanes;
}

/* Bytes of the canonical tokens ids[0 .. n). */
static size_t piece_bytes(const lmc_piece_index *ix, const int32_t *ids, size_t n) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += lmc_piece_length(ix, ix->rank[ids[i]]);
    return bytes;
}

/* ---- Encoding ---- */

typedef struct {
    sequence seq;
    size_t tokens;
    int id;                 /* the engine's sequence */
    int first_row, rows;    /* the current call's rows of this lane */
} encode_lane;

typedef struct {
    encode_lane lanes[LMC_LANES_MAX];
    int lane_count;
    lmc_mix_block *mix;     /* mixed codec only */
    lmc_rc_encoder rc;
} encode_state;

typedef struct {
    lmc_neural_coder *coder;
    encode_state *blocks;
    uint64_t p;             /* the call's first output */
} encode_call;

/* Codes each block's tokens of the current call, a block per thread; a
 * block's lanes take turns token by token, as the decoder meets them. */
static void encode_call_range(void *ctx_, int begin, int end) {
    const encode_call *call = ctx_;
    lmc_neural_coder *c = call->coder;
    for (int b = begin; b < end; b++) {
        encode_state *s = &call->blocks[b];
        int rows = 0;
        for (int l = 0; l < s->lane_count; l++)
            rows = LMC_MAX(rows, s->lanes[l].rows);
        for (int r = 0; r < rows; r++)
            for (int l = 0; l < s->lane_count; l++) {
                const encode_lane *lane = &s->lanes[l];
                if (r >= lane->rows)
                    continue;
                if (s->mix)
                    lmc_mix_select_lane(s->mix, l);
                encode_token(c, s->mix, &s->rc, lane->first_row + r, lane->seq.x[call->p + (uint64_t)r + 1]);
            }
    }
}

/* Outputs [p, p + per_lane) of every lane still running, within the window
 * that starts at `start` and ends at `last`, in one model call. */
static void encode_chunk(lmc_neural_coder *c, encode_state *blocks, int count, uint64_t start, uint64_t p,
                         uint64_t last, int per_lane) {
    int n = 0;
    for (int b = 0; b < count; b++)
        for (int l = 0; l < blocks[b].lane_count; l++) {
            encode_lane *s = &blocks[b].lanes[l];
            uint64_t end = LMC_MIN(LMC_MIN(last, s->seq.outputs), p + (uint64_t)per_lane);
            s->first_row = n;
            s->rows = p < end ? (int)(end - p) : 0;
            for (int r = 0; r < s->rows; r++, n++) {
                c->seqs[n] = s->id;
                c->tokens[n] = model_input(s->seq.x[p + (uint64_t)r]);
                c->positions[n] = (int)(p + (uint64_t)r - start);
            }
        }
    forward(c, n, 1);
    lmc_pool_for(c->pool, n, rows_cdf_range, c);
    encode_call call = {c, blocks, p};
    lmc_pool_for(c->pool, count, encode_call_range, &call);
}

/* The window schedule over all lanes at once (they share it: it depends on
 * the position only); each call takes up to per_lane rows of each, as many
 * as the engine wants per call (lmc_llama_rows_per_sequence). */
static void encode_steps(lmc_neural_coder *c, encode_state *blocks, int count, sequence **seqs, int n_seqs) {
    uint64_t longest = 0;
    for (int i = 0; i < n_seqs; i++)
        longest = LMC_MAX(longest, seqs[i]->outputs);
    const int wanted = lmc_llama_rows_per_sequence(c->state);
    const int per_lane = LMC_MAX(1, LMC_MIN(wanted, c->max_rows / LMC_MAX(n_seqs, 1)));
    for (uint64_t first = 0; first < longest;) {
        uint64_t start = window_start(c, first);
        uint64_t last = LMC_MIN(longest, first < c->window ? (uint64_t)c->window : first + c->stride);
        if (first > start)
            next_window(c, seqs, n_seqs, first);
        for (uint64_t p = first; p < last; p += (uint64_t)per_lane)
            encode_chunk(c, blocks, count, start, p, last, per_lane);
        first = last;
    }
}

/* Splits the block's n tokens into lanes: each lane's model input, the
 * payload's lane table (codec 5) and the mixed model's lane starts. */
static lmc_status split_lanes(lmc_neural_coder *c, const int32_t *ids, size_t n, lmc_buf *payload,
                              encode_state *s, size_t *starts) {
    const int lanes = lanes_for(c, n);
    lmc_status status = c->lane_table ? lmc_varint_put(payload, (uint64_t)lanes) : LMC_OK;
    size_t byte = 0;
    for (int l = 0; l < lanes && status == LMC_OK; l++) {
        size_t first = lane_first_token(n, lanes, l), count = lane_first_token(n, lanes, l + 1) - first;
        size_t bytes = c->lane_table ? piece_bytes(&c->pieces, ids + first, count) : 0;
        starts[l] = byte;
        byte += bytes;
        status = lmc_varint_put(payload, count);
        if (status == LMC_OK && c->lane_table)
            status = lmc_varint_put(payload, bytes);
        if (status == LMC_OK)
            status = model_sequence(c, ids + first, count, &s->lanes[l].seq.x);
        uint64_t m = count + (uint64_t)c->has_bos; /* length of x */
        s->lanes[l].seq.outputs = m > 0 ? m - 1 : 0;
        s->lanes[l].tokens = count;
        s->lane_count = l + 1;
    }
    return status;
}

/* Tokenizes a block and opens its coders; codes each lane's first token
 * when there is no BOS to predict it from. */
static lmc_status start_encoding(lmc_neural_coder *c, const uint8_t *data, size_t size, lmc_buf *payload,
                                 encode_state *s, lmc_message *message) {
    int32_t *ids = NULL;
    size_t n_ids = 0;
    lmc_status status = lmc_tokenizer_encode_lossless(c->model->tokenizer, data, size, &ids, &n_ids);
    if (status != LMC_OK)
        return lmc_fail(message, status, "tokenizer failed");
    if (c->mixed && (status = canonical_ids(c, ids, n_ids, data, size)) != LMC_OK) {
        free(ids);
        return lmc_fail(message, status, "the tokenizer's pieces do not spell the block");
    }
    size_t starts[LMC_LANES_MAX];
    status = split_lanes(c, ids, n_ids, payload, s, starts);
    free(ids);
    if (status == LMC_OK && c->mixed)
        status = lmc_mix_block_open(&c->pieces, data, NULL, size, c->mix_version, &s->mix);
    if (status == LMC_OK && s->mix)
        status = lmc_mix_block_set_lanes(s->mix, starts, s->lane_count);
    if (status != LMC_OK)
        return lmc_fail(message, status, "out of memory");
    lmc_rc_encoder_init(&s->rc, payload);
    for (int l = 0; l < s->lane_count && !c->has_bos; l++) {
        if (s->lanes[l].tokens == 0)
            continue;
        if (s->mix)
            lmc_mix_select_lane(s->mix, l);
        encode_token(c, s->mix, &s->rc, -1, s->lanes[l].seq.x[0]);
    }
    return LMC_OK;
}

int lmc_neural_encode_batch(int threads) {
    return LMC_MIN(LMC_NEURAL_ENCODE_BATCH_MAX, LMC_MAX(8, 2 * threads));
}

uint32_t lmc_neural_default_block_size(const lmc_model *model, int mixed) {
    return mixed ? LMC_MAX(model->default_block_size, LMC_MIXED_BLOCK_SIZE) : model->default_block_size;
}

int lmc_neural_batch_fit(int blocks, uint32_t block_size, int mixed) {
    uint64_t per_block = 3ull * block_size + (mixed ? lmc_cm_mixed_memory(block_size) : 0);
    uint64_t fit = LMC_MAX(1, LMC_NEURAL_BATCH_MEMORY / per_block);
    return (int)LMC_MIN((uint64_t)blocks, fit);
}

static void free_encode_states(encode_state *blocks, int count) {
    for (int b = 0; blocks && b < count; b++) {
        lmc_mix_block_close(blocks[b].mix);
        for (int l = 0; l < blocks[b].lane_count; l++)
            free(blocks[b].lanes[l].seq.x);
    }
    free(blocks);
}

lmc_status lmc_neural_encode_blocks(lmc_neural_coder *c, const uint8_t *data, size_t size, lmc_buf *payloads,
                                   lmc_message *message) {
    const int count = (int)((size + c->block_size - 1) / c->block_size);
    if (count > c->max_blocks)
        return lmc_fail(message, LMC_ERR_INTERNAL, "too many blocks for one encoding batch");
    encode_state *blocks = calloc((size_t)LMC_MAX(count, 1), sizeof *blocks);
    sequence **seqs = calloc((size_t)LMC_MAX(count, 1) * (size_t)c->max_lanes, sizeof *seqs);
    lmc_status status = blocks && seqs ? LMC_OK : lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    int n_seqs = 0;
    for (int b = 0; b < count && status == LMC_OK; b++) {
        const size_t first = (size_t)b * c->block_size;
        status = start_encoding(c, data + first, LMC_MIN((size_t)c->block_size, size - first), &payloads[b],
                                &blocks[b], message);
        for (int l = 0; l < blocks[b].lane_count; l++) {
            blocks[b].lanes[l].id = n_seqs;
            seqs[n_seqs++] = &blocks[b].lanes[l].seq;
        }
    }
    if (status == LMC_OK)
        encode_steps(c, blocks, count, seqs, n_seqs);
    for (int b = 0; b < count && status == LMC_OK; b++)
        if (lmc_rc_encoder_finish(&blocks[b].rc) != LMC_OK)
            status = lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    free_encode_states(blocks, count);
    free(seqs);
    return status;
}

lmc_status lmc_neural_probe_size(const lmc_model *model, lmc_pool *pool, const uint8_t *data, size_t size,
                                 size_t *coded, lmc_message *message) {
    const uint32_t window = model->context_window;
    lmc_neural_config config = {1, window, LMC_MIN(model->window_stride, window), (uint32_t)LMC_MAX(size, 1), 0, 0,
                                LMC_NUMERICS_VERSION, 0};
    lmc_neural_coder *coder = NULL;
    lmc_status status = lmc_neural_coder_create(model, pool, &config, &coder, message);
    lmc_buf payload;
    lmc_buf_init(&payload);
    if (status == LMC_OK)
        status = lmc_neural_encode_blocks(coder, data, size, &payload, message);
    *coded = payload.size;
    lmc_buf_free(&payload);
    lmc_neural_coder_free(coder);
    return status;
}

/* ---- Decoding in lockstep ---- */

typedef struct {
    sequence seq;       /* x: model input so far, [BOS] + decoded tokens; outputs: x's final length - 1 */
    uint64_t length;    /* tokens in x */
    uint64_t tokens;    /* the lane's tokens */
    int row;            /* the current step's row, -1 if none */
} decode_lane;

typedef struct {
    decode_lane lanes[LMC_LANES_MAX];
    int lane_count;
    lmc_rc_decoder rc;
    lmc_mix_block *mix; /* mixed codec only */
    int damaged;        /* the mixed codec met data it cannot decode */
    _Atomic uint64_t turn; /* decoding in lane groups: the next decode (turn_of), NO_TURN after the last */
} block_state;

typedef struct {
    lmc_neural_coder *coder;
    block_state *blocks;
} step_context;

static int32_t decode_token(lmc_rc_decoder *rc, const uint32_t *cum, int symbols, int vocab) {
    int symbol = lmc_rc_decode_symbol(rc, cum, symbols);
    if (symbol < vocab)
        return symbol;
    uint32_t byte = lmc_rc_decode_target(rc, 8);
    lmc_rc_decode_update(rc, byte, 1);
    return LMC_TOKEN_ESCAPE(byte);
}

/* The next token of lane l of block b under the step's `row` (< 0: the
 * uniform distribution, only from one thread). A damaged mixed block stops
 * decoding and reads token 0 from then on. */
static int32_t decode_next(lmc_neural_coder *c, block_state *b, int l, int row) {
    if (b->mix) {
        if (b->damaged)
            return 0;
        lmc_mix_select_lane(b->mix, l);
        int32_t id = row < 0 ? lmc_mix_decode_token(b->mix, &b->rc, NULL)
                             : lmc_mix_decode_sorted(b->mix, &b->rc, row_sorted(c, row));
        b->damaged |= id < 0;
        return id < 0 ? 0 : id;
    }
    const uint32_t *cum = row < 0 ? NULL : row_cum(c, row);
    if (!cum) {
        uniform_cdf(c, c->cum);
        cum = c->cum;
    }
    return decode_token(&b->rc, cum, c->symbols, c->vocab);
}

static void append_next(lmc_neural_coder *c, block_state *b, int l, int row) {
    decode_lane *lane = &b->lanes[l];
    lane->seq.x[lane->length] = decode_next(c, b, l, row);
    lane->length++;
}

/* Decodes each block's tokens of the step, a block per thread, its lanes
 * in order. */
static void decode_blocks_range(void *ctx_, int begin, int end) {
    step_context *ctx = ctx_;
    lmc_neural_coder *c = ctx->coder;
    for (int i = begin; i < end; i++) {
        block_state *b = &ctx->blocks[i];
        for (int l = 0; l < b->lane_count; l++)
            if (b->lanes[l].row >= 0)
                append_next(c, b, l, b->lanes[l].row);
    }
}

/* Reads the lane table of a codec 5 block (one lane of every token
 * otherwise): each lane's tokens and where its bytes start. */
static lmc_status read_lanes(const lmc_neural_coder *c, const lmc_block_job *job, size_t *pos, block_state *b,
                             size_t *starts) {
    uint64_t lanes = 1, tokens_total = 0, bytes_total = 0;
    if (c->lane_table && (lmc_varint_get(job->payload, job->payload_size, pos, &lanes) != LMC_OK ||
                          lanes < 1 || lanes > (uint64_t)c->max_lanes))
        return LMC_ERR_CORRUPT;
    b->lane_count = (int)lanes;
    for (int l = 0; l < b->lane_count; l++) {
        uint64_t tokens, bytes = job->raw_size;
        if (lmc_varint_get(job->payload, job->payload_size, pos, &tokens) != LMC_OK ||
            (c->lane_table && lmc_varint_get(job->payload, job->payload_size, pos, &bytes) != LMC_OK))
            return LMC_ERR_CORRUPT;
        /* A token has at least a byte; only a lone lane may be empty. */
        if (tokens > bytes || (lanes > 1 && tokens == 0) || bytes > job->raw_size - bytes_total)
            return LMC_ERR_CORRUPT;
        starts[l] = (size_t)bytes_total;
        b->lanes[l].tokens = tokens;
        tokens_total += tokens;
        bytes_total += bytes;
    }
    return bytes_total == job->raw_size && tokens_total <= job->raw_size ? LMC_OK : LMC_ERR_CORRUPT;
}

static lmc_status start_lane(lmc_neural_coder *c, decode_lane *lane) {
    lane->seq.x = malloc((lane->tokens + 1) * sizeof *lane->seq.x);
    if (!lane->seq.x)
        return LMC_ERR_NOMEM;
    lane->length = 0;
    if (c->has_bos)
        lane->seq.x[lane->length++] = c->bos;
    uint64_t m = lane->tokens + (uint64_t)c->has_bos;
    lane->seq.outputs = m > 0 ? m - 1 : 0;
    return LMC_OK;
}

static lmc_status start_block(lmc_neural_coder *c, lmc_block_job *job, block_state *b, lmc_message *message) {
    size_t pos = 0, starts[LMC_LANES_MAX];
    if (read_lanes(c, job, &pos, b, starts) != LMC_OK)
        return lmc_fail(message, LMC_ERR_CORRUPT, "damaged block: bad token count");
    lmc_rc_decoder_init(&b->rc, job->payload + pos, job->payload_size - pos);
    for (int l = 0; l < b->lane_count; l++)
        if (start_lane(c, &b->lanes[l]) != LMC_OK)
            return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    if (c->mixed && (lmc_mix_block_open(&c->pieces, NULL, job->out, job->raw_size, c->mix_version, &b->mix) != LMC_OK ||
                     lmc_mix_block_set_lanes(b->mix, starts, b->lane_count) != LMC_OK))
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    for (int l = 0; l < b->lane_count && !c->has_bos; l++)
        if (b->lanes[l].tokens > 0)
            append_next(c, b, l, -1);
    return LMC_OK;
}

static lmc_status finish_mixed_block(lmc_block_job *job, block_state *b, lmc_message *message) {
    if (b->damaged || lmc_mix_block_position(b->mix) != job->raw_size)
        return lmc_fail(message, LMC_ERR_CORRUPT, "damaged block: decoded %zu bytes, expected %zu",
                        lmc_mix_block_position(b->mix), job->raw_size);
    return LMC_OK;
}

static lmc_status finish_block(lmc_neural_coder *c, lmc_block_job *job, block_state *b, lmc_message *message) {
    if (!lmc_rc_decoder_end_ok(&b->rc))
        return lmc_fail(message, LMC_ERR_CORRUPT, "damaged block: entropy-coded data inconsistent");
    if (b->mix)
        return finish_mixed_block(job, b, message);
    lmc_buf bytes;
    lmc_buf_init(&bytes);
    const decode_lane *lane = &b->lanes[0]; /* the model alone codes one lane */
    const int32_t *ids = lane->seq.x + c->has_bos;
    lmc_status status = lmc_tokenizer_decode(c->model->tokenizer, ids, lane->length - (uint64_t)c->has_bos, &bytes);
    if (status == LMC_OK && bytes.size != job->raw_size)
        status = lmc_fail(message, LMC_ERR_CORRUPT, "damaged block: decoded %zu bytes, expected %zu", bytes.size,
                          job->raw_size);
    else if (status != LMC_OK)
        status = lmc_fail(message, LMC_ERR_CORRUPT, "damaged block: undecodable tokens");
    else
        memcpy(job->out, bytes.data, bytes.size);
    lmc_buf_free(&bytes);
    return status;
}

/* A lane of a decoding batch: batches list their lanes in block and lane
 * order. */
typedef struct {
    block_state *block;
    int lane;
} lane_slot;

/* One row per lane of slots still running at p, in their order, each with
 * its index in slots as the engine's sequence; returns the row count. */
static int lane_rows(lmc_neural_coder *c, const lane_slot *slots, int count, uint64_t p) {
    const uint64_t start = window_start(c, p);
    int n = 0;
    for (int i = 0; i < count; i++) {
        decode_lane *lane = &slots[i].block->lanes[slots[i].lane];
        lane->row = -1;
        if (p >= lane->seq.outputs)
            continue;
        c->seqs[n] = i;
        c->tokens[n] = model_input(lane->seq.x[p]);
        c->positions[n] = (int)(p - start);
        lane->row = n++;
    }
    return n;
}

static uint64_t longest_of(sequence *const *seqs, int n_seqs) {
    uint64_t longest = 0;
    for (int i = 0; i < n_seqs; i++)
        longest = LMC_MAX(longest, seqs[i]->outputs);
    return longest;
}

/* ---- Decoding in lane groups (lmc_neural_decode_groups) ----
 * Group g holds the lanes [n * g / G, n * (g + 1) / G) of the batch's n, in
 * block and lane order, as the lone sequences of its own coder, and runs
 * the steps of the lockstep above for them alone. A block's range decoder
 * and adaptive model are shared by its lanes, perhaps in several groups, so
 * its decodes wait for their turn: step by step, lane by lane, the
 * encoder's order. A group waits only on the decodes before its own; each
 * group has a thread of its own (lmc_neural_decode_groups: at most the
 * pool's threads). */

#define NO_TURN UINT64_MAX
/* Spins between two yields while waiting for a turn: the decode before
 * this one takes microseconds, unless its thread is descheduled. */
#define TURN_SPINS_PER_YIELD 64

static uint64_t turn_of(uint64_t p, int lane) {
    return p * LMC_LANES_MAX + (uint64_t)lane;
}

/* Block b's decode after lane l's at step p (l = -1: its first). */
static uint64_t turn_after(const block_state *b, uint64_t p, int l) {
    for (int k = l + 1; k < b->lane_count; k++)
        if (p < b->lanes[k].seq.outputs)
            return turn_of(p, k);
    for (int k = 0; k < b->lane_count; k++)
        if (p + 1 < b->lanes[k].seq.outputs)
            return turn_of(p + 1, k);
    return NO_TURN;
}

static void wait_for_turn(block_state *b, uint64_t turn) {
    for (unsigned i = 1; atomic_load(&b->turn) != turn; i++) {
        lmc_cpu_relax();
        if (i % TURN_SPINS_PER_YIELD == 0)
            sched_yield();
    }
}

typedef struct {
    lmc_neural_coder *coder;
    const lane_slot *slots; /* every lane of the batch, in block and lane order */
    sequence *const *seqs;  /* their sequences, in the same order */
    int n_seqs, n_groups;
} groups_context;

static void decode_group(const groups_context *ctx, int group) {
    lmc_neural_coder *g = ctx->coder->groups[group];
    const int first = ctx->n_seqs * group / ctx->n_groups;
    const int count = ctx->n_seqs * (group + 1) / ctx->n_groups - first;
    const lane_slot *slots = ctx->slots + first;
    sequence *const *seqs = ctx->seqs + first;
    const uint64_t longest = longest_of(seqs, count);
    for (uint64_t p = 0; p < longest; p++) {
        if (is_window_start(g, p))
            next_window(g, seqs, count, p);
        const int n = lane_rows(g, slots, count, p);
        forward(g, n, 1);
        rows_cdf_range(g, 0, n);
        for (int i = 0; i < count; i++) {
            block_state *b = slots[i].block;
            const int l = slots[i].lane, row = b->lanes[l].row;
            if (row < 0)
                continue;
            wait_for_turn(b, turn_of(p, l));
            append_next(g, b, l, row);
            atomic_store(&b->turn, turn_after(b, p, l));
        }
    }
}

static void decode_groups_range(void *ctx, int begin, int end) {
    for (int group = begin; group < end; group++)
        decode_group(ctx, group);
}

static void decode_in_groups(lmc_neural_coder *c, block_state *blocks, int count, const lane_slot *slots,
                             sequence *const *seqs, int n_seqs, int groups) {
    for (int b = 0; b < count; b++)
        atomic_store(&blocks[b].turn, turn_after(&blocks[b], 0, -1));
    groups_context ctx = {c, slots, seqs, n_seqs, groups};
    lmc_pool_for(c->pool, groups, decode_groups_range, &ctx);
}

/* ---- Decoding, the whole batch in lockstep ---- */

static void decode_steps(lmc_neural_coder *c, block_state *blocks, int count, const lane_slot *slots,
                         sequence *const *seqs, int n_seqs) {
    const int groups = LMC_MIN(c->n_groups, n_seqs);
    if (groups >= 2) {
        decode_in_groups(c, blocks, count, slots, seqs, n_seqs, groups);
        return;
    }
    const uint64_t longest = longest_of(seqs, n_seqs);
    step_context ctx = {c, blocks};
    for (uint64_t p = 0; p < longest; p++) {
        if (is_window_start(c, p))
            next_window(c, seqs, n_seqs, p);
        int n = lane_rows(c, slots, n_seqs, p);
        forward(c, n, 1);
        lmc_pool_for(c->pool, n, rows_cdf_range, c);
        lmc_pool_for(c->pool, count, decode_blocks_range, &ctx);
    }
}

static void free_block_states(block_state *blocks, int count) {
    for (int b = 0; blocks && b < count; b++) {
        for (int l = 0; l < blocks[b].lane_count; l++)
            free(blocks[b].lanes[l].seq.x);
        lmc_mix_block_close(blocks[b].mix);
    }
    free(blocks);
}

lmc_status lmc_neural_decode_blocks(lmc_neural_coder *c, lmc_block_job *jobs, int count, lmc_message *message) {
    if (count > c->max_blocks)
        return lmc_fail(message, LMC_ERR_INTERNAL, "too many blocks for one decoding batch");
    block_state *blocks = calloc((size_t)LMC_MAX(count, 1), sizeof *blocks);
    const size_t most_lanes = (size_t)LMC_MAX(count, 1) * (size_t)c->max_lanes;
    sequence **seqs = calloc(most_lanes, sizeof *seqs);
    lane_slot *slots = calloc(most_lanes, sizeof *slots);
    if (!blocks || !seqs || !slots) {
        free(blocks);
        free(seqs);
        free(slots);
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    }
    lmc_status status = LMC_OK;
    int n_seqs = 0;
    for (int b = 0; b < count && status == LMC_OK; b++) {
        status = start_block(c, &jobs[b], &blocks[b], message);
        for (int l = 0; l < blocks[b].lane_count; l++, n_seqs++) {
            seqs[n_seqs] = &blocks[b].lanes[l].seq;
            slots[n_seqs] = (lane_slot){&blocks[b], l};
        }
    }
    if (status == LMC_OK)
        decode_steps(c, blocks, count, slots, seqs, n_seqs);
    for (int b = 0; b < count && status == LMC_OK; b++)
        status = finish_block(c, &jobs[b], &blocks[b], message);
    free_block_states(blocks, count);
    free(seqs);
    free(slots);
    return status;
}
