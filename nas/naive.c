/* Naive architectures at a matched latency: ReLU in the first k slots, or at random places, filled up to a budget. */
#define _GNU_SOURCE
#include "nas_internal.h"

#include <stdlib.h>
#include <string.h>

/* Per slot of the LUT: the base choice (base_poly: poly / avgpool where the slot has it; else, or
 * without base_poly, the cheapest candidate) and the upgrade (relu / maxpool, else the costliest). */
static void slot_choices(const pinas_net *space, const pinas_cost_lut *lut, int k, int base_poly, int *cheap, int *dear)
{
    const pinas_node *nd = pinas_net_node(space, pinas_cost_lut_slot_node(lut, k));
    int pool = nd->op == PINAS_OP_POOL;
    int c = base_poly ? pinas_node_find_cand(nd, pool ? PINAS_CAND_AVGPOOL : PINAS_CAND_POLY) : -1;
    int d = pinas_node_find_cand(nd, pool ? PINAS_CAND_MAXPOOL : PINAS_CAND_RELU);
    int n = pinas_cost_lut_n_cands(lut, k), c_given = c >= 0, d_given = d >= 0;
    for (int j = 0; j < n; j++) {
        double t = pinas_cost_lut_cand_ms(lut, k, j);
        if (!c_given && (c < 0 || t < pinas_cost_lut_cand_ms(lut, k, c))) c = j;
        if (!d_given && (d < 0 || t > pinas_cost_lut_cand_ms(lut, k, d))) d = j;
    }
    *cheap = c;
    *dear = d;
}

pinas_status pinas_nas_naive(pinas_ctx *ctx, const pinas_net *space, const pinas_cost_lut *lut, const char *family, const char *base,
                             double budget_ms, uint64_t seed, pinas_net **out, int *upgraded, double *latency_ms)
{
    *out = NULL;
    int random = !strcmp(family, "random");
    if (!random && strcmp(family, "first-k"))
        return pinas_error(ctx, PINAS_EINVAL, "naive family \"%s\": expected \"first-k\" or \"random\"", family);
    int base_poly = base && !strcmp(base, "poly");
    if (base && !base_poly && strcmp(base, "cheapest"))
        return pinas_error(ctx, PINAS_EINVAL, "naive base \"%s\": expected \"cheapest\" or \"poly\"", base);
    pinas_status s = pinas_cost_lut_check(ctx, lut, space);
    if (s) return s;
    int n = pinas_cost_lut_n_slots(lut);
    int *ch = calloc((size_t)n + 1, sizeof *ch), *dear = calloc((size_t)n + 1, sizeof *dear), *order = calloc((size_t)n + 1, sizeof *order);
    if (!ch || !dear || !order) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < n && !s; k++) {
        slot_choices(space, lut, k, base_poly, &ch[k], &dear[k]);
        order[k] = k;
    }
    if (!s && random) {
        pinas_rng r = {seed ^ 0x6e61697665ULL};
        for (int i = n - 1; i > 0; i--) {
            int j = (int)pinas_rng_below(&r, (uint64_t)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    /* Upgrade slots in order while the budget allows. first-k stops at the first that does not fit
     * (ReLUs exactly in a prefix); random skips it and tries the rest (a maximal random set). */
    double ms = 0;
    int up = 0;
    if (!s) s = pinas_cost_lut_latency_choices(ctx, lut, ch, &ms);
    for (int i = 0; i < n && !s; i++) {
        int k = order[i], old = ch[k];
        if (dear[k] == old) continue;
        ch[k] = dear[k];
        double t = 0;
        if ((s = pinas_cost_lut_latency_choices(ctx, lut, ch, &t))) break;
        if (t <= budget_ms * (1 + 1e-12)) {
            ms = t;
            up++;
        } else {
            ch[k] = old;
            if (!random) break;
        }
    }
    pinas_net *arch = NULL;
    if (!s) {
        arch = pinas_net_clone(space);
        if (!arch) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    for (int k = 0; k < n && !s; k++) s = pinas_net_decide(ctx, arch, pinas_cost_lut_slot_node(lut, k), ch[k]);
    if (!s && pinas_net_n_open(arch) > 0) s = pinas_error(ctx, PINAS_EINVAL, "naive: the LUT does not cover every open slot of the space");
    free(ch);
    free(dear);
    free(order);
    if (s) {
        pinas_net_free(arch);
        return s;
    }
    *out = arch;
    if (upgraded) *upgraded = up;
    if (latency_ms) *latency_ms = ms;
    return PINAS_OK;
}
