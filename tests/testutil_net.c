/* Test helpers for modules above the IR: generated spaces. */
#include "testutil_net.h"

#include <stdio.h>

#include "testutil.h"

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
