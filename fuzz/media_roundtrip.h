/*
 * The round-trip property the media fuzzers check (fuzz_png, fuzz_wav,
 * fuzz_y4m): any input gives a clean error, or an item that writes back and
 * re-parses to the same description, samples and side data; byte-exact
 * formats (all but PNG and FLAC) also write back the input itself. A FLAC
 * (lmc_media_parse recognises it too) must write back; its round trip, with
 * the one side-data difference it tolerates, is fuzz_flac's to check.
 */
#ifndef LMC_FUZZ_MEDIA_ROUNDTRIP_H
#define LMC_FUZZ_MEDIA_ROUNDTRIP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/media.h"

/* Keeps each run small: an image of 4 Mi samples is plenty to find bugs. */
#define FUZZ_MAX_SAMPLES ((uint64_t)1 << 22)

typedef lmc_status (*media_parse_fn)(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                                     lmc_message *message);

static void check(int condition) {
    if (!condition) abort();
}

static int same_samples(const lmc_media *a, const lmc_media *b) {
    if (a->count != b->count)
        return 0;
    if (a->samples)
        return b->samples && memcmp(a->samples, b->samples, a->count * sizeof *a->samples) == 0;
    return b->audio && memcmp(a->audio, b->audio, a->count * sizeof *a->audio) == 0;
}

static void check_roundtrip(const uint8_t *data, size_t size, media_parse_fn parse) {
    lmc_media item, again;
    lmc_message message;
    if (parse(data, size, FUZZ_MAX_SAMPLES, &item, &message) != LMC_OK) {
        check(item.samples == NULL && item.audio == NULL && item.side == NULL && message.text[0] != '\0');
        return;
    }
    check(item.count == (item.desc.kind == LMC_KIND_AUDIO ? item.desc.frames * item.desc.channels
                                                          : item.desc.frames * lmc_media_frame_samples(&item.desc)));
    lmc_buf out;
    lmc_buf_init(&out);
    check(lmc_media_write(&item, &out, &message) == LMC_OK);
    if (item.desc.format == LMC_MEDIA_FLAC) {
        lmc_media_free(&item);
        lmc_buf_free(&out);
        return;
    }
    if (item.desc.format != LMC_MEDIA_PNG) /* byte-exact formats */
        check(out.size == size && memcmp(out.data, data, size) == 0);
    check(parse(out.data, out.size, FUZZ_MAX_SAMPLES, &again, &message) == LMC_OK);
    check(lmc_media_desc_equal(&item.desc, &again.desc));
    check(same_samples(&item, &again));
    check(item.side_size == again.side_size && memcmp(item.side, again.side, item.side_size) == 0);
    lmc_media_free(&again);
    lmc_media_free(&item);
    lmc_buf_free(&out);
}

#endif /* LMC_FUZZ_MEDIA_ROUNDTRIP_H */
