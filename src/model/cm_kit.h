/*
 * Building blocks shared by lmc's context-mixing models (cm.c for bytes,
 * image.c for pixels): the logistic domain (stretch and squash tables built
 * from integers only), adaptive state maps, adaptive probability maps
 * (APM/SSE), the mixer's weight update and a 32-bit hash. Everything here
 * is integer arithmetic, so the models stay bit-exact on every machine.
 */
#ifndef LMC_CM_KIT_H
#define LMC_CM_KIT_H

#include <stdint.h>

#include "common/common.h"

/* Mixer and map updates shift negative values right; C leaves that to the
 * implementation, and the formats need the arithmetic (flooring) shift. */
_Static_assert((-3 >> 1) == -2, "lmc's context-mixing models need an arithmetic right shift");

#define LOGISTIC_LIMIT 2047  /* logistic domain x / 256, clamped to about +-8 */
#define STATE_MAP_LIMIT 1023 /* state maps average over up to this many hits */
#define APM_CELLS 33         /* interpolation points over the logistic domain */
#define APM_RATE 6           /* cells move 1/64 of the error */

/* Tables every model builds once at start (about 26 KiB). */
typedef struct {
    int16_t stretch[4096];                    /* ln(p / (1 - p)) * 256 at p = i / 4096 */
    uint16_t squash[4096];                    /* 65536 / (1 + e^(-x / 256)) at x = i - 2048 */
    uint16_t reciprocal[STATE_MAP_LIMIT + 1]; /* 65536 / (n + 1.5): state-map learning rates */
    uint16_t apm_identity[APM_CELLS];         /* squash at each APM cell */
} lmc_cm_tables;

void lmc_cm_tables_build(lmc_cm_tables *t);

static inline int clamp_logistic(int x) {
    return LMC_MAX(-LOGISTIC_LIMIT, LMC_MIN(x, LOGISTIC_LIMIT));
}

static inline int stretch(const lmc_cm_tables *t, uint32_t p16) {
    return t->stretch[p16 >> 4];
}

/* x must already be clamped. */
static inline uint32_t squash(const lmc_cm_tables *t, int x) {
    return t->squash[x + 2048];
}

static inline uint32_t hash2(uint32_t a, uint32_t b) {
    uint32_t h = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u;
    h ^= h >> 15;
    h *= 0xC2B2AE3Du;
    h ^= h >> 13;
    return h;
}

/* ---- State maps: context -> probability, learning rate 1/n ----
 * An entry holds P(1) in its top 22 bits and a hit count in the low 10;
 * STATE_MAP_START is P(1) = 1/2 with no hits. */
#define STATE_MAP_START (1u << 31)

static inline uint32_t state_map_p16(uint32_t entry) {
    return entry >> 16;
}

/* Moves the entry 1/(count + 1.5) of the way to the bit; the count stops at
 * limit (<= STATE_MAP_LIMIT), so a lower limit keeps the map adapting faster. */
static inline void state_map_update_limited(uint32_t *entry, int bit, const uint16_t *reciprocal, uint32_t limit) {
    uint32_t count = *entry & 1023;
    int32_t p22 = (int32_t)(*entry >> 10);
    int32_t target = bit ? (1 << 22) - 1 : 0;
    p22 += (int32_t)(((int64_t)(target - p22) * reciprocal[count]) >> 16);
    count += count < limit;
    *entry = (uint32_t)p22 << 10 | count;
}

static inline void state_map_update(uint32_t *entry, int bit, const uint16_t *reciprocal) {
    state_map_update_limited(entry, bit, reciprocal, STATE_MAP_LIMIT);
}

/* ---- Adaptive probability maps (SSE) ----
 *
 * A context selects 33 cells spread over the logistic domain; the input
 * interpolates between two of them. Cells are stored as their difference
 * (mod 2^16) from the identity curve, so a zeroed table starts as the
 * identity and a large one needs no initialisation pass.
 */
typedef struct {
    uint16_t *cells;
    uint32_t index;         /* the cell nearer the last input, for the update */
    uint32_t cell;          /* its position among its context's cells */
} apm;

/* x: the input in the logistic domain (clamped). */
static inline uint32_t apm_predict(apm *a, const uint16_t *identity, uint32_t context, int x) {
    int s = x + 2048;       /* 1 .. 4095 */
    int low = s >> 7, weight = s & 127;
    uint32_t base = context * APM_CELLS + (uint32_t)low;
    uint32_t v0 = (uint16_t)(a->cells[base] + identity[low]);
    uint32_t v1 = (uint16_t)(a->cells[base + 1] + identity[low + 1]);
    a->cell = (uint32_t)(low + (weight >> 6));
    a->index = base + (uint32_t)(weight >> 6);
    return (v0 * (uint32_t)(128 - weight) + v1 * (uint32_t)weight) >> 7;
}

static inline void apm_update(apm *a, const uint16_t *identity, int bit) {
    int32_t value = (uint16_t)(a->cells[a->index] + identity[a->cell]);
    value += ((bit ? 65535 : 0) - value) >> APM_RATE;
    a->cells[a->index] = (uint16_t)((uint32_t)value - identity[a->cell]);
}

/* ---- Mixers: weights in 16.16 fixed point ---- */
#define MIXER_WEIGHT_LIMIT (1 << 22) /* +-64 */

/* The per-bit loops run over a handful of inputs; fully unrolled they run
 * 15-30% faster (GCC unrolls them only at -O3). */
#define UNROLLED _Pragma("GCC unroll 8")

/* weights += inputs * error (error: the bit's surprise, scaled, in 1/65536). */
static inline void mixer_train_n(int32_t *restrict weights, const int32_t *restrict inputs, int n, int32_t error) {
    UNROLLED
    for (int i = 0; i < n; i++) {
        int32_t updated = weights[i] + ((inputs[i] * error + (1 << 15)) >> 16);
        weights[i] = LMC_MAX(-MIXER_WEIGHT_LIMIT, LMC_MIN(updated, MIXER_WEIGHT_LIMIT));
    }
}

#endif /* LMC_CM_KIT_H */
