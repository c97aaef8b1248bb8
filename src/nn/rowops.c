/*
 * Scalar per-row float operations: the reference order that
 * simd/rowops_avx2.c reproduces bit for bit (see kernels.h).
 */
#include "common/detmath.h"
#include "nn/kernels.h"

float lmc_softmax_scalar(float *x, int n) {
    float max = x[0];
    for (int t = 1; t < n; t++)
        if (x[t] > max)
            max = x[t];
    for (int t = 0; t < n; t++)
        x[t] = lmc_expf(x[t] - max);
    return lmc_sum8(x, n);
}

void lmc_swiglu_scalar(const float *gate, const float *up, int n, float *out) {
    for (int i = 0; i < n; i++)
        out[i] = lmc_silu(gate[i]) * up[i];
}
