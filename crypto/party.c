/* One party of a private inference: handshake, setup (masked weights), the online protocols node by node. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    pinas_mpc_layer_report *rows;
} eng;

static uint64_t *node_val(eng *e, int i) { return e->val[e->owner[i]]; }

/* ------------------------------------------------------------------ counted communication */

static pinas_status c_send(eng *e, uint32_t tag, const void *buf, size_t len)
{
    pinas_status s = pinas_chan_send(e->ctx, e->ch, tag, buf, len);
    e->cur.rounds++;
    e->cur.bytes[e->role] += len;
    return s;
}

static pinas_status c_recv(eng *e, uint32_t tag, void *buf, size_t len)
{
    pinas_status s = pinas_chan_recv(e->ctx, e->ch, tag, buf, len);
    e->cur.rounds++;
    e->cur.bytes[1 - e->role] += len;
    return s;
}

static pinas_status c_exchange(eng *e, uint32_t tag, const void *sbuf, void *rbuf, size_t len)
{
    pinas_status s = pinas_chan_exchange(e->ctx, e->ch, tag, sbuf, len, rbuf, len);
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
    pinas_status s = c_exchange(e, tag, mine, xh, 8 * n);
    if (!s)
        for (size_t i = 0; i < n; i++) xh[i] += mine[i];
    free(mine);
    return s;
}

/* y = ReLU(x) for n elements with material [r share | keys]. */
static pinas_status relu_batch(eng *e, uint32_t tag, int cmp_bits, const uint64_t *x, size_t n, const uint8_t *mat,
                               uint64_t *y)
{
    const uint64_t *r = (const uint64_t *)(const void *)mat;
    const uint8_t *keys = mat + 8 * n;
    uint64_t *xh = malloc(8 * (n ? n : 1)), *o = malloc(16 * (n ? n : 1));
    if (!xh || !o) {
        free(xh);
        free(o);
        return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    }
    pinas_status s = open_masked(e, tag, x, r, n, xh);
    if (!s) {
        e->cur.aes_blocks[e->role] += pinas_sign_eval(e->role, cmp_bits, 1, keys, n, xh, r, o);
        /* x = x̂ - r, so d·x = d·x̂ - d·r */
        for (size_t i = 0; i < n; i++) y[i] = o[2 * i] * xh[i] - o[2 * i + 1];
        e->cur.ring_macs[e->role] += n;
    }
    free(xh);
    free(o);
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
        s = c_send(e, (uint32_t)i, F, 8 * ni);
        free(F);
        if (!s) memcpy(T, e->Y1[i], 8 * mn);
    } else {
        const uint64_t *C0 = (const uint64_t *)(const void *)mat;
        uint64_t *Z = malloc(8 * (ni ? ni : 1)), *cols = malloc(8 * (size_t)pn->K * (size_t)pn->N);
        if (!Z || !cols) {
            free(Z), free(cols), free(T);
            return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        }
        s = c_recv(e, (uint32_t)i, Z, 8 * ni);
        if (!s) {
            /* Z = X0 + F = X - B */
            for (size_t q = 0; q < ni; q++) Z[q] += X[q];
            memcpy(T, C0, 8 * mn);
            for (int g = 0; g < pn->groups; g++) {
                mm_cols(e->net, i, pn, Z, g, cols);
                pinas_ring_gemm_small_a(pn->M, (int)pn->N, pn->K, e->W[i] + (size_t)g * pn->M * pn->K, pn->K, e->wbits[i],
                                        cols, (int)pn->N, T + (size_t)g * pn->M * pn->N, (int)pn->N, 1);
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
        pinas_ring_trunc_share(Y, (size_t)pn->n_out, e->f, e->role);
    }
    free(T);
    return s;
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
        /* x^2 = (x̂ - r)^2 = x̂^2 - 2 x̂ r + r^2; party 0 adds the public x̂^2 */
        for (size_t q = 0; q < N; q++) {
            uint64_t x2 = (e->role == 0 ? xh[q] * xh[q] : 0) - 2 * xh[q] * r[q] + r2[q];
            Y[q] = x2;
        }
        pinas_ring_trunc_share(Y, N, e->f, e->role);
        for (size_t q = 0; q < N; q++) {
            size_t c = pn->poly_channels > 1 ? (q / hw) % (size_t)n->c : 0;
            Y[q] = e->pa[i][c] * Y[q] + e->pw1[i][c] * X[q] + (e->role == 0 ? e->pb[i][c] : 0);
        }
        pinas_ring_trunc_share(Y, N, e->f, e->role);
        e->cur.ring_macs[e->role] += (e->role == 0 ? 4 : 3) * (uint64_t)N;
    }
    free(xh);
    return s;
}

static pinas_status run_patch(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const pinas_node *n = pinas_net_node(e->net, i);
    const uint64_t *X = node_val(e, n->inputs[0]);
    size_t N = (size_t)pn->n_in, gates = (size_t)pn->gates, k = (size_t)pn->k;
    const uint8_t *mat = prep_node(e->pp, i);
    const uint64_t *r = (const uint64_t *)(const void *)mat;
    uint64_t *xh = malloc(8 * N), *ph = malloc(8 * gates), *rs = calloc(gates * k, 8), *o = malloc(8 * gates * (k + 1));
    int64_t *idx = malloc(sizeof(int64_t) * gates * k);
    pinas_status s = PINAS_OK;
    if (!xh || !ph || !rs || !o || !idx) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = open_masked(e, (uint32_t)i, X, r, N, xh);
    if (!s) {
        /* the patch sum of x̂ is the patch sum of x masked by the sum of the element masks */
        patch_index(e->net, i, pn, e->batch, idx);
        for (size_t g = 0; g < gates; g++) {
            uint64_t sum = 0;
            for (size_t j = 0; j < k; j++) {
                int64_t el = idx[g * k + j];
                if (el < 0) continue;
                sum += xh[el];
                rs[g * k + j] = r[el];
            }
            /* The IR keeps a patch when its sum is > 0 (as the trainer and the plaintext executor do);
             * over the integers that is sum - 1 >= 0, and subtracting the public 1 is local. */
            ph[g] = sum - 1;
        }
        e->cur.aes_blocks[e->role] += pinas_sign_eval(e->role, pn->cmp_bits, pn->k, mat + 8 * N, gates, ph, rs, o);
        for (size_t g = 0; g < gates; g++)
            for (size_t j = 0; j < k; j++) {
                int64_t el = idx[g * k + j];
                if (el >= 0) Y[el] = o[g * (k + 1)] * xh[el] - o[g * (k + 1) + 1 + j];
            }
        e->cur.ring_macs[e->role] += N;
    }
    if (rs) OPENSSL_cleanse(rs, 8 * gates * k);
    free(xh), free(ph), free(rs), free(o), free(idx);
    return s;
}

/* max(a, b) = b + ReLU(a - b), pairwise per window, one round per tree level. */
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
    size_t off = 0, ks = pinas_sign_key_size(pn->cmp_bits, 1);
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
        s = relu_batch(e, (uint32_t)i, pn->cmp_bits, d, P, mat + off, y);
        off += P * (8 + ks);
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
    free(cur), free(d), free(y), free(cnt), free(idx);
    return s;
}

static void run_avgpool(eng *e, int i, const pl_node *pn, uint64_t *Y)
{
    const pinas_node *n = pinas_net_node(e->net, i), *a = pinas_net_node(e->net, n->inputs[0]);
    const uint64_t *X = node_val(e, n->inputs[0]);
    size_t nw = (size_t)pn->n_out, in_sz = (size_t)a->c * a->h * a->w, out_hw = (size_t)n->h * n->w;
    uint64_t inv = pinas_ring_encode(1.0 / (n->kh * n->kw), e->f);
    int64_t idx[64 * 64];
    for (size_t w = 0; w < nw; w++) {
        size_t b = w / ((size_t)n->c * out_hw), c = (w / out_hw) % (size_t)n->c, p = w % out_hw;
        int cnt = pl_pool_window(n, a, (int)c, (int)(p / (size_t)n->w), (int)(p % (size_t)n->w), idx);
        uint64_t sum = 0;
        for (int j = 0; j < cnt; j++) sum += X[b * in_sz + (size_t)idx[j]]; /* padding counts as zero */
        Y[w] = sum * inv;
    }
    pinas_ring_trunc_share(Y, nw, e->f, e->role);
    e->cur.ring_macs[e->role] += nw;
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
    pinas_ring_trunc_share(Y, nw, e->f, e->role);
    e->cur.ring_macs[e->role] += nw;
}

/* ------------------------------------------------------------------ server weights */

static int bits_of(uint64_t v)
{
    int64_t x = (int64_t)v;
    uint64_t a = x < 0 ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x;
    int b = 0;
    while (b < 64 && (a >> b)) b++;
    return b;
}

/* Encodes conv/linear weights with the following batchnorm folded in: W' = W·γ/sqrt(var+eps),
 * b' = (b - μ)·γ/sqrt(var+eps) + β. */
static pinas_status server_weights(eng *e)
{
    const pinas_model *m = e->model;
    for (int i = 0; i < e->pl.n_nodes; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        const pinas_node *n = pinas_net_node(e->net, i);
        if (pn->kind == PL_MATMUL) {
            size_t rows = (size_t)pn->groups * pn->M, K = (size_t)pn->K;
            const float *w = pinas_model_param(m, i, "weight"), *b = n->bias ? pinas_model_param(m, i, "bias") : NULL;
            if (!w) return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: weight missing", n->id);
            const float *g = NULL, *be = NULL, *mu = NULL, *var = NULL;
            double eps = 0;
            if (pn->bn_node >= 0) {
                g = pinas_model_param(m, pn->bn_node, "weight");
                be = pinas_model_param(m, pn->bn_node, "bias");
                mu = pinas_model_param(m, pn->bn_node, "running_mean");
                var = pinas_model_param(m, pn->bn_node, "running_var");
                eps = pinas_net_node(e->net, pn->bn_node)->eps;
                if (!g || !be || !mu || !var)
                    return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: batchnorm parameters missing",
                                       pinas_net_node(e->net, pn->bn_node)->id);
            }
            e->W[i] = malloc(8 * rows * K);
            e->bias[i] = (b || g) ? malloc(8 * rows) : NULL;
            if (!e->W[i] || ((b || g) && !e->bias[i])) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
            int mb = 1;
            for (size_t r = 0; r < rows; r++) {
                double sc = g ? g[r] / sqrt((double)var[r] + eps) : 1.0;
                for (size_t q = 0; q < K; q++) {
                    uint64_t v = pinas_ring_encode(w[r * K + q] * sc, e->f);
                    e->W[i][r * K + q] = v;
                    int bb = bits_of(v);
                    if (bb > mb) mb = bb;
                }
                if (e->bias[i]) {
                    double bv = b ? b[r] : 0.0;
                    if (g) bv = (bv - mu[r]) * sc + be[r];
                    e->bias[i][r] = pinas_ring_encode(bv, 2 * e->f);
                }
            }
            e->wbits[i] = mb + 1;
        }
    }
    return PINAS_OK;
}

/* ------------------------------------------------------------------ handshake and setup */

static pinas_status handshake(eng *e)
{
    uint8_t mine[HANDSHAKE_BYTES] = {0}, theirs[HANDSHAKE_BYTES];
    memcpy(mine, "PINASHS1", 8);
    uint32_t v = PINAS_MPC_PROTOCOL_VERSION, role = (uint32_t)e->role, batch = (uint32_t)e->batch,
             nn = (uint32_t)e->pl.n_nodes;
    memcpy(mine + 8, &v, 4);
    memcpy(mine + 12, &role, 4);
    memcpy(mine + 16, &batch, 4);
    memcpy(mine + 20, &nn, 4);
    memcpy(mine + 24, &e->pp->hash, 8);
    memcpy(mine + 32, e->pp->session, 16);
    memcpy(mine + 48, &e->pp->mask_id, 8);
    mine[56] = (uint8_t)(e->role == 1 && e->cached != NULL); /* the client has W - A for this mask */
    pinas_chan_set_layer(e->ch, "handshake");
    pinas_status s = c_exchange(e, TAG_HANDSHAKE, mine, theirs, sizeof mine);
    if (s) return s;
    const char *peer = e->role == 0 ? "client" : "server";
    uint32_t tv, trole, tbatch, tnn;
    uint64_t th;
    memcpy(&tv, theirs + 8, 4);
    memcpy(&trole, theirs + 12, 4);
    memcpy(&tbatch, theirs + 16, 4);
    memcpy(&tnn, theirs + 20, 4);
    memcpy(&th, theirs + 24, 8);
    if (memcmp(theirs, "PINASHS1", 8) != 0)
        return pinas_error(e->ctx, PINAS_EPEER, "peer %s, layer handshake: not a pinas party (bad handshake magic)", peer);
    if (tv != v)
        return pinas_error(e->ctx, PINAS_EPEER, "peer %s, layer handshake: protocol version %u, ours is %u", peer, tv, v);
    if (trole == role)
        return pinas_error(e->ctx, PINAS_EPEER, "peer %s, layer handshake: both parties claim role %s", peer,
                           e->role == 0 ? "server" : "client");
    if (th != e->pp->hash || tnn != nn)
        return pinas_error(e->ctx, PINAS_EPEER,
                           "peer %s, layer handshake: model hash mismatch (ours %016llx, theirs %016llx): both parties "
                           "need the same model and fixed-point parameters",
                           peer, (unsigned long long)e->pp->hash, (unsigned long long)th);
    if (memcmp(theirs + 32, e->pp->session, 16) != 0)
        return pinas_error(e->ctx, PINAS_EPEER,
                           "peer %s, layer handshake: preprocessing session id differs: the two preprocessing files come "
                           "from different dealer runs",
                           peer);
    if (tbatch != batch)
        return pinas_error(e->ctx, PINAS_EPEER, "peer %s, layer handshake: batch %u, ours is %u", peer, tbatch, batch);
    uint64_t tmask;
    memcpy(&tmask, theirs + 48, 8);
    if (tmask != e->pp->mask_id)
        return pinas_error(e->ctx, PINAS_EPEER, "peer %s, layer handshake: the preprocessing files use different weight masks",
                           peer);
    if (e->role == 0) e->peer_has_masked = theirs[56] != 0;
    return PINAS_OK;
}

/* ------------------------------------------------------------------ the client's mask cache */

static char *cache_path(const eng *e)
{
    return pinas_strfmt("%s/%016llx-%016llx.masked", e->mask_cache, (unsigned long long)e->pp->hash,
                        (unsigned long long)e->pp->mask_id);
}

/* Loads W - A for this model and mask when cached and intact (else leaves e->cached NULL: the server
 * then sends it). File: "PINASMWT" | u64 arch hash | u64 mask id | u64 bytes | data | SHA-256. */
static void cache_load(eng *e, size_t want)
{
    if (!e->mask_cache || want == 0) return;
    char *path = cache_path(e), *buf = NULL;
    size_t len = 0;
    pinas_ctx *quiet = pinas_ctx_create(); /* a missing or bad cache is not an error: it is refilled */
    if (quiet && pinas_file_read(quiet, path, &buf, &len) == PINAS_OK && len == 32 + want + 32 &&
        memcmp(buf, "PINASMWT", 8) == 0) {
        uint64_t h, id, n;
        memcpy(&h, buf + 8, 8);
        memcpy(&id, buf + 16, 8);
        memcpy(&n, buf + 24, 8);
        uint8_t dig[32];
        unsigned dl = 0;
        EVP_Digest(buf, 32 + want, dig, &dl, EVP_sha256(), NULL);
        if (h == e->pp->hash && id == e->pp->mask_id && n == want && CRYPTO_memcmp(dig, buf + 32 + want, 32) == 0) {
            e->cached = malloc(want);
            if (e->cached) memcpy(e->cached, buf + 32, want);
        }
    }
    if (buf) OPENSSL_cleanse(buf, len);
    free(buf);
    free(path);
    pinas_ctx_free(quiet);
}

static pinas_status cache_save(eng *e, const uint64_t *masked, size_t bytes)
{
    if (!e->mask_cache || bytes == 0) return PINAS_OK;
    uint8_t *buf = malloc(32 + bytes + 32);
    if (!buf) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    memcpy(buf, "PINASMWT", 8);
    uint64_t n = bytes;
    memcpy(buf + 8, &e->pp->hash, 8);
    memcpy(buf + 16, &e->pp->mask_id, 8);
    memcpy(buf + 24, &n, 8);
    memcpy(buf + 32, masked, bytes);
    unsigned dl = 0;
    EVP_Digest(buf, 32 + bytes, buf + 32 + bytes, &dl, EVP_sha256(), NULL);
    char *path = cache_path(e);
    pinas_status s = pinas_mkdir_p(e->ctx, e->mask_cache);
    if (!s) s = pinas_file_write_atomic(e->ctx, path, buf, 32 + bytes + 32, 0600);
    free(path);
    OPENSSL_cleanse(buf, 32 + bytes + 32);
    free(buf);
    return s;
}

/* The masked weights W - A of every matmul node, in node order, and the poly coefficients: the server
 * sends them in one message (the masked weights only when the client does not have them cached); the
 * client precomputes (W - A)·cols(B) + C1 before it touches its input. */
static size_t masked_bytes(const eng *e)
{
    size_t t = 0;
    for (int i = 0; i < e->pl.n_nodes; i++)
        if (e->pl.nodes[i].kind == PL_MATMUL) t += 8 * (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K;
    return t;
}

static size_t poly_bytes(const eng *e)
{
    size_t t = 0;
    for (int i = 0; i < e->pl.n_nodes; i++)
        if (e->pl.nodes[i].kind == PL_POLY) t += 8 * 3 * (size_t)e->pl.nodes[i].poly_channels;
    return t;
}

static pinas_status setup(eng *e, size_t *total_out)
{
    size_t mb = masked_bytes(e), pb = poly_bytes(e);
    int send_masked = e->role == 0 ? !e->peer_has_masked : e->cached == NULL;
    size_t total = (send_masked ? mb : 0) + pb;
    *total_out = total;
    uint64_t *msg = malloc(total ? total : 8);
    if (!msg) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    pinas_chan_set_layer(e->ch, "setup");
    if (e->role == 0) {
        pinas_prg *mask = NULL;
        s = pinas_prg_create(e->ctx, e->pp->mask_seed, &mask);
        size_t o = 0, a_len = 1;
        for (int i = 0; i < e->pl.n_nodes; i++)
            if (e->pl.nodes[i].kind == PL_MATMUL) {
                size_t mk = (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K;
                if (mk > a_len) a_len = mk;
            }
        uint64_t *A = malloc(8 * a_len);
        if (!A && !s) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        for (int i = 0; i < e->pl.n_nodes && !s; i++) {
            const pl_node *pn = &e->pl.nodes[i];
            if (pn->kind == PL_MATMUL) {
                size_t mk = (size_t)pn->groups * pn->M * pn->K;
                pinas_prg_bytes(mask, A, 8 * mk); /* the same request sequence as the dealer's */
                if (send_masked)
                    for (size_t q = 0; q < mk; q++) msg[o + q] = e->W[i][q] - A[q];
                if (send_masked) o += mk;
            }
        }
        for (int i = 0; i < e->pl.n_nodes && !s; i++) {
            const pl_node *pn = &e->pl.nodes[i];
            if (pn->kind == PL_POLY) {
                size_t c = (size_t)pn->poly_channels;
                memcpy(msg + o, e->pa[i], 8 * c);
                memcpy(msg + o + c, e->pw1[i], 8 * c);
                memcpy(msg + o + 2 * c, e->pb[i], 8 * c);
                o += 3 * c;
            }
        }
        if (A) OPENSSL_cleanse(A, 8 * a_len);
        free(A);
        pinas_prg_free(mask);
        if (!s) s = c_send(e, TAG_SETUP, msg, total);
    } else {
        s = c_recv(e, TAG_SETUP, msg, total);
        const uint64_t *masked = send_masked ? msg : e->cached;
        if (!s && send_masked) s = cache_save(e, msg, mb);
        size_t o = 0, op = send_masked ? mb / 8 : 0;
        for (int i = 0; i < e->pl.n_nodes && !s; i++) {
            const pl_node *pn = &e->pl.nodes[i];
            if (pn->kind == PL_MATMUL) {
                size_t mk = (size_t)pn->groups * pn->M * pn->K, mn = (size_t)pn->groups * pn->M * pn->N;
                const uint64_t *B = (const uint64_t *)(const void *)prep_node(e->pp, i), *C1 = B + pn->n_in;
                uint64_t *cols = malloc(8 * (size_t)pn->K * (size_t)pn->N);
                e->Y1[i] = malloc(8 * (mn ? mn : 1));
                if (!cols || !e->Y1[i]) {
                    free(cols);
                    s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
                    break;
                }
                memcpy(e->Y1[i], C1, 8 * mn);
                for (int g = 0; g < pn->groups; g++) {
                    mm_cols(e->net, i, pn, B, g, cols);
                    pinas_ring_gemm(pn->M, (int)pn->N, pn->K, masked + o + (size_t)g * pn->M * pn->K, pn->K, cols,
                                    (int)pn->N, e->Y1[i] + (size_t)g * pn->M * pn->N, (int)pn->N, 1);
                }
                free(cols);
                o += mk;
            } else if (pn->kind == PL_POLY) {
                size_t c = (size_t)pn->poly_channels;
                e->pa[i] = malloc(8 * c);
                e->pw1[i] = malloc(8 * c);
                e->pb[i] = malloc(8 * c);
                if (!e->pa[i] || !e->pw1[i] || !e->pb[i]) {
                    s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
                    break;
                }
                memcpy(e->pa[i], msg + op, 8 * c);
                memcpy(e->pw1[i], msg + op + c, 8 * c);
                memcpy(e->pb[i], msg + op + 2 * c, 8 * c);
                op += 3 * c;
            }
        }
    }
    OPENSSL_cleanse(msg, total);
    free(msg);
    return s;
}

static pinas_status server_poly(eng *e)
{
    for (int i = 0; i < e->pl.n_nodes; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind != PL_POLY) continue;
        const pinas_node *n = pinas_net_node(e->net, i);
        const float *w0 = pinas_model_param(e->model, i, "w0"), *w1 = pinas_model_param(e->model, i, "w1"),
                    *b = pinas_model_param(e->model, i, "b");
        if (!w0 || !w1 || !b) return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: poly parameters w0, w1, b missing", n->id);
        size_t c = (size_t)pn->poly_channels;
        e->pa[i] = malloc(8 * c);
        e->pw1[i] = malloc(8 * c);
        e->pb[i] = malloc(8 * c);
        if (!e->pa[i] || !e->pw1[i] || !e->pb[i]) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        for (size_t q = 0; q < c; q++) {
            e->pa[i][q] = pinas_ring_encode(n->poly_scale * w0[q], e->f);
            e->pw1[i][q] = pinas_ring_encode(w1[q], e->f);
            e->pb[i][q] = pinas_ring_encode(b[q], 2 * e->f);
        }
    }
    return PINAS_OK;
}

/* ------------------------------------------------------------------ the run */

static void eng_free(eng *e)
{
    int nn = e->pl.n_nodes;
    for (int i = 0; i < nn; i++) {
        /* shares, the client's precomputed products and the server's weights are secrets: zero them */
        if (e->val && e->val[i]) OPENSSL_cleanse(e->val[i], 8 * (size_t)(e->pl.nodes[i].n_out ? e->pl.nodes[i].n_out : 1));
        if (e->Y1 && e->Y1[i])
            OPENSSL_cleanse(e->Y1[i], 8 * (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * (size_t)e->pl.nodes[i].N);
        if (e->W && e->W[i]) OPENSSL_cleanse(e->W[i], 8 * (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K);
        if (e->val) free(e->val[i]);
        if (e->W) free(e->W[i]);
        if (e->bias) free(e->bias[i]);
        if (e->pa) free(e->pa[i]);
        if (e->pw1) free(e->pw1[i]);
        if (e->pb) free(e->pb[i]);
        if (e->Y1) free(e->Y1[i]);
    }
    free(e->val), free(e->owner), free(e->W), free(e->bias), free(e->wbits), free(e->pa), free(e->pw1), free(e->pb),
        free(e->Y1), free(e->rows);
    if (e->cached) {
        OPENSSL_cleanse(e->cached, masked_bytes(e));
        free(e->cached);
    }
    pl_free(&e->pl);
}

pinas_status pinas_mpc_prep_check(pinas_ctx *ctx, const pinas_mpc_prep *pp, const pinas_net *net, int role)
{
    if (pp->party != role)
        return pinas_error(ctx, PINAS_EINVAL, "the preprocessing file is party %d's (%s), this is the %s", pp->party,
                           pp->party == 0 ? "server" : "client", role == 0 ? "server" : "client");
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
    pinas_status s = pl_build(ctx, net, &p, pp->node_bits, -1, -1, &pl);
    if (s) return s;
    for (int i = 0; i < pl.n_nodes && !s; i++)
        if (pl_prep_bytes(&pl.nodes[i], role) != pp->len[i])
            s = pinas_error(ctx, PINAS_EINVAL, "the preprocessing does not match the model at node %s (%llu bytes, expected %llu)",
                            pinas_net_node(net, i)->id, (unsigned long long)pp->len[i],
                            (unsigned long long)pl_prep_bytes(&pl.nodes[i], role));
    pl_free(&pl);
    return s;
}

void pinas_mpc_report_free(pinas_mpc_report *r)
{
    if (!r) return;
    free(r->layers);
    free(r);
}

pinas_status pinas_mpc_party_run(pinas_ctx *ctx, pinas_chan *chan, const pinas_mpc_party_args *a,
                                 pinas_mpc_report **report)
{
    if (report) *report = NULL;
    eng E = {0}, *e = &E;
    e->ctx = ctx;
    e->ch = chan;
    e->role = a->role;
    e->pp = a->prep;
    e->model = a->model;
    e->net = a->role == 0 ? (a->model ? a->model->net : a->net) : a->net;
    if (a->role != 0 && a->role != 1) return pinas_error(ctx, PINAS_EINVAL, "role must be 0 (server) or 1 (client)");
    if (!e->net || !e->pp || (a->role == 0 && !a->model) || (a->role == 1 && (!a->x || !a->logits)))
        return pinas_error(ctx, PINAS_EINVAL, "party %s: missing %s", a->role == 0 ? "server" : "client",
                           !e->pp ? "preprocessing" : a->role == 0 ? "model" : "net, input or logits buffer");
    pinas_status s = pinas_mpc_prep_check(ctx, e->pp, e->net, a->role);
    if (s) return s;
    pinas_chan_set_timeout(chan, a->timeout_ms > 0 ? a->timeout_ms : 30000);
    pinas_mpc_params p;
    pinas_mpc_prep_params(e->pp, &p);
    e->f = p.frac_bits;
    e->batch = p.batch;
    s = pl_build(ctx, e->net, &p, e->pp->node_bits, -1, -1, &e->pl);
    if (s) return s;
    int nn = e->pl.n_nodes;
    e->val = calloc((size_t)nn, sizeof *e->val);
    e->owner = calloc((size_t)nn, sizeof *e->owner);
    e->W = calloc((size_t)nn, sizeof *e->W);
    e->bias = calloc((size_t)nn, sizeof *e->bias);
    e->wbits = calloc((size_t)nn, sizeof *e->wbits);
    e->pa = calloc((size_t)nn, sizeof *e->pa);
    e->pw1 = calloc((size_t)nn, sizeof *e->pw1);
    e->pb = calloc((size_t)nn, sizeof *e->pb);
    e->Y1 = calloc((size_t)nn, sizeof *e->Y1);
    e->rows = calloc((size_t)nn + 1, sizeof *e->rows);
    if (!e->val || !e->owner || !e->W || !e->bias || !e->wbits || !e->pa || !e->pw1 || !e->pb || !e->Y1 || !e->rows) {
        eng_free(e);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    for (int i = 0; i < nn; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        pl_cost(pn, e->f, &e->rows[i].measured); /* offline and setup figures come from the plan ... */
        memset(&e->rows[i].measured.online, 0, sizeof(pinas_mpc_counts));
        e->rows[i].measured.offline.aes_blocks[0] = e->pp->node_dealer[i].offline.aes_blocks[0]; /* ... and the dealer */
        e->rows[i].measured.offline.ring_macs[0] = e->pp->node_dealer[i].offline.ring_macs[0];
        e->rows[i].measured.offline.ring_macs[1] = 0;
        snprintf(e->rows[i].id, sizeof e->rows[i].id, "%s", pinas_net_node(e->net, i)->id);
    }
    double t_setup = pinas_now();
    if (e->role == 0) {
        s = server_weights(e);
        if (!s) s = server_poly(e);
    }
    pinas_mpc_counts session = {0};
    e->mask_cache = a->role == 1 ? a->mask_cache : NULL;
    cache_load(e, masked_bytes(e));
    if (!s) {
        memset(&e->cur, 0, sizeof e->cur);
        size_t setup_bytes = 0;
        s = handshake(e);
        if (!s) s = setup(e, &setup_bytes);
        session = e->cur;
        session.bytes[0] -= setup_bytes; /* the per-node rows carry those */
        if ((e->role == 0 && e->peer_has_masked) || (e->role == 1 && e->cached))
            for (int i = 0; i < nn; i++) /* the masked weights did not cross the network this time */
                if (e->pl.nodes[i].kind == PL_MATMUL) e->rows[i].measured.setup.bytes[0] = 0;
    }
    /* the client's input-independent products, counted per node */
    for (int i = 0; i < nn; i++)
        if (e->pl.nodes[i].kind == PL_MATMUL && e->role == 1)
            e->rows[i].measured.offline.ring_macs[1] =
                (uint64_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K * (uint64_t)e->pl.nodes[i].N;
    t_setup = pinas_now() - t_setup;
    double t_online = pinas_now();
    for (int i = 0; i < nn && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        const pinas_node *n = pinas_net_node(e->net, i);
        e->owner[i] = i;
        if (pn->kind == PL_NONE && i > 0) {
            e->owner[i] = e->owner[pn->alias];
            continue;
        }
        e->val[i] = malloc(8 * (size_t)(pn->n_out ? pn->n_out : 1));
        if (!e->val[i]) {
            s = pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", n->id);
            break;
        }
        pinas_chan_set_layer(chan, n->id);
        if (a->delay_layer && a->delay_ms > 0 && strcmp(a->delay_layer, n->id) == 0) {
            struct timespec ts = {a->delay_ms / 1000, (long)(a->delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        memset(&e->cur, 0, sizeof e->cur);
        double t0 = pinas_now();
        uint64_t *Y = e->val[i];
        switch (pn->kind) {
        case PL_NONE: /* the input: the client holds it, the server's share is zero */
            for (int64_t q = 0; q < pn->n_out; q++) Y[q] = e->role == 1 ? pinas_ring_encode(a->x[q], e->f) : 0;
            break;
        case PL_MATMUL: s = run_matmul(e, i, pn, Y); break;
        case PL_RELU: s = relu_batch(e, (uint32_t)i, pn->cmp_bits, node_val(e, n->inputs[0]), (size_t)pn->n_out,
                                     prep_node(e->pp, i), Y);
            break;
        case PL_POLY: s = run_poly(e, i, pn, Y); break;
        case PL_PATCH: s = run_patch(e, i, pn, Y); break;
        case PL_MAXPOOL: s = run_maxpool(e, i, pn, Y); break;
        case PL_AVGPOOL: run_avgpool(e, i, pn, Y); break;
        case PL_GAP: run_gap(e, i, pn, Y); break;
        case PL_ADD: {
            const uint64_t *x1 = node_val(e, n->inputs[0]), *x2 = node_val(e, n->inputs[1]);
            for (int64_t q = 0; q < pn->n_out; q++) Y[q] = x1[q] + x2[q];
            break;
        }
        }
        e->rows[i].online_s = pinas_now() - t0;
        e->rows[i].measured.online = e->cur;
        if (s) pinas_error_prefix(ctx, s, "%s: node %s", e->role == 0 ? "server" : "client", n->id);
    }
    /* output: the server sends its share of the logits */
    int last = nn - 1;
    size_t nout = (size_t)e->pl.nodes[last].n_out;
    pinas_mpc_layer_report *orow = &e->rows[nn];
    snprintf(orow->id, sizeof orow->id, "output");
    if (!s) {
        pinas_chan_set_layer(chan, "output");
        memset(&e->cur, 0, sizeof e->cur);
        double t0 = pinas_now();
        const uint64_t *Yl = node_val(e, last);
        if (e->role == 0) {
            s = c_send(e, TAG_OUTPUT, Yl, 8 * nout);
        } else {
            uint64_t *o = malloc(8 * nout);
            if (!o) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            if (!s) s = c_recv(e, TAG_OUTPUT, o, 8 * nout);
            if (!s)
                for (size_t q = 0; q < nout; q++) a->logits[q] = (float)pinas_ring_decode(o[q] + Yl[q], e->f);
            free(o);
        }
        orow->online_s = pinas_now() - t0;
        orow->measured.online = e->cur;
        if (s) pinas_error_prefix(ctx, s, "%s", e->role == 0 ? "server" : "client");
    }
    t_online = pinas_now() - t_online;
    if (!s && report) {
        pinas_mpc_report *r = calloc(1, sizeof *r);
        int nl = 0;
        if (r) r->layers = calloc((size_t)nn + 1, sizeof *r->layers);
        if (!r || !r->layers) {
            free(r);
            s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        } else {
            for (int i = 1; i <= nn; i++) {
                if (i < nn && e->pl.nodes[i].kind == PL_NONE) continue;
                r->layers[nl++] = e->rows[i];
                pinas_mpc_cost_add(&r->totals, &e->rows[i].measured);
            }
            r->n_layers = nl;
            pinas_mpc_counts_add(&r->totals.setup, &session);
            r->session = session;
            r->online_s = t_online;
            r->offline_s = t_setup + e->pp->gen_s;
            *report = r;
        }
    }
    eng_free(e);
    return s;
}

cJSON *pinas_mpc_counts_json(const pinas_mpc_counts *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "bytes", cJSON_CreateDoubleArray((double[]){(double)c->bytes[0], (double)c->bytes[1]}, 2));
    cJSON_AddNumberToObject(o, "rounds", (double)c->rounds);
    cJSON_AddItemToObject(o, "aes_blocks",
                          cJSON_CreateDoubleArray((double[]){(double)c->aes_blocks[0], (double)c->aes_blocks[1]}, 2));
    cJSON_AddItemToObject(o, "ring_macs",
                          cJSON_CreateDoubleArray((double[]){(double)c->ring_macs[0], (double)c->ring_macs[1]}, 2));
    return o;
}

static cJSON *cost_json(const pinas_mpc_cost *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "online", pinas_mpc_counts_json(&c->online));
    cJSON_AddItemToObject(o, "offline", pinas_mpc_counts_json(&c->offline));
    cJSON_AddItemToObject(o, "setup", pinas_mpc_counts_json(&c->setup));
    return o;
}

cJSON *pinas_mpc_report_json(const pinas_mpc_report *r)
{
    cJSON *o = cJSON_CreateObject(), *ls = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < r->n_layers; i++) {
        const pinas_mpc_layer_report *l = &r->layers[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", l->id);
        cJSON_AddNumberToObject(j, "online_ms", l->online_s * 1e3);
        cJSON_AddNumberToObject(j, "prep_bytes_server", (double)l->measured.offline.bytes[0]);
        cJSON_AddNumberToObject(j, "prep_bytes_client", (double)l->measured.offline.bytes[1]);
        cJSON_AddNumberToObject(j, "sent_bytes_server", (double)l->measured.online.bytes[0]);
        cJSON_AddNumberToObject(j, "sent_bytes_client", (double)l->measured.online.bytes[1]);
        cJSON_AddNumberToObject(j, "rounds", (double)l->measured.online.rounds);
        cJSON_AddItemToObject(j, "measured", cost_json(&l->measured));
        cJSON_AddItemToArray(ls, j);
    }
    cJSON *t = cost_json(&r->totals);
    cJSON_AddNumberToObject(t, "online_s", r->online_s);
    cJSON_AddNumberToObject(t, "offline_s", r->offline_s);
    cJSON_AddItemToObject(o, "totals", t);
    return o;
}
