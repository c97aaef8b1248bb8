/*
 * lmc: lossless compression by large models.
 *
 * The public C API. Data is cut into blocks; each block's tokens are
 * predicted by a model (a GGUF file) and arithmetic-coded under the model's
 * integer CDFs. Archives are self-describing streams (docs/FORMAT.md) that
 * name their model by a hash of its file, and decode bit-exactly under any
 * thread count, SIMD level or machine.
 *
 * Streaming: push input, pull output. Neither direction ever needs the whole
 * input in memory; buffered state is bounded by the block size times the
 * number of blocks coded together (see lmc_options.threads and memlimit).
 *
 * Thread safety: distinct stream objects may be used from distinct threads.
 */
#ifndef LMC_H
#define LMC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LMC_BUILDING_SHARED)
#define LMC_API __attribute__((visibility("default")))
#else
#define LMC_API
#endif

#define LMC_VERSION_MAJOR 0
#define LMC_VERSION_MINOR 1
#define LMC_VERSION_PATCH 0

/* Every call that can fail returns one of these; lmc_status_string() and the
 * stream's lmc_*_message() give the text for the user. */
typedef enum {
    LMC_OK = 0,
    LMC_ERR_PARAM,           /* invalid argument or option */
    LMC_ERR_NOMEM,           /* allocation failed */
    LMC_ERR_MEMLIMIT,        /* the work needs more memory than the limit allows */
    LMC_ERR_IO,              /* read or write failed */
    LMC_ERR_NOT_ARCHIVE,     /* wrong magic: not an lmc archive */
    LMC_ERR_VERSION,         /* archive needs a newer format or numerics version */
    LMC_ERR_TRUNCATED,       /* archive ends early */
    LMC_ERR_CORRUPT,         /* a checksum or structural check failed */
    LMC_ERR_MODEL_NOT_FOUND, /* the archive's model is in none of the search folders */
    LMC_ERR_MODEL_INVALID,   /* a model file is malformed or unsupported */
    LMC_ERR_MODEL_MISMATCH,  /* the given model is not the archive's model */
    LMC_ERR_UNSUPPORTED,     /* input or feature not supported */
    LMC_ERR_INTERRUPTED,     /* the caller's progress callback asked to stop */
    LMC_ERR_INTERNAL         /* a bug: please report it */
} lmc_status;

LMC_API const char *lmc_status_string(lmc_status status);
LMC_API const char *lmc_version_string(void);

/* What the data is; decides the default model and the format reader. */
typedef enum {
    LMC_KIND_AUTO = 0, /* detect from content (magic bytes, UTF-8 validity) */
    LMC_KIND_BYTES,
    LMC_KIND_TEXT,
    LMC_KIND_IMAGE,
    LMC_KIND_AUDIO,
    LMC_KIND_VIDEO
} lmc_kind;

LMC_API const char *lmc_kind_name(lmc_kind kind);
/* Parses "text", "bytes", ...; returns LMC_OK and sets *kind, or LMC_ERR_PARAM. */
LMC_API lmc_status lmc_kind_parse(const char *name, lmc_kind *kind);
/* Content-based detection over a prefix of the data. */
LMC_API lmc_kind lmc_detect_kind(const void *prefix, size_t size);

/* Called after each batch of blocks; return nonzero to cancel the operation. */
typedef int (*lmc_progress_fn)(void *user, uint64_t bytes_in, uint64_t bytes_out);

typedef struct {
    const char *model;      /* shipped model name or path; NULL: default for the kind */
    lmc_kind kind;          /* LMC_KIND_AUTO: detect from the first block */
    int fast;               /* 1: classical context model, no neural network */
    int threads;            /* 0: all cores */
    uint64_t memlimit;      /* bytes; 0: no limit */
    uint32_t block_size;    /* bytes per block; 0: the model's default */
    uint32_t context_window;/* model tokens of context per block; 0: the model's default */
    uint32_t window_stride; /* tokens the window advances when full; 0: the model's default */
    int model_only;         /* 1: the neural model alone, without the adaptive model mixed in */
    lmc_progress_fn progress;
    void *progress_user;
    /* Images, audio and video: every decoded sample within max_error of the
     * original (0: lossless; at most 65535, else LMC_ERR_PARAM, as with
     * fast). Input that is not coded as media fails with LMC_ERR_UNSUPPORTED
     * (at a push or at finish); palette images and audio with padding bits
     * are coded losslessly, with a notice (lmc_encoder_notice). */
    uint32_t max_error;
    /* Text and bytes: lanes per block at most, 1 to 4 (0: 4). More lanes
     * decode faster (they decode in lockstep) and cost a little ratio. */
    int lanes;
} lmc_options;

/* Fills defaults (all zero/NULL). */
LMC_API void lmc_options_init(lmc_options *options);

/* Chooses where neural models run, for the whole process, from the next
 * encoder or decoder on: "cpu", "cuda" (GPU 0) or "cuda:N" (without a
 * call: LMC_DEVICE from the environment, else the CPU). Archives do not
 * depend on it: the GPU computes the CPU's results bit for bit. Returns
 * LMC_OK; LMC_ERR_PARAM for another name; LMC_ERR_UNSUPPORTED, with the
 * reason in message, when that GPU cannot be used (no CUDA in this build,
 * no such device): the CPU then runs them. The GPU number can be chosen
 * only once per process, before a GPU is first used. */
LMC_API lmc_status lmc_device_select(const char *device, char *message, size_t message_size);

/* ---- Compression ---------------------------------------------------------- */

typedef struct lmc_encoder lmc_encoder;

/* Loads the model and prepares a stream. On failure returns NULL and, if
 * status is not NULL, the reason. */
LMC_API lmc_encoder *lmc_encoder_create(const lmc_options *options, lmc_status *status);
/* Accepts all of data; compresses whenever enough blocks are buffered. */
LMC_API lmc_status lmc_encoder_push(lmc_encoder *encoder, const void *data, size_t size);
/* Compresses what is buffered and appends the end marker. Push no more after it. */
LMC_API lmc_status lmc_encoder_finish(lmc_encoder *encoder);
/* Copies up to capacity bytes of ready output; returns the count (0: none ready). */
LMC_API size_t lmc_encoder_pull(lmc_encoder *encoder, void *out, size_t capacity);
/* The detailed message of the last error (never NULL). */
LMC_API const char *lmc_encoder_message(const lmc_encoder *encoder);
/* After lmc_encoder_finish: why the input was coded differently from what
 * its kind suggests (an image the readers cannot restore exactly, coded as
 * bytes, for example), or NULL. */
LMC_API const char *lmc_encoder_notice(const lmc_encoder *encoder);
LMC_API void lmc_encoder_free(lmc_encoder *encoder);

/* ---- Decompression -------------------------------------------------------- */

typedef struct lmc_decoder lmc_decoder;

/* options->model, if set, is tried first when looking up the archive's model;
 * then the folders of LMC_MODELS (colon-separated), the source tree's models/
 * recorded at build time, and the install prefix's share/lmc/models. */
LMC_API lmc_decoder *lmc_decoder_create(const lmc_options *options, lmc_status *status);
LMC_API lmc_status lmc_decoder_push(lmc_decoder *decoder, const void *data, size_t size);
/* Decodes what is buffered; fails with LMC_ERR_TRUNCATED if the end marker
 * has not been seen, LMC_ERR_CORRUPT if any checksum disagreed. */
LMC_API lmc_status lmc_decoder_finish(lmc_decoder *decoder);
LMC_API size_t lmc_decoder_pull(lmc_decoder *decoder, void *out, size_t capacity);
LMC_API const char *lmc_decoder_message(const lmc_decoder *decoder);
LMC_API void lmc_decoder_free(lmc_decoder *decoder);

/* ---- Inspection ----------------------------------------------------------- */

typedef struct {
    uint32_t format_version;
    uint32_t numerics_version;
    lmc_kind kind;
    char model_name[64];
    uint8_t model_hash[16];   /* XXH3-128 of the model file; all zero for --fast */
    int fast;
    uint32_t block_size;
    uint64_t blocks;
    uint64_t stored_blocks;   /* blocks kept raw because coding did not pay */
    uint64_t original_size;
    uint64_t archive_size;
    uint32_t context_window;  /* model tokens of context inside a block */
    uint32_t window_stride;
    int mixed;                /* the neural model mixed with the adaptive model */
    int media;                /* a parsed image, recording or video coded by a sample model */
    uint32_t max_error;       /* media: the bound every sample is within (0: lossless) */
    double psnr;              /* media with max_error > 0: PSNR in dB of the decoded samples,
                                 measured when compressing; INFINITY when nothing changed
                                 (and for lossless archives) */
} lmc_archive_info;

/* Reads the headers of a whole archive held in memory-sized chunks through
 * the read callback (returns bytes read, 0 at end, <0 on error), without
 * decoding payloads; verifies the structure and the compressed-data checksums. */
typedef long (*lmc_read_fn)(void *user, void *buffer, size_t size);
LMC_API lmc_status lmc_archive_inspect(lmc_read_fn read, void *user, lmc_archive_info *info,
                                       char *message, size_t message_size);

/* ---- Models --------------------------------------------------------------- */

typedef struct {
    char name[64];
    char path[1024];
    char description[256];
    uint8_t hash[16];
    uint64_t file_size;
    lmc_kind kind;            /* the data kind it is the default for, or LMC_KIND_AUTO */
    char license[512];        /* general.license: the weights' and the training data's licences */
    char training_data[512];  /* lmc.training_data: what it was trained on */
    char base_model[64];      /* lmc.base_model of an overlay (a domain variant), else empty */
} lmc_model_entry;

/* Lists models found in the search folders, calling fn for each one.
 * Returns the number listed. */
typedef void (*lmc_model_visit_fn)(void *user, const lmc_model_entry *entry);
LMC_API int lmc_models_list(lmc_model_visit_fn fn, void *user);

/* Tokenizes text with a model's tokenizer exactly as llama.cpp does
 * (llama_tokenize with add_special and parse_special false: no BOS/EOS).
 * On success *ids holds *count ids; release it with lmc_free(). */
LMC_API lmc_status lmc_tokenize(const char *model, const void *text, size_t size, int32_t **ids, size_t *count,
                                char *message, size_t message_size);

/* A text description of a model file (architecture, sizes, tokenizer,
 * tensor types), one "key: value" per line; release it with lmc_free(). */
LMC_API lmc_status lmc_model_describe(const char *model, char **text, char *message, size_t message_size);

LMC_API void lmc_free(void *pointer);

/* Formats a hash as 32 lowercase hex digits plus NUL. */
LMC_API void lmc_hash_hex(const uint8_t hash[16], char out[33]);

#ifdef __cplusplus
}
#endif
#endif /* LMC_H */
