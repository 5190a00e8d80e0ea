/* The per-node protocol plan shared by the dealer, the parties and the analytic cost model. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <stdlib.h>
#include <string.h>

int pl_pool_window(const pinas_node *n, const pinas_node *in, int c, int oy, int ox, int64_t *idx)
{
    int cnt = 0;
    for (int ky = 0; ky < n->kh; ky++)
        for (int kx = 0; kx < n->kw; kx++) {
            int iy = oy * n->stride - n->pad + ky, ix = ox * n->stride - n->pad + kx;
            if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w) continue;
            idx[cnt++] = ((int64_t)c * in->h + iy) * in->w + ix;
        }
    return cnt;
}

/* A conv2d: per group Y = W · cols(X), with the one following batchnorm folded in (the conv output
 * must then feed nothing else). */
static pinas_status plan_conv(pinas_ctx *ctx, const pinas_net *net, int i, const pinas_node *a, int batch, pl_node *out)
{
    const pinas_node *n = pinas_net_node(net, i);
    out->kind = PL_MATMUL;
    out->is_conv = 1;
    out->groups = n->groups;
    out->M = n->out_channels / n->groups;
    out->K = a->c / n->groups * n->kh * n->kw;
    out->N = (int64_t)batch * n->h * n->w;
    for (int j = i + 1; j < pinas_net_n_nodes(net); j++) {
        const pinas_node *u = pinas_net_node(net, j);
        for (int q = 0; q < u->n_inputs; q++)
            if (u->inputs[q] == i) {
                if (u->op == PINAS_OP_BATCHNORM && out->bn_node < 0) {
                    out->bn_node = j;
                } else if (out->bn_node >= 0 || u->op == PINAS_OP_BATCHNORM) {
                    return pinas_error(ctx, PINAS_EUNSUPPORTED,
                                       "node %s: the conv output feeds its batchnorm and node %s too; the runtime "
                                       "folds batchnorm into the conv and needs the conv output used only there",
                                       n->id, u->id);
                }
            }
    }
    if (out->bn_node >= 0)
        for (int j = i + 1; j < pinas_net_n_nodes(net); j++) {
            const pinas_node *u = pinas_net_node(net, j);
            for (int q = 0; q < u->n_inputs; q++)
                if (u->inputs[q] == i && j != out->bn_node)
                    return pinas_error(ctx, PINAS_EUNSUPPORTED,
                                       "node %s: the conv output feeds its batchnorm and node %s too; the runtime "
                                       "folds batchnorm into the conv and needs the conv output used only there",
                                       n->id, u->id);
        }
    return PINAS_OK;
}

/* An act or pool slot on candidate c. */
static pinas_status plan_slot(pinas_ctx *ctx, const pinas_node *n, const pinas_node *a, const pinas_cand *c, int batch,
                              pl_node *out)
{
    switch (c->kind) {
    case PINAS_CAND_RELU: out->kind = PL_RELU; break;
    case PINAS_CAND_POLY:
        out->kind = PL_POLY;
        out->poly_channels = n->poly_per_channel ? n->c : 1;
        break;
    case PINAS_CAND_PATCH_RELU:
        if (c->ph * c->pw > PINAS_MPC_MAX_PATCH)
            return pinas_error(ctx, PINAS_EUNSUPPORTED, "node %s: patch_relu:%dx%d has more than %d elements per patch", n->id,
                               c->ph, c->pw, PINAS_MPC_MAX_PATCH);
        out->kind = PL_PATCH;
        out->k = c->ph * c->pw;
        out->gates = (int64_t)batch * n->c * ((n->h + c->ph - 1) / c->ph) * ((n->w + c->pw - 1) / c->pw);
        break;
    case PINAS_CAND_IDENTITY: out->kind = PL_NONE; break;
    case PINAS_CAND_MAXPOOL: {
        out->kind = PL_MAXPOOL;
        int64_t idx[64 * 64];
        if (n->kh * n->kw > 64 * 64) return pinas_error(ctx, PINAS_EUNSUPPORTED, "node %s: pool window too large", n->id);
        for (int oy = 0; oy < n->h; oy++)
            for (int ox = 0; ox < n->w; ox++) {
                int cnt = pl_pool_window(n, a, 0, oy, ox, idx), r = 0;
                while (cnt > 1) {
                    if (r >= PL_MAX_ROUNDS) return pinas_error(ctx, PINAS_EUNSUPPORTED, "node %s: pool window too large", n->id);
                    out->pairs[r] += (int64_t)(cnt / 2) * batch * n->c;
                    cnt = (cnt + 1) / 2;
                    r++;
                }
                if (r > out->rounds) out->rounds = r;
            }
        break;
    }
    case PINAS_CAND_AVGPOOL: out->kind = PL_AVGPOOL; break;
    }
    return PINAS_OK;
}

pinas_status pl_node_build(pinas_ctx *ctx, const pinas_net *net, int i, const pinas_cand *choice, int batch,
                           int cmp_bits, int cmp_high, pl_node *out)
{
    memset(out, 0, sizeof *out);
    const pinas_node *n = pinas_net_node(net, i);
    const pinas_node *a = n->n_inputs > 0 ? pinas_net_node(net, n->inputs[0]) : n;
    out->alias = n->n_inputs > 0 ? n->inputs[0] : -1;
    out->bn_node = -1;
    out->cmp_bits = cmp_bits;
    out->cmp_high = cmp_high ? cmp_high : 64;
    out->n_in = (int64_t)batch * a->c * a->h * a->w;
    out->n_out = (int64_t)batch * n->c * n->h * n->w;
    pinas_status s = PINAS_OK;
    switch (n->op) {
    case PINAS_OP_INPUT: out->kind = PL_NONE; break;
    case PINAS_OP_CONV2D: s = plan_conv(ctx, net, i, a, batch, out); break;
    case PINAS_OP_BATCHNORM:
        if (a->op != PINAS_OP_CONV2D)
            return pinas_error(ctx, PINAS_EUNSUPPORTED,
                               "node %s: batchnorm after %s node %s; the runtime folds batchnorm into a preceding conv2d",
                               n->id, pinas_op_name(a->op), a->id);
        out->kind = PL_NONE;
        break;
    case PINAS_OP_LINEAR:
        out->kind = PL_MATMUL;
        out->groups = 1;
        out->M = n->out_features;
        out->K = a->c * a->h * a->w;
        out->N = batch;
        break;
    case PINAS_OP_ACT:
    case PINAS_OP_POOL: {
        const pinas_cand *c = choice ? choice : pinas_node_chosen(n);
        if (!c) return pinas_error(ctx, PINAS_EINVAL, "node %s: slot is not decided", n->id);
        s = plan_slot(ctx, n, a, c, batch, out);
        break;
    }
    case PINAS_OP_ADD: out->kind = PL_ADD; break;
    case PINAS_OP_FLATTEN: out->kind = PL_NONE; break;
    case PINAS_OP_GLOBAL_AVGPOOL: out->kind = PL_GAP; break;
    default: return pinas_error(ctx, PINAS_EUNSUPPORTED, "node %s: op %s has no 2PC protocol", n->id, pinas_op_name(n->op));
    }
    if (s) return s;
    if (out->kind != PL_NONE) out->alias = -1;
    return PINAS_OK;
}

pinas_status pl_build(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, const int *bits, int as_node,
                      int cand, pl_plan *out)
{
    return pl_build_win(ctx, net, p, bits, NULL, as_node, cand, out);
}

pinas_status pl_build_win(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, const int *bits,
                          const int *highs, int as_node, int cand, pl_plan *out)
{
    memset(out, 0, sizeof *out);
    /* the widths reach shifts by 64 - cmp_bits and 2 x frac_bits (dcf.c, ring.c): out of range is UB */
    pinas_mpc_params chk = *p;
    chk.timeout_ms = 1;
    pinas_status cs = pinas_mpc_params_check(ctx, &chk);
    int nn = pinas_net_n_nodes(net);
    for (int i = 0; !cs && (bits || highs) && i < nn; i++)
        if (pinas_mpc_cmp_window_check(ctx, "cmp_bits", bits ? bits[i] : p->cmp_bits, highs ? highs[i] : p->cmp_high))
            cs = pinas_error_prefix(ctx, PINAS_EINVAL, "node %s", pinas_net_node(net, i)->id);
    if (cs) return cs;
    out->nodes = calloc(nn > 0 ? (size_t)nn : 1, sizeof *out->nodes);
    if (!out->nodes) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    out->n_nodes = nn;
    out->batch = p->batch;
    out->frac_bits = p->frac_bits;
    out->threads = p->threads > 1 ? p->threads : 1;
    for (int i = 0; i < nn; i++) {
        const pinas_node *n = pinas_net_node(net, i);
        const pinas_cand *ch = NULL;
        if (i == as_node && cand >= 0) {
            if (!pinas_node_is_slot(n) || cand >= n->n_cands) {
                pl_free(out);
                return pinas_error(ctx, PINAS_EINVAL, "node %s: no candidate %d", n->id, cand);
            }
            ch = &n->cands[cand];
        }
        pinas_status s = pl_node_build(ctx, net, i, ch, p->batch, bits ? bits[i] : p->cmp_bits,
                                       highs ? highs[i] : p->cmp_high, &out->nodes[i]);
        out->nodes[i].threads = out->threads;
        if (s) {
            pl_free(out);
            return s;
        }
    }
    if (as_node < 0) { /* a whole net to execute: its own frac_bits bound */
        int64_t n = pl_trunc_elems(out) / (p->batch > 0 ? p->batch : 1);
        int bound = pl_frac_bound(n);
        if (p->frac_bits > bound) {
            pl_free(out);
            return pinas_error(ctx, PINAS_EINVAL,
                               "frac_bits %d is above what the ring supports for net %s: %lld truncated elements per image allow "
                               "at most %d (2f + %d + log2 N + %d <= 64; see common/pinas_config.h)",
                               p->frac_bits, pinas_net_name(net), (long long)n, bound, PINAS_RING_ACT_BITS, PINAS_RING_MARGIN_BITS);
        }
    }
    return PINAS_OK;
}

int64_t pl_trunc_elems(const pl_plan *pl)
{
    int64_t n = 0;
    for (int i = 0; i < pl->n_nodes; i++) {
        pl_kind k = pl->nodes[i].kind;
        if (k == PL_MATMUL || k == PL_POLY || k == PL_AVGPOOL || k == PL_GAP) n += pl->nodes[i].n_out;
    }
    return n;
}

int pl_frac_bound(int64_t n_trunc)
{
    int lg = 0;
    while (lg < 62 && ((int64_t)1 << lg) < n_trunc) lg++;
    int b = (64 - PINAS_RING_ACT_BITS - PINAS_RING_MARGIN_BITS - lg) / 2;
    return b < PINAS_FRAC_BITS_MAX ? b : PINAS_FRAC_BITS_MAX;
}

int pinas_mpc_frac_bits_bound(pinas_ctx *ctx, const pinas_net *net)
{
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 1;
    pl_plan pl;
    if (pl_build(ctx, net, &p, NULL, 0, -1, &pl)) return -1;
    int b = pl_frac_bound(pl_trunc_elems(&pl));
    pl_free(&pl);
    return b;
}

void pl_free(pl_plan *pl)
{
    if (!pl) return;
    free(pl->nodes);
    pl->nodes = NULL;
}

uint64_t pl_prep_bytes(const pl_node *pn, int party)
{
    uint64_t n = (uint64_t)pn->n_out;
    switch (pn->kind) {
    case PL_MATMUL: {
        uint64_t mn = (uint64_t)pn->groups * pn->M * (uint64_t)pn->N;
        return 8 * (party == 0 ? mn : (uint64_t)pn->n_in + mn);
    }
    case PL_RELU: return n * (24 + pinas_drelu_key_size(pn->cmp_bits));
    case PL_POLY: return 16 * n;
    case PL_PATCH: return 16 * (uint64_t)pn->n_in + (uint64_t)pn->gates * (8 + pinas_drelu_key_size(pn->cmp_bits));
    case PL_MAXPOOL: {
        uint64_t b = 0;
        for (int r = 0; r < pn->rounds; r++) b += (uint64_t)pn->pairs[r] * (24 + pinas_drelu_key_size(pn->cmp_bits));
        return b;
    }
    default: return 0;
    }
}

static uint64_t half_up(uint64_t n) { return (n + 1) / 2; } /* PRG blocks for n ring elements */

/* Online counts of `gates` select gates over `elems` elements (ReLU: gates = elems): open x̂ (8 B per
 * element), then the packed bits of b̂ (1 bit per gate); 2 rounds. The dealer: pinas_drelu_gen for the
 * gates, with its chunk seeds, and the shares of t (per gate) and t·r (per element). */
static void select_cost(const pl_node *pn, uint64_t gates, uint64_t elems, pinas_mpc_cost *o)
{
    uint64_t b = 8 * elems + (gates + 7) / 8;
    o->online.bytes[0] += b;
    o->online.bytes[1] += b;
    o->online.rounds += 2;
    o->online.aes_blocks[0] += gates * pinas_drelu_eval_aes_blocks(pn->cmp_bits);
    o->online.ring_macs[0] += elems;
    o->offline.aes_blocks[0] += pinas_drelu_gen_prg_blocks(gates) + pinas_drelu_gen_aes_blocks(pn->cmp_bits, gates) +
                                half_up(gates) + half_up(elems);
}

void pl_cost(const pl_node *pn, int frac_bits, pinas_mpc_cost *o)
{
    (void)frac_bits;
    memset(o, 0, sizeof *o);
    uint64_t n = (uint64_t)pn->n_out;
    pinas_mpc_counts *on = &o->online, *off = &o->offline;
    off->bytes[0] = pl_prep_bytes(pn, 0);
    off->bytes[1] = pl_prep_bytes(pn, 1);
    switch (pn->kind) {
    case PL_MATMUL: {
        uint64_t g = (uint64_t)pn->groups, mk = g * pn->M * pn->K, mn = g * pn->M * (uint64_t)pn->N;
        uint64_t macs = mk * (uint64_t)pn->N;
        on->bytes[1] = 8 * (uint64_t)pn->n_in;
        on->rounds = 1;
        on->ring_macs[0] = macs;
        off->aes_blocks[0] = half_up(mk) + half_up((uint64_t)pn->n_in) + half_up(mn);
        off->ring_macs[0] = macs;
        off->ring_macs[1] = macs;
        o->setup.bytes[0] = 8 * mk;           /* W - A (0 when the client has it cached) */
        o->setup.aes_blocks[0] = half_up(mk); /* the server expands A from the mask seed */
        break;
    }
    case PL_RELU: /* the masks r and their shares, then the select gates */
        off->aes_blocks[0] = 2 * half_up(n);
        select_cost(pn, n, n, o);
        on->aes_blocks[1] = on->aes_blocks[0];
        on->ring_macs[1] = on->ring_macs[0];
        break;
    case PL_POLY:
        on->bytes[0] = on->bytes[1] = 8 * n;
        on->rounds = 1;
        on->ring_macs[0] = 4 * n;
        on->ring_macs[1] = 3 * n;
        off->aes_blocks[0] = 3 * half_up(n);
        off->ring_macs[0] = n;
        o->setup.bytes[0] = 8 * 3 * (uint64_t)pn->poly_channels;
        break;
    case PL_PATCH:
        off->aes_blocks[0] = 2 * half_up((uint64_t)pn->n_in);
        select_cost(pn, (uint64_t)pn->gates, (uint64_t)pn->n_in, o);
        on->aes_blocks[1] = on->aes_blocks[0];
        on->ring_macs[1] = on->ring_macs[0];
        break;
    case PL_MAXPOOL:
        for (int r = 0; r < pn->rounds; r++) {
            uint64_t pr = (uint64_t)pn->pairs[r];
            off->aes_blocks[0] += 2 * half_up(pr);
            select_cost(pn, pr, pr, o);
        }
        on->aes_blocks[1] = on->aes_blocks[0];
        on->ring_macs[1] = on->ring_macs[0];
        break;
    case PL_AVGPOOL:
    case PL_GAP: on->ring_macs[0] = on->ring_macs[1] = n; break;
    default: break;
    }
}

/* ------------------------------------------------------------------ public cost API */

pinas_status pinas_mpc_cost_node(pinas_ctx *ctx, const pinas_net *net, int node, int cand, const pinas_mpc_params *p,
                                 pinas_mpc_cost *out)
{
    memset(out, 0, sizeof *out);
    if (node < 0 || node >= pinas_net_n_nodes(net))
        return pinas_error(ctx, PINAS_EINVAL, "node index %d out of range [0, %d)", node, pinas_net_n_nodes(net));
    pinas_status s = pinas_mpc_params_check(ctx, p);
    if (s) return s;
    const pinas_node *n = pinas_net_node(net, node);
    const pinas_cand *ch = NULL;
    if (cand >= 0) {
        if (!pinas_node_is_slot(n) || cand >= n->n_cands)
            return pinas_error(ctx, PINAS_EINVAL, "node %s: no candidate %d", n->id, cand);
        ch = &n->cands[cand];
    } else if (pinas_node_is_slot(n) && !pinas_node_chosen(n)) {
        return pinas_error(ctx, PINAS_EINVAL, "node %s: slot is open; pass a candidate index", n->id);
    }
    pl_node pn;
    s = pl_node_build(ctx, net, node, ch, p->batch, p->cmp_bits, p->cmp_high, &pn);
    if (s) return s;
    pl_cost(&pn, p->frac_bits, out);
    return PINAS_OK;
}

/* Session-level messages (see party.c): handshake (64 bytes each way, 1 round) and the setup
 * message (1 round), counted in setup; the logits share the server sends (1 round), online. */
pinas_status pinas_mpc_cost_net(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, pinas_mpc_cost *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 1; i < pinas_net_n_nodes(net); i++) {
        pinas_mpc_cost c;
        pinas_status s = pinas_mpc_cost_node(ctx, net, i, -1, p, &c);
        if (s) return s;
        pinas_mpc_cost_add(out, &c);
    }
    out->setup.bytes[0] += HANDSHAKE_BYTES;
    out->setup.bytes[1] += HANDSHAKE_BYTES;
    out->setup.rounds += 2;
    const pinas_node *last = pinas_net_node(net, pinas_net_n_nodes(net) - 1);
    out->online.bytes[0] += 8 * (uint64_t)p->batch * (uint64_t)last->c * last->h * last->w;
    out->online.rounds += 1;
    return PINAS_OK;
}
