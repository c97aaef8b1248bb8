/*
 * Inputs, and outputs that appear only when complete: data goes to a
 * temporary file ".NAME.XXXXXX" in the output's folder (so the final rename
 * stays on one file system and is atomic), which is renamed into place by
 * cli_output_commit or removed by cli_output_discard.
 */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, futimens, st_mtim under strict C11 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_is_stdio_name(const char *path) {
    return strcmp(path, "-") == 0;
}

static int describe_input(cli_input *input) {
    if (fstat(input->fd, &input->stat) != 0) {
        cli_error(input->name, "%s", strerror(errno));
        return -1;
    }
    if (S_ISDIR(input->stat.st_mode)) {
        cli_error(input->name, "is a directory");
        return -1;
    }
    input->is_regular = S_ISREG(input->stat.st_mode);
    return 0;
}

int cli_input_open(cli_input *input, const char *path) {
    memset(input, 0, sizeof *input);
    if (cli_is_stdio_name(path)) {
        input->fd = STDIN_FILENO;
        input->name = "(stdin)";
        return describe_input(input);
    }
    input->path = path;
    input->name = path;
    input->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (input->fd < 0) {
        cli_error(path, "%s", strerror(errno));
        return -1;
    }
    input->owns_fd = 1;
    if (describe_input(input) != 0) {
        cli_input_close(input);
        return -1;
    }
    return 0;
}

long cli_input_read(cli_input *input, void *buffer, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t got = read(input->fd, (char *)buffer + done, size - done);
        if (got == 0) break;
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)got;
    }
    return (long)done;
}

int cli_input_rewind(cli_input *input) {
    return lseek(input->fd, 0, SEEK_SET) == 0 ? 0 : -1;
}

int cli_input_of_output(cli_input *input, cli_output *output) {
    memset(input, 0, sizeof *input);
    input->fd = output->fd;
    input->path = output->temp_path;
    input->name = output->name;
    if (cli_input_rewind(input) != 0 || fstat(input->fd, &input->stat) != 0) {
        cli_error(output->name, "cannot reread the new archive: %s", strerror(errno));
        return -1;
    }
    input->is_regular = 1;
    return 0;
}

void cli_input_close(cli_input *input) {
    if (input->owns_fd && input->fd >= 0) close(input->fd);
    input->fd = -1;
    input->owns_fd = 0;
}

/* Refuses to replace the input itself or, without force, any existing file. */
static int check_output_path(const char *path, const cli_input *input, int force) {
    struct stat existing;
    if (lstat(path, &existing) != 0) return 0;
    if (existing.st_dev == input->stat.st_dev && existing.st_ino == input->stat.st_ino) {
        cli_error(path, "is the input file; refusing to overwrite it");
        return -1;
    }
    if (S_ISDIR(existing.st_mode)) {
        cli_error(path, "is a directory");
        return -1;
    }
    if (!force) {
        cli_error(path, "already exists (use -f to overwrite)");
        return -1;
    }
    return 0;
}

/* "dir/name" -> "dir/.name.XXXXXX" (a mkstemp template). */
static char *temp_template(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t folder_length = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + folder_length;
    size_t size = strlen(path) + sizeof ".XXXXXX" + 1;
    char *template = malloc(size);
    if (template == NULL) return NULL;
    memcpy(template, path, folder_length);
    template[folder_length] = '.';
    strcpy(template + folder_length + 1, base);
    strcat(template, ".XXXXXX");
    return template;
}

static int create_temp(cli_output *output) {
    output->temp_path = temp_template(output->path);
    if (output->temp_path == NULL) {
        cli_error(output->name, "out of memory");
        return -1;
    }
    /* Guarded before mkstemp fills in the name: the handler ends the process,
     * so it either sees the created file's final name or unlinks nothing. */
    cli_signals_guard_temp(output->temp_path);
    output->fd = mkstemp(output->temp_path);
    if (output->fd < 0) {
        cli_error(output->name, "cannot create a temporary file beside it: %s", strerror(errno));
        cli_signals_forget_temp();
        free(output->temp_path);
        output->temp_path = NULL;
        return -1;
    }
    return 0;
}

int cli_output_open(cli_output *output, const char *path, const cli_input *input, int force) {
    memset(output, 0, sizeof *output);
    output->fd = -1;
    if (path == NULL) {
        output->fd = STDOUT_FILENO;
        output->name = "(stdout)";
        return 0;
    }
    output->path = path;
    output->name = path;
    if (path[0] == '\0' || path[strlen(path) - 1] == '/') {
        cli_error(path[0] ? path : "''", "not a file name");
        return -1;
    }
    if (check_output_path(path, input, force) != 0) return -1;
    return create_temp(output);
}

int cli_output_write(cli_output *output, const void *data, size_t size) {
    const char *next = data;
    while (size > 0) {
        ssize_t written = write(output->fd, next, size);
        if (written < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        next += written;
        size -= (size_t)written;
    }
    return 0;
}

static mode_t default_creation_mode(void) {
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

/* Like gzip and zstd: the output keeps the input's permissions and times. */
static void copy_metadata(cli_output *output, const cli_input *input) {
    mode_t mode = input->is_regular ? input->stat.st_mode & 07777 : default_creation_mode();
    if (fchmod(output->fd, mode) != 0)
        cli_notice(output->name, "cannot set permissions: %s", strerror(errno));
    if (!input->is_regular) return;
    struct timespec times[2] = {input->stat.st_atim, input->stat.st_mtim};
    if (futimens(output->fd, times) != 0)
        cli_notice(output->name, "cannot set modification time: %s", strerror(errno));
}

static int close_output(cli_output *output, int durable) {
    int failed = durable && fsync(output->fd) != 0;
    failed |= close(output->fd) != 0; /* some file systems report write errors only here */
    output->fd = -1;
    if (failed) cli_error(output->name, "write failed: %s", strerror(errno));
    return failed ? -1 : 0;
}

/* Without force, a file that appeared meanwhile is still not replaced. */
static int rename_into_place(cli_output *output, int force) {
    struct stat existing;
    if (!force && lstat(output->path, &existing) == 0) {
        cli_error(output->name, "already exists (use -f to overwrite)");
        return -1;
    }
    if (rename(output->temp_path, output->path) != 0) {
        cli_error(output->name, "cannot rename the temporary file into place: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Makes the rename itself durable, before --rm deletes the only other copy. */
static int sync_folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char *folder = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
    int fd = folder ? open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int failed = fd < 0 || fsync(fd) != 0;
    if (failed) cli_error(path, "cannot make its folder entry durable: %s", folder ? strerror(errno) : "out of memory");
    if (fd >= 0) close(fd);
    free(folder);
    return failed ? -1 : 0;
}

int cli_output_commit(cli_output *output, const cli_input *input, int force, int durable) {
    if (output->path == NULL) return 0;
    copy_metadata(output, input);
    if (close_output(output, durable) != 0 || rename_into_place(output, force) != 0) {
        cli_output_discard(output);
        return -1;
    }
    cli_signals_forget_temp();
    free(output->temp_path);
    output->temp_path = NULL;
    return durable ? sync_folder_of(output->path) : 0;
}

void cli_output_discard(cli_output *output) {
    if (output->path == NULL) return;
    if (output->fd >= 0) close(output->fd);
    output->fd = -1;
    if (output->temp_path != NULL) {
        unlink(output->temp_path);
        cli_signals_forget_temp();
        free(output->temp_path);
        output->temp_path = NULL;
    }
}
