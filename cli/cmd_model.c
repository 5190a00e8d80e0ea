/* `pinas model random`: a model dir with random weights for a decided architecture (tests, benchmarks). */
#include "cli.h"
#include "pinas_net.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas model random SPACE.json --out MODEL_DIR [--arch all-relu|all-poly|random] [--seed S]\n\n"
           "Decides every open slot of SPACE.json and writes a model dir (net.json with every slot decided,\n"
           "weights.safetensors with random weights, meta.json) for tests and benchmarks.\n\n"
           "  --arch all-relu   act slots -> relu, pool slots -> maxpool (default)\n"
           "  --arch all-poly   act slots -> poly, pool slots -> avgpool\n"
           "  --arch random     every open slot uniformly at random (pinas_net_random_arch: the same\n"
           "                    architecture as validate-latency samples for that seed)\n"
           "  --seed S          seed for the architecture and the weights (default 0)\n"
           "  --out DIR         the model dir to write (created)\n");
}

int pinas_cmd_model(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 2) {
        help();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "random") != 0) return cli_usage_error("model", "unknown subcommand \"%s\" (expected: random)", argv[1]);
    const char *space = NULL, *out = NULL, *arch = "all-relu";
    long seed = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (cli_parse_int("model random", "--seed", argv[++i], 0, 2147483647L, &seed)) return 2;
        } else if (argv[i][0] == '-') return cli_usage_error("model random", "unknown option %s", argv[i]);
        else if (!space) space = argv[i];
        else return cli_usage_error("model random", "unexpected argument %s", argv[i]);
    }
    if (!space) return cli_usage_error("model random", "missing SPACE.json");
    if (!out) return cli_usage_error("model random", "missing --out MODEL_DIR");
    int mode = !strcmp(arch, "all-relu") ? 0 : !strcmp(arch, "all-poly") ? 1 : !strcmp(arch, "random") ? 2 : -1;
    if (mode < 0) return cli_usage_error("model random", "--arch: expected all-relu, all-poly or random, got \"%s\"", arch);
    pinas_net *net;
    if (pinas_net_load(ctx, space, &net)) return cli_fail(ctx);
    pinas_net *decided = NULL;
    /* all-relu / all-poly: the search's own baselines; random: the one seeded sampler of the IR */
    pinas_status bs = mode < 2 ? pinas_net_baseline_arch(ctx, net, arch, &decided) : pinas_net_random_arch(ctx, net, (uint64_t)seed, &decided);
    pinas_net_free(net);
    if (bs) return pinas_error_prefix(ctx, bs, "%s", space), cli_fail(ctx);
    net = decided;
    pinas_model *m;
    pinas_status s = pinas_model_random(ctx, net, (uint64_t)seed, &m);
    pinas_net_free(net);
    if (s) return cli_fail(ctx);
    s = pinas_model_meta_set_str(ctx, &m->meta.source, arch);
    if (!s) s = pinas_model_save(ctx, out, m);
    if (!s)
        printf("wrote %s: %s (%s, seed %ld), %lld ReLUs, %.3f GMACs, %.2f M params\n", out, pinas_net_name(m->net), arch, seed,
               (long long)pinas_net_relu_count(m->net), pinas_net_macs(m->net) / 1e9, pinas_net_params(m->net) / 1e6);
    pinas_model_free(m);
    return s ? cli_fail(ctx) : 0;
}
