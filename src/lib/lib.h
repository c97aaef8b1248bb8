/*
 * Internals of the library layer: the block codecs that join a model to
 * the range coder, and the model search shared by the streams.
 */
#ifndef LMC_LIB_H
#define LMC_LIB_H

#include "coder/coder.h"
#include "common/common.h"
#include "container/container.h"
#include "format/media.h"
#include "model/model.h"

/* ---- Neural block codec (blockcodec.c) ----
 * Codes one block's tokens under a Llama-family model with a sliding window:
 * the window of W tokens advances by S tokens once full. Numerics v1 re-runs
 * the model from relative position 0 over the W-S tokens kept as context;
 * numerics v2 keeps their cached keys and values instead, with the block's
 * first token as an attention sink (lmc_llama_slide).
 * Compression evaluates many rows of several blocks' windows together;
 * decompression decodes many blocks in lockstep, one row of each per call,
 * so every weight read serves all of them; on several CPU threads it cuts
 * their lanes into groups, a lockstep of its own per thread
 * (lmc_neural_decode_groups). */
typedef struct lmc_neural_coder lmc_neural_coder;

typedef struct {
    int max_blocks;        /* blocks coded together */
    uint32_t window, stride;
    uint32_t block_size;
    int mixed;             /* tokens coded as bytes, mixed with lmc_cm (mixcodec.c): lmc_codec_mixing */
    int lanes;             /* codec 5: lanes per block at most (lmc_codec_lanes); 0: no lane table, one lane */
    uint32_t numerics;     /* the archive's numerics version: 2 slides windows (lmc_numerics_slides) and
                              quantises activations to 7 bits; 1 re-reads windows, int16 activations */
    int decode_groups;     /* decoding: lmc_neural_decode_groups(threads), or 0 */
} lmc_neural_config;

/* Decoding on T >= 2 CPU threads cuts the lanes of a batch into up to T
 * groups, each decoded by a thread of its own with a model state of its own
 * (one thread per forward pass, no waiting inside it); the groups take
 * turns only at each block's range decoder, in the order the encoder
 * coded. The archive is the same either way. Returns the groups to give
 * lmc_neural_config.decode_groups: T, or 0 for one lockstep on all threads
 * (one thread, or the GPU, which wants every row in one call). */
int lmc_neural_decode_groups(int threads);

/* Numerics v2 on: a full window keeps its caches (lmc_llama_slide). */
static inline int lmc_numerics_slides(uint32_t numerics_version) {
    return numerics_version >= 2;
}

/* lmc_neural_config.mixed for an archive's codec: 0 the model alone, 1 the
 * mixed codec (codec 4, LMC_CM_MIXED_V2: what `codec == LMC_CODEC_MIXED`
 * gives the encoder), LMC_MIXED_CODEC2 its first version (codec 2,
 * LMC_CM_MIXED_V1, decoded for older archives). */
#define LMC_MIXED_CODEC2 2
static inline int lmc_codec_mixing(lmc_codec codec) {
    if (codec == LMC_CODEC_MIXED || codec == LMC_CODEC_MIXED_LANES)
        return 1;
    return codec == LMC_CODEC_MIXED_V1 ? LMC_MIXED_CODEC2 : 0;
}

/* Lanes (codec 5, docs/FORMAT.md): a lone block decodes one token per model
 * call, so each token streams every weight through matrix-vector products;
 * cut into lanes, contiguous parts coded as sequences of their own,
 * interleaved token by token under one adaptive model, it decodes several
 * tokens per call. The encoder gives a block one lane per
 * LMC_LANE_MIN_TOKENS tokens, at most LMC_LANES_MAX (what decoders accept). */
#define LMC_LANES_MAX 4
#define LMC_LANE_MIN_TOKENS 4096
static inline int lmc_codec_lanes(lmc_codec codec) {
    return codec == LMC_CODEC_MIXED_LANES ? LMC_LANES_MAX : 0;
}

lmc_status lmc_neural_coder_create(const lmc_model *model, lmc_pool *pool, const lmc_neural_config *config,
                                   lmc_neural_coder **out, lmc_message *message);
void lmc_neural_coder_free(lmc_neural_coder *coder);
/* Bytes of working memory for config->max_blocks blocks coded together. */
uint64_t lmc_neural_coder_bytes(const lmc_model *model, const lmc_neural_config *config);
/* 1 if the model's tokenizer allows the mixed codec (every byte string is
 * the concatenation of token pieces). */
int lmc_neural_can_mix(const lmc_model *model);

/* Blocks compression codes together with `threads` threads: two per
 * thread, at least 8 (a GPU wants many rows per call even when few threads
 * run), at most LMC_NEURAL_ENCODE_BATCH_MAX. */
#define LMC_NEURAL_ENCODE_BATCH_MAX 32
int lmc_neural_encode_batch(int threads);
/* The mixed codec's adaptive model learns the block it codes, so its
 * blocks default to at least LMC_MIXED_BLOCK_SIZE: on world192.txt (2.4 MB)
 * 256 KiB blocks code to 1.377 bits per byte, 1 MiB to 1.263 and one 4 MiB
 * block to 1.204. Fewer blocks give decoding's lockstep fewer rows per
 * call. The model alone keeps the model's lmc.block_size. */
#define LMC_MIXED_BLOCK_SIZE (4u << 20)
uint32_t lmc_neural_default_block_size(const lmc_model *model, int mixed);
/* Blocks decoding runs in lockstep, at most. */
#define LMC_NEURAL_DECODE_BATCH_MAX 64
/* The per-block memory of a batch (buffers, and the mixed codec's adaptive
 * model) is kept near LMC_NEURAL_BATCH_MEMORY: `blocks`, or fewer where
 * blocks are large (at least one). 64 blocks of 256 KiB fit; of the mixed
 * codec's 4 MiB blocks, 11. */
#define LMC_NEURAL_BATCH_MEMORY (1ull << 30)
int lmc_neural_batch_fit(int blocks, uint32_t block_size, int mixed);

/* Encodes data, at most max_blocks blocks of the coder's block size (the
 * last may be short), together: their rows share the model's calls (as
 * decoding's lockstep does). Block i's payload is appended to payloads[i],
 * the same bytes whichever blocks it was coded with. */
lmc_status lmc_neural_encode_blocks(lmc_neural_coder *coder, const uint8_t *data, size_t size, lmc_buf *payloads,
                                   lmc_message *message);

/* *coded: the payload size of data coded as one block under the model alone
 * (codec 0, the model's own window): how well the model knows the data. */
lmc_status lmc_neural_probe_size(const lmc_model *model, lmc_pool *pool, const uint8_t *data, size_t size,
                                 size_t *coded, lmc_message *message);

typedef struct {
    const uint8_t *payload;
    size_t payload_size;
    uint8_t *out;      /* raw_size bytes */
    size_t raw_size;
} lmc_block_job;

/* Decodes count (<= max_blocks) blocks together. */
lmc_status lmc_neural_decode_blocks(lmc_neural_coder *coder, lmc_block_job *jobs, int count, lmc_message *message);

/* ---- Mixed token coding (mixcodec.c) ----
 * One block's adaptive state: tokens are coded as their bytes under the
 * neural model's distribution mixed with a context-mixing model. `cum` is the
 * model's cumulative frequency table over its vocabulary (NULL: uniform). */
typedef struct lmc_mix_block lmc_mix_block;

/* Encoding reads `data`; decoding writes the block's bytes to `out`.
 * version: the context-mixing model, LMC_CM_MIXED_V1 (codec 2) or
 * LMC_CM_MIXED_V2 (codec 4). */
lmc_status lmc_mix_block_open(const lmc_piece_index *index, const uint8_t *data, uint8_t *out, size_t size,
                              int version, lmc_mix_block **block);
void lmc_mix_block_close(lmc_mix_block *block);
/* Sees every call the mixed codec makes into its context-mixing model, so
 * that tools/lmc_cm_replay can record the calls once and replay them through
 * variants of the model without the neural model. Process-wide and not
 * synchronised: for that tool's single coding thread only (NULL: none). */
typedef struct {
    void (*block)(void *user, size_t size);
    /* model_p16 is the neural model's P(1), 0 when the vocabulary decides the bit. */
    void (*bit)(void *user, uint32_t model_p16, int bit);
    void (*end)(void *user, uint32_t model_p16, uint32_t candidate, uint32_t previous, uint32_t previous2,
                uint32_t depth, int bit);
    /* Codec 5: the block's lanes (more than one), and each change of lane. */
    void (*lanes)(void *user, const size_t *starts, int count);
    void (*lane)(void *user, int lane);
    void *user;
} lmc_mix_observer;
void lmc_mix_observe(const lmc_mix_observer *observer);
size_t lmc_mix_block_bytes(const lmc_piece_index *index, size_t size);
/* Lanes (codec 5): the block as `count` contiguous parts starting at
 * starts[0] = 0 < starts[1] < ... < size, each a token sequence of its own,
 * coded interleaved under one adaptive model (lmc_cm_set_lanes). Set once,
 * before the first token; lmc_mix_select_lane picks the lane the next token
 * belongs to. A block opens as one lane. */
lmc_status lmc_mix_block_set_lanes(lmc_mix_block *block, const size_t *starts, int count);
void lmc_mix_select_lane(lmc_mix_block *block, int lane);
/* Bytes coded so far, in all lanes. */
size_t lmc_mix_block_position(const lmc_mix_block *block);
/* id must be canonical (lmc_piece_index.canonical) and its bytes the block's next bytes. */
void lmc_mix_encode_token(lmc_mix_block *block, lmc_rc_encoder *rc, const uint32_t *cum, int32_t id);
/* The decoded token's canonical id, or -1 if the data is damaged. */
int32_t lmc_mix_decode_token(lmc_mix_block *block, lmc_rc_decoder *rc, const uint32_t *cum);
/* The same two from the prefix sums of cum's frequencies in the pieces'
 * sorted order ([index->count + 1], cum NULL: uniform), which
 * lmc_mix_sorted_sums makes: the block codec makes them on every thread
 * before the tokens are coded, one after the other. */
void lmc_mix_sorted_sums(const lmc_piece_index *index, const uint32_t *cum, uint32_t *sums);
void lmc_mix_encode_sorted(lmc_mix_block *block, lmc_rc_encoder *rc, const uint32_t *sums, int32_t id);
int32_t lmc_mix_decode_sorted(lmc_mix_block *block, lmc_rc_decoder *rc, const uint32_t *sums);

/* ---- Media blocks (mediacodec.c) ----
 * A whole parsed media file as one block of an LMC_CODEC_MEDIA archive. */

/* 1 if `model` codes samples of this kind (image models also code video). */
int lmc_media_model_fits(const lmc_model *model, lmc_kind kind);
/* The checksum a media block records: of the item's description, side blob
 * and samples, so it holds for a PNG restored pixel-exact. */
uint64_t lmc_media_checksum(const lmc_media *item);
/* Working memory to code an item of this description with `threads` threads. */
uint64_t lmc_media_block_memory(const lmc_media_desc *desc, int threads);
lmc_status lmc_media_block_encode(const lmc_model *model, lmc_pool *pool, const lmc_media *item, lmc_buf *payload,
                                  lmc_message *message);
/* raw_size (the original file's size, from the block record) bounds what
 * the payload may declare; memlimit (0: none) bounds the samples. */
lmc_status lmc_media_block_decode(const lmc_model *model, lmc_pool *pool, const uint8_t *payload, size_t size,
                                  uint64_t raw_size, uint64_t memlimit, lmc_media *item, lmc_message *message);

/* ---- Model search (models.c) ---- */

/* Resolves a model name or path to an existing file; LMC_ERR_MODEL_NOT_FOUND
 * with the folders searched otherwise. */
lmc_status lmc_resolve_model_path(const char *name_or_path, char *path, size_t size, lmc_message *message);
/* Loads a model given by name or path for compression. */
lmc_status lmc_find_model_for_encoding(const char *name_or_path, lmc_kind kind, uint64_t memlimit,
                                       lmc_model **out, lmc_message *message);
/* The shipped domain variants of the default text model (models/README.md),
 * NULL-terminated: compression tries them on the start of a text input. */
const char *const *lmc_text_model_variants(void);
/* Loads the model whose file hash is `hash`, trying `preferred` (a path or
 * name, may be NULL) first, then every search folder. */
lmc_status lmc_find_model_by_hash(const char *preferred, const char *name, const uint8_t hash[16],
                                  uint64_t memlimit, lmc_model **out, lmc_message *message);

/* ---- Blocks coded apart from the streams (lmc_encoder_plan in encoder.c; blocks.c) ----
 * For callers that spread one archive's blocks over processes (lmc --mpi):
 * the header lmc_encoder would write, then blocks coded or decoded one call
 * at a time into exactly the bytes the streams write or restore. */

/* Starts a new stream on its input's first bytes, prefix (its first MiB,
 * or all of it if shorter, as the CLI's first push gives it), without coding
 * a block: *header is the header the stream writes, left in its output to
 * pull; the stream then releases its model and takes no more input (the
 * caller codes the blocks). *media is set instead when the stream holds its
 * whole input to code it as one media block: the header is not decided
 * yet, and the stream goes on as usual (push the rest, finish). On failure
 * lmc_encoder_message says why. */
lmc_status lmc_encoder_plan(lmc_encoder *encoder, const void *prefix, size_t size, lmc_header *header, int *media);

typedef struct lmc_block_codec lmc_block_codec;

/* Block coding for an archive with this header (the model, fast or mixed
 * codec; not media) under options' threads, memory limit and model (tried
 * first; the model is found by the header's hash, as the decoder finds it).
 * decoding: sized for decoding (neural blocks in lockstep) or encoding. */
lmc_status lmc_block_codec_create(const lmc_header *header, const lmc_options *options, int decoding,
                                  lmc_block_codec **out, lmc_message *message);
void lmc_block_codec_free(lmc_block_codec *codec);
/* Blocks worth giving one call: what the streams code together. */
int lmc_block_codec_batch(const lmc_block_codec *codec);
/* Codes data, consecutive blocks of the header's block size (the last may
 * be short), appending each block's record and payload to out exactly as
 * lmc_encoder writes them. first: the index of the first block, for messages. */
lmc_status lmc_block_codec_encode(lmc_block_codec *codec, uint64_t first, const uint8_t *data, size_t size,
                                  lmc_buf *out, lmc_message *message);
/* Decodes records, consecutive block records each followed by its payload
 * as in the archive, appending the decoded bytes to out; both checksums of
 * every block are verified. */
lmc_status lmc_block_codec_decode(lmc_block_codec *codec, uint64_t first, const uint8_t *records, size_t size,
                                  lmc_buf *out, lmc_message *message);

/* ---- Shared stream helpers (stream.c) ---- */
int lmc_effective_threads(int requested);

#endif /* LMC_LIB_H */
