/* pinas nas: the hardware-aware search driver, derivation, export and latency-accuracy Pareto fronts. */
#ifndef PINAS_NAS_H
#define PINAS_NAS_H

#include "pinas_common.h"
#include "pinas_cost.h"
#include "pinas_dist.h"
#include "pinas_net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PINAS_METRICS_FORMAT "pinas-metrics/1"
#define PINAS_PARETO_FORMAT "pinas-pareto/1"

/* ------------------------------------------------------------ Pareto fronts (pure) */

/* Marks nondom[i] = 1 for every point that no other point dominates, 0 otherwise, and returns how
 * many are on the front. Lower latency and higher accuracy are better; p dominates q when p is no
 * slower and no less accurate than q and strictly better in one of the two. Equal points do not
 * dominate each other, so duplicates are on the front together. A point with a NaN coordinate is
 * never on the front and dominates nothing. n may be 0. */
int pinas_pareto_front(const double *lat, const double *acc, int n, int *nondom);

/* The 2-D hypervolume: the area of the union of the boxes [lat_i, ref_lat] x [ref_acc, acc_i], i.e.
 * of what the points dominate inside the reference box. Points at or beyond the reference in either
 * coordinate (and NaN points) add nothing. Units: accuracy x ms. */
double pinas_pareto_hypervolume(const double *lat, const double *acc, int n, double ref_lat, double ref_acc);

/* ------------------------------------------------------------ Pareto sets (runs' candidates) */

/* One priced, evaluated architecture: a candidate of a sweep or a baseline. A read-only view.
 * Baselines are the naive designs a search must beat: "all-relu" and "all-poly" (every slot one
 * way), "first-k" (relu/maxpool in the first k slots, poly/avgpool after) and "random" (k slots
 * upgraded at random), the last two matched to a candidate's latency. */
typedef struct {
    const char *label;       /* "quickstart/2", "quickstart/all-relu"; first-k and random baselines by
                              * their directory: "quickstart/first-k-3", "quickstart/random-1-2" */
    const char *run;         /* run name */
    const char *kind;        /* "candidate", "all-relu", "all-poly", "first-k" or "random" */
    int k;                   /* candidate index; -1 for baselines */
    const char *sweep;       /* "lambda=0.5", "target=3ms", "" for baselines */
    const char *dir;         /* its model dir (may be "" when added from JSON alone) */
    double accuracy;         /* test accuracy in [0, 1] */
    int64_t relu_count;      /* comparisons per sample */
    double online_bytes;     /* per sample, both parties together */
    double offline_bytes;    /* preprocessing material per sample, both parties together */
    /* Filled by pinas_pareto_compute for the selected profile: */
    double online_ms, offline_ms, latency_ms; /* latency_ms is the plotted metric */
    int nondominated;
    /* From the metrics' optional "naive" object (first-k and random baselines): */
    int naive_k;             /* slots upgraded to relu/maxpool ("naive.k"); -1 when absent */
    double naive_budget_ms;  /* the latency it was matched to ("naive.budget_ms"); NaN when absent */
} pinas_pareto_entry;

typedef struct pinas_pareto pinas_pareto;

/* An empty set. NULL only when out of memory. */
pinas_pareto *pinas_pareto_create(void);
/* pinas_pareto_free(NULL) is a harmless no-op. */
void pinas_pareto_free(pinas_pareto *p);
/* Adds an entry from a metrics.json object (copied). `where` names it in messages; `dir` (may be
 * NULL) is the model dir it describes, and names first-k and random baselines (its last component;
 * without a dir: "<kind>-<naive.k>"). "kind" must be one of the kinds above; "naive" (optional)
 * must be an object {"family", "k", "budget_ms"} whose family, when given, is the kind. Errors name
 * `where` and the field. */
pinas_status pinas_pareto_add_metrics(pinas_ctx *ctx, pinas_pareto *p, const cJSON *metrics, const char *where,
                                      const char *dir) PINAS_WUR;
/* Adds every candidates/<k>/metrics.json and baselines/<name>/metrics.json of a run dir (baselines
 * sorted by name: "all-poly", "all-relu", "first-k-3", "random-1-2"). An error when the run dir has
 * no candidate. */
pinas_status pinas_pareto_load_run(pinas_ctx *ctx, pinas_pareto *p, const char *run_dir) PINAS_WUR;
int pinas_pareto_count(const pinas_pareto *p);
/* Borrowed; valid until the set changes or is freed. */
const pinas_pareto_entry *pinas_pareto_get(const pinas_pareto *p, int i);

/* Sets the stream metric "e2e" is priced under: storage budget in bytes (INFINITY allowed), Poisson
 * rate (> 0), arrival seed. Without it, compute refuses "e2e". */
void pinas_pareto_set_e2e(pinas_pareto *p, double client_storage_bytes, double rate_per_s, uint64_t seed);
/* Selects the profile pair (hw, net) and the metric ("online", "total" = online + offline, or "e2e":
 * every entry re-priced from its model dir by the end-to-end simulation, see pinas_pareto_set_e2e) for
 * every entry, then marks the front and computes the hypervolume with the reference at the
 * slowest point's latency x 1.05 and accuracy 0. An entry whose metrics lack the pair is priced from its model dir's net.json with the cost
 * model; an error when that is impossible. */
pinas_status pinas_pareto_compute(pinas_ctx *ctx, pinas_pareto *p, const char *hw, const char *net,
                                  const char *metric) PINAS_WUR;
/* After pinas_pareto_compute: for every candidate entry i (kind "candidate"), the most accurate
 * naive entry (kind all-relu, all-poly, first-k or random) whose latency_ms <= the candidate's
 * (ties: the faster, then the earlier entry). out[i] = its index, or -1 when none is that fast;
 * out[j] = -1 for non-candidates. out holds pinas_pareto_count(p) ints. Entries with a NaN latency
 * (not computed) match nothing. */
void pinas_pareto_best_naive(const pinas_pareto *p, int *out);
/* Prints a table (label, sweep, accuracy, latency, online/offline ms, ReLUs, bytes, front mark),
 * sorted by latency, to f; then, when the set holds any baseline, the block "searched vs best naive
 * at <= the same latency:" with one line per candidate (by latency): its label, latency and
 * accuracy, the pinas_pareto_best_naive entry's, and the difference in percentage points. For the CLI. */
void pinas_pareto_print_table(const pinas_pareto *p, FILE *f);
/* After compute: the hypervolume, its reference latency, and the number of points on the front. */
double pinas_pareto_hv(const pinas_pareto *p, double *ref_lat_ms, int *n_front);

/* pareto.json: {"format", "profile": {"hw", "net", "metric" (e2e: + "client_storage_bytes" (-1 = unbounded), "rate_per_min")}, "hypervolume": {...}, "entries": [...],
 * "comparison": [...]} with every entry's accuracy, ReLU count, bytes, latency under every profile
 * its metrics hold, the non-dominated flag and (baselines that have one) the "naive" object.
 * "comparison" has one object per candidate, sorted by latency: {"candidate": label, "latency_ms",
 * "accuracy", "naive": the pinas_pareto_best_naive label, "naive_kind", "naive_latency_ms",
 * "naive_accuracy", "delta_accuracy": candidate - naive accuracy (in [-1, 1], not percent),
 * "wins": delta_accuracy > 0}; every naive_* field, delta_accuracy and wins are null when no
 * baseline is that fast. New (NULL when out of memory); caller frees with cJSON_Delete. */
cJSON *pinas_pareto_to_json(const pinas_pareto *p);
/* pareto.csv: one row per entry, a column per (profile, online/offline). */
pinas_status pinas_pareto_write_csv(pinas_ctx *ctx, const pinas_pareto *p, const char *path) PINAS_WUR;
/* Draws the latency-accuracy plot with cairo: svg_path and png_path (either may be NULL). Axes are
 * labelled with units, the front is highlighted, every kind has its own marker (all-ReLU: red square,
 * all-poly: green triangle, first-k: orange diamond, random: purple cross) and the legend lists the
 * kinds present. The all-* baselines, the candidates and the front are labelled, first-k baselines
 * with "k=<k>" where room is left; a label that would cover another label or a marker is left out. */
pinas_status pinas_pareto_plot(pinas_ctx *ctx, const pinas_pareto *p, const char *title, const char *svg_path,
                               const char *png_path) PINAS_WUR;
/* Writes pareto.json, pareto.csv, pareto.svg and pareto.png into dir (created). */
pinas_status pinas_pareto_save(pinas_ctx *ctx, const pinas_pareto *p, const char *dir, const char *title) PINAS_WUR;

/* ------------------------------------------------------------ derivation and baselines */

/* The argmax architecture of a space: a clone with the slot at node slot_nodes[i] decided on the
 * largest of probs[i][0 .. n_cands) (ties: the lower index), for i in [0, n). Every open slot of the
 * space must be listed; an error names the first one that is not, or a node that is not a slot.
 * *out: new; caller frees with pinas_net_free. */
pinas_status pinas_nas_derive(pinas_ctx *ctx, const pinas_net *space, int n, const int *slot_nodes,
                              const float *const *probs, pinas_net **out) PINAS_WUR;
/* A baseline architecture of a space: "all-relu" decides every open act slot on relu and every open
 * pool slot on maxpool; "all-poly" on poly and avgpool. An error names a slot that lacks the
 * candidate. *out: new; caller frees. */
pinas_status pinas_nas_baseline(pinas_ctx *ctx, const pinas_net *space, const char *kind, pinas_net **out) PINAS_WUR;
/* A naive architecture of a space at a latency budget under lut (the latency the search optimises):
 * every slot starts on its base choice — base "cheapest" (or NULL): the slot's cheapest candidate
 * under the LUT (identity where the space has it: linearised layers, as ReLU-culling methods do);
 * "poly": poly / avgpool where the slot has them — and slots are upgraded to relu / maxpool in
 * an order while the LUT latency stays <= budget_ms. family "first-k": in slot order, stopping at the
 * first upgrade that does not fit (ReLUs exactly in the first k slots); "random": in a seeded random
 * order, skipping upgrades that do not fit (a random placement filled up to the budget). *upgraded
 * (may be NULL) gets k, *latency_ms (may be NULL) the architecture's LUT latency. *out: new; caller
 * frees. */
pinas_status pinas_nas_naive(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_lut *lut, const char *family, const char *base,
                             double budget_ms, uint64_t seed, pinas_net **out, int *upgraded, double *latency_ms) PINAS_WUR;
/* {"<slot id>": "<chosen candidate>", ...} over every slot of a net ("open" for open ones). New. */
cJSON *pinas_nas_arch_json(const pinas_net *net);

/* ------------------------------------------------------------ the search */

/* Called after every search epoch has been checkpointed (phase "search-<k>", epoch 0-based).
 * Returning non-zero stops the run there with PINAS_EINTERNAL "stopped after ..." (what a kill
 * would leave behind: a resumable run dir). */
typedef int (*pinas_search_epoch_fn)(void *user, const char *phase, int epoch, const cJSON *log_line);

typedef struct {
    FILE *progress;                   /* progress bars; NULL = stderr */
    pinas_search_epoch_fn on_epoch;   /* may be NULL */
    void *user;
    /* Data-parallel (NULL or world 1: alone; borrowed): every rank joins the group, the warm-up and
     * the bi-level searches run sharded (train.batch_size is the global batch; weight and alpha
     * gradients averaged by all-reduce; BN statistics per rank, DDP's default), only rank 0 writes
     * the run dir; then ranks > 0 return PINAS_OK and rank 0 alone fine-tunes, prices and writes the
     * front. config.json records dist.world_size; a resume with another count says so. */
    const pinas_dist *dist;
    /* sweep_only = 1: run only sweep value sweep_index (0-based, of search.lambdas or
     * search.targets_ms) into <out_dir>/<name>-sweep<I>/, a run of its own (config.json records the
     * one value; the all-ReLU/all-poly baselines only in sweep 0); merge them with pinas pareto. */
    int sweep_only, sweep_index;
} pinas_search_opts;

/* Runs the whole search of a config into the run dir <out_dir>/<name> (which must not hold a run
 * yet): config.json (the effective config, the space inline, the seed and git revision), lut.json,
 * weight warm-up on the train split, then for every sweep value (search.lambdas in the additive
 * form, search.targets_ms in the multiplicative form) first-order bi-level search (weights: SGD on
 * the train split; alphas: Adam on the val split; loss CE + lambda*E[lat]/ref or
 * CE*max(1, E[lat]/target)^beta), argmax derivation, fine-tuning or retraining, test accuracy, pricing
 * under every latency.hw x latency.net pair, candidates/<k>/ (model dir + metrics.json); the
 * all-ReLU and all-poly baselines the same way (baselines/<kind>/); finally pareto.{json,csv,svg,png}.
 * Every epoch is logged to log.jsonl and checkpointed. *run_dir (may be NULL) gets the run dir
 * (new; caller frees). */
pinas_status pinas_nas_search(pinas_ctx *ctx, const pinas_config *cfg, const pinas_search_opts *o,
                              char **run_dir) PINAS_WUR;
/* Continues the run in run_dir from its last checkpoints, with the config saved there. The result
 * is the same as an uninterrupted run with the same seed. */
pinas_status pinas_nas_resume(pinas_ctx *ctx, const char *run_dir, const pinas_search_opts *o) PINAS_WUR;
/* The effective config of a run dir (its config.json). *out: new; caller frees. */
pinas_status pinas_nas_run_config(pinas_ctx *ctx, const char *run_dir, pinas_config **out) PINAS_WUR;

/* ------------------------------------------------------------ finished runs */

/* The front of a finished run under its own view: every candidates/<k> and baselines/<name>
 * metrics.json, priced under the run's search.hw / search.net, latency under its latency.metric. *out: new; caller
 * frees with pinas_pareto_free. */
pinas_status pinas_nas_run_pareto(pinas_ctx *ctx, const char *run_dir, pinas_pareto **out) PINAS_WUR;

/* What `pinas pareto` draws: the view and where it goes. */
typedef struct {
    const char *hw, *net;   /* latency axis profiles; NULL = the first run's search.hw / search.net */
    const char *metric;     /* "online" (NULL), "total" (online + offline preprocessing) or "e2e" (the
                             * simulated mean end-to-end latency, latency_model/pinas_e2e.h) */
    double client_storage_bytes; /* e2e: client storage budget; < 0 = the first run's latency.client_storage_bytes */
    double rate_per_s;      /* e2e: Poisson rate; <= 0 = the first run's latency.rate_per_min / 60 */
    const char *out_dir;    /* NULL: for one run under its own view (its search profiles, online) the
                             * run dir itself; for one run under another view
                             * RUN_DIR/pareto-<hw>-<net>[-total] (a profile path by its file name
                             * without ".json"), so that the run's own files are never overwritten;
                             * for several runs <parent of the first>/pareto-merged */
    const char *title;      /* NULL: "<run>: latency-accuracy Pareto front", or "<n> runs: ..." */
} pinas_pareto_runs_opts;

/* Merges the points of n >= 1 run dirs, computes the front under the view of o (may be NULL: all
 * defaults) and writes pareto.{json,csv,svg,png} (pinas_pareto_save). *out: the set (new; caller
 * frees with pinas_pareto_free); *written (may be NULL): the dir written (new; caller frees). */
pinas_status pinas_nas_pareto_runs(pinas_ctx *ctx, const char *const *runs, int n, const pinas_pareto_runs_opts *o,
                                   pinas_pareto **out, char **written) PINAS_WUR;

/* ------------------------------------------------------------ export */

/* Picks a candidate of a finished run: k >= 0 that candidate; else the most accurate candidate
 * whose predicted latency under (hw, net, metric) is at most budget_ms (ties: the faster; an error
 * when none fits). hw/net NULL = the run's search.hw / search.net. *chosen gets its index. */
pinas_status pinas_nas_pick(pinas_ctx *ctx, const char *run_dir, int k, double budget_ms, const char *hw,
                            const char *net, const char *metric, int *chosen) PINAS_WUR;
/* Writes candidate k of run_dir as a model dir at out_dir (net.json with every slot decided,
 * weights.safetensors, meta.json with "exported_from": the run dir, the candidate, its sweep value
 * and its slot decisions from metrics.json), validated by reloading it. *exported (may be NULL)
 * gets the model as read back (new; caller frees with pinas_model_free). */
pinas_status pinas_nas_export(pinas_ctx *ctx, const char *run_dir, int k, const char *out_dir, pinas_model **exported) PINAS_WUR;
/* Writes the first n test images of a run's dataset, normalised, as a safetensors file with "x"
 * (F32 [n, C, H, W]) and "y" (I64 [n]), for private inference. labels (may be NULL) gets the n
 * labels. */
pinas_status pinas_nas_write_test_images(pinas_ctx *ctx, const char *run_dir, int n, const char *path,
                                         int64_t *labels) PINAS_WUR;

/* What pinas_nas_verify_private measured. */
typedef struct {
    int images;
    double plaintext_accuracy, private_accuracy;   /* in [0, 1] */
    int argmax_agreement;                          /* images whose two argmaxes agree */
    double max_abs_logit_error;
    int frac_bits, cmp_bits;                       /* the fixed-point parameters used (meta.json's) */
    int layer_windows;                             /* nodes with their own comparison window (meta.json
                                                      mpc.layers, bit cutting; 0 = none) */
    double online_s, offline_s, wall_s;
    int64_t online_bytes, preprocessing_bytes, rounds;
} pinas_nas_verify_report;

/* Runs the model dir on the first n test images of the run's dataset twice: in plaintext
 * (pinas_plain_forward) and privately (dealer + two parties over loopback TCP, in this process,
 * with the fixed-point parameters of its meta.json and its per-node comparison windows, mpc.layers),
 * into *report. */
pinas_status pinas_nas_verify_private(pinas_ctx *ctx, const char *model_dir, const char *run_dir, int n,
                                      pinas_nas_verify_report *report) PINAS_WUR;
/* {images, plaintext_accuracy, private_accuracy, argmax_agreement, max_abs_logit_error, frac_bits,
 * cmp_bits, layer_windows, online_s, offline_s, wall_s, online_bytes, preprocessing_bytes, rounds}. New (NULL when
 * out of memory); caller frees with cJSON_Delete. */
cJSON *pinas_nas_verify_report_json(const pinas_nas_verify_report *report);

#ifdef __cplusplus
}
#endif
#endif
