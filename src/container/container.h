/*
 * The block container (docs/FORMAT.md): a header naming the model, then
 * self-delimiting block records, then an end record. Every record carries a
 * checksum of its own fields, so a parser detects damage before trusting a
 * size, and the stream is written strictly front to back (pipes, several
 * writers in order).
 */
#ifndef LMC_CONTAINER_H
#define LMC_CONTAINER_H

#include <stdint.h>

#include "common/common.h"

#define LMC_FORMAT_VERSION 1
#define LMC_NUMERICS_VERSION 3

/* Hard limits a decoder enforces before allocating (SECURITY.md). */
#define LMC_MAX_BLOCK_SIZE (64u << 20)
#define LMC_MAX_MODEL_NAME 63
#define LMC_MAX_HEADER_EXTENSION 4096

/* MODEL: tokens coded under the neural model alone; FAST: the classical
 * context-mixing model alone; MIXED: tokens coded as bytes under both (the
 * context-mixing model's second version; MIXED_V1, its first, is decoded
 * for archives written before it); MIXED_LANES: MIXED with each block cut
 * into lanes that decode in lockstep; MEDIA: one parsed image, recording
 * or video under a sample model. */
typedef enum {
    LMC_CODEC_MODEL = 0,
    LMC_CODEC_FAST = 1,
    LMC_CODEC_MIXED_V1 = 2,
    LMC_CODEC_MEDIA = 3,
    LMC_CODEC_MIXED = 4,
    LMC_CODEC_MIXED_LANES = 5,
    LMC_CODEC_LAST = LMC_CODEC_MIXED_LANES
} lmc_codec;

static inline int lmc_codec_is_mixed(lmc_codec codec) {
    return codec == LMC_CODEC_MIXED || codec == LMC_CODEC_MIXED_V1 || codec == LMC_CODEC_MIXED_LANES;
}
typedef enum { LMC_BLOCK_CODED = 0, LMC_BLOCK_STORED = 1 } lmc_block_mode;

typedef struct {
    uint8_t format_version;
    uint8_t numerics_version;
    lmc_kind kind;
    lmc_codec codec;
    char model_name[LMC_MAX_MODEL_NAME + 1];
    uint8_t model_hash[16];
    uint32_t block_size;
    uint32_t context_window;
    uint32_t window_stride;
} lmc_header;

typedef struct {
    lmc_block_mode mode;
    uint64_t raw_size;
    uint64_t payload_size;
    uint64_t raw_checksum;
    uint64_t payload_checksum;
} lmc_block_record;

typedef struct {
    uint64_t blocks;
    uint64_t total_size;
    uint64_t total_checksum;
} lmc_end_record;

lmc_status lmc_header_write(lmc_buf *out, const lmc_header *header);
/* Block record header only; the payload follows it. */
lmc_status lmc_block_record_write(lmc_buf *out, const lmc_block_record *record);
lmc_status lmc_end_record_write(lmc_buf *out, const lmc_end_record *end);

/* Parsers read from data[*pos..size). They return LMC_ERR_TRUNCATED when more
 * bytes are needed (leaving *pos unchanged), another error for damage (with a
 * message), or LMC_OK having advanced *pos past the record. */
lmc_status lmc_header_read(const uint8_t *data, size_t size, size_t *pos, lmc_header *header, lmc_message *message);

typedef enum { LMC_RECORD_BLOCK, LMC_RECORD_END } lmc_record_type;
lmc_status lmc_record_read(const uint8_t *data, size_t size, size_t *pos, const lmc_header *header,
                           lmc_record_type *type, lmc_block_record *block, lmc_end_record *end,
                           lmc_message *message);

#endif /* LMC_CONTAINER_H */
