/* Internals shared by the IR's reader/writer and its backbone generators (not a public header). */
#ifndef PINAS_NET_INTERNAL_H
#define PINAS_NET_INTERNAL_H
#include "pinas_net.h"

struct pinas_net {
    char name[PINAS_MAX_ID];
    int num_classes;
    int n, cap;
    pinas_node *nodes;
};

pinas_net *net_new(const char *name, int c, int h, int w, int num_classes);
/* Appends a node (copied); returns its index or -1 when out of memory. */
int net_append(pinas_net *net, const pinas_node *proto);
/* Infers shapes and validates every node; errors name `where` and the node id. */
pinas_status net_finalize(pinas_ctx *ctx, pinas_net *net, const char *where);
/* The plaintext executor; with calibrate_bn, every batchnorm first takes its running statistics from
 * the batch it sees (used to give random models well-scaled activations). */
pinas_status plain_forward_impl(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, float *logits, int calibrate_bn);
#endif
