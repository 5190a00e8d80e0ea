/* Test helpers for modules above the IR (net and up): generated spaces. */
#ifndef PINAS_TESTUTIL_NET_H
#define PINAS_TESTUTIL_NET_H
#include "pinas_net.h"

/* A ResNet space from pinas_net_generate: 3 x hw x hw input, `classes` classes, width 0 and stem NULL
 * the generator's defaults, pool slots only when n_pool > 0. Fails the test (fatally) when the
 * generator refuses. New; caller frees. */
pinas_net *tu_resnet(pinas_ctx *ctx, int depth, int width, const char *stem, int hw, int classes, const char *const *act,
                     int n_act, const char *const *pool, int n_pool);
/* n values uniform in [lo, hi) from a seeded LCG (the same seed, the same values). */
void tu_uniform(float *x, size_t n, uint64_t seed, double lo, double hi);
/* Finishes builder b (fails the test, fatally, when it refuses) and gives the net random weights
 * (pinas_model_random with seed). New; caller frees with pinas_model_free. */
pinas_model *tu_random_model(pinas_ctx *ctx, pinas_net_builder *b, uint64_t seed);
#endif
