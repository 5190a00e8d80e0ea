/* `pinas export`: write a searched candidate as a model dir for the 2PC runtime. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_nas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas export RUN_DIR (--candidate K | --best-under MS) --out MODEL_DIR\n"
           "                    [--hw P] [--net P] [--metric online|total] [--test-images N FILE]\n"
           "                    [--verify N] [--json]\n\n"
           "Writes candidate K of a finished search run, or the most accurate candidate whose predicted\n"
           "latency is at most MS milliseconds (ties: the faster), as a model dir: net.json (every slot\n"
           "decided), weights.safetensors, meta.json (normalisation, classes, fixed-point parameters,\n"
           "test accuracy, predicted latency per profile, the source run and candidate). The written dir\n"
           "is loaded back and checked before the command succeeds. Baselines are never picked.\n\n"
           "  --candidate K       export candidates/K\n"
           "  --best-under MS     pick by latency budget (milliseconds per inference)\n"
           "  --out MODEL_DIR     the model dir to write (created)\n"
           "  --hw P, --net P     profiles the budget is read under (default: the run's search.hw/net)\n"
           "  --metric M          online (default) or total (online + offline preprocessing)\n"
           "  --test-images N FILE  also write the first N test images of the run's dataset (normalised)\n"
           "                      to FILE as safetensors: x F32 [N,C,H,W], y I64 [N] (for pinas infer)\n"
           "  --verify N          run the exported model on the first N test images in plaintext and\n"
           "                      privately (dealer + two parties over loopback TCP, in this process) and\n"
           "                      print both accuracies; exit status 1 when they differ\n"
           "  --json              print the verification report as JSON\n");
}

int pinas_cmd_export(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *run = NULL, *out = NULL, *hw = NULL, *net = NULL, *metric = "online", *img_path = NULL;
    long k = -1, n_img = 0, n_verify = 0;
    int json = 0;
    double budget = NAN;
    for (int i = 1; i < argc; i++) {
        int has = i + 1 < argc;
        if (!strcmp(argv[i], "--candidate")) {
            if (!has || cli_parse_int("export", "--candidate", argv[++i], 0, 1 << 20, &k)) return has ? 2 : cli_usage_error("export", "--candidate needs K");
        } else if (!strcmp(argv[i], "--best-under")) {
            if (!has || cli_parse_double("export", "--best-under", argv[++i], 0, 1e12, &budget)) return has ? 2 : cli_usage_error("export", "--best-under needs MS");
        } else if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--hw") || !strcmp(argv[i], "--net") || !strcmp(argv[i], "--metric")) {
            if (!has) return cli_usage_error("export", "%s needs a value", argv[i]);
            const char **dst = !strcmp(argv[i], "--out") ? &out : !strcmp(argv[i], "--hw") ? &hw : !strcmp(argv[i], "--net") ? &net : &metric;
            *dst = argv[++i];
        } else if (!strcmp(argv[i], "--test-images")) {
            if (i + 2 >= argc) return cli_usage_error("export", "--test-images needs N and FILE");
            if (cli_parse_int("export", "--test-images", argv[++i], 1, 1000000, &n_img)) return 2;
            img_path = argv[++i];
        } else if (!strcmp(argv[i], "--verify")) {
            if (!has) return cli_usage_error("export", "--verify needs N");
            if (cli_parse_int("export", "--verify", argv[++i], 1, 100000, &n_verify)) return 2;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("export", "unknown option %s", argv[i]);
        } else if (!run) {
            run = argv[i];
        } else {
            return cli_usage_error("export", "unexpected argument %s", argv[i]);
        }
    }
    if (!run) return cli_usage_error("export", "missing RUN_DIR");
    if ((k >= 0) == !isnan(budget)) return cli_usage_error("export", "give exactly one of --candidate K and --best-under MS");
    if (!out) return cli_usage_error("export", "missing --out MODEL_DIR");
    if (strcmp(metric, "online") && strcmp(metric, "total")) return cli_usage_error("export", "--metric: expected online or total, got \"%s\"", metric);
    int chosen;
    if (pinas_nas_pick(ctx, run, (int)k, budget, hw, net, metric, &chosen)) return cli_fail(ctx);
    if (pinas_nas_export(ctx, run, chosen, out)) return cli_fail(ctx);
    char *mp = pinas_strfmt("%s/candidates/%d/metrics.json", run, chosen);
    cJSON *m = NULL;
    if (pinas_json_load(ctx, mp, &m) == PINAS_OK) {
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(m, "accuracy");
        printf("exported candidate %d of %s -> %s (test accuracy %.2f%%, %lld ReLUs)\n", chosen, run, out,
               cJSON_IsNumber(acc) ? 100 * acc->valuedouble : NAN, (long long)cJSON_GetObjectItemCaseSensitive(m, "relu_count")->valuedouble);
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "latency"))
        {
            printf("  predicted %-20s online %9.3f ms  offline %9.3f ms\n", e->string, cJSON_GetObjectItemCaseSensitive(e, "online_ms")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(e, "offline_ms")->valuedouble);
        }
    }
    cJSON_Delete(m);
    free(mp);
    if (img_path) {
        int64_t *labels = malloc((size_t)n_img * sizeof *labels);
        if (!labels || pinas_nas_write_test_images(ctx, run, (int)n_img, img_path, labels)) {
            free(labels);
            return cli_fail(ctx);
        }
        printf("wrote %ld test images -> %s (x F32 NCHW, y I64); labels:", n_img, img_path);
        for (long i = 0; i < n_img && i < 64; i++) printf(" %lld", (long long)labels[i]);
        printf("%s\n", n_img > 64 ? " ..." : "");
        free(labels);
    }
    if (n_verify > 0) {
        cJSON *rep = NULL;
        if (pinas_nas_verify_private(ctx, out, run, (int)n_verify, &rep)) return cli_fail(ctx);
        double pa = cJSON_GetObjectItemCaseSensitive(rep, "plaintext_accuracy")->valuedouble;
        double qa = cJSON_GetObjectItemCaseSensitive(rep, "private_accuracy")->valuedouble;
        if (json) {
            cli_print_json(rep);
        } else {
            printf("verified on %ld test images: private accuracy %.2f%%, plaintext accuracy %.2f%% (%s); argmax agreement %d/%ld;\n"
                   "  max abs logit error %.3g (frac_bits %d); private online %.3f s, offline %.3f s, %.0f online bytes, %.0f rounds\n",
                   n_verify, 100 * qa, 100 * pa, pa == qa ? "equal" : "DIFFERENT",
                   cJSON_GetObjectItemCaseSensitive(rep, "argmax_agreement")->valueint, n_verify,
                   cJSON_GetObjectItemCaseSensitive(rep, "max_abs_logit_error")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(rep, "frac_bits")->valueint, cJSON_GetObjectItemCaseSensitive(rep, "online_s")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(rep, "offline_s")->valuedouble, cJSON_GetObjectItemCaseSensitive(rep, "online_bytes")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(rep, "rounds")->valuedouble);
        }
        cJSON_Delete(rep);
        if (pa != qa) {
            fprintf(stderr, "pinas: error: %s: private and plaintext accuracy differ\n", out);
            return 1;
        }
    }
    return 0;
}
