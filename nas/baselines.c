/* The baselines a search must beat, trained by the same recipe as its candidates: all-ReLU, all-poly,
 * and the naive first-k / random placements at each candidate's latency. */
#define _GNU_SOURCE
#include "search_internal.h"

#include <stdlib.h>
#include <string.h>

char *nas_arch_key(const pinas_net *arch)
{
    cJSON *aj = pinas_nas_arch_json(arch);
    char *key = cJSON_PrintUnformatted(aj);
    cJSON_Delete(aj);
    return key;
}

/* Trains a point from the warmed-up supernet's weights for arch (the same start as every point). */
static pinas_status finish_from_warm(pinas_ctx *ctx, nas_run *r, const pinas_net *arch, const nas_point *pt)
{
    pinas_tnet *t = NULL;
    pinas_tensors *init = NULL;
    pinas_status s = pinas_tnet_create(ctx, r->space, r->seed, &t);
    if (!s) s = pinas_tnet_load(ctx, t, r->warm, 1);
    if (!s) s = pinas_tnet_export(ctx, t, arch, &init);
    if (!s) s = nas_finish_arch(ctx, r, arch, init, pt);
    pinas_tnet_free(t);
    pinas_tensors_free(init);
    return s;
}

pinas_status nas_baseline_one(pinas_ctx *ctx, nas_run *r, const char *kind)
{
    char *dir = pinas_strfmt("%s/baselines/%s", r->run_dir, kind);
    char *mp = pinas_path_join(dir, "metrics.json");
    pinas_status s = PINAS_OK;
    pinas_net *arch = NULL;
    if (pinas_path_exists(mp)) goto out;
    if ((s = pinas_nas_baseline(ctx, r->space, kind, &arch))) {
        /* A space without poly (or relu) has no such baseline: say so and go on. */
        pinas_warn(ctx, "no %s baseline: %s", kind, pinas_errmsg(ctx));
        pinas_error_clear(ctx);
        s = PINAS_OK;
        goto out;
    }
    nas_point pt = {.kind = kind, .k = -1, .dir = dir};
    s = finish_from_warm(ctx, r, arch, &pt);
out:
    pinas_net_free(arch);
    free(mp);
    free(dir);
    return s;
}

/* One naive baseline of candidate k: family fam (j = the random draw, -1 for first-k) over `base` at
 * the candidate's latency `budget`, trained unless an equal architecture was. */
static pinas_status naive_one(pinas_ctx *ctx, nas_run *r, int k, const char *fam, const char *base, int j, double budget, cJSON *seen)
{
    pinas_net *arch = NULL;
    int up = 0, poly = !strcmp(base, "poly");
    double ms = 0;
    /* The same draw for both bases: the same random order of slots, different fillers. */
    uint64_t seed = r->seed * 1000003ULL + (uint64_t)k * 1009ULL + (uint64_t)(j + 1);
    pinas_status s = pinas_nas_naive(ctx, r->space, r->lut, fam, base, budget, seed, &arch, &up, &ms);
    if (s) return s;
    char *key = nas_arch_key(arch);
    char *name = j < 0 ? pinas_strfmt("first-k-%s%d", poly ? "poly-" : "", up) : pinas_strfmt("random-%s%d-%d", poly ? "poly-" : "", k, j);
    const cJSON *same = cJSON_GetObjectItemCaseSensitive(seen, key);
    char *dir = pinas_strfmt("%s/baselines/%s", r->run_dir, name);
    char *mp = pinas_path_join(dir, "metrics.json");
    if (same) pinas_info(ctx, "naive %s for candidate %d: the same architecture as %s, not trained twice", name, k, same->valuestring);
    else cJSON_AddStringToObject(seen, key, name);
    if (!same && !pinas_path_exists(mp)) {
        cJSON *naive = cJSON_CreateObject();
        cJSON_AddStringToObject(naive, "family", fam);
        cJSON_AddStringToObject(naive, "base", base);
        cJSON_AddNumberToObject(naive, "k", up);
        cJSON_AddNumberToObject(naive, "budget_ms", budget);
        cJSON_AddNumberToObject(naive, "matched_to", k);
        if (j >= 0) cJSON_AddNumberToObject(naive, "seed", (double)(seed & 0xffffffffffffULL));
        pinas_info(ctx, "naive %s: %d slot%s on relu/maxpool, %.3g ms <= candidate %d's %.3g ms", name, up, up == 1 ? "" : "s", ms, k, budget);
        nas_point pt = {.kind = fam, .name = name, .k = -1, .naive = naive, .dir = dir};
        s = finish_from_warm(ctx, r, arch, &pt);
        cJSON_Delete(naive);
    }
    free(mp);
    free(dir);
    free(key);
    free(name);
    pinas_net_free(arch);
    return s;
}

/* The naive baselines of one candidate: its predicted latency under the search's own profiles is
 * the budget; per base of search.naive_bases, first-k and search.naive_random random placements at
 * <= that latency, each trained by the same recipe as every other point (nas_finish_arch). */
pinas_status nas_naive_for(pinas_ctx *ctx, nas_run *r, int k, cJSON *seen)
{
    const pinas_cfg_search *se = &r->cfg->search;
    char *np = pinas_strfmt("%s/candidates/%d/net.json", r->run_dir, k);
    pinas_net *cand = NULL;
    double budget = 0;
    pinas_status s = pinas_net_load(ctx, np, &cand);
    if (!s) s = pinas_cost_lut_latency(ctx, r->lut, cand, &budget);
    pinas_net_free(cand);
    free(np);
    for (int q = 0; q < se->n_naive_bases; q++) {
        const char *base = se->naive_bases[q] == PINAS_NAIVE_BASE_POLY ? "poly" : "cheapest";
        if (!s && se->naive_first_k) s = naive_one(ctx, r, k, "first-k", base, -1, budget, seen);
        for (int j = 0; j < se->naive_random && !s; j++) s = naive_one(ctx, r, k, "random", base, j, budget, seen);
    }
    return s;
}
