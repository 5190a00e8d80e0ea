/* Tests for the pasnet profile: PASNet's per-element constants on ResNet-18, values worked out by hand
 * from the per-layer element counts (PASNet-DAC2023, models/gate_tmp.py). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_cost.h"
#include "testutil.h"
#include "testutil_net.h"

static pinas_ctx *ctx;

static pinas_net *resnet18(const char *stem, int hw, const char *const *act, int n_act, const char *const *pool, int n_pool)
{
    return tu_resnet(ctx, 18, 0, stem, hw, hw == 32 ? 10 : 1000, act, n_act, pool, n_pool);
}

static pinas_cost_lut *lut_of(pinas_net *space)
{
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "pasnet", &hw), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "wan", &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_lut *lut = NULL;
    pinas_status s = pinas_cost_lut_build(ctx, space, hw, link, &p, &lut);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    return lut;
}

/* ResNet-18 CIFAR: 17 act gates. N per sample: stem + layer1 = 5 x 64*32*32 = 65536, layer2 = 4 x
 * 128*16*16 = 32768, layer3 = 4 x 256*8*8 = 16384, layer4 = 4 x 512*4*4 = 8192 (557,056 in all).
 *   all-ReLU: 13.6 * 557056 + 17 * 0.4 = 7,575,961.6 + 6.8 = 7,575,968.4 us
 *   all-poly: 0.03 * 557056 + 17 * 0.2 = 16,711.68 + 3.4 = 16,715.08 us
 * The profile reads PASNet's constants as microseconds; the LUT is in ms. */
static void test_resnet18_cifar(void)
{
    const char *act[] = {"relu", "poly"};
    pinas_net *space = resnet18("cifar", 32, act, 2, NULL, 0);
    pinas_cost_lut *lut = lut_of(space);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_n_slots(lut), 17);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_fixed_ms(lut), 0, 0); /* PASNet prices only the gates */
    /* The stem gate: N = 65536. relu 13.6 * 65536 + 0.4 = 891,290.0 us; poly 0.03 * 65536 + 0.2 = 1,966.28 us. */
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, 0, 0), 891.2900, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, 0, 1), 1.96628, 1e-9);
    /* The last gate: N = 8192. relu 111,411.6 us; poly 245.96 us. */
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, 16, 0), 111.4116, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, 16, 1), 0.24596, 1e-9);
    int relu[17], poly[17];
    for (int k = 0; k < 17; k++) relu[k] = 0, poly[k] = 1;
    double ms;
    CU_ASSERT_EQUAL(pinas_cost_lut_latency_choices(ctx, lut, relu, &ms), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(ms, 7575.9684, 1e-7);
    CU_ASSERT_EQUAL(pinas_cost_lut_latency_choices(ctx, lut, poly, &ms), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(ms, 16.71508, 1e-9);

    /* PASNet's loss term (E[latency] with alpha = 0) is checked in tests/test_nas_latency_loss.c. */

    /* A decided net: predict gives the same numbers per node and in total. */
    pinas_net *arch = pinas_net_clone(space);
    for (int k = 0; k < 17; k++) CU_ASSERT_EQUAL(pinas_net_decide(ctx, arch, pinas_cost_lut_slot_node(lut, k), k % 2), PINAS_OK);
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "pasnet", &hw), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "lan", &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_prediction *pr = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, arch, hw, link, &p, &pr), PINAS_OK);
    double want = 0;
    for (int k = 0; k < 17; k++) want += pinas_cost_lut_cand_ms(lut, k, k % 2);
    CU_ASSERT_DOUBLE_EQUAL(pr->total.online_s * 1e3, want, 1e-9);
    CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, lut, arch, &ms), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(ms, want, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(pr->total.comm_s, 0, 0); /* the constants already include communication */
    pinas_cost_prediction_free(pr);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(arch);
    pinas_cost_lut_free(lut);
    pinas_net_free(space);
}

/* ResNet-18 ImageNet stem: 7x7/2 conv -> 64x112x112 act gate (N = 802,816) -> 3x3/2 pool gate on the same
 * N. maxpool = 0.75 * (13.6 * 802816 + 0.4) = 0.75 * 10,918,298.0 = 8,188,723.5 us; avgpool = 0.01 * 802816
 * = 8,028.16 us. */
static void test_resnet18_imagenet_pool_gate(void)
{
    const char *act[] = {"relu", "poly"}, *pool[] = {"maxpool", "avgpool"};
    pinas_net *space = resnet18("imagenet", 224, act, 2, pool, 2);
    pinas_cost_lut *lut = lut_of(space);
    int k_act = -1, k_pool = -1;
    for (int k = 0; k < pinas_cost_lut_n_slots(lut); k++) {
        const pinas_node *n = pinas_net_node(space, pinas_cost_lut_slot_node(lut, k));
        if (n->op == PINAS_OP_POOL && k_pool < 0) k_pool = k;
        if (n->op == PINAS_OP_ACT && k_act < 0) k_act = k;
    }
    CU_ASSERT_FATAL(k_act >= 0 && k_pool >= 0);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, k_act, 0), 10918.298, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, k_pool, 0), 8188.7235, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, k_pool, 1), 8.02816, 1e-9);
    pinas_cost_lut_free(lut);
    pinas_net_free(space);
}

/* patch_relu (not in PASNet) uses the ReLU formula on its comparisons; identity is free. */
static void test_extensions(void)
{
    const char *act[] = {"relu", "patch_relu:2x2", "identity"};
    pinas_net *space = resnet18("cifar", 32, act, 3, NULL, 0);
    pinas_cost_lut *lut = lut_of(space);
    /* stem: 64 x 16 x 16 = 16384 patches -> 13.6 * 16384 + 0.4 = 222,822.8 us */
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, 0, 1), 222.8228, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, 0, 2), 0, 0);
    pinas_cost_lut_free(lut);
    pinas_net_free(space);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    tu_test tests[] = {
        {"ResNet-18 CIFAR: PASNet's numbers", test_resnet18_cifar},
        {"ResNet-18 ImageNet: max/avg pool gate", test_resnet18_imagenet_pool_gate},
        {"patch_relu and identity", test_extensions},
    };
    int rc = tu_run("latency_model_pasnet", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
