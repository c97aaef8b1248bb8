/*
 * lmc compress --mpi, on rank 0: the stream started on the input's first
 * MiB, as the CLI's first push starts it (lmc_encoder_plan), writes the
 * header; the blocks are coded by all ranks (farm.c); the end record counts
 * what was read. An input the stream codes as one media block gains
 * nothing from more ranks: rank 0 codes it with the stream.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "mpi/farm.h"

#define PREFIX_SIZE (1u << 20) /* what the stream has at its first push: cli_pump's chunk */

typedef struct {
    lmc_encoder *stream;
    cli_input *input;
    const cli_sink *sink;
    cli_progress *progress;
    lmc_buf prefix;          /* read for the plan; handed out first */
    size_t prefix_used;
    uint32_t block_size;
    uint64_t blocks, bytes_in, bytes_out;
    XXH3_state_t *hash;      /* of the whole input: the end record's */
} encoding;

static int write_out(encoding *e, const void *data, size_t size) {
    if (cli_sink_write(e->sink, data, size) != 0)
        return -1;
    e->bytes_out += size;
    return 0;
}

/* Up to size bytes of input: the prefix first. Returns the count or -1. */
static long read_input(encoding *e, uint8_t *to, size_t size) {
    size_t from_prefix = LMC_MIN(size, e->prefix.size - e->prefix_used);
    memcpy(to, e->prefix.data + e->prefix_used, from_prefix);
    e->prefix_used += from_prefix;
    long rest = from_prefix < size ? cli_input_read(e->input, to + from_prefix, size - from_prefix) : 0;
    return rest < 0 ? -1 : (long)from_prefix + rest;
}

static int next_block(void *user, lmc_buf *bytes, farm_block *block) {
    encoding *e = user;
    if (lmc_buf_reserve(bytes, e->block_size) != LMC_OK) {
        cli_error(e->input->name, "out of memory");
        return -1;
    }
    long got = read_input(e, bytes->data + bytes->size, e->block_size);
    if (got < 0) {
        cli_error(e->input->name, "read failed: %s", strerror(errno));
        return -1;
    }
    if (got == 0)
        return 0;
    XXH3_64bits_update(e->hash, bytes->data + bytes->size, (size_t)got);
    bytes->size += (size_t)got;
    memset(block, 0, sizeof *block);
    block->size = (size_t)got;
    e->blocks++;
    e->bytes_in += (uint64_t)got;
    return 1;
}

static int deliver(void *user, const farm_block *blocks, int count, const uint8_t *result, size_t size) {
    (void)blocks, (void)count;
    encoding *e = user;
    if (write_out(e, result, size) != 0)
        return -1;
    cli_progress_update(e->progress, e->bytes_in, e->bytes_out);
    return 0;
}

/* The header, as the stream wrote it. */
static int write_header(encoding *e) {
    uint8_t buffer[512];
    size_t got;
    while ((got = lmc_encoder_pull(e->stream, buffer, sizeof buffer)) > 0)
        if (write_out(e, buffer, got) != 0)
            return -1;
    return 0;
}

static int write_end(encoding *e) {
    lmc_end_record end = {e->blocks, e->bytes_in, XXH3_64bits_digest(e->hash)};
    lmc_buf record;
    lmc_buf_init(&record);
    int outcome = -1;
    if (lmc_end_record_write(&record, &end) != LMC_OK)
        cli_error(e->input->name, "out of memory");
    else
        outcome = write_out(e, record.data, record.size);
    lmc_buf_free(&record);
    return outcome;
}

static int encode_blocks(const cli_config *config, encoding *e, const lmc_header *header) {
    e->block_size = header->block_size;
    farm_io io = {next_block, deliver, e};
    if (write_header(e) != 0 || farm_run(config, header, 0, &io, e->input->name) != 0)
        return -1;
    return write_end(e);
}

/* The rest of the input through the stream, which holds the prefix. */
static int encode_with_stream(encoding *e, cli_pump_result *result) {
    cli_stream stream = cli_stream_of_encoder(e->stream);
    int outcome = cli_pump(&stream, e->input, e->sink, e->progress, result);
    e->bytes_in = e->prefix.size + result->bytes_in;
    e->bytes_out = result->bytes_out;
    return outcome;
}

static int read_prefix(encoding *e) {
    if (lmc_buf_reserve(&e->prefix, PREFIX_SIZE) != LMC_OK) {
        cli_error(e->input->name, "out of memory");
        return -1;
    }
    long got = cli_input_read(e->input, e->prefix.data, PREFIX_SIZE);
    if (got < 0) {
        cli_error(e->input->name, "read failed: %s", strerror(errno));
        return -1;
    }
    e->prefix.size = (size_t)got;
    return 0;
}

static int encode(const cli_config *config, encoding *e, cli_pump_result *result) {
    if (read_prefix(e) != 0)
        return -1;
    lmc_header header;
    int media;
    lmc_status status = lmc_encoder_plan(e->stream, e->prefix.data, e->prefix.size, &header, &media);
    if (status != LMC_OK) {
        cli_library_error(e->input->name, status, lmc_encoder_message(e->stream));
        return -1;
    }
    return media ? encode_with_stream(e, result) : encode_blocks(config, e, &header);
}

int cli_mpi_encode(const cli_config *config, lmc_encoder *encoder, cli_input *input, const cli_sink *sink,
                   cli_progress *progress, cli_pump_result *result) {
    encoding e = {encoder, input, sink, progress, {0}, 0, 0, 0, 0, 0, XXH3_createState()};
    double start = cli_now();
    int outcome = -1;
    if (e.hash == NULL) {
        cli_error(input->name, "out of memory");
    } else {
        XXH3_64bits_reset(e.hash);
        outcome = encode(config, &e, result);
    }
    cli_progress_end(progress);
    result->bytes_in = e.bytes_in;
    result->bytes_out = e.bytes_out;
    result->seconds = cli_now() - start;
    XXH3_freeState(e.hash);
    lmc_buf_free(&e.prefix);
    return outcome;
}
