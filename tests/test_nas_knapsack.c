/* Tests for nas/knapsack.c: the multiple-choice knapsack solver against brute force on random small
 * instances (exact and rounded grids), the resolution bound, ties, one-item groups and errors. */
#define _GNU_SOURCE
#include "pinas_knapsack.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXG 6
#define MAXI 5

typedef struct {
    int g, n[MAXG];
    double cost[MAXG * MAXI], value[MAXG * MAXI];
} inst;

static pinas_knapsack_problem prob(const inst *x) { return (pinas_knapsack_problem){x->g, x->n, x->cost, x->value}; }

/* Least total value over every choice with total cost (rounded up to `res` steps when res > 0)
 * within budget; INFINITY when none fits. */
static double brute(const inst *x, double budget, double res)
{
    int idx[MAXG] = {0};
    double best = INFINITY;
    for (;;) {
        double c = 0, v = 0;
        long long steps = 0;
        for (int g = 0, off = 0; g < x->g; off += x->n[g++]) {
            c += x->cost[off + idx[g]];
            v += x->value[off + idx[g]];
            if (res > 0) steps += (long long)ceil(x->cost[off + idx[g]] / res);
        }
        int fits = res > 0 ? steps <= (long long)floor(budget / res) : c <= budget;
        if (fits && v < best) best = v;
        int g = 0;
        while (g < x->g && ++idx[g] == x->n[g]) idx[g++] = 0;
        if (g == x->g) break;
    }
    return best;
}

static void random_inst(pinas_rng *r, inst *x, int integer)
{
    x->g = 1 + (int)pinas_rng_below(r, MAXG);
    for (int g = 0, off = 0; g < x->g; off += x->n[g++]) {
        x->n[g] = 1 + (int)pinas_rng_below(r, MAXI);
        for (int i = 0; i < x->n[g]; i++) {
            x->cost[off + i] = integer ? (double)pinas_rng_below(r, 21) : 10 * pinas_rng_unif(r);
            /* Some negative values: a distortion may fall when a slot changes. */
            x->value[off + i] = integer ? (double)pinas_rng_below(r, 50) - 5 : 4 * pinas_rng_unif(r) - 0.5;
        }
    }
}

/* Checks choice's sums and feasibility; returns its value. */
static double check_choice(const inst *x, const int *choice, double budget, double tc, double tv)
{
    double c = 0, v = 0;
    for (int g = 0, off = 0; g < x->g; off += x->n[g++]) {
        CU_ASSERT_FATAL(choice[g] >= 0 && choice[g] < x->n[g]);
        c += x->cost[off + choice[g]];
        v += x->value[off + choice[g]];
    }
    CU_ASSERT_DOUBLE_EQUAL(c, tc, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(v, tv, 1e-9);
    CU_ASSERT(c <= budget);
    return v;
}

/* Integer costs on a grid of 1: the DP is exact; its optimum equals brute force's. */
static void test_exact_vs_brute(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_rng r = {12345};
    int solved = 0, infeasible = 0;
    for (int t = 0; t < 400; t++) {
        inst x;
        random_inst(&r, &x, 1);
        double budget = (double)pinas_rng_below(&r, 20 * (uint64_t)x.g + 1);
        double bf = brute(&x, budget, 0);
        int choice[MAXG];
        double tc = NAN, tv = NAN;
        pinas_knapsack_problem p = prob(&x);
        pinas_status s = pinas_knapsack_solve(ctx, &p, budget, 1.0, choice, &tc, &tv);
        if (isinf(bf)) {
            TU_ASSERT_ERR(ctx, s, "is below the cheapest choice");
            infeasible++;
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
        CU_ASSERT_DOUBLE_EQUAL(check_choice(&x, choice, budget, tc, tv), bf, 1e-9);
        solved++;
    }
    /* Both branches ran. */
    CU_ASSERT(solved > 100);
    CU_ASSERT(infeasible > 10);
    pinas_ctx_free(ctx);
}

/* Real costs on a coarse grid: optimal for the rounded costs, feasible in real units, and between
 * the real optima at budget and at budget - G * resolution (the documented bound). */
static void test_rounded_vs_brute(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_rng r = {777};
    int solved = 0, strict = 0;
    for (int t = 0; t < 400; t++) {
        inst x;
        random_inst(&r, &x, 0);
        double res = 0.05 + 0.5 * pinas_rng_unif(&r);
        double budget = 10.0 * x.g * pinas_rng_unif(&r);
        double rounded = brute(&x, budget, res);
        int choice[MAXG];
        double tc = NAN, tv = NAN;
        pinas_knapsack_problem p = prob(&x);
        pinas_status s = pinas_knapsack_solve(ctx, &p, budget, res, choice, &tc, &tv);
        if (isinf(rounded)) {
            CU_ASSERT_NOT_EQUAL(s, PINAS_OK);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
        double v = check_choice(&x, choice, budget, tc, tv);
        CU_ASSERT_DOUBLE_EQUAL(v, rounded, 1e-9);
        double real = brute(&x, budget, 0), tighter = brute(&x, budget - x.g * res, 0);
        CU_ASSERT(v >= real - 1e-9);
        CU_ASSERT(v <= tighter + 1e-9); /* INFINITY when nothing fits the tighter budget */
        strict += v > real + 1e-9;
        solved++;
    }
    CU_ASSERT(solved > 100);
    /* A coarse grid does lose something now and then, so the bound is not vacuous here. */
    CU_ASSERT(strict > 0);
    pinas_ctx_free(ctx);
}

static void test_ties_and_single_items(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    int choice[3];
    double tc, tv;
    /* Equal values: the cheaper item wins; equal value and cost: the lower index. */
    int n[3] = {3, 1, 2};
    double cost[] = {3, 1, 2, /**/ 4, /**/ 1, 1};
    double value[] = {0.5, 0.5, 0.5, /**/ 2, /**/ 1, 1};
    pinas_knapsack_problem p = {3, n, cost, value};
    CU_ASSERT_EQUAL_FATAL(pinas_knapsack_solve(ctx, &p, 100, 0.5, choice, &tc, &tv), PINAS_OK);
    CU_ASSERT_EQUAL(choice[0], 1);
    CU_ASSERT_EQUAL(choice[1], 0); /* the one item of a one-item group */
    CU_ASSERT_EQUAL(choice[2], 0);
    CU_ASSERT_DOUBLE_EQUAL(tc, 6, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tv, 3.5, 1e-12);
    /* Only one-item groups: the only choice, at exactly its cost. */
    int n1[2] = {1, 1};
    double c1[] = {0.3, 0.7}, v1[] = {1, 2};
    pinas_knapsack_problem q = {2, n1, c1, v1};
    CU_ASSERT_EQUAL_FATAL(pinas_knapsack_solve(ctx, &q, 1.0, 0.1, choice, &tc, &tv), PINAS_OK);
    CU_ASSERT(choice[0] == 0 && choice[1] == 0);
    CU_ASSERT_DOUBLE_EQUAL(tv, 3, 1e-12);
    /* No groups: nothing to choose, value 0. */
    pinas_knapsack_problem e = {0, NULL, NULL, NULL};
    CU_ASSERT_EQUAL(pinas_knapsack_solve(ctx, &e, 0, 1, choice, &tc, &tv), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(tv, 0, 0);
    pinas_ctx_free(ctx);
}

static void test_errors_and_resolution(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    int choice[2] = {-7, -7};
    double tc, tv;
    int n[2] = {2, 2};
    double cost[] = {1.0, 0.4, 2.0, 0.6}, value[] = {0, 3, 0, 5};
    pinas_knapsack_problem p = {2, n, cost, value};
    /* The cheapest choice is 0.4 + 0.6 = 1.0; 0.75 misses it by 0.25. */
    TU_ASSERT_ERR(ctx, pinas_knapsack_solve(ctx, &p, 0.75, 0.01, choice, &tc, &tv), "budget 0.75 is below the cheapest choice 1 (every group's cheapest item) by 0.25");
    CU_ASSERT(choice[0] == -7 && choice[1] == -7);
    /* Fits in real units, not on a grid of 0.3 (0.4 -> 0.6, 0.6 -> 0.6: 1.2 > 0.9). */
    TU_ASSERT_ERR(ctx, pinas_knapsack_solve(ctx, &p, 1.0, 0.3, choice, &tc, &tv), "use a finer resolution");
    /* The resolution decides. Fine grid: 0.4 + 2.0 = 2.4 <= 2.6, value 3 (the best in real units). */
    CU_ASSERT_EQUAL_FATAL(pinas_knapsack_solve(ctx, &p, 2.6, 0.01, choice, &tc, &tv), PINAS_OK);
    CU_ASSERT(choice[0] == 1 && choice[1] == 0);
    CU_ASSERT_DOUBLE_EQUAL(tv, 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tc, 2.4, 1e-12);
    /* Grid of 1: 0.4 + 2.0 rounds to 1 + 2 = 3 > floor(2.6) = 2 steps; 1.0 + 0.6 (1 + 1) is the best
     * that fits: value 5 (within the bound: the real optimum at 2.6 - 2 * 1 = 0.6 does not exist). */
    CU_ASSERT_EQUAL_FATAL(pinas_knapsack_solve(ctx, &p, 2.6, 1.0, choice, &tc, &tv), PINAS_OK);
    CU_ASSERT(choice[0] == 0 && choice[1] == 1);
    CU_ASSERT_DOUBLE_EQUAL(tv, 5, 1e-12);
    /* Grid of 2: every item rounds to one step, the budget to one: nothing fits. */
    TU_ASSERT_ERR(ctx, pinas_knapsack_solve(ctx, &p, 2.6, 2.0, choice, &tc, &tv), "use a finer resolution");
    /* Bad inputs. */
    TU_ASSERT_ERR(ctx, pinas_knapsack_solve(ctx, &p, 2, 0, choice, &tc, &tv), "resolution must be > 0");
    double bad[] = {1.0, -0.4, 2.0, 0.6};
    pinas_knapsack_problem pb = {2, n, bad, value};
    TU_ASSERT_ERR(ctx, pinas_knapsack_solve(ctx, &pb, 2, 0.1, choice, &tc, &tv), "group 0 item 1: cost -0.4");
    int n0[2] = {2, 0};
    pinas_knapsack_problem pe = {2, n0, cost, value};
    TU_ASSERT_ERR(ctx, pinas_knapsack_solve(ctx, &pe, 2, 0.1, choice, &tc, &tv), "group 1 has 0 items");
    TU_ASSERT_ERR(ctx, pinas_knapsack_solve(ctx, &p, 1e6, 1e-8, choice, &tc, &tv), "raise the resolution");
    pinas_ctx_free(ctx);
}

int main(void)
{
    tu_test tests[] = {{"exact grid against brute force", test_exact_vs_brute},
                       {"rounded grid against brute force, resolution bound", test_rounded_vs_brute},
                       {"ties and one-item groups", test_ties_and_single_items},
                       {"errors and the resolution", test_errors_and_resolution}};
    return tu_run("nas_knapsack", tests, (int)(sizeof tests / sizeof tests[0]));
}
