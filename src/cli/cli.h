/*
 * The lmc command-line tool: declarations shared by its source files.
 * The tool uses only the public API (lmc.h); see docs/lmc.1 for the contract.
 */
#ifndef LMC_CLI_H
#define LMC_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lmc.h"

/* Exit statuses, as documented in lmc(1). */
enum { CLI_EXIT_OK = 0, CLI_EXIT_ERROR = 1, CLI_EXIT_USAGE = 2 };

typedef enum {
    CLI_CMD_NONE = 0,
    CLI_CMD_COMPRESS,
    CLI_CMD_DECOMPRESS,
    CLI_CMD_INFO,
    CLI_CMD_TEST,
    CLI_CMD_MODELS,
    CLI_CMD_TOKENIZE,
    CLI_CMD_BENCH,
    CLI_CMD_HELP,
    CLI_CMD_VERSION
} cli_command;

/* Verbosity levels: -q lowers, -v raises. */
enum { CLI_QUIET = 0, CLI_NORMAL = 1, CLI_VERBOSE = 2 };

#define CLI_MAX_DEVICES 64

typedef struct {
    cli_command command;
    const char *model;
    lmc_kind kind;
    int fast;
    int model_only;        /* --no-mix */
    const char *output;    /* -o; NULL when not given */
    int to_stdout;         /* -c, or -o - */
    int force;
    int remove_input;      /* --rm */
    int threads;
    uint64_t memlimit;
    uint32_t block_size;
    uint32_t context_window; /* --window; 0: the model's default */
    uint32_t window_stride;  /* --stride; 0: the model's default */
    int lanes;               /* --lanes; 0: the library's default */
    const char *inspect;     /* models --inspect MODEL */
    const char *csv_path;    /* bench --csv */
    const char *svg_path;    /* bench --svg */
    int no_others;           /* bench --no-others: lmc only */
    int mpi;                 /* --mpi: blocks coded by every rank of an MPI job */
    const char *device;      /* --device: cpu, cuda or cuda:N; NULL: LMC_DEVICE, else the CPU */
    int devices[CLI_MAX_DEVICES]; /* --devices: rank r of an MPI job uses devices[r % device_count] */
    int device_count;
    uint32_t max_error;      /* compress --max-error: 0 lossless */
    int lossy;               /* bench --lossy: rate-distortion curves */
    char **files;
    int file_count;
    const char *help_topic; /* for CLI_CMD_HELP: a command name or NULL */
} cli_config;

/* ---- device.c: where the models run ---- */
/* Selects the device --device or --devices names for MPI rank `rank` (0
 * without MPI); when it cannot be used, warns and leaves the CPU. */
void cli_select_device(const cli_config *config, int rank);

/* ---- options.c: the command line ---- */
/* Fills config from argv. Returns CLI_EXIT_OK, or CLI_EXIT_USAGE after
 * printing the reason. */
int cli_parse_command_line(int argc, char **argv, cli_config *config);

/* ---- numbers.c: numeric option values ---- */
/* Decimal with an optional K/M/G/T suffix (powers of 1024, "KiB", "KB" and
 * "K" alike). Returns 0 on success, -1 if malformed or above 2^64-1. */
int cli_parse_size(const char *text, uint64_t *value);
/* A decimal count in [0, max]. Returns 0 on success, -1 otherwise. */
int cli_parse_count(const char *text, long max, long *value);
/* "1.5 MiB"-style rendering into out. */
void cli_format_bytes(uint64_t bytes, char *out, size_t size);

/* ---- help.c ---- */
/* Prints the help of a command (or the general help for NULL) to stdout.
 * Returns -1 if topic names no command. */
int cli_print_help(const char *topic);
void cli_print_version(void);

/* ---- report.c: messages on stderr ---- */
extern int cli_verbosity;
/* "lmc: SUBJECT: message" (or "lmc: message" when subject is NULL). */
void cli_error(const char *subject, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* A warning or note: like cli_error, but silenced by -q. */
void cli_notice(const char *subject, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* A usage error, with a pointer to --help, on one line. */
void cli_usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Reports a library failure: the stream's message if any, else the status text. */
void cli_library_error(const char *subject, lmc_status status, const char *message);

/* ---- signals.c: interruption cleans up the temporary output ---- */
void cli_signals_install(void);
/* Registers the temporary file that a SIGINT/SIGTERM/SIGHUP must remove.
 * The string must stay valid until cli_signals_forget_temp(). */
void cli_signals_guard_temp(const char *path);
void cli_signals_forget_temp(void);
/* Registers a NULL-terminated list of files, then folders, that a
 * terminating signal must remove (lmc bench's scratch folder). The list must
 * stay valid until cli_signals_forget_paths(). */
void cli_signals_guard_paths(char *const *paths);
void cli_signals_forget_paths(void);
/* Registers the child process (a codec lmc bench runs) that a terminating
 * signal must stop. */
void cli_signals_guard_child(pid_t child);
void cli_signals_forget_child(void);
/* Tells the handler whether a progress line needs ending before its message. */
void cli_signals_progress_shown(int shown);

/* ---- files.c: inputs, and outputs written through temporary files ---- */
typedef struct {
    int fd;
    const char *path;  /* NULL: standard input */
    const char *name;  /* for messages */
    struct stat stat;
    int is_regular;
    int owns_fd;       /* closed by cli_input_close */
} cli_input;

typedef struct {
    int fd;
    const char *path;  /* final name; NULL: standard output */
    char *temp_path;   /* where the data goes until committed */
    const char *name;  /* for messages */
} cli_output;

int cli_is_stdio_name(const char *path);
/* Opens path ("-": standard input). Returns 0, or -1 after reporting. */
int cli_input_open(cli_input *input, const char *path);
/* Reads until size bytes or end of input. Returns the count, or -1 with errno. */
long cli_input_read(cli_input *input, void *buffer, size_t size);
/* Rewinds a regular input; returns 0, or -1 with errno. */
int cli_input_rewind(cli_input *input);
/* The output's temporary file, rewound, as an input (verification before
 * --rm). Returns 0, or -1 after reporting. */
int cli_input_of_output(cli_input *input, cli_output *output);
void cli_input_close(cli_input *input);

/* Prepares to write path (NULL: standard output), refusing an existing file
 * without force and refusing to overwrite the input itself. Returns 0, or -1
 * after reporting. */
int cli_output_open(cli_output *output, const char *path, const cli_input *input, int force);
/* Returns 0, or -1 with errno. */
int cli_output_write(cli_output *output, const void *data, size_t size);
/* Gives the temporary file the input's mode and times and renames it into
 * place; if durable, the data and the new name are synced to disk first and
 * after. Returns 0, or -1 after reporting (a temporary file is removed). */
int cli_output_commit(cli_output *output, const cli_input *input, int force, int durable);
/* Removes the temporary file (after an error). */
void cli_output_discard(cli_output *output);

/* ---- names.c: FILE <-> FILE.lmc ---- */
int cli_has_archive_suffix(const char *path);
/* Newly allocated "PATH.lmc"; NULL when out of memory. */
char *cli_archive_name(const char *path);
/* Newly allocated PATH without ".lmc"; NULL when it has no such suffix, the
 * rest would be empty, or out of memory. */
char *cli_original_name(const char *path);

/* ---- progress.c: a progress line on a terminal ---- */
typedef struct {
    int enabled;
    const char *name;
    uint64_t total;     /* expected bytes done; 0 when unknown */
    int counts_output;  /* done = bytes_out (decoding) rather than bytes_in */
    uint64_t bytes_in;
    uint64_t bytes_out;
    double start;
    double last_draw;
    int shown;
} cli_progress;

double cli_now(void);
/* Enabled only when stderr is a terminal and not -q. Decoding counts
 * output bytes, since the decoder takes in its input long before decoding it. */
void cli_progress_start(cli_progress *progress, const char *name, uint64_t total, int counts_output);
void cli_progress_update(cli_progress *progress, uint64_t bytes_in, uint64_t bytes_out);
/* Erases the line. */
void cli_progress_end(cli_progress *progress);
/* An lmc_progress_fn over a cli_progress. */
int cli_progress_callback(void *user, uint64_t bytes_in, uint64_t bytes_out);

/* ---- pump.c: streaming an input through an encoder or decoder ---- */
typedef struct {
    void *handle;
    lmc_status (*push)(void *handle, const void *data, size_t size);
    lmc_status (*finish)(void *handle);
    size_t (*pull)(void *handle, void *out, size_t capacity);
    const char *(*message)(const void *handle);
} cli_stream;

cli_stream cli_stream_of_encoder(lmc_encoder *encoder);
cli_stream cli_stream_of_decoder(lmc_decoder *decoder);

/* Where pumped bytes go. write returns 0, or -1 with errno set (or with
 * errno 0 for a failure that is not a system error, already reported). */
typedef struct {
    int (*write)(void *user, const void *data, size_t size);
    void *user;
    const char *name;  /* for messages */
} cli_sink;

cli_sink cli_sink_of_output(cli_output *output);
/* Writes through sink; on failure reports a system error (a sink's own
 * failures are reported already) and returns -1. */
int cli_sink_write(const cli_sink *sink, const void *data, size_t size);
/* Accepts and drops everything (lmc test). */
cli_sink cli_sink_discard(void);

typedef struct {
    uint64_t bytes_in;
    uint64_t bytes_out;
    double seconds;
} cli_pump_result;

/* Reads input to its end, pushing it through stream into sink, then
 * finishes; progress (fed by the library's callback, which knows how much
 * is coded rather than merely buffered) is erased at the end. Returns 0, or
 * -1 after reporting. */
int cli_pump(const cli_stream *stream, cli_input *input, const cli_sink *sink,
             cli_progress *progress, cli_pump_result *result);
/* Per-file statistics for -v; the ratio is original size over archive size. */
void cli_report_stats(const char *name, const cli_pump_result *result, int compressing);

/* ---- src/mpi: --mpi, only in an MPI build (cmake -DLMC_MPI=ON defines LMC_HAVE_MPI) ----
 * An archive's blocks coded by every rank of an MPI job. Rank 0 runs the
 * command as usual and does all reading and writing; the other ranks only
 * code the blocks it sends them. These files use the library's internal
 * block codec (src/lib/lib.h), not only lmc.h. */
#ifdef LMC_HAVE_MPI
/* Joins the MPI job (MPI starts on the first call). On ranks other than 0
 * it serves rank 0 until rank 0 exits, then ends the process; on rank 0 it
 * returns. */
void cli_mpi_join(const cli_config *config);
/* Rank 0's coding of one input, with cli_pump's contract; the new stream
 * (as the command configured it) serves to decide the header, and codes
 * media, which is one block, on rank 0 alone. */
int cli_mpi_encode(const cli_config *config, lmc_encoder *encoder, cli_input *input, const cli_sink *sink,
                   cli_progress *progress, cli_pump_result *result);
int cli_mpi_decode(const cli_config *config, lmc_decoder *decoder, cli_input *input, const cli_sink *sink,
                   cli_progress *progress, cli_pump_result *result);
#endif

/* ---- commands ---- */
/* Each returns the file's exit status (CLI_EXIT_OK or CLI_EXIT_ERROR). */
int cli_compress_file(const cli_config *config, const char *path);
int cli_decompress_file(const cli_config *config, const char *path);
int cli_test_file(const cli_config *config, const char *path);
int cli_info_file(const cli_config *config, const char *path);
int cli_list_models(void);
/* lmc models --inspect: the library's description of one model file. */
int cli_describe_model(const char *model);
/* lmc tokenize: standard input's token ids on one line. */
int cli_tokenize(const cli_config *config);
/* lmc bench: lmc against the usual compressors on config->files (bench.c). */
int cli_bench(const cli_config *config);
/* lmc bench --lossy: rate-distortion curves of lmc --max-error against lossy
 * codecs (bench_lossy.c). */
int cli_bench_lossy(const cli_config *config);
/* An encoder as cli_open_encoder makes it, coding with a maximum error of
 * max_error (compress.c). */
lmc_encoder *cli_open_bounded_encoder(const cli_config *config, uint32_t max_error, cli_progress *progress,
                                      const char *subject);
/* The original size an archive records, for the progress of decoding it;
 * 0 when unknown. Reads the whole regular input once, then rewinds it. */
uint64_t cli_archive_original_size(cli_input *input);

/* ---- library.c ---- */
/* lmc_options from the command line, with progress reporting into progress. */
void cli_library_options(const cli_config *config, cli_progress *progress, lmc_options *options);
/* Streams for config; NULL after reporting a failure about subject. */
lmc_encoder *cli_open_encoder(const cli_config *config, cli_progress *progress, const char *subject);
lmc_decoder *cli_open_decoder(const cli_config *config, cli_progress *progress, const char *subject);
/* Like zstd, compressed data neither comes from nor goes to a terminal
 * unless -f. Each returns 0, or -1 after reporting. */
int cli_refuse_terminal_input(const cli_config *config, const cli_input *input);
int cli_refuse_terminal_output(const cli_config *config, const char *output_path);

#endif /* LMC_CLI_H */
