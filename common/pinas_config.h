/* Run configs as typed records: one struct per section, parsed and validated once.
 *
 * A run config is the user's JSON file merged over the schema's defaults, with --set overrides
 * applied, then validated field by field (type, range, choices) and across fields. The result is a
 * pinas_config whose sections (cfg->data, cfg->train, ...) are plain C records: modules take the
 * section they need (`const pinas_cfg_train *`) and never see the JSON. The schema (key, type,
 * default, range, doc) lives in common/config.c and is printed by `pinas config schema`; the
 * fixed-point limits below are the single source of the frac_bits / cmp_bits defaults and ranges
 * for the config, the command lines and the runtime. */
#ifndef PINAS_CONFIG_H
#define PINAS_CONFIG_H

#include "pinas_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ fixed-point limits (one place) */

/* The bound on frac_bits (f). The runtime computes in Z_2^64: a real value v is the integer
 * round(v * 2^f) read as signed, so |v| < 2^(63-f). A conv/linear output or a square (poly) is a
 * product of two f-bit numbers: before its local truncation it carries 2f fractional bits, i.e. a
 * real magnitude |y| is the ring integer |y| * 2^(2f). Two things must hold:
 *   - no wrap: |y| * 2^(2f) < 2^63;
 *   - the truncation (SecureML local shift, pinas_ring_trunc_share) fails for one element with
 *     probability <= |y| * 2^(2f) / 2^64 = |y| * 2^(2f-64), and a failure is an error of about
 *     2^(64-2f) in real units (1e6 at f = 22: the "garbage with exit 0" of larger f).
 * Over an inference with N truncated elements of magnitude up to 2^a the chance that any fails is
 * <= N * 2^(a + 2f - 64). With a = 6 (|y| < 64: pre-activation values of a batch-normalised net),
 * N <= 2^20 (ResNet-18 on 32x32 inputs truncates about 2^19 elements per image) and a safety
 * margin of 2^-2 on top of that bound (the typical |y| is near 1, not 64), the rule is
 *     2f + PINAS_RING_HEADROOM_BITS <= 64, PINAS_RING_HEADROOM_BITS = a + log2 N + 2 = 28,
 * so f <= 18. Measured (`pinas infer --random 32`, tests/golden/tiny_space.json all-poly): max
 * logit error 3.6e-5 at f = 16, 1.1e-5 at f = 18; issue 12's probe saw 1e6 at f = 22 on the
 * quickstart export. frac_bits above the bound are rejected everywhere (config, command lines,
 * meta.json, preprocessing files); inputs are bounded to match (pinas_mpc_input_limit). */
#define PINAS_RING_HEADROOM_BITS 28
/* The per-model form of the same rule (pinas_mpc_frac_bits_bound): with the model's own count N of
 * truncated elements per image, f <= (64 - PINAS_RING_ACT_BITS - PINAS_RING_MARGIN_BITS - ceil(log2 N)) / 2,
 * and never above PINAS_FRAC_BITS_MAX: a net that truncates more than 2^20 elements per image (an
 * ImageNet-sized one) gets a lower bound than 18. */
#define PINAS_RING_ACT_BITS 6
#define PINAS_RING_MARGIN_BITS 2
#define PINAS_FRAC_BITS_DEFAULT 16
#define PINAS_FRAC_BITS_MIN 4
#define PINAS_FRAC_BITS_MAX ((64 - PINAS_RING_HEADROOM_BITS) / 2)
#define PINAS_CMP_BITS_DEFAULT 64
#define PINAS_CMP_BITS_MIN 8
#define PINAS_CMP_BITS_MAX 64

/* ------------------------------------------------------------ sections */

/* Most normalisation values per channel (images have 1 or 3 channels). */
#define PINAS_CFG_MAX_CHANNELS 3

/* The enums follow the order of the schema's choices ("synthetic|cifar10|..."): the parser stores
 * the index of the chosen string. */
typedef enum {
    PINAS_DATASET_SYNTHETIC = 0,
    PINAS_DATASET_CIFAR10,
    PINAS_DATASET_CIFAR100,
    PINAS_DATASET_MNIST,
    PINAS_DATASET_FASHION_MNIST,
    PINAS_DATASET_IMAGEFOLDER,
} pinas_dataset_kind;

typedef enum { PINAS_FLIP_AUTO = 0, PINAS_FLIP_ON, PINAS_FLIP_OFF } pinas_flip;

/* "data": what is loaded and how it is prepared. */
typedef struct {
    pinas_dataset_kind dataset;
    const char *dataset_name;   /* as written ("fashion-mnist") */
    const char *path;           /* "" = the dataset's default location */
    int64_t train_images, test_images;   /* 0 = all */
    int pad, resize, channels, eval_resize;
    int crop_pad;               /* -1 = max(1, H/8), 0 = no random crop, > 0 pixels */
    double scale_min;
    int n_mean, n_std;          /* 0 = computed (or ImageNet's for imagefolder); else equal, 1..MAX_CHANNELS */
    double mean[PINAS_CFG_MAX_CHANNELS], std[PINAS_CFG_MAX_CHANNELS];
    int64_t synthetic_train, synthetic_test;
    int synthetic_classes, synthetic_size;
    double val_fraction;
    int augment;
    pinas_flip flip;
} pinas_cfg_data;

typedef enum { PINAS_SCHEDULE_COSINE = 0, PINAS_SCHEDULE_CONSTANT } pinas_schedule;

/* "train": the optimiser of the weights. */
typedef struct {
    int epochs, batch_size;
    double lr, momentum, weight_decay, label_smoothing, grad_clip;
    int nesterov;
    pinas_schedule schedule;
    const char *teacher;        /* "" = no distillation */
    double kd_alpha, kd_temperature;
} pinas_cfg_train;

typedef enum { PINAS_LOSS_ADDITIVE = 0, PINAS_LOSS_MULTIPLICATIVE } pinas_search_loss;
typedef enum { PINAS_NAIVE_BASE_CHEAPEST = 0, PINAS_NAIVE_BASE_POLY } pinas_naive_base;
typedef enum { PINAS_SEARCH_GRADIENT = 0, PINAS_SEARCH_KNAPSACK } pinas_search_method;
typedef enum { PINAS_DISTORTION_LOSS = 0 } pinas_distortion;
#define PINAS_CFG_MAX_BASES 2

/* "search": the bi-level search and its baselines. */
typedef struct {
    int warmup_epochs, epochs;
    double arch_lr, arch_weight_decay;
    pinas_search_loss loss;
    const double *lambdas;      /* owned by the config */
    int n_lambdas;
    const double *targets_ms;
    int n_targets;
    double beta, ref_ms, tau_start, tau_end;
    int target_clamp, gumbel;
    const char *hw, *net;       /* profiles of the search loss */
    int baselines, naive_first_k, naive_random;
    int n_naive_bases;
    pinas_naive_base naive_bases[PINAS_CFG_MAX_BASES];
    /* search.method and the knapsack method's fields (nas/pinas_knapsack.h) */
    pinas_search_method method;
    const double *budgets_ms;   /* owned by the config */
    int n_budgets;
    const char *const *knapsack_candidates;   /* owned; names as in pinas_cand_parse */
    int n_knapsack_candidates;
    double knapsack_resolution_ms;            /* 0 = each budget / 10000 */
    pinas_distortion distortion;
    int knapsack_images;
} pinas_cfg_search;

typedef enum { PINAS_FINETUNE_SUPERNET = 0, PINAS_FINETUNE_SCRATCH } pinas_finetune_mode;

/* "finetune": how every derived architecture (and baseline) is trained after the search. */
typedef struct {
    pinas_finetune_mode mode;
    int epochs;
    double lr;
    int distill;
} pinas_cfg_finetune;

/* What the search's LUT and E[latency] price (latency.metric): the online phase alone; online +
 * offline (dealer compute + preprocessing transfer, per inference); or the end-to-end latency of a
 * stream of inferences under a client storage budget and an arrival rate (latency_model/pinas_e2e.h;
 * linearised per slot, see pinas_cost_lut_set_metric). */
typedef enum { PINAS_METRIC_ONLINE = 0, PINAS_METRIC_TOTAL, PINAS_METRIC_E2E } pinas_latency_metric;

/* "latency": the profiles every candidate is priced under, and the metric the search ranks by. */
typedef struct {
    const char *const *hw;
    int n_hw;
    const char *const *net;
    int n_net;
    pinas_latency_metric metric;
    double client_storage_bytes; /* e2e: the client's preprocessing budget (0: nothing stored) */
    double rate_per_min;         /* e2e: Poisson arrival rate */
} pinas_cfg_latency;

/* "mpc": the runtime's fixed-point parameters. */
typedef struct {
    int frac_bits, cmp_bits;
} pinas_cfg_mpc;

/* "export": which candidate `pinas export` picks. */
typedef struct {
    double budget_ms;           /* 0 = the most accurate candidate */
    int bit_cut;                /* choose per-slot comparison windows (nas/pinas_bitcut.h) */
    double bit_cut_eps;         /* largest tolerated share of sign errors per slot */
    int bit_cut_margin_bits;    /* extra top bits kept above the measured range */
    int bit_cut_images;         /* held-out images the ranges are measured on */
} pinas_cfg_export;

/* "infer": the private inference at the end of the demo. */
typedef struct {
    int images;                 /* test images run privately */
} pinas_cfg_infer;

/* "dist": data-parallel runs over several processes (train/pinas_dist.h). */
typedef struct {
    double timeout_s;           /* a collective (or the rendezvous) waiting longer fails the run */
    int world_size;             /* recorded by pinas search: the processes the run was started with */
} pinas_cfg_dist;

/* The whole config. Every string and array is owned by the config and lives as long as it. Treat
 * the records as read-only: pinas_config_json (what config.json records) does not follow changes. */
typedef struct pinas_config {
    const char *name;
    uint64_t seed;
    const char *device;         /* "cpu" | "cuda" */
    int threads;                /* 0 = all cores */
    const char *out_dir;
    /* "space": a path (resolved against the config file's directory, then the working directory,
     * by pinas_net_load_config_space) or an inline net object. */
    const char *space_path;     /* NULL when inline */
    const cJSON *space_inline;  /* NULL when a path */
    const char *source;         /* the file it came from ("" for defaults) */
    pinas_cfg_data data;
    pinas_cfg_train train;
    pinas_cfg_search search;
    pinas_cfg_finetune finetune;
    pinas_cfg_latency latency;
    pinas_cfg_mpc mpc;
    pinas_cfg_export export_;
    pinas_cfg_infer infer;
    pinas_cfg_dist dist;
    struct pinas_config_store *store;   /* private: the effective JSON and owned storage */
} pinas_config;

/* Loads `path` (may be NULL for the defaults alone) and applies `sets` ("key.path=value"; the value
 * is parsed as JSON when it parses, else taken as a string). Every field is checked against the
 * schema (type, range, choices), then across fields: data.mean and data.std have equally many
 * values, at most PINAS_CFG_MAX_CHANNELS; the gradient method's search.loss has at least one value
 * to search with (search.lambdas, or search.targets_ms, each > 0); search.method "knapsack" has at
 * least one search.budgets_ms value (each > 0) and one search.knapsack_candidates name (the names
 * are checked by the search, nas/knapsack_search.c); search.naive_bases lists each base at most
 * once. Errors (PINAS_EINVAL; PINAS_EFORMAT for a wrong "format"; file errors from pinas_json_load)
 * name the file (or "--set") and the field; unknown keys get a did-you-mean suggestion.
 * *out: new, NULL on error; caller frees with pinas_config_free. */
pinas_status pinas_config_load(pinas_ctx *ctx, const char *path, const char *const *sets, int n_sets,
                               pinas_config **out) PINAS_WUR;
/* Same over a parsed object (not modified; may be NULL for the defaults alone); `where` names it in
 * messages and becomes cfg->source. */
pinas_status pinas_config_from_json(pinas_ctx *ctx, const cJSON *user, const char *where, const char *const *sets,
                                    int n_sets, pinas_config **out) PINAS_WUR;
/* pinas_config_free(NULL) is a no-op. */
void pinas_config_free(pinas_config *cfg);
/* The effective config as JSON, for writing it into a run dir and for `pinas config show` only
 * (never for reading fields: use the records). Borrowed. */
const cJSON *pinas_config_json(const pinas_config *cfg);
/* Writes the schema as a human-readable table (key, type, default, doc) to f, one field a line. */
void pinas_config_print_schema(FILE *f);

/* The schema's name of a dataset ("fashion-mnist"); "?" when out of range. Static string. */
const char *pinas_dataset_kind_name(pinas_dataset_kind d);

#ifdef __cplusplus
}
#endif
#endif
