/*
 * Video clips of layouts 2 to 5 (image.c): mediacodec writes the layout
 * mark (docs/FORMAT.md), the newest for new archives, and codes the planes'
 * stacks of frames with these. Stacks of older archives (no mark,
 * or mark 1) decode through lmc_image_decode.
 */
#ifndef LMC_VIDEO_CODEC_H
#define LMC_VIDEO_CODEC_H

#include "model/model.h"

#define LMC_VIDEO_LAYOUT_TAPS 2   /* 8-tap references, luma-guided chroma */
#define LMC_VIDEO_LAYOUT_ERRORS 3 /* and predictors judged by wider local errors */
#define LMC_VIDEO_LAYOUT_CONTEXTS 4 /* and those errors as the mixers' and APMs' contexts */
#define LMC_VIDEO_LAYOUT_MIXING 5   /* and luma hypotheses and mixing, Cb guiding Cr, wider first frames */

#define LMC_VIDEO_MAX_PLANES 4 /* Y, U, V and alpha */

/* A clip's planes, each a one-plane stack of its frames (frame_height set,
 * motion_shift 2), coded together under `layout` (LMC_VIDEO_LAYOUT_TAPS,
 * _ERRORS, _CONTEXTS or _MIXING; others: LMC_ERR_PARAM), into one payload a plane
 * (no transform byte: video is never a palette). Plane 0 (luma) guides the
 * later planes wherever it fits (as many frames, 1-4 times as wide and
 * tall, 8-bit). With a pool of two threads or more the planes are coded at
 * the same time, the decoder's guided planes a frame behind plane 0; the
 * payloads do not depend on the thread count. */
lmc_status lmc_video_encode(const lmc_model *model, uint32_t layout, uint32_t planes, const lmc_image_shape *shapes,
                            const uint16_t *const *samples, lmc_pool *pool, lmc_buf *payloads,
                            lmc_message *message);
lmc_status lmc_video_decode(const lmc_model *model, uint32_t layout, uint32_t planes, const lmc_image_shape *shapes,
                            const uint8_t *const *payloads, const size_t *sizes, lmc_pool *pool,
                            uint16_t *const *samples, lmc_message *message);

#endif /* LMC_VIDEO_CODEC_H */
