/* `pinas train`: train a decided architecture from a run config and write a model dir. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_train.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas train CONFIG.json [--arch NET.json] [--out MODEL_DIR] [--resume] [--set key.path=value ...] [--json]\n\n"
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
           "  --json             print the result as JSON on stdout\n\n"
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
    for (int i = 1; i < argc; i++) {
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

    pinas_config *cfg = NULL;
    pinas_net *arch = NULL;
    pinas_dataset *d = NULL;
    pinas_model *m = NULL;
    cJSON *extra = NULL;
    char *run_dir = NULL, *model_dir = NULL;
    int rc = 1;
    if (pinas_config_load(ctx, cfg_path, sets, n_sets, &cfg)) goto done;
    pinas_ctx_set_seed(ctx, (uint64_t)pinas_config_int(cfg, "seed"));
    pinas_ctx_set_threads(ctx, (int)pinas_config_int(cfg, "threads"));
    pinas_ctx_set_device(ctx, pinas_config_str(cfg, "device"));
    if (pinas_torch_setup(ctx)) goto done;
    if (arch_path ? pinas_net_load(ctx, arch_path, &arch) : pinas_net_load_config_space(ctx, cfg, &arch)) goto done;
    if (pinas_net_n_open(arch)) {
        pinas_error(ctx, PINAS_EINVAL,
                    "%s: %s has %d open slots; pinas train needs a decided architecture (pass --arch NET.json, e.g. a search "
                    "candidate's net.json, or decide the slots with \"choices\")",
                    arch_path ? arch_path : cfg_path, pinas_net_name(arch), pinas_net_n_open(arch));
        goto done;
    }
    pinas_data_opts dopts;
    pinas_data_opts_from_config(cfg, &dopts);
    if (pinas_dataset_load(ctx, &dopts, &d)) goto done;

    run_dir = pinas_path_join(pinas_config_str(cfg, "out_dir"), pinas_config_str(cfg, "name"));
    model_dir = out ? pinas_strdup(out) : pinas_path_join(run_dir, "model");
    if (!run_dir || !model_dir) {
        pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        goto done;
    }
    if (pinas_mkdir_p(ctx, run_dir)) goto done;
    char *cp = pinas_path_join(run_dir, "config.json");
    cJSON *cj = cJSON_Duplicate(pinas_config_json(cfg), 1);
    cJSON_AddStringToObject(cj, "git_rev", PINAS_GIT_REV);
    pinas_status s = cp ? pinas_json_save(ctx, cp, cj) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_Delete(cj);
    free(cp);
    if (s) goto done;

    pinas_train_opts o;
    pinas_train_opts_from_config(cfg, &o);
    o.run_dir = run_dir;
    o.resume = resume;
    o.progress = stderr;
    extra = cJSON_CreateObject();
    cJSON *mpc = cJSON_AddObjectToObject(extra, "mpc");
    cJSON_AddNumberToObject(mpc, "frac_bits", (double)pinas_config_int(cfg, "mpc.frac_bits"));
    cJSON_AddNumberToObject(mpc, "cmp_bits", (double)pinas_config_int(cfg, "mpc.cmp_bits"));
    char *src = pinas_strfmt("pinas train %s%s%s (git %s)", cfg_path, arch_path ? " --arch " : "", arch_path ? arch_path : "", PINAS_GIT_REV);
    cJSON_AddStringToObject(extra, "source", src ? src : "pinas train");
    free(src);
    cJSON_AddItemToObject(extra, "config", cJSON_Duplicate(pinas_config_json(cfg), 1));
    pinas_info(ctx, "training %s on %s for %d epochs (run dir %s)", pinas_net_name(arch), dopts.dataset, o.epochs, run_dir);
    if (pinas_train_model(ctx, arch, NULL, d, &o, extra, &m)) goto done;
    if (pinas_model_save(ctx, model_dir, m)) goto done;
    double acc = cJSON_GetObjectItem(m->meta, "accuracy")->valuedouble;
    if (json) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "model_dir", model_dir);
        cJSON_AddStringToObject(r, "run_dir", run_dir);
        cJSON_AddStringToObject(r, "net", pinas_net_name(arch));
        cJSON_AddNumberToObject(r, "accuracy", acc);
        cJSON_AddNumberToObject(r, "epochs", o.epochs);
        cli_print_json(r);
        cJSON_Delete(r);
    } else {
        printf("trained %s: test accuracy %.2f%%\nmodel dir: %s\nrun dir:   %s\n", pinas_net_name(arch), 100 * acc, model_dir, run_dir);
    }
    rc = 0;
done:
    if (rc) cli_fail(ctx);
    pinas_model_free(m);
    cJSON_Delete(extra);
    pinas_dataset_free(d);
    pinas_net_free(arch);
    pinas_config_free(cfg);
    free(run_dir);
    free(model_dir);
    return rc;
}
