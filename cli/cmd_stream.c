/* `pinas stream`: K private inferences arriving as a Poisson stream while a dealer makes their
 * preprocessing on the fly into a capped client store; measured latency against the e2e model. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas stream MODEL_DIR --requests K --rate R --client-storage SIZE [--net P] [--hw P]\n"
           "                   [--seed S] [--timeout SECONDS] [--json]\n\n"
           "Runs a real stream of K private inferences on this machine and compares the measured latency\n"
           "with the end-to-end model (`pinas predict --client-storage`, latency_model/pinas_e2e.h):\n"
           "  - a dealer thread makes one inference's preprocessing at a time into a client-side store (a\n"
           "    private temporary directory) holding at most floor(SIZE / the client file's bytes) sets; it\n"
           "    works while the store plus the sets under way are short of that plus the waiting requests;\n"
           "    the store starts full;\n"
           "  - requests arrive on the model's seeded Poisson schedule; each takes a stored set or waits;\n"
           "  - the server runs one private inference at a time (both parties in this process, over\n"
           "    loopback TCP), in arrival order. Latency = arrival -> logits.\n"
           "Prints measured mean/p50/p99 latency and the share that waited, the measured means of the\n"
           "dealer's time per set, the link's and the online phase's, and the simulation's prediction on\n"
           "the run's own arrival times with those means (and, separately, with the cost model's figures).\n\n"
           "  --requests K        requests (>= 1)\n"
           "  --rate R            arrival rate: 6/min, 0.5/s, 100/h\n"
           "  --client-storage S  the client's storage budget: 2GB, 512MiB, 100000 (0: every request waits)\n"
           "  --net P             emulate this network profile's link between dealer and parties (each set is\n"
           "                      held back max(file bytes) / bandwidth + RTT; default: none, loopback)\n"
           "  --hw P              hardware profile of the cost-model prediction (default cpu)\n"
           "  --seed S            arrivals and inputs (default 1)\n"
           "  --timeout S         per private inference (default 60)\n"
           "  --json              print the result as JSON (pinas_stream_result_to_json)\n");
}

static void print_result(const pinas_stream_result *r, const char *storage, const char *rate)
{
    const pinas_e2e_result *m = &r->run;
    printf("%ld requests at %s, client storage %s = %ld sets of %.1f KB (server %.1f KB)\n", m->n, rate, storage, m->capacity,
           r->client_set_bytes / 1e3, r->server_set_bytes / 1e3);
    printf("measured:  mean %.1f ms, p50 %.1f ms, p99 %.1f ms; %.0f%% waited for preprocessing; storage %.1f KB on average, %.1f KB at most\n",
           m->mean_s * 1e3, m->p50_s * 1e3, m->p99_s * 1e3, 100 * m->waited_share, m->storage_mean_bytes / 1e3, m->storage_max_bytes / 1e3);
    printf("           dealer %.1f ms per set (%ld sets), link %.1f ms, online %.1f ms\n", r->measured.gen_s * 1e3, r->gen_samples,
           r->measured.xfer_s * 1e3, r->measured.online_s * 1e3);
    printf("predicted (measured costs, same arrivals): mean %.1f ms (%+.1f%%), p50 %.1f ms, p99 %.1f ms, %.0f%% waited\n",
           r->predicted.mean_s * 1e3, 100 * (r->predicted.mean_s / m->mean_s - 1), r->predicted.p50_s * 1e3, r->predicted.p99_s * 1e3,
           100 * r->predicted.waited_share);
    printf("predicted (cost model: dealer %.1f ms, link %.1f ms, online %.1f ms): mean %.1f ms (%+.1f%%)\n", r->model.gen_s * 1e3,
           r->model.xfer_s * 1e3, r->model.online_s * 1e3, r->model_predicted.mean_s * 1e3, 100 * (r->model_predicted.mean_s / m->mean_s - 1));
}

int pinas_cmd_stream(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    pinas_stream_opts o = {.seed = 1};
    const char *rate = NULL, *storage = NULL;
    long seed = 1;
    double timeout = 60;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--requests") && has) {
            if (cli_parse_int("stream", a, argv[++i], 1, 1000000, &o.requests)) return 2;
        } else if (!strcmp(a, "--rate") && has) rate = argv[++i];
        else if (!strcmp(a, "--client-storage") && has) storage = argv[++i];
        else if (!strcmp(a, "--net") && has) o.link = argv[++i];
        else if (!strcmp(a, "--hw") && has) o.hw = argv[++i];
        else if (!strcmp(a, "--seed") && has) {
            if (cli_parse_int("stream", a, argv[++i], 0, 2147483647L, &seed)) return 2;
        } else if (!strcmp(a, "--timeout") && has) {
            if (cli_parse_double("stream", a, argv[++i], 0.001, 86400, &timeout)) return 2;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] == '-') return cli_usage_error("stream", "unknown option or missing value: %s", a);
        else if (!o.model_dir) o.model_dir = a;
        else return cli_usage_error("stream", "unexpected argument %s", a);
    }
    if (!o.model_dir) return cli_usage_error("stream", "missing MODEL_DIR");
    if (!o.requests || !rate || !storage) return cli_usage_error("stream", "--requests, --rate and --client-storage are required");
    if (pinas_e2e_parse_rate(ctx, "--rate", rate, &o.rate_per_s) || pinas_e2e_parse_bytes(ctx, "--client-storage", storage, &o.client_storage_bytes))
        return cli_fail(ctx);
    o.seed = (uint64_t)seed;
    o.timeout_ms = (int)(timeout * 1000);
    pinas_stream_result r;
    if (pinas_stream_run(ctx, &o, &r)) return cli_fail(ctx);
    if (json) {
        cJSON *j = pinas_stream_result_to_json(&r);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        print_result(&r, storage, rate);
    }
    return 0;
}
