/*
 * Deterministic transcendental functions (see detmath.h).
 *
 * Every routine is a fixed sequence of IEEE-754 round-to-nearest +, -, *, /
 * (the build uses -ffp-contract=off, so no step is fused into an FMA) plus
 * integer bit manipulation. The comments above each float routine spell out
 * the operation order; a CUDA port must use exactly that order with
 * __fadd_rn/__fsub_rn/__fmul_rn/__fdiv_rn and be compiled without
 * flush-to-zero (-ftz=false), because lmc_expf produces subnormal results.
 *
 * Polynomials are plain Taylor series with enough terms that truncation is
 * far below one ulp; coefficients are written as the decimal quotient they
 * stand for, so a port can reproduce them by rounding that quotient to the
 * target precision (the compiler rounds each literal to nearest).
 */
#include "common/detmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float bits_float(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline uint64_t double_bits(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline double bits_double(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* 2^k as a float for -126 <= k <= 127 (a normal number, built from bits). */
static inline float pow2f(int k) {
    return bits_float((uint32_t)(k + 127) << 23);
}

/* 2^k as a double for -1022 <= k <= 1023. */
static inline double pow2d(int k) {
    return bits_double((uint64_t)(k + 1023) << 52);
}

/* ------------------------------------------------------------------ */
/* float exp                                                           */
/* ------------------------------------------------------------------ */

/* ln 2 split so that k * LN2_HI_F is exact for |k| < 2^15 (LN2_HI_F has 9
 * significant bits); LN2_LO_F = ln 2 - LN2_HI_F rounded to float. */
#define LN2_HI_F 0x1.63p-1f        /* 0.693359375 */
#define LN2_LO_F (-0x1.bd0106p-13f) /* -2.12194442e-4 */
#define LOG2E_F 0x1.715476p+0f     /* 1/ln 2 rounded to float */
/* Adding then subtracting 1.5 * 2^23 rounds a float of magnitude < 2^22 to
 * the nearest integer (ties to even) using only the FPU's own rounding. */
#define ROUND_MAGIC_F 0x1.8p23f

/* Multiplies y (in [0.7, 1.5]) by 2^k for -150 <= k <= 128 with a single
 * rounding: outside the normal exponent range the factor is split so that
 * the first product is exact and only the second rounds (into a subnormal,
 * or to infinity). */
static float scale_by_pow2f(float y, int k) {
    if (k > 127) return (y * pow2f(127)) * pow2f(k - 127);
    if (k < -126) return (y * pow2f(k + 126)) * pow2f(-126);
    return y * pow2f(k);
}

/*
 * e^x. Operation sequence (each line one correctly rounded float op):
 *   NaN -> NaN;  x < -104 -> +0;  x > 89 -> +inf
 *   t  = x * LOG2E_F
 *   kf = (t + ROUND_MAGIC_F) - ROUND_MAGIC_F        k = (int)kf
 *   r  = x - kf * LN2_HI_F       (product and difference are exact)
 *   r  = r - kf * LN2_LO_F
 *   p  = 1/5040; p = p*r + 1/720; p = p*r + 1/120; p = p*r + 1/24;
 *        p = p*r + 1/6; p = p*r + 1/2
 *   p  = r + (r*r)*p
 *   y  = 1 + p
 *   result = y * 2^k   (scale_by_pow2f: split into two products when
 *                       2^k is not a normal float)
 * |r| <= 0.3467, so the degree-7 Taylor remainder is below 0.1 ulp.
 */
float lmc_expf(float x) {
    if (x != x) return x;
    if (x < -104.0f) return 0.0f;
    if (x > 89.0f) return INFINITY;
    float t = x * LOG2E_F;
    float kf = (t + ROUND_MAGIC_F) - ROUND_MAGIC_F;
    int k = (int)kf;
    float r = x - kf * LN2_HI_F;
    r = r - kf * LN2_LO_F;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = r + (r * r) * p;
    return scale_by_pow2f(1.0f + p, k);
}

/* ------------------------------------------------------------------ */
/* float log                                                           */
/* ------------------------------------------------------------------ */

/* Mantissa bits of sqrt(2) as a float: mantissas above it are halved so the
 * reduced argument m lies in [sqrt(2)/2, sqrt(2)]. */
#define SQRT2_MANTISSA_F 0x3504f3u

/*
 * Natural log. x = m * 2^e with m in [sqrt(2)/2, sqrt(2)] (bit
 * manipulation; subnormals are first multiplied by 2^23, exactly). Then with
 * f = m - 1 (exact), log m = log(1+f) = 2 atanh(s), s = f / (2 + f), and
 * 2s = f - s*f gives the form below whose large part f is exact.
 * Operation sequence:
 *   f    = m - 1
 *   s    = f / (2 + f)
 *   z    = s * s
 *   R    = 2/9; R = R*z + 2/7; R = R*z + 2/5; R = R*z + 2/3; R = R*z
 *   hfsq = (0.5 * f) * f
 *   lo   = s * (hfsq + R) + ef * LN2_LO_F
 *   result = ef * LN2_HI_F + (f - (hfsq - lo))
 * where ef = (float)e. |s| <= 0.1716, so the next series term is below
 * 1e-8 relative.
 * Special values: NaN or x < 0 -> NaN, 0 -> -inf, +inf -> +inf.
 */
float lmc_logf(float x) {
    if (x != x || x < 0.0f) return NAN;
    if (x == 0.0f) return -INFINITY;
    if (x == INFINITY) return x;
    int e = 0;
    if (x < 0x1p-126f) { /* subnormal: scale into the normal range */
        x = x * 0x1p23f;
        e = -23;
    }
    uint32_t bits = float_bits(x);
    uint32_t mantissa = bits & 0x7fffffu;
    e += (int)(bits >> 23) - 127;
    float m = bits_float(mantissa | 0x3f800000u);
    if (mantissa > SQRT2_MANTISSA_F) {
        m = m * 0.5f;
        e += 1;
    }
    float ef = (float)e;
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float r = 2.0f / 9.0f;
    r = r * z + 2.0f / 7.0f;
    r = r * z + 2.0f / 5.0f;
    r = r * z + 2.0f / 3.0f;
    r = r * z;
    float hfsq = (0.5f * f) * f;
    float lo = s * (hfsq + r) + ef * LN2_LO_F;
    return ef * LN2_HI_F + (f - (hfsq - lo));
}

/* SiLU: x / (1 + lmc_expf(-x)), three float ops after the exp. Large
 * negative x gives -0 (e^-x = inf); x = -inf gives NaN (-inf / inf). */
float lmc_silu(float x) {
    return x / (1.0f + lmc_expf(-x));
}

float lmc_rsqrtf(float x) {
    return 1.0f / sqrtf(x);
}

/* ------------------------------------------------------------------ */
/* double exp and log (load-time tables)                               */
/* ------------------------------------------------------------------ */

/* ln 2 split with 32 significant bits in the high part, so k * LN2_HI_D is
 * exact for every |k| < 2^21. */
#define LN2_HI_D 0x1.62e42feep-1
#define LN2_LO_D 0x1.a39ef35793c76p-33
#define LOG2E_D 0x1.71547652b82fep+0
#define ROUND_MAGIC_D 0x1.8p52

static double scale_by_pow2d(double y, int k) {
    if (k > 1023) return (y * pow2d(1023)) * pow2d(k - 1023);
    if (k < -1022) return (y * pow2d(k + 1022)) * pow2d(-1022);
    return y * pow2d(k);
}

/* e^x in double: the same reduction as lmc_expf, with a degree-13 Taylor
 * polynomial (remainder < 0.05 ulp for |r| <= 0.3467). */
double lmc_exp(double x) {
    if (x != x) return x;
    if (x < -746.0) return 0.0;
    if (x > 710.0) return INFINITY;
    double t = x * LOG2E_D;
    double kf = (t + ROUND_MAGIC_D) - ROUND_MAGIC_D;
    int k = (int)kf;
    double r = (x - kf * LN2_HI_D) - kf * LN2_LO_D;
    static const double inverse_factorial[] = {
        1.0 / 6227020800.0, /* 1/13! */
        1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
        1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0,
        0.5, /* 1/2! */
    };
    double p = inverse_factorial[0];
    for (size_t i = 1; i < sizeof inverse_factorial / sizeof inverse_factorial[0]; i++)
        p = p * r + inverse_factorial[i];
    p = r + (r * r) * p;
    return scale_by_pow2d(1.0 + p, k);
}

/* Natural log in double: the same reduction and formula as lmc_logf with the
 * atanh series carried to s^21 (truncation below 0.01 ulp). */
double lmc_log(double x) {
    if (x != x || x < 0.0) return NAN;
    if (x == 0.0) return -INFINITY;
    if (x == INFINITY) return x;
    int e = 0;
    if (x < 0x1p-1022) {
        x = x * 0x1p54;
        e = -54;
    }
    uint64_t bits = double_bits(x);
    uint64_t mantissa = bits & 0xfffffffffffffull;
    e += (int)(bits >> 52) - 1023;
    double m = bits_double(mantissa | 0x3ff0000000000000ull);
    if (mantissa > 0x6a09e667f3bcdull) { /* mantissa bits of sqrt(2) */
        m = m * 0.5;
        e += 1;
    }
    double ed = (double)e;
    double f = m - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double r = 2.0 / 21.0;
    for (int j = 19; j >= 3; j -= 2) r = r * z + 2.0 / (double)j;
    r = r * z;
    double hfsq = (0.5 * f) * f;
    double lo = s * (hfsq + r) + ed * LN2_LO_D;
    return ed * LN2_HI_D + (f - (hfsq - lo));
}

/* ------------------------------------------------------------------ */
/* double sin and cos                                                  */
/* ------------------------------------------------------------------ */

/* pi/2 as a sum of six 27-bit pieces (exact values): k * piece is exact for
 * |k| < 2^26, and the pieces carry pi/2 to about 2^-168, so even the r
 * closest to zero (about 2^-60 for |x| < 2^26) keeps full relative accuracy. */
#define PIO2_1 0x1.921fb54p+0
#define PIO2_2 0x1.10b461p-30
#define PIO2_3 0x1.a62633p-58
#define PIO2_4 0x1.45c06ep-86
#define PIO2_5 0x1.cd129p-115
#define PIO2_6 0x1.2704450p-142
#define TWO_OVER_PI 0x1.45f306dc9c883p-1
/* Arguments beyond this are outside the reduction's exact range. */
#define SINCOS_LIMIT 0x1p26

/* a + b = sum + *err exactly (Knuth's TwoSum, any magnitudes). */
static double two_sum(double a, double b, double *err) {
    double sum = a + b;
    double b_part = sum - a;
    *err = (a - (sum - b_part)) + (b - b_part);
    return sum;
}

/* sin(r) - r = r * z * P(z), z = r^2: Taylor through r^17. */
static double sin_tail(double r, double z) {
    static const double c[] = {
        1.0 / 355687428096000.0,  /* 1/17! */
        -1.0 / 1307674368000.0,   /* -1/15! */
        1.0 / 6227020800.0, -1.0 / 39916800.0, 1.0 / 362880.0, -1.0 / 5040.0,
        1.0 / 120.0, -1.0 / 6.0,
    };
    double p = c[0];
    for (size_t i = 1; i < sizeof c / sizeof c[0]; i++) p = p * z + c[i];
    return (r * z) * p;
}

/* cos(r) - 1 + z/2 = z^2 * Q(z): Taylor through r^18. */
static double cos_tail(double z) {
    static const double c[] = {
        -1.0 / 6402373705728000.0, /* -1/18! */
        1.0 / 20922789888000.0,    /* 1/16! */
        -1.0 / 87178291200.0, 1.0 / 479001600.0, -1.0 / 3628800.0, 1.0 / 40320.0,
        -1.0 / 720.0, 1.0 / 24.0,
    };
    double q = c[0];
    for (size_t i = 1; i < sizeof c / sizeof c[0]; i++) q = q * z + c[i];
    return (z * z) * q;
}

/*
 * sin and cos together. k = nearest integer to x * 2/pi; r = x - k*pi/2 is
 * formed as the double-double r_hi + r_lo (the six pi/2 pieces subtracted
 * with TwoSum), so |r| <= pi/4 with a relative error far below an ulp. Then
 * sin(r_hi + r_lo) = sin(r_hi) + r_lo * (1 - z/2) and
 * cos(r_hi + r_lo) = cos(r_hi) - r_lo * r_hi to well below one ulp, and the
 * quadrant k mod 4 picks signs and swaps. Accurate to about 1 ulp for
 * |x| < 2^26; larger |x|, infinities and NaN give NaN (no table needs them).
 */
void lmc_sincos(double x, double *s, double *c) {
    if (!(fabs(x) < SINCOS_LIMIT)) {
        *s = NAN;
        *c = NAN;
        return;
    }
    double kf = (x * TWO_OVER_PI + ROUND_MAGIC_D) - ROUND_MAGIC_D;
    long long k = (long long)kf;
    double r = x - kf * PIO2_1; /* exact: both terms within a factor 2 */
    double r_lo = 0.0;
    const double pieces[] = {PIO2_2, PIO2_3, PIO2_4, PIO2_5, PIO2_6};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        double err;
        r = two_sum(r, -(kf * pieces[i]), &err);
        r_lo += err;
    }
    double r_hi = r + r_lo; /* renormalise: |r_lo| is tiny against r */
    r_lo = (r - r_hi) + r_lo;

    double z = r_hi * r_hi;
    double sin_r = r_hi + (sin_tail(r_hi, z) + r_lo * (1.0 - 0.5 * z));
    double hz = 0.5 * z;
    double w = 1.0 - hz;
    double cos_r = w + (((1.0 - w) - hz) + (cos_tail(z) - r_hi * r_lo));

    switch (k & 3) {
    case 0: *s = sin_r; *c = cos_r; break;
    case 1: *s = cos_r; *c = -sin_r; break;
    case 2: *s = -sin_r; *c = -cos_r; break;
    default: *s = -cos_r; *c = sin_r; break;
    }
}

/* ------------------------------------------------------------------ */
/* fixed-order reductions                                              */
/* ------------------------------------------------------------------ */

/* The 8-lane tree of detmath.h: ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). */
static inline float combine_lanes(const float lane[8]) {
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* Lanes start at +0.0f, so an empty lane contributes +0 (as a zeroed SIMD
 * register does) and the sum of an all -0 input is +0. */
float lmc_sum8(const float *x, int n) {
    float lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] += x[i + j];
    for (int j = 0; i + j < n; j++) lane[j] += x[i + j];
    return combine_lanes(lane);
}

float lmc_dot8(const float *x, const float *y, int n) {
    float lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] += x[i + j] * y[i + j];
    for (int j = 0; i + j < n; j++) lane[j] += x[i + j] * y[i + j];
    return combine_lanes(lane);
}
