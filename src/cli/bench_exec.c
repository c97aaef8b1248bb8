/*
 * lmc bench's external codecs: each runs as a program (fork and exec, no
 * shell) in a private scratch folder holding the data, the packed file and
 * the unpacked file; its standard error is discarded and its exit status
 * and output judged instead. Times are wall-clock times of the whole
 * program, start-up included; the check after decompression is not timed.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, O_CLOEXEC under strict C11 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/bench.h"

#define DATA_NAME "data"
#define COMPARE_CHUNK (1u << 16)

/* "SCRATCH/name" as a new string; NULL when out of memory. */
static char *in_scratch(const bench_run *run, const char *name) {
    size_t size = strlen(run->scratch) + strlen(name) + 2;
    char *path = malloc(size);
    if (path != NULL) snprintf(path, size, "%s/%s", run->scratch, name);
    return path;
}

static int make_scratch_folder(bench_run *run) {
    const char *temp = getenv("TMPDIR");
    if (temp == NULL || temp[0] == '\0') temp = "/tmp";
    size_t size = strlen(temp) + sizeof "/lmc-bench.XXXXXX";
    run->scratch = malloc(size);
    if (run->scratch == NULL) {
        cli_error(NULL, "out of memory");
        return -1;
    }
    snprintf(run->scratch, size, "%s/lmc-bench.XXXXXX", temp);
    if (mkdtemp(run->scratch) != NULL) return 0;
    cli_error(temp, "cannot create a scratch folder: %s", strerror(errno));
    free(run->scratch);
    run->scratch = NULL;
    return -1;
}

/* Every file the codecs make, then the folder: what a signal must remove. */
static int list_scratch_paths(bench_run *run) {
    size_t count = 0;
    run->scratch_paths = calloc(2 * run->column_count + 3, sizeof *run->scratch_paths);
    if (run->scratch_paths == NULL) return -1;
    run->scratch_paths[count++] = in_scratch(run, DATA_NAME);
    for (size_t i = 0; i < run->column_count; i++) {
        if (run->columns[i].packed_name != NULL) run->scratch_paths[count++] = in_scratch(run, run->columns[i].packed_name);
        if (run->columns[i].unpacked_name != NULL)
            run->scratch_paths[count++] = in_scratch(run, run->columns[i].unpacked_name);
    }
    run->scratch_paths[count] = strdup(run->scratch);
    for (size_t i = 0; i <= count; i++)
        if (run->scratch_paths[i] == NULL) {
            for (size_t j = 0; j <= count; j++) free(run->scratch_paths[j]);
            free(run->scratch_paths);
            run->scratch_paths = NULL;
            return -1;
        }
    return 0;
}

int bench_scratch_create(bench_run *run) {
    if (make_scratch_folder(run) != 0) return -1;
    if (list_scratch_paths(run) != 0) {
        cli_error(NULL, "out of memory");
        return -1;
    }
    cli_signals_guard_paths(run->scratch_paths);
    return 0;
}

static void empty_folder(const char *folder) {
    DIR *dir = opendir(folder);
    if (dir == NULL) return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) unlinkat(dirfd(dir), entry->d_name, 0);
    closedir(dir);
}

void bench_scratch_remove(bench_run *run) {
    if (run->scratch != NULL) {
        empty_folder(run->scratch);
        if (rmdir(run->scratch) != 0) cli_notice(run->scratch, "cannot remove the scratch folder: %s", strerror(errno));
    }
    cli_signals_forget_paths();
    for (size_t i = 0; run->scratch_paths != NULL && run->scratch_paths[i] != NULL; i++) free(run->scratch_paths[i]);
    free(run->scratch_paths);
    free(run->scratch);
    run->scratch_paths = NULL;
    run->scratch = NULL;
}

/* Opens SCRATCH/name; -1 with errno on failure. */
static int open_in_scratch(const bench_run *run, const char *name, int flags) {
    char *path = in_scratch(run, name);
    if (path == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(path, flags | O_CLOEXEC, 0600);
    free(path);
    return fd;
}

static int write_all(int fd, const uint8_t *data, size_t size) {
    while (size > 0) {
        ssize_t written = write(fd, data, size);
        if (written < 0 && errno == EINTR) continue;
        if (written < 0) return -1;
        data += written;
        size -= (size_t)written;
    }
    return 0;
}

int bench_stage_data(const bench_run *run, const char *path, const uint8_t *data, size_t size) {
    int fd = open_in_scratch(run, DATA_NAME, O_WRONLY | O_CREAT | O_TRUNC);
    int failed = fd < 0 || write_all(fd, data, size) != 0;
    if (fd >= 0 && close(fd) != 0) failed = 1;
    if (failed) cli_error(path, "cannot copy it into the scratch folder %s: %s", run->scratch, strerror(errno));
    return failed ? -1 : 0;
}

/* One direction of a codec, with its placeholders replaced. */
typedef struct {
    const char *program; /* the executable found for argv[0] */
    const char *argv[BENCH_MAX_ARGS];
    const char *input;  /* read on standard input; NULL: none */
    const char *output; /* written on standard output; NULL: none */
} prepared_command;

static const char *file_name_for(const char *word, const bench_column *column) {
    if (strcmp(word, BENCH_DATA) == 0) return DATA_NAME;
    if (strcmp(word, BENCH_PACKED) == 0) return column->packed_name;
    if (strcmp(word, BENCH_UNPACKED) == 0) return column->unpacked_name;
    return word;
}

static void prepare_command(const bench_column *column, int compressing, prepared_command *command) {
    const char *const *words = compressing ? column->codec->compress : column->codec->decompress;
    const char *input = compressing ? BENCH_DATA : BENCH_PACKED;
    const char *output = compressing ? BENCH_PACKED : BENCH_UNPACKED;
    command->program = compressing ? column->program : column->unpacker;
    command->input = file_name_for(input, column);
    command->output = file_name_for(output, column);
    size_t i = 0;
    for (; words[i] != NULL && i + 1 < BENCH_MAX_ARGS; i++) {
        if (strcmp(words[i], input) == 0) command->input = NULL;
        if (strcmp(words[i], output) == 0) command->output = NULL;
        command->argv[i] = file_name_for(words[i], column);
    }
    command->argv[i] = NULL;
}

/* In the child: only async-signal-safe calls until exec. */
static void exec_in_child(const char *folder, const prepared_command *command, const int fds[3]) {
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i], i) < 0) _exit(127);
    if (chdir(folder) == 0) execv(command->program, (char *const *)command->argv);
    _exit(127);
}

/* The child's exit status, or 128 + the signal that ended it. */
static int wait_for(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return 255; /* not seen: cli_bench keeps SIGCHLD at its default */
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Moves fd above 0, 1 and 2 (when lmc was started with one of them
 * closed), so that the child's dup2 calls cannot overwrite one another. */
static int above_standard(int fd) {
    if (fd < 0 || fd > STDERR_FILENO) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    close(fd);
    return moved;
}

static int open_standard_files(const bench_run *run, const prepared_command *command, int fds[3]) {
    fds[0] = command->input ? open_in_scratch(run, command->input, O_RDONLY) : open("/dev/null", O_RDONLY | O_CLOEXEC);
    fds[1] = command->output ? open_in_scratch(run, command->output, O_WRONLY | O_CREAT | O_TRUNC)
                             : open("/dev/null", O_WRONLY | O_CLOEXEC);
    fds[2] = open("/dev/null", O_WRONLY | O_CLOEXEC);
    for (int i = 0; i < 3; i++) fds[i] = above_standard(fds[i]);
    return fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0 ? 0 : -1;
}

/* Runs one direction; returns its exit status (0: success, 127: it could
 * not be executed), or -1 after reporting a failure to start it. */
static int run_command(const bench_run *run, const bench_column *column, const prepared_command *command,
                       const char *path, double *seconds) {
    int fds[3];
    int status = -1;
    double start = cli_now();
    if (open_standard_files(run, command, fds) != 0) {
        cli_error(path, "%s: cannot open its files: %s", column->name, strerror(errno));
    } else {
        pid_t pid = fork();
        if (pid == 0) exec_in_child(run->scratch, command, fds);
        if (pid < 0) cli_error(path, "%s: cannot start it: %s", column->name, strerror(errno));
        if (pid > 0) cli_signals_guard_child(pid);
        status = pid > 0 ? wait_for(pid) : -1;
        cli_signals_forget_child();
    }
    *seconds = cli_now() - start;
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) close(fds[i]);
    return status;
}

static int run_direction(const bench_run *run, const bench_column *column, int compressing, const char *path,
                         double *seconds) {
    prepared_command command;
    prepare_command(column, compressing, &command);
    int status = run_command(run, column, &command, path, seconds);
    if (status > 0)
        cli_error(path, "%s: %s failed (exit status %d)", column->name, compressing ? "compression" : "decompression",
                  status);
    return status == 0 ? 0 : -1;
}

static int packed_size(const bench_run *run, const bench_column *column, const char *path, uint64_t *size) {
    char *packed = in_scratch(run, column->packed_name);
    struct stat info;
    int found = packed != NULL && stat(packed, &info) == 0;
    free(packed);
    if (!found) {
        cli_error(path, "%s: wrote no %s", column->name, column->packed_name);
        return -1;
    }
    *size = (uint64_t)info.st_size;
    return 0;
}

/* Compares fd's contents with data. Returns 0 when identical. */
static int compare_contents(int fd, const uint8_t *data, size_t size) {
    uint8_t chunk[COMPARE_CHUNK];
    size_t matched = 0;
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return got == 0 && matched == size ? 0 : -1;
        if ((size_t)got > size - matched || memcmp(chunk, data + matched, (size_t)got) != 0) return -1;
        matched += (size_t)got;
    }
}

static int bytes_match(const bench_run *run, const char *name, const bench_input *input) {
    int fd = open_in_scratch(run, name, O_RDONLY);
    int outcome = fd >= 0 ? compare_contents(fd, input->data, input->size) : -1;
    if (fd >= 0) close(fd);
    return outcome;
}

static int samples_match(const bench_run *run, const char *name, const bench_input *input) {
    char *path = in_scratch(run, name);
    uint8_t *decoded;
    size_t size;
    if (path == NULL || bench_read_file(path, &decoded, &size) != 0) {
        free(path);
        return -1;
    }
    int same = bench_media_same(input, decoded, size);
    free(decoded);
    free(path);
    return same ? 0 : -1;
}

/* Compares the decoded file (the packed one for a codec without a
 * decompressor) with the input, as the codec's check says. */
static int decoded_matches(const bench_run *run, const bench_column *column, const bench_input *input) {
    const char *name = column->codec->decompress[0] != NULL ? column->unpacked_name : column->packed_name;
    int outcome = column->codec->check == BENCH_CHECK_SAMPLES ? samples_match(run, name, input)
                                                               : bytes_match(run, name, input);
    if (outcome != 0)
        cli_error(input->path, "%s: round trip failed: the decompressed file %s", column->name,
                  column->codec->check == BENCH_CHECK_SAMPLES ? "has other samples" : "differs");
    return outcome;
}

static void remove_outputs(const bench_run *run, const bench_column *column) {
    const char *names[] = {column->packed_name, column->unpacked_name};
    for (size_t i = 0; i < 2; i++) {
        char *name = in_scratch(run, names[i]);
        if (name != NULL) unlink(name);
        free(name);
    }
}

/* Decompresses, unless the packed file is already the decoded one. */
static int decompress(const bench_run *run, const bench_column *column, const char *path, bench_result *result) {
    if (column->codec->decompress[0] != NULL) return run_direction(run, column, 0, path, &result->decompress_seconds);
    result->decompress_seconds = -1.0;
    return 0;
}

void bench_external(const bench_run *run, const bench_column *column, const bench_input *input,
                    bench_result *result) {
    result->outcome = BENCH_FAILED;
    remove_outputs(run, column); /* some programs refuse to overwrite */
    if (run_direction(run, column, 1, input->path, &result->compress_seconds) == 0 &&
        packed_size(run, column, input->path, &result->compressed) == 0 &&
        decompress(run, column, input->path, result) == 0 && decoded_matches(run, column, input) == 0)
        result->outcome = BENCH_OK;
    remove_outputs(run, column);
}
