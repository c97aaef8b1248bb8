/*
 * Archive names: FILE <-> FILE.lmc.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char archive_suffix[] = ".lmc";
#define SUFFIX_LENGTH (sizeof archive_suffix - 1)

int cli_has_archive_suffix(const char *path) {
    size_t length = strlen(path);
    return length >= SUFFIX_LENGTH && strcmp(path + length - SUFFIX_LENGTH, archive_suffix) == 0;
}

char *cli_archive_name(const char *path) {
    size_t length = strlen(path);
    char *name = malloc(length + SUFFIX_LENGTH + 1);
    if (name == NULL) return NULL;
    memcpy(name, path, length);
    memcpy(name + length, archive_suffix, SUFFIX_LENGTH + 1);
    return name;
}

char *cli_original_name(const char *path) {
    if (!cli_has_archive_suffix(path)) return NULL;
    size_t length = strlen(path) - SUFFIX_LENGTH;
    /* "dir/.lmc" would name the folder itself. */
    if (length == 0 || path[length - 1] == '/') return NULL;
    char *name = malloc(length + 1);
    if (name == NULL) return NULL;
    memcpy(name, path, length);
    name[length] = '\0';
    return name;
}
