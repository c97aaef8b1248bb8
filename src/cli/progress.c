/*
 * A one-line progress display on stderr, redrawn at most four times a
 * second: name, percentage and ETA (when the input size is known), bytes
 * in and out, throughput.
 */
#define _DEFAULT_SOURCE /* clock_gettime and TIOCGWINSZ under strict C11 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define REDRAW_INTERVAL 0.25
#define NAME_WIDTH 32

double cli_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *progress, const char *name, uint64_t total, int counts_output) {
    memset(progress, 0, sizeof *progress);
    progress->enabled = cli_verbosity > CLI_QUIET && isatty(STDERR_FILENO);
    progress->name = name;
    progress->total = total;
    progress->counts_output = counts_output;
    progress->start = cli_now();
    /* The first draw waits one interval, so quick files show no flicker. */
    progress->last_draw = progress->start;
}

static int terminal_columns(void) {
    struct winsize size;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    return 80;
}

/* The name's tail when too long, not splitting a UTF-8 sequence. */
static const char *shortened_name(const char *name, int *elided) {
    size_t length = strlen(name);
    *elided = length > NAME_WIDTH;
    if (!*elided) return name;
    const char *tail = name + length - (NAME_WIDTH - 3);
    while ((*tail & 0xC0) == 0x80) tail++;
    return tail;
}

static void format_duration(double seconds, char *out, size_t size) {
    unsigned long total = (unsigned long)(seconds + 0.5);
    if (total >= 3600)
        snprintf(out, size, "%lu:%02lu:%02lu", total / 3600, total / 60 % 60, total % 60);
    else
        snprintf(out, size, "%lu:%02lu", total / 60, total % 60);
}

/* The bytes that measure progress: input coded, or output decoded. */
static uint64_t bytes_done(const cli_progress *progress) {
    return progress->counts_output ? progress->bytes_out : progress->bytes_in;
}

/* " 45%" and " ETA 0:12" when the total is known; empty otherwise. */
static void format_completion(const cli_progress *progress, double rate, char *percent, char *eta, size_t size) {
    percent[0] = eta[0] = '\0';
    if (progress->total == 0) return;
    uint64_t done = bytes_done(progress) < progress->total ? bytes_done(progress) : progress->total;
    snprintf(percent, size, " %3d%%", (int)(done * 100 / progress->total));
    if (rate <= 0.0) return;
    char duration[24];
    format_duration((double)(progress->total - done) / rate, duration, sizeof duration);
    snprintf(eta, size, "  ETA %s", duration);
}

static void draw(cli_progress *progress, double now) {
    double elapsed = now - progress->start;
    double rate = elapsed > 0.0 ? (double)bytes_done(progress) / elapsed : 0.0;
    char in[32], out[32], speed[32], percent[32], eta[48], line[512];
    cli_format_bytes(progress->bytes_in, in, sizeof in);
    cli_format_bytes(progress->bytes_out, out, sizeof out);
    cli_format_bytes((uint64_t)rate, speed, sizeof speed);
    format_completion(progress, rate, percent, eta, sizeof percent);
    int elided;
    const char *name = shortened_name(progress->name, &elided);
    snprintf(line, sizeof line, "%s%s%s  %s -> %s  %s/s%s", elided ? "..." : "", name, percent, in, out, speed,
             eta);
    int columns = terminal_columns();
    fprintf(stderr, "\r%.*s\033[K", columns > 1 ? columns - 1 : 1, line);
    fflush(stderr);
    progress->shown = 1;
    cli_signals_progress_shown(1);
}

void cli_progress_update(cli_progress *progress, uint64_t bytes_in, uint64_t bytes_out) {
    progress->bytes_in = bytes_in;
    progress->bytes_out = bytes_out;
    if (!progress->enabled) return;
    double now = cli_now();
    if (now - progress->last_draw < REDRAW_INTERVAL) return;
    progress->last_draw = now;
    draw(progress, now);
}

void cli_progress_end(cli_progress *progress) {
    if (!progress->shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    progress->shown = 0;
    cli_signals_progress_shown(0);
}

int cli_progress_callback(void *user, uint64_t bytes_in, uint64_t bytes_out) {
    cli_progress_update(user, bytes_in, bytes_out);
    return 0; /* interruption is handled by the signal handler, not here */
}
