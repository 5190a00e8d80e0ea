/* Validation of predictions against the runtime: random architectures of a space, predicted and
 * measured online latency, MAPE, max error and Kendall tau, per-op sums. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pinas_measure_validate_opts_default(pinas_measure_validate_opts *o)
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
                               const pinas_measure_validate_opts *o, int k, varch *v)
{
    memset(v, 0, sizeof *v);
    pinas_status s = pinas_net_random_arch(ctx, space, o->seed * 1000003 + (uint64_t)k, &v->arch);
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
    /* uniform in [-1, 1): 53 random bits of the seeded generator */
    pinas_rng rng = {(o->seed * 7919 + (uint64_t)k) ^ 0xabcdef};
    for (size_t i = 0; i < nx; i++) v->x[i] = (float)((double)(pinas_rng_next(&rng) >> 11) / 9007199254740992.0 * 2 - 1);
    return PINAS_OK;
}

/* Pass r: one preprocessing and o->runs online runs on it (r < 0: a warm-up run, not kept). */
static pinas_status varch_run(pinas_ctx *ctx, const pinas_measure_validate_opts *o, varch *v, int r)
{
    int batch = o->params.batch > 0 ? o->params.batch : 1;
    if (r < 0) { /* warm-up: page faults, first-touch allocations */
        pinas_mpc_report *rep = NULL;
        pinas_status s = pinas_mpc_infer_loopback(ctx, v->m, v->x, batch, &o->params, NULL, v->logits, &rep);
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
    qsort(sorted, (size_t)v->n, sizeof *sorted, measure_cmp_double);
    v->fastest = sorted[0];
    v->median = sorted[v->n / 2];
    free(sorted);
    return PINAS_OK;
}

static void error_stats(int K, const double *pred, const double *meas, pinas_measure_errors *e)
{
    e->mape_pct = e->max_error_pct = 0;
    for (int k = 0; k < K; k++) {
        double err = fabs(pred[k] - meas[k]) / meas[k];
        e->mape_pct += err;
        if (err > e->max_error_pct) e->max_error_pct = err;
    }
    e->mape_pct = 100 * e->mape_pct / K;
    e->max_error_pct *= 100;
    e->kendall_tau = pinas_measure_kendall_tau(K, pred, meas);
}

/* The by_op entry of op, appended when new; NULL when out of memory. */
static pinas_measure_op *op_entry(pinas_measure_validation *v, const char *op)
{
    for (int i = 0; i < v->n_ops; i++)
        if (strcmp(v->by_op[i].op, op) == 0) return &v->by_op[i];
    pinas_measure_op *nb = realloc(v->by_op, (size_t)(v->n_ops + 1) * sizeof *nb);
    if (!nb) return NULL;
    v->by_op = nb;
    pinas_measure_op *e = &nb[v->n_ops++];
    memset(e, 0, sizeof *e);
    snprintf(e->op, sizeof e->op, "%s", op);
    return e;
}

/* Adds per-layer predicted and measured online time to by_op (report layers matched to prediction
 * rows by id; "output" is the session's reveal). */
static pinas_status add_by_op(pinas_ctx *ctx, pinas_measure_validation *v, const pinas_cost_prediction *pr, const pinas_mpc_report *rep)
{
    for (int l = 0; l < rep->n_layers; l++) {
        const char *id = strcmp(rep->layers[l].id, "output") == 0 ? "(session)" : rep->layers[l].id;
        for (int r = 0; r < pr->n_rows; r++) {
            if (strcmp(pr->rows[r].id, id) != 0) continue;
            pinas_measure_op *e = op_entry(v, pr->rows[r].op);
            if (!e) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            e->predicted_ms += pr->rows[r].online_s * 1e3;
            e->measured_ms += rep->layers[l].online_s * 1e3;
            e->layers++;
            break;
        }
    }
    return PINAS_OK;
}

/* Measures every architecture: one warm-up pass, then o->reps passes round-robin over them (with a
 * calibration, one calibration pass before each measured pass, so that the profile is fitted on the
 * machine in the state the architectures are measured in); a busy spell of the machine spreads over
 * all architectures instead of falling on every run of a few. */
static pinas_status measure_all(pinas_ctx *ctx, const pinas_measure_validate_opts *o, varch *va, pinas_measure_calib *cal,
                                pinas_measure_calib_result **fitted)
{
    int K = o->archs;
    int64_t total = (int64_t)K * (o->reps + 1) + (cal ? (int64_t)pinas_measure_calib_steps(cal) * o->reps + 2 : 0), done = 0;
    pinas_progress *pg = pinas_progress_create(ctx, stderr, "validate", total);
    pinas_status s = PINAS_OK;
    for (int r = -1; r < o->reps && !s; r++) {
        if (cal && r >= 0) s = pinas_measure_calib_pass(ctx, cal, pg, &done);
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
    if (cal && !s) s = pinas_measure_calib_finish(ctx, cal, pg, &done, fitted);
    pinas_progress_finish(pg);
    return s;
}

/* Architecture k's record; *pred / *pred_st / *meas get the judged prediction, the given profile's
 * and the measurement, in seconds. */
static pinas_status judge_arch(pinas_ctx *ctx, const pinas_net *space, const pinas_measure_validate_opts *o, varch *v,
                               const pinas_measure_calib_result *fitted, pinas_measure_validation *res, pinas_measure_arch *a,
                               double *pred, double *pred_st, double *meas)
{
    pinas_status s = varch_summarize(ctx, v);
    pinas_cost_prediction *pr_fit = NULL;
    /* with the network the calibration subtracted: the fit plus that gives back what it measured */
    if (!s && fitted) s = pinas_cost_predict(ctx, v->arch, fitted->profile, fitted->net, &o->params, &pr_fit);
    if (s) return s;
    const pinas_cost_prediction *pr = pr_fit ? pr_fit : v->pr;
    const pinas_mpc_report *rep = v->reps[varch_pick(v, o->median)];
    *pred = pr->total.online_s;
    *pred_st = v->pr->total.online_s;
    *meas = rep->online_s;
    int n = pinas_net_n_nodes(space);
    a->choices = calloc((size_t)n, sizeof *a->choices);
    a->runs_ms = calloc((size_t)v->n, sizeof *a->runs_ms);
    if (!a->choices || !a->runs_ms) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int i = 0; i < n && !s; i++) {
        if (!pinas_node_is_open(pinas_net_node(space, i))) continue;
        const pinas_cand *c = pinas_node_chosen(pinas_net_node(v->arch, i));
        a->choices[a->n_choices++] = *c;
        a->relu_slots += c->kind == PINAS_CAND_RELU;
    }
    a->predicted_ms = *pred * 1e3;
    a->measured_ms = *meas * 1e3;
    a->error_pct = 100 * (*pred - *meas) / *meas;
    a->predicted_stored_ms = fitted ? *pred_st * 1e3 : NAN;
    for (int r = 0; r < v->n && !s; r++) a->runs_ms[a->n_runs++] = v->t[r] * 1e3;
    if (!s) s = add_by_op(ctx, res, pr, rep);
    pinas_cost_prediction_free(pr_fit);
    return s;
}

/* The summary figures once every architecture is judged. */
static pinas_status summarize(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                              const pinas_measure_validate_opts *o, const varch *va, const double *pred, const double *pred_st,
                              const double *meas, pinas_measure_validation *res)
{
    int K = o->archs;
    /* How busy the machine was: per architecture, its median run over its fastest; the median of that. */
    double *sp = malloc((size_t)K * sizeof *sp);
    if (!sp) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < K; k++) sp[k] = va[k].median / va[k].fastest - 1;
    qsort(sp, (size_t)K, sizeof *sp, measure_cmp_double);
    res->spread_pct = 100 * sp[K / 2];
    free(sp);
    error_stats(K, pred, meas, &res->errors);
    snprintf(res->space, sizeof res->space, "%s", pinas_net_name(space));
    snprintf(res->hw, sizeof res->hw, "%s", res->calibration ? "cpu (fitted during this run)" : pinas_cost_hw_name(hw));
    snprintf(res->net, sizeof res->net, "%s", pinas_cost_link_name(link));
    res->batch = o->params.batch;
    res->reps = o->reps;
    res->runs = o->runs;
    res->k = K;
    res->calibrated = res->calibration != NULL;
    if (res->calibration) {
        /* The profile given, judged on the same measurements: how far the machine has moved since it
         * was fitted (or how different the machine it was fitted on is). */
        snprintf(res->stored_hw, sizeof res->stored_hw, "%s", pinas_cost_hw_name(hw));
        const char *fitted = pinas_cost_hw_fitted(hw);
        snprintf(res->stored_fitted, sizeof res->stored_fitted, "%s", fitted ? fitted : "");
        error_stats(K, pred_st, meas, &res->stored);
    }
    return PINAS_OK;
}

static pinas_status check_opts(pinas_ctx *ctx, const pinas_measure_validate_opts *o)
{
    if (o->archs < 2) return pinas_error(ctx, PINAS_EINVAL, "validate: need at least 2 architectures, got %d", o->archs);
    if (o->reps < 1 || o->reps > 1000) return pinas_error(ctx, PINAS_EINVAL, "validate: reps must be in [1, 1000], got %d", o->reps);
    if (o->runs < 1 || o->runs > 100) return pinas_error(ctx, PINAS_EINVAL, "validate: runs must be in [1, 100], got %d", o->runs);
    return PINAS_OK;
}

pinas_status pinas_measure_validate(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                    const pinas_measure_validate_opts *o, pinas_measure_validation **out)
{
    *out = NULL;
    pinas_status s = check_opts(ctx, o);
    if (s) return s;
    int K = o->archs;
    double *pred = calloc((size_t)K, sizeof *pred), *meas = calloc((size_t)K, sizeof *meas), *pred_st = calloc((size_t)K, sizeof *pred_st);
    varch *va = calloc((size_t)K, sizeof *va);
    pinas_measure_validation *res = calloc(1, sizeof *res);
    if (res) res->archs = calloc((size_t)K, sizeof *res->archs);
    if (!pred || !meas || !pred_st || !va || !res || !res->archs) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < K && !s; k++) {
        s = varch_init(ctx, space, hw, link, o, k, &va[k]);
        if (s) pinas_error_prefix(ctx, s, "validate: architecture %d", k);
    }
    pinas_measure_calib *cal = NULL;
    if (!s && o->calib) {
        pinas_measure_calib_opts co = *o->calib;
        co.params = o->params;
        co.params.batch = 1;
        co.runs = o->runs;
        s = pinas_measure_calib_begin(ctx, &co, &cal);
    }
    if (!s) s = measure_all(ctx, o, va, cal, &res->calibration);
    for (int k = 0; k < K && !s; k++) {
        res->n_archs = k + 1; /* counted before it is filled, so that a failure frees what it holds */
        s = judge_arch(ctx, space, o, &va[k], res->calibration, res, &res->archs[k], &pred[k], &pred_st[k], &meas[k]);
    }
    if (!s) s = summarize(ctx, space, hw, link, o, va, pred, pred_st, meas, res);
    for (int k = 0; va && k < K; k++) varch_free(&va[k]);
    free(va);
    pinas_measure_calib_free(cal);
    free(pred);
    free(meas);
    free(pred_st);
    if (s) {
        pinas_measure_validation_free(res);
        return s;
    }
    *out = res;
    return PINAS_OK;
}

void pinas_measure_validation_free(pinas_measure_validation *v)
{
    if (!v) return;
    for (int k = 0; v->archs && k < v->n_archs; k++) {
        free(v->archs[k].choices);
        free(v->archs[k].runs_ms);
    }
    free(v->archs);
    free(v->by_op);
    pinas_measure_calib_result_free(v->calibration);
    free(v);
}

static void add_errors(cJSON *o, const pinas_measure_errors *e)
{
    cJSON_AddNumberToObject(o, "mape_pct", e->mape_pct);
    cJSON_AddNumberToObject(o, "max_error_pct", e->max_error_pct);
    cJSON_AddNumberToObject(o, "kendall_tau", e->kendall_tau);
}

static cJSON *arch_json(const pinas_measure_arch *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    char nm[40];
    for (int i = 0; i < a->n_choices; i++) cJSON_AddItemToArray(choices, cJSON_CreateString(pinas_cand_name(&a->choices[i], nm, sizeof nm)));
    cJSON_AddNumberToObject(o, "relu_slots", a->relu_slots);
    cJSON_AddNumberToObject(o, "predicted_ms", a->predicted_ms);
    cJSON_AddNumberToObject(o, "measured_ms", a->measured_ms);
    cJSON_AddNumberToObject(o, "error_pct", a->error_pct);
    if (!isnan(a->predicted_stored_ms)) cJSON_AddNumberToObject(o, "predicted_stored_ms", a->predicted_stored_ms);
    cJSON_AddItemToObject(o, "runs_ms", cJSON_CreateDoubleArray(a->runs_ms, a->n_runs));
    return o;
}

cJSON *pinas_measure_validation_to_json(const pinas_measure_validation *v)
{
    cJSON *res = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(res, "archs");
    for (int k = 0; k < v->n_archs; k++) cJSON_AddItemToArray(archs, arch_json(&v->archs[k]));
    cJSON_AddStringToObject(res, "space", v->space);
    cJSON_AddStringToObject(res, "hw", v->hw);
    cJSON_AddStringToObject(res, "net", v->net);
    cJSON_AddNumberToObject(res, "batch", v->batch);
    cJSON_AddNumberToObject(res, "reps", v->reps);
    cJSON_AddNumberToObject(res, "runs", v->runs);
    cJSON_AddNumberToObject(res, "k", v->k);
    cJSON_AddBoolToObject(res, "calibrated", v->calibrated);
    add_errors(res, &v->errors);
    if (isfinite(v->spread_pct)) cJSON_AddNumberToObject(res, "spread_pct", v->spread_pct);
    if (v->calibration) {
        cJSON *st = cJSON_AddObjectToObject(res, "stored");
        cJSON_AddStringToObject(st, "hw", v->stored_hw);
        if (v->stored_fitted[0]) cJSON_AddStringToObject(st, "fitted", v->stored_fitted);
        add_errors(st, &v->stored);
        cJSON_AddItemToObject(res, "profile", pinas_cost_hw_to_json(v->calibration->profile));
        cJSON_AddItemToObject(res, "measured_net", pinas_cost_link_to_json(v->calibration->net));
        cJSON_AddItemToObject(res, "calibration", pinas_measure_calib_result_to_json(v->calibration));
    }
    cJSON *by_op = cJSON_AddObjectToObject(res, "by_op");
    for (int i = 0; i < v->n_ops; i++) {
        cJSON *e = cJSON_AddObjectToObject(by_op, v->by_op[i].op);
        cJSON_AddNumberToObject(e, "predicted_ms", v->by_op[i].predicted_ms);
        cJSON_AddNumberToObject(e, "measured_ms", v->by_op[i].measured_ms);
        cJSON_AddNumberToObject(e, "layers", v->by_op[i].layers);
    }
    return res;
}
