/* Tests for nas/pareto.c and nas/plot.c: known fronts, ties, duplicates, one point, hypervolume, files,
 * naive baselines and the searched-vs-naive comparison, plot label placement. */
#define _GNU_SOURCE
#include "nas_internal.h" /* nas_place_labels */
#include "pinas_nas.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_known_front(void)
{
    /* Front: (1, .5) (2, .7) (4, .9); dominated: (3, .6) by (2, .7), (5, .85) by (4, .9), (4, .8) by (4, .9). */
    double lat[] = {3, 1, 2, 5, 4, 4};
    double acc[] = {.6, .5, .7, .85, .9, .8};
    int nd[6];
    CU_ASSERT_EQUAL(pinas_pareto_front(lat, acc, 6, nd), 3);
    int want[] = {0, 1, 1, 0, 1, 0};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(nd[i], want[i]);
}

static void test_ties_and_duplicates(void)
{
    /* Same latency, different accuracy: only the more accurate survives. Same accuracy, different
     * latency: only the faster survives. Exact duplicates both stay. */
    double lat[] = {2, 2, 1, 3, 1, 1};
    double acc[] = {.5, .8, .4, .8, .4, .3};
    int nd[6];
    CU_ASSERT_EQUAL(pinas_pareto_front(lat, acc, 6, nd), 3);
    int want[] = {0, 1, 1, 0, 1, 0};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(nd[i], want[i]);
    double l2[] = {1, 1}, a2[] = {.5, .5};
    CU_ASSERT_EQUAL(pinas_pareto_front(l2, a2, 2, nd), 2);
    CU_ASSERT(nd[0] && nd[1]);
}

static void test_one_point_and_empty_and_nan(void)
{
    double lat[] = {7}, acc[] = {.3};
    int nd[3] = {0};
    CU_ASSERT_EQUAL(pinas_pareto_front(lat, acc, 1, nd), 1);
    CU_ASSERT_EQUAL(nd[0], 1);
    CU_ASSERT_EQUAL(pinas_pareto_front(lat, acc, 0, nd), 0);
    CU_ASSERT_DOUBLE_EQUAL(pinas_pareto_hypervolume(lat, acc, 1, 10, 0), 3 * .3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pinas_pareto_hypervolume(lat, acc, 0, 10, 0), 0, 0);
    /* A NaN point neither sits on the front nor knocks others off it. */
    double l3[] = {NAN, 2, 1}, a3[] = {.9, .5, NAN};
    CU_ASSERT_EQUAL(pinas_pareto_front(l3, a3, 3, nd), 1);
    CU_ASSERT(!nd[0] && nd[1] && !nd[2]);
}

static void test_hypervolume(void)
{
    /* Front (1, .5) (2, .7) (4, .9), ref (5, 0): strips 4*.5 + 3*.2 + 1*.2 = 2.8. */
    double lat[] = {3, 1, 2, 5, 4, 4};
    double acc[] = {.6, .5, .7, .85, .9, .8};
    CU_ASSERT_DOUBLE_EQUAL(pinas_pareto_hypervolume(lat, acc, 6, 5, 0), 2.8, 1e-12);
    /* Dominated points and duplicates add nothing. */
    double l2[] = {1, 2, 4, 1}, a2[] = {.5, .7, .9, .5};
    CU_ASSERT_DOUBLE_EQUAL(pinas_pareto_hypervolume(l2, a2, 4, 5, 0), 2.8, 1e-12);
    /* Points beyond the reference add nothing; a reference accuracy cuts the strips. */
    CU_ASSERT_DOUBLE_EQUAL(pinas_pareto_hypervolume(l2, a2, 4, 3, 0), 2 * .5 + 1 * .2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pinas_pareto_hypervolume(l2, a2, 4, 5, .6), 3 * .1 + 1 * .2, 1e-12);
}

static cJSON *metrics(const char *run, const char *kind, int k, double lambda, double acc, double on_ms, double off_ms)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", PINAS_METRICS_FORMAT);
    cJSON_AddStringToObject(m, "run", run);
    cJSON_AddStringToObject(m, "kind", kind);
    if (k >= 0) {
        cJSON_AddNumberToObject(m, "k", k);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(m, "sweep"), "lambda", lambda);
    }
    cJSON_AddNumberToObject(m, "accuracy", acc);
    cJSON_AddNumberToObject(m, "relu_count", 1000 * on_ms);
    cJSON_AddNumberToObject(m, "online_bytes", 4096);
    cJSON_AddNumberToObject(m, "preprocessing_bytes", 8192);
    cJSON *l = cJSON_AddObjectToObject(cJSON_AddObjectToObject(m, "latency"), "cpu/lan");
    cJSON_AddNumberToObject(l, "online_ms", on_ms);
    cJSON_AddNumberToObject(l, "offline_ms", off_ms);
    cJSON_AddNumberToObject(l, "total_ms", on_ms + off_ms);
    return m;
}

static pinas_pareto *sample_set(pinas_ctx *ctx)
{
    pinas_pareto *p = pinas_pareto_create();
    struct {
        const char *kind;
        int k;
        double lambda, acc, on, off;
    } rows[] = {{"candidate", 0, 0, .90, 40, 5},  {"candidate", 1, .5, .86, 12, 30}, {"candidate", 2, 2, .80, 3, 2},
                {"candidate", 3, 4, .78, 3.5, 1}, {"all-relu", -1, 0, .91, 60, 6},   {"all-poly", -1, 0, .70, 1.5, 1}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cJSON *m = metrics("r", rows[i].kind, rows[i].k, rows[i].lambda, rows[i].acc, rows[i].on, rows[i].off);
        CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, p, m, "test", NULL), PINAS_OK);
        cJSON_Delete(m);
    }
    return p;
}

static void test_set_online_and_total(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_pareto *p = sample_set(ctx);
    CU_ASSERT_EQUAL(pinas_pareto_count(p), 6);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_compute(ctx, p, "cpu", "lan", "online"), PINAS_OK);
    /* Online: candidate 3 (3.5 ms, .78) is dominated by candidate 2 (3 ms, .80); the rest form the front. */
    int want_on[] = {1, 1, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(pinas_pareto_get(p, i)->nondominated, want_on[i]);
    int nf;
    double ref;
    double hv = pinas_pareto_hv(p, &ref, &nf);
    CU_ASSERT_EQUAL(nf, 5);
    CU_ASSERT_DOUBLE_EQUAL(ref, 63, 1e-9);
    /* Strips from the front sorted by latency: 1.5/.70, 3/.80, 12/.86, 40/.90, 60/.91. */
    double want = (63 - 1.5) * .70 + (63 - 3) * .10 + (63 - 12) * .06 + (63 - 40) * .04 + (63 - 60) * .01;
    CU_ASSERT_DOUBLE_EQUAL(hv, want, 1e-9);
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 1)->label, "r/1");
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 1)->sweep, "lambda=0.5");
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 4)->label, "r/all-relu");
    /* Total (online + offline): candidate 3 costs 4.5 ms, less than candidate 2's 5, so it joins the front. */
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_compute(ctx, p, "cpu", "lan", "total"), PINAS_OK);
    int want_tot[] = {1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(pinas_pareto_get(p, i)->nondominated, want_tot[i]);
    CU_ASSERT_DOUBLE_EQUAL(pinas_pareto_get(p, 0)->latency_ms, 45, 1e-12);
    /* An unknown profile and no model dir to price it from: a clear error. */
    TU_ASSERT_ERR(ctx, pinas_pareto_compute(ctx, p, "fpga-zcu104", "wan", "online"), "r/0: no latency under fpga-zcu104/wan");
    TU_ASSERT_ERR(ctx, pinas_pareto_compute(ctx, p, "cpu", "lan", "fastest"), "metric");
    pinas_pareto_free(p);
    pinas_ctx_free(ctx);
}

static void test_bad_metrics(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_pareto *p = pinas_pareto_create();
    cJSON *m = metrics("r", "candidate", 0, 0, 1.5, 1, 1);
    TU_ASSERT_ERR(ctx, pinas_pareto_add_metrics(ctx, p, m, "x/metrics.json", NULL), "x/metrics.json: accuracy");
    cJSON_Delete(m);
    m = metrics("r", "best", 0, 0, .5, 1, 1);
    TU_ASSERT_ERR(ctx, pinas_pareto_add_metrics(ctx, p, m, "x/metrics.json", NULL), "kind");
    cJSON_Delete(m);
    CU_ASSERT_EQUAL(pinas_pareto_count(p), 0);
    TU_ASSERT_ERR(ctx, pinas_pareto_load_run(ctx, p, tu_path("no-such-run")), "no candidates");
    pinas_pareto_free(p);
    pinas_ctx_free(ctx);
}

/* Reads a file into a new buffer. */
static char *slurp(const char *path, size_t *len)
{
    pinas_ctx *ctx = pinas_ctx_create();
    char *t = NULL;
    if (pinas_file_read(ctx, path, &t, len)) t = NULL;
    pinas_ctx_free(ctx);
    return t;
}

static void test_files_and_run_dir(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    /* A run dir laid out as the search writes it: candidates/<k>/metrics.json, baselines/<b>/metrics.json. */
    const char *run = tu_path("run");
    const char *dirs[] = {"candidates/0", "candidates/1", "candidates/2", "candidates/3", "baselines/all-relu", "baselines/all-poly"};
    pinas_pareto *ref = sample_set(ctx);
    for (int i = 0; i < 6; i++) {
        char *d = pinas_path_join(run, dirs[i]);
        CU_ASSERT_EQUAL_FATAL(pinas_mkdir_p(ctx, d), PINAS_OK);
        const pinas_pareto_entry *e = pinas_pareto_get(ref, i);
        cJSON *m = metrics("r", e->kind, e->k, 0, e->accuracy, 0, 0);
        /* Rewrite the latencies as the sample has them. */
        double on[] = {40, 12, 3, 3.5, 60, 1.5}, off[] = {5, 30, 2, 1, 6, 1};
        cJSON *l = pinas_json_at(m, "latency");
        cJSON_DeleteItemFromObject(l, "cpu/lan");
        cJSON *o = cJSON_AddObjectToObject(l, "cpu/lan");
        cJSON_AddNumberToObject(o, "online_ms", on[i]);
        cJSON_AddNumberToObject(o, "offline_ms", off[i]);
        char *mp = pinas_path_join(d, "metrics.json");
        CU_ASSERT_EQUAL(pinas_json_save(ctx, mp, m), PINAS_OK);
        free(mp);
        free(d);
        cJSON_Delete(m);
    }
    pinas_pareto_free(ref);
    pinas_pareto *p = pinas_pareto_create();
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_load_run(ctx, p, run), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_count(p), 6);
    CU_ASSERT_EQUAL(pinas_pareto_get(p, 3)->k, 3);
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 4)->kind, "all-poly"); /* baselines sorted by name */
    CU_ASSERT(strstr(pinas_pareto_get(p, 0)->dir, "candidates/0") != NULL);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_compute(ctx, p, "cpu", "lan", "online"), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_pareto_get(p, 3)->nondominated, 0);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_save(ctx, p, run, "test front"), PINAS_OK);

    cJSON *j;
    CU_ASSERT_EQUAL_FATAL(pinas_json_load(ctx, tu_path("run/pareto.json"), &j), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "format")->valuestring, PINAS_PARETO_FORMAT);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")), 6);
    CU_ASSERT_EQUAL((int)pinas_json_at(j, "n_front")->valuedouble, 5);
    CU_ASSERT(pinas_json_at(j, "hypervolume.value")->valuedouble > 0);
    cJSON *e3 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 3);
    CU_ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(e3, "nondominated")));
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e3, "latency"), "cpu/lan"), "online_ms")->valuedouble, 3.5, 1e-12);
    cJSON_Delete(j);

    size_t len;
    char *csv = slurp(tu_path("run/pareto.csv"), &len);
    CU_ASSERT_FATAL(csv != NULL);
    CU_ASSERT(strncmp(csv, "label,run,kind,k,sweep,accuracy,relu_count,online_bytes,preprocessing_bytes,cpu/lan online_ms,cpu/lan offline_ms,latency_ms,nondominated\n", 130) == 0);
    CU_ASSERT(strstr(csv, "\nr/3,r,candidate,3,lambda=0,0.780000,0,4096,8192,3.5,1,3.5,0\n") != NULL);
    int lines = 0;
    for (char *c = csv; *c; c++) lines += *c == '\n';
    CU_ASSERT_EQUAL(lines, 7);
    free(csv);

    char *png = slurp(tu_path("run/pareto.png"), &len);
    CU_ASSERT_FATAL(png != NULL);
    CU_ASSERT(len > 10000 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    /* Width and height in the IHDR chunk: 1060 x 600. */
    CU_ASSERT(png[16] == 0 && png[17] == 0 && (unsigned char)png[18] == 0x04 && (unsigned char)png[19] == 0x24);
    CU_ASSERT((unsigned char)png[22] == 0x02 && (unsigned char)png[23] == 0x58);
    free(png);
    char *svg = slurp(tu_path("run/pareto.svg"), &len);
    CU_ASSERT_FATAL(svg != NULL);
    CU_ASSERT(strstr(svg, "<svg") != NULL && strstr(svg, "</svg>") != NULL);
    free(svg);
    pinas_pareto_free(p);
    pinas_ctx_free(ctx);
}

/* A first-k or random baseline's metrics: metrics() plus the "naive" object (k < 0: none). */
static cJSON *naive_metrics(const char *kind, int naive_k, double acc, double on_ms)
{
    cJSON *m = metrics("r", kind, -1, 0, acc, on_ms, 0);
    if (naive_k >= 0) {
        cJSON *n = cJSON_AddObjectToObject(m, "naive");
        cJSON_AddStringToObject(n, "family", kind);
        cJSON_AddNumberToObject(n, "k", naive_k);
        cJSON_AddNumberToObject(n, "budget_ms", on_ms + 0.25);
    }
    return m;
}

static void test_naive_kinds(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_pareto *p = pinas_pareto_create();
    cJSON *m = naive_metrics("first-k", 3, .7, 2);
    /* A stray top-level "k" does not make a baseline a numbered candidate. */
    cJSON_AddNumberToObject(m, "k", 3);
    CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, p, m, "a/metrics.json", "runs/fm/baselines/first-k-3"), PINAS_OK);
    cJSON_Delete(m);
    m = naive_metrics("random", 1, .6, 1);
    CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, p, m, "b/metrics.json", "runs/fm/baselines/random-1-2/"), PINAS_OK);
    cJSON_Delete(m);
    m = naive_metrics("first-k", 2, .65, 1.5); /* no dir: named by naive.k */
    CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, p, m, "c/metrics.json", NULL), PINAS_OK);
    cJSON_Delete(m);
    m = naive_metrics("random", -1, .5, 1); /* no "naive" at all is tolerated */
    CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, p, m, "d/metrics.json", NULL), PINAS_OK);
    cJSON_Delete(m);
    m = metrics("r", "all-relu", -1, 0, .9, 9, 0);
    CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, p, m, "e/metrics.json", "runs/fm/baselines/all-relu"), PINAS_OK);
    cJSON_Delete(m);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_count(p), 5);
    const pinas_pareto_entry *e = pinas_pareto_get(p, 0);
    CU_ASSERT_STRING_EQUAL(e->label, "r/first-k-3");
    CU_ASSERT_STRING_EQUAL(e->kind, "first-k");
    CU_ASSERT_EQUAL(e->k, -1);
    CU_ASSERT_EQUAL(e->naive_k, 3);
    CU_ASSERT_DOUBLE_EQUAL(e->naive_budget_ms, 2.25, 1e-12);
    CU_ASSERT_STRING_EQUAL(e->sweep, "");
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 1)->label, "r/random-1-2");
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 2)->label, "r/first-k-2");
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 3)->label, "r/random");
    CU_ASSERT_EQUAL(pinas_pareto_get(p, 3)->naive_k, -1);
    CU_ASSERT(isnan(pinas_pareto_get(p, 3)->naive_budget_ms));
    CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, 4)->label, "r/all-relu"); /* the all-* keep "<run>/<kind>" */

    /* Bad input names the file and the field; nothing is added. */
    m = metrics("r", "best", -1, 0, .5, 1, 1);
    TU_ASSERT_ERR(ctx, pinas_pareto_add_metrics(ctx, p, m, "x/metrics.json", NULL), "x/metrics.json: kind");
    CU_ASSERT(strstr(pinas_errmsg(ctx), "\"first-k\"") && strstr(pinas_errmsg(ctx), "\"random\"") && strstr(pinas_errmsg(ctx), "\"best\""));
    cJSON_Delete(m);
    m = naive_metrics("first-k", 3, .7, 2);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(m, "naive"), "family", cJSON_CreateString("random"));
    TU_ASSERT_ERR(ctx, pinas_pareto_add_metrics(ctx, p, m, "y/metrics.json", NULL), "y/metrics.json: naive.family");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(m, "naive"), "family", cJSON_CreateString("first-k"));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(m, "naive"), "k", cJSON_CreateString("three"));
    TU_ASSERT_ERR(ctx, pinas_pareto_add_metrics(ctx, p, m, "y/metrics.json", NULL), "y/metrics.json: naive.k");
    cJSON_ReplaceItemInObject(m, "naive", cJSON_CreateNumber(3));
    TU_ASSERT_ERR(ctx, pinas_pareto_add_metrics(ctx, p, m, "y/metrics.json", NULL), "y/metrics.json: naive");
    cJSON_Delete(m);
    CU_ASSERT_EQUAL(pinas_pareto_count(p), 5);
    pinas_pareto_free(p);
    pinas_ctx_free(ctx);
}

/* Candidates and naive baselines with known answers (latency = online ms, metric "online"):
 *   0 cand r/0   1 ms  .60   faster than every baseline       -> -1
 *   1 cand r/1   5 ms  .80   baselines <= 5: 3 (.70), 4 and 5 (.75, 4 ms / 3 ms) -> 5, the faster
 *   2 cand r/2  10 ms  .85   7 and 8 (.78 at exactly 10 ms, same) -> 7, the earlier; 6 is too slow
 *   3 all-poly   2 ms  .70
 *   4 first-k    4 ms  .75 (k=1)
 *   5 random     3 ms  .75 (k=2)
 *   6 all-relu  12 ms  .90
 *   7 first-k   10 ms  .78 (k=3)
 *   8 random    10 ms  .78 (k=3)
 *   9 cand r/3   2 ms  .65   ties the all-poly's latency: 3, and loses by 5 points */
static pinas_pareto *naive_set(pinas_ctx *ctx)
{
    pinas_pareto *p = pinas_pareto_create();
    struct {
        const char *kind;
        int k;
        double acc, lat;
    } rows[] = {{"candidate", 0, .60, 1}, {"candidate", 1, .80, 5}, {"candidate", 2, .85, 10}, {"all-poly", -1, .70, 2},
                {"first-k", 1, .75, 4},   {"random", 2, .75, 3},    {"all-relu", -1, .90, 12},  {"first-k", 3, .78, 10},
                {"random", 3, .78, 10},   {"candidate", 3, .65, 2}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int naive = !strcmp(rows[i].kind, "first-k") || !strcmp(rows[i].kind, "random");
        cJSON *m = naive ? naive_metrics(rows[i].kind, rows[i].k, rows[i].acc, rows[i].lat)
                         : metrics("r", rows[i].kind, rows[i].k, 0.5 * rows[i].k, rows[i].acc, rows[i].lat, 0);
        CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, p, m, "test", NULL), PINAS_OK);
        cJSON_Delete(m);
    }
    CU_ASSERT_EQUAL(pinas_pareto_compute(ctx, p, "cpu", "lan", "online"), PINAS_OK);
    return p;
}

static void test_best_naive(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_pareto *p = naive_set(ctx);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_count(p), 10);
    int out[10];
    pinas_pareto_best_naive(p, out);
    int want[] = {-1, 5, 7, -1, -1, -1, -1, -1, -1, 3};
    for (int i = 0; i < 10; i++) {
        if (out[i] != want[i]) fprintf(stderr, "\n  best_naive[%d] = %d, want %d\n", i, out[i], want[i]);
        CU_ASSERT_EQUAL(out[i], want[i]);
    }
    /* Only the candidates set: with no baseline at all every answer is -1. */
    pinas_pareto *q = pinas_pareto_create();
    cJSON *m = metrics("r", "candidate", 0, 1, .5, 3, 0);
    CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, q, m, "test", NULL), PINAS_OK);
    cJSON_Delete(m);
    CU_ASSERT_EQUAL(pinas_pareto_compute(ctx, q, "cpu", "lan", "online"), PINAS_OK);
    pinas_pareto_best_naive(q, out);
    CU_ASSERT_EQUAL(out[0], -1);
    pinas_pareto_free(q);
    pinas_pareto_free(p);
    pinas_ctx_free(ctx);
}

static void test_comparison_json_and_table(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_pareto *p = naive_set(ctx);
    cJSON *j = pinas_pareto_to_json(p);
    CU_ASSERT_FATAL(j != NULL);
    cJSON *c = cJSON_GetObjectItem(j, "comparison");
    CU_ASSERT_FATAL(cJSON_IsArray(c));
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(c), 4);
    /* Sorted by latency: r/0 (1 ms), r/3 (2), r/1 (5), r/2 (10). */
    const char *cand[] = {"r/0", "r/3", "r/1", "r/2"};
    const char *naive[] = {NULL, "r/all-poly", "r/random-2", "r/first-k-3"};
    const char *nkind[] = {NULL, "all-poly", "random", "first-k"};
    double lat[] = {1, 2, 5, 10}, acc[] = {.60, .65, .80, .85}, nlat[] = {0, 2, 3, 10}, nacc[] = {0, .70, .75, .78};
    for (int q = 0; q < 4; q++) {
        cJSON *o = cJSON_GetArrayItem(c, q);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "candidate")->valuestring, cand[q]);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "latency_ms")->valuedouble, lat[q], 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "accuracy")->valuedouble, acc[q], 1e-12);
        if (!naive[q]) {
            const char *nulls[] = {"naive", "naive_kind", "naive_latency_ms", "naive_accuracy", "delta_accuracy", "wins"};
            for (int f = 0; f < 6; f++) CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(o, nulls[f])));
            continue;
        }
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "naive")->valuestring, naive[q]);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "naive_kind")->valuestring, nkind[q]);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "naive_latency_ms")->valuedouble, nlat[q], 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "naive_accuracy")->valuedouble, nacc[q], 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "delta_accuracy")->valuedouble, acc[q] - nacc[q], 1e-12);
        CU_ASSERT_EQUAL(cJSON_IsTrue(cJSON_GetObjectItem(o, "wins")), acc[q] > nacc[q]);
        CU_ASSERT(cJSON_IsBool(cJSON_GetObjectItem(o, "wins")));
    }
    /* Baselines carry their "naive" object into the entries. */
    cJSON *e4 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 4);
    CU_ASSERT_EQUAL((int)pinas_json_at(e4, "naive.k")->valuedouble, 1);
    CU_ASSERT_FALSE(cJSON_HasObjectItem(e4, "k"));
    cJSON_Delete(j);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pinas_pareto_print_table(p, f);
    fclose(f);
    const char *block = strstr(buf, "\nsearched vs best naive at <= the same latency:\n");
    CU_ASSERT_FATAL(block != NULL);
    CU_ASSERT(strstr(buf, "(* = on the front)\n") < block);
    /* One line per candidate, by latency, deltas in percentage points. */
    const char *l0 = strstr(block, "\n  r/0 "), *l3 = strstr(block, "\n  r/3 "), *l1 = strstr(block, "\n  r/1 "), *l2 = strstr(block, "\n  r/2 ");
    CU_ASSERT_FATAL(l0 && l3 && l1 && l2);
    CU_ASSERT(l0 < l3 && l3 < l1 && l1 < l2);
    CU_ASSERT(strstr(l0, "(no baseline this fast)") < l3);
    CU_ASSERT(strstr(l3, "r/all-poly") < l1 && strstr(l3, "-5.00") < l1);
    CU_ASSERT(strstr(l1, "r/random-2") < l2 && strstr(l1, "+5.00") < l2);
    CU_ASSERT(strstr(l2, "r/first-k-3") && strstr(l2, "+7.00\n"));
    free(buf);

    /* Candidates alone: no comparison block, the table as before. */
    pinas_pareto *q = pinas_pareto_create();
    cJSON *m = metrics("r", "candidate", 0, 1, .5, 3, 0);
    CU_ASSERT_EQUAL(pinas_pareto_add_metrics(ctx, q, m, "test", NULL), PINAS_OK);
    cJSON_Delete(m);
    CU_ASSERT_EQUAL(pinas_pareto_compute(ctx, q, "cpu", "lan", "online"), PINAS_OK);
    f = open_memstream(&buf, &len);
    pinas_pareto_print_table(q, f);
    fclose(f);
    CU_ASSERT(strstr(buf, "searched vs best naive") == NULL);
    CU_ASSERT(len >= 19 && !strcmp(buf + len - 19, "(* = on the front)\n"));
    free(buf);
    pinas_pareto_free(q);
    pinas_pareto_free(p);
    pinas_ctx_free(ctx);
}

/* Checks what nas_place_labels promises: placed boxes inside the area, clear of every marker square
 * and of each other. */
static void check_placement(int n, const double *mx, const double *my, int nl, const nas_box *box, const int *placed, nas_box area)
{
    for (int j = 0; j < nl; j++) {
        if (!placed[j]) continue;
        CU_ASSERT(box[j].x >= area.x && box[j].y >= area.y && box[j].x + box[j].w <= area.x + area.w &&
                  box[j].y + box[j].h <= area.y + area.h);
        for (int i = 0; i < n; i++) {
            nas_box m = {mx[i] - NAS_MARKER_HALF, my[i] - NAS_MARKER_HALF, 2 * NAS_MARKER_HALF, 2 * NAS_MARKER_HALF};
            CU_ASSERT_FALSE(nas_box_overlap(box[j], m));
        }
        for (int q = 0; q < j; q++) CU_ASSERT_FALSE(placed[q] && nas_box_overlap(box[j], box[q]));
    }
}

static void test_label_placement(void)
{
    /* The overlap test itself: touching is not overlapping. */
    CU_ASSERT(nas_box_overlap((nas_box){0, 0, 10, 10}, (nas_box){5, 5, 10, 10}));
    CU_ASSERT_FALSE(nas_box_overlap((nas_box){0, 0, 10, 10}, (nas_box){10, 0, 10, 10}));
    CU_ASSERT_FALSE(nas_box_overlap((nas_box){0, 0, 10, 10}, (nas_box){0, 11, 10, 10}));

    /* Twelve points within 5 px of each other (a crowded corner of a real plot), plus two apart. */
    nas_box area = {80, 50, 750, 480};
    double mx[14], my[14], w[14], h[14];
    int anchor[14], placed[14];
    nas_box box[14];
    for (int i = 0; i < 12; i++) {
        mx[i] = 400 + (i % 4) * 1.5;
        my[i] = 300 + (i / 4) * 2.0;
        anchor[i] = i;
        w[i] = 38 + i;
        h[i] = 9;
    }
    mx[12] = 600, my[12] = 120, mx[13] = 826, my[13] = 300; /* the last one near the right edge */
    for (int i = 12; i < 14; i++) anchor[i] = i, w[i] = 50, h[i] = 10;
    int n = nas_place_labels(14, mx, my, 14, anchor, w, h, area, box, placed);
    check_placement(14, mx, my, 14, box, placed, area);
    int count = 0;
    for (int j = 0; j < 14; j++) count += placed[j];
    CU_ASSERT_EQUAL(n, count);
    /* The cluster has room for several labels around it (not for all twelve), the lone points for theirs. */
    CU_ASSERT(n >= 4 && n < 14);
    CU_ASSERT(placed[0] && placed[12] && placed[13]);
    /* A lone point's label takes the first position: right of its marker, centred on it. In the
     * cluster, right of point 0 would cover point 1's marker, so it goes left instead. */
    CU_ASSERT_DOUBLE_EQUAL(box[12].x, mx[12] + NAS_MARKER_HALF + 2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(box[12].y + box[12].h / 2, my[12], 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(box[0].x + box[0].w, mx[0] - NAS_MARKER_HALF - 2, 1e-12);
    /* No room right of the edge point: its label goes left. */
    CU_ASSERT(box[13].x + box[13].w <= mx[13] - NAS_MARKER_HALF);

    /* A dense grid leaves no room at all: nothing is placed, nothing overlaps. */
    double gx[36], gy[36], gw[36], gh[36];
    int ga[36], gp[36];
    nas_box gb[36];
    for (int i = 0; i < 36; i++) gx[i] = 100 + (i % 6) * 12, gy[i] = 100 + (i / 6) * 12, ga[i] = i, gw[i] = 30, gh[i] = 9;
    nas_box small = {90, 90, 80, 80};
    CU_ASSERT_EQUAL(nas_place_labels(36, gx, gy, 36, ga, gw, gh, small, gb, gp), 0);
    check_placement(36, gx, gy, 36, gb, gp, small);
    /* Labels may share an anchor (and may be fewer than markers); a bad anchor is skipped. */
    int a2[3] = {12, 12, 99};
    double w2[3] = {50, 50, 50}, h2[3] = {10, 10, 10};
    CU_ASSERT_EQUAL(nas_place_labels(14, mx, my, 3, a2, w2, h2, area, box, placed), 2);
    CU_ASSERT(placed[0] && placed[1] && !placed[2]);
    check_placement(14, mx, my, 2, box, placed, area);
}

/* A run dir with every kind of baseline: names sort, labels come from the dirs, the plot draws. */
static void test_run_dir_with_naive_baselines(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    const char *run = tu_path("run-naive");
    struct {
        const char *dir, *kind;
        int k;
        double acc, lat;
    } rows[] = {{"candidates/0", "candidate", 0, .80, 5},      {"candidates/1", "candidate", 1, .70, 2},
                {"baselines/all-relu", "all-relu", -1, .9, 20}, {"baselines/all-poly", "all-poly", -1, .5, 1},
                {"baselines/first-k-3", "first-k", 3, .75, 5},  {"baselines/random-1-2", "random", 1, .65, 2},
                {"baselines/random-3-1", "random", 3, .72, 5},  {"baselines/first-k-1", "first-k", 1, .68, 2}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *d = pinas_path_join(run, rows[i].dir);
        CU_ASSERT_EQUAL_FATAL(pinas_mkdir_p(ctx, d), PINAS_OK);
        int naive = !strcmp(rows[i].kind, "first-k") || !strcmp(rows[i].kind, "random");
        cJSON *m = naive ? naive_metrics(rows[i].kind, rows[i].k, rows[i].acc, rows[i].lat)
                         : metrics("r", rows[i].kind, rows[i].k, rows[i].k, rows[i].acc, rows[i].lat, 0);
        char *mp = pinas_path_join(d, "metrics.json");
        CU_ASSERT_EQUAL(pinas_json_save(ctx, mp, m), PINAS_OK);
        free(mp);
        free(d);
        cJSON_Delete(m);
    }
    pinas_pareto *p = pinas_pareto_create();
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_load_run(ctx, p, run), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_count(p), 8);
    const char *want[] = {"r/0", "r/1", "r/all-poly", "r/all-relu", "r/first-k-1", "r/first-k-3", "r/random-1-2", "r/random-3-1"};
    for (int i = 0; i < 8; i++) CU_ASSERT_STRING_EQUAL(pinas_pareto_get(p, i)->label, want[i]);
    CU_ASSERT_EQUAL(pinas_pareto_get(p, 5)->naive_k, 3);
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_compute(ctx, p, "cpu", "lan", "online"), PINAS_OK);
    int best[8];
    pinas_pareto_best_naive(p, best);
    CU_ASSERT_EQUAL(best[0], 5); /* at 5 ms: first-k-3 (.75) beats random-3-1 (.72) */
    CU_ASSERT_EQUAL(best[1], 4); /* at 2 ms: first-k-1 (.68) beats random-1-2 (.65) and all-poly */
    CU_ASSERT_EQUAL_FATAL(pinas_pareto_save(ctx, p, run, "naive baselines"), PINAS_OK);
    size_t len;
    char *svg = slurp(tu_path("run-naive/pareto.svg"), &len);
    CU_ASSERT_FATAL(svg != NULL);
    CU_ASSERT(strstr(svg, "</svg>") != NULL);
    free(svg);
    cJSON *j;
    CU_ASSERT_EQUAL_FATAL(pinas_json_load(ctx, tu_path("run-naive/pareto.json"), &j), PINAS_OK);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(j, "comparison")), 2);
    CU_ASSERT_STRING_EQUAL(pinas_json_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "comparison"), 1), "naive")->valuestring, "r/first-k-3");
    cJSON_Delete(j);
    pinas_pareto_free(p);
    pinas_ctx_free(ctx);
}

int main(void)
{
    tu_test tests[] = {{"known front", test_known_front},
                       {"ties and duplicates", test_ties_and_duplicates},
                       {"one point, empty, NaN", test_one_point_and_empty_and_nan},
                       {"hypervolume", test_hypervolume},
                       {"set: online and total", test_set_online_and_total},
                       {"bad metrics", test_bad_metrics},
                       {"files and run dir", test_files_and_run_dir},
                       {"naive kinds", test_naive_kinds},
                       {"best naive", test_best_naive},
                       {"comparison: JSON and table", test_comparison_json_and_table},
                       {"label placement", test_label_placement},
                       {"run dir with naive baselines", test_run_dir_with_naive_baselines}};
    return tu_run("nas_pareto", tests, (int)(sizeof tests / sizeof tests[0]));
}
