/* Sampling architectures of a space and rank statistics, shared by validation and tests. */
#define _GNU_SOURCE
#include "cost_internal.h"

#include <math.h>
#include <stdlib.h>

double pinas_cost_kendall_tau(int n, const double *a, const double *b)
{
    /* tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), ties counted per variable; O(n^2) is fine for the
     * tens of architectures a validation runs. */
    double c = 0, d = 0, ta = 0, tb = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double x = a[i] - a[j], y = b[i] - b[j];
            if (x == 0 && y == 0) continue;
            if (x == 0) ta++;
            else if (y == 0) tb++;
            else if ((x > 0) == (y > 0)) c++;
            else d++;
        }
    double den = sqrt((c + d + ta) * (c + d + tb));
    return den > 0 ? (c - d) / den : 0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

pinas_status pinas_cost_random_arch(pinas_ctx *ctx, const pinas_net *space, uint64_t seed, pinas_net **out)
{
    *out = pinas_net_clone(space);
    if (!*out) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    uint64_t st = seed;
    for (int i = 0; i < pinas_net_n_nodes(space); i++) {
        const pinas_node *n = pinas_net_node(space, i);
        if (!pinas_node_is_open(n)) continue;
        int k = (int)(splitmix(&st) % (uint64_t)n->n_cands);
        pinas_status s = pinas_net_decide(ctx, *out, i, k);
        if (s) {
            pinas_net_free(*out);
            *out = NULL;
            return s;
        }
    }
    return PINAS_OK;
}

