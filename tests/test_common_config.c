/* Tests for common/config.c: the typed records get the schema's defaults, file and --set values, and
 * errors name the file and the field (types, ranges, unknown keys, cross-field checks). */
#include <stdlib.h>
#include <string.h>

#include "pinas_config.h"
#include "testutil.h"

static pinas_ctx *ctx;

/* Every record field holds the default the schema documents (`pinas config schema`). */
static void test_defaults(void)
{
    pinas_config *c;
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, NULL, NULL, 0, &c), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(c->name, "run");
    CU_ASSERT_EQUAL(c->seed, 0);
    CU_ASSERT_STRING_EQUAL(c->device, "cpu");
    CU_ASSERT_EQUAL(c->threads, 0);
    CU_ASSERT_STRING_EQUAL(c->out_dir, "results");
    CU_ASSERT_STRING_EQUAL(c->space_path, "search_spaces/spaces/quickstart.json");
    CU_ASSERT_PTR_NULL(c->space_inline);
    CU_ASSERT_STRING_EQUAL(c->source, "");

    const pinas_cfg_data *d = &c->data;
    CU_ASSERT_EQUAL(d->dataset, PINAS_DATASET_SYNTHETIC);
    CU_ASSERT_STRING_EQUAL(d->dataset_name, "synthetic");
    CU_ASSERT_STRING_EQUAL(d->path, "");
    CU_ASSERT_EQUAL(d->train_images, 0);
    CU_ASSERT_EQUAL(d->test_images, 0);
    CU_ASSERT_EQUAL(d->pad, 0);
    CU_ASSERT_EQUAL(d->resize, 0);
    CU_ASSERT_EQUAL(d->channels, 0);
    CU_ASSERT_EQUAL(d->eval_resize, 0);
    CU_ASSERT_EQUAL(d->crop_pad, -1);
    CU_ASSERT_DOUBLE_EQUAL(d->scale_min, 0, 0);
    CU_ASSERT_EQUAL(d->n_mean, 0);
    CU_ASSERT_EQUAL(d->n_std, 0);
    CU_ASSERT_EQUAL(d->synthetic_train, 2000);
    CU_ASSERT_EQUAL(d->synthetic_test, 500);
    CU_ASSERT_EQUAL(d->synthetic_classes, 10);
    CU_ASSERT_EQUAL(d->synthetic_size, 16);
    CU_ASSERT_DOUBLE_EQUAL(d->val_fraction, 0.5, 0);
    CU_ASSERT_EQUAL(d->augment, 1);
    CU_ASSERT_EQUAL(d->flip, PINAS_FLIP_AUTO);

    const pinas_cfg_train *t = &c->train;
    CU_ASSERT_EQUAL(t->epochs, 10);
    CU_ASSERT_EQUAL(t->batch_size, 64);
    CU_ASSERT_DOUBLE_EQUAL(t->lr, 0.05, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->momentum, 0.9, 0);
    CU_ASSERT_EQUAL(t->nesterov, 1);
    CU_ASSERT_DOUBLE_EQUAL(t->weight_decay, 5e-4, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->label_smoothing, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->grad_clip, 0, 0);
    CU_ASSERT_EQUAL(t->schedule, PINAS_SCHEDULE_COSINE);
    CU_ASSERT_STRING_EQUAL(t->teacher, "");
    CU_ASSERT_DOUBLE_EQUAL(t->kd_alpha, 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->kd_temperature, 4, 0);

    const pinas_cfg_search *s = &c->search;
    CU_ASSERT_EQUAL(s->warmup_epochs, 2);
    CU_ASSERT_EQUAL(s->epochs, 8);
    CU_ASSERT_DOUBLE_EQUAL(s->arch_lr, 3e-3, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->arch_weight_decay, 1e-3, 0);
    CU_ASSERT_EQUAL(s->loss, PINAS_LOSS_ADDITIVE);
    CU_ASSERT_EQUAL_FATAL(s->n_lambdas, 3);
    CU_ASSERT_DOUBLE_EQUAL(s->lambdas[0], 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->lambdas[1], 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->lambdas[2], 2, 0);
    CU_ASSERT_EQUAL(s->n_targets, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->beta, 0.6, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->ref_ms, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->tau_start, 5, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->tau_end, 0.5, 0);
    CU_ASSERT_EQUAL(s->target_clamp, 1);
    CU_ASSERT_EQUAL(s->gumbel, 0);
    CU_ASSERT_STRING_EQUAL(s->hw, "cpu");
    CU_ASSERT_STRING_EQUAL(s->net, "lan");
    CU_ASSERT_EQUAL(s->baselines, 1);
    CU_ASSERT_EQUAL(s->naive_first_k, 0);
    CU_ASSERT_EQUAL(s->naive_random, 0);
    CU_ASSERT_EQUAL_FATAL(s->n_naive_bases, 2);
    CU_ASSERT_EQUAL(s->naive_bases[0], PINAS_NAIVE_BASE_CHEAPEST);
    CU_ASSERT_EQUAL(s->naive_bases[1], PINAS_NAIVE_BASE_POLY);

    CU_ASSERT_EQUAL(c->finetune.mode, PINAS_FINETUNE_SUPERNET);
    CU_ASSERT_EQUAL(c->finetune.epochs, 4);
    CU_ASSERT_DOUBLE_EQUAL(c->finetune.lr, 0.02, 0);
    CU_ASSERT_EQUAL(c->finetune.distill, 0);

    CU_ASSERT_EQUAL_FATAL(c->latency.n_hw, 3);
    CU_ASSERT_STRING_EQUAL(c->latency.hw[0], "cpu");
    CU_ASSERT_STRING_EQUAL(c->latency.hw[1], "fpga-zcu104");
    CU_ASSERT_STRING_EQUAL(c->latency.hw[2], "pasnet");
    CU_ASSERT_EQUAL_FATAL(c->latency.n_net, 2);
    CU_ASSERT_STRING_EQUAL(c->latency.net[0], "lan");
    CU_ASSERT_STRING_EQUAL(c->latency.net[1], "wan");

    CU_ASSERT_EQUAL(c->mpc.frac_bits, PINAS_FRAC_BITS_DEFAULT);
    CU_ASSERT_EQUAL(c->mpc.cmp_bits, PINAS_CMP_BITS_DEFAULT);
    CU_ASSERT_EQUAL(PINAS_FRAC_BITS_DEFAULT, 16); /* today's values: the runtime's tests depend on them */
    CU_ASSERT_EQUAL(PINAS_CMP_BITS_DEFAULT, 64);
    CU_ASSERT_DOUBLE_EQUAL(c->export_.budget_ms, 0, 0);
    CU_ASSERT_EQUAL(c->infer.images, 64);
    pinas_config_free(c);
    pinas_config_free(NULL);
}

/* The file overrides the defaults, --set overrides the file, and every value lands in its record. */
static void test_file_and_set(void)
{
    const char *p = tu_path("cfg.json");
    tu_write(p, "{\"name\": \"exp1\", \"seed\": 4294967295, \"train\": {\"epochs\": 3, \"lr\": 0.2, \"schedule\": \"constant\"},"
                " \"search\": {\"lambdas\": [0, 1], \"naive_bases\": [\"poly\"]}, \"data\": {\"mean\": [0.5, 0.4, 0.3],"
                " \"std\": [0.2, 0.2, 0.25], \"flip\": \"off\", \"crop_pad\": 0, \"train_images\": 1000000000},"
                " \"latency\": {\"hw\": [\"pasnet\"]}, \"space\": {\"format\": \"pinas-net/1\"}}");
    const char *sets[] = {"train.epochs=7",        "data.dataset=fashion-mnist", "search.gumbel=true",   "name=from-set",
                          "search.lambdas=[0.5]",  "mpc.frac_bits=12",           "mpc.cmp_bits=40",      "train.teacher=m/dir",
                          "finetune.mode=scratch", "search.hw=fpga-zcu104",      "export.budget_ms=2.5", "device=cuda"};
    pinas_config *c;
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, p, sets, 12, &c), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(c->source, p);
    CU_ASSERT_EQUAL(c->train.epochs, 7);             /* --set wins over the file */
    CU_ASSERT_DOUBLE_EQUAL(c->train.lr, 0.2, 1e-12); /* the file wins over defaults */
    CU_ASSERT_EQUAL(c->train.batch_size, 64);        /* defaults fill the rest */
    CU_ASSERT_EQUAL(c->train.schedule, PINAS_SCHEDULE_CONSTANT);
    CU_ASSERT_STRING_EQUAL(c->train.teacher, "m/dir");
    CU_ASSERT_EQUAL(c->data.dataset, PINAS_DATASET_FASHION_MNIST);
    CU_ASSERT_STRING_EQUAL(c->data.dataset_name, "fashion-mnist");
    CU_ASSERT_EQUAL(c->data.flip, PINAS_FLIP_OFF);
    CU_ASSERT_EQUAL(c->data.crop_pad, 0);
    CU_ASSERT_EQUAL(c->data.train_images, 1000000000);
    CU_ASSERT_EQUAL_FATAL(c->data.n_mean, 3);
    CU_ASSERT_EQUAL(c->data.n_std, 3);
    CU_ASSERT_DOUBLE_EQUAL(c->data.mean[2], 0.3, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->data.std[2], 0.25, 0);
    CU_ASSERT_EQUAL(c->seed, 4294967295ULL);
    CU_ASSERT_TRUE(c->search.gumbel);
    CU_ASSERT_STRING_EQUAL(c->name, "from-set");
    CU_ASSERT_EQUAL_FATAL(c->search.n_lambdas, 1);
    CU_ASSERT_DOUBLE_EQUAL(c->search.lambdas[0], 0.5, 0);
    CU_ASSERT_EQUAL_FATAL(c->search.n_naive_bases, 1);
    CU_ASSERT_EQUAL(c->search.naive_bases[0], PINAS_NAIVE_BASE_POLY);
    CU_ASSERT_STRING_EQUAL(c->search.hw, "fpga-zcu104");
    CU_ASSERT_EQUAL_FATAL(c->latency.n_hw, 1);
    CU_ASSERT_STRING_EQUAL(c->latency.hw[0], "pasnet");
    CU_ASSERT_EQUAL(c->latency.n_net, 2);
    CU_ASSERT_EQUAL(c->mpc.frac_bits, 12);
    CU_ASSERT_EQUAL(c->mpc.cmp_bits, 40);
    CU_ASSERT_EQUAL(c->finetune.mode, PINAS_FINETUNE_SCRATCH);
    CU_ASSERT_DOUBLE_EQUAL(c->export_.budget_ms, 2.5, 0);
    CU_ASSERT_STRING_EQUAL(c->device, "cuda");
    CU_ASSERT_PTR_NULL(c->space_path);
    CU_ASSERT_PTR_NOT_NULL(c->space_inline);
    /* The effective JSON (for config.json) holds the same values, in schema order. */
    const cJSON *j = pinas_config_json(c);
    CU_ASSERT_STRING_EQUAL(j->child->string, "name");
    CU_ASSERT_STRING_EQUAL(j->child->valuestring, "from-set");
    pinas_config_free(c);

    const char *mult[] = {"search.loss=multiplicative", "search.targets_ms=[5, 10]"};
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, NULL, mult, 2, &c), PINAS_OK);
    CU_ASSERT_EQUAL(c->search.loss, PINAS_LOSS_MULTIPLICATIVE);
    CU_ASSERT_EQUAL_FATAL(c->search.n_targets, 2);
    CU_ASSERT_DOUBLE_EQUAL(c->search.targets_ms[1], 10, 0);
    pinas_config_free(c);
}

/* The effective JSON read back as a config gives the same JSON (what a resumed search does). */
static void test_round_trip(void)
{
    const char *sets[] = {"data.mean=[0.5]", "data.std=[0.25]", "search.naive_random=3"};
    pinas_config *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, NULL, sets, 3, &a), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_config_from_json(ctx, pinas_config_json(a), "config.json", NULL, 0, &b), PINAS_OK);
    char *ta = cJSON_Print(pinas_config_json(a)), *tb = cJSON_Print(pinas_config_json(b));
    CU_ASSERT_STRING_EQUAL(ta, tb);
    CU_ASSERT_EQUAL(b->data.n_mean, 1);
    CU_ASSERT_EQUAL(b->search.naive_random, 3);
    free(ta);
    free(tb);
    pinas_config_free(a);
    pinas_config_free(b);
}

static pinas_status load_text(const char *text, const char *set)
{
    const char *p = tu_path("bad.json");
    tu_write(p, text);
    pinas_config *c = NULL;
    const char *sets[1] = {set};
    pinas_status s = pinas_config_load(ctx, p, sets, set ? 1 : 0, &c);
    pinas_config_free(c);
    return s;
}

static void test_errors(void)
{
    char want[512];
    snprintf(want, sizeof want, "%s: train.epochs: expected a positive integer, got \"ten\"", tu_path("bad.json"));
    CU_ASSERT_EQUAL(load_text("{\"train\": {\"epochs\": \"ten\"}}", NULL), PINAS_EINVAL);
    CU_ASSERT_STRING_EQUAL(pinas_errmsg(ctx), want);
    TU_ASSERT_ERR(ctx, load_text("{\"train\": {\"epoch\": 3}}", NULL), "train.epoch: unknown key (did you mean \"train.epochs\"?)");
    TU_ASSERT_ERR(ctx, load_text("{\"trian\": {\"epochs\": 3}}", NULL), "trian: unknown key");
    TU_ASSERT_ERR(ctx, load_text("{\"train\": 5}", NULL), "train: expected an object (a section), got 5");
    TU_ASSERT_ERR(ctx, load_text("{\"data\": {\"dataset\": \"svhn\"}}", NULL), "data.dataset: expected one of synthetic,cifar10,cifar100,mnist,fashion-mnist,imagefolder");
    TU_ASSERT_ERR(ctx, load_text("{\"train\": {\"lr\": -1}}", NULL), "train.lr: expected a number in [0, 10], got -1");
    TU_ASSERT_ERR(ctx, load_text("{\"search\": {\"lambdas\": [1, \"x\"]}}", NULL), "search.lambdas: expected an array of numbers");
    TU_ASSERT_ERR(ctx, load_text("{\"search\": {\"naive_bases\": [\"relu\"]}}", NULL), "search.naive_bases: expected an array of strings from cheapest|poly");
    TU_ASSERT_ERR(ctx, load_text("{\"train\": {\"nesterov\": \"yes\"}}", NULL), "train.nesterov: expected true or false, got \"yes\"");
    TU_ASSERT_ERR(ctx, load_text("{\"train\": {\"epochs\": 3,}}", NULL), "bad.json:1:");
    TU_ASSERT_ERR(ctx, load_text("[]", NULL), "expected a JSON object at the top level");
    TU_ASSERT_ERR(ctx, load_text("{\"format\": \"other/2\"}", NULL), "format: expected \"pinas-config/1\"");
    CU_ASSERT_EQUAL(load_text("{\"format\": \"pinas-config/1\"}", NULL), PINAS_OK);
    TU_ASSERT_ERR(ctx, load_text("{}", "train.epochs=ten"), "--set: train.epochs: expected a positive integer, got \"ten\"");
    TU_ASSERT_ERR(ctx, load_text("{}", "train.epocs=3"), "--set: train.epocs: unknown key (did you mean \"train.epochs\"?)");
    TU_ASSERT_ERR(ctx, load_text("{}", "serach.lambdas=[1]"), "--set: serach.lambdas: unknown key (did you mean \"search.lambdas\"?)");
    TU_ASSERT_ERR(ctx, load_text("{}", "noequals"), "--set noequals: expected key.path=value");
    /* The fixed-point limits come from PINAS_FRAC_BITS_* / PINAS_CMP_BITS_*. */
    TU_ASSERT_ERR(ctx, load_text("{\"mpc\": {\"frac_bits\": 3}}", NULL), "mpc.frac_bits: expected an integer in [4, 18], got 3");
    TU_ASSERT_ERR(ctx, load_text("{}", "mpc.cmp_bits=65"), "--set: mpc.cmp_bits: expected an integer in [8, 64], got 65");
    pinas_config *c;
    TU_ASSERT_ERR(ctx, pinas_config_load(ctx, tu_path("missing.json"), NULL, 0, &c), "cannot open");
}

/* Checks across fields name the file (or --set without one) and the field. */
static void test_cross_field_errors(void)
{
    char want[512];
    snprintf(want, sizeof want, "%s: data.std: expected as many values as data.mean (3), got 1", tu_path("bad.json"));
    CU_ASSERT_EQUAL(load_text("{\"data\": {\"mean\": [0.1, 0.2, 0.3], \"std\": [0.5]}}", NULL), PINAS_EINVAL);
    CU_ASSERT_STRING_EQUAL(pinas_errmsg(ctx), want);
    TU_ASSERT_ERR(ctx, load_text("{\"data\": {\"std\": [0.5]}}", NULL), "bad.json: data.std: expected as many values as data.mean (0), got 1");
    TU_ASSERT_ERR(ctx, load_text("{\"data\": {\"mean\": [0.1, 0.2, 0.3, 0.4], \"std\": [1, 1, 1, 1]}}", NULL),
                  "bad.json: data.mean: expected at most 3 values (one per channel), got 4");
    TU_ASSERT_ERR(ctx, load_text("{\"search\": {\"lambdas\": []}}", NULL),
                  "bad.json: search.lambdas: the additive loss needs at least one value to search with");
    TU_ASSERT_ERR(ctx, load_text("{\"search\": {\"loss\": \"multiplicative\"}}", NULL),
                  "bad.json: search.targets_ms: the multiplicative loss needs at least one value to search with");
    TU_ASSERT_ERR(ctx, load_text("{\"search\": {\"loss\": \"multiplicative\", \"targets_ms\": [5, 0]}}", NULL),
                  "bad.json: search.targets_ms: targets must be > 0 ms, got 0");
    TU_ASSERT_ERR(ctx, load_text("{\"search\": {\"naive_bases\": [\"poly\", \"poly\"]}}", NULL),
                  "bad.json: search.naive_bases: expected each of cheapest, poly at most once");
    /* A file of the other loss's values alone is fine: only the chosen loss needs its list. */
    CU_ASSERT_EQUAL(load_text("{\"search\": {\"loss\": \"additive\", \"targets_ms\": []}}", NULL), PINAS_OK);
    pinas_config *c = NULL;
    const char *sets[] = {"search.lambdas=[]"};
    TU_ASSERT_ERR(ctx, pinas_config_load(ctx, NULL, sets, 1, &c), "--set: search.lambdas: the additive loss needs at least one value");
    CU_ASSERT_PTR_NULL(c);
}

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(pinas_dataset_kind_name(PINAS_DATASET_CIFAR100), "cifar100");
    CU_ASSERT_STRING_EQUAL(pinas_dataset_kind_name(PINAS_DATASET_IMAGEFOLDER), "imagefolder");
    CU_ASSERT_STRING_EQUAL(pinas_dataset_kind_name((pinas_dataset_kind)99), "?");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"defaults fill every record", test_defaults},
                   {"file and --set overrides land in the records", test_file_and_set},
                   {"effective JSON round trip", test_round_trip},
                   {"errors name file and field", test_errors},
                   {"cross-field errors name file and field", test_cross_field_errors},
                   {"dataset names", test_names}};
    int rc = tu_run("common_config", t, 6);
    pinas_ctx_free(ctx);
    return rc;
}
