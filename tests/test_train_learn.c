/* Tests that training works end to end (train/trainer.c, train/run.c): the synthetic set is learnable, models agree with the plaintext executor, KD runs. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_train.h"
#include "testutil.h"

static pinas_ctx *ctx;
static FILE *devnull;

/* A tiny CNN: two conv-BN-ReLU stages, a max pool, global pooling, a linear head. */
static const char *TINY =
    "{\"format\":\"pinas-net/1\",\"name\":\"tiny\",\"input\":[3,16,16],\"num_classes\":10,\"nodes\":["
    "{\"id\":\"c1\",\"op\":\"conv2d\",\"out_channels\":16,\"kernel\":3,\"padding\":1},{\"id\":\"b1\",\"op\":\"batchnorm\"},"
    "{\"id\":\"a1\",\"op\":\"act\",\"candidates\":[\"%s\"]},{\"id\":\"p1\",\"op\":\"pool\",\"candidates\":[\"maxpool\"],\"kernel\":2,\"stride\":2},"
    "{\"id\":\"c2\",\"op\":\"conv2d\",\"out_channels\":32,\"kernel\":3,\"padding\":1},{\"id\":\"b2\",\"op\":\"batchnorm\"},"
    "{\"id\":\"a2\",\"op\":\"act\",\"candidates\":[\"%s\"]},"
    "{\"id\":\"g\",\"op\":\"global_avgpool\"},{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":10,\"bias\":true}]}";

static pinas_net *tiny(const char *a1, const char *a2)
{
    char text[2048];
    snprintf(text, sizeof text, TINY, a1, a2);
    cJSON *j = cJSON_Parse(text);
    pinas_net *n = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_from_json(ctx, j, "tiny", &n), PINAS_OK);
    cJSON_Delete(j);
    return n;
}

static pinas_dataset *data(void)
{
    pinas_data_opts o = {.dataset = "synthetic", .synthetic_train = 1000, .synthetic_test = 400, .synthetic_classes = 10,
                         .synthetic_size = 16, .val_fraction = 0.5, .seed = 1};
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    return d;
}

static pinas_train_opts opts(int epochs)
{
    pinas_train_opts o = {.epochs = epochs, .batch_size = 32, .lr = 0.05, .cosine = 1, .momentum = 0.9, .nesterov = 1,
                          .weight_decay = 5e-4, .augment = 1, .train_split = PINAS_SPLIT_TRAIN_ALL, .eval_split = PINAS_SPLIT_TEST,
                          .seed = 1, .phase = "train", .progress = devnull};
    return o;
}

/* Accuracy of a model over the test split with the plaintext executor. */
static double plain_accuracy(const pinas_model *m, const pinas_dataset *d)
{
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    int n = di.n[PINAS_SPLIT_TEST];
    size_t img = (size_t)di.c * di.h * di.w;
    float *x = malloc((size_t)n * img * sizeof(float)), *lg = malloc((size_t)n * 10 * sizeof(float));
    int64_t *y = malloc((size_t)n * sizeof(int64_t));
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 0, n, x, y), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_plain_forward(ctx, m, x, n, lg), PINAS_OK);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (lg[i * 10 + k] > lg[i * 10 + best]) best = k;
        ok += best == y[i];
    }
    free(x);
    free(lg);
    free(y);
    return (double)ok / n;
}

static void test_synthetic_is_learnable(void)
{
    pinas_dataset *d = data();
    pinas_net *net = tiny("relu", "relu");
    pinas_train_opts o = opts(4);
    o.run_dir = tu_path("learn");
    pinas_model *m = NULL;
    pinas_model_meta base;
    pinas_model_meta_init(&base);
    CU_ASSERT_EQUAL_FATAL(pinas_model_meta_set_str(ctx, &base.source, "test"), PINAS_OK);
    base.frac_bits = 14;
    base.cmp_bits = 40;
    pinas_status s = pinas_train_model(ctx, net, NULL, d, &o, &base, &m);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    double acc = m->meta.accuracy;
    CU_ASSERT_FATAL(!isnan(acc));
    fprintf(stderr, "\n  tiny net, 4 epochs: test accuracy %.3f (chance 0.100)\n", acc);
    CU_ASSERT(acc > 0.5); /* far above chance */
    /* The exported model gives the same accuracy in the plaintext executor (BN folded the same way). */
    CU_ASSERT_DOUBLE_EQUAL(plain_accuracy(m, d), acc, 0.006);
    /* meta: normalisation of the dataset, the base's fields, the train options. */
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    CU_ASSERT_DOUBLE_EQUAL(m->meta.mean[2], di.mean[2], 1e-6);
    CU_ASSERT_STRING_EQUAL(m->meta.name, pinas_net_name(net));
    CU_ASSERT_EQUAL(m->meta.input[0], 3);
    CU_ASSERT_EQUAL(m->meta.num_classes, 10);
    CU_ASSERT_STRING_EQUAL(m->meta.dataset, "synthetic");
    CU_ASSERT_STRING_EQUAL(m->meta.source, "test");
    CU_ASSERT_EQUAL(m->meta.frac_bits, 14);
    CU_ASSERT_EQUAL(m->meta.cmp_bits, 40);
    CU_ASSERT_TRUE(m->meta.train.present);
    CU_ASSERT_EQUAL(m->meta.train.epochs, 4);
    CU_ASSERT_STRING_EQUAL(m->meta.train.phase, "train");
    CU_ASSERT_STRING_EQUAL(m->meta.train.eval_split, "test");
    CU_ASSERT_PTR_NULL(m->meta.train.teacher);
    /* The model dir round trip. */
    CU_ASSERT_EQUAL_FATAL(pinas_model_save(ctx, tu_path("model"), m), PINAS_OK);
    pinas_model *back = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_model_load(ctx, tu_path("model"), &back), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_model_hash(back), pinas_model_hash(m));
    pinas_model_free(back);
    /* A decided net is required; a dataset of another shape is refused. */
    pinas_net *open = NULL;
    {
        char text[2048];
        snprintf(text, sizeof text, TINY, "relu\",\"poly", "relu");
        cJSON *j = cJSON_Parse(text);
        CU_ASSERT_EQUAL_FATAL(pinas_net_from_json(ctx, j, "open", &open), PINAS_OK);
        cJSON_Delete(j);
    }
    pinas_model *bad = NULL;
    TU_ASSERT_ERR(ctx, pinas_train_model(ctx, open, NULL, d, &o, NULL, &bad), "has 1 open slots");
    pinas_data_opts small = {.dataset = "synthetic", .synthetic_train = 20, .synthetic_test = 10, .synthetic_classes = 10,
                             .synthetic_size = 8, .val_fraction = 0.5, .seed = 1};
    pinas_dataset *d8 = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &small, &d8), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_train_model(ctx, net, NULL, d8, &o, NULL, &bad), "takes [3, 16, 16] inputs but dataset synthetic has [3, 8, 8]");
    pinas_dataset_free(d8);
    pinas_net_free(open);
    /* Knowledge distillation from the trained model: a poly student learns with the teacher's help. */
    pinas_net *student = tiny("poly", "relu");
    pinas_train_opts ok = opts(2);
    ok.teacher = tu_path("model");
    ok.kd_alpha = 0.5;
    ok.kd_temperature = 4;
    pinas_model *sm = NULL;
    s = pinas_train_model(ctx, student, NULL, d, &ok, NULL, &sm);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    CU_ASSERT(sm->meta.accuracy > 0.3);
    CU_ASSERT_STRING_EQUAL(sm->meta.train.teacher, tu_path("model"));
    CU_ASSERT_DOUBLE_EQUAL(sm->meta.train.kd_alpha, 0.5, 0);
    ok.teacher = tu_path("no-such-model");
    TU_ASSERT_ERR(ctx, pinas_train_model(ctx, student, NULL, d, &ok, NULL, &bad), "no-such-model");
    pinas_model_free(sm);
    pinas_net_free(student);
    pinas_model_meta_free(&base);
    pinas_model_free(m);
    pinas_net_free(net);
    pinas_dataset_free(d);
}

/* A supernet trains too (weights only: the trainer leaves alphas alone). */
static void test_supernet_weights_only(void)
{
    pinas_dataset *d = data();
    pinas_net *net = tiny("relu\",\"poly\",\"patch_relu:2x2", "relu\",\"identity");
    pinas_tnet *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 2, &t), PINAS_OK);
    float before[3], after[3];
    CU_ASSERT_EQUAL(pt_to_f32(pinas_tnet_alpha(t, 0, NULL), before, 3), 0);
    pinas_train_opts o = opts(1);
    o.max_steps = 25;
    pinas_train_result r;
    CU_ASSERT_EQUAL_FATAL(pinas_train_tnet(ctx, t, d, &o, &r), PINAS_OK);
    CU_ASSERT_EQUAL(pt_to_f32(pinas_tnet_alpha(t, 0, NULL), after, 3), 0);
    CU_ASSERT_EQUAL(memcmp(before, after, sizeof before), 0);
    fprintf(stderr, "\n  supernet, 25 steps: train acc %.3f loss %.3f, test acc %.3f\n", r.train_acc, r.train_loss, r.eval_acc);
    CU_ASSERT(r.eval_acc > 0.15);
    CU_ASSERT(r.train_loss > 0 && r.train_loss < 2.4);
    pinas_tnet_free(t);
    pinas_net_free(net);
    pinas_dataset_free(d);
}

static void test_cosine(void)
{
    CU_ASSERT_DOUBLE_EQUAL(pinas_cosine_lr(0.1, 0.0, 0, 100), 0.1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cosine_lr(0.1, 0.0, 50, 100), 0.05, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cosine_lr(0.1, 0.01, 100, 100), 0.01, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cosine_lr(0.1, 0.0, 200, 100), 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cosine_lr(0.1, 0.0, 25, 100), 0.05 * (1 + cos(M_PI / 4)), 1e-12);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    devnull = fopen("/dev/null", "w");
    const tu_test tests[] = {
        {"the synthetic set is learnable; model = plaintext; KD", test_synthetic_is_learnable},
        {"supernet weight training leaves alphas", test_supernet_weights_only},
        {"cosine schedule", test_cosine},
    };
    int rc = tu_run("train_learn", tests, (int)(sizeof tests / sizeof tests[0]));
    fclose(devnull);
    pinas_ctx_free(ctx);
    return rc;
}
