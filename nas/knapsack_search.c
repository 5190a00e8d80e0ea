/* The knapsack search method (Gorski et al.'s patch-ReLU seed): train the all-ReLU net, measure per
 * act slot and option the distortion of changing that slot alone and its LUT cost, then per latency
 * budget one option per slot by the exact multiple-choice knapsack, fine-tuned like every point. */
#define _GNU_SOURCE
#include "pinas_knapsack.h"
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DISTORTION_FORMAT "pinas-knapsack-distortion/1"

/* What the solver needs of the run: the act slots (groups) with their options' costs and measured
 * distortions, and the cost of everything else. */
typedef struct {
    int n_slots;           /* LUT slots */
    int *base;             /* per LUT slot: the all-ReLU choice (relu / maxpool) */
    int n_groups;          /* open act slots */
    int *slot;             /* per group: its LUT slot */
    int *n_items;          /* per group: its options (the node's candidates, in order) */
    int n_total;
    double *cost, *value;  /* per option, group by group: LUT ms and distortion */
    double fixed_ms;       /* the LUT's fixed part plus every other slot at its base choice */
    double base_loss;      /* the all-ReLU net's loss on the held-out images */
    double measure_s;      /* wall time of the measurement */
    int images;            /* held-out images measured on */
} ks_table;

static void table_free(ks_table *t)
{
    free(t->base);
    free(t->slot);
    free(t->n_items);
    free(t->cost);
    free(t->value);
}

/* ------------------------------------------------------------ the space */

pinas_status nas_knapsack_space(pinas_ctx *ctx, nas_run *r)
{
    const pinas_cfg_search *se = &r->cfg->search;
    if (se->n_knapsack_candidates > PINAS_MAX_CANDS)
        return pinas_error(ctx, PINAS_EINVAL, "search.knapsack_candidates: at most %d options, got %d", PINAS_MAX_CANDS, se->n_knapsack_candidates);
    int has_relu = 0;
    for (int i = 0; i < se->n_knapsack_candidates; i++) {
        pinas_cand c;
        if (pinas_cand_parse(se->knapsack_candidates[i], &c) || c.kind == PINAS_CAND_MAXPOOL || c.kind == PINAS_CAND_AVGPOOL)
            return pinas_error(ctx, PINAS_EINVAL, "search.knapsack_candidates: \"%s\" is not an activation (relu, patch_relu:HxW, identity, poly)",
                               se->knapsack_candidates[i]);
        has_relu |= c.kind == PINAS_CAND_RELU;
    }
    if (!has_relu)
        return pinas_error(ctx, PINAS_EINVAL, "search.knapsack_candidates: \"relu\" must be among the options (the all-ReLU net is the reference)");
    /* The options replace every open act slot's candidates: the LUT prices them and the warm-up trains them. */
    cJSON *j = pinas_net_to_json(r->space), *nodes = cJSON_GetObjectItemCaseSensitive(j, "nodes"), *o;
    cJSON_ArrayForEach(o, nodes)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        int i = cJSON_IsString(id) ? pinas_net_find(r->space, id->valuestring) : -1;
        const pinas_node *nd = i >= 0 ? pinas_net_node(r->space, i) : NULL;
        if (!nd || nd->op != PINAS_OP_ACT || !pinas_node_is_open(nd)) continue;
        cJSON *cs = cJSON_CreateArray();
        for (int q = 0; q < se->n_knapsack_candidates; q++) cJSON_AddItemToArray(cs, cJSON_CreateString(se->knapsack_candidates[q]));
        cJSON_ReplaceItemInObjectCaseSensitive(o, "candidates", cs);
    }
    pinas_net *ks = NULL;
    pinas_status s = pinas_net_from_json(ctx, j, "the knapsack space (search.knapsack_candidates in every open act slot)", &ks);
    cJSON_Delete(j);
    if (s) return s;
    pinas_net_free(r->space);
    r->space = ks;
    return PINAS_OK;
}

/* The groups, costs and base choices from the LUT (no distortions yet). */
static pinas_status table_init(pinas_ctx *ctx, const nas_run *r, ks_table *t)
{
    memset(t, 0, sizeof *t);
    int n = pinas_cost_lut_n_slots(r->lut);
    t->n_slots = n;
    t->base = calloc((size_t)n + 1, sizeof *t->base);
    t->slot = calloc((size_t)n + 1, sizeof *t->slot);
    t->n_items = calloc((size_t)n + 1, sizeof *t->n_items);
    t->cost = calloc((size_t)n * PINAS_MAX_CANDS + 1, sizeof *t->cost);
    t->value = calloc((size_t)n * PINAS_MAX_CANDS + 1, sizeof *t->value);
    if (!t->base || !t->slot || !t->n_items || !t->cost || !t->value) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    t->fixed_ms = pinas_cost_lut_fixed_ms(r->lut);
    for (int k = 0; k < n; k++) {
        const pinas_node *nd = pinas_net_node(r->space, pinas_cost_lut_slot_node(r->lut, k));
        int act = nd->op == PINAS_OP_ACT, j = pinas_node_find_cand(nd, act ? PINAS_CAND_RELU : PINAS_CAND_MAXPOOL);
        /* A pool slot without maxpool stays on its costliest candidate, as the all-ReLU reference does. */
        if (j < 0) {
            j = 0;
            for (int q = 1; q < nd->n_cands; q++)
                if (pinas_cost_lut_cand_ms(r->lut, k, q) > pinas_cost_lut_cand_ms(r->lut, k, j)) j = q;
        }
        t->base[k] = j;
        if (!act) {
            t->fixed_ms += pinas_cost_lut_cand_ms(r->lut, k, j);
            continue;
        }
        int g = t->n_groups++;
        t->slot[g] = k;
        t->n_items[g] = pinas_cost_lut_n_cands(r->lut, k);
        for (int q = 0; q < t->n_items[g]; q++) t->cost[t->n_total + q] = pinas_cost_lut_cand_ms(r->lut, k, q);
        t->n_total += t->n_items[g];
    }
    return PINAS_OK;
}

pinas_status nas_knapsack_check(pinas_ctx *ctx, const nas_run *r)
{
    /* The measurement and the per-budget points are not shared out over ranks (yet). */
    if (r->dist) return pinas_error(ctx, PINAS_EINVAL, "search.method \"knapsack\" runs in one process: run it without data parallelism");
    ks_table t;
    pinas_status s = table_init(ctx, r, &t);
    double cheapest = t.fixed_ms;
    for (int g = 0, off = 0; !s && g < t.n_groups; off += t.n_items[g++]) {
        double c = t.cost[off];
        for (int i = 1; i < t.n_items[g]; i++) c = fmin(c, t.cost[off + i]);
        cheapest += c;
    }
    const pinas_cfg_search *se = &r->cfg->search;
    for (int i = 0; !s && i < se->n_budgets; i++)
        if (se->budgets_ms[i] < cheapest)
            s = pinas_error(ctx, PINAS_EINVAL,
                            "search.budgets_ms[%d]: %g ms is below the cheapest architecture of the space by %g ms (%g ms under %s/%s: every act "
                            "slot on its cheapest option of search.knapsack_candidates, the rest fixed at %g ms)",
                            i, se->budgets_ms[i], cheapest - se->budgets_ms[i], cheapest, pinas_cost_lut_hw(r->lut), pinas_cost_lut_link(r->lut),
                            t.fixed_ms);
    if (!s && t.n_groups == 0) s = pinas_error(ctx, PINAS_EINVAL, "search.method \"knapsack\": the space has no open act slot to choose for");
    table_free(&t);
    return s;
}

/* The architecture with choices ch[k] in LUT slot k, named `name` (NULL = the space's). New. */
static pinas_status arch_of(pinas_ctx *ctx, const nas_run *r, const int *ch, const char *name, pinas_net **out)
{
    *out = NULL;
    pinas_net *a = pinas_net_clone(r->space);
    pinas_status s = a ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; !s && k < pinas_cost_lut_n_slots(r->lut); k++) s = pinas_net_decide(ctx, a, pinas_cost_lut_slot_node(r->lut, k), ch[k]);
    if (!s && name) {
        cJSON *j = pinas_net_to_json(a);
        cJSON_ReplaceItemInObjectCaseSensitive(j, "name", cJSON_CreateString(name));
        pinas_net_free(a);
        a = NULL;
        s = pinas_net_from_json(ctx, j, "knapsack architecture", &a);
        cJSON_Delete(j);
    }
    if (s) pinas_net_free(a);
    else *out = a;
    return s;
}

/* A tnet of arch with the trained all-ReLU weights; a poly option starts from its initial values
 * (the all-ReLU net has no poly parameters). New. */
static pinas_status tnet_from_base(pinas_ctx *ctx, const nas_run *r, const pinas_net *arch, const pinas_tensors *w, pinas_tnet **out)
{
    int strict = 1;
    for (int i = 0; i < pinas_net_n_nodes(arch); i++) {
        const pinas_cand *c = pinas_node_chosen(pinas_net_node(arch, i));
        if (pinas_net_node(arch, i)->op == PINAS_OP_ACT && c && c->kind == PINAS_CAND_POLY) strict = 0;
    }
    pinas_status s = pinas_tnet_create(ctx, arch, r->seed, out);
    if (!s) s = pinas_tnet_load(ctx, *out, w, strict);
    if (s) {
        pinas_tnet_free(*out);
        *out = NULL;
    }
    return s;
}

/* ------------------------------------------------------------ the all-ReLU net */

/* The all-ReLU architecture of the space trained from the warmed-up supernet's weights on the train
 * split for search.epochs epochs (evaluated on the val split): knapsack/base/, reloaded when there
 * (an interrupted training resumes from its checkpoint, phase "knapsack-base"). *m: new. */
static pinas_status base_model(pinas_ctx *ctx, nas_run *r, pinas_model **m)
{
    char *dir = pinas_strfmt("%s/knapsack/base", r->run_dir), *mp = pinas_path_join(dir, "meta.json");
    pinas_status s = PINAS_OK;
    if (pinas_path_exists(mp)) {
        s = pinas_model_load(ctx, dir, m);
        goto out;
    }
    pinas_net *arch = NULL;
    pinas_tnet *t = NULL;
    pinas_tensors *init = NULL;
    s = pinas_nas_baseline(ctx, r->space, "all-relu", &arch);
    if (!s) s = pinas_tnet_create(ctx, r->space, r->seed, &t);
    if (!s) s = pinas_tnet_load(ctx, t, r->warm, 1);
    if (!s) s = pinas_tnet_export(ctx, t, arch, &init);
    pinas_tnet_free(t);
    pinas_train_opts o;
    nas_train_opts(r, &o, "knapsack-base");
    o.epochs = r->cfg->search.epochs;
    o.train_split = PINAS_SPLIT_TRAIN;
    o.eval_split = PINAS_SPLIT_VAL;
    o.teacher = NULL;
    if (!s) pinas_info(ctx, "knapsack: training the all-ReLU net for %d epoch%s on the train split", o.epochs, o.epochs == 1 ? "" : "s");
    if (!s) s = pinas_train_model(ctx, arch, init, r->data, &o, NULL, m);
    if (!s) s = pinas_model_save(ctx, dir, *m);
    pinas_tensors_free(init);
    pinas_net_free(arch);
out:
    free(mp);
    free(dir);
    return s;
}

/* ------------------------------------------------------------ distortions */

/* The held-out images: the first n of the validation split, in chunks of the batch size. */
typedef struct {
    int n, n_chunks;
    pt_tensor **x, **y;
    int *size;
} heldout;

static void heldout_free(heldout *h)
{
    for (int i = 0; i < h->n_chunks; i++) {
        pt_free(h->x[i]);
        pt_free(h->y[i]);
    }
    free(h->x);
    free(h->y);
    free(h->size);
}

static pinas_status heldout_load(pinas_ctx *ctx, const nas_run *r, heldout *h)
{
    memset(h, 0, sizeof *h);
    pinas_dataset_info di;
    pinas_dataset_get_info(r->data, &di);
    h->n = r->cfg->search.knapsack_images < di.n[PINAS_SPLIT_VAL] ? r->cfg->search.knapsack_images : di.n[PINAS_SPLIT_VAL];
    if (h->n < 1) return pinas_error(ctx, PINAS_EINVAL, "search.knapsack_images: the validation split is empty");
    int bs = r->cfg->train.batch_size, nc = (h->n + bs - 1) / bs;
    size_t px = (size_t)di.c * di.h * di.w;
    h->x = calloc((size_t)nc, sizeof *h->x);
    h->y = calloc((size_t)nc, sizeof *h->y);
    h->size = calloc((size_t)nc, sizeof *h->size);
    float *x = malloc((size_t)bs * px * sizeof *x);
    int64_t *y = malloc((size_t)bs * sizeof *y);
    pinas_status s = h->x && h->y && h->size && x && y ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int c = 0; !s && c < nc; c++) {
        int start = c * bs, n = h->n - start < bs ? h->n - start : bs;
        s = pinas_dataset_get_f32(ctx, r->data, PINAS_SPLIT_VAL, start, n, x, y);
        int64_t xs[4] = {n, di.c, di.h, di.w}, ys[1] = {n};
        if (!s && (pt_from_f32(x, 4, xs, &h->x[c]) || pt_from_i64(y, 1, ys, &h->y[c]))) s = pinas_torch_error(ctx, "knapsack: held-out batch");
        /* Where the loaders put their batches: the run's device (the logits are there too). */
        pt_tensor *dx = NULL, *dy = NULL;
        if (!s && (pt_to_device(h->x[c], r->cfg->device, &dx) || pt_to_device(h->y[c], r->cfg->device, &dy)))
            s = pinas_torch_error(ctx, "knapsack: held-out batch to the device");
        if (dx) {
            pt_free(h->x[c]);
            h->x[c] = dx;
        }
        if (dy) {
            pt_free(h->y[c]);
            h->y[c] = dy;
        }
        h->size[c] = n;
        h->n_chunks = c + 1;
    }
    free(x);
    free(y);
    return s;
}

/* Mean cross-entropy of arch (with the all-ReLU weights) over the held-out images. */
static pinas_status heldout_loss(pinas_ctx *ctx, const nas_run *r, const pinas_net *arch, const pinas_tensors *w, const heldout *h, double *loss)
{
    pinas_tnet *t = NULL;
    pinas_status s = tnet_from_base(ctx, r, arch, w, &t);
    int prev = 1;
    pt_set_grad_enabled(0, &prev);
    double sum = 0;
    for (int c = 0; !s && c < h->n_chunks; c++) {
        pt_tensor *logits = NULL, *ce = NULL;
        double v = 0;
        s = pinas_tnet_forward(ctx, t, h->x[c], 0, &logits);
        if (!s) s = pinas_loss_ce(ctx, logits, h->y[c], 0.0, &ce);
        if (!s && pt_item(ce, &v)) s = pinas_torch_error(ctx, "knapsack: held-out loss");
        sum += v * h->size[c];
        pt_free(logits);
        pt_free(ce);
    }
    pt_set_grad_enabled(prev, NULL);
    pinas_tnet_free(t);
    *loss = sum / h->n;
    return s;
}

/* One log line and one progress line for slot group g's measured options. */
static pinas_status log_slot(pinas_ctx *ctx, const nas_run *r, const ks_table *t, int g, int off, double secs)
{
    const pinas_node *nd = pinas_net_node(r->space, pinas_cost_lut_slot_node(r->lut, t->slot[g]));
    cJSON *line = cJSON_CreateObject(), *d = NULL, *c = NULL;
    cJSON_AddStringToObject(line, "phase", "knapsack-measure");
    cJSON_AddStringToObject(line, "slot", nd->id);
    d = cJSON_AddObjectToObject(line, "distortion");
    c = cJSON_AddObjectToObject(line, "cost_ms");
    char nm[32], lo_nm[32] = "", hi_nm[32] = "";
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < t->n_items[g]; i++) {
        pinas_cand_name(&nd->cands[i], nm, sizeof nm);
        cJSON_AddNumberToObject(d, nm, t->value[off + i]);
        cJSON_AddNumberToObject(c, nm, t->cost[off + i]);
        if (i == t->base[t->slot[g]]) continue;
        if (t->value[off + i] < lo) {
            lo = t->value[off + i];
            snprintf(lo_nm, sizeof lo_nm, "%s", nm);
        }
        if (t->value[off + i] > hi) {
            hi = t->value[off + i];
            snprintf(hi_nm, sizeof hi_nm, "%s", nm);
        }
    }
    cJSON_AddNumberToObject(line, "seconds", secs);
    pinas_status s = nas_log_line(ctx, r, line);
    cJSON_Delete(line);
    if (t->n_items[g] > 1)
        pinas_info(ctx, "knapsack: slot %s (%d/%d) measured: loss increase %.4g (%s) to %.4g (%s) over %d options besides relu", nd->id, g + 1,
                   t->n_groups, lo, lo_nm, hi, hi_nm, t->n_items[g] - 1);
    return s;
}

/* Every option of every act slot, that slot alone changed from the all-ReLU net: the held-out loss
 * increase. relu is the all-ReLU net itself: 0 by construction. */
static pinas_status measure(pinas_ctx *ctx, const nas_run *r, const pinas_model *base, ks_table *t)
{
    double t0 = pinas_now();
    heldout h;
    pinas_status s = heldout_load(ctx, r, &h);
    pinas_net *ref = NULL;
    if (!s) s = arch_of(ctx, r, t->base, NULL, &ref);
    if (!s) s = heldout_loss(ctx, r, ref, base->weights, &h, &t->base_loss);
    pinas_net_free(ref);
    t->images = h.n;
    if (!s) pinas_info(ctx, "knapsack: the all-ReLU net's loss on %d held-out images is %.4f", h.n, t->base_loss);
    int *ch = malloc(((size_t)t->n_slots + 1) * sizeof *ch);
    if (!s && !ch) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int g = 0, off = 0; !s && g < t->n_groups; off += t->n_items[g++]) {
        double ts = pinas_now();
        for (int i = 0; !s && i < t->n_items[g]; i++) {
            if (i == t->base[t->slot[g]]) {
                t->value[off + i] = 0;
                continue;
            }
            memcpy(ch, t->base, (size_t)t->n_slots * sizeof *ch);
            ch[t->slot[g]] = i;
            pinas_net *a = NULL;
            double l = 0;
            s = arch_of(ctx, r, ch, NULL, &a);
            if (!s) s = heldout_loss(ctx, r, a, base->weights, &h, &l);
            if (!s && !isfinite(l)) s = pinas_error(ctx, PINAS_EINVAL, "knapsack: option %d of slot %d gives a non-finite held-out loss", i, g);
            t->value[off + i] = l - t->base_loss;
            pinas_net_free(a);
        }
        if (!s) s = log_slot(ctx, r, t, g, off, pinas_now() - ts);
    }
    free(ch);
    heldout_free(&h);
    t->measure_s = pinas_now() - t0;
    return s;
}

/* knapsack/distortion.json: the measured table, so a resumed run does not measure again. */
static pinas_status table_save(pinas_ctx *ctx, const nas_run *r, const ks_table *t, const char *path)
{
    cJSON *j = cJSON_CreateObject(), *slots = NULL;
    cJSON_AddStringToObject(j, "format", DISTORTION_FORMAT);
    cJSON_AddStringToObject(j, "distortion", "loss");
    cJSON_AddNumberToObject(j, "images", t->images);
    cJSON_AddNumberToObject(j, "base_loss", t->base_loss);
    cJSON_AddNumberToObject(j, "measure_seconds", t->measure_s);
    cJSON_AddNumberToObject(j, "fixed_ms", t->fixed_ms);
    slots = cJSON_AddArrayToObject(j, "slots");
    for (int g = 0, off = 0; g < t->n_groups; off += t->n_items[g++]) {
        const pinas_node *nd = pinas_net_node(r->space, pinas_cost_lut_slot_node(r->lut, t->slot[g]));
        cJSON *o = cJSON_CreateObject(), *ops = cJSON_AddArrayToObject(o, "options");
        cJSON_AddStringToObject(o, "id", nd->id);
        char nm[32];
        for (int i = 0; i < t->n_items[g]; i++) cJSON_AddItemToArray(ops, cJSON_CreateString(pinas_cand_name(&nd->cands[i], nm, sizeof nm)));
        cJSON_AddItemToObject(o, "distortion", cJSON_CreateDoubleArray(t->value + off, t->n_items[g]));
        cJSON_AddItemToObject(o, "cost_ms", cJSON_CreateDoubleArray(t->cost + off, t->n_items[g]));
        cJSON_AddItemToArray(slots, o);
    }
    pinas_status s = pinas_json_save(ctx, path, j);
    cJSON_Delete(j);
    return s;
}

/* Reads the distortions back; the slots and their options must be this run's. */
static pinas_status table_load(pinas_ctx *ctx, const nas_run *r, ks_table *t, const char *path)
{
    cJSON *j = NULL;
    pinas_status s = pinas_json_load(ctx, path, &j);
    if (s) return s;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format"), *slots = cJSON_GetObjectItemCaseSensitive(j, "slots");
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(j, "base_loss"), *ms = cJSON_GetObjectItemCaseSensitive(j, "measure_seconds");
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(j, "images");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, DISTORTION_FORMAT) || cJSON_GetArraySize(slots) != t->n_groups || !cJSON_IsNumber(bl) ||
        !cJSON_IsNumber(ms) || !cJSON_IsNumber(im))
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: not a %s table of this run's %d act slots (delete it to measure again)", path, DISTORTION_FORMAT,
                        t->n_groups);
    for (int g = 0, off = 0; !s && g < t->n_groups; off += t->n_items[g++]) {
        const pinas_node *nd = pinas_net_node(r->space, pinas_cost_lut_slot_node(r->lut, t->slot[g]));
        const cJSON *o = cJSON_GetArrayItem(slots, g), *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "distortion");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, nd->id) || cJSON_GetArraySize(d) != t->n_items[g]) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: slots[%d]: expected slot %s with %d distortions (delete the file to measure again)", path, g,
                            nd->id, t->n_items[g]);
            break;
        }
        for (int i = 0; !s && i < t->n_items[g]; i++) {
            const cJSON *v = cJSON_GetArrayItem(d, i);
            if (!cJSON_IsNumber(v)) s = pinas_error(ctx, PINAS_EFORMAT, "%s: slots[%d].distortion[%d]: expected a number", path, g, i);
            else t->value[off + i] = v->valuedouble;
        }
    }
    if (!s) {
        t->base_loss = bl->valuedouble;
        t->measure_s = ms->valuedouble;
        t->images = (int)im->valuedouble;
    }
    cJSON_Delete(j);
    return s;
}

/* Seconds the run's log.jsonl records for the method's phases before the solve: the supernet
 * warm-up and the all-ReLU training (every epoch, across resumes). */
static pinas_status logged_seconds(pinas_ctx *ctx, const nas_run *r, double *warmup, double *base)
{
    *warmup = *base = 0;
    char *text = NULL;
    size_t len = 0;
    if (!pinas_path_exists(r->log_path)) return PINAS_OK;
    pinas_status s = pinas_file_read(ctx, r->log_path, &text, &len);
    for (char *line = text, *nl; !s && line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *j = cJSON_Parse(line);
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "phase"), *sec = cJSON_GetObjectItemCaseSensitive(j, "seconds");
        if (cJSON_IsString(ph) && cJSON_IsNumber(sec)) {
            if (!strcmp(ph->valuestring, "warmup")) *warmup += sec->valuedouble;
            else if (!strcmp(ph->valuestring, "knapsack-base")) *base += sec->valuedouble;
        }
        cJSON_Delete(j);
    }
    free(text);
    return s;
}

/* ------------------------------------------------------------ per budget */

/* metrics.json's "search" of budget k: the method, the budget, the solution and its search cost. */
static pinas_status budget_summary(pinas_ctx *ctx, const nas_run *r, const ks_table *t, const pinas_net *arch, double budget, double res,
                                   double lut_ms, double distortion, double solve_s, cJSON **out)
{
    double warm = 0, base = 0;
    pinas_status s = logged_seconds(ctx, r, &warm, &base);
    if (s) return s;
    cJSON *o = cJSON_CreateObject(), *sec = NULL;
    cJSON_AddStringToObject(o, "method", "knapsack");
    cJSON_AddNumberToObject(o, "budget_ms", budget);
    cJSON_AddNumberToObject(o, "resolution_ms", res);
    cJSON_AddNumberToObject(o, "lut_ms", lut_ms);
    cJSON_AddStringToObject(o, "distortion_kind", "loss");
    cJSON_AddNumberToObject(o, "distortion", distortion);
    cJSON_AddNumberToObject(o, "base_loss", t->base_loss);
    cJSON_AddNumberToObject(o, "heldout_images", t->images);
    cJSON_AddItemToObject(o, "choices", pinas_nas_arch_json(arch));
    /* The search cost: what this candidate needed before fine-tuning. */
    sec = cJSON_AddObjectToObject(o, "seconds");
    cJSON_AddNumberToObject(sec, "warmup", warm);
    cJSON_AddNumberToObject(sec, "base", base);
    cJSON_AddNumberToObject(sec, "measure", t->measure_s);
    cJSON_AddNumberToObject(sec, "solve", solve_s);
    cJSON_AddNumberToObject(sec, "total", warm + base + t->measure_s + solve_s);
    *out = o;
    return PINAS_OK;
}

/* Solves budget k, logs it and builds its architecture (named after the run). */
static pinas_status solve_budget(pinas_ctx *ctx, const nas_run *r, const ks_table *t, int k, pinas_net **arch, cJSON **summary)
{
    double budget = r->cfg->search.budgets_ms[k], t0 = pinas_now();
    double res = r->cfg->search.knapsack_resolution_ms > 0 ? r->cfg->search.knapsack_resolution_ms : budget / 10000;
    int *choice = calloc((size_t)t->n_groups + 1, sizeof *choice), *ch = malloc(((size_t)t->n_slots + 1) * sizeof *ch);
    if (!choice || !ch) {
        free(choice);
        free(ch);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    pinas_knapsack_problem p = {t->n_groups, t->n_items, t->cost, t->value};
    double cost = 0, dist = 0, lut_ms = 0;
    pinas_status s = pinas_knapsack_solve(ctx, &p, budget - t->fixed_ms, res, choice, &cost, &dist);
    if (s)
        s = pinas_error_prefix(ctx, s, "search.budgets_ms[%d] = %g ms (%g ms for the act slots after %g ms fixed)", k, budget, budget - t->fixed_ms,
                               t->fixed_ms);
    memcpy(ch, t->base, (size_t)t->n_slots * sizeof *ch);
    for (int g = 0; g < t->n_groups; g++) ch[t->slot[g]] = choice[g];
    char *name = pinas_strfmt("%s-c%d", r->name, k);
    if (!s) s = arch_of(ctx, r, ch, name, arch);
    if (!s) s = pinas_cost_lut_latency_choices(ctx, r->lut, ch, &lut_ms);
    if (!s && lut_ms > budget * (1 + 1e-9))
        s = pinas_error(ctx, PINAS_EINTERNAL, "knapsack: budget %d: the solution's LUT latency %g ms exceeds %g ms", k, lut_ms, budget);
    double secs = pinas_now() - t0;
    if (!s) s = budget_summary(ctx, r, t, *arch, budget, res, lut_ms, dist, secs, summary);
    if (!s) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "phase", "knapsack-solve");
        cJSON_AddNumberToObject(line, "k", k);
        cJSON_AddNumberToObject(line, "budget_ms", budget);
        cJSON_AddNumberToObject(line, "lut_ms", lut_ms);
        cJSON_AddNumberToObject(line, "distortion", dist);
        cJSON_AddNumberToObject(line, "relu_count", (double)pinas_net_relu_count(*arch));
        cJSON_AddItemToObject(line, "arch", pinas_nas_arch_json(*arch));
        cJSON_AddNumberToObject(line, "seconds", secs);
        s = nas_log_line(ctx, r, line);
        cJSON_Delete(line);
        pinas_info(ctx, "knapsack: budget %d (%g ms) solved: %g ms predicted, distortion %.4g, %lld ReLUs", k, budget, lut_ms, dist,
                   (long long)pinas_net_relu_count(*arch));
    }
    free(name);
    free(choice);
    free(ch);
    return s;
}

/* Candidate k: solve budget k, fine-tune the choice from the all-ReLU weights and write it like
 * every point (nas_finish_arch). Skipped when its metrics.json exists. */
static pinas_status budget_one(pinas_ctx *ctx, nas_run *r, const ks_table *t, const pinas_model *base, int k)
{
    char *dir = pinas_strfmt("%s/candidates/%d", r->run_dir, k), *mp = pinas_path_join(dir, "metrics.json");
    pinas_status s = PINAS_OK;
    double budget = r->cfg->search.budgets_ms[k];
    if (pinas_path_exists(mp)) {
        pinas_info(ctx, "candidate %d (budget %g ms) already finished", k, budget);
    } else {
        pinas_net *arch = NULL;
        cJSON *summary = NULL;
        pinas_tnet *tn = NULL;
        pinas_tensors *init = NULL;
        s = solve_budget(ctx, r, t, k, &arch, &summary);
        if (!s) s = tnet_from_base(ctx, r, arch, base->weights, &tn);
        if (!s) s = pinas_tnet_export(ctx, tn, arch, &init);
        pinas_tnet_free(tn);
        nas_point pt = {.kind = "candidate", .k = k, .value = budget, .sweep_key = "budget_ms", .search = summary, .dir = dir};
        if (!s) s = nas_finish_arch(ctx, r, arch, init, &pt);
        pinas_tensors_free(init);
        pinas_net_free(arch);
        cJSON_Delete(summary);
    }
    free(mp);
    free(dir);
    return s;
}

/* True when every budget's candidate is finished (nothing left to measure for). */
static int all_finished(const nas_run *r)
{
    int done = 1;
    for (int k = 0; k < r->cfg->search.n_budgets && done; k++) {
        char *mp = pinas_strfmt("%s/candidates/%d/metrics.json", r->run_dir, k);
        done = mp && pinas_path_exists(mp);
        free(mp);
    }
    return done;
}

pinas_status nas_knapsack_run(pinas_ctx *ctx, nas_run *r, int *n_candidates)
{
    *n_candidates = r->cfg->search.n_budgets;
    if (all_finished(r)) return PINAS_OK;
    ks_table t;
    pinas_model *base = NULL;
    char *kdir = pinas_path_join(r->run_dir, "knapsack"), *tp = pinas_path_join(kdir, "distortion.json");
    pinas_status s = table_init(ctx, r, &t);
    if (!s) s = pinas_mkdir_p(ctx, kdir);
    if (!s) s = base_model(ctx, r, &base);
    if (!s && pinas_path_exists(tp)) s = table_load(ctx, r, &t, tp);
    else if (!s) {
        s = measure(ctx, r, base, &t);
        if (!s) s = table_save(ctx, r, &t, tp);
    }
    for (int k = 0; !s && k < r->cfg->search.n_budgets; k++) s = budget_one(ctx, r, &t, base, k);
    pinas_model_free(base);
    table_free(&t);
    free(tp);
    free(kdir);
    return s;
}
