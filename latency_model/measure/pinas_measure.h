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

/* Kendall's tau over the pairs a measurement resolves: item i was measured several times, its
 * figures spanning [lo[i], hi[i]], and meas[i] is its point figure; a pair counts only when one's
 * whole span lies below the other's and the point figures order them the same way (every
 * measurement of the two agrees), and the tau is (concordant - discordant) / resolved pairs against
 * pred. Pairs closer than the measurement's own repeatability are left out: no prediction can be
 * judged on an order the measurement does not reproduce. *resolved (may be NULL): how many pairs
 * counted. NaN when none did. */
double pinas_measure_kendall_tau_resolved(int n, const double *pred, const double *meas, const double *lo, const double *hi,
                                          int *resolved);

/* Relative weighted least squares of y ~ X coef (n points of k features, X row-major; weights 1/y^2
 * so that small nodes count as much as large ones), GSL multifit. Features that are zero everywhere,
 * or a constant multiple of an earlier one, get weight 0; a feature whose weight comes out negative is
 * dropped and the rest refitted. Then one robust pass: the points off by more than 3x the median
 * relative error (and more than 15%), at most a tenth of them, are left out and the rest refitted.
 * *mape_pct (may be NULL): the fit's mean absolute percentage error on all its points. Errors: a non-positive or non-finite y, fewer points than features in use. */
pinas_status pinas_measure_fit_linear(pinas_ctx *ctx, int n, int k, const double *X, const double *y, double *coef,
                                      double *mape_pct) PINAS_WUR;

/* ================================================================ per-node measurement */

/* Each party's compute per node, measured: model m run privately `runs` times on one preprocessing
 * over loopback (pinas_mpc_bench_local: both parties as threads of this process, one thread each,
 * caches evicted before each run) on a random input of seed `seed`; per node and party the least
 * over the runs of pinas_mpc_node_times.cpu_s (thread CPU time outside the channel calls: what
 * others on the machine do only ever adds to it, so the least is the stable figure).
 * Shield: where the process may (root, or CAP_SYS_NICE), the party threads run under the real-time
 * policy SCHED_FIFO (priority 1) for the measurement and go back to SCHED_OTHER after: a co-runner
 * then never preempts a node midway, whose caches and TLB (flushed on every switch under PTI) it
 * would otherwise refill on the party's clock (VGG-16's millisecond nodes measured 15-20 % slower
 * beside two busy loops). The environment variable PINAS_MEASURE_NO_SHIELD=1 turns it off. */
typedef struct {
    int n_nodes;
    double (*cpu_s)[2];       /* [node][party]; 0 for nodes that run nothing; owned */
    double wall_s;            /* median online wall time of the runs (the client's) */
    double wall_min_s;        /* the fastest run's */
    int shielded;             /* 1 when the runs ran under SCHED_FIFO */
} pinas_measure_nodes;
pinas_status pinas_measure_node_cpu(pinas_ctx *ctx, const pinas_model *m, int batch, const pinas_mpc_params *p, int runs,
                                    uint64_t seed, pinas_measure_nodes *out) PINAS_WUR;
/* Frees what out owns (not out); NULL is a no-op. */
void pinas_measure_nodes_free(pinas_measure_nodes *out);
/* The speed probe: a small net (a 3x3 convolution of 32 channels of 16x16, a ReLU, a linear head)
 * run privately; *probe_s (may be NULL) = its compute, per node the busier party's thread CPU time
 * (least of 4 runs), summed. Calibration records it in the profile (probe_ms); validation measures
 * it beside every architecture, and the ratio says how much slower or faster the machine computes
 * then than when the profile was fitted. */
pinas_status pinas_measure_probe(pinas_ctx *ctx, const pinas_mpc_params *p, double *probe_s) PINAS_WUR;
/* The probe three times, the last one's figure kept: the first private inferences of a process run
 * several times slower per node (measured: 10-30x on small convolutions) than the later ones;
 * calibration and validation call this first. */
pinas_status pinas_measure_warmup(pinas_ctx *ctx, const pinas_mpc_params *p, double *probe_s) PINAS_WUR;

/* ================================================================ the host-memory check */

/* How fast this host serves freshly mapped memory now. On a VM whose balloon reports free pages to
 * its host (virtio-balloon free page reporting, as on this Firecracker VM), the host drops the pages
 * the guest frees, and memory the guest maps again is faulted back in by the host, for a while in
 * pages that are slower to reach. Measured here: for 1-4 minutes after a process had touched and
 * freed 10 GB (or after a big calibration), random reads of fresh memory ran 20-35 % slower and
 * VGG-16 architectures measured 30-40 % slower in every process; then it passed. Every measurement's
 * buffers are fresh pages, so such a spell inflates whatever is measured during it. The check maps
 * 64 MB, touches every page, and times random reads (independent addresses, so they overlap as a
 * kernel's do) and a stream per 2 MB chunk, the least of 3 rounds in thread CPU time. ~0.2 s. */
typedef struct {
    double ns;        /* the median chunk's time per random read, nanoseconds */
    double fast_ns;   /* the fastest chunk's */
    double seconds;   /* the check's wall time, mapping included */
} pinas_measure_hostmem;
pinas_status pinas_measure_host_memory(pinas_ctx *ctx, pinas_measure_hostmem *out) PINAS_WUR;
/* 1 when the check says fresh memory is slow: its median chunk more than tol_pct above its own
 * fastest chunk (most pages slow, a few not: the spell's signature), or more than tol_pct above
 * ref_ns when ref_ns > 0 (the profile's figure, taken when it was fitted). */
int pinas_measure_host_disturbed(const pinas_measure_hostmem *m, double ref_ns, double tol_pct);
/* 1 when a virtio balloon of this machine reports free pages to its host (a virtio device of type 5
 * in /sys/bus/virtio/devices with feature bit 5, VIRTIO_BALLOON_F_REPORTING); 0 otherwise or unknown. */
int pinas_measure_free_page_reporting(void);

/* The gate: the check before a measurement (a disturbed check is repeated at once, and only two in a
 * row count: single checks misjudge 1 in 8 or so), and while it says disturbed, waiting step_s and checking
 * again, until it does not or the wait would pass max_wait_s over the whole log (then the
 * measurement goes ahead, and the caller flags it). tol_pct 0 turns the gate off (no check). */
typedef struct {
    double tol_pct;    /* default 15 (quiet checks here: within 1-9 %, now and then 12-17 %; spells 19-32 %) */
    double max_wait_s; /* waiting at most, over every gate of one log (default 0: check and report only;
                          `validate-latency --host-gate` makes it 300) */
    double step_s;     /* between checks (default 10) */
    double ref_ns;     /* the judged profile's host_memory_ns (0: none; only the check's own spread) */
} pinas_measure_host_opts;
void pinas_measure_host_opts_default(pinas_measure_host_opts *o);
#define PINAS_MEASURE_HOST_KEEP 64
typedef struct {
    int checks, disturbed_checks, waits; /* waits: gates that waited at all */
    double waited_s;
    double min_ns, max_ns;               /* over the checks */
    double ns[PINAS_MEASURE_HOST_KEEP];  /* the first checks' figures */
} pinas_measure_host_log;
/* One gate: checks (and with wait, waits as above); *disturbed = the last check's verdict. Logs
 * every check into lg (zeroed by the caller before the first). Warns once per wait on the log. */
pinas_status pinas_measure_host_gate(pinas_ctx *ctx, const pinas_measure_host_opts *o, int wait, pinas_measure_host_log *lg,
                                     int *disturbed) PINAS_WUR;
/* The host_memory_ns of the cpu profile at path when it was fitted on this machine's CPU model; 0
 * when there is none, it is not such a profile, or it was fitted elsewhere (no error left set).
 * `pinas calibrate` uses it as its gate's reference when it rewrites a profile. */
double pinas_measure_host_ref_of(pinas_ctx *ctx, const char *path);
/* The median of the logged checks' ns (0 when none). */
double pinas_measure_host_log_median(const pinas_measure_host_log *lg);

/* ================================================================ calibration (the cpu profile) */

#define PINAS_MEASURE_MAX_SPACES 16 /* spaces one calibration measures at most */

typedef struct {
    int runs;                 /* online runs per calibration net on one preprocessing; the least per
                                 node is fitted (default 3) */
    int passes;               /* passes over the sweep, minutes apart; the least per node is fitted, so a
                                 busy spell of the machine during one pass is outvoted (default 2) */
    double scale;             /* multiplies the sweep's channel counts (1 = default; tests use less) */
    int max_batch;            /* the sweep runs every net at batch 1 and at this batch (default 4) */
    pinas_mpc_params params;  /* frac_bits, cmp_bits (batch and threads are set by the sweep: 1 thread) */
    int n_spaces;             /* search spaces whose own shapes are measured too (default none): for each,
                                 the architectures that run every candidate of every open slot at least
                                 once (as many as its widest slot has candidates), at batch 1 and
                                 max_batch, `passes` passes (each after one of the sweep's, each in
                                 a child process of its own: measure_in_child); per exact
                                 shape the least of the passes' medians becomes one of the profile's
                                 measured shapes (pinas_cpu_shape) */
    const pinas_net *const *spaces; /* borrowed */
    pinas_measure_host_opts host; /* the host-memory gate before the sweep's and the spaces' passes
                                     (defaults; ref_ns 0: the check's own spread judges); the median
                                     of its checks becomes the profile's host_memory_ns */
} pinas_measure_calib_opts;
void pinas_measure_calib_opts_default(pinas_measure_calib_opts *o);

/* One measured node of the sweep: its class, party, features, measured and fitted compute. */
typedef struct {
    char net[48], id[PINAS_MAX_ID];
    int prim, party, batch;
    double f[PINAS_CPU_N_FEAT];
    double measured_s, fitted_s;
} pinas_measure_calib_row;

/* What a calibration found. */
typedef struct {
    pinas_cost_hw *profile;   /* the fitted cpu profile (name "cpu"); owned */
    pinas_cost_link *net;     /* the loopback measured alongside (rtt, bandwidth); owned */
    int n_rows;
    pinas_measure_calib_row *rows; /* owned */
    int nets;                 /* calibration nets run (each at both batches) */
    int n_shapes;             /* measured shapes in the profile (0 without spaces) */
    int space_archs;          /* architectures of the spaces run (each at both batches, every pass) */
    double space_seconds;     /* of seconds: measuring the spaces */
    int measurements, unshielded; /* pinas_measure_node_cpu calls, and those without the shield */
    double seconds;           /* wall time of the calibration */
    double aes_blocks_per_s, ring_macs_per_s;  /* the dealer's throughput */
    pinas_measure_host_log host; /* the gate's checks and waiting */
    int disturbed_passes;     /* passes (sweep or spaces) that ran with the host still disturbed after
                                 the longest wait */
} pinas_measure_calib_result;

/* {"net": {the measured loopback}, "classes": {name: {server: {coef}, client: {coef}, fit_mape,
 * rows}}, "rows": [[net, id, class, party, batch, measured s, fitted s], ...], "profile": {...},
 * "offline": {aes_blocks_per_s, ring_macs_per_s}, "nets", "shapes", "space_archs", "space_seconds",
 * "seconds"}. New; caller frees. */
cJSON *pinas_measure_calib_result_to_json(const pinas_measure_calib_result *r);
/* Frees the result and what it owns; NULL is a no-op. */
void pinas_measure_calib_result_free(pinas_measure_calib_result *r);

/* Writes the fitted profile to path (pinas-profile/1, kind cpu, atomically); with loopback_path (may
 * be NULL), also the measured loopback as the shipped network profile "loopback". */
pinas_status pinas_measure_calib_save(pinas_ctx *ctx, const pinas_measure_calib_result *r, const char *path,
                                      const char *loopback_path) PINAS_WUR;

/* Fits the cpu profile: a sweep of calibration nets (built here, never the spaces validated): for
 * each shape (channels C, side H) of the sweep, a chain from 3 input channels: conv3x3 (3 -> C) ->
 * conv3x3 -> relu -> conv1x1 (2C) -> poly ->
 * depthwise conv3x3 -> patch_relu -> conv3x3 (C) -> add -> maxpool -> conv1x1 -> avgpool -> relu ->
 * global_avgpool -> linear, with 2x2 or 3x3 patches and pools alternating over the sweep, run at
 * batch 1 and o->max_batch (pinas_measure_node_cpu, o->runs runs); then per class and party the
 * relative least squares of the node's measured compute on its features; the dealer's AES and GEMM
 * throughput; the loopback's round trip and bandwidth; with o->spaces, the spaces' own shapes (see
 * pinas_measure_calib_opts). 20-50 s on 2 cores at the defaults without spaces.
 * Shows progress. o may be NULL (the defaults). *out: new; caller frees. */
pinas_status pinas_measure_calibrate(pinas_ctx *ctx, const pinas_measure_calib_opts *o,
                                     pinas_measure_calib_result **out) PINAS_WUR;

/* ================================================================ validation against the runtime */

#define PINAS_MEASURE_MAX_PASSES 20
typedef struct {
    int archs;                /* K random architectures (default 20, at least 2) */
    int runs;                 /* online runs per architecture and pass on one preprocessing (default 3,
                                 1 to 100) */
    int passes;               /* passes over every architecture (default 2, 1 to PINAS_MEASURE_MAX_PASSES):
                                 architecture k is measured once per pass, a whole pass apart, each time
                                 in a child process of its own (fresh pages, fresh preprocessing); per
                                 node the least compute over every run of every pass, per architecture
                                 the least of the passes' median wall times */
    int max_passes;           /* then more passes over the architectures whose two least pass figures
                                 (compute summed) differ by more than agree_pct, up to this many
                                 (default 6; = passes: none) */
    double agree_pct;         /* default 3 */
    uint64_t seed;            /* architectures (architecture k: pinas_net_random_arch with seed
                                 seed * 1000003 + k), weights and inputs (default 1) */
    pinas_mpc_params params;  /* batch included; threads forced to 1 */
    const pinas_measure_calib_opts *calib; /* non-NULL: calibrate first (pinas_measure_calibrate) and
                                              judge that profile; the given one is judged beside it */
    int fit_only;             /* 1: judge the cpu profile's class fits alone, its measured shapes
                                 dropped (pinas_cost_hw_cpu_fit_only) */
    pinas_measure_host_opts host; /* the host-memory check before and after every pass (defaults;
                                     ref_ns 0: the judged profile's host_memory_ns); reported */
    int host_gate;            /* 1: before a pass, wait while the check says disturbed (up to
                                 host.max_wait_s over the run), and keep a pass with the host
                                 disturbed at either check apart: it neither settles an architecture
                                 nor enters its figures, unless it has no clean pass at all. 0
                                 (default): check and report only - an A/B here did not show the
                                 gate improving the figures (docs/latency-fidelity.md) */
} pinas_measure_validate_opts;
void pinas_measure_validate_opts_default(pinas_measure_validate_opts *o);

typedef struct {
    double mape_pct, max_error_pct, kendall_tau;
    double tau_resolved;      /* Kendall's tau over the pairs the passes resolve
                                 (pinas_measure_kendall_tau_resolved); NaN when none or not known */
    int resolved_pairs, pairs; /* resolved_pairs -1: not known (wall clock, speed-scaled) */
} pinas_measure_errors;

/* One architecture's figures. Whole-net latency is judged two ways:
 *   robust: per node the busier party's compute (measured: thread CPU time; predicted: the cpu
 *           profile) plus the network profile's communication (rounds x RTT + bytes / bandwidth,
 *           the same on both sides), summed with the session's cost: what co-runners barely move;
 *   wall:   the client's measured online wall time against the prediction (a quiet machine only). */
typedef struct {
    int n_choices;
    pinas_cand *choices;      /* the candidate taken at each open slot of the space, in node order; owned */
    int relu_slots;           /* how many of them are relu */
    double predicted_ms;      /* the profile's prediction of the online phase */
    double measured_ms;       /* robust: measured compute + modelled communication */
    double measured_lo_ms, measured_hi_ms; /* the same with each pass's own compute: the least and
                                              the second least pass (measured_ms, per node the
                                              least over all of them, lies at or below both) */
    int passes;               /* how many passes measured it */
    int disturbed_passes;     /* of them, how many ran with the host disturbed (pinas_measure_host_gate) */
    int disturbed;            /* with host_gate: none was clean, so its figures are the disturbed passes' */
    double error_pct;         /* 100 (predicted - measured) / measured */
    double wall_ms, wall_error_pct;
    double predicted_compute_ms; /* of predicted_ms: the compute (per node the busier party's) */
    double speed;             /* the speed probe around this architecture's runs over the profile's */
    double predicted_stored_ms; /* with a calibration: the given profile's prediction; NaN otherwise */
    int n_nodes;
    struct pinas_measure_node_fig {
        char id[PINAS_MAX_ID];
        int prim;                 /* pinas_cpu_prim */
        double predicted_ms[2], measured_ms[2]; /* compute per party (server, client) */
    } *nodes;                     /* every node that computes; owned */
} pinas_measure_arch;

/* Per-node errors of one operator class over every node of every architecture: against the node's
 * busier party (its compute as the latency sees it) and against each party's own figure. */
typedef struct {
    char op[40];              /* pinas_cpu_prim_name */
    int nodes;
    double mape_pct;          /* |max(pred) - max(meas)| / max(meas) */
    double party_mape_pct[2]; /* |pred[p] - meas[p]| / meas[p], server and client */
    double predicted_ms, measured_ms; /* sums of the busier party's compute */
    double speed_mape_pct;    /* mape_pct with each prediction scaled by its architecture's speed */
    int shape_nodes;          /* of nodes: priced by the profile's measured shapes (both parties) */
} pinas_measure_op;

typedef struct {
    char space[PINAS_MAX_ID];
    char hw[96];              /* the profile judged: its name, or "cpu (fitted during this run)" */
    char net[64];
    char hw_cpu_model[128], hw_fitted[64]; /* the judged profile's machine and date ("" unknown) */
    char cpu_model[128];      /* this machine's */
    int batch, runs, passes, max_passes, k;
    double agree_pct;
    int unsettled_archs;      /* architectures whose two least passes still differ by more than
                                 agree_pct after max_passes */
    int calibrated;           /* 1 when the judged profile was fitted during the run */
    int shielded_archs;       /* architectures measured under the SCHED_FIFO shield (pinas_measure_nodes) */
    int fit_only;             /* 1 when its measured shapes were dropped */
    pinas_measure_host_log host;       /* the host-memory gate's checks and waiting */
    double host_ref_ns;                /* the judged profile's host_memory_ns (0: none) */
    double host_tol_pct;               /* the check's tolerance (0: no check) */
    int host_gate;                     /* 1: waited and kept disturbed passes apart (host_gate) */
    double host_max_wait_s;            /* its waiting budget (0 without the gate) */
    int disturbed_passes;              /* passes that ran with the host disturbed */
    int disturbed_archs;               /* architectures with no clean pass (figures flagged) */
    pinas_measure_errors errors;       /* robust whole-net */
    pinas_measure_errors wall;         /* wall-clock whole-net */
    double speed_ratio;                /* the speed probe now over when the judged profile was fitted, the
                                          median over the architectures (> 1: the machine computes slower
                                          now; NaN: the profile has no probe) */
    double probe_ref;                  /* the judged profile's probe_s (0: none) */
    pinas_measure_errors speed;        /* robust whole-net with each architecture's compute predictions
                                          x its own speed (the probe before and after its runs) */
    char stored_hw[64];
    pinas_measure_errors stored;       /* with a calibration: the given profile, robust */
    pinas_measure_calib_result *calibration; /* owned; NULL without */
    int n_archs;
    pinas_measure_arch *archs; /* owned */
    int n_ops;
    pinas_measure_op *by_op;  /* per class that occurred, in class order; owned */
    double seconds;
} pinas_measure_validation;

/* Samples o->archs random architectures of `space`, predicts each node per party (hw, link), runs
 * each in the runtime (random weights and input, pinas_measure_node_cpu) and compares per node and
 * per architecture (see pinas_measure_arch). Shows progress. *out: new; caller frees with
 * pinas_measure_validation_free. */
pinas_status pinas_measure_validate(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                    const pinas_measure_validate_opts *o, pinas_measure_validation **out) PINAS_WUR;
/* {"space", "hw", "net", "batch", "runs", "passes", "max_passes", "agree_pct", "unsettled_archs", "archs": K, "calibrated", "profile": {machine/cpu_model,
 *  date}, "machine": {cpu_model}, "whole": {mape_pct, max_pct, tau, tau_resolved?, resolved_pairs, pairs}, "wall": {...}, "stored"?: {hw,
 *  mape_pct, max_pct, tau}, "speed_ratio"?, "speed"?: {mape_pct, max_pct, tau} (predictions scaled
 *  by the speed ratio), "fit_only", "per_op": [{op, nodes, shape_nodes, mape_pct, server_mape_pct, client_mape_pct,
 *  speed_mape_pct?, predicted_ms, measured_ms}], "arch_list": [{choices, relu_slots, predicted_ms, measured_ms,
 *  measured_span_ms: [least, second least pass], passes, disturbed_passes, disturbed, error_pct, wall_ms,
 *  wall_error_pct, predicted_stored_ms?, speed?, nodes}], "shielded_archs", "host": {free_page_reporting, ref_ns,
 *  tol_pct, gate, max_wait_s, checks, disturbed_checks, waits, waited_s, disturbed_passes, disturbed_archs, median_ns?, min_ns?,
 *  max_ns?}, "calibration"?: {...}, "seconds"}.
 *  New; caller frees with cJSON_Delete. */
cJSON *pinas_measure_validation_to_json(const pinas_measure_validation *v);
/* Frees the record and what it owns; NULL is a no-op. */
void pinas_measure_validation_free(pinas_measure_validation *v);

#ifdef __cplusplus
}
#endif
#endif
