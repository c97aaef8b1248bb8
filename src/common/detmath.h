/*
 * Deterministic transcendental functions.
 *
 * libm's expf/logf differ between versions, CPUs and GPUs; an archive must
 * decode everywhere, so every float that reaches a CDF goes through these.
 * They use only IEEE-754 +, -, *, / (never contracted into FMA: the build
 * uses -ffp-contract=off) and integer bit manipulation, in a fixed order
 * that CUDA can reproduce with __fadd_rn/__fmul_rn.
 */
#ifndef LMC_DETMATH_H
#define LMC_DETMATH_H

/* e^x for float; accurate to a few ulp; 0 for x < -104, +inf above 88.7. */
float lmc_expf(float x);
/* Natural log for x > 0 (finite). */
float lmc_logf(float x);
/* SiLU x * sigmoid(x) = x / (1 + e^-x), through lmc_expf. */
float lmc_silu(float x);
/* 1/sqrt(x) for the RMSNorm: computed as 1.0f / sqrtf(x), which IEEE makes
 * exactly rounded on every platform (sqrt is correctly rounded). */
float lmc_rsqrtf(float x);

/* Double-precision versions used once at load time for tables (RoPE). */
double lmc_exp(double x);
double lmc_log(double x);
void lmc_sincos(double x, double *s, double *c);

/* Sum of n floats in the documented fixed order: lane j (0..7) accumulates
 * x[j], x[j+8], x[j+16], ... left to right; then the lanes combine as
 * ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). Every reduction in the engine that
 * must match across SIMD paths and CUDA uses this order. */
float lmc_sum8(const float *x, int n);
/* The same order applied to the products x[i]*y[i] (each product rounded
 * to float before it is added). */
float lmc_dot8(const float *x, const float *y, int n);

#endif /* LMC_DETMATH_H */
