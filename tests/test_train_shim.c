/* Tests for the libtorch shim (train/torch_shim.cpp): error paths, ops against hand computations, optimizers, state round trips. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "torch_shim.h"

static pt_tensor *mk(int ndim, const int64_t *shape, const float *data)
{
    pt_tensor *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_from_f32(data, ndim, shape, &t), 0);
    return t;
}

static pt_tensor *zeros4(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t s[4] = {a, b, c, d};
    pt_tensor *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_zeros(4, s, &t), 0);
    return t;
}

/* The message is one line without libtorch's C++ backtrace. */
static void assert_clean_msg(const char *needle)
{
    const char *m = pt_errmsg();
    CU_ASSERT(m[0] != 0);
    CU_ASSERT_PTR_NULL(strstr(m, "Exception raised from"));
    CU_ASSERT_PTR_NULL(strstr(m, "frame #"));
    if (needle && !strstr(m, needle)) {
        fprintf(stderr, "\n  expected \"%s\" in \"%s\"\n", needle, m);
        CU_FAIL("message");
    }
}

static void test_bad_shapes(void)
{
    pt_tensor *x = zeros4(2, 3, 8, 8), *w = zeros4(4, 5, 3, 3), *out = (pt_tensor *)0x1;
    /* conv2d: weight expects 5 input channels, x has 3. */
    CU_ASSERT_EQUAL(pt_conv2d(x, w, NULL, 1, 1, 1, &out), -1);
    CU_ASSERT_PTR_NULL(out);
    assert_clean_msg("channels");
    /* linear: [2, 7] x [3, 5]^T */
    int64_t s2[2] = {2, 7}, s3[2] = {3, 5};
    pt_tensor *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_zeros(2, s2, &a), 0);
    CU_ASSERT_EQUAL_FATAL(pt_zeros(2, s3, &b), 0);
    out = (pt_tensor *)0x1;
    CU_ASSERT_EQUAL(pt_linear(a, b, NULL, &out), -1);
    CU_ASSERT_PTR_NULL(out);
    assert_clean_msg("shape");
    /* a buffer of the wrong size */
    float buf[3];
    CU_ASSERT_EQUAL(pt_to_f32(a, buf, 3), -1);
    assert_clean_msg("14 elements");
    /* mix with weights of the wrong size */
    const pt_tensor *ys[2] = {x, x};
    float wv[3] = {1, 0, 0};
    int64_t s1[1] = {3};
    pt_tensor *wt = mk(1, s1, wv);
    CU_ASSERT_EQUAL(pt_mix(ys, 2, wt, &out), -1);
    assert_clean_msg("2 inputs");
    /* poly with per-channel coefficients for the wrong channel count */
    int64_t s5[1] = {5};
    float five[5] = {0};
    pt_tensor *c5 = mk(1, s5, five);
    CU_ASSERT_EQUAL(pt_poly(x, c5, c5, c5, 1.0, &out), -1);
    assert_clean_msg("3 channels");
    /* cross-entropy with a label out of range */
    int64_t lab[2] = {0, 9}, sl[1] = {2}, sl2[2] = {2, 3};
    pt_tensor *y = NULL, *logits = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_from_i64(lab, 1, sl, &y), 0);
    CU_ASSERT_EQUAL_FATAL(pt_zeros(2, sl2, &logits), 0);
    CU_ASSERT_EQUAL(pt_cross_entropy(logits, y, 0.0, &out), -1);
    assert_clean_msg("out of bounds");
    /* patch_relu on a 2-d tensor */
    CU_ASSERT_EQUAL(pt_patch_relu(a, 2, 2, &out), -1);
    assert_clean_msg("4-d");
    /* devices */
    CU_ASSERT_EQUAL(pt_device_check("tpu"), -1);
    assert_clean_msg("unknown device");
    if (!pt_cuda_available()) {
        CU_ASSERT_EQUAL(pt_device_check("cuda"), -1);
        assert_clean_msg("no CUDA");
    }
    CU_ASSERT_EQUAL(pt_device_check("cpu"), 0);
    /* optimizers refuse non-leaf parameters */
    pt_tensor *nl = NULL;
    pt_optim *o = (pt_optim *)0x1;
    CU_ASSERT_EQUAL_FATAL(pt_set_requires_grad(a, 1), 0);
    CU_ASSERT_EQUAL_FATAL(pt_mul_scalar(a, 2.0, &nl), 0);
    CU_ASSERT_EQUAL(pt_optim_sgd((const pt_tensor *const *)&nl, 1, 0.1, 0, 0, 0, &o), -1);
    CU_ASSERT_PTR_NULL(o);
    assert_clean_msg("leaf");
    /* a failure leaves the message until the next failure; a success does not clear it */
    CU_ASSERT_EQUAL(pt_relu(x, &out), 0);
    pt_free(out);
    assert_clean_msg("leaf");
    pt_free(NULL);
    pt_optim_free(NULL);
    pt_gen_free(NULL);
    pt_tensor *all[] = {x, w, a, b, wt, c5, y, logits, nl};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pt_free(all[i]);
}

static void *other_thread(void *arg)
{
    (void)arg;
    pt_tensor *x = zeros4(1, 1, 2, 2), *out = NULL;
    int rc = pt_patch_relu(x, 0, 2, &out);
    pt_free(x);
    return (void *)(intptr_t)(rc == -1 && strstr(pt_errmsg(), "patch size") != NULL);
}

static void test_thread_local_errors(void)
{
    float buf[1];
    pt_tensor *x = zeros4(1, 1, 2, 2);
    CU_ASSERT_EQUAL(pt_to_f32(x, buf, 1), -1);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", pt_errmsg());
    pthread_t th;
    void *ok = NULL;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, other_thread, NULL), 0);
    pthread_join(th, &ok);
    CU_ASSERT(ok != NULL);
    CU_ASSERT_STRING_EQUAL(pt_errmsg(), mine);
    pt_free(x);
}

static double val(const pt_tensor *t)
{
    double v = 0;
    CU_ASSERT_EQUAL(pt_item(t, &v), 0);
    return v;
}

static void test_losses(void)
{
    /* logits [[1, 2, 0]], label 1, smoothing 0.3: loss = -(1-0.3) log p1 - 0.3/3 sum_k log p_k */
    float lg[3] = {1, 2, 0};
    int64_t s[2] = {1, 3}, sl[1] = {1}, lab[1] = {1};
    pt_tensor *logits = mk(2, s, lg), *y = NULL, *ce = NULL, *kd = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_from_i64(lab, 1, sl, &y), 0);
    CU_ASSERT_EQUAL_FATAL(pt_cross_entropy(logits, y, 0.3, &ce), 0);
    double z = exp(1) + exp(2) + exp(0), lp[3] = {1 - log(z), 2 - log(z), 0 - log(z)};
    double want = -0.7 * lp[1] - 0.1 * (lp[0] + lp[1] + lp[2]);
    CU_ASSERT_DOUBLE_EQUAL(val(ce), want, 1e-5);
    /* KD of a net against itself is 0; against another, T^2 KL. */
    CU_ASSERT_EQUAL_FATAL(pt_kd_loss(logits, logits, 4.0, &kd), 0);
    CU_ASSERT_DOUBLE_EQUAL(val(kd), 0.0, 1e-6);
    pt_free(kd);
    float tg[3] = {0, 0, 3};
    pt_tensor *teacher = mk(2, s, tg);
    CU_ASSERT_EQUAL_FATAL(pt_kd_loss(logits, teacher, 2.0, &kd), 0);
    double ps[3], pt[3], zs = 0, zt = 0, kl = 0;
    for (int k = 0; k < 3; k++) zs += exp(lg[k] / 2), zt += exp(tg[k] / 2);
    for (int k = 0; k < 3; k++) ps[k] = exp(lg[k] / 2) / zs, pt[k] = exp(tg[k] / 2) / zt;
    for (int k = 0; k < 3; k++) kl += pt[k] * log(pt[k] / ps[k]);
    CU_ASSERT_DOUBLE_EQUAL(val(kd), 4 * kl, 1e-5);
    int64_t correct = -1;
    CU_ASSERT_EQUAL(pt_count_correct(logits, y, &correct), 0);
    CU_ASSERT_EQUAL(correct, 1);
    pt_free(logits);
    pt_free(teacher);
    pt_free(y);
    pt_free(ce);
    pt_free(kd);
}

/* One SGD step on loss = sum(p^2) by hand, as torch.optim.SGD defines it. */
static void test_sgd_by_hand(void)
{
    float p0[2] = {1.0f, -2.0f};
    int64_t s[1] = {2};
    pt_tensor *p = mk(1, s, p0);
    CU_ASSERT_EQUAL_FATAL(pt_set_requires_grad(p, 1), 0);
    pt_optim *o = NULL;
    const double lr = 0.1, mom = 0.9, wd = 0.01;
    CU_ASSERT_EQUAL_FATAL(pt_optim_sgd((const pt_tensor *const *)&p, 1, lr, mom, wd, 1, &o), 0);
    double ref[2] = {1.0, -2.0}, buf[2] = {0, 0};
    for (int step = 0; step < 3; step++) {
        pt_tensor *sq = NULL, *loss = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_optim_zero_grad(o), 0);
        CU_ASSERT_EQUAL_FATAL(pt_mul(p, p, &sq), 0);
        CU_ASSERT_EQUAL_FATAL(pt_sum(sq, &loss), 0);
        CU_ASSERT_EQUAL_FATAL(pt_backward(loss), 0);
        CU_ASSERT_EQUAL_FATAL(pt_optim_step(o), 0);
        for (int i = 0; i < 2; i++) {
            double g = 2 * ref[i] + wd * ref[i];
            buf[i] = step == 0 ? g : mom * buf[i] + g;
            ref[i] -= lr * (g + mom * buf[i]);
        }
        pt_free(sq);
        pt_free(loss);
    }
    float got[2];
    CU_ASSERT_EQUAL(pt_to_f32(p, got, 2), 0);
    CU_ASSERT_DOUBLE_EQUAL(got[0], ref[0], 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(got[1], ref[1], 1e-5);
    pt_optim_free(o);
    pt_free(p);
}

/* Gradient-norm clipping: loss = sum(p^2) at p = (3, -4) has gradient (6, -8), norm 10; clipped to
 * norm 2 it is (1.2, -1.6), and one plain SGD step with lr 1 moves p by exactly that. A norm above
 * the gradient's leaves it alone. */
static void test_clip_grad_norm(void)
{
    for (int big = 0; big < 2; big++) {
        float p0[2] = {3.0f, -4.0f};
        int64_t s[1] = {2};
        pt_tensor *p = mk(1, s, p0), *sq = NULL, *loss = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_set_requires_grad(p, 1), 0);
        pt_optim *o = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_optim_sgd((const pt_tensor *const *)&p, 1, 1.0, 0, 0, 0, &o), 0);
        CU_ASSERT_EQUAL_FATAL(pt_mul(p, p, &sq), 0);
        CU_ASSERT_EQUAL_FATAL(pt_sum(sq, &loss), 0);
        CU_ASSERT_EQUAL_FATAL(pt_backward(loss), 0);
        double total = 0;
        CU_ASSERT_EQUAL_FATAL(pt_optim_clip_grad_norm(o, big ? 100.0 : 2.0, &total), 0);
        CU_ASSERT_DOUBLE_EQUAL(total, 10.0, 1e-5);
        CU_ASSERT_EQUAL_FATAL(pt_optim_step(o), 0);
        float got[2];
        CU_ASSERT_EQUAL(pt_to_f32(p, got, 2), 0);
        CU_ASSERT_DOUBLE_EQUAL(got[0], big ? 3.0 - 6.0 : 3.0 - 1.2, 1e-5);
        CU_ASSERT_DOUBLE_EQUAL(got[1], big ? -4.0 + 8.0 : -4.0 + 1.6, 1e-5);
        pt_free(sq);
        pt_free(loss);
        pt_optim_free(o);
        pt_free(p);
    }
}

/* Two groups with their own lr; Adam's first step moves each parameter by lr * sign(grad). */
static void test_adam_groups_and_state(void)
{
    float a0[1] = {1.0f}, b0[1] = {-3.0f};
    int64_t s[1] = {1};
    pt_tensor *a = mk(1, s, a0), *b = mk(1, s, b0);
    pt_set_requires_grad(a, 1);
    pt_set_requires_grad(b, 1);
    pt_optim *o = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_optim_adam((const pt_tensor *const *)&a, 1, 0.01, 0.9, 0.999, 1e-8, 0, &o), 0);
    CU_ASSERT_EQUAL_FATAL(pt_optim_add_group(o, (const pt_tensor *const *)&b, 1, 0.1, 0), 0);
    int ng = 0;
    double lr = 0;
    CU_ASSERT_EQUAL(pt_optim_n_groups(o, &ng), 0);
    CU_ASSERT_EQUAL(ng, 2);
    CU_ASSERT_EQUAL(pt_optim_get_lr(o, 1, &lr), 0);
    CU_ASSERT_DOUBLE_EQUAL(lr, 0.1, 1e-12);
    CU_ASSERT_EQUAL(pt_optim_get_lr(o, 2, &lr), -1);
    pt_tensor *ab = NULL, *loss = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_mul(a, b, &ab), 0); /* d/da = b = -3, d/db = a = 1 */
    CU_ASSERT_EQUAL_FATAL(pt_sum(ab, &loss), 0);
    CU_ASSERT_EQUAL_FATAL(pt_backward(loss), 0);
    CU_ASSERT_EQUAL_FATAL(pt_optim_step(o), 0);
    float ga, gb;
    pt_to_f32(a, &ga, 1);
    pt_to_f32(b, &gb, 1);
    CU_ASSERT_DOUBLE_EQUAL(ga, 1.0 + 0.01, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(gb, -3.0 - 0.1, 1e-6);
    /* State round trip: a copy of the optimizer restored from bytes steps exactly like the original. */
    uint8_t *bytes = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(pt_optim_save(o, &bytes, &n), 0);
    CU_ASSERT(n > 0);
    pt_tensor *a2 = NULL, *b2 = NULL;
    pt_clone(a, &a2);
    pt_clone(b, &b2);
    pt_tensor *a2d = NULL, *b2d = NULL;
    pt_detach(a2, &a2d);
    pt_detach(b2, &b2d);
    pt_set_requires_grad(a2d, 1);
    pt_set_requires_grad(b2d, 1);
    pt_optim *o2 = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_optim_adam((const pt_tensor *const *)&a2d, 1, 0.5, 0.9, 0.999, 1e-8, 0, &o2), 0);
    CU_ASSERT_EQUAL_FATAL(pt_optim_add_group(o2, (const pt_tensor *const *)&b2d, 1, 0.5, 0), 0);
    CU_ASSERT_EQUAL_FATAL(pt_optim_load(o2, bytes, n), 0);
    CU_ASSERT_EQUAL(pt_optim_get_lr(o2, 1, &lr), 0);
    CU_ASSERT_DOUBLE_EQUAL(lr, 0.1, 1e-12);
    for (int k = 0; k < 2; k++) {
        pt_optim *oo = k ? o2 : o;
        pt_tensor *pa = k ? a2d : a, *pb = k ? b2d : b, *m = NULL, *l = NULL;
        pt_optim_zero_grad(oo);
        pt_mul(pa, pb, &m);
        pt_sum(m, &l);
        pt_backward(l);
        CU_ASSERT_EQUAL(pt_optim_step(oo), 0);
        pt_free(m);
        pt_free(l);
    }
    float x1, x2;
    pt_to_f32(a, &x1, 1);
    pt_to_f32(a2d, &x2, 1);
    CU_ASSERT_EQUAL(memcmp(&x1, &x2, sizeof x1), 0);
    /* Garbage bytes are an error, not a crash. */
    uint8_t junk[16] = {1, 2, 3};
    CU_ASSERT_EQUAL(pt_optim_load(o2, junk, sizeof junk), -1);
    assert_clean_msg(NULL);
    free(bytes);
    pt_optim_free(o);
    pt_optim_free(o2);
    pt_tensor *all[] = {a, b, ab, loss, a2, b2, a2d, b2d};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pt_free(all[i]);
}

static void test_generator_and_gumbel(void)
{
    pt_gen *g1 = NULL, *g2 = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_gen_create(7, &g1), 0);
    CU_ASSERT_EQUAL_FATAL(pt_gen_create(7, &g2), 0);
    float al[4] = {0.1f, 0.5f, -0.2f, 0.0f};
    int64_t s[1] = {4};
    pt_tensor *alpha = mk(1, s, al), *y1 = NULL, *y2 = NULL, *h = NULL;
    CU_ASSERT_EQUAL(pt_gumbel_softmax_gen(alpha, 0.5, 0, g1, &y1), 0);
    /* Save g1's state after one draw, draw again from both: g2 after one draw and set to g1's state. */
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(pt_gen_state_size(g1, &n), 0);
    uint8_t *st = malloc(n);
    CU_ASSERT_EQUAL_FATAL(pt_gen_get_state(g1, st, n), 0);
    CU_ASSERT_EQUAL(pt_gumbel_softmax_gen(alpha, 0.5, 0, g2, &y2), 0);
    float a[4], b[4];
    pt_to_f32(y1, a, 4);
    pt_to_f32(y2, b, 4);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0); /* same seed, same noise */
    double sum = 0;
    for (int k = 0; k < 4; k++) sum += a[k];
    CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-5);
    pt_free(y1);
    pt_free(y2);
    CU_ASSERT_EQUAL(pt_gumbel_softmax_gen(alpha, 0.5, 1, g1, &h), 0);
    CU_ASSERT_EQUAL_FATAL(pt_gen_set_state(g2, st, n), 0);
    CU_ASSERT_EQUAL(pt_gumbel_softmax_gen(alpha, 0.5, 1, g2, &y2), 0);
    pt_to_f32(h, a, 4);
    pt_to_f32(y2, b, 4);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0); /* restored state, same noise */
    int ones = 0;
    for (int k = 0; k < 4; k++) ones += a[k] == 1.0f ? 1 : a[k] == 0.0f ? 0 : 100;
    CU_ASSERT_EQUAL(ones, 1); /* hard: one-hot in the forward value */
    CU_ASSERT_EQUAL(pt_gumbel_softmax_gen(alpha, 0.0, 0, g1, &y1), -1);
    assert_clean_msg("temperature");
    CU_ASSERT_EQUAL(pt_gen_set_state(g1, st, 3), -1);
    assert_clean_msg(NULL);
    free(st);
    pt_free(alpha);
    pt_free(h);
    pt_free(y2);
    pt_gen_free(g1);
    pt_gen_free(g2);
}

static void test_named_tensors(void)
{
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {2, 3};
    pt_tensor *a = mk(2, s, v), *b = NULL;
    const char *names[1] = {"layer.weight"};
    CU_ASSERT_EQUAL_FATAL(pt_save_named(tu_path("named.pt"), names, (const pt_tensor *const *)&a, 1), 0);
    CU_ASSERT_EQUAL_FATAL(pt_load_named(tu_path("named.pt"), "layer.weight", &b), 0);
    float got[6];
    CU_ASSERT_EQUAL(pt_to_f32(b, got, 6), 0);
    CU_ASSERT_EQUAL(memcmp(got, v, sizeof v), 0);
    pt_free(b);
    b = (pt_tensor *)0x1;
    CU_ASSERT_EQUAL(pt_load_named(tu_path("named.pt"), "nope", &b), -1);
    CU_ASSERT_PTR_NULL(b);
    assert_clean_msg("nope");
    CU_ASSERT_EQUAL(pt_load_named(tu_path("missing.pt"), "x", &b), -1);
    assert_clean_msg(NULL);
    pt_free(a);
}

static void test_ops(void)
{
    /* pools and global average pooling on a 1x1x4x4 ramp */
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = (float)i;
    int64_t s[4] = {1, 1, 4, 4};
    pt_tensor *x = mk(4, s, v), *mp = NULL, *ap = NULL, *g = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_max_pool2d(x, 2, 2, 2, 0, &mp), 0);
    CU_ASSERT_EQUAL_FATAL(pt_avg_pool2d(x, 3, 3, 1, 1, 0, 1, &ap), 0);
    CU_ASSERT_EQUAL_FATAL(pt_global_avg_pool(x, &g), 0);
    float m[4], a[16], gv;
    pt_to_f32(mp, m, 4);
    pt_to_f32(ap, a, 16);
    pt_to_f32(g, &gv, 1);
    CU_ASSERT_EQUAL(m[0], 5);
    CU_ASSERT_EQUAL(m[3], 15);
    CU_ASSERT_DOUBLE_EQUAL(a[0], (0 + 1 + 4 + 5) / 9.0, 1e-6); /* count_include_pad divides by 9 */
    CU_ASSERT_DOUBLE_EQUAL(gv, 7.5, 1e-6);
    /* batch norm in training mode updates running stats with momentum 0.1 */
    float one = 1, zero = 0;
    int64_t s1[1] = {1};
    pt_tensor *w = mk(1, s1, &one), *b = mk(1, s1, &zero), *rm = mk(1, s1, &zero), *rv = mk(1, s1, &one), *bn = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_batch_norm(x, w, b, rm, rv, 1, 0.1, 1e-5, &bn), 0);
    float rmv, rvv;
    pt_to_f32(rm, &rmv, 1);
    pt_to_f32(rv, &rvv, 1);
    CU_ASSERT_DOUBLE_EQUAL(rmv, 0.75, 1e-5);
    /* unbiased variance of 0..15 is 22.667 */
    CU_ASSERT_DOUBLE_EQUAL(rvv, 0.9 + 0.1 * (16.0 * 16 - 1) / 12.0 * 16 / 15, 1e-4);
    pt_tensor *all[] = {x, mp, ap, g, w, b, rm, rv, bn};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pt_free(all[i]);
}

int main(void)
{
    pt_set_threads(1);
    const tu_test tests[] = {
        {"bad shapes give a status and a message", test_bad_shapes},
        {"error messages are per thread", test_thread_local_errors},
        {"cross-entropy with smoothing, KD, accuracy", test_losses},
        {"SGD momentum+Nesterov+weight decay by hand", test_sgd_by_hand},
        {"gradient-norm clipping", test_clip_grad_norm},
        {"Adam with two groups, state round trip", test_adam_groups_and_state},
        {"generators and Gumbel-softmax", test_generator_and_gumbel},
        {"named tensors save/load", test_named_tensors},
        {"pools and batch norm", test_ops},
    };
    return tu_run("train_shim", tests, (int)(sizeof tests / sizeof tests[0]));
}
