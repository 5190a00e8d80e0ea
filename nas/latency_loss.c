/* E[latency] = fixed + sum over slots of softmax(alpha) . LUT row, as a libtorch scalar for the search's loss.
 * The rows are in the LUT's metric (latency.metric: online, total, or e2e linearised per slot; pinas_cost.h). */
#define _GNU_SOURCE
#include "nas_latency.h"

#include <stdlib.h>

static int find_slot(const pinas_cost_lut_arrays *lut, int node)
{
    for (int k = 0; k < lut->n_slots; k++)
        if (lut->node[k] == node) return k;
    return -1;
}

/* acc + sum(w . lat) for one slot, where w = softmax(alpha) or alpha itself; *next: new. */
static pinas_status add_slot(pinas_ctx *ctx, const pinas_cost_lut_arrays *lut, int k, const pt_tensor *alpha, int normalized,
                             const pt_tensor *acc, pt_tensor **next)
{
    const char *id = lut->id[k];
    int64_t numel = 0;
    if (pt_numel(alpha, &numel)) return pinas_error(ctx, PINAS_ETORCH, "E[latency]: slot %s: %s", id, pt_errmsg());
    if (numel != lut->n_cands[k])
        return pinas_error(ctx, PINAS_ESHAPE, "E[latency]: slot %s: alpha has %lld entries, the slot has %d candidates", id, (long long)numel,
                           lut->n_cands[k]);
    int64_t shape[1] = {lut->n_cands[k]};
    pt_tensor *lat = NULL, *w = NULL, *prod = NULL, *sum = NULL;
    int bad = pt_from_f32(lut->cand_ms[k], 1, shape, &lat);
    if (!bad) {
        if (normalized) bad = pt_mul(alpha, lat, &prod);
        else bad = pt_softmax(alpha, 0, &w) || pt_mul(w, lat, &prod);
    }
    if (!bad) bad = pt_sum(prod, &sum);
    if (!bad) bad = pt_add(acc, sum, next);
    pinas_status s = bad ? pinas_error(ctx, PINAS_ETORCH, "E[latency]: slot %s: %s", id, pt_errmsg()) : PINAS_OK;
    pt_free(lat);
    pt_free(w);
    pt_free(prod);
    pt_free(sum);
    return s;
}

pinas_status pinas_nas_expected_latency(pinas_ctx *ctx, const pinas_cost_lut_arrays *lut, int n, pt_tensor *const *alphas,
                                        const int *slot_nodes, int normalized, pt_tensor **out)
{
    *out = NULL;
    if (n != lut->n_slots)
        return pinas_error(ctx, PINAS_EINVAL, "E[latency]: got %d alpha tensors, the LUT of %s has %d open slots", n, lut->space, lut->n_slots);
    char *seen = calloc(lut->n_slots > 0 ? (size_t)lut->n_slots : 1, 1);
    if (!seen) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    float fixed = lut->fixed_ms;
    int64_t no_dims[1] = {1};
    pt_tensor *acc = NULL;
    pinas_status s = PINAS_OK;
    /* A 0-dim tensor: it broadcasts against the alphas' sums whatever device they live on. */
    if (pt_from_f32(&fixed, 0, no_dims, &acc)) s = pinas_error(ctx, PINAS_ETORCH, "E[latency]: %s", pt_errmsg());
    for (int i = 0; i < n && !s; i++) {
        int k = find_slot(lut, slot_nodes[i]);
        if (k < 0) {
            s = pinas_error(ctx, PINAS_EINVAL, "E[latency]: alpha %d belongs to node %d, which is not an open slot of the LUT", i, slot_nodes[i]);
            break;
        }
        if (seen[k]) {
            s = pinas_error(ctx, PINAS_EINVAL, "E[latency]: slot %s is given twice", lut->id[k]);
            break;
        }
        seen[k] = 1;
        pt_tensor *next = NULL;
        s = add_slot(ctx, lut, k, alphas[i], normalized, acc, &next);
        if (!s) {
            pt_free(acc);
            acc = next;
        }
    }
    for (int k = 0; k < lut->n_slots && !s; k++)
        if (!seen[k]) s = pinas_error(ctx, PINAS_EINVAL, "E[latency]: no alpha given for slot %s", lut->id[k]);
    free(seen);
    if (s) {
        pt_free(acc);
        return s;
    }
    *out = acc;
    return PINAS_OK;
}
