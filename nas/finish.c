/* Finishing one point of a search run: price the derived (or baseline) architecture, fine-tune or
 * retrain it by the run's one recipe, evaluate it on the test split, write its model dir and
 * metrics.json. */
#define _GNU_SOURCE
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* How a point is trained: the phase name, the teacher (distillation), the mode and the epochs. */
typedef struct {
    char phase[64];
    char *teacher;      /* owned; NULL = no distillation */
    int scratch, epochs;
} recipe;

/* The meta every point's model starts from: the config's fixed-point parameters, the predicted
 * latency under every profile and where the model came from. */
static pinas_status point_meta(pinas_ctx *ctx, const nas_run *r, const pinas_net *arch, const nas_point *pt, pinas_model_meta *m)
{
    const pinas_config *cfg = r->cfg;
    pinas_model_meta_init(m);
    m->frac_bits = cfg->mpc.frac_bits;
    m->cmp_bits = cfg->mpc.cmp_bits;
    pinas_status s = nas_price_all(ctx, arch, &cfg->search, &cfg->latency, &cfg->mpc, m);
    char *source = pt->k >= 0 ? pinas_strfmt("pinas search run %s (%s), candidate %d", r->run_dir, r->name, pt->k)
                              : pinas_strfmt("pinas search run %s (%s), %s", r->run_dir, r->name, pt->name);
    if (!s) s = source ? pinas_model_meta_set_str(ctx, &m->source, source) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    free(source);
    if (s) pinas_model_meta_free(m);
    return s;
}

/* Trains arch by the recipe from init (fine-tuning) or from scratch, or - with no epochs - takes the
 * supernet's weights as they are (a fresh init in scratch mode) and evaluates them. *m: new. */
static pinas_status train_point(pinas_ctx *ctx, const nas_run *r, const pinas_net *arch, const pinas_tensors *init, const recipe *rc,
                                const pinas_model_meta *base, pinas_model **m, double *acc)
{
    const pinas_config *cfg = r->cfg;
    pinas_status s;
    *acc = NAN;
    if (rc->epochs > 0) {
        pinas_train_opts o;
        nas_train_opts(r, &o, rc->phase);
        o.epochs = rc->epochs;
        o.lr = cfg->finetune.lr;
        o.train_split = PINAS_SPLIT_TRAIN_ALL;
        o.eval_split = PINAS_SPLIT_TEST;
        if (rc->teacher) o.teacher = rc->teacher;
        pinas_info(ctx, "%s: %s %s for %d epoch%s", rc->phase, rc->scratch ? "retraining" : "fine-tuning", pinas_net_name(arch), rc->epochs,
                   rc->epochs == 1 ? "" : "s");
        s = pinas_train_model(ctx, arch, rc->scratch ? NULL : init, r->data, &o, base, m);
        if (!s) *acc = (*m)->meta.accuracy;
        return s;
    }
    pinas_tnet *t = NULL;
    pinas_tensors *w = NULL;
    pinas_model_meta meta;
    pinas_model_meta_init(&meta);
    s = pinas_tnet_create(ctx, arch, r->seed, &t);
    if (!s && !rc->scratch) s = pinas_tnet_load(ctx, t, init, 1);
    if (!s) s = pinas_evaluate(ctx, t, r->data, PINAS_SPLIT_TEST, cfg->train.batch_size, acc, NULL);
    if (!s) s = pinas_tnet_export(ctx, t, arch, &w);
    pinas_tnet_free(t);
    if (!s) s = pinas_model_meta_copy(ctx, base, &meta);
    if (!s) s = pinas_dataset_fill_meta(ctx, r->data, arch, &meta);
    meta.accuracy = *acc;
    pinas_net *copy = s ? NULL : pinas_net_clone(arch);
    if (!s && !copy) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        s = pinas_model_create(ctx, copy, w, &meta, m);
        w = NULL;
    }
    pinas_tensors_free(w);
    pinas_model_meta_free(&meta);
    return s;
}

/* metrics.json of a finished point (its presence marks the point as finished: resume skips it). */
static pinas_status write_metrics(pinas_ctx *ctx, const nas_run *r, const pinas_net *arch, const nas_point *pt, const recipe *rc,
                                  const pinas_model_meta *meta, double acc, cJSON **latency)
{
    const pinas_config *cfg = r->cfg;
    cJSON *mt = cJSON_CreateObject();
    cJSON_AddStringToObject(mt, "format", PINAS_METRICS_FORMAT);
    cJSON_AddStringToObject(mt, "run", r->name);
    cJSON_AddStringToObject(mt, "kind", pt->kind);
    if (pt->k >= 0) {
        cJSON_AddNumberToObject(mt, "k", pt->k);
        const char *sk = pt->sweep_key ? pt->sweep_key : r->multiplicative ? "target_ms" : "lambda";
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(mt, "sweep"), sk, pt->value);
    }
    if (pt->naive) cJSON_AddItemToObject(mt, "naive", cJSON_Duplicate(pt->naive, 1));
    cJSON_AddNumberToObject(mt, "accuracy", acc);
    cJSON_AddNumberToObject(mt, "relu_count", (double)pinas_net_relu_count(arch));
    char *key = pinas_strfmt("%s/%s", cfg->search.hw, cfg->search.net);
    const pinas_meta_latency *own = key ? pinas_model_meta_latency(meta, key) : NULL;
    free(key);
    if (!own) {
        cJSON_Delete(mt);
        return pinas_error(ctx, PINAS_EINTERNAL, "%s: not priced under the search's own profiles", pinas_net_name(arch));
    }
    cJSON_AddNumberToObject(mt, "online_bytes", (double)own->online_bytes);
    cJSON_AddNumberToObject(mt, "preprocessing_bytes", (double)own->preprocessing_bytes);
    cJSON_AddNumberToObject(mt, "macs", (double)pinas_net_macs(arch));
    cJSON_AddNumberToObject(mt, "params", (double)pinas_net_params(arch));
    *latency = pinas_model_meta_latency_json(meta->latency, meta->n_latency);
    cJSON_AddItemToObject(mt, "latency", cJSON_Duplicate(*latency, 1));
    cJSON_AddItemToObject(mt, "arch", pinas_nas_arch_json(arch));
    if (pt->search) cJSON_AddItemToObject(mt, "search", cJSON_Duplicate(pt->search, 1));
    cJSON *ft = cJSON_AddObjectToObject(mt, "finetune");
    cJSON_AddStringToObject(ft, "mode", rc->scratch ? "scratch" : "supernet");
    cJSON_AddNumberToObject(ft, "epochs", rc->epochs);
    cJSON_AddNumberToObject(ft, "lr", cfg->finetune.lr);
    if (rc->teacher && rc->epochs > 0) cJSON_AddStringToObject(ft, "distilled_from", "baselines/all-relu");
    char *mp = pinas_path_join(pt->dir, "metrics.json");
    pinas_status s = pinas_json_save(ctx, mp, mt);
    free(mp);
    cJSON_Delete(mt);
    return s;
}

pinas_status nas_finish_arch(pinas_ctx *ctx, nas_run *r, const pinas_net *arch, const pinas_tensors *init, const nas_point *pt_in)
{
    const pinas_config *cfg = r->cfg;
    nas_point pt = *pt_in;
    if (!pt.name) pt.name = pt.kind;
    pinas_model_meta base;
    pinas_status s = point_meta(ctx, r, arch, &pt, &base);
    if (s) return s;
    recipe rc = {.scratch = cfg->finetune.mode == PINAS_FINETUNE_SCRATCH, .epochs = cfg->finetune.epochs};
    if (pt.k >= 0) snprintf(rc.phase, sizeof rc.phase, "finetune-%d", pt.k);
    else snprintf(rc.phase, sizeof rc.phase, "finetune-%s", pt.name);
    if (cfg->finetune.distill && strcmp(pt.kind, "all-relu")) rc.teacher = pinas_strfmt("%s/baselines/all-relu", r->run_dir);
    pinas_model *m = NULL;
    double acc = NAN, secs = pinas_now();
    s = train_point(ctx, r, arch, init, &rc, &base, &m, &acc);
    secs = pinas_now() - secs;
    if (!s) s = pinas_model_save(ctx, pt.dir, m);
    cJSON *latency = NULL;
    if (!s) s = write_metrics(ctx, r, arch, &pt, &rc, &base, acc, &latency);
    if (!s) {
        /* Seconds are not part of the result: a resumed run must write the same metrics. */
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "phase", rc.phase);
        cJSON_AddStringToObject(line, "kind", pt.kind);
        if (strcmp(pt.name, pt.kind)) cJSON_AddStringToObject(line, "name", pt.name);
        if (pt.k >= 0) cJSON_AddNumberToObject(line, "k", pt.k);
        cJSON_AddNumberToObject(line, "test_accuracy", acc);
        cJSON_AddNumberToObject(line, "relu_count", (double)pinas_net_relu_count(arch));
        cJSON_AddItemToObject(line, "latency", latency);
        latency = NULL;
        cJSON_AddNumberToObject(line, "seconds", secs);
        s = nas_log_line(ctx, r, line);
        cJSON_Delete(line);
        if (!s) pinas_info(ctx, "%s: test accuracy %.2f%%, %lld ReLUs -> %s", rc.phase, 100 * acc, (long long)pinas_net_relu_count(arch), pt.dir);
    }
    cJSON_Delete(latency);
    pinas_model_free(m);
    pinas_model_meta_free(&base);
    free(rc.teacher);
    return s;
}
