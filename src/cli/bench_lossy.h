/*
 * lmc bench --lossy: declarations shared by bench_lossy.c (measuring, the
 * table and the CSV) and bench_lossy_svg.c (the rate-distortion plots).
 */
#ifndef LMC_CLI_BENCH_LOSSY_H
#define LMC_CLI_BENCH_LOSSY_H

#include "cli/bench.h"

/* One point of a curve: a codec at one setting on one file. */
typedef struct {
    size_t file;         /* index into the run's files */
    size_t curve;        /* index into the run's curves */
    size_t setting;      /* index into the curve's settings */
    int ok;              /* coded, decoded and compared */
    uint64_t bytes;      /* compressed size */
    uint64_t samples;    /* samples of every channel, plane and frame */
    uint64_t squared;    /* sum of squared errors */
    uint32_t max_error;  /* largest |decoded - original| */
    double peak;         /* PSNR's peak: max_value, or 2^bits - 1 for audio */
    double seconds;      /* compression, wall clock */
} lossy_point;

/* A codec and its settings: lmc at D = 1, 2, 4, 8, or an external codec
 * at its quality settings. */
typedef struct {
    const char *name;
    lmc_kind kind;             /* the files it runs on */
    const char *settings[8];   /* NULL-terminated, as shown ("D=1", "crf 8") */
    int is_lmc;
    int bound;                 /* a setting is a maximum error the result must keep */
} lossy_curve;

/* A curve's totals over the files of one kind at one setting. */
typedef struct {
    uint64_t bytes, samples, squared;
    uint32_t max_error;
    double peak;
    size_t files;
} lossy_total;

typedef struct {
    const cli_config *config;
    bench_run files;          /* only its files (bench_collect_files) */
    lmc_kind *kinds;          /* per file: its media kind, or LMC_KIND_AUTO if not media */
    const lossy_curve *curves;
    size_t curve_count;
    lossy_point *points;
    size_t point_count, point_capacity;
} lossy_run;

double lossy_bits_per_sample(uint64_t bytes, uint64_t samples);
/* PSNR in dB; INFINITY when nothing changed. */
double lossy_psnr(uint64_t squared, uint64_t samples, double peak);
/* The sums over the files of `kind` of a curve's setting. */
lossy_total lossy_sum(const lossy_run *run, lmc_kind kind, size_t curve, size_t setting);

/* The plot of every curve on the files of `kind` (bench_lossy_svg.c).
 * Returns 0, or -1 after reporting. */
int lossy_write_svg(const lossy_run *run, lmc_kind kind, const char *path);

#endif /* LMC_CLI_BENCH_LOSSY_H */
