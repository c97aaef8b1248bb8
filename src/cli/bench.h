/*
 * lmc bench: declarations shared by bench*.c and svg.c.
 *
 * A run measures every input file (a row group) under every column: lmc
 * itself, coded in process through lmc.h, then the external compressors of
 * bench_codecs[], run as programs in a private scratch folder. Each result
 * is verified by decoding it again and comparing bytes, or, for the image,
 * audio and video codecs (which may store the same samples in other bytes),
 * the samples: an exception to the CLI's public-API-only rule, bench reads
 * media through the library's own parser (format/media.h), so that "the
 * same pixels" means what lmc's media coders mean by it.
 */
#ifndef LMC_CLI_BENCH_H
#define LMC_CLI_BENCH_H

#include <stdio.h>

#include "cli/cli.h"
#include "format/media.h"

#define BENCH_MAX_ARGS 24

/* Placeholders in a codec's argv words, replaced by file names in the
 * scratch folder (where the programs run). Compression goes data -> packed,
 * decompression packed -> unpacked; a command without its input's
 * placeholder reads that file on standard input, one without its output's
 * placeholder writes that file on standard output. */
#define BENCH_DATA "{data}"
#define BENCH_PACKED "{packed}"
#define BENCH_UNPACKED "{unpacked}"

typedef enum {
    BENCH_CHECK_BYTES = 0, /* the decoded file must equal the original */
    BENCH_CHECK_SAMPLES    /* ... or hold the same samples (lmc_media_parse); the
                              codec runs only on files that parser reads */
} bench_check;

typedef struct {
    const char *name;   /* in the table, the CSV and the chart */
    lmc_kind kind;      /* LMC_KIND_AUTO: any data; else only data of this kind */
    bench_check check;
    const char *suffix; /* of the packed file, for programs that insist on one */
    const char *unpacked_suffix; /* of the decoded file, for decoders that choose its format by it */
    const char *compress[BENCH_MAX_ARGS];   /* NULL-terminated; [0] is looked up in PATH */
    /* Likewise; empty when the packed file is itself the decoded file (a PNG
     * optimiser), which is then checked without a decompression time. */
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
    double decompress_seconds; /* < 0: not measured (no decompressor) */
} bench_result;

/* A column of the table: lmc itself, or an external codec. */
typedef struct {
    char name[80];
    const bench_codec *codec; /* NULL: lmc, in process */
    char *program;            /* the codec's compressor; NULL: missing (or lmc) */
    char *unpacker;           /* its decompressor; NULL: missing, or none needed */
    int missing;              /* a program the codec needs is not installed */
    char *packed_name;        /* "packed" plus the codec's suffix */
    char *unpacked_name;      /* "unpacked" plus the codec's unpacked suffix */
} bench_column;

/* The raw size of a media file, as lmc_media_parse reads it; zeros when it
 * does not (not media, or a variant it does not handle). */
typedef struct {
    uint64_t subpixels; /* image, video: samples of every plane (and frame) */
    uint64_t pcm_bytes; /* audio: channels x frames x bytes per container sample */
} bench_raw_size;

typedef struct {
    char *path;
    uint64_t bytes;
    lmc_kind kind;
    bench_raw_size raw;
    bench_result *results; /* one per column */
} bench_file;

/* One input while it is measured. */
typedef struct {
    const char *path;
    const uint8_t *data;
    size_t size;
    const lmc_media *media; /* its samples; NULL if lmc_media_parse does not read it */
} bench_input;

/* A column's sums over the files it coded and verified. */
typedef struct {
    uint64_t bytes;
    uint64_t compressed;
    double compress_seconds;
    double decompress_seconds; /* < 0: not measured */
    uint64_t subpixels, subpixel_compressed; /* over the files with subpixels */
    uint64_t pcm_bytes, pcm_compressed;      /* over the files with PCM samples */
    size_t ok, failed, missing;
} bench_total;

typedef struct {
    const cli_config *config;
    bench_column *columns;
    size_t column_count;
    bench_file *files;
    size_t file_count;
    int show_subpixels;    /* an image or video among the files: bits per subpixel shown */
    int show_pcm;          /* audio among the files: the ratio against raw PCM shown */
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
/* Every file's kind from its start (before the table's header, whose
 * columns depend on them); a file that cannot be read now is left to
 * bench_read_file to report. Sets show_subpixels and show_pcm. */
void bench_detect_kinds(bench_run *run);

/* ---- bench_media.c: samples ---- */
/* Parses data as media into *media and fills *raw. Returns 1 if parsed (the
 * caller frees *media), 0 if not (nothing to free, raw zeroed). */
int bench_media_read(const uint8_t *data, size_t size, lmc_media *media, bench_raw_size *raw);
/* 1 if decoded holds the same samples as the input: equal bytes, or a file
 * lmc_media_parse reads with the same geometry and sample values (images
 * compared as RGBA, so that a palette, a gray or a narrower file with equal
 * pixels matches). */
int bench_media_same(const bench_input *input, const uint8_t *decoded, size_t decoded_size);
/* ---- bench_pixels.c ---- */
/* 1 if two parsed images, with their files' bytes (for PNG palettes and
 * transparency), show equal pixels. */
int bench_pixels_equal(const lmc_media *a, const uint8_t *a_file, size_t a_size, const lmc_media *b,
                       const uint8_t *b_file, size_t b_size);

/* ---- bench_lmc.c ---- */
/* The round trip must give the file back byte for byte, or, for media,
 * the same samples (lmc's PNG coder restores the pixels, not the bytes). */
void bench_lmc(const cli_config *config, const bench_input *input, bench_result *result);

/* ---- bench_codecs.c ---- */
/* The columns for config: lmc, then every codec unless --no-others. Returns
 * 0, or -1 when out of memory. */
int bench_make_columns(bench_run *run);
void bench_free_columns(bench_run *run);
/* The executable that execvp would run for a bare name, as a new absolute
 * path; NULL if there is none. */
char *bench_find_program(const char *name);

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
void bench_external(const bench_run *run, const bench_column *column, const bench_input *input,
                    bench_result *result);

/* ---- bench_report.c: the table on stdout ---- */
void bench_print_header(const bench_run *run);
void bench_print_file(const bench_run *run, const bench_file *file);
void bench_print_totals(const bench_run *run, const bench_total *totals);
void bench_sum_column(const bench_run *run, size_t column, bench_total *total);
/* Original over compressed size, and compressed bits per original byte;
 * each 0 where undefined. */
double bench_ratio(uint64_t bytes, uint64_t compressed);
double bench_bits_per_byte(uint64_t bytes, uint64_t compressed);
/* Compressed bits per raw subpixel; 0 where undefined. */
double bench_bits_per_subpixel(uint64_t subpixels, uint64_t compressed);
/* Original bytes per second, in thousands; 0 where undefined. */
double bench_kbps(uint64_t bytes, double seconds);

/* ---- bench_csv.c, svg.c: the reports. Each returns 0, or -1 after reporting. ---- */
int bench_write_csv(const bench_run *run, const char *path);
int bench_write_svg(const bench_run *run, const bench_total *totals, const char *path);

#endif /* LMC_CLI_BENCH_H */
