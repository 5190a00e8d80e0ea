/* Internals shared by the nas/ files: the Pareto set's layout and the pricing hook. */
#ifndef PINAS_NAS_INTERNAL_H
#define PINAS_NAS_INTERNAL_H

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
pinas_status nas_price_model_dir(pinas_ctx *ctx, const char *dir, const char *hw, const char *net, cJSON **out) PINAS_WUR __attribute__((weak));

#endif
