/* Validation of the cost model against the runtime: random architectures of a space, predicted per
 * node and party, measured per node and party (thread CPU time), judged per node and per net. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pinas_measure_validate_opts_default(pinas_measure_validate_opts *o)
{
    memset(o, 0, sizeof *o);
    o->archs = 20;
    o->runs = 5;
    o->seed = 1;
    pinas_mpc_params_default(&o->params);
}

/* Per-node error sums of one class. */
typedef struct {
    int n, shaped;
    double err, err_p[2];
    int n_p[2];
    double pred_ms, meas_ms;
} op_acc;

static double dmax(double a, double b) { return a > b ? a : b; }

/* 1 when both parties' compute of node i is priced by a measured shape of the judged profile. */
static int node_shaped(pinas_ctx *ctx, const pinas_cpu_params *cp, const pinas_net *arch, int i, int prim, const pinas_mpc_params *p)
{
    pinas_mpc_cost counts;
    if (!cp || !cp->n_shapes || pinas_mpc_cost_node(ctx, arch, i, -1, p, &counts)) {
        pinas_error_clear(ctx);
        return 0;
    }
    int found = 0;
    for (int q = 0; q < 2; q++) {
        double f[PINAS_CPU_N_FEAT];
        pinas_cpu_features(arch, i, NULL, p->batch, &counts, q, f);
        found += pinas_cpu_shape_find(cp, prim, q, f) != NULL;
    }
    return found == 2;
}

/* Judges one architecture: robust and wall figures, per-node errors into acc. pr: the judged
 * profile's prediction (cp: its cpu parameters, or NULL); pr_st: the stored one's (or NULL). */
static void judge_arch(pinas_ctx *ctx, const pinas_net *space, const pinas_net *arch, const pinas_cost_prediction *pr,
                       const pinas_cost_prediction *pr_st, const pinas_measure_nodes *mn, op_acc *acc, pinas_measure_arch *a,
                       double *pred_stored_ms, const pinas_cpu_params *cp, const pinas_mpc_params *p)
{
    double comp_pred = 0, comp_meas = 0;
    for (int r = 0; r < pr->n_rows; r++) {
        const pinas_cost_row *row = &pr->rows[r];
        int i = row->node, prim = i >= 0 ? pinas_cpu_prim_of(arch, i, NULL) : -1;
        if (i < 0 || i >= mn->n_nodes) continue;
        double ms = dmax(mn->cpu_s[i][0], mn->cpu_s[i][1]);
        comp_pred += row->compute_s;
        comp_meas += ms;
        if (prim < 0 || !(ms > 0)) continue;
        if (a->nodes) {
            struct pinas_measure_node_fig *nf = &a->nodes[a->n_nodes++];
            snprintf(nf->id, sizeof nf->id, "%s", row->id);
            nf->prim = prim;
            for (int q = 0; q < 2; q++) {
                nf->predicted_ms[q] = row->compute_party_s[q] * 1e3;
                nf->measured_ms[q] = mn->cpu_s[i][q] * 1e3;
            }
        }
        op_acc *o = &acc[prim];
        o->n++;
        o->shaped += node_shaped(ctx, cp, arch, i, prim, p);
        o->err += fabs(row->compute_s - ms) / ms;
        o->pred_ms += row->compute_s * 1e3;
        o->meas_ms += ms * 1e3;
        for (int q = 0; q < 2; q++)
            if (mn->cpu_s[i][q] > 0) {
                o->n_p[q]++;
                o->err_p[q] += fabs(row->compute_party_s[q] - mn->cpu_s[i][q]) / mn->cpu_s[i][q];
            }
    }
    /* the same communication (the network profile's) on both sides: only compute differs */
    double total = pr->total.online_s;
    a->predicted_ms = total * 1e3;
    a->predicted_compute_ms = comp_pred * 1e3;
    a->measured_ms = (total - comp_pred + comp_meas) * 1e3;
    a->error_pct = 100 * (a->predicted_ms - a->measured_ms) / a->measured_ms;
    a->wall_ms = mn->wall_s * 1e3;
    a->wall_error_pct = 100 * (a->predicted_ms - a->wall_ms) / a->wall_ms;
    a->predicted_stored_ms = pr_st ? pr_st->total.online_s * 1e3 : NAN;
    *pred_stored_ms = pr_st ? pr_st->total.online_s * 1e3 : NAN;
    int n = pinas_net_n_nodes(space);
    for (int i = 0; i < n && a->choices; i++) {
        if (!pinas_node_is_open(pinas_net_node(space, i))) continue;
        const pinas_cand *c = pinas_node_chosen(pinas_net_node(arch, i));
        a->choices[a->n_choices++] = *c;
        a->relu_slots += c->kind == PINAS_CAND_RELU;
    }
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

/* Architecture k: sample, predict (judged and stored profiles), run, judge. */
static pinas_status validate_arch(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                  const pinas_measure_validate_opts *o, const pinas_mpc_params *p, int k,
                                  pinas_measure_validation *v, op_acc *acc, double *pst)
{
    pinas_net *arch = NULL;
    pinas_model *m = NULL;
    pinas_cost_prediction *pr = NULL, *pr_st = NULL;
    pinas_measure_nodes mn = {0};
    const pinas_cost_hw *judged = v->calibration ? v->calibration->profile : hw;
    pinas_cpu_params cp;
    int is_cpu = !pinas_cost_hw_cpu_params(ctx, judged, &cp);
    pinas_error_clear(ctx);
    pinas_status s = pinas_net_random_arch(ctx, space, o->seed * 1000003 + (uint64_t)k, &arch);
    if (!s) s = pinas_cost_predict(ctx, arch, judged, link, p, &pr);
    if (!s && v->calibration) s = pinas_cost_predict(ctx, arch, hw, link, p, &pr_st);
    if (!s) s = pinas_model_random(ctx, arch, o->seed * 7919 + (uint64_t)k, &m);
    double probe0 = 0, probe1 = 0; /* the machine's speed just before and after this architecture's runs */
    if (!s) s = pinas_measure_probe(ctx, p, &probe0);
    if (!s) s = pinas_measure_node_cpu(ctx, m, p->batch, p, o->runs, (o->seed * 7919 + (uint64_t)k) ^ 0xabcdef, &mn);
    v->shielded_archs += !s && mn.shielded;
    if (!s) s = pinas_measure_probe(ctx, p, &probe1);
    pinas_measure_arch *a = &v->archs[k];
    a->choices = calloc((size_t)pinas_net_n_nodes(space), sizeof *a->choices);
    a->nodes = arch ? calloc((size_t)pinas_net_n_nodes(arch), sizeof *a->nodes) : NULL;
    if (!s && (!a->choices || !a->nodes)) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) judge_arch(ctx, space, arch, pr, pr_st, &mn, acc, a, &pst[k], is_cpu ? &cp : NULL, p);
    a->speed = v->probe_ref > 0 ? 0.5 * (probe0 + probe1) / v->probe_ref : NAN;
    if (s) s = pinas_error_prefix(ctx, s, "validate: architecture %d", k);
    pinas_measure_nodes_free(&mn);
    pinas_cost_prediction_free(pr);
    pinas_cost_prediction_free(pr_st);
    pinas_model_free(m);
    pinas_net_free(arch);
    return s;
}

/* The figures again with each architecture's compute predictions scaled by its speed ratio. */
static void speed_figures(pinas_measure_validation *v, double *pred, const double *meas)
{
    for (int k = 0; k < v->n_archs; k++) pred[k] = v->archs[k].predicted_ms + (v->archs[k].speed - 1) * v->archs[k].predicted_compute_ms;
    error_stats(v->n_archs, pred, meas, &v->speed);
    for (int i = 0; i < v->n_ops; i++) {
        double e = 0;
        int n = 0;
        for (int k = 0; k < v->n_archs; k++)
            for (int j = 0; j < v->archs[k].n_nodes; j++) {
                const struct pinas_measure_node_fig *nf = &v->archs[k].nodes[j];
                double pm = nf->predicted_ms[0] > nf->predicted_ms[1] ? nf->predicted_ms[0] : nf->predicted_ms[1];
                double mm = nf->measured_ms[0] > nf->measured_ms[1] ? nf->measured_ms[0] : nf->measured_ms[1];
                if (strcmp(pinas_cpu_prim_name(nf->prim), v->by_op[i].op) != 0 || !(mm > 0)) continue;
                e += fabs(pm * v->archs[k].speed - mm) / mm;
                n++;
            }
        v->by_op[i].speed_mape_pct = n ? 100 * e / n : NAN;
    }
}

/* The summary figures once every architecture is judged. */
static pinas_status summarize(pinas_ctx *ctx, const op_acc *acc, const double *pst, pinas_measure_validation *v)
{
    int K = v->n_archs;
    double *pred = malloc((size_t)K * sizeof *pred), *meas = malloc((size_t)K * sizeof *meas), *wall = malloc((size_t)K * sizeof *wall);
    v->by_op = calloc(PINAS_CPU_N_PRIM, sizeof *v->by_op);
    if (!pred || !meas || !wall || !v->by_op) {
        free(pred), free(meas), free(wall);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    for (int k = 0; k < K; k++) {
        pred[k] = v->archs[k].predicted_ms;
        meas[k] = v->archs[k].measured_ms;
        wall[k] = v->archs[k].wall_ms;
    }
    error_stats(K, pred, meas, &v->errors);
    error_stats(K, pred, wall, &v->wall);
    if (v->calibration) error_stats(K, pst, meas, &v->stored);
    for (int c = 0; c < PINAS_CPU_N_PRIM; c++) {
        if (!acc[c].n) continue;
        pinas_measure_op *op = &v->by_op[v->n_ops++];
        snprintf(op->op, sizeof op->op, "%s", pinas_cpu_prim_name(c));
        op->nodes = acc[c].n;
        op->shape_nodes = acc[c].shaped;
        op->mape_pct = 100 * acc[c].err / acc[c].n;
        for (int q = 0; q < 2; q++) op->party_mape_pct[q] = acc[c].n_p[q] ? 100 * acc[c].err_p[q] / acc[c].n_p[q] : NAN;
        op->predicted_ms = acc[c].pred_ms;
        op->measured_ms = acc[c].meas_ms;
        op->speed_mape_pct = NAN;
    }
    if (isfinite(v->speed_ratio)) speed_figures(v, pred, meas);
    free(pred), free(meas), free(wall);
    return PINAS_OK;
}

static pinas_status check_opts(pinas_ctx *ctx, const pinas_measure_validate_opts *o)
{
    if (o->archs < 2 || o->archs > 100000) return pinas_error(ctx, PINAS_EINVAL, "validate: archs must be in [2, 100000], got %d", o->archs);
    if (o->runs < 1 || o->runs > 100) return pinas_error(ctx, PINAS_EINVAL, "validate: runs must be in [1, 100], got %d", o->runs);
    return pinas_mpc_params_check(ctx, &o->params);
}

static void describe(pinas_measure_validation *v, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                     const pinas_measure_validate_opts *o, const pinas_mpc_params *p)
{
    snprintf(v->space, sizeof v->space, "%s", pinas_net_name(space));
    const pinas_cost_hw *judged = v->calibration ? v->calibration->profile : hw;
    snprintf(v->hw, sizeof v->hw, "%s%s", pinas_cost_hw_name(judged), v->calibration ? " (fitted during this run)" : "");
    snprintf(v->stored_hw, sizeof v->stored_hw, "%s", pinas_cost_hw_name(hw));
    snprintf(v->net, sizeof v->net, "%s", pinas_cost_link_name(link));
    const char *cm = pinas_cost_hw_cpu_model(judged), *fd = pinas_cost_hw_fitted(judged);
    snprintf(v->hw_cpu_model, sizeof v->hw_cpu_model, "%s", cm ? cm : "");
    snprintf(v->hw_fitted, sizeof v->hw_fitted, "%s", fd ? fd : "");
    pinas_machine_cpu_model(v->cpu_model, sizeof v->cpu_model);
    v->batch = p->batch;
    v->runs = o->runs;
    v->k = o->archs;
    v->calibrated = v->calibration != NULL;
}

pinas_status pinas_measure_validate(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                    const pinas_measure_validate_opts *o, pinas_measure_validation **out)
{
    *out = NULL;
    pinas_status s = check_opts(ctx, o);
    if (s) return s;
    pinas_mpc_params p = o->params;
    p.batch = p.batch > 0 ? p.batch : 1;
    p.threads = 1;
    double t0 = pinas_now();
    pinas_cost_hw *fit_hw = NULL; /* with fit_only: hw without its measured shapes */
    if (o->fit_only && (s = pinas_cost_hw_cpu_fit_only(ctx, hw, &fit_hw))) return pinas_error_prefix(ctx, s, "validate: --fit-only");
    if (fit_hw) hw = fit_hw;
    pinas_measure_validation *v = calloc(1, sizeof *v);
    op_acc acc[PINAS_CPU_N_PRIM];
    memset(acc, 0, sizeof acc);
    double *pst = calloc((size_t)o->archs, sizeof *pst);
    if (v) v->archs = calloc((size_t)o->archs, sizeof *v->archs);
    if (!v || !v->archs || !pst) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && o->calib) s = pinas_measure_calibrate(ctx, o->calib, &v->calibration);
    pinas_cpu_params cp;
    if (!s) {
        v->probe_ref = !pinas_cost_hw_cpu_params(ctx, v->calibration ? v->calibration->profile : hw, &cp) ? cp.probe_s : 0;
        pinas_error_clear(ctx);
    }
    if (!s) s = pinas_measure_warmup(ctx, &p, NULL);
    pinas_progress *pg = s ? NULL : pinas_progress_create(ctx, stderr, "validate", o->archs);
    for (int k = 0; k < o->archs && !s; k++) {
        s = validate_arch(ctx, space, hw, link, o, &p, k, v, acc, pst);
        v->n_archs = k + 1;
        if (pg) pinas_progress_update(pg, k + 1, NULL);
    }
    pinas_progress_finish(pg);
    if (!s) describe(v, space, hw, link, o, &p);
    v->speed_ratio = NAN;
    if (!s && v->probe_ref > 0) {
        double *sp = malloc((size_t)v->n_archs * sizeof *sp);
        for (int k = 0; sp && k < v->n_archs; k++) sp[k] = v->archs[k].speed;
        if (sp) v->speed_ratio = measure_median(sp, v->n_archs);
        free(sp);
    }
    if (!s) s = summarize(ctx, acc, pst, v);
    v->fit_only = fit_hw != NULL;
    pinas_cost_hw_free(fit_hw);
    free(pst);
    if (s) {
        pinas_measure_validation_free(v);
        return s;
    }
    v->seconds = pinas_now() - t0;
    *out = v;
    return PINAS_OK;
}

void pinas_measure_validation_free(pinas_measure_validation *v)
{
    if (!v) return;
    for (int k = 0; k < v->n_archs; k++) {
        free(v->archs[k].choices);
        free(v->archs[k].nodes);
    }
    free(v->archs);
    free(v->by_op);
    pinas_measure_calib_result_free(v->calibration);
    free(v);
}

static cJSON *errors_json(const pinas_measure_errors *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mape_pct", e->mape_pct);
    cJSON_AddNumberToObject(o, "max_pct", e->max_error_pct);
    cJSON_AddNumberToObject(o, "tau", e->kendall_tau);
    return o;
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
    cJSON_AddNumberToObject(o, "wall_ms", a->wall_ms);
    cJSON_AddNumberToObject(o, "wall_error_pct", a->wall_error_pct);
    if (!isnan(a->predicted_stored_ms)) cJSON_AddNumberToObject(o, "predicted_stored_ms", a->predicted_stored_ms);
    if (isfinite(a->speed)) cJSON_AddNumberToObject(o, "speed", a->speed);
    cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
    for (int i = 0; i < a->n_nodes; i++) {
        const struct pinas_measure_node_fig *nf = &a->nodes[i];
        cJSON *r = cJSON_CreateArray();
        cJSON_AddItemToArray(r, cJSON_CreateString(nf->id));
        cJSON_AddItemToArray(r, cJSON_CreateString(pinas_cpu_prim_name(nf->prim)));
        for (int q = 0; q < 2; q++) cJSON_AddItemToArray(r, cJSON_CreateNumber(nf->predicted_ms[q]));
        for (int q = 0; q < 2; q++) cJSON_AddItemToArray(r, cJSON_CreateNumber(nf->measured_ms[q]));
        cJSON_AddItemToArray(nodes, r);
    }
    return o;
}

static cJSON *op_json(const pinas_measure_op *op)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "op", op->op);
    cJSON_AddNumberToObject(e, "nodes", op->nodes);
    cJSON_AddNumberToObject(e, "shape_nodes", op->shape_nodes);
    cJSON_AddNumberToObject(e, "mape_pct", op->mape_pct);
    for (int q = 0; q < 2; q++)
        if (isfinite(op->party_mape_pct[q])) cJSON_AddNumberToObject(e, q ? "client_mape_pct" : "server_mape_pct", op->party_mape_pct[q]);
    if (isfinite(op->speed_mape_pct)) cJSON_AddNumberToObject(e, "speed_mape_pct", op->speed_mape_pct);
    cJSON_AddNumberToObject(e, "predicted_ms", op->predicted_ms);
    cJSON_AddNumberToObject(e, "measured_ms", op->measured_ms);
    return e;
}

cJSON *pinas_measure_validation_to_json(const pinas_measure_validation *v)
{
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "space", v->space);
    cJSON_AddStringToObject(res, "hw", v->hw);
    cJSON_AddStringToObject(res, "net", v->net);
    cJSON_AddNumberToObject(res, "batch", v->batch);
    cJSON_AddNumberToObject(res, "runs", v->runs);
    cJSON_AddNumberToObject(res, "archs", v->k);
    cJSON_AddBoolToObject(res, "calibrated", v->calibrated);
    cJSON_AddBoolToObject(res, "fit_only", v->fit_only);
    cJSON_AddNumberToObject(res, "shielded_archs", v->shielded_archs);
    cJSON *pf = cJSON_AddObjectToObject(res, "profile");
    cJSON_AddStringToObject(pf, "cpu_model", v->hw_cpu_model);
    cJSON_AddStringToObject(pf, "date", v->hw_fitted);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(res, "machine"), "cpu_model", v->cpu_model);
    cJSON_AddItemToObject(res, "whole", errors_json(&v->errors));
    cJSON_AddItemToObject(res, "wall", errors_json(&v->wall));
    if (isfinite(v->speed_ratio)) {
        cJSON_AddNumberToObject(res, "speed_ratio", v->speed_ratio);
        cJSON_AddItemToObject(res, "speed", errors_json(&v->speed));
    }
    if (v->calibration) {
        cJSON *st = errors_json(&v->stored);
        cJSON_AddStringToObject(st, "hw", v->stored_hw);
        cJSON_AddItemToObject(res, "stored", st);
        cJSON_AddItemToObject(res, "calibration", pinas_measure_calib_result_to_json(v->calibration));
    }
    cJSON *ops = cJSON_AddArrayToObject(res, "per_op");
    for (int i = 0; i < v->n_ops; i++) cJSON_AddItemToArray(ops, op_json(&v->by_op[i]));
    cJSON *archs = cJSON_AddArrayToObject(res, "arch_list");
    for (int k = 0; k < v->n_archs; k++) cJSON_AddItemToArray(archs, arch_json(&v->archs[k]));
    cJSON_AddNumberToObject(res, "seconds", v->seconds);
    return res;
}
