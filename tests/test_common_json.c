/* Tests for common/json.c and friends: parse errors with line:column, typed getters naming file and path. */
#include <string.h>

#include "testutil.h"

static pinas_ctx *ctx;

static void test_parse_error_line_col(void)
{
    cJSON *j = NULL;
    pinas_status s = pinas_json_parse(ctx, "{\n  \"a\": 1,\n  \"b\": ]\n}", "x.json", &j);
    TU_ASSERT_ERR(ctx, s, "x.json:3:");
    CU_ASSERT_PTR_NULL(j);
    s = pinas_json_parse(ctx, "", "empty.json", &j);
    TU_ASSERT_ERR(ctx, s, "empty.json: empty file");
    s = pinas_json_parse(ctx, "{\"a\": 1} trailing", "t.json", &j);
    TU_ASSERT_ERR(ctx, s, "t.json:1:");
}

static void test_missing_file(void)
{
    cJSON *j;
    pinas_status s = pinas_json_load(ctx, "/nonexistent/dir/x.json", &j);
    CU_ASSERT_EQUAL(s, PINAS_EIO);
    TU_ASSERT_ERR(ctx, s, "/nonexistent/dir/x.json: cannot open");
}

static void test_getters(void)
{
    cJSON *j;
    CU_ASSERT_EQUAL_FATAL(pinas_json_parse(ctx, "{\"train\": {\"epochs\": \"ten\", \"lr\": 0.1, \"n\": 3, \"f\": 2.5, \"neg\": -1,"
                                                "\"flag\": 1, \"name\": \"x\", \"arr\": [1, 2, \"z\"]}}",
                                           "configs/x.json", &j),
                          PINAS_OK);
    const cJSON *t = cJSON_GetObjectItem(j, "train");
    int64_t v = 0;
    pinas_status s = pinas_json_get_int(ctx, t, "configs/x.json", "train", "epochs", 1, INT64_MAX, &v);
    CU_ASSERT_STRING_EQUAL(pinas_errmsg(ctx), "configs/x.json: train.epochs: expected a positive integer, got \"ten\"");
    CU_ASSERT_EQUAL(s, PINAS_EINVAL);
    CU_ASSERT_EQUAL(pinas_json_get_int(ctx, t, "c.json", "train", "n", 1, INT64_MAX, &v), PINAS_OK);
    CU_ASSERT_EQUAL(v, 3);
    s = pinas_json_get_int(ctx, t, "c.json", "train", "f", 1, INT64_MAX, &v);
    TU_ASSERT_ERR(ctx, s, "c.json: train.f: expected a positive integer, got 2.5");
    s = pinas_json_get_int(ctx, t, "c.json", "train", "neg", 0, INT64_MAX, &v);
    TU_ASSERT_ERR(ctx, s, "train.neg: expected a non-negative integer, got -1");
    s = pinas_json_get_int(ctx, t, "c.json", "train", "n", 5, 10, &v);
    TU_ASSERT_ERR(ctx, s, "expected an integer in [5, 10], got 3");
    s = pinas_json_get_int(ctx, t, "c.json", "train", "missing", 1, 10, &v);
    TU_ASSERT_ERR(ctx, s, "c.json: train.missing: missing");
    v = 42;
    CU_ASSERT_EQUAL(pinas_json_get_int_opt(ctx, t, "c.json", "train", "missing", 1, 10, &v), PINAS_OK);
    CU_ASSERT_EQUAL(v, 42);
    double d = 0;
    CU_ASSERT_EQUAL(pinas_json_get_num(ctx, t, "c.json", "train", "lr", 0, 1, &d), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(d, 0.1, 1e-12);
    s = pinas_json_get_num(ctx, t, "c.json", "train", "name", 0, 1, &d);
    TU_ASSERT_ERR(ctx, s, "train.name: expected a number in [0, 1], got \"x\"");
    int b = 0;
    s = pinas_json_get_bool_opt(ctx, t, "c.json", "train", "flag", &b);
    TU_ASSERT_ERR(ctx, s, "train.flag: expected true or false, got 1");
    const char *str = NULL;
    CU_ASSERT_EQUAL(pinas_json_get_str(ctx, t, "c.json", "train", "name", &str), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(str, "x");
    int64_t arr[3];
    s = pinas_json_get_int_array(ctx, t, "c.json", "train", "arr", arr, 3);
    TU_ASSERT_ERR(ctx, s, "train.arr[2]: expected an integer, got \"z\"");
    s = pinas_json_get_int_array(ctx, t, "c.json", "train", "arr", arr, 2);
    TU_ASSERT_ERR(ctx, s, "train.arr: expected an array of 2 integers, got an array");
    CU_ASSERT_PTR_EQUAL(pinas_json_at(j, "train.n"), cJSON_GetObjectItem(t, "n"));
    CU_ASSERT_PTR_NULL(pinas_json_at(j, "train.nope"));
    cJSON_Delete(j);
}

static void test_save_atomic(void)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "k", 7);
    const char *p = tu_path("saved.json");
    CU_ASSERT_EQUAL(pinas_json_save(ctx, p, j), PINAS_OK);
    cJSON *back;
    CU_ASSERT_EQUAL_FATAL(pinas_json_load(ctx, p, &back), PINAS_OK);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(back, "k")->valueint, 7);
    cJSON_Delete(back);
    /* Writing into a missing directory fails cleanly and leaves nothing behind. */
    pinas_status s = pinas_json_save(ctx, "/nonexistent-dir/x.json", j);
    TU_ASSERT_ERR(ctx, s, "/nonexistent-dir/x.json");
    cJSON_Delete(j);
}

static void test_did_you_mean(void)
{
    const char *const c[] = {"epochs", "batch_size", "lr"};
    CU_ASSERT_STRING_EQUAL(pinas_did_you_mean("epoch", c, 3), "epochs");
    CU_ASSERT_STRING_EQUAL(pinas_did_you_mean("batchsize", c, 3), "batch_size");
    CU_ASSERT_PTR_NULL(pinas_did_you_mean("completely_else", c, 3));
    CU_ASSERT_EQUAL(pinas_edit_distance("kitten", "sitting"), 3);
}

static void test_error_prefix(void)
{
    pinas_error(ctx, PINAS_EINVAL, "inner %d", 5);
    CU_ASSERT_EQUAL(pinas_error_prefix(ctx, PINAS_EIO, "outer"), PINAS_EIO);
    CU_ASSERT_STRING_EQUAL(pinas_errmsg(ctx), "outer: inner 5");
    char d[16];
    pinas_format_duration(65, d, sizeof d);
    CU_ASSERT_STRING_EQUAL(d, "1m05s");
    pinas_format_duration(3.25, d, sizeof d);
    CU_ASSERT_STRING_EQUAL(d, "3.2s");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"parse error line:col", test_parse_error_line_col},
                   {"missing file", test_missing_file},
                   {"typed getters name file and path", test_getters},
                   {"atomic save", test_save_atomic},
                   {"did you mean", test_did_you_mean},
                   {"error prefix, durations", test_error_prefix}};
    int rc = tu_run("common_json", t, 6);
    pinas_ctx_free(ctx);
    return rc;
}
