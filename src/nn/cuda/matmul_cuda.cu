/*
 * The int16 x int8 matmul on a CUDA device, bit-identical to the CPU
 * kernels (contract in nn/cuda.h and nn/kernels.h).
 *
 * Exactness: the dot products are int32 sums of int8 products (dp4a),
 * exact in any order; the dequantising expression uses the _rn intrinsics
 * (IEEE round-to-nearest, never fused) and the file is compiled with
 * -fmad=false -ftz=false, so it rounds exactly as the CPU's
 *   ((float)acc_hi * 256.0f + (float)acc_lo) * (xscale[t] * scale[o])
 * does, subnormals included. The bias is added on the host, as the CPU
 * adds it, while the outputs are copied from pinned memory to the caller's.
 *
 * Layout on the device: weight rows and activation planes are padded with
 * zeros to a multiple of K_BYTES columns, so the kernel reads whole aligned
 * 32-bit words and never checks the column bound (padded products are 0).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cuda/internal.cuh"

/* A thread block computes TILE_O outputs x TILE_T tokens (both planes):
 * 256 threads as 16 x 16, each 4 outputs x 2 tokens, stepping through the
 * columns K_BYTES at a time through shared memory. */
#define TILE_O 64
#define TILE_T 32
#define THREADS 256
#define K_BYTES LMC_CUDA_K_BYTES
#define K_WORDS (K_BYTES / 4)
/* Shared rows of K_WORDS + 1 words: the 16 weight rows a half-warp reads
 * at once fall in 16 different banks. */
#define SHARED_STRIDE (K_WORDS + 1)
#define OUTPUTS_PER_THREAD (TILE_O / 16)
#define TOKENS_PER_THREAD (TILE_T / 16)

/* Below about this many multiply-adds 16 AVX-512 threads are quicker than
 * a round trip to the device (~40 us; bench/README.md, "GPU"). */
#define DEFAULT_MIN_MACS (INT64_C(1) << 25)

/* ---- The kernel ---- */

/* Copies one K_BYTES slice of `count` padded int8 rows (row `first` on) into
 * shared memory; rows at or past `limit` read as zeros. */
static __device__ void load_slice(int (*tile)[SHARED_STRIDE], int count, const int *rows, size_t row_words,
                                  int first, int limit, int k_word) {
    for (int i = threadIdx.x; i < count * K_WORDS; i += THREADS) {
        int r = i / K_WORDS, c = i % K_WORDS;
        tile[r][c] = first + r < limit ? rows[(size_t)(first + r) * row_words + (size_t)(k_word + c)] : 0;
    }
}

/* The matrices of one launch (blockIdx.z picks one): they share the input. */
typedef struct {
    const int8_t *w[LMC_CUDA_MAX_JOBS];
    const float *scale[LMC_CUDA_MAX_JOBS];
    float *y[LMC_CUDA_MAX_JOBS];
    int rows[LMC_CUDA_MAX_JOBS];
} q8_jobs;

/* y[t][o] for the tile of block (blockIdx.x, blockIdx.y) of matrix
 * blockIdx.z. w: [rows][cols_pad] int8; x: [n_rows][2][cols_pad] int8 (hi
 * plane, lo plane). */
static __global__ void q8_matmul_kernel(q8_jobs jobs, int cols_pad, const int8_t *__restrict__ x,
                                        const float *__restrict__ x_scale, int n_rows) {
    const int rows = jobs.rows[blockIdx.z];
    if ((int)blockIdx.x * TILE_O >= rows)
        return; /* the grid is as wide as the largest matrix */
    const int8_t *__restrict__ w = jobs.w[blockIdx.z];
    const float *__restrict__ w_scale = jobs.scale[blockIdx.z];
    float *__restrict__ y = jobs.y[blockIdx.z];
    __shared__ int w_tile[TILE_O][SHARED_STRIDE];
    __shared__ int x_tile[2 * TILE_T][SHARED_STRIDE]; /* row 2t: token t's hi plane, 2t + 1: its lo plane */
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int o0 = blockIdx.x * TILE_O, t0 = blockIdx.y * TILE_T;
    const size_t row_words = (size_t)cols_pad / 4;
    int acc_hi[OUTPUTS_PER_THREAD][TOKENS_PER_THREAD] = {}, acc_lo[OUTPUTS_PER_THREAD][TOKENS_PER_THREAD] = {};
    for (int k = 0; k < (int)row_words; k += K_WORDS) {
        load_slice(w_tile, TILE_O, (const int *)w, row_words, o0, rows, k);
        load_slice(x_tile, 2 * TILE_T, (const int *)x, row_words, 2 * t0, 2 * n_rows, k);
        __syncthreads();
#pragma unroll
        for (int c = 0; c < K_WORDS; c++) {
            int wv[OUTPUTS_PER_THREAD], hi[TOKENS_PER_THREAD], lo[TOKENS_PER_THREAD];
#pragma unroll
            for (int i = 0; i < OUTPUTS_PER_THREAD; i++)
                wv[i] = w_tile[tx + 16 * i][c];
#pragma unroll
            for (int j = 0; j < TOKENS_PER_THREAD; j++) {
                hi[j] = x_tile[2 * (ty + 16 * j)][c];
                lo[j] = x_tile[2 * (ty + 16 * j) + 1][c];
            }
#pragma unroll
            for (int i = 0; i < OUTPUTS_PER_THREAD; i++)
#pragma unroll
                for (int j = 0; j < TOKENS_PER_THREAD; j++) {
                    acc_hi[i][j] = __dp4a(wv[i], hi[j], acc_hi[i][j]);
                    acc_lo[i][j] = __dp4a(wv[i], lo[j], acc_lo[i][j]);
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < OUTPUTS_PER_THREAD; i++)
#pragma unroll
        for (int j = 0; j < TOKENS_PER_THREAD; j++) {
            const int o = o0 + tx + 16 * i, t = t0 + ty + 16 * j;
            if (o >= rows || t >= n_rows)
                continue;
            /* The CPU's expression, operation by operation. */
            float sum = __fadd_rn(__fmul_rn(__int2float_rn(acc_hi[i][j]), 256.0f), __int2float_rn(acc_lo[i][j]));
            y[(size_t)t * (size_t)rows + (size_t)o] = __fmul_rn(sum, __fmul_rn(x_scale[t], w_scale[o]));
        }
}

/* ---- The kernel for few rows: a warp per output ----
 * With few token rows the tiles above leave most of the device idle and
 * wait on one memory round trip per K_BYTES step. Here a warp owns one
 * output row o for GEMV_TOKENS tokens: its lanes read neighbouring words
 * of the weight row, each lane's int32 partial sums are exact, and the
 * warp adds them up (integer addition: any order gives the same sum). */
#define GEMV_WARPS 8          /* outputs per block */
#define GEMV_TOKENS 8         /* tokens per warp (two int32 sums each per lane) */
#define GEMV_MAX_ROWS 64      /* up to this many rows the warp kernel is used */

static __global__ void q8_gemv_kernel(q8_jobs jobs, int cols_pad, const int8_t *__restrict__ x,
                                      const float *__restrict__ x_scale, int n_rows) {
    const int rows = jobs.rows[blockIdx.z], lane = (int)threadIdx.x % 32;
    const int o = (int)blockIdx.x * GEMV_WARPS + (int)threadIdx.x / 32, t0 = (int)blockIdx.y * GEMV_TOKENS;
    if (o >= rows)
        return; /* whole warps leave; no block-wide synchronisation follows */
    const size_t words = (size_t)cols_pad / 4;
    const int *__restrict__ w_row = (const int *)(jobs.w[blockIdx.z] + (size_t)o * (size_t)cols_pad);
    const int *__restrict__ planes = (const int *)x;
    const int tokens = n_rows - t0 < GEMV_TOKENS ? n_rows - t0 : GEMV_TOKENS;
    int hi[GEMV_TOKENS] = {}, lo[GEMV_TOKENS] = {};
    for (size_t k = (size_t)lane; k < words; k += 32) {
        const int wv = w_row[k];
#pragma unroll
        for (int j = 0; j < GEMV_TOKENS; j++)
            if (j < tokens) {
                const size_t t = (size_t)(t0 + j);
                hi[j] = __dp4a(wv, planes[(2 * t) * words + k], hi[j]);
                lo[j] = __dp4a(wv, planes[(2 * t + 1) * words + k], lo[j]);
            }
    }
#pragma unroll
    for (int j = 0; j < GEMV_TOKENS; j++)
        for (int offset = 16; offset > 0; offset /= 2) {
            hi[j] += __shfl_xor_sync(0xffffffffu, hi[j], offset);
            lo[j] += __shfl_xor_sync(0xffffffffu, lo[j], offset);
        }
#pragma unroll
    for (int j = 0; j < GEMV_TOKENS; j++)
        if (lane == j && j < tokens) {
            const int t = t0 + j;
            /* The CPU's expression, operation by operation. */
            float sum = __fadd_rn(__fmul_rn(__int2float_rn(hi[j]), 256.0f), __int2float_rn(lo[j]));
            jobs.y[blockIdx.z][(size_t)t * (size_t)rows + (size_t)o] =
                __fmul_rn(sum, __fmul_rn(x_scale[t], jobs.scale[blockIdx.z][o]));
        }
}

/* ---- Settings: environment, device, test overrides ---- */

/* The environment is read once; the device is probed only when the GPU is
 * asked for (creating a CUDA context takes time and device memory). */
static pthread_once_t settings_once = PTHREAD_ONCE_INIT, probe_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the device index, the matrices, the idle contexts */
static int env_enabled;      /* LMC_GPU / LMC_DEVICE asked for the GPU */
static int chosen_enabled = -1; /* lmc_cuda_use: -1 = follow the environment */
static int device_index;     /* the CUDA device every thread binds to */
static int device_count;
static int device_probed;    /* device_index is fixed: the probe ran */
static int64_t env_min_macs;
static int device_usable;    /* a device answered the probe */
static int forced_enabled = -1; /* lmc_cuda_force: -1 = follow the environment */
static int64_t forced_min_macs;
static int device_failed;    /* a CUDA call failed: stop using the device */
static uint64_t matmuls_served;

/* LMC_DEVICE=cuda, cuda:N or gpu (LMC_GPU=1 as well) asks for the GPU;
 * returns the device index, or -1 for the CPU. */
static int env_device(void) {
    const char *device = getenv("LMC_DEVICE");
    if (device && *device) {
        if (strcmp(device, "cuda") == 0 || strcmp(device, "gpu") == 0)
            return 0;
        char *end;
        long index = strncmp(device, "cuda:", 5) == 0 ? strtol(device + 5, &end, 10) : -1;
        return index >= 0 && index < 1024 && device[5] && !*end ? (int)index : -1;
    }
    const char *gpu = getenv("LMC_GPU");
    return gpu && *gpu && strcmp(gpu, "0") != 0 ? 0 : -1;
}

static void read_settings(void) {
    int device = env_device();
    env_enabled = device >= 0;
    device_index = device >= 0 ? device : 0;
    const char *min_macs = getenv("LMC_GPU_MIN_MACS");
    env_min_macs = min_macs && *min_macs ? strtoll(min_macs, NULL, 10) : DEFAULT_MIN_MACS;
}

static void probe_device(void) {
    pthread_mutex_lock(&lock);
    device_probed = 1;
    pthread_mutex_unlock(&lock);
    cudaError_t error = cudaGetDeviceCount(&device_count);
    if (error != cudaSuccess)
        device_count = 0;
    pthread_once(&settings_once, read_settings);
    if (device_index < device_count)
        error = lmc_cuda_bind(); /* creates the context now, not inside the first matmul */
    if (error == cudaSuccess && device_index < device_count)
        error = cudaFree(NULL);
    device_usable = error == cudaSuccess && device_index < device_count;
    /* The environment asked for the GPU explicitly: say once why it is not used. */
    if (env_enabled && !device_usable)
        fprintf(stderr, "lmc: LMC_DEVICE/LMC_GPU asks for CUDA device %d, which is not usable (%s); computing on the CPU\n",
                device_index, error != cudaSuccess ? cudaGetErrorString(error) : "no such device");
}

cudaError_t lmc_cuda_bind(void) {
    return cudaSetDevice(device_index);
}

int lmc_cuda_available(void) {
    pthread_once(&probe_once, probe_device);
    return device_usable && !__atomic_load_n(&device_failed, __ATOMIC_RELAXED);
}

int lmc_cuda_enabled(void) {
    pthread_once(&settings_once, read_settings);
    int forced = __atomic_load_n(&forced_enabled, __ATOMIC_RELAXED);
    int chosen = __atomic_load_n(&chosen_enabled, __ATOMIC_RELAXED);
    return (forced >= 0 ? forced : chosen >= 0 ? chosen : env_enabled) && lmc_cuda_available();
}

lmc_status lmc_cuda_use(int enabled, int index, char *why, size_t why_size) {
    if (!enabled) {
        __atomic_store_n(&chosen_enabled, 0, __ATOMIC_RELAXED);
        return LMC_OK;
    }
    /* The index is read by the probe: it can change only before it. */
    pthread_once(&settings_once, read_settings);
    pthread_mutex_lock(&lock);
    if (!device_probed)
        device_index = index;
    pthread_mutex_unlock(&lock);
    const int usable = lmc_cuda_available() && device_index == index;
    __atomic_store_n(&chosen_enabled, usable, __ATOMIC_RELAXED);
    if (usable)
        return LMC_OK;
    if (device_count == 0)
        snprintf(why, why_size, "no CUDA device found");
    else if (index >= device_count)
        snprintf(why, why_size, "no CUDA device %d (%d found)", index, device_count);
    else if (device_index != index)
        snprintf(why, why_size, "CUDA device %d is already in use by this process", device_index);
    else
        snprintf(why, why_size, "CUDA device %d failed", index);
    return LMC_ERR_UNSUPPORTED;
}

int64_t lmc_cuda_min_macs(void) {
    pthread_once(&settings_once, read_settings);
    return __atomic_load_n(&forced_enabled, __ATOMIC_RELAXED) >= 0
               ? __atomic_load_n(&forced_min_macs, __ATOMIC_RELAXED)
               : env_min_macs;
}

void lmc_cuda_force(int enabled, int64_t min_macs) {
    __atomic_store_n(&forced_min_macs, min_macs, __ATOMIC_RELAXED);
    __atomic_store_n(&forced_enabled, enabled < 0 ? -1 : enabled != 0, __ATOMIC_RELAXED);
}

uint64_t lmc_cuda_matmul_count(void) {
    return __atomic_load_n(&matmuls_served, __ATOMIC_RELAXED);
}

/* Every failure but a full device memory means the device cannot be
 * trusted any more (CUDA errors are mostly sticky). */
lmc_status lmc_cuda_check(cudaError_t error) {
    if (error == cudaSuccess)
        return LMC_OK;
    if (error == cudaErrorMemoryAllocation)
        return LMC_ERR_NOMEM;
    __atomic_store_n(&device_failed, 1, __ATOMIC_RELAXED);
    return LMC_ERR_INTERNAL;
}

/* ---- Device copies of the weights ---- */

typedef struct {
    const int8_t *q; /* the key, with the fields after it */
    const float *scale;
    const int32_t *row_sum;
    int rows, cols;
    int8_t *d_q;     /* [rows][lmc_cuda_pitch(cols)] */
    float *d_scale;  /* [rows] */
} device_matrix;

static device_matrix *matrices;
static int n_matrices, matrices_capacity;

static int same_matrix(const device_matrix *d, const lmc_qmat *w) {
    return d->q == w->q && d->scale == w->scale && d->row_sum == w->row_sum && d->rows == w->rows &&
           d->cols == w->cols;
}

static void free_device_matrix(device_matrix *d) {
    cudaFree(d->d_q);
    cudaFree(d->d_scale);
}

static lmc_status upload(const lmc_qmat *w, device_matrix *d) {
    const size_t pitch = lmc_cuda_pitch(w->cols), rows = (size_t)w->rows;
    memset(d, 0, sizeof *d);
    d->q = w->q;
    d->scale = w->scale;
    d->row_sum = w->row_sum;
    d->rows = w->rows;
    d->cols = w->cols;
    cudaError_t error = cudaMalloc((void **)&d->d_q, rows * pitch);
    if (error == cudaSuccess)
        error = cudaMalloc((void **)&d->d_scale, rows * sizeof(float));
    if (error == cudaSuccess)
        error = cudaMemset(d->d_q, 0, rows * pitch);
    if (error == cudaSuccess)
        error = cudaMemcpy2D(d->d_q, pitch, w->q, (size_t)w->cols, (size_t)w->cols, rows, cudaMemcpyHostToDevice);
    if (error == cudaSuccess)
        error = cudaMemcpy(d->d_scale, w->scale, rows * sizeof(float), cudaMemcpyHostToDevice);
    if (error != cudaSuccess)
        free_device_matrix(d);
    return lmc_cuda_check(error);
}

/* The device copy of w, uploaded on first use. Call with the lock held. */
static lmc_status device_copy_of(const lmc_qmat *w, device_matrix *out) {
    for (int i = 0; i < n_matrices; i++) {
        if (matrices[i].q != w->q)
            continue;
        if (same_matrix(&matrices[i], w)) {
            *out = matrices[i];
            return LMC_OK;
        }
        /* Another matrix now lives at this address: the old copy is stale. */
        free_device_matrix(&matrices[i]);
        matrices[i] = matrices[--n_matrices];
        break;
    }
    if (n_matrices == matrices_capacity) {
        int capacity = matrices_capacity ? 2 * matrices_capacity : 64;
        device_matrix *grown = (device_matrix *)realloc(matrices, (size_t)capacity * sizeof *grown);
        if (!grown)
            return LMC_ERR_NOMEM;
        matrices = grown;
        matrices_capacity = capacity;
    }
    lmc_status status = upload(w, &matrices[n_matrices]);
    if (status == LMC_OK)
        *out = matrices[n_matrices++];
    return status;
}

lmc_status lmc_cuda_weights_of(const lmc_qmat *w, lmc_cuda_weights *out) {
    if (!w->row_sum)
        return LMC_ERR_PARAM; /* unprepared: its lifetime is not tracked */
    if (lmc_cuda_bind() != cudaSuccess)
        return LMC_ERR_INTERNAL;
    device_matrix d;
    pthread_mutex_lock(&lock);
    lmc_status status = device_copy_of(w, &d);
    pthread_mutex_unlock(&lock);
    if (status == LMC_OK)
        *out = (lmc_cuda_weights){d.d_q, d.d_scale, d.rows, d.cols, lmc_cuda_pitch(d.cols)};
    return status;
}

cudaError_t lmc_cuda_launch_q8(const lmc_cuda_weights *const *w, float *const *y, int n_jobs, const int8_t *x,
                               const float *x_scale, int n_rows, cudaStream_t stream) {
    q8_jobs jobs;
    int widest = 0;
    for (int j = 0; j < n_jobs; j++) {
        jobs.w[j] = w[j]->q;
        jobs.scale[j] = w[j]->scale;
        jobs.y[j] = y[j];
        jobs.rows[j] = w[j]->rows;
        widest = w[j]->rows > widest ? w[j]->rows : widest;
    }
    if (n_rows <= GEMV_MAX_ROWS) {
        dim3 grid((unsigned)((widest + GEMV_WARPS - 1) / GEMV_WARPS),
                  (unsigned)((n_rows + GEMV_TOKENS - 1) / GEMV_TOKENS), (unsigned)n_jobs);
        q8_gemv_kernel<<<grid, 32 * GEMV_WARPS, 0, stream>>>(jobs, (int)w[0]->pitch, x, x_scale, n_rows);
    } else {
        dim3 grid((unsigned)((widest + TILE_O - 1) / TILE_O), (unsigned)((n_rows + TILE_T - 1) / TILE_T),
                  (unsigned)n_jobs);
        q8_matmul_kernel<<<grid, THREADS, 0, stream>>>(jobs, (int)w[0]->pitch, x, x_scale, n_rows);
    }
    return cudaGetLastError();
}

void lmc_cuda_forget(const lmc_qmat *w) {
    if (!w || !w->q || !__atomic_load_n(&device_probed, __ATOMIC_RELAXED) || lmc_cuda_bind() != cudaSuccess)
        return;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_matrices; i++)
        if (matrices[i].q == w->q) {
            free_device_matrix(&matrices[i]);
            matrices[i] = matrices[--n_matrices];
            break;
        }
    pthread_mutex_unlock(&lock);
}

/* ---- Per-call contexts: a stream and buffers, one per concurrent caller ---- */

typedef struct context {
    cudaStream_t stream;
    int8_t *h_input; /* pinned: the padded planes, then the row scales */
    int8_t *d_input;
    size_t input_capacity;
    float *d_output;
    float *h_output;        /* pinned */
    size_t output_capacity; /* floats */
    struct context *next;   /* in the idle list */
} context;

static context *idle_contexts;

static context *acquire_context(void) {
    pthread_mutex_lock(&lock);
    context *c = idle_contexts;
    if (c)
        idle_contexts = c->next;
    pthread_mutex_unlock(&lock);
    if (c)
        return c;
    c = (context *)calloc(1, sizeof *c);
    if (c && cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking) != cudaSuccess) {
        free(c);
        c = NULL;
    }
    return c;
}

static void release_context(context *c) {
    pthread_mutex_lock(&lock);
    c->next = idle_contexts;
    idle_contexts = c;
    pthread_mutex_unlock(&lock);
}

static cudaError_t ensure_capacity(context *c, size_t input_bytes, size_t output_floats) {
    cudaError_t error = cudaSuccess;
    if (input_bytes > c->input_capacity) {
        cudaFreeHost(c->h_input);
        cudaFree(c->d_input);
        c->h_input = c->d_input = NULL;
        c->input_capacity = 0;
        error = cudaMallocHost((void **)&c->h_input, input_bytes);
        if (error == cudaSuccess)
            error = cudaMalloc((void **)&c->d_input, input_bytes);
        if (error != cudaSuccess)
            return error;
        c->input_capacity = input_bytes;
    }
    if (output_floats > c->output_capacity) {
        cudaFree(c->d_output);
        cudaFreeHost(c->h_output);
        c->d_output = c->h_output = NULL;
        c->output_capacity = 0;
        error = cudaMalloc((void **)&c->d_output, output_floats * sizeof(float));
        if (error == cudaSuccess)
            error = cudaMallocHost((void **)&c->h_output, output_floats * sizeof(float));
        if (error != cudaSuccess)
            return error;
        c->output_capacity = output_floats;
    }
    return error;
}

/* Copies the 2 * n_rows planes of cols bytes into rows of pitch bytes
 * (zeros after each), then the n_rows scales. */
static void pack_input(int8_t *dst, size_t pitch, const int8_t *xq, const float *xscale, int n_rows, int cols) {
    const size_t planes = 2 * (size_t)n_rows, width = (size_t)cols;
    if (pitch == width) {
        memcpy(dst, xq, planes * width);
    } else {
        for (size_t p = 0; p < planes; p++) {
            memcpy(dst + p * pitch, xq + p * width, width);
            memset(dst + p * pitch + width, 0, pitch - width);
        }
    }
    memcpy(dst + planes * pitch, xscale, (size_t)n_rows * sizeof(float));
}

static lmc_status run_jobs(context *c, const lmc_cuda_weights *d, const lmc_matmul_job *jobs, int n_jobs,
                           const int8_t *xq, const float *xscale, int n_rows) {
    const int cols = jobs[0].w->cols;
    const size_t pitch = lmc_cuda_pitch(cols), planes_bytes = 2 * (size_t)n_rows * pitch;
    size_t output_floats = 0;
    for (int j = 0; j < n_jobs; j++)
        output_floats += (size_t)n_rows * (size_t)jobs[j].w->rows;
    cudaError_t error = ensure_capacity(c, planes_bytes + (size_t)n_rows * sizeof(float), output_floats);
    if (error != cudaSuccess)
        return lmc_cuda_check(error);
    pack_input(c->h_input, pitch, xq, xscale, n_rows, cols);
    error = cudaMemcpyAsync(c->d_input, c->h_input, planes_bytes + (size_t)n_rows * sizeof(float),
                            cudaMemcpyHostToDevice, c->stream);
    const float *d_xscale = (const float *)(c->d_input + planes_bytes);
    size_t at = 0;
    const lmc_cuda_weights *weights[LMC_CUDA_MAX_JOBS];
    float *outputs[LMC_CUDA_MAX_JOBS];
    for (int j = 0; j < n_jobs; j++) {
        weights[j] = &d[j];
        outputs[j] = c->d_output + at;
        at += (size_t)n_rows * (size_t)jobs[j].w->rows;
    }
    if (error == cudaSuccess)
        error = lmc_cuda_launch_q8(weights, outputs, n_jobs, c->d_input, d_xscale, n_rows, c->stream);
    /* Into pinned memory: a copy into the caller's pageable outputs would
     * go through the driver's small bounce buffers, several times slower. */
    if (error == cudaSuccess)
        error = cudaMemcpyAsync(c->h_output, c->d_output, output_floats * sizeof(float), cudaMemcpyDeviceToHost,
                                c->stream);
    if (error == cudaSuccess)
        error = cudaStreamSynchronize(c->stream);
    return lmc_cuda_check(error);
}

typedef struct {
    const lmc_matmul_job *jobs;
    int n_jobs, n_rows;
    const float *staged; /* each job's [n_rows][rows] outputs, one after another */
} copy_context;

/* Token rows [begin, end) of every job: y = staged, or staged + bias as the
 * CPU kernels add it (after the scaled product). */
static void copy_rows(void *ctx_, int begin, int end) {
    const copy_context *ctx = (const copy_context *)ctx_;
    const float *staged = ctx->staged;
    for (int j = 0; j < ctx->n_jobs; j++) {
        const size_t rows = (size_t)ctx->jobs[j].w->rows;
        const float *bias = ctx->jobs[j].bias;
        for (size_t t = (size_t)begin; t < (size_t)end; t++) {
            const float *from = staged + t * rows;
            float *to = ctx->jobs[j].y + t * rows;
            if (bias)
                for (size_t o = 0; o < rows; o++)
                    to[o] = from[o] + bias[o];
            else
                memcpy(to, from, rows * sizeof(float));
        }
        staged += (size_t)ctx->n_rows * rows;
    }
}

/* Outputs smaller than this are copied out by the calling thread alone. */
#define PARALLEL_COPY_MIN_FLOATS (1 << 16)

static void copy_out(lmc_pool *pool, const context *c, const lmc_matmul_job *jobs, int n_jobs, int n_rows) {
    copy_context ctx = {jobs, n_jobs, n_rows, c->h_output};
    size_t floats = 0;
    for (int j = 0; j < n_jobs; j++)
        floats += (size_t)n_rows * (size_t)jobs[j].w->rows;
    if (floats < PARALLEL_COPY_MIN_FLOATS)
        copy_rows(&ctx, 0, n_rows);
    else
        lmc_pool_for(pool, n_rows, copy_rows, &ctx);
}

lmc_status lmc_cuda_matmul_q8_multi(lmc_pool *pool, const lmc_matmul_job *jobs, int n_jobs, const int8_t *xq,
                                    const float *xscale, int n_rows) {
    if (n_rows <= 0 || n_jobs <= 0)
        return LMC_OK;
    if (n_jobs > LMC_CUDA_MAX_JOBS || !lmc_cuda_available() || lmc_cuda_bind() != cudaSuccess)
        return LMC_ERR_UNSUPPORTED;
    for (int j = 0; j < n_jobs; j++)
        if (jobs[j].w->cols != jobs[0].w->cols)
            return LMC_ERR_PARAM;
    lmc_cuda_weights d[LMC_CUDA_MAX_JOBS];
    lmc_status status = LMC_OK;
    for (int j = 0; j < n_jobs && status == LMC_OK; j++)
        status = lmc_cuda_weights_of(jobs[j].w, &d[j]);
    if (status != LMC_OK)
        return status;
    context *c = acquire_context();
    if (!c)
        return LMC_ERR_NOMEM;
    status = run_jobs(c, d, jobs, n_jobs, xq, xscale, n_rows);
    if (status == LMC_OK)
        copy_out(pool, c, jobs, n_jobs, n_rows);
    release_context(c);
    if (status != LMC_OK)
        return status;
    __atomic_fetch_add(&matmuls_served, 1, __ATOMIC_RELAXED);
    return LMC_OK;
}
