/* patch_relu of every patch size (1x2, 2x1, 2x2, 2x3, 3x2, 3x3, 4x4) on odd feature maps (ceil-mode
 * edges): the 2PC runtime equals the plaintext executor, and its counters equal the analytic cost. */
#define _GNU_SOURCE
#include "pinas_mpc.h"
#include "testutil.h"
#include "testutil_net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static pinas_ctx *ctx;

static const int sizes[][2] = {{1, 2}, {2, 1}, {2, 2}, {2, 3}, {3, 2}, {3, 3}, {4, 4}};
#define N_SIZES (int)(sizeof sizes / sizeof sizes[0])

/* 2 x 7 x 5 input: conv 3x3 -> bn -> patch_relu:PHxPW -> conv 3x3 stride 2 -> bn -> patch_relu:PWxPH
 * (on 4 x 3) -> flatten -> linear. */
static pinas_model *patch_model(int ph, int pw, uint64_t seed)
{
    pinas_cand p1 = {PINAS_CAND_PATCH_RELU, ph, pw}, p2 = {PINAS_CAND_PATCH_RELU, pw, ph};
    pinas_net_builder *b = pinas_nb_create("patch", 2, 7, 5, 6);
    int x = pinas_nb_conv(b, "c1", 0, 4, 3, 1, 1, 1);
    x = pinas_nb_batchnorm(b, "b1", x);
    x = pinas_nb_act(b, "a1", x, &p1, 1);
    x = pinas_nb_conv(b, "c2", x, 4, 3, 2, 1, 1);
    x = pinas_nb_batchnorm(b, "b2", x);
    x = pinas_nb_act(b, "a2", x, &p2, 1);
    x = pinas_nb_flatten(b, "f", x);
    pinas_nb_linear(b, "fc", x, 6, 1);
    return tu_random_model(ctx, b, seed);
}

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* One patch size: private = plaintext (logits and argmax), and per layer measured = cost_node. */
static void check_size(int ph, int pw, int cmp_bits, int cmp_high)
{
    enum { B = 5 };
    pinas_model *m = patch_model(ph, pw, 100 + (uint64_t)(ph * 8 + pw));
    float x[B * 2 * 7 * 5], priv[B * 6], plain[B * 6];
    tu_uniform(x, sizeof x / sizeof *x, (uint64_t)(ph * 31 + pw), -2, 2);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.cmp_bits = cmp_bits;
    p.cmp_high = cmp_high;
    p.batch = B;
    pinas_mpc_report *rep = NULL;
    pinas_status s = pinas_mpc_infer_loopback(ctx, m, x, B, &p, NULL, priv, &rep);
    if (s) fprintf(stderr, "\n  patch %dx%d: %s\n", ph, pw, pinas_errmsg(ctx));
    CU_ASSERT_FATAL(s == PINAS_OK);
    CU_ASSERT_FATAL(pinas_plain_forward(ctx, m, x, B, plain) == PINAS_OK);
    double err = 0;
    int agree = 0;
    for (int i = 0; i < B * 6; i++) err = fmax(err, fabs(priv[i] - plain[i]));
    for (int i = 0; i < B; i++) agree += argmax(priv + 6 * i, 6) == argmax(plain + 6 * i, 6);
    fprintf(stderr, "\n  patch_relu %dx%d (bits [%d, %d)): max logit error %.3g, argmax %d/%d", ph, pw, cmp_high - cmp_bits, cmp_high,
            err, agree, B);
    CU_ASSERT(err < 1e-2);
    CU_ASSERT_EQUAL(agree, B);
    int seen = 0;
    for (int l = 0; l < rep->n_layers; l++) {
        int i = pinas_net_find(m->net, rep->layers[l].id);
        if (i <= 0) continue;
        pinas_mpc_cost c;
        CU_ASSERT_FATAL(pinas_mpc_cost_node(ctx, m->net, i, -1, &p, &c) == PINAS_OK);
        int ok = pinas_mpc_counts_equal(&c.online, &rep->layers[l].measured.online) &&
                 pinas_mpc_counts_equal(&c.offline, &rep->layers[l].measured.offline);
        if (!ok) fprintf(stderr, "\n  layer %s: cost model and runtime counters differ", rep->layers[l].id);
        CU_ASSERT(ok);
        seen += !strcmp(rep->layers[l].id, "a1") || !strcmp(rep->layers[l].id, "a2");
    }
    CU_ASSERT_EQUAL(seen, 2);
    pinas_mpc_report_free(rep);
    pinas_model_free(m);
}

static void test_sizes(void)
{
    for (int k = 0; k < N_SIZES; k++) check_size(sizes[k][0], sizes[k][1], 64, 64);
}

/* A cut window, bits [4, 40): values stay far below 2^39 ulps; the ignored band is 16 ulps. */
static void test_sizes_window(void)
{
    for (int k = 0; k < N_SIZES; k++) check_size(sizes[k][0], sizes[k][1], 36, 40);
}

/* The names parse and print back. */
static void test_names(void)
{
    for (int k = 0; k < N_SIZES; k++) {
        char name[32], back[32];
        snprintf(name, sizeof name, "patch_relu:%dx%d", sizes[k][0], sizes[k][1]);
        pinas_cand c;
        CU_ASSERT_EQUAL(pinas_cand_parse(name, &c), 0);
        CU_ASSERT_EQUAL(c.kind, PINAS_CAND_PATCH_RELU);
        CU_ASSERT_EQUAL(c.ph, sizes[k][0]);
        CU_ASSERT_EQUAL(c.pw, sizes[k][1]);
        CU_ASSERT_STRING_EQUAL(pinas_cand_name(&c, back, sizeof back), name);
    }
    pinas_cand c;
    CU_ASSERT(pinas_cand_parse("patch_relu:0x2", &c) != 0);
    CU_ASSERT(pinas_cand_parse("patch_relu:2x", &c) != 0);
    CU_ASSERT(pinas_cand_parse("patch_relu:2x2x2", &c) != 0);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    tu_test tests[] = {
        {"patch sizes: names", test_names},
        {"patch sizes: private = plaintext, counters = cost (64 bits)", test_sizes},
        {"patch sizes: the same with the window [4, 40)", test_sizes_window},
    };
    int rc = tu_run("crypto_patch", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
