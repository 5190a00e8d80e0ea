/* The runtime's micro-benchmarks that calibration fits on: one-operator private inferences, in-process
 * primitives of the dealer, and the loopback's round trip and bandwidth. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <malloc.h>
#include <sched.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int measure_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The one-operator net of a bench kind, C channels of 16 x 16 (see bench_onenet); base: without its op. */
static pinas_status bench_net(pinas_ctx *ctx, const char *kind, int C, int base, pinas_net **out)
{
    char name[64];
    snprintf(name, sizeof name, "bench-%s", kind);
    pinas_net_builder *b = pinas_nb_create(name, C, 16, 16, C);
    int x = 0;
    if (!base && strcmp(kind, "conv") == 0) {
        x = pinas_nb_conv(b, "op", x, C, 3, 1, 1, 1);
        x = pinas_nb_batchnorm(b, "bn", x);
    } else if (!base && strcmp(kind, "maxpool") == 0) {
        pinas_cand mp = {.kind = PINAS_CAND_MAXPOOL};
        x = pinas_nb_pool(b, "op", x, 3, 2, 1, &mp, 1);
    } else if (!base) {
        pinas_cand c;
        if (pinas_cand_parse(strcmp(kind, "patch_relu") == 0 ? "patch_relu:2x2" : kind, &c)) {
            pinas_nb_free(b);
            return pinas_error(ctx, PINAS_EINTERNAL, "bench kind %s", kind);
        }
        x = pinas_nb_act(b, "op", x, &c, 1);
    }
    pinas_nb_global_avgpool(b, "g", x);
    return pinas_nb_finish(ctx, b, "benchmark net", out);
}

/* One-operator nets run privately by the runtime (pinas_mpc_bench_local): input [C, 16, 16] -> op ->
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
    if (!conv && strcmp(kind, "maxpool") != 0 && strcmp(kind, "relu") != 0 && strcmp(kind, "poly") != 0 && strcmp(kind, "patch_relu") != 0)
        return pinas_error(ctx, PINAS_EINVAL, "benchmark kind \"%s\": expected relu, poly, patch_relu, maxpool, conv, local, prg or gemm", kind);
    int C = conv ? (int)llround(sqrt((double)n / (9.0 * 256))) : (int)llround((double)n / 256);
    if (C < 1) C = 1;
    pinas_net *net = NULL;
    pinas_model *m = NULL;
    pinas_status s = bench_net(ctx, kind, C, base, &net);
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
        qsort(t, (size_t)reps, sizeof *t, measure_cmp_double);
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
        qsort(t, (size_t)j->rounds, sizeof *t, measure_cmp_double);
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

pinas_status measure_loopback(pinas_ctx *ctx, double *rtt_s, double *bandwidth_Bps)
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

/* Share additions: n ring additions, the fastest of reps. */
static pinas_status bench_local(pinas_ctx *ctx, int64_t n, int reps, double *t)
{
    uint64_t *x = malloc((size_t)n * 8), *y = malloc((size_t)n * 8);
    pinas_status s = x && y ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int64_t i = 0; !s && i < n; i++) x[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL, y[i] = (uint64_t)i;
    for (int r = 0; !s && r < reps; r++) {
        double t0 = pinas_now();
        for (int64_t i = 0; i < n; i++) y[i] += x[i];
        t[r] = pinas_now() - t0;
        __asm__ volatile("" : : "r"(y) : "memory");
    }
    free(x);
    free(y);
    return s;
}

/* The dealer's AES-CTR expansion of n blocks. */
static pinas_status bench_prg(pinas_ctx *ctx, int64_t n, int reps, double *t, pinas_mpc_cost *counts)
{
    uint8_t seed[16] = {1, 2, 3};
    pinas_prg *g = NULL;
    uint8_t *buf = malloc((size_t)n * 16);
    pinas_status s = buf ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_prg_create(ctx, seed, &g);
    for (int r = 0; !s && r < reps; r++) {
        double t0 = pinas_now();
        pinas_prg_bytes(g, buf, (size_t)n * 16);
        t[r] = pinas_now() - t0;
    }
    counts->offline.aes_blocks[0] = (uint64_t)n;
    pinas_prg_free(g);
    free(buf);
    return s;
}

/* The dealer's ring products: an m x m by m x m product with m^3 ~ n. */
static pinas_status bench_gemm(pinas_ctx *ctx, int64_t n, int reps, double *t, pinas_mpc_cost *counts)
{
    int m = (int)ceil(cbrt((double)n));
    if (m < 2) m = 2;
    size_t mm = (size_t)m * m;
    uint64_t *A = malloc(mm * 8), *B = malloc(mm * 8), *C = malloc(mm * 8);
    pinas_status s = A && B && C ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
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
    return s;
}

pinas_status measure_runtime_bench(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p, double *best_s,
                                   pinas_mpc_cost *counts, void *user)
{
    (void)user;
    memset(counts, 0, sizeof *counts);
    if (strcmp(kind, "local") != 0 && strcmp(kind, "prg") != 0 && strcmp(kind, "gemm") != 0)
        return bench_onenet(ctx, kind, n, reps, p, best_s, counts);
    double *t = calloc((size_t)reps, sizeof *t);
    if (!t) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s;
    if (strcmp(kind, "local") == 0) s = bench_local(ctx, n, reps, t);
    else if (strcmp(kind, "prg") == 0) s = bench_prg(ctx, n, reps, t, counts);
    else s = bench_gemm(ctx, n, reps, t, counts);
    if (!s) {
        qsort(t, (size_t)reps, sizeof *t, measure_cmp_double);
        *best_s = t[0];
    }
    free(t);
    return s;
}

/* ------------------------------------------------------------------ per-node compute of a whole net */

void pinas_measure_nodes_free(pinas_measure_nodes *out)
{
    if (!out) return;
    free(out->cpu_s);
    out->cpu_s = NULL;
}

double measure_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, measure_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The smallest of v[0..n): compute time on a shared machine is only ever inflated (cache refills
 * after preemption, contention), so the least of the runs is the stable figure. */
static double least_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

/* Per node and party, the least over the runs' reports of the compute (rows matched by id). */
static void nodes_from_reports(const pinas_net *net, pinas_mpc_report **reps, int runs, pinas_measure_nodes *out, double *tmp)
{
    int nn = pinas_net_n_nodes(net);
    for (int i = 0; i < nn; i++)
        for (int q = 0; q < 2; q++) {
            int got = 0;
            for (int r = 0; r < runs; r++)
                for (int l = 0; l < reps[r]->n_layers; l++)
                    if (strcmp(reps[r]->layers[l].id, pinas_net_node(net, i)->id) == 0) tmp[got++] = reps[r]->layers[l].party[q].cpu_s;
            out->cpu_s[i][q] = got ? least_of(tmp, got) : 0;
        }
    for (int r = 0; r < runs; r++) tmp[r] = reps[r]->online_s;
    out->wall_s = measure_median(tmp, runs);
    out->wall_min_s = tmp[0];
}

/* The runtime allocates its scratch buffers (im2col, masked openings, key outputs) per node. By
 * default glibc maps every buffer above its mmap threshold afresh and trims the heap's top after each
 * free, so the same node pays its page faults on some runs and not on others (on this VM a fresh page
 * costs 10-20 us: a batch-4 ResNet-20 conv measured 10x its steady figure). Measurements keep freed
 * memory mapped (no per-buffer mappings, no trimming), so every node is timed in the steady state a
 * long-running party reaches. Process-wide; set once.
 * Not done: one arena (M_ARENA_MAX 1). The in-process parties are threads created for every run and
 * allocate from per-thread arenas, whose extra heaps (beyond 64 MB) glibc unmaps when they empty, so
 * the nodes of a big net that land there fault on every run (a VGG-16 ReLU on 64x32x32 measured 16 ms
 * in one architecture, 11.5 in others). With one arena that went away, but the two parties' buffers
 * then share one heap and per-node figures of convolutions and linears scattered 3x more (MAPE 3.5 %
 * -> 9 %, ResNet-20), so the per-thread arenas stay. */
static void measure_steady_malloc(void)
{
    static int done;
    if (done) return;
    done = 1;
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1024 << 20);
}

/* The shield of pinas_measure_node_cpu: SCHED_FIFO for this thread (and the party threads it
 * creates, which inherit it) when permitted and not turned off; 1 when it took effect. */
static int measure_shield_begin(void)
{
    const char *off = getenv("PINAS_MEASURE_NO_SHIELD");
    if (off && *off && strcmp(off, "0") != 0) return 0;
    struct sched_param sp = {.sched_priority = 1};
    return sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
}

static void measure_shield_end(int shielded)
{
    struct sched_param sp = {.sched_priority = 0};
    if (shielded) (void)sched_setscheduler(0, SCHED_OTHER, &sp);
}

/* `calls` times: the probe net (a 3x3 convolution of 32 channels of 16x16, a ReLU, a linear head)
 * run privately 4 times; *probe_s = the last call's compute, per node the busier party's, summed. */
static pinas_status probe_calls(pinas_ctx *ctx, const pinas_mpc_params *p, int calls, double *probe_s)
{
    pinas_cand relu = {.kind = PINAS_CAND_RELU};
    pinas_net_builder *b = pinas_nb_create("probe", 32, 16, 16, 10);
    int x = pinas_nb_conv(b, "c", 0, 32, 3, 1, 1, 1);
    x = pinas_nb_act(b, "r", x, &relu, 1);
    x = pinas_nb_global_avgpool(b, "g", x);
    x = pinas_nb_flatten(b, "f", x);
    pinas_nb_linear(b, "fc", x, 10, 1);
    pinas_net *net = NULL;
    pinas_model *m = NULL;
    pinas_measure_nodes mn = {0};
    pinas_mpc_params q = *p;
    q.batch = 1;
    pinas_status s = pinas_nb_finish(ctx, b, "probe net", &net);
    if (!s) s = pinas_model_random(ctx, net, 1, &m);
    for (int k = 0; k < calls && !s; k++) {
        s = pinas_measure_node_cpu(ctx, m, 1, &q, 4, 1, &mn);
        double t = 0;
        for (int i = 0; !s && i < mn.n_nodes; i++) t += mn.cpu_s[i][0] > mn.cpu_s[i][1] ? mn.cpu_s[i][0] : mn.cpu_s[i][1];
        if (!s && probe_s) *probe_s = t;
        pinas_measure_nodes_free(&mn);
    }
    pinas_model_free(m);
    pinas_net_free(net);
    return s;
}

pinas_status pinas_measure_warmup(pinas_ctx *ctx, const pinas_mpc_params *p, double *probe_s)
{
    return probe_calls(ctx, p, 3, probe_s);
}

pinas_status pinas_measure_probe(pinas_ctx *ctx, const pinas_mpc_params *p, double *probe_s)
{
    return probe_calls(ctx, p, 1, probe_s);
}

pinas_status pinas_measure_node_cpu(pinas_ctx *ctx, const pinas_model *m, int batch, const pinas_mpc_params *p, int runs, uint64_t seed,
                                    pinas_measure_nodes *out)
{
    memset(out, 0, sizeof *out);
    if (runs < 1 || runs > 1000) return pinas_error(ctx, PINAS_EINVAL, "measure: runs must be in [1, 1000], got %d", runs);
    const pinas_net *net = m->net;
    const pinas_node *in = pinas_net_node(net, 0);
    size_t nx = (size_t)batch * (size_t)in->c * (size_t)in->h * (size_t)in->w;
    size_t nl = (size_t)batch * (size_t)pinas_net_node(net, pinas_net_n_nodes(net) - 1)->c;
    float *x = malloc(nx * sizeof *x), *lg = malloc((nl ? nl : 1) * sizeof *lg);
    pinas_mpc_report **reps = calloc((size_t)runs, sizeof *reps);
    double *tmp = malloc((size_t)runs * sizeof *tmp);
    out->n_nodes = pinas_net_n_nodes(net);
    out->cpu_s = calloc((size_t)out->n_nodes, sizeof *out->cpu_s);
    pinas_status s = x && lg && reps && tmp && out->cpu_s ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_rng rng = {seed};
    if (!s) pinas_rng_fill_uniform(&rng, x, nx, -1, 1);
    pinas_mpc_params q = *p;
    q.threads = 1; /* thread CPU time of one thread per party is the compute */
    measure_steady_malloc();
    out->shielded = !s && measure_shield_begin();
    if (!s) s = pinas_mpc_bench_local(ctx, m, x, batch, &q, runs, lg, reps);
    measure_shield_end(out->shielded);
    if (!s) nodes_from_reports(net, reps, runs, out, tmp);
    for (int r = 0; reps && r < runs; r++) pinas_mpc_report_free(reps[r]);
    free(reps);
    free(tmp);
    free(x);
    free(lg);
    if (s) pinas_measure_nodes_free(out);
    return s;
}
