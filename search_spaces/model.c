/* Model dirs: a decided net + weights.safetensors + meta.json (the pinas_model_meta record, its one
 * reader and writer); validation, atomic save, random weights. */
#define _GNU_SOURCE
#include "net_internal.h"
#include "pinas_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ meta.json: the record */

void pinas_model_meta_init(pinas_model_meta *m)
{
    memset(m, 0, sizeof *m);
    m->accuracy = NAN;
    m->frac_bits = PINAS_FRAC_BITS_DEFAULT;
    m->cmp_bits = PINAS_CMP_BITS_DEFAULT;
}

static void train_free(pinas_meta_train *t)
{
    free(t->phase);
    free(t->teacher);
    free(t->eval_split);
    memset(t, 0, sizeof *t);
}

void pinas_meta_export_free(pinas_meta_export *e)
{
    if (!e) return;
    free(e->run_dir);
    free(e->sweep_key);
    for (int i = 0; i < e->n_arch; i++) {
        free(e->arch[i].slot);
        free(e->arch[i].choice);
    }
    free(e->arch);
    memset(e, 0, sizeof *e);
}

void pinas_model_meta_free(pinas_model_meta *m)
{
    if (!m) return;
    free(m->name);
    free(m->mean);
    free(m->std);
    free(m->dataset);
    train_free(&m->train);
    for (int i = 0; i < m->n_latency; i++) free(m->latency[i].profile);
    free(m->latency);
    for (int i = 0; i < m->n_layer_bits; i++) free(m->layer_bits[i].id);
    free(m->layer_bits);
    free(m->source);
    cJSON_Delete(m->config);
    pinas_meta_export_free(&m->exported_from);
    cJSON_Delete(m->extra);
    pinas_model_meta_init(m);
}

static pinas_status oom(pinas_ctx *ctx) { return pinas_error(ctx, PINAS_ENOMEM, "out of memory"); }

pinas_status pinas_model_meta_set_str(pinas_ctx *ctx, char **field, const char *value)
{
    char *v = pinas_strdup(value);
    if (value && !v) return oom(ctx);
    free(*field);
    *field = v;
    return PINAS_OK;
}

pinas_status pinas_model_meta_set_input(pinas_ctx *ctx, pinas_model_meta *m, int c, int h, int w)
{
    if (c < 1 || c > PINAS_META_MAX_CHANNELS)
        return pinas_error(ctx, PINAS_EINVAL, "meta: input: %d channels; expected 1 to %d", c, PINAS_META_MAX_CHANNELS);
    double *mean = calloc((size_t)c, sizeof *mean), *std = malloc((size_t)c * sizeof *std);
    if (!mean || !std) {
        free(mean);
        free(std);
        return oom(ctx);
    }
    for (int i = 0; i < c; i++) std[i] = 1;
    free(m->mean);
    free(m->std);
    m->mean = mean;
    m->std = std;
    m->input[0] = c;
    m->input[1] = h;
    m->input[2] = w;
    return PINAS_OK;
}

pinas_status pinas_model_meta_default(pinas_ctx *ctx, const pinas_net *net, pinas_model_meta *m)
{
    pinas_model_meta_init(m);
    const pinas_node *in = pinas_net_node(net, 0);
    pinas_status s = pinas_model_meta_set_input(ctx, m, in->c, in->h, in->w);
    if (s) return pinas_error_prefix(ctx, s, "net %s", pinas_net_name(net));
    m->num_classes = pinas_net_num_classes(net);
    s = pinas_model_meta_set_str(ctx, &m->name, pinas_net_name(net));
    if (!s) s = pinas_model_meta_set_str(ctx, &m->source, "");
    if (s) pinas_model_meta_free(m);
    return s;
}

const pinas_meta_latency *pinas_model_meta_latency(const pinas_model_meta *m, const char *profile)
{
    for (int i = 0; i < m->n_latency; i++)
        if (!strcmp(m->latency[i].profile, profile)) return &m->latency[i];
    return NULL;
}

pinas_status pinas_model_meta_set_latency(pinas_ctx *ctx, pinas_model_meta *m, const pinas_meta_latency *row)
{
    char *p = pinas_strdup(row->profile ? row->profile : "");
    if (!p) return oom(ctx);
    pinas_meta_latency *at = (pinas_meta_latency *)pinas_model_meta_latency(m, p);
    if (!at) {
        pinas_meta_latency *grown = realloc(m->latency, (size_t)(m->n_latency + 1) * sizeof *grown);
        if (!grown) {
            free(p);
            return oom(ctx);
        }
        m->latency = grown;
        at = &m->latency[m->n_latency++];
        at->profile = NULL;
    }
    free(at->profile);
    *at = *row;
    at->profile = p;
    return PINAS_OK;
}

pinas_status pinas_model_meta_set_layer_bits(pinas_ctx *ctx, pinas_model_meta *m, const char *id, int cmp_bits, int cmp_high)
{
    if (cmp_bits < PINAS_CMP_BITS_MIN || cmp_bits > PINAS_CMP_BITS_MAX || cmp_high < cmp_bits || cmp_high > 64)
        return pinas_error(ctx, PINAS_EINVAL, "mpc.layers: node %s: cmp_bits %d / cmp_high %d out of range (bits in [%d, %d], high in [bits, 64])",
                           id, cmp_bits, cmp_high, PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX);
    pinas_meta_layer_bits *at = NULL;
    for (int i = 0; i < m->n_layer_bits && !at; i++)
        if (!strcmp(m->layer_bits[i].id, id)) at = &m->layer_bits[i];
    if (!at) {
        char *d = pinas_strdup(id);
        pinas_meta_layer_bits *grown = d ? realloc(m->layer_bits, (size_t)(m->n_layer_bits + 1) * sizeof *grown) : NULL;
        if (!grown) {
            free(d);
            return oom(ctx);
        }
        m->layer_bits = grown;
        at = &m->layer_bits[m->n_layer_bits++];
        at->id = d;
    }
    at->cmp_bits = cmp_bits;
    at->cmp_high = cmp_high;
    return PINAS_OK;
}

static pinas_status copy_export(pinas_ctx *ctx, const pinas_meta_export *src, pinas_meta_export *dst)
{
    *dst = *src;
    dst->run_dir = pinas_strdup(src->run_dir);
    dst->sweep_key = pinas_strdup(src->sweep_key);
    dst->arch = src->n_arch ? calloc((size_t)src->n_arch, sizeof *dst->arch) : NULL;
    int bad = (src->run_dir && !dst->run_dir) || (src->sweep_key && !dst->sweep_key) || (src->n_arch && !dst->arch);
    for (int i = 0; dst->arch && i < src->n_arch; i++) {
        dst->arch[i].slot = pinas_strdup(src->arch[i].slot);
        dst->arch[i].choice = pinas_strdup(src->arch[i].choice);
        bad |= !dst->arch[i].slot || !dst->arch[i].choice;
    }
    if (!dst->arch) dst->n_arch = 0;
    return bad ? oom(ctx) : PINAS_OK;
}

pinas_status pinas_model_meta_copy(pinas_ctx *ctx, const pinas_model_meta *src, pinas_model_meta *dst)
{
    *dst = *src;
    /* Every owned pointer is replaced before anything can fail, so that a failed copy frees cleanly. */
    dst->name = pinas_strdup(src->name);
    size_t nc = src->mean ? (size_t)src->input[0] : 0;
    dst->mean = nc ? malloc(nc * sizeof *dst->mean) : NULL;
    dst->std = nc ? malloc(nc * sizeof *dst->std) : NULL;
    if (dst->mean) memcpy(dst->mean, src->mean, nc * sizeof *dst->mean);
    if (dst->std) memcpy(dst->std, src->std, nc * sizeof *dst->std);
    dst->dataset = pinas_strdup(src->dataset);
    dst->train.phase = pinas_strdup(src->train.phase);
    dst->train.teacher = pinas_strdup(src->train.teacher);
    dst->train.eval_split = pinas_strdup(src->train.eval_split);
    dst->source = pinas_strdup(src->source);
    dst->config = src->config ? cJSON_Duplicate(src->config, 1) : NULL;
    dst->extra = src->extra ? cJSON_Duplicate(src->extra, 1) : NULL;
    dst->latency = src->n_latency ? calloc((size_t)src->n_latency, sizeof *dst->latency) : NULL;
    int bad = (src->name && !dst->name) || (nc && (!dst->mean || !dst->std)) || (src->dataset && !dst->dataset) || (src->train.phase && !dst->train.phase) ||
              (src->train.teacher && !dst->train.teacher) || (src->train.eval_split && !dst->train.eval_split) ||
              (src->source && !dst->source) || (src->config && !dst->config) || (src->extra && !dst->extra) ||
              (src->n_latency && !dst->latency);
    for (int i = 0; dst->latency && i < src->n_latency; i++) {
        dst->latency[i] = src->latency[i];
        bad |= !(dst->latency[i].profile = pinas_strdup(src->latency[i].profile));
    }
    if (!dst->latency) dst->n_latency = 0;
    dst->layer_bits = src->n_layer_bits ? calloc((size_t)src->n_layer_bits, sizeof *dst->layer_bits) : NULL;
    bad |= src->n_layer_bits && !dst->layer_bits;
    for (int i = 0; dst->layer_bits && i < src->n_layer_bits; i++) {
        dst->layer_bits[i] = src->layer_bits[i];
        bad |= !(dst->layer_bits[i].id = pinas_strdup(src->layer_bits[i].id));
    }
    if (!dst->layer_bits) dst->n_layer_bits = 0;
    pinas_status s = copy_export(ctx, &src->exported_from, &dst->exported_from);
    if (!s && bad) s = oom(ctx);
    if (s) pinas_model_meta_free(dst);
    return s;
}

/* ------------------------------------------------------------ meta.json: writing */

/* Numbers go through cJSON_AddNumberToObject, which prints NaN and infinities as null. */

static cJSON *latency_row_json(const pinas_meta_latency *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "online_ms", r->online_ms);
    cJSON_AddNumberToObject(o, "offline_ms", r->offline_ms);
    cJSON_AddNumberToObject(o, "total_ms", r->total_ms);
    cJSON_AddNumberToObject(o, "compute_ms", r->compute_ms);
    cJSON_AddNumberToObject(o, "comm_ms", r->comm_ms);
    cJSON_AddNumberToObject(o, "rounds", (double)r->rounds);
    cJSON_AddNumberToObject(o, "online_bytes", (double)r->online_bytes);
    cJSON_AddNumberToObject(o, "preprocessing_bytes", (double)r->preprocessing_bytes);
    return o;
}

cJSON *pinas_model_meta_latency_json(const pinas_meta_latency *rows, int n)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < n; i++) cJSON_AddItemToObject(o, rows[i].profile ? rows[i].profile : "", latency_row_json(&rows[i]));
    return o;
}

static cJSON *train_json(const pinas_meta_train *t)
{
    cJSON *tr = cJSON_CreateObject();
    cJSON_AddStringToObject(tr, "phase", t->phase ? t->phase : "train");
    cJSON_AddNumberToObject(tr, "epochs", t->epochs);
    cJSON_AddNumberToObject(tr, "batch_size", t->batch_size);
    cJSON_AddNumberToObject(tr, "lr", t->lr);
    cJSON_AddStringToObject(tr, "schedule", t->cosine ? "cosine" : "constant");
    cJSON_AddNumberToObject(tr, "momentum", t->momentum);
    cJSON_AddBoolToObject(tr, "nesterov", t->nesterov);
    cJSON_AddNumberToObject(tr, "weight_decay", t->weight_decay);
    cJSON_AddNumberToObject(tr, "label_smoothing", t->label_smoothing);
    cJSON_AddBoolToObject(tr, "augment", t->augment);
    if (t->grad_clip > 0) cJSON_AddNumberToObject(tr, "grad_clip", t->grad_clip);
    if (t->teacher) {
        cJSON_AddStringToObject(tr, "teacher", t->teacher);
        cJSON_AddNumberToObject(tr, "kd_alpha", t->kd_alpha);
        cJSON_AddNumberToObject(tr, "kd_temperature", t->kd_temperature);
    }
    cJSON_AddNumberToObject(tr, "seed", (double)t->seed);
    cJSON_AddStringToObject(tr, "eval_split", t->eval_split ? t->eval_split : "");
    cJSON_AddNumberToObject(tr, "eval_loss", t->eval_loss);
    cJSON_AddNumberToObject(tr, "train_loss", t->train_loss);
    cJSON_AddNumberToObject(tr, "train_acc", t->train_acc);
    return tr;
}

static cJSON *export_json(const pinas_meta_export *e)
{
    cJSON *from = cJSON_CreateObject();
    cJSON_AddStringToObject(from, "run_dir", e->run_dir ? e->run_dir : "");
    cJSON_AddNumberToObject(from, "candidate", e->candidate);
    if (e->sweep_key) cJSON_AddNumberToObject(cJSON_AddObjectToObject(from, "sweep"), e->sweep_key, e->sweep_value);
    cJSON *arch = cJSON_AddObjectToObject(from, "arch");
    for (int i = 0; i < e->n_arch; i++) cJSON_AddStringToObject(arch, e->arch[i].slot, e->arch[i].choice);
    return from;
}

cJSON *pinas_model_meta_to_json(const pinas_model_meta *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "format", PINAS_MODEL_FORMAT);
    cJSON_AddStringToObject(o, "name", m->name ? m->name : "");
    cJSON_AddItemToObject(o, "input", cJSON_CreateIntArray(m->input, 3));
    cJSON_AddNumberToObject(o, "num_classes", m->num_classes);
    cJSON *norm = cJSON_AddObjectToObject(o, "normalize");
    cJSON *mean = cJSON_AddArrayToObject(norm, "mean"), *std = cJSON_AddArrayToObject(norm, "std");
    for (int c = 0; m->mean && c < m->input[0]; c++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(m->mean[c]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(m->std[c]));
    }
    if (isnan(m->accuracy)) cJSON_AddNullToObject(o, "accuracy");
    else cJSON_AddNumberToObject(o, "accuracy", m->accuracy);
    if (m->dataset) cJSON_AddStringToObject(o, "dataset", m->dataset);
    if (m->train.present) cJSON_AddItemToObject(o, "train", train_json(&m->train));
    cJSON *mpc = cJSON_AddObjectToObject(o, "mpc");
    cJSON_AddNumberToObject(mpc, "frac_bits", m->frac_bits);
    cJSON_AddNumberToObject(mpc, "cmp_bits", m->cmp_bits);
    cJSON *layers = m->n_layer_bits > 0 ? cJSON_AddArrayToObject(mpc, "layers") : NULL;
    for (int i = 0; layers && i < m->n_layer_bits; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "id", m->layer_bits[i].id);
        cJSON_AddNumberToObject(l, "cmp_bits", m->layer_bits[i].cmp_bits);
        cJSON_AddNumberToObject(l, "cmp_high", m->layer_bits[i].cmp_high);
        cJSON_AddItemToArray(layers, l);
    }
    cJSON_AddItemToObject(o, "predicted_latency", pinas_model_meta_latency_json(m->latency, m->n_latency));
    cJSON_AddStringToObject(o, "source", m->source ? m->source : "");
    if (m->config) cJSON_AddItemToObject(o, "config", cJSON_Duplicate(m->config, 1));
    if (m->exported_from.present) cJSON_AddItemToObject(o, "exported_from", export_json(&m->exported_from));
    const cJSON *e;
    cJSON_ArrayForEach(e, m->extra)
    {
        if (e->string && !cJSON_GetObjectItemCaseSensitive(o, e->string)) cJSON_AddItemToObject(o, e->string, cJSON_Duplicate(e, 1));
    }
    return o;
}

pinas_status pinas_model_meta_write(pinas_ctx *ctx, const char *path, const pinas_model_meta *m)
{
    cJSON *j = pinas_model_meta_to_json(m);
    pinas_status s = j ? pinas_json_save(ctx, path, j) : oom(ctx);
    cJSON_Delete(j);
    return s;
}

/* ------------------------------------------------------------ meta.json: reading */

/* The keys an object may hold; anything else is an error naming it (a misspelt "frac_bit" must not
 * silently leave the default in place). */
static pinas_status only_keys(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *const *keys, int n)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, obj)
    {
        int known = 0;
        for (int i = 0; i < n && !known; i++) known = e->string && !strcmp(e->string, keys[i]);
        if (!known) {
            const char *near = pinas_did_you_mean(e->string ? e->string : "", keys, n);
            return pinas_error(ctx, PINAS_EFORMAT, "%s: %s.%s: unknown key%s%s%s", where, path, e->string ? e->string : "?",
                               near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
        }
    }
    return PINAS_OK;
}

static pinas_status want_object(pinas_ctx *ctx, const cJSON *v, const char *where, const char *path)
{
    if (cJSON_IsObject(v)) return PINAS_OK;
    char *d = pinas_json_describe(v);
    pinas_status s = pinas_error(ctx, PINAS_EFORMAT, "%s: %s: expected an object, got %s", where, path, d);
    free(d);
    return s;
}

/* A copied string member: required unless opt (then *out stays NULL when absent). */
static pinas_status get_strdup(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key, int opt, char **out)
{
    const char *v = NULL;
    pinas_status s = opt ? pinas_json_get_str_opt(ctx, obj, where, path, key, &v) : pinas_json_get_str(ctx, obj, where, path, key, &v);
    if (!s && v) s = pinas_model_meta_set_str(ctx, out, v);
    return s;
}

/* A number or null (NaN). Required. A NaN number (a record's to_json not yet printed) reads as null,
 * as it would once printed. */
static pinas_status get_num_null(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNull(v) || (cJSON_IsNumber(v) && isnan(v->valuedouble))) {
        *out = NAN;
        return PINAS_OK;
    }
    return pinas_json_get_num(ctx, obj, where, path, key, -INFINITY, INFINITY, out);
}

static pinas_status get_int32(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key, int64_t lo,
                              int64_t hi, int opt, int *out)
{
    int64_t v = *out;
    pinas_status s = opt ? pinas_json_get_int_opt(ctx, obj, where, path, key, lo, hi, &v)
                         : pinas_json_get_int(ctx, obj, where, path, key, lo, hi, &v);
    if (!s) *out = (int)v;
    return s;
}

static pinas_status get_bool(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key, int *out)
{
    if (!cJSON_GetObjectItemCaseSensitive(obj, key)) return pinas_error(ctx, PINAS_EFORMAT, "%s: %s.%s: missing", where, path, key);
    return pinas_json_get_bool_opt(ctx, obj, where, path, key, out);
}

/* A seed: a non-negative integer below 2^64. Doubles at 2^64 (a seed near the top, rounded up when
 * it was written as a JSON number) read as UINT64_MAX, which writes back as the same number. */
static pinas_status get_seed(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "seed");
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) || v->valuedouble > 18446744073709551616.0) {
        char *d = pinas_json_describe(v);
        pinas_status s = pinas_error(ctx, PINAS_EINVAL, "%s: %s.seed: expected a non-negative integer, got %s", where, path, d);
        free(d);
        return s;
    }
    *out = v->valuedouble >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v->valuedouble;
    return PINAS_OK;
}

static pinas_status read_train(pinas_ctx *ctx, const cJSON *tr, const char *where, pinas_meta_train *t)
{
    static const char *const keys[] = {"phase", "epochs", "batch_size", "lr", "schedule", "momentum", "nesterov",
                                       "weight_decay", "label_smoothing", "augment", "grad_clip", "teacher", "kd_alpha",
                                       "kd_temperature", "seed", "eval_split", "eval_loss", "train_loss", "train_acc"};
    const double inf = INFINITY;
    const char *sched = NULL;
    pinas_status s = want_object(ctx, tr, where, "train");
    if (!s) s = only_keys(ctx, tr, where, "train", keys, (int)(sizeof keys / sizeof *keys));
    if (!s) s = get_strdup(ctx, tr, where, "train", "phase", 0, &t->phase);
    if (!s) s = get_int32(ctx, tr, where, "train", "epochs", 0, INT32_MAX, 0, &t->epochs);
    if (!s) s = get_int32(ctx, tr, where, "train", "batch_size", 1, INT32_MAX, 0, &t->batch_size);
    if (!s) s = pinas_json_get_num(ctx, tr, where, "train", "lr", -inf, inf, &t->lr);
    if (!s) s = pinas_json_get_str(ctx, tr, where, "train", "schedule", &sched);
    if (!s && strcmp(sched, "cosine") && strcmp(sched, "constant"))
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: train.schedule: expected \"cosine\" or \"constant\", got \"%s\"", where, sched);
    t->cosine = sched && !strcmp(sched, "cosine");
    if (!s) s = pinas_json_get_num(ctx, tr, where, "train", "momentum", -inf, inf, &t->momentum);
    if (!s) s = get_bool(ctx, tr, where, "train", "nesterov", &t->nesterov);
    if (!s) s = pinas_json_get_num(ctx, tr, where, "train", "weight_decay", -inf, inf, &t->weight_decay);
    if (!s) s = pinas_json_get_num(ctx, tr, where, "train", "label_smoothing", -inf, inf, &t->label_smoothing);
    if (!s) s = get_bool(ctx, tr, where, "train", "augment", &t->augment);
    if (!s) s = pinas_json_get_num_opt(ctx, tr, where, "train", "grad_clip", -inf, inf, &t->grad_clip);
    if (!s) s = get_strdup(ctx, tr, where, "train", "teacher", 1, &t->teacher);
    if (!s && t->teacher) s = pinas_json_get_num(ctx, tr, where, "train", "kd_alpha", -inf, inf, &t->kd_alpha);
    if (!s && t->teacher) s = pinas_json_get_num(ctx, tr, where, "train", "kd_temperature", -inf, inf, &t->kd_temperature);
    if (!s) s = get_seed(ctx, tr, where, "train", &t->seed);
    if (!s) s = get_strdup(ctx, tr, where, "train", "eval_split", 0, &t->eval_split);
    if (!s) s = get_num_null(ctx, tr, where, "train", "eval_loss", &t->eval_loss);
    if (!s) s = get_num_null(ctx, tr, where, "train", "train_loss", &t->train_loss);
    if (!s) s = get_num_null(ctx, tr, where, "train", "train_acc", &t->train_acc);
    t->present = 1;
    return s;
}

/* "mpc.layers": [{"id", "cmp_bits", "cmp_high"}, ...]; ids are checked against the net later. */
static pinas_status read_layer_bits(pinas_ctx *ctx, const cJSON *arr, const char *where, pinas_model_meta *m)
{
    static const char *const keys[] = {"id", "cmp_bits", "cmp_high"};
    if (!cJSON_IsArray(arr)) return pinas_error(ctx, PINAS_EFORMAT, "%s: mpc.layers: expected an array", where);
    int n = cJSON_GetArraySize(arr);
    m->layer_bits = n ? calloc((size_t)n, sizeof *m->layer_bits) : NULL;
    if (n && !m->layer_bits) return oom(ctx);
    pinas_status s = PINAS_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        char path[48];
        snprintf(path, sizeof path, "mpc.layers[%d]", m->n_layer_bits);
        pinas_meta_layer_bits *l = &m->layer_bits[m->n_layer_bits++];
        l->cmp_high = 64;
        s = want_object(ctx, e, where, path);
        if (!s) s = only_keys(ctx, e, where, path, keys, 3);
        if (!s) s = get_strdup(ctx, e, where, path, "id", 0, &l->id);
        if (!s) s = get_int32(ctx, e, where, path, "cmp_bits", PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, 0, &l->cmp_bits);
        if (!s) s = get_int32(ctx, e, where, path, "cmp_high", l->cmp_bits, 64, 1, &l->cmp_high);
        if (s) break;
    }
    return s;
}

static pinas_status read_mpc(pinas_ctx *ctx, const cJSON *mpc, const char *where, pinas_model_meta *m)
{
    static const char *const keys[] = {"frac_bits", "cmp_bits", "layers"};
    pinas_status s = want_object(ctx, mpc, where, "mpc");
    if (!s) s = only_keys(ctx, mpc, where, "mpc", keys, 3);
    if (!s) s = get_int32(ctx, mpc, where, "mpc", "frac_bits", PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, 1, &m->frac_bits);
    if (!s) s = get_int32(ctx, mpc, where, "mpc", "cmp_bits", PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, 1, &m->cmp_bits);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(mpc, "layers");
    if (!s && layers) s = read_layer_bits(ctx, layers, where, m);
    return s;
}

static pinas_status read_latency(pinas_ctx *ctx, const cJSON *pl, const char *where, pinas_model_meta *m)
{
    static const char *const keys[] = {"online_ms", "offline_ms", "total_ms", "compute_ms", "comm_ms", "rounds", "online_bytes",
                                       "preprocessing_bytes"};
    pinas_status s = want_object(ctx, pl, where, "predicted_latency");
    const cJSON *e;
    cJSON_ArrayForEach(e, pl)
    {
        if (s) break;
        char *path = pinas_strfmt("predicted_latency.%s", e->string ? e->string : "?");
        pinas_meta_latency r = {.profile = e->string};
        double *ms[5] = {&r.online_ms, &r.offline_ms, &r.total_ms, &r.compute_ms, &r.comm_ms};
        int64_t *ints[3] = {&r.rounds, &r.online_bytes, &r.preprocessing_bytes};
        s = path ? want_object(ctx, e, where, path) : oom(ctx);
        if (!s) s = only_keys(ctx, e, where, path, keys, 8);
        for (int k = 0; k < 5 && !s; k++) s = pinas_json_get_num(ctx, e, where, path, keys[k], -INFINITY, INFINITY, ms[k]);
        for (int k = 0; k < 3 && !s; k++) s = pinas_json_get_int(ctx, e, where, path, keys[5 + k], 0, INT64_MAX, ints[k]);
        if (!s) s = pinas_model_meta_set_latency(ctx, m, &r);
        free(path);
    }
    return s;
}

static pinas_status read_export(pinas_ctx *ctx, const cJSON *from, const char *where, pinas_meta_export *x)
{
    static const char *const keys[] = {"run_dir", "candidate", "sweep", "arch"};
    pinas_status s = want_object(ctx, from, where, "exported_from");
    if (!s) s = only_keys(ctx, from, where, "exported_from", keys, 4);
    if (!s) s = get_strdup(ctx, from, where, "exported_from", "run_dir", 0, &x->run_dir);
    if (!s) s = get_int32(ctx, from, where, "exported_from", "candidate", 0, INT32_MAX, 0, &x->candidate);
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(from, "sweep"), *arch = cJSON_GetObjectItemCaseSensitive(from, "arch"), *e;
    if (!s && sw && (!cJSON_IsObject(sw) || cJSON_GetArraySize(sw) != 1 || !cJSON_IsNumber(sw->child)))
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: exported_from.sweep: expected {\"lambda\": number} or {\"target_ms\": number}", where);
    if (!s && sw) {
        x->sweep_value = sw->child->valuedouble;
        s = pinas_model_meta_set_str(ctx, &x->sweep_key, sw->child->string);
    }
    if (!s) s = want_object(ctx, arch, where, "exported_from.arch");
    int n = s ? 0 : cJSON_GetArraySize(arch);
    if (!s && n && !(x->arch = calloc((size_t)n, sizeof *x->arch))) s = oom(ctx);
    const cJSON *choices = s ? NULL : arch;
    cJSON_ArrayForEach(e, choices)
    {
        if (!cJSON_IsString(e)) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: exported_from.arch.%s: expected a candidate name", where, e->string);
            break;
        }
        pinas_meta_choice *c = &x->arch[x->n_arch++];
        c->slot = pinas_strdup(e->string);
        c->choice = pinas_strdup(e->valuestring);
        if (!c->slot || !c->choice) {
            s = oom(ctx);
            break;
        }
    }
    x->present = 1;
    return s;
}

/* format, name, input, num_classes, normalize, accuracy, dataset, source. With a net, the missing
 * ones keep the net's defaults already in m. */
static pinas_status read_core(pinas_ctx *ctx, const cJSON *j, const char *where, const pinas_net *net, pinas_model_meta *m)
{
    const char *fmt = NULL;
    pinas_status s = pinas_json_get_str(ctx, j, where, "", "format", &fmt);
    if (!s && strcmp(fmt, PINAS_MODEL_FORMAT) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: format: \"%s\" is not supported (expected \"%s\")", where, fmt, PINAS_MODEL_FORMAT);
    if (!s) s = get_strdup(ctx, j, where, "", "name", 1, &m->name);
    int64_t shp[3];
    if (!s && (!net || cJSON_GetObjectItemCaseSensitive(j, "input")) && !(s = pinas_json_get_int_array(ctx, j, where, "", "input", shp, 3))) {
        if (shp[0] < 1 || shp[0] > PINAS_META_MAX_CHANNELS || shp[1] < 1 || shp[2] < 1 || shp[1] > 1 << 20 || shp[2] > 1 << 20)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: input: expected [C, H, W] with C in [1, %d] and positive H, W", where,
                               PINAS_META_MAX_CHANNELS);
        s = pinas_model_meta_set_input(ctx, m, (int)shp[0], (int)shp[1], (int)shp[2]);
        if (s) return s;
    }
    if (!s && !m->mean) return pinas_error(ctx, PINAS_EFORMAT, "%s: input: missing", where);
    if (!s) s = get_int32(ctx, j, where, "", "num_classes", 1, 1 << 20, net != NULL, &m->num_classes);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(j, "normalize");
    if (!s && norm && !cJSON_IsObject(norm))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: normalize: expected {\"mean\": [...], \"std\": [...]}", where);
    for (int k = 0; k < 2 && !s && norm; k++) {
        const char *key = k ? "std" : "mean";
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(norm, key), *e;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != m->input[0])
            return pinas_error(ctx, PINAS_EFORMAT, "%s: normalize.%s: expected %d numbers", where, key, m->input[0]);
        int c = 0;
        cJSON_ArrayForEach(e, a)
        {
            if (!cJSON_IsNumber(e) || (k && !(e->valuedouble > 0)))
                return pinas_error(ctx, PINAS_EFORMAT, "%s: normalize.%s: expected %snumbers", where, key, k ? "positive " : "");
            (k ? m->std : m->mean)[c++] = e->valuedouble;
        }
    }
    if (!s && cJSON_GetObjectItemCaseSensitive(j, "accuracy")) s = get_num_null(ctx, j, where, "", "accuracy", &m->accuracy);
    if (!s) s = get_strdup(ctx, j, where, "", "dataset", 1, &m->dataset);
    if (!s) s = get_strdup(ctx, j, where, "", "source", 1, &m->source);
    if (!s && !m->source) s = pinas_model_meta_set_str(ctx, &m->source, "");
    return s;
}

/* The meta agrees with the net it describes: shape, classes, normalisation, mpc ranges. */
static pinas_status check_against_net(pinas_ctx *ctx, const pinas_model_meta *m, const pinas_net *net, const char *where)
{
    const pinas_node *in = pinas_net_node(net, 0);
    if (m->num_classes != pinas_net_num_classes(net))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: num_classes: %d, but net.json has %d", where, m->num_classes, pinas_net_num_classes(net));
    if (m->input[0] != in->c || m->input[1] != in->h || m->input[2] != in->w)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: input: [%d, %d, %d], but net.json has [%d, %d, %d]", where, m->input[0], m->input[1],
                           m->input[2], in->c, in->h, in->w);
    for (int c = 0; c < m->input[0]; c++)
        if (!(m->std[c] > 0)) return pinas_error(ctx, PINAS_EFORMAT, "%s: normalize.std: expected positive numbers", where);
    if (m->frac_bits < PINAS_FRAC_BITS_MIN || m->frac_bits > PINAS_FRAC_BITS_MAX)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: mpc.frac_bits: expected an integer in [%d, %d], got %d", where, PINAS_FRAC_BITS_MIN,
                           PINAS_FRAC_BITS_MAX, m->frac_bits);
    if (m->cmp_bits < PINAS_CMP_BITS_MIN || m->cmp_bits > PINAS_CMP_BITS_MAX)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: mpc.cmp_bits: expected an integer in [%d, %d], got %d", where, PINAS_CMP_BITS_MIN,
                           PINAS_CMP_BITS_MAX, m->cmp_bits);
    for (int i = 0; i < m->n_layer_bits; i++)
        if (pinas_net_find(net, m->layer_bits[i].id) < 0)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: mpc.layers[%d].id: no node \"%s\" in net.json", where, i, m->layer_bits[i].id);
    return PINAS_OK;
}

/* Keys the reader knows; the others go to `extra`. */
static int known_key(const char *k)
{
    static const char *const keys[] = {"format", "name", "input", "num_classes", "normalize", "accuracy", "dataset", "train",
                                       "mpc", "predicted_latency", "source", "config", "exported_from"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (k && !strcmp(k, keys[i])) return 1;
    return 0;
}

pinas_status pinas_model_meta_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, const pinas_net *net, pinas_model_meta *out)
{
    pinas_status s = net ? pinas_model_meta_default(ctx, net, out) : (pinas_model_meta_init(out), PINAS_OK);
    if (s) return s;
    if (!cJSON_IsObject(json)) s = pinas_error(ctx, PINAS_EFORMAT, "%s: expected a JSON object", where);
    if (!s) s = read_core(ctx, json, where, net, out);
    const cJSON *e, *all = s ? NULL : json;
    cJSON_ArrayForEach(e, all)
    {
        if (!strcmp(e->string, "train")) s = read_train(ctx, e, where, &out->train);
        else if (!strcmp(e->string, "mpc")) s = read_mpc(ctx, e, where, out);
        else if (!strcmp(e->string, "predicted_latency")) s = read_latency(ctx, e, where, out);
        else if (!strcmp(e->string, "exported_from")) s = read_export(ctx, e, where, &out->exported_from);
        else if (!strcmp(e->string, "config") && !(out->config = cJSON_Duplicate(e, 1))) s = oom(ctx);
        else if (!known_key(e->string)) {
            if (!out->extra && !(out->extra = cJSON_CreateObject())) s = oom(ctx);
            else cJSON_AddItemToObject(out->extra, e->string, cJSON_Duplicate(e, 1));
        }
        if (s) break;
    }
    if (!s && net) s = check_against_net(ctx, out, net, where);
    if (s) pinas_model_meta_free(out);
    return s;
}

pinas_status pinas_model_meta_read(pinas_ctx *ctx, const char *path, const pinas_net *net, pinas_model_meta *out)
{
    cJSON *j = NULL;
    pinas_status s = pinas_json_load(ctx, path, &j);
    if (!s) s = pinas_model_meta_from_json(ctx, j, path, net, out);
    else pinas_model_meta_init(out);
    cJSON_Delete(j);
    return s;
}

/* ------------------------------------------------------------ model dirs */

void pinas_model_free(pinas_model *m)
{
    if (!m) return;
    pinas_net_free(m->net);
    pinas_tensors_free(m->weights);
    pinas_model_meta_free(&m->meta);
    free(m);
}

/* Every value finite, and BN variances not negative (a NaN or Inf weight, or sqrt of a negative
 * variance, runs to garbage logits with exit 0). */
static pinas_status check_values(pinas_ctx *ctx, const pinas_tensor_view *v, const char *where)
{
    const float *x = v->data;
    size_t n = v->nbytes / sizeof(float), sl = strlen(v->name);
    int is_var = sl >= 12 && !strcmp(v->name + sl - 12, ".running_var");
    for (size_t q = 0; q < n; q++) {
        if (!isfinite(x[q]))
            return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: element %zu is %s: weights must be finite numbers", where,
                               v->name, q, isnan(x[q]) ? "NaN" : x[q] > 0 ? "+Inf" : "-Inf");
        if (is_var && x[q] < 0)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: element %zu is %g: a variance cannot be negative", where,
                               v->name, q, (double)x[q]);
    }
    return PINAS_OK;
}

static pinas_status check_weights(pinas_ctx *ctx, const pinas_net *net, const pinas_tensors *w, const char *where)
{
    for (int i = 1; i < pinas_net_n_nodes(net); i++) {
        pinas_param_spec specs[8];
        int k = pinas_node_param_specs(net, i, specs, 8);
        for (int j = 0; j < k && j < 8; j++) {
            if (specs[j].kind == PINAS_PARAM_ARCH) continue;
            pinas_tensor_view v;
            pinas_status s = pinas_tensors_expect(ctx, w, where, specs[j].name, PINAS_F32, specs[j].ndim, specs[j].shape, &v);
            if (!s) s = check_values(ctx, &v, where);
            if (s) return s;
        }
    }
    return PINAS_OK;
}

pinas_status pinas_model_create(pinas_ctx *ctx, pinas_net *net, pinas_tensors *weights, pinas_model_meta *meta, pinas_model **out)
{
    *out = NULL;
    pinas_model_meta mm;
    pinas_status s = PINAS_OK;
    if (meta) {
        mm = *meta;
        pinas_model_meta_init(meta);
    } else {
        s = pinas_model_meta_default(ctx, net, &mm);
    }
    int n = pinas_net_n_nodes(net);
    for (int i = 0; i < n && !s; i++)
        if (pinas_node_is_open(pinas_net_node(net, i)))
            s = pinas_error(ctx, PINAS_EINVAL, "node %s: slot is still open; a model needs every slot decided", pinas_net_node(net, i)->id);
    if (!s) s = check_weights(ctx, net, weights, "weights");
    if (!s) s = check_against_net(ctx, &mm, net, "meta");
    pinas_model *m = s ? NULL : calloc(1, sizeof *m);
    if (!s && !m) s = oom(ctx);
    if (s) {
        pinas_net_free(net);
        pinas_tensors_free(weights);
        pinas_model_meta_free(&mm);
        return s;
    }
    m->net = net;
    m->weights = weights;
    m->meta = mm;
    *out = m;
    return PINAS_OK;
}

pinas_status pinas_model_load(pinas_ctx *ctx, const char *dir, pinas_model **out)
{
    *out = NULL;
    char *pn = pinas_path_join(dir, "net.json"), *pw = pinas_path_join(dir, "weights.safetensors"), *pm = pinas_path_join(dir, "meta.json");
    pinas_net *net = NULL;
    pinas_tensors *w = NULL;
    pinas_model_meta meta;
    pinas_model_meta_init(&meta);
    pinas_model *m = NULL;
    pinas_status s = pinas_path_exists(dir) ? PINAS_OK : pinas_error(ctx, PINAS_EIO, "%s: no such model dir", dir);
    if (!s) s = pinas_net_load(ctx, pn, &net);
    for (int i = 0; !s && i < pinas_net_n_nodes(net); i++)
        if (pinas_node_is_open(pinas_net_node(net, i)))
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: node %s: slot is still open; a model needs every slot decided", pn, pinas_net_node(net, i)->id);
    if (!s) s = pinas_safetensors_load(ctx, pw, &w);
    if (!s) s = check_weights(ctx, net, w, pw);
    if (!s) s = pinas_model_meta_read(ctx, pm, net, &meta);
    if (!s && !(m = calloc(1, sizeof *m))) s = oom(ctx);
    free(pn);
    free(pw);
    free(pm);
    if (s) {
        pinas_net_free(net);
        pinas_tensors_free(w);
        pinas_model_meta_free(&meta);
        return s;
    }
    m->net = net;
    m->weights = w;
    m->meta = meta;
    *out = m;
    return PINAS_OK;
}

pinas_status pinas_model_save(pinas_ctx *ctx, const char *dir, const pinas_model *m)
{
    pinas_status s = pinas_mkdir_p(ctx, dir);
    if (s) return s;
    char *pn = pinas_path_join(dir, "net.json"), *pw = pinas_path_join(dir, "weights.safetensors"), *pm = pinas_path_join(dir, "meta.json");
    cJSON *md = cJSON_CreateObject();
    cJSON_AddStringToObject(md, "format", PINAS_MODEL_FORMAT);
    cJSON_AddStringToObject(md, "net", pinas_net_name(m->net));
    s = pinas_safetensors_save(ctx, pw, m->weights, md);
    cJSON_Delete(md);
    if (!s) s = pinas_net_save(ctx, m->net, pn);
    if (!s) s = pinas_model_meta_write(ctx, pm, &m->meta);
    free(pn);
    free(pw);
    free(pm);
    return s;
}

uint64_t pinas_model_hash(const pinas_model *m)
{
    uint64_t h = pinas_net_hash(m->net);
    for (int k = 0; k < pinas_tensors_count(m->weights); k++) {
        pinas_tensor_view v;
        pinas_tensors_at(m->weights, k, &v);
        h = pinas_fnv1a64(v.name, strlen(v.name), h);
        h = pinas_fnv1a64(v.data, v.nbytes, h);
    }
    return h;
}

const float *pinas_model_param(const pinas_model *m, int node, const char *suffix)
{
    char name[PINAS_MAX_ID + 32];
    snprintf(name, sizeof name, "%s.%s", pinas_net_node(m->net, node)->id, suffix);
    pinas_tensor_view v;
    if (pinas_tensors_find(m->weights, name, &v) || v.dtype != PINAS_F32) return NULL;
    return v.data;
}

/* ------------------------------------------------------------ random models */

static double unif(pinas_rng *r) { return ((pinas_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double gauss(pinas_rng *r) { return sqrt(-2.0 * log(unif(r))) * cos(6.283185307179586 * unif(r)); }

/* One parameter tensor's random values (see pinas_model_random). */
static void random_values(const pinas_node *n, const pinas_param_spec *spec, int64_t numel, pinas_rng *st, float *buf)
{
    const char *suf = strrchr(spec->name, '.') + 1;
    int64_t fan_in = 1;
    for (int d = 1; d < spec->ndim; d++) fan_in *= spec->shape[d];
    for (int64_t e = 0; e < numel; e++) {
        double v;
        if (n->op == PINAS_OP_BATCHNORM) {
            if (!strcmp(suf, "weight")) v = 0.5 + unif(st);
            else if (!strcmp(suf, "running_var")) v = 0.5 + unif(st);
            else v = 0.1 * gauss(st);
        } else if (n->op == PINAS_OP_ACT) {
            v = !strcmp(suf, "w0") ? 0.005 + 0.002 * gauss(st) : !strcmp(suf, "w1") ? 1.0 + 0.05 * gauss(st) : 0.01 * gauss(st);
        } else if (!strcmp(suf, "bias")) {
            v = 0.01 * gauss(st);
        } else {
            v = gauss(st) * sqrt(2.0 / (double)fan_in);
        }
        buf[e] = (float)v;
    }
}

static pinas_status random_weights(pinas_ctx *ctx, const pinas_net *net, pinas_rng *st, pinas_tensors *w)
{
    pinas_status s = PINAS_OK;
    for (int i = 1; i < pinas_net_n_nodes(net) && !s; i++) {
        pinas_param_spec specs[8];
        int k = pinas_node_param_specs(net, i, specs, 8);
        for (int j = 0; j < k && j < 8 && !s; j++) {
            if (specs[j].kind == PINAS_PARAM_ARCH) continue;
            int64_t numel = 1;
            for (int d = 0; d < specs[j].ndim; d++) numel *= specs[j].shape[d];
            float *buf = malloc((size_t)(numel ? numel : 1) * sizeof *buf);
            if (!buf) return oom(ctx);
            random_values(pinas_net_node(net, i), &specs[j], numel, st, buf);
            s = pinas_tensors_add(ctx, w, specs[j].name, PINAS_F32, specs[j].ndim, specs[j].shape, buf);
            free(buf);
        }
    }
    return s;
}

pinas_status pinas_model_random(pinas_ctx *ctx, const pinas_net *net, uint64_t seed, pinas_model **out)
{
    *out = NULL;
    pinas_net *copy = pinas_net_clone(net);
    pinas_tensors *w = pinas_tensors_create();
    pinas_rng st = {seed ^ 0x5eed5eed5eedULL};
    pinas_model_meta meta;
    pinas_status s = copy && w ? random_weights(ctx, net, &st, w) : oom(ctx);
    if (!s) s = pinas_model_meta_default(ctx, net, &meta);
    if (!s && (s = pinas_model_meta_set_str(ctx, &meta.source, "random"))) pinas_model_meta_free(&meta);
    if (s) {
        pinas_net_free(copy);
        pinas_tensors_free(w);
        return s;
    }
    if ((s = pinas_model_create(ctx, copy, w, &meta, out))) return s;
    /* Batchnorm statistics from one forward pass over seeded N(0,1) inputs: without them a deep random
     * net's activations (and a polynomial net's squares) grow without bound. */
    const pinas_node *in = pinas_net_node(net, 0);
    size_t in_sz = (size_t)in->c * in->h * in->w;
    int batch = (int)((1u << 18) / in_sz);
    batch = batch < 2 ? 2 : batch > 16 ? 16 : batch;
    float *x = malloc((size_t)batch * in_sz * sizeof *x), *logits = malloc((size_t)batch * pinas_net_num_classes(net) * sizeof *logits);
    if (!x || !logits) s = oom(ctx);
    for (size_t e = 0; !s && e < (size_t)batch * in_sz; e++) x[e] = (float)gauss(&st);
    if (!s) s = plain_forward_impl(ctx, *out, x, batch, logits, 1);
    free(x);
    free(logits);
    if (s) {
        pinas_model_free(*out);
        *out = NULL;
    }
    return s;
}
