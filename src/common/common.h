/*
 * Shared utilities of every stage: growable byte buffers, varints,
 * formatted error messages, CPU feature selection and a thread pool.
 */
#ifndef LMC_COMMON_H
#define LMC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "lmc.h"

#define LMC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LMC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- Growable byte buffer ---- */
typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} lmc_buf;

void lmc_buf_init(lmc_buf *buf);
void lmc_buf_free(lmc_buf *buf);
/* Ensures room for `extra` more bytes; LMC_ERR_NOMEM on failure. */
lmc_status lmc_buf_reserve(lmc_buf *buf, size_t extra);
lmc_status lmc_buf_append(lmc_buf *buf, const void *data, size_t size);
lmc_status lmc_buf_append_byte(lmc_buf *buf, uint8_t byte);
/* Drops the first `count` bytes, keeping the rest. */
void lmc_buf_consume(lmc_buf *buf, size_t count);
/* Reading a buffer as a queue: copies up to `capacity` bytes from *pos on
 * and advances *pos; an emptied buffer resets to size 0. Call
 * lmc_buf_compact before appending to drop what was read (one move). */
size_t lmc_buf_read(lmc_buf *buf, size_t *pos, void *out, size_t capacity);
void lmc_buf_compact(lmc_buf *buf, size_t *pos);

/* ---- LEB128 unsigned varints (at most 10 bytes for 64 bits) ---- */
lmc_status lmc_varint_put(lmc_buf *buf, uint64_t value);
/* Reads one varint from data[*pos..size); advances *pos. LMC_ERR_TRUNCATED if
 * it runs off the end, LMC_ERR_CORRUPT if longer than 10 bytes or overflowing. */
lmc_status lmc_varint_get(const uint8_t *data, size_t size, size_t *pos, uint64_t *value);

/* ---- Little-endian fixed-width helpers ---- */
static inline void lmc_put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t lmc_get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void lmc_put_le64(uint8_t *p, uint64_t v) {
    lmc_put_le32(p, (uint32_t)v); lmc_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t lmc_get_le64(const uint8_t *p) {
    return (uint64_t)lmc_get_le32(p) | (uint64_t)lmc_get_le32(p + 4) << 32;
}

/* ---- Error messages: a fixed buffer per object, printf-style ---- */
#define LMC_MESSAGE_SIZE 512
typedef struct {
    char text[LMC_MESSAGE_SIZE];
} lmc_message;
/* Sets the message and returns `status`, so callers can `return lmc_fail(...)`. */
lmc_status lmc_fail(lmc_message *message, lmc_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Checksums and hashes (xxHash) ---- */
uint64_t lmc_checksum64(const void *data, size_t size);
/* 128-bit identity hash of a whole file's bytes (XXH3-128), big-endian order. */
void lmc_hash128(const void *data, size_t size, uint8_t out[16]);

/* ---- CPU features and the SIMD level (LMC_SIMD=scalar|avx2|avx512) ---- */
typedef enum { LMC_SIMD_SCALAR = 0, LMC_SIMD_AVX2 = 1, LMC_SIMD_AVX512 = 2 } lmc_simd_level;
/* The best level this CPU supports, lowered by LMC_SIMD if set. An LMC_SIMD
 * above what the CPU has is lowered to the best available (with no error). */
lmc_simd_level lmc_simd_selected(void);
const char *lmc_simd_name(lmc_simd_level level);
/* Tests: force a level (clamped to what the CPU has); -1 returns to the default. */
void lmc_simd_force(int level);
int lmc_cpu_count(void);
/* A pause for spin-waiting loops (x86 pause, Arm yield). */
void lmc_cpu_relax(void);

/* ---- Thread pool: a fixed set of workers running parallel-for loops ---- */
typedef struct lmc_pool lmc_pool;
/* threads <= 0: all cores. A pool of 1 runs everything on the caller. */
lmc_pool *lmc_pool_create(int threads);
void lmc_pool_free(lmc_pool *pool);
int lmc_pool_threads(const lmc_pool *pool);
/* Calls fn(ctx, begin, end) over [0, n) split into contiguous ranges (a few
 * per thread, taken by whichever thread is free), and waits. Each index is
 * in exactly one range. The split never changes results: each index's work
 * is independent of the others' timing (callers guarantee it). Ranges are
 * taken in increasing order and a range runs its indices in order, so work
 * at one index may wait (lmc_progress) for work at lower indices that
 * never waits itself: whatever it waits for has been taken by a thread
 * that is running it. */
typedef void (*lmc_range_fn)(void *ctx, int begin, int end);
void lmc_pool_for(lmc_pool *pool, int n, lmc_range_fn fn, void *ctx);

/* ---- Progress: numbered units of work that other threads wait for ---- */
typedef struct lmc_progress lmc_progress;
/* units: how many; none is done. NULL when out of memory. */
lmc_progress *lmc_progress_create(uint32_t units);
void lmc_progress_free(lmc_progress *progress);
/* Marks `unit` done (again: no effect) and wakes the waiting threads. */
void lmc_progress_mark(lmc_progress *progress, uint32_t unit);
/* Returns once units 0 to `unit` are all done. */
void lmc_progress_wait(lmc_progress *progress, uint32_t unit);

#endif /* LMC_COMMON_H */
