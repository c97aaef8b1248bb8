/*
 * lmc compress: FILE -> FILE.lmc (or -o, or stdout). With --rm the input
 * goes only after its archive is complete, durable, and decoded back to
 * exactly the input's bytes; with --max-error (which never decodes to the
 * input's bytes), after the archive decoded completely with every checksum
 * matching, which covers the samples as they decode.
 */
#define _POSIX_C_SOURCE 200809L /* strdup under strict C11 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define COMPARE_CHUNK (1u << 20)

/* Sets *target to the output path (NULL: standard output), newly allocated. */
static int choose_target(const cli_config *config, const cli_input *input, char **target) {
    *target = NULL;
    if (config->to_stdout || (config->output == NULL && input->path == NULL)) return 0;
    if (config->output == NULL && cli_has_archive_suffix(input->path) && !config->force) {
        cli_error(input->name, "already has the .lmc suffix; ignored (use -f to compress it again)");
        return -1;
    }
    *target = config->output ? strdup(config->output) : cli_archive_name(input->path);
    if (*target == NULL) {
        cli_error(input->name, "out of memory");
        return -1;
    }
    return 0;
}

/* A sink that checks decoded bytes against the original input. */
typedef struct {
    cli_input *original;
    uint8_t *buffer;
} comparison;

static int compare_with_original(void *user, const void *data, size_t size) {
    comparison *compare = user;
    const uint8_t *decoded = data;
    while (size > 0) {
        size_t step = size < COMPARE_CHUNK ? size : COMPARE_CHUNK;
        long got = cli_input_read(compare->original, compare->buffer, step);
        if (got < 0) {
            cli_error(compare->original->name, "read failed while verifying: %s", strerror(errno));
            errno = 0;
            return -1;
        }
        if ((size_t)got != step || memcmp(compare->buffer, decoded, step) != 0) {
            cli_error(compare->original->name, "verification failed: the archive does not decode to the input");
            errno = 0;
            return -1;
        }
        decoded += step;
        size -= step;
    }
    return 0;
}

static int original_fully_matched(comparison *compare) {
    uint8_t probe;
    if (cli_input_read(compare->original, &probe, 1) == 0) return 0;
    cli_error(compare->original->name, "verification failed: the archive decodes to less than the input");
    return -1;
}

/* A lossy archive cannot be compared with its input: it is decoded in
 * full instead, its checksums (of the bounded samples) checked. */
static int verify_decodes(const cli_config *config, cli_output *output, const cli_input *original) {
    cli_input archive;
    if (cli_input_of_output(&archive, output) != 0) return -1;
    cli_progress progress;
    cli_progress_start(&progress, archive.name, (uint64_t)original->stat.st_size, 1);
    lmc_decoder *decoder = cli_open_decoder(config, &progress, archive.name);
    if (decoder == NULL) return -1;
    cli_stream stream = cli_stream_of_decoder(decoder);
    cli_sink sink = cli_sink_discard();
    cli_pump_result result;
    int outcome = cli_pump(&stream, &archive, &sink, &progress, &result);
    lmc_decoder_free(decoder);
    return outcome;
}

static int decode_and_compare(const cli_config *config, cli_input *archive, comparison *compare) {
    cli_progress progress;
    cli_progress_start(&progress, archive->name, (uint64_t)compare->original->stat.st_size, 1);
    lmc_decoder *decoder = cli_open_decoder(config, &progress, archive->name);
    if (decoder == NULL) return -1;
    cli_stream stream = cli_stream_of_decoder(decoder);
    cli_sink sink = {compare_with_original, compare, archive->name};
    cli_pump_result result;
    int outcome = cli_pump(&stream, archive, &sink, &progress, &result);
    lmc_decoder_free(decoder);
    return outcome == 0 ? original_fully_matched(compare) : -1;
}

/* Decodes the finished temporary archive, comparing with the input. */
static int verify_archive(const cli_config *config, cli_output *output, cli_input *original) {
    cli_input archive;
    if (cli_input_of_output(&archive, output) != 0) return -1;
    if (cli_input_rewind(original) != 0) {
        cli_error(original->name, "cannot reread it for verification: %s", strerror(errno));
        return -1;
    }
    comparison compare = {original, malloc(COMPARE_CHUNK)};
    if (compare.buffer == NULL) {
        cli_error(original->name, "out of memory");
        return -1;
    }
    int outcome = decode_and_compare(config, &archive, &compare);
    free(compare.buffer);
    return outcome;
}

lmc_encoder *cli_open_bounded_encoder(const cli_config *config, uint32_t max_error, cli_progress *progress,
                                      const char *subject) {
    lmc_options options;
    cli_library_options(config, progress, &options);
    options.max_error = max_error;
    lmc_status status = LMC_ERR_INTERNAL;
    lmc_encoder *encoder = lmc_encoder_create(&options, &status);
    if (encoder == NULL) cli_library_error(subject, status, NULL);
    return encoder;
}

/* Before --rm removes the input. */
static int verify(const cli_config *config, cli_output *output, cli_input *original) {
    return config->max_error ? verify_decodes(config, output, original) : verify_archive(config, output, original);
}

static int encode(const cli_config *config, cli_input *input, cli_output *output, cli_pump_result *result) {
    cli_progress progress;
    cli_progress_start(&progress, input->name, input->is_regular ? (uint64_t)input->stat.st_size : 0, 0);
    lmc_encoder *encoder = cli_open_bounded_encoder(config, config->max_error, &progress, input->name);
    if (encoder == NULL) return -1;
    cli_stream stream = cli_stream_of_encoder(encoder);
    cli_sink sink = cli_sink_of_output(output);
#ifdef LMC_HAVE_MPI
    int outcome = config->mpi ? cli_mpi_encode(config, encoder, input, &sink, &progress, result)
                              : cli_pump(&stream, input, &sink, &progress, result);
#else
    int outcome = cli_pump(&stream, input, &sink, &progress, result);
#endif
    if (outcome == 0 && lmc_encoder_notice(encoder))
        cli_notice(input->name, "%s", lmc_encoder_notice(encoder));
    lmc_encoder_free(encoder);
    return outcome;
}

/* --rm applies to named regular files only. */
static int removes_input(const cli_config *config, const cli_input *input) {
    if (!config->remove_input || input->path == NULL) return 0;
    if (input->is_regular) return 1;
    cli_notice(input->name, "not a regular file; not removed");
    return 0;
}

static int remove_input(const cli_input *input) {
    if (unlink(input->path) == 0) return 0;
    cli_error(input->name, "cannot remove it: %s", strerror(errno));
    return -1;
}

static int compress_into(const cli_config *config, cli_input *input, cli_output *output) {
    cli_pump_result result;
    int removing = removes_input(config, input);
    if (encode(config, input, output, &result) != 0 || (removing && verify(config, output, input) != 0)) {
        cli_output_discard(output);
        return -1;
    }
    if (cli_output_commit(output, input, config->force, removing) != 0) return -1;
    if (cli_verbosity >= CLI_VERBOSE) cli_report_stats(input->name, &result, 1);
    return removing ? remove_input(input) : 0;
}

static int compress_input(const cli_config *config, cli_input *input) {
    char *target;
    if (choose_target(config, input, &target) != 0) return -1;
    cli_output output;
    int outcome = -1;
    if (cli_refuse_terminal_output(config, target) == 0 && cli_output_open(&output, target, input, config->force) == 0)
        outcome = compress_into(config, input, &output);
    free(target);
    return outcome;
}

int cli_compress_file(const cli_config *config, const char *path) {
#ifdef LMC_HAVE_MPI
    if (config->mpi) cli_mpi_join(config); /* ranks other than 0 serve rank 0, then end there */
#endif
    cli_input input;
    if (cli_input_open(&input, path) != 0) return CLI_EXIT_ERROR;
    int outcome = compress_input(config, &input);
    cli_input_close(&input);
    return outcome == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}
