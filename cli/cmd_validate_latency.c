/* `pinas validate-latency`: predicted vs measured latency, per node and party and per net, on random archs. */
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
    printf("usage: pinas validate-latency SPACE.json [--archs K] [--runs N] [--passes P] [--max-passes M]\n"
           "                                [--agree PCT] [--batch N] [--hw PROFILE]\n"
           "                                [--net PROFILE] [--calibrate] [--calib-scale X] [--save-profile FILE]\n"
           "                                [--fit-only] [--host-tol PCT] [--host-gate] [--max-wait S]\n"
           "                                [--seed S] [--frac-bits F] [--cmp-bits C]\n"
           "                                [--max-mape PCT] [--min-tau T] [--max-op-mape PCT] [--json]\n\n"
           "Samples K random architectures of the space (every open slot decided uniformly), predicts each\n"
           "node's compute per party and its communication, runs each privately in the runtime (dealer +\n"
           "both parties over loopback, one thread each, random weights and input; N online runs on one\n"
           "preprocessing) and compares. It goes over all K architectures P times (passes): each one is\n"
           "run once per pass, in a child process of its own (fresh pages: on a VM where a process's pages\n"
           "land moves a net's compute by up to 35 %%) and on a fresh preprocessing, its passes a whole\n"
           "pass apart. Then an architecture whose two least pass figures (its compute) differ by more\n"
           "than PCT gets more passes, up to M: its figure is settled when two independent draws agree at\n"
           "the bottom (\"unsettled_archs\" in the JSON: those that never did).\n\n"
           "Host-memory check: before and after every pass a check times random reads of 64 MB of fresh\n"
           "memory (~0.2 s). On a VM whose balloon reports free pages to its host, memory mapped again after\n"
           "big frees is served slowly for minutes (measured: 20-35 %% slower reads, VGG-16 nets 30-40 %%\n"
           "slower in every process). A check is disturbed when its median chunk is more than --host-tol\n"
           "above its own fastest chunk or above the profile's host_memory_ns; \"host\" in the JSON and\n"
           "arch_list[].disturbed_passes report it. With --host-gate, a pass also waits while the check says\n"
           "disturbed (10 s steps, up to --max-wait over the run, default then 300), and a pass disturbed at\n"
           "either check is kept apart: it settles nothing and its figures count only for an architecture\n"
           "with no clean pass (flagged \"disturbed\"). Off by default: in an A/B on this VM the gate cost\n"
           "2-5x the time without better figures (docs/latency-fidelity.md).\n\n"
           "What is measured how: each party times each node in thread CPU time (CLOCK_THREAD_CPUTIME_ID)\n"
           "outside its channel calls - its compute; the time inside send/receive (transfer and waiting for\n"
           "the peer) is reported by `pinas infer --json` but not judged here. Per node the least over every\n"
           "run of every pass: compute time is only ever inflated (a co-runner refilling the caches, a VM\n"
           "host slowing the vCPU for a while), and passes apart in time let a spell of the host's be\n"
           "missed by one of them. The party threads run under SCHED_FIFO where permitted (root or CAP_SYS_NICE;\n"
           "PINAS_MEASURE_NO_SHIELD=1: not), so co-runners do not preempt a node midway (shielded_archs in\n"
           "the JSON). Time slicing by co-runners does not enter thread CPU time, but sharing a core or its\n"
           "caches with them still slows it (10-30 %% in some runs on a 2-vCPU VM). Per node, the\n"
           "prediction of each party is compared with that party's\n"
           "figure, and the node's compute (the busier party's) with the busier measured party's.\n"
           "Whole net (\"robust\"): per node the busier party's compute plus the network profile's\n"
           "communication (rounds x RTT + bytes / bandwidth), summed with the session's cost - measured\n"
           "(compute measured) against predicted (compute predicted): the communication is modelled on both\n"
           "sides, so the figure judges the compute model and is not moved by time slicing. Beside it, the plain\n"
           "wall-clock online time against the prediction (meaningful on a quiet machine only).\n\n"
           "Reports per architecture predicted, measured (robust) and wall ms; MAPE, max error and Kendall's\n"
           "tau of the whole-net figures; per operator class the per-node MAPE (busier party, server,\n"
           "client). See docs/latency-fidelity.md.\n\n"
           "Speed probe: a small private inference timed the same way when the profile was fitted (its\n"
           "probe_ms) and again just before and after each architecture's runs; the ratio says how much\n"
           "slower or faster the machine computed then (other tenants of a VM host, frequency). The figures\n"
           "are also given with each architecture's compute predictions scaled by its own ratio (\"speed\" in\n"
           "the JSON); the plain figures are the stored profile's own.\n\n"
           "options:\n"
           "  --archs K         architectures (default 20)\n"
           "  --runs N          online runs per architecture and pass on one preprocessing (default 3)\n"
           "  --passes P        passes over every architecture (default 2)\n"
           "  --max-passes M    passes at most for an architecture not yet settled (default 6; = P: none more)\n"
           "  --agree PCT       two least passes within PCT %% settle an architecture (default 3)\n"
           "  --batch N         samples per inference (default 1)\n"
           "  --hw PROFILE      hardware profile (default cpu: what the runtime runs on)\n"
           "  --net PROFILE     network profile (default loopback: how the runtime is run here)\n"
           "  --calibrate       fit a cpu profile first (as `pinas calibrate`) and judge it; the given\n"
           "                    profile is judged beside it (default: judge the stored profile alone)\n"
           "  --calib-scale X   the calibration's --scale (default 1)\n"
           "  --fit-only        judge the profile's class fits alone: its measured shapes (`pinas calibrate\n"
           "                    --space`) dropped. Without it, nodes of a measured shape are priced by it\n"
           "                    (the \"shapes\" column says how many)\n"
           "  --save-profile FILE  write the profile fitted during the run (with --calibrate)\n"
           "  --host-tol PCT    the host-memory check's tolerance (default 15; 0: no check)\n"
           "  --host-gate       wait out a disturbed check and keep disturbed passes apart (see above)\n"
           "  --max-wait S      with --host-gate: waiting for the host at most, over the run (default 300)\n"
           "  --seed S          architectures, weights and inputs (default 1)\n"
           "  --frac-bits F     fixed-point fractional bits (default: the runtime's)\n"
           "  --cmp-bits C      comparison bits (default 64)\n"
           "  --max-mape PCT    exit 1 when the whole-net (robust) MAPE is above PCT\n"
           "  --min-tau T       exit 1 when its Kendall's tau is below T\n"
           "  --max-op-mape PCT exit 1 when a class's per-node MAPE is above PCT\n"
           "  --json            print {space, batch, archs, whole: {mape_pct, max_pct, tau}, wall: {...},\n"
           "                    per_op: [{op, nodes, mape_pct, server_mape_pct, client_mape_pct, ...}],\n"
           "                    profile: {cpu_model, date}, machine: {cpu_model}, arch_list: [...], ...}\n");
}

typedef struct {
    const char *path, *hw_name, *net_name, *save_profile;
    long archs, runs, passes, max_passes, seed, batch;
    double max_mape, min_tau, max_op_mape, agree;
    int json;
    pinas_measure_calib_opts co;
} vl_args;

static int parse_args(int argc, char **argv, pinas_measure_validate_opts *o, vl_args *v)
{
    const char *cmd = "validate-latency";
    long fb = -1, cb = -1;
    double calib_scale = 1;
    int calibrate = 0, max_wait_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc, bad = 0;
        if (strcmp(a, "--json") == 0) v->json = 1;
        else if (strcmp(a, "--calibrate") == 0) calibrate = 1;
        else if (strcmp(a, "--fit-only") == 0) o->fit_only = 1;
        else if (strcmp(a, "--no-calibrate") == 0) calibrate = 0; /* the default; kept for old scripts */
        else if (strcmp(a, "--save-profile") == 0 && has) v->save_profile = argv[++i];
        else if (strcmp(a, "--hw") == 0 && has) v->hw_name = argv[++i];
        else if (strcmp(a, "--net") == 0 && has) v->net_name = argv[++i];
        else if (strcmp(a, "--archs") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 2, 100000, &v->archs);
        else if (strcmp(a, "--calib-scale") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], 1e-3, 8, &calib_scale);
        else if (strcmp(a, "--runs") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 1, 100, &v->runs);
        else if (strcmp(a, "--passes") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 1, PINAS_MEASURE_MAX_PASSES, &v->passes);
        else if (strcmp(a, "--max-passes") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 1, PINAS_MEASURE_MAX_PASSES, &v->max_passes);
        else if (strcmp(a, "--agree") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], 0.01, 100, &v->agree);
        else if (strcmp(a, "--seed") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 0, 1L << 40, &v->seed);
        else if (strcmp(a, "--batch") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], 1, 4096, &v->batch);
        else if (strcmp(a, "--frac-bits") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &fb);
        else if (strcmp(a, "--cmp-bits") == 0 && has) bad = cli_parse_int(cmd, a, argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &cb);
        else if (strcmp(a, "--max-mape") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], 0, 1e6, &v->max_mape);
        else if (strcmp(a, "--max-op-mape") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], 0, 1e6, &v->max_op_mape);
        else if (strcmp(a, "--min-tau") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], -1, 1, &v->min_tau);
        else if (strcmp(a, "--host-tol") == 0 && has) bad = cli_parse_double(cmd, a, argv[++i], 0, 100, &o->host.tol_pct);
        else if (strcmp(a, "--max-wait") == 0 && has) {
            max_wait_set = 1;
            bad = cli_parse_double(cmd, a, argv[++i], 0, 3600, &o->host.max_wait_s);
        }
        else if (strcmp(a, "--host-gate") == 0) o->host_gate = 1;
        else if (a[0] == '-') return cli_usage_error(cmd, "unknown option or missing value: %s", a);
        else if (!v->path) v->path = a;
        else return cli_usage_error(cmd, "unexpected argument %s", a);
        if (bad) return 2;
    }
    if (!v->path) return cli_usage_error(cmd, "missing SPACE.json");
    if (o->host_gate && !max_wait_set) o->host.max_wait_s = 300;
    if (max_wait_set && !o->host_gate) return cli_usage_error(cmd, "--max-wait needs --host-gate");
    o->archs = (int)v->archs;
    o->runs = (int)v->runs;
    o->passes = (int)v->passes;
    o->max_passes = (int)(v->max_passes > v->passes ? v->max_passes : v->passes);
    o->agree_pct = v->agree;
    if (v->save_profile && !calibrate) return cli_usage_error(cmd, "--save-profile needs --calibrate");
    if (o->fit_only && calibrate) return cli_usage_error(cmd, "--fit-only judges the given profile's fits; --calibrate fits one without shapes anyway");
    pinas_measure_calib_opts_default(&v->co);
    v->co.scale = calib_scale;
    v->co.host = o->host;
    if (calibrate) o->calib = &v->co;
    o->seed = (uint64_t)v->seed;
    o->params.batch = (int)v->batch;
    if (fb > 0) o->params.frac_bits = v->co.params.frac_bits = (int)fb;
    if (cb > 0) o->params.cmp_bits = v->co.params.cmp_bits = (int)cb;
    return 0;
}

static void print_report(const pinas_measure_validation *res, const vl_args *v)
{
    printf("%4s %10s %14s %13s %9s %10s %9s %6s\n", "arch", "relu_slots", "predicted_ms", "measured_ms", "error_%", "wall_ms", "wall_err%",
           "passes");
    for (int k = 0; k < res->n_archs; k++) {
        const pinas_measure_arch *a = &res->archs[k];
        printf("%4d %10d %14.3f %13.3f %+9.2f %10.3f %+9.2f %6d\n", k, a->relu_slots, a->predicted_ms, a->measured_ms, a->error_pct, a->wall_ms,
               a->wall_error_pct, a->passes);
    }
    printf("\nper node, by operator class (compute: thread CPU time; MAPE over every node of every architecture):\n");
    printf("%-16s %6s %6s %10s %11s %11s %14s %13s %11s\n", "class", "nodes", "shapes", "MAPE_%", "server_%", "client_%", "predicted_ms",
           "measured_ms", "x speed_%");
    for (int i = 0; i < res->n_ops; i++) {
        const pinas_measure_op *e = &res->by_op[i];
        printf("%-16s %6d %6d %10.2f %11.2f %11.2f %14.3f %13.3f %11.2f\n", e->op, e->nodes, e->shape_nodes, e->mape_pct, e->party_mape_pct[0],
               e->party_mape_pct[1], e->predicted_ms, e->measured_ms, e->speed_mape_pct);
    }
    if (res->calibration)
        printf("\nstored profile %s on the same runs: MAPE %.2f%%, max error %.2f%%, Kendall tau %.3f\n", res->stored_hw, res->stored.mape_pct,
               res->stored.max_error_pct, res->stored.kendall_tau);
    if (v->save_profile) printf("wrote the fitted profile to %s\n", v->save_profile);
    printf("profile fitted on \"%s\" (%s); this machine: \"%s\"\n", res->hw_cpu_model[0] ? res->hw_cpu_model : "unknown",
           res->hw_fitted[0] ? res->hw_fitted : "no date", res->cpu_model);
    printf("wall clock (quiet machine only): MAPE %.2f%%, max %.2f%%, Kendall tau %.3f\n", res->wall.mape_pct, res->wall.max_error_pct,
           res->wall.kendall_tau);
    if (res->host_tol_pct > 0)
        printf("host memory: %d checks, median %.2f ns per read (profile's %.2f), %d disturbed, waited %.0f s; %d passes disturbed, %d "
               "archs with no clean pass (kept apart only with --host-gate)%s\n",
               res->host.checks, pinas_measure_host_log_median(&res->host), res->host_ref_ns, res->host.disturbed_checks, res->host.waited_s,
               res->disturbed_passes, res->disturbed_archs, pinas_measure_free_page_reporting() ? " (the balloon reports free pages)" : "");
    if (isfinite(res->speed_ratio))
        printf("speed probe: the machine computes at %.3fx the time of the profile's fit (median over the architectures); each "
               "architecture's predictions scaled by its own probe: MAPE %.2f%%, max %.2f%%, Kendall tau %.3f (\"x speed\" column above)\n",
               res->speed_ratio, res->speed.mape_pct, res->speed.max_error_pct, res->speed.kendall_tau);
    printf("\n%s, %d archs, hw %s, net %s, batch %d, least of %d runs x %d-%d passes (%d unsettled): MAPE %.2f%%, max error %.2f%%, "
           "Kendall tau %.3f; over the %d of %d pairs the passes resolve %.3f (%.0f s)\n",
           res->space, res->n_archs, res->hw, res->net, res->batch, res->runs, res->passes, res->max_passes, res->unsettled_archs,
           res->errors.mape_pct, res->errors.max_error_pct, res->errors.kendall_tau, res->errors.resolved_pairs, res->errors.pairs,
           res->errors.tau_resolved, res->seconds);
}

/* Exit status of the --max-* / --min-* checks: 1 with a message per failed check. */
static int check_targets(const pinas_measure_validation *res, const vl_args *v)
{
    int rc = 0;
    if (v->max_mape >= 0 && res->errors.mape_pct > v->max_mape) {
        fprintf(stderr, "pinas: error: MAPE %.2f%% is above --max-mape %.2f%%\n", res->errors.mape_pct, v->max_mape);
        rc = 1;
    }
    if (v->min_tau > -2 && res->errors.kendall_tau < v->min_tau) {
        fprintf(stderr, "pinas: error: Kendall tau %.3f is below --min-tau %.3f\n", res->errors.kendall_tau, v->min_tau);
        rc = 1;
    }
    for (int i = 0; v->max_op_mape >= 0 && i < res->n_ops; i++)
        if (res->by_op[i].mape_pct > v->max_op_mape) {
            fprintf(stderr, "pinas: error: %s per-node MAPE %.2f%% is above --max-op-mape %.2f%%\n", res->by_op[i].op, res->by_op[i].mape_pct,
                    v->max_op_mape);
            rc = 1;
        }
    return rc;
}

int pinas_cmd_validate_latency(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    pinas_measure_validate_opts o;
    pinas_measure_validate_opts_default(&o);
    vl_args v = {.hw_name = "cpu", .net_name = "loopback", .archs = o.archs, .runs = o.runs, .passes = o.passes, .max_passes = o.max_passes, .agree = o.agree_pct, .seed = (long)o.seed, .batch = 1,
                 .max_mape = -1, .min_tau = -2, .max_op_mape = -1};
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
    } else {
        if (v.json) {
            cJSON *j = pinas_measure_validation_to_json(res);
            cli_print_json(j);
            cJSON_Delete(j);
        } else {
            print_report(res, &v);
        }
        rc = check_targets(res, &v);
    }
    pinas_measure_validation_free(res);
    pinas_cost_link_free(link);
    pinas_cost_hw_free(hw);
    pinas_net_free(space);
    return rc;
}
