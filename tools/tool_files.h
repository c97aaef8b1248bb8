/* File input shared by the tools in this folder (each is one executable). */
#ifndef LMC_TOOL_FILES_H
#define LMC_TOOL_FILES_H

#include <stdio.h>

#include "common/common.h"

/* Appends the whole file to out; -1 if it cannot be read or out cannot grow. */
static inline int tool_read_file(const char *path, lmc_buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t chunk[1 << 16];
    size_t n;
    int failed = 0;
    while (!failed && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        failed = lmc_buf_append(out, chunk, n) != LMC_OK;
    failed |= ferror(f);
    fclose(f);
    return failed ? -1 : 0;
}

#endif /* LMC_TOOL_FILES_H */
