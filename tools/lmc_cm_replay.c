/*
 * lmc_cm_replay: fast experiments with the mixed codec's context-mixing
 * model (src/model/cm.c).
 *
 * The neural model's probabilities for every event the mixed codec codes do
 * not depend on the context-mixing model, and they take nearly all of the
 * time. So `record` compresses a file once (one thread, the default text
 * model) and writes every call the codec makes into the context-mixing model
 * to a trace (lmc_mix_observe); `replay` runs traces through the model of
 * this build and prints the ideal code length, -log2 p summed over the coded
 * decisions, in seconds instead of minutes. An archive is this plus about
 * 100 bytes (header, records, range coder).
 *
 * Usage: lmc_cm_replay record [-l LANES] FILE TRACE
 *        lmc_cm_replay replay [-v VERSION] TRACE...
 *   VERSION: 1 (codec 2's model) or 2 (codec 4's, the default)
 *
 * Trace: 32-bit words in this machine's byte order (a scratch format):
 * a block is 0xFFFFFFFE and its size; a bit is P(1) * 65536 of the neural
 * model (0: the vocabulary decided it) | bit << 16; a "token ends here"
 * decision is 0xFFFFFFFF and the arguments of lmc_cm_predict_end, then the
 * bit; a block's lanes (codec 5) are 0xFFFFFFFD, their count and starts, and
 * a change of lane 0xFFFFFFFC and the lane.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "lib/lib.h"
#include "lmc.h"
#include "model/model.h"

#define TRACE_BLOCK 0xFFFFFFFEu
#define TRACE_END 0xFFFFFFFFu
#define TRACE_LANES 0xFFFFFFFDu
#define TRACE_LANE 0xFFFFFFFCu
#define END_WORDS 7

/* ---- Recording ---- */

static void put_words(void *user, const uint32_t *words, size_t n) {
    if (fwrite(words, sizeof *words, n, user) != n) {
        fprintf(stderr, "lmc_cm_replay: cannot write the trace\n");
        exit(1);
    }
}

static void on_block(void *user, size_t size) {
    uint32_t w[2] = {TRACE_BLOCK, (uint32_t)size};
    put_words(user, w, 2);
}

static void on_bit(void *user, uint32_t model_p16, int bit) {
    uint32_t w = model_p16 | (uint32_t)bit << 16;
    put_words(user, &w, 1);
}

static void on_end(void *user, uint32_t model_p16, uint32_t candidate, uint32_t previous, uint32_t previous2,
                   uint32_t depth, int bit) {
    uint32_t w[END_WORDS] = {TRACE_END, model_p16, candidate, previous, previous2, depth, (uint32_t)bit};
    put_words(user, w, END_WORDS);
}

static void on_lanes(void *user, const size_t *starts, int count) {
    uint32_t w[2 + LMC_CM_LANES_MAX] = {TRACE_LANES, (uint32_t)count};
    for (int l = 0; l < count; l++)
        w[2 + l] = (uint32_t)starts[l];
    put_words(user, w, 2 + (size_t)count);
}

static void on_lane(void *user, int lane) {
    uint32_t w[2] = {TRACE_LANE, (uint32_t)lane};
    put_words(user, w, 2);
}

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    lmc_buf buf;
    lmc_buf_init(&buf);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (lmc_buf_append(&buf, chunk, n) != LMC_OK)
            exit(1);
    fclose(f);
    *size = buf.size;
    return buf.data;
}

static int record(const char *input, const char *trace_path, int lanes) {
    size_t size;
    uint8_t *data = read_all(input, &size);
    FILE *trace = fopen(trace_path, "wb");
    if (!data || !trace) {
        fprintf(stderr, "lmc_cm_replay: cannot read %s or write %s\n", input, trace_path);
        return 1;
    }
    lmc_mix_observer observer = {on_block, on_bit, on_end, on_lanes, on_lane, trace};
    lmc_mix_observe(&observer);
    lmc_options options;
    lmc_options_init(&options);
    options.threads = 1;
    options.lanes = lanes;
    lmc_status status;
    lmc_encoder *e = lmc_encoder_create(&options, &status);
    if (e)
        status = lmc_encoder_push(e, data, size);
    if (e && status == LMC_OK)
        status = lmc_encoder_finish(e);
    uint64_t archive = 0;
    uint8_t out[65536];
    size_t n;
    while (e && (n = lmc_encoder_pull(e, out, sizeof out)) > 0)
        archive += n;
    if (status != LMC_OK)
        fprintf(stderr, "lmc_cm_replay: %s\n", e ? lmc_encoder_message(e) : "cannot start");
    else
        printf("%s: archive %llu bytes\n", input, (unsigned long long)archive);
    lmc_mix_observe(NULL);
    lmc_encoder_free(e);
    free(data);
    return fclose(trace) == 0 && status == LMC_OK ? 0 : 1;
}

/* ---- Replaying ---- */

typedef struct {
    double bits, end_bits, model_bits; /* coded bits, end decisions; the neural model alone */
    double seconds;
} replay_total;

static double cost(uint32_t p1, int bit) {
    double p = p1 / 65536.0;
    return -log2(bit ? p : 1.0 - p);
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One block's bits and decisions from w[*i], up to the next block. */
typedef struct {
    lmc_cm *cm;
    uint8_t *history;
    size_t size;
    size_t pos[LMC_CM_LANES_MAX], end[LMC_CM_LANES_MAX]; /* each lane's next byte and end */
    int lane;
    uint32_t partial; /* the byte's bits so far */
    int bits;
} replay_block;

/* The trace's lanes at w: count and starts. Returns the words read, 0 if bad. */
static size_t replay_lanes(replay_block *b, const uint32_t *w, size_t available) {
    uint32_t count = available >= 2 ? w[1] : 0;
    if (count < 2 || count > LMC_CM_LANES_MAX || available < 2 + (size_t)count)
        return 0;
    size_t starts[LMC_CM_LANES_MAX];
    for (uint32_t l = 0; l < count; l++) {
        starts[l] = w[2 + l];
        b->pos[l] = starts[l];
        b->end[l] = l + 1 < count ? w[3 + l] : b->size;
    }
    return lmc_cm_set_lanes(b->cm, starts, (int)count) == LMC_OK ? 2 + (size_t)count : 0;
}

static void replay_bit(replay_block *b, uint32_t w, replay_total *t) {
    int bit = (int)(w >> 16) & 1;
    uint32_t model = w & 0xFFFFu;
    uint32_t p = lmc_cm_predict_bit(b->cm, model ? model : bit ? 65535u : 1u);
    if (model) {
        t->bits += cost(p, bit);
        t->model_bits += cost(model, bit);
    }
    lmc_cm_update_bit(b->cm, bit);
    b->partial = b->partial << 1 | (uint32_t)bit;
    if (++b->bits == 8) {
        b->history[b->pos[b->lane]++] = (uint8_t)b->partial;
        lmc_cm_end_byte(b->cm, b->partial & 255u);
        b->partial = 0;
        b->bits = 0;
    }
}

static void replay_end(replay_block *b, const uint32_t *w, replay_total *t) {
    uint32_t p = lmc_cm_predict_end(b->cm, w[1], w[2], w[3], w[4], w[5]);
    int bit = (int)w[6];
    t->end_bits += cost(p, bit);
    t->model_bits += cost(LMC_MAX(1u, LMC_MIN(w[1], 65535u)), bit);
    lmc_cm_update_end(b->cm, bit);
}

static int replay_trace(const char *path, int version, replay_total *t) {
    size_t bytes;
    uint32_t *w = (uint32_t *)read_all(path, &bytes);
    if (!w) {
        fprintf(stderr, "lmc_cm_replay: cannot read %s\n", path);
        return 1;
    }
    size_t n = bytes / sizeof *w;
    replay_block b = {0};
    double start = cpu_seconds();
    for (size_t i = 0, used; i < n;) {
        if (w[i] == TRACE_BLOCK && i + 1 < n) {
            lmc_cm_close(b.cm);
            free(b.history);
            memset(&b, 0, sizeof b);
            b.size = b.end[0] = w[i + 1];
            b.history = calloc(b.size + 1, 1);
            if (!b.history || lmc_cm_open(w[i + 1], b.history, version, &b.cm) != LMC_OK)
                return 1;
            i += 2;
        } else if (w[i] == TRACE_LANES && b.cm && (used = replay_lanes(&b, w + i, n - i)) > 0) {
            i += used;
        } else if (w[i] == TRACE_LANE && i + 1 < n && b.cm && w[i + 1] < LMC_CM_LANES_MAX) {
            b.lane = (int)w[i + 1];
            lmc_cm_select_lane(b.cm, b.lane);
            i += 2;
        } else if (w[i] == TRACE_END && i + END_WORDS <= n && b.cm) {
            replay_end(&b, w + i, t);
            i += END_WORDS;
        } else if (b.cm && b.pos[b.lane] < b.end[b.lane]) {
            replay_bit(&b, w[i], t);
            i++;
        } else {
            fprintf(stderr, "lmc_cm_replay: %s is not a trace\n", path);
            return 1;
        }
    }
    t->seconds += cpu_seconds() - start;
    lmc_cm_close(b.cm);
    free(b.history);
    free(w);
    return 0;
}

static int replay(int argc, char **argv) {
    int version = LMC_CM_MIXED_V2, first = 0;
    if (argc > 1 && !strcmp(argv[0], "-v")) {
        version = atoi(argv[1]);
        first = 2;
    }
    replay_total all = {0};
    for (int a = first; a < argc; a++) {
        replay_total t = {0};
        if (replay_trace(argv[a], version, &t))
            return 1;
        printf("%-40s %10.0f bytes (bits %.0f, token ends %.0f; neural model alone %.0f)\n", argv[a],
               (t.bits + t.end_bits) / 8, t.bits / 8, t.end_bits / 8, t.model_bits / 8);
        all.bits += t.bits;
        all.end_bits += t.end_bits;
        all.model_bits += t.model_bits;
        all.seconds += t.seconds;
    }
    printf("total %.0f bytes (neural model alone %.0f); context mixing %.2f CPU s\n",
           (all.bits + all.end_bits) / 8, all.model_bits / 8, all.seconds);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "record"))
        return record(argv[2], argv[3], 0);
    if (argc == 6 && !strcmp(argv[1], "record") && !strcmp(argv[2], "-l"))
        return record(argv[4], argv[5], atoi(argv[3]));
    if (argc >= 3 && !strcmp(argv[1], "replay"))
        return replay(argc - 2, argv + 2);
    fprintf(stderr, "usage: lmc_cm_replay record [-l LANES] FILE TRACE\n"
                    "       lmc_cm_replay replay [-v VERSION] TRACE...\n");
    return 2;
}
