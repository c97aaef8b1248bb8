/*
 * `lmc info`: walks an archive's records without decoding payloads,
 * checking the structure and every compressed-data checksum.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/lib.h"
#include "lib/lossy.h"

#define READ_CHUNK (1u << 20)

typedef struct {
    lmc_read_fn read;
    void *user;
    lmc_buf buffer;
    size_t pos;        /* parse position in buffer */
    int at_end;        /* the reader returned 0 */
    uint64_t total;    /* bytes read so far */
} archive_reader;

/* Reads another chunk; LMC_ERR_TRUNCATED at the end of the input. */
static lmc_status fill(archive_reader *r) {
    if (r->at_end)
        return LMC_ERR_TRUNCATED;
    lmc_buf_compact(&r->buffer, &r->pos);
    if (lmc_buf_reserve(&r->buffer, READ_CHUNK) != LMC_OK)
        return LMC_ERR_NOMEM;
    long n = r->read(r->user, r->buffer.data + r->buffer.size, READ_CHUNK);
    if (n < 0)
        return LMC_ERR_IO;
    if (n == 0)
        r->at_end = 1;
    r->buffer.size += (size_t)n;
    r->total += (uint64_t)n;
    return LMC_OK;
}

static void fill_info(lmc_archive_info *info, const lmc_header *h) {
    info->format_version = h->format_version;
    info->numerics_version = h->numerics_version;
    info->kind = h->kind;
    snprintf(info->model_name, sizeof info->model_name, "%s", h->model_name);
    memcpy(info->model_hash, h->model_hash, 16);
    info->fast = h->codec == LMC_CODEC_FAST;
    info->mixed = lmc_codec_is_mixed(h->codec);
    info->media = h->codec == LMC_CODEC_MEDIA;
    info->block_size = h->block_size;
    info->context_window = h->context_window;
    info->window_stride = h->window_stride;
}

/* A coded media block's bound and PSNR, from the head of its payload. */
static lmc_status read_bound(const lmc_header *h, const lmc_block_record *block, const uint8_t *payload,
                             lmc_archive_info *info, lmc_message *message) {
    if (h->codec != LMC_CODEC_MEDIA || block->mode != LMC_BLOCK_CODED)
        return LMC_OK;
    if (lmc_media_block_bound(payload, block->payload_size, &info->max_error, &info->psnr) != LMC_OK)
        return lmc_fail(message, LMC_ERR_CORRUPT, "block %llu: damaged media block", (unsigned long long)info->blocks);
    return LMC_OK;
}

static lmc_status check_block(archive_reader *r, const lmc_header *h, const lmc_block_record *block,
                              lmc_archive_info *info, lmc_message *message) {
    lmc_status status;
    while (r->buffer.size - r->pos < block->payload_size)
        if ((status = fill(r)) != LMC_OK)
            return status == LMC_ERR_TRUNCATED ? lmc_fail(message, status, "archive is truncated inside a block") : status;
    if (lmc_checksum64(r->buffer.data + r->pos, block->payload_size) != block->payload_checksum)
        return lmc_fail(message, LMC_ERR_CORRUPT, "block %llu: compressed data does not match its checksum",
                        (unsigned long long)info->blocks);
    if ((status = read_bound(h, block, r->buffer.data + r->pos, info, message)) != LMC_OK)
        return status;
    r->pos += block->payload_size;
    info->blocks++;
    info->stored_blocks += block->mode == LMC_BLOCK_STORED;
    info->original_size += block->raw_size;
    return LMC_OK;
}

static lmc_status walk(archive_reader *r, lmc_archive_info *info, lmc_message *message) {
    lmc_header header;
    lmc_status status;
    while ((status = lmc_header_read(r->buffer.data, r->buffer.size, &r->pos, &header, message)) == LMC_ERR_TRUNCATED)
        if ((status = fill(r)) != LMC_OK)
            return status == LMC_ERR_TRUNCATED ? lmc_fail(message, status, "archive is truncated (incomplete header)") : status;
    if (status != LMC_OK)
        return status;
    fill_info(info, &header);
    for (;;) {
        lmc_record_type type;
        lmc_block_record block;
        lmc_end_record end;
        status = lmc_record_read(r->buffer.data, r->buffer.size, &r->pos, &header, &type, &block, &end, message);
        if (status == LMC_ERR_TRUNCATED) {
            if ((status = fill(r)) != LMC_OK)
                return status == LMC_ERR_TRUNCATED ? lmc_fail(message, status, "archive is truncated (no end record)") : status;
            continue;
        }
        if (status != LMC_OK)
            return status;
        if (type == LMC_RECORD_END) {
            if (end.blocks != info->blocks || end.total_size != info->original_size)
                return lmc_fail(message, LMC_ERR_CORRUPT, "end record disagrees with the blocks");
            return LMC_OK;
        }
        if ((status = check_block(r, &header, &block, info, message)) != LMC_OK)
            return status;
    }
}

lmc_status lmc_archive_inspect(lmc_read_fn read, void *user, lmc_archive_info *info, char *message_out,
                               size_t message_size) {
    archive_reader r = {read, user, {NULL, 0, 0}, 0, 0, 0};
    lmc_message message;
    snprintf(message.text, sizeof message.text, "no error");
    memset(info, 0, sizeof *info);
    info->psnr = INFINITY;
    lmc_status status = walk(&r, info, &message);
    if (status == LMC_OK) {
        /* Trailing bytes after the end record make the archive invalid. */
        while (status == LMC_OK && r.pos == r.buffer.size && !r.at_end)
            status = fill(&r);
        if (r.pos < r.buffer.size)
            status = lmc_fail(&message, LMC_ERR_CORRUPT, "unexpected data after the end of the archive");
        else if (status == LMC_ERR_TRUNCATED)
            status = LMC_OK;
    }
    info->archive_size = r.total;
    lmc_buf_free(&r.buffer);
    if (message_out && message_size)
        snprintf(message_out, message_size, "%s", status == LMC_OK ? "ok" : message.text);
    return status;
}
