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
