/* End-to-end latency of a model dir (pinas_e2e.h's simulation of its cost-model prediction): what
 * `pinas pareto --metric e2e` re-prices every candidate with. */
#define _GNU_SOURCE
#include "nas_internal.h"
#include "pinas_bitcut.h"
#include "pinas_cost.h"
#include "pinas_e2e.h"

#include <stdlib.h>

pinas_status nas_e2e_model_dir(pinas_ctx *ctx, const char *dir, const char *hw_name, const char *net_name, const nas_e2e_view *v,
                               pinas_e2e_costs *costs, pinas_e2e_result *res)
{
    char *np = pinas_path_join(dir, "net.json"), *mp = pinas_path_join(dir, "meta.json");
    pinas_net *arch = NULL;
    pinas_model_meta meta;
    pinas_model_meta_init(&meta);
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    pinas_cost_prediction *pr = NULL;
    pinas_mpc_layer_bits *lb = NULL;
    pinas_status s = np && mp ? pinas_net_load(ctx, np, &arch) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && pinas_net_n_open(arch) > 0) s = pinas_error(ctx, PINAS_EINVAL, "%s: the net has open slots; only decided nets are priced", np);
    if (!s && pinas_path_exists(mp)) s = pinas_model_meta_read(ctx, mp, arch, &meta);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.frac_bits = meta.frac_bits;
    p.cmp_bits = meta.cmp_bits;
    int n_lb = s ? 0 : pinas_bitcut_layer_bits(&meta, &lb); /* a bit-cut model's per-node windows */
    if (n_lb < 0) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_cost_hw_load(ctx, hw_name, &hw);
    if (!s) s = pinas_cost_link_load(ctx, net_name, &link);
    if (!s) s = pinas_cost_predict_layers(ctx, arch, hw, link, &p, lb, n_lb, &pr);
    if (!s) {
        pinas_e2e_params ep;
        pinas_e2e_params_default(&ep);
        pinas_e2e_costs_from_prediction(pr, link, &ep.costs);
        ep.storage_bytes = v->client_storage_bytes;
        ep.rate_per_s = v->rate_per_s;
        ep.seed = v->seed;
        *costs = ep.costs;
        s = pinas_e2e_simulate(ctx, &ep, res);
    }
    if (s) s = pinas_error_prefix(ctx, s, "%s: end-to-end latency", dir);
    pinas_cost_prediction_free(pr);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    free(lb);
    pinas_net_free(arch);
    pinas_model_meta_free(&meta);
    free(np);
    free(mp);
    return s;
}
