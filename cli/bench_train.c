/* `pinas bench train`: median time of one training step (forward + backward + SGD update) of a supernet and of a decided net. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_train.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas bench train --space SPACE.json --batch B [--steps N] [--warmup W] [--threads T] [--device D] [--json]\n\n"
           "Times training steps (forward, cross-entropy, backward, SGD update with momentum 0.9 and weight\n"
           "decay) on random inputs of the space's shape:\n"
           "  supernet: the space as given, every open slot a softmax(alpha) mixture (alphas get gradients)\n"
           "  decided:  the same net with every open act slot on relu and every open pool slot on maxpool\n"
           "            (the first candidate where those are absent)\n"
           "Reports the median, minimum and mean milliseconds per step over N timed steps after W warm-up steps.\n\n"
           "  --space SPACE.json  a pinas-net/1 file (explicit or compact)\n"
           "  --batch B           mini-batch size\n"
           "  --steps N           timed steps (default 20)\n"
           "  --warmup W          untimed steps first (default 3)\n"
           "  --threads T         libtorch intra-op threads (default 1; 0 = libtorch's default)\n"
           "  --device D          cpu (default) or cuda\n"
           "  --json              JSON on stdout\n\n"
           "train/bench_train_pytorch.py times the same networks in eager PyTorch for comparison.\n");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double median_ms, min_ms, mean_ms;
    int open;
    int64_t params;
} bench_result;

static pinas_status time_net(pinas_ctx *ctx, const pinas_net *net, int batch, int steps, int warmup, bench_result *r)
{
    pinas_tnet *t = NULL;
    pinas_optim *o = NULL;
    pt_tensor *x = NULL, *y = NULL;
    double *ms = calloc((size_t)steps, sizeof(double));
    const pinas_node *in = pinas_net_node(net, 0);
    size_t n = (size_t)batch * in->c * in->h * in->w;
    float *xb = malloc(n * sizeof(float));
    int64_t *yb = malloc((size_t)batch * sizeof(int64_t));
    pinas_status s = (!ms || !xb || !yb) ? pinas_error(ctx, PINAS_ENOMEM, "out of memory") : PINAS_OK;
    if (!s) {
        pinas_rng rng = {12345};
        pinas_rng_fill_uniform(&rng, xb, n, -1.0, 1.0);
        for (int i = 0; i < batch; i++) yb[i] = i % pinas_net_num_classes(net);
        int64_t xs[4] = {batch, in->c, in->h, in->w}, ys[1] = {batch};
        if (pt_from_f32(xb, 4, xs, &x) || pt_from_i64(yb, 1, ys, &y)) s = pinas_torch_error(ctx, "bench input");
    }
    if (!s && strcmp(pinas_ctx_device(ctx), "cpu") != 0) {
        pt_tensor *dx = NULL, *dy = NULL;
        if (pt_to_device(x, pinas_ctx_device(ctx), &dx) || pt_to_device(y, pinas_ctx_device(ctx), &dy)) s = pinas_torch_error(ctx, "bench input");
        pt_free(x);
        pt_free(y);
        x = dx;
        y = dy;
    }
    if (!s) s = pinas_tnet_create(ctx, net, 1, &t);
    pinas_sgd_opts so = {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4};
    if (!s) s = pinas_optim_sgd(ctx, pinas_tnet_weights(t), pinas_tnet_n_weights(t), &so, &o);
    for (int k = 0; k < warmup + steps && !s; k++) {
        pt_tensor *lg = NULL, *loss = NULL;
        double t0 = pinas_now();
        s = pinas_tnet_forward(ctx, t, x, 1, &lg);
        if (!s) s = pinas_loss_ce(ctx, lg, y, 0, &loss);
        if (!s) s = pinas_optim_zero_grad(ctx, o);
        for (int a = 0; a < pinas_tnet_n_alphas(t) && !s; a++)
            if (pt_zero_grad(pinas_tnet_alpha(t, a, NULL))) s = pinas_torch_error(ctx, "alpha");
        if (!s && pt_backward(loss)) s = pinas_torch_error(ctx, "backward");
        if (!s) s = pinas_optim_step(ctx, o);
        if (!s && pt_cuda_synchronize()) s = pinas_torch_error(ctx, "synchronize");
        if (k >= warmup) ms[k - warmup] = (pinas_now() - t0) * 1e3;
        pt_free(lg);
        pt_free(loss);
    }
    if (!s) {
        double sum = 0;
        for (int k = 0; k < steps; k++) sum += ms[k];
        qsort(ms, (size_t)steps, sizeof ms[0], cmp_double);
        r->median_ms = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
        r->min_ms = ms[0];
        r->mean_ms = sum / steps;
        r->open = pinas_net_n_open(net);
        r->params = pinas_net_params(net);
    }
    pinas_optim_free(o);
    pinas_tnet_free(t);
    pt_free(x);
    pt_free(y);
    free(ms);
    free(xb);
    free(yb);
    return s;
}

static cJSON *result_json(const bench_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "median_ms", r->median_ms);
    cJSON_AddNumberToObject(o, "min_ms", r->min_ms);
    cJSON_AddNumberToObject(o, "mean_ms", r->mean_ms);
    cJSON_AddNumberToObject(o, "open_slots", r->open);
    cJSON_AddNumberToObject(o, "params", (double)r->params);
    return o;
}

int pinas_bench_train(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *space = NULL, *device = "cpu";
    long batch = 0, steps = 20, warmup = 3, threads = 1;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--space") && v) space = argv[++i];
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--batch") && v) {
            if (cli_parse_int("bench train", a, argv[++i], 1, 1 << 20, &batch)) return 2;
        } else if (!strcmp(a, "--steps") && v) {
            if (cli_parse_int("bench train", a, argv[++i], 1, 1000000, &steps)) return 2;
        } else if (!strcmp(a, "--warmup") && v) {
            if (cli_parse_int("bench train", a, argv[++i], 0, 1000000, &warmup)) return 2;
        } else if (!strcmp(a, "--threads") && v) {
            if (cli_parse_int("bench train", a, argv[++i], 0, 1024, &threads)) return 2;
        } else return cli_usage_error("bench train", "unknown option or missing value: %s", a);
    }
    if (!space) return cli_usage_error("bench train", "missing --space SPACE.json");
    if (!batch) return cli_usage_error("bench train", "missing --batch B");
    pinas_ctx_set_threads(ctx, (int)threads);
    pinas_ctx_set_device(ctx, device);
    if (pinas_torch_setup(ctx)) return cli_fail(ctx);
    pinas_net *sup = NULL, *dec = NULL;
    if (pinas_net_load(ctx, space, &sup)) return cli_fail(ctx);
    dec = pinas_net_clone(sup);
    int rc = 1;
    if (!dec) {
        pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < pinas_net_n_nodes(dec); i++) {
        const pinas_node *n = pinas_net_node(dec, i);
        if (!pinas_node_is_open(n)) continue;
        int k = pinas_node_find_cand(n, n->op == PINAS_OP_ACT ? PINAS_CAND_RELU : PINAS_CAND_MAXPOOL);
        if (pinas_net_decide(ctx, dec, i, k < 0 ? 0 : k)) goto done;
    }
    bench_result rs = {0}, rd = {0};
    if (time_net(ctx, sup, (int)batch, (int)steps, (int)warmup, &rs)) goto done;
    if (time_net(ctx, dec, (int)batch, (int)steps, (int)warmup, &rd)) goto done;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "bench", "train");
        cJSON_AddStringToObject(j, "space", pinas_net_name(sup));
        cJSON_AddNumberToObject(j, "batch", (double)batch);
        cJSON_AddNumberToObject(j, "threads", (double)threads);
        cJSON_AddStringToObject(j, "device", device);
        cJSON_AddNumberToObject(j, "steps", (double)steps);
        cJSON_AddItemToObject(j, "supernet", result_json(&rs));
        cJSON_AddItemToObject(j, "decided", result_json(&rd));
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("train step of %s, batch %ld, %ld thread(s), %s, median of %ld steps:\n", pinas_net_name(sup), batch, threads, device, steps);
        printf("  supernet (%d open slots): %9.2f ms  (min %.2f)\n", rs.open, rs.median_ms, rs.min_ms);
        printf("  decided  (relu/maxpool):  %9.2f ms  (min %.2f)\n", rd.median_ms, rd.min_ms);
    }
    rc = 0;
done:
    if (rc) cli_fail(ctx);
    pinas_net_free(sup);
    pinas_net_free(dec);
    return rc;
}
