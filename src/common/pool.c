/*
 * A fixed pool of worker threads for parallel-for loops.
 *
 * The caller takes the first range itself, so a pool of N threads has N-1
 * workers. Ranges are contiguous and fixed by (n, threads): the split never
 * depends on timing, and callers make each index's work independent, so
 * results never depend on the thread count.
 */
#include <pthread.h>
#include <stdlib.h>

#include "common/common.h"

struct lmc_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    /* The current job. */
    lmc_range_fn fn;
    void *ctx;
    int n;
    unsigned generation; /* bumped for every job so workers see new work */
    int pending;         /* workers still running the current job */
    int stopping;
};

typedef struct {
    lmc_pool *pool;
    int index; /* 1..threads-1; the caller is 0 */
} worker_arg;

static void range_of(int n, int threads, int index, int *begin, int *end) {
    *begin = (int)((long long)n * index / threads);
    *end = (int)((long long)n * (index + 1) / threads);
}

static void *worker_main(void *arg_) {
    worker_arg *arg = arg_;
    lmc_pool *pool = arg->pool;
    unsigned seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && pool->generation == seen)
            pthread_cond_wait(&pool->work_ready, &pool->lock);
        if (pool->stopping)
            break;
        seen = pool->generation;
        lmc_range_fn fn = pool->fn;
        void *ctx = pool->ctx;
        int begin, end;
        range_of(pool->n, pool->threads, arg->index, &begin, &end);
        pthread_mutex_unlock(&pool->lock);
        if (begin < end)
            fn(ctx, begin, end);
        pthread_mutex_lock(&pool->lock);
        if (--pool->pending == 0)
            pthread_cond_signal(&pool->work_done);
    }
    pthread_mutex_unlock(&pool->lock);
    free(arg);
    return NULL;
}

static void stop_workers(lmc_pool *pool, int started) {
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
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
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->work_done, NULL);
    pool->workers = calloc((size_t)threads, sizeof *pool->workers);
    if (!pool->workers) {
        lmc_pool_free(pool);
        return NULL;
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (arg) {
            arg->pool = pool;
            arg->index = i;
        }
        if (!arg || pthread_create(&pool->workers[i - 1], NULL, worker_main, arg) != 0) {
            free(arg);
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

void lmc_pool_for(lmc_pool *pool, int n, lmc_range_fn fn, void *ctx) {
    if (n <= 0)
        return;
    if (!pool || pool->threads == 1 || n == 1) {
        fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    pool->pending = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);

    int begin, end;
    range_of(n, pool->threads, 0, &begin, &end);
    if (begin < end)
        fn(ctx, begin, end);

    pthread_mutex_lock(&pool->lock);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->work_done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}
