/* `pinas bench relu|poly|patch|conv|net`: benchmarks of the 2PC runtime over loopback (medians, JSON). */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_mpc.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long n, reps, cmp_bits, frac_bits, batch, threads;
    int json, drelu, eval_only, keygen;
    const char *model;
} bopts;

static int parse(const char *cmd, int argc, char **argv, bopts *o, int want_model)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            if (cli_parse_int(cmd, "--n", argv[++i], 1, 100000000L, &o->n)) return 2;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            if (cli_parse_int(cmd, "--reps", argv[++i], 1, 1000, &o->reps)) return 2;
        } else if (!strcmp(argv[i], "--cmp-bits") && i + 1 < argc) {
            if (cli_parse_int(cmd, "--cmp-bits", argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &o->cmp_bits)) return 2;
        } else if (!strcmp(argv[i], "--frac-bits") && i + 1 < argc) {
            if (cli_parse_int(cmd, "--frac-bits", argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &o->frac_bits)) return 2;
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if (cli_parse_int(cmd, "--batch", argv[++i], 1, 1 << 20, &o->batch)) return 2;
        } else if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if (!strcmp(argv[i], "--drelu")) {
            o->drelu = 1;
        } else if (!strcmp(argv[i], "--eval-only")) {
            o->eval_only = 1;
        } else if (!strcmp(argv[i], "--keygen")) {
            o->keygen = 1;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (cli_parse_int(cmd, "--threads", argv[++i], 1, 1024, &o->threads)) return 2;
        } else if (argv[i][0] != '-' && want_model && !o->model) {
            o->model = argv[i];
        } else {
            return cli_usage_error(cmd, "unknown argument %s", argv[i]);
        }
    }
    return 0;
}

/* `pinas bench relu --eval-only | --keygen`: the ReLU gate's key work alone, no network. */
static int bench_gate(pinas_ctx *ctx, const bopts *o)
{
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.cmp_bits = (int)o->cmp_bits;
    p.threads = (int)o->threads;
    pinas_mpc_gate_bench g;
    if (pinas_mpc_bench_gate(ctx, o->keygen, o->n, (int)o->reps, &p, &g)) return cli_fail(ctx);
    const char *mode = o->keygen ? "keygen" : "eval-only";
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "op", "relu");
        cJSON_AddStringToObject(j, "mode", mode);
        cJSON_AddNumberToObject(j, "n", (double)o->n);
        cJSON_AddNumberToObject(j, "threads", (double)o->threads);
        cJSON_AddNumberToObject(j, "reps", (double)o->reps);
        cJSON_AddNumberToObject(j, "cmp_bits", (double)o->cmp_bits);
        cJSON_AddNumberToObject(j, "median_s", g.median_s);
        cJSON_AddNumberToObject(j, "key_bytes", (double)g.key_bytes);
        cJSON_AddNumberToObject(j, "aes_blocks", (double)g.aes_blocks);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("relu %s x %ld (cmp_bits %ld, %ld thread(s)): %.4f s median of %ld (%.1f ns/gate); %llu B of "
               "preprocessing per gate per party; %.1f AES blocks/gate\n",
               mode, o->n, o->cmp_bits, o->threads, g.median_s, o->reps, g.median_s / (double)o->n * 1e9,
               (unsigned long long)g.key_bytes, (double)g.aes_blocks / (double)o->n);
    }
    return 0;
}

/* The elementwise activations: relu (or drelu), poly, patch_relu:2x2. */
static int bench_elementwise(pinas_ctx *ctx, const char *name, const char *kind, int argc, char **argv)
{
    bopts o = {.n = 1000000, .reps = 3, .cmp_bits = PINAS_CMP_BITS_DEFAULT, .frac_bits = PINAS_FRAC_BITS_DEFAULT,
               .threads = 1};
    if (cli_wants_help(argc, argv)) {
        printf("usage: pinas bench %s [--n N] [--reps R] [--cmp-bits B] [--frac-bits F] [--threads T]%s [--json]\n\n"
               "Runs N private %s elements between two threads (one core each) over loopback TCP, with fresh\n"
               "preprocessing per repeat, and prints the median online time, the bytes each party sends per\n"
               "element, the rounds, the AES blocks per element and the preprocessing size and time.\n\n"
               "  --n N          elements (default 1000000)\n"
               "  --reps R       repeats; figures are medians (default 3)\n"
               "  --cmp-bits B   comparison bits (default 64)\n"
               "  --frac-bits F  fixed-point fractional bits (default 16)\n"
               "  --threads T    threads of key generation and evaluation per party (default 1)\n%s"
               "  --json         print JSON\n",
               name, strcmp(name, "relu") ? "" : " [--drelu | --eval-only | --keygen]", kind,
               strcmp(name, "relu") ? ""
                                    : "  --drelu        the DReLU gate alone (sign bit, no multiplication)\n"
                                      "  --eval-only    one party's key evaluation and select of N gates, no network\n"
                                      "                 (JSON: {op, mode, n, threads, median_s, key_bytes})\n"
                                      "  --keygen       the dealer's key generation for N ReLU gates, no network\n");
        return 0;
    }
    int rc = parse(name, argc, argv, &o, 0);
    if (rc) return rc;
    if ((o.eval_only || o.keygen) && strcmp(name, "relu") == 0) return bench_gate(ctx, &o);
    if (o.eval_only || o.keygen) return cli_usage_error(name, "--eval-only and --keygen are for `pinas bench relu`");
    if (o.drelu) kind = "drelu";
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.cmp_bits = (int)o.cmp_bits;
    p.frac_bits = (int)o.frac_bits;
    p.threads = (int)o.threads;
    pinas_mpc_bench_result res;
    if (pinas_mpc_bench_op(ctx, kind, o.n, (int)o.reps, &p, &res)) return cli_fail(ctx);
    const pinas_mpc_cost c = res.counts;
    double med = res.online_s, off = res.offline_s;
    int64_t n = res.n; /* whole channels of the benchmark net */
    double dn = (double)n;
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "benchmark", kind);
        cJSON_AddNumberToObject(j, "n", dn);
        cJSON_AddNumberToObject(j, "reps", (double)o.reps);
        cJSON_AddNumberToObject(j, "cmp_bits", (double)o.cmp_bits);
        cJSON_AddNumberToObject(j, "median_online_s", med);
        cJSON_AddNumberToObject(j, "median_offline_s", off);
        cJSON_AddNumberToObject(j, "online_ns_per_element", med / dn * 1e9);
        cJSON_AddNumberToObject(j, "bytes_sent_per_element_server", c.online.bytes[0] / dn);
        cJSON_AddNumberToObject(j, "bytes_sent_per_element_client", c.online.bytes[1] / dn);
        cJSON_AddNumberToObject(j, "rounds", (double)c.online.rounds);
        cJSON_AddNumberToObject(j, "aes_blocks_per_element", c.online.aes_blocks[0] / dn);
        cJSON_AddNumberToObject(j, "prep_bytes_per_element_server", c.offline.bytes[0] / dn);
        cJSON_AddNumberToObject(j, "prep_bytes_per_element_client", c.offline.bytes[1] / dn);
        cJSON_AddItemToObject(j, "online", pinas_mpc_counts_json(&c.online));
        cJSON_AddItemToObject(j, "offline", pinas_mpc_counts_json(&c.offline));
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("%s x %lld (cmp_bits %ld): online %.3f s median of %ld (%.1f ns/element); sent %.2f B (server) %.2f B "
               "(client) per element in %llu round(s); %.1f AES blocks/element/party\n",
               kind, (long long)n, o.cmp_bits, med, o.reps, med / dn * 1e9, c.online.bytes[0] / dn, c.online.bytes[1] / dn,
               (unsigned long long)c.online.rounds, c.online.aes_blocks[0] / dn);
        printf("preprocessing: %.1f B (server) %.1f B (client) per element, %.1f MB per party; generated in %.3f s "
               "(median, includes the party's setup)\n",
               c.offline.bytes[0] / dn, c.offline.bytes[1] / dn, c.offline.bytes[0] / 1e6, off);
    }
    return 0;
}

int pinas_bench_relu(pinas_ctx *ctx, int argc, char **argv) { return bench_elementwise(ctx, "relu", "relu", argc, argv); }
int pinas_bench_poly(pinas_ctx *ctx, int argc, char **argv) { return bench_elementwise(ctx, "poly", "poly", argc, argv); }
int pinas_bench_patch(pinas_ctx *ctx, int argc, char **argv)
{
    return bench_elementwise(ctx, "patch", "patch_relu", argc, argv);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds of one GEMM kernel on random operands. */
static double time_kernel(pinas_gemm_kind kind, int m, int n, int k, int a_bits, int reps, const uint64_t *A,
                          const uint64_t *B, uint64_t *C)
{
    double t[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = pinas_now();
        pinas_ring_gemm_with(kind, m, n, k, A, k, a_bits, B, n, C, n, 0);
        t[r] = pinas_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    return t[reps / 2];
}

int pinas_bench_conv(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: pinas bench conv [--n MACS] [--reps R] [--json]\n\n"
               "Two parts. (1) The ring GEMM of a 3x3 conv, 64 -> 64 channels, on the shapes of ResNet-18's\n"
               "stages (M = 64..512, K = 9 Cin, N = H W): the tuned integer kernel (AVX-512 vpmullq where the\n"
               "CPU has it) against OpenBLAS dgemm on 16-bit limbs, for general 64-bit operands (10 limb\n"
               "products) and for small weights (|w| < 2^20: 4 limb products), in GMAC/s (medians). (2) A\n"
               "private 3x3 conv of about MACS ring multiply-adds (default 37748736 = 64x64 channels on 32x32)\n"
               "between two threads over loopback: median online time and counters.\n\n"
               "  --n MACS   size of the private conv (default 37748736)\n"
               "  --reps R   repeats (default 5)\n"
               "  --json     print JSON\n");
        return 0;
    }
    bopts o = {.n = 37748736, .reps = 5, .cmp_bits = PINAS_CMP_BITS_DEFAULT, .frac_bits = PINAS_FRAC_BITS_DEFAULT};
    int rc = parse("bench conv", argc, argv, &o, 0);
    if (rc) return rc;
    openblas_set_num_threads(1);
    const int shapes[][3] = {{64, 1024, 576}, {128, 256, 1152}, {256, 64, 2304}, {512, 16, 4608}};
    const char *names[] = {"int (general)", "dgemm limbs (general)", "int (small weights)", "dgemm limbs (small weights)"};
    cJSON *j = cJSON_CreateObject(), *ks = cJSON_AddArrayToObject(j, "gemm");
    pinas_prg *prg = NULL;
    if (pinas_prg_create_os(ctx, &prg)) {
        cJSON_Delete(j);
        return cli_fail(ctx);
    }
    if (!o.json) printf("%-28s %6s %6s %6s %10s\n", "ring GEMM kernel", "M", "N", "K", "GMAC/s");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        uint64_t *A = malloc(8 * (size_t)m * k), *As = malloc(8 * (size_t)m * k), *B = malloc(8 * (size_t)k * n),
                 *C = malloc(8 * (size_t)m * n);
        if (!A || !As || !B || !C) {
            free(A), free(As), free(B), free(C);
            cJSON_Delete(j);
            pinas_prg_free(prg);
            return cli_fail(ctx);
        }
        pinas_prg_bytes(prg, A, 8 * (size_t)m * k);
        pinas_prg_bytes(prg, B, 8 * (size_t)k * n);
        for (size_t q = 0; q < (size_t)m * k; q++) As[q] = (uint64_t)((int64_t)(A[q] % (1u << 20)) - (1 << 19));
        double t[4];
        t[0] = time_kernel(PINAS_GEMM_INT, m, n, k, 0, (int)o.reps, A, B, C);
        t[1] = time_kernel(PINAS_GEMM_DGEMM_LIMBS, m, n, k, 0, (int)o.reps, A, B, C);
        t[2] = time_kernel(PINAS_GEMM_INT, m, n, k, 20, (int)o.reps, As, B, C);
        t[3] = time_kernel(PINAS_GEMM_DGEMM_SMALL_A, m, n, k, 20, (int)o.reps, As, B, C);
        double macs = (double)m * n * k;
        for (int q = 0; q < 4; q++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "kernel", names[q]);
            cJSON_AddNumberToObject(r, "M", m);
            cJSON_AddNumberToObject(r, "N", n);
            cJSON_AddNumberToObject(r, "K", k);
            cJSON_AddNumberToObject(r, "median_s", t[q]);
            cJSON_AddNumberToObject(r, "gmacs_per_s", macs / t[q] / 1e9);
            cJSON_AddItemToArray(ks, r);
            if (!o.json) printf("%-28s %6d %6d %6d %10.2f\n", names[q], m, n, k, macs / t[q] / 1e9);
        }
        free(A), free(As), free(B), free(C);
    }
    pinas_prg_free(prg);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_bench_result res;
    if (pinas_mpc_bench_op(ctx, "conv", o.n, (int)o.reps, &p, &res)) {
        cJSON_Delete(j);
        return cli_fail(ctx);
    }
    const pinas_mpc_cost c = res.counts;
    double med = res.online_s, off = res.offline_s;
    cJSON *pc = cJSON_AddObjectToObject(j, "private_conv");
    cJSON_AddNumberToObject(pc, "ring_macs", (double)c.online.ring_macs[0]);
    cJSON_AddNumberToObject(pc, "median_online_s", med);
    cJSON_AddNumberToObject(pc, "median_offline_s", off);
    cJSON_AddItemToObject(pc, "online", pinas_mpc_counts_json(&c.online));
    cJSON_AddItemToObject(pc, "offline", pinas_mpc_counts_json(&c.offline));
    cJSON_AddItemToObject(pc, "setup", pinas_mpc_counts_json(&c.setup));
    if (o.json)
        cli_print_json(j);
    else
        printf("private conv, %.1f M ring MACs: online %.4f s median (client sends %.2f MB, 1 round); "
               "preprocessing %.1f MB server, %.1f MB client, %.3f s; masked weights %.2f MB\n",
               c.online.ring_macs[0] / 1e6, med, c.online.bytes[1] / 1e6, c.offline.bytes[0] / 1e6,
               c.offline.bytes[1] / 1e6, off, c.setup.bytes[0] / 1e6);
    cJSON_Delete(j);
    return 0;
}

/* ResNet-18 for CIFAR (3x3 stem, 32x32, 10 classes) with every act slot on `act`, random weights. */
static pinas_status resnet18_cifar(pinas_ctx *ctx, pinas_cand_kind act, pinas_model **out)
{
    const char *acts[] = {"relu", "poly"};
    pinas_space_opts o = {.backbone = "resnet", .depth = 18, .stem = "cifar", .in_c = 3, .in_h = 32, .in_w = 32,
                          .num_classes = 10, .act = acts, .n_act = 2};
    pinas_net *net = NULL;
    pinas_status s = pinas_net_generate(ctx, &o, &net);
    for (int i = 0; !s && i < pinas_net_n_nodes(net); i++) {
        const pinas_node *n = pinas_net_node(net, i);
        if (pinas_node_is_open(n)) {
            int c = pinas_node_find_cand(n, n->op == PINAS_OP_ACT ? act : PINAS_CAND_MAXPOOL);
            s = pinas_net_decide(ctx, net, i, c < 0 ? 0 : c);
        }
    }
    if (!s) s = pinas_model_random(ctx, net, 1, out);
    pinas_net_free(net);
    return s;
}

/* Runs one model reps times; fills a JSON object (with the last report) or prints a summary. */
static pinas_status bench_model(pinas_ctx *ctx, const pinas_model *m, const char *name, const bopts *o, cJSON *arr)
{
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_params_from_meta(&m->meta, &p);
    pinas_status s = PINAS_OK;
    if (o->cmp_bits) p.cmp_bits = (int)o->cmp_bits;
    if (o->frac_bits) p.frac_bits = (int)o->frac_bits;
    const pinas_node *in = pinas_net_node(m->net, 0);
    size_t nin = (size_t)o->batch * in->c * in->h * in->w;
    int nc = pinas_net_num_classes(m->net);
    float *x = malloc(sizeof(float) * nin), *lg = malloc(sizeof(float) * (size_t)o->batch * nc);
    double *on = calloc((size_t)o->reps, sizeof *on), *off = calloc((size_t)o->reps, sizeof *off);
    pinas_mpc_report *last = NULL;
    if (!x || !lg || !on || !off) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_rng rng = {99};
    if (x) pinas_rng_fill_uniform(&rng, x, nin, -1.0, 1.0);
    for (long r = 0; r < o->reps && !s; r++) {
        pinas_mpc_report *rep = NULL;
        s = pinas_mpc_infer_loopback(ctx, m, x, (int)o->batch, &p, NULL, lg, &rep);
        if (!s) {
            on[r] = rep->online_s;
            off[r] = rep->offline_s;
            pinas_mpc_report_free(last);
            last = rep;
        }
    }
    if (!s) {
        qsort(on, (size_t)o->reps, sizeof *on, cmp_d);
        qsort(off, (size_t)o->reps, sizeof *off, cmp_d);
        double mon = on[o->reps / 2], moff = off[o->reps / 2];
        const pinas_mpc_cost *t = &last->totals;
        if (o->json) {
            cJSON *j = pinas_mpc_report_json(last);
            cJSON_AddStringToObject(j, "model", name);
            cJSON_AddNumberToObject(j, "relu_count", (double)pinas_net_relu_count(m->net));
            cJSON_AddNumberToObject(j, "macs", (double)pinas_net_macs(m->net));
            cJSON_AddNumberToObject(j, "batch", (double)o->batch);
            cJSON_AddNumberToObject(j, "reps", (double)o->reps);
            cJSON_AddNumberToObject(j, "median_online_s", mon);
            cJSON_AddNumberToObject(j, "median_offline_s", moff);
            cJSON_AddItemToArray(arr, j);
        } else {
            printf("%s, batch %ld: online %.3f s, offline (dealer + setup) %.3f s (medians of %ld)\n", name, o->batch, mon,
                   moff, o->reps);
            printf("  online: server sent %.2f MB, client %.2f MB, %llu rounds; preprocessing %.1f MB server, %.1f MB "
                   "client; masked weights %.1f MB\n",
                   t->online.bytes[0] / 1e6, t->online.bytes[1] / 1e6, (unsigned long long)t->online.rounds,
                   t->offline.bytes[0] / 1e6, t->offline.bytes[1] / 1e6, t->setup.bytes[0] / 1e6);
        }
    }
    pinas_mpc_report_free(last);
    free(x), free(lg), free(on), free(off);
    return s;
}

int pinas_bench_net(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: pinas bench net [MODEL_DIR] [--batch N] [--reps R] [--cmp-bits B] [--frac-bits F] [--json]\n\n"
               "Private inference of a whole model end to end, dealer + two threads (one core each) over loopback,\n"
               "random inputs, fresh preprocessing per repeat. Prints the median online time, the median\n"
               "offline time (dealer + setup), bytes per party, rounds and preprocessing size. Without\n"
               "MODEL_DIR: ResNet-18 for CIFAR (32x32), all-ReLU and all-poly, with random weights.\n\n"
               "  --batch N      samples per inference (default 1)\n"
               "  --reps R       repeats (default 3)\n"
               "  --cmp-bits B   comparison bits (default: meta.json, else 64)\n"
               "  --frac-bits F  fractional bits (default: meta.json, else 16)\n"
               "  --json         print {\"benchmark\": \"net\", \"models\": [report with median_online_s, ...]}\n");
        return 0;
    }
    bopts o = {.reps = 3, .batch = 1};
    int rc = parse("bench net", argc, argv, &o, 1);
    if (rc) return rc;
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "models");
    cJSON_AddStringToObject(j, "benchmark", "net");
    pinas_status s = PINAS_OK;
    if (o.model) {
        pinas_model *m = NULL;
        s = pinas_model_load(ctx, o.model, &m);
        if (!s) s = bench_model(ctx, m, o.model, &o, arr);
        pinas_model_free(m);
    } else {
        const pinas_cand_kind kinds[] = {PINAS_CAND_RELU, PINAS_CAND_POLY};
        const char *names[] = {"resnet18-cifar all-relu (random weights)", "resnet18-cifar all-poly (random weights)"};
        for (int k = 0; k < 2 && !s; k++) {
            pinas_model *m = NULL;
            s = resnet18_cifar(ctx, kinds[k], &m);
            if (!s) s = bench_model(ctx, m, names[k], &o, arr);
            pinas_model_free(m);
        }
    }
    if (!s && o.json) cli_print_json(j);
    cJSON_Delete(j);
    return s ? cli_fail(ctx) : 0;
}
