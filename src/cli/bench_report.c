/*
 * lmc bench's table on stdout: one row per file and codec, printed as each
 * file is done, then one TOTAL row per codec over the files it coded. The
 * columns are aligned (file names padded to the longest), so the table reads
 * in a terminal and splits on blanks in scripts.
 */
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"

typedef struct {
    char compressed[24];
    char ratio[24];
    char bits_per_byte[24];
    char compress_speed[24];
    char decompress_speed[24];
} row_numbers;

double bench_ratio(uint64_t bytes, uint64_t compressed) {
    return bytes && compressed ? (double)bytes / (double)compressed : 0.0;
}

double bench_bits_per_byte(uint64_t bytes, uint64_t compressed) {
    return bytes ? 8.0 * (double)compressed / (double)bytes : 0.0;
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

static void fill_numbers(int defined, uint64_t bytes, uint64_t compressed, double compress_seconds,
                         double decompress_seconds, row_numbers *numbers) {
    format_value(numbers->compressed, sizeof numbers->compressed, defined, 0, (double)compressed);
    format_value(numbers->ratio, sizeof numbers->ratio, defined && bytes, 3, bench_ratio(bytes, compressed));
    format_value(numbers->bits_per_byte, sizeof numbers->bits_per_byte, defined && bytes, 3,
                 bench_bits_per_byte(bytes, compressed));
    format_value(numbers->compress_speed, sizeof numbers->compress_speed, defined, 1,
                 bench_kbps(bytes, compress_seconds));
    format_value(numbers->decompress_speed, sizeof numbers->decompress_speed, defined, 1,
                 bench_kbps(bytes, decompress_seconds));
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
    printf("%-*s  %-5s %12s  %-*s %12s %8s %8s %10s %12s  %s\n", file_width(run), file, kind, bytes, codec_width(run),
           codec, numbers->compressed, numbers->ratio, numbers->bits_per_byte, numbers->compress_speed,
           numbers->decompress_speed, check);
}

void bench_print_header(const bench_run *run) {
    row_numbers titles = {"COMPRESSED", "RATIO", "BPB", "COMP KB/s", "DECOMP KB/s"};
    print_row(run, "FILE", "KIND", "BYTES", "CODEC", &titles, "ROUND TRIP");
}

static const char *outcome_text(bench_outcome outcome) {
    switch (outcome) {
    case BENCH_OK: return "ok";
    case BENCH_MISSING: return "missing";
    default: return "FAILED";
    }
}

void bench_print_file(const bench_run *run, const bench_file *file) {
    char bytes[24];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)file->bytes);
    for (size_t i = 0; i < run->column_count; i++) {
        const bench_result *result = &file->results[i];
        if (result->outcome == BENCH_NOT_RUN) continue;
        row_numbers numbers;
        fill_numbers(result->outcome == BENCH_OK, file->bytes, result->compressed, result->compress_seconds,
                     result->decompress_seconds, &numbers);
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
        total->ok++;
        total->bytes += run->files[i].bytes;
        total->compressed += result->compressed;
        total->compress_seconds += result->compress_seconds;
        total->decompress_seconds += result->decompress_seconds;
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
        row_numbers numbers;
        fill_numbers(total->ok > 0, total->bytes, total->compressed, total->compress_seconds,
                     total->decompress_seconds, &numbers);
        print_row(run, "TOTAL", "-", bytes, run->columns[i].name, &numbers, check);
    }
    fflush(stdout);
}
