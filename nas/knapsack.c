/* The exact multiple-choice knapsack solver: one item per group, least total value under a cost
 * budget, by dynamic programming over a grid (costs rounded up, so answers stay feasible). */
#define _GNU_SOURCE
#include "pinas_knapsack.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Cells of one DP row: the best (value, rounded cost) using the groups so far within b steps. */
typedef struct {
    double value;
    int64_t cost;
} cell;

static int better(double v, int64_t c, const cell *than) { return v < than->value || (v == than->value && c < than->cost); }

static pinas_status check_problem(pinas_ctx *ctx, const pinas_knapsack_problem *p, double budget, double resolution)
{
    if (p->n_groups < 0) return pinas_error(ctx, PINAS_EINVAL, "knapsack: %d groups", p->n_groups);
    if (!(resolution > 0) || !isfinite(resolution))
        return pinas_error(ctx, PINAS_EINVAL, "knapsack: the resolution must be > 0, got %g", resolution);
    if (!isfinite(budget)) return pinas_error(ctx, PINAS_EINVAL, "knapsack: the budget must be finite, got %g", budget);
    for (int g = 0, off = 0; g < p->n_groups; off += p->n_items[g++]) {
        if (p->n_items[g] < 1 || p->n_items[g] > UINT16_MAX)
            return pinas_error(ctx, PINAS_EINVAL, "knapsack: group %d has %d items (expected 1 to %d)", g, p->n_items[g], UINT16_MAX);
        for (int i = 0; i < p->n_items[g]; i++) {
            double c = p->cost[off + i], v = p->value[off + i];
            if (!(c >= 0) || !isfinite(c)) return pinas_error(ctx, PINAS_EINVAL, "knapsack: group %d item %d: cost %g (expected finite, >= 0)", g, i, c);
            if (!isfinite(v)) return pinas_error(ctx, PINAS_EINVAL, "knapsack: group %d item %d: value %g (expected finite)", g, i, v);
        }
    }
    return PINAS_OK;
}

/* Grid steps of a cost, rounded up (so the real cost is never above steps * resolution). */
static int64_t steps_up(double cost, double resolution) { return (int64_t)ceil(cost / resolution); }

/* The budget in grid steps (rounded down), or an error when the cheapest choice does not fit. */
static pinas_status grid_budget(pinas_ctx *ctx, const pinas_knapsack_problem *p, double budget, double resolution, int64_t *steps)
{
    double cheapest = 0;
    int64_t cheapest_steps = 0;
    for (int g = 0, off = 0; g < p->n_groups; off += p->n_items[g++]) {
        double c = p->cost[off];
        for (int i = 1; i < p->n_items[g]; i++)
            if (p->cost[off + i] < c) c = p->cost[off + i];
        cheapest += c;
        cheapest_steps += steps_up(c, resolution);
    }
    if (cheapest > budget)
        return pinas_error(ctx, PINAS_EINVAL, "budget %g is below the cheapest choice %g (every group's cheapest item) by %g", budget, cheapest,
                           cheapest - budget);
    if (!(budget / resolution < 9e15)) return pinas_error(ctx, PINAS_EINVAL, "knapsack: budget %g / resolution %g is too many steps", budget, resolution);
    int64_t b = (int64_t)floor(budget / resolution);
    if (cheapest_steps > b)
        return pinas_error(ctx, PINAS_EINVAL,
                           "budget %g is below the cheapest choice %g rounded up to the grid of %g (%g) by %g; use a finer resolution", budget,
                           cheapest, resolution, (double)cheapest_steps * resolution, (double)cheapest_steps * resolution - budget);
    /* No solution can use more than the dearest choice: a smaller grid gives the same answer. */
    int64_t dearest = 0;
    for (int g = 0, off = 0; g < p->n_groups; off += p->n_items[g++]) {
        int64_t d = 0;
        for (int i = 0; i < p->n_items[g]; i++)
            if (steps_up(p->cost[off + i], resolution) > d) d = steps_up(p->cost[off + i], resolution);
        dearest += d;
    }
    *steps = b < dearest ? b : dearest;
    if ((double)(*steps + 1) * (p->n_groups ? p->n_groups : 1) > (double)PINAS_KNAPSACK_MAX_CELLS)
        return pinas_error(ctx, PINAS_EINVAL, "knapsack: %d groups x %lld budget steps exceed %lld cells; raise the resolution (now %g)", p->n_groups,
                           (long long)*steps + 1, (long long)PINAS_KNAPSACK_MAX_CELLS, resolution);
    return PINAS_OK;
}

/* Fills row `cur` from row `prev` for group g (items at off); arg gets the chosen item per budget. */
static void dp_row(const pinas_knapsack_problem *p, int g, int off, double resolution, int64_t nb, const cell *prev, cell *cur, uint16_t *arg)
{
    for (int64_t b = 0; b <= nb; b++) {
        cur[b] = (cell){INFINITY, INT64_MAX};
        arg[b] = UINT16_MAX;
        for (int i = 0; i < p->n_items[g]; i++) {
            int64_t c = steps_up(p->cost[off + i], resolution);
            if (c > b || isinf(prev[b - c].value)) continue;
            double v = prev[b - c].value + p->value[off + i];
            int64_t tc = prev[b - c].cost + c;
            /* Strictly better only: among equal solutions the lowest index stays. */
            if (better(v, tc, &cur[b])) {
                cur[b] = (cell){v, tc};
                arg[b] = (uint16_t)i;
            }
        }
    }
}

pinas_status pinas_knapsack_solve(pinas_ctx *ctx, const pinas_knapsack_problem *p, double budget, double resolution, int *choice,
                                  double *total_cost, double *total_value)
{
    pinas_status s = check_problem(ctx, p, budget, resolution);
    int64_t nb = 0;
    if (!s) s = grid_budget(ctx, p, budget, resolution, &nb);
    if (s) return s;
    int G = p->n_groups;
    cell *prev = calloc((size_t)nb + 1, sizeof *prev), *cur = calloc((size_t)nb + 1, sizeof *cur);
    uint16_t *arg = calloc((size_t)(G ? G : 1) * ((size_t)nb + 1), sizeof *arg);
    int *offs = calloc((size_t)(G ? G : 1), sizeof *offs);
    if (!prev || !cur || !arg || !offs) s = pinas_error(ctx, PINAS_ENOMEM, "knapsack: out of memory for %d x %lld cells", G, (long long)nb + 1);
    for (int64_t b = 0; !s && b <= nb; b++) prev[b] = (cell){0, 0}; /* no group yet: value 0 at any budget */
    for (int g = 0, off = 0; !s && g < G; off += p->n_items[g++]) {
        offs[g] = off;
        dp_row(p, g, off, resolution, nb, prev, cur, arg + (size_t)g * ((size_t)nb + 1));
        cell *t = prev;
        prev = cur;
        cur = t;
    }
    if (!s && G > 0 && isinf(prev[nb].value)) s = pinas_error(ctx, PINAS_EINTERNAL, "knapsack: no feasible choice at %lld steps", (long long)nb);
    if (!s) {
        double tc = 0, tv = 0;
        int64_t b = nb;
        for (int g = G - 1; g >= 0; g--) {
            int i = arg[(size_t)g * ((size_t)nb + 1) + (size_t)b];
            choice[g] = i;
            b -= steps_up(p->cost[offs[g] + i], resolution);
        }
        for (int g = 0; g < G; g++) {
            tc += p->cost[offs[g] + choice[g]];
            tv += p->value[offs[g] + choice[g]];
        }
        if (total_cost) *total_cost = tc;
        if (total_value) *total_value = tv;
    }
    free(prev);
    free(cur);
    free(arg);
    free(offs);
    return s;
}
