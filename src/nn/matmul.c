/*
 * int16 x int8 matmul: dispatch to the SIMD kernel and split output rows
 * across the thread pool. Each output is computed whole by one kernel call,
 * so the split (and the kernel chosen) never changes a result.
 */
#include "nn/cuda.h"
#include "nn/kernels.h"

/* Output rows are handed to threads in blocks of this many (the AVX-512
 * kernel's tile height), so no tile straddles two threads. */
#define MATMUL_ROW_BLOCK 4
/* Below this many (int16 x int8) multiply-adds, about 3 us of AVX2 work,
 * handing rows to another thread costs more than it saves. At 2^17 one
 * token's q/k/v and w_down products of text-en (131072 and 196608) go
 * parallel: one sequence decoded on 2 threads of a quiet Zen 3, 6025-6087
 * -> 6415-6601 tokens/s (2^16, w_o too: 6071-6531; under load all three
 * within noise of each other). */
#define MATMUL_PARALLEL_MIN_MACS (1 << 17)

/* Lanes of the scalar kernel's partial sums: the fixed-width inner loop is
 * a shape compilers vectorise (the sums are exact integers, so the lanes
 * change nothing). */
#define SCALAR_LANES 16

/* The exact int32 dot products of both planes with one weight row. */
static void dot_planes(const int8_t *hi, const int8_t *lo, const int8_t *w, size_t n, int32_t *acc_hi,
                       int32_t *acc_lo) {
    int32_t lanes_hi[SCALAR_LANES] = {0}, lanes_lo[SCALAR_LANES] = {0};
    size_t k = 0;
    for (; k + SCALAR_LANES <= n; k += SCALAR_LANES)
        for (int j = 0; j < SCALAR_LANES; j++) {
            lanes_hi[j] += (int32_t)hi[k + j] * (int32_t)w[k + j];
            lanes_lo[j] += (int32_t)lo[k + j] * (int32_t)w[k + j];
        }
    int32_t sum_hi = 0, sum_lo = 0;
    for (int j = 0; j < SCALAR_LANES; j++) {
        sum_hi += lanes_hi[j];
        sum_lo += lanes_lo[j];
    }
    for (; k < n; k++) {
        sum_hi += (int32_t)hi[k] * (int32_t)w[k];
        sum_lo += (int32_t)lo[k] * (int32_t)w[k];
    }
    *acc_hi = sum_hi;
    *acc_lo = sum_lo;
}

void lmc_q8_kernel_scalar(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end) {
    const size_t cols = (size_t)w->cols;
    for (int t = 0; t < n_rows; t++) {
        const int8_t *hi = xq + 2 * (size_t)t * cols, *lo = hi + cols;
        float *out = y + (size_t)t * (size_t)w->rows;
        for (int o = row_begin; o < row_end; o++) {
            int32_t acc_hi, acc_lo;
            dot_planes(hi, lo, w->q + (size_t)o * cols, cols, &acc_hi, &acc_lo);
            float value = ((float)acc_hi * 256.0f + (float)acc_lo) * (xscale[t] * w->scale[o]);
            out[o] = bias ? value + bias[o] : value;
        }
    }
}

lmc_q8_kernel lmc_q8_kernel_for(lmc_simd_level level, lmc_act_rule rule) {
    if (rule == LMC_ACT_INT7 && level >= LMC_SIMD_AVX512)
        return lmc_q7_kernel_avx512;
    if (rule == LMC_ACT_INT7 && level >= LMC_SIMD_AVX2)
        return lmc_q7_kernel_avx2;
    switch (level) {
    case LMC_SIMD_AVX512: return lmc_q8_kernel_avx512;
    case LMC_SIMD_AVX2: return lmc_q8_kernel_avx2;
    default: return lmc_q8_kernel_scalar;
    }
}

typedef struct {
    lmc_q8_kernel kernel;
    const lmc_matmul_job *jobs;
    int n_jobs;
    const int8_t *xq;
    const float *xscale;
    int n_rows;
} multi_context;

static int row_blocks(const lmc_qmat *w) {
    return (w->rows + MATMUL_ROW_BLOCK - 1) / MATMUL_ROW_BLOCK;
}

/* Blocks [begin, end) index the concatenated row blocks of all jobs. */
static void multi_range(void *ctx_, int begin, int end) {
    const multi_context *ctx = ctx_;
    int first = 0;
    for (int j = 0; j < ctx->n_jobs && first < end; j++) {
        const lmc_matmul_job *job = &ctx->jobs[j];
        int blocks = row_blocks(job->w);
        int lo = LMC_MAX(begin, first) - first, hi = LMC_MIN(end, first + blocks) - first;
        if (lo < hi) {
            int row_begin = lo * MATMUL_ROW_BLOCK;
            int row_end = LMC_MIN(hi * MATMUL_ROW_BLOCK, job->w->rows);
            ctx->kernel(job->w, ctx->xq, ctx->xscale, ctx->n_rows, job->bias, job->y, row_begin, row_end);
        }
        first += blocks;
    }
}

void lmc_matmul_q8_multi(lmc_pool *pool, const lmc_matmul_job *jobs, int n_jobs, const int8_t *xq,
                         const float *xscale, int n_rows, lmc_act_rule rule) {
    if (n_rows <= 0 || n_jobs <= 0)
        return;
    lmc_simd_level level = lmc_simd_selected();
    int blocks = 0;
    int64_t macs = 0;
    for (int j = 0; j < n_jobs; j++) {
        blocks += row_blocks(jobs[j].w);
        macs += (int64_t)jobs[j].w->rows * jobs[j].w->cols * n_rows;
        if (!jobs[j].w->row_sum) { /* not prepared: the AVX-512 and 7-bit kernels need row_sum */
            level = LMC_MIN(level, LMC_SIMD_AVX2);
            rule = LMC_ACT_INT16; /* the general kernels compute 7-bit inputs too */
        }
    }
    /* The GPU (nn/cuda.h) gives the same bits; if it fails, the CPU recomputes everything. */
    if (lmc_cuda_enabled() && macs >= lmc_cuda_min_macs() &&
        lmc_cuda_matmul_q8_multi(pool, jobs, n_jobs, xq, xscale, n_rows) == LMC_OK)
        return;
    multi_context ctx = {lmc_q8_kernel_for(level, rule), jobs, n_jobs, xq, xscale, n_rows};
    if (macs < MATMUL_PARALLEL_MIN_MACS)
        multi_range(&ctx, 0, blocks);
    else
        lmc_pool_for(pool, blocks, multi_range, &ctx);
}

void lmc_matmul_q8(lmc_pool *pool, const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                   const float *bias, float *y, lmc_act_rule rule) {
    lmc_matmul_job job = {w, bias, y};
    lmc_matmul_q8_multi(pool, &job, 1, xq, xscale, n_rows, rule);
}
