/*
 * The compressors lmc bench measures lmc against, one line each, and the
 * table's columns. A codec with a kind other than LMC_KIND_AUTO runs only on
 * files of that kind (image, audio and video codecs beside the general ones).
 * Every codec runs on one thread, as lmc does with -T 1, so that speeds
 * compare; scripts/install-deps.sh bench installs them all (Debian 12).
 */
#define _XOPEN_SOURCE 700 /* realpath under strict C11 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench.h"

#define D BENCH_DATA
#define P BENCH_PACKED
#define U BENCH_UNPACKED
#define ANY LMC_KIND_AUTO
#define BYTES BENCH_CHECK_BYTES
#define SAMPLES BENCH_CHECK_SAMPLES

/* Each at its strongest setting; xz on one thread, since its multithreaded
 * mode cuts the input into independent blocks and compresses less. The media
 * codecs' decoders may write other bytes for the same samples (PNG chunks,
 * WAV and Y4M headers), so their round trips compare samples. */
const bench_codec bench_codecs[] = {
    {"gzip -9", ANY, BYTES, ".gz", "", {"gzip", "-9", "-c", NULL}, {"gzip", "-d", "-c", NULL}},
    {"bzip2 -9", ANY, BYTES, ".bz2", "", {"bzip2", "-9", "-c", NULL}, {"bzip2", "-d", "-c", NULL}},
    {"xz -9e", ANY, BYTES, ".xz", "", {"xz", "-9e", "-T1", "-c", NULL}, {"xz", "-d", "-c", NULL}},
    {"zstd -22", ANY, BYTES, ".zst", "", {"zstd", "--ultra", "-22", "-q", "-c", NULL}, {"zstd", "-d", "-q", "-c", NULL}},
    /* zpaq keeps files in an archive under their names: it extracts the data's as unpacked. */
    {"zpaq -m5", ANY, BYTES, ".zpaq", "", {"zpaq", "a", P, D, "-m5", NULL}, {"zpaq", "x", P, D, "-to", U, NULL}},
    /* optipng would rewrite its input in place; -out writes the optimised
     * PNG (PNM inputs converted) as the packed file instead, which is also
     * the decoded image. */
    {"optipng -o7", LMC_KIND_IMAGE, SAMPLES, ".png", "", {"optipng", "-o7", "-quiet", "-out", P, D, NULL}, {NULL}},
    /* -exact keeps the colour of fully transparent pixels, which lossless
     * WebP otherwise may change. */
    {"cwebp -lossless -z 9", LMC_KIND_IMAGE, SAMPLES, ".webp", ".png",
     {"cwebp", "-quiet", "-lossless", "-z", "9", "-exact", D, "-o", P, NULL}, {"dwebp", "-quiet", P, "-o", U, NULL}},
    /* djxl chooses its output format by the file name's suffix. */
    {"cjxl -d 0 -e 9", LMC_KIND_IMAGE, SAMPLES, ".jxl", ".png",
     {"cjxl", "-d", "0", "-e", "9", "--num_threads=0", "--quiet", D, P, NULL},
     {"djxl", "--num_threads=0", "--quiet", P, U, NULL}},
    /* No padding block: 8 KiB of room for tags is not compressed audio. */
    {"flac -8", LMC_KIND_AUDIO, SAMPLES, ".flac", ".wav", {"flac", "-8", "--no-padding", "-s", "-f", D, "-o", P, NULL},
     {"flac", "-d", "-s", "-f", P, "-o", U, NULL}},
    /* wavpack wants a .wav name for a file, so it reads the data on standard
     * input; wvunpack adds .wav to its output's name unless it has one. */
    {"wavpack -hh -x6", LMC_KIND_AUDIO, SAMPLES, ".wv", ".wav", {"wavpack", "-hh", "-x6", "-q", "-y", "-", "-o", P, NULL},
     {"wvunpack", "-q", "-y", P, "-o", U, NULL}},
    /* Intra only (-g 1), with slice checksums, as archival FFV1 is made. */
    {"ffv1 -level 3", LMC_KIND_VIDEO, SAMPLES, ".mkv", ".y4m",
     {"ffmpeg", "-nostdin", "-loglevel", "error", "-f", "yuv4mpegpipe", "-i", D, "-threads", "1", "-c:v", "ffv1",
      "-level", "3", "-g", "1", "-slicecrc", "1", "-y", P, NULL},
     {"ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", P, "-fps_mode", "passthrough", "-f",
      "yuv4mpegpipe", "-y", U, NULL}},
    /* A raw H.264 stream; ffmpeg decodes it (x264 has no decoder). */
    {"x264 --qp 0", LMC_KIND_VIDEO, SAMPLES, ".264", ".y4m",
     {"x264", "--qp", "0", "--preset", "veryslow", "--threads", "1", "--quiet", "--demuxer", "y4m", "-o", P, D, NULL},
     {"ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-f", "h264", "-i", P, "-fps_mode", "passthrough",
      "-f", "yuv4mpegpipe", "-y", U, NULL}},
    /* x265 through ffmpeg's libx265 (Debian has no x265 program), a raw HEVC
     * stream without its SEI of encoder settings (2 KB); one thread: no
     * thread pool, one frame at a time. */
    {"x265 lossless", LMC_KIND_VIDEO, SAMPLES, ".hevc", ".y4m",
     {"ffmpeg", "-nostdin", "-loglevel", "error", "-f", "yuv4mpegpipe", "-i", D, "-threads", "1", "-c:v", "libx265",
      "-preset", "veryslow", "-x265-params", "lossless=1:info=0:pools=none:frame-threads=1:log-level=error", "-f", "hevc",
      "-y", P, NULL},
     {"ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-f", "hevc", "-i", P, "-fps_mode", "passthrough",
      "-f", "yuv4mpegpipe", "-y", U, NULL}},
};
const size_t bench_codec_count = sizeof bench_codecs / sizeof bench_codecs[0];

/* folder/name as a new string if it is executable; else NULL. An empty
 * folder in PATH means the current one. */
static char *program_in(const char *folder, size_t length, const char *name) {
    if (length == 0) {
        folder = ".";
        length = 1;
    }
    size_t size = length + strlen(name) + 2;
    char *candidate = malloc(size);
    if (candidate == NULL) return NULL;
    snprintf(candidate, size, "%.*s/%s", (int)length, folder, name);
    if (access(candidate, X_OK) != 0) {
        free(candidate);
        return NULL;
    }
    if (candidate[0] == '/') return candidate;
    /* The codecs run inside the scratch folder, where a relative path fails. */
    char *absolute = realpath(candidate, NULL);
    free(candidate);
    return absolute;
}

char *bench_find_program(const char *name) {
    const char *folders = getenv("PATH");
    if (folders == NULL) folders = "/usr/bin:/bin";
    char *found = NULL;
    for (const char *folder = folders; found == NULL; folder++) {
        size_t length = strcspn(folder, ":");
        found = program_in(folder, length, name);
        folder += length;
        if (*folder == '\0') break;
    }
    return found;
}

static void name_lmc_column(const cli_config *config, bench_column *column) {
    if (config->fast)
        snprintf(column->name, sizeof column->name, "lmc --fast");
    else if (config->model != NULL)
        snprintf(column->name, sizeof column->name, "lmc -m %s", config->model);
    else
        snprintf(column->name, sizeof column->name, "lmc");
}

/* "stem" plus suffix as a new string; NULL when out of memory. */
static char *suffixed(const char *stem, const char *suffix) {
    size_t size = strlen(stem) + strlen(suffix) + 1;
    char *name = malloc(size);
    if (name != NULL) snprintf(name, size, "%s%s", stem, suffix);
    return name;
}

static int make_codec_column(const bench_codec *codec, bench_column *column) {
    snprintf(column->name, sizeof column->name, "%s", codec->name);
    column->codec = codec;
    column->program = bench_find_program(codec->compress[0]);
    if (codec->decompress[0] != NULL) column->unpacker = bench_find_program(codec->decompress[0]);
    column->missing = column->program == NULL || (codec->decompress[0] != NULL && column->unpacker == NULL);
    column->packed_name = suffixed("packed", codec->suffix);
    column->unpacked_name = suffixed("unpacked", codec->unpacked_suffix);
    return column->packed_name != NULL && column->unpacked_name != NULL ? 0 : -1;
}

int bench_make_columns(bench_run *run) {
    size_t count = 1 + (run->config->no_others ? 0 : bench_codec_count);
    run->columns = calloc(count, sizeof *run->columns);
    if (run->columns == NULL) return -1;
    run->column_count = count;
    name_lmc_column(run->config, &run->columns[0]);
    for (size_t i = 1; i < count; i++)
        if (make_codec_column(&bench_codecs[i - 1], &run->columns[i]) != 0) return -1;
    return 0;
}

void bench_free_columns(bench_run *run) {
    for (size_t i = 0; i < run->column_count; i++) {
        free(run->columns[i].program);
        free(run->columns[i].unpacker);
        free(run->columns[i].packed_name);
        free(run->columns[i].unpacked_name);
    }
    free(run->columns);
    run->columns = NULL;
    run->column_count = 0;
}
