/* E[latency] for the search: the LUT's expected online latency as a differentiable libtorch scalar. */
#ifndef PINAS_NAS_LATENCY_H
#define PINAS_NAS_LATENCY_H

#include "pinas_common.h"
#include "pinas_cost.h"
#include "torch_shim.h"

/* E[latency] in ms:
 *     lut->fixed_ms + sum_i sum_j w_i[j] * lut->cand_ms[k_i][j]
 * where k_i is the LUT slot of node slot_nodes[i] and w_i = softmax(alphas[i]) when `normalized`
 * is 0, or alphas[i] itself when `normalized` is 1 (e.g. Gumbel-softmax weights the caller drew).
 * alphas[i] is a 1-D tensor with one entry per candidate of that slot, on any device. Every open
 * slot of the LUT must appear exactly once, in any order. The sum is taken in float32 in the order
 * of the alphas. The result depends on the alphas through libtorch ops only, so pt_backward on a
 * loss that uses it fills their gradients. lut: borrowed (pinas_cost_lut_get_arrays). Errors (a
 * count, a node that is not an open slot, a slot given twice or not at all, a size mismatch) name
 * the slot. *out: new 0-dim tensor; caller frees with pt_free; NULL on error. */
pinas_status pinas_nas_expected_latency(pinas_ctx *ctx, const pinas_cost_lut_arrays *lut, int n, pt_tensor *const *alphas,
                                        const int *slot_nodes, int normalized, pt_tensor **out) PINAS_WUR;

#endif
