/*
 * lmc bench --lossy: rate-distortion points of lmc's bounded-error mode
 * (lmc compress --max-error D, D = 1, 2, 4, 8) and of lossy codecs on the
 * same media files: cjxl -d (images), JPEG-LS near-lossless (images, through
 * tools/lmc_jpegls when it was built with CharLS), x264 and x265 by CRF
 * (video, through ffmpeg). Every result is decoded again and compared with
 * the original's samples (lmc's media parser reads both): bits per sample,
 * PSNR over all samples of all channels, planes and frames (against
 * max_value; audio: against 2^bits - 1), and the largest error. An lmc point
 * whose largest error exceeds its D fails the run (exit status 1).
 *
 * External programs run on one thread, by fork and exec (no shell), on
 * files in a private scratch folder; their output is discarded and the
 * decoded file judged instead. A program that is not installed is listed
 * as missing and its curve left out.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, realpath, readlink under strict C11 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/bench_lossy.h"

#define MAX_WORDS 32
#define CHUNK (1u << 20)

/* lmc first, then each external codec, in the order the table shows. */
enum { CURVE_LMC, CURVE_JPEGLS, CURVE_CJXL, CURVE_X264, CURVE_X265, CURVE_COUNT };

static const lossy_curve curves[CURVE_COUNT] = {
    [CURVE_LMC] = {"lmc --max-error", LMC_KIND_AUTO, {"1", "2", "4", "8", NULL}, 1, 1},
    [CURVE_JPEGLS] = {"JPEG-LS NEAR (CharLS)", LMC_KIND_IMAGE, {"1", "2", "4", "8", NULL}, 0, 1},
    [CURVE_CJXL] = {"cjxl -e 7 -d", LMC_KIND_IMAGE, {"0.1", "0.3", "0.6", "1", "2", NULL}, 0, 0},
    [CURVE_X264] = {"x264 veryslow -crf", LMC_KIND_VIDEO, {"1", "4", "8", "12", "16", "20", NULL}, 0, 0},
    [CURVE_X265] = {"x265 veryslow -crf", LMC_KIND_VIDEO, {"0", "4", "8", "12", "16", "20", NULL}, 0, 0},
};

/* How an external codec runs: {q} is the setting; {data}, {packed} and
 * {unpacked} the scratch files. Decoders write PNG, PNM or Y4M, which
 * lmc's media parser reads. */
typedef struct {
    const char *packed, *unpacked; /* file names in the scratch folder */
    const char *compress[MAX_WORDS];
    const char *decompress[MAX_WORDS];
} external_codec;

#define FFMPEG_IN "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "yuv4mpegpipe", "-i", "{data}", "-threads", "1"
#define FFMPEG_OUT "-fps_mode", "passthrough", "-f", "yuv4mpegpipe", "-y", "{unpacked}", NULL

static const external_codec externals[CURVE_COUNT] = {
    [CURVE_JPEGLS] = {"packed.jls", "unpacked.pnm", {"lmc_jpegls", "-n", "{q}", "{data}", "{packed}", NULL},
                      {"lmc_jpegls", "-d", "{packed}", "{unpacked}", NULL}},
    [CURVE_CJXL] = {"packed.jxl", "unpacked.png",
                    {"cjxl", "-d", "{q}", "-e", "7", "--num_threads=0", "--quiet", "{data}", "{packed}", NULL},
                    {"djxl", "--num_threads=0", "--quiet", "{packed}", "{unpacked}", NULL}},
    [CURVE_X264] = {"packed.264", "unpacked.y4m",
                    {FFMPEG_IN, "-c:v", "libx264", "-preset", "veryslow", "-crf", "{q}", "-f", "h264", "-y",
                     "{packed}", NULL},
                    {"ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-f", "h264", "-i", "{packed}",
                     FFMPEG_OUT}},
    [CURVE_X265] = {"packed.hevc", "unpacked.y4m",
                    {FFMPEG_IN, "-c:v", "libx265", "-preset", "veryslow", "-crf", "{q}", "-x265-params",
                     "pools=1:frame-threads=1:log-level=error", "-f", "hevc", "-y", "{packed}", NULL},
                    {"ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-f", "hevc", "-i", "{packed}",
                     FFMPEG_OUT}},
};

/* ---- Measures ---- */

double lossy_bits_per_sample(uint64_t bytes, uint64_t samples) {
    return samples ? 8.0 * (double)bytes / (double)samples : 0.0;
}

double lossy_psnr(uint64_t squared, uint64_t samples, double peak) {
    if (squared == 0 || samples == 0) return INFINITY;
    return 10.0 * log10(peak * peak * (double)samples / (double)squared);
}

lossy_total lossy_sum(const lossy_run *run, lmc_kind kind, size_t curve, size_t setting) {
    lossy_total total = {0, 0, 0, 0, 0.0, 0};
    for (size_t i = 0; i < run->point_count; i++) {
        const lossy_point *p = &run->points[i];
        if (!p->ok || p->curve != curve || p->setting != setting || run->kinds[p->file] != kind) continue;
        total.bytes += p->bytes;
        total.samples += p->samples;
        total.squared += p->squared;
        if (p->max_error > total.max_error) total.max_error = p->max_error;
        total.peak = p->peak; /* the files of a kind in one table share it in practice */
        total.files++;
    }
    return total;
}

static double peak_of(const lmc_media_desc *d) {
    return d->kind == LMC_KIND_AUDIO ? ldexp(1.0, (int)d->bits) - 1.0 : (double)d->max_value;
}

static int same_geometry(const lmc_media_desc *a, const lmc_media_desc *b) {
    return a->kind == b->kind && a->width == b->width && a->height == b->height && a->channels == b->channels &&
           a->frames == b->frames && a->chroma_shift_x == b->chroma_shift_x &&
           a->chroma_shift_y == b->chroma_shift_y && a->max_value == b->max_value && a->bits == b->bits;
}

/* Errors of decoded against original, filling the point; -1 if the
 * decoded file is not the same kind of item (another size or depth). */
static int compare_samples(const lmc_media *original, const uint8_t *decoded, size_t size, lossy_point *point) {
    lmc_media item;
    lmc_message message;
    if (lmc_media_parse(decoded, size, 0, &item, &message) != LMC_OK) return -1;
    int same = same_geometry(&original->desc, &item.desc) && item.count == original->count;
    uint64_t squared = 0;
    uint32_t max_error = 0;
    for (size_t i = 0; same && i < item.count; i++) {
        int64_t a = original->audio ? original->audio[i] : original->samples[i];
        int64_t b = item.audio ? item.audio[i] : item.samples[i];
        uint64_t error = (uint64_t)(a > b ? a - b : b - a);
        squared += error * error;
        if (error > max_error) max_error = (uint32_t)error;
    }
    lmc_media_free(&item);
    if (!same) return -1;
    point->samples = original->count;
    point->squared = squared;
    point->max_error = max_error;
    point->peak = peak_of(&original->desc);
    return 0;
}

/* ---- lmc in memory ---- */

typedef struct {
    uint8_t *data;
    size_t size, capacity;
} byte_buffer;

static int append(byte_buffer *b, const uint8_t *data, size_t size) {
    if (size > b->capacity - b->size) {
        size_t capacity = b->capacity ? b->capacity : CHUNK;
        while (size > capacity - b->size) capacity *= 2;
        uint8_t *grown = realloc(b->data, capacity);
        if (grown == NULL) return -1;
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->size, data, size);
    b->size += size;
    return 0;
}

/* All of data through the stream into out. Returns 0, or -1 after reporting. */
static int run_stream(const cli_stream *stream, const char *path, const uint8_t *data, size_t size,
                      byte_buffer *out) {
    static uint8_t chunk[CHUNK];
    lmc_status status = stream->push(stream->handle, data, size);
    if (status == LMC_OK) status = stream->finish(stream->handle);
    size_t got;
    int full = 0;
    while (status == LMC_OK && !full && (got = stream->pull(stream->handle, chunk, sizeof chunk)) > 0)
        full = append(out, chunk, got) != 0;
    if (status != LMC_OK) cli_library_error(path, status, stream->message(stream->handle));
    if (full) cli_error(path, "out of memory");
    return status == LMC_OK && !full ? 0 : -1;
}

static int lmc_round_trip(const lossy_run *run, const bench_input *input, uint32_t bound, lossy_point *point) {
    cli_progress progress;
    cli_progress_start(&progress, input->path, input->size, 0);
    byte_buffer archive = {NULL, 0, 0}, decoded = {NULL, 0, 0};
    double start = cli_now();
    lmc_encoder *encoder = cli_open_bounded_encoder(run->config, bound, &progress, input->path);
    int outcome = -1;
    if (encoder != NULL) {
        cli_stream stream = cli_stream_of_encoder(encoder);
        outcome = run_stream(&stream, input->path, input->data, input->size, &archive);
        lmc_encoder_free(encoder);
    }
    point->seconds = cli_now() - start;
    lmc_decoder *decoder = outcome == 0 ? cli_open_decoder(run->config, &progress, input->path) : NULL;
    outcome = -1;
    if (decoder != NULL) {
        cli_stream stream = cli_stream_of_decoder(decoder);
        outcome = run_stream(&stream, input->path, archive.data, archive.size, &decoded);
        lmc_decoder_free(decoder);
    }
    cli_progress_end(&progress);
    point->bytes = archive.size;
    if (outcome == 0 && compare_samples(input->media, decoded.data, decoded.size, point) != 0) {
        cli_error(input->path, "lmc --max-error %u: the archive decodes to another kind of file", bound);
        outcome = -1;
    }
    if (outcome == 0 && point->max_error > bound) {
        cli_error(input->path, "lmc --max-error %u: a sample is %u off", bound, point->max_error);
        outcome = -1;
    }
    free(archive.data);
    free(decoded.data);
    return outcome;
}

/* ---- External codecs ---- */

typedef struct {
    char *folder;
    char *data, *packed, *unpacked; /* paths of the current codec's files */
    char *idle[3];                  /* what a signal removes between codecs: data, folder */
    char *busy[5];                  /* ... while a codec runs: data, its files, folder */
    char *programs[CURVE_COUNT][2]; /* compressor, decompressor; NULL: missing */
} scratch;

static char *joined(const char *folder, const char *name) {
    size_t size = strlen(folder) + strlen(name) + 2;
    char *path = malloc(size);
    if (path != NULL) snprintf(path, size, "%s/%s", folder, name);
    return path;
}

/* name in the folders of PATH, then beside the lmc executable (a build
 * folder holds lmc_jpegls); NULL if none. */
static char *find_program(const char *name) {
    char *found = bench_find_program(name);
    char self[PATH_MAX];
    ssize_t length = found == NULL ? readlink("/proc/self/exe", self, sizeof self - 1) : -1;
    if (length > 0) {
        self[length] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) *slash = '\0';
        char *candidate = joined(self, name);
        if (candidate != NULL && access(candidate, X_OK) == 0) found = candidate;
        else free(candidate);
    }
    return found;
}

static void find_programs(const lossy_run *run, scratch *s) {
    for (size_t c = CURVE_LMC + 1; c < CURVE_COUNT; c++) {
        if (run->config->no_others) continue;
        s->programs[c][0] = find_program(externals[c].compress[0]);
        s->programs[c][1] = find_program(externals[c].decompress[0]);
    }
}

static int make_scratch(scratch *s) {
    const char *temp = getenv("TMPDIR");
    s->folder = joined(temp && temp[0] ? temp : "/tmp", "lmc-lossy.XXXXXX");
    if (s->folder == NULL || mkdtemp(s->folder) == NULL) {
        cli_error(NULL, "cannot create a scratch folder: %s", strerror(errno));
        return -1;
    }
    s->data = joined(s->folder, "data");
    if (s->data == NULL) return -1;
    s->idle[0] = s->busy[0] = s->data;
    s->idle[1] = s->busy[3] = s->folder;
    cli_signals_guard_paths(s->idle);
    return 0;
}

static void drop_codec_files(scratch *s) {
    if (s->packed) unlink(s->packed);
    if (s->unpacked) unlink(s->unpacked);
    free(s->packed);
    free(s->unpacked);
    s->packed = s->unpacked = NULL;
}

static void remove_scratch(scratch *s) {
    drop_codec_files(s);
    if (s->data) unlink(s->data);
    if (s->folder) rmdir(s->folder);
    cli_signals_forget_paths();
    free(s->data);
    free(s->folder);
    for (size_t c = 0; c < CURVE_COUNT; c++) {
        free(s->programs[c][0]);
        free(s->programs[c][1]);
    }
}

static int write_file(const char *path, const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int failed = fd < 0;
    while (!failed && size > 0) {
        ssize_t written = write(fd, data, size);
        if (written < 0 && errno == EINTR) continue;
        failed = written < 0;
        if (!failed) {
            data += written;
            size -= (size_t)written;
        }
    }
    if (fd >= 0 && close(fd) != 0) failed = 1;
    return failed ? -1 : 0;
}

/* The word with its placeholder replaced. */
static const char *fill_word(const char *word, const scratch *s, const char *setting) {
    if (strcmp(word, "{q}") == 0) return setting;
    if (strcmp(word, "{data}") == 0) return s->data;
    if (strcmp(word, "{packed}") == 0) return s->packed;
    if (strcmp(word, "{unpacked}") == 0) return s->unpacked;
    return word;
}

/* Runs program with words (standard streams on /dev/null); 0 on exit status 0. */
static int run_program(const char *program, const char *const *words, const scratch *s, const char *setting) {
    const char *argv[MAX_WORDS];
    size_t n = 0;
    for (; words[n] != NULL && n + 1 < MAX_WORDS; n++) argv[n] = fill_word(words[n], s, setting);
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(127);
        execv(program, (char *const *)argv);
        _exit(127);
    }
    if (pid < 0) return -1;
    cli_signals_guard_child(pid);
    int status;
    pid_t waited;
    while ((waited = waitpid(pid, &status, 0)) < 0 && errno == EINTR) continue;
    cli_signals_forget_child();
    return waited == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int external_round_trip(scratch *s, size_t curve, const bench_input *input, const char *setting,
                               lossy_point *point) {
    const external_codec *codec = &externals[curve];
    s->packed = joined(s->folder, codec->packed);
    s->unpacked = joined(s->folder, codec->unpacked);
    s->busy[1] = s->packed;
    s->busy[2] = s->unpacked;
    if (s->packed && s->unpacked) cli_signals_guard_paths(s->busy);
    int outcome = -1;
    double start = cli_now();
    if (s->packed && s->unpacked && run_program(s->programs[curve][0], codec->compress, s, setting) == 0) {
        point->seconds = cli_now() - start;
        struct stat info;
        uint8_t *decoded = NULL;
        size_t size;
        if (stat(s->packed, &info) == 0 && run_program(s->programs[curve][1], codec->decompress, s, setting) == 0 &&
            bench_read_file(s->unpacked, &decoded, &size) == 0) {
            point->bytes = (uint64_t)info.st_size;
            outcome = compare_samples(input->media, decoded, size, point);
            free(decoded);
        }
    }
    if (outcome != 0) cli_notice(input->path, "%s %s: failed", curves[curve].name, setting);
    cli_signals_guard_paths(s->idle);
    drop_codec_files(s);
    return outcome;
}

/* ---- The run ---- */

static lossy_point *new_point(lossy_run *run) {
    if (run->point_count == run->point_capacity) {
        size_t capacity = run->point_capacity ? 2 * run->point_capacity : 64;
        lossy_point *grown = realloc(run->points, capacity * sizeof *grown);
        if (grown == NULL) return NULL;
        run->points = grown;
        run->point_capacity = capacity;
    }
    lossy_point *p = &run->points[run->point_count++];
    memset(p, 0, sizeof *p);
    return p;
}

static void print_point(const lossy_run *run, const lossy_point *p) {
    const lossy_curve *curve = &run->curves[p->curve];
    const char *path = run->files.files[p->file].path;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (!p->ok) {
        printf("%-28s %-24s %5s  %s\n", name, curve->name, curve->settings[p->setting], "FAILED");
        return;
    }
    double psnr = lossy_psnr(p->squared, p->samples, p->peak);
    printf("%-28s %-24s %5s %10llu %8.4f %8.2f %7u %8.1f\n", name, curve->name, curve->settings[p->setting],
           (unsigned long long)p->bytes, lossy_bits_per_sample(p->bytes, p->samples), psnr, p->max_error,
           p->seconds);
    fflush(stdout);
}

static int applies(const lossy_curve *curve, lmc_kind kind, const lmc_media *media) {
    if (curve->is_lmc) return 1;
    return curve->kind == kind && !(media->desc.kind == LMC_KIND_IMAGE && media->desc.palette);
}

/* Every curve on one parsed file. Returns 1 if an lmc point failed. */
static int measure_media(lossy_run *run, scratch *s, size_t file, const bench_input *input) {
    int failed = 0, staged = 0;
    lmc_kind kind = input->media->desc.kind;
    for (size_t c = 0; c < run->curve_count; c++) {
        const lossy_curve *curve = &run->curves[c];
        if (!applies(curve, kind, input->media) || (!curve->is_lmc && (!s->programs[c][0] || !s->programs[c][1])))
            continue;
        if (!curve->is_lmc && !staged) {
            staged = write_file(s->data, input->data, input->size) == 0 ? 1 : -1;
            if (staged < 0) cli_error(input->path, "cannot copy it into %s", s->folder);
        }
        for (size_t k = 0; curve->settings[k] != NULL; k++) {
            lossy_point *p = new_point(run);
            if (p == NULL) return 1;
            *p = (lossy_point){.file = file, .curve = c, .setting = k};
            if (curve->is_lmc)
                p->ok = lmc_round_trip(run, input, (uint32_t)atoi(curve->settings[k]), p) == 0;
            else if (staged > 0)
                p->ok = external_round_trip(s, c, input, curve->settings[k], p) == 0;
            if (curve->is_lmc && !p->ok) failed = 1;
            print_point(run, p);
        }
    }
    return failed;
}

static int measure_file(lossy_run *run, scratch *s, size_t file) {
    const char *path = run->files.files[file].path;
    uint8_t *data;
    size_t size;
    if (bench_read_file(path, &data, &size) != 0) return 1;
    lmc_media media;
    bench_raw_size raw;
    int failed = 0;
    if (bench_media_read(data, size, &media, &raw)) {
        run->kinds[file] = media.desc.kind;
        bench_input input = {path, data, size, &media};
        failed = measure_media(run, s, file, &input);
        lmc_media_free(&media);
    } else {
        cli_notice(path, "not an image, recording or video lmc reads; skipped");
    }
    free(data);
    return failed;
}

static void print_totals(const lossy_run *run) {
    static const lmc_kind kinds[] = {LMC_KIND_IMAGE, LMC_KIND_AUDIO, LMC_KIND_VIDEO};
    for (size_t k = 0; k < 3; k++)
        for (size_t c = 0; c < run->curve_count; c++)
            for (size_t i = 0; run->curves[c].settings[i] != NULL; i++) {
                lossy_total t = lossy_sum(run, kinds[k], c, i);
                if (t.files == 0) continue;
                char label[40];
                snprintf(label, sizeof label, "(total %s, %zu files)", lmc_kind_name(kinds[k]), t.files);
                printf("%-28s %-24s %5s %10llu %8.4f %8.2f %7u\n", label, run->curves[c].name,
                       run->curves[c].settings[i], (unsigned long long)t.bytes,
                       lossy_bits_per_sample(t.bytes, t.samples), lossy_psnr(t.squared, t.samples, t.peak),
                       t.max_error);
            }
}

static void csv_field(FILE *out, const char *text) {
    fputc('"', out);
    for (; *text; text++) {
        if (*text == '"') fputc('"', out);
        fputc(*text, out);
    }
    fputc('"', out);
}

static int write_csv(const lossy_run *run, const char *path) {
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        cli_error(path, "%s", strerror(errno));
        return -1;
    }
    fprintf(out, "file,kind,codec,setting,ok,bytes,samples,bits_per_sample,psnr_db,max_error,compress_seconds\n");
    for (size_t i = 0; i < run->point_count; i++) {
        const lossy_point *p = &run->points[i];
        csv_field(out, run->files.files[p->file].path);
        fprintf(out, ",%s,", lmc_kind_name(run->kinds[p->file]));
        csv_field(out, run->curves[p->curve].name);
        fprintf(out, ",%s,%d,%llu,%llu,%.6f,%.4f,%u,%.3f\n", run->curves[p->curve].settings[p->setting], p->ok,
                (unsigned long long)p->bytes, (unsigned long long)p->samples,
                lossy_bits_per_sample(p->bytes, p->samples), lossy_psnr(p->squared, p->samples, p->peak),
                p->max_error, p->seconds);
    }
    int failed = ferror(out);
    if (fclose(out) != 0) failed = 1;
    if (failed) cli_error(path, "write failed");
    return failed ? -1 : 0;
}

/* PATH for a run of one kind, else PATH with "-KIND" before its suffix. */
static int write_plots(const lossy_run *run, const char *path) {
    static const lmc_kind kinds[] = {LMC_KIND_IMAGE, LMC_KIND_AUDIO, LMC_KIND_VIDEO};
    int present[3] = {0, 0, 0}, count = 0, failed = 0;
    for (size_t k = 0; k < 3; k++) {
        for (size_t f = 0; f < run->files.file_count; f++) present[k] |= run->kinds[f] == kinds[k];
        count += present[k];
    }
    for (size_t k = 0; k < 3; k++) {
        if (!present[k]) continue;
        char name[PATH_MAX];
        const char *dot = strrchr(path, '.');
        size_t stem = dot && !strchr(dot, '/') ? (size_t)(dot - path) : strlen(path);
        if (count == 1)
            snprintf(name, sizeof name, "%s", path);
        else
            snprintf(name, sizeof name, "%.*s-%s%s", (int)stem, path, lmc_kind_name(kinds[k]), path + stem);
        failed |= lossy_write_svg(run, kinds[k], name) != 0;
    }
    return failed ? -1 : 0;
}

static void list_missing(const scratch *s, const lossy_run *run) {
    for (size_t c = CURVE_LMC + 1; c < CURVE_COUNT && !run->config->no_others; c++)
        if (!s->programs[c][0] || !s->programs[c][1])
            cli_notice(NULL, "%s: %s not found; left out", curves[c].name,
                       !s->programs[c][0] ? externals[c].compress[0] : externals[c].decompress[0]);
}

int cli_bench_lossy(const cli_config *config) {
    lossy_run run = {.config = config, .curves = curves, .curve_count = CURVE_COUNT};
    run.files.config = config;
    scratch s;
    memset(&s, 0, sizeof s);
    int status = bench_collect_files(config->files, config->file_count, &run.files);
    run.kinds = calloc(run.files.file_count + 1, sizeof *run.kinds);
    if (status < 0 || run.kinds == NULL) {
        cli_error(NULL, "out of memory");
        status = CLI_EXIT_ERROR;
    } else if (run.files.file_count == 0) {
        cli_error(NULL, "no regular files to measure");
        status = CLI_EXIT_ERROR;
    } else if (make_scratch(&s) != 0) {
        status = CLI_EXIT_ERROR;
    } else {
        find_programs(&run, &s);
        list_missing(&s, &run);
        printf("%-28s %-24s %5s %10s %8s %8s %7s %8s\n", "FILE", "CODEC", "SET", "BYTES", "BITS/S", "PSNR",
               "MAXERR", "ENC s");
        for (size_t f = 0; f < run.files.file_count; f++)
            if (measure_file(&run, &s, f)) status = CLI_EXIT_ERROR;
        print_totals(&run);
        if (config->csv_path && write_csv(&run, config->csv_path) != 0) status = CLI_EXIT_ERROR;
        if (config->svg_path && write_plots(&run, config->svg_path) != 0) status = CLI_EXIT_ERROR;
    }
    remove_scratch(&s);
    for (size_t f = 0; f < run.files.file_count; f++) free(run.files.files[f].path);
    free(run.files.files);
    free(run.kinds);
    free(run.points);
    return status;
}
