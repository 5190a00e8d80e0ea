/* The supernet's training: weight warm-up, then first-order bi-level search of one sweep value
 * (weights by SGD on the train split, alphas by Adam on the val split), resumable at every epoch. */
#define _GNU_SOURCE
#include "search_internal.h"
#include "nas_latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static pinas_status torch_fail(pinas_ctx *ctx, const char *what) { return pinas_torch_error(ctx, what); }

pinas_status nas_alpha_state(pinas_ctx *ctx, const nas_run *r, pinas_tnet *t, double *entropy, pinas_net **arch, cJSON **probs_json)
{
    int n = pinas_tnet_n_alphas(t);
    float **probs = calloc((size_t)(n ? n : 1), sizeof *probs);
    int *nodes = calloc((size_t)(n ? n : 1), sizeof *nodes);
    pinas_status s = probs && nodes ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    double h = 0;
    if (probs_json) *probs_json = cJSON_CreateObject();
    for (int k = 0; k < n && !s; k++) {
        pinas_tnet_alpha(t, k, &nodes[k]);
        const pinas_node *nd = pinas_net_node(r->space, nodes[k]);
        probs[k] = calloc((size_t)nd->n_cands, sizeof **probs);
        if (!probs[k]) {
            s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            break;
        }
        if ((s = pinas_tnet_alpha_probs(ctx, t, k, probs[k]))) break;
        cJSON *pj = probs_json ? cJSON_AddObjectToObject(*probs_json, nd->id) : NULL;
        for (int j = 0; j < nd->n_cands; j++) {
            if (probs[k][j] > 0) h -= probs[k][j] * log(probs[k][j]);
            if (pj) {
                char nm[32];
                cJSON_AddNumberToObject(pj, pinas_cand_name(&nd->cands[j], nm, sizeof nm), probs[k][j]);
            }
        }
    }
    if (!s) *entropy = n ? h / n : 0;
    if (!s && arch) s = pinas_nas_derive(ctx, r->space, n, nodes, (const float *const *)probs, arch);
    for (int k = 0; probs && k < n; k++) free(probs[k]);
    free(probs);
    free(nodes);
    if (s && probs_json) {
        cJSON_Delete(*probs_json);
        *probs_json = NULL;
    }
    return s;
}

/* ------------------------------------------------------------ warm-up */

pinas_status nas_warmup(pinas_ctx *ctx, nas_run *r)
{
    char *wpath = pinas_path_join(r->ckpt_dir, "warmup-final.safetensors");
    pinas_status s = PINAS_OK;
    if (pinas_path_exists(wpath)) {
        s = pinas_safetensors_load(ctx, wpath, &r->warm);
        free(wpath);
        return s;
    }
    pinas_tnet *t = NULL;
    s = pinas_tnet_create(ctx, r->space, r->seed, &t);
    int epochs = r->cfg->search.warmup_epochs;
    if (!s && epochs > 0) {
        pinas_train_opts o;
        nas_train_opts(r, &o, "warmup");
        o.epochs = epochs;
        o.train_split = PINAS_SPLIT_TRAIN;
        o.eval_split = PINAS_SPLIT_VAL;
        /* Distillation belongs to fine-tuning; the warm-up trains the supernet alone. */
        o.teacher = NULL;
        pinas_info(ctx, "warm-up: %d epoch%s of weights on the train split", epochs, epochs == 1 ? "" : "s");
        s = pinas_train_tnet(ctx, t, r->data, &o, NULL);
    }
    if (!s) s = pinas_tnet_export(ctx, t, NULL, &r->warm);
    if (!s && pinas_dist_is_writer(r->dist)) s = pinas_safetensors_save(ctx, wpath, r->warm, NULL);
    pinas_tnet_free(t);
    free(wpath);
    return s;
}

/* ------------------------------------------------------------ one bi-level search */

typedef struct {
    double ce, val_ce, elat, acc;
    int steps;
    double comm_s;         /* data-parallel: this rank's seconds in collectives during the epoch */
} epoch_sums;

/* The state of one bi-level search: optimisers, loaders, the slots' nodes, where it resumes. */
typedef struct {
    int k;                 /* sweep index */
    double value;          /* lambda or target_ms */
    char phase[32];        /* "search-<k>" */
    char *ckpt;
    int epochs, gumbel, start, steps;
    int n_alpha;
    int *slot_nodes;
    pinas_sgd_opts so;
    pinas_optim *wopt, *aopt;
    pinas_loader *lt, *lv;
    pinas_dist_group *dist;  /* data-parallel group (borrowed; NULL = alone) */
} bilevel_state;

/* loss = CE + lambda*E/ref (additive) or CE*max(1, E/target)^beta (multiplicative; the literal
 * CE*(E/target)^beta when search.target_clamp is false). New tensor.
 * The multiplicative form is only applied above the target: CE*(E/T)^beta alone scales the whole
 * alpha gradient by T^-beta, which Adam's normalisation cancels, so every target would give the same
 * search. Clamped at 1 (MnasNet's soft constraint with no reward below the target), the target
 * decides where the latency pressure stops. */
static pinas_status arch_loss(pinas_ctx *ctx, const nas_run *r, double value, pt_tensor *ce, pt_tensor *elat, pt_tensor **loss)
{
    pt_tensor *a = NULL, *b = NULL;
    int rc;
    if (!r->multiplicative) {
        rc = pt_mul_scalar(elat, value / r->ref_ms, &a) || pt_add(ce, a, loss);
    } else {
        double beta = r->cfg->search.beta, e = 0;
        int clamp = r->cfg->search.target_clamp;
        rc = pt_item(elat, &e);
        if (!rc && (e > value || !clamp)) rc = pt_mul_scalar(elat, 1.0 / value, &a) || pt_pow_scalar(a, beta, &b) || pt_mul(ce, b, loss);
        else if (!rc) rc = pt_mul_scalar(ce, 1.0, loss);
    }
    pt_free(a);
    pt_free(b);
    return rc ? torch_fail(ctx, "search loss") : PINAS_OK;
}

static double tau_at(const nas_run *r, int epoch, int epochs)
{
    double t0 = r->cfg->search.tau_start, t1 = r->cfg->search.tau_end;
    if (epochs <= 1) return t1;
    return t0 * pow(t1 / t0, (double)epoch / (epochs - 1));
}

/* Data-parallel: the gradients of params become those of the global batch (of which y is this
 * rank's shard). No-op alone. */
static pinas_status average_grads(pinas_ctx *ctx, const bilevel_state *b, pt_tensor *const *params, int n, const pt_tensor *y,
                                  const pinas_loader *l)
{
    int64_t local = 0;
    if (!b->dist) return PINAS_OK;
    if (pt_numel(y, &local)) return torch_fail(ctx, "search: batch size");
    return pinas_dist_average_grads(ctx, b->dist, params, n, local, pinas_loader_last_global(l));
}

static pinas_status search_step(pinas_ctx *ctx, const nas_run *r, pinas_tnet *t, const bilevel_state *b, pt_tensor *xt, pt_tensor *yt,
                                pt_tensor *xv, pt_tensor *yv, epoch_sums *sums)
{
    pt_tensor *logits = NULL, *ce = NULL, *elat = NULL, *loss = NULL;
    pinas_optim *wopt = b->wopt, *aopt = b->aopt;
    const double value = b->value;
    const int n_alpha = b->n_alpha;
    pt_tensor *const *alphas = pinas_tnet_alphas(t);
    const int *slot_nodes = b->slot_nodes;
    double v;
    int64_t correct = 0;
    pinas_status s = PINAS_OK;
    /* Architecture step on a val batch (first order: the weights are taken as they are). */
    if (!(s = pinas_optim_zero_grad(ctx, aopt)) && !(s = pinas_optim_zero_grad(ctx, wopt)) &&
        !(s = pinas_tnet_forward(ctx, t, xv, 1, &logits)) && !(s = pinas_loss_ce(ctx, logits, yv, 0.0, &ce)) &&
        !(s = pinas_nas_expected_latency(ctx, pinas_cost_lut_get_arrays(r->lut), n_alpha, alphas, slot_nodes, 0, &elat)) &&
        !(s = arch_loss(ctx, r, value, ce, elat, &loss))) {
        if (pt_backward(loss)) s = torch_fail(ctx, "search: alpha backward");
        if (!s) s = average_grads(ctx, b, alphas, n_alpha, yv, b->lv);
        if (!s) s = pinas_optim_step(ctx, aopt);
        if (!s && !pt_item(ce, &v)) sums->val_ce += v;
        if (!s && !pt_item(elat, &v)) sums->elat += v;
    }
    pt_free(logits);
    pt_free(ce);
    pt_free(elat);
    pt_free(loss);
    logits = ce = NULL;
    if (s) return s;
    /* Weight step on a train batch. */
    double ls = r->cfg->train.label_smoothing;
    if (!(s = pinas_optim_zero_grad(ctx, wopt)) && !(s = pinas_optim_zero_grad(ctx, aopt)) &&
        !(s = pinas_tnet_forward(ctx, t, xt, 1, &logits)) && !(s = pinas_loss_ce(ctx, logits, yt, ls, &ce))) {
        if (pt_backward(ce)) s = torch_fail(ctx, "search: weight backward");
        if (!s) s = average_grads(ctx, b, pinas_tnet_weights(t), pinas_tnet_n_weights(t), yt, b->lt);
        if (!s) s = pinas_optim_step(ctx, wopt);
        if (!s && !pt_item(ce, &v)) sums->ce += v;
        if (!s) s = pinas_count_correct(ctx, logits, yt, &correct);
        int64_t shape[4];
        int nd = 0;
        if (!s && !pt_shape(yt, &nd, shape, 4) && nd >= 1 && shape[0] > 0) sums->acc += (double)correct / (double)shape[0];
    }
    pt_free(logits);
    pt_free(ce);
    sums->steps++;
    return s;
}

/* Optimisers, loaders and the resume point of sweep value k. */
static pinas_status bilevel_open(pinas_ctx *ctx, const nas_run *r, int k, double value, pinas_tnet *t, bilevel_state *b)
{
    const pinas_config *cfg = r->cfg;
    b->k = k;
    b->value = value;
    b->epochs = cfg->search.epochs;
    b->gumbel = cfg->search.gumbel;
    snprintf(b->phase, sizeof b->phase, "search-%d", k);
    b->ckpt = pinas_strfmt("%s/%s.safetensors", r->ckpt_dir, b->phase);
    b->n_alpha = pinas_tnet_n_alphas(t);
    b->slot_nodes = calloc((size_t)(b->n_alpha ? b->n_alpha : 1), sizeof *b->slot_nodes);
    pinas_status s = b->slot_nodes && b->ckpt ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int q = 0; !s && q < b->n_alpha; q++) pinas_tnet_alpha(t, q, &b->slot_nodes[q]);
    b->so = (pinas_sgd_opts){.lr = cfg->train.lr,
                             .momentum = cfg->train.momentum,
                             .weight_decay = cfg->train.weight_decay,
                             .nesterov = cfg->train.nesterov && cfg->train.momentum > 0,
                             .grad_clip = cfg->train.grad_clip};
    /* DARTS' alpha optimiser: Adam with beta1 = 0.5. */
    pinas_adam_opts ao = {.lr = cfg->search.arch_lr, .beta1 = 0.5, .beta2 = 0.999, .weight_decay = cfg->search.arch_weight_decay};
    if (!s) s = pinas_optim_sgd(ctx, pinas_tnet_weights(t), pinas_tnet_n_weights(t), &b->so, &b->wopt);
    if (!s) s = pinas_optim_adam(ctx, pinas_tnet_alphas(t), b->n_alpha, &ao, &b->aopt);
    int bs = cfg->train.batch_size, rank = pinas_dist_rank(r->dist), world = pinas_dist_world(r->dist);
    b->dist = r->dist;
    pinas_loader_opts lo_t = {
        .batch_size = bs, .shuffle = 1, .augment = cfg->data.augment, .drop_last = 0, .seed = r->seed, .rank = rank, .world = world};
    pinas_loader_opts lo_v = {
        .batch_size = bs, .shuffle = 1, .augment = 0, .drop_last = 0, .seed = r->seed ^ 0x76616cULL, .rank = rank, .world = world};
    if (!s) s = pinas_loader_create(ctx, r->data, PINAS_SPLIT_TRAIN, &lo_t, &b->lt);
    if (!s) s = pinas_loader_create(ctx, r->data, PINAS_SPLIT_VAL, &lo_v, &b->lv);
    if (!s && pinas_path_exists(b->ckpt)) {
        pinas_optim *both[2] = {b->wopt, b->aopt};
        int ep = -1;
        s = pinas_checkpoint_load(ctx, b->ckpt, t, both, 2, &ep, NULL);
        b->start = ep + 1;
        if (!s) pinas_info(ctx, "%s: resuming after epoch %d of %d", b->phase, ep + 1, b->epochs);
    }
    if (!s) {
        int nt = pinas_loader_n_batches(b->lt), nv = pinas_loader_n_batches(b->lv);
        b->steps = nt < nv ? nt : nv;
        if (b->steps < 1) s = pinas_error(ctx, PINAS_EINVAL, "search: the train or val split has no batch (batch size %d)", bs);
    }
    return s;
}

static void bilevel_close(bilevel_state *b)
{
    pinas_loader_free(b->lt);
    pinas_loader_free(b->lv);
    pinas_optim_free(b->wopt);
    pinas_optim_free(b->aopt);
    free(b->slot_nodes);
    free(b->ckpt);
}

/* After epoch e: checkpoint first (a kill between the two leaves a missing log line, never a lost
 * epoch), then the log line and the caller's hook. */
static pinas_status bilevel_epoch_end(pinas_ctx *ctx, const nas_run *r, const bilevel_state *b, pinas_tnet *t, int e,
                                      const epoch_sums *sums, double tau, double h, double am, double t0)
{
    const int steps = b->steps;
    pinas_optim *both[2] = {b->wopt, b->aopt};
    if (!pinas_dist_is_writer(b->dist)) return PINAS_OK;
    pinas_status s = pinas_checkpoint_save(ctx, b->ckpt, t, both, 2, e, NULL);
    if (s) return s;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "phase", b->phase);
    cJSON_AddNumberToObject(line, "epoch", e);
    cJSON_AddNumberToObject(line, r->multiplicative ? "target_ms" : "lambda", b->value);
    cJSON_AddNumberToObject(line, "ce", sums->ce / steps);
    cJSON_AddNumberToObject(line, "train_acc", sums->acc / steps);
    cJSON_AddNumberToObject(line, "val_ce", sums->val_ce / steps);
    cJSON_AddNumberToObject(line, "expected_latency_ms", sums->elat / steps);
    cJSON_AddNumberToObject(line, "alpha_entropy", h);
    cJSON_AddNumberToObject(line, "argmax_latency_ms", am);
    if (b->gumbel) cJSON_AddNumberToObject(line, "tau", tau);
    cJSON_AddNumberToObject(line, "lr", pinas_optim_lr(b->wopt, 0));
    cJSON_AddNumberToObject(line, "seconds", pinas_now() - t0);
    if (b->dist) {
        cJSON_AddNumberToObject(line, "world_size", pinas_dist_world(b->dist));
        cJSON_AddNumberToObject(line, "allreduce_seconds", sums->comm_s);
    }
    s = nas_log_line(ctx, r, line);
    if (!s && r->opts && r->opts->on_epoch && r->opts->on_epoch(r->opts->user, b->phase, e, line))
        s = pinas_error(ctx, PINAS_EINTERNAL, "stopped after %s epoch %d (resume with pinas search --resume %s)", b->phase, e, r->run_dir);
    cJSON_Delete(line);
    return s;
}

/* One epoch of alternating alpha and weight steps, with its progress bar, checkpoint and log line. */
static pinas_status bilevel_epoch(pinas_ctx *ctx, const nas_run *r, bilevel_state *b, pinas_tnet *t, int e)
{
    const int steps = b->steps, epochs = b->epochs;
    double tau = tau_at(r, e, epochs);
    pinas_tnet_set_gumbel(t, b->gumbel, tau, 0);
    pinas_loader_start_epoch(b->lt, e);
    pinas_loader_start_epoch(b->lv, e);
    char label[64];
    snprintf(label, sizeof label, "%s %s=%g ep %d/%d", b->phase, r->multiplicative ? "target" : "lambda", b->value, e + 1, epochs);
    pinas_progress *pg = pinas_progress_create(ctx, nas_progress_out(r), label, steps);
    epoch_sums sums = {0};
    double t0 = pinas_now(), c0 = pinas_dist_comm_seconds(b->dist);
    pinas_status s = PINAS_OK;
    for (int i = 0; i < steps && !s; i++) {
        pt_tensor *xt = NULL, *yt = NULL, *xv = NULL, *yv = NULL;
        s = pinas_loader_next(ctx, b->lt, &xt, &yt);
        if (!s) s = pinas_loader_next(ctx, b->lv, &xv, &yv);
        if (!s && (!xt || !xv)) s = pinas_error(ctx, PINAS_EINTERNAL, "search: a loader ended early");
        int64_t step = (int64_t)e * steps + i;
        if (!s) s = pinas_optim_set_lr(ctx, b->wopt, -1,
                                       r->cfg->train.schedule == PINAS_SCHEDULE_COSINE ? pinas_cosine_lr(b->so.lr, 0, step, (int64_t)epochs * steps)
                                                                                         : b->so.lr);
        if (!s) s = search_step(ctx, r, t, b, xt, yt, xv, yv, &sums);
        pt_free(xt);
        pt_free(yt);
        pt_free(xv);
        pt_free(yv);
        char st[96];
        snprintf(st, sizeof st, "ce %.3f E[lat] %.3g ms", sums.ce / (sums.steps ? sums.steps : 1), sums.elat / (sums.steps ? sums.steps : 1));
        pinas_progress_update(pg, i + 1, st);
    }
    double h = 0, am = NAN;
    pinas_net *arch = NULL;
    if (!s && b->dist) { /* the epoch's figures over every rank's shard: the mean of the ranks' means */
        double v[4] = {sums.ce, sums.val_ce, sums.elat, sums.acc}, w = pinas_dist_world(b->dist);
        s = pinas_dist_sum(ctx, b->dist, v, 4);
        sums.ce = v[0] / w, sums.val_ce = v[1] / w, sums.elat = v[2] / w, sums.acc = v[3] / w;
    }
    sums.comm_s = pinas_dist_comm_seconds(b->dist) - c0;
    if (!s) s = nas_alpha_state(ctx, r, t, &h, &arch, NULL);
    if (!s) s = pinas_cost_lut_latency(ctx, r->lut, arch, &am);
    char st[160];
    snprintf(st, sizeof st, "ce %.3f val ce %.3f E[lat] %.3g ms H(alpha) %.3f argmax %.3g ms", sums.ce / steps, sums.val_ce / steps,
             sums.elat / steps, h, am);
    pinas_progress_update(pg, steps, st);
    pinas_progress_finish(pg);
    pinas_net_free(arch);
    if (!s) s = bilevel_epoch_end(ctx, r, b, t, e, &sums, tau, h, am, t0);
    return s;
}

/* The search's summary for metrics.json: the loss, E[lat] and the argmax latency at the end, the
 * alpha entropy and every slot's probabilities. */
static pinas_status bilevel_summary(pinas_ctx *ctx, const nas_run *r, const bilevel_state *b, pinas_tnet *t, cJSON **summary)
{
    const int n_alpha = b->n_alpha, epochs = b->epochs;
    const int *slot_nodes = b->slot_nodes;
    const double value = b->value;
    double h = 0, am = NAN, el = NAN;
    cJSON *probs = NULL;
    pinas_net *arch = NULL;
    pt_tensor *elat = NULL;
    pinas_status s = nas_alpha_state(ctx, r, t, &h, &arch, &probs);
    if (!s) s = pinas_cost_lut_latency(ctx, r->lut, arch, &am);
    if (!s) s = pinas_nas_expected_latency(ctx, pinas_cost_lut_get_arrays(r->lut), n_alpha, pinas_tnet_alphas(t), slot_nodes, 0, &elat);
    if (!s && pt_item(elat, &el)) s = torch_fail(ctx, "search: E[lat]");
    pt_free(elat);
    if (!s) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "loss", r->multiplicative ? "multiplicative" : "additive");
        cJSON_AddNumberToObject(o, r->multiplicative ? "target_ms" : "lambda", value);
        if (!r->multiplicative) cJSON_AddNumberToObject(o, "ref_ms", r->ref_ms);
        else cJSON_AddNumberToObject(o, "beta", r->cfg->search.beta);
        cJSON_AddNumberToObject(o, "epochs", epochs);
        cJSON_AddNumberToObject(o, "expected_latency_ms", el);
        cJSON_AddNumberToObject(o, "argmax_latency_ms", am);
        cJSON_AddNumberToObject(o, "alpha_entropy", h);
        cJSON_AddItemToObject(o, "probs", probs);
        probs = NULL;
        *summary = o;
    }
    cJSON_Delete(probs);
    pinas_net_free(arch);
    return s;
}

pinas_status nas_bilevel(pinas_ctx *ctx, nas_run *r, int k, double value, pinas_tnet *t, cJSON **summary)
{
    bilevel_state b = {0};
    pinas_status s = bilevel_open(ctx, r, k, value, t, &b);
    for (int e = b.start; e < b.epochs && !s; e++) s = bilevel_epoch(ctx, r, &b, t, e);
    if (!s) s = bilevel_summary(ctx, r, &b, t, summary);
    bilevel_close(&b);
    return s;
}
