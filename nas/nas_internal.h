/* Internals shared by the nas/ files: the Pareto set's layout and the pricing hook. */
#ifndef PINAS_NAS_INTERNAL_H
#define PINAS_NAS_INTERNAL_H

#include "pinas_config.h"
#include "pinas_mpc.h"
#include "pinas_nas.h"
#include "pinas_e2e.h"

/* The stream an end-to-end latency is simulated under (latency_model/pinas_e2e.h). */
typedef struct {
    double client_storage_bytes; /* S (INFINITY allowed) */
    double rate_per_s;           /* Poisson rate; <= 0 = not set */
    uint64_t seed;
} nas_e2e_view;

typedef struct {
    pinas_pareto_entry e; /* the public view; its strings point at the fields below */
    char *label, *run, *kind, *sweep, *dir;
    cJSON *metrics;       /* owned copy of metrics.json (latency under every priced profile) */
} pareto_item;

struct pinas_pareto {
    pareto_item *items;
    int n, cap;
    char *hw, *net, *metric; /* the selection of the last compute */
    nas_e2e_view e2e;        /* metric "e2e": the stream it is priced under (pinas_pareto_set_e2e) */
    double hv, ref_lat;
    int n_front;
};

/* ------------------------------------------------------------ plot label placement (pure, no cairo) */

/* An axis-aligned box in device pixels, y down: top-left corner (x, y), size w x h. */
typedef struct {
    double x, y, w, h;
} nas_box;

/* 1 when a and b overlap by a positive area (boxes that only touch do not). */
int nas_box_overlap(nas_box a, nas_box b);

/* Half the side of the square kept free around every marker centre. */
#define NAS_MARKER_HALF 8.0

/* Greedy label placement. Markers sit at (mx[i], my[i]), i in [0, n_marks); label j in
 * [0, n_labels) belongs to marker anchor[j] and measures w[j] x h[j]. Labels are placed in order
 * (earlier = more important): each takes the first of a fixed list of positions around its marker
 * (right, left, above, below, then the diagonals) whose box overlaps no label placed so far, no
 * marker's square of half-side NAS_MARKER_HALF (its own included) and lies inside `area`. box[j]
 * gets the chosen box and placed[j] 1, or placed[j] 0 when no position fits (the label is left out
 * rather than drawn over something). Returns the number placed. */
int nas_place_labels(int n_marks, const double *mx, const double *my, int n_labels, const int *anchor, const double *w,
                     const double *h, nas_box area, nas_box *box, int *placed);

/* Prices the decided net of a model dir under (hw, net), with the fixed-point parameters of its
 * meta.json (read by pinas_model_meta_read; the defaults when it has none). Fills every field of
 * *row but profile. */
/* A model dir as the pricers read it: the decided net, its meta (optional file), the fixed-point
 * parameters it was made for and a bit-cut model's per-node windows (layer_bits, n_layer_bits; ids point
 * into meta). Errors: missing/invalid net.json or meta.json (named), open slots. Close with
 * nas_model_dir_close (also after a failed open: it is then already closed). */
typedef struct {
    pinas_net *arch;
    pinas_model_meta meta;
    pinas_mpc_params params;
    pinas_mpc_layer_bits *layer_bits;
    int n_layer_bits;
} nas_model_dir;
pinas_status nas_model_dir_open(pinas_ctx *ctx, const char *dir, nas_model_dir *md) PINAS_WUR;
void nas_model_dir_close(nas_model_dir *md);
pinas_status nas_price_model_dir(pinas_ctx *ctx, const char *dir, const char *hw, const char *net, pinas_meta_latency *row) PINAS_WUR;

/* Prices a decided net under one (hw, net) pair with batch 1 (params' batch is ignored). Fills
 * every field of *row but profile. */
pinas_status nas_price_net(pinas_ctx *ctx, const pinas_net *arch, const char *hw, const char *net,
                           const pinas_mpc_params *params, pinas_meta_latency *row) PINAS_WUR;
/* The same with per-node comparison windows (lb: n_lb entries, NULL = none; a bit-cut model's
 * mpc.layers, pinas_mpc_layer_bits_from_meta). */
pinas_status nas_price_net_layers(pinas_ctx *ctx, const pinas_net *arch, const char *hw, const char *net,
                                  const pinas_mpc_params *params, const pinas_mpc_layer_bits *lb, int n_lb,
                                  pinas_meta_latency *row) PINAS_WUR;
/* Prices under search->hw/net, then every latency->hw x latency->net pair not priced yet, into m's
 * predicted_latency (rows "<hw>/<net>" appended in that order). */
pinas_status nas_price_all(pinas_ctx *ctx, const pinas_net *arch, const pinas_cfg_search *search, const pinas_cfg_latency *latency,
                           const pinas_cfg_mpc *mpc, pinas_model_meta *m) PINAS_WUR;
/* The end-to-end latency of the decided net in model dir `dir` (net.json, meta.json's fixed-point and
 * bit-cut parameters) under (hw, net) and the stream v: *costs the per-inference costs, *res the
 * simulation (nas/e2e.c). Errors name the dir. */
pinas_status nas_e2e_model_dir(pinas_ctx *ctx, const char *dir, const char *hw, const char *net, const nas_e2e_view *v,
                               pinas_e2e_costs *costs, pinas_e2e_result *res) PINAS_WUR;
/* The front of a run under its own view: search.hw / search.net under latency.metric (e2e: the
 * config's client_storage_bytes, rate_per_min and seed). nas/runs.c. */
pinas_status nas_pareto_compute_own(pinas_ctx *ctx, pinas_pareto *p, const pinas_config *cfg) PINAS_WUR;
/* The runtime's parameters for a config's mpc section: frac_bits, cmp_bits, batch 1. */
void nas_mpc_params_from_config(const pinas_cfg_mpc *mpc, pinas_mpc_params *p);

#endif
