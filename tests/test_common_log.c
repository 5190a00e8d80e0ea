/* Tests for logging levels and the progress bar's plain (non-TTY) output. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static pinas_ctx *ctx;
static char logged[4096];

static void sink(void *user, pinas_log_level level, const char *msg)
{
    (void)user;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "[%d]%s\n", (int)level, msg);
}

static void test_levels(void)
{
    logged[0] = 0;
    pinas_ctx_set_log_fn(ctx, sink, NULL);
    pinas_ctx_set_log_level(ctx, PINAS_LOG_INFO);
    pinas_debug(ctx, "hidden %d", 1);
    pinas_info(ctx, "shown %d", 2);
    pinas_warn(ctx, "warned");
    CU_ASSERT_STRING_EQUAL(logged, "[1]shown 2\n[2]warned\n");
    logged[0] = 0;
    pinas_ctx_set_log_level(ctx, PINAS_LOG_DEBUG);
    pinas_debug(ctx, "now shown");
    CU_ASSERT_STRING_EQUAL(logged, "[0]now shown\n");
    pinas_ctx_set_log_fn(ctx, NULL, NULL);
    pinas_ctx_set_log_level(ctx, PINAS_LOG_INFO);
}

static void test_progress_plain(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pinas_progress *p = pinas_progress_create(ctx, f, "epoch 1", 10);
    for (int i = 1; i <= 10; i++) pinas_progress_update(p, i, i == 10 ? "loss 0.50" : NULL);
    pinas_progress_finish(p);
    fclose(f);
    /* not a TTY: no carriage returns or escapes; the first update and the final line are printed */
    CU_ASSERT_PTR_NULL(strchr(buf, '\r'));
    CU_ASSERT_PTR_NULL(strchr(buf, '\033'));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "epoch 1 1/10"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "epoch 1 10/10 loss 0.50 elapsed"));
    int lines = 0;
    for (char *c = buf; *c; c++) lines += *c == '\n';
    CU_ASSERT_EQUAL(lines, 2); /* rate-limited: 10 updates in well under 10 s print once, plus the final line */
    free(buf);
    /* quiet contexts print nothing */
    buf = NULL;
    f = open_memstream(&buf, &len);
    pinas_ctx_set_log_level(ctx, PINAS_LOG_QUIET);
    p = pinas_progress_create(ctx, f, "x", 3);
    pinas_progress_update(p, 3, NULL);
    pinas_progress_finish(p);
    fclose(f);
    CU_ASSERT_EQUAL(len, 0);
    free(buf);
    pinas_ctx_set_log_level(ctx, PINAS_LOG_INFO);
    pinas_progress_finish(NULL);
}

static void test_files(void)
{
    const char *d = tu_path("a/b/c");
    CU_ASSERT_EQUAL(pinas_mkdir_p(ctx, d), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_mkdir_p(ctx, d), PINAS_OK); /* idempotent */
    char *p = pinas_path_join(d, "f.bin");
    CU_ASSERT_EQUAL(pinas_file_write_atomic(ctx, p, "abc", 3, 0600), PINAS_OK);
    char *back;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(pinas_file_read(ctx, p, &back, &n), PINAS_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_STRING_EQUAL(back, "abc");
    free(back);
    /* the temporary file is gone after the rename */
    char *tmp = pinas_strfmt("%s.tmp.%d", p, (int)getpid());
    CU_ASSERT_FALSE(pinas_path_exists(tmp));
    free(tmp);
    TU_ASSERT_ERR(ctx, pinas_mkdir_p(ctx, p), "f.bin");
    free(p);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"log levels and sink", test_levels}, {"progress bar, plain output", test_progress_plain}, {"files", test_files}};
    int rc = tu_run("common_log", t, 3);
    pinas_ctx_free(ctx);
    return rc;
}
