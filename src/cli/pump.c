/*
 * Streaming: read the input in chunks, push each into the encoder or
 * decoder, and write all output it has ready after every push; at the end,
 * finish and write the rest. Memory stays bounded by the chunk size plus
 * what the library buffers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define CHUNK_SIZE (1u << 20)

/* Adapters: the encoder and decoder share one shape of interface. */
static lmc_status encoder_push(void *handle, const void *data, size_t size) {
    return lmc_encoder_push(handle, data, size);
}
static lmc_status encoder_finish(void *handle) {
    return lmc_encoder_finish(handle);
}
static size_t encoder_pull(void *handle, void *out, size_t capacity) {
    return lmc_encoder_pull(handle, out, capacity);
}
static const char *encoder_message(const void *handle) {
    return lmc_encoder_message(handle);
}
static lmc_status decoder_push(void *handle, const void *data, size_t size) {
    return lmc_decoder_push(handle, data, size);
}
static lmc_status decoder_finish(void *handle) {
    return lmc_decoder_finish(handle);
}
static size_t decoder_pull(void *handle, void *out, size_t capacity) {
    return lmc_decoder_pull(handle, out, capacity);
}
static const char *decoder_message(const void *handle) {
    return lmc_decoder_message(handle);
}

cli_stream cli_stream_of_encoder(lmc_encoder *encoder) {
    return (cli_stream){encoder, encoder_push, encoder_finish, encoder_pull, encoder_message};
}

cli_stream cli_stream_of_decoder(lmc_decoder *decoder) {
    return (cli_stream){decoder, decoder_push, decoder_finish, decoder_pull, decoder_message};
}

static int write_to_output(void *user, const void *data, size_t size) {
    return cli_output_write(user, data, size);
}

static int write_nowhere(void *user, const void *data, size_t size) {
    (void)user, (void)data, (void)size;
    return 0;
}

cli_sink cli_sink_of_output(cli_output *output) {
    return (cli_sink){write_to_output, output, output->name};
}

cli_sink cli_sink_discard(void) {
    return (cli_sink){write_nowhere, NULL, "(null)"};
}

typedef struct {
    const cli_stream *stream;
    const cli_sink *sink;
    const char *input_name;
    uint8_t *buffer;
    uint64_t bytes_in;
    uint64_t bytes_out;
} pump_state;

int cli_sink_write(const cli_sink *sink, const void *data, size_t size) {
    errno = 0;
    if (sink->write(sink->user, data, size) == 0) return 0;
    if (errno != 0) cli_error(sink->name, "write failed: %s", strerror(errno));
    return -1;
}

static int drain(pump_state *state) {
    size_t got;
    while ((got = state->stream->pull(state->stream->handle, state->buffer, CHUNK_SIZE)) > 0) {
        if (cli_sink_write(state->sink, state->buffer, got) != 0) return -1;
        state->bytes_out += got;
    }
    return 0;
}

static int check(const pump_state *state, lmc_status status) {
    if (status == LMC_OK) return 0;
    cli_library_error(state->input_name, status, state->stream->message(state->stream->handle));
    return -1;
}

static int pump_all(pump_state *state, cli_input *input) {
    for (;;) {
        long got = cli_input_read(input, state->buffer, CHUNK_SIZE);
        if (got < 0) {
            cli_error(input->name, "read failed: %s", strerror(errno));
            return -1;
        }
        if (got == 0) break;
        state->bytes_in += (uint64_t)got;
        if (check(state, state->stream->push(state->stream->handle, state->buffer, (size_t)got)) != 0) return -1;
        if (drain(state) != 0) return -1;
    }
    if (check(state, state->stream->finish(state->stream->handle)) != 0) return -1;
    return drain(state);
}

int cli_pump(const cli_stream *stream, cli_input *input, const cli_sink *sink, cli_progress *progress,
             cli_pump_result *result) {
    pump_state state = {stream, sink, input->name, malloc(CHUNK_SIZE), 0, 0};
    if (state.buffer == NULL) {
        cli_error(input->name, "out of memory");
        return -1;
    }
    double start = cli_now();
    int outcome = pump_all(&state, input);
    cli_progress_end(progress);
    free(state.buffer);
    result->bytes_in = state.bytes_in;
    result->bytes_out = state.bytes_out;
    result->seconds = cli_now() - start;
    return outcome;
}

void cli_report_stats(const char *name, const cli_pump_result *result, int compressing) {
    char in[32], out[32], speed[32];
    cli_format_bytes(result->bytes_in, in, sizeof in);
    cli_format_bytes(result->bytes_out, out, sizeof out);
    uint64_t original = compressing ? result->bytes_in : result->bytes_out;
    uint64_t archive = compressing ? result->bytes_out : result->bytes_in;
    /* Speed counts original bytes both ways, so the two directions compare. */
    double seconds = result->seconds > 1e-6 ? result->seconds : 1e-6;
    cli_format_bytes((uint64_t)((double)original / seconds), speed, sizeof speed);
    double ratio = archive ? (double)original / (double)archive : 0.0;
    double bits_per_byte = original ? 8.0 * (double)archive / (double)original : 0.0;
    fprintf(stderr, "lmc: %s: %s -> %s (ratio %.3f, %.3f bits/byte), %.2f s, %s/s\n", name, in, out, ratio,
            bits_per_byte, result->seconds, speed);
}
