/* The dealer: input-independent preprocessing for both parties (Beaver matrix triples, square pairs, FSS keys). */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static void rand_u64(pinas_prg *prg, uint64_t *v, size_t n) { pinas_prg_bytes(prg, v, 8 * n); }

/* Writes r into a fresh random sharing: s0 (party 0) and s1 = r - s0 (party 1). */
static void split(pinas_prg *prg, const uint64_t *r, size_t n, uint64_t *s0, uint64_t *s1)
{
    rand_u64(prg, s0, n);
    for (size_t i = 0; i < n; i++) s1[i] = r[i] - s0[i];
}

pinas_status deal_node(pinas_ctx *ctx, const pinas_net *net, int i, const pl_node *pn, int batch, pinas_prg *prg,
                       pinas_prg *mask, uint8_t *m0, uint8_t *m1, pinas_mpc_cost *work)
{
    const pinas_node *node = pinas_net_node(net, i);
    uint64_t prg0 = pinas_prg_blocks(prg) + pinas_prg_blocks(mask), aes_gen = 0, macs = 0;
    uint64_t *u0 = (uint64_t *)(void *)m0, *u1 = (uint64_t *)(void *)m1;
    size_t n = (size_t)pn->n_out;
    switch (pn->kind) {
    case PL_MATMUL: {
        size_t mk = (size_t)pn->groups * pn->M * pn->K, mn = (size_t)pn->groups * pn->M * pn->N, K = (size_t)pn->K;
        uint64_t *C0 = u0, *B = u1, *C1 = u1 + pn->n_in;
        uint64_t *A = malloc(sizeof(uint64_t) * (mk ? mk : 1)), *cols = malloc(sizeof(uint64_t) * K * (size_t)pn->N);
        if (!A || !cols) {
            free(A);
            free(cols);
            return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory (im2col)", node->id);
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
        macs = (uint64_t)mk * (uint64_t)pn->N;
        break;
    }
    case PL_RELU: {
        uint64_t *R = malloc(8 * (n ? n : 1));
        if (!R) return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", node->id);
        rand_u64(prg, R, n);
        split(prg, R, n, u0, u1);
        pinas_sign_gen_batch(prg, pn->cmp_bits, 1, n, R, R, m0 + 8 * n, m1 + 8 * n);
        aes_gen = n * pinas_sign_gen_aes_blocks(pn->cmp_bits, 1);
        OPENSSL_cleanse(R, 8 * n);
        free(R);
        break;
    }
    case PL_POLY: {
        uint64_t *R = malloc(8 * (n ? n : 1));
        if (!R) return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", node->id);
        rand_u64(prg, R, n);
        split(prg, R, n, u0, u1);
        for (size_t q = 0; q < n; q++) R[q] *= R[q];
        split(prg, R, n, u0 + n, u1 + n);
        macs = n;
        OPENSSL_cleanse(R, 8 * n);
        free(R);
        break;
    }
    case PL_PATCH: {
        size_t ni = (size_t)pn->n_in, gates = (size_t)pn->gates, k = (size_t)pn->k;
        uint64_t *R = malloc(8 * ni), *rp = calloc(gates, 8), *rr = calloc(gates * k, 8);
        int64_t *idx = malloc(sizeof(int64_t) * gates * k);
        if (!R || !rp || !rr || !idx) {
            free(R), free(rp), free(rr), free(idx);
            return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", node->id);
        }
        rand_u64(prg, R, ni);
        split(prg, R, ni, u0, u1);
        patch_index(net, i, pn, batch, idx);
        for (size_t g = 0; g < gates; g++)
            for (size_t j = 0; j < k; j++) {
                int64_t e = idx[g * k + j];
                if (e < 0) continue;
                rr[g * k + j] = R[e];
                rp[g] += R[e];
            }
        pinas_sign_gen_batch(prg, pn->cmp_bits, pn->k, gates, rp, rr, m0 + 8 * ni, m1 + 8 * ni);
        aes_gen = gates * pinas_sign_gen_aes_blocks(pn->cmp_bits, pn->k);
        OPENSSL_cleanse(R, 8 * ni);
        OPENSSL_cleanse(rr, 8 * gates * k);
        free(R), free(rp), free(rr), free(idx);
        break;
    }
    case PL_MAXPOOL: {
        size_t off = 0, ks = pinas_sign_key_size(pn->cmp_bits, 1);
        for (int r = 0; r < pn->rounds; r++) {
            size_t P = (size_t)pn->pairs[r];
            uint64_t *R = malloc(8 * (P ? P : 1));
            if (!R) return pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", node->id);
            rand_u64(prg, R, P);
            split(prg, R, P, (uint64_t *)(void *)(m0 + off), (uint64_t *)(void *)(m1 + off));
            pinas_sign_gen_batch(prg, pn->cmp_bits, 1, P, R, R, m0 + off + 8 * P, m1 + off + 8 * P);
            aes_gen += P * pinas_sign_gen_aes_blocks(pn->cmp_bits, 1);
            off += P * (8 + ks);
            OPENSSL_cleanse(R, 8 * P);
            free(R);
        }
        break;
    }
    default: break;
    }
    if (work) {
        memset(work, 0, sizeof *work);
        work->offline.aes_blocks[0] = pinas_prg_blocks(prg) + pinas_prg_blocks(mask) - prg0 + aes_gen;
        work->offline.ring_macs[0] = macs;
    }
    return PINAS_OK;
}

#include <openssl/evp.h>

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

pinas_status pinas_mpc_deal(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                            const pinas_mpc_layer_bits *bits, int n_bits, pinas_mpc_prep **p0, pinas_mpc_prep **p1)
{
    return pinas_mpc_deal_masked(ctx, net, p, bits, n_bits, NULL, p0, p1);
}

pinas_status pinas_mpc_deal_masked(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                                   const pinas_mpc_layer_bits *bits, int n_bits, const uint8_t mask_seed[16],
                                   pinas_mpc_prep **p0, pinas_mpc_prep **p1)
{
    *p0 = *p1 = NULL;
    pinas_status s = pinas_mpc_params_check(ctx, p);
    if (s) return s;
    if (pinas_net_n_open(net) > 0)
        return pinas_error(ctx, PINAS_EINVAL, "net %s has %d open slots; the runtime needs a decided architecture",
                           pinas_net_name(net), pinas_net_n_open(net));
    int nn = pinas_net_n_nodes(net);
    int *nb = malloc(sizeof(int) * (size_t)nn);
    if (!nb) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int i = 0; i < nn; i++) nb[i] = p->cmp_bits;
    for (int j = 0; j < n_bits; j++) {
        int i = pinas_net_find(net, bits[j].id);
        if (i < 0 || bits[j].cmp_bits < 8 || bits[j].cmp_bits > 64) {
            free(nb);
            return pinas_error(ctx, PINAS_EINVAL, i < 0 ? "cmp_bits table: no node \"%s\" in the net"
                                                        : "cmp_bits table: node \"%s\": bits must be in [8, 64]",
                               bits[j].id);
        }
        nb[i] = bits[j].cmp_bits;
    }
    pl_plan pl;
    s = pl_build(ctx, net, p, nb, -1, -1, &pl);
    free(nb);
    if (s) return s;
    pinas_mpc_prep *a = NULL, *b = NULL;
    pinas_prg *prg = NULL, *mprg = NULL;
    double t0 = pinas_now();
    s = prep_alloc(ctx, &pl, 0, &a);
    if (!s) s = prep_alloc(ctx, &pl, 1, &b);
    if (!s) s = pinas_prg_create_os(ctx, &prg);
    if (!s) s = pinas_os_random(ctx, a->session, 16);
    if (!s) {
        if (mask_seed)
            memcpy(a->mask_seed, mask_seed, 16);
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
        for (int i = 0; i < nn && !s; i++) {
            pinas_mpc_cost w;
            s = deal_node(ctx, net, i, &pl.nodes[i], p->batch, prg, mprg, prep_node(a, i), prep_node(b, i), &w);
            if (!s) {
                a->node_dealer[i] = b->node_dealer[i] = w;
                pinas_mpc_cost_add(&a->dealer, &w);
            }
        }
        a->gen_s = b->gen_s = pinas_now() - t0;
        b->dealer = a->dealer;
    }
    pinas_prg_free(prg);
    pinas_prg_free(mprg);
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
