/*
 * What the CUDA files share: device copies of the weights, the exact
 * int16 x int8 matmul kernel's launcher, and the error policy.
 */
#ifndef LMC_NN_CUDA_INTERNAL_CUH
#define LMC_NN_CUDA_INTERNAL_CUH

#include <cuda_runtime.h>

extern "C" {
#include "nn/cuda.h"
}

/* Weight rows and activation planes on the device are padded with zeros to
 * a multiple of this many columns, so the kernel reads whole aligned words
 * and never checks the column bound (padded products are 0). */
#define LMC_CUDA_K_BYTES 64

static inline size_t lmc_cuda_pitch(int cols) {
    return ((size_t)cols + LMC_CUDA_K_BYTES - 1) / LMC_CUDA_K_BYTES * LMC_CUDA_K_BYTES;
}

/* A matrix's device copy: [rows][pitch] int8 and [rows] scales. */
typedef struct {
    const int8_t *q;
    const float *scale;
    int rows, cols;
    size_t pitch;
} lmc_cuda_weights;

/* The device copy of w (uploaded on first use, kept until
 * lmc_qmat_release; w must be prepared). */
lmc_status lmc_cuda_weights_of(const lmc_qmat *w, lmc_cuda_weights *out);

/* Matrices one launch multiplies with the same input (lmc_matmul_q8_multi
 * is used with 3). */
#define LMC_CUDA_MAX_JOBS 4

/* y[j][t][o] for each of the n_jobs matrices w[j] (same columns), t <
 * n_rows, o < w[j]->rows, as the CPU computes it (nn.h), from x =
 * [n_rows][2][pitch] planes (hi, then lo, zero padded) and their scales,
 * all in device memory; queued on stream as one launch. */
cudaError_t lmc_cuda_launch_q8(const lmc_cuda_weights *const *w, float *const *y, int n_jobs, const int8_t *x,
                               const float *x_scale, int n_rows, cudaStream_t stream);

/* Makes the chosen device the calling thread's current one (CUDA keeps it
 * per thread): every entry point calls it before its first CUDA call. */
cudaError_t lmc_cuda_bind(void);

/* LMC_OK for success; any failure but a full device memory also marks the
 * device unusable from then on (CUDA errors are mostly sticky). */
lmc_status lmc_cuda_check(cudaError_t error);

#endif /* LMC_NN_CUDA_INTERNAL_CUH */
