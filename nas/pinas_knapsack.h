/* pinas knapsack: the exact multiple-choice knapsack solver and the knapsack search method
 * (Gorski et al.'s patch-ReLU seed: per act slot and option a measured distortion and a LUT cost,
 * then one option per slot under a latency budget). */
#ifndef PINAS_KNAPSACK_H
#define PINAS_KNAPSACK_H

#include "pinas_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ the solver (pure) */

/* A multiple-choice knapsack instance: n_groups groups, group g has n_items[g] >= 1 items; item i
 * of group g has cost cost[off_g + i] (finite, >= 0) and value value[off_g + i] (finite, any sign;
 * the search's distortion), where off_g = n_items[0] + ... + n_items[g-1]. Everything borrowed. */
typedef struct {
    int n_groups;
    const int *n_items;
    const double *cost;
    const double *value;
} pinas_knapsack_problem;

/* The most grid cells (groups x budget steps) one solve may use; a finer resolution is an error. */
#define PINAS_KNAPSACK_MAX_CELLS 50000000LL

/* Chooses exactly one item per group to minimise the total value subject to total cost <= budget,
 * by dynamic programming over a grid of step `resolution` (> 0): every cost is rounded UP to the
 * grid (ceil(cost / resolution) steps) and the budget DOWN (floor(budget / resolution) steps), so
 * the choice is always feasible in real units (total cost <= budget). The answer is exactly optimal
 * for the rounded costs. Against the real costs, with G groups: its value is no worse than the best
 * real solution with total cost <= budget - G * resolution (rounding adds < one step per group), and
 * no better than the best with total cost <= budget. Ties: among solutions of equal total value the
 * one with the least rounded total cost, then the lowest item index in the first group that differs
 * (groups taken from the last to the first).
 *
 * choice: caller's array of n_groups, gets the chosen item index of every group. total_cost and
 * total_value (may be NULL) get the chosen items' real sums.
 *
 * Errors (PINAS_EINVAL; nothing written to choice): an empty group, a negative or non-finite cost,
 * a non-finite value, resolution <= 0, a grid over PINAS_KNAPSACK_MAX_CELLS cells ("raise the
 * resolution"), and a budget below the sum of the cheapest item of every group; that message says
 * "budget B is below the cheapest choice C (every group's cheapest item) by D" (in the grid's
 * rounding when that is what excludes it). Out of memory: PINAS_ENOMEM. */
pinas_status pinas_knapsack_solve(pinas_ctx *ctx, const pinas_knapsack_problem *p, double budget, double resolution, int *choice,
                                  double *total_cost, double *total_value) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
