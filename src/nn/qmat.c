/*
 * int8 matrices and per-row activation quantisation.
 *
 * The quantisation rule is part of the archive format (every decoder must
 * reproduce it, CUDA included):
 *   max_abs = max over i of fabsf(x[i])           (order-free)
 *   scale   = max_abs / 127.0f                    (one IEEE float division)
 *   q[i]    = round_half_away(clamp(x[i] / scale, -127, 127))
 * where x[i] / scale is an IEEE float division and round_half_away is
 * C's roundf (an exact operation). A row whose scale is not > 0 (all zeros,
 * or so tiny that max_abs / 127 underflows to 0) quantises to zeros with
 * scale 0. NaN inputs quantise to 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/kernels.h"

lmc_status lmc_qmat_prepare(lmc_qmat *m) {
    if (!m || !m->q || m->rows <= 0 || m->cols <= 0)
        return LMC_ERR_PARAM;
    int32_t *sums = malloc((size_t)m->rows * sizeof *sums);
    if (!sums)
        return LMC_ERR_NOMEM;
    for (int o = 0; o < m->rows; o++) {
        const int8_t *row = m->q + (size_t)o * (size_t)m->cols;
        int32_t sum = 0;
        for (int k = 0; k < m->cols; k++)
            sum += row[k];
        sums[o] = sum;
    }
    m->row_sum = sums;
    return LMC_OK;
}

void lmc_qmat_release(lmc_qmat *m) {
    if (!m)
        return;
    free(m->row_sum);
    m->row_sum = NULL;
}

/* roundf(clamp(v, -127, 127)) without a libm call or unpredictable
 * branches: for |v| < 127 the truncation and the fraction v - trunc(v) are
 * exact, so comparing the fraction with 0.5 gives exactly
 * round-half-away-from-zero. */
static int8_t quantize_value(float v) {
    if (!(v == v))
        return 0;
    float clamped = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
    int i = (int)clamped;
    float fraction = clamped - (float)i;
    i += (fraction >= 0.5f) - (fraction <= -0.5f);
    return (int8_t)i;
}

float lmc_quantize_row_scalar(const float *x, int n, int8_t *q) {
    float max_abs = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > max_abs)
            max_abs = a;
    }
    float scale = max_abs / 127.0f;
    if (!(scale > 0.0f)) {
        memset(q, 0, (size_t)(n > 0 ? n : 0));
        return 0.0f;
    }
    for (int i = 0; i < n; i++)
        q[i] = quantize_value(x[i] / scale);
    return scale;
}

float lmc_quantize_row(const float *x, int n, int8_t *q) {
    if (lmc_simd_selected() >= LMC_SIMD_AVX2)
        return lmc_quantize_row_avx2(x, n, q);
    return lmc_quantize_row_scalar(x, n, q);
}
