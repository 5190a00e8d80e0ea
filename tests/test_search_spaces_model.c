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

/* ------------------------------------------------------------ meta.json (the pinas_model_meta record) */

static char *read_text(const char *path)
{
    char *t = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(pinas_file_read(ctx, path, &t, &n), PINAS_OK);
    return t;
}

/* tests/golden/meta.json is the meta.json of a quickstart export: a training summary, mpc, six
 * predicted_latency rows and exported_from. Read and written back, it must come out byte for byte. */
static void test_meta_golden_roundtrip(void)
{
    pinas_model_meta m;
    pinas_status s = pinas_model_meta_read(ctx, "tests/golden/meta.json", NULL, &m);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    CU_ASSERT_STRING_EQUAL(m.name, "quickstart-c1");
    CU_ASSERT(m.input[0] == 1 && m.input[1] == 28 && m.input[2] == 28);
    CU_ASSERT_EQUAL(m.num_classes, 10);
    CU_ASSERT_DOUBLE_EQUAL(m.mean[0], 0.283938289, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m.std[0], 0.353501856, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m.accuracy, 0.834, 1e-12);
    CU_ASSERT_STRING_EQUAL(m.dataset, "fashion-mnist");
    CU_ASSERT(m.train.present);
    CU_ASSERT_STRING_EQUAL(m.train.phase, "finetune-1");
    CU_ASSERT_EQUAL(m.train.epochs, 5);
    CU_ASSERT_EQUAL(m.train.batch_size, 50);
    CU_ASSERT(m.train.cosine && m.train.nesterov && !m.train.augment);
    CU_ASSERT_PTR_NULL(m.train.teacher);
    CU_ASSERT_EQUAL(m.train.seed, 1);
    CU_ASSERT_STRING_EQUAL(m.train.eval_split, "test");
    CU_ASSERT_EQUAL(m.frac_bits, 16);
    CU_ASSERT_EQUAL(m.cmp_bits, 64);
    CU_ASSERT_EQUAL_FATAL(m.n_latency, 6);
    CU_ASSERT_STRING_EQUAL(m.latency[0].profile, "cpu/lan");
    const pinas_meta_latency *pl = pinas_model_meta_latency(&m, "pasnet/wan");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pl);
    CU_ASSERT_EQUAL(pl->rounds, 17);
    CU_ASSERT_EQUAL(pl->preprocessing_bytes, 29185056);
    CU_ASSERT_DOUBLE_EQUAL(pl->online_ms, 89.40956, 1e-9);
    CU_ASSERT_PTR_NULL(pinas_model_meta_latency(&m, "pasnet/lte"));
    CU_ASSERT(m.exported_from.present);
    CU_ASSERT_EQUAL(m.exported_from.candidate, 1);
    CU_ASSERT_STRING_EQUAL(m.exported_from.sweep_key, "lambda");
    CU_ASSERT_DOUBLE_EQUAL(m.exported_from.sweep_value, 0.3, 1e-15);
    CU_ASSERT_EQUAL_FATAL(m.exported_from.n_arch, 8);
    CU_ASSERT_STRING_EQUAL(m.exported_from.arch[6].slot, "l3.0.act1");
    CU_ASSERT_STRING_EQUAL(m.exported_from.arch[6].choice, "patch_relu:2x2");
    CU_ASSERT_PTR_NULL(m.config);
    CU_ASSERT_PTR_NULL(m.extra);
    char *want = read_text("tests/golden/meta.json");
    const char *out = tu_path("meta-roundtrip.json");
    CU_ASSERT_EQUAL_FATAL(pinas_model_meta_write(ctx, out, &m), PINAS_OK);
    char *got = read_text(out);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    /* A deep copy writes the same bytes, and outlives the original. */
    pinas_model_meta c;
    CU_ASSERT_EQUAL_FATAL(pinas_model_meta_copy(ctx, &m, &c), PINAS_OK);
    pinas_model_meta_free(&m);
    CU_ASSERT_EQUAL_FATAL(pinas_model_meta_write(ctx, out, &c), PINAS_OK);
    got = read_text(out);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    pinas_model_meta_free(&c);
    pinas_model_meta_free(&c); /* freeing an emptied record again is harmless */
    pinas_model_meta_free(NULL);
    free(want);
}

/* The optional parts: distillation, grad_clip, a null accuracy and loss, the opaque config and an
 * unknown key survive a write and a read. */
static void test_meta_optional_parts(void)
{
    pinas_model_meta m;
    pinas_model_meta_init(&m);
    CU_ASSERT_EQUAL(m.frac_bits, 16);
    CU_ASSERT_EQUAL(m.cmp_bits, 64);
    CU_ASSERT(isnan(m.accuracy));
    CU_ASSERT_EQUAL_FATAL(pinas_model_meta_set_input(ctx, &m, 3, 8, 8), PINAS_OK);
    m.num_classes = 4;
    m.mean[2] = 0.5;
    m.std[1] = 0.25;
    m.frac_bits = 12;
    m.cmp_bits = 40;
    m.train.present = 1;
    m.train.epochs = 2;
    m.train.batch_size = 8;
    m.train.grad_clip = 5;
    m.train.kd_alpha = 0.7;
    m.train.kd_temperature = 4;
    m.train.seed = UINT64_MAX;
    m.train.eval_loss = NAN;
    CU_ASSERT_EQUAL(pinas_model_meta_set_str(ctx, &m.name, "n"), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_model_meta_set_str(ctx, &m.train.phase, "finetune-all-poly"), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_model_meta_set_str(ctx, &m.train.teacher, "runs/x/baselines/all-relu"), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_model_meta_set_str(ctx, &m.train.eval_split, "val"), PINAS_OK);
    pinas_meta_latency row = {.profile = "cpu/lan", .online_ms = 1.5, .rounds = 3, .online_bytes = 1LL << 40};
    CU_ASSERT_EQUAL(pinas_model_meta_set_latency(ctx, &m, &row), PINAS_OK);
    row.online_ms = 2.5;
    CU_ASSERT_EQUAL(pinas_model_meta_set_latency(ctx, &m, &row), PINAS_OK); /* replaces in place */
    CU_ASSERT_EQUAL(m.n_latency, 1);
    m.config = cJSON_Parse("{\"name\": \"x\", \"seed\": 3}");
    m.extra = cJSON_Parse("{\"note\": [1, 2]}");
    cJSON *j = pinas_model_meta_to_json(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    char *text = cJSON_PrintUnformatted(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"accuracy\":null"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"grad_clip\":5,\"teacher\":\"runs/x/baselines/all-relu\",\"kd_alpha\":0.7,\"kd_temperature\":4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"eval_loss\":null"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"source\":\"\",\"config\":{\"name\":\"x\",\"seed\":3},\"note\":[1,2]}"));
    pinas_model_meta b;
    pinas_status s = pinas_model_meta_from_json(ctx, j, "test", NULL, &b);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    CU_ASSERT_EQUAL(b.train.seed, UINT64_MAX);
    CU_ASSERT(isnan(b.train.eval_loss));
    CU_ASSERT_DOUBLE_EQUAL(b.train.grad_clip, 5, 0);
    CU_ASSERT_STRING_EQUAL(b.train.teacher, "runs/x/baselines/all-relu");
    CU_ASSERT_EQUAL(b.latency[0].online_bytes, 1LL << 40);
    CU_ASSERT_DOUBLE_EQUAL(b.latency[0].online_ms, 2.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(b.mean[2], 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(b.std[1], 0.25, 0);
    CU_ASSERT_EQUAL(b.frac_bits, 12);
    CU_ASSERT_EQUAL(b.cmp_bits, 40);
    cJSON *j2 = pinas_model_meta_to_json(&b);
    char *text2 = cJSON_PrintUnformatted(j2);
    CU_ASSERT_STRING_EQUAL(text2, text);
    free(text);
    free(text2);
    cJSON_Delete(j);
    cJSON_Delete(j2);
    pinas_model_meta_free(&b);
    pinas_model_meta_free(&m);
}

/* Edits the golden meta.json at a JSON path, writes it under the test dir and reads it back: the
 * error must name the file and the field. */
static void expect_meta_error(const char *what, void (*edit)(cJSON *), const pinas_net *net, const char *field_msg)
{
    cJSON *j = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_json_load(ctx, "tests/golden/meta.json", &j), PINAS_OK);
    edit(j);
    char name[64];
    snprintf(name, sizeof name, "bad-meta-%s.json", what);
    const char *path = tu_path(name);
    CU_ASSERT_EQUAL_FATAL(pinas_json_save(ctx, path, j), PINAS_OK);
    cJSON_Delete(j);
    pinas_model_meta m;
    pinas_status s = pinas_model_meta_read(ctx, path, net, &m);
    CU_ASSERT_NOT_EQUAL(s, PINAS_OK);
    char want[700];
    snprintf(want, sizeof want, "%s: %s", path, field_msg);
    TU_ASSERT_ERR(ctx, s, want);
    /* A failed read leaves an empty record. */
    CU_ASSERT_PTR_NULL(m.name);
    CU_ASSERT_EQUAL(m.n_latency, 0);
}

static void drop_train_epochs(cJSON *j) { cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "train"), "epochs"); }
static void accuracy_string(cJSON *j) { cJSON_ReplaceItemInObject(j, "accuracy", cJSON_CreateString("high")); }
static void cmp_bits_3(cJSON *j) { cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "mpc"), "cmp_bits", cJSON_CreateNumber(3)); }
static void frac_bits_40(cJSON *j) { cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "mpc"), "frac_bits", cJSON_CreateNumber(40)); }
static void mpc_typo(cJSON *j) { cJSON_AddNumberToObject(cJSON_GetObjectItem(j, "mpc"), "frac_bit", 12); }
static void mpc_string(cJSON *j) { cJSON_ReplaceItemInObject(j, "mpc", cJSON_CreateString("16/64")); }
static void bad_format(cJSON *j) { cJSON_ReplaceItemInObject(j, "format", cJSON_CreateString("pinas-model/9")); }
static void drop_rounds(cJSON *j)
{
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "predicted_latency"), "cpu/wan"), "rounds");
}
static void negative_std(cJSON *j)
{
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "normalize"), "std"), 0, cJSON_CreateNumber(-1));
}
static void arch_number(cJSON *j)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "exported_from"), "arch"), "stem.act", cJSON_CreateNumber(1));
}
static void drop_input(cJSON *j) { cJSON_DeleteItemFromObject(j, "input"); }
static void schedule_step(cJSON *j) { cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "train"), "schedule", cJSON_CreateString("step")); }
static void no_edit(cJSON *j) { (void)j; }

static void test_meta_errors(void)
{
    expect_meta_error("epochs", drop_train_epochs, NULL, "train.epochs: missing");
    expect_meta_error("accuracy", accuracy_string, NULL, "accuracy: expected a number, got \"high\"");
    expect_meta_error("cmp", cmp_bits_3, NULL, "mpc.cmp_bits: expected an integer in [8, 64], got 3");
    expect_meta_error("frac", frac_bits_40, NULL, "mpc.frac_bits: expected an integer in [4, 18], got 40");
    expect_meta_error("typo", mpc_typo, NULL, "mpc.frac_bit: unknown key (did you mean \"frac_bits\"?)");
    expect_meta_error("mpcstr", mpc_string, NULL, "mpc: expected an object, got \"16/64\"");
    expect_meta_error("format", bad_format, NULL, "format: \"pinas-model/9\" is not supported");
    expect_meta_error("rounds", drop_rounds, NULL, "predicted_latency.cpu/wan.rounds: missing");
    expect_meta_error("std", negative_std, NULL, "normalize.std: expected positive numbers");
    expect_meta_error("arch", arch_number, NULL, "exported_from.arch.stem.act: expected a candidate name");
    expect_meta_error("input", drop_input, NULL, "input: missing");
    expect_meta_error("schedule", schedule_step, NULL, "train.schedule: expected \"cosine\" or \"constant\", got \"step\"");
    /* With a net, the meta must describe it. */
    pinas_net *n = load_json("{\"format\":\"pinas-net/1\",\"input\":[1,28,28],\"num_classes\":7,\"nodes\":["
                             "{\"id\":\"g\",\"op\":\"global_avgpool\"},{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":7}]}");
    expect_meta_error("classes", no_edit, n, "num_classes: 10, but net.json has 7");
    pinas_net_free(n);
}

static pinas_tensors *copy_weights(const pinas_tensors *from)
{
    pinas_tensors *w = pinas_tensors_create();
    for (int k = 0; k < pinas_tensors_count(from); k++) {
        pinas_tensor_view v;
        pinas_tensors_at(from, k, &v);
        CU_ASSERT_EQUAL(pinas_tensors_add(ctx, w, v.name, v.dtype, v.ndim, v.shape, v.data), PINAS_OK);
    }
    return w;
}

/* With a net, missing keys take the net's defaults; pinas_model_create moves the record in. */
static void test_meta_defaults_and_create(void)
{
    pinas_net *n = load_json("{\"format\":\"pinas-net/1\",\"name\":\"tiny\",\"input\":[2,4,4],\"num_classes\":3,\"nodes\":["
                             "{\"id\":\"g\",\"op\":\"global_avgpool\"},{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":3}]}");
    cJSON *j = cJSON_Parse("{\"format\": \"pinas-model/1\", \"mpc\": {\"cmp_bits\": 32}}");
    pinas_model_meta m;
    CU_ASSERT_EQUAL_FATAL(pinas_model_meta_from_json(ctx, j, "test", n, &m), PINAS_OK);
    cJSON_Delete(j);
    CU_ASSERT_STRING_EQUAL(m.name, "tiny");
    CU_ASSERT(m.input[0] == 2 && m.input[1] == 4 && m.input[2] == 4);
    CU_ASSERT_EQUAL(m.num_classes, 3);
    CU_ASSERT(m.mean[1] == 0 && m.std[1] == 1);
    CU_ASSERT_EQUAL(m.frac_bits, 16);
    CU_ASSERT_EQUAL(m.cmp_bits, 32);
    CU_ASSERT_STRING_EQUAL(m.source, "");
    CU_ASSERT(!m.train.present && !m.exported_from.present && m.n_latency == 0);
    pinas_model *rnd;
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 5, &rnd), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(rnd->meta.source, "random");
    pinas_model *made;
    CU_ASSERT_EQUAL_FATAL(pinas_model_create(ctx, pinas_net_clone(n), copy_weights(rnd->weights), &m, &made), PINAS_OK);
    CU_ASSERT_PTR_NULL(m.name); /* moved */
    CU_ASSERT_EQUAL(made->meta.cmp_bits, 32);
    pinas_model_meta_free(&m);
    /* A meta that disagrees with the net is refused, and everything given is freed. */
    pinas_model_meta bad;
    CU_ASSERT_EQUAL_FATAL(pinas_model_meta_default(ctx, n, &bad), PINAS_OK);
    bad.num_classes = 9;
    pinas_model *none = NULL;
    TU_ASSERT_ERR(ctx, pinas_model_create(ctx, pinas_net_clone(n), copy_weights(rnd->weights), &bad, &none), "meta: num_classes: 9, but net.json has 3");
    CU_ASSERT_PTR_NULL(none);
    CU_ASSERT_PTR_NULL(bad.name);
    pinas_model_free(made);
    pinas_model_free(rnd);
    pinas_net_free(n);
}

/* Sets element q of tensor `name` of w to v. */
static void poke(pinas_tensors *w, const char *name, size_t q, float v)
{
    pinas_tensor_view tv;
    CU_ASSERT_FATAL(pinas_tensors_find(w, name, &tv) == 0);
    ((float *)tv.data)[q] = v;
}

/* NaN/Inf weights and negative BN variances are refused at model creation and load, naming the tensor. */
static void test_nonfinite_weights(void)
{
    pinas_net *n = load_json("{\"format\":\"pinas-net/1\",\"name\":\"bn\",\"input\":[2,4,4],\"num_classes\":3,\"nodes\":["
                             "{\"id\":\"c\",\"op\":\"conv2d\",\"out_channels\":2,\"kernel\":3},"
                             "{\"id\":\"bn\",\"op\":\"batchnorm\"},{\"id\":\"g\",\"op\":\"global_avgpool\"},"
                             "{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":3}]}");
    pinas_model *rnd = NULL, *m = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, n, 5, &rnd), PINAS_OK);
    struct { const char *t; size_t q; float v; const char *msg; } cases[] = {
        {"c.weight", 4, NAN, "weights: tensor c.weight: element 4 is NaN"},
        {"fc.bias", 1, INFINITY, "tensor fc.bias: element 1 is +Inf"},
        {"bn.running_mean", 0, -INFINITY, "tensor bn.running_mean: element 0 is -Inf"},
        {"bn.running_var", 1, -0.5f, "tensor bn.running_var: element 1 is -0.5: a variance cannot be negative"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        pinas_tensors *w = copy_weights(rnd->weights);
        poke(w, cases[k].t, cases[k].q, cases[k].v);
        TU_ASSERT_ERR(ctx, pinas_model_create(ctx, pinas_net_clone(n), w, NULL, &m), cases[k].msg);
        CU_ASSERT_PTR_NULL(m);
    }
    /* the same through a model dir on disk: the message names the file */
    const char *dir = tu_path("nanmodel");
    poke(rnd->weights, "c.weight", 0, NAN);
    CU_ASSERT_EQUAL_FATAL(pinas_model_save(ctx, dir, rnd), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_model_load(ctx, dir, &m), "weights.safetensors: tensor c.weight: element 0 is NaN");
    pinas_model_free(rnd);
    pinas_net_free(n);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"hand-computed forward per activation", test_hand_computed},
                   {"conv and pools against direct loops", test_conv_pool_against_direct},
                   {"save, load and corrupt model dirs", test_save_load_and_corruption},
                   {"random weights deterministic", test_random_is_deterministic},
                   {"meta.json golden file round trip", test_meta_golden_roundtrip},
                   {"meta.json optional parts", test_meta_optional_parts},
                   {"meta.json errors name file and field", test_meta_errors},
                   {"meta.json defaults from the net, model create", test_meta_defaults_and_create},
                   {"non-finite weights and negative variances refused naming the tensor", test_nonfinite_weights}};
    int rc = tu_run("search_spaces_model", t, (int)(sizeof t / sizeof *t));
    pinas_ctx_free(ctx);
    return rc;
}
