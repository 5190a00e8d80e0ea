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
    o->runs = 3;
    o->passes = 2;
    o->max_passes = 6;
    o->agree_pct = 3;
    o->seed = 1;
    pinas_mpc_params_default(&o->params);
    pinas_measure_host_opts_default(&o->host);
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

/* An architecture's measured compute (one pass's, or the passes' merged): per predicted node the
 * busier party's, summed. */
static double pass_compute(const pinas_cost_prediction *pr, const pinas_measure_nodes *mn)
{
    double t = 0;
    for (int r = 0; r < pr->n_rows; r++) {
        int i = pr->rows[r].node;
        if (i >= 0 && i < mn->n_nodes) t += dmax(mn->cpu_s[i][0], mn->cpu_s[i][1]);
    }
    return t;
}

/* Judges one architecture: robust and wall figures, per-node errors into acc. pr: the judged
 * profile's prediction (cp: its cpu parameters, or NULL); pr_st: the stored one's (or NULL). */
static void judge_arch(pinas_ctx *ctx, const pinas_net *space, const pinas_net *arch, const pinas_cost_prediction *pr,
                       const pinas_cost_prediction *pr_st, const pinas_measure_nodes *mn, op_acc *acc, pinas_measure_arch *a,
                       double *pred_stored_ms, const pinas_cpu_params *cp, const pinas_mpc_params *p)
{
    double comp_pred = 0, comp_meas = pass_compute(pr, mn);
    for (int r = 0; r < pr->n_rows; r++) {
        const pinas_cost_row *row = &pr->rows[r];
        int i = row->node, prim = i >= 0 ? pinas_cpu_prim_of(arch, i, NULL) : -1;
        if (i < 0 || i >= mn->n_nodes) continue;
        double ms = dmax(mn->cpu_s[i][0], mn->cpu_s[i][1]);
        comp_pred += row->compute_s;
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

/* lo/hi: each architecture's span over the passes (NULL: no resolved tau). */
static void error_stats(int K, const double *pred, const double *meas, const double *lo, const double *hi, pinas_measure_errors *e)
{
    e->pairs = K * (K - 1) / 2;
    e->tau_resolved = lo && hi ? pinas_measure_kendall_tau_resolved(K, pred, meas, lo, hi, &e->resolved_pairs) : NAN;
    if (!lo || !hi) e->resolved_pairs = -1;
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

/* One architecture across the passes: sampled and predicted once, measured once per pass. */
typedef struct {
    pinas_net *arch;
    pinas_cost_prediction *pr, *pr_st; /* the judged profile's prediction; the stored one's (or NULL) */
    pinas_measure_nodes mn;            /* per node and party the least over every clean pass's runs */
    pinas_measure_nodes mn_bad;        /* the same over the passes the host gate called disturbed */
    pinas_measure_nodes pend;          /* this pass's, until the gate after it has spoken */
    double probe_sum;                  /* the speed probes around its runs, summed over the passes */
    double comp[PINAS_MEASURE_MAX_PASSES]; /* each pass's compute (per node the busier party's, summed
                                              over the predicted nodes) */
    int bad[PINAS_MEASURE_MAX_PASSES]; /* 1: that pass ran with the host disturbed */
    int n_pass, n_bad;                 /* passes, and of them kept apart as disturbed */
    int n_seen;                        /* passes that ran with the host disturbed (kept apart or not) */
    int probes, shielded;              /* shielded: every pass ran under the shield */
} arch_state;

static void arch_state_free(arch_state *st)
{
    pinas_measure_nodes_free(&st->mn);
    pinas_measure_nodes_free(&st->mn_bad);
    pinas_measure_nodes_free(&st->pend);
    pinas_cost_prediction_free(st->pr);
    pinas_cost_prediction_free(st->pr_st);
    pinas_net_free(st->arch);
    memset(st, 0, sizeof *st);
}

/* Folds one pass's measurement into the architecture's: per node and party the least, the least
 * median wall time. Takes mn over on the first pass. */
static void merge_pass(pinas_measure_nodes *acc, pinas_measure_nodes *mn)
{
    if (!acc->cpu_s) {
        *acc = *mn;
        memset(mn, 0, sizeof *mn);
        return;
    }
    for (int i = 0; i < acc->n_nodes && i < mn->n_nodes; i++)
        for (int q = 0; q < 2; q++)
            if (mn->cpu_s[i][q] > 0 && (!(acc->cpu_s[i][q] > 0) || mn->cpu_s[i][q] < acc->cpu_s[i][q])) acc->cpu_s[i][q] = mn->cpu_s[i][q];
    acc->wall_s = mn->wall_s < acc->wall_s ? mn->wall_s : acc->wall_s;
    acc->wall_min_s = mn->wall_min_s < acc->wall_min_s ? mn->wall_min_s : acc->wall_min_s;
    acc->shielded = acc->shielded && mn->shielded;
    pinas_measure_nodes_free(mn);
}

/* The two least of the architecture's clean pass figures (both the one when it has one), or of all
 * of them when none is clean. */
static void least_two(const arch_state *st, double two[2])
{
    two[0] = two[1] = INFINITY;
    int any = st->n_bad < st->n_pass, n = 0;
    for (int i = 0; i < st->n_pass; i++) {
        if (any && st->bad[i]) continue;
        n++;
        if (st->comp[i] < two[0]) two[1] = two[0], two[0] = st->comp[i];
        else if (st->comp[i] < two[1]) two[1] = st->comp[i];
    }
    if (n == 1) two[1] = two[0];
}

/* 1 when the architecture's two least clean pass figures agree within agree_pct: two placements and
 * moments, drawn independently, both at the bottom. */
static int agrees(const arch_state *st, const pinas_measure_validate_opts *o)
{
    if (st->n_pass - st->n_bad < 2) return 0;
    double two[2];
    least_two(st, two);
    return two[1] <= two[0] * (1 + o->agree_pct / 100);
}

/* Architecture k sampled and predicted (judged and stored profiles), before any pass. */
static pinas_status prepare_arch(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                 const pinas_measure_validate_opts *o, const pinas_mpc_params *p, int k, const pinas_measure_validation *v,
                                 arch_state *st)
{
    const pinas_cost_hw *judged = v->calibration ? v->calibration->profile : hw;
    pinas_status s = pinas_net_random_arch(ctx, space, o->seed * 1000003 + (uint64_t)k, &st->arch);
    if (!s) s = pinas_cost_predict(ctx, st->arch, judged, link, p, &st->pr);
    if (!s && v->calibration) s = pinas_cost_predict(ctx, st->arch, hw, link, p, &st->pr_st);
    st->shielded = 1;
    if (s) s = pinas_error_prefix(ctx, s, "validate: architecture %d", k);
    return s;
}

/* One pass over the architectures ks[0..n) in a child process of its own (measure_in_child): per
 * architecture a fresh model (the same weights) run o->runs times between two probes; each one's
 * figures come back as a message: pass_head, then n_nodes x 2 doubles. */
typedef struct {
    int64_t k, n_nodes, shielded;
    double wall_s, wall_min_s, probe0, probe1;
} pass_head;

typedef struct {
    const pinas_measure_validate_opts *o;
    const pinas_mpc_params *p;
    arch_state *st;
    int *ks;
    int n, done;
    pinas_progress *pg;
    int64_t step0;
} pass_job;

static pinas_status pass_child(pinas_ctx *ctx, int fd, void *user)
{
    pass_job *j = user;
    pinas_status s = PINAS_OK;
    for (int i = 0; i < j->n && !s; i++) {
        int k = j->ks[i];
        pinas_model *m = NULL;
        pinas_measure_nodes mn = {0};
        pass_head h = {.k = k};
        s = pinas_model_random(ctx, j->st[k].arch, j->o->seed * 7919 + (uint64_t)k, &m);
        if (!s) s = pinas_measure_probe(ctx, j->p, &h.probe0);
        if (!s) s = pinas_measure_node_cpu(ctx, m, j->p->batch, j->p, j->o->runs, (j->o->seed * 7919 + (uint64_t)k) ^ 0xabcdef, &mn);
        if (!s) s = pinas_measure_probe(ctx, j->p, &h.probe1);
        if (!s) {
            h.n_nodes = mn.n_nodes, h.shielded = mn.shielded, h.wall_s = mn.wall_s, h.wall_min_s = mn.wall_min_s;
            if (measure_child_send(fd, &h, sizeof h, mn.cpu_s, (size_t)mn.n_nodes * sizeof *mn.cpu_s))
                s = pinas_error(ctx, PINAS_EIO, "validate: sending the figures back");
        }
        if (s) s = pinas_error_prefix(ctx, s, "validate: architecture %d", k);
        pinas_measure_nodes_free(&mn);
        pinas_model_free(m);
    }
    return s;
}

/* Folds one architecture's message into its state. */
static pinas_status pass_take(pinas_ctx *ctx, const void *buf, size_t len, void *user)
{
    pass_job *j = user;
    pass_head h;
    if (len < sizeof h) return pinas_error(ctx, PINAS_EIO, "validate: a malformed report from the measuring child");
    memcpy(&h, buf, sizeof h);
    if (h.k < 0 || h.k >= j->o->archs || h.n_nodes < 0 || len != sizeof h + (size_t)h.n_nodes * 2 * sizeof(double))
        return pinas_error(ctx, PINAS_EIO, "validate: a malformed report from the measuring child");
    arch_state *st = &j->st[h.k];
    pinas_measure_nodes mn = {.n_nodes = (int)h.n_nodes, .wall_s = h.wall_s, .wall_min_s = h.wall_min_s, .shielded = (int)h.shielded};
    mn.cpu_s = malloc((size_t)(h.n_nodes ? h.n_nodes : 1) * sizeof *mn.cpu_s);
    if (!mn.cpu_s) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    memcpy(mn.cpu_s, (const char *)buf + sizeof h, (size_t)h.n_nodes * sizeof *mn.cpu_s);
    st->probe_sum += h.probe0 + h.probe1;
    st->probes += 2;
    pinas_measure_nodes_free(&st->pend);
    st->pend = mn;
    if (j->pg) pinas_progress_update(j->pg, j->step0 + ++j->done, NULL);
    return PINAS_OK;
}

/* The pass's figures of the architectures ks[0..n), each into its clean or its disturbed
 * accumulator. */
static void commit_pass(arch_state *st, const int *ks, int n, int seen, int disturbed)
{
    for (int i = 0; i < n; i++) {
        arch_state *a = &st[ks[i]];
        if (!a->pend.cpu_s) continue;
        a->n_seen += seen;
        if (a->n_pass < PINAS_MEASURE_MAX_PASSES) {
            a->bad[a->n_pass] = disturbed;
            a->comp[a->n_pass++] = pass_compute(a->pr, &a->pend);
        }
        a->n_bad += disturbed;
        merge_pass(disturbed ? &a->mn_bad : &a->mn, &a->pend);
    }
}

/* One pass over j's architectures in a child process, between two host-memory checks (with the
 * gate, the first may wait for the host, and a pass with either check disturbed is kept apart). */
static pinas_status one_pass(pinas_ctx *ctx, const pinas_measure_host_opts *ho, pass_job *j, pinas_measure_validation *v)
{
    int bad0 = 0, bad1 = 0, gate = j->o->host_gate;
    pinas_status s = pinas_measure_host_gate(ctx, ho, gate, &v->host, &bad0);
    if (!s) s = measure_in_child(ctx, pass_child, pass_take, j);
    if (!s) s = pinas_measure_host_gate(ctx, ho, 0, &v->host, &bad1);
    if (!s) commit_pass(j->st, j->ks, j->n, bad0 || bad1, gate && (bad0 || bad1));
    v->disturbed_passes += !s && (bad0 || bad1);
    return s;
}

/* 1 when the architecture needs no more passes: its clean passes agree, or it has had max_passes. */
static int settled(const arch_state *st, const pinas_measure_validate_opts *o) { return st->n_pass >= o->max_passes || agrees(st, o); }

/* Pass after pass over every architecture (each one's passes lie a whole pass apart, each pass in a
 * process of its own), o->passes of them; then more passes over the architectures not yet settled
 * (a disturbed pass does not settle), until each is or has had o->max_passes. */
static pinas_status measure_passes(pinas_ctx *ctx, const pinas_measure_validate_opts *o, const pinas_measure_host_opts *ho,
                                   const pinas_mpc_params *p, arch_state *st, pinas_measure_validation *v)
{
    int *ks = malloc((size_t)o->archs * sizeof *ks);
    if (!ks) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    pass_job j = {.o = o, .p = p, .st = st, .ks = ks};
    j.pg = pinas_progress_create(ctx, stderr, "validate", (int64_t)o->archs * o->passes);
    for (int pass = 0; pass < o->passes && !s; pass++) {
        for (int k = 0; k < o->archs; k++) ks[k] = k;
        j.n = o->archs, j.done = 0, j.step0 = (int64_t)pass * o->archs;
        s = one_pass(ctx, ho, &j, v);
        if (s) s = pinas_error_prefix(ctx, s, "validate: pass %d", pass + 1);
    }
    pinas_progress_finish(j.pg);
    for (int pass = o->passes; pass < o->max_passes && !s; pass++) {
        j.n = 0;
        for (int k = 0; k < o->archs; k++)
            if (!settled(&st[k], o)) ks[j.n++] = k;
        if (!j.n) break;
        char label[48];
        snprintf(label, sizeof label, "validate (pass %d, unsettled)", pass + 1);
        j.pg = pinas_progress_create(ctx, stderr, label, j.n);
        j.done = 0, j.step0 = 0;
        s = one_pass(ctx, ho, &j, v);
        if (s) s = pinas_error_prefix(ctx, s, "validate: pass %d", pass + 1);
        pinas_progress_finish(j.pg);
    }
    free(ks);
    return s;
}

/* Architecture k once every pass is in: judged into v->archs[k] and acc. */
static pinas_status judge_arch_state(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, int k, arch_state *st,
                                     pinas_measure_validation *v, op_acc *acc, double *pst, const pinas_mpc_params *p)
{
    const pinas_cost_hw *judged = v->calibration ? v->calibration->profile : hw;
    pinas_cpu_params cp;
    int is_cpu = !pinas_cost_hw_cpu_params(ctx, judged, &cp);
    pinas_error_clear(ctx);
    pinas_measure_arch *a = &v->archs[k];
    a->choices = calloc((size_t)pinas_net_n_nodes(space), sizeof *a->choices);
    a->nodes = calloc((size_t)pinas_net_n_nodes(st->arch), sizeof *a->nodes);
    if (!a->choices || !a->nodes) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    v->shielded_archs += st->shielded;
    a->disturbed_passes = st->n_seen;
    a->disturbed = !st->mn.cpu_s; /* no clean pass: its disturbed passes' figures, flagged */
    v->disturbed_archs += a->disturbed;
    const pinas_measure_nodes *mn = a->disturbed ? &st->mn_bad : &st->mn;
    judge_arch(ctx, space, st->arch, st->pr, st->pr_st, mn, acc, a, &pst[k], is_cpu ? &cp : NULL, p);
    a->speed = v->probe_ref > 0 && st->probes ? st->probe_sum / st->probes / v->probe_ref : NAN;
    /* the two least passes' robust figures: the same modelled communication, each pass's compute */
    double two[2], comm_ms = a->predicted_ms - a->predicted_compute_ms;
    least_two(st, two);
    a->measured_lo_ms = comm_ms + two[0] * 1e3;
    a->measured_hi_ms = comm_ms + two[1] * 1e3;
    a->passes = st->n_pass;
    return PINAS_OK;
}

/* The figures again with each architecture's compute predictions scaled by its speed ratio. */
static void speed_figures(pinas_measure_validation *v, double *pred, const double *meas)
{
    for (int k = 0; k < v->n_archs; k++) pred[k] = v->archs[k].predicted_ms + (v->archs[k].speed - 1) * v->archs[k].predicted_compute_ms;
    error_stats(v->n_archs, pred, meas, NULL, NULL, &v->speed);
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
    double *lo = malloc((size_t)K * sizeof *lo), *hi = malloc((size_t)K * sizeof *hi);
    v->by_op = calloc(PINAS_CPU_N_PRIM, sizeof *v->by_op);
    if (!pred || !meas || !wall || !lo || !hi || !v->by_op) {
        free(pred), free(meas), free(wall), free(lo), free(hi);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    for (int k = 0; k < K; k++) {
        pred[k] = v->archs[k].predicted_ms;
        meas[k] = v->archs[k].measured_ms;
        wall[k] = v->archs[k].wall_ms;
        lo[k] = v->archs[k].measured_lo_ms;
        hi[k] = v->archs[k].measured_hi_ms;
    }
    error_stats(K, pred, meas, lo, hi, &v->errors);
    error_stats(K, pred, wall, NULL, NULL, &v->wall);
    if (v->calibration) error_stats(K, pst, meas, lo, hi, &v->stored);
    free(lo), free(hi);
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
    if (o->passes < 1 || o->passes > PINAS_MEASURE_MAX_PASSES)
        return pinas_error(ctx, PINAS_EINVAL, "validate: passes must be in [1, %d], got %d", PINAS_MEASURE_MAX_PASSES, o->passes);
    if (o->max_passes < o->passes || o->max_passes > PINAS_MEASURE_MAX_PASSES)
        return pinas_error(ctx, PINAS_EINVAL, "validate: max passes must be in [passes %d, %d], got %d", o->passes, PINAS_MEASURE_MAX_PASSES,
                           o->max_passes);
    if (!(o->agree_pct > 0 && o->agree_pct <= 100))
        return pinas_error(ctx, PINAS_EINVAL, "validate: agreement must be in (0, 100] %%, got %g", o->agree_pct);
    pinas_status s = measure_host_opts_check(ctx, &o->host, "validate");
    return s ? s : pinas_mpc_params_check(ctx, &o->params);
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
    v->passes = o->passes;
    v->max_passes = o->max_passes;
    v->agree_pct = o->agree_pct;
    v->host_tol_pct = o->host.tol_pct;
    v->host_gate = o->host_gate;
    v->host_max_wait_s = o->host_gate ? o->host.max_wait_s : 0;
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
        int cpu = !pinas_cost_hw_cpu_params(ctx, v->calibration ? v->calibration->profile : hw, &cp);
        v->probe_ref = cpu ? cp.probe_s : 0;
        v->host_ref_ns = cpu ? cp.host_memory_ns : 0;
        pinas_error_clear(ctx);
    }
    arch_state *st = s ? NULL : calloc((size_t)o->archs, sizeof *st);
    if (!s && !st) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_measure_warmup(ctx, &p, NULL);
    for (int k = 0; k < o->archs && !s; k++) s = prepare_arch(ctx, space, hw, link, o, &p, k, v, &st[k]);
    pinas_measure_host_opts ho = o->host;
    if (!s && !(ho.ref_ns > 0)) ho.ref_ns = v->host_ref_ns; /* the judged profile's */
    if (!s) s = measure_passes(ctx, o, &ho, &p, st, v);
    for (int k = 0; k < o->archs && !s && o->max_passes >= 2; k++) v->unsettled_archs += !agrees(&st[k], o);
    for (int k = 0; k < o->archs && !s; k++) {
        s = judge_arch_state(ctx, space, hw, k, &st[k], v, acc, pst, &p);
        v->n_archs = k + 1;
    }
    for (int k = 0; st && k < o->archs; k++) arch_state_free(&st[k]);
    free(st);
    if (!s) describe(v, space, hw, link, o, &p);
    if (v) v->speed_ratio = NAN;
    if (!s && v->probe_ref > 0) {
        double *sp = malloc((size_t)v->n_archs * sizeof *sp);
        for (int k = 0; sp && k < v->n_archs; k++) sp[k] = v->archs[k].speed;
        if (sp) v->speed_ratio = measure_median(sp, v->n_archs);
        free(sp);
    }
    if (!s) s = summarize(ctx, acc, pst, v);
    if (v) v->fit_only = fit_hw != NULL;
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
    if (e->resolved_pairs >= 0) {
        if (isfinite(e->tau_resolved)) cJSON_AddNumberToObject(o, "tau_resolved", e->tau_resolved);
        cJSON_AddNumberToObject(o, "resolved_pairs", e->resolved_pairs);
        cJSON_AddNumberToObject(o, "pairs", e->pairs);
    }
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
    double span[2] = {a->measured_lo_ms, a->measured_hi_ms}; /* the two least passes' */
    cJSON_AddItemToObject(o, "measured_span_ms", cJSON_CreateDoubleArray(span, 2));
    cJSON_AddNumberToObject(o, "passes", a->passes);
    cJSON_AddNumberToObject(o, "disturbed_passes", a->disturbed_passes);
    cJSON_AddBoolToObject(o, "disturbed", a->disturbed);
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
    cJSON_AddNumberToObject(res, "passes", v->passes);
    cJSON_AddNumberToObject(res, "max_passes", v->max_passes);
    cJSON_AddNumberToObject(res, "agree_pct", v->agree_pct);
    cJSON_AddNumberToObject(res, "unsettled_archs", v->unsettled_archs);
    cJSON_AddNumberToObject(res, "archs", v->k);
    cJSON_AddBoolToObject(res, "calibrated", v->calibrated);
    cJSON_AddBoolToObject(res, "fit_only", v->fit_only);
    cJSON_AddNumberToObject(res, "shielded_archs", v->shielded_archs);
    cJSON *host = measure_host_log_json(&v->host, v->disturbed_passes);
    cJSON_AddNumberToObject(host, "ref_ns", v->host_ref_ns);
    cJSON_AddNumberToObject(host, "tol_pct", v->host_tol_pct);
    cJSON_AddBoolToObject(host, "gate", v->host_gate);
    cJSON_AddNumberToObject(host, "max_wait_s", v->host_max_wait_s);
    cJSON_AddNumberToObject(host, "disturbed_archs", v->disturbed_archs);
    cJSON_AddItemToObject(res, "host", host);
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
