/* Test helpers for modules above the IR: generated spaces. */
#include "testutil_net.h"

#include <stdio.h>

#include "testutil.h"

void tu_uniform(float *x, size_t n, uint64_t seed, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)(lo + (double)(seed >> 11) / 9007199254740992.0 * (hi - lo));
    }
}

pinas_model *tu_random_model(pinas_ctx *ctx, pinas_net_builder *b, uint64_t seed)
{
    pinas_net *net = NULL;
    pinas_status s = pinas_nb_finish(ctx, b, NULL, &net);
    if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    pinas_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, net, seed, &m), PINAS_OK);
    pinas_net_free(net);
    return m;
}

pinas_net *tu_resnet(pinas_ctx *ctx, int depth, int width, const char *stem, int hw, int classes, const char *const *act,
                     int n_act, const char *const *pool, int n_pool)
{
    pinas_space_opts o = {0};
    o.backbone = "resnet";
    o.depth = depth;
    o.width = width;
    o.stem = stem;
    o.in_c = 3;
    o.in_h = o.in_w = hw;
    o.num_classes = classes;
    o.act = act;
    o.n_act = n_act;
    o.pool = pool;
    o.n_pool = n_pool;
    pinas_net *n = NULL;
    pinas_status s = pinas_net_generate(ctx, &o, &n);
    if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    return n;
}
