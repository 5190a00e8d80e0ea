/* Tests for the end-to-end latency simulation (latency_model/e2e.c) against closed forms and a
 * hand-computed trace, its parsers, and the LUT's total/e2e metrics (latency_model/lut.c). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_e2e.h"
#include "testutil_cost.h"

static pinas_ctx *ctx;

static pinas_e2e_params base(double on, double gen, double xfer, double storage, double rate)
{
    pinas_e2e_params p;
    pinas_e2e_params_default(&p);
    p.costs.online_s = on;
    p.costs.gen_s = gen;
    p.costs.xfer_s = xfer;
    p.costs.client_bytes = 1000;
    p.storage_bytes = storage;
    p.rate_per_s = rate;
    return p;
}

/* Unbounded storage, a low rate: every inference costs its online phase alone. */
static void test_infinite_storage(void)
{
    pinas_e2e_params p = base(0.05, 2.0, 0.5, INFINITY, 1.0 / 60);
    pinas_e2e_result r;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &r), PINAS_OK);
    CU_ASSERT_EQUAL(r.n, PINAS_E2E_DEFAULT_N);
    CU_ASSERT_EQUAL(r.n_measured, PINAS_E2E_DEFAULT_N - PINAS_E2E_DEFAULT_N / 10);
    CU_ASSERT_DOUBLE_EQUAL(r.waited_share, 0, 1e-12);
    /* rho = 0.05/60: the M/D/1 wait is rho/(2 mu (1-rho)) ~ 2e-5 s. */
    CU_ASSERT(fabs(r.mean_s - 0.05) < 0.05 * 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(r.p50_s, 0.05, 1e-9);
    /* Starting full with n sets, the store shrinks by one per arrival. */
    CU_ASSERT(r.storage_max_bytes > 0);
}

/* No storage (a budget below one set): every inference waits for its own set. */
static void test_zero_storage(void)
{
    pinas_e2e_params p = base(0.05, 2.0, 0.5, 999, 1.0 / 600);
    pinas_e2e_result r;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &r), PINAS_OK);
    CU_ASSERT_EQUAL(r.capacity, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.waited_share, 1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.p50_s, 2.55, 1e-9);
    /* Gaps below 2.5 s (prob ~ 0.4 %) queue behind the dealer: a little above the sum. */
    CU_ASSERT(r.mean_s >= 2.55 - 1e-9 && r.mean_s < 2.55 * 1.005);
    CU_ASSERT_DOUBLE_EQUAL(r.storage_mean_bytes, 0, 1e-12);
}

/* 3 arrivals at 0, 0, 10 s; T_gen 1, T_xfer 2, L_on 0.5; storage for one set, starting full.
 * t=0: #0 takes the stored set (done 0.5); the dealer starts set A (made 1, shipped 1..3). #1 waits.
 * t=1: set B starts (needed: 0 stored + 1 in flight < 1 + 1 waiting), made 2, shipped 3..5.
 * t=3: A serves #1 (online 3..3.5). t=5: B is stored. t=10: #2 takes it (10..10.5).
 * latencies 0.5, 3.5, 0.5: mean 1.5, p50 0.5, p99 3.5; 1 of 3 waited; stored 1 set over [5, 10]. */
static void test_trace_by_hand(void)
{
    const double tr[3] = {0, 0, 10};
    pinas_e2e_params p = base(0.5, 1, 2, 1500, 1);
    p.trace = tr;
    p.n_trace = 3;
    pinas_e2e_result r;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &r), PINAS_OK);
    CU_ASSERT_EQUAL(r.n, 3);
    CU_ASSERT_EQUAL(r.n_measured, 3);
    CU_ASSERT_EQUAL(r.capacity, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.mean_s, 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.p50_s, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.p99_s, 3.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.waited_share, 1.0 / 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.storage_mean_bytes, 500, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.storage_max_bytes, 1000, 1e-9);
    /* Starting empty: #0 waits for A (3), #1 for B (5), #2 for C (made 2..3, shipped 5..7, stored). */
    p.start_full = 0;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &r), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(r.mean_s, (3.5 + 5.5 + 0.5) / 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.waited_share, 2.0 / 3, 1e-12);
}

static void test_reproducible(void)
{
    pinas_e2e_params p = base(0.2, 0.5, 0.3, 3000, 2);
    pinas_e2e_result a, b, c;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &a), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &b), PINAS_OK);
    CU_ASSERT(memcmp(&a, &b, sizeof a) == 0);
    p.seed = 2;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &c), PINAS_OK);
    CU_ASSERT(a.mean_s != c.mean_s);
    /* Here the dealer (0.5 s a set) cannot keep up with 2 arrivals a second: most inferences wait. */
    CU_ASSERT(a.waited_share > 0.5);
}

/* Unbounded storage, Poisson arrivals: the server is M/D/1. */
static void test_md1(void)
{
    const double rhos[3] = {0.3, 0.5, 0.8};
    for (int k = 0; k < 3; k++) {
        pinas_e2e_params p = base(0.1, 1, 1, INFINITY, rhos[k] / 0.1);
        p.n = 200000;
        pinas_e2e_result r;
        CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &p, &r), PINAS_OK);
        double want = pinas_e2e_md1_mean(0.1, rhos[k] / 0.1);
        CU_ASSERT(fabs(r.mean_s - want) / want < 0.03);
        CU_ASSERT(fabs(r.server_util - rhos[k]) < 0.02);
    }
    CU_ASSERT_DOUBLE_EQUAL(pinas_e2e_md1_mean(1, 0.5), 1.5, 1e-12);
    CU_ASSERT(isinf(pinas_e2e_md1_mean(1, 1)));
}

static void test_errors_and_parsers(void)
{
    pinas_e2e_params p = base(0.1, 1, 1, 100, 0);
    pinas_e2e_result r;
    TU_ASSERT_ERR(ctx, pinas_e2e_simulate(ctx, &p, &r), "rate_per_s");
    p = base(-1, 1, 1, 100, 1);
    TU_ASSERT_ERR(ctx, pinas_e2e_simulate(ctx, &p, &r), "costs.online_s");
    const double bad[2] = {5, 1};
    p = base(0.1, 1, 1, 100, 1);
    p.trace = bad;
    p.n_trace = 2;
    TU_ASSERT_ERR(ctx, pinas_e2e_simulate(ctx, &p, &r), "trace[1]");
    double v;
    CU_ASSERT_EQUAL(pinas_e2e_parse_bytes(ctx, "s", "2GB", &v), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 2e9, 1e-3);
    CU_ASSERT_EQUAL(pinas_e2e_parse_bytes(ctx, "s", "512 MiB", &v), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 512.0 * 1048576, 1e-3);
    CU_ASSERT_EQUAL(pinas_e2e_parse_bytes(ctx, "s", "100", &v), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 100, 1e-12);
    CU_ASSERT_EQUAL(pinas_e2e_parse_bytes(ctx, "s", "1.5kb", &v), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 1500, 1e-9);
    CU_ASSERT_EQUAL(pinas_e2e_parse_bytes(ctx, "s", "inf", &v), PINAS_OK);
    CU_ASSERT(isinf(v));
    TU_ASSERT_ERR(ctx, pinas_e2e_parse_bytes(ctx, "--client-storage", "2 parsecs", &v), "--client-storage");
    TU_ASSERT_ERR(ctx, pinas_e2e_parse_bytes(ctx, "--client-storage", "-1GB", &v), "-1GB");
    CU_ASSERT_EQUAL(pinas_e2e_parse_rate(ctx, "r", "6/min", &v), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 0.1, 1e-12);
    CU_ASSERT_EQUAL(pinas_e2e_parse_rate(ctx, "r", "0.5/s", &v), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 0.5, 1e-12);
    CU_ASSERT_EQUAL(pinas_e2e_parse_rate(ctx, "r", "360/h", &v), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 0.1, 1e-12);
    TU_ASSERT_ERR(ctx, pinas_e2e_parse_rate(ctx, "--rate", "6", &v), "--rate");
    TU_ASSERT_ERR(ctx, pinas_e2e_parse_rate(ctx, "--rate", "0/min", &v), "0/min");
    TU_ASSERT_ERR(ctx, pinas_e2e_parse_rate(ctx, "--rate", "6/fortnight", &v), "6/fortnight");
}

static void test_trace_file(void)
{
    const char *good = tu_path("trace.txt"), *bad = tu_path("bad.txt"), *back = tu_path("back.txt");
    tu_write(good, "# arrivals\n0\n0.5\n\n2.25\n");
    tu_write(bad, "0\n1\nsoon\n");
    tu_write(back, "0\n3\n2\n");
    double *t = NULL;
    long n = 0;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_trace_load(ctx, good, &t, &n), PINAS_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_DOUBLE_EQUAL(t[2], 2.25, 1e-12);
    free(t);
    TU_ASSERT_ERR(ctx, pinas_e2e_trace_load(ctx, bad, &t, &n), "bad.txt:3");
    TU_ASSERT_ERR(ctx, pinas_e2e_trace_load(ctx, back, &t, &n), "back.txt:3");
    TU_ASSERT_ERR(ctx, pinas_e2e_trace_load(ctx, tu_path("missing.txt"), &t, &n), "missing.txt");
}

/* The costs of a prediction: T_xfer from the bytes, T_gen = offline less its transfers. */
static void test_costs_from_prediction(void)
{
    pinas_net *sp = tu_r20_all_cands(ctx), *arch = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 3, &arch), PINAS_OK);
    pinas_cost_hw *hw = tu_cpu_profile(ctx);
    pinas_cost_link *lan = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "lan", &lan), PINAS_OK);
    pinas_mpc_params mp;
    pinas_mpc_params_default(&mp);
    pinas_cost_prediction *pr = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, arch, hw, lan, &mp, &pr), PINAS_OK);
    pinas_e2e_costs c;
    pinas_e2e_costs_from_prediction(pr, lan, &c);
    CU_ASSERT_DOUBLE_EQUAL(c.online_s, pr->total.online_s, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.client_bytes, (double)pr->total.counts.offline.bytes[1], 0);
    double mx = fmax((double)pr->total.counts.offline.bytes[0], (double)pr->total.counts.offline.bytes[1]);
    CU_ASSERT_DOUBLE_EQUAL(c.xfer_s, mx / 125e6 + 0.5e-3, 1e-12);
    CU_ASSERT(c.gen_s > 0);
    /* The dealer's compute and the transfers together are (up to the per-row maxima and the setup)
     * the cost model's offline figure. */
    CU_ASSERT(c.gen_s + c.xfer_s - 0.5e-3 <= pr->total.offline_s * (1 + 1e-9));
    pinas_cost_prediction_free(pr);
    pinas_cost_link_free(lan);
    pinas_cost_hw_free(hw);
    pinas_net_free(arch);
    pinas_net_free(sp);
}

/* A LUT priced under "total" is online + offline per candidate; JSON keeps the prices and the metric;
 * a LUT of another metric is refused. */
static void test_lut_total(void)
{
    pinas_net *sp = tu_r20_all_cands(ctx);
    pinas_cost_hw *hw = tu_cpu_profile(ctx);
    pinas_cost_link *lan = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "lan", &lan), PINAS_OK);
    pinas_mpc_params mp;
    pinas_mpc_params_default(&mp);
    pinas_cost_lut *on = NULL, *tot = NULL, *back = NULL;
    pinas_cost_metric m = {.metric = PINAS_METRIC_TOTAL};
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, sp, hw, lan, &mp, &on), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build_metric(ctx, sp, hw, lan, &mp, &m, &tot), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_lut_metric(on), PINAS_METRIC_ONLINE);
    CU_ASSERT_EQUAL(pinas_cost_lut_metric(tot), PINAS_METRIC_TOTAL);
    pinas_net *arch = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 7, &arch), PINAS_OK);
    pinas_cost_prediction *pr = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, arch, hw, lan, &mp, &pr), PINAS_OK);
    double a = 0, b = 0;
    CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, on, arch, &a), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, tot, arch, &b), PINAS_OK);
    CU_ASSERT(fabs(a - pr->total.online_s * 1e3) < 1e-6 * a);
    CU_ASSERT(fabs(b - (pr->total.online_s + pr->total.offline_s) * 1e3) < 1e-6 * b);
    const pinas_cost_lut_arrays *arr = pinas_cost_lut_get_arrays(tot);
    CU_ASSERT_DOUBLE_EQUAL(arr->cand_ms[0][0], pinas_cost_lut_cand_ms(tot, 0, 0), 1e-3);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_save(ctx, tot, tu_path("total.json")), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_load(ctx, tu_path("total.json"), &back), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_lut_metric(back), PINAS_METRIC_TOTAL);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_fixed_ms(back), pinas_cost_lut_fixed_ms(tot), 1e-9);
    CU_ASSERT_EQUAL(pinas_cost_lut_check_metric(ctx, back, &m), PINAS_OK);
    pinas_cost_metric online = {.metric = PINAS_METRIC_ONLINE};
    TU_ASSERT_ERR(ctx, pinas_cost_lut_check_metric(ctx, back, &online), "prices latency \"total\"");
    TU_ASSERT_ERR(ctx, pinas_cost_lut_check_metric(ctx, on, &m), "latency.metric is \"total\"");
    pinas_cost_lut_free(back);
    pinas_cost_prediction_free(pr);
    pinas_net_free(arch);
    pinas_cost_lut_free(on);
    pinas_cost_lut_free(tot);
    pinas_cost_link_free(lan);
    pinas_cost_hw_free(hw);
    pinas_net_free(sp);
}

/* The simulated e2e mean of a decided net under m. */
static double sim_arch(const pinas_net *arch, const pinas_cost_hw *hw, const pinas_cost_link *link, const pinas_mpc_params *mp,
                       const pinas_cost_metric *m, pinas_e2e_costs *c)
{
    pinas_cost_prediction *pr = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, arch, hw, link, mp, &pr), PINAS_OK);
    pinas_e2e_params ep;
    pinas_e2e_params_default(&ep);
    pinas_e2e_costs_from_prediction(pr, link, &ep.costs);
    *c = ep.costs;
    ep.storage_bytes = m->client_storage_bytes;
    ep.rate_per_s = m->rate_per_s;
    ep.seed = m->seed;
    pinas_e2e_result r;
    CU_ASSERT_EQUAL_FATAL(pinas_e2e_simulate(ctx, &ep, &r), PINAS_OK);
    pinas_cost_prediction_free(pr);
    return r.mean_s * 1e3;
}

/* The e2e LUT against the simulation of every architecture: exact at the reference by construction;
 * on random architectures of the space its error is measured (and bounded here) for a budget that
 * holds a few sets and a rate that loads the dealer. */
static void test_lut_e2e_error(void)
{
    pinas_net *sp = tu_r20_all_cands(ctx);
    pinas_cost_hw *hw = tu_cpu_profile(ctx);
    pinas_cost_link *wan = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "wan", &wan), PINAS_OK);
    pinas_mpc_params mp;
    pinas_mpc_params_default(&mp);
    /* Scale the scenario to the space: the all-first-candidate net's costs. */
    pinas_net *a0 = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 1, &a0), PINAS_OK);
    pinas_e2e_costs c0;
    pinas_cost_metric m = {.metric = PINAS_METRIC_E2E, .client_storage_bytes = INFINITY, .rate_per_s = 1, .seed = 1};
    sim_arch(a0, hw, wan, &mp, &m, &c0);
    const double budgets[2] = {3, 0.5}, loads[2] = {0.6, 0.3};
    for (int sc = 0; sc < 2; sc++) {
        m.client_storage_bytes = budgets[sc] * c0.client_bytes;
        m.rate_per_s = loads[sc] / fmax(c0.online_s, fmax(c0.gen_s, c0.xfer_s)); /* the bottleneck's load */
        pinas_cost_lut *lut = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build_metric(ctx, sp, hw, wan, &mp, &m, &lut), PINAS_OK);
        double worst = 0, sum = 0;
        const int n = 12;
        for (int k = 0; k < n; k++) {
            pinas_net *arch = NULL;
            CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 100 + k, &arch), PINAS_OK);
            pinas_e2e_costs c;
            double want = sim_arch(arch, hw, wan, &mp, &m, &c), got = 0;
            CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, lut, arch, &got), PINAS_OK);
            double err = fabs(got - want) / want;
            sum += err;
            if (err > worst) worst = err;
            if (getenv("PINAS_TEST_VERBOSE"))
                fprintf(stderr, "\n  scenario %d arch %d: lut %.3f ms, simulated %.3f ms (online %.3f), error %.1f%%", sc, k, got, want, c.online_s * 1e3,
                        100 * err);
            pinas_net_free(arch);
        }
        if (getenv("PINAS_TEST_VERBOSE")) fprintf(stderr, "\n  scenario %d: mean error %.1f%%, worst %.1f%%\n", sc, 100 * sum / n, 100 * worst);
        CU_ASSERT(sum / n < 0.10);
        CU_ASSERT(worst < 0.20);
        CU_ASSERT_EQUAL(pinas_cost_lut_save(ctx, lut, tu_path("e2e.json")), PINAS_OK);
        pinas_cost_lut *back = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_load(ctx, tu_path("e2e.json"), &back), PINAS_OK);
        CU_ASSERT_EQUAL(pinas_cost_lut_check_metric(ctx, back, &m), PINAS_OK);
        pinas_cost_metric other = m;
        other.rate_per_s *= 2;
        TU_ASSERT_ERR(ctx, pinas_cost_lut_check_metric(ctx, back, &other), "delete the LUT");
        CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(back, 2, 1), pinas_cost_lut_cand_ms(lut, 2, 1), 1e-9);
        pinas_cost_lut_free(back);
        pinas_cost_lut_free(lut);
    }
    pinas_net_free(a0);
    pinas_cost_link_free(wan);
    pinas_cost_hw_free(hw);
    pinas_net_free(sp);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    tu_test tests[] = {
        {"infinite storage, low rate: online latency", test_infinite_storage},
        {"zero storage, low rate: online + offline + transfer", test_zero_storage},
        {"a trace computed by hand", test_trace_by_hand},
        {"seeded reproducibility", test_reproducible},
        {"Poisson, infinite storage: the M/D/1 closed form", test_md1},
        {"errors, sizes and rates", test_errors_and_parsers},
        {"trace files", test_trace_file},
        {"costs from a prediction", test_costs_from_prediction},
        {"LUT priced under total", test_lut_total},
        {"LUT priced under e2e: error against the simulation", test_lut_e2e_error},
    };
    int rc = tu_run("latency_model_e2e", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
