/*
 * Tokenizers: conformance with llama.cpp on its own test vectors (real
 * GGUF vocabularies in shared/peer/gguf-vocab), the llama2.c tokenizer
 * against llama2.c's own token ids, lossless round trips of arbitrary bytes
 * and corpus slices, user-defined tokens, escapes, metadata, and speed.
 */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "test_util.h"

#define VOCAB_DIR LMC_TEST_SHARED_DIR "/peer/gguf-vocab"
#define LLAMA2C_DIR LMC_TEST_SHARED_DIR "/peer/llama2c"
#define CORPUS_DIR LMC_TEST_SHARED_DIR "/corpus/text"
#define TEST_SEPARATOR "\n__ggml_vocab_test__\n"

/* ---------------------------------------------------------------- helpers */

static int read_file(const char *path, lmc_buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) assert_int_equal(lmc_buf_append(out, chunk, n), LMC_OK);
    fclose(f);
    return 1;
}

static lmc_tokenizer *tokenizer_from_file(const char *path) {
    lmc_gguf *gguf;
    lmc_message message;
    lmc_tokenizer *tok = NULL;
    if (lmc_gguf_open(path, &gguf, &message) != LMC_OK) {
        fprintf(stderr, "%s: %s\n", path, message.text);
        return NULL;
    }
    if (lmc_tokenizer_from_gguf(gguf, &tok, &message) != LMC_OK) fprintf(stderr, "%s: %s\n", path, message.text);
    lmc_gguf_close(gguf);
    return tok;
}

/* Builds a tokenizer from a GGUF written in memory; the writer is freed. */
static lmc_status tokenizer_from_writer(lmc_gguf_writer *w, lmc_tokenizer **tok, lmc_message *message) {
    lmc_buf bytes;
    lmc_gguf *gguf;
    lmc_buf_init(&bytes);
    assert_int_equal(lmc_gguf_writer_write_buf(w, &bytes), LMC_OK);
    lmc_gguf_writer_free(w);
    assert_int_equal(lmc_gguf_open_memory(bytes.data, bytes.size, &gguf, message), LMC_OK);
    lmc_status status = lmc_tokenizer_from_gguf(gguf, tok, message);
    lmc_gguf_close(gguf);
    lmc_buf_free(&bytes);
    return status;
}

static void set_vocabulary(lmc_gguf_writer *w, const char *const *tokens, size_t n, const int32_t *types) {
    assert_int_equal(lmc_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", tokens, NULL, n), LMC_OK);
    if (types) assert_int_equal(lmc_gguf_writer_set_array(w, "tokenizer.ggml.token_type", LMC_GGUF_INT32, types, n), LMC_OK);
}

static void format_ids(const int32_t *ids, size_t n, lmc_buf *out) {
    char number[16];
    out->size = 0;
    for (size_t i = 0; i < n; i++) {
        int length = snprintf(number, sizeof number, i ? " %d" : "%d", ids[i]);
        assert_int_equal(lmc_buf_append(out, number, (size_t)length), LMC_OK);
    }
}

static void assert_round_trip(const lmc_tokenizer *tok, const uint8_t *data, size_t size) {
    int32_t *ids;
    size_t n;
    lmc_buf decoded;
    lmc_buf_init(&decoded);
    assert_int_equal(lmc_tokenizer_encode_lossless(tok, data, size, &ids, &n), LMC_OK);
    assert_int_equal(lmc_tokenizer_decode(tok, ids, n, &decoded), LMC_OK);
    assert_int_equal(decoded.size, size);
    if (size) assert_memory_equal(decoded.data, data, size);
    int covers = lmc_tokenizer_covers_all_bytes(tok);
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] < lmc_tokenizer_vocab_size(tok));
        if (covers) assert_false(LMC_TOKEN_IS_ESCAPE(ids[i]));
    }
    free(ids);
    lmc_buf_free(&decoded);
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- conformance */

static size_t trimmed(const char *line, size_t size, const char **start) {
    while (size && *line == ' ') line++, size--;
    while (size && line[size - 1] == ' ') size--;
    *start = line;
    return size;
}

/* Python's input.split(TEST_SEPARATOR) without the last (empty) piece,
 * each piece tokenized and compared with the matching line of X.out. */
static void check_vocab_file(const char *name, int *matched, int *total) {
    char path[1024];
    lmc_buf inp, out, got;
    lmc_buf_init(&inp), lmc_buf_init(&out), lmc_buf_init(&got);
    snprintf(path, sizeof path, "%s/%s", VOCAB_DIR, name);
    lmc_tokenizer *tok = tokenizer_from_file(path);
    assert_non_null(tok);
    snprintf(path, sizeof path, "%s/%s.inp", VOCAB_DIR, name);
    assert_true(read_file(path, &inp));
    snprintf(path, sizeof path, "%s/%s.out", VOCAB_DIR, name);
    assert_true(read_file(path, &out));
    const char *text = (const char *)inp.data, *end = text + inp.size;
    const char *line = (const char *)out.data, *lines_end = line + out.size;
    const size_t separator = strlen(TEST_SEPARATOR);
    int n = 0, ok = 0;
    for (;;) {
        const char *cut = memmem(text, (size_t)(end - text), TEST_SEPARATOR, separator);
        if (!cut) break; /* the piece after the last separator is empty */
        const char *newline = memchr(line, '\n', (size_t)(lines_end - line));
        assert_non_null(newline);
        int32_t *ids;
        size_t n_ids;
        assert_int_equal(lmc_tokenizer_encode(tok, (const uint8_t *)text, (size_t)(cut - text), &ids, &n_ids), LMC_OK);
        format_ids(ids, n_ids, &got);
        free(ids);
        const char *want;
        size_t want_size = trimmed(line, (size_t)(newline - line), &want);
        int same = want_size == got.size && memcmp(want, got.data, got.size) == 0;
        if (!same)
            fprintf(stderr, "%s #%d %.*s\n  want: %.*s\n  got:  %.*s\n", name, n, (int)(cut - text), text,
                    (int)want_size, want, (int)got.size, (const char *)got.data);
        ok += same;
        n++;
        text = cut + separator;
        line = newline + 1;
    }
    printf("conformance %s: %d/%d lines match\n", name, ok, n);
    *matched += ok;
    *total += n;
    lmc_tokenizer_free(tok);
    lmc_buf_free(&inp), lmc_buf_free(&out), lmc_buf_free(&got);
}

static void test_llama_cpp_vectors(void **state) {
    (void)state;
    DIR *dir = opendir(VOCAB_DIR);
    assert_non_null(dir);
    int matched = 0, total = 0, files = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length < 6 || strcmp(entry->d_name + length - 5, ".gguf") != 0) continue;
        check_vocab_file(entry->d_name, &matched, &total);
        files++;
    }
    closedir(dir);
    assert_true(files >= 4);
    assert_true(total > 0);
    assert_int_equal(matched, total);
}

/* ---------------------------------------------------------------- llama2.c */

/* The tokenizer of the GGUF that lmc_llama2c_convert makes of
 * stories260K.bin and tok512.bin. */
static lmc_tokenizer *llama2c_tokenizer(void) {
    char path[] = "/tmp/lmc_test_tokenizer_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    lmc_message message;
    lmc_status status = lmc_llama2c_convert(LLAMA2C_DIR "/stories260K.bin", LLAMA2C_DIR "/tok512.bin", path, &message);
    if (status != LMC_OK) fprintf(stderr, "llama2.c conversion: %s\n", message.text);
    assert_int_equal(status, LMC_OK);
    lmc_tokenizer *tok = tokenizer_from_file(path);
    unlink(path);
    assert_non_null(tok);
    return tok;
}

/* story.logits holds the ids llama2.c's encoder gave story.txt (after BOS). */
static void test_llama2c_tokenizer(void **state) {
    (void)state;
    lmc_tokenizer *tok = llama2c_tokenizer();
    lmc_buf story, logits;
    lmc_buf_init(&story), lmc_buf_init(&logits);
    assert_true(read_file(LLAMA2C_DIR "/story.txt", &story));
    assert_true(read_file(LLAMA2C_DIR "/story.logits", &logits));
    int32_t n_ref;
    memcpy(&n_ref, logits.data, 4);
    int32_t *ids;
    size_t n;
    assert_int_equal(lmc_tokenizer_encode(tok, story.data, story.size, &ids, &n), LMC_OK);
    assert_int_equal(n + 1, (size_t)n_ref);
    for (size_t i = 0; i < n; i++) {
        int32_t want;
        memcpy(&want, logits.data + 8 + 4 * (i + 1), 4);
        assert_int_equal(ids[i], want);
    }
    free(ids);
    assert_int_equal(lmc_tokenizer_bos(tok), 1);
    assert_string_equal(lmc_tokenizer_type_name(tok), "llama");
    assert_int_equal(lmc_tokenizer_vocab_size(tok), 512);
    assert_true(lmc_tokenizer_covers_all_bytes(tok));
    assert_round_trip(tok, story.data, story.size);
    lmc_tokenizer_free(tok);
    lmc_buf_free(&story), lmc_buf_free(&logits);
}

/* ---------------------------------------------------------------- lossless */

/* Byte strings that stress the edges: invalid and overlong UTF-8, encoded
 * surrogates, code points past U+10FFFF, NUL, "▁", CR LF, runs of spaces. */
static size_t fill_nasty(uint8_t *out, size_t capacity, uint64_t *rng) {
    static const char *const parts[] = {
        " ", "  ", "   ", "\t", "\r\n", "\n", "\n\n", "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81", "\xED\xA0\x80",
        "\xED\xBF\xBF", "\xC0\xAF", "\xC1\x81", "\xE0\x80\xAF", "\xF0\x80\x80\xAF", "\xF4\x90\x80\x80",
        "\xF7\xBF\xBF\xBF", "\xFF", "\xFE", "\x80", "\xBF", "\xC3", "\xE2\x96", "\xF0\x9F\x98", "\xEF\xBF\xBD",
        "\xF0\x9F\x98\x81", "\xE4\xBD\xA0\xE5\xA5\xBD", "\xC3\xA9t\xC3\xA9", "\xD0\xBF\xD1\x80\xD0\xB8", "'s",
        "'LL", "Hello", " world", "1234567", "<s>", "</s>", "<unk>", "<|endoftext|>", "\xC2\xA0", "\xE3\x80\x80",
        "\xC2\x85", "\xE1\xA0\x8E", "...", "!!", "\0", "\x1F", "\x7F", "a", "\xCC\x81", "\xE2\x80\x8D"};
    size_t size = 0, target = (size_t)(test_rng(rng) % capacity);
    while (size < target) {
        uint64_t r = test_rng(rng);
        if (r % 5 == 0) {
            out[size++] = (uint8_t)(r >> 40);
            continue;
        }
        const char *part = parts[(r >> 8) % (sizeof parts / sizeof parts[0])];
        size_t length = part[0] ? strlen(part) : 1;
        for (size_t i = 0; i < length && size < capacity; i++) out[size++] = (uint8_t)part[i];
    }
    return size;
}

static void round_trip_many(const lmc_tokenizer *tok, int count, uint64_t seed) {
    uint64_t rng = seed;
    uint8_t data[600];
    for (int i = 0; i < count; i++) {
        size_t size = fill_nasty(data, sizeof data, &rng);
        assert_round_trip(tok, data, size);
        test_fill_random(data, size, seed + (uint64_t)i);
        assert_round_trip(tok, data, size);
    }
}

static void test_lossless_vocab_files(void **state) {
    (void)state;
    static const char *const names[] = {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-bpe.gguf",
                                        "ggml-vocab-llama-spm.gguf", "ggml-vocab-starcoder.gguf"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", VOCAB_DIR, names[f]);
        lmc_tokenizer *tok = tokenizer_from_file(path);
        assert_non_null(tok);
        /* StarCoder's vocabulary has no token for bytes that never occur in
         * UTF-8 (C0, C1, F5-FF) nor for F1: those become escapes. */
        assert_int_equal(lmc_tokenizer_covers_all_bytes(tok), strstr(names[f], "starcoder") == NULL);
        round_trip_many(tok, 150, 1000 + f);
        lmc_tokenizer_free(tok);
    }
    lmc_tokenizer *tok = llama2c_tokenizer();
    round_trip_many(tok, 150, 77);
    lmc_tokenizer_free(tok);
}

/* The sorted piece index of the mixed codec: pieces strictly increasing in
 * byte order, every byte a one-byte piece, each id's canonical id spelling
 * the same bytes (SentencePiece's byte tokens <0x41> and "A" collapse). */
static void check_piece_index(const lmc_tokenizer *tok) {
    lmc_piece_index ix;
    assert_int_equal(lmc_piece_index_build(tok, lmc_tokenizer_vocab_size(tok), &ix), LMC_OK);
    assert_true(ix.count > 256);
    int single_bytes = 0;
    for (int i = 0; i < ix.count; i++) {
        uint32_t length = ix.offset[i + 1] - ix.offset[i];
        assert_true(length > 0);
        single_bytes += length == 1;
        assert_int_equal(ix.rank[ix.sorted_ids[i]], i);
        if (i == 0)
            continue;
        uint32_t previous = ix.offset[i] - ix.offset[i - 1];
        int c = memcmp(ix.bytes + ix.offset[i - 1], ix.bytes + ix.offset[i], LMC_MIN(previous, length));
        assert_true(c < 0 || (c == 0 && previous < length));
    }
    assert_int_equal(single_bytes, 256);
    for (int id = 0; id < ix.vocab; id++) {
        int32_t canonical = ix.canonical[id];
        if (canonical < 0)
            continue;
        assert_true(canonical <= id);
        lmc_buf piece;
        lmc_buf_init(&piece);
        assert_int_equal(lmc_tokenizer_piece(tok, id, &piece), LMC_OK);
        int r = ix.rank[canonical];
        assert_int_equal(piece.size, ix.offset[r + 1] - ix.offset[r]);
        assert_memory_equal(piece.data, ix.bytes + ix.offset[r], piece.size);
        lmc_buf_free(&piece);
    }
    lmc_piece_index_free(&ix);
}

static void test_piece_index(void **state) {
    (void)state;
    static const char *const names[] = {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-bpe.gguf",
                                        "ggml-vocab-llama-spm.gguf"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", VOCAB_DIR, names[f]);
        lmc_tokenizer *tok = tokenizer_from_file(path);
        assert_non_null(tok);
        check_piece_index(tok);
        lmc_tokenizer_free(tok);
    }
}

/* Lossless coding of valid text agrees with llama.cpp's: BPE exactly,
 * SentencePiece once the dummy prefix is written out. */
static void test_lossless_matches_plain_encoding(void **state) {
    (void)state;
    static const char *const names[] = {"ggml-vocab-llama-bpe.gguf", "ggml-vocab-llama-spm.gguf"};
    const char *text = "  Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3\n\n\t 3333 x ";
    for (size_t f = 0; f < 2; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", VOCAB_DIR, names[f]);
        lmc_tokenizer *tok = tokenizer_from_file(path);
        assert_non_null(tok);
        int32_t *plain, *lossless;
        size_t n_plain, n_lossless;
        uint8_t buffer[256] = " ";
        size_t size = strlen(text), offset = f == 1; /* SentencePiece: " " + text */
        memcpy(buffer + offset, text, size);
        assert_int_equal(lmc_tokenizer_encode(tok, (const uint8_t *)text, size, &plain, &n_plain), LMC_OK);
        assert_int_equal(lmc_tokenizer_encode_lossless(tok, buffer, size + offset, &lossless, &n_lossless), LMC_OK);
        assert_int_equal(n_plain, n_lossless);
        assert_memory_equal(plain, lossless, n_plain * sizeof *plain);
        free(plain), free(lossless);
        lmc_tokenizer_free(tok);
    }
}

static void test_lossless_corpus_slices(void **state) {
    (void)state;
    static const char *const files[] = {"alice29.txt", "code_lua.c", "enwiki_head3M.xml", "world192.txt",
                                        "medical_bc5cdr_sample.txt", "code_gensim_models.py"};
    static const char *const vocabs[] = {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-bpe.gguf",
                                         "ggml-vocab-llama-spm.gguf"};
    lmc_tokenizer *toks[3];
    for (int v = 0; v < 3; v++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", VOCAB_DIR, vocabs[v]);
        toks[v] = tokenizer_from_file(path);
        assert_non_null(toks[v]);
    }
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024];
        lmc_buf data;
        lmc_buf_init(&data);
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, files[f]);
        assert_true(read_file(path, &data));
        size_t slice = LMC_MIN(data.size, (size_t)40000), start = (data.size - slice) / 3;
        for (int v = 0; v < 3; v++) assert_round_trip(toks[v], data.data + start, slice);
        lmc_buf_free(&data);
    }
    for (int v = 0; v < 3; v++) lmc_tokenizer_free(toks[v]);
}

/* ---------------------------------------------------------------- small vocabularies */

/* A byte-level BPE vocabulary without most bytes, with a user-defined and a
 * control token: escapes, the user-defined split and merges by rank. */
static lmc_tokenizer *small_bpe(void) {
    static const char *const tokens[] = {"h", "e", "l", "o", "\xC4\xA0", "he", "ll", "hell", "hello",
                                         "\xC4\xA0hello", "<|user|>", "<|endoftext|>", "x"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 3, 1};
    static const char *const merges[] = {"l l", "h e", "he ll", "hell o", "\xC4\xA0 hello"};
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    assert_int_equal(lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2"), LMC_OK);
    set_vocabulary(w, tokens, sizeof tokens / sizeof tokens[0], types);
    assert_int_equal(lmc_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", merges, NULL, 5), LMC_OK);
    lmc_tokenizer *tok;
    lmc_message message;
    assert_int_equal(tokenizer_from_writer(w, &tok, &message), LMC_OK);
    return tok;
}

static void assert_ids(const int32_t *ids, size_t n, const int32_t *want, size_t n_want) {
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, n * sizeof *ids);
}

static void test_small_bpe(void **state) {
    (void)state;
    lmc_tokenizer *tok = small_bpe();
    const char *text = "hello hello<|user|>x<|endoftext|>!";
    int32_t *ids;
    size_t n;
    /* "hello" " hello" <|user|> "x" "<|" "endoftext" "|>!": the control
     * token is plain text, and bytes without tokens (<, |, n, d, ...) are
     * dropped, as llama.cpp does. */
    assert_int_equal(lmc_tokenizer_encode(tok, (const uint8_t *)text, strlen(text), &ids, &n), LMC_OK);
    static const int32_t want[] = {8, 9, 10, 12, 1, 3, 1, 12};
    assert_ids(ids, n, want, 8);
    free(ids);
    assert_int_equal(lmc_tokenizer_encode_lossless(tok, (const uint8_t *)text, strlen(text), &ids, &n), LMC_OK);
    assert_int_equal(ids[0], 8);
    assert_int_equal(ids[1], 9);
    assert_int_equal(ids[2], 10);
    assert_int_equal(ids[3], 12);
    assert_int_equal(ids[4], LMC_TOKEN_ESCAPE('<'));
    assert_int_equal(ids[n - 1], LMC_TOKEN_ESCAPE('!'));
    free(ids);
    assert_false(lmc_tokenizer_covers_all_bytes(tok));
    assert_int_equal(lmc_tokenizer_bos(tok), -1);
    assert_string_equal(lmc_tokenizer_type_name(tok), "gpt2");
    round_trip_many(tok, 100, 5);
    lmc_tokenizer_free(tok);
}

/* A SentencePiece vocabulary with a few byte tokens, scores that pick the
 * merge order, and no dummy prefix. */
static void test_small_spm(void **state) {
    (void)state;
    static const char *const tokens[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xE2\x96\x81", "a", "b",
                                         "ab",    ("\xE2\x96\x81" "a"), ("\xE2\x96\x81" "ab"), "c", "bc"};
    static const int32_t types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1};
    static const float scores[] = {0, 0, 0, 0, -1, -2, -3, -4, -5, -6, -7, -0.5f};
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    assert_int_equal(lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"), LMC_OK);
    set_vocabulary(w, tokens, 12, types);
    assert_int_equal(lmc_gguf_writer_set_array(w, "tokenizer.ggml.scores", LMC_GGUF_FLOAT32, scores, 12), LMC_OK);
    assert_int_equal(lmc_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", 0), LMC_OK);
    lmc_tokenizer *tok;
    lmc_message message;
    assert_int_equal(tokenizer_from_writer(w, &tok, &message), LMC_OK);
    int32_t *ids;
    size_t n;
    /* "abc": "bc" (score -0.5) beats "ab" (-4); then "a" "bc". " ab": "▁a"
     * (-5) vs "ab" (-4): "ab" first, then "▁ab" (-6). "A" is <0x41>. */
    assert_int_equal(lmc_tokenizer_encode(tok, (const uint8_t *)"abc ab A", 8, &ids, &n), LMC_OK);
    static const int32_t want[] = {5, 11, 9, 4, 3};
    assert_ids(ids, n, want, 5);
    free(ids);
    assert_int_equal(lmc_tokenizer_bos(tok), 1);
    assert_false(lmc_tokenizer_covers_all_bytes(tok));
    round_trip_many(tok, 100, 9);
    lmc_tokenizer_free(tok);
}

static void test_lmc_bytes(void **state) {
    (void)state;
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    assert_int_equal(lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", "lmc-bytes"), LMC_OK);
    lmc_tokenizer *tok;
    lmc_message message;
    assert_int_equal(tokenizer_from_writer(w, &tok, &message), LMC_OK);
    assert_int_equal(lmc_tokenizer_vocab_size(tok), 256);
    assert_string_equal(lmc_tokenizer_type_name(tok), "lmc-bytes");
    assert_true(lmc_tokenizer_covers_all_bytes(tok));
    assert_int_equal(lmc_tokenizer_bos(tok), -1);
    int32_t *ids;
    size_t n;
    assert_int_equal(lmc_tokenizer_encode(tok, (const uint8_t *)"\0\xFF" "a", 3, &ids, &n), LMC_OK);
    static const int32_t want[] = {0, 255, 'a'};
    assert_ids(ids, n, want, 3);
    free(ids);
    round_trip_many(tok, 50, 3);
    lmc_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- pieces, errors */

static void test_pieces(void **state) {
    (void)state;
    lmc_tokenizer *tok = tokenizer_from_file(VOCAB_DIR "/ggml-vocab-llama-spm.gguf");
    assert_non_null(tok);
    lmc_buf piece;
    lmc_buf_init(&piece);
    assert_int_equal(lmc_tokenizer_piece(tok, 13, &piece), LMC_OK); /* <0x0A> */
    assert_int_equal(lmc_tokenizer_piece(tok, 15043, &piece), LMC_OK); /* "▁Hello" */
    assert_int_equal(lmc_tokenizer_piece(tok, 1, &piece), LMC_OK);     /* <s>: no text */
    assert_int_equal(lmc_tokenizer_piece(tok, LMC_TOKEN_ESCAPE(0xAB), &piece), LMC_OK);
    assert_int_equal(piece.size, 8);
    assert_memory_equal(piece.data, "\n Hello\xAB", 8);
    assert_int_equal(lmc_tokenizer_piece(tok, 32000, &piece), LMC_ERR_CORRUPT);
    assert_int_equal(lmc_tokenizer_piece(tok, LMC_TOKEN_ESCAPE(256), &piece), LMC_ERR_CORRUPT);
    assert_int_equal(lmc_tokenizer_vocab_size(tok), 32000);
    assert_int_equal(lmc_tokenizer_bos(tok), 1);
    lmc_tokenizer_free(tok);
    tok = tokenizer_from_file(VOCAB_DIR "/ggml-vocab-gpt-2.gguf");
    assert_non_null(tok);
    piece.size = 0;
    assert_int_equal(lmc_tokenizer_piece(tok, 220, &piece), LMC_OK); /* "Ġ" */
    assert_int_equal(lmc_tokenizer_piece(tok, 50256, &piece), LMC_OK); /* <|endoftext|>: control */
    assert_int_equal(piece.size, 1);
    assert_int_equal(piece.data[0], ' ');
    assert_int_equal(lmc_tokenizer_bos(tok), 50256);
    assert_int_equal(lmc_tokenizer_vocab_size(tok), 50257);
    lmc_tokenizer_free(tok);
    lmc_buf_free(&piece);
}

static lmc_status load_with(const char *model, const char *pre) {
    static const char *const tokens[] = {"a", "b"};
    static const char *const merges[] = {"a b"};
    lmc_gguf_writer *w = lmc_gguf_writer_create();
    if (model) assert_int_equal(lmc_gguf_writer_set_str(w, "tokenizer.ggml.model", model), LMC_OK);
    if (pre) assert_int_equal(lmc_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre), LMC_OK);
    set_vocabulary(w, tokens, 2, NULL);
    assert_int_equal(lmc_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", merges, NULL, 1), LMC_OK);
    lmc_tokenizer *tok = NULL;
    lmc_message message;
    lmc_status status = tokenizer_from_writer(w, &tok, &message);
    if (status != LMC_OK) assert_null(tok);
    lmc_tokenizer_free(tok);
    return status;
}

static void test_metadata_errors(void **state) {
    (void)state;
    assert_int_equal(load_with(NULL, NULL), LMC_ERR_MODEL_INVALID);
    assert_int_equal(load_with("bert", NULL), LMC_ERR_MODEL_INVALID);
    assert_int_equal(load_with("gpt2", "no-such-pre"), LMC_ERR_MODEL_INVALID);
    static const char *const pres[] = {NULL,           "default", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm",
                                       "deepseek-coder", "falcon", "starcoder", "dbrx"};
    for (size_t p = 0; p < sizeof pres / sizeof pres[0]; p++) assert_int_equal(load_with("gpt2", pres[p]), LMC_OK);
}

/* ---------------------------------------------------------------- speed */

static void measure_speed(const char *vocab, const lmc_buf *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", VOCAB_DIR, vocab);
    lmc_tokenizer *tok = tokenizer_from_file(path);
    assert_non_null(tok);
    int32_t *ids;
    size_t n;
    double start = seconds_now();
    assert_int_equal(lmc_tokenizer_encode_lossless(tok, text->data, text->size, &ids, &n), LMC_OK);
    double elapsed = seconds_now() - start;
    printf("speed %s: %zu bytes -> %zu tokens in %.3f s (%.2f MB/s)\n", vocab, text->size, n, elapsed,
           text->size / 1e6 / elapsed);
    assert_true(elapsed < 10.0); /* far above the expected ~0.1-0.5 s, for sanitizer builds */
    free(ids);
    lmc_tokenizer_free(tok);
}

static void test_speed_one_megabyte(void **state) {
    (void)state;
    lmc_buf text;
    lmc_buf_init(&text);
    assert_true(read_file(CORPUS_DIR "/enwiki_head3M.xml", &text));
    text.size = 1000000;
    measure_speed("ggml-vocab-llama-bpe.gguf", &text);
    measure_speed("ggml-vocab-gpt-2.gguf", &text);
    measure_speed("ggml-vocab-llama-spm.gguf", &text);
    /* Pathological pieces: one long word and one long run of spaces. */
    text.size = 400000;
    memset(text.data, 'a', text.size / 2);
    memset(text.data + text.size / 2, ' ', text.size / 2);
    measure_speed("ggml-vocab-llama-bpe.gguf", &text);
    measure_speed("ggml-vocab-llama-spm.gguf", &text);
    lmc_buf_free(&text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_cpp_vectors),
        cmocka_unit_test(test_llama2c_tokenizer),
        cmocka_unit_test(test_lossless_vocab_files),
        cmocka_unit_test(test_lossless_matches_plain_encoding),
        cmocka_unit_test(test_lossless_corpus_slices),
        cmocka_unit_test(test_small_bpe),
        cmocka_unit_test(test_small_spm),
        cmocka_unit_test(test_lmc_bytes),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_piece_index),
        cmocka_unit_test(test_metadata_errors),
        cmocka_unit_test(test_speed_one_megabyte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
