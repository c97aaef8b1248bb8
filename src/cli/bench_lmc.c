/*
 * lmc bench's own column: a file compressed and decompressed in memory
 * through lmc.h, with the options `lmc compress` would use, timed from
 * opening the stream (model loading included, as for a program's start-up)
 * to its last byte, and compared byte for byte with the original, or, for a
 * media file, sample for sample when the bytes differ (lmc's PNG coder gives
 * the same pixels back in a PNG of its own).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"

#define CHUNK_SIZE (1u << 20)

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    const char *path; /* for messages */
} growing_buffer;

static int append_to_buffer(void *user, const void *data, size_t size) {
    growing_buffer *buffer = user;
    if (size == 0) return 0;
    if (size > buffer->capacity - buffer->size) {
        size_t capacity = buffer->capacity ? buffer->capacity : CHUNK_SIZE;
        while (size > capacity - buffer->size) capacity *= 2;
        uint8_t *grown = realloc(buffer->data, capacity);
        if (grown == NULL) {
            cli_error(buffer->path, "out of memory");
            return -1;
        }
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, data, size);
    buffer->size += size;
    return 0;
}

typedef struct {
    const bench_input *input;
    size_t matched;          /* bytes equal to the input's so far */
    int diverged;            /* a media input's bytes differed: decoded holds the output */
    growing_buffer decoded;
} comparison;

static int compare_with_original(void *user, const void *data, size_t size) {
    comparison *compare = user;
    const bench_input *input = compare->input;
    if (!compare->diverged) {
        if (size <= input->size - compare->matched && memcmp(input->data + compare->matched, data, size) == 0) {
            compare->matched += size;
            return 0;
        }
        if (input->media == NULL) {
            cli_error(input->path, "lmc round trip failed: the archive does not decode to the file");
            return -1;
        }
        /* Kept whole from here on, for the comparison of samples at the end. */
        compare->diverged = 1;
        if (append_to_buffer(&compare->decoded, input->data, compare->matched) != 0) return -1;
    }
    return append_to_buffer(&compare->decoded, data, size);
}

/* After the last byte: the whole file, or (for media) the same samples. */
static int compare_at_end(const comparison *compare) {
    const bench_input *input = compare->input;
    if (!compare->diverged && compare->matched == input->size) return 0;
    const uint8_t *decoded = compare->diverged ? compare->decoded.data : input->data;
    size_t size = compare->diverged ? compare->decoded.size : compare->matched;
    if (input->media != NULL && bench_media_same(input, decoded, size)) return 0;
    if (compare->diverged)
        cli_error(input->path, "lmc round trip failed: the archive decodes to other samples");
    else
        cli_error(input->path, "lmc round trip failed: the archive decodes to less than the file");
    return -1;
}

static int pull_into(const cli_stream *stream, const cli_sink *sink, uint8_t *buffer) {
    size_t got;
    while ((got = stream->pull(stream->handle, buffer, CHUNK_SIZE)) > 0)
        if (sink->write(sink->user, buffer, got) != 0) return -1;
    return 0;
}

/* Pushes all of data through stream, its output into sink (which reports
 * its own failures). Returns 0, or -1 after reporting. */
static int code_in_memory(const cli_stream *stream, const char *path, const uint8_t *data, size_t size,
                          const cli_sink *sink) {
    uint8_t *buffer = malloc(CHUNK_SIZE);
    if (buffer == NULL) {
        cli_error(path, "out of memory");
        return -1;
    }
    lmc_status status = LMC_OK;
    int sink_failed = 0;
    for (size_t done = 0; status == LMC_OK && !sink_failed && done < size;) {
        size_t step = size - done < CHUNK_SIZE ? size - done : CHUNK_SIZE;
        status = stream->push(stream->handle, data + done, step);
        done += step;
        if (status == LMC_OK) sink_failed = pull_into(stream, sink, buffer) != 0;
    }
    if (status == LMC_OK && !sink_failed) status = stream->finish(stream->handle);
    if (status == LMC_OK && !sink_failed) sink_failed = pull_into(stream, sink, buffer) != 0;
    free(buffer);
    if (status != LMC_OK) cli_library_error(path, status, stream->message(stream->handle));
    return status == LMC_OK && !sink_failed ? 0 : -1;
}

static int compress(const cli_config *config, const bench_input *input, growing_buffer *archive) {
    cli_progress progress;
    cli_progress_start(&progress, input->path, input->size, 0);
    lmc_encoder *encoder = cli_open_encoder(config, &progress, input->path);
    if (encoder == NULL) return -1;
    cli_stream stream = cli_stream_of_encoder(encoder);
    cli_sink sink = {append_to_buffer, archive, input->path};
    int outcome = code_in_memory(&stream, input->path, input->data, input->size, &sink);
    cli_progress_end(&progress);
    lmc_encoder_free(encoder);
    return outcome;
}

static int decompress_and_compare(const cli_config *config, const bench_input *input, const growing_buffer *archive) {
    cli_progress progress;
    cli_progress_start(&progress, input->path, input->size, 1);
    lmc_decoder *decoder = cli_open_decoder(config, &progress, input->path);
    if (decoder == NULL) return -1;
    cli_stream stream = cli_stream_of_decoder(decoder);
    comparison compare = {.input = input, .decoded = {NULL, 0, 0, input->path}};
    cli_sink sink = {compare_with_original, &compare, input->path};
    int outcome = code_in_memory(&stream, input->path, archive->data, archive->size, &sink);
    cli_progress_end(&progress);
    lmc_decoder_free(decoder);
    if (outcome == 0) outcome = compare_at_end(&compare);
    free(compare.decoded.data);
    return outcome;
}

void bench_lmc(const cli_config *config, const bench_input *input, bench_result *result) {
    growing_buffer archive = {NULL, 0, 0, input->path};
    result->outcome = BENCH_FAILED;
    double start = cli_now();
    if (compress(config, input, &archive) == 0) {
        double middle = cli_now();
        result->compressed = archive.size;
        result->compress_seconds = middle - start;
        if (decompress_and_compare(config, input, &archive) == 0) result->outcome = BENCH_OK;
        result->decompress_seconds = cli_now() - middle;
    }
    free(archive.data);
}
