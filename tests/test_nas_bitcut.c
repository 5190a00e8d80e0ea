/* Bit cutting (nas/bitcut.c): the window choice, the measurement on a small net (relu, patch_relu,
 * maxpool; odd sizes), meta.json's mpc.layers, and private inference with the cut windows. */
#define _GNU_SOURCE
#include "pinas_bitcut.h"
#include "testutil.h"
#include "testutil_net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static pinas_ctx *ctx;

/* The choice on hand-made histograms. */
static void test_choose(void)
{
    int64_t h[65] = {0}, neg[65] = {0};
    int hi, bits;
    int64_t err;
    /* 1000 values of 20 bits (|x| in [2^19, 2^20)), 500 of them negative: high = 20 + 1 + 2; nothing
     * in [-2^19, 0), so the low 19 bits may go: 23 - 19 = 4 bits, raised to the minimum */
    h[20] = 1000;
    neg[20] = 500;
    pinas_bitcut_choose(h, neg, 1000, 0.0, 2, &hi, &bits, &err);
    CU_ASSERT_EQUAL(hi, 23 < PINAS_CMP_BITS_MIN ? PINAS_CMP_BITS_MIN : 23);
    CU_ASSERT_EQUAL(bits, PINAS_CMP_BITS_MIN);
    CU_ASSERT_EQUAL(err, 0);
    /* a spread: 1 negative value per bit length 1..40, plus 10 zeros, 50 values in all */
    memset(h, 0, sizeof h);
    memset(neg, 0, sizeof neg);
    h[0] = 10;
    for (int b = 1; b <= 40; b++) h[b] = neg[b] = 1;
    pinas_bitcut_choose(h, neg, 50, 0.0, 0, &hi, &bits, &err);
    CU_ASSERT_EQUAL(hi, 41);
    CU_ASSERT_EQUAL(bits, 41); /* eps 0: no low bit may go */
    CU_ASSERT_EQUAL(err, 0);
    /* eps 0.1 allows 5 errors: the negatives in [-2^5, 0) (L = 5); zeros are never errors */
    pinas_bitcut_choose(h, neg, 50, 0.1, 0, &hi, &bits, &err);
    CU_ASSERT_EQUAL(hi, 41);
    CU_ASSERT_EQUAL(bits, 36);
    CU_ASSERT_EQUAL(err, 5);
    /* the margin is capped at 64 */
    pinas_bitcut_choose(h, neg, 50, 0.0, 40, &hi, &bits, &err);
    CU_ASSERT_EQUAL(hi, 64);
    /* nothing measured: the narrowest window */
    memset(h, 0, sizeof h);
    memset(neg, 0, sizeof neg);
    pinas_bitcut_choose(h, neg, 0, 0.001, 2, &hi, &bits, &err);
    CU_ASSERT_EQUAL(bits, PINAS_CMP_BITS_MIN);
    CU_ASSERT(hi >= bits && hi <= 64);
}

/* 3 x 9 x 7 input: conv, relu, conv, patch_relu:2x3, maxpool 3x3/2 pad 1, gap, linear. */
static pinas_model *small_model(uint64_t seed)
{
    pinas_cand relu = {PINAS_CAND_RELU, 0, 0}, patch = {PINAS_CAND_PATCH_RELU, 2, 3}, maxp = {PINAS_CAND_MAXPOOL, 0, 0};
    pinas_net_builder *b = pinas_nb_create("bitcut", 3, 9, 7, 5);
    int x = pinas_nb_conv(b, "c1", 0, 6, 3, 1, 1, 1);
    x = pinas_nb_batchnorm(b, "b1", x);
    x = pinas_nb_act(b, "a1", x, &relu, 1);
    x = pinas_nb_conv(b, "c2", x, 6, 3, 1, 1, 1);
    x = pinas_nb_batchnorm(b, "b2", x);
    x = pinas_nb_act(b, "a2", x, &patch, 1);
    x = pinas_nb_pool(b, "p1", x, 3, 2, 1, &maxp, 1);
    x = pinas_nb_global_avgpool(b, "gap", x);
    pinas_nb_linear(b, "fc", x, 5, 1);
    return tu_random_model(ctx, b, seed);
}

static const pinas_bitcut_slot *slot(const pinas_bitcut_result *r, const char *id)
{
    for (int j = 0; j < r->n_slots; j++)
        if (!strcmp(r->slots[j].id, id)) return &r->slots[j];
    return NULL;
}

/* Counts and ranges: relu compares every element, patch_relu every patch (ceil), maxpool every pair. */
static void test_measure(void)
{
    pinas_model *m = small_model(5);
    enum { N = 7 };
    float x[N * 3 * 9 * 7];
    tu_uniform(x, sizeof x / sizeof *x, 3, -2, 2);
    pinas_bitcut_result r;
    CU_ASSERT_FATAL(pinas_bitcut_measure(ctx, m, x, N, 0.001, 2, &r) == PINAS_OK);
    CU_ASSERT_EQUAL(r.n_slots, 3);
    const pinas_bitcut_slot *a1 = slot(&r, "a1"), *a2 = slot(&r, "a2"), *p1 = slot(&r, "p1");
    CU_ASSERT_FATAL(a1 && a2 && p1);
    CU_ASSERT_EQUAL(a1->count, N * 6 * 9 * 7);
    CU_ASSERT_EQUAL(a2->count, N * 6 * 5 * 3); /* ceil(9/2) x ceil(7/3) patches */
    /* 3x3/2 pad 1 on 9x7 -> 5x4 windows of 4, 6 or 9 elements: pairs = elements - 1 per window */
    int64_t pairs = 0;
    for (int oy = 0; oy < 5; oy++)
        for (int ox = 0; ox < 4; ox++) {
            int ry = 0, rx = 0;
            for (int k = -1; k <= 1; k++) {
                ry += oy * 2 + k >= 0 && oy * 2 + k < 9;
                rx += ox * 2 + k >= 0 && ox * 2 + k < 7;
            }
            pairs += ry * rx - 1;
        }
    CU_ASSERT_EQUAL(p1->count, N * 6 * pairs);
    CU_ASSERT_STRING_EQUAL(a2->cand, "patch_relu:2x3");
    for (int j = 0; j < r.n_slots; j++) {
        const pinas_bitcut_slot *s = &r.slots[j];
        double amax = fmax(fabs(s->min), fabs(s->max));
        /* the range bits hold the largest value, the window holds it with the margin */
        CU_ASSERT(ldexp(1, s->range_bits - 16) > amax && ldexp(1, s->range_bits - 17) <= amax + 1e-9);
        CU_ASSERT(s->cmp_high == (s->range_bits + 3 > PINAS_CMP_BITS_MIN ? s->range_bits + 3 : PINAS_CMP_BITS_MIN));
        CU_ASSERT(s->cmp_bits >= PINAS_CMP_BITS_MIN && s->cmp_bits <= s->cmp_high);
        CU_ASSERT(s->error_rate <= 0.001);
        CU_ASSERT(s->min < 0 && s->max > 0);
        fprintf(stderr, "\n  %s %s: %lld comparisons in [%.3g, %.3g], window [%d, %d), error %.4f", s->id, s->cand,
                (long long)s->count, s->min, s->max, s->cmp_high - s->cmp_bits, s->cmp_high, s->error_rate);
    }
    /* a larger eps never needs more bits */
    pinas_bitcut_result r2;
    CU_ASSERT_FATAL(pinas_bitcut_measure(ctx, m, x, N, 0.05, 2, &r2) == PINAS_OK);
    for (int j = 0; j < r.n_slots; j++) CU_ASSERT(r2.slots[j].cmp_bits <= r.slots[j].cmp_bits);
    pinas_bitcut_result_free(&r2);
    /* errors */
    TU_ASSERT_ERR(ctx, pinas_bitcut_measure(ctx, m, x, 0, 0.001, 2, &r2), "at least one image");
    TU_ASSERT_ERR(ctx, pinas_bitcut_measure(ctx, m, x, N, 1.5, 2, &r2), "eps");
    pinas_bitcut_result_free(&r);
    pinas_model_free(m);
}

/* mpc.layers: written by apply, read back equal, refused when it names no node or has high < bits. */
static void test_meta(void)
{
    pinas_model *m = small_model(6);
    float x[4 * 3 * 9 * 7];
    tu_uniform(x, sizeof x / sizeof *x, 4, -2, 2);
    pinas_bitcut_result r;
    CU_ASSERT_FATAL(pinas_bitcut_measure(ctx, m, x, 4, 0.01, 1, &r) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_bitcut_apply(ctx, &r, &m->meta) == PINAS_OK);
    CU_ASSERT_EQUAL(m->meta.n_layer_bits, 3);
    cJSON *j = pinas_model_meta_to_json(&m->meta);
    char *text = cJSON_PrintUnformatted(j);
    CU_ASSERT(strstr(text, "\"layers\":[{\"id\":\"a1\",\"cmp_bits\":") != NULL);
    pinas_model_meta back;
    CU_ASSERT_FATAL(pinas_model_meta_from_json(ctx, j, "meta", m->net, &back) == PINAS_OK);
    CU_ASSERT_EQUAL(back.n_layer_bits, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(back.layer_bits[i].id, r.slots[i].id);
        CU_ASSERT_EQUAL(back.layer_bits[i].cmp_bits, r.slots[i].cmp_bits);
        CU_ASSERT_EQUAL(back.layer_bits[i].cmp_high, r.slots[i].cmp_high);
    }
    cJSON *j2 = pinas_model_meta_to_json(&back);
    char *text2 = cJSON_PrintUnformatted(j2);
    CU_ASSERT_STRING_EQUAL(text, text2);
    pinas_mpc_layer_bits *lb = NULL;
    CU_ASSERT_EQUAL(pinas_mpc_layer_bits_from_meta(&back, &lb), 3);
    CU_ASSERT(lb && lb[2].cmp_high == r.slots[2].cmp_high);
    free(lb);
    pinas_model_meta_free(&back);
    /* a node that is not in the net */
    cJSON *layers = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "mpc"), "layers");
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(layers, 1), "id", cJSON_CreateString("nope"));
    TU_ASSERT_ERR(ctx, pinas_model_meta_from_json(ctx, j, "meta", m->net, &back), "mpc.layers[1].id: no node \"nope\"");
    /* a window whose top is below its width */
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(layers, 1), "id", cJSON_CreateString("a2"));
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(layers, 1), "cmp_high", cJSON_CreateNumber(10));
    TU_ASSERT_ERR(ctx, pinas_model_meta_from_json(ctx, j, "meta", m->net, &back), "mpc.layers[1]");
    CU_ASSERT(pinas_model_meta_set_layer_bits(ctx, &m->meta, "a1", 30, 20) != PINAS_OK);
    free(text);
    free(text2);
    cJSON_Delete(j);
    cJSON_Delete(j2);
    pinas_bitcut_result_free(&r);
    pinas_model_free(m);
}

/* Private inference with the windows cut at eps 0 on the very images it runs: no comparison may flip,
 * so the logits equal plaintext up to fixed-point rounding, and the counters shrink. */
static void test_private_with_windows(void)
{
    pinas_model *m = small_model(7);
    enum { N = 6 };
    float x[N * 3 * 9 * 7], plain[N * 5], priv[N * 5], full[N * 5];
    tu_uniform(x, sizeof x / sizeof *x, 9, -2, 2);
    pinas_bitcut_result r;
    CU_ASSERT_FATAL(pinas_bitcut_measure(ctx, m, x, N, 0.0, 2, &r) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_bitcut_apply(ctx, &r, &m->meta) == PINAS_OK);
    pinas_mpc_layer_bits *lb = NULL;
    int n_lb = pinas_mpc_layer_bits_from_meta(&m->meta, &lb);
    CU_ASSERT_EQUAL_FATAL(n_lb, 3);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_params_from_meta(&m->meta, &p);
    pinas_mpc_deal_opts o = {.layer_bits = lb, .n_layer_bits = n_lb};
    pinas_mpc_report *rc = NULL, *rf = NULL;
    pinas_status s = pinas_mpc_infer_loopback(ctx, m, x, N, &p, &o, priv, &rc);
    if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_FATAL(s == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_infer_loopback(ctx, m, x, N, &p, NULL, full, &rf) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_plain_forward(ctx, m, x, N, plain) == PINAS_OK);
    double err = 0, err_full = 0;
    for (int i = 0; i < N * 5; i++) {
        err = fmax(err, fabs(priv[i] - plain[i]));
        err_full = fmax(err_full, fabs(full[i] - plain[i]));
    }
    fprintf(stderr, "\n  max logit error: cut windows %.3g, 64 bits %.3g; online bytes %llu vs %llu, prep %llu vs %llu\n", err,
            err_full, (unsigned long long)(rc->totals.online.bytes[0] + rc->totals.online.bytes[1]),
            (unsigned long long)(rf->totals.online.bytes[0] + rf->totals.online.bytes[1]),
            (unsigned long long)(rc->totals.offline.bytes[0] + rc->totals.offline.bytes[1]),
            (unsigned long long)(rf->totals.offline.bytes[0] + rf->totals.offline.bytes[1]));
    CU_ASSERT(err < 1e-2);
    CU_ASSERT(rc->totals.offline.bytes[0] < rf->totals.offline.bytes[0]);
    CU_ASSERT(rc->totals.online.aes_blocks[1] < rf->totals.online.aes_blocks[1]);
    free(lb);
    pinas_mpc_report_free(rc);
    pinas_mpc_report_free(rf);
    pinas_bitcut_result_free(&r);
    pinas_model_free(m);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    tu_test tests[] = {
        {"window choice", test_choose},
        {"measurement (relu, patch_relu:2x3, maxpool, odd sizes)", test_measure},
        {"meta.json mpc.layers", test_meta},
        {"private inference with the cut windows", test_private_with_windows},
    };
    int rc = tu_run("nas_bitcut", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
