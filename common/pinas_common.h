/* pinas common: status codes, the error context, logging, progress, files, JSON helpers, safetensors,
 * did-you-mean, the seeded generator. Run configs: pinas_config.h. */
#ifndef PINAS_COMMON_H
#define PINAS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PINAS_VERSION "0.1.0"
#define PINAS_WUR __attribute__((warn_unused_result))
#define PINAS_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---------------------------------------------------------------- status */

/* 0 = ok, negative = error. */
typedef enum {
    PINAS_OK = 0,
    PINAS_EINVAL = -1,    /* bad argument or bad user input (config, JSON, shapes) */
    PINAS_EIO = -2,       /* file or socket I/O failed */
    PINAS_ENOMEM = -3,    /* allocation failed */
    PINAS_EFORMAT = -4,   /* a file is corrupt, truncated or of the wrong format */
    PINAS_ESHAPE = -5,    /* tensor shapes disagree */
    PINAS_EPEER = -6,     /* the other party died, closed, timed out or sent garbage */
    PINAS_ETORCH = -7,    /* libtorch raised */
    PINAS_EUNSUPPORTED = -8,
    PINAS_EINTERNAL = -9,
} pinas_status;

/* Human name of a status ("invalid input", ...). Static string. */
const char *pinas_status_str(pinas_status s);

/* ---------------------------------------------------------------- context */

typedef enum { PINAS_LOG_DEBUG = 0, PINAS_LOG_INFO = 1, PINAS_LOG_WARN = 2, PINAS_LOG_ERROR = 3, PINAS_LOG_QUIET = 4 } pinas_log_level;

typedef void (*pinas_log_fn)(void *user, pinas_log_level level, const char *msg);

/* The context owns the last error message, the seed, the thread count, the device and the
 * log sink. There is no global state: everything that needs one of these takes a context.
 * A context is not thread-safe; use one per thread. */
typedef struct pinas_ctx pinas_ctx;

/* Creates a context with seed 0, 1 thread, device "cpu", log level INFO, logging to stderr.
 * Returns NULL only when out of memory. */
pinas_ctx *pinas_ctx_create(void);
/* pinas_ctx_free(NULL) is a harmless no-op. */
void pinas_ctx_free(pinas_ctx *ctx);

/* The message of the last error set on ctx ("" when none). Borrowed; valid until the next error. */
const char *pinas_errmsg(const pinas_ctx *ctx);
/* Sets the message (printf style) and returns code, so callers can `return pinas_error(...)`. */
pinas_status pinas_error(pinas_ctx *ctx, pinas_status code, const char *fmt, ...) PINAS_PRINTF(3, 4);
/* Prefixes the current message with "prefix: " (adds context while unwinding). Returns code. */
pinas_status pinas_error_prefix(pinas_ctx *ctx, pinas_status code, const char *fmt, ...) PINAS_PRINTF(3, 4);
void pinas_error_clear(pinas_ctx *ctx);

void pinas_ctx_set_seed(pinas_ctx *ctx, uint64_t seed);
uint64_t pinas_ctx_seed(const pinas_ctx *ctx);
void pinas_ctx_set_threads(pinas_ctx *ctx, int threads);
int pinas_ctx_threads(const pinas_ctx *ctx);
/* "cpu" or "cuda". The string is copied. */
void pinas_ctx_set_device(pinas_ctx *ctx, const char *device);
const char *pinas_ctx_device(const pinas_ctx *ctx);

/* ---------------------------------------------------------------- logging */

void pinas_ctx_set_log_level(pinas_ctx *ctx, pinas_log_level level);
pinas_log_level pinas_ctx_log_level(const pinas_ctx *ctx);
/* Replaces the log sink (NULL restores the stderr sink). */
void pinas_ctx_set_log_fn(pinas_ctx *ctx, pinas_log_fn fn, void *user);
void pinas_log(pinas_ctx *ctx, pinas_log_level level, const char *fmt, ...) PINAS_PRINTF(3, 4);
#define pinas_debug(ctx, ...) pinas_log((ctx), PINAS_LOG_DEBUG, __VA_ARGS__)
#define pinas_info(ctx, ...) pinas_log((ctx), PINAS_LOG_INFO, __VA_ARGS__)
#define pinas_warn(ctx, ...) pinas_log((ctx), PINAS_LOG_WARN, __VA_ARGS__)

/* ---------------------------------------------------------------- progress */

/* A one-line progress bar with rate and ETA when `out` is a TTY; plain lines (at most one per
 * `plain_every_s` seconds, plus the last) otherwise. Quiet when the ctx log level is QUIET. */
typedef struct pinas_progress pinas_progress;
/* total may be 0 (unknown). label is copied. Returns NULL only when out of memory. */
pinas_progress *pinas_progress_create(pinas_ctx *ctx, FILE *out, const char *label, int64_t total);
/* Sets the current position and an optional status text ("loss 0.31 acc 88.2%"); NULL keeps the old one. */
void pinas_progress_update(pinas_progress *p, int64_t done, const char *status);
/* Prints the final line. pinas_progress_finish(NULL) is a no-op. Frees p. */
void pinas_progress_finish(pinas_progress *p);
/* Formats seconds as "1h02m", "3m05s", "12.3s". buf needs 16 bytes. */
void pinas_format_duration(double seconds, char *buf, size_t n);

/* Monotonic seconds. */
double pinas_now(void);
/* CPU seconds (user + system) the calling thread has used (CLOCK_THREAD_CPUTIME_ID): compute time
 * that time-slicing with other processes and steal do not inflate. */
double pinas_thread_cpu(void);
/* This machine's CPU model (Linux: the first "model name" of /proc/cpuinfo, else uname's machine)
 * into buf (NUL-terminated, cut to n - 1 bytes); "" when unknown. Returns buf. */
char *pinas_machine_cpu_model(char *buf, size_t n);
/* Whether the hardware profile `profile` (its name), fitted on CPU model `fitted_cpu` on
 * `fitted_date` (either may be NULL), is used on a machine of another CPU model: 1, with a one-line
 * warning naming both models and asking for `pinas calibrate` into msg (cut to n - 1 bytes); 0, with
 * msg "", when the models are the same or either is unknown (NULL or ""). */
int pinas_machine_mismatch(const char *profile, const char *fitted_cpu, const char *fitted_date, char *msg, size_t n);

/* ---------------------------------------------------------------- files */

/* Reads a whole file. *out is a new buffer (NUL-terminated, *len excludes the NUL); caller frees. */
pinas_status pinas_file_read(pinas_ctx *ctx, const char *path, char **out, size_t *len) PINAS_WUR;
/* File modes for the writers below. PUBLIC (0666) is reduced by the umask, as any program's output;
 * SECRET (0600: preprocessing, masks, keys, cached masked weights) is exactly 0600 whatever the umask. */
#define PINAS_FILE_PUBLIC 0666
#define PINAS_FILE_SECRET 0600

/* Atomic writes. The data goes to a temporary file in the target's directory, named
 * "<path>.tmp.<pid>.<16 random hex digits>" and created with O_CREAT|O_EXCL|O_NOFOLLOW (a symlink or
 * file planted at that name is never followed or reused: another name is drawn, up to 8 times); then
 * fsync, rename over `path`, fsync of the directory. `path` itself may be a symlink: it is replaced,
 * its target is not written. Until the rename, any previous `path` is unchanged; on every error the
 * temporary file is removed.
 * Mode: passed to open(2), so the umask applies; a mode without group/other bits (PINAS_FILE_SECRET)
 * is set exactly with fchmod.
 * Stale temporary files: opening a writer for `path` first removes "<path>.tmp.<pid>[.<x>]" files (not
 * directories) whose pid is not a running process on this host, or that are older than 24 hours
 * (a pid may be reused). Writers on other hosts sharing the directory (NFS) are outside this rule.
 * SIGXFSZ: the first writer sets it to ignored when it is at its default, so that writing past
 * `ulimit -f` fails with EFBIG and a message instead of killing the process.
 * Errors (PINAS_EIO) name `path`; ENOSPC and EFBIG say the disk is full / the size limit was hit and
 * that the previous file is unchanged. */
pinas_status pinas_file_write_atomic(pinas_ctx *ctx, const char *path, const void *data, size_t len, int mode) PINAS_WUR;
/* The same, streamed: open, write any number of times, then commit (rename into place) or abort
 * (remove the temporary file). Commit and abort free the writer, commit also on error;
 * pinas_file_atomic_abort(NULL) is a no-op. */
typedef struct pinas_file_atomic pinas_file_atomic;
pinas_status pinas_file_atomic_open(pinas_ctx *ctx, const char *path, int mode, pinas_file_atomic **out) PINAS_WUR;
pinas_status pinas_file_atomic_write(pinas_ctx *ctx, pinas_file_atomic *f, const void *data, size_t len) PINAS_WUR;
pinas_status pinas_file_atomic_commit(pinas_ctx *ctx, pinas_file_atomic *f) PINAS_WUR;
void pinas_file_atomic_abort(pinas_file_atomic *f);
/* The writer's temporary file name (borrowed), e.g. for a signal handler's cleanup list. */
const char *pinas_file_atomic_tmp_path(const pinas_file_atomic *f);
/* Creates a new file with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC (never follows or reuses what is at
 * `path`) and the mode rule above; *fd_out: the open descriptor, caller closes. errno is kept from
 * open(2) on failure (EEXIST: the name is taken). */
pinas_status pinas_file_create_excl(pinas_ctx *ctx, const char *path, int mode, int *fd_out) PINAS_WUR;
/* mkdir -p. */
pinas_status pinas_mkdir_p(pinas_ctx *ctx, const char *path) PINAS_WUR;
/* 1 if path exists. */
int pinas_path_exists(const char *path);
/* Joins a and b with '/'. Returns a new string; caller frees. */
char *pinas_path_join(const char *a, const char *b);
/* strdup that returns NULL for NULL. */
char *pinas_strdup(const char *s);
/* printf into a new string; caller frees. */
char *pinas_strfmt(const char *fmt, ...) PINAS_PRINTF(1, 2);

/* FNV-1a 64-bit, for model hashes and checksums that need no secrecy. */
uint64_t pinas_fnv1a64(const void *data, size_t len, uint64_t h);
#define PINAS_FNV_INIT 0xcbf29ce484222325ULL

/* ---------------------------------------------------------------- JSON */

/* Parses a file. Errors name the file and the line:column of a syntax error. *out: new; caller
 * frees with cJSON_Delete. */
pinas_status pinas_json_load(pinas_ctx *ctx, const char *path, cJSON **out) PINAS_WUR;
/* Parses text; `where` names the source in error messages. */
pinas_status pinas_json_parse(pinas_ctx *ctx, const char *text, const char *where, cJSON **out) PINAS_WUR;
/* Writes pretty JSON atomically (pinas_file_write_atomic, PINAS_FILE_PUBLIC), with a trailing newline. */
pinas_status pinas_json_save(pinas_ctx *ctx, const char *path, const cJSON *json) PINAS_WUR;

/* Typed getters. `where` names the file ("configs/x.json"), `path` the JSON path of `obj`
 * ("train", may be "" for the root), `key` the member. Errors read
 * "configs/x.json: train.epochs: expected a positive integer, got \"ten\"".
 * A missing key is an error unless the _opt variant is used, which leaves *out unchanged. */
pinas_status pinas_json_get_int(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                const char *key, int64_t lo, int64_t hi, int64_t *out) PINAS_WUR;
pinas_status pinas_json_get_int_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                    const char *key, int64_t lo, int64_t hi, int64_t *out) PINAS_WUR;
pinas_status pinas_json_get_num(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                const char *key, double lo, double hi, double *out) PINAS_WUR;
pinas_status pinas_json_get_num_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                    const char *key, double lo, double hi, double *out) PINAS_WUR;
pinas_status pinas_json_get_bool_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                     const char *key, int *out) PINAS_WUR;
/* *out is borrowed from obj. */
pinas_status pinas_json_get_str(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                const char *key, const char **out) PINAS_WUR;
pinas_status pinas_json_get_str_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                    const char *key, const char **out) PINAS_WUR;
/* Reads an array of n integers (exactly n when n > 0) into out. */
pinas_status pinas_json_get_int_array(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                      const char *key, int64_t *out, int n) PINAS_WUR;
/* Describes a JSON value for messages: "\"ten\"", "3.5", "an object", "null". Returns a new string. */
char *pinas_json_describe(const cJSON *v);
/* Looks up "a.b.c" in obj. Borrowed, or NULL. */
cJSON *pinas_json_at(const cJSON *obj, const char *dotted);
/* Joins a JSON path and a key: ("train", "epochs") -> "train.epochs"; ("", "x") -> "x". New string. */
char *pinas_json_path_join(const char *path, const char *key);

/* ---------------------------------------------------------------- safetensors */

typedef enum { PINAS_F32 = 0, PINAS_F64 = 1, PINAS_I64 = 2, PINAS_U8 = 3 } pinas_dtype;
#define PINAS_MAX_DIMS 8

size_t pinas_dtype_size(pinas_dtype dt);
const char *pinas_dtype_name(pinas_dtype dt); /* "F32", ... */

/* A set of named tensors, in memory. Used for both reading and writing safetensors files. */
typedef struct pinas_tensors pinas_tensors;

typedef struct {
    const char *name;       /* borrowed */
    pinas_dtype dtype;
    int ndim;
    int64_t shape[PINAS_MAX_DIMS];
    size_t nbytes;
    void *data;             /* borrowed; owned by the set; 8-byte aligned */
} pinas_tensor_view;

pinas_tensors *pinas_tensors_create(void);
/* pinas_tensors_free(NULL) is a no-op. */
void pinas_tensors_free(pinas_tensors *t);
/* Adds a tensor, copying data (data may be NULL to zero-fill). Replaces one of the same name. */
pinas_status pinas_tensors_add(pinas_ctx *ctx, pinas_tensors *t, const char *name, pinas_dtype dtype,
                               int ndim, const int64_t *shape, const void *data) PINAS_WUR;
int pinas_tensors_count(const pinas_tensors *t);
/* The k-th tensor (in insertion/file order). Returns 0 on success, -1 when out of range. */
int pinas_tensors_at(const pinas_tensors *t, int k, pinas_tensor_view *out);
/* Looks a tensor up by name. Returns 0 when found, -1 otherwise. */
int pinas_tensors_find(const pinas_tensors *t, const char *name, pinas_tensor_view *out);
/* Like find, but an error naming `where` and the tensor when missing, of another dtype, or of
 * another shape (shape may be NULL to skip the shape check). */
pinas_status pinas_tensors_expect(pinas_ctx *ctx, const pinas_tensors *t, const char *where, const char *name,
                                  pinas_dtype dtype, int ndim, const int64_t *shape,
                                  pinas_tensor_view *out) PINAS_WUR;

/* Reads a safetensors file with strict validation: header length bounds, valid JSON, known
 * dtypes, shapes that agree with the byte ranges, offsets inside the file, no overlaps and no gaps.
 * Any violation is PINAS_EFORMAT with a message naming the file and the tensor. */
pinas_status pinas_safetensors_load(pinas_ctx *ctx, const char *path, pinas_tensors **out) PINAS_WUR;
/* Same on a memory buffer; `where` names it in messages. */
pinas_status pinas_safetensors_parse(pinas_ctx *ctx, const uint8_t *buf, size_t len, const char *where,
                                     pinas_tensors **out) PINAS_WUR;
/* Writes atomically (pinas_file_write_atomic, PINAS_FILE_PUBLIC: the umask applies). `metadata`
 * (may be NULL) is a flat object of string values stored under "__metadata__". */
pinas_status pinas_safetensors_save(pinas_ctx *ctx, const char *path, const pinas_tensors *t,
                                    const cJSON *metadata) PINAS_WUR;
/* The same with an explicit mode (PINAS_FILE_SECRET for a party's secret weights or inputs). */
pinas_status pinas_safetensors_save_mode(pinas_ctx *ctx, const char *path, const pinas_tensors *t,
                                         const cJSON *metadata, int mode) PINAS_WUR;

/* ---------------------------------------------------------------- run configs */

/* Run configs (typed records per section, their parser and schema) are declared in pinas_config.h,
 * which includes this header. The forward name lets a module header take a `const pinas_config *`
 * without including it. */
typedef struct pinas_config pinas_config;

/* ---------------------------------------------------------------- did-you-mean */

/* Levenshtein distance. */
int pinas_edit_distance(const char *a, const char *b);
/* The candidate closest to `word` if within a useful distance, else NULL. Borrowed. */
const char *pinas_did_you_mean(const char *word, const char *const *candidates, int n);

/* ------------------------------------------------------------ seeded non-cryptographic randomness */

/* splitmix64: a reproducible stream from any seed, for sampling architectures and the like (never
 * for secrets: those come from the OS). */
typedef struct {
    uint64_t s;
} pinas_rng;

static inline uint64_t pinas_rng_next(pinas_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n) (0 when n is 0). */
static inline uint64_t pinas_rng_below(pinas_rng *r, uint64_t n) { return n ? pinas_rng_next(r) % n : 0; }

/* Uniform double in [0, 1) (53 random bits). */
static inline double pinas_rng_unif(pinas_rng *r) { return (double)(pinas_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* Fills x[0..n) with uniform values in [lo, hi): inputs of benchmarks and tests. */
void pinas_rng_fill_uniform(pinas_rng *r, float *x, size_t n, double lo, double hi);
/* Fills x[0..n) with standard-normal values (Box-Muller, two values per pair of draws). */
void pinas_rng_fill_normal(pinas_rng *r, float *x, size_t n);

#ifdef __cplusplus
}
#endif
#endif
