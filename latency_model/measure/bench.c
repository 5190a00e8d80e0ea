/* The runtime's micro-benchmarks that calibration fits on: one-operator private inferences, in-process
 * primitives of the dealer, and the loopback's round trip and bandwidth. */
#define _GNU_SOURCE
#include "measure_internal.h"

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
