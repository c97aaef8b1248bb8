/*
 * ggml tensor types: the table of block sizes and the dequantisation of
 * every type lmc reads into float32.
 *
 * The block layouts and formulas are those of ggml (ggml-common.h and
 * ggml-quants.c); each function below states its layout. Products are
 * evaluated in ggml's order (for example (d * sc) * q) so that the result
 * equals ggml's dequantisation bit for bit: the build never contracts
 * them into FMA.
 */
#include <string.h>

#include "model/model.h"

typedef struct {
    const char *name;
    uint32_t block_elements; /* values per block */
    uint32_t block_bytes;    /* bytes per block */
} type_info;

#define QK 32   /* elements per block of the legacy types */
#define QK_K 256 /* elements per super-block of the k-quants */

static const type_info *find_type(lmc_ggml_type type) {
    static const struct {
        lmc_ggml_type type;
        type_info info;
    } table[] = {
        {LMC_GGML_F32, {"f32", 1, 4}},
        {LMC_GGML_F16, {"f16", 1, 2}},
        {LMC_GGML_Q4_0, {"q4_0", QK, 2 + QK / 2}},
        {LMC_GGML_Q4_1, {"q4_1", QK, 4 + QK / 2}},
        {LMC_GGML_Q5_0, {"q5_0", QK, 2 + 4 + QK / 2}},
        {LMC_GGML_Q5_1, {"q5_1", QK, 4 + 4 + QK / 2}},
        {LMC_GGML_Q8_0, {"q8_0", QK, 2 + QK}},
        {LMC_GGML_Q8_1, {"q8_1", QK, 4 + QK}},
        {LMC_GGML_Q2_K, {"q2_K", QK_K, QK_K / 16 + QK_K / 4 + 4}},
        {LMC_GGML_Q3_K, {"q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2}},
        {LMC_GGML_Q4_K, {"q4_K", QK_K, 4 + 12 + QK_K / 2}},
        {LMC_GGML_Q5_K, {"q5_K", QK_K, 4 + 12 + QK_K / 8 + QK_K / 2}},
        {LMC_GGML_Q6_K, {"q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2}},
        {LMC_GGML_Q8_K, {"q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2}},
        {LMC_GGML_I8, {"i8", 1, 1}},
        {LMC_GGML_I16, {"i16", 1, 2}},
        {LMC_GGML_I32, {"i32", 1, 4}},
        {LMC_GGML_I64, {"i64", 1, 8}},
        {LMC_GGML_F64, {"f64", 1, 8}},
        {LMC_GGML_BF16, {"bf16", 1, 2}},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].type == type) return &table[i].info;
    return NULL;
}

const char *lmc_ggml_type_name(lmc_ggml_type type) {
    const type_info *info = find_type(type);
    return info ? info->name : "unknown";
}

uint32_t lmc_ggml_block_elements(lmc_ggml_type type) {
    const type_info *info = find_type(type);
    return info ? info->block_elements : 0;
}

uint32_t lmc_ggml_block_bytes(lmc_ggml_type type) {
    const type_info *info = find_type(type);
    return info ? info->block_bytes : 0;
}

/* IEEE half to float, exactly (subnormals, infinities and NaNs included). */
float lmc_half_to_float(uint16_t half) {
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        /* Subnormal half: shift the leading 1 up to the implicit position. */
        uint32_t shifts = 0;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            shifts++;
        }
        bits = sign | ((127 - 15 + 1 - shifts) << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float half_at(const uint8_t *p) { return lmc_half_to_float(le16(p)); }

static float float_at(const uint8_t *p) {
    uint32_t bits = lmc_get_le32(p);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Q4_0: half d; 16 bytes of nibbles. Low nibbles are values 0..15, high
 * nibbles values 16..31; x = (q - 8) * d. */
static void dequant_q4_0(const uint8_t *block, float *y) {
    float d = half_at(block);
    const uint8_t *qs = block + 2;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (float)((qs[j] & 0x0f) - 8) * d;
        y[j + QK / 2] = (float)((qs[j] >> 4) - 8) * d;
    }
}

/* Q4_1: half d, half m; 16 bytes of nibbles; x = q * d + m. */
static void dequant_q4_1(const uint8_t *block, float *y) {
    float d = half_at(block), m = half_at(block + 2);
    const uint8_t *qs = block + 4;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (float)(qs[j] & 0x0f) * d + m;
        y[j + QK / 2] = (float)(qs[j] >> 4) * d + m;
    }
}

/* The fifth bits of Q5_0/Q5_1: bit j of the little-endian qh word belongs
 * to value j (low nibbles), bit j + 16 to value j + 16 (high nibbles). */
static void q5_values(const uint8_t *qh_bytes, const uint8_t *qs, int *q) {
    uint32_t qh = lmc_get_le32(qh_bytes);
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (qs[j] & 0x0f) | (int)(((qh >> j) << 4) & 0x10);
        q[j + QK / 2] = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
    }
}

/* Q5_0: half d; u32 qh; 16 bytes of nibbles; x = (q - 16) * d. */
static void dequant_q5_0(const uint8_t *block, float *y) {
    float d = half_at(block);
    int q[QK];
    q5_values(block + 2, block + 6, q);
    for (int j = 0; j < QK; j++) y[j] = (float)(q[j] - 16) * d;
}

/* Q5_1: half d, half m; u32 qh; 16 bytes of nibbles; x = q * d + m. */
static void dequant_q5_1(const uint8_t *block, float *y) {
    float d = half_at(block), m = half_at(block + 2);
    int q[QK];
    q5_values(block + 4, block + 8, q);
    for (int j = 0; j < QK; j++) y[j] = (float)q[j] * d + m;
}

/* Q8_0: half d; 32 int8; x = q * d. */
static void dequant_q8_0(const uint8_t *block, float *y) {
    float d = half_at(block);
    for (int j = 0; j < QK; j++) y[j] = (float)(int8_t)block[2 + j] * d;
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K, packed in 12
 * bytes: sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scales) and 4..7
 * (mins); sub-blocks 4..7 in the nibbles of bytes 8..11 plus the top two
 * bits of bytes 0..7. */
static void k_scale_min(int j, const uint8_t *scales, int *scale, int *min) {
    if (j < 4) {
        *scale = scales[j] & 63;
        *min = scales[j + 4] & 63;
    } else {
        *scale = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
        *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* Q4_K: half d, half dmin, 12 bytes of scales, 128 bytes of nibbles. Each
 * 64 values use 32 bytes: low nibbles first (sub-block 2i), then high
 * nibbles (sub-block 2i+1); x = (d * scale) * q - (dmin * min). */
static void dequant_q4_k(const uint8_t *block, float *y) {
    float d = half_at(block), dmin = half_at(block + 2);
    const uint8_t *scales = block + 4, *qs = block + 16;
    for (int i = 0; i < QK_K / 64; i++) {
        int sc0, m0, sc1, m1;
        k_scale_min(2 * i, scales, &sc0, &m0);
        k_scale_min(2 * i + 1, scales, &sc1, &m1);
        float d0 = d * (float)sc0, min0 = dmin * (float)m0;
        float d1 = d * (float)sc1, min1 = dmin * (float)m1;
        const uint8_t *q = qs + 32 * i;
        for (int l = 0; l < 32; l++) y[64 * i + l] = d0 * (float)(q[l] & 0x0f) - min0;
        for (int l = 0; l < 32; l++) y[64 * i + 32 + l] = d1 * (float)(q[l] >> 4) - min1;
    }
}

/* Q5_K: Q4_K plus 32 bytes qh before the nibbles: bit 2i of qh[l] is the
 * fifth bit of value 64i + l, bit 2i+1 that of value 64i + 32 + l. */
static void dequant_q5_k(const uint8_t *block, float *y) {
    float d = half_at(block), dmin = half_at(block + 2);
    const uint8_t *scales = block + 4, *qh = block + 16, *qs = block + 48;
    for (int i = 0; i < QK_K / 64; i++) {
        int sc0, m0, sc1, m1;
        k_scale_min(2 * i, scales, &sc0, &m0);
        k_scale_min(2 * i + 1, scales, &sc1, &m1);
        float d0 = d * (float)sc0, min0 = dmin * (float)m0;
        float d1 = d * (float)sc1, min1 = dmin * (float)m1;
        const uint8_t *q = qs + 32 * i;
        for (int l = 0; l < 32; l++) {
            int high = (qh[l] >> (2 * i)) & 1;
            y[64 * i + l] = d0 * (float)((q[l] & 0x0f) + 16 * high) - min0;
        }
        for (int l = 0; l < 32; l++) {
            int high = (qh[l] >> (2 * i + 1)) & 1;
            y[64 * i + 32 + l] = d1 * (float)((q[l] >> 4) + 16 * high) - min1;
        }
    }
}

/* Q6_K: 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8
 * scales (one per 16 values), half d. Each half of 128 values uses 64 ql
 * bytes, 32 qh bytes and 8 scales; value l + 32k (k = 0..3) takes the low
 * or high nibble of ql[l] or ql[l + 32] and bits 2k..2k+1 of qh[l];
 * x = (d * scale) * (q - 32). */
static void dequant_q6_k(const uint8_t *block, float *y) {
    const uint8_t *ql = block, *qh = block + 128;
    const int8_t *sc = (const int8_t *)(block + 192);
    float d = half_at(block + 208);
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

typedef void (*block_fn)(const uint8_t *block, float *y);

static block_fn block_decoder(lmc_ggml_type type) {
    switch (type) {
    case LMC_GGML_Q4_0: return dequant_q4_0;
    case LMC_GGML_Q4_1: return dequant_q4_1;
    case LMC_GGML_Q5_0: return dequant_q5_0;
    case LMC_GGML_Q5_1: return dequant_q5_1;
    case LMC_GGML_Q8_0: return dequant_q8_0;
    case LMC_GGML_Q4_K: return dequant_q4_k;
    case LMC_GGML_Q5_K: return dequant_q5_k;
    case LMC_GGML_Q6_K: return dequant_q6_k;
    default: return NULL;
    }
}

/* Converts n values of an element-wise type (block size 1); 0 if the type
 * is not one of them. */
static int convert_elements(lmc_ggml_type type, const uint8_t *src, uint64_t n, float *out) {
    switch (type) {
    case LMC_GGML_F32:
        for (uint64_t i = 0; i < n; i++) out[i] = float_at(src + 4 * i);
        return 1;
    case LMC_GGML_F16:
        for (uint64_t i = 0; i < n; i++) out[i] = half_at(src + 2 * i);
        return 1;
    case LMC_GGML_BF16:
        /* bf16 is the top half of a float32. */
        for (uint64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)le16(src + 2 * i) << 16;
            memcpy(&out[i], &bits, sizeof bits);
        }
        return 1;
    case LMC_GGML_I8:
        for (uint64_t i = 0; i < n; i++) out[i] = (float)(int8_t)src[i];
        return 1;
    case LMC_GGML_I16:
        for (uint64_t i = 0; i < n; i++) out[i] = (float)(int16_t)le16(src + 2 * i);
        return 1;
    case LMC_GGML_I32:
        for (uint64_t i = 0; i < n; i++) out[i] = (float)(int32_t)lmc_get_le32(src + 4 * i);
        return 1;
    default:
        return 0;
    }
}

lmc_status lmc_tensor_rows_to_f32(const lmc_gguf_tensor *tensor, uint64_t first_row, uint64_t n_rows, float *out,
                                  lmc_message *message) {
    const type_info *info = find_type(tensor->type);
    uint64_t row_length = tensor->ne[0];
    uint64_t total_rows = row_length ? tensor->n_elements / row_length : 0;
    if (!info || first_row > total_rows || n_rows > total_rows - first_row)
        return lmc_fail(message, LMC_ERR_PARAM, "GGUF: rows %llu..%llu are outside tensor '%s'",
                        (unsigned long long)first_row, (unsigned long long)(first_row + n_rows), tensor->name);
    /* The reader guarantees ne[0] is a whole number of blocks. */
    uint64_t row_bytes = row_length / info->block_elements * info->block_bytes;
    const uint8_t *src = (const uint8_t *)tensor->data + first_row * row_bytes;
    uint64_t n = n_rows * row_length;
    if (convert_elements(tensor->type, src, n, out)) return LMC_OK;
    block_fn decode = block_decoder(tensor->type);
    if (!decode)
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "GGUF: tensor '%s' has type %s, which lmc cannot dequantise",
                        tensor->name, info->name);
    for (uint64_t b = 0; b < n / info->block_elements; b++)
        decode(src + b * info->block_bytes, out + b * info->block_elements);
    return LMC_OK;
}

lmc_status lmc_tensor_to_f32(const lmc_gguf_tensor *tensor, float *out, lmc_message *message) {
    if (tensor->n_elements == 0) return LMC_OK;
    return lmc_tensor_rows_to_f32(tensor, 0, tensor->n_elements / tensor->ne[0], out, message);
}
