/* The dealer: input-independent preprocessing for both parties (Beaver matrix triples, square pairs, FSS keys). */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

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
        pinas_ring_gemm(pn->M, (int)pn->N, pn->K, A + (size_t)g * pn->M * K, pn->K, cols, (int)pn->N, Cg, (int)pn->N, 0);
    }
    free(cols);
    OPENSSL_cleanse(A, sizeof(uint64_t) * mk);
    free(A);
    for (size_t q = 0; q < mn; q++) C1[q] -= C0[q];
    *macs = (uint64_t)mk * (uint64_t)pn->N;
    return PINAS_OK;
}

/* n sign-select gates with k = 1 and r_1 = r_p (ReLU, and each maxpool round): shares of the masks r
 * at m0, m1, the keys after them. *aes_gen += the fixed-key AES blocks of key generation. */
static pinas_status deal_relu(pinas_ctx *ctx, const char *id, pinas_prg *prg, int cmp_bits, size_t n, uint8_t *m0,
                              uint8_t *m1, uint64_t *aes_gen)
{
    uint64_t *R = malloc(8 * (n ? n : 1));
    if (!R) return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", id);
    rand_u64(prg, R, n);
    split(prg, R, n, (uint64_t *)(void *)m0, (uint64_t *)(void *)m1);
    pinas_sign_gen_batch(prg, cmp_bits, 1, n, R, R, m0 + 8 * n, m1 + 8 * n);
    *aes_gen += n * pinas_sign_gen_aes_blocks(cmp_bits, 1);
    OPENSSL_cleanse(R, 8 * n);
    free(R);
    return PINAS_OK;
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

/* One gate per patch on the patch sum of the element masks, with the element masks as payload. */
static pinas_status deal_patch(pinas_ctx *ctx, const pinas_net *net, int i, const pl_node *pn, int batch, pinas_prg *prg,
                               uint8_t *m0, uint8_t *m1, uint64_t *aes_gen)
{
    size_t ni = (size_t)pn->n_in, gates = (size_t)pn->gates, k = (size_t)pn->k;
    uint64_t *R = malloc(8 * ni), *rp = calloc(gates, 8), *rr = calloc(gates * k, 8);
    int64_t *idx = malloc(sizeof(int64_t) * gates * k);
    if (!R || !rp || !rr || !idx) {
        free(R), free(rp), free(rr), free(idx);
        return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", pinas_net_node(net, i)->id);
    }
    rand_u64(prg, R, ni);
    split(prg, R, ni, (uint64_t *)(void *)m0, (uint64_t *)(void *)m1);
    patch_index(net, i, pn, batch, idx);
    for (size_t g = 0; g < gates; g++)
        for (size_t j = 0; j < k; j++) {
            int64_t e = idx[g * k + j];
            if (e < 0) continue;
            rr[g * k + j] = R[e];
            rp[g] += R[e];
        }
    pinas_sign_gen_batch(prg, pn->cmp_bits, pn->k, gates, rp, rr, m0 + 8 * ni, m1 + 8 * ni);
    *aes_gen = gates * pinas_sign_gen_aes_blocks(pn->cmp_bits, pn->k);
    OPENSSL_cleanse(R, 8 * ni);
    OPENSSL_cleanse(rr, 8 * gates * k);
    free(R), free(rp), free(rr), free(idx);
    return PINAS_OK;
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
    case PL_RELU: s = deal_relu(ctx, id, prg, pn->cmp_bits, (size_t)pn->n_out, m0, m1, &aes_gen); break;
    case PL_POLY: s = deal_poly(ctx, id, prg, (size_t)pn->n_out, u0, u1, &macs); break;
    case PL_PATCH: s = deal_patch(ctx, net, i, pn, batch, prg, m0, m1, &aes_gen); break;
    case PL_MAXPOOL: {
        size_t off = 0, ks = pinas_sign_key_size(pn->cmp_bits, 1);
        for (int r = 0; r < pn->rounds && !s; r++) {
            size_t P = (size_t)pn->pairs[r];
            s = deal_relu(ctx, id, prg, pn->cmp_bits, P, m0 + off, m1 + off, &aes_gen);
            off += P * (8 + ks);
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

/* Per-node comparison widths: p->cmp_bits, or the layer_bits entry naming the node. */
static pinas_status node_widths(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                                const pinas_mpc_deal_opts *o, int *nb)
{
    for (int i = 0; i < pinas_net_n_nodes(net); i++) nb[i] = p->cmp_bits;
    for (int j = 0; o && j < o->n_layer_bits; j++) {
        const pinas_mpc_layer_bits *lb = &o->layer_bits[j];
        int i = pinas_net_find(net, lb->id);
        if (i < 0) return pinas_error(ctx, PINAS_EINVAL, "cmp_bits table: no node \"%s\" in the net", lb->id);
        if (pinas_mpc_cmp_bits_check(ctx, "cmp_bits", lb->cmp_bits))
            return pinas_error_prefix(ctx, PINAS_EINVAL, "cmp_bits table: node \"%s\"", lb->id);
        nb[i] = lb->cmp_bits;
    }
    return PINAS_OK;
}

/* Session id, weight mask and both parties' material, node by node, into a and b. */
static pinas_status deal_all(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, const pl_plan *pl,
                             const pinas_mpc_mask *mask, pinas_mpc_prep *a, pinas_mpc_prep *b)
{
    pinas_prg *prg = NULL, *mprg = NULL;
    pinas_status s = pinas_prg_create_os(ctx, &prg);
    if (!s) s = pinas_os_random(ctx, a->session, 16);
    if (!s) {
        if (mask)
            memcpy(a->mask_seed, mask->seed, 16);
        else
            s = pinas_os_random(ctx, a->mask_seed, 16);
    }
    if (!s) s = pinas_prg_create(ctx, a->mask_seed, &mprg);
    if (!s) {
        memcpy(b->session, a->session, 16);
        a->hash = b->hash = pinas_mpc_arch_hash(net, p);
        a->mask_id = b->mask_id = mask_id_of(a->mask_seed, a->hash);
        a->cmp_bits = b->cmp_bits = p->cmp_bits;
        memset(&a->dealer, 0, sizeof a->dealer);
        for (int i = 0; i < pl->n_nodes && !s; i++) {
            pinas_mpc_cost w;
            s = deal_node(ctx, net, i, &pl->nodes[i], p->batch, prg, mprg, prep_node(a, i), prep_node(b, i), &w);
            if (!s) {
                a->node_dealer[i] = b->node_dealer[i] = w;
                pinas_mpc_cost_add(&a->dealer, &w);
            }
        }
        b->dealer = a->dealer;
    }
    pinas_prg_free(prg);
    pinas_prg_free(mprg);
    return s;
}

pinas_status pinas_mpc_deal(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                            const pinas_mpc_deal_opts *opts, pinas_mpc_prep **p0, pinas_mpc_prep **p1)
{
    *p0 = *p1 = NULL;
    pinas_status s = pinas_mpc_params_check(ctx, p);
    if (s) return s;
    if (pinas_net_n_open(net) > 0)
        return pinas_error(ctx, PINAS_EINVAL, "net %s has %d open slots; the runtime needs a decided architecture",
                           pinas_net_name(net), pinas_net_n_open(net));
    const pinas_mpc_mask *mask = opts ? opts->mask : NULL;
    if (mask && mask->arch_hash != pinas_mpc_arch_hash(net, p))
        return pinas_error(ctx, PINAS_EINVAL, "weight mask %s was made for another model or other fixed-point parameters",
                           mask->path);
    int *nb = malloc(sizeof(int) * (size_t)pinas_net_n_nodes(net));
    if (!nb) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pl_plan pl;
    s = node_widths(ctx, net, p, opts, nb);
    if (!s) s = pl_build(ctx, net, p, nb, -1, -1, &pl);
    free(nb);
    if (s) return s;
    pinas_mpc_prep *a = NULL, *b = NULL;
    double t0 = pinas_now();
    s = prep_alloc(ctx, &pl, 0, &a);
    if (!s) s = prep_alloc(ctx, &pl, 1, &b);
    if (!s) s = deal_all(ctx, net, p, &pl, mask, a, b);
    if (!s) a->gen_s = b->gen_s = pinas_now() - t0;
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
