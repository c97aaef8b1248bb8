/*
 * Optional CUDA backend (src/nn/cuda/, built with -DLMC_CUDA=ON, which
 * defines LMC_HAVE_CUDA): the int16 x int8 matmul, and the whole Llama
 * forward pass built on it.
 *
 * The GPU computes exactly what lmc_matmul_q8_multi computes on the CPU:
 * each plane's dot products accumulate exactly in int32 (dp4a), and each
 * output is ((float)acc_hi * 256 + (float)acc_lo) * (xscale[t] * scale[o])
 * in IEEE float with round-to-nearest, no FMA contraction and no flushing
 * of subnormals; the bias is added on the host. So results are the same
 * bits whichever side computes them, and archives stay interchangeable.
 *
 * Use: lmc_cuda_use (the library's device option, the CLI's --device), or
 * LMC_DEVICE=cuda[:N] / LMC_GPU=1 in the environment, makes every new
 * lmc_llama_state run its forward passes on the GPU when one is present,
 * and lmc_matmul_q8_multi send matmuls of at least lmc_cuda_min_macs()
 * multiply-adds there; otherwise, and whenever a CUDA call fails, the CPU
 * computes them as before.
 *
 * Weights are uploaded once per matrix and kept on the device, keyed by
 * the matrix's data (q, scale, row_sum, rows, cols): a prepared matrix must
 * not change until lmc_qmat_release, which drops the device copy. Only
 * prepared matrices (row_sum set) go to the GPU. Any number of threads may
 * call at once (each call takes its own stream and buffers).
 */
#ifndef LMC_NN_CUDA_H
#define LMC_NN_CUDA_H

#include <stdint.h>
#include <stdio.h>

#include "nn/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef LMC_HAVE_CUDA

/* 1 if the chosen CUDA device can be used (whatever LMC_GPU says). */
int lmc_cuda_available(void);
/* Chooses where forward passes run from now on, process-wide, over the
 * environment's LMC_DEVICE / LMC_GPU: enabled 0 for the CPU, 1 for CUDA
 * device `index` (which can be set only before the device is first used).
 * LMC_OK, or LMC_ERR_UNSUPPORTED with the reason in why; the CPU is then
 * used. */
lmc_status lmc_cuda_use(int enabled, int index, char *why, size_t why_size);
/* 1 if lmc_matmul_q8_multi should try the GPU: available and asked for by
 * LMC_GPU=1 / LMC_DEVICE=cuda (or lmc_cuda_force). */
int lmc_cuda_enabled(void);
/* Smallest matmul (n_rows * rows * cols summed over the jobs) worth a trip
 * to the GPU; LMC_GPU_MIN_MACS overrides the default. */
int64_t lmc_cuda_min_macs(void);
/* Tests: enabled = 1 or 0 overrides the environment, with min_macs as the
 * threshold; enabled = -1 returns to the environment's settings. */
void lmc_cuda_force(int enabled, int64_t min_macs);
/* lmc_matmul_q8_multi on the GPU, same bits (pool, which may be NULL,
 * helps copy the results out). LMC_OK, or an error (no device, an
 * unprepared matrix, out of device memory, a CUDA failure) with no output
 * written, after which the caller computes on the CPU. */
lmc_status lmc_cuda_matmul_q8_multi(lmc_pool *pool, const lmc_matmul_job *jobs, int n_jobs, const int8_t *xq,
                                    const float *xscale, int n_rows);
/* Drops the device copy of a matrix (lmc_qmat_release calls it). */
void lmc_cuda_forget(const lmc_qmat *w);
/* Matmul calls the GPU has served (tests check the GPU really ran). */
uint64_t lmc_cuda_matmul_count(void);

/* The whole Llama forward pass on the device (nn/cuda/llama_cuda.cu), with
 * the KV caches of n_seqs sequences there: the same logits, bit for bit, as
 * lmc_llama_forward on the CPU. rope_cos/rope_sin are the CPU state's
 * tables ([max_pos][head_dim / 2]). The model must outlive the state. */
typedef struct lmc_cuda_llama lmc_cuda_llama;
lmc_status lmc_cuda_llama_create(const lmc_llama *model, lmc_nn_rules rules, int n_seqs, int max_pos, int max_rows,
                                 const float *rope_cos, const float *rope_sin, lmc_cuda_llama **out);
void lmc_cuda_llama_free(lmc_cuda_llama *state);
/* lmc_llama_forward's contract; on an error the caches may be damaged
 * (the caller recomputes them on the CPU). */
lmc_status lmc_cuda_llama_forward(lmc_cuda_llama *state, const int *seqs, const int32_t *tokens,
                                  const int *positions, int n, float *logits);
/* lmc_llama_slide's contract; on an error the caches may be damaged. */
lmc_status lmc_cuda_llama_slide(lmc_cuda_llama *state, const int *seqs, int n, int stride, int length);
/* Forward calls the GPU has served (tests check the GPU really ran). */
uint64_t lmc_cuda_llama_calls(void);
/* Tests: the next lmc_cuda_llama_forward fails (without marking the device
 * unusable), as a device error would. */
void lmc_cuda_fail_next_forward(void);

#else /* built without CUDA: the CPU does everything */

static inline int lmc_cuda_available(void) { return 0; }
static inline lmc_status lmc_cuda_use(int enabled, int index, char *why, size_t why_size) {
    (void)index;
    if (!enabled)
        return LMC_OK;
    snprintf(why, why_size, "this lmc was built without CUDA (cmake -DLMC_CUDA=ON, needs nvcc)");
    return LMC_ERR_UNSUPPORTED;
}
static inline int lmc_cuda_enabled(void) { return 0; }
static inline int64_t lmc_cuda_min_macs(void) { return INT64_MAX; }
static inline void lmc_cuda_force(int enabled, int64_t min_macs) { (void)enabled, (void)min_macs; }
static inline lmc_status lmc_cuda_matmul_q8_multi(lmc_pool *pool, const lmc_matmul_job *jobs, int n_jobs,
                                                  const int8_t *xq, const float *xscale, int n_rows) {
    (void)pool, (void)jobs, (void)n_jobs, (void)xq, (void)xscale, (void)n_rows;
    return LMC_ERR_UNSUPPORTED;
}
static inline void lmc_cuda_forget(const lmc_qmat *w) { (void)w; }
static inline uint64_t lmc_cuda_matmul_count(void) { return 0; }
typedef struct lmc_cuda_llama lmc_cuda_llama;
static inline lmc_status lmc_cuda_llama_create(const lmc_llama *model, lmc_nn_rules rules, int n_seqs, int max_pos,
                                               int max_rows, const float *rope_cos, const float *rope_sin,
                                               lmc_cuda_llama **out) {
    (void)model, (void)rules, (void)n_seqs, (void)max_pos, (void)max_rows, (void)rope_cos, (void)rope_sin;
    *out = NULL;
    return LMC_ERR_UNSUPPORTED;
}
static inline void lmc_cuda_llama_free(lmc_cuda_llama *state) { (void)state; }
static inline lmc_status lmc_cuda_llama_forward(lmc_cuda_llama *state, const int *seqs, const int32_t *tokens,
                                                const int *positions, int n, float *logits) {
    (void)state, (void)seqs, (void)tokens, (void)positions, (void)n, (void)logits;
    return LMC_ERR_UNSUPPORTED;
}
static inline lmc_status lmc_cuda_llama_slide(lmc_cuda_llama *state, const int *seqs, int n, int stride,
                                              int length) {
    (void)state, (void)seqs, (void)n, (void)stride, (void)length;
    return LMC_ERR_UNSUPPORTED;
}
static inline uint64_t lmc_cuda_llama_calls(void) { return 0; }
static inline void lmc_cuda_fail_next_forward(void) {}

#endif

#ifdef __cplusplus
}
#endif

#endif /* LMC_NN_CUDA_H */
