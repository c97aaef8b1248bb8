/*
 * FLAC through libFLAC, restored sample-exactly (like PNG: every sample and
 * every metadata block come back, the compressed frames are re-created).
 *
 * Parsing walks the metadata blocks itself first: that checks every
 * declared length against the data and finds STREAMINFO, the SEEKTABLE and
 * the first frame, before libFLAC allocates anything. libFLAC then decodes
 * a reduced stream ("fLaC", STREAMINFO as the only block, the frames and
 * whatever follows them) from memory, checking every frame's CRC and the
 * STREAMINFO MD5 when it is set. What can be restored: a fixed block size
 * B = STREAMINFO's maximum block size, every frame but the last of exactly
 * B samples, frames numbered 0, 1, 2..., each frame of STREAMINFO's channel
 * count, bits and sample rate, nothing between frames. Anything else
 * (variable block sizes, foreign bytes between frames, a sample count that
 * disagrees with STREAMINFO) is refused as LMC_ERR_UNSUPPORTED or
 * LMC_ERR_CORRUPT, so the caller codes the file as plain bytes.
 *
 * Side data: the file with its frames cut out (an ID3v2 tag before "fLaC",
 * "fLaC", every metadata block in its order, the bytes after the last
 * frame), with two normalisations so that it describes the samples, not
 * one encoding of them: STREAMINFO's minimum and maximum frame sizes are
 * zeroed, and so are the byte offset and sample count of every seek point
 * that pointed exactly at its frame. The writer re-encodes the samples with
 * libFLAC (compression level 8, block size B, not a "subset" stream so any
 * B and rate are allowed), puts the frames back after the metadata blocks,
 * and fills those fields in from the new frames. A seek point that did not
 * point at its frame (a placeholder, a damaged or unfilled point) stays as
 * it was. A set STREAMINFO MD5 is rewritten from the samples written: the
 * original's for the parsed samples, a correct one for samples decoded with
 * a bounded error. The re-encoded frames depend on the libFLAC version (and
 * its CPU-specific code paths); their samples never do.
 *
 * Memory bound: the samples are capped by max_samples (LMC_ERR_MEMLIMIT)
 * and by FLAC_MAX_SAMPLES_PER_BYTE per input byte (LMC_ERR_UNSUPPORTED),
 * the bound the media block decoder puts on an archive (src/lib); both
 * are checked against STREAMINFO's declared total before decoding and
 * against the running count while decoding, because a FLAC of constant
 * frames decodes to far more samples than its bytes (about 15,000 per byte
 * at most), and the total may be declared unknown (0).
 */
#include <FLAC/stream_decoder.h>
#include <FLAC/stream_encoder.h>
#include <stdlib.h>
#include <string.h>

#include "format/media.h"

#define STREAMINFO_SIZE 34
#define BLOCK_HEADER_SIZE 4
#define SEEK_POINT_SIZE 18
#define TYPE_STREAMINFO 0
#define TYPE_SEEKTABLE 3
#define TYPE_INVALID 127
#define LAST_BLOCK 0x80
#define ID3V2_HEADER_SIZE 10
#define FLAC_MIN_BITS 4
#define FLAC_MIN_BLOCK 16
#define FLAC_COMPRESSION_LEVEL 8
/* The media block decoder refuses more samples than this per file byte
 * (zlib's expansion bound, for PNG); a FLAC parsed here must fit it, or
 * its archive could not be decoded. */
#define FLAC_MAX_SAMPLES_PER_BYTE (8u * 1040u)
#define SEEK_PLACEHOLDER UINT64_MAX

typedef struct {
    uint32_t min_block, max_block, sample_rate, channels, bits;
    uint64_t total; /* sample frames per channel; 0: not declared */
} stream_info;

typedef struct {
    size_t magic;       /* offset of "fLaC" (after an ID3v2 tag, if any) */
    size_t streaminfo;  /* offset of STREAMINFO's body */
    size_t seektable;   /* offset of the SEEKTABLE's body; 0: none */
    size_t seek_points;
    size_t frames;      /* first byte after the metadata blocks */
    stream_info info;
} flac_layout;

static uint32_t get_be16(const uint8_t *p) {
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get_be24(const uint8_t *p) {
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint64_t get_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

size_t lmc_flac_signature_offset(const uint8_t *data, size_t size) {
    size_t magic = 0;
    if (size >= ID3V2_HEADER_SIZE && memcmp(data, "ID3", 3) == 0 &&
        !((data[6] | data[7] | data[8] | data[9]) & 0x80)) {
        uint32_t tag = (uint32_t)data[6] << 21 | (uint32_t)data[7] << 14 | (uint32_t)data[8] << 7 | data[9];
        int footer = data[5] & 0x10;
        magic = ID3V2_HEADER_SIZE + (size_t)tag + (footer ? ID3V2_HEADER_SIZE : 0);
    }
    return size >= 4 && magic <= size - 4 && memcmp(data + magic, "fLaC", 4) == 0 ? magic : SIZE_MAX;
}

static lmc_status read_stream_info(const uint8_t *p, stream_info *info, lmc_message *message) {
    info->min_block = get_be16(p);
    info->max_block = get_be16(p + 2);
    info->sample_rate = get_be24(p + 10) >> 4;
    info->channels = ((p[12] >> 1) & 7) + 1;
    info->bits = ((uint32_t)(p[12] & 1) << 4 | p[13] >> 4) + 1;
    info->total = (uint64_t)(p[13] & 0x0f) << 32 | (uint64_t)get_be24(p + 14) << 8 | p[17];
    if (info->min_block > info->max_block)
        return lmc_fail(message, LMC_ERR_CORRUPT, "FLAC block sizes %u > %u", info->min_block, info->max_block);
    if (info->max_block < FLAC_MIN_BLOCK || info->bits < FLAC_MIN_BITS || info->sample_rate == 0)
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "FLAC of block size %u, %u bits, %u Hz is not handled",
                        info->max_block, info->bits, info->sample_rate);
    return LMC_OK;
}

/* Checks one metadata block header at data[pos] and notes what it is. */
static lmc_status note_block(const uint8_t *data, size_t size, size_t pos, int first, flac_layout *l,
                             lmc_message *message) {
    if (size - pos < BLOCK_HEADER_SIZE)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "FLAC ends inside a metadata block header");
    uint32_t type = data[pos] & 0x7f, length = get_be24(data + pos + 1);
    if (length > size - pos - BLOCK_HEADER_SIZE)
        return lmc_fail(message, LMC_ERR_TRUNCATED, "FLAC metadata block of %u bytes runs past the end", length);
    if (type == TYPE_INVALID || first != (type == TYPE_STREAMINFO))
        return lmc_fail(message, LMC_ERR_CORRUPT, "FLAC metadata block of type %u at byte %zu", type, pos);
    if (type == TYPE_STREAMINFO) {
        if (length != STREAMINFO_SIZE)
            return lmc_fail(message, LMC_ERR_CORRUPT, "FLAC STREAMINFO of %u bytes", length);
        l->streaminfo = pos + BLOCK_HEADER_SIZE;
    } else if (type == TYPE_SEEKTABLE) {
        if (l->seektable != 0)
            return lmc_fail(message, LMC_ERR_UNSUPPORTED, "FLAC has two SEEKTABLE blocks");
        if (length % SEEK_POINT_SIZE != 0)
            return lmc_fail(message, LMC_ERR_CORRUPT, "FLAC SEEKTABLE of %u bytes", length);
        l->seektable = pos + BLOCK_HEADER_SIZE;
        l->seek_points = length / SEEK_POINT_SIZE;
    }
    return LMC_OK;
}

/* Walks data[0..size) (a file, or side data) up to the end of its metadata
 * blocks. */
static lmc_status parse_layout(const uint8_t *data, size_t size, flac_layout *l, lmc_message *message) {
    memset(l, 0, sizeof *l);
    l->magic = lmc_flac_signature_offset(data, size);
    if (l->magic == SIZE_MAX)
        return lmc_fail(message, size < 4 ? LMC_ERR_TRUNCATED : LMC_ERR_CORRUPT, "not a FLAC file");
    size_t pos = l->magic + 4;
    for (int first = 1;; first = 0) {
        lmc_status s = note_block(data, size, pos, first, l, message);
        if (s != LMC_OK)
            return s;
        int last = data[pos] & LAST_BLOCK;
        pos += BLOCK_HEADER_SIZE + get_be24(data + pos + 1);
        if (last)
            break;
    }
    l->frames = pos;
    return read_stream_info(data + l->streaminfo, &l->info, message);
}

static void describe(const stream_info *info, uint64_t frames, lmc_media_desc *desc) {
    memset(desc, 0, sizeof *desc);
    desc->kind = LMC_KIND_AUDIO;
    desc->format = LMC_MEDIA_FLAC;
    desc->channels = info->channels;
    desc->bits = desc->valid_bits = info->bits;
    desc->sample_rate = info->sample_rate;
    desc->frames = frames;
}

/* Samples of the last frame of a stream of `frames` in blocks of `block`. */
static uint32_t frame_length(uint64_t frame, uint64_t frames, uint32_t block) {
    return (uint32_t)LMC_MIN((uint64_t)block, frames - frame * block);
}

/* ---- Decoding: libFLAC reads a reduced stream from memory ---- */

typedef struct {
    const flac_layout *layout;
    uint8_t head[4 + BLOCK_HEADER_SIZE + STREAMINFO_SIZE]; /* "fLaC" + STREAMINFO (last block) */
    const uint8_t *body;   /* the frames and what follows them */
    size_t body_size;
    uint64_t pos;          /* in head ++ body */
    uint64_t cap;          /* most samples (all channels) accepted */
    int cap_is_memlimit;   /* the cap comes from max_samples, else from the input size */
    int32_t *audio;        /* channel c at audio + c * capacity */
    uint64_t capacity, frames;
    lmc_buf frame_starts;  /* uint64 per frame: offset from the first frame */
    uint64_t frames_end;   /* offset after the last good frame */
    int damaged;           /* libFLAC reported an error since the last good frame */
    lmc_status status;
    lmc_message *message;
} flac_reader;

static uint64_t stream_size(const flac_reader *r) {
    return sizeof r->head + (uint64_t)r->body_size;
}

static FLAC__StreamDecoderReadStatus on_read(const FLAC__StreamDecoder *decoder, FLAC__byte buffer[], size_t *bytes,
                                             void *user) {
    (void)decoder;
    flac_reader *r = user;
    size_t done = 0;
    while (done < *bytes && r->pos < stream_size(r)) {
        int in_head = r->pos < sizeof r->head;
        const uint8_t *from = in_head ? r->head + r->pos : r->body + (r->pos - sizeof r->head);
        size_t left = in_head ? sizeof r->head - (size_t)r->pos : (size_t)(stream_size(r) - r->pos);
        size_t n = LMC_MIN(left, *bytes - done);
        memcpy(buffer + done, from, n);
        done += n;
        r->pos += n;
    }
    *bytes = done;
    return done ? FLAC__STREAM_DECODER_READ_STATUS_CONTINUE : FLAC__STREAM_DECODER_READ_STATUS_END_OF_STREAM;
}

static FLAC__StreamDecoderSeekStatus on_seek(const FLAC__StreamDecoder *decoder, FLAC__uint64 offset, void *user) {
    (void)decoder;
    flac_reader *r = user;
    if (offset > stream_size(r))
        return FLAC__STREAM_DECODER_SEEK_STATUS_ERROR;
    r->pos = offset;
    return FLAC__STREAM_DECODER_SEEK_STATUS_OK;
}

static FLAC__StreamDecoderTellStatus on_tell(const FLAC__StreamDecoder *decoder, FLAC__uint64 *offset, void *user) {
    (void)decoder;
    *offset = ((flac_reader *)user)->pos;
    return FLAC__STREAM_DECODER_TELL_STATUS_OK;
}

static FLAC__StreamDecoderLengthStatus on_length(const FLAC__StreamDecoder *decoder, FLAC__uint64 *length,
                                                 void *user) {
    (void)decoder;
    *length = stream_size(user);
    return FLAC__STREAM_DECODER_LENGTH_STATUS_OK;
}

static FLAC__bool on_eof(const FLAC__StreamDecoder *decoder, void *user) {
    (void)decoder;
    flac_reader *r = user;
    return r->pos >= stream_size(r);
}

static void on_error(const FLAC__StreamDecoder *decoder, FLAC__StreamDecoderErrorStatus status, void *user) {
    (void)decoder;
    (void)status;
    ((flac_reader *)user)->damaged = 1;
}

static FLAC__StreamDecoderWriteStatus stop(flac_reader *r, lmc_status status, const char *what) {
    r->status = lmc_fail(r->message, status, "FLAC frame %zu: %s", r->frame_starts.size / sizeof(uint64_t), what);
    return FLAC__STREAM_DECODER_WRITE_STATUS_ABORT;
}

/* Makes room for `frames` sample frames per channel, moving the channels
 * apart. */
static int grow(flac_reader *r, uint64_t frames) {
    uint64_t channels = r->layout->info.channels;
    uint64_t capacity = LMC_MAX(frames, LMC_MIN(2 * r->capacity, r->cap / channels));
    int32_t *audio = realloc(r->audio, (size_t)(capacity * channels) * sizeof *audio);
    if (!audio)
        return 0;
    for (uint64_t c = channels - 1; c > 0; c--)
        memmove(audio + c * capacity, audio + c * r->capacity, (size_t)r->frames * sizeof *audio);
    r->audio = audio;
    r->capacity = capacity;
    return 1;
}

/* The frame number in the fixed-block-size frame header at data[0..size)
 * (libFLAC hands its clients sample numbers only), or UINT64_MAX if no
 * such header is there (a variable-block-size one, say). */
static uint64_t frame_number(const uint8_t *header, size_t size) {
    if (size < 5 || header[0] != 0xFF || header[1] != 0xF8)
        return UINT64_MAX;
    const uint8_t *p = header + 4;
    int extra = 0; /* UTF-8-like: 0xxxxxxx, 110xxxxx 10xxxxxx, ... */
    if (p[0] & 0x80)
        while (extra < 6 && (p[0] & (0x40 >> extra)))
            extra++;
    if ((size_t)extra > size - 5)
        return UINT64_MAX;
    uint64_t number = extra ? p[0] & (0x3f >> extra) : p[0];
    for (int i = 1; i <= extra; i++)
        number = number << 6 | (p[i] & 0x3f);
    return number;
}

/* The frame must continue the stream as libFLAC's encoder would write it. */
static const char *frame_mismatch(const flac_reader *r, const FLAC__FrameHeader *h) {
    const stream_info *info = &r->layout->info;
    uint64_t index = r->frame_starts.size / sizeof(uint64_t);
    if (r->damaged)
        return "damaged or foreign bytes before it";
    if (h->channels != info->channels || h->bits_per_sample != info->bits || h->sample_rate != info->sample_rate)
        return "channels, bits or sample rate differ from STREAMINFO";
    if (frame_number(r->body + r->frames_end, r->body_size - (size_t)r->frames_end) != index)
        return "variable block size or frames out of order";
    if (h->blocksize > info->max_block || (r->frames % info->max_block) != 0)
        return "a block size other than STREAMINFO's, before the last frame";
    return NULL;
}

static FLAC__StreamDecoderWriteStatus on_frame(const FLAC__StreamDecoder *decoder, const FLAC__Frame *frame,
                                               const FLAC__int32 *const buffer[], void *user) {
    flac_reader *r = user;
    const char *mismatch = frame_mismatch(r, &frame->header);
    if (mismatch)
        return stop(r, LMC_ERR_UNSUPPORTED, mismatch);
    uint64_t channels = r->layout->info.channels, frames = r->frames + frame->header.blocksize;
    if (frames * channels > r->cap)
        return stop(r, r->cap_is_memlimit ? LMC_ERR_MEMLIMIT : LMC_ERR_UNSUPPORTED,
                    r->cap_is_memlimit ? "more samples than the limit" : "more samples than its size allows");
    if (r->layout->info.total != 0 && frames > r->layout->info.total)
        return stop(r, LMC_ERR_CORRUPT, "more samples than STREAMINFO declares");
    uint64_t start = r->frames_end;
    FLAC__uint64 end;
    if (!FLAC__stream_decoder_get_decode_position(decoder, &end) || end < sizeof r->head)
        return stop(r, LMC_ERR_INTERNAL, "libFLAC does not tell the decode position");
    if (lmc_buf_append(&r->frame_starts, &start, sizeof start) != LMC_OK || (frames > r->capacity && !grow(r, frames)))
        return stop(r, LMC_ERR_NOMEM, "out of memory");
    for (uint64_t c = 0; c < channels; c++)
        memcpy(r->audio + c * r->capacity + r->frames, buffer[c], frame->header.blocksize * sizeof *r->audio);
    r->frames = frames;
    r->frames_end = end - sizeof r->head;
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

static lmc_status run_decoder(flac_reader *r) {
    FLAC__StreamDecoder *decoder = FLAC__stream_decoder_new();
    if (!decoder)
        return lmc_fail(r->message, LMC_ERR_NOMEM, "out of memory for the FLAC decoder");
    FLAC__stream_decoder_set_md5_checking(decoder, true);
    lmc_status s = LMC_OK;
    if (FLAC__stream_decoder_init_stream(decoder, on_read, on_seek, on_tell, on_length, on_eof, on_frame, NULL,
                                         on_error, r) != FLAC__STREAM_DECODER_INIT_STATUS_OK)
        s = lmc_fail(r->message, LMC_ERR_NOMEM, "the FLAC decoder does not start");
    int ran = s == LMC_OK && FLAC__stream_decoder_process_until_end_of_stream(decoder);
    FLAC__StreamDecoderState state = FLAC__stream_decoder_get_state(decoder);
    int md5_ok = FLAC__stream_decoder_finish(decoder);
    FLAC__stream_decoder_delete(decoder);
    if (s != LMC_OK || r->status != LMC_OK)
        return s != LMC_OK ? s : r->status;
    if (!ran || state != FLAC__STREAM_DECODER_END_OF_STREAM)
        return lmc_fail(r->message, state == FLAC__STREAM_DECODER_MEMORY_ALLOCATION_ERROR ? LMC_ERR_NOMEM
                                                                                          : LMC_ERR_CORRUPT,
                        "FLAC decoding stopped: %s", FLAC__StreamDecoderStateString[state]);
    if (r->layout->info.total != 0 && r->frames != r->layout->info.total)
        return lmc_fail(r->message, LMC_ERR_TRUNCATED, "FLAC STREAMINFO declares %llu samples, the frames hold %llu",
                        (unsigned long long)r->layout->info.total, (unsigned long long)r->frames);
    if (!md5_ok)
        return lmc_fail(r->message, LMC_ERR_CORRUPT, "FLAC samples do not match the STREAMINFO MD5");
    return LMC_OK;
}

/* The cap on samples: max_samples, and the archive's samples-per-byte bound. */
static void set_cap(flac_reader *r, size_t size, uint64_t max_samples) {
    uint64_t per_size = (uint64_t)size < UINT64_MAX / FLAC_MAX_SAMPLES_PER_BYTE - 1
                            ? FLAC_MAX_SAMPLES_PER_BYTE * ((uint64_t)size + 1)
                            : UINT64_MAX;
    max_samples = max_samples ? max_samples : LMC_MEDIA_MAX_SAMPLES;
    r->cap_is_memlimit = max_samples <= per_size;
    r->cap = LMC_MIN(max_samples, per_size);
}

static lmc_status start_reader(flac_reader *r, const flac_layout *l, const uint8_t *data, size_t size,
                               uint64_t max_samples, lmc_message *message) {
    memset(r, 0, sizeof *r);
    r->layout = l;
    r->message = message;
    lmc_buf_init(&r->frame_starts);
    memcpy(r->head, "fLaC", 4);
    r->head[4] = LAST_BLOCK | TYPE_STREAMINFO;
    put_be(r->head + 5, STREAMINFO_SIZE, 3);
    memcpy(r->head + 8, data + l->streaminfo, STREAMINFO_SIZE);
    r->body = data + l->frames;
    r->body_size = size - l->frames;
    set_cap(r, size, max_samples);
    uint64_t declared = l->info.total * l->info.channels;
    if (declared > r->cap)
        return lmc_fail(message, r->cap_is_memlimit ? LMC_ERR_MEMLIMIT : LMC_ERR_UNSUPPORTED,
                        "FLAC declares %llu samples, over the limit of %llu", (unsigned long long)declared,
                        (unsigned long long)r->cap);
    if (l->info.total != 0 && !grow(r, l->info.total))
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory for %llu samples", (unsigned long long)declared);
    return LMC_OK;
}

/* Moves the channels together (capacity -> frames apart) into the item. */
static lmc_status take_samples(flac_reader *r, lmc_media *item, lmc_message *message) {
    uint64_t channels = r->layout->info.channels, count = r->frames * channels;
    if (!r->audio && !(r->audio = malloc(1))) /* no samples: still an array */
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    for (uint64_t c = 1; c < channels; c++)
        memmove(r->audio + c * r->frames, r->audio + c * r->capacity, (size_t)r->frames * sizeof *r->audio);
    if (count > 0 && count < r->capacity * channels) {
        int32_t *fitted = realloc(r->audio, (size_t)count * sizeof *r->audio);
        if (fitted) /* else the larger array serves */
            r->audio = fitted;
    }
    item->audio = r->audio;
    item->count = (size_t)count;
    r->audio = NULL;
    return LMC_OK;
}

/* 1 if seek point p names a frame start and gives that frame's offset and
 * length (reader: the offsets of the frames decoded). */
static int seek_point_exact(const uint8_t *p, const uint64_t *frame_starts, uint64_t n_frames, uint64_t frames,
                            uint32_t block) {
    uint64_t sample = get_be64(p);
    if (sample == SEEK_PLACEHOLDER || sample % block != 0 || sample / block >= n_frames)
        return 0;
    uint64_t frame = sample / block;
    return get_be64(p + 8) == frame_starts[frame] && get_be16(p + 16) == frame_length(frame, frames, block);
}

/* The side data: the file without its frames, normalised (see the top). */
static lmc_status make_side(const flac_layout *l, const flac_reader *r, const uint8_t *data, size_t size,
                            lmc_media *item, lmc_message *message) {
    lmc_status s = lmc_media_make_side(item, NULL, 0, data, size, l->frames, (size_t)r->frames_end, message);
    if (s != LMC_OK)
        return s;
    memset(item->side + l->streaminfo + 4, 0, 6); /* minimum and maximum frame size */
    const uint64_t *starts = (const uint64_t *)r->frame_starts.data;
    uint64_t n_frames = r->frame_starts.size / sizeof *starts;
    for (size_t i = 0; i < l->seek_points; i++) {
        uint8_t *point = item->side + l->seektable + i * SEEK_POINT_SIZE;
        if (seek_point_exact(point, starts, n_frames, r->frames, l->info.max_block))
            memset(point + 8, 0, SEEK_POINT_SIZE - 8);
    }
    return LMC_OK;
}

lmc_status lmc_flac_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                          lmc_message *message) {
    memset(item, 0, sizeof *item);
    flac_layout l;
    flac_reader r;
    lmc_status s = parse_layout(data, size, &l, message);
    if (s != LMC_OK)
        return s;
    s = start_reader(&r, &l, data, size, max_samples, message);
    if (s == LMC_OK)
        s = run_decoder(&r);
    if (s == LMC_OK) {
        describe(&l.info, r.frames, &item->desc);
        s = take_samples(&r, item, message);
    }
    if (s == LMC_OK)
        s = make_side(&l, &r, data, size, item, message);
    free(r.audio);
    lmc_buf_free(&r.frame_starts);
    if (s != LMC_OK)
        lmc_media_free(item);
    return s;
}

/* ---- Writing: libFLAC encodes the samples into frames ---- */

typedef struct {
    lmc_buf frames;        /* the encoded frames */
    lmc_buf frame_starts;  /* uint64 per frame: its offset in `frames` */
    uint32_t min_frame, max_frame;
    uint8_t md5[16];       /* of the samples written */
} flac_writer;

/* The encoder's final STREAMINFO: only its MD5 is taken. */
static void on_stream_info(const FLAC__StreamEncoder *encoder, const FLAC__StreamMetadata *metadata, void *user) {
    (void)encoder;
    if (metadata->type == FLAC__METADATA_TYPE_STREAMINFO)
        memcpy(((flac_writer *)user)->md5, metadata->data.stream_info.md5sum, 16);
}

static FLAC__StreamEncoderWriteStatus on_encoded(const FLAC__StreamEncoder *encoder, const FLAC__byte buffer[],
                                                 size_t bytes, uint32_t samples, uint32_t current_frame,
                                                 void *user) {
    (void)encoder;
    flac_writer *w = user;
    if (samples == 0) /* metadata: the writer lays out its own */
        return FLAC__STREAM_ENCODER_WRITE_STATUS_OK;
    uint64_t start = w->frames.size;
    if (current_frame != w->frame_starts.size / sizeof start ||
        lmc_buf_append(&w->frame_starts, &start, sizeof start) != LMC_OK ||
        lmc_buf_append(&w->frames, buffer, bytes) != LMC_OK)
        return FLAC__STREAM_ENCODER_WRITE_STATUS_FATAL_ERROR;
    uint32_t length = (uint32_t)LMC_MIN(bytes, (size_t)0xffffff);
    w->min_frame = start == 0 ? length : LMC_MIN(w->min_frame, length);
    w->max_frame = LMC_MAX(w->max_frame, length);
    return FLAC__STREAM_ENCODER_WRITE_STATUS_OK;
}

static int configure_encoder(FLAC__StreamEncoder *encoder, const stream_info *info, uint64_t frames) {
    return FLAC__stream_encoder_set_verify(encoder, false) &&
           FLAC__stream_encoder_set_streamable_subset(encoder, false) &&
           FLAC__stream_encoder_set_channels(encoder, info->channels) &&
           FLAC__stream_encoder_set_bits_per_sample(encoder, info->bits) &&
           FLAC__stream_encoder_set_sample_rate(encoder, info->sample_rate) &&
           FLAC__stream_encoder_set_compression_level(encoder, FLAC_COMPRESSION_LEVEL) &&
           FLAC__stream_encoder_set_blocksize(encoder, info->max_block) &&
           FLAC__stream_encoder_set_total_samples_estimate(encoder, frames);
}

/* Feeds the channel-major samples to the encoder, a block at a time. */
static int feed_encoder(FLAC__StreamEncoder *encoder, const lmc_media *item, uint32_t block) {
    const FLAC__int32 *channels[8];
    uint64_t frames = item->desc.frames;
    for (uint64_t t = 0; t < frames; t += block) {
        uint32_t n = frame_length(t / block, frames, block);
        for (uint32_t c = 0; c < item->desc.channels; c++)
            channels[c] = item->audio + c * frames + t;
        if (!FLAC__stream_encoder_process(encoder, channels, n))
            return 0;
    }
    return 1;
}

static lmc_status encode_frames(const lmc_media *item, const stream_info *info, flac_writer *w,
                                lmc_message *message) {
    FLAC__StreamEncoder *encoder = FLAC__stream_encoder_new();
    if (!encoder)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory for the FLAC encoder");
    lmc_status s = LMC_OK;
    if (!configure_encoder(encoder, info, item->desc.frames) ||
        FLAC__stream_encoder_init_stream(encoder, on_encoded, NULL, NULL, on_stream_info, w) !=
            FLAC__STREAM_ENCODER_INIT_STATUS_OK)
        s = lmc_fail(message, LMC_ERR_PARAM, "libFLAC cannot encode %u channels of %u bits at %u Hz in blocks of %u",
                     info->channels, info->bits, info->sample_rate, info->max_block);
    int encoded = s == LMC_OK && feed_encoder(encoder, item, info->max_block);
    FLAC__StreamEncoderState state = FLAC__stream_encoder_get_state(encoder);
    encoded = FLAC__stream_encoder_finish(encoder) && encoded;
    FLAC__stream_encoder_delete(encoder);
    if (s == LMC_OK && !encoded)
        s = lmc_fail(message, state == FLAC__STREAM_ENCODER_MEMORY_ALLOCATION_ERROR ? LMC_ERR_NOMEM : LMC_ERR_INTERNAL,
                     "FLAC encoding failed: %s", FLAC__StreamEncoderStateString[state]);
    return s;
}

static lmc_status check_samples(const lmc_media *item, lmc_message *message) {
    uint32_t bits = item->desc.bits;
    int64_t low = -((int64_t)1 << (bits - 1)), high = ((int64_t)1 << (bits - 1)) - 1;
    for (size_t i = 0; i < item->count; i++)
        if (item->audio[i] < low || item->audio[i] > high)
            return lmc_fail(message, LMC_ERR_PARAM, "FLAC sample %d does not fit %u bits", (int)item->audio[i], bits);
    return LMC_OK;
}

/* Fills in the fields the side data left zero, from the new frames, and
 * a set MD5 from the samples written: the same as the original's when they
 * are the parsed samples, the right one when they are not (lossy coding). */
static void fill_in(uint8_t *file, const flac_layout *l, const flac_writer *w, uint64_t frames) {
    static const uint8_t zero[16];
    put_be(file + l->streaminfo + 4, w->min_frame, 3);
    put_be(file + l->streaminfo + 7, w->max_frame, 3);
    if (memcmp(file + l->streaminfo + 18, zero, 16) != 0)
        memcpy(file + l->streaminfo + 18, w->md5, 16);
    const uint64_t *starts = (const uint64_t *)w->frame_starts.data;
    uint64_t n_frames = w->frame_starts.size / sizeof *starts;
    uint32_t block = l->info.max_block;
    for (size_t i = 0; i < l->seek_points; i++) {
        uint8_t *point = file + l->seektable + i * SEEK_POINT_SIZE;
        uint64_t sample = get_be64(point);
        if (sample == SEEK_PLACEHOLDER || sample % block != 0 || sample / block >= n_frames ||
            memcmp(point + 8, zero, SEEK_POINT_SIZE - 8) != 0)
            continue;
        put_be(point + 8, starts[sample / block], 8);
        put_be(point + 16, frame_length(sample / block, frames, block), 2);
    }
}

lmc_status lmc_flac_write(const lmc_media *item, lmc_buf *out, lmc_message *message) {
    flac_layout l;
    lmc_media_desc desc;
    if (parse_layout(item->side, item->side_size, &l, message) != LMC_OK)
        return lmc_fail(message, LMC_ERR_PARAM, "FLAC side data is malformed");
    describe(&l.info, item->desc.frames, &desc);
    if (!lmc_media_desc_equal(&desc, &item->desc) || !item->audio ||
        item->count != desc.frames * desc.channels || (l.info.total != 0 && l.info.total != desc.frames) ||
        get_be24(item->side + l.streaminfo + 4) != 0 || get_be24(item->side + l.streaminfo + 7) != 0)
        return lmc_fail(message, LMC_ERR_PARAM, "FLAC item does not match its side data");
    lmc_status s = check_samples(item, message);
    if (s != LMC_OK)
        return s;
    flac_writer w = {0};
    lmc_buf_init(&w.frames);
    lmc_buf_init(&w.frame_starts);
    s = encode_frames(item, &l.info, &w, message);
    size_t base = out->size;
    if (s == LMC_OK && (lmc_buf_append(out, item->side, l.frames) != LMC_OK ||
                        lmc_buf_append(out, w.frames.data, w.frames.size) != LMC_OK ||
                        lmc_buf_append(out, item->side + l.frames, item->side_size - l.frames) != LMC_OK))
        s = lmc_fail(message, LMC_ERR_NOMEM, "out of memory writing a FLAC file");
    if (s == LMC_OK)
        fill_in(out->data + base, &l, &w, desc.frames);
    else
        out->size = base;
    lmc_buf_free(&w.frames);
    lmc_buf_free(&w.frame_starts);
    return s;
}
