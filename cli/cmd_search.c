/* `pinas search`: run (or resume) a hardware-aware architecture search from a config. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_nas.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: pinas search CONFIG.json [--set key.path=value ...]\n"
           "       pinas search --resume RUN_DIR\n\n"
           "Runs the hardware-aware search of a config into <out_dir>/<name>/:\n"
           "  1. weight warm-up of the supernet on the train split (search.warmup_epochs);\n"
           "  2. for every sweep value (search.lambdas for the additive loss CE + lambda*E[lat]/ref,\n"
           "     search.targets_ms for the multiplicative loss CE*max(1, E[lat]/target)^beta, or the literal\n"
           "     CE*(E[lat]/target)^beta with search.target_clamp=false): first-order\n"
           "     bi-level search, weights by SGD on the train split and alphas by Adam on the val split,\n"
           "     optionally with Gumbel-softmax (search.gumbel, tau from search.tau_start to tau_end);\n"
           "     each epoch logs CE, E[lat], alpha entropy and the argmax architecture's latency;\n"
           "  3. the argmax architecture, fine-tuned from the supernet or retrained from scratch\n"
           "     (finetune.mode, finetune.epochs), evaluated on the test split, priced under every\n"
           "     latency.hw x latency.net profile: candidates/<k>/ (model dir + metrics.json);\n"
           "  4. the all-ReLU and all-poly baselines the same way (search.baselines): baselines/<kind>/;\n"
           "     with finetune.distill the all-ReLU one is trained first and every other point distils from\n"
           "     it; naive baselines at each candidate's predicted latency (search.naive_first_k: relu in the\n"
           "     first k slots; search.naive_random: N random placements; over search.naive_bases: the\n"
           "     slot's cheapest candidate, e.g. identity, and/or poly/avgpool elsewhere):\n"
           "     baselines/first-k-*/, baselines/random-*/;\n"
           "  5. pareto.json, pareto.csv, pareto.svg, pareto.png, and the table printed, with every\n"
           "     candidate against the best naive point at <= its latency.\n"
           "Every point is trained by the same recipe; finetune.mode=scratch also gives them the same start.\n"
           "Also written: config.json (the effective config with the space inline, seed, git revision),\n"
           "lut.json (the latency table of the search profile), log.jsonl (one line per epoch and phase),\n"
           "checkpoint/ (every epoch).\n\n"
           "  --set key=value   override a config field (repeatable); `pinas config schema` lists them\n"
           "  --resume RUN_DIR  continue a killed or failed run from its last checkpoints, with the\n"
           "                    config saved in it; the result equals an uninterrupted run's\n\n"
           "Testing aid: with PINAS_SEARCH_KILL_AFTER=N in the environment, the process kills itself\n"
           "(SIGKILL) right after the N-th search epoch is checkpointed, to exercise --resume.\n");
}

typedef struct {
    long kill_after, seen;
} hook;

static int on_epoch(void *user, const char *phase, int epoch, const cJSON *line)
{
    (void)phase;
    (void)epoch;
    (void)line;
    hook *h = user;
    if (h->kill_after > 0 && ++h->seen >= h->kill_after) {
        fflush(NULL);
        kill(getpid(), SIGKILL);
    }
    return 0;
}

int pinas_cmd_search(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *path = NULL, *resume = NULL;
    const char *sets[64];
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0) {
            if (i + 1 >= argc) return cli_usage_error("search", "--set needs key.path=value");
            if (n_sets == 64) return cli_usage_error("search", "too many --set");
            sets[n_sets++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            if (n_sets == 64) return cli_usage_error("search", "too many --set");
            sets[n_sets++] = argv[i] + 6;
        } else if (strcmp(argv[i], "--resume") == 0) {
            if (i + 1 >= argc) return cli_usage_error("search", "--resume needs RUN_DIR");
            resume = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage_error("search", "unknown option %s", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_usage_error("search", "unexpected argument %s", argv[i]);
        }
    }
    if (resume && (path || n_sets)) return cli_usage_error("search", "--resume takes the run's own config; give no CONFIG or --set with it");
    if (!resume && !path) return cli_usage_error("search", "missing CONFIG.json (or --resume RUN_DIR)");
    hook h = {0, 0};
    const char *ka = getenv("PINAS_SEARCH_KILL_AFTER");
    if (ka && *ka) h.kill_after = strtol(ka, NULL, 10);
    pinas_search_opts o = {.progress = stderr, .on_epoch = on_epoch, .user = &h};
    char *run_dir = NULL;
    pinas_status s;
    if (resume) {
        run_dir = strdup(resume);
        s = pinas_nas_resume(ctx, resume, &o);
    } else {
        pinas_config *cfg;
        if (pinas_config_load(ctx, path, sets, n_sets, &cfg)) return cli_fail(ctx);
        s = pinas_nas_search(ctx, cfg, &o, &run_dir);
        pinas_config_free(cfg);
    }
    if (s) {
        free(run_dir);
        return cli_fail(ctx);
    }
    pinas_pareto *p = NULL;
    if (pinas_nas_run_pareto(ctx, run_dir, &p)) {
        free(run_dir);
        return cli_fail(ctx);
    }
    printf("\n");
    pinas_pareto_print_table(p, stdout);
    printf("\nrun dir: %s (candidates/, pareto.json, pareto.csv, pareto.svg, pareto.png, log.jsonl)\n", run_dir);
    pinas_pareto_free(p);
    free(run_dir);
    return 0;
}
