/*
 * lmc bench: measures lmc against gzip, bzip2, xz, zstd and zpaq, and on
 * images, audio and video against the lossless codecs of those media, on the
 * same files in one invocation; sizes, bits per byte (and per subpixel, or
 * the ratio against raw PCM), speeds and a verified round trip for each, as
 * a table on stdout and, on request, a CSV file and an SVG chart. The exit
 * status is 1 if any lmc round trip failed (or an input or report could not
 * be handled); other codecs' failures are only reported.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction under strict C11 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"

#define LMC_COLUMN 0

/* A media codec runs on its kind, and only where its samples can be checked. */
static int applies_to(const bench_column *column, const bench_file *file, const bench_input *input) {
    if (column->codec->check == BENCH_CHECK_SAMPLES && input->media == NULL) return 0;
    return column->codec->kind == LMC_KIND_AUTO || column->codec->kind == file->kind;
}

static void measure_others(const bench_run *run, bench_file *file, const bench_input *input) {
    int staged = 0; /* the data is copied into the scratch folder once, when first needed */
    for (size_t i = LMC_COLUMN + 1; i < run->column_count; i++) {
        const bench_column *column = &run->columns[i];
        bench_result *result = &file->results[i];
        if (!applies_to(column, file, input)) continue;
        if (column->missing) {
            result->outcome = BENCH_MISSING;
            continue;
        }
        if (staged == 0) staged = bench_stage_data(run, file->path, input->data, input->size) == 0 ? 1 : -1;
        if (staged < 0)
            result->outcome = BENCH_FAILED;
        else
            bench_external(run, column, input, result);
    }
}

/* The file's samples, if lmc_media_parse reads it as media of its kind
 * (--kind may say otherwise). Returns 1 if so; the caller frees *media. */
static int read_media(bench_file *file, const uint8_t *data, size_t size, lmc_media *media) {
    if (!bench_media_read(data, size, media, &file->raw)) return 0;
    if (media->desc.kind == file->kind) return 1;
    lmc_media_free(media);
    file->raw = (bench_raw_size){0, 0};
    return 0;
}

static int measure_file(const bench_run *run, bench_file *file) {
    uint8_t *data;
    size_t size;
    if (bench_read_file(file->path, &data, &size) != 0) return CLI_EXIT_ERROR;
    file->bytes = size;
    file->kind = bench_file_kind(run->config, data, size);
    lmc_media media;
    int is_media = read_media(file, data, size, &media);
    bench_input input = {file->path, data, size, is_media ? &media : NULL};
    bench_lmc(run->config, &input, &file->results[LMC_COLUMN]);
    measure_others(run, file, &input);
    if (is_media) lmc_media_free(&media);
    free(data);
    bench_print_file(run, file);
    return file->results[LMC_COLUMN].outcome == BENCH_OK ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

static int measure_all(bench_run *run) {
    int status = CLI_EXIT_OK;
    bench_detect_kinds(run);
    bench_print_header(run);
    for (size_t i = 0; i < run->file_count; i++) {
        int file_status = measure_file(run, &run->files[i]);
        if (file_status > status) status = file_status;
    }
    return status;
}

static int report(const bench_run *run) {
    bench_total *totals = calloc(run->column_count, sizeof *totals);
    if (totals == NULL) {
        cli_error(NULL, "out of memory");
        return CLI_EXIT_ERROR;
    }
    for (size_t i = 0; i < run->column_count; i++) bench_sum_column(run, i, &totals[i]);
    bench_print_totals(run, totals);
    int failed = 0;
    if (run->config->csv_path) failed |= bench_write_csv(run, run->config->csv_path) != 0;
    if (run->config->svg_path) failed |= bench_write_svg(run, totals, run->config->svg_path) != 0;
    free(totals);
    return failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int allocate_results(bench_run *run) {
    for (size_t i = 0; i < run->file_count; i++) {
        run->files[i].results = calloc(run->column_count, sizeof *run->files[i].results);
        if (run->files[i].results == NULL) return -1;
    }
    return 0;
}

/* Inputs, columns, results and the scratch folder. Returns CLI_EXIT_OK, or
 * CLI_EXIT_ERROR with *fatal set when nothing can be measured. */
static int prepare(bench_run *run, int *fatal) {
    int status = bench_collect_files(run->config->files, run->config->file_count, run);
    *fatal = 1;
    if (status < 0 || bench_make_columns(run) != 0 || allocate_results(run) != 0) {
        cli_error(NULL, "out of memory");
        return CLI_EXIT_ERROR;
    }
    if (run->file_count == 0) {
        cli_error(NULL, "no regular files to measure");
        return CLI_EXIT_ERROR;
    }
    if (run->column_count > 1 && bench_scratch_create(run) != 0) return CLI_EXIT_ERROR;
    *fatal = 0;
    return status;
}

static void release(bench_run *run) {
    bench_scratch_remove(run);
    bench_free_columns(run);
    for (size_t i = 0; i < run->file_count; i++) {
        free(run->files[i].path);
        free(run->files[i].results);
    }
    free(run->files);
}

/* An ignored SIGCHLD (inherited from our parent) would let the kernel reap
 * the codecs before their exit status could be read. */
static void keep_child_status(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(SIGCHLD, &action, NULL);
}

int cli_bench(const cli_config *config) {
    if (config->lossy) return cli_bench_lossy(config);
    bench_run run = {.config = config};
    keep_child_status();
    int fatal;
    int status = prepare(&run, &fatal);
    if (!fatal) {
        int measured = measure_all(&run);
        int reported = report(&run);
        if (measured > status) status = measured;
        if (reported > status) status = reported;
    }
    release(&run);
    return status;
}
