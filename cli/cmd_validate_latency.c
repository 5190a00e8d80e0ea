/* `pinas validate-latency`: predicted vs measured online latency of random architectures of a space. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_cost.h"

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

int pinas_cmd_validate_latency(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    pinas_cost_validate_opts o;
    pinas_cost_validate_opts_default(&o);
    const char *path = NULL, *hw_name = "cpu", *net_name = "loopback";
    const char *save_profile = NULL;
    long archs = o.archs, reps = o.reps, runs = o.runs, seed = (long)o.seed, batch = 1, fb = -1, cb = -1;
    double max_mape = -1, min_tau = -2, calib_scale = 1;
    int json = 0, calibrate = -1; /* -1: with --hw cpu */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc, bad = 0;
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--median") == 0) o.median = 1;
        else if (strcmp(a, "--calibrate") == 0) calibrate = 1;
        else if (strcmp(a, "--no-calibrate") == 0) calibrate = 0;
        else if (strcmp(a, "--save-profile") == 0 && has) save_profile = argv[++i];
        else if (strcmp(a, "--hw") == 0 && has) hw_name = argv[++i];
        else if (strcmp(a, "--net") == 0 && has) net_name = argv[++i];
        else if (strcmp(a, "--archs") == 0 && has) bad = cli_parse_int("validate-latency", a, argv[++i], 2, 100000, &archs);
        else if (strcmp(a, "--reps") == 0 && has) bad = cli_parse_int("validate-latency", a, argv[++i], 1, 1000, &reps);
        else if (strcmp(a, "--calib-scale") == 0 && has) bad = cli_parse_double("validate-latency", a, argv[++i], 1e-4, 100, &calib_scale);
        else if (strcmp(a, "--runs") == 0 && has) bad = cli_parse_int("validate-latency", a, argv[++i], 1, 100, &runs);
        else if (strcmp(a, "--seed") == 0 && has) bad = cli_parse_int("validate-latency", a, argv[++i], 0, 1L << 40, &seed);
        else if (strcmp(a, "--batch") == 0 && has) bad = cli_parse_int("validate-latency", a, argv[++i], 1, 4096, &batch);
        else if (strcmp(a, "--frac-bits") == 0 && has) bad = cli_parse_int("validate-latency", a, argv[++i], 4, 30, &fb);
        else if (strcmp(a, "--cmp-bits") == 0 && has) bad = cli_parse_int("validate-latency", a, argv[++i], 8, 64, &cb);
        else if (strcmp(a, "--max-mape") == 0 && has) bad = cli_parse_double("validate-latency", a, argv[++i], 0, 1e6, &max_mape);
        else if (strcmp(a, "--min-tau") == 0 && has) bad = cli_parse_double("validate-latency", a, argv[++i], -1, 1, &min_tau);
        else if (a[0] == '-') return cli_usage_error("validate-latency", "unknown option or missing value: %s", a);
        else if (!path) path = a;
        else return cli_usage_error("validate-latency", "unexpected argument %s", a);
        if (bad) return 2;
    }
    if (!path) return cli_usage_error("validate-latency", "missing SPACE.json");
    o.archs = (int)archs;
    o.reps = (int)reps;
    o.runs = (int)runs;
    if (calibrate < 0) calibrate = strcmp(hw_name, "cpu") == 0;
    if (save_profile && !calibrate)
        return cli_usage_error("validate-latency", "--save-profile needs a calibration (--calibrate, or --hw cpu)");
    pinas_cost_calib_opts co;
    pinas_cost_calib_opts_default(&co);
    co.scale = calib_scale;
    if (calibrate) o.calib = &co;
    if (calibrate && strcmp(net_name, "loopback") != 0)
        return cli_usage_error("validate-latency",
                               "--net %s with a calibration: the runtime runs over this host's loopback, which the calibration measures; "
                               "use --net loopback, or --no-calibrate to price the runs under another network anyway",
                               net_name);
    o.seed = (uint64_t)seed;
    o.params.batch = (int)batch;
    if (fb > 0) o.params.frac_bits = (int)fb;
    if (cb > 0) o.params.cmp_bits = (int)cb;
    pinas_net *space = NULL;
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    cJSON *res = NULL;
    int rc = 0;
    if (pinas_net_load(ctx, path, &space) || pinas_cost_hw_load(ctx, hw_name, &hw) || pinas_cost_link_load(ctx, net_name, &link) ||
        pinas_cost_validate(ctx, space, hw, link, &o, &res)) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (save_profile && pinas_json_save(ctx, save_profile, cJSON_GetObjectItemCaseSensitive(res, "profile"))) {
        rc = cli_fail(ctx);
        goto done;
    }
    double mape = cJSON_GetObjectItemCaseSensitive(res, "mape_pct")->valuedouble;
    double maxe = cJSON_GetObjectItemCaseSensitive(res, "max_error_pct")->valuedouble;
    double tau = cJSON_GetObjectItemCaseSensitive(res, "kendall_tau")->valuedouble;
    if (json) {
        cli_print_json(res);
    } else {
        const cJSON *a;
        int k = 0;
        printf("%4s %10s %14s %13s %9s\n", "arch", "relu_slots", "predicted_ms", "measured_ms", "error_%");
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "archs"))
        {
            printf("%4d %10d %14.3f %13.3f %+9.2f\n", k++, cJSON_GetObjectItemCaseSensitive(a, "relu_slots")->valueint,
                   cJSON_GetObjectItemCaseSensitive(a, "predicted_ms")->valuedouble, cJSON_GetObjectItemCaseSensitive(a, "measured_ms")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(a, "error_pct")->valuedouble);
        }
        printf("\nper op (summed over all layers of all architectures):\n%-16s %8s %14s %13s %9s\n", "op", "layers", "predicted_ms", "measured_ms", "error_%");
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(res, "by_op"))
        {
            double p = cJSON_GetObjectItemCaseSensitive(a, "predicted_ms")->valuedouble, m = cJSON_GetObjectItemCaseSensitive(a, "measured_ms")->valuedouble;
            printf("%-16s %8d %14.3f %13.3f %+9.2f\n", a->string, cJSON_GetObjectItemCaseSensitive(a, "layers")->valueint, p, m,
                   m > 0 ? 100 * (p - m) / m : 0);
        }
        const char *judged = cJSON_GetObjectItemCaseSensitive(res, "hw")->valuestring;
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "stored");
        if (st) {
            const cJSON *fitted = cJSON_GetObjectItemCaseSensitive(st, "fitted");
            printf("\nstored profile %s%s%s%s on the same runs: MAPE %.2f%%, max error %.2f%%, Kendall tau %.3f\n", hw_name,
                   cJSON_IsString(fitted) ? " (fitted " : "", cJSON_IsString(fitted) ? fitted->valuestring : "", cJSON_IsString(fitted) ? ")" : "",
                   cJSON_GetObjectItemCaseSensitive(st, "mape_pct")->valuedouble, cJSON_GetObjectItemCaseSensitive(st, "max_error_pct")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(st, "kendall_tau")->valuedouble);
        }
        if (save_profile) printf("wrote the fitted profile to %s\n", save_profile);
        const cJSON *spread = cJSON_GetObjectItemCaseSensitive(res, "spread_pct");
        if (cJSON_IsNumber(spread))
            printf("machine noise: an architecture's median run is %.0f%% slower than its fastest (median over the architectures)\n",
                   spread->valuedouble);
        printf("\n%s, %ld archs, hw %s, net %s, batch %ld, fastest of %ld x %ld runs: MAPE %.2f%%, max error %.2f%%, Kendall tau %.3f\n",
               pinas_net_name(space), archs, judged, net_name, batch, reps, runs, mape, maxe, tau);
    }
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(res, "spread_pct");
    if (cJSON_IsNumber(sp) && sp->valuedouble > 40)
        pinas_warn(ctx,
                   "the machine was busy (median run %.0f%% slower than the fastest): an architecture that never got a fast run "
                   "shows the machine's error, not the model's; if the figures look off, rerun when it is quieter or with more --reps",
                   sp->valuedouble);
    if (max_mape >= 0 && mape > max_mape) {
        fprintf(stderr, "pinas: error: MAPE %.2f%% is above --max-mape %.2f%%\n", mape, max_mape);
        rc = 1;
    }
    if (min_tau > -2 && tau < min_tau) {
        fprintf(stderr, "pinas: error: Kendall tau %.3f is below --min-tau %.3f\n", tau, min_tau);
        rc = 1;
    }
done:
    cJSON_Delete(res);
    pinas_cost_link_free(link);
    pinas_cost_hw_free(hw);
    pinas_net_free(space);
    return rc;
}
