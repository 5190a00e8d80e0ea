/* Calibration of the cpu profile: runtime micro-benchmarks over a size sweep, one GSL least-squares
 * line (time = a + b*work) per primitive, with the network's share of each timing subtracted. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

void pinas_measure_calib_opts_default(pinas_measure_calib_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 9;
    o->runs = 3;
    o->n_sizes = 6;
    o->scale = 1;
    pinas_mpc_params_default(&o->params);
}

typedef struct {
    const char *kind;     /* bench kind */
    double lo, hi;        /* size sweep */
} sweep;

/* One sweep per cpu primitive, in pinas_cpu_prim order. Sizes cover CIFAR layers at batch 1 (a
 * 16x32x32 activation is 16,384 elements; ResNet-20's convolutions are about 2.4 M ring MACs) and
 * beyond. */
static const sweep sweeps[PINAS_CPU_N_PRIM] = {
    {"relu", 1024, 131072}, {"poly", 1024, 131072}, {"patch_relu", 1024, 262144},
    {"maxpool", 1024, 262144}, {"conv", 65536, 33554432}, {"local", 4096, 1048576},
};

static double umax(const uint64_t v[2]) { return (double)(v[0] > v[1] ? v[0] : v[1]); }

/* The work the cpu profile charges a benchmark with (the same definition the cost model uses for nodes). */
static double bench_work(int prim, int64_t n, const pinas_mpc_cost *c)
{
    /* linear: ring multiply-adds; maxpool: pairs compared (one ring op each); others: elements. */
    if (prim == PINAS_CPU_LINEAR || prim == PINAS_CPU_MAXPOOL) return umax(c->online.ring_macs) > 0 ? umax(c->online.ring_macs) : (double)n;
    return (double)n;
}

/* A calibration under way: the sweep's sizes, the fastest run so far of each, and its counts. */
struct pinas_measure_calib {
    pinas_measure_calib_opts o;
    int nsz, passes;
    int measure_net;           /* the loopback is measured here: again at every pass, the best kept */
    double rtt, bandwidth;
    pinas_cost_link *own_link;
    const pinas_cost_link *link;
    int64_t ns[PINAS_CPU_N_PRIM][PINAS_MEASURE_MAX_SIZES];
    double best[PINAS_CPU_N_PRIM][PINAS_MEASURE_MAX_SIZES], best_base[PINAS_CPU_N_PRIM][PINAS_MEASURE_MAX_SIZES];
    pinas_mpc_cost cs[PINAS_CPU_N_PRIM][PINAS_MEASURE_MAX_SIZES], cs_base[PINAS_CPU_N_PRIM][PINAS_MEASURE_MAX_SIZES];
};

/* Private benchmarks are one-operator nets; their harness (sharing the input, pooling, revealing the
 * output, starting the online phase) is timed alone with the same input and subtracted, so that a
 * primitive's per-call cost is its own and not the harness's (a network pays that once, not per node). */
static int has_harness(int prim) { return prim != PINAS_CPU_LOCAL; }

/* The network the benchmarks run over: o->link, else this host's loopback, measured (the runtime's
 * benchmarks) or the shipped profile (synthetic ones). */
static pinas_status calib_network(pinas_ctx *ctx, const pinas_measure_calib_opts *o, pinas_measure_calib *c)
{
    c->link = o ? o->link : NULL;
    if (c->link) return PINAS_OK;
    pinas_status s;
    if (!o || !o->bench) {
        c->measure_net = 1;
        s = measure_loopback(ctx, &c->rtt, &c->bandwidth);
        if (!s) s = pinas_cost_link_create(ctx, "loopback", c->bandwidth, c->rtt, &c->own_link);
    } else {
        s = pinas_cost_link_load(ctx, "loopback", &c->own_link);
    }
    if (s) return pinas_error_prefix(ctx, s, "calibrate");
    c->link = c->own_link;
    return PINAS_OK;
}

pinas_status pinas_measure_calib_begin(pinas_ctx *ctx, const pinas_measure_calib_opts *o, pinas_measure_calib **out)
{
    *out = NULL;
    pinas_measure_calib *c = calloc(1, sizeof *c);
    if (!c) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (o) c->o = *o;
    else pinas_measure_calib_opts_default(&c->o);
    if (c->o.reps <= 0) c->o.reps = 5;
    if (c->o.runs <= 0) c->o.runs = 1;
    if (!(c->o.scale > 0)) c->o.scale = 1;
    if (!c->o.bench) c->o.bench = measure_runtime_bench;
    c->nsz = c->o.n_sizes >= 3 ? (c->o.n_sizes <= PINAS_MEASURE_MAX_SIZES ? c->o.n_sizes : PINAS_MEASURE_MAX_SIZES) : 3;
    pinas_status s = calib_network(ctx, o, c);
    if (s) {
        free(c);
        return s;
    }
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++) {
        const sweep *sw = &sweeps[k];
        double lo = sw->lo * c->o.scale, hi = sw->hi * c->o.scale;
        if (lo < 16) lo = 16;
        if (hi < lo * 8) hi = lo * 8;
        for (int i = 0; i < c->nsz; i++) {
            int64_t n = (int64_t)llround(lo * pow(hi / lo, (double)i / (c->nsz - 1)));
            if (k != PINAS_CPU_LINEAR && k != PINAS_CPU_LOCAL) { /* whole channels of 16 x 16 */
                n = (n + 128) / 256 * 256;
                if (n < 256) n = 256;
            }
            c->ns[k][i] = n;
            c->best[k][i] = c->best_base[k][i] = INFINITY;
        }
    }
    *out = c;
    return PINAS_OK;
}

void pinas_measure_calib_free(pinas_measure_calib *c)
{
    if (!c) return;
    pinas_cost_link_free(c->own_link);
    free(c);
}

int pinas_measure_calib_steps(const pinas_measure_calib *c)
{
    int n = 0;
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++) n += (1 + has_harness(k)) * c->nsz;
    return n;
}

const pinas_cost_link *pinas_measure_calib_link(const pinas_measure_calib *c) { return c->link; }

pinas_status pinas_measure_calib_pass(pinas_ctx *ctx, pinas_measure_calib *c, pinas_progress *pg, int64_t *done)
{
    /* One run of every size of every primitive: the fastest over the passes estimates the uncontended
     * cost (on a shared machine other processes only ever add time; validate-latency measures the same
     * way), and since every pass visits every size, a busy spell of the machine spreads over all of
     * them instead of falling on every run of one primitive. */
    if (c->measure_net) {
        /* The loopback's round trip is a thread wake-up here, which busy neighbours slow down too:
         * keep the fastest, as for the benchmarks. */
        double rtt = 0, bw = 0;
        pinas_status s = measure_loopback(ctx, &rtt, &bw);
        if (s) return pinas_error_prefix(ctx, s, "calibrate");
        if (rtt < c->rtt) c->rtt = rtt;
        if (bw > c->bandwidth) c->bandwidth = bw;
    }
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++)
        for (int i = 0; i < c->nsz; i++)
            for (int base = 0; base <= has_harness(k); base++) {
                char kind[32];
                snprintf(kind, sizeof kind, "%s%s", base ? "base:" : "", sweeps[k].kind);
                double t1 = 0;
                pinas_mpc_cost *cs = base ? &c->cs_base[k][i] : &c->cs[k][i];
                pinas_status s = c->o.bench(ctx, kind, c->ns[k][i], c->o.runs, &c->o.params, &t1, cs, c->o.bench_user);
                if (s) return pinas_error_prefix(ctx, s, "calibrate: bench %s n=%lld", kind, (long long)c->ns[k][i]);
                double *best = base ? &c->best_base[k][i] : &c->best[k][i];
                if (t1 < *best) *best = t1;
                ++*done;
                if (pg) {
                    char st[64];
                    snprintf(st, sizeof st, "%s n=%lld %.3g ms", kind, (long long)c->ns[k][i], t1 * 1e3);
                    pinas_progress_update(pg, *done, st);
                }
            }
    c->passes++;
    return PINAS_OK;
}

pinas_status pinas_measure_calibrate(pinas_ctx *ctx, const pinas_measure_calib_opts *o, pinas_measure_calib_result **out)
{
    *out = NULL;
    pinas_measure_calib *c = NULL;
    pinas_status s = pinas_measure_calib_begin(ctx, o, &c);
    if (s) return s;
    pinas_progress *pg = pinas_progress_create(ctx, stderr, "calibrate", (int64_t)pinas_measure_calib_steps(c) * c->o.reps + 2);
    int64_t done = 0;
    for (int r = 0; r < c->o.reps && !s; r++) s = pinas_measure_calib_pass(ctx, c, pg, &done);
    if (!s) s = pinas_measure_calib_finish(ctx, c, pg, &done, out);
    pinas_progress_finish(pg);
    pinas_measure_calib_free(c);
    return s;
}

/* Fits time = a + b*work per primitive on the fastest runs, the network's and the harness's share
 * subtracted. */
static pinas_status fit_prims(pinas_ctx *ctx, const pinas_measure_calib *c, pinas_cpu_params *cp, pinas_measure_calib_result *r)
{
    const pinas_cost_link *link = c->link;
    double rtt = pinas_cost_link_rtt(link), bw = pinas_cost_link_bandwidth(link);
    double x[PINAS_MEASURE_MAX_SIZES], y[PINAS_MEASURE_MAX_SIZES];
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++) {
        pinas_measure_fit *f = &r->prims[k];
        f->n_points = c->nsz;
        for (int i = 0; i < c->nsz; i++) {
            /* What the network took is the network profile's business: subtract it so that
             * cpu + loopback gives back the measured time and cpu + lan adds the LAN's cost instead. */
            const pinas_mpc_cost *cs = &c->cs[k][i], *cb = &c->cs_base[k][i];
            double comm = (double)cs->online.rounds * rtt + umax(cs->online.bytes) / bw;
            double harness = 0;
            if (has_harness(k)) harness = c->best_base[k][i] - ((double)cb->online.rounds * rtt + umax(cb->online.bytes) / bw);
            x[i] = bench_work(k, c->ns[k][i], cs);
            y[i] = c->best[k][i] - comm - harness;
            f->points[i][0] = x[i];
            f->points[i][1] = c->best[k][i];
            f->points[i][2] = comm;
            f->points[i][3] = harness;
        }
        pinas_status s = pinas_measure_fit_line(ctx, c->nsz, x, y, &cp->a[k], &cp->b[k], &cp->r2[k]);
        if (s) return pinas_error_prefix(ctx, s, "calibrate: %s", pinas_cpu_prim_name(k));
        f->a = cp->a[k];
        f->b = cp->b[k];
        f->r2 = cp->r2[k];
    }
    return PINAS_OK;
}

/* The dealer's throughput for the offline estimate: AES blocks and ring multiply-adds per second. */
static pinas_status dealer_rates(pinas_ctx *ctx, const pinas_measure_calib *c, pinas_progress *pg, int64_t *done, pinas_cpu_params *cp)
{
    const char *off_kinds[2] = {"prg", "gemm"};
    int64_t off_n[2] = {(int64_t)(1048576 * c->o.scale), (int64_t)(16777216 * c->o.scale)};
    for (int k = 0; k < 2; k++) {
        double best = 0;
        pinas_mpc_cost oc;
        memset(&oc, 0, sizeof oc);
        if (off_n[k] < 4096) off_n[k] = 4096;
        pinas_status s = c->o.bench(ctx, off_kinds[k], off_n[k], c->o.reps, &c->o.params, &best, &oc, c->o.bench_user);
        if (s) return pinas_error_prefix(ctx, s, "calibrate: bench %s", off_kinds[k]);
        double work = k == 0 ? (double)oc.offline.aes_blocks[0] : (double)oc.offline.ring_macs[0];
        if (work <= 0) work = (double)off_n[k];
        double rate = best > 0 ? work / best : 1e15;
        if (k == 0) cp->aes_blocks_per_s = rate;
        else cp->ring_macs_per_s = rate;
        ++*done;
        if (pg) pinas_progress_update(pg, *done, off_kinds[k]);
    }
    return PINAS_OK;
}

/* The fitted profile, with where and how it was fitted. */
static pinas_status make_profile(pinas_ctx *ctx, const pinas_measure_calib *c, const pinas_cpu_params *cp, pinas_cost_hw **out)
{
    char date[32];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    struct utsname u;
    pinas_cpu_calibration cal = {
        .date = date,
        .machine = uname(&u) == 0 ? u.machine : NULL,
        .pinas_version = PINAS_VERSION,
        .git = PINAS_GIT_REV,
        .net = pinas_cost_link_name(c->link),
        .net_rtt_ms = pinas_cost_link_rtt(c->link) * 1e3,
        .net_bandwidth_mbit_per_s = pinas_cost_link_bandwidth(c->link) * 8 / 1e6,
        .reps = c->passes,
        .sizes = c->nsz,
        .scale = c->o.scale,
        .frac_bits = c->o.params.frac_bits,
        .cmp_bits = c->o.params.cmp_bits,
    };
    return pinas_cost_hw_cpu_create(ctx, cp, &cal, out);
}

pinas_status pinas_measure_calib_finish(pinas_ctx *ctx, pinas_measure_calib *c, pinas_progress *pg, int64_t *done,
                                        pinas_measure_calib_result **out)
{
    *out = NULL;
    if (c->passes < 1) return pinas_error(ctx, PINAS_EINVAL, "calibrate: no pass was run");
    if (c->measure_net) {
        pinas_cost_link *l = NULL;
        pinas_status s = pinas_cost_link_create(ctx, "loopback", c->bandwidth, c->rtt, &l);
        if (s) return s;
        pinas_cost_link_free(c->own_link);
        c->own_link = l;
        c->link = l;
    }
    pinas_measure_calib_result *r = calloc(1, sizeof *r);
    if (!r) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_cpu_params cp;
    memset(&cp, 0, sizeof cp);
    r->net = pinas_cost_link_clone(c->link);
    pinas_status s = r->net ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = fit_prims(ctx, c, &cp, r);
    if (!s) s = dealer_rates(ctx, c, pg, done, &cp);
    if (!s) s = make_profile(ctx, c, &cp, &r->profile);
    if (s) {
        pinas_measure_calib_result_free(r);
        return s;
    }
    r->aes_blocks_per_s = cp.aes_blocks_per_s;
    r->ring_macs_per_s = cp.ring_macs_per_s;
    *out = r;
    return PINAS_OK;
}

void pinas_measure_calib_result_free(pinas_measure_calib_result *r)
{
    if (!r) return;
    pinas_cost_hw_free(r->profile);
    pinas_cost_link_free(r->net);
    free(r);
}

cJSON *pinas_measure_calib_result_to_json(const pinas_measure_calib_result *r)
{
    cJSON *rep = cJSON_CreateObject();
    cJSON_AddItemToObject(rep, "net", pinas_cost_link_to_json(r->net));
    cJSON *prims = cJSON_AddObjectToObject(rep, "primitives");
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++) {
        const pinas_measure_fit *f = &r->prims[k];
        cJSON *po = cJSON_AddObjectToObject(prims, pinas_cpu_prim_name(k));
        cJSON_AddNumberToObject(po, "a", f->a);
        cJSON_AddNumberToObject(po, "b", f->b);
        cJSON_AddNumberToObject(po, "r2", f->r2);
        cJSON *pts = cJSON_AddArrayToObject(po, "points"); /* [work, measured s, network s, harness s] */
        for (int i = 0; i < f->n_points; i++) {
            double v[4] = {f->points[i][0], f->points[i][1], f->points[i][2], f->points[i][3]};
            cJSON_AddItemToArray(pts, cJSON_CreateDoubleArray(v, 4));
        }
    }
    cJSON_AddItemToObject(rep, "profile", pinas_cost_hw_to_json(r->profile));
    cJSON *ro = cJSON_AddObjectToObject(rep, "offline");
    cJSON_AddNumberToObject(ro, "aes_blocks_per_s", r->aes_blocks_per_s);
    cJSON_AddNumberToObject(ro, "ring_macs_per_s", r->ring_macs_per_s);
    return rep;
}

static const char loopback_description[] =
    "Both parties on one host over TCP loopback (how `pinas infer`, `pinas calibrate` and `pinas validate-latency` "
    "run): round trip of one exchange and stream bandwidth between the runtime's two party threads, measured by "
    "`pinas calibrate` together with the cpu profile (which is fitted with this profile's cost subtracted).";

pinas_status pinas_measure_calib_save(pinas_ctx *ctx, const pinas_measure_calib_result *r, const char *path, const char *loopback_path)
{
    cJSON *prof = pinas_cost_hw_to_json(r->profile);
    pinas_status s = prof ? pinas_json_save(ctx, path, prof) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_Delete(prof);
    if (s || !loopback_path) return s;
    cJSON *lj = pinas_cost_link_to_json(r->net);
    if (!lj) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_AddStringToObject(lj, "description", loopback_description);
    s = pinas_json_save(ctx, loopback_path, lj);
    cJSON_Delete(lj);
    return s;
}
