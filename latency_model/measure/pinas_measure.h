/* Measuring the 2PC runtime for the cost model: calibration of the cpu profile, validation of predictions.
 *
 * The layer above both the runtime (crypto/, which it runs) and the cost model (latency_model/, whose
 * profiles it fits and whose predictions it judges); library pinas_latency_model_measure. Nothing
 * below it depends on it: the search prices with the cost model alone. Every function that runs the
 * runtime shows progress on stderr (a bar on a TTY) and prints nothing else; results come back as
 * typed records, with a *_to_json for the --json forms. */
#ifndef PINAS_MEASURE_H
#define PINAS_MEASURE_H

#include "pinas_common.h"
#include "pinas_cost.h"
#include "pinas_mpc.h"
#include "pinas_net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ statistics */

/* Relative least-squares fit of y = a + b*x (GSL gsl_fit_wlinear, weights 1/y^2, so small sizes count
 * as much as large ones); a negative slope falls back to b = 0 and a = the weighted mean. r2 = the
 * coefficient of determination in the same weighting. Errors: n < 3, a non-finite point, every x
 * equal. */
pinas_status pinas_measure_fit_line(pinas_ctx *ctx, int n, const double *x, const double *y, double *a, double *b,
                                    double *r2) PINAS_WUR;

/* Kendall tau-b between a and b (ties handled); 0 when either is constant. n >= 2. */
double pinas_measure_kendall_tau(int n, const double *a, const double *b);

/* ================================================================ calibration (the cpu profile) */

/* A micro-benchmark: the fastest of `reps` runs of primitive `kind` at size n (online seconds; for
 * the private primitives the runs share one preprocessing), and its counts. Kinds: relu, poly,
 * patch_relu, maxpool, conv (and "base:KIND", the same net without its op), local, prg, gemm.
 * Tests pass synthetic ones. */
typedef pinas_status (*pinas_measure_bench_fn)(pinas_ctx *ctx, const char *kind, int64_t n, int reps,
                                               const pinas_mpc_params *p, double *best_s, pinas_mpc_cost *counts,
                                               void *user);

typedef struct {
    int reps;                 /* passes over the sweep (each size benchmarked once per pass), the fastest
                                 run kept; default 9 */
    int runs;                 /* online runs per preprocessing in each benchmark (default 3) */
    int n_sizes;              /* sizes per primitive; default 6 (3 to 64) */
    double scale;             /* multiplies the default size sweep (1 = default; tests use less) */
    pinas_mpc_params params;
    const pinas_cost_link *link; /* network the benchmarks ran over (its cost is subtracted); NULL = measure
                                    the loopback (the shipped loopback profile for a custom bench);
                                    borrowed, must outlive the calibration */
    pinas_measure_bench_fn bench; /* NULL = the runtime (one-operator private inferences) */
    void *bench_user;
} pinas_measure_calib_opts;
void pinas_measure_calib_opts_default(pinas_measure_calib_opts *o);

#define PINAS_MEASURE_MAX_SIZES 64

/* One primitive's fit and the points it was fitted on. */
typedef struct {
    double a, b, r2;
    int n_points;
    /* [work, measured s (the fastest run), network s (subtracted), harness s (subtracted)] */
    double points[PINAS_MEASURE_MAX_SIZES][4];
} pinas_measure_fit;

/* What a calibration found. */
typedef struct {
    pinas_cost_hw *profile;   /* the fitted cpu profile (name "cpu"); owned */
    pinas_cost_link *net;     /* the network profile subtracted; owned */
    pinas_measure_fit prims[PINAS_CPU_N_PRIM]; /* indexed by pinas_cpu_prim */
    double aes_blocks_per_s, ring_macs_per_s;  /* the dealer's throughput */
} pinas_measure_calib_result;

/* {"net": {the network profile subtracted}, "primitives": {name: {a, b, r2, points: [[work,
 * measured s, network s, harness s], ...]}}, "profile": {...}, "offline": {aes_blocks_per_s,
 * ring_macs_per_s}}. New; caller frees with cJSON_Delete. */
cJSON *pinas_measure_calib_result_to_json(const pinas_measure_calib_result *r);
/* Frees the result and what it owns; NULL is a no-op. */
void pinas_measure_calib_result_free(pinas_measure_calib_result *r);

/* Writes the fitted profile to path (pinas-profile/1, kind cpu, atomically); with loopback_path (may
 * be NULL), also the network profile that was subtracted, with a description, as the shipped
 * loopback profile: recalibrating the shipped cpu profile refreshes loopback.json with the
 * measurement so that cpu + loopback gives back the measured times. */
pinas_status pinas_measure_calib_save(pinas_ctx *ctx, const pinas_measure_calib_result *r, const char *path,
                                      const char *loopback_path) PINAS_WUR;

/* Runs the size sweep for every primitive (bench kinds relu, poly, patch_relu, maxpool and conv: one-
 * operator nets [C,16,16] -> op -> global_avgpool run privately by pinas_mpc_bench_local and timed
 * over the whole online phase, since per-layer times are the client's view and miss the server's
 * share; local: share additions; prg and gemm: the dealer's throughput) o->reps times, round-robin
 * over every size of every primitive, o->runs online runs per visit; keeps the fastest run per
 * size, subtracts the harness (kind "base:KIND": the same net without its op, timed the same way)
 * and the network's share, fits time = a + b*work per primitive (relative least squares; conv
 * times the linear primitive). o may be NULL (the defaults). *out: new; caller frees with
 * pinas_measure_calib_result_free. */
pinas_status pinas_measure_calibrate(pinas_ctx *ctx, const pinas_measure_calib_opts *o,
                                     pinas_measure_calib_result **out) PINAS_WUR;

/* The same in steps, so that other measurements can interleave with it (validate-latency runs one
 * pass between its own passes, so both see the machine in the same state):
 *   begin (measures the loopback unless o->link; again at every pass, the fastest kept), then
 *   passes (one visit of every size of every primitive and of its harness, pinas_measure_calib_steps
 *   of them; the fastest run per size is kept), then finish (the dealer's throughput - fastest of
 *   o->reps - the fits and the profile, as pinas_measure_calibrate). pg may be NULL; *done counts
 *   the steps for it. */
typedef struct pinas_measure_calib pinas_measure_calib;
pinas_status pinas_measure_calib_begin(pinas_ctx *ctx, const pinas_measure_calib_opts *o, pinas_measure_calib **out) PINAS_WUR;
int pinas_measure_calib_steps(const pinas_measure_calib *c);
/* The network profile the calibration subtracts (measured by begin, or o->link); borrowed, valid
 * until the next pass or finish (which replace a measured one) or free. */
const pinas_cost_link *pinas_measure_calib_link(const pinas_measure_calib *c);
pinas_status pinas_measure_calib_pass(pinas_ctx *ctx, pinas_measure_calib *c, pinas_progress *pg, int64_t *done) PINAS_WUR;
/* Errors when no pass was run. *out: new; caller frees with pinas_measure_calib_result_free. */
pinas_status pinas_measure_calib_finish(pinas_ctx *ctx, pinas_measure_calib *c, pinas_progress *pg, int64_t *done,
                                        pinas_measure_calib_result **out) PINAS_WUR;
/* pinas_measure_calib_free(NULL) is a no-op. */
void pinas_measure_calib_free(pinas_measure_calib *c);

/* ================================================================ validation against the runtime */

typedef struct {
    int archs;                /* K random architectures (default 20, at least 2) */
    int reps;                 /* passes over the architectures after a warm-up one (default 10, 1 to 1000) */
    int runs;                 /* online runs per preprocessing in each pass (default 4, 1 to 100): each
                                 pass deals once per architecture and times this many runs on the material */
    int median;               /* 0: take the fastest run (default; the cpu profile is fitted on fastest
                                 runs too), 1: the median */
    uint64_t seed;            /* architectures (architecture k: pinas_net_random_arch with seed
                                 seed * 1000003 + k), weights and inputs (default 1) */
    pinas_mpc_params params;
    const pinas_measure_calib_opts *calib; /* non-NULL: also fit a cpu profile during the run (one
                                              calibration pass before each measured pass, so reps
                                              passes; params are the validation's at batch 1) and
                                              judge the predictions made with it (default NULL) */
} pinas_measure_validate_opts;
void pinas_measure_validate_opts_default(pinas_measure_validate_opts *o);

/* One architecture's figures. */
typedef struct {
    int n_choices;
    pinas_cand *choices;      /* the candidate taken at each open slot of the space, in node order; owned */
    int relu_slots;           /* how many of them are relu */
    double predicted_ms, measured_ms, error_pct;  /* error: 100 (predicted - measured) / measured */
    double predicted_stored_ms; /* with a calibration: the given profile's prediction; NaN otherwise */
    int n_runs;
    double *runs_ms;          /* every measured run (reps x runs); owned */
} pinas_measure_arch;

/* Per-layer online time summed over every layer of one op (the candidate's name for slots) of every
 * architecture, to show where errors come from; "(session)" is the session's own cost. */
typedef struct {
    char op[40];
    double predicted_ms, measured_ms;
    int layers;
} pinas_measure_op;

typedef struct {
    double mape_pct, max_error_pct, kendall_tau;
} pinas_measure_errors;

typedef struct {
    char space[PINAS_MAX_ID];
    char hw[96];              /* the profile judged: its name, or "cpu (fitted during this run)" */
    char net[64];
    int batch, reps, runs, k;
    int calibrated;           /* 1 when the judged profile was fitted during the run */
    pinas_measure_errors errors;
    double spread_pct;        /* an architecture's median run over its fastest, in %, the median over
                                 the architectures (how busy the machine was) */
    /* with a calibration: the given profile judged on the same runs */
    char stored_hw[64];
    char stored_fitted[64];   /* its calibration date, "" when it has none */
    pinas_measure_errors stored;
    pinas_measure_calib_result *calibration; /* the fit (profile, measured network); owned; NULL without */
    int n_archs;
    pinas_measure_arch *archs; /* owned */
    int n_ops;
    pinas_measure_op *by_op;  /* in order of first appearance; owned */
} pinas_measure_validation;

/* Samples o->archs random architectures of `space`, predicts each (hw, link), runs each in the
 * runtime (random weights and input; round-robin over the architectures, one warm-up pass, then
 * o->reps passes of o->runs runs on one preprocessing (pinas_mpc_bench_local), keeping each
 * architecture's fastest or median run) and compares. With o->calib, the predictions judged are
 * those of the profile fitted during the run (with the network it measured), and the given hw is
 * judged on the same runs too (stored_*). Shows progress. *out: new; caller frees with
 * pinas_measure_validation_free. */
pinas_status pinas_measure_validate(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                    const pinas_measure_validate_opts *o, pinas_measure_validation **out) PINAS_WUR;
/* {"archs": [{choices, relu_slots, predicted_ms, measured_ms, error_pct, predicted_stored_ms?,
 *  runs_ms}], "space", "hw", "net", "batch", "reps", "runs", "k", "calibrated", "mape_pct",
 *  "max_error_pct", "kendall_tau", "spread_pct", "stored"?: {hw, fitted?, mape_pct, max_error_pct,
 *  kendall_tau}, "profile"?, "measured_net"?, "calibration"?: {...}, "by_op": {op: {predicted_ms,
 *  measured_ms, layers}}}. New; caller frees with cJSON_Delete. */
cJSON *pinas_measure_validation_to_json(const pinas_measure_validation *v);
/* Frees the record and what it owns; NULL is a no-op. */
void pinas_measure_validation_free(pinas_measure_validation *v);

#ifdef __cplusplus
}
#endif
#endif
