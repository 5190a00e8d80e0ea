/* Pricing decided nets under every configured hardware x network profile pair (the cost model's predictions). */
#define _GNU_SOURCE
#include "nas_internal.h"
#include "pinas_config.h"
#include "pinas_bitcut.h"
#include "pinas_cost.h"

#include <stdlib.h>
#include <string.h>

pinas_status nas_price_net(pinas_ctx *ctx, const pinas_net *arch, const char *hw_name, const char *net_name,
                           const pinas_mpc_params *params, pinas_meta_latency *row)
{
    return nas_price_net_layers(ctx, arch, hw_name, net_name, params, NULL, 0, row);
}

pinas_status nas_price_net_layers(pinas_ctx *ctx, const pinas_net *arch, const char *hw_name, const char *net_name,
                                  const pinas_mpc_params *params, const pinas_mpc_layer_bits *lb, int n_lb, pinas_meta_latency *row)
{
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    pinas_cost_prediction *pr = NULL;
    pinas_status s = pinas_cost_hw_load(ctx, hw_name, &hw);
    if (!s) s = pinas_cost_link_load(ctx, net_name, &link);
    pinas_mpc_params p = *params;
    p.batch = 1; /* latencies and bytes are per inference of one sample */
    if (!s) s = pinas_cost_predict_layers(ctx, arch, hw, link, &p, lb, n_lb, &pr);
    if (!s) {
        const pinas_cost_row *t = &pr->total;
        row->online_ms = 1e3 * t->online_s;
        row->offline_ms = 1e3 * t->offline_s;
        row->total_ms = 1e3 * (t->online_s + t->offline_s);
        row->compute_ms = 1e3 * t->compute_s;
        row->comm_ms = 1e3 * t->comm_s;
        row->rounds = (int64_t)t->counts.online.rounds;
        row->online_bytes = (int64_t)(t->counts.online.bytes[0] + t->counts.online.bytes[1]);
        row->preprocessing_bytes = (int64_t)(t->counts.offline.bytes[0] + t->counts.offline.bytes[1]);
    }
    pinas_cost_prediction_free(pr);
    pinas_cost_link_free(link);
    pinas_cost_hw_free(hw);
    return s;
}

pinas_status nas_model_dir_open(pinas_ctx *ctx, const char *dir, nas_model_dir *md)
{
    memset(md, 0, sizeof *md);
    pinas_model_meta_init(&md->meta);
    pinas_mpc_params_default(&md->params);
    char *np = pinas_path_join(dir, "net.json"), *mp = pinas_path_join(dir, "meta.json");
    pinas_status s = np && mp ? pinas_net_load(ctx, np, &md->arch) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && pinas_net_n_open(md->arch) > 0) s = pinas_error(ctx, PINAS_EINVAL, "%s: the net has open slots; only decided nets are priced", np);
    /* The fixed-point parameters the model was made for change the comparison cost. */
    if (!s && pinas_path_exists(mp)) s = pinas_model_meta_read(ctx, mp, md->arch, &md->meta);
    md->params.frac_bits = md->meta.frac_bits;
    md->params.cmp_bits = md->meta.cmp_bits;
    md->n_layer_bits = s ? 0 : pinas_mpc_layer_bits_from_meta(&md->meta, &md->layer_bits); /* a bit-cut model's per-node windows */
    if (md->n_layer_bits < 0) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    free(np);
    free(mp);
    if (s) nas_model_dir_close(md);
    return s;
}

void nas_model_dir_close(nas_model_dir *md)
{
    free(md->layer_bits);
    pinas_net_free(md->arch);
    pinas_model_meta_free(&md->meta);
    memset(md, 0, sizeof *md);
}

pinas_status nas_price_model_dir(pinas_ctx *ctx, const char *dir, const char *hw, const char *net, pinas_meta_latency *row)
{
    nas_model_dir md;
    pinas_status s = nas_model_dir_open(ctx, dir, &md);
    if (!s) s = nas_price_net_layers(ctx, md.arch, hw, net, &md.params, md.layer_bits, md.n_layer_bits, row);
    nas_model_dir_close(&md);
    return s;
}

/* Prices arch under (hw, net) into m's predicted_latency, unless that pair is there already. */
static pinas_status price_pair(pinas_ctx *ctx, const pinas_net *arch, const char *hw, const char *net, const pinas_mpc_params *p,
                               pinas_model_meta *m)
{
    char *key = pinas_strfmt("%s/%s", hw, net);
    pinas_meta_latency row = {.profile = key};
    pinas_status s = key ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && !pinas_model_meta_latency(m, key)) {
        s = nas_price_net(ctx, arch, hw, net, p, &row);
        if (!s) s = pinas_model_meta_set_latency(ctx, m, &row);
    }
    free(key);
    return s;
}

pinas_status nas_price_all(pinas_ctx *ctx, const pinas_net *arch, const pinas_cfg_search *search, const pinas_cfg_latency *latency,
                           const pinas_cfg_mpc *mpc, pinas_model_meta *m)
{
    pinas_mpc_params p;
    nas_mpc_params_from_config(mpc, &p);
    /* The search's own pair is always priced first, so the run's front can be drawn under it. */
    pinas_status s = price_pair(ctx, arch, search->hw, search->net, &p, m);
    for (int h = 0; h < latency->n_hw && !s; h++)
        for (int n = 0; n < latency->n_net && !s; n++) s = price_pair(ctx, arch, latency->hw[h], latency->net[n], &p, m);
    return s ? pinas_error_prefix(ctx, s, "pricing %s", pinas_net_name(arch)) : PINAS_OK;
}

void nas_mpc_params_from_config(const pinas_cfg_mpc *mpc, pinas_mpc_params *p)
{
    pinas_mpc_params_default(p);
    p->frac_bits = mpc->frac_bits;
    p->cmp_bits = mpc->cmp_bits;
    p->batch = 1;
}
