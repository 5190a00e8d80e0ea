/* Tests for the runtime's threads (pinas_mpc_params.threads: crypto/ring.c, dealer.c, party.c): every
 * output is bit-identical for every thread count -- the ring GEMM and truncation, the dealer's material
 * (in memory and streamed to files), a private inference's logits and counters. */
#define _GNU_SOURCE
#include "mpc_internal.h"
#include "testutil.h"
#include "testutil_net.h"

#include <stdlib.h>
#include <string.h>

static pinas_ctx *ctx;
static const uint8_t SEED[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t KEY[PINAS_MPC_DEALER_KEY_BYTES] = {42, 1, 2, 3};

static void fill(uint64_t *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = seed ^ (seed >> 29);
    }
}

/* Products large enough to be split (by rows and by columns), small weights too, and truncation of
 * both parties' shares: equal to one thread's, byte for byte, at 2, 3 and 7 threads. */
static void test_ring_kernels(void)
{
    const int shapes[][3] = {{96, 1000, 75}, {7, 3000, 33}, {513, 40, 200}};
    for (int sh = 0; sh < 3; sh++) {
        int m = shapes[sh][0], n = shapes[sh][1], k = shapes[sh][2];
        uint64_t *A = malloc(8 * (size_t)m * k), *As = malloc(8 * (size_t)m * k), *B = malloc(8 * (size_t)k * n);
        uint64_t *C1 = malloc(8 * (size_t)m * n), *Ct = malloc(8 * (size_t)m * n);
        fill(A, (size_t)m * k, 1 + sh);
        fill(B, (size_t)k * n, 2 + sh);
        for (size_t q = 0; q < (size_t)m * k; q++) As[q] = (uint64_t)((int64_t)(A[q] % 2001) - 1000); /* |a| < 2^10 */
        for (int acc = 0; acc < 2; acc++) {
            fill(C1, (size_t)m * n, 3);
            pinas_ring_gemm_mt(1, m, n, k, A, k, B, n, C1, n, acc);
            for (int t = 2; t <= 7; t += t == 3 ? 4 : 1) {
                fill(Ct, (size_t)m * n, 3);
                pinas_ring_gemm_mt(t, m, n, k, A, k, B, n, Ct, n, acc);
                CU_ASSERT(memcmp(C1, Ct, 8 * (size_t)m * n) == 0);
            }
            fill(C1, (size_t)m * n, 4);
            pinas_ring_gemm_small_a_mt(1, m, n, k, As, k, 11, B, n, C1, n, acc);
            fill(Ct, (size_t)m * n, 4);
            pinas_ring_gemm_small_a_mt(3, m, n, k, As, k, 11, B, n, Ct, n, acc);
            CU_ASSERT(memcmp(C1, Ct, 8 * (size_t)m * n) == 0);
        }
        /* and the product is right: one entry against the definition */
        uint64_t want = 0;
        for (int p = 0; p < k; p++) want += A[(size_t)(m - 1) * k + p] * B[(size_t)p * n + n - 1];
        pinas_ring_gemm_mt(4, m, n, k, A, k, B, n, Ct, n, 0);
        CU_ASSERT_EQUAL(Ct[(size_t)(m - 1) * n + n - 1], want);
        free(A), free(As), free(B), free(C1), free(Ct);
    }
    size_t n = 300001;
    uint64_t *v = malloc(8 * n), *w = malloc(8 * n);
    for (int party = 0; party < 2; party++) {
        fill(v, n, 5);
        memcpy(w, v, 8 * n);
        pinas_ring_trunc_share(v, n, 16, party);
        pinas_ring_trunc_share_mt(w, n, 16, party, 3);
        CU_ASSERT(memcmp(v, w, 8 * n) == 0);
    }
    free(v), free(w);
}

/* A small ResNet with every operator kind the dealer makes material for (conv, relu, poly, patch
 * ReLU, maxpool, linear), batch 2. */
static pinas_model *mixed_model(void)
{
    static const char *const acts[] = {"relu", "poly", "patch_relu:2x2"};
    static const char *const pools[] = {"maxpool"};
    pinas_net *space = tu_resnet(ctx, 8, 8, NULL, 16, 10, acts, 3, pools, 1);
    pinas_net *net = pinas_net_clone(space);
    const pinas_cand_kind cyc[] = {PINAS_CAND_RELU, PINAS_CAND_POLY, PINAS_CAND_PATCH_RELU};
    int k = 0;
    for (int i = 0; i < pinas_net_n_nodes(net); i++) {
        const pinas_node *nd = pinas_net_node(net, i);
        if (!pinas_node_is_slot(nd)) continue;
        int c = pinas_node_find_cand(nd, nd->op == PINAS_OP_POOL ? PINAS_CAND_MAXPOOL : cyc[k++ % 3]);
        CU_ASSERT_FATAL(pinas_net_decide(ctx, net, i, c < 0 ? 0 : c) == PINAS_OK);
    }
    pinas_model *m = NULL;
    CU_ASSERT_FATAL(pinas_model_random(ctx, net, 21, &m) == PINAS_OK);
    pinas_net_free(net);
    pinas_net_free(space);
    return m;
}

/* The dealer with a fixed seed: the same bytes for both parties at 1 and 2 threads; a different seed
 * gives different bytes (so the comparison can fail); the streaming dealer writes exactly the files
 * that saving the in-memory material writes. */
static void test_dealer_bit_identical(void)
{
    pinas_model *m = mixed_model();
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 2;
    pinas_mpc_deal_opts o = {.seed = SEED};
    pinas_mpc_prep *a[2][2] = {{NULL}};
    for (int t = 0; t < 2; t++) {
        p.threads = t + 1;
        CU_ASSERT_FATAL(pinas_mpc_deal(ctx, m->net, &p, &o, &a[t][0], &a[t][1]) == PINAS_OK);
    }
    for (int q = 0; q < 2; q++) {
        CU_ASSERT_EQUAL_FATAL(a[0][q]->data_len, a[1][q]->data_len);
        CU_ASSERT(a[0][q]->data_len > 100000);
        CU_ASSERT(memcmp(a[0][q]->data, a[1][q]->data, a[0][q]->data_len) == 0);
        CU_ASSERT(memcmp(a[0][q]->session, a[1][q]->session, 16) == 0);
        CU_ASSERT_EQUAL(a[0][q]->mask_id, a[1][q]->mask_id);
        CU_ASSERT(pinas_mpc_counts_equal(&a[0][q]->dealer.offline, &a[1][q]->dealer.offline));
    }
    uint8_t other[32];
    memcpy(other, SEED, 32);
    other[0] ^= 1;
    pinas_mpc_deal_opts o2 = {.seed = other};
    pinas_mpc_prep *b0 = NULL, *b1 = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, m->net, &p, &o2, &b0, &b1) == PINAS_OK);
    CU_ASSERT(memcmp(a[0][1]->data, b1->data, a[0][1]->data_len) != 0);
    pinas_mpc_prep_free(b0);
    pinas_mpc_prep_free(b1);

    /* streamed (2 threads) = saved from memory (1 thread), byte for byte */
    char *f[4];
    const char *names[4] = {"mem0.prep", "mem1.prep", "str0.prep", "str1.prep"};
    for (int i = 0; i < 4; i++) f[i] = pinas_path_join(tu_tmpdir(), names[i]);
    CU_ASSERT_FATAL(pinas_mpc_prep_save(ctx, a[0][0], f[0], KEY) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_prep_save(ctx, a[0][1], f[1], KEY) == PINAS_OK);
    pinas_mpc_prep *s0 = NULL, *s1 = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal_files(ctx, m->net, &p, &o, f[2], f[3], KEY, &s0, &s1) == PINAS_OK);
    CU_ASSERT(s0->data == NULL && s1->data == NULL); /* the streaming dealer keeps no material */
    for (int q = 0; q < 2; q++) {
        size_t l1 = 0, l2 = 0;
        char *x = NULL, *y = NULL;
        CU_ASSERT_FATAL(pinas_file_read(ctx, f[q], &x, &l1) == PINAS_OK);
        CU_ASSERT_FATAL(pinas_file_read(ctx, f[2 + q], &y, &l2) == PINAS_OK);
        CU_ASSERT(l1 == l2 && l1 > a[0][q]->data_len && memcmp(x, y, l1) == 0);
        free(x), free(y);
    }
    for (int i = 0; i < 4; i++) free(f[i]);
    pinas_mpc_prep_free(s0);
    pinas_mpc_prep_free(s1);
    for (int t = 0; t < 2; t++)
        for (int q = 0; q < 2; q++) pinas_mpc_prep_free(a[t][q]);
    pinas_model_free(m);
}

/* A private inference on the same seeded material at 1, 2 and 3 threads: the same logits (bit for
 * bit) and the same counters in every row. */
static void test_inference_bit_identical(void)
{
    pinas_model *m = mixed_model();
    const pinas_node *in = pinas_net_node(m->net, 0);
    int nc = pinas_net_num_classes(m->net), batch = 2;
    size_t nin = (size_t)batch * in->c * in->h * in->w;
    float *x = malloc(sizeof(float) * nin), *y[3];
    uint64_t r = 77;
    for (size_t q = 0; q < nin; q++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        x[q] = (float)((double)(r >> 11) / 9007199254740992.0 * 2 - 1);
    }
    pinas_mpc_deal_opts o = {.seed = SEED};
    pinas_mpc_report *rep[3] = {NULL};
    for (int t = 0; t < 3; t++) {
        pinas_mpc_params p;
        pinas_mpc_params_default(&p);
        p.threads = t + 1;
        y[t] = malloc(sizeof(float) * (size_t)batch * nc);
        pinas_status s = pinas_mpc_infer_loopback(ctx, m, x, batch, &p, &o, y[t], &rep[t]);
        if (s) fprintf(stderr, "\n  infer at %d threads: %s\n", t + 1, pinas_errmsg(ctx));
        CU_ASSERT_FATAL(s == PINAS_OK);
        CU_ASSERT_EQUAL(rep[t]->threads, t + 1);
    }
    for (int t = 1; t < 3; t++) {
        CU_ASSERT(memcmp(y[0], y[t], sizeof(float) * (size_t)batch * nc) == 0);
        CU_ASSERT_EQUAL_FATAL(rep[0]->n_layers, rep[t]->n_layers);
        for (int l = 0; l < rep[0]->n_layers; l++) {
            const pinas_mpc_cost *c0 = &rep[0]->layers[l].measured, *ct = &rep[t]->layers[l].measured;
            CU_ASSERT(pinas_mpc_counts_equal(&c0->online, &ct->online));
            CU_ASSERT(pinas_mpc_counts_equal(&c0->offline, &ct->offline));
            CU_ASSERT(pinas_mpc_counts_equal(&c0->setup, &ct->setup));
        }
        CU_ASSERT(pinas_mpc_counts_equal(&rep[0]->totals.online, &rep[t]->totals.online));
    }
    /* the logits are the model's (not some constant): some differ between the two samples */
    int differ = 0;
    for (int c = 0; c < nc; c++) differ |= y[0][c] != y[0][nc + c];
    CU_ASSERT(differ);
    for (int t = 0; t < 3; t++) {
        free(y[t]);
        pinas_mpc_report_free(rep[t]);
    }
    free(x);
    pinas_model_free(m);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"ring GEMM and truncation: any thread count, same bytes", test_ring_kernels},
                   {"dealer: seeded, same bytes at 1 and 2 threads, streamed = saved", test_dealer_bit_identical},
                   {"private inference: same logits and counters at 1, 2, 3 threads", test_inference_bit_identical}};
    int rc = tu_run("crypto_threads", t, 3);
    pinas_ctx_free(ctx);
    return rc;
}
