/*
 * Netpbm P5 (PGM), P6 (PPM) and P7 (PAM) images, restored byte-exactly.
 *
 * Side data: varint header length, the header bytes exactly as in the file
 * (comments, odd whitespace, TUPLTYPE lines...), then whatever follows the
 * raster (further images of a multi-image file, garbage), verbatim.
 * Rasters are interleaved, one byte per sample if maxval < 256, else two
 * bytes big-endian; the samples are stored planar (media.h).
 */
#include <string.h>

#include "format/media.h"

/* Largest width, height or depth accepted: keeps every product in 64 bits. */
#define PNM_MAX_DIMENSION 0x7fffffffu
#define PAM_MAX_DEPTH 16u

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    lmc_message *message;
} pnm_cursor;

static int is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* P5/P6: skips whitespace and '#' comments (to the end of the line). */
static lmc_status skip_space_and_comments(pnm_cursor *c) {
    while (c->pos < c->size) {
        uint8_t ch = c->data[c->pos];
        if (ch == '#') {
            while (c->pos < c->size && c->data[c->pos] != '\n' && c->data[c->pos] != '\r')
                c->pos++;
        } else if (is_space(ch)) {
            c->pos++;
        } else {
            return LMC_OK;
        }
    }
    return lmc_fail(c->message, LMC_ERR_TRUNCATED, "PNM header ends early");
}

static lmc_status read_number(pnm_cursor *c, uint32_t max, const char *what, uint32_t *value) {
    uint64_t v = 0;
    size_t start = c->pos;
    while (c->pos < c->size && c->data[c->pos] >= '0' && c->data[c->pos] <= '9') {
        v = v * 10 + (uint64_t)(c->data[c->pos++] - '0');
        if (v > max)
            return lmc_fail(c->message, LMC_ERR_CORRUPT, "PNM %s is too large", what);
    }
    if (c->pos == c->size)
        return lmc_fail(c->message, LMC_ERR_TRUNCATED, "PNM header ends early");
    if (c->pos == start || v == 0)
        return lmc_fail(c->message, LMC_ERR_CORRUPT, "PNM %s is missing or zero", what);
    *value = (uint32_t)v;
    return LMC_OK;
}

static lmc_status parse_p5_p6(pnm_cursor *c, uint32_t *w, uint32_t *h, uint32_t *maxval) {
    lmc_status s;
    if ((s = skip_space_and_comments(c)) != LMC_OK || (s = read_number(c, PNM_MAX_DIMENSION, "width", w)) != LMC_OK)
        return s;
    if ((s = skip_space_and_comments(c)) != LMC_OK || (s = read_number(c, PNM_MAX_DIMENSION, "height", h)) != LMC_OK)
        return s;
    if ((s = skip_space_and_comments(c)) != LMC_OK || (s = read_number(c, 65535, "maxval", maxval)) != LMC_OK)
        return s;
    /* Exactly one whitespace byte separates the header from the raster
     * (read_number guaranteed there is a byte). */
    if (!is_space(c->data[c->pos]))
        return lmc_fail(c->message, LMC_ERR_CORRUPT, "PNM maxval is not followed by whitespace");
    c->pos++;
    return LMC_OK;
}

/* P7 header line: returns in [*start, *end) the line without its '\n' and
 * moves past it. */
static lmc_status next_line(pnm_cursor *c, size_t *start, size_t *end) {
    const uint8_t *nl = memchr(c->data + c->pos, '\n', c->size - c->pos);
    if (!nl)
        return lmc_fail(c->message, LMC_ERR_TRUNCATED, "PAM header ends early");
    *start = c->pos;
    *end = (size_t)(nl - c->data);
    c->pos = *end + 1;
    return LMC_OK;
}

static int line_keyword(const uint8_t *line, size_t n, const char *keyword, size_t *after) {
    size_t k = strlen(keyword);
    if (n < k || memcmp(line, keyword, k) != 0 || (n > k && !is_space(line[k])))
        return 0;
    *after = k;
    return 1;
}

static lmc_status pam_field(pnm_cursor *c, size_t start, size_t end, size_t after, uint32_t max,
                            const char *what, uint32_t *value) {
    pnm_cursor field = {c->data, end, start + after, c->message};
    while (field.pos < end && is_space(c->data[field.pos]))
        field.pos++;
    uint64_t v = 0;
    size_t digits = 0;
    for (; field.pos < end && c->data[field.pos] >= '0' && c->data[field.pos] <= '9'; field.pos++, digits++) {
        v = v * 10 + (uint64_t)(c->data[field.pos] - '0');
        if (v > max)
            return lmc_fail(c->message, LMC_ERR_CORRUPT, "PAM %s is too large", what);
    }
    while (field.pos < end && is_space(c->data[field.pos]))
        field.pos++;
    if (digits == 0 || v == 0 || field.pos != end)
        return lmc_fail(c->message, LMC_ERR_CORRUPT, "PAM %s is malformed", what);
    *value = (uint32_t)v;
    return LMC_OK;
}

static lmc_status parse_p7(pnm_cursor *c, uint32_t *w, uint32_t *h, uint32_t *depth, uint32_t *maxval) {
    *w = *h = *depth = *maxval = 0;
    if (c->pos >= c->size)
        return lmc_fail(c->message, LMC_ERR_TRUNCATED, "PAM header ends early");
    if (c->data[c->pos++] != '\n')
        return lmc_fail(c->message, LMC_ERR_CORRUPT, "PAM magic is not followed by a newline");
    for (;;) {
        size_t start = 0, end = 0, after = 0;
        lmc_status s = next_line(c, &start, &end);
        if (s != LMC_OK)
            return s;
        while (start < end && is_space(c->data[start]))
            start++;
        const uint8_t *line = c->data + start;
        size_t n = end - start;
        if (n == 0 || line[0] == '#' || line_keyword(line, n, "TUPLTYPE", &after))
            continue;
        if (line_keyword(line, n, "ENDHDR", &after))
            break;
        if (line_keyword(line, n, "WIDTH", &after))
            s = pam_field(c, start, end, after, PNM_MAX_DIMENSION, "WIDTH", w);
        else if (line_keyword(line, n, "HEIGHT", &after))
            s = pam_field(c, start, end, after, PNM_MAX_DIMENSION, "HEIGHT", h);
        else if (line_keyword(line, n, "DEPTH", &after))
            s = pam_field(c, start, end, after, PAM_MAX_DEPTH, "DEPTH", depth);
        else if (line_keyword(line, n, "MAXVAL", &after))
            s = pam_field(c, start, end, after, 65535, "MAXVAL", maxval);
        else
            s = lmc_fail(c->message, LMC_ERR_CORRUPT, "unknown PAM header line");
        if (s != LMC_OK)
            return s;
    }
    if (!*w || !*h || !*depth || !*maxval)
        return lmc_fail(c->message, LMC_ERR_CORRUPT, "PAM header lacks WIDTH, HEIGHT, DEPTH or MAXVAL");
    return LMC_OK;
}

static uint32_t bits_for(uint32_t maxval) {
    uint32_t bits = 1;
    while (bits < 16 && (maxval >> bits) != 0)
        bits++;
    return bits;
}

/* Parses the header in data[0..size); sets desc and the header length. */
static lmc_status parse_header(const uint8_t *data, size_t size, lmc_media_desc *desc, size_t *header_size,
                               lmc_message *message) {
    pnm_cursor c = {data, size, 2, message};
    uint32_t w, h, depth = 1, maxval;
    lmc_status s;
    if (size < 2 || data[0] != 'P' || data[1] < '5' || data[1] > '7')
        return lmc_fail(message, size < 2 ? LMC_ERR_TRUNCATED : LMC_ERR_CORRUPT, "not a P5, P6 or P7 file");
    if (data[1] == '7') {
        s = parse_p7(&c, &w, &h, &depth, &maxval);
    } else {
        depth = data[1] == '6' ? 3 : 1;
        s = parse_p5_p6(&c, &w, &h, &maxval);
    }
    if (s != LMC_OK)
        return s;
    memset(desc, 0, sizeof *desc);
    desc->kind = LMC_KIND_IMAGE;
    desc->format = LMC_MEDIA_PNM;
    desc->width = w;
    desc->height = h;
    desc->channels = depth;
    desc->bits = desc->valid_bits = bits_for(maxval);
    desc->max_value = maxval;
    desc->frames = 1;
    *header_size = c.pos;
    return LMC_OK;
}

static size_t bytes_per_sample(const lmc_media_desc *desc) {
    return desc->max_value > 255 ? 2 : 1;
}

static lmc_status unpack_raster(lmc_media *item, const uint8_t *raster, lmc_message *message) {
    const lmc_media_desc *d = &item->desc;
    size_t bps = bytes_per_sample(d), plane = (size_t)d->width * d->height;
    for (size_t i = 0; i < plane; i++) {
        for (size_t ch = 0; ch < d->channels; ch++) {
            const uint8_t *p = raster + (i * d->channels + ch) * bps;
            uint16_t v = bps == 2 ? (uint16_t)(p[0] << 8 | p[1]) : p[0];
            if (v > d->max_value)
                return lmc_fail(message, LMC_ERR_CORRUPT, "PNM sample %u exceeds maxval %u", v, d->max_value);
            item->samples[ch * plane + i] = v;
        }
    }
    return LMC_OK;
}

lmc_status lmc_pnm_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message) {
    memset(item, 0, sizeof *item);
    size_t header_size;
    lmc_status s = parse_header(data, size, &item->desc, &header_size, message);
    if (s != LMC_OK)
        return s;
    const lmc_media_desc *d = &item->desc;
    /* width, height < 2^31 and depth <= 16: the product fits in 64 bits. */
    uint64_t count = (uint64_t)d->width * d->height * d->channels;
    uint64_t raster_size = count * bytes_per_sample(d);
    if (raster_size > size - header_size) {
        memset(item, 0, sizeof *item);
        return lmc_fail(message, LMC_ERR_TRUNCATED, "PNM raster needs %llu bytes, %zu left",
                        (unsigned long long)raster_size, size - header_size);
    }
    uint64_t side_header = header_size;
    if ((s = lmc_media_alloc_samples(item, count, max_samples, message)) != LMC_OK ||
        (s = unpack_raster(item, data + header_size, message)) != LMC_OK ||
        (s = lmc_media_make_side(item, &side_header, 1, data, size, header_size, (size_t)raster_size, message)) !=
            LMC_OK) {
        lmc_media_free(item);
        return s;
    }
    return LMC_OK;
}

static lmc_status pack_raster(const lmc_media *item, uint8_t *raster, lmc_message *message) {
    const lmc_media_desc *d = &item->desc;
    size_t bps = bytes_per_sample(d), plane = (size_t)d->width * d->height;
    for (size_t i = 0; i < plane; i++) {
        for (size_t ch = 0; ch < d->channels; ch++) {
            uint16_t v = item->samples[ch * plane + i];
            if (v > d->max_value)
                return lmc_fail(message, LMC_ERR_PARAM, "PNM sample %u exceeds maxval %u", v, d->max_value);
            uint8_t *p = raster + (i * d->channels + ch) * bps;
            if (bps == 2) {
                p[0] = (uint8_t)(v >> 8);
                p[1] = (uint8_t)v;
            } else {
                p[0] = (uint8_t)v;
            }
        }
    }
    return LMC_OK;
}

lmc_status lmc_pnm_write(const lmc_media *item, lmc_buf *out, lmc_message *message) {
    size_t pos = 0;
    uint64_t header_size;
    lmc_media_desc desc;
    size_t parsed_size;
    if (lmc_varint_get(item->side, item->side_size, &pos, &header_size) != LMC_OK ||
        header_size > item->side_size - pos)
        return lmc_fail(message, LMC_ERR_PARAM, "PNM side data is malformed");
    const uint8_t *header = item->side + pos;
    if (parse_header(header, (size_t)header_size, &desc, &parsed_size, message) != LMC_OK ||
        parsed_size != header_size || !lmc_media_desc_equal(&desc, &item->desc) || !item->samples ||
        item->count != (size_t)desc.width * desc.height * desc.channels)
        return lmc_fail(message, LMC_ERR_PARAM, "PNM item does not match its side data");
    size_t raster_size = item->count * bytes_per_sample(&desc);
    size_t tail = item->side_size - pos - (size_t)header_size;
    lmc_status s = lmc_buf_reserve(out, (size_t)header_size + raster_size + tail);
    if (s != LMC_OK)
        return lmc_fail(message, s, "out of memory writing a PNM file");
    size_t start = out->size;
    memcpy(out->data + out->size, header, (size_t)header_size);
    if ((s = pack_raster(item, out->data + start + header_size, message)) != LMC_OK)
        return s;
    out->size += (size_t)header_size + raster_size;
    return lmc_buf_append(out, header + header_size, tail);
}
