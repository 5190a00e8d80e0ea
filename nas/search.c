/* The hardware-aware search driver: warm-up, first-order bi-level search per sweep value, derivation,
 * fine-tuning, pricing, candidates and baselines, the run's Pareto front; resumable at every epoch. */
#define _GNU_SOURCE
#include "nas_internal.h"
#include "pinas_cost.h"
#include "pinas_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Everything one run needs, built once and shared by the sweep values. */
typedef struct {
    const pinas_config *cfg;
    const pinas_search_opts *opts;
    char *run_dir, *log_path, *ckpt_dir;
    const char *name;
    pinas_dataset *data;
    pinas_net *space;
    pinas_cost_lut *lut;
    pinas_tensors *warm;   /* supernet weights after warm-up (incl. alphas) */
    int multiplicative;
    double ref_ms;         /* additive: E[lat] is divided by this */
    uint64_t seed;
} run;

static FILE *progress_out(const run *r) { return r->opts && r->opts->progress ? r->opts->progress : stderr; }

static pinas_status torch_fail(pinas_ctx *ctx, const char *what) { return pinas_torch_error(ctx, what); }

/* ------------------------------------------------------------ run dir and config */


pinas_status pinas_nas_run_config(pinas_ctx *ctx, const char *run_dir, pinas_config **out)
{
    *out = NULL;
    char *p = pinas_path_join(run_dir, "config.json");
    cJSON *j = NULL;
    pinas_status s = pinas_path_exists(p) ? pinas_json_load(ctx, p, &j)
                                          : pinas_error(ctx, PINAS_EINVAL, "%s: no config.json (not a search run dir)", run_dir);
    if (!s) {
        /* Provenance keys are ours, not the schema's. */
        cJSON_DeleteItemFromObjectCaseSensitive(j, "git_rev");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "pinas_version");
        s = pinas_config_from_json(ctx, j, p, NULL, 0, out);
    }
    cJSON_Delete(j);
    free(p);
    return s;
}

static pinas_status write_config(pinas_ctx *ctx, run *r)
{
    cJSON *j = cJSON_Duplicate(pinas_config_json(r->cfg), 1);
    /* The space goes in inline, so that a resume does not depend on where the config file was. */
    cJSON_ReplaceItemInObjectCaseSensitive(j, "space", pinas_net_to_json(r->space));
    cJSON_AddStringToObject(j, "git_rev", PINAS_GIT_REV);
    cJSON_AddStringToObject(j, "pinas_version", PINAS_VERSION);
    char *p = pinas_path_join(r->run_dir, "config.json");
    pinas_status s = pinas_json_save(ctx, p, j);
    free(p);
    cJSON_Delete(j);
    return s;
}

static pinas_status log_line(pinas_ctx *ctx, run *r, cJSON *line)
{
    pinas_status s = pinas_train_log_append(ctx, r->log_path, line);
    return s;
}

/* ------------------------------------------------------------ small helpers */

static void train_opts(const run *r, pinas_train_opts *o, const char *phase)
{
    pinas_train_opts_from_config(r->cfg, o);
    o->run_dir = r->run_dir;
    o->phase = phase;
    o->resume = 1;
    o->progress = progress_out(r);
    o->seed = r->seed;
}

/* Mean entropy (nats) of the slots' mixing weights, and the argmax architecture. */
static pinas_status alpha_state(pinas_ctx *ctx, run *r, pinas_tnet *t, double *entropy, pinas_net **arch, cJSON **probs_json)
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

static pinas_status warmup(pinas_ctx *ctx, run *r)
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
    int epochs = (int)pinas_config_int(r->cfg, "search.warmup_epochs");
    if (!s && epochs > 0) {
        pinas_train_opts o;
        train_opts(r, &o, "warmup");
        o.epochs = epochs;
        o.train_split = PINAS_SPLIT_TRAIN;
        o.eval_split = PINAS_SPLIT_VAL;
        /* Distillation belongs to fine-tuning; the warm-up trains the supernet alone. */
        o.teacher = NULL;
        pinas_info(ctx, "warm-up: %d epoch%s of weights on the train split", epochs, epochs == 1 ? "" : "s");
        s = pinas_train_tnet(ctx, t, r->data, &o, NULL);
    }
    if (!s) s = pinas_tnet_export(ctx, t, NULL, &r->warm);
    if (!s) s = pinas_safetensors_save(ctx, wpath, r->warm, NULL);
    pinas_tnet_free(t);
    free(wpath);
    return s;
}

/* ------------------------------------------------------------ one bi-level search */

typedef struct {
    double ce, val_ce, elat, acc;
    int steps;
} epoch_sums;

/* loss = CE + lambda*E/ref (additive) or CE*max(1, E/target)^beta (multiplicative; the literal
 * CE*(E/target)^beta when search.target_clamp is false). New tensor.
 * The multiplicative form is only applied above the target: CE*(E/T)^beta alone scales the whole
 * alpha gradient by T^-beta, which Adam's normalisation cancels, so every target would give the same
 * search. Clamped at 1 (MnasNet's soft constraint with no reward below the target), the target
 * decides where the latency pressure stops. */
static pinas_status arch_loss(pinas_ctx *ctx, const run *r, double value, pt_tensor *ce, pt_tensor *elat, pt_tensor **loss)
{
    pt_tensor *a = NULL, *b = NULL;
    int rc;
    if (!r->multiplicative) {
        rc = pt_mul_scalar(elat, value / r->ref_ms, &a) || pt_add(ce, a, loss);
    } else {
        double beta = pinas_config_num(r->cfg, "search.beta"), e = 0;
        int clamp = pinas_config_bool(r->cfg, "search.target_clamp");
        rc = pt_item(elat, &e);
        if (!rc && (e > value || !clamp)) rc = pt_mul_scalar(elat, 1.0 / value, &a) || pt_pow_scalar(a, beta, &b) || pt_mul(ce, b, loss);
        else if (!rc) rc = pt_mul_scalar(ce, 1.0, loss);
    }
    pt_free(a);
    pt_free(b);
    return rc ? torch_fail(ctx, "search loss") : PINAS_OK;
}

static double tau_at(const run *r, int epoch, int epochs)
{
    double t0 = pinas_config_num(r->cfg, "search.tau_start"), t1 = pinas_config_num(r->cfg, "search.tau_end");
    if (epochs <= 1) return t1;
    return t0 * pow(t1 / t0, (double)epoch / (epochs - 1));
}

static pinas_status search_step(pinas_ctx *ctx, const run *r, pinas_tnet *t, pinas_optim *wopt, pinas_optim *aopt, double value,
                                int n_alpha, pt_tensor *const *alphas, const int *slot_nodes, pt_tensor *xt, pt_tensor *yt,
                                pt_tensor *xv, pt_tensor *yv, epoch_sums *sums)
{
    pt_tensor *logits = NULL, *ce = NULL, *elat = NULL, *loss = NULL;
    double v;
    int64_t correct = 0;
    pinas_status s = PINAS_OK;
    /* Architecture step on a val batch (first order: the weights are taken as they are). */
    if (!(s = pinas_optim_zero_grad(ctx, aopt)) && !(s = pinas_optim_zero_grad(ctx, wopt)) &&
        !(s = pinas_tnet_forward(ctx, t, xv, 1, &logits)) && !(s = pinas_loss_ce(ctx, logits, yv, 0.0, &ce)) &&
        !(s = pinas_cost_expected_latency(ctx, r->lut, n_alpha, alphas, slot_nodes, 0, &elat)) &&
        !(s = arch_loss(ctx, r, value, ce, elat, &loss))) {
        if (pt_backward(loss)) s = torch_fail(ctx, "search: alpha backward");
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
    double ls = pinas_config_num(r->cfg, "train.label_smoothing");
    if (!(s = pinas_optim_zero_grad(ctx, wopt)) && !(s = pinas_optim_zero_grad(ctx, aopt)) &&
        !(s = pinas_tnet_forward(ctx, t, xt, 1, &logits)) && !(s = pinas_loss_ce(ctx, logits, yt, ls, &ce))) {
        if (pt_backward(ce)) s = torch_fail(ctx, "search: weight backward");
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

/* Runs (or resumes) the bi-level search of sweep value k. On return t holds the searched supernet. */
static pinas_status bilevel(pinas_ctx *ctx, run *r, int k, double value, pinas_tnet *t, cJSON **summary)
{
    const pinas_config *cfg = r->cfg;
    int epochs = (int)pinas_config_int(cfg, "search.epochs");
    int gumbel = pinas_config_bool(cfg, "search.gumbel");
    char phase[32];
    snprintf(phase, sizeof phase, "search-%d", k);
    char *ckpt = pinas_strfmt("%s/%s.safetensors", r->ckpt_dir, phase);
    int n_alpha = pinas_tnet_n_alphas(t);
    int *slot_nodes = calloc((size_t)(n_alpha ? n_alpha : 1), sizeof *slot_nodes);
    pinas_optim *wopt = NULL, *aopt = NULL;
    pinas_loader *lt = NULL, *lv = NULL;
    pinas_status s = slot_nodes ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int q = 0; q < n_alpha; q++) pinas_tnet_alpha(t, q, &slot_nodes[q]);
    pinas_sgd_opts so = {.lr = pinas_config_num(cfg, "train.lr"),
                         .momentum = pinas_config_num(cfg, "train.momentum"),
                         .weight_decay = pinas_config_num(cfg, "train.weight_decay"),
                         .nesterov = pinas_config_bool(cfg, "train.nesterov") && pinas_config_num(cfg, "train.momentum") > 0,
                         .grad_clip = pinas_config_num(cfg, "train.grad_clip")};
    /* DARTS' alpha optimiser: Adam with beta1 = 0.5. */
    pinas_adam_opts ao = {.lr = pinas_config_num(cfg, "search.arch_lr"), .beta1 = 0.5, .beta2 = 0.999,
                          .weight_decay = pinas_config_num(cfg, "search.arch_weight_decay")};
    if (!s) s = pinas_optim_sgd(ctx, pinas_tnet_weights(t), pinas_tnet_n_weights(t), &so, &wopt);
    if (!s) s = pinas_optim_adam(ctx, pinas_tnet_alphas(t), n_alpha, &ao, &aopt);
    int bs = (int)pinas_config_int(cfg, "train.batch_size");
    pinas_loader_opts lo_t = {.batch_size = bs, .shuffle = 1, .augment = pinas_config_bool(cfg, "data.augment"), .drop_last = 0, .seed = r->seed};
    pinas_loader_opts lo_v = {.batch_size = bs, .shuffle = 1, .augment = 0, .drop_last = 0, .seed = r->seed ^ 0x76616cULL};
    if (!s) s = pinas_loader_create(ctx, r->data, PINAS_SPLIT_TRAIN, &lo_t, &lt);
    if (!s) s = pinas_loader_create(ctx, r->data, PINAS_SPLIT_VAL, &lo_v, &lv);
    int start = 0;
    if (!s && pinas_path_exists(ckpt)) {
        pinas_optim *both[2] = {wopt, aopt};
        int ep = -1;
        s = pinas_checkpoint_load(ctx, ckpt, t, both, 2, &ep, NULL);
        start = ep + 1;
        if (!s) pinas_info(ctx, "%s: resuming after epoch %d of %d", phase, ep + 1, epochs);
    }
    int steps = 0;
    if (!s) {
        int nt = pinas_loader_n_batches(lt), nv = pinas_loader_n_batches(lv);
        steps = nt < nv ? nt : nv;
        if (steps < 1) s = pinas_error(ctx, PINAS_EINVAL, "search: the train or val split has no batch (batch size %d)", bs);
    }
    for (int e = start; e < epochs && !s; e++) {
        double tau = tau_at(r, e, epochs);
        pinas_tnet_set_gumbel(t, gumbel, tau, 0);
        pinas_loader_start_epoch(lt, e);
        pinas_loader_start_epoch(lv, e);
        char label[64];
        snprintf(label, sizeof label, "%s %s=%g ep %d/%d", phase, r->multiplicative ? "target" : "lambda", value, e + 1, epochs);
        pinas_progress *pg = pinas_progress_create(ctx, progress_out(r), label, steps);
        epoch_sums sums = {0};
        double t0 = pinas_now();
        for (int i = 0; i < steps && !s; i++) {
            pt_tensor *xt = NULL, *yt = NULL, *xv = NULL, *yv = NULL;
            s = pinas_loader_next(ctx, lt, &xt, &yt);
            if (!s) s = pinas_loader_next(ctx, lv, &xv, &yv);
            if (!s && (!xt || !xv)) s = pinas_error(ctx, PINAS_EINTERNAL, "search: a loader ended early");
            int64_t step = (int64_t)e * steps + i;
            if (!s) s = pinas_optim_set_lr(ctx, wopt, -1,
                                           pinas_config_str(cfg, "train.schedule") && !strcmp(pinas_config_str(cfg, "train.schedule"), "cosine")
                                               ? pinas_cosine_lr(so.lr, 0, step, (int64_t)epochs * steps)
                                               : so.lr);
            if (!s) s = search_step(ctx, r, t, wopt, aopt, value, n_alpha, pinas_tnet_alphas(t), slot_nodes, xt, yt, xv, yv, &sums);
            pt_free(xt);
            pt_free(yt);
            pt_free(xv);
            pt_free(yv);
            char st[96];
            snprintf(st, sizeof st, "ce %.3f E[lat] %.3g ms", sums.ce / (sums.steps ? sums.steps : 1),
                     sums.elat / (sums.steps ? sums.steps : 1));
            pinas_progress_update(pg, i + 1, st);
        }
        double h = 0, am = NAN;
        pinas_net *arch = NULL;
        if (!s) s = alpha_state(ctx, r, t, &h, &arch, NULL);
        if (!s) s = pinas_cost_lut_latency(ctx, r->lut, arch, &am);
        char st[160];
        snprintf(st, sizeof st, "ce %.3f val ce %.3f E[lat] %.3g ms H(alpha) %.3f argmax %.3g ms", sums.ce / steps, sums.val_ce / steps,
                 sums.elat / steps, h, am);
        pinas_progress_update(pg, steps, st);
        pinas_progress_finish(pg);
        pinas_net_free(arch);
        if (s) break;
        /* Checkpoint first: a kill between the two leaves a missing log line, never a lost epoch. */
        pinas_optim *both[2] = {wopt, aopt};
        if ((s = pinas_checkpoint_save(ctx, ckpt, t, both, 2, e, NULL))) break;
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "phase", phase);
        cJSON_AddNumberToObject(line, "epoch", e);
        cJSON_AddNumberToObject(line, r->multiplicative ? "target_ms" : "lambda", value);
        cJSON_AddNumberToObject(line, "ce", sums.ce / steps);
        cJSON_AddNumberToObject(line, "train_acc", sums.acc / steps);
        cJSON_AddNumberToObject(line, "val_ce", sums.val_ce / steps);
        cJSON_AddNumberToObject(line, "expected_latency_ms", sums.elat / steps);
        cJSON_AddNumberToObject(line, "alpha_entropy", h);
        cJSON_AddNumberToObject(line, "argmax_latency_ms", am);
        if (gumbel) cJSON_AddNumberToObject(line, "tau", tau);
        cJSON_AddNumberToObject(line, "lr", pinas_optim_lr(wopt, 0));
        cJSON_AddNumberToObject(line, "seconds", pinas_now() - t0);
        s = log_line(ctx, r, line);
        if (!s && r->opts && r->opts->on_epoch && r->opts->on_epoch(r->opts->user, phase, e, line))
            s = pinas_error(ctx, PINAS_EINTERNAL, "stopped after %s epoch %d (resume with pinas search --resume %s)", phase, e, r->run_dir);
        cJSON_Delete(line);
    }
    if (!s) {
        double h = 0, am = NAN, el = NAN;
        cJSON *probs = NULL;
        pinas_net *arch = NULL;
        pt_tensor *elat = NULL;
        s = alpha_state(ctx, r, t, &h, &arch, &probs);
        if (!s) s = pinas_cost_lut_latency(ctx, r->lut, arch, &am);
        if (!s) s = pinas_cost_expected_latency(ctx, r->lut, n_alpha, pinas_tnet_alphas(t), slot_nodes, 0, &elat);
        if (!s && pt_item(elat, &el)) s = torch_fail(ctx, "search: E[lat]");
        pt_free(elat);
        if (!s) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "loss", r->multiplicative ? "multiplicative" : "additive");
            cJSON_AddNumberToObject(o, r->multiplicative ? "target_ms" : "lambda", value);
            if (!r->multiplicative) cJSON_AddNumberToObject(o, "ref_ms", r->ref_ms);
            else cJSON_AddNumberToObject(o, "beta", pinas_config_num(cfg, "search.beta"));
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
    }
    pinas_loader_free(lt);
    pinas_loader_free(lv);
    pinas_optim_free(wopt);
    pinas_optim_free(aopt);
    free(slot_nodes);
    free(ckpt);
    return s;
}

/* ------------------------------------------------------------ fine-tuning, pricing, writing */

/* Fine-tunes (or retrains) arch and writes <dir>/ (model dir + metrics.json). init: supernet
 * weights for arch (used in supernet mode). kind: "candidate" or a baseline kind; name: the
 * baseline's dir name (phase and source; NULL = kind). naive (may be NULL): how a naive baseline was
 * matched, copied into metrics.json. Every point is trained by this one recipe; with
 * finetune.distill every point but the all-ReLU teacher distils from it. */
static pinas_status finish_arch(pinas_ctx *ctx, run *r, const pinas_net *arch, const pinas_tensors *init, const char *kind,
                                const char *name, int k, double value, cJSON *search_summary, const cJSON *naive, const char *dir)
{
    if (!name) name = kind;
    const pinas_config *cfg = r->cfg;
    pinas_status s;
    cJSON *latency = NULL;
    if ((s = nas_price_all(ctx, arch, cfg, &latency))) return s;
    char phase[64];
    if (k >= 0) snprintf(phase, sizeof phase, "finetune-%d", k);
    else snprintf(phase, sizeof phase, "finetune-%s", name);
    int distill = pinas_config_bool(cfg, "finetune.distill") && strcmp(kind, "all-relu");
    char *teacher = distill ? pinas_strfmt("%s/baselines/all-relu", r->run_dir) : NULL;
    int scratch = !strcmp(pinas_config_str(cfg, "finetune.mode"), "scratch");
    int epochs = (int)pinas_config_int(cfg, "finetune.epochs");
    cJSON *extra = cJSON_CreateObject();
    cJSON *mpc = cJSON_AddObjectToObject(extra, "mpc");
    cJSON_AddNumberToObject(mpc, "frac_bits", (double)pinas_config_int(cfg, "mpc.frac_bits"));
    cJSON_AddNumberToObject(mpc, "cmp_bits", (double)pinas_config_int(cfg, "mpc.cmp_bits"));
    cJSON_AddItemToObject(extra, "predicted_latency", cJSON_Duplicate(latency, 1));
    char *source = pinas_strfmt("pinas search run %s (%s), %s", r->run_dir, r->name, k >= 0 ? "candidate" : name);
    if (k >= 0) {
        char *t = pinas_strfmt("%s %d", source, k);
        free(source);
        source = t;
    }
    cJSON_AddStringToObject(extra, "source", source);
    free(source);
    pinas_model *m = NULL;
    double acc = NAN, secs = pinas_now();
    if (epochs > 0) {
        pinas_train_opts o;
        train_opts(r, &o, phase);
        o.epochs = epochs;
        o.lr = pinas_config_num(cfg, "finetune.lr");
        o.train_split = PINAS_SPLIT_TRAIN_ALL;
        o.eval_split = PINAS_SPLIT_TEST;
        if (teacher) o.teacher = teacher;
        pinas_info(ctx, "%s: %s %s for %d epoch%s", phase, scratch ? "retraining" : "fine-tuning", pinas_net_name(arch), epochs,
                   epochs == 1 ? "" : "s");
        s = pinas_train_model(ctx, arch, scratch ? NULL : init, r->data, &o, extra, &m);
        if (!s) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(m->meta, "accuracy");
            acc = cJSON_IsNumber(a) ? a->valuedouble : NAN;
        }
    } else {
        /* No fine-tuning: the supernet's weights as they are (or a fresh init in scratch mode). */
        pinas_tnet *t = NULL;
        pinas_tensors *w = NULL;
        s = pinas_tnet_create(ctx, arch, r->seed, &t);
        if (!s && !scratch) s = pinas_tnet_load(ctx, t, init, 1);
        if (!s) s = pinas_evaluate(ctx, t, r->data, PINAS_SPLIT_TEST, (int)pinas_config_int(cfg, "train.batch_size"), &acc, NULL);
        if (!s) s = pinas_tnet_export(ctx, t, arch, &w);
        pinas_tnet_free(t);
        if (!s) {
            pinas_dataset_info di;
            pinas_dataset_get_info(r->data, &di);
            cJSON *meta = cJSON_CreateObject();
            cJSON_AddStringToObject(meta, "format", PINAS_MODEL_FORMAT);
            cJSON_AddStringToObject(meta, "name", pinas_net_name(arch));
            int in[3] = {di.c, di.h, di.w};
            cJSON_AddItemToObject(meta, "input", cJSON_CreateIntArray(in, 3));
            cJSON_AddNumberToObject(meta, "num_classes", di.num_classes);
            cJSON_AddItemToObject(meta, "normalize", pinas_dataset_normalize_json(r->data));
            cJSON_AddNumberToObject(meta, "accuracy", acc);
            const cJSON *e;
            cJSON_ArrayForEach(e, extra) cJSON_AddItemToObject(meta, e->string, cJSON_Duplicate(e, 1));
            pinas_net *copy = pinas_net_clone(arch);
            s = copy ? pinas_model_create(ctx, copy, w, meta, &m) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            w = NULL;
        }
        pinas_tensors_free(w);
    }
    secs = pinas_now() - secs;
    cJSON_Delete(extra);
    if (!s) s = pinas_model_save(ctx, dir, m);
    if (!s) {
        /* metrics.json last: its presence marks the candidate as finished (resume skips it). */
        cJSON *mt = cJSON_CreateObject();
        cJSON_AddStringToObject(mt, "format", PINAS_METRICS_FORMAT);
        cJSON_AddStringToObject(mt, "run", r->name);
        cJSON_AddStringToObject(mt, "kind", kind);
        if (k >= 0) {
            cJSON_AddNumberToObject(mt, "k", k);
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(mt, "sweep"), r->multiplicative ? "target_ms" : "lambda", value);
        }
        if (naive) cJSON_AddItemToObject(mt, "naive", cJSON_Duplicate(naive, 1));
        cJSON_AddNumberToObject(mt, "accuracy", acc);
        cJSON_AddNumberToObject(mt, "relu_count", (double)pinas_net_relu_count(arch));
        char *key = pinas_strfmt("%s/%s", pinas_config_str(cfg, "search.hw"), pinas_config_str(cfg, "search.net"));
        const cJSON *own = cJSON_GetObjectItemCaseSensitive(latency, key);
        free(key);
        cJSON_AddNumberToObject(mt, "online_bytes", cJSON_GetObjectItemCaseSensitive(own, "online_bytes")->valuedouble);
        cJSON_AddNumberToObject(mt, "preprocessing_bytes", cJSON_GetObjectItemCaseSensitive(own, "preprocessing_bytes")->valuedouble);
        cJSON_AddNumberToObject(mt, "macs", (double)pinas_net_macs(arch));
        cJSON_AddNumberToObject(mt, "params", (double)pinas_net_params(arch));
        cJSON_AddItemToObject(mt, "latency", latency);
        latency = NULL;
        cJSON_AddItemToObject(mt, "arch", pinas_nas_arch_json(arch));
        if (search_summary) cJSON_AddItemToObject(mt, "search", cJSON_Duplicate(search_summary, 1));
        cJSON *ft = cJSON_AddObjectToObject(mt, "finetune");
        cJSON_AddStringToObject(ft, "mode", scratch ? "scratch" : "supernet");
        cJSON_AddNumberToObject(ft, "epochs", epochs);
        cJSON_AddNumberToObject(ft, "lr", pinas_config_num(cfg, "finetune.lr"));
        if (teacher && epochs > 0) cJSON_AddStringToObject(ft, "distilled_from", "baselines/all-relu");
        char *mp = pinas_path_join(dir, "metrics.json");
        s = pinas_json_save(ctx, mp, mt);
        free(mp);
        /* Seconds are not part of the result: a resumed run must write the same metrics. */
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "phase", phase);
        cJSON_AddStringToObject(line, "kind", kind);
        if (strcmp(name, kind)) cJSON_AddStringToObject(line, "name", name);
        if (k >= 0) cJSON_AddNumberToObject(line, "k", k);
        cJSON_AddNumberToObject(line, "test_accuracy", acc);
        cJSON_AddNumberToObject(line, "relu_count", (double)pinas_net_relu_count(arch));
        cJSON_AddItemToObject(line, "latency", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(mt, "latency"), 1));
        cJSON_AddNumberToObject(line, "seconds", secs);
        if (!s) s = log_line(ctx, r, line);
        cJSON_Delete(line);
        cJSON_Delete(mt);
        if (!s) pinas_info(ctx, "%s: test accuracy %.2f%%, %lld ReLUs -> %s", phase, 100 * acc, (long long)pinas_net_relu_count(arch), dir);
    }
    cJSON_Delete(latency);
    pinas_model_free(m);
    free(teacher);
    return s;
}

static pinas_status sweep_one(pinas_ctx *ctx, run *r, int k, double value)
{
    char *dir = pinas_strfmt("%s/candidates/%d", r->run_dir, k);
    char *mp = pinas_path_join(dir, "metrics.json");
    pinas_status s = PINAS_OK;
    if (pinas_path_exists(mp)) {
        pinas_info(ctx, "candidate %d (%s=%g) already finished", k, r->multiplicative ? "target_ms" : "lambda", value);
        goto out;
    }
    pinas_tnet *t = NULL;
    pinas_net *arch = NULL;
    pinas_tensors *init = NULL;
    cJSON *summary = NULL;
    /* Every sweep value starts from the same warmed-up supernet, so they differ only by the loss. */
    s = pinas_tnet_create(ctx, r->space, r->seed, &t);
    if (!s) s = pinas_tnet_load(ctx, t, r->warm, 1);
    if (!s) s = bilevel(ctx, r, k, value, t, &summary);
    double h;
    if (!s) s = alpha_state(ctx, r, t, &h, &arch, NULL);
    if (!s) {
        char *nm = pinas_strfmt("%s-c%d", r->name, k);
        pinas_net *named = NULL;
        /* The candidate is named after the run, so model dirs tell where they came from. */
        cJSON *j = pinas_net_to_json(arch);
        cJSON_ReplaceItemInObjectCaseSensitive(j, "name", cJSON_CreateString(nm));
        s = pinas_net_from_json(ctx, j, "derived architecture", &named);
        cJSON_Delete(j);
        free(nm);
        if (!s) {
            pinas_net_free(arch);
            arch = named;
        }
    }
    if (!s) s = pinas_tnet_export(ctx, t, arch, &init);
    pinas_tnet_free(t);
    if (!s) s = finish_arch(ctx, r, arch, init, "candidate", NULL, k, value, summary, NULL, dir);
    pinas_tensors_free(init);
    pinas_net_free(arch);
    cJSON_Delete(summary);
out:
    free(mp);
    free(dir);
    return s;
}

static pinas_status baseline_one(pinas_ctx *ctx, run *r, const char *kind)
{
    char *dir = pinas_strfmt("%s/baselines/%s", r->run_dir, kind);
    char *mp = pinas_path_join(dir, "metrics.json");
    pinas_status s = PINAS_OK;
    pinas_net *arch = NULL;
    pinas_tnet *t = NULL;
    pinas_tensors *init = NULL;
    if (pinas_path_exists(mp)) goto out;
    if ((s = pinas_nas_baseline(ctx, r->space, kind, &arch))) {
        /* A space without poly (or relu) has no such baseline: say so and go on. */
        pinas_warn(ctx, "no %s baseline: %s", kind, pinas_errmsg(ctx));
        pinas_error_clear(ctx);
        s = PINAS_OK;
        goto out;
    }
    s = pinas_tnet_create(ctx, r->space, r->seed, &t);
    if (!s) s = pinas_tnet_load(ctx, t, r->warm, 1);
    if (!s) s = pinas_tnet_export(ctx, t, arch, &init);
    if (!s) s = finish_arch(ctx, r, arch, init, kind, NULL, -1, 0, NULL, NULL, dir);
out:
    pinas_tnet_free(t);
    pinas_tensors_free(init);
    pinas_net_free(arch);
    free(mp);
    free(dir);
    return s;
}

/* An architecture's identity for "trained already?": its slot choices as compact JSON. New string. */
static char *arch_key(const pinas_net *arch)
{
    cJSON *aj = pinas_nas_arch_json(arch);
    char *key = cJSON_PrintUnformatted(aj);
    cJSON_Delete(aj);
    return key;
}

/* One naive baseline of candidate k: family fam (j = the random draw, -1 for first-k) over `base` at
 * the candidate's latency `budget`, trained by finish_arch unless an equal architecture was. */
static pinas_status naive_one(pinas_ctx *ctx, run *r, int k, const char *fam, const char *base, int j, double budget, cJSON *seen)
{
    pinas_net *arch = NULL;
    pinas_tnet *t = NULL;
    pinas_tensors *init = NULL;
    int up = 0, poly = !strcmp(base, "poly");
    double ms = 0;
    /* The same draw for both bases: the same random order of slots, different fillers. */
    uint64_t seed = r->seed * 1000003ULL + (uint64_t)k * 1009ULL + (uint64_t)(j + 1);
    pinas_status s = pinas_nas_naive(ctx, r->space, r->lut, fam, base, budget, seed, &arch, &up, &ms);
    if (s) return s;
    char *key = arch_key(arch);
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
        s = pinas_tnet_create(ctx, r->space, r->seed, &t);
        if (!s) s = pinas_tnet_load(ctx, t, r->warm, 1);
        if (!s) s = pinas_tnet_export(ctx, t, arch, &init);
        if (!s) s = finish_arch(ctx, r, arch, init, fam, name, -1, 0, NULL, naive, dir);
        cJSON_Delete(naive);
    }
    free(mp);
    free(dir);
    free(key);
    free(name);
    pinas_tnet_free(t);
    pinas_tensors_free(init);
    pinas_net_free(arch);
    return s;
}

/* The naive baselines of one candidate: its predicted latency under the search's own profiles is
 * the budget; per base of search.naive_bases, first-k and search.naive_random random placements at
 * <= that latency, each trained by the same recipe as every other point (finish_arch). */
static pinas_status naive_for(pinas_ctx *ctx, run *r, int k, cJSON *seen)
{
    const pinas_config *cfg = r->cfg;
    char *np = pinas_strfmt("%s/candidates/%d/net.json", r->run_dir, k);
    pinas_net *cand = NULL;
    double budget = 0;
    pinas_status s = pinas_net_load(ctx, np, &cand);
    if (!s) s = pinas_cost_lut_latency(ctx, r->lut, cand, &budget);
    pinas_net_free(cand);
    free(np);
    int n_rand = (int)pinas_config_int(cfg, "search.naive_random"), first_k = pinas_config_bool(cfg, "search.naive_first_k");
    const cJSON *b;
    cJSON_ArrayForEach(b, pinas_config_get(cfg, "search.naive_bases"))
    {
        if (!s && first_k) s = naive_one(ctx, r, k, "first-k", b->valuestring, -1, budget, seen);
        for (int j = 0; j < n_rand && !s; j++) s = naive_one(ctx, r, k, "random", b->valuestring, j, budget, seen);
    }
    return s;
}

/* ------------------------------------------------------------ the run */

static pinas_status check_data(pinas_ctx *ctx, const run *r)
{
    pinas_dataset_info di;
    pinas_dataset_get_info(r->data, &di);
    const pinas_node *in = pinas_net_node(r->space, 0);
    if (in->c != di.c || in->h != di.h || in->w != di.w)
        return pinas_error(ctx, PINAS_ESHAPE, "space %s takes [%d, %d, %d] inputs but dataset %s has [%d, %d, %d] images", pinas_net_name(r->space),
                           in->c, in->h, in->w, di.name, di.c, di.h, di.w);
    if (pinas_net_num_classes(r->space) != di.num_classes)
        return pinas_error(ctx, PINAS_ESHAPE, "space %s has %d classes but dataset %s has %d", pinas_net_name(r->space),
                           pinas_net_num_classes(r->space), di.name, di.num_classes);
    if (pinas_net_n_open(r->space) == 0)
        return pinas_error(ctx, PINAS_EINVAL, "space %s has no open slot: nothing to search (use pinas train for a decided net)",
                           pinas_net_name(r->space));
    return PINAS_OK;
}

/* The additive form's reference: the latency of the all-ReLU architecture (every act slot on relu,
 * every pool slot on maxpool, where the slot has them; the costliest candidate otherwise). */
static pinas_status all_relu_ms(pinas_ctx *ctx, const run *r, double *ms)
{
    int n = pinas_cost_lut_n_slots(r->lut);
    int *ch = calloc((size_t)(n ? n : 1), sizeof *ch);
    if (!ch) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const pinas_node *nd = pinas_net_node(r->space, pinas_cost_lut_slot_node(r->lut, k));
        int j = pinas_node_find_cand(nd, nd->op == PINAS_OP_POOL ? PINAS_CAND_MAXPOOL : PINAS_CAND_RELU);
        if (j < 0)
            for (int q = 0; q < pinas_cost_lut_n_cands(r->lut, k); q++)
                if (j < 0 || pinas_cost_lut_cand_ms(r->lut, k, q) > pinas_cost_lut_cand_ms(r->lut, k, j)) j = q;
        ch[k] = j;
    }
    pinas_status s = pinas_cost_lut_latency_choices(ctx, r->lut, ch, ms);
    free(ch);
    return s;
}

static pinas_status setup(pinas_ctx *ctx, run *r)
{
    const pinas_config *cfg = r->cfg;
    r->seed = (uint64_t)pinas_config_int(cfg, "seed");
    pinas_ctx_set_seed(ctx, r->seed);
    pinas_ctx_set_threads(ctx, (int)pinas_config_int(cfg, "threads"));
    pinas_ctx_set_device(ctx, pinas_config_str(cfg, "device"));
    r->name = pinas_config_str(cfg, "name");
    r->multiplicative = !strcmp(pinas_config_str(cfg, "search.loss"), "multiplicative");
    const cJSON *vals = pinas_config_get(cfg, r->multiplicative ? "search.targets_ms" : "search.lambdas");
    if (cJSON_GetArraySize(vals) < 1)
        return pinas_error(ctx, PINAS_EINVAL, "%s: %s: the %s loss needs at least one value to search with", pinas_config_source(cfg),
                           r->multiplicative ? "search.targets_ms" : "search.lambdas", r->multiplicative ? "multiplicative" : "additive");
    if (r->multiplicative) {
        const cJSON *v;
        cJSON_ArrayForEach(v, vals) if (v->valuedouble <= 0) return pinas_error(ctx, PINAS_EINVAL, "search.targets_ms: targets must be > 0 ms");
    }
    pinas_status s = pinas_torch_setup(ctx);
    if (s) return s;
    r->log_path = pinas_path_join(r->run_dir, "log.jsonl");
    r->ckpt_dir = pinas_path_join(r->run_dir, "checkpoint");
    if ((s = pinas_mkdir_p(ctx, r->ckpt_dir))) return s;
    pinas_data_opts dopts;
    pinas_data_opts_from_config(cfg, &dopts);
    if ((s = pinas_dataset_load(ctx, &dopts, &r->data))) return s;
    if ((s = check_data(ctx, r))) return s;
    /* The LUT is cached in the run dir, and every run - fresh or resumed - uses the numbers read back
     * from that file (its JSON is in ms: a fresh run using its own seconds would differ from a resumed
     * one in the last bit). */
    char *lp = pinas_path_join(r->run_dir, "lut.json");
    if (!pinas_path_exists(lp)) {
        pinas_cost_hw *hw = NULL;
        pinas_cost_link *link = NULL;
        pinas_mpc_params p;
        nas_mpc_params_from_config(cfg, &p);
        s = pinas_cost_hw_load(ctx, pinas_config_str(cfg, "search.hw"), &hw);
        if (!s) s = pinas_cost_link_load(ctx, pinas_config_str(cfg, "search.net"), &link);
        pinas_cost_lut *built = NULL;
        if (!s) s = pinas_cost_lut_build(ctx, r->space, hw, link, &p, &built);
        if (!s) s = pinas_cost_lut_save(ctx, built, lp);
        pinas_cost_lut_free(built);
        pinas_cost_hw_free(hw);
        pinas_cost_link_free(link);
    }
    if (!s) s = pinas_cost_lut_load(ctx, lp, &r->lut);
    if (!s) s = pinas_cost_lut_check(ctx, r->lut, r->space);
    free(lp);
    if (s) return s;
    r->ref_ms = pinas_config_num(cfg, "search.ref_ms");
    if (r->ref_ms <= 0 && (s = all_relu_ms(ctx, r, &r->ref_ms))) return s;
    if (!(r->ref_ms > 0)) return pinas_error(ctx, PINAS_EINVAL, "search.ref_ms: the all-ReLU latency is %g ms; set a positive ref_ms", r->ref_ms);
    return PINAS_OK;
}

static pinas_status run_all(pinas_ctx *ctx, run *r)
{
    pinas_status s = setup(ctx, r);
    if (!s) s = warmup(ctx, r);
    const cJSON *vals = pinas_config_get(r->cfg, r->multiplicative ? "search.targets_ms" : "search.lambdas");
    /* With distillation the all-ReLU baseline is the teacher, so it is trained first. */
    int distill = pinas_config_bool(r->cfg, "finetune.distill");
    if (!s && distill) s = baseline_one(ctx, r, "all-relu");
    int k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vals)
    {
        if (s) break;
        s = sweep_one(ctx, r, k++, v->valuedouble);
    }
    if (!s && pinas_config_bool(r->cfg, "search.baselines")) {
        if (!distill) s = baseline_one(ctx, r, "all-relu");
        if (!s) s = baseline_one(ctx, r, "all-poly");
    }
    /* A naive architecture equal to the all-ReLU or all-poly baseline is that baseline: not trained twice. */
    cJSON *seen = cJSON_CreateObject();
    static const char *const kinds[] = {"all-relu", "all-poly"};
    for (int q = 0; q < 2 && !s; q++) {
        char *mp = pinas_strfmt("%s/baselines/%s/metrics.json", r->run_dir, kinds[q]);
        pinas_net *b = NULL;
        if (pinas_path_exists(mp) && !pinas_nas_baseline(ctx, r->space, kinds[q], &b)) {
            char *key = arch_key(b);
            cJSON_AddStringToObject(seen, key, kinds[q]);
            free(key);
        }
        pinas_error_clear(ctx);
        pinas_net_free(b);
        free(mp);
    }
    for (int q = 0; q < k && !s; q++) s = naive_for(ctx, r, q, seen);
    cJSON_Delete(seen);
    if (!s) {
        pinas_pareto *p = pinas_pareto_create();
        s = p ? pinas_pareto_load_run(ctx, p, r->run_dir) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        if (!s) s = pinas_pareto_compute(ctx, p, pinas_config_str(r->cfg, "search.hw"), pinas_config_str(r->cfg, "search.net"), "online");
        char *title = pinas_strfmt("%s: latency-accuracy Pareto front", r->name);
        if (!s) s = pinas_pareto_save(ctx, p, r->run_dir, title);
        free(title);
        pinas_pareto_free(p);
    }
    return s;
}

static void run_free(run *r)
{
    free(r->run_dir);
    free(r->log_path);
    free(r->ckpt_dir);
    pinas_dataset_free(r->data);
    pinas_net_free(r->space);
    pinas_cost_lut_free(r->lut);
    pinas_tensors_free(r->warm);
}

pinas_status pinas_nas_search(pinas_ctx *ctx, const pinas_config *cfg, const pinas_search_opts *o, char **run_dir)
{
    if (run_dir) *run_dir = NULL;
    run r = {.cfg = cfg, .opts = o};
    pinas_status s = pinas_net_load_config_space(ctx, cfg, &r.space);
    if (s) return s;
    r.run_dir = pinas_path_join(pinas_config_str(cfg, "out_dir"), pinas_config_str(cfg, "name"));
    char *cp = pinas_path_join(r.run_dir, "config.json");
    if (pinas_path_exists(cp))
        s = pinas_error(ctx, PINAS_EINVAL, "%s already holds a run; resume it with `pinas search --resume %s`, or pick another name (--set name=...)",
                        r.run_dir, r.run_dir);
    free(cp);
    if (!s) s = pinas_mkdir_p(ctx, r.run_dir);
    r.name = pinas_config_str(cfg, "name");
    if (!s) s = write_config(ctx, &r);
    if (!s) s = run_all(ctx, &r);
    if (run_dir) *run_dir = pinas_strdup(r.run_dir);
    run_free(&r);
    return s;
}

pinas_status pinas_nas_resume(pinas_ctx *ctx, const char *run_dir, const pinas_search_opts *o)
{
    pinas_config *cfg = NULL;
    pinas_status s = pinas_nas_run_config(ctx, run_dir, &cfg);
    if (s) return s;
    run r = {.cfg = cfg, .opts = o};
    r.run_dir = pinas_strdup(run_dir);
    s = pinas_net_load_config_space(ctx, cfg, &r.space);
    if (!s) s = run_all(ctx, &r);
    run_free(&r);
    pinas_config_free(cfg);
    return s;
}
