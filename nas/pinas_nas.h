/* pinas nas: the hardware-aware search driver, derivation, export and latency-accuracy Pareto fronts. */
#ifndef PINAS_NAS_H
#define PINAS_NAS_H

#include "pinas_common.h"
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

/* One priced, evaluated architecture: a candidate of a sweep or a baseline. A read-only view. */
typedef struct {
    const char *label;       /* "quickstart/2", "quickstart/all-relu" */
    const char *run;         /* run name */
    const char *kind;        /* "candidate", "all-relu" or "all-poly" */
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
} pinas_pareto_entry;

typedef struct pinas_pareto pinas_pareto;

/* An empty set. NULL only when out of memory. */
pinas_pareto *pinas_pareto_create(void);
/* pinas_pareto_free(NULL) is a harmless no-op. */
void pinas_pareto_free(pinas_pareto *p);
/* Adds an entry from a metrics.json object (copied). `where` names it in messages; `dir` (may be
 * NULL) is the model dir it describes. Errors name `where` and the field. */
pinas_status pinas_pareto_add_metrics(pinas_ctx *ctx, pinas_pareto *p, const cJSON *metrics, const char *where,
                                      const char *dir) PINAS_WUR;
/* Adds every candidates/<k>/metrics.json and baselines/<name>/metrics.json of a run dir. An error
 * when the run dir has no candidate. */
pinas_status pinas_pareto_load_run(pinas_ctx *ctx, pinas_pareto *p, const char *run_dir) PINAS_WUR;
int pinas_pareto_count(const pinas_pareto *p);
/* Borrowed; valid until the set changes or is freed. */
const pinas_pareto_entry *pinas_pareto_get(const pinas_pareto *p, int i);

/* Selects the profile pair (hw, net) and the metric ("online" or "total" = online + offline) for
 * every entry, then marks the front and computes the hypervolume with the reference at the
 * slowest point's latency x 1.05 (or the all-ReLU baseline's, when present, if slower) and accuracy
 * 0. An entry whose metrics lack the pair is priced from its model dir's net.json with the cost
 * model; an error when that is impossible. */
pinas_status pinas_pareto_compute(pinas_ctx *ctx, pinas_pareto *p, const char *hw, const char *net,
                                  const char *metric) PINAS_WUR;
/* After compute: the hypervolume, its reference latency, and the number of points on the front. */
double pinas_pareto_hv(const pinas_pareto *p, double *ref_lat_ms, int *n_front);

/* pareto.json: {"format", "profile": {"hw", "net", "metric"}, "hypervolume": {...}, "entries": [...]}
 * with every entry's accuracy, ReLU count, bytes, latency under every profile its metrics hold,
 * and the non-dominated flag. New; caller frees with cJSON_Delete. */
cJSON *pinas_pareto_to_json(const pinas_pareto *p);
/* pareto.csv: one row per entry, a column per (profile, online/offline). */
pinas_status pinas_pareto_write_csv(pinas_ctx *ctx, const pinas_pareto *p, const char *path) PINAS_WUR;
/* Draws the latency-accuracy plot with cairo: svg_path and png_path (either may be NULL). Axes are
 * labelled with units, the front is highlighted, the all-ReLU and all-poly baselines are marked. */
pinas_status pinas_pareto_plot(pinas_ctx *ctx, const pinas_pareto *p, const char *title, const char *svg_path,
                               const char *png_path) PINAS_WUR;
/* Writes pareto.json, pareto.csv, pareto.svg and pareto.png into dir (created). */
pinas_status pinas_pareto_save(pinas_ctx *ctx, const pinas_pareto *p, const char *dir, const char *title) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
