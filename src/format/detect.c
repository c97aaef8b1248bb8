/* Content-based kind detection. */
#include <string.h>

#include "format/format.h"
#include "format/media.h"

static int starts_with(const unsigned char *data, size_t size, const char *magic, size_t length) {
    return size >= length && memcmp(data, magic, length) == 0;
}

static int is_image(const unsigned char *p, size_t n) {
    if (starts_with(p, n, "\x89PNG\r\n\x1a\n", 8))
        return 1;
    /* Netpbm: P5 (PGM), P6 (PPM), P7 (PAM) followed by whitespace. */
    return n >= 3 && p[0] == 'P' && (p[1] == '5' || p[1] == '6' || p[1] == '7') &&
           (p[2] == ' ' || p[2] == '\n' || p[2] == '\r' || p[2] == '\t');
}

static int is_audio(const unsigned char *p, size_t n) {
    if (lmc_flac_signature_offset(p, n) != SIZE_MAX) /* "fLaC", perhaps after an ID3v2 tag */
        return 1;
    return n >= 12 && (starts_with(p, n, "RIFF", 4) || starts_with(p, n, "RF64", 4)) && !memcmp(p + 8, "WAVE", 4);
}

static int is_video(const unsigned char *p, size_t n) {
    return starts_with(p, n, "YUV4MPEG2 ", 10);
}

/* Length of the UTF-8 sequence starting at p (0 if invalid), allowing a
 * sequence cut by the end of the prefix. */
static size_t utf8_sequence(const unsigned char *p, size_t n, int *cut) {
    unsigned char c = p[0];
    size_t length;
    unsigned min_second = 0x80, max_second = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        length = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        if (c == 0xe0) min_second = 0xa0;        /* no overlong forms */
        if (c == 0xed) max_second = 0x9f;        /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        if (c == 0xf0) min_second = 0x90;
        if (c == 0xf4) max_second = 0x8f;        /* <= U+10FFFF */
    } else
        return 0;
    for (size_t i = 1; i < length; i++) {
        if (i >= n) {
            *cut = 1;
            return n;
        }
        unsigned lo = i == 1 ? min_second : 0x80, hi = i == 1 ? max_second : 0xbf;
        if (p[i] < lo || p[i] > hi)
            return 0;
    }
    return length;
}

/* Text: valid UTF-8 with few control characters other than whitespace. */
static int is_text(const unsigned char *p, size_t n) {
    size_t controls = 0;
    for (size_t i = 0; i < n;) {
        int cut = 0;
        size_t length = utf8_sequence(p + i, n - i, &cut);
        if (length == 0)
            return 0;
        if (p[i] == 0)
            return 0;
        if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\r' && p[i] != '\t' && p[i] != '\f')
            controls++;
        i += length;
    }
    return controls * 100 <= n; /* at most 1% */
}

lmc_kind lmc_format_detect(const unsigned char *prefix, size_t size) {
    if (is_image(prefix, size))
        return LMC_KIND_IMAGE;
    if (is_audio(prefix, size))
        return LMC_KIND_AUDIO;
    if (is_video(prefix, size))
        return LMC_KIND_VIDEO;
    if (size > 0 && is_text(prefix, size))
        return LMC_KIND_TEXT;
    return LMC_KIND_BYTES;
}
