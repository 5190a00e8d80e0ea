/* Tests for common/config.c: schema defaults, file overrides, --set, and errors naming file and field. */
#include <string.h>

#include "testutil.h"

static pinas_ctx *ctx;

static void test_defaults(void)
{
    pinas_config *c;
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, NULL, NULL, 0, &c), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_config_int(c, "train.epochs"), 10);
    CU_ASSERT_DOUBLE_EQUAL(pinas_config_num(c, "train.lr"), 0.05, 1e-12);
    CU_ASSERT_STRING_EQUAL(pinas_config_str(c, "data.dataset"), "synthetic");
    CU_ASSERT_TRUE(pinas_config_bool(c, "train.nesterov"));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(pinas_config_get(c, "search.lambdas")), 3);
    CU_ASSERT_PTR_NULL(pinas_config_get(c, "no.such.key"));
    pinas_config_free(c);
}

static void test_file_and_set(void)
{
    const char *p = tu_path("cfg.json");
    tu_write(p, "{\"name\": \"exp1\", \"train\": {\"epochs\": 3, \"lr\": 0.2}, \"search\": {\"lambdas\": [0, 1]}}");
    const char *sets[] = {"train.epochs=7", "data.dataset=cifar10", "search.gumbel=true", "name=from-set", "search.lambdas=[0.5]"};
    pinas_config *c;
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, p, sets, 5, &c), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_config_int(c, "train.epochs"), 7);              /* --set wins over the file */
    CU_ASSERT_DOUBLE_EQUAL(pinas_config_num(c, "train.lr"), 0.2, 1e-12); /* the file wins over defaults */
    CU_ASSERT_EQUAL(pinas_config_int(c, "train.batch_size"), 64);        /* defaults fill the rest */
    CU_ASSERT_STRING_EQUAL(pinas_config_str(c, "data.dataset"), "cifar10");
    CU_ASSERT_TRUE(pinas_config_bool(c, "search.gumbel"));
    CU_ASSERT_STRING_EQUAL(pinas_config_str(c, "name"), "from-set");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(pinas_config_get(c, "search.lambdas")), 1);
    CU_ASSERT_STRING_EQUAL(pinas_config_source(c), p);
    pinas_config_free(c);
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
    TU_ASSERT_ERR(ctx, load_text("{\"train\": {\"nesterov\": \"yes\"}}", NULL), "train.nesterov: expected true or false, got \"yes\"");
    TU_ASSERT_ERR(ctx, load_text("{\"train\": {\"epochs\": 3,}}", NULL), "bad.json:1:");
    TU_ASSERT_ERR(ctx, load_text("[]", NULL), "expected a JSON object at the top level");
    TU_ASSERT_ERR(ctx, load_text("{\"format\": \"other/2\"}", NULL), "format: expected \"pinas-config/1\"");
    CU_ASSERT_EQUAL(load_text("{\"format\": \"pinas-config/1\"}", NULL), PINAS_OK);
    TU_ASSERT_ERR(ctx, load_text("{}", "train.epochs=ten"), "--set: train.epochs: expected a positive integer, got \"ten\"");
    TU_ASSERT_ERR(ctx, load_text("{}", "train.epocs=3"), "--set: train.epocs: unknown key (did you mean \"train.epochs\"?)");
    TU_ASSERT_ERR(ctx, load_text("{}", "noequals"), "--set noequals: expected key.path=value");
    pinas_config *c;
    TU_ASSERT_ERR(ctx, pinas_config_load(ctx, tu_path("missing.json"), NULL, 0, &c), "cannot open");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"defaults", test_defaults}, {"file and --set overrides", test_file_and_set}, {"errors name file and field", test_errors}};
    int rc = tu_run("common_config", t, 3);
    pinas_ctx_free(ctx);
    return rc;
}
