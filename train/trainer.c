/* The trainer: SGD + cosine, optional distillation, per-epoch evaluation, log.jsonl, atomic checkpoints and resume. */
#define _GNU_SOURCE
#include "train_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pinas_train_opts_from_cfg(const pinas_cfg_train *tr, const pinas_cfg_data *data, uint64_t seed, pinas_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = tr->epochs;
    o->batch_size = tr->batch_size;
    o->lr = tr->lr;
    o->lr_min = 0;
    o->cosine = tr->schedule == PINAS_SCHEDULE_COSINE;
    o->momentum = tr->momentum;
    o->nesterov = tr->nesterov;
    o->weight_decay = tr->weight_decay;
    o->label_smoothing = tr->label_smoothing;
    o->grad_clip = tr->grad_clip;
    o->teacher = tr->teacher && *tr->teacher ? tr->teacher : NULL;
    o->kd_alpha = tr->kd_alpha;
    o->kd_temperature = tr->kd_temperature;
    o->augment = data->augment;
    o->train_split = PINAS_SPLIT_TRAIN_ALL;
    o->eval_split = PINAS_SPLIT_TEST;
    o->seed = seed;
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
                               const pt_tensor *x, const pt_tensor *y, int global, double *loss_sum, int64_t *correct, int64_t *seen)
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
    double v = 0;
    int64_t b = 0, c = 0;
    if (!s && (pt_item(loss, &v) || pt_numel(y, &b))) s = pinas_torch_error(ctx, "loss");
    if (!s) s = pinas_dist_average_grads(ctx, o->dist, pinas_tnet_weights(t), pinas_tnet_n_weights(t), b, global);
    if (!s) s = pinas_optim_step(ctx, opt);
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

/* One run of the trainer: what pinas_train_tnet sets up, uses and releases. */
typedef struct {
    pinas_tnet *t;
    const pinas_dataset *d;
    const pinas_train_opts *o;
    const char *phase;
    pinas_loader *l;
    pinas_optim *opt;
    pinas_tnet *teacher;    /* KD teacher, or NULL */
    pinas_model *tm;        /* its model */
    pinas_progress *bar;
    char *ckpt_dir, *ckpt, *log, *ckpt_name;
    int start, steps;       /* first epoch to run (> 0 when resumed); batches per epoch */
    int64_t total;          /* steps of the whole schedule */
} tr_session;

/* Loads the KD teacher named by the options, when there is one. */
static pinas_status open_teacher(pinas_ctx *ctx, tr_session *ss)
{
    const pinas_train_opts *o = ss->o;
    if (!o->teacher || !*o->teacher) return PINAS_OK;
    pinas_status s = pinas_model_load(ctx, o->teacher, &ss->tm);
    if (s) return pinas_error_prefix(ctx, s, "teacher");
    if ((s = check_data(ctx, ss->tm->net, ss->d)) || (s = pinas_tnet_from_model(ctx, ss->tm, &ss->teacher)))
        return pinas_error_prefix(ctx, s, "teacher %s", o->teacher);
    return PINAS_OK;
}

/* Prepares the run dir's checkpoint and log paths and, when resuming, restores the checkpoint. */
static pinas_status open_checkpoint(pinas_ctx *ctx, tr_session *ss)
{
    const pinas_train_opts *o = ss->o;
    if (!o->run_dir) return PINAS_OK;
    ss->ckpt_dir = pinas_path_join(o->run_dir, "checkpoint");
    ss->ckpt_name = pinas_strfmt("%s.safetensors", ss->phase);
    ss->log = pinas_path_join(o->run_dir, "log.jsonl");
    if (!ss->ckpt_dir || !ss->ckpt_name || !ss->log || !(ss->ckpt = pinas_path_join(ss->ckpt_dir, ss->ckpt_name)))
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = pinas_dist_is_writer(o->dist) ? pinas_mkdir_p(ctx, ss->ckpt_dir) : PINAS_OK;
    if (s || !o->resume || !pinas_path_exists(ss->ckpt)) return s;
    if ((s = pinas_checkpoint_load(ctx, ss->ckpt, ss->t, &ss->opt, 1, &ss->start, NULL))) return s;
    if (ss->start > o->epochs)
        return pinas_error(ctx, PINAS_EINVAL, "%s: holds epoch %d, more than the %d epochs of this run", ss->ckpt, ss->start, o->epochs);
    pinas_info(ctx, "%s: resuming after epoch %d of %d (%s)", ss->phase, ss->start, o->epochs, ss->ckpt);
    return PINAS_OK;
}

/* The loader, the SGD optimizer, the teacher and the checkpoint, in that order. */
static pinas_status open_session(pinas_ctx *ctx, tr_session *ss)
{
    const pinas_train_opts *o = ss->o;
    pinas_loader_opts lo = {.batch_size = o->batch_size, .shuffle = 1, .augment = o->augment, .drop_last = 1, .seed = o->seed,
                            .rank = pinas_dist_rank(o->dist), .world = pinas_dist_world(o->dist)};
    pinas_status s = pinas_loader_create(ctx, ss->d, o->train_split, &lo, &ss->l);
    if (s) return s;
    pinas_sgd_opts so = {.lr = o->lr, .momentum = o->momentum, .weight_decay = o->weight_decay, .nesterov = o->nesterov && o->momentum > 0,
                         .grad_clip = o->grad_clip};
    if ((s = pinas_optim_sgd(ctx, pinas_tnet_weights(ss->t), pinas_tnet_n_weights(ss->t), &so, &ss->opt))) return s;
    if ((s = open_teacher(ctx, ss))) return s;
    return open_checkpoint(ctx, ss);
}

static void close_session(tr_session *ss)
{
    pinas_loader_free(ss->l);
    pinas_optim_free(ss->opt);
    pinas_tnet_free(ss->teacher);
    pinas_model_free(ss->tm);
    free(ss->ckpt_dir);
    free(ss->ckpt_name);
    free(ss->ckpt);
    free(ss->log);
}

/* Trains epoch e over its batches (with the schedule's lr per step); *lr gets the last lr used. */
static pinas_status run_epoch(pinas_ctx *ctx, tr_session *ss, int e, pinas_train_result *res, double *lr)
{
    const pinas_train_opts *o = ss->o;
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    pinas_status s = PINAS_OK;
    pinas_loader_start_epoch(ss->l, e);
    for (int b = 0; b < ss->steps; b++) {
        int64_t step = (int64_t)e * ss->steps + b;
        *lr = o->cosine ? pinas_cosine_lr(o->lr, o->lr_min, step, ss->total) : o->lr;
        if ((s = pinas_optim_set_lr(ctx, ss->opt, -1, *lr))) return s;
        pt_tensor *x = NULL, *y = NULL;
        if ((s = pinas_loader_next(ctx, ss->l, &x, &y))) return s;
        if (!x) break;
        s = train_step(ctx, ss->t, ss->teacher, ss->opt, o, x, y, pinas_loader_last_global(ss->l), &loss_sum, &correct, &seen);
        pt_free(x);
        pt_free(y);
        if (s) return s;
        if (ss->bar) {
            char st[128];
            snprintf(st, sizeof st, "epoch %d/%d loss %.4f acc %.1f%%", e + 1, o->epochs, loss_sum / (double)seen,
                     100.0 * (double)correct / (double)seen);
            pinas_progress_update(ss->bar, step + 1 - (int64_t)ss->steps * ss->start, st);
        }
    }
    double sums[3] = {loss_sum, (double)correct, (double)seen};
    if ((s = pinas_dist_sum(ctx, o->dist, sums, 3))) return s;
    loss_sum = sums[0];
    correct = (int64_t)sums[1];
    seen = (int64_t)sums[2];
    res->train_loss = seen ? loss_sum / (double)seen : 0;
    res->train_acc = seen ? (double)correct / (double)seen : 0;
    return PINAS_OK;
}

/* The log.jsonl line of an epoch. */
static pinas_status log_epoch(pinas_ctx *ctx, const tr_session *ss, int e, double lr, const pinas_train_result *res, double seconds)
{
    const pinas_train_opts *o = ss->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "phase", ss->phase);
    cJSON_AddNumberToObject(j, "epoch", e + 1);
    cJSON_AddNumberToObject(j, "epochs", o->epochs);
    cJSON_AddNumberToObject(j, "lr", lr);
    cJSON_AddNumberToObject(j, "train_loss", res->train_loss);
    cJSON_AddNumberToObject(j, "train_acc", res->train_acc);
    cJSON_AddStringToObject(j, "eval_split", tr_split_name(o->eval_split));
    cJSON_AddNumberToObject(j, "eval_loss", res->eval_loss);
    cJSON_AddNumberToObject(j, "eval_acc", res->eval_acc);
    cJSON_AddNumberToObject(j, "seconds", seconds);
    pinas_status s = pinas_train_log_append(ctx, ss->log, j);
    cJSON_Delete(j);
    return s;
}

/* Every epoch from ss->start on: train, evaluate, checkpoint, log. */
static pinas_status run_epochs(pinas_ctx *ctx, tr_session *ss, pinas_train_result *res)
{
    const pinas_train_opts *o = ss->o;
    pinas_status s = PINAS_OK;
    double lr = o->lr;
    for (int e = ss->start; e < o->epochs; e++) {
        double te = pinas_now();
        if ((s = run_epoch(ctx, ss, e, res, &lr))) return s;
        if ((s = pinas_evaluate(ctx, ss->t, ss->d, o->eval_split, o->batch_size, &res->eval_acc, &res->eval_loss))) return s;
        res->epochs_run++;
        int writer = pinas_dist_is_writer(o->dist);
        if (writer && ss->ckpt && (s = pinas_checkpoint_save(ctx, ss->ckpt, ss->t, &ss->opt, 1, e + 1, NULL))) return s;
        if (writer && ss->log && (s = log_epoch(ctx, ss, e, lr, res, pinas_now() - te))) return s;
        pinas_debug(ctx, "%s: epoch %d/%d loss %.4f acc %.4f %s acc %.4f", ss->phase, e + 1, o->epochs, res->train_loss, res->train_acc,
                    tr_split_name(o->eval_split), res->eval_acc);
    }
    if (res->epochs_run == 0) s = pinas_evaluate(ctx, ss->t, ss->d, o->eval_split, o->batch_size, &res->eval_acc, &res->eval_loss);
    return s;
}

pinas_status pinas_train_tnet(pinas_ctx *ctx, pinas_tnet *t, const pinas_dataset *d, const pinas_train_opts *o, pinas_train_result *result)
{
    pinas_train_result res = {0};
    tr_session ss = {.t = t, .d = d, .o = o, .phase = o->phase && *o->phase ? o->phase : "train"};
    if (o->epochs < 0 || o->batch_size < 1 || !(o->lr >= 0))
        return pinas_error(ctx, PINAS_EINVAL, "%s: epochs must be >= 0, batch size >= 1 and lr >= 0 (got %d, %d, %g)", ss.phase, o->epochs,
                           o->batch_size, o->lr);
    pinas_status s = check_data(ctx, pinas_tnet_net(t), d);
    if (s) return s;
    int n_alpha = pinas_tnet_n_alphas(t);
    double t0 = pinas_now();
    if (!(s = open_session(ctx, &ss))) {
        /* The trainer moves weights only: alphas (of a supernet) keep their values and get no gradients. */
        for (int k = 0; k < n_alpha; k++) pt_set_requires_grad(pinas_tnet_alpha(t, k, NULL), 0);
        ss.steps = pinas_loader_n_batches(ss.l);
        if (o->max_steps > 0 && o->max_steps < ss.steps) ss.steps = o->max_steps;
        ss.total = (int64_t)ss.steps * o->epochs;
        ss.bar = pinas_progress_create(ctx, o->progress ? o->progress : stderr, ss.phase, ss.total - (int64_t)ss.steps * ss.start);
        s = run_epochs(ctx, &ss, &res);
    }
    if (ss.bar) {
        if (!s) {
            char st[128];
            snprintf(st, sizeof st, "loss %.4f acc %.1f%% %s acc %.1f%%", res.train_loss, 100 * res.train_acc, tr_split_name(o->eval_split),
                     100 * res.eval_acc);
            pinas_progress_update(ss.bar, ss.total - (int64_t)ss.steps * ss.start, st);
        }
        pinas_progress_finish(ss.bar);
    }
    for (int k = 0; k < n_alpha; k++) pt_set_requires_grad(pinas_tnet_alpha(t, k, NULL), 1);
    res.seconds = pinas_now() - t0;
    if (result) *result = res;
    close_session(&ss);
    return s;
}
