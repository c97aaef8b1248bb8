/*
 * lmc_llama2c_to_gguf: converts a llama2.c checkpoint and tokenizer into a
 * GGUF model that lmc loads (docs/MODELS.md).
 *
 *   lmc_llama2c_to_gguf stories260K.bin tok512.bin stories260K.gguf
 */
#include <stdio.h>

#include "model/model.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s CHECKPOINT.bin TOKENIZER.bin OUTPUT.gguf\n", argv[0]);
        return 2;
    }
    lmc_message message = {{0}};
    lmc_status status = lmc_llama2c_convert(argv[1], argv[2], argv[3], &message);
    if (status != LMC_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], message.text);
        return 1;
    }
    return 0;
}
