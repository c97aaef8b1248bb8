/*
 * The MPI job as every rank sees it: joining it, the loop of the ranks
 * other than 0 (code what rank 0 sends until it quits), and the coding of
 * one job, which rank 0 shares (farm.c).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep under strict C11 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi/farm.h"

#define NAP_NANOSECONDS 1000000 /* a millisecond: nothing waited for is that short */

static int joined;
static int my_rank, rank_count;

int farm_rank_count(void) {
    return rank_count;
}

void farm_nap(void) {
    struct timespec nap = {0, NAP_NANOSECONDS};
    nanosleep(&nap, NULL);
}

/* The library options the command line gives every rank (all run the same argv). */
static void codec_options(const cli_config *config, lmc_options *options) {
    lmc_options_init(options);
    options->model = config->model;
    options->threads = config->threads;
    options->memlimit = config->memlimit;
}

/* ---- A rank's codec and its jobs ---- */

lmc_status farm_worker_start(farm_worker *worker, const cli_config *config, const uint8_t *start, size_t size) {
    farm_worker_stop(worker);
    if (size == 0)
        return worker->status = lmc_fail(&worker->message, LMC_ERR_INTERNAL, "empty start message");
    lmc_header header;
    size_t pos = 1;
    worker->decoding = start[0];
    worker->status = lmc_header_read(start, size, &pos, &header, &worker->message);
    if (worker->status == LMC_OK) {
        lmc_options options;
        codec_options(config, &options);
        worker->status = lmc_block_codec_create(&header, &options, worker->decoding, &worker->codec, &worker->message);
    }
    return worker->status;
}

void farm_worker_stop(farm_worker *worker) {
    lmc_block_codec_free(worker->codec);
    worker->codec = NULL;
    worker->status = LMC_ERR_INTERNAL;
    lmc_fail(&worker->message, LMC_ERR_INTERNAL, "a job arrived before its archive's start");
}

/* A failure's RESULT: the status, then the message. */
static void fail_result(lmc_buf *result, lmc_status status, const char *text) {
    result->size = 0;
    if (lmc_buf_append_byte(result, (uint8_t)status) == LMC_OK)
        lmc_buf_append(result, text, strlen(text));
}

void farm_worker_run(farm_worker *worker, const uint8_t *job, size_t size, lmc_buf *result) {
    result->size = 0;
    if (worker->status != LMC_OK) {
        fail_result(result, worker->status, worker->message.text);
        return;
    }
    if (size < 8) {
        fail_result(result, LMC_ERR_INTERNAL, "malformed job message");
        return;
    }
    uint64_t first = lmc_get_le64(job);
    lmc_message message;
    lmc_status status = lmc_buf_append_byte(result, LMC_OK);
    if (status != LMC_OK)
        lmc_fail(&message, status, "out of memory");
    else if (worker->decoding)
        status = lmc_block_codec_decode(worker->codec, first, job + 8, size - 8, result, &message);
    else
        status = lmc_block_codec_encode(worker->codec, first, job + 8, size - 8, result, &message);
    if (status != LMC_OK)
        fail_result(result, status, message.text);
}

/* ---- Ranks other than 0 ---- */

/* Receives the next message from rank 0 into message; returns its tag. */
static int receive(lmc_buf *message) {
    MPI_Status status;
    int arrived = 0, size;
    while (MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &arrived, &status) == MPI_SUCCESS && !arrived)
        farm_nap();
    MPI_Get_count(&status, MPI_BYTE, &size);
    message->size = 0;
    if (lmc_buf_reserve(message, (size_t)size + 1) != LMC_OK) {
        cli_error(NULL, "rank %d: out of memory for a message of %d bytes", my_rank, size);
        MPI_Abort(MPI_COMM_WORLD, CLI_EXIT_ERROR);
    }
    MPI_Recv(message->data, size, MPI_BYTE, 0, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    message->size = (size_t)size;
    return status.MPI_TAG;
}

/* Codes rank 0's jobs until it quits. A failure is answered to rank 0,
 * which reports it; this rank then waits for the next archive. */
static void serve(const cli_config *config) {
    farm_worker worker = {0};
    farm_worker_stop(&worker);
    lmc_buf message, result;
    lmc_buf_init(&message);
    lmc_buf_init(&result);
    for (int tag; (tag = receive(&message)) != FARM_TAG_QUIT;) {
        if (tag == FARM_TAG_START) {
            farm_worker_start(&worker, config, message.data, message.size);
        } else if (tag == FARM_TAG_JOB) {
            farm_worker_run(&worker, message.data, message.size, &result);
            MPI_Send(result.data, (int)result.size, MPI_BYTE, 0, FARM_TAG_RESULT, MPI_COMM_WORLD);
        } else if (tag == FARM_TAG_STOP) {
            farm_worker_stop(&worker);
        }
    }
    farm_worker_stop(&worker);
    lmc_buf_free(&message);
    lmc_buf_free(&result);
}

/* Rank 0, when it exits: the other ranks may go. */
static void dismiss_ranks(void) {
    for (int rank = 1; rank < rank_count; rank++)
        MPI_Send(NULL, 0, MPI_BYTE, rank, FARM_TAG_QUIT, MPI_COMM_WORLD);
    MPI_Finalize();
}

void cli_mpi_join(const cli_config *config) {
    if (joined)
        return;
    joined = 1;
    /* Only the main thread calls MPI; rank 0's coding thread does not. */
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &rank_count);
    cli_select_device(config, my_rank);
    if (my_rank == 0) {
        atexit(dismiss_ranks);
        return;
    }
    serve(config);
    MPI_Finalize();
    exit(CLI_EXIT_OK);
}
