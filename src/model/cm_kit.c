/* The tables of cm_kit.h, built from integers only (see there). */
#include "model/cm_kit.h"

/* e^(-1/256) in Q62 from its Taylor series, with integers only. */
static uint64_t exp_minus_1_256_q62(void) {
    uint64_t term = (uint64_t)1 << 62, sum = term;
    for (unsigned k = 1; term != 0; k++) {
        term /= 256u * k;
        sum = (k & 1) ? sum - term : sum + term;
    }
    return sum;
}

/* squash(x) for x >= 0 from e^(-x/256) in Q32, built by repeated
 * multiplication (after 2048 steps the error is still below 2^-20), and
 * mirrored for x < 0. */
static void build_squash(lmc_cm_tables *t) {
    const uint64_t step = exp_minus_1_256_q62() >> 30;
    uint64_t e = (uint64_t)1 << 32;
    for (int x = 0; x < 2048; x++) {
        uint64_t denominator = ((uint64_t)1 << 32) + e;
        uint64_t p = (((uint64_t)1 << 48) + denominator / 2) / denominator;
        p = LMC_MIN(p, 65535u);
        t->squash[2048 + x] = (uint16_t)p;
        t->squash[2048 - x] = (uint16_t)(65536 - p);
        e = (e * step) >> 32;
    }
    t->squash[0] = t->squash[1];
}

/* stretch = the inverse of squash on the 12-bit probability grid. */
static void build_stretch(lmc_cm_tables *t) {
    int next = 0;
    for (int x = -LOGISTIC_LIMIT; x <= LOGISTIC_LIMIT; x++) {
        int p12 = (t->squash[x + 2048] + 8) >> 4;
        for (; next <= p12 && next < 4096; next++)
            t->stretch[next] = (int16_t)x;
    }
    for (; next < 4096; next++)
        t->stretch[next] = LOGISTIC_LIMIT;
}

void lmc_cm_tables_build(lmc_cm_tables *t) {
    build_squash(t);
    build_stretch(t);
    for (int n = 0; n <= STATE_MAP_LIMIT; n++)
        t->reciprocal[n] = (uint16_t)(131072 / (2 * n + 3));
    for (int i = 0; i < APM_CELLS; i++)
        t->apm_identity[i] = (uint16_t)squash(t, clamp_logistic((i - 16) * 128));
}
