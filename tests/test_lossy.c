/*
 * Bounded-error coding (lmc_options.max_error, src/lib/lossy.c): the
 * quantiser's bound over whole sample ranges, round trips of generated
 * images, video and audio through the public API with every sample within
 * D, the bound and PSNR an archive records, what is never quantised, what
 * is refused, and damage to a lossy archive.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <png.h>

#include "container/container.h"
#include "format/media.h"
#include "lib/lossy.h"
#include "test_util.h"

/* ---- The quantiser ---- */

static void check_unsigned_range(uint32_t max, uint32_t bound) {
    uint32_t last = lmc_lossy_index_max(max, bound);
    for (uint32_t x = 0; x <= max; x++) {
        uint32_t index = lmc_lossy_index(x, bound), value = lmc_lossy_value(index, bound, max);
        assert_true(index <= last);
        assert_true(value <= max);
        assert_true(value >= x ? value - x <= bound : x - value <= bound);
    }
}

static void test_unsigned_bound(void **state) {
    (void)state;
    static const uint32_t maxima[] = {1, 3, 15, 255, 1023, 4095, 65535};
    for (uint32_t bound = 0; bound <= 16; bound++)
        for (size_t m = 0; m < sizeof maxima / sizeof maxima[0]; m++)
            check_unsigned_range(maxima[m], bound);
    check_unsigned_range(65535, LMC_LOSSY_MAX_ERROR);
    /* D = 0 is the identity. */
    for (uint32_t x = 0; x <= 65535; x++)
        assert_int_equal(lmc_lossy_value(lmc_lossy_index(x, 0), 0, 65535), x);
}

static void check_signed(int32_t x, uint32_t bound, int32_t lo, int32_t hi) {
    int32_t index = lmc_lossy_index_signed(x, bound), value = lmc_lossy_value_signed(index, bound, lo, hi);
    int64_t error = (int64_t)value - x;
    assert_true(value >= lo && value <= hi);
    assert_true(error <= (int64_t)bound && -error <= (int64_t)bound);
    assert_true(index >= lmc_lossy_index_signed(lo, bound) && index <= lmc_lossy_index_signed(hi, bound));
}

static void test_signed_bound(void **state) {
    (void)state;
    static const uint32_t bits[] = {8, 16, 24, 32};
    uint64_t rng = 11;
    for (size_t b = 0; b < 4; b++) {
        lmc_media_desc desc = {.kind = LMC_KIND_AUDIO, .bits = bits[b], .valid_bits = bits[b]};
        int32_t lo, hi;
        lmc_lossy_audio_range(&desc, &lo, &hi);
        assert_int_equal(lo, (int32_t)(-((int64_t)1 << (bits[b] - 1))));
        for (uint32_t bound = 0; bound <= 16; bound++) {
            if (bits[b] <= 16) {
                for (int64_t x = lo; x <= hi; x++)
                    check_signed((int32_t)x, bound, lo, hi);
                continue;
            }
            for (int32_t edge = 0; edge < 64; edge++) { /* both ends of the range, where the clamp acts */
                check_signed(lo + edge, bound, lo, hi);
                check_signed(hi - edge, bound, lo, hi);
            }
            for (int i = 0; i < 100000; i++) {
                int64_t x = lo + (int64_t)(test_rng(&rng) % ((uint64_t)hi - (uint64_t)(int64_t)lo + 1));
                check_signed((int32_t)x, bound, lo, hi);
            }
        }
        check_signed(lo, LMC_LOSSY_MAX_ERROR, lo, hi);
        check_signed(hi, LMC_LOSSY_MAX_ERROR, lo, hi);
    }
}

static void test_applies(void **state) {
    (void)state;
    const char *reason = NULL;
    lmc_media_desc rgb = {.kind = LMC_KIND_IMAGE, .channels = 3, .bits = 8, .valid_bits = 8, .max_value = 255};
    lmc_media_desc palette = rgb, padded = {.kind = LMC_KIND_AUDIO, .channels = 1, .bits = 24, .valid_bits = 20};
    palette.palette = 1;
    assert_true(lmc_lossy_applies(&rgb, &reason));
    assert_false(lmc_lossy_applies(&palette, &reason));
    assert_non_null(strstr(reason, "palette"));
    assert_false(lmc_lossy_applies(&padded, &reason));
    assert_non_null(strstr(reason, "padding"));
}

/* ---- Generated files ---- */

static void append_text(lmc_buf *b, const char *text) {
    lmc_buf_append(b, text, strlen(text));
}

/* A smooth picture with noise: what the image model predicts well, with
 * every residual size present. */
static uint32_t picture(uint32_t x, uint32_t y, uint32_t c, uint32_t max, uint64_t *rng) {
    uint64_t base = ((uint64_t)x * 3 + (uint64_t)y * 2 + c * 40) * max / 400;
    uint64_t noise = test_rng(rng) % (max / 16 + 1);
    uint64_t v = base % (max + 1) + noise;
    return (uint32_t)(v > max ? max : v);
}

static void make_pnm(lmc_buf *b, uint32_t w, uint32_t h, uint32_t channels, uint32_t max) {
    char head[64];
    snprintf(head, sizeof head, "P%c\n%u %u\n%u\n", channels == 3 ? '6' : '5', w, h, max);
    append_text(b, head);
    uint64_t rng = 5;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < channels; c++) {
                uint32_t v = picture(x, y, c, max, &rng);
                if (max > 255)
                    lmc_buf_append_byte(b, (uint8_t)(v >> 8));
                lmc_buf_append_byte(b, (uint8_t)v);
            }
}

static void make_y4m(lmc_buf *b, uint32_t w, uint32_t h, uint32_t frames) {
    char head[96];
    snprintf(head, sizeof head, "YUV4MPEG2 W%u H%u F25:1 Ip A1:1 C420jpeg\n", w, h);
    append_text(b, head);
    uint64_t rng = 9;
    for (uint32_t f = 0; f < frames; f++) {
        append_text(b, "FRAME\n");
        for (uint32_t p = 0; p < 3; p++) {
            uint32_t pw = p ? (w + 1) / 2 : w, ph = p ? (h + 1) / 2 : h;
            for (uint32_t y = 0; y < ph; y++)
                for (uint32_t x = 0; x < pw; x++)
                    lmc_buf_append_byte(b, (uint8_t)picture(x + f, y, p, 255, &rng));
        }
    }
}

static void put_le(lmc_buf *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        lmc_buf_append_byte(b, (uint8_t)(v >> (8 * i)));
}

/* PCM WAV of a decaying chord with noise. */
static void make_wav(lmc_buf *b, uint32_t channels, uint32_t bits, uint32_t frames) {
    uint32_t bytes = bits / 8, data = channels * frames * bytes;
    append_text(b, "RIFF");
    put_le(b, 36 + data, 4);
    append_text(b, "WAVEfmt ");
    put_le(b, 16, 4);
    put_le(b, 1, 2);
    put_le(b, channels, 2);
    put_le(b, 16000, 4);
    put_le(b, 16000 * channels * bytes, 4);
    put_le(b, channels * bytes, 2);
    put_le(b, bits, 2);
    append_text(b, "data");
    put_le(b, data, 4);
    uint64_t rng = 3;
    double amplitude = ldexp(1.0, (int)bits - 2);
    for (uint32_t t = 0; t < frames; t++)
        for (uint32_t c = 0; c < channels; c++) {
            double v = amplitude * (sin(t * 0.05 + c) * 0.6 + sin(t * 0.173) * 0.3) * exp(-(double)t / 4000.0);
            int64_t s = (int64_t)v + (int64_t)(test_rng(&rng) % 9) - 4;
            put_le(b, bits == 8 ? (uint64_t)(s + 128) : (uint64_t)s, (int)bytes);
        }
}

static void png_append(png_structp png, png_bytep data, size_t n) {
    lmc_buf_append(png_get_io_ptr(png), data, n);
}

static void png_no_flush(png_structp png) {
    (void)png;
}

/* A 4-colour palette PNG, 32 x 16. */
static void make_palette_png(lmc_buf *b) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    png_set_write_fn(png, b, png_append, png_no_flush);
    png_set_IHDR(png, info, 32, 16, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_color colours[4] = {{0, 0, 0}, {200, 10, 10}, {10, 200, 10}, {201, 10, 10}};
    png_set_PLTE(png, info, colours, 4);
    png_write_info(png, info);
    uint8_t row[32];
    for (int y = 0; y < 16; y++) {
        for (int x = 0; x < 32; x++)
            row[x] = (uint8_t)((x / 4 + y) % 4);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
}

/* ---- Round trips ---- */

static lmc_options bounded(uint32_t bound) {
    lmc_options options;
    lmc_options_init(&options);
    options.threads = 2;
    options.max_error = bound;
    return options;
}

static lmc_media parse(const lmc_buf *file) {
    lmc_media item;
    lmc_message message;
    assert_int_equal(lmc_media_parse(file->data, file->size, 0, &item, &message), LMC_OK);
    return item;
}

typedef struct {
    const lmc_buf *archive;
    size_t pos;
} memory_reader;

static long read_memory(void *user, void *buffer, size_t size) {
    memory_reader *r = user;
    size_t n = LMC_MIN(size, r->archive->size - r->pos);
    memcpy(buffer, r->archive->data + r->pos, n);
    r->pos += n;
    return (long)n;
}

static lmc_archive_info archive_info(const lmc_buf *archive) {
    lmc_archive_info info;
    memory_reader reader = {archive, 0};
    char message[256];
    assert_int_equal(lmc_archive_inspect(read_memory, &reader, &info, message, sizeof message), LMC_OK);
    return info;
}

/* Compresses file with the bound, decodes it, and checks every sample is
 * within the bound, the archive records it and the PSNR it shows is the
 * decoded samples'. Returns the archive's size. */
static size_t check_bounded_round_trip(const lmc_buf *file, uint32_t bound) {
    lmc_options options = bounded(bound);
    lmc_buf archive, decoded;
    lmc_buf_init(&archive);
    lmc_buf_init(&decoded);
    assert_int_equal(test_compress(&options, file->data, file->size, 4096, &archive), LMC_OK);
    assert_int_equal(test_decompress(&options, archive.data, archive.size, 1000, &decoded, 0), LMC_OK);
    lmc_media original = parse(file), restored = parse(&decoded);
    assert_true(lmc_media_desc_equal(&original.desc, &restored.desc));
    assert_int_equal(original.count, restored.count);
    assert_int_equal(original.side_size, restored.side_size);
    uint64_t squared = 0;
    for (size_t i = 0; i < original.count; i++) {
        int64_t a = original.audio ? original.audio[i] : original.samples[i];
        int64_t b = restored.audio ? restored.audio[i] : restored.samples[i];
        assert_true(llabs(a - b) <= (long long)bound);
        squared += (uint64_t)((a - b) * (a - b));
    }
    lmc_archive_info info = archive_info(&archive);
    assert_int_equal(info.max_error, bound);
    double psnr = lmc_lossy_psnr(squared, original.count, lmc_lossy_peak(&original.desc));
    assert_true(isinf(psnr) ? isinf(info.psnr) : fabs(info.psnr - psnr) < 1e-9);
    if (bound > 0)
        assert_true(squared > 0 && psnr < 200);
    size_t size = archive.size;
    lmc_media_free(&original);
    lmc_media_free(&restored);
    lmc_buf_free(&archive);
    lmc_buf_free(&decoded);
    return size;
}

static void check_bounds_shrink(const lmc_buf *file) {
    size_t lossless = check_bounded_round_trip(file, 0);
    size_t d1 = check_bounded_round_trip(file, 1), d2 = check_bounded_round_trip(file, 2);
    size_t d7 = check_bounded_round_trip(file, 7);
    assert_true(d1 < lossless && d2 < d1 && d7 < d2);
}

static void test_image_round_trips(void **state) {
    (void)state;
    lmc_buf rgb, wide;
    lmc_buf_init(&rgb);
    lmc_buf_init(&wide);
    make_pnm(&rgb, 48, 40, 3, 255);
    check_bounds_shrink(&rgb);
    make_pnm(&wide, 40, 24, 1, 65535); /* 16-bit gray */
    check_bounded_round_trip(&wide, 7);
    lmc_buf_free(&rgb);
    lmc_buf_free(&wide);
}

static void test_video_round_trips(void **state) {
    (void)state;
    lmc_buf clip;
    lmc_buf_init(&clip);
    make_y4m(&clip, 40, 32, 3);
    check_bounds_shrink(&clip);
    lmc_buf_free(&clip);
}

static void test_audio_round_trips(void **state) {
    (void)state;
    lmc_buf stereo, narrow, deep;
    lmc_buf_init(&stereo);
    lmc_buf_init(&narrow);
    lmc_buf_init(&deep);
    make_wav(&stereo, 2, 16, 3000);
    check_bounds_shrink(&stereo);
    make_wav(&narrow, 1, 8, 2000); /* unsigned 8-bit, centred */
    check_bounded_round_trip(&narrow, 2);
    make_wav(&deep, 1, 24, 1000);
    check_bounded_round_trip(&deep, 7);
    lmc_buf_free(&stereo);
    lmc_buf_free(&narrow);
    lmc_buf_free(&deep);
}

/* D = 0 is the lossless coder, byte for byte. */
static void test_lossless_unchanged(void **state) {
    (void)state;
    lmc_buf file, plain, zero;
    lmc_buf_init(&file);
    lmc_buf_init(&plain);
    lmc_buf_init(&zero);
    make_pnm(&file, 32, 16, 3, 255);
    lmc_options options;
    lmc_options_init(&options);
    lmc_options none = bounded(0);
    assert_int_equal(test_compress(&options, file.data, file.size, 4096, &plain), LMC_OK);
    assert_int_equal(test_compress(&none, file.data, file.size, 4096, &zero), LMC_OK);
    assert_int_equal(plain.size, zero.size);
    assert_memory_equal(plain.data, zero.data, plain.size);
    lmc_archive_info info = archive_info(&plain);
    assert_int_equal(info.max_error, 0);
    assert_true(isinf(info.psnr));
    lmc_buf_free(&file);
    lmc_buf_free(&plain);
    lmc_buf_free(&zero);
}

static void test_palette_coded_losslessly(void **state) {
    (void)state;
    lmc_buf file, archive, decoded;
    lmc_buf_init(&file);
    lmc_buf_init(&archive);
    lmc_buf_init(&decoded);
    make_palette_png(&file);
    lmc_options options = bounded(4);
    lmc_status status;
    lmc_encoder *e = lmc_encoder_create(&options, &status);
    assert_non_null(e);
    assert_int_equal(lmc_encoder_push(e, file.data, file.size), LMC_OK);
    assert_int_equal(lmc_encoder_finish(e), LMC_OK);
    assert_non_null(lmc_encoder_notice(e));
    assert_non_null(strstr(lmc_encoder_notice(e), "palette"));
    uint8_t out[4096];
    size_t n;
    while ((n = lmc_encoder_pull(e, out, sizeof out)) > 0)
        lmc_buf_append(&archive, out, n);
    lmc_encoder_free(e);
    assert_int_equal(archive_info(&archive).max_error, 0);
    assert_int_equal(test_decompress(&options, archive.data, archive.size, 4096, &decoded, 0), LMC_OK);
    lmc_media a = parse(&file), b = parse(&decoded);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.samples, b.samples, a.count * sizeof *a.samples);
    lmc_media_free(&a);
    lmc_media_free(&b);
    lmc_buf_free(&file);
    lmc_buf_free(&archive);
    lmc_buf_free(&decoded);
}

static void test_refusals(void **state) {
    (void)state;
    uint8_t text[2000];
    test_fill_text(text, sizeof text, 7);
    lmc_buf archive;
    lmc_buf_init(&archive);
    lmc_options options = bounded(1);
    options.model = "bytes-v1"; /* any: text is refused before a model codes it */
    assert_int_equal(test_compress(&options, text, sizeof text, 4096, &archive), LMC_ERR_UNSUPPORTED);
    lmc_options fast = bounded(1), huge = bounded(LMC_LOSSY_MAX_ERROR + 1);
    fast.fast = 1;
    lmc_status status;
    assert_null(lmc_encoder_create(&fast, &status));
    assert_int_equal(status, LMC_ERR_PARAM);
    assert_null(lmc_encoder_create(&huge, &status));
    assert_int_equal(status, LMC_ERR_PARAM);
    /* A file the media readers do not take is not coded as bytes either. */
    lmc_buf broken;
    lmc_buf_init(&broken);
    append_text(&broken, "P6\n4 4\n255\n");
    options = bounded(1);
    options.kind = LMC_KIND_IMAGE;
    assert_int_equal(test_compress(&options, broken.data, broken.size, 4096, &archive), LMC_ERR_UNSUPPORTED);
    lmc_buf_free(&broken);
    lmc_buf_free(&archive);
}

/* Rewrites the first block's payload with `edit` applied and its checksums
 * made consistent again, so only the item checksum (of the decoded
 * samples) can notice. */
static void reseal(const lmc_buf *archive, void (*edit)(uint8_t *payload, size_t size), lmc_buf *out) {
    lmc_header header;
    lmc_message message;
    size_t pos = 0;
    assert_int_equal(lmc_header_read(archive->data, archive->size, &pos, &header, &message), LMC_OK);
    size_t record_start = pos;
    lmc_record_type type;
    lmc_block_record block;
    lmc_end_record end;
    assert_int_equal(lmc_record_read(archive->data, archive->size, &pos, &header, &type, &block, &end, &message),
                     LMC_OK);
    assert_int_equal(type, LMC_RECORD_BLOCK);
    assert_int_equal(block.mode, LMC_BLOCK_CODED);
    uint8_t *payload = malloc(block.payload_size);
    assert_non_null(payload);
    memcpy(payload, archive->data + pos, block.payload_size);
    edit(payload, block.payload_size);
    block.payload_checksum = lmc_checksum64(payload, block.payload_size);
    lmc_buf_append(out, archive->data, record_start);
    assert_int_equal(lmc_block_record_write(out, &block), LMC_OK);
    lmc_buf_append(out, payload, block.payload_size);
    size_t after = pos + block.payload_size;
    lmc_buf_append(out, archive->data + after, archive->size - after);
    free(payload);
}

/* The bound varint follows the version byte and 14 description varints. */
static void raise_bound(uint8_t *payload, size_t size) {
    size_t pos = 1;
    uint64_t v;
    for (int i = 0; i < 14; i++)
        assert_int_equal(lmc_varint_get(payload, size, &pos, &v), LMC_OK);
    assert_int_equal(payload[0], 2);
    assert_int_equal(payload[pos], 2);
    payload[pos] = 3;
}

static void flip_last(uint8_t *payload, size_t size) {
    payload[size - 1] ^= 0x40;
}

static void test_damaged_lossy_archive(void **state) {
    (void)state;
    lmc_buf file, archive;
    lmc_buf_init(&file);
    lmc_buf_init(&archive);
    make_pnm(&file, 32, 24, 3, 255);
    lmc_options options = bounded(2);
    assert_int_equal(test_compress(&options, file.data, file.size, 4096, &archive), LMC_OK);
    /* Flipped bits: the payload checksum. */
    lmc_buf damaged, decoded;
    lmc_buf_init(&damaged);
    lmc_buf_init(&decoded);
    lmc_buf_append(&damaged, archive.data, archive.size);
    damaged.data[damaged.size - 40] ^= 1;
    assert_int_equal(test_decompress(&options, damaged.data, damaged.size, 4096, &decoded, 1), LMC_ERR_CORRUPT);
    /* Consistent payloads that decode to other samples: the item checksum. */
    void (*edits[])(uint8_t *, size_t) = {raise_bound, flip_last};
    for (size_t i = 0; i < 2; i++) {
        damaged.size = decoded.size = 0;
        reseal(&archive, edits[i], &damaged);
        assert_int_equal(test_decompress(&options, damaged.data, damaged.size, 4096, &decoded, 1), LMC_ERR_CORRUPT);
        assert_int_equal(decoded.size, 0);
    }
    lmc_buf_free(&file);
    lmc_buf_free(&archive);
    lmc_buf_free(&damaged);
    lmc_buf_free(&decoded);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsigned_bound),       cmocka_unit_test(test_signed_bound),
        cmocka_unit_test(test_applies),              cmocka_unit_test(test_image_round_trips),
        cmocka_unit_test(test_video_round_trips),    cmocka_unit_test(test_audio_round_trips),
        cmocka_unit_test(test_lossless_unchanged),   cmocka_unit_test(test_palette_coded_losslessly),
        cmocka_unit_test(test_refusals),             cmocka_unit_test(test_damaged_lossy_archive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
