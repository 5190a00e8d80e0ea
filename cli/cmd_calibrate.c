/* `pinas calibrate`: fits the cpu hardware profile from the runtime's micro-benchmarks. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_config.h"
#include "pinas_cost.h"
#include "pinas_measure.h"

#include <stdlib.h>
#include <string.h>

static void help(const char *def_out)
{
    printf("usage: pinas calibrate [--out FILE] [--reps N] [--runs N] [--sizes N] [--scale X] [--net PROFILE]\n"
           "                       [--frac-bits F] [--cmp-bits C] [--json]\n\n"
           "Runs micro-benchmarks of the 2PC runtime over a size sweep for every primitive the cpu profile\n"
           "prices: one-operator nets ([C,16,16] -> op -> global average pool) run privately by the runtime\n"
           "(dealer + both parties over loopback, one thread each) and timed over the whole online phase -\n"
           "relu, poly, patch_relu:2x2 (work: elements), maxpool 3x3/2 (pairs compared), conv 3x3 + folded\n"
           "batchnorm for the linear primitive (ring multiply-adds) - and local share additions. Each of\n"
           "--reps passes visits every size of every primitive once (so a busy spell of the machine spreads\n"
           "over all of them); a visit deals once and times --runs online runs on that material, with the\n"
           "caches evicted before each (a real run finds its key material in memory, not in cache). Per\n"
           "size the fastest run is kept; the harness (the same net without the op: input sharing, pooling,\n"
           "output) is timed the same way and subtracted, and so is the network's share (rounds x RTT +\n"
           "bytes / bandwidth, with the loopback's RTT and bandwidth measured here, the fastest of one\n"
           "measurement per pass). Then time = a + b*work is fitted per primitive by GSL least squares\n"
           "(relative: weights 1/t^2); the dealer's AES and ring-product throughput is measured for the\n"
           "offline estimate; a, b and R^2 per primitive are printed and the profile (pinas-profile/1, kind\n"
           "cpu) is written. Takes one to two minutes at the default sweep.\n\n"
           "options:\n"
           "  --out FILE        where to write the profile (default %s)\n"
           "  --reps N          passes over the sweep, the fastest run per size kept (default 9; on a\n"
           "                    shared machine other processes only ever add time)\n"
           "  --runs N          timed online runs per preprocessing in each visit (default 3)\n"
           "  --sizes N         sizes per primitive, geometric sweep (default 6, at least 3)\n"
           "  --scale X         multiplies every size of the sweep (default 1; 0.1 for a quick run)\n"
           "  --net PROFILE     the network profile to subtract (default: the loopback, measured by this\n"
           "                    command; when writing the shipped profile, profiles/loopback.json is\n"
           "                    refreshed with the measurement too)\n"
           "  --frac-bits F     fixed-point fractional bits (default: the runtime's)\n"
           "  --cmp-bits C      comparison bits (default 64)\n"
           "  --json            print the report {net, primitives: {name: {a, b, r2, points: [[work,\n"
           "                    measured s, network s, harness s], ...]}}, offline, profile, out}\n",
           def_out);
}

static void print_result(const pinas_measure_calib_result *r, const char *net_name, const char *out, const char *loop_out)
{
    printf("%-12s %14s %16s %10s\n", "primitive", "a (us/call)", "b (ns/unit)", "R^2");
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++)
        printf("%-12s %14.3f %16.5f %10.6f\n", pinas_cpu_prim_name(k), r->prims[k].a * 1e6, r->prims[k].b * 1e9, r->prims[k].r2);
    printf("dealer: %.3g AES blocks/s, %.3g ring MACs/s\n", r->aes_blocks_per_s, r->ring_macs_per_s);
    printf("network subtracted (%s): RTT %.1f us, %.0f Mbit/s\nwrote %s%s%s\n", net_name ? net_name : "measured loopback",
           pinas_cost_link_rtt(r->net) * 1e6, pinas_cost_link_bandwidth(r->net) * 8 / 1e6, out, loop_out ? " and " : "",
           loop_out ? loop_out : "");
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
    const char *out = def_out, *net_name = NULL;
    long reps = o.reps, runs = o.runs, sizes = o.n_sizes, fb = -1, cb = -1;
    double scale = 1;
    int json = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        int bad = 0;
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--out") == 0 && has) out = argv[++i];
        else if (strcmp(a, "--net") == 0 && has) net_name = argv[++i];
        else if (strcmp(a, "--reps") == 0 && has) bad = cli_parse_int("calibrate", a, argv[++i], 1, 1000, &reps);
        else if (strcmp(a, "--runs") == 0 && has) bad = cli_parse_int("calibrate", a, argv[++i], 1, 100, &runs);
        else if (strcmp(a, "--sizes") == 0 && has) bad = cli_parse_int("calibrate", a, argv[++i], 3, 64, &sizes);
        else if (strcmp(a, "--scale") == 0 && has) bad = cli_parse_double("calibrate", a, argv[++i], 1e-4, 100, &scale);
        else if (strcmp(a, "--frac-bits") == 0 && has)
            bad = cli_parse_int("calibrate", a, argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &fb);
        else if (strcmp(a, "--cmp-bits") == 0 && has) bad = cli_parse_int("calibrate", a, argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &cb);
        else bad = cli_usage_error("calibrate", "unknown option or missing value: %s", a) != 0;
        if (bad) {
            free(def_out);
            return 2;
        }
    }
    o.reps = (int)reps;
    o.runs = (int)runs;
    o.n_sizes = (int)sizes;
    o.scale = scale;
    if (fb > 0) o.params.frac_bits = (int)fb;
    if (cb > 0) o.params.cmp_bits = (int)cb;
    pinas_cost_link *link = NULL;
    pinas_measure_calib_result *res = NULL;
    /* Recalibrating the shipped profile also refreshes the shipped loopback profile with what was
     * measured, so that cpu + loopback gives back the measured times. */
    char *loop_out = !net_name && strcmp(out, def_out) == 0 ? pinas_path_join(pinas_cost_profile_dir(), "loopback.json") : NULL;
    if ((net_name && pinas_cost_link_load(ctx, net_name, &link))) {
        rc = cli_fail(ctx);
        goto done;
    }
    o.link = link;
    if (pinas_measure_calibrate(ctx, &o, &res) || pinas_measure_calib_save(ctx, res, out, loop_out)) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (json) {
        cJSON *rep = pinas_measure_calib_result_to_json(res);
        cJSON_AddStringToObject(rep, "out", out);
        cli_print_json(rep);
        cJSON_Delete(rep);
    } else {
        print_result(res, net_name, out, loop_out);
    }
done:
    free(loop_out);
    pinas_measure_calib_result_free(res);
    pinas_cost_link_free(link);
    free(def_out);
    return rc;
}
