/*
 * The media readers and writers: PNG, PNM (P5/P6/P7), WAV, FLAC and Y4M turned
 * into samples plus an opaque "side" blob, and back. Pure parsing and
 * serialising; the models that code the samples live elsewhere.
 *
 * A decoded item (lmc_media) is
 *   - desc: what the samples are (kind, geometry, bits, rate, frames...);
 *   - the samples, planar (see "Sample order" below): uint16 for images and
 *     video, int32 for audio;
 *   - side: every byte of the file that is not a sample (headers, comments,
 *     extra chunks, frame headers, padding, trailing garbage), with a few
 *     varints saying where the samples go. The side blob is opaque to the
 *     caller: store it, give it back to the writer.
 *
 * Exactness of write(parse(file)):
 *   - PNM, WAV, Y4M: byte-exact.
 *   - PNG: pixel-exact. Every chunk other than IDAT (IHDR, PLTE, tRNS, iCCP,
 *     gAMA, text, unknown ancillary chunks ...) and any bytes after IEND are
 *     kept byte for byte at their original place; only the IDAT group is
 *     re-compressed (by libpng), so the file's bytes may differ there.
 *     Palette images decode to their indices, not to RGB: two palette
 *     entries may hold the same colour, so RGB cannot say which index a
 *     pixel used, and the indices with the verbatim PLTE restore the file
 *     exactly (and are 1/3 of the samples).
 *   - FLAC: sample-exact. Every metadata block (VORBIS_COMMENT, PICTURE,
 *     APPLICATION, CUESHEET, PADDING, unknown blocks), an ID3v2 tag before
 *     "fLaC" and any bytes after the last frame are kept byte for byte in
 *     their order; the frames are re-encoded by libFLAC with the original's
 *     block size, and STREAMINFO's frame sizes and the SEEKTABLE's byte
 *     offsets are recomputed for the new frames (flac_io.c).
 *
 * Sample order (sample = samples[...] or audio[...]):
 *   - image: plane c (one per channel: gray | gray,alpha | R,G,B | R,G,B,A;
 *     a palette image has one plane of indices), then row y top to bottom,
 *     then column x: index (c * height + y) * width + x.
 *     PNG rows are the final image (interlaced files are de-interlaced).
 *   - video: frame f, then plane p (Y, Cb, Cr[, alpha]; Cmono has only Y),
 *     then rows, then columns; plane p is lmc_media_plane_width(desc, p) x
 *     lmc_media_plane_height(desc, p) samples.
 *   - audio: channel c, then sample frame t: index c * frames + t. Values are
 *     the file's signed integers as stored in the container (8-bit WAV,
 *     which is unsigned, is centred by subtracting 128; FLAC samples are
 *     libFLAC's decoded values of `bits` bits). When the valid
 *     bits are fewer than the container's (WAVE_FORMAT_EXTENSIBLE), the
 *     value is still the whole container, so padding bits survive.
 *
 * Errors (every parse and write returns an lmc_status and fills `message`):
 *   LMC_ERR_TRUNCATED    the data ends before a part its headers declare;
 *   LMC_ERR_CORRUPT      malformed structure (bad header, CRC, zlib data);
 *   LMC_ERR_UNSUPPORTED  well-formed but not handled (APNG, float WAV, an
 *                        unknown Y4M colourspace, unknown critical PNG
 *                        chunk, not a media file at all): the caller codes
 *                        the input as plain bytes instead;
 *   LMC_ERR_MEMLIMIT     more samples than `max_samples` allows;
 *   LMC_ERR_NOMEM        an allocation failed;
 *   LMC_ERR_PARAM        (write) the item's desc, samples and side disagree.
 * On any error the item is left empty (nothing to free, but freeing is safe).
 *
 * Memory bound: every declared size is checked against the input before
 * anything is allocated. PNM, WAV and Y4M samples take at most 4 bytes per
 * input byte (each sample is at least one input byte; audio is int32).
 * PNG pixels come out of zlib, which expands at most ~1032:1, so a PNG is
 * refused (CORRUPT) if its raw image could not come out of its IDAT bytes,
 * which bounds its samples by 8 * 1040 * (IDAT bytes + 1). FLAC frames of
 * constant samples decode to far more than their bytes, so a FLAC is capped
 * at 8 * 1040 samples per input byte (LMC_ERR_UNSUPPORTED), the bound the
 * media block decoder enforces, checked against STREAMINFO before decoding
 * and against the running count while decoding; in every format the
 * sample count is also capped by max_samples (0 = LMC_MEDIA_MAX_SAMPLES).
 * Side data is never larger than the input (plus a few varint bytes).
 */
#ifndef LMC_MEDIA_H
#define LMC_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "lmc.h"

/* Default cap on samples per item (256 Mi samples: 512 MiB of uint16). */
#define LMC_MEDIA_MAX_SAMPLES ((uint64_t)1 << 28)

typedef enum {
    LMC_MEDIA_NONE = 0,
    LMC_MEDIA_PNG,
    LMC_MEDIA_PNM,
    LMC_MEDIA_WAV,
    LMC_MEDIA_Y4M,
    LMC_MEDIA_FLAC /* the last: media blocks refuse larger format numbers */
} lmc_media_format;

typedef struct {
    lmc_kind kind;           /* LMC_KIND_IMAGE, _AUDIO or _VIDEO */
    lmc_media_format format;
    uint32_t width, height;  /* image, video (luma size); 0 for audio */
    uint32_t channels;       /* image: planes per pixel; video: planes (1, 3 or 4); audio: channels */
    uint32_t bits;           /* bits per sample as stored: image depth, video 8 or 16-bit container
                                depth (10 for C420p10), audio container bits (WAV: 8, 16, 24, 32;
                                FLAC: its bits per sample, 4 to 32) */
    uint32_t valid_bits;     /* audio: significant bits (<= bits); image, video: = bits */
    uint32_t max_value;      /* image, video: largest legal sample (PNM maxval, 2^bits-1); audio: 0 */
    uint32_t sample_rate;    /* audio: frames per second; 0 otherwise */
    uint64_t frames;         /* audio: samples per channel; video: frames; image: 1 */
    uint8_t chroma_shift_x;  /* video: planes 1 and 2 are ceil(width / 2^x) ... */
    uint8_t chroma_shift_y;  /* ... by ceil(height / 2^y); 0 for images and audio */
    uint8_t palette;         /* image: the single plane holds palette indices */
    uint8_t interlaced;      /* image: the PNG file is Adam7-interlaced (informational) */
} lmc_media_desc;

typedef struct {
    lmc_media_desc desc;
    uint16_t *samples;  /* image and video samples, NULL for audio */
    int32_t *audio;     /* audio samples, NULL otherwise */
    size_t count;       /* samples in whichever array is used */
    uint8_t *side;      /* opaque; malloc'ed */
    size_t side_size;
} lmc_media;

/* Recognises the format by its magic bytes and parses it. max_samples = 0
 * means LMC_MEDIA_MAX_SAMPLES. On success the caller frees *item. */
lmc_status lmc_media_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                           lmc_message *message);
/* Appends the file restored from item to out. */
lmc_status lmc_media_write(const lmc_media *item, lmc_buf *out, lmc_message *message);
void lmc_media_free(lmc_media *item);

/* The per-format halves of the two calls above (same contracts). */
lmc_status lmc_png_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message);
lmc_status lmc_png_write(const lmc_media *item, lmc_buf *out, lmc_message *message);
lmc_status lmc_pnm_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message);
lmc_status lmc_pnm_write(const lmc_media *item, lmc_buf *out, lmc_message *message);
lmc_status lmc_wav_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message);
lmc_status lmc_wav_write(const lmc_media *item, lmc_buf *out, lmc_message *message);
lmc_status lmc_y4m_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                         lmc_message *message);
lmc_status lmc_y4m_write(const lmc_media *item, lmc_buf *out, lmc_message *message);
lmc_status lmc_flac_parse(const uint8_t *data, size_t size, uint64_t max_samples, lmc_media *item,
                          lmc_message *message);
lmc_status lmc_flac_write(const lmc_media *item, lmc_buf *out, lmc_message *message);
/* Offset of "fLaC" in a FLAC file (0, or after an ID3v2 tag), SIZE_MAX if
 * data is not one. */
size_t lmc_flac_signature_offset(const uint8_t *data, size_t size);

/* Geometry of plane `plane` of one image or video frame, in samples. */
uint32_t lmc_media_plane_width(const lmc_media_desc *desc, uint32_t plane);
uint32_t lmc_media_plane_height(const lmc_media_desc *desc, uint32_t plane);
/* Samples in one image or one video frame (all planes). */
uint64_t lmc_media_frame_samples(const lmc_media_desc *desc);
/* 1 if every field is equal. */
int lmc_media_desc_equal(const lmc_media_desc *a, const lmc_media_desc *b);

/* ---- For the readers in this folder ---- */

/* Allocates item's sample array for `count` samples (of the desc's kind),
 * refusing more than max_samples (0: the default) with LMC_ERR_MEMLIMIT. */
lmc_status lmc_media_alloc_samples(lmc_media *item, uint64_t count, uint64_t max_samples, lmc_message *message);
/* Builds item->side as varints `header[0..n_header)` followed by the bytes of
 * `data` outside the sample region [hole, hole + hole_size). */
lmc_status lmc_media_make_side(lmc_media *item, const uint64_t *header, size_t n_header, const uint8_t *data,
                               size_t size, size_t hole, size_t hole_size, lmc_message *message);

#endif /* LMC_MEDIA_H */
