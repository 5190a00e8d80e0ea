/* Tests for the measurement layer's calibration (latency_model/measure/calibrate.c, stats.c,
 * isolate.c): the GSL line and multi-feature fits, Kendall's tau (plain and over resolved pairs),
 * measurements in a child process, a small real calibration, its report and its file. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "measure_internal.h"
#include "pinas_measure.h"
#include "testutil.h"

#include <signal.h>
#include <unistd.h>

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

/* The multi-feature fit recovers known coefficients; a feature that is zero everywhere and one that
 * is a constant multiple of another get weight 0. */
static void test_fit_linear_exact(void)
{
    enum { N = 30, K = 5 };
    double X[N * K], y[N], c[K];
    const double truth[K] = {3e-6, 2e-9, 0, 5e-10, 0};
    uint64_t st = 7;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        double macs = (double)(1000 + (st >> 40) % 1000000), elems = (double)(100 + (st >> 20) % 50000);
        double row[K] = {1, macs, 0, elems, 2 * elems}; /* feature 4 = 2 x feature 3 */
        memcpy(&X[i * K], row, sizeof row);
        y[i] = truth[0] + truth[1] * macs + truth[3] * elems;
    }
    double mape = -1;
    CU_ASSERT_EQUAL_FATAL(pinas_measure_fit_linear(ctx, N, K, X, y, c, &mape), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(c[0], truth[0], 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(c[1], truth[1], 1e-16);
    CU_ASSERT_EQUAL(c[2], 0);
    CU_ASSERT_DOUBLE_EQUAL(c[3], truth[3], 1e-16);
    CU_ASSERT_EQUAL(c[4], 0);
    CU_ASSERT(mape >= 0 && mape < 1e-6);
}

/* A feature the data would weigh negatively is dropped: every weight >= 0, the rest refitted. */
static void test_fit_linear_drops_negative(void)
{
    enum { N = 12, K = 3 };
    double X[N * K], y[N], c[K];
    for (int i = 0; i < N; i++) {
        double n = 1000.0 * (i + 1);
        X[i * K + 0] = 1;
        X[i * K + 1] = n;
        X[i * K + 2] = n * n; /* time falls off with n^2: a negative weight if fitted freely */
        y[i] = 1e-4 + 1e-8 * n - 1e-14 * n * n;
    }
    CU_ASSERT_EQUAL_FATAL(pinas_measure_fit_linear(ctx, N, K, X, y, c, NULL), PINAS_OK);
    CU_ASSERT_EQUAL(c[2], 0);
    CU_ASSERT(c[0] >= 0 && c[1] > 0);
    y[3] = 0;
    TU_ASSERT_ERR(ctx, pinas_measure_fit_linear(ctx, N, K, X, y, c, NULL), "point 3: time 0 is not positive");
}

/* A real calibration, scaled down: every class of the sweep fitted for both parties, the profile
 * round-trips through its file, names this machine's CPU, and prices a node positively. */
static void test_calibrate_small(void)
{
    pinas_measure_calib_opts o;
    pinas_measure_calib_opts_default(&o);
    o.scale = 0.125;
    o.runs = 1;
    o.max_batch = 2;
    pinas_measure_calib_result *r = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_measure_calibrate(ctx, &o, &r), PINAS_OK);
    CU_ASSERT_EQUAL(r->nets, 13);
    CU_ASSERT(r->host.checks >= 2 && r->host.waited_s == 0); /* a gate before each sweep pass */
    CU_ASSERT(r->n_rows > 13 * 2 * 10);
    pinas_cpu_params cp;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_params(ctx, r->profile, &cp), PINAS_OK);
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++)
        for (int q = 0; q < 2; q++) {
            if (k == PINAS_CPU_INPUT) continue; /* the input node shares the client's input: no compute row when 0 */
            CU_ASSERT(cp.fit_rows[k][q] > 0);
            double sum = 0;
            for (int f = 0; f < PINAS_CPU_N_FEAT; f++) {
                CU_ASSERT(cp.coef[k][q][f] >= 0);
                sum += cp.coef[k][q][f];
            }
            CU_ASSERT(sum > 0);
        }
    for (int i = 0; i < r->n_rows; i++) CU_ASSERT(r->rows[i].measured_s > 0 && r->rows[i].fitted_s >= 0);
    char model[128];
    pinas_machine_cpu_model(model, sizeof model);
    CU_ASSERT_STRING_EQUAL(pinas_cost_hw_cpu_model(r->profile), model);
    CU_ASSERT_PTR_NOT_NULL(pinas_cost_hw_fitted(r->profile));
    const char *path = tu_path("cpu.json");
    CU_ASSERT_EQUAL_FATAL(pinas_measure_calib_save(ctx, r, path, NULL), PINAS_OK);
    pinas_cost_hw *back = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, path, &back), PINAS_OK);
    pinas_cpu_params cb;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_params(ctx, back, &cb), PINAS_OK);
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++)
        for (int f = 0; f < PINAS_CPU_N_FEAT; f++) CU_ASSERT_DOUBLE_EQUAL(cb.coef[k][0][f], cp.coef[k][0][f], 1e-12 * fabs(cp.coef[k][0][f]));
    CU_ASSERT(cp.host_memory_ns > 0); /* the median of the gate's checks, kept through the file */
    CU_ASSERT_DOUBLE_EQUAL(cb.host_memory_ns, cp.host_memory_ns, 1e-9 * cp.host_memory_ns);
    CU_ASSERT_DOUBLE_EQUAL(pinas_measure_host_ref_of(ctx, path), cp.host_memory_ns, 1e-9 * cp.host_memory_ns); /* this CPU */
    CU_ASSERT_EQUAL(pinas_measure_host_ref_of(ctx, tu_path("none.json")), 0);
    cJSON *j = pinas_measure_calib_result_to_json(r);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(j, "rows")), r->n_rows);
    cJSON_Delete(j);
    pinas_cost_hw_free(back);
    pinas_measure_calib_result_free(r);
    o.runs = 0;
    TU_ASSERT_ERR(ctx, pinas_measure_calibrate(ctx, &o, &r), "runs must be in [1, 100]");
}

/* A profile of the older whole-phase form is refused with a message that says what to do. */
static void test_old_profile_refused(void)
{
    const char *old = "{\"format\": \"pinas-profile/1\", \"kind\": \"cpu\", \"name\": \"cpu\", \"primitives\": "
                      "{\"relu\": {\"a\": 1e-5, \"b\": 2e-7}}, \"offline\": {\"aes_blocks_per_s\": 1e8, \"ring_macs_per_s\": 1e9}}";
    cJSON *j = cJSON_Parse(old);
    pinas_cost_hw *hw = NULL;
    TU_ASSERT_ERR(ctx, pinas_cost_hw_from_json(ctx, j, "old.json", &hw), "run `pinas calibrate`");
    cJSON_Delete(j);
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

/* Tau over resolved pairs: overlapping spans leave a pair out, a reversed resolved pair counts
 * against, and nothing resolved gives NaN. */
static void test_kendall_resolved(void)
{
    /* spans: 0 [1, 2], 1 [1.5, 3] (overlaps 0), 2 [4, 5], 3 [6, 7]; pred orders 2 above 3 */
    double pred[4] = {1, 2, 4, 3}, lo[4] = {1, 1.5, 4, 6}, hi[4] = {2, 3, 5, 7}, meas[4] = {0.9, 1.4, 3.9, 5.9};
    int r = -1;
    /* resolved: (0,2)+ (0,3)+ (1,2)+ (1,3)+ (2,3)-  -> (4 - 1) / 5 */
    CU_ASSERT_DOUBLE_EQUAL(pinas_measure_kendall_tau_resolved(4, pred, meas, lo, hi, &r), 0.6, 1e-12);
    CU_ASSERT_EQUAL(r, 5);
    /* spans apart but point figures the other way round: the measurement contradicts itself, left out */
    double meas2[4] = {0.9, 1.4, 6.5, 5.9};
    CU_ASSERT_DOUBLE_EQUAL(pinas_measure_kendall_tau_resolved(4, pred, meas2, lo, hi, &r), 1.0, 1e-12);
    CU_ASSERT_EQUAL(r, 4);
    double same[2] = {1, 1}, l2[2] = {1, 1.2}, h2[2] = {1.3, 1.4};
    CU_ASSERT(isnan(pinas_measure_kendall_tau_resolved(2, same, l2, l2, h2, &r)));
    CU_ASSERT_EQUAL(r, 0);
    /* a single measurement (lo == hi == meas) resolves every pair of distinct figures: plain Kendall tau */
    double m[5] = {10, 30, 20, 40, 50}, p[5] = {1, 2, 3, 4, 5};
    CU_ASSERT_DOUBLE_EQUAL(pinas_measure_kendall_tau_resolved(5, p, m, m, m, NULL), pinas_measure_kendall_tau(5, p, m), 1e-12);
}

/* measure_in_child: the child's messages arrive in order; its error comes back with its message; a
 * child that dies is named; the parent's own error stops the reading. */
static pinas_status child_three(pinas_ctx *c, int fd, void *user)
{
    (void)user;
    for (int64_t i = 1; i <= 3; i++) {
        int64_t sq = i * i;
        if (measure_child_send(fd, &i, sizeof i, &sq, sizeof sq)) return pinas_error(c, PINAS_EIO, "send");
    }
    return PINAS_OK;
}
static pinas_status child_fails(pinas_ctx *c, int fd, void *user)
{
    (void)fd, (void)user;
    return pinas_error(c, PINAS_EINVAL, "the child's own complaint");
}
static pinas_status child_dies(pinas_ctx *c, int fd, void *user)
{
    (void)c, (void)fd, (void)user;
    raise(SIGKILL);
    return PINAS_OK;
}
static pinas_status take_sum(pinas_ctx *c, const void *buf, size_t len, void *user)
{
    int64_t v[2], *acc = user;
    if (len != sizeof v) return pinas_error(c, PINAS_EIO, "a message of %zu bytes", len);
    memcpy(v, buf, sizeof v);
    acc[0] = acc[0] * 10 + v[0]; /* the order: 1, 2, 3 -> 123 */
    acc[1] += v[1];
    return acc[1] > 100 ? pinas_error(c, PINAS_EINVAL, "too much") : PINAS_OK;
}
static void test_in_child(void)
{
    int64_t acc[2] = {0, 0};
    CU_ASSERT_EQUAL(measure_in_child(ctx, child_three, take_sum, acc), PINAS_OK);
    CU_ASSERT_EQUAL(acc[0], 123);
    CU_ASSERT_EQUAL(acc[1], 14);
    TU_ASSERT_ERR(ctx, measure_in_child(ctx, child_fails, take_sum, acc), "the child's own complaint");
    TU_ASSERT_ERR(ctx, measure_in_child(ctx, child_dies, take_sum, acc), "signal 9");
    acc[0] = 0, acc[1] = 97; /* 97 + 1 + 4 > 100 at the second message */
    TU_ASSERT_ERR(ctx, measure_in_child(ctx, child_three, take_sum, acc), "too much");
    CU_ASSERT_EQUAL(acc[0], 12);
}

/* The host-memory check measures; the verdict follows its two rules. */
static void test_host_check(void)
{
    pinas_measure_hostmem m;
    CU_ASSERT_EQUAL_FATAL(pinas_measure_host_memory(ctx, &m), PINAS_OK);
    CU_ASSERT(m.fast_ns > 0 && m.fast_ns <= m.ns && m.ns < 1e4 && m.seconds > 0);
    pinas_measure_hostmem even = {.ns = 3.0, .fast_ns = 2.9}, spread = {.ns = 3.6, .fast_ns = 3.0}, slow = {.ns = 3.9, .fast_ns = 3.8};
    CU_ASSERT_EQUAL(pinas_measure_host_disturbed(&even, 0, 15), 0);
    CU_ASSERT_EQUAL(pinas_measure_host_disturbed(&even, 3.0, 15), 0);
    CU_ASSERT_EQUAL(pinas_measure_host_disturbed(&spread, 0, 15), 1);   /* most chunks 20 % above the fastest */
    CU_ASSERT_EQUAL(pinas_measure_host_disturbed(&spread, 0, 25), 0);
    CU_ASSERT_EQUAL(pinas_measure_host_disturbed(&slow, 0, 15), 0);     /* even, and no reference: not seen */
    CU_ASSERT_EQUAL(pinas_measure_host_disturbed(&slow, 3.2, 15), 1);   /* 22 % above the profile's */
    int r = pinas_measure_free_page_reporting();
    CU_ASSERT(r == 0 || r == 1);
}

/* The gate: off at tolerance 0; a check that cannot pass (a reference far below any machine) is
 * checked twice per gate, waited on within the budget and then reported disturbed. */
static void test_host_gate(void)
{
    pinas_measure_host_opts o;
    pinas_measure_host_opts_default(&o);
    CU_ASSERT(o.tol_pct == 15 && o.max_wait_s == 0 && o.step_s == 10 && o.ref_ns == 0);
    pinas_measure_host_log lg;
    memset(&lg, 0, sizeof lg);
    int bad = -1;
    o.tol_pct = 0;
    CU_ASSERT_EQUAL(pinas_measure_host_gate(ctx, &o, 1, &lg, &bad), PINAS_OK);
    CU_ASSERT(bad == 0 && lg.checks == 0);
    o.tol_pct = 15, o.ref_ns = 1e-3, o.step_s = 0.05, o.max_wait_s = 0.1;
    CU_ASSERT_EQUAL(pinas_measure_host_gate(ctx, &o, 1, &lg, &bad), PINAS_OK);
    CU_ASSERT_EQUAL(bad, 1);
    CU_ASSERT_EQUAL(lg.checks, 6); /* two per round: at once, after 0.05 s, after 0.1 s */
    CU_ASSERT_EQUAL(lg.disturbed_checks, 6);
    CU_ASSERT_EQUAL(lg.waits, 1);
    CU_ASSERT_DOUBLE_EQUAL(lg.waited_s, 0.1, 1e-9);
    CU_ASSERT_EQUAL(pinas_measure_host_gate(ctx, &o, 0, &lg, &bad), PINAS_OK); /* no waiting: one round */
    CU_ASSERT(bad == 1 && lg.checks == 8 && lg.waited_s < 0.1 + 1e-9);
    CU_ASSERT(lg.min_ns > 0 && lg.min_ns <= pinas_measure_host_log_median(&lg) && pinas_measure_host_log_median(&lg) <= lg.max_ns);
    o.ref_ns = 0, o.tol_pct = 100; /* a check that passes: one, no waiting */
    memset(&lg, 0, sizeof lg);
    CU_ASSERT_EQUAL(pinas_measure_host_gate(ctx, &o, 1, &lg, &bad), PINAS_OK);
    CU_ASSERT(bad == 0 && lg.checks == 1 && lg.waited_s == 0);
    pinas_measure_calib_opts co;
    pinas_measure_calib_opts_default(&co);
    pinas_measure_calib_result *r = NULL;
    co.host.tol_pct = -1;
    TU_ASSERT_ERR(ctx, pinas_measure_calibrate(ctx, &co, &r), "host-memory tolerance must be in [0, 100]");
    co.host.tol_pct = 15, co.host.max_wait_s = 4000;
    TU_ASSERT_ERR(ctx, pinas_measure_calibrate(ctx, &co, &r), "longest wait for the host must be in [0, 3600]");
    co.host.max_wait_s = 0, co.host.step_s = 0;
    TU_ASSERT_ERR(ctx, pinas_measure_calibrate(ctx, &co, &r), "interval must be in (0, 600]");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test tests[] = {
        {"line fit, exact data", test_fit_exact},
        {"line fit, bad input", test_fit_errors},
        {"multi-feature fit recovers known coefficients", test_fit_linear_exact},
        {"multi-feature fit drops negative weights", test_fit_linear_drops_negative},
        {"a small real calibration", test_calibrate_small},
        {"a whole-phase profile is refused", test_old_profile_refused},
        {"Kendall tau-b", test_kendall},
        {"Kendall tau over the resolved pairs", test_kendall_resolved},
        {"measurements in a child process", test_in_child},
        {"the host-memory check", test_host_check},
        {"the host-memory gate", test_host_gate},
    };
    int rc = tu_run("latency_model_measure_calib", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
