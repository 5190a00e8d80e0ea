/* Data movement shared by the dealer and the parties: im2col over the ring, output scatter, patch indices. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <string.h>

const pinas_cand *node_choice(const pinas_net *net, int node) { return pinas_node_chosen(pinas_net_node(net, node)); }

void mm_cols(const pinas_net *net, int node, const pl_node *pn, const uint64_t *X, int g, uint64_t *cols)
{
    const pinas_node *n = pinas_net_node(net, node), *a = pinas_net_node(net, n->inputs[0]);
    int64_t N = pn->N;
    if (!pn->is_conv) { /* linear: cols[k][b] = X[b][k] */
        int batch = (int)N, K = pn->K;
        for (int b = 0; b < batch; b++)
            for (int k = 0; k < K; k++) cols[(size_t)k * batch + b] = X[(size_t)b * K + k];
        return;
    }
    int icg = a->c / n->groups, oh = n->h, ow = n->w, P = oh * ow, batch = (int)(N / P);
    size_t in_sz = (size_t)a->c * a->h * a->w;
    for (int ic = 0; ic < icg; ic++)
        for (int ky = 0; ky < n->kh; ky++)
            for (int kx = 0; kx < n->kw; kx++) {
                uint64_t *row = cols + (size_t)((ic * n->kh + ky) * n->kw + kx) * N;
                for (int b = 0; b < batch; b++) {
                    const uint64_t *xc = X + b * in_sz + (size_t)(g * icg + ic) * a->h * a->w;
                    uint64_t *r = row + (size_t)b * P;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * n->stride - n->pad + ky;
                        if (iy < 0 || iy >= a->h) {
                            memset(r + oy * ow, 0, sizeof(uint64_t) * ow);
                            continue;
                        }
                        const uint64_t *xr = xc + (size_t)iy * a->w;
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * n->stride - n->pad + kx;
                            r[oy * ow + ox] = (ix >= 0 && ix < a->w) ? xr[ix] : 0;
                        }
                    }
                }
            }
}

void mm_scatter(const pinas_net *net, int node, const pl_node *pn, const uint64_t *Y, uint64_t *out)
{
    const pinas_node *n = pinas_net_node(net, node);
    int64_t N = pn->N;
    int M = pn->M;
    if (!pn->is_conv) {
        int batch = (int)N;
        for (int m = 0; m < M; m++)
            for (int b = 0; b < batch; b++) out[(size_t)b * M + m] = Y[(size_t)m * batch + b];
        return;
    }
    int P = n->h * n->w, batch = (int)(N / P), C = n->c;
    for (int g = 0; g < pn->groups; g++)
        for (int m = 0; m < M; m++) {
            const uint64_t *y = Y + ((size_t)g * M + m) * N;
            for (int b = 0; b < batch; b++)
                memcpy(out + ((size_t)b * C + (size_t)g * M + m) * P, y + (size_t)b * P, sizeof(uint64_t) * P);
        }
}

void patch_index(const pinas_net *net, int node, const pl_node *pn, int batch, int64_t *idx)
{
    const pinas_node *n = pinas_net_node(net, node);
    const pinas_cand *c = node_choice(net, node);
    int ph = c->ph, pw = c->pw;
    (void)pn;
    size_t g = 0;
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < n->c; ch++)
            for (int py = 0; py < n->h; py += ph)
                for (int px = 0; px < n->w; px += pw) {
                    for (int y = 0; y < ph; y++)
                        for (int x = 0; x < pw; x++) {
                            int iy = py + y, ix = px + x;
                            idx[g * (size_t)(ph * pw) + (size_t)(y * pw + x)] =
                                (iy < n->h && ix < n->w) ? (((int64_t)b * n->c + ch) * n->h + iy) * n->w + ix : -1;
                        }
                    g++;
                }
}
