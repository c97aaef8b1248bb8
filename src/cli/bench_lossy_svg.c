/*
 * lmc bench --lossy --svg: one rate-distortion plot per media kind, bits per
 * sample (x) against PSNR in dB (y), each codec a line through its settings'
 * totals over the kind's files, lmc's points labelled with their D. Plain
 * SVG 1.1 written by hand, like the bar chart of svg.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/bench_lossy.h"

#define WIDTH 760
#define HEIGHT 480
#define LEFT 70
#define RIGHT 250 /* the legend's room */
#define TOP 50
#define BOTTOM 60
#define MAX_SETTINGS 8

static const char *const colours[] = {"#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"};
#define COLOUR_COUNT (sizeof colours / sizeof colours[0])

typedef struct {
    double x[MAX_SETTINGS], y[MAX_SETTINGS];
    const char *label[MAX_SETTINGS];
    size_t count;
} curve_points;

typedef struct {
    FILE *out;
    double x_max, y_min, y_max;
} plot;

/* A curve's finite points on the kind, by rate. */
static void collect(const lossy_run *run, lmc_kind kind, size_t c, curve_points *points) {
    points->count = 0;
    for (size_t i = 0; run->curves[c].settings[i] != NULL && points->count < MAX_SETTINGS; i++) {
        lossy_total t = lossy_sum(run, kind, c, i);
        double psnr = lossy_psnr(t.squared, t.samples, t.peak);
        if (t.files == 0 || !isfinite(psnr)) continue;
        size_t at = points->count++;
        double x = lossy_bits_per_sample(t.bytes, t.samples);
        while (at > 0 && points->x[at - 1] > x) { /* insertion by rate */
            points->x[at] = points->x[at - 1];
            points->y[at] = points->y[at - 1];
            points->label[at] = points->label[at - 1];
            at--;
        }
        points->x[at] = x;
        points->y[at] = psnr;
        points->label[at] = run->curves[c].settings[i];
    }
}

static double px(const plot *p, double x) {
    return LEFT + x / p->x_max * (WIDTH - LEFT - RIGHT);
}

static double py(const plot *p, double y) {
    return TOP + (p->y_max - y) / (p->y_max - p->y_min) * (HEIGHT - TOP - BOTTOM);
}

static double nice_step(double span, int ticks) {
    double raw = span / ticks, unit = pow(10.0, floor(log10(raw)));
    return raw <= unit ? unit : raw <= 2 * unit ? 2 * unit : raw <= 5 * unit ? 5 * unit : 10 * unit;
}

static void write_axes(const plot *p, lmc_kind kind) {
    fprintf(p->out, "<text x='%d' y='24' font-size='16' font-weight='bold'>lmc bench --lossy: %s rate-distortion"
                    "</text>\n", LEFT, lmc_kind_name(kind));
    fprintf(p->out, "<text x='%d' y='40' font-size='11' fill='#555'>PSNR over all samples of all files (higher is "
                    "better) against bits per sample (lower is better)</text>\n", LEFT);
    double xs = nice_step(p->x_max, 8), ys = nice_step(p->y_max - p->y_min, 8);
    for (double x = 0; x <= p->x_max + 1e-9; x += xs)
        fprintf(p->out, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/><text x='%.1f' y='%d' "
                        "font-size='11' text-anchor='middle'>%g</text>\n",
                px(p, x), TOP, px(p, x), HEIGHT - BOTTOM, px(p, x), HEIGHT - BOTTOM + 16, x);
    for (double y = ceil(p->y_min / ys) * ys; y <= p->y_max + 1e-9; y += ys)
        fprintf(p->out, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/><text x='%d' y='%.1f' "
                        "font-size='11' text-anchor='end'>%g</text>\n",
                LEFT, py(p, y), WIDTH - RIGHT, py(p, y), LEFT - 6, py(p, y) + 4, y);
    fprintf(p->out, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#333'/>\n", LEFT, TOP,
            WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    fprintf(p->out, "<text x='%d' y='%d' font-size='12' text-anchor='middle'>bits per sample</text>\n",
            (LEFT + WIDTH - RIGHT) / 2, HEIGHT - 20);
    fprintf(p->out, "<text x='18' y='%d' font-size='12' text-anchor='middle' transform='rotate(-90 18 %d)'>"
                    "PSNR (dB)</text>\n", (TOP + HEIGHT - BOTTOM) / 2, (TOP + HEIGHT - BOTTOM) / 2);
}

static void write_curve(const plot *p, const lossy_curve *curve, const curve_points *points, const char *colour,
                        int row) {
    fprintf(p->out, "<polyline fill='none' stroke='%s' stroke-width='2' points='", colour);
    for (size_t i = 0; i < points->count; i++) fprintf(p->out, "%.1f,%.1f ", px(p, points->x[i]), py(p, points->y[i]));
    fprintf(p->out, "'/>\n");
    for (size_t i = 0; i < points->count; i++) {
        fprintf(p->out, "<circle cx='%.1f' cy='%.1f' r='3.5' fill='%s'><title>%s %s: %.4f bits per sample, "
                        "%.2f dB</title></circle>\n", px(p, points->x[i]), py(p, points->y[i]), colour, curve->name,
                points->label[i], points->x[i], points->y[i]);
        if (curve->is_lmc)
            fprintf(p->out, "<text x='%.1f' y='%.1f' font-size='10' fill='%s'>D=%s</text>\n", px(p, points->x[i]) + 5,
                    py(p, points->y[i]) - 5, colour, points->label[i]);
    }
    int y = TOP + 10 + 20 * row;
    fprintf(p->out, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='2'/><text x='%d' y='%d' "
                    "font-size='12'>%s</text>\n", WIDTH - RIGHT + 16, y, WIDTH - RIGHT + 40, y, colour,
            WIDTH - RIGHT + 46, y + 4, curve->name);
}

int lossy_write_svg(const lossy_run *run, lmc_kind kind, const char *path) {
    curve_points points[8];
    size_t count = run->curve_count < 8 ? run->curve_count : 8;
    plot p = {NULL, 0.0, INFINITY, -INFINITY};
    for (size_t c = 0; c < count; c++) {
        collect(run, kind, c, &points[c]);
        for (size_t i = 0; i < points[c].count; i++) {
            p.x_max = fmax(p.x_max, points[c].x[i]);
            p.y_min = fmin(p.y_min, points[c].y[i]);
            p.y_max = fmax(p.y_max, points[c].y[i]);
        }
    }
    if (!isfinite(p.y_min)) p.y_min = 0, p.y_max = 1, p.x_max = 1; /* no point: empty axes */
    p.x_max = p.x_max > 0 ? p.x_max * 1.08 : 1;
    p.y_min = floor(p.y_min - 1);
    p.y_max = ceil(p.y_max + 1);
    p.out = fopen(path, "w");
    if (p.out == NULL) {
        cli_error(path, "%s", strerror(errno));
        return -1;
    }
    fprintf(p.out, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='%d' "
                   "height='%d' font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n",
            WIDTH, HEIGHT);
    write_axes(&p, kind);
    int row = 0;
    for (size_t c = 0; c < count; c++)
        if (points[c].count > 0) write_curve(&p, &run->curves[c], &points[c], colours[c % COLOUR_COUNT], row++);
    fprintf(p.out, "</svg>\n");
    int failed = ferror(p.out);
    if (fclose(p.out) != 0) failed = 1;
    if (failed) cli_error(path, "write failed");
    return failed ? -1 : 0;
}
