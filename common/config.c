/* Run configs: the schema (keys, types, defaults, ranges, docs), validation with file/field errors,
 * --set overrides, and the one parse step that fills the typed records of pinas_config.h. */
#define _GNU_SOURCE
#include "pinas_config.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_INT, T_NUM, T_BOOL, T_STR, T_ENUM, T_NUMS, T_STRS, T_SPACE } field_type;

/* Where a validated value lands in struct pinas_config (at `off`; arrays also write their count,
 * an int, at `off_n`). */
typedef enum {
    S_INT,    /* int */
    S_I64,    /* int64_t */
    S_U64,    /* uint64_t */
    S_DBL,    /* double */
    S_BOOL,   /* int, 0 or 1 */
    S_STR,    /* const char *, borrowed from the effective JSON */
    S_ENUM,   /* an enum: the index of the value in `choices` */
    S_DFIX,   /* double[PINAS_CFG_MAX_CHANNELS] */
    S_DARR,   /* const double *, allocated */
    S_SARR,   /* const char *const *, allocated */
    S_EFIX,   /* enum[PINAS_CFG_MAX_BASES] of `choices` indices */
    S_SPACE,  /* space_path or space_inline */
} store_kind;

typedef struct {
    const char *key;     /* dotted path */
    field_type type;
    const char *def;     /* default, as JSON text */
    double lo, hi;       /* ranges for T_INT / T_NUM / T_NUMS */
    const char *choices; /* T_ENUM / T_STRS: "a|b|c" (T_STRS: NULL = any strings) */
    const char *doc;
    store_kind store;
    size_t off, off_n;
} field;

#define INF HUGE_VAL
#define STR_(x) #x
#define STR(x) STR_(x)
/* Record placement of a row: AT(kind, member) or ATN(kind, member, count member). */
#define AT(kind, m) kind, offsetof(pinas_config, m), 0
#define ATN(kind, m, n) kind, offsetof(pinas_config, m), offsetof(pinas_config, n)
static const field schema[] = {
    {"name", T_STR, "\"run\"", 0, 0, NULL, "run name; outputs go to <out_dir>/<name>/", AT(S_STR, name)},
    {"seed", T_INT, "0", 0, 4294967295.0, NULL, "seed for data order, init, augmentation and sampling", AT(S_U64, seed)},
    {"device", T_ENUM, "\"cpu\"", 0, 0, "cpu|cuda", "libtorch device for training", AT(S_STR, device)},
    {"threads", T_INT, "0", 0, 256, NULL, "CPU threads for training (0 = all cores)", AT(S_INT, threads)},
    {"dist.timeout_s", T_NUM, "300", 1, 86400, NULL,
     "data-parallel runs: seconds a collective or the rendezvous may wait before the run fails naming the missing rank (--dist-timeout)", AT(S_DBL, dist.timeout_s)},
    {"dist.world_size", T_INT, "1", 1, 65536, NULL,
     "data-parallel processes of the run (recorded by pinas search in config.json; a resume with another count says so)", AT(S_INT, dist.world_size)},
    {"out_dir", T_STR, "\"results\"", 0, 0, NULL, "parent directory of run directories", AT(S_STR, out_dir)},
    {"space", T_SPACE, "\"search_spaces/spaces/quickstart.json\"", 0, 0, NULL,
     "search space: a pinas-net/1 file (relative to the config file or the working directory) or an inline object", AT(S_SPACE, space_path)},
    {"data.dataset", T_ENUM, "\"synthetic\"", 0, 0, "synthetic|cifar10|cifar100|mnist|fashion-mnist|imagefolder", "dataset", AT(S_ENUM, data.dataset)},
    {"data.path", T_STR, "\"\"", 0, 0, NULL,
     "where the dataset is (\"\" = its default: fashion-mnist /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist), "
     "mnist data/mnist, cifar10 data/cifar-10-batches-bin, cifar100 data/cifar-100-binary, imagefolder data/imagenet); "
     "CIFAR: the binary files; (fashion-)mnist: the four IDX files, gzipped or not; imagefolder: ROOT with train/<class>/ and val/<class>/", AT(S_STR, data.path)},
    {"data.train_images", T_INT, "0", 0, 1e9, NULL, "keep only the first N training images (0 = all)", AT(S_I64, data.train_images)},
    {"data.test_images", T_INT, "0", 0, 1e9, NULL, "keep only the first N test images (0 = all)", AT(S_I64, data.test_images)},
    {"data.pad", T_INT, "0", 0, 256, NULL, "zero pixels added on each side at load (Fashion-MNIST 28x28 -> 32x32 with 2); not for imagefolder", AT(S_INT, data.pad)},
    {"data.resize", T_INT, "0", 0, 4096, NULL,
     "bilinear resize to N x N after padding (0 = keep); imagefolder: the crop size (0 = 224)", AT(S_INT, data.resize)},
    {"data.channels", T_INT, "0", 0, 3, NULL, "0 = the dataset's own; 3 replicates a grey channel (a 3-channel space on Fashion-MNIST), 1 averages RGB", AT(S_INT, data.channels)},
    {"data.eval_resize", T_INT, "0", 0, 8192, NULL, "imagefolder: evaluation resizes the shorter side to N, then crops the centre (0 = resize*8/7: 256 for 224)", AT(S_INT, data.eval_resize)},
    {"data.scale_min", T_NUM, "0", 0, 1, NULL, "imagefolder: random-resized crops keep [scale_min, 1] of the area in training (0 = 0.08)", AT(S_DBL, data.scale_min)},
    {"data.mean", T_NUMS, "[]", 0, 1, NULL, "normalisation mean per channel (1 or C values; [] = the training set's; imagefolder: ImageNet's)", ATN(S_DFIX, data.mean, data.n_mean)},
    {"data.std", T_NUMS, "[]", 1e-6, INF, NULL, "normalisation std per channel (as many values as data.mean)", ATN(S_DFIX, data.std, data.n_std)},
    {"data.synthetic_train", T_INT, "2000", 10, 1e7, NULL, "synthetic set: training images", AT(S_I64, data.synthetic_train)},
    {"data.synthetic_test", T_INT, "500", 10, 1e7, NULL, "synthetic set: test images", AT(S_I64, data.synthetic_test)},
    {"data.synthetic_classes", T_INT, "10", 2, 1000, NULL, "synthetic set: classes", AT(S_INT, data.synthetic_classes)},
    {"data.synthetic_size", T_INT, "16", 4, 256, NULL, "synthetic set: image height and width", AT(S_INT, data.synthetic_size)},
    {"data.val_fraction", T_NUM, "0.5", 0.05, 0.95, NULL, "share of the training split used for architecture (alpha) steps", AT(S_DBL, data.val_fraction)},
    {"data.augment", T_BOOL, "true", 0, 0, NULL,
     "augment training batches: random crop (data.crop_pad) and flips (data.flip); imagefolder: random-resized crop + flip", AT(S_BOOL, data.augment)},
    {"data.flip", T_ENUM, "\"auto\"", 0, 0, "auto|on|off", "horizontal flips when augmenting (auto: on, except for mnist digits)", AT(S_ENUM, data.flip)},
    {"data.crop_pad", T_INT, "-1", -1, 256, NULL, "random-crop zero padding when augmenting (-1 = max(1, H/8): 4 on 32x32; 0 = no crop)", AT(S_INT, data.crop_pad)},
    {"train.epochs", T_INT, "10", 1, 100000, NULL, "training epochs", AT(S_INT, train.epochs)},
    {"train.batch_size", T_INT, "64", 1, 65536, NULL, "mini-batch size", AT(S_INT, train.batch_size)},
    {"train.lr", T_NUM, "0.05", 0, 10, NULL, "initial SGD learning rate", AT(S_DBL, train.lr)},
    {"train.momentum", T_NUM, "0.9", 0, 1, NULL, "SGD momentum", AT(S_DBL, train.momentum)},
    {"train.nesterov", T_BOOL, "true", 0, 0, NULL, "Nesterov momentum", AT(S_BOOL, train.nesterov)},
    {"train.weight_decay", T_NUM, "5e-4", 0, 1, NULL, "SGD weight decay", AT(S_DBL, train.weight_decay)},
    {"train.label_smoothing", T_NUM, "0", 0, 0.99, NULL, "cross-entropy label smoothing", AT(S_DBL, train.label_smoothing)},
    {"train.grad_clip", T_NUM, "0", 0, 1e6, NULL,
     "clip the weight gradients to this joint 2-norm before every SGD step (0 = off; keeps deep polynomial nets from diverging)", AT(S_DBL, train.grad_clip)},
    {"train.schedule", T_ENUM, "\"cosine\"", 0, 0, "cosine|constant", "learning-rate schedule", AT(S_ENUM, train.schedule)},
    {"train.teacher", T_STR, "\"\"", 0, 0, NULL, "model dir of a teacher for knowledge distillation (\"\" = none)", AT(S_STR, train.teacher)},
    {"train.kd_alpha", T_NUM, "0.5", 0, 1, NULL, "weight of the distillation loss", AT(S_DBL, train.kd_alpha)},
    {"train.kd_temperature", T_NUM, "4", 0.01, 100, NULL, "distillation temperature", AT(S_DBL, train.kd_temperature)},
    {"search.warmup_epochs", T_INT, "2", 0, 100000, NULL, "weight-only epochs before alpha updates start", AT(S_INT, search.warmup_epochs)},
    {"search.epochs", T_INT, "8", 1, 100000, NULL, "bi-level search epochs (after warm-up)", AT(S_INT, search.epochs)},
    {"search.arch_lr", T_NUM, "3e-3", 0, 10, NULL, "Adam learning rate of the alphas", AT(S_DBL, search.arch_lr)},
    {"search.arch_weight_decay", T_NUM, "1e-3", 0, 1, NULL, "Adam weight decay of the alphas", AT(S_DBL, search.arch_weight_decay)},
    {"search.loss", T_ENUM, "\"additive\"", 0, 0, "additive|multiplicative", "CE + lambda*E[lat]/ref, or CE*max(1, E[lat]/target)^beta", AT(S_ENUM, search.loss)},
    {"search.lambdas", T_NUMS, "[0, 0.5, 2]", 0, INF, NULL, "additive form: one search per lambda", ATN(S_DARR, search.lambdas, search.n_lambdas)},
    {"search.targets_ms", T_NUMS, "[]", 0, INF, NULL, "multiplicative form: one search per latency target (ms)", ATN(S_DARR, search.targets_ms, search.n_targets)},
    {"search.beta", T_NUM, "0.6", 0, 100, NULL, "multiplicative form: exponent", AT(S_DBL, search.beta)},
    {"search.target_clamp", T_BOOL, "true", 0, 0, NULL,
     "multiplicative form: CE*max(1, E/target)^beta (true) or the literal CE*(E/target)^beta (false; Adam cancels the target)", AT(S_BOOL, search.target_clamp)},
    {"search.ref_ms", T_NUM, "0", 0, INF, NULL, "additive form: latency reference in ms (0 = the all-ReLU latency)", AT(S_DBL, search.ref_ms)},
    {"search.gumbel", T_BOOL, "false", 0, 0, NULL, "Gumbel-softmax instead of softmax for the slot mixtures", AT(S_BOOL, search.gumbel)},
    {"search.tau_start", T_NUM, "5", 0.01, 100, NULL, "Gumbel temperature at the start", AT(S_DBL, search.tau_start)},
    {"search.tau_end", T_NUM, "0.5", 0.01, 100, NULL, "Gumbel temperature at the end (exponential schedule)", AT(S_DBL, search.tau_end)},
    {"search.hw", T_STR, "\"cpu\"", 0, 0, NULL, "hardware profile used in the search loss", AT(S_STR, search.hw)},
    {"search.net", T_STR, "\"lan\"", 0, 0, NULL, "network profile used in the search loss", AT(S_STR, search.net)},
    {"search.baselines", T_BOOL, "true", 0, 0, NULL, "also train and price the all-ReLU and all-poly architectures of the space", AT(S_BOOL, search.baselines)},
    {"search.naive_first_k", T_BOOL, "false", 0, 0, NULL,
     "naive baselines at matched latency: for each candidate, relu/maxpool in the first k slots and poly/avgpool after, k as large as its latency allows", AT(S_BOOL, search.naive_first_k)},
    {"search.naive_bases", T_STRS, "[\"cheapest\", \"poly\"]", 0, 0, "cheapest|poly",
     "what naive baselines put in the slots without relu/maxpool: the slot's cheapest candidate (identity where there is one), and/or poly/avgpool", ATN(S_EFIX, search.naive_bases, search.n_naive_bases)},
    {"search.naive_random", T_INT, "0", 0, 1000, NULL,
     "naive baselines at matched latency: per candidate, N random placements of relu/maxpool filled up to its latency", AT(S_INT, search.naive_random)},
    {"search.method", T_ENUM, "\"gradient\"", 0, 0, "gradient|knapsack",
     "gradient: the bi-level search (one candidate per search.lambdas / search.targets_ms value); knapsack: Gorski et al.'s patch-ReLU selection (per act slot and option of search.knapsack_candidates a measured distortion and a LUT cost, one option per slot by an exact multiple-choice knapsack per search.budgets_ms value)", AT(S_ENUM, search.method)},
    {"search.budgets_ms", T_NUMS, "[]", 0, INF, NULL,
     "knapsack: one candidate per latency budget, in ms of the whole net's predicted latency under search.hw / search.net (the LUT's latency.metric)", ATN(S_DARR, search.budgets_ms, search.n_budgets)},
    {"search.knapsack_candidates", T_STRS,
     "[\"relu\", \"patch_relu:1x2\", \"patch_relu:2x1\", \"patch_relu:2x2\", \"patch_relu:2x3\", \"patch_relu:3x2\", \"patch_relu:3x3\", \"patch_relu:4x4\"]", 0, 0, NULL,
     "knapsack: the options of every act slot (relu = 1x1, patch_relu:HxW, identity, poly; at most 8, relu among them); they replace the act slots' candidate lists of the space", ATN(S_SARR, search.knapsack_candidates, search.n_knapsack_candidates)},
    {"search.knapsack_resolution_ms", T_NUM, "0", 0, INF, NULL,
     "knapsack: the DP grid step in ms (costs rounded up to it; the answer is within one step per slot of the optimum); 0 = each budget / 10000", AT(S_DBL, search.knapsack_resolution_ms)},
    {"search.distortion", T_ENUM, "\"loss\"", 0, 0, "loss",
     "knapsack: a slot option's distortion is the increase of the all-ReLU net's mean cross-entropy on the held-out images when only that slot takes the option (the seed's per-channel distortion is not implemented)", AT(S_ENUM, search.distortion)},
    {"search.knapsack_images", T_INT, "512", 1, 1e6, NULL,
     "knapsack: held-out images (the first N of the validation split, at most all of it) the distortions are measured on", AT(S_INT, search.knapsack_images)},
    {"finetune.mode", T_ENUM, "\"supernet\"", 0, 0, "supernet|scratch", "derived nets start from supernet weights or from scratch", AT(S_ENUM, finetune.mode)},
    {"finetune.epochs", T_INT, "4", 0, 100000, NULL, "fine-tuning (or retraining) epochs per derived net", AT(S_INT, finetune.epochs)},
    {"finetune.lr", T_NUM, "0.02", 0, 10, NULL, "initial learning rate of fine-tuning", AT(S_DBL, finetune.lr)},
    {"finetune.distill", T_BOOL, "false", 0, 0, NULL,
     "knowledge distillation from the run's trained all-ReLU baseline (trained first) when fine-tuning every other point (train.kd_alpha, train.kd_temperature)", AT(S_BOOL, finetune.distill)},
    {"latency.hw", T_STRS, "[\"cpu\", \"fpga-zcu104\", \"pasnet\"]", 0, 0, NULL, "hardware profiles every candidate is priced under", ATN(S_SARR, latency.hw, latency.n_hw)},
    {"latency.net", T_STRS, "[\"lan\", \"wan\"]", 0, 0, NULL, "network profiles every candidate is priced under", ATN(S_SARR, latency.net, latency.n_net)},
    {"latency.metric", T_ENUM, "\"online\"", 0, 0, "online|total|e2e",
     "what the search's LUT and E[latency] price (search.hw/search.net): the online phase; online + offline compute + preprocessing transfer; or the end-to-end latency under latency.client_storage_bytes and latency.rate_per_min (simulated, linearised per slot)", AT(S_ENUM, latency.metric)},
    {"latency.client_storage_bytes", T_NUM, "2e9", 0, 1e18, NULL, "metric e2e: the client's storage budget for preprocessing in bytes (below one inference's material: every inference waits for its own)", AT(S_DBL, latency.client_storage_bytes)},
    {"latency.rate_per_min", T_NUM, "6", 1e-6, 1e9, NULL, "metric e2e: inferences per minute (Poisson arrivals)", AT(S_DBL, latency.rate_per_min)},
    {"mpc.frac_bits", T_INT, STR(PINAS_FRAC_BITS_DEFAULT), PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, NULL, "fixed-point fractional bits of the 2PC runtime", AT(S_INT, mpc.frac_bits)},
    {"mpc.cmp_bits", T_INT, STR(PINAS_CMP_BITS_DEFAULT), PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, NULL, "bits compared by ReLU/DReLU (top bits of the 64)", AT(S_INT, mpc.cmp_bits)},
    {"export.budget_ms", T_NUM, "0", 0, INF, NULL, "pick the most accurate candidate under this latency (0 = the most accurate)", AT(S_DBL, export_.budget_ms)},
    {"export.bit_cut", T_BOOL, "false", 0, 0, NULL,
     "bit cutting: per act/pool slot, the fewest comparison bits (cmp_bits) and window top (cmp_high) whose sign error rate on held-out images is <= export.bit_cut_eps; written to meta.json mpc.layers", AT(S_BOOL, export_.bit_cut)},
    {"export.bit_cut_eps", T_NUM, "0.001", 0, 0.5, NULL, "bit cutting: largest share of a slot's comparisons whose sign may differ (counted conservatively)", AT(S_DBL, export_.bit_cut_eps)},
    {"export.bit_cut_margin_bits", T_INT, "2", 0, 32, NULL, "bit cutting: top bits kept above the largest measured magnitude (the held-out images are not the test set)", AT(S_INT, export_.bit_cut_margin_bits)},
    {"export.bit_cut_images", T_INT, "256", 1, 100000, NULL, "bit cutting: held-out images (validation split) the ranges are measured on", AT(S_INT, export_.bit_cut_images)},
    {"infer.images", T_INT, "64", 1, 100000, NULL, "test images run privately at the end of the demo", AT(S_INT, infer.images)},
};
#define N_FIELDS (int)(sizeof schema / sizeof schema[0])

/* Index of s in the '|'-separated choices (-1 when absent). */
static int choice_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    int k = 0;
    for (const char *p = choices; p && *p; k++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, s, n)) return k;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

static const field *find_field(const char *key)
{
    for (int i = 0; i < N_FIELDS; i++)
        if (strcmp(schema[i].key, key) == 0) return &schema[i];
    return NULL;
}

/* Is `prefix` a section (a proper prefix of some field followed by '.')? */
static int is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (int i = 0; i < N_FIELDS; i++)
        if (strncmp(schema[i].key, prefix, n) == 0 && schema[i].key[n] == '.') return 1;
    return 0;
}

static const char *suggest(const char *path)
{
    static char best[96];
    const char *cands[N_FIELDS * 2];
    int n = 0;
    for (int i = 0; i < N_FIELDS; i++) cands[n++] = schema[i].key;
    /* Sections too, and bare last components for typos in the leaf. */
    const char *dym = pinas_did_you_mean(path, cands, n);
    if (dym) {
        snprintf(best, sizeof best, "%s", dym);
        return best;
    }
    const char *dot = strrchr(path, '.');
    const char *leaf = dot ? dot + 1 : path;
    size_t plen = dot ? (size_t)(dot - path) : 0;
    for (int i = 0; i < N_FIELDS; i++) {
        const char *kd = strrchr(schema[i].key, '.');
        const char *kleaf = kd ? kd + 1 : schema[i].key;
        size_t kplen = kd ? (size_t)(kd - schema[i].key) : 0;
        if (kplen == plen && strncmp(schema[i].key, path, plen) == 0 && pinas_edit_distance(leaf, kleaf) <= 2) {
            snprintf(best, sizeof best, "%s", schema[i].key);
            return best;
        }
    }
    return NULL;
}

static pinas_status check_value(pinas_ctx *ctx, const field *f, const cJSON *v, const char *where)
{
    char *d = NULL;
    pinas_status s = PINAS_OK;
    char want[160];
    switch (f->type) {
    case T_INT:
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < f->lo || v->valuedouble > f->hi) {
            if (f->lo == 1 && f->hi >= 1e5) snprintf(want, sizeof want, "a positive integer");
            else if (f->lo == 0 && f->hi >= 1e9) snprintf(want, sizeof want, "a non-negative integer");
            else snprintf(want, sizeof want, "an integer in [%.0f, %.0f]", f->lo, f->hi);
            s = PINAS_EINVAL;
        }
        break;
    case T_NUM:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < f->lo || v->valuedouble > f->hi) {
            if (isinf(f->hi)) snprintf(want, sizeof want, "a number >= %g", f->lo);
            else snprintf(want, sizeof want, "a number in [%g, %g]", f->lo, f->hi);
            s = PINAS_EINVAL;
        }
        break;
    case T_BOOL:
        if (!cJSON_IsBool(v)) {
            snprintf(want, sizeof want, "true or false");
            s = PINAS_EINVAL;
        }
        break;
    case T_STR:
        if (!cJSON_IsString(v)) {
            snprintf(want, sizeof want, "a string");
            s = PINAS_EINVAL;
        }
        break;
    case T_ENUM:
        if (!cJSON_IsString(v) || choice_index(f->choices, v->valuestring) < 0) {
            snprintf(want, sizeof want, "one of %s", f->choices);
            for (char *q = want; *q; q++)
                if (*q == '|') *q = ',';
            s = PINAS_EINVAL;
        }
        break;
    case T_NUMS:
    case T_STRS: {
        int ok = cJSON_IsArray(v);
        const cJSON *e;
        if (ok) cJSON_ArrayForEach(e, v)
            {
                if (f->type == T_NUMS) ok &= cJSON_IsNumber(e) && isfinite(e->valuedouble) && e->valuedouble >= f->lo && e->valuedouble <= f->hi;
                else ok &= cJSON_IsString(e) && (!f->choices || choice_index(f->choices, e->valuestring) >= 0);
            }
        if (!ok) {
            if (f->type == T_NUMS) snprintf(want, sizeof want, "an array of numbers >= %g", f->lo);
            else if (f->choices) snprintf(want, sizeof want, "an array of strings from %s", f->choices);
            else snprintf(want, sizeof want, "an array of strings");
            s = PINAS_EINVAL;
        }
        break;
    }
    case T_SPACE:
        if (!cJSON_IsString(v) && !cJSON_IsObject(v)) {
            snprintf(want, sizeof want, "a path to a pinas-net/1 file or an inline net object");
            s = PINAS_EINVAL;
        }
        break;
    }
    if (s) {
        d = pinas_json_describe(v);
        pinas_error(ctx, s, "%s: %s: expected %s, got %s", where, f->key, want, d);
        free(d);
    }
    return s;
}

/* Sets dotted `key` in obj to v (taking ownership), creating sections. */
static void set_at(cJSON *obj, const char *key, cJSON *v)
{
    char *copy = pinas_strdup(key), *save = NULL, *tok = strtok_r(copy, ".", &save);
    cJSON *cur = obj;
    for (;;) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next) {
            if (cJSON_GetObjectItemCaseSensitive(cur, tok)) cJSON_ReplaceItemInObjectCaseSensitive(cur, tok, v);
            else cJSON_AddItemToObject(cur, tok, v);
            break;
        }
        cJSON *sub = cJSON_GetObjectItemCaseSensitive(cur, tok);
        if (!cJSON_IsObject(sub)) {
            if (sub) cJSON_DeleteItemFromObjectCaseSensitive(cur, tok);
            sub = cJSON_AddObjectToObject(cur, tok);
        }
        cur = sub;
        tok = next;
    }
    free(copy);
}

/* Walks the user's object: every leaf must be a schema field of the right type. */
static pinas_status merge(pinas_ctx *ctx, cJSON *eff, const cJSON *obj, const char *prefix, const char *where)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        char *key = pinas_json_path_join(prefix, it->string);
        const field *f = find_field(key);
        pinas_status s = PINAS_OK;
        if (f) {
            if (!(s = check_value(ctx, f, it, where))) set_at(eff, key, cJSON_Duplicate(it, 1));
        } else if (is_section(key)) {
            if (!cJSON_IsObject(it)) {
                char *d = pinas_json_describe(it);
                s = pinas_error(ctx, PINAS_EINVAL, "%s: %s: expected an object (a section), got %s", where, key, d);
                free(d);
            } else {
                s = merge(ctx, eff, it, key, where);
            }
        } else {
            const char *dym = suggest(key);
            s = pinas_error(ctx, PINAS_EINVAL, "%s: %s: unknown key%s%s%s", where, key, dym ? " (did you mean \"" : "", dym ? dym : "",
                            dym ? "\"?)" : "");
        }
        free(key);
        if (s) return s;
    }
    return PINAS_OK;
}

/* Applies "key.path=value" overrides to the effective object, validating each like a file value. */
static pinas_status apply_sets(pinas_ctx *ctx, cJSON *eff, const char *const *sets, int n_sets)
{
    pinas_status s = PINAS_OK;
    for (int i = 0; !s && i < n_sets; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i]) return pinas_error(ctx, PINAS_EINVAL, "--set %s: expected key.path=value", sets[i]);
        char *key = strndup(sets[i], (size_t)(eq - sets[i]));
        const field *f = find_field(key);
        if (!f) {
            const char *dym = suggest(key);
            s = pinas_error(ctx, PINAS_EINVAL, "--set: %s: unknown key%s%s%s", key, dym ? " (did you mean \"" : "", dym ? dym : "",
                            dym ? "\"?)" : "");
        } else {
            cJSON *v = cJSON_Parse(eq + 1);
            if (!v || (f->type == T_STR && !cJSON_IsString(v)) || (f->type == T_ENUM && !cJSON_IsString(v))) {
                cJSON_Delete(v);
                v = cJSON_CreateString(eq + 1);
            }
            if (!(s = check_value(ctx, f, v, "--set"))) set_at(eff, key, v);
            else cJSON_Delete(v);
        }
        free(key);
    }
    return s;
}

/* The effective JSON: every schema default, the user's object merged over it (in schema order, so
 * config.json keeps its key order), then the --set overrides. *out: new. */
static pinas_status build_effective(pinas_ctx *ctx, const cJSON *user, const char *where, const char *const *sets, int n_sets,
                                    cJSON **out)
{
    cJSON *eff = cJSON_CreateObject();
    for (int i = 0; i < N_FIELDS; i++) set_at(eff, schema[i].key, cJSON_Parse(schema[i].def));
    pinas_status s = PINAS_OK;
    if (user) {
        if (!cJSON_IsObject(user)) s = pinas_error(ctx, PINAS_EINVAL, "%s: expected a JSON object at the top level", where);
        else {
            cJSON *copy = cJSON_Duplicate(user, 1);
            /* "format" is allowed at the top level for self-description. */
            cJSON *fmt = cJSON_DetachItemFromObjectCaseSensitive(copy, "format");
            if (fmt && (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "pinas-config/1") != 0))
                s = pinas_error(ctx, PINAS_EFORMAT, "%s: format: expected \"pinas-config/1\"", where);
            cJSON_Delete(fmt);
            if (!s) s = merge(ctx, eff, copy, "", where);
            cJSON_Delete(copy);
        }
    }
    if (!s) s = apply_sets(ctx, eff, sets, n_sets);
    if (s) {
        cJSON_Delete(eff);
        return s;
    }
    *out = eff;
    return PINAS_OK;
}

/* ------------------------------------------------------------ the typed records */

#define MAX_ALLOCS 8

/* What a pinas_config owns besides its records. The strings of the records point into `json`. */
struct pinas_config_store {
    cJSON *json;
    char *source;
    void *allocs[MAX_ALLOCS]; /* the arrays of S_DARR / S_SARR rows */
    int n_allocs;
};

/* The enums store their value as an int-sized index into the row's choices. */
_Static_assert(sizeof(pinas_dataset_kind) == sizeof(int) && sizeof(pinas_flip) == sizeof(int) &&
                   sizeof(pinas_schedule) == sizeof(int) && sizeof(pinas_search_loss) == sizeof(int) &&
                   sizeof(pinas_naive_base) == sizeof(int) && sizeof(pinas_finetune_mode) == sizeof(int),
               "config enums are stored as int");

static void *keep(struct pinas_config_store *st, void *p)
{
    st->allocs[st->n_allocs++] = p;
    return p;
}

/* Stores one validated value v of row f into the record. */
static void fill_field(pinas_config *c, const field *f, const cJSON *v)
{
    char *at = (char *)c + f->off;
    int n = cJSON_GetArraySize(v), k = 0;
    int *count = (int *)((char *)c + f->off_n);
    const cJSON *e;
    switch (f->store) {
    case S_INT: *(int *)at = (int)v->valuedouble; break;
    case S_I64: *(int64_t *)at = (int64_t)v->valuedouble; break;
    case S_U64: *(uint64_t *)at = (uint64_t)v->valuedouble; break;
    case S_DBL: *(double *)at = v->valuedouble; break;
    case S_BOOL: *(int *)at = cJSON_IsTrue(v); break;
    case S_STR: *(const char **)at = v->valuestring; break;
    case S_ENUM: *(int *)at = choice_index(f->choices, v->valuestring); break;
    case S_DFIX: /* more than PINAS_CFG_MAX_CHANNELS values: counted, not stored, and rejected later */
        cJSON_ArrayForEach(e, v) if (k < PINAS_CFG_MAX_CHANNELS)((double *)at)[k++] = e->valuedouble;
        *count = n;
        break;
    case S_DARR: {
        double *d = keep(c->store, calloc((size_t)n + 1, sizeof *d));
        cJSON_ArrayForEach(e, v) d[k++] = e->valuedouble;
        *(const double **)at = d;
        *count = n;
        break;
    }
    case S_SARR: {
        const char **d = keep(c->store, calloc((size_t)n + 1, sizeof *d));
        cJSON_ArrayForEach(e, v) d[k++] = e->valuestring;
        *(const char *const **)at = d;
        *count = n;
        break;
    }
    case S_EFIX: /* as S_DFIX, bounded by PINAS_CFG_MAX_BASES */
        cJSON_ArrayForEach(e, v) if (k < PINAS_CFG_MAX_BASES)((int *)at)[k++] = choice_index(f->choices, e->valuestring);
        *count = n;
        break;
    case S_SPACE:
        c->space_path = cJSON_IsString(v) ? v->valuestring : NULL;
        c->space_inline = cJSON_IsObject(v) ? v : NULL;
        break;
    }
}

/* Checks that span fields, once every field is valid on its own. `where` names the config. */
static pinas_status check_across(pinas_ctx *ctx, const pinas_config *c, const char *where)
{
    const pinas_cfg_data *d = &c->data;
    if (d->n_mean > PINAS_CFG_MAX_CHANNELS)
        return pinas_error(ctx, PINAS_EINVAL, "%s: data.mean: expected at most %d values (one per channel), got %d", where,
                           PINAS_CFG_MAX_CHANNELS, d->n_mean);
    if (d->n_std != d->n_mean)
        return pinas_error(ctx, PINAS_EINVAL, "%s: data.std: expected as many values as data.mean (%d), got %d", where, d->n_mean,
                           d->n_std);
    const pinas_cfg_search *se = &c->search;
    int mult = se->loss == PINAS_LOSS_MULTIPLICATIVE;
    int knapsack = se->method == PINAS_SEARCH_KNAPSACK;
    if (knapsack && se->n_budgets < 1)
        return pinas_error(ctx, PINAS_EINVAL, "%s: search.budgets_ms: search.method \"knapsack\" needs at least one latency budget (ms)", where);
    for (int i = 0; i < se->n_budgets; i++)
        if (!(se->budgets_ms[i] > 0))
            return pinas_error(ctx, PINAS_EINVAL, "%s: search.budgets_ms: budgets must be > 0 ms, got %g", where, se->budgets_ms[i]);
    if (knapsack && se->n_knapsack_candidates < 1)
        return pinas_error(ctx, PINAS_EINVAL, "%s: search.knapsack_candidates: search.method \"knapsack\" needs at least one option", where);
    if (!knapsack && (mult ? se->n_targets : se->n_lambdas) < 1)
        return pinas_error(ctx, PINAS_EINVAL, "%s: %s: the %s loss needs at least one value to search with", where,
                           mult ? "search.targets_ms" : "search.lambdas", mult ? "multiplicative" : "additive");
    for (int i = 0; mult && i < se->n_targets; i++)
        if (!(se->targets_ms[i] > 0))
            return pinas_error(ctx, PINAS_EINVAL, "%s: search.targets_ms: targets must be > 0 ms, got %g", where, se->targets_ms[i]);
    if (se->n_naive_bases > PINAS_CFG_MAX_BASES ||
        (se->n_naive_bases == 2 && se->naive_bases[0] == se->naive_bases[1]))
        return pinas_error(ctx, PINAS_EINVAL, "%s: search.naive_bases: expected each of cheapest, poly at most once", where);
    return PINAS_OK;
}

/* Fills every record of c from the validated effective JSON (owned by c->store), then checks
 * across fields. */
static pinas_status parse_records(pinas_ctx *ctx, pinas_config *c, const char *where)
{
    const cJSON *eff = c->store->json;
    for (int i = 0; i < N_FIELDS; i++) fill_field(c, &schema[i], pinas_json_at(eff, schema[i].key));
    c->data.dataset_name = pinas_dataset_kind_name(c->data.dataset);
    c->source = c->store->source;
    return check_across(ctx, c, where);
}

pinas_status pinas_config_from_json(pinas_ctx *ctx, const cJSON *user, const char *where, const char *const *sets, int n_sets,
                                    pinas_config **out)
{
    *out = NULL;
    cJSON *eff = NULL;
    pinas_status s = build_effective(ctx, user, where, sets, n_sets, &eff);
    if (s) return s;
    pinas_config *c = calloc(1, sizeof *c);
    struct pinas_config_store *st = calloc(1, sizeof *st);
    if (!c || !st) {
        free(c);
        free(st);
        cJSON_Delete(eff);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    st->json = eff;
    st->source = pinas_strdup(where ? where : "");
    c->store = st;
    /* A cross-field error names the file, or --set when there is no file. */
    if ((s = parse_records(ctx, c, where && *where ? where : "--set"))) {
        pinas_config_free(c);
        return s;
    }
    *out = c;
    return PINAS_OK;
}

pinas_status pinas_config_load(pinas_ctx *ctx, const char *path, const char *const *sets, int n_sets, pinas_config **out)
{
    cJSON *user = NULL;
    *out = NULL;
    if (path) {
        pinas_status s = pinas_json_load(ctx, path, &user);
        if (s) return s;
    }
    pinas_status s = pinas_config_from_json(ctx, user, path ? path : "", sets, n_sets, out);
    cJSON_Delete(user);
    return s;
}

void pinas_config_free(pinas_config *cfg)
{
    if (!cfg) return;
    struct pinas_config_store *st = cfg->store;
    if (st) {
        for (int i = 0; i < st->n_allocs; i++) free(st->allocs[i]);
        cJSON_Delete(st->json);
        free(st->source);
        free(st);
    }
    free(cfg);
}

const cJSON *pinas_config_json(const pinas_config *cfg) { return cfg->store->json; }

const char *pinas_dataset_kind_name(pinas_dataset_kind d)
{
    static const char *names[] = {"synthetic", "cifar10", "cifar100", "mnist", "fashion-mnist", "imagefolder"};
    return (unsigned)d < sizeof names / sizeof names[0] ? names[d] : "?";
}

void pinas_config_print_schema(FILE *f)
{
    static const char *tn[] = {"int", "number", "bool", "string", "enum", "numbers", "strings", "space"};
    for (int i = 0; i < N_FIELDS; i++)
        fprintf(f, "  %-24s %-8s %-26s %s\n", schema[i].key, tn[schema[i].type], schema[i].def, schema[i].doc);
}
