/* The trainer: SGD + cosine, optional distillation, per-epoch evaluation, log.jsonl, atomic checkpoints and resume. */
#define _GNU_SOURCE
#include "train_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pinas_train_opts_from_config(const pinas_config *cfg, pinas_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = (int)pinas_config_int(cfg, "train.epochs");
    o->batch_size = (int)pinas_config_int(cfg, "train.batch_size");
    o->lr = pinas_config_num(cfg, "train.lr");
    o->lr_min = 0;
    const char *sched = pinas_config_str(cfg, "train.schedule");
    o->cosine = !sched || strcmp(sched, "cosine") == 0;
    o->momentum = pinas_config_num(cfg, "train.momentum");
    o->nesterov = pinas_config_bool(cfg, "train.nesterov");
    o->weight_decay = pinas_config_num(cfg, "train.weight_decay");
    o->label_smoothing = pinas_config_num(cfg, "train.label_smoothing");
    o->grad_clip = pinas_config_num(cfg, "train.grad_clip");
    const char *teacher = pinas_config_str(cfg, "train.teacher");
    o->teacher = teacher && *teacher ? teacher : NULL;
    o->kd_alpha = pinas_config_num(cfg, "train.kd_alpha");
    o->kd_temperature = pinas_config_num(cfg, "train.kd_temperature");
    o->augment = pinas_config_bool(cfg, "data.augment");
    o->train_split = PINAS_SPLIT_TRAIN_ALL;
    o->eval_split = PINAS_SPLIT_TEST;
    o->seed = (uint64_t)pinas_config_int(cfg, "seed");
    o->phase = "train";
}

pinas_status pinas_train_log_append(pinas_ctx *ctx, const char *path, const cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    if (!text) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    line[n] = '\n';
    line[n + 1] = 0;
    pinas_status s = PINAS_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) s = pinas_error(ctx, PINAS_EIO, "%s: cannot open for appending: %s", path, strerror(errno));
    else {
        ssize_t w = write(fd, line, n + 1);
        if (w != (ssize_t)(n + 1)) s = pinas_error(ctx, PINAS_EIO, "%s: write failed: %s", path, w < 0 ? strerror(errno) : "short write");
        if (close(fd) != 0 && !s) s = pinas_error(ctx, PINAS_EIO, "%s: close failed: %s", path, strerror(errno));
    }
    free(line);
    return s;
}

static const char *split_label(pinas_split s)
{
    static const char *names[] = {"train_all", "train", "val", "test"};
    return (unsigned)s < 4 ? names[s] : "?";
}

static pinas_status check_data(pinas_ctx *ctx, const pinas_net *net, const pinas_dataset *d)
{
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    const pinas_node *in = pinas_net_node(net, 0);
    if (in->c != di.c || in->h != di.h || in->w != di.w)
        return pinas_error(ctx, PINAS_ESHAPE, "net %s takes [%d, %d, %d] inputs but dataset %s has [%d, %d, %d] images", pinas_net_name(net),
                           in->c, in->h, in->w, di.name, di.c, di.h, di.w);
    if (pinas_net_num_classes(net) != di.num_classes)
        return pinas_error(ctx, PINAS_ESHAPE, "net %s has %d classes but dataset %s has %d", pinas_net_name(net), pinas_net_num_classes(net),
                           di.name, di.num_classes);
    return PINAS_OK;
}

/* One training step; adds the batch loss (times its size) and correct count. */
static pinas_status train_step(pinas_ctx *ctx, pinas_tnet *t, pinas_tnet *teacher, pinas_optim *opt, const pinas_train_opts *o,
                               const pt_tensor *x, const pt_tensor *y, double *loss_sum, int64_t *correct, int64_t *seen)
{
    pt_tensor *logits = NULL, *loss = NULL, *tl = NULL;
    pinas_status s = pinas_tnet_forward(ctx, t, x, 1, &logits);
    if (!s && teacher) {
        int prev = 1;
        pt_set_grad_enabled(0, &prev);
        s = pinas_tnet_forward(ctx, teacher, x, 0, &tl);
        pt_set_grad_enabled(prev, NULL);
        if (!s) s = pinas_loss_kd(ctx, logits, tl, y, o->label_smoothing, o->kd_alpha, o->kd_temperature, &loss);
    } else if (!s) {
        s = pinas_loss_ce(ctx, logits, y, o->label_smoothing, &loss);
    }
    if (!s) s = pinas_optim_zero_grad(ctx, opt);
    if (!s && pt_backward(loss)) s = pinas_torch_error(ctx, "backward");
    if (!s) s = pinas_optim_step(ctx, opt);
    double v = 0;
    int64_t b = 0, c = 0;
    if (!s && (pt_item(loss, &v) || pt_numel(y, &b))) s = pinas_torch_error(ctx, "loss");
    if (!s) s = pinas_count_correct(ctx, logits, y, &c);
    if (!s) {
        *loss_sum += v * (double)b;
        *correct += c;
        *seen += b;
    }
    pt_free(logits);
    pt_free(loss);
    pt_free(tl);
    return s;
}

pinas_status pinas_train_tnet(pinas_ctx *ctx, pinas_tnet *t, const pinas_dataset *d, const pinas_train_opts *o, pinas_train_result *result)
{
    pinas_train_result res = {0};
    const char *phase = o->phase && *o->phase ? o->phase : "train";
    if (o->epochs < 0 || o->batch_size < 1 || !(o->lr >= 0))
        return pinas_error(ctx, PINAS_EINVAL, "%s: epochs must be >= 0, batch size >= 1 and lr >= 0 (got %d, %d, %g)", phase, o->epochs,
                           o->batch_size, o->lr);
    pinas_status s = check_data(ctx, pinas_tnet_net(t), d);
    if (s) return s;
    pinas_loader_opts lo = {.batch_size = o->batch_size, .shuffle = 1, .augment = o->augment, .drop_last = 1, .seed = o->seed};
    pinas_loader *l = NULL;
    pinas_optim *opt = NULL;
    pinas_tnet *teacher = NULL;
    pinas_model *tm = NULL;
    pinas_progress *bar = NULL;
    char *ckpt_dir = NULL, *ckpt = NULL, *log = NULL, *ckpt_name = NULL;
    int n_alpha = pinas_tnet_n_alphas(t), start = 0, steps = 0;
    int64_t total = 0;
    double t0 = pinas_now();
    if ((s = pinas_loader_create(ctx, d, o->train_split, &lo, &l))) goto done;
    pinas_sgd_opts so = {.lr = o->lr, .momentum = o->momentum, .weight_decay = o->weight_decay, .nesterov = o->nesterov && o->momentum > 0,
                         .grad_clip = o->grad_clip};
    if ((s = pinas_optim_sgd(ctx, pinas_tnet_weights(t), pinas_tnet_n_weights(t), &so, &opt))) goto done;
    if (o->teacher && *o->teacher) {
        if ((s = pinas_model_load(ctx, o->teacher, &tm))) {
            pinas_error_prefix(ctx, s, "teacher");
            goto done;
        }
        if ((s = check_data(ctx, tm->net, d)) || (s = pinas_tnet_from_model(ctx, tm, &teacher))) {
            pinas_error_prefix(ctx, s, "teacher %s", o->teacher);
            goto done;
        }
    }
    if (o->run_dir) {
        ckpt_dir = pinas_path_join(o->run_dir, "checkpoint");
        ckpt_name = pinas_strfmt("%s.safetensors", phase);
        log = pinas_path_join(o->run_dir, "log.jsonl");
        if (!ckpt_dir || !ckpt_name || !log || !(ckpt = pinas_path_join(ckpt_dir, ckpt_name))) {
            s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            goto done;
        }
        if ((s = pinas_mkdir_p(ctx, ckpt_dir))) goto done;
        if (o->resume && pinas_path_exists(ckpt)) {
            if ((s = pinas_checkpoint_load(ctx, ckpt, t, &opt, 1, &start, NULL))) goto done;
            if (start > o->epochs) {
                s = pinas_error(ctx, PINAS_EINVAL, "%s: holds epoch %d, more than the %d epochs of this run", ckpt, start, o->epochs);
                goto done;
            }
            pinas_info(ctx, "%s: resuming after epoch %d of %d (%s)", phase, start, o->epochs, ckpt);
        }
    }
    /* The trainer moves weights only: alphas (of a supernet) keep their values and get no gradients. */
    for (int k = 0; k < n_alpha; k++) pt_set_requires_grad(pinas_tnet_alpha(t, k, NULL), 0);
    steps = pinas_loader_n_batches(l);
    if (o->max_steps > 0 && o->max_steps < steps) steps = o->max_steps;
    total = (int64_t)steps * o->epochs;
    bar = pinas_progress_create(ctx, o->progress ? o->progress : stderr, phase, total - (int64_t)steps * start);
    double lr = o->lr;
    for (int e = start; e < o->epochs; e++) {
        double te = pinas_now(), loss_sum = 0;
        int64_t correct = 0, seen = 0;
        pinas_loader_start_epoch(l, e);
        for (int b = 0; b < steps; b++) {
            int64_t step = (int64_t)e * steps + b;
            lr = o->cosine ? pinas_cosine_lr(o->lr, o->lr_min, step, total) : o->lr;
            if ((s = pinas_optim_set_lr(ctx, opt, -1, lr))) goto done;
            pt_tensor *x = NULL, *y = NULL;
            if ((s = pinas_loader_next(ctx, l, &x, &y))) goto done;
            if (!x) break;
            s = train_step(ctx, t, teacher, opt, o, x, y, &loss_sum, &correct, &seen);
            pt_free(x);
            pt_free(y);
            if (s) goto done;
            if (bar) {
                char st[128];
                snprintf(st, sizeof st, "epoch %d/%d loss %.4f acc %.1f%%", e + 1, o->epochs, loss_sum / (double)seen,
                         100.0 * (double)correct / (double)seen);
                pinas_progress_update(bar, step + 1 - (int64_t)steps * start, st);
            }
        }
        res.train_loss = seen ? loss_sum / (double)seen : 0;
        res.train_acc = seen ? (double)correct / (double)seen : 0;
        if ((s = pinas_evaluate(ctx, t, d, o->eval_split, o->batch_size, &res.eval_acc, &res.eval_loss))) goto done;
        res.epochs_run++;
        if (ckpt && (s = pinas_checkpoint_save(ctx, ckpt, t, &opt, 1, e + 1, NULL))) goto done;
        if (log) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "phase", phase);
            cJSON_AddNumberToObject(j, "epoch", e + 1);
            cJSON_AddNumberToObject(j, "epochs", o->epochs);
            cJSON_AddNumberToObject(j, "lr", lr);
            cJSON_AddNumberToObject(j, "train_loss", res.train_loss);
            cJSON_AddNumberToObject(j, "train_acc", res.train_acc);
            cJSON_AddStringToObject(j, "eval_split", split_label(o->eval_split));
            cJSON_AddNumberToObject(j, "eval_loss", res.eval_loss);
            cJSON_AddNumberToObject(j, "eval_acc", res.eval_acc);
            cJSON_AddNumberToObject(j, "seconds", pinas_now() - te);
            s = pinas_train_log_append(ctx, log, j);
            cJSON_Delete(j);
            if (s) goto done;
        }
        pinas_debug(ctx, "%s: epoch %d/%d loss %.4f acc %.4f %s acc %.4f", phase, e + 1, o->epochs, res.train_loss, res.train_acc,
                    split_label(o->eval_split), res.eval_acc);
    }
    if (res.epochs_run == 0 && (s = pinas_evaluate(ctx, t, d, o->eval_split, o->batch_size, &res.eval_acc, &res.eval_loss))) goto done;
done:
    if (bar) {
        if (!s) {
            char st[128];
            snprintf(st, sizeof st, "loss %.4f acc %.1f%% %s acc %.1f%%", res.train_loss, 100 * res.train_acc, split_label(o->eval_split),
                     100 * res.eval_acc);
            pinas_progress_update(bar, total - (int64_t)steps * start, st);
        }
        pinas_progress_finish(bar);
    }
    for (int k = 0; k < n_alpha; k++) pt_set_requires_grad(pinas_tnet_alpha(t, k, NULL), 1);
    res.seconds = pinas_now() - t0;
    if (result) *result = res;
    pinas_loader_free(l);
    pinas_optim_free(opt);
    pinas_tnet_free(teacher);
    pinas_model_free(tm);
    free(ckpt_dir);
    free(ckpt_name);
    free(ckpt);
    free(log);
    return s;
}

pinas_status pinas_train_model(pinas_ctx *ctx, const pinas_net *arch, const pinas_tensors *init, const pinas_dataset *d,
                               const pinas_train_opts *o, const cJSON *extra_meta, pinas_model **out)
{
    *out = NULL;
    if (pinas_net_n_open(arch))
        return pinas_error(ctx, PINAS_EINVAL, "net %s has %d open slots; train a decided architecture (derive or set \"choices\" first)",
                           pinas_net_name(arch), pinas_net_n_open(arch));
    pinas_tnet *t = NULL;
    pinas_status s = pinas_tnet_create(ctx, arch, o->seed, &t);
    if (s) return s;
    if (init && (s = pinas_tnet_load(ctx, t, init, 1))) {
        pinas_tnet_free(t);
        return pinas_error_prefix(ctx, s, "initial weights");
    }
    pinas_train_result r;
    if ((s = pinas_train_tnet(ctx, t, d, o, &r))) {
        pinas_tnet_free(t);
        return s;
    }
    pinas_tensors *w = NULL;
    s = pinas_tnet_export(ctx, t, NULL, &w);
    pinas_tnet_free(t);
    if (s) return s;
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "format", PINAS_MODEL_FORMAT);
    cJSON_AddStringToObject(meta, "name", pinas_net_name(arch));
    int shp[3] = {di.c, di.h, di.w};
    cJSON_AddItemToObject(meta, "input", cJSON_CreateIntArray(shp, 3));
    cJSON_AddNumberToObject(meta, "num_classes", di.num_classes);
    cJSON_AddItemToObject(meta, "normalize", pinas_dataset_normalize_json(d));
    cJSON_AddNumberToObject(meta, "accuracy", r.eval_acc);
    cJSON_AddStringToObject(meta, "dataset", di.name);
    cJSON *tr = cJSON_AddObjectToObject(meta, "train");
    cJSON_AddStringToObject(tr, "phase", o->phase ? o->phase : "train");
    cJSON_AddNumberToObject(tr, "epochs", o->epochs);
    cJSON_AddNumberToObject(tr, "batch_size", o->batch_size);
    cJSON_AddNumberToObject(tr, "lr", o->lr);
    cJSON_AddStringToObject(tr, "schedule", o->cosine ? "cosine" : "constant");
    cJSON_AddNumberToObject(tr, "momentum", o->momentum);
    cJSON_AddBoolToObject(tr, "nesterov", o->nesterov);
    cJSON_AddNumberToObject(tr, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(tr, "label_smoothing", o->label_smoothing);
    cJSON_AddBoolToObject(tr, "augment", o->augment);
    if (o->grad_clip > 0) cJSON_AddNumberToObject(tr, "grad_clip", o->grad_clip);
    if (o->teacher && *o->teacher) {
        cJSON_AddStringToObject(tr, "teacher", o->teacher);
        cJSON_AddNumberToObject(tr, "kd_alpha", o->kd_alpha);
        cJSON_AddNumberToObject(tr, "kd_temperature", o->kd_temperature);
    }
    cJSON_AddNumberToObject(tr, "seed", (double)o->seed);
    cJSON_AddStringToObject(tr, "eval_split", split_label(o->eval_split));
    cJSON_AddNumberToObject(tr, "eval_loss", r.eval_loss);
    cJSON_AddNumberToObject(tr, "train_loss", r.train_loss);
    cJSON_AddNumberToObject(tr, "train_acc", r.train_acc);
    if (extra_meta) {
        const cJSON *e;
        cJSON_ArrayForEach(e, extra_meta)
        {
            if (!e->string) continue;
            cJSON_DeleteItemFromObjectCaseSensitive(meta, e->string);
            cJSON_AddItemToObject(meta, e->string, cJSON_Duplicate(e, 1));
        }
    }
    pinas_net *net = pinas_net_clone(arch);
    if (!net) {
        pinas_tensors_free(w);
        cJSON_Delete(meta);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    return pinas_model_create(ctx, net, w, meta, out);
}
