/* Tests for crypto/dcf.c: the DCF against its definition and the sign-select gate (ReLU, DReLU, patch),
 * including edge values and the reduced-bit comparison. */
#define _GNU_SOURCE
#include "pinas_mpc.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static pinas_ctx *ctx;
static pinas_prg *prg;

static uint64_t rnd64(void)
{
    uint64_t v;
    pinas_prg_bytes(prg, &v, 8);
    return v;
}

static void test_dcf_definition(void)
{
    const int ns[] = {1, 5, 16, 63, 64};
    const int ms[] = {1, 2, 3, 5};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ms / sizeof ms[0]; b++) {
            int n = ns[a], m = ms[b];
            uint64_t mask = n == 64 ? ~0ULL : (1ULL << n) - 1;
            size_t ks = pinas_dcf_key_size(n, m);
            uint8_t *k0 = malloc(ks), *k1 = malloc(ks);
            for (int trial = 0; trial < 8; trial++) {
                uint64_t alpha = rnd64() & mask, beta[8];
                for (int j = 0; j < m; j++) beta[j] = rnd64();
                pinas_dcf_gen(prg, n, m, alpha, beta, k0, k1);
                /* points: alpha-1, alpha, alpha+1, 0, max, random */
                uint64_t xs[6] = {(alpha - 1) & mask, alpha, (alpha + 1) & mask, 0, mask, rnd64() & mask};
                for (int q = 0; q < 6; q++) {
                    uint64_t y0[8], y1[8];
                    uint64_t aes = pinas_dcf_eval(0, n, m, k0, 1, &xs[q], y0);
                    pinas_dcf_eval(1, n, m, k1, 1, &xs[q], y1);
                    CU_ASSERT_EQUAL(aes, pinas_dcf_eval_aes_blocks(n, m));
                    for (int j = 0; j < m; j++) CU_ASSERT_EQUAL(y0[j] + y1[j], xs[q] < alpha ? beta[j] : 0);
                }
            }
            free(k0);
            free(k1);
        }
}

/* Shares of x: random split. */
static void share(uint64_t x, uint64_t *a, uint64_t *b)
{
    *a = rnd64();
    *b = x - *a;
}

static void check_gate(int cmp_bits, int k, uint64_t p, int expect_exact)
{
    uint64_t r[16] = {0}, r0[16] = {0}, r1[16] = {0}, rp = 0;
    for (int j = 0; j < k; j++) {
        r[j] = rnd64();
        share(r[j], &r0[j], &r1[j]);
    }
    rp = k == 0 ? rnd64() : r[0];
    if (k > 1)
        for (int j = 1; j < k; j++) rp += r[j];
    size_t ks = pinas_sign_key_size(cmp_bits, k);
    uint8_t *k0 = malloc(ks), *k1 = malloc(ks);
    pinas_sign_gen(prg, cmp_bits, k, rp, r, k0, k1);
    uint64_t phat = p + rp, o0[17], o1[17];
    pinas_sign_eval(0, cmp_bits, k, k0, 1, &phat, k ? r0 : NULL, o0);
    pinas_sign_eval(1, cmp_bits, k, k1, 1, &phat, k ? r1 : NULL, o1);
    uint64_t d = o0[0] + o1[0], want = (int64_t)p >= 0;
    if (expect_exact) {
        CU_ASSERT_EQUAL(d, want);
        if (d != want) fprintf(stderr, "\n p=%lld cmp=%d k=%d: d=%llu\n", (long long)p, cmp_bits, k, (unsigned long long)d);
    } else {
        CU_ASSERT(d == 0 || d == 1);
        if ((int64_t)p >= 0) CU_ASSERT_EQUAL(d, 1); /* the error is one-sided */
    }
    for (int j = 0; j < k; j++) CU_ASSERT_EQUAL(o0[1 + j] + o1[1 + j], d * r[j]);
    free(k0);
    free(k1);
}

static void test_drelu_exact_edges(void)
{
    const uint64_t edges[] = {0, 1, (uint64_t)-1, 2, (uint64_t)-2, (1ULL << 62), (1ULL << 63) - 1, 1ULL << 63,
                              (1ULL << 63) + 1, (uint64_t)-(1LL << 40), 1ULL << 40};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        for (int rep = 0; rep < 20; rep++) {
            check_gate(64, 0, edges[i], 1);
            check_gate(64, 1, edges[i], 1);
        }
    for (int rep = 0; rep < 2000; rep++) check_gate(64, 1, rnd64(), 1);
}

static void test_patch_gate(void)
{
    for (int k = 2; k <= 16; k += 7)
        for (int rep = 0; rep < 200; rep++) {
            uint64_t p = rep % 3 == 0 ? rnd64() : (uint64_t)((int64_t)(rnd64() % 2001) - 1000);
            check_gate(64, k, p, 1);
        }
}

/* Reduced bits: exact for p outside [-2^(64-n), 0) and [2^63 - 2^(64-n), 2^63) (the second band lies far
 * outside the fixed-point range, so random p are drawn below 2^62 in magnitude); in the first band d
 * may be 1 (never 0 for p >= 0). */
static void test_reduced_bits(void)
{
    const int bits[] = {8, 20, 40, 52};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
        int n = bits[b];
        int64_t lim = (int64_t)1 << (64 - n);
        int wrong = 0;
        for (int rep = 0; rep < 400; rep++) {
            int64_t p = (int64_t)rnd64() >> 2;
            if (rep % 2) p = (int64_t)(rnd64() % (uint64_t)(4 * lim)) - 2 * lim; /* near zero */
            int exact = !(p >= -lim && p < 0);
            check_gate(n, 1, (uint64_t)p, exact);
            (void)wrong;
        }
        for (int rep = 0; rep < 50; rep++) { /* values just outside the band are exact */
            check_gate(n, 1, (uint64_t)(-lim - 1 - (int64_t)(rnd64() % 1000)), 1);
            check_gate(n, 1, rnd64() % 1000, 1);
        }
    }
}

static void test_batch_eval_matches_single(void)
{
    int cmp = 64, k = 1;
    size_t ks = pinas_sign_key_size(cmp, k), n = 1500;
    uint8_t *k0 = malloc(ks * n), *k1 = malloc(ks * n);
    uint64_t *r = malloc(8 * n), *r0 = malloc(8 * n), *r1 = malloc(8 * n), *x = malloc(8 * n), *ph = malloc(8 * n);
    uint64_t *o0 = malloc(16 * n), *o1 = malloc(16 * n);
    for (size_t i = 0; i < n; i++) {
        r[i] = rnd64();
        share(r[i], &r0[i], &r1[i]);
        x[i] = (uint64_t)((int64_t)(rnd64() % 200001) - 100000);
        pinas_sign_gen(prg, cmp, k, r[i], &r[i], k0 + i * ks, k1 + i * ks);
        ph[i] = x[i] + r[i];
    }
    uint64_t a0 = pinas_sign_eval(0, cmp, k, k0, n, ph, r0, o0);
    pinas_sign_eval(1, cmp, k, k1, n, ph, r1, o1);
    CU_ASSERT_EQUAL(a0, n * pinas_dcf_eval_aes_blocks(63, 2));
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = o0[2 * i] + o1[2 * i];
        /* ReLU: d * phat - d*r */
        uint64_t y = d * ph[i] - (o0[2 * i + 1] + o1[2 * i + 1]);
        uint64_t want = (int64_t)x[i] > 0 ? x[i] : 0;
        if (y != want) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(k0), free(k1), free(r), free(r0), free(r1), free(x), free(ph), free(o0), free(o1);
}

int main(void)
{
    ctx = pinas_ctx_create();
    if (pinas_prg_create_os(ctx, &prg) != PINAS_OK) return 1;
    tu_test t[] = {{"dcf equals its definition", test_dcf_definition},
                   {"drelu/relu gate exact at edges", test_drelu_exact_edges},
                   {"patch gate (k payload values)", test_patch_gate},
                   {"reduced-bit comparison: one-sided band error", test_reduced_bits},
                   {"batched evaluation = relu", test_batch_eval_matches_single}};
    int rc = tu_run("crypto_fss", t, 5);
    pinas_prg_free(prg);
    pinas_ctx_free(ctx);
    return rc;
}
