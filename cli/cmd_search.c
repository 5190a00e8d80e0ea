/* `pinas search`: run (or resume) a hardware-aware architecture search from a config. */
#define _GNU_SOURCE
#include "cli.h"
#include "cli_dist.h"
#include "pinas_nas.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: pinas search CONFIG.json [--set key.path=value ...] [--sweep-index I] [--nproc N] [--dist-timeout S]\n"
           "       pinas search --resume RUN_DIR [--nproc N] [--dist-timeout S]\n\n"
           "Runs the hardware-aware search of a config into <out_dir>/<name>/:\n"
           "  1. weight warm-up of the supernet on the train split (search.warmup_epochs);\n"
           "  2. for every sweep value (search.lambdas for the additive loss CE + lambda*E[lat]/ref,\n"
           "     search.targets_ms for the multiplicative loss CE*max(1, E[lat]/target)^beta, or the literal\n"
           "     CE*(E[lat]/target)^beta with search.target_clamp=false): first-order\n"
           "     bi-level search, weights by SGD on the train split and alphas by Adam on the val split,\n"
           "     optionally with Gumbel-softmax (search.gumbel, tau from search.tau_start to tau_end);\n"
           "     each epoch logs CE, E[lat], alpha entropy and the argmax architecture's latency;\n"
           "     With search.method \"knapsack\" step 2 is instead: the all-ReLU net, the held-out loss\n"
           "     increase of every option (search.knapsack_candidates) in every act slot, and an exact\n"
           "     multiple-choice knapsack per budget of search.budgets_ms (see README, Knapsack search);\n"
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
           "                    config saved in it; the result equals an uninterrupted run's\n"
           "  --sweep-index I   run only sweep value I (0-based) of search.lambdas / search.targets_ms into\n"
           "                    <out_dir>/<name>-sweep<I>/ (e.g. one Slurm array task each); merge the runs\n"
           "                    with `pinas pareto RUN...`; the all-ReLU/all-poly baselines come with sweep 0\n"
           "  --nproc N         data-parallel over N local processes (this command re-run N times with\n"
           "                    RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT set)\n"
           "  --dist-timeout S  a rank that dies or stalls fails the others after S seconds, naming it\n"
           "                    (default: the config's dist.timeout_s, 300)\n\n"
           "Data-parallel (c10d: Gloo on CPU, NCCL with device cuda in a CUDA build): the rank and world\n"
           "come from RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT (torchrun style), else Slurm's\n"
           "SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, else Open MPI's OMPI_COMM_WORLD_*. train.batch_size is\n"
           "the global batch: each rank takes its shard, gradients of weights and alphas are averaged by\n"
           "all-reduce; batch norm uses per-rank batch statistics (DDP's default). The warm-up and the\n"
           "bi-level searches run on every rank; rank 0 alone writes the run dir and then fine-tunes the\n"
           "candidates. docs/scaling.md has Slurm, multi-node and mpirun examples.\n\n"
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

/* The search's data-parallel record: the launch environment, the device's backend, the timeout
 * (--dist-timeout, else the config's dist.timeout_s). */
static int search_dist(pinas_ctx *ctx, const char *path, const char *resume, const char *const *sets, int n_sets, double timeout,
                       pinas_dist *d)
{
    pinas_config *cfg = NULL;
    pinas_status s = resume ? pinas_nas_run_config(ctx, resume, &cfg) : pinas_config_load(ctx, path, sets, n_sets, &cfg);
    if (!s) s = pinas_dist_from_env(ctx, cfg->device, timeout > 0 ? timeout : cfg->dist.timeout_s, d);
    pinas_config_free(cfg);
    return s ? cli_fail(ctx) : 0;
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
    long nproc = 0, sweep = -1;
    double timeout = 0;
    for (int i = 1; i < argc; i++) {
        int rc = cli_dist_option("search", argc, argv, &i, &nproc, &timeout);
        if (rc < 0) continue;
        if (rc > 0) return rc;
        if (strcmp(argv[i], "--sweep-index") == 0) {
            if (i + 1 >= argc) return cli_usage_error("search", "--sweep-index needs I");
            if (cli_parse_int("search", "--sweep-index", argv[++i], 0, 1000000, &sweep)) return 2;
        } else if (strcmp(argv[i], "--set") == 0) {
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
    if (resume && sweep >= 0) return cli_usage_error("search", "--sweep-index goes with CONFIG (a sweep run resumes with --resume RUN_DIR alone)");
    if (nproc > 1) return cli_dist_launch(ctx, "search", argc, argv, (int)nproc, timeout);
    pinas_dist d;
    int rc = search_dist(ctx, path, resume, sets, n_sets, timeout, &d);
    if (rc) return rc;
    FILE *quiet = d.rank > 0 ? cli_quiet_rank(ctx) : NULL;
    hook h = {0, 0};
    const char *ka = getenv("PINAS_SEARCH_KILL_AFTER");
    if (ka && *ka) h.kill_after = strtol(ka, NULL, 10);
    pinas_search_opts o = {.progress = quiet ? quiet : stderr, .on_epoch = on_epoch, .user = &h, .dist = &d, .sweep_only = sweep >= 0,
                           .sweep_index = (int)sweep};
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
    if (quiet) fclose(quiet);
    if (s) {
        free(run_dir);
        return cli_fail(ctx);
    }
    if (d.rank > 0) { /* rank 0 reports the run */
        free(run_dir);
        return 0;
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
