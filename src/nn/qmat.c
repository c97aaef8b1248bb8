/*
 * int8 matrices and the two per-row quantisation rules.
 *
 * The rules are part of the archive format (every decoder must reproduce
 * them, CUDA included). With QMAX = 127 for weights (lmc_quantize_row),
 * QMAX = LMC_ACT_QMAX = 32512 for numerics v1's activations
 * (lmc_quantize_activation) and QMAX = LMC_ACT7_QMAX = 63 for numerics v2's
 * (lmc_quantize_activation7):
 *   max_abs = max over i of fabsf(x[i])           (order-free)
 *   scale   = max_abs / (float)QMAX               (one IEEE float division)
 *   q[i]    = round_half_away(clamp(x[i] / scale, -QMAX, QMAX))
 * where x[i] / scale is an IEEE float division and round_half_away is
 * C's roundf (an exact operation). A row whose scale is not > 0 (all zeros,
 * or so tiny that max_abs / QMAX underflows to 0) quantises to zeros with
 * scale 0. NaN inputs quantise to 0.
 *
 * An activation's int16 q is stored as two int8 planes:
 *   hi[i] = floor((q[i] + 128) / 256)   in [-127, 127]
 *   lo[i] = q[i] - 256 * hi[i]          in [-128, 127]
 * so each plane multiplies int8 weights with the int8 kernels. A 7-bit
 * activation's planes are hi = 0, lo = q.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cuda.h"
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
    lmc_cuda_forget(m);
    free(m->row_sum);
    m->row_sum = NULL;
}

/* roundf(clamp(v, -qmax, qmax)) without a libm call or unpredictable
 * branches: for |v| < 2^23 the truncation and the fraction v - trunc(v) are
 * exact, so comparing the fraction with 0.5 gives exactly
 * round-half-away-from-zero. */
static int quantize_value(float v, float qmax) {
    if (!(v == v))
        return 0;
    float clamped = v > qmax ? qmax : v < -qmax ? -qmax : v;
    int i = (int)clamped;
    float fraction = clamped - (float)i;
    return i + (fraction >= 0.5f) - (fraction <= -0.5f);
}

static float max_abs_of(const float *x, int n) {
    float max_abs = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > max_abs)
            max_abs = a;
    }
    return max_abs;
}

/* The rule with a QMAX of at most 127: one int8 per value. */
static float quantize_int8(const float *x, int n, float qmax, int8_t *q) {
    float scale = max_abs_of(x, n) / qmax;
    if (!(scale > 0.0f)) {
        memset(q, 0, (size_t)(n > 0 ? n : 0));
        return 0.0f;
    }
    for (int i = 0; i < n; i++)
        q[i] = (int8_t)quantize_value(x[i] / scale, qmax);
    return scale;
}

float lmc_quantize_row_scalar(const float *x, int n, int8_t *q) {
    return quantize_int8(x, n, 127.0f, q);
}

float lmc_quantize_activation7_scalar(const float *x, int n, int8_t *planes) {
    memset(planes, 0, (size_t)(n > 0 ? n : 0));
    return quantize_int8(x, n, (float)LMC_ACT7_QMAX, planes + (n > 0 ? n : 0));
}

float lmc_quantize_activation_scalar(const float *x, int n, int8_t *planes) {
    float scale = max_abs_of(x, n) / (float)LMC_ACT_QMAX;
    if (!(scale > 0.0f)) {
        memset(planes, 0, 2 * (size_t)(n > 0 ? n : 0));
        return 0.0f;
    }
    int8_t *hi = planes, *lo = planes + n;
    for (int i = 0; i < n; i++) {
        int q = quantize_value(x[i] / scale, (float)LMC_ACT_QMAX);
        /* floor((q + 128) / 256) with a non-negative dividend, so that C's
         * truncating division is the floor. */
        int h = (q + 128 + 256 * 128) / 256 - 128;
        hi[i] = (int8_t)h;
        lo[i] = (int8_t)(q - 256 * h);
    }
    return scale;
}

float lmc_quantize_row(const float *x, int n, int8_t *q) {
    if (lmc_simd_selected() >= LMC_SIMD_AVX2)
        return lmc_quantize_row_avx2(x, n, q);
    return lmc_quantize_row_scalar(x, n, q);
}

float lmc_quantize_activation(const float *x, int n, int8_t *planes) {
    if (lmc_simd_selected() >= LMC_SIMD_AVX2)
        return lmc_quantize_activation_avx2(x, n, planes);
    return lmc_quantize_activation_scalar(x, n, planes);
}

float lmc_quantize_activation7(const float *x, int n, int8_t *planes) {
    if (lmc_simd_selected() >= LMC_SIMD_AVX2)
        return lmc_quantize_activation7_avx2(x, n, planes);
    return lmc_quantize_activation7_scalar(x, n, planes);
}
