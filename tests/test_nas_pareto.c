/* Tests for nas/pareto.c and nas/plot.c: known fronts, ties, duplicates, one point, hypervolume, files. */
#define _GNU_SOURCE
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

int main(void)
{
    tu_test tests[] = {{"known front", test_known_front},
                       {"ties and duplicates", test_ties_and_duplicates},
                       {"one point, empty, NaN", test_one_point_and_empty_and_nan},
                       {"hypervolume", test_hypervolume},
                       {"set: online and total", test_set_online_and_total},
                       {"bad metrics", test_bad_metrics},
                       {"files and run dir", test_files_and_run_dir}};
    return tu_run("nas_pareto", tests, (int)(sizeof tests / sizeof tests[0]));
}
