/* Internals of the search driver, shared by search.c (the run), bilevel.c, finish.c and baselines.c. */
#ifndef PINAS_SEARCH_INTERNAL_H
#define PINAS_SEARCH_INTERNAL_H

#include "nas_internal.h"
#include "pinas_config.h"
#include "pinas_cost.h"
#include "pinas_train.h"

/* Everything one run needs, built once and shared by the sweep values. */
typedef struct {
    const pinas_config *cfg;
    const pinas_search_opts *opts;
    char *run_dir, *log_path, *ckpt_dir;
    const char *name;
    pinas_dataset *data;
    pinas_net *space;
    pinas_cost_lut *lut;
    pinas_tensors *warm;   /* supernet weights after warm-up (incl. alphas) */
    int multiplicative;
    double ref_ms;         /* additive: E[lat] is divided by this */
    uint64_t seed;
    pinas_dist_group *dist;/* data-parallel group of the supernet phases; NULL = alone (or done) */
} nas_run;

/* The progress stream of the run's options (stderr by default). Borrowed. */
FILE *nas_progress_out(const nas_run *r);
/* Appends one line to the run's log.jsonl. */
pinas_status nas_log_line(pinas_ctx *ctx, const nas_run *r, const cJSON *line) PINAS_WUR;
/* The training options of phase `phase` of this run: the config's train section, the run dir, resume
 * on, the run's seed and progress stream. */
void nas_train_opts(const nas_run *r, pinas_train_opts *o, const char *phase);
/* The sweep values of the run's loss form: search.targets_ms (multiplicative) or search.lambdas.
 * Borrowed from the config; *n gets their count. */
const double *nas_sweep_values(const nas_run *r, int *n);

/* ------------------------------------------------------------ bilevel.c */

/* Mean entropy (nats) of the supernet's slot mixing weights; *arch (may be NULL) the argmax
 * architecture (new); *probs_json (may be NULL) {"<slot>": {"<cand>": p, ...}, ...} (new). */
pinas_status nas_alpha_state(pinas_ctx *ctx, const nas_run *r, pinas_tnet *t, double *entropy, pinas_net **arch,
                             cJSON **probs_json) PINAS_WUR;
/* Trains (or reloads) the warmed-up supernet into r->warm. */
pinas_status nas_warmup(pinas_ctx *ctx, nas_run *r) PINAS_WUR;
/* Runs (or resumes) the bi-level search of sweep value k (lambda or target `value`). On return t
 * holds the searched supernet and *summary the search's summary for metrics.json (new). */
pinas_status nas_bilevel(pinas_ctx *ctx, nas_run *r, int k, double value, pinas_tnet *t, cJSON **summary) PINAS_WUR;

/* ------------------------------------------------------------ finish.c */

/* One point of the run's front: a searched candidate or a baseline. */
typedef struct {
    const char *kind;       /* "candidate" or a baseline kind ("all-relu", "first-k", ...) */
    const char *name;       /* a baseline's dir name (phase and source); NULL = kind */
    int k;                  /* candidate index; -1 for baselines */
    double value;           /* a candidate's sweep value */
    const char *sweep_key;  /* metrics.json's "sweep" key of value; NULL = the loss form's (lambda / target_ms) */
    const cJSON *search;    /* a candidate's search summary, copied into metrics.json; may be NULL */
    const cJSON *naive;     /* how a naive baseline was matched, copied into metrics.json; may be NULL */
    const char *dir;        /* where its model dir and metrics.json go */
} nas_point;

/* Fine-tunes (or retrains) arch and writes pt->dir (model dir + metrics.json, the latter last: it
 * marks the point as finished). init: supernet weights for arch (used in supernet mode). Every
 * point is trained by this one recipe; with finetune.distill every point but the all-ReLU teacher
 * distils from it. */
pinas_status nas_finish_arch(pinas_ctx *ctx, nas_run *r, const pinas_net *arch, const pinas_tensors *init,
                             const nas_point *pt) PINAS_WUR;

/* ------------------------------------------------------------ knapsack_search.c (search.method "knapsack") */

/* Replaces every open act slot's candidates of r->space by search.knapsack_candidates (checked:
 * activation names, relu among them, at most PINAS_MAX_CANDS), before the LUT is built from it. */
pinas_status nas_knapsack_space(pinas_ctx *ctx, nas_run *r) PINAS_WUR;
/* After setup (the LUT): every search.budgets_ms value must reach the space's cheapest architecture;
 * the error names the budget, the cheapest latency and by how much it misses. */
pinas_status nas_knapsack_check(pinas_ctx *ctx, const nas_run *r) PINAS_WUR;
/* After the warm-up: the all-ReLU net (knapsack/base/), the distortion table
 * (knapsack/distortion.json), then candidates/<k>/ per budget k, each skipped when finished.
 * *n_candidates gets the number of budgets. */
pinas_status nas_knapsack_run(pinas_ctx *ctx, nas_run *r, int *n_candidates) PINAS_WUR;

/* ------------------------------------------------------------ baselines.c */

/* An architecture's identity for "trained already?": its slot choices as compact JSON. New string. */
char *nas_arch_key(const pinas_net *arch);
/* The all-ReLU or all-poly baseline (kind), unless finished already; a space without the
 * candidates has none (a warning, not an error). */
pinas_status nas_baseline_one(pinas_ctx *ctx, nas_run *r, const char *kind) PINAS_WUR;
/* The naive baselines of candidate k at its LUT latency (search.naive_first_k, search.naive_random
 * over search.naive_bases). seen: {"<arch key>": "<dir name>"} of the architectures trained so
 * far, extended here. */
pinas_status nas_naive_for(pinas_ctx *ctx, nas_run *r, int k, cJSON *seen) PINAS_WUR;

#endif
