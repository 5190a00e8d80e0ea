/* The dealer: input-independent preprocessing for both parties (Beaver matrix triples, square pairs, FSS keys). */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void rand_u64(pinas_prg *prg, uint64_t *v, size_t n) { pinas_prg_bytes(prg, v, 8 * n); }

/* Writes r into a fresh random sharing: s0 (party 0) and s1 = r - s0 (party 1). */
static void split(pinas_prg *prg, const uint64_t *r, size_t n, uint64_t *s0, uint64_t *s1)
{
    rand_u64(prg, s0, n);
    for (size_t i = 0; i < n; i++) s1[i] = r[i] - s0[i];
}

/* Beaver matrix triple per group: the server gets C0, the client B and C1 = A·cols(B) - C0; A comes
 * from the weight-mask PRG (the server re-expands it from the seed). *macs: ring MACs of A·B. */
static pinas_status deal_matmul(pinas_ctx *ctx, const pinas_net *net, int i, const pl_node *pn, pinas_prg *prg,
                                pinas_prg *mask, uint64_t *u0, uint64_t *u1, uint64_t *macs)
{
    size_t mk = (size_t)pn->groups * pn->M * pn->K, mn = (size_t)pn->groups * pn->M * pn->N, K = (size_t)pn->K;
    uint64_t *C0 = u0, *B = u1, *C1 = u1 + pn->n_in;
    uint64_t *A = malloc(sizeof(uint64_t) * (mk ? mk : 1)), *cols = malloc(sizeof(uint64_t) * K * (size_t)pn->N);
    if (!A || !cols) {
        free(A);
        free(cols);
        return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory (im2col)", pinas_net_node(net, i)->id);
    }
    rand_u64(mask, A, mk); /* the per-model weight mask: the same in every dealer run with this seed */
    rand_u64(prg, B, (size_t)pn->n_in);
    rand_u64(prg, C0, mn);
    for (int g = 0; g < pn->groups; g++) {
        mm_cols(net, i, pn, B, g, cols);
        uint64_t *Cg = C1 + (size_t)g * pn->M * pn->N;
        pinas_ring_gemm_mt(pn->threads, pn->M, (int)pn->N, pn->K, A + (size_t)g * pn->M * K, pn->K, cols, (int)pn->N, Cg,
                           (int)pn->N, 0);
    }
    free(cols);
    OPENSSL_cleanse(A, sizeof(uint64_t) * mk);
    free(A);
    for (size_t q = 0; q < mn; q++) C1[q] -= C0[q];
    *macs = (uint64_t)mk * (uint64_t)pn->N;
    return PINAS_OK;
}

/* The dealer's part of n select gates on DReLU keys for the masks rp: the keys (at k0, k1), t as ring
 * shares at t0, t1, and, for each of the ne payload elements (element e in gate gate[e], or gate e when
 * gate is NULL), shares of t·r[e] at tr0, tr1. *aes_gen += the AES blocks of key generation. */
static pinas_status deal_select(pinas_ctx *ctx, const char *id, pinas_prg *prg, const pl_node *pn, size_t n,
                                const uint64_t *rp, size_t ne, const uint64_t *r, const int64_t *gate, uint8_t *k0,
                                uint8_t *k1, uint64_t *t0, uint64_t *t1, uint64_t *tr0, uint64_t *tr1, uint64_t *aes_gen)
{
    uint8_t *t = malloc(n ? n : 1);
    uint64_t *T = malloc(8 * (n > ne ? (n ? n : 1) : (ne ? ne : 1)));
    if (!t || !T) {
        free(t), free(T);
        return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", id);
    }
    *aes_gen += pinas_drelu_gen(prg, pn->cmp_bits, pn->cmp_high, n, rp, k0, k1, t, pn->threads);
    for (size_t g = 0; g < n; g++) T[g] = t[g];
    split(prg, T, n, t0, t1);
    for (size_t q = 0; q < ne; q++) {
        int64_t g = gate ? gate[q] : (int64_t)q;
        T[q] = g >= 0 ? (uint64_t)t[g] * r[q] : 0;
    }
    split(prg, T, ne, tr0, tr1);
    OPENSSL_cleanse(t, n ? n : 1);
    OPENSSL_cleanse(T, 8 * (n > ne ? (n ? n : 1) : (ne ? ne : 1)));
    free(t), free(T);
    return PINAS_OK;
}

/* n ReLU gates (ReLU, and each maxpool round): material r | t | t·r | keys (mpc_internal.h). */
static pinas_status deal_relu(pinas_ctx *ctx, const char *id, pinas_prg *prg, const pl_node *pn, size_t n, uint8_t *m0,
                              uint8_t *m1, uint64_t *aes_gen)
{
    uint64_t *R = malloc(8 * (n ? n : 1)), *u0 = (uint64_t *)(void *)m0, *u1 = (uint64_t *)(void *)m1;
    if (!R) return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", id);
    rand_u64(prg, R, n);
    split(prg, R, n, u0, u1);
    pinas_status s = deal_select(ctx, id, prg, pn, n, R, n, R, NULL, m0 + 24 * n, m1 + 24 * n, u0 + n, u1 + n, u0 + 2 * n,
                                 u1 + 2 * n, aes_gen);
    OPENSSL_cleanse(R, 8 * (n ? n : 1));
    free(R);
    return s;
}

/* Square pair: shares of r and of r^2. */
static pinas_status deal_poly(pinas_ctx *ctx, const char *id, pinas_prg *prg, size_t n, uint64_t *u0, uint64_t *u1,
                              uint64_t *macs)
{
    uint64_t *R = malloc(8 * (n ? n : 1));
    if (!R) return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", id);
    rand_u64(prg, R, n);
    split(prg, R, n, u0, u1);
    for (size_t q = 0; q < n; q++) R[q] *= R[q];
    split(prg, R, n, u0 + n, u1 + n);
    *macs = n;
    OPENSSL_cleanse(R, 8 * n);
    free(R);
    return PINAS_OK;
}

/* One gate per patch on the patch sum of the element masks; t·r per element with its patch's t. */
static pinas_status deal_patch(pinas_ctx *ctx, const pinas_net *net, int i, const pl_node *pn, int batch, pinas_prg *prg,
                               uint8_t *m0, uint8_t *m1, uint64_t *aes_gen)
{
    size_t ni = (size_t)pn->n_in, gates = (size_t)pn->gates, k = (size_t)pn->k;
    uint64_t *R = malloc(8 * ni), *rp = calloc(gates ? gates : 1, 8), *u0 = (uint64_t *)(void *)m0,
             *u1 = (uint64_t *)(void *)m1;
    int64_t *idx = malloc(sizeof(int64_t) * (gates * k > 0 ? gates * k : 1)), *gate = malloc(sizeof(int64_t) * (ni ? ni : 1));
    pinas_status s = PINAS_OK;
    if (!R || !rp || !idx || !gate) s = pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", pinas_net_node(net, i)->id);
    if (!s) {
        rand_u64(prg, R, ni);
        split(prg, R, ni, u0, u1);
        patch_index(net, i, pn, batch, idx);
        for (size_t e = 0; e < ni; e++) gate[e] = -1;
        for (size_t g = 0; g < gates; g++)
            for (size_t j = 0; j < k; j++) {
                int64_t e = idx[g * k + j];
                if (e < 0) continue;
                gate[e] = (int64_t)g;
                rp[g] += R[e];
            }
        s = deal_select(ctx, pinas_net_node(net, i)->id, prg, pn, gates, rp, ni, R, gate, m0 + 16 * ni + 8 * gates,
                        m1 + 16 * ni + 8 * gates, u0 + 2 * ni, u1 + 2 * ni, u0 + ni, u1 + ni, aes_gen);
    }
    if (R) OPENSSL_cleanse(R, 8 * ni);
    if (rp) OPENSSL_cleanse(rp, 8 * (gates ? gates : 1));
    free(R), free(rp), free(idx), free(gate);
    return s;
}

pinas_status deal_node(pinas_ctx *ctx, const pinas_net *net, int i, const pl_node *pn, int batch, pinas_prg *prg,
                       pinas_prg *mask, uint8_t *m0, uint8_t *m1, pinas_mpc_cost *work)
{
    const char *id = pinas_net_node(net, i)->id;
    uint64_t prg0 = pinas_prg_blocks(prg) + pinas_prg_blocks(mask), aes_gen = 0, macs = 0;
    uint64_t *u0 = (uint64_t *)(void *)m0, *u1 = (uint64_t *)(void *)m1;
    pinas_status s = PINAS_OK;
    switch (pn->kind) {
    case PL_MATMUL: s = deal_matmul(ctx, net, i, pn, prg, mask, u0, u1, &macs); break;
    case PL_RELU: s = deal_relu(ctx, id, prg, pn, (size_t)pn->n_out, m0, m1, &aes_gen); break;
    case PL_POLY: s = deal_poly(ctx, id, prg, (size_t)pn->n_out, u0, u1, &macs); break;
    case PL_PATCH: s = deal_patch(ctx, net, i, pn, batch, prg, m0, m1, &aes_gen); break;
    case PL_MAXPOOL: {
        size_t off = 0, ks = pinas_drelu_key_size(pn->cmp_bits);
        for (int r = 0; r < pn->rounds && !s; r++) {
            size_t P = (size_t)pn->pairs[r];
            s = deal_relu(ctx, id, prg, pn, P, m0 + off, m1 + off, &aes_gen);
            off += P * (24 + ks);
        }
        break;
    }
    default: break;
    }
    if (s) return s;
    if (work) {
        memset(work, 0, sizeof *work);
        work->offline.aes_blocks[0] = pinas_prg_blocks(prg) + pinas_prg_blocks(mask) - prg0 + aes_gen;
        work->offline.ring_macs[0] = macs;
    }
    return PINAS_OK;
}

uint64_t mask_id_of(const uint8_t seed[16], uint64_t arch_hash)
{
    uint8_t buf[24], dig[32];
    unsigned dl = 0;
    memcpy(buf, seed, 16);
    memcpy(buf + 16, &arch_hash, 8);
    EVP_Digest(buf, sizeof buf, dig, &dl, EVP_sha256(), NULL);
    uint64_t id;
    memcpy(&id, dig, 8);
    OPENSSL_cleanse(buf, sizeof buf);
    return id;
}

/* Per-node comparison windows: p's, or the layer_bits entry naming the node (cmp_high 0 = 64). nb gets
 * the widths, nh the tops. */
static pinas_status node_widths(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                                const pinas_mpc_deal_opts *o, int *nb, int *nh)
{
    for (int i = 0; i < pinas_net_n_nodes(net); i++) {
        nb[i] = p->cmp_bits;
        nh[i] = p->cmp_high ? p->cmp_high : 64;
    }
    for (int j = 0; o && j < o->n_layer_bits; j++) {
        const pinas_mpc_layer_bits *lb = &o->layer_bits[j];
        int i = pinas_net_find(net, lb->id);
        if (i < 0) return pinas_error(ctx, PINAS_EINVAL, "cmp_bits table: no node \"%s\" in the net", lb->id);
        if (pinas_mpc_cmp_window_check(ctx, "cmp_bits", lb->cmp_bits, lb->cmp_high))
            return pinas_error_prefix(ctx, PINAS_EINVAL, "cmp_bits table: node \"%s\"", lb->id);
        nb[i] = lb->cmp_bits;
        nh[i] = lb->cmp_high ? lb->cmp_high : 64;
    }
    return PINAS_OK;
}

/* The main PRG, the session id and the weight-mask seed: from the OS, or all from opts->seed (tests
 * and reproducibility: its first 16 bytes key the main PRG, the last 16 a PRG for the session id and,
 * without a mask, the mask seed). */
static pinas_status deal_seeds(pinas_ctx *ctx, const pinas_mpc_deal_opts *o, pinas_mpc_prep *a, pinas_prg **prg)
{
    const pinas_mpc_mask *mask = o ? o->mask : NULL;
    if (!o || !o->seed) {
        pinas_status s = pinas_prg_create_os(ctx, prg);
        if (!s) s = pinas_os_random(ctx, a->session, 16);
        if (!s && !mask) s = pinas_os_random(ctx, a->mask_seed, 16);
        if (!s && mask) memcpy(a->mask_seed, mask->seed, 16);
        return s;
    }
    pinas_prg *aux = NULL;
    pinas_status s = pinas_prg_create(ctx, o->seed, prg);
    if (!s) s = pinas_prg_create(ctx, o->seed + 16, &aux);
    if (!s) {
        pinas_prg_bytes(aux, a->session, 16);
        if (mask)
            memcpy(a->mask_seed, mask->seed, 16);
        else
            pinas_prg_bytes(aux, a->mask_seed, 16);
    }
    pinas_prg_free(aux);
    return s;
}

/* The header fields both files share (after deal_seeds filled a's session id and mask seed). */
static void deal_header(const pinas_net *net, const pinas_mpc_params *p, pinas_mpc_prep *a, pinas_mpc_prep *b)
{
    memcpy(b->session, a->session, 16);
    a->hash = b->hash = pinas_mpc_arch_hash(net, p);
    a->mask_id = b->mask_id = mask_id_of(a->mask_seed, a->hash);
    a->cmp_bits = b->cmp_bits = p->cmp_bits;
    a->cmp_high = b->cmp_high = p->cmp_high ? p->cmp_high : 64;
}

static uint64_t max_len(const pinas_mpc_prep *pp)
{
    uint64_t m = 64;
    for (int i = 0; i < pp->n_nodes; i++)
        if (pp->len[i] > m) m = pp->len[i];
    return (m + 63) / 64 * 64;
}

/* Both parties' material, node by node, from the main PRG prg: into a and b when they hold their
 * material, else through the writers w[0], w[1] (one node's material of each party at a time). */
static pinas_status deal_all(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, const pl_plan *pl,
                             pinas_prg *prg, pinas_mpc_prep *a, pinas_mpc_prep *b, prep_writer **w)
{
    pinas_prg *mprg = NULL;
    pinas_mpc_prep *ab[2] = {a, b};
    uint8_t *m[2] = {NULL, NULL};
    pinas_status s = pinas_prg_create(ctx, a->mask_seed, &mprg);
    for (int q = 0; q < 2 && !s && w; q++) /* one node buffer per party, the largest node's size */
        if (!(m[q] = aligned_alloc(64, max_len(ab[q])))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    memset(&a->dealer, 0, sizeof a->dealer);
    double gen = 0;
    for (int i = 0; i < pl->n_nodes && !s; i++) {
        pinas_mpc_cost wk;
        uint8_t *m0 = w ? m[0] : prep_node(a, i), *m1 = w ? m[1] : prep_node(b, i);
        if (w) memset(m0, 0, a->len[i]), memset(m1, 0, b->len[i]);
        double t0 = pinas_now();
        s = deal_node(ctx, net, i, &pl->nodes[i], p->batch, prg, mprg, m0, m1, &wk);
        gen += pinas_now() - t0;
        if (!s && w) s = prep_writer_node(ctx, w[0], i, m0, &wk);
        if (!s && w) s = prep_writer_node(ctx, w[1], i, m1, &wk);
        if (!s) {
            a->node_dealer[i] = b->node_dealer[i] = wk;
            pinas_mpc_cost_add(&a->dealer, &wk);
        }
    }
    b->dealer = a->dealer;
    a->gen_s = b->gen_s = gen;
    for (int q = 0; q < 2; q++)
        if (m[q]) OPENSSL_cleanse(m[q], max_len(ab[q])), free(m[q]);
    pinas_prg_free(mprg);
    return s;
}

/* Checks the arguments and plans the net with its per-node windows. */
static pinas_status deal_plan(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                              const pinas_mpc_deal_opts *opts, pl_plan *pl)
{
    pinas_status s = pinas_mpc_params_check(ctx, p);
    if (s) return s;
    if (pinas_net_n_open(net) > 0)
        return pinas_error(ctx, PINAS_EINVAL, "net %s has %d open slots; the runtime needs a decided architecture",
                           pinas_net_name(net), pinas_net_n_open(net));
    const pinas_mpc_mask *mask = opts ? opts->mask : NULL;
    if (mask && mask->arch_hash != pinas_mpc_arch_hash(net, p))
        return pinas_error(ctx, PINAS_EINVAL, "weight mask %s was made for another model or other fixed-point parameters",
                           mask->path);
    int nn = pinas_net_n_nodes(net), *nb = malloc(sizeof(int) * 2 * (size_t)(nn > 0 ? nn : 1));
    if (!nb) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    s = node_widths(ctx, net, p, opts, nb, nb + nn);
    if (!s) s = pl_build_win(ctx, net, p, nb, nb + nn, -1, -1, pl);
    free(nb);
    return s;
}

pinas_status pinas_mpc_deal(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                            const pinas_mpc_deal_opts *opts, pinas_mpc_prep **p0, pinas_mpc_prep **p1)
{
    *p0 = *p1 = NULL;
    pl_plan pl;
    pinas_status s = deal_plan(ctx, net, p, opts, &pl);
    if (s) return s;
    pinas_mpc_prep *a = NULL, *b = NULL;
    s = prep_alloc(ctx, &pl, 0, &a);
    if (!s) s = prep_alloc(ctx, &pl, 1, &b);
    pinas_prg *prg = NULL;
    if (!s) s = deal_seeds(ctx, opts, a, &prg);
    if (!s) deal_header(net, p, a, b);
    if (!s) s = deal_all(ctx, net, p, &pl, prg, a, b, NULL);
    pinas_prg_free(prg);
    pl_free(&pl);
    if (s) {
        pinas_mpc_prep_free(a);
        pinas_mpc_prep_free(b);
        return s;
    }
    *p0 = a;
    *p1 = b;
    return PINAS_OK;
}

/* Commits both files or neither: the server's target is kept under a hard link until the client's is
 * in place, and put back if the client's commit fails. */
static pinas_status commit_pair(pinas_ctx *ctx, prep_writer **w, const char *path0)
{
    char *bak = pinas_strfmt("%s.previous.tmp.%d", path0, (int)getpid());
    if (!bak) {
        prep_writer_abort(w[0]);
        prep_writer_abort(w[1]);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    unlink(bak);
    int had = link(path0, bak) == 0;
    pinas_status s = prep_writer_commit(ctx, w[0]);
    if (s) {
        prep_writer_abort(w[1]);
    } else if ((s = prep_writer_commit(ctx, w[1])) != PINAS_OK) {
        if (had) /* best effort: the previous pair stays a pair */
            (void)!rename(bak, path0);
        else
            unlink(path0);
    }
    unlink(bak);
    free(bak);
    return s;
}

pinas_status pinas_mpc_deal_files(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                                  const pinas_mpc_deal_opts *opts, const char *path0, const char *path1,
                                  const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES], pinas_mpc_prep **p0, pinas_mpc_prep **p1)
{
    *p0 = *p1 = NULL;
    pl_plan pl;
    pinas_status s = deal_plan(ctx, net, p, opts, &pl);
    if (s) return s;
    pinas_mpc_prep *a = NULL, *b = NULL;
    prep_writer *w[2] = {NULL, NULL};
    s = prep_alloc_shell(ctx, &pl, 0, &a);
    if (!s) s = prep_alloc_shell(ctx, &pl, 1, &b);
    pinas_prg *prg = NULL;
    if (!s) s = deal_seeds(ctx, opts, a, &prg);
    if (!s) deal_header(net, p, a, b);
    if (!s) s = prep_writer_open(ctx, a, path0, key, &w[0]);
    if (!s) s = prep_writer_open(ctx, b, path1, key, &w[1]);
    if (!s) s = deal_all(ctx, net, p, &pl, prg, a, b, w);
    pinas_prg_free(prg);
    pl_free(&pl);
    if (!s) s = commit_pair(ctx, w, path0);
    else prep_writer_abort(w[0]), prep_writer_abort(w[1]);
    if (s) {
        pinas_mpc_prep_free(a);
        pinas_mpc_prep_free(b);
        return s;
    }
    *p0 = a;
    *p1 = b;
    return PINAS_OK;
}
