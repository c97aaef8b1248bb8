/*
 * lmc tokenize: the token ids a model's tokenizer gives all of standard
 * input, on one line, without BOS/EOS; for checking a tokenizer against
 * llama.cpp's and for seeing what the model is fed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define READ_CHUNK (1u << 16)

/* Reads standard input to its end into a new buffer. Returns 0, or -1
 * after reporting. */
static int read_all_input(uint8_t **data, size_t *size) {
    size_t used = 0, capacity = READ_CHUNK;
    uint8_t *buffer = malloc(capacity);
    for (;;) {
        if (buffer == NULL) {
            cli_error("(stdin)", "out of memory");
            return -1;
        }
        ssize_t got = read(STDIN_FILENO, buffer + used, capacity - used);
        if (got == 0) break;
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            cli_error("(stdin)", "read failed: %s", strerror(errno));
            free(buffer);
            return -1;
        }
        used += (size_t)got;
        if (used == capacity) {
            uint8_t *grown = realloc(buffer, capacity *= 2);
            if (grown == NULL) free(buffer);
            buffer = grown; /* NULL is reported at the top of the loop */
        }
    }
    *data = buffer;
    *size = used;
    return 0;
}

static void print_ids(const int32_t *ids, size_t count) {
    for (size_t i = 0; i < count; i++) printf(i ? " %ld" : "%ld", (long)ids[i]);
    putchar('\n');
}

int cli_tokenize(const cli_config *config) {
    uint8_t *text;
    size_t size;
    if (read_all_input(&text, &size) != 0) return CLI_EXIT_ERROR;
    int32_t *ids = NULL;
    size_t count = 0;
    char message[512] = "";
    lmc_status status = lmc_tokenize(config->model, text, size, &ids, &count, message, sizeof message);
    free(text);
    if (status != LMC_OK) {
        cli_library_error(config->model, status, message);
        return CLI_EXIT_ERROR;
    }
    print_ids(ids, count);
    lmc_free(ids);
    return CLI_EXIT_OK;
}
