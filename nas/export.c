/* Export: pick a candidate of a finished run (by index or under a latency budget) and write its model dir. */
#define _GNU_SOURCE
#include "nas_internal.h"
#include "pinas_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pinas_status pinas_nas_pick(pinas_ctx *ctx, const char *run_dir, int k, double budget_ms, const char *hw, const char *net,
                            const char *metric, int *chosen)
{
    *chosen = -1;
    pinas_config *cfg = NULL;
    pinas_status s = pinas_nas_run_config(ctx, run_dir, &cfg);
    if (s) return s;
    pinas_pareto *p = pinas_pareto_create();
    if (!p) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_pareto_load_run(ctx, p, run_dir);
    if (!hw) hw = pinas_config_str(cfg, "search.hw");
    if (!net) net = pinas_config_str(cfg, "search.net");
    if (!s) s = pinas_pareto_compute(ctx, p, hw, net, metric ? metric : "online");
    if (!s && k >= 0) {
        for (int i = 0; i < pinas_pareto_count(p); i++)
            if (pinas_pareto_get(p, i)->k == k) *chosen = k;
        if (*chosen < 0) s = pinas_error(ctx, PINAS_EINVAL, "%s: no finished candidate %d (candidates/%d/metrics.json)", run_dir, k, k);
    } else if (!s) {
        const pinas_pareto_entry *best = NULL;
        double fastest = INFINITY;
        for (int i = 0; i < pinas_pareto_count(p); i++) {
            const pinas_pareto_entry *e = pinas_pareto_get(p, i);
            if (e->k < 0) continue; /* baselines are references, not search results */
            fastest = fmin(fastest, e->latency_ms);
            if (e->latency_ms > budget_ms) continue;
            if (!best || e->accuracy > best->accuracy || (e->accuracy == best->accuracy && e->latency_ms < best->latency_ms)) best = e;
        }
        if (best) *chosen = best->k;
        else s = pinas_error(ctx, PINAS_EINVAL, "%s: no candidate fits %g ms under %s/%s (the fastest needs %.4g ms)", run_dir, budget_ms, hw,
                             net, fastest);
    }
    pinas_pareto_free(p);
    pinas_config_free(cfg);
    return s;
}

pinas_status pinas_nas_export(pinas_ctx *ctx, const char *run_dir, int k, const char *out_dir)
{
    char *src = pinas_strfmt("%s/candidates/%d", run_dir, k);
    pinas_model *m = NULL, *back = NULL;
    pinas_status s = pinas_path_exists(src) ? pinas_model_load(ctx, src, &m)
                                            : pinas_error(ctx, PINAS_EINVAL, "%s: no candidate %d (%s does not exist)", run_dir, k, src);
    if (!s) {
        char *mp = pinas_path_join(src, "metrics.json");
        cJSON *metrics = NULL;
        if (pinas_path_exists(mp) && !(s = pinas_json_load(ctx, mp, &metrics))) {
            /* The runtime reads meta.json only; the export carries where it came from and what it scored. */
            cJSON_DeleteItemFromObjectCaseSensitive(m->meta, "exported_from");
            cJSON *from = cJSON_AddObjectToObject(m->meta, "exported_from");
            cJSON_AddStringToObject(from, "run_dir", run_dir);
            cJSON_AddNumberToObject(from, "candidate", k);
            const cJSON *sw = cJSON_GetObjectItemCaseSensitive(metrics, "sweep");
            if (sw) cJSON_AddItemToObject(from, "sweep", cJSON_Duplicate(sw, 1));
            cJSON_AddItemToObject(from, "arch", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(metrics, "arch"), 1));
        }
        cJSON_Delete(metrics);
        free(mp);
    }
    if (!s) s = pinas_model_save(ctx, out_dir, m);
    /* Read it back as the runtime will: a model dir that does not load must not be left looking fine. */
    if (!s) s = pinas_model_load(ctx, out_dir, &back);
    if (!s && pinas_model_hash(back) != pinas_model_hash(m))
        s = pinas_error(ctx, PINAS_EINTERNAL, "%s: the written model differs from candidate %d", out_dir, k);
    pinas_model_free(back);
    pinas_model_free(m);
    free(src);
    return s;
}

pinas_status pinas_nas_write_test_images(pinas_ctx *ctx, const char *run_dir, int n, const char *path)
{
    pinas_config *cfg = NULL;
    pinas_dataset *d = NULL;
    pinas_tensors *t = NULL;
    float *x = NULL;
    int64_t *y = NULL;
    pinas_status s = pinas_nas_run_config(ctx, run_dir, &cfg);
    if (s) return s;
    pinas_data_opts o;
    pinas_data_opts_from_config(cfg, &o);
    s = pinas_dataset_load(ctx, &o, &d);
    pinas_dataset_info di;
    if (!s) {
        pinas_dataset_get_info(d, &di);
        if (n > di.n[PINAS_SPLIT_TEST])
            s = pinas_error(ctx, PINAS_EINVAL, "%d test images asked for, dataset %s has %d", n, di.name, di.n[PINAS_SPLIT_TEST]);
    }
    if (!s) {
        x = malloc((size_t)n * di.c * di.h * di.w * sizeof *x);
        y = malloc((size_t)n * sizeof *y);
        t = pinas_tensors_create();
        if (!x || !y || !t) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (!s) s = pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 0, n, x, y);
    int64_t xs[4] = {n, di.c, di.h, di.w}, ys[1] = {n};
    if (!s) s = pinas_tensors_add(ctx, t, "x", PINAS_F32, 4, xs, x);
    if (!s) s = pinas_tensors_add(ctx, t, "y", PINAS_I64, 1, ys, y);
    if (!s) {
        cJSON *meta = cJSON_CreateObject();
        cJSON_AddStringToObject(meta, "dataset", di.name);
        cJSON_AddStringToObject(meta, "split", "test");
        cJSON_AddStringToObject(meta, "normalized", "true");
        s = pinas_safetensors_save(ctx, path, t, meta);
        cJSON_Delete(meta);
    }
    free(x);
    free(y);
    pinas_tensors_free(t);
    pinas_dataset_free(d);
    pinas_config_free(cfg);
    return s;
}
