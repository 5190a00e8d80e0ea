/* Tests for E[latency] (nas/latency_loss.c): its value, its gradient against the analytic softmax
 * gradient and finite differences, normalised (Gumbel-softmax) weights, and its errors; fed the LUT's
 * plain arrays (pinas_cost_lut_get_arrays). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nas_latency.h"
#include "pinas_cost.h"
#include "testutil_cost.h"

static pinas_ctx *ctx;

static pinas_cost_hw *cpu_profile(void) { return tu_cpu_profile(ctx); }

static pinas_net *space(void) { return tu_r20_all_cands(ctx); }

/* E[latency] = fixed + sum_k softmax(alpha_k) . LUT_k, and its gradient against finite differences. */
static void test_expected_latency_gradient(void)
{
    pinas_net *sp = space();
    pinas_cost_hw *hw = cpu_profile();
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "wan", &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_lut *lut = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, sp, hw, link, &p, &lut), PINAS_OK);
    int ns = pinas_cost_lut_n_slots(lut);
    const pinas_cost_lut_arrays *arr = pinas_cost_lut_get_arrays(lut);
    CU_ASSERT_FATAL(ns >= 2 && ns <= 64);
    pt_tensor *alphas[64];
    int nodes[64];
    float vals[64][PINAS_MAX_CANDS];
    uint64_t st = 99;
    for (int k = 0; k < ns; k++) { /* alphas[k] belongs to slot ns-1-k: any order works */
        int nc = pinas_cost_lut_n_cands(lut, ns - 1 - k);
        for (int j = 0; j < nc; j++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            vals[k][j] = (float)((double)(st >> 11) / 9007199254740992.0 * 2 - 1);
        }
        int64_t shape[1] = {nc};
        CU_ASSERT_EQUAL_FATAL(pt_from_f32(vals[k], 1, shape, &alphas[k]), 0);
        CU_ASSERT_EQUAL_FATAL(pt_set_requires_grad(alphas[k], 1), 0);
        nodes[k] = pinas_cost_lut_slot_node(lut, ns - 1 - k);
    }
    double want = pinas_cost_lut_fixed_ms(lut);
    double grad_want[64][PINAS_MAX_CANDS];
    for (int k = 0; k < ns; k++) {
        int slot = ns - 1 - k, nc = pinas_cost_lut_n_cands(lut, slot);
        double mx = -1e9, z = 0, w[PINAS_MAX_CANDS], e = 0;
        for (int j = 0; j < nc; j++) mx = fmax(mx, vals[k][j]);
        for (int j = 0; j < nc; j++) z += w[j] = exp(vals[k][j] - mx);
        for (int j = 0; j < nc; j++) e += (w[j] /= z) * pinas_cost_lut_cand_ms(lut, slot, j);
        for (int j = 0; j < nc; j++) grad_want[k][j] = w[j] * (pinas_cost_lut_cand_ms(lut, slot, j) - e); /* d softmax . v */
        want += e;
    }
    pt_tensor *E = NULL;
    pinas_status st0 = pinas_nas_expected_latency(ctx, arr, ns, alphas, nodes, 0, &E);
    if (st0) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(st0, PINAS_OK);
    double got;
    CU_ASSERT_EQUAL(pt_item(E, &got), 0);
    CU_ASSERT_DOUBLE_EQUAL(got, want, want * 1e-5);
    CU_ASSERT_EQUAL_FATAL(pt_backward(E), 0);
    for (int k = 0; k < ns; k++) {
        pt_tensor *g = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_grad(alphas[k], &g), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        int nc = pinas_cost_lut_n_cands(lut, ns - 1 - k);
        float gv[PINAS_MAX_CANDS];
        CU_ASSERT_EQUAL(pt_to_f32(g, gv, (size_t)nc), 0);
        for (int j = 0; j < nc; j++) {
            /* analytic */
            CU_ASSERT_DOUBLE_EQUAL(gv[j], grad_want[k][j], fabs(grad_want[k][j]) * 1e-4 + 1e-6);
            /* central finite difference of the function itself */
            const double h = 5e-2;
            double f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                float saved = vals[k][j];
                vals[k][j] = saved + (float)(sgn ? -h : h);
                int64_t shape[1] = {nc};
                pt_tensor *tmp = NULL, *Et = NULL;
                CU_ASSERT_EQUAL_FATAL(pt_from_f32(vals[k], 1, shape, &tmp), 0);
                pt_tensor *swapped = alphas[k];
                alphas[k] = tmp;
                CU_ASSERT_EQUAL_FATAL(pinas_nas_expected_latency(ctx, arr, ns, alphas, nodes, 0, &Et), PINAS_OK);
                CU_ASSERT_EQUAL(pt_item(Et, &f[sgn]), 0);
                alphas[k] = swapped;
                vals[k][j] = saved;
                pt_free(tmp);
                pt_free(Et);
            }
            double fd = (f[0] - f[1]) / (2 * h);
            /* E is a float32 sum: each evaluation is off by up to a few ulps of E, divided by 2h. */
            double tol = 0.03 * fabs(gv[j]) + 8 * 1.2e-7 * want / (2 * h) + 1e-4;
            if (fabs(fd - gv[j]) > tol) {
                fprintf(stderr, "\n  slot %d cand %d: autograd %g, finite difference %g\n", ns - 1 - k, j, gv[j], fd);
                CU_FAIL("gradient differs from finite differences");
            }
        }
        pt_free(g);
    }
    pt_free(E);

    /* Already-normalised weights (e.g. Gumbel-softmax) give the same value when they are the softmax. */
    pt_tensor *probs[64];
    for (int k = 0; k < ns; k++) CU_ASSERT_EQUAL_FATAL(pt_softmax(alphas[k], 0, &probs[k]), 0);
    CU_ASSERT_EQUAL_FATAL(pinas_nas_expected_latency(ctx, arr, ns, probs, nodes, 1, &E), PINAS_OK);
    CU_ASSERT_EQUAL(pt_item(E, &got), 0);
    CU_ASSERT_DOUBLE_EQUAL(got, want, want * 1e-5);
    pt_free(E);
    /* Hard Gumbel samples are one-hot: E equals the LUT latency of the sampled architecture. */
    int choices[64];
    for (int k = 0; k < ns; k++) {
        pt_tensor *g = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_gumbel_softmax(alphas[k], 1.0, 1, &g), 0);
        int slot = ns - 1 - k, nc = pinas_cost_lut_n_cands(lut, slot);
        float gv[PINAS_MAX_CANDS];
        CU_ASSERT_EQUAL(pt_to_f32(g, gv, (size_t)nc), 0);
        for (int j = 0; j < nc; j++)
            if (gv[j] > 0.5f) choices[slot] = j;
        pt_free(probs[k]);
        probs[k] = g;
    }
    CU_ASSERT_EQUAL_FATAL(pinas_nas_expected_latency(ctx, arr, ns, probs, nodes, 1, &E), PINAS_OK);
    CU_ASSERT_EQUAL(pt_item(E, &got), 0);
    double arch_ms;
    CU_ASSERT_EQUAL(pinas_cost_lut_latency_choices(ctx, lut, choices, &arch_ms), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(got, arch_ms, arch_ms * 1e-5);
    pt_free(E);
    for (int k = 0; k < ns; k++) pt_free(probs[k]);

    /* Errors: a missing slot, a duplicated one, a wrong size. */
    TU_ASSERT_ERR(ctx, pinas_nas_expected_latency(ctx, arr, ns - 1, alphas, nodes, 0, &E), "alpha tensors");
    int dup[64];
    memcpy(dup, nodes, sizeof dup);
    dup[1] = dup[0];
    TU_ASSERT_ERR(ctx, pinas_nas_expected_latency(ctx, arr, ns, alphas, dup, 0, &E), "is given twice");
    pt_tensor *swapped = alphas[0];
    float one = 1;
    int64_t sh1[1] = {1};
    CU_ASSERT_EQUAL_FATAL(pt_from_f32(&one, 1, sh1, &alphas[0]), 0);
    TU_ASSERT_ERR(ctx, pinas_nas_expected_latency(ctx, arr, ns, alphas, nodes, 0, &E), "alpha has 1 entries");
    pt_free(alphas[0]);
    alphas[0] = swapped;
    for (int k = 0; k < ns; k++) pt_free(alphas[k]);
    pinas_cost_lut_free(lut);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(sp);
}

/* PASNet's loss term on ResNet-18 CIFAR (17 gates over relu and poly): with alpha = 0 every gate weighs
 * its two ops 1/2 each: (7,575,968.4 + 16,715.08) / 2 us = 3,796.34174 ms (the hand-worked all-ReLU
 * and all-poly totals of tests/test_latency_model_pasnet.c). */
static void test_expected_latency_pasnet(void)
{
    static const char *const act[] = {"relu", "poly"};
    pinas_net *sp = tu_resnet(ctx, 18, 0, "cifar", 32, 10, act, 2, NULL, 0);
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "pasnet", &hw), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "wan", &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_lut *lut = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, sp, hw, link, &p, &lut), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_n_slots(lut), 17);
    pt_tensor *alphas[17];
    int nodes[17];
    float zero[2] = {0, 0};
    int64_t shape[1] = {2};
    for (int k = 0; k < 17; k++) {
        CU_ASSERT_EQUAL_FATAL(pt_from_f32(zero, 1, shape, &alphas[k]), 0);
        nodes[k] = pinas_cost_lut_slot_node(lut, k);
    }
    pt_tensor *e = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nas_expected_latency(ctx, pinas_cost_lut_get_arrays(lut), 17, alphas, nodes, 0, &e), PINAS_OK);
    double v;
    CU_ASSERT_EQUAL(pt_item(e, &v), 0);
    CU_ASSERT_DOUBLE_EQUAL(v, 3796.34174, 3796.34174 * 1e-6); /* float32 accumulation */
    pt_free(e);
    /* a node that is not an open slot */
    nodes[3] = 1;
    TU_ASSERT_ERR(ctx, pinas_nas_expected_latency(ctx, pinas_cost_lut_get_arrays(lut), 17, alphas, nodes, 0, &e),
                  "alpha 3 belongs to node 1, which is not an open slot of the LUT");
    CU_ASSERT_PTR_NULL(e);
    for (int k = 0; k < 17; k++) pt_free(alphas[k]);
    pinas_cost_lut_free(lut);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(sp);
}
int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    tu_test tests[] = {
        {"E[latency] value and gradient", test_expected_latency_gradient},
        {"E[latency] under the pasnet profile", test_expected_latency_pasnet},
    };
    int rc = tu_run("nas_latency_loss", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
