/* `pinas stream`: a dealer making preprocessing on the fly into a capped client store, Poisson
 * requests each served by a private inference, measured against the end-to-end simulation. */
#define _GNU_SOURCE
#include "pinas_stream.h"
#include "pinas_mpc.h"
#include "pinas_net.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Everything the threads share; the fields below `mu` are guarded by it. */
typedef struct {
    const pinas_stream_opts *o;
    pinas_model *m;
    pinas_mpc_params p;      /* batch 1 */
    pinas_mpc_deal_opts deal; /* a bit-cut model's per-node windows (layer_bits owned) */
    uint8_t key[PINAS_MPC_DEALER_KEY_BYTES];
    char *dir, *keyfile;
    long n, cap, next_id;    /* next_id: the next set's file number */
    int emulate;
    double bw, rtt, t0;
    double *arr;             /* scheduled arrivals (s after t0) */
    double *arr_real, *claim_t, *lat;
    long *claim_set;         /* the set serving request i; -1 = none yet */
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* CLOCK_MONOTONIC; broadcast on every change */
    long *storeq, sq_head, sq_tail; /* stored sets (FIFO) */
    long *waitq, wq_head, wq_tail;  /* requests waiting for a set */
    long *linkq, lq_head, lq_tail;  /* made sets waiting for the emulated link */
    long produced, in_flight, arrived;
    int stop, failed;
    char err[1024];
    double gen_sum, fill_sum, xfer_sum, on_sum;
    long gen_n, fill_n, xfer_n;
    double area, peak, last_t;
} stream_run;

static char *set_path(const stream_run *r, long id, int role)
{
    char name[64];
    snprintf(name, sizeof name, "set%ld.%s.prep", id, role ? "client" : "server");
    return pinas_path_join(r->dir, name);
}

static double file_bytes(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 ? (double)st.st_size : 0;
}

static void unlink_set(const stream_run *r, long id)
{
    for (int q = 0; q < 2; q++) {
        char *f = set_path(r, id, q);
        if (f) unlink(f);
        free(f);
    }
}

/* Locked: the first failure stops every thread; its message is kept. */
static void fail_locked(stream_run *r, pinas_ctx *ctx, const char *what)
{
    if (!r->failed) snprintf(r->err, sizeof r->err, "%s: %s", what, pinas_errmsg(ctx));
    r->failed = r->stop = 1;
    pthread_cond_broadcast(&r->cv);
}

/* Locked: integrates the stored sets over [first arrival, last arrival]. */
static void track(stream_run *r, double t)
{
    if (r->arrived >= 1 && r->arrived < r->n) r->area += (double)(r->sq_tail - r->sq_head) * (t - r->last_t);
    r->last_t = t;
}

static void track_peak(stream_run *r)
{
    double st = (double)(r->sq_tail - r->sq_head);
    if (r->arrived >= 1 && st > r->peak) r->peak = st;
}

/* Makes set `id` (both files); *dt the seconds it took. */
static pinas_status deal_set(pinas_ctx *ctx, stream_run *r, long id, double *dt)
{
    char *f0 = set_path(r, id, 0), *f1 = set_path(r, id, 1);
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    double t = pinas_now();
    pinas_status s = f0 && f1 ? pinas_mpc_deal_files(ctx, r->m->net, &r->p, &r->deal, f0, f1, r->key, &p0, &p1)
                              : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    *dt = pinas_now() - t;
    pinas_mpc_prep_free(p0);
    pinas_mpc_prep_free(p1);
    free(f0);
    free(f1);
    return s;
}

/* Locked: set c reaches the store; the first waiting request takes it. */
static void deliver_locked(stream_run *r, long c)
{
    double t = pinas_now() - r->t0;
    track(r, t);
    r->in_flight--;
    if (r->wq_head < r->wq_tail) {
        long i = r->waitq[r->wq_head++];
        r->claim_set[i] = c;
        r->claim_t[i] = t;
    } else {
        r->storeq[r->sq_tail++] = c;
    }
    track_peak(r);
    pthread_cond_broadcast(&r->cv);
}

static void *dealer_main(void *arg)
{
    stream_run *r = arg;
    pinas_ctx *ctx = pinas_ctx_create();
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && !(r->produced < r->n && (r->sq_tail - r->sq_head) + r->in_flight < r->cap + (r->wq_tail - r->wq_head)))
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop) break;
        long c = r->next_id++;
        r->produced++;
        r->in_flight++;
        pthread_mutex_unlock(&r->mu);
        double dt = 0;
        pinas_status s = ctx ? deal_set(ctx, r, c, &dt) : PINAS_ENOMEM;
        pthread_mutex_lock(&r->mu);
        if (s) {
            fail_locked(r, ctx, "dealer");
            break;
        }
        r->gen_sum += dt;
        r->gen_n++;
        if (r->emulate) {
            r->linkq[r->lq_tail++] = c;
            pthread_cond_broadcast(&r->cv);
        } else {
            deliver_locked(r, c);
        }
    }
    pthread_mutex_unlock(&r->mu);
    pinas_ctx_free(ctx);
    return NULL;
}

static void sleep_s(double s)
{
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* The emulated link: one set at a time, max(file bytes) / bandwidth + RTT each. */
static void *link_main(void *arg)
{
    stream_run *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->lq_head == r->lq_tail) pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop) break;
        long c = r->linkq[r->lq_head++];
        pthread_mutex_unlock(&r->mu);
        char *f0 = set_path(r, c, 0), *f1 = set_path(r, c, 1);
        double b = fmax(file_bytes(f0), file_bytes(f1)), t = pinas_now();
        free(f0);
        free(f1);
        sleep_s(b / r->bw + r->rtt);
        double dt = pinas_now() - t;
        pthread_mutex_lock(&r->mu);
        r->xfer_sum += dt;
        r->xfer_n++;
        deliver_locked(r, c);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Requests arrive on the schedule; each claims a stored set or waits for the next one. */
static void *arrival_main(void *arg)
{
    stream_run *r = arg;
    pthread_mutex_lock(&r->mu);
    for (long i = 0; i < r->n && !r->stop; i++) {
        double due = r->t0 + r->arr[i];
        struct timespec ts = {(time_t)due, (long)((due - floor(due)) * 1e9)};
        while (!r->stop && pinas_now() < due) pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (r->stop) break;
        double t = pinas_now() - r->t0;
        track(r, t);
        r->arr_real[i] = t;
        if (r->sq_head < r->sq_tail && r->wq_head == r->wq_tail) {
            r->claim_set[i] = r->storeq[r->sq_head++];
            r->claim_t[i] = t;
        } else {
            r->waitq[r->wq_tail++] = i;
        }
        r->arrived++;
        track_peak(r);
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

typedef struct {
    pinas_mpc_party_args a;
} party_job;

static pinas_status party_fn(pinas_ctx *ctx, pinas_chan *ch, int role, void *user)
{
    (void)role;
    party_job *j = user;
    return pinas_mpc_party_run(ctx, ch, &j->a, NULL);
}

/* One private inference on set `id`: both files loaded, both parties over loopback. */
static pinas_status serve(pinas_ctx *ctx, stream_run *r, long id, const float *x, float *logits)
{
    char *f0 = set_path(r, id, 0), *f1 = set_path(r, id, 1);
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    pinas_status s = f0 && f1 ? pinas_mpc_prep_load(ctx, f0, r->key, &p0) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_mpc_prep_load(ctx, f1, r->key, &p1);
    int tmo = r->o->timeout_ms > 0 ? r->o->timeout_ms : 60000;
    party_job js = {.a = {.role = 0, .model = r->m, .prep = p0, .timeout_ms = tmo, .threads = 1}};
    party_job jc = {.a = {.role = 1, .net = r->m->net, .prep = p1, .x = x, .logits = logits, .timeout_ms = tmo, .threads = 1}};
    if (!s) s = pinas_mpc_loopback_pair(ctx, tmo, party_fn, &js, &jc);
    pinas_mpc_prep_free(p0);
    pinas_mpc_prep_free(p1);
    if (f0) unlink(f0);
    if (f1) unlink(f1);
    free(f0);
    free(f1);
    return s;
}

/* The server: requests one at a time, in arrival order, as soon as each holds a set. */
static pinas_status serve_all(pinas_ctx *ctx, stream_run *r)
{
    const pinas_node *in = pinas_net_node(r->m->net, 0);
    size_t per = (size_t)in->c * in->h * in->w;
    float *x = malloc(per * sizeof *x), *logits = malloc((size_t)(pinas_net_num_classes(r->m->net) + 1) * sizeof *logits);
    if (!x || !logits) {
        free(x);
        free(logits);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    pinas_rng rng = {r->o->seed ^ 0x5eedULL};
    pinas_status s = PINAS_OK;
    double prev_done = 0;
    for (long i = 0; i < r->n && !s; i++) {
        pthread_mutex_lock(&r->mu);
        while (!r->failed && r->claim_set[i] < 0) pthread_cond_wait(&r->cv, &r->mu);
        long id = r->claim_set[i];
        double claimed = r->claim_t[i];
        int failed = r->failed;
        pthread_mutex_unlock(&r->mu);
        if (failed) return PINAS_OK; /* the dealer's message is in r->err */
        double ready = claimed > prev_done ? claimed : prev_done;
        pinas_rng_fill_normal(&rng, x, per);
        s = serve(ctx, r, id, x, logits);
        double done = pinas_now() - r->t0;
        if (s) s = pinas_error_prefix(ctx, s, "request %ld (set %ld)", i, id);
        /* The server's time per request as the model's FIFO server sees it: from the moment it could
         * start (its set claimed, the previous one done) to the result, wake-ups included. */
        r->on_sum += done - ready;
        r->lat[i] = done - r->arr_real[i];
        prev_done = done;
    }
    free(x);
    free(logits);
    return s;
}

static pinas_status check_opts(pinas_ctx *ctx, const pinas_stream_opts *o)
{
    if (!o->model_dir) return pinas_error(ctx, PINAS_EINVAL, "stream: no model dir");
    if (o->requests < 1) return pinas_error(ctx, PINAS_EINVAL, "stream: requests: expected at least 1, got %ld", o->requests);
    if (!(o->rate_per_s > 0) || !isfinite(o->rate_per_s)) return pinas_error(ctx, PINAS_EINVAL, "stream: rate: expected a positive rate");
    if (!(o->client_storage_bytes >= 0)) return pinas_error(ctx, PINAS_EINVAL, "stream: client storage: expected >= 0 bytes");
    return PINAS_OK;
}

/* The model, the parameters, the store's directory and key, the schedule, the shared arrays. */
static pinas_status stream_setup(pinas_ctx *ctx, const pinas_stream_opts *o, stream_run *r)
{
    r->o = o;
    r->n = o->requests;
    pinas_status s = pinas_model_load(ctx, o->model_dir, &r->m);
    if (s) return s;
    pinas_mpc_params_default(&r->p);
    pinas_mpc_params_from_meta(&r->m->meta, &r->p);
    pinas_mpc_layer_bits *lb = NULL;
    r->deal.n_layer_bits = pinas_mpc_layer_bits_from_meta(&r->m->meta, &lb);
    r->deal.layer_bits = lb;
    if (r->deal.n_layer_bits < 0) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    r->p.batch = 1;
    r->p.threads = 1;
    const char *tmp = o->tmpdir ? o->tmpdir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *tmpl = pinas_path_join(tmp, "pinas-stream-XXXXXX");
    r->dir = tmpl ? mkdtemp(tmpl) : NULL;
    if (!r->dir) {
        free(tmpl);
        return pinas_error(ctx, PINAS_EIO, "%s: cannot create the store's directory: %s", tmp, strerror(errno));
    }
    r->keyfile = pinas_path_join(r->dir, "dealer.key");
    s = r->keyfile ? pinas_mpc_dealer_keygen(ctx, r->keyfile) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_mpc_dealer_key_load(ctx, r->keyfile, r->key);
    size_t n = (size_t)r->n;
    r->arr = calloc(n, sizeof *r->arr), r->arr_real = calloc(n, sizeof *r->arr_real), r->claim_t = calloc(n, sizeof *r->claim_t);
    r->lat = calloc(n, sizeof *r->lat);
    r->claim_set = malloc(n * sizeof *r->claim_set), r->storeq = calloc(n + 1, sizeof *r->storeq);
    r->waitq = calloc(n, sizeof *r->waitq), r->linkq = calloc(n + 1, sizeof *r->linkq);
    if (!s && (!r->arr || !r->arr_real || !r->claim_t || !r->lat || !r->claim_set || !r->storeq || !r->waitq || !r->linkq))
        s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (s) return s;
    for (long i = 0; i < r->n; i++) r->claim_set[i] = -1;
    pinas_e2e_poisson_arrivals(o->seed, o->rate_per_s, r->n, r->arr);
    if (o->link) {
        pinas_cost_link *l = NULL;
        if ((s = pinas_cost_link_load(ctx, o->link, &l))) return s;
        r->emulate = 1;
        r->bw = pinas_cost_link_bandwidth(l);
        r->rtt = pinas_cost_link_rtt(l);
        pinas_cost_link_free(l);
    }
    return PINAS_OK;
}

/* The store starts full: a first set tells the client's bytes, hence K; then K - 1 more. */
static pinas_status stream_fill(pinas_ctx *ctx, stream_run *r, pinas_stream_result *out)
{
    double dt = 0;
    pinas_status s = deal_set(ctx, r, r->next_id, &dt);
    if (s) return pinas_error_prefix(ctx, s, "dealer");
    char *f0 = set_path(r, r->next_id, 0), *f1 = set_path(r, r->next_id, 1);
    out->server_set_bytes = file_bytes(f0);
    out->client_set_bytes = file_bytes(f1);
    free(f0);
    free(f1);
    double k = out->client_set_bytes > 0 ? floor(r->o->client_storage_bytes / out->client_set_bytes) : INFINITY;
    r->cap = k >= (double)r->n ? r->n : (long)k;
    r->fill_sum += dt;
    r->fill_n++;
    if (r->cap == 0) {
        unlink_set(r, r->next_id); /* nothing may be kept ahead: the probe goes */
        return PINAS_OK;
    }
    r->storeq[r->sq_tail++] = r->next_id++;
    r->produced = 1;
    while (!s && r->produced < r->cap) {
        s = deal_set(ctx, r, r->next_id, &dt);
        if (s) return pinas_error_prefix(ctx, s, "dealer");
        r->storeq[r->sq_tail++] = r->next_id++;
        r->produced++;
        r->fill_sum += dt;
        r->fill_n++;
    }
    return s;
}

/* Starts the dealer, link and arrival threads, serves every request, stops and joins them. */
static pinas_status stream_go(pinas_ctx *ctx, stream_run *r)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t td, tl, ta;
    r->t0 = pinas_now();
    int hd = pthread_create(&td, NULL, dealer_main, r) == 0;
    int hl = r->emulate ? pthread_create(&tl, NULL, link_main, r) == 0 : 0;
    int ha = pthread_create(&ta, NULL, arrival_main, r) == 0;
    pinas_status s = hd && ha && (hl || !r->emulate) ? serve_all(ctx, r) : pinas_error(ctx, PINAS_EINTERNAL, "cannot start the stream's threads");
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (hd) pthread_join(td, NULL);
    if (hl) pthread_join(tl, NULL);
    if (ha) pthread_join(ta, NULL);
    if (!s && r->failed) s = pinas_error(ctx, PINAS_EINTERNAL, "%s", r->err);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    return s;
}

/* Measured figures, then the simulation with them (and with the cost model's) on the same arrivals. */
static pinas_status stream_report(pinas_ctx *ctx, stream_run *r, pinas_stream_result *out)
{
    long n = r->n, waited = 0;
    for (long i = 0; i < n; i++) waited += r->claim_t[i] > r->arr_real[i];
    pinas_e2e_result *run = &out->run;
    run->n = run->n_measured = n;
    run->capacity = r->cap;
    run->waited_share = (double)waited / (double)n;
    out->wall_s = r->arr_real[n - 1] + r->lat[n - 1];
    double span = r->arr_real[n - 1] - r->arr_real[0];
    run->storage_mean_bytes = (span > 0 ? r->area / span : r->peak) * out->client_set_bytes;
    run->storage_max_bytes = r->peak * out->client_set_bytes;
    run->server_util = span > 0 ? r->on_sum / span : NAN;
    out->gen_samples = r->gen_n ? r->gen_n : r->fill_n;
    out->measured = (pinas_e2e_costs){.online_s = r->on_sum / (double)n,
                                      .gen_s = r->gen_n ? r->gen_sum / (double)r->gen_n : r->fill_sum / (double)r->fill_n,
                                      .xfer_s = r->xfer_n ? r->xfer_sum / (double)r->xfer_n : 0,
                                      .client_bytes = out->client_set_bytes, .server_bytes = out->server_set_bytes};
    pinas_e2e_latency_stats(r->lat, n, run); /* sorts r->lat: wall_s is taken above */
    pinas_e2e_params ep;
    pinas_e2e_params_default(&ep);
    ep.trace = r->arr_real;
    ep.n_trace = n;
    ep.warmup_frac = 0;
    ep.storage_bytes = r->o->client_storage_bytes;
    ep.costs = out->measured;
    pinas_status s = pinas_e2e_simulate(ctx, &ep, &out->predicted);
    /* the cost model's view of the same stream */
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    pinas_cost_prediction *pr = NULL;
    if (!s) s = pinas_cost_hw_load(ctx, r->o->hw ? r->o->hw : "cpu", &hw);
    if (!s) s = pinas_cost_link_load(ctx, r->o->link ? r->o->link : "loopback", &link);
    if (!s) s = pinas_cost_predict(ctx, r->m->net, hw, link, &r->p, &pr);
    if (!s) {
        pinas_e2e_costs_from_prediction(pr, link, &out->model);
        ep.costs = out->model;
        s = pinas_e2e_simulate(ctx, &ep, &out->model_predicted);
    }
    pinas_cost_prediction_free(pr);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    return s;
}

static void stream_free(stream_run *r)
{
    if (r->dir) {
        for (long id = 0; id < r->next_id + 1; id++) unlink_set(r, id);
        if (r->keyfile) unlink(r->keyfile);
        rmdir(r->dir);
    }
    memset(r->key, 0, sizeof r->key);
    free(r->dir), free(r->keyfile), free(r->arr), free(r->arr_real), free(r->claim_t), free(r->lat);
    free(r->claim_set), free(r->storeq), free(r->waitq), free(r->linkq);
    free((void *)r->deal.layer_bits);
    pinas_model_free(r->m);
}

pinas_status pinas_stream_run(pinas_ctx *ctx, const pinas_stream_opts *o, pinas_stream_result *out)
{
    memset(out, 0, sizeof *out);
    pinas_status s = check_opts(ctx, o);
    if (s) return s;
    stream_run r;
    memset(&r, 0, sizeof r);
    s = stream_setup(ctx, o, &r);
    if (!s) s = stream_fill(ctx, &r, out);
    if (!s) s = stream_go(ctx, &r);
    if (!s) s = stream_report(ctx, &r, out);
    stream_free(&r);
    return s;
}

cJSON *pinas_stream_result_to_json(const pinas_stream_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "requests", (double)r->run.n);
    cJSON_AddNumberToObject(o, "capacity", (double)r->run.capacity);
    cJSON_AddNumberToObject(o, "client_set_bytes", r->client_set_bytes);
    cJSON_AddNumberToObject(o, "server_set_bytes", r->server_set_bytes);
    cJSON_AddItemToObject(o, "measured", pinas_e2e_result_to_json(&r->run));
    cJSON_AddItemToObject(o, "measured_costs", pinas_e2e_costs_to_json(&r->measured));
    cJSON_AddNumberToObject(o, "gen_samples", (double)r->gen_samples);
    cJSON_AddItemToObject(o, "predicted", pinas_e2e_result_to_json(&r->predicted));
    cJSON_AddNumberToObject(o, "predicted_error", r->predicted.mean_s / r->run.mean_s - 1);
    cJSON_AddItemToObject(o, "model_costs", pinas_e2e_costs_to_json(&r->model));
    cJSON_AddItemToObject(o, "model_predicted", pinas_e2e_result_to_json(&r->model_predicted));
    cJSON_AddNumberToObject(o, "model_error", r->model_predicted.mean_s / r->run.mean_s - 1);
    cJSON_AddNumberToObject(o, "wall_s", r->wall_s);
    return o;
}
