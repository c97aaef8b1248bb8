/*
 * The audio coder's parameters from an LMC_FAMILY_AUDIO model file.
 *
 * Metadata "lmc.audio.*" holds the predictor's and coder's settings (each
 * key optional, with the default below; a key of the wrong type or out of
 * range makes the model invalid). Two optional tensors hold what was
 * fitted to training audio:
 *   audio.coder.prior  I16 [AUDIO_PRIOR_SIZE]: the starting probability of
 *                      every context of the coder's maps, stretched
 *                      (ln(p / (1 - p)) * 256, within +-2047);
 *   audio.coder.mixer  I32 [AUDIO_CODER_INPUTS, AUDIO_DECISIONS]: the
 *                      mixers' starting weights (16.16 fixed point).
 * train/train_audio.py writes them; docs: models/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/detmath.h"
#include "model/audio_internal.h"

#define AUDIO_FORMAT_VERSION 2 /* the newest model version read */

typedef struct {
    const lmc_model *model;
    lmc_message *message;
    lmc_status status;
} reader;

static void invalid(reader *r, const char *key, const char *what) {
    if (r->status == LMC_OK)
        r->status = lmc_fail(r->message, LMC_ERR_MODEL_INVALID, "audio model %s: %s %s", r->model->name, key, what);
}

static uint32_t read_u32(reader *r, const char *key, uint32_t fallback, uint32_t lo, uint32_t hi) {
    uint32_t v = fallback;
    if (lmc_gguf_find(r->model->gguf, key) >= 0 && lmc_gguf_get_u32(r->model->gguf, key, &v) != 0) {
        invalid(r, key, "is not an unsigned integer");
        return fallback;
    }
    if (v < lo || v > hi) {
        invalid(r, key, "is out of range");
        return fallback;
    }
    return v;
}

/* A float in [lo, hi] (NaN is refused). */
static double read_f32(reader *r, const char *key, double fallback, double lo, double hi) {
    float v = (float)fallback;
    if (lmc_gguf_find(r->model->gguf, key) >= 0 && lmc_gguf_get_f32(r->model->gguf, key, &v) != 0) {
        invalid(r, key, "is not a float");
        return fallback;
    }
    if (!(v >= lo && v <= hi)) {
        invalid(r, key, "is out of range");
        return fallback;
    }
    return v;
}

/* The tensor `name` if present: it must have `type` and exactly `elements`
 * values; NULL if absent or invalid (then r->status says which). */
static const lmc_gguf_tensor *find_tensor(reader *r, const char *name, lmc_ggml_type type, uint64_t elements,
                                          uint64_t rows) {
    const lmc_gguf_tensor *t = lmc_gguf_tensor_find(r->model->gguf, name);
    if (!t)
        return NULL;
    uint32_t element_bytes = type == LMC_GGML_I16 ? 2 : 4;
    int shape_ok = rows == 1 ? t->n_dims == 1 : t->n_dims == 2 && t->ne[1] == rows;
    if (t->type != type || !shape_ok || t->n_elements != elements || t->n_bytes != elements * element_bytes) {
        invalid(r, name, "has the wrong type or shape");
        return NULL;
    }
    return t;
}

static lmc_status load_prior(reader *r, audio_params *params) {
    const lmc_gguf_tensor *t = find_tensor(r, "audio.coder.prior", LMC_GGML_I16, AUDIO_PRIOR_SIZE, 1);
    if (!t)
        return r->status;
    int16_t *prior = malloc((size_t)AUDIO_PRIOR_SIZE * sizeof *prior);
    if (!prior)
        return lmc_fail(r->message, LMC_ERR_NOMEM, "audio: out of memory");
    const uint8_t *bytes = t->data;
    for (uint32_t i = 0; i < AUDIO_PRIOR_SIZE; i++) {
        int16_t v = (int16_t)(uint16_t)(bytes[2 * i] | bytes[2 * i + 1] << 8);
        if (v < -LOGISTIC_LIMIT || v > LOGISTIC_LIMIT) {
            free(prior);
            invalid(r, "audio.coder.prior", "holds a value out of range");
            return r->status;
        }
        prior[i] = v;
    }
    params->prior = prior;
    return LMC_OK;
}

static lmc_status load_mixer(reader *r, audio_params *params) {
    const uint64_t n = (uint64_t)AUDIO_DECISIONS * AUDIO_CODER_INPUTS;
    const lmc_gguf_tensor *t = find_tensor(r, "audio.coder.mixer", LMC_GGML_I32, n, AUDIO_DECISIONS);
    if (!t)
        return r->status;
    if (t->ne[0] != AUDIO_CODER_INPUTS) {
        invalid(r, "audio.coder.mixer", "has the wrong type or shape");
        return r->status;
    }
    int32_t *weights = malloc(n * sizeof *weights);
    if (!weights)
        return lmc_fail(r->message, LMC_ERR_NOMEM, "audio: out of memory");
    for (uint64_t i = 0; i < n; i++) {
        weights[i] = (int32_t)lmc_get_le32((const uint8_t *)t->data + 4 * i);
        if (weights[i] < -MIXER_WEIGHT_LIMIT || weights[i] > MIXER_WEIGHT_LIMIT) {
            free(weights);
            invalid(r, "audio.coder.mixer", "holds a weight out of range");
            return r->status;
        }
    }
    params->mixer_start = weights;
    return LMC_OK;
}

/* Tap i's share of the step normalisation: (i + 1)^-decay (detmath, so
 * the same on every machine). */
static lmc_status build_power_weights(audio_predictor_params *params, double decay, lmc_message *message) {
    for (int s = 0; s < AUDIO_STAGES; s++) {
        double *w = malloc(params->taps[s] * sizeof *w);
        if (!w)
            return lmc_fail(message, LMC_ERR_NOMEM, "audio: out of memory");
        double sum = 0.0;
        for (uint32_t i = 0; i < params->taps[s]; i++) {
            w[i] = decay == 0.0 ? 1.0 : lmc_exp(-decay * lmc_log((double)(i + 1)));
            sum += w[i];
        }
        params->power_weight[s] = w;
        params->power_weight_sum[s] = sum;
    }
    return LMC_OK;
}

/* A predictor's settings: keys `prefix` + name, defaulting to *fallback's
 * values (the first predictor's for the second). */
typedef struct {
    audio_predictor_params p;
    double power_decay;
} predictor_settings;

static const predictor_settings builtin_predictor = {
    .p = {.own = 24, .cross = 16, .lookahead = 4, .interval = 4, .lambda = 0.995, .regularisation = 0.001,
          .error_decay = 0.3, .error_offset = 0.5, .taps = {512, 64, 8}, .mu = {0.2, 0.06, 0.06},
          .stage_rate = 0.005},
    .power_decay = 0.8,
};

static void read_predictor(reader *r, const char *prefix, const predictor_settings *fallback,
                           predictor_settings *out) {
    static const char *const taps_key[AUDIO_STAGES] = {"stage0.taps", "stage1.taps", "stage2.taps"};
    static const char *const mu_key[AUDIO_STAGES] = {"stage0.mu", "stage1.mu", "stage2.mu"};
    const audio_predictor_params *f = &fallback->p;
    audio_predictor_params *p = &out->p;
    char key[64];
#define KEY(name) (snprintf(key, sizeof key, "%s%s", prefix, name), key)
    p->own = read_u32(r, KEY("ls.own"), f->own, 1, AUDIO_MAX_OWN);
    p->cross = read_u32(r, KEY("ls.cross"), f->cross, 0, AUDIO_MAX_CROSS);
    p->lookahead = read_u32(r, KEY("ls.lookahead"), f->lookahead, 0, AUDIO_MAX_CROSS);
    p->interval = read_u32(r, KEY("ls.interval"), f->interval, 1, 1024);
    p->lambda = read_f32(r, KEY("ls.lambda"), f->lambda, 0.5, 0.999999);
    p->regularisation = read_f32(r, KEY("ls.regularisation"), f->regularisation, 0.0, 1e9);
    p->error_decay = read_f32(r, KEY("ls.error_decay"), f->error_decay, 0.0, 0.999999);
    p->error_offset = read_f32(r, KEY("ls.error_offset"), f->error_offset, 1e-6, 1e9);
    for (int s = 0; s < AUDIO_STAGES; s++) {
        p->taps[s] = read_u32(r, KEY(taps_key[s]), f->taps[s], 1, AUDIO_MAX_TAPS);
        p->mu[s] = read_f32(r, KEY(mu_key[s]), f->mu[s], 0.0, 16.0);
    }
    out->power_decay = read_f32(r, KEY("stage.power_decay"), fallback->power_decay, 0.0, 4.0);
    p->stage_rate = read_f32(r, KEY("stage.rate"), f->stage_rate, 0.0, 1.0);
#undef KEY
}

/* Version 1: one predictor. Version 2 may add a second one ("lmc.audio.p2."
 * keys) whose prediction is mixed with the first's. */
static void read_settings(reader *r, audio_params *p, predictor_settings settings[AUDIO_MAX_PREDICTORS]) {
    uint32_t version = read_u32(r, "lmc.audio.version", 1, 1, AUDIO_FORMAT_VERSION);
    p->segment_frames = read_u32(r, "lmc.audio.segment_frames", 1u << 20, AUDIO_MIN_SEGMENT_FRAMES, 1u << 30);
    p->predictors = read_u32(r, "lmc.audio.predictors", 1, 1, version >= 2 ? AUDIO_MAX_PREDICTORS : 1);
    p->mix_rate = read_f32(r, "lmc.audio.mix.rate", 0.01, 0.0, 1.0);
    read_predictor(r, "lmc.audio.", &builtin_predictor, &settings[0]);
    for (uint32_t k = 1; k < p->predictors; k++)
        read_predictor(r, "lmc.audio.p2.", &settings[0], &settings[k]);
    p->fast_shift = read_u32(r, "lmc.audio.coder.fast_shift", 3, 1, 20);
    p->slow_shift = read_u32(r, "lmc.audio.coder.slow_shift", 5, 1, 20);
    p->map_limit = read_u32(r, "lmc.audio.coder.map_limit", 255, 1, STATE_MAP_LIMIT);
    p->mixer_rate = read_u32(r, "lmc.audio.coder.mixer_rate", 24, 1, 1024);
    p->prior_count = read_u32(r, "lmc.audio.coder.prior_count", 0, 0, STATE_MAP_LIMIT);
}

lmc_status audio_params_load(const lmc_model *model, audio_params *params, lmc_message *message) {
    memset(params, 0, sizeof *params);
    if (!model || model->family != LMC_FAMILY_AUDIO || !model->gguf)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "audio: the model is not an audio model");
    reader r = {model, message, LMC_OK};
    predictor_settings settings[AUDIO_MAX_PREDICTORS];
    read_settings(&r, params, settings);
    lmc_status status = r.status;
    if (status == LMC_OK)
        status = load_prior(&r, params);
    if (status == LMC_OK)
        status = load_mixer(&r, params);
    for (uint32_t k = 0; k < params->predictors && status == LMC_OK; k++) {
        params->predictor[k] = settings[k].p;
        status = build_power_weights(&params->predictor[k], settings[k].power_decay, message);
    }
    if (status != LMC_OK)
        audio_params_free(params);
    return status;
}

void audio_params_free(audio_params *params) {
    free((void *)params->prior);
    free((void *)params->mixer_start);
    for (int k = 0; k < AUDIO_MAX_PREDICTORS; k++)
        for (int s = 0; s < AUDIO_STAGES; s++)
            free(params->predictor[k].power_weight[s]);
    memset(params, 0, sizeof *params);
}
