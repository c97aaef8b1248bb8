/*
 * lmc decompress --mpi, on rank 0: the archive parsed as lmc_decoder parses
 * it (headers, records, checksums of the compressed data, the end record's
 * counts and whole-data checksum, archives one after another), its blocks
 * decoded by all ranks (farm.c) and checked again here against their
 * records before they are written, in order. A media archive is one block:
 * rank 0 decodes it, and whatever follows, with the stream.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "mpi/farm.h"

#define CHUNK_SIZE (1u << 20)

typedef struct {
    lmc_decoder *stream;     /* for a media archive */
    cli_input *input;
    const cli_sink *sink;
    cli_progress *progress;
    lmc_buf archive;         /* read; the bytes before `parsed` are done with */
    size_t parsed;
    int input_ended;
    lmc_header header;
    lmc_end_record end;
    uint64_t blocks_read, blocks, member_out; /* of the current archive */
    uint64_t bytes_in, bytes_out;
    XXH3_state_t *hash;      /* of the current archive's decoded data */
    lmc_message message;
} decoding;

static int report(decoding *d, lmc_status status) {
    cli_library_error(d->input->name, status, d->message.text);
    return -1;
}

/* Drops what was parsed and reads the next chunk. */
static int read_more(decoding *d) {
    lmc_buf_compact(&d->archive, &d->parsed);
    if (lmc_buf_reserve(&d->archive, CHUNK_SIZE) != LMC_OK)
        return report(d, lmc_fail(&d->message, LMC_ERR_NOMEM, "out of memory"));
    long got = cli_input_read(d->input, d->archive.data + d->archive.size, CHUNK_SIZE);
    if (got < 0) {
        cli_error(d->input->name, "read failed: %s", strerror(errno));
        return -1;
    }
    d->archive.size += (size_t)got;
    d->bytes_in += (uint64_t)got;
    d->input_ended = got == 0;
    return 0;
}

/* ---- Blocks for the ranks, and what comes back ---- */

/* The block's record and payload, its payload checksum verified. */
static int take_block(decoding *d, size_t payload_at, const lmc_block_record *record, lmc_buf *bytes,
                      farm_block *block) {
    if (lmc_checksum64(d->archive.data + payload_at, record->payload_size) != record->payload_checksum)
        return report(d, lmc_fail(&d->message, LMC_ERR_CORRUPT, "block %llu: compressed data does not match its checksum",
                                  (unsigned long long)d->blocks_read));
    size_t end = payload_at + record->payload_size;
    if (lmc_buf_append(bytes, d->archive.data + d->parsed, end - d->parsed) != LMC_OK)
        return report(d, lmc_fail(&d->message, LMC_ERR_NOMEM, "out of memory"));
    block->size = end - d->parsed;
    block->record = *record;
    d->parsed = end;
    d->blocks_read++;
    return 1;
}

static int next_block(void *user, lmc_buf *bytes, farm_block *block) {
    decoding *d = user;
    for (;;) {
        size_t pos = d->parsed;
        lmc_record_type type;
        lmc_block_record record;
        lmc_status status = lmc_record_read(d->archive.data, d->archive.size, &pos, &d->header, &type, &record,
                                            &d->end, &d->message);
        if (status == LMC_OK && type == LMC_RECORD_END) {
            d->parsed = pos;
            return 0;
        }
        if (status == LMC_OK && d->archive.size - pos >= record.payload_size)
            return take_block(d, pos, &record, bytes, block);
        if (status != LMC_OK && status != LMC_ERR_TRUNCATED)
            return report(d, status);
        if (d->input_ended)
            return report(d, lmc_fail(&d->message, LMC_ERR_TRUNCATED,
                                      "archive is truncated (no end record after %llu blocks)",
                                      (unsigned long long)d->blocks_read));
        if (read_more(d) != 0)
            return -1;
    }
}

static int write_out(decoding *d, const void *data, size_t size) {
    if (cli_sink_write(d->sink, data, size) != 0)
        return -1;
    d->bytes_out += size;
    return 0;
}

/* Decoded blocks, checked against the records read here before they are written. */
static int deliver(void *user, const farm_block *blocks, int count, const uint8_t *result, size_t size) {
    decoding *d = user;
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
        const lmc_block_record *r = &blocks[i].record;
        if (size - offset < r->raw_size)
            return report(d, lmc_fail(&d->message, LMC_ERR_INTERNAL, "a rank returned too few bytes"));
        if (lmc_checksum64(result + offset, r->raw_size) != r->raw_checksum)
            return report(d, lmc_fail(&d->message, LMC_ERR_CORRUPT, "block %llu: decoded data does not match its checksum",
                                      (unsigned long long)d->blocks));
        offset += r->raw_size;
        d->blocks++;
    }
    if (offset != size)
        return report(d, lmc_fail(&d->message, LMC_ERR_INTERNAL, "a rank returned too many bytes"));
    XXH3_64bits_update(d->hash, result, size);
    d->member_out += size;
    if (write_out(d, result, size) != 0)
        return -1;
    cli_progress_update(d->progress, d->bytes_in, d->bytes_out);
    return 0;
}

/* ---- Archives ---- */

static int check_end(decoding *d) {
    if (d->end.blocks != d->blocks || d->end.total_size != d->member_out)
        return report(d, lmc_fail(&d->message, LMC_ERR_CORRUPT,
                                  "archive is damaged: end record expects %llu blocks, %llu bytes",
                                  (unsigned long long)d->end.blocks, (unsigned long long)d->end.total_size));
    if (d->end.total_checksum != XXH3_64bits_digest(d->hash))
        return report(d, lmc_fail(&d->message, LMC_ERR_CORRUPT, "archive is damaged: whole-data checksum mismatch"));
    return 0;
}

static int decode_member(const cli_config *config, decoding *d) {
    d->blocks_read = d->blocks = d->member_out = 0;
    XXH3_64bits_reset(d->hash);
    farm_io io = {next_block, deliver, d};
    if (farm_run(config, &d->header, 1, &io, d->input->name) != 0)
        return -1;
    return check_end(d);
}

/* The rest of the input, from the unparsed bytes on, through the stream. */
static int decode_with_stream(decoding *d, cli_pump_result *result) {
    lmc_status status = lmc_decoder_push(d->stream, d->archive.data + d->parsed, d->archive.size - d->parsed);
    if (status != LMC_OK) {
        cli_library_error(d->input->name, status, lmc_decoder_message(d->stream));
        return -1;
    }
    cli_stream stream = cli_stream_of_decoder(d->stream);
    int outcome = cli_pump(&stream, d->input, d->sink, d->progress, result);
    d->bytes_in += result->bytes_in;
    d->bytes_out += result->bytes_out;
    return outcome;
}

/* The next archive's header, read but not yet passed over (*header_end).
 * Returns 1, 0 at the end of the input after an archive, or -1. */
static int read_header(decoding *d, int members, size_t *header_end) {
    for (;;) {
        *header_end = d->parsed;
        if (members > 0 && d->input_ended && d->parsed == d->archive.size)
            return 0;
        lmc_status status = lmc_header_read(d->archive.data, d->archive.size, header_end, &d->header, &d->message);
        if (status == LMC_ERR_NOT_ARCHIVE && members > 0)
            status = lmc_fail(&d->message, LMC_ERR_CORRUPT, "unexpected data after the end of the archive");
        if (status == LMC_ERR_TRUNCATED && d->input_ended)
            status = lmc_fail(&d->message, LMC_ERR_TRUNCATED, "archive is truncated (incomplete header)");
        if (status == LMC_OK)
            return 1;
        if (status != LMC_ERR_TRUNCATED)
            return report(d, status);
        if (read_more(d) != 0)
            return -1;
    }
}

static int decode(const cli_config *config, decoding *d, cli_pump_result *result) {
    for (int members = 0;; members++) {
        size_t header_end;
        int got = read_header(d, members, &header_end);
        if (got <= 0)
            return got;
        if (d->header.codec == LMC_CODEC_MEDIA)
            return decode_with_stream(d, result);
        d->parsed = header_end;
        if (decode_member(config, d) != 0)
            return -1;
    }
}

int cli_mpi_decode(const cli_config *config, lmc_decoder *decoder, cli_input *input, const cli_sink *sink,
                   cli_progress *progress, cli_pump_result *result) {
    decoding d = {.stream = decoder, .input = input, .sink = sink, .progress = progress, .hash = XXH3_createState()};
    double start = cli_now();
    int outcome = -1;
    if (d.hash == NULL)
        cli_error(input->name, "out of memory");
    else
        outcome = decode(config, &d, result);
    cli_progress_end(progress);
    result->bytes_in = d.bytes_in;
    result->bytes_out = d.bytes_out;
    result->seconds = cli_now() - start;
    XXH3_freeState(d.hash);
    lmc_buf_free(&d.archive);
    return outcome;
}
