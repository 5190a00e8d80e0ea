/* Shared test helpers: CUnit runner, temporary directories, small file writers. */
#ifndef PINAS_TESTUTIL_H
#define PINAS_TESTUTIL_H
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "pinas_common.h"

typedef struct {
    const char *name;
    void (*fn)(void);
} tu_test;

/* Registers one suite with the given tests, runs it, prints a summary; returns the exit status
 * (0 when every assertion passed). */
int tu_run(const char *suite, const tu_test *tests, int n);
/* A fresh temporary directory for this process (created once, e.g. /tmp/pinas-test-XXXXXX). */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name; static buffer rotated over 8 slots. */
const char *tu_path(const char *name);
/* Writes text to a file (aborts the test on failure). */
void tu_write(const char *path, const char *text);
/* Asserts that s is non-zero and the context's message contains `needle`. */
#define TU_ASSERT_ERR(ctx, s, needle)                                                                              \
    do {                                                                                                           \
        CU_ASSERT((s) != PINAS_OK);                                                                                \
        if (!strstr(pinas_errmsg(ctx), (needle))) {                                                                \
            fprintf(stderr, "\n  expected message containing \"%s\", got \"%s\"\n", (needle), pinas_errmsg(ctx)); \
            CU_FAIL("error message");                                                                              \
        }                                                                                                          \
    } while (0)
#endif
