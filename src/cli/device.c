/*
 * --device and --devices: which processor runs the neural models. The
 * archive does not depend on it (the GPU computes the CPU's bits), so a
 * GPU that cannot be used only costs time: a warning, and the CPU.
 */
#include <stdio.h>

#include "cli/cli.h"

void cli_select_device(const cli_config *config, int rank) {
    char name[32];
    const char *device = config->device;
    if (config->device_count > 0) {
        snprintf(name, sizeof name, "cuda:%d", config->devices[rank % config->device_count]);
        device = name;
    }
    if (!device)
        return;
    char why[256];
    if (lmc_device_select(device, why, sizeof why) != LMC_OK)
        cli_notice(NULL, "--device %s: %s; computing on the CPU", device, why);
}
