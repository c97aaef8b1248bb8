/*
 * The device side of common/detmath.h: the same operation sequences, one
 * correctly rounded IEEE operation per step (__fadd_rn, __fmul_rn, ... are
 * never fused, and the build also passes -fmad=false -ftz=false), so every
 * value is the CPU's bit for bit. Read detmath.c for the derivations; only
 * the order is repeated here.
 */
#ifndef LMC_NN_CUDA_DETMATH_CUH
#define LMC_NN_CUDA_DETMATH_CUH

#define DET_LN2_HI_F 0x1.63p-1f
#define DET_LN2_LO_F (-0x1.bd0106p-13f)
#define DET_LOG2E_F 0x1.715476p+0f
#define DET_ROUND_MAGIC_F 0x1.8p23f

static __device__ __forceinline__ float det_pow2f(int k) {
    return __int_as_float((k + 127) << 23);
}

static __device__ __forceinline__ float det_scale_by_pow2f(float y, int k) {
    if (k > 127)
        return __fmul_rn(__fmul_rn(y, det_pow2f(127)), det_pow2f(k - 127));
    if (k < -126)
        return __fmul_rn(__fmul_rn(y, det_pow2f(k + 126)), det_pow2f(-126));
    return __fmul_rn(y, det_pow2f(k));
}

/* lmc_expf. The polynomial's coefficients are the float quotients the C
 * code writes as 1.0f / 5040.0f and so on (the compiler rounds each to
 * nearest: the same constants on both sides). */
static __device__ __forceinline__ float det_expf(float x) {
    if (x != x)
        return x;
    if (x < -104.0f)
        return 0.0f;
    if (x > 89.0f)
        return __int_as_float(0x7f800000);
    float t = __fmul_rn(x, DET_LOG2E_F);
    float kf = __fsub_rn(__fadd_rn(t, DET_ROUND_MAGIC_F), DET_ROUND_MAGIC_F);
    int k = (int)kf;
    float r = __fsub_rn(x, __fmul_rn(kf, DET_LN2_HI_F));
    r = __fsub_rn(r, __fmul_rn(kf, DET_LN2_LO_F));
    float p = 1.0f / 5040.0f;
    p = __fadd_rn(__fmul_rn(p, r), 1.0f / 720.0f);
    p = __fadd_rn(__fmul_rn(p, r), 1.0f / 120.0f);
    p = __fadd_rn(__fmul_rn(p, r), 1.0f / 24.0f);
    p = __fadd_rn(__fmul_rn(p, r), 1.0f / 6.0f);
    p = __fadd_rn(__fmul_rn(p, r), 0.5f);
    p = __fadd_rn(r, __fmul_rn(__fmul_rn(r, r), p));
    return det_scale_by_pow2f(__fadd_rn(1.0f, p), k);
}

/* lmc_silu: x / (1 + e^-x). */
static __device__ __forceinline__ float det_silu(float x) {
    return __fdiv_rn(x, __fadd_rn(1.0f, det_expf(-x)));
}

/* lmc_rsqrtf: 1 / sqrt(x), both correctly rounded. */
static __device__ __forceinline__ float det_rsqrtf(float x) {
    return __fdiv_rn(1.0f, __fsqrt_rn(x));
}

/* The lane combination of lmc_sum8 / lmc_dot8. */
static __device__ __forceinline__ float det_combine_lanes(const float lane[8]) {
    return __fadd_rn(__fadd_rn(__fadd_rn(lane[0], lane[1]), __fadd_rn(lane[2], lane[3])),
                     __fadd_rn(__fadd_rn(lane[4], lane[5]), __fadd_rn(lane[6], lane[7])));
}

/* Lane j of lmc_dot8(x, y, n): x[j]*y[j] + x[j+8]*y[j+8] + ... left to right
 * (stride: the distance between consecutive elements of y). */
static __device__ __forceinline__ float det_dot_lane(const float *x, const float *y, size_t y_stride, int n,
                                                     int j) {
    float lane = 0.0f;
    for (int i = j; i < n; i += 8)
        lane = __fadd_rn(lane, __fmul_rn(x[i], y[(size_t)i * y_stride]));
    return lane;
}

#endif /* LMC_NN_CUDA_DETMATH_CUH */
