/* The runtime's parameters: defaults, checks, the model dir's mpc section, and the hash both parties agree on. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <stdlib.h>
#include <string.h>

void pinas_mpc_params_default(pinas_mpc_params *p)
{
    p->frac_bits = PINAS_FRAC_BITS_DEFAULT;
    p->cmp_bits = PINAS_CMP_BITS_DEFAULT;
    p->cmp_high = 64;
    p->batch = 1;
    p->timeout_ms = 30000;
    p->threads = 1;
}

pinas_status pinas_mpc_cmp_bits_check(pinas_ctx *ctx, const char *field, int bits)
{
    if (bits < PINAS_CMP_BITS_MIN || bits > PINAS_CMP_BITS_MAX)
        return pinas_error(ctx, PINAS_EINVAL, "%s: expected an integer in [%d, %d], got %d", field, PINAS_CMP_BITS_MIN,
                           PINAS_CMP_BITS_MAX, bits);
    return PINAS_OK;
}

pinas_status pinas_mpc_cmp_window_check(pinas_ctx *ctx, const char *field, int bits, int high)
{
    pinas_status s = pinas_mpc_cmp_bits_check(ctx, field, bits);
    if (s) return s;
    if (high != 0 && (high < bits || high > 64))
        return pinas_error(ctx, PINAS_EINVAL,
                           "%s: comparison window top cmp_high = %d must lie in [cmp_bits, 64] = [%d, 64] (0 = 64)", field,
                           high, bits);
    return PINAS_OK;
}

pinas_status pinas_mpc_params_check(pinas_ctx *ctx, const pinas_mpc_params *p)
{
    if (p->frac_bits < PINAS_FRAC_BITS_MIN || p->frac_bits > PINAS_FRAC_BITS_MAX)
        return pinas_error(ctx, PINAS_EINVAL,
                           "mpc.frac_bits: expected an integer in [%d, %d], got %d (the bound: products carry 2 x "
                           "frac_bits fractional bits in the 64-bit ring, and 2 x frac_bits + %d <= 64 keeps local "
                           "truncation exact with high probability; see pinas_config.h)",
                           PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, p->frac_bits, PINAS_RING_HEADROOM_BITS);
    pinas_status s = pinas_mpc_cmp_window_check(ctx, "mpc.cmp_bits", p->cmp_bits, p->cmp_high);
    if (s) return s;
    if (p->batch < 1 || p->batch > PINAS_MPC_MAX_BATCH)
        return pinas_error(ctx, PINAS_EINVAL, "batch: expected an integer in [1, %d], got %d", PINAS_MPC_MAX_BATCH,
                           p->batch);
    if (p->timeout_ms < 1)
        return pinas_error(ctx, PINAS_EINVAL, "timeout: expected a positive number of milliseconds, got %d", p->timeout_ms);
    if (p->threads < 1 || p->threads > PINAS_MPC_MAX_THREADS)
        return pinas_error(ctx, PINAS_EINVAL, "threads: expected an integer in [1, %d], got %d", PINAS_MPC_MAX_THREADS, p->threads);
    return PINAS_OK;
}

void pinas_mpc_params_from_meta(const pinas_model_meta *meta, pinas_mpc_params *p)
{
    p->frac_bits = meta->frac_bits;
    p->cmp_bits = meta->cmp_bits;
    p->cmp_high = 64; /* the meta's global width is at the top; per-layer windows are in meta->layers */
}

int pinas_mpc_layer_bits_from_meta(const pinas_model_meta *meta, pinas_mpc_layer_bits **out)
{
    *out = NULL;
    if (meta->n_layer_bits <= 0) return 0;
    pinas_mpc_layer_bits *t = calloc((size_t)meta->n_layer_bits, sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < meta->n_layer_bits; i++) {
        t[i].id = meta->layer_bits[i].id;
        t[i].cmp_bits = meta->layer_bits[i].cmp_bits;
        t[i].cmp_high = meta->layer_bits[i].cmp_high;
    }
    *out = t;
    return meta->n_layer_bits;
}

pinas_status pinas_mpc_arch_load(pinas_ctx *ctx, const char *dir, pinas_net **net, pinas_mpc_params *p)
{
    *net = NULL;
    char *np = pinas_path_join(dir, "net.json"), *mp = pinas_path_join(dir, "meta.json");
    pinas_status s = np && mp ? pinas_net_load(ctx, np, net) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && pinas_path_exists(mp)) {
        pinas_model_meta meta;
        s = pinas_model_meta_read(ctx, mp, *net, &meta);
        if (!s) pinas_mpc_params_from_meta(&meta, p);
        pinas_model_meta_free(&meta);
    }
    if (s && *net) {
        pinas_net_free(*net);
        *net = NULL;
    }
    free(np);
    free(mp);
    return s;
}

uint64_t pinas_mpc_arch_hash(const pinas_net *net, const pinas_mpc_params *p)
{
    uint64_t h = pinas_net_hash(net);
    uint32_t f = (uint32_t)p->frac_bits;
    h = pinas_fnv1a64(&f, sizeof f, h);
    return pinas_fnv1a64("pinas-mpc/1", 11, h);
}
