/*
 * The nn stage's device choice: the CUDA backend when it is built, else
 * the reason it is not (nn/cuda.h has both).
 */
#include "nn/cuda.h"

lmc_status lmc_nn_use_device(int gpu, int index, char *why, size_t why_size) {
    return lmc_cuda_use(gpu, index, why, why_size);
}
