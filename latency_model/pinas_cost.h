/* pinas cost model: hardware and network profiles, per-node 2PC latency predictions, the LUT.
 *
 * Pure pricing: it links the runtime's protocol accounting (pinas_mpc_cost_node: counts, no
 * execution) but neither libtorch nor the runtime's execution. Measuring the runtime (calibration,
 * validation) is the layer above, latency_model/measure/pinas_measure.h; E[latency] as a
 * differentiable scalar lives next to the search (nas/nas_latency.h), fed pinas_cost_lut_arrays. */
#ifndef PINAS_COST_H
#define PINAS_COST_H

#include "pinas_common.h"
#include "pinas_config.h"
#include "pinas_mpc.h"
#include "pinas_net.h"

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
/* When the profile was fitted: its "calibration.date", or NULL when it has none. Borrowed. */
const char *pinas_cost_hw_fitted(const pinas_cost_hw *hw);

/* ---------------------------------------------------------------- the cpu profile
 * A cpu profile predicts each party's compute per node: the thread CPU time the party spends in
 * the node outside its channel calls (what pinas_mpc_node_times.cpu_s measures), as a linear
 * function of the node's counted work for that party:
 *     cpu_s[party] = sum_f coef[class][party][f] * feature_f
 * with the features below, per operator class. The node's compute is the busier party's
 * (max of the two); communication comes from the network profile. Fitted by `pinas calibrate`. */
typedef enum {
    PINAS_CPU_CONV = 0,  /* conv2d, groups 1 */
    PINAS_CPU_DWCONV,    /* conv2d with groups > 1 (depthwise) */
    PINAS_CPU_LINEAR,
    PINAS_CPU_RELU,
    PINAS_CPU_POLY,
    PINAS_CPU_PATCH,     /* patch_relu, any patch size */
    PINAS_CPU_MAXPOOL,
    PINAS_CPU_AVGPOOL,
    PINAS_CPU_ADD,
    PINAS_CPU_GAP,       /* global_avgpool */
    PINAS_CPU_INPUT,     /* encoding and sharing the client's input */
    PINAS_CPU_N_PRIM
} pinas_cpu_prim;

/* Features: per call (1), the party's online ring multiply-adds, the party's online AES blocks
 * (key evaluations), elements entering the node, elements leaving it (batch included), and for
 * conv2d/linear the weight elements (the GEMM streams them: what dominates when the batch of
 * columns is small) and the im2col elements (C_in/groups * kh * kw * H_out * W_out * batch * groups);
 * for pools "cols" is the windows' reads (elements out * kh * kw). */
typedef enum {
    PINAS_CPU_F_CALL = 0,
    PINAS_CPU_F_MACS,
    PINAS_CPU_F_AES,
    PINAS_CPU_F_IN,
    PINAS_CPU_F_OUT,
    PINAS_CPU_F_WEIGHTS,
    PINAS_CPU_F_COLS,
    PINAS_CPU_N_FEAT
} pinas_cpu_feature;

/* "conv2d", "dwconv", "linear", "relu", "poly", "patch_relu", "maxpool", "avgpool", "add",
 * "global_avgpool", "input"; "?" out of range. Static string. */
const char *pinas_cpu_prim_name(int prim);
/* "call", "macs", "aes", "in", "out", "weights", "cols"; "?" out of range. Static string. */
const char *pinas_cpu_feature_name(int f);
/* The class of node `node` as decided or as candidate c (NULL: not a slot, or decided); -1 when the
 * node computes nothing online (batchnorm: folded; flatten, identity: views). */
int pinas_cpu_prim_of(const pinas_net *net, int node, const pinas_cand *c);
/* The features of node `node` (candidate c as above) for `party` (0 server, 1 client), from its
 * counted online work (pinas_mpc_cost_node) and its shape at batch `batch`. */
void pinas_cpu_features(const pinas_net *net, int node, const pinas_cand *c, int batch, const pinas_mpc_cost *counts,
                        int party, double f[PINAS_CPU_N_FEAT]);

/* One measured node shape of a cpu profile (`pinas calibrate --space`, FBNet-style): an operator
 * class, a party and the exact features (pinas_cpu_features) of nodes measured in the runtime. A
 * node whose class, party and features all equal an entry's is priced at the entry's measurement;
 * every other node at its class's fit. Features are counts (integers), compared exactly, so a node
 * of another shape, batch or comparison width never takes an entry. */
typedef struct {
    int prim, party;                 /* pinas_cpu_prim; 0 server, 1 client */
    double f[PINAS_CPU_N_FEAT];
    double s;                        /* measured compute, seconds (calibrate: the least of the passes' medians) */
    int nodes;                       /* how many measured nodes (runs x passes pooled) it stands for */
} pinas_cpu_shape;

/* The parameters of a cpu profile. */
typedef struct {
    double coef[PINAS_CPU_N_PRIM][2][PINAS_CPU_N_FEAT]; /* seconds per unit of feature, per class and party */
    double fit_mape[PINAS_CPU_N_PRIM][2]; /* the calibration fit's own error, percent (NaN: none) */
    int fit_rows[PINAS_CPU_N_PRIM][2];    /* nodes the fit saw (0: class not fitted, predicts 0) */
    double aes_blocks_per_s;              /* dealer AES throughput (offline) */
    double ring_macs_per_s;               /* dealer ring multiply-add throughput (offline) */
    double probe_s;                       /* the speed probe's compute when fitted (pinas_measure_warmup;
                                             0: not recorded): how fast the machine ran then */
    double host_memory_ns;                /* the host-memory check when fitted (pinas_measure_host_memory:
                                             the median of the calibration's checks, ns per random read;
                                             0: not recorded); validation's gate compares with it */
    const pinas_cpu_shape *shapes;        /* measured shapes, sorted (see pinas_cpu_shape_find); NULL when
                                             none. Borrowed: owned by the profile (or the caller of
                                             pinas_cost_hw_cpu_create, which copies them) */
    int n_shapes;
    int n_spaces;                         /* the spaces the shapes were measured on ... */
    const char *const *spaces;            /* ... their names; borrowed like shapes */
} pinas_cpu_params;

/* Where a fitted cpu profile came from: its "calibration" object. Strings are borrowed. */
typedef struct {
    const char *date;            /* "2024-01-31T12:00:00Z" */
    const char *machine;         /* uname's machine ("x86_64"); NULL = not written */
    const char *cpu_model;       /* /proc/cpuinfo's model name; NULL = not written */
    const char *pinas_version, *git;
    const char *clock;           /* what was timed: "thread-cpu" */
    const char *shield;          /* "sched_fifo" (every measurement under the real-time shield), "partial",
                                    "none"; NULL = not written */
    int nets, reps;              /* calibration nets run, repeats of each */
    double seconds;              /* how long the calibration took */
    int frac_bits, cmp_bits;
} pinas_cpu_calibration;

/* The cpu profile named "cpu" that `pinas calibrate` writes (the one writer of the format): format,
 * kind, name, description, model "party-cpu", primitives {class: {server: {feature: coef},
 * client: {...}, fit_mape: [server, client], rows: [server, client]}}, offline {aes_blocks_per_s,
 * ring_macs_per_s}, probe_ms (optional), shapes (optional: [[class, party, [call, macs, aes, in, out,
 * weights, cols], seconds, nodes], ...], p->shapes), spaces (optional: the names the shapes were
 * measured on), calibration {date, machine?, cpu_model?, pinas_version, git, clock, shield?, nets, reps,
 * seconds, mpc: {frac_bits, cmp_bits}}. p->shapes need not be sorted; the profile keeps its own
 * sorted copy. Prices with the exact doubles of p. Profiles of the older
 * whole-phase form ({a, b} per primitive) are refused, asking for `pinas calibrate`.
 * *out: new; caller frees with pinas_cost_hw_free. */
pinas_status pinas_cost_hw_cpu_create(pinas_ctx *ctx, const pinas_cpu_params *p, const pinas_cpu_calibration *cal,
                                      pinas_cost_hw **out) PINAS_WUR;
/* The parameters of a cpu profile (error if hw is not one). */
pinas_status pinas_cost_hw_cpu_params(pinas_ctx *ctx, const pinas_cost_hw *hw, pinas_cpu_params *out) PINAS_WUR;
/* The CPU model a profile was fitted on (calibration.cpu_model), or NULL (none recorded, or not a
 * cpu profile). Borrowed. */
const char *pinas_cost_hw_cpu_model(const pinas_cost_hw *hw);
/* Predicted compute seconds of one party for a node of class `prim` with features f (>= 0): the
 * measured shape's figure when p has this exact shape (pinas_cpu_shape_find), otherwise the class's
 * fit. */
double pinas_cost_cpu_party(const pinas_cpu_params *p, int prim, int party, const double f[PINAS_CPU_N_FEAT]);
/* The class's fit alone (sum_f coef * f, at least 0), ignoring measured shapes. */
double pinas_cost_cpu_fit(const pinas_cpu_params *p, int prim, int party, const double f[PINAS_CPU_N_FEAT]);
/* The measured shape with this class, party and features, or NULL (binary search over p->shapes,
 * which must be sorted by pinas_cpu_shapes_sort: pinas_cost_hw_cpu_create and the profile reader
 * sort them). */
const pinas_cpu_shape *pinas_cpu_shape_find(const pinas_cpu_params *p, int prim, int party, const double f[PINAS_CPU_N_FEAT]);
/* Sorts shapes into the order pinas_cpu_shape_find searches (class, party, features). */
void pinas_cpu_shapes_sort(pinas_cpu_shape *shapes, int n);
/* A copy of cpu profile hw with its measured shapes dropped (the fits alone): what
 * `pinas validate-latency --fit-only` judges. *out: new; caller frees. Errors: not a cpu profile. */
pinas_status pinas_cost_hw_cpu_fit_only(pinas_ctx *ctx, const pinas_cost_hw *hw, pinas_cost_hw **out) PINAS_WUR;

/* Loads a network profile by shipped name ("loopback", "lan", "wan") or path. */
pinas_status pinas_cost_link_load(pinas_ctx *ctx, const char *name_or_path, pinas_cost_link **out) PINAS_WUR;
pinas_status pinas_cost_link_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_link **out) PINAS_WUR;
/* A custom profile: bandwidth in bytes per second (> 0), round-trip time in seconds (>= 0). name is
 * copied. Its JSON: {format, kind: "network", name, bandwidth_mbit_per_s, rtt_ms}. */
pinas_status pinas_cost_link_create(pinas_ctx *ctx, const char *name, double bandwidth_Bps, double rtt_s,
                                    pinas_cost_link **out) PINAS_WUR;
/* The profile as JSON: the file as it was read, or as pinas_cost_link_create made it. New; caller
 * frees with cJSON_Delete. */
cJSON *pinas_cost_link_to_json(const pinas_cost_link *l);
/* Deep copy; NULL when out of memory. */
pinas_cost_link *pinas_cost_link_clone(const pinas_cost_link *l);
/* pinas_cost_link_free(NULL) is a no-op. */
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
    double compute_s;        /* online compute (cpu profile: the busier party's) */
    double compute_party_s[2]; /* cpu profile: each party's predicted compute (server, client); else 0 */
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
/* The same with per-node comparison windows (bit cutting): a node named by an entry of lb (n_lb of
 * them, borrowed; NULL/0 = none) is priced with that entry's cmp_bits and cmp_high, the others with
 * p's, as the dealer does with pinas_mpc_deal_opts.layer_bits. Ids naming no node are ignored here
 * (the dealer refuses them). */
pinas_status pinas_cost_predict_layers(pinas_ctx *ctx, const pinas_net *net, const pinas_cost_hw *hw,
                                       const pinas_cost_link *link, const pinas_mpc_params *p,
                                       const pinas_mpc_layer_bits *lb, int n_lb, pinas_cost_prediction **out) PINAS_WUR;
/* pinas_cost_prediction_free(NULL) is a no-op. */
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
 * *out: new; caller frees with pinas_cost_lut_free. */
pinas_status pinas_cost_lut_build(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw,
                                  const pinas_cost_link *link, const pinas_mpc_params *p,
                                  pinas_cost_lut **out) PINAS_WUR;
/* JSON (format "pinas-lut/1"): header {pinas_version, hw, net, mpc: {frac_bits, cmp_bits, batch},
 * space, space_hash, unit: "ms"}, "fixed": {online_ms, offline_ms}, "slots": [{index, id, op,
 * shape: [C,H,W], candidates: [{op, online_ms, offline_ms, compute_ms, comm_ms, rounds,
 * online_bytes, offline_bytes}]}]. Saved atomically. */
pinas_status pinas_cost_lut_save(pinas_ctx *ctx, const pinas_cost_lut *lut, const char *path) PINAS_WUR;
/* Reads a LUT file; errors name the file and the field. *out: new; caller frees. A LUT read back
 * writes the same bytes (tests/golden/lut.json). */
pinas_status pinas_cost_lut_load(pinas_ctx *ctx, const char *path, pinas_cost_lut **out) PINAS_WUR;
/* The JSON form above. New; caller frees with cJSON_Delete. */
cJSON *pinas_cost_lut_to_json(const pinas_cost_lut *lut);
pinas_status pinas_cost_lut_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_lut **out) PINAS_WUR;
/* pinas_cost_lut_free(NULL) is a no-op. */
void pinas_cost_lut_free(pinas_cost_lut *lut);

/* What a LUT prices (latency.metric of the run config): PINAS_METRIC_ONLINE (the default: what
 * pinas_cost_lut_build makes), PINAS_METRIC_TOTAL (online + offline per candidate: additive), or
 * PINAS_METRIC_E2E (the end-to-end latency of latency_model/pinas_e2e.h under a client storage budget
 * and a Poisson rate). E2E is not additive; the LUT linearises it per slot around the reference
 * architecture whose every cost is the mean over each slot's candidates (plus the fixed nodes):
 *     price(k, j) = g_on * online(k, j) + g_gen * dealer(k, j) + g_srv * srv_bytes(k, j) + g_cli * cli_bytes(k, j)
 *     fixed       = E(reference) - sum over slots of the mean price of the slot's candidates
 * where E is the simulated mean latency and the slopes g are central differences of E (+-10% of each
 * reference cost, the same seed for both sides: common random numbers), clamped at >= 0. So the LUT
 * is exact at the reference and first-order around it; tests/test_latency_model_e2e.c measures its
 * error on random architectures against the simulation of each one (mean 4 %, worst 9 % with 3 stored
 * sets and the bottleneck 60 % busy; 0.2 % / 1 % with no storage). Far from the reference under heavy
 * queueing the slopes are steep (online slope ~10 at a server 74 % busy) and the fixed term can go
 * negative, so cheap architectures are priced below their online latency, even below 0: the order and
 * the gradient stay right (every slope >= 0), the absolute figures do not; `pinas pareto --metric e2e`
 * simulates each architecture instead. */
typedef struct {
    pinas_latency_metric metric;
    double client_storage_bytes;  /* e2e: S (INFINITY allowed) */
    double rate_per_s;            /* e2e: Poisson rate */
    long n;                       /* e2e: inferences simulated per evaluation (0 = PINAS_E2E_DEFAULT_N) */
    uint64_t seed;                /* e2e: arrival seed */
} pinas_cost_metric;

/* "online", "total", "e2e" ("?" out of range). Static string. */
const char *pinas_cost_metric_name(pinas_latency_metric m);
/* Builds a LUT priced under metric m (NULL or PINAS_METRIC_ONLINE: pinas_cost_lut_build). The
 * candidates keep their online/offline figures; the priced value of each (the one cand_ms, the arrays
 * and the latency lookups return) is written as "latency_ms" with the header's "latency": metric and
 * "metric": {client_storage_bytes, rate_per_min, inferences, seed, reference, slopes}. Errors: those of
 * pinas_cost_lut_build and pinas_e2e_simulate. *out: new; caller frees. */
pinas_status pinas_cost_lut_build_metric(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw,
                                         const pinas_cost_link *link, const pinas_mpc_params *p,
                                         const pinas_cost_metric *m, pinas_cost_lut **out) PINAS_WUR;
/* The metric the LUT prices. */
pinas_latency_metric pinas_cost_lut_metric(const pinas_cost_lut *lut);
/* PINAS_OK when the LUT was priced under m (the metric and, for e2e, the storage and the rate up to
 * 1e-9 relative); otherwise an error naming the difference (a LUT of another metric is refused: delete
 * it to have it re-priced). */
pinas_status pinas_cost_lut_check_metric(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_cost_metric *m) PINAS_WUR;

/* Checks that the LUT was built for this space (same nodes, shapes and candidates); an error names
 * the first mismatch. */
pinas_status pinas_cost_lut_check(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_net *space) PINAS_WUR;

int pinas_cost_lut_n_slots(const pinas_cost_lut *lut);
/* Node index (in the space) of slot k, or -1 when k is out of range. */
int pinas_cost_lut_slot_node(const pinas_cost_lut *lut, int k);
/* Slot k of node index `node`, or -1. */
int pinas_cost_lut_find_slot(const pinas_cost_lut *lut, int node);
int pinas_cost_lut_n_cands(const pinas_cost_lut *lut, int k);
/* Latency in ms of candidate j of slot k under the LUT's metric (online unless built with
 * pinas_cost_lut_build_metric; NAN when out of range). The same holds for every lookup below. */
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

/* The LUT's online latencies as plain arrays: what E[latency] (nas/nas_latency.h) needs, with no
 * libtorch on this side. Values are floats, as the search's differentiable sum uses them. */
typedef struct {
    const char *space;           /* the space's name (messages) */
    float fixed_ms;              /* online ms of everything that is not an open slot */
    int n_slots;
    const int *node;             /* [n_slots] node index of slot k in the space */
    const char *const *id;       /* [n_slots] node id of slot k (messages) */
    const int *n_cands;          /* [n_slots] */
    const float *const *cand_ms; /* [n_slots][n_cands[k]] online ms of candidate j of slot k */
} pinas_cost_lut_arrays;

/* The arrays of a LUT, made when it is built or loaded. Borrowed: valid as long as the LUT. */
const pinas_cost_lut_arrays *pinas_cost_lut_get_arrays(const pinas_cost_lut *lut);

/* The span of the space's architectures: *lo_ms / *hi_ms = fixed + the cheapest / dearest
 * candidate of every slot (online ms). */
void pinas_cost_lut_range(const pinas_cost_lut *lut, double *lo_ms, double *hi_ms);

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

#ifdef __cplusplus
}
#endif
#endif
