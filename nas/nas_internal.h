/* Internals shared by the nas/ files: the Pareto set's layout and the pricing hook. */
#ifndef PINAS_NAS_INTERNAL_H
#define PINAS_NAS_INTERNAL_H

#include "pinas_mpc.h"
#include "pinas_nas.h"

typedef struct {
    pinas_pareto_entry e; /* the public view; its strings point at the fields below */
    char *label, *run, *kind, *sweep, *dir;
    cJSON *metrics;       /* owned copy of metrics.json (latency under every priced profile) */
} pareto_item;

struct pinas_pareto {
    pareto_item *items;
    int n, cap;
    char *hw, *net, *metric; /* the selection of the last compute */
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

/* Prices the decided net of a model dir under (hw, net): *out = {"online_ms", "offline_ms",
 * "total_ms", "online_bytes", "preprocessing_bytes", "rounds"} (new; caller frees). */
pinas_status nas_price_model_dir(pinas_ctx *ctx, const char *dir, const char *hw, const char *net, cJSON **out) PINAS_WUR;

/* Prices a decided net under one (hw, net) pair with batch 1: *out = {online_ms, offline_ms, total_ms,
 * compute_ms, comm_ms, rounds, online_bytes, preprocessing_bytes}. New; caller frees. */
pinas_status nas_price_net(pinas_ctx *ctx, const pinas_net *arch, const char *hw, const char *net,
                           const pinas_mpc_params *params, cJSON **out) PINAS_WUR;
/* Prices under search.hw/search.net and every latency.hw x latency.net pair of the config:
 * *latency = {"hw/net": {...}, ...}. New; caller frees. */
pinas_status nas_price_all(pinas_ctx *ctx, const pinas_net *arch, const pinas_config *cfg, cJSON **latency) PINAS_WUR;
/* mpc.frac_bits / mpc.cmp_bits of a config, batch 1. */
void nas_mpc_params_from_config(const pinas_config *cfg, pinas_mpc_params *p);

#endif
