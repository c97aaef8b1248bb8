/* Writing and parsing the records of docs/FORMAT.md. */
#include "container/container.h"

#include <string.h>

static const uint8_t archive_magic[4] = {0x89, 'L', 'M', 'C'};
#define BLOCK_TAG 'B'
#define END_TAG 'E'

/* Each record ends with the low 32 bits of XXH3-64 over its own bytes. */
static lmc_status append_record_check(lmc_buf *out, size_t record_start) {
    uint8_t check[4];
    lmc_put_le32(check, (uint32_t)lmc_checksum64(out->data + record_start, out->size - record_start));
    return lmc_buf_append(out, check, sizeof check);
}

static lmc_status verify_record_check(const uint8_t *data, size_t size, size_t start, size_t *pos,
                                      lmc_message *message, const char *what) {
    if (size - *pos < 4)
        return LMC_ERR_TRUNCATED;
    uint32_t expected = (uint32_t)lmc_checksum64(data + start, *pos - start);
    if (lmc_get_le32(data + *pos) != expected)
        return lmc_fail(message, LMC_ERR_CORRUPT, "%s checksum mismatch (damaged archive)", what);
    *pos += 4;
    return LMC_OK;
}

static lmc_status append_le32(lmc_buf *out, uint32_t value) {
    uint8_t bytes[4];
    lmc_put_le32(bytes, value);
    return lmc_buf_append(out, bytes, 4);
}

static lmc_status append_le64(lmc_buf *out, uint64_t value) {
    uint8_t bytes[8];
    lmc_put_le64(bytes, value);
    return lmc_buf_append(out, bytes, 8);
}

#define TRY(expr)                                  \
    do {                                           \
        lmc_status try_status_ = (expr);           \
        if (try_status_ != LMC_OK)                 \
            return try_status_;                    \
    } while (0)

lmc_status lmc_header_write(lmc_buf *out, const lmc_header *header) {
    size_t start = out->size;
    size_t name_length = strlen(header->model_name);
    if (name_length > LMC_MAX_MODEL_NAME)
        return LMC_ERR_PARAM;
    TRY(lmc_buf_append(out, archive_magic, sizeof archive_magic));
    TRY(lmc_buf_append_byte(out, header->format_version));
    TRY(lmc_buf_append_byte(out, header->numerics_version));
    TRY(lmc_buf_append_byte(out, (uint8_t)header->kind));
    TRY(lmc_buf_append_byte(out, (uint8_t)header->codec));
    TRY(lmc_buf_append_byte(out, (uint8_t)name_length));
    TRY(lmc_buf_append(out, header->model_name, name_length));
    TRY(lmc_buf_append(out, header->model_hash, 16));
    TRY(append_le32(out, header->block_size));
    TRY(append_le32(out, header->context_window));
    TRY(append_le32(out, header->window_stride));
    TRY(lmc_varint_put(out, 0)); /* extension length: none in format 1 */
    return append_record_check(out, start);
}

lmc_status lmc_block_record_write(lmc_buf *out, const lmc_block_record *record) {
    size_t start = out->size;
    TRY(lmc_buf_append_byte(out, BLOCK_TAG));
    TRY(lmc_buf_append_byte(out, (uint8_t)record->mode));
    TRY(lmc_varint_put(out, record->raw_size));
    TRY(lmc_varint_put(out, record->payload_size));
    TRY(append_le64(out, record->raw_checksum));
    TRY(append_le64(out, record->payload_checksum));
    return append_record_check(out, start);
}

lmc_status lmc_end_record_write(lmc_buf *out, const lmc_end_record *end) {
    size_t start = out->size;
    TRY(lmc_buf_append_byte(out, END_TAG));
    TRY(lmc_varint_put(out, end->blocks));
    TRY(lmc_varint_put(out, end->total_size));
    TRY(append_le64(out, end->total_checksum));
    return append_record_check(out, start);
}

/* ---- Parsing ---- */

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
} reader;

static lmc_status read_bytes(reader *r, void *out, size_t n) {
    if (r->size - r->pos < n)
        return LMC_ERR_TRUNCATED;
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
    return LMC_OK;
}

static lmc_status read_u8(reader *r, uint8_t *out) {
    return read_bytes(r, out, 1);
}

static lmc_status read_le32(reader *r, uint32_t *out) {
    uint8_t bytes[4];
    TRY(read_bytes(r, bytes, 4));
    *out = lmc_get_le32(bytes);
    return LMC_OK;
}

static lmc_status read_le64(reader *r, uint64_t *out) {
    uint8_t bytes[8];
    TRY(read_bytes(r, bytes, 8));
    *out = lmc_get_le64(bytes);
    return LMC_OK;
}

static lmc_status read_varint(reader *r, uint64_t *out, lmc_message *message, const char *what) {
    lmc_status status = lmc_varint_get(r->data, r->size, &r->pos, out);
    if (status == LMC_ERR_CORRUPT)
        return lmc_fail(message, status, "malformed %s (damaged archive)", what);
    return status;
}

static lmc_status check_header_fields(const lmc_header *h, lmc_message *message) {
    if (h->kind > LMC_KIND_VIDEO || h->kind == LMC_KIND_AUTO)
        return lmc_fail(message, LMC_ERR_CORRUPT, "unknown data kind %d in header", (int)h->kind);
    if (h->codec > LMC_CODEC_LAST)
        return lmc_fail(message, LMC_ERR_CORRUPT, "unknown codec %d in header", (int)h->codec);
    if (h->block_size == 0 || h->block_size > LMC_MAX_BLOCK_SIZE)
        return lmc_fail(message, LMC_ERR_CORRUPT, "block size %u out of range", h->block_size);
    return LMC_OK;
}

static lmc_status parse_header(reader *r, lmc_header *h, lmc_message *message) {
    uint8_t kind, codec, name_length;
    /* A wrong first byte is reported at once, before the whole magic arrives. */
    size_t available = LMC_MIN(r->size - r->pos, sizeof archive_magic);
    if (available > 0 && memcmp(r->data + r->pos, archive_magic, available) != 0)
        return lmc_fail(message, LMC_ERR_NOT_ARCHIVE, "not an lmc archive (wrong magic)");
    if (available < sizeof archive_magic)
        return LMC_ERR_TRUNCATED;
    r->pos += sizeof archive_magic;
    TRY(read_u8(r, &h->format_version));
    TRY(read_u8(r, &h->numerics_version));
    if (h->format_version != LMC_FORMAT_VERSION)
        return lmc_fail(message, LMC_ERR_VERSION, "archive format version %u is not supported (this lmc reads %u)",
                        h->format_version, LMC_FORMAT_VERSION);
    if (h->numerics_version == 0 || h->numerics_version > LMC_NUMERICS_VERSION)
        return lmc_fail(message, LMC_ERR_VERSION, "archive numerics version %u is not supported (this lmc knows 1..%u)",
                        h->numerics_version, LMC_NUMERICS_VERSION);
    TRY(read_u8(r, &kind));
    TRY(read_u8(r, &codec));
    TRY(read_u8(r, &name_length));
    if (name_length > LMC_MAX_MODEL_NAME)
        return lmc_fail(message, LMC_ERR_CORRUPT, "model name too long in header");
    TRY(read_bytes(r, h->model_name, name_length));
    h->model_name[name_length] = '\0';
    TRY(read_bytes(r, h->model_hash, 16));
    TRY(read_le32(r, &h->block_size));
    TRY(read_le32(r, &h->context_window));
    TRY(read_le32(r, &h->window_stride));
    uint64_t extension_length;
    TRY(read_varint(r, &extension_length, message, "header"));
    if (extension_length > LMC_MAX_HEADER_EXTENSION)
        return lmc_fail(message, LMC_ERR_CORRUPT, "header extension too long");
    if (r->size - r->pos < extension_length)
        return LMC_ERR_TRUNCATED;
    r->pos += extension_length; /* format 1 defines none; checked by the record checksum */
    h->kind = (lmc_kind)kind;
    h->codec = (lmc_codec)codec;
    return LMC_OK;
}

lmc_status lmc_header_read(const uint8_t *data, size_t size, size_t *pos, lmc_header *header, lmc_message *message) {
    reader r = {data, size, *pos};
    memset(header, 0, sizeof *header);
    TRY(parse_header(&r, header, message));
    TRY(verify_record_check(data, size, *pos, &r.pos, message, "header"));
    TRY(check_header_fields(header, message));
    *pos = r.pos;
    return LMC_OK;
}

static lmc_status parse_block(reader *r, lmc_block_record *b, lmc_message *message) {
    uint8_t mode;
    TRY(read_u8(r, &mode));
    TRY(read_varint(r, &b->raw_size, message, "block record"));
    TRY(read_varint(r, &b->payload_size, message, "block record"));
    TRY(read_le64(r, &b->raw_checksum));
    TRY(read_le64(r, &b->payload_checksum));
    b->mode = (lmc_block_mode)mode;
    return LMC_OK;
}

/* Sizes are checked only after the record checksum passed, so a flipped bit
 * is reported as damage rather than as an odd size. */
static lmc_status check_block_fields(const lmc_block_record *b, const lmc_header *h, lmc_message *message) {
    if (b->mode != LMC_BLOCK_CODED && b->mode != LMC_BLOCK_STORED)
        return lmc_fail(message, LMC_ERR_CORRUPT, "unknown block mode %d", (int)b->mode);
    if (b->raw_size == 0 || b->raw_size > h->block_size)
        return lmc_fail(message, LMC_ERR_CORRUPT, "block size %llu out of range", (unsigned long long)b->raw_size);
    if (b->mode == LMC_BLOCK_STORED ? b->payload_size != b->raw_size : b->payload_size >= b->raw_size + 64)
        return lmc_fail(message, LMC_ERR_CORRUPT, "block payload size %llu inconsistent", (unsigned long long)b->payload_size);
    return LMC_OK;
}

static lmc_status parse_end(reader *r, lmc_end_record *e, lmc_message *message) {
    TRY(read_varint(r, &e->blocks, message, "end record"));
    TRY(read_varint(r, &e->total_size, message, "end record"));
    TRY(read_le64(r, &e->total_checksum));
    return LMC_OK;
}

lmc_status lmc_record_read(const uint8_t *data, size_t size, size_t *pos, const lmc_header *header,
                           lmc_record_type *type, lmc_block_record *block, lmc_end_record *end,
                           lmc_message *message) {
    reader r = {data, size, *pos};
    uint8_t tag;
    TRY(read_u8(&r, &tag));
    if (tag == BLOCK_TAG) {
        TRY(parse_block(&r, block, message));
        TRY(verify_record_check(data, size, *pos, &r.pos, message, "block record"));
        TRY(check_block_fields(block, header, message));
        *type = LMC_RECORD_BLOCK;
    } else if (tag == END_TAG) {
        TRY(parse_end(&r, end, message));
        TRY(verify_record_check(data, size, *pos, &r.pos, message, "end record"));
        *type = LMC_RECORD_END;
    } else {
        return lmc_fail(message, LMC_ERR_CORRUPT, "unknown record tag 0x%02x (damaged archive)", tag);
    }
    *pos = r.pos;
    return LMC_OK;
}
