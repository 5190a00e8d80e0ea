/* JSON helpers over cJSON: file load/save and typed getters whose errors name the file and JSON path. */
#define _GNU_SOURCE
#include "pinas_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pinas_status pinas_json_parse(pinas_ctx *ctx, const char *text, const char *where, cJSON **out)
{
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(text, &end, 1);
    if (*out) return PINAS_OK;
    if (!end) end = text;
    int line = 1, col = 1;
    for (const char *p = text; p < end && *p; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char near[24] = {0};
    snprintf(near, sizeof near, "%.16s", end);
    for (char *q = near; *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
    if (!*text) return pinas_error(ctx, PINAS_EFORMAT, "%s: empty file, expected JSON", where);
    return pinas_error(ctx, PINAS_EFORMAT, "%s:%d:%d: invalid JSON near \"%s\"", where, line, col, near);
}

pinas_status pinas_json_load(pinas_ctx *ctx, const char *path, cJSON **out)
{
    char *text;
    *out = NULL;
    pinas_status s = pinas_file_read(ctx, path, &text, NULL);
    if (s) return s;
    s = pinas_json_parse(ctx, text, path, out);
    free(text);
    return s;
}

pinas_status pinas_json_save(pinas_ctx *ctx, const char *path, const cJSON *json)
{
    char *text = cJSON_Print(json);
    if (!text) return pinas_error(ctx, PINAS_ENOMEM, "%s: cannot serialise JSON", path);
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (!buf) {
        free(text);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    buf[n] = '\n';
    buf[n + 1] = 0;
    pinas_status s = pinas_file_write_atomic(ctx, path, buf, n + 1, PINAS_FILE_PUBLIC);
    free(buf);
    return s;
}

char *pinas_json_path_join(const char *path, const char *key)
{
    if (!path || !*path) return pinas_strdup(key);
    if (!key || !*key) return pinas_strdup(path);
    if (key[0] == '[') return pinas_strfmt("%s%s", path, key);
    return pinas_strfmt("%s.%s", path, key);
}

char *pinas_json_describe(const cJSON *v)
{
    if (!v) return pinas_strdup("nothing");
    if (cJSON_IsString(v)) return pinas_strfmt("\"%.60s\"", v->valuestring);
    if (cJSON_IsNumber(v)) return pinas_strfmt("%.17g", v->valuedouble);
    if (cJSON_IsBool(v)) return pinas_strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNull(v)) return pinas_strdup("null");
    if (cJSON_IsArray(v)) return pinas_strdup("an array");
    if (cJSON_IsObject(v)) return pinas_strdup("an object");
    return pinas_strdup("an invalid value");
}

cJSON *pinas_json_at(const cJSON *obj, const char *dotted)
{
    char *copy = pinas_strdup(dotted), *save = NULL;
    const cJSON *cur = obj;
    for (char *tok = strtok_r(copy, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, tok) : NULL;
    free(copy);
    return (cJSON *)cur;
}

static pinas_status type_error(pinas_ctx *ctx, const char *where, const char *path, const char *key, const char *expected,
                               const cJSON *got)
{
    char *p = pinas_json_path_join(path, key), *d = pinas_json_describe(got);
    pinas_status s = pinas_error(ctx, PINAS_EINVAL, "%s: %s: expected %s, got %s", where, p, expected, d);
    free(p);
    free(d);
    return s;
}

static pinas_status missing(pinas_ctx *ctx, const char *where, const char *path, const char *key)
{
    char *p = pinas_json_path_join(path, key);
    pinas_status s = pinas_error(ctx, PINAS_EINVAL, "%s: %s: missing", where, p);
    free(p);
    return s;
}

static const char *int_kind(int64_t lo, int64_t hi, char *buf, size_t n)
{
    if (lo == 1 && hi == INT64_MAX) return "a positive integer";
    if (lo == 0 && hi == INT64_MAX) return "a non-negative integer";
    if (lo == INT64_MIN && hi == INT64_MAX) return "an integer";
    if (hi == INT64_MAX) snprintf(buf, n, "an integer >= %lld", (long long)lo);
    else snprintf(buf, n, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    return buf;
}

static pinas_status get_int(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key,
                            int64_t lo, int64_t hi, int64_t *out, int optional)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return optional ? PINAS_OK : missing(ctx, where, path, key);
    char buf[96];
    const char *kind = int_kind(lo, hi, buf, sizeof buf);
    if (!cJSON_IsNumber(v)) return type_error(ctx, where, path, key, kind, v);
    double d = v->valuedouble;
    if (d != floor(d) || d < -9.2e18 || d > 9.2e18) return type_error(ctx, where, path, key, kind, v);
    int64_t x = (int64_t)d;
    if (x < lo || x > hi) return type_error(ctx, where, path, key, kind, v);
    *out = x;
    return PINAS_OK;
}

pinas_status pinas_json_get_int(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key,
                                int64_t lo, int64_t hi, int64_t *out)
{
    return get_int(ctx, obj, where, path, key, lo, hi, out, 0);
}

pinas_status pinas_json_get_int_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                    const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    return get_int(ctx, obj, where, path, key, lo, hi, out, 1);
}

static pinas_status get_num(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key,
                            double lo, double hi, double *out, int optional)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return optional ? PINAS_OK : missing(ctx, where, path, key);
    char buf[96];
    if (isinf(hi)) snprintf(buf, sizeof buf, "a number >= %g", lo);
    else snprintf(buf, sizeof buf, "a number in [%g, %g]", lo, hi);
    if (isinf(lo) && isinf(hi)) snprintf(buf, sizeof buf, "a number");
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return type_error(ctx, where, path, key, buf, v);
    *out = v->valuedouble;
    return PINAS_OK;
}

pinas_status pinas_json_get_num(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key,
                                double lo, double hi, double *out)
{
    return get_num(ctx, obj, where, path, key, lo, hi, out, 0);
}

pinas_status pinas_json_get_num_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                    const char *key, double lo, double hi, double *out)
{
    return get_num(ctx, obj, where, path, key, lo, hi, out, 1);
}

pinas_status pinas_json_get_bool_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                     const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return PINAS_OK;
    if (!cJSON_IsBool(v)) return type_error(ctx, where, path, key, "true or false", v);
    *out = cJSON_IsTrue(v);
    return PINAS_OK;
}

static pinas_status get_str(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key,
                            const char **out, int optional)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return optional ? PINAS_OK : missing(ctx, where, path, key);
    if (!cJSON_IsString(v)) return type_error(ctx, where, path, key, "a string", v);
    *out = v->valuestring;
    return PINAS_OK;
}

pinas_status pinas_json_get_str(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, const char *key,
                                const char **out)
{
    return get_str(ctx, obj, where, path, key, out, 0);
}

pinas_status pinas_json_get_str_opt(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                    const char *key, const char **out)
{
    return get_str(ctx, obj, where, path, key, out, 1);
}

pinas_status pinas_json_get_int_array(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path,
                                      const char *key, int64_t *out, int n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return missing(ctx, where, path, key);
    char buf[64];
    snprintf(buf, sizeof buf, "an array of %d integers", n);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n) return type_error(ctx, where, path, key, buf, v);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        /* The range check comes before the cast: converting 1e300 to int64_t is undefined. */
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || fabs(e->valuedouble) > 9.0e18) {
            char idx[24];
            snprintf(idx, sizeof idx, "%s[%d]", key, i);
            return type_error(ctx, where, path, idx, "an integer", e);
        }
        out[i++] = (int64_t)e->valuedouble;
    }
    return PINAS_OK;
}
