/*
 * Messages on stderr, one line each: "lmc: SUBJECT: message".
 */
#include <stdarg.h>
#include <stdio.h>

#include "cli/cli.h"

int cli_verbosity = CLI_NORMAL;

static void print_line(const char *subject, const char *format, va_list args) {
    /* Build the line first so that concurrent writers cannot split it. */
    char line[1024];
    int used = subject ? snprintf(line, sizeof line, "lmc: %s: ", subject) : snprintf(line, sizeof line, "lmc: ");
    if (used < 0 || (size_t)used >= sizeof line) used = 0;
    vsnprintf(line + used, sizeof line - (size_t)used, format, args);
    fprintf(stderr, "%s\n", line);
}

void cli_error(const char *subject, const char *format, ...) {
    va_list args;
    va_start(args, format);
    print_line(subject, format, args);
    va_end(args);
}

void cli_notice(const char *subject, const char *format, ...) {
    if (cli_verbosity <= CLI_QUIET) return;
    va_list args;
    va_start(args, format);
    print_line(subject, format, args);
    va_end(args);
}

void cli_usage_error(const char *format, ...) {
    char reason[512];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    fprintf(stderr, "lmc: %s (see 'lmc --help')\n", reason);
}

static const char *hint_for(lmc_status status) {
    switch (status) {
    case LMC_ERR_MODEL_NOT_FOUND: return " (see lmc models; LMC_MODELS names more model folders)";
    case LMC_ERR_MEMLIMIT: return " (raise --memlimit, or use fewer threads with -T)";
    default: return "";
    }
}

void cli_library_error(const char *subject, lmc_status status, const char *message) {
    const char *text = message && message[0] ? message : lmc_status_string(status);
    cli_error(subject, "%s%s", text, hint_for(status));
}
