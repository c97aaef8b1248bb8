/*
 * lmc bench --csv: one row per file and codec (RFC 4180: fields with commas,
 * quotes or line breaks are quoted), for spreadsheets and scripts. Fields
 * without a value (a missing or failed codec, an empty file's bits per
 * byte) are empty; roundtrip is ok, failed or missing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"

static const char csv_header[] =
    "file,bytes,codec,compressed,bits_per_byte,compress_kbps,decompress_kbps,roundtrip\n";

static void write_field(FILE *out, const char *text) {
    if (strpbrk(text, ",\"\r\n") == NULL) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *c = text; *c; c++) {
        if (*c == '"') fputc('"', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

static const char *roundtrip_text(bench_outcome outcome) {
    switch (outcome) {
    case BENCH_OK: return "ok";
    case BENCH_MISSING: return "missing";
    default: return "failed";
    }
}

static void write_measures(FILE *out, const bench_file *file, const bench_result *result) {
    if (result->outcome != BENCH_OK) {
        fputs(",,,", out);
        return;
    }
    fprintf(out, "%llu,", (unsigned long long)result->compressed);
    if (file->bytes > 0) fprintf(out, "%.4f", bench_bits_per_byte(file->bytes, result->compressed));
    fprintf(out, ",%.1f,%.1f", bench_kbps(file->bytes, result->compress_seconds),
            bench_kbps(file->bytes, result->decompress_seconds));
}

static void write_row(FILE *out, const bench_file *file, const bench_column *column, const bench_result *result) {
    write_field(out, file->path);
    fprintf(out, ",%llu,", (unsigned long long)file->bytes);
    write_field(out, column->name);
    fputc(',', out);
    write_measures(out, file, result);
    fprintf(out, ",%s\n", roundtrip_text(result->outcome));
}

int bench_write_csv(const bench_run *run, const char *path) {
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        cli_error(path, "%s", strerror(errno));
        return -1;
    }
    fputs(csv_header, out);
    for (size_t i = 0; i < run->file_count; i++)
        for (size_t j = 0; j < run->column_count; j++)
            if (run->files[i].results[j].outcome != BENCH_NOT_RUN)
                write_row(out, &run->files[i], &run->columns[j], &run->files[i].results[j]);
    int failed = ferror(out);
    if (fclose(out) != 0) failed = 1;
    if (failed) cli_error(path, "write failed: %s", strerror(errno));
    return failed ? -1 : 0;
}
