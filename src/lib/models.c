/*
 * Finding models: by name or path for compression, by file hash for
 * decompression. Search order: the caller's -m, the folders of LMC_MODELS
 * (colon-separated), the source tree's models/ recorded at build time, and
 * the install prefix's share/lmc/models.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/lib.h"

#define MAX_SEARCH_DIRS 32
#define PATH_SIZE 1024

typedef struct {
    char dirs[MAX_SEARCH_DIRS][PATH_SIZE];
    int count;
} search_path;

static void add_dir(search_path *sp, const char *dir, size_t length) {
    if (length == 0 || length >= PATH_SIZE || sp->count == MAX_SEARCH_DIRS)
        return;
    memcpy(sp->dirs[sp->count], dir, length);
    sp->dirs[sp->count][length] = '\0';
    sp->count++;
}

static void search_path_init(search_path *sp) {
    sp->count = 0;
    const char *env = getenv("LMC_MODELS");
    while (env && *env) {
        const char *colon = strchr(env, ':');
        size_t length = colon ? (size_t)(colon - env) : strlen(env);
        add_dir(sp, env, length);
        env = colon ? colon + 1 : NULL;
    }
    add_dir(sp, LMC_SOURCE_MODELS_DIR, strlen(LMC_SOURCE_MODELS_DIR));
    add_dir(sp, LMC_INSTALL_MODELS_DIR, strlen(LMC_INSTALL_MODELS_DIR));
}

static void describe_search_path(const search_path *sp, char *out, size_t size) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < sp->count && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ":" : "", sp->dirs[i]);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int looks_like_path(const char *arg) {
    size_t length = strlen(arg);
    return strchr(arg, '/') || (length > 5 && !strcmp(arg + length - 5, ".gguf"));
}

static int model_in_dir(const char *dir, const char *name, char *path, size_t size) {
    int n = snprintf(path, size, "%s/%s.gguf", dir, name);
    return n > 0 && (size_t)n < size && is_file(path);
}

/* Resolves a name or path to a file; 0 if none. */
static int resolve_model(const search_path *sp, const char *arg, char *path, size_t size) {
    if (looks_like_path(arg)) {
        snprintf(path, size, "%s", arg);
        return is_file(path);
    }
    for (int i = 0; i < sp->count; i++)
        if (model_in_dir(sp->dirs[i], arg, path, size))
            return 1;
    return 0;
}

/* The shipped model names tried, in order, for each kind: a kind's own
 * model when it exists, else the byte-level model that handles anything. */
static const char *const *default_models(lmc_kind kind) {
    static const char *const text[] = {"text-en", "bytes-v1", NULL};
    static const char *const image[] = {"image-rgb", "bytes-v1", NULL};
    static const char *const audio[] = {"audio-pcm-v2", "audio-pcm", "bytes-v1", NULL};
    static const char *const video[] = {"video-yuv", "image-rgb", "bytes-v1", NULL};
    static const char *const bytes[] = {"bytes-v1", NULL};
    switch (kind) {
    case LMC_KIND_TEXT: return text;
    case LMC_KIND_IMAGE: return image;
    case LMC_KIND_AUDIO: return audio;
    case LMC_KIND_VIDEO: return video;
    default: return bytes;
    }
}

const char *const *lmc_text_model_variants(void) {
    static const char *const variants[] = {"text-en-legal", "text-en-medical", NULL};
    return variants;
}

lmc_status lmc_resolve_model_path(const char *arg, char *path, size_t size, lmc_message *message) {
    search_path sp;
    search_path_init(&sp);
    if (resolve_model(&sp, arg, path, size))
        return LMC_OK;
    char dirs[2048];
    describe_search_path(&sp, dirs, sizeof dirs);
    return lmc_fail(message, LMC_ERR_MODEL_NOT_FOUND, "model '%s' not found (searched %s)", arg, dirs);
}

static lmc_status load_model_file(const search_path *sp, const char *path, uint64_t memlimit, lmc_model **out,
                                  lmc_message *message);

lmc_status lmc_find_model_for_encoding(const char *arg, lmc_kind kind, uint64_t memlimit, lmc_model **out,
                                       lmc_message *message) {
    search_path sp;
    search_path_init(&sp);
    char path[PATH_SIZE];
    int found = 0;
    if (arg) {
        found = resolve_model(&sp, arg, path, sizeof path);
    } else {
        for (const char *const *name = default_models(kind); *name && !found; name++)
            found = resolve_model(&sp, *name, path, sizeof path);
    }
    if (!found) {
        char dirs[2048];
        describe_search_path(&sp, dirs, sizeof dirs);
        return lmc_fail(message, LMC_ERR_MODEL_NOT_FOUND, "model '%s' not found (searched %s)",
                        arg ? arg : default_models(kind)[0], dirs);
    }
    return load_model_file(&sp, path, memlimit, out, message);
}

/* ---- By hash ---- */

static int file_hash(const char *path, uint8_t hash[16]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int ok = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data != MAP_FAILED) {
            lmc_hash128(data, (size_t)st.st_size, hash);
            munmap(data, (size_t)st.st_size);
            ok = 1;
        }
    }
    close(fd);
    return ok;
}

static int hash_matches(const char *path, const uint8_t hash[16]) {
    uint8_t actual[16];
    return file_hash(path, actual) && !memcmp(actual, hash, 16);
}

static int has_gguf_suffix(const char *name) {
    size_t length = strlen(name);
    return length > 5 && !strcmp(name + length - 5, ".gguf");
}

/* Every *.gguf of dir whose hash matches, the one named `name` first. */
static int find_in_dir(const char *dir, const char *name, const uint8_t hash[16], char *path, size_t size) {
    if (name[0] && model_in_dir(dir, name, path, size) && hash_matches(path, hash))
        return 1;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *entry;
    while (!found && (entry = readdir(d)) != NULL) {
        if (!has_gguf_suffix(entry->d_name))
            continue;
        int n = snprintf(path, size, "%s/%s", dir, entry->d_name);
        found = n > 0 && (size_t)n < size && is_file(path) && hash_matches(path, hash);
    }
    closedir(d);
    return found;
}

static void parent_folder(const char *path, char *out, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, size, ".");
    else
        snprintf(out, size, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

/* Loads the model at path; an overlay's base is looked up by its hash in the
 * overlay's own folder, then in every search folder. */
static lmc_status load_model_file(const search_path *sp, const char *path, uint64_t memlimit, lmc_model **out,
                                  lmc_message *message) {
    char base_name[64], base_path[PATH_SIZE], folder[PATH_SIZE], hex[33];
    uint8_t base_hash[16];
    int overlay = lmc_model_base_of(path, base_name, sizeof base_name, base_hash, message);
    if (overlay < 0)
        return LMC_ERR_MODEL_INVALID;
    if (overlay == 0)
        return lmc_model_load(path, memlimit, out, message);
    parent_folder(path, folder, sizeof folder);
    int found = find_in_dir(folder, base_name, base_hash, base_path, sizeof base_path);
    for (int i = 0; i < sp->count && !found; i++)
        found = find_in_dir(sp->dirs[i], base_name, base_hash, base_path, sizeof base_path);
    lmc_hash_hex(base_hash, hex);
    if (!found)
        return lmc_fail(message, LMC_ERR_MODEL_NOT_FOUND, "model %s is an overlay of '%s' (hash %s), which was not found",
                        path, base_name, hex);
    return lmc_model_load_overlay(path, base_path, memlimit, out, message);
}

lmc_status lmc_find_model_by_hash(const char *preferred, const char *name, const uint8_t hash[16],
                                  uint64_t memlimit, lmc_model **out, lmc_message *message) {
    search_path sp;
    search_path_init(&sp);
    char path[PATH_SIZE], hex[33];
    lmc_hash_hex(hash, hex);
    int preferred_exists = preferred && resolve_model(&sp, preferred, path, sizeof path);
    if (preferred_exists && hash_matches(path, hash))
        return load_model_file(&sp, path, memlimit, out, message);
    for (int i = 0; i < sp.count; i++)
        if (find_in_dir(sp.dirs[i], name, hash, path, sizeof path))
            return load_model_file(&sp, path, memlimit, out, message);
    if (preferred_exists)
        return lmc_fail(message, LMC_ERR_MODEL_MISMATCH,
                        "model '%s' is not the archive's model '%s' (hash %s), which was not found either",
                        preferred, name, hex);
    char dirs[2048];
    describe_search_path(&sp, dirs, sizeof dirs);
    return lmc_fail(message, LMC_ERR_MODEL_NOT_FOUND, "the archive's model '%s' (hash %s) was not found (searched %s)",
                    name, hex, dirs);
}

/* ---- Listing ---- */

static void copy_gguf_string(const lmc_gguf *g, const char *key, char *out, size_t size) {
    lmc_gguf_string s;
    if (lmc_gguf_get_str(g, key, &s) != 0)
        return;
    size_t n = LMC_MIN((size_t)s.size, size - 1);
    memcpy(out, s.data, n);
    out[n] = '\0';
}

static int describe_model(const char *path, lmc_model_entry *entry) {
    lmc_gguf *g;
    lmc_message message;
    if (lmc_gguf_open(path, &g, &message) != LMC_OK)
        return 0;
    memset(entry, 0, sizeof *entry);
    snprintf(entry->path, sizeof entry->path, "%s", path);
    const char *base = strrchr(path, '/');
    snprintf(entry->name, sizeof entry->name, "%.*s", (int)(strlen(base ? base + 1 : path) - 5), base ? base + 1 : path);
    copy_gguf_string(g, "general.description", entry->description, sizeof entry->description);
    copy_gguf_string(g, "general.license", entry->license, sizeof entry->license);
    copy_gguf_string(g, "lmc.training_data", entry->training_data, sizeof entry->training_data);
    copy_gguf_string(g, "lmc.base_model", entry->base_model, sizeof entry->base_model);
    char kind[16] = "";
    copy_gguf_string(g, "lmc.default_kind", kind, sizeof kind);
    if (lmc_kind_parse(kind, &entry->kind) != LMC_OK)
        entry->kind = LMC_KIND_AUTO;
    size_t size;
    const uint8_t *bytes = lmc_gguf_bytes(g, &size);
    lmc_hash128(bytes, size, entry->hash);
    entry->file_size = size;
    lmc_gguf_close(g);
    return 1;
}

int lmc_models_list(lmc_model_visit_fn fn, void *user) {
    search_path sp;
    search_path_init(&sp);
    int listed = 0;
    uint8_t seen[256][16];
    for (int i = 0; i < sp.count; i++) {
        /* By name within each folder, so listings are stable. */
        struct dirent **names;
        int n = scandir(sp.dirs[i], &names, NULL, alphasort);
        for (int j = 0; j < n; j++) {
            char path[PATH_SIZE];
            lmc_model_entry entry;
            const char *file = names[j]->d_name;
            int usable = has_gguf_suffix(file) && snprintf(path, sizeof path, "%s/%s", sp.dirs[i], file) < PATH_SIZE &&
                         describe_model(path, &entry);
            free(names[j]);
            if (!usable)
                continue;
            int duplicate = 0;
            for (int k = 0; k < listed && k < 256; k++)
                duplicate |= !memcmp(seen[k], entry.hash, 16);
            if (duplicate)
                continue;
            if (listed < 256)
                memcpy(seen[listed], entry.hash, 16);
            listed++;
            fn(user, &entry);
        }
        if (n >= 0)
            free(names);
    }
    return listed;
}
