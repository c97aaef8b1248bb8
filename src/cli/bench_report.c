/*
 * lmc bench's table on stdout: one row per file and codec, printed as each
 * file is done, then one TOTAL row per codec over the files it coded. The
 * columns are aligned (file names padded to the longest), so the table reads
 * in a terminal and splits on blanks in scripts. With images or video among
 * the files a BPSP column (compressed bits per subpixel, i.e. per sample of
 * every channel, plane and frame) follows BPB; with audio, PCM RATIO (raw
 * PCM sample bytes over compressed size). Both are "-" for other files.
 */
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"

typedef struct {
    char compressed[24];
    char ratio[24];
    char bits_per_byte[24];
    char bits_per_subpixel[24];
    char pcm_ratio[24];
    char compress_speed[24];
    char decompress_speed[24];
} row_numbers;

/* What a row shows: a file's result, or a column's totals. */
typedef struct {
    int defined; /* a verified result */
    uint64_t bytes, compressed;
    uint64_t subpixels, subpixel_compressed;
    uint64_t pcm_bytes, pcm_compressed;
    double compress_seconds, decompress_seconds;
} row_measures;

double bench_ratio(uint64_t bytes, uint64_t compressed) {
    return bytes && compressed ? (double)bytes / (double)compressed : 0.0;
}

double bench_bits_per_byte(uint64_t bytes, uint64_t compressed) {
    return bytes ? 8.0 * (double)compressed / (double)bytes : 0.0;
}

double bench_bits_per_subpixel(uint64_t subpixels, uint64_t compressed) {
    return subpixels ? 8.0 * (double)compressed / (double)subpixels : 0.0;
}

double bench_kbps(uint64_t bytes, double seconds) {
    return seconds > 0.0 ? (double)bytes / 1000.0 / seconds : 0.0;
}

/* "-" for what is undefined (no result, or an empty file's ratio). */
static void format_value(char *out, size_t size, int defined, int decimals, double value) {
    if (defined)
        snprintf(out, size, "%.*f", decimals, value);
    else
        snprintf(out, size, "-");
}

static void fill_numbers(const row_measures *m, row_numbers *numbers) {
    format_value(numbers->compressed, sizeof numbers->compressed, m->defined, 0, (double)m->compressed);
    format_value(numbers->ratio, sizeof numbers->ratio, m->defined && m->bytes, 3, bench_ratio(m->bytes, m->compressed));
    format_value(numbers->bits_per_byte, sizeof numbers->bits_per_byte, m->defined && m->bytes, 3,
                 bench_bits_per_byte(m->bytes, m->compressed));
    format_value(numbers->bits_per_subpixel, sizeof numbers->bits_per_subpixel, m->defined && m->subpixels, 3,
                 bench_bits_per_subpixel(m->subpixels, m->subpixel_compressed));
    format_value(numbers->pcm_ratio, sizeof numbers->pcm_ratio, m->defined && m->pcm_bytes, 3,
                 bench_ratio(m->pcm_bytes, m->pcm_compressed));
    format_value(numbers->compress_speed, sizeof numbers->compress_speed, m->defined, 1,
                 bench_kbps(m->bytes, m->compress_seconds));
    format_value(numbers->decompress_speed, sizeof numbers->decompress_speed, m->defined && m->decompress_seconds >= 0,
                 1, bench_kbps(m->bytes, m->decompress_seconds));
}

static int file_width(const bench_run *run) {
    size_t width = strlen("TOTAL");
    for (size_t i = 0; i < run->file_count; i++)
        if (strlen(run->files[i].path) > width) width = strlen(run->files[i].path);
    return (int)width;
}

static int codec_width(const bench_run *run) {
    size_t width = strlen("CODEC");
    for (size_t i = 0; i < run->column_count; i++)
        if (strlen(run->columns[i].name) > width) width = strlen(run->columns[i].name);
    return (int)width;
}

static void print_row(const bench_run *run, const char *file, const char *kind, const char *bytes, const char *codec,
                      const row_numbers *numbers, const char *check) {
    printf("%-*s  %-5s %12s  %-*s %12s %8s %8s", file_width(run), file, kind, bytes, codec_width(run), codec,
           numbers->compressed, numbers->ratio, numbers->bits_per_byte);
    if (run->show_subpixels) printf(" %7s", numbers->bits_per_subpixel);
    if (run->show_pcm) printf(" %9s", numbers->pcm_ratio);
    printf(" %10s %12s  %s\n", numbers->compress_speed, numbers->decompress_speed, check);
}

void bench_print_header(const bench_run *run) {
    row_numbers titles = {"COMPRESSED", "RATIO", "BPB", "BPSP", "PCM RATIO", "COMP KB/s", "DECOMP KB/s"};
    print_row(run, "FILE", "KIND", "BYTES", "CODEC", &titles, "ROUND TRIP");
}

static const char *outcome_text(bench_outcome outcome) {
    switch (outcome) {
    case BENCH_OK: return "ok";
    case BENCH_MISSING: return "missing";
    default: return "FAILED";
    }
}

static row_measures file_measures(const bench_file *file, const bench_result *result) {
    return (row_measures){.defined = result->outcome == BENCH_OK,
                          .bytes = file->bytes,
                          .compressed = result->compressed,
                          .subpixels = file->raw.subpixels,
                          .subpixel_compressed = result->compressed,
                          .pcm_bytes = file->raw.pcm_bytes,
                          .pcm_compressed = result->compressed,
                          .compress_seconds = result->compress_seconds,
                          .decompress_seconds = result->decompress_seconds};
}

static row_measures total_measures(const bench_total *total) {
    return (row_measures){.defined = total->ok > 0,
                          .bytes = total->bytes,
                          .compressed = total->compressed,
                          .subpixels = total->subpixels,
                          .subpixel_compressed = total->subpixel_compressed,
                          .pcm_bytes = total->pcm_bytes,
                          .pcm_compressed = total->pcm_compressed,
                          .compress_seconds = total->compress_seconds,
                          .decompress_seconds = total->decompress_seconds};
}

void bench_print_file(const bench_run *run, const bench_file *file) {
    char bytes[24];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)file->bytes);
    for (size_t i = 0; i < run->column_count; i++) {
        const bench_result *result = &file->results[i];
        if (result->outcome == BENCH_NOT_RUN) continue;
        row_measures measures = file_measures(file, result);
        row_numbers numbers;
        fill_numbers(&measures, &numbers);
        print_row(run, file->path, lmc_kind_name(file->kind), bytes, run->columns[i].name, &numbers,
                  outcome_text(result->outcome));
    }
    fflush(stdout); /* rows appear as files finish, also through a pipe */
}

void bench_sum_column(const bench_run *run, size_t column, bench_total *total) {
    memset(total, 0, sizeof *total);
    for (size_t i = 0; i < run->file_count; i++) {
        const bench_result *result = &run->files[i].results[column];
        if (result->outcome == BENCH_MISSING) total->missing++;
        if (result->outcome == BENCH_FAILED) total->failed++;
        if (result->outcome != BENCH_OK) continue;
        const bench_file *file = &run->files[i];
        total->ok++;
        total->bytes += file->bytes;
        total->compressed += result->compressed;
        total->compress_seconds += result->compress_seconds;
        /* A codec without a decompressor has no time for any file. */
        total->decompress_seconds = result->decompress_seconds < 0 || total->decompress_seconds < 0
                                        ? -1.0
                                        : total->decompress_seconds + result->decompress_seconds;
        total->subpixels += file->raw.subpixels;
        total->subpixel_compressed += file->raw.subpixels ? result->compressed : 0;
        total->pcm_bytes += file->raw.pcm_bytes;
        total->pcm_compressed += file->raw.pcm_bytes ? result->compressed : 0;
    }
}

static void total_check(const bench_total *total, char *out, size_t size) {
    if (total->failed > 0)
        snprintf(out, size, "%zu FAILED", total->failed);
    else if (total->ok == 0 && total->missing > 0)
        snprintf(out, size, "missing");
    else
        snprintf(out, size, "ok");
}

void bench_print_totals(const bench_run *run, const bench_total *totals) {
    putchar('\n');
    for (size_t i = 0; i < run->column_count; i++) {
        const bench_total *total = &totals[i];
        if (total->ok + total->failed + total->missing == 0) continue; /* for no file's kind */
        char bytes[24], check[32];
        format_value(bytes, sizeof bytes, total->ok > 0, 0, (double)total->bytes);
        total_check(total, check, sizeof check);
        row_measures measures = total_measures(total);
        row_numbers numbers;
        fill_numbers(&measures, &numbers);
        print_row(run, "TOTAL", "-", bytes, run->columns[i].name, &numbers, check);
    }
    fflush(stdout);
}
