/*
 * lmc_bench_cm: the --fast context-mixing model (lmc_cm_compress and
 * lmc_cm_decompress) next to gzip -9, bzip2 -9 and xz -9 on the same files,
 * measured in the same run.
 *
 * For each file and codec: compressed size, ratio, bits per input byte and
 * the speed of both directions in MB/s (10^6 input bytes per CPU second).
 * lmc's times are this thread's CPU time around the calls, over the file
 * cut into blocks as the container cuts it with --fast; an external codec's
 * times are its process's CPU time (user + sys, from wait4) for
 * `CODEC -9 -c < FILE` and `CODEC -d -c` of that output. CPU time is far
 * steadier than wall time on a shared machine. Every output is decoded and
 * compared with the input. Totals are grouped by the files' folders.
 *
 * Usage: lmc_bench_cm [-b BLOCK_SIZE] [-n] FILE...
 *   -b  block size in bytes (default 4194304, the container's --fast default)
 *   -n  lmc only: skip the external codecs
 * Prints Markdown tables.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "model/model.h"

#define DEFAULT_BLOCK_SIZE (4u << 20)
#define MAX_GROUPS 16

typedef struct {
    const char *name;
    const char *compress_flags;   /* one argument */
} external_codec;

static const external_codec external_codecs[] = {
    {"gzip", "-9"},
    {"bzip2", "-9"},
    {"xz", "-9"},
};
#define EXTERNAL_CODECS (sizeof external_codecs / sizeof external_codecs[0])
#define CODECS (1 + EXTERNAL_CODECS)

typedef struct {
    uint64_t raw, compressed;
    double compress_seconds, decompress_seconds;
    int ok;
} measurement;

typedef struct {
    char name[256];
    measurement total[CODECS];
} group;

static void *xmalloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "lmc_bench_cm: out of memory\n");
        exit(1);
    }
    return p;
}

static double thread_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    lmc_buf buf;
    lmc_buf_init(&buf);
    uint8_t chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, file)) > 0) {
        if (lmc_buf_append(&buf, chunk, n) != LMC_OK) {
            fprintf(stderr, "lmc_bench_cm: out of memory\n");
            exit(1);
        }
    }
    fclose(file);
    *size = buf.size;
    return buf.data ? buf.data : xmalloc(1);
}

/* ---- lmc --fast ---- */

static measurement bench_cm(const uint8_t *data, size_t size, size_t block_size) {
    measurement m = {.raw = size, .ok = 1};
    size_t blocks = (size + block_size - 1) / block_size;
    lmc_buf *payloads = xmalloc((blocks ? blocks : 1) * sizeof *payloads);
    double start = thread_seconds();
    for (size_t b = 0; b < blocks; b++) {
        size_t offset = b * block_size;
        lmc_buf_init(&payloads[b]);
        if (lmc_cm_compress(data + offset, LMC_MIN(block_size, size - offset), &payloads[b]) != LMC_OK)
            m.ok = 0;
        m.compressed += payloads[b].size;
    }
    m.compress_seconds = thread_seconds() - start;

    uint8_t *decoded = xmalloc(size);
    start = thread_seconds();
    for (size_t b = 0; b < blocks; b++) {
        size_t offset = b * block_size;
        if (lmc_cm_decompress(payloads[b].data, payloads[b].size, decoded + offset,
                              LMC_MIN(block_size, size - offset)) != LMC_OK)
            m.ok = 0;
    }
    m.decompress_seconds = thread_seconds() - start;
    m.ok = m.ok && memcmp(decoded, data, size) == 0;
    for (size_t b = 0; b < blocks; b++)
        lmc_buf_free(&payloads[b]);
    free(payloads);
    free(decoded);
    return m;
}

/* ---- External codecs ---- */

/* Runs argv with stdin and stdout redirected to files; returns the exit
 * status (-1 if it could not run) and its CPU seconds. */
static int run_child(char *const argv[], const char *in_path, const char *out_path, double *seconds) {
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int in = open(in_path, O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0)
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) != pid)
        return -1;
    *seconds = (double)usage.ru_utime.tv_sec + 1e-6 * (double)usage.ru_utime.tv_usec +
               (double)usage.ru_stime.tv_sec + 1e-6 * (double)usage.ru_stime.tv_usec;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static int file_equals(const char *path, const uint8_t *data, size_t size) {
    size_t got_size;
    uint8_t *got = read_file(path, &got_size);
    int equal = got && got_size == size && memcmp(got, data, size) == 0;
    free(got);
    return equal;
}

static measurement bench_external(const external_codec *codec, const char *path, const uint8_t *data,
                                  size_t size, const char *scratch_dir) {
    measurement m = {.raw = size};
    char packed[512], unpacked[512];
    snprintf(packed, sizeof packed, "%s/packed", scratch_dir);
    snprintf(unpacked, sizeof unpacked, "%s/unpacked", scratch_dir);
    char *compress_argv[] = {(char *)codec->name, (char *)codec->compress_flags, "-c", NULL};
    char *decompress_argv[] = {(char *)codec->name, "-d", "-c", NULL};
    if (run_child(compress_argv, path, packed, &m.compress_seconds) != 0 ||
        run_child(decompress_argv, packed, unpacked, &m.decompress_seconds) != 0)
        return m;
    off_t packed_size = file_size(packed);
    m.compressed = packed_size > 0 ? (uint64_t)packed_size : 0;
    m.ok = packed_size > 0 && file_equals(unpacked, data, size);
    unlink(packed);
    unlink(unpacked);
    return m;
}

/* ---- Report ---- */

static const char *codec_label(size_t codec) {
    static char label[64];
    if (codec == 0)
        return "lmc --fast (cm)";
    snprintf(label, sizeof label, "%s %s", external_codecs[codec - 1].name, external_codecs[codec - 1].compress_flags);
    return label;
}

static double speed(uint64_t bytes, double seconds) {
    return seconds > 0 ? (double)bytes / 1e6 / seconds : 0.0;
}

static void print_row(const char *file, size_t codec, const measurement *m) {
    double ratio = m->compressed ? (double)m->raw / (double)m->compressed : 0.0;
    double bits = m->raw ? 8.0 * (double)m->compressed / (double)m->raw : 0.0;
    printf("| %s | %s | %llu | %llu | %.3f | %.3f | %.2f | %.2f | %s |\n", file, codec_label(codec),
           (unsigned long long)m->raw, (unsigned long long)m->compressed, ratio, bits,
           speed(m->raw, m->compress_seconds), speed(m->raw, m->decompress_seconds), m->ok ? "ok" : "FAIL");
}

static void print_header(const char *title) {
    printf("\n### %s\n\n", title);
    printf("| file | codec | bytes | compressed | ratio | bits/byte | compress MB/s | decompress MB/s | round trip |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
}

static void add(measurement *total, const measurement *m) {
    total->raw += m->raw;
    total->compressed += m->compressed;
    total->compress_seconds += m->compress_seconds;
    total->decompress_seconds += m->decompress_seconds;
    total->ok = total->ok && m->ok;
}

/* The folder name of a path ("corpus/text/a.txt" -> "text"). */
static void folder_of(const char *path, char *out, size_t out_size) {
    const char *end = strrchr(path, '/');
    const char *start = path;
    if (end) {
        const char *p = end;
        while (p > path && p[-1] != '/')
            p--;
        start = p;
    }
    size_t length = end ? (size_t)(end - start) : 1;
    snprintf(out, out_size, "%.*s", (int)length, end ? start : ".");
}

static group *find_group(group *groups, int *n_groups, const char *path) {
    char name[256];
    folder_of(path, name, sizeof name);
    for (int i = 0; i < *n_groups; i++)
        if (strcmp(groups[i].name, name) == 0)
            return &groups[i];
    if (*n_groups == MAX_GROUPS)
        return &groups[MAX_GROUPS - 1];
    group *g = &groups[(*n_groups)++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    for (size_t c = 0; c < CODECS; c++)
        g->total[c].ok = 1;
    return g;
}

static int usage(void) {
    fprintf(stderr, "usage: lmc_bench_cm [-b BLOCK_SIZE] [-n] FILE...\n");
    return 2;
}

int main(int argc, char **argv) {
    size_t block_size = DEFAULT_BLOCK_SIZE;
    int external = 1, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "-b") == 0 && first + 1 < argc)
            block_size = (size_t)strtoull(argv[++first], NULL, 10);
        else if (strcmp(argv[first], "-n") == 0)
            external = 0;
        else
            return usage();
    }
    if (first == argc || block_size == 0)
        return usage();
    char scratch_dir[] = "/tmp/lmc_bench_cm.XXXXXX";
    if (external && !mkdtemp(scratch_dir)) {
        perror("lmc_bench_cm: mkdtemp");
        return 1;
    }

    group groups[MAX_GROUPS];
    int n_groups = 0, failures = 0;
    printf("Block size %zu bytes; MB/s = 10^6 input bytes per CPU second.\n", block_size);
    print_header("Per file");
    for (int i = first; i < argc; i++) {
        size_t size;
        uint8_t *data = read_file(argv[i], &size);
        if (!data) {
            fprintf(stderr, "lmc_bench_cm: cannot read %s\n", argv[i]);
            return 1;
        }
        const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        group *g = find_group(groups, &n_groups, argv[i]);
        for (size_t c = 0; c < (external ? CODECS : 1); c++) {
            measurement m = c == 0 ? bench_cm(data, size, block_size)
                                   : bench_external(&external_codecs[c - 1], argv[i], data, size, scratch_dir);
            print_row(name, c, &m);
            add(&g->total[c], &m);
            failures += !m.ok;
            fflush(stdout);
        }
        free(data);
    }
    print_header("Totals per folder (sum of bytes / sum of compressed bytes; speeds over the sums)");
    for (int i = 0; i < n_groups; i++)
        for (size_t c = 0; c < (external ? CODECS : 1); c++)
            print_row(groups[i].name, c, &groups[i].total[c]);
    if (external)
        rmdir(scratch_dir);
    return failures ? 1 : 0;
}
