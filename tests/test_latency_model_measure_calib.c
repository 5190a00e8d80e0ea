/* Tests for the measurement layer's calibration (latency_model/measure/calibrate.c, stats.c): the GSL
 * line fit, Kendall's tau, and the whole calibration recovering known coefficients from synthetic
 * timings, its report and the files it writes. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_measure.h"
#include "testutil.h"

static pinas_ctx *ctx;

static void test_fit_exact(void)
{
    double x[6] = {1e3, 4e3, 1.6e4, 6.4e4, 2.56e5, 1e6}, y[6];
    for (int i = 0; i < 6; i++) y[i] = 2e-4 + 3e-7 * x[i];
    double a, b, r2;
    CU_ASSERT_EQUAL_FATAL(pinas_measure_fit_line(ctx, 6, x, y, &a, &b, &r2), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(a, 2e-4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(b, 3e-7, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(r2, 1, 1e-12);
}

static void test_fit_errors(void)
{
    double x[3] = {1, 1, 1}, y[3] = {1, 2, 3}, a, b, r2;
    TU_ASSERT_ERR(ctx, pinas_measure_fit_line(ctx, 2, x, y, &a, &b, &r2), "at least 3 points");
    TU_ASSERT_ERR(ctx, pinas_measure_fit_line(ctx, 3, x, y, &a, &b, &r2), "same work");
    double xn[3] = {1, 2, NAN};
    TU_ASSERT_ERR(ctx, pinas_measure_fit_line(ctx, 3, xn, y, &a, &b, &r2), "point 2 is not finite");
}

/* Synthetic runtime: time = a_k + b_k * work + the harness (the one-operator net's input, pooling and
 * output: 30 us + 1 ns per element, one round, 8 bytes per element) + the loopback's share (rounds *
 * RTT + bytes / bandwidth), with optional multiplicative noise. "base:KIND" times the harness alone. */
typedef struct {
    double noise;
    uint64_t st;
    int calls;
} synth;

/* Bench kinds in the cpu profile's primitive order; the linear primitive is timed on convolutions. */
static const char *kinds[] = {"relu", "poly", "patch_relu", "maxpool", "conv", "local"};
static const char *prims[] = {"relu", "poly", "patch_relu", "maxpool", "linear", "local"};
static const double A[] = {3e-4, 1e-4, 2e-4, 5e-4, 2e-4, 1e-6};
static const double B[] = {4e-7, 5e-8, 2e-7, 6e-7, 1e-9, 5e-10};

static double gauss(uint64_t *st)
{
    double u = 0;
    for (int i = 0; i < 12; i++) {
        *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
        u += (double)(*st >> 11) / 9007199254740992.0;
    }
    return u - 6;
}

static pinas_status synth_bench(pinas_ctx *c, const char *kind, int64_t n, int reps, const pinas_mpc_params *p, double *best_s,
                                pinas_mpc_cost *counts, void *user)
{
    (void)c, (void)reps, (void)p;
    synth *sy = user;
    sy->calls++;
    memset(counts, 0, sizeof *counts);
    if (strcmp(kind, "prg") == 0) {
        counts->offline.aes_blocks[0] = (uint64_t)n;
        *best_s = n / 2e8;
        return PINAS_OK;
    }
    if (strcmp(kind, "gemm") == 0) {
        counts->offline.ring_macs[0] = (uint64_t)n;
        *best_s = n / 1e9;
        return PINAS_OK;
    }
    int base = strncmp(kind, "base:", 5) == 0;
    if (base) kind += 5;
    int k = 0;
    while (k < 6 && strcmp(kinds[k], kind) != 0) k++;
    if (k == 6 || (base && k == 5)) return pinas_error(c, PINAS_EINVAL, "synthetic bench: unknown kind %s", kind);
    double t = 0;
    if (k != 5) { /* the harness of a private benchmark */
        t += 30e-6 + 1e-9 * (double)n;
        counts->online.rounds = 1;
        counts->online.bytes[0] = counts->online.bytes[1] = (uint64_t)n * 8;
    }
    if (!base) {
        if (strcmp(kind, "conv") == 0) {
            counts->online.ring_macs[0] = (uint64_t)n;
            counts->online.ring_macs[1] = (uint64_t)n / 2;
        }
        if (k != 5) {
            counts->online.rounds += 2;
            counts->online.bytes[0] += (uint64_t)n * 8;
            counts->online.bytes[1] += (uint64_t)n * 4;
        }
        t += A[k] + B[k] * (double)n;
    }
    /* loopback: 0.05 ms RTT, 20 Gbit/s = 2.5e9 B/s */
    double comm = counts->online.rounds * 0.05e-3 + counts->online.bytes[0] / 2.5e9;
    if (sy->noise > 0) t *= 1 + sy->noise * gauss(&sy->st);
    *best_s = t + comm;
    return PINAS_OK;
}

static void run_calibration(double noise, double tol)
{
    synth sy = {noise, 7, 0};
    pinas_measure_calib_opts o;
    pinas_measure_calib_opts_default(&o);
    o.bench = synth_bench;
    o.bench_user = &sy;
    o.n_sizes = noise > 0 ? 12 : 5;
    pinas_cost_link *link = NULL; /* what the synthetic runtime's network costs */
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_create(ctx, "synthetic-loopback", 2.5e9, 0.05e-3, &link), PINAS_OK);
    o.link = link;
    pinas_ctx_set_log_level(ctx, PINAS_LOG_QUIET);
    pinas_measure_calib_result *res = NULL;
    pinas_status s = pinas_measure_calibrate(ctx, &o, &res);
    if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    const pinas_cost_hw *hw = res->profile;
    /* one visit per size per pass (and one of its harness for the private ones), then the dealer's two */
    CU_ASSERT_EQUAL(sy.calls, (6 + 5) * o.n_sizes * o.reps + 2);
    CU_ASSERT_STRING_EQUAL(pinas_cost_hw_name(hw), "cpu");
    CU_ASSERT_EQUAL(pinas_cost_hw_kind(hw), PINAS_HW_CPU);
    pinas_cpu_params cp;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_params(ctx, hw, &cp), PINAS_OK);
    for (int k = 0; k < 6; k++) {
        CU_ASSERT_STRING_EQUAL(pinas_cpu_prim_name(k), prims[k]);
        double a = cp.a[k], b = cp.b[k];
        if (fabs(a - A[k]) > tol * A[k] || fabs(b - B[k]) > tol * B[k]) {
            fprintf(stderr, "\n  %s: fitted a=%g b=%g, true a=%g b=%g\n", prims[k], a, b, A[k], B[k]);
            CU_FAIL("coefficients not recovered");
        }
        CU_ASSERT(cp.r2[k] > (noise > 0 ? 0.99 : 0.999999));
        /* the report's fit is the profile's */
        CU_ASSERT_EQUAL(res->prims[k].a, a);
        CU_ASSERT_EQUAL(res->prims[k].b, b);
        CU_ASSERT_EQUAL(res->prims[k].n_points, o.n_sizes);
    }
    CU_ASSERT_DOUBLE_EQUAL(cp.aes_blocks_per_s, 2e8, 1);
    CU_ASSERT_DOUBLE_EQUAL(cp.ring_macs_per_s, 1e9, 1);
    CU_ASSERT_EQUAL(res->aes_blocks_per_s, cp.aes_blocks_per_s);
    CU_ASSERT_STRING_EQUAL(pinas_cost_link_name(res->net), "synthetic-loopback");
    CU_ASSERT_PTR_NOT_NULL(pinas_cost_hw_fitted(hw)); /* the calibration date */
    /* The profile round-trips through a file and loads by path; with a loopback path, the network
     * subtracted is written as a network profile beside it. */
    CU_ASSERT_EQUAL_FATAL(pinas_measure_calib_save(ctx, res, tu_path("cpu.json"), tu_path("loop.json")), PINAS_OK);
    pinas_cost_hw *back = NULL;
    CU_ASSERT_EQUAL(pinas_cost_hw_load(ctx, tu_path("cpu.json"), &back), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_hw_kind(back), PINAS_HW_CPU);
    pinas_cpu_params cb;
    CU_ASSERT_EQUAL(pinas_cost_hw_cpu_params(ctx, back, &cb), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(cb.b[0], cp.b[0], 1e-12 * cp.b[0]);
    pinas_cost_hw_free(back);
    pinas_cost_link *lb = NULL;
    CU_ASSERT_EQUAL(pinas_cost_link_load(ctx, tu_path("loop.json"), &lb), PINAS_OK);
    if (lb) CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_rtt(lb), 0.05e-3, 1e-15);
    pinas_cost_link_free(lb);
    /* The report (calibrate --json) lists every point of every sweep. */
    cJSON *rep = pinas_measure_calib_result_to_json(res);
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rep, "primitives"), "relu");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rp, "points")), o.n_sizes);
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(rep, "profile"));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(rep, "offline"));
    cJSON_Delete(rep);
    pinas_measure_calib_result_free(res);
    pinas_measure_calib_result_free(NULL);
    pinas_cost_link_free(link);
    pinas_ctx_set_log_level(ctx, PINAS_LOG_INFO);
}

static void test_calibrate_exact(void) { run_calibration(0, 1e-6); }
static void test_calibrate_noisy(void) { run_calibration(0.01, 0.08); }

static pinas_status failing_bench(pinas_ctx *c, const char *kind, int64_t n, int reps, const pinas_mpc_params *p, double *median_s,
                                  pinas_mpc_cost *counts, void *user)
{
    (void)n, (void)reps, (void)p, (void)median_s, (void)counts, (void)user;
    if (strcmp(kind, "poly") == 0) return pinas_error(c, PINAS_EPEER, "peer closed");
    *median_s = 1e-3 + n * 1e-9;
    memset(counts, 0, sizeof *counts);
    return PINAS_OK;
}

static void test_calibrate_error(void)
{
    pinas_measure_calib_opts o;
    pinas_measure_calib_opts_default(&o);
    o.bench = failing_bench;
    pinas_ctx_set_log_level(ctx, PINAS_LOG_QUIET);
    pinas_measure_calib_result *res = NULL;
    TU_ASSERT_ERR(ctx, pinas_measure_calibrate(ctx, &o, &res), "calibrate: bench poly n=1024: peer closed");
    CU_ASSERT_PTR_NULL(res);
    pinas_ctx_set_log_level(ctx, PINAS_LOG_INFO);
}

/* A machine busy on the first visit of every size (50% slower) and quiet on the second: the passes of
 * a stepwise calibration keep each size's fastest run, so one pass fits the busy machine and two the
 * quiet one. Also: the bench is asked for o->runs runs per visit. */
typedef struct {
    char seen[256][32];
    int n_seen, bad_runs;
} busy_first;

static pinas_status busy_bench(pinas_ctx *c, const char *kind, int64_t n, int reps, const pinas_mpc_params *p, double *best_s,
                               pinas_mpc_cost *counts, void *user)
{
    busy_first *bf = user;
    char key[32];
    snprintf(key, sizeof key, "%s:%lld", kind, (long long)n);
    int first = 1;
    for (int i = 0; i < bf->n_seen; i++) first &= strcmp(bf->seen[i], key) != 0;
    if (first && bf->n_seen < 256) snprintf(bf->seen[bf->n_seen++], sizeof bf->seen[0], "%s", key);
    int op = strcmp(kind, "prg") != 0 && strcmp(kind, "gemm") != 0 && strncmp(kind, "base:", 5) != 0;
    if (op && reps != 3) bf->bad_runs++;
    synth sy = {0, 7, 0};
    pinas_status s = synth_bench(c, kind, n, reps, p, best_s, counts, &sy);
    if (first && op) *best_s *= 1.5;
    return s;
}

static void test_calibrate_passes(void)
{
    busy_first bf = {.n_seen = 0};
    pinas_measure_calib_opts o;
    pinas_measure_calib_opts_default(&o);
    o.bench = busy_bench;
    o.bench_user = &bf;
    o.n_sizes = 5;
    o.runs = 3;
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_create(ctx, "synthetic-loopback", 2.5e9, 0.05e-3, &link), PINAS_OK);
    o.link = link;
    pinas_measure_calib *cal = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_measure_calib_begin(ctx, &o, &cal), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_measure_calib_steps(cal), (6 + 5) * 5);
    CU_ASSERT_PTR_EQUAL(pinas_measure_calib_link(cal), link);
    pinas_measure_calib_result *res = NULL;
    int64_t done = 0;
    TU_ASSERT_ERR(ctx, pinas_measure_calib_finish(ctx, cal, NULL, &done, &res), "no pass was run");
    for (int pass = 1; pass <= 2; pass++) {
        CU_ASSERT_EQUAL_FATAL(pinas_measure_calib_pass(ctx, cal, NULL, &done), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_measure_calib_finish(ctx, cal, NULL, &done, &res), PINAS_OK);
        double b = res->prims[PINAS_CPU_RELU].b;
        /* pass 1: the busy runs alone (compute 1.5x; the network's share too, so not exactly 1.5 B) */
        if (pass == 1) CU_ASSERT(b > 1.4 * B[0]);
        if (pass == 2) CU_ASSERT_DOUBLE_EQUAL(b, B[0], 1e-6 * B[0]);
        cJSON *j = pinas_cost_hw_to_json(res->profile);
        CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "calibration"), "reps")->valueint, pass);
        cJSON_Delete(j);
        pinas_measure_calib_result_free(res);
        res = NULL;
    }
    CU_ASSERT_EQUAL(bf.bad_runs, 0);
    CU_ASSERT_EQUAL(done, 2 * 11 * 5 + 2 * 2); /* every visit, and the dealer's two benchmarks per finish */
    pinas_measure_calib_free(cal);
    pinas_measure_calib_free(NULL);
    pinas_cost_link_free(link);
}

/* Kendall tau-b: perfect agreement, reversal, and a hand-worked case with a tie. */
static void test_kendall(void)
{
    double a[5] = {1, 2, 3, 4, 5}, b[5] = {10, 20, 30, 40, 50}, r[5] = {5, 4, 3, 2, 1};
    CU_ASSERT_DOUBLE_EQUAL(pinas_measure_kendall_tau(5, a, b), 1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pinas_measure_kendall_tau(5, a, r), -1, 1e-12);
    /* x = 1 2 3 4, y = 1 3 2 2: pairs (12)+ (13)+ (14)+ (23)- (24)- (34) tie in y:
     * C = 3, D = 2, ties only in y: 1 -> tau_b = 1 / sqrt(6 * 5) */
    double x[4] = {1, 2, 3, 4}, y[4] = {1, 3, 2, 2};
    CU_ASSERT_DOUBLE_EQUAL(pinas_measure_kendall_tau(4, x, y), 1 / sqrt(30.0), 1e-12);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test tests[] = {
        {"line fit, exact data", test_fit_exact},
        {"line fit, bad input", test_fit_errors},
        {"calibration recovers known coefficients", test_calibrate_exact},
        {"calibration with 1% noise", test_calibrate_noisy},
        {"a failing benchmark names the kind and size", test_calibrate_error},
        {"stepwise calibration keeps the fastest run of every size", test_calibrate_passes},
        {"Kendall tau-b", test_kendall},
    };
    int rc = tu_run("latency_model_measure_calib", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
