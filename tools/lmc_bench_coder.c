/*
 * lmc_bench_coder: measures the entropy-coding stage.
 *
 *  (a) coder overhead: bits written vs the ideal code length
 *      sum(-log2(freq / T)) under the same integer CDFs, for long streams,
 *      and the fixed cost of flushing one stream;
 *  (b) CDF quantisation loss: cross-entropy under the integer CDF vs the
 *      model's own probabilities (softmax in double of the same logits),
 *      as exact expectations (KL divergence), not samples;
 *  (c) speed of encoding, decoding and lmc_cdf_from_logits.
 *
 * Distributions are synthetic next-token predictions: Zipf-shaped logits
 * l = -s * ln(rank + 1) + noise over a random permutation of the
 * vocabulary; larger s is a sharper (more confident) model.
 *
 * Usage: lmc_bench_coder [symbols-per-stream (default 1000000)] [seed]
 * Prints Markdown tables. Times are thread CPU time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "coder/coder.h"

#define CDF_TOTAL (1u << LMC_CDF_BITS)
#define DISTRIBUTIONS 16 /* distinct CDFs per configuration, used in turn */

static uint64_t rng_next(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state) {
    return ((double)(rng_next(state) >> 11) + 0.5) * 0x1p-53;
}

static double rng_normal(uint64_t *state) {
    return sqrt(-2.0 * log(rng_unit(state))) * cos(6.283185307179586 * rng_unit(state));
}

/* CPU time of this thread: on a shared machine it is far steadier than
 * wall time (the bench is single-threaded). */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t size) {
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "lmc_bench_coder: out of memory\n");
        exit(1);
    }
    return p;
}

static void make_logits(uint64_t *rng, int vocab, double sharpness, float *logits) {
    int *rank = xmalloc((size_t)vocab * sizeof *rank);
    for (int i = 0; i < vocab; i++) rank[i] = i;
    for (int i = vocab - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(rng_next(rng) % (uint64_t)(i + 1));
        int t = rank[i];
        rank[i] = rank[j];
        rank[j] = t;
    }
    for (int i = 0; i < vocab; i++)
        logits[i] = (float)(-sharpness * log(rank[i] + 1.0) + 0.5 * rng_normal(rng));
    free(rank);
}

/* The model's own distribution: softmax of the float logits in double. */
static void softmax(const float *logits, int vocab, double *p) {
    double max = -INFINITY, sum = 0.0;
    for (int i = 0; i < vocab; i++) max = fmax(max, logits[i]);
    for (int i = 0; i < vocab; i++) sum += p[i] = exp(logits[i] - max);
    for (int i = 0; i < vocab; i++) p[i] /= sum;
}

typedef struct {
    int vocab;
    double sharpness;
    uint32_t *cum[DISTRIBUTIONS];
    double entropy;      /* mean H(p), bits */
    double kl;           /* mean KL(p || q), bits */
} config;

/* Builds the configuration's CDFs and measures the quantisation loss. */
static void prepare(config *c, uint64_t *rng) {
    float *logits = xmalloc((size_t)c->vocab * sizeof *logits);
    float *scratch = xmalloc((size_t)c->vocab * sizeof *scratch);
    double *p = xmalloc((size_t)c->vocab * sizeof *p);
    c->entropy = c->kl = 0.0;
    for (int d = 0; d < DISTRIBUTIONS; d++) {
        c->cum[d] = xmalloc(((size_t)c->vocab + 1) * sizeof *c->cum[d]);
        make_logits(rng, c->vocab, c->sharpness, logits);
        lmc_cdf_from_logits(logits, c->vocab, scratch, c->cum[d]);
        softmax(logits, c->vocab, p);
        for (int i = 0; i < c->vocab; i++) {
            if (p[i] <= 0.0) continue;
            double q = (double)(c->cum[d][i + 1] - c->cum[d][i]) / CDF_TOTAL;
            c->entropy -= p[i] * log2(p[i]);
            c->kl += p[i] * log2(p[i] / q);
        }
    }
    c->entropy /= DISTRIBUTIONS;
    c->kl /= DISTRIBUTIONS;
    free(logits);
    free(scratch);
    free(p);
}

static void release(config *c) {
    for (int d = 0; d < DISTRIBUTIONS; d++) free(c->cum[d]);
}

typedef struct {
    double ideal_bits, actual_bits, encode_seconds, decode_seconds;
} stream_result;

/* Codes `count` symbols drawn from the integer CDFs (distribution
 * i % distributions for symbol i), decodes them back and checks the round
 * trip. With one distribution the CDF stays in cache, as it does in the
 * pipeline right after lmc_cdf_from_logits. */
static stream_result code_stream(const config *c, uint64_t *rng, int count, int distributions) {
    int *symbols = xmalloc((size_t)count * sizeof *symbols);
    stream_result r = {0};
    for (int i = 0; i < count; i++) {
        const uint32_t *cum = c->cum[i % distributions];
        int s = lmc_cdf_find(cum, c->vocab, (uint32_t)(rng_next(rng) >> (64 - LMC_CDF_BITS)));
        symbols[i] = s;
        r.ideal_bits += LMC_CDF_BITS - log2((double)(cum[s + 1] - cum[s]));
    }
    lmc_buf out;
    lmc_buf_init(&out);
    lmc_rc_encoder enc;
    lmc_rc_encoder_init(&enc, &out);
    double start = now_seconds();
    for (int i = 0; i < count; i++) lmc_rc_encode_symbol(&enc, c->cum[i % distributions], symbols[i]);
    if (lmc_rc_encoder_finish(&enc) != LMC_OK) {
        fprintf(stderr, "lmc_bench_coder: encoder failed\n");
        exit(1);
    }
    r.encode_seconds = now_seconds() - start;
    r.actual_bits = 8.0 * (double)out.size;

    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, out.data, out.size);
    start = now_seconds();
    int mismatches = 0;
    for (int i = 0; i < count; i++)
        mismatches += lmc_rc_decode_symbol(&dec, c->cum[i % distributions], c->vocab) != symbols[i];
    r.decode_seconds = now_seconds() - start;
    if (mismatches || !lmc_rc_decoder_end_ok(&dec)) {
        fprintf(stderr, "lmc_bench_coder: round trip FAILED (%d mismatches)\n", mismatches);
        exit(1);
    }
    lmc_buf_free(&out);
    free(symbols);
    return r;
}

/* Encode/decode speed of binary decisions with skewed probabilities. */
static void bench_bits(uint64_t *rng, int count) {
    uint32_t *probs = xmalloc((size_t)count * sizeof *probs);
    uint8_t *bits = xmalloc((size_t)count);
    for (int i = 0; i < count; i++) {
        probs[i] = 1 + (uint32_t)(rng_next(rng) % 65535);
        bits[i] = (rng_next(rng) & 0xFFFF) < probs[i];
    }
    lmc_buf out;
    lmc_buf_init(&out);
    lmc_rc_encoder enc;
    lmc_rc_encoder_init(&enc, &out);
    double start = now_seconds();
    for (int i = 0; i < count; i++) lmc_rc_encode_bit(&enc, probs[i], bits[i]);
    lmc_rc_encoder_finish(&enc);
    double encode = now_seconds() - start;
    lmc_rc_decoder dec;
    lmc_rc_decoder_init(&dec, out.data, out.size);
    int errors = 0;
    start = now_seconds();
    for (int i = 0; i < count; i++) errors += lmc_rc_decode_bit(&dec, probs[i]) != bits[i];
    double decode = now_seconds() - start;
    if (errors) {
        fprintf(stderr, "lmc_bench_coder: bit round trip FAILED\n");
        exit(1);
    }
    printf("| bits (p1 uniform in 1..65535) | %d | %.1f | %.1f |\n", count, count / encode / 1e6,
           count / decode / 1e6);
    lmc_buf_free(&out);
    free(probs);
    free(bits);
}

#define CDF_REPEATS 50

/* Fastest of several lmc_cdf_from_logits calls on one set of logits. */
static double best_cdf_seconds(const config *c, uint64_t *rng) {
    float *logits = xmalloc((size_t)c->vocab * sizeof *logits);
    float *scratch = xmalloc((size_t)c->vocab * sizeof *scratch);
    uint32_t *cum = xmalloc(((size_t)c->vocab + 1) * sizeof *cum);
    make_logits(rng, c->vocab, c->sharpness, logits);
    double best = INFINITY;
    for (int i = 0; i < CDF_REPEATS; i++) {
        double start = now_seconds();
        lmc_cdf_from_logits(logits, c->vocab, scratch, cum);
        best = fmin(best, now_seconds() - start);
    }
    free(logits);
    free(scratch);
    free(cum);
    return best;
}

/* Per-stream fixed cost: many short streams, overhead in bits each. */
static void bench_flush(const config *c, uint64_t *rng) {
    const int streams = 2000, length = 200;
    double total = 0.0, worst = 0.0;
    for (int i = 0; i < streams; i++) {
        stream_result r = code_stream(c, rng, length, DISTRIBUTIONS);
        double extra = r.actual_bits - r.ideal_bits;
        total += extra;
        worst = fmax(worst, extra);
    }
    printf("\nFlush cost per stream (vocab %d, %d streams of %d symbols): mean %.2f bits, max %.2f bits "
           "(output bits minus ideal bits)\n",
           c->vocab, streams, length, total / streams, worst);
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 1000000;
    uint64_t rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    if (count < 1) {
        fprintf(stderr, "usage: lmc_bench_coder [symbols-per-stream] [seed]\n");
        return 2;
    }
    const int vocabs[] = {256, 32000, 128256};
    const double sharpness[] = {1.0, 1.5, 2.5, 4.0};
    const size_t n_configs = 3 * 4;
    config configs[3 * 4];
    for (size_t i = 0; i < n_configs; i++) {
        configs[i].vocab = vocabs[i / 4];
        configs[i].sharpness = sharpness[i % 4];
        prepare(&configs[i], &rng);
    }

    printf("CDF total T = 2^%d; %d distributions per row, used in turn; %d symbols per stream.\n\n",
           LMC_CDF_BITS, DISTRIBUTIONS, count);
    printf("| vocab | s | H(p) bits | KL(p||q) bits/sym | KL / H | ideal bits/sym | coder overhead | "
           "encode Msym/s | decode Msym/s |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double all_ideal = 0.0, all_actual = 0.0;
    for (size_t i = 0; i < n_configs; i++) {
        config *c = &configs[i];
        stream_result r = code_stream(c, &rng, count, DISTRIBUTIONS);
        all_ideal += r.ideal_bits;
        all_actual += r.actual_bits;
        printf("| %d | %.1f | %.4f | %.3e | %.4f%% | %.4f | %.5f%% | %.1f | %.1f |\n", c->vocab, c->sharpness,
               c->entropy, c->kl, 100.0 * c->kl / c->entropy, r.ideal_bits / count,
               100.0 * (r.actual_bits - r.ideal_bits) / r.ideal_bits, count / r.encode_seconds / 1e6,
               count / r.decode_seconds / 1e6);
    }
    printf("\nAll rows: %.0f ideal bits, %.0f written, overhead %.5f%%\n", all_ideal, all_actual,
           100.0 * (all_actual - all_ideal) / all_ideal);

    bench_flush(&configs[5], &rng);

    printf("\nSpeed with one CDF in cache (s = 1.5), and lmc_cdf_from_logits (best of %d calls):\n\n",
           CDF_REPEATS);
    printf("| vocab | encode Msym/s | decode Msym/s | encode MB/s out | cdf_from_logits us/call | ns/logit |\n");
    printf("|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 1; i < n_configs; i += 4) {
        stream_result r = code_stream(&configs[i], &rng, count, 1);
        double cdf = best_cdf_seconds(&configs[i], &rng);
        printf("| %d | %.1f | %.1f | %.1f | %.1f | %.2f |\n", configs[i].vocab, count / r.encode_seconds / 1e6,
               count / r.decode_seconds / 1e6, r.actual_bits / 8.0 / r.encode_seconds / 1e6, 1e6 * cdf,
               1e9 * cdf / configs[i].vocab);
    }

    printf("\n| stream | decisions | encode M/s | decode M/s |\n|---|---:|---:|---:|\n");
    bench_bits(&rng, count * 4);
    for (size_t i = 0; i < n_configs; i++) release(&configs[i]);
    return 0;
}
