/* Bit cutting: measures what each comparison slot compares on held-out images and picks its window (cmp_high, cmp_bits). */
#define _GNU_SOURCE
#include "pinas_bitcut.h"

#include "nas_internal.h"
#include "pinas_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int bit_length(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }

void pinas_bitcut_choose(const int64_t hist[65], const int64_t neg[65], int64_t count, double eps, int margin_bits, int *cmp_high,
                         int *cmp_bits, int64_t *errors)
{
    int rb = 0;
    for (int b = 64; b > 0 && !rb; b--)
        if (hist[b]) rb = b;
    /* exact while |x| < 2^(high-1): the value's bits, the sign, the margin */
    int high = rb + 1 + margin_bits;
    if (high > 64) high = 64;
    if (high < PINAS_CMP_BITS_MIN) high = PINAS_CMP_BITS_MIN;
    int64_t high_err = 0;
    for (int b = high; b <= 64; b++) high_err += hist[b]; /* b bits: |x| >= 2^(b-1) */
    double budget = eps * (double)count;
    int low = 0;
    int64_t cum = neg[0], best_err = high_err;
    for (int L = 1; L <= high - PINAS_CMP_BITS_MIN; L++) {
        cum += neg[L]; /* x in [-2^L, 0): -x-1 has at most L bits */
        if ((double)(high_err + cum) > budget) break;
        low = L;
        best_err = high_err + cum;
    }
    *cmp_high = high;
    *cmp_bits = high - low;
    *errors = best_err;
}

/* ------------------------------------------------------------------ measuring */

typedef struct {
    const pinas_model *m;
    int frac_bits;
    int *slot_of;          /* per node: index into r->slots, or -1 */
    pinas_bitcut_result *r;
} measure_state;

static void record(pinas_bitcut_slot *s, int64_t v, int f)
{
    uint64_t a = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    s->hist[bit_length(a)]++;
    if (v < 0) s->neg[bit_length((uint64_t)(-(v + 1)))]++;
    double x = ldexp((double)v, -f);
    if (s->count == 0 || x < s->min) s->min = x;
    if (s->count == 0 || x > s->max) s->max = x;
    s->count++;
}

static int64_t enc(float x, int f) { return (int64_t)pinas_ring_encode((double)x, f); }

static void measure_patch(pinas_bitcut_slot *s, const pinas_node *n, const pinas_cand *c, const float *x, int f)
{
    for (int py = 0; py < n->h; py += c->ph)
        for (int px = 0; px < n->w; px += c->pw) {
            int64_t sum = 0;
            for (int y = py; y < py + c->ph && y < n->h; y++)
                for (int q = px; q < px + c->pw && q < n->w; q++) sum += enc(x[y * n->w + q], f);
            record(s, sum - 1, f); /* the gate keeps the patch when sum - 1 >= 0 */
        }
}

/* The runtime's tree: pairs (0,1), (2,3), ... of the window in row order, max = b + ReLU(a - b). */
static void measure_maxpool(pinas_bitcut_slot *s, const pinas_node *n, const pinas_node *a, const float *x, int f, int64_t *win)
{
    for (int oy = 0; oy < n->h; oy++)
        for (int ox = 0; ox < n->w; ox++) {
            int cnt = 0;
            for (int ky = 0; ky < n->kh; ky++)
                for (int kx = 0; kx < n->kw; kx++) {
                    int iy = oy * n->stride - n->pad + ky, ix = ox * n->stride - n->pad + kx;
                    if (iy >= 0 && iy < a->h && ix >= 0 && ix < a->w) win[cnt++] = enc(x[iy * a->w + ix], f);
                }
            while (cnt > 1) {
                int nc = 0;
                for (int j = 0; j < cnt; j += 2) {
                    if (j + 1 < cnt) {
                        int64_t d = win[j] - win[j + 1];
                        record(s, d, f);
                        win[nc++] = d >= 0 ? win[j] : win[j + 1];
                    } else {
                        win[nc++] = win[j];
                    }
                }
                cnt = nc;
            }
        }
}

static pinas_status tap(pinas_ctx *ctx, void *user, int node, const float *in, const float *out, int batch)
{
    (void)out;
    measure_state *st = user;
    int k = st->slot_of[node];
    if (k < 0) return PINAS_OK;
    const pinas_net *net = st->m->net;
    const pinas_node *n = pinas_net_node(net, node), *a = pinas_net_node(net, n->inputs[0]);
    const pinas_cand *c = pinas_node_chosen(n);
    pinas_bitcut_slot *s = &st->r->slots[k];
    size_t isz = (size_t)a->c * a->h * a->w, hw = (size_t)a->h * a->w;
    int64_t *win = NULL;
    if (c->kind == PINAS_CAND_MAXPOOL && !(win = malloc(sizeof *win * (size_t)(n->kh * n->kw))))
        return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", n->id);
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < a->c; ch++) {
            const float *xc = in + b * isz + ch * hw;
            if (c->kind == PINAS_CAND_RELU)
                for (size_t q = 0; q < hw; q++) record(s, enc(xc[q], st->frac_bits), st->frac_bits);
            else if (c->kind == PINAS_CAND_PATCH_RELU)
                measure_patch(s, n, c, xc, st->frac_bits);
            else
                measure_maxpool(s, n, a, xc, st->frac_bits, win);
        }
    free(win);
    return PINAS_OK;
}

/* The slots whose decided candidate compares (relu, patch_relu, maxpool), in net order. */
static pinas_status find_slots(pinas_ctx *ctx, const pinas_net *net, int *slot_of, pinas_bitcut_result *r)
{
    int nn = pinas_net_n_nodes(net);
    r->slots = calloc((size_t)nn, sizeof *r->slots);
    if (!r->slots) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int i = 0; i < nn; i++) {
        const pinas_node *n = pinas_net_node(net, i);
        const pinas_cand *c = pinas_node_is_slot(n) ? pinas_node_chosen(n) : NULL;
        slot_of[i] = -1;
        if (!c || (c->kind != PINAS_CAND_RELU && c->kind != PINAS_CAND_PATCH_RELU && c->kind != PINAS_CAND_MAXPOOL)) continue;
        pinas_bitcut_slot *s = &r->slots[r->n_slots];
        snprintf(s->id, sizeof s->id, "%s", n->id);
        pinas_cand_name(c, s->cand, sizeof s->cand);
        slot_of[i] = r->n_slots++;
    }
    return PINAS_OK;
}

pinas_status pinas_bitcut_measure(pinas_ctx *ctx, const pinas_model *m, const float *x, int n, double eps, int margin_bits,
                                  pinas_bitcut_result *out)
{
    memset(out, 0, sizeof *out);
    if (n < 1) return pinas_error(ctx, PINAS_EINVAL, "bit cutting: need at least one image, got %d", n);
    if (!(eps >= 0 && eps < 1)) return pinas_error(ctx, PINAS_EINVAL, "bit cutting: eps must be in [0, 1), got %g", eps);
    if (margin_bits < 0 || margin_bits > 64)
        return pinas_error(ctx, PINAS_EINVAL, "bit cutting: margin_bits must be in [0, 64], got %d", margin_bits);
    if (pinas_net_n_open(m->net) > 0)
        return pinas_error(ctx, PINAS_EINVAL, "bit cutting: net %s has open slots; it needs a decided model", pinas_net_name(m->net));
    out->frac_bits = m->meta.frac_bits;
    out->images = n;
    out->eps = eps;
    out->margin_bits = margin_bits;
    int nn = pinas_net_n_nodes(m->net), k = pinas_net_num_classes(m->net);
    int *slot_of = malloc(sizeof *slot_of * (size_t)nn);
    float *logits = malloc(sizeof *logits * (size_t)k * (size_t)(n < 64 ? n : 64));
    pinas_status s = slot_of && logits ? find_slots(ctx, m->net, slot_of, out) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    measure_state st = {.m = m, .frac_bits = out->frac_bits, .slot_of = slot_of, .r = out};
    const pinas_node *in = pinas_net_node(m->net, 0);
    size_t isz = (size_t)in->c * in->h * in->w;
    for (int b0 = 0; b0 < n && !s; b0 += 64) { /* batches of 64 images bound the executor's memory */
        int bn = n - b0 < 64 ? n - b0 : 64;
        s = pinas_plain_forward_tap(ctx, m, x + (size_t)b0 * isz, bn, logits, tap, &st);
    }
    for (int j = 0; j < out->n_slots && !s; j++) {
        pinas_bitcut_slot *sl = &out->slots[j];
        pinas_bitcut_choose(sl->hist, sl->neg, sl->count, eps, margin_bits, &sl->cmp_high, &sl->cmp_bits, &sl->errors);
        for (int b = 64; b > 0 && !sl->range_bits; b--)
            if (sl->hist[b]) sl->range_bits = b;
        sl->error_rate = sl->count ? (double)sl->errors / (double)sl->count : 0;
    }
    free(slot_of);
    free(logits);
    if (s) pinas_bitcut_result_free(out);
    return s;
}

void pinas_bitcut_result_free(pinas_bitcut_result *r)
{
    if (!r) return;
    free(r->slots);
    memset(r, 0, sizeof *r);
}

pinas_status pinas_bitcut_apply(pinas_ctx *ctx, const pinas_bitcut_result *r, pinas_model_meta *meta)
{
    for (int j = 0; j < r->n_slots; j++) {
        pinas_status s = pinas_model_meta_set_layer_bits(ctx, meta, r->slots[j].id, r->slots[j].cmp_bits, r->slots[j].cmp_high);
        if (s) return s;
    }
    return PINAS_OK;
}

cJSON *pinas_bitcut_result_json(const pinas_bitcut_result *r)
{
    cJSON *o = cJSON_CreateObject(), *slots = o ? cJSON_CreateArray() : NULL;
    if (!slots) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "frac_bits", r->frac_bits);
    cJSON_AddNumberToObject(o, "images", r->images);
    cJSON_AddNumberToObject(o, "eps", r->eps);
    cJSON_AddNumberToObject(o, "margin_bits", r->margin_bits);
    cJSON_AddItemToObject(o, "slots", slots);
    for (int j = 0; j < r->n_slots; j++) {
        const pinas_bitcut_slot *s = &r->slots[j];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", s->id);
        cJSON_AddStringToObject(e, "cand", s->cand);
        cJSON_AddNumberToObject(e, "comparisons", (double)s->count);
        cJSON_AddNumberToObject(e, "min", s->min);
        cJSON_AddNumberToObject(e, "max", s->max);
        cJSON_AddNumberToObject(e, "range_bits", s->range_bits);
        cJSON_AddNumberToObject(e, "cmp_high", s->cmp_high);
        cJSON_AddNumberToObject(e, "cmp_bits", s->cmp_bits);
        cJSON_AddNumberToObject(e, "errors", (double)s->errors);
        cJSON_AddNumberToObject(e, "error_rate", s->error_rate);
        cJSON_AddItemToArray(slots, e);
    }
    return o;
}

/* ------------------------------------------------------------------ the export's step */

/* The first n images of the validation split of the run's dataset (fewer when it is smaller): *x new. */
static pinas_status load_heldout(pinas_ctx *ctx, const pinas_config *cfg, int want, float **x, int *n)
{
    pinas_data_opts o;
    pinas_data_opts_from_cfg(&cfg->data, cfg->seed, &o);
    pinas_dataset *d = NULL;
    pinas_status s = pinas_dataset_load(ctx, &o, &d);
    if (s) return s;
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    *n = want < di.n[PINAS_SPLIT_VAL] ? want : di.n[PINAS_SPLIT_VAL];
    if (*n < 1) s = pinas_error(ctx, PINAS_EINVAL, "bit cutting: dataset %s has no validation images", di.name);
    if (!s && !(*x = malloc(sizeof **x * (size_t)*n * di.c * di.h * di.w))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_VAL, 0, *n, *x, NULL);
    pinas_dataset_free(d);
    return s;
}

/* Re-prices every predicted_latency row of m under its per-node windows. */
static pinas_status reprice(pinas_ctx *ctx, pinas_model *m)
{
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_params_from_meta(&m->meta, &p);
    pinas_mpc_layer_bits *lb = NULL;
    int n_lb = pinas_mpc_layer_bits_from_meta(&m->meta, &lb);
    pinas_status s = n_lb < 0 ? pinas_error(ctx, PINAS_ENOMEM, "out of memory") : PINAS_OK;
    for (int i = 0; i < m->meta.n_latency && !s; i++) {
        pinas_meta_latency *row = &m->meta.latency[i];
        char *hw = pinas_strdup(row->profile), *slash = hw ? strchr(hw, '/') : NULL;
        if (!slash) s = pinas_error(ctx, PINAS_EFORMAT, "predicted_latency: profile \"%s\" is not <hw>/<net>", row->profile);
        if (!s) {
            *slash = 0;
            char *profile = row->profile;
            s = nas_price_net_layers(ctx, m->net, hw, slash + 1, &p, lb, n_lb, row);
            row->profile = profile;
        }
        free(hw);
    }
    free(lb);
    return s;
}

pinas_status pinas_bitcut_model_dir(pinas_ctx *ctx, const char *model_dir, const char *run_dir, const pinas_cfg_export *o,
                                    pinas_bitcut_result *out)
{
    memset(out, 0, sizeof *out);
    pinas_config *cfg = NULL;
    pinas_model *m = NULL;
    float *x = NULL;
    int n = 0;
    pinas_status s = pinas_nas_run_config(ctx, run_dir, &cfg);
    if (!s) s = pinas_model_load(ctx, model_dir, &m);
    if (!s) s = load_heldout(ctx, cfg, o->bit_cut_images, &x, &n);
    if (!s) s = pinas_bitcut_measure(ctx, m, x, n, o->bit_cut_eps, o->bit_cut_margin_bits, out);
    if (!s) s = pinas_bitcut_apply(ctx, out, &m->meta);
    if (!s) s = reprice(ctx, m);
    char *mp = s ? NULL : pinas_path_join(model_dir, "meta.json");
    if (!s) s = mp ? pinas_model_meta_write(ctx, mp, &m->meta) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    free(mp);
    if (s) {
        pinas_bitcut_result_free(out);
        s = pinas_error_prefix(ctx, s, "%s: bit cutting", model_dir);
    }
    free(x);
    pinas_model_free(m);
    pinas_config_free(cfg);
    return s;
}
