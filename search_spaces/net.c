/* The net IR: nodes, shape inference, validation, counters and the pinas-net/1 JSON form. */
#define _GNU_SOURCE
#include "net_internal.h"
#include "pinas_config.h"

#include <stdlib.h>
#include <string.h>

static const char *op_names[PINAS_OP_COUNT] = {"input", "conv2d", "batchnorm", "linear", "act",
                                               "pool", "add", "flatten", "global_avgpool"};

const char *pinas_op_name(pinas_op op) { return (unsigned)op < PINAS_OP_COUNT ? op_names[op] : "?"; }

static int op_parse(const char *s, pinas_op *out)
{
    for (int i = 1; i < PINAS_OP_COUNT; i++)
        if (strcmp(s, op_names[i]) == 0) {
            *out = (pinas_op)i;
            return 0;
        }
    return -1;
}

const char *pinas_cand_name(const pinas_cand *c, char *buf, size_t n)
{
    switch (c->kind) {
    case PINAS_CAND_RELU: snprintf(buf, n, "relu"); break;
    case PINAS_CAND_POLY: snprintf(buf, n, "poly"); break;
    case PINAS_CAND_PATCH_RELU: snprintf(buf, n, "patch_relu:%dx%d", c->ph, c->pw); break;
    case PINAS_CAND_IDENTITY: snprintf(buf, n, "identity"); break;
    case PINAS_CAND_MAXPOOL: snprintf(buf, n, "maxpool"); break;
    case PINAS_CAND_AVGPOOL: snprintf(buf, n, "avgpool"); break;
    default: snprintf(buf, n, "?");
    }
    return buf;
}

int pinas_cand_parse(const char *s, pinas_cand *out)
{
    memset(out, 0, sizeof *out);
    static const struct { const char *name; pinas_cand_kind kind; } simple[] = {
        {"relu", PINAS_CAND_RELU}, {"poly", PINAS_CAND_POLY}, {"identity", PINAS_CAND_IDENTITY},
        {"maxpool", PINAS_CAND_MAXPOOL}, {"avgpool", PINAS_CAND_AVGPOOL}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (strcmp(s, simple[i].name) == 0) {
            out->kind = simple[i].kind;
            return 0;
        }
    int ph, pw, used = 0;
    if (sscanf(s, "patch_relu:%dx%d%n", &ph, &pw, &used) == 2 && s[used] == 0 && ph >= 1 && pw >= 1 && ph <= 64 && pw <= 64) {
        out->kind = PINAS_CAND_PATCH_RELU;
        out->ph = ph;
        out->pw = pw;
        return 0;
    }
    return -1;
}

static const char *const cand_examples[] = {"relu", "poly", "identity", "patch_relu:2x2", "maxpool", "avgpool"};

pinas_net *net_new(const char *name, int c, int h, int w, int num_classes)
{
    pinas_net *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    snprintf(net->name, sizeof net->name, "%s", name ? name : "net");
    net->num_classes = num_classes;
    pinas_node in = {0};
    snprintf(in.id, sizeof in.id, "input");
    in.op = PINAS_OP_INPUT;
    in.c = c;
    in.h = h;
    in.w = w;
    in.choice = -1;
    if (net_append(net, &in) < 0) {
        free(net);
        return NULL;
    }
    return net;
}

int net_append(pinas_net *net, const pinas_node *proto)
{
    if (net->n == net->cap) {
        int cap = net->cap ? net->cap * 2 : 64;
        pinas_node *nn = realloc(net->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return -1;
        net->nodes = nn;
        net->cap = cap;
    }
    net->nodes[net->n] = *proto;
    return net->n++;
}

void pinas_net_free(pinas_net *net)
{
    if (!net) return;
    free(net->nodes);
    free(net);
}

pinas_net *pinas_net_clone(const pinas_net *net)
{
    pinas_net *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *net;
    c->nodes = malloc((size_t)net->cap * sizeof *c->nodes);
    if (!c->nodes) {
        free(c);
        return NULL;
    }
    memcpy(c->nodes, net->nodes, (size_t)net->n * sizeof *c->nodes);
    return c;
}

const char *pinas_net_name(const pinas_net *net) { return net->name; }
int pinas_net_num_classes(const pinas_net *net) { return net->num_classes; }
int pinas_net_n_nodes(const pinas_net *net) { return net->n; }
const pinas_node *pinas_net_node(const pinas_net *net, int i) { return (i >= 0 && i < net->n) ? &net->nodes[i] : NULL; }
int pinas_net_output(const pinas_net *net) { return net->n - 1; }

int pinas_net_find(const pinas_net *net, const char *id)
{
    for (int i = 0; i < net->n; i++)
        if (strcmp(net->nodes[i].id, id) == 0) return i;
    return -1;
}

int pinas_node_is_slot(const pinas_node *n) { return n->op == PINAS_OP_ACT || n->op == PINAS_OP_POOL; }
int pinas_node_is_open(const pinas_node *n) { return pinas_node_is_slot(n) && n->choice < 0 && n->n_cands > 1; }

const pinas_cand *pinas_node_chosen(const pinas_node *n)
{
    if (!pinas_node_is_slot(n)) return NULL;
    if (n->choice >= 0) return &n->cands[n->choice];
    return n->n_cands == 1 ? &n->cands[0] : NULL;
}

int pinas_net_n_open(const pinas_net *net)
{
    int k = 0;
    for (int i = 0; i < net->n; i++) k += pinas_node_is_open(&net->nodes[i]);
    return k;
}

int pinas_node_find_cand(const pinas_node *n, pinas_cand_kind kind)
{
    for (int k = 0; k < n->n_cands; k++)
        if (n->cands[k].kind == kind) return k;
    return -1;
}

pinas_status pinas_net_decide(pinas_ctx *ctx, pinas_net *net, int node, int cand)
{
    if (node < 0 || node >= net->n) return pinas_error(ctx, PINAS_EINVAL, "no node #%d", node);
    pinas_node *n = &net->nodes[node];
    if (!pinas_node_is_slot(n)) return pinas_error(ctx, PINAS_EINVAL, "node %s: %s is not a slot", n->id, pinas_op_name(n->op));
    if (cand < 0 || cand >= n->n_cands)
        return pinas_error(ctx, PINAS_EINVAL, "node %s: candidate #%d out of range (%d candidates)", n->id, cand, n->n_cands);
    n->choice = cand;
    return PINAS_OK;
}

pinas_status pinas_net_random_arch(pinas_ctx *ctx, const pinas_net *space, uint64_t seed, pinas_net **out)
{
    *out = pinas_net_clone(space);
    if (!*out) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_rng rng = {seed};
    for (int i = 0; i < space->n; i++) {
        const pinas_node *n = &space->nodes[i];
        if (!pinas_node_is_open(n)) continue;
        (*out)->nodes[i].choice = (int)pinas_rng_below(&rng, (uint64_t)n->n_cands);
    }
    return PINAS_OK;
}

pinas_status pinas_net_baseline_arch(pinas_ctx *ctx, const pinas_net *space, const char *kind, pinas_net **out)
{
    *out = NULL;
    int relu = !strcmp(kind, "all-relu");
    if (!relu && strcmp(kind, "all-poly")) return pinas_error(ctx, PINAS_EINVAL, "baseline: \"%s\" is not all-relu or all-poly", kind);
    pinas_net *arch = pinas_net_clone(space);
    if (!arch) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    for (int i = 0; i < arch->n && !s; i++) {
        const pinas_node *nd = &arch->nodes[i];
        if (!pinas_node_is_open(nd)) continue;
        pinas_cand_kind want = nd->op == PINAS_OP_POOL ? (relu ? PINAS_CAND_MAXPOOL : PINAS_CAND_AVGPOOL) : (relu ? PINAS_CAND_RELU : PINAS_CAND_POLY);
        int j = pinas_node_find_cand(nd, want);
        if (j < 0) {
            pinas_cand c = {.kind = want};
            char nm[32];
            s = pinas_error(ctx, PINAS_EINVAL, "baseline %s: slot %s has no %s candidate", kind, nd->id, pinas_cand_name(&c, nm, sizeof nm));
        } else {
            s = pinas_net_decide(ctx, arch, i, j);
        }
    }
    if (s) {
        pinas_net_free(arch);
        return s;
    }
    *out = arch;
    return PINAS_OK;
}

/* ------------------------------------------------------------------ validation */

/* 0 when the window does not fit the padded input (C's division truncates -1/2 to 0, so the
 * quotient alone would let a 2x2 window "fit" a 1x1 input). */
static int out_dim(int in, int k, int s, int p) { return in + 2 * p < k ? 0 : (in + 2 * p - k) / s + 1; }

/* 1 when c*h*w of a tensor exceeds PINAS_NET_MAX_ELEMS; no intermediate product can overflow. */
static int too_many_elems(int64_t c, int64_t h, int64_t w)
{
    const int64_t m = PINAS_NET_MAX_ELEMS;
    return c > m || h > m || w > m || c * h > m || c * h * w > m;
}

static int window_ok(const pinas_node *n)
{
    const int m = PINAS_NET_MAX_WINDOW;
    return n->kh >= 1 && n->kw >= 1 && n->stride >= 1 && n->pad >= 0 && n->kh <= m && n->kw <= m && n->stride <= m && n->pad <= m;
}

/* Infers node i's output shape from its inputs; errors name the node. */
static pinas_status infer_shape(pinas_ctx *ctx, pinas_net *net, int i, const char *where)
{
    pinas_node *n = &net->nodes[i];
    const pinas_node *a = &net->nodes[n->inputs[0]];
    switch (n->op) {
    case PINAS_OP_CONV2D: {
        if (n->out_channels < 1 || !window_ok(n) || n->groups < 1)
            return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: conv2d needs out_channels, kernel, stride >= 1, padding >= 0, groups >= 1 "
                               "(kernel, stride, padding at most %d)", where, n->id, PINAS_NET_MAX_WINDOW);
        if (a->c % n->groups || n->out_channels % n->groups)
            return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: groups %d does not divide in_channels %d and out_channels %d", where,
                               n->id, n->groups, a->c, n->out_channels);
        int oh = out_dim(a->h, n->kh, n->stride, n->pad), ow = out_dim(a->w, n->kw, n->stride, n->pad);
        if (oh < 1 || ow < 1)
            return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: kernel %dx%d larger than padded input %dx%d", where, n->id, n->kh, n->kw,
                               a->h + 2 * n->pad, a->w + 2 * n->pad);
        n->c = n->out_channels;
        n->h = oh;
        n->w = ow;
        break;
    }
    case PINAS_OP_POOL: {
        if (!window_ok(n) || 2 * n->pad > n->kh || 2 * n->pad > n->kw)
            return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: pool needs kernel >= 1, stride >= 1, 0 <= padding <= kernel/2 (at most %d)", where,
                               n->id, PINAS_NET_MAX_WINDOW);
        int oh = out_dim(a->h, n->kh, n->stride, n->pad), ow = out_dim(a->w, n->kw, n->stride, n->pad);
        if (oh < 1 || ow < 1)
            return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: pool window %dx%d larger than input %dx%d", where, n->id, n->kh, n->kw,
                               a->h, a->w);
        n->c = a->c;
        n->h = oh;
        n->w = ow;
        break;
    }
    case PINAS_OP_BATCHNORM:
    case PINAS_OP_ACT:
        n->c = a->c;
        n->h = a->h;
        n->w = a->w;
        break;
    case PINAS_OP_LINEAR:
        if (n->out_features < 1) return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: linear needs out_features >= 1", where, n->id);
        if (a->h != 1 || a->w != 1)
            return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: linear input %s has shape [%d, %d, %d]; flatten or global_avgpool it first",
                               where, n->id, a->id, a->c, a->h, a->w);
        n->c = n->out_features;
        n->h = n->w = 1;
        break;
    case PINAS_OP_ADD: {
        const pinas_node *b = &net->nodes[n->inputs[1]];
        if (a->c != b->c || a->h != b->h || a->w != b->w)
            return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: add of %s [%d, %d, %d] and %s [%d, %d, %d]: shapes differ", where, n->id,
                               a->id, a->c, a->h, a->w, b->id, b->c, b->h, b->w);
        n->c = a->c;
        n->h = a->h;
        n->w = a->w;
        break;
    }
    case PINAS_OP_FLATTEN:
        if (too_many_elems(a->c, a->h, a->w)) return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: flatten of more than %d elements", where, n->id, PINAS_NET_MAX_ELEMS);
        n->c = a->c * a->h * a->w;
        n->h = n->w = 1;
        break;
    case PINAS_OP_GLOBAL_AVGPOOL:
        n->c = a->c;
        n->h = n->w = 1;
        break;
    default:
        return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: unexpected op", where, n->id);
    }
    return PINAS_OK;
}

/* A slot's candidates belong to its kind, are distinct, and its choice is one of them. */
static pinas_status check_slot(pinas_ctx *ctx, const pinas_node *n, const char *where)
{
    if (n->n_cands < 1) return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: a slot needs at least one candidate", where, n->id);
    for (int k = 0; k < n->n_cands; k++) {
        int is_pool = n->cands[k].kind == PINAS_CAND_MAXPOOL || n->cands[k].kind == PINAS_CAND_AVGPOOL;
        char nm[32];
        if (is_pool != (n->op == PINAS_OP_POOL))
            return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: candidate %s does not belong in a%s slot", where, n->id,
                               pinas_cand_name(&n->cands[k], nm, sizeof nm), n->op == PINAS_OP_POOL ? " pool" : "n act");
        if ((unsigned)n->cands[k].kind > PINAS_CAND_AVGPOOL ||
            (n->cands[k].kind == PINAS_CAND_PATCH_RELU && (n->cands[k].ph < 1 || n->cands[k].pw < 1 || n->cands[k].ph > PINAS_NET_MAX_PATCH ||
                                                          n->cands[k].pw > PINAS_NET_MAX_PATCH)))
            return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: candidate %s out of range (patch sides 1 to %d)", where, n->id,
                               pinas_cand_name(&n->cands[k], nm, sizeof nm), PINAS_NET_MAX_PATCH);
        for (int j = 0; j < k; j++)
            if (n->cands[j].kind == n->cands[k].kind && n->cands[j].ph == n->cands[k].ph && n->cands[j].pw == n->cands[k].pw)
                return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: candidate %s listed twice", where, n->id,
                                   pinas_cand_name(&n->cands[k], nm, sizeof nm));
    }
    if (n->choice >= n->n_cands) return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: choice out of range", where, n->id);
    return PINAS_OK;
}

/* The size limits of pinas_net.h for node i (its shape already inferred); *macs accumulates the net's. */
static pinas_status check_size(pinas_ctx *ctx, const pinas_net *net, int i, const char *where, int64_t *macs)
{
    const pinas_node *n = &net->nodes[i];
    if (too_many_elems(n->c, n->h, n->w))
        return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: output [%d, %d, %d] has more than %d elements", where, n->id, n->c, n->h, n->w,
                           PINAS_NET_MAX_ELEMS);
    if (n->op == PINAS_OP_CONV2D && too_many_elems(net->nodes[n->inputs[0]].c / n->groups, n->kh, n->kw))
        return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: (in_channels / groups) x kernel is more than %d", where, n->id, PINAS_NET_MAX_ELEMS);
    /* Each node's MACs are < 2^56 here, so the running sum cannot overflow before it is caught. */
    *macs += pinas_node_macs(net, i);
    if (*macs > PINAS_NET_MAX_MACS)
        return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: the net exceeds %lld MACs per image", where, n->id, (long long)PINAS_NET_MAX_MACS);
    return PINAS_OK;
}

pinas_status net_finalize(pinas_ctx *ctx, pinas_net *net, const char *where)
{
    if (net->n < 2) return pinas_error(ctx, PINAS_EINVAL, "%s: the net has no nodes", where);
    const pinas_node *in = &net->nodes[0];
    if (in->c < 1 || in->h < 1 || in->w < 1) return pinas_error(ctx, PINAS_EINVAL, "%s: input: shape must be 3 positive integers", where);
    if (too_many_elems(in->c, in->h, in->w))
        return pinas_error(ctx, PINAS_EINVAL, "%s: input: [%d, %d, %d] has more than %d elements", where, in->c, in->h, in->w, PINAS_NET_MAX_ELEMS);
    if (net->num_classes < 1 || net->num_classes > PINAS_NET_MAX_CLASSES)
        return pinas_error(ctx, PINAS_EINVAL, "%s: num_classes must be an integer in [1, %d]", where, PINAS_NET_MAX_CLASSES);
    int64_t macs = 0;
    for (int i = 1; i < net->n; i++) {
        pinas_node *n = &net->nodes[i];
        for (int j = 0; j < i; j++)
            if (strcmp(net->nodes[j].id, n->id) == 0) return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: id used twice", where, n->id);
        int want = n->op == PINAS_OP_ADD ? 2 : 1;
        if (n->n_inputs != want)
            return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: %s takes %d input%s, got %d", where, n->id, pinas_op_name(n->op), want,
                               want > 1 ? "s" : "", n->n_inputs);
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] < 0 || n->inputs[k] >= i)
                return pinas_error(ctx, PINAS_EINVAL, "%s: node %s: input #%d does not refer to an earlier node", where, n->id, k);
        pinas_status s = infer_shape(ctx, net, i, where);
        if (!s) s = check_size(ctx, net, i, where, &macs);
        if (!s && pinas_node_is_slot(n)) s = check_slot(ctx, n, where);
        if (s) return s;
    }
    const pinas_node *o = &net->nodes[net->n - 1];
    if (o->c != net->num_classes || o->h != 1 || o->w != 1)
        return pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: the last node gives [%d, %d, %d] but num_classes is %d", where, o->id, o->c,
                           o->h, o->w, net->num_classes);
    return PINAS_OK;
}

/* ------------------------------------------------------------------ counters */

int64_t pinas_node_macs(const pinas_net *net, int i)
{
    const pinas_node *n = &net->nodes[i];
    if (n->op == PINAS_OP_CONV2D) {
        const pinas_node *a = &net->nodes[n->inputs[0]];
        return (int64_t)n->c * n->h * n->w * (a->c / n->groups) * n->kh * n->kw;
    }
    if (n->op == PINAS_OP_LINEAR) return (int64_t)net->nodes[n->inputs[0]].c * n->out_features;
    return 0;
}

int64_t pinas_node_params(const pinas_net *net, int i)
{
    pinas_param_spec specs[8];
    int k = pinas_node_param_specs(net, i, specs, 8);
    int64_t total = 0;
    for (int j = 0; j < k && j < 8; j++) {
        if (specs[j].kind != PINAS_PARAM_WEIGHT) continue;
        int64_t e = 1;
        for (int d = 0; d < specs[j].ndim; d++) e *= specs[j].shape[d];
        total += e;
    }
    return total;
}

int64_t pinas_node_act_elems(const pinas_net *net, int i)
{
    const pinas_node *n = &net->nodes[i];
    return n->op == PINAS_OP_ACT ? (int64_t)n->c * n->h * n->w : 0;
}

int64_t pinas_node_relu_count(const pinas_net *net, int i)
{
    const pinas_node *n = &net->nodes[i];
    if (n->op != PINAS_OP_ACT) return 0;
    const pinas_cand *c = pinas_node_chosen(n);
    if (!c) return pinas_node_find_cand(n, PINAS_CAND_RELU) >= 0 ? pinas_node_act_elems(net, i) : 0;
    if (c->kind == PINAS_CAND_RELU) return pinas_node_act_elems(net, i);
    if (c->kind == PINAS_CAND_PATCH_RELU)
        return (int64_t)n->c * ((n->h + c->ph - 1) / c->ph) * ((n->w + c->pw - 1) / c->pw);
    return 0;
}

#define NET_SUM(fn)                                                                                                                        \
    int64_t t = 0;                                                                                                                         \
    for (int i = 0; i < net->n; i++) t += fn(net, i);                                                                                      \
    return t

int64_t pinas_net_macs(const pinas_net *net) { NET_SUM(pinas_node_macs); }
int64_t pinas_net_params(const pinas_net *net) { NET_SUM(pinas_node_params); }
int64_t pinas_net_relu_count(const pinas_net *net) { NET_SUM(pinas_node_relu_count); }

static void spec(pinas_param_spec *out, int max, int *k, const char *id, const char *suffix, pinas_param_kind kind, int ndim,
                 int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    if (*k < max) {
        pinas_param_spec *s = &out[*k];
        snprintf(s->name, sizeof s->name, "%s.%s", id, suffix);
        s->kind = kind;
        s->ndim = ndim;
        s->shape[0] = d0;
        s->shape[1] = d1;
        s->shape[2] = d2;
        s->shape[3] = d3;
    }
    (*k)++;
}

int pinas_node_param_specs(const pinas_net *net, int i, pinas_param_spec *out, int max)
{
    const pinas_node *n = &net->nodes[i];
    int k = 0;
    switch (n->op) {
    case PINAS_OP_CONV2D: {
        const pinas_node *a = &net->nodes[n->inputs[0]];
        spec(out, max, &k, n->id, "weight", PINAS_PARAM_WEIGHT, 4, n->out_channels, a->c / n->groups, n->kh, n->kw);
        if (n->bias) spec(out, max, &k, n->id, "bias", PINAS_PARAM_WEIGHT, 1, n->out_channels, 0, 0, 0);
        break;
    }
    case PINAS_OP_BATCHNORM:
        spec(out, max, &k, n->id, "weight", PINAS_PARAM_WEIGHT, 1, n->c, 0, 0, 0);
        spec(out, max, &k, n->id, "bias", PINAS_PARAM_WEIGHT, 1, n->c, 0, 0, 0);
        spec(out, max, &k, n->id, "running_mean", PINAS_PARAM_BUFFER, 1, n->c, 0, 0, 0);
        spec(out, max, &k, n->id, "running_var", PINAS_PARAM_BUFFER, 1, n->c, 0, 0, 0);
        break;
    case PINAS_OP_LINEAR:
        spec(out, max, &k, n->id, "weight", PINAS_PARAM_WEIGHT, 2, n->out_features, net->nodes[n->inputs[0]].c, 0, 0);
        if (n->bias) spec(out, max, &k, n->id, "bias", PINAS_PARAM_WEIGHT, 1, n->out_features, 0, 0, 0);
        break;
    case PINAS_OP_ACT: {
        const pinas_cand *c = pinas_node_chosen(n);
        int has_poly = c ? c->kind == PINAS_CAND_POLY : pinas_node_find_cand(n, PINAS_CAND_POLY) >= 0;
        if (has_poly) {
            int64_t m = n->poly_per_channel ? n->c : 1;
            spec(out, max, &k, n->id, "w0", PINAS_PARAM_WEIGHT, 1, m, 0, 0, 0);
            spec(out, max, &k, n->id, "w1", PINAS_PARAM_WEIGHT, 1, m, 0, 0, 0);
            spec(out, max, &k, n->id, "b", PINAS_PARAM_WEIGHT, 1, m, 0, 0, 0);
        }
        if (pinas_node_is_open(n)) spec(out, max, &k, n->id, "alpha", PINAS_PARAM_ARCH, 1, n->n_cands, 0, 0, 0);
        break;
    }
    case PINAS_OP_POOL:
        if (pinas_node_is_open(n)) spec(out, max, &k, n->id, "alpha", PINAS_PARAM_ARCH, 1, n->n_cands, 0, 0, 0);
        break;
    default: break;
    }
    return k;
}

/* ------------------------------------------------------------------ JSON */

cJSON *pinas_net_to_json(const pinas_net *net)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", PINAS_NET_FORMAT);
    cJSON_AddStringToObject(j, "name", net->name);
    const pinas_node *in = &net->nodes[0];
    int shp[3] = {in->c, in->h, in->w};
    cJSON_AddItemToObject(j, "input", cJSON_CreateIntArray(shp, 3));
    cJSON_AddNumberToObject(j, "num_classes", net->num_classes);
    cJSON *nodes = cJSON_AddArrayToObject(j, "nodes");
    for (int i = 1; i < net->n; i++) {
        const pinas_node *n = &net->nodes[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", n->id);
        cJSON_AddStringToObject(o, "op", pinas_op_name(n->op));
        cJSON *ins = cJSON_AddArrayToObject(o, "inputs");
        for (int k = 0; k < n->n_inputs; k++) cJSON_AddItemToArray(ins, cJSON_CreateString(net->nodes[n->inputs[k]].id));
        switch (n->op) {
        case PINAS_OP_CONV2D:
            cJSON_AddNumberToObject(o, "out_channels", n->out_channels);
            /* fallthrough */
        case PINAS_OP_POOL:
            if (n->kh == n->kw) cJSON_AddNumberToObject(o, "kernel", n->kh);
            else {
                int k2[2] = {n->kh, n->kw};
                cJSON_AddItemToObject(o, "kernel", cJSON_CreateIntArray(k2, 2));
            }
            cJSON_AddNumberToObject(o, "stride", n->stride);
            cJSON_AddNumberToObject(o, "padding", n->pad);
            if (n->op == PINAS_OP_CONV2D) {
                cJSON_AddNumberToObject(o, "groups", n->groups);
                cJSON_AddBoolToObject(o, "bias", n->bias);
            }
            break;
        case PINAS_OP_LINEAR:
            cJSON_AddNumberToObject(o, "out_features", n->out_features);
            cJSON_AddBoolToObject(o, "bias", n->bias);
            break;
        case PINAS_OP_BATCHNORM: cJSON_AddNumberToObject(o, "eps", n->eps); break;
        default: break;
        }
        if (pinas_node_is_slot(n)) {
            cJSON *cs = cJSON_AddArrayToObject(o, "candidates");
            char nm[32];
            for (int k = 0; k < n->n_cands; k++) cJSON_AddItemToArray(cs, cJSON_CreateString(pinas_cand_name(&n->cands[k], nm, sizeof nm)));
            if (n->choice >= 0) cJSON_AddStringToObject(o, "choice", pinas_cand_name(&n->cands[n->choice], nm, sizeof nm));
            if (n->op == PINAS_OP_ACT && pinas_node_find_cand(n, PINAS_CAND_POLY) >= 0) {
                cJSON_AddNumberToObject(o, "poly_scale", n->poly_scale);
                cJSON_AddBoolToObject(o, "poly_per_channel", n->poly_per_channel);
            }
        }
        int s3[3] = {n->c, n->h, n->w};
        cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(s3, 3));
        cJSON_AddItemToArray(nodes, o);
    }
    return j;
}

pinas_status pinas_net_save(pinas_ctx *ctx, const pinas_net *net, const char *path)
{
    cJSON *j = pinas_net_to_json(net);
    if (!j) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = pinas_json_save(ctx, path, j);
    cJSON_Delete(j);
    return s;
}

uint64_t pinas_net_hash(const pinas_net *net)
{
    cJSON *j = pinas_net_to_json(net);
    char *t = cJSON_PrintUnformatted(j);
    uint64_t h = t ? pinas_fnv1a64(t, strlen(t), PINAS_FNV_INIT) : 0;
    free(t);
    cJSON_Delete(j);
    return h;
}

/* An array of n integers in [lo, hi]. The range is checked on the JSON number itself, before any
 * conversion (a cast of 1e300 to an integer is undefined). */
static pinas_status get_ints(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, const char *key, int64_t lo, int64_t hi,
                             int64_t *out, int n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key), *e;
    int i = 0;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == n)
        cJSON_ArrayForEach(e, v)
        {
            if (cJSON_IsNumber(e) && !(e->valuedouble >= (double)lo && e->valuedouble <= (double)hi)) {
                char *p = pinas_json_path_join(path, key);
                pinas_status s = pinas_error(ctx, PINAS_EINVAL, "%s: %s[%d]: expected an integer in [%lld, %lld], got %.17g", where, p ? p : key, i,
                                             (long long)lo, (long long)hi, e->valuedouble);
                free(p);
                return s;
            }
            i++;
        }
    return pinas_json_get_int_array(ctx, o, where, path, key, out, n);
}

static const char *const node_keys[] = {"id", "op", "inputs", "out_channels", "kernel", "stride", "padding", "groups", "bias",
                                        "out_features", "eps", "candidates", "choice", "poly_scale", "poly_per_channel", "shape"};

static pinas_status parse_kernel(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, pinas_node *n, int required)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "kernel");
    if (!k) {
        if (required) return pinas_error(ctx, PINAS_EINVAL, "%s: %s.kernel: missing", where, path);
        return PINAS_OK;
    }
    if (cJSON_IsArray(k)) {
        int64_t kk[2];
        pinas_status s = get_ints(ctx, o, where, path, "kernel", 1, PINAS_NET_MAX_WINDOW, kk, 2);
        if (s) return s;
        n->kh = (int)kk[0];
        n->kw = (int)kk[1];
    } else {
        int64_t kk = 0;
        pinas_status s = pinas_json_get_int(ctx, o, where, path, "kernel", 1, 1024, &kk);
        if (s) return s;
        n->kh = n->kw = (int)kk;
    }
    if (n->kh < 1 || n->kw < 1 || n->kh > 1024 || n->kw > 1024) return pinas_error(ctx, PINAS_EINVAL, "%s: %s.kernel: out of range", where, path);
    return PINAS_OK;
}

/* "inputs": node ids defined before this node; absent = the previous node. */
static pinas_status parse_inputs(pinas_ctx *ctx, const pinas_net *net, const cJSON *o, const char *where, const char *path, pinas_node *n)
{
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(o, "inputs");
    if (!ins) {
        n->n_inputs = 1;
        n->inputs[0] = net->n - 1;
        return PINAS_OK;
    }
    if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) < 1 || cJSON_GetArraySize(ins) > 2)
        return pinas_error(ctx, PINAS_EINVAL, "%s: %s: inputs: expected an array of 1 or 2 node ids", where, path);
    const cJSON *e;
    cJSON_ArrayForEach(e, ins)
    {
        if (!cJSON_IsString(e)) return pinas_error(ctx, PINAS_EINVAL, "%s: %s: inputs: expected node ids (strings)", where, path);
        int ref = pinas_net_find(net, e->valuestring);
        if (ref < 0) return pinas_error(ctx, PINAS_EINVAL, "%s: %s: input \"%s\" is not a node defined before it", where, path, e->valuestring);
        n->inputs[n->n_inputs++] = ref;
    }
    return PINAS_OK;
}

/* stride and padding of a conv2d or pool node (stride defaults to def_stride). */
static pinas_status parse_window(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, int def_stride, pinas_node *n)
{
    int64_t v = def_stride;
    pinas_status s = pinas_json_get_int_opt(ctx, o, where, path, "stride", 1, 1024, &v);
    if (s) return s;
    n->stride = (int)v;
    v = 0;
    if ((s = pinas_json_get_int_opt(ctx, o, where, path, "padding", 0, 1024, &v))) return s;
    n->pad = (int)v;
    return PINAS_OK;
}

/* The fields of conv2d, linear, batchnorm and pool nodes. */
static pinas_status parse_op_fields(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, pinas_node *n)
{
    pinas_status s;
    int64_t v;
    int b;
    switch (n->op) {
    case PINAS_OP_CONV2D:
        if ((s = pinas_json_get_int(ctx, o, where, path, "out_channels", 1, 1 << 20, &v))) return s;
        n->out_channels = (int)v;
        if ((s = parse_kernel(ctx, o, where, path, n, 1)) || (s = parse_window(ctx, o, where, path, 1, n))) return s;
        v = 1;
        if ((s = pinas_json_get_int_opt(ctx, o, where, path, "groups", 1, 1 << 20, &v))) return s;
        n->groups = (int)v;
        b = 0;
        if ((s = pinas_json_get_bool_opt(ctx, o, where, path, "bias", &b))) return s;
        n->bias = b;
        break;
    case PINAS_OP_LINEAR:
        if ((s = pinas_json_get_int(ctx, o, where, path, "out_features", 1, 1 << 24, &v))) return s;
        n->out_features = (int)v;
        b = 1;
        if ((s = pinas_json_get_bool_opt(ctx, o, where, path, "bias", &b))) return s;
        n->bias = b;
        break;
    case PINAS_OP_BATCHNORM:
        if ((s = pinas_json_get_num_opt(ctx, o, where, path, "eps", 1e-12, 1.0, &n->eps))) return s;
        break;
    case PINAS_OP_POOL:
        /* a pool's stride defaults to its kernel */
        if ((s = parse_kernel(ctx, o, where, path, n, 1)) || (s = parse_window(ctx, o, where, path, n->kh, n))) return s;
        break;
    default: break;
    }
    return PINAS_OK;
}

/* "candidates" of a slot; absent = the single default (relu for act, maxpool for pool). */
static pinas_status parse_cands(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, pinas_node *n)
{
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(o, "candidates");
    if (!cs) {
        n->n_cands = 1;
        n->cands[0].kind = n->op == PINAS_OP_POOL ? PINAS_CAND_MAXPOOL : PINAS_CAND_RELU;
        return PINAS_OK;
    }
    if (!cJSON_IsArray(cs) || cJSON_GetArraySize(cs) < 1 || cJSON_GetArraySize(cs) > PINAS_MAX_CANDS)
        return pinas_error(ctx, PINAS_EINVAL, "%s: %s: candidates: expected an array of 1 to %d names", where, path, PINAS_MAX_CANDS);
    const cJSON *e;
    cJSON_ArrayForEach(e, cs)
    {
        if (!cJSON_IsString(e) || pinas_cand_parse(e->valuestring, &n->cands[n->n_cands])) {
            char *d = pinas_json_describe(e);
            const char *dym = cJSON_IsString(e) ? pinas_did_you_mean(e->valuestring, cand_examples, 6) : NULL;
            pinas_status st = pinas_error(ctx, PINAS_EINVAL,
                                          "%s: %s: unknown candidate %s (relu, poly, identity, patch_relu:HxW, maxpool, avgpool)%s%s%s", where,
                                          path, d, dym ? "; did you mean \"" : "", dym ? dym : "", dym ? "\"?" : "");
            free(d);
            return st;
        }
        n->n_cands++;
    }
    return PINAS_OK;
}

/* A slot's candidates, choice and poly settings; other nodes must not have them. */
static pinas_status parse_slot(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, pinas_node *n)
{
    if (!pinas_node_is_slot(n)) {
        if (cJSON_GetObjectItemCaseSensitive(o, "candidates") || cJSON_GetObjectItemCaseSensitive(o, "choice"))
            return pinas_error(ctx, PINAS_EINVAL, "%s: %s: only act and pool nodes take candidates", where, path);
        return PINAS_OK;
    }
    pinas_status s = parse_cands(ctx, o, where, path, n);
    if (s) return s;
    const char *choice = NULL;
    if ((s = pinas_json_get_str_opt(ctx, o, where, path, "choice", &choice))) return s;
    if (choice) {
        pinas_cand c;
        if (pinas_cand_parse(choice, &c)) return pinas_error(ctx, PINAS_EINVAL, "%s: %s: unknown choice \"%s\"", where, path, choice);
        for (int k = 0; k < n->n_cands; k++)
            if (n->cands[k].kind == c.kind && n->cands[k].ph == c.ph && n->cands[k].pw == c.pw) n->choice = k;
        if (n->choice < 0) return pinas_error(ctx, PINAS_EINVAL, "%s: %s: choice \"%s\" is not among its candidates", where, path, choice);
    }
    if ((s = pinas_json_get_num_opt(ctx, o, where, path, "poly_scale", -1e6, 1e6, &n->poly_scale))) return s;
    int b = 0;
    if ((s = pinas_json_get_bool_opt(ctx, o, where, path, "poly_per_channel", &b))) return s;
    n->poly_per_channel = b;
    return PINAS_OK;
}

static pinas_status parse_node(pinas_ctx *ctx, pinas_net *net, const cJSON *o, const char *where, int idx)
{
    char path[64];
    snprintf(path, sizeof path, "nodes[%d]", idx);
    if (!cJSON_IsObject(o)) return pinas_error(ctx, PINAS_EINVAL, "%s: %s: expected an object", where, path);
    pinas_node n = {0};
    n.choice = -1;
    n.stride = 1;
    n.groups = 1;
    n.eps = 1e-5;
    n.poly_scale = 1.0;
    const char *id = NULL, *op = NULL;
    pinas_status s;
    if ((s = pinas_json_get_str(ctx, o, where, path, "id", &id))) return s;
    if (!*id || strlen(id) >= PINAS_MAX_ID || strcmp(id, "input") == 0)
        return pinas_error(ctx, PINAS_EINVAL, "%s: %s.id: \"%s\" is not a usable id (non-empty, < %d chars, not \"input\")", where, path, id,
                           PINAS_MAX_ID);
    snprintf(n.id, sizeof n.id, "%s", id);
    /* From here on, messages name the node by id. */
    snprintf(path, sizeof path, "node %.50s", id);
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        int known = 0;
        for (size_t k = 0; k < sizeof node_keys / sizeof node_keys[0]; k++) known |= strcmp(it->string, node_keys[k]) == 0;
        if (!known) {
            const char *dym = pinas_did_you_mean(it->string, node_keys, (int)(sizeof node_keys / sizeof node_keys[0]));
            return pinas_error(ctx, PINAS_EINVAL, "%s: %s: unknown key \"%s\"%s%s%s", where, path, it->string, dym ? " (did you mean \"" : "",
                               dym ? dym : "", dym ? "\"?)" : "");
        }
    }
    if ((s = pinas_json_get_str(ctx, o, where, path, "op", &op))) return s;
    if (op_parse(op, &n.op)) {
        const char *dym = pinas_did_you_mean(op, op_names + 1, PINAS_OP_COUNT - 1);
        return pinas_error(ctx, PINAS_EINVAL, "%s: %s: unknown op \"%s\"%s%s%s", where, path, op, dym ? " (did you mean \"" : "",
                           dym ? dym : "", dym ? "\"?)" : "");
    }
    if ((s = parse_inputs(ctx, net, o, where, path, &n)) || (s = parse_op_fields(ctx, o, where, path, &n)) ||
        (s = parse_slot(ctx, o, where, path, &n)))
        return s;
    if (net_append(net, &n) < 0) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    return PINAS_OK;
}

static pinas_status from_compact(pinas_ctx *ctx, const cJSON *j, const char *where, pinas_net **out);

/* "input": [C, H, W], each in [1, PINAS_NET_MAX_DIM] (both forms). */
static pinas_status read_input(pinas_ctx *ctx, const cJSON *j, const char *where, int64_t shape[3])
{
    pinas_status s = get_ints(ctx, j, where, "", "input", 1, PINAS_NET_MAX_DIM, shape, 3);
    if (s) return s;
    if (shape[0] * shape[1] * shape[2] > PINAS_NET_MAX_ELEMS)
        return pinas_error(ctx, PINAS_EINVAL, "%s: input: [%lld, %lld, %lld] has more than %d elements", where, (long long)shape[0],
                           (long long)shape[1], (long long)shape[2], PINAS_NET_MAX_ELEMS);
    return PINAS_OK;
}

/* "name": optional, shorter than PINAS_MAX_ID (a truncated name would silently differ). */
static pinas_status read_name(pinas_ctx *ctx, const cJSON *j, const char *where, const char **name)
{
    pinas_status s = pinas_json_get_str_opt(ctx, j, where, "", "name", name);
    if (s) return s;
    if (*name && (!**name || strlen(*name) >= PINAS_MAX_ID))
        return pinas_error(ctx, PINAS_EINVAL, "%s: name: expected 1 to %d characters, got %zu", where, PINAS_MAX_ID - 1, strlen(*name));
    return PINAS_OK;
}

/* Keys of the compact form only: in an explicit net they would be silently ignored. */
static const char *const compact_keys[] = {"backbone", "depth", "width", "stem", "act", "pool", "poly_scale", "poly_per_channel", "choices"};

static const char *const net_keys[] = {"format", "name", "input", "num_classes", "nodes", "backbone", "depth", "width",
                                       "stem", "act", "pool", "poly_scale", "poly_per_channel", "choices"};

pinas_status pinas_net_from_json(pinas_ctx *ctx, const cJSON *j, const char *where, pinas_net **out)
{
    *out = NULL;
    if (!cJSON_IsObject(j)) return pinas_error(ctx, PINAS_EINVAL, "%s: expected a JSON object", where);
    const char *fmt = NULL;
    pinas_status s;
    if ((s = pinas_json_get_str(ctx, j, where, "", "format", &fmt))) return s;
    if (strcmp(fmt, PINAS_NET_FORMAT) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: format: \"%s\" is not supported (expected \"%s\")", where, fmt, PINAS_NET_FORMAT);
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        int known = 0;
        for (size_t k = 0; k < sizeof net_keys / sizeof net_keys[0]; k++) known |= strcmp(it->string, net_keys[k]) == 0;
        if (!known) {
            const char *dym = pinas_did_you_mean(it->string, net_keys, (int)(sizeof net_keys / sizeof net_keys[0]));
            return pinas_error(ctx, PINAS_EINVAL, "%s: unknown key \"%s\"%s%s%s", where, it->string, dym ? " (did you mean \"" : "",
                               dym ? dym : "", dym ? "\"?)" : "");
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(j, "backbone")) {
        if (cJSON_GetObjectItemCaseSensitive(j, "nodes"))
            return pinas_error(ctx, PINAS_EINVAL, "%s: give either \"backbone\" (compact form) or \"nodes\" (explicit form), not both", where);
        return from_compact(ctx, j, where, out);
    }
    for (size_t k = 0; k < sizeof compact_keys / sizeof compact_keys[0]; k++)
        if (cJSON_GetObjectItemCaseSensitive(j, compact_keys[k]))
            return pinas_error(ctx, PINAS_EINVAL, "%s: \"%s\" belongs to the compact form (with \"backbone\"), not to a net with \"nodes\"", where,
                               compact_keys[k]);
    int64_t shape[3], nc;
    if ((s = read_input(ctx, j, where, shape))) return s;
    if ((s = pinas_json_get_int(ctx, j, where, "", "num_classes", 1, PINAS_NET_MAX_CLASSES, &nc))) return s;
    const char *name = NULL;
    if ((s = read_name(ctx, j, where, &name))) return s;
    if (!name) name = "net";
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(j, "nodes");
    if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1)
        return pinas_error(ctx, PINAS_EINVAL, "%s: nodes: expected a non-empty array of nodes (or a \"backbone\")", where);
    pinas_net *net = net_new(name, (int)shape[0], (int)shape[1], (int)shape[2], (int)nc);
    if (!net) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    int idx = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, nodes)
    {
        if ((s = parse_node(ctx, net, o, where, idx++))) {
            pinas_net_free(net);
            return s;
        }
    }
    if ((s = net_finalize(ctx, net, where))) {
        pinas_net_free(net);
        return s;
    }
    /* A stored shape must agree with the inferred one: catches hand-edited files. */
    idx = 0;
    cJSON_ArrayForEach(o, nodes)
    {
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shape");
        const pinas_node *n = &net->nodes[++idx];
        if (!sh) continue;
        int64_t v3[3];
        if ((s = get_ints(ctx, o, where, n->id, "shape", 0, PINAS_NET_MAX_ELEMS, v3, 3))) {
            pinas_net_free(net);
            return s;
        }
        if (v3[0] != n->c || v3[1] != n->h || v3[2] != n->w) {
            s = pinas_error(ctx, PINAS_ESHAPE, "%s: node %s: shape [%lld, %lld, %lld] disagrees with the inferred [%d, %d, %d]", where, n->id,
                            (long long)v3[0], (long long)v3[1], (long long)v3[2], n->c, n->h, n->w);
            pinas_net_free(net);
            return s;
        }
    }
    *out = net;
    return PINAS_OK;
}

static pinas_status read_names(pinas_ctx *ctx, const cJSON *j, const char *where, const char *key, const char **names, int *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!a) return PINAS_OK;
    if (cJSON_IsString(a)) {
        names[0] = a->valuestring;
        *n = 1;
        return PINAS_OK;
    }
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > PINAS_MAX_CANDS)
        return pinas_error(ctx, PINAS_EINVAL, "%s: %s: expected a candidate name or an array of 1 to %d names", where, key, PINAS_MAX_CANDS);
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsString(e)) return pinas_error(ctx, PINAS_EINVAL, "%s: %s[%d]: expected a candidate name", where, key, k);
        names[k++] = e->valuestring;
    }
    *n = k;
    return PINAS_OK;
}

static pinas_status from_compact(pinas_ctx *ctx, const cJSON *j, const char *where, pinas_net **out)
{
    pinas_space_opts o = {0};
    pinas_status s;
    const char *act[PINAS_MAX_CANDS], *pool[PINAS_MAX_CANDS];
    if ((s = pinas_json_get_str(ctx, j, where, "", "backbone", &o.backbone))) return s;
    int64_t v = 0;
    if ((s = pinas_json_get_int_opt(ctx, j, where, "", "depth", 1, 1000, &v))) return s;
    o.depth = (int)v;
    v = 0;
    if ((s = pinas_json_get_int_opt(ctx, j, where, "", "width", 1, PINAS_SPACE_MAX_WIDTH, &v))) return s;
    o.width = (int)v;
    if ((s = pinas_json_get_str_opt(ctx, j, where, "", "stem", &o.stem))) return s;
    int64_t shape[3] = {3, 32, 32};
    if (cJSON_GetObjectItemCaseSensitive(j, "input") && (s = read_input(ctx, j, where, shape))) return s;
    o.in_c = (int)shape[0];
    o.in_h = (int)shape[1];
    o.in_w = (int)shape[2];
    v = 10;
    if ((s = pinas_json_get_int_opt(ctx, j, where, "", "num_classes", 1, PINAS_NET_MAX_CLASSES, &v))) return s;
    o.num_classes = (int)v;
    if ((s = read_names(ctx, j, where, "act", act, &o.n_act))) return s;
    if ((s = read_names(ctx, j, where, "pool", pool, &o.n_pool))) return s;
    o.act = act;
    o.pool = pool;
    if ((s = pinas_json_get_num_opt(ctx, j, where, "", "poly_scale", -1e6, 1e6, &o.poly_scale))) return s;
    /* The generators read 0 as "the default, 1"; a written 0 must not silently become 1. */
    if (cJSON_GetObjectItemCaseSensitive(j, "poly_scale") && o.poly_scale == 0)
        return pinas_error(ctx, PINAS_EINVAL, "%s: poly_scale: 0 is not supported in a compact space (use the explicit form)", where);
    int b = 0;
    if ((s = pinas_json_get_bool_opt(ctx, j, where, "", "poly_per_channel", &b))) return s;
    o.poly_per_channel = b;
    const char *name = NULL;
    if ((s = read_name(ctx, j, where, &name))) return s;
    if ((s = pinas_net_generate(ctx, &o, out))) return pinas_error_prefix(ctx, s, "%s", where);
    if (name) snprintf((*out)->name, sizeof (*out)->name, "%s", name);
    /* Optional decisions: {"choices": {"node id": "candidate", ...}}. */
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (ch) {
        if (!cJSON_IsObject(ch)) {
            pinas_net_free(*out);
            *out = NULL;
            return pinas_error(ctx, PINAS_EINVAL, "%s: choices: expected an object {node id: candidate}", where);
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, ch)
        {
            int i = pinas_net_find(*out, e->string);
            pinas_cand c;
            int k = -1;
            if (i >= 0 && cJSON_IsString(e) && !pinas_cand_parse(e->valuestring, &c))
                for (int q = 0; q < (*out)->nodes[i].n_cands; q++)
                    if ((*out)->nodes[i].cands[q].kind == c.kind && (*out)->nodes[i].cands[q].ph == c.ph && (*out)->nodes[i].cands[q].pw == c.pw) k = q;
            if (k < 0) {
                pinas_net_free(*out);
                *out = NULL;
                return pinas_error(ctx, PINAS_EINVAL, "%s: choices.%s: %s", where, e->string,
                                   i < 0 ? "no such node" : "not one of the node's candidates");
            }
            (*out)->nodes[i].choice = k;
        }
    }
    return PINAS_OK;
}

pinas_status pinas_net_load(pinas_ctx *ctx, const char *path, pinas_net **out)
{
    cJSON *j;
    *out = NULL;
    pinas_status s = pinas_json_load(ctx, path, &j);
    if (s) return s;
    s = pinas_net_from_json(ctx, j, path, out);
    cJSON_Delete(j);
    return s;
}

pinas_status pinas_net_load_config_space(pinas_ctx *ctx, const pinas_config *cfg, pinas_net **out)
{
    *out = NULL;
    if (cfg->space_inline) return pinas_net_from_json(ctx, cfg->space_inline, "space", out);
    const char *path = cfg->space_path, *src = cfg->source;
    if (!path) return pinas_error(ctx, PINAS_EINVAL, "%s: space: missing", src && *src ? src : "config");
    if (path[0] != '/' && src && *src && strchr(src, '/')) {
        char *dir = pinas_strdup(src);
        if (!dir) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        *strrchr(dir, '/') = 0;
        char *p = pinas_path_join(dir, path);
        free(dir);
        if (p && pinas_path_exists(p)) {
            pinas_status s = pinas_net_load(ctx, p, out);
            free(p);
            return s;
        }
        free(p);
    }
    if (!pinas_path_exists(path))
        return pinas_error(ctx, PINAS_EINVAL, "%s: space: \"%s\" not found (relative to the config file or the working directory)",
                           src && *src ? src : "config", path);
    return pinas_net_load(ctx, path, out);
}
