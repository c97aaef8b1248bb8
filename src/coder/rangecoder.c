/*
 * Range coder (see coder.h).
 *
 * The encoder's state is the interval [low, low + range), a window onto the
 * code value whose top byte is bits 48..55 of `low`; bit 56 is a carry into
 * bytes already shifted out. After every symbol, while range < 2^48, the
 * top byte leaves the window and range grows by 8 bits, so range stays in
 * [2^48, 2^56).
 *
 * A shifted-out byte is not written at once: a later carry can still add
 * one to it, and through any run of 0xFF bytes after it. As in LZMA, the
 * encoder holds back one byte (`cache`) plus the number of 0xFF bytes that
 * follow it (`cache_size` counts both); when a byte other than 0xFF arrives,
 * or a carry settles the run, the held bytes are written. Unlike LZMA the
 * stream does not start with a zero byte: the first shifted byte simply
 * becomes the cache (the interval never leaves [0, 2^56) at the start, so
 * no carry can reach in front of the first byte).
 *
 * The decoder keeps code = value - low (56 bits) and mirrors every step.
 * Past the end of its data it reads zero bytes, which is what the encoder's
 * shortest flush assumes.
 */
#include "coder/coder.h"

#define RC_TOP (1ull << 56)    /* range < RC_TOP; bit 56 of low is the carry */
#define RC_BOTTOM (1ull << 48) /* normalised range >= RC_BOTTOM */
#define RC_WINDOW_BYTES 7      /* bytes of code value held by the decoder */
#define RC_BIT_PRECISION 16    /* probabilities of encode_bit are p1 / 2^16 */

/* ---- Encoder ---- */

void lmc_rc_encoder_init(lmc_rc_encoder *enc, lmc_buf *out) {
    enc->out = out;
    enc->low = 0;
    enc->range = RC_TOP - 1;
    enc->cache = 0;
    enc->cache_size = 0;
    enc->status = LMC_OK;
}

static inline void emit_byte(lmc_rc_encoder *enc, uint8_t byte) {
    lmc_buf *out = enc->out;
    if (out->size < out->capacity) {
        out->data[out->size++] = byte;
        return;
    }
    lmc_status status = lmc_buf_append_byte(out, byte);
    if (status != LMC_OK && enc->status == LMC_OK) enc->status = status;
}

/* Writes the held-back cache byte and its run of 0xFF bytes, adding the
 * carry (0 or 1) to all of them. */
static void emit_pending(lmc_rc_encoder *enc, unsigned carry) {
    if (enc->cache_size == 0) return;
    emit_byte(enc, (uint8_t)(enc->cache + carry));
    for (uint64_t i = 1; i < enc->cache_size; i++) emit_byte(enc, (uint8_t)(0xFF + carry));
    enc->cache_size = 0;
}

/* Moves the top byte of the window (bits 48..55 of low) out. */
static void shift_low(lmc_rc_encoder *enc) {
    uint8_t top = (uint8_t)(enc->low >> 48);
    unsigned carry = (unsigned)(enc->low >> 56);
    if (enc->cache_size == 0) {
        enc->cache = top; /* first byte of the stream */
        enc->cache_size = 1;
    } else if (top != 0xFF || carry) {
        /* Either no later carry can pass `top`, or the carry arrived now:
         * the held bytes are final. */
        emit_pending(enc, carry);
        enc->cache = top;
        enc->cache_size = 1;
    } else {
        enc->cache_size++; /* a 0xFF that a later carry may still turn into 0x00 */
    }
    enc->low = (enc->low & (RC_BOTTOM - 1)) << 8;
}

static inline void encoder_normalize(lmc_rc_encoder *enc) {
    while (enc->range < RC_BOTTOM) {
        shift_low(enc);
        enc->range <<= 8;
    }
}

/* A caller passing an impossible interval is a bug in the library. */
static void encoder_misuse(lmc_rc_encoder *enc) {
    if (enc->status == LMC_OK) enc->status = LMC_ERR_INTERNAL;
}

void lmc_rc_encode(lmc_rc_encoder *enc, uint32_t cum, uint32_t freq, unsigned total_bits) {
    if (total_bits > 32 || freq == 0 || (uint64_t)cum + freq > (1ull << total_bits)) {
        encoder_misuse(enc);
        return;
    }
    /* range >= 2^48 and total <= 2^32, so step >= 2^16; the remainder
     * range - step * total (< total) is simply not used. */
    uint64_t step = enc->range >> total_bits;
    enc->low += step * cum;
    enc->range = step * freq;
    encoder_normalize(enc);
}

/* Bit 1 takes the bottom part [0, bound) of the interval, bit 0 the rest. */
void lmc_rc_encode_bit(lmc_rc_encoder *enc, uint32_t p1, int bit) {
    if (p1 == 0 || p1 >= (1u << RC_BIT_PRECISION)) {
        encoder_misuse(enc);
        return;
    }
    uint64_t bound = (enc->range >> RC_BIT_PRECISION) * p1;
    if (bit) {
        enc->range = bound;
    } else {
        enc->low += bound;
        enc->range -= bound;
    }
    encoder_normalize(enc);
}

static inline uint64_t round_up(uint64_t value, uint64_t unit) {
    return (value + unit - 1) & ~(unit - 1);
}

/*
 * Shortest flush: the decoder pads with zero bytes, so any value v in
 * [low, low + range) whose bits below the shifted-out part are zero decodes
 * every symbol. A multiple of 2^56 (v = 0 or the carry 2^56) needs no byte
 * of the window at all; otherwise a multiple of 2^48 always exists because
 * range >= 2^48, and needs the window's top byte. So the flush adds the held
 * bytes plus at most one byte, and an empty stream is zero bytes long.
 */
lmc_status lmc_rc_encoder_finish(lmc_rc_encoder *enc) {
    uint64_t value = round_up(enc->low, RC_TOP);
    int needs_top_byte = value - enc->low >= enc->range;
    if (needs_top_byte) value = round_up(enc->low, RC_BOTTOM);
    enc->low = value;
    if (needs_top_byte) shift_low(enc);
    emit_pending(enc, (unsigned)(enc->low >> 56));
    return enc->status;
}

/* ---- Decoder ---- */

static inline uint8_t next_byte(lmc_rc_decoder *dec) {
    if (dec->pos < dec->size) return dec->data[dec->pos++];
    /* A valid stream is read at most RC_WINDOW_BYTES past its end. */
    dec->pos++;
    if (dec->pos - dec->size > RC_WINDOW_BYTES) dec->overrun = 1;
    return 0;
}

static inline void decoder_normalize(lmc_rc_decoder *dec) {
    while (dec->range < RC_BOTTOM) {
        dec->code = (dec->code << 8) | next_byte(dec);
        dec->range <<= 8;
    }
}

/* Marks the stream corrupt and puts code back in range, so that decoding can
 * go on (producing garbage the caller discards) without undefined states. */
static void decoder_corrupt(lmc_rc_decoder *dec) {
    dec->corrupt = 1;
    if (dec->code >= dec->range) dec->code = dec->range - 1;
}

void lmc_rc_decoder_init(lmc_rc_decoder *dec, const uint8_t *data, size_t size) {
    dec->data = data;
    dec->size = size;
    dec->pos = 0;
    dec->code = 0;
    dec->range = RC_TOP - 1;
    dec->step = 0;
    dec->overrun = 0;
    dec->corrupt = 0;
    for (int i = 0; i < RC_WINDOW_BYTES; i++) dec->code = (dec->code << 8) | next_byte(dec);
    if (dec->code >= dec->range) decoder_corrupt(dec);
}

uint32_t lmc_rc_decode_target(lmc_rc_decoder *dec, unsigned total_bits) {
    if (total_bits > 32) {
        dec->corrupt = 1;
        total_bits = 32;
    }
    dec->step = dec->range >> total_bits;
    uint64_t target = dec->code / dec->step;
    uint64_t total = 1ull << total_bits;
    if (target >= total) {
        /* The encoder never uses the remainder range - step * total. */
        dec->corrupt = 1;
        target = total - 1;
    }
    return (uint32_t)target;
}

void lmc_rc_decode_update(lmc_rc_decoder *dec, uint32_t cum, uint32_t freq) {
    if (freq == 0 || dec->step == 0) { /* misuse: no target pending */
        dec->corrupt = 1;
        return;
    }
    dec->code -= dec->step * cum;
    dec->range = dec->step * freq;
    dec->step = 0;
    if (dec->code >= dec->range) decoder_corrupt(dec);
    decoder_normalize(dec);
}

int lmc_rc_decode_bit(lmc_rc_decoder *dec, uint32_t p1) {
    /* Out-of-range probabilities are clamped only to keep the arithmetic
     * safe; the encoder rejects them. */
    p1 = LMC_MAX(1u, LMC_MIN(p1, (1u << RC_BIT_PRECISION) - 1));
    uint64_t bound = (dec->range >> RC_BIT_PRECISION) * p1;
    int bit;
    if (dec->code < bound) {
        dec->range = bound;
        bit = 1;
    } else {
        dec->code -= bound;
        dec->range -= bound;
        bit = 0;
    }
    decoder_normalize(dec);
    return bit;
}

int lmc_rc_decoder_failed(const lmc_rc_decoder *dec) {
    return dec->overrun || dec->corrupt;
}

int lmc_rc_decoder_end_ok(const lmc_rc_decoder *dec) {
    /* The encoder wrote one byte per window shift plus 0 or 1 flush bytes;
     * the decoder read RC_WINDOW_BYTES plus one per shift. */
    return !lmc_rc_decoder_failed(dec) && dec->pos >= dec->size + RC_WINDOW_BYTES - 1 &&
           dec->pos <= dec->size + RC_WINDOW_BYTES;
}
