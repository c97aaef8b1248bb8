/*
 * Deterministic math: accuracy against libm (the reference only, never used
 * by the library), special values, the fixed summation order, and golden
 * hashes that pin every result bit of numerics v1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common/detmath.h"

static uint64_t rng_next(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state) {
    return (double)(rng_next(state) >> 11) * 0x1p-53;
}

static uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_float(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint64_t double_bits(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* One ulp of a float result near `ref` (subnormals: the smallest step). */
static double ulp_of_float(double ref) {
    double a = fabs(ref);
    if (a < 0x1p-126) return 0x1p-149;
    int e;
    frexp(a, &e);
    return ldexp(1.0, e - 24);
}

static long double ulp_of_double(long double ref) {
    double a = (double)fabsl(ref);
    if (a < 0x1p-1022) return 0x1p-1074L;
    int e;
    frexp(a, &e);
    return ldexpl(1.0L, e - 53);
}

static double float_ulp_error(float got, double ref) {
    return fabs((double)got - ref) / ulp_of_float(ref);
}

static double double_ulp_error(double got, long double ref) {
    return (double)(fabsl((long double)got - ref) / ulp_of_double(ref));
}

/* ---- float exp / log ---- */

static void test_expf_accuracy(void **state) {
    (void)state;
    double worst = 0.0;
    float worst_x = 0.0f;
    long count = 0;
    /* Every 61st bit pattern: positive and negative floats of all sizes. */
    for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 61) {
        float x = bits_float((uint32_t)bits);
        if (!(x >= -103.9f && x <= 88.72f)) continue;
        double err = float_ulp_error(lmc_expf(x), exp((double)x));
        count++;
        if (err > worst) {
            worst = err;
            worst_x = x;
        }
    }
    print_message("lmc_expf: %ld values, max error %.3f ulp at %a\n", count, worst, (double)worst_x);
    assert_true(count > 20000000);
    assert_true(worst <= 1.5);
}

static void test_expf_special_values(void **state) {
    (void)state;
    assert_true(lmc_expf(0.0f) == 1.0f);
    assert_true(lmc_expf(-0.0f) == 1.0f);
    assert_true(lmc_expf(INFINITY) == INFINITY);
    assert_true(lmc_expf(-INFINITY) == 0.0f);
    assert_true(lmc_expf(-104.5f) == 0.0f);
    assert_true(lmc_expf(-1e30f) == 0.0f);
    assert_true(lmc_expf(89.5f) == INFINITY);
    assert_true(lmc_expf(88.8f) == INFINITY);
    assert_true(isfinite(lmc_expf(88.72f)));
    assert_true(isnan(lmc_expf(NAN)));
    assert_true(lmc_expf(-103.2f) > 0.0f); /* subnormal results survive */
    assert_true(lmc_expf(-103.2f) < 0x1p-126f);
    assert_true(lmc_expf(1.0f) == (float)exp(1.0));
    /* Monotone across the subnormal/normal seam and near 0. */
    float prev = 0.0f;
    for (float x = -104.0f; x < 1.0f; x += 0.0625f) {
        float y = lmc_expf(x);
        assert_true(y >= prev);
        prev = y;
    }
    for (float x = -0x1p-20f; x < 0.0f; x += 0x1p-30f) assert_true(lmc_expf(x) <= 1.0f);
}

static void test_logf_accuracy(void **state) {
    (void)state;
    double worst = 0.0;
    float worst_x = 0.0f;
    long count = 0;
    for (uint32_t bits = 1; bits < 0x7f800000u; bits += 97) { /* every positive finite class */
        float x = bits_float(bits);
        double err = float_ulp_error(lmc_logf(x), log((double)x));
        count++;
        if (err > worst) {
            worst = err;
            worst_x = x;
        }
    }
    print_message("lmc_logf: %ld values, max error %.3f ulp at %a\n", count, worst, (double)worst_x);
    assert_true(worst <= 1.5);
}

static void test_logf_special_values(void **state) {
    (void)state;
    assert_true(lmc_logf(1.0f) == 0.0f);
    assert_true(lmc_logf(0.0f) == -INFINITY);
    assert_true(lmc_logf(-0.0f) == -INFINITY);
    assert_true(isnan(lmc_logf(-1.0f)));
    assert_true(isnan(lmc_logf(-INFINITY)));
    assert_true(isnan(lmc_logf(NAN)));
    assert_true(lmc_logf(INFINITY) == INFINITY);
    float tiny = lmc_logf(0x1p-149f);
    assert_true(float_ulp_error(tiny, log(0x1p-149)) <= 1.0);
    assert_true(float_ulp_error(lmc_logf(3.4028235e38f), log(3.4028235e38)) <= 1.0);
    for (int e = -149; e <= 127; e++) /* powers of two: e * ln 2 */
        assert_true(float_ulp_error(lmc_logf(ldexpf(1.0f, e)), e * log(2.0)) <= 1.0);
}

static void test_silu_and_rsqrt(void **state) {
    (void)state;
    uint64_t rng = 7;
    double worst = 0.0;
    for (int i = 0; i < 1000000; i++) {
        float x = (float)((rng_unit(&rng) * 2.0 - 1.0) * 80.0);
        double ref = (double)x / (1.0 + exp(-(double)x));
        if (fabs(ref) < 0x1p-126) continue;
        double err = float_ulp_error(lmc_silu(x), ref);
        if (err > worst) worst = err;
    }
    print_message("lmc_silu: max error %.3f ulp\n", worst);
    assert_true(worst <= 4.0);
    assert_true(lmc_silu(0.0f) == 0.0f);
    assert_true(lmc_silu(-200.0f) == 0.0f);
    assert_true(lmc_silu(INFINITY) == INFINITY);
    assert_true(lmc_silu(100.0f) == 100.0f);

    for (int i = 0; i < 100000; i++) {
        float x = (float)(rng_unit(&rng) * 1e6);
        float got = lmc_rsqrtf(x);
        float want = 1.0f / sqrtf(x);
        assert_true(float_bits(got) == float_bits(want));
    }
    assert_true(lmc_rsqrtf(4.0f) == 0.5f);
    assert_true(lmc_rsqrtf(0.0f) == INFINITY);
}

/* ---- double exp / log / sincos ---- */

static void test_exp_log_double_accuracy(void **state) {
    (void)state;
    uint64_t rng = 11;
    double worst_exp = 0.0, worst_log = 0.0;
    for (int i = 0; i < 1000000; i++) {
        double u = rng_unit(&rng);
        double x = (i & 1) ? -745.0 + u * (709.7 + 745.0) : (u * 2.0 - 1.0) * 2.0;
        double err = double_ulp_error(lmc_exp(x), expl((long double)x));
        if (err > worst_exp) worst_exp = err;

        uint64_t bits = rng_next(&rng) & 0x7fefffffffffffffull; /* positive finite */
        double y;
        memcpy(&y, &bits, sizeof y);
        if (y == 0.0) continue;
        err = double_ulp_error(lmc_log(y), logl((long double)y));
        if (err > worst_log) worst_log = err;
        double near_one = 1.0 + (u - 0.5) * 0.8;
        err = double_ulp_error(lmc_log(near_one), logl((long double)near_one));
        if (err > worst_log) worst_log = err;
    }
    print_message("lmc_exp: max %.3f ulp, lmc_log: max %.3f ulp\n", worst_exp, worst_log);
    assert_true(worst_exp <= 1.5);
    assert_true(worst_log <= 1.5);
}

static void check_sincos(double x, double *worst) {
    double s, c;
    lmc_sincos(x, &s, &c);
    double es = double_ulp_error(s, sinl((long double)x));
    double ec = double_ulp_error(c, cosl((long double)x));
    if (es > *worst) *worst = es;
    if (ec > *worst) *worst = ec;
}

static void test_sincos_accuracy(void **state) {
    (void)state;
    uint64_t rng = 13;
    double worst = 0.0;
    const double ranges[] = {1e-3, 1.0, 4.0, 1e3, 1e6, 6e7};
    for (int i = 0; i < 600000; i++) {
        double range = ranges[i % 6];
        check_sincos((rng_unit(&rng) * 2.0 - 1.0) * range, &worst);
    }
    /* Doubles nearest to k * pi/2: the reduction's hardest cases. */
    for (long k = 1; k < (1l << 26); k += 331)
        check_sincos((double)((long double)k * 1.57079632679489661923132169163975144L), &worst);
    /* RoPE-like arguments: position * base^(-2i/d). */
    for (int pos = 0; pos < 4096; pos += 7)
        for (int i = 0; i < 64; i++) check_sincos(pos * pow(10000.0, -i / 64.0), &worst);
    print_message("lmc_sincos: max %.3f ulp\n", worst);
    assert_true(worst <= 1.5);
}

static void test_double_special_values(void **state) {
    (void)state;
    assert_true(lmc_exp(0.0) == 1.0);
    assert_true(lmc_exp(-0.0) == 1.0);
    assert_true(lmc_exp(-INFINITY) == 0.0);
    assert_true(lmc_exp(INFINITY) == INFINITY);
    assert_true(isnan(lmc_exp(NAN)));
    assert_true(lmc_exp(-746.5) == 0.0);
    assert_true(lmc_exp(-745.0) == 0x1p-1074);
    assert_true(lmc_exp(709.9) == INFINITY);
    assert_true(isfinite(lmc_exp(709.78)));
    assert_true(lmc_log(1.0) == 0.0);
    assert_true(lmc_log(0.0) == -INFINITY);
    assert_true(isnan(lmc_log(-1.0)));
    assert_true(isnan(lmc_log(NAN)));
    assert_true(lmc_log(INFINITY) == INFINITY);
    assert_true(double_ulp_error(lmc_log(0x1p-1074), logl(0x1p-1074L)) <= 1.0);

    double s, c;
    lmc_sincos(0.0, &s, &c);
    assert_true(s == 0.0 && c == 1.0);
    const double invalid[] = {NAN, INFINITY, -INFINITY, 0x1p26, -1e300};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        lmc_sincos(invalid[i], &s, &c);
        assert_true(isnan(s) && isnan(c));
    }
    lmc_sincos(0x1p26 - 1.0, &s, &c);
    assert_true(isfinite(s) && isfinite(c));
}

/* ---- fixed-order reductions ---- */

/* The order of detmath.h, written out independently: lane j is
 * 0 + x[j] + x[j+8] + ..., then the fixed tree. */
static float documented_sum8(const float *x, const float *y, int n) {
    float lane[8];
    for (int j = 0; j < 8; j++) {
        lane[j] = 0.0f;
        for (int i = j; i < n; i += 8) lane[j] = lane[j] + (y ? x[i] * y[i] : x[i]);
    }
    float left = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    float right = (lane[4] + lane[5]) + (lane[6] + lane[7]);
    return left + right;
}

static void test_sum8_order(void **state) {
    (void)state;
    uint64_t rng = 17;
    float x[1000], y[1000];
    int order_mattered = 0;
    for (int trial = 0; trial < 2000; trial++) {
        int n = (int)(rng_next(&rng) % 1000);
        for (int i = 0; i < n; i++) {
            /* Mixed magnitudes make every reordering visible. */
            double magnitude = pow(10.0, (double)(rng_next(&rng) % 16) - 8.0);
            x[i] = (float)((rng_unit(&rng) - 0.5) * magnitude);
            y[i] = (float)(rng_unit(&rng) * 4.0 - 2.0);
        }
        float sum = lmc_sum8(x, n);
        assert_true(float_bits(sum) == float_bits(documented_sum8(x, NULL, n)));
        assert_true(float_bits(lmc_dot8(x, y, n)) == float_bits(documented_sum8(x, y, n)));
        float sequential = 0.0f;
        for (int i = 0; i < n; i++) sequential += x[i];
        if (float_bits(sequential) != float_bits(sum)) order_mattered++;
    }
    assert_true(order_mattered > 100); /* the test can tell orders apart */

    assert_true(float_bits(lmc_sum8(x, 0)) == float_bits(0.0f));
    float negative_zeros[3] = {-0.0f, -0.0f, -0.0f};
    assert_true(float_bits(lmc_sum8(negative_zeros, 3)) == float_bits(0.0f));
    float small[5] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
    assert_true(lmc_sum8(small, 5) == 15.0f);
    assert_true(lmc_dot8(small, small, 5) == 55.0f);
}

/* ---- golden values: any change here is a new numerics version ---- */

static uint64_t fnv1a(uint64_t hash, uint64_t value) {
    for (int i = 0; i < 8; i++) {
        hash ^= (value >> (8 * i)) & 0xff;
        hash *= 0x100000001b3ull;
    }
    return hash;
}

static void test_golden_hashes(void **state) {
    (void)state;
    uint64_t float_hash = 0xcbf29ce484222325ull;
    for (int i = 0; i < 200000; i++) {
        float x = (float)(i - 100000) * 0.00107f;
        float_hash = fnv1a(float_hash, float_bits(lmc_expf(x)));
        float_hash = fnv1a(float_hash, float_bits(lmc_silu(x)));
        float_hash = fnv1a(float_hash, float_bits(lmc_logf((float)i * 0.0173f + 1e-30f)));
    }
    uint64_t double_hash = 0xcbf29ce484222325ull;
    for (int i = 0; i < 20000; i++) {
        double x = (i - 10000) * 0.0731;
        double s, c;
        lmc_sincos(x * 97.0, &s, &c);
        double_hash = fnv1a(double_hash, double_bits(lmc_exp(x)));
        double_hash = fnv1a(double_hash, double_bits(lmc_log(fabs(x) + 1e-300)));
        double_hash = fnv1a(double_hash, double_bits(s));
        double_hash = fnv1a(double_hash, double_bits(c));
    }
    print_message("golden: float %016llx double %016llx\n", (unsigned long long)float_hash,
                  (unsigned long long)double_hash);
    assert_true(float_hash == 0x2dcef773be634874ull);
    assert_true(double_hash == 0x36a6b4316ddfdc4dull);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_accuracy),
        cmocka_unit_test(test_expf_special_values),
        cmocka_unit_test(test_logf_accuracy),
        cmocka_unit_test(test_logf_special_values),
        cmocka_unit_test(test_silu_and_rsqrt),
        cmocka_unit_test(test_exp_log_double_accuracy),
        cmocka_unit_test(test_sincos_accuracy),
        cmocka_unit_test(test_double_special_values),
        cmocka_unit_test(test_sum8_order),
        cmocka_unit_test(test_golden_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
