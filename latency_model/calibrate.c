/* Calibration of the cpu profile: runtime micro-benchmarks over a size sweep, one GSL least-squares
 * line (time = a + b*work) per primitive, with the network's share of each timing subtracted. */
#define _GNU_SOURCE
#include "cost_internal.h"

#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

pinas_status pinas_cost_fit_line(pinas_ctx *ctx, int n, const double *x, const double *y, double *a, double *b, double *r2)
{
    if (n < 3) return pinas_error(ctx, PINAS_EINVAL, "fit: need at least 3 points, got %d", n);
    double *w = malloc((size_t)n * sizeof *w);
    if (!w) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    double xmin = x[0], xmax = x[0];
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) {
            free(w);
            return pinas_error(ctx, PINAS_EINVAL, "fit: point %d is not finite (%g, %g)", i, x[i], y[i]);
        }
        /* Relative least squares: small sizes (where the per-call cost dominates) count as much as
         * large ones, which is what a per-layer prediction of small CIFAR layers needs. */
        double yy = fabs(y[i]) > 1e-12 ? fabs(y[i]) : 1e-12;
        w[i] = 1.0 / (yy * yy);
        if (x[i] < xmin) xmin = x[i];
        if (x[i] > xmax) xmax = x[i];
    }
    if (xmax == xmin) {
        free(w);
        return pinas_error(ctx, PINAS_EINVAL, "fit: every point has the same work %g; need a size sweep", xmin);
    }
    double c0, c1, c00, c01, c11, chisq;
    int rc = gsl_fit_wlinear(x, 1, w, 1, y, 1, (size_t)n, &c0, &c1, &c00, &c01, &c11, &chisq);
    free(w);
    if (rc == 0 && c1 < 0) {
        /* Work never makes a primitive faster: fall back to a constant (the weighted mean). */
        double sw = 0, sy = 0;
        for (int i = 0; i < n; i++) {
            double yy = fabs(y[i]) > 1e-12 ? fabs(y[i]) : 1e-12;
            sw += 1 / (yy * yy);
            sy += y[i] / (yy * yy);
        }
        c0 = sy / sw;
        c1 = 0;
    }
    if (rc) return pinas_error(ctx, PINAS_EINTERNAL, "fit: GSL gsl_fit_wlinear failed (code %d)", rc);
    /* R^2 in the fit's own (relative) weighting: 1 - sum w e^2 / sum w (y - weighted mean)^2. */
    double mean = 0, wsum = 0, ss_tot = 0, ss_res = 0;
    for (int i = 0; i < n; i++) {
        double yy = fabs(y[i]) > 1e-12 ? fabs(y[i]) : 1e-12, wi = 1.0 / (yy * yy);
        mean += wi * y[i];
        wsum += wi;
    }
    mean /= wsum;
    for (int i = 0; i < n; i++) {
        double yy = fabs(y[i]) > 1e-12 ? fabs(y[i]) : 1e-12, wi = 1.0 / (yy * yy);
        double e = y[i] - (c0 + c1 * x[i]);
        ss_res += wi * e * e;
        ss_tot += wi * (y[i] - mean) * (y[i] - mean);
    }
    *a = c0;
    *b = c1;
    *r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : (ss_res == 0 ? 1 : 0);
    return PINAS_OK;
}

void pinas_cost_calib_opts_default(pinas_cost_calib_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 9;
    o->runs = 3;
    o->n_sizes = 6;
    o->scale = 1;
    pinas_mpc_params_default(&o->params);
}

/* The default bench: one-operator private inferences (bench_onenet); "local" (share additions), "prg"
 * (AES-CTR expansion) and "gemm" (ring products) are timed in process, as they involve no peer. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One-operator nets run privately by the runtime (pinas_mpc_infer_local): input [C, 16, 16] -> op ->
 * global average pool, timed over the whole online phase. Per-layer times are the client's view, and
 * the client often finishes a layer before the server (it only sends its masked conv input; its half
 * of a comparison can end first), so the server's share of a layer shows up where the client next
 * waits: only the whole run holds an operator's full cost. The pooling and the reveal of C logits
 * add a small constant (absorbed by the intercept).
 *   relu, poly, patch_relu (2x2): C = n / 256, n elements;
 *   maxpool: 3x3, stride 2, padding 1 (the ImageNet stem's), C = n / 256 input elements;
 *   conv: 3x3 C -> C with the batchnorm the runtime folds into it (as in real nets), C picked so that
 *   the product has about n ring multiply-adds (the runtime's "linear" benchmark is a matrix-vector
 *   product, whose cost per multiply-add is far from a convolution's). */
static pinas_status bench_onenet(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p, double *best_s,
                                 pinas_mpc_cost *counts)
{
    /* "base:KIND": the same net without its op (input -> global average pool), the harness alone */
    int base = strncmp(kind, "base:", 5) == 0;
    if (base) kind += 5;
    int conv = strcmp(kind, "conv") == 0;
    int C = conv ? (int)llround(sqrt((double)n / (9.0 * 256))) : (int)llround((double)n / 256);
    if (C < 1) C = 1;
    char op[256], js[768];
    if (conv)
        snprintf(op, sizeof op,
                 "{\"id\":\"op\",\"op\":\"conv2d\",\"out_channels\":%d,\"kernel\":3,\"padding\":1},{\"id\":\"bn\",\"op\":\"batchnorm\"}", C);
    else if (strcmp(kind, "maxpool") == 0)
        snprintf(op, sizeof op, "{\"id\":\"op\",\"op\":\"pool\",\"kernel\":3,\"stride\":2,\"padding\":1,\"candidates\":[\"maxpool\"]}");
    else if (strcmp(kind, "relu") == 0 || strcmp(kind, "poly") == 0 || strcmp(kind, "patch_relu") == 0)
        snprintf(op, sizeof op, "{\"id\":\"op\",\"op\":\"act\",\"candidates\":[\"%s\"]}", strcmp(kind, "patch_relu") == 0 ? "patch_relu:2x2" : kind);
    else
        return pinas_error(ctx, PINAS_EINVAL, "benchmark kind \"%s\": expected relu, poly, patch_relu, maxpool, conv, local, prg or gemm", kind);
    snprintf(js, sizeof js,
             "{\"format\":\"pinas-net/1\",\"name\":\"bench-%s\",\"input\":[%d,16,16],\"num_classes\":%d,\"nodes\":[%s%s"
             "{\"id\":\"g\",\"op\":\"global_avgpool\"}]}",
             kind, C, C, base ? "" : op, base ? "" : ",");
    cJSON *j = cJSON_Parse(js);
    pinas_net *net = NULL;
    pinas_model *m = NULL;
    pinas_status s = j ? pinas_net_from_json(ctx, j, "benchmark net", &net) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_Delete(j);
    if (!s) s = pinas_model_random(ctx, net, 1, &m);
    size_t nx = (size_t)C * 256;
    float *x = malloc(nx * sizeof *x), *lg = malloc((size_t)C * sizeof *lg);
    double *t = calloc((size_t)reps, sizeof *t);
    if (!s && (!x || !lg || !t)) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (size_t i = 0; !s && i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1;
    pinas_mpc_report **reps_out = calloc((size_t)reps, sizeof *reps_out);
    if (!s && !reps_out) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    /* one preprocessing, `reps` online runs: the same work each time, the dealer paid once */
    if (!s) s = pinas_mpc_bench_local(ctx, m, x, 1, p, reps, lg, reps_out);
    for (int r = 0; r < reps && !s; r++) {
        t[r] = reps_out[r]->online_s;
        *counts = reps_out[r]->totals;
    }
    for (int r = 0; reps_out && r < reps; r++) pinas_mpc_report_free(reps_out[r]);
    free(reps_out);
    if (!s) {
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        *best_s = t[0];
    }
    free(t);
    free(x);
    free(lg);
    pinas_model_free(m);
    pinas_net_free(net);
    return s;
}

/* Loopback round trip and bandwidth between two threads over pinas_chan, as the runtime's parties see them. */
typedef struct {
    int rounds;
    size_t big;
    double rtt, secs;
} loop_job;

static pinas_status loop_fn(pinas_ctx *ctx, pinas_chan *ch, int role, void *user)
{
    (void)role;
    loop_job *j = user;
    uint8_t *buf = malloc(j->big), *rbuf = malloc(j->big);
    double *t = calloc((size_t)j->rounds, sizeof *t);
    pinas_status s = buf && rbuf && t ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (buf) memset(buf, 0x5a, j->big);
    for (int r = 0; r < j->rounds && !s; r++) {
        uint64_t ping = (uint64_t)r, pong = 0;
        double t0 = pinas_now();
        s = pinas_chan_exchange(ctx, ch, 7, &ping, sizeof ping, &pong, sizeof pong);
        t[r] = pinas_now() - t0;
    }
    if (!s) {
        qsort(t, (size_t)j->rounds, sizeof *t, cmp_double);
        j->rtt = t[j->rounds / 2];
        j->secs = INFINITY;
        for (int r = 0; r < 5 && !s; r++) { /* the fastest of 5 transfers */
            double t0 = pinas_now();
            s = pinas_chan_exchange(ctx, ch, 8, buf, j->big, rbuf, j->big);
            double dt = pinas_now() - t0;
            if (dt < j->secs) j->secs = dt;
        }
    }
    free(t);
    free(buf);
    free(rbuf);
    return s;
}

static pinas_status measure_loopback(pinas_ctx *ctx, double *rtt_s, double *bandwidth_Bps)
{
    loop_job a = {.rounds = 201, .big = 4 << 20}, b = a;
    pinas_status s = pinas_mpc_loopback_pair(ctx, 10000, loop_fn, &a, &b);
    if (s) return pinas_error_prefix(ctx, s, "loopback measurement");
    /* One exchange = one round: both directions at once, as in the protocols. */
    *rtt_s = 0.5 * (a.rtt + b.rtt);
    double secs = a.secs > b.secs ? a.secs : b.secs;
    *bandwidth_Bps = secs > 0 ? (double)a.big / secs : 1e12;
    return PINAS_OK;
}

static pinas_status runtime_bench(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p, double *best_s,
                                  pinas_mpc_cost *counts, void *user)
{
    (void)user;
    memset(counts, 0, sizeof *counts);
    if (strcmp(kind, "local") != 0 && strcmp(kind, "prg") != 0 && strcmp(kind, "gemm") != 0)
        return bench_onenet(ctx, kind, n, reps, p, best_s, counts);
    double *t = calloc((size_t)reps, sizeof *t);
    if (!t) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    if (strcmp(kind, "local") == 0) {
        uint64_t *x = malloc((size_t)n * 8), *y = malloc((size_t)n * 8);
        if (!x || !y) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        for (int64_t i = 0; !s && i < n; i++) x[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL, y[i] = (uint64_t)i;
        for (int r = 0; !s && r < reps; r++) {
            double t0 = pinas_now();
            for (int64_t i = 0; i < n; i++) y[i] += x[i];
            t[r] = pinas_now() - t0;
            __asm__ volatile("" : : "r"(y) : "memory");
        }
        free(x);
        free(y);
    } else if (strcmp(kind, "prg") == 0) {
        uint8_t seed[16] = {1, 2, 3};
        pinas_prg *g = NULL;
        uint8_t *buf = malloc((size_t)n * 16);
        if (!buf) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        if (!s) s = pinas_prg_create(ctx, seed, &g);
        for (int r = 0; !s && r < reps; r++) {
            double t0 = pinas_now();
            pinas_prg_bytes(g, buf, (size_t)n * 16);
            t[r] = pinas_now() - t0;
        }
        counts->offline.aes_blocks[0] = (uint64_t)n;
        pinas_prg_free(g);
        free(buf);
    } else { /* gemm: an m x m by m x m ring product with m^3 ~ n */
        int m = (int)ceil(cbrt((double)n));
        if (m < 2) m = 2;
        size_t mm = (size_t)m * m;
        uint64_t *A = malloc(mm * 8), *B = malloc(mm * 8), *C = malloc(mm * 8);
        if (!A || !B || !C) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        for (size_t i = 0; !s && i < mm; i++) A[i] = i * 0x9e3779b97f4a7c15ULL, B[i] = i ^ 0x5555;
        for (int r = 0; !s && r < reps; r++) {
            double t0 = pinas_now();
            pinas_ring_gemm(m, m, m, A, m, B, m, C, m, 0);
            t[r] = pinas_now() - t0;
        }
        counts->offline.ring_macs[0] = (uint64_t)m * m * m;
        free(A);
        free(B);
        free(C);
    }
    if (!s) {
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        *best_s = t[0];
    }
    free(t);
    return s;
}

typedef struct {
    const char *kind;     /* bench kind */
    double lo, hi;        /* size sweep */
} sweep;

/* One sweep per cpu primitive, in cpu_prim order. Sizes cover CIFAR layers at batch 1 (a 16x32x32
 * activation is 16,384 elements; ResNet-20's convolutions are about 2.4 M ring MACs) and beyond. */
static const sweep sweeps[CPU_N_PRIM] = {
    {"relu", 1024, 131072}, {"poly", 1024, 131072}, {"patch_relu", 1024, 262144},
    {"maxpool", 1024, 262144}, {"conv", 65536, 33554432}, {"local", 4096, 1048576},
};

static double umax(const uint64_t v[2]) { return (double)(v[0] > v[1] ? v[0] : v[1]); }

/* The work the cpu profile charges a benchmark with (the same definition cost_cpu_compute uses for nodes). */
static double bench_work(int prim, int64_t n, const pinas_mpc_cost *c)
{
    /* linear: ring multiply-adds; maxpool: pairs compared (one ring op each); others: elements. */
    if (prim == CPU_LINEAR || prim == CPU_MAXPOOL) return umax(c->online.ring_macs) > 0 ? umax(c->online.ring_macs) : (double)n;
    return (double)n;
}

/* A calibration under way: the sweep's sizes, the fastest run so far of each, and its counts. */
struct pinas_cost_calib {
    pinas_cost_calib_opts o;
    int nsz, passes;
    int measure_net;           /* the loopback is measured here: again at every pass, the best kept */
    double rtt, bandwidth;
    pinas_cost_link *own_link;
    const pinas_cost_link *link;
    int64_t ns[CPU_N_PRIM][64];
    double best[CPU_N_PRIM][64], best_base[CPU_N_PRIM][64];
    pinas_mpc_cost cs[CPU_N_PRIM][64], cs_base[CPU_N_PRIM][64];
};

/* Private benchmarks are one-operator nets; their harness (sharing the input, pooling, revealing the
 * output, starting the online phase) is timed alone with the same input and subtracted, so that a
 * primitive's per-call cost is its own and not the harness's (a network pays that once, not per node). */
static int has_harness(int prim) { return prim != CPU_LOCAL; }

pinas_status pinas_cost_calib_begin(pinas_ctx *ctx, const pinas_cost_calib_opts *o, pinas_cost_calib **out)
{
    *out = NULL;
    pinas_cost_calib *c = calloc(1, sizeof *c);
    if (!c) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (o) c->o = *o;
    else pinas_cost_calib_opts_default(&c->o);
    if (c->o.reps <= 0) c->o.reps = 5;
    if (c->o.runs <= 0) c->o.runs = 1;
    if (!(c->o.scale > 0)) c->o.scale = 1;
    if (!c->o.bench) c->o.bench = runtime_bench;
    c->nsz = c->o.n_sizes >= 3 ? (c->o.n_sizes <= 64 ? c->o.n_sizes : 64) : 3;
    c->link = o ? o->link : NULL;
    if (!c->link) {
        /* The runtime's benchmarks run over this host's loopback: measure it, so that exactly the
         * network's share is taken out. Synthetic benchmarks use the shipped loopback profile. */
        pinas_status s;
        if (!o || !o->bench) {
            c->measure_net = 1;
            s = measure_loopback(ctx, &c->rtt, &c->bandwidth);
            if (!s) s = pinas_cost_link_create(ctx, "loopback", c->bandwidth, c->rtt, &c->own_link);
        } else {
            s = pinas_cost_link_load(ctx, "loopback", &c->own_link);
        }
        if (s) {
            free(c);
            return pinas_error_prefix(ctx, s, "calibrate");
        }
        c->link = c->own_link;
    }
    for (int k = 0; k < CPU_N_PRIM; k++) {
        const sweep *sw = &sweeps[k];
        double lo = sw->lo * c->o.scale, hi = sw->hi * c->o.scale;
        if (lo < 16) lo = 16;
        if (hi < lo * 8) hi = lo * 8;
        for (int i = 0; i < c->nsz; i++) {
            int64_t n = (int64_t)llround(lo * pow(hi / lo, (double)i / (c->nsz - 1)));
            if (k != CPU_LINEAR && k != CPU_LOCAL) { /* whole channels of 16 x 16 */
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

void pinas_cost_calib_free(pinas_cost_calib *c)
{
    if (!c) return;
    pinas_cost_link_free(c->own_link);
    free(c);
}

int pinas_cost_calib_steps(const pinas_cost_calib *c)
{
    int n = 0;
    for (int k = 0; k < CPU_N_PRIM; k++) n += (1 + has_harness(k)) * c->nsz;
    return n;
}

const pinas_cost_link *pinas_cost_calib_link(const pinas_cost_calib *c) { return c->link; }

pinas_status pinas_cost_calib_pass(pinas_ctx *ctx, pinas_cost_calib *c, pinas_progress *pg, int64_t *done)
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
    for (int k = 0; k < CPU_N_PRIM; k++)
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

pinas_status pinas_cost_calibrate(pinas_ctx *ctx, const pinas_cost_calib_opts *o, pinas_cost_hw **out, cJSON **report)
{
    *out = NULL;
    if (report) *report = NULL;
    pinas_cost_calib *c = NULL;
    pinas_status s = pinas_cost_calib_begin(ctx, o, &c);
    if (s) return s;
    pinas_progress *pg = pinas_progress_create(ctx, stderr, "calibrate", (int64_t)pinas_cost_calib_steps(c) * c->o.reps + 2);
    int64_t done = 0;
    for (int r = 0; r < c->o.reps && !s; r++) s = pinas_cost_calib_pass(ctx, c, pg, &done);
    if (!s) s = pinas_cost_calib_finish(ctx, c, pg, &done, out, report);
    pinas_progress_finish(pg);
    pinas_cost_calib_free(c);
    return s;
}

pinas_status pinas_cost_calib_finish(pinas_ctx *ctx, pinas_cost_calib *c, pinas_progress *pg, int64_t *done, pinas_cost_hw **out,
                                     cJSON **report)
{
    *out = NULL;
    if (report) *report = NULL;
    if (c->passes < 1) return pinas_error(ctx, PINAS_EINVAL, "calibrate: no pass was run");
    if (c->measure_net) {
        pinas_cost_link *l = NULL;
        pinas_status s = pinas_cost_link_create(ctx, "loopback", c->bandwidth, c->rtt, &l);
        if (s) return s;
        pinas_cost_link_free(c->own_link);
        c->own_link = l;
        c->link = l;
    }
    const pinas_cost_link *link = c->link;
    const pinas_cost_calib_opts *o = &c->o;
    pinas_cost_bench_fn bench = o->bench;
    int reps = o->reps, nsz = c->nsz;
    double scale = o->scale;
    pinas_status s = PINAS_OK;
    cpu_params cp;
    memset(&cp, 0, sizeof cp);
    cJSON *rep = cJSON_CreateObject();
    cJSON_AddItemToObject(rep, "net", pinas_cost_link_to_json(link));
    cJSON *prims = cJSON_AddObjectToObject(rep, "primitives");
    double x[64], y[64];
    for (int k = 0; k < CPU_N_PRIM && !s; k++) {
        cJSON *pts = cJSON_CreateArray();
        for (int i = 0; i < nsz; i++) {
            /* What the network took is the network profile's business: subtract it so that
             * cpu + loopback gives back the measured time and cpu + lan adds the LAN's cost instead. */
            const pinas_mpc_cost *cs = &c->cs[k][i], *cb = &c->cs_base[k][i];
            double comm = (double)cs->online.rounds * link->rtt + umax(cs->online.bytes) / link->bandwidth;
            double harness = 0;
            if (has_harness(k))
                harness = c->best_base[k][i] - ((double)cb->online.rounds * link->rtt + umax(cb->online.bytes) / link->bandwidth);
            x[i] = bench_work(k, c->ns[k][i], cs);
            y[i] = c->best[k][i] - comm - harness;
            cJSON *pt = cJSON_CreateArray();
            cJSON_AddItemToArray(pt, cJSON_CreateNumber(x[i]));
            cJSON_AddItemToArray(pt, cJSON_CreateNumber(c->best[k][i]));
            cJSON_AddItemToArray(pt, cJSON_CreateNumber(comm));
            cJSON_AddItemToArray(pt, cJSON_CreateNumber(harness));
            cJSON_AddItemToArray(pts, pt);
        }
        s = pinas_cost_fit_line(ctx, nsz, x, y, &cp.a[k], &cp.b[k], &cp.r2[k]);
        if (s) {
            pinas_error_prefix(ctx, s, "calibrate: %s", cpu_prim_names[k]);
            cJSON_Delete(pts);
            break;
        }
        cJSON *po = cJSON_AddObjectToObject(prims, cpu_prim_names[k]);
        cJSON_AddNumberToObject(po, "a", cp.a[k]);
        cJSON_AddNumberToObject(po, "b", cp.b[k]);
        cJSON_AddNumberToObject(po, "r2", cp.r2[k]);
        cJSON_AddItemToObject(po, "points", pts); /* [work, measured s, network s, harness s] */
    }
    /* Dealer throughput for the offline estimate. */
    const char *off_kinds[2] = {"prg", "gemm"};
    int64_t off_n[2] = {(int64_t)(1048576 * scale), (int64_t)(16777216 * scale)};
    for (int k = 0; k < 2 && !s; k++) {
        double best = 0;
        pinas_mpc_cost oc;
        memset(&oc, 0, sizeof oc);
        if (off_n[k] < 4096) off_n[k] = 4096;
        s = bench(ctx, off_kinds[k], off_n[k], reps, &o->params, &best, &oc, o->bench_user);
        if (s) {
            pinas_error_prefix(ctx, s, "calibrate: bench %s", off_kinds[k]);
            break;
        }
        double work = k == 0 ? (double)oc.offline.aes_blocks[0] : (double)oc.offline.ring_macs[0];
        if (work <= 0) work = (double)off_n[k];
        double rate = best > 0 ? work / best : 1e15;
        if (k == 0) cp.aes_blocks_per_s = rate;
        else cp.ring_macs_per_s = rate;
        ++*done;
        if (pg) pinas_progress_update(pg, *done, off_kinds[k]);
    }
    if (s) {
        cJSON_Delete(rep);
        return s;
    }
    /* The profile. */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", PINAS_PROFILE_FORMAT);
    cJSON_AddStringToObject(j, "kind", "cpu");
    cJSON_AddStringToObject(j, "name", "cpu");
    cJSON_AddStringToObject(j, "description",
                            "The pinas runtime on this CPU, one thread per party: time = a + b*work per primitive, fitted by `pinas calibrate` "
                            "(GSL relative least squares over the fastest of several private inferences of one-operator nets, whole online "
                            "phase, cold caches, the harness - the same net without its op - and the network's share subtracted). Work: "
                            "input elements for relu, poly, patch_relu and local ops (add, "
                            "avgpool, global_avgpool); pairs compared for maxpool; ring multiply-adds of the busier party for conv2d and "
                            "linear. Offline = the dealer's AES and ring work at the rates below plus the transfer of the material.");
    cJSON *jp = cJSON_AddObjectToObject(j, "primitives");
    for (int k = 0; k < CPU_N_PRIM; k++) {
        cJSON *po = cJSON_AddObjectToObject(jp, cpu_prim_names[k]);
        cJSON_AddNumberToObject(po, "a", cp.a[k]);
        cJSON_AddNumberToObject(po, "b", cp.b[k]);
        cJSON_AddNumberToObject(po, "r2", cp.r2[k]);
    }
    cJSON *off = cJSON_AddObjectToObject(j, "offline");
    cJSON_AddNumberToObject(off, "aes_blocks_per_s", cp.aes_blocks_per_s);
    cJSON_AddNumberToObject(off, "ring_macs_per_s", cp.ring_macs_per_s);
    cJSON *cal = cJSON_AddObjectToObject(j, "calibration");
    char date[32];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    cJSON_AddStringToObject(cal, "date", date);
    struct utsname u;
    if (uname(&u) == 0) cJSON_AddStringToObject(cal, "machine", u.machine);
    cJSON_AddStringToObject(cal, "pinas_version", PINAS_VERSION);
    cJSON_AddStringToObject(cal, "git", PINAS_GIT_REV);
    cJSON_AddStringToObject(cal, "net", link->name);
    cJSON_AddNumberToObject(cal, "net_rtt_ms", link->rtt * 1e3);
    cJSON_AddNumberToObject(cal, "net_bandwidth_mbit_per_s", link->bandwidth * 8 / 1e6);
    cJSON_AddNumberToObject(cal, "reps", c->passes);
    cJSON_AddNumberToObject(cal, "sizes", nsz);
    cJSON_AddNumberToObject(cal, "scale", scale);
    cJSON *mp = cJSON_AddObjectToObject(cal, "mpc");
    cJSON_AddNumberToObject(mp, "frac_bits", o->params.frac_bits);
    cJSON_AddNumberToObject(mp, "cmp_bits", o->params.cmp_bits);
    s = pinas_cost_hw_from_json(ctx, j, "calibration", out);
    cJSON_Delete(j);
    if (!s) {
        (*out)->cpu = cp; /* the exact doubles, not their JSON round trip */
        cJSON_AddItemToObject(rep, "profile", pinas_cost_hw_to_json(*out));
        cJSON *ro = cJSON_AddObjectToObject(rep, "offline");
        cJSON_AddNumberToObject(ro, "aes_blocks_per_s", cp.aes_blocks_per_s);
        cJSON_AddNumberToObject(ro, "ring_macs_per_s", cp.ring_macs_per_s);
    }
    if (s || !report) cJSON_Delete(rep);
    else *report = rep;
    return s;
}
