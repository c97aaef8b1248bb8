/*
 * lmc info: an archive's headers, read without decoding payloads;
 * lmc models: the models found in the search folders, or one model's
 * description (--inspect).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    cli_input *input;
    int error; /* errno of a failed read */
} inspect_source;

static long read_for_inspect(void *user, void *buffer, size_t size) {
    inspect_source *source = user;
    long got = cli_input_read(source->input, buffer, size);
    if (got < 0) source->error = errno;
    return got;
}

static void print_model(const lmc_archive_info *info) {
    if (info->fast) {
        printf("  model:            none (--fast: classical context model)\n");
        return;
    }
    char hash[33];
    lmc_hash_hex(info->model_hash, hash);
    printf("  model:            %s\n", info->model_name);
    printf("  model hash:       %s\n", hash);
    const char *coding = info->media ? "samples under the model, which adapts to them (side data: context model)"
                         : info->mixed ? "model mixed with an adaptive context model"
                                       : "model alone";
    printf("  coding:           %s\n", coding);
}

static void print_size(const char *label, uint64_t bytes) {
    char human[32];
    cli_format_bytes(bytes, human, sizeof human);
    printf("  %-18s%llu bytes (%s)\n", label, (unsigned long long)bytes, human);
}

static void print_ratio(const lmc_archive_info *info) {
    if (info->archive_size == 0 || info->original_size == 0) {
        printf("  ratio:            -\n");
        return;
    }
    printf("  ratio:            %.3f (%.3f bits per byte)\n", (double)info->original_size / (double)info->archive_size,
           8.0 * (double)info->archive_size / (double)info->original_size);
}

/* Only lossy archives say so: a lossless one shows what it always showed. */
static void print_bound(const lmc_archive_info *info) {
    if (info->max_error == 0) return;
    if (isinf(info->psnr))
        printf("  lossy:            max error %lu, PSNR inf dB (no sample changed)\n", (unsigned long)info->max_error);
    else
        printf("  lossy:            max error %lu, PSNR %.2f dB\n", (unsigned long)info->max_error, info->psnr);
}

static void print_info(const char *name, const lmc_archive_info *info) {
    static int archives_printed;
    if (archives_printed++ > 0) putchar('\n'); /* a blank line between archives */
    printf("%s\n", name);
    printf("  kind:             %s\n", lmc_kind_name(info->kind));
    print_model(info);
    print_size("original size:", info->original_size);
    print_size("archive size:", info->archive_size);
    print_ratio(info);
    printf("  blocks:           %llu (%llu stored)\n", (unsigned long long)info->blocks,
           (unsigned long long)info->stored_blocks);
    print_bound(info);
    if (!info->media) {
        printf("  block size:       %lu bytes\n", (unsigned long)info->block_size);
        printf("  context window:   %lu tokens (stride %lu)\n", (unsigned long)info->context_window,
               (unsigned long)info->window_stride);
    }
    printf("  format version:   %lu\n", (unsigned long)info->format_version);
    printf("  numerics version: %lu\n", (unsigned long)info->numerics_version);
}

static int inspect(const cli_config *config, cli_input *input) {
    if (cli_refuse_terminal_input(config, input) != 0) return -1;
    inspect_source source = {input, 0};
    lmc_archive_info info;
    char message[512] = "";
    lmc_status status = lmc_archive_inspect(read_for_inspect, &source, &info, message, sizeof message);
    if (source.error != 0) {
        cli_error(input->name, "read failed: %s", strerror(source.error));
        return -1;
    }
    if (status != LMC_OK) {
        cli_library_error(input->name, status, message);
        return -1;
    }
    print_info(input->name, &info);
    return 0;
}

uint64_t cli_archive_original_size(cli_input *input) {
    inspect_source source = {input, 0};
    lmc_archive_info info;
    char message[512];
    lmc_status status = lmc_archive_inspect(read_for_inspect, &source, &info, message, sizeof message);
    if (cli_input_rewind(input) != 0) return 0;
    return status == LMC_OK ? info.original_size : 0;
}

int cli_info_file(const cli_config *config, const char *path) {
    cli_input input;
    if (cli_input_open(&input, path) != 0) return CLI_EXIT_ERROR;
    int outcome = inspect(config, &input);
    cli_input_close(&input);
    return outcome == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

static void print_model_entry(void *user, const lmc_model_entry *entry) {
    (void)user;
    if (cli_verbosity <= CLI_QUIET) {
        printf("%s\n", entry->name);
        return;
    }
    char hash[33], size[32];
    lmc_hash_hex(entry->hash, hash);
    cli_format_bytes(entry->file_size, size, sizeof size);
    printf("%-24s %-6s %10s  %s  %s\n", entry->name, lmc_kind_name(entry->kind), size, hash, entry->description);
    if (cli_verbosity < CLI_VERBOSE) return;
    printf("%-24s path: %s\n", "", entry->path);
    if (entry->base_model[0]) printf("%-24s overlay of: %s\n", "", entry->base_model);
    if (entry->training_data[0]) printf("%-24s training data: %s\n", "", entry->training_data);
    if (entry->license[0]) printf("%-24s licence: %s\n", "", entry->license);
}

int cli_describe_model(const char *model) {
    char *text = NULL;
    char message[512] = "";
    lmc_status status = lmc_model_describe(model, &text, message, sizeof message);
    if (status != LMC_OK) {
        cli_library_error(model, status, message);
        return CLI_EXIT_ERROR;
    }
    fputs(text, stdout);
    lmc_free(text);
    return CLI_EXIT_OK;
}

int cli_list_models(void) {
    if (cli_verbosity > CLI_QUIET)
        printf("%-24s %-6s %10s  %-32s  %s\n", "NAME", "KIND", "SIZE", "HASH", "DESCRIPTION");
    if (lmc_models_list(print_model_entry, NULL) == 0)
        cli_notice(NULL, "no models found (put .gguf models in a folder named by LMC_MODELS)");
    return CLI_EXIT_OK;
}
