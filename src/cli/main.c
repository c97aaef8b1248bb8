/*
 * lmc: the command-line tool. Parses the command line, then runs the
 * command on each file in turn; a failing file does not stop the others,
 * and the exit status is the worst one seen.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef int (*file_command)(const cli_config *config, const char *path);

static file_command command_for(cli_command command) {
    switch (command) {
    case CLI_CMD_COMPRESS: return cli_compress_file;
    case CLI_CMD_DECOMPRESS: return cli_decompress_file;
    case CLI_CMD_TEST: return cli_test_file;
    case CLI_CMD_INFO: return cli_info_file;
    default: return NULL;
    }
}

static int run_on_files(const cli_config *config, file_command run) {
    if (config->file_count == 0) return run(config, "-");
    int status = CLI_EXIT_OK;
    for (int i = 0; i < config->file_count; i++) {
        int file_status = run(config, config->files[i]);
        if (file_status > status) status = file_status;
    }
    return status;
}

static int show_help(const char *topic) {
    if (cli_print_help(topic) == 0) return CLI_EXIT_OK;
    cli_usage_error("unknown command '%s'", topic);
    return CLI_EXIT_USAGE;
}

static int list_or_describe_models(const cli_config *config) {
    return config->inspect ? cli_describe_model(config->inspect) : cli_list_models();
}

static int run(const cli_config *config) {
    switch (config->command) {
    case CLI_CMD_HELP: return show_help(config->help_topic);
    case CLI_CMD_VERSION: cli_print_version(); return CLI_EXIT_OK;
    case CLI_CMD_MODELS: return list_or_describe_models(config);
    case CLI_CMD_TOKENIZE: return cli_tokenize(config);
    case CLI_CMD_BENCH: return cli_bench(config);
    default: return run_on_files(config, command_for(config->command));
    }
}

/* Text on stdout (info, models, help) can fail to be written too. */
static int flush_stdout(int status) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return status;
    cli_error("(stdout)", "write failed: %s", strerror(errno));
    return CLI_EXIT_ERROR;
}

int main(int argc, char **argv) {
    cli_config config;
    int status = cli_parse_command_line(argc, argv, &config);
    if (status != CLI_EXIT_OK) return status;
    cli_signals_install();
    if (!config.mpi) cli_select_device(&config, 0); /* each MPI rank selects its own (cli_mpi_join) */
    return flush_stdout(run(&config));
}
