/*
 * lmc decompress: FILE.lmc -> FILE (or -o, or stdout); lmc test: a full
 * decode that keeps nothing. The output is renamed into place only after
 * lmc_decoder_finish accepted every checksum.
 */
#define _POSIX_C_SOURCE 200809L /* strdup under strict C11 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* Sets *target to the output path (NULL: standard output), newly allocated. */
static int choose_target(const cli_config *config, const cli_input *input, char **target) {
    *target = NULL;
    if (config->to_stdout || (config->output == NULL && input->path == NULL)) return 0;
    if (config->output != NULL) {
        *target = strdup(config->output);
    } else if (!cli_has_archive_suffix(input->path)) {
        cli_error(input->name, "unknown suffix, expected .lmc; ignored (name the output with -o, or use -c)");
        return -1;
    } else {
        *target = cli_original_name(input->path);
    }
    if (*target == NULL) {
        cli_error(input->name, "cannot derive an output name from it (use -o)");
        return -1;
    }
    return 0;
}

static int decode(const cli_config *config, cli_input *input, const cli_sink *sink, cli_pump_result *result) {
    cli_progress progress;
    cli_progress_start(&progress, input->name, 0, 1);
    /* The total costs one extra read of the archive: only worth it for a
     * display, and only for a named file, which starts at offset 0. */
    if (progress.enabled && input->is_regular && input->path != NULL) progress.total = cli_archive_original_size(input);
    lmc_decoder *decoder = cli_open_decoder(config, &progress, input->name);
    if (decoder == NULL) return -1;
    cli_stream stream = cli_stream_of_decoder(decoder);
#ifdef LMC_HAVE_MPI
    int outcome = config->mpi ? cli_mpi_decode(config, decoder, input, sink, &progress, result)
                              : cli_pump(&stream, input, sink, &progress, result);
#else
    int outcome = cli_pump(&stream, input, sink, &progress, result);
#endif
    lmc_decoder_free(decoder);
    return outcome;
}

static int remove_archive(const cli_config *config, const cli_input *input) {
    if (!config->remove_input || input->path == NULL) return 0;
    if (!input->is_regular) {
        cli_notice(input->name, "not a regular file; not removed");
        return 0;
    }
    if (unlink(input->path) == 0) return 0;
    cli_error(input->name, "cannot remove it: %s", strerror(errno));
    return -1;
}

static int decompress_into(const cli_config *config, cli_input *input, cli_output *output) {
    cli_sink sink = cli_sink_of_output(output);
    cli_pump_result result;
    if (decode(config, input, &sink, &result) != 0) {
        cli_output_discard(output);
        return -1;
    }
    int durable = config->remove_input && input->path != NULL;
    if (cli_output_commit(output, input, config->force, durable) != 0) return -1;
    if (cli_verbosity >= CLI_VERBOSE) cli_report_stats(input->name, &result, 0);
    return remove_archive(config, input);
}

static int decompress_input(const cli_config *config, cli_input *input) {
    char *target;
    if (cli_refuse_terminal_input(config, input) != 0 || choose_target(config, input, &target) != 0) return -1;
    cli_output output;
    int outcome = -1;
    if (cli_output_open(&output, target, input, config->force) == 0) outcome = decompress_into(config, input, &output);
    free(target);
    return outcome;
}

int cli_decompress_file(const cli_config *config, const char *path) {
#ifdef LMC_HAVE_MPI
    if (config->mpi) cli_mpi_join(config); /* ranks other than 0 serve rank 0, then end there */
#endif
    cli_input input;
    if (cli_input_open(&input, path) != 0) return CLI_EXIT_ERROR;
    int outcome = decompress_input(config, &input);
    cli_input_close(&input);
    return outcome == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

static int test_input(const cli_config *config, cli_input *input) {
    if (cli_refuse_terminal_input(config, input) != 0) return -1;
    cli_sink sink = cli_sink_discard();
    cli_pump_result result;
    if (decode(config, input, &sink, &result) != 0) return -1;
    if (cli_verbosity >= CLI_VERBOSE) {
        cli_notice(input->name, "OK");
        cli_report_stats(input->name, &result, 0);
    }
    return 0;
}

int cli_test_file(const cli_config *config, const char *path) {
    cli_input input;
    if (cli_input_open(&input, path) != 0) return CLI_EXIT_ERROR;
    int outcome = test_input(config, &input);
    cli_input_close(&input);
    return outcome == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}
