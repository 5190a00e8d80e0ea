/* Tests for the net IR in libtorch (train/tnet.c): one-hot alphas, patch_relu and poly by direct computation, agreement with the plaintext executor. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_train.h"
#include "testutil.h"

static pinas_ctx *ctx;

static pinas_net *net_from(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    pinas_net *n = NULL;
    pinas_status s = pinas_net_from_json(ctx, j, "test", &n);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    cJSON_Delete(j);
    return n;
}

/* A supernet with two act slots (per-channel and per-slot poly), a pool slot, a residual add and
 * a flatten + linear head. %s: act candidates, pool candidates. */
#define SUPER_FMT                                                                                                                     \
    "{\"format\":\"pinas-net/1\",\"name\":\"super\",\"input\":[3,8,8],\"num_classes\":5,\"nodes\":["                               \
    "{\"id\":\"c1\",\"op\":\"conv2d\",\"out_channels\":6,\"kernel\":3,\"padding\":1},{\"id\":\"b1\",\"op\":\"batchnorm\"},"        \
    "{\"id\":\"a1\",\"op\":\"act\",\"candidates\":%s,\"poly_scale\":0.5,\"poly_per_channel\":true},"                               \
    "{\"id\":\"c2\",\"op\":\"conv2d\",\"out_channels\":6,\"kernel\":3,\"padding\":1,\"bias\":true},{\"id\":\"b2\",\"op\":\"batchnorm\"}," \
    "{\"id\":\"r\",\"op\":\"add\",\"inputs\":[\"b2\",\"a1\"]},"                                                                    \
    "{\"id\":\"a2\",\"op\":\"act\",\"candidates\":%s,\"poly_scale\":2},"                                                           \
    "{\"id\":\"p\",\"op\":\"pool\",\"candidates\":%s,\"kernel\":3,\"stride\":2,\"padding\":1},"                                    \
    "{\"id\":\"f\",\"op\":\"flatten\"},{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":5,\"bias\":true}]}"

static const char *ACTS = "[\"relu\",\"poly\",\"patch_relu:2x3\",\"identity\"]";
static const char *POOLS = "[\"maxpool\",\"avgpool\"]";

static pt_tensor *random_input(int b, int c, int h, int w, uint64_t seed, float *keep)
{
    size_t n = (size_t)b * c * h * w;
    float *x = malloc(n * sizeof(float));
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    if (keep) memcpy(keep, x, n * sizeof(float));
    int64_t shp[4] = {b, c, h, w};
    pt_tensor *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_from_f32(x, 4, shp, &t), 0);
    free(x);
    return t;
}

static float *logits_of(pinas_tnet *t, const pt_tensor *x, int train, int n)
{
    pt_tensor *lg = NULL;
    pinas_status s = pinas_tnet_forward(ctx, t, x, train, &lg);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    float *out = malloc((size_t)n * sizeof(float));
    CU_ASSERT_EQUAL(pt_to_f32(lg, out, (size_t)n), 0);
    pt_free(lg);
    return out;
}

/* A few SGD steps so that BN statistics and poly coefficients move away from their init. */
static void perturb(pinas_tnet *t)
{
    pinas_sgd_opts so = {.lr = 0.05, .momentum = 0.9};
    pinas_optim *o = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_optim_sgd(ctx, pinas_tnet_weights(t), pinas_tnet_n_weights(t), &so, &o), PINAS_OK);
    int64_t lab[4] = {0, 1, 2, 3}, ls[1] = {4};
    pt_tensor *y = NULL;
    pt_from_i64(lab, 1, ls, &y);
    for (int k = 0; k < 3; k++) {
        pt_tensor *x = random_input(4, 3, 8, 8, 100 + (uint64_t)k, NULL), *lg = NULL, *loss = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_forward(ctx, t, x, 1, &lg), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_loss_ce(ctx, lg, y, 0.1, &loss), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_optim_zero_grad(ctx, o), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pt_backward(loss), 0);
        CU_ASSERT_EQUAL_FATAL(pinas_optim_step(ctx, o), PINAS_OK);
        pt_free(x);
        pt_free(lg);
        pt_free(loss);
    }
    pt_free(y);
    pinas_optim_free(o);
}

static void test_one_hot_alpha(void)
{
    char text[2048];
    snprintf(text, sizeof text, SUPER_FMT, ACTS, ACTS, POOLS);
    pinas_net *net = net_from(text);
    pinas_tnet *sup = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 42, &sup), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_tnet_n_alphas(sup), 3);
    perturb(sup);
    pt_tensor *x = random_input(3, 3, 8, 8, 7, NULL);
    for (int k = 0; k < 4; k++) {
        /* Slot a1 takes candidate k, a2 candidate 3-k, the pool k%2; softmax of a gap of 1e4 is exactly one-hot. */
        int want[3] = {k, 3 - k, k % 2};
        for (int a = 0; a < 3; a++) {
            int node = -1;
            CU_ASSERT_PTR_NOT_NULL(pinas_tnet_alpha(sup, a, &node));
            const pinas_node *nd = pinas_net_node(net, node);
            float v[PINAS_MAX_CANDS] = {0};
            v[want[a]] = 1e4f;
            CU_ASSERT_EQUAL_FATAL(pinas_tnet_set_alpha(ctx, sup, a, v), PINAS_OK);
            float p[PINAS_MAX_CANDS];
            CU_ASSERT_EQUAL(pinas_tnet_alpha_probs(ctx, sup, a, p), PINAS_OK);
            for (int c = 0; c < nd->n_cands; c++) CU_ASSERT_EQUAL(p[c], c == want[a] ? 1.0f : 0.0f);
        }
        pinas_net *arch = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_derive(ctx, sup, &arch), PINAS_OK);
        CU_ASSERT_EQUAL(pinas_net_n_open(arch), 0);
        CU_ASSERT_EQUAL(pinas_net_node(arch, pinas_net_find(arch, "a1"))->choice, want[0]);
        CU_ASSERT_EQUAL(pinas_net_node(arch, pinas_net_find(arch, "a2"))->choice, want[1]);
        CU_ASSERT_EQUAL(pinas_net_node(arch, pinas_net_find(arch, "p"))->choice, want[2]);
        pinas_tensors *w = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, sup, arch, &w), PINAS_OK);
        pinas_tensor_view tv;
        CU_ASSERT_EQUAL(pinas_tensors_find(w, "a1.w0", &tv) == 0, want[0] == 1); /* poly params only where poly was kept */
        CU_ASSERT_EQUAL(pinas_tensors_find(w, "a1.alpha", &tv), -1);
        pinas_tnet *dec = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, arch, 1, &dec), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_load(ctx, dec, w, 1), PINAS_OK);
        for (int train = 0; train < 2; train++) {
            float *a = logits_of(sup, x, train, 15), *b = logits_of(dec, x, train, 15);
            int same = 0;
            for (int i = 0; i < 15; i++) same += a[i] == b[i];
            CU_ASSERT_EQUAL(same, 15);
            free(a);
            free(b);
        }
        pinas_tnet_free(dec);
        pinas_tensors_free(w);
        pinas_net_free(arch);
    }
    pt_free(x);
    pinas_tnet_free(sup);
    pinas_net_free(net);
}

/* patch_relu:2x3 on [2, 3, 5, 7] (partial patches at the right and bottom), values k/8 so that
 * patch sums are exact. */
static void test_patch_relu_direct(void)
{
    const int B = 2, C = 3, H = 5, W = 7, ph = 2, pw = 3;
    float x[2 * 3 * 5 * 7], want[2 * 3 * 5 * 7];
    for (int i = 0; i < B * C * H * W; i++) x[i] = (float)(((i * 37 + 11) % 17) - 8) / 8.0f;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *p = x + (b * C + c) * H * W;
            float *q = want + (b * C + c) * H * W;
            for (int py = 0; py < H; py += ph)
                for (int px = 0; px < W; px += pw) {
                    double sum = 0;
                    for (int y = py; y < py + ph && y < H; y++)
                        for (int xx = px; xx < px + pw && xx < W; xx++) sum += p[y * W + xx];
                    for (int y = py; y < py + ph && y < H; y++)
                        for (int xx = px; xx < px + pw && xx < W; xx++) q[y * W + xx] = sum > 0 ? p[y * W + xx] : 0.0f;
                }
        }
    int64_t shp[4] = {B, C, H, W};
    pt_tensor *t = NULL, *y = NULL, *s = NULL, *g = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_from_f32(x, 4, shp, &t), 0);
    CU_ASSERT_EQUAL_FATAL(pt_set_requires_grad(t, 1), 0);
    CU_ASSERT_EQUAL_FATAL(pt_patch_relu(t, ph, pw, &y), 0);
    float got[2 * 3 * 5 * 7], grad[2 * 3 * 5 * 7];
    CU_ASSERT_EQUAL(pt_to_f32(y, got, sizeof got / sizeof got[0]), 0);
    int same = 0, zeros = 0;
    for (int i = 0; i < B * C * H * W; i++) {
        same += got[i] == want[i];
        zeros += want[i] == 0;
    }
    CU_ASSERT_EQUAL(same, B * C * H * W);
    CU_ASSERT(zeros > 20 && zeros < 190); /* both signs occur */
    /* The gradient flows through x: d sum(y) / dx = the mask. */
    CU_ASSERT_EQUAL_FATAL(pt_sum(y, &s), 0);
    CU_ASSERT_EQUAL_FATAL(pt_backward(s), 0);
    CU_ASSERT_EQUAL_FATAL(pt_grad(t, &g), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(pt_to_f32(g, grad, sizeof grad / sizeof grad[0]), 0);
    int gok = 0;
    for (int i = 0; i < B * C * H * W; i++) gok += grad[i] == 0.0f || grad[i] == 1.0f;
    CU_ASSERT_EQUAL(gok, B * C * H * W);
    for (int i = 0; i < B * C * H * W; i++)
        if (want[i] != 0) CU_ASSERT_EQUAL(grad[i], 1.0f);
    pt_free(t);
    pt_free(y);
    pt_free(s);
    pt_free(g);
}

static void test_poly_direct(void)
{
    /* per channel: s*w0[c]*x^2 + w1[c]*x + b[c] */
    float x[2 * 2 * 1 * 2] = {1, -2, 0.5f, 3, -1, 2, 4, -0.25f}, w0[2] = {0.5f, -1}, w1[2] = {2, 0.25f}, b[2] = {1, -3};
    int64_t shp[4] = {2, 2, 1, 2}, cs[1] = {2};
    pt_tensor *tx = NULL, *t0 = NULL, *t1 = NULL, *tb = NULL, *y = NULL;
    pt_from_f32(x, 4, shp, &tx);
    pt_from_f32(w0, 1, cs, &t0);
    pt_from_f32(w1, 1, cs, &t1);
    pt_from_f32(b, 1, cs, &tb);
    CU_ASSERT_EQUAL_FATAL(pt_poly(tx, t0, t1, tb, 3.0, &y), 0);
    float got[8];
    pt_to_f32(y, got, 8);
    for (int i = 0; i < 8; i++) {
        int c = (i / 2) % 2;
        double v = x[i], want = 3.0 * w0[c] * v * v + w1[c] * v + b[c];
        CU_ASSERT_DOUBLE_EQUAL(got[i], want, 1e-5);
    }
    pt_tensor *all[] = {tx, t0, t1, tb, y};
    for (int i = 0; i < 5; i++) pt_free(all[i]);
}

/* Exports t's weights as a model of net, runs it on xin (b images) in the plaintext executor and t on
 * x in eval mode, and asserts the logits agree (1e-4 relative) and are not all zero. *lt: torch's
 * logits (new; caller frees). Returns the model (new; caller frees). */
static pinas_model *torch_vs_plain(pinas_tnet *t, const pinas_net *net, const pt_tensor *x, const float *xin, int b, const char *what,
                                   float **lt)
{
    pinas_tensors *w = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, t, NULL, &w), PINAS_OK);
    pinas_model *m = NULL;
    pinas_status s = pinas_model_create(ctx, pinas_net_clone(net), w, NULL, &m);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    int n = b * pinas_net_num_classes(net);
    float *plain = malloc((size_t)n * sizeof *plain);
    CU_ASSERT_EQUAL_FATAL(pinas_plain_forward(ctx, m, xin, b, plain), PINAS_OK);
    *lt = logits_of(t, x, 0, n);
    double maxd = 0, maxv = 0;
    for (int i = 0; i < n; i++) {
        maxd = fmax(maxd, fabs((*lt)[i] - plain[i]));
        maxv = fmax(maxv, fabs(plain[i]));
    }
    if (maxd > 1e-4 * (1 + maxv)) fprintf(stderr, "\n  %s: max |torch - plain| = %g (scale %g)\n", what, maxd, maxv);
    CU_ASSERT(maxd <= 1e-4 * (1 + maxv));
    CU_ASSERT(maxv > 0);
    free(plain);
    return m;
}

/* Every patch size (1x2, 2x1, 2x2, 2x3, 3x2, 3x3, 4x4) on odd feature maps (9x7, then 3x3 after a
 * stride-3 conv: partial patches at the right and bottom, ceil mode, and a 4x4 patch larger than
 * the map) agrees with the plaintext executor. */
static void test_patch_sizes_match_plain(void)
{
    static const int sizes[][2] = {{1, 2}, {2, 1}, {2, 2}, {2, 3}, {3, 2}, {3, 3}, {4, 4}};
    float xin[3 * 3 * 9 * 7];
    pt_tensor *x = random_input(3, 3, 9, 7, 5, xin);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        pinas_cand p1 = {PINAS_CAND_PATCH_RELU, sizes[k][0], sizes[k][1]}, p2 = {PINAS_CAND_PATCH_RELU, sizes[k][1], sizes[k][0]};
        pinas_net_builder *b = pinas_nb_create("patches", 3, 9, 7, 4);
        int v = pinas_nb_conv(b, "c1", 0, 5, 3, 1, 1, 1);
        v = pinas_nb_batchnorm(b, "b1", v);
        v = pinas_nb_act(b, "a1", v, &p1, 1);
        v = pinas_nb_conv(b, "c2", v, 5, 3, 3, 1, 1); /* 3x3: a patch larger than the map (4x4) */
        v = pinas_nb_act(b, "a2", v, &p2, 1);
        v = pinas_nb_flatten(b, "f", v);
        pinas_nb_linear(b, "fc", v, 4, 1);
        pinas_net *net = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_nb_finish(ctx, b, NULL, &net), PINAS_OK);
        pinas_tnet *t = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 11 + k, &t), PINAS_OK);
        char what[32];
        snprintf(what, sizeof what, "patch %dx%d", sizes[k][0], sizes[k][1]);
        float *lt = NULL;
        pinas_model *m = torch_vs_plain(t, net, x, xin, 3, what, &lt);
        free(lt);
        pinas_model_free(m);
        pinas_tnet_free(t);
        pinas_net_free(net);
    }
    pt_free(x);
}

/* Every decided variant of the supernet agrees with the plaintext executor (search_spaces/plain.c). */
static void test_matches_plain_executor(void)
{
    const char *acts[] = {"[\"relu\"]", "[\"poly\"]", "[\"patch_relu:2x3\"]", "[\"identity\"]"};
    const char *pools[] = {"[\"maxpool\"]", "[\"avgpool\"]"};
    float xin[4 * 3 * 8 * 8];
    pt_tensor *x = random_input(4, 3, 8, 8, 99, xin);
    for (int k = 0; k < 4; k++) {
        char text[2048];
        snprintf(text, sizeof text, SUPER_FMT, acts[k], acts[(k + 1) % 4], pools[k % 2]);
        pinas_net *net = net_from(text);
        pinas_tnet *t = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 3, &t), PINAS_OK);
        perturb(t);
        char what[32];
        snprintf(what, sizeof what, "variant %d", k);
        float *lt = NULL;
        pinas_model *m = torch_vs_plain(t, net, x, xin, 4, what, &lt);
        /* The model dir round trip through pinas_tnet_from_model gives the same logits exactly. */
        pinas_tnet *t2 = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_tnet_from_model(ctx, m, &t2), PINAS_OK);
        float *l2 = logits_of(t2, x, 0, 20);
        CU_ASSERT_EQUAL(memcmp(lt, l2, 20 * sizeof *lt), 0);
        free(l2);
        free(lt);
        pinas_tnet_free(t2);
        pinas_model_free(m);
        pinas_tnet_free(t);
        pinas_net_free(net);
    }
    pt_free(x);
}

static void test_init_export_errors(void)
{
    char text[2048];
    snprintf(text, sizeof text, SUPER_FMT, ACTS, ACTS, POOLS);
    pinas_net *net = net_from(text);
    pinas_tnet *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 5, &a), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 5, &b), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 6, &c), PINAS_OK);
    pinas_tensors *wa = NULL, *wb = NULL, *wc = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, a, NULL, &wa), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, b, NULL, &wb), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, c, NULL, &wc), PINAS_OK);
    pinas_tensor_view va, vb, vc;
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(wa, "c2.weight", &va), 0);
    pinas_tensors_find(wb, "c2.weight", &vb);
    pinas_tensors_find(wc, "c2.weight", &vc);
    CU_ASSERT_EQUAL(memcmp(va.data, vb.data, va.nbytes), 0); /* same seed, same init */
    CU_ASSERT_NOT_EQUAL(memcmp(va.data, vc.data, va.nbytes), 0);
    /* He-normal fan_out: std = sqrt(2 / (6*3*3)) */
    const float *wv = va.data;
    double s2 = 0;
    for (int i = 0; i < 324; i++) s2 += (double)wv[i] * wv[i];
    CU_ASSERT_DOUBLE_EQUAL(sqrt(s2 / 324), sqrt(2.0 / 54), 0.03);
    /* PASNet poly init, per channel on a1 (6 channels), per slot on a2. */
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(wa, "a1.w0", &va), 0);
    CU_ASSERT_EQUAL(va.shape[0], 6);
    CU_ASSERT_EQUAL(((float *)va.data)[5], 0.005f);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(wa, "a2.w1", &va), 0);
    CU_ASSERT_EQUAL(va.shape[0], 1);
    CU_ASSERT_EQUAL(((float *)va.data)[0], 1.0f);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(wa, "b1.running_var", &va), 0);
    CU_ASSERT_EQUAL(((float *)va.data)[0], 1.0f);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(wa, "p.alpha", &va), 0);
    CU_ASSERT(fabsf(((float *)va.data)[0]) < 0.01f);
    /* Weight list: no alphas, no running stats. */
    int nw = pinas_tnet_n_weights(a);
    for (int k = 0; k < nw; k++) {
        const char *name = NULL;
        CU_ASSERT_PTR_NOT_NULL(pinas_tnet_weight(a, k, &name));
        CU_ASSERT_PTR_NULL(strstr(name, "alpha"));
        CU_ASSERT_PTR_NULL(strstr(name, "running"));
    }
    CU_ASSERT_EQUAL(nw, 1 + 2 + 3 + 2 + 2 + 3 + 2); /* c1, b1, a1, c2 (+bias), b2, a2, fc */
    /* Load: all from wa makes c equal to a. */
    CU_ASSERT_EQUAL(pinas_tnet_load(ctx, c, wa, 1), PINAS_OK);
    pinas_tensors_free(wc);
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, c, NULL, &wc), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(wc, "c2.weight", &vc), 0);
    pinas_tensors_find(wa, "c2.weight", &va);
    CU_ASSERT_EQUAL(memcmp(va.data, vc.data, va.nbytes), 0);
    /* Errors: a missing tensor (strict), a wrong shape. */
    pinas_tensors *part = pinas_tensors_create();
    int64_t sh[1] = {4};
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_add(ctx, part, "b1.weight", PINAS_F32, 1, sh, NULL), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_tnet_load(ctx, c, part, 0), "b1.weight");
    pinas_tensors *none = pinas_tensors_create();
    CU_ASSERT_EQUAL(pinas_tnet_load(ctx, c, none, 0), PINAS_OK); /* non-strict: nothing to load is fine */
    pinas_tensors_free(none);
    TU_ASSERT_ERR(ctx, pinas_tnet_load(ctx, c, part, 1), "c1.weight is missing");
    pinas_tensors_free(part);
    /* Forward of a wrong shape. */
    pt_tensor *x = random_input(2, 3, 9, 8, 1, NULL), *lg = (pt_tensor *)0x1;
    pinas_status s = pinas_tnet_forward(ctx, a, x, 0, &lg);
    CU_ASSERT_EQUAL(s, PINAS_ESHAPE);
    TU_ASSERT_ERR(ctx, s, "input of shape [2, 3, 9, 8]");
    CU_ASSERT_PTR_NULL(lg);
    pt_free(x);
    /* Export for an architecture of another net. */
    pinas_net *other = net_from("{\"format\":\"pinas-net/1\",\"input\":[3,8,8],\"num_classes\":5,\"nodes\":["
                                "{\"id\":\"g\",\"op\":\"global_avgpool\"},{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":5}]}");
    pinas_tensors *wo = NULL;
    TU_ASSERT_ERR(ctx, pinas_tnet_export(ctx, a, other, &wo), "has 3 nodes");
    CU_ASSERT_PTR_NULL(wo);
    pinas_net_free(other);
    pinas_tensors_free(wa);
    pinas_tensors_free(wb);
    pinas_tensors_free(wc);
    pinas_tnet_free(a);
    pinas_tnet_free(b);
    pinas_tnet_free(c);
    pinas_net_free(net);
}

static void test_gumbel_and_alpha_grads(void)
{
    char text[2048];
    snprintf(text, sizeof text, SUPER_FMT, ACTS, ACTS, POOLS);
    pinas_net *net = net_from(text);
    pinas_tnet *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 8, &t), PINAS_OK);
    pt_tensor *x = random_input(2, 3, 8, 8, 3, NULL);
    /* Eval forwards are deterministic; Gumbel training forwards draw fresh noise. */
    pinas_tnet_set_gumbel(t, 1, 1.0, 0);
    float *e1 = logits_of(t, x, 0, 10), *e2 = logits_of(t, x, 0, 10), *g1 = logits_of(t, x, 1, 10), *g2 = logits_of(t, x, 1, 10);
    CU_ASSERT_EQUAL(memcmp(e1, e2, 10 * sizeof(float)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(g1, g2, 10 * sizeof(float)), 0);
    /* The loss reaches every alpha. */
    int64_t lab[2] = {1, 4}, ls[1] = {2};
    pt_tensor *y = NULL, *lg = NULL, *loss = NULL;
    pt_from_i64(lab, 1, ls, &y);
    pinas_tnet_set_gumbel(t, 0, 1.0, 0);
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_forward(ctx, t, x, 1, &lg), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_loss_ce(ctx, lg, y, 0, &loss), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pt_backward(loss), 0);
    for (int k = 0; k < pinas_tnet_n_alphas(t); k++) {
        pt_tensor *g = NULL;
        CU_ASSERT_EQUAL(pt_grad(pinas_tnet_alpha(t, k, NULL), &g), 0);
        CU_ASSERT_PTR_NOT_NULL(g);
        float gv[4] = {0};
        int node = 0;
        pinas_tnet_alpha(t, k, &node);
        pt_to_f32(g, gv, (size_t)pinas_net_node(net, node)->n_cands);
        CU_ASSERT(gv[0] != 0.0f);
        pt_free(g);
    }
    /* derive takes the argmax. */
    float v[4] = {0.1f, 0.2f, 0.9f, -1};
    CU_ASSERT_EQUAL(pinas_tnet_set_alpha(ctx, t, 0, v), PINAS_OK);
    pinas_net *arch = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_derive(ctx, t, &arch), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_node(arch, pinas_net_find(arch, "a1"))->choice, 2);
    pinas_net_free(arch);
    free(e1);
    free(e2);
    free(g1);
    free(g2);
    pt_free(x);
    pt_free(y);
    pt_free(lg);
    pt_free(loss);
    pinas_tnet_free(t);
    pinas_net_free(net);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    pt_set_threads(1);
    const tu_test tests[] = {
        {"one-hot alpha equals the chosen op exactly", test_one_hot_alpha},
        {"patch_relu matches a direct C computation", test_patch_relu_direct},
        {"poly per channel by hand", test_poly_direct},
        {"decided nets match the plaintext executor", test_matches_plain_executor},
        {"every patch size, odd sizes, matches the plaintext executor", test_patch_sizes_match_plain},
        {"seeded init, export/load, errors", test_init_export_errors},
        {"Gumbel noise, alpha gradients, derive", test_gumbel_and_alpha_grads},
    };
    int rc = tu_run("train_net", tests, (int)(sizeof tests / sizeof tests[0]));
    pinas_ctx_free(ctx);
    return rc;
}
