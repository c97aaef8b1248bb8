/*
 * Integer CDFs from logits, and symbol coding under them (see coder.h).
 *
 * ---- numerics v1: logits to CDF (normative; docs/FORMAT.md) ----
 *
 * Input: n >= 1 float logits l[0..n-1] (any values, NaN allowed), with
 * n <= 2^20. Output: cum[0..n], cum[0] = 0, cum[n] = T = 2^28
 * (LMC_CDF_BITS), every frequency f[i] = cum[i+1] - cum[i] >= 1. All float
 * operations are IEEE-754 binary32, round to nearest even, no FMA, no
 * flush-to-zero.
 *
 *  1. m = maximum of the logits, scanning i = 0..n-1 with "if (l[i] > m)
 *     m = l[i]" from m = -inf; NaN never compares greater, so it counts as
 *     -inf.
 *  2. Weights e[i]:
 *       if m = -inf (every logit is -inf or NaN): e[i] = 1 for all i
 *         (uniform);
 *       else if l[i] is NaN or -inf:  e[i] = 0;
 *       else if l[i] == m:            e[i] = 1   (this also covers m = +inf);
 *       else                          e[i] = lmc_expf(l[i] - m).
 *  3. S = lmc_sum8(e, n)  (the 8-lane order of detmath.h). S >= 1 because
 *     some e[i] = 1.
 *  4. scale = (float)(T - n) / S, where (float)(T - n) is the integer
 *     T - n rounded to the nearest float.
 *  5. f[i] = 1 + (uint32)(e[i] * scale): the product is one float multiply,
 *     truncated toward zero (it is >= 0 and below 2^29).
 *  6. F = sum of f[i] (exact, 64-bit integer). a = the lowest index whose
 *     f[a] is the maximum of f.
 *  7. Fix-up to make the total exactly T:
 *       if F < T: f[a] += T - F;
 *       if F > T: with X = F - T, first d = min(X, f[a] - 1), f[a] -= d,
 *         X -= d; then for i = 0, 1, ..., n-1 while X > 0:
 *         d = min(X, f[i] - 1), f[i] -= d, X -= d.
 *     (The sum of f[i] - 1 is F - n >= F - T = X, so X always reaches 0, and
 *     no frequency drops below 1.)
 *  8. cum[0] = 0, cum[i+1] = cum[i] + f[i].
 *
 * Floors lose less than one count per symbol, so F < T is the usual case
 * and the deficit (< n + rounding of S) goes to the most probable symbol,
 * where it costs least. F > T comes only from rounding ((float)(T - n)
 * rounded up, or S rounded below the exact sum) and is then usually
 * absorbed by f[a]; the sweep in step 7 exists so that every input, however
 * pathological, still yields a valid CDF.
 */
#include "coder/coder.h"

#include <math.h>

#include "nn/kernels.h"

#define CDF_TOTAL (1u << LMC_CDF_BITS)

/* The kernels of steps 1 to 8 (kernels.h), scalar or AVX2: the same results. */
typedef struct {
    lmc_cdf_values_fn values;
    lmc_softmax_fn softmax;
    lmc_cdf_freqs_fn freqs;
    lmc_prefix_sums_fn prefix_sums;
} cdf_kernels;

static cdf_kernels kernels_for_level(void) {
    if (lmc_simd_selected() >= LMC_SIMD_AVX2)
        return (cdf_kernels){lmc_cdf_values_avx2, lmc_softmax_avx2, lmc_cdf_freqs_avx2, lmc_prefix_sums_avx2};
    return (cdf_kernels){lmc_cdf_values_scalar, lmc_softmax_scalar, lmc_cdf_freqs_scalar, lmc_prefix_sums_scalar};
}

float lmc_cdf_values_scalar(const float *logits, int n, float *v) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) {
        v[i] = logits[i] == logits[i] ? logits[i] : -INFINITY;
        m = v[i] > m ? v[i] : m;
    }
    return m;
}

/*
 * Steps 1 to 3. The logits are first mapped to values v that give the same
 * weights under the plain rule e = lmc_expf(v - max v):
 *   NaN -> -inf, then if m = -inf:  v = 0 everywhere          (e = 1, uniform);
 *                     if m = +inf:  v = 0 for +inf, else -inf (e = 1 or 0);
 *                     otherwise:    v = l  (l = m gives lmc_expf(0) = 1,
 *                                           -inf gives lmc_expf(-inf) = 0).
 * That rule and the 8-lane sum are exactly the nn stage's softmax kernel.
 * Returns S; weight[] gets e.
 */
static float logit_weights(const cdf_kernels *k, const float *logits, int n, float *weight) {
    float m = k->values(logits, n, weight);
    if (m == -INFINITY) {
        for (int i = 0; i < n; i++) weight[i] = 0.0f;
    } else if (m == INFINITY) {
        for (int i = 0; i < n; i++) weight[i] = weight[i] == INFINITY ? 0.0f : -INFINITY;
    }
    return k->softmax(weight, n);
}

/* Step 5, with step 6's total and most probable symbol. */
uint64_t lmc_cdf_freqs_scalar(const float *weight, int n, float scale, uint32_t *freq, int *argmax) {
    uint64_t total = 0;
    uint32_t largest = 0;
    *argmax = 0;
    for (int i = 0; i < n; i++) {
        uint32_t f = 1 + (uint32_t)(weight[i] * scale);
        freq[i] = f;
        total += f;
        if (f > largest) {
            largest = f;
            *argmax = i;
        }
    }
    return total;
}

void lmc_prefix_sums_scalar(uint32_t *cum, int n) {
    cum[0] = 0;
    for (int i = 0; i < n; i++) cum[i + 1] += cum[i];
}

/* Step 7 when the floored frequencies overshoot T: takes `excess` counts
 * from the most probable symbol, then from the others in index order,
 * never below 1. */
static void remove_excess(uint32_t *freq, int n, int argmax, uint64_t excess) {
    uint64_t take = LMC_MIN(excess, (uint64_t)freq[argmax] - 1);
    freq[argmax] -= (uint32_t)take;
    excess -= take;
    for (int i = 0; i < n && excess > 0; i++) {
        take = LMC_MIN(excess, (uint64_t)freq[i] - 1);
        freq[i] -= (uint32_t)take;
        excess -= take;
    }
}

void lmc_cdf_from_logits(const float *logits, int n, float *scratch, uint32_t *cum) {
    const cdf_kernels k = kernels_for_level();
    float *weight = scratch;
    float scale = (float)(CDF_TOTAL - (uint32_t)n) / logit_weights(&k, logits, n, weight);

    /* Frequencies are built in cum[1..n] and turned into sums at the end. */
    uint32_t *freq = cum + 1;
    int argmax;
    uint64_t total = k.freqs(weight, n, scale, freq, &argmax);
    if (total < CDF_TOTAL)
        freq[argmax] += (uint32_t)(CDF_TOTAL - total);
    else if (total > CDF_TOTAL)
        remove_excess(freq, n, argmax, total - CDF_TOTAL);
    k.prefix_sums(cum, n);
}

/* Branch-free binary search: the answer stays in [base, base + len) with
 * cum[base] <= target; each step keeps the upper or lower part (the two may
 * overlap by one), which compiles to a conditional move instead of an
 * unpredictable branch. */
int lmc_cdf_find(const uint32_t *cum, int n, uint32_t target) {
    const uint32_t *base = cum;
    int len = n;
    while (len > 1) {
        int half = len / 2;
        base = base[half] <= target ? base + half : base;
        len -= half;
    }
    return (int)(base - cum);
}

void lmc_rc_encode_symbol(lmc_rc_encoder *enc, const uint32_t *cum, int s) {
    lmc_rc_encode(enc, cum[s], cum[s + 1] - cum[s], LMC_CDF_BITS);
}

int lmc_rc_decode_symbol(lmc_rc_decoder *dec, const uint32_t *cum, int n) {
    uint32_t target = lmc_rc_decode_target(dec, LMC_CDF_BITS);
    int s = lmc_cdf_find(cum, n, target);
    lmc_rc_decode_update(dec, cum[s], cum[s + 1] - cum[s]);
    return s;
}
