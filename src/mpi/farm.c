/*
 * Rank 0's side of an archive: jobs of consecutive blocks handed to the
 * ranks, results written in block order.
 *
 * Rank 0's main thread does all of MPI and all input and output; its own
 * share of the jobs is coded by a second thread (its "local" rank), so
 * neither waits for the other. Memory is bounded: at most one job per rank
 * is being coded, at most two jobs per rank are held until written, and
 * blocks are read ahead only to fill the ranks that are free. Jobs take up
 * to a batch of blocks (what the streams code together), fewer when the
 * blocks left must be shared among free ranks. Nothing waits by spinning:
 * the main thread polls, napping a millisecond when nothing moved.
 */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/farm.h"

#define MAX_JOB_BYTES (1u << 30) /* messages stay well under 2 GiB: MPI counts bytes in an int */
#define JOBS_PER_RANK 2

typedef enum { JOB_FREE, JOB_CODING, JOB_DONE } job_state;

typedef struct {
    job_state state;
    int count;
    farm_block *blocks;      /* count */
    lmc_buf message;         /* the JOB message, kept until it is sent */
    MPI_Request send;
    lmc_buf result;          /* the RESULT message */
} farm_job;

/* Rank 0's own share, coded on a thread of its own. */
typedef struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    farm_job *job;           /* handed over, not yet coded */
    int done;                /* the job's result is in */
    int quit;
    farm_worker worker;
} local_rank;

typedef struct {
    const farm_io *io;
    const char *subject;
    int ranks;
    int batch;               /* most blocks per job */
    int failed;
    farm_job *jobs;          /* a ring, by job number */
    int capacity;
    uint64_t issued, written;
    int *coding;             /* per rank: the slot of its job, or -1 */
    int free_ranks;
    uint64_t next_block;
    /* Read ahead, not yet in a job. */
    lmc_buf pending;
    size_t pending_read;
    farm_block *pending_blocks;
    int pending_count, pending_capacity;
    int ended;
    local_rank local;
} farm;

/* ---- The local rank ---- */

static void *local_main(void *argument) {
    local_rank *local = argument;
    pthread_mutex_lock(&local->lock);
    for (;;) {
        while (local->job == NULL && !local->quit)
            pthread_cond_wait(&local->wake, &local->lock);
        if (local->quit)
            break;
        farm_job *job = local->job;
        pthread_mutex_unlock(&local->lock);
        farm_worker_run(&local->worker, job->message.data, job->message.size, &job->result);
        pthread_mutex_lock(&local->lock);
        local->job = NULL;
        local->done = 1;
    }
    pthread_mutex_unlock(&local->lock);
    return NULL;
}

static void local_give(local_rank *local, farm_job *job) {
    pthread_mutex_lock(&local->lock);
    local->job = job;
    pthread_cond_signal(&local->wake);
    pthread_mutex_unlock(&local->lock);
}

static int local_take_done(local_rank *local) {
    pthread_mutex_lock(&local->lock);
    int done = local->done;
    local->done = 0;
    pthread_mutex_unlock(&local->lock);
    return done;
}

static void local_quit(local_rank *local) {
    pthread_mutex_lock(&local->lock);
    local->quit = 1;
    pthread_cond_signal(&local->wake);
    pthread_mutex_unlock(&local->lock);
    pthread_join(local->thread, NULL);
}

/* ---- Reading ahead ---- */

/* Reports the run's first failure; the run then stops handing out jobs. */
static int fail(farm *f, lmc_status status, const char *text) {
    if (!f->failed)
        cli_library_error(f->subject, status, text);
    f->failed = 1;
    return -1;
}

/* Reads blocks until `wanted` are pending or the input ends. */
static int read_ahead(farm *f, int wanted) {
    wanted = LMC_MIN(wanted, f->pending_capacity);
    lmc_buf_compact(&f->pending, &f->pending_read);
    while (!f->ended && f->pending_count < wanted) {
        farm_block *block = &f->pending_blocks[f->pending_count];
        int got = f->io->next(f->io->user, &f->pending, block);
        if (got < 0) {
            f->failed = 1;
            return -1;
        }
        f->ended = got == 0;
        f->pending_count += got;
    }
    return 0;
}

/* ---- Jobs ---- */

static farm_job *slot(farm *f, uint64_t number) {
    return &f->jobs[number % (uint64_t)f->capacity];
}

/* The next count pending blocks as a JOB message. */
static int make_job(farm *f, farm_job *job, int count) {
    size_t bytes = 0;
    for (int i = 0; i < count; i++)
        bytes += f->pending_blocks[i].size;
    job->message.size = 0;
    uint8_t first[8];
    lmc_put_le64(first, f->next_block);
    job->blocks = malloc((size_t)count * sizeof *job->blocks);
    if (!job->blocks || lmc_buf_append(&job->message, first, 8) != LMC_OK ||
        lmc_buf_append(&job->message, f->pending.data + f->pending_read, bytes) != LMC_OK)
        return fail(f, LMC_ERR_NOMEM, "out of memory");
    f->pending_read += bytes;
    memcpy(job->blocks, f->pending_blocks, (size_t)count * sizeof *job->blocks);
    f->pending_count -= count;
    memmove(f->pending_blocks, f->pending_blocks + count, (size_t)f->pending_count * sizeof *f->pending_blocks);
    job->count = count;
    f->next_block += (uint64_t)count;
    return 0;
}

static void send_job(farm *f, farm_job *job, int rank) {
    job->state = JOB_CODING;
    f->coding[rank] = (int)(job - f->jobs);
    f->free_ranks--;
    if (rank == 0)
        local_give(&f->local, job);
    else
        MPI_Isend(job->message.data, (int)job->message.size, MPI_BYTE, rank, FARM_TAG_JOB, MPI_COMM_WORLD,
                  &job->send);
}

/* Blocks for one of the free ranks: a batch when there are enough, else an
 * even share of what is left. */
static int job_size(const farm *f) {
    int share = (f->pending_count + f->free_ranks - 1) / f->free_ranks;
    return LMC_MIN(share, f->batch);
}

/* Gives every free rank a job while there are blocks and room. */
static int dispatch(farm *f) {
    int moved = 0;
    for (int rank = 0; rank < f->ranks && f->free_ranks > 0; rank++) {
        if (f->coding[rank] >= 0 || f->issued - f->written >= (uint64_t)f->capacity)
            continue;
        if (read_ahead(f, f->free_ranks * f->batch) != 0 || f->pending_count == 0)
            break;
        farm_job *job = slot(f, f->issued);
        if (make_job(f, job, job_size(f)) != 0)
            break;
        f->issued++;
        send_job(f, job, rank);
        moved = 1;
    }
    return moved;
}

/* A rank's result is in: its job is done, or the whole run failed. Its
 * JOB message was received, so the send completes at once. */
static void finish_job(farm *f, int rank) {
    farm_job *job = &f->jobs[f->coding[rank]];
    f->coding[rank] = -1;
    f->free_ranks++;
    job->state = JOB_DONE;
    if (job->send != MPI_REQUEST_NULL)
        MPI_Wait(&job->send, MPI_STATUS_IGNORE);
    lmc_buf_free(&job->message);
    if (job->result.size > 0 && job->result.data[0] == LMC_OK)
        return;
    lmc_status status = job->result.size > 0 ? (lmc_status)job->result.data[0] : LMC_ERR_NOMEM;
    char text[LMC_MESSAGE_SIZE + 16];
    if (job->result.size > 1)
        snprintf(text, sizeof text, "rank %d: %.*s", rank, (int)LMC_MIN(job->result.size - 1, LMC_MESSAGE_SIZE - 1),
                 (const char *)job->result.data + 1);
    else
        snprintf(text, sizeof text, "rank %d: %s", rank, lmc_status_string(status));
    fail(f, status, text);
}

static int receive_result(farm *f, const MPI_Status *probed) {
    int size, rank = probed->MPI_SOURCE;
    MPI_Get_count(probed, MPI_BYTE, &size);
    farm_job *job = &f->jobs[f->coding[rank]];
    job->result.size = 0;
    if (lmc_buf_reserve(&job->result, (size_t)size) != LMC_OK) {
        cli_error(f->subject, "out of memory for the result of rank %d", rank);
        MPI_Abort(MPI_COMM_WORLD, CLI_EXIT_ERROR);
    }
    MPI_Recv(job->result.data, size, MPI_BYTE, rank, FARM_TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    job->result.size = (size_t)size;
    finish_job(f, rank);
    return 1;
}

/* Takes in the results that arrived. */
static int collect(farm *f) {
    int moved = 0;
    if (f->coding[0] >= 0 && local_take_done(&f->local)) {
        finish_job(f, 0);
        moved = 1;
    }
    MPI_Status probed;
    int arrived;
    while (MPI_Iprobe(MPI_ANY_SOURCE, FARM_TAG_RESULT, MPI_COMM_WORLD, &arrived, &probed) == MPI_SUCCESS && arrived)
        moved = receive_result(f, &probed);
    return moved;
}

static void clear_job(farm_job *job) {
    free(job->blocks);
    job->blocks = NULL;
    job->result.size = 0;
    job->state = JOB_FREE;
}

/* Hands finished jobs to io in block order. */
static int write_done(farm *f) {
    int moved = 0;
    while (!f->failed && f->written < f->issued && slot(f, f->written)->state == JOB_DONE) {
        farm_job *job = slot(f, f->written);
        if (f->io->deliver(f->io->user, job->blocks, job->count, job->result.data + 1, job->result.size - 1) != 0)
            f->failed = 1;
        clear_job(job);
        f->written++;
        moved = 1;
    }
    return moved;
}

static int finished(const farm *f) {
    if (f->free_ranks < f->ranks)
        return 0;
    return f->failed || (f->ended && f->pending_count == 0 && f->written == f->issued);
}

static void run_jobs(farm *f) {
    while (!finished(f)) {
        int moved = f->failed ? 0 : dispatch(f);
        moved |= collect(f);
        moved |= write_done(f);
        if (!moved)
            farm_nap();
    }
}

/* ---- Setting up and tearing down ---- */

static void free_farm(farm *f) {
    for (int i = 0; f->jobs && i < f->capacity; i++) {
        clear_job(&f->jobs[i]);
        lmc_buf_free(&f->jobs[i].message);
        lmc_buf_free(&f->jobs[i].result);
    }
    free(f->jobs);
    free(f->coding);
    free(f->pending_blocks);
    lmc_buf_free(&f->pending);
    farm_worker_stop(&f->local.worker);
}

static int make_farm(farm *f, const lmc_header *header) {
    f->ranks = farm_rank_count();
    f->free_ranks = f->ranks;
    f->batch = lmc_block_codec_batch(f->local.worker.codec);
    /* A block takes at most its size plus a record and a payload's slack. */
    f->batch = (int)LMC_MAX(1, LMC_MIN((uint64_t)f->batch, MAX_JOB_BYTES / ((uint64_t)header->block_size + 128)));
    f->capacity = JOBS_PER_RANK * f->ranks;
    f->pending_capacity = f->ranks * f->batch;
    f->jobs = calloc((size_t)f->capacity, sizeof *f->jobs);
    f->coding = malloc((size_t)f->ranks * sizeof *f->coding);
    f->pending_blocks = malloc((size_t)f->pending_capacity * sizeof *f->pending_blocks);
    if (!f->jobs || !f->coding || !f->pending_blocks)
        return fail(f, LMC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < f->capacity; i++)
        f->jobs[i].send = MPI_REQUEST_NULL;
    for (int rank = 0; rank < f->ranks; rank++)
        f->coding[rank] = -1;
    return 0;
}

/* The START message: decoding, then the header as the archive has it. */
static int start_message(const lmc_header *header, int decoding, lmc_buf *message) {
    lmc_buf_init(message);
    if (lmc_buf_append_byte(message, (uint8_t)decoding) != LMC_OK || lmc_header_write(message, header) != LMC_OK)
        return -1;
    return 0;
}

static void tell_ranks(int tag, const lmc_buf *message, int ranks) {
    for (int rank = 1; rank < ranks; rank++)
        MPI_Send(message->data, (int)message->size, MPI_BYTE, rank, tag, MPI_COMM_WORLD);
}

int farm_run(const cli_config *config, const lmc_header *header, int decoding, const farm_io *io,
             const char *subject) {
    farm f = {.io = io, .subject = subject};
    lmc_buf_init(&f.pending);
    farm_worker_stop(&f.local.worker);
    lmc_buf start;
    if (start_message(header, decoding, &start) != 0) {
        lmc_buf_free(&start);
        return fail(&f, LMC_ERR_NOMEM, "out of memory");
    }
    /* Rank 0's codec first: if the model is missing here, no rank is bothered. */
    if (farm_worker_start(&f.local.worker, config, start.data, start.size) != LMC_OK) {
        fail(&f, f.local.worker.status, f.local.worker.message.text);
    } else if (make_farm(&f, header) == 0) {
        tell_ranks(FARM_TAG_START, &start, f.ranks);
        pthread_mutex_init(&f.local.lock, NULL);
        pthread_cond_init(&f.local.wake, NULL);
        if (pthread_create(&f.local.thread, NULL, local_main, &f.local) != 0) {
            fail(&f, LMC_ERR_NOMEM, "cannot start a thread");
        } else {
            run_jobs(&f);
            local_quit(&f.local);
        }
        pthread_cond_destroy(&f.local.wake);
        pthread_mutex_destroy(&f.local.lock);
        lmc_buf stop = {0};
        tell_ranks(FARM_TAG_STOP, &stop, f.ranks);
    }
    lmc_buf_free(&start);
    free_farm(&f);
    return f.failed ? -1 : 0;
}
