/*
 * AVX2 versions of the per-row float operations: lmc_expf (for softmax and
 * SiLU), the lmc_sum8 lane order, and the quantisation rules of qmat.c.
 * Each reproduces its scalar definition bit for bit: the same IEEE
 * operations in the same order,
 * written as separate _mm256_mul_ps / _mm256_add_ps / _mm256_sub_ps /
 * _mm256_div_ps intrinsics (never FMA, although -mfma is on), and exact
 * operations (truncation, comparisons, max, bit manipulation) elsewhere.
 * tests/test_nn.c compares them with the scalar functions.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "common/detmath.h"
#include "nn/kernels.h"

/* Lanes below n are all ones. */
static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 2^k as floats, for -126 <= k <= 127. */
static __m256 pow2_lanes(__m256i k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

/*
 * lmc_expf on 8 lanes, step for step as in common/detmath.c. Its final
 * scaling y * 2^k is written here as (y * 2^k1) * 2^k2 with
 *   k2 = 0        for -126 <= k <= 127 (the second product is exact),
 *   k1 = 127,     k2 = k - 127  for k > 127,
 *   k1 = k + 126, k2 = -126     for k < -126,
 * which are exactly detmath.c's three cases.
 */
static inline __attribute__((always_inline)) __m256 expf_lanes(__m256 x) {
    const __m256 magic = _mm256_set1_ps(0x1.8p23f);
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(0x1.715476p+0f));
    __m256 kf = _mm256_sub_ps(_mm256_add_ps(t, magic), magic);
    __m256i k = _mm256_cvttps_epi32(kf);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(kf, _mm256_set1_ps(0x1.63p-1f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(kf, _mm256_set1_ps(-0x1.bd0106p-13f)));
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(r, _mm256_mul_ps(_mm256_mul_ps(r, r), p));
    __m256 y = _mm256_add_ps(_mm256_set1_ps(1.0f), p);

    /* The usual case, every lane in [-87, 88] (no NaN): -126 <= k <= 127, so
     * k1 = k, the product by 2^k2 = 1 is exact, and no limit applies. */
    __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ),
                                    _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_LE_OQ));
    if (_mm256_movemask_ps(in_range) == 0xff)
        return _mm256_mul_ps(y, pow2_lanes(k));

    __m256i low = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), k);
    __m256i k1 = _mm256_min_epi32(k, _mm256_set1_epi32(127));
    __m256i k2 = _mm256_sub_epi32(k, k1);
    k1 = _mm256_blendv_epi8(k1, _mm256_add_epi32(k, _mm256_set1_epi32(126)), low);
    k2 = _mm256_blendv_epi8(k2, _mm256_set1_epi32(-126), low);
    __m256 result = _mm256_mul_ps(_mm256_mul_ps(y, pow2_lanes(k1)), pow2_lanes(k2));

    result = _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-104.0f), _CMP_LT_OQ));
    result = _mm256_blendv_ps(result, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(89.0f), _CMP_GT_OQ));
    return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* detmath.h's tree ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) over one register. */
static float combine_lanes(__m256 lanes) {
    __m256 pairs = _mm256_hadd_ps(lanes, lanes);
    __m256 quads = _mm256_hadd_ps(pairs, pairs);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
}

/* The largest of 8 lanes (none NaN). */
static float max_lanes(__m256 m) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
}

/* softmax's maximum: x[0], then every x[t] > max in turn (NaNs after x[0]
 * never win; a NaN x[0] stays). max_ps(v, m) returns m when v is NaN, so
 * the lanes skip NaNs as the scan does; lanes and scan agree on the value
 * of the maximum and can differ only in which of +0 and -0 wins a tie, so
 * a zero maximum is found again by the scan itself. */
static float softmax_max(const float *x, int n) {
    if (x[0] != x[0])
        return x[0];
    const __m256 first = _mm256_set1_ps(x[0]);
    __m256 m0 = first, m1 = first;
    int t = 1;
    for (; t + 16 <= n; t += 16) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + t), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + t + 8), m1);
    }
    for (; t < n; t += 8) { /* unused lanes repeat x[0] */
        __m256i mask = lanes_below(n - t);
        __m256 v = _mm256_blendv_ps(first, _mm256_maskload_ps(x + t, mask), _mm256_castsi256_ps(mask));
        m0 = _mm256_max_ps(v, m0);
    }
    float max = max_lanes(_mm256_max_ps(m0, m1));
    if (max == 0.0f) {
        max = x[0];
        for (t = 1; t < n; t++)
            if (x[t] > max)
                max = x[t];
    }
    return max;
}

float lmc_softmax_avx2(float *x, int n) {
    const float max = softmax_max(x, n);
    const __m256 max_v = _mm256_set1_ps(max);
    /* lmc_sum8 with its lanes in one register, each group added as it is
     * computed; a partial last group adds -0 in its unused lanes, which
     * changes no value. */
    __m256 sum = _mm256_setzero_ps();
    int t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 e = expf_lanes(_mm256_sub_ps(_mm256_loadu_ps(x + t), max_v));
        _mm256_storeu_ps(x + t, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (t < n) {
        __m256i mask = lanes_below(n - t);
        __m256 e = expf_lanes(_mm256_sub_ps(_mm256_maskload_ps(x + t, mask), max_v));
        _mm256_maskstore_ps(x + t, mask, e);
        sum = _mm256_add_ps(sum, _mm256_blendv_ps(_mm256_set1_ps(-0.0f), e, _mm256_castsi256_ps(mask)));
    }
    return combine_lanes(sum);
}

/* silu(g) * u = (g / (1 + lmc_expf(-g))) * u, as lmc_silu then one product. */
static __m256 swiglu_lanes(__m256 g, __m256 u) {
    __m256 e = expf_lanes(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void lmc_swiglu_avx2(const float *gate, const float *up, int n, float *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, swiglu_lanes(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i mask = lanes_below(n - i);
        _mm256_maskstore_ps(out + i, mask,
                            swiglu_lanes(_mm256_maskload_ps(gate + i, mask), _mm256_maskload_ps(up + i, mask)));
    }
}

/* ---- Quantisation (the rule of qmat.c) ---- */

static float max_abs(const float *x, int n) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps();
    int i = 0;
    /* max_ps returns its second operand when the first is NaN: NaNs are skipped. */
    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), m);
    if (i < n)
        m = _mm256_max_ps(_mm256_and_ps(_mm256_maskload_ps(x + i, lanes_below(n - i)), abs_mask), m);
    return max_lanes(m);
}

/* round_half_away(clamp(x / scale, -qmax, qmax)) as int32 lanes; NaN gives 0.
 * trunc and v - trunc(v) are exact, so the +-1 step is exact rounding. */
static __m256i quantize_lanes(__m256 x, __m256 scale, __m256 qmax) {
    __m256 v = _mm256_div_ps(x, scale);
    __m256 whole = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 fraction = _mm256_sub_ps(v, whole);
    __m256 one = _mm256_set1_ps(1.0f);
    whole = _mm256_add_ps(whole, _mm256_and_ps(_mm256_cmp_ps(fraction, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
    whole = _mm256_sub_ps(whole, _mm256_and_ps(_mm256_cmp_ps(fraction, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one));
    whole = _mm256_min_ps(_mm256_max_ps(whole, _mm256_sub_ps(_mm256_setzero_ps(), qmax)), qmax);
    whole = _mm256_and_ps(whole, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_cvtps_epi32(whole);
}

/* 32 int32 lanes in [-128, 127] as 32 bytes in element order (the packs
 * work per 128-bit half; the permute restores the order). */
static __m256i pack_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* qmat.c's rule with a QMAX of at most 127 (one int8 per value). */
static float quantize_int8(const float *x, int n, float qmax_value, int8_t *q) {
    float scale = max_abs(x, n) / qmax_value;
    if (!(scale > 0.0f)) {
        memset(q, 0, (size_t)(n > 0 ? n : 0));
        return 0.0f;
    }
    const __m256 scale_v = _mm256_set1_ps(scale), qmax = _mm256_set1_ps(qmax_value);
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = quantize_lanes(_mm256_loadu_ps(x + i), scale_v, qmax);
        __m256i b = quantize_lanes(_mm256_loadu_ps(x + i + 8), scale_v, qmax);
        __m256i c = quantize_lanes(_mm256_loadu_ps(x + i + 16), scale_v, qmax);
        __m256i d = quantize_lanes(_mm256_loadu_ps(x + i + 24), scale_v, qmax);
        _mm256_storeu_si256((__m256i *)(q + i), pack_bytes(a, b, c, d));
    }
    for (; i < n; i += 8) {
        int32_t lanes[8];
        __m256i mask = lanes_below(n - i);
        _mm256_storeu_si256((__m256i *)lanes, quantize_lanes(_mm256_maskload_ps(x + i, mask), scale_v, qmax));
        for (int j = 0; j < 8 && i + j < n; j++)
            q[i + j] = (int8_t)lanes[j];
    }
    return scale;
}

float lmc_quantize_row_avx2(const float *x, int n, int8_t *q) {
    return quantize_int8(x, n, 127.0f, q);
}

float lmc_quantize_activation7_avx2(const float *x, int n, int8_t *planes) {
    memset(planes, 0, (size_t)(n > 0 ? n : 0));
    return quantize_int8(x, n, (float)LMC_ACT7_QMAX, planes + (n > 0 ? n : 0));
}

/* The int16 activation rule: q split into hi = (q + 128) >> 8 (an
 * arithmetic shift: the floor) and lo = q - 256 * hi. */
static __m256i high_plane(__m256i q) {
    return _mm256_srai_epi32(_mm256_add_epi32(q, _mm256_set1_epi32(128)), 8);
}

static __m256i low_plane(__m256i q, __m256i hi) {
    return _mm256_sub_epi32(q, _mm256_slli_epi32(hi, 8));
}

float lmc_quantize_activation_avx2(const float *x, int n, int8_t *planes) {
    float scale = max_abs(x, n) / (float)LMC_ACT_QMAX;
    if (!(scale > 0.0f))
        return lmc_quantize_activation_scalar(x, n, planes);
    const __m256 scale_v = _mm256_set1_ps(scale), qmax = _mm256_set1_ps((float)LMC_ACT_QMAX);
    int8_t *hi = planes, *lo = planes + n;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = quantize_lanes(_mm256_loadu_ps(x + i), scale_v, qmax);
        __m256i b = quantize_lanes(_mm256_loadu_ps(x + i + 8), scale_v, qmax);
        __m256i c = quantize_lanes(_mm256_loadu_ps(x + i + 16), scale_v, qmax);
        __m256i d = quantize_lanes(_mm256_loadu_ps(x + i + 24), scale_v, qmax);
        __m256i ha = high_plane(a), hb = high_plane(b), hc = high_plane(c), hd = high_plane(d);
        _mm256_storeu_si256((__m256i *)(hi + i), pack_bytes(ha, hb, hc, hd));
        _mm256_storeu_si256((__m256i *)(lo + i),
                            pack_bytes(low_plane(a, ha), low_plane(b, hb), low_plane(c, hc), low_plane(d, hd)));
    }
    for (; i < n; i += 8) {
        int32_t high[8], low[8];
        __m256i mask = lanes_below(n - i);
        __m256i q = quantize_lanes(_mm256_maskload_ps(x + i, mask), scale_v, qmax);
        __m256i h = high_plane(q);
        _mm256_storeu_si256((__m256i *)high, h);
        _mm256_storeu_si256((__m256i *)low, low_plane(q, h));
        for (int j = 0; j < 8 && i + j < n; j++) {
            hi[i + j] = (int8_t)high[j];
            lo[i + j] = (int8_t)low[j];
        }
    }
    return scale;
}

/* ---- CDFs from logits (coder/cdf.c) ---- */

float lmc_cdf_values_avx2(const float *logits, int n, float *v) {
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 m = minus_inf;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(logits + i);
        x = _mm256_blendv_ps(x, minus_inf, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        _mm256_storeu_ps(v + i, x);
        m = _mm256_max_ps(x, m);
    }
    float max = max_lanes(m);
    for (; i < n; i++) {
        v[i] = logits[i] == logits[i] ? logits[i] : -INFINITY;
        max = v[i] > max ? v[i] : max;
    }
    return max;
}

/* The total is kept in 64-bit lanes; each lane's best frequency and its
 * index are replaced only by a strictly larger one, so each lane keeps the
 * lowest index of its largest, and the lowest of the lanes holding the
 * overall largest is the scalar answer. The last n % 8 symbols come after
 * every vector one, and take over only when strictly larger, as there. */
uint64_t lmc_cdf_freqs_avx2(const float *weight, int n, float scale, uint32_t *freq, int *argmax) {
    const __m256 scale_v = _mm256_set1_ps(scale);
    const __m256i one = _mm256_set1_epi32(1), step = _mm256_set1_epi32(8);
    __m256i total_v = _mm256_setzero_si256(), best = total_v, best_at = total_v;
    __m256i at = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int i = 0;
    for (; i + 8 <= n; i += 8, at = _mm256_add_epi32(at, step)) {
        __m256i f = _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_mul_ps(_mm256_loadu_ps(weight + i), scale_v)), one);
        _mm256_storeu_si256((__m256i *)(freq + i), f);
        total_v = _mm256_add_epi64(total_v, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(f)));
        total_v = _mm256_add_epi64(total_v, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(f, 1)));
        __m256i larger = _mm256_cmpgt_epi32(f, best); /* frequencies are below 2^31 */
        best = _mm256_blendv_epi8(best, f, larger);
        best_at = _mm256_blendv_epi8(best_at, at, larger);
    }
    uint64_t lanes[4];
    uint32_t best_lanes[8];
    int32_t at_lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, total_v);
    _mm256_storeu_si256((__m256i *)best_lanes, best);
    _mm256_storeu_si256((__m256i *)at_lanes, best_at);
    uint64_t total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    uint32_t largest = 0;
    int largest_at = 0;
    for (int j = 0; j < 8; j++)
        if (best_lanes[j] > largest || (best_lanes[j] == largest && at_lanes[j] < largest_at)) {
            largest = best_lanes[j];
            largest_at = at_lanes[j];
        }
    for (; i < n; i++) {
        uint32_t f = 1 + (uint32_t)(weight[i] * scale);
        freq[i] = f;
        total += f;
        if (f > largest) {
            largest = f;
            largest_at = i;
        }
    }
    *argmax = largest_at;
    return total;
}

/* 8 running sums per step: within each 128-bit half by two shifted adds,
 * then the low half's total into the high half, then the sum so far (the
 * carry: one add per step depends on the step before). */
void lmc_prefix_sums_avx2(uint32_t *cum, int n) {
    __m256i carry = _mm256_setzero_si256();
    const __m256i last = _mm256_set1_epi32(7);
    uint32_t *x = cum + 1;
    cum[0] = 0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        v = _mm256_add_epi32(v, _mm256_slli_si256(v, 4));
        v = _mm256_add_epi32(v, _mm256_slli_si256(v, 8));
        __m256i low_total = _mm256_shuffle_epi32(v, _MM_SHUFFLE(3, 3, 3, 3));
        v = _mm256_add_epi32(v, _mm256_permute2x128_si256(low_total, low_total, 0x08));
        _mm256_storeu_si256((__m256i *)(x + i), _mm256_add_epi32(v, carry));
        carry = _mm256_add_epi32(carry, _mm256_permutevar8x32_epi32(v, last));
    }
    for (i += 1; i <= n; i++)
        cum[i] += cum[i - 1];
}
