/* Model dirs: a decided net + weights.safetensors + meta.json; validation, atomic save, random weights. */
#define _GNU_SOURCE
#include "net_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pinas_model_free(pinas_model *m)
{
    if (!m) return;
    pinas_net_free(m->net);
    pinas_tensors_free(m->weights);
    cJSON_Delete(m->meta);
    free(m);
}

static cJSON *default_meta(const pinas_net *net)
{
    const pinas_node *in = pinas_net_node(net, 0);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", PINAS_MODEL_FORMAT);
    cJSON_AddStringToObject(m, "name", pinas_net_name(net));
    int shp[3] = {in->c, in->h, in->w};
    cJSON_AddItemToObject(m, "input", cJSON_CreateIntArray(shp, 3));
    cJSON_AddNumberToObject(m, "num_classes", pinas_net_num_classes(net));
    cJSON *norm = cJSON_AddObjectToObject(m, "normalize");
    cJSON *mean = cJSON_AddArrayToObject(norm, "mean"), *std = cJSON_AddArrayToObject(norm, "std");
    for (int c = 0; c < in->c; c++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(0));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(1));
    }
    cJSON_AddNullToObject(m, "accuracy");
    cJSON *mpc = cJSON_AddObjectToObject(m, "mpc");
    cJSON_AddNumberToObject(mpc, "frac_bits", 16);
    cJSON_AddNumberToObject(mpc, "cmp_bits", 64);
    cJSON_AddObjectToObject(m, "predicted_latency");
    cJSON_AddStringToObject(m, "source", "");
    return m;
}

/* Fills in missing keys of meta from the defaults, and checks the ones present agree with the net. */
static pinas_status check_meta(pinas_ctx *ctx, const pinas_net *net, cJSON *meta, const char *where)
{
    if (!cJSON_IsObject(meta)) return pinas_error(ctx, PINAS_EFORMAT, "%s: expected a JSON object", where);
    cJSON *def = default_meta(net), *it;
    cJSON_ArrayForEach(it, def)
    {
        if (!cJSON_GetObjectItemCaseSensitive(meta, it->string)) cJSON_AddItemToObject(meta, it->string, cJSON_Duplicate(it, 1));
    }
    cJSON_Delete(def);
    const char *fmt = NULL;
    pinas_status s;
    if ((s = pinas_json_get_str(ctx, meta, where, "", "format", &fmt))) return s;
    if (strcmp(fmt, PINAS_MODEL_FORMAT) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: format: \"%s\" is not supported (expected \"%s\")", where, fmt, PINAS_MODEL_FORMAT);
    int64_t nc;
    if ((s = pinas_json_get_int(ctx, meta, where, "", "num_classes", 1, 1 << 20, &nc))) return s;
    if (nc != pinas_net_num_classes(net))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: num_classes: %lld, but net.json has %d", where, (long long)nc, pinas_net_num_classes(net));
    int64_t shp[3];
    if ((s = pinas_json_get_int_array(ctx, meta, where, "", "input", shp, 3))) return s;
    const pinas_node *in = pinas_net_node(net, 0);
    if (shp[0] != in->c || shp[1] != in->h || shp[2] != in->w)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: input: [%lld, %lld, %lld], but net.json has [%d, %d, %d]", where, (long long)shp[0],
                           (long long)shp[1], (long long)shp[2], in->c, in->h, in->w);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(meta, "normalize");
    if (!cJSON_IsObject(norm)) return pinas_error(ctx, PINAS_EFORMAT, "%s: normalize: expected {\"mean\": [...], \"std\": [...]}", where);
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "std" : "mean";
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(norm, key), *e;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != in->c)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: normalize.%s: expected %d numbers", where, key, in->c);
        cJSON_ArrayForEach(e, a)
        {
            if (!cJSON_IsNumber(e) || (k && !(e->valuedouble > 0)))
                return pinas_error(ctx, PINAS_EFORMAT, "%s: normalize.%s: expected %snumbers", where, key, k ? "positive " : "");
        }
    }
    const cJSON *mpc = cJSON_GetObjectItemCaseSensitive(meta, "mpc");
    int64_t v;
    if (!cJSON_IsObject(mpc)) return pinas_error(ctx, PINAS_EFORMAT, "%s: mpc: expected an object", where);
    if ((s = pinas_json_get_int_opt(ctx, mpc, where, "mpc", "frac_bits", 1, 40, &v))) return s;
    if ((s = pinas_json_get_int_opt(ctx, mpc, where, "mpc", "cmp_bits", 2, 64, &v))) return s;
    return PINAS_OK;
}

static pinas_status check_weights(pinas_ctx *ctx, const pinas_net *net, const pinas_tensors *w, const char *where)
{
    for (int i = 1; i < pinas_net_n_nodes(net); i++) {
        pinas_param_spec specs[8];
        int k = pinas_node_param_specs(net, i, specs, 8);
        for (int j = 0; j < k && j < 8; j++) {
            if (specs[j].kind == PINAS_PARAM_ARCH) continue;
            pinas_status s = pinas_tensors_expect(ctx, w, where, specs[j].name, PINAS_F32, specs[j].ndim, specs[j].shape, NULL);
            if (s) return s;
        }
    }
    return PINAS_OK;
}

pinas_status pinas_model_create(pinas_ctx *ctx, pinas_net *net, pinas_tensors *weights, cJSON *meta, pinas_model **out)
{
    *out = NULL;
    pinas_status s = PINAS_OK;
    if (!meta) meta = default_meta(net);
    int n = pinas_net_n_nodes(net);
    for (int i = 0; i < n && !s; i++)
        if (pinas_node_is_open(pinas_net_node(net, i)))
            s = pinas_error(ctx, PINAS_EINVAL, "node %s: slot is still open; a model needs every slot decided", pinas_net_node(net, i)->id);
    if (!s) s = check_weights(ctx, net, weights, "weights");
    if (!s) s = check_meta(ctx, net, meta, "meta");
    pinas_model *m = s ? NULL : calloc(1, sizeof *m);
    if (!s && !m) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (s) {
        pinas_net_free(net);
        pinas_tensors_free(weights);
        cJSON_Delete(meta);
        return s;
    }
    m->net = net;
    m->weights = weights;
    m->meta = meta;
    *out = m;
    return PINAS_OK;
}

pinas_status pinas_model_load(pinas_ctx *ctx, const char *dir, pinas_model **out)
{
    *out = NULL;
    char *pn = pinas_path_join(dir, "net.json"), *pw = pinas_path_join(dir, "weights.safetensors"), *pm = pinas_path_join(dir, "meta.json");
    pinas_net *net = NULL;
    pinas_tensors *w = NULL;
    cJSON *meta = NULL;
    pinas_model *m = NULL;
    pinas_status s = pinas_path_exists(dir) ? PINAS_OK : pinas_error(ctx, PINAS_EIO, "%s: no such model dir", dir);
    if (!s) s = pinas_net_load(ctx, pn, &net);
    for (int i = 0; !s && i < pinas_net_n_nodes(net); i++)
        if (pinas_node_is_open(pinas_net_node(net, i)))
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: node %s: slot is still open; a model needs every slot decided", pn, pinas_net_node(net, i)->id);
    if (!s) s = pinas_safetensors_load(ctx, pw, &w);
    if (!s) s = check_weights(ctx, net, w, pw);
    if (!s) s = pinas_json_load(ctx, pm, &meta);
    if (!s) s = check_meta(ctx, net, meta, pm);
    if (!s && !(m = calloc(1, sizeof *m))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    free(pn);
    free(pw);
    free(pm);
    if (s) {
        pinas_net_free(net);
        pinas_tensors_free(w);
        cJSON_Delete(meta);
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
    if (!s) s = pinas_json_save(ctx, pm, m->meta);
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

/* splitmix64: a small, well-mixed deterministic generator for reproducible random weights. */
static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s) { return ((sm64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double gauss(uint64_t *s) { return sqrt(-2.0 * log(unif(s))) * cos(6.283185307179586 * unif(s)); }

pinas_status pinas_model_random(pinas_ctx *ctx, const pinas_net *net, uint64_t seed, pinas_model **out)
{
    *out = NULL;
    pinas_net *copy = pinas_net_clone(net);
    pinas_tensors *w = pinas_tensors_create();
    if (!copy || !w) {
        pinas_net_free(copy);
        pinas_tensors_free(w);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    uint64_t st = seed ^ 0x5eed5eed5eedULL;
    pinas_status s = PINAS_OK;
    for (int i = 1; i < pinas_net_n_nodes(net) && !s; i++) {
        const pinas_node *n = pinas_net_node(net, i);
        pinas_param_spec specs[8];
        int k = pinas_node_param_specs(net, i, specs, 8);
        for (int j = 0; j < k && j < 8 && !s; j++) {
            if (specs[j].kind == PINAS_PARAM_ARCH) continue;
            int64_t numel = 1;
            for (int d = 0; d < specs[j].ndim; d++) numel *= specs[j].shape[d];
            float *buf = malloc((size_t)(numel ? numel : 1) * sizeof *buf);
            if (!buf) {
                s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
                break;
            }
            const char *suf = strrchr(specs[j].name, '.') + 1;
            int64_t fan_in = 1;
            for (int d = 1; d < specs[j].ndim; d++) fan_in *= specs[j].shape[d];
            for (int64_t e = 0; e < numel; e++) {
                double v;
                if (n->op == PINAS_OP_BATCHNORM) {
                    if (!strcmp(suf, "weight")) v = 0.5 + unif(&st);
                    else if (!strcmp(suf, "running_var")) v = 0.5 + unif(&st);
                    else v = 0.1 * gauss(&st);
                } else if (n->op == PINAS_OP_ACT) {
                    v = !strcmp(suf, "w0") ? 0.005 + 0.002 * gauss(&st) : !strcmp(suf, "w1") ? 1.0 + 0.05 * gauss(&st) : 0.01 * gauss(&st);
                } else if (!strcmp(suf, "bias")) {
                    v = 0.01 * gauss(&st);
                } else {
                    v = gauss(&st) * sqrt(2.0 / (double)fan_in);
                }
                buf[e] = (float)v;
            }
            s = pinas_tensors_add(ctx, w, specs[j].name, PINAS_F32, specs[j].ndim, specs[j].shape, buf);
            free(buf);
        }
    }
    if (s) {
        pinas_net_free(copy);
        pinas_tensors_free(w);
        return s;
    }
    cJSON *meta = default_meta(net);
    cJSON_ReplaceItemInObjectCaseSensitive(meta, "source", cJSON_CreateString("random"));
    if ((s = pinas_model_create(ctx, copy, w, meta, out))) return s;
    /* Batchnorm statistics from one forward pass over seeded N(0,1) inputs: without them a deep random
     * net's activations (and a polynomial net's squares) grow without bound. */
    const pinas_node *in = pinas_net_node(net, 0);
    size_t in_sz = (size_t)in->c * in->h * in->w;
    int batch = (int)((1u << 18) / in_sz);
    batch = batch < 2 ? 2 : batch > 16 ? 16 : batch;
    float *x = malloc((size_t)batch * in_sz * sizeof *x), *logits = malloc((size_t)batch * pinas_net_num_classes(net) * sizeof *logits);
    if (!x || !logits) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
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
