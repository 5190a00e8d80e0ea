/* The hardware-aware search driver: a run's setup (config, data, LUT), warm-up, one bi-level search
 * per sweep value with its candidate, the baselines, the run's Pareto front; fresh or resumed. The
 * phases live in bilevel.c (supernet training), finish.c (one point of the front) and baselines.c. */
#define _GNU_SOURCE
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

FILE *nas_progress_out(const nas_run *r) { return r->opts && r->opts->progress ? r->opts->progress : stderr; }

pinas_status nas_log_line(pinas_ctx *ctx, const nas_run *r, const cJSON *line) { return pinas_train_log_append(ctx, r->log_path, line); }

void nas_train_opts(const nas_run *r, pinas_train_opts *o, const char *phase)
{
    pinas_train_opts_from_cfg(&r->cfg->train, &r->cfg->data, r->cfg->seed, o);
    o->run_dir = r->run_dir;
    o->phase = phase;
    o->resume = 1;
    o->progress = nas_progress_out(r);
    o->seed = r->seed;
    o->dist = r->dist;
}

const double *nas_sweep_values(const nas_run *r, int *n)
{
    const pinas_cfg_search *se = &r->cfg->search;
    *n = r->multiplicative ? se->n_targets : se->n_lambdas;
    return r->multiplicative ? se->targets_ms : se->lambdas;
}

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

static pinas_status write_config(pinas_ctx *ctx, const nas_run *r)
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

/* ------------------------------------------------------------ one candidate */

/* The candidate of sweep value k: bi-level search from the warmed-up supernet, argmax derivation,
 * then nas_finish_arch. Skipped when its metrics.json exists. */
static pinas_status sweep_one(pinas_ctx *ctx, nas_run *r, int k, double value)
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
    if (!s) s = nas_bilevel(ctx, r, k, value, t, &summary);
    double h;
    if (!s) s = nas_alpha_state(ctx, r, t, &h, &arch, NULL);
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
    nas_point pt = {.kind = "candidate", .k = k, .value = value, .search = summary, .dir = dir};
    if (!s) s = nas_finish_arch(ctx, r, arch, init, &pt);
    pinas_tensors_free(init);
    pinas_net_free(arch);
    cJSON_Delete(summary);
out:
    free(mp);
    free(dir);
    return s;
}

/* ------------------------------------------------------------ the run */

static pinas_status check_data(pinas_ctx *ctx, const nas_run *r)
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
static pinas_status all_relu_ms(pinas_ctx *ctx, const nas_run *r, double *ms)
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

/* The LUT of the search profile, built into the run dir unless there, then read back from it: every
 * run - fresh or resumed - uses the numbers in that file (its JSON is in ms: a fresh run using its
 * own seconds would differ from a resumed one in the last bit). */
static pinas_status load_lut(pinas_ctx *ctx, nas_run *r)
{
    const pinas_config *cfg = r->cfg;
    char *lp = pinas_path_join(r->run_dir, "lut.json");
    pinas_status s = PINAS_OK;
    /* latency.metric: what the LUT prices (online, total, or e2e under the storage budget and rate). */
    pinas_cost_metric metric = {.metric = cfg->latency.metric, .client_storage_bytes = cfg->latency.client_storage_bytes,
                                .rate_per_s = cfg->latency.rate_per_min / 60, .seed = cfg->seed};
    /* Ranks > 0 never write the run dir: they build the same table into a private file and read
     * that back (the same bits as rank 0's lut.json). */
    char *own = NULL;
    if (!pinas_dist_is_writer(r->dist) && !pinas_path_exists(lp)) {
        const char *tmp = getenv("TMPDIR");
        own = pinas_strfmt("%s/pinas-lut-rank%d-%ld.json", tmp && *tmp ? tmp : "/tmp", pinas_dist_rank(r->dist), (long)getpid());
        free(lp);
        lp = own ? pinas_strdup(own) : NULL;
        if (!lp) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (!s && !pinas_path_exists(lp)) {
        pinas_cost_hw *hw = NULL;
        pinas_cost_link *link = NULL;
        pinas_mpc_params p;
        nas_mpc_params_from_config(&cfg->mpc, &p);
        s = pinas_cost_hw_load(ctx, cfg->search.hw, &hw);
        char other[512]; /* a cpu profile of another CPU model prices this machine's runtime wrongly; rank 0 says so */
        if (!s && pinas_dist_is_writer(r->dist) &&
            pinas_machine_mismatch(pinas_cost_hw_name(hw), pinas_cost_hw_cpu_model(hw), pinas_cost_hw_fitted(hw), other, sizeof other))
            pinas_warn(ctx, "%s", other);
        if (!s) s = pinas_cost_link_load(ctx, cfg->search.net, &link);
        pinas_cost_lut *built = NULL;
        if (!s) s = pinas_cost_lut_build_metric(ctx, r->space, hw, link, &p, &metric, &built);
        if (!s) s = pinas_cost_lut_save(ctx, built, lp);
        pinas_cost_lut_free(built);
        pinas_cost_hw_free(hw);
        pinas_cost_link_free(link);
    }
    if (!s) s = pinas_cost_lut_load(ctx, lp, &r->lut);
    if (!s) s = pinas_cost_lut_check(ctx, r->lut, r->space);
    if (!s && (s = pinas_cost_lut_check_metric(ctx, r->lut, &metric))) s = pinas_error_prefix(ctx, s, "%s", lp);
    if (own) unlink(own);
    free(own);
    free(lp);
    return s;
}

static pinas_status setup(pinas_ctx *ctx, nas_run *r)
{
    const pinas_config *cfg = r->cfg;
    r->seed = cfg->seed;
    pinas_ctx_set_seed(ctx, r->seed);
    pinas_ctx_set_threads(ctx, cfg->threads);
    pinas_dist_set_device(ctx, r->opts ? r->opts->dist : NULL, cfg->device);
    r->name = cfg->name;
    r->multiplicative = cfg->search.loss == PINAS_LOSS_MULTIPLICATIVE;
    pinas_status s = pinas_torch_setup(ctx);
    if (s) return s;
    r->log_path = pinas_path_join(r->run_dir, "log.jsonl");
    r->ckpt_dir = pinas_path_join(r->run_dir, "checkpoint");
    if (pinas_dist_is_writer(r->dist) && (s = pinas_mkdir_p(ctx, r->ckpt_dir))) return s;
    pinas_data_opts dopts;
    pinas_data_opts_from_cfg(&cfg->data, cfg->seed, &dopts);
    if ((s = pinas_dataset_load(ctx, &dopts, &r->data))) return s;
    if ((s = check_data(ctx, r))) return s;
    if ((s = load_lut(ctx, r))) return s;
    r->ref_ms = cfg->search.ref_ms;
    if (r->ref_ms <= 0 && (s = all_relu_ms(ctx, r, &r->ref_ms))) return s;
    if (!(r->ref_ms > 0)) return pinas_error(ctx, PINAS_EINVAL, "search.ref_ms: the all-ReLU latency is %g ms; set a positive ref_ms", r->ref_ms);
    return PINAS_OK;
}

/* The naive baselines of every candidate. A naive architecture equal to the all-ReLU or all-poly
 * baseline is that baseline: not trained twice. */
static pinas_status naive_all(pinas_ctx *ctx, nas_run *r, int n_candidates)
{
    pinas_status s = PINAS_OK;
    cJSON *seen = cJSON_CreateObject();
    static const char *const kinds[] = {"all-relu", "all-poly"};
    for (int q = 0; q < 2; q++) {
        char *mp = pinas_strfmt("%s/baselines/%s/metrics.json", r->run_dir, kinds[q]);
        pinas_net *b = NULL;
        if (pinas_path_exists(mp) && !pinas_nas_baseline(ctx, r->space, kinds[q], &b)) {
            char *key = nas_arch_key(b);
            cJSON_AddStringToObject(seen, key, kinds[q]);
            free(key);
        }
        pinas_error_clear(ctx);
        pinas_net_free(b);
        free(mp);
    }
    for (int q = 0; q < n_candidates && !s; q++) s = nas_naive_for(ctx, r, q, seen);
    cJSON_Delete(seen);
    return s;
}

/* Data-parallel: the supernet phases (warm-up done, then every sweep value's bi-level search) in
 * lock-step on every rank, rank 0 checkpointing them; then the group is closed (a last barrier) and
 * *others_done is set on ranks > 0, whose part of the run is over. Rank 0 goes on alone: each
 * search resumes from its final checkpoint and the candidates are fine-tuned as without ranks. */
static pinas_status dist_supernet_phase(pinas_ctx *ctx, nas_run *r, const double *vals, int n_vals, int *others_done)
{
    pinas_status s = PINAS_OK;
    int rank = pinas_dist_rank(r->dist);
    for (int k = 0; k < n_vals && !s; k++) {
        char *mp = pinas_strfmt("%s/candidates/%d/metrics.json", r->run_dir, k);
        int finished = mp && pinas_path_exists(mp);
        free(mp);
        if (finished) continue;
        pinas_tnet *t = NULL;
        cJSON *summary = NULL;
        s = pinas_tnet_create(ctx, r->space, r->seed, &t);
        if (!s) s = pinas_tnet_load(ctx, t, r->warm, 1);
        if (!s) s = nas_bilevel(ctx, r, k, vals[k], t, &summary);
        cJSON_Delete(summary);
        pinas_tnet_free(t);
    }
    double comm = pinas_dist_comm_seconds(r->dist);
    if (s) pinas_dist_group_free(r->dist);
    else s = pinas_dist_group_close(ctx, r->dist);
    if (!s) pinas_info(ctx, "rank %d: data-parallel supernet phases done (%.1f s in collectives)%s", rank, comm,
                       rank ? "; rank 0 finishes the candidates" : "");
    r->dist = NULL;
    *others_done = !s && rank > 0;
    return s;
}

static pinas_status run_all(pinas_ctx *ctx, nas_run *r)
{
    /* search.method "knapsack" (knapsack_search.c): its own space and candidates, the same rest. */
    int knapsack = r->cfg->search.method == PINAS_SEARCH_KNAPSACK;
    pinas_status s = knapsack ? nas_knapsack_space(ctx, r) : PINAS_OK;
    if (!s) s = setup(ctx, r);
    if (!s && knapsack) s = nas_knapsack_check(ctx, r);
    if (!s) s = nas_warmup(ctx, r);
    int n_vals = 0;
    const double *vals = nas_sweep_values(r, &n_vals);
    if (!s && r->dist) {
        int done = 0;
        s = dist_supernet_phase(ctx, r, vals, n_vals, &done);
        if (done) return PINAS_OK;
    }
    /* With distillation the all-ReLU baseline is the teacher, so it is trained first. */
    int distill = r->cfg->finetune.distill;
    if (!s && distill) s = nas_baseline_one(ctx, r, "all-relu");
    int k = 0;
    if (!s && knapsack) s = nas_knapsack_run(ctx, r, &k);
    for (int i = 0; i < n_vals && !s && !knapsack; i++) s = sweep_one(ctx, r, k++, vals[i]);
    if (!s && r->cfg->search.baselines) {
        if (!distill) s = nas_baseline_one(ctx, r, "all-relu");
        if (!s) s = nas_baseline_one(ctx, r, "all-poly");
    }
    if (!s) s = naive_all(ctx, r, k);
    if (!s) {
        pinas_pareto *p = pinas_pareto_create();
        s = p ? pinas_pareto_load_run(ctx, p, r->run_dir) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        if (!s) s = nas_pareto_compute_own(ctx, p, r->cfg); /* under latency.metric */
        char *title = pinas_strfmt("%s: latency-accuracy Pareto front", r->name);
        if (!s) s = pinas_pareto_save(ctx, p, r->run_dir, title);
        free(title);
        pinas_pareto_free(p);
    }
    return s;
}

static void run_free(nas_run *r)
{
    free(r->run_dir);
    free(r->log_path);
    free(r->ckpt_dir);
    pinas_dataset_free(r->data);
    pinas_net_free(r->space);
    pinas_cost_lut_free(r->lut);
    pinas_tensors_free(r->warm);
    pinas_dist_group_free(r->dist);
}

static int opts_world(const pinas_search_opts *o) { return o && o->dist && o->dist->world > 1 ? o->dist->world : 1; }

/* The config the run uses: cfg with the world size recorded and, for --sweep-index, only that sweep
 * value under the name <name>-sweep<I> (baselines in sweep 0 only). *out: new, or NULL when cfg is
 * used as it is. */
static pinas_status derived_config(pinas_ctx *ctx, const pinas_config *cfg, const pinas_search_opts *o, pinas_config **out)
{
    *out = NULL;
    int world = opts_world(o), one = o && o->sweep_only;
    if (!one && world == cfg->dist.world_size) return PINAS_OK;
    int mult = cfg->search.loss == PINAS_LOSS_MULTIPLICATIVE;
    int nv = mult ? cfg->search.n_targets : cfg->search.n_lambdas;
    if (one && (o->sweep_index < 0 || o->sweep_index >= nv))
        return pinas_error(ctx, PINAS_EINVAL, "--sweep-index %d: %s has %d sweep values (%s), so the index runs from 0 to %d", o->sweep_index,
                           cfg->source && *cfg->source ? cfg->source : "the config", nv, mult ? "search.targets_ms" : "search.lambdas", nv - 1);
    char *sets[4] = {pinas_strfmt("dist.world_size=%d", world), NULL, NULL, NULL};
    int n = 1;
    if (one) {
        double v = mult ? cfg->search.targets_ms[o->sweep_index] : cfg->search.lambdas[o->sweep_index];
        sets[n++] = pinas_strfmt("%s=[%.17g]", mult ? "search.targets_ms" : "search.lambdas", v);
        sets[n++] = pinas_strfmt("name=\"%s-sweep%d\"", cfg->name, o->sweep_index);
        if (o->sweep_index > 0) sets[n++] = pinas_strdup("search.baselines=false");
    }
    pinas_status s = PINAS_OK;
    for (int i = 0; i < n; i++)
        if (!sets[i]) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_config_from_json(ctx, pinas_config_json(cfg), cfg->source, (const char *const *)sets, n, out);
    for (int i = 0; i < n; i++) free(sets[i]);
    return s;
}

/* Joins the data-parallel group of the options, if any. */
static pinas_status join_group(pinas_ctx *ctx, nas_run *r, const pinas_search_opts *o)
{
    if (opts_world(o) < 2) return PINAS_OK;
    pinas_status s = pinas_dist_group_create(ctx, o->dist, &r->dist);
    if (!s)
        pinas_info(ctx, "rank %d of %d (%s rendezvous at %s:%d, from %s): global batch %d, about %d per rank", o->dist->rank, o->dist->world,
                   o->dist->backend, o->dist->addr, o->dist->port, o->dist->source, r->cfg->train.batch_size,
                   r->cfg->train.batch_size / o->dist->world);
    return s;
}

pinas_status pinas_nas_search(pinas_ctx *ctx, const pinas_config *cfg_in, const pinas_search_opts *o, char **run_dir)
{
    if (run_dir) *run_dir = NULL;
    pinas_config *own = NULL;
    pinas_status s = derived_config(ctx, cfg_in, o, &own);
    if (s) return s;
    const pinas_config *cfg = own ? own : cfg_in;
    nas_run r = {.cfg = cfg, .opts = o};
    s = pinas_net_load_config_space(ctx, cfg, &r.space);
    if (!s) s = join_group(ctx, &r, o);
    r.run_dir = pinas_path_join(cfg->out_dir, cfg->name);
    r.name = cfg->name;
    int writer = pinas_dist_is_writer(r.dist);
    char *cp = pinas_path_join(r.run_dir, "config.json");
    if (!s && writer && pinas_path_exists(cp))
        s = pinas_error(ctx, PINAS_EINVAL, "%s already holds a run; resume it with `pinas search --resume %s`, or pick another name (--set name=...)",
                        r.run_dir, r.run_dir);
    free(cp);
    if (!s && writer) s = pinas_mkdir_p(ctx, r.run_dir);
    if (!s && writer) s = write_config(ctx, &r);
    if (!s) s = run_all(ctx, &r);
    if (run_dir) *run_dir = pinas_strdup(r.run_dir);
    run_free(&r);
    pinas_config_free(own);
    return s;
}

pinas_status pinas_nas_resume(pinas_ctx *ctx, const char *run_dir, const pinas_search_opts *o)
{
    pinas_config *cfg = NULL;
    pinas_status s = pinas_nas_run_config(ctx, run_dir, &cfg);
    if (s) return s;
    nas_run r = {.cfg = cfg, .opts = o};
    r.run_dir = pinas_strdup(run_dir);
    int world = opts_world(o);
    if (world == cfg->dist.world_size)
        pinas_info(ctx, "%s: resuming with %d process%s, as the run was started", run_dir, world, world == 1 ? "" : "es");
    else
        pinas_warn(ctx, "%s: the run was started with %d process%s and resumes with %d: the global batch (train.batch_size %d) is the "
                   "same, but per-rank batch-norm statistics and the order of sums differ, so it will not match an uninterrupted run bit for bit",
                   run_dir, cfg->dist.world_size, cfg->dist.world_size == 1 ? "" : "es", world, cfg->train.batch_size);
    s = pinas_net_load_config_space(ctx, cfg, &r.space);
    if (!s) s = join_group(ctx, &r, o);
    if (!s) s = run_all(ctx, &r);
    run_free(&r);
    pinas_config_free(cfg);
    return s;
}
