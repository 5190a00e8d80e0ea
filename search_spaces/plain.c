/* The plaintext executor: runs a decided net in float (im2col + OpenBLAS sgemm), the reference for 2PC. */
#define _GNU_SOURCE
#include "net_internal.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void conv2d(const pinas_node *n, const pinas_node *a, const float *x, const float *wt, const float *bias, float *y, float *col)
{
    int g = n->groups, icg = a->c / g, ocg = n->out_channels / g, oh = n->h, ow = n->w, K = icg * n->kh * n->kw, P = oh * ow;
    for (int gi = 0; gi < g; gi++) {
        const float *xg = x + (size_t)gi * icg * a->h * a->w;
        /* im2col: rows = (ic, ky, kx), cols = output pixels */
        for (int ic = 0; ic < icg; ic++)
            for (int ky = 0; ky < n->kh; ky++)
                for (int kx = 0; kx < n->kw; kx++) {
                    float *row = col + (size_t)((ic * n->kh + ky) * n->kw + kx) * P;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * n->stride - n->pad + ky;
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * n->stride - n->pad + kx;
                            row[oy * ow + ox] = (iy >= 0 && iy < a->h && ix >= 0 && ix < a->w) ? xg[((size_t)ic * a->h + iy) * a->w + ix] : 0.f;
                        }
                    }
                }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ocg, P, K, 1.f, wt + (size_t)gi * ocg * K, K, col, P, 0.f,
                    y + (size_t)gi * ocg * P, P);
    }
    if (bias)
        for (int o = 0; o < n->out_channels; o++)
            for (int p = 0; p < P; p++) y[(size_t)o * P + p] += bias[o];
}

static void pool(const pinas_node *n, const pinas_node *a, const float *x, float *y, int is_max)
{
    for (int c = 0; c < n->c; c++)
        for (int oy = 0; oy < n->h; oy++)
            for (int ox = 0; ox < n->w; ox++) {
                float m = -FLT_MAX;
                double s = 0;
                for (int ky = 0; ky < n->kh; ky++)
                    for (int kx = 0; kx < n->kw; kx++) {
                        int iy = oy * n->stride - n->pad + ky, ix = ox * n->stride - n->pad + kx;
                        if (iy < 0 || iy >= a->h || ix < 0 || ix >= a->w) continue; /* padding: ignored by max, zero for avg */
                        float v = x[((size_t)c * a->h + iy) * a->w + ix];
                        if (v > m) m = v;
                        s += v;
                    }
                y[((size_t)c * n->h + oy) * n->w + ox] = is_max ? m : (float)(s / (n->kh * n->kw));
            }
}

static void act(const pinas_node *n, const pinas_cand *c, const float *x, float *y, const float *w0, const float *w1, const float *b)
{
    size_t hw = (size_t)n->h * n->w;
    for (int ch = 0; ch < n->c; ch++) {
        const float *xc = x + ch * hw;
        float *yc = y + ch * hw;
        int pc = n->poly_per_channel ? ch : 0;
        switch (c->kind) {
        case PINAS_CAND_RELU:
            for (size_t i = 0; i < hw; i++) yc[i] = xc[i] > 0 ? xc[i] : 0;
            break;
        case PINAS_CAND_POLY: {
            float a2 = (float)(n->poly_scale * w0[pc]), a1 = w1[pc], a0 = b[pc];
            for (size_t i = 0; i < hw; i++) yc[i] = a2 * xc[i] * xc[i] + a1 * xc[i] + a0;
            break;
        }
        case PINAS_CAND_PATCH_RELU:
            for (int py = 0; py < n->h; py += c->ph)
                for (int px = 0; px < n->w; px += c->pw) {
                    double s = 0;
                    for (int y0 = py; y0 < py + c->ph && y0 < n->h; y0++)
                        for (int x0 = px; x0 < px + c->pw && x0 < n->w; x0++) s += xc[y0 * n->w + x0];
                    for (int y0 = py; y0 < py + c->ph && y0 < n->h; y0++)
                        for (int x0 = px; x0 < px + c->pw && x0 < n->w; x0++) yc[y0 * n->w + x0] = s > 0 ? xc[y0 * n->w + x0] : 0.f;
                }
            break;
        default:
            memcpy(yc, xc, hw * sizeof *yc);
        }
    }
}

/* Batchnorm in inference mode over the batch; with calibrate_bn, the running statistics are first set
 * to this batch's (random models: activations stay O(1)). */
static void batchnorm(const pinas_model *m, int i, const pinas_node *n, const float *X, float *Y, int batch, size_t isz, size_t osz,
                      int calibrate_bn)
{
    const float *g = pinas_model_param(m, i, "weight"), *be = pinas_model_param(m, i, "bias");
    const float *mu = pinas_model_param(m, i, "running_mean"), *var = pinas_model_param(m, i, "running_var");
    size_t hw = (size_t)n->h * n->w;
    if (calibrate_bn) {
        float *wmu = (float *)mu, *wvar = (float *)var;
        for (int c = 0; c < n->c; c++) {
            double s1 = 0, s2 = 0;
            for (int bi = 0; bi < batch; bi++)
                for (size_t p = 0; p < hw; p++) {
                    double v = X[bi * isz + c * hw + p];
                    s1 += v;
                    s2 += v * v;
                }
            double cnt = (double)batch * (double)hw, mean = s1 / cnt, v = s2 / cnt - mean * mean;
            wmu[c] = (float)mean;
            wvar[c] = (float)(v > 1e-6 ? v : 1e-6);
        }
    }
    for (int bi = 0; bi < batch; bi++)
        for (int c = 0; c < n->c; c++) {
            float sc = g[c] / sqrtf(var[c] + (float)n->eps), sh = be[c] - mu[c] * sc;
            const float *xc = X + bi * isz + c * hw;
            float *yc = Y + bi * osz + c * hw;
            for (size_t p = 0; p < hw; p++) yc[p] = xc[p] * sc + sh;
        }
}

/* Node i over the batch: X (and X2 for add) in, Y out; col is the im2col scratch. */
static pinas_status run_node(pinas_ctx *ctx, const pinas_model *m, int i, const float *X, const float *X2, float *Y, int batch, float *col,
                             int calibrate_bn)
{
    const pinas_net *net = m->net;
    const pinas_node *n = pinas_net_node(net, i), *a = pinas_net_node(net, n->inputs[0]);
    size_t osz = (size_t)n->c * n->h * n->w, isz = (size_t)a->c * a->h * a->w;
    switch (n->op) {
    case PINAS_OP_CONV2D: {
        const float *w = pinas_model_param(m, i, "weight"), *b = n->bias ? pinas_model_param(m, i, "bias") : NULL;
        for (int bi = 0; bi < batch; bi++) conv2d(n, a, X + bi * isz, w, b, Y + bi * osz, col);
        break;
    }
    case PINAS_OP_BATCHNORM: batchnorm(m, i, n, X, Y, batch, isz, osz, calibrate_bn); break;
    case PINAS_OP_LINEAR: {
        const float *w = pinas_model_param(m, i, "weight"), *b = n->bias ? pinas_model_param(m, i, "bias") : NULL;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n->out_features, (int)isz, 1.f, X, (int)isz, w, (int)isz, 0.f, Y,
                    n->out_features);
        if (b)
            for (int bi = 0; bi < batch; bi++)
                for (int o = 0; o < n->out_features; o++) Y[(size_t)bi * osz + o] += b[o];
        break;
    }
    case PINAS_OP_ACT: {
        const pinas_cand *c = pinas_node_chosen(n);
        const float *w0 = NULL, *w1 = NULL, *b = NULL;
        if (c->kind == PINAS_CAND_POLY) {
            w0 = pinas_model_param(m, i, "w0");
            w1 = pinas_model_param(m, i, "w1");
            b = pinas_model_param(m, i, "b");
        }
        for (int bi = 0; bi < batch; bi++) act(n, c, X + bi * isz, Y + bi * osz, w0, w1, b);
        break;
    }
    case PINAS_OP_POOL: {
        int is_max = pinas_node_chosen(n)->kind == PINAS_CAND_MAXPOOL;
        for (int bi = 0; bi < batch; bi++) pool(n, a, X + bi * isz, Y + bi * osz, is_max);
        break;
    }
    case PINAS_OP_ADD:
        for (size_t e = 0; e < (size_t)batch * osz; e++) Y[e] = X[e] + X2[e];
        break;
    case PINAS_OP_FLATTEN: memcpy(Y, X, (size_t)batch * osz * sizeof *Y); break;
    case PINAS_OP_GLOBAL_AVGPOOL: {
        size_t hw = (size_t)a->h * a->w;
        for (int bi = 0; bi < batch; bi++)
            for (int c = 0; c < n->c; c++) {
                double acc = 0;
                for (size_t p = 0; p < hw; p++) acc += X[bi * isz + c * hw + p];
                Y[bi * osz + c] = (float)(acc / (double)hw);
            }
        break;
    }
    default: return pinas_error(ctx, PINAS_EINTERNAL, "node %s: op %s not executable", n->id, pinas_op_name(n->op));
    }
    return PINAS_OK;
}

/* last[i]: the last node that reads node i's output (nn for the output); returns the im2col scratch
 * size the largest convolution needs. */
static size_t plan_buffers(const pinas_net *net, int *last)
{
    int nn = pinas_net_n_nodes(net);
    for (int i = 1; i < nn; i++)
        for (int k = 0; k < pinas_net_node(net, i)->n_inputs; k++) last[pinas_net_node(net, i)->inputs[k]] = i;
    last[nn - 1] = nn;
    size_t col_max = 0;
    for (int i = 1; i < nn; i++) {
        const pinas_node *n = pinas_net_node(net, i);
        if (n->op == PINAS_OP_CONV2D) {
            size_t need = (size_t)(pinas_net_node(net, n->inputs[0])->c / n->groups) * n->kh * n->kw * n->h * n->w;
            if (need > col_max) col_max = need;
        }
    }
    return col_max;
}

static pinas_status forward_run(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, float *logits, int calibrate_bn,
                                pinas_plain_tap_fn tap, void *user)
{
    const pinas_net *net = m->net;
    int nn = pinas_net_n_nodes(net);
    if (batch < 1) return pinas_error(ctx, PINAS_EINVAL, "batch must be >= 1");
    /* Free each activation after its last use. */
    int *last = calloc((size_t)nn, sizeof *last);
    float **buf = calloc((size_t)nn, sizeof *buf);
    if (!last || !buf) {
        free(last);
        free(buf);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    size_t col_max = plan_buffers(net, last);
    float *col = malloc((col_max ? col_max : 1) * sizeof *col);
    pinas_status s = col ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    buf[0] = (float *)x; /* borrowed; never freed */
    for (int i = 1; i < nn && !s; i++) {
        const pinas_node *n = pinas_net_node(net, i);
        buf[i] = malloc((size_t)batch * n->c * n->h * n->w * sizeof(float));
        if (!buf[i]) {
            s = pinas_error(ctx, PINAS_ENOMEM, "node %s: out of memory", n->id);
            break;
        }
        s = run_node(ctx, m, i, buf[n->inputs[0]], n->n_inputs > 1 ? buf[n->inputs[1]] : NULL, buf[i], batch, col, calibrate_bn);
        if (!s && tap) s = tap(ctx, user, i, buf[n->inputs[0]], buf[i], batch);
        for (int k = 0; k < n->n_inputs; k++) {
            int src = n->inputs[k];
            if (src > 0 && last[src] == i && buf[src]) {
                free(buf[src]);
                buf[src] = NULL;
            }
        }
    }
    if (!s) memcpy(logits, buf[nn - 1], (size_t)batch * pinas_net_num_classes(net) * sizeof *logits);
    for (int i = 1; i < nn; i++) free(buf[i]);
    free(buf);
    free(last);
    free(col);
    return s;
}

pinas_status plain_forward_impl(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, float *logits, int calibrate_bn)
{
    return forward_run(ctx, m, x, batch, logits, calibrate_bn, NULL, NULL);
}

pinas_status pinas_plain_forward(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, float *logits)
{
    return plain_forward_impl(ctx, m, x, batch, logits, 0);
}

pinas_status pinas_plain_forward_tap(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, float *logits,
                                     pinas_plain_tap_fn tap, void *user)
{
    return forward_run(ctx, m, x, batch, logits, 0, tap, user);
}
