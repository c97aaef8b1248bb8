/*
 * The audio residual coder: codes each prediction residual as binary
 * decisions (see audio_internal.h) with adaptive probabilities.
 *
 * The size of recent residuals says most about the next one, so every
 * decision's probability comes from three adaptive state maps selected by
 * the decision and
 *   0: the fast average of recent |residual| (4 steps per octave),
 *   1: the slow average of recent |residual|,
 *   2: the fast average (2 steps per octave) and how the last residual
 *      compares with it,
 * mixed in the logistic domain by a mixer whose weights are selected by the
 * decision, then refined by an APM on the decision and the fast average.
 * The sign is coded with the same machinery, its contexts being where the
 * exact prediction lies against the rounded one and the last sign.
 *
 * The maps can start from probabilities fitted on training audio (the
 * model's "audio.coder.prior"), and the mixers from trained weights
 * ("audio.coder.mixer"), so that short recordings do not pay for learning
 * what every recording looks like.
 */
#include <stdlib.h>
#include <string.h>

#include "model/audio_internal.h"

#define MIXER_START (1 << 14) /* 0.25 for each input without trained weights */
#define FLAG_LIMIT 30
#define SCALE_SHIFT 4         /* the averages hold |residual| * 16 */

struct audio_coder {
    const lmc_cm_tables *tables;
    uint32_t map_limit, mixer_rate;
    uint32_t fast_shift, slow_shift;
    uint32_t *map[3];
    int32_t (*weights)[AUDIO_CODER_INPUTS];
    uint16_t *apm_cells;
    apm apm;
    int64_t fast, slow;           /* averages of |residual| * 16 */
    uint64_t last_magnitude;
    uint32_t last_sign;           /* 0: zero, 1: positive, 2: negative */
    uint32_t flag_entry;
    audio_stats *stats;
    uint32_t uses[AUDIO_DECISIONS];
    void *block;
    /* The decision being coded. */
    uint32_t *entry[3];
    uint32_t entry_index[3];
    int32_t inputs[AUDIO_CODER_INPUTS];
    int32_t *active;
    uint32_t mixed;
};

static uint32_t bit_length(uint64_t v) {
    uint32_t n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

/* log2(average) in quarter octaves: 4 * floor(log2 a) + the next two bits. */
static uint32_t scale_of(int64_t average) {
    uint64_t a = (uint64_t)average + 1;
    uint32_t top = bit_length(a) - 1;
    uint32_t fraction = top >= 2 ? (uint32_t)(a >> (top - 2)) & 3 : (uint32_t)(a << (2 - top)) & 3;
    uint32_t s = 4 * top + fraction;
    return LMC_MIN(s, AUDIO_SCALES - 1u);
}

lmc_status audio_coder_create(const audio_params *params, const lmc_cm_tables *tables, audio_coder **out) {
    audio_coder *c = calloc(1, sizeof *c);
    if (!c)
        return LMC_ERR_NOMEM;
    size_t map_bytes = (size_t)AUDIO_PRIOR_SIZE * sizeof(uint32_t);
    size_t weight_bytes = (size_t)AUDIO_DECISIONS * AUDIO_CODER_INPUTS * sizeof(int32_t);
    size_t apm_bytes = (size_t)AUDIO_DECISIONS * AUDIO_APM_SCALES * APM_CELLS * sizeof(uint16_t);
    c->block = malloc(map_bytes + weight_bytes + apm_bytes);
    if (!c->block) {
        free(c);
        return LMC_ERR_NOMEM;
    }
    uint32_t *maps = c->block;
    c->map[0] = maps;
    c->map[1] = maps + AUDIO_MAP0_SIZE;
    c->map[2] = maps + AUDIO_MAP0_SIZE + AUDIO_MAP1_SIZE;
    c->weights = (void *)((uint8_t *)c->block + map_bytes);
    c->apm_cells = (void *)((uint8_t *)c->block + map_bytes + weight_bytes);
    c->apm.cells = c->apm_cells;
    memset(c->apm_cells, 0, apm_bytes); /* the identity */

    uint32_t count = LMC_MIN(params->prior_count, params->map_limit);
    for (uint32_t i = 0; i < AUDIO_PRIOR_SIZE; i++) {
        if (params->prior) {
            uint32_t p16 = squash(tables, clamp_logistic(params->prior[i]));
            maps[i] = p16 << 16 | count;
        } else {
            maps[i] = STATE_MAP_START;
        }
    }
    for (uint32_t d = 0; d < AUDIO_DECISIONS; d++)
        for (uint32_t k = 0; k < AUDIO_CODER_INPUTS; k++)
            c->weights[d][k] = params->mixer_start ? params->mixer_start[d * AUDIO_CODER_INPUTS + k] : MIXER_START;

    c->tables = tables;
    c->map_limit = params->map_limit;
    c->mixer_rate = params->mixer_rate;
    c->fast_shift = params->fast_shift;
    c->slow_shift = params->slow_shift;
    c->fast = c->slow = 1 << SCALE_SHIFT;
    c->flag_entry = STATE_MAP_START;
    *out = c;
    return LMC_OK;
}

void audio_coder_free(audio_coder *c) {
    if (!c)
        return;
    free(c->block);
    free(c);
}

/* ---- One decision ---- */

static int code_bit(const audio_bit_coder *bc, uint32_t p1, int bit) {
    p1 = LMC_MAX(1u, LMC_MIN(p1, 65535u));
    if (bc->encoder) {
        lmc_rc_encode_bit(bc->encoder, p1, bit);
        return bit;
    }
    return lmc_rc_decode_bit(bc->decoder, p1);
}

typedef struct {
    uint32_t scale, slow_scale, relation; /* the contexts of this residual */
} decision_context;

static int code_decision(audio_coder *c, const audio_bit_coder *bc, uint32_t decision, const decision_context *ctx,
                         int bit) {
    const lmc_cm_tables *t = c->tables;
    c->entry_index[0] = decision * AUDIO_SCALES + ctx->scale;
    c->entry_index[1] = decision * AUDIO_SCALES + ctx->slow_scale;
    c->entry_index[2] = (decision * (AUDIO_SCALES / 2) + (ctx->scale >> 1)) * AUDIO_RELATIONS + ctx->relation;
    for (int i = 0; i < 3; i++) {
        c->entry[i] = c->map[i] + c->entry_index[i];
        c->inputs[i] = stretch(t, state_map_p16(*c->entry[i]));
    }
    c->inputs[3] = 256;
    c->active = c->weights[decision];
    c->uses[decision] = 1;
    int64_t dot = 0;
    for (int i = 0; i < AUDIO_CODER_INPUTS; i++)
        dot += (int64_t)c->active[i] * c->inputs[i];
    int x = clamp_logistic((int)(dot >> 16));
    c->mixed = squash(t, x);
    uint32_t refined = apm_predict(&c->apm, t->apm_identity, decision * AUDIO_APM_SCALES + (ctx->scale >> 3), x);
    bit = code_bit(bc, (c->mixed + 3 * refined) >> 2, bit);

    mixer_train_n(c->active, c->inputs, AUDIO_CODER_INPUTS,
                  ((bit << 16) - (int32_t)c->mixed) * (int32_t)c->mixer_rate >> 4);
    apm_update(&c->apm, t->apm_identity, bit);
    for (int i = 0; i < 3; i++)
        state_map_update_limited(c->entry[i], bit, t->reciprocal, c->map_limit);
    if (c->stats) {
        for (uint32_t i = 0, base = 0; i < 3; i++) {
            c->stats->counts[base + c->entry_index[i]][bit]++;
            base += i == 0 ? AUDIO_MAP0_SIZE : AUDIO_MAP1_SIZE;
        }
    }
    return bit;
}

/* ---- A residual ---- */

uint32_t audio_code_raw(const audio_bit_coder *bc, uint32_t value, unsigned bits) {
    if (bc->encoder) {
        lmc_rc_encode(bc->encoder, value, 1, bits);
        return value;
    }
    uint32_t target = lmc_rc_decode_target(bc->decoder, bits);
    lmc_rc_decode_update(bc->decoder, target, 1);
    return target;
}

/* The bits of value below `bits`, 16 at a time, highest first. */
static uint64_t code_raw_bits(const audio_bit_coder *bc, uint64_t value, uint32_t bits) {
    uint64_t result = 0;
    while (bits > 0) {
        uint32_t chunk = LMC_MIN(bits, 16u);
        bits -= chunk;
        uint32_t part = (uint32_t)(value >> bits) & ((1u << chunk) - 1);
        result = result << chunk | audio_code_raw(bc, part, chunk);
    }
    return result;
}

/* The bit length of the magnitude: first whether it reaches the guess,
 * then one step at a time up or down. Steps that cannot fail are skipped. */
static uint32_t code_length(audio_coder *c, const audio_bit_coder *bc, const decision_context *ctx, uint32_t length,
                            uint32_t guess, uint32_t max_length) {
    int reaches = guess == 0 || code_decision(c, bc, AUDIO_DECISION_GE, ctx, length >= guess);
    if (reaches) {
        uint32_t j = guess;
        for (; j < max_length; j++) {
            uint32_t step = LMC_MIN(j - guess, AUDIO_STEPS - 1u);
            if (!code_decision(c, bc, AUDIO_DECISION_UP + step, ctx, length > j))
                break;
        }
        return j;
    }
    uint32_t j = guess - 1;
    for (; j > 0; j--) {
        uint32_t step = LMC_MIN(guess - 1 - j, AUDIO_STEPS - 1u);
        if (!code_decision(c, bc, AUDIO_DECISION_DOWN + step, ctx, length < j))
            break;
    }
    return j;
}

int64_t audio_coder_code(audio_coder *c, const audio_bit_coder *bc, int64_t residual, double offset,
                         uint32_t max_length) {
    uint64_t magnitude = residual < 0 ? (uint64_t)0 - (uint64_t)residual : (uint64_t)residual;
    decision_context ctx;
    ctx.scale = scale_of(c->fast);
    ctx.slow_scale = scale_of(c->slow);
    uint32_t guess = LMC_MIN(bit_length((uint64_t)c->fast >> SCALE_SHIFT), max_length);
    uint32_t last = bit_length(c->last_magnitude);
    ctx.relation = last > guess + 1 ? 3 : last > guess ? 2 : last + 1 >= guess ? 1 : 0;

    uint32_t length = code_length(c, bc, &ctx, bit_length(magnitude), guess, max_length);
    uint64_t value = length ? (uint64_t)1 << (length - 1) : 0;
    if (length >= 2) {
        uint32_t node = 1;
        int32_t b = (int32_t)length - 2;
        for (int k = 0; k < 2 && b >= 0; k++, b--) {
            int bit = code_decision(c, bc, AUDIO_DECISION_MANTISSA + length * AUDIO_MANTISSA_NODES + node, &ctx,
                                    (int)(magnitude >> b & 1));
            value |= (uint64_t)bit << b;
            node = node * 2 + (uint32_t)bit;
        }
        if (b >= 0)
            value |= code_raw_bits(bc, magnitude, (uint32_t)b + 1);
    }
    int negative = 0;
    if (value) {
        decision_context sign_ctx = ctx;
        sign_ctx.slow_scale = offset < -0.25 ? 0 : offset < 0.0 ? 1 : offset < 0.25 ? 2 : 3;
        sign_ctx.relation = c->last_sign;
        uint32_t cls = ctx.scale < 8 ? 0 : ctx.scale < 16 ? 1 : ctx.scale < 24 ? 2 : 3;
        negative = code_decision(c, bc, AUDIO_DECISION_SIGN + cls, &sign_ctx, residual < 0);
        c->last_sign = 1 + (uint32_t)negative;
    } else {
        c->last_sign = 0;
    }
    c->last_magnitude = value;
    int64_t scaled = (int64_t)(value << SCALE_SHIFT);
    c->fast += (scaled - c->fast) >> c->fast_shift;
    c->slow += (scaled - c->slow) >> c->slow_shift;
    return negative ? -(int64_t)value : (int64_t)value;
}

int audio_coder_flag(audio_coder *c, const audio_bit_coder *bc, int bit) {
    bit = code_bit(bc, state_map_p16(c->flag_entry), bit);
    state_map_update_limited(&c->flag_entry, bit, c->tables->reciprocal, FLAG_LIMIT);
    return bit;
}

/* ---- Training statistics ---- */

void audio_coder_collect(audio_coder *c, audio_stats *stats) {
    c->stats = stats;
}

void audio_coder_finish_stats(const audio_coder *c, audio_stats *stats) {
    for (uint32_t d = 0; d < AUDIO_DECISIONS; d++) {
        if (!c->uses[d])
            continue;
        for (int k = 0; k < AUDIO_CODER_INPUTS; k++)
            stats->mixer_sum[d * AUDIO_CODER_INPUTS + k] += c->weights[d][k];
        stats->mixer_streams[d]++;
    }
}
