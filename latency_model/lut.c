/* The latency LUT of a search space: every (open slot, candidate) priced once, plus the fixed cost of
 * the other nodes; JSON save/load; lookups for decided architectures; the plain arrays E[latency] reads. */
#define _GNU_SOURCE
#include "cost_internal.h"
#include "pinas_e2e.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char op[40];
    double online_ms, offline_ms, compute_ms, comm_ms;
    double rounds;
    double online_bytes[2], offline_bytes[2];
    double gen_ms;   /* the dealer's compute (offline less its transfers; built LUTs and priced ones) */
    double price_ms; /* under the LUT's metric: online_ms for "online" */
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
    /* The metric (pinas_cost_lut_build_metric): fixed nodes' dealer compute and bytes, the priced
     * fixed cost, the link, and for e2e the reference and slopes written in the header. */
    pinas_cost_metric metric;
    double fixed_gen_ms, fixed_off_bytes[2], fixed_price_ms;
    double bw, rtt;
    double ref[5], slope[4]; /* ref: online_ms, gen_ms, server bytes, client bytes, E (ms) */
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
        for (int j = 0; j < sl->n_cands; j++) row[j] = (float)sl->cands[j].price_ms;
        lut->arr_rows[k] = row;
    }
    lut->arrays.space = lut->space;
    lut->arrays.fixed_ms = (float)lut->fixed_price_ms;
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
    double lo = lut->fixed_price_ms, hi = lo;
    for (int k = 0; k < lut->n_slots; k++) {
        double mn = lut->slots[k].cands[0].price_ms, mx = mn;
        for (int j = 1; j < lut->slots[k].n_cands; j++) {
            double v = lut->slots[k].cands[j].price_ms;
            if (v < mn) mn = v;
            if (v > mx) mx = v;
        }
        lo += mn;
        hi += mx;
    }
    *lo_ms = lo;
    *hi_ms = hi;
}

static double umax2(const uint64_t v[2]) { return (double)(v[0] > v[1] ? v[0] : v[1]); }

/* The dealer's compute of a row: its offline seconds less the transfers predict.c adds to them. */
static double row_gen_ms(const pinas_cost_row *r, const pinas_cost_link *link)
{
    double g = r->offline_s - umax2(r->counts.offline.bytes) / link->bandwidth - umax2(r->counts.setup.bytes) / link->bandwidth;
    return r->node < 0 || g < 0 ? 0 : g * 1e3;
}

static void cand_from_row(lut_cand *c, const pinas_cost_row *r, const pinas_cost_link *link)
{
    snprintf(c->op, sizeof c->op, "%s", r->op);
    c->online_ms = r->online_s * 1e3;
    c->price_ms = c->online_ms;
    c->gen_ms = row_gen_ms(r, link);
    c->offline_ms = r->offline_s * 1e3;
    c->compute_ms = r->compute_s * 1e3;
    c->comm_ms = r->comm_s * 1e3;
    c->rounds = (double)r->counts.online.rounds;
    for (int p = 0; p < 2; p++) {
        c->online_bytes[p] = (double)r->counts.online.bytes[p];
        c->offline_bytes[p] = (double)r->counts.offline.bytes[p];
    }
}

static void fixed_add(pinas_cost_lut *lut, const pinas_cost_row *r, const pinas_cost_link *link)
{
    lut->fixed_ms += r->online_s * 1e3;
    lut->fixed_price_ms = lut->fixed_ms;
    lut->fixed_offline_ms += r->offline_s * 1e3;
    lut->fixed_gen_ms += row_gen_ms(r, link);
    for (int q = 0; q < 2; q++) lut->fixed_off_bytes[q] += (double)r->counts.offline.bytes[q];
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
    lut->bw = link->bandwidth;
    lut->rtt = link->rtt;
    lut->hw_json = pinas_cost_hw_to_json(hw);
    lut->link_json = pinas_cost_link_to_json(link);
    pinas_status s = PINAS_OK;
    for (int i = 0; i < n && !s; i++) {
        const pinas_node *nd = pinas_net_node(space, i);
        pinas_cost_row r;
        if (!pinas_node_is_open(nd)) {
            s = pinas_cost_predict_node(ctx, space, i, -1, hw, link, p, &r);
            if (!s) fixed_add(lut, &r, link);
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
            if (!s) cand_from_row(&sl->cands[k], &r, link);
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
        if (!s) fixed_add(lut, &r, link);
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

const char *pinas_cost_metric_name(pinas_latency_metric m)
{
    return m == PINAS_METRIC_ONLINE ? "online" : m == PINAS_METRIC_TOTAL ? "total" : m == PINAS_METRIC_E2E ? "e2e" : "?";
}

static cJSON *metric_to_json(const pinas_cost_lut *lut)
{
    cJSON *m = cJSON_CreateObject();
    const pinas_cost_metric *mt = &lut->metric;
    if (mt->metric != PINAS_METRIC_E2E) return m;
    cJSON_AddNumberToObject(m, "client_storage_bytes", isfinite(mt->client_storage_bytes) ? mt->client_storage_bytes : -1);
    cJSON_AddNumberToObject(m, "rate_per_min", mt->rate_per_s * 60);
    cJSON_AddNumberToObject(m, "inferences", (double)mt->n);
    cJSON_AddNumberToObject(m, "seed", (double)mt->seed);
    cJSON *r = cJSON_AddObjectToObject(m, "reference");
    const char *rk[5] = {"online_ms", "gen_ms", "server_bytes", "client_bytes", "e2e_ms"};
    for (int i = 0; i < 5; i++) cJSON_AddNumberToObject(r, rk[i], lut->ref[i]);
    cJSON *g = cJSON_AddObjectToObject(m, "slopes");
    const char *gk[4] = {"online", "gen", "server_bytes_ms", "client_bytes_ms"};
    for (int i = 0; i < 4; i++) cJSON_AddNumberToObject(g, gk[i], lut->slope[i]);
    return m;
}

/* The header's "latency" and "metric" (priced LUTs); the prices are read with the slots. */
static pinas_status metric_from_json(pinas_ctx *ctx, const cJSON *h, const char *where, pinas_cost_lut *lut)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(h, "latency");
    lut->metric.metric = PINAS_METRIC_ONLINE;
    if (!l) return PINAS_OK;
    int m = !cJSON_IsString(l) ? -1 : !strcmp(l->valuestring, "online") ? 0 : !strcmp(l->valuestring, "total") ? 1 : !strcmp(l->valuestring, "e2e") ? 2 : -1;
    if (m < 0) return pinas_error(ctx, PINAS_EFORMAT, "%s: header.latency: expected \"online\", \"total\" or \"e2e\"", where);
    lut->metric.metric = (pinas_latency_metric)m;
    if (m != PINAS_METRIC_E2E) return PINAS_OK;
    const cJSON *mo = cJSON_GetObjectItemCaseSensitive(h, "metric");
    double st = 0, rate = 0, n = 0, seed = 0;
    pinas_status s = cJSON_IsObject(mo) ? PINAS_OK : pinas_error(ctx, PINAS_EFORMAT, "%s: header.metric: expected an object (an e2e LUT)", where);
    if (!s) s = pinas_json_get_num(ctx, mo, where, "header.metric", "client_storage_bytes", -1, INFINITY, &st);
    if (!s) s = pinas_json_get_num(ctx, mo, where, "header.metric", "rate_per_min", 0, INFINITY, &rate);
    if (!s) s = pinas_json_get_num(ctx, mo, where, "header.metric", "inferences", 1, 1e12, &n);
    if (!s) s = pinas_json_get_num(ctx, mo, where, "header.metric", "seed", 0, 1.8e19, &seed);
    lut->metric.client_storage_bytes = st < 0 ? INFINITY : st;
    lut->metric.rate_per_s = rate / 60;
    lut->metric.n = (long)n;
    lut->metric.seed = (uint64_t)seed;
    return s;
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
    cJSON_AddStringToObject(h, "latency", pinas_cost_metric_name(lut->metric.metric));
    int priced = lut->metric.metric != PINAS_METRIC_ONLINE;
    if (priced) cJSON_AddItemToObject(h, "metric", metric_to_json(lut));
    if (lut->hw_json) cJSON_AddItemToObject(h, "hw_profile", cJSON_Duplicate(lut->hw_json, 1));
    if (lut->link_json) cJSON_AddItemToObject(h, "net_profile", cJSON_Duplicate(lut->link_json, 1));
    cJSON *f = cJSON_AddObjectToObject(o, "fixed");
    cJSON_AddNumberToObject(f, "online_ms", lut->fixed_ms);
    cJSON_AddNumberToObject(f, "offline_ms", lut->fixed_offline_ms);
    if (priced) {
        cJSON_AddNumberToObject(f, "latency_ms", lut->fixed_price_ms);
        cJSON_AddNumberToObject(f, "gen_ms", lut->fixed_gen_ms);
        cJSON_AddItemToObject(f, "offline_bytes", num_pair(lut->fixed_off_bytes));
    }
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
            if (priced) {
                cJSON_AddNumberToObject(co, "latency_ms", c->price_ms);
                cJSON_AddNumberToObject(co, "gen_ms", c->gen_ms);
            }
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
    if (!s) s = metric_from_json(ctx, h, where, lut);
    int priced = lut->metric.metric != PINAS_METRIC_ONLINE;
    lut->fixed_price_ms = lut->fixed_ms;
    if (!s && priced) s = pinas_json_get_num(ctx, f, where, "fixed", "latency_ms", -INFINITY, INFINITY, &lut->fixed_price_ms);
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
            c->price_ms = c->online_ms;
            if (!s && priced) s = pinas_json_get_num(ctx, co, where, cp, "latency_ms", -INFINITY, INFINITY, &c->price_ms);
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
    return lut->slots[k].cands[j].price_ms;
}
double pinas_cost_lut_fixed_ms(const pinas_cost_lut *lut) { return lut->fixed_price_ms; }
const char *pinas_cost_lut_hw(const pinas_cost_lut *lut) { return lut->hw; }
const char *pinas_cost_lut_link(const pinas_cost_lut *lut) { return lut->link; }

pinas_status pinas_cost_lut_latency_choices(pinas_ctx *ctx, const pinas_cost_lut *lut, const int *choices, double *ms)
{
    double t = lut->fixed_price_ms;
    for (int k = 0; k < lut->n_slots; k++) {
        if (choices[k] < 0 || choices[k] >= lut->slots[k].n_cands)
            return pinas_error(ctx, PINAS_EINVAL, "slot %s: choice %d out of range (%d candidates)", lut->slots[k].id, choices[k],
                               lut->slots[k].n_cands);
        t += lut->slots[k].cands[choices[k]].price_ms;
    }
    *ms = t;
    return PINAS_OK;
}

pinas_status pinas_cost_lut_latency(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_net *arch, double *ms)
{
    double t = lut->fixed_price_ms;
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
        t += sl->cands[j].price_ms;
    }
    *ms = t;
    return PINAS_OK;
}

/* ------------------------------------------------------------ metrics: total and e2e */

pinas_latency_metric pinas_cost_lut_metric(const pinas_cost_lut *lut) { return lut->metric.metric; }

/* The simulated mean e2e latency (ms) of an inference costing x = {online ms, dealer ms, server
 * bytes, client bytes} on the LUT's link. */
static pinas_status e2e_at(pinas_ctx *ctx, const pinas_cost_lut *lut, const double x[4], double *ms)
{
    pinas_e2e_params ep;
    pinas_e2e_params_default(&ep);
    ep.costs.online_s = x[0] / 1e3;
    ep.costs.gen_s = x[1] / 1e3;
    ep.costs.server_bytes = x[2];
    ep.costs.client_bytes = x[3];
    ep.costs.xfer_s = (x[2] > x[3] ? x[2] : x[3]) / lut->bw + lut->rtt;
    ep.storage_bytes = lut->metric.client_storage_bytes;
    ep.rate_per_s = lut->metric.rate_per_s;
    ep.n = lut->metric.n;
    ep.seed = lut->metric.seed;
    pinas_e2e_result r;
    pinas_status s = pinas_e2e_simulate(ctx, &ep, &r);
    if (s) return pinas_error_prefix(ctx, s, "pricing the e2e LUT of %s", lut->space);
    *ms = r.mean_s * 1e3;
    return PINAS_OK;
}

/* The four costs of candidate j of slot k (or the slot's mean when j < 0). */
static void cand_costs(const lut_slot *sl, int j, double x[4])
{
    memset(x, 0, 4 * sizeof *x);
    int lo = j < 0 ? 0 : j, hi = j < 0 ? sl->n_cands : j + 1;
    for (int q = lo; q < hi; q++) {
        const lut_cand *c = &sl->cands[q];
        x[0] += c->online_ms / (hi - lo);
        x[1] += c->gen_ms / (hi - lo);
        x[2] += c->offline_bytes[0] / (hi - lo);
        x[3] += c->offline_bytes[1] / (hi - lo);
    }
}

/* Linearises the e2e latency around the mean architecture (pinas_cost.h has the formulas). */
static pinas_status price_e2e(pinas_ctx *ctx, pinas_cost_lut *lut)
{
    double *ref = lut->ref, x[4];
    ref[0] = lut->fixed_ms, ref[1] = lut->fixed_gen_ms, ref[2] = lut->fixed_off_bytes[0], ref[3] = lut->fixed_off_bytes[1];
    for (int k = 0; k < lut->n_slots; k++) {
        cand_costs(&lut->slots[k], -1, x);
        for (int i = 0; i < 4; i++) ref[i] += x[i];
    }
    pinas_status s = e2e_at(ctx, lut, ref, &ref[4]);
    for (int i = 0; i < 4 && !s; i++) {
        double up[4], dn[4], eu = 0, ed = 0, h = 0.1 * ref[i];
        memcpy(up, ref, sizeof up);
        memcpy(dn, ref, sizeof dn);
        up[i] += h;
        dn[i] -= h;
        lut->slope[i] = 0;
        if (h <= 0) continue;
        if (!(s = e2e_at(ctx, lut, up, &eu))) s = e2e_at(ctx, lut, dn, &ed);
        if (!s && eu > ed) lut->slope[i] = (eu - ed) / (2 * h);
    }
    if (s) return s;
    double mean_sum = 0;
    for (int k = 0; k < lut->n_slots; k++) {
        lut_slot *sl = &lut->slots[k];
        for (int j = 0; j < sl->n_cands; j++) {
            cand_costs(sl, j, x);
            sl->cands[j].price_ms = 0;
            for (int i = 0; i < 4; i++) sl->cands[j].price_ms += lut->slope[i] * x[i];
            mean_sum += sl->cands[j].price_ms / sl->n_cands;
        }
    }
    lut->fixed_price_ms = ref[4] - mean_sum;
    return PINAS_OK;
}

pinas_status pinas_cost_lut_build_metric(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                         const pinas_mpc_params *p, const pinas_cost_metric *m, pinas_cost_lut **out)
{
    pinas_cost_lut *lut = NULL;
    pinas_status s = pinas_cost_lut_build(ctx, space, hw, link, p, &lut);
    if (s || !m || m->metric == PINAS_METRIC_ONLINE) {
        *out = lut;
        return s;
    }
    *out = NULL;
    lut->metric = *m;
    if (lut->metric.n <= 0) lut->metric.n = PINAS_E2E_DEFAULT_N;
    if (m->metric == PINAS_METRIC_TOTAL) {
        lut->fixed_price_ms = lut->fixed_ms + lut->fixed_offline_ms;
        for (int k = 0; k < lut->n_slots; k++)
            for (int j = 0; j < lut->slots[k].n_cands; j++) lut->slots[k].cands[j].price_ms = lut->slots[k].cands[j].online_ms + lut->slots[k].cands[j].offline_ms;
    } else if (m->metric == PINAS_METRIC_E2E) {
        s = price_e2e(ctx, lut);
    } else {
        s = pinas_error(ctx, PINAS_EINVAL, "LUT metric %d: expected online, total or e2e", (int)m->metric);
    }
    /* The arrays were made from the online prices: remake them. */
    if (!s) {
        free(lut->arr_node), free(lut->arr_n), free(lut->arr_id), free(lut->arr_ms), free(lut->arr_rows);
        if (make_arrays(lut)) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (s) {
        pinas_cost_lut_free(lut);
        return s;
    }
    *out = lut;
    return PINAS_OK;
}

static int same(double a, double b) { return a == b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)); }

pinas_status pinas_cost_lut_check_metric(pinas_ctx *ctx, const pinas_cost_lut *lut, const pinas_cost_metric *m)
{
    pinas_latency_metric want = m ? m->metric : PINAS_METRIC_ONLINE;
    if (lut->metric.metric != want)
        return pinas_error(ctx, PINAS_EINVAL, "the LUT of %s prices latency \"%s\"; latency.metric is \"%s\" (delete the LUT to re-price it)", lut->space,
                           pinas_cost_metric_name(lut->metric.metric), pinas_cost_metric_name(want));
    if (want != PINAS_METRIC_E2E) return PINAS_OK;
    if (!same(lut->metric.client_storage_bytes, m->client_storage_bytes) || !same(lut->metric.rate_per_s, m->rate_per_s))
        return pinas_error(ctx, PINAS_EINVAL,
                           "the e2e LUT of %s was priced for %g bytes of client storage at %g/min; the config asks %g bytes at %g/min (delete the LUT to re-price it)",
                           lut->space, lut->metric.client_storage_bytes, lut->metric.rate_per_s * 60, m->client_storage_bytes, m->rate_per_s * 60);
    return PINAS_OK;
}
