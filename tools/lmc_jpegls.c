/*
 * lmc_jpegls: JPEG-LS (ITU-T T.87) through CharLS, as a command for
 * `lmc bench --lossy`, which compares lmc's bounded-error mode with JPEG-LS
 * near-lossless coding at the same maximum error (NEAR). Debian ships the
 * CharLS library but no command; this is the smallest one. Built only when
 * CharLS is found (CMakeLists.txt).
 *
 *   lmc_jpegls [-n NEAR] [-i none|line|sample] IMAGE OUT.jls   PNG or PNM in
 *   lmc_jpegls -d IN.jls OUT.pnm                                 PGM/PPM/PAM out
 *
 * Exit status: 0 success, 1 error, 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <charls/charls.h>

#include "format/media.h"
#include "tool_files.h"

static int usage(void) {
    fprintf(stderr, "usage: lmc_jpegls [-n NEAR] [-i none|line|sample] IMAGE OUT.jls\n"
                    "       lmc_jpegls -d IN.jls OUT.pnm\n");
    return 2;
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    int failed = !f || fwrite(data, 1, size, f) != size;
    if (f && fclose(f) != 0)
        failed = 1;
    if (failed)
        fprintf(stderr, "lmc_jpegls: cannot write %s\n", path);
    return failed ? -1 : 0;
}

static int charls_failed(const char *what, charls_jpegls_errc error) {
    fprintf(stderr, "lmc_jpegls: %s: %s\n", what, charls_get_error_message(error));
    return 1;
}

/* The item's planar samples as CharLS wants them for the interleave mode:
 * planar (none), one row of each plane in turn (line) or pixel by pixel
 * (sample); one byte per sample up to 8 bits, else native uint16. */
static void *arrange(const lmc_media *item, charls_interleave_mode mode, size_t *size) {
    const lmc_media_desc *d = &item->desc;
    size_t bytes = d->max_value > 255 ? 2 : 1, w = d->width, h = d->height, c = d->channels;
    uint8_t *out = malloc(w * h * c * bytes);
    if (!out)
        return NULL;
    for (size_t p = 0; p < c; p++)
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) {
                size_t at = mode == CHARLS_INTERLEAVE_MODE_NONE   ? (p * h + y) * w + x
                            : mode == CHARLS_INTERLEAVE_MODE_LINE ? (y * c + p) * w + x
                                                                  : (y * w + x) * c + p;
                uint16_t v = item->samples[(p * h + y) * w + x];
                if (bytes == 2)
                    memcpy(out + 2 * at, &v, 2);
                else
                    out[at] = (uint8_t)v;
            }
    *size = w * h * c * bytes;
    return out;
}

static int bits_of(uint32_t max_value) {
    int bits = 2; /* JPEG-LS codes 2 to 16 bits per sample */
    while (bits < 16 && (1u << bits) - 1 < max_value)
        bits++;
    return bits;
}

static int encode(const lmc_media *item, int near, charls_interleave_mode mode, const char *out_path) {
    const lmc_media_desc *d = &item->desc;
    if (d->kind != LMC_KIND_IMAGE || d->palette) {
        fprintf(stderr, "lmc_jpegls: only gray, gray+alpha, RGB and RGBA images\n");
        return 1;
    }
    if (d->channels == 1)
        mode = CHARLS_INTERLEAVE_MODE_NONE;
    size_t raw_size;
    void *raw = arrange(item, mode, &raw_size);
    charls_jpegls_encoder *encoder = charls_jpegls_encoder_create();
    if (!raw || !encoder) {
        free(raw);
        charls_jpegls_encoder_destroy(encoder);
        fprintf(stderr, "lmc_jpegls: out of memory\n");
        return 1;
    }
    charls_frame_info frame = {d->width, d->height, bits_of(d->max_value), (int32_t)d->channels};
    size_t capacity = 0, written = 0;
    void *coded = NULL;
    charls_jpegls_errc error = charls_jpegls_encoder_set_frame_info(encoder, &frame);
    if (!error)
        error = charls_jpegls_encoder_set_near_lossless(encoder, near);
    if (!error)
        error = charls_jpegls_encoder_set_interleave_mode(encoder, mode);
    if (!error)
        error = charls_jpegls_encoder_get_estimated_destination_size(encoder, &capacity);
    if (!error && !(coded = malloc(capacity)))
        error = CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY;
    if (!error)
        error = charls_jpegls_encoder_set_destination_buffer(encoder, coded, capacity);
    if (!error)
        error = charls_jpegls_encoder_encode_from_buffer(encoder, raw, raw_size, 0);
    if (!error)
        error = charls_jpegls_encoder_get_bytes_written(encoder, &written);
    int status = error ? charls_failed("encoding", error) : write_file(out_path, coded, written) ? 1 : 0;
    charls_jpegls_encoder_destroy(encoder);
    free(coded);
    free(raw);
    return status;
}

/* PGM, PPM, or PAM for 2 and 4 channels, from CharLS's output in `mode`. */
static int write_pnm(const char *path, const charls_frame_info *frame, charls_interleave_mode mode,
                     const uint8_t *pixels) {
    size_t w = frame->width, h = frame->height, c = (size_t)frame->component_count;
    size_t bytes = frame->bits_per_sample > 8 ? 2 : 1;
    unsigned max = (1u << frame->bits_per_sample) - 1;
    lmc_buf out;
    lmc_buf_init(&out);
    char head[160];
    int n = c == 1 || c == 3 ? snprintf(head, sizeof head, "P%c\n%zu %zu\n%u\n", c == 1 ? '5' : '6', w, h, max)
                             : snprintf(head, sizeof head, "P7\nWIDTH %zu\nHEIGHT %zu\nDEPTH %zu\nMAXVAL %u\n"
                                                           "TUPLTYPE %s\nENDHDR\n",
                                        w, h, c, max, c == 2 ? "GRAYSCALE_ALPHA" : "RGB_ALPHA");
    int failed = lmc_buf_append(&out, head, (size_t)n) != LMC_OK;
    for (size_t y = 0; y < h && !failed; y++)
        for (size_t x = 0; x < w && !failed; x++)
            for (size_t p = 0; p < c && !failed; p++) {
                size_t at = mode == CHARLS_INTERLEAVE_MODE_NONE   ? (p * h + y) * w + x
                            : mode == CHARLS_INTERLEAVE_MODE_LINE ? (y * c + p) * w + x
                                                                  : (y * w + x) * c + p;
                uint16_t v = pixels[at];
                if (bytes == 2)
                    memcpy(&v, pixels + 2 * at, 2);
                uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
                failed = lmc_buf_append(&out, bytes == 2 ? be : be + 1, bytes) != LMC_OK;
            }
    failed = failed || write_file(path, out.data, out.size) != 0;
    lmc_buf_free(&out);
    return failed ? 1 : 0;
}

static int decode(const lmc_buf *coded, const char *out_path) {
    charls_jpegls_decoder *decoder = charls_jpegls_decoder_create();
    if (!decoder) {
        fprintf(stderr, "lmc_jpegls: out of memory\n");
        return 1;
    }
    charls_frame_info frame;
    charls_interleave_mode mode = CHARLS_INTERLEAVE_MODE_NONE;
    size_t size = 0;
    uint8_t *pixels = NULL;
    charls_jpegls_errc error = charls_jpegls_decoder_set_source_buffer(decoder, coded->data, coded->size);
    if (!error)
        error = charls_jpegls_decoder_read_header(decoder);
    if (!error)
        error = charls_jpegls_decoder_get_frame_info(decoder, &frame);
    if (!error)
        error = charls_jpegls_decoder_get_interleave_mode(decoder, &mode);
    if (!error)
        error = charls_jpegls_decoder_get_destination_size(decoder, 0, &size);
    if (!error && !(pixels = malloc(size ? size : 1)))
        error = CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY;
    if (!error)
        error = charls_jpegls_decoder_decode_to_buffer(decoder, pixels, size, 0);
    int status = error ? charls_failed("decoding", error) : write_pnm(out_path, &frame, mode, pixels);
    charls_jpegls_decoder_destroy(decoder);
    free(pixels);
    return status;
}

static int parse_mode(const char *text, charls_interleave_mode *mode) {
    static const char *const names[] = {"none", "line", "sample"};
    for (int i = 0; i < 3; i++)
        if (strcmp(text, names[i]) == 0) {
            *mode = (charls_interleave_mode)i;
            return 0;
        }
    return -1;
}

int main(int argc, char **argv) {
    int decoding = 0, near = 0, i = 1;
    charls_interleave_mode mode = CHARLS_INTERLEAVE_MODE_SAMPLE;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        if (strcmp(argv[i], "-d") == 0)
            decoding = 1;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            near = atoi(argv[++i]);
        else if (!(strcmp(argv[i], "-i") == 0 && i + 1 < argc && parse_mode(argv[++i], &mode) == 0))
            return usage();
    }
    if (argc - i != 2 || near < 0 || near > 255)
        return usage();
    lmc_buf input;
    lmc_buf_init(&input);
    if (tool_read_file(argv[i], &input) != 0) {
        fprintf(stderr, "lmc_jpegls: cannot read %s\n", argv[i]);
        return 1;
    }
    int status;
    if (decoding) {
        status = decode(&input, argv[i + 1]);
    } else {
        lmc_media item;
        lmc_message message;
        status = lmc_media_parse(input.data, input.size, 0, &item, &message) == LMC_OK ? 0 : 1;
        if (status)
            fprintf(stderr, "lmc_jpegls: %s: %s\n", argv[i], message.text);
        else
            status = encode(&item, near, mode, argv[i + 1]);
        lmc_media_free(&item); /* left empty by a failed parse */
    }
    lmc_buf_free(&input);
    return status;
}
