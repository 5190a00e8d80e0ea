/* Tests for checkpoints and resume (train/checkpoint.c, train/trainer.c): a run killed after epoch 2 and resumed equals an uninterrupted one, bit for bit. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pinas_train.h"
#include "testutil.h"

static pinas_ctx *ctx;
static FILE *devnull;

static const char *NET =
    "{\"format\":\"pinas-net/1\",\"name\":\"resnetlet\",\"input\":[3,8,8],\"num_classes\":4,\"nodes\":["
    "{\"id\":\"c1\",\"op\":\"conv2d\",\"out_channels\":8,\"kernel\":3,\"padding\":1},{\"id\":\"b1\",\"op\":\"batchnorm\"},"
    "{\"id\":\"a1\",\"op\":\"act\",\"candidates\":[\"poly\"],\"poly_per_channel\":true},"
    "{\"id\":\"c2\",\"op\":\"conv2d\",\"out_channels\":8,\"kernel\":3,\"padding\":1},{\"id\":\"b2\",\"op\":\"batchnorm\"},"
    "{\"id\":\"r\",\"op\":\"add\",\"inputs\":[\"b2\",\"a1\"]},{\"id\":\"a2\",\"op\":\"act\",\"candidates\":[\"relu\"]},"
    "{\"id\":\"p\",\"op\":\"pool\",\"candidates\":[\"maxpool\"],\"kernel\":2,\"stride\":2},"
    "{\"id\":\"g\",\"op\":\"global_avgpool\"},{\"id\":\"fc\",\"op\":\"linear\",\"out_features\":4,\"bias\":true}]}";

static pinas_net *load_net(void)
{
    cJSON *j = cJSON_Parse(NET);
    pinas_net *n = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_from_json(ctx, j, "test", &n), PINAS_OK);
    cJSON_Delete(j);
    return n;
}

static pinas_dataset *data(void)
{
    pinas_data_opts o = {.dataset = "synthetic", .synthetic_train = 160, .synthetic_test = 40, .synthetic_classes = 4,
                         .synthetic_size = 8, .val_fraction = 0.5, .seed = 21};
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    return d;
}

static pinas_train_opts opts(const char *dir)
{
    pinas_train_opts o = {.epochs = 3, .batch_size = 16, .lr = 0.1, .cosine = 1, .momentum = 0.9, .nesterov = 1, .weight_decay = 5e-4,
                          .label_smoothing = 0.1, .augment = 1, .train_split = PINAS_SPLIT_TRAIN_ALL, .eval_split = PINAS_SPLIT_TEST,
                          .seed = 4, .run_dir = dir, .phase = "train", .resume = 1, .progress = devnull};
    return o;
}

/* Log sink of the child: dies (as if killed) right after epoch 2 was checkpointed and logged. */
static void die_after_epoch2(void *user, pinas_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    if (strstr(msg, "epoch 2/3")) _exit(0);
}

static pinas_tensors *train_in(const char *dir, pinas_train_result *r)
{
    pinas_net *net = load_net();
    pinas_dataset *d = data();
    pinas_tnet *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 9, &t), PINAS_OK);
    pinas_train_opts o = opts(dir);
    pinas_status s = pinas_train_tnet(ctx, t, d, &o, r);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    pinas_tensors *w = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, t, NULL, &w), PINAS_OK);
    pinas_tnet_free(t);
    pinas_dataset_free(d);
    pinas_net_free(net);
    return w;
}

static int count_lines(const char *path, char *last, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int k = 0;
    while (fgets(line, sizeof line, f)) {
        k++;
        snprintf(last, n, "%s", line);
    }
    fclose(f);
    return k;
}

static void test_resume_is_bit_identical(void)
{
    /* The interrupted run happens in a child process, forked before this process touches libtorch. */
    const char *dir_b = tu_path("interrupted");
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        pinas_ctx_set_log_level(ctx, PINAS_LOG_DEBUG);
        pinas_ctx_set_log_fn(ctx, die_after_epoch2, NULL);
        pinas_train_result r;
        pinas_tensors *w = train_in(dir_b, &r);
        (void)w;
        _exit(3); /* reaching the end means the interruption did not happen */
    }
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char last[4096] = "";
    char *log_b = pinas_path_join(dir_b, "log.jsonl");
    CU_ASSERT_EQUAL(count_lines(log_b, last, sizeof last), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(last, "\"epoch\":2"));

    pinas_train_result ra, rb;
    pinas_tensors *wa = train_in(tu_path("straight"), &ra);
    pinas_tensors *wb = train_in(dir_b, &rb); /* resumes from the checkpoint of epoch 2 */
    CU_ASSERT_EQUAL(ra.epochs_run, 3);
    CU_ASSERT_EQUAL(rb.epochs_run, 1);
    CU_ASSERT_EQUAL(count_lines(log_b, last, sizeof last), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(last, "\"epoch\":3"));
    CU_ASSERT_EQUAL(ra.eval_acc, rb.eval_acc);
    CU_ASSERT_EQUAL(ra.eval_loss, rb.eval_loss);
    CU_ASSERT(ra.eval_acc > 0.25); /* it learned something: chance is 0.25 */
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_count(wa), pinas_tensors_count(wb));
    int same = 0;
    for (int k = 0; k < pinas_tensors_count(wa); k++) {
        pinas_tensor_view va, vb;
        pinas_tensors_at(wa, k, &va);
        CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(wb, va.name, &vb), 0);
        if (va.nbytes == vb.nbytes && memcmp(va.data, vb.data, va.nbytes) == 0) same++;
        else fprintf(stderr, "\n  %s differs after resume\n", va.name);
    }
    CU_ASSERT_EQUAL(same, pinas_tensors_count(wa));
    /* Resuming a finished run trains nothing and reports the same accuracy. */
    pinas_train_result rc;
    pinas_tensors *wc = train_in(dir_b, &rc);
    CU_ASSERT_EQUAL(rc.epochs_run, 0);
    CU_ASSERT_EQUAL(rc.eval_acc, ra.eval_acc);
    pinas_tensors_free(wa);
    pinas_tensors_free(wb);
    pinas_tensors_free(wc);
    free(log_b);
}

static void test_checkpoint_errors(void)
{
    pinas_net *net = load_net();
    pinas_tnet *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, net, 1, &t), PINAS_OK);
    pinas_sgd_opts so = {.lr = 0.1, .momentum = 0.9};
    pinas_optim *o = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_optim_sgd(ctx, pinas_tnet_weights(t), pinas_tnet_n_weights(t), &so, &o), PINAS_OK);
    cJSON *extra = cJSON_Parse("{\"lambda\": 0.5, \"tau\": [1, 2]}");
    const char *path = tu_path("ck.safetensors");
    CU_ASSERT_EQUAL_FATAL(pinas_checkpoint_save(ctx, path, t, &o, 1, 7, extra), PINAS_OK);
    int epoch = 0;
    cJSON *back = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_checkpoint_load(ctx, path, t, &o, 1, &epoch, &back), PINAS_OK);
    CU_ASSERT_EQUAL(epoch, 7);
    CU_ASSERT(cJSON_Compare(extra, back, 1));
    cJSON_Delete(back);
    /* Wrong optimizer count. */
    TU_ASSERT_ERR(ctx, pinas_checkpoint_load(ctx, path, t, NULL, 0, &epoch, NULL), "holds 1 optimizer states, this run has 0");
    /* Another net. */
    char *text = strdup(NET), *q;
    while ((q = strstr(text, "\"out_channels\":8"))) q[15] = '6';
    cJSON *j = cJSON_Parse(text);
    pinas_net *n2 = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_from_json(ctx, j, "other", &n2), PINAS_OK);
    free(text);
    pinas_tnet *t2 = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, n2, 1, &t2), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_checkpoint_load(ctx, path, t2, &o, 1, &epoch, NULL), "but this run trains net");
    /* Not a checkpoint, and a missing file. */
    pinas_tensors *plain = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, t, NULL, &plain), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_safetensors_save(ctx, tu_path("w.safetensors"), plain, NULL), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_checkpoint_load(ctx, tu_path("w.safetensors"), t, &o, 1, &epoch, NULL), "not a pinas checkpoint");
    TU_ASSERT_ERR(ctx, pinas_checkpoint_load(ctx, tu_path("nope.safetensors"), t, &o, 1, &epoch, NULL), "nope.safetensors");
    pinas_tensors_free(plain);
    cJSON_Delete(j);
    cJSON_Delete(extra);
    pinas_tnet_free(t2);
    pinas_net_free(n2);
    pinas_optim_free(o);
    pinas_tnet_free(t);
    pinas_net_free(net);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    devnull = fopen("/dev/null", "w");
    const tu_test tests[] = {
        {"checkpoint -> resume equals an uninterrupted run", test_resume_is_bit_identical},
        {"checkpoint errors", test_checkpoint_errors},
    };
    int rc = tu_run("train_resume", tests, (int)(sizeof tests / sizeof tests[0]));
    fclose(devnull);
    pinas_ctx_free(ctx);
    return rc;
}
