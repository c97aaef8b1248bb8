/*
 * The streaming API and the container with the fast codec: round trips
 * under any chunking and thread count, the stored fallback, and damaged
 * archives (every truncation, every bit flip) failing cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "container/container.h"
#include "test_util.h"

static lmc_options fast_options(uint32_t block_size, int threads) {
    lmc_options options;
    lmc_options_init(&options);
    options.fast = 1;
    options.block_size = block_size;
    options.threads = threads;
    return options;
}

static void round_trip(const lmc_options *options, const uint8_t *data, size_t size, size_t chunk, lmc_buf *archive) {
    lmc_buf output;
    lmc_buf_init(&output);
    assert_int_equal(test_compress(options, data, size, chunk, archive), LMC_OK);
    assert_int_equal(test_decompress(options, archive->data, archive->size, chunk, &output, 0), LMC_OK);
    assert_int_equal(output.size, size);
    if (size)
        assert_memory_equal(output.data, data, size);
    lmc_buf_free(&output);
}

static void test_fast_round_trips(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 2, 999, 1000, 1001, 50000};
    static const size_t chunks[] = {1, 7, 4096, 1 << 20};
    uint8_t *data = malloc(50000);
    test_fill_text(data, 50000, 42);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
            if (chunks[c] == 1 && sizes[s] > 2000)
                continue; /* byte-at-a-time pushes are slow, and covered by smaller inputs */
            lmc_options options = fast_options(1000, 2);
            lmc_buf archive;
            lmc_buf_init(&archive);
            round_trip(&options, data, sizes[s], chunks[c], &archive);
            lmc_buf_free(&archive);
        }
    }
    free(data);
}

/* Threads change nothing: the same archive for 1, 2 and 8 threads. */
static void test_fast_threads_identical(void **state) {
    (void)state;
    size_t size = 40000;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 7);
    lmc_buf reference;
    lmc_buf_init(&reference);
    lmc_options one = fast_options(4096, 1);
    round_trip(&one, data, size, 3000, &reference);
    static const int threads[] = {2, 8};
    for (int i = 0; i < 2; i++) {
        lmc_options options = fast_options(4096, threads[i]);
        lmc_buf archive;
        lmc_buf_init(&archive);
        round_trip(&options, data, size, 5000, &archive);
        assert_int_equal(archive.size, reference.size);
        assert_memory_equal(archive.data, reference.data, archive.size);
        lmc_buf_free(&archive);
    }
    lmc_buf_free(&reference);
    free(data);
}

/* Incompressible data is stored: the archive grows by a few bytes per block. */
static void test_stored_fallback(void **state) {
    (void)state;
    size_t size = 100000, block = 10000;
    uint8_t *data = malloc(size);
    test_fill_random(data, size, 99);
    lmc_options options = fast_options((uint32_t)block, 2);
    lmc_buf archive;
    lmc_buf_init(&archive);
    round_trip(&options, data, size, 65536, &archive);
    size_t blocks = size / block;
    assert_true(archive.size <= size + 40 * blocks + 64);
    lmc_buf_free(&archive);
    free(data);
}

/* sizeof - 1: the literals may hold NUL bytes. */
#define detect_ok(literal, expected) (lmc_detect_kind(literal, sizeof(literal) - 1) == (expected))

static void test_kind_detection(void **state) {
    (void)state;
    assert_true(detect_ok("plain text\nwith lines\n", LMC_KIND_TEXT));
    assert_true(detect_ok("caf\xc3\xa9 na\xc3\xafve", LMC_KIND_TEXT));
    assert_true(detect_ok("\x89PNG\r\n\x1a\n....", LMC_KIND_IMAGE));
    assert_true(detect_ok("P6\n3 2\n255\n", LMC_KIND_IMAGE));
    assert_true(detect_ok("RIFF\x10\x00\x00\x00WAVEfmt ", LMC_KIND_AUDIO));
    assert_true(detect_ok("fLaC....", LMC_KIND_AUDIO));
    assert_true(detect_ok("YUV4MPEG2 W2 H2", LMC_KIND_VIDEO));
    assert_true(detect_ok("\xff\xfe\x00bin", LMC_KIND_BYTES));
    assert_true(detect_ok("bad \xc0\xaf utf8", LMC_KIND_BYTES));
    /* A multi-byte character cut by the end of the prefix is still text. */
    assert_true(detect_ok("text then \xe2\x82", LMC_KIND_TEXT));
    lmc_kind kind;
    assert_int_equal(lmc_kind_parse("video", &kind), LMC_OK);
    assert_int_equal(kind, LMC_KIND_VIDEO);
    assert_int_equal(lmc_kind_parse("pictures", &kind), LMC_ERR_PARAM);
}

/* Decoding a damaged archive never succeeds with different output. */
static void expect_clean_failure_or_identity(const uint8_t *archive, size_t size, const uint8_t *data, size_t data_size) {
    lmc_options options = fast_options(0, 1);
    lmc_buf output;
    lmc_buf_init(&output);
    lmc_status status = test_decompress(&options, archive, size, 1 << 20, &output, 1);
    if (status == LMC_OK) {
        assert_int_equal(output.size, data_size);
        assert_memory_equal(output.data, data, data_size);
    }
    lmc_buf_free(&output);
}

static void test_corruption_sweep(void **state) {
    (void)state;
    size_t size = 3000;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 5);
    data[100] = 0; /* not pure text */
    lmc_options options = fast_options(1024, 1);
    lmc_buf archive;
    lmc_buf_init(&archive);
    round_trip(&options, data, size, size, &archive);
    /* Every proper prefix fails. */
    for (size_t cut = 0; cut < archive.size; cut++) {
        lmc_options decode = fast_options(0, 1);
        lmc_buf output;
        lmc_buf_init(&output);
        assert_int_not_equal(test_decompress(&decode, archive.data, cut, 1 << 20, &output, 1), LMC_OK);
        lmc_buf_free(&output);
    }
    /* Every single-bit flip fails, or (never, in practice) decodes the same data. */
    for (size_t bit = 0; bit < archive.size * 8; bit++) {
        archive.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        expect_clean_failure_or_identity(archive.data, archive.size, data, size);
        archive.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Trailing garbage after the end record is an error. */
    lmc_buf_append_byte(&archive, 0);
    lmc_options decode = fast_options(0, 1);
    lmc_buf output;
    lmc_buf_init(&output);
    assert_int_equal(test_decompress(&decode, archive.data, archive.size, 1 << 20, &output, 1), LMC_ERR_CORRUPT);
    lmc_buf_free(&output);
    lmc_buf_free(&archive);
    free(data);
}

static void test_errors(void **state) {
    (void)state;
    lmc_options options = fast_options(0, 1);
    lmc_buf output;
    lmc_buf_init(&output);
    assert_int_equal(test_decompress(&options, (const uint8_t *)"PK\x03\x04 zip", 8, 8, &output, 1), LMC_ERR_NOT_ARCHIVE);
    /* A future format version is refused by name. */
    lmc_buf archive;
    lmc_buf_init(&archive);
    lmc_header header = {.format_version = 2, .numerics_version = 1, .kind = LMC_KIND_BYTES,
                         .codec = LMC_CODEC_FAST, .model_name = "fast-cm1", .block_size = 1024};
    assert_int_equal(lmc_header_write(&archive, &header), LMC_OK);
    assert_int_equal(test_decompress(&options, archive.data, archive.size, 64, &output, 1), LMC_ERR_VERSION);
    /* A memory limit below what compression needs is reported, not crashed into. */
    lmc_options tight = fast_options(1 << 20, 1);
    tight.memlimit = 1000;
    uint8_t data[100] = {0};
    lmc_buf small;
    lmc_buf_init(&small);
    assert_int_equal(test_compress(&tight, data, sizeof data, sizeof data, &small), LMC_ERR_MEMLIMIT);
    lmc_buf_free(&small);
    lmc_buf_free(&archive);
    lmc_buf_free(&output);
}

static long read_from_buf(void *user, void *out, size_t size) {
    lmc_buf *b = user;
    size_t n = LMC_MIN(size, b->size - b->capacity); /* capacity reused as read position */
    memcpy(out, b->data + b->capacity, n);
    b->capacity += n;
    return (long)n;
}

static void test_inspect(void **state) {
    (void)state;
    size_t size = 25000;
    uint8_t *data = malloc(size);
    test_fill_text(data, size, 3);
    lmc_options options = fast_options(10000, 2);
    lmc_buf archive;
    lmc_buf_init(&archive);
    round_trip(&options, data, size, size, &archive);
    lmc_buf view = {archive.data, archive.size, 0};
    lmc_archive_info info;
    char message[256];
    assert_int_equal(lmc_archive_inspect(read_from_buf, &view, &info, message, sizeof message), LMC_OK);
    assert_int_equal(info.blocks, 3);
    assert_int_equal(info.original_size, size);
    assert_int_equal(info.archive_size, archive.size);
    assert_int_equal(info.kind, LMC_KIND_TEXT);
    assert_true(info.fast);
    assert_int_equal(info.format_version, LMC_FORMAT_VERSION);
    view.size = archive.size - 3;
    view.capacity = 0;
    assert_int_equal(lmc_archive_inspect(read_from_buf, &view, &info, message, sizeof message), LMC_ERR_TRUNCATED);
    lmc_buf_free(&archive);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_round_trips),   cmocka_unit_test(test_fast_threads_identical),
        cmocka_unit_test(test_stored_fallback),    cmocka_unit_test(test_kind_detection),
        cmocka_unit_test(test_corruption_sweep),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_inspect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
