/* The net builder: the one way to build a net in code (generators, benchmark and calibration nets). */
#define _GNU_SOURCE
#include "net_internal.h"

#include <stdlib.h>
#include <string.h>

struct pinas_net_builder {
    pinas_net *net;
    /* The first failure, kept so that a run of adds needs no checks and finish can report it. */
    pinas_status err;
    char msg[256];
};

pinas_net_builder *pinas_nb_create(const char *name, int c, int h, int w, int num_classes)
{
    pinas_net_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->net = net_new(name, c, h, w, num_classes);
    if (!b->net) {
        free(b);
        return NULL;
    }
    return b;
}

void pinas_nb_free(pinas_net_builder *b)
{
    if (!b) return;
    pinas_net_free(b->net);
    free(b);
}

pinas_node pinas_nb_node_init(const char *id, pinas_op op, int in)
{
    pinas_node n = {0};
    /* An id that does not fit is left empty, which pinas_nb_node rejects (a silently truncated id
     * could collide with another). */
    if (id && strlen(id) < sizeof n.id) memcpy(n.id, id, strlen(id) + 1);
    n.op = op;
    n.n_inputs = 1;
    n.inputs[0] = in;
    n.choice = -1;
    n.stride = 1;
    n.groups = 1;
    n.eps = 1e-5;
    n.poly_scale = 1.0;
    return n;
}

static int fail(pinas_net_builder *b, pinas_status s, const char *msg, const char *id)
{
    if (!b->err) {
        b->err = s;
        snprintf(b->msg, sizeof b->msg, "%s%s%s", id ? "node " : "", id ? id : "", msg);
    }
    return -1;
}

int pinas_nb_node(pinas_net_builder *b, const pinas_node *proto)
{
    if (!b || b->err) return -1;
    if (!proto->id[0] || strcmp(proto->id, "input") == 0)
        return fail(b, PINAS_EINVAL, "a node id must be non-empty, shorter than 128 characters and not \"input\"", NULL);
    if (proto->n_cands < 0 || proto->n_cands > PINAS_MAX_CANDS) return fail(b, PINAS_EINVAL, ": too many candidates", proto->id);
    int i = net_append(b->net, proto);
    if (i < 0) return fail(b, PINAS_ENOMEM, "out of memory", NULL);
    return i;
}

int pinas_nb_conv(pinas_net_builder *b, const char *id, int in, int out_c, int k, int stride, int pad, int groups)
{
    pinas_node n = pinas_nb_node_init(id, PINAS_OP_CONV2D, in);
    n.out_channels = out_c;
    n.kh = n.kw = k;
    n.stride = stride;
    n.pad = pad;
    n.groups = groups;
    return pinas_nb_node(b, &n);
}

int pinas_nb_batchnorm(pinas_net_builder *b, const char *id, int in)
{
    pinas_node n = pinas_nb_node_init(id, PINAS_OP_BATCHNORM, in);
    return pinas_nb_node(b, &n);
}

static int slot(pinas_net_builder *b, pinas_node *n, const pinas_cand *cands, int count)
{
    if (!b || b->err) return -1;
    if (count < 0 || count > PINAS_MAX_CANDS) return fail(b, PINAS_EINVAL, ": too many candidates", n->id);
    n->n_cands = count;
    if (count) memcpy(n->cands, cands, (size_t)count * sizeof *cands);
    return pinas_nb_node(b, n);
}

int pinas_nb_act(pinas_net_builder *b, const char *id, int in, const pinas_cand *cands, int n)
{
    pinas_node node = pinas_nb_node_init(id, PINAS_OP_ACT, in);
    return slot(b, &node, cands, n);
}

int pinas_nb_pool(pinas_net_builder *b, const char *id, int in, int k, int stride, int pad, const pinas_cand *cands, int n)
{
    pinas_node node = pinas_nb_node_init(id, PINAS_OP_POOL, in);
    node.kh = node.kw = k;
    node.stride = stride;
    node.pad = pad;
    return slot(b, &node, cands, n);
}

int pinas_nb_add(pinas_net_builder *b, const char *id, int x, int y)
{
    pinas_node n = pinas_nb_node_init(id, PINAS_OP_ADD, x);
    n.n_inputs = 2;
    n.inputs[1] = y;
    return pinas_nb_node(b, &n);
}

int pinas_nb_linear(pinas_net_builder *b, const char *id, int in, int out_features, int bias)
{
    pinas_node n = pinas_nb_node_init(id, PINAS_OP_LINEAR, in);
    n.out_features = out_features;
    n.bias = bias;
    return pinas_nb_node(b, &n);
}

int pinas_nb_flatten(pinas_net_builder *b, const char *id, int in)
{
    pinas_node n = pinas_nb_node_init(id, PINAS_OP_FLATTEN, in);
    return pinas_nb_node(b, &n);
}

int pinas_nb_global_avgpool(pinas_net_builder *b, const char *id, int in)
{
    pinas_node n = pinas_nb_node_init(id, PINAS_OP_GLOBAL_AVGPOOL, in);
    return pinas_nb_node(b, &n);
}

pinas_status pinas_nb_finish(pinas_ctx *ctx, pinas_net_builder *b, const char *where, pinas_net **out)
{
    *out = NULL;
    if (!b) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!where) where = b->net->name;
    pinas_status s = b->err;
    if (s == PINAS_ENOMEM) s = pinas_error(ctx, s, "out of memory");
    else if (s) s = pinas_error(ctx, s, "%s: %s", where, b->msg);
    else s = net_finalize(ctx, b->net, where);
    if (!s) {
        *out = b->net;
        b->net = NULL;
    }
    pinas_nb_free(b);
    return s;
}
