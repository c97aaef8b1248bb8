/*
 * The audio predictor of one channel: a recursive weighted least-squares
 * stage (the channel's own past and the previous channel around the
 * current frame) followed by a cascade of normalised LMS filters on its
 * residual, in the manner of OptimFROG, Monkey's Audio and Sac.
 *
 *   - Least squares: the covariance of the inputs and their correlation
 *     with the sample are kept with exponential forgetting (lambda); each
 *     sample counts with weight 1 / (recent mean |error| + offset), which
 *     approximates a least-absolute-error fit (loud, badly predicted
 *     stretches do not dominate). Every `interval` samples the normal
 *     equations are solved by Cholesky decomposition.
 *   - Cascade: stage i predicts what stages 0..i-1 left of the
 *     least-squares residual from its own past (long filters see pitch
 *     periods, short ones track fast changes). The stages' outputs are
 *     summed with weights adapted by the sign-sign rule.
 *
 * Version-2 models run two such predictors per channel (the second's least
 * squares forgets slowly over a longer window: stationary music) and mix
 * their predictions with one weight adapted by NLMS (audio_mixer). Mixing
 * the final predictions beats mixing the two least-squares outputs before
 * one cascade (0.25% against 0.04% smaller on the corpus).
 *
 * Arithmetic: see audio_internal.h (double precision, fixed order).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/audio_internal.h"

#define NLMS_EPSILON 1e-3 /* keeps the step finite on digital silence */
/* The mixer: starts halfway, may extrapolate a little (which helps) but
 * not run away; its step is normalised by the recent mean square
 * difference of the two predictions (+1, against silence). */
#define MIX_START 0.5
#define MIX_LOW (-0.5)
#define MIX_HIGH 1.5
#define MIX_POWER_DECAY 0.99

typedef struct {
    uint32_t taps;
    double step;          /* mu * (sum of power weights) / taps */
    const double *power_weight;
    double *weights;
    double *history;      /* 2 * taps: the window history[pos .. pos + taps), newest first */
    uint32_t pos;
    double prediction;
} nlms_filter;

struct audio_predictor {
    /* Least-squares stage. */
    uint32_t n;                   /* inputs */
    double lambda, regularisation, error_decay, error_offset;
    uint32_t interval, countdown;
    double *inputs, *covariance, *factor, *correlation, *solution; /* n, n*n, n*n, n, n */
    double error_mean;
    double ls_prediction;
    /* Cascade. */
    nlms_filter stage[AUDIO_STAGES];
    double stage_weight[AUDIO_STAGES];
    double stage_rate;
    double prediction;
    void *block;                  /* every array above, one allocation */
};

/* Fixed-order dot product: four lanes, combined as (l0 + l1) + (l2 + l3),
 * then the tail in order. */
static inline double dot(const double *a, const double *b, int n) {
    double l0 = 0.0, l1 = 0.0, l2 = 0.0, l3 = 0.0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        l0 += a[i] * b[i];
        l1 += a[i + 1] * b[i + 1];
        l2 += a[i + 2] * b[i + 2];
        l3 += a[i + 3] * b[i + 3];
    }
    double sum = (l0 + l1) + (l2 + l3);
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

/* sum weight[i] * x[i]^2 in the same lane order as dot. */
static double weighted_power(const double *weight, const double *x, int n) {
    double l0 = 0.0, l1 = 0.0, l2 = 0.0, l3 = 0.0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        l0 += weight[i] * (x[i] * x[i]);
        l1 += weight[i + 1] * (x[i + 1] * x[i + 1]);
        l2 += weight[i + 2] * (x[i + 2] * x[i + 2]);
        l3 += weight[i + 3] * (x[i + 3] * x[i + 3]);
    }
    double sum = (l0 + l1) + (l2 + l3);
    for (; i < n; i++)
        sum += weight[i] * (x[i] * x[i]);
    return sum;
}

/* y[j] += f * x[j] for j < n: element by element (four at a time so that
 * the compiler vectorises it; the result of each element is the same). */
static inline void add_scaled(double *restrict y, const double *restrict x, double f, uint32_t n) {
    uint32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        y[j] += f * x[j];
        y[j + 1] += f * x[j + 1];
        y[j + 2] += f * x[j + 2];
        y[j + 3] += f * x[j + 3];
    }
    for (; j < n; j++)
        y[j] += f * x[j];
}

/* y[j] = a * y[j] + f * x[j] for j < n, the same way. */
static inline void decay_add_scaled(double *restrict y, double a, const double *restrict x, double f, uint32_t n) {
    uint32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        y[j] = a * y[j] + f * x[j];
        y[j + 1] = a * y[j + 1] + f * x[j + 1];
        y[j + 2] = a * y[j + 2] + f * x[j + 2];
        y[j + 3] = a * y[j + 3] + f * x[j + 3];
    }
    for (; j < n; j++)
        y[j] = a * y[j] + f * x[j];
}

/* ---- Least squares ----
 * The covariance is kept as its upper triangle (row i, columns j >= i), and
 * the Cholesky factor U (covariance + regularisation I = U^T U) overwrites
 * a copy of it: every inner loop then runs along a row, element by
 * element, so the compiler may vectorise it without changing any result
 * (each element is updated by k = 0, 1, ... in that order). */

/* Factors the copy in p->factor; 0 if the matrix is not positive definite
 * (silence, or inputs that are exact copies of each other). */
static int ls_factor(audio_predictor *p) {
    const uint32_t n = p->n;
    double *u = p->factor;
    memcpy(u, p->covariance, (size_t)n * n * sizeof *u);
    for (uint32_t k = 0; k < n; k++) {
        double *row_k = u + k * n;
        double pivot = row_k[k] + p->regularisation;
        if (!(pivot > 0.0))
            return 0;
        pivot = sqrt(pivot);
        row_k[k] = pivot;
        const double inverse = 1.0 / pivot;
        for (uint32_t j = k + 1; j < n; j++)
            row_k[j] *= inverse;
        for (uint32_t i = k + 1; i < n; i++)
            add_scaled(u + i * n + i, row_k + i, -row_k[i], n - i);
    }
    return 1;
}

/* Solves U^T U w = correlation; keeps the old solution if the factoring fails. */
static void ls_solve(audio_predictor *p) {
    const uint32_t n = p->n;
    const double *u = p->factor;
    if (!ls_factor(p))
        return;
    double y[AUDIO_MAX_INPUTS];
    memcpy(y, p->correlation, n * sizeof *y);
    for (uint32_t k = 0; k < n; k++) { /* U^T y = correlation, column by column */
        const double *row_k = u + k * n;
        y[k] /= row_k[k];
        for (uint32_t i = k + 1; i < n; i++)
            y[i] -= row_k[i] * y[k];
    }
    for (uint32_t i = n; i-- > 0;) { /* U w = y */
        const double *row_i = u + i * n;
        p->solution[i] = (y[i] - dot(row_i + i + 1, p->solution + i + 1, (int)(n - 1 - i))) / row_i[i];
    }
}

static void ls_update(audio_predictor *p, double sample) {
    const uint32_t n = p->n;
    double error = sample - p->ls_prediction;
    p->error_mean = p->error_decay * p->error_mean + (1.0 - p->error_decay) * fabs(error);
    double weight = (1.0 - p->lambda) / (p->error_mean + p->error_offset);
    for (uint32_t i = 0; i < n; i++) {
        double xi = p->inputs[i] * weight;
        decay_add_scaled(p->covariance + i * n + i, p->lambda, p->inputs + i, xi, n - i);
        p->correlation[i] = p->lambda * p->correlation[i] + xi * sample;
    }
    if (--p->countdown == 0) {
        p->countdown = p->interval;
        ls_solve(p);
    }
}

/* ---- NLMS ---- */

static double nlms_predict(nlms_filter *f) {
    f->prediction = dot(f->weights, f->history + f->pos, (int)f->taps);
    return f->prediction;
}

static void nlms_update(nlms_filter *f, double target) {
    const double *x = f->history + f->pos;
    double power = weighted_power(f->power_weight, x, (int)f->taps);
    double gain = f->step * (target - f->prediction) / (power + NLMS_EPSILON);
    add_scaled(f->weights, x, gain, f->taps);
    if (f->pos == 0) { /* slide the newest taps - 1 values to the top half */
        memmove(f->history + f->taps + 1, f->history, (f->taps - 1) * sizeof *f->history);
        f->pos = f->taps + 1;
    }
    f->history[--f->pos] = target;
}

/* ---- The channel predictor ---- */

lmc_status audio_predictor_create(const audio_predictor_params *params, int with_cross, audio_predictor **out) {
    audio_predictor *p = calloc(1, sizeof *p);
    if (!p)
        return LMC_ERR_NOMEM;
    p->n = params->own + (with_cross ? params->cross : 0);
    size_t doubles = (size_t)p->n * (3 + 2 * p->n);
    for (int i = 0; i < AUDIO_STAGES; i++)
        doubles += 3 * (size_t)params->taps[i];
    p->block = calloc(doubles, sizeof(double));
    if (!p->block) {
        free(p);
        return LMC_ERR_NOMEM;
    }
    double *next = p->block;
    p->inputs = next, next += p->n;
    p->correlation = next, next += p->n;
    p->solution = next, next += p->n;
    p->covariance = next, next += (size_t)p->n * p->n;
    p->factor = next, next += (size_t)p->n * p->n;
    p->lambda = params->lambda;
    p->regularisation = params->regularisation;
    p->error_decay = params->error_decay;
    p->error_offset = params->error_offset;
    p->interval = p->countdown = params->interval;
    for (int i = 0; i < AUDIO_STAGES; i++) {
        nlms_filter *f = &p->stage[i];
        f->taps = params->taps[i];
        f->step = params->mu[i] * params->power_weight_sum[i] / f->taps;
        f->power_weight = params->power_weight[i];
        f->weights = next, next += f->taps;
        f->history = next, next += 2 * (size_t)f->taps;
        f->pos = f->taps;
        p->stage_weight[i] = 1.0;
    }
    p->stage_rate = params->stage_rate;
    *out = p;
    return LMC_OK;
}

void audio_predictor_free(audio_predictor *p) {
    if (!p)
        return;
    free(p->block);
    free(p);
}

double *audio_predictor_inputs(audio_predictor *p) {
    return p->inputs;
}

double audio_predictor_predict(audio_predictor *p) {
    p->ls_prediction = dot(p->solution, p->inputs, (int)p->n);
    double prediction = p->ls_prediction;
    for (int i = 0; i < AUDIO_STAGES; i++)
        prediction += p->stage_weight[i] * nlms_predict(&p->stage[i]);
    p->prediction = prediction;
    return prediction;
}

static double sign_of(double x) {
    return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : 0.0;
}

void audio_predictor_update(audio_predictor *p, int64_t sample) {
    double value = (double)sample;
    ls_update(p, value);
    double target = value - p->ls_prediction;
    double error_sign = sign_of(value - p->prediction);
    for (int i = 0; i < AUDIO_STAGES; i++) {
        nlms_filter *f = &p->stage[i];
        nlms_update(f, target);
        p->stage_weight[i] += p->stage_rate * error_sign * sign_of(f->prediction);
        target -= p->stage_weight[i] * f->prediction;
    }
}

/* ---- Mixing two predictors ---- */

void audio_mixer_init(audio_mixer *m, double rate) {
    memset(m, 0, sizeof *m);
    m->weight = MIX_START;
    m->rate = rate;
}

double audio_mixer_mix(audio_mixer *m, double a, double b) {
    m->a = a;
    m->b = b;
    m->mixed = a + m->weight * (b - a);
    return m->mixed;
}

void audio_mixer_update(audio_mixer *m, int64_t sample) {
    double difference = m->b - m->a;
    m->power = MIX_POWER_DECAY * m->power + (1.0 - MIX_POWER_DECAY) * (difference * difference);
    double weight = m->weight + m->rate * ((double)sample - m->mixed) * difference / (m->power + 1.0);
    m->weight = weight < MIX_LOW ? MIX_LOW : weight > MIX_HIGH ? MIX_HIGH : weight;
}
