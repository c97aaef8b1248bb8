/*
 * Video plane stacks of layouts 2 to 5 (image.c): mediacodec writes the
 * layout mark (docs/FORMAT.md), the newest for new archives, and codes each
 * plane's stack of frames with these. Stacks of older archives (no mark,
 * or mark 1) decode through lmc_image_decode.
 */
#ifndef LMC_VIDEO_CODEC_H
#define LMC_VIDEO_CODEC_H

#include "model/model.h"

#define LMC_VIDEO_LAYOUT_TAPS 2   /* 8-tap references, luma-guided chroma */
#define LMC_VIDEO_LAYOUT_ERRORS 3 /* and predictors judged by wider local errors */
#define LMC_VIDEO_LAYOUT_CONTEXTS 4 /* and those errors as the mixers' and APMs' contexts */
#define LMC_VIDEO_LAYOUT_MIXING 5   /* and (issue 7, round 4) more guidance for chroma and first frames */

/* A stack that guides the coding of another: the clip's luma stack for its
 * chroma stacks, and (layout 5) the first chroma stack for the second. */
typedef struct {
    const lmc_image_shape *shape;
    const uint16_t *samples;
} lmc_video_guide;

/* layout: LMC_VIDEO_LAYOUT_TAPS to _MIXING (others: LMC_ERR_PARAM).
 * shape: a one-plane stack of frames (frame_height set, motion_shift 2).
 * guides, guide_count (0 to 2): for a chroma stack, guides[0] is the
 * clip's luma stack (already coded, or decoded: the decoder passes the same
 * ones), which it follows where it fits (as many frames, 1-4 times as wide
 * and tall, 8-bit); for the second chroma stack, guides[1] may be the first
 * (U for V), which layout 5 follows where it has the stack's own shape and
 * the luma guide fits (layouts 2-4 ignore it). No guides for the luma
 * stack. The payload has no transform byte: video is never a palette. */
lmc_status lmc_video_plane_encode(const lmc_model *model, uint32_t layout, const lmc_image_shape *shape,
                                  const uint16_t *samples, const lmc_video_guide *guides, uint32_t guide_count,
                                  lmc_pool *pool, lmc_buf *out, lmc_message *message);
lmc_status lmc_video_plane_decode(const lmc_model *model, uint32_t layout, const lmc_image_shape *shape,
                                  const uint8_t *payload, size_t size, const lmc_video_guide *guides,
                                  uint32_t guide_count, lmc_pool *pool, uint16_t *samples, lmc_message *message);

#endif /* LMC_VIDEO_CODEC_H */
