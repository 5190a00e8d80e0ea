/* Calibration on a search space's own shapes (`pinas calibrate --space`): every candidate of every
 * open slot run in the runtime at least once, each node measured per party, and the median per
 * exact shape (class, party, features) kept as the profile's measured shapes. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <stdlib.h>
#include <string.h>

int measure_space_archs(const pinas_net *space)
{
    int most = 1;
    for (int i = 0; i < pinas_net_n_nodes(space); i++) {
        const pinas_node *n = pinas_net_node(space, i);
        if (pinas_node_is_open(n) && n->n_cands > most) most = n->n_cands;
    }
    return most;
}

/* Architecture j of the space's cover in pass `pass`: open slot number s (in node order) takes
 * candidate perm[j mod n], perm a permutation of its n candidates drawn for (pass, s). So j = 0 ..
 * most-1 runs every candidate of every slot, and each pass next to other neighbours (a fixed
 * rotation always put the same candidate before a given one, and what ran before a node moves its
 * time by a few per cent). */
static pinas_status cover_arch(pinas_ctx *ctx, const pinas_net *space, int pass, int j, pinas_net **out)
{
    pinas_net *arch = pinas_net_clone(space);
    if (!arch) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    for (int i = 0, slot = 0; i < pinas_net_n_nodes(arch) && !s; i++) {
        const pinas_node *n = pinas_net_node(arch, i);
        if (!pinas_node_is_open(n)) continue;
        int perm[PINAS_MAX_CANDS];
        pinas_rng rng = {(uint64_t)(pass + 1) * 1000003 + (uint64_t)slot++};
        for (int c = 0; c < n->n_cands; c++) perm[c] = c;
        for (int c = n->n_cands - 1; c > 0; c--) { /* Fisher-Yates */
            int r = (int)pinas_rng_below(&rng, (uint64_t)c + 1), t = perm[c];
            perm[c] = perm[r];
            perm[r] = t;
        }
        s = pinas_net_decide(ctx, arch, i, perm[j % n->n_cands]);
    }
    if (s) pinas_net_free(arch);
    *out = s ? NULL : arch;
    return s;
}

/* Room for `more` entries in l (capacity doubles). */
static pinas_status list_reserve(pinas_ctx *ctx, measure_shape_list *l, int more)
{
    if (l->n + more <= l->cap) return PINAS_OK;
    int nc = l->cap ? 2 * l->cap : 1024;
    while (nc < l->n + more) nc *= 2;
    pinas_cpu_shape *nv = realloc(l->v, (size_t)nc * sizeof *nv);
    if (!nv) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    l->v = nv;
    l->cap = nc;
    return PINAS_OK;
}

/* Every node that computes, per party: one sample (its least of the runs). */
static pinas_status add_samples(pinas_ctx *ctx, const pinas_net *arch, const pinas_mpc_params *p, const pinas_measure_nodes *mn,
                                measure_shape_list *l)
{
    for (int i = 0; i < pinas_net_n_nodes(arch) && i < mn->n_nodes; i++) {
        int prim = pinas_cpu_prim_of(arch, i, NULL);
        if (prim < 0) continue;
        pinas_mpc_cost counts;
        pinas_status s = pinas_mpc_cost_node(ctx, arch, i, -1, p, &counts);
        if (s) return s;
        for (int q = 0; q < 2; q++) {
            if (!(mn->cpu_s[i][q] > 0)) continue;
            if ((s = list_reserve(ctx, l, 1))) return s;
            pinas_cpu_shape *e = &l->v[l->n++];
            e->prim = prim;
            e->party = q;
            pinas_cpu_features(arch, i, NULL, p->batch, &counts, q, e->f);
            e->s = mn->cpu_s[i][q];
            e->nodes = 1;
        }
    }
    return PINAS_OK;
}

/* Groups equal shapes into one entry each, in place: the median of their samples (least = 0) or
 * the least of their entries (least = 1, nodes summed). */
static pinas_status reduce_samples(pinas_ctx *ctx, measure_shape_list *l, int least)
{
    pinas_cpu_shapes_sort(l->v, l->n);
    double *tmp = malloc((size_t)(l->n ? l->n : 1) * sizeof *tmp);
    if (!tmp) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    int m = 0;
    for (int i = 0; i < l->n;) {
        int j = i, nodes = 0;
        double lo = l->v[i].s;
        while (j < l->n && l->v[j].prim == l->v[i].prim && l->v[j].party == l->v[i].party &&
               !memcmp(l->v[j].f, l->v[i].f, sizeof l->v[i].f)) {
            tmp[j - i] = l->v[j].s;
            lo = l->v[j].s < lo ? l->v[j].s : lo;
            nodes += l->v[j].nodes;
            j++;
        }
        pinas_cpu_shape e = l->v[i];
        e.s = least ? lo : measure_median(tmp, j - i);
        e.nodes = nodes;
        l->v[m++] = e;
        i = j;
    }
    free(tmp);
    l->n = m;
    return PINAS_OK;
}

/* One space at both batches, one pass (its own cover). */
static pinas_status run_space(pinas_ctx *ctx, const pinas_measure_calib_opts *o, const pinas_net *space, int si, int pass,
                              measure_shape_list *l, pinas_progress *pg, int *step)
{
    int batches[2] = {1, o->max_batch > 1 ? o->max_batch : 1}, nb = batches[1] > 1 ? 2 : 1;
    pinas_status s = PINAS_OK;
    for (int j = 0; j < measure_space_archs(space) && !s; j++) {
        pinas_net *arch = NULL;
        pinas_model *m = NULL;
        s = cover_arch(ctx, space, pass, j, &arch);
        if (!s) s = pinas_model_random(ctx, arch, 7717 * (uint64_t)(si + 1) + (uint64_t)j, &m);
        for (int bi = 0; bi < nb && !s; bi++) {
            pinas_mpc_params p = o->params;
            p.batch = batches[bi];
            p.threads = 1;
            pinas_measure_nodes mn;
            s = pinas_measure_node_cpu(ctx, m, p.batch, &p, o->runs, 1000 * (uint64_t)(si + 1) + (uint64_t)j, &mn);
            if (!s) s = add_samples(ctx, arch, &p, &mn, l);
            pinas_measure_nodes_free(&mn);
            if (pg) pinas_progress_update(pg, ++*step, pinas_net_name(space));
        }
        pinas_model_free(m);
        pinas_net_free(arch);
        if (s) s = pinas_error_prefix(ctx, s, "calibrate: space %s", pinas_net_name(space));
    }
    return s;
}

/* Appends l's entries to acc. */
static pinas_status append_list(pinas_ctx *ctx, measure_shape_list *acc, const measure_shape_list *l)
{
    pinas_status s = list_reserve(ctx, acc, l->n);
    if (s) return s;
    if (l->n) memcpy(acc->v + acc->n, l->v, (size_t)l->n * sizeof *l->v);
    acc->n += l->n;
    return PINAS_OK;
}

/* One pass over the spaces in a child process of its own (measure_in_child): its shapes (each
 * shape's median) and the progress step come back. */
typedef struct {
    const pinas_measure_calib_opts *o;
    int pass;
    pinas_progress *pg;
    int *step;
    measure_shape_list *acc;
} space_pass_job;

static pinas_status space_pass_child(pinas_ctx *ctx, int fd, void *user)
{
    space_pass_job *j = user;
    measure_shape_list l = {0};
    int step = *j->step;
    pinas_status s = PINAS_OK;
    for (int si = 0; si < j->o->n_spaces && !s; si++) s = run_space(ctx, j->o, j->o->spaces[si], si, j->pass, &l, j->pg, &step);
    if (!s) s = reduce_samples(ctx, &l, 0);
    int64_t step64 = step; /* 8 bytes: the shapes after it stay aligned */
    if (!s && measure_child_send(fd, &step64, sizeof step64, l.v, (size_t)l.n * sizeof *l.v))
        s = pinas_error(ctx, PINAS_EIO, "calibrate: sending the measured shapes back");
    free(l.v);
    return s;
}

static pinas_status space_pass_take(pinas_ctx *ctx, const void *buf, size_t len, void *user)
{
    space_pass_job *j = user;
    if (len < sizeof(int64_t) || (len - sizeof(int64_t)) % sizeof(pinas_cpu_shape))
        return pinas_error(ctx, PINAS_EIO, "calibrate: a malformed report from the measuring child");
    int64_t step64;
    memcpy(&step64, buf, sizeof step64);
    *j->step = (int)step64;
    measure_shape_list l = {.v = (pinas_cpu_shape *)(void *)((char *)buf + sizeof(int64_t)),
                            .n = (int)((len - sizeof(int64_t)) / sizeof(pinas_cpu_shape))};
    return append_list(ctx, j->acc, &l);
}

pinas_status measure_space_pass(pinas_ctx *ctx, const pinas_measure_calib_opts *o, int pass, pinas_progress *pg, int *step,
                                measure_shape_list *acc)
{
    space_pass_job j = {o, pass, pg, step, acc};
    return measure_in_child(ctx, space_pass_child, space_pass_take, &j);
}

pinas_status measure_space_finish(pinas_ctx *ctx, measure_shape_list *acc)
{
    return reduce_samples(ctx, acc, 1);
}
