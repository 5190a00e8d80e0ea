/* `pinas train`: train a decided architecture from a run config and write a model dir. */
#include "cli.h"
#include "cli_dist.h"
#include "pinas_train.h"

#include <string.h>

static void help(void)
{
    printf("usage: pinas train CONFIG.json [--arch NET.json] [--out MODEL_DIR] [--resume] [--set key.path=value ...] [--json]\n"
           "                   [--nproc N] [--dist-timeout S]\n\n"
           "Trains a decided architecture on the config's dataset (data.*) with SGD + the config's schedule\n"
           "(train.*), evaluating on the test split after every epoch, and writes a model dir for the\n"
           "2PC runtime: net.json, weights.safetensors, meta.json (normalisation, test accuracy, the\n"
           "training options and the effective config).\n\n"
           "  CONFIG.json        run config (`pinas config schema` lists the fields; defaults apply)\n"
           "  --arch NET.json    the architecture to train: a pinas-net/1 file with every slot decided\n"
           "                     (e.g. net.json of a search candidate). Default: the config's `space`, which\n"
           "                     must then have no open slot.\n"
           "  --out MODEL_DIR    where the model dir goes (default: <out_dir>/<name>/model)\n"
           "  --resume           continue from the run dir's checkpoint (bit-identical on CPU)\n"
           "  --set k=v          override a config field (repeatable), e.g. --set train.epochs=3\n"
           "  --json             print the result as JSON on stdout\n"
           "  --nproc N          data-parallel over N local processes (c10d Gloo; NCCL with device cuda)\n"
           "  --dist-timeout S   a rank that dies or stalls fails the others after S s, naming it\n"
           "                     (default: the config's dist.timeout_s)\n\n"
           "Data-parallel: the rank and world come from RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT,\n"
           "Slurm's SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID or Open MPI's OMPI_COMM_WORLD_*; train.batch_size\n"
           "is the global batch (each rank takes its shard; gradients averaged by all-reduce; batch norm with\n"
           "per-rank statistics, rank 0's running statistics saved); rank 0 alone writes the run dir and the\n"
           "model dir. See docs/scaling.md.\n\n"
           "The run dir <out_dir>/<name>/ receives config.json (effective config + git revision),\n"
           "log.jsonl (one line per epoch: lr, train loss/accuracy, test loss/accuracy, seconds) and\n"
           "checkpoint/train.safetensors (written atomically after every epoch).\n"
           "Knowledge distillation: --set train.teacher=MODEL_DIR (weights train.kd_alpha, temperature\n"
           "train.kd_temperature). Device and threads come from the config's `device` and `threads`.\n");
}

int pinas_cmd_train(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *cfg_path = NULL, *arch_path = NULL, *out = NULL, *sets[64];
    int n_sets = 0, resume = 0, json = 0;
    long nproc = 0;
    double timeout = 0;
    for (int i = 1; i < argc; i++) {
        int rc = cli_dist_option("train", argc, argv, &i, &nproc, &timeout);
        if (rc < 0) continue;
        if (rc > 0) return rc;
        if (!strcmp(argv[i], "--arch")) {
            if (i + 1 >= argc) return cli_usage_error("train", "--arch needs NET.json");
            arch_path = argv[++i];
        } else if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) return cli_usage_error("train", "--out needs MODEL_DIR");
            out = argv[++i];
        } else if (!strcmp(argv[i], "--set") || !strncmp(argv[i], "--set=", 6)) {
            const char *v = argv[i][5] == '=' ? argv[i] + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) return cli_usage_error("train", "--set needs key.path=value");
            if (n_sets == 64) return cli_usage_error("train", "too many --set");
            sets[n_sets++] = v;
        } else if (!strcmp(argv[i], "--resume")) {
            resume = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("train", "unknown option %s", argv[i]);
        } else if (!cfg_path) {
            cfg_path = argv[i];
        } else {
            return cli_usage_error("train", "unexpected argument %s", argv[i]);
        }
    }
    if (!cfg_path) return cli_usage_error("train", "missing CONFIG.json");
    if (nproc > 1) return cli_dist_launch(ctx, "train", argc, argv, (int)nproc, timeout);

    pinas_config *cfg = NULL;
    pinas_train_run_result res = {0};
    pinas_dist d;
    pinas_train_run_opts o = {.config_path = cfg_path, .arch_path = arch_path, .model_dir = out, .resume = resume, .progress = stderr, .dist = &d};
    if (pinas_config_load(ctx, cfg_path, sets, n_sets, &cfg) ||
        pinas_dist_from_env(ctx, cfg->device, timeout > 0 ? timeout : cfg->dist.timeout_s, &d)) {
        pinas_config_free(cfg);
        return cli_fail(ctx);
    }
    FILE *quiet = d.rank > 0 ? cli_quiet_rank(ctx) : NULL;
    if (quiet) o.progress = quiet;
    pinas_status s = pinas_train_run(ctx, cfg, &o, &res);
    if (quiet) fclose(quiet);
    if (s) {
        pinas_config_free(cfg);
        return cli_fail(ctx);
    }
    if (d.rank > 0) { /* rank 0 reports */
        pinas_train_run_result_free(&res);
        pinas_config_free(cfg);
        return 0;
    }
    if (json) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "model_dir", res.model_dir);
        cJSON_AddStringToObject(r, "run_dir", res.run_dir);
        cJSON_AddStringToObject(r, "net", res.net);
        cJSON_AddNumberToObject(r, "accuracy", res.accuracy);
        cJSON_AddNumberToObject(r, "epochs", res.epochs);
        cli_print_json(r);
        cJSON_Delete(r);
    } else {
        printf("trained %s: test accuracy %.2f%%\nmodel dir: %s\nrun dir:   %s\n", res.net, 100 * res.accuracy, res.model_dir, res.run_dir);
    }
    pinas_train_run_result_free(&res);
    pinas_config_free(cfg);
    return 0;
}
