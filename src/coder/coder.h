/*
 * The entropy-coding stage: a range coder over integer CDFs, and the
 * quantisation of a model's logits into such a CDF.
 *
 * Range coder: carry-propagating (LZMA-style) with a 64-bit low and a
 * range kept in [2^48, 2^56) after normalisation, so a CDF total of up to
 * 2^32 still leaves range/total >= 2^16 and the truncation loss per symbol
 * is below 2^-16 relative (well under 0.01% of the ideal code length for the
 * totals used here). Bytes are written as they are produced: no seeking.
 */
#ifndef LMC_CODER_H
#define LMC_CODER_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* CDF totals are powers of two: total = 1 << total_bits, total_bits <= 32. */
#define LMC_CDF_BITS 28 /* model CDFs: floor cost < 0.1% even for 256k vocabularies */

typedef struct {
    lmc_buf *out;        /* bytes are appended here */
    uint64_t low;
    uint64_t range;
    uint8_t cache;
    uint64_t cache_size;
    lmc_status status;   /* first error (allocation), sticky */
} lmc_rc_encoder;

void lmc_rc_encoder_init(lmc_rc_encoder *enc, lmc_buf *out);
/* Codes the interval [cum, cum+freq) of a CDF with total 1<<total_bits.
 * Requires freq >= 1 and cum + freq <= total. */
void lmc_rc_encode(lmc_rc_encoder *enc, uint32_t cum, uint32_t freq, unsigned total_bits);
/* Codes one bit with probability p1 / 65536 of being 1 (1 <= p1 <= 65535). */
void lmc_rc_encode_bit(lmc_rc_encoder *enc, uint32_t p1, int bit);
/* Flushes the final bytes; returns the sticky status. */
lmc_status lmc_rc_encoder_finish(lmc_rc_encoder *enc);

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    uint64_t code;       /* value - low, always < range for valid input */
    uint64_t range;
    uint64_t step;       /* range / total of the pending symbol */
    int overrun;         /* set when reading past the end (truncated/corrupt data) */
    int corrupt;         /* set on an impossible state (code >= range): not a valid stream */
} lmc_rc_decoder;

void lmc_rc_decoder_init(lmc_rc_decoder *dec, const uint8_t *data, size_t size);
/* First half of decoding one symbol: the target cumulative count in
 * [0, total). Find the symbol whose interval holds it, then call update. */
uint32_t lmc_rc_decode_target(lmc_rc_decoder *dec, unsigned total_bits);
void lmc_rc_decode_update(lmc_rc_decoder *dec, uint32_t cum, uint32_t freq);
int lmc_rc_decode_bit(lmc_rc_decoder *dec, uint32_t p1);
/* Nonzero once the decoder read past the data or saw an impossible code:
 * the caller reports the block as corrupt. */
int lmc_rc_decoder_failed(const lmc_rc_decoder *dec);
/* After the last symbol: nonzero when the decoder never failed and consumed
 * exactly the bytes the encoder wrote (a valid stream is read up to 6 or 7
 * bytes past its end). A stream truncated by 2 or more bytes, or followed
 * by 2 or more extra bytes, fails this check whenever its symbols decoded
 * correctly. */
int lmc_rc_decoder_end_ok(const lmc_rc_decoder *dec);

/* ---- CDFs ---- */

/* Turns n logits into cumulative frequencies cum[0..n] with cum[0] = 0,
 * cum[n] = 1 << LMC_CDF_BITS and every symbol's frequency >= 1, using only
 * deterministic arithmetic (lmc_expf, fixed-order sums, integer rounding;
 * see docs/FORMAT.md "numerics v1"). `scratch` holds n floats. */
void lmc_cdf_from_logits(const float *logits, int n, float *scratch, uint32_t *cum);
/* The symbol s with cum[s] <= target < cum[s+1] (binary search). */
int lmc_cdf_find(const uint32_t *cum, int n, uint32_t target);

/* Convenience wrappers coding symbol s under cum (total 1 << LMC_CDF_BITS). */
void lmc_rc_encode_symbol(lmc_rc_encoder *enc, const uint32_t *cum, int s);
int lmc_rc_decode_symbol(lmc_rc_decoder *dec, const uint32_t *cum, int n);

#endif /* LMC_CODER_H */
