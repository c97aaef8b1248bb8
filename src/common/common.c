/* Shared utilities: buffers, varints, messages, checksums, SIMD selection. */
#include "common/common.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- Growable byte buffer ---- */

void lmc_buf_init(lmc_buf *buf) {
    buf->data = NULL;
    buf->size = 0;
    buf->capacity = 0;
}

void lmc_buf_free(lmc_buf *buf) {
    free(buf->data);
    lmc_buf_init(buf);
}

lmc_status lmc_buf_reserve(lmc_buf *buf, size_t extra) {
    if (extra > SIZE_MAX - buf->size)
        return LMC_ERR_NOMEM;
    size_t needed = buf->size + extra;
    if (needed <= buf->capacity)
        return LMC_OK;
    size_t capacity = buf->capacity ? buf->capacity : 256;
    while (capacity < needed)
        capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;
    uint8_t *data = realloc(buf->data, capacity);
    if (!data)
        return LMC_ERR_NOMEM;
    buf->data = data;
    buf->capacity = capacity;
    return LMC_OK;
}

lmc_status lmc_buf_append(lmc_buf *buf, const void *data, size_t size) {
    if (size == 0)
        return LMC_OK;
    lmc_status status = lmc_buf_reserve(buf, size);
    if (status != LMC_OK)
        return status;
    memcpy(buf->data + buf->size, data, size);
    buf->size += size;
    return LMC_OK;
}

lmc_status lmc_buf_append_byte(lmc_buf *buf, uint8_t byte) {
    return lmc_buf_append(buf, &byte, 1);
}

void lmc_buf_consume(lmc_buf *buf, size_t count) {
    if (count >= buf->size) {
        buf->size = 0;
        return;
    }
    memmove(buf->data, buf->data + count, buf->size - count);
    buf->size -= count;
}

size_t lmc_buf_read(lmc_buf *buf, size_t *pos, void *out, size_t capacity) {
    size_t n = LMC_MIN(capacity, buf->size - *pos);
    if (n == 0)
        return 0;
    memcpy(out, buf->data + *pos, n);
    *pos += n;
    if (*pos == buf->size)
        buf->size = *pos = 0;
    return n;
}

void lmc_buf_compact(lmc_buf *buf, size_t *pos) {
    lmc_buf_consume(buf, *pos);
    *pos = 0;
}

/* ---- Varints ---- */

lmc_status lmc_varint_put(lmc_buf *buf, uint64_t value) {
    uint8_t bytes[10];
    size_t n = 0;
    do {
        uint8_t byte = value & 0x7f;
        value >>= 7;
        bytes[n++] = byte | (value ? 0x80 : 0);
    } while (value);
    return lmc_buf_append(buf, bytes, n);
}

lmc_status lmc_varint_get(const uint8_t *data, size_t size, size_t *pos, uint64_t *value) {
    uint64_t result = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= size)
            return LMC_ERR_TRUNCATED;
        uint8_t byte = data[(*pos)++];
        uint64_t bits = byte & 0x7f;
        if (i == 9 && bits > 1)
            return LMC_ERR_CORRUPT; /* would overflow 64 bits */
        result |= bits << (7 * i);
        if (!(byte & 0x80)) {
            if (i > 0 && bits == 0)
                return LMC_ERR_CORRUPT; /* non-canonical: one encoding per value */
            *value = result;
            return LMC_OK;
        }
    }
    return LMC_ERR_CORRUPT;
}

/* ---- Messages ---- */

lmc_status lmc_fail(lmc_message *message, lmc_status status, const char *format, ...) {
    if (message) {
        va_list args;
        va_start(args, format);
        vsnprintf(message->text, sizeof message->text, format, args);
        va_end(args);
    }
    return status;
}

/* ---- Checksums ---- */

uint64_t lmc_checksum64(const void *data, size_t size) {
    return XXH3_64bits(data, size);
}

void lmc_hash128(const void *data, size_t size, uint8_t out[16]) {
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits(data, size));
    memcpy(out, canonical.digest, 16);
}

/* ---- CPU features ---- */

static int simd_forced = -1;

static lmc_simd_level simd_supported(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        return LMC_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2"))
        return LMC_SIMD_AVX2;
#endif
    return LMC_SIMD_SCALAR;
}

static int simd_from_environment(void) {
    const char *value = getenv("LMC_SIMD");
    if (!value || !*value)
        return -1;
    if (!strcmp(value, "scalar"))
        return LMC_SIMD_SCALAR;
    if (!strcmp(value, "avx2"))
        return LMC_SIMD_AVX2;
    if (!strcmp(value, "avx512"))
        return LMC_SIMD_AVX512;
    return -1;
}

lmc_simd_level lmc_simd_selected(void) {
    /* Found on first use, by any thread: threads that race here store the
     * same values, atomically. */
    static _Atomic int supported = -1, requested = -2;
    if (atomic_load_explicit(&supported, memory_order_relaxed) < 0)
        atomic_store_explicit(&supported, simd_supported(), memory_order_relaxed);
    if (atomic_load_explicit(&requested, memory_order_relaxed) == -2)
        atomic_store_explicit(&requested, simd_from_environment(), memory_order_relaxed);
    const int have = atomic_load_explicit(&supported, memory_order_relaxed);
    const int asked = atomic_load_explicit(&requested, memory_order_relaxed);
    int level = simd_forced >= 0 ? simd_forced : asked >= 0 ? asked : have;
    return (lmc_simd_level)LMC_MIN(level, have);
}

void lmc_simd_force(int level) {
    simd_forced = level;
}

const char *lmc_simd_name(lmc_simd_level level) {
    switch (level) {
    case LMC_SIMD_AVX512: return "avx512";
    case LMC_SIMD_AVX2: return "avx2";
    default: return "scalar";
    }
}

int lmc_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)LMC_MIN(n, 1024) : 1;
}
