/* Local runs: dealer + both parties over loopback TCP in two threads (a private inference, the timing runs). */
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
    /* Plain TCP: both parties are threads of this one process, which holds the model, the input and
     * the dealer's material anyway (benchmarks, calibration, tests); no third party is meant to be on
     * this loopback link. A stray local connection cannot learn anything: the server checks the
     * client's handshake (session id, a dealer secret) before it sends a byte of its own. */
    const pinas_chan_auth plain = {.insecure = 1};
    if (j->role == 0) {
        ch = j->listener;
        j->listener = NULL;
        s = pinas_chan_accept(ctx, ch, j->timeout_ms, "client", &plain);
    } else {
        char hp[64];
        snprintf(hp, sizeof hp, "127.0.0.1:%d", j->port);
        s = pinas_chan_connect(ctx, hp, j->timeout_ms, "server", &plain, &ch);
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
                             const float *x, float *logits, const pinas_mpc_params *p, pinas_mpc_report **client_report)
{
    int timeout_ms = p->timeout_ms, th = p->threads;
    party_job js = {.a = {.role = 0, .model = m, .prep = p0, .timeout_ms = timeout_ms, .threads = th}};
    party_job jc = {.a = {.role = 1, .net = m->net, .prep = p1, .x = x, .logits = logits, .timeout_ms = timeout_ms,
                          .threads = th}};
    pinas_status s = pinas_mpc_loopback_pair(ctx, timeout_ms, party_fn, &js, &jc);
    if (s) {
        pinas_mpc_report_free(js.report);
        pinas_mpc_report_free(jc.report);
        return s;
    }
    /* each party counts its own work: take the server's AES blocks and MACs from its report */
    pinas_mpc_report *rc = jc.report, *rs = js.report;
    if (rs && rs->n_layers == rc->n_layers) {
        pinas_mpc_report_merge(rc, rs);
        report_retotal(rc);
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
                                     const pinas_mpc_deal_opts *opts, int runs, int cold, float *logits,
                                     pinas_mpc_report **reports)
{
    pinas_mpc_params q = *p;
    q.batch = batch;
    openblas_set_num_threads(1); /* one core per party; p->threads are OpenMP's (ring.c, dcf.c) */
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    pinas_status s = pinas_mpc_deal(ctx, m->net, &q, opts, &p0, &p1);
    for (int r = 0; r < runs && !s; r++) {
        pinas_mpc_report *rep = NULL;
        if (cold) evict_caches();
        s = run_pair(ctx, m, p0, p1, x, logits, &q, &rep);
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

pinas_status pinas_mpc_infer_loopback(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch,
                                      const pinas_mpc_params *p, const pinas_mpc_deal_opts *opts, float *logits,
                                      pinas_mpc_report **report)
{
    if (report) *report = NULL;
    return infer_local_runs(ctx, m, x, batch, p, opts, 1, 0, logits, report);
}

pinas_status pinas_mpc_bench_local(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, const pinas_mpc_params *p,
                                   int runs, float *logits, pinas_mpc_report **reports)
{
    if (runs < 1) return pinas_error(ctx, PINAS_EINVAL, "benchmark: runs must be >= 1, got %d", runs);
    for (int r = 0; r < runs; r++) reports[r] = NULL;
    pinas_status s = infer_local_runs(ctx, m, x, batch, p, NULL, runs, 1, logits, reports);
    if (s)
        for (int r = 0; r < runs; r++) {
            pinas_mpc_report_free(reports[r]);
            reports[r] = NULL;
        }
    return s;
}
