/* One party's online phase: counted communication and the protocol of each planned node kind. */
#define _GNU_SOURCE
#include "party_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ counted communication */

/* Times one channel call into e->comm_s / e->comm_cpu_s (wall, and this thread's CPU). */
typedef struct {
    double wall, cpu;
} comm_clock;
static comm_clock comm_start(void) { return (comm_clock){pinas_now(), pinas_thread_cpu()}; }
static void comm_stop(eng *e, comm_clock c)
{
    e->comm_s += pinas_now() - c.wall;
    e->comm_cpu_s += pinas_thread_cpu() - c.cpu;
}

pinas_status eng_send(eng *e, uint32_t tag, const void *buf, size_t len)
{
    comm_clock c = comm_start();
    pinas_status s = pinas_chan_send(e->ctx, e->ch, tag, buf, len);
    comm_stop(e, c);
    e->cur.rounds++;
    e->cur.bytes[e->role] += len;
    return s;
}

pinas_status eng_recv(eng *e, uint32_t tag, void *buf, size_t len)
{
    comm_clock c = comm_start();
    pinas_status s = pinas_chan_recv(e->ctx, e->ch, tag, buf, len);
    comm_stop(e, c);
    e->cur.rounds++;
    e->cur.bytes[1 - e->role] += len;
    return s;
}

pinas_status eng_exchange(eng *e, uint32_t tag, const void *sbuf, void *rbuf, size_t len)
{
    comm_clock c = comm_start();
    pinas_status s = pinas_chan_exchange(e->ctx, e->ch, tag, sbuf, len, rbuf, len);
    comm_stop(e, c);
    e->cur.rounds++;
    e->cur.bytes[0] += len;
    e->cur.bytes[1] += len;
    return s;
}

/* Opens x + r: both send their share of x + r and add the peer's. xh gets the public value. */
static pinas_status open_masked(eng *e, uint32_t tag, const uint64_t *x, const uint64_t *r, size_t n, uint64_t *xh)
{
    uint64_t *mine = calloc(n ? n : 1, 8);
    if (!mine) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) mine[i] = x[i] + r[i];
    pinas_status s = eng_exchange(e, tag, mine, xh, 8 * n);
    if (!s)
        for (size_t i = 0; i < n; i++) xh[i] += mine[i];
    free(mine);
    return s;
}

/* Round 2 of the select gates: each party sends its bits of b̂ = DReLU xor t packed 8 to a byte
 * (bit q of byte q/8) and xors in the peer's, leaving b̂ in e8 (one byte per gate). */
static pinas_status open_bits(eng *e, uint32_t tag, uint8_t *e8, size_t n)
{
    size_t nb = (n + 7) / 8;
    uint8_t *mine = calloc(nb ? nb : 1, 1), *theirs = malloc(nb ? nb : 1);
    pinas_status s = mine && theirs ? PINAS_OK : pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        for (size_t q = 0; q < n; q++) mine[q >> 3] |= (uint8_t)((e8[q] & 1) << (q & 7));
        s = eng_exchange(e, tag, mine, theirs, nb);
    }
    if (!s)
        for (size_t q = 0; q < n; q++) e8[q] = (uint8_t)((e8[q] ^ (theirs[q >> 3] >> (q & 7))) & 1);
    free(mine), free(theirs);
    return s;
}

/* The DReLU keys of `gates` gates at the public p̂, then round 2: b̂ into bh (one byte per gate). */
static pinas_status select_bits(eng *e, uint32_t tag, const pl_node *pn, const uint8_t *keys, size_t gates,
                                const uint64_t *ph, uint8_t *bh)
{
    e->cur.aes_blocks[e->role] += pinas_drelu_eval(e->role, pn->cmp_bits, pn->cmp_high, keys, gates, ph, bh, e->pl.threads);
    return open_bits(e, tag, bh, gates);
}

/* y = ReLU(x) for n elements with material r | t | t·r | keys (two rounds: x̂, then b̂). */
static pinas_status relu_batch(eng *e, uint32_t tag, const pl_node *pn, const uint64_t *x, size_t n, const uint8_t *mat,
                               uint64_t *y)
{
    const uint64_t *r = (const uint64_t *)(const void *)mat, *t = r + n, *tr = r + 2 * n;
    uint64_t *xh = malloc(8 * (n ? n : 1));
    uint8_t *bh = malloc(n ? n : 1);
    pinas_status s = xh && bh ? PINAS_OK : pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = open_masked(e, tag, x, r, n, xh);
    if (!s) s = select_bits(e, tag, pn, mat + 24 * n, n, xh, bh);
    if (!s) {
        for (size_t q = 0; q < n; q++) y[q] = pinas_select_share(e->role, bh[q], xh[q], r[q], t[q], tr[q]);
        e->cur.ring_macs[e->role] += n;
    }
    free(xh), free(bh);
    return s;
}

/* ------------------------------------------------------------------ node protocols */

static pinas_status run_matmul(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const uint8_t *mat = prep_node(e->pp, i);
    const uint64_t *X = node_val(e, pinas_net_node(e->net, i)->inputs[0]);
    size_t mn = (size_t)pn->groups * pn->M * pn->N, ni = (size_t)pn->n_in;
    uint64_t *T = malloc(8 * (mn ? mn : 1));
    if (!T) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    if (e->role == 1) {
        /* F = X1 - B; the product's share was precomputed in setup */
        const uint64_t *B = (const uint64_t *)(const void *)mat;
        uint64_t *F = malloc(8 * (ni ? ni : 1));
        if (!F) {
            free(T);
            return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        }
        for (size_t q = 0; q < ni; q++) F[q] = X[q] - B[q];
        s = eng_send(e, (uint32_t)i, F, 8 * ni);
        free(F);
        if (!s) memcpy(T, e->Y1[i], 8 * mn);
    } else {
        const uint64_t *C0 = (const uint64_t *)(const void *)mat;
        uint64_t *Z = malloc(8 * (ni ? ni : 1)), *cols = malloc(8 * (size_t)pn->K * (size_t)pn->N);
        if (!Z || !cols) {
            free(Z), free(cols), free(T);
            return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        }
        /* this node's weights only (one scratch for all nodes), encoded while F is on its way */
        uint64_t *W = eng_weights_at(e, i);
        s = W ? eng_node_weights(e, i, W, NULL) : pinas_error(e->ctx, PINAS_EINTERNAL, "no room for the weights");
        if (!s) s = eng_recv(e, (uint32_t)i, Z, 8 * ni);
        if (!s) {
            /* Z = X0 + F = X - B */
            for (size_t q = 0; q < ni; q++) Z[q] += X[q];
            memcpy(T, C0, 8 * mn);
            for (int g = 0; g < pn->groups; g++) {
                mm_cols(e->net, i, pn, Z, g, cols);
                pinas_ring_gemm_small_a_mt(e->pl.threads, pn->M, (int)pn->N, pn->K, W + (size_t)g * pn->M * pn->K,
                                           pn->K, e->wbits[i], cols, (int)pn->N, T + (size_t)g * pn->M * pn->N, (int)pn->N, 1);
            }
            e->cur.ring_macs[0] += (uint64_t)pn->groups * pn->M * pn->K * (uint64_t)pn->N;
            if (e->bias[i])
                for (int g = 0; g < pn->groups; g++)
                    for (int m = 0; m < pn->M; m++) {
                        uint64_t bv = e->bias[i][g * pn->M + m], *t = T + ((size_t)g * pn->M + m) * pn->N;
                        for (int64_t q = 0; q < pn->N; q++) t[q] += bv;
                    }
        }
        free(Z);
        free(cols);
    }
    if (!s) {
        mm_scatter(e->net, i, pn, T, Y);
        pinas_ring_trunc_share_mt(Y, (size_t)pn->n_out, e->f, e->role, e->pl.threads);
    }
    OPENSSL_cleanse(T, 8 * (mn ? mn : 1)); /* this party's share of the product */
    free(T);
    return s;
}

/* Below this many elements a poly node runs on one thread. */
#define POLY_PAR_MIN (1 << 16)

/* One channel's block of h x w elements of a poly node (see run_poly). */
typedef struct {
    int role, f;
    size_t hw, C;
    int per_channel;
    const uint64_t *pa, *pw1, *pb, *X, *xh, *r, *r2;
    uint64_t *Y;
} poly_args;

static void poly_block(const poly_args *a, size_t blk)
{
    size_t c = a->per_channel ? blk % a->C : 0, q0 = blk * a->hw, q1 = q0 + a->hw;
    uint64_t ca = a->pa[c], w1 = a->pw1[c], b = a->role == 0 ? a->pb[c] : 0;
    for (size_t q = q0; q < q1; q++) {
        uint64_t x2 = ring_trunc_share1((a->role == 0 ? a->xh[q] * a->xh[q] : 0) - 2 * a->xh[q] * a->r[q] + a->r2[q], a->f, a->role);
        a->Y[q] = ring_trunc_share1(ca * x2 + w1 * a->X[q] + b, a->f, a->role);
    }
}

static pinas_status run_poly(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const pinas_node *n = pinas_net_node(e->net, i);
    const uint64_t *X = node_val(e, n->inputs[0]);
    size_t N = (size_t)pn->n_out, hw = (size_t)n->h * n->w;
    const uint64_t *r = (const uint64_t *)(const void *)prep_node(e->pp, i), *r2 = r + N;
    uint64_t *xh = malloc(8 * (N ? N : 1));
    if (!xh) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = open_masked(e, (uint32_t)i, X, r, N, xh);
    if (!s) {
        /* One pass per element: x^2 = (x̂ - r)^2 = x̂^2 - 2 x̂ r + r^2 (party 0 adds the public x̂^2),
         * truncated; then a x^2 + w1 x + b (party 0 adds b), truncated. Elements come in blocks of one
         * channel's h x w (NCHW), so a block takes one channel's coefficients. */
        int nt = N >= POLY_PAR_MIN ? e->pl.threads : 1;
        size_t blocks = hw ? N / hw : 0;
        poly_args pa = {e->role, e->f, hw, (size_t)n->c, pn->poly_channels > 1, e->pa[i], e->pw1[i], e->pb[i], X, xh, r, r2, Y};
        if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (size_t blk = 0; blk < blocks; blk++) poly_block(&pa, blk);
        } else {
            for (size_t blk = 0; blk < blocks; blk++) poly_block(&pa, blk);
        }
        e->cur.ring_macs[e->role] += (e->role == 0 ? 4 : 3) * (uint64_t)N;
    }
    free(xh);
    return s;
}

/* One select gate per patch on the patch sum: y_e = DReLU(sum) x_e (two rounds). Material
 * r | t·r (per element) | t | keys (per patch). */
static pinas_status run_patch(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const pinas_node *n = pinas_net_node(e->net, i);
    const uint64_t *X = node_val(e, n->inputs[0]);
    size_t N = (size_t)pn->n_in, gates = (size_t)pn->gates, k = (size_t)pn->k;
    const uint8_t *mat = prep_node(e->pp, i);
    const uint64_t *r = (const uint64_t *)(const void *)mat, *tr = r + N, *t = r + 2 * N;
    uint64_t *xh = malloc(8 * (N ? N : 1)), *ph = malloc(8 * (gates ? gates : 1));
    uint8_t *bh = malloc(gates ? gates : 1);
    int64_t *idx = malloc(sizeof(int64_t) * (gates * k > 0 ? gates * k : 1));
    pinas_status s = PINAS_OK;
    if (!xh || !ph || !bh || !idx) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = open_masked(e, (uint32_t)i, X, r, N, xh);
    if (!s) {
        /* the patch sum of x̂ is the patch sum of x masked by the sum of the element masks */
        patch_index(e->net, i, pn, e->batch, idx);
        for (size_t g = 0; g < gates; g++) {
            uint64_t sum = 0;
            for (size_t j = 0; j < k; j++)
                if (idx[g * k + j] >= 0) sum += xh[idx[g * k + j]];
            /* The IR keeps a patch when its sum is > 0 (as the trainer and the plaintext executor do);
             * over the integers that is sum - 1 >= 0, and subtracting the public 1 is local. */
            ph[g] = sum - 1;
        }
        s = select_bits(e, (uint32_t)i, pn, mat + 16 * N + 8 * gates, gates, ph, bh);
    }
    if (!s) {
        for (size_t g = 0; g < gates; g++)
            for (size_t j = 0; j < k; j++) {
                int64_t el = idx[g * k + j];
                if (el >= 0) Y[el] = pinas_select_share(e->role, bh[g], xh[el], r[el], t[g], tr[el]);
            }
        e->cur.ring_macs[e->role] += N;
    }
    free(xh), free(ph), free(bh), free(idx);
    return s;
}

/* max(a, b) = b + ReLU(a - b), pairwise per window, one ReLU batch (two rounds) per tree level. */
static pinas_status run_maxpool(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const pinas_node *n = pinas_net_node(e->net, i), *a = pinas_net_node(e->net, n->inputs[0]);
    const uint64_t *X = node_val(e, n->inputs[0]);
    int win = n->kh * n->kw;
    size_t nw = (size_t)pn->n_out, in_sz = (size_t)a->c * a->h * a->w, out_hw = (size_t)n->h * n->w;
    uint64_t *cur = malloc(8 * nw * (size_t)win), *d = malloc(8 * nw * (size_t)win), *y = malloc(8 * nw * (size_t)win);
    int *cnt = malloc(sizeof(int) * nw);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)win);
    pinas_status s = PINAS_OK;
    if (!cur || !d || !y || !cnt || !idx) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    for (size_t w = 0; w < nw && !s; w++) {
        size_t b = w / ((size_t)n->c * out_hw), c = (w / out_hw) % (size_t)n->c, p = w % out_hw;
        cnt[w] = pl_pool_window(n, a, (int)c, (int)(p / (size_t)n->w), (int)(p % (size_t)n->w), idx);
        for (int j = 0; j < cnt[w]; j++) cur[w * win + j] = X[b * in_sz + (size_t)idx[j]];
    }
    size_t off = 0, ks = pinas_drelu_key_size(pn->cmp_bits);
    const uint8_t *mat = prep_node(e->pp, i);
    for (int r = 0; r < pn->rounds && !s; r++) {
        size_t P = 0;
        for (size_t w = 0; w < nw; w++)
            for (int j = 0; j + 1 < cnt[w]; j += 2) d[P++] = cur[w * win + j] - cur[w * win + j + 1];
        if (P != (size_t)pn->pairs[r]) {
            s = pinas_error(e->ctx, PINAS_EINTERNAL, "node %s: round %d has %zu pairs, plan says %lld", n->id, r, P,
                            (long long)pn->pairs[r]);
            break;
        }
        s = relu_batch(e, (uint32_t)i, pn, d, P, mat + off, y);
        off += P * (24 + ks);
        P = 0;
        for (size_t w = 0; w < nw && !s; w++) {
            int nc = 0;
            for (int j = 0; j < cnt[w]; j += 2) {
                if (j + 1 < cnt[w])
                    cur[w * win + nc] = cur[w * win + j + 1] + y[P++];
                else
                    cur[w * win + nc] = cur[w * win + j];
                nc++;
            }
            cnt[w] = nc;
        }
    }
    if (!s)
        for (size_t w = 0; w < nw; w++) Y[w] = cur[w * win];
    size_t wb = 8 * nw * (size_t)win; /* shares of the window values, differences and ReLUs */
    if (cur) OPENSSL_cleanse(cur, wb);
    if (d) OPENSSL_cleanse(d, wb);
    if (y) OPENSSL_cleanse(y, wb);
    free(cur), free(d), free(y), free(cnt), free(idx);
    return s;
}

/* Truncates a local product of node i's input by f bits. Shares of a node the protocol produced are
 * random, and the local truncation (each party shifts its own share) is off by one ulp at most, but
 * the input node is held by the client alone (the server's share is 0), where the client's shift
 * would be off by 2^(64-f): the client shifts exactly instead. */
static void trunc_local_product(eng *e, int i, uint64_t *Y, size_t n)
{
    if (e->owner[pinas_net_node(e->net, i)->inputs[0]] != 0) {
        pinas_ring_trunc_share_mt(Y, n, e->f, e->role, e->pl.threads);
        return;
    }
    for (size_t w = 0; w < n; w++) Y[w] = e->role == 1 ? (uint64_t)((int64_t)Y[w] >> e->f) : 0;
}

/* The window's indices live on the heap, sized to the window: a fixed 64 x 64 stack array overflowed
 * for larger windows (up to PINAS_NET_MAX_WINDOW squared), and its 32 KB frame reached stack pages
 * that nothing else touches, so this node alone paid their first-touch faults (~10 us each on a VM)
 * in every fresh party thread. */
static pinas_status run_avgpool(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const pinas_node *n = pinas_net_node(e->net, i), *a = pinas_net_node(e->net, n->inputs[0]);
    const uint64_t *X = node_val(e, n->inputs[0]);
    size_t nw = (size_t)pn->n_out, in_sz = (size_t)a->c * a->h * a->w, out_hw = (size_t)n->h * n->w;
    uint64_t inv = pinas_ring_encode(1.0 / (n->kh * n->kw), e->f);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)n->kh * (size_t)n->kw);
    if (!idx) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    for (size_t w = 0; w < nw; w++) {
        size_t b = w / ((size_t)n->c * out_hw), c = (w / out_hw) % (size_t)n->c, p = w % out_hw;
        int cnt = pl_pool_window(n, a, (int)c, (int)(p / (size_t)n->w), (int)(p % (size_t)n->w), idx);
        uint64_t sum = 0;
        for (int j = 0; j < cnt; j++) sum += X[b * in_sz + (size_t)idx[j]]; /* padding counts as zero */
        Y[w] = sum * inv;
    }
    free(idx);
    trunc_local_product(e, i, Y, nw);
    e->cur.ring_macs[e->role] += nw;
    return PINAS_OK;
}

static void run_gap(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const pinas_node *n = pinas_net_node(e->net, i), *a = pinas_net_node(e->net, n->inputs[0]);
    const uint64_t *X = node_val(e, n->inputs[0]);
    size_t hw = (size_t)a->h * a->w, nw = (size_t)pn->n_out;
    uint64_t inv = pinas_ring_encode(1.0 / (double)hw, e->f);
    for (size_t w = 0; w < nw; w++) {
        uint64_t sum = 0;
        for (size_t q = 0; q < hw; q++) sum += X[w * hw + q];
        Y[w] = sum * inv;
    }
    trunc_local_product(e, i, Y, nw);
    e->cur.ring_macs[e->role] += nw;
}


pinas_status eng_run_node(eng *e, int i, const float *x, uint64_t *Y)
{
    const pl_node *pn = &e->pl.nodes[i];
    const pinas_node *n = pinas_net_node(e->net, i);
    switch (pn->kind) {
    case PL_NONE: { /* the input: the client holds it, the server's share is zero */
        int products = 0;
        for (int k = 0; k < e->pl.n_nodes; k++) {
            pl_kind kd = e->pl.nodes[k].kind;
            products |= kd == PL_MATMUL || kd == PL_POLY || kd == PL_AVGPOOL || kd == PL_GAP;
        }
        pinas_status s = e->role == 1 ? pinas_mpc_input_check(e->ctx, x, pn->n_out, n->c, n->h, n->w, e->f, products)
                                      : PINAS_OK;
        for (int64_t q = 0; !s && q < pn->n_out; q++) Y[q] = e->role == 1 ? pinas_ring_encode(x[q], e->f) : 0;
        return s;
    }
    case PL_MATMUL: return run_matmul(e, i, pn, Y);
    case PL_RELU:
        return relu_batch(e, (uint32_t)i, pn, node_val(e, n->inputs[0]), (size_t)pn->n_out, prep_node(e->pp, i), Y);
    case PL_POLY: return run_poly(e, i, pn, Y);
    case PL_PATCH: return run_patch(e, i, pn, Y);
    case PL_MAXPOOL: return run_maxpool(e, i, pn, Y);
    case PL_AVGPOOL: return run_avgpool(e, i, pn, Y);
    case PL_GAP: run_gap(e, i, pn, Y); return PINAS_OK;
    case PL_ADD: {
        const uint64_t *x1 = node_val(e, n->inputs[0]), *x2 = node_val(e, n->inputs[1]);
        for (int64_t q = 0; q < pn->n_out; q++) Y[q] = x1[q] + x2[q];
        return PINAS_OK;
    }
    }
    return pinas_error(e->ctx, PINAS_EINTERNAL, "node %s: unknown plan kind %d", n->id, (int)pn->kind);
}
