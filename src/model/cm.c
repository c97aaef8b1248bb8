/*
 * The --fast model: a classical bitwise context-mixing compressor in the
 * style of lpaq1 (Matt Mahoney's design, reimplemented here).
 *
 * Each bit of a block is predicted by
 *   - context models of order 1, 2, 3, 4 and 6 and a word model: each maps
 *     its context (and the bits of the current byte seen so far) to a
 *     one-byte bit history, and an adaptive state map learns what each
 *     history means as a probability;
 *   - a match model that follows the latest earlier occurrence of the last
 *     MATCH_MIN bytes and predicts the bit that followed it;
 * mixed in the logistic domain by a gated linear mixer, refined by two
 * adaptive probability maps (APM/SSE), and coded with the project's binary
 * range coder (lmc_rc_encode_bit / lmc_rc_decode_bit).
 *
 * Determinism: only integer arithmetic reaches a probability; the
 * logistic tables are built at start from an integer series, so an archive
 * decodes identically on every machine and compiler. Every call starts a
 * fresh model, so blocks are independent.
 *
 * Memory: the hashed contexts live in one table of 16-byte buckets sized
 * from the block (CM_TABLE_BYTES_PER_BYTE per input byte, 64 KiB to
 * CM_TABLE_MAX_BYTES = 64 MiB); the match model's index holds one 32-bit
 * position per 2 input bytes up to 16 MiB; fixed tables add under 1 MiB.
 * Tables are allocated zeroed (calloc), so a small block touches little.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "coder/coder.h"
#include "model/model.h"

/* EXPERIMENT */
#include <stdio.h>
static int X(int i) { static int v[16]; static int init; if (!init) { const char *e = getenv("CMX"); if (e) sscanf(e, "%d,%d,%d,%d,%d,%d,%d,%d", &v[0],&v[1],&v[2],&v[3],&v[4],&v[5],&v[6],&v[7]); init = 1; } return v[i]; }

/* ---- Dimensions and tuning constants ---- */

#define LOGISTIC_LIMIT 2047     /* logistic domain: x / 256, clamped to +-8 */
#ifndef CM_TABLE_BYTES_PER_BYTE
#define CM_TABLE_BYTES_PER_BYTE 16
#endif
#define CM_TABLE_MIN_BYTES ((size_t)1 << 16)
#define CM_TABLE_MAX_BYTES ((size_t)1 << 26)
#define MATCH_INDEX_MIN_ENTRIES ((size_t)1 << 12)
#define MATCH_INDEX_MAX_ENTRIES ((size_t)1 << 22)
#define MATCH_MIN 6             /* bytes that must agree before a match is followed */
#define MATCH_MAX_LENGTH 65535
#define MATCH_VERIFY_LIMIT 32   /* bytes compared backwards when a match starts */

enum {
    HASHED_MODELS = 5,                  /* orders 2, 3, 4, 6 and the word context */
    CONTEXT_MODELS = HASHED_MODELS + 1, /* plus the direct order-1 table */
    MATCH_INPUT = CONTEXT_MODELS,
    BIAS_INPUT = MATCH_INPUT + 1,
    MIXER_INPUTS = BIAS_INPUT + 1,
    MATCH_CONTEXTS = 64,                /* length bucket (32) x expected bit */
    MIXER_SETS = 256 * 4,               /* partial byte x match-length class */
    APM_CELLS = 33,                     /* interpolation points over the logistic domain */
    APM2_CONTEXTS = 1 << 16,            /* partial byte x previous byte */
    STATE_MAP_LIMIT = 1023,
    BUCKET_BYTES = 16,                  /* check byte + the 15 nodes of a nibble's bit tree */
};

/* ---- Logistic tables ---- */

typedef struct {
    int16_t stretch[4096];  /* ln(p / (1 - p)) * 256 for p = (i + 0.5) / 4096 */
    uint16_t squash[4096];  /* 65536 / (1 + e^(-x / 256)) for x = i - 2048 */
} logistic_tables;

/* e^(-1/256) in Q62 from its Taylor series, using integers only. */
static uint64_t exp_minus_1_256_q62(void) {
    uint64_t term = (uint64_t)1 << 62, sum = term;
    for (unsigned k = 1; term != 0; k++) {
        term /= 256u * k;
        sum = (k & 1) ? sum - term : sum + term;
    }
    return sum;
}

/* squash(x) for x >= 0 from e^(-x/256) in Q32, built by repeated
 * multiplication (the error after 2048 steps stays below 2^-20). */
static void build_squash(logistic_tables *t) {
    const uint64_t step = exp_minus_1_256_q62() >> 30; /* Q32 */
    uint64_t e = (uint64_t)1 << 32;                   /* e^(-x/256), Q32 */
    for (int x = 0; x < 2048; x++) {
        uint64_t denominator = ((uint64_t)1 << 32) + e;
        uint64_t p = (((uint64_t)1 << 48) + denominator / 2) / denominator;
        if (p > 65535)
            p = 65535;
        t->squash[2048 + x] = (uint16_t)p;
        t->squash[2048 - x] = (uint16_t)(65536 - p);
        e = (e * step) >> 32;
    }
    t->squash[0] = t->squash[1];
}

/* stretch = inverse of squash on the 12-bit probability grid. */
static void build_stretch(logistic_tables *t) {
    int next = 0;
    for (int x = -LOGISTIC_LIMIT; x <= LOGISTIC_LIMIT; x++) {
        int p12 = (t->squash[x + 2048] + 8) >> 4;
        for (; next <= p12 && next < 4096; next++)
            t->stretch[next] = (int16_t)x;
    }
    for (; next < 4096; next++)
        t->stretch[next] = LOGISTIC_LIMIT;
}

static inline int stretch(const logistic_tables *t, uint32_t p16) {
    return t->stretch[p16 >> 4];
}

static inline uint32_t squash(const logistic_tables *t, int x) {
    if (x > LOGISTIC_LIMIT)
        x = LOGISTIC_LIMIT;
    if (x < -LOGISTIC_LIMIT)
        x = -LOGISTIC_LIMIT;
    return t->squash[x + 2048];
}

/* ---- Bit histories ----
 *
 * A state byte stands for (n0, n1, last bit): how often 0 and 1 followed a
 * context, with the count of the bit not seen discounted (halved) when the
 * other one arrives, so recent behaviour dominates. Counts are bounded so
 * that all states fit in a byte; the set is generated at start.
 */

#define HISTORY_COUNT_MAX 40

typedef struct {
    uint8_t next[256][2];   /* state after a 0 or a 1 */
    uint8_t total[256];     /* n0 + n1, the replacement priority */
    uint16_t initial[256];  /* a first guess of P(1) before the state maps learn */
} history_tables;

/* The largest count allowed beside a smaller count of `smaller`. */
static int history_larger_limit(int smaller) {
    static const int8_t limit[] = {HISTORY_COUNT_MAX, 20, 10, 6, 5, 5};
    return smaller < (int)sizeof limit ? limit[smaller] : -1;
}

static int history_valid(int n0, int n1) {
    int smaller = LMC_MIN(n0, n1), larger = LMC_MAX(n0, n1);
    return larger <= history_larger_limit(smaller);
}

/* The last bit is remembered only where both counts are nonzero. */
static int history_has_last(int n0, int n1) {
    return n0 > 0 && n1 > 0;
}

/* Counts after `bit`; `grow` is the count of `bit`, `other` the other one. */
static void history_step(int *grow, int *other) {
    (*grow)++;
    if (*other > 2)
        *other = *other / 2 + 1;
    while (!history_valid(*grow, *other)) {
        if (*grow >= *other)
            (*grow)--;
        else
            (*other)--;
    }
}

static void build_histories(history_tables *h) {
    static int16_t index[HISTORY_COUNT_MAX + 1][HISTORY_COUNT_MAX + 1][2];
    uint8_t n0_of[256], n1_of[256], last_of[256];
    int states = 0;
    memset(index, 0xff, sizeof index);
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
        /* (n1 + 1/2) / (n0 + n1 + 1), nudged toward the last bit. */
        uint32_t p = (uint32_t)((2u * n1 + 1) * 65536u / (2u * (n0 + n1) + 2));
        if (history_has_last(n0, n1))
            p = last_of[s] ? (p * 3 + 65535) / 4 : p * 3 / 4;
        h->initial[s] = (uint16_t)LMC_MAX(64u, LMC_MIN(p, 65472u));
    }
}

/* ---- Adaptive state maps: context -> probability, learning rate 1/n ---- */

/* Entries hold P(1) in the top 22 bits and a hit count in the low 10. */
static inline uint32_t state_map_p16(uint32_t entry) {
    return entry >> 16;
}

static inline void state_map_update(uint32_t *entry, int bit, const uint16_t *reciprocal) {
    uint32_t count = *entry & 1023;
    int32_t p22 = (int32_t)(*entry >> 10);
    int32_t target = bit ? (1 << 22) - 1 : 0;
    p22 += (int32_t)(((int64_t)(target - p22) * reciprocal[count]) >> 16);
    if (count < STATE_MAP_LIMIT)
        count++;
    *entry = (uint32_t)p22 << 10 | count;
}

/* ---- Adaptive probability maps (SSE) ----
 *
 * A context selects 33 cells over the logistic domain; the input
 * probability interpolates between two cells. Cells are stored as the
 * difference (mod 2^16) from the identity curve, so a zeroed table starts
 * as the identity and large tables need no initialisation pass.
 */
typedef struct {
    uint16_t *cells;
    uint32_t index;         /* the cell nearer the last input, for the update */
} apm;

static inline uint32_t apm_predict(apm *a, const uint16_t *identity, const logistic_tables *t,
                                   uint32_t context, uint32_t p16) {
    int s = stretch(t, p16) + 2048;     /* 1 .. 4095 */
    int low = s >> 7, weight = s & 127;
    uint32_t base = context * APM_CELLS + (uint32_t)low;
    uint32_t a0 = (uint16_t)(a->cells[base] + identity[low]);
    uint32_t a1 = (uint16_t)(a->cells[base + 1] + identity[low + 1]);
    a->index = base + (weight >> 6);
    return (a0 * (uint32_t)(128 - weight) + a1 * (uint32_t)weight) >> 7;
}

static inline void apm_update(apm *a, const uint16_t *identity, int bit, int rate) {
    uint32_t cell = a->index % APM_CELLS;
    int32_t value = (uint16_t)(a->cells[a->index] + identity[cell]);
    int32_t target = bit ? 65535 : 0;
    value += (target - value) >> rate;
    a->cells[a->index] = (uint16_t)((uint32_t)value - identity[cell]);
}

/* ---- The model ---- */

typedef struct {
    logistic_tables logistic;
    history_tables histories;
    uint16_t reciprocal[STATE_MAP_LIMIT + 1]; /* 65536 / (n + 1.5) */
    uint16_t apm_identity[APM_CELLS];

    /* Context models: order 1 direct, the others hashed into buckets. */
    uint8_t order1[256 * 256];
    uint8_t *table;             /* aligned to 64 bytes inside table_block */
    void *table_block;
    size_t bucket_mask;         /* buckets - 1 */
    uint32_t context_hash[HASHED_MODELS];
    uint8_t *bucket[HASHED_MODELS];
    uint8_t *slot[CONTEXT_MODELS]; /* the bit history of the current bit */
    uint32_t state_map[CONTEXT_MODELS][256];

    /* Match model. */
    uint32_t *match_index;
    size_t match_mask;
    size_t match_ptr;           /* history position of the predicted byte */
    uint32_t match_length;      /* 0: no match */
    uint32_t match_context;
    uint32_t match_map[MATCH_CONTEXTS];

    /* Mixer. */
    int32_t inputs[MIXER_INPUTS];
    int32_t weights[MIXER_SETS][MIXER_INPUTS];
    uint32_t mixer_set;
    uint32_t mixer_p16;

    apm apm1, apm2;

    /* Coding position. */
    const uint8_t *history;     /* the bytes coded so far */
    size_t pos;
    uint32_t c0;                /* 1 followed by the bits of the current byte */
    int bit_count;
    uint32_t c4, c8;            /* the last 8 bytes, newest lowest */
    uint32_t word, previous_word;
} cm_model;

/* ---- Hashing and the bucket table ---- */

static inline uint32_t hash2(uint32_t a, uint32_t b) {
    uint32_t h = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u;
    h ^= h >> 15;
    h *= 0xC2B2AE3Du;
    h ^= h >> 13;
    return h;
}

static inline uint8_t *bucket_line(cm_model *m, uint32_t hash) {
    return m->table + (size_t)(hash & m->bucket_mask) * BUCKET_BYTES;
}

/* The bucket of `hash` among three neighbours in one cache line: the one
 * whose check byte matches, else the least used one, cleared. */
static uint8_t *bucket_find(cm_model *m, uint32_t hash) {
    uint8_t check = (uint8_t)(hash >> 24);
    size_t index = hash & m->bucket_mask;
    uint8_t *candidate[3];
    for (int i = 0; i < 3; i++) {
        candidate[i] = m->table + (index ^ (size_t)i) * BUCKET_BYTES;
        if (candidate[i][0] == check)
            return candidate[i];
    }
    uint8_t *victim = candidate[0];
    for (int i = 1; i < 3; i++)
        if (m->histories.total[candidate[i][1]] < m->histories.total[victim[1]])
            victim = candidate[i];
    memset(victim, 0, BUCKET_BYTES);
    victim[0] = check;
    return victim;
}

/* New buckets for the nibble that starts now (c0 holds the bits before it).
 * All lines are requested before the first is searched, so the cache
 * misses overlap instead of following one another. */
static void select_buckets(cm_model *m) {
    uint32_t hash[HASHED_MODELS];
    for (int i = 0; i < HASHED_MODELS; i++) {
        hash[i] = hash2(m->context_hash[i], m->c0);
        __builtin_prefetch(bucket_line(m, hash[i]));
    }
    for (int i = 0; i < HASHED_MODELS; i++)
        m->bucket[i] = bucket_find(m, hash[i]);
}

/* Two bits before a nibble boundary, requests the lines of the four
 * possible next nibbles' buckets. */
static void prefetch_next_buckets(cm_model *m) {
    for (uint32_t next = 0; next < 4; next++) {
        uint32_t c0 = m->c0 << 2 | next;
        for (int i = 0; i < HASHED_MODELS; i++)
            __builtin_prefetch(bucket_line(m, hash2(m->context_hash[i], c0)));
    }
}

/* ---- Per-bit prediction and update ---- */

/* Points each model at the bit history of the bit about to be coded: the
 * node of the nibble's bit tree reached by the nibble's bits so far. */
static void point_slots(cm_model *m) {
    uint32_t node = m->c0;
    if (m->bit_count >= 4) {
        uint32_t seen = 1u << (m->bit_count - 4);
        node = (m->c0 & (seen - 1)) | seen;
    }
    m->slot[0] = &m->order1[(m->c4 & 255u) << 8 | m->c0];
    for (int i = 0; i < HASHED_MODELS; i++)
        m->slot[i + 1] = m->bucket[i] + node;
}

static uint32_t match_length_class(uint32_t length) {
    if (length == 0)
        return 0;
    if (length < 16)
        return length < 8 ? 1 : 2;
    return 3;
}

static uint32_t match_length_bucket(uint32_t length) {
    if (length < 16)
        return length;
    return LMC_MIN(31u, 12u + (length >> 2) / 4);
}

static uint32_t cm_predict(cm_model *m) {
    const logistic_tables *t = &m->logistic;
    point_slots(m);
    for (int i = 0; i < CONTEXT_MODELS; i++)
        m->inputs[i] = stretch(t, state_map_p16(m->state_map[i][*m->slot[i]]));

    uint32_t expected_bit = 0;
    if (m->match_length > 0)
        expected_bit = (m->history[m->match_ptr] >> (7 - m->bit_count)) & 1u;
    m->match_context = match_length_bucket(m->match_length) << 1 | expected_bit;
    m->inputs[MATCH_INPUT] = stretch(t, state_map_p16(m->match_map[m->match_context]));
    m->inputs[BIAS_INPUT] = 256;

    m->mixer_set = match_length_class(m->match_length) << 8 | m->c0;
    const int32_t *w = m->weights[m->mixer_set];
    int64_t dot = 0;
    for (int i = 0; i < MIXER_INPUTS; i++)
        dot += (int64_t)w[i] * m->inputs[i];
    m->mixer_p16 = squash(t, (int)(dot >> 16));

    uint32_t p1 = apm_predict(&m->apm1, m->apm_identity, t, m->c0, m->mixer_p16);
    uint32_t p2 = apm_predict(&m->apm2, m->apm_identity, t, (m->c4 & 255u) << 8 | m->c0, m->mixer_p16);
    uint32_t p;
    switch (X(0)) {
    case 1: p = m->mixer_p16; break;
    case 2: p = (m->mixer_p16 + p1) / 2; break;
    case 3: p = (m->mixer_p16 + p2) / 2; break;
    case 4: p = (m->mixer_p16 + p1 + 2 * p2) / 4; break;
    case 5: p = (p1 + p2) / 2; break;
    default: p = (2 * m->mixer_p16 + p1 + p2 * 1) / 4;
    }
    return LMC_MAX(1u, LMC_MIN(p, 65535u));
}

static void mixer_update(cm_model *m, int bit) {
    int32_t error = ((bit << 16) - (int32_t)m->mixer_p16) * 7 >> 4;
    int32_t *w = m->weights[m->mixer_set];
    for (int i = 0; i < MIXER_INPUTS; i++) {
        int32_t updated = w[i] + ((m->inputs[i] * error + (1 << 15)) >> 16);
        w[i] = LMC_MAX(-(1 << 22), LMC_MIN(updated, 1 << 22));
    }
}

static void cm_update(cm_model *m, int bit) {
    mixer_update(m, bit);
    apm_update(&m->apm1, m->apm_identity, bit, 7);
    apm_update(&m->apm2, m->apm_identity, bit, 7);
    for (int i = 0; i < CONTEXT_MODELS; i++) {
        uint8_t *slot = m->slot[i];
        state_map_update(&m->state_map[i][*slot], bit, m->reciprocal);
        *slot = m->histories.next[*slot][bit];
    }
    state_map_update(&m->match_map[m->match_context], bit, m->reciprocal);
    if (m->match_length > 0 && (int)(m->match_context & 1u) != bit)
        m->match_length = 0;

    m->c0 = m->c0 << 1 | (uint32_t)bit;
    m->bit_count++;
    if (X(3)) {
        const uint16_t *row = m->apm2.cells + ((m->c4 & 255u) << 8 | m->c0) * APM_CELLS;
        __builtin_prefetch(row);
        __builtin_prefetch(row + 32);
    }
    if (m->bit_count == 4)
        select_buckets(m);
    else if (m->bit_count == 2 && X(1))
        prefetch_next_buckets(m);
}

/* ---- Per-byte context updates ---- */

static int is_word_byte(uint32_t byte) {
    return (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') || byte >= 128;
}

static void update_word(cm_model *m, uint32_t byte) {
    if (is_word_byte(byte)) {
        uint32_t lower = (byte >= 'A' && byte <= 'Z') ? byte + 32 : byte;
        m->word = (m->word + lower + 1) * 0x2E4C3B2Bu;
    } else if (m->word != 0) {
        m->previous_word = m->word;
        m->word = 0;
    }
}

/* Extends the current match or looks for a new one ending at pos; a
 * candidate is followed only if MATCH_MIN bytes before it really agree
 * (the index is a hash and may point anywhere earlier). */
static void update_match(cm_model *m) {
    if (m->match_length > 0) {
        m->match_length += m->match_length < MATCH_MAX_LENGTH;
        m->match_ptr++;
    }
    if (m->pos < MATCH_MIN)
        return;
    size_t entry = hash2(m->c4 ^ 0x5BD1E995u, m->c8 & 0xFFFFu) & m->match_mask;
    if (m->match_length == 0) {
        size_t candidate = m->match_index[entry];
        uint32_t length = 0;
        while (length < MATCH_VERIFY_LIMIT && length < candidate &&
               m->history[candidate - 1 - length] == m->history[m->pos - 1 - length])
            length++;
        if (length >= MATCH_MIN) {
            m->match_length = length;
            m->match_ptr = candidate;
        }
    }
    m->match_index[entry] = (uint32_t)m->pos;
}

static void update_context_hashes(cm_model *m) {
    uint32_t c4 = m->c4;
    m->context_hash[0] = hash2(c4 & 0xFFFFu, 2);
    m->context_hash[1] = hash2(c4 & 0xFFFFFFu, 3);
    m->context_hash[2] = hash2(c4, 4);
    m->context_hash[3] = hash2(hash2(c4, m->c8 & 0xFFFFu), 6);
    m->context_hash[4] = hash2(m->word ^ hash2(m->previous_word, 7), c4 & 0xFFu);
}

/* Called once the byte at pos is in history[pos]. */
static void cm_end_byte(cm_model *m, uint32_t byte) {
    m->pos++;
    m->c8 = m->c8 << 8 | m->c4 >> 24;
    m->c4 = m->c4 << 8 | byte;
    update_word(m, byte);
    update_match(m);
    update_context_hashes(m);
    m->c0 = 1;
    m->bit_count = 0;
    select_buckets(m);
}

/* ---- Life cycle ---- */

static size_t table_bytes_for(size_t size) {
    size_t bytes = CM_TABLE_MIN_BYTES;
    while (bytes < CM_TABLE_MAX_BYTES && bytes / CM_TABLE_BYTES_PER_BYTE < size)
        bytes <<= 1;
    return bytes;
}

static size_t match_entries_for(size_t size) {
    size_t entries = MATCH_INDEX_MIN_ENTRIES;
    while (entries < MATCH_INDEX_MAX_ENTRIES && entries * 2 < size)
        entries <<= 1;
    return entries;
}

static void cm_free(cm_model *m) {
    if (!m)
        return;
    free(m->table_block);
    free(m->match_index);
    free(m->apm1.cells);
    free(m->apm2.cells);
    free(m);
}

static void init_numeric_tables(cm_model *m) {
    build_squash(&m->logistic);
    build_stretch(&m->logistic);
    build_histories(&m->histories);
    for (int n = 0; n <= STATE_MAP_LIMIT; n++)
        m->reciprocal[n] = (uint16_t)(131072 / (2 * n + 3));
    for (int i = 0; i < APM_CELLS; i++)
        m->apm_identity[i] = (uint16_t)squash(&m->logistic, (i - 16) * 128);
}

static void init_adaptive_state(cm_model *m) {
    for (int i = 0; i < CONTEXT_MODELS; i++)
        for (int s = 0; s < 256; s++)
            m->state_map[i][s] = (uint32_t)m->histories.initial[s] << 16;
    for (int i = 0; i < MATCH_CONTEXTS; i++)
        m->match_map[i] = 1u << 31;
    for (int s = 0; s < MIXER_SETS; s++)
        for (int i = 0; i < MIXER_INPUTS; i++)
            m->weights[s][i] = 1 << 14;
}

static lmc_status cm_create(size_t size, const uint8_t *history, cm_model **out) {
    cm_model *m = calloc(1, sizeof *m);
    if (!m)
        return LMC_ERR_NOMEM;
    size_t table_bytes = table_bytes_for(size);
    size_t match_entries = match_entries_for(size);
    m->table_block = calloc(table_bytes + 64, 1);
    m->match_index = calloc(match_entries, sizeof *m->match_index);
    m->apm1.cells = calloc(256 * APM_CELLS, sizeof *m->apm1.cells);
    m->apm2.cells = calloc((size_t)APM2_CONTEXTS * APM_CELLS, sizeof *m->apm2.cells);
    if (!m->table_block || !m->match_index || !m->apm1.cells || !m->apm2.cells) {
        cm_free(m);
        return LMC_ERR_NOMEM;
    }
    m->table = (uint8_t *)(((uintptr_t)m->table_block + 63) & ~(uintptr_t)63);
    if (X(2)) madvise((void*)(((uintptr_t)m->table + (1<<21)-1) & ~(uintptr_t)((1<<21)-1)), table_bytes - (1<<21), MADV_HUGEPAGE);
    m->bucket_mask = table_bytes / BUCKET_BYTES - 1;
    m->match_mask = match_entries - 1;
    m->history = history;
    init_numeric_tables(m);
    init_adaptive_state(m);
    m->c0 = 1;
    update_context_hashes(m);
    select_buckets(m);
    *out = m;
    return LMC_OK;
}

/* ---- Public entry points ---- */

lmc_status lmc_cm_compress(const uint8_t *data, size_t size, lmc_buf *out) {
    if (!out || (!data && size > 0))
        return LMC_ERR_PARAM;
    if (size == 0)
        return LMC_OK;
    cm_model *m;
    lmc_status status = cm_create(size, data, &m);
    if (status != LMC_OK)
        return status;
    lmc_rc_encoder encoder;
    lmc_rc_encoder_init(&encoder, out);
    for (size_t i = 0; i < size; i++) {
        uint32_t byte = data[i];
        for (int j = 7; j >= 0; j--) {
            int bit = (int)(byte >> j) & 1;
            lmc_rc_encode_bit(&encoder, cm_predict(m), bit);
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
    lmc_status status = cm_create(size, out, &m);
    if (status != LMC_OK) {
        memset(out, 0, size);
        return status;
    }
    lmc_rc_decoder decoder;
    lmc_rc_decoder_init(&decoder, payload, payload_size);
    for (size_t i = 0; i < size; i++) {
        uint32_t byte = 0;
        for (int j = 0; j < 8; j++) {
            int bit = lmc_rc_decode_bit(&decoder, cm_predict(m));
            cm_update(m, bit);
            byte = byte << 1 | (uint32_t)bit;
        }
        out[i] = (uint8_t)byte;
        cm_end_byte(m, byte);
        /* Garbage decodes to garbage quickly: stop at the first sign. */
        if (lmc_rc_decoder_failed(&decoder)) {
            memset(out + i + 1, 0, size - i - 1);
            status = LMC_ERR_CORRUPT;
            break;
        }
    }
    cm_free(m);
    return status;
}
