/*
 * lmc bench's view of media files: their raw size (subpixels of images and
 * video, PCM bytes of audio), which the bits per subpixel and the ratio
 * against raw PCM are measured on, and the round-trip check of the media
 * codecs, whose decoders may write the same samples in other bytes (another
 * PNG, a WAV or Y4M header of their own).
 */
#include <string.h>

#include "cli/bench.h"

static bench_raw_size raw_size_of(const lmc_media_desc *desc) {
    bench_raw_size raw = {0, 0};
    if (desc->kind == LMC_KIND_IMAGE) raw.subpixels = (uint64_t)desc->width * desc->height * desc->channels;
    if (desc->kind == LMC_KIND_VIDEO) raw.subpixels = desc->frames * lmc_media_frame_samples(desc);
    if (desc->kind == LMC_KIND_AUDIO) raw.pcm_bytes = (uint64_t)desc->channels * desc->frames * (desc->bits / 8);
    return raw;
}

int bench_media_read(const uint8_t *data, size_t size, lmc_media *media, bench_raw_size *raw) {
    lmc_message message;
    memset(raw, 0, sizeof *raw);
    if (lmc_media_parse(data, size, 0, media, &message) != LMC_OK) return 0;
    *raw = raw_size_of(&media->desc);
    return 1;
}

/* Equal values of samples whose largest legal values may differ (a 16-bit
 * decoder output of 8-bit data): a / max_a = b / max_b, in integers. */
static int same_value(uint32_t a, uint32_t max_a, uint32_t b, uint32_t max_b) {
    return (uint64_t)a * max_b == (uint64_t)b * max_a;
}

/* Video: the same planes, frames and sample values; the Y4M header's other
 * tags (chroma siting, frame rate, aspect) are not samples. */
static int same_video(const lmc_media *a, const lmc_media *b) {
    const lmc_media_desc *x = &a->desc, *y = &b->desc;
    if (x->width != y->width || x->height != y->height || x->channels != y->channels || x->frames != y->frames ||
        x->chroma_shift_x != y->chroma_shift_x || x->chroma_shift_y != y->chroma_shift_y || a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!same_value(a->samples[i], x->max_value, b->samples[i], y->max_value)) return 0;
    return 1;
}

/* Audio: the same channels, rate, container width and sample values; WAV
 * header variants (WAVE_FORMAT_EXTENSIBLE or not, extra chunks) aside. */
static int same_audio(const lmc_media *a, const lmc_media *b) {
    const lmc_media_desc *x = &a->desc, *y = &b->desc;
    if (x->channels != y->channels || x->frames != y->frames || x->sample_rate != y->sample_rate || x->bits != y->bits ||
        a->count != b->count)
        return 0;
    return a->count == 0 || memcmp(a->audio, b->audio, a->count * sizeof *a->audio) == 0;
}

static int same_samples(const bench_input *input, const lmc_media *decoded, const uint8_t *file, size_t size) {
    const lmc_media *original = input->media;
    if (original->desc.kind != decoded->desc.kind) return 0;
    switch (original->desc.kind) {
    case LMC_KIND_IMAGE: return bench_pixels_equal(original, input->data, input->size, decoded, file, size);
    case LMC_KIND_VIDEO: return same_video(original, decoded);
    case LMC_KIND_AUDIO: return same_audio(original, decoded);
    default: return 0;
    }
}

int bench_media_same(const bench_input *input, const uint8_t *decoded, size_t decoded_size) {
    if (decoded_size == input->size && memcmp(decoded, input->data, decoded_size) == 0) return 1;
    if (input->media == NULL) return 0;
    lmc_media media;
    bench_raw_size raw;
    if (!bench_media_read(decoded, decoded_size, &media, &raw)) return 0;
    int same = same_samples(input, &media, decoded, decoded_size);
    lmc_media_free(&media);
    return same;
}
