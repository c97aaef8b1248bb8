/*
 * lmc_audio_eval MODEL.gguf [-T N] [--encode-only] [--hash] [--stats OUT] WAV...:
 * codes each WAV file's samples with the audio coder alone (no container),
 * checks the round trip, and prints the payload bytes, the ratio against
 * the WAV file and against its raw PCM, and samples per second each way
 * (every channel's samples count). For tuning, training and bench/.
 *
 *   -T N           threads (default 1)
 *   --encode-only  skip decoding (training's searches only need sizes)
 *   --hash         also print each payload's 64-bit checksum (to compare
 *                  builds, compilers and thread counts)
 *   --stats OUT    also collect the coder's context statistics over all
 *                  files (one thread) and write them to OUT for
 *                  train/train_audio.py: the header "LMCAST01", u32
 *                  AUDIO_PRIOR_SIZE, u32 AUDIO_DECISIONS, u32
 *                  AUDIO_CODER_INPUTS, then u64 counts [prior][2], i64
 *                  mixer weight sums [decisions][inputs], u64 streams per
 *                  decision; all little-endian.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/media.h"
#include "model/audio_internal.h"
#include "model/model.h"
#include "tool_files.h"

typedef struct {
    double samples, bytes, wav_bytes, raw_bytes;
    double seconds[2];
    int files;
} totals;

typedef struct {
    lmc_pool *pool;
    int encode_only, hash;
    audio_stats *stats;
} options;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Codes one file and adds it to the totals; 0 on success. */
static int evaluate(const lmc_model *model, const options *opt, const char *path, totals *sum) {
    lmc_buf file, payload;
    lmc_buf_init(&file);
    lmc_buf_init(&payload);
    lmc_media item;
    lmc_message message = {{0}};
    if (tool_read_file(path, &file) != 0 || lmc_media_parse(file.data, file.size, 0, &item, &message) != LMC_OK ||
        item.desc.kind != LMC_KIND_AUDIO) {
        fprintf(stderr, "%s: not an audio file (%s)\n", path, message.text);
        lmc_buf_free(&file);
        return 1;
    }
    lmc_audio_shape shape = {item.desc.channels, item.desc.frames, item.desc.bits, item.desc.valid_bits,
                             item.desc.sample_rate};
    int32_t *decoded = malloc(LMC_MAX(item.count, 1) * sizeof *decoded);
    int result = 1;
    double t0 = now();
    lmc_status status = !decoded ? LMC_ERR_NOMEM
                        : opt->stats
                            ? audio_encode_with_stats(model, &shape, item.audio, &payload, opt->stats, &message)
                            : lmc_audio_encode(model, &shape, item.audio, opt->pool, &payload, &message);
    double t1 = now();
    if (status == LMC_OK && !opt->encode_only)
        status = lmc_audio_decode(model, &shape, payload.data, payload.size, opt->pool, decoded, &message);
    double t2 = now();
    if (status != LMC_OK) {
        fprintf(stderr, "%s: %s\n", path, message.text);
    } else if (!opt->encode_only && memcmp(decoded, item.audio, item.count * sizeof *decoded) != 0) {
        fprintf(stderr, "%s: ROUND TRIP MISMATCH\n", path);
    } else {
        double raw = (double)item.count * ((item.desc.bits + 7) / 8);
        double n = (double)item.count;
        printf("%-44s %2u ch %6u Hz %9zu samples %9zu bytes  wav %6.4f  pcm %6.4f  %8.0f smp/s enc", base_name(path),
               shape.channels, shape.sample_rate, item.count, payload.size, (double)file.size / payload.size,
               raw / payload.size, n / (t1 - t0));
        if (!opt->encode_only)
            printf("  %8.0f smp/s dec", n / (t2 - t1));
        if (opt->hash)
            printf("  payload %016llx", (unsigned long long)lmc_checksum64(payload.data, payload.size));
        printf("\n");
        sum->samples += n;
        sum->bytes += (double)payload.size;
        sum->wav_bytes += (double)file.size;
        sum->raw_bytes += raw;
        sum->seconds[0] += t1 - t0;
        sum->seconds[1] += t2 - t1;
        sum->files++;
        result = 0;
    }
    free(decoded);
    lmc_media_free(&item);
    lmc_buf_free(&file);
    lmc_buf_free(&payload);
    return result;
}

static int write_stats(const char *path, const audio_stats *stats) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t header[20] = "LMCAST01";
    lmc_put_le32(header + 8, AUDIO_PRIOR_SIZE);
    lmc_put_le32(header + 12, AUDIO_DECISIONS);
    lmc_put_le32(header + 16, AUDIO_CODER_INPUTS);
    int ok = fwrite(header, 1, sizeof header, f) == sizeof header;
    uint8_t word[8];
    for (uint32_t i = 0; i < AUDIO_PRIOR_SIZE && ok; i++)
        for (int b = 0; b < 2 && ok; b++) {
            lmc_put_le64(word, stats->counts[i][b]);
            ok = fwrite(word, 1, 8, f) == 8;
        }
    for (uint32_t i = 0; i < AUDIO_DECISIONS * AUDIO_CODER_INPUTS && ok; i++) {
        lmc_put_le64(word, (uint64_t)stats->mixer_sum[i]);
        ok = fwrite(word, 1, 8, f) == 8;
    }
    for (uint32_t i = 0; i < AUDIO_DECISIONS && ok; i++) {
        lmc_put_le64(word, stats->mixer_streams[i]);
        ok = fwrite(word, 1, 8, f) == 8;
    }
    return fclose(f) == 0 && ok ? 0 : -1;
}

static audio_stats *stats_create(void) {
    audio_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->counts = calloc(AUDIO_PRIOR_SIZE, sizeof *s->counts);
    s->mixer_sum = calloc((size_t)AUDIO_DECISIONS * AUDIO_CODER_INPUTS, sizeof *s->mixer_sum);
    s->mixer_streams = calloc(AUDIO_DECISIONS, sizeof *s->mixer_streams);
    return s;
}

static void stats_free(audio_stats *s) {
    if (!s)
        return;
    free(s->counts);
    free(s->mixer_sum);
    free(s->mixer_streams);
    free(s);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf [-T N] [--encode-only] [--hash] [--stats OUT] WAV...\n", argv[0]);
        return 2;
    }
    int threads = 1, first = 2;
    options opt = {NULL, 0, 0, NULL};
    const char *stats_path = NULL;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-T") == 0 && first + 1 < argc) {
            threads = atoi(argv[first + 1]);
            first += 2;
        } else if (strcmp(argv[first], "--stats") == 0 && first + 1 < argc) {
            stats_path = argv[first + 1];
            first += 2;
        } else if (strcmp(argv[first], "--encode-only") == 0) {
            opt.encode_only = 1;
            first++;
        } else if (strcmp(argv[first], "--hash") == 0) {
            opt.hash = 1;
            first++;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[first]);
            return 2;
        }
    }
    lmc_model *model;
    lmc_message message = {{0}};
    if (lmc_model_load(argv[1], 0, &model, &message) != LMC_OK) {
        fprintf(stderr, "%s\n", message.text);
        return 1;
    }
    if (stats_path && !(opt.stats = stats_create())) {
        fprintf(stderr, "out of memory\n");
        lmc_model_free(model);
        return 1;
    }
    opt.pool = lmc_pool_create(threads);
    totals sum = {0};
    int failures = 0;
    for (int i = first; i < argc; i++)
        failures += evaluate(model, &opt, argv[i], &sum);
    if (sum.files > 0) {
        printf("total: %d files, %.0f samples, %.0f bytes, wav %.4f, pcm %.4f, %.0f smp/s enc", sum.files, sum.samples,
               sum.bytes, sum.wav_bytes / sum.bytes, sum.raw_bytes / sum.bytes, sum.samples / sum.seconds[0]);
        if (!opt.encode_only)
            printf(", %.0f smp/s dec", sum.samples / sum.seconds[1]);
        printf("\n");
    }
    if (opt.stats && write_stats(stats_path, opt.stats) != 0) {
        fprintf(stderr, "%s: cannot write\n", stats_path);
        failures++;
    }
    stats_free(opt.stats);
    lmc_pool_free(opt.pool);
    lmc_model_free(model);
    return failures ? 1 : 0;
}
