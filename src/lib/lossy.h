/*
 * Bounded-error ("near-lossless") coding of media samples: every decoded
 * sample differs from the original by at most D (lmc_options.max_error).
 *
 * The samples are quantised before the lossless sample coders: with step
 * s = 2D + 1, sample x becomes the index k = floor((x + D) / s), coded
 * losslessly by the image, video or audio coder, and is reconstructed as
 * k * s clamped to the samples' range. k * s lies in [x - D, x + D], and
 * the clamp only moves it towards x (x itself is in range), so the bound
 * holds for every x by construction; quantise_item checks it anyway.
 *
 * Palette indices (a PNG palette image) and audio whose container has
 * padding bits below its valid bits are never quantised: an index or a
 * padding bit has no magnitude for an error to be bounded in. Such items
 * are coded losslessly (lmc_lossy_applies says why).
 */
#ifndef LMC_LIB_LOSSY_H
#define LMC_LIB_LOSSY_H

#include "lib/lib.h"

/* The largest bound accepted: keeps sums of squared errors of the largest
 * item (2^28 samples) within 64 bits. */
#define LMC_LOSSY_MAX_ERROR 65535u

/* Unsigned samples in [0, max] (images, video). */
uint32_t lmc_lossy_index(uint32_t x, uint32_t bound);
uint32_t lmc_lossy_value(uint32_t index, uint32_t bound, uint32_t max);
/* The largest index of samples in [0, max]. */
uint32_t lmc_lossy_index_max(uint32_t max, uint32_t bound);
/* Signed samples in [lo, hi] (audio): the same quantiser with floor division. */
int32_t lmc_lossy_index_signed(int32_t x, uint32_t bound);
int32_t lmc_lossy_value_signed(int32_t index, uint32_t bound, int32_t lo, int32_t hi);
/* The range of an audio item's samples: its container's signed range. */
void lmc_lossy_audio_range(const lmc_media_desc *desc, int32_t *lo, int32_t *hi);

/* 1 if a bound may be applied to the item's samples; else 0 and *reason
 * says why it is coded losslessly instead. */
int lmc_lossy_applies(const lmc_media_desc *desc, const char **reason);

/* Replaces the item's samples by their indices and fills `restored` with
 * the reconstruction (same layout; the caller frees it) and *squared_error
 * with the sum of squared errors. LMC_ERR_INTERNAL if a sample would leave
 * the bound (it cannot), LMC_ERR_NOMEM. */
lmc_status lmc_lossy_quantise(lmc_media *item, uint32_t bound, void **restored, uint64_t *squared_error,
                              lmc_message *message);
/* Indices back to samples, in place. LMC_ERR_CORRUPT if an index is out of
 * range for the description. */
lmc_status lmc_lossy_dequantise(lmc_media *item, uint32_t bound, lmc_message *message);

/* The peak of PSNR: max_value for images and video, 2^bits - 1 (the
 * container's whole range) for audio. */
double lmc_lossy_peak(const lmc_media_desc *desc);
/* 10 log10(peak^2 * count / squared_error) in dB; INFINITY when nothing
 * changed. Informational only: no archive byte depends on it. */
double lmc_lossy_psnr(uint64_t squared_error, uint64_t count, double peak);

/* ---- Media blocks with a bound (mediacodec.c) ---- */

/* Codes the item with every sample within `bound` (0: lossless, exactly
 * lmc_media_block_encode's payload) and gives the checksum the block
 * records, of the item as it will decode. The item is left unchanged. */
lmc_status lmc_media_block_encode_bounded(const lmc_model *model, lmc_pool *pool, const lmc_media *item,
                                          uint32_t bound, lmc_buf *payload, uint64_t *checksum,
                                          lmc_message *message);
/* Reads a coded media block's bound and PSNR without decoding its samples
 * (lmc info): 0 and INFINITY for a lossless block. LMC_ERR_CORRUPT if the
 * payload's head is damaged. */
lmc_status lmc_media_block_bound(const uint8_t *payload, size_t size, uint32_t *bound, double *psnr);

#endif /* LMC_LIB_LOSSY_H */
