/* `pinas calibrate`: fits the cpu hardware profile from per-node measurements of the runtime. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_config.h"
#include "pinas_cost.h"
#include "pinas_measure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(const char *def_out)
{
    printf("usage: pinas calibrate [--out FILE] [--runs N] [--scale X] [--max-batch B] [--space SPACE.json ...]\n"
           "                       [--frac-bits F] [--cmp-bits C] [--host-tol PCT] [--max-wait S] [--json]\n\n"
           "Fits the cpu hardware profile on this machine. Runs a sweep of calibration nets privately in the\n"
           "runtime (dealer + both parties over loopback, one thread each; built here, never the spaces you\n"
           "search): for 13 shapes from 8 channels of 32x32 to 512 of 2x2, a chain from 3 input channels\n"
           "conv3x3 (3 -> C) -> conv3x3 -> relu ->\n"
           "conv1x1 -> poly -> depthwise conv3x3 -> patch_relu (2x2 or 3x3) -> conv3x3 -> add -> maxpool\n"
           "(2x2/2 or 3x3/2) -> conv1x1 -> avgpool (the same) -> relu -> global average pool -> linear, at batch 1 and\n"
           "--max-batch. Each party times each node in thread CPU time outside its channel calls (its\n"
           "compute, into which time slicing by other processes does not enter); per node the least of --runs runs\n"
           "on one preprocessing (caches evicted before each; the party threads under SCHED_FIFO where\n"
           "permitted, so co-runners do not preempt a node midway; PINAS_MEASURE_NO_SHIELD=1: not). Per\n"
           "operator class and party, the compute\n"
           "is fitted as a linear function of the node's counted work (per call, the party's ring MACs and\n"
           "AES blocks, elements in and out) by relative least squares (GSL). The dealer's AES and ring\n"
           "throughput (offline estimate) and the loopback's RTT and bandwidth are measured too. The profile\n"
           "records the CPU model and the date; searches warn when they run on another CPU model. 20-50 s\n"
           "on 2 cores.\n\n"
           "With --space (FBNet-style measured shapes): the space's own nodes are measured too. As many\n"
           "architectures as its widest slot has candidates run every candidate of every open slot at least\n"
           "once (architecture j takes, at each slot, entry j of a permutation of its candidates drawn per\n"
           "slot and pass, so each pass sees other neighbours), at batch 1 and --max-batch, in each of the\n"
           "two passes (each after one of the sweep's, so minutes apart, and each in a child process of its\n"
           "own, so that its pages land elsewhere); per exact shape (class, party and\n"
           "the node's counted features) the least of the passes' medians becomes a measured shape of the\n"
           "profile. Predictions price a node with a measured shape by\n"
           "that measurement and every other node by its class's fit, so other spaces, batches and widths\n"
           "still work. With the three shipped spaces of docs/latency-fidelity.md the whole command takes\n"
           "about 105 s on 2 cores.\n\n"
           "Host-memory check (as in `pinas validate-latency --help`): before each pass of the sweep and of\n"
           "the spaces, a check times random reads of 64 MB of fresh memory (~0.2 s). The median of the checks\n"
           "is stored as the profile's host_memory_ns, which validation's checks compare with. With --max-wait S,\n"
           "while a check says the host serves memory slowly (its median chunk more than --host-tol above its\n"
           "fastest, or above the figure of the profile being rewritten when that was fitted on this CPU\n"
           "model), it waits in 10 s steps, up to S seconds over the run.\n\n"
           "options:\n"
           "  --out FILE        where to write the profile (default %s; writing there also refreshes\n"
           "                    the shipped loopback.json with the measured loopback)\n"
           "  --runs N          online runs per calibration net, the least per node kept (default 5)\n"
           "  --scale X         multiplies the sweep's channel counts (default 1; 0.25 for a quick run)\n"
           "  --max-batch B     the second batch of the sweep (default 4)\n"
           "  --space FILE      also measure this search space's own shapes (repeatable, up to 16)\n"
           "  --frac-bits F     fixed-point fractional bits (default: the runtime's)\n"
           "  --cmp-bits C      comparison bits (default 64)\n"
           "  --host-tol PCT    the host-memory check's tolerance (default 15; 0: no check)\n"
           "  --max-wait S      wait out a slow host for at most S seconds over the run (default 0: no wait)\n"
           "  --json            print the report {net, classes, rows: [[net, id, class, party, batch,\n"
           "                    measured s, fitted s], ...], profile, offline, nets, shapes, space_archs,\n"
           "                    space_seconds, seconds, out}\n",
           def_out);
}

static void print_result(pinas_ctx *ctx, const pinas_measure_calib_result *r, const char *out, const char *loop_out)
{
    pinas_cpu_params cp;
    int ok = !pinas_cost_hw_cpu_params(ctx, r->profile, &cp); /* the profile calibrate made is a cpu one */
    printf("%-15s %-7s %6s %9s  coefficients (per call us; per MAC, AES block, element in/out ns)\n", "class", "party", "nodes",
           "fit MAPE%");
    for (int k = 0; ok && k < PINAS_CPU_N_PRIM; k++)
        for (int q = 0; q < 2; q++) {
            if (!cp.fit_rows[k][q]) continue;
            printf("%-15s %-7s %6d %9.1f ", pinas_cpu_prim_name(k), q ? "client" : "server", cp.fit_rows[k][q], cp.fit_mape[k][q]);
            for (int f = 0; f < PINAS_CPU_N_FEAT; f++)
                if (cp.coef[k][q][f] != 0) printf(" %s=%.4g", pinas_cpu_feature_name(f), cp.coef[k][q][f] * (f ? 1e9 : 1e6));
            printf("\n");
        }
    printf("dealer: %.3g AES blocks/s, %.3g ring MACs/s\n", r->aes_blocks_per_s, r->ring_macs_per_s);
    if (ok && cp.n_spaces) {
        printf("measured shapes: %d from %d architectures of", r->n_shapes, r->space_archs);
        for (int i = 0; i < cp.n_spaces; i++) printf("%s %s", i ? "," : "", cp.spaces[i]);
        printf(" (%.1f s)\n", r->space_seconds);
    }
    printf("loopback: RTT %.1f us, %.0f Mbit/s\n%d calibration nets in %.1f s; wrote %s%s%s\n", pinas_cost_link_rtt(r->net) * 1e6,
           pinas_cost_link_bandwidth(r->net) * 8 / 1e6, r->nets, r->seconds, out, loop_out ? " and " : "", loop_out ? loop_out : "");
}

int pinas_cmd_calibrate(pinas_ctx *ctx, int argc, char **argv)
{
    char *def_out = pinas_path_join(pinas_cost_profile_dir(), "cpu.json");
    if (!def_out) return cli_fail(ctx);
    if (cli_wants_help(argc, argv)) {
        help(def_out);
        free(def_out);
        return 0;
    }
    pinas_measure_calib_opts o;
    pinas_measure_calib_opts_default(&o);
    const char *out = def_out;
    long runs = o.runs, mb = o.max_batch, fb = -1, cb = -1;
    double scale = 1;
    int json = 0, rc = 0, n_paths = 0;
    const char *paths[PINAS_MEASURE_MAX_SPACES];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        int bad = 0;
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--out") == 0 && has) out = argv[++i];
        else if (strcmp(a, "--space") == 0 && has && n_paths < PINAS_MEASURE_MAX_SPACES) paths[n_paths++] = argv[++i];
        else if (strcmp(a, "--space") == 0 && has) bad = cli_usage_error("calibrate", "at most %d --space", PINAS_MEASURE_MAX_SPACES) != 0;
        else if (strcmp(a, "--runs") == 0 && has) bad = cli_parse_int("calibrate", a, argv[++i], 1, 100, &runs);
        else if (strcmp(a, "--max-batch") == 0 && has) bad = cli_parse_int("calibrate", a, argv[++i], 1, 64, &mb);
        else if (strcmp(a, "--scale") == 0 && has) bad = cli_parse_double("calibrate", a, argv[++i], 1e-3, 8, &scale);
        else if (strcmp(a, "--host-tol") == 0 && has) bad = cli_parse_double("calibrate", a, argv[++i], 0, 100, &o.host.tol_pct);
        else if (strcmp(a, "--max-wait") == 0 && has) bad = cli_parse_double("calibrate", a, argv[++i], 0, 3600, &o.host.max_wait_s);
        else if (strcmp(a, "--frac-bits") == 0 && has)
            bad = cli_parse_int("calibrate", a, argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &fb);
        else if (strcmp(a, "--cmp-bits") == 0 && has) bad = cli_parse_int("calibrate", a, argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &cb);
        else bad = cli_usage_error("calibrate", "unknown option or missing value: %s", a) != 0;
        if (bad) {
            free(def_out);
            return 2;
        }
    }
    o.runs = (int)runs;
    o.max_batch = (int)mb;
    if (o.host.tol_pct > 0) o.host.ref_ns = pinas_measure_host_ref_of(ctx, out);
    o.scale = scale;
    if (fb > 0) o.params.frac_bits = (int)fb;
    if (cb > 0) o.params.cmp_bits = (int)cb;
    pinas_measure_calib_result *res = NULL;
    pinas_net *spaces[PINAS_MEASURE_MAX_SPACES] = {0};
    int bad = 0;
    for (int i = 0; i < n_paths && !bad; i++) bad = pinas_net_load(ctx, paths[i], &spaces[i]) != PINAS_OK;
    o.spaces = (const pinas_net *const *)spaces;
    o.n_spaces = n_paths;
    char *loop_out = strcmp(out, def_out) == 0 ? pinas_path_join(pinas_cost_profile_dir(), "loopback.json") : NULL;
    if (bad || pinas_measure_calibrate(ctx, &o, &res) || pinas_measure_calib_save(ctx, res, out, loop_out)) {
        rc = cli_fail(ctx);
    } else if (json) {
        cJSON *rep = pinas_measure_calib_result_to_json(res);
        cJSON_AddStringToObject(rep, "out", out);
        cli_print_json(rep);
        cJSON_Delete(rep);
    } else {
        print_result(ctx, res, out, loop_out);
    }
    free(loop_out);
    for (int i = 0; i < n_paths; i++) pinas_net_free(spaces[i]);
    pinas_measure_calib_result_free(res);
    free(def_out);
    return rc;
}
