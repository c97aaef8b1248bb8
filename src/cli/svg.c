/*
 * lmc bench --svg: a grouped bar chart, one group per file plus one for the
 * totals, one colored bar per codec, with a y axis, grid lines, the value
 * above each bar, file names below, and a legend. The value is the
 * compression ratio (original over compressed size); when every file is an
 * image or a video, the bits per subpixel instead (a PNG's file ratio says
 * little: the PNG is compressed already), and when every file is audio, the
 * ratio against raw PCM. Plain SVG 1.1 written by hand: any browser or image
 * viewer shows it, and nothing beyond libc is needed to make it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"

#define BAR_WIDTH 16
#define BAR_GAP 2
#define GROUP_GAP 30
#define LEFT 80
#define TOP 64
#define PLOT_HEIGHT 320
#define BOTTOM 140
#define LEGEND_WIDTH 220
#define LEGEND_ROW 20
#define LABEL_LIMIT 28 /* bytes of a file name shown under its group */

static const char *const palette[] = {"#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define PALETTE_SIZE (sizeof palette / sizeof palette[0])

typedef enum {
    METRIC_RATIO,             /* file bytes / compressed */
    METRIC_BITS_PER_SUBPIXEL, /* compressed bits / subpixels */
    METRIC_PCM_RATIO          /* PCM bytes / compressed */
} chart_metric;

typedef struct {
    const char *axis;  /* the y axis label */
    const char *title; /* after "lmc bench: " */
    const char *note;  /* under the title */
    const char *short_name; /* in the bars' tooltips */
} metric_text;

static const metric_text metric_texts[] = {
    [METRIC_RATIO] = {"compression ratio (original / compressed)", "compression ratio by file and codec",
                      "higher is better; the dashed line is ratio 1 (no gain)", "ratio"},
    [METRIC_BITS_PER_SUBPIXEL] = {"bits per subpixel (compressed bits / samples)", "bits per subpixel by file and codec",
                                  "lower is better; a subpixel is one sample of one channel", "bits per subpixel"},
    [METRIC_PCM_RATIO] = {"ratio against raw PCM (sample bytes / compressed)", "ratio against raw PCM by file and codec",
                          "higher is better; the dashed line is ratio 1 (no gain)", "PCM ratio"},
};

typedef struct {
    FILE *out;
    chart_metric metric;
    const bench_run *run;
    const bench_total *totals;
    size_t group_count; /* the files, plus the totals when there are several files */
    size_t series_count; /* columns with at least one bar */
    double y_max;
    double y_step;
    int plot_width;
} chart;

/* The length of a UTF-8 sequence from its first byte; 0 if none starts so. */
static size_t utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead < 0xE0) return 2;
    if (lead >= 0xE0 && lead < 0xF0) return 3;
    if (lead >= 0xF0 && lead < 0xF5) return 4;
    return 0;
}

/* The length of the valid UTF-8 sequence at text (within limit bytes), or
 * 0: file names need not be UTF-8, and XML must be. */
static size_t utf8_sequence(const unsigned char *text, size_t limit) {
    size_t length = utf8_length(text[0]);
    if (length == 0 || length > limit) return 0;
    for (size_t i = 1; i < length; i++)
        if ((text[i] & 0xC0) != 0x80) return 0;
    return length;
}

static const char *xml_entity(unsigned char c) {
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    default: return NULL;
    }
}

/* Writes up to limit bytes of text as XML character data: markup escaped,
 * control characters and invalid UTF-8 shown as '?'. */
static void write_escaped(FILE *out, const char *text, size_t limit) {
    const unsigned char *next = (const unsigned char *)text;
    size_t left = strlen(text) < limit ? strlen(text) : limit;
    while (left > 0) {
        size_t length = utf8_sequence(next, left);
        if (length == 0 || *next < 0x20 || *next == 0x7F) {
            fputc('?', out);
            length = 1;
        } else if (xml_entity(*next) != NULL) {
            fputs(xml_entity(*next), out);
        } else {
            fwrite(next, 1, length, out);
        }
        next += length;
        left -= length;
    }
    if (strlen(text) > limit) fputs("...", out);
}

static const char *last_component(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

static int column_has_bars(const chart *c, size_t column) {
    return c->totals[column].ok > 0;
}

/* A column's colour, by its place among the columns with bars: a run shows
 * only its kinds' codecs, seldom more than the palette holds. */
static const char *column_color(const chart *c, size_t column) {
    size_t series = 0;
    for (size_t i = 0; i < column; i++) series += column_has_bars(c, i) ? 1 : 0;
    return palette[series % PALETTE_SIZE];
}

static double total_value(const chart *c, const bench_total *total) {
    switch (c->metric) {
    case METRIC_BITS_PER_SUBPIXEL: return bench_bits_per_subpixel(total->subpixels, total->subpixel_compressed);
    case METRIC_PCM_RATIO: return bench_ratio(total->pcm_bytes, total->pcm_compressed);
    default: return bench_ratio(total->bytes, total->compressed);
    }
}

static double file_value(const chart *c, const bench_file *file, uint64_t compressed) {
    switch (c->metric) {
    case METRIC_BITS_PER_SUBPIXEL: return bench_bits_per_subpixel(file->raw.subpixels, compressed);
    case METRIC_PCM_RATIO: return bench_ratio(file->raw.pcm_bytes, compressed);
    default: return bench_ratio(file->bytes, compressed);
    }
}

/* The value of a bar, or 0 for none (no result, or an empty file). */
static double bar_value(const chart *c, size_t group, size_t column) {
    if (group == c->run->file_count) return total_value(c, &c->totals[column]);
    const bench_file *file = &c->run->files[group];
    const bench_result *result = &file->results[column];
    return result->outcome == BENCH_OK ? file_value(c, file, result->compressed) : 0.0;
}

/* Bits per subpixel or the PCM ratio when every file has that measure. */
static chart_metric choose_metric(const bench_run *run) {
    int all_subpixels = 1, all_pcm = 1;
    for (size_t i = 0; i < run->file_count; i++) {
        all_subpixels &= run->files[i].raw.subpixels > 0;
        all_pcm &= run->files[i].raw.pcm_bytes > 0;
    }
    if (all_subpixels) return METRIC_BITS_PER_SUBPIXEL;
    return all_pcm ? METRIC_PCM_RATIO : METRIC_RATIO;
}

/* A round axis: steps of 1, 2 or 5 times a power of ten, about six of them. */
static void choose_scale(chart *c) {
    double highest = 0.0;
    for (size_t g = 0; g < c->group_count; g++)
        for (size_t i = 0; i < c->run->column_count; i++)
            if (bar_value(c, g, i) > highest) highest = bar_value(c, g, i);
    if (highest <= 0.0) highest = 1.0;
    highest *= 1.12; /* room for the label above the tallest bar */
    double raw = highest / 6.0;
    double magnitude = pow(10.0, floor(log10(raw)));
    double normalized = raw / magnitude;
    c->y_step = (normalized <= 1.0 ? 1.0 : normalized <= 2.0 ? 2.0 : normalized <= 5.0 ? 5.0 : 10.0) * magnitude;
    c->y_max = ceil(highest / c->y_step) * c->y_step;
}

static int group_width(const chart *c) {
    size_t bars = c->series_count ? c->series_count : 1;
    return (int)(bars * BAR_WIDTH + (bars - 1) * BAR_GAP);
}

static int group_left(const chart *c, size_t group) {
    return LEFT + GROUP_GAP + (int)group * (group_width(c) + GROUP_GAP);
}

static double y_of(const chart *c, double value) {
    return TOP + PLOT_HEIGHT - value / c->y_max * PLOT_HEIGHT;
}

static void write_axes(const chart *c) {
    FILE *out = c->out;
    for (double tick = 0.0; tick <= c->y_max + c->y_step / 2; tick += c->y_step) {
        double y = y_of(c, tick);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", LEFT, y,
                LEFT + c->plot_width, y);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", LEFT - 6, y + 4, tick);
    }
    if (c->metric != METRIC_BITS_PER_SUBPIXEL && c->y_max > 1.0) /* ratio 1: the data did not shrink */
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n",
                LEFT, y_of(c, 1.0), LEFT + c->plot_width, y_of(c, 1.0));
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", LEFT, TOP, LEFT,
            TOP + PLOT_HEIGHT);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", LEFT, TOP + PLOT_HEIGHT,
            LEFT + c->plot_width, TOP + PLOT_HEIGHT);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">%s</text>\n", 24,
            TOP + PLOT_HEIGHT / 2, 24, TOP + PLOT_HEIGHT / 2, metric_texts[c->metric].axis);
}

static void write_bar(const chart *c, size_t group, size_t column, int x) {
    double value = bar_value(c, group, column);
    if (value <= 0.0) return;
    double top = y_of(c, value);
    const char *name = group == c->run->file_count ? "TOTAL" : c->run->files[group].path;
    fprintf(c->out, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>", x, top, BAR_WIDTH,
            TOP + PLOT_HEIGHT - top, column_color(c, column));
    write_escaped(c->out, name, SIZE_MAX);
    fprintf(c->out, ", %s: %s %.3f</title></rect>\n", c->run->columns[column].name, metric_texts[c->metric].short_name,
            value);
    double label_x = x + BAR_WIDTH / 2.0 + 3.0, label_y = top - 4.0;
    fprintf(c->out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" transform=\"rotate(-90 %.1f %.1f)\">%.2f</text>\n",
            label_x, label_y, label_x, label_y, value);
}

static void write_group_label(const chart *c, size_t group) {
    double x = group_left(c, group) + group_width(c) / 2.0;
    int y = TOP + PLOT_HEIGHT + 16;
    int totals = group == c->run->file_count;
    fprintf(c->out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"end\"%s transform=\"rotate(-35 %.1f %d)\">", x, y,
            totals ? " font-weight=\"bold\"" : "", x, y);
    write_escaped(c->out, totals ? "TOTAL" : last_component(c->run->files[group].path), LABEL_LIMIT);
    fputs("</text>\n", c->out);
}

static void write_groups(const chart *c) {
    for (size_t g = 0; g < c->group_count; g++) {
        int x = group_left(c, g);
        for (size_t i = 0; i < c->run->column_count; i++) {
            if (!column_has_bars(c, i)) continue;
            write_bar(c, g, i, x);
            x += BAR_WIDTH + BAR_GAP;
        }
        write_group_label(c, g);
    }
}

static const char *legend_note(const bench_total *total) {
    if (total->ok > 0) return total->failed ? " (failed on some files)" : "";
    return total->missing ? " (missing)" : " (failed)";
}

static void write_legend(const chart *c) {
    int x = LEFT + c->plot_width + 24, y = TOP;
    for (size_t i = 0; i < c->run->column_count; i++) {
        const bench_total *total = &c->totals[i];
        if (total->ok + total->failed + total->missing == 0) continue;
        const char *color = column_has_bars(c, i) ? column_color(c, i) : "#ffffff";
        fprintf(c->out, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\" stroke=\"#444\"/>\n", x, y,
                color);
        fprintf(c->out, "<text x=\"%d\" y=\"%d\">", x + 18, y + 11);
        write_escaped(c->out, c->run->columns[i].name, SIZE_MAX);
        fprintf(c->out, "%s</text>\n", legend_note(total));
        y += LEGEND_ROW;
    }
}

static void write_chart(chart *c) {
    int width = LEFT + c->plot_width + 24 + LEGEND_WIDTH;
    int legend_height = TOP + (int)c->run->column_count * LEGEND_ROW + 20;
    int height = TOP + PLOT_HEIGHT + BOTTOM > legend_height ? TOP + PLOT_HEIGHT + BOTTOM : legend_height;
    fprintf(c->out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                    "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
    fprintf(c->out, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height);
    fprintf(c->out, "<text x=\"%d\" y=\"26\" font-size=\"16\" font-weight=\"bold\">lmc bench: %s</text>\n", LEFT,
            metric_texts[c->metric].title);
    fprintf(c->out, "<text x=\"%d\" y=\"46\" fill=\"#555\">%s</text>\n", LEFT, metric_texts[c->metric].note);
    write_axes(c);
    write_groups(c);
    write_legend(c);
    fputs("</svg>\n", c->out);
}

static void lay_out(chart *c) {
    c->group_count = c->run->file_count + (c->run->file_count > 1 ? 1 : 0);
    c->series_count = 0;
    for (size_t i = 0; i < c->run->column_count; i++) c->series_count += column_has_bars(c, i) ? 1 : 0;
    c->plot_width = GROUP_GAP + (int)c->group_count * (group_width(c) + GROUP_GAP);
    choose_scale(c);
}

int bench_write_svg(const bench_run *run, const bench_total *totals, const char *path) {
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        cli_error(path, "%s", strerror(errno));
        return -1;
    }
    chart c = {.out = out, .metric = choose_metric(run), .run = run, .totals = totals};
    lay_out(&c);
    write_chart(&c);
    int failed = ferror(out);
    if (fclose(out) != 0) failed = 1;
    if (failed) cli_error(path, "write failed: %s", strerror(errno));
    return failed ? -1 : 0;
}
