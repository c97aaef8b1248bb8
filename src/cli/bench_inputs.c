/*
 * lmc bench's inputs: the regular files named on the command line, and those
 * directly inside the folders named there (sorted by name, so that runs over
 * the same folder compare row for row).
 */
#define _POSIX_C_SOURCE 200809L /* strdup, O_CLOEXEC under strict C11 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench.h"

#define DETECT_PREFIX (1u << 16)

/* Takes ownership of path. Returns 0, or -1 when out of memory. */
static int add_file(bench_run *run, char *path, uint64_t bytes) {
    bench_file *grown = path ? realloc(run->files, (run->file_count + 1) * sizeof *grown) : NULL;
    if (grown == NULL) {
        free(path);
        return -1;
    }
    run->files = grown;
    run->files[run->file_count++] = (bench_file){.path = path, .bytes = bytes, .kind = LMC_KIND_AUTO};
    return 0;
}

static char *join_path(const char *folder, const char *name) {
    size_t folder_length = strlen(folder);
    int needs_slash = folder_length > 0 && folder[folder_length - 1] != '/';
    char *path = malloc(folder_length + (size_t)needs_slash + strlen(name) + 1);
    if (path == NULL) return NULL;
    strcpy(path, folder);
    if (needs_slash) strcat(path, "/");
    return strcat(path, name);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entry names of folder, sorted, as a new array of new strings.
 * Returns 0, CLI_EXIT_ERROR after reporting, or -1 when out of memory. */
static int list_folder(const char *folder, char ***names, size_t *count) {
    *names = NULL;
    *count = 0;
    DIR *dir = opendir(folder);
    if (dir == NULL) {
        cli_error(folder, "%s", strerror(errno));
        return CLI_EXIT_ERROR;
    }
    struct dirent *entry;
    int outcome = 0;
    while (outcome == 0 && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char **grown = realloc(*names, (*count + 1) * sizeof *grown);
        if (grown != NULL) *names = grown;
        if (grown == NULL || (grown[*count] = strdup(entry->d_name)) == NULL)
            outcome = -1;
        else
            (*count)++;
    }
    closedir(dir);
    if (*count > 1) qsort(*names, *count, sizeof **names, compare_names);
    return outcome;
}

/* Subfolders and other special entries are not measured. */
static int add_if_regular(bench_run *run, const char *folder, const char *name) {
    char *path = join_path(folder, name);
    if (path == NULL) return -1;
    struct stat info;
    if (stat(path, &info) != 0 || !S_ISREG(info.st_mode)) {
        free(path);
        return 0;
    }
    return add_file(run, path, (uint64_t)info.st_size);
}

static int add_folder(bench_run *run, const char *folder) {
    char **names;
    size_t count;
    int outcome = list_folder(folder, &names, &count);
    for (size_t i = 0; i < count; i++) {
        if (outcome == 0) outcome = add_if_regular(run, folder, names[i]);
        free(names[i]);
    }
    free(names);
    return outcome;
}

static int add_operand(bench_run *run, const char *operand) {
    struct stat info;
    if (stat(operand, &info) != 0) {
        cli_error(operand, "%s", strerror(errno));
        return CLI_EXIT_ERROR;
    }
    if (S_ISDIR(info.st_mode)) return add_folder(run, operand);
    if (!S_ISREG(info.st_mode)) {
        cli_error(operand, "not a regular file; skipped");
        return CLI_EXIT_ERROR;
    }
    return add_file(run, strdup(operand), (uint64_t)info.st_size);
}

int bench_collect_files(char **operands, int count, bench_run *run) {
    int status = CLI_EXIT_OK;
    for (int i = 0; i < count; i++) {
        int outcome = add_operand(run, operands[i]);
        if (outcome < 0) return -1;
        if (outcome > status) status = outcome;
    }
    return status;
}

static int read_exactly(int fd, uint8_t *buffer, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t got = read(fd, buffer + done, size - done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        done += (size_t)got;
    }
    return 0;
}

int bench_read_file(const char *path, uint8_t **data, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0) {
        cli_error(path, "%s", strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    *size = (size_t)info.st_size;
    *data = malloc(*size ? *size : 1);
    int failed = *data == NULL || read_exactly(fd, *data, *size) != 0;
    if (failed) cli_error(path, "%s", *data ? "read failed (did the file change?)" : "out of memory");
    close(fd);
    if (failed) free(*data);
    return failed ? -1 : 0;
}

lmc_kind bench_file_kind(const cli_config *config, const uint8_t *data, size_t size) {
    if (config->kind != LMC_KIND_AUTO) return config->kind;
    return lmc_detect_kind(data, size < DETECT_PREFIX ? size : DETECT_PREFIX);
}

/* Up to DETECT_PREFIX bytes from fd's start; returns how many. */
static size_t read_start(int fd, uint8_t *buffer) {
    size_t size = 0;
    while (size < DETECT_PREFIX) {
        ssize_t got = read(fd, buffer + size, DETECT_PREFIX - size);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        size += (size_t)got;
    }
    return size;
}

/* The kind from the file's start; LMC_KIND_AUTO if it cannot be read. */
static lmc_kind kind_from_start(const cli_config *config, const char *path, uint8_t *buffer) {
    if (config->kind != LMC_KIND_AUTO) return config->kind;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return LMC_KIND_AUTO;
    size_t size = read_start(fd, buffer);
    close(fd);
    return bench_file_kind(config, buffer, size);
}

void bench_detect_kinds(bench_run *run) {
    static uint8_t buffer[DETECT_PREFIX];
    for (size_t i = 0; i < run->file_count; i++) {
        bench_file *file = &run->files[i];
        file->kind = kind_from_start(run->config, file->path, buffer);
        if (file->kind == LMC_KIND_IMAGE || file->kind == LMC_KIND_VIDEO) run->show_subpixels = 1;
        if (file->kind == LMC_KIND_AUDIO) run->show_pcm = 1;
    }
}
