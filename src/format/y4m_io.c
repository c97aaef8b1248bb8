/*
 * YUV4MPEG2 (Y4M) video, restored byte-exactly.
 *
 * Colourspaces: 420jpeg, 420paldv, 420mpeg2, 420, 411, 422, 444, 444alpha,
 * mono (8-bit), and 420/422/444/mono at 9 to 16 bits (C420p10, Cmono12...;
 * two bytes per sample, little-endian). No C parameter means 420jpeg.
 *
 * Side data: the stream header line, then every FRAME header line (with its
 * parameters), each verbatim including its '\n'; the frame payloads are cut
 * out. A file must hold at least one frame and end right after its last
 * frame: anything else after the frames is a truncated frame (TRUNCATED) or
 * not Y4M (CORRUPT). A file cut exactly between two frames is a valid
 * shorter stream; that cannot be detected.
 */
#include <stdlib.h>
#include <string.h>

#include "format/media.h"

#define Y4M_MAX_DIMENSION 0x7fffffffu

typedef struct {
    const char *name;
    uint8_t planes, shift_x, shift_y;
} y4m_layout;

/* Chroma layouts; a high-bit-depth name is one of these plus "p<bits>"
 * (mono: plus "<bits>"). */
static const y4m_layout layouts[] = {
    {"420jpeg", 3, 1, 1}, {"420paldv", 3, 1, 1}, {"420mpeg2", 3, 1, 1}, {"420", 3, 1, 1},
    {"411", 3, 2, 0},     {"422", 3, 1, 0},      {"444alpha", 4, 0, 0}, {"444", 3, 0, 0},
    {"mono", 1, 0, 0},
};

static int parse_depth(const char *text, size_t n, uint32_t *bits) {
    if (n == 0 || n > 2)
        return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        v = v * 10 + (uint32_t)(text[i] - '0');
    }
    if (v < 9 || v > 16)
        return 0;
    *bits = v;
    return 1;
}

/* Fills planes, shifts and bits from a C parameter's value. */
static int parse_colourspace(const char *text, size_t n, lmc_media_desc *desc) {
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        size_t k = strlen(layouts[i].name);
        if (n < k || memcmp(text, layouts[i].name, k) != 0)
            continue;
        uint32_t bits = 8;
        int exact = n == k;
        int is_mono = layouts[i].planes == 1, high_depth_ok = k == 3 || is_mono; /* 420, 422, 444, mono */
        if (!exact) {
            const char *rest = text + k;
            size_t rest_n = n - k;
            if (!high_depth_ok)
                continue;
            if (!is_mono) {
                if (rest[0] != 'p')
                    continue;
                rest++;
                rest_n--;
            }
            if (!parse_depth(rest, rest_n, &bits))
                continue;
        }
        desc->channels = layouts[i].planes;
        desc->chroma_shift_x = layouts[i].shift_x;
        desc->chroma_shift_y = layouts[i].shift_y;
        desc->bits = desc->valid_bits = bits;
        desc->max_value = (uint32_t)((1u << bits) - 1);
        return 1;
    }
    return 0;
}

static int parse_dimension(const char *text, size_t n, uint32_t *value) {
    uint64_t v = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(text[i] - '0');
        if (v > Y4M_MAX_DIMENSION)
            return 0;
    }
    *value = (uint32_t)v;
    return v > 0;
}

/* Parses the stream header line data[0..size) (without its '\n'). */
static lmc_status parse_stream_header(const uint8_t *line, size_t size, lmc_media_desc *desc, lmc_message *message) {
    const char *text = (const char *)line;
    memset(desc, 0, sizeof *desc);
    desc->kind = LMC_KIND_VIDEO;
    desc->format = LMC_MEDIA_Y4M;
    parse_colourspace("420jpeg", 7, desc);
    if (size < 9 || memcmp(text, "YUV4MPEG2", 9) != 0)
        return lmc_fail(message, LMC_ERR_CORRUPT, "not a YUV4MPEG2 stream");
    for (size_t pos = 9; pos < size;) {
        size_t end = pos;
        while (end < size && text[end] != ' ')
            end++;
        const char *token = text + pos;
        size_t n = end - pos;
        if (n > 0 && token[0] == 'W' && !parse_dimension(token + 1, n - 1, &desc->width))
            return lmc_fail(message, LMC_ERR_CORRUPT, "Y4M width is malformed");
        if (n > 0 && token[0] == 'H' && !parse_dimension(token + 1, n - 1, &desc->height))
            return lmc_fail(message, LMC_ERR_CORRUPT, "Y4M height is malformed");
        if (n > 0 && token[0] == 'C' && !parse_colourspace(token + 1, n - 1, desc))
            return lmc_fail(message, LMC_ERR_UNSUPPORTED, "Y4M colourspace '%.*s' is not supported",
                            (int)LMC_MIN(n, 32), token);
        pos = end + 1;
    }
    if (desc->width == 0 || desc->height == 0)
        return lmc_fail(message, LMC_ERR_CORRUPT, "Y4M header lacks its width or height");
    return LMC_OK;
}

static size_t sample_bytes(const lmc_media_desc *desc) {
    return desc->bits > 8 ? 2 : 1;
}

/* Length of the line at data[pos..size) including its '\n', or 0 if none. */
static size_t line_length(const uint8_t *data, size_t size, size_t pos) {
    const uint8_t *nl = memchr(data + pos, '\n', size - pos);
    return nl ? (size_t)(nl - (data + pos)) + 1 : 0;
}

/* Checks a FRAME header at data[pos..size); sets its length. */
static lmc_status frame_header(const uint8_t *data, size_t size, size_t pos, size_t *length, lmc_message *message) {
    size_t left = size - pos, n = LMC_MIN(left, (size_t)5);
    if (memcmp(data + pos, "FRAME", n) != 0)
        return lmc_fail(message, LMC_ERR_CORRUPT, "Y4M: expected a FRAME header at byte %zu", pos);
    if (left < 6)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "Y4M FRAME header ends early");
    if (data[pos + 5] != '\n' && data[pos + 5] != ' ')
        return lmc_fail(message, LMC_ERR_CORRUPT, "Y4M: malformed FRAME header at byte %zu", pos);
    *length = line_length(data, size, pos);
    if (*length == 0)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "Y4M FRAME header ends early");
    return LMC_OK;
}

/* Parses the stream header at the start of data; sets desc (frames = 0) and
 * the header's length. */
static lmc_status parse_header(const uint8_t *data, size_t size, lmc_media_desc *desc, size_t *header_size,
                               lmc_message *message) {
    size_t n = line_length(data, size, 0);
    *header_size = 0;
    if (n == 0)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "Y4M stream header ends early");
    *header_size = n;
    return parse_stream_header(data, n - 1, desc, message);
}

/* Walks the frames: payload_size = 0 when walking side data (no payloads). */
static lmc_status count_frames(const uint8_t *data, size_t size, size_t pos, uint64_t payload_size,
                               uint64_t *frames, lmc_message *message) {
    *frames = 0;
    while (pos < size) {
        size_t header;
        lmc_status s = frame_header(data, size, pos, &header, message);
        if (s != LMC_OK)
            return s;
        pos += header;
        if (payload_size > size - pos)
            return lmc_fail(message, LMC_ERR_TRUNCATED, "Y4M frame %llu ends early", (unsigned long long)*frames);
        pos += (size_t)payload_size;
        ++*frames;
    }
    if (*frames == 0)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "Y4M stream has no frames");
    return LMC_OK;
}

static lmc_status unpack_frames(lmc_media *item, const uint8_t *data, size_t size, size_t pos,
                                size_t frame_samples, lmc_buf *side, lmc_message *message) {
    size_t bps = sample_bytes(&item->desc);
    for (uint64_t f = 0; f < item->desc.frames; f++) {
        size_t header = line_length(data, size, pos); /* nonzero: count_frames checked it */
        lmc_status s = lmc_buf_append(side, data + pos, header);
        if (s != LMC_OK)
            return lmc_fail(message, s, "out of memory for Y4M side data");
        pos += header;
        uint16_t *out = item->samples + f * frame_samples;
        for (size_t i = 0; i < frame_samples; i++, pos += bps) {
            out[i] = bps == 2 ? (uint16_t)(data[pos] | data[pos + 1] << 8) : data[pos];
            if (out[i] > item->desc.max_value)
                return lmc_fail(message, LMC_ERR_CORRUPT, "Y4M sample %u exceeds %u bits", out[i],
                                item->desc.bits);
        }
    }
    return LMC_OK;
}

lmc_status lmc_y4m_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message) {
    memset(item, 0, sizeof *item);
    lmc_media_desc desc;
    size_t header_size;
    uint64_t frames;
    lmc_status s = parse_header(data, size, &desc, &header_size, message);
    if (s != LMC_OK)
        return s;
    /* width, height < 2^31, at most 4 planes: no overflow. */
    uint64_t frame_samples = lmc_media_frame_samples(&desc);
    uint64_t frame_bytes = frame_samples * sample_bytes(&desc);
    if (frame_bytes > size)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "Y4M frame of %llu bytes is larger than the file",
                        (unsigned long long)frame_bytes);
    if ((s = count_frames(data, size, header_size, frame_bytes, &frames, message)) != LMC_OK)
        return s;
    desc.frames = frames;
    item->desc = desc;
    lmc_buf side;
    lmc_buf_init(&side);
    if ((s = lmc_media_alloc_samples(item, frames * frame_samples, max_samples, message)) == LMC_OK &&
        (s = lmc_buf_append(&side, data, header_size)) == LMC_OK)
        s = unpack_frames(item, data, size, header_size, (size_t)frame_samples, &side, message);
    if (s != LMC_OK) {
        lmc_buf_free(&side);
        lmc_media_free(item);
        return s == LMC_ERR_NOMEM ? lmc_fail(message, s, "out of memory for Y4M side data") : s;
    }
    item->side = side.data;
    item->side_size = side.size;
    return LMC_OK;
}

static lmc_status pack_frame(const lmc_media *item, const uint16_t *samples, size_t count, uint8_t *out,
                             lmc_message *message) {
    size_t bps = sample_bytes(&item->desc);
    for (size_t i = 0; i < count; i++) {
        if (samples[i] > item->desc.max_value)
            return lmc_fail(message, LMC_ERR_PARAM, "Y4M sample %u exceeds %u bits", samples[i], item->desc.bits);
        out[i * bps] = (uint8_t)samples[i];
        if (bps == 2)
            out[i * bps + 1] = (uint8_t)(samples[i] >> 8);
    }
    return LMC_OK;
}

lmc_status lmc_y4m_write(const lmc_media *item, lmc_buf *out, lmc_message *message) {
    lmc_media_desc desc;
    size_t header_size;
    uint64_t frames;
    if (parse_header(item->side, item->side_size, &desc, &header_size, message) != LMC_OK ||
        count_frames(item->side, item->side_size, header_size, 0, &frames, message) != LMC_OK)
        return lmc_fail(message, LMC_ERR_PARAM, "Y4M side data is malformed");
    desc.frames = frames;
    size_t frame_samples = (size_t)lmc_media_frame_samples(&desc);
    if (!lmc_media_desc_equal(&desc, &item->desc) || !item->samples || item->count != frames * frame_samples)
        return lmc_fail(message, LMC_ERR_PARAM, "Y4M item does not match its side data");
    size_t frame_bytes = frame_samples * sample_bytes(&desc);
    lmc_status s = lmc_buf_reserve(out, item->side_size + item->count * sample_bytes(&desc));
    if (s != LMC_OK)
        return lmc_fail(message, s, "out of memory writing a Y4M file");
    size_t start = out->size;
    uint8_t *base = out->data + start;
    memcpy(base, item->side, header_size);
    size_t in = header_size, at = header_size;
    for (uint64_t f = 0; f < frames; f++) {
        size_t header = line_length(item->side, item->side_size, in);
        memcpy(base + at, item->side + in, header);
        in += header;
        at += header;
        if ((s = pack_frame(item, item->samples + f * frame_samples, frame_samples, base + at, message)) != LMC_OK)
            return s;
        at += frame_bytes;
    }
    out->size = start + at;
    return LMC_OK;
}
