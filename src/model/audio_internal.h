/*
 * The audio sample coder's parts (audio.c, audio_params.c, audio_predict.c,
 * audio_coder.c): the parameters a model file supplies, the per-channel
 * predictor and the residual coder.
 *
 * Determinism: the predictor computes in double precision, but only with
 * IEEE-754 +, -, *, / and sqrt (correctly rounded everywhere), never
 * contracted into FMA (the build uses -ffp-contract=off), and every sum in
 * a fixed order written out in the code (dot products run four lanes, see
 * audio_predict.c). Its output is rounded to an integer before anything reaches a
 * probability; the residual coder is integer arithmetic only. So encoder
 * and decoder compute the same predictions on every machine, compiler and
 * thread count.
 */
#ifndef LMC_AUDIO_INTERNAL_H
#define LMC_AUDIO_INTERNAL_H

#include <stdint.h>

#include "coder/coder.h"
#include "model/cm_kit.h"
#include "model/model.h"

/* ---- Limits of the format (a model file outside them is refused) ---- */
#define AUDIO_MAX_OWN 32          /* own past samples in the least-squares stage */
#define AUDIO_MAX_CROSS 32        /* samples of the previous channel in it */
#define AUDIO_MAX_INPUTS (AUDIO_MAX_OWN + AUDIO_MAX_CROSS)
#define AUDIO_STAGES 3            /* cascaded NLMS filters */
#define AUDIO_MAX_PREDICTORS 2    /* channel predictors whose predictions are mixed (model version 2) */
#define AUDIO_MAX_TAPS 2048       /* per NLMS filter */
/* Setting up a stream's model costs about as much as coding a thousand
 * frames, so segments are not shorter (hostile payloads included). */
#define AUDIO_MIN_SEGMENT_FRAMES 1024

/* ---- The residual coder's decisions and contexts ----
 * A residual e is coded as its magnitude's bit length n (0 for e = 0)
 * relative to a guess from the recent residuals (is n >= guess, then how
 * far up or down, one binary decision per step), the two bits below the
 * leading one, the other bits as they are, and the sign. */
#define AUDIO_MAX_LENGTH 34                      /* room for bit lengths 0..34 (residuals use up to 32) */
#define AUDIO_STEPS 24                           /* up/down steps with their own contexts */
#define AUDIO_MANTISSA_NODES 4                   /* the two modelled bits' tree: nodes 1..3 */
#define AUDIO_SIGN_CLASSES 4
enum {
    AUDIO_DECISION_GE = 0,
    AUDIO_DECISION_UP = 1,
    AUDIO_DECISION_DOWN = AUDIO_DECISION_UP + AUDIO_STEPS,
    AUDIO_DECISION_MANTISSA = AUDIO_DECISION_DOWN + AUDIO_STEPS,
    AUDIO_DECISION_SIGN = AUDIO_DECISION_MANTISSA + (AUDIO_MAX_LENGTH + 1) * AUDIO_MANTISSA_NODES,
    AUDIO_DECISIONS = AUDIO_DECISION_SIGN + AUDIO_SIGN_CLASSES,
};
#define AUDIO_SCALES 160          /* recent residual size, 4 steps per octave */
#define AUDIO_RELATIONS 4         /* the last residual against the recent ones */
#define AUDIO_CODER_INPUTS 4      /* three context maps and a bias */
#define AUDIO_APM_SCALES 20

/* Map i of a decision: contexts per decision. */
#define AUDIO_MAP0_SIZE ((uint32_t)AUDIO_DECISIONS * AUDIO_SCALES)   /* fast scale */
#define AUDIO_MAP1_SIZE ((uint32_t)AUDIO_DECISIONS * AUDIO_SCALES)   /* slow scale */
#define AUDIO_MAP2_SIZE ((uint32_t)AUDIO_DECISIONS * (AUDIO_SCALES / 2) * AUDIO_RELATIONS)
#define AUDIO_PRIOR_SIZE (AUDIO_MAP0_SIZE + AUDIO_MAP1_SIZE + AUDIO_MAP2_SIZE)

/* ---- Parameters (model file, audio_params.c) ---- */
typedef struct {
    /* Least-squares stage: recursive weighted least squares over the
     * channel's last `own` samples and `cross` samples of the previous
     * channel (from `lookahead` frames ahead down), forgetting factor
     * lambda, solved every `interval` samples. Each sample's weight is
     * 1 / (recent mean |error| + error_offset) (iteratively reweighted). */
    uint32_t own, cross, lookahead, interval;
    double lambda, regularisation, error_decay, error_offset;
    /* NLMS cascade on the least-squares residual; power_decay weights the
     * inputs' power in the step normalisation (tap i by (i + 1)^-decay,
     * given as a table). */
    uint32_t taps[AUDIO_STAGES];
    double mu[AUDIO_STAGES];
    double stage_rate;             /* sign-sign adaptation of the stage weights */
    double *power_weight[AUDIO_STAGES]; /* taps[i] weights each (owned) */
    double power_weight_sum[AUDIO_STAGES];
} audio_predictor_params;

typedef struct {
    uint32_t segment_frames;       /* frames per independently coded segment (encoder) */
    /* Every channel runs `predictors` predictors; with two, the prediction
     * is the mix of theirs (audio_mixer), mix_rate its adaptation step. */
    audio_predictor_params predictor[AUDIO_MAX_PREDICTORS];
    uint32_t predictors;
    double mix_rate;
    /* Residual coder. */
    uint32_t fast_shift, slow_shift;  /* recent |residual| averages move 2^-shift */
    uint32_t map_limit, mixer_rate;
    uint32_t prior_count;          /* confidence given to the trained probabilities */
    const int16_t *prior;          /* AUDIO_PRIOR_SIZE stretched probabilities, or NULL */
    const int32_t *mixer_start;    /* AUDIO_DECISIONS x AUDIO_CODER_INPUTS, or NULL */
} audio_params;

/* Reads and checks the parameters of an LMC_FAMILY_AUDIO model. */
lmc_status audio_params_load(const lmc_model *model, audio_params *params, lmc_message *message);
void audio_params_free(audio_params *params);

/* ---- Predictor (audio_predict.c) ---- */
typedef struct audio_predictor audio_predictor;

lmc_status audio_predictor_create(const audio_predictor_params *params, int with_cross, audio_predictor **out);
void audio_predictor_free(audio_predictor *p);
/* The prediction of the next sample; `inputs` points at the least-squares
 * inputs to fill first (own samples newest first, then the cross window). */
double *audio_predictor_inputs(audio_predictor *p);
double audio_predictor_predict(audio_predictor *p);
void audio_predictor_update(audio_predictor *p, int64_t sample);

/* The mix of two predictions a + w (b - a), w adapted by NLMS on the mixed
 * prediction's error (audio_predict.c). */
typedef struct {
    double weight, power, rate;
    double a, b, mixed;
} audio_mixer;

void audio_mixer_init(audio_mixer *m, double rate);
double audio_mixer_mix(audio_mixer *m, double a, double b);
void audio_mixer_update(audio_mixer *m, int64_t sample);

/* ---- Residual coder (audio_coder.c) ---- */
typedef struct {
    lmc_rc_encoder *encoder; /* exactly one of the two is set */
    lmc_rc_decoder *decoder;
} audio_bit_coder;

typedef struct audio_coder audio_coder;

lmc_status audio_coder_create(const audio_params *params, const lmc_cm_tables *tables, audio_coder **out);
void audio_coder_free(audio_coder *c);
/* Codes (or, decoding, returns) a residual. `offset` is where the exact
 * prediction lies from the rounded one, in [-1/2, 1/2] (a context for the
 * sign). Every residual's magnitude is below 2^max_length (a decoded one
 * too, whatever the payload). */
int64_t audio_coder_code(audio_coder *c, const audio_bit_coder *bc, int64_t residual, double offset,
                         uint32_t max_length);
/* One bit of side information (the block's wasted-bits flag) with its own
 * adaptive probability; raw bits (at most 16) coded as they are. */
int audio_coder_flag(audio_coder *c, const audio_bit_coder *bc, int bit);
uint32_t audio_code_raw(const audio_bit_coder *bc, uint32_t value, unsigned bits);

/* ---- Training statistics (tools/lmc_audio_eval --stats) ----
 * What train/train_audio.py fits the model's priors to: how often each
 * context of the coder's maps saw a 0 and a 1, and the mixers' weights at
 * the end of every stream (summed). */
typedef struct {
    uint64_t (*counts)[2];  /* AUDIO_PRIOR_SIZE */
    int64_t *mixer_sum;     /* AUDIO_DECISIONS * AUDIO_CODER_INPUTS */
    uint64_t *mixer_streams; /* AUDIO_DECISIONS: streams that used each weight set */
} audio_stats;

/* From now on, counts every decision the coder codes into *stats. */
void audio_coder_collect(audio_coder *c, audio_stats *stats);
/* At the end of a stream: adds the weights of every mixer it used. */
void audio_coder_finish_stats(const audio_coder *c, audio_stats *stats);

/* lmc_audio_encode on one thread, adding to *stats (audio.c). */
lmc_status audio_encode_with_stats(const lmc_model *model, const lmc_audio_shape *shape, const int32_t *samples,
                                   lmc_buf *out, audio_stats *stats, lmc_message *message);

#endif /* LMC_AUDIO_INTERNAL_H */
