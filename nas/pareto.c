/* Latency-accuracy Pareto fronts: dominance, hypervolume, sets of candidates from run dirs, JSON and CSV. */
#define _GNU_SOURCE
#include "nas_internal.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int pinas_pareto_front(const double *lat, const double *acc, int n, int *nondom)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        int dominated = isnan(lat[i]) || isnan(acc[i]);
        for (int j = 0; j < n && !dominated; j++) {
            if (j == i || isnan(lat[j]) || isnan(acc[j])) continue;
            if (lat[j] <= lat[i] && acc[j] >= acc[i] && (lat[j] < lat[i] || acc[j] > acc[i])) dominated = 1;
        }
        nondom[i] = !dominated;
        count += !dominated;
    }
    return count;
}

typedef struct {
    double lat, acc;
} xy;

static int by_lat_then_acc_desc(const void *a, const void *b)
{
    const xy *p = a, *q = b;
    if (p->lat != q->lat) return p->lat < q->lat ? -1 : 1;
    if (p->acc != q->acc) return p->acc > q->acc ? -1 : 1;
    return 0;
}

double pinas_pareto_hypervolume(const double *lat, const double *acc, int n, double ref_lat, double ref_acc)
{
    if (n <= 0) return 0;
    xy *pts = malloc((size_t)n * sizeof *pts);
    if (!pts) return NAN;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(lat[i]) && !isnan(acc[i]) && lat[i] < ref_lat && acc[i] > ref_acc) pts[m++] = (xy){lat[i], acc[i]};
    qsort(pts, (size_t)m, sizeof *pts, by_lat_then_acc_desc);
    /* Sweeping by latency, each point that beats the best accuracy so far adds the strip between the
     * two accuracies, from its latency to the reference. */
    double hv = 0, best = ref_acc;
    for (int i = 0; i < m; i++) {
        if (pts[i].acc <= best) continue;
        hv += (ref_lat - pts[i].lat) * (pts[i].acc - best);
        best = pts[i].acc;
    }
    free(pts);
    return hv;
}

/* ------------------------------------------------------------ sets */

pinas_pareto *pinas_pareto_create(void)
{
    pinas_pareto *p = calloc(1, sizeof *p);
    if (p) p->hv = NAN;
    return p;
}

static void item_clear(pareto_item *it)
{
    free(it->label);
    free(it->run);
    free(it->kind);
    free(it->sweep);
    free(it->dir);
    cJSON_Delete(it->metrics);
}

void pinas_pareto_free(pinas_pareto *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) item_clear(&p->items[i]);
    free(p->items);
    free(p->hw);
    free(p->net);
    free(p->metric);
    free(p);
}

int pinas_pareto_count(const pinas_pareto *p) { return p ? p->n : 0; }

const pinas_pareto_entry *pinas_pareto_get(const pinas_pareto *p, int i)
{
    if (!p || i < 0 || i >= p->n) return NULL;
    return &p->items[i].e;
}

double pinas_pareto_hv(const pinas_pareto *p, double *ref_lat_ms, int *n_front)
{
    if (ref_lat_ms) *ref_lat_ms = p->ref_lat;
    if (n_front) *n_front = p->n_front;
    return p->hv;
}

/* "lambda=0.5" / "target=3ms" / "budget=3ms" (knapsack) from the metrics' "sweep" object; "" when absent. */
static char *sweep_label(const cJSON *sweep)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(sweep, "lambda");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(sweep, "target_ms");
    if (cJSON_IsNumber(l)) return pinas_strfmt("lambda=%g", l->valuedouble);
    if (cJSON_IsNumber(t)) return pinas_strfmt("target=%gms", t->valuedouble);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(sweep, "budget_ms");
    if (cJSON_IsNumber(b)) return pinas_strfmt("budget=%gms", b->valuedouble);
    return pinas_strdup("");
}

/* The last component of a dir path, trailing slashes ignored; NULL when there is none. New string. */
static char *dir_name(const char *dir)
{
    if (!dir) return NULL;
    size_t end = strlen(dir);
    while (end > 0 && dir[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/') start--;
    return end > start ? strndup(dir + start, end - start) : NULL;
}

/* The naive designs a candidate is compared against. */
static int is_naive_kind(const char *kind)
{
    return !strcmp(kind, "all-relu") || !strcmp(kind, "all-poly") || !strcmp(kind, "first-k") || !strcmp(kind, "random");
}

pinas_status pinas_pareto_add_metrics(pinas_ctx *ctx, pinas_pareto *p, const cJSON *m, const char *where, const char *dir)
{
    pinas_status s;
    const char *fmt, *run, *kind;
    if ((s = pinas_json_get_str(ctx, m, where, "", "format", &fmt))) return s;
    if (strcmp(fmt, PINAS_METRICS_FORMAT) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: format: \"%s\" is not supported (expected \"%s\")", where, fmt, PINAS_METRICS_FORMAT);
    if ((s = pinas_json_get_str(ctx, m, where, "", "run", &run))) return s;
    if ((s = pinas_json_get_str(ctx, m, where, "", "kind", &kind))) return s;
    if (strcmp(kind, "candidate") && !is_naive_kind(kind))
        return pinas_error(ctx, PINAS_EINVAL,
                           "%s: kind: expected \"candidate\", \"all-relu\", \"all-poly\", \"first-k\" or \"random\", got \"%s\"", where,
                           kind);
    int64_t k = -1, relu = 0;
    if ((s = pinas_json_get_int_opt(ctx, m, where, "", "k", -1, 1 << 20, &k))) return s;
    int candidate = !strcmp(kind, "candidate");
    if (candidate && k < 0) return pinas_error(ctx, PINAS_EINVAL, "%s: k: a candidate needs its index", where);
    if (!candidate) k = -1; /* only candidates are numbered; `pinas nas pick` relies on it */
    int64_t naive_k = -1;
    double budget = NAN;
    const cJSON *naive = cJSON_GetObjectItemCaseSensitive(m, "naive");
    if (naive && !cJSON_IsNull(naive)) {
        if (!cJSON_IsObject(naive))
            return pinas_error(ctx, PINAS_EINVAL, "%s: naive: expected an object {\"family\", \"k\", \"budget_ms\"}", where);
        const char *family = NULL;
        if ((s = pinas_json_get_str_opt(ctx, naive, where, "naive", "family", &family))) return s;
        if (family && (!strcmp(kind, "first-k") || !strcmp(kind, "random")) && strcmp(family, kind) != 0)
            return pinas_error(ctx, PINAS_EINVAL, "%s: naive.family: \"%s\" contradicts kind \"%s\"", where, family, kind);
        if ((s = pinas_json_get_int_opt(ctx, naive, where, "naive", "k", 0, 1 << 20, &naive_k))) return s;
        if ((s = pinas_json_get_num_opt(ctx, naive, where, "naive", "budget_ms", 0, INFINITY, &budget))) return s;
    }
    double acc, onb = 0, offb = 0;
    if ((s = pinas_json_get_num(ctx, m, where, "", "accuracy", 0, 1, &acc))) return s;
    if ((s = pinas_json_get_int(ctx, m, where, "", "relu_count", 0, INT64_MAX, &relu))) return s;
    if ((s = pinas_json_get_num_opt(ctx, m, where, "", "online_bytes", 0, INFINITY, &onb))) return s;
    if ((s = pinas_json_get_num_opt(ctx, m, where, "", "preprocessing_bytes", 0, INFINITY, &offb))) return s;
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(m, "latency");
    if (lat && !cJSON_IsObject(lat))
        return pinas_error(ctx, PINAS_EINVAL, "%s: latency: expected an object {\"hw/net\": {\"online_ms\", \"offline_ms\"}}", where);
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        pareto_item *items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        p->items = items;
        p->cap = cap;
    }
    pareto_item *it = &p->items[p->n];
    memset(it, 0, sizeof *it);
    it->run = pinas_strdup(run);
    it->kind = pinas_strdup(kind);
    if (candidate) {
        it->label = pinas_strfmt("%s/%lld", run, (long long)k);
    } else if (!strcmp(kind, "first-k") || !strcmp(kind, "random")) {
        /* Many of these per run: their directory ("first-k-3", "random-1-2") tells them apart. */
        char *name = dir_name(dir);
        if (name) it->label = pinas_strfmt("%s/%s", run, name);
        else if (naive_k >= 0) it->label = pinas_strfmt("%s/%s-%lld", run, kind, (long long)naive_k);
        else it->label = pinas_strfmt("%s/%s", run, kind);
        free(name);
    } else {
        it->label = pinas_strfmt("%s/%s", run, kind);
    }
    it->sweep = sweep_label(cJSON_GetObjectItemCaseSensitive(m, "sweep"));
    it->dir = pinas_strdup(dir ? dir : "");
    it->metrics = cJSON_Duplicate(m, 1);
    if (!it->run || !it->kind || !it->label || !it->sweep || !it->dir || !it->metrics) {
        item_clear(it);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    /* Two runs may share a name; the label must still tell their entries apart. */
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->items[i].label, it->label)) {
            char *l = pinas_strfmt("%s#%d", it->label, p->n);
            free(it->label);
            it->label = l;
            break;
        }
    it->e = (pinas_pareto_entry){.label = it->label, .run = it->run, .kind = it->kind, .k = (int)k, .sweep = it->sweep,
                                 .dir = it->dir, .accuracy = acc, .relu_count = relu, .online_bytes = onb,
                                 .offline_bytes = offb, .online_ms = NAN, .offline_ms = NAN, .latency_ms = NAN,
                                 .naive_k = (int)naive_k, .naive_budget_ms = budget};
    p->n++;
    p->hv = NAN;
    return PINAS_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Subdirectory names of dir, sorted numerically when they are numbers (candidates) else by name. */
static int list_subdirs(const char *dir, char ***out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        /* Zero-padded keys make the numeric candidates sort as numbers. */
        char *end;
        long v = strtol(e->d_name, &end, 10);
        names[n++] = *end ? pinas_strfmt("~%s", e->d_name) : pinas_strfmt("%012ld%s", v, e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char *orig = pinas_strdup(names[i][0] == '~' ? names[i] + 1 : names[i] + 12);
        free(names[i]);
        names[i] = orig;
    }
    *out = names;
    return n;
}

pinas_status pinas_pareto_load_run(pinas_ctx *ctx, pinas_pareto *p, const char *run_dir)
{
    static const char *const sub[] = {"candidates", "baselines"};
    int n_cand = 0;
    pinas_status s = PINAS_OK;
    for (int g = 0; g < 2 && !s; g++) {
        char *parent = pinas_path_join(run_dir, sub[g]);
        char **names;
        int n = list_subdirs(parent, &names);
        for (int i = 0; i < n; i++) {
            char *dir = pinas_path_join(parent, names[i]);
            char *mp = pinas_path_join(dir, "metrics.json");
            if (!s && pinas_path_exists(mp)) {
                cJSON *m;
                if (!(s = pinas_json_load(ctx, mp, &m))) {
                    s = pinas_pareto_add_metrics(ctx, p, m, mp, dir);
                    cJSON_Delete(m);
                    n_cand += g == 0 && !s;
                }
            }
            free(mp);
            free(dir);
            free(names[i]);
        }
        free(names);
        free(parent);
    }
    if (!s && n_cand == 0)
        s = pinas_error(ctx, PINAS_EINVAL, "%s: no candidates/<k>/metrics.json (not a finished search run dir?)", run_dir);
    return s;
}

/* Looks up metrics.latency["hw/net"]; 0 when found. */
static int find_latency(const cJSON *metrics, const char *key, double *on, double *off)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(metrics, "latency"), key);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(l, "online_ms"), *b = cJSON_GetObjectItemCaseSensitive(l, "offline_ms");
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b)) return -1;
    *on = a->valuedouble;
    *off = b->valuedouble;
    return 0;
}

void pinas_pareto_set_e2e(pinas_pareto *p, double client_storage_bytes, double rate_per_s, uint64_t seed)
{
    p->e2e = (nas_e2e_view){client_storage_bytes, rate_per_s, seed};
}

/* Metric "e2e": the simulated mean latency of the entry's model dir (ms). */
static pinas_status entry_e2e(pinas_ctx *ctx, const pinas_pareto *p, pareto_item *it, const char *hw, const char *net)
{
    if (!it->dir[0]) return pinas_error(ctx, PINAS_EINVAL, "%s: no model dir to simulate its end-to-end latency", it->label);
    pinas_e2e_costs c;
    pinas_e2e_result r;
    pinas_status s = nas_e2e_model_dir(ctx, it->dir, hw, net, &p->e2e, &c, &r);
    if (s) return pinas_error_prefix(ctx, s, "%s", it->label);
    it->e.latency_ms = r.mean_s * 1e3;
    return PINAS_OK;
}

pinas_status pinas_pareto_compute(pinas_ctx *ctx, pinas_pareto *p, const char *hw, const char *net, const char *metric)
{
    if (!p->n) return pinas_error(ctx, PINAS_EINVAL, "no candidates to compare");
    int total = 0, e2e = 0;
    if (!strcmp(metric, "total")) total = 1;
    else if (!strcmp(metric, "e2e")) e2e = 1;
    else if (strcmp(metric, "online") != 0)
        return pinas_error(ctx, PINAS_EINVAL, "metric: expected \"online\", \"total\" or \"e2e\", got \"%s\"", metric);
    if (e2e && !(p->e2e.rate_per_s > 0)) return pinas_error(ctx, PINAS_EINVAL, "metric e2e: no client storage budget and arrival rate set");
    char *key = pinas_strfmt("%s/%s", hw, net);
    pinas_status s = PINAS_OK;
    for (int i = 0; i < p->n && !s; i++) {
        pareto_item *it = &p->items[i];
        double on = NAN, off = NAN;
        if (find_latency(it->metrics, key, &on, &off)) {
            /* Not priced under this pair when the run was made: price its net now. */
            if (!it->dir[0]) {
                s = pinas_error(ctx, PINAS_EINVAL, "%s: no latency under %s and no model dir to price", it->label, key);
                break;
            }
            pinas_meta_latency row = {.profile = key};
            if ((s = nas_price_model_dir(ctx, it->dir, hw, net, &row))) {
                s = pinas_error_prefix(ctx, s, "%s: pricing under %s", it->label, key);
                break;
            }
            cJSON *one = pinas_model_meta_latency_json(&row, 1);
            cJSON *all = cJSON_GetObjectItemCaseSensitive(it->metrics, "latency");
            if (!all) all = cJSON_AddObjectToObject(it->metrics, "latency");
            if (one && one->child) cJSON_AddItemToObject(all, key, cJSON_DetachItemViaPointer(one, one->child));
            cJSON_Delete(one);
            if (find_latency(it->metrics, key, &on, &off)) s = pinas_error(ctx, PINAS_EINTERNAL, "%s: pricing gave no latency", it->label);
        }
        it->e.online_ms = on;
        it->e.offline_ms = off;
        it->e.latency_ms = total ? on + off : on;
        if (e2e) s = entry_e2e(ctx, p, it, hw, net);
    }
    free(key);
    if (s) return s;
    const int n = p->n;
    double *lat = calloc((size_t)n, sizeof *lat), *acc = calloc((size_t)n, sizeof *acc);
    int *nd = calloc((size_t)n, sizeof *nd);
    if (!lat || !acc || !nd) {
        free(lat);
        free(acc);
        free(nd);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    double maxlat = 0;
    for (int i = 0; i < n; i++) {
        lat[i] = p->items[i].e.latency_ms;
        acc[i] = p->items[i].e.accuracy;
        if (lat[i] > maxlat) maxlat = lat[i];
    }
    p->n_front = pinas_pareto_front(lat, acc, n, nd);
    for (int i = 0; i < n; i++) p->items[i].e.nondominated = nd[i];
    /* A reference a little beyond the slowest point keeps that point's contribution non-zero. */
    p->ref_lat = maxlat * 1.05;
    p->hv = pinas_pareto_hypervolume(lat, acc, n, p->ref_lat, 0.0);
    free(lat);
    free(acc);
    free(nd);
    free(p->hw);
    free(p->net);
    free(p->metric);
    p->hw = pinas_strdup(hw);
    p->net = pinas_strdup(net);
    p->metric = pinas_strdup(metric);
    return PINAS_OK;
}

void pinas_pareto_best_naive(const pinas_pareto *p, int *out)
{
    for (int i = 0; i < p->n; i++) {
        out[i] = -1;
        const pinas_pareto_entry *c = &p->items[i].e;
        if (strcmp(c->kind, "candidate") != 0 || isnan(c->latency_ms)) continue;
        for (int j = 0; j < p->n; j++) {
            const pinas_pareto_entry *b = &p->items[j].e;
            /* NaN fails the comparison, so an unpriced baseline never matches. */
            if (!is_naive_kind(b->kind) || !(b->latency_ms <= c->latency_ms)) continue;
            const pinas_pareto_entry *cur = out[i] >= 0 ? &p->items[out[i]].e : NULL;
            if (!cur || b->accuracy > cur->accuracy || (b->accuracy == cur->accuracy && b->latency_ms < cur->latency_ms)) out[i] = j;
        }
    }
}

static int by_entry_latency(const void *a, const void *b, void *arg)
{
    const pinas_pareto *p = arg;
    const pinas_pareto_entry *x = &p->items[*(const int *)a].e, *y = &p->items[*(const int *)b].e;
    /* Unpriced (NaN) entries last, so the order stays total before pinas_pareto_compute too. */
    int xn = isnan(x->latency_ms), yn = isnan(y->latency_ms);
    if (xn != yn) return xn - yn;
    if (!xn && x->latency_ms != y->latency_ms) return x->latency_ms < y->latency_ms ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

/* The candidate entries' indices into order, sorted by latency (ties: by index). Returns how many. */
static int candidates_by_latency(const pinas_pareto *p, int *order)
{
    int n = 0;
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->items[i].e.kind, "candidate")) order[n++] = i;
    qsort_r(order, (size_t)n, sizeof *order, by_entry_latency, (void *)p);
    return n;
}

static cJSON *num_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

cJSON *pinas_pareto_to_json(const pinas_pareto *p)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", PINAS_PARETO_FORMAT);
    cJSON *prof = cJSON_AddObjectToObject(j, "profile");
    cJSON_AddStringToObject(prof, "hw", p->hw ? p->hw : "");
    cJSON_AddStringToObject(prof, "net", p->net ? p->net : "");
    cJSON_AddStringToObject(prof, "metric", p->metric ? p->metric : "");
    if (p->metric && !strcmp(p->metric, "e2e")) { /* the stream the points were simulated under */
        cJSON_AddNumberToObject(prof, "client_storage_bytes", isfinite(p->e2e.client_storage_bytes) ? p->e2e.client_storage_bytes : -1);
        cJSON_AddNumberToObject(prof, "rate_per_min", p->e2e.rate_per_s * 60);
    }
    cJSON *hv = cJSON_AddObjectToObject(j, "hypervolume");
    cJSON_AddItemToObject(hv, "value", isnan(p->hv) ? cJSON_CreateNull() : cJSON_CreateNumber(p->hv));
    cJSON_AddStringToObject(hv, "units", "accuracy x ms");
    cJSON_AddNumberToObject(hv, "ref_latency_ms", p->ref_lat);
    cJSON_AddNumberToObject(hv, "ref_accuracy", 0);
    cJSON_AddItemToObject(hv, "normalized", isnan(p->hv) || p->ref_lat <= 0 ? cJSON_CreateNull() : cJSON_CreateNumber(p->hv / p->ref_lat));
    cJSON_AddNumberToObject(j, "n_front", p->n_front);
    cJSON *arr = cJSON_AddArrayToObject(j, "entries");
    for (int i = 0; i < p->n; i++) {
        const pareto_item *it = &p->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", it->label);
        cJSON_AddStringToObject(o, "run", it->run);
        cJSON_AddStringToObject(o, "kind", it->kind);
        if (it->e.k >= 0) cJSON_AddNumberToObject(o, "k", it->e.k);
        cJSON *sw = cJSON_GetObjectItemCaseSensitive(it->metrics, "sweep");
        if (sw) cJSON_AddItemToObject(o, "sweep", cJSON_Duplicate(sw, 1));
        cJSON_AddStringToObject(o, "dir", it->dir);
        cJSON_AddNumberToObject(o, "accuracy", it->e.accuracy);
        cJSON_AddNumberToObject(o, "relu_count", (double)it->e.relu_count);
        cJSON_AddNumberToObject(o, "online_bytes", it->e.online_bytes);
        cJSON_AddNumberToObject(o, "preprocessing_bytes", it->e.offline_bytes);
        if (!isnan(it->e.latency_ms)) cJSON_AddNumberToObject(o, "latency_ms", it->e.latency_ms);
        cJSON *lat = cJSON_GetObjectItemCaseSensitive(it->metrics, "latency");
        cJSON_AddItemToObject(o, "latency", lat ? cJSON_Duplicate(lat, 1) : cJSON_CreateObject());
        cJSON_AddBoolToObject(o, "nondominated", it->e.nondominated);
        const cJSON *naive = cJSON_GetObjectItemCaseSensitive(it->metrics, "naive");
        if (cJSON_IsObject(naive)) cJSON_AddItemToObject(o, "naive", cJSON_Duplicate(naive, 1));
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *cmp = cJSON_AddArrayToObject(j, "comparison");
    int *best = malloc((size_t)(p->n ? p->n : 1) * sizeof *best), *order = malloc((size_t)(p->n ? p->n : 1) * sizeof *order);
    if (!best || !order) {
        free(best);
        free(order);
        cJSON_Delete(j);
        return NULL;
    }
    pinas_pareto_best_naive(p, best);
    int n = candidates_by_latency(p, order);
    for (int q = 0; q < n; q++) {
        const pinas_pareto_entry *c = &p->items[order[q]].e;
        const pinas_pareto_entry *b = best[order[q]] >= 0 ? &p->items[best[order[q]]].e : NULL;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "candidate", c->label);
        cJSON_AddItemToObject(o, "latency_ms", num_or_null(c->latency_ms));
        cJSON_AddNumberToObject(o, "accuracy", c->accuracy);
        cJSON_AddItemToObject(o, "naive", b ? cJSON_CreateString(b->label) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "naive_kind", b ? cJSON_CreateString(b->kind) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "naive_latency_ms", num_or_null(b ? b->latency_ms : NAN));
        cJSON_AddItemToObject(o, "naive_accuracy", num_or_null(b ? b->accuracy : NAN));
        cJSON_AddItemToObject(o, "delta_accuracy", num_or_null(b ? c->accuracy - b->accuracy : NAN));
        cJSON_AddItemToObject(o, "wins", b ? cJSON_CreateBool(c->accuracy > b->accuracy) : cJSON_CreateNull());
        cJSON_AddItemToArray(cmp, o);
    }
    free(best);
    free(order);
    return j;
}

/* The union of latency keys over the set, in first-seen order. Returns the count; keys borrowed. */
static int latency_keys(const pinas_pareto *p, const char **keys, int max)
{
    int n = 0;
    for (int i = 0; i < p->n; i++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p->items[i].metrics, "latency"))
        {
            int seen = 0;
            for (int q = 0; q < n; q++) seen |= !strcmp(keys[q], e->string);
            if (!seen && n < max) keys[n++] = e->string;
        }
    }
    return n;
}

/* CSV fields never contain commas or quotes here, except labels a user chose: quote those. */
static void csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

pinas_status pinas_pareto_write_csv(pinas_ctx *ctx, const pinas_pareto *p, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    const char *keys[64];
    int nk = latency_keys(p, keys, 64);
    fprintf(f, "label,run,kind,k,sweep,accuracy,relu_count,online_bytes,preprocessing_bytes");
    for (int q = 0; q < nk; q++) {
        fputc(',', f);
        char *c = pinas_strfmt("%s online_ms", keys[q]);
        csv_str(f, c);
        free(c);
        fputc(',', f);
        c = pinas_strfmt("%s offline_ms", keys[q]);
        csv_str(f, c);
        free(c);
    }
    fprintf(f, ",latency_ms,nondominated\n");
    for (int i = 0; i < p->n; i++) {
        const pareto_item *it = &p->items[i];
        csv_str(f, it->label);
        fputc(',', f);
        csv_str(f, it->run);
        fprintf(f, ",%s,", it->kind);
        if (it->e.k >= 0) fprintf(f, "%d", it->e.k);
        fputc(',', f);
        csv_str(f, it->sweep);
        fprintf(f, ",%.6f,%lld,%.0f,%.0f", it->e.accuracy, (long long)it->e.relu_count, it->e.online_bytes, it->e.offline_bytes);
        for (int q = 0; q < nk; q++) {
            double on, off;
            if (find_latency(it->metrics, keys[q], &on, &off)) fprintf(f, ",,");
            else fprintf(f, ",%.6g,%.6g", on, off);
        }
        if (isnan(it->e.latency_ms)) fprintf(f, ",,%d\n", it->e.nondominated);
        else fprintf(f, ",%.6g,%d\n", it->e.latency_ms, it->e.nondominated);
    }
    fclose(f);
    pinas_status s = pinas_file_write_atomic(ctx, path, buf, len, PINAS_FILE_PUBLIC);
    free(buf);
    return s;
}

pinas_status pinas_pareto_save(pinas_ctx *ctx, const pinas_pareto *p, const char *dir, const char *title)
{
    pinas_status s = pinas_mkdir_p(ctx, dir);
    if (s) return s;
    char *jp = pinas_path_join(dir, "pareto.json"), *cp = pinas_path_join(dir, "pareto.csv");
    char *sp = pinas_path_join(dir, "pareto.svg"), *pp = pinas_path_join(dir, "pareto.png");
    cJSON *j = pinas_pareto_to_json(p);
    s = j ? pinas_json_save(ctx, jp, j) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_Delete(j);
    if (!s) s = pinas_pareto_write_csv(ctx, p, cp);
    if (!s) s = pinas_pareto_plot(ctx, p, title, sp, pp);
    free(jp);
    free(cp);
    free(sp);
    free(pp);
    return s;
}

static void human_bytes(double b, char *buf, size_t n)
{
    if (b >= 1e9) snprintf(buf, n, "%.2f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, n, "%.2f MB", b / 1e6);
    else if (b >= 1e3) snprintf(buf, n, "%.1f kB", b / 1e3);
    else snprintf(buf, n, "%.0f B", b);
}

void pinas_pareto_print_table(const pinas_pareto *p, FILE *f)
{
    int *order = malloc((size_t)(p->n ? p->n : 1) * sizeof *order);
    if (!order) return;
    for (int i = 0; i < p->n; i++) order[i] = i;
    qsort_r(order, (size_t)p->n, sizeof *order, by_entry_latency, (void *)p);
    fprintf(f, "Pareto front under %s / %s (%s latency): %d of %d non-dominated", p->hw ? p->hw : "?", p->net ? p->net : "?",
            p->metric ? p->metric : "?", p->n_front, p->n);
    if (!isnan(p->hv)) fprintf(f, ", hypervolume %.4g (normalised %.3f)", p->hv, p->ref_lat > 0 ? p->hv / p->ref_lat : 0.0);
    int w = 9;
    for (int i = 0; i < p->n; i++)
        if ((int)strlen(p->items[i].label) > w) w = (int)strlen(p->items[i].label);
    fprintf(f, "\n  %-*s %-14s %8s %11s %11s %11s %9s %11s %11s\n", w, "candidate", "sweep", "acc %", "latency ms", "online ms",
            "offline ms", "ReLUs", "online B", "prep B");
    for (int q = 0; q < p->n; q++) {
        const pinas_pareto_entry *e = &p->items[order[q]].e;
        char ob[24], pb[24];
        human_bytes(e->online_bytes, ob, sizeof ob);
        human_bytes(e->offline_bytes, pb, sizeof pb);
        fprintf(f, "%c %-*s %-14s %8.2f %11.3f %11.3f %11.3f %9lld %11s %11s\n", e->nondominated ? '*' : ' ', w, e->label,
                e->sweep[0] ? e->sweep : e->kind, 100 * e->accuracy, e->latency_ms, e->online_ms, e->offline_ms, (long long)e->relu_count,
                ob, pb);
    }
    fprintf(f, "(* = on the front)\n");
    int any_naive = 0;
    for (int i = 0; i < p->n; i++) any_naive |= is_naive_kind(p->items[i].e.kind);
    int *best = any_naive ? malloc((size_t)p->n * sizeof *best) : NULL;
    if (best) {
        pinas_pareto_best_naive(p, best);
        int nc = candidates_by_latency(p, order);
        int wn = 5;
        for (int i = 0; i < p->n; i++)
            if (is_naive_kind(p->items[i].e.kind) && (int)strlen(p->items[i].label) > wn) wn = (int)strlen(p->items[i].label);
        fprintf(f, "searched vs best naive at <= the same latency:\n");
        fprintf(f, "  %-*s %11s %8s   %-*s %11s %8s %9s\n", w, "candidate", "latency ms", "acc %", wn, "naive", "latency ms", "acc %",
                "delta pp");
        for (int q = 0; q < nc; q++) {
            const pinas_pareto_entry *c = &p->items[order[q]].e;
            fprintf(f, "  %-*s %11.3f %8.2f   ", w, c->label, c->latency_ms, 100 * c->accuracy);
            if (best[order[q]] < 0) {
                fprintf(f, "(no baseline this fast)\n");
                continue;
            }
            const pinas_pareto_entry *b = &p->items[best[order[q]]].e;
            fprintf(f, "%-*s %11.3f %8.2f %+9.2f\n", wn, b->label, b->latency_ms, 100 * b->accuracy, 100 * (c->accuracy - b->accuracy));
        }
        free(best);
    }
    free(order);
}
