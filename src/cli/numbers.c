/*
 * Numeric option values and human-readable byte counts.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

/* The power of 1024 a suffix stands for ("", "B", "K", "KB", "KiB", ...),
 * or -1 if it is not one. */
static int suffix_exponent(const char *suffix) {
    static const char letters[] = "KMGT";
    if (*suffix == '\0' || strcasecmp(suffix, "B") == 0) return 0;
    const char *letter = strchr(letters, toupper((unsigned char)suffix[0]));
    if (letter == NULL) return -1;
    const char *rest = suffix + 1;
    if (*rest == '\0' || strcasecmp(rest, "B") == 0 || strcasecmp(rest, "iB") == 0)
        return (int)(letter - letters) + 1;
    return -1;
}

/* strtoull accepts signs and leading blanks; a size must start with a digit. */
static int parse_unsigned(const char *text, unsigned long long *value, char **end) {
    if (!isdigit((unsigned char)text[0])) return -1;
    errno = 0;
    *value = strtoull(text, end, 10);
    return errno == ERANGE ? -1 : 0;
}

int cli_parse_size(const char *text, uint64_t *value) {
    unsigned long long number;
    char *end;
    if (parse_unsigned(text, &number, &end) != 0) return -1;
    int exponent = suffix_exponent(end);
    if (exponent < 0) return -1;
    for (int i = 0; i < exponent; i++) {
        if (number > UINT64_MAX / 1024) return -1;
        number *= 1024;
    }
    *value = number;
    return 0;
}

int cli_parse_count(const char *text, long max, long *value) {
    unsigned long long number;
    char *end;
    if (parse_unsigned(text, &number, &end) != 0 || *end != '\0' || number > (unsigned long long)max) return -1;
    *value = (long)number;
    return 0;
}

void cli_format_bytes(uint64_t bytes, char *out, size_t size) {
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(out, size, "%llu B", (unsigned long long)bytes);
        return;
    }
    double scaled = (double)bytes / 1024.0;
    size_t unit = 0;
    while (scaled >= 1024.0 && unit + 1 < sizeof units / sizeof units[0]) {
        scaled /= 1024.0;
        unit++;
    }
    snprintf(out, size, "%.*f %s", scaled < 10.0 ? 2 : 1, scaled, units[unit]);
}
