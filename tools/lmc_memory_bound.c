/*
 * lmc_memory_bound: the memory lmc plans for each model (what --memlimit is
 * checked against), for SECURITY.md's table: compression (8 blocks
 * together, as with up to 4 threads, and 32, the most, from 16 threads on)
 * and decompression (up to 64 blocks in lockstep), each with the model's
 * window and the codec's default block size, codec 0 (model alone) and
 * codec 4 (mixed), batches capped as lmc_neural_batch_fit caps them. Peak
 * RSS measurements are in bench/README.md.
 *
 * usage: lmc_memory_bound MODEL.gguf...
 */
#include <stdio.h>

#include "lib/lib.h"

/* Decompression planned as on 16 CPUs with 16 or more threads: 16 lane
 * groups (lmc_neural_decode_groups). */
#define DECODE_GROUPS 16

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

/* Model file + working state + three buffers of block_size per block, as
 * the encoder's and decoder's check_memory count them. */
static uint64_t planned(const lmc_model *m, int blocks, int mixed, int decode_groups) {
    uint32_t block_size = lmc_neural_default_block_size(m, mixed);
    blocks = lmc_neural_batch_fit(blocks, block_size, mixed);
    lmc_neural_config config = {blocks, m->context_window, LMC_MIN(m->window_stride, m->context_window), block_size,
                                mixed, mixed ? LMC_LANES_MAX : 1, LMC_NUMERICS_VERSION, decode_groups};
    return m->file_size + lmc_neural_coder_bytes(m, &config) + 3ull * (uint64_t)blocks * block_size;
}

int main(int argc, char **argv) {
    printf("%-16s %8s %8s %12s %12s %12s %12s %12s %12s\n", "model", "block", "mix block", "compress 8", "mix 8",
           "compress 32", "mix 32", "decompress", "mix");
    for (int i = 1; i < argc; i++) {
        lmc_model *m;
        lmc_message message = {0};
        if (lmc_model_load(argv[i], 0, &m, &message) != LMC_OK) {
            fprintf(stderr, "%s: %s\n", argv[i], message.text);
            return 1;
        }
        if (m->family != LMC_FAMILY_LLAMA) { /* the media models plan per file (SECURITY.md) */
            printf("%-16s not a token model\n", m->name);
            lmc_model_free(m);
            continue;
        }
        printf("%-16s %7uK %8uK %8.0f MiB %8.0f MiB %8.0f MiB %8.0f MiB %8.0f MiB %8.0f MiB\n", m->name,
               lmc_neural_default_block_size(m, 0) >> 10, lmc_neural_default_block_size(m, 1) >> 10,
               mib(planned(m, 8, 0, 0)), mib(planned(m, 8, 1, 0)), mib(planned(m, 32, 0, 0)),
               mib(planned(m, 32, 1, 0)), mib(planned(m, 64, 0, DECODE_GROUPS)), mib(planned(m, 64, 1, DECODE_GROUPS)));
        lmc_model_free(m);
    }
    printf("%-16s %9uK %9.0f MiB (per thread)\n", "--fast", 4096u, mib(lmc_cm_memory(4u << 20) + 3ull * (4u << 20)));
    return 0;
}
