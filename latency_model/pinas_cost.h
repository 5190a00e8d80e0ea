/* pinas cost model: protocol accounting, hardware and network profiles, predictions, the LUT, E[latency]. */
#ifndef PINAS_COST_H
#define PINAS_COST_H

#include "pinas_common.h"
#include "pinas_mpc.h"
#include "pinas_net.h"
#include "torch_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PINAS_PROFILE_FORMAT "pinas-profile/1"
#define PINAS_LUT_FORMAT "pinas-lut/1"

/* ================================================================ profiles
 *
 * A hardware profile turns protocol work (pinas_mpc_counts plus the node's shape) into compute
 * seconds; a network profile turns rounds and bytes into communication seconds:
 *     online  = compute_online  + rounds * RTT + max(bytes[0], bytes[1]) / bandwidth
 *     offline = compute_offline (dealer work)   + max(prep bytes[p]) / bandwidth
 * (the FPGA profile may overlap compute with the transfer; see latency_model/README.md).
 *
 * Profiles are JSON files of format "pinas-profile/1" with "kind": "cpu" | "fpga" | "pasnet" |
 * "network". Shipped ones live in latency_model/profiles/<name>.json and are loaded by name:
 * hardware "cpu", "fpga-zcu104", "fpga-u250", "pasnet"; network "loopback", "lan", "wan".
 * Anything containing a '/' or ending in ".json" is read as a path. */

typedef struct pinas_cost_hw pinas_cost_hw;   /* a hardware profile (opaque) */
typedef struct pinas_cost_link pinas_cost_link; /* a network profile (opaque) */

typedef enum { PINAS_HW_CPU = 0, PINAS_HW_FPGA = 1, PINAS_HW_PASNET = 2 } pinas_hw_kind;

/* Loads a hardware profile by shipped name or path. Errors name the file and the field.
 * *out: new; caller frees with pinas_cost_hw_free. */
pinas_status pinas_cost_hw_load(pinas_ctx *ctx, const char *name_or_path, pinas_cost_hw **out) PINAS_WUR;
/* Same from parsed JSON; `where` names the source in messages. */
pinas_status pinas_cost_hw_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_hw **out) PINAS_WUR;
/* The profile as JSON (format, kind, name, parameters, sources). New; caller frees with cJSON_Delete. */
cJSON *pinas_cost_hw_to_json(const pinas_cost_hw *hw);
/* pinas_cost_hw_free(NULL) is a no-op. */
void pinas_cost_hw_free(pinas_cost_hw *hw);
/* "cpu", "fpga-zcu104", ... (the "name" field of the file). Borrowed. */
const char *pinas_cost_hw_name(const pinas_cost_hw *hw);
pinas_hw_kind pinas_cost_hw_kind(const pinas_cost_hw *hw);

/* Loads a network profile by shipped name ("loopback", "lan", "wan") or path. */
pinas_status pinas_cost_link_load(pinas_ctx *ctx, const char *name_or_path, pinas_cost_link **out) PINAS_WUR;
pinas_status pinas_cost_link_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_link **out) PINAS_WUR;
/* A custom profile: bandwidth in bytes per second (> 0), round-trip time in seconds (>= 0). name is copied. */
pinas_status pinas_cost_link_create(pinas_ctx *ctx, const char *name, double bandwidth_Bps, double rtt_s,
                                    pinas_cost_link **out) PINAS_WUR;
cJSON *pinas_cost_link_to_json(const pinas_cost_link *l);
void pinas_cost_link_free(pinas_cost_link *l);
const char *pinas_cost_link_name(const pinas_cost_link *l);
double pinas_cost_link_bandwidth(const pinas_cost_link *l); /* bytes per second */
double pinas_cost_link_rtt(const pinas_cost_link *l);       /* seconds */

/* The directory shipped profiles are read from: $PINAS_PROFILE_DIR when set, else
 * <source dir>/latency_model/profiles. Borrowed static string. */
const char *pinas_cost_profile_dir(void);

/* ================================================================ predictions */

/* One priced node (or candidate). Counts are for the whole batch. */
typedef struct {
    char id[PINAS_MAX_ID];
    char op[40];             /* "conv2d", ...; for a slot the candidate's name ("relu", "patch_relu:2x2") */
    int node;                /* index in the net */
    int cand;                /* candidate index for a slot, -1 otherwise */
    pinas_mpc_cost counts;   /* protocol accounting (pinas_mpc_cost_node) */
    double compute_s;        /* online compute */
    double comm_s;           /* online communication (rounds * RTT + bytes / bandwidth, after overlap) */
    double online_s;         /* what the node adds to the online latency */
    double offline_s;        /* preprocessing: dealer compute + transfer of the material */
} pinas_cost_row;

typedef struct {
    int n_rows;              /* one per node (the input node only when it costs anything) */
    pinas_cost_row *rows;    /* owned */
    pinas_cost_row total;    /* sums (id "total", node -1) */
    char hw[64], link[64];   /* profile names */
    pinas_mpc_params params;
} pinas_cost_prediction;

/* Prices node `node` of `net` as decided, or as candidate `cand` of a slot (cand >= 0).
 * Open slots need cand >= 0. */
pinas_status pinas_cost_predict_node(pinas_ctx *ctx, const pinas_net *net, int node, int cand,
                                     const pinas_cost_hw *hw, const pinas_cost_link *link,
                                     const pinas_mpc_params *p, pinas_cost_row *out) PINAS_WUR;
/* Prices every node of a decided net. *out: new; caller frees with pinas_cost_prediction_free. */
pinas_status pinas_cost_predict(pinas_ctx *ctx, const pinas_net *net, const pinas_cost_hw *hw,
                                const pinas_cost_link *link, const pinas_mpc_params *p,
                                pinas_cost_prediction **out) PINAS_WUR;
void pinas_cost_prediction_free(pinas_cost_prediction *pr);
/* {"hw", "net", "mpc": {...}, "nodes": [{id, op, compute_ms, comm_ms, online_ms, offline_ms, rounds,
 *  online_bytes: [p0, p1], offline_bytes: [p0, p1], aes_blocks, ring_macs}], "total": {...}}. New. */
cJSON *pinas_cost_prediction_to_json(const pinas_cost_prediction *pr);
/* JSON object of one row (as in "nodes" above). New. */
cJSON *pinas_cost_row_to_json(const pinas_cost_row *r);

/* ================================================================ the LUT */

/* The per-(slot, candidate) table the search uses: online latency (ms) of every candidate of every
 * open slot, plus the fixed cost of every other node, under one hardware + network profile and
 * protocol parameters. Opaque. */
typedef struct pinas_cost_lut pinas_cost_lut;

/* Builds the LUT of a space (slots that are open, or decided with one candidate, count as fixed).
 * *out: new; caller frees. */
pinas_status pinas_cost_lut_build(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw,
                                  const pinas_cost_link *link, const pinas_mpc_params *p,
                                  pinas_cost_lut **out) PINAS_WUR;
/* JSON (format "pinas-lut/1"): header {pinas_version, hw, net, mpc: {frac_bits, cmp_bits, batch},
 * space, space_hash, unit: "ms"}, "fixed": {online_ms, offline_ms}, "slots": [{index, id, op,
 * shape: [C,H,W], candidates: [{op, online_ms, offline_ms, compute_ms, comm_ms, rounds,
 * online_bytes, offline_bytes}]}]. Saved atomically. */
pinas_status pinas_cost_lut_save(pinas_ctx *ctx, const pinas_cost_lut *lut, const char *path) PINAS_WUR;
pinas_status pinas_cost_lut_load(pinas_ctx *ctx, const char *path, pinas_cost_lut **out) PINAS_WUR;
cJSON *pinas_cost_lut_to_json(const pinas_cost_lut *lut);
pinas_status pinas_cost_lut_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_lut **out) PINAS_WUR;
void pinas_cost_lut_free(pinas_cost_lut *lut);

/* Checks that the LUT was built for this space (same nodes, shapes and candidates); an error names
 * the first mismatch. */
pinas_status pinas_cost_lut_check(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_net *space) PINAS_WUR;

int pinas_cost_lut_n_slots(const pinas_cost_lut *lut);
/* Node index (in the space) of slot k, or -1 when k is out of range. */
int pinas_cost_lut_slot_node(const pinas_cost_lut *lut, int k);
/* Slot k of node index `node`, or -1. */
int pinas_cost_lut_find_slot(const pinas_cost_lut *lut, int node);
int pinas_cost_lut_n_cands(const pinas_cost_lut *lut, int k);
/* Online latency in ms of candidate j of slot k (NAN when out of range). */
double pinas_cost_lut_cand_ms(const pinas_cost_lut *lut, int k, int j);
/* Fixed online latency in ms (every node that is not an open slot). */
double pinas_cost_lut_fixed_ms(const pinas_cost_lut *lut);
const char *pinas_cost_lut_hw(const pinas_cost_lut *lut);   /* borrowed profile names */
const char *pinas_cost_lut_link(const pinas_cost_lut *lut);

/* Online latency (ms) of an architecture: choices[k] is the candidate index of slot k. */
pinas_status pinas_cost_lut_latency_choices(pinas_ctx *ctx, const pinas_cost_lut *lut, const int *choices,
                                            double *ms) PINAS_WUR;
/* Online latency (ms) of a decided architecture of the LUT's space (every slot decided; candidates
 * matched by name, so a net whose slots list only the chosen candidate works too). */
pinas_status pinas_cost_lut_latency(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_net *arch,
                                    double *ms) PINAS_WUR;

/* E[latency] in ms as a differentiable libtorch scalar:
 *     fixed_ms + sum_i sum_j w_i[j] * LUT(slot of node slot_nodes[i], j)
 * where w_i = softmax(alphas[i]) when `normalized` is 0, or alphas[i] itself when `normalized` is 1
 * (e.g. Gumbel-softmax weights the caller drew). alphas[i] is a 1-D tensor with one entry per
 * candidate of that slot. Every open slot of the LUT must appear exactly once. The result depends on
 * the alphas through libtorch ops only, so pt_backward on a loss that uses it fills their gradients.
 * *out: new 0-dim tensor; caller frees. */
pinas_status pinas_cost_expected_latency(pinas_ctx *ctx, const pinas_cost_lut *lut, int n, pt_tensor *const *alphas,
                                         const int *slot_nodes, int normalized, pt_tensor **out) PINAS_WUR;

/* ================================================================ calibration (cpu profile) */

/* Relative least-squares fit of y = a + b*x (GSL gsl_fit_wlinear, weights 1/y^2, so small sizes count
 * as much as large ones); a negative slope falls back to b = 0. r2 = coefficient of determination in
 * the same weighting. n >= 3. */
pinas_status pinas_cost_fit_line(pinas_ctx *ctx, int n, const double *x, const double *y, double *a, double *b,
                                 double *r2) PINAS_WUR;

/* A micro-benchmark: the fastest of `reps` runs of primitive `kind` at size n (online seconds; for the
 * private primitives the runs share one preprocessing), and its counts. Tests pass synthetic ones. */
typedef pinas_status (*pinas_cost_bench_fn)(pinas_ctx *ctx, const char *kind, int64_t n, int reps,
                                            const pinas_mpc_params *p, double *best_s, pinas_mpc_cost *counts,
                                            void *user);

typedef struct {
    int reps;                 /* passes over the sweep (each size benchmarked once per pass), the fastest
                                 run kept; default 9 */
    int runs;                 /* online runs per preprocessing in each benchmark (default 3) */
    int n_sizes;              /* sizes per primitive; default 6 */
    double scale;             /* multiplies the default size sweep (1 = default; tests use less) */
    pinas_mpc_params params;
    const pinas_cost_link *link; /* network the benchmarks ran over (its cost is subtracted); NULL = measure
                                    the loopback (the shipped loopback profile for a custom bench) */
    pinas_cost_bench_fn bench;   /* NULL = the runtime (one-operator private inferences) */
    void *bench_user;
} pinas_cost_calib_opts;
void pinas_cost_calib_opts_default(pinas_cost_calib_opts *o);

/* Runs the size sweep for every primitive (bench kinds relu, poly, patch_relu, maxpool and conv: one-
 * operator nets [C,16,16] -> op -> global_avgpool run privately by pinas_mpc_bench_local and timed over
 * the whole online phase, since per-layer times are the client's view and miss the server's share;
 * local: share additions; prg and gemm: the dealer's throughput) o->reps times, round-robin over every
 * size of every primitive, o->runs online runs per visit; keeps the fastest run per size, subtracts
 * the harness (kind "base:KIND": the same net without its op, timed the same way) and the network's
 * share, fits time = a + b*work per primitive (relative least squares; conv times the linear
 * primitive) and returns the cpu profile (name "cpu") and a report {"net": {the network profile
 * subtracted}, "primitives": {name: {a, b, r2, points: [[work, measured s, network s, harness s],
 * ...]}}, "offline": {...}, "profile": {...}}. Shows progress. */
pinas_status pinas_cost_calibrate(pinas_ctx *ctx, const pinas_cost_calib_opts *o, pinas_cost_hw **out,
                                  cJSON **report) PINAS_WUR;

/* The same in steps, so that other measurements can interleave with it (validate-latency runs one
 * pass between its own passes, so both see the machine in the same state):
 *   begin (measures the loopback unless o->link; again at every pass, the fastest kept), then
 *   passes (one visit of every size of every primitive and of its harness, pinas_cost_calib_steps
 *   of them; the fastest run per size is kept), then finish (the
 *   dealer's throughput - fastest of o->reps - the fits, the profile and the report, as
 *   pinas_cost_calibrate). pg may be NULL; *done counts the steps for it. */
typedef struct pinas_cost_calib pinas_cost_calib;
pinas_status pinas_cost_calib_begin(pinas_ctx *ctx, const pinas_cost_calib_opts *o, pinas_cost_calib **out) PINAS_WUR;
int pinas_cost_calib_steps(const pinas_cost_calib *c);
/* The network profile the calibration subtracts (measured by begin, or o->link); borrowed. */
const pinas_cost_link *pinas_cost_calib_link(const pinas_cost_calib *c);
pinas_status pinas_cost_calib_pass(pinas_ctx *ctx, pinas_cost_calib *c, pinas_progress *pg, int64_t *done) PINAS_WUR;
pinas_status pinas_cost_calib_finish(pinas_ctx *ctx, pinas_cost_calib *c, pinas_progress *pg, int64_t *done,
                                     pinas_cost_hw **out, cJSON **report) PINAS_WUR;
/* pinas_cost_calib_free(NULL) is a no-op. */
void pinas_cost_calib_free(pinas_cost_calib *c);

/* ================================================================ FPGA scheduler (exposed for tests) */

/* Board parameters of an fpga profile. */
typedef struct {
    double clock_hz;          /* fabric clock */
    int dsp;                  /* DSP slices */
    double dsp_util;          /* fraction of the DSPs given to the ring MAC array */
    int dsp_per_mac;          /* DSP slices per 64-bit ring multiply-add lane */
    int aes_cores;            /* fully pipelined AES-128 cores (1 block per cycle each) */
    int cmp_units;            /* comparison units (ring elements compared / masked per cycle) */
    int elem_lanes;           /* ring elements per cycle for local element-wise work (add, shifts) */
    double onchip_bytes;      /* BRAM + URAM usable for buffering */
    double ddr_Bps;           /* off-chip DRAM bandwidth */
    double host_Bps;          /* host link (PCIe, or AXI for an SoC) bandwidth */
    double pipeline_cycles;   /* fill/drain latency per node invocation */
    int overlap;              /* 1: communication overlaps compute (double buffering) */
} pinas_fpga_params;

/* Per-block cycle counts and seconds of one node's work on a board (exposed for unit tests). */
typedef struct {
    double mac_cycles, aes_cycles, cmp_cycles, elem_cycles;
    double compute_s;         /* max of the block cycles (they pipeline) + fill, / clock */
    double ddr_s;             /* spill traffic when the working set exceeds on-chip memory */
    double host_s;            /* moving the node's sent and received bytes over the host link */
    double total_s;           /* what the node's compute costs: max(compute, ddr) + host */
} pinas_fpga_schedule;

/* Schedules work on the board: macs = ring multiply-adds, aes = AES blocks, cmp = comparisons,
 * elems = element-wise ring operations, working_set = bytes the node touches, io_bytes = bytes that
 * cross the host link. */
void pinas_fpga_schedule_work(const pinas_fpga_params *b, double macs, double aes, double cmp, double elems,
                              double working_set, double io_bytes, pinas_fpga_schedule *out);
/* The board parameters of an fpga profile (error if hw is not one). */
pinas_status pinas_cost_hw_fpga_params(pinas_ctx *ctx, const pinas_cost_hw *hw, pinas_fpga_params *out) PINAS_WUR;
/* An fpga profile from parameters (for sweeps and tests); name is copied. */
pinas_status pinas_cost_hw_fpga_create(pinas_ctx *ctx, const char *name, const pinas_fpga_params *b,
                                       pinas_cost_hw **out) PINAS_WUR;

/* ================================================================ validation against the runtime */

/* Kendall tau-b between a and b (ties handled). n >= 2. */
double pinas_cost_kendall_tau(int n, const double *a, const double *b);

/* A random architecture of a space: every open slot decided uniformly, deterministic in seed.
 * *out: new; caller frees. */
pinas_status pinas_cost_random_arch(pinas_ctx *ctx, const pinas_net *space, uint64_t seed, pinas_net **out) PINAS_WUR;

typedef struct {
    int archs;                /* K random architectures (default 20) */
    int reps;                 /* passes over the architectures after a warm-up one (default 10) */
    int runs;                 /* online runs per preprocessing in each pass (default 4): each pass deals
                                 once per architecture and times this many runs on the material */
    int median;               /* 0: take the fastest run (default; the cpu profile is fitted on fastest
                                 runs too), 1: the median */
    uint64_t seed;            /* architectures, weights and inputs (default 1) */
    pinas_mpc_params params;
    const pinas_cost_calib_opts *calib; /* non-NULL: also fit a cpu profile during the run (one calibration
                                           pass before each measured pass, so reps passes; params are the
                                           validation's at batch 1) and judge the predictions made with
                                           it (default NULL) */
} pinas_cost_validate_opts;
void pinas_cost_validate_opts_default(pinas_cost_validate_opts *o);

/* Samples o->archs random architectures of `space`, predicts each (hw, link), runs each in the
 * runtime (random weights and input; round-robin over the architectures, one warm-up pass, then
 * o->reps passes of o->runs runs on one preprocessing (pinas_mpc_bench_local), keeping each
 * architecture's fastest or median run) and returns
 * {"archs": [{choices, relu_slots, predicted_ms, measured_ms, error_pct, runs_ms}], "mape_pct",
 *  "max_error_pct", "kendall_tau", "calibrated", "by_op": {op: {predicted_ms, measured_ms, layers}}, ...}.
 * With o->calib, the predictions judged are the fitted profile's, and the result adds "stored"
 * {hw, fitted, mape_pct, max_error_pct, kendall_tau} (hw's figures on the same runs), "profile" (the
 * fit), "calibration" (its report) and per architecture "predicted_stored_ms".
 * Shows progress. *result: new; caller frees. */
pinas_status pinas_cost_validate(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                 const pinas_cost_validate_opts *o, cJSON **result) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
