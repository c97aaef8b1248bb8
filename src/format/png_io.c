/*
 * PNG images through libpng, restored pixel-exactly with every other chunk
 * byte for byte in place (see media.h for why palettes stay indices).
 *
 * Parsing walks the chunks itself first: that finds the one group of
 * consecutive IDAT chunks, checks every declared length against the data,
 * refuses APNG (acTL/fcTL/fdAT: LMC_ERR_UNSUPPORTED, code as bytes) and
 * unknown critical chunks, and bounds the image by what its IDAT bytes can
 * inflate to, all before libpng allocates anything. libpng then decodes a
 * reduced stream (signature, IHDR, PLTE, the IDAT group, IEND), so ancillary
 * chunks it would reinterpret or reject never reach it; they stay verbatim
 * in the side data.
 *
 * Side data: varint offset of the IDAT group, then the file with the IDAT
 * group cut out (signature, IHDR, every other chunk, IEND, bytes after IEND).
 * The writer has libpng compress the samples into a fresh PNG of the same
 * IHDR (palette images as gray of the same depth: the same bits per pixel),
 * takes its IDAT chunks and puts them at that offset.
 */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "format/media.h"

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t iend_chunk[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};

/* zlib inflates at most ~1032:1; with the zlib header and some slack. */
#define PNG_MAX_INFLATE_RATIO 1040u
#define PNG_MAX_CHUNK 0x7fffffffu

typedef struct {
    uint32_t width, height;
    uint8_t depth, color_type, interlace;
    uint32_t channels;
} png_header_info;

typedef struct {
    png_header_info header;
    size_t ihdr_end;              /* offset after the IHDR chunk */
    size_t plte_start, plte_end;  /* the PLTE chunk, or 0, 0 */
    size_t idat_start, idat_end;  /* the group of IDAT chunks */
    uint64_t idat_payload;        /* their data bytes */
} png_layout;

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_type(const uint8_t *chunk, const char *type) {
    return memcmp(chunk + 4, type, 4) == 0;
}

static int is_letter(uint8_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static lmc_status parse_ihdr(const uint8_t *chunk, png_header_info *h, lmc_message *message) {
    if (get_be32(chunk) != 13 || !is_type(chunk, "IHDR"))
        return lmc_fail(message, LMC_ERR_CORRUPT, "PNG does not start with a 13-byte IHDR");
    const uint8_t *d = chunk + 8;
    h->width = get_be32(d);
    h->height = get_be32(d + 4);
    h->depth = d[8];
    h->color_type = d[9];
    h->interlace = d[12];
    int depth_ok;
    switch (h->color_type) {
    case 0: h->channels = 1; depth_ok = h->depth == 1 || h->depth == 2 || h->depth == 4 || h->depth == 8 || h->depth == 16; break;
    case 3: h->channels = 1; depth_ok = h->depth == 1 || h->depth == 2 || h->depth == 4 || h->depth == 8; break;
    case 2: h->channels = 3; depth_ok = h->depth == 8 || h->depth == 16; break;
    case 4: h->channels = 2; depth_ok = h->depth == 8 || h->depth == 16; break;
    case 6: h->channels = 4; depth_ok = h->depth == 8 || h->depth == 16; break;
    default: return lmc_fail(message, LMC_ERR_CORRUPT, "PNG colour type %u is invalid", h->color_type);
    }
    if (!depth_ok || h->width == 0 || h->height == 0 || h->width > PNG_MAX_CHUNK || h->height > PNG_MAX_CHUNK ||
        d[10] != 0 || d[11] != 0 || h->interlace > 1)
        return lmc_fail(message, LMC_ERR_CORRUPT, "PNG IHDR is invalid");
    return LMC_OK;
}

static void describe(const png_header_info *h, lmc_media_desc *desc) {
    memset(desc, 0, sizeof *desc);
    desc->kind = LMC_KIND_IMAGE;
    desc->format = LMC_MEDIA_PNG;
    desc->width = h->width;
    desc->height = h->height;
    desc->channels = h->channels;
    desc->bits = desc->valid_bits = h->depth;
    desc->max_value = (uint32_t)((1u << h->depth) - 1);
    desc->frames = 1;
    desc->palette = h->color_type == 3;
    desc->interlaced = h->interlace;
}

/* Checks one chunk at data[pos..size) and returns its total length. */
static lmc_status check_chunk(const uint8_t *data, size_t size, size_t pos, size_t *total, lmc_message *message) {
    if (size - pos < 12)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "PNG ends inside a chunk header at byte %zu", pos);
    const uint8_t *chunk = data + pos;
    uint32_t length = get_be32(chunk);
    if (length > PNG_MAX_CHUNK || !is_letter(chunk[4]) || !is_letter(chunk[5]) || !is_letter(chunk[6]) ||
        !is_letter(chunk[7]))
        return lmc_fail(message, LMC_ERR_CORRUPT, "PNG chunk at byte %zu is malformed", pos);
    if (length > size - pos - 12)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "PNG chunk at byte %zu runs past the end", pos);
    if (is_type(chunk, "acTL") || is_type(chunk, "fcTL") || is_type(chunk, "fdAT"))
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "animated PNG (APNG) is not supported");
    int critical = !(chunk[4] & 0x20);
    if (critical && !is_type(chunk, "IHDR") && !is_type(chunk, "PLTE") && !is_type(chunk, "IDAT") &&
        !is_type(chunk, "IEND"))
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "PNG has an unknown critical chunk %.4s", chunk + 4);
    *total = (size_t)length + 12;
    return LMC_OK;
}

/* Records a chunk that matters for decoding into the layout. */
static lmc_status note_chunk(const uint8_t *chunk, size_t pos, size_t total, png_layout *l, lmc_message *message) {
    if (is_type(chunk, "IHDR"))
        return lmc_fail(message, LMC_ERR_CORRUPT, "PNG has two IHDR chunks");
    if (is_type(chunk, "IDAT")) {
        if (l->idat_end != 0 && l->idat_end != pos)
            return lmc_fail(message, LMC_ERR_CORRUPT, "PNG IDAT chunks are not consecutive");
        if (l->idat_end == 0)
            l->idat_start = pos;
        l->idat_end = pos + total;
        l->idat_payload += total - 12;
    } else if (is_type(chunk, "PLTE")) {
        if (l->plte_end != 0 || l->idat_end != 0)
            return lmc_fail(message, LMC_ERR_CORRUPT, "PNG PLTE is repeated or after IDAT");
        l->plte_start = pos;
        l->plte_end = pos + total;
    }
    return LMC_OK;
}

/* Walks the chunks of data[0..size) to IEND. With has_idat = 0 (side data)
 * no IDAT group is expected. */
static lmc_status parse_layout(const uint8_t *data, size_t size, int has_idat, png_layout *l, lmc_message *message) {
    memset(l, 0, sizeof *l);
    if (size < 8 || memcmp(data, png_signature, 8) != 0)
        return lmc_fail(message, size < 8 ? LMC_ERR_TRUNCATED : LMC_ERR_CORRUPT, "not a PNG file");
    size_t total;
    lmc_status s = check_chunk(data, size, 8, &total, message);
    if (s != LMC_OK || (s = parse_ihdr(data + 8, &l->header, message)) != LMC_OK)
        return s;
    l->ihdr_end = 8 + total;
    for (size_t pos = l->ihdr_end;; pos += total) {
        if ((s = check_chunk(data, size, pos, &total, message)) != LMC_OK)
            return s;
        if (is_type(data + pos, "IEND"))
            break;
        if ((s = note_chunk(data + pos, pos, total, l, message)) != LMC_OK)
            return s;
    }
    if (has_idat && l->idat_end == 0)
        return lmc_fail(message, LMC_ERR_CORRUPT, "PNG has no IDAT chunk");
    if (!has_idat && l->idat_end != 0)
        return lmc_fail(message, LMC_ERR_PARAM, "PNG side data holds IDAT chunks");
    if (l->header.color_type == 3 && l->plte_end == 0)
        return lmc_fail(message, LMC_ERR_CORRUPT, "palette PNG has no PLTE chunk");
    return LMC_OK;
}

/* Bytes per row after png_set_packing: one or two per sample. */
static size_t unpacked_row_bytes(const png_header_info *h) {
    return (size_t)h->width * h->channels * (h->depth == 16 ? 2 : 1);
}

/* Refuses images whose filtered rows could not come out of the IDAT data. */
static lmc_status check_inflate_bound(const png_layout *l, lmc_message *message) {
    const png_header_info *h = &l->header;
    uint64_t row = ((uint64_t)h->width * h->channels * h->depth + 7) / 8 + 1;
    uint64_t raw = row * h->height;
    if (raw / PNG_MAX_INFLATE_RATIO > l->idat_payload + 1)
        return lmc_fail(message, LMC_ERR_CORRUPT, "PNG declares %llu raw bytes but has only %llu IDAT bytes",
                        (unsigned long long)raw, (unsigned long long)l->idat_payload);
    return LMC_OK;
}

/* ---- libpng glue: errors longjmp back with the message set ---- */

typedef struct {
    lmc_message *message;
    lmc_status status;        /* what a libpng error becomes */
    const uint8_t *input;     /* reading */
    size_t input_size, input_pos;
    lmc_buf *output;          /* writing */
} png_glue;

static void on_error(png_structp png, png_const_charp text) {
    png_glue *glue = png_get_error_ptr(png);
    lmc_fail(glue->message, glue->status, "PNG: %s", text);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void read_bytes(png_structp png, png_bytep out, size_t n) {
    png_glue *glue = png_get_io_ptr(png);
    if (n > glue->input_size - glue->input_pos)
        png_error(png, "read past the end of the data");
    memcpy(out, glue->input + glue->input_pos, n);
    glue->input_pos += n;
}

static void write_bytes(png_structp png, png_bytep data, size_t n) {
    png_glue *glue = png_get_io_ptr(png);
    if (lmc_buf_append(glue->output, data, n) != LMC_OK)
        png_error(png, "out of memory");
}

static void flush_nothing(png_structp png) {
    (void)png;
}

static void point_rows(png_bytep *rows, uint8_t *raw, const png_header_info *h) {
    size_t row_bytes = unpacked_row_bytes(h);
    for (size_t y = 0; y < h->height; y++)
        rows[y] = raw + y * row_bytes;
}

/* Decodes the reduced stream into raw (height rows of unpacked_row_bytes). */
static lmc_status decode_rows(const uint8_t *stream, size_t size, const png_header_info *h, uint8_t *raw,
                              lmc_message *message) {
    png_glue glue = {message, LMC_ERR_CORRUPT, stream, size, 0, NULL};
    png_bytep *rows = malloc((size_t)h->height * sizeof *rows);
    png_structp png = rows ? png_create_read_struct(PNG_LIBPNG_VER_STRING, &glue, on_error, on_warning) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        free(rows);
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory for the PNG decoder");
    }
    point_rows(rows, raw, h);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        return glue.status;
    }
    png_set_read_fn(png, &glue, read_bytes);
    png_set_benign_errors(png, 0); /* a short or overlong zlib stream is an error, not a warning */
    png_read_info(png, info);
    if (h->depth < 8)
        png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != unpacked_row_bytes(h))
        png_error(png, "unexpected row size");
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return LMC_OK;
}

/* The stream libpng sees: signature, IHDR, PLTE, the IDAT group, IEND. */
static lmc_status reduced_stream(const uint8_t *data, const png_layout *l, lmc_buf *out, lmc_message *message) {
    lmc_status s = lmc_buf_append(out, data, l->ihdr_end);
    if (s == LMC_OK)
        s = lmc_buf_append(out, data + l->plte_start, l->plte_end - l->plte_start);
    if (s == LMC_OK)
        s = lmc_buf_append(out, data + l->idat_start, l->idat_end - l->idat_start);
    if (s == LMC_OK)
        s = lmc_buf_append(out, iend_chunk, sizeof iend_chunk);
    return s == LMC_OK ? LMC_OK : lmc_fail(message, s, "out of memory for the PNG decoder");
}

static void rows_to_planes(const uint8_t *raw, const png_header_info *h, uint16_t *samples) {
    size_t plane = (size_t)h->width * h->height, row_bytes = unpacked_row_bytes(h);
    for (size_t y = 0; y < h->height; y++) {
        const uint8_t *row = raw + y * row_bytes;
        for (size_t x = 0; x < h->width; x++) {
            for (size_t c = 0; c < h->channels; c++) {
                size_t i = x * h->channels + c;
                uint16_t v = h->depth == 16 ? (uint16_t)(row[2 * i] << 8 | row[2 * i + 1]) : row[i];
                samples[c * plane + y * h->width + x] = v;
            }
        }
    }
}

static lmc_status decode_samples(const uint8_t *data, const png_layout *l, lmc_media *item, lmc_message *message) {
    lmc_buf stream;
    lmc_buf_init(&stream);
    lmc_status s = reduced_stream(data, l, &stream, message);
    uint8_t *raw = NULL;
    if (s == LMC_OK) {
        raw = malloc(l->header.height * unpacked_row_bytes(&l->header));
        s = raw ? decode_rows(stream.data, stream.size, &l->header, raw, message)
                : lmc_fail(message, LMC_ERR_NOMEM, "out of memory for PNG rows");
    }
    if (s == LMC_OK)
        rows_to_planes(raw, &l->header, item->samples);
    free(raw);
    lmc_buf_free(&stream);
    return s;
}

lmc_status lmc_png_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message) {
    memset(item, 0, sizeof *item);
    png_layout l;
    lmc_status s = parse_layout(data, size, 1, &l, message);
    if (s != LMC_OK || (s = check_inflate_bound(&l, message)) != LMC_OK)
        return s;
    describe(&l.header, &item->desc);
    uint64_t count = (uint64_t)l.header.width * l.header.height * l.header.channels;
    uint64_t idat_offset = l.idat_start;
    if ((s = lmc_media_alloc_samples(item, count, max_samples, message)) != LMC_OK ||
        (s = decode_samples(data, &l, item, message)) != LMC_OK ||
        (s = lmc_media_make_side(item, &idat_offset, 1, data, size, l.idat_start, l.idat_end - l.idat_start,
                                 message)) != LMC_OK) {
        lmc_media_free(item);
        return s;
    }
    return LMC_OK;
}

/* ---- Writing ---- */

static lmc_status planes_to_rows(const lmc_media *item, const png_header_info *h, uint8_t *raw,
                                 lmc_message *message) {
    size_t plane = (size_t)h->width * h->height, row_bytes = unpacked_row_bytes(h);
    for (size_t y = 0; y < h->height; y++) {
        uint8_t *row = raw + y * row_bytes;
        for (size_t x = 0; x < h->width; x++) {
            for (size_t c = 0; c < h->channels; c++) {
                size_t i = x * h->channels + c;
                uint16_t v = item->samples[c * plane + y * h->width + x];
                if (v > item->desc.max_value)
                    return lmc_fail(message, LMC_ERR_PARAM, "PNG sample %u exceeds %u bits", v, h->depth);
                if (h->depth == 16) {
                    row[2 * i] = (uint8_t)(v >> 8);
                    row[2 * i + 1] = (uint8_t)v;
                } else {
                    row[i] = (uint8_t)v;
                }
            }
        }
    }
    return LMC_OK;
}

/* Compresses raw rows into a complete PNG in `png_file`. */
static lmc_status encode_rows(const png_header_info *h, uint8_t *raw, lmc_buf *png_file, lmc_message *message) {
    png_glue glue = {message, LMC_ERR_INTERNAL, NULL, 0, 0, png_file};
    png_bytep *rows = malloc((size_t)h->height * sizeof *rows);
    png_structp png = rows ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &glue, on_error, on_warning) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(rows);
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory for the PNG encoder");
    }
    point_rows(rows, raw, h);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        return glue.status;
    }
    png_set_write_fn(png, &glue, write_bytes, flush_nothing);
    /* A palette image's indices are coded exactly like gray of its depth. */
    int color_type = h->color_type == 3 ? PNG_COLOR_TYPE_GRAY : h->color_type;
    png_set_IHDR(png, info, h->width, h->height, h->depth, color_type,
                 h->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (h->depth < 8)
        png_set_packing(png);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return LMC_OK;
}

/* Appends the IDAT chunks of a PNG made by encode_rows. */
static lmc_status append_idat_chunks(const lmc_buf *png_file, lmc_buf *out, lmc_message *message) {
    for (size_t pos = 8; pos + 12 <= png_file->size;) {
        size_t total = (size_t)get_be32(png_file->data + pos) + 12;
        if (total > png_file->size - pos)
            break;
        if (is_type(png_file->data + pos, "IDAT") && lmc_buf_append(out, png_file->data + pos, total) != LMC_OK)
            return lmc_fail(message, LMC_ERR_NOMEM, "out of memory writing a PNG file");
        pos += total;
    }
    return LMC_OK;
}

/* 1 if `offset` starts a chunk after IHDR (or is IEND's start) in a file
 * that parse_layout accepted. */
static int is_chunk_start(const uint8_t *file, const png_layout *l, uint64_t offset) {
    size_t pos = l->ihdr_end;
    while (pos < offset && !is_type(file + pos, "IEND"))
        pos += (size_t)get_be32(file + pos) + 12;
    return pos == offset;
}

lmc_status lmc_png_write(const lmc_media *item, lmc_buf *out, lmc_message *message) {
    size_t pos = 0;
    uint64_t idat_offset;
    png_layout l;
    lmc_media_desc desc;
    if (lmc_varint_get(item->side, item->side_size, &pos, &idat_offset) != LMC_OK)
        return lmc_fail(message, LMC_ERR_PARAM, "PNG side data is malformed");
    const uint8_t *file = item->side + pos;
    size_t file_size = item->side_size - pos;
    if (parse_layout(file, file_size, 0, &l, message) != LMC_OK || !is_chunk_start(file, &l, idat_offset))
        return lmc_fail(message, LMC_ERR_PARAM, "PNG side data is malformed");
    describe(&l.header, &desc);
    if (!lmc_media_desc_equal(&desc, &item->desc) || !item->samples ||
        item->count != (size_t)desc.width * desc.height * desc.channels)
        return lmc_fail(message, LMC_ERR_PARAM, "PNG item does not match its side data");
    uint8_t *raw = malloc(l.header.height * unpacked_row_bytes(&l.header));
    if (!raw)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory for PNG rows");
    lmc_buf png_file;
    lmc_buf_init(&png_file);
    lmc_status s = planes_to_rows(item, &l.header, raw, message);
    if (s == LMC_OK)
        s = encode_rows(&l.header, raw, &png_file, message);
    free(raw);
    if (s == LMC_OK && (lmc_buf_append(out, file, (size_t)idat_offset) != LMC_OK ||
                        append_idat_chunks(&png_file, out, message) != LMC_OK ||
                        lmc_buf_append(out, file + idat_offset, file_size - (size_t)idat_offset) != LMC_OK))
        s = lmc_fail(message, LMC_ERR_NOMEM, "out of memory writing a PNG file");
    lmc_buf_free(&png_file);
    return s;
}
