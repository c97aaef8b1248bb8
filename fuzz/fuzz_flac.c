/*
 * libFuzzer target for the FLAC reader and writer (src/format/flac_io.c):
 * any input gives a clean error with a message, or an item that writes
 * back (re-encoded by libFLAC) and re-parses to the same description,
 * samples and side data. The one tolerated difference in the side data is
 * a seek point's offset and frame size (bytes 8 to 17 of the point): a
 * point kept verbatim because it did not name its frame may name one of
 * the re-encoded frames by chance (then lmc codes such a file as bytes).
 * Seeds: fuzz/corpus/flac/ (tiny FLAC files made with the flac tools).
 *
 * Mutated frames almost never keep valid CRCs, and libFLAC drops a frame
 * whose header CRC-8 is wrong (the reader then refuses the file), so each
 * input is also tried with the CRCs of its frames rewritten, a frame taken
 * to run from one sync code (0xFFF8 or 0xFFF9) to the next: the mutations
 * then reach libFLAC's frame decoder, the reader's frame checks and the
 * round trip.
 *
 * Build: cmake -DCMAKE_C_COMPILER=clang -DLMC_FUZZ=ON; run with
 * fuzz/run_fuzzer.sh build/fuzz/fuzz_flac fuzz/corpus/flac SECONDS.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/media.h"

/* Keeps each run small: a few seconds of audio are plenty to find bugs. */
#define FUZZ_MAX_SAMPLES ((uint64_t)1 << 22)

static void check(int condition) {
    if (!condition)
        abort();
}

/* 1 if byte `at` of side data (a parsed FLAC's) is in a seek point's offset
 * or frame size. */
static int in_seek_point_fields(const uint8_t *side, size_t size, size_t at) {
    size_t pos = lmc_flac_signature_offset(side, size) + 4;
    for (int last = 0; !last && pos + 4 <= size;) {
        last = side[pos] & 0x80;
        size_t length = (size_t)side[pos + 1] << 16 | (size_t)side[pos + 2] << 8 | side[pos + 3];
        size_t body = pos + 4;
        if ((side[pos] & 0x7f) == 3 && at >= body && at < body + length)
            return (at - body) % 18 >= 8;
        pos = body + length;
    }
    return 0;
}

static int same_side(const lmc_media *a, const lmc_media *b) {
    if (a->side_size != b->side_size)
        return 0;
    for (size_t i = 0; i < a->side_size; i++)
        if (a->side[i] != b->side[i] && !in_seek_point_fields(a->side, a->side_size, i))
            return 0;
    return 1;
}

static uint8_t crc8(const uint8_t *p, size_t n) {
    uint8_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (uint8_t)(crc & 0x80 ? crc << 1 ^ 0x07 : crc << 1);
    }
    return crc;
}

static uint16_t crc16(const uint8_t *p, size_t n) {
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int k = 0; k < 8; k++)
            crc = (uint16_t)(crc & 0x8000 ? crc << 1 ^ 0x8005 : crc << 1);
    }
    return crc;
}

static int is_sync(const uint8_t *p, size_t left) {
    return left >= 2 && p[0] == 0xFF && (p[1] & 0xFE) == 0xF8;
}

/* Bytes of the frame header at p before its CRC-8 (0 if cut short). */
static size_t header_size(const uint8_t *p, size_t left) {
    if (left < 5)
        return 0;
    size_t n = 5; /* sync, codes, the coded number's first byte */
    for (uint8_t mask = 0x40; (p[4] & 0x80) && (p[4] & mask) && mask > 1; mask >>= 1)
        n++;
    uint8_t block = p[2] >> 4, rate = p[2] & 15;
    n += block == 6 ? 1 : block == 7 ? 2 : 0;
    n += rate == 12 ? 1 : rate == 13 || rate == 14 ? 2 : 0;
    return n + 1 <= left ? n : 0;
}

/* Rewrites the CRCs of the frames after the metadata blocks, in place. */
static void fix_crcs(uint8_t *p, size_t size) {
    size_t pos = lmc_flac_signature_offset(p, size);
    if (pos == SIZE_MAX)
        return;
    for (int last = 0, guard = 0; !last && guard < 1000; guard++) {
        pos += 4;
        if (pos + 4 > size)
            return;
        last = p[pos] & 0x80;
        pos += (size_t)p[pos + 1] << 16 | (size_t)p[pos + 2] << 8 | p[pos + 3];
    }
    pos += 4;
    while (pos < size && !is_sync(p + pos, size - pos))
        pos++;
    while (pos < size) {
        size_t next = pos + 2;
        while (next < size && !is_sync(p + next, size - next))
            next++;
        size_t header = header_size(p + pos, next - pos);
        if (header != 0 && next - pos >= header + 3) {
            p[pos + header] = crc8(p + pos, header);
            uint16_t crc = crc16(p + pos, next - pos - 2);
            p[next - 2] = (uint8_t)(crc >> 8);
            p[next - 1] = (uint8_t)crc;
        }
        pos = next;
    }
}

static void check_roundtrip(const uint8_t *data, size_t size) {
    lmc_media item, again;
    lmc_message message;
    if (lmc_flac_parse(data, size, FUZZ_MAX_SAMPLES, &item, &message) != LMC_OK) {
        check(item.audio == NULL && item.side == NULL && message.text[0] != '\0');
        return;
    }
    check(item.desc.format == LMC_MEDIA_FLAC && item.count == item.desc.frames * item.desc.channels);
    lmc_buf out;
    lmc_buf_init(&out);
    check(lmc_media_write(&item, &out, &message) == LMC_OK);
    check(lmc_flac_parse(out.data, out.size, FUZZ_MAX_SAMPLES, &again, &message) == LMC_OK);
    check(lmc_media_desc_equal(&item.desc, &again.desc) && item.count == again.count);
    check(memcmp(item.audio, again.audio, item.count * sizeof *item.audio) == 0);
    check(same_side(&item, &again));
    lmc_media_free(&again);
    lmc_media_free(&item);
    lmc_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_roundtrip(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    if (memcmp(copy, data, size) != 0)
        check_roundtrip(copy, size);
    free(copy);
    return 0;
}
