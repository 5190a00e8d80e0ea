/* Test helpers for the cost model and its users: a cpu profile with round numbers (so expected values
 * can be written by hand) and a small ResNet-20 space over every candidate. Header-only (static
 * inline), so tests that do not link the cost model never see it. */
#ifndef PINAS_TESTUTIL_COST_H
#define PINAS_TESTUTIL_COST_H
#include <stdio.h>

#include "pinas_cost.h"
#include "testutil.h"
#include "testutil_net.h"

static const char *const tu_cpu_profile_json =
    "{\"format\": \"pinas-profile/1\", \"kind\": \"cpu\", \"name\": \"cpu-test\", \"model\": \"party-cpu\", \"primitives\": {"
    "\"relu\": {\"server\": {\"call\": 1e-4, \"in\": 1e-7}, \"client\": {\"call\": 5e-5, \"in\": 5e-8}},"
    "\"poly\": {\"server\": {\"call\": 2e-5, \"in\": 1e-8}, \"client\": {\"call\": 2e-5, \"in\": 1e-8}},"
    "\"patch_relu\": {\"server\": {\"call\": 1e-4, \"in\": 5e-8}, \"client\": {\"call\": 1e-4, \"in\": 5e-8}},"
    "\"maxpool\": {\"server\": {\"call\": 3e-4, \"macs\": 4e-7}, \"client\": {\"call\": 3e-4, \"macs\": 4e-7}},"
    "\"conv2d\": {\"server\": {\"call\": 5e-5, \"macs\": 1e-9}, \"client\": {\"call\": 1e-5, \"in\": 1e-9}},"
    "\"dwconv\": {\"server\": {\"call\": 5e-5, \"macs\": 1e-9}, \"client\": {\"call\": 1e-5, \"in\": 1e-9}},"
    "\"linear\": {\"server\": {\"call\": 5e-5, \"macs\": 1e-9}, \"client\": {\"call\": 1e-5, \"in\": 1e-9}},"
    "\"avgpool\": {\"server\": {\"call\": 1e-6, \"in\": 1e-9}, \"client\": {\"call\": 1e-6, \"in\": 1e-9}},"
    "\"add\": {\"server\": {\"call\": 1e-6, \"in\": 1e-9}, \"client\": {\"call\": 1e-6, \"in\": 1e-9}},"
    "\"global_avgpool\": {\"server\": {\"call\": 1e-6, \"in\": 1e-9}, \"client\": {\"call\": 1e-6, \"in\": 1e-9}},"
    "\"input\": {\"server\": {}, \"client\": {\"call\": 1e-6, \"in\": 1e-9}}},"
    "\"offline\": {\"aes_blocks_per_s\": 1e8, \"ring_macs_per_s\": 1e9}}";

/* The round-number cpu profile; fails the test (fatally) if it does not load. Caller frees. */
static inline pinas_cost_hw *tu_cpu_profile(pinas_ctx *ctx)
{
    cJSON *j = cJSON_Parse(tu_cpu_profile_json);
    pinas_cost_hw *hw = NULL;
    pinas_status s = pinas_cost_hw_from_json(ctx, j, "test", &hw);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    cJSON_Delete(j);
    return hw;
}

/* ResNet-20 (width 4, 16x16 input, ImageNet stem) with relu/poly/patch_relu:2x2/identity act slots
 * and max/avg pool slots. Caller frees. */
static inline pinas_net *tu_r20_all_cands(pinas_ctx *ctx)
{
    static const char *const act[] = {"relu", "poly", "patch_relu:2x2", "identity"}, *const pool[] = {"maxpool", "avgpool"};
    return tu_resnet(ctx, 20, 4, "imagenet", 16, 10, act, 4, pool, 2);
}
#endif
