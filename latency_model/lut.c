/* The latency LUT of a search space: every (open slot, candidate) priced once, plus the fixed cost of
 * the other nodes; JSON save/load; lookups for decided architectures; the plain arrays E[latency] reads. */
#define _GNU_SOURCE
#include "cost_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char op[40];
    double online_ms, offline_ms, compute_ms, comm_ms;
    double rounds;
    double online_bytes[2], offline_bytes[2];
} lut_cand;

typedef struct {
    int node;
    char id[PINAS_MAX_ID];
    char op[16];
    int shape[3];
    int in_shape[3];
    int kernel[3]; /* pool: kh, kw, stride */
    int n_cands;
    lut_cand cands[PINAS_MAX_CANDS];
} lut_slot;

struct pinas_cost_lut {
    char hw[64], link[64], space[PINAS_MAX_ID], version[32];
    char space_hash[24];
    pinas_mpc_params params;
    double fixed_ms, fixed_offline_ms;
    int n_slots;
    lut_slot *slots;
    cJSON *hw_json, *link_json; /* the profiles, recorded in the header */
    /* pinas_cost_lut_get_arrays' view, made once the slots are final */
    pinas_cost_lut_arrays arrays;
    int *arr_node, *arr_n;
    const char **arr_id;
    float *arr_ms;
    const float **arr_rows;
};

/* Fills lut->arrays from the slots; -1 when out of memory. */
static int make_arrays(pinas_cost_lut *lut)
{
    int n = lut->n_slots > 0 ? lut->n_slots : 1;
    lut->arr_node = calloc((size_t)n, sizeof *lut->arr_node);
    lut->arr_n = calloc((size_t)n, sizeof *lut->arr_n);
    lut->arr_id = calloc((size_t)n, sizeof *lut->arr_id);
    lut->arr_ms = calloc((size_t)n * PINAS_MAX_CANDS, sizeof *lut->arr_ms);
    lut->arr_rows = calloc((size_t)n, sizeof *lut->arr_rows);
    if (!lut->arr_node || !lut->arr_n || !lut->arr_id || !lut->arr_ms || !lut->arr_rows) return -1;
    for (int k = 0; k < lut->n_slots; k++) {
        const lut_slot *sl = &lut->slots[k];
        lut->arr_node[k] = sl->node;
        lut->arr_n[k] = sl->n_cands;
        lut->arr_id[k] = sl->id;
        float *row = lut->arr_ms + (size_t)k * PINAS_MAX_CANDS;
        for (int j = 0; j < sl->n_cands; j++) row[j] = (float)sl->cands[j].online_ms;
        lut->arr_rows[k] = row;
    }
    lut->arrays.space = lut->space;
    lut->arrays.fixed_ms = (float)lut->fixed_ms;
    lut->arrays.n_slots = lut->n_slots;
    lut->arrays.node = lut->arr_node;
    lut->arrays.id = lut->arr_id;
    lut->arrays.n_cands = lut->arr_n;
    lut->arrays.cand_ms = lut->arr_rows;
    return 0;
}

const pinas_cost_lut_arrays *pinas_cost_lut_get_arrays(const pinas_cost_lut *lut) { return &lut->arrays; }

void pinas_cost_lut_range(const pinas_cost_lut *lut, double *lo_ms, double *hi_ms)
{
    double lo = lut->fixed_ms, hi = lo;
    for (int k = 0; k < lut->n_slots; k++) {
        double mn = lut->slots[k].cands[0].online_ms, mx = mn;
        for (int j = 1; j < lut->slots[k].n_cands; j++) {
            double v = lut->slots[k].cands[j].online_ms;
            if (v < mn) mn = v;
            if (v > mx) mx = v;
        }
        lo += mn;
        hi += mx;
    }
    *lo_ms = lo;
    *hi_ms = hi;
}

static void cand_from_row(lut_cand *c, const pinas_cost_row *r)
{
    snprintf(c->op, sizeof c->op, "%s", r->op);
    c->online_ms = r->online_s * 1e3;
    c->offline_ms = r->offline_s * 1e3;
    c->compute_ms = r->compute_s * 1e3;
    c->comm_ms = r->comm_s * 1e3;
    c->rounds = (double)r->counts.online.rounds;
    for (int p = 0; p < 2; p++) {
        c->online_bytes[p] = (double)r->counts.online.bytes[p];
        c->offline_bytes[p] = (double)r->counts.offline.bytes[p];
    }
}

pinas_status pinas_cost_lut_build(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                  const pinas_mpc_params *p, pinas_cost_lut **out)
{
    *out = NULL;
    pinas_cost_lut *lut = calloc(1, sizeof *lut);
    int n = pinas_net_n_nodes(space);
    if (lut) lut->slots = calloc(n, sizeof *lut->slots);
    if (!lut || !lut->slots) {
        pinas_cost_lut_free(lut);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    snprintf(lut->hw, sizeof lut->hw, "%s", pinas_cost_hw_name(hw));
    snprintf(lut->link, sizeof lut->link, "%s", pinas_cost_link_name(link));
    snprintf(lut->space, sizeof lut->space, "%s", pinas_net_name(space));
    snprintf(lut->version, sizeof lut->version, "%s", PINAS_VERSION);
    snprintf(lut->space_hash, sizeof lut->space_hash, "%016llx", (unsigned long long)pinas_net_hash(space));
    lut->params = *p;
    lut->hw_json = pinas_cost_hw_to_json(hw);
    lut->link_json = pinas_cost_link_to_json(link);
    pinas_status s = PINAS_OK;
    for (int i = 0; i < n && !s; i++) {
        const pinas_node *nd = pinas_net_node(space, i);
        pinas_cost_row r;
        if (!pinas_node_is_open(nd)) {
            s = pinas_cost_predict_node(ctx, space, i, -1, hw, link, p, &r);
            if (!s) {
                lut->fixed_ms += r.online_s * 1e3;
                lut->fixed_offline_ms += r.offline_s * 1e3;
            }
            continue;
        }
        lut_slot *sl = &lut->slots[lut->n_slots++];
        sl->node = i;
        snprintf(sl->id, sizeof sl->id, "%s", nd->id);
        snprintf(sl->op, sizeof sl->op, "%s", pinas_op_name(nd->op));
        const pinas_node *in = pinas_net_node(space, nd->inputs[0]);
        sl->shape[0] = nd->c, sl->shape[1] = nd->h, sl->shape[2] = nd->w;
        sl->in_shape[0] = in->c, sl->in_shape[1] = in->h, sl->in_shape[2] = in->w;
        if (nd->op == PINAS_OP_POOL) sl->kernel[0] = nd->kh, sl->kernel[1] = nd->kw, sl->kernel[2] = nd->stride;
        sl->n_cands = nd->n_cands;
        for (int k = 0; k < nd->n_cands && !s; k++) {
            s = pinas_cost_predict_node(ctx, space, i, k, hw, link, p, &r);
            if (!s) cand_from_row(&sl->cands[k], &r);
        }
    }
    if (!s && pinas_cost_hw_kind(hw) != PINAS_HW_PASNET) {
        /* The session's own cost (handshake, output reveal) does not depend on the choices: price it on
         * the architecture that takes every slot's first candidate. */
        pinas_net *arch = pinas_net_clone(space);
        if (!arch) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        for (int k = 0; k < lut->n_slots && !s; k++) s = pinas_net_decide(ctx, arch, lut->slots[k].node, 0);
        pinas_cost_row r;
        if (!s) s = cost_session_row(ctx, arch, link, p, &r);
        if (!s) {
            lut->fixed_ms += r.online_s * 1e3;
            lut->fixed_offline_ms += r.offline_s * 1e3;
        }
        pinas_net_free(arch);
    }
    if (!s && (!lut->hw_json || !lut->link_json || make_arrays(lut))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (s) {
        pinas_cost_lut_free(lut);
        return s;
    }
    *out = lut;
    return PINAS_OK;
}

void pinas_cost_lut_free(pinas_cost_lut *lut)
{
    if (!lut) return;
    free(lut->slots);
    free(lut->arr_node);
    free(lut->arr_n);
    free(lut->arr_id);
    free(lut->arr_ms);
    free(lut->arr_rows);
    cJSON_Delete(lut->hw_json);
    cJSON_Delete(lut->link_json);
    free(lut);
}

static cJSON *num_pair(const double v[2])
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(v[0]));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(v[1]));
    return a;
}

cJSON *pinas_cost_lut_to_json(const pinas_cost_lut *lut)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", PINAS_LUT_FORMAT);
    cJSON *h = cJSON_AddObjectToObject(o, "header");
    cJSON_AddStringToObject(h, "pinas_version", lut->version);
    cJSON_AddStringToObject(h, "hw", lut->hw);
    cJSON_AddStringToObject(h, "net", lut->link);
    cJSON *m = cJSON_AddObjectToObject(h, "mpc");
    cJSON_AddNumberToObject(m, "frac_bits", lut->params.frac_bits);
    cJSON_AddNumberToObject(m, "cmp_bits", lut->params.cmp_bits);
    cJSON_AddNumberToObject(m, "batch", lut->params.batch);
    cJSON_AddStringToObject(h, "space", lut->space);
    cJSON_AddStringToObject(h, "space_hash", lut->space_hash);
    cJSON_AddStringToObject(h, "unit", "ms");
    cJSON_AddStringToObject(h, "latency", "online");
    if (lut->hw_json) cJSON_AddItemToObject(h, "hw_profile", cJSON_Duplicate(lut->hw_json, 1));
    if (lut->link_json) cJSON_AddItemToObject(h, "net_profile", cJSON_Duplicate(lut->link_json, 1));
    cJSON *f = cJSON_AddObjectToObject(o, "fixed");
    cJSON_AddNumberToObject(f, "online_ms", lut->fixed_ms);
    cJSON_AddNumberToObject(f, "offline_ms", lut->fixed_offline_ms);
    cJSON *slots = cJSON_AddArrayToObject(o, "slots");
    for (int k = 0; k < lut->n_slots; k++) {
        const lut_slot *sl = &lut->slots[k];
        cJSON *so = cJSON_CreateObject();
        cJSON_AddNumberToObject(so, "index", sl->node);
        cJSON_AddStringToObject(so, "id", sl->id);
        cJSON_AddStringToObject(so, "op", sl->op);
        cJSON_AddItemToObject(so, "in_shape", cJSON_CreateIntArray(sl->in_shape, 3));
        cJSON_AddItemToObject(so, "shape", cJSON_CreateIntArray(sl->shape, 3));
        if (strcmp(sl->op, "pool") == 0) cJSON_AddItemToObject(so, "kernel", cJSON_CreateIntArray(sl->kernel, 3));
        cJSON *cs = cJSON_AddArrayToObject(so, "candidates");
        for (int j = 0; j < sl->n_cands; j++) {
            const lut_cand *c = &sl->cands[j];
            cJSON *co = cJSON_CreateObject();
            cJSON_AddStringToObject(co, "op", c->op);
            cJSON_AddNumberToObject(co, "online_ms", c->online_ms);
            cJSON_AddNumberToObject(co, "offline_ms", c->offline_ms);
            cJSON_AddNumberToObject(co, "compute_ms", c->compute_ms);
            cJSON_AddNumberToObject(co, "comm_ms", c->comm_ms);
            cJSON_AddNumberToObject(co, "rounds", c->rounds);
            cJSON_AddItemToObject(co, "online_bytes", num_pair(c->online_bytes));
            cJSON_AddItemToObject(co, "offline_bytes", num_pair(c->offline_bytes));
            cJSON_AddItemToArray(cs, co);
        }
        cJSON_AddItemToArray(slots, so);
    }
    return o;
}

pinas_status pinas_cost_lut_save(pinas_ctx *ctx, const pinas_cost_lut *lut, const char *path)
{
    cJSON *j = pinas_cost_lut_to_json(lut);
    if (!j) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = pinas_json_save(ctx, path, j);
    cJSON_Delete(j);
    return s;
}

static pinas_status get_int3(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, const char *key, int out[3])
{
    int64_t v[3];
    pinas_status s = pinas_json_get_int_array(ctx, o, where, path, key, v, 3);
    if (s) return s;
    for (int i = 0; i < 3; i++) out[i] = (int)v[i];
    return PINAS_OK;
}

static pinas_status get_pair(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, const char *key, double out[2])
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(a, 0)) ||
        !cJSON_IsNumber(cJSON_GetArrayItem(a, 1)))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: %s.%s: expected [party 0, party 1] numbers", where, path, key);
    out[0] = cJSON_GetArrayItem(a, 0)->valuedouble;
    out[1] = cJSON_GetArrayItem(a, 1)->valuedouble;
    return PINAS_OK;
}

pinas_status pinas_cost_lut_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_lut **out)
{
    *out = NULL;
    const char *fmt;
    if (!cJSON_IsObject(json)) return pinas_error(ctx, PINAS_EFORMAT, "%s: expected a JSON object", where);
    pinas_status s = pinas_json_get_str(ctx, json, where, "", "format", &fmt);
    if (s) return s;
    if (strcmp(fmt, PINAS_LUT_FORMAT) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: format: expected \"%s\", got \"%s\"", where, PINAS_LUT_FORMAT, fmt);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(json, "header");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(json, "fixed");
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(json, "slots");
    if (!cJSON_IsObject(h)) return pinas_error(ctx, PINAS_EFORMAT, "%s: header: expected an object", where);
    if (!cJSON_IsObject(f)) return pinas_error(ctx, PINAS_EFORMAT, "%s: fixed: expected an object", where);
    if (!cJSON_IsArray(slots)) return pinas_error(ctx, PINAS_EFORMAT, "%s: slots: expected an array", where);
    pinas_cost_lut *lut = calloc(1, sizeof *lut);
    int ns = cJSON_GetArraySize(slots);
    if (lut) lut->slots = calloc(ns > 0 ? ns : 1, sizeof *lut->slots);
    if (!lut || !lut->slots) {
        pinas_cost_lut_free(lut);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    const char *str;
    struct { const char *key; char *dst; size_t n; } strs[] = {
        {"pinas_version", lut->version, sizeof lut->version}, {"hw", lut->hw, sizeof lut->hw}, {"net", lut->link, sizeof lut->link},
        {"space", lut->space, sizeof lut->space}, {"space_hash", lut->space_hash, sizeof lut->space_hash}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0] && !s; i++) {
        s = pinas_json_get_str(ctx, h, where, "header", strs[i].key, &str);
        if (!s) snprintf(strs[i].dst, strs[i].n, "%s", str);
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(h, "mpc");
    int64_t fb = 0, cb = 0, b = 0;
    if (!s && !cJSON_IsObject(m)) s = pinas_error(ctx, PINAS_EFORMAT, "%s: header.mpc: expected {frac_bits, cmp_bits, batch}", where);
    if (!s) s = pinas_json_get_int(ctx, m, where, "header.mpc", "frac_bits", 1, 63, &fb);
    if (!s) s = pinas_json_get_int(ctx, m, where, "header.mpc", "cmp_bits", 1, 64, &cb);
    if (!s) s = pinas_json_get_int(ctx, m, where, "header.mpc", "batch", 1, 1 << 20, &b);
    if (!s) {
        pinas_mpc_params_default(&lut->params);
        lut->params.frac_bits = (int)fb;
        lut->params.cmp_bits = (int)cb;
        lut->params.batch = (int)b;
    }
    const cJSON *hp = cJSON_GetObjectItemCaseSensitive(h, "hw_profile"), *lp = cJSON_GetObjectItemCaseSensitive(h, "net_profile");
    if (hp) lut->hw_json = cJSON_Duplicate(hp, 1);
    if (lp) lut->link_json = cJSON_Duplicate(lp, 1);
    if (!s) s = pinas_json_get_num(ctx, f, where, "fixed", "online_ms", 0, INFINITY, &lut->fixed_ms);
    if (!s) s = pinas_json_get_num(ctx, f, where, "fixed", "offline_ms", 0, INFINITY, &lut->fixed_offline_ms);
    for (int k = 0; k < ns && !s; k++) {
        const cJSON *so = cJSON_GetArrayItem(slots, k);
        lut_slot *sl = &lut->slots[k];
        char path[48];
        snprintf(path, sizeof path, "slots[%d]", k);
        int64_t idx;
        if (!cJSON_IsObject(so)) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: %s: expected an object", where, path);
            break;
        }
        if (!(s = pinas_json_get_int(ctx, so, where, path, "index", 0, 1 << 30, &idx))) sl->node = (int)idx;
        if (!s && !(s = pinas_json_get_str(ctx, so, where, path, "id", &str))) snprintf(sl->id, sizeof sl->id, "%s", str);
        if (!s && !(s = pinas_json_get_str(ctx, so, where, path, "op", &str))) snprintf(sl->op, sizeof sl->op, "%s", str);
        if (!s) s = get_int3(ctx, so, where, path, "shape", sl->shape);
        if (!s) s = get_int3(ctx, so, where, path, "in_shape", sl->in_shape);
        if (!s && cJSON_GetObjectItemCaseSensitive(so, "kernel")) s = get_int3(ctx, so, where, path, "kernel", sl->kernel);
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(so, "candidates");
        if (!s && (!cJSON_IsArray(cs) || cJSON_GetArraySize(cs) < 1 || cJSON_GetArraySize(cs) > PINAS_MAX_CANDS))
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: %s.candidates: expected 1 to %d candidates", where, path, PINAS_MAX_CANDS);
        if (s) break;
        sl->n_cands = cJSON_GetArraySize(cs);
        for (int j = 0; j < sl->n_cands && !s; j++) {
            const cJSON *co = cJSON_GetArrayItem(cs, j);
            lut_cand *c = &sl->cands[j];
            char cp[80];
            snprintf(cp, sizeof cp, "%s.candidates[%d]", path, j);
            if (!(s = pinas_json_get_str(ctx, co, where, cp, "op", &str))) snprintf(c->op, sizeof c->op, "%s", str);
            if (!s) s = pinas_json_get_num(ctx, co, where, cp, "online_ms", 0, INFINITY, &c->online_ms);
            if (!s) s = pinas_json_get_num(ctx, co, where, cp, "offline_ms", 0, INFINITY, &c->offline_ms);
            if (!s) s = pinas_json_get_num_opt(ctx, co, where, cp, "compute_ms", 0, INFINITY, &c->compute_ms);
            if (!s) s = pinas_json_get_num_opt(ctx, co, where, cp, "comm_ms", 0, INFINITY, &c->comm_ms);
            if (!s) s = pinas_json_get_num_opt(ctx, co, where, cp, "rounds", 0, INFINITY, &c->rounds);
            if (!s && cJSON_GetObjectItemCaseSensitive(co, "online_bytes")) s = get_pair(ctx, co, where, cp, "online_bytes", c->online_bytes);
            if (!s && cJSON_GetObjectItemCaseSensitive(co, "offline_bytes")) s = get_pair(ctx, co, where, cp, "offline_bytes", c->offline_bytes);
        }
        lut->n_slots++;
    }
    if (!s && make_arrays(lut)) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (s) {
        pinas_cost_lut_free(lut);
        return s;
    }
    *out = lut;
    return PINAS_OK;
}

pinas_status pinas_cost_lut_load(pinas_ctx *ctx, const char *path, pinas_cost_lut **out)
{
    cJSON *j;
    *out = NULL;
    pinas_status s = pinas_json_load(ctx, path, &j);
    if (s) return s;
    s = pinas_cost_lut_from_json(ctx, j, path, out);
    cJSON_Delete(j);
    return s;
}

pinas_status pinas_cost_lut_check(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_net *space)
{
    int open = 0;
    for (int i = 0; i < pinas_net_n_nodes(space); i++) open += pinas_node_is_open(pinas_net_node(space, i));
    if (open != lut->n_slots)
        return pinas_error(ctx, PINAS_EINVAL, "LUT for space %s has %d slots; net %s has %d open slots", lut->space, lut->n_slots,
                           pinas_net_name(space), open);
    for (int k = 0; k < lut->n_slots; k++) {
        const lut_slot *sl = &lut->slots[k];
        if (sl->node >= pinas_net_n_nodes(space))
            return pinas_error(ctx, PINAS_EINVAL, "LUT slot %s (node %d) is beyond the net's %d nodes", sl->id, sl->node, pinas_net_n_nodes(space));
        const pinas_node *n = pinas_net_node(space, sl->node);
        if (strcmp(n->id, sl->id) != 0 || !pinas_node_is_open(n))
            return pinas_error(ctx, PINAS_EINVAL, "LUT slot %d is node %s; the net has %s (%s) there", k, sl->id, n->id,
                               pinas_node_is_open(n) ? "an open slot" : "not an open slot");
        if (n->c != sl->shape[0] || n->h != sl->shape[1] || n->w != sl->shape[2])
            return pinas_error(ctx, PINAS_ESHAPE, "LUT slot %s: shape %dx%dx%d, the net's node has %dx%dx%d", sl->id, sl->shape[0], sl->shape[1],
                               sl->shape[2], n->c, n->h, n->w);
        if (n->n_cands != sl->n_cands)
            return pinas_error(ctx, PINAS_EINVAL, "LUT slot %s: %d candidates, the net's node has %d", sl->id, sl->n_cands, n->n_cands);
        for (int j = 0; j < n->n_cands; j++) {
            char nm[40];
            pinas_cand_name(&n->cands[j], nm, sizeof nm);
            if (strcmp(nm, sl->cands[j].op) != 0)
                return pinas_error(ctx, PINAS_EINVAL, "LUT slot %s: candidate %d is %s, the net's node has %s", sl->id, j, sl->cands[j].op, nm);
        }
    }
    return PINAS_OK;
}

int pinas_cost_lut_n_slots(const pinas_cost_lut *lut) { return lut->n_slots; }
int pinas_cost_lut_slot_node(const pinas_cost_lut *lut, int k) { return k >= 0 && k < lut->n_slots ? lut->slots[k].node : -1; }
int pinas_cost_lut_find_slot(const pinas_cost_lut *lut, int node)
{
    for (int k = 0; k < lut->n_slots; k++)
        if (lut->slots[k].node == node) return k;
    return -1;
}
int pinas_cost_lut_n_cands(const pinas_cost_lut *lut, int k) { return k >= 0 && k < lut->n_slots ? lut->slots[k].n_cands : 0; }
double pinas_cost_lut_cand_ms(const pinas_cost_lut *lut, int k, int j)
{
    if (k < 0 || k >= lut->n_slots || j < 0 || j >= lut->slots[k].n_cands) return NAN;
    return lut->slots[k].cands[j].online_ms;
}
double pinas_cost_lut_fixed_ms(const pinas_cost_lut *lut) { return lut->fixed_ms; }
const char *pinas_cost_lut_hw(const pinas_cost_lut *lut) { return lut->hw; }
const char *pinas_cost_lut_link(const pinas_cost_lut *lut) { return lut->link; }

pinas_status pinas_cost_lut_latency_choices(pinas_ctx *ctx, const pinas_cost_lut *lut, const int *choices, double *ms)
{
    double t = lut->fixed_ms;
    for (int k = 0; k < lut->n_slots; k++) {
        if (choices[k] < 0 || choices[k] >= lut->slots[k].n_cands)
            return pinas_error(ctx, PINAS_EINVAL, "slot %s: choice %d out of range (%d candidates)", lut->slots[k].id, choices[k],
                               lut->slots[k].n_cands);
        t += lut->slots[k].cands[choices[k]].online_ms;
    }
    *ms = t;
    return PINAS_OK;
}

pinas_status pinas_cost_lut_latency(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_net *arch, double *ms)
{
    double t = lut->fixed_ms;
    for (int k = 0; k < lut->n_slots; k++) {
        const lut_slot *sl = &lut->slots[k];
        int idx = sl->node < pinas_net_n_nodes(arch) && strcmp(pinas_net_node(arch, sl->node)->id, sl->id) == 0 ? sl->node
                                                                                                                 : pinas_net_find(arch, sl->id);
        if (idx < 0) return pinas_error(ctx, PINAS_EINVAL, "%s: has no node %s (slot %d of the LUT of space %s)", pinas_net_name(arch), sl->id, k, lut->space);
        const pinas_node *n = pinas_net_node(arch, idx);
        const pinas_cand *c = pinas_node_chosen(n);
        if (!c) return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: slot is still open; an architecture decides every slot", pinas_net_name(arch), n->id);
        char nm[40];
        pinas_cand_name(c, nm, sizeof nm);
        int j = 0;
        while (j < sl->n_cands && strcmp(sl->cands[j].op, nm) != 0) j++;
        if (j == sl->n_cands) return pinas_error(ctx, PINAS_EINVAL, "%s: node %s chose %s, which the LUT's slot does not list", pinas_net_name(arch), n->id, nm);
        t += sl->cands[j].online_ms;
    }
    *ms = t;
    return PINAS_OK;
}
