/*
 * The media readers (src/format/media.h): round trips of generated PNG,
 * PNM/PAM, WAV and Y4M files, refusal of every truncation, and the
 * evaluation corpus (when present).
 */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <png.h>

#include "format/media.h"
#include "test_util.h"

/* ---- Shared checks ---- */

/* Parses data, writes it back and re-parses the result: the samples and
 * side data must be identical, and for byte-exact formats the bytes too.
 * Returns the first parse's item (caller frees). */
static lmc_media check_roundtrip(const uint8_t *data, size_t size) {
    lmc_media item, again;
    lmc_message message = {{0}};
    lmc_status s = lmc_media_parse(data, size, 0, &item, &message);
    if (s != LMC_OK)
        print_message("parse failed: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    lmc_buf out;
    lmc_buf_init(&out);
    s = lmc_media_write(&item, &out, &message);
    if (s != LMC_OK)
        print_message("write failed: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    if (item.desc.format != LMC_MEDIA_PNG) {
        assert_int_equal(out.size, size);
        assert_memory_equal(out.data, data, size);
    }
    assert_int_equal(lmc_media_parse(out.data, out.size, 0, &again, &message), LMC_OK);
    assert_true(lmc_media_desc_equal(&item.desc, &again.desc));
    assert_int_equal(item.count, again.count);
    if (item.samples)
        assert_memory_equal(item.samples, again.samples, item.count * sizeof *item.samples);
    else
        assert_memory_equal(item.audio, again.audio, item.count * sizeof *item.audio);
    assert_int_equal(item.side_size, again.side_size);
    assert_memory_equal(item.side, again.side, item.side_size);
    lmc_media_free(&again);
    lmc_buf_free(&out);
    return item;
}

/* Every proper prefix of a file must be refused, never crash. */
static void check_truncations(const uint8_t *data, size_t size) {
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
        assert_non_null(copy);
        memcpy(copy, data, n);
        lmc_media item;
        lmc_message message = {{0}};
        lmc_status s = lmc_media_parse(copy, n, 0, &item, &message);
        if (s == LMC_OK)
            print_message("prefix of %zu bytes of %zu parsed\n", n, size);
        assert_int_not_equal(s, LMC_OK);
        assert_true(message.text[0] != '\0');
        assert_null(item.samples);
        assert_null(item.audio);
        assert_null(item.side);
        free(copy);
    }
}

static lmc_status parse_status(const uint8_t *data, size_t size) {
    lmc_media item;
    lmc_message message = {{0}};
    lmc_status s = lmc_media_parse(data, size, 0, &item, &message);
    lmc_media_free(&item);
    return s;
}

/* ---- PNG files made with libpng ---- */

typedef struct {
    int color_type, depth, interlace;
    int chunks;     /* add ancillary chunks before and after IDAT */
    int small_idat; /* split the image data into many IDAT chunks */
} png_spec;

static void png_test_write(png_structp png, png_bytep data, size_t n) {
    assert_int_equal(lmc_buf_append(png_get_io_ptr(png), data, n), LMC_OK);
}

static void png_test_flush(png_structp png) {
    (void)png;
}

static uint32_t png_channels(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
    }
}

static void write_ancillary_before(png_structp png, const png_spec *spec) {
    static const uint8_t gama[4] = {0, 0, 0xB1, 0x8F}, phys[9] = {0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1};
    static const uint8_t text[] = "Comment\0made by test_media", private_data[5] = {1, 2, 3, 4, 5};
    static const uint8_t iccp[] = "fake\0\0\x78\x9c\x03\x00\x00\x00\x00\x01";
    png_write_chunk(png, (png_const_bytep) "gAMA", gama, sizeof gama);
    png_write_chunk(png, (png_const_bytep) "iCCP", iccp, sizeof iccp - 1);
    png_write_chunk(png, (png_const_bytep) "pHYs", phys, sizeof phys);
    png_write_chunk(png, (png_const_bytep) "tEXt", text, sizeof text - 1);
    png_write_chunk(png, (png_const_bytep) "prVt", private_data, sizeof private_data);
    if (spec->color_type == PNG_COLOR_TYPE_PALETTE) {
        static const uint8_t bkgd[1] = {1};
        png_write_chunk(png, (png_const_bytep) "bKGD", bkgd, 1);
    }
}

static void write_ancillary_after(png_structp png) {
    static const uint8_t time[7] = {0x07, 0xE8, 1, 2, 3, 4, 5}, itxt[] = "Title\0\0\0en\0Titel\0t";
    png_write_chunk(png, (png_const_bytep) "tIME", time, sizeof time);
    png_write_chunk(png, (png_const_bytep) "iTXt", itxt, sizeof itxt - 1);
    png_write_chunk(png, (png_const_bytep) "zzZz", itxt, 3); /* unknown ancillary */
}

static void set_palette(png_structp png, png_infop info, int depth) {
    png_color palette[256];
    png_byte alpha[256];
    int n = 1 << depth;
    for (int i = 0; i < n; i++) {
        /* Entries 0 and 1 share a colour: only indices can restore them. */
        int v = i == 1 ? 0 : i;
        palette[i].red = (png_byte)v;
        palette[i].green = (png_byte)(255 - v);
        palette[i].blue = (png_byte)(v * 7);
        alpha[i] = (png_byte)(255 - i);
    }
    png_set_PLTE(png, info, palette, n);
    png_set_tRNS(png, info, alpha, n, NULL);
}

/* Writes a PNG of the planar samples. Kept out of interprocedural
 * optimisation: specialised for a caller's constant sizes, gcc 12's
 * vectoriser warns (-Wstringop-overflow) about stores those sizes never make. */
#if defined(__clang__)
#define NO_IPA __attribute__((noinline))
#else
#define NO_IPA __attribute__((noipa))
#endif
NO_IPA static void make_png(const png_spec *spec, uint32_t w, uint32_t h, const uint16_t *samples, lmc_buf *out) {
    uint32_t channels = png_channels(spec->color_type);
    size_t row_bytes = (size_t)w * channels * (spec->depth == 16 ? 2 : 1), plane = (size_t)w * h;
    uint8_t *raw = malloc(row_bytes * h);
    png_bytep *rows = malloc(h * sizeof *rows);
    assert_non_null(raw);
    assert_non_null(rows);
    for (size_t y = 0; y < h; y++) {
        uint8_t *row = raw + y * row_bytes;
        rows[y] = row;
        for (size_t x = 0; x < w; x++)
            for (size_t c = 0; c < channels; c++) {
                uint16_t v = samples[c * plane + y * w + x];
                size_t i = x * channels + c;
                if (spec->depth == 16) {
                    row[2 * i] = (uint8_t)(v >> 8);
                    row[2 * i + 1] = (uint8_t)v;
                } else {
                    row[i] = (uint8_t)v;
                }
            }
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed writing a test image");
    png_set_write_fn(png, out, png_test_write, png_test_flush);
    if (spec->small_idat)
        png_set_compression_buffer_size(png, 64);
    png_set_IHDR(png, info, w, h, spec->depth, spec->color_type,
                 spec->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (spec->color_type == PNG_COLOR_TYPE_PALETTE)
        set_palette(png, info, spec->depth);
    png_write_info(png, info);
    if (spec->chunks)
        write_ancillary_before(png, spec);
    if (spec->depth < 8)
        png_set_packing(png);
    png_write_image(png, rows);
    if (spec->chunks)
        write_ancillary_after(png);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(raw);
}

static uint16_t *random_samples(size_t count, uint32_t max_value, uint64_t seed) {
    uint16_t *samples = malloc(count * sizeof *samples);
    assert_non_null(samples);
    uint64_t state = seed | 1;
    for (size_t i = 0; i < count; i++)
        samples[i] = (uint16_t)(test_rng(&state) % ((uint64_t)max_value + 1));
    return samples;
}

/* Offset of the first chunk of `type` in a PNG file, or 0. */
static size_t find_chunk(const uint8_t *file, size_t size, const char *type) {
    for (size_t pos = 8; pos + 12 <= size;) {
        size_t length = (size_t)file[pos] << 24 | (size_t)file[pos + 1] << 16 | (size_t)file[pos + 2] << 8 |
                        file[pos + 3];
        if (memcmp(file + pos + 4, type, 4) == 0)
            return pos;
        pos += length + 12;
    }
    return 0;
}

static void check_png(const png_spec *spec, uint32_t w, uint32_t h, uint64_t seed) {
    uint32_t channels = png_channels(spec->color_type);
    uint16_t *samples = random_samples((size_t)w * h * channels, (1u << spec->depth) - 1, seed);
    lmc_buf file;
    lmc_buf_init(&file);
    make_png(spec, w, h, samples, &file);
    lmc_media item = check_roundtrip(file.data, file.size);
    assert_int_equal(item.desc.kind, LMC_KIND_IMAGE);
    assert_int_equal(item.desc.width, w);
    assert_int_equal(item.desc.height, h);
    assert_int_equal(item.desc.channels, channels);
    assert_int_equal(item.desc.bits, spec->depth);
    assert_int_equal(item.desc.palette, spec->color_type == PNG_COLOR_TYPE_PALETTE);
    assert_int_equal(item.desc.interlaced, spec->interlace);
    assert_memory_equal(item.samples, samples, item.count * sizeof *samples);

    /* The restored file keeps every ancillary chunk on its side of IDAT. */
    lmc_buf restored;
    lmc_buf_init(&restored);
    lmc_message message;
    assert_int_equal(lmc_media_write(&item, &restored, &message), LMC_OK);
    if (spec->chunks) {
        size_t idat = find_chunk(restored.data, restored.size, "IDAT");
        assert_true(idat > 0);
        assert_true(find_chunk(restored.data, restored.size, "gAMA") < idat);
        assert_true(find_chunk(restored.data, restored.size, "prVt") < idat);
        assert_true(find_chunk(restored.data, restored.size, "tIME") > idat);
        assert_true(find_chunk(restored.data, restored.size, "zzZz") > idat);
    }
    lmc_buf_free(&restored);
    lmc_media_free(&item);
    lmc_buf_free(&file);
    free(samples);
}

static void test_png_every_type(void **state) {
    (void)state;
    static const struct {
        int color_type, depth;
    } types[] = {
        {PNG_COLOR_TYPE_GRAY, 1},    {PNG_COLOR_TYPE_GRAY, 2},       {PNG_COLOR_TYPE_GRAY, 4},
        {PNG_COLOR_TYPE_GRAY, 8},    {PNG_COLOR_TYPE_GRAY, 16},      {PNG_COLOR_TYPE_PALETTE, 1},
        {PNG_COLOR_TYPE_PALETTE, 2}, {PNG_COLOR_TYPE_PALETTE, 4},    {PNG_COLOR_TYPE_PALETTE, 8},
        {PNG_COLOR_TYPE_RGB, 8},     {PNG_COLOR_TYPE_RGB, 16},       {PNG_COLOR_TYPE_GRAY_ALPHA, 8},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 16}, {PNG_COLOR_TYPE_RGB_ALPHA, 8}, {PNG_COLOR_TYPE_RGB_ALPHA, 16},
    };
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        for (int interlace = 0; interlace <= 1; interlace++)
            for (int chunks = 0; chunks <= 1; chunks++) {
                png_spec spec = {types[i].color_type, types[i].depth, interlace, chunks, chunks};
                check_png(&spec, 13, 7, seed++); /* odd sizes exercise partial bytes and Adam7 passes */
                check_png(&spec, 1, 1, seed++);
            }
}

static void make_small_png(lmc_buf *file) {
    png_spec spec = {PNG_COLOR_TYPE_RGB, 8, 0, 1, 0};
    uint16_t *samples = random_samples(4 * 3 * 3, 255, 7);
    make_png(&spec, 4, 3, samples, file);
    free(samples);
}

static void test_png_truncated(void **state) {
    (void)state;
    lmc_buf file;
    lmc_buf_init(&file);
    make_small_png(&file);
    check_truncations(file.data, file.size);
    lmc_buf_free(&file);
}

/* Copies the file with a chunk (length, type, data; CRC left zero as the
 * reader does not check ancillary CRCs) inserted at `pos`. */
static void insert_chunk(const lmc_buf *file, size_t pos, const char *type, const uint8_t *data, uint32_t n,
                         lmc_buf *out) {
    uint8_t header[8] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    static const uint8_t crc[4] = {0};
    memcpy(header + 4, type, 4);
    lmc_buf_init(out);
    assert_int_equal(lmc_buf_append(out, file->data, pos), LMC_OK);
    assert_int_equal(lmc_buf_append(out, header, 8), LMC_OK);
    assert_int_equal(lmc_buf_append(out, data, n), LMC_OK);
    assert_int_equal(lmc_buf_append(out, crc, 4), LMC_OK);
    assert_int_equal(lmc_buf_append(out, file->data + pos, file->size - pos), LMC_OK);
}

static void test_png_refusals(void **state) {
    (void)state;
    lmc_buf file, edited;
    lmc_buf_init(&file);
    make_small_png(&file);
    size_t idat = find_chunk(file.data, file.size, "IDAT");
    static const uint8_t actl[8] = {0, 0, 0, 1, 0, 0, 0, 0};
    insert_chunk(&file, idat, "acTL", actl, sizeof actl, &edited);
    assert_int_equal(parse_status(edited.data, edited.size), LMC_ERR_UNSUPPORTED);
    lmc_buf_free(&edited);
    insert_chunk(&file, idat, "ZZZZ", actl, sizeof actl, &edited); /* unknown critical chunk */
    assert_int_equal(parse_status(edited.data, edited.size), LMC_ERR_UNSUPPORTED);
    lmc_buf_free(&edited);

    /* Two IDAT groups separated by another chunk. */
    size_t after_idat = find_chunk(file.data, file.size, "tIME");
    insert_chunk(&file, after_idat, "IDAT", actl, sizeof actl, &edited);
    assert_int_equal(parse_status(edited.data, edited.size), LMC_ERR_CORRUPT);
    lmc_buf_free(&edited);

    /* A flipped bit in the image data fails its CRC. */
    file.data[idat + 10] ^= 1;
    assert_int_equal(parse_status(file.data, file.size), LMC_ERR_CORRUPT);
    lmc_buf_free(&file);
}

static void test_png_trailing_bytes(void **state) {
    (void)state;
    lmc_buf file;
    lmc_buf_init(&file);
    make_small_png(&file);
    assert_int_equal(lmc_buf_append(&file, "tail", 4), LMC_OK);
    lmc_media item = check_roundtrip(file.data, file.size);
    lmc_buf restored;
    lmc_buf_init(&restored);
    lmc_message message;
    assert_int_equal(lmc_media_write(&item, &restored, &message), LMC_OK);
    assert_memory_equal(restored.data + restored.size - 4, "tail", 4);
    lmc_buf_free(&restored);
    lmc_media_free(&item);
    lmc_buf_free(&file);
}

/* A huge declared image with a tiny IDAT is refused before allocating. */
static void test_png_inflate_bound(void **state) {
    (void)state;
    lmc_buf file;
    lmc_buf_init(&file);
    make_small_png(&file);
    const uint8_t big[4] = {0x00, 0x10, 0x00, 0x00}; /* 1 Mi pixels wide */
    memcpy(file.data + 16, big, 4);
    memcpy(file.data + 20, big, 4);
    lmc_media item;
    lmc_message message;
    assert_int_equal(lmc_png_parse(file.data, file.size, 0, &item, &message), LMC_ERR_CORRUPT);
    lmc_buf_free(&file);
}

/* ---- PNM ---- */

static void append_text(lmc_buf *b, const char *text) {
    assert_int_equal(lmc_buf_append(b, text, strlen(text)), LMC_OK);
}

static void append_random(lmc_buf *b, size_t n, uint64_t seed) {
    assert_int_equal(lmc_buf_reserve(b, n), LMC_OK);
    test_fill_random(b->data + b->size, n, seed);
    b->size += n;
}

/* Appends n big-endian or little-endian 16-bit samples below `limit`. */
static void append_samples16(lmc_buf *b, size_t n, uint32_t limit, int big_endian, uint64_t seed) {
    uint64_t state = seed | 1;
    for (size_t i = 0; i < n; i++) {
        uint16_t v = (uint16_t)(test_rng(&state) % limit);
        uint8_t bytes[2] = {(uint8_t)(big_endian ? v >> 8 : v), (uint8_t)(big_endian ? v : v >> 8)};
        assert_int_equal(lmc_buf_append(b, bytes, 2), LMC_OK);
    }
}

static void check_pnm_text(const char *header, size_t samples, int wide, uint32_t maxval, const char *tail,
                           uint32_t channels) {
    lmc_buf b;
    lmc_buf_init(&b);
    append_text(&b, header);
    if (wide)
        append_samples16(&b, samples, maxval + 1, 1, samples);
    else if (maxval == 255)
        append_random(&b, samples, samples);
    else
        for (size_t i = 0; i < samples; i++)
            assert_int_equal(lmc_buf_append_byte(&b, (uint8_t)(i % (maxval + 1))), LMC_OK);
    append_text(&b, tail);
    lmc_media item = check_roundtrip(b.data, b.size);
    assert_int_equal(item.desc.format, LMC_MEDIA_PNM);
    assert_int_equal(item.desc.channels, channels);
    assert_int_equal(item.desc.max_value, maxval);
    lmc_media_free(&item);
    lmc_buf_free(&b);
}

static void test_pnm_roundtrips(void **state) {
    (void)state;
    check_pnm_text("P5\n# a comment\n5 3\n255\n", 15, 0, 255, "", 1);
    check_pnm_text("P5 5\t3 # odd spacing\r\n 100\r", 15, 0, 100, "", 1);
    check_pnm_text("P5\n5 3\n65535\n", 15, 1, 65535, "", 1);
    check_pnm_text("P5\n5 3\n1000\n", 15, 1, 1000, "", 1);
    check_pnm_text("P6\n#c1\n#c2\n4 2\n255\n", 24, 0, 255, "P6\n1 1\n255\n\1\2\3", 3);
    check_pnm_text("P6\n4 2\n4095\n", 24, 1, 4095, "", 3);
    check_pnm_text("P7\nWIDTH 3\nHEIGHT 2\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\n# note\nENDHDR\n", 24, 0, 255,
                   "", 4);
    check_pnm_text("P7\n# first\nDEPTH 2\nMAXVAL 65535\nWIDTH 2\nHEIGHT 2\nTUPLTYPE GRAYSCALE_ALPHA\nENDHDR\n", 8, 1,
                   65535, "trailing", 2);
}

static void test_pnm_refusals(void **state) {
    (void)state;
    static const char over_maxval[] = "P5\n2 1\n100\n\x64\x65";
    static const char no_height[] = "P5\n2 x\n255\n\1\2";
    static const char pam_no_depth[] = "P7\nWIDTH 1\nHEIGHT 1\nMAXVAL 255\nENDHDR\n\1";
    static const char pam_bad_line[] = "P7\nWIDTH 1\nHEIGHT 1\nDEPTH 1\nFOO 2\nMAXVAL 255\nENDHDR\n\1";
    assert_int_equal(parse_status((const uint8_t *)over_maxval, sizeof over_maxval - 1), LMC_ERR_CORRUPT);
    assert_int_equal(parse_status((const uint8_t *)no_height, sizeof no_height - 1), LMC_ERR_CORRUPT);
    assert_int_equal(parse_status((const uint8_t *)pam_no_depth, sizeof pam_no_depth - 1), LMC_ERR_CORRUPT);
    assert_int_equal(parse_status((const uint8_t *)pam_bad_line, sizeof pam_bad_line - 1), LMC_ERR_CORRUPT);
}

static void test_pnm_truncated(void **state) {
    (void)state;
    lmc_buf b;
    lmc_buf_init(&b);
    append_text(&b, "P6\n# c\n3 2\n255\n");
    append_random(&b, 18, 3);
    check_truncations(b.data, b.size);
    lmc_buf_free(&b);
    lmc_buf_init(&b);
    append_text(&b, "P7\nWIDTH 2\nHEIGHT 1\nDEPTH 2\nMAXVAL 300\nENDHDR\n");
    append_samples16(&b, 4, 301, 1, 5);
    check_truncations(b.data, b.size);
    lmc_buf_free(&b);
}

/* ---- WAV ---- */

typedef struct {
    uint16_t tag, channels, bits, container_bytes, valid_bits;
    uint32_t frames;
    int list_before, odd_chunk, data_not_last, trailing, partial_frame;
} wav_spec;

static void put16(lmc_buf *b, uint32_t v) {
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    assert_int_equal(lmc_buf_append(b, p, 2), LMC_OK);
}

static void put32(lmc_buf *b, uint32_t v) {
    uint8_t p[4];
    lmc_put_le32(p, v);
    assert_int_equal(lmc_buf_append(b, p, 4), LMC_OK);
}

static void wav_chunk(lmc_buf *b, const char *id, const void *data, uint32_t n) {
    assert_int_equal(lmc_buf_append(b, id, 4), LMC_OK);
    put32(b, n);
    assert_int_equal(lmc_buf_append(b, data, n), LMC_OK);
    if (n & 1)
        assert_int_equal(lmc_buf_append_byte(b, 0), LMC_OK);
}

static void wav_fmt(lmc_buf *b, const wav_spec *w) {
    static const uint8_t pcm_guid[16] = {1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71};
    lmc_buf f;
    lmc_buf_init(&f);
    uint32_t align = (uint32_t)w->channels * w->container_bytes;
    put16(&f, w->tag);
    put16(&f, w->channels);
    put32(&f, 8000);
    put32(&f, 8000 * align);
    put16(&f, align);
    put16(&f, w->bits);
    if (w->tag == 0xFFFE) {
        put16(&f, 22);
        put16(&f, w->valid_bits);
        put32(&f, 3);
        assert_int_equal(lmc_buf_append(&f, pcm_guid, 16), LMC_OK);
    }
    wav_chunk(b, "fmt ", f.data, (uint32_t)f.size);
    lmc_buf_free(&f);
}

static void make_wav(const wav_spec *w, lmc_buf *b) {
    static const char list[] = "INFOISFT\x06\0\0\0lmc-t\0";
    lmc_buf_init(b);
    append_text(b, "RIFF....WAVE");
    wav_fmt(b, w);
    if (w->list_before)
        wav_chunk(b, "LIST", list, sizeof list - 1);
    if (w->odd_chunk)
        wav_chunk(b, "fact", "\1\2\3", 3);
    uint32_t data_size = w->frames * w->channels * w->container_bytes + (w->partial_frame ? 1 : 0);
    assert_int_equal(lmc_buf_append(b, "data", 4), LMC_OK);
    put32(b, data_size);
    append_random(b, data_size, data_size + w->channels);
    if (data_size & 1)
        assert_int_equal(lmc_buf_append_byte(b, 0), LMC_OK);
    if (w->data_not_last)
        wav_chunk(b, "LIST", list, sizeof list - 1);
    lmc_put_le32(b->data + 4, (uint32_t)b->size - 8);
    if (w->trailing)
        append_text(b, "garbage!");
}

static void test_wav_roundtrips(void **state) {
    (void)state;
    static const wav_spec specs[] = {
        {1, 1, 8, 1, 0, 101, 0, 0, 0, 0, 0},     {1, 2, 16, 2, 0, 100, 1, 0, 0, 0, 0},
        {1, 1, 24, 3, 0, 33, 0, 1, 0, 0, 0},     {1, 6, 32, 4, 0, 17, 0, 0, 1, 0, 0},
        {1, 2, 12, 2, 0, 20, 0, 0, 0, 1, 0},     {0xFFFE, 2, 32, 4, 24, 25, 1, 1, 1, 1, 0},
        {0xFFFE, 3, 16, 2, 16, 9, 0, 0, 0, 0, 1}, {1, 1, 16, 2, 0, 0, 0, 0, 0, 0, 0},
        {1, 2, 8, 1, 0, 7, 1, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        lmc_buf b;
        make_wav(&specs[i], &b);
        lmc_media item = check_roundtrip(b.data, b.size);
        assert_int_equal(item.desc.kind, LMC_KIND_AUDIO);
        assert_int_equal(item.desc.channels, specs[i].channels);
        assert_int_equal(item.desc.bits, specs[i].container_bytes * 8);
        assert_int_equal(item.desc.frames, specs[i].frames);
        assert_int_equal(item.desc.sample_rate, 8000);
        if (specs[i].container_bytes == 1 && specs[i].frames > 0) { /* unsigned 8-bit, centred */
            const uint8_t *data = memmem(b.data, b.size, "data", 4);
            assert_non_null(data);
            assert_int_equal(item.audio[0], (int)data[8] - 128);
        }
        lmc_media_free(&item);
        lmc_buf_free(&b);
    }
}

static void test_wav_refusals(void **state) {
    (void)state;
    wav_spec w = {3, 1, 32, 4, 0, 4, 0, 0, 0, 0, 0}; /* IEEE float */
    lmc_buf b;
    make_wav(&w, &b);
    assert_int_equal(parse_status(b.data, b.size), LMC_ERR_UNSUPPORTED);
    lmc_buf_free(&b);
    wav_spec pcm = {1, 2, 16, 2, 0, 4, 0, 0, 0, 0, 0};
    make_wav(&pcm, &b);
    lmc_put_le32(b.data + b.size - 16 - 4, 0x7ffffff0); /* data size far beyond the file */
    assert_int_equal(parse_status(b.data, b.size), LMC_ERR_TRUNCATED);
    lmc_buf_free(&b);
}

static void test_wav_truncated(void **state) {
    (void)state;
    wav_spec w = {0xFFFE, 2, 24, 3, 20, 5, 1, 1, 0, 0, 0};
    lmc_buf b;
    make_wav(&w, &b);
    check_truncations(b.data, b.size);
    lmc_buf_free(&b);
}

/* ---- Y4M ---- */

static void make_y4m(const char *header, const char *const *frame_headers, size_t frames, size_t frame_samples,
                     int wide, lmc_buf *b) {
    lmc_buf_init(b);
    append_text(b, header);
    for (size_t f = 0; f < frames; f++) {
        append_text(b, frame_headers[f]);
        if (wide)
            append_samples16(b, frame_samples, 1024, 0, f + 1);
        else
            append_random(b, frame_samples, f + 1);
    }
}

static void test_y4m_roundtrips(void **state) {
    (void)state;
    static const char *const frame_headers[] = {"FRAME\n", "FRAME Ixyz XFOO=1\n", "FRAME\n"};
    static const struct {
        const char *header;
        size_t frame_samples;
        int wide;
        uint32_t planes;
    } cases[] = {
        {"YUV4MPEG2 W5 H3 F25:1 Ip A1:1\n", 15 + 2 * 6, 0, 3}, /* no C: 420jpeg */
        {"YUV4MPEG2 W5 H3 F25:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n", 15 + 2 * 6, 0, 3},
        {"YUV4MPEG2 W4 H4 C420paldv\n", 16 + 2 * 4, 0, 3},
        {"YUV4MPEG2 W4 H4 C420mpeg2 It\n", 16 + 2 * 4, 0, 3},
        {"YUV4MPEG2 C420 W3 H1\n", 3 + 2 * 2, 0, 3},
        {"YUV4MPEG2 W5 H2 C422\n", 10 + 2 * 6, 0, 3},
        {"YUV4MPEG2 W5 H2 C411\n", 10 + 2 * 4, 0, 3},
        {"YUV4MPEG2 W3 H2 C444\n", 18, 0, 3},
        {"YUV4MPEG2 W3 H2 C444alpha\n", 24, 0, 4},
        {"YUV4MPEG2 W3 H2 Cmono\n", 6, 0, 1},
        {"YUV4MPEG2 W5 H3 C420p10\n", 15 + 2 * 6, 1, 3},
        {"YUV4MPEG2 W3 H2 C444p10\n", 18, 1, 3},
        {"YUV4MPEG2 W3 H2 Cmono10\n", 6, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lmc_buf b;
        make_y4m(cases[i].header, frame_headers, 3, cases[i].frame_samples, cases[i].wide, &b);
        lmc_media item = check_roundtrip(b.data, b.size);
        assert_int_equal(item.desc.kind, LMC_KIND_VIDEO);
        assert_int_equal(item.desc.frames, 3);
        assert_int_equal(item.desc.channels, cases[i].planes);
        assert_int_equal(lmc_media_frame_samples(&item.desc), cases[i].frame_samples);
        assert_int_equal(item.desc.bits, cases[i].wide ? 10 : 8);
        lmc_media_free(&item);
        lmc_buf_free(&b);
    }
}

static void test_y4m_refusals(void **state) {
    (void)state;
    static const char *const frame_headers[] = {"FRAME\n", "FRAME\n"};
    lmc_buf b;
    make_y4m("YUV4MPEG2 W2 H2 C420foo\n", frame_headers, 1, 6, 0, &b);
    assert_int_equal(parse_status(b.data, b.size), LMC_ERR_UNSUPPORTED);
    lmc_buf_free(&b);
    make_y4m("YUV4MPEG2 W2 C420\n", frame_headers, 1, 6, 0, &b);
    assert_int_equal(parse_status(b.data, b.size), LMC_ERR_CORRUPT);
    lmc_buf_free(&b);
    make_y4m("YUV4MPEG2 W2 H2 C420\n", frame_headers, 2, 6, 0, &b);
    append_text(&b, "junk");
    assert_int_equal(parse_status(b.data, b.size), LMC_ERR_CORRUPT);
    lmc_buf_free(&b);
    make_y4m("YUV4MPEG2 W2 H2 Cmono10\n", frame_headers, 1, 0, 0, &b);
    append_samples16(&b, 3, 1024, 0, 1);
    assert_int_equal(lmc_buf_append(&b, "\xff\xff", 2), LMC_OK); /* above 10 bits */
    assert_int_equal(parse_status(b.data, b.size), LMC_ERR_CORRUPT);
    lmc_buf_free(&b);
}

static void test_y4m_truncated(void **state) {
    (void)state;
    static const char *const frame_headers[] = {"FRAME Ip\n"};
    lmc_buf b;
    make_y4m("YUV4MPEG2 W3 H3 F30:1 C420mpeg2\n", frame_headers, 1, 9 + 2 * 4, 0, &b);
    check_truncations(b.data, b.size);
    lmc_buf_free(&b);
}

/* ---- Write-side validation ---- */

static void test_write_rejects_mismatch(void **state) {
    (void)state;
    lmc_buf b;
    lmc_buf_init(&b);
    append_text(&b, "P5\n2 2\n15\n\1\2\3\4");
    lmc_media item;
    lmc_message message;
    assert_int_equal(lmc_media_parse(b.data, b.size, 0, &item, &message), LMC_OK);
    lmc_buf out;
    lmc_buf_init(&out);
    item.samples[0] = 16; /* above maxval */
    assert_int_equal(lmc_media_write(&item, &out, &message), LMC_ERR_PARAM);
    item.samples[0] = 1;
    item.desc.width = 3;
    assert_int_equal(lmc_media_write(&item, &out, &message), LMC_ERR_PARAM);
    lmc_buf_free(&out);
    lmc_media_free(&item);
    lmc_buf_free(&b);

    /* max_samples caps the allocation. */
    lmc_buf_init(&b);
    append_text(&b, "P5\n4 4\n255\n");
    append_random(&b, 16, 9);
    assert_int_equal(lmc_media_parse(b.data, b.size, 15, &item, &message), LMC_ERR_MEMLIMIT);
    assert_int_equal(lmc_media_parse(b.data, b.size, 16, &item, &message), LMC_OK);
    lmc_media_free(&item);
    lmc_buf_free(&b);
    assert_int_equal(parse_status((const uint8_t *)"hello", 5), LMC_ERR_UNSUPPORTED);
}

/* ---- The evaluation corpus ---- */

static int read_file(const char *path, lmc_buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    lmc_buf_init(out);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(lmc_buf_append(out, chunk, n), LMC_OK);
    fclose(f);
    return 1;
}

static void test_corpus(void **state) {
    (void)state;
    static const char *const folders[] = {"image", "audio", "video"};
    const char *shared = getenv("LMC_SHARED_DIR") ? getenv("LMC_SHARED_DIR") : LMC_TEST_SHARED_DIR;
    int checked = 0;
    for (size_t i = 0; i < 3; i++) {
        char dir_path[1024];
        snprintf(dir_path, sizeof dir_path, "%s/corpus/%s", shared, folders[i]);
        DIR *dir = opendir(dir_path);
        if (!dir)
            continue;
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] == '.')
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir_path, entry->d_name);
            lmc_buf file;
            if (!read_file(path, &file))
                continue;
            print_message("%s\n", entry->d_name);
            lmc_media item = check_roundtrip(file.data, file.size);
            assert_int_equal(item.desc.kind, (lmc_kind)(LMC_KIND_IMAGE + i));
            lmc_media_free(&item);
            lmc_buf_free(&file);
            checked++;
        }
        closedir(dir);
    }
    if (checked == 0) {
        print_message("skipped: no corpus under %s/corpus\n", shared);
        skip();
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_every_type),     cmocka_unit_test(test_png_truncated),
        cmocka_unit_test(test_png_refusals),       cmocka_unit_test(test_png_trailing_bytes),
        cmocka_unit_test(test_png_inflate_bound),  cmocka_unit_test(test_pnm_roundtrips),
        cmocka_unit_test(test_pnm_refusals),       cmocka_unit_test(test_pnm_truncated),
        cmocka_unit_test(test_wav_roundtrips),     cmocka_unit_test(test_wav_refusals),
        cmocka_unit_test(test_wav_truncated),      cmocka_unit_test(test_y4m_roundtrips),
        cmocka_unit_test(test_y4m_refusals),       cmocka_unit_test(test_y4m_truncated),
        cmocka_unit_test(test_write_rejects_mismatch), cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
