/* Tests for common/safetensors.c: round trip of every dtype, a golden file, each kind of corruption. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static pinas_ctx *ctx;

static void test_round_trip(void)
{
    pinas_tensors *t = pinas_tensors_create();
    float f[6] = {1, -2, 3.5f, 0, 1e-7f, -1e30f};
    double d[2] = {3.14159, -0.0};
    int64_t i[3] = {INT64_MIN, 0, INT64_MAX};
    uint8_t u[5] = {0, 1, 127, 128, 255};
    int64_t s23[2] = {2, 3}, s2[1] = {2}, s3[1] = {3}, s5[1] = {5}, s0[1] = {0};
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "l1.0.conv1.weight", PINAS_F32, 2, s23, f), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "d", PINAS_F64, 1, s2, d), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "i", PINAS_I64, 1, s3, i), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "u", PINAS_U8, 1, s5, u), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "empty", PINAS_F32, 1, s0, NULL), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "scalar", PINAS_F64, 0, NULL, d), PINAS_OK);
    cJSON *md = cJSON_CreateObject();
    cJSON_AddStringToObject(md, "format", "pt");
    const char *p = tu_path("rt.safetensors");
    CU_ASSERT_EQUAL_FATAL(pinas_safetensors_save(ctx, p, t, md), PINAS_OK);
    cJSON_Delete(md);
    pinas_tensors *b;
    CU_ASSERT_EQUAL_FATAL(pinas_safetensors_load(ctx, p, &b), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_tensors_count(b), 6);
    pinas_tensor_view v;
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_expect(ctx, b, p, "l1.0.conv1.weight", PINAS_F32, 2, s23, &v), PINAS_OK);
    CU_ASSERT_EQUAL(memcmp(v.data, f, sizeof f), 0);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(b, "d", &v), 0);
    CU_ASSERT_EQUAL(memcmp(v.data, d, sizeof d), 0);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(b, "i", &v), 0);
    CU_ASSERT_EQUAL(memcmp(v.data, i, sizeof i), 0);
    CU_ASSERT_EQUAL(v.dtype, PINAS_I64);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(b, "u", &v), 0);
    CU_ASSERT_EQUAL(memcmp(v.data, u, sizeof u), 0);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(b, "empty", &v), 0);
    CU_ASSERT_EQUAL(v.nbytes, 0);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(b, "scalar", &v), 0);
    CU_ASSERT_EQUAL(v.ndim, 0);
    CU_ASSERT_EQUAL(*(double *)v.data, d[0]);
    /* expect() names the file and tensor on a wrong shape, dtype or absence */
    int64_t s32[2] = {3, 2};
    TU_ASSERT_ERR(ctx, pinas_tensors_expect(ctx, b, "w.st", "l1.0.conv1.weight", PINAS_F32, 2, s32, NULL),
                  "w.st: tensor l1.0.conv1.weight: shape [2, 3], expected [3, 2]");
    TU_ASSERT_ERR(ctx, pinas_tensors_expect(ctx, b, "w.st", "d", PINAS_F32, 1, NULL, NULL), "w.st: tensor d: dtype F64, expected F32");
    TU_ASSERT_ERR(ctx, pinas_tensors_expect(ctx, b, "w.st", "nope", PINAS_F32, 1, NULL, NULL), "w.st: tensor nope is missing");
    pinas_tensors_free(b);
    pinas_tensors_free(t);
}

static void test_golden(void)
{
    /* Written by Python's struct/json per the safetensors spec (tests/golden/small.safetensors). */
    pinas_tensors *t;
    CU_ASSERT_EQUAL_FATAL(pinas_safetensors_load(ctx, "tests/golden/small.safetensors", &t), PINAS_OK);
    pinas_tensor_view v;
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(t, "a", &v), 0);
    CU_ASSERT_EQUAL(((float *)v.data)[1], -2.5f);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(t, "b", &v), 0);
    CU_ASSERT_EQUAL(((int64_t *)v.data)[0], -7);
    CU_ASSERT_EQUAL(v.ndim, 2);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(t, "c", &v), 0);
    CU_ASSERT_EQUAL(((uint8_t *)v.data)[2], 255);
    CU_ASSERT_EQUAL_FATAL(pinas_tensors_find(t, "d", &v), 0);
    CU_ASSERT_EQUAL(*(double *)v.data, 3.125);
    pinas_tensors_free(t);
}

/* Builds a file from a header text and n data bytes; hlen_override != 0 replaces the length field. */
static pinas_status parse_with(const char *header, size_t ndata, uint64_t hlen_override, size_t truncate_to)
{
    size_t hl = strlen(header), len = 8 + hl + ndata;
    uint8_t *buf = calloc(1, len);
    uint64_t h = hlen_override ? hlen_override : hl;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(h >> (8 * i));
    memcpy(buf + 8, header, hl);
    pinas_tensors *t = NULL;
    pinas_status s = pinas_safetensors_parse(ctx, buf, truncate_to ? truncate_to : len, "bad.st", &t);
    pinas_tensors_free(t);
    free(buf);
    return s;
}

static void test_corruption(void)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    CU_ASSERT_EQUAL(parse_with(ok, 8, 0, 0), PINAS_OK);
    TU_ASSERT_ERR(ctx, parse_with(ok, 8, 0, 5), "bad.st: truncated: 5 bytes");
    TU_ASSERT_ERR(ctx, parse_with(ok, 8, 1ull << 40, 0), "header length 1099511627776 out of bounds");
    TU_ASSERT_ERR(ctx, parse_with(ok, 8, 500, 0), "truncated: header length 500");
    TU_ASSERT_ERR(ctx, parse_with(ok, 4, 0, 0), "tensor a: data_offsets [0, 8] outside the 4 data bytes");
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, 0, 0), "bad.st (header)");
    TU_ASSERT_ERR(ctx, parse_with("[1,2]", 8, 0, 0), "header is not a JSON object");
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, 0, 0), "dtype BF16 not supported");
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, 0),
                  "tensor a: F32 shape needs 12 bytes but data_offsets span 8");
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, 0, 0), "shape has a bad dimension");
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, 0), "data_offsets must be");
    TU_ASSERT_ERR(ctx,
                  parse_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                             12, 0, 0),
                  "overlaps");
    TU_ASSERT_ERR(ctx,
                  parse_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, 0), "gap of 4 bytes before tensor a");
    TU_ASSERT_ERR(ctx, parse_with(ok, 12, 0, 0), "4 trailing bytes after the last tensor");
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0, 0), "data_offsets must be");
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":5}", 0, 0, 0), "tensor a: entry is not an object");
    TU_ASSERT_ERR(ctx, parse_with("{\"__metadata__\":3}", 0, 0, 0), "__metadata__ is not an object");
    /* a huge shape whose byte size overflows */
    TU_ASSERT_ERR(ctx, parse_with("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, 0, 0),
                  "shape needs");
    pinas_tensors *t;
    TU_ASSERT_ERR(ctx, pinas_safetensors_load(ctx, tu_path("does-not-exist.st"), &t), "cannot open");
}

static void test_every_truncation(void)
{
    /* Every prefix of a valid file is rejected (never read out of bounds: run under SANITIZE=1). */
    char *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(pinas_file_read(ctx, "tests/golden/small.safetensors", &buf, &len), PINAS_OK);
    int rejected = 0;
    for (size_t n = 0; n < len; n++) {
        pinas_tensors *t = NULL;
        if (pinas_safetensors_parse(ctx, (uint8_t *)buf, n, "p", &t) != PINAS_OK) rejected++;
        pinas_tensors_free(t);
    }
    CU_ASSERT_EQUAL(rejected, (int)len);
    /* and flipping any header byte never crashes; most flips are rejected */
    int ok = 0;
    for (size_t i = 8; i < len; i++) {
        char save = buf[i];
        buf[i] ^= 0x5a;
        pinas_tensors *t = NULL;
        if (pinas_safetensors_parse(ctx, (uint8_t *)buf, len, "p", &t) == PINAS_OK) ok++;
        pinas_tensors_free(t);
        buf[i] = save;
    }
    CU_ASSERT(ok < (int)len / 2);
    free(buf);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"round trip F32/F64/I64/U8", test_round_trip},
                   {"golden file", test_golden},
                   {"corruptions rejected with messages", test_corruption},
                   {"every truncation rejected", test_every_truncation}};
    int rc = tu_run("common_safetensors", t, 4);
    pinas_ctx_free(ctx);
    return rc;
}
