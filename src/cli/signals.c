/*
 * SIGINT, SIGTERM and SIGHUP end lmc at once with status 1, first removing
 * the temporary output (or lmc bench's scratch files) so that an
 * interruption never leaves a partial file.
 * Only async-signal-safe calls (kill, unlink, rmdir, write, _exit, lock-free atomics)
 * happen in the handler; ending at once, rather than asking the library to
 * stop, does not wait for a long block computation to reach a callback.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction under strict C11 */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static _Atomic(const char *) guarded_temp;
static _Atomic(char *const *) guarded_paths;
static atomic_int guarded_child; /* a process id; 0: none */
static volatile sig_atomic_t progress_shown;

static void write_stderr(const char *text) {
    ssize_t ignored = write(STDERR_FILENO, text, strlen(text));
    (void)ignored; /* nothing more can be done about a failing stderr here */
}

/* Files first, then the folders that held them, which unlink cannot remove. */
static void remove_guarded_paths(void) {
    char *const *paths = atomic_load(&guarded_paths);
    for (size_t i = 0; paths != NULL && paths[i] != NULL; i++)
        if (unlink(paths[i]) != 0) rmdir(paths[i]);
}

static void on_terminating_signal(int signal_number) {
    (void)signal_number;
    const char *temp = atomic_load(&guarded_temp);
    if (temp != NULL) unlink(temp);
    /* A child that a terminal's signal did not reach (it came from kill) is
     * stopped too, rather than left writing into the removed folder. */
    int child = atomic_load(&guarded_child);
    if (child > 0) kill((pid_t)child, SIGTERM);
    remove_guarded_paths();
    if (progress_shown) write_stderr("\r\033[K");
    write_stderr("lmc: interrupted\n");
    _exit(CLI_EXIT_ERROR);
}

/* A signal ignored at start stays ignored, as for gzip: a shell without job
 * control starts background commands with SIGINT ignored on purpose. */
static void install_unless_ignored(int signal_number) {
    struct sigaction current;
    if (sigaction(signal_number, NULL, &current) != 0 || current.sa_handler == SIG_IGN) return;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_terminating_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(signal_number, &action, NULL);
}

void cli_signals_install(void) {
    install_unless_ignored(SIGINT);
    install_unless_ignored(SIGTERM);
    install_unless_ignored(SIGHUP);
}

void cli_signals_guard_temp(const char *path) {
    atomic_store(&guarded_temp, path);
}

void cli_signals_forget_temp(void) {
    atomic_store(&guarded_temp, NULL);
}

void cli_signals_guard_paths(char *const *paths) {
    atomic_store(&guarded_paths, paths);
}

void cli_signals_forget_paths(void) {
    atomic_store(&guarded_paths, NULL);
}

void cli_signals_guard_child(pid_t child) {
    atomic_store(&guarded_child, (int)child);
}

void cli_signals_forget_child(void) {
    atomic_store(&guarded_child, 0);
}

void cli_signals_progress_shown(int shown) {
    progress_shown = shown;
}
