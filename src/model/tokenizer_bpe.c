/*
 * Byte-level BPE of "gpt2" vocabularies, as llama.cpp's llm_tokenizer_bpe
 * does it.
 *
 * Token texts spell bytes through GPT-2's byte-to-unicode table; lmc maps
 * them back once at load, so tokenizing works on raw bytes: the text is
 * pre-tokenized into pieces by the regexes tokenizer.ggml.pre selects
 * (PCRE2 with Unicode properties), each piece starts as single bytes, and
 * adjacent symbols merge by the rank of tokenizer.ggml.merges (lowest rank
 * first, ties leftmost) through a heap. With llama-bpe's ignore_merges a
 * piece that is itself a token is taken whole.
 *
 * Invalid UTF-8: llama.cpp reads each byte of an invalid sequence as
 * U+FFFD, so encode() tokenizes exactly that text; encode_lossless() lets
 * the regexes see U+FFFD but keeps the raw bytes in the pieces.
 */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "model/tokenizer_internal.h"

#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_PRE "tokenizer.ggml.pre"
#define MAX_REGEXES 8

/* ---------------------------------------------------------------- pre-tokenizers */

/* llama.cpp's \s: the Unicode White_Space set (PCRE2's \s would add U+180E). */
#define WS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define SPACE "[" WS "]"
#define NOT_SPACE "[^" WS "]"

#define GPT2_REGEX                                                                                                   \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" SPACE "+(?!" NOT_SPACE ")"
#define LLAMA3_LIKE_REGEX(numbers)                                                                                   \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" numbers               \
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" SPACE "*[\\r\\n]+|" SPACE "+(?!" NOT_SPACE ")|" SPACE "+"
#define CJK_REGEX "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

typedef struct {
    const char *const *names; /* tokenizer.ggml.pre values */
    const char *const *regexes;
    int ignore_merges;
} pre_tokenizer;

static const char *const default_names[] = {"default", NULL};
static const char *const default_regexes[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_REGEX, "\\p{N}+", "[0-9][0-9][0-9]",
                                              NULL};
static const char *const llama3_names[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                           "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", NULL};
static const char *const llama3_like_names[] = {"dbrx", "smaug-bpe", "glm4", "chatglm-bpe", NULL};
static const char *const llama3_regexes[] = {LLAMA3_LIKE_REGEX("\\p{N}{1,3}"), NULL};
static const char *const gpt2_names[] = {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
                                         "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "mpt", "olmo", "jais",
                                         "trillion", "granite-docling", "exaone4", "jina-v1-en", "jina-v2-code",
                                         "roberta-bpe", NULL};
static const char *const gpt2_regexes[] = {GPT2_REGEX, NULL};
static const char *const starcoder_names[] = {"starcoder", "refact", "command-r", "smollm", "codeshell",
                                              "exaone", "minerva-7b", "mellum2", NULL};
static const char *const starcoder_regexes[] = {"\\p{N}", GPT2_REGEX, NULL};
static const char *const qwen2_names[] = {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2",
                                          "hunyuan", "solar-open", NULL};
static const char *const qwen2_regexes[] = {LLAMA3_LIKE_REGEX("\\p{N}"), NULL};
static const char *const falcon_names[] = {"falcon", NULL};
static const char *const falcon_regexes[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_REGEX, "[0-9][0-9][0-9]", NULL};
static const char *const deepseek_llm_names[] = {"deepseek-llm", NULL};
static const char *const deepseek_llm_regexes[] = {
    "[\\r\\n]",
    SPACE "?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
          "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"
          "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"
          "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
          "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
          "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
          "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
          "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
          "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}"
          "\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"
          "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"
          "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"
          "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
          "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
          "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
    SPACE "?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    SPACE "+$",
    CJK_REGEX,
    "\\p{N}+",
    NULL};
static const char *const deepseek_coder_names[] = {"deepseek-coder", NULL};
static const char *const deepseek_coder_regexes[] = {"[\\r\\n]", SPACE "?\\p{L}+", SPACE "?\\p{P}+", CJK_REGEX,
                                                     "\\p{N}", NULL};

/* Names as llama.cpp's llama-vocab.cpp maps them; "default" is also what a
 * missing tokenizer.ggml.pre means. */
static const pre_tokenizer pre_tokenizers[] = {
    {default_names, default_regexes, 0},
    {llama3_names, llama3_regexes, 1},
    {llama3_like_names, llama3_regexes, 0},
    {gpt2_names, gpt2_regexes, 0},
    {starcoder_names, starcoder_regexes, 0},
    {qwen2_names, qwen2_regexes, 0},
    {falcon_names, falcon_regexes, 0},
    {deepseek_llm_names, deepseek_llm_regexes, 0},
    {deepseek_coder_names, deepseek_coder_regexes, 0},
};

struct lmc_tok_bpe {
    pcre2_code *regexes[MAX_REGEXES];
    int n_regexes;
    int ignore_merges;
    int32_t byte_id[256]; /* token whose key is that one byte, else -1 */
};

static const pre_tokenizer *find_pre_tokenizer(lmc_gguf_string name) {
    for (size_t p = 0; p < sizeof pre_tokenizers / sizeof pre_tokenizers[0]; p++)
        for (const char *const *n = pre_tokenizers[p].names; *n; n++)
            if (strlen(*n) == name.size && memcmp(*n, name.data, name.size) == 0) return &pre_tokenizers[p];
    return NULL;
}

static lmc_status compile_regexes(lmc_tok_bpe *bpe, const pre_tokenizer *pre, lmc_message *message) {
    bpe->ignore_merges = pre->ignore_merges;
    for (const char *const *r = pre->regexes; *r; r++) {
        int error;
        PCRE2_SIZE offset;
        /* $ only at the very end, as in ECMAScript regexes (llama.cpp's std::regex). */
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)*r, PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error, &offset, NULL);
        if (!code) {
            PCRE2_UCHAR text[128];
            pcre2_get_error_message(error, text, sizeof text);
            return lmc_fail(message, LMC_ERR_INTERNAL, "tokenizer: pre-tokenizer regex: %s at %zu", (char *)text,
                            (size_t)offset);
        }
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter serves if JIT is unavailable */
        bpe->regexes[bpe->n_regexes++] = code;
    }
    return LMC_OK;
}

/* ---------------------------------------------------------------- byte-level alphabet */

/* GPT-2 spells byte b as code point b if b is printable Latin-1, else as
 * U+0100 + n for the n-th non-printable byte (0x00-0x20, 0x7F-0xA0, 0xAD). */
static int byte_of_codepoint(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 0x100 || cp >= 0x100 + 68) return -1;
    uint32_t n = cp - 0x100;
    if (n < 33) return (int)n;
    if (n < 67) return (int)(0x7F + n - 33);
    return 0xAD;
}

/* The raw bytes a byte-level text spells; 0 if it is not such a text. */
static int spelled_bytes(const uint8_t *text, size_t size, lmc_buf *out) {
    out->size = 0;
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        size_t length = lmc_tok_utf8_valid(text + i, size - i);
        if (length == 0 || !lmc_tok_utf8_lenient(text + i, size - i, &cp)) return 0;
        int byte = byte_of_codepoint(cp);
        if (byte < 0 || lmc_buf_append_byte(out, (uint8_t)byte) != LMC_OK) return 0;
        i += length;
    }
    return 1;
}

static lmc_status add_piece(lmc_buf *blob, uint8_t type, lmc_gguf_string text, const lmc_buf *spelled,
                            int is_spelled, lmc_tok_span *piece) {
    const uint8_t *t = (const uint8_t *)text.data;
    switch (type) {
    case LMC_TOKTYPE_NORMAL:
        return is_spelled ? lmc_tok_blob_add(blob, spelled->data, spelled->size, piece)
                          : lmc_tok_blob_add(blob, text.data, text.size, piece);
    case LMC_TOKTYPE_USER_DEFINED: return lmc_tok_blob_add(blob, text.data, text.size, piece);
    case LMC_TOKTYPE_BYTE:
        if (text.size == 6 && memcmp(t, "<0x", 3) == 0 && t[5] == '>') {
            char hex[3] = {(char)t[3], (char)t[4], 0}, *end;
            uint8_t byte = (uint8_t)strtoul(hex, &end, 16);
            if (end == hex + 2) return lmc_tok_blob_add(blob, &byte, 1, piece);
        }
        return lmc_tok_blob_add(blob, NULL, 0, piece);
    default: return lmc_tok_blob_add(blob, NULL, 0, piece); /* control, unknown, unused: no text */
    }
}

lmc_status lmc_tok_bpe_keys(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_buf *blob, lmc_message *message) {
    lmc_buf spelled;
    lmc_buf_init(&spelled);
    lmc_status status = LMC_OK;
    for (int32_t id = 0; id < tok->n_vocab && status == LMC_OK; id++) {
        lmc_gguf_string text = lmc_gguf_array_str(gguf, KEY_TOKENS, (uint64_t)id);
        int is_spelled = spelled_bytes((const uint8_t *)text.data, text.size, &spelled);
        status = lmc_tok_blob_add(blob, spelled.data, is_spelled ? spelled.size : 0, &tok->keys[id]);
        if (status == LMC_OK) status = add_piece(blob, tok->types[id], text, &spelled, is_spelled, &tok->pieces[id]);
    }
    lmc_buf_free(&spelled);
    if (status != LMC_OK)
        return lmc_fail(message, status, "tokenizer: %s",
                        status == LMC_ERR_NOMEM ? "out of memory" : "vocabulary too large");
    return LMC_OK;
}

/* ---------------------------------------------------------------- merges */

static uint64_t pair_key(int32_t left, int32_t right) {
    return (uint64_t)(uint32_t)(left + 1) << 32 | (uint32_t)(right + 1);
}

static const lmc_tok_pair_slot *pair_find(const lmc_tok_pair_map *map, int32_t left, int32_t right) {
    uint64_t key = pair_key(left, right);
    for (uint64_t i = lmc_tok_mix(key) & map->mask;; i = (i + 1) & map->mask) {
        const lmc_tok_pair_slot *slot = &map->slots[i];
        if (slot->key == key) return slot;
        if (slot->key == 0) return NULL;
    }
}

/* The first merge of a pair wins, as in llama.cpp's bpe_ranks.emplace. */
static void pair_insert(lmc_tok_pair_map *map, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    uint64_t key = pair_key(left, right);
    uint64_t i = lmc_tok_mix(key) & map->mask;
    for (; map->slots[i].key; i = (i + 1) & map->mask)
        if (map->slots[i].key == key) return;
    map->slots[i] = (lmc_tok_pair_slot){key, rank, merged};
}

/* Ids of the two halves of merge "first second" (split at the first space
 * after the first byte, as llama.cpp does), and of their join. Merges whose
 * halves are not tokens could never apply to token symbols: skipped. */
static int merge_ids(const lmc_tokenizer *tok, lmc_gguf_string merge, lmc_buf *first, lmc_buf *second,
                     int32_t ids[3]) {
    const uint8_t *text = (const uint8_t *)merge.data;
    const uint8_t *space = merge.size > 1 ? memchr(text + 1, ' ', merge.size - 1) : NULL;
    if (!space) return 0;
    size_t first_size = (size_t)(space - text);
    if (!spelled_bytes(text, first_size, first) || !spelled_bytes(space + 1, merge.size - first_size - 1, second))
        return 0;
    ids[0] = lmc_tok_map_find(tok, first->data, first->size);
    ids[1] = lmc_tok_map_find(tok, second->data, second->size);
    if (ids[0] < 0 || ids[1] < 0 || lmc_buf_append(first, second->data, second->size) != LMC_OK) return 0;
    ids[2] = lmc_tok_map_find(tok, first->data, first->size);
    return 1;
}

static lmc_status load_merges(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_message *message) {
    lmc_gguf_value_type elem_type;
    uint64_t count;
    if (lmc_gguf_get_array(gguf, KEY_MERGES, &elem_type, &count) != 0 || elem_type != LMC_GGUF_STRING ||
        count > INT32_MAX)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "tokenizer: %s is missing or not a string array", KEY_MERGES);
    uint64_t capacity = 16;
    while (capacity < 2 * count) capacity *= 2;
    tok->merges.slots = calloc(capacity, sizeof *tok->merges.slots);
    if (!tok->merges.slots) return lmc_fail(message, LMC_ERR_NOMEM, "tokenizer: out of memory");
    tok->merges.mask = capacity - 1;
    lmc_buf first, second;
    lmc_buf_init(&first);
    lmc_buf_init(&second);
    for (uint64_t rank = 0; rank < count; rank++) {
        int32_t ids[3];
        if (merge_ids(tok, lmc_gguf_array_str(gguf, KEY_MERGES, rank), &first, &second, ids))
            pair_insert(&tok->merges, ids[0], ids[1], (int32_t)rank, ids[2]);
    }
    lmc_buf_free(&first);
    lmc_buf_free(&second);
    return LMC_OK;
}

lmc_status lmc_tok_bpe_init(lmc_tokenizer *tok, const lmc_gguf *gguf, lmc_message *message) {
    lmc_gguf_string name = {"default", 7};
    tok->bpe = calloc(1, sizeof *tok->bpe);
    if (!tok->bpe) return lmc_fail(message, LMC_ERR_NOMEM, "tokenizer: out of memory");
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        tok->bpe->byte_id[b] = lmc_tok_map_find(tok, &byte, 1);
    }
    lmc_status status = load_merges(tok, gguf, message);
    if (status != LMC_OK) return status;
    if (lmc_gguf_find(gguf, KEY_PRE) >= 0 && lmc_gguf_get_str(gguf, KEY_PRE, &name) != 0)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "tokenizer: %s is not a string", KEY_PRE);
    const pre_tokenizer *pre = find_pre_tokenizer(name);
    if (!pre)
        return lmc_fail(message, LMC_ERR_MODEL_INVALID, "tokenizer: unsupported pre-tokenizer '%.*s'",
                        (int)LMC_MIN(name.size, 64), name.data);
    return compile_regexes(tok->bpe, pre, message);
}

void lmc_tok_bpe_free(lmc_tokenizer *tok) {
    if (tok->bpe)
        for (int r = 0; r < tok->bpe->n_regexes; r++) pcre2_code_free(tok->bpe->regexes[r]);
    free(tok->bpe);
    free(tok->merges.slots);
}

/* ---------------------------------------------------------------- the regex subject */

/* The text the regexes run on: valid UTF-8 always (PCRE2 requires it).
 * Invalid bytes read as U+FFFD and overlong forms as their code point, as
 * llama.cpp decodes them; surrogates (which llama.cpp keeps and PCRE2
 * rejects) stand as U+E000, another "other" character of the same length.
 * source[i] maps a subject offset to the input offset (NULL: the same). */
typedef struct {
    lmc_buf bytes;
    size_t *source;
} subject;

static const uint8_t replacement[3] = {0xEF, 0xBF, 0xBD};
static const uint8_t surrogate_stand_in[3] = {0xEE, 0x80, 0x80};

static int is_surrogate(uint32_t cp) { return cp >= 0xD800 && cp <= 0xDFFF; }

/* 1 if every sequence decodes, in canonical form. */
static int canonical_utf8(const uint8_t *text, size_t size) {
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        uint8_t canonical[4];
        size_t length = lmc_tok_utf8_lenient(text + i, size - i, &cp);
        if (length == 0 || lmc_tok_utf8_put(cp, canonical) != length) return 0;
        i += length;
    }
    return 1;
}

static lmc_status build_subject(const uint8_t *text, size_t size, subject *s) {
    int canonical = canonical_utf8(text, size);
    lmc_status status = lmc_buf_reserve(&s->bytes, canonical ? size : 3 * size);
    if (status != LMC_OK) return status;
    if (!canonical) {
        s->source = malloc((3 * size + 1) * sizeof *s->source);
        if (!s->source) return LMC_ERR_NOMEM;
    }
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        uint8_t encoded[4];
        size_t length = lmc_tok_utf8_lenient(text + i, size - i, &cp), n;
        const uint8_t *bytes = encoded;
        if (length == 0) {
            bytes = replacement, n = 3, length = 1;
        } else if (is_surrogate(cp)) {
            bytes = surrogate_stand_in, n = 3;
        } else {
            n = lmc_tok_utf8_put(cp, encoded);
        }
        if (s->source)
            for (size_t k = 0; k < n; k++) s->source[s->bytes.size + k] = i;
        memcpy(s->bytes.data + s->bytes.size, bytes, n);
        s->bytes.size += n;
        i += length;
    }
    if (s->source) s->source[s->bytes.size] = size;
    return LMC_OK;
}

/* llama.cpp's reading of text: invalid bytes become U+FFFD, overlong
 * forms their canonical spelling. */
static lmc_status llama_text(const uint8_t *text, size_t size, lmc_buf *out) {
    lmc_status status = LMC_OK;
    for (size_t i = 0; i < size && status == LMC_OK;) {
        uint32_t cp;
        uint8_t encoded[4];
        size_t length = lmc_tok_utf8_lenient(text + i, size - i, &cp);
        if (length == 0) {
            status = lmc_buf_append(out, replacement, 3);
            i += 1;
        } else {
            status = lmc_buf_append(out, encoded, lmc_tok_utf8_put(cp, encoded));
            i += length;
        }
    }
    return status;
}

/* ---------------------------------------------------------------- splitting */

typedef struct {
    size_t *ends; /* piece i is [ends[i-1], ends[i]) with ends[-1] = 0 */
    size_t size, capacity;
} piece_list;

static lmc_status pieces_push(piece_list *list, size_t end) {
    if (list->size == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 1024;
        size_t *ends = realloc(list->ends, capacity * sizeof *ends);
        if (!ends) return LMC_ERR_NOMEM;
        list->ends = ends;
        list->capacity = capacity;
    }
    list->ends[list->size++] = end;
    return LMC_OK;
}

/* Splits one piece by one regex: every match is a piece and so is every
 * run between matches. The regex sees only this piece, so lookarounds and
 * $ stop at its edges, as with llama.cpp's regex iterator. */
static lmc_status split_piece(const pcre2_code *regex, pcre2_match_data *match, const uint8_t *subj, size_t start,
                              size_t end, piece_list *out) {
    lmc_status status = LMC_OK;
    size_t done = start, pos = start;
    while (pos < end && status == LMC_OK) {
        int rc = pcre2_match(regex, subj + start, end - start, pos - start, PCRE2_NO_UTF_CHECK, match, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return LMC_ERR_INTERNAL;
        const PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(match);
        size_t match_start = start + ovector[0], match_end = start + ovector[1];
        if (match_start > done) status = pieces_push(out, match_start);
        if (status != LMC_OK) break;
        done = match_start;
        if (match_end > match_start) {
            status = pieces_push(out, match_end);
            done = pos = match_end;
        } else {
            /* An empty match only marks a boundary; move one character on. */
            pos = match_start + 1;
            while (pos < end && (subj[pos] & 0xC0) == 0x80) pos++;
        }
    }
    if (status == LMC_OK && done < end) status = pieces_push(out, end);
    return status;
}

static lmc_status pre_tokenize(const lmc_tok_bpe *bpe, const uint8_t *subj, size_t size, piece_list *pieces) {
    piece_list next = {0};
    pieces->size = 0;
    lmc_status status = size ? pieces_push(pieces, size) : LMC_OK;
    pcre2_match_data *match = pcre2_match_data_create(1, NULL);
    if (!match) status = LMC_ERR_NOMEM;
    for (int r = 0; r < bpe->n_regexes && status == LMC_OK && pieces->size > 0; r++) {
        next.size = 0;
        for (size_t p = 0; p < pieces->size && status == LMC_OK; p++)
            status = split_piece(bpe->regexes[r], match, subj, p ? pieces->ends[p - 1] : 0, pieces->ends[p], &next);
        piece_list swap = *pieces;
        *pieces = next;
        next = swap;
    }
    pcre2_match_data_free(match);
    free(next.ends);
    return status;
}

/* ---------------------------------------------------------------- BPE over one piece */

typedef struct {
    lmc_tok_symbol *symbols;
    size_t capacity;
    lmc_tok_heap heap;
} bpe_work;

static int bpe_pair(const void *ctx, const lmc_tok_symbol *symbols, int32_t left, int32_t right, uint32_t *priority,
                    int32_t *merged) {
    const lmc_tokenizer *tok = ctx;
    int32_t a = symbols[left].id, b = symbols[right].id;
    if (a < 0 || b < 0) return 0;
    const lmc_tok_pair_slot *slot = pair_find(&tok->merges, a, b);
    if (!slot) return 0;
    *priority = (uint32_t)slot->rank;
    *merged = slot->merged;
    return 1;
}

static lmc_status emit_word_symbol(const lmc_tokenizer *tok, const uint8_t *bytes, const lmc_tok_symbol *s,
                                   int lossless, lmc_tok_ids *out) {
    lmc_status status = LMC_OK;
    const uint8_t *text = bytes + s->offset;
    if (lossless) {
        if (s->id >= 0 && lmc_tok_emit_verified(tok, s->id, text, s->length, out, &status)) return status;
        return lmc_tok_emit_bytes(tok, text, s->length, out);
    }
    if (s->id >= 0) return lmc_tok_ids_push(out, s->id);
    /* llama.cpp emits the byte tokens it finds and drops the others. */
    for (uint32_t i = 0; i < s->length && status == LMC_OK; i++)
        if (tok->bpe->byte_id[text[i]] >= 0) status = lmc_tok_ids_push(out, tok->bpe->byte_id[text[i]]);
    return status;
}

static lmc_status encode_word(const lmc_tokenizer *tok, const uint8_t *bytes, size_t size, int lossless,
                              bpe_work *w, lmc_tok_ids *out) {
    lmc_status status = LMC_OK;
    if (tok->bpe->ignore_merges) {
        int32_t id = lmc_tok_map_find(tok, bytes, size);
        if (id >= 0 && !lossless) return lmc_tok_ids_push(out, id);
        if (id >= 0 && lmc_tok_emit_verified(tok, id, bytes, size, out, &status)) return status;
    }
    if (size > w->capacity) {
        lmc_tok_symbol *symbols = realloc(w->symbols, size * sizeof *symbols);
        if (!symbols) return LMC_ERR_NOMEM;
        w->symbols = symbols;
        w->capacity = size;
    }
    for (size_t i = 0; i < size; i++)
        w->symbols[i] = (lmc_tok_symbol){(uint32_t)i, 1, (uint32_t)i, 1, (int32_t)i - 1,
                                         i + 1 < size ? (int32_t)i + 1 : -1, tok->bpe->byte_id[bytes[i]], 0};
    status = lmc_tok_merge(w->symbols, size, &w->heap, bpe_pair, tok);
    for (int32_t i = 0; i != -1 && status == LMC_OK; i = w->symbols[i].next)
        status = emit_word_symbol(tok, bytes, &w->symbols[i], lossless, out);
    return status;
}

static lmc_status encode_pieces(const lmc_tokenizer *tok, const uint8_t *text, const subject *s,
                                const piece_list *pieces, int lossless, lmc_tok_ids *out) {
    bpe_work w = {0};
    lmc_status status = LMC_OK;
    for (size_t p = 0; p < pieces->size && status == LMC_OK; p++) {
        size_t start = p ? pieces->ends[p - 1] : 0, end = pieces->ends[p];
        if (s->source) {
            start = s->source[start];
            end = s->source[end];
        }
        if (end - start > UINT32_MAX / 2)
            status = LMC_ERR_UNSUPPORTED; /* symbol offsets are 32-bit */
        else
            status = encode_word(tok, text + start, end - start, lossless, &w, out);
    }
    free(w.symbols);
    lmc_tok_heap_free(&w.heap);
    return status;
}

lmc_status lmc_tok_bpe_encode(const lmc_tokenizer *tok, const uint8_t *text, size_t size, int lossless,
                              lmc_tok_ids *out) {
    lmc_buf llama;
    subject s = {{0}, NULL};
    piece_list pieces = {0};
    lmc_buf_init(&llama);
    lmc_buf_init(&s.bytes);
    lmc_status status = LMC_OK;
    if (!lossless) {
        status = llama_text(text, size, &llama);
        text = llama.data;
        size = llama.size;
    }
    if (status == LMC_OK) status = build_subject(text, size, &s);
    if (status == LMC_OK) status = pre_tokenize(tok->bpe, s.bytes.data, s.bytes.size, &pieces);
    if (status == LMC_OK) status = encode_pieces(tok, text, &s, &pieces, lossless, out);
    free(pieces.ends);
    free(s.source);
    lmc_buf_free(&s.bytes);
    lmc_buf_free(&llama);
    return status;
}
