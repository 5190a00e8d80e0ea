/* Derivation: the argmax architecture of a space from its slots' mixing weights, and the baselines. */
#define _GNU_SOURCE
#include "nas_internal.h"

#include <stdlib.h>
#include <string.h>

pinas_status pinas_nas_derive(pinas_ctx *ctx, const pinas_net *space, int n, const int *slot_nodes, const float *const *probs,
                              pinas_net **out)
{
    *out = NULL;
    pinas_net *arch = pinas_net_clone(space);
    if (!arch) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    for (int i = 0; i < n && !s; i++) {
        int node = slot_nodes[i];
        if (node <= 0 || node >= pinas_net_n_nodes(arch)) {
            s = pinas_error(ctx, PINAS_EINVAL, "derive: slot %d: node index %d is out of range", i, node);
            break;
        }
        const pinas_node *nd = pinas_net_node(arch, node);
        if (!pinas_node_is_open(nd)) {
            s = pinas_error(ctx, PINAS_EINVAL, "derive: node %s is not an open slot", nd->id);
            break;
        }
        int best = 0;
        for (int j = 1; j < nd->n_cands; j++)
            if (probs[i][j] > probs[i][best]) best = j; /* strict: ties keep the lower index */
        s = pinas_net_decide(ctx, arch, node, best);
    }
    if (!s && pinas_net_n_open(arch) > 0) {
        for (int i = 0; i < pinas_net_n_nodes(arch); i++)
            if (pinas_node_is_open(pinas_net_node(arch, i))) {
                s = pinas_error(ctx, PINAS_EINVAL, "derive: slot %s has no mixing weights", pinas_net_node(arch, i)->id);
                break;
            }
    }
    if (s) {
        pinas_net_free(arch);
        return s;
    }
    *out = arch;
    return PINAS_OK;
}

/* The search's baselines are the IR's (search_spaces/net.c), so that `pinas model random` needs no libtorch. */
pinas_status pinas_nas_baseline(pinas_ctx *ctx, const pinas_net *space, const char *kind, pinas_net **out)
{
    return pinas_net_baseline_arch(ctx, space, kind, out);
}

cJSON *pinas_nas_arch_json(const pinas_net *net)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < pinas_net_n_nodes(net); i++) {
        const pinas_node *nd = pinas_net_node(net, i);
        if (!pinas_node_is_slot(nd)) continue;
        const pinas_cand *c = pinas_node_chosen(nd);
        char nm[32];
        cJSON_AddStringToObject(o, nd->id, c ? pinas_cand_name(c, nm, sizeof nm) : "open");
    }
    return o;
}
