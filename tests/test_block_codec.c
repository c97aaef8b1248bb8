/*
 * Blocks coded apart from the streams (lib.h: lmc_encoder_plan,
 * lmc_block_codec), as lmc --mpi codes them: the header of a planned
 * stream, then blocks coded in any grouping, then the end record make
 * exactly the stream's archive; decoding restores the blocks and names
 * damage; media inputs are left to the stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/lib.h"
#include "test_util.h"

/* The stream's header for data, from a planned stream. */
static void plan(const lmc_options *options, const uint8_t *data, size_t size, lmc_header *header, lmc_buf *out) {
    lmc_status status;
    lmc_encoder *e = lmc_encoder_create(options, &status);
    assert_non_null(e);
    int media = 1;
    assert_int_equal(lmc_encoder_plan(e, data, LMC_MIN(size, (size_t)1 << 20), header, &media), LMC_OK);
    assert_int_equal(media, 0);
    uint8_t bytes[256];
    size_t got;
    while ((got = lmc_encoder_pull(e, bytes, sizeof bytes)) > 0)
        lmc_buf_append(out, bytes, got);
    assert_true(out->size > 0);
    lmc_encoder_free(e);
}

/* Only the header of the stream planned for data. */
static lmc_header planned_header(const lmc_options *options, const uint8_t *data, size_t size) {
    lmc_buf archive;
    lmc_buf_init(&archive);
    lmc_header header;
    plan(options, data, size, &header, &archive);
    lmc_buf_free(&archive);
    return header;
}

/* Codes data block by block in groups of `group` blocks, as separate
 * callers would, and checks the result against the stream's archive; then
 * decodes the records in other groups. */
static void check_blocks(const lmc_options *options, const uint8_t *data, size_t size, int group) {
    lmc_buf stream, archive, records, decoded;
    lmc_buf_init(&stream);
    lmc_buf_init(&archive);
    lmc_buf_init(&records);
    lmc_buf_init(&decoded);
    assert_int_equal(test_compress(options, data, size, 1 << 20, &stream), LMC_OK);
    lmc_header header;
    plan(options, data, size, &header, &archive);

    lmc_block_codec *codec;
    lmc_message message;
    assert_int_equal(lmc_block_codec_create(&header, options, 0, &codec, &message), LMC_OK);
    size_t step = (size_t)group * header.block_size;
    uint64_t blocks = 0;
    for (size_t pos = 0; pos < size; pos += step) {
        assert_int_equal(lmc_block_codec_encode(codec, blocks, data + pos, LMC_MIN(step, size - pos), &records, &message),
                         LMC_OK);
        blocks += (LMC_MIN(step, size - pos) + header.block_size - 1) / header.block_size;
    }
    lmc_block_codec_free(codec);
    lmc_end_record end = {blocks, size, lmc_checksum64(data, size)};
    lmc_buf_append(&archive, records.data, records.size);
    lmc_end_record_write(&archive, &end);
    assert_int_equal(archive.size, stream.size);
    assert_memory_equal(archive.data, stream.data, stream.size);

    assert_int_equal(lmc_block_codec_create(&header, options, 1, &codec, &message), LMC_OK);
    assert_true(lmc_block_codec_batch(codec) >= 1);
    assert_int_equal(lmc_block_codec_decode(codec, 0, records.data, records.size, &decoded, &message), LMC_OK);
    assert_int_equal(decoded.size, size);
    assert_memory_equal(decoded.data, data, size);

    /* A flipped payload byte is named, not decoded. */
    records.data[records.size / 2] ^= 1;
    decoded.size = 0;
    assert_int_equal(lmc_block_codec_decode(codec, 0, records.data, records.size, &decoded, &message),
                     LMC_ERR_CORRUPT);
    /* A job cut inside a record is refused. */
    records.data[records.size / 2] ^= 1;
    assert_int_equal(lmc_block_codec_decode(codec, 0, records.data, records.size - 1, &decoded, &message),
                     LMC_ERR_CORRUPT);
    lmc_block_codec_free(codec);
    lmc_buf_free(&stream);
    lmc_buf_free(&archive);
    lmc_buf_free(&records);
    lmc_buf_free(&decoded);
}

static void test_fast_blocks(void **state) {
    (void)state;
    size_t size = 40000;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 11);
    test_fill_random(data + 20000, 10000, 5); /* some blocks stored raw */
    lmc_options options;
    lmc_options_init(&options);
    options.fast = 1;
    options.block_size = 4096;
    options.threads = 2;
    check_blocks(&options, data, size, 1);
    check_blocks(&options, data, size, 3);
    free(data);
}

static void test_model_blocks(void **state) {
    (void)state;
    size_t size = 2500;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 3);
    lmc_options options;
    lmc_options_init(&options);
    options.block_size = 1024;
    options.threads = 2;
    check_blocks(&options, data, size, 2);
    free(data);
}

/* Codes data as blocks under `header` and decodes them back; returns the
 * records' size, and their checksum in *digest unless it is NULL. */
static size_t round_trip_records(const lmc_header *header, const lmc_options *options, const uint8_t *data,
                                 size_t size, uint64_t *digest) {
    lmc_buf records, decoded;
    lmc_buf_init(&records);
    lmc_buf_init(&decoded);
    lmc_block_codec *codec;
    lmc_message message;
    assert_int_equal(lmc_block_codec_create(header, options, 0, &codec, &message), LMC_OK);
    assert_int_equal(lmc_block_codec_encode(codec, 0, data, size, &records, &message), LMC_OK);
    lmc_block_codec_free(codec);
    assert_int_equal(lmc_block_codec_create(header, options, 1, &codec, &message), LMC_OK);
    assert_int_equal(lmc_block_codec_decode(codec, 0, records.data, records.size, &decoded, &message), LMC_OK);
    lmc_block_codec_free(codec);
    assert_int_equal(decoded.size, size);
    assert_memory_equal(decoded.data, data, size);
    size_t bytes = records.size;
    if (digest)
        *digest = lmc_checksum64(records.data, records.size);
    lmc_buf_free(&records);
    lmc_buf_free(&decoded);
    return bytes;
}

/* New archives take int8 attention over sliding windows (numerics v3);
 * v2 (float attention, sliding) and v1 (float attention, re-read windows)
 * still code and decode, and the three code other bits once a window is
 * full (these 7,000 bytes are over 1,500 tokens, the window 512). */
static void test_numerics_versions(void **state) {
    (void)state;
    size_t size = 7000;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 9);
    lmc_options options;
    lmc_options_init(&options);
    options.block_size = 8192;
    options.threads = 2;
    lmc_header header = planned_header(&options, data, size);
    assert_int_equal(header.numerics_version, 3);
    uint64_t digests[3];
    for (int version = 3; version >= 1; version--) {
        header.numerics_version = (uint8_t)version;
        round_trip_records(&header, &options, data, size, &digests[version - 1]);
    }
    assert_true(digests[0] != digests[1] && digests[1] != digests[2] && digests[0] != digests[2]);
    free(data);
}

/* The records do not depend on the thread count, and decode with any,
 * more threads than cores included (5 blocks decoded together, their
 * lanes in lockstep). */
static void test_any_thread_count(void **state) {
    (void)state;
    size_t size = 9000;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 13);
    lmc_options options;
    lmc_options_init(&options);
    options.block_size = 2048;
    static const int threads[] = {1, 2, 3, 8};
    uint64_t digests[4];
    for (int i = 0; i < 4; i++) {
        options.threads = threads[i];
        lmc_header header = planned_header(&options, data, size);
        round_trip_records(&header, &options, data, size, &digests[i]);
        assert_true(digests[i] == digests[0]);
    }
    free(data);
}

/* Text is coded by the mixed codec in lanes (codec 5); codec 4 and codec
 * 2's model still code and decode (their archives must), and all differ. */
static void test_mixed_versions(void **state) {
    (void)state;
    size_t size = 3000;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 7);
    lmc_options options;
    lmc_options_init(&options);
    options.block_size = 1024;
    options.threads = 2;
    lmc_header header = planned_header(&options, data, size);
    assert_int_equal(header.codec, LMC_CODEC_MIXED_LANES);
    size_t lanes = round_trip_records(&header, &options, data, size, NULL);
    header.codec = LMC_CODEC_MIXED;
    size_t second = round_trip_records(&header, &options, data, size, NULL);
    header.codec = LMC_CODEC_MIXED_V1;
    size_t first = round_trip_records(&header, &options, data, size, NULL);
    /* Blocks this small get one lane and code the same bits: each of the
     * 3 blocks only adds its lane count (a byte) and its byte count (two). */
    assert_true(lanes == second + 3 * 3);
    assert_true(second != first);
    free(data);
}

/* Decodes one codec 5 block record of `raw_size` bytes whose payload is
 * `payload` (its checksum right, so the lane table itself is what is read);
 * the error message goes to `message`. */
static lmc_status decode_lane_payload(const lmc_header *header, const lmc_options *options, const uint8_t *payload,
                                      size_t payload_size, uint64_t raw_size, lmc_message *message) {
    lmc_block_record record = {LMC_BLOCK_CODED, raw_size, payload_size, 0, lmc_checksum64(payload, payload_size)};
    lmc_buf records, decoded;
    lmc_buf_init(&records);
    lmc_buf_init(&decoded);
    assert_int_equal(lmc_block_record_write(&records, &record), LMC_OK);
    assert_int_equal(lmc_buf_append(&records, payload, payload_size), LMC_OK);
    lmc_block_codec *codec;
    assert_int_equal(lmc_block_codec_create(header, options, 1, &codec, message), LMC_OK);
    lmc_status status = lmc_block_codec_decode(codec, 0, records.data, records.size, &decoded, message);
    lmc_block_codec_free(codec);
    lmc_buf_free(&records);
    lmc_buf_free(&decoded);
    return status;
}

/* A damaged lane table (with a matching payload checksum) is a clean
 * LMC_ERR_CORRUPT: no lanes, too many, a lane without tokens, more tokens
 * than bytes, bytes that do not add up to the block, a table cut short;
 * and so is a valid table followed by garbage. */
static void test_damaged_lane_tables(void **state) {
    (void)state;
    uint8_t text[600];
    test_fill_text(text, sizeof text, 11);
    lmc_options options;
    lmc_options_init(&options);
    options.threads = 2;
    const lmc_header header = planned_header(&options, text, sizeof text);
    assert_int_equal(header.codec, LMC_CODEC_MIXED_LANES);
    /* varints below 128 are one byte: lanes, then (tokens, bytes) per lane */
    static const struct {
        uint8_t table[8];
        size_t size;
    } bad[] = {
        {{0}, 1},                          /* no lanes */
        {{5, 1, 20, 1, 20, 1, 20, 1}, 8},  /* more than LMC_LANES_MAX */
        {{2, 0, 50, 10, 50}, 5},           /* a lane without tokens */
        {{1, 101, 100}, 3},                /* more tokens than bytes */
        {{2, 10, 50, 10, 49}, 5},          /* 99 bytes for a block of 100 */
        {{2, 10, 50, 10}, 4},              /* cut short */
    };
    lmc_message message;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(decode_lane_payload(&header, &options, bad[i].table, bad[i].size, 100, &message),
                         LMC_ERR_CORRUPT);
        assert_non_null(strstr(message.text, "bad token count"));
    }
    uint8_t garbage[64] = {2, 10, 50, 10, 50};
    for (size_t i = 5; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)(i * 151 + 7);
    assert_int_equal(decode_lane_payload(&header, &options, garbage, sizeof garbage, 100, &message), LMC_ERR_CORRUPT);
    assert_null(strstr(message.text, "bad token count"));
}

/* A PPM is one media block: the plan leaves it to the stream, and a media
 * header has no block codec. */
static void test_media_left_to_stream(void **state) {
    (void)state;
    uint8_t ppm[11 + 4 * 4 * 3] = "P6\n4 4\n255\n";
    for (size_t i = 11; i < sizeof ppm; i++)
        ppm[i] = (uint8_t)(i * 37);
    lmc_options options;
    lmc_options_init(&options);
    lmc_status status;
    lmc_encoder *e = lmc_encoder_create(&options, &status);
    assert_non_null(e);
    lmc_header header;
    int media = 0;
    assert_int_equal(lmc_encoder_plan(e, ppm, sizeof ppm, &header, &media), LMC_OK);
    assert_int_equal(media, 1);
    lmc_encoder_free(e);
    header.codec = LMC_CODEC_MEDIA;
    lmc_block_codec *codec;
    lmc_message message;
    assert_int_equal(lmc_block_codec_create(&header, &options, 0, &codec, &message), LMC_ERR_UNSUPPORTED);
    assert_null(codec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_blocks),
        cmocka_unit_test(test_model_blocks),
        cmocka_unit_test(test_mixed_versions),
        cmocka_unit_test(test_numerics_versions),
        cmocka_unit_test(test_any_thread_count),
        cmocka_unit_test(test_damaged_lane_tables),
        cmocka_unit_test(test_media_left_to_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
