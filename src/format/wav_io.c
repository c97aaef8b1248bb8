/*
 * RIFF/WAVE integer PCM (format 1 and WAVE_FORMAT_EXTENSIBLE with the PCM
 * sub-format), any channel count, 1 to 4 bytes per sample, restored
 * byte-exactly without libsndfile.
 *
 * Side data: the file with the sample frames cut out. Everything else stays
 * verbatim: the RIFF header (even with a wrong size), fmt, LIST, fact and
 * unknown chunks before or after the data chunk, pad bytes, a partial frame
 * at the end of the data chunk, trailing garbage. The writer finds the
 * sample region again by walking the side data's chunks up to the data
 * chunk header, exactly as the parser walked the file.
 */
#include <string.h>

#include "format/media.h"

#define WAVE_FORMAT_PCM 0x0001
#define WAVE_FORMAT_EXTENSIBLE 0xFFFE

/* KSDATAFORMAT_SUBTYPE_PCM after its first two bytes (which hold 0x0001). */
static const uint8_t pcm_guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                          0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

typedef struct {
    lmc_media_desc desc;
    uint32_t block_align;    /* bytes per sample frame */
    uint32_t container;      /* bytes per sample */
    size_t data_offset;      /* first byte of the data chunk's payload */
    uint64_t data_size;      /* its declared size */
} wav_layout;

static uint16_t get_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static lmc_status parse_fmt(const uint8_t *fmt, uint32_t size, wav_layout *w, lmc_message *message) {
    if (size < 16)
        return lmc_fail(message, LMC_ERR_CORRUPT, "WAV fmt chunk is too short");
    uint16_t tag = get_le16(fmt), channels = get_le16(fmt + 2), block_align = get_le16(fmt + 12);
    uint16_t bits = get_le16(fmt + 14), valid = bits;
    uint32_t rate = lmc_get_le32(fmt + 4);
    if (tag == WAVE_FORMAT_EXTENSIBLE) {
        if (size < 40 || get_le16(fmt + 16) < 22)
            return lmc_fail(message, LMC_ERR_CORRUPT, "WAV extensible fmt chunk is too short");
        if (get_le16(fmt + 24) != WAVE_FORMAT_PCM || memcmp(fmt + 26, pcm_guid_tail, 14) != 0)
            return lmc_fail(message, LMC_ERR_UNSUPPORTED, "WAV sub-format is not integer PCM");
        valid = get_le16(fmt + 18) ? get_le16(fmt + 18) : bits;
        if (bits % 8 != 0)
            return lmc_fail(message, LMC_ERR_CORRUPT, "WAV extensible container of %u bits", bits);
    } else if (tag != WAVE_FORMAT_PCM) {
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "WAV format tag 0x%04x is not integer PCM", tag);
    }
    uint32_t container = ((uint32_t)bits + 7) / 8;
    if (channels == 0 || bits == 0 || container > 4 || valid > bits)
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "WAV with %u channels of %u bits (%u valid)", channels,
                        bits, valid);
    if (block_align != channels * container)
        return lmc_fail(message, LMC_ERR_CORRUPT, "WAV block align %u is not %u channels x %u bytes", block_align,
                        channels, container);
    memset(&w->desc, 0, sizeof w->desc);
    w->desc.kind = LMC_KIND_AUDIO;
    w->desc.format = LMC_MEDIA_WAV;
    w->desc.channels = channels;
    w->desc.bits = container * 8;
    w->desc.valid_bits = valid;
    w->desc.sample_rate = rate;
    w->block_align = block_align;
    w->container = container;
    return LMC_OK;
}

/* Walks the chunks of data[0..size) up to the data chunk's header (which
 * must follow fmt); the payload itself need not be present. */
static lmc_status parse_layout(const uint8_t *data, size_t size, wav_layout *w, lmc_message *message) {
    int have_fmt = 0;
    if (size < 12)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "WAV header ends early");
    if (memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WAVE", 4) != 0)
        return lmc_fail(message, LMC_ERR_CORRUPT, "not a RIFF/WAVE file");
    for (size_t pos = 12;;) {
        if (size - pos < 8)
            return lmc_fail(message, LMC_ERR_TRUNCATED, "WAV ends before its data chunk");
        const uint8_t *chunk = data + pos;
        uint32_t length = lmc_get_le32(chunk + 4);
        if (memcmp(chunk, "data", 4) == 0) {
            if (!have_fmt)
                return lmc_fail(message, LMC_ERR_CORRUPT, "WAV data chunk before fmt");
            w->data_offset = pos + 8;
            w->data_size = length;
            w->desc.frames = length / w->block_align;
            return LMC_OK;
        }
        uint64_t next = (uint64_t)pos + 8 + length + (length & 1);
        if (next > size)
            return lmc_fail(message, LMC_ERR_TRUNCATED, "WAV chunk of %u bytes runs past the end", length);
        if (memcmp(chunk, "fmt ", 4) == 0) {
            if (have_fmt)
                return lmc_fail(message, LMC_ERR_CORRUPT, "WAV has two fmt chunks");
            lmc_status s = parse_fmt(chunk + 8, length, w, message);
            if (s != LMC_OK)
                return s;
            have_fmt = 1;
        }
        pos = (size_t)next;
    }
}

static int32_t read_sample(const uint8_t *p, uint32_t container) {
    switch (container) {
    case 1: return (int32_t)p[0] - 128;
    case 2: return (int16_t)get_le16(p);
    case 3: return (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) >> 8;
    default: return (int32_t)lmc_get_le32(p);
    }
}

static int sample_fits(int32_t v, uint32_t container) {
    if (container == 4)
        return 1;
    int32_t limit = (int32_t)1 << (container * 8 - 1);
    return v >= -limit && v < limit;
}

static void write_sample(uint8_t *p, int32_t v, uint32_t container) {
    uint32_t u = container == 1 ? (uint32_t)(v + 128) : (uint32_t)v;
    for (uint32_t i = 0; i < container; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

lmc_status lmc_wav_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message) {
    memset(item, 0, sizeof *item);
    wav_layout w;
    lmc_status s = parse_layout(data, size, &w, message);
    if (s != LMC_OK)
        return s;
    if (w.data_size > size - w.data_offset)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "WAV data chunk declares %llu bytes, %zu present",
                        (unsigned long long)w.data_size, size - w.data_offset);
    item->desc = w.desc;
    uint64_t frames = w.desc.frames, channels = w.desc.channels;
    if ((s = lmc_media_alloc_samples(item, frames * channels, max_samples, message)) != LMC_OK)
        return s;
    for (uint64_t t = 0; t < frames; t++)
        for (uint64_t c = 0; c < channels; c++)
            item->audio[c * frames + t] = read_sample(data + w.data_offset + t * w.block_align + c * w.container,
                                                      w.container);
    s = lmc_media_make_side(item, NULL, 0, data, size, w.data_offset, (size_t)(frames * w.block_align), message);
    if (s != LMC_OK)
        lmc_media_free(item);
    return s;
}

lmc_status lmc_wav_write(const lmc_media *item, lmc_buf *out, lmc_message *message) {
    wav_layout w;
    if (parse_layout(item->side, item->side_size, &w, message) != LMC_OK ||
        !lmc_media_desc_equal(&w.desc, &item->desc) || !item->audio ||
        item->count != w.desc.frames * w.desc.channels)
        return lmc_fail(message, LMC_ERR_PARAM, "WAV item does not match its side data");
    uint64_t frames = w.desc.frames, channels = w.desc.channels;
    size_t samples_size = (size_t)(frames * w.block_align);
    if (w.data_size - samples_size > item->side_size - w.data_offset)
        return lmc_fail(message, LMC_ERR_PARAM, "WAV side data lacks the end of its data chunk");
    lmc_status s = lmc_buf_reserve(out, item->side_size + samples_size);
    if (s != LMC_OK)
        return lmc_fail(message, s, "out of memory writing a WAV file");
    uint8_t *base = out->data + out->size;
    memcpy(base, item->side, w.data_offset);
    for (uint64_t t = 0; t < frames; t++) {
        for (uint64_t c = 0; c < channels; c++) {
            int32_t v = item->audio[c * frames + t];
            if (!sample_fits(v, w.container))
                return lmc_fail(message, LMC_ERR_PARAM, "WAV sample %d does not fit %u bytes", (int)v, w.container);
            write_sample(base + w.data_offset + t * w.block_align + c * w.container, v, w.container);
        }
    }
    memcpy(base + w.data_offset + samples_size, item->side + w.data_offset, item->side_size - w.data_offset);
    out->size += item->side_size + samples_size;
    return LMC_OK;
}
