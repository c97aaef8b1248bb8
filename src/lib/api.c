/* Small public helpers: status and kind names, options, version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "lib/lib.h"

const char *lmc_status_string(lmc_status status) {
    switch (status) {
    case LMC_OK: return "success";
    case LMC_ERR_PARAM: return "invalid argument";
    case LMC_ERR_NOMEM: return "out of memory";
    case LMC_ERR_MEMLIMIT: return "memory limit too small";
    case LMC_ERR_IO: return "input/output error";
    case LMC_ERR_NOT_ARCHIVE: return "not an lmc archive";
    case LMC_ERR_VERSION: return "unsupported archive version";
    case LMC_ERR_TRUNCATED: return "archive is truncated";
    case LMC_ERR_CORRUPT: return "archive is damaged";
    case LMC_ERR_MODEL_NOT_FOUND: return "model not found";
    case LMC_ERR_MODEL_INVALID: return "invalid or unsupported model file";
    case LMC_ERR_MODEL_MISMATCH: return "wrong model for this archive";
    case LMC_ERR_UNSUPPORTED: return "unsupported input";
    case LMC_ERR_INTERRUPTED: return "interrupted";
    case LMC_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

const char *lmc_version_string(void) {
    return LMC_VERSION_STRING;
}

static const char *const kind_names[] = {"auto", "bytes", "text", "image", "audio", "video"};

const char *lmc_kind_name(lmc_kind kind) {
    if ((unsigned)kind < sizeof kind_names / sizeof kind_names[0])
        return kind_names[kind];
    return "unknown";
}

lmc_status lmc_kind_parse(const char *name, lmc_kind *kind) {
    for (unsigned i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++) {
        if (name && !strcmp(name, kind_names[i])) {
            *kind = (lmc_kind)i;
            return LMC_OK;
        }
    }
    return LMC_ERR_PARAM;
}

lmc_kind lmc_detect_kind(const void *prefix, size_t size) {
    return lmc_format_detect(prefix, size);
}

void lmc_options_init(lmc_options *options) {
    memset(options, 0, sizeof *options);
}

lmc_status lmc_device_select(const char *device, char *message, size_t message_size) {
    char why[256] = "";
    lmc_status status;
    if (device && strcmp(device, "cpu") == 0) {
        status = lmc_nn_use_device(0, 0, why, sizeof why);
    } else if (device && strcmp(device, "cuda") == 0) {
        status = lmc_nn_use_device(1, 0, why, sizeof why);
    } else {
        char *end = NULL;
        long index = device && strncmp(device, "cuda:", 5) == 0 && device[5] ? strtol(device + 5, &end, 10) : -1;
        if (index < 0 || index > 1023 || *end) {
            snprintf(why, sizeof why, "unknown device '%s' (cpu, cuda or cuda:N)", device ? device : "(null)");
            status = LMC_ERR_PARAM;
        } else {
            status = lmc_nn_use_device(1, (int)index, why, sizeof why);
        }
    }
    if (message && message_size)
        snprintf(message, message_size, "%s", status == LMC_OK ? "ok" : why);
    return status;
}

void lmc_hash_hex(const uint8_t hash[16], char out[33]) {
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
}

int lmc_effective_threads(int requested) {
    return requested > 0 ? requested : lmc_cpu_count();
}
