/* The net IR in libtorch: parameters per node, forward for decided nets and alpha-mixed supernets, derive, export, load. */
#define _GNU_SOURCE
#include "train_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SPECS 8

/* One tensor of the net, named as in pinas_node_param_specs. */
typedef struct {
    pinas_param_spec spec;
    int node;
    pt_tensor *t;
} tparam;

struct pinas_tnet {
    pinas_net *net;
    int n_nodes;
    int *first;             /* index of each node's first tparam; first[i+1] - first[i] of them */
    tparam *params;
    int n_params;
    pt_tensor **weights;    /* WEIGHT tensors (borrowed from params) */
    const char **wnames;
    int n_weights;
    pt_tensor **alphas;     /* ARCH tensors (borrowed) */
    int *alpha_node;
    int *node_alpha;        /* per node: index into alphas, or -1 */
    int n_alphas;
    pt_gen *gen;
    int gumbel, hard;
    double tau;
    char device[32];
};

pt_gen *tr_tnet_gen(const pinas_tnet *t) { return t->gen; }
const pinas_net *pinas_tnet_net(const pinas_tnet *t) { return t->net; }
int pinas_tnet_n_alphas(const pinas_tnet *t) { return t->n_alphas; }
int pinas_tnet_n_weights(const pinas_tnet *t) { return t->n_weights; }
pt_tensor *const *pinas_tnet_weights(pinas_tnet *t) { return t->weights; }
pt_tensor *const *pinas_tnet_alphas(pinas_tnet *t) { return t->alphas; }

pt_tensor *pinas_tnet_alpha(pinas_tnet *t, int k, int *node)
{
    if (k < 0 || k >= t->n_alphas) return NULL;
    if (node) *node = t->alpha_node[k];
    return t->alphas[k];
}

pt_tensor *pinas_tnet_weight(pinas_tnet *t, int k, const char **name)
{
    if (k < 0 || k >= t->n_weights) return NULL;
    if (name) *name = t->wnames[k];
    return t->weights[k];
}

void pinas_tnet_set_gumbel(pinas_tnet *t, int on, double tau, int hard)
{
    t->gumbel = on;
    t->tau = tau;
    t->hard = hard;
}

void pinas_tnet_free(pinas_tnet *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_params; i++) pt_free(t->params[i].t);
    free(t->params);
    free(t->first);
    free(t->weights);
    free(t->wnames);
    free(t->alphas);
    free(t->alpha_node);
    free(t->node_alpha);
    pt_gen_free(t->gen);
    pinas_net_free(t->net);
    free(t);
}

/* The tensor of node i whose name ends in ".suffix", or NULL. */
static pt_tensor *param(const pinas_tnet *t, int i, const char *suffix)
{
    size_t ls = strlen(suffix);
    for (int k = t->first[i]; k < t->first[i + 1]; k++) {
        const char *nm = t->params[k].spec.name;
        size_t ln = strlen(nm);
        if (ln > ls && nm[ln - ls - 1] == '.' && strcmp(nm + ln - ls, suffix) == 0) return t->params[k].t;
    }
    return NULL;
}

static int64_t spec_numel(const pinas_param_spec *s)
{
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
    return n;
}

/* Initial value of one tensor, drawn from g (see pinas_tnet_create). */
static int init_param(const pinas_net *net, const tparam *p, pt_gen *g)
{
    const pinas_node *n = pinas_net_node(net, p->node);
    const char *suffix = strrchr(p->spec.name, '.') + 1;
    switch (n->op) {
    case PINAS_OP_CONV2D:
        if (strcmp(suffix, "weight") == 0) {
            /* He-normal, fan_out mode (torchvision's ResNet init). */
            double fan_out = (double)p->spec.shape[0] * p->spec.shape[2] * p->spec.shape[3];
            return pt_normal_(p->t, 0.0, sqrt(2.0 / fan_out), g);
        }
        return pt_fill_(p->t, 0.0);
    case PINAS_OP_LINEAR: {
        /* PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
        const pinas_node *a = pinas_net_node(net, n->inputs[0]);
        double bound = 1.0 / sqrt((double)a->c);
        return pt_uniform_(p->t, -bound, bound, g);
    }
    case PINAS_OP_BATCHNORM:
        return pt_fill_(p->t, (strcmp(suffix, "weight") == 0 || strcmp(suffix, "running_var") == 0) ? 1.0 : 0.0);
    case PINAS_OP_ACT:
        if (strcmp(suffix, "w0") == 0) return pt_fill_(p->t, 0.005); /* PASNet's init */
        if (strcmp(suffix, "w1") == 0) return pt_fill_(p->t, 1.0);
        if (strcmp(suffix, "b") == 0) return pt_fill_(p->t, 0.0);
        return pt_normal_(p->t, 0.0, 1e-3, g); /* alpha */
    case PINAS_OP_POOL:
        return pt_normal_(p->t, 0.0, 1e-3, g);
    default:
        return pt_fill_(p->t, 0.0);
    }
}

pinas_status pinas_tnet_create(pinas_ctx *ctx, const pinas_net *net, uint64_t seed, pinas_tnet **out)
{
    *out = NULL;
    const char *device = pinas_ctx_device(ctx);
    if (pt_device_check(device)) return pinas_torch_error(ctx, "device");
    pinas_tnet *t = calloc(1, sizeof *t);
    if (!t) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    snprintf(t->device, sizeof t->device, "%s", device);
    t->tau = 1.0;
    t->net = pinas_net_clone(net);
    t->n_nodes = pinas_net_n_nodes(net);
    int total = 0;
    for (int i = 0; i < t->n_nodes; i++) total += pinas_node_param_specs(net, i, NULL, 0);
    t->first = calloc((size_t)t->n_nodes + 1, sizeof(int));
    t->params = calloc((size_t)(total ? total : 1), sizeof(tparam));
    t->weights = calloc((size_t)(total ? total : 1), sizeof(pt_tensor *));
    t->wnames = calloc((size_t)(total ? total : 1), sizeof(char *));
    t->alphas = calloc((size_t)(total ? total : 1), sizeof(pt_tensor *));
    t->alpha_node = calloc((size_t)(total ? total : 1), sizeof(int));
    t->node_alpha = calloc((size_t)t->n_nodes, sizeof(int));
    if (!t->net || !t->first || !t->params || !t->weights || !t->wnames || !t->alphas || !t->alpha_node || !t->node_alpha) {
        pinas_tnet_free(t);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (pt_gen_create(seed, &t->gen)) {
        pinas_tnet_free(t);
        return pinas_torch_error(ctx, "tnet: generator");
    }
    int on_cpu = strcmp(device, "cpu") == 0;
    for (int i = 0; i < t->n_nodes; i++) {
        pinas_param_spec specs[MAX_SPECS];
        int k = pinas_node_param_specs(t->net, i, specs, MAX_SPECS);
        t->first[i] = t->n_params;
        t->node_alpha[i] = -1;
        for (int j = 0; j < k && j < MAX_SPECS; j++) {
            tparam *p = &t->params[t->n_params];
            p->spec = specs[j];
            p->node = i;
            /* Initialised on the CPU from the generator, so that a seed gives the same weights on every device. */
            t->n_params++;
            if (pt_zeros(p->spec.ndim, p->spec.shape, &p->t) || init_param(t->net, p, t->gen)) {
                pinas_tnet_free(t);
                return pinas_torch_error(ctx, p->spec.name);
            }
            if (!on_cpu) {
                pt_tensor *dev = NULL;
                int rc = pt_to_device(p->t, device, &dev);
                pt_free(p->t);
                p->t = dev;
                if (rc) {
                    pinas_tnet_free(t);
                    return pinas_torch_error(ctx, p->spec.name);
                }
            }
            if (p->spec.kind != PINAS_PARAM_BUFFER && pt_set_requires_grad(p->t, 1)) {
                pinas_tnet_free(t);
                return pinas_torch_error(ctx, p->spec.name);
            }
            if (p->spec.kind == PINAS_PARAM_WEIGHT) {
                t->wnames[t->n_weights] = p->spec.name;
                t->weights[t->n_weights++] = p->t;
            } else if (p->spec.kind == PINAS_PARAM_ARCH) {
                t->node_alpha[i] = t->n_alphas;
                t->alpha_node[t->n_alphas] = i;
                t->alphas[t->n_alphas++] = p->t;
            }
        }
    }
    t->first[t->n_nodes] = t->n_params;
    *out = t;
    return PINAS_OK;
}

/* ------------------------------------------------------------------ forward */

/* Output of one candidate op of slot node n on x. */
static int cand_forward(const pinas_tnet *t, int i, const pinas_cand *c, const pt_tensor *x, pt_tensor **y)
{
    const pinas_node *n = pinas_net_node(t->net, i);
    switch (c->kind) {
    case PINAS_CAND_RELU: return pt_relu(x, y);
    case PINAS_CAND_POLY: return pt_poly(x, param(t, i, "w0"), param(t, i, "w1"), param(t, i, "b"), n->poly_scale, y);
    case PINAS_CAND_PATCH_RELU: return pt_patch_relu(x, c->ph, c->pw, y);
    case PINAS_CAND_IDENTITY: return pt_ref(x, y);
    case PINAS_CAND_MAXPOOL: return pt_max_pool2d(x, n->kh, n->kw, n->stride, n->pad, y);
    case PINAS_CAND_AVGPOOL: return pt_avg_pool2d(x, n->kh, n->kw, n->stride, n->pad, 0, 1, y);
    }
    return -1;
}

/* A slot: its chosen op, or sum_k w_k op_k(x) with w = softmax(alpha) (Gumbel-softmax when training
 * in Gumbel mode). */
static pinas_status slot_forward(pinas_ctx *ctx, pinas_tnet *t, int i, const pt_tensor *x, int train, pt_tensor **y)
{
    const pinas_node *n = pinas_net_node(t->net, i);
    const pinas_cand *c = pinas_node_chosen(n);
    if (c) {
        if (cand_forward(t, i, c, x, y)) return pinas_torch_error(ctx, n->id);
        return PINAS_OK;
    }
    pt_tensor *alpha = t->alphas[t->node_alpha[i]], *w = NULL, *ys[PINAS_MAX_CANDS] = {0};
    int rc = (train && t->gumbel) ? pt_gumbel_softmax_gen(alpha, t->tau, t->hard, t->gen, &w) : pt_softmax(alpha, 0, &w);
    for (int k = 0; !rc && k < n->n_cands; k++) rc = cand_forward(t, i, &n->cands[k], x, &ys[k]);
    if (!rc) rc = pt_mix((const pt_tensor *const *)ys, n->n_cands, w, y);
    for (int k = 0; k < n->n_cands; k++) pt_free(ys[k]);
    pt_free(w);
    if (rc) return pinas_torch_error(ctx, n->id);
    return PINAS_OK;
}

pinas_status pinas_tnet_forward(pinas_ctx *ctx, pinas_tnet *t, const pt_tensor *x, int train, pt_tensor **logits)
{
    *logits = NULL;
    int ndim = 0;
    int64_t shp[8];
    if (pt_shape(x, &ndim, shp, 8)) return pinas_torch_error(ctx, "forward: input");
    const pinas_node *in = pinas_net_node(t->net, 0);
    if (ndim != 4 || shp[1] != in->c || shp[2] != in->h || shp[3] != in->w)
        return pinas_error(ctx, PINAS_ESHAPE, "%s: forward: input of shape [%lld, %lld, %lld, %lld] (%d-d), the net takes [B, %d, %d, %d]",
                           pinas_net_name(t->net), ndim > 0 ? (long long)shp[0] : 0LL, ndim > 1 ? (long long)shp[1] : 0LL,
                           ndim > 2 ? (long long)shp[2] : 0LL, ndim > 3 ? (long long)shp[3] : 0LL, ndim, in->c, in->h, in->w);
    int64_t B = shp[0];
    pt_tensor **act = calloc((size_t)t->n_nodes, sizeof *act);
    if (!act) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    int rc = strcmp(t->device, "cpu") == 0 ? pt_ref(x, &act[0]) : pt_to_device(x, t->device, &act[0]);
    if (rc) s = pinas_torch_error(ctx, "forward: input");
    for (int i = 1; i < t->n_nodes && !s; i++) {
        const pinas_node *n = pinas_net_node(t->net, i);
        const pt_tensor *a = act[n->inputs[0]];
        switch (n->op) {
        case PINAS_OP_CONV2D:
            rc = pt_conv2d(a, param(t, i, "weight"), n->bias ? param(t, i, "bias") : NULL, n->stride, n->pad, n->groups, &act[i]);
            break;
        case PINAS_OP_BATCHNORM:
            rc = pt_batch_norm(a, param(t, i, "weight"), param(t, i, "bias"), param(t, i, "running_mean"), param(t, i, "running_var"),
                               train, 0.1, n->eps, &act[i]);
            break;
        case PINAS_OP_LINEAR: {
            /* Activations stay [B, C, H, W]; a linear layer sees [B, C] and gives back [B, K, 1, 1]. */
            const pinas_node *src = pinas_net_node(t->net, n->inputs[0]);
            int64_t s2[2] = {B, src->c}, s4[4] = {B, n->out_features, 1, 1};
            pt_tensor *flat = NULL, *o = NULL;
            rc = pt_reshape(a, 2, s2, &flat) || pt_linear(flat, param(t, i, "weight"), n->bias ? param(t, i, "bias") : NULL, &o) ||
                 pt_reshape(o, 4, s4, &act[i]);
            pt_free(flat);
            pt_free(o);
            break;
        }
        case PINAS_OP_ACT:
        case PINAS_OP_POOL:
            s = slot_forward(ctx, t, i, a, train, &act[i]);
            rc = 0;
            break;
        case PINAS_OP_ADD: rc = pt_add(a, act[n->inputs[1]], &act[i]); break;
        case PINAS_OP_FLATTEN: {
            int64_t s4[4] = {B, n->c, 1, 1};
            rc = pt_reshape(a, 4, s4, &act[i]);
            break;
        }
        case PINAS_OP_GLOBAL_AVGPOOL: rc = pt_global_avg_pool(a, &act[i]); break;
        default: s = pinas_error(ctx, PINAS_EINTERNAL, "node %s: op %s cannot run in libtorch", n->id, pinas_op_name(n->op));
        }
        if (rc && !s) s = pinas_torch_error(ctx, n->id);
    }
    if (!s) {
        const pinas_node *o = pinas_net_node(t->net, t->n_nodes - 1);
        int64_t s2[2] = {B, o->c};
        if (pt_reshape(act[t->n_nodes - 1], 2, s2, logits)) s = pinas_torch_error(ctx, "forward: logits");
    }
    for (int i = 0; i < t->n_nodes; i++) pt_free(act[i]);
    free(act);
    if (s) return pinas_error_prefix(ctx, s, "%s: forward", pinas_net_name(t->net));
    return PINAS_OK;
}

/* ------------------------------------------------------------------ alphas and derivation */

pinas_status pinas_tnet_alpha_probs(pinas_ctx *ctx, pinas_tnet *t, int k, float *out)
{
    if (k < 0 || k >= t->n_alphas) return pinas_error(ctx, PINAS_EINVAL, "alpha %d: the net has %d", k, t->n_alphas);
    const pinas_node *n = pinas_net_node(t->net, t->alpha_node[k]);
    pt_tensor *p = NULL;
    int rc = pt_softmax(t->alphas[k], 0, &p) || pt_to_f32(p, out, (size_t)n->n_cands);
    pt_free(p);
    return rc ? pinas_torch_error(ctx, n->id) : PINAS_OK;
}

pinas_status pinas_tnet_set_alpha(pinas_ctx *ctx, pinas_tnet *t, int k, const float *vals)
{
    if (k < 0 || k >= t->n_alphas) return pinas_error(ctx, PINAS_EINVAL, "alpha %d: the net has %d", k, t->n_alphas);
    const pinas_node *n = pinas_net_node(t->net, t->alpha_node[k]);
    if (pt_copy_from_f32(t->alphas[k], vals, (size_t)n->n_cands)) return pinas_torch_error(ctx, n->id);
    return PINAS_OK;
}

pinas_status pinas_tnet_derive(pinas_ctx *ctx, const pinas_tnet *t, pinas_net **out)
{
    *out = pinas_net_clone(t->net);
    if (!*out) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < t->n_alphas; k++) {
        int64_t best = 0;
        pinas_status s = PINAS_OK;
        if (pt_argmax(t->alphas[k], &best)) s = pinas_torch_error(ctx, pinas_net_node(t->net, t->alpha_node[k])->id);
        if (!s) s = pinas_net_decide(ctx, *out, t->alpha_node[k], (int)best);
        if (s) {
            pinas_net_free(*out);
            *out = NULL;
            return s;
        }
    }
    return PINAS_OK;
}

/* ------------------------------------------------------------------ export and load */

static const tparam *find_param(const pinas_tnet *t, const char *name)
{
    for (int i = 0; i < t->n_params; i++)
        if (strcmp(t->params[i].spec.name, name) == 0) return &t->params[i];
    return NULL;
}

static pinas_status export_one(pinas_ctx *ctx, const tparam *p, pinas_tensors *w)
{
    int64_t n = spec_numel(&p->spec);
    float *buf = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!buf) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    if (pt_to_f32(p->t, buf, (size_t)n)) s = pinas_torch_error(ctx, p->spec.name);
    if (!s) s = pinas_tensors_add(ctx, w, p->spec.name, PINAS_F32, p->spec.ndim, p->spec.shape, buf);
    free(buf);
    return s;
}

pinas_status pinas_tnet_export(pinas_ctx *ctx, const pinas_tnet *t, const pinas_net *arch, pinas_tensors **out)
{
    *out = pinas_tensors_create();
    if (!*out) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    if (!arch) {
        for (int i = 0; i < t->n_params && !s; i++) s = export_one(ctx, &t->params[i], *out);
    } else if (pinas_net_n_nodes(arch) != t->n_nodes) {
        s = pinas_error(ctx, PINAS_EINVAL, "export: architecture %s has %d nodes, the trained net %s has %d", pinas_net_name(arch),
                        pinas_net_n_nodes(arch), pinas_net_name(t->net), t->n_nodes);
    } else {
        for (int i = 0; i < t->n_nodes && !s; i++) {
            const pinas_node *a = pinas_net_node(arch, i), *b = pinas_net_node(t->net, i);
            if (strcmp(a->id, b->id) != 0 || a->op != b->op) {
                s = pinas_error(ctx, PINAS_EINVAL, "export: node %d is %s (%s) in the architecture but %s (%s) in the trained net", i, a->id,
                                pinas_op_name(a->op), b->id, pinas_op_name(b->op));
                break;
            }
            pinas_param_spec specs[MAX_SPECS];
            int k = pinas_node_param_specs(arch, i, specs, MAX_SPECS);
            for (int j = 0; j < k && j < MAX_SPECS && !s; j++) {
                if (specs[j].kind == PINAS_PARAM_ARCH) continue;
                const tparam *p = find_param(t, specs[j].name);
                if (!p) {
                    s = pinas_error(ctx, PINAS_EINVAL, "export: %s: the trained net has no such tensor (the architecture chose a candidate the net lacks)",
                                    specs[j].name);
                } else if (p->spec.ndim != specs[j].ndim || memcmp(p->spec.shape, specs[j].shape, sizeof(int64_t) * (size_t)specs[j].ndim)) {
                    s = pinas_error(ctx, PINAS_ESHAPE, "export: %s: shapes of the architecture and the trained net differ", specs[j].name);
                } else {
                    s = export_one(ctx, p, *out);
                }
            }
        }
    }
    if (s) {
        pinas_tensors_free(*out);
        *out = NULL;
    }
    return s;
}

pinas_status pinas_tnet_load(pinas_ctx *ctx, pinas_tnet *t, const pinas_tensors *w, int strict)
{
    for (int i = 0; i < t->n_params; i++) {
        const tparam *p = &t->params[i];
        pinas_tensor_view v;
        if (pinas_tensors_find(w, p->spec.name, &v)) {
            if (strict && p->spec.kind != PINAS_PARAM_ARCH)
                return pinas_error(ctx, PINAS_EINVAL, "weights: %s is missing (net %s)", p->spec.name, pinas_net_name(t->net));
            continue;
        }
        pinas_status s = pinas_tensors_expect(ctx, w, "weights", p->spec.name, PINAS_F32, p->spec.ndim, p->spec.shape, &v);
        if (s) return s;
        if (pt_copy_from_f32(p->t, (const float *)v.data, (size_t)spec_numel(&p->spec))) return pinas_torch_error(ctx, p->spec.name);
    }
    return PINAS_OK;
}

pinas_status pinas_tnet_from_model(pinas_ctx *ctx, const pinas_model *m, pinas_tnet **out)
{
    pinas_status s = pinas_tnet_create(ctx, m->net, 0, out);
    if (s) return s;
    if ((s = pinas_tnet_load(ctx, *out, m->weights, 1))) {
        pinas_tnet_free(*out);
        *out = NULL;
    }
    return s;
}
