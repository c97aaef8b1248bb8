/*
 * lmc --mpi: one archive's blocks coded by every rank of an MPI job.
 *
 * Rank 0 runs the command as usual: it reads the input, decides the header,
 * hands out jobs (runs of consecutive blocks) to the ranks, itself included,
 * one job per rank at a time, and writes the results strictly in block
 * order, streaming. The other ranks only code what they are sent. Every
 * rank codes with the library's block codec (lib.h, lmc_block_codec), the
 * same calls the streams make, so the archive is byte for byte the one a
 * single process writes, whatever the number of ranks.
 *
 * Messages, all between rank 0 and one other rank:
 *   START  0 -> r  u8 decoding, then the archive header: make a block codec
 *   JOB    0 -> r  u64 index of the first block, then the blocks' bytes
 *   RESULT r -> 0  u8 lmc_status, then the coded or decoded bytes (or, on
 *                  failure, the message)
 *   STOP   0 -> r  the archive is done: drop the codec
 *   QUIT   0 -> r  rank 0 is exiting: finalize and exit
 */
#ifndef LMC_MPI_FARM_H
#define LMC_MPI_FARM_H

#include "cli/cli.h"
#include "lib/lib.h"

enum { FARM_TAG_START = 1, FARM_TAG_JOB, FARM_TAG_RESULT, FARM_TAG_STOP, FARM_TAG_QUIT };

/* ---- Every rank (session.c) ---- */

/* A rank's codec for the current archive, or why it could not be made. */
typedef struct {
    lmc_block_codec *codec;
    lmc_status status;
    lmc_message message;
    int decoding;
} farm_worker;

/* Makes the codec a START message asks for (LMC_OK, or the reason, also
 * kept in the worker to answer its jobs with). */
lmc_status farm_worker_start(farm_worker *worker, const cli_config *config, const uint8_t *start, size_t size);
void farm_worker_stop(farm_worker *worker);
/* Codes one JOB message into a RESULT message (result is emptied first). */
void farm_worker_run(farm_worker *worker, const uint8_t *job, size_t size, lmc_buf *result);
/* A millisecond's sleep between polls: waiting in MPI's blocking calls
 * would spin a core. */
void farm_nap(void);
/* The number of ranks in the job (after cli_mpi_join). */
int farm_rank_count(void);

/* ---- Rank 0 (farm.c) ---- */

/* A block as rank 0 read it: its size in the bytes sent, and (decoding) its
 * record, kept to check the decoded bytes that come back. */
typedef struct {
    size_t size;
    lmc_block_record record;
} farm_block;

typedef struct {
    /* Appends the next block's bytes (encoding: its raw data; decoding: its
     * record and payload, as in the archive) to bytes and describes it.
     * Returns 1, 0 after the last block, or -1 after reporting. */
    int (*next)(void *user, lmc_buf *bytes, farm_block *block);
    /* A job's result, in block order: count blocks' records and payloads
     * (encoding) or decoded bytes (decoding). Returns 0, or -1 after reporting. */
    int (*deliver)(void *user, const farm_block *blocks, int count, const uint8_t *result, size_t size);
    void *user;
} farm_io;

/* Codes the blocks io gives over all ranks, for an archive with this
 * header. Returns 0, or -1 after reporting about subject. */
int farm_run(const cli_config *config, const lmc_header *header, int decoding, const farm_io *io,
             const char *subject);

#endif /* LMC_MPI_FARM_H */
