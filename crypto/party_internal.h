/* Internals of one party's run, shared by party.c (the run), party_setup.c (handshake, setup) and party_online.c. */
#ifndef PINAS_PARTY_INTERNAL_H
#define PINAS_PARTY_INTERNAL_H

#include "mpc_internal.h"

/* The state of one party for one inference. Every buffer is owned and wiped by eng_free. */
typedef struct {
    pinas_ctx *ctx;
    pinas_chan *ch;
    int role, f, batch;
    const pinas_net *net;
    const pinas_model *model;
    const pinas_mpc_prep *pp;
    pl_plan pl;
    uint64_t **val;     /* shares per node (NULL for aliases) */
    int *owner;         /* node whose buffer holds node i's value */
    /* server: encoded weights (f bits) and biases (2f bits) of matmul nodes; max weight bits */
    uint64_t **W, **bias;
    int *wbits;
    /* both: poly coefficients: a = s*w0 and w1 at f bits, b at 2f bits (poly_channels each) */
    uint64_t **pa, **pw1, **pb;
    /* client: (W-A)·cols(B) + C1 per matmul node, computed in setup */
    uint64_t **Y1;
    pinas_mpc_counts cur; /* counters of the node being run */
    const char *mask_cache; /* client: directory of cached masked weights */
    int peer_has_masked;    /* server: the client has W - A cached; client: we have */
    uint64_t *cached;       /* client: the cached masked weights (all matmul nodes, in node order) */
    pinas_mpc_layer_report *rows; /* per node, plus the output row at index n_nodes */
} eng;

static inline uint64_t *node_val(eng *e, int i) { return e->val[e->owner[i]]; }
static inline const char *role_name(int role) { return role == 0 ? "server" : "client"; }

/* ------------------------------------------------------------------ counted communication (party_online.c) */

/* Send, receive, exchange one framed message; each counts one round and its bytes into e->cur. */
pinas_status eng_send(eng *e, uint32_t tag, const void *buf, size_t len) PINAS_WUR;
pinas_status eng_recv(eng *e, uint32_t tag, void *buf, size_t len) PINAS_WUR;
pinas_status eng_exchange(eng *e, uint32_t tag, const void *sbuf, void *rbuf, size_t len) PINAS_WUR;

/* Runs planned node i online into its value buffer Y (inputs from e->val; the input node encodes x,
 * the client's input, which the server passes as NULL). Errors name nothing: the caller prefixes. */
pinas_status eng_run_node(eng *e, int i, const float *x, uint64_t *Y) PINAS_WUR;

/* ------------------------------------------------------------------ setup (party_setup.c) */

/* Server: encodes the conv/linear weights (batchnorm folded) and the poly coefficients. */
pinas_status eng_server_params(eng *e) PINAS_WUR;
/* Client: loads W - A for this model and weight mask from e->mask_cache when cached and intact
 * (else leaves e->cached NULL, and the server sends it). */
void eng_cache_load(eng *e);
/* Bytes of all masked weights W - A (all matmul nodes). */
size_t eng_masked_bytes(const eng *e);
/* The handshake (checks version, roles, model hash, session, batch, weight mask), then the setup
 * message: the masked weights (unless the client has them cached) and the poly coefficients; the
 * client precomputes its share of every matmul product. *setup_bytes: the setup message's size. */
pinas_status eng_handshake(eng *e) PINAS_WUR;
pinas_status eng_setup(eng *e, size_t *setup_bytes) PINAS_WUR;

#endif
