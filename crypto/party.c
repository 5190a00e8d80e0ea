/* One party of a private inference: checks, state, the run (setup, node by node, output) and its report. */
#define _GNU_SOURCE
#include "party_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void eng_free(eng *e)
{
    int nn = e->pl.n_nodes;
    for (int i = 0; i < nn; i++) {
        /* shares, the client's precomputed products and the server's weights are secrets: zero them */
        if (e->val && e->val[i]) OPENSSL_cleanse(e->val[i], 8 * (size_t)(e->pl.nodes[i].n_out ? e->pl.nodes[i].n_out : 1));
        if (e->Y1 && e->Y1[i])
            OPENSSL_cleanse(e->Y1[i], 8 * (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * (size_t)e->pl.nodes[i].N);
        if (e->val) free(e->val[i]);
        if (e->bias) free(e->bias[i]);
        if (e->pa) free(e->pa[i]);
        if (e->pw1) free(e->pw1[i]);
        if (e->pb) free(e->pb[i]);
        if (e->Y1) free(e->Y1[i]);
    }
    if (e->wbuf) OPENSSL_cleanse(e->wbuf, 8 * e->wcap);
    free(e->val), free(e->owner), free(e->wbuf), free(e->bias), free(e->wbits), free(e->pa), free(e->pw1), free(e->pb),
        free(e->Y1), free(e->rows);
    if (e->cached) fclose(e->cached);
    pl_free(&e->pl);
}

pinas_status pinas_mpc_prep_check(pinas_ctx *ctx, const pinas_mpc_prep *pp, const pinas_net *net, int role)
{
    if (pp->party != role)
        return pinas_error(ctx, PINAS_EINVAL, "the preprocessing file is party %d's (%s), this is the %s", pp->party,
                           role_name(pp->party), role_name(role));
    if (!pp->data && !pp->file)
        return pinas_error(ctx, PINAS_EINVAL, "this preprocessing holds no material (the streaming dealer's summary): "
                                              "load the file it wrote");
    pinas_mpc_params p;
    pinas_mpc_prep_params(pp, &p);
    if (pinas_mpc_arch_hash(net, &p) != pp->hash)
        return pinas_error(ctx, PINAS_EINVAL,
                           "the preprocessing was made for another model (hash %016llx, this model %016llx) or other "
                           "fixed-point parameters",
                           (unsigned long long)pp->hash, (unsigned long long)pinas_mpc_arch_hash(net, &p));
    if (pp->n_nodes != pinas_net_n_nodes(net))
        return pinas_error(ctx, PINAS_EINVAL, "the preprocessing has %d nodes, the model %d", pp->n_nodes,
                           pinas_net_n_nodes(net));
    pl_plan pl;
    pinas_status s = pl_build_win(ctx, net, &p, pp->node_bits, pp->node_high, -1, -1, &pl);
    if (s) return s;
    for (int i = 0; i < pl.n_nodes && !s; i++)
        if (pl_prep_bytes(&pl.nodes[i], role) != pp->len[i])
            s = pinas_error(ctx, PINAS_EINVAL, "the preprocessing does not match the model at node %s (%llu bytes, expected %llu)",
                            pinas_net_node(net, i)->id, (unsigned long long)pp->len[i],
                            (unsigned long long)pl_prep_bytes(&pl.nodes[i], role));
    pl_free(&pl);
    return s;
}

/* Checks the arguments and the preprocessing, plans the net and allocates the per-node state. */
static pinas_status eng_init(eng *e, pinas_ctx *ctx, pinas_chan *chan, const pinas_mpc_party_args *a)
{
    e->ctx = ctx;
    e->ch = chan;
    e->role = a->role;
    e->pp = a->prep;
    e->model = a->model;
    e->net = a->role == 0 ? (a->model ? a->model->net : a->net) : a->net;
    if (a->role != 0 && a->role != 1) return pinas_error(ctx, PINAS_EINVAL, "role must be 0 (server) or 1 (client)");
    if (!e->net || !e->pp || (a->role == 0 && !a->model) || (a->role == 1 && (!a->x || !a->logits)))
        return pinas_error(ctx, PINAS_EINVAL, "party %s: missing %s", role_name(a->role),
                           !e->pp ? "preprocessing" : a->role == 0 ? "model" : "net, input or logits buffer");
    pinas_status s = pinas_mpc_prep_check(ctx, e->pp, e->net, a->role);
    if (s) return s;
    pinas_chan_set_timeout(chan, a->timeout_ms > 0 ? a->timeout_ms : 30000);
    pinas_mpc_params p;
    pinas_mpc_prep_params(e->pp, &p);
    e->f = p.frac_bits;
    e->batch = p.batch;
    p.threads = a->threads > 1 ? a->threads : 1;
    if (p.threads > PINAS_MPC_MAX_THREADS)
        return pinas_error(ctx, PINAS_EINVAL, "threads: expected 1..%d, got %d", PINAS_MPC_MAX_THREADS, a->threads);
    s = pl_build_win(ctx, e->net, &p, e->pp->node_bits, e->pp->node_high, -1, -1, &e->pl);
    if (s) return s;
    size_t nn = (size_t)e->pl.n_nodes;
    e->val = calloc(nn, sizeof *e->val);
    e->owner = calloc(nn, sizeof *e->owner);
    e->bias = calloc(nn, sizeof *e->bias);
    e->wbits = calloc(nn, sizeof *e->wbits);
    e->pa = calloc(nn, sizeof *e->pa);
    e->pw1 = calloc(nn, sizeof *e->pw1);
    e->pb = calloc(nn, sizeof *e->pb);
    e->Y1 = calloc(nn, sizeof *e->Y1);
    e->rows = calloc(nn + 1, sizeof *e->rows);
    if (!e->val || !e->owner || !e->bias || !e->wbits || !e->pa || !e->pw1 || !e->pb || !e->Y1 || !e->rows)
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int i = 0; i < e->pl.n_nodes; i++) {
        pinas_mpc_layer_report *row = &e->rows[i];
        pl_cost(&e->pl.nodes[i], e->f, &row->measured); /* offline and setup figures come from the plan ... */
        memset(&row->measured.online, 0, sizeof(pinas_mpc_counts));
        row->measured.offline.aes_blocks[0] = e->pp->node_dealer[i].offline.aes_blocks[0]; /* ... and the dealer */
        row->measured.offline.ring_macs[0] = e->pp->node_dealer[i].offline.ring_macs[0];
        row->measured.offline.ring_macs[1] = 0;
        snprintf(row->id, sizeof row->id, "%s", pinas_net_node(e->net, i)->id);
    }
    return PINAS_OK;
}

/* The input-independent phase: the server's parameters, handshake and setup message. *session gets
 * the session-level counts (handshake and the setup message's round; its bytes go to the rows). */
static pinas_status run_setup(eng *e, const pinas_mpc_party_args *a, pinas_mpc_counts *session)
{
    pinas_status s = e->role == 0 ? eng_server_params(e) : PINAS_OK;
    e->mask_cache = a->role == 1 ? a->mask_cache : NULL;
    eng_cache_load(e);
    if (!s) {
        memset(&e->cur, 0, sizeof e->cur);
        size_t setup_bytes = 0;
        s = eng_handshake(e);
        if (!s) s = eng_setup(e, &setup_bytes);
        *session = e->cur;
        session->bytes[0] -= setup_bytes; /* the per-node rows carry those */
        if ((e->role == 0 && e->peer_has_masked) || (e->role == 1 && e->cached))
            for (int i = 0; i < e->pl.n_nodes; i++) /* the masked weights did not cross the network this time */
                if (e->pl.nodes[i].kind == PL_MATMUL) e->rows[i].measured.setup.bytes[0] = 0;
    }
    /* the client's input-independent products, counted per node */
    for (int i = 0; i < e->pl.n_nodes; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind == PL_MATMUL && e->role == 1)
            e->rows[i].measured.offline.ring_macs[1] = (uint64_t)pn->groups * pn->M * pn->K * (uint64_t)pn->N;
    }
    return s;
}

/* The clocks of one node: counters and channel times zeroed, wall and thread CPU started. */
static void node_clock_start(eng *e)
{
    memset(&e->cur, 0, sizeof e->cur);
    e->comm_s = e->comm_cpu_s = 0;
    e->t_wall = pinas_now();
    e->t_cpu = pinas_thread_cpu();
}

/* Stops them into row: wall, compute CPU (outside the channel), channel wall/CPU, wait, counters. */
static void node_clock_stop(eng *e, pinas_mpc_layer_report *row)
{
    double cpu = pinas_thread_cpu() - e->t_cpu;
    pinas_mpc_node_times *t = &row->party[e->role];
    t->wall_s = row->online_s = pinas_now() - e->t_wall;
    t->comm_s = e->comm_s;
    t->comm_cpu_s = e->comm_cpu_s;
    t->cpu_s = cpu > e->comm_cpu_s ? cpu - e->comm_cpu_s : 0;
    t->wait_s = e->comm_s > e->comm_cpu_s ? e->comm_s - e->comm_cpu_s : 0;
    row->measured.online = e->cur;
}

/* The online phase, node by node; errors are prefixed with the party and the node. */
static pinas_status run_nodes(eng *e, const pinas_mpc_party_args *a)
{
    pinas_status s = PINAS_OK;
    for (int i = 0; i < e->pl.n_nodes && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        const pinas_node *n = pinas_net_node(e->net, i);
        e->owner[i] = i;
        if (pn->kind == PL_NONE && i > 0) {
            e->owner[i] = e->owner[pn->alias];
            continue;
        }
        e->val[i] = malloc(8 * (size_t)(pn->n_out ? pn->n_out : 1));
        if (!e->val[i]) return pinas_error(e->ctx, PINAS_ENOMEM, "node %s: out of memory", n->id);
        pinas_chan_set_layer(e->ch, n->id);
        if (a->delay_layer && a->delay_ms > 0 && strcmp(a->delay_layer, n->id) == 0) {
            struct timespec ts = {a->delay_ms / 1000, (long)(a->delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        double tp = pinas_now();
        s = prep_fetch(e->ctx, e->pp, i); /* from a file: this node's section alone, verified */
        if (s) return pinas_error_prefix(e->ctx, s, "%s: node %s", role_name(e->role), n->id);
        e->rows[i].party[e->role].prep_s = pinas_now() - tp;
        e->rows[i].measured.offline.aes_blocks[0] = e->pp->node_dealer[i].offline.aes_blocks[0];
        e->rows[i].measured.offline.ring_macs[0] = e->pp->node_dealer[i].offline.ring_macs[0];
        node_clock_start(e);
        s = eng_run_node(e, i, a->x, e->val[i]);
        node_clock_stop(e, &e->rows[i]);
        if (s) pinas_error_prefix(e->ctx, s, "%s: node %s", role_name(e->role), n->id);
    }
    return s;
}

/* The output: the server sends its share of the logits, the client opens and decodes them. */
static pinas_status run_output(eng *e, float *logits)
{
    int last = e->pl.n_nodes - 1;
    size_t nout = (size_t)e->pl.nodes[last].n_out;
    pinas_mpc_layer_report *orow = &e->rows[e->pl.n_nodes];
    snprintf(orow->id, sizeof orow->id, "output");
    pinas_chan_set_layer(e->ch, "output");
    node_clock_start(e);
    const uint64_t *Yl = node_val(e, last);
    pinas_status s = PINAS_OK;
    if (e->role == 0) {
        s = eng_send(e, TAG_OUTPUT, Yl, 8 * nout);
    } else {
        uint64_t *o = malloc(8 * nout);
        if (!o) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        if (!s) s = eng_recv(e, TAG_OUTPUT, o, 8 * nout);
        if (!s)
            for (size_t q = 0; q < nout; q++) logits[q] = (float)pinas_ring_decode(o[q] + Yl[q], e->f);
        free(o);
    }
    node_clock_stop(e, orow);
    if (s) pinas_error_prefix(e->ctx, s, "%s", role_name(e->role));
    return s;
}

/* This party's report: the rows of nodes that run a protocol, the output row, the totals. */
static pinas_status make_report(eng *e, const pinas_mpc_counts *session, double t_setup, double t_online,
                                pinas_mpc_report **out)
{
    int nn = e->pl.n_nodes, nl = 0;
    pinas_mpc_report *r = calloc(1, sizeof *r);
    if (r) r->layers = calloc((size_t)nn + 1, sizeof *r->layers);
    if (!r || !r->layers) {
        free(r);
        return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    }
    for (int i = 1; i <= nn; i++) {
        if (i < nn && e->pl.nodes[i].kind == PL_NONE) continue;
        r->layers[nl++] = e->rows[i];
        pinas_mpc_cost_add(&r->totals, &e->rows[i].measured);
    }
    r->n_layers = nl;
    pinas_mpc_counts_add(&r->totals.setup, session);
    r->session = *session;
    r->online_s = t_online;
    r->offline_s = t_setup + e->pp->gen_s;
    r->prep_read_s = pinas_mpc_prep_read_seconds(e->pp);
    r->threads = e->pl.threads;
    r->peak_rss = pinas_mpc_peak_rss();
    *out = r;
    return PINAS_OK;
}

pinas_status pinas_mpc_party_run(pinas_ctx *ctx, pinas_chan *chan, const pinas_mpc_party_args *a,
                                 pinas_mpc_report **report)
{
    if (report) *report = NULL;
    eng E = {0}, *e = &E;
    pinas_status s = eng_init(e, ctx, chan, a);
    if (s) {
        eng_free(e);
        return s;
    }
    pinas_mpc_counts session = {0};
    double t_setup = pinas_now();
    s = run_setup(e, a, &session);
    t_setup = pinas_now() - t_setup;
    double t_online = pinas_now();
    if (!s) s = run_nodes(e, a);
    if (!s) s = run_output(e, a->logits);
    t_online = pinas_now() - t_online;
    if (!s && report) s = make_report(e, &session, t_setup, t_online, report);
    eng_free(e);
    return s;
}
