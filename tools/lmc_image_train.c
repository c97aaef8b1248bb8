/*
 * lmc_image_train -o OUT.gguf [--from MODEL.gguf] IMAGE...: trains the image
 * model's prior. Each image is coded from the starting weights (MODEL's, or
 * generic ones), and the mixers' final weights, averaged over the images,
 * become OUT's starting weights. Deterministic: the same images in the same
 * order give the same file. Recipe: train/README.md, "Image model".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/media.h"
#include "model/model.h"
#include "tool_files.h"

#define NAME "image-rgb"
#define DESCRIPTION "Photographs and drawings: context mixing over pixels (predictors, least squares, colour contexts)"
#define TRAINING_DATA "shared/train/image PNG files (CBSD68, Urban100, McMaster, Set5, Set14 subset, RealSRSet, Manga109 crops)"
#define LICENSE "Apache-2.0 (weights); training images under their own research-use terms (models/README.md)"

static lmc_gguf_writer *metadata(void) {
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    if (w && (lmc_gguf_writer_set_str(w, "general.architecture", "lmc-image") != LMC_OK ||
              lmc_gguf_writer_set_str(w, "general.name", NAME) != LMC_OK ||
              lmc_gguf_writer_set_str(w, "general.description", DESCRIPTION) != LMC_OK ||
              lmc_gguf_writer_set_str(w, "general.license", LICENSE) != LMC_OK ||
              lmc_gguf_writer_set_str(w, "lmc.training_data", TRAINING_DATA) != LMC_OK ||
              lmc_gguf_writer_set_str(w, "lmc.default_kind", "image") != LMC_OK)) {
        lmc_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

static size_t prior_values(int which) {
    uint64_t ne[2];
    lmc_image_prior_shape(which, ne);
    return (size_t)(ne[0] * ne[1]);
}

/* Adds one image's learned weights to the sums; 1 if it was used. */
static int learn(const lmc_model *model, const char *path, int64_t *sums[2], int32_t *scratch[2]) {
    lmc_buf file;
    lmc_buf_init(&file);
    lmc_media item;
    lmc_message message = {{0}};
    if (tool_read_file(path, &file) != 0 || lmc_media_parse(file.data, file.size, 0, &item, &message) != LMC_OK ||
        item.desc.kind != LMC_KIND_IMAGE) {
        fprintf(stderr, "%s: skipped (%s)\n", path, message.text);
        lmc_buf_free(&file);
        return 0;
    }
    lmc_image_shape shape = {.width = item.desc.width, .height = item.desc.height, .planes = item.desc.channels,
                             .max_value = item.desc.max_value, .palette = item.desc.palette};
    size_t coded = 0;
    lmc_status status = lmc_image_learn(model, &shape, item.samples, scratch[0], scratch[1], &coded, &message);
    if (status == LMC_OK) {
        for (int t = 0; t < 2; t++)
            for (size_t i = 0; i < prior_values(t); i++)
                sums[t][i] += scratch[t][i];
        printf("%s %.4f bits/subpixel\n", path, coded * 8.0 / (double)item.count);
        fflush(stdout);
    } else {
        fprintf(stderr, "%s: %s\n", path, message.text);
    }
    lmc_media_free(&item);
    lmc_buf_free(&file);
    return status == LMC_OK;
}

/* The model file: metadata and, unless untrained, the averaged weights. */
static int write_model(const char *path, int64_t *sums[2], int used) {
    lmc_gguf_writer *w = metadata();
    int ok = w != NULL;
    for (int t = 0; t < 2 && ok && used > 0; t++) {
        uint64_t ne[2];
        lmc_image_prior_shape(t, ne);
        size_t n = prior_values(t);
        int32_t *average = malloc(n * sizeof *average);
        ok = average != NULL;
        for (size_t i = 0; ok && i < n; i++)
            average[i] = (int32_t)(sums[t][i] / used);
        ok = ok && lmc_gguf_writer_add_tensor(w, lmc_image_prior_name(t), LMC_GGML_I32, 2, ne, average,
                                              n * sizeof *average) == LMC_OK;
        free(average);
    }
    ok = ok && lmc_gguf_writer_write(w, path) == LMC_OK;
    lmc_gguf_writer_free(w);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *out = NULL, *from = NULL;
    int first = 1;
    while (first + 1 < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-o") == 0)
            out = argv[first + 1];
        else if (strcmp(argv[first], "--from") == 0)
            from = argv[first + 1];
        else
            break;
        first += 2;
    }
    if (!out) {
        fprintf(stderr, "usage: %s -o OUT.gguf [--from MODEL.gguf] IMAGE...\n", argv[0]);
        return 2;
    }
    /* Without --from, start from an untrained model file written first. */
    int64_t *sums[2] = {calloc(prior_values(0), sizeof(int64_t)), calloc(prior_values(1), sizeof(int64_t))};
    int32_t *scratch[2] = {calloc(prior_values(0), sizeof(int32_t)), calloc(prior_values(1), sizeof(int32_t))};
    if (!sums[0] || !sums[1] || !scratch[0] || !scratch[1] || (!from && write_model(out, sums, 0) != 0)) {
        fprintf(stderr, "cannot prepare %s\n", out);
        return 1;
    }
    lmc_model *model;
    lmc_message message = {{0}};
    if (lmc_model_load(from ? from : out, 0, &model, &message) != LMC_OK) {
        fprintf(stderr, "%s\n", message.text);
        return 1;
    }
    int used = 0;
    for (int i = first; i < argc; i++)
        used += learn(model, argv[i], sums, scratch);
    lmc_model_free(model);
    int result = used > 0 && write_model(out, sums, used) == 0 ? 0 : 1;
    printf("%d images; %s %s\n", used, out, result == 0 ? "written" : "NOT written");
    for (int t = 0; t < 2; t++) {
        free(sums[t]);
        free(scratch[t]);
    }
    return result;
}
