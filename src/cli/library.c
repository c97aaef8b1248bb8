/*
 * The library's options and streams as the command line configures them.
 */
#include <unistd.h>

#include "cli/cli.h"

void cli_library_options(const cli_config *config, cli_progress *progress, lmc_options *options) {
    lmc_options_init(options);
    options->model = config->model;
    options->kind = config->kind;
    options->fast = config->fast;
    options->model_only = config->model_only;
    options->threads = config->threads;
    options->memlimit = config->memlimit;
    options->block_size = config->block_size;
    options->context_window = config->context_window;
    options->window_stride = config->window_stride;
    options->lanes = config->lanes;
    options->progress = cli_progress_callback;
    options->progress_user = progress;
}

lmc_encoder *cli_open_encoder(const cli_config *config, cli_progress *progress, const char *subject) {
    lmc_options options;
    cli_library_options(config, progress, &options);
    lmc_status status = LMC_ERR_INTERNAL;
    lmc_encoder *encoder = lmc_encoder_create(&options, &status);
    if (encoder == NULL) cli_library_error(subject, status, NULL);
    return encoder;
}

lmc_decoder *cli_open_decoder(const cli_config *config, cli_progress *progress, const char *subject) {
    lmc_options options;
    cli_library_options(config, progress, &options);
    lmc_status status = LMC_ERR_INTERNAL;
    lmc_decoder *decoder = lmc_decoder_create(&options, &status);
    if (decoder == NULL) cli_library_error(subject, status, NULL);
    return decoder;
}

int cli_refuse_terminal_input(const cli_config *config, const cli_input *input) {
    if (input->path != NULL || config->force || !isatty(STDIN_FILENO)) return 0;
    cli_error(input->name, "refusing to read compressed data from a terminal (use -f to force)");
    return -1;
}

int cli_refuse_terminal_output(const cli_config *config, const char *output_path) {
    if (output_path != NULL || config->force || !isatty(STDOUT_FILENO)) return 0;
    cli_error("(stdout)", "refusing to write compressed data to a terminal (use -f to force)");
    return -1;
}
