/*
 * libFuzzer target for the WAV reader (src/format/media.h): any input must
 * give a clean error or an item that writes back and re-parses to the same
 * description, samples and side data (the round-trip property). Seeds:
 * fuzz/corpus/wav/ (generated WAV variants).
 *
 * Build: cmake -DCMAKE_C_COMPILER=clang -DLMC_FUZZ=ON; run with
 * fuzz/run_fuzzer.sh build/fuzz/fuzz_wav fuzz/corpus/wav SECONDS.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/media.h"

/* Keeps each run small: an image of 4 Mi samples is plenty to find bugs. */
#define FUZZ_MAX_SAMPLES ((uint64_t)1 << 22)

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lmc_media item, again;
    lmc_message message;
    if (lmc_wav_parse(data, size, FUZZ_MAX_SAMPLES, &item, &message) != LMC_OK) {
        check(item.samples == NULL && item.audio == NULL && item.side == NULL && message.text[0] != '\0');
        return 0;
    }
    check(item.count == (item.desc.kind == LMC_KIND_AUDIO ? item.desc.frames * item.desc.channels
                                                          : item.desc.frames * lmc_media_frame_samples(&item.desc)));
    lmc_buf out;
    lmc_buf_init(&out);
    check(lmc_media_write(&item, &out, &message) == LMC_OK);
    if (item.desc.format != LMC_MEDIA_PNG) /* byte-exact formats */
        check(out.size == size && memcmp(out.data, data, size) == 0);
    check(lmc_wav_parse(out.data, out.size, FUZZ_MAX_SAMPLES, &again, &message) == LMC_OK);
    check(lmc_media_desc_equal(&item.desc, &again.desc));
    check(same_samples(&item, &again));
    check(item.side_size == again.side_size && memcmp(item.side, again.side, item.side_size) == 0);
    lmc_media_free(&again);
    lmc_media_free(&item);
    lmc_buf_free(&out);
    return 0;
}
