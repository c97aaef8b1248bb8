/*
 * A fixed pool of worker threads for parallel-for loops, and progress
 * counters that work in one loop can wait on (lmc_progress, at the end).
 *
 * The caller works too, so a pool of N threads has N-1 workers. A loop over
 * [0, n) is cut into contiguous chunks, fixed by (n, threads), that the
 * threads take in turn from an atomic counter: a thread the operating
 * system has descheduled (on a shared machine) holds up no more than the
 * chunk it is running. Which thread runs a chunk depends on timing, but
 * callers make each index's work independent, so results never depend on
 * it or on the thread count.
 *
 * The engine runs dozens of short parallel loops per forward pass, a few
 * microseconds apart. Waking a sleeping thread through a condition variable
 * costs tens of microseconds, so workers (and the caller, waiting for them)
 * first spin for a while on the atomic counters and only then sleep. The
 * spin yields the CPU every few pauses: on a machine shared with other
 * processes the thread that has work may be waiting for this very CPU
 * (measured: pausing alone made 2 threads 2.4x slower than 1 there).
 * Spinning is skipped when the pool has more threads than the machine has
 * CPUs: a spinning thread would then hold a CPU that a working one needs.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "common/common.h"

/* Chunks per thread: enough that the others can take over the chunks of a
 * thread that runs late, few enough that taking one costs nothing. */
#define CHUNKS_PER_THREAD 4
/* How long a waiting thread spins before it sleeps: longer than the gaps
 * between the parallel loops of a forward pass, short enough that an idle
 * pool soon stops using CPU. */
#define SPIN_NANOSECONDS 200000
/* Pauses between two looks at the clock, and between two yields, while
 * spinning. */
#define SPINS_PER_CLOCK_CHECK 64
#define SPINS_PER_YIELD 8

/* The job word: generation (32 bits) | next chunk (16) | chunk count (16).
 * Everything a thread needs to claim a chunk is in this one word, so a
 * claim (compare-and-swap) fails if the job changed since it was read. */
#define WORD_GENERATION(w) ((uint32_t)((w) >> 32))
#define WORD_NEXT(w) ((int)(((w) >> 16) & 0xffff))
#define WORD_COUNT(w) ((int)((w) & 0xffff))
#define WORD_NEXT_ONE ((uint64_t)1 << 16)
#define MAX_CHUNKS 0xffff

struct lmc_pool {
    int threads;
    int spin; /* whether waiting threads spin before sleeping */
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    /* The current job, written before the job word publishes it. */
    lmc_range_fn fn;
    void *ctx;
    int n, chunk_size;
    uint32_t generation;   /* the caller's copy of the job word's generation */
    _Atomic uint64_t word; /* see WORD_* */
    atomic_int finished;   /* chunks of the current job done */
    atomic_int sleepers;   /* workers asleep (or about to be) on work_ready */
    atomic_int caller_asleep;
    atomic_int stopping;
};

/* All atomics here are sequentially consistent: the sleep handshakes need
 * it, and on x86 the loads that spin cost no more than acquire loads. */

void lmc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_nanoseconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spins until done(pool, arg) or the spin time is over; returns done's value. */
static int spin_until(lmc_pool *pool, int (*done)(lmc_pool *, uint32_t), uint32_t arg) {
    if (!pool->spin)
        return done(pool, arg);
    long long deadline = 0;
    for (unsigned i = 1;; i++) {
        if (done(pool, arg))
            return 1;
        lmc_cpu_relax();
        if (i % SPINS_PER_YIELD == 0)
            sched_yield();
        if (i % SPINS_PER_CLOCK_CHECK == 0) {
            long long now = now_nanoseconds();
            if (!deadline)
                deadline = now + SPIN_NANOSECONDS;
            else if (now > deadline)
                return 0;
        }
    }
}

static int new_work(lmc_pool *pool, uint32_t seen) {
    return WORD_GENERATION(atomic_load(&pool->word)) != seen || atomic_load(&pool->stopping);
}

static int job_finished(lmc_pool *pool, uint32_t count) {
    return atomic_load(&pool->finished) == (int)count;
}

/* Runs chunks of job `generation` until none is left to take. */
static void run_chunks(lmc_pool *pool, uint32_t generation) {
    for (;;) {
        uint64_t word = atomic_load(&pool->word);
        if (WORD_GENERATION(word) != generation || WORD_NEXT(word) >= WORD_COUNT(word))
            return;
        if (!atomic_compare_exchange_weak(&pool->word, &word, word + WORD_NEXT_ONE))
            continue;
        /* The chunk is ours: the job cannot change before it is finished. */
        int begin = WORD_NEXT(word) * pool->chunk_size;
        pool->fn(pool->ctx, begin, LMC_MIN(pool->n, begin + pool->chunk_size));
        if (atomic_fetch_add(&pool->finished, 1) + 1 == WORD_COUNT(word) && atomic_load(&pool->caller_asleep)) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->work_done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

/* Sleeps until new work. The sleeper count is raised before the last look
 * at the job word, and the caller publishes a job before it reads the
 * count, so either this thread sees the new job or the caller sees a
 * sleeper and broadcasts under the lock. */
static void sleep_until_new_work(lmc_pool *pool, uint32_t seen) {
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add(&pool->sleepers, 1);
    while (!new_work(pool, seen))
        pthread_cond_wait(&pool->work_ready, &pool->lock);
    atomic_fetch_sub(&pool->sleepers, 1);
    pthread_mutex_unlock(&pool->lock);
}

static void *worker_main(void *arg) {
    lmc_pool *pool = arg;
    uint32_t seen = 0;
    for (;;) {
        if (!spin_until(pool, new_work, seen))
            sleep_until_new_work(pool, seen);
        if (atomic_load(&pool->stopping))
            return NULL;
        seen = WORD_GENERATION(atomic_load(&pool->word));
        run_chunks(pool, seen);
    }
}

static void wake_sleepers(lmc_pool *pool) {
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->work_ready);
        pthread_mutex_unlock(&pool->lock);
    }
}

static void stop_workers(lmc_pool *pool, int started) {
    atomic_store(&pool->stopping, 1);
    wake_sleepers(pool);
    for (int i = 0; i < started; i++)
        pthread_join(pool->workers[i], NULL);
}

lmc_pool *lmc_pool_create(int threads) {
    if (threads <= 0)
        threads = lmc_cpu_count();
    lmc_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->threads = threads;
    pool->spin = threads <= lmc_cpu_count();
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->work_done, NULL);
    atomic_init(&pool->word, 0);
    atomic_init(&pool->finished, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_asleep, 0);
    atomic_init(&pool->stopping, 0);
    pool->workers = calloc((size_t)threads, sizeof *pool->workers);
    if (!pool->workers) {
        lmc_pool_free(pool);
        return NULL;
    }
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&pool->workers[i - 1], NULL, worker_main, pool) != 0) {
            stop_workers(pool, i - 1);
            pool->threads = 1; /* nothing left to join in lmc_pool_free */
            lmc_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void lmc_pool_free(lmc_pool *pool) {
    if (!pool)
        return;
    if (pool->workers && pool->threads > 1)
        stop_workers(pool, pool->threads - 1);
    pthread_cond_destroy(&pool->work_ready);
    pthread_cond_destroy(&pool->work_done);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

int lmc_pool_threads(const lmc_pool *pool) {
    return pool ? pool->threads : 1;
}

/* Waits for chunks other threads are still running; the same handshake as
 * sleep_until_new_work, with caller_asleep as the flag a finishing thread
 * reads. */
static void wait_for_chunks(lmc_pool *pool, uint32_t count) {
    if (spin_until(pool, job_finished, count))
        return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->caller_asleep, 1);
    while (!job_finished(pool, count))
        pthread_cond_wait(&pool->work_done, &pool->lock);
    atomic_store(&pool->caller_asleep, 0);
    pthread_mutex_unlock(&pool->lock);
}

void lmc_pool_for(lmc_pool *pool, int n, lmc_range_fn fn, void *ctx) {
    if (n <= 0)
        return;
    if (!pool || pool->threads == 1 || n == 1) {
        fn(ctx, 0, n);
        return;
    }
    int chunks = LMC_MIN(LMC_MIN(n, pool->threads * CHUNKS_PER_THREAD), MAX_CHUNKS);
    pool->chunk_size = (n + chunks - 1) / chunks;
    chunks = (n + pool->chunk_size - 1) / pool->chunk_size;
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    atomic_store(&pool->finished, 0);
    pool->generation++;
    atomic_store(&pool->word, (uint64_t)pool->generation << 32 | (uint64_t)chunks); /* publishes the job */
    wake_sleepers(pool);
    run_chunks(pool, pool->generation);
    wait_for_chunks(pool, (uint32_t)chunks);
}

/* ---- Progress ----
 * A unit of work here (a video frame) takes milliseconds at least, so
 * waiting threads sleep on a condition variable at once: no spinning. */

struct lmc_progress {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint8_t *done;     /* per unit */
    uint32_t units;
    uint32_t prefix;   /* units 0 to prefix - 1 are all done */
};

lmc_progress *lmc_progress_create(uint32_t units) {
    lmc_progress *progress = calloc(1, sizeof *progress);
    if (!progress)
        return NULL;
    progress->done = calloc(units ? units : 1, 1);
    if (!progress->done) {
        free(progress);
        return NULL;
    }
    progress->units = units;
    pthread_mutex_init(&progress->lock, NULL);
    pthread_cond_init(&progress->changed, NULL);
    return progress;
}

void lmc_progress_free(lmc_progress *progress) {
    if (!progress)
        return;
    pthread_cond_destroy(&progress->changed);
    pthread_mutex_destroy(&progress->lock);
    free(progress->done);
    free(progress);
}

void lmc_progress_mark(lmc_progress *progress, uint32_t unit) {
    pthread_mutex_lock(&progress->lock);
    if (unit < progress->units)
        progress->done[unit] = 1;
    while (progress->prefix < progress->units && progress->done[progress->prefix])
        progress->prefix++;
    pthread_cond_broadcast(&progress->changed);
    pthread_mutex_unlock(&progress->lock);
}

void lmc_progress_wait(lmc_progress *progress, uint32_t unit) {
    pthread_mutex_lock(&progress->lock);
    while (progress->prefix <= unit && progress->prefix < progress->units)
        pthread_cond_wait(&progress->changed, &progress->lock);
    pthread_mutex_unlock(&progress->lock);
}
