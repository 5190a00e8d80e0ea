/* Shared by the libFuzzer harnesses: one quiet context, the input as a NUL-terminated string. */
#ifndef PINAS_FUZZ_UTIL_H
#define PINAS_FUZZ_UTIL_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_common.h"

/* The context every call shares (a fuzzer runs one input at a time; its error buffer is reused). */
static inline pinas_ctx *fuzz_ctx(void)
{
    static pinas_ctx *ctx;
    if (!ctx) ctx = pinas_ctx_create();
    if (!ctx) abort();
    return ctx;
}

/* The input as text; NULL when it holds a NUL byte (JSON text never does). Caller frees. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size)) return NULL;
    char *t = malloc(size + 1);
    if (!t) abort();
    memcpy(t, data, size);
    t[size] = 0;
    return t;
}

/* An error must leave a message naming what went wrong (never an empty one). */
static inline void fuzz_expect_message(pinas_status s)
{
    if (s && !pinas_errmsg(fuzz_ctx())[0]) abort();
}

/* The input parsed as JSON (named "fuzz.json" in messages), or NULL when it is not text or not JSON
 * (a parse error must carry a message too). Caller frees with cJSON_Delete. */
static inline cJSON *fuzz_json(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (!text) return NULL;
    cJSON *j = NULL;
    pinas_status s = pinas_json_parse(fuzz_ctx(), text, "fuzz.json", &j);
    free(text);
    fuzz_expect_message(s);
    return s ? NULL : j;
}
#endif
