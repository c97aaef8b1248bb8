/*
 * lmc_image_eval MODEL.gguf [-T N] IMAGE...: codes each image's samples
 * with the image coder alone (no container), checks the round trip, and
 * prints bits per subpixel and seconds each way. For tuning and bench/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/media.h"
#include "model/model.h"
#include "tool_files.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Codes one image; adds its subpixels and payload bits to the totals. */
static int evaluate(const lmc_model *model, lmc_pool *pool, const char *path, double *subpixels, double *bits,
                    double *seconds) {
    lmc_buf file, payload;
    lmc_buf_init(&file);
    lmc_buf_init(&payload);
    lmc_media item;
    lmc_message message = {{0}};
    int result = 1;
    if (tool_read_file(path, &file) != 0 || lmc_media_parse(file.data, file.size, 0, &item, &message) != LMC_OK ||
        item.desc.kind != LMC_KIND_IMAGE) {
        fprintf(stderr, "%s: not an image (%s)\n", path, message.text);
        lmc_buf_free(&file);
        return 1;
    }
    lmc_image_shape shape = {.width = item.desc.width, .height = item.desc.height, .planes = item.desc.channels,
                             .max_value = item.desc.max_value, .palette = item.desc.palette};
    uint16_t *decoded = malloc(item.count * sizeof *decoded);
    double t0 = now();
    lmc_status status = decoded ? lmc_image_encode(model, &shape, item.samples, pool, &payload, &message) : LMC_ERR_NOMEM;
    double t1 = now();
    if (status == LMC_OK)
        status = lmc_image_decode(model, &shape, payload.data, payload.size, pool, decoded, &message);
    double t2 = now();
    if (status != LMC_OK) {
        fprintf(stderr, "%s: %s\n", path, message.text);
    } else if (memcmp(decoded, item.samples, item.count * sizeof *decoded) != 0) {
        fprintf(stderr, "%s: ROUND TRIP MISMATCH\n", path);
    } else {
        double megapixels = (double)item.desc.width * item.desc.height / 1e6;
        printf("%-28s %8zu bytes %6.3f bits/subpixel  %6.2f s/MP compress  %6.2f s/MP decompress\n", path,
               payload.size, payload.size * 8.0 / (double)item.count, (t1 - t0) / megapixels,
               (t2 - t1) / megapixels);
        *subpixels += (double)item.count;
        *bits += payload.size * 8.0;
        seconds[0] += t1 - t0;
        seconds[1] += t2 - t1;
        result = 0;
    }
    free(decoded);
    lmc_media_free(&item);
    lmc_buf_free(&file);
    lmc_buf_free(&payload);
    return result;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf [-T N] IMAGE...\n", argv[0]);
        return 2;
    }
    int first = 2, threads = 1;
    if (argc > 4 && strcmp(argv[2], "-T") == 0) {
        threads = atoi(argv[3]);
        first = 4;
    }
    lmc_model *model;
    lmc_message message = {{0}};
    if (lmc_model_load(argv[1], 0, &model, &message) != LMC_OK) {
        fprintf(stderr, "%s\n", message.text);
        return 1;
    }
    lmc_pool *pool = lmc_pool_create(threads);
    double subpixels = 0, bits = 0, seconds[2] = {0, 0};
    int failures = 0;
    for (int i = first; i < argc; i++)
        failures += evaluate(model, pool, argv[i], &subpixels, &bits, seconds);
    if (subpixels > 0)
        printf("total: %.0f bytes, %.4f bits/subpixel, %.1f s compress, %.1f s decompress\n", bits / 8,
               bits / subpixels, seconds[0], seconds[1]);
    lmc_pool_free(pool);
    lmc_model_free(model);
    return failures ? 1 : 0;
}
