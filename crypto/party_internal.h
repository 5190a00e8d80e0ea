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
    /* server: biases (2f bits) and weight bits of matmul nodes; the encoded weights (f bits) of the
     * node being sent or run (eng_node_weights), wcap entries: the largest node's */
    uint64_t **bias, *wbuf;
    size_t wcap;
    int *wbits;
    /* both: poly coefficients: a = s*w0 and w1 at f bits, b at 2f bits (poly_channels each) */
    uint64_t **pa, **pw1, **pb;
    /* client: (W-A)·cols(B) + C1 per matmul node, computed in setup */
    uint64_t **Y1;
    pinas_mpc_counts cur; /* counters of the node being run */
    double comm_s, comm_cpu_s; /* wall and thread CPU seconds inside the channel calls (node being run) */
    double t_wall, t_cpu;      /* when the node being run started (pinas_now, pinas_thread_cpu) */
    const char *mask_cache; /* client: directory of cached masked weights */
    int peer_has_masked;    /* server: the client has W - A cached; client: we have */
    FILE *cached;           /* client: the verified cache of W - A, open at its data (read node by node in setup) */
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

/* Server: the biases (batchnorm folded), the poly coefficients, the weight scratch e->wbuf; checks
 * every node's parameters are there (errors name the node). */
pinas_status eng_server_params(eng *e) PINAS_WUR;
/* Server: encodes matmul node i's weights (batchnorm folded) into W (groups·M·K entries); *wbits (if
 * not NULL) gets their largest bit length plus one. Errors (PINAS_EFORMAT) name the node. */
pinas_status eng_node_weights(eng *e, int i, uint64_t *W, int *wbits) PINAS_WUR;
/* Server: where matmul node i's weights are encoded while it runs: e->wbuf, or, once setup found the
 * preprocessing's layer buffer large enough for every node (and dropped e->wbuf), that buffer past
 * node i's section (prep_scratch; node i must be the fetched node). NULL only if neither. */
uint64_t *eng_weights_at(eng *e, int i);
/* Client: opens W - A for this model and weight mask in e->mask_cache when cached and intact (header
 * and SHA-256 checked, streamed), leaving e->cached at its data; else e->cached stays NULL and the
 * server sends W - A. */
void eng_cache_load(eng *e);
/* Bytes of all masked weights W - A (all matmul nodes). */
size_t eng_masked_bytes(const eng *e);
/* The handshake (checks version, roles, model hash, session, batch, weight mask), then the setup
 * messages: the masked weights node by node (unless the client has them cached) and the poly
 * coefficients, one round; the client precomputes its share of every matmul product as they arrive.
 * *setup_bytes: the setup messages' size. */
pinas_status eng_handshake(eng *e) PINAS_WUR;
pinas_status eng_setup(eng *e, size_t *setup_bytes) PINAS_WUR;

#endif
