/* Validation of predictions against the runtime: random architectures of a space, predicted and
 * measured online latency, MAPE, max error and Kendall tau. */
#define _GNU_SOURCE
#include "cost_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void pinas_cost_validate_opts_default(pinas_cost_validate_opts *o)
{
    memset(o, 0, sizeof *o);
    o->archs = 20;
    o->reps = 10;
    o->runs = 4;
    o->seed = 1;
    pinas_mpc_params_default(&o->params);
}

/* One architecture under validation. */
typedef struct {
    pinas_net *arch;
    pinas_cost_prediction *pr;
    pinas_model *m;
    float *x, *logits;
    int n;                     /* measured runs: reps passes x runs per preprocessing */
    double *t;                 /* online seconds of each measured run */
    double fastest, median;    /* of t, once measured */
    pinas_mpc_report **reps;   /* and its report */
} varch;

static void varch_free(varch *v)
{
    if (v->reps)
        for (int r = 0; r < v->n; r++) pinas_mpc_report_free(v->reps[r]);
    free(v->reps);
    free(v->t);
    free(v->x);
    free(v->logits);
    pinas_model_free(v->m);
    pinas_cost_prediction_free(v->pr);
    pinas_net_free(v->arch);
}

/* Samples architecture k, predicts it, makes its random model and input. */
static pinas_status varch_init(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                               const pinas_cost_validate_opts *o, int k, varch *v)
{
    memset(v, 0, sizeof *v);
    pinas_status s = pinas_cost_random_arch(ctx, space, o->seed * 1000003 + (uint64_t)k, &v->arch);
    if (!s) s = pinas_cost_predict(ctx, v->arch, hw, link, &o->params, &v->pr);
    if (!s) s = pinas_model_random(ctx, v->arch, o->seed * 7919 + (uint64_t)k, &v->m);
    if (s) return s;
    const pinas_node *in = pinas_net_node(v->arch, 0);
    int batch = o->params.batch > 0 ? o->params.batch : 1, ncls = pinas_net_num_classes(v->arch);
    size_t nx = (size_t)batch * in->c * in->h * in->w;
    v->x = malloc(nx * sizeof *v->x);
    v->logits = malloc((size_t)batch * (ncls > 0 ? ncls : 1) * sizeof *v->logits);
    v->n = o->reps * o->runs;
    v->t = calloc((size_t)v->n, sizeof *v->t);
    v->reps = calloc((size_t)v->n, sizeof *v->reps);
    if (!v->x || !v->logits || !v->t || !v->reps) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    uint64_t st = (o->seed * 7919 + (uint64_t)k) ^ 0xabcdef;
    for (size_t i = 0; i < nx; i++) v->x[i] = (float)((double)(splitmix(&st) >> 11) / 9007199254740992.0 * 2 - 1);
    return PINAS_OK;
}

/* Pass r: one preprocessing and o->runs online runs on it (r < 0: a warm-up run, not kept). */
static pinas_status varch_run(pinas_ctx *ctx, const pinas_cost_validate_opts *o, varch *v, int r)
{
    int batch = o->params.batch > 0 ? o->params.batch : 1;
    if (r < 0) { /* warm-up: page faults, first-touch allocations */
        pinas_mpc_report *rep = NULL;
        pinas_status s = pinas_mpc_infer_local(ctx, v->m, v->x, batch, &o->params, v->logits, &rep);
        pinas_mpc_report_free(rep);
        return s;
    }
    pinas_mpc_report **out = v->reps + (size_t)r * o->runs;
    pinas_status s = pinas_mpc_bench_local(ctx, v->m, v->x, batch, &o->params, o->runs, v->logits, out);
    for (int j = 0; j < o->runs && !s; j++) v->t[r * o->runs + j] = out[j]->online_s;
    return s;
}

/* The fastest run by default (other processes on a shared machine only add time; the cpu profile is
 * calibrated the same way), or the median; its index. */
static int varch_pick(const varch *v, int median)
{
    double want = median ? v->median : v->fastest;
    for (int r = 0; r < v->n; r++)
        if (v->t[r] == want) return r;
    return 0;
}

/* Sets v->fastest and v->median from the measured runs. */
static pinas_status varch_summarize(pinas_ctx *ctx, varch *v)
{
    double *sorted = malloc((size_t)v->n * sizeof *sorted);
    if (!sorted) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    memcpy(sorted, v->t, (size_t)v->n * sizeof *sorted);
    qsort(sorted, (size_t)v->n, sizeof *sorted, cmp_double);
    v->fastest = sorted[0];
    v->median = sorted[v->n / 2];
    free(sorted);
    return PINAS_OK;
}

static void error_stats(int K, const double *pred, const double *meas, double *mape, double *maxe, double *tau)
{
    *mape = *maxe = 0;
    for (int k = 0; k < K; k++) {
        double e = fabs(pred[k] - meas[k]) / meas[k];
        *mape += e;
        if (e > *maxe) *maxe = e;
    }
    *mape = 100 * *mape / K;
    *maxe *= 100;
    *tau = pinas_cost_kendall_tau(K, pred, meas);
}

/* Adds per-layer predicted and measured online time to by_op[op] (report layers matched to
 * prediction rows by id; "output" is the session's reveal). */
static void add_by_op(cJSON *by_op, const pinas_cost_prediction *pr, const pinas_mpc_report *rep)
{
    for (int l = 0; l < rep->n_layers; l++) {
        const char *id = strcmp(rep->layers[l].id, "output") == 0 ? "(session)" : rep->layers[l].id;
        for (int r = 0; r < pr->n_rows; r++) {
            if (strcmp(pr->rows[r].id, id) != 0) continue;
            cJSON *e = cJSON_GetObjectItemCaseSensitive(by_op, pr->rows[r].op);
            if (!e) {
                e = cJSON_AddObjectToObject(by_op, pr->rows[r].op);
                cJSON_AddNumberToObject(e, "predicted_ms", 0);
                cJSON_AddNumberToObject(e, "measured_ms", 0);
                cJSON_AddNumberToObject(e, "layers", 0);
            }
            cJSON *pp = cJSON_GetObjectItemCaseSensitive(e, "predicted_ms"), *mm = cJSON_GetObjectItemCaseSensitive(e, "measured_ms"),
                  *ll = cJSON_GetObjectItemCaseSensitive(e, "layers");
            cJSON_SetNumberValue(pp, pp->valuedouble + pr->rows[r].online_s * 1e3);
            cJSON_SetNumberValue(mm, mm->valuedouble + rep->layers[l].online_s * 1e3);
            cJSON_SetNumberValue(ll, ll->valuedouble + 1);
            break;
        }
    }
}

pinas_status pinas_cost_validate(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                 const pinas_cost_validate_opts *o, cJSON **result)
{
    *result = NULL;
    int K = o->archs;
    if (K < 2) return pinas_error(ctx, PINAS_EINVAL, "validate: need at least 2 architectures, got %d", K);
    if (o->reps < 1 || o->reps > 1000) return pinas_error(ctx, PINAS_EINVAL, "validate: reps must be in [1, 1000], got %d", o->reps);
    if (o->runs < 1 || o->runs > 100) return pinas_error(ctx, PINAS_EINVAL, "validate: runs must be in [1, 100], got %d", o->runs);
    double *pred = calloc((size_t)K, sizeof *pred), *meas = calloc((size_t)K, sizeof *meas), *pred_st = calloc((size_t)K, sizeof *pred_st);
    cJSON *res = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(res, "archs");
    /* Per op kind: summed predicted and measured per-layer online time, to show where errors come from. */
    cJSON *by_op = cJSON_CreateObject(), *calib_rep = NULL;
    pinas_status s = pred && meas && pred_st ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    varch *va = calloc((size_t)K, sizeof *va);
    if (!va && !s) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < K && !s; k++) {
        s = varch_init(ctx, space, hw, link, o, k, &va[k]);
        if (s) pinas_error_prefix(ctx, s, "validate: architecture %d", k);
    }
    pinas_cost_calib *cal = NULL;
    pinas_cost_hw *fitted = NULL;
    if (!s && o->calib) {
        pinas_cost_calib_opts co = *o->calib;
        co.params = o->params;
        co.params.batch = 1;
        co.runs = o->runs;
        s = pinas_cost_calib_begin(ctx, &co, &cal);
    }
    /* Round-robin over the architectures, one run each per pass, so that a busy spell of the machine
     * spreads over all of them instead of falling on every run of a few; with calibration, one
     * calibration pass before each measured pass, so that the profile is fitted on the machine in the
     * state the architectures are measured in. */
    int64_t total = (int64_t)K * (o->reps + 1) + (cal ? (int64_t)pinas_cost_calib_steps(cal) * o->reps + 2 : 0), done = 0;
    pinas_progress *pg = pinas_progress_create(ctx, stderr, "validate", total);
    for (int r = -1; r < o->reps && !s; r++) {
        if (cal && r >= 0) s = pinas_cost_calib_pass(ctx, cal, pg, &done);
        for (int k = 0; k < K && !s; k++) {
            s = varch_run(ctx, o, &va[k], r);
            if (s) {
                pinas_error_prefix(ctx, s, "validate: architecture %d", k);
                break;
            }
            char st[96];
            if (r >= 0) snprintf(st, sizeof st, "pass %d/%d: arch %d %.2f ms (pred %.2f)", r + 1, o->reps, k, va[k].t[r * o->runs] * 1e3,
                                 va[k].pr->total.online_s * 1e3);
            else snprintf(st, sizeof st, "warm-up arch %d", k);
            pinas_progress_update(pg, ++done, st);
        }
    }
    if (cal && !s) s = pinas_cost_calib_finish(ctx, cal, pg, &done, &fitted, &calib_rep);
    pinas_progress_finish(pg);
    for (int k = 0; k < K && !s; k++) {
        varch *v = &va[k];
        if ((s = varch_summarize(ctx, v))) break;
        pinas_cost_prediction *pr_fit = NULL;
        if (fitted) {
            /* with the network the calibration subtracted: the fit plus that gives back what it measured */
            s = pinas_cost_predict(ctx, v->arch, fitted, pinas_cost_calib_link(cal), &o->params, &pr_fit);
            if (s) break;
        }
        const pinas_cost_prediction *pr = pr_fit ? pr_fit : v->pr;
        const pinas_mpc_report *rep = v->reps[varch_pick(v, o->median)];
        pred[k] = pr->total.online_s;
        pred_st[k] = v->pr->total.online_s;
        meas[k] = rep->online_s;
        cJSON *a = cJSON_CreateObject();
        cJSON *choices = cJSON_AddArrayToObject(a, "choices");
        int relus = 0;
        for (int i = 0; i < pinas_net_n_nodes(space); i++) {
            if (!pinas_node_is_open(pinas_net_node(space, i))) continue;
            char nm[40];
            const pinas_cand *c = pinas_node_chosen(pinas_net_node(v->arch, i));
            cJSON_AddItemToArray(choices, cJSON_CreateString(pinas_cand_name(c, nm, sizeof nm)));
            relus += c->kind == PINAS_CAND_RELU;
        }
        cJSON_AddNumberToObject(a, "relu_slots", relus);
        cJSON_AddNumberToObject(a, "predicted_ms", pred[k] * 1e3);
        cJSON_AddNumberToObject(a, "measured_ms", meas[k] * 1e3);
        cJSON_AddNumberToObject(a, "error_pct", 100 * (pred[k] - meas[k]) / meas[k]);
        if (fitted) cJSON_AddNumberToObject(a, "predicted_stored_ms", pred_st[k] * 1e3);
        cJSON *runs = cJSON_AddArrayToObject(a, "runs_ms");
        for (int r = 0; r < v->n; r++) cJSON_AddItemToArray(runs, cJSON_CreateNumber(v->t[r] * 1e3));
        cJSON_AddItemToArray(archs, a);
        add_by_op(by_op, pr, rep);
        pinas_cost_prediction_free(pr_fit);
    }
    /* How busy the machine was: per architecture, its median run over its fastest; the median of that. */
    double spread = NAN;
    double *sp = s ? NULL : malloc((size_t)K * sizeof *sp);
    if (sp) {
        for (int k = 0; k < K; k++) sp[k] = va[k].median / va[k].fastest - 1;
        qsort(sp, (size_t)K, sizeof *sp, cmp_double);
        spread = 100 * sp[K / 2];
    }
    free(sp);
    for (int k = 0; va && k < K; k++) varch_free(&va[k]);
    free(va);
    if (!s) {
        double mape, maxe, tau;
        error_stats(K, pred, meas, &mape, &maxe, &tau);
        cJSON_AddStringToObject(res, "space", pinas_net_name(space));
        cJSON_AddStringToObject(res, "hw", fitted ? "cpu (fitted during this run)" : pinas_cost_hw_name(hw));
        cJSON_AddStringToObject(res, "net", pinas_cost_link_name(link));
        cJSON_AddNumberToObject(res, "batch", o->params.batch);
        cJSON_AddNumberToObject(res, "reps", o->reps);
        cJSON_AddNumberToObject(res, "runs", o->runs);
        cJSON_AddNumberToObject(res, "k", K);
        cJSON_AddBoolToObject(res, "calibrated", fitted != NULL);
        cJSON_AddNumberToObject(res, "mape_pct", mape);
        cJSON_AddNumberToObject(res, "max_error_pct", maxe);
        cJSON_AddNumberToObject(res, "kendall_tau", tau);
        if (isfinite(spread)) cJSON_AddNumberToObject(res, "spread_pct", spread);
        if (fitted) {
            /* The profile given, judged on the same measurements: how far the machine has moved since it
             * was fitted (or how different the machine it was fitted on is). */
            cJSON *st = cJSON_AddObjectToObject(res, "stored");
            cJSON *hj = pinas_cost_hw_to_json(hw);
            const cJSON *date = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(hj, "calibration"), "date");
            cJSON_AddStringToObject(st, "hw", pinas_cost_hw_name(hw));
            if (cJSON_IsString(date)) cJSON_AddStringToObject(st, "fitted", date->valuestring);
            cJSON_Delete(hj);
            error_stats(K, pred_st, meas, &mape, &maxe, &tau);
            cJSON_AddNumberToObject(st, "mape_pct", mape);
            cJSON_AddNumberToObject(st, "max_error_pct", maxe);
            cJSON_AddNumberToObject(st, "kendall_tau", tau);
            cJSON_AddItemToObject(res, "profile", pinas_cost_hw_to_json(fitted));
            cJSON_AddItemToObject(res, "measured_net", pinas_cost_link_to_json(pinas_cost_calib_link(cal)));
            cJSON_AddItemToObject(res, "calibration", calib_rep);
            calib_rep = NULL;
        }
        cJSON_AddItemToObject(res, "by_op", by_op);
        by_op = NULL;
        *result = res;
        res = NULL;
    }
    pinas_cost_calib_free(cal);
    pinas_cost_hw_free(fitted);
    cJSON_Delete(calib_rep);
    cJSON_Delete(by_op);
    cJSON_Delete(res);
    free(pred);
    free(meas);
    free(pred_st);
    return s;
}
