/*
 * The --fast model: a classical bitwise context-mixing compressor in the
 * style of lpaq1 (Matt Mahoney's design, reimplemented here).
 *
 * Each bit of a block is predicted by
 *   - context models of order 1, 2, 3, 4 and 6 and a word model: each maps
 *     its context (and the bits of the current byte seen so far) to a
 *     one-byte bit history, and an adaptive state map per model learns what
 *     each history means as a probability;
 *   - a match model that follows the latest earlier occurrence of the last
 *     MATCH_MIN bytes and predicts the bit that followed it;
 * mixed in the logistic domain by two gated linear mixers (weights chosen
 * by the partial byte and the match length, and by the previous byte and
 * the bit position), refined by two adaptive probability maps (APM/SSE),
 * and coded with the project's binary range coder.
 *
 * Determinism: only integer arithmetic reaches a probability; the
 * logistic tables are built at start from an integer series, so an archive
 * decodes identically on every machine and compiler. Every call starts a
 * fresh model, so blocks are independent.
 *
 * Memory per call (lmc_cm_memory): the hashed contexts take 32 bytes per
 * input byte (64 KiB to 64 MiB), the match index 2 bytes per input byte
 * (16 KiB to 16 MiB), the order-1 APM 4.3 MiB and fixed tables 0.2 MiB:
 * 40 MiB for a 1 MiB block, 78 MiB for --fast's default 4 MiB blocks and
 * at most 87 MiB. All large tables are allocated zeroed and need no
 * initialisation pass, so a small block only touches the pages it uses.
 *
 * Payload: the range coder's bytes alone; the block's size comes from the
 * container.
 *
 * The mixed codec's second model (LMC_CM_MIXED_V2, codec 4) adds what pays
 * when a strong neural model is mixed in: a word-bigram and a column
 * context, a second match model for long repeats, a learned second mixing
 * layer, an order-3 APM, and for the "token ends here" decision byte and
 * column contexts, larger tables and where the matched text's tokens began
 * (bench/cm-results.md measures each). Codec 2's model (LMC_CM_MIXED_V1)
 * is kept exactly, for its archives.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "coder/coder.h"
#include "model/cm_kit.h"
#include "model/model.h"

/* ---- Dimensions and tuning constants ---- */

#define TABLE_BYTES_PER_BYTE 32
#define TABLE_MIN_BYTES ((size_t)1 << 16)
#define TABLE_MAX_BYTES ((size_t)1 << 26)
#define HUGE_PAGE_BYTES ((size_t)1 << 21)
#define MATCH_INDEX_MIN_ENTRIES ((size_t)1 << 12)
#define MATCH_INDEX_MAX_ENTRIES ((size_t)1 << 22)
#define MATCH_MIN 6             /* context bytes that must agree before a match is followed */
#define MATCH_MAX_LENGTH 65535
#define MATCH_VERIFY_LIMIT 32   /* bytes compared backwards when a match starts */
#define MATCH2_MIN 16           /* mixed v2: the second match model's context bytes */
#define MATCH2_VERIFY_LIMIT 64

enum {
    HASHED_V1 = 5,                      /* orders 2, 3, 4, 6 and the word */
    HASHED_MODELS = HASHED_V1 + 2,      /* mixed v2: + word bigram, column */
    CONTEXT_V1 = HASHED_V1 + 1,         /* plus the direct order-1 table */
    CONTEXT_MODELS = HASHED_MODELS + 1,
    /* Mixer inputs: --fast's and codec 2's first, mixed v2's after them, so
     * that each version's loops run over a constant count. */
    MATCH_INPUT = CONTEXT_V1,
    MODEL_INPUT = MATCH_INPUT + 1,      /* the neural model's prediction (0 with --fast) */
    BIAS_INPUT = MODEL_INPUT + 1,
    MIXER_INPUTS_V1 = BIAS_INPUT + 1,
    CONTEXT_V2_INPUT = MIXER_INPUTS_V1, /* mixed v2's context models 6 and 7 */
    MATCH2_INPUT = CONTEXT_V2_INPUT + 2,
    MIXER_INPUTS = MATCH2_INPUT + 1,
    MATCH_CONTEXTS = 64,                /* length bucket (32) x expected bit */
    MIXER1_SETS = 4 * 256,              /* match-length class x partial byte */
    MIXER2_SETS = 256 * 8,              /* previous byte x bit position */
    MIXER_LEARNING_RATE = 24,           /* error scale, 16 = 1.0 */
    MIXER_LEARNING_RATE_V2 = 32,
    LAYER2_INPUTS = 3,                  /* mixed v2: both mixers' outputs and a bias */
    LAYER2_LEARNING_RATE = 4,
    LAYER2_INITIAL_WEIGHT = 1 << 15,    /* 0.5: the average of the two mixers */
    MIXER_INITIAL_WEIGHT = 1 << 14,     /* 0.25 */
    MODEL_INITIAL_WEIGHT = 1 << 16,     /* 1.0 */
    APM1_CONTEXTS = 256,                /* partial byte */
    APM1_HASH_BITS = 10,                /* mixed v2: order-3 hash x partial byte */
    APM1_CONTEXTS_V2 = 256 << APM1_HASH_BITS,
    APM2_CONTEXTS = 256 * 256,          /* previous byte x partial byte */
    APM3_CONTEXTS = 32 * 256,           /* neural model's prediction x partial byte (mixed codec) */
    END_CONTEXTS_V1 = 3,                /* "token ends here": token contexts (mixed codec) */
    END_CONTEXTS = 6,                   /* mixed v2: + order-4 and order-6 bytes, column */
    END_MATCH_INPUT = END_CONTEXTS + 1, /* inputs: the model, the contexts, the match, a bias */
    END_BIAS_INPUT = END_MATCH_INPUT + 1,
    END_INPUTS = END_BIAS_INPUT + 1,
    END_DEPTHS = 16,                    /* weight sets by bytes into the token ... */
    END_SETS = END_DEPTHS * 4,          /* ... x (v2) the match's token start: none, unknown, yes, no */
    END_MATCH_CONTEXTS = 64,
    END_TABLE_BITS_V1 = 16,             /* entries per token-context table */
    END_TABLE_BITS_V2 = 20,
    END_MAP_LIMIT = 255,                /* token contexts adapt faster than bit histories */
    LINE_BYTES = 64,                    /* one context's slot: a cache line */
    NIBBLE_BYTES = 16,                  /* check or tag byte + the 15 nodes of a nibble's bit tree */
    NIBBLE_WAYS = 3,                    /* second-nibble trees per line */
};

/* ---- Bit histories ----
 *
 * A state byte stands for (n0, n1, last bit): how often 0 and 1 followed a
 * context, where a bit halves the count of the other bit beyond 2, so
 * recent behaviour dominates. Counts are bounded so that every state fits
 * in a byte; the set and its transitions are generated at start.
 */

#define HISTORY_COUNT_MAX 40

typedef struct {
    uint8_t next[256][2];   /* state after a 0 or a 1 */
    uint8_t total[256];     /* n0 + n1: the replacement priority */
    uint16_t initial[256];  /* P(1) before the state maps learn */
} history_tables;

/* The largest count allowed beside a smaller count of `smaller`, or -1. */
static int history_larger_limit(int smaller) {
    static const int8_t limit[] = {HISTORY_COUNT_MAX, 20, 10, 6, 5, 5};
    return smaller < (int)sizeof limit ? limit[smaller] : -1;
}

static int history_valid(int n0, int n1) {
    return LMC_MAX(n0, n1) <= history_larger_limit(LMC_MIN(n0, n1));
}

/* The last bit is worth remembering only where both counts are nonzero. */
static int history_has_last(int n0, int n1) {
    return n0 > 0 && n1 > 0;
}

/* Counts after a bit: `seen` counts that bit, `other` the other one. */
static void history_step(int *seen, int *other) {
    (*seen)++;
    if (*other > 2)
        *other = *other / 2 + 1;
    while (!history_valid(*seen, *other)) {
        if (*seen >= *other)
            (*seen)--;
        else
            (*other)--;
    }
}

static void build_histories(history_tables *h) {
    int16_t index[HISTORY_COUNT_MAX + 1][HISTORY_COUNT_MAX + 1][2];
    uint8_t n0_of[256], n1_of[256], last_of[256];
    int states = 0;
    for (int total = 0; total <= 2 * HISTORY_COUNT_MAX; total++) {
        for (int n1 = 0; n1 <= total; n1++) {
            int n0 = total - n1;
            if (n0 > HISTORY_COUNT_MAX || n1 > HISTORY_COUNT_MAX || !history_valid(n0, n1))
                continue;
            for (int last = 0; last <= history_has_last(n0, n1); last++) {
                index[n0][n1][last] = (int16_t)states;
                n0_of[states] = (uint8_t)n0;
                n1_of[states] = (uint8_t)n1;
                last_of[states] = (uint8_t)last;
                states++;
            }
        }
    }
    memset(h, 0, sizeof *h);
    for (int s = 0; s < states; s++) {
        int n0 = n0_of[s], n1 = n1_of[s];
        for (int bit = 0; bit <= 1; bit++) {
            int a = n0, b = n1;
            if (bit)
                history_step(&b, &a);
            else
                history_step(&a, &b);
            h->next[s][bit] = (uint8_t)index[a][b][history_has_last(a, b) ? bit : 0];
        }
        h->total[s] = (uint8_t)(n0 + n1);
        /* (n1 + 1/2) / (n0 + n1 + 1), moved a quarter toward the last bit. */
        uint32_t p = (2u * n1 + 1) * 65536u / (2u * (n0 + n1) + 2);
        if (history_has_last(n0, n1))
            p = last_of[s] ? (p * 3 + 65535) / 4 : p * 3 / 4;
        h->initial[s] = (uint16_t)LMC_MAX(64u, LMC_MIN(p, 65472u));
    }
}

/* ---- The model ---- */

/* Where a lane stands between tokens (a block codes 1 or more lanes,
 * contiguous parts of it, interleaved token by token: lmc_cm_set_lanes). */
typedef struct {
    size_t start;               /* the lane's first position */
    size_t pos;
    uint32_t c4, c8, c12, c16;  /* the last 16 bytes, newest lowest */
    uint32_t word;              /* hash of the current word, 0 between words */
    uint32_t previous_word;     /* hash of the word before it */
    size_t line_start, previous_line_start; /* positions of the current and previous lines */
    uint32_t context_hash[HASHED_MODELS];
    size_t match_entry;         /* index entry of the MATCH_MIN bytes before the newest */
    size_t match_ptr;           /* history position of the predicted byte */
    uint32_t match_length;      /* 0: no match */
    size_t match2_entry, match2_ptr;
    uint32_t match2_length;
} lane_cursor;

struct lmc_cm {
    lmc_cm_tables tables;
    history_tables histories;

    /* Context models: order 1 direct, the others hashed into lines. */
    uint8_t order1[256 * 256];
    uint8_t *table;             /* the lines, inside table_block */
    void *table_block;
    size_t line_mask;           /* lines - 1 */
    uint8_t *line[HASHED_MODELS];
    uint8_t *tree[HASHED_MODELS];       /* the current nibble's bit tree */
    uint8_t *slot[CONTEXT_MODELS];      /* the bit history of the current bit */
    uint32_t state_map[CONTEXT_MODELS][256];
    uint32_t *entry[CONTEXT_MODELS];    /* the state-map entries of the current bit */

    /* Match model. */
    uint32_t *match_index;
    size_t match_mask;
    uint32_t match_live, match2_live;   /* the match lengths in use (refresh_live_matches) */
    uint32_t match_context;
    uint32_t match_map[MATCH_CONTEXTS];

    /* Mixed v2: a second match model, after MATCH2_MIN bytes. */
    uint32_t *match2_index;
    uint32_t match2_context;
    uint32_t match2_map[MATCH_CONTEXTS];

    /* Mixers. */
    int with_model;             /* mixing a neural model's predictions in */
    int v2;                     /* the mixed codec's second model (LMC_CM_MIXED_V2) */
    int decided;                /* the neural model is certain of this bit: nothing to learn */
    int32_t inputs[MIXER_INPUTS];
    int32_t weights1[MIXER1_SETS][MIXER_INPUTS];
    int32_t weights2[MIXER2_SETS][MIXER_INPUTS];
    int32_t *active1, *active2;  /* the weight sets of the current bit */
    uint32_t mixer1_p16, mixer2_p16;
    int32_t layer2[LAYER2_INPUTS];      /* mixed v2: the second layer's weights ... */
    int32_t layer2_inputs[LAYER2_INPUTS];
    uint32_t layer2_p16;

    apm apm1, apm2, apm3;       /* apm3: mixed codec only */

    /* Mixed codec: the "token ends here" decision (lmc_cm_predict_end). */
    uint32_t *end_table;        /* [contexts << end_bits]: by candidate; (previous, candidate); (two previous,
                                 * candidate); v2: order-4 and order-6 bytes; column */
    int end_contexts;
    uint32_t end_bits;
    uint32_t *end_entry[END_CONTEXTS];
    uint8_t *token_marks;       /* v2, per position: 0 unknown, 1 a token started there, 2 none did */
    uint32_t end_match_map[END_MATCH_CONTEXTS];
    uint32_t end_match_context;
    int32_t end_inputs[END_INPUTS];
    int32_t end_weights[END_SETS][END_INPUTS];
    int32_t *end_active;
    uint32_t end_p16;

    /* Coding position. */
    const uint8_t *history;     /* the bytes coded so far */
    lane_cursor at;             /* the lane being coded */
    uint32_t c0;                /* 1 followed by the bits of the current byte */
    int bit_count;
    lane_cursor *lanes;         /* lanes > 1: every lane's cursor (the current one's is stale) */
    int lane_count, lane;
};
typedef struct lmc_cm cm_model;

/* ---- The line table ---- */

/*
 * Each hashed context owns one 64-byte line, so each model costs one cache
 * miss per byte: a check byte and the 15 nodes of the first nibble's bit
 * tree, then three ways, each a tag (first nibble + 1) and the 15 nodes of
 * a second-nibble tree. Few contexts are often followed by more than three
 * different first nibbles; when one is, its least used way is recycled
 * (three ways cost 0.4% of size against seven, and take half the cache
 * misses of separate 16-byte buckets per nibble).
 */
static inline uint8_t *line_at(const cm_model *m, uint32_t hash) {
    return m->table + (size_t)(hash & m->line_mask) * LINE_BYTES;
}

static inline uint32_t tree_priority(const cm_model *m, const uint8_t *tree) {
    return m->histories.total[tree[1]];
}

/* The line of `hash` among two neighbours: the one whose check byte
 * matches, else the less used one, cleared. */
static uint8_t *line_find(cm_model *m, uint32_t hash) {
    uint8_t check = (uint8_t)(hash >> 24);
    uint8_t *first = line_at(m, hash);
    uint8_t *second = line_at(m, hash ^ 1u);
    if (first[0] == check)
        return first;
    if (second[0] == check)
        return second;
    uint8_t *victim = tree_priority(m, second) < tree_priority(m, first) ? second : first;
    memset(victim, 0, LINE_BYTES);
    victim[0] = check;
    return victim;
}

/* The second-nibble tree of `line` after the first nibble `nibble`. */
static uint8_t *way_find(const cm_model *m, uint8_t *line, uint32_t nibble) {
    uint8_t tag = (uint8_t)(nibble + 1);
    uint8_t *victim = line + NIBBLE_BYTES;
    UNROLLED
    for (int i = 1; i <= NIBBLE_WAYS; i++) {
        uint8_t *way = line + i * NIBBLE_BYTES;
        if (way[0] == tag)
            return way;
        if (tree_priority(m, way) < tree_priority(m, victim))
            victim = way;
    }
    memset(victim, 0, NIBBLE_BYTES);
    victim[0] = tag;
    return victim;
}

/* Functions of `hashed` (HASHED_V1 or HASHED_MODELS) are inlined where
 * called with a constant, so each version's loops unroll: with the count in
 * a variable, --fast ran 7-9% slower. */
#define FOR_VERSION __attribute__((always_inline)) static inline

/* The lines of the byte that starts now. All are requested before the
 * first is searched, so the cache misses overlap. */
FOR_VERSION void select_lines_n(cm_model *m, int hashed) {
    UNROLLED
    for (int i = 0; i < hashed; i++) {
        __builtin_prefetch(line_at(m, m->at.context_hash[i]));
        __builtin_prefetch(line_at(m, m->at.context_hash[i] ^ 1u));
    }
    UNROLLED
    for (int i = 0; i < hashed; i++) {
        m->line[i] = line_find(m, m->at.context_hash[i]);
        m->tree[i] = m->line[i];
    }
}

static void select_lines(cm_model *m) {
    if (m->v2)
        select_lines_n(m, HASHED_MODELS);
    else
        select_lines_n(m, HASHED_V1);
}

FOR_VERSION void select_second_nibble_n(cm_model *m, int hashed) {
    UNROLLED
    for (int i = 0; i < hashed; i++)
        m->tree[i] = way_find(m, m->line[i], m->c0 & 15u);
}

static void select_second_nibble(cm_model *m) {
    if (m->v2)
        select_second_nibble_n(m, HASHED_MODELS);
    else
        select_second_nibble_n(m, HASHED_V1);
}

/* ---- Per-bit prediction and update ---- */

/* Points each model at the bit history of the bit about to be coded: the
 * node of the nibble's bit tree reached by the nibble's bits so far. */
FOR_VERSION void point_slots(cm_model *m, int hashed) {
    uint32_t node = m->c0;
    if (m->bit_count >= 4) {
        uint32_t seen = 1u << (m->bit_count - 4);
        node = (m->c0 & (seen - 1)) | seen;
    }
    m->slot[0] = &m->order1[(m->at.c4 & 255u) << 8 | m->c0];
    UNROLLED
    for (int i = 0; i < hashed; i++)
        m->slot[i + 1] = m->tree[i] + node;
}

/* The mixer input of context model i (order 1 is model 0). */
static inline int context_input(int i) {
    return i < CONTEXT_V1 ? i : CONTEXT_V2_INPUT + (i - CONTEXT_V1);
}

static uint32_t match_length_class(uint32_t length) {
    if (length == 0)
        return 0;
    return length < 16 ? 1 : length < 32 ? 2 : 3;
}

static uint32_t match_length_bucket(uint32_t length) {
    if (length < 16)
        return length;
    return 16 + LMC_MIN(15u, (length - 16) >> 3);
}

/* Both mixers' outputs in the logistic domain (clamped), over the first n inputs. */
FOR_VERSION void mixer_dots(const int32_t *restrict w1, const int32_t *restrict w2,
                            const int32_t *restrict inputs, int n, int *x1, int *x2) {
    int64_t dot1 = 0, dot2 = 0;
    UNROLLED
    for (int i = 0; i < n; i++) {
        dot1 += (int64_t)w1[i] * inputs[i];
        dot2 += (int64_t)w2[i] * inputs[i];
    }
    *x1 = clamp_logistic((int)(dot1 >> 16));
    *x2 = clamp_logistic((int)(dot2 >> 16));
}

/* The neural model's stretched prediction in 32 steps: 0 .. 31. */
static inline uint32_t model_bucket(int32_t stretched) {
    return (uint32_t)(stretched + 2048) >> 7;
}

/* The expected bit of a match model and its state-map context. */
static uint32_t match_bit_context(const cm_model *m, uint32_t length, size_t ptr) {
    uint32_t expected_bit = 0;
    if (length > 0)
        expected_bit = (m->history[ptr] >> (7 - m->bit_count)) & 1u;
    return match_length_bucket(length) << 1 | expected_bit;
}

/* Mixed v2: both mixers' outputs weighed by a learned second layer. */
static int layer2_mix(cm_model *m, int x1, int x2) {
    m->layer2_inputs[0] = x1;
    m->layer2_inputs[1] = x2;
    m->layer2_inputs[2] = 256;
    int64_t dot = 0;
    for (int i = 0; i < LAYER2_INPUTS; i++)
        dot += (int64_t)m->layer2[i] * m->layer2_inputs[i];
    int x = clamp_logistic((int)(dot >> 16));
    m->layer2_p16 = squash(&m->tables, x);
    return x;
}

/* The order-1 APM's context: the partial byte, and in mixed v2 a hash of
 * the last three bytes. */
static uint32_t apm1_context(const cm_model *m) {
    if (!m->v2)
        return m->c0;
    return (hash2(m->at.c4 & 0xFFFFFFu, 3) >> (32 - APM1_HASH_BITS)) << 8 | m->c0;
}

/* P(next bit = 1) * 65536, in [1, 65535]; model_p16 is the neural model's
 * P(1) * 65536 when mixing one in, else ignored. */
FOR_VERSION uint32_t cm_predict_n(cm_model *m, uint32_t model_p16, int hashed) {
    const lmc_cm_tables *t = &m->tables;
    point_slots(m, hashed);
    UNROLLED
    for (int i = 0; i <= hashed; i++) {
        m->entry[i] = &m->state_map[i][*m->slot[i]];
        m->inputs[context_input(i)] = stretch(t, state_map_p16(*m->entry[i]));
    }

    m->match_context = match_bit_context(m, m->match_live, m->at.match_ptr);
    m->inputs[MATCH_INPUT] = stretch(t, state_map_p16(m->match_map[m->match_context]));
    if (m->v2) {
        m->match2_context = match_bit_context(m, m->match2_live, m->at.match2_ptr);
        m->inputs[MATCH2_INPUT] = stretch(t, state_map_p16(m->match2_map[m->match2_context]));
    }
    /* The clamped extremes are the bits the vocabulary decides (mixcodec.c). */
    m->decided = model_p16 <= 1 || model_p16 >= 65535;
    m->inputs[MODEL_INPUT] = m->with_model ? stretch(t, model_p16) : 0;
    m->inputs[BIAS_INPUT] = 256;

    uint32_t c1 = m->at.c4 & 255u;
    m->active1 = m->weights1[match_length_class(m->match_live) << 8 | m->c0];
    m->active2 = m->weights2[c1 << 3 | (uint32_t)m->bit_count];
    int x1, x2;
    mixer_dots(m->active1, m->active2, m->inputs, hashed == HASHED_V1 ? MIXER_INPUTS_V1 : MIXER_INPUTS, &x1, &x2);
    m->mixer1_p16 = squash(t, x1);
    m->mixer2_p16 = squash(t, x2);

    int x = m->v2 ? layer2_mix(m, x1, x2) : (x1 + x2) >> 1;
    uint32_t p_mix = squash(t, x);
    uint32_t p_apm1 = apm_predict(&m->apm1, m->tables.apm_identity, apm1_context(m), x);
    uint32_t p_apm2 = apm_predict(&m->apm2, m->tables.apm_identity, c1 << 8 | m->c0, x);
    uint32_t p;
    if (m->with_model) {
        uint32_t p_apm3 = apm_predict(&m->apm3, m->tables.apm_identity, model_bucket(m->inputs[MODEL_INPUT]) << 8 | m->c0, x);
        p = (p_mix + p_apm1 + p_apm2 + p_apm3) >> 2;
    } else {
        p = (p_mix + p_apm1 + 2 * p_apm2) >> 2;
    }
    return LMC_MAX(1u, LMC_MIN(p, 65535u));
}

static uint32_t cm_predict(cm_model *m, uint32_t model_p16) {
    return m->v2 ? cm_predict_n(m, model_p16, HASHED_MODELS) : cm_predict_n(m, model_p16, HASHED_V1);
}

/* The mixers and APMs learn from the bit. */
FOR_VERSION void train_mixing(cm_model *m, int bit, int inputs) {
    int rate = m->v2 ? MIXER_LEARNING_RATE_V2 : MIXER_LEARNING_RATE;
    mixer_train_n(m->active1, m->inputs, inputs, ((bit << 16) - (int32_t)m->mixer1_p16) * rate >> 4);
    mixer_train_n(m->active2, m->inputs, inputs, ((bit << 16) - (int32_t)m->mixer2_p16) * rate >> 4);
    if (m->v2)
        mixer_train_n(m->layer2, m->layer2_inputs, LAYER2_INPUTS,
                      ((bit << 16) - (int32_t)m->layer2_p16) * LAYER2_LEARNING_RATE >> 4);
    apm_update(&m->apm1, m->tables.apm_identity, bit);
    apm_update(&m->apm2, m->tables.apm_identity, bit);
    if (m->with_model)
        apm_update(&m->apm3, m->tables.apm_identity, bit);
}

FOR_VERSION void cm_update_n(cm_model *m, int bit, int hashed) {
    /* Mixed v2: a bit the neural model is certain of says nothing about how
     * to mix (it only pushed the model's weight up). */
    if (hashed == HASHED_V1)
        train_mixing(m, bit, MIXER_INPUTS_V1);
    else if (!m->decided)
        train_mixing(m, bit, MIXER_INPUTS);
    UNROLLED
    for (int i = 0; i <= hashed; i++) {
        state_map_update(m->entry[i], bit, m->tables.reciprocal);
        *m->slot[i] = m->histories.next[*m->slot[i]][bit];
    }
    state_map_update(&m->match_map[m->match_context], bit, m->tables.reciprocal);
    if (m->match_live > 0 && (int)(m->match_context & 1u) != bit)
        m->at.match_length = m->match_live = 0;
    if (m->v2) {
        state_map_update(&m->match2_map[m->match2_context], bit, m->tables.reciprocal);
        if (m->match2_live > 0 && (int)(m->match2_context & 1u) != bit)
            m->at.match2_length = m->match2_live = 0;
    }

    m->c0 = m->c0 << 1 | (uint32_t)bit;
    m->bit_count++;
    /* The next bit's order-1 APM row is far from this one's: request it now
     * (after the last bit, the row of the next byte's first bit). */
    uint32_t next_context = m->bit_count < 8 ? (m->at.c4 & 255u) << 8 | m->c0 : (m->c0 & 255u) << 8 | 1u;
    const uint16_t *row = m->apm2.cells + next_context * APM_CELLS;
    __builtin_prefetch(row);
    __builtin_prefetch(row + 32);
    if (m->bit_count == 4)
        select_second_nibble(m);
}

static void cm_update(cm_model *m, int bit) {
    if (m->v2)
        cm_update_n(m, bit, HASHED_MODELS);
    else
        cm_update_n(m, bit, HASHED_V1);
}

/* ---- Per-byte context updates ---- */

static int is_word_byte(uint32_t byte) {
    return (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') || byte >= 128;
}

static void update_word(cm_model *m, uint32_t byte) {
    if (is_word_byte(byte)) {
        uint32_t lower = (byte >= 'A' && byte <= 'Z') ? byte + 32 : byte;
        m->at.word = (m->at.word + lower + 1) * 0x2E4C3B2Bu;
    } else {
        if (m->at.word)
            m->at.previous_word = m->at.word;
        m->at.word = 0;
    }
}

/* ---- Lanes ---- */

/* The lane holding position p (lanes > 1). */
static int lane_of(const cm_model *m, size_t p) {
    int lane = 0;
    while (lane + 1 < m->lane_count && m->lanes[lane + 1].start <= p)
        lane++;
    return lane;
}

/* Whether the byte at p has been coded (lanes > 1): history is only filled
 * up to each lane's position, and encoder and decoder must read the same. */
static int is_coded(const cm_model *m, size_t p) {
    int lane = lane_of(m, p);
    return p < (lane == m->lane ? m->at.pos : m->lanes[lane].pos);
}

/* The first position of the lane holding p. */
static size_t lane_start_of(const cm_model *m, size_t p) {
    return m->lane_count > 1 ? m->lanes[lane_of(m, p)].start : 0;
}

/* A match model's step at each byte (both models share it; each has its
 * own index, state and context length `min`): extends the current match
 * or looks for a new one. The index maps a hash of the last `min` bytes
 * to the position that followed them; it is read and
 * written one byte late (the entry of the bytes before the newest one), so
 * its cache line is requested a whole byte before it is needed. A
 * candidate is followed only if the bytes before it really agree (the
 * index is a hash and may point anywhere earlier). With lanes, the
 * comparison stays inside each side's lane. */
static inline void match_step(const cm_model *m, uint32_t *index, size_t entry, uint32_t min, uint32_t verify_limit,
                       uint32_t *length, size_t *ptr) {
    if (*length > 0) {
        *length += *length < MATCH_MAX_LENGTH;
        (*ptr)++;
    }
    size_t newest = m->at.pos - 1;
    if (newest - m->at.start < min)
        return;
    if (*length == 0) {
        size_t candidate = index[entry]; /* coded (< newest with one lane) */
        size_t reach = LMC_MIN(candidate - lane_start_of(m, candidate), newest - m->at.start);
        uint32_t agree = 0;
        while (agree < verify_limit && agree <= reach && m->history[candidate - agree] == m->history[newest - agree])
            agree++;
        if (agree > min) {
            *length = agree;
            *ptr = candidate + 1;
        }
    }
    index[entry] = (uint32_t)newest;
}

/* The match lengths the predictions use: 0 while a match's next byte is
 * in a lane that has not coded it yet (it may be by the lane's next turn). */
static uint32_t live_length(const cm_model *m, uint32_t length, size_t ptr) {
    return length > 0 && m->lane_count > 1 && !is_coded(m, ptr) ? 0 : length;
}

static void refresh_live_matches(cm_model *m) {
    m->match_live = live_length(m, m->at.match_length, m->at.match_ptr);
    m->match2_live = live_length(m, m->at.match2_length, m->at.match2_ptr);
}

static void update_match(cm_model *m) {
    match_step(m, m->match_index, m->at.match_entry, MATCH_MIN, MATCH_VERIFY_LIMIT, &m->at.match_length, &m->at.match_ptr);
    m->at.match_entry = hash2(m->at.c4 ^ 0x5BD1E995u, m->at.c8 & 0xFFFFu) & m->match_mask;
    __builtin_prefetch(&m->match_index[m->at.match_entry]);
}

/* Mixed v2: the second match model, on MATCH2_MIN bytes of context. Longer
 * contexts find the latest repeat of a longer string, often another place
 * than the first model's. */
static void update_match2(cm_model *m) {
    match_step(m, m->match2_index, m->at.match2_entry, MATCH2_MIN, MATCH2_VERIFY_LIMIT, &m->at.match2_length,
               &m->at.match2_ptr);
    m->at.match2_entry = hash2(hash2(m->at.c4, m->at.c8), hash2(m->at.c12, m->at.c16)) & m->match_mask;
    __builtin_prefetch(&m->match2_index[m->at.match2_entry]);
}

/* The byte above the next one in the previous line (256 past its end), and
 * the next byte's column. */
static uint32_t byte_above(const cm_model *m, uint32_t *column) {
    size_t col = m->at.pos - m->at.line_start;
    *column = (uint32_t)LMC_MIN(col, (size_t)UINT32_MAX);
    return col < m->at.line_start - m->at.previous_line_start ? m->history[m->at.previous_line_start + col] : 256u;
}

static void update_context_hashes(cm_model *m) {
    uint32_t c4 = m->at.c4;
    m->at.context_hash[0] = hash2(c4 & 0xFFFFu, 2);
    m->at.context_hash[1] = hash2(c4 & 0xFFFFFFu, 3);
    m->at.context_hash[2] = hash2(c4, 4);
    m->at.context_hash[3] = hash2(hash2(c4, m->at.c8 & 0xFFFFu), 6);
    /* Between words this is an order-0 context. */
    m->at.context_hash[4] = hash2(m->at.word, 0x776F7264u);
    if (m->v2) {
        m->at.context_hash[5] = hash2(hash2(m->at.word, m->at.previous_word), 0x77327264u);
        uint32_t column;
        uint32_t above = byte_above(m, &column);
        m->at.context_hash[6] = hash2(above << 16 | LMC_MIN(column, 255u), 0x636F6C31u);
    }
}

/* Called once the byte at pos is in history[pos]. */
static void cm_end_byte(cm_model *m, uint32_t byte) {
    m->at.pos++;
    m->at.c16 = m->at.c16 << 8 | m->at.c12 >> 24;
    m->at.c12 = m->at.c12 << 8 | m->at.c8 >> 24;
    m->at.c8 = m->at.c8 << 8 | m->at.c4 >> 24;
    m->at.c4 = m->at.c4 << 8 | byte;
    if (byte == '\n') {
        m->at.previous_line_start = m->at.line_start;
        m->at.line_start = m->at.pos;
    }
    update_word(m, byte);
    update_match(m);
    if (m->v2)
        update_match2(m);
    refresh_live_matches(m);
    update_context_hashes(m);
    m->c0 = 1;
    m->bit_count = 0;
    select_lines(m);
}

/* ---- Life cycle ---- */

static size_t table_bytes_for(size_t size) {
    size_t bytes = TABLE_MIN_BYTES;
    while (bytes < TABLE_MAX_BYTES && bytes / TABLE_BYTES_PER_BYTE < size)
        bytes <<= 1;
    return bytes;
}

static size_t match_entries_for(size_t size) {
    size_t entries = MATCH_INDEX_MIN_ENTRIES;
    while (entries < MATCH_INDEX_MAX_ENTRIES && entries * 2 < size)
        entries <<= 1;
    return entries;
}

/* Large tables are aligned to a huge page: the lines are reached at
 * random, and with 4 KiB pages nearly every access would also miss the TLB. */
static size_t table_alignment(size_t bytes) {
    return bytes >= 2 * HUGE_PAGE_BYTES ? HUGE_PAGE_BYTES : LINE_BYTES;
}

/* Zeroed, and marked for huge pages where large (a hint that changes speed
 * only, never results). */
static lmc_status allocate_table(cm_model *m, size_t bytes) {
    size_t alignment = table_alignment(bytes);
    m->table_block = calloc(bytes + alignment, 1);
    if (!m->table_block)
        return LMC_ERR_NOMEM;
    uintptr_t start = ((uintptr_t)m->table_block + alignment - 1) & ~(uintptr_t)(alignment - 1);
    m->table = (uint8_t *)start;
    m->line_mask = bytes / LINE_BYTES - 1;
#ifdef MADV_HUGEPAGE
    if (alignment == HUGE_PAGE_BYTES)
        madvise(m->table, bytes, MADV_HUGEPAGE);
#endif
    return LMC_OK;
}

static void cm_free(cm_model *m) {
    if (!m)
        return;
    free(m->table_block);
    free(m->match_index);
    free(m->apm1.cells);
    free(m->apm2.cells);
    free(m->apm3.cells);
    free(m->end_table);
    free(m->match2_index);
    free(m->token_marks);
    free(m->lanes);
    free(m);
}

static void init_tables(cm_model *m) {
    lmc_cm_tables_build(&m->tables);
    build_histories(&m->histories);
    for (int i = 0; i < CONTEXT_MODELS; i++)
        for (int s = 0; s < 256; s++)
            m->state_map[i][s] = (uint32_t)m->histories.initial[s] << 16;
    for (int i = 0; i < MATCH_CONTEXTS; i++)
        m->match_map[i] = 1u << 31;
    for (int s = 0; s < MIXER1_SETS; s++)
        for (int i = 0; i < MIXER_INPUTS; i++)
            m->weights1[s][i] = MIXER_INITIAL_WEIGHT;
    for (int s = 0; s < MIXER2_SETS; s++)
        for (int i = 0; i < MIXER_INPUTS; i++)
            m->weights2[s][i] = MIXER_INITIAL_WEIGHT;
    if (m->with_model) {
        for (size_t i = 0; i < (size_t)m->end_contexts << m->end_bits; i++)
            m->end_table[i] = 1u << 31;
        for (int s = 0; s < END_SETS; s++)
            m->end_weights[s][0] = MODEL_INITIAL_WEIGHT;
    }
    if (m->v2) {
        for (int i = 0; i < MATCH_CONTEXTS; i++)
            m->match2_map[i] = 1u << 31;
        for (int i = 0; i < END_MATCH_CONTEXTS; i++)
            m->end_match_map[i] = 1u << 31;
        m->layer2[0] = m->layer2[1] = LAYER2_INITIAL_WEIGHT;
    }
    /* The neural model is the best single predictor from the start. */
    if (m->with_model)
        for (int s = 0; s < MIXER1_SETS; s++)
            m->weights1[s][MODEL_INPUT] = MODEL_INITIAL_WEIGHT;
    if (m->with_model)
        for (int s = 0; s < MIXER2_SETS; s++)
            m->weights2[s][MODEL_INPUT] = MODEL_INITIAL_WEIGHT;
}

/* The tables only the mixed codec's models use. */
static int allocate_mixed(cm_model *m, size_t size, size_t match_entries) {
    m->apm3.cells = calloc((size_t)APM3_CONTEXTS * APM_CELLS, sizeof *m->apm3.cells);
    m->end_table = malloc(((size_t)m->end_contexts << m->end_bits) * sizeof *m->end_table);
    if (!m->apm3.cells || !m->end_table)
        return 0;
    if (!m->v2)
        return 1;
    m->match2_index = calloc(match_entries, sizeof *m->match2_index);
    m->token_marks = calloc(size + 1, 1);
    return m->match2_index && m->token_marks;
}

/* A fresh model for a block of `size` bytes whose bytes will appear in
 * `history` as they are coded; version 0 is --fast's model, else the mixed
 * codec's LMC_CM_MIXED_V1 or LMC_CM_MIXED_V2. */
static lmc_status cm_create(size_t size, const uint8_t *history, int version, cm_model **out) {
    cm_model *m = calloc(1, sizeof *m);
    if (!m)
        return LMC_ERR_NOMEM;
    m->with_model = version != 0;
    m->v2 = version == LMC_CM_MIXED_V2;
    m->end_contexts = m->v2 ? END_CONTEXTS : END_CONTEXTS_V1;
    m->end_bits = m->v2 ? END_TABLE_BITS_V2 : END_TABLE_BITS_V1;
    size_t match_entries = match_entries_for(size);
    m->match_index = calloc(match_entries, sizeof *m->match_index);
    m->apm1.cells = calloc((size_t)(m->v2 ? APM1_CONTEXTS_V2 : APM1_CONTEXTS) * APM_CELLS, sizeof *m->apm1.cells);
    m->apm2.cells = calloc((size_t)APM2_CONTEXTS * APM_CELLS, sizeof *m->apm2.cells);
    if (!m->match_index || !m->apm1.cells || !m->apm2.cells || (m->with_model && !allocate_mixed(m, size, match_entries)) ||
        allocate_table(m, table_bytes_for(size)) != LMC_OK) {
        cm_free(m);
        return LMC_ERR_NOMEM;
    }
    m->match_mask = match_entries - 1;
    m->history = history;
    init_tables(m);
    m->c0 = 1;
    update_context_hashes(m);
    select_lines(m);
    *out = m;
    return LMC_OK;
}

/* ---- Public entry points ---- */

size_t lmc_cm_memory(size_t size) {
    size_t table = table_bytes_for(size);
    return sizeof(cm_model) + table + table_alignment(table) + match_entries_for(size) * sizeof(uint32_t) +
           (size_t)(APM1_CONTEXTS + APM2_CONTEXTS + APM3_CONTEXTS) * APM_CELLS * sizeof(uint16_t) +
           ((size_t)END_CONTEXTS_V1 << END_TABLE_BITS_V1) * sizeof(uint32_t);
}

size_t lmc_cm_mixed_memory(size_t size) {
    return lmc_cm_memory(size) + match_entries_for(size) * sizeof(uint32_t) + size + 1 +
           (size_t)(APM1_CONTEXTS_V2 - APM1_CONTEXTS) * APM_CELLS * sizeof(uint16_t) +
           ((size_t)END_CONTEXTS << END_TABLE_BITS_V2) * sizeof(uint32_t);
}

lmc_status lmc_cm_compress(const uint8_t *data, size_t size, lmc_buf *out) {
    if (!out || (!data && size > 0))
        return LMC_ERR_PARAM;
    if (size == 0)
        return LMC_OK;
    cm_model *m;
    lmc_status status = cm_create(size, data, 0, &m);
    if (status != LMC_OK)
        return status;
    lmc_rc_encoder encoder;
    lmc_rc_encoder_init(&encoder, out);
    for (size_t i = 0; i < size; i++) {
        uint32_t byte = data[i];
        for (int j = 7; j >= 0; j--) {
            int bit = (int)(byte >> j) & 1;
            lmc_rc_encode_bit(&encoder, cm_predict(m, 0), bit);
            cm_update(m, bit);
        }
        cm_end_byte(m, byte);
    }
    status = lmc_rc_encoder_finish(&encoder);
    cm_free(m);
    return status;
}

lmc_status lmc_cm_decompress(const uint8_t *payload, size_t payload_size, uint8_t *out, size_t size) {
    if ((!out && size > 0) || (!payload && payload_size > 0))
        return LMC_ERR_PARAM;
    if (size == 0)
        return payload_size == 0 ? LMC_OK : LMC_ERR_CORRUPT;
    cm_model *m;
    lmc_status status = cm_create(size, out, 0, &m);
    if (status != LMC_OK) {
        memset(out, 0, size);
        return status;
    }
    lmc_rc_decoder decoder;
    lmc_rc_decoder_init(&decoder, payload, payload_size);
    for (size_t i = 0; i < size; i++) {
        uint32_t byte = 0;
        for (int j = 0; j < 8; j++) {
            int bit = lmc_rc_decode_bit(&decoder, cm_predict(m, 0));
            cm_update(m, bit);
            byte = byte << 1 | (uint32_t)bit;
        }
        out[i] = (uint8_t)byte;
        cm_end_byte(m, byte);
        /* Garbage decodes to garbage: stop at the first sign of it. */
        if (lmc_rc_decoder_failed(&decoder)) {
            memset(out + i + 1, 0, size - i - 1);
            status = LMC_ERR_CORRUPT;
            break;
        }
    }
    /* A payload cut short or followed by extra bytes shows at its end. */
    if (status == LMC_OK && !lmc_rc_decoder_end_ok(&decoder))
        status = LMC_ERR_CORRUPT;
    cm_free(m);
    return status;
}

/* ---- Mixing with a neural model, one bit at a time ---- */

lmc_status lmc_cm_open(size_t size, const uint8_t *history, int version, lmc_cm **out) {
    *out = NULL;
    if (version != LMC_CM_MIXED_V1 && version != LMC_CM_MIXED_V2)
        return LMC_ERR_PARAM;
    return cm_create(LMC_MAX(size, (size_t)1), history, version, out);
}

uint32_t lmc_cm_predict_bit(lmc_cm *cm, uint32_t model_p16) {
    return cm_predict(cm, LMC_MAX(1u, LMC_MIN(model_p16, 65535u)));
}

void lmc_cm_update_bit(lmc_cm *cm, int bit) {
    cm_update(cm, bit);
}

void lmc_cm_end_byte(lmc_cm *cm, uint32_t byte) {
    cm_end_byte(cm, byte);
}

void lmc_cm_close(lmc_cm *cm) {
    cm_free(cm);
}

lmc_status lmc_cm_set_lanes(lmc_cm *m, const size_t *starts, int count) {
    if (count < 1 || count > LMC_CM_LANES_MAX || starts[0] != 0 || m->at.pos != 0 || m->lanes)
        return LMC_ERR_PARAM;
    for (int lane = 1; lane < count; lane++)
        if (starts[lane] <= starts[lane - 1])
            return LMC_ERR_PARAM;
    if (count == 1)
        return LMC_OK;
    m->lanes = malloc((size_t)count * sizeof *m->lanes);
    if (!m->lanes)
        return LMC_ERR_NOMEM;
    /* Every lane starts as the block does: no bytes behind it. */
    for (int lane = 0; lane < count; lane++) {
        m->lanes[lane] = m->at;
        m->lanes[lane].start = m->lanes[lane].pos = starts[lane];
        m->lanes[lane].line_start = m->lanes[lane].previous_line_start = starts[lane];
    }
    m->lane_count = count;
    m->lane = 0;
    return LMC_OK;
}

void lmc_cm_select_lane(lmc_cm *m, int lane) {
    if (lane == m->lane || lane < 0 || lane >= m->lane_count)
        return;
    m->lanes[m->lane] = m->at;
    m->at = m->lanes[lane];
    m->lane = lane;
    refresh_live_matches(m);
    /* Other lanes may have taken this lane's lines since it left them. */
    select_lines(m);
}

/* Mixed v2: where the matched text's tokens began. A token started at the
 * position `depth` bytes back; the longer match's next position tells
 * whether a token started at the same place before (0 unknown, 1 yes, 2
 * no). Returns that state, 0 without a match, and sets the state map's
 * context. */
static uint32_t end_match_state(cm_model *m, uint32_t depth) {
    uint8_t *start = &m->token_marks[m->at.pos - depth];
    if (*start == 0)
        *start = 1;
    uint32_t length = m->match_live;
    size_t ptr = m->at.match_ptr;
    if (m->match2_live > length) {
        length = m->match2_live;
        ptr = m->at.match2_ptr;
    }
    if (length == 0) {
        m->end_match_context = 0;
        return 0;
    }
    uint32_t expected = m->token_marks[ptr];
    m->end_match_context = 1 + expected * 16 + LMC_MIN(length, 15u);
    return 1 + expected;
}

/* Mixed v2's byte contexts of the decision: the last 4 and 6 bytes with
 * the depth, and the candidate under the byte above in the previous line. */
static void end_byte_contexts(cm_model *m, uint32_t candidate, uint32_t depth, uint32_t mask) {
    uint32_t column;
    uint32_t above = byte_above(m, &column);
    m->end_entry[3] = &m->end_table[(3u << m->end_bits) + (hash2(m->at.c4, depth + 0x454E4432u) & mask)];
    m->end_entry[4] = &m->end_table[(4u << m->end_bits) +
                                    (hash2(hash2(m->at.c4, m->at.c8 & 0xFFFFu), depth + 0x454E4433u) & mask)];
    m->end_entry[5] = &m->end_table[(5u << m->end_bits) +
                                    (hash2(hash2(candidate, above), LMC_MIN(column, 64u) + 0x454E4436u) & mask)];
}

/* The decision "the token ends here" (the bytes so far are token `candidate`
 * and longer tokens remain): the neural model's probability mixed with what
 * this block has shown about the candidate, alone and after the previous
 * token, with weight sets by how many bytes of the token are known (and in
 * v2 by end_match_state). */
uint32_t lmc_cm_predict_end(lmc_cm *m, uint32_t model_p16, uint32_t candidate, uint32_t previous,
                            uint32_t previous2, uint32_t depth) {
    const lmc_cm_tables *t = &m->tables;
    uint32_t mask = (1u << m->end_bits) - 1;
    m->end_entry[0] = &m->end_table[hash2(candidate, 0x454E4430u) & mask];
    m->end_entry[1] = &m->end_table[(1u << m->end_bits) + (hash2(candidate, previous ^ 0x454E4431u) & mask)];
    m->end_entry[2] = &m->end_table[(2u << m->end_bits) + (hash2(hash2(candidate, previous), previous2) & mask)];
    uint32_t set = LMC_MIN(depth, (uint32_t)END_DEPTHS - 1);
    if (m->v2) {
        end_byte_contexts(m, candidate, depth, mask);
        set += END_DEPTHS * end_match_state(m, depth);
        m->end_inputs[END_MATCH_INPUT] = stretch(t, state_map_p16(m->end_match_map[m->end_match_context]));
    }
    m->end_inputs[0] = stretch(t, LMC_MAX(1u, LMC_MIN(model_p16, 65535u)));
    for (int i = 0; i < m->end_contexts; i++)
        m->end_inputs[1 + i] = stretch(t, state_map_p16(*m->end_entry[i]));
    m->end_inputs[END_BIAS_INPUT] = 256;
    m->end_active = m->end_weights[set];
    int64_t dot = 0;
    for (int i = 0; i < END_INPUTS; i++)
        dot += (int64_t)m->end_active[i] * m->end_inputs[i];
    m->end_p16 = squash(t, clamp_logistic((int)(dot >> 16)));
    return LMC_MAX(1u, LMC_MIN(m->end_p16, 65535u));
}

void lmc_cm_update_end(lmc_cm *m, int bit) {
    int32_t error = ((bit << 16) - (int32_t)m->end_p16) * MIXER_LEARNING_RATE >> 4;
    mixer_train_n(m->end_active, m->end_inputs, END_INPUTS, error);
    for (int i = 0; i < m->end_contexts; i++)
        state_map_update_limited(m->end_entry[i], bit, m->tables.reciprocal, END_MAP_LIMIT);
    if (m->v2) {
        state_map_update_limited(&m->end_match_map[m->end_match_context], bit, m->tables.reciprocal, END_MAP_LIMIT);
        m->token_marks[m->at.pos] = bit ? 1 : 2;
    }
}
