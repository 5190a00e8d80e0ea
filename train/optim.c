/* Optimizers (SGD with clipping, Adam) with parameter groups, over the shim's libtorch optimizers. */
#include "train_internal.h"

#include <stdlib.h>

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
