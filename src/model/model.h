/*
 * The model stage: GGUF files, tokenizers, and the models built from them
 * (Llama-family transformers run by src/nn, and the classical --fast
 * context-mixing model).
 */
#ifndef LMC_MODEL_H
#define LMC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "nn/nn.h"

/* ======================= GGUF (v2 and v3) ======================= */

typedef enum {
    LMC_GGUF_UINT8 = 0, LMC_GGUF_INT8 = 1, LMC_GGUF_UINT16 = 2, LMC_GGUF_INT16 = 3,
    LMC_GGUF_UINT32 = 4, LMC_GGUF_INT32 = 5, LMC_GGUF_FLOAT32 = 6, LMC_GGUF_BOOL = 7,
    LMC_GGUF_STRING = 8, LMC_GGUF_ARRAY = 9, LMC_GGUF_UINT64 = 10, LMC_GGUF_INT64 = 11,
    LMC_GGUF_FLOAT64 = 12
} lmc_gguf_value_type;

/* ggml tensor types that lmc reads (numbering as in ggml). */
typedef enum {
    LMC_GGML_F32 = 0, LMC_GGML_F16 = 1, LMC_GGML_Q4_0 = 2, LMC_GGML_Q4_1 = 3,
    LMC_GGML_Q5_0 = 6, LMC_GGML_Q5_1 = 7, LMC_GGML_Q8_0 = 8, LMC_GGML_Q8_1 = 9,
    LMC_GGML_Q2_K = 10, LMC_GGML_Q3_K = 11, LMC_GGML_Q4_K = 12, LMC_GGML_Q5_K = 13,
    LMC_GGML_Q6_K = 14, LMC_GGML_Q8_K = 15, LMC_GGML_I8 = 24, LMC_GGML_I16 = 25,
    LMC_GGML_I32 = 26, LMC_GGML_I64 = 27, LMC_GGML_F64 = 28, LMC_GGML_BF16 = 30
} lmc_ggml_type;

typedef struct {
    const char *data; /* not NUL-terminated */
    uint64_t size;
} lmc_gguf_string;

typedef struct {
    const char *name;         /* NUL-terminated copy */
    lmc_ggml_type type;
    uint32_t n_dims;
    uint64_t ne[4];           /* ne[0] is the contiguous (column) dimension, as in ggml */
    uint64_t n_elements;
    const void *data;         /* inside the mapped file, bounds-checked */
    uint64_t n_bytes;
} lmc_gguf_tensor;

typedef struct lmc_gguf lmc_gguf;

/* Maps and parses a file; every offset and size is checked. */
lmc_status lmc_gguf_open(const char *path, lmc_gguf **out, lmc_message *message);
/* Parses a buffer the caller keeps alive (fuzzing, tests). */
lmc_status lmc_gguf_open_memory(const void *data, size_t size, lmc_gguf **out, lmc_message *message);
void lmc_gguf_close(lmc_gguf *gguf);

uint32_t lmc_gguf_version(const lmc_gguf *gguf);
/* The whole file (for hashing). */
const uint8_t *lmc_gguf_bytes(const lmc_gguf *gguf, size_t *size);

/* Metadata. Index of key or -1. Typed getters return 0 and fill *out on a
 * match of key and type (integers of any width convert where the value fits). */
int lmc_gguf_find(const lmc_gguf *gguf, const char *key);
int lmc_gguf_n_kv(const lmc_gguf *gguf);
const char *lmc_gguf_key(const lmc_gguf *gguf, int index);
lmc_gguf_value_type lmc_gguf_type(const lmc_gguf *gguf, int index);
int lmc_gguf_get_u64(const lmc_gguf *gguf, const char *key, uint64_t *out);
int lmc_gguf_get_u32(const lmc_gguf *gguf, const char *key, uint32_t *out);
int lmc_gguf_get_f32(const lmc_gguf *gguf, const char *key, float *out);
int lmc_gguf_get_bool(const lmc_gguf *gguf, const char *key, int *out);
int lmc_gguf_get_str(const lmc_gguf *gguf, const char *key, lmc_gguf_string *out);
/* Arrays: element type and count; element access for numeric and string arrays. */
int lmc_gguf_get_array(const lmc_gguf *gguf, const char *key, lmc_gguf_value_type *elem_type, uint64_t *count);
lmc_gguf_string lmc_gguf_array_str(const lmc_gguf *gguf, const char *key, uint64_t i);
double lmc_gguf_array_num(const lmc_gguf *gguf, const char *key, uint64_t i);
const void *lmc_gguf_array_data(const lmc_gguf *gguf, const char *key); /* numeric arrays only */

int lmc_gguf_n_tensors(const lmc_gguf *gguf);
const lmc_gguf_tensor *lmc_gguf_tensor_at(const lmc_gguf *gguf, int index);
const lmc_gguf_tensor *lmc_gguf_tensor_find(const lmc_gguf *gguf, const char *name);
const char *lmc_ggml_type_name(lmc_ggml_type type);

/* Dequantises any supported tensor type to float32 (n_elements values). */
lmc_status lmc_tensor_to_f32(const lmc_gguf_tensor *tensor, float *out, lmc_message *message);
/* Dequantises rows [first_row, first_row + n_rows) (a row is ne[0] values). */
lmc_status lmc_tensor_rows_to_f32(const lmc_gguf_tensor *tensor, uint64_t first_row, uint64_t n_rows, float *out,
                                  lmc_message *message);
/* Values per block and bytes per block of a type; 0 for types lmc does not know. */
uint32_t lmc_ggml_block_elements(lmc_ggml_type type);
uint32_t lmc_ggml_block_bytes(lmc_ggml_type type);
/* IEEE binary16 to float, exact. */
float lmc_half_to_float(uint16_t half);

/* GGUF writer (tests, converters): collects key/values and tensors, then
 * writes a v3 file with 32-byte alignment. */
typedef struct lmc_gguf_writer lmc_gguf_writer;
lmc_gguf_writer *lmc_gguf_writer_create(void);
void lmc_gguf_writer_free(lmc_gguf_writer *w);
lmc_status lmc_gguf_writer_set_u32(lmc_gguf_writer *w, const char *key, uint32_t v);
lmc_status lmc_gguf_writer_set_f32(lmc_gguf_writer *w, const char *key, float v);
lmc_status lmc_gguf_writer_set_bool(lmc_gguf_writer *w, const char *key, int v);
lmc_status lmc_gguf_writer_set_str(lmc_gguf_writer *w, const char *key, const char *v);
/* Any fixed-size scalar type; value points to one value of that C type. */
lmc_status lmc_gguf_writer_set_scalar(lmc_gguf_writer *w, const char *key, lmc_gguf_value_type type,
                                      const void *value);
lmc_status lmc_gguf_writer_set_array(lmc_gguf_writer *w, const char *key, lmc_gguf_value_type elem_type,
                                     const void *values, uint64_t count); /* numeric */
lmc_status lmc_gguf_writer_set_str_array(lmc_gguf_writer *w, const char *key, const char *const *strings,
                                         const uint64_t *lengths, uint64_t count);
/* data is copied; n_bytes must match type and dims. */
lmc_status lmc_gguf_writer_add_tensor(lmc_gguf_writer *w, const char *name, lmc_ggml_type type, uint32_t n_dims,
                                      const uint64_t *ne, const void *data, uint64_t n_bytes);
lmc_status lmc_gguf_writer_write(lmc_gguf_writer *w, const char *path);
/* The same file appended to a buffer. */
lmc_status lmc_gguf_writer_write_buf(lmc_gguf_writer *w, lmc_buf *out);

/* ======================= Tokenizers ======================= */

/* Raw bytes a vocabulary cannot represent appear in token streams as
 * LMC_TOKEN_ESCAPE(byte) (negative ids); the block coder escapes them. */
#define LMC_TOKEN_ESCAPE(byte) (-1 - (int32_t)(byte))
#define LMC_TOKEN_IS_ESCAPE(id) ((id) < 0)
#define LMC_TOKEN_ESCAPED_BYTE(id) ((uint8_t)(-1 - (id)))

typedef struct lmc_tokenizer lmc_tokenizer;

/* From tokenizer.ggml.* metadata: "gpt2" (byte-level BPE with
 * tokenizer.ggml.pre), "llama" (SentencePiece), "lmc-bytes" (id = byte). */
lmc_status lmc_tokenizer_from_gguf(const lmc_gguf *gguf, lmc_tokenizer **out, lmc_message *message);
void lmc_tokenizer_free(lmc_tokenizer *tok);
int lmc_tokenizer_vocab_size(const lmc_tokenizer *tok);
const char *lmc_tokenizer_type_name(const lmc_tokenizer *tok);
/* Token ids exactly as llama.cpp's llama_tokenize(add_special=false,
 * parse_special=false) gives them (the conformance contract). */
lmc_status lmc_tokenizer_encode(const lmc_tokenizer *tok, const uint8_t *text, size_t size,
                                int32_t **ids, size_t *n_ids);
/* Lossless encoding for compression: decode(encode_lossless(x)) == x for
 * every byte string, using LMC_TOKEN_ESCAPE where nothing else works. */
lmc_status lmc_tokenizer_encode_lossless(const lmc_tokenizer *tok, const uint8_t *data, size_t size,
                                         int32_t **ids, size_t *n_ids);
/* Appends the bytes of ids (escapes included) to out. */
lmc_status lmc_tokenizer_decode(const lmc_tokenizer *tok, const int32_t *ids, size_t n_ids, lmc_buf *out);
/* The bytes of one token (for incremental decoding); escapes give one byte. */
lmc_status lmc_tokenizer_piece(const lmc_tokenizer *tok, int32_t id, lmc_buf *out);
/* 1 if encode_lossless never emits escapes (byte tokens cover all 256 bytes). */
int lmc_tokenizer_covers_all_bytes(const lmc_tokenizer *tok);
int32_t lmc_tokenizer_bos(const lmc_tokenizer *tok); /* -1 if none */

/* The vocabulary's pieces sorted by their bytes (pieces.c), for coding a
 * token as its bytes: the tokens starting with a byte prefix form one run
 * [lo, hi) of the sorted list. Equal pieces collapse to their smallest id;
 * tokens without bytes are left out. */
typedef struct {
    int count;             /* distinct non-empty pieces */
    int vocab;             /* ids covered by canonical and rank */
    int32_t *sorted_ids;   /* [count] the id standing for each piece, in byte order */
    uint32_t *offset;      /* [count + 1] sorted piece i is bytes[offset[i] .. offset[i + 1]) */
    uint8_t *bytes;
    int32_t *canonical;    /* [vocab] the id standing for this id's bytes, -1 if it has none */
    int32_t *rank;         /* [vocab] position of that id in sorted_ids, -1 if none */
} lmc_piece_index;

/* Bytes of sorted piece i. */
static inline uint32_t lmc_piece_length(const lmc_piece_index *index, int i) {
    return index->offset[i + 1] - index->offset[i];
}

/* Indexes the first `vocab` ids (at most the tokenizer's vocabulary). */
lmc_status lmc_piece_index_build(const lmc_tokenizer *tok, int vocab, lmc_piece_index *out);
void lmc_piece_index_free(lmc_piece_index *index);

/* ======================= Models ======================= */

/* What a model file's general.architecture asks the engine to run: a
 * Llama-family transformer over tokens, or one of lmc's sample models for
 * media (no tokenizer; the sample coder reads its own tensors from gguf). */
typedef enum { LMC_FAMILY_LLAMA = 0, LMC_FAMILY_IMAGE, LMC_FAMILY_AUDIO } lmc_model_family;

typedef struct lmc_model {
    char name[64];               /* general.name, else the file's base name */
    char path[1024];
    uint8_t hash[16];            /* lmc_hash128 of the whole file */
    uint64_t file_size;
    lmc_kind kind;               /* lmc.default_kind metadata, else LMC_KIND_AUTO */
    char architecture[32];       /* general.architecture */
    lmc_model_family family;
    lmc_gguf *gguf;
    lmc_gguf *base_gguf;         /* an overlay's base model file (NULL otherwise) */
    lmc_tokenizer *tokenizer;
    lmc_llama llama;             /* weights for the engine */
    void *owned;                 /* buffers the loader allocated (converted weights) */
    uint32_t default_block_size; /* lmc.block_size, else 1 MiB */
    uint32_t context_window;     /* tokens of context used when coding (<= llama.context_length) */
    uint32_t window_stride;      /* new tokens per window once the window is full */
} lmc_model;

/* Loads a GGUF model for coding. memlimit (0: none) bounds the converted
 * weights; LMC_ERR_MEMLIMIT if they would exceed it. Unknown architectures
 * give LMC_ERR_MODEL_INVALID with a message naming them. */
lmc_status lmc_model_load(const char *path, uint64_t memlimit, lmc_model **out, lmc_message *message);
void lmc_model_free(lmc_model *model);
/* lmc_model_load without the tokenizer (model->tokenizer stays NULL), for
 * tools and tests that work on token ids. */
lmc_status lmc_model_load_weights(const char *path, uint64_t memlimit, lmc_model **out, lmc_message *message);

/* Overlays (docs/MODELS.md): a GGUF whose lmc.base_model_hash names another
 * model file holds that model's metadata and only the tensors it replaces;
 * every other tensor comes from the base. The model's identity (hash) is the
 * overlay file's. lmc_model_base_of returns 1 and the base's name and hash
 * for an overlay, 0 for a plain model, -1 if the file cannot be read or the
 * hash is malformed (message set). */
int lmc_model_base_of(const char *path, char *name, size_t name_size, uint8_t hash[16], lmc_message *message);
lmc_status lmc_model_load_overlay(const char *path, const char *base_path, uint64_t memlimit, lmc_model **out,
                                  lmc_message *message);

/* Converts a llama2.c checkpoint and tokenizer (karpathy/llama2.c run.c
 * formats) into a Llama GGUF with F32 weights (docs/MODELS.md). */
lmc_status lmc_llama2c_convert(const char *checkpoint_path, const char *tokenizer_path, const char *gguf_path,
                               lmc_message *message);

/* ======================= --fast context-mixing model ======================= */

/* Codes a block with the classical adaptive model (no network); state starts
 * fresh for every block. */
lmc_status lmc_cm_compress(const uint8_t *data, size_t size, lmc_buf *out);
/* Decodes exactly `size` bytes; LMC_ERR_CORRUPT if the payload is inconsistent. */
lmc_status lmc_cm_decompress(const uint8_t *payload, size_t payload_size, uint8_t *out, size_t size);
/* Bytes of working memory one compress or decompress call allocates for a
 * block of `size` bytes (under 100 MiB for any size), for memory limits. */
size_t lmc_cm_memory(size_t size);

/* The same model coding a block bit by bit with a neural model's prediction
 * as one more mixer input (the mixed codec, src/lib/mixcodec.c). `history`
 * is where the block's bytes appear as they are coded (size bytes). For each
 * bit: lmc_cm_predict_bit (P(1) * 65536 in [1, 65535], given the neural
 * model's), then lmc_cm_update_bit; after 8 bits, lmc_cm_end_byte once the
 * byte is in history. */
typedef struct lmc_cm lmc_cm;
/* The mixed codec's models: V1 for codec 2, V2 for codec 4 (docs/FORMAT.md). */
enum { LMC_CM_MIXED_V1 = 1, LMC_CM_MIXED_V2 = 2 };
lmc_status lmc_cm_open(size_t size, const uint8_t *history, int version, lmc_cm **out);
/* Memory lmc_cm_open takes for a block of `size` bytes, either version. */
size_t lmc_cm_mixed_memory(size_t size);
uint32_t lmc_cm_predict_bit(lmc_cm *cm, uint32_t model_p16);
void lmc_cm_update_bit(lmc_cm *cm, int bit);
void lmc_cm_end_byte(lmc_cm *cm, uint32_t byte);
/* The mixed codec's "token ends here" bit: P(1) * 65536 given the neural
 * model's, the candidate token, the two tokens before it and the bytes known; then
 * lmc_cm_update_end with the bit. */
uint32_t lmc_cm_predict_end(lmc_cm *cm, uint32_t model_p16, uint32_t candidate, uint32_t previous,
                            uint32_t previous2, uint32_t depth);
void lmc_cm_update_end(lmc_cm *cm, int bit);
/* Lanes: the block is coded as `count` contiguous parts starting at
 * starts[0] = 0 < starts[1] < ..., interleaved between tokens; the tables
 * are shared, each lane keeps its own contexts and match state, and a match
 * only predicts bytes already coded. Called once, before the first bit;
 * one lane is the plain model. lmc_cm_select_lane switches lanes between
 * tokens (at a byte boundary). */
#define LMC_CM_LANES_MAX 16
lmc_status lmc_cm_set_lanes(lmc_cm *cm, const size_t *starts, int count);
void lmc_cm_select_lane(lmc_cm *cm, int lane);
void lmc_cm_close(lmc_cm *cm);

/* ======================= Media sample models ======================= */

/* An image's samples: plane p, row y, column x at (p * height + y) * width + x.
 * Samples are at most max_value (255 for 8-bit images, 65535 for 16-bit, the
 * largest index for a palette). */
typedef struct {
    uint32_t width, height, planes;
    uint32_t max_value;
    int palette;  /* the single plane holds palette indices, not intensities */
    /* Video: a one-plane stack of frames of frame_height rows each (height
     * is a multiple); each frame is predicted from itself and the frame
     * before. 0: a single image. */
    uint32_t frame_height;
    /* Video: motion vectors in 1/2^motion_shift pixels, 0 (whole pixels,
     * archives made before 2026-11-28) or 2 (quarter pixels). */
    uint32_t motion_shift;
} lmc_image_shape;

/* Codes every sample of an image under an LMC_FAMILY_IMAGE model (image.c).
 * The payload is self-contained given the model and shape; decoding fills
 * `samples` (width * height * planes values) or fails with LMC_ERR_CORRUPT. */
lmc_status lmc_image_encode(const lmc_model *model, const lmc_image_shape *shape, const uint16_t *samples,
                            lmc_pool *pool, lmc_buf *out, lmc_message *message);
lmc_status lmc_image_decode(const lmc_model *model, const lmc_image_shape *shape, const uint8_t *payload,
                            size_t size, lmc_pool *pool, uint16_t *samples, lmc_message *message);

/* Bytes of working memory lmc_image_encode or _decode takes for this shape
 * with `threads` threads (about 100 MiB per stripe coded at a time). */
uint64_t lmc_image_memory(const lmc_image_shape *shape, int threads);

/* Training the image model's prior (tools/lmc_image_train.c): codes the
 * planes as they are (no palette transform) in one thread and copies the
 * first stripe's final mixer weights into mixer and final; the model file
 * stores their average over the training images as int32 tensors named
 * lmc_image_prior_name(0 and 1) of ne = lmc_image_prior_shape(0 and 1)
 * (ne[0] columns, ne[1] rows). */
void lmc_image_prior_shape(int which, uint64_t ne[2]);
const char *lmc_image_prior_name(int which);
lmc_status lmc_image_learn(const lmc_model *model, const lmc_image_shape *shape, const uint16_t *samples,
                           int32_t *mixer, int32_t *final, size_t *coded_bytes, lmc_message *message);

/* Audio samples: channel c, frame t at c * frames + t; signed values of
 * `bits` bits (8, 16, 24 or 32), of which the low bits below valid_bits
 * may be padding. */
typedef struct {
    uint32_t channels;
    uint64_t frames;
    uint32_t bits, valid_bits;
    uint32_t sample_rate;
} lmc_audio_shape;

/* Codes every sample of a recording under an LMC_FAMILY_AUDIO model
 * (audio.c); the same contract as the image coder. */
lmc_status lmc_audio_encode(const lmc_model *model, const lmc_audio_shape *shape, const int32_t *samples,
                            lmc_pool *pool, lmc_buf *out, lmc_message *message);
lmc_status lmc_audio_decode(const lmc_model *model, const lmc_audio_shape *shape, const uint8_t *payload,
                            size_t size, lmc_pool *pool, int32_t *samples, lmc_message *message);

#endif /* LMC_MODEL_H */
