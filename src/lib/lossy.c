/*
 * The bounded-error quantiser of media samples (lossy.h). Integer
 * arithmetic only; 64-bit where a 32-bit audio sample plus the bound could
 * overflow.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lossy.h"

static uint32_t step_of(uint32_t bound) {
    return 2 * bound + 1;
}

uint32_t lmc_lossy_index(uint32_t x, uint32_t bound) {
    return (uint32_t)(((uint64_t)x + bound) / step_of(bound));
}

uint32_t lmc_lossy_value(uint32_t index, uint32_t bound, uint32_t max) {
    uint64_t value = (uint64_t)index * step_of(bound);
    return value < max ? (uint32_t)value : max;
}

uint32_t lmc_lossy_index_max(uint32_t max, uint32_t bound) {
    return lmc_lossy_index(max, bound);
}

/* floor(a / b) for b > 0 (C division truncates towards zero). */
static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return q * b > a ? q - 1 : q;
}

int32_t lmc_lossy_index_signed(int32_t x, uint32_t bound) {
    return (int32_t)floor_div((int64_t)x + bound, step_of(bound));
}

int32_t lmc_lossy_value_signed(int32_t index, uint32_t bound, int32_t lo, int32_t hi) {
    int64_t value = (int64_t)index * step_of(bound);
    return (int32_t)(value < lo ? lo : value > hi ? hi : value);
}

void lmc_lossy_audio_range(const lmc_media_desc *desc, int32_t *lo, int32_t *hi) {
    int64_t half = (int64_t)1 << (desc->bits - 1);
    *lo = (int32_t)-half;
    *hi = (int32_t)(half - 1);
}

int lmc_lossy_applies(const lmc_media_desc *desc, const char **reason) {
    if (desc->kind == LMC_KIND_IMAGE && desc->palette) {
        *reason = "a palette image's samples are palette indices, which are never quantised";
        return 0;
    }
    if (desc->kind == LMC_KIND_AUDIO && desc->valid_bits != desc->bits) {
        *reason = "audio with padding bits below its valid bits is never quantised";
        return 0;
    }
    return 1;
}

static lmc_status quantise_unsigned(uint16_t *samples, size_t count, uint32_t max, uint32_t bound,
                                    uint16_t *restored, uint64_t *squared_error) {
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t x = samples[i], index = lmc_lossy_index(x, bound);
        uint32_t value = lmc_lossy_value(index, bound, max);
        int64_t error = (int64_t)value - x;
        if (error > bound || -error > bound || x > max)
            return LMC_ERR_INTERNAL;
        samples[i] = (uint16_t)index;
        restored[i] = (uint16_t)value;
        sum += (uint64_t)(error * error);
    }
    *squared_error = sum;
    return LMC_OK;
}

static lmc_status quantise_signed(int32_t *samples, size_t count, const lmc_media_desc *desc, uint32_t bound,
                                  int32_t *restored, uint64_t *squared_error) {
    int32_t lo, hi;
    lmc_lossy_audio_range(desc, &lo, &hi);
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        int32_t x = samples[i], index = lmc_lossy_index_signed(x, bound);
        int32_t value = lmc_lossy_value_signed(index, bound, lo, hi);
        int64_t error = (int64_t)value - x;
        if (error > bound || -error > bound || x < lo || x > hi)
            return LMC_ERR_INTERNAL;
        samples[i] = index;
        restored[i] = value;
        sum += (uint64_t)(error * error);
    }
    *squared_error = sum;
    return LMC_OK;
}

lmc_status lmc_lossy_quantise(lmc_media *item, uint32_t bound, void **restored, uint64_t *squared_error,
                              lmc_message *message) {
    int audio = item->audio != NULL;
    size_t element = audio ? sizeof *item->audio : sizeof *item->samples;
    *restored = malloc(item->count ? item->count * element : 1);
    if (!*restored)
        return lmc_fail(message, LMC_ERR_NOMEM, "out of memory");
    lmc_status status = audio ? quantise_signed(item->audio, item->count, &item->desc, bound, *restored, squared_error)
                              : quantise_unsigned(item->samples, item->count, item->desc.max_value, bound, *restored,
                                                  squared_error);
    if (status != LMC_OK) {
        free(*restored);
        *restored = NULL;
        return lmc_fail(message, status, "bounded-error quantiser: a sample left its bound");
    }
    return LMC_OK;
}

lmc_status lmc_lossy_dequantise(lmc_media *item, uint32_t bound, lmc_message *message) {
    if (item->audio) {
        int32_t lo, hi;
        lmc_lossy_audio_range(&item->desc, &lo, &hi);
        int32_t first = lmc_lossy_index_signed(lo, bound), last = lmc_lossy_index_signed(hi, bound);
        for (size_t i = 0; i < item->count; i++) {
            if (item->audio[i] < first || item->audio[i] > last)
                return lmc_fail(message, LMC_ERR_CORRUPT, "damaged media block: a quantised sample is out of range");
            item->audio[i] = lmc_lossy_value_signed(item->audio[i], bound, lo, hi);
        }
        return LMC_OK;
    }
    uint32_t max = item->desc.max_value, last = lmc_lossy_index_max(max, bound);
    for (size_t i = 0; i < item->count; i++) {
        if (item->samples[i] > last)
            return lmc_fail(message, LMC_ERR_CORRUPT, "damaged media block: a quantised sample is out of range");
        item->samples[i] = (uint16_t)lmc_lossy_value(item->samples[i], bound, max);
    }
    return LMC_OK;
}

double lmc_lossy_peak(const lmc_media_desc *desc) {
    if (desc->kind == LMC_KIND_AUDIO)
        return ldexp(1.0, (int)desc->bits) - 1.0;
    return desc->max_value;
}

double lmc_lossy_psnr(uint64_t squared_error, uint64_t count, double peak) {
    if (squared_error == 0 || count == 0)
        return INFINITY;
    double mse = (double)squared_error / (double)count;
    return 10.0 * log10(peak * peak / mse);
}
