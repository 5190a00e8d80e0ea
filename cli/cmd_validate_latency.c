/* `pinas validate-latency`: predicted vs measured online latency of random architectures of a space. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_config.h"
#include "pinas_cost.h"
#include "pinas_measure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas validate-latency SPACE.json [--archs K] [--hw PROFILE] [--net PROFILE] [--reps R]\n"
           "                                [--runs N] [--calibrate | --no-calibrate] [--calib-scale X]\n"
           "                                [--save-profile FILE]\n"
           "                                [--seed S] [--batch N] [--frac-bits F] [--cmp-bits C]\n"
           "                                [--median] [--max-mape PCT] [--min-tau T] [--json]\n\n"
           "Samples K random architectures of the space (every open slot decided uniformly), predicts each\n"
           "one's online latency, runs each privately in the runtime (dealer + both parties over loopback,\n"
           "random weights and input) and reports, per architecture, predicted and measured online ms and\n"
           "the error, then the mean absolute percentage error (MAPE), the max error and Kendall's tau\n"
           "between predicted and measured, and the summed per-layer times by op.\n\n"
           "Measuring: one warm-up pass, then R passes round-robin over the architectures; in each pass an\n"
           "architecture gets one fresh preprocessing and N timed online runs on it (the same work as N\n"
           "runs on fresh material; reusing material is for timing only). The fastest of the R x N runs is\n"
           "kept: other processes on a shared machine only ever add time.\n\n"
           "The cpu profile describes the machine it was fitted on, at the time it was fitted: a different\n"
           "machine, or this one under different load from its neighbours, runs at another speed (on the\n"
           "2-core VM pinas is developed on, the ReLU cost moved by 16%% within 40 minutes). So with\n"
           "--hw cpu (the default) the command also fits a fresh cpu profile while it measures - the\n"
           "calibration's micro-benchmarks (one-operator nets, never the architectures validated), one pass\n"
           "of them before each measured pass - and judges that profile's predictions; the stored profile is\n"
           "judged on the same runs and reported beside it. --no-calibrate judges the stored profile alone.\n"
           "With the calibration the defaults take about 4 minutes on 2 cores. The output ends with how busy\n"
           "the machine was (an architecture's median run over its fastest) and warns above 40%%.\n\n"
           "Per-layer times are the client's view: the server's share of a layer (e.g. a conv's product)\n"
           "shows up in the next layer the client waits in, so conv layers look cheap and the layers after\n"
           "them dear; the totals are what predictions are judged on.\n\n"
           "options:\n"
           "  --archs K         architectures (default 20)\n"
           "  --hw PROFILE      hardware profile (default cpu: what the runtime runs on)\n"
           "  --net PROFILE     network profile (default loopback: how the runtime is run here)\n"
           "  --reps R          measured passes after the warm-up (default 10)\n"
           "  --runs N          timed online runs per preprocessing in each pass (default 4)\n"
           "  --calibrate       fit a cpu profile during the run and judge it (default with --hw cpu)\n"
           "  --no-calibrate    judge --hw alone (default for any other profile)\n"
           "  --calib-scale X   multiplies the calibration's size sweep (as calibrate --scale; default 1)\n"
           "  --save-profile FILE  write the profile fitted during the run (with --calibrate)\n"
           "  --median          keep the median run instead of the fastest\n"
           "  --seed S          architectures, weights and inputs (default 1)\n"
           "  --batch N         samples per inference (default 1)\n"
           "  --frac-bits F     fixed-point fractional bits (default: the runtime's)\n"
           "  --cmp-bits C      comparison bits (default 64)\n"
           "  --max-mape PCT    exit 1 when the MAPE is above PCT\n"
           "  --min-tau T       exit 1 when Kendall's tau is below T\n"
           "  --json            print {archs: [...], mape_pct, max_error_pct, kendall_tau, spread_pct (median\n"
           "                    run over fastest, in %%, the median over architectures), calibrated,\n"
           "                    stored: {hw, fitted, mape_pct, ...}, profile, calibration, by_op, ...}\n");
}

/* The command line: options into o and the local settings; 0, or the exit status of a usage error. */
typedef struct {
    const char *path, *hw_name, *net_name, *save_profile;
    long archs, reps, runs, seed, batch;
    double max_mape, min_tau;
    int json;
    pinas_measure_calib_opts co;
} vl_args;

static int parse_args(int argc, char **argv, pinas_measure_validate_opts *o, vl_args *v)
{
    const char *cmd = "validate-latency";
    long fb = -1, cb = -1;
    double calib_scale = 1;
    int calibrate = -1; /* -1: with --hw cpu */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc, bad = 0;
        if (strcmp(a, "--json") == 0) v->json = 1;
        else if (strcmp(a, "--median") == 0) o->median = 1;
        else if (strcmp(a, "--calibrate") == 0) calibrate = 1;
        else if (strcmp(a, "--no-calibrate") == 0) calibrate = 0;
        else if (strcmp(a, "--save-profile") == 0 && has) v->save_profile = argv[++i];
        else if (strcmp(a, "--hw") == 0 && has) v->hw_name = argv[++i];
        else if (strcmp(a, "--net") == 0 && has) v->net_name = argv[++i];
        else if (strcmp(a, "--archs") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 2, 100000, &v->archs);
        else if (strcmp(a, "--reps") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 1, 1000, &v->reps);
        else if (strcmp(a, "--calib-scale") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], 1e-4, 100, &calib_scale);
        else if (strcmp(a, "--runs") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 1, 100, &v->runs);
        else if (strcmp(a, "--seed") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 0, 1L << 40, &v->seed);
        else if (strcmp(a, "--batch") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 1, 4096, &v->batch);
        else if (strcmp(a, "--frac-bits") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &fb);
        else if (strcmp(a, "--cmp-bits") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &cb);
        else if (strcmp(a, "--max-mape") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], 0, 1e6, &v->max_mape);
        else if (strcmp(a, "--min-tau") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], -1, 1, &v->min_tau);
        else if (a[0] == '-') return cli_usage_error(cmd, "unknown option or missing value: %s", a);
        else if (!v->path) v->path = a;
        else return cli_usage_error(cmd, "unexpected argument %s", a);
        if (bad) return 2;
    }
    if (!v->path) return cli_usage_error(cmd, "missing SPACE.json");
    o->archs = (int)v->archs;
    o->reps = (int)v->reps;
    o->runs = (int)v->runs;
    if (calibrate < 0) calibrate = strcmp(v->hw_name, "cpu") == 0;
    if (v->save_profile && !calibrate) return cli_usage_error(cmd, "--save-profile needs a calibration (--calibrate, or --hw cpu)");
    pinas_measure_calib_opts_default(&v->co);
    v->co.scale = calib_scale;
    if (calibrate) o->calib = &v->co;
    if (calibrate && strcmp(v->net_name, "loopback") != 0)
        return cli_usage_error(cmd,
                               "--net %s with a calibration: the runtime runs over this host's loopback, which the calibration measures; "
                               "use --net loopback, or --no-calibrate to price the runs under another network anyway",
                               v->net_name);
    o->seed = (uint64_t)v->seed;
    o->params.batch = (int)v->batch;
    if (fb > 0) o->params.frac_bits = (int)fb;
    if (cb > 0) o->params.cmp_bits = (int)cb;
    return 0;
}

static void print_report(const pinas_measure_validation *res, const vl_args *v)
{
    printf("%4s %10s %14s %13s %9s\n", "arch", "relu_slots", "predicted_ms", "measured_ms", "error_%");
    for (int k = 0; k < res->n_archs; k++) {
        const pinas_measure_arch *a = &res->archs[k];
        printf("%4d %10d %14.3f %13.3f %+9.2f\n", k, a->relu_slots, a->predicted_ms, a->measured_ms, a->error_pct);
    }
    printf("\nper op (summed over all layers of all architectures):\n%-16s %8s %14s %13s %9s\n", "op", "layers", "predicted_ms", "measured_ms",
           "error_%");
    for (int i = 0; i < res->n_ops; i++) {
        const pinas_measure_op *e = &res->by_op[i];
        double p = e->predicted_ms, m = e->measured_ms;
        printf("%-16s %8d %14.3f %13.3f %+9.2f\n", e->op, e->layers, p, m, m > 0 ? 100 * (p - m) / m : 0);
    }
    if (res->calibration) {
        int dated = res->stored_fitted[0] != 0;
        printf("\nstored profile %s%s%s%s on the same runs: MAPE %.2f%%, max error %.2f%%, Kendall tau %.3f\n", v->hw_name,
               dated ? " (fitted " : "", dated ? res->stored_fitted : "", dated ? ")" : "", res->stored.mape_pct, res->stored.max_error_pct,
               res->stored.kendall_tau);
    }
    if (v->save_profile) printf("wrote the fitted profile to %s\n", v->save_profile);
    if (isfinite(res->spread_pct))
        printf("machine noise: an architecture's median run is %.0f%% slower than its fastest (median over the architectures)\n",
               res->spread_pct);
    printf("\n%s, %ld archs, hw %s, net %s, batch %ld, fastest of %ld x %ld runs: MAPE %.2f%%, max error %.2f%%, Kendall tau %.3f\n",
           res->space, v->archs, res->hw, v->net_name, v->batch, v->reps, v->runs, res->errors.mape_pct, res->errors.max_error_pct,
           res->errors.kendall_tau);
}

int pinas_cmd_validate_latency(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    pinas_measure_validate_opts o;
    pinas_measure_validate_opts_default(&o);
    vl_args v = {.hw_name = "cpu", .net_name = "loopback", .archs = o.archs, .reps = o.reps, .runs = o.runs, .seed = (long)o.seed,
                 .batch = 1, .max_mape = -1, .min_tau = -2};
    int rc = parse_args(argc, argv, &o, &v);
    if (rc) return rc;
    pinas_net *space = NULL;
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    pinas_measure_validation *res = NULL;
    if (pinas_net_load(ctx, v.path, &space) || pinas_cost_hw_load(ctx, v.hw_name, &hw) || pinas_cost_link_load(ctx, v.net_name, &link) ||
        pinas_measure_validate(ctx, space, hw, link, &o, &res) ||
        (v.save_profile && pinas_measure_calib_save(ctx, res->calibration, v.save_profile, NULL))) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (v.json) {
        cJSON *j = pinas_measure_validation_to_json(res);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        print_report(res, &v);
    }
    if (isfinite(res->spread_pct) && res->spread_pct > 40)
        pinas_warn(ctx,
                   "the machine was busy (median run %.0f%% slower than the fastest): an architecture that never got a fast run "
                   "shows the machine's error, not the model's; if the figures look off, rerun when it is quieter or with more --reps",
                   res->spread_pct);
    if (v.max_mape >= 0 && res->errors.mape_pct > v.max_mape) {
        fprintf(stderr, "pinas: error: MAPE %.2f%% is above --max-mape %.2f%%\n", res->errors.mape_pct, v.max_mape);
        rc = 1;
    }
    if (v.min_tau > -2 && res->errors.kendall_tau < v.min_tau) {
        fprintf(stderr, "pinas: error: Kendall tau %.3f is below --min-tau %.3f\n", res->errors.kendall_tau, v.min_tau);
        rc = 1;
    }
done:
    pinas_measure_validation_free(res);
    pinas_cost_link_free(link);
    pinas_cost_hw_free(hw);
    pinas_net_free(space);
    return rc;
}
