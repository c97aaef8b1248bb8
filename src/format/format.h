/*
 * The format stage: recognising what the input is. Later issues add the
 * readers that turn PNG/PPM, WAV/FLAC and Y4M into samples.
 */
#ifndef LMC_FORMAT_H
#define LMC_FORMAT_H

#include <stddef.h>

#include "lmc.h"

/* Detects the data kind from content only (magic bytes, UTF-8 validity),
 * never from a file name. `prefix` is the start of the input. */
lmc_kind lmc_format_detect(const unsigned char *prefix, size_t size);

#endif /* LMC_FORMAT_H */
