/* Micro-benchmarks of single protocols for calibration and `pinas bench`: one-operator nets run by the runtime, and DReLU alone. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <cblas.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* A one-operator net for the benchmark of `kind` on about n elements (ring MACs for conv and linear):
 * input -> op (-> global_avgpool) -> flatten, or input -> linear. The IR bounds the channel count,
 * not the element count, so elementwise ops run on whole [C, 16, 16] or [C, 8, 8] inputs;
 * *run_n gets the size actually run. */
static pinas_status bench_net(pinas_ctx *ctx, const char *kind, int64_t n, pinas_net **out, int64_t *run_n)
{
    pinas_net_builder *b = NULL;
    int x = 0;
    if (strcmp(kind, "relu") == 0 || strcmp(kind, "poly") == 0) {
        int64_t c = (n + 255) / 256;
        pinas_cand cand = {.kind = kind[0] == 'r' ? PINAS_CAND_RELU : PINAS_CAND_POLY};
        b = pinas_nb_create("bench", (int)c, 16, 16, (int)(c * 256));
        x = pinas_nb_act(b, "op", 0, &cand, 1);
        *run_n = c * 256;
    } else if (strcmp(kind, "patch_relu") == 0 || strcmp(kind, "maxpool") == 0) {
        int64_t c = (n + 63) / 64;
        int maxpool = strcmp(kind, "maxpool") == 0;
        b = pinas_nb_create("bench", (int)c, 8, 8, (int)(c * (maxpool ? 16 : 64)));
        if (maxpool)
            x = pinas_nb_pool(b, "op", 0, 2, 2, 0, &(pinas_cand){.kind = PINAS_CAND_MAXPOOL}, 1);
        else
            x = pinas_nb_act(b, "op", 0, &(pinas_cand){.kind = PINAS_CAND_PATCH_RELU, .ph = 2, .pw = 2}, 1);
        *run_n = c * 64;
    } else if (strcmp(kind, "conv") == 0) {
        /* 3x3 conv, 64 -> 64 channels, padding 1, on H x H with H^2 * 64 * 576 ~ n */
        int64_t hw = n / (64 * 576);
        int h = 1;
        while ((int64_t)(h + 1) * (h + 1) <= hw) h++;
        b = pinas_nb_create("bench", 64, h, h, 64);
        x = pinas_nb_conv(b, "op", 0, 64, 3, 1, 1, 1);
        x = pinas_nb_global_avgpool(b, "g", x);
        *run_n = (int64_t)h * h * 64 * 576;
    } else if (strcmp(kind, "linear") == 0) {
        int64_t K = n < 1024 ? n : 1024, M = (n + K - 1) / K;
        b = pinas_nb_create("bench", (int)K, 1, 1, (int)M);
        pinas_nb_linear(b, "op", 0, (int)M, 1);
        *run_n = K * M;
    } else {
        return pinas_error(ctx, PINAS_EINVAL,
                           "benchmark kind \"%s\": expected relu, drelu, poly, patch_relu, maxpool, linear or conv", kind);
    }
    if (strcmp(kind, "linear") != 0) pinas_nb_flatten(b, "f", x);
    return pinas_nb_finish(ctx, b, "benchmark net", out);
}

/* DReLU alone is not an IR node: this runs the open + key evaluation directly between two threads
 * (one round; each party ends with its XOR share of DReLU xor t). */
typedef struct {
    int cmp_bits, cmp_high, threads;
    size_t n;
    const uint64_t *x, *r;
    const uint8_t *keys;
    uint8_t *d;
    double secs;
    pinas_mpc_counts counts;
} drelu_job;

static pinas_status drelu_fn(pinas_ctx *ctx, pinas_chan *ch, int role, void *user)
{
    drelu_job *j = user;
    uint64_t *mine = malloc(8 * j->n), *xh = malloc(8 * j->n);
    pinas_status s = mine && xh ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        uint8_t ping = 0, pong = 0; /* start together */
        s = pinas_chan_exchange(ctx, ch, 1, &ping, 1, &pong, 1);
    }
    if (!s) {
        double t0 = pinas_now();
        for (size_t i = 0; i < j->n; i++) mine[i] = j->x[i] + j->r[i];
        s = pinas_chan_exchange(ctx, ch, 2, mine, 8 * j->n, xh, 8 * j->n);
        if (!s) {
            for (size_t i = 0; i < j->n; i++) xh[i] += mine[i];
            j->counts.aes_blocks[role] =
                pinas_drelu_eval(role, j->cmp_bits, j->cmp_high, j->keys, j->n, xh, j->d, j->threads);
            j->counts.bytes[0] = j->counts.bytes[1] = 8 * j->n;
            j->counts.rounds = 1;
        }
        j->secs = pinas_now() - t0;
    }
    free(mine);
    free(xh);
    return s;
}

static pinas_status bench_drelu(pinas_ctx *ctx, int64_t n, const pinas_mpc_params *p, double *secs,
                                pinas_mpc_cost *counts, double *offline_s)
{
    size_t N = (size_t)n, ks = pinas_drelu_key_size(p->cmp_bits);
    uint64_t *x0 = malloc(8 * N), *x1 = malloc(8 * N), *r = malloc(8 * N), *r0 = malloc(8 * N), *r1 = malloc(8 * N);
    uint8_t *d0 = malloc(N), *d1 = malloc(N), *t = malloc(N);
    uint8_t *k0 = malloc(ks * N), *k1 = malloc(ks * N);
    pinas_prg *prg = NULL;
    pinas_status s = (x0 && x1 && r && r0 && r1 && d0 && d1 && t && k0 && k1)
                         ? pinas_prg_create_os(ctx, &prg)
                         : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    int th = p->threads > 1 ? p->threads : 1;
    if (!s) {
        pinas_prg_bytes(prg, x0, 8 * N);
        pinas_prg_bytes(prg, x1, 8 * N);
        pinas_prg_bytes(prg, r, 8 * N);
        pinas_prg_bytes(prg, r0, 8 * N);
        for (size_t i = 0; i < N; i++) r1[i] = r[i] - r0[i];
        uint64_t b0 = pinas_prg_blocks(prg);
        double t0 = pinas_now();
        uint64_t aes = pinas_drelu_gen(prg, p->cmp_bits, p->cmp_high, N, r, k0, k1, t, th);
        *offline_s = pinas_now() - t0;
        memset(counts, 0, sizeof *counts);
        counts->offline.aes_blocks[0] = pinas_prg_blocks(prg) - b0 + aes;
        counts->offline.bytes[0] = counts->offline.bytes[1] = N * (8 + ks);
    }
    drelu_job a = {.cmp_bits = p->cmp_bits, .cmp_high = p->cmp_high, .threads = th, .n = N, .x = x0, .r = r0, .keys = k0, .d = d0};
    drelu_job b = {.cmp_bits = p->cmp_bits, .cmp_high = p->cmp_high, .threads = th, .n = N, .x = x1, .r = r1, .keys = k1, .d = d1};
    if (!s) s = pinas_mpc_loopback_pair(ctx, 30000, drelu_fn, &a, &b);
    if (!s) {
        *secs = a.secs > b.secs ? a.secs : b.secs;
        counts->online = a.counts;
        counts->online.aes_blocks[1] = b.counts.aes_blocks[1];
        int high = p->cmp_high ? p->cmp_high : 64;
        for (size_t i = 0; i < N && !s; i++) {
            uint64_t x = x0[i] + x1[i];
            int want = !((x >> (high - 1)) & 1);
            if ((d0[i] ^ d1[i] ^ t[i]) != want && p->cmp_bits == 64 && high == 64)
                s = pinas_error(ctx, PINAS_EINTERNAL, "drelu benchmark: wrong result at element %zu", i);
        }
    }
    pinas_prg_free(prg);
    if (r && r0 && r1 && k0 && k1) { /* benchmark material, but masks and keys all the same */
        OPENSSL_cleanse(r, 8 * N), OPENSSL_cleanse(r0, 8 * N), OPENSSL_cleanse(r1, 8 * N);
        OPENSSL_cleanse(k0, ks * N), OPENSSL_cleanse(k1, ks * N);
    }
    free(x0), free(x1), free(r), free(r0), free(r1), free(d0), free(d1), free(t), free(k0), free(k1);
    return s;
}

/* Times the one-operator net of `kind` reps times, each on fresh preprocessing. */
static pinas_status bench_one_op_net(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p,
                                     double *t, double *toff, pinas_mpc_bench_result *out)
{
    pinas_net *net = NULL;
    pinas_model *m = NULL;
    pinas_status s = bench_net(ctx, kind, n, &net, &out->n);
    if (!s) s = pinas_model_random(ctx, net, 1, &m);
    const pinas_node *in = net ? pinas_net_node(net, 0) : NULL;
    size_t nin = in ? (size_t)in->c * in->h * in->w : 0;
    float *x = malloc(sizeof(float) * (nin ? nin : 1)), *lg = NULL;
    if (!s) {
        const pinas_node *last = pinas_net_node(net, pinas_net_n_nodes(net) - 1);
        lg = malloc(sizeof(float) * (size_t)last->c * last->h * last->w);
        if (!x || !lg) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (!s) {
        pinas_rng rng = {12345};
        pinas_rng_fill_uniform(&rng, x, nin, -4.0, 4.0);
    }
    for (int r = 0; r < reps && !s; r++) {
        pinas_mpc_report *rep = NULL;
        s = pinas_mpc_infer_loopback(ctx, m, x, 1, p, NULL, lg, &rep);
        if (!s) {
            /* The reports are the client's view. For a comparison or polynomial layer both parties work
             * symmetrically within it; a conv/linear layer is asymmetric: the client only sends X - B and the
             * server's GEMM lands in the next layer the client waits in. Time those by the whole online phase
             * (the op, local pooling, and opening the small output). */
            int asym = strcmp(kind, "conv") == 0 || strcmp(kind, "linear") == 0;
            t[r] = asym ? rep->online_s : rep->layers[0].online_s;
            toff[r] = rep->offline_s;
            out->counts = rep->layers[0].measured;
        }
        pinas_mpc_report_free(rep);
    }
    free(x);
    free(lg);
    pinas_model_free(m);
    pinas_net_free(net);
    return s;
}

pinas_status pinas_mpc_bench_op(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p,
                                pinas_mpc_bench_result *out)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || reps < 1) return pinas_error(ctx, PINAS_EINVAL, "benchmark: n and reps must be >= 1");
    openblas_set_num_threads(1);
    double *t = calloc((size_t)reps, sizeof *t), *toff = calloc((size_t)reps, sizeof *toff);
    if (!t || !toff) {
        free(t);
        free(toff);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    pinas_status s = PINAS_OK;
    if (strcmp(kind, "drelu") == 0) {
        out->n = n;
        for (int r = 0; r < reps && !s; r++) s = bench_drelu(ctx, n, p, &t[r], &out->counts, &toff[r]);
    } else {
        s = bench_one_op_net(ctx, kind, n, reps, p, t, toff, out);
    }
    if (!s) {
        out->online_s = median(t, reps);
        out->offline_s = median(toff, reps);
    }
    free(t);
    free(toff);
    return s;
}

/* The dealer's work for n ReLU gates, as deal_relu does it: r, its shares, the keys, shares of t and t·r. */
static uint64_t gate_keygen(pinas_prg *prg, const pinas_mpc_params *p, size_t n, uint64_t *u0, uint64_t *u1, uint64_t *R,
                            uint8_t *t, uint8_t *k0, uint8_t *k1)
{
    uint64_t b0 = pinas_prg_blocks(prg);
    pinas_prg_bytes(prg, R, 8 * n);
    pinas_prg_bytes(prg, u0, 8 * n);
    for (size_t i = 0; i < n; i++) u1[i] = R[i] - u0[i];
    uint64_t aes = pinas_drelu_gen(prg, p->cmp_bits, p->cmp_high, n, R, k0, k1, t, p->threads);
    pinas_prg_bytes(prg, u0 + n, 8 * n);
    for (size_t i = 0; i < n; i++) u1[n + i] = t[i] - u0[n + i];
    pinas_prg_bytes(prg, u0 + 2 * n, 8 * n);
    for (size_t i = 0; i < n; i++) u1[2 * n + i] = t[i] * R[i] - u0[2 * n + i];
    return aes + pinas_prg_blocks(prg) - b0;
}

pinas_status pinas_mpc_bench_gate(pinas_ctx *ctx, int keygen, int64_t n, int reps, const pinas_mpc_params *p,
                                  pinas_mpc_gate_bench *out)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || reps < 1) return pinas_error(ctx, PINAS_EINVAL, "benchmark: n and reps must be >= 1");
    size_t N = (size_t)n, ks = pinas_drelu_key_size(p->cmp_bits);
    int th = p->threads > 1 ? p->threads : 1;
    uint64_t *u0 = malloc(24 * N), *u1 = malloc(24 * N), *R = malloc(8 * N), *ph = malloc(8 * N), *y = malloc(8 * N);
    uint8_t *k0 = malloc(ks * N), *k1 = malloc(ks * N), *t = malloc(N), *e = malloc(N);
    double *secs = calloc((size_t)reps, sizeof *secs);
    pinas_prg *prg = NULL;
    pinas_status s = u0 && u1 && R && ph && y && k0 && k1 && t && e && secs
                         ? pinas_prg_create_os(ctx, &prg)
                         : pinas_error(ctx, PINAS_ENOMEM, "out of memory (%lld gates)", (long long)n);
    pinas_mpc_params q = *p;
    q.threads = th;
    if (!s && !keygen) {
        gate_keygen(prg, &q, N, u0, u1, R, t, k0, k1);
        pinas_prg_bytes(prg, ph, 8 * N);
    }
    for (int r = 0; r < reps && !s; r++) {
        double t0 = pinas_now();
        if (keygen) {
            out->aes_blocks = gate_keygen(prg, &q, N, u0, u1, R, t, k0, k1);
        } else {
            out->aes_blocks = pinas_drelu_eval(0, p->cmp_bits, p->cmp_high, k0, N, ph, e, th);
            const uint64_t *rs = u0, *ts = u0 + N, *trs = u0 + 2 * N;
#pragma omp parallel for num_threads(th) schedule(static)
            for (size_t i = 0; i < N; i++) y[i] = pinas_select_share(0, e[i], ph[i], rs[i], ts[i], trs[i]);
        }
        secs[r] = pinas_now() - t0;
    }
    if (!s) {
        out->median_s = median(secs, reps);
        out->key_bytes = 24 + ks;
    }
    pinas_prg_free(prg);
    if (u0) OPENSSL_cleanse(u0, 24 * N);
    if (u1) OPENSSL_cleanse(u1, 24 * N);
    free(u0), free(u1), free(R), free(ph), free(y), free(k0), free(k1), free(t), free(e), free(secs);
    return s;
}
