/*
 * lmc bench: declarations shared by bench*.c and svg.c.
 *
 * A run measures every input file (a row group) under every column: lmc
 * itself, coded in process through lmc.h, then the external compressors of
 * bench_codecs[], run as programs in a private scratch folder. Each result
 * is verified by decoding it again and comparing bytes.
 */
#ifndef LMC_CLI_BENCH_H
#define LMC_CLI_BENCH_H

#include <stdio.h>

#include "cli/cli.h"

#define BENCH_MAX_ARGS 12

/* Placeholders in a codec's argv words, replaced by file names in the
 * scratch folder (where the programs run). Compression goes data -> packed,
 * decompression packed -> unpacked; a command without its input's
 * placeholder reads that file on standard input, one without its output's
 * placeholder writes that file on standard output. */
#define BENCH_DATA "{data}"
#define BENCH_PACKED "{packed}"
#define BENCH_UNPACKED "{unpacked}"

typedef struct {
    const char *name;   /* in the table, the CSV and the chart */
    lmc_kind kind;      /* LMC_KIND_AUTO: any data; else only data of this kind */
    const char *suffix; /* of the packed file, for programs that insist on one */
    const char *compress[BENCH_MAX_ARGS];   /* NULL-terminated; [0] is looked up in PATH */
    const char *decompress[BENCH_MAX_ARGS];
} bench_codec;

extern const bench_codec bench_codecs[];
extern const size_t bench_codec_count;

typedef enum {
    BENCH_NOT_RUN = 0, /* the codec is not for this file's kind */
    BENCH_OK,
    BENCH_FAILED,      /* an error, or the round trip changed the data */
    BENCH_MISSING      /* the program is not installed */
} bench_outcome;

typedef struct {
    bench_outcome outcome;
    uint64_t compressed;
    double compress_seconds;
    double decompress_seconds;
} bench_result;

/* A column of the table: lmc itself, or an external codec. */
typedef struct {
    char name[80];
    const bench_codec *codec; /* NULL: lmc, in process */
    char *program;            /* the codec's executable; NULL: missing (or lmc) */
    char *packed_name;        /* "packed" plus the codec's suffix */
} bench_column;

typedef struct {
    char *path;
    uint64_t bytes;
    lmc_kind kind;
    bench_result *results; /* one per column */
} bench_file;

/* A column's sums over the files it coded and verified. */
typedef struct {
    uint64_t bytes;
    uint64_t compressed;
    double compress_seconds;
    double decompress_seconds;
    size_t ok, failed, missing;
} bench_total;

typedef struct {
    const cli_config *config;
    bench_column *columns;
    size_t column_count;
    bench_file *files;
    size_t file_count;
    char *scratch;         /* the private temporary folder; NULL until made */
    char **scratch_paths;  /* its files, then itself, NULL-terminated (for signals) */
} bench_run;

/* ---- bench_inputs.c ---- */
/* Regular files named by operands, folders expanded one level and sorted by
 * name. Returns CLI_EXIT_OK, or CLI_EXIT_ERROR if an operand was reported
 * and skipped; -1 when out of memory. */
int bench_collect_files(char **operands, int count, bench_run *run);
/* The whole file in a new buffer. Returns 0, or -1 after reporting. */
int bench_read_file(const char *path, uint8_t **data, size_t *size);
/* The file's kind: --kind, else detected from its start. */
lmc_kind bench_file_kind(const cli_config *config, const uint8_t *data, size_t size);

/* ---- bench_lmc.c ---- */
void bench_lmc(const cli_config *config, const char *path, const uint8_t *data, size_t size, bench_result *result);

/* ---- bench_codecs.c ---- */
/* The columns for config: lmc, then every codec unless --no-others. Returns
 * 0, or -1 when out of memory. */
int bench_make_columns(bench_run *run);
void bench_free_columns(bench_run *run);

/* ---- bench_exec.c ---- */
/* Makes the scratch folder (under TMPDIR or /tmp), guarded against signals.
 * Returns 0, or -1 after reporting. */
int bench_scratch_create(bench_run *run);
/* Empties and removes it. */
void bench_scratch_remove(bench_run *run);
/* Puts data into the scratch folder as the codecs' input. Returns 0, or -1
 * after reporting. */
int bench_stage_data(const bench_run *run, const char *path, const uint8_t *data, size_t size);
/* Runs column's codec on the staged data, both ways, verifying the result. */
void bench_external(const bench_run *run, const bench_column *column, const char *path, const uint8_t *data,
                    size_t size, bench_result *result);

/* ---- bench_report.c: the table on stdout ---- */
void bench_print_header(const bench_run *run);
void bench_print_file(const bench_run *run, const bench_file *file);
void bench_print_totals(const bench_run *run, const bench_total *totals);
void bench_sum_column(const bench_run *run, size_t column, bench_total *total);
/* Original over compressed size, and compressed bits per original byte;
 * each 0 where undefined. */
double bench_ratio(uint64_t bytes, uint64_t compressed);
double bench_bits_per_byte(uint64_t bytes, uint64_t compressed);
/* Original bytes per second, in thousands. */
double bench_kbps(uint64_t bytes, double seconds);

/* ---- bench_csv.c, svg.c: the reports. Each returns 0, or -1 after reporting. ---- */
int bench_write_csv(const bench_run *run, const char *path);
int bench_write_svg(const bench_run *run, const bench_total *totals, const char *path);

#endif /* LMC_CLI_BENCH_H */
