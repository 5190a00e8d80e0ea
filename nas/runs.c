/* Fronts of finished runs: one run under its own view (what `pinas search` prints), and the merged,
 * re-priced fronts of `pinas pareto` with where they are written. */
#define _GNU_SOURCE
#include "nas_internal.h"
#include "pinas_config.h"

#include <stdlib.h>
#include <string.h>

pinas_status nas_pareto_compute_own(pinas_ctx *ctx, pinas_pareto *p, const pinas_config *cfg)
{
    if (cfg->latency.metric == PINAS_METRIC_E2E)
        pinas_pareto_set_e2e(p, cfg->latency.client_storage_bytes, cfg->latency.rate_per_min / 60, cfg->seed);
    return pinas_pareto_compute(ctx, p, cfg->search.hw, cfg->search.net, pinas_cost_metric_name(cfg->latency.metric));
}

pinas_status pinas_nas_run_pareto(pinas_ctx *ctx, const char *run_dir, pinas_pareto **out)
{
    *out = NULL;
    pinas_config *cfg = NULL;
    pinas_pareto *p = pinas_pareto_create();
    pinas_status s = p ? pinas_nas_run_config(ctx, run_dir, &cfg) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_pareto_load_run(ctx, p, run_dir);
    if (!s) s = nas_pareto_compute_own(ctx, p, cfg);
    pinas_config_free(cfg);
    if (s) pinas_pareto_free(p);
    else *out = p;
    return s;
}

/* A profile name or path as a folder-name part: "fpga-zcu104", "profiles/dc.json" -> "dc". New string. */
static char *profile_tag(const char *profile)
{
    const char *b = strrchr(profile, '/');
    char *t = pinas_strdup(b ? b + 1 : profile);
    size_t l = t ? strlen(t) : 0;
    if (l > 5 && !strcmp(t + l - 5, ".json")) t[l - 5] = 0;
    for (char *c = t; c && *c; c++)
        if (*c == ' ' || *c == '/') *c = '_';
    return t;
}

/* The default output dir of a view (see pinas_pareto_runs_opts.out_dir). own: the view is the one
 * run's own. New string. */
static char *default_out_dir(const char *const *runs, int n, int own, const char *hw, const char *net, const char *metric)
{
    if (n == 1 && own) return pinas_strdup(runs[0]);
    if (n == 1) {
        char *h = profile_tag(hw), *t = profile_tag(net);
        char *d = h && t ? pinas_strfmt("%s/pareto-%s-%s%s%s", runs[0], h, t, strcmp(metric, "online") ? "-" : "", strcmp(metric, "online") ? metric : "") : NULL;
        free(h);
        free(t);
        return d;
    }
    char *first = pinas_strdup(runs[0]);
    if (!first) return NULL;
    size_t l = strlen(first);
    while (l > 1 && first[l - 1] == '/') first[--l] = 0;
    char *slash = strrchr(first, '/');
    if (slash) *slash = 0;
    char *d = pinas_path_join(slash ? first : ".", "pareto-merged");
    free(first);
    return d;
}

pinas_status pinas_nas_pareto_runs(pinas_ctx *ctx, const char *const *runs, int n, const pinas_pareto_runs_opts *o, pinas_pareto **out,
                                   char **written)
{
    *out = NULL;
    if (written) *written = NULL;
    pinas_pareto_runs_opts none = {0};
    if (!o) o = &none;
    if (n < 1) return pinas_error(ctx, PINAS_EINVAL, "no run dir given");
    const char *metric = o->metric ? o->metric : "online";
    pinas_config *cfg = NULL;
    pinas_pareto *p = pinas_pareto_create();
    pinas_status s = p ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int i = 0; i < n && !s; i++) s = pinas_pareto_load_run(ctx, p, runs[i]);
    /* The first run's config gives the default profiles and tells whether the view is its own. */
    int e2e = !strcmp(metric, "e2e");
    if (!s && (!o->hw || !o->net || (!o->out_dir && n == 1) || e2e)) s = pinas_nas_run_config(ctx, runs[0], &cfg);
    if (!s && e2e) /* the stream: the options, else the first run's latency section */
        pinas_pareto_set_e2e(p, o->client_storage_bytes >= 0 ? o->client_storage_bytes : cfg->latency.client_storage_bytes,
                             o->rate_per_s > 0 ? o->rate_per_s : cfg->latency.rate_per_min / 60, cfg->seed);
    const char *hw = o->hw ? o->hw : cfg ? cfg->search.hw : NULL, *net = o->net ? o->net : cfg ? cfg->search.net : NULL;
    if (!s) s = pinas_pareto_compute(ctx, p, hw, net, metric);
    char *dir = NULL, *title = NULL;
    if (!s) {
        /* the run's own view: its search profiles under its latency.metric (for e2e, its storage and rate) */
        int own = cfg && !strcmp(hw, cfg->search.hw) && !strcmp(net, cfg->search.net) &&
                  !strcmp(metric, pinas_cost_metric_name(cfg->latency.metric)) && (!e2e || (o->client_storage_bytes < 0 && o->rate_per_s <= 0));
        dir = o->out_dir ? pinas_strdup(o->out_dir) : default_out_dir(runs, n, own, hw, net, metric);
        title = o->title ? pinas_strdup(o->title)
                : n == 1 ? pinas_strfmt("%s: latency-accuracy Pareto front", pinas_pareto_get(p, 0)->run)
                         : pinas_strfmt("%d runs: latency-accuracy Pareto front", n);
        if (!dir || !title) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (!s) s = pinas_pareto_save(ctx, p, dir, title);
    free(title);
    pinas_config_free(cfg);
    if (s) {
        free(dir);
        pinas_pareto_free(p);
        return s;
    }
    *out = p;
    if (written) *written = dir;
    else free(dir);
    return PINAS_OK;
}
