/* End-to-end latency of a stream of inferences: the discrete-event simulation of pinas_e2e.h, its
 * inputs from a prediction, traces, and the size/rate parsers the CLI and configs share. */
#define _GNU_SOURCE
#include "pinas_e2e.h"
#include "cost_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void pinas_e2e_params_default(pinas_e2e_params *p)
{
    memset(p, 0, sizeof *p);
    p->storage_bytes = INFINITY;
    p->rate_per_s = 0.1;
    p->n = PINAS_E2E_DEFAULT_N;
    p->warmup_frac = PINAS_E2E_DEFAULT_WARMUP;
    p->start_full = 1;
    p->seed = 1;
}

double pinas_e2e_md1_mean(double online_s, double rate_per_s)
{
    double rho = rate_per_s * online_s;
    if (rho >= 1) return INFINITY;
    if (online_s <= 0) return 0;
    return online_s + rho * online_s / (2 * (1 - rho));
}

static pinas_status check_params(pinas_ctx *ctx, const pinas_e2e_params *p)
{
    const pinas_e2e_costs *c = &p->costs;
    const double v[4] = {c->online_s, c->gen_s, c->xfer_s, c->client_bytes};
    const char *names[4] = {"online_s", "gen_s", "xfer_s", "client_bytes"};
    for (int i = 0; i < 4; i++)
        if (!(v[i] >= 0) || !isfinite(v[i])) return pinas_error(ctx, PINAS_EINVAL, "e2e: costs.%s: expected a finite value >= 0, got %g", names[i], v[i]);
    if (!(p->storage_bytes >= 0)) return pinas_error(ctx, PINAS_EINVAL, "e2e: storage_bytes: expected >= 0, got %g", p->storage_bytes);
    if (isfinite(p->storage_bytes) && c->client_bytes <= 0)
        return pinas_error(ctx, PINAS_EINVAL, "e2e: costs.client_bytes: expected > 0 with a finite storage budget");
    if (!(p->warmup_frac >= 0 && p->warmup_frac < 1))
        return pinas_error(ctx, PINAS_EINVAL, "e2e: warmup_frac: expected a value in [0, 1), got %g", p->warmup_frac);
    if (p->trace) {
        if (p->n_trace < 1) return pinas_error(ctx, PINAS_EINVAL, "e2e: the trace has no arrival");
        for (long i = 0; i < p->n_trace; i++)
            if (!(p->trace[i] >= 0) || !isfinite(p->trace[i]) || (i && p->trace[i] < p->trace[i - 1]))
                return pinas_error(ctx, PINAS_EINVAL, "e2e: trace[%ld] = %g: arrival times must be finite, >= 0 and non-decreasing", i, p->trace[i]);
    } else {
        if (!(p->rate_per_s > 0) || !isfinite(p->rate_per_s))
            return pinas_error(ctx, PINAS_EINVAL, "e2e: rate_per_s: expected a positive rate, got %g", p->rate_per_s);
        if (p->n < 1) return pinas_error(ctx, PINAS_EINVAL, "e2e: n: expected at least 1 inference, got %ld", p->n);
    }
    return PINAS_OK;
}

/* The dealer/store half of the model: when does inference i get its set (claim[i])? Also integrates
 * the stored sets over [t0, t1] into *area and their max into *peak. */
typedef struct {
    const double *arr;
    long n, cap;
    double gen, xfer;
    double *claim;       /* [n] out */
    double t0, t1, area, peak;
} store_sim;

static void store_track(store_sim *s, double *last_t, long stored, double t)
{
    double a = *last_t > s->t0 ? *last_t : s->t0, b = t < s->t1 ? t : s->t1;
    if (b > a) s->area += (double)stored * (b - a);
    *last_t = t;
}

static pinas_status store_run(pinas_ctx *ctx, store_sim *s, int start_full)
{
    double *deliver = malloc((size_t)s->n * sizeof *deliver); /* delivery time of set c (made by the dealer) */
    long *waitq = malloc((size_t)s->n * sizeof *waitq);
    if (!deliver || !waitq) {
        free(deliver);
        free(waitq);
        return pinas_error(ctx, PINAS_ENOMEM, "e2e: out of memory (%ld inferences)", s->n);
    }
    long stored = start_full ? s->cap : 0, produced = stored, made = 0, delivered = 0, in_flight = 0;
    long wq_head = 0, wq_tail = 0, next_arr = 0;
    double gen_done = -1, link_free = 0, last_t = 0, t = 0;
    s->area = 0;
    s->peak = 0;
    while (wq_head < s->n && (next_arr < s->n || wq_head < wq_tail)) {
        /* The dealer starts whenever idle and the store plus what is under way is short of need. */
        if (gen_done < 0 && produced < s->n && stored + in_flight < s->cap + (wq_tail - wq_head)) {
            gen_done = t + s->gen;
            in_flight++;
            produced++;
        }
        double ta = next_arr < s->n ? s->arr[next_arr] : INFINITY;
        double td = delivered < made ? deliver[delivered] : INFINITY;
        double tg = gen_done >= 0 ? gen_done : INFINITY;
        /* Ties: deliveries first, then the dealer, then arrivals (a set that lands at an arrival's
         * instant serves it without waiting). */
        if (td <= tg && td <= ta) {
            store_track(s, &last_t, stored, td);
            t = td;
            delivered++;
            in_flight--;
            if (wq_head < wq_tail) s->claim[waitq[wq_head++]] = t;
            else stored++;
        } else if (tg <= ta) {
            t = tg;
            double start = t > link_free ? t : link_free;
            link_free = start + s->xfer;
            deliver[made++] = link_free;
            gen_done = -1;
        } else {
            store_track(s, &last_t, stored, ta);
            t = ta;
            if (stored > 0 && wq_head == wq_tail) {
                stored--;
                s->claim[next_arr] = t;
            } else {
                waitq[wq_tail++] = next_arr;
            }
            next_arr++;
        }
        if (t >= s->t0 && t <= s->t1 && (double)stored > s->peak) s->peak = (double)stored;
    }
    store_track(s, &last_t, stored, s->t1);
    free(deliver);
    free(waitq);
    return PINAS_OK;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least q of the sample at or below it. */
static double quantile(const double *sorted, long n, double q)
{
    long k = (long)ceil(q * (double)n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return sorted[k];
}

void pinas_e2e_poisson_arrivals(uint64_t seed, double rate_per_s, long n, double *out)
{
    pinas_rng rng = {seed};
    double t = 0;
    for (long i = 0; i < n; i++) {
        t += -log1p(-pinas_rng_unif(&rng)) / rate_per_s;
        out[i] = t;
    }
}

static double *poisson_arrivals(const pinas_e2e_params *p)
{
    double *a = malloc((size_t)p->n * sizeof *a);
    if (a) pinas_e2e_poisson_arrivals(p->seed, p->rate_per_s, p->n, a);
    return a;
}

void pinas_e2e_latency_stats(double *lat, long n, pinas_e2e_result *out)
{
    double sum = 0;
    for (long i = 0; i < n; i++) sum += lat[i];
    out->mean_s = sum / (double)n;
    qsort(lat, (size_t)n, sizeof *lat, cmp_dbl);
    out->p50_s = quantile(lat, n, 0.50);
    out->p99_s = quantile(lat, n, 0.99);
    out->max_s = lat[n - 1];
}

/* The server half (FIFO online phases) and the statistics. */
static void server_stats(const pinas_e2e_params *p, const double *arr, const double *claim, long n, long w, double *lat,
                         pinas_e2e_result *out)
{
    double done = -INFINITY;
    long waited = 0;
    for (long i = 0; i < n; i++) {
        double start = claim[i] > done ? claim[i] : done;
        done = start + p->costs.online_s;
        if (i < w) continue;
        lat[i - w] = done - arr[i];
        waited += claim[i] > arr[i];
    }
    long m = n - w;
    out->waited_share = (double)waited / (double)m;
    pinas_e2e_latency_stats(lat, m, out);
    double span = arr[n - 1] - arr[w];
    out->server_util = span > 0 ? (double)m * p->costs.online_s / span : NAN;
}

pinas_status pinas_e2e_simulate(pinas_ctx *ctx, const pinas_e2e_params *p, pinas_e2e_result *out)
{
    memset(out, 0, sizeof *out);
    pinas_status s = check_params(ctx, p);
    if (s) return s;
    long n = p->trace ? p->n_trace : p->n;
    double *arr = p->trace ? (double *)p->trace : poisson_arrivals(p);
    double *claim = malloc((size_t)n * sizeof *claim), *lat = malloc((size_t)n * sizeof *lat);
    if (!arr || !claim || !lat) {
        if (!p->trace) free(arr);
        free(claim);
        free(lat);
        return pinas_error(ctx, PINAS_ENOMEM, "e2e: out of memory (%ld inferences)", n);
    }
    long w = (long)floor(p->warmup_frac * (double)n);
    if (w >= n) w = n - 1;
    double cap = isfinite(p->storage_bytes) ? floor(p->storage_bytes / p->costs.client_bytes) : INFINITY;
    store_sim st = {.arr = arr, .n = n, .cap = cap >= (double)n ? n : (long)cap, .gen = p->costs.gen_s, .xfer = p->costs.xfer_s,
                    .claim = claim, .t0 = arr[w], .t1 = arr[n - 1]};
    s = store_run(ctx, &st, p->start_full);
    if (!s) {
        out->n = n;
        out->n_measured = n - w;
        out->capacity = st.cap;
        server_stats(p, arr, claim, n, w, lat, out);
        double b = p->costs.client_bytes;
        out->storage_mean_bytes = st.t1 > st.t0 ? st.area / (st.t1 - st.t0) * b : st.peak * b;
        out->storage_max_bytes = st.peak * b;
    }
    if (!p->trace) free(arr);
    free(claim);
    free(lat);
    return s;
}

pinas_status pinas_e2e_trace_load(pinas_ctx *ctx, const char *path, double **times, long *n)
{
    *times = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return pinas_error(ctx, PINAS_EIO, "%s: cannot open the trace: %s", path, strerror(errno));
    double *t = NULL;
    long len = 0, cap = 0, line = 0;
    char buf[256];
    pinas_status s = PINAS_OK;
    while (!s && fgets(buf, sizeof buf, f)) {
        line++;
        char *p = buf;
        while (isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        while (isspace((unsigned char)*end)) end++;
        if (end == p || *end || errno || !isfinite(v) || v < 0) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s:%ld: expected an arrival time in seconds (a number >= 0), got \"%.*s\"", path, line,
                            (int)strcspn(p, "\r\n"), p);
        } else if (len && v < t[len - 1]) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s:%ld: arrival %g s is before the previous one (%g s); times must not decrease", path, line, v,
                            t[len - 1]);
        } else {
            if (len == cap) {
                cap = cap ? cap * 2 : 1024;
                double *nt = realloc(t, (size_t)cap * sizeof *t);
                if (!nt) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
                else t = nt;
            }
            if (!s) t[len++] = v;
        }
    }
    fclose(f);
    if (!s && len == 0) s = pinas_error(ctx, PINAS_EFORMAT, "%s: the trace holds no arrival time", path);
    if (s) {
        free(t);
        return s;
    }
    *times = t;
    *n = len;
    return PINAS_OK;
}

static double umax2(const uint64_t v[2]) { return (double)(v[0] > v[1] ? v[0] : v[1]); }

void pinas_e2e_costs_from_prediction(const pinas_cost_prediction *pr, const pinas_cost_link *link, pinas_e2e_costs *out)
{
    memset(out, 0, sizeof *out);
    double gen = 0;
    for (int i = 0; i < pr->n_rows; i++) {
        const pinas_cost_row *r = &pr->rows[i];
        if (r->node < 0) continue; /* the session row: transfers and rounds only */
        gen += r->offline_s - umax2(r->counts.offline.bytes) / link->bandwidth - umax2(r->counts.setup.bytes) / link->bandwidth;
    }
    out->online_s = pr->total.online_s;
    out->gen_s = gen > 0 ? gen : 0;
    out->server_bytes = (double)pr->total.counts.offline.bytes[0];
    out->client_bytes = (double)pr->total.counts.offline.bytes[1];
    out->xfer_s = umax2(pr->total.counts.offline.bytes) / link->bandwidth + link->rtt;
}

/* Splits "12.5 MiB" into a number and a (possibly empty) unit; -1 when there is no number. */
static int split_num(const char *text, double *v, char *unit, size_t n)
{
    char *end;
    errno = 0;
    *v = strtod(text, &end);
    if (end == text || errno || !isfinite(*v)) return -1;
    while (isspace((unsigned char)*end)) end++;
    snprintf(unit, n, "%s", end);
    size_t l = strlen(unit);
    while (l && isspace((unsigned char)unit[l - 1])) unit[--l] = 0;
    return 0;
}

pinas_status pinas_e2e_parse_bytes(pinas_ctx *ctx, const char *what, const char *text, double *bytes)
{
    static const struct { const char *u; double m; } units[] = {
        {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
        {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
    if (!strcasecmp(text, "inf") || !strcasecmp(text, "unlimited")) {
        *bytes = INFINITY;
        return PINAS_OK;
    }
    double v;
    char unit[32];
    if (split_num(text, &v, unit, sizeof unit) == 0 && v >= 0)
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (!strcasecmp(unit, units[i].u)) {
                *bytes = v * units[i].m;
                return PINAS_OK;
            }
    return pinas_error(ctx, PINAS_EINVAL, "%s: expected a size >= 0 such as 2GB, 512MiB or 100000 (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB; or inf), got \"%s\"",
                       what, text);
}

pinas_status pinas_e2e_parse_rate(pinas_ctx *ctx, const char *what, const char *text, double *per_s)
{
    static const struct { const char *u; double s; } units[] = {{"s", 1}, {"sec", 1}, {"min", 60}, {"h", 3600}, {"hour", 3600}};
    double v;
    char unit[32];
    if (split_num(text, &v, unit, sizeof unit) == 0 && v > 0 && unit[0] == '/')
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (!strcasecmp(unit + 1, units[i].u)) {
                *per_s = v / units[i].s;
                return PINAS_OK;
            }
    return pinas_error(ctx, PINAS_EINVAL, "%s: expected a positive rate such as 6/min, 0.5/s or 100/h, got \"%s\"", what, text);
}

cJSON *pinas_e2e_result_to_json(const pinas_e2e_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)r->n);
    cJSON_AddNumberToObject(o, "n_measured", (double)r->n_measured);
    cJSON_AddNumberToObject(o, "capacity", (double)r->capacity);
    cJSON_AddNumberToObject(o, "mean_ms", r->mean_s * 1e3);
    cJSON_AddNumberToObject(o, "p50_ms", r->p50_s * 1e3);
    cJSON_AddNumberToObject(o, "p99_ms", r->p99_s * 1e3);
    cJSON_AddNumberToObject(o, "max_ms", r->max_s * 1e3);
    cJSON_AddNumberToObject(o, "waited_share", r->waited_share);
    cJSON_AddNumberToObject(o, "storage_mean_bytes", r->storage_mean_bytes);
    cJSON_AddNumberToObject(o, "storage_max_bytes", r->storage_max_bytes);
    if (isnan(r->server_util)) cJSON_AddNullToObject(o, "server_util");
    else cJSON_AddNumberToObject(o, "server_util", r->server_util);
    return o;
}

cJSON *pinas_e2e_costs_to_json(const pinas_e2e_costs *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "online_ms", c->online_s * 1e3);
    cJSON_AddNumberToObject(o, "gen_ms", c->gen_s * 1e3);
    cJSON_AddNumberToObject(o, "xfer_ms", c->xfer_s * 1e3);
    cJSON_AddNumberToObject(o, "client_bytes", c->client_bytes);
    cJSON_AddNumberToObject(o, "server_bytes", c->server_bytes);
    return o;
}
