/*
 * int8 matmul: dispatch to the SIMD kernel and split output rows across
 * the thread pool. Each output is computed whole by one kernel call, so the
 * split (and the kernel chosen) never changes a result.
 */
#include "nn/kernels.h"

/* Output rows are handed to threads in blocks of this many (the AVX-512
 * kernel's tile height), so no tile straddles two threads. */
#define MATMUL_ROW_BLOCK 4
/* Below this many multiply-adds (~25 us of AVX-512 work) a thread wake-up
 * costs more than it saves. */
#define MATMUL_PARALLEL_MIN_MACS (1 << 20)

void lmc_q8_kernel_scalar(const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                          const float *bias, float *y, int row_begin, int row_end) {
    const size_t cols = (size_t)w->cols;
    for (int t = 0; t < n_rows; t++) {
        const int8_t *x = xq + (size_t)t * cols;
        float *out = y + (size_t)t * (size_t)w->rows;
        for (int o = row_begin; o < row_end; o++) {
            const int8_t *row = w->q + (size_t)o * cols;
            int32_t acc = 0;
            for (size_t k = 0; k < cols; k++)
                acc += (int32_t)x[k] * (int32_t)row[k];
            float value = (float)acc * (xscale[t] * w->scale[o]);
            out[o] = bias ? value + bias[o] : value;
        }
    }
}

lmc_q8_kernel lmc_q8_kernel_for(lmc_simd_level level) {
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
                         const float *xscale, int n_rows) {
    if (n_rows <= 0 || n_jobs <= 0)
        return;
    lmc_simd_level level = lmc_simd_selected();
    int blocks = 0;
    int64_t macs = 0;
    for (int j = 0; j < n_jobs; j++) {
        blocks += row_blocks(jobs[j].w);
        macs += (int64_t)jobs[j].w->rows * jobs[j].w->cols * n_rows;
        if (!jobs[j].w->row_sum) /* not prepared: the AVX-512 kernel needs row_sum */
            level = LMC_MIN(level, LMC_SIMD_AVX2);
    }
    multi_context ctx = {lmc_q8_kernel_for(level), jobs, n_jobs, xq, xscale, n_rows};
    if (macs < MATMUL_PARALLEL_MIN_MACS)
        multi_range(&ctx, 0, blocks);
    else
        lmc_pool_for(pool, blocks, multi_range, &ctx);
}

void lmc_matmul_q8(lmc_pool *pool, const lmc_qmat *w, const int8_t *xq, const float *xscale, int n_rows,
                   const float *bias, float *y) {
    lmc_matmul_job job = {w, bias, y};
    lmc_matmul_q8_multi(pool, &job, 1, xq, xscale, n_rows);
}
