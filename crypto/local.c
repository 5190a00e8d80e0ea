/* Local runs: dealer + both parties over loopback TCP in two threads (inference and micro-benchmarks). */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One thread of a loopback pair: its own context, channel and outcome. */
typedef struct {
    int role, port, timeout_ms;
    pinas_chan *listener; /* role 0: already listening */
    pinas_mpc_pair_fn fn;
    void *user;
    pinas_status status;
    char err[1024];
} pair_thread;

static void *pair_main(void *arg)
{
    pair_thread *j = arg;
    pinas_ctx *ctx = pinas_ctx_create();
    if (!ctx) {
        j->status = PINAS_ENOMEM;
        snprintf(j->err, sizeof j->err, "out of memory");
        return NULL;
    }
    pinas_chan *ch = NULL;
    pinas_status s;
    if (j->role == 0) {
        ch = j->listener;
        j->listener = NULL;
        s = pinas_chan_accept(ctx, ch, j->timeout_ms, "client");
    } else {
        char hp[64];
        snprintf(hp, sizeof hp, "127.0.0.1:%d", j->port);
        s = pinas_chan_connect(ctx, hp, j->timeout_ms, "server", &ch);
    }
    if (!s) s = j->fn(ctx, ch, j->role, j->user);
    pinas_chan_free(ch); /* close at once, so that a failing party's peer stops waiting */
    j->status = s;
    if (s) snprintf(j->err, sizeof j->err, "%s", pinas_errmsg(ctx));
    pinas_ctx_free(ctx);
    return NULL;
}

pinas_status pinas_mpc_loopback_pair(pinas_ctx *ctx, int timeout_ms, pinas_mpc_pair_fn fn, void *user0, void *user1)
{
    pinas_chan *l = NULL;
    pinas_status s = pinas_chan_listen(ctx, "127.0.0.1:0", &l);
    if (s) return s;
    if (timeout_ms <= 0) timeout_ms = 30000;
    pair_thread js = {.role = 0, .timeout_ms = timeout_ms, .listener = l, .fn = fn, .user = user0};
    pair_thread jc = {.role = 1, .port = pinas_chan_port(l), .timeout_ms = timeout_ms, .fn = fn, .user = user1};
    pthread_t ts, tc;
    if (pthread_create(&ts, NULL, pair_main, &js) != 0) {
        pinas_chan_free(l);
        return pinas_error(ctx, PINAS_EINTERNAL, "cannot start the server thread");
    }
    if (pthread_create(&tc, NULL, pair_main, &jc) != 0) {
        pthread_join(ts, NULL); /* the server times out on accept and closes the listener */
        return pinas_error(ctx, PINAS_EINTERNAL, "cannot start the client thread");
    }
    pthread_join(ts, NULL);
    pthread_join(tc, NULL);
    if (!js.status && !jc.status) return PINAS_OK;
    /* report the root cause: a party that failed for its own reason rather than because of its peer */
    const pair_thread *first = (js.status && js.status != PINAS_EPEER) ? &js : jc.status ? &jc : &js;
    return pinas_error(ctx, first->status, "%s", first->err);
}

/* A party of a private inference, for pinas_mpc_loopback_pair. */
typedef struct {
    pinas_mpc_party_args a;
    pinas_mpc_report *report;
} party_job;

static pinas_status party_fn(pinas_ctx *ctx, pinas_chan *ch, int role, void *user)
{
    (void)role;
    party_job *j = user;
    return pinas_mpc_party_run(ctx, ch, &j->a, &j->report);
}

/* Runs both parties on prepared material; returns the client's report. */
static pinas_status run_pair(pinas_ctx *ctx, const pinas_model *m, const pinas_mpc_prep *p0, const pinas_mpc_prep *p1,
                             const float *x, float *logits, int timeout_ms, pinas_mpc_report **client_report)
{
    party_job js = {.a = {.role = 0, .model = m, .prep = p0, .timeout_ms = timeout_ms}};
    party_job jc = {.a = {.role = 1, .net = m->net, .prep = p1, .x = x, .logits = logits, .timeout_ms = timeout_ms}};
    pinas_status s = pinas_mpc_loopback_pair(ctx, timeout_ms, party_fn, &js, &jc);
    if (s) {
        pinas_mpc_report_free(js.report);
        pinas_mpc_report_free(jc.report);
        return s;
    }
    /* each party counts its own work: take the server's AES blocks and MACs from its report */
    pinas_mpc_report *rc = jc.report, *rs = js.report;
    if (rs && rs->n_layers == rc->n_layers) {
        memset(&rc->totals, 0, sizeof rc->totals);
        for (int l = 0; l < rc->n_layers; l++) {
            pinas_mpc_counts *c = &rc->layers[l].measured.online, *sv = &rs->layers[l].measured.online;
            c->aes_blocks[0] = sv->aes_blocks[0];
            c->ring_macs[0] = sv->ring_macs[0];
            pinas_mpc_cost_add(&rc->totals, &rc->layers[l].measured);
        }
        pinas_mpc_counts_add(&rc->totals.setup, &rc->session);
    }
    pinas_mpc_report_free(rs);
    *client_report = rc;
    return PINAS_OK;
}

/* Evicts the caches (writes a buffer of twice a large L3), so that a timed run finds its key material
 * in memory as a real one does (the dealer wrote it long before), whatever its size and however many
 * runs came before it on the same material. */
static void evict_caches(void)
{
    static uint8_t *buf;
    static const size_t n = 64u << 20;
    if (!buf) buf = malloc(n); /* kept for the process: benchmarks call this often */
    if (!buf) return;
    memset(buf, 0x5a, n);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Deals once and runs the pair `runs` times on that material (runs > 1 only for timing; cold: evict
 * the caches before each run). */
static pinas_status infer_local_runs(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, const pinas_mpc_params *p,
                                     const pinas_mpc_layer_bits *bits, int n_bits, int runs, int cold, float *logits,
                                     pinas_mpc_report **reports)
{
    pinas_mpc_params q = *p;
    q.batch = batch;
    openblas_set_num_threads(1); /* one core per party */
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    pinas_status s = pinas_mpc_deal(ctx, m->net, &q, bits, n_bits, &p0, &p1);
    for (int r = 0; r < runs && !s; r++) {
        pinas_mpc_report *rep = NULL;
        if (cold) evict_caches();
        s = run_pair(ctx, m, p0, p1, x, logits, q.timeout_ms, &rep);
        if (s) break;
        if (reports)
            reports[r] = rep; /* the client's report already counts the dealer's time (gen_s) */
        else
            pinas_mpc_report_free(rep);
    }
    pinas_mpc_prep_free(p0);
    pinas_mpc_prep_free(p1);
    return s;
}

pinas_status pinas_mpc_infer_local_bits(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch,
                                        const pinas_mpc_params *p, const pinas_mpc_layer_bits *bits, int n_bits,
                                        float *logits, pinas_mpc_report **report)
{
    if (report) *report = NULL;
    return infer_local_runs(ctx, m, x, batch, p, bits, n_bits, 1, 0, logits, report);
}

pinas_status pinas_mpc_bench_local(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, const pinas_mpc_params *p,
                                   int runs, float *logits, pinas_mpc_report **reports)
{
    if (runs < 1) return pinas_error(ctx, PINAS_EINVAL, "benchmark: runs must be >= 1, got %d", runs);
    for (int r = 0; r < runs; r++) reports[r] = NULL;
    pinas_status s = infer_local_runs(ctx, m, x, batch, p, NULL, 0, runs, 1, logits, reports);
    if (s)
        for (int r = 0; r < runs; r++) {
            pinas_mpc_report_free(reports[r]);
            reports[r] = NULL;
        }
    return s;
}

pinas_status pinas_mpc_infer_local(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch,
                                   const pinas_mpc_params *p, float *logits, pinas_mpc_report **report)
{
    return pinas_mpc_infer_local_bits(ctx, m, x, batch, p, NULL, 0, logits, report);
}

/* ------------------------------------------------------------------ micro-benchmarks */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A one-operator net for the benchmark: input -> op (-> output). */
static pinas_status bench_net(pinas_ctx *ctx, const char *kind, int64_t n, pinas_net **out, int *node)
{
    char js[1024];
    *node = 1;
    if (strcmp(kind, "relu") == 0 || strcmp(kind, "poly") == 0) {
        /* [ceil(n/256), 16, 16]: the IR bounds the channel count, not the element count */
        int64_t c = (n + 255) / 256;
        snprintf(js, sizeof js,
                 "{\"format\":\"pinas-net/1\",\"name\":\"bench\",\"input\":[%lld,16,16],\"num_classes\":%lld,\"nodes\":["
                 "{\"id\":\"op\",\"op\":\"act\",\"inputs\":[\"input\"],\"candidates\":[\"%s\"]},"
                 "{\"id\":\"f\",\"op\":\"flatten\",\"inputs\":[\"op\"]}]}",
                 (long long)c, (long long)(c * 256), kind);
    } else if (strcmp(kind, "patch_relu") == 0 || strcmp(kind, "maxpool") == 0) {
        int64_t c = (n + 63) / 64;
        int out_c = strcmp(kind, "maxpool") == 0 ? 16 : 64;
        snprintf(js, sizeof js,
                 "{\"format\":\"pinas-net/1\",\"name\":\"bench\",\"input\":[%lld,8,8],\"num_classes\":%lld,\"nodes\":[%s,"
                 "{\"id\":\"f\",\"op\":\"flatten\",\"inputs\":[\"op\"]}]}",
                 (long long)c, (long long)(c * out_c),
                 strcmp(kind, "maxpool") == 0
                     ? "{\"id\":\"op\",\"op\":\"pool\",\"inputs\":[\"input\"],\"kernel\":2,\"stride\":2,\"candidates\":[\"maxpool\"]}"
                     : "{\"id\":\"op\",\"op\":\"act\",\"inputs\":[\"input\"],\"candidates\":[\"patch_relu:2x2\"]}");
    } else if (strcmp(kind, "conv") == 0) {
        /* 3x3 conv, 64 -> 64 channels, padding 1, on H x H with H^2 * 64 * 576 ~ n */
        int64_t hw = n / (64 * 576);
        int h = 1;
        while ((int64_t)(h + 1) * (h + 1) <= hw) h++;
        snprintf(js, sizeof js,
                 "{\"format\":\"pinas-net/1\",\"name\":\"bench\",\"input\":[64,%d,%d],\"num_classes\":64,\"nodes\":["
                 "{\"id\":\"op\",\"op\":\"conv2d\",\"inputs\":[\"input\"],\"out_channels\":64,\"kernel\":3,\"padding\":1},"
                 "{\"id\":\"g\",\"op\":\"global_avgpool\",\"inputs\":[\"op\"]},{\"id\":\"f\",\"op\":\"flatten\",\"inputs\":[\"g\"]}]}",
                 h, h);
    } else if (strcmp(kind, "linear") == 0) {
        int64_t K = n < 1024 ? n : 1024, M = (n + K - 1) / K;
        snprintf(js, sizeof js,
                 "{\"format\":\"pinas-net/1\",\"name\":\"bench\",\"input\":[%lld,1,1],\"num_classes\":%lld,\"nodes\":["
                 "{\"id\":\"op\",\"op\":\"linear\",\"inputs\":[\"input\"],\"out_features\":%lld}]}",
                 (long long)K, (long long)M, (long long)M);
    } else {
        return pinas_error(ctx, PINAS_EINVAL,
                           "benchmark kind \"%s\": expected relu, drelu, poly, patch_relu, maxpool, linear or conv", kind);
    }
    cJSON *j = cJSON_Parse(js);
    if (!j) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = pinas_net_from_json(ctx, j, "benchmark net", out);
    cJSON_Delete(j);
    return s;
}

/* DReLU alone is not an IR node: this runs the open + gate evaluation directly between two threads. */
typedef struct {
    int cmp_bits;
    size_t n;
    const uint64_t *x, *r;
    const uint8_t *keys;
    uint64_t *d;
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
            j->counts.aes_blocks[role] = pinas_sign_eval(role, j->cmp_bits, 0, j->keys, j->n, xh, NULL, j->d);
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
    size_t N = (size_t)n, ks = pinas_sign_key_size(p->cmp_bits, 0);
    uint64_t *x0 = malloc(8 * N), *x1 = malloc(8 * N), *r = malloc(8 * N), *r0 = malloc(8 * N), *r1 = malloc(8 * N);
    uint64_t *d0 = malloc(8 * N), *d1 = malloc(8 * N);
    uint8_t *k0 = malloc(ks * N), *k1 = malloc(ks * N);
    pinas_prg *prg = NULL;
    pinas_status s = (x0 && x1 && r && r0 && r1 && d0 && d1 && k0 && k1) ? pinas_prg_create_os(ctx, &prg)
                                                                          : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        pinas_prg_bytes(prg, x0, 8 * N);
        pinas_prg_bytes(prg, x1, 8 * N);
        pinas_prg_bytes(prg, r, 8 * N);
        pinas_prg_bytes(prg, r0, 8 * N);
        for (size_t i = 0; i < N; i++) r1[i] = r[i] - r0[i];
        uint64_t b0 = pinas_prg_blocks(prg);
        double t0 = pinas_now();
        pinas_sign_gen_batch(prg, p->cmp_bits, 0, N, r, NULL, k0, k1);
        *offline_s = pinas_now() - t0;
        memset(counts, 0, sizeof *counts);
        counts->offline.aes_blocks[0] = pinas_prg_blocks(prg) - b0 + N * pinas_sign_gen_aes_blocks(p->cmp_bits, 0);
        counts->offline.bytes[0] = counts->offline.bytes[1] = N * (8 + ks);
    }
    drelu_job a = {.cmp_bits = p->cmp_bits, .n = N, .x = x0, .r = r0, .keys = k0, .d = d0};
    drelu_job b = {.cmp_bits = p->cmp_bits, .n = N, .x = x1, .r = r1, .keys = k1, .d = d1};
    if (!s) s = pinas_mpc_loopback_pair(ctx, 30000, drelu_fn, &a, &b);
    if (!s) {
        *secs = a.secs > b.secs ? a.secs : b.secs;
        counts->online = a.counts;
        counts->online.aes_blocks[1] = b.counts.aes_blocks[1];
        for (size_t i = 0; i < N && !s; i++)
            if (d0[i] + d1[i] != (uint64_t)((int64_t)(x0[i] + x1[i]) >= 0))
                s = pinas_error(ctx, PINAS_EINTERNAL, "drelu benchmark: wrong result at element %zu", i);
    }
    pinas_prg_free(prg);
    free(x0), free(x1), free(r), free(r0), free(r1), free(d0), free(d1), free(k0), free(k1);
    return s;
}

pinas_status pinas_mpc_bench_op(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p,
                                double *median_s, pinas_mpc_cost *counts)
{
    return pinas_mpc_bench_op_ex(ctx, kind, n, reps, p, median_s, counts, NULL);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

pinas_status pinas_mpc_bench_op_ex(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p,
                                   double *median_s, pinas_mpc_cost *counts, double *median_offline_s)
{
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
        for (int r = 0; r < reps && !s; r++) s = bench_drelu(ctx, n, p, &t[r], counts, &toff[r]);
    } else {
        pinas_net *net = NULL;
        pinas_model *m = NULL;
        int node = 1;
        s = bench_net(ctx, kind, n, &net, &node);
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
            uint64_t seed = 12345;
            for (size_t i = 0; i < nin; i++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                x[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 8.0 - 4.0);
            }
        }
        for (int r = 0; r < reps && !s; r++) {
            pinas_mpc_report *rep = NULL;
            pinas_mpc_params q = *p;
            s = pinas_mpc_infer_local(ctx, m, x, 1, &q, lg, &rep);
            if (!s) {
                /* The reports are the client's view. For a comparison or polynomial layer both parties work
                 * symmetrically within it; a conv/linear layer is asymmetric: the client only sends X - B and the
                 * server's GEMM lands in the next layer the client waits in. Time those by the whole online phase
                 * (the op, local pooling, and opening the small output). */
                int asym = strcmp(kind, "conv") == 0 || strcmp(kind, "linear") == 0;
                t[r] = asym ? rep->online_s : rep->layers[0].online_s;
                toff[r] = rep->offline_s;
                *counts = rep->layers[0].measured;
            }
            pinas_mpc_report_free(rep);
        }
        free(x);
        free(lg);
        pinas_model_free(m);
        pinas_net_free(net);
    }
    if (!s) {
        *median_s = median(t, reps);
        if (median_offline_s) *median_offline_s = median(toff, reps);
    }
    free(t);
    free(toff);
    return s;
}
