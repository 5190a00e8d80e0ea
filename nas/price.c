/* Pricing decided nets under every configured hardware x network profile pair (the cost model's predictions). */
#define _GNU_SOURCE
#include "nas_internal.h"
#include "pinas_cost.h"

#include <stdlib.h>
#include <string.h>

pinas_status nas_price_net(pinas_ctx *ctx, const pinas_net *arch, const char *hw_name, const char *net_name,
                           const pinas_mpc_params *params, cJSON **out)
{
    *out = NULL;
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    pinas_cost_prediction *pr = NULL;
    pinas_status s = pinas_cost_hw_load(ctx, hw_name, &hw);
    if (!s) s = pinas_cost_link_load(ctx, net_name, &link);
    pinas_mpc_params p = *params;
    p.batch = 1; /* latencies and bytes are per inference of one sample */
    if (!s) s = pinas_cost_predict(ctx, arch, hw, link, &p, &pr);
    if (!s) {
        const pinas_cost_row *t = &pr->total;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "online_ms", 1e3 * t->online_s);
        cJSON_AddNumberToObject(o, "offline_ms", 1e3 * t->offline_s);
        cJSON_AddNumberToObject(o, "total_ms", 1e3 * (t->online_s + t->offline_s));
        cJSON_AddNumberToObject(o, "compute_ms", 1e3 * t->compute_s);
        cJSON_AddNumberToObject(o, "comm_ms", 1e3 * t->comm_s);
        cJSON_AddNumberToObject(o, "rounds", (double)t->counts.online.rounds);
        cJSON_AddNumberToObject(o, "online_bytes", (double)(t->counts.online.bytes[0] + t->counts.online.bytes[1]));
        cJSON_AddNumberToObject(o, "preprocessing_bytes", (double)(t->counts.offline.bytes[0] + t->counts.offline.bytes[1]));
        *out = o;
    }
    pinas_cost_prediction_free(pr);
    pinas_cost_link_free(link);
    pinas_cost_hw_free(hw);
    return s;
}

pinas_status nas_price_model_dir(pinas_ctx *ctx, const char *dir, const char *hw, const char *net, cJSON **out)
{
    *out = NULL;
    char *np = pinas_path_join(dir, "net.json"), *mp = pinas_path_join(dir, "meta.json");
    pinas_net *arch = NULL;
    cJSON *meta = NULL;
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_status s = pinas_net_load(ctx, np, &arch);
    /* The fixed-point parameters the model was made for change the comparison cost. */
    if (!s && pinas_path_exists(mp) && !(s = pinas_json_load(ctx, mp, &meta))) {
        const cJSON *f = pinas_json_at(meta, "mpc.frac_bits"), *c = pinas_json_at(meta, "mpc.cmp_bits");
        if (cJSON_IsNumber(f)) p.frac_bits = (int)f->valuedouble;
        if (cJSON_IsNumber(c)) p.cmp_bits = (int)c->valuedouble;
    }
    if (!s && pinas_net_n_open(arch) > 0) s = pinas_error(ctx, PINAS_EINVAL, "%s: the net has open slots; only decided nets are priced", np);
    if (!s) s = nas_price_net(ctx, arch, hw, net, &p, out);
    pinas_net_free(arch);
    cJSON_Delete(meta);
    free(np);
    free(mp);
    return s;
}

pinas_status nas_price_all(pinas_ctx *ctx, const pinas_net *arch, const pinas_config *cfg, cJSON **latency)
{
    *latency = NULL;
    pinas_mpc_params p;
    nas_mpc_params_from_config(cfg, &p);
    cJSON *all = cJSON_CreateObject();
    const cJSON *hws = pinas_config_get(cfg, "latency.hw"), *nets = pinas_config_get(cfg, "latency.net");
    /* The search's own pair is always priced, so the run's front can be drawn under it. */
    const char *sh = pinas_config_str(cfg, "search.hw"), *sn = pinas_config_str(cfg, "search.net");
    pinas_status s = PINAS_OK;
    for (int pass = 0; pass < 2 && !s; pass++) {
        const cJSON *h, *n;
        if (pass == 0) {
            cJSON *o;
            if ((s = nas_price_net(ctx, arch, sh, sn, &p, &o))) break;
            char *key = pinas_strfmt("%s/%s", sh, sn);
            cJSON_AddItemToObject(all, key, o);
            free(key);
            continue;
        }
        cJSON_ArrayForEach(h, hws)
        {
            cJSON_ArrayForEach(n, nets)
            {
                char *key = pinas_strfmt("%s/%s", h->valuestring, n->valuestring);
                if (!cJSON_GetObjectItemCaseSensitive(all, key)) {
                    cJSON *o;
                    if ((s = nas_price_net(ctx, arch, h->valuestring, n->valuestring, &p, &o))) {
                        free(key);
                        break;
                    }
                    cJSON_AddItemToObject(all, key, o);
                }
                free(key);
            }
            if (s) break;
        }
    }
    if (s) {
        cJSON_Delete(all);
        return pinas_error_prefix(ctx, s, "pricing %s", pinas_net_name(arch));
    }
    *latency = all;
    return PINAS_OK;
}

void nas_mpc_params_from_config(const pinas_config *cfg, pinas_mpc_params *p)
{
    pinas_mpc_params_default(p);
    p->frac_bits = (int)pinas_config_int(cfg, "mpc.frac_bits");
    p->cmp_bits = (int)pinas_config_int(cfg, "mpc.cmp_bits");
    p->batch = 1;
}
