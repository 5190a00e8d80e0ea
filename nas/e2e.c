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
    nas_model_dir md;
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    pinas_cost_prediction *pr = NULL;
    pinas_status s = nas_model_dir_open(ctx, dir, &md);
    if (!s) s = pinas_cost_hw_load(ctx, hw_name, &hw);
    if (!s) s = pinas_cost_link_load(ctx, net_name, &link);
    if (!s) s = pinas_cost_predict_layers(ctx, md.arch, hw, link, &md.params, md.layer_bits, md.n_layer_bits, &pr);
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
    nas_model_dir_close(&md);
    return s;
}
