/* `pinas pareto`: merge search runs, print the latency-accuracy table and re-plot the front. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_e2e.h"
#include "pinas_nas.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas pareto RUN_DIR... [--hw P] [--net P] [--metric online|total|e2e] [--out DIR]\n"
           "                    [--client-storage SIZE] [--rate R] [--title TEXT] [--json]\n\n"
           "Reads candidates/<k>/metrics.json and baselines/<name>/metrics.json of every run dir, marks\n"
           "the candidates no other one beats on both latency and accuracy, computes the hypervolume\n"
           "(reference: 1.05 x the slowest latency, accuracy 0), prints a table sorted by latency and\n"
           "writes pareto.json, pareto.csv, pareto.svg and pareto.png.\n\n"
           "Baselines are the naive designs: all-ReLU, all-poly, first-k (ReLU in the first k slots) and\n"
           "random (k ReLU slots at random). When there are any, the table is followed by each candidate\n"
           "against the most accurate baseline no slower than it (pareto.json: \"comparison\").\n\n"
           "  --hw P, --net P  the hardware and network profiles of the latency axis (default: the\n"
           "                   first run's search.hw / search.net); a candidate not priced under them\n"
           "                   when the run was made is priced now from its net.json\n"
           "  --metric M       online (default), total (online + offline preprocessing) or e2e: every\n"
           "                   point re-priced from its model dir by the end-to-end simulation (mean\n"
           "                   latency of a Poisson stream whose preprocessing a dealer makes on the fly\n"
           "                   into a client store; latency_model/pinas_e2e.h); accuracies are kept\n"
           "  --client-storage SIZE, --rate R  e2e: the client's storage budget (2GB, 512MiB, ...) and the\n"
           "                   arrival rate (6/min, 0.5/s, ...); default: the first run's\n"
           "                   latency.client_storage_bytes and latency.rate_per_min\n"
           "  --out DIR        where the files go (default for one run: the run dir itself under its own\n"
           "                   search profiles and online latency, else RUN_DIR/pareto-<hw>-<net>[-total|-e2e]\n"
           "                   so that the run's own files are never overwritten; for several runs:\n"
           "                   <parent of the first>/pareto-merged)\n"
           "  --title TEXT     plot title\n"
           "  --json           print pareto.json to stdout instead of the table\n");
}

int pinas_cmd_pareto(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *hw = NULL, *net = NULL, *metric = "online", *out = NULL, *title = NULL, *storage = NULL, *rate = NULL;
    int json = 0, n_runs = 0;
    const char **runs = calloc((size_t)argc, sizeof *runs);
    if (!runs) return 1;
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--hw") ? &hw : !strcmp(argv[i], "--net") ? &net : !strcmp(argv[i], "--metric") ? &metric
                         : !strcmp(argv[i], "--out") ? &out : !strcmp(argv[i], "--title") ? &title
                         : !strcmp(argv[i], "--client-storage") ? &storage : !strcmp(argv[i], "--rate") ? &rate : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                free(runs);
                return cli_usage_error("pareto", "%s needs a value", argv[i]);
            }
            *dst = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-') {
            free(runs);
            return cli_usage_error("pareto", "unknown option %s", argv[i]);
        } else {
            runs[n_runs++] = argv[i];
        }
    }
    if (!n_runs) {
        free(runs);
        return cli_usage_error("pareto", "missing RUN_DIR");
    }
    if (strcmp(metric, "online") && strcmp(metric, "total") && strcmp(metric, "e2e")) {
        free(runs);
        return cli_usage_error("pareto", "--metric: expected online, total or e2e, got \"%s\"", metric);
    }
    pinas_pareto_runs_opts o = {.hw = hw, .net = net, .metric = metric, .out_dir = out, .title = title, .client_storage_bytes = -1};
    if ((storage || rate) && strcmp(metric, "e2e")) {
        free(runs);
        return cli_usage_error("pareto", "--client-storage and --rate go with --metric e2e");
    }
    if ((storage && pinas_e2e_parse_bytes(ctx, "--client-storage", storage, &o.client_storage_bytes)) ||
        (rate && pinas_e2e_parse_rate(ctx, "--rate", rate, &o.rate_per_s))) {
        free(runs);
        return cli_fail(ctx);
    }
    pinas_pareto *p = NULL;
    char *outdir = NULL;
    int rc = pinas_nas_pareto_runs(ctx, runs, n_runs, &o, &p, &outdir) ? cli_fail(ctx) : 0;
    if (!rc) {
        if (json) {
            cJSON *j = pinas_pareto_to_json(p);
            if (j) cli_print_json(j);
            else rc = (fprintf(stderr, "pinas: error: out of memory\n"), 1);
            cJSON_Delete(j);
        } else {
            pinas_pareto_print_table(p, stdout);
            printf("written: %s/pareto.{json,csv,svg,png}\n", outdir);
        }
    }
    free(outdir);
    pinas_pareto_free(p);
    free(runs);
    return rc;
}
