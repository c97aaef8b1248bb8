/*
 * The command line: `lmc COMMAND [OPTION]... [FILE]...`, or the zstd/gzip
 * habit of a mode flag instead of the command word (`lmc -d FILE`).
 * Options may follow the files (GNU getopt permutes); `--` ends them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum {
    OPT_KIND = 256,
    OPT_FAST,
    OPT_NO_MIX,
    OPT_RM,
    OPT_MEMLIMIT,
    OPT_BLOCK_SIZE,
    OPT_WINDOW,
    OPT_STRIDE,
    OPT_LANES,
    OPT_INSPECT,
    OPT_CSV,
    OPT_SVG,
    OPT_NO_OTHERS,
    OPT_MAX_ERROR,
    OPT_LOSSY,
    OPT_MPI,
    OPT_DEVICE,
    OPT_DEVICES,
};

#define FOR(command) (1u << (command))
#define CODING (FOR(CLI_CMD_COMPRESS) | FOR(CLI_CMD_DECOMPRESS))
#define DECODING (CODING | FOR(CLI_CMD_TEST))
#define READING (DECODING | FOR(CLI_CMD_INFO))
/* bench measures compression as `lmc compress` would do it. */
#define ENCODING (FOR(CLI_CMD_COMPRESS) | FOR(CLI_CMD_BENCH))
#define RUNNING_MODELS (DECODING | FOR(CLI_CMD_BENCH))
#define EVERY_COMMAND (~0u)

typedef struct {
    const char *long_name;
    int takes_argument;
    int id;             /* the short letter, or an OPT_ value */
    unsigned commands;  /* the commands it applies to */
} option_spec;

static const option_spec option_specs[] = {
    {"model", 1, 'm', RUNNING_MODELS | FOR(CLI_CMD_TOKENIZE)},
    {"kind", 1, OPT_KIND, ENCODING},
    {"fast", 0, OPT_FAST, ENCODING},
    {"no-mix", 0, OPT_NO_MIX, ENCODING},
    {"block-size", 1, OPT_BLOCK_SIZE, ENCODING},
    {"window", 1, OPT_WINDOW, ENCODING},
    {"stride", 1, OPT_STRIDE, ENCODING},
    {"lanes", 1, OPT_LANES, ENCODING},
    {"inspect", 1, OPT_INSPECT, FOR(CLI_CMD_MODELS)},
    {"csv", 1, OPT_CSV, FOR(CLI_CMD_BENCH)},
    {"svg", 1, OPT_SVG, FOR(CLI_CMD_BENCH)},
    {"no-others", 0, OPT_NO_OTHERS, FOR(CLI_CMD_BENCH)},
    {"max-error", 1, OPT_MAX_ERROR, FOR(CLI_CMD_COMPRESS)},
    {"lossy", 0, OPT_LOSSY, FOR(CLI_CMD_BENCH)},
    {"mpi", 0, OPT_MPI, CODING},
    {"output", 1, 'o', CODING},
    {"stdout", 0, 'c', CODING},
    {"force", 0, 'f', READING},
    {"keep", 0, 'k', CODING},
    {"rm", 0, OPT_RM, CODING},
    {"threads", 1, 'T', RUNNING_MODELS},
    {"memlimit", 1, OPT_MEMLIMIT, RUNNING_MODELS},
    {"device", 1, OPT_DEVICE, RUNNING_MODELS},
    {"devices", 1, OPT_DEVICES, CODING},
    {"verbose", 0, 'v', EVERY_COMMAND},
    {"quiet", 0, 'q', EVERY_COMMAND},
    {"help", 0, 'h', EVERY_COMMAND},
    {"version", 0, 'V', EVERY_COMMAND},
    {"compress", 0, 'z', EVERY_COMMAND},
    {"decompress", 0, 'd', EVERY_COMMAND},
    {"test", 0, 't', EVERY_COMMAND},
    {"list", 0, 'l', EVERY_COMMAND},
};
#define OPTION_COUNT (sizeof option_specs / sizeof option_specs[0])

static const struct {
    const char *name;
    cli_command command;
} command_names[] = {
    {"compress", CLI_CMD_COMPRESS}, {"decompress", CLI_CMD_DECOMPRESS},
    {"info", CLI_CMD_INFO},         {"test", CLI_CMD_TEST},
    {"models", CLI_CMD_MODELS},     {"tokenize", CLI_CMD_TOKENIZE},
    {"bench", CLI_CMD_BENCH},       {"help", CLI_CMD_HELP},
};

/* What parsing has seen, before it is checked against the command. */
typedef struct {
    cli_command mode;          /* from -z/-d/-t/-l */
    int want_help;
    int want_version;
    unsigned char seen[OPTION_COUNT]; /* by index in option_specs */
} parse_state;

static cli_command command_from_name(const char *name) {
    for (size_t i = 0; i < sizeof command_names / sizeof command_names[0]; i++)
        if (strcmp(name, command_names[i].name) == 0) return command_names[i].command;
    return CLI_CMD_NONE;
}

static const char *command_name(cli_command command) {
    for (size_t i = 0; i < sizeof command_names / sizeof command_names[0]; i++)
        if (command_names[i].command == command) return command_names[i].name;
    return "lmc";
}

/* Every id getopt_long returns (other than '?' and ':') is in the table. */
static size_t spec_index(int id) {
    size_t i = 0;
    while (i < OPTION_COUNT - 1 && option_specs[i].id != id) i++;
    return i;
}

static void build_getopt_tables(char *short_options, struct option *long_options) {
    char *next = short_options;
    *next++ = ':'; /* report a missing argument as ':' rather than '?' */
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option_spec *spec = &option_specs[i];
        long_options[i] = (struct option){spec->long_name, spec->takes_argument ? required_argument : no_argument,
                                          NULL, spec->id};
        if (spec->id < 256) {
            *next++ = (char)spec->id;
            if (spec->takes_argument) *next++ = ':';
        }
    }
    *next = '\0';
    long_options[OPTION_COUNT] = (struct option){NULL, 0, NULL, 0};
}

static void defaults(cli_config *config) {
    memset(config, 0, sizeof *config);
    config->kind = LMC_KIND_AUTO;
    cli_verbosity = CLI_NORMAL;
}

static int set_mode(parse_state *state, cli_command mode) {
    if (state->mode != CLI_CMD_NONE && state->mode != mode) {
        cli_usage_error("conflicting modes: %s and %s", command_name(state->mode), command_name(mode));
        return -1;
    }
    state->mode = mode;
    return 0;
}

static int parse_threads(const char *text, cli_config *config) {
    long threads;
    if (cli_parse_count(text, 65536, &threads) != 0) {
        cli_usage_error("invalid thread count '%s' (expected a number, 0 for all cores)", text);
        return -1;
    }
    config->threads = (int)threads;
    return 0;
}

/* cpu, cuda or cuda:N */
static int parse_device(const char *text, cli_config *config) {
    long index;
    if (strcmp(text, "cpu") != 0 && strcmp(text, "cuda") != 0 &&
        (strncmp(text, "cuda:", 5) != 0 || cli_parse_count(text + 5, 1023, &index) != 0)) {
        cli_usage_error("invalid device '%s' for --device (cpu, cuda or cuda:N)", text);
        return -1;
    }
    config->device = text;
    return 0;
}

/* N,N,...: GPU numbers, one per MPI rank in turn. */
static int parse_devices(const char *text, cli_config *config) {
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    int count = 0;
    for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
        long index;
        if (count == CLI_MAX_DEVICES || cli_parse_count(item, 1023, &index) != 0) {
            cli_usage_error("invalid list '%s' for --devices (GPU numbers: 0,1,...; at most %d)", text,
                            CLI_MAX_DEVICES);
            return -1;
        }
        config->devices[count++] = (int)index;
    }
    if (count == 0 || strlen(text) >= sizeof copy) {
        cli_usage_error("invalid list '%s' for --devices (GPU numbers: 0,1,...)", text);
        return -1;
    }
    config->device_count = count;
    return 0;
}

static int parse_memlimit(const char *text, cli_config *config) {
    if (cli_parse_size(text, &config->memlimit) != 0) {
        cli_usage_error("invalid size '%s' for --memlimit (examples: 512M, 4G)", text);
        return -1;
    }
    return 0;
}

static int parse_block_size(const char *text, cli_config *config) {
    uint64_t size;
    if (cli_parse_size(text, &size) != 0 || size > UINT32_MAX) {
        cli_usage_error("invalid size '%s' for --block-size (examples: 64K, 1M; below 4G)", text);
        return -1;
    }
    config->block_size = (uint32_t)size;
    return 0;
}

/* --window and --stride: model tokens; 0 keeps the model's default. */
static int parse_tokens(const char *text, const char *option, uint32_t *value) {
    long tokens;
    if (cli_parse_count(text, INT32_MAX, &tokens) != 0) {
        cli_usage_error("invalid token count '%s' for --%s (expected a number, 0 for the model's default)", text,
                        option);
        return -1;
    }
    *value = (uint32_t)tokens;
    return 0;
}

static int parse_lanes(const char *text, cli_config *config) {
    long lanes;
    if (cli_parse_count(text, 4, &lanes) != 0 || lanes < 1) {
        cli_usage_error("invalid lane count '%s' (expected 1 to 4)", text);
        return -1;
    }
    config->lanes = (int)lanes;
    return 0;
}

static int parse_max_error(const char *text, cli_config *config) {
    long bound;
    if (cli_parse_count(text, 65535, &bound) != 0) {
        cli_usage_error("invalid maximum error '%s' (expected 0 to 65535, 0 for lossless)", text);
        return -1;
    }
    config->max_error = (uint32_t)bound;
    return 0;
}

static int parse_kind(const char *text, cli_config *config) {
    if (lmc_kind_parse(text, &config->kind) != LMC_OK) {
        cli_usage_error("unknown kind '%s' (auto, bytes, text, image, audio or video)", text);
        return -1;
    }
    return 0;
}

static void set_output(const char *path, cli_config *config) {
    config->output = path;
    if (cli_is_stdio_name(path)) config->to_stdout = 1;
}

/* Applies one recognised option. Returns 0, or -1 after a usage error. */
static int apply_option(int id, const char *argument, cli_config *config, parse_state *state) {
    switch (id) {
    case 'm': config->model = argument; return 0;
    case OPT_KIND: return parse_kind(argument, config);
    case OPT_FAST: config->fast = 1; return 0;
    case OPT_NO_MIX: config->model_only = 1; return 0;
    case OPT_BLOCK_SIZE: return parse_block_size(argument, config);
    case OPT_WINDOW: return parse_tokens(argument, "window", &config->context_window);
    case OPT_STRIDE: return parse_tokens(argument, "stride", &config->window_stride);
    case OPT_LANES: return parse_lanes(argument, config);
    case OPT_INSPECT: config->inspect = argument; return 0;
    case OPT_CSV: config->csv_path = argument; return 0;
    case OPT_SVG: config->svg_path = argument; return 0;
    case OPT_NO_OTHERS: config->no_others = 1; return 0;
    case OPT_MAX_ERROR: return parse_max_error(argument, config);
    case OPT_LOSSY: config->lossy = 1; return 0;
    case OPT_MPI: config->mpi = 1; return 0;
    case OPT_DEVICE: return parse_device(argument, config);
    case OPT_DEVICES: return parse_devices(argument, config);
    case 'o': set_output(argument, config); return 0;
    case 'c': config->to_stdout = 1; return 0;
    case 'f': config->force = 1; return 0;
    case 'k': config->remove_input = 0; return 0;
    case OPT_RM: config->remove_input = 1; return 0;
    case 'T': return parse_threads(argument, config);
    case OPT_MEMLIMIT: return parse_memlimit(argument, config);
    case 'v': cli_verbosity++; return 0;
    case 'q': cli_verbosity = CLI_QUIET; return 0;
    case 'h': state->want_help = 1; return 0;
    case 'V': state->want_version = 1; return 0;
    case 'z': return set_mode(state, CLI_CMD_COMPRESS);
    case 'd': return set_mode(state, CLI_CMD_DECOMPRESS);
    case 't': return set_mode(state, CLI_CMD_TEST);
    case 'l': return set_mode(state, CLI_CMD_INFO);
    default: return -1;
    }
}

static void report_getopt_failure(int result, char **argv) {
    const char *word = argv[optind - 1];
    if (result == ':')
        cli_usage_error("option '%s' needs an argument", word);
    else if (optopt != 0)
        cli_usage_error("unknown option '-%c'", optopt);
    else
        cli_usage_error("unknown option '%s'", word);
}

static int parse_options(int argc, char **argv, cli_config *config, parse_state *state) {
    char short_options[2 * OPTION_COUNT + 2];
    struct option long_options[OPTION_COUNT + 1];
    build_getopt_tables(short_options, long_options);
    opterr = 0;
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        if (id == '?' || id == ':') {
            report_getopt_failure(id, argv);
            return -1;
        }
        if (apply_option(id, optarg, config, state) != 0) return -1;
        state->seen[spec_index(id)] = 1;
    }
    config->files = argv + optind;
    config->file_count = argc - optind;
    return 0;
}

/* Settles the command from the command word and the mode flags. */
static int resolve_command(cli_config *config, const parse_state *state) {
    if (state->want_help) {
        cli_command topic = config->command != CLI_CMD_NONE ? config->command : state->mode;
        config->help_topic = topic == CLI_CMD_NONE ? NULL : command_name(topic);
        config->command = CLI_CMD_HELP;
        return 0;
    }
    if (state->want_version) {
        config->command = CLI_CMD_VERSION;
        return 0;
    }
    if (state->mode != CLI_CMD_NONE && config->command != CLI_CMD_NONE && state->mode != config->command) {
        cli_usage_error("'%s' conflicts with the mode option given", command_name(config->command));
        return -1;
    }
    if (config->command == CLI_CMD_NONE) config->command = state->mode;
    if (config->command == CLI_CMD_NONE) {
        cli_usage_error("no command given");
        return -1;
    }
    return 0;
}

static int check_applicable(const cli_config *config, const parse_state *state) {
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (state->seen[i] && !(option_specs[i].commands & FOR(config->command))) {
            cli_usage_error("option '--%s' does not apply to '%s'", option_specs[i].long_name,
                            command_name(config->command));
            return -1;
        }
    }
    return 0;
}

/* tokenize reads standard input and needs a model; bench needs inputs. */
static int check_operands(const cli_config *config) {
    if ((config->command == CLI_CMD_MODELS || config->command == CLI_CMD_TOKENIZE) && config->file_count > 0) {
        cli_usage_error("'%s' takes no files", command_name(config->command));
        return -1;
    }
    if (config->command == CLI_CMD_TOKENIZE && config->model == NULL) {
        cli_usage_error("'tokenize' needs a model (-m MODEL)");
        return -1;
    }
    if (config->command == CLI_CMD_BENCH && config->file_count == 0) {
        cli_usage_error("'bench' needs files or folders to measure");
        return -1;
    }
    return 0;
}

static int check_combinations(const cli_config *config) {
    if (check_operands(config) != 0) return -1;
    if (config->device && config->device_count) {
        cli_usage_error("give --device or --devices, not both");
        return -1;
    }
    if (config->device_count > 1 && !config->mpi) {
        cli_usage_error("several GPUs (--devices) need --mpi: one process per GPU, each taking the next number");
        return -1;
    }
    if (config->output && !config->to_stdout && config->file_count > 1) {
        cli_usage_error("-o takes one input file, %d given", config->file_count);
        return -1;
    }
    if (config->output && !cli_is_stdio_name(config->output) && config->to_stdout) {
        cli_usage_error("-o and -c both name the output");
        return -1;
    }
    /* Archives do not concatenate: the decoder rejects data after an end. */
    if (config->command == CLI_CMD_COMPRESS && config->to_stdout && config->file_count > 1) {
        cli_usage_error("several archives on standard output could not be decompressed; give one input");
        return -1;
    }
    if (config->max_error && config->fast) {
        cli_usage_error("--max-error needs lmc's sample models; it cannot be used with --fast");
        return -1;
    }
    if (config->remove_input && config->to_stdout) {
        cli_usage_error("--rm cannot be used when writing to standard output");
        return -1;
    }
#ifndef LMC_HAVE_MPI
    if (config->mpi) {
        cli_usage_error("--mpi needs an lmc built with MPI (cmake -DLMC_MPI=ON)");
        return -1;
    }
#endif
    return 0;
}

static int parse_help_command(int argc, char **argv, cli_config *config) {
    if (argc > 3) {
        cli_usage_error("'help' takes at most one command name");
        return CLI_EXIT_USAGE;
    }
    config->help_topic = argc == 3 ? argv[2] : NULL;
    return CLI_EXIT_OK;
}

int cli_parse_command_line(int argc, char **argv, cli_config *config) {
    defaults(config);
    if (argc < 2) {
        cli_usage_error("no command given");
        return CLI_EXIT_USAGE;
    }
    int skip = 0;
    if (argv[1][0] != '-') {
        config->command = command_from_name(argv[1]);
        if (config->command == CLI_CMD_NONE) {
            cli_usage_error("unknown command '%s'", argv[1]);
            return CLI_EXIT_USAGE;
        }
        if (config->command == CLI_CMD_HELP) return parse_help_command(argc, argv, config);
        skip = 1; /* getopt sees the command word as its argv[0] */
    }
    parse_state state = {.mode = CLI_CMD_NONE};
    if (parse_options(argc - skip, argv + skip, config, &state) != 0 || resolve_command(config, &state) != 0)
        return CLI_EXIT_USAGE;
    if (config->command == CLI_CMD_HELP || config->command == CLI_CMD_VERSION) return CLI_EXIT_OK;
    if (check_applicable(config, &state) != 0 || check_combinations(config) != 0) return CLI_EXIT_USAGE;
    return CLI_EXIT_OK;
}
