/*
 * The compressors lmc bench measures lmc against, one line each, and the
 * table's columns. A codec with a kind other than LMC_KIND_AUTO runs only on
 * files of that kind (image, audio and video codecs beside the general ones).
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

/* Each at its strongest setting; xz on one thread, since its multithreaded
 * mode cuts the input into independent blocks and compresses less. */
const bench_codec bench_codecs[] = {
    {"gzip -9", LMC_KIND_AUTO, ".gz", {"gzip", "-9", "-c", NULL}, {"gzip", "-d", "-c", NULL}},
    {"bzip2 -9", LMC_KIND_AUTO, ".bz2", {"bzip2", "-9", "-c", NULL}, {"bzip2", "-d", "-c", NULL}},
    {"xz -9e", LMC_KIND_AUTO, ".xz", {"xz", "-9e", "-T1", "-c", NULL}, {"xz", "-d", "-c", NULL}},
    {"zstd -22", LMC_KIND_AUTO, ".zst", {"zstd", "--ultra", "-22", "-q", "-c", NULL}, {"zstd", "-d", "-q", "-c", NULL}},
    /* zpaq keeps files in an archive under their names: it extracts the data's as unpacked. */
    {"zpaq -m5", LMC_KIND_AUTO, ".zpaq", {"zpaq", "a", P, D, "-m5", NULL}, {"zpaq", "x", P, D, "-to", U, NULL}},
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

/* The executable that execvp would run for a bare name, as a new string;
 * NULL if there is none. */
static char *find_program(const char *name) {
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

static int make_codec_column(const bench_codec *codec, bench_column *column) {
    snprintf(column->name, sizeof column->name, "%s", codec->name);
    column->codec = codec;
    column->program = find_program(codec->compress[0]);
    size_t size = sizeof "packed" + strlen(codec->suffix);
    column->packed_name = malloc(size);
    if (column->packed_name == NULL) return -1;
    snprintf(column->packed_name, size, "packed%s", codec->suffix);
    return 0;
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
        free(run->columns[i].packed_name);
    }
    free(run->columns);
    run->columns = NULL;
    run->column_count = 0;
}
