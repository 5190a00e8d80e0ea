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
    o->reps = 15;
    o->seed = 1;
    pinas_mpc_params_default(&o->params);
}

/* One architecture under validation. */
typedef struct {
    pinas_net *arch;
    pinas_cost_prediction *pr;
    pinas_model *m;
    float *x, *logits;
    double *t;                 /* online seconds of each measured run */
    pinas_mpc_report **reps;   /* and its report */
} varch;

static void varch_free(varch *v, int reps)
{
    if (v->reps)
        for (int r = 0; r < reps; r++) pinas_mpc_report_free(v->reps[r]);
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
    v->t = calloc((size_t)o->reps, sizeof *v->t);
    v->reps = calloc((size_t)o->reps, sizeof *v->reps);
    if (!v->x || !v->logits || !v->t || !v->reps) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    uint64_t st = (o->seed * 7919 + (uint64_t)k) ^ 0xabcdef;
    for (size_t i = 0; i < nx; i++) v->x[i] = (float)((double)(splitmix(&st) >> 11) / 9007199254740992.0 * 2 - 1);
    return PINAS_OK;
}

static pinas_status varch_run(pinas_ctx *ctx, const pinas_cost_validate_opts *o, varch *v, int r)
{
    pinas_mpc_report *rep = NULL;
    int batch = o->params.batch > 0 ? o->params.batch : 1;
    pinas_status s = pinas_mpc_infer_local(ctx, v->m, v->x, batch, &o->params, v->logits, &rep);
    if (s) return s;
    if (r < 0) { /* warm-up: page faults, first-touch allocations */
        pinas_mpc_report_free(rep);
        return PINAS_OK;
    }
    v->reps[r] = rep;
    v->t[r] = rep->online_s;
    return PINAS_OK;
}

/* The fastest run by default (other processes on a shared machine only add time; the cpu profile is
 * calibrated the same way), or the median; its index. */
static int varch_pick(const varch *v, int reps, int median)
{
    double sorted[64];
    int n = reps < 64 ? reps : 64;
    memcpy(sorted, v->t, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    double want = median ? sorted[n / 2] : sorted[0];
    for (int r = 0; r < n; r++)
        if (v->t[r] == want) return r;
    return 0;
}

pinas_status pinas_cost_validate(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                 const pinas_cost_validate_opts *o, cJSON **result)
{
    *result = NULL;
    int K = o->archs;
    if (K < 2) return pinas_error(ctx, PINAS_EINVAL, "validate: need at least 2 architectures, got %d", K);
    if (o->reps < 1 || o->reps > 64) return pinas_error(ctx, PINAS_EINVAL, "validate: reps must be in [1, 64], got %d", o->reps);
    double *pred = calloc((size_t)K, sizeof *pred), *meas = calloc((size_t)K, sizeof *meas);
    cJSON *res = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(res, "archs");
    /* Per op kind: summed predicted and measured per-layer online time, to show where errors come from. */
    cJSON *by_op = cJSON_CreateObject();
    pinas_status s = pred && meas ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    varch *va = calloc((size_t)K, sizeof *va);
    if (!va && !s) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < K && !s; k++) {
        s = varch_init(ctx, space, hw, link, o, k, &va[k]);
        if (s) pinas_error_prefix(ctx, s, "validate: architecture %d", k);
    }
    /* Round-robin over the architectures, one run each per pass, so that a busy spell of the machine
     * spreads over all of them instead of falling on every run of a few. */
    pinas_progress *pg = pinas_progress_create(ctx, stderr, "validate", (int64_t)K * (o->reps + 1));
    int done = 0;
    for (int r = -1; r < o->reps && !s; r++)
        for (int k = 0; k < K && !s; k++) {
            s = varch_run(ctx, o, &va[k], r);
            if (s) {
                pinas_error_prefix(ctx, s, "validate: architecture %d", k);
                break;
            }
            char st[96];
            if (r >= 0) snprintf(st, sizeof st, "pass %d/%d: arch %d %.2f ms (pred %.2f)", r + 1, o->reps, k, va[k].t[r] * 1e3,
                                 va[k].pr->total.online_s * 1e3);
            else snprintf(st, sizeof st, "warm-up arch %d", k);
            pinas_progress_update(pg, ++done, st);
        }
    for (int k = 0; k < K && !s; k++) {
        varch *v = &va[k];
        const pinas_cost_prediction *pr = v->pr;
        const pinas_mpc_report *rep = v->reps[varch_pick(v, o->reps, o->median)];
        pred[k] = pr->total.online_s;
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
        cJSON *runs = cJSON_AddArrayToObject(a, "runs_ms");
        for (int r = 0; r < o->reps; r++) cJSON_AddItemToArray(runs, cJSON_CreateNumber(v->t[r] * 1e3));
        cJSON_AddItemToArray(archs, a);
        /* Match report layers to prediction rows by id ("output" is the session's reveal). */
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
    for (int k = 0; va && k < K; k++) varch_free(&va[k], o->reps);
    free(va);
    pinas_progress_finish(pg);
    if (!s) {
        double mape = 0, maxe = 0;
        for (int k = 0; k < K; k++) {
            double e = fabs(pred[k] - meas[k]) / meas[k];
            mape += e;
            if (e > maxe) maxe = e;
        }
        mape = 100 * mape / K;
        cJSON_AddStringToObject(res, "space", pinas_net_name(space));
        cJSON_AddStringToObject(res, "hw", pinas_cost_hw_name(hw));
        cJSON_AddStringToObject(res, "net", pinas_cost_link_name(link));
        cJSON_AddNumberToObject(res, "batch", o->params.batch);
        cJSON_AddNumberToObject(res, "reps", o->reps);
        cJSON_AddNumberToObject(res, "k", K);
        cJSON_AddNumberToObject(res, "mape_pct", mape);
        cJSON_AddNumberToObject(res, "max_error_pct", 100 * maxe);
        cJSON_AddNumberToObject(res, "kendall_tau", pinas_cost_kendall_tau(K, pred, meas));
        cJSON_AddItemToObject(res, "by_op", by_op);
        by_op = NULL;
        *result = res;
        res = NULL;
    }
    cJSON_Delete(by_op);
    cJSON_Delete(res);
    free(pred);
    free(meas);
    return s;
}
