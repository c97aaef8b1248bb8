/*
 * The FLAC reader and writer (src/format/flac_io.c): FLAC files made here
 * with libFLAC's encoder (1 to 8 channels, 4 to 32 bits, several rates and
 * block sizes, every kind of metadata block, an ID3v2 tag before "fLaC"
 * and bytes after the frames) are parsed, written back and checked against
 * an independent libFLAC decode: the same samples, the same metadata blocks
 * in the same order, a seek table that points at the new frames. Damaged
 * input (every truncation, byte flips, impossible declared sizes, streams
 * the writer cannot reproduce) is refused with a message or round-trips;
 * samples other than the parsed ones are written with their own MD5.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <FLAC/metadata.h>
#include <FLAC/stream_decoder.h>
#include <FLAC/stream_encoder.h>

#include "format/format.h"
#include "format/media.h"
#include "test_util.h"

#define META_VORBIS 1
#define META_PICTURE 2
#define META_APPLICATION 4
#define META_PADDING 8
#define META_SEEKTABLE 16
#define META_CUESHEET 32
#define META_ALL 63

typedef struct {
    uint32_t channels, bits, rate, block;
    uint64_t frames;
    unsigned metadata; /* META_* */
    uint64_t seed;
} flac_spec;

/* ---- Making FLAC files with libFLAC ---- */

/* Channel-major test signal: a triangle wave per channel, plus noise. */
static int32_t *make_signal(const flac_spec *spec) {
    int32_t *x = malloc((size_t)(spec->channels * spec->frames + 1) * sizeof *x);
    assert_non_null(x);
    int64_t max = ((int64_t)1 << (spec->bits - 1)) - 1, min = -max - 1;
    uint64_t rng = spec->seed | 1;
    for (uint64_t c = 0; c < spec->channels; c++) {
        uint64_t period = 40 + 13 * c;
        for (uint64_t t = 0; t < spec->frames; t++) {
            int64_t phase = (int64_t)((t * 4096 / period) % 4096);
            int64_t tri = phase < 2048 ? phase - 1024 : 3072 - phase; /* -1024..1024 */
            int64_t v = tri * max / 1100 + (int64_t)(test_rng(&rng) % 33) - 16;
            x[c * spec->frames + t] = (int32_t)(v < min ? min : v > max ? max : v);
        }
    }
    return x;
}

typedef struct {
    lmc_buf buf;
    size_t pos;
} memory_file;

static FLAC__StreamEncoderWriteStatus sink_write(const FLAC__StreamEncoder *e, const FLAC__byte buffer[], size_t bytes,
                                                 uint32_t samples, uint32_t frame, void *user) {
    (void)e, (void)samples, (void)frame;
    memory_file *f = user;
    if (f->pos + bytes > f->buf.size) {
        assert_int_equal(lmc_buf_reserve(&f->buf, f->pos + bytes - f->buf.size), LMC_OK);
        f->buf.size = f->pos + bytes;
    }
    memcpy(f->buf.data + f->pos, buffer, bytes);
    f->pos += bytes;
    return FLAC__STREAM_ENCODER_WRITE_STATUS_OK;
}

static FLAC__StreamEncoderSeekStatus sink_seek(const FLAC__StreamEncoder *e, FLAC__uint64 offset, void *user) {
    (void)e;
    ((memory_file *)user)->pos = (size_t)offset;
    return FLAC__STREAM_ENCODER_SEEK_STATUS_OK;
}

static FLAC__StreamEncoderTellStatus sink_tell(const FLAC__StreamEncoder *e, FLAC__uint64 *offset, void *user) {
    (void)e;
    *offset = ((memory_file *)user)->pos;
    return FLAC__STREAM_ENCODER_TELL_STATUS_OK;
}

static FLAC__StreamMetadata *vorbis_comment(void) {
    FLAC__StreamMetadata *m = FLAC__metadata_object_new(FLAC__METADATA_TYPE_VORBIS_COMMENT);
    FLAC__StreamMetadata_VorbisComment_Entry entry;
    assert_true(FLAC__metadata_object_vorbiscomment_entry_from_name_value_pair(&entry, "TITLE", "Test tone"));
    assert_true(FLAC__metadata_object_vorbiscomment_append_comment(m, entry, false));
    assert_true(FLAC__metadata_object_vorbiscomment_entry_from_name_value_pair(&entry, "ARTIST", "lmc"));
    assert_true(FLAC__metadata_object_vorbiscomment_append_comment(m, entry, false));
    return m;
}

static FLAC__StreamMetadata *picture(void) {
    FLAC__StreamMetadata *m = FLAC__metadata_object_new(FLAC__METADATA_TYPE_PICTURE);
    FLAC__byte data[300];
    test_fill_random(data, sizeof data, 5);
    m->data.picture.type = FLAC__STREAM_METADATA_PICTURE_TYPE_FRONT_COVER;
    m->data.picture.width = m->data.picture.height = 10;
    m->data.picture.depth = 24;
    assert_true(FLAC__metadata_object_picture_set_mime_type(m, "image/x-test", true));
    assert_true(FLAC__metadata_object_picture_set_description(m, (FLAC__byte *)"cover", true));
    assert_true(FLAC__metadata_object_picture_set_data(m, data, sizeof data, true));
    return m;
}

static FLAC__StreamMetadata *application(void) {
    FLAC__StreamMetadata *m = FLAC__metadata_object_new(FLAC__METADATA_TYPE_APPLICATION);
    memcpy(m->data.application.id, "lmcT", 4);
    assert_true(FLAC__metadata_object_application_set_data(m, (FLAC__byte *)"private application data", 24, true));
    return m;
}

static FLAC__StreamMetadata *padding(void) {
    FLAC__StreamMetadata *m = FLAC__metadata_object_new(FLAC__METADATA_TYPE_PADDING);
    m->length = 123;
    return m;
}

/* Points every block/2... samples (so some fall inside frames and are
 * moved to frame starts by libFLAC), plus two placeholders. */
static FLAC__StreamMetadata *seektable(const flac_spec *spec) {
    FLAC__StreamMetadata *m = FLAC__metadata_object_new(FLAC__METADATA_TYPE_SEEKTABLE);
    assert_true(FLAC__metadata_object_seektable_template_append_spaced_points_by_samples(
        m, spec->block * 2 + spec->block / 2, spec->frames));
    assert_true(FLAC__metadata_object_seektable_template_append_placeholders(m, 2));
    assert_true(FLAC__metadata_object_seektable_template_sort(m, true));
    return m;
}

/* A non-CD cue sheet: track 1 from sample 0, the lead-out at the end. */
static FLAC__StreamMetadata *cuesheet(const flac_spec *spec) {
    FLAC__StreamMetadata *m = FLAC__metadata_object_new(FLAC__METADATA_TYPE_CUESHEET);
    m->data.cue_sheet.is_cd = false;
    assert_true(FLAC__metadata_object_cuesheet_insert_blank_track(m, 0));
    assert_true(FLAC__metadata_object_cuesheet_insert_blank_track(m, 1));
    m->data.cue_sheet.tracks[0].number = 1;
    assert_true(FLAC__metadata_object_cuesheet_track_insert_blank_index(m, 0, 0));
    m->data.cue_sheet.tracks[0].indices[0].number = 1;
    m->data.cue_sheet.tracks[1].number = 255;
    m->data.cue_sheet.tracks[1].offset = spec->frames;
    const char *why = NULL;
    assert_true(FLAC__metadata_object_cuesheet_is_legal(m, false, &why));
    return m;
}

static size_t make_metadata(const flac_spec *spec, FLAC__StreamMetadata **blocks) {
    size_t n = 0;
    if (spec->metadata & META_SEEKTABLE)
        blocks[n++] = seektable(spec);
    if (spec->metadata & META_VORBIS)
        blocks[n++] = vorbis_comment();
    if (spec->metadata & META_APPLICATION)
        blocks[n++] = application();
    if (spec->metadata & META_CUESHEET)
        blocks[n++] = cuesheet(spec);
    if (spec->metadata & META_PICTURE)
        blocks[n++] = picture();
    if (spec->metadata & META_PADDING)
        blocks[n++] = padding();
    return n;
}

/* Encodes `samples` (channel-major, spec->frames per channel) as a FLAC file
 * into out (initialised here). */
static void encode_flac(const flac_spec *spec, const int32_t *samples, lmc_buf *out) {
    FLAC__StreamEncoder *e = FLAC__stream_encoder_new();
    assert_non_null(e);
    FLAC__StreamMetadata *blocks[8];
    size_t n_blocks = make_metadata(spec, blocks);
    assert_true(FLAC__stream_encoder_set_streamable_subset(e, false));
    assert_true(FLAC__stream_encoder_set_channels(e, spec->channels));
    assert_true(FLAC__stream_encoder_set_bits_per_sample(e, spec->bits));
    assert_true(FLAC__stream_encoder_set_sample_rate(e, spec->rate));
    assert_true(FLAC__stream_encoder_set_compression_level(e, 5));
    assert_true(FLAC__stream_encoder_set_blocksize(e, spec->block));
    assert_true(FLAC__stream_encoder_set_total_samples_estimate(e, spec->frames));
    if (n_blocks)
        assert_true(FLAC__stream_encoder_set_metadata(e, blocks, (uint32_t)n_blocks));
    memory_file file = {{0}, 0};
    lmc_buf_init(&file.buf);
    assert_int_equal(FLAC__stream_encoder_init_stream(e, sink_write, sink_seek, sink_tell, NULL, &file),
                     FLAC__STREAM_ENCODER_INIT_STATUS_OK);
    const FLAC__int32 *channels[8];
    for (uint32_t c = 0; c < spec->channels; c++)
        channels[c] = samples + c * spec->frames;
    if (spec->frames)
        assert_true(FLAC__stream_encoder_process(e, channels, (uint32_t)spec->frames));
    assert_true(FLAC__stream_encoder_finish(e));
    FLAC__stream_encoder_delete(e);
    for (size_t i = 0; i < n_blocks; i++)
        FLAC__metadata_object_delete(blocks[i]);
    *out = file.buf;
}

/* ---- An independent look at a FLAC file ---- */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    const int32_t *expected; /* channel-major */
    uint64_t frames, decoded;
    int errors, mismatches;
} check_decode;

static FLAC__StreamDecoderReadStatus src_read(const FLAC__StreamDecoder *d, FLAC__byte buffer[], size_t *bytes,
                                              void *user) {
    (void)d;
    check_decode *s = user;
    size_t n = LMC_MIN(*bytes, s->size - s->pos);
    memcpy(buffer, s->data + s->pos, n);
    s->pos += n;
    *bytes = n;
    return n ? FLAC__STREAM_DECODER_READ_STATUS_CONTINUE : FLAC__STREAM_DECODER_READ_STATUS_END_OF_STREAM;
}

static FLAC__StreamDecoderWriteStatus src_frame(const FLAC__StreamDecoder *d, const FLAC__Frame *frame,
                                                const FLAC__int32 *const buffer[], void *user) {
    (void)d;
    check_decode *s = user;
    for (uint32_t c = 0; c < frame->header.channels; c++)
        for (uint32_t i = 0; i < frame->header.blocksize; i++)
            if (s->decoded + i >= s->frames || buffer[c][i] != s->expected[c * s->frames + s->decoded + i])
                s->mismatches++;
    s->decoded += frame->header.blocksize;
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

static void src_error(const FLAC__StreamDecoder *d, FLAC__StreamDecoderErrorStatus status, void *user) {
    (void)d, (void)status;
    ((check_decode *)user)->errors++;
}

/* libFLAC decodes file to exactly `expected`, with a matching MD5. */
static void assert_decodes_to(const uint8_t *file, size_t size, const int32_t *expected, uint64_t frames) {
    check_decode s = {file, size, 0, expected, frames, 0, 0, 0};
    FLAC__StreamDecoder *d = FLAC__stream_decoder_new();
    assert_non_null(d);
    FLAC__stream_decoder_set_md5_checking(d, true);
    assert_int_equal(
        FLAC__stream_decoder_init_stream(d, src_read, NULL, NULL, NULL, NULL, src_frame, NULL, src_error, &s),
        FLAC__STREAM_DECODER_INIT_STATUS_OK);
    assert_true(FLAC__stream_decoder_process_until_end_of_stream(d));
    assert_true(FLAC__stream_decoder_finish(d)); /* the MD5 matches */
    FLAC__stream_decoder_delete(d);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.mismatches, 0);
    assert_int_equal(s.decoded, frames);
}

typedef struct {
    size_t magic, frames;      /* offsets of "fLaC" and of the first frame */
    size_t n;                  /* metadata blocks */
    size_t offset[64], length[64];
    uint8_t type[64];
} block_list;

static size_t be24(const uint8_t *p) {
    return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

static uint64_t be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void list_blocks(const uint8_t *file, size_t size, block_list *list) {
    memset(list, 0, sizeof *list);
    list->magic = lmc_flac_signature_offset(file, size);
    assert_true(list->magic != SIZE_MAX);
    size_t pos = list->magic + 4;
    for (int last = 0; !last; list->n++) {
        assert_true(list->n < 64 && pos + 4 <= size);
        last = file[pos] & 0x80;
        list->type[list->n] = file[pos] & 0x7f;
        list->offset[list->n] = pos + 4;
        list->length[list->n] = be24(file + pos + 1);
        pos += 4 + list->length[list->n];
    }
    list->frames = pos;
}

static size_t find_block(const block_list *list, uint8_t type) {
    for (size_t i = 0; i < list->n; i++)
        if (list->type[i] == type)
            return i;
    fail_msg("no metadata block of type %u", type);
    return 0;
}

/* `written` holds a's metadata blocks in a's order, byte for byte but for
 * STREAMINFO's frame sizes and the seek points' offsets; every seek point
 * that is not a placeholder names a frame start in `written`, with its
 * sample count. */
static void assert_same_metadata(const uint8_t *a, size_t a_size, const uint8_t *written, size_t size,
                                 uint32_t block, uint64_t frames) {
    block_list la, lb;
    list_blocks(a, a_size, &la);
    list_blocks(written, size, &lb);
    assert_int_equal(la.magic, lb.magic);
    assert_memory_equal(a, written, la.magic + 4);
    assert_int_equal(la.n, lb.n);
    for (size_t i = 0; i < la.n; i++) {
        assert_int_equal(la.type[i], lb.type[i]);
        assert_int_equal(la.length[i], lb.length[i]);
        const uint8_t *pa = a + la.offset[i], *pb = written + lb.offset[i];
        if (la.type[i] == 0) {
            assert_memory_equal(pa, pb, 4);
            assert_memory_equal(pa + 10, pb + 10, 24);
        } else if (la.type[i] == 3) {
            for (size_t p = 0; p < la.length[i]; p += 18) {
                uint64_t sample = be64(pa + p);
                assert_int_equal(sample, be64(pb + p));
                if (sample == UINT64_MAX)
                    continue;
                uint64_t offset = be64(pb + p + 8);
                assert_true(lb.frames + offset + 2 <= size);
                assert_int_equal(written[lb.frames + offset], 0xFF); /* a frame's sync code */
                assert_int_equal(written[lb.frames + offset + 1], 0xF8);
                assert_int_equal(sample % block, 0);
                assert_int_equal((size_t)pb[p + 16] << 8 | pb[p + 17], LMC_MIN((uint64_t)block, frames - sample));
            }
        } else {
            assert_memory_equal(pa, pb, la.length[i]);
        }
    }
}

/* ---- Round trips ---- */

static lmc_status parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item) {
    lmc_message message = {{0}};
    lmc_status s = lmc_media_parse(data, size, max_samples, item, &message);
    if (s != LMC_OK) {
        assert_true(message.text[0] != '\0');
        assert_null(item->audio);
        assert_null(item->side);
    }
    return s;
}

/* Parses file, writes the item and re-parses the result: the same item;
 * returns the written file (caller frees) in *written. */
static void roundtrip(const uint8_t *file, size_t size, lmc_media *item, lmc_buf *written) {
    lmc_message message = {{0}};
    lmc_status s = lmc_media_parse(file, size, 0, item, &message);
    if (s != LMC_OK)
        print_message("parse: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    lmc_buf_init(written);
    s = lmc_media_write(item, written, &message);
    if (s != LMC_OK)
        print_message("write: %s\n", message.text);
    assert_int_equal(s, LMC_OK);
    lmc_media again;
    assert_int_equal(lmc_media_parse(written->data, written->size, 0, &again, &message), LMC_OK);
    assert_true(lmc_media_desc_equal(&item->desc, &again.desc));
    assert_int_equal(item->count, again.count);
    assert_memory_equal(item->audio, again.audio, item->count * sizeof *item->audio);
    assert_int_equal(item->side_size, again.side_size);
    assert_memory_equal(item->side, again.side, item->side_size);
    lmc_media_free(&again);
}

static void check_spec(const flac_spec *spec) {
    int32_t *signal = make_signal(spec);
    lmc_buf file, written;
    encode_flac(spec, signal, &file);
    lmc_media item;
    roundtrip(file.data, file.size, &item, &written);
    assert_int_equal(item.desc.kind, LMC_KIND_AUDIO);
    assert_int_equal(item.desc.format, LMC_MEDIA_FLAC);
    assert_int_equal(item.desc.channels, spec->channels);
    assert_int_equal(item.desc.bits, spec->bits);
    assert_int_equal(item.desc.valid_bits, spec->bits);
    assert_int_equal(item.desc.sample_rate, spec->rate);
    assert_int_equal(item.desc.frames, spec->frames);
    assert_memory_equal(item.audio, signal, spec->channels * spec->frames * sizeof *signal);
    assert_true(item.side_size <= file.size);
    assert_decodes_to(written.data, written.size, signal, spec->frames);
    assert_same_metadata(file.data, file.size, written.data, written.size, spec->block, spec->frames);
    assert_int_equal(lmc_format_detect(file.data, LMC_MIN(file.size, 64)), LMC_KIND_AUDIO);
    lmc_media_free(&item);
    lmc_buf_free(&written);
    lmc_buf_free(&file);
    free(signal);
}

static void test_flac_roundtrips(void **state) {
    (void)state;
    static const flac_spec specs[] = {
        {1, 16, 44100, 4096, 10000, META_ALL, 1},
        {2, 16, 44100, 4096, 20000, META_ALL, 2},
        {1, 8, 8000, 1152, 5000, META_VORBIS | META_SEEKTABLE, 3},
        {2, 24, 96000, 4608, 12000, META_PICTURE | META_PADDING, 4},
        {6, 24, 48000, 2048, 5000, META_SEEKTABLE | META_APPLICATION, 5},
        {8, 16, 22050, 576, 3000, META_ALL, 6},
        {3, 12, 32000, 1000, 4321, META_CUESHEET, 7},
        {1, 4, 11025, 16, 700, META_SEEKTABLE, 8},
        {2, 20, 192000, 8192, 20000, META_VORBIS, 9},
        {2, 32, 48000, 4096, 9000, META_SEEKTABLE | META_VORBIS, 10},
        {1, 16, 655350, 65535, 70000, 0, 11},  /* libFLAC's largest block, a high rate */
        {1, 16, 44100, 4096, 4096, META_SEEKTABLE, 12}, /* exactly one full frame */
        {2, 16, 44100, 4096, 1, 0, 13},        /* one sample */
        {2, 16, 44100, 4096, 0, META_VORBIS, 14}, /* no samples at all */
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        print_message("%u channels, %u bits, %u Hz, blocks of %u, %llu frames\n", specs[i].channels, specs[i].bits,
                      specs[i].rate, specs[i].block, (unsigned long long)specs[i].frames);
        check_spec(&specs[i]);
    }
}

/* An ID3v2 tag before "fLaC" and an ID3v1 tag after the frames stay. */
static void test_flac_id3_and_trailing(void **state) {
    (void)state;
    const flac_spec spec = {2, 16, 44100, 1024, 5000, META_VORBIS | META_SEEKTABLE, 21};
    int32_t *signal = make_signal(&spec);
    lmc_buf flac, file, written;
    encode_flac(&spec, signal, &flac);
    lmc_buf_init(&file);
    static const uint8_t id3[10] = {'I', 'D', '3', 4, 0, 0, 0, 0, 0, 20};
    uint8_t id3_body[20] = "TIT2 a fake frame...", id3v1[128] = "TAG";
    assert_int_equal(lmc_buf_append(&file, id3, sizeof id3), LMC_OK);
    assert_int_equal(lmc_buf_append(&file, id3_body, sizeof id3_body), LMC_OK);
    assert_int_equal(lmc_buf_append(&file, flac.data, flac.size), LMC_OK);
    memset(id3v1 + 3, ' ', sizeof id3v1 - 3);
    assert_int_equal(lmc_buf_append(&file, id3v1, sizeof id3v1), LMC_OK);
    assert_int_equal(lmc_format_detect(file.data, file.size), LMC_KIND_AUDIO);
    lmc_media item;
    roundtrip(file.data, file.size, &item, &written);
    assert_int_equal(item.desc.frames, spec.frames);
    assert_memory_equal(written.data, file.data, 30);
    assert_true(written.size > sizeof id3v1);
    assert_memory_equal(written.data + written.size - sizeof id3v1, id3v1, sizeof id3v1);
    assert_same_metadata(file.data, file.size, written.data, written.size, spec.block, spec.frames);
    assert_decodes_to(written.data + 30, written.size - 30 - sizeof id3v1, signal, spec.frames);
    lmc_media_free(&item);
    lmc_buf_free(&written);
    lmc_buf_free(&file);
    lmc_buf_free(&flac);
    free(signal);
}

/* A seek point that does not name its frame (damaged offset) is kept as
 * it was, and the file still round-trips. */
static void test_flac_odd_seek_points(void **state) {
    (void)state;
    const flac_spec spec = {1, 16, 44100, 1024, 8000, META_SEEKTABLE, 31};
    int32_t *signal = make_signal(&spec);
    lmc_buf file, written;
    encode_flac(&spec, signal, &file);
    block_list list;
    list_blocks(file.data, file.size, &list);
    size_t table = find_block(&list, 3);
    uint8_t *second = file.data + list.offset[table] + 18;
    assert_true(be64(second) != UINT64_MAX);
    second[15] ^= 0x40; /* its offset is now wrong */
    uint8_t kept[18];
    memcpy(kept, second, 18);
    lmc_media item;
    roundtrip(file.data, file.size, &item, &written);
    block_list out;
    list_blocks(written.data, written.size, &out);
    assert_memory_equal(written.data + out.offset[table] + 18, kept, 18);
    assert_decodes_to(written.data, written.size, signal, spec.frames);
    lmc_media_free(&item);
    lmc_buf_free(&written);
    lmc_buf_free(&file);
    free(signal);
}

/* ---- Damaged and unusual input ---- */

/* A parse either fails cleanly or gives an item that round-trips. */
static void parse_or_roundtrip(const uint8_t *data, size_t size) {
    lmc_media item;
    if (parse(data, size, 0, &item) != LMC_OK)
        return;
    lmc_buf written;
    lmc_media_free(&item);
    roundtrip(data, size, &item, &written);
    lmc_media_free(&item);
    lmc_buf_free(&written);
}

static void small_flac(lmc_buf *file) {
    const flac_spec spec = {2, 16, 8000, 64, 300, META_ALL, 41};
    int32_t *signal = make_signal(&spec);
    encode_flac(&spec, signal, file);
    free(signal);
}

static void set_total(uint8_t *streaminfo, uint64_t total) {
    streaminfo[13] = (uint8_t)((streaminfo[13] & 0xf0) | (total >> 32));
    for (int i = 0; i < 4; i++)
        streaminfo[14 + i] = (uint8_t)(total >> (24 - 8 * i));
}

static void test_flac_truncated(void **state) {
    (void)state;
    lmc_buf file;
    small_flac(&file);
    block_list list;
    list_blocks(file.data, file.size, &list);
    int parsed = 0;
    for (size_t n = 0; n < file.size; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
        assert_non_null(copy);
        memcpy(copy, file.data, n);
        lmc_media item;
        lmc_status s = parse(copy, n, 0, &item);
        /* STREAMINFO declares the sample count, so no prefix may pass. */
        assert_int_not_equal(s, LMC_OK);
        if (n < list.frames)
            assert_int_equal(s, n < list.magic + 4 ? LMC_ERR_UNSUPPORTED : LMC_ERR_TRUNCATED);
        free(copy);
    }
    /* With the total declared unknown (0), a cut stream is a shorter one:
     * what is left of the cut frame stays as trailing bytes. */
    set_total(file.data + list.offset[0], 0);
    memset(file.data + list.offset[0] + 18, 0, 16); /* and no MD5 */
    for (size_t n = list.frames; n <= file.size; n++) {
        uint8_t *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, file.data, n);
        lmc_media item;
        if (parse(copy, n, 0, &item) == LMC_OK)
            parsed++;
        lmc_media_free(&item);
        parse_or_roundtrip(copy, n);
        free(copy);
    }
    assert_true(parsed > 0);
    lmc_buf_free(&file);
}

static void test_flac_byte_flips(void **state) {
    (void)state;
    lmc_buf file;
    small_flac(&file);
    uint8_t *copy = malloc(file.size);
    assert_non_null(copy);
    for (size_t i = 0; i < file.size; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(copy, file.data, file.size);
            copy[i] ^= (uint8_t)(1u << ((bit + i) % 8));
            parse_or_roundtrip(copy, file.size);
        }
    }
    free(copy);
    lmc_buf_free(&file);
}

/* Sizes no small file may claim are refused before anything is allocated;
 * constant frames that decode past the bounds are refused while decoding. */
static void test_flac_huge_sizes(void **state) {
    (void)state;
    lmc_buf file;
    small_flac(&file);
    block_list list;
    list_blocks(file.data, file.size, &list);
    lmc_media item;
    set_total(file.data + list.offset[0], ((uint64_t)1 << 36) - 1);
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_UNSUPPORTED); /* per input byte */
    assert_int_equal(parse(file.data, file.size, 1000, &item), LMC_ERR_MEMLIMIT);
    lmc_buf_free(&file);

    /* 8 channels of silence in blocks of 65535: about 20,000 samples per byte. */
    const flac_spec spec = {8, 16, 48000, 65535, 65535 * 12, 0, 0};
    int32_t *silence = calloc(spec.channels * spec.frames, sizeof *silence);
    assert_non_null(silence);
    encode_flac(&spec, silence, &file);
    free(silence);
    print_message("%llu samples in %zu bytes\n", (unsigned long long)(spec.channels * spec.frames), file.size);
    assert_true(spec.channels * spec.frames / 8320 > file.size + 1);
    list_blocks(file.data, file.size, &list);
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_UNSUPPORTED);
    set_total(file.data + list.offset[0], 0); /* not declared: found while decoding */
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_UNSUPPORTED);
    assert_int_equal(parse(file.data, file.size, 65535 * 8, &item), LMC_ERR_MEMLIMIT);
    lmc_buf_free(&file);
}

/* Streams the writer cannot reproduce, and plain damage. */
static void test_flac_refusals(void **state) {
    (void)state;
    const flac_spec spec = {1, 16, 44100, 1024, 5000, META_SEEKTABLE | META_VORBIS, 51};
    int32_t *signal = make_signal(&spec);
    lmc_buf file;
    encode_flac(&spec, signal, &file);
    free(signal);
    block_list list;
    list_blocks(file.data, file.size, &list);
    uint8_t *streaminfo = file.data + list.offset[0];
    lmc_media item;

    /* STREAMINFO says blocks of 2048: the 1024-sample frames do not fit. */
    streaminfo[0] = streaminfo[2] = 0x08, streaminfo[1] = streaminfo[3] = 0;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_UNSUPPORTED);
    streaminfo[0] = streaminfo[2] = 0x04;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_OK);
    lmc_media_free(&item);
    /* A block size below FLAC's minimum, min above max. */
    streaminfo[2] = 0, streaminfo[3] = 8;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_CORRUPT);
    streaminfo[0] = 0, streaminfo[1] = 8;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_UNSUPPORTED);
    streaminfo[0] = streaminfo[2] = 0x04, streaminfo[1] = streaminfo[3] = 0;

    /* A wrong sample count, a wrong MD5. */
    set_total(streaminfo, spec.frames + 1);
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_TRUNCATED);
    set_total(streaminfo, spec.frames - 1);
    assert_int_not_equal(parse(file.data, file.size, 0, &item), LMC_OK);
    set_total(streaminfo, spec.frames);
    streaminfo[20] ^= 1;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_CORRUPT);
    streaminfo[20] ^= 1;

    /* Metadata: the invalid type 127, STREAMINFO not first, a bad length. */
    uint8_t *vorbis_header = file.data + list.offset[2] - 4;
    uint8_t saved = vorbis_header[0];
    vorbis_header[0] = (uint8_t)((saved & 0x80) | 127);
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_CORRUPT);
    vorbis_header[0] = (uint8_t)((saved & 0x80) | 0);
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_CORRUPT);
    vorbis_header[0] = saved;
    vorbis_header[1] = 0x7f;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_ERR_TRUNCATED);
    vorbis_header[1] = 0;

    /* Foreign bytes between two frames. */
    lmc_buf spliced;
    lmc_buf_init(&spliced);
    assert_int_equal(list.type[1], 3);
    size_t second_frame = list.frames + (size_t)be64(file.data + list.offset[1] + 18 + 8); /* seek point 1 */
    assert_true(second_frame > list.frames && second_frame < file.size);
    assert_int_equal(lmc_buf_append(&spliced, file.data, second_frame), LMC_OK);
    assert_int_equal(lmc_buf_append(&spliced, "garbage!", 8), LMC_OK);
    assert_int_equal(lmc_buf_append(&spliced, file.data + second_frame, file.size - second_frame), LMC_OK);
    assert_int_equal(parse(spliced.data, spliced.size, 0, &item), LMC_ERR_UNSUPPORTED);
    lmc_buf_free(&spliced);

    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_OK);
    lmc_media_free(&item);
    assert_int_equal(parse((const uint8_t *)"fLaC", 4, 0, &item), LMC_ERR_TRUNCATED);
    assert_int_equal(parse((const uint8_t *)"ID3\4\0\0\0\0\0\0fLaC", 14, 0, &item), LMC_ERR_TRUNCATED);
    lmc_buf_free(&file);
}

static void test_flac_write_rejects_mismatch(void **state) {
    (void)state;
    lmc_buf file, out;
    small_flac(&file);
    lmc_media item;
    lmc_message message;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_OK);
    lmc_buf_init(&out);
    item.audio[5] = 1 << 15; /* does not fit 16 bits */
    assert_int_equal(lmc_media_write(&item, &out, &message), LMC_ERR_PARAM);
    item.audio[5] = 0;
    item.desc.bits = 24;
    assert_int_equal(lmc_media_write(&item, &out, &message), LMC_ERR_PARAM);
    item.desc.bits = 16;
    item.desc.frames--;
    assert_int_equal(lmc_media_write(&item, &out, &message), LMC_ERR_PARAM);
    item.desc.frames++;
    item.side_size = 20;
    assert_int_equal(lmc_media_write(&item, &out, &message), LMC_ERR_PARAM);
    assert_int_equal(out.size, 0);
    lmc_buf_free(&out);
    lmc_media_free(&item);
    lmc_buf_free(&file);
}

/* Samples other than the parsed ones (lossy decoding) give a file whose
 * MD5 is theirs, so decoders accept it. */
static void test_flac_write_other_samples(void **state) {
    (void)state;
    lmc_buf file, out;
    small_flac(&file);
    lmc_media item;
    lmc_message message;
    assert_int_equal(parse(file.data, file.size, 0, &item), LMC_OK);
    for (size_t i = 0; i < item.count; i += 7)
        item.audio[i] = item.audio[i] / 3;
    lmc_buf_init(&out);
    assert_int_equal(lmc_media_write(&item, &out, &message), LMC_OK);
    assert_decodes_to(out.data, out.size, item.audio, item.desc.frames);
    lmc_buf_free(&out);
    lmc_media_free(&item);
    lmc_buf_free(&file);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flac_roundtrips),     cmocka_unit_test(test_flac_id3_and_trailing),
        cmocka_unit_test(test_flac_odd_seek_points), cmocka_unit_test(test_flac_truncated),
        cmocka_unit_test(test_flac_byte_flips),     cmocka_unit_test(test_flac_huge_sizes),
        cmocka_unit_test(test_flac_refusals),       cmocka_unit_test(test_flac_write_rejects_mismatch),
        cmocka_unit_test(test_flac_write_other_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
