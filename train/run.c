/* Training a model: a decided net to a model with its meta.json (pinas_train_model), and the whole
 * of `pinas train` (pinas_train_run). */
#define _GNU_SOURCE
#include "train_internal.h"

#include <stdlib.h>
#include <string.h>

/* The "train" block of meta.json: the options and the last epoch's results. */
static pinas_status fill_train_meta(pinas_ctx *ctx, const pinas_train_opts *o, const pinas_train_result *r, pinas_meta_train *t)
{
    t->present = 1;
    pinas_status s = pinas_model_meta_set_str(ctx, &t->phase, o->phase ? o->phase : "train");
    if (!s) s = pinas_model_meta_set_str(ctx, &t->eval_split, tr_split_name(o->eval_split));
    if (!s) s = pinas_model_meta_set_str(ctx, &t->teacher, o->teacher && *o->teacher ? o->teacher : NULL);
    if (s) return s;
    t->epochs = o->epochs;
    t->batch_size = o->batch_size;
    t->lr = o->lr;
    t->cosine = o->cosine != 0;
    t->momentum = o->momentum;
    t->nesterov = o->nesterov != 0;
    t->weight_decay = o->weight_decay;
    t->label_smoothing = o->label_smoothing;
    t->augment = o->augment != 0;
    t->grad_clip = o->grad_clip;
    t->kd_alpha = o->kd_alpha;
    t->kd_temperature = o->kd_temperature;
    t->seed = o->seed;
    t->eval_loss = r->eval_loss;
    t->train_loss = r->train_loss;
    t->train_acc = r->train_acc;
    return PINAS_OK;
}

/* The trained model's meta: base's fields, then the data's, the accuracy and the training's. */
static pinas_status trained_meta(pinas_ctx *ctx, const pinas_model_meta *base, const pinas_net *arch, const pinas_dataset *d,
                                 const pinas_train_opts *o, const pinas_train_result *r, pinas_model_meta *m)
{
    pinas_model_meta_init(m);
    pinas_status s = base ? pinas_model_meta_copy(ctx, base, m) : PINAS_OK;
    if (!s) s = pinas_dataset_fill_meta(ctx, d, arch, m);
    if (s) return s;
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    m->accuracy = r->eval_acc;
    if ((s = pinas_model_meta_set_str(ctx, &m->dataset, di.name))) return s;
    return fill_train_meta(ctx, o, r, &m->train);
}

pinas_status pinas_train_model(pinas_ctx *ctx, const pinas_net *arch, const pinas_tensors *init, const pinas_dataset *d,
                               const pinas_train_opts *o, const pinas_model_meta *base, pinas_model **out)
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
    pinas_model_meta meta;
    pinas_net *net = NULL;
    s = trained_meta(ctx, base, arch, d, o, &r, &meta);
    if (!s && !(net = pinas_net_clone(arch))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (s) {
        pinas_tensors_free(w);
        pinas_model_meta_free(&meta);
        return s;
    }
    s = pinas_model_create(ctx, net, w, &meta, out);
    pinas_model_meta_free(&meta);
    return s;
}

/* ------------------------------------------------------------ pinas train */

void pinas_train_run_result_free(pinas_train_run_result *res)
{
    if (!res) return;
    free(res->run_dir);
    free(res->model_dir);
    free(res->net);
    memset(res, 0, sizeof *res);
}

/* The architecture to train: --arch's file or the config's space; every slot decided. */
static pinas_status load_arch(pinas_ctx *ctx, const pinas_config *cfg, const pinas_train_run_opts *o, pinas_net **arch)
{
    pinas_status s = o->arch_path ? pinas_net_load(ctx, o->arch_path, arch) : pinas_net_load_config_space(ctx, cfg, arch);
    if (s) return s;
    if (pinas_net_n_open(*arch))
        return pinas_error(ctx, PINAS_EINVAL,
                           "%s: %s has %d open slots; pinas train needs a decided architecture (pass --arch NET.json, e.g. a search "
                           "candidate's net.json, or decide the slots with \"choices\")",
                           o->arch_path ? o->arch_path : o->config_path, pinas_net_name(*arch), pinas_net_n_open(*arch));
    return PINAS_OK;
}

/* <run_dir>/config.json: the effective config and the git revision. */
static pinas_status write_run_config(pinas_ctx *ctx, const pinas_config *cfg, const char *run_dir)
{
    pinas_status s = pinas_mkdir_p(ctx, run_dir);
    if (s) return s;
    char *cp = pinas_path_join(run_dir, "config.json");
    cJSON *cj = cJSON_Duplicate(pinas_config_json(cfg), 1);
    if (cj) cJSON_AddStringToObject(cj, "git_rev", PINAS_GIT_REV);
    s = cp && cj ? pinas_json_save(ctx, cp, cj) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_Delete(cj);
    free(cp);
    return s;
}

/* What meta.json records besides the training: mpc, the source command and the effective config. */
static pinas_status run_meta(pinas_ctx *ctx, const pinas_config *cfg, const pinas_train_run_opts *o, pinas_model_meta *m)
{
    pinas_model_meta_init(m);
    m->frac_bits = cfg->mpc.frac_bits;
    m->cmp_bits = cfg->mpc.cmp_bits;
    char *src = pinas_strfmt("pinas train %s%s%s (git %s)", o->config_path, o->arch_path ? " --arch " : "", o->arch_path ? o->arch_path : "",
                             PINAS_GIT_REV);
    pinas_status s = pinas_model_meta_set_str(ctx, &m->source, src ? src : "pinas train");
    free(src);
    if (!s && !(m->config = cJSON_Duplicate(pinas_config_json(cfg), 1))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    return s;
}

/* Trains arch on d into res->model_dir. */
static pinas_status train_and_save(pinas_ctx *ctx, const pinas_config *cfg, const pinas_train_run_opts *o, const pinas_net *arch,
                                   const pinas_dataset *d, pinas_dist_group *g, pinas_train_run_result *res)
{
    pinas_train_opts to;
    pinas_train_opts_from_cfg(&cfg->train, &cfg->data, cfg->seed, &to);
    to.run_dir = res->run_dir;
    to.dist = g;
    to.resume = o->resume;
    to.progress = o->progress ? o->progress : stderr;
    pinas_model_meta base;
    pinas_model *m = NULL;
    pinas_status s = run_meta(ctx, cfg, o, &base);
    if (!s) {
        pinas_info(ctx, "training %s on %s for %d epochs (run dir %s)", pinas_net_name(arch), cfg->data.dataset_name, to.epochs, res->run_dir);
        s = pinas_train_model(ctx, arch, NULL, d, &to, &base, &m);
    }
    if (!s && pinas_dist_is_writer(g)) s = pinas_model_save(ctx, res->model_dir, m);
    if (!s) {
        res->accuracy = m->meta.accuracy;
        res->epochs = to.epochs;
    }
    pinas_model_free(m);
    pinas_model_meta_free(&base);
    return s;
}

pinas_status pinas_train_run(pinas_ctx *ctx, const pinas_config *cfg, const pinas_train_run_opts *o, pinas_train_run_result *res)
{
    memset(res, 0, sizeof *res);
    pinas_ctx_set_seed(ctx, cfg->seed);
    pinas_ctx_set_threads(ctx, cfg->threads);
    pinas_dist_set_device(ctx, o->dist, cfg->device);
    pinas_net *arch = NULL;
    pinas_dataset *d = NULL;
    pinas_dist_group *g = NULL;
    pinas_status s = pinas_torch_setup(ctx);
    if (!s && o->dist && o->dist->world > 1) s = pinas_dist_group_create(ctx, o->dist, &g);
    if (!s && g) pinas_info(ctx, "rank %d of %d (%s rendezvous at %s:%d): global batch %d, %d per rank", o->dist->rank, o->dist->world,
                           o->dist->backend, o->dist->addr, o->dist->port, cfg->train.batch_size, cfg->train.batch_size / o->dist->world);
    if (!s) s = load_arch(ctx, cfg, o, &arch);
    if (!s) {
        pinas_data_opts dopts;
        pinas_data_opts_from_cfg(&cfg->data, cfg->seed, &dopts);
        s = pinas_dataset_load(ctx, &dopts, &d);
    }
    if (!s) {
        res->run_dir = pinas_path_join(cfg->out_dir, cfg->name);
        res->model_dir = o->model_dir ? pinas_strdup(o->model_dir) : pinas_path_join(res->run_dir, "model");
        res->net = pinas_strdup(pinas_net_name(arch));
        if (!res->run_dir || !res->model_dir || !res->net) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (!s && pinas_dist_is_writer(g)) s = write_run_config(ctx, cfg, res->run_dir);
    if (!s) s = train_and_save(ctx, cfg, o, arch, d, g, res);
    if (!s) s = pinas_dist_group_close(ctx, g);
    else pinas_dist_group_free(g);
    if (s) pinas_train_run_result_free(res);
    pinas_dataset_free(d);
    pinas_net_free(arch);
    return s;
}
