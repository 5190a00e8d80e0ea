/* `pinas export`: write a searched candidate as a model dir for the 2PC runtime. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_bitcut.h"
#include "pinas_nas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas export RUN_DIR (--candidate K | --best-under MS) --out MODEL_DIR\n"
           "                    [--hw P] [--net P] [--metric online|total] [--test-images N FILE]\n"
           "                    [--bit-cut] [--verify N] [--json]\n\n"
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
           "  --bit-cut           choose per-slot comparison windows (as export.bit_cut = true in the run's\n"
           "                      config, which also turns it on): measured on the validation split,\n"
           "                      written to meta.json mpc.layers, predicted latency re-priced; prints\n"
           "                      the per-slot table (export.bit_cut_eps, _margin_bits, _images)\n"
           "  --verify N          run the exported model on the first N test images in plaintext and\n"
           "                      privately (dealer + two parties over loopback TCP, in this process) and\n"
           "                      print both accuracies; exit status 1 when they differ (not with\n"
           "                      bit-cut windows, whose error rate allows a difference)\n"
           "  --json              print the verification report as JSON (with \"bit_cut\": the per-slot table,\n"
           "                      pinas_bitcut_result_json, when bit cutting ran)\n");
}

static void print_bitcut(const pinas_bitcut_result *r)
{
    printf("bit cutting on %d validation images (eps %g, margin %d bits, frac_bits %d):\n", r->images, r->eps, r->margin_bits,
           r->frac_bits);
    printf("  %-24s %-16s %12s %12s %6s %9s %9s %10s\n", "slot", "candidate", "min", "max", "bits", "cmp_high", "cmp_bits", "error");
    for (int j = 0; j < r->n_slots; j++) {
        const pinas_bitcut_slot *s = &r->slots[j];
        printf("  %-24s %-16s %12.4g %12.4g %6d %9d %9d %9.3f%%\n", s->id, s->cand, s->min, s->max, s->range_bits, s->cmp_high,
               s->cmp_bits, 100 * s->error_rate);
    }
}

/* export.bit_cut of the run's config, or forced by --bit-cut: cuts into *r (n_slots 0 when off),
 * prints the table (unless json), reloads *m. */
static pinas_status bit_cut(pinas_ctx *ctx, const char *run, const char *out, int force, int json, pinas_model **m,
                            pinas_bitcut_result *r)
{
    pinas_config *cfg = NULL;
    memset(r, 0, sizeof *r);
    pinas_status s = pinas_nas_run_config(ctx, run, &cfg);
    if (!s && (force || cfg->export_.bit_cut)) {
        s = pinas_bitcut_model_dir(ctx, out, run, &cfg->export_, r);
        if (!s && !json) print_bitcut(r);
        pinas_model_free(*m);
        *m = NULL;
        if (!s) s = pinas_model_load(ctx, out, m);
    }
    pinas_config_free(cfg);
    return s;
}

int pinas_cmd_export(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *run = NULL, *out = NULL, *hw = NULL, *net = NULL, *metric = "online", *img_path = NULL;
    long k = -1, n_img = 0, n_verify = 0;
    int json = 0, force_cut = 0;
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
        } else if (!strcmp(argv[i], "--bit-cut")) {
            force_cut = 1;
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
    pinas_model *m = NULL;
    if (pinas_nas_export(ctx, run, chosen, out, &m)) return cli_fail(ctx);
    pinas_bitcut_result cut;
    if (bit_cut(ctx, run, out, force_cut, json, &m, &cut)) {
        pinas_model_free(m);
        return cli_fail(ctx);
    }
    cJSON *cut_json = json && cut.images > 0 ? pinas_bitcut_result_json(&cut) : NULL;
    pinas_bitcut_result_free(&cut);
    printf("exported candidate %d of %s -> %s (test accuracy %.2f%%, %lld ReLUs)\n", chosen, run, out, 100 * m->meta.accuracy,
           (long long)pinas_net_relu_count(m->net));
    for (int i = 0; i < m->meta.n_latency; i++) {
        const pinas_meta_latency *e = &m->meta.latency[i];
        printf("  predicted %-20s online %9.3f ms  offline %9.3f ms\n", e->profile, e->online_ms, e->offline_ms);
    }
    pinas_model_free(m);
    if (img_path) {
        int64_t *labels = malloc((size_t)n_img * sizeof *labels);
        if (!labels || pinas_nas_write_test_images(ctx, run, (int)n_img, img_path, labels)) {
            free(labels);
            cJSON_Delete(cut_json);
            return cli_fail(ctx);
        }
        printf("wrote %ld test images -> %s (x F32 NCHW, y I64); labels:", n_img, img_path);
        for (long i = 0; i < n_img && i < 64; i++) printf(" %lld", (long long)labels[i]);
        printf("%s\n", n_img > 64 ? " ..." : "");
        free(labels);
    }
    if (n_verify > 0) {
        pinas_nas_verify_report rep;
        if (pinas_nas_verify_private(ctx, out, run, (int)n_verify, &rep)) {
            cJSON_Delete(cut_json);
            return cli_fail(ctx);
        }
        if (json) {
            cJSON *j = pinas_nas_verify_report_json(&rep);
            if (j && cut_json) cJSON_AddItemToObject(j, "bit_cut", cut_json);
            cut_json = NULL;
            if (j) cli_print_json(j);
            cJSON_Delete(j);
        } else {
            printf("verified on %ld test images: private accuracy %.2f%%, plaintext accuracy %.2f%% (%s); argmax agreement %d/%ld;\n"
                   "  max abs logit error %.3g (frac_bits %d); private online %.3f s, offline %.3f s, %.0f online bytes, %.0f rounds\n",
                   n_verify, 100 * rep.private_accuracy, 100 * rep.plaintext_accuracy,
                   rep.plaintext_accuracy == rep.private_accuracy ? "equal" : "DIFFERENT", rep.argmax_agreement, n_verify,
                   rep.max_abs_logit_error, rep.frac_bits, rep.online_s, rep.offline_s, (double)rep.online_bytes, (double)rep.rounds);
            if (rep.layer_windows)
                printf("  with the cut comparison windows of %d slots (meta.json mpc.layers): a difference up to their error\n"
                       "  rate is expected and not an error\n", rep.layer_windows);
        }
        if (rep.plaintext_accuracy != rep.private_accuracy && !rep.layer_windows) {
            fprintf(stderr, "pinas: error: %s: private and plaintext accuracy differ\n", out);
            return 1;
        }
    }
    if (cut_json) cli_print_json(cut_json); /* --json without --verify: the bit cutting alone */
    cJSON_Delete(cut_json);
    return 0;
}
