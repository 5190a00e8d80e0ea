/* Losses, metrics, optimizers with parameter groups, the cosine schedule, evaluation, and libtorch setup. */
#define _GNU_SOURCE
#include "train_internal.h"

#include <stdlib.h>
#include <string.h>

pinas_status pinas_torch_error(pinas_ctx *ctx, const char *what)
{
    return pinas_error(ctx, PINAS_ETORCH, "%s: %s", what ? what : "libtorch", pt_errmsg());
}

pinas_status pinas_torch_setup(pinas_ctx *ctx)
{
    if (pt_device_check(pinas_ctx_device(ctx))) return pinas_torch_error(ctx, "device");
    if (pt_set_threads(pinas_ctx_threads(ctx))) return pinas_torch_error(ctx, "threads");
    return PINAS_OK;
}

/* ------------------------------------------------------------------ losses and metrics */

pinas_status pinas_loss_ce(pinas_ctx *ctx, const pt_tensor *logits, const pt_tensor *y, double label_smoothing, pt_tensor **loss)
{
    *loss = NULL;
    if (!(label_smoothing >= 0 && label_smoothing < 1))
        return pinas_error(ctx, PINAS_EINVAL, "label smoothing must be in [0, 1), got %g", label_smoothing);
    if (pt_cross_entropy(logits, y, label_smoothing, loss)) return pinas_torch_error(ctx, "cross-entropy");
    return PINAS_OK;
}

pinas_status pinas_loss_kd(pinas_ctx *ctx, const pt_tensor *logits, const pt_tensor *teacher, const pt_tensor *y, double label_smoothing,
                           double alpha, double temperature, pt_tensor **loss)
{
    *loss = NULL;
    if (!(alpha >= 0 && alpha <= 1)) return pinas_error(ctx, PINAS_EINVAL, "distillation weight must be in [0, 1], got %g", alpha);
    pt_tensor *ce = NULL, *kd = NULL, *a = NULL, *b = NULL;
    pinas_status s = pinas_loss_ce(ctx, logits, y, label_smoothing, &ce);
    if (s) return s;
    int rc = pt_kd_loss(logits, teacher, temperature, &kd) || pt_mul_scalar(ce, 1.0 - alpha, &a) || pt_mul_scalar(kd, alpha, &b) ||
             pt_add(a, b, loss);
    pt_free(ce);
    pt_free(kd);
    pt_free(a);
    pt_free(b);
    return rc ? pinas_torch_error(ctx, "distillation loss") : PINAS_OK;
}

pinas_status pinas_count_correct(pinas_ctx *ctx, const pt_tensor *logits, const pt_tensor *y, int64_t *correct)
{
    if (pt_count_correct(logits, y, correct)) return pinas_torch_error(ctx, "accuracy");
    return PINAS_OK;
}

pinas_status pinas_evaluate(pinas_ctx *ctx, pinas_tnet *t, const pinas_dataset *d, pinas_split split, int batch_size, double *accuracy,
                            double *loss)
{
    pinas_loader_opts lo = {.batch_size = batch_size, .shuffle = 0, .augment = 0, .drop_last = 0, .seed = 0};
    pinas_loader *l = NULL;
    pinas_status s = pinas_loader_create(ctx, d, split, &lo, &l);
    if (s) return s;
    int prev = 1;
    if (pt_set_grad_enabled(0, &prev)) {
        pinas_loader_free(l);
        return pinas_torch_error(ctx, "evaluate");
    }
    pinas_loader_start_epoch(l, 0);
    int64_t correct = 0, seen = 0;
    double loss_sum = 0;
    for (;;) {
        pt_tensor *x = NULL, *y = NULL, *logits = NULL, *ce = NULL;
        if ((s = pinas_loader_next(ctx, l, &x, &y)) || !x) break;
        int64_t b = 0, c = 0;
        double v = 0;
        s = pinas_tnet_forward(ctx, t, x, 0, &logits);
        if (!s) s = pinas_loss_ce(ctx, logits, y, 0, &ce);
        if (!s && (pt_item(ce, &v) || pt_numel(y, &b))) s = pinas_torch_error(ctx, "evaluate");
        if (!s) s = pinas_count_correct(ctx, logits, y, &c);
        pt_free(x);
        pt_free(y);
        pt_free(logits);
        pt_free(ce);
        if (s) break;
        correct += c;
        seen += b;
        loss_sum += v * (double)b;
    }
    pt_set_grad_enabled(prev, NULL);
    pinas_loader_free(l);
    if (s) return s;
    if (accuracy) *accuracy = seen ? (double)correct / (double)seen : 0;
    if (loss) *loss = seen ? loss_sum / (double)seen : 0;
    return PINAS_OK;
}

/* ------------------------------------------------------------------ optimizers */

struct pinas_optim {
    pt_optim *o;
    int n_groups;
    double clip; /* > 0: gradient-norm clipping before every step */
};

pt_optim *tr_optim_handle(const pinas_optim *o) { return o->o; }

static pinas_status wrap(pinas_ctx *ctx, pt_optim *po, pinas_optim **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) {
        pt_optim_free(po);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    (*out)->o = po;
    (*out)->n_groups = 1;
    return PINAS_OK;
}

pinas_status pinas_optim_sgd(pinas_ctx *ctx, pt_tensor *const *params, int n, const pinas_sgd_opts *o, pinas_optim **out)
{
    *out = NULL;
    if (o->nesterov && !(o->momentum > 0)) return pinas_error(ctx, PINAS_EINVAL, "SGD: Nesterov momentum needs momentum > 0");
    pt_optim *po = NULL;
    if (!(o->grad_clip >= 0)) return pinas_error(ctx, PINAS_EINVAL, "SGD: gradient clipping norm must be >= 0, got %g", o->grad_clip);
    if (pt_optim_sgd((const pt_tensor *const *)params, n, o->lr, o->momentum, o->weight_decay, o->nesterov, &po))
        return pinas_torch_error(ctx, "SGD");
    pinas_status s = wrap(ctx, po, out);
    if (!s) (*out)->clip = o->grad_clip;
    return s;
}

pinas_status pinas_optim_adam(pinas_ctx *ctx, pt_tensor *const *params, int n, const pinas_adam_opts *o, pinas_optim **out)
{
    *out = NULL;
    pt_optim *po = NULL;
    double b1 = o->beta1 > 0 ? o->beta1 : 0.9, b2 = o->beta2 > 0 ? o->beta2 : 0.999, eps = o->eps > 0 ? o->eps : 1e-8;
    if (pt_optim_adam((const pt_tensor *const *)params, n, o->lr, b1, b2, eps, o->weight_decay, &po)) return pinas_torch_error(ctx, "Adam");
    return wrap(ctx, po, out);
}

pinas_status pinas_optim_add_group(pinas_ctx *ctx, pinas_optim *o, pt_tensor *const *params, int n, double lr, double weight_decay)
{
    if (pt_optim_add_group(o->o, (const pt_tensor *const *)params, n, lr, weight_decay)) return pinas_torch_error(ctx, "optimizer group");
    o->n_groups++;
    return PINAS_OK;
}

void pinas_optim_free(pinas_optim *o)
{
    if (!o) return;
    pt_optim_free(o->o);
    free(o);
}

int pinas_optim_n_groups(const pinas_optim *o) { return o->n_groups; }

pinas_status pinas_optim_set_lr(pinas_ctx *ctx, pinas_optim *o, int g, double lr)
{
    if (pt_optim_set_lr(o->o, g, lr)) return pinas_torch_error(ctx, "optimizer lr");
    return PINAS_OK;
}

double pinas_optim_lr(const pinas_optim *o, int g)
{
    double lr = 0;
    if (pt_optim_get_lr(o->o, g, &lr)) return 0;
    return lr;
}

pinas_status pinas_optim_step(pinas_ctx *ctx, pinas_optim *o)
{
    if (o->clip > 0 && pt_optim_clip_grad_norm(o->o, o->clip, NULL)) return pinas_torch_error(ctx, "gradient clipping");
    if (pt_optim_step(o->o)) return pinas_torch_error(ctx, "optimizer step");
    return PINAS_OK;
}

pinas_status pinas_optim_zero_grad(pinas_ctx *ctx, pinas_optim *o)
{
    if (pt_optim_zero_grad(o->o)) return pinas_torch_error(ctx, "optimizer zero_grad");
    return PINAS_OK;
}

double pinas_cosine_lr(double lr_max, double lr_min, int64_t step, int64_t total)
{
    if (total <= 0) return lr_max;
    if (step < 0) step = 0;
    if (step > total) step = total;
    return lr_min + (lr_max - lr_min) * 0.5 * (1.0 + cos(3.141592653589793 * (double)step / (double)total));
}
