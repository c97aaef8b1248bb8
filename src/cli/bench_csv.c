/*
 * lmc bench --csv: one row per file and codec (RFC 4180: fields with commas,
 * quotes or line breaks are quoted), for spreadsheets and scripts. Fields
 * without a value (a missing or failed codec, an empty file's bits per
 * byte, a PNG optimiser's decompression speed) are empty; roundtrip is ok,
 * failed or missing. As in the table, runs with images or video add the
 * subpixels and bits per subpixel before roundtrip, runs with audio the PCM
 * bytes and the ratio against them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"

static void write_header(FILE *out, const bench_run *run) {
    fputs("file,bytes,codec,compressed,bits_per_byte,compress_kbps,decompress_kbps", out);
    if (run->show_subpixels) fputs(",subpixels,bits_per_subpixel", out);
    if (run->show_pcm) fputs(",pcm_bytes,pcm_ratio", out);
    fputs(",roundtrip\n", out);
}

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
    fprintf(out, ",%.1f,", bench_kbps(file->bytes, result->compress_seconds));
    if (result->decompress_seconds >= 0) fprintf(out, "%.1f", bench_kbps(file->bytes, result->decompress_seconds));
}

/* ",RAW,MEASURE": the file's raw size (if known) and compressed per raw unit
 * (if measured). */
static void write_raw_pair(FILE *out, uint64_t raw, int measured, double measure) {
    fputc(',', out);
    if (raw > 0) fprintf(out, "%llu", (unsigned long long)raw);
    fputc(',', out);
    if (raw > 0 && measured) fprintf(out, "%.4f", measure);
}

static void write_row(FILE *out, const bench_run *run, const bench_file *file, const bench_column *column,
                      const bench_result *result) {
    write_field(out, file->path);
    fprintf(out, ",%llu,", (unsigned long long)file->bytes);
    write_field(out, column->name);
    fputc(',', out);
    write_measures(out, file, result);
    int ok = result->outcome == BENCH_OK;
    if (run->show_subpixels)
        write_raw_pair(out, file->raw.subpixels, ok, bench_bits_per_subpixel(file->raw.subpixels, result->compressed));
    if (run->show_pcm) write_raw_pair(out, file->raw.pcm_bytes, ok, bench_ratio(file->raw.pcm_bytes, result->compressed));
    fprintf(out, ",%s\n", roundtrip_text(result->outcome));
}

int bench_write_csv(const bench_run *run, const char *path) {
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        cli_error(path, "%s", strerror(errno));
        return -1;
    }
    write_header(out, run);
    for (size_t i = 0; i < run->file_count; i++)
        for (size_t j = 0; j < run->column_count; j++)
            if (run->files[i].results[j].outcome != BENCH_NOT_RUN)
                write_row(out, run, &run->files[i], &run->columns[j], &run->files[i].results[j]);
    int failed = ferror(out);
    if (fclose(out) != 0) failed = 1;
    if (failed) cli_error(path, "write failed: %s", strerror(errno));
    return failed ? -1 : 0;
}
