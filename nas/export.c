/* Export: pick a candidate of a finished run (by index or under a latency budget) and write its model dir. */
#define _GNU_SOURCE
#include "nas_internal.h"
#include "pinas_bitcut.h"
#include "pinas_config.h"
#include "pinas_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (!hw) hw = cfg->search.hw;
    if (!net) net = cfg->search.net;
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

/* exported_from of candidate k: the run, the candidate, its sweep value and its slot decisions,
 * from its metrics.json (the runtime reads meta.json only; the export carries where it came from). */
static pinas_status set_exported_from(pinas_ctx *ctx, const char *run_dir, int k, const cJSON *metrics, pinas_meta_export *x)
{
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(metrics, "sweep"), *arch = cJSON_GetObjectItemCaseSensitive(metrics, "arch"), *e;
    x->present = 1;
    x->candidate = k;
    pinas_status s = pinas_model_meta_set_str(ctx, &x->run_dir, run_dir);
    if (!s && sw && sw->child && cJSON_IsNumber(sw->child)) {
        x->sweep_value = sw->child->valuedouble;
        s = pinas_model_meta_set_str(ctx, &x->sweep_key, sw->child->string);
    }
    int n = cJSON_GetArraySize(arch);
    if (!s && n > 0 && !(x->arch = calloc((size_t)n, sizeof *x->arch))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    const cJSON *slots = s ? NULL : arch;
    cJSON_ArrayForEach(e, slots)
    {
        if (!cJSON_IsString(e)) continue;
        pinas_meta_choice *c = &x->arch[x->n_arch++];
        if (!(c->slot = pinas_strdup(e->string)) || !(c->choice = pinas_strdup(e->valuestring))) {
            s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            break;
        }
    }
    return s;
}

pinas_status pinas_nas_export(pinas_ctx *ctx, const char *run_dir, int k, const char *out_dir, pinas_model **exported)
{
    if (exported) *exported = NULL;
    char *src = pinas_strfmt("%s/candidates/%d", run_dir, k);
    pinas_model *m = NULL, *back = NULL;
    pinas_status s = pinas_path_exists(src) ? pinas_model_load(ctx, src, &m)
                                            : pinas_error(ctx, PINAS_EINVAL, "%s: no candidate %d (%s does not exist)", run_dir, k, src);
    if (!s) {
        char *mp = pinas_path_join(src, "metrics.json");
        cJSON *metrics = NULL;
        if (pinas_path_exists(mp) && !(s = pinas_json_load(ctx, mp, &metrics))) {
            pinas_meta_export *x = &m->meta.exported_from;
            pinas_meta_export_free(x);
            s = set_exported_from(ctx, run_dir, k, metrics, x);
        }
        cJSON_Delete(metrics);
        free(mp);
    }
    if (!s) s = pinas_model_save(ctx, out_dir, m);
    /* Read it back as the runtime will: a model dir that does not load must not be left looking fine. */
    if (!s) s = pinas_model_load(ctx, out_dir, &back);
    if (!s && pinas_model_hash(back) != pinas_model_hash(m))
        s = pinas_error(ctx, PINAS_EINTERNAL, "%s: the written model differs from candidate %d", out_dir, k);
    if (!s && exported) {
        *exported = back;
        back = NULL;
    }
    pinas_model_free(back);
    pinas_model_free(m);
    free(src);
    return s;
}

pinas_status pinas_nas_write_test_images(pinas_ctx *ctx, const char *run_dir, int n, const char *path, int64_t *labels)
{
    pinas_config *cfg = NULL;
    pinas_dataset *d = NULL;
    pinas_tensors *t = NULL;
    float *x = NULL;
    int64_t *y = NULL;
    pinas_status s = pinas_nas_run_config(ctx, run_dir, &cfg);
    if (s) return s;
    pinas_data_opts o;
    pinas_data_opts_from_cfg(&cfg->data, cfg->seed, &o);
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
    if (!s && labels) memcpy(labels, y, (size_t)n * sizeof *y);
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

/* Argmax of each row. */
static void argmax_rows(const float *logits, int n, int k, int *out)
{
    for (int i = 0; i < n; i++) {
        int b = 0;
        for (int j = 1; j < k; j++)
            if (logits[(size_t)i * k + j] > logits[(size_t)i * k + b]) b = j;
        out[i] = b;
    }
}

cJSON *pinas_nas_verify_report_json(const pinas_nas_verify_report *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "images", r->images);
    cJSON_AddNumberToObject(o, "plaintext_accuracy", r->plaintext_accuracy);
    cJSON_AddNumberToObject(o, "private_accuracy", r->private_accuracy);
    cJSON_AddNumberToObject(o, "argmax_agreement", r->argmax_agreement);
    cJSON_AddNumberToObject(o, "max_abs_logit_error", r->max_abs_logit_error);
    cJSON_AddNumberToObject(o, "frac_bits", r->frac_bits);
    cJSON_AddNumberToObject(o, "cmp_bits", r->cmp_bits);
    cJSON_AddNumberToObject(o, "layer_windows", r->layer_windows);
    cJSON_AddNumberToObject(o, "online_s", r->online_s);
    cJSON_AddNumberToObject(o, "offline_s", r->offline_s);
    cJSON_AddNumberToObject(o, "wall_s", r->wall_s);
    cJSON_AddNumberToObject(o, "online_bytes", (double)r->online_bytes);
    cJSON_AddNumberToObject(o, "preprocessing_bytes", (double)r->preprocessing_bytes);
    cJSON_AddNumberToObject(o, "rounds", (double)r->rounds);
    return o;
}

/* Compares the plaintext and private logits of n images against their labels. */
static void compare_logits(const float *plain, const float *priv, const int64_t *labels, int n, int k, int *cp, int *cq,
                           pinas_nas_verify_report *rep)
{
    argmax_rows(plain, n, k, cp);
    argmax_rows(priv, n, k, cq);
    int ok_plain = 0, ok_priv = 0, agree = 0;
    double err = 0;
    for (int i = 0; i < n; i++) {
        ok_plain += cp[i] == labels[i];
        ok_priv += cq[i] == labels[i];
        agree += cp[i] == cq[i];
    }
    for (size_t i = 0; i < (size_t)n * k; i++) err = fmax(err, fabs((double)plain[i] - priv[i]));
    rep->images = n;
    rep->plaintext_accuracy = (double)ok_plain / n;
    rep->private_accuracy = (double)ok_priv / n;
    rep->argmax_agreement = agree;
    rep->max_abs_logit_error = err;
}

pinas_status pinas_nas_verify_private(pinas_ctx *ctx, const char *model_dir, const char *run_dir, int n, pinas_nas_verify_report *report)
{
    memset(report, 0, sizeof *report);
    char *img = pinas_strfmt("%s/.verify-images.%d.safetensors", model_dir, (int)getpid());
    pinas_model *m = NULL;
    pinas_tensors *t = NULL;
    pinas_mpc_report *rep = NULL;
    float *plain = NULL, *priv = NULL;
    int *cp = NULL, *cq = NULL;
    pinas_status s = pinas_model_load(ctx, model_dir, &m);
    if (!s) s = pinas_nas_write_test_images(ctx, run_dir, n, img, NULL);
    if (!s) s = pinas_safetensors_load(ctx, img, &t);
    remove(img);
    free(img);
    pinas_tensor_view x, y;
    const pinas_node *in = m ? pinas_net_node(m->net, 0) : NULL;
    int64_t xs[4] = {n, in ? in->c : 0, in ? in->h : 0, in ? in->w : 0}, ys[1] = {n};
    if (!s) s = pinas_tensors_expect(ctx, t, "test images", "x", PINAS_F32, 4, xs, &x);
    if (!s) s = pinas_tensors_expect(ctx, t, "test images", "y", PINAS_I64, 1, ys, &y);
    int k = m ? pinas_net_num_classes(m->net) : 0;
    if (!s) {
        plain = malloc((size_t)n * k * sizeof *plain);
        priv = malloc((size_t)n * k * sizeof *priv);
        cp = malloc((size_t)n * sizeof *cp);
        cq = malloc((size_t)n * sizeof *cq);
        if (!plain || !priv || !cp || !cq) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (!s) s = pinas_plain_forward(ctx, m, x.data, n, plain);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    if (m) {
        p.frac_bits = m->meta.frac_bits;
        p.cmp_bits = m->meta.cmp_bits;
    }
    pinas_mpc_layer_bits *lb = NULL; /* a bit-cut model's per-node windows (meta.json mpc.layers) */
    int n_lb = s ? 0 : pinas_mpc_layer_bits_from_meta(&m->meta, &lb);
    if (n_lb < 0) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_mpc_deal_opts opts = {.layer_bits = lb, .n_layer_bits = n_lb > 0 ? n_lb : 0};
    double t0 = pinas_now();
    if (!s) s = pinas_mpc_infer_loopback(ctx, m, x.data, n, &p, &opts, priv, &rep);
    free(lb);
    double wall = pinas_now() - t0;
    if (!s) {
        compare_logits(plain, priv, y.data, n, k, cp, cq, report);
        report->frac_bits = p.frac_bits;
        report->cmp_bits = p.cmp_bits;
        report->layer_windows = n_lb;
        report->online_s = rep->online_s;
        report->offline_s = rep->offline_s;
        report->wall_s = wall;
        report->online_bytes = (int64_t)(rep->totals.online.bytes[0] + rep->totals.online.bytes[1]);
        report->preprocessing_bytes = (int64_t)(rep->totals.offline.bytes[0] + rep->totals.offline.bytes[1]);
        report->rounds = (int64_t)rep->totals.online.rounds;
    }
    pinas_mpc_report_free(rep);
    free(plain);
    free(priv);
    free(cp);
    free(cq);
    pinas_tensors_free(t);
    pinas_model_free(m);
    return s;
}
