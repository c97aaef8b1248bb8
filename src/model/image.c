/*
 * The image coder (LMC_FAMILY_IMAGE models): every sample is coded bit by
 * bit, most significant first, by context mixing over a two-dimensional
 * causal neighbourhood.
 *
 * Samples are viewed as 8-bit "channels" interleaved per pixel: a plane of
 * 8-bit (or fewer bits, or palette) samples is one channel; a 16-bit plane
 * is two, its high byte then its low byte. Pixels are coded in raster
 * order and, within a pixel, channel by channel, so a channel sees the rows
 * above, the pixels to its left and the earlier channels of its own pixel.
 *
 * Each sample is predicted by
 *   - classical predictors (W, N, gradients, MED, and for later channels the
 *     earlier channel's local difference carried over), each a context for
 *     an adaptive bit-tree map;
 *   - a blend of predictors weighted by their recent local errors, whose
 *     value and error scale give a parametric (logistic) bit probability
 *     and more contexts;
 * mixed by two gated logistic mixers and refined by two APMs. Everything
 * adapts to the image as it is coded; the model file supplies the mixers'
 * starting weights (trained on photographs, train/train_image.py).
 *
 * Parallel decoding: the image is cut into stripes of whole rows, each
 * coded independently (its own model, no context from the stripe above),
 * so any number of threads decodes them in parallel and the payload does
 * not depend on the thread count.
 *
 * Payload: varint stripe_rows, varint stripe count - 1 sizes, then the
 * stripes' range-coder streams.
 *
 * Video (plane stacks of frames, docs/FORMAT.md): each frame is also
 * predicted from earlier frames at per-block motion vectors; stacks of
 * layout 2 (lmc_video_encode) sample them through 8-tap filters, see
 * up to three of them, and for chroma follow the luma stack; layout 3 also
 * judges its predictors by their errors over a wider neighbourhood, the
 * earlier frames' included (local_errors); layout 4 (error_contexts) gives
 * the least-squares predictor a wider neighbourhood and lets those errors
 * choose mixer weights and APM cells; layout 5 (luma_round5) gives the luma
 * stack's least-squares predictor and blend the motion of the neighbouring
 * blocks (other_hypotheses), damps the mixer inputs of young contexts and
 * lets the mixers' learning rates decay, and (chroma_round5, every 8-bit
 * stack) lets Cb guide Cr and first frames see farther neighbours.
 *
 * A clip's planes are coded together (video_clip, at the end): one
 * parallel loop over the luma stripes, then stripes of Cb and Cr coded
 * frame by frame in turn, a decoder's guided planes waiting for luma's
 * frames (lmc_progress), so with two threads a clip takes about its luma's
 * time.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coder/coder.h"
#include "model/cm_kit.h"
#include "model/model.h"
#include "model/video_codec.h"

/* The steps of coding a sample, inlined into both builds of code_rows
 * (code_rows_avx2: the AVX2 build must not call the portable ones). */
#define SAMPLE_STEP static inline __attribute__((always_inline))

#define MAX_PLANES 4
#define MAX_CHANNELS 8            /* up to 4 planes of 16-bit samples */
#define STRIPE_PIXELS (1u << 18)  /* about this many pixels per stripe */
#define VIDEO_STRIPE_PIXELS (1u << 21)
/* REFERENCE_TAPS stacks: twice as tall, because each stripe's first frame
 * has no reference (a 30-frame 320x240 clip in one stripe, not two: -1.7%). */
#define VIDEO_TAPS_STRIPE_PIXELS (1u << 22)

enum {
    /* Sub-predictors blended by their recent errors. */
    BLEND_PREDICTORS = 7,         /* the last is the least-squares predictor */
    /* Context maps: one per classical prediction, and combinations. */
    PREDICTION_CONTEXTS = 12,
    CROSS_CONTEXTS = 5,           /* from the earlier channel of the pixel */
    COMBINED_CONTEXTS = 8,
    CONTEXTS = PREDICTION_CONTEXTS + CROSS_CONTEXTS + COMBINED_CONTEXTS,
    PARAMETRIC_INPUTS = 2,
    INPUTS = CONTEXTS + PARAMETRIC_INPUTS + 1, /* + bias */
    /* error_contexts: two more logistic inputs, around the least-squares
     * prediction at its own error's scale (foreman -0.5%, mobile -0.1%). */
    LS_INPUTS = 2,
    INPUT_SLOTS = INPUTS + LS_INPUTS,
    ACTIVITY_LEVELS = 8,
    MIXERS = 3,                   /* first layer, each choosing its weights by its own context: */
    MIXER0_SETS = MAX_CHANNELS * 8 * ACTIVITY_LEVELS, /* channel x bit x activity */
    MIXER1_SETS = MAX_CHANNELS * 256,                 /* channel x partial byte */
    MIXER2_SETS = MAX_CHANNELS * 8 * 32,              /* channel x bit x where the blend points */
    MIXER_SETS = MIXER0_SETS + MIXER1_SETS + MIXER2_SETS,
    /* error_contexts: two more mixers, channel x bit x (the least-squares
     * prediction's error level, the predictor of least error), and channel
     * x bit x the pixel's place in its 4x4 block (the transform blocks of a
     * clip decoded from H.264 or the like: -0.1% on mobile). */
    ERROR_SET_CONTEXTS = ACTIVITY_LEVELS * BLEND_PREDICTORS,
    MIXER3_SETS = MAX_CHANNELS * 8 * ERROR_SET_CONTEXTS,
    MIXER4_SETS = MAX_CHANNELS * 8 * 16,
    ALL_MIXER_SETS = MIXER_SETS + MIXER3_SETS + MIXER4_SETS,
    MIXERS_MAX = MIXERS + 2,
    FINAL_INPUTS = MIXERS + 1,    /* the second layer mixes the first's outputs and a bias */
    FINAL_SLOTS = MIXERS_MAX + 1,
    FINAL_SETS = MAX_CHANNELS * 8,
    FINAL_RATE = 6,
    FINAL_START = 65536 / MIXERS,
    APM1_CONTEXTS_PER_CHANNEL = 256,
    APM2_WHERE = 32,              /* where the blend points among the values left */
    APM2_CONTEXTS_PER_CHANNEL = ACTIVITY_LEVELS * APM2_WHERE * 256,
    /* error_contexts: APM1 by how far the predictors spread, where the
     * least-squares prediction points and the bit, not by the partial byte
     * (with the partial byte too: +0.03%, and slower: its cells miss the
     * cache). */
    APM1_SPREAD_CONTEXTS_PER_CHANNEL = ACTIVITY_LEVELS * APM2_WHERE * 8,
    /* error_contexts: a third APM by mixer 3's context, where the blend
     * points and the bit (-0.05%), weighted as APM2 in the average. */
    APM3_CONTEXTS_PER_CHANNEL = ERROR_SET_CONTEXTS * APM2_WHERE * 8,
    SLOT_WORDS = 16,              /* a nibble's 15-node bit tree (+1 spare): one cache line */
    SMALL_MAP_BITS = 14,          /* slots of a prediction's map: values x channels x nibbles */
    LARGE_MAP_BITS = 17,          /* slots of a combined context's map */
    MAP_LIMIT = 127,              /* state maps keep adapting */
    MIXER_RATE = 32,              /* error scale, 16 = 1.0 */
    MIXER_RATE_LOCAL = 20,        /* local_errors (video layout 3): -0.1% */
    /* luma_round5: a weight set's rate starts at MIXER_RATE_ROUND5 +
     * RATE_BOOST and falls towards MIXER_RATE_ROUND5, halfway after
     * RATE_HALF updates of the set (mobile -0.03%). */
    MIXER_RATE_ROUND5 = 14,
    RATE_BOOST = 20,
    RATE_HALF = 4096,
    RATE_STEP_BITS = 6,
    /* luma_round5: a context seen n < YOUNG_COUNT times gives the mixers
     * stretch(p) (n + YOUNG_OFFSET) / (YOUNG_COUNT + YOUNG_OFFSET): a state
     * map's first updates move it far on little evidence (mobile -0.15%). */
    YOUNG_COUNT = 16,
    YOUNG_OFFSET = 2,
    MAP_LIMIT_LOCAL = 1023,       /* local_errors: -0.1% */
    MIXER_START = 1 << 14,        /* 0.25 */
};

/* An online least-squares predictor: weights solving the exponentially
 * forgotten normal equations of the samples seen so far. Doubles in a fixed
 * order of operations (no FMA contraction: -ffp-contract=off), so every
 * machine computes the same predictions. */
#define OLS_MAX_INPUTS 62       /* 7 neighbours and 10 from earlier frames, or (REFERENCE_TAPS) 23 and 6 from
                                 * the luma guide (luma_round5: 3 other hypotheses instead), and
                                 * (error_contexts) 16 farther neighbours, and (chroma_round5) 4 more from
                                 * the luma guide and 6 from a second guide (in a first frame 5, and 4 more
                                 * from the luma guide and 20 more neighbours); 5 from each of two earlier
                                 * channels */
#define OLS_FORGET 0.998        /* weight of the past per sample */
#define OLS_FORGET_WIDE 0.999   /* error_contexts: more inputs want more samples (0.998: +0.15%) */
#define OLS_RIDGE 0.5           /* added to the diagonal: keeps the system solvable */
#define OLS_SOLVE_EVERY 4       /* pixels between solutions: most of its cost */
#define OLS_SOLVE_EVERY_TAPS 8  /* REFERENCE_TAPS, twice the inputs: -18% time for +0.07% size */
#define OLS_SOLVE_EVERY_WIDE 16 /* error_contexts, 46 inputs: -15% time for +0.06% size (mobile) */
#define OLS_SOLVE_EVERY_ROUND5 8 /* chroma_round5 (layout 5), every frame: with the planes coded at the
                                  * same time there is time to spare, and mobile -0.08%, foreman -0.15%
                                  * against 16 (32 for first frames and Cr) cost +11% of the time */

typedef struct {
    int n;
    double covariance[OLS_MAX_INPUTS][OLS_MAX_INPUTS]; /* lower triangle used */
    double target[OLS_MAX_INPUTS];
    double weights[OLS_MAX_INPUTS];
    double inputs[OLS_MAX_INPUTS];
} least_squares;

/* Not inlined: inlined into prepare_sample (layout 5's inputs), GCC kept
 * the sum on the stack, a store and a load per input (+3% of mobile's
 * time); the same operations in the same order either way. */
__attribute__((noinline)) static double ols_predict(least_squares *o, const int *inputs, int n) {
    o->n = n;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        o->inputs[i] = inputs[i];
        sum += o->weights[i] * o->inputs[i];
    }
    return sum;
}

/* Cholesky factorisation into a copy, then two triangular solves; keeps
 * the old weights if the system is not positive definite. The factor is
 * built column by column and kept transposed (lt[k][i] = L[i][k]), so the
 * entries of a column are independent sums that the CPU runs side by side
 * (the vectoriser, element by element); each entry is still summed over k
 * in increasing order, as row by row, so the weights are the same bits. */
static void ols_solve(least_squares *o) {
    double lt[OLS_MAX_INPUTS][OLS_MAX_INPUTS], column[OLS_MAX_INPUTS], z[OLS_MAX_INPUTS];
    int n = o->n;
    for (int j = 0; j < n; j++) {
        double diagonal = o->covariance[j][j] + OLS_RIDGE;
        for (int k = 0; k < j; k++)
            diagonal -= lt[k][j] * lt[k][j];
        if (diagonal <= 1e-9)
            return;
        double pivot = sqrt(diagonal);
        lt[j][j] = pivot;
        for (int i = j + 1; i < n; i++)
            column[i] = o->covariance[i][j] + 0.0; /* as the diagonal's sum starts: -0 becomes +0 */
        for (int k = 0; k < j; k++) {
            double factor = lt[k][j];
            for (int i = j + 1; i < n; i++)
                column[i] -= lt[k][i] * factor;
        }
        for (int i = j + 1; i < n; i++)
            lt[j][i] = column[i] / pivot;
    }
    for (int i = 0; i < n; i++) {
        double sum = o->target[i];
        for (int k = 0; k < i; k++)
            sum -= lt[k][i] * z[k];
        z[i] = sum / lt[i][i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double sum = z[i];
        for (int k = i + 1; k < n; k++)
            sum -= lt[i][k] * o->weights[k];
        o->weights[i] = sum / lt[i][i];
    }
}

static void ols_update(least_squares *o, int value, int solve, double forget) {
    int n = o->n;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++)
            o->covariance[i][j] = forget * o->covariance[i][j] + o->inputs[i] * o->inputs[j];
        o->target[i] = forget * o->target[i] + o->inputs[i] * value;
    }
    if (solve)
        ols_solve(o);
}

/* chroma_round5: the sums of inputs `from` on start from nothing (inputs
 * that meant something else in the first frame). */
static void ols_forget_beyond(least_squares *o, int from) {
    for (int i = from; i < OLS_MAX_INPUTS; i++) {
        memset(o->covariance[i], 0, sizeof o->covariance[i]);
        o->target[i] = 0;
        o->weights[i] = 0;
    }
}

/* Video: each frame's blocks point into the previous frame (the encoder
 * searches; the payload carries the vectors). Vectors are in steps of
 * 1/2^motion_shift pixel; between pixels the reference is interpolated in
 * integers (reference_model: bilinearly, or by 8-tap filters). */
#define MOTION_BLOCK 16
#define MOTION_RANGE 7          /* whole pixels each way; the fraction may add up to one more */
#define MOTION_FINE_STEPS 3     /* fractional refinement: this many steps each way */

typedef struct {
    int8_t dx, dy;              /* in 1/2^motion_shift pixels */
} motion_vector;

/* How the reference frames are sampled. BILINEAR (archives before issue 7):
 * each of the 3x3 reference pixels at its own clamped position, bilinear
 * between pixels, the older frame at twice the vector. TAPS: quarter pixels
 * through HEVC's 8-tap filters (sharp at every phase, so the least-squares
 * weights fit every block whatever its fraction: -3% on a camera pan), the
 * frame extended by repeating its edges, and up to REFERENCES earlier
 * frames, each where the vectors of the frames between lead. */
enum { REFERENCE_BILINEAR = 0, REFERENCE_TAPS = 1 };

/* TAPS: a block's reference in each earlier frame is one window, MARGIN
 * pixels more on every side (the reach of the predictor's inputs). */
#define MARGIN 2
#define WINDOW (MOTION_BLOCK + 2 * MARGIN)
#define WINDOW_SAMPLES (WINDOW * WINDOW)
#define REFERENCES 3            /* a fourth gains 0.03% */

typedef struct {
    uint8_t *pixels;            /* the whole image, channels interleaved */
    uint32_t width, height, channels;
    uint32_t frame_height;      /* rows per frame (video plane stacks); = height for an image */
    motion_vector *motion;      /* video: [frame][block row][block column], else NULL */
    uint32_t blocks_x, blocks_y;
    uint32_t motion_shift;      /* vectors in 1/2^shift pixels */
    uint32_t reference_model;   /* REFERENCE_* */
    uint32_t local_errors;      /* video layout 3 (wide_error) */
    uint32_t error_contexts;    /* video layout 4 (and local_errors) */
    uint32_t luma_round5;       /* video layout 5, the luma stack (and error_contexts) */
    uint32_t chroma_round5;     /* video layout 5 (and error_contexts): chroma and first frames */
    /* REFERENCE_TAPS chroma: the luma stack (8-bit, all of it decoded
     * first), guide_scale_x x guide_scale_y luma pixels a chroma pixel. */
    const uint8_t *guide;
    uint32_t guide_width, guide_frame_height, guide_scale_x, guide_scale_y;
    /* chroma_round5: the clip's earlier chroma stack (U for V, 8-bit, the
     * stack's own geometry), or NULL. */
    const uint8_t *second;
} channel_image;

/* ---- One stripe's adaptive model ---- */

typedef struct {
    const lmc_cm_tables *tables;
    const channel_image *image;
    uint32_t first_row, rows;

    uint32_t *maps;             /* all context maps, one block */
    uint32_t *map[CONTEXTS];    /* each context's map */
    uint32_t map_mask[CONTEXTS];
    uint32_t *slot[CONTEXTS];   /* the current nibble's tree in each map */
    uint32_t key[CONTEXTS];     /* each context's hash for this sample */
    uint32_t *entry[CONTEXTS];

    int32_t inputs[INPUT_SLOTS];
    int32_t (*weights)[INPUT_SLOTS];     /* ALL_MIXER_SETS: the first layer's sets, mixer by mixer */
    int32_t *active[MIXERS_MAX];
    uint32_t p_mixer[MIXERS_MAX];
    int32_t final_weights[FINAL_SETS][FINAL_SLOTS]; /* the first layer's outputs, then the bias */
    int32_t final_inputs[FINAL_SLOTS];
    int mixers, n_inputs;       /* MIXERS and INPUTS, or with error_contexts MIXERS_MAX and INPUT_SLOTS */
    int32_t *final_active;
    uint32_t p_final;
    apm apm1, apm2, apm3;       /* apm3: error_contexts only */

    /* Per channel and column: the blend's sub-predictor errors and its own
     * error, for the row above (odd/even rows alternate). */
    uint16_t *errors;           /* [2][channels][width][BLEND_PREDICTORS + 1] */
    /* local_errors (one channel): the same errors for all of the current
     * frame, and the 3x3 sums of each of the last two frames' (the stripe's
     * frame k in slot k % 2). */
    uint16_t *frame_errors;     /* [frame_height][width][BLEND_PREDICTORS + 1] */
    uint32_t *error_sums;       /* [2][frame_height][width][BLEND_PREDICTORS + 1] */
    int32_t mixer_rate;
    uint32_t map_limit;
    /* luma_round5: each first-layer weight set's updates (saturating), for
     * a learning rate that starts higher and decays (mixer_rate_of). */
    uint16_t *set_updates;      /* [ALL_MIXER_SETS] */
    uint16_t *active_updates[MIXERS_MAX];
    uint8_t rate_boost[65536 >> RATE_STEP_BITS]; /* by updates / 2^RATE_STEP_BITS */
    int32_t young_scale[YOUNG_COUNT];            /* (n + YOUNG_OFFSET) / (YOUNG_COUNT + YOUNG_OFFSET), 16.16 */

    /* The sample being coded. */
    uint32_t channel, c0, bit;
    int32_t blend16;            /* blended prediction in 1/16 */
    int64_t inverse_scale;      /* 2^20 * 256 / (its expected error in 1/16), for logistic_bit */
    uint32_t activity;
    uint32_t sub_prediction[BLEND_PREDICTORS];
    least_squares *ols;         /* one per channel */
    /* error_contexts: the least-squares prediction in 1/16 (corrected by
     * error_feedback; ls16_raw before) and its expected error's inverse
     * scale (as inverse_scale), the contexts of mixers 3 and 4, and how far
     * the sub-predictors spread (a level). */
    int32_t ls16, ls16_raw;
    int64_t ls_inverse_scale;
    least_squares *feedback;    /* error_feedback's fit */
    int16_t *ls_errors;         /* [2][frame_height][width]: value - ls16_raw, the stripe's frame k in slot k % 2 */
    uint32_t error_set, place, spread;

    /* TAPS: the references of the current row of blocks, per block the
     * previous frame's window, then the older frames'. */
    int16_t *windows;           /* [blocks_x][REFERENCES][WINDOW_SAMPLES] */
    uint32_t windows_row;       /* the stack's block row they hold, + 1; 0: none */
    uint32_t references;        /* earlier frames in the windows */
    /* chroma_round5: per block of the current block row, the luma guide's
     * previous frame where the block's vector points, through the 8-tap
     * filters and summed as guide_at sums it, then the second guide's. */
    int16_t *guide_windows;     /* [blocks_x][2][WINDOW_SAMPLES] */
    uint32_t guide_windows_row; /* as windows_row */
    int ls_intra;               /* the first frame's own least-squares inputs are in its sums */
    int second_residual;        /* the second guide's change since the previous frame, or its local contrast */
} stripe_model;

static inline uint8_t pixel_at(const channel_image *im, uint32_t x, uint32_t y, uint32_t c) {
    return im->pixels[((size_t)y * im->width + x) * im->channels + c];
}

static inline int clamp_sample(int v) {
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* The causal neighbourhood of one channel at (x, y); outside the stripe
 * a neighbour takes the value of the nearest one that exists. */
typedef struct {
    int w, n, nw, ne, ww, nn, nne;
} neighbours;

/* The first row of y's frame: no context comes from above it. */
static uint32_t frame_top(const stripe_model *s, uint32_t y) {
    return y - (y - s->first_row) % s->image->frame_height;
}

static neighbours neighbours_at(const stripe_model *s, uint32_t x, uint32_t y, uint32_t c) {
    const channel_image *im = s->image;
    uint32_t top = frame_top(s, y);
    int above = y > top, above2 = y > top + 1;
    int left = x > 0, left2 = x > 1, right = x + 1 < im->width;
    neighbours v;
    v.w = left ? pixel_at(im, x - 1, y, c) : above ? pixel_at(im, x, y - 1, c) : 0;
    v.n = above ? pixel_at(im, x, y - 1, c) : v.w;
    v.nw = above && left ? pixel_at(im, x - 1, y - 1, c) : v.n;
    v.ne = above && right ? pixel_at(im, x + 1, y - 1, c) : v.n;
    v.ww = left2 ? pixel_at(im, x - 2, y, c) : v.w;
    v.nn = above2 ? pixel_at(im, x, y - 2, c) : v.n;
    v.nne = above2 && right ? pixel_at(im, x + 1, y - 2, c) : v.ne;
    return v;
}

static int median3(int a, int b, int c) {
    return LMC_MAX(LMC_MIN(a, b), LMC_MIN(LMC_MAX(a, b), c));
}

/* LOCO-I's median edge detector. */
static int med_predict(const neighbours *v) {
    return median3(v->w, v->n, v->w + v->n - v->nw);
}

static uint16_t *errors_at(stripe_model *s, uint32_t row, uint32_t x, uint32_t c) {
    size_t per_row = (size_t)s->image->channels * s->image->width;
    return s->errors + (((row & 1) * per_row + (size_t)c * s->image->width + x) * (BLEND_PREDICTORS + 1));
}

static motion_vector motion_at(const channel_image *im, uint32_t x, uint32_t y) {
    if (!im->motion)
        return (motion_vector){0, 0};
    uint32_t frame = y / im->frame_height, row = y % im->frame_height;
    return im->motion[((size_t)frame * im->blocks_y + row / MOTION_BLOCK) * im->blocks_x + x / MOTION_BLOCK];
}

static int64_t clamp_index(int64_t v, int64_t high) {
    return v < 0 ? 0 : v > high ? high : v;
}

/* local_errors: sub-predictor i's (or the blend's) error at frame pixel
 * (x, row) of a whole frame's errors or sums. */
static size_t error_index(const channel_image *im, int64_t x, int64_t row, int i) {
    return ((size_t)row * im->width + (size_t)x) * (BLEND_PREDICTORS + 1) + (size_t)i;
}

/* local_errors: the 3x3 sums of slot `slot` around where the vector of
 * (x, y), times `times` (1: the previous frame, 2: the one before), points,
 * rounded to whole pixels and clamped into the frame. */
static uint32_t earlier_error(const stripe_model *s, uint32_t x, uint32_t y, int i, uint32_t slot, int times) {
    const channel_image *im = s->image;
    motion_vector mv = motion_at(im, x, y);
    int64_t px = (int64_t)x + ((times * mv.dx + 2) >> 2);
    int64_t py = (int64_t)((y - s->first_row) % im->frame_height) + ((times * mv.dy + 2) >> 2);
    const uint32_t *sums = s->error_sums + (size_t)slot * im->frame_height * im->width * (BLEND_PREDICTORS + 1);
    return sums[error_index(im, clamp_index(px, im->width - 1), clamp_index(py, im->frame_height - 1), i)];
}

/* local_errors: an estimate of sub-predictor i's (or the blend's) error at
 * (x, y) in local_error's units (a sum of four), from its errors at W, N,
 * NW and NE (`near`, their sum), at WW, NN, NNE and NWW, and at the 3x3
 * pixels of each of the last two frames where the motion leads, the older
 * frame's at half weight. Four samples are too few: in noise the blend
 * weighted its predictors by chance (with blend_weight's 1 / e^4: -2.6% on
 * mobile, -0.6% on foreman; the older frame another -0.25% on mobile). */
static uint32_t wide_error(const stripe_model *s, uint32_t x, uint32_t y, int i, uint32_t near) {
    static const int far[4][2] = {{-2, 0}, {0, -2}, {1, -2}, {-2, -1}};
    const channel_image *im = s->image;
    uint32_t row = (y - s->first_row) % im->frame_height, frame = (y - s->first_row) / im->frame_height;
    uint64_t sum = 2 * (uint64_t)near, weight = 8;
    for (int k = 0; k < 4; k++) {
        int64_t fx = (int64_t)x + far[k][0], fy = (int64_t)row + far[k][1];
        if (fx >= 0 && fx < im->width && fy >= 0) {
            sum += 2 * (uint64_t)s->frame_errors[error_index(im, fx, fy, i)];
            weight += 2;
        }
    }
    if (frame >= 1) {
        sum += 2 * (uint64_t)earlier_error(s, x, y, i, (frame - 1) % 2, 1);
        weight += 18;
    }
    if (frame >= 2) {
        sum += earlier_error(s, x, y, i, frame % 2, 2);
        weight += 9;
    }
    return (uint32_t)(sum * 4 / weight);
}

/* Sum of one sub-predictor's (or, at BLEND_PREDICTORS, the blend's) errors
 * at W, N, NW and NE, in 1/16. */
static uint32_t local_error(stripe_model *s, uint32_t x, uint32_t y, uint32_t c, int i) {
    uint32_t sum = 0;
    if (x > 0)
        sum += errors_at(s, y, x - 1, c)[i];
    if (y > frame_top(s, y)) {
        sum += errors_at(s, y - 1, x, c)[i];
        if (x > 0)
            sum += errors_at(s, y - 1, x - 1, c)[i];
        if (x + 1 < s->image->width)
            sum += errors_at(s, y - 1, x + 1, c)[i];
    }
    return sum;
}

/* Sub-predictor i's (or the blend's) recent error around (x, y). */
static uint32_t recent_error(stripe_model *s, uint32_t x, uint32_t y, uint32_t c, int i) {
    uint32_t near = local_error(s, x, y, c, i);
    return s->frame_errors ? wide_error(s, x, y, i, near) : near;
}

/* A sub-predictor's weight in the blend from its recent error e (+ 16):
 * 1 / e^2, or with local_errors, whose estimates are steadier, 1 / e^4
 * (1 / e^3: +0.15% on mobile). Errors are at most 4 x 255 x 16, so e^4 is
 * below 2^62 and no weight is 0. */
static uint64_t blend_weight(const stripe_model *s, uint64_t e) {
    if (s->frame_errors)
        return (((uint64_t)1 << 62) / (e * e)) / (e * e);
    return ((uint64_t)1 << 40) / (e * e);
}

/* floor(log2(a)), 0 for a <= 1, at most ACTIVITY_LEVELS - 1. */
static uint32_t log_level(uint32_t a) {
    uint32_t level = 0;
    while (a > 1 && level < ACTIVITY_LEVELS - 1) {
        a >>= 1;
        level++;
    }
    return level;
}

/* 2^20 * 256 / the scale of a logistic whose errors sum to `error` (in
 * 1/16) over four neighbours: a logistic's mean absolute deviation is 1.39
 * scales, so the sum is about four deviations. */
static int64_t inverse_scale_of(uint32_t error) {
    int64_t scale16 = LMC_MAX(6u, (error * 46u) >> 8);
    return ((int64_t)256 << 20) / scale16;
}

/* error_contexts: the least-squares predictor's expected error (blend
 * place BLEND_PREDICTORS - 1) as a scale and, with the predictor of least
 * error, mixer 3's context; the predictors' spread for APM1. */
static void error_contexts(stripe_model *s, const uint32_t *errors) {
    uint32_t best = 0, low = 255, high = 0;
    for (uint32_t i = 0; i < BLEND_PREDICTORS; i++) {
        if (errors[i] < errors[best])
            best = i;
        low = LMC_MIN(low, s->sub_prediction[i]);
        high = LMC_MAX(high, s->sub_prediction[i]);
    }
    uint32_t ls_error = errors[BLEND_PREDICTORS - 1];
    s->ls_inverse_scale = inverse_scale_of(ls_error);
    s->error_set = log_level(ls_error >> 4) * BLEND_PREDICTORS + best;
    s->spread = log_level(high - low);
}

/* The blend: each sub-predictor weighted by how small its recent errors are. */
static void blend(stripe_model *s, uint32_t x, uint32_t y, uint32_t c, const int *p) {
    uint64_t total = 0, weighted = 0;
    uint32_t errors[BLEND_PREDICTORS];
    for (int i = 0; i < BLEND_PREDICTORS; i++) {
        errors[i] = recent_error(s, x, y, c, i);
        /* error_contexts: the least-squares prediction has logistic
         * inputs of its own; the blend leans on the others more (-0.05%). */
        uint32_t judged = i == BLEND_PREDICTORS - 1 && s->image->error_contexts ? errors[i] * 3 / 2 : errors[i];
        uint64_t w = blend_weight(s, 16 + judged);
        total += w;
        weighted += w * (uint64_t)p[i];
        s->sub_prediction[i] = (uint32_t)p[i];
    }
    s->blend16 = (int32_t)((weighted * 16 + total / 2) / total);
    uint32_t error = recent_error(s, x, y, c, BLEND_PREDICTORS);
    s->inverse_scale = inverse_scale_of(error);
    s->activity = log_level(error >> 4);
    if (s->image->error_contexts)
        error_contexts(s, errors);
}

/* error_contexts: the least-squares prediction's signed error (1/16) at
 * (x, y) of the stack, in the slot of y's frame. */
static int16_t *ls_error_at(const stripe_model *s, uint32_t x, uint32_t y) {
    const channel_image *im = s->image;
    uint32_t fh = im->frame_height, frame = (y - s->first_row) / fh, row = (y - s->first_row) % fh;
    return s->ls_errors + ((size_t)(frame % 2) * fh + row) * im->width + x;
}

SAMPLE_STEP void record_errors(stripe_model *s, uint32_t x, uint32_t y, uint32_t c, int value) {
    uint16_t *e = errors_at(s, y, x, c);
    for (int i = 0; i < BLEND_PREDICTORS; i++)
        e[i] = (uint16_t)(abs((int)s->sub_prediction[i] - value) * 16);
    e[BLEND_PREDICTORS] = (uint16_t)LMC_MIN(abs(s->blend16 - value * 16), 65535);
    if (s->frame_errors)
        memcpy(s->frame_errors + error_index(s->image, x, (y - s->first_row) % s->image->frame_height, 0), e,
               (BLEND_PREDICTORS + 1) * sizeof *e);
    uint32_t every = s->image->error_contexts                     ? OLS_SOLVE_EVERY_WIDE
                     : s->image->reference_model == REFERENCE_TAPS ? OLS_SOLVE_EVERY_TAPS
                                                                   : OLS_SOLVE_EVERY;
    if (s->image->chroma_round5)
        every = OLS_SOLVE_EVERY_ROUND5;
    ols_update(&s->ols[c], value, x % every == 0, s->image->error_contexts ? OLS_FORGET_WIDE : OLS_FORGET);
    if (s->ls_errors) {
        int e16 = value * 16 - s->ls16_raw;
        ols_update(s->feedback, e16, x % every == 0, OLS_FORGET_WIDE);
        *ls_error_at(s, x, y) = (int16_t)LMC_MAX(-32767, LMC_MIN(e16, 32767));
    }
}

/* Video: the previous frame around the same position (all of it is known,
 * so the reference has neighbours on every side). */
typedef struct {
    int present;
    int r, w, n, e, s;
    int nw, ne, sw, se;
    int older;                  /* the frame before that, where the motion continues, or -1 */
    /* TAPS only: two pixels away in the previous frame; the older frame's
     * 4 neighbours; the frame before that (or -1) and its neighbours. */
    int ww, ee, nn, ss;
    int older_w, older_n, older_e, older_s;
    int oldest, oldest_w, oldest_n, oldest_e, oldest_s;
} reference;

static uint32_t clamp_coordinate(int64_t v, uint32_t low, uint32_t high) {
    return (uint32_t)(v < low ? low : v > high ? high : v);
}

/* Channel c of the frame at (X, Y) in 1/2^shift pixels, X and Y inside
 * the frame (so a fraction never reads past its last row or column). */
static int sample_between(const channel_image *im, uint32_t X, uint32_t Y, uint32_t c) {
    uint32_t shift = im->motion_shift, one = 1u << shift, fx = X & (one - 1), fy = Y & (one - 1);
    uint32_t x = X >> shift, y = Y >> shift;
    if (fx == 0 && fy == 0)
        return pixel_at(im, x, y, c);
    int a = pixel_at(im, x, y, c), b = fx ? pixel_at(im, x + 1, y, c) : a;
    int d = fy ? pixel_at(im, x, y + 1, c) : a, e = fx && fy ? pixel_at(im, x + 1, y + 1, c) : d;
    int gx = (int)fx, gy = (int)fy, g = (int)one;
    int top = a * (g - gx) + b * gx, bottom = d * (g - gx) + e * gx;
    return (top * (g - gy) + bottom * gy + (1 << (2 * shift - 1))) >> (2 * shift);
}

/* The previous frame around where the motion vector points: the pixel and
 * its 8 neighbours (each clamped into the frame), and the frame before
 * that where the motion continues. */
static reference reference_at(const stripe_model *s, uint32_t x, uint32_t y, uint32_t c) {
    reference ref = {0};
    const channel_image *im = s->image;
    uint32_t fh = im->frame_height;
    if (y < s->first_row + fh)
        return ref;
    /* The previous frame's rows are [top, top + fh). */
    motion_vector mv = motion_at(im, x, y);
    uint32_t shift = im->motion_shift, one = 1u << shift;
    uint32_t top = frame_top(s, y) - fh, low_y = top << shift, high_y = (top + fh - 1) << shift;
    uint32_t high_x = (im->width - 1) << shift;
    uint32_t rx = clamp_coordinate(((int64_t)x << shift) + mv.dx, 0, high_x);
    uint32_t ry = clamp_coordinate(((int64_t)(y - fh) << shift) + mv.dy, low_y, high_y);
    uint32_t left = rx >= one ? rx - one : rx, right = rx + one <= high_x ? rx + one : rx;
    uint32_t up = ry >= low_y + one ? ry - one : ry, down = ry + one <= high_y ? ry + one : ry;
    ref.present = 1;
    ref.r = sample_between(im, rx, ry, c);
    ref.w = sample_between(im, left, ry, c);
    ref.e = sample_between(im, right, ry, c);
    ref.n = sample_between(im, rx, up, c);
    ref.s = sample_between(im, rx, down, c);
    ref.nw = sample_between(im, left, up, c);
    ref.ne = sample_between(im, right, up, c);
    ref.sw = sample_between(im, left, down, c);
    ref.se = sample_between(im, right, down, c);
    ref.older = -1;
    if (y >= s->first_row + 2 * fh) {
        uint32_t older_top = top - fh;
        uint32_t ox = clamp_coordinate(((int64_t)x << shift) + 2 * mv.dx, 0, high_x);
        uint32_t oy = clamp_coordinate(((int64_t)(y - 2 * fh) << shift) + 2 * mv.dy, older_top << shift,
                                       (older_top + fh - 1) << shift);
        ref.older = sample_between(im, ox, oy, c);
    }
    return ref;
}

/* HEVC's luma interpolation filters at 0, 1/4, 1/2 and 3/4 pixel, in 1/64. */
static const int8_t quarter_taps[4][8] = {{0, 0, 0, 64, 0, 0, 0, 0},
                                          {-1, 4, -10, 58, 17, -5, 1, 0},
                                          {-1, 4, -11, 40, 40, -11, 4, -1},
                                          {0, 1, -5, 17, 58, -10, 4, -1}};

/* A width x height window of the frame whose first row is `top`, its first
 * sample at (X, Y) in quarter pixels from the frame's corner, one pixel
 * apart; the frame extends by repeating its edge pixels. Every sample has
 * the same fraction, so the filters run once per row and once per column. */
static void interpolate_window(const channel_image *im, uint32_t top, int64_t X, int64_t Y, int width,
                               int height, int16_t *out, int stride) {
    const int8_t *hx = quarter_taps[X & 3], *hy = quarter_taps[Y & 3];
    int64_t x0 = (X >> 2) - 3, y0 = (Y >> 2) - 3; /* arithmetic shifts: floor */
    int32_t rows[WINDOW + 7][WINDOW];
    uint8_t line[WINDOW + 7];
    for (int j = 0; j < height + 7; j++) {
        uint32_t y = top + (uint32_t)clamp_index(y0 + j, im->frame_height - 1);
        for (int i = 0; i < width + 7; i++)
            line[i] = pixel_at(im, (uint32_t)clamp_index(x0 + i, im->width - 1), y, 0);
        for (int i = 0; i < width; i++) {
            int32_t sum = 0;
            for (int k = 0; k < 8; k++)
                sum += hx[k] * line[i + k];
            rows[j][i] = sum;
        }
    }
    for (int j = 0; j < height; j++)
        for (int i = 0; i < width; i++) {
            int32_t sum = 0;
            for (int k = 0; k < 8; k++)
                sum += hy[k] * rows[j + k][i];
            out[j * stride + i] = (int16_t)clamp_sample((sum + 2048) >> 12);
        }
}

/* interpolate_window's sample of a 1 x 1 window (the same arithmetic),
 * skipping the taps that are 0 at whole-pixel phases. */
static int interpolate_point(const channel_image *im, uint32_t top, int64_t X, int64_t Y) {
    const int8_t *hx = quarter_taps[X & 3], *hy = quarter_taps[Y & 3];
    int64_t x0 = (X >> 2) - 3, y0 = (Y >> 2) - 3;
    uint32_t columns[8];
    for (int i = 0; i < 8; i++)
        columns[i] = (uint32_t)clamp_index(x0 + i, im->width - 1);
    int32_t sum = 0;
    for (int j = 0; j < 8; j++) {
        if (!hy[j])
            continue;
        const uint8_t *line = im->pixels + (size_t)(top + (uint32_t)clamp_index(y0 + j, im->frame_height - 1)) * im->width;
        int32_t across = 0;
        if (X & 3) {
            for (int i = 0; i < 8; i++)
                across += hx[i] * line[columns[i]];
        } else {
            across = 64 * line[columns[3]];
        }
        sum += hy[j] * across;
    }
    return clamp_sample((sum + 2048) >> 12);
}

/* Which block row of the stack row y is in, + 1. */
static uint32_t block_row_key(const channel_image *im, uint32_t y) {
    return y / im->frame_height * im->blocks_y + y % im->frame_height / MOTION_BLOCK + 1;
}

/* Fills the windows of the block row holding stack row y: each block's
 * previous frame at its vector, and each older frame (of the stripe) at
 * that plus the vector of the frame after it where the block's centre
 * lands. */
static void fill_windows(stripe_model *s, uint32_t y) {
    const channel_image *im = s->image;
    uint32_t fh = im->frame_height, top = frame_top(s, y), by = (y - top) / MOTION_BLOCK;
    int64_t y0 = (int64_t)by * MOTION_BLOCK - MARGIN;
    s->references = LMC_MIN((y - s->first_row) / fh, REFERENCES);
    for (uint32_t bx = 0; bx < im->blocks_x; bx++) {
        int64_t x0 = (int64_t)bx * MOTION_BLOCK - MARGIN;
        int16_t *window = s->windows + (size_t)bx * REFERENCES * WINDOW_SAMPLES;
        motion_vector mv = motion_at(im, bx * MOTION_BLOCK, y);
        int64_t dx = mv.dx, dy = mv.dy;
        for (uint32_t k = 1; k <= s->references; k++) {
            uint32_t frame = top - k * fh;
            interpolate_window(im, frame, 4 * x0 + dx, 4 * y0 + dy, WINDOW, WINDOW,
                               window + (k - 1) * WINDOW_SAMPLES, WINDOW);
            int64_t cx = clamp_index(((int64_t)bx * MOTION_BLOCK + MOTION_BLOCK / 2) + (dx >> 2), im->width - 1);
            int64_t cy = clamp_index(((int64_t)by * MOTION_BLOCK + MOTION_BLOCK / 2) + (dy >> 2), fh - 1);
            motion_vector next = motion_at(im, (uint32_t)cx, frame + (uint32_t)cy);
            dx += next.dx;
            dy += next.dy;
        }
    }
    s->windows_row = block_row_key(im, y);
}

static reference reference_taps(stripe_model *s, uint32_t x, uint32_t y) {
    reference ref = {0};
    const channel_image *im = s->image;
    if (y < s->first_row + im->frame_height)
        return ref;
    if (s->windows_row != block_row_key(im, y))
        fill_windows(s, y);
    uint32_t row = (y - frame_top(s, y)) % MOTION_BLOCK + MARGIN, column = x % MOTION_BLOCK + MARGIN;
    const int16_t *w =
        s->windows + (size_t)(x / MOTION_BLOCK) * REFERENCES * WINDOW_SAMPLES + row * WINDOW + column;
    ref.present = 1;
    ref.r = w[0];
    ref.w = w[-1];
    ref.e = w[1];
    ref.n = w[-WINDOW];
    ref.s = w[WINDOW];
    ref.nw = w[-WINDOW - 1];
    ref.ne = w[-WINDOW + 1];
    ref.sw = w[WINDOW - 1];
    ref.se = w[WINDOW + 1];
    ref.ww = w[-2];
    ref.ee = w[2];
    ref.nn = w[-2 * WINDOW];
    ref.ss = w[2 * WINDOW];
    ref.older = -1;
    ref.oldest = -1;
    if (s->references >= 2) {
        const int16_t *o = w + WINDOW_SAMPLES;
        ref.older = o[0];
        ref.older_w = o[-1];
        ref.older_e = o[1];
        ref.older_n = o[-WINDOW];
        ref.older_s = o[WINDOW];
    }
    if (s->references >= 3) {
        const int16_t *o = w + 2 * WINDOW_SAMPLES;
        ref.oldest = o[0];
        ref.oldest_w = o[-1];
        ref.oldest_e = o[1];
        ref.oldest_n = o[-WINDOW];
        ref.oldest_s = o[WINDOW];
    }
    return ref;
}

/* The sum of the luma pixels under chroma pixel (x, row) of frame `frame`
 * (clamped into the frame). */
static int guide_at(const channel_image *im, int64_t x, int64_t row, uint32_t frame) {
    x = clamp_index(x, im->width - 1);
    row = clamp_index(row, im->frame_height - 1);
    int sum = 0;
    for (uint32_t j = 0; j < im->guide_scale_y; j++) {
        uint32_t gy = (uint32_t)LMC_MIN(row * im->guide_scale_y + j, im->guide_frame_height - 1);
        const uint8_t *line = im->guide + ((size_t)frame * im->guide_frame_height + gy) * im->guide_width;
        for (uint32_t i = 0; i < im->guide_scale_x; i++)
            sum += line[LMC_MIN(x * im->guide_scale_x + i, im->guide_width - 1)];
    }
    return sum;
}

/* chroma_round5: a window of the guide's frame `frame` (the window's
 * first guide sample at (X, Y) in quarter guide pixels), through the 8-tap
 * filters, each WINDOW x WINDOW sample the sum of the guide_scale_x x
 * guide_scale_y guide samples it covers. */
#define GUIDE_WINDOW_MAX (WINDOW * 4)

static void interpolate_guide(const uint8_t *plane, uint32_t plane_width, uint32_t plane_height, uint32_t sx,
                              uint32_t sy, int64_t X, int64_t Y, int16_t *out) {
    const int8_t *hx = quarter_taps[X & 3], *hy = quarter_taps[Y & 3];
    int64_t x0 = (X >> 2) - 3, y0 = (Y >> 2) - 3;
    int width = WINDOW * (int)sx, height = WINDOW * (int)sy;
    static _Thread_local int32_t rows[GUIDE_WINDOW_MAX + 7][GUIDE_WINDOW_MAX];
    static _Thread_local int16_t fine[GUIDE_WINDOW_MAX][GUIDE_WINDOW_MAX];
    for (int j = 0; j < height + 7; j++) {
        const uint8_t *line = plane + (size_t)clamp_index(y0 + j, plane_height - 1) * plane_width;
        for (int i = 0; i < width; i++) {
            int32_t sum = 0;
            for (int k = 0; k < 8; k++)
                sum += hx[k] * line[clamp_index(x0 + i + k, plane_width - 1)];
            rows[j][i] = sum;
        }
    }
    for (int j = 0; j < height; j++)
        for (int i = 0; i < width; i++) {
            int32_t sum = 0;
            for (int k = 0; k < 8; k++)
                sum += hy[k] * rows[j + k][i];
            fine[j][i] = (int16_t)clamp_sample((sum + 2048) >> 12);
        }
    for (int j = 0; j < WINDOW; j++)
        for (int i = 0; i < WINDOW; i++) {
            int sum = 0;
            for (uint32_t b = 0; b < sy; b++)
                for (uint32_t a = 0; a < sx; a++)
                    sum += fine[j * sy + b][i * sx + a];
            out[j * WINDOW + i] = (int16_t)sum;
        }
}

static void fill_guide_windows(stripe_model *s, uint32_t y) {
    const channel_image *im = s->image;
    uint32_t fh = im->frame_height, frame = y / fh, by = y % fh / MOTION_BLOCK;
    int64_t sx = im->guide_scale_x, sy = im->guide_scale_y;
    int64_t y0 = (int64_t)by * MOTION_BLOCK - MARGIN;
    for (uint32_t bx = 0; bx < im->blocks_x; bx++) {
        int64_t x0 = (int64_t)bx * MOTION_BLOCK - MARGIN;
        motion_vector mv = motion_at(im, bx * MOTION_BLOCK, y);
        int16_t *out = s->guide_windows + (size_t)bx * 2 * WINDOW_SAMPLES;
        interpolate_guide(im->guide + (size_t)(frame - 1) * im->guide_frame_height * im->guide_width, im->guide_width,
                          im->guide_frame_height, (uint32_t)sx, (uint32_t)sy, (4 * x0 + mv.dx) * sx,
                          (4 * y0 + mv.dy) * sy, out);
        if (im->second)
            interpolate_guide(im->second + (size_t)(frame - 1) * fh * im->width, im->width, fh, 1, 1, 4 * x0 + mv.dx,
                              4 * y0 + mv.dy, out + WINDOW_SAMPLES);
    }
    s->guide_windows_row = block_row_key(im, y);
}

/* chroma_round5: the pixel's place in its block's luma window (filled);
 * the second guide's window follows at + WINDOW_SAMPLES. */
static const int16_t *guide_window_at(const stripe_model *s, uint32_t x, uint32_t y) {
    uint32_t row = y % s->image->frame_height;
    return s->guide_windows + (size_t)(x / MOTION_BLOCK) * 2 * WINDOW_SAMPLES +
           (row % MOTION_BLOCK + MARGIN) * WINDOW + x % MOTION_BLOCK + MARGIN;
}

/* Luma at the chroma pixel and its 4 neighbours (all decoded: luma comes
 * first), and with a previous frame, luma where the chroma vector points. */
#define GUIDE_INPUTS 6

static int guide_inputs(stripe_model *s, uint32_t x, uint32_t y, int *inputs) {
    const channel_image *im = s->image;
    uint32_t fh = im->frame_height, frame = y / fh, row = y % fh;
    inputs[0] = guide_at(im, x, row, frame);
    inputs[1] = guide_at(im, (int64_t)x - 1, row, frame);
    inputs[2] = guide_at(im, x, (int64_t)row - 1, frame);
    inputs[3] = guide_at(im, (int64_t)x + 1, row, frame);
    inputs[4] = guide_at(im, x, (int64_t)row + 1, frame);
    if (y < s->first_row + fh)
        return 5;
    if (s->guide_windows) {
        if (s->guide_windows_row != block_row_key(im, y))
            fill_guide_windows(s, y);
        inputs[5] = guide_window_at(s, x, y)[0];
        return GUIDE_INPUTS;
    }
    motion_vector mv = motion_at(im, x, y);
    inputs[5] = guide_at(im, ((int64_t)x * 4 + mv.dx + 2) >> 2, ((int64_t)row * 4 + mv.dy + 2) >> 2, frame - 1);
    return GUIDE_INPUTS;
}

/* chroma_round5: the second guide (U for V) at the pixel and its 4
 * neighbours, and with a previous frame (second_ref) where the vector
 * points, through the 8-tap filters (guide_inputs fills the windows). */
#define SECOND_INPUTS 5

static int second_inputs(const stripe_model *s, uint32_t x, uint32_t y, int *inputs, int *second_ref) {
    const channel_image *im = s->image;
    uint32_t fh = im->frame_height, frame = y / fh, row = y % fh;
    const uint8_t *plane = im->second + (size_t)frame * fh * im->width;
    static const int8_t at[SECOND_INPUTS][2] = {{0, 0}, {-1, 0}, {0, -1}, {1, 0}, {0, 1}};
    for (int k = 0; k < SECOND_INPUTS; k++)
        inputs[k] = plane[(size_t)clamp_index((int64_t)row + at[k][1], fh - 1) * im->width +
                          (size_t)clamp_index((int64_t)x + at[k][0], im->width - 1)];
    *second_ref = -1;
    if (y >= s->first_row + fh && s->guide_windows)
        *second_ref = guide_window_at(s, x, y)[WINDOW_SAMPLES];
    return SECOND_INPUTS;
}

static int second_at(const channel_image *im, uint32_t x, uint32_t y, int dx, int dy) {
    uint32_t fh = im->frame_height, frame = y / fh, row = y % fh;
    return im->second[((size_t)frame * fh + (size_t)clamp_index((int64_t)row + dy, fh - 1)) * im->width +
                      (size_t)clamp_index((int64_t)x + dx, im->width - 1)];
}

/* The second guide's neighbours as the stack's own (all of it is known). */
static neighbours second_neighbours(const stripe_model *s, uint32_t x, uint32_t y) {
    const channel_image *im = s->image;
    neighbours v = {second_at(im, x, y, -1, 0), second_at(im, x, y, 0, -1), second_at(im, x, y, -1, -1),
                    second_at(im, x, y, 1, -1), second_at(im, x, y, -2, 0), second_at(im, x, y, 0, -2),
                    second_at(im, x, y, 1, -2)};
    return v;
}

/* error_contexts: 16 more neighbours of the least-squares predictor, up to
 * four pixels away (those above the frame's first row take N's value, those
 * left of its first column in the current row W's, and the rows above
 * clamp into the frame), with forgetting OLS_FORGET_WIDE: about -2.5% on
 * the first frames, -0.7% on the others (foreman with 6, 12, 16, 20 more:
 * -0.8%, -1.4%, -1.5%, -1.5%). */
#define FARTHER_NEIGHBOURS 16

/* The samples of channel c at the offsets `at` from (x, y): those above
 * the frame's first row take N's value, those left of its first column in
 * the current row W's, the others clamp into the frame. */
static void neighbours_at_offsets(const stripe_model *s, uint32_t x, uint32_t y, uint32_t c, const neighbours *v,
                                  const int8_t (*at)[2], int count, int *inputs) {
    const channel_image *im = s->image;
    int64_t top = frame_top(s, y);
    for (int k = 0; k < count; k++) {
        int64_t fx = (int64_t)x + at[k][0], fy = (int64_t)y + at[k][1];
        if (fy < top)
            inputs[k] = v->n;
        else if (fy == (int64_t)y && fx < 0)
            inputs[k] = v->w;
        else
            inputs[k] = pixel_at(im, (uint32_t)clamp_index(fx, im->width - 1), (uint32_t)fy, c);
    }
}

static int farther_neighbours(const stripe_model *s, uint32_t x, uint32_t y, uint32_t c, const neighbours *v,
                              int *inputs) {
    static const int8_t at[FARTHER_NEIGHBOURS][2] = {
        {-2, -1}, {-1, -2}, {2, -1}, {-3, 0}, {0, -3}, {2, -2}, {-2, -2}, {-3, -1},
        {3, -1},  {1, -3},  {-1, -3}, {-4, 0}, {-3, -2}, {3, -2}, {0, -4}, {-2, -3}};
    neighbours_at_offsets(s, x, y, c, v, at, FARTHER_NEIGHBOURS, inputs);
    return FARTHER_NEIGHBOURS;
}

/* chroma_round5: in a frame without reference, INTRA_NEIGHBOURS more
 * neighbours still, up to six pixels away (as farther_neighbours): mobile's
 * first luma frame -0.5%, foreman's -0.7%. */
#define INTRA_NEIGHBOURS 20

static int intra_neighbours(const stripe_model *s, uint32_t x, uint32_t y, uint32_t c, const neighbours *v,
                            int *inputs) {
    static const int8_t at[INTRA_NEIGHBOURS][2] = {
        {-5, 0}, {0, -5}, {-4, -1}, {4, -1}, {-1, -4}, {1, -4}, {-4, -2}, {4, -2}, {-3, -3}, {3, -3},
        {2, -3}, {-2, -4}, {2, -4}, {-5, -1}, {5, -1}, {-6, 0}, {0, -6}, {-4, -3}, {4, -3}, {-1, -5}};
    neighbours_at_offsets(s, x, y, c, v, at, INTRA_NEIGHBOURS, inputs);
    return INTRA_NEIGHBOURS;
}

/* error_contexts: the least-squares prediction's local bias, from its
 * signed errors at W, N, NW, NE, WW and NN and where the vector leads in
 * the previous frame, by a second, small least-squares fit (mobile -0.3%,
 * foreman -0.2%; the blend corrected so instead: +0.1% on mobile). */
#define FEEDBACK_INPUTS 7

static double error_feedback(stripe_model *s, uint32_t x, uint32_t y) {
    static const int8_t at[FEEDBACK_INPUTS - 1][2] = {{-1, 0}, {0, -1}, {-1, -1}, {1, -1}, {-2, 0}, {0, -2}};
    const channel_image *im = s->image;
    int64_t top = frame_top(s, y);
    int inputs[FEEDBACK_INPUTS];
    for (int k = 0; k < FEEDBACK_INPUTS - 1; k++) {
        int64_t fx = (int64_t)x + at[k][0], fy = (int64_t)y + at[k][1];
        inputs[k] = fx >= 0 && fx < im->width && fy >= top ? *ls_error_at(s, (uint32_t)fx, (uint32_t)fy) : 0;
    }
    inputs[FEEDBACK_INPUTS - 1] = 0;
    uint32_t fh = im->frame_height;
    if (y >= s->first_row + fh) {
        motion_vector mv = motion_at(im, x, y);
        int64_t px = clamp_index((int64_t)x + ((mv.dx + 2) >> 2), im->width - 1);
        int64_t py = clamp_index((y - top) + ((mv.dy + 2) >> 2), fh - 1);
        inputs[FEEDBACK_INPUTS - 1] = *ls_error_at(s, (uint32_t)px, (uint32_t)(top - fh + py));
    }
    return ols_predict(s->feedback, inputs, FEEDBACK_INPUTS);
}

/* chroma_round5: the inputs after the neighbours, each kind in the same
 * places in every frame: the guides' (luma's, then the second guide's) at
 * the pixel and its neighbours; then in a first frame luma under the
 * diagonal neighbours and INTRA_NEIGHBOURS more neighbours, in the others
 * where the vector points in the guides' previous frames (the earlier
 * frames' own samples follow). The first inter frame starts the sums
 * beyond the shared inputs from nothing. */
static int round5_inputs(stripe_model *s, uint32_t x, uint32_t y, uint32_t c, const neighbours *v,
                         const reference *ref, const int *guide, int guide_count, int *inputs, int n) {
    int spatial = guide_count == GUIDE_INPUTS ? guide_count - 1 : guide_count, second_ref = -1;
    memcpy(inputs + n, guide, (size_t)spatial * sizeof *guide);
    n += spatial;
    if (s->image->second) {
        int *u = inputs + n;
        n += second_inputs(s, x, y, u, &second_ref);
        s->second_residual = second_ref >= 0 ? u[0] - second_ref : (4 * u[0] - u[1] - u[2] - u[3] - u[4]) / 4;
    }
    if (!ref->present) {
        s->ls_intra = 1;
        if (guide_count) {
            /* The luma sums under the diagonal neighbours too (-0.8% on
             * mobile's first chroma frames). */
            const channel_image *im = s->image;
            uint32_t frame = y / im->frame_height, row = y % im->frame_height;
            static const int8_t at[4][2] = {{-1, -1}, {1, -1}, {-1, 1}, {1, 1}};
            for (int k = 0; k < 4; k++)
                inputs[n++] = guide_at(im, (int64_t)x + at[k][0], (int64_t)row + at[k][1], frame);
        }
        return n + intra_neighbours(s, x, y, c, v, inputs + n);
    }
    if (s->ls_intra) {
        ols_forget_beyond(&s->ols[c], n);
        s->ls_intra = 0;
    }
    if (guide_count == GUIDE_INPUTS)
        inputs[n++] = guide[GUIDE_INPUTS - 1];
    if (second_ref >= 0)
        inputs[n++] = second_ref;
    if (guide_count == GUIDE_INPUTS && s->guide_windows) {
        /* And luma's previous frame at the 4 neighbours there (-0.13% of
         * mobile's chroma). */
        const int16_t *w = guide_window_at(s, x, y);
        inputs[n++] = w[-1];
        inputs[n++] = w[-WINDOW];
        inputs[n++] = w[1];
        inputs[n++] = w[WINDOW];
    }
    return n;
}

/* The least-squares prediction from the neighbourhood and, for later
 * channels, the earlier channels of this pixel and their neighbours. */
static int least_squares_prediction(stripe_model *s, uint32_t x, uint32_t y, uint32_t c, const neighbours *v,
                                    const reference *ref, const int *guide, int guide_count, const int *hypotheses,
                                    int hypothesis_count) {
    int inputs[OLS_MAX_INPUTS] = {v->w, v->n, v->nw, v->ne, v->ww, v->nn, v->nne};
    int n = 7;
    if (s->image->error_contexts)
        n += farther_neighbours(s, x, y, c, v, inputs + n);
    if (s->image->chroma_round5)
        n = round5_inputs(s, x, y, c, v, ref, guide, guide_count, inputs, n);
    if (ref->present && s->image->reference_model == REFERENCE_TAPS) {
        int previous[13] = {ref->r,  ref->w,  ref->n,  ref->e,  ref->s,  ref->nw, ref->ne,
                            ref->sw, ref->se, ref->ww, ref->ee, ref->nn, ref->ss};
        memcpy(inputs + n, previous, sizeof previous);
        n += 13;
        if (ref->older >= 0) {
            int older[5] = {ref->older, ref->older_w, ref->older_n, ref->older_e, ref->older_s};
            memcpy(inputs + n, older, sizeof older);
            n += 5;
        }
        if (ref->oldest >= 0) {
            int oldest[5] = {ref->oldest, ref->oldest_w, ref->oldest_n, ref->oldest_e, ref->oldest_s};
            memcpy(inputs + n, oldest, sizeof oldest);
            n += 5;
        }
    } else if (ref->present) {
        int previous[10] = {ref->r, ref->w, ref->n, ref->e, ref->s, ref->nw, ref->ne, ref->sw, ref->se,
                            ref->older >= 0 ? ref->older : ref->r};
        memcpy(inputs + n, previous, sizeof previous);
        n += 10;
    }
    if (!s->image->chroma_round5) {
        memcpy(inputs + n, guide, (size_t)guide_count * sizeof *guide);
        n += guide_count;
    }
    memcpy(inputs + n, hypotheses, (size_t)hypothesis_count * sizeof *hypotheses);
    n += hypothesis_count;
    for (uint32_t j = c >= 2 ? c - 2 : 0; j < c; j++) {
        neighbours u = neighbours_at(s, x, y, j);
        inputs[n++] = pixel_at(s->image, x, y, j);
        inputs[n++] = u.w;
        inputs[n++] = u.n;
        inputs[n++] = u.nw;
        inputs[n++] = u.ne;
    }
    double p = ols_predict(&s->ols[c], inputs, n);
    s->ls16 = (int32_t)LMC_MAX(0, LMC_MIN(lround(p * 16), 255 * 16));
    if (s->ls_errors) {
        s->ls16_raw = (int32_t)lround(p * 16);
        s->ls16 = (int32_t)LMC_MAX(0, LMC_MIN(lround(p * 16 + error_feedback(s, x, y)), 255 * 16));
        return clamp_sample((s->ls16 + 8) >> 4);
    }
    return clamp_sample((int)lround(p));
}

/* The exact values of the pixel's earlier channels (its colour so far);
 * for the first channel, the exact W and N. */
static uint32_t earlier_channels(const stripe_model *s, uint32_t x, uint32_t y, uint32_t c, const neighbours *v) {
    if (c == 0)
        return (uint32_t)v->w << 8 | (uint32_t)v->n;
    uint32_t h = 0;
    for (uint32_t j = 0; j < c; j++)
        h = hash2(h, pixel_at(s->image, x, y, j));
    return h;
}

/* The mean of the earlier frames the reference holds. */
static int mean_of_references(const reference *ref) {
    if (ref->oldest >= 0)
        return (ref->r + ref->older + ref->oldest + 1) / 3;
    if (ref->older >= 0)
        return (ref->r + ref->older + 1) >> 1;
    return ref->r;
}

/* Chroma: two spatial pairs give way to how luma changed here since the
 * previous frame (or, in a first frame, its local contrast) and the shape
 * of its edges around the pixel. */
static void guide_contexts(const int *guide, int count, int blended, int cross_value,
                           uint32_t combined[COMBINED_CONTEXTS]) {
    int change = count == GUIDE_INPUTS ? guide[0] - guide[5] : 2 * guide[0] - guide[1] - guide[2];
    uint32_t step = (uint32_t)LMC_MAX(0, LMC_MIN(change / 8 + 16, 31)), pattern = 0;
    for (int i = 1; i < 5; i++) {
        int d = guide[0] - guide[i];
        pattern = pattern * 5 + (d < -24 ? 0 : d < -4 ? 1 : d <= 4 ? 2 : d <= 24 ? 3 : 4);
    }
    combined[1] = hash2((uint32_t)blended, pattern);
    combined[2] = hash2((uint32_t)(cross_value + 1), step | (uint32_t)(guide[0] >> 4) << 8);
}

/* luma_round5: the previous frame at the vector of a block next to the
 * pixel's, through the 8-tap filters: on the side of the nearer vertical
 * edge (axis 0), of the nearer horizontal edge (1) or at the nearer corner
 * (2); `same` (the reference) where that block's vector is the pixel's.
 * Where two motions meet (the calendar, the train, the ball on mobile),
 * a pixel near a block edge often follows the neighbour's. */
static int other_hypothesis(const stripe_model *s, uint32_t x, uint32_t y, int axis, int same) {
    const channel_image *im = s->image;
    uint32_t fh = im->frame_height, top = frame_top(s, y), row = y - top;
    int64_t ox = x, oy = row;
    if (axis != 1)
        ox += x % MOTION_BLOCK < MOTION_BLOCK / 2 ? -MOTION_BLOCK : MOTION_BLOCK;
    if (axis != 0)
        oy += row % MOTION_BLOCK < MOTION_BLOCK / 2 ? -MOTION_BLOCK : MOTION_BLOCK;
    ox = clamp_index(ox, im->width - 1);
    oy = clamp_index(oy, fh - 1);
    motion_vector other = motion_at(im, (uint32_t)ox, top + (uint32_t)oy), own = motion_at(im, x, y);
    if (other.dx == own.dx && other.dy == own.dy)
        return same;
    return interpolate_point(im, top - fh, 4 * (int64_t)x + other.dx, 4 * (int64_t)row + other.dy);
}

/* luma_round5: the three other hypotheses, the nearer edge's first (with
 * all three in the least-squares predictor and the first in the blend in
 * N's place: mobile -0.8%, foreman -0.4%). */
#define HYPOTHESES 3

static void other_hypotheses(const stripe_model *s, uint32_t x, uint32_t y, int same, int *out) {
    uint32_t row = (y - frame_top(s, y)) % MOTION_BLOCK, column = x % MOTION_BLOCK;
    int from_centre_x = abs((int)column * 2 + 1 - MOTION_BLOCK), from_centre_y = abs((int)row * 2 + 1 - MOTION_BLOCK);
    int first = from_centre_x >= from_centre_y ? 0 : 1;
    out[0] = other_hypothesis(s, x, y, first, same);
    out[1] = other_hypothesis(s, x, y, 1 - first, same);
    out[2] = other_hypothesis(s, x, y, 2, same);
}

/* Context keys for the sample of channel c at (x, y). */
SAMPLE_STEP void prepare_sample(stripe_model *s, uint32_t x, uint32_t y, uint32_t c) {
    neighbours v = neighbours_at(s, x, y, c);
    reference ref =
        s->image->reference_model == REFERENCE_TAPS ? reference_taps(s, x, y) : reference_at(s, x, y, c);
    int guide[GUIDE_INPUTS];
    int guide_count = s->image->guide ? guide_inputs(s, x, y, guide) : 0;
    int hypotheses[HYPOTHESES];
    int hypothesis_count = 0;
    if (s->image->luma_round5 && ref.present) {
        other_hypotheses(s, x, y, ref.r, hypotheses);
        hypothesis_count = HYPOTHESES;
    }
    int grad = clamp_sample(v.w + v.n - v.nw);
    int med = med_predict(&v);
    int sub[BLEND_PREDICTORS] = {v.w, v.n, v.ne, grad, clamp_sample(v.w + v.ne - v.n),
                                 clamp_sample(v.n + v.ne - v.nne),
                                 least_squares_prediction(s, x, y, c, &v, &ref, guide, guide_count, hypotheses,
                                                          hypothesis_count)};
    int cross_value = -1, cross_residual = 0;
    int cross[CROSS_CONTEXTS] = {0};
    if (ref.present) {
        /* The previous frame's local differences carried over (video has
         * one channel per plane, so these take the cross-channel places). */
        cross_value = ref.r;
        cross[0] = clamp_sample(v.w + ref.r - ref.w);
        cross[1] = clamp_sample(v.n + ref.r - ref.n);
        cross[2] = clamp_sample(grad + ref.r - clamp_sample(ref.w + ref.n - median3(ref.w, ref.n, ref.r)));
        cross[3] = ref.r;
        cross[4] = clamp_sample((v.w + v.n + 2 * ref.r - ref.w - ref.n + 1) >> 1);
        cross_residual = ref.r - median3(ref.w, ref.n, ref.w + ref.n - ref.r);
        sub[4] = cross[0];
        sub[5] = cross[1];
        if (s->image->reference_model == REFERENCE_TAPS) {
            /* The earlier frames themselves, in the places of W and NE:
             * their mean averages the noise of each away. */
            sub[0] = mean_of_references(&ref);
            sub[2] = ref.r;
        }
        if (hypothesis_count)
            sub[1] = hypotheses[0];
    } else if (c > 0 || s->image->second) {
        /* The earlier channel's local differences carried over. */
        neighbours u;
        int here;
        if (c > 0) {
            u = neighbours_at(s, x, y, c - 1);
            here = pixel_at(s->image, x, y, c - 1);
        } else {
            u = second_neighbours(s, x, y);
            here = second_at(s->image, x, y, 0, 0);
        }
        cross_value = here;
        cross[0] = clamp_sample(v.w + here - u.w);
        cross[1] = clamp_sample(v.n + here - u.n);
        cross[2] = clamp_sample(grad + here - clamp_sample(u.w + u.n - u.nw));
        cross[3] = clamp_sample(v.ne + here - u.ne);
        cross[4] = clamp_sample((v.w + v.n + 2 * here - u.w - u.n + 1) >> 1);
        cross_residual = here - med_predict(&u);
        sub[4] = cross[0];
        sub[5] = cross[1];
    }
    s->place = (x & 3) | ((y - frame_top(s, y)) & 3) << 2;
    blend(s, x, y, c, sub);
    int blended = (s->blend16 + 8) >> 4;
    int predictions[PREDICTION_CONTEXTS] = {v.w, v.n, v.nw, v.ne, grad, med, sub[4], sub[5],
                                            clamp_sample(2 * v.w - v.ww), clamp_sample(2 * v.n - v.nn),
                                            blended, sub[6]};
    if (ref.present && s->image->reference_model == REFERENCE_TAPS) {
        /* The references' mean and the older frame for NW and 2W - WW. */
        predictions[2] = sub[0];
        if (ref.older >= 0)
            predictions[8] = ref.older;
    }
    if (s->image->second && ref.present)
        predictions[5] = clamp_sample(ref.r + s->second_residual);
    uint32_t k = 0, salt = c << 8;
    for (int i = 0; i < PREDICTION_CONTEXTS; i++, k++)
        s->key[k] = hash2(salt | k, (uint32_t)predictions[i]);
    for (int i = 0; i < CROSS_CONTEXTS; i++, k++)
        s->key[k] =
            hash2(salt | k, (uint32_t)(c > 0 || ref.present || s->image->second ? cross[i] : predictions[i]));
    uint32_t q = (uint32_t)clamp_sample(cross_residual + 128) >> 2;
    uint32_t combined[COMBINED_CONTEXTS] = {
        (uint32_t)(v.w >> 2) << 8 | (uint32_t)(v.n >> 2),
        (uint32_t)(v.n >> 2) << 8 | (uint32_t)(v.ne >> 2),
        (uint32_t)(v.w >> 2) << 8 | (uint32_t)(v.nw >> 2),
        (uint32_t)blended << 8 | s->activity,
        (uint32_t)blended << 8 | q,
        (uint32_t)(cross_value + 1) << 16 | (uint32_t)(s->blend16 >> 2),
        earlier_channels(s, x, y, c, &v) ^ (uint32_t)(cross_value + 1) << 24,
        hash2(earlier_channels(s, x, y, c, &v), (uint32_t)blended)};
    if (guide_count)
        guide_contexts(guide, guide_count, blended, cross_value, combined);
    if (s->image->second)
        combined[3] = hash2((uint32_t)blended, (uint32_t)(LMC_MAX(-32, LMC_MIN(s->second_residual, 31)) + 32));
    for (int i = 0; i < COMBINED_CONTEXTS; i++, k++)
        s->key[k] = hash2(salt | k, combined[i]);
    s->channel = c;
    s->c0 = 1;
    s->bit = 0;
}

/* All slots are requested before the first is read, so the misses overlap. */
SAMPLE_STEP void select_slots(stripe_model *s, uint32_t nibble_tag) {
    for (int i = 0; i < CONTEXTS; i++) {
        s->slot[i] = s->map[i] + (size_t)(hash2(s->key[i], nibble_tag) & s->map_mask[i]) * SLOT_WORDS;
        __builtin_prefetch(s->slot[i]);
    }
}

/* A context's map: its full size, or for a small stripe about two slots
 * per sample (a stripe touches at most two per sample and context), so
 * small images do not clear megabytes of tables. */
static uint32_t map_bits(int context, uint64_t samples) {
    uint32_t full = context < PREDICTION_CONTEXTS + CROSS_CONTEXTS ? SMALL_MAP_BITS : LARGE_MAP_BITS, bits = 8;
    while (bits < full && ((uint64_t)1 << bits) < 2 * samples)
        bits++;
    return bits;
}

static size_t maps_words(uint64_t samples) {
    size_t words = 0;
    for (int i = 0; i < CONTEXTS; i++)
        words += (size_t)SLOT_WORDS << map_bits(i, samples);
    return words;
}

/* P(bit = 1) * 65536 of the next bit under a logistic of centre centre16
 * (1/16 steps) and scale 2^20 * 256 / inverse, given the sample's bits so
 * far (c0). */
SAMPLE_STEP uint32_t logistic_bit(const stripe_model *s, int32_t centre16, int64_t inverse) {
    uint32_t known = s->bit, c0 = s->c0;
    int32_t width = 256 >> known;
    int32_t low = (int32_t)(c0 ^ (1u << known)) * width;
    int32_t mid = low + width / 2, high = low + width;
    /* F(v) = squash(256 (v - 1/2 - centre) / scale), v in samples. */
    int32_t f[3];
    int32_t edges[3] = {low, mid, high};
    for (int i = 0; i < 3; i++) {
        int32_t z = (int32_t)(((int64_t)(edges[i] * 16 - 8 - centre16) * inverse) >> 20);
        f[i] = (int32_t)squash(s->tables, clamp_logistic(z));
    }
    int32_t zero = f[1] - f[0] + 1, one = f[2] - f[1] + 1;
    uint32_t p = (uint32_t)(((int64_t)one << 16) / (zero + one));
    return LMC_MAX(32u, LMC_MIN(p, 65504u));
}

static uint32_t node_of(const stripe_model *s) {
    return s->bit < 4 ? s->c0 : (s->c0 & ((1u << (s->bit - 4)) - 1)) | (1u << (s->bit - 4));
}

/* Where a prediction (in 1/16) points among the values still possible. */
static uint32_t where_of(const stripe_model *s, int32_t centre16) {
    uint32_t known = s->bit;
    int32_t low16 = (int32_t)((s->c0 ^ (1u << known)) << (8 - known)) * 16;
    /* In whole pixels from the fifth bit on; luma_round5: in 1/2 and 1/4
     * pixels at the last two (-0.01%). */
    int32_t offset = (centre16 - low16) >> (8 - LMC_MIN(known, s->image->luma_round5 ? 6u : 4u));
    return (uint32_t)LMC_MAX(0, LMC_MIN(offset + APM2_WHERE / 4, APM2_WHERE - 1));
}

SAMPLE_STEP uint32_t predict_bit(stripe_model *s) {
    const lmc_cm_tables *t = s->tables;
    uint32_t node = node_of(s);
    for (int i = 0; i < CONTEXTS; i++) {
        s->entry[i] = s->slot[i] + node;
        s->inputs[i] = stretch(t, state_map_p16(*s->entry[i]));
    }
    if (s->image->luma_round5)
        for (int i = 0; i < CONTEXTS; i++) {
            int32_t n = (int32_t)(*s->entry[i] & 1023);
            if (n < YOUNG_COUNT)
                s->inputs[i] = (s->inputs[i] * s->young_scale[n]) >> 16;
        }
    s->inputs[CONTEXTS] = stretch(t, logistic_bit(s, s->blend16, s->inverse_scale));
    s->inputs[CONTEXTS + 1] = stretch(t, logistic_bit(s, s->blend16, s->inverse_scale / 2));
    s->inputs[CONTEXTS + 2] = 256;
    if (s->image->error_contexts) {
        s->inputs[INPUTS] = stretch(t, logistic_bit(s, s->ls16, s->ls_inverse_scale));
        s->inputs[INPUTS + 1] = stretch(t, logistic_bit(s, s->ls16, 2 * s->ls_inverse_scale));
    }

    uint32_t c = s->channel, where = where_of(s, s->blend16);
    s->active[0] = s->weights[(c * 8 + s->bit) * ACTIVITY_LEVELS + s->activity];
    s->active[1] = s->weights[MIXER0_SETS + c * 256 + s->c0];
    s->active[2] = s->weights[MIXER0_SETS + MIXER1_SETS + (c * 8 + s->bit) * 32 + where];
    if (s->image->error_contexts) {
        s->active[3] = s->weights[MIXER_SETS + (c * 8 + s->bit) * ERROR_SET_CONTEXTS + s->error_set];
        s->active[4] = s->weights[MIXER_SETS + MIXER3_SETS + (c * 8 + s->bit) * 16 + s->place];
    }
    if (s->set_updates)
        for (int m = 0; m < s->mixers; m++)
            s->active_updates[m] = s->set_updates + (s->active[m] - s->weights[0]) / INPUT_SLOTS;
    for (int m = 0; m < s->mixers; m++) {
        int64_t dot = 0;
        for (int i = 0; i < s->n_inputs; i++)
            dot += (int64_t)s->active[m][i] * s->inputs[i];
        s->final_inputs[m] = clamp_logistic((int)(dot >> 16));
        s->p_mixer[m] = squash(t, s->final_inputs[m]);
    }
    s->final_inputs[s->mixers] = 256;
    s->final_active = s->final_weights[c * 8 + s->bit];
    int64_t dot = 0;
    for (int i = 0; i <= s->mixers; i++)
        dot += (int64_t)s->final_active[i] * s->final_inputs[i];
    int x = clamp_logistic((int)(dot >> 16));
    s->p_final = squash(t, x);
    uint32_t apm1 = s->image->error_contexts
                        ? ((c * ACTIVITY_LEVELS + s->spread) * APM2_WHERE + where_of(s, s->ls16)) * 8 + s->bit
                        : c * 256 + s->c0;
    uint32_t p_a1 = apm_predict(&s->apm1, t->apm_identity, apm1, x);
    uint32_t p_a2 = apm_predict(&s->apm2, t->apm_identity,
                                ((c * ACTIVITY_LEVELS + s->activity) * APM2_WHERE + where) * 256 + s->c0, x);
    uint32_t p = (squash(t, x) + p_a1 + 2 * p_a2) >> 2;
    if (s->image->error_contexts) {
        uint32_t p_a3 = apm_predict(&s->apm3, t->apm_identity,
                                    ((c * ERROR_SET_CONTEXTS + s->error_set) * APM2_WHERE + where) * 8 + s->bit, x);
        p = (squash(t, x) + p_a1 + 2 * p_a2 + 2 * p_a3 + 3) / 6;
    }
    return LMC_MAX(1u, LMC_MIN(p, 65535u));
}

/* Mixer m's learning rate for this bit (and, luma_round5, one more update
 * of its weight set). */
SAMPLE_STEP int32_t mixer_rate_of(stripe_model *s, int m) {
    if (!s->set_updates)
        return s->mixer_rate;
    uint32_t n = *s->active_updates[m];
    *s->active_updates[m] = (uint16_t)(n + (n < 65535));
    return s->mixer_rate + s->rate_boost[n >> RATE_STEP_BITS];
}

SAMPLE_STEP void update_bit(stripe_model *s, int bit) {
    const lmc_cm_tables *t = s->tables;
    for (int m = 0; m < s->mixers; m++)
        mixer_train_n(s->active[m], s->inputs, s->n_inputs,
                      ((bit << 16) - (int32_t)s->p_mixer[m]) * mixer_rate_of(s, m) >> 4);
    mixer_train_n(s->final_active, s->final_inputs, s->mixers + 1,
                  ((bit << 16) - (int32_t)s->p_final) * FINAL_RATE >> 4);
    apm_update(&s->apm1, t->apm_identity, bit);
    apm_update(&s->apm2, t->apm_identity, bit);
    if (s->image->error_contexts)
        apm_update(&s->apm3, t->apm_identity, bit);
    for (int i = 0; i < CONTEXTS; i++)
        state_map_update_limited(s->entry[i], bit, t->reciprocal, s->map_limit);
    s->c0 = s->c0 << 1 | (uint32_t)bit;
    s->bit++;
    if (s->bit == 4)
        select_slots(s, s->c0);
}

/* ---- Coding a stripe ---- */

typedef struct {
    lmc_rc_encoder *encoder; /* one of the two */
    lmc_rc_decoder *decoder;
} bit_coder;

SAMPLE_STEP int code_bit(stripe_model *s, const bit_coder *coder, int bit) {
    uint32_t p = predict_bit(s);
    if (coder->encoder)
        lmc_rc_encode_bit(coder->encoder, p, bit);
    else
        bit = lmc_rc_decode_bit(coder->decoder, p);
    update_bit(s, bit);
    return bit;
}

/* local_errors: the 3x3 sums (clamped into the frame) of the errors of the
 * frame just coded, the stripe's frame k, into slot k % 2. */
static void sum_frame_errors(stripe_model *s, uint32_t frame) {
    const channel_image *im = s->image;
    uint32_t *sums = s->error_sums + (size_t)(frame % 2) * im->frame_height * im->width * (BLEND_PREDICTORS + 1);
    for (int64_t y = 0; y < im->frame_height; y++)
        for (int64_t x = 0; x < im->width; x++) {
            uint32_t total[BLEND_PREDICTORS + 1] = {0};
            for (int64_t j = y - 1; j <= y + 1; j++)
                for (int64_t i = x - 1; i <= x + 1; i++) {
                    const uint16_t *e = s->frame_errors + error_index(im, clamp_index(i, im->width - 1),
                                                                      clamp_index(j, im->frame_height - 1), 0);
                    for (int k = 0; k <= BLEND_PREDICTORS; k++)
                        total[k] += e[k];
                }
            memcpy(sums + error_index(im, x, y, 0), total, sizeof total);
        }
}

/* Codes (or decodes into the image) every sample of rows [first, end) of
 * the stripe, which continue the rows coded before (video: whole frames). */
static inline __attribute__((always_inline)) void code_rows_body(stripe_model *s, const bit_coder *coder,
                                                                 uint32_t first, uint32_t end) {
    const channel_image *im = s->image;
    for (uint32_t y = first; y < end; y++) {
        if (s->frame_errors && y > s->first_row && (y - s->first_row) % im->frame_height == 0)
            sum_frame_errors(s, (y - s->first_row) / im->frame_height - 1);
        for (uint32_t x = 0; x < im->width; x++) {
            for (uint32_t c = 0; c < im->channels; c++) {
                uint8_t *sample = &im->pixels[((size_t)y * im->width + x) * im->channels + c];
                prepare_sample(s, x, y, c);
                select_slots(s, 0);
                int value = 0;
                for (int b = 7; b >= 0; b--)
                    value = value << 1 | code_bit(s, coder, (*sample >> b) & 1);
                /* Only decoding writes: an encoder's other planes may be
                 * reading this one (as their guide) at the same time. */
                if (coder->decoder)
                    *sample = (uint8_t)value;
                record_errors(s, x, y, c, value);
            }
        }
    }
}

/* code_rows_body compiled for any x86-64 and, for CPUs that have it, with
 * AVX2, which vectorises the mixers' integer dot products and updates and
 * the least-squares sums element by element (floating-point sums are never
 * reordered without -ffast-math, and -ffp-contract=off forbids fusing):
 * the same bits either way (test_video compares the payloads), about 15%
 * faster. LMC_SIMD chooses as it does for the other kernels. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static void code_rows_avx2(stripe_model *s, const bit_coder *coder, uint32_t first,
                                                           uint32_t end) {
    code_rows_body(s, coder, first, end);
}
#endif

static void code_rows_portable(stripe_model *s, const bit_coder *coder, uint32_t first, uint32_t end) {
    code_rows_body(s, coder, first, end);
}

static void code_rows(stripe_model *s, const bit_coder *coder, uint32_t first, uint32_t end) {
#if defined(__x86_64__) || defined(__i386__)
    if (lmc_simd_selected() >= LMC_SIMD_AVX2) {
        code_rows_avx2(s, coder, first, end);
        return;
    }
#endif
    code_rows_portable(s, coder, first, end);
}

static void stripe_free(stripe_model *s) {
    free(s->maps);
    free(s->weights);
    free(s->apm1.cells);
    free(s->apm2.cells);
    free(s->apm3.cells);
    free(s->ls_errors);
    free(s->feedback);
    free(s->errors);
    free(s->frame_errors);
    free(s->error_sums);
    free(s->ols);
    free(s->windows);
    free(s->set_updates);
    free(s->guide_windows);
}

/* What the model file gives every stripe to start from: the mixers'
 * weights learned on photographs (train/README.md, "Image model"), or
 * generic starting weights when the file has none. */
typedef struct {
    const lmc_cm_tables *tables;
    const int32_t *mixer;       /* [MIXER_SETS][INPUTS] or NULL */
    const int32_t *final;       /* [FINAL_SETS][FINAL_INPUTS] or NULL */
    int32_t (*learned)[INPUTS]; /* training: receives stripe 0's final weights */
    int32_t (*learned_final)[FINAL_INPUTS];
} image_prior;

#define MIXER_TENSOR "image.mixer"
#define FINAL_TENSOR "image.final"

static const int32_t *prior_tensor(const lmc_model *model, const char *name, uint64_t columns, uint64_t rows,
                                   lmc_status *status, lmc_message *message) {
    const lmc_gguf_tensor *t = lmc_gguf_tensor_find(model->gguf, name);
    if (!t)
        return NULL;
    if (t->type != LMC_GGML_I32 || t->n_dims != 2 || t->ne[0] != columns || t->ne[1] != rows ||
        ((uintptr_t)t->data & 3) != 0) {
        *status = lmc_fail(message, LMC_ERR_MODEL_INVALID,
                           "model '%s': tensor %s is not int32 [%llu][%llu] (made for another lmc version?)",
                           model->name, name, (unsigned long long)rows, (unsigned long long)columns);
        return NULL;
    }
    return t->data;
}

static lmc_status prior_from_model(const lmc_model *model, image_prior *prior, lmc_message *message) {
    lmc_status status = LMC_OK;
    prior->mixer = prior_tensor(model, MIXER_TENSOR, INPUTS, MIXER_SETS, &status, message);
    if (status == LMC_OK)
        prior->final = prior_tensor(model, FINAL_TENSOR, FINAL_INPUTS, FINAL_SETS, &status, message);
    return status;
}

/* The mixers' starting weights: the prior's. error_contexts: the extra
 * mixers start as mixer 0 does at a middle activity, their extra inputs at
 * 0, and the second layer shares among the five what it gave the three. */
static void start_weights(stripe_model *s, const image_prior *prior) {
    int sets = s->mixers > MIXERS ? ALL_MIXER_SETS : MIXER_SETS;
    for (int set = 0; set < sets; set++) {
        int from = set;
        if (set >= MIXER_SETS) {
            int per_bit = set < MIXER_SETS + MIXER3_SETS ? ERROR_SET_CONTEXTS : 16;
            int channel_bit = (set - (set < MIXER_SETS + MIXER3_SETS ? MIXER_SETS : MIXER_SETS + MIXER3_SETS)) / per_bit;
            from = channel_bit * ACTIVITY_LEVELS + ACTIVITY_LEVELS / 2 - 1;
        }
        for (int i = 0; i < INPUT_SLOTS; i++)
            s->weights[set][i] = i >= INPUTS ? 0 : prior->mixer ? prior->mixer[from * INPUTS + i] : MIXER_START;
    }
    for (int set = 0; set < FINAL_SETS; set++) {
        memset(s->final_weights[set], 0, sizeof s->final_weights[set]);
        for (int i = 0; i < MIXERS; i++) {
            int32_t w = prior->final ? prior->final[set * FINAL_INPUTS + i] : FINAL_START;
            s->final_weights[set][i] = w * MIXERS / s->mixers;
        }
        for (int i = MIXERS; i < s->mixers; i++)
            s->final_weights[set][i] = 65536 / s->mixers;
        s->final_weights[set][s->mixers] = prior->final ? prior->final[set * FINAL_INPUTS + MIXERS] : 0;
    }
}

static lmc_status stripe_open(stripe_model *s, const image_prior *prior, const channel_image *image,
                              uint32_t first_row, uint32_t rows) {
    memset(s, 0, sizeof *s);
    s->tables = prior->tables;
    s->image = image;
    s->first_row = first_row;
    s->rows = rows;
    uint64_t samples = (uint64_t)rows * image->width * image->channels;
    size_t map_words = maps_words(samples);
    /* Slots are cache lines: aligned, each is one miss, not two. */
    s->maps = aligned_alloc(64, map_words * sizeof *s->maps);
    s->mixers = image->error_contexts ? MIXERS_MAX : MIXERS;
    s->n_inputs = image->error_contexts ? INPUT_SLOTS : INPUTS;
    s->weights = malloc(sizeof(*s->weights) * (image->error_contexts ? ALL_MIXER_SETS : MIXER_SETS));
    size_t apm1_contexts = image->error_contexts ? APM1_SPREAD_CONTEXTS_PER_CHANNEL : APM1_CONTEXTS_PER_CHANNEL;
    s->apm1.cells = calloc((size_t)image->channels * apm1_contexts * APM_CELLS, sizeof *s->apm1.cells);
    s->apm2.cells = calloc((size_t)image->channels * APM2_CONTEXTS_PER_CHANNEL * APM_CELLS, sizeof *s->apm2.cells);
    s->errors = calloc((size_t)2 * image->channels * image->width * (BLEND_PREDICTORS + 1), sizeof *s->errors);
    s->ols = calloc(image->channels, sizeof *s->ols);
    if (image->error_contexts) {
        s->apm3.cells = calloc((size_t)image->channels * APM3_CONTEXTS_PER_CHANNEL * APM_CELLS, sizeof *s->apm3.cells);
        s->ls_errors = calloc(2 * (size_t)image->frame_height * image->width, sizeof *s->ls_errors);
        s->feedback = calloc(1, sizeof *s->feedback);
    }
    /* Errors start at 0, as errors_at's do: a frame's first rows read them. */
    size_t frame_errors = image->local_errors ? (size_t)image->frame_height * image->width * (BLEND_PREDICTORS + 1) : 0;
    if (frame_errors) {
        s->frame_errors = calloc(frame_errors, sizeof *s->frame_errors);
        s->error_sums = malloc(2 * frame_errors * sizeof *s->error_sums);
    }
    s->mixer_rate = image->local_errors ? MIXER_RATE_LOCAL : MIXER_RATE;
    s->map_limit = image->local_errors ? MAP_LIMIT_LOCAL : MAP_LIMIT;
    if (image->luma_round5) {
        s->mixer_rate = MIXER_RATE_ROUND5;
        s->set_updates = calloc(ALL_MIXER_SETS, sizeof *s->set_updates);
        for (int k = 0; k < 65536 >> RATE_STEP_BITS; k++)
            s->rate_boost[k] = (uint8_t)(RATE_BOOST * RATE_HALF / ((k << RATE_STEP_BITS) + RATE_HALF));
        for (int n = 0; n < YOUNG_COUNT; n++)
            s->young_scale[n] = (n + YOUNG_OFFSET) * 65536 / (YOUNG_COUNT + YOUNG_OFFSET);
    }
    /* Only a stack of two frames or more has vectors (and references). */
    int windowed = image->reference_model == REFERENCE_TAPS && image->motion;
    if (windowed)
        s->windows = malloc((size_t)image->blocks_x * REFERENCES * WINDOW_SAMPLES * sizeof *s->windows);
    int guide_windowed = windowed && image->guide && image->chroma_round5;
    if (guide_windowed)
        s->guide_windows = malloc((size_t)image->blocks_x * 2 * WINDOW_SAMPLES * sizeof *s->guide_windows);
    if (!s->maps || !s->ols || !s->weights || !s->apm1.cells || !s->apm2.cells || !s->errors ||
        (windowed && !s->windows) || (guide_windowed && !s->guide_windows) ||
        (frame_errors && (!s->frame_errors || !s->error_sums)) ||
        (image->error_contexts && (!s->apm3.cells || !s->ls_errors || !s->feedback)) ||
        (image->luma_round5 && !s->set_updates)) {
        stripe_free(s);
        return LMC_ERR_NOMEM;
    }
    for (size_t i = 0; i < map_words; i++)
        s->maps[i] = STATE_MAP_START;
    uint32_t *next = s->maps;
    for (int i = 0; i < CONTEXTS; i++) {
        s->map[i] = next;
        s->map_mask[i] = (1u << map_bits(i, samples)) - 1;
        next += (size_t)SLOT_WORDS << map_bits(i, samples);
    }
    start_weights(s, prior);
    return LMC_OK;
}

/* ---- Whole images ---- */

/* How a video stack is coded beyond its shape: NULL for images and for
 * stacks of older archives (REFERENCE_BILINEAR, no guide). */
typedef struct {
    uint32_t reference_model;
    uint32_t local_errors;              /* layout 3 */
    uint32_t error_contexts;            /* layout 4 */
    uint32_t luma_round5;               /* layout 5, the luma stack (a clip's first plane) */
    uint32_t chroma_round5;             /* layout 5, every 8-bit plane: chroma and first frames */
} video_coding;

typedef struct {
    image_prior prior;
    channel_image image;
    uint32_t stripe_rows, stripes;
    lmc_buf *streams;           /* encoding: one per stripe */
    const uint8_t **inputs;     /* decoding: each stripe's stream */
    size_t *input_sizes;
    lmc_status *status;
} image_job;

/* One stripe being coded: its model and its end of the range coder (which
 * the coder points to: a stripe_run does not move once started). */
typedef struct {
    stripe_model model;
    lmc_rc_encoder encoder;
    lmc_rc_decoder decoder;
    bit_coder coder;
    uint32_t first_row, rows;
} stripe_run;

/* Opens stripe i of the job: onto its stream when encoding (job->streams),
 * from its input when decoding. */
static lmc_status stripe_start(image_job *job, uint32_t i, stripe_run *run) {
    run->first_row = i * job->stripe_rows;
    run->rows = LMC_MIN(job->stripe_rows, job->image.height - run->first_row);
    lmc_status status = stripe_open(&run->model, &job->prior, &job->image, run->first_row, run->rows);
    if (status != LMC_OK)
        return status;
    if (job->streams) {
        lmc_rc_encoder_init(&run->encoder, &job->streams[i]);
        run->coder = (bit_coder){&run->encoder, NULL};
    } else {
        lmc_rc_decoder_init(&run->decoder, job->inputs[i], job->input_sizes[i]);
        run->coder = (bit_coder){NULL, &run->decoder};
    }
    return LMC_OK;
}

/* Closes a started stripe: its stream's end written (encoding) or checked
 * (decoding); when training, stripe 0's weights kept. */
static lmc_status stripe_finish(image_job *job, uint32_t i, stripe_run *run) {
    lmc_status status;
    if (job->streams) {
        status = lmc_rc_encoder_finish(&run->encoder);
        if (i == 0 && job->prior.learned) {
            for (int set = 0; set < MIXER_SETS; set++)
                memcpy(job->prior.learned[set], run->model.weights[set], sizeof job->prior.learned[set]);
            for (int set = 0; set < FINAL_SETS; set++)
                memcpy(job->prior.learned_final[set], run->model.final_weights[set],
                       sizeof job->prior.learned_final[set]);
        }
    } else {
        status = lmc_rc_decoder_end_ok(&run->decoder) ? LMC_OK : LMC_ERR_CORRUPT;
    }
    stripe_free(&run->model);
    return status;
}

static void code_stripes(void *ctx, int begin, int end) {
    image_job *job = ctx;
    for (int i = begin; i < end; i++) {
        stripe_run run;
        job->status[i] = stripe_start(job, (uint32_t)i, &run);
        if (job->status[i] != LMC_OK)
            continue;
        code_rows(&run.model, &run.coder, run.first_row, run.first_row + run.rows);
        job->status[i] = stripe_finish(job, (uint32_t)i, &run);
    }
}

static uint32_t channels_of(const lmc_image_shape *shape) {
    return shape->planes * (shape->max_value > 255 ? 2u : 1u);
}

static lmc_status check_shape(const lmc_image_shape *shape, lmc_message *message) {
    /* max_value 0 is an image of one colour (a palette of one). */
    if (shape->width == 0 || shape->height == 0 || shape->planes == 0 || shape->planes > MAX_PLANES ||
        shape->max_value > 65535 ||
        (shape->frame_height && (shape->height % shape->frame_height != 0 || shape->planes != 1)) ||
        (shape->motion_shift != 0 && shape->motion_shift != 2))
        return lmc_fail(message, LMC_ERR_UNSUPPORTED, "image: %u x %u pixels of %u planes up to %u not supported",
                        shape->width, shape->height, shape->planes, shape->max_value);
    return LMC_OK;
}

/* Planar samples to interleaved 8-bit channels (16-bit: high byte first). */
static void to_channels(const lmc_image_shape *shape, const uint16_t *samples, uint8_t *pixels) {
    size_t area = (size_t)shape->width * shape->height;
    uint32_t channels = channels_of(shape), wide = shape->max_value > 255;
    for (uint32_t p = 0; p < shape->planes; p++)
        for (size_t i = 0; i < area; i++) {
            uint16_t v = samples[p * area + i];
            if (wide) {
                pixels[i * channels + 2 * p] = (uint8_t)(v >> 8);
                pixels[i * channels + 2 * p + 1] = (uint8_t)v;
            } else {
                pixels[i * channels + p] = (uint8_t)v;
            }
        }
}

static int from_channels(const lmc_image_shape *shape, const uint8_t *pixels, uint16_t *samples) {
    size_t area = (size_t)shape->width * shape->height;
    uint32_t channels = channels_of(shape), wide = shape->max_value > 255;
    for (uint32_t p = 0; p < shape->planes; p++)
        for (size_t i = 0; i < area; i++) {
            uint16_t v = wide ? (uint16_t)(pixels[i * channels + 2 * p] << 8 | pixels[i * channels + 2 * p + 1])
                              : pixels[i * channels + p];
            if (v > shape->max_value)
                return 0;
            samples[p * area + i] = v;
        }
    return 1;
}

static uint32_t frame_height_of(const lmc_image_shape *shape) {
    return shape->frame_height ? shape->frame_height : shape->height;
}

/* Stripes of whole frames for video: long enough that the model has time
 * to learn (about stripe_pixels), balanced. */
static uint32_t video_stripe_rows(const lmc_image_shape *shape, uint32_t stripe_pixels) {
    uint32_t fh = frame_height_of(shape), frames = shape->height / fh;
    uint64_t frame_pixels = (uint64_t)fh * shape->width;
    uint32_t per_stripe = (uint32_t)LMC_MAX(1u, stripe_pixels / frame_pixels);
    uint32_t stripes = (frames + per_stripe - 1) / per_stripe;
    return (frames + stripes - 1) / stripes * fh;
}

static uint32_t image_stripe_count(const lmc_image_shape *shape) {
    uint32_t rows = LMC_MAX(1u, STRIPE_PIXELS / shape->width);
    return (shape->height + rows - 1) / rows;
}

static uint32_t balanced_rows(uint32_t height, uint32_t stripes) {
    return (height + stripes - 1) / stripes;
}

/* The stripe height of an image: about STRIPE_PIXELS per stripe, and an
 * even count once an image is worth splitting (at least STRIPE_PIXELS / 2),
 * because an odd count leaves one of two threads (the common laptop and CI
 * case) idle for a whole stripe: a 512x512 image decodes in half the time
 * for +0.6% of its size. */
static uint32_t stripe_rows_for(const lmc_image_shape *shape) {
    if (frame_height_of(shape) != shape->height)
        return video_stripe_rows(shape, VIDEO_STRIPE_PIXELS);
    uint32_t stripes = image_stripe_count(shape);
    if (stripes % 2 && (uint64_t)shape->width * shape->height >= STRIPE_PIXELS / 2)
        stripes = LMC_MIN(stripes + 1, shape->height);
    return balanced_rows(shape->height, stripes);
}

/* Archives made before the even-count rule (2026-11-28) used the nearest
 * count, odd or not; the decoder accepts either, both fixed by geometry. */
static uint32_t stripe_rows_before_even_rule(const lmc_image_shape *shape) {
    if (frame_height_of(shape) != shape->height)
        return video_stripe_rows(shape, VIDEO_STRIPE_PIXELS);
    return balanced_rows(shape->height, image_stripe_count(shape));
}

/* The stripe height the encoder uses; the decoder also accepts the one
 * before the even rule (stripe_rows_before_even_rule). */
static uint32_t stripe_rows_of(const lmc_image_shape *shape, const video_coding *video) {
    if (video && video->reference_model == REFERENCE_TAPS)
        return video_stripe_rows(shape, VIDEO_TAPS_STRIPE_PIXELS);
    return stripe_rows_for(shape);
}

/* A guide's scale (guide pixels a pixel, rounded down, at least 1) if it
 * suits the stack: as many frames, at most 4 times as wide and tall. */
static int guide_fits(const lmc_image_shape *shape, const lmc_image_shape *guide) {
    uint32_t fh = frame_height_of(shape);
    return guide && guide->frame_height && guide->planes == 1 && guide->max_value <= 255 &&
           guide->height / guide->frame_height == shape->height / fh && guide->width >= shape->width &&
           guide->width <= 4 * shape->width && guide->frame_height >= fh && guide->frame_height <= 4 * fh;
}

/* A later plane of a clip follows the clip's first plane (video_clip) where
 * that fits and is 8-bit: it reads the first plane's pixels as they are. */
static void attach_guide(channel_image *im, const lmc_image_shape *shape, const channel_image *leader,
                         const lmc_image_shape *leader_shape) {
    if (!guide_fits(shape, leader_shape) || im->reference_model != REFERENCE_TAPS)
        return;
    im->guide = leader->pixels;
    im->guide_width = leader_shape->width;
    im->guide_frame_height = leader_shape->frame_height;
    im->guide_scale_x = leader_shape->width / im->width;
    im->guide_scale_y = leader_shape->frame_height / im->frame_height;
}

static lmc_status job_open(image_job *job, const lmc_model *model, const lmc_image_shape *shape,
                           const lmc_cm_tables *tables, uint32_t stripe_rows, const video_coding *video,
                           lmc_message *message) {
    uint32_t reference_model = video ? video->reference_model : REFERENCE_BILINEAR;
    uint32_t local_errors = video ? video->local_errors : 0;
    memset(job, 0, sizeof *job);
    lmc_status status = check_shape(shape, message);
    if (status != LMC_OK)
        return status;
    if (model->family != LMC_FAMILY_IMAGE)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "model '%s' is not an image model", model->name);
    status = prior_from_model(model, &job->prior, message);
    if (status != LMC_OK)
        return status;
    job->prior.tables = tables;
    job->image = (channel_image){.width = shape->width, .height = shape->height, .channels = channels_of(shape),
                                 .frame_height = frame_height_of(shape), .motion_shift = shape->motion_shift,
                                 .reference_model = reference_model, .local_errors = local_errors,
                                 .error_contexts = video ? video->error_contexts : 0,
                                 .luma_round5 = video ? video->luma_round5 : 0,
                                 .chroma_round5 = video ? video->chroma_round5 : 0};
    job->stripe_rows = stripe_rows;
    job->stripes = (shape->height + stripe_rows - 1) / stripe_rows;
    /* Cleared: a guided plane may read frames of a stripe that failed. */
    job->image.pixels = calloc((size_t)shape->width * shape->height, job->image.channels);
    job->status = calloc(job->stripes, sizeof *job->status);
    if (!job->image.pixels || !job->status)
        return lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    return LMC_OK;
}

static void job_close(image_job *job) {
    if (job->streams)
        for (uint32_t i = 0; i < job->stripes; i++)
            lmc_buf_free(&job->streams[i]);
    free(job->streams);
    free(job->inputs);
    free(job->input_sizes);
    free(job->status);
    free(job->image.pixels);
    free(job->image.motion);
}

static lmc_status job_status(const image_job *job, lmc_status failure, const char *what, lmc_message *message) {
    for (uint32_t i = 0; i < job->stripes; i++)
        if (job->status[i] != LMC_OK)
            return lmc_fail(message, job->status[i] == LMC_ERR_NOMEM ? LMC_ERR_NOMEM : failure,
                            "image: stripe %u %s", i, job->status[i] == LMC_ERR_NOMEM ? "out of memory" : what);
    return LMC_OK;
}

/* ---- Motion (video) ---- */

/* block_cost of a one-channel block at (x, y) (rows of the stack) and
 * whole pixels (dx, dy) away, all inside the stack: plain rows, which the
 * compiler vectorises (the motion search's full search is most of its time). */
static uint32_t whole_pixel_cost(const channel_image *im, uint32_t x, uint32_t y, uint32_t width, uint32_t height,
                                 int dx, int dy) {
    uint32_t cost = 0;
    for (uint32_t j = 0; j < height; j++) {
        const uint8_t *row = im->pixels + (size_t)(y + j) * im->width + x;
        const uint8_t *ref = im->pixels + (size_t)((int64_t)(y + j) + dy) * im->width + (size_t)((int64_t)x + dx);
        for (uint32_t i = 0; i < width; i++)
            cost += (uint32_t)abs(row[i] - ref[i]);
    }
    return cost;
}

/* Sum of absolute differences between a block of frame `frame` and the
 * previous frame displaced by (dx, dy) in 1/2^motion_shift pixels. */
static uint32_t block_cost(const channel_image *im, uint32_t frame, uint32_t bx, uint32_t by, int dx, int dy) {
    uint32_t fh = im->frame_height, top = frame * fh, shift = im->motion_shift, cost = 0;
    uint32_t x0 = bx * MOTION_BLOCK, y0 = by * MOTION_BLOCK;
    uint32_t x1 = LMC_MIN(x0 + MOTION_BLOCK, im->width), y1 = LMC_MIN(y0 + MOTION_BLOCK, fh);
    uint32_t high_x = (im->width - 1) << shift, previous = (top - fh) << shift;
    int one = 1 << shift, wx = dx / one, wy = dy / one;
    if (im->channels == 1 && dx % one == 0 && dy % one == 0 && (int64_t)x0 + wx >= 0 &&
        (int64_t)x1 + wx <= im->width && (int64_t)y0 + wy >= 0 && (int64_t)y1 + wy <= fh)
        return whole_pixel_cost(im, x0, top + y0, x1 - x0, y1 - y0, wx, wy - (int)fh);
    for (uint32_t y = y0; y < y1; y++) {
        uint32_t ry = clamp_coordinate(((int64_t)y << shift) + dy, 0, (fh - 1) << shift) + previous;
        for (uint32_t x = x0; x < x1; x++) {
            uint32_t rx = clamp_coordinate(((int64_t)x << shift) + dx, 0, high_x);
            cost += (uint32_t)abs(pixel_at(im, x, top + y, 0) - sample_between(im, rx, ry, 0));
        }
    }
    return cost;
}

/* block_cost through the 8-tap filters (REFERENCE_TAPS). */
static uint32_t block_cost_taps(const channel_image *im, uint32_t frame, uint32_t bx, uint32_t by, int dx, int dy) {
    uint32_t fh = im->frame_height, top = frame * fh, cost = 0;
    uint32_t x0 = bx * MOTION_BLOCK, y0 = by * MOTION_BLOCK;
    int width = (int)(LMC_MIN(x0 + MOTION_BLOCK, im->width) - x0);
    int height = (int)(LMC_MIN(y0 + MOTION_BLOCK, fh) - y0);
    int16_t window[MOTION_BLOCK * MOTION_BLOCK];
    interpolate_window(im, top - fh, 4 * (int64_t)x0 + dx, 4 * (int64_t)y0 + dy, width, height, window, MOTION_BLOCK);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            int sample = pixel_at(im, x0 + (uint32_t)x, top + y0 + (uint32_t)y, 0);
            cost += (uint32_t)abs(sample - window[y * MOTION_BLOCK + x]);
        }
    return cost;
}

static uint32_t candidate_cost(const channel_image *im, uint32_t frame, uint32_t bx, uint32_t by, int dx, int dy) {
    if (im->reference_model == REFERENCE_TAPS)
        return block_cost_taps(im, frame, bx, by, dx, dy);
    return block_cost(im, frame, bx, by, dx, dy);
}

/* TAPS: the median of the vectors left, above and above right, already
 * searched; a vector away from it pays MOTION_LAMBDA a quarter pixel, so
 * flat or noisy blocks follow their neighbours (smoother vectors code
 * smaller, and the older frames' chained vectors stay coherent). */
#define MOTION_LAMBDA 4

typedef struct {
    int x, y, lambda;
} vector_prior;

static vector_prior prior_vector(const channel_image *im, uint32_t f, uint32_t bx, uint32_t by) {
    if (im->reference_model != REFERENCE_TAPS)
        return (vector_prior){0, 0, 0};
    const motion_vector *row = im->motion + ((size_t)f * im->blocks_y + by) * im->blocks_x;
    const motion_vector *above = by ? row - im->blocks_x : NULL;
    motion_vector left = bx ? row[bx - 1] : (motion_vector){0, 0};
    motion_vector up = above ? above[bx] : left;
    motion_vector up_right = above && bx + 1 < im->blocks_x ? above[bx + 1] : up;
    return (vector_prior){median3(left.dx, up.dx, up_right.dx), median3(left.dy, up.dy, up_right.dy),
                          MOTION_LAMBDA};
}

static uint32_t vector_penalty(const vector_prior *prior, int dx, int dy) {
    return (uint32_t)(prior->lambda * (abs(dx - prior->x) + abs(dy - prior->y)));
}

/* The best whole-pixel vector of a block (full search; one other than
 * (0, 0) must beat it by 1/16), then the best fraction around it. */
static motion_vector search_block(const channel_image *im, uint32_t f, uint32_t bx, uint32_t by) {
    int one = 1 << im->motion_shift, best_x = 0, best_y = 0;
    vector_prior prior = prior_vector(im, f, bx, by);
    uint32_t zero = block_cost(im, f, bx, by, 0, 0) + vector_penalty(&prior, 0, 0), best_cost = zero - zero / 16;
    for (int dy = -MOTION_RANGE; dy <= MOTION_RANGE; dy++)
        for (int dx = -MOTION_RANGE; dx <= MOTION_RANGE; dx++) {
            uint32_t cost = block_cost(im, f, bx, by, dx * one, dy * one) + vector_penalty(&prior, dx * one, dy * one);
            if (cost < best_cost) {
                best_cost = cost;
                best_x = dx * one;
                best_y = dy * one;
            }
        }
    if (one > 1) {
        best_cost = block_cost(im, f, bx, by, best_x, best_y) + vector_penalty(&prior, best_x, best_y);
        int centre_x = best_x, centre_y = best_y;
        for (int fy = -MOTION_FINE_STEPS; fy <= MOTION_FINE_STEPS; fy++)
            for (int fx = -MOTION_FINE_STEPS; fx <= MOTION_FINE_STEPS; fx++) {
                int vx = centre_x + fx, vy = centre_y + fy;
                uint32_t cost = candidate_cost(im, f, bx, by, vx, vy) + vector_penalty(&prior, vx, vy);
                if (cost < best_cost) {
                    best_cost = cost;
                    best_x = vx;
                    best_y = vy;
                }
            }
    }
    return (motion_vector){(int8_t)best_x, (int8_t)best_y};
}

/* Every block of frames [first, end) but frame 0, against the frame
 * before. A frame's vectors depend on its pixels and the frame before
 * only, so frames may be searched in any order or at the same time. */
static void estimate_motion(channel_image *im, uint32_t first, uint32_t end) {
    for (uint32_t f = LMC_MAX(first, 1u); f < end; f++)
        for (uint32_t by = 0; by < im->blocks_y; by++)
            for (uint32_t bx = 0; bx < im->blocks_x; bx++)
                im->motion[((size_t)f * im->blocks_y + by) * im->blocks_x + bx] = search_block(im, f, bx, by);
}

static uint32_t frame_count(const channel_image *im) {
    return im->height / im->frame_height;
}

/* The largest |component| of a vector: the whole range plus the fraction. */
static int motion_limit(const channel_image *im) {
    int one = 1 << im->motion_shift;
    return MOTION_RANGE * one + (one > 1 ? MOTION_FINE_STEPS : 0);
}

static size_t motion_count(const channel_image *im) {
    return (size_t)(im->height / im->frame_height) * im->blocks_y * im->blocks_x;
}

static lmc_status allocate_motion(channel_image *im) {
    im->blocks_x = (im->width + MOTION_BLOCK - 1) / MOTION_BLOCK;
    im->blocks_y = (im->frame_height + MOTION_BLOCK - 1) / MOTION_BLOCK;
    im->motion = calloc(motion_count(im), sizeof *im->motion);
    return im->motion ? LMC_OK : LMC_ERR_NOMEM;
}

/* The vectors as bytes (dx + range, dy + range), by the --fast model. */
static lmc_status encode_motion(const channel_image *im, lmc_buf *out) {
    size_t n = motion_count(im);
    uint8_t *bytes = malloc(2 * n);
    lmc_buf coded;
    lmc_buf_init(&coded);
    lmc_status status = bytes ? LMC_OK : LMC_ERR_NOMEM;
    for (size_t i = 0; i < n && status == LMC_OK; i++) {
        bytes[2 * i] = (uint8_t)(im->motion[i].dx + motion_limit(im));
        bytes[2 * i + 1] = (uint8_t)(im->motion[i].dy + motion_limit(im));
    }
    if (status == LMC_OK)
        status = lmc_cm_compress(bytes, 2 * n, &coded);
    if (status == LMC_OK)
        status = lmc_varint_put(out, coded.size);
    if (status == LMC_OK)
        status = lmc_buf_append(out, coded.data, coded.size);
    lmc_buf_free(&coded);
    free(bytes);
    return status;
}

static lmc_status decode_motion(channel_image *im, const uint8_t *payload, size_t size, size_t *pos) {
    size_t n = motion_count(im);
    uint64_t coded;
    if (lmc_varint_get(payload, size, pos, &coded) != LMC_OK || coded > size - *pos)
        return LMC_ERR_CORRUPT;
    uint8_t *bytes = malloc(2 * n);
    if (!bytes)
        return LMC_ERR_NOMEM;
    lmc_status status = lmc_cm_decompress(payload + *pos, (size_t)coded, bytes, 2 * n);
    for (size_t i = 0; i < 2 * n && status == LMC_OK; i++)
        if (bytes[i] > 2 * motion_limit(im))
            status = LMC_ERR_CORRUPT;
    int limit = motion_limit(im);
    for (size_t i = 0; i < n && status == LMC_OK; i++)
        im->motion[i] = (motion_vector){(int8_t)(bytes[2 * i] - limit), (int8_t)(bytes[2 * i + 1] - limit)};
    free(bytes);
    *pos += (size_t)coded;
    return status == LMC_ERR_NOMEM ? status : status != LMC_OK ? LMC_ERR_CORRUPT : LMC_OK;
}

static int is_video(const channel_image *im) {
    return im->frame_height != im->height;
}

/* Opens an encoding job: its samples as channels, a stream per stripe and,
 * for a video stack, room for its vectors (estimate_motion finds them). */
static lmc_status encode_open(image_job *job, const lmc_model *model, const lmc_image_shape *shape,
                              const lmc_cm_tables *tables, const uint16_t *samples, const video_coding *video,
                              lmc_message *message) {
    lmc_status status = job_open(job, model, shape, tables, stripe_rows_of(shape, video), video, message);
    if (status != LMC_OK)
        return status;
    job->streams = calloc(job->stripes, sizeof *job->streams);
    if (!job->streams || (is_video(&job->image) && allocate_motion(&job->image) != LMC_OK))
        return lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    to_channels(shape, samples, job->image.pixels);
    return LMC_OK;
}

/* The payload of a coded job: the vectors of video, the stripe height, the
 * stripes' sizes (but the last's) and their streams. */
static lmc_status encode_write(const image_job *job, lmc_buf *out, lmc_message *message) {
    lmc_status status = is_video(&job->image) ? encode_motion(&job->image, out) : LMC_OK;
    if (status == LMC_OK)
        status = lmc_varint_put(out, job->stripe_rows);
    for (uint32_t i = 0; i + 1 < job->stripes && status == LMC_OK; i++)
        status = lmc_varint_put(out, job->streams[i].size);
    for (uint32_t i = 0; i < job->stripes && status == LMC_OK; i++)
        status = lmc_buf_append(out, job->streams[i].data, job->streams[i].size);
    return status == LMC_OK ? LMC_OK : lmc_fail(message, status, "image: out of memory");
}

static lmc_status encode_planes_learning(const lmc_model *model, const lmc_image_shape *shape,
                                         const uint16_t *samples, lmc_pool *pool, lmc_buf *out, int32_t *learned,
                                         int32_t *learned_final, lmc_message *message) {
    lmc_cm_tables *tables = malloc(sizeof *tables);
    if (!tables)
        return lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    lmc_cm_tables_build(tables);
    image_job job;
    lmc_status status = encode_open(&job, model, shape, tables, samples, NULL, message);
    job.prior.learned = (int32_t(*)[INPUTS])learned;
    job.prior.learned_final = (int32_t(*)[FINAL_INPUTS])learned_final;
    if (status == LMC_OK) {
        if (is_video(&job.image))
            estimate_motion(&job.image, 0, frame_count(&job.image));
        lmc_pool_for(pool, (int)job.stripes, code_stripes, &job);
        status = job_status(&job, LMC_ERR_NOMEM, "failed", message);
    }
    if (status == LMC_OK)
        status = encode_write(&job, out, message);
    job_close(&job);
    free(tables);
    return status;
}

static lmc_status encode_planes(const lmc_model *model, const lmc_image_shape *shape, const uint16_t *samples,
                                lmc_pool *pool, lmc_buf *out, lmc_message *message) {
    return encode_planes_learning(model, shape, samples, pool, out, NULL, NULL, message);
}

/* Reads the stripe table: where each stripe's stream starts and ends. */
static lmc_status read_stripes(image_job *job, const uint8_t *payload, size_t size, size_t pos,
                               lmc_message *message) {
    job->inputs = calloc(job->stripes, sizeof *job->inputs);
    job->input_sizes = calloc(job->stripes, sizeof *job->input_sizes);
    if (!job->inputs || !job->input_sizes)
        return lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    for (uint32_t i = 0; i + 1 < job->stripes; i++) {
        uint64_t length;
        if (lmc_varint_get(payload, size, &pos, &length) != LMC_OK || length > size)
            return lmc_fail(message, LMC_ERR_CORRUPT, "image: damaged stripe table");
        job->input_sizes[i] = (size_t)length;
    }
    for (uint32_t i = 0; i < job->stripes; i++) {
        size_t left = size - pos;
        if (i + 1 == job->stripes)
            job->input_sizes[i] = left;
        if (job->input_sizes[i] > left)
            return lmc_fail(message, LMC_ERR_CORRUPT, "image: damaged stripe table");
        job->inputs[i] = payload + pos;
        pos += job->input_sizes[i];
    }
    return LMC_OK;
}

/* Opens a decoding job: the vectors of video, the stripe table. */
static lmc_status decode_open(image_job *job, const lmc_model *model, const lmc_image_shape *shape,
                              const lmc_cm_tables *tables, const uint8_t *payload, size_t size,
                              const video_coding *video, lmc_message *message) {
    /* The stripe height is read after the motion vectors; job_open only
     * needs a valid one (a frame) to lay out the image. */
    size_t pos = 0;
    uint64_t stripe_rows = frame_height_of(shape);
    lmc_status status = job_open(job, model, shape, tables, (uint32_t)stripe_rows, video, message);
    if (status == LMC_OK && is_video(&job->image)) {
        status = allocate_motion(&job->image);
        if (status == LMC_OK)
            status = decode_motion(&job->image, payload, size, &pos);
        if (status != LMC_OK)
            status = lmc_fail(message, status, "image: %s", status == LMC_ERR_NOMEM ? "out of memory"
                                                                                     : "damaged motion vectors");
    }
    /* The stripe height is the one the geometry fixes: the decoder's work
     * must not depend on what a damaged payload claims. */
    if (status == LMC_OK && (lmc_varint_get(payload, size, &pos, &stripe_rows) != LMC_OK ||
                             (stripe_rows != stripe_rows_of(shape, video) &&
                              stripe_rows != stripe_rows_before_even_rule(shape))))
        status = lmc_fail(message, LMC_ERR_CORRUPT, "image: damaged payload header");
    if (status == LMC_OK) {
        free(job->status);
        job->stripe_rows = (uint32_t)stripe_rows;
        job->stripes = (shape->height + job->stripe_rows - 1) / job->stripe_rows;
        job->status = calloc(job->stripes, sizeof *job->status);
        if (!job->status)
            status = lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    }
    return status == LMC_OK ? read_stripes(job, payload, size, pos, message) : status;
}

/* The decoded samples of a job whose stripes all decoded. */
static lmc_status decode_samples(const image_job *job, const lmc_image_shape *shape, uint16_t *samples,
                                 lmc_message *message) {
    lmc_status status = job_status(job, LMC_ERR_CORRUPT, "is damaged", message);
    if (status == LMC_OK && !from_channels(shape, job->image.pixels, samples))
        status = lmc_fail(message, LMC_ERR_CORRUPT, "image: a decoded sample exceeds the image's maximum");
    return status;
}

static lmc_status decode_planes(const lmc_model *model, const lmc_image_shape *shape, const uint8_t *payload,
                                size_t size, lmc_pool *pool, uint16_t *samples, lmc_message *message) {
    lmc_cm_tables *tables = malloc(sizeof *tables);
    if (!tables)
        return lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    lmc_cm_tables_build(tables);
    image_job job;
    lmc_status status = decode_open(&job, model, shape, tables, payload, size, NULL, message);
    if (status == LMC_OK) {
        lmc_pool_for(pool, (int)job.stripes, code_stripes, &job);
        status = decode_samples(&job, shape, samples, message);
    }
    job_close(&job);
    free(tables);
    return status;
}

/* ---- The palette transform ----
 * An image of few colours (a palette image stored as RGB, a chart, a
 * drawing) is coded as a plane of indices into its colours, sorted by
 * brightness so that similar colours get near indices. */

#define MAX_PALETTE 256

typedef struct {
    uint32_t count;
    uint32_t colours[MAX_PALETTE]; /* planes packed 8 bits each, plane 0 highest */
} palette;

static uint32_t colour_at(const lmc_image_shape *shape, const uint16_t *samples, size_t i) {
    size_t area = (size_t)shape->width * shape->height;
    uint32_t colour = 0;
    for (uint32_t p = 0; p < shape->planes; p++)
        colour = colour << 8 | samples[p * area + i];
    return colour;
}

static uint32_t brightness(uint32_t colour, uint32_t planes) {
    if (planes < 3)
        return colour;
    uint32_t shift = (planes - 3) * 8;
    uint32_t r = colour >> (shift + 16) & 255, g = colour >> (shift + 8) & 255, b = colour >> shift & 255;
    return (2 * r + 5 * g + b) << 8 | (colour & 255);
}

/* The image's colours if there are at most MAX_PALETTE, sorted; 0 if not. */
static int find_palette(const lmc_image_shape *shape, const uint16_t *samples, palette *pal) {
    if (shape->palette || shape->max_value > 255 || shape->planes < 2)
        return 0;
    enum { SLOTS = 1024 };
    uint32_t slots[SLOTS];
    uint8_t used[SLOTS] = {0};
    pal->count = 0;
    size_t area = (size_t)shape->width * shape->height;
    for (size_t i = 0; i < area; i++) {
        uint32_t colour = colour_at(shape, samples, i);
        uint32_t h = hash2(colour, 0) & (SLOTS - 1);
        while (used[h] && slots[h] != colour)
            h = (h + 1) & (SLOTS - 1);
        if (used[h])
            continue;
        if (pal->count == MAX_PALETTE)
            return 0;
        used[h] = 1;
        slots[h] = colour;
        pal->colours[pal->count++] = colour;
    }
    /* Insertion sort by brightness, then colour: at most 256 entries. */
    for (uint32_t i = 1; i < pal->count; i++) {
        uint32_t c = pal->colours[i], key = brightness(c, shape->planes), j = i;
        for (; j > 0; j--) {
            uint32_t prev = pal->colours[j - 1], prev_key = brightness(prev, shape->planes);
            if (prev_key < key || (prev_key == key && prev < c))
                break;
            pal->colours[j] = prev;
        }
        pal->colours[j] = c;
    }
    return 1;
}

/* A colour of the image is always in its palette. */
static uint32_t palette_index(const palette *pal, uint32_t colour) {
    uint32_t i = 0;
    while (i + 1 < pal->count && pal->colours[i] != colour)
        i++;
    return i;
}

static lmc_status encode_palette(const lmc_model *model, const lmc_image_shape *shape, const uint16_t *samples,
                                 const palette *pal, lmc_pool *pool, lmc_buf *out, lmc_message *message) {
    size_t area = (size_t)shape->width * shape->height;
    uint16_t *indices = malloc(area * sizeof *indices);
    if (!indices)
        return lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    /* Neighbouring pixels mostly share a colour: search only on a change. */
    uint32_t last_colour = pal->colours[0], last_index = 0;
    for (size_t i = 0; i < area; i++) {
        uint32_t colour = colour_at(shape, samples, i);
        if (colour != last_colour) {
            last_colour = colour;
            last_index = palette_index(pal, colour);
        }
        indices[i] = (uint16_t)last_index;
    }
    lmc_status status = lmc_varint_put(out, pal->count);
    for (uint32_t i = 0; i < pal->count && status == LMC_OK; i++)
        for (uint32_t p = 0; p < shape->planes && status == LMC_OK; p++)
            status = lmc_buf_append_byte(out, (uint8_t)(pal->colours[i] >> (8 * (shape->planes - 1 - p))));
    lmc_image_shape index_shape = {.width = shape->width, .height = shape->height, .planes = 1,
                                   .max_value = pal->count - 1, .palette = 1};
    if (status == LMC_OK)
        status = encode_planes(model, &index_shape, indices, pool, out, message);
    else
        lmc_fail(message, status, "image: out of memory");
    free(indices);
    return status;
}

static lmc_status decode_palette(const lmc_model *model, const lmc_image_shape *shape, const uint8_t *payload,
                                 size_t size, size_t pos, lmc_pool *pool, uint16_t *samples, lmc_message *message) {
    uint64_t count;
    if (lmc_varint_get(payload, size, &pos, &count) != LMC_OK || count == 0 || count > MAX_PALETTE ||
        shape->planes > 4 || count * shape->planes > size - pos)
        return lmc_fail(message, LMC_ERR_CORRUPT, "image: damaged palette");
    const uint8_t *colours = payload + pos;
    pos += (size_t)count * shape->planes;
    for (uint64_t i = 0; i < count * shape->planes; i++)
        if (colours[i] > shape->max_value)
            return lmc_fail(message, LMC_ERR_CORRUPT, "image: damaged palette");
    size_t area = (size_t)shape->width * shape->height;
    lmc_image_shape index_shape = {.width = shape->width, .height = shape->height, .planes = 1,
                                   .max_value = (uint32_t)count - 1, .palette = 1};
    /* The indices are decoded into the first plane's place, then spread. */
    lmc_status status =
        decode_planes(model, &index_shape, payload + pos, size - pos, pool, samples, message);
    if (status != LMC_OK)
        return status;
    for (size_t i = area; i-- > 0;) {
        const uint8_t *colour = colours + (size_t)samples[i] * shape->planes;
        for (uint32_t p = shape->planes; p-- > 0;)
            samples[p * area + i] = colour[p];
    }
    return LMC_OK;
}

/* Payload: u8 transform (TRANSFORM_*), its parameters, then the planes. */
enum { TRANSFORM_NONE = 0, TRANSFORM_PALETTE = 1 };

lmc_status lmc_image_encode(const lmc_model *model, const lmc_image_shape *shape, const uint16_t *samples,
                            lmc_pool *pool, lmc_buf *out, lmc_message *message) {
    lmc_status status = check_shape(shape, message);
    if (status != LMC_OK)
        return status;
    palette *pal = malloc(sizeof *pal);
    if (!pal)
        return lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    int use_palette = find_palette(shape, samples, pal);
    status = lmc_buf_append_byte(out, use_palette ? TRANSFORM_PALETTE : TRANSFORM_NONE);
    if (status != LMC_OK)
        status = lmc_fail(message, status, "image: out of memory");
    else if (use_palette)
        status = encode_palette(model, shape, samples, pal, pool, out, message);
    else
        status = encode_planes(model, shape, samples, pool, out, message);
    free(pal);
    return status;
}

lmc_status lmc_image_decode(const lmc_model *model, const lmc_image_shape *shape, const uint8_t *payload,
                            size_t size, lmc_pool *pool, uint16_t *samples, lmc_message *message) {
    lmc_status status = check_shape(shape, message);
    if (status != LMC_OK)
        return status;
    if (size == 0 || payload[0] > TRANSFORM_PALETTE)
        return lmc_fail(message, LMC_ERR_CORRUPT, "image: unknown transform");
    if (payload[0] == TRANSFORM_PALETTE)
        return decode_palette(model, shape, payload, size, 1, pool, samples, message);
    return decode_planes(model, shape, payload + 1, size - 1, pool, samples, message);
}

/* ---- Memory ---- */

uint64_t lmc_image_memory(const lmc_image_shape *shape, int threads) {
    uint64_t channels = channels_of(shape), area = (uint64_t)shape->width * shape->height;
    /* The taller stripes of the older rule (and for video, of the 8-tap
     * layout) bound every rule's stripes. */
    uint64_t rows = stripe_rows_before_even_rule(shape), blocks_x = (shape->width + MOTION_BLOCK - 1) / MOTION_BLOCK;
    if (shape->frame_height)
        rows = LMC_MAX(rows, stripe_rows_of(shape, &(video_coding){REFERENCE_TAPS, 1, 1, 1, 1}));
    /* Video stacks may take layout 4's mixers and APM. */
    uint64_t mixer_sets = shape->frame_height ? ALL_MIXER_SETS : MIXER_SETS;
    uint64_t set_updates = shape->frame_height ? ALL_MIXER_SETS * sizeof(uint16_t) : 0; /* layout 5 */
    uint64_t apm1 = shape->frame_height ? APM1_SPREAD_CONTEXTS_PER_CHANNEL : APM1_CONTEXTS_PER_CHANNEL;
    uint64_t stripe = maps_words(rows * shape->width * channels) * sizeof(uint32_t) +
                      sizeof(int32_t) * INPUT_SLOTS * mixer_sets + set_updates +
                      channels * (apm1 + APM2_CONTEXTS_PER_CHANNEL) * APM_CELLS * 2 +
                      (shape->frame_height ? channels * APM3_CONTEXTS_PER_CHANNEL * APM_CELLS * 2 +
                                                 sizeof(least_squares) +
                                                 2 * (uint64_t)shape->frame_height * shape->width * sizeof(int16_t)
                                           : 0) +
                      2 * channels * shape->width * (BLEND_PREDICTORS + 1) * 2 + channels * sizeof(least_squares) +
                      (shape->frame_height ? blocks_x * (REFERENCES + 2) * WINDOW_SAMPLES * sizeof(int16_t) : 0) +
                      (shape->frame_height ? (uint64_t)shape->frame_height * shape->width * (BLEND_PREDICTORS + 1) *
                                                 (sizeof(uint16_t) + 2 * sizeof(uint32_t))
                                           : 0);
    uint64_t stripes = (shape->height + stripe_rows_for(shape) - 1) / stripe_rows_for(shape);
    /* The interleaved copy, its payload streams (at most its size) and the
     * motion vectors of video. */
    uint64_t whole = 2 * area * channels + area / (MOTION_BLOCK * MOTION_BLOCK) * 4 + 4096;
    return whole + LMC_MIN(stripes, (uint64_t)LMC_MAX(threads, 1)) * stripe;
}

/* ---- Training (tools/lmc_image_train.c) ---- */

void lmc_image_prior_shape(int which, uint64_t ne[2]) {
    ne[0] = which == 0 ? INPUTS : FINAL_INPUTS;
    ne[1] = which == 0 ? MIXER_SETS : FINAL_SETS;
}

const char *lmc_image_prior_name(int which) {
    return which == 0 ? MIXER_TENSOR : FINAL_TENSOR;
}

lmc_status lmc_image_learn(const lmc_model *model, const lmc_image_shape *shape, const uint16_t *samples,
                           int32_t *mixer, int32_t *final, size_t *coded_bytes, lmc_message *message) {
    lmc_status status = check_shape(shape, message);
    if (status != LMC_OK)
        return status;
    lmc_pool *pool = lmc_pool_create(1);
    lmc_buf out;
    lmc_buf_init(&out);
    status = pool ? encode_planes_learning(model, shape, samples, pool, &out, mixer, final, message)
                  : lmc_fail(message, LMC_ERR_NOMEM, "image: out of memory");
    *coded_bytes = out.size;
    lmc_buf_free(&out);
    lmc_pool_free(pool);
    return status;
}

/* ---- Video clips, newest layouts (video_codec.h) ---- */

/* 8-bit planes take the 8-tap reference (and from layout 3 the local
 * errors, from layout 4 the error contexts, from layout 5 more guidance for
 * chroma and first frames and, for the first plane, luma, the finer
 * mixing); wider ones (two channels a sample) keep the bilinear one, and no
 * guide. */
static video_coding video_coding_of(uint32_t layout, const lmc_image_shape *shape, uint32_t plane) {
    if (shape->max_value > 255)
        return (video_coding){REFERENCE_BILINEAR, 0, 0, 0, 0};
    return (video_coding){REFERENCE_TAPS, layout >= LMC_VIDEO_LAYOUT_ERRORS, layout >= LMC_VIDEO_LAYOUT_CONTEXTS,
                          layout >= LMC_VIDEO_LAYOUT_MIXING && plane == 0, layout >= LMC_VIDEO_LAYOUT_MIXING};
}

static lmc_status check_clip(uint32_t layout, uint32_t planes, const lmc_image_shape *shapes,
                             lmc_message *message) {
    if (layout < LMC_VIDEO_LAYOUT_TAPS || layout > LMC_VIDEO_LAYOUT_MIXING)
        return lmc_fail(message, LMC_ERR_PARAM, "video: no stack layout %u", layout);
    if (planes == 0 || planes > LMC_VIDEO_MAX_PLANES)
        return lmc_fail(message, LMC_ERR_PARAM, "video: %u planes", planes);
    lmc_status status = LMC_OK;
    for (uint32_t p = 0; p < planes && status == LMC_OK; p++)
        status = check_shape(&shapes[p], message);
    return status;
}

/* A clip's work: its planes' stripes. A task codes one stripe of the first
 * plane, or one stripe of a run of later planes of one geometry (U and V)
 * frame by frame in turn. The first plane's tasks come first: a decoder's
 * guided planes wait for its frames (lmc_pool_for's order makes that safe)
 * and, taking U and V together, follow it closely on a second thread. */
typedef struct {
    uint32_t first_plane, planes, stripe;
} clip_task;

typedef struct {
    image_job jobs[LMC_VIDEO_MAX_PLANES];
    uint32_t planes;
    lmc_cm_tables *tables;       /* the coders' tables, shared by every plane */
    lmc_progress *leader_frames; /* decoding guided planes: the first plane's finished frames */
    clip_task *tasks;
    uint32_t task_count;
    int encoding;
} video_clip;

/* Whether plane p runs with the plane before it: the same stripes of the
 * same frames. */
static int joins_previous(const video_clip *clip, uint32_t p) {
    if (p < 2)
        return 0;
    const image_job *a = &clip->jobs[p - 1], *b = &clip->jobs[p];
    return a->stripe_rows == b->stripe_rows && a->image.height == b->image.height &&
           a->image.frame_height == b->image.frame_height;
}

static lmc_status plan_tasks(video_clip *clip) {
    uint32_t count = 0;
    for (uint32_t p = 0; p < clip->planes; p++)
        count += joins_previous(clip, p) ? 0 : clip->jobs[p].stripes;
    clip->tasks = malloc(count * sizeof *clip->tasks);
    if (!clip->tasks)
        return LMC_ERR_NOMEM;
    for (uint32_t p = 0; p < clip->planes;) {
        uint32_t run = 1;
        while (p + run < clip->planes && joins_previous(clip, p + run))
            run++;
        for (uint32_t i = 0; i < clip->jobs[p].stripes; i++)
            clip->tasks[clip->task_count++] = (clip_task){p, run, i};
        p += run;
    }
    return LMC_OK;
}

/* Marks frames [first, end) of the first plane decoded, or beyond saving:
 * a guided plane never waits for a stripe that failed. */
static void release_frames(const video_clip *clip, const clip_task *task, uint32_t first, uint32_t end) {
    if (task->first_plane == 0 && clip->leader_frames)
        for (uint32_t f = first; f < end; f++)
            lmc_progress_mark(clip->leader_frames, f);
}

/* Codes a task's frames, each of its planes in turn; a guided plane's frame
 * once the first plane's frames up to it are decoded. */
static void code_frames(video_clip *clip, const clip_task *task, stripe_run *runs, uint32_t first, uint32_t end) {
    for (uint32_t f = first; f < end; f++) {
        for (uint32_t k = 0; k < task->planes; k++) {
            const channel_image *im = &clip->jobs[task->first_plane + k].image;
            if (im->guide && clip->leader_frames)
                lmc_progress_wait(clip->leader_frames, f);
            code_rows(&runs[k].model, &runs[k].coder, f * im->frame_height, (f + 1) * im->frame_height);
        }
        release_frames(clip, task, f, f + 1);
    }
}

static void code_clip_task(video_clip *clip, const clip_task *task) {
    stripe_run runs[LMC_VIDEO_MAX_PLANES];
    const image_job *head = &clip->jobs[task->first_plane];
    uint32_t frames_per_stripe = head->stripe_rows / head->image.frame_height;
    uint32_t first = task->stripe * frames_per_stripe;
    uint32_t end = LMC_MIN(first + frames_per_stripe, frame_count(&head->image));
    uint32_t started = 0;
    lmc_status status = LMC_OK;
    while (started < task->planes && status == LMC_OK) {
        image_job *job = &clip->jobs[task->first_plane + started];
        if (clip->encoding && job->image.motion)
            estimate_motion(&job->image, first, end);
        status = stripe_start(job, task->stripe, &runs[started]);
        started += status == LMC_OK;
    }
    if (status == LMC_OK)
        code_frames(clip, task, runs, first, end); /* releases each frame as it is done */
    else
        release_frames(clip, task, first, end);
    for (uint32_t k = 0; k < task->planes; k++) {
        image_job *job = &clip->jobs[task->first_plane + k];
        if (status == LMC_OK) {
            job->status[task->stripe] = stripe_finish(job, task->stripe, &runs[k]);
            continue;
        }
        if (k < started)
            stripe_free(&runs[k].model);
        job->status[task->stripe] = status;
    }
}

static void code_clip_tasks(void *ctx, int begin, int end) {
    video_clip *clip = ctx;
    for (int i = begin; i < end; i++)
        code_clip_task(clip, &clip->tasks[i]);
}

/* Runs every task of an opened clip; the first failing plane's status. */
static lmc_status run_clip(video_clip *clip, lmc_pool *pool, lmc_message *message) {
    if (plan_tasks(clip) != LMC_OK)
        return lmc_fail(message, LMC_ERR_NOMEM, "video: out of memory");
    lmc_pool_for(pool, (int)clip->task_count, code_clip_tasks, clip);
    lmc_status status = LMC_OK;
    for (uint32_t p = 0; p < clip->planes && status == LMC_OK; p++)
        status = job_status(&clip->jobs[p], clip->encoding ? LMC_ERR_NOMEM : LMC_ERR_CORRUPT,
                            clip->encoding ? "failed" : "is damaged", message);
    return status;
}

/* chroma_round5: the second chroma plane (Cr) also follows the first (Cb)
 * where it is guided by luma and has Cb's geometry, 8-bit, and runs in
 * Cb's tasks (joins_previous), so each frame of Cb is coded before Cr's. */
static void attach_second_guide(video_clip *clip) {
    if (clip->planes < 3)
        return;
    channel_image *cr = &clip->jobs[2].image;
    const channel_image *cb = &clip->jobs[1].image;
    if (cr->chroma_round5 && cr->guide && cb->channels == 1 && cr->channels == 1 && cb->width == cr->width &&
        cb->height == cr->height && cb->frame_height == cr->frame_height && joins_previous(clip, 2))
        cr->second = cb->pixels;
}

/* The later planes follow the first where it fits; a decoder's wait for
 * its frames (all known when encoding). */
static lmc_status attach_guides(video_clip *clip, const lmc_image_shape *shapes) {
    int guided = 0;
    for (uint32_t p = 1; p < clip->planes; p++) {
        attach_guide(&clip->jobs[p].image, &shapes[p], &clip->jobs[0].image, &shapes[0]);
        guided |= clip->jobs[p].image.guide != NULL;
    }
    attach_second_guide(clip);
    if (guided && !clip->encoding) {
        clip->leader_frames = lmc_progress_create(frame_count(&clip->jobs[0].image));
        if (!clip->leader_frames)
            return LMC_ERR_NOMEM;
    }
    return LMC_OK;
}

static void close_clip(video_clip *clip) {
    for (uint32_t p = 0; p < clip->planes; p++)
        job_close(&clip->jobs[p]);
    lmc_progress_free(clip->leader_frames);
    free(clip->tasks);
    free(clip->tables);
}

/* Checks the clip and opens each plane's job (none beyond the first that
 * fails); close_clip undoes it whatever it returns. */
static lmc_status open_clip(video_clip *clip, const lmc_model *model, uint32_t layout, uint32_t planes,
                            const lmc_image_shape *shapes, const uint16_t *const *samples,
                            const uint8_t *const *payloads, const size_t *sizes, lmc_message *message) {
    memset(clip, 0, sizeof *clip);
    clip->encoding = samples != NULL;
    lmc_status status = check_clip(layout, planes, shapes, message);
    if (status != LMC_OK)
        return status;
    clip->tables = malloc(sizeof *clip->tables);
    if (!clip->tables)
        return lmc_fail(message, LMC_ERR_NOMEM, "video: out of memory");
    lmc_cm_tables_build(clip->tables);
    const lmc_cm_tables *tables = clip->tables;
    for (; clip->planes < planes && status == LMC_OK; clip->planes++) {
        uint32_t p = clip->planes;
        video_coding video = video_coding_of(layout, &shapes[p], p);
        status = clip->encoding
                     ? encode_open(&clip->jobs[p], model, &shapes[p], tables, samples[p], &video, message)
                     : decode_open(&clip->jobs[p], model, &shapes[p], tables, payloads[p], sizes[p], &video, message);
    }
    if (status == LMC_OK && attach_guides(clip, shapes) != LMC_OK)
        status = lmc_fail(message, LMC_ERR_NOMEM, "video: out of memory");
    return status;
}

lmc_status lmc_video_encode(const lmc_model *model, uint32_t layout, uint32_t planes, const lmc_image_shape *shapes,
                            const uint16_t *const *samples, lmc_pool *pool, lmc_buf *payloads,
                            lmc_message *message) {
    video_clip clip;
    lmc_status status = open_clip(&clip, model, layout, planes, shapes, samples, NULL, NULL, message);
    if (status == LMC_OK)
        status = run_clip(&clip, pool, message);
    for (uint32_t p = 0; p < planes && status == LMC_OK; p++)
        status = encode_write(&clip.jobs[p], &payloads[p], message);
    close_clip(&clip);
    return status;
}

lmc_status lmc_video_decode(const lmc_model *model, uint32_t layout, uint32_t planes, const lmc_image_shape *shapes,
                            const uint8_t *const *payloads, const size_t *sizes, lmc_pool *pool,
                            uint16_t *const *samples, lmc_message *message) {
    video_clip clip;
    lmc_status status = open_clip(&clip, model, layout, planes, shapes, NULL, payloads, sizes, message);
    if (status == LMC_OK)
        status = run_clip(&clip, pool, message);
    for (uint32_t p = 0; p < planes && status == LMC_OK; p++)
        status = decode_samples(&clip.jobs[p], &shapes[p], samples[p], message);
    close_clip(&clip);
    return status;
}
