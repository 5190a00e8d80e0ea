/* Losses (cross-entropy, distillation), accuracy counts, and evaluation of a net over a split. */
#include "train_internal.h"

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
