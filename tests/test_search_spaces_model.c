/* Tests for model dirs (search_spaces/model.c) and the plaintext executor (search_spaces/plain.c). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pinas_net.h"
#include "testutil.h"

static pinas_ctx *ctx;

static pinas_net *load_json(const char *text)
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

static void set_param(pinas_model *m, const char *name, const float *v)
{
    pinas_tensor_view tv;
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(m->weights, name, &tv), 0);
    memcpy(tv.data, v, tv.nbytes);
}

static void test_hand_computed(void)
{
    /* x (1x2x2) -> 1x1 conv (w=2) -> act -> gap -> linear (w=[1,-1], b=[0.5, 0]) */
    const char *acts[] = {"relu", "poly", "patch_relu:2x2", "identity"};
    const float x[4] = {1, -2, 3, -4};
    /* after conv: 2,-4,6,-8. relu -> 2,0,6,0 mean 2; poly(w0=.5,w1=1,b=1,s=2): x^2+x+1 -> 7,13,43,57 mean 30;
     * patch 2x2: sum -4 <= 0 -> all 0, mean 0; identity mean -1. logits = (m+0.5, -m) */
    const float mean[] = {2, 30, 0, -1};
    for (int k = 0; k < 4; k++) {
        char text[800];
        snprintf(text, sizeof text,
                 "{\"format\":\"pinas-net/1\",\"input\":[1,2,2],\"num_classes\":2,\"nodes\":["
                 "{\"id\":\"c\",\"op\":\"conv2d\",\"out_channels\":1,\"kernel\":1},"
                 "{\"id\":\"a\",\"op\":\"act\",\"candidates\":[\"%s\"],\"poly_scale\":2},"
                 "{\"id\":\"g\",\"op\":\"global_avgpool\"},{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":2}]}",
                 acts[k]);
        pinas_net *n = load_json(text);
        pinas_model *m;
        CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 1, &m), PINAS_OK);
        pinas_net_free(n);
        float two = 2, fw[2] = {1, -1}, fb[2] = {0.5f, 0}, w0 = 0.5f, w1 = 1, b = 1;
        set_param(m, "c.weight", &two);
        set_param(m, "fc.weight", fw);
        set_param(m, "fc.bias", fb);
        if (k == 1) {
            set_param(m, "a.w0", &w0);
            set_param(m, "a.w1", &w1);
            set_param(m, "a.b", &b);
        }
        float out[2];
        CU_ASSERT_EQUAL_FATAL(pinas_plain_forward(ctx, m, x, 1, out), PINAS_OK);
        CU_ASSERT_DOUBLE_EQUAL(out[0], mean[k] + 0.5, 1e-5);
        CU_ASSERT_DOUBLE_EQUAL(out[1], -mean[k], 1e-5);
        pinas_model_free(m);
    }
}

static void test_conv_pool_against_direct(void)
{
    /* strided, padded, grouped conv and padded pools against a direct loop */
    pinas_net *n = load_json("{\"format\":\"pinas-net/1\",\"input\":[4,7,7],\"num_classes\":24,\"nodes\":["
                             "{\"id\":\"c\",\"op\":\"conv2d\",\"out_channels\":6,\"kernel\":3,\"stride\":2,\"padding\":1,\"groups\":2,\"bias\":true},"
                             "{\"id\":\"p\",\"op\":\"pool\",\"candidates\":[\"maxpool\",\"avgpool\"],\"choice\":\"avgpool\",\"kernel\":3,\"stride\":2,\"padding\":1},"
                             "{\"id\":\"q\",\"op\":\"pool\",\"inputs\":[\"c\"],\"candidates\":[\"maxpool\"],\"kernel\":3,\"stride\":2,\"padding\":1},"
                             "{\"id\":\"s\",\"op\":\"add\",\"inputs\":[\"p\",\"q\"]},{\"id\":\"f\",\"op\":\"flatten\"},"
                             "{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":24}]}");
    pinas_model *m;
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 7, &m), PINAS_OK);
    pinas_net_free(n);
    /* make fc the identity over the 6*2*2 = 24 features */
    float *eye = calloc(24 * 24, sizeof *eye), zero[24] = {0};
    for (int i = 0; i < 24; i++) eye[i * 24 + i] = 1;
    set_param(m, "fc.weight", eye);
    set_param(m, "fc.bias", zero);
    free(eye);
    float x[2][4 * 49];
    for (int i = 0; i < 2 * 4 * 49; i++) x[i / 196][i % 196] = (float)sin(i * 0.37) * 3;
    float out[2][24];
    CU_ASSERT_EQUAL_FATAL(pinas_plain_forward(ctx, m, &x[0][0], 2, &out[0][0]), PINAS_OK);
    const float *w = pinas_model_param(m, 1, "weight"), *bias = pinas_model_param(m, 1, "bias");
    for (int b = 0; b < 2; b++) {
        float conv[6][4][4];
        for (int o = 0; o < 6; o++)
            for (int y = 0; y < 4; y++)
                for (int xx = 0; xx < 4; xx++) {
                    double acc = bias[o];
                    int g = o / 3;
                    for (int ic = 0; ic < 2; ic++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = y * 2 - 1 + ky, ix = xx * 2 - 1 + kx;
                                if (iy < 0 || iy >= 7 || ix < 0 || ix >= 7) continue;
                                acc += w[((o * 2 + ic) * 3 + ky) * 3 + kx] * x[b][(g * 2 + ic) * 49 + iy * 7 + ix];
                            }
                    conv[o][y][xx] = (float)acc;
                }
        int bad = 0;
        for (int o = 0; o < 6; o++)
            for (int y = 0; y < 2; y++)
                for (int xx = 0; xx < 2; xx++) {
                    double sum = 0, mx = -1e30;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = y * 2 - 1 + ky, ix = xx * 2 - 1 + kx;
                            if (iy < 0 || iy >= 4 || ix < 0 || ix >= 4) continue;
                            sum += conv[o][iy][ix];
                            if (conv[o][iy][ix] > mx) mx = conv[o][iy][ix];
                        }
                    double want = sum / 9 + mx;
                    if (fabs(out[b][(o * 2 + y) * 2 + xx] - want) > 1e-4) bad++;
                }
        CU_ASSERT_EQUAL(bad, 0);
    }
    pinas_model_free(m);
}

static void test_save_load_and_corruption(void)
{
    pinas_net *n;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, "tests/golden/tiny_space.json", &n), PINAS_OK);
    pinas_model *m;
    TU_ASSERT_ERR(ctx, pinas_model_random(ctx, n, 3, &m), "node a1: slot is still open");
    CU_ASSERT_EQUAL(pinas_net_decide(ctx, n, pinas_net_find(n, "a1"), 2), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_decide(ctx, n, pinas_net_find(n, "p1"), 0), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 3, &m), PINAS_OK);
    const char *dir = tu_path("model");
    CU_ASSERT_EQUAL_FATAL(pinas_model_save(ctx, dir, m), PINAS_OK);
    pinas_model *b;
    CU_ASSERT_EQUAL_FATAL(pinas_model_load(ctx, dir, &b), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_model_hash(m), pinas_model_hash(b));
    float x[3 * 64], l1[4], l2[4];
    for (int i = 0; i < 192; i++) x[i] = (float)cos(i);
    CU_ASSERT_EQUAL(pinas_plain_forward(ctx, m, x, 1, l1), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_plain_forward(ctx, b, x, 1, l2), PINAS_OK);
    CU_ASSERT_EQUAL(memcmp(l1, l2, sizeof l1), 0);
    pinas_model_free(b);
    /* a weights file lacking a tensor / with a wrong shape is rejected naming the file and tensor */
    char wpath[600];
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    pinas_tensors *t = pinas_tensors_create();
    for (int k = 0; k < pinas_tensors_count(m->weights); k++) {
        pinas_tensor_view v;
        pinas_tensors_at(m->weights, k, &v);
        if (strcmp(v.name, "c2.bias") != 0) CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, v.name, v.dtype, v.ndim, v.shape, v.data), PINAS_OK);
    }
    CU_ASSERT_EQUAL(pinas_safetensors_save(ctx, wpath, t, NULL), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_model_load(ctx, dir, &b), "weights.safetensors: tensor c2.bias is missing");
    int64_t wrong[1] = {5};
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "c2.bias", PINAS_F32, 1, wrong, NULL), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_safetensors_save(ctx, wpath, t, NULL), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_model_load(ctx, dir, &b), "tensor c2.bias: shape [5], expected [4]");
    pinas_tensors_free(t);
    /* truncated weights */
    CU_ASSERT_EQUAL(pinas_model_save(ctx, dir, m), PINAS_OK);
    CU_ASSERT_EQUAL(truncate(wpath, 100), 0);
    TU_ASSERT_ERR(ctx, pinas_model_load(ctx, dir, &b), "weights.safetensors: truncated");
    /* meta that disagrees with the net */
    CU_ASSERT_EQUAL(pinas_model_save(ctx, dir, m), PINAS_OK);
    char mpath[600];
    snprintf(mpath, sizeof mpath, "%s/meta.json", dir);
    tu_write(mpath, "{\"format\": \"pinas-model/1\", \"num_classes\": 7, \"input\": [3, 8, 8]}");
    TU_ASSERT_ERR(ctx, pinas_model_load(ctx, dir, &b), "meta.json: num_classes: 7, but net.json has 4");
    TU_ASSERT_ERR(ctx, pinas_model_load(ctx, tu_path("no-such-model"), &b), "no such model dir");
    /* an open slot in net.json is rejected */
    CU_ASSERT_EQUAL(pinas_model_save(ctx, dir, m), PINAS_OK);
    char npath[600];
    snprintf(npath, sizeof npath, "%s/net.json", dir);
    CU_ASSERT_EQUAL(pinas_net_save(ctx, n, npath), PINAS_OK);
    pinas_net *open;
    CU_ASSERT_EQUAL(pinas_net_load(ctx, "tests/golden/tiny_space.json", &open), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_save(ctx, open, npath), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_model_load(ctx, dir, &b), "node a1: slot is still open");
    pinas_net_free(open);
    pinas_net_free(n);
    pinas_model_free(m);
}

static void test_random_is_deterministic(void)
{
    pinas_net *n;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, "tests/golden/tiny_space.json", &n), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_decide(ctx, n, pinas_net_find(n, "a1"), 0), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_decide(ctx, n, pinas_net_find(n, "p1"), 1), PINAS_OK);
    pinas_model *a, *b, *c;
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 11, &a), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 11, &b), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 12, &c), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_model_hash(a), pinas_model_hash(b));
    CU_ASSERT_NOT_EQUAL(pinas_model_hash(a), pinas_model_hash(c));
    /* He init: conv weight std close to sqrt(2 / fan_in) */
    pinas_tensor_view v;
    CU_ASSERT_EQUAL(pinas_tensors_find(a->weights, "c2.weight", &v), 0);
    double ss = 0;
    for (int i = 0; i < 144; i++) ss += ((float *)v.data)[i] * ((float *)v.data)[i];
    CU_ASSERT(fabs(sqrt(ss / 144) - sqrt(2.0 / 36)) < 0.08);
    pinas_model_free(a);
    pinas_model_free(b);
    pinas_model_free(c);
    pinas_net_free(n);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"hand-computed forward per activation", test_hand_computed},
                   {"conv and pools against direct loops", test_conv_pool_against_direct},
                   {"save, load and corrupt model dirs", test_save_load_and_corruption},
                   {"random weights deterministic", test_random_is_deterministic}};
    int rc = tu_run("search_spaces_model", t, 4);
    pinas_ctx_free(ctx);
    return rc;
}
