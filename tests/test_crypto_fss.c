/* Tests for crypto/dcf.c: DReLU keys (Z_2 DCF with early termination) against their definition, the
 * select gate (ReLU, patch ReLU, maxpool's pairwise max), comparison windows, key sizes, determinism
 * across thread counts, and corrupted keys. */
#define _GNU_SOURCE
#include "pinas_mpc.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static pinas_ctx *ctx;
static pinas_prg *prg;

static uint64_t rnd64(void)
{
    uint64_t v;
    pinas_prg_bytes(prg, &v, 8);
    return v;
}

/* DReLU of p in the window's top-bit semantics (exact reference): 1 when p mod 2^high, read as a signed
 * high-bit integer, is >= 0. */
static int drelu_ref(uint64_t p, int high) { return !((p >> (high - 1)) & 1); }

/* Generates keys for the masks r[0..n), evaluates both parties at p[i] + r[i]; d[i] = the reconstructed
 * DReLU (e_0 xor e_1 xor t). Checks the AES counts. */
static void drelu_run(int bits, int high, size_t n, const uint64_t *p, const uint64_t *r, int threads, uint8_t *d)
{
    size_t ks = pinas_drelu_key_size(bits);
    uint8_t *k0 = malloc(ks * n), *k1 = malloc(ks * n), *t = malloc(n), *e0 = malloc(n), *e1 = malloc(n);
    uint64_t *ph = malloc(8 * n);
    uint64_t g = pinas_drelu_gen(prg, bits, high, n, r, k0, k1, t, threads);
    CU_ASSERT_EQUAL(g, pinas_drelu_gen_aes_blocks(bits, n));
    for (size_t i = 0; i < n; i++) ph[i] = p[i] + r[i];
    uint64_t a0 = pinas_drelu_eval(0, bits, high, k0, n, ph, e0, threads);
    uint64_t a1 = pinas_drelu_eval(1, bits, high, k1, n, ph, e1, threads);
    CU_ASSERT_EQUAL(a0, n * (uint64_t)(bits - 7));
    CU_ASSERT_EQUAL(a1, a0);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(e0[i] <= 1 && e1[i] <= 1 && t[i] <= 1);
        d[i] = (uint8_t)(e0[i] ^ e1[i] ^ t[i]);
    }
    free(k0), free(k1), free(t), free(e0), free(e1), free(ph);
}

/* Full windows (high = bits): every p of the window, exhaustively, for a few masks each, is exact. */
static void test_drelu_exhaustive(void)
{
    const int bits[] = {8, 9, 12};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
        int n = bits[b];
        size_t N = (size_t)1 << n;
        uint64_t *p = malloc(8 * N), *r = malloc(8 * N);
        uint8_t *d = malloc(N);
        for (int rep = 0; rep < 4; rep++) {
            uint64_t rm = rep == 0 ? 0 : rep == 1 ? (1ULL << (n - 1)) : rnd64(); /* masks 0, the sign bit, random */
            for (size_t i = 0; i < N; i++) {
                p[i] = i | (rnd64() << n); /* bits above the window must not matter */
                r[i] = rep == 3 ? rnd64() : rm;
            }
            drelu_run(n, n, N, p, r, 1, d);
            int bad = 0;
            for (size_t i = 0; i < N; i++) bad += d[i] != drelu_ref(p[i], n);
            CU_ASSERT_EQUAL(bad, 0);
            if (bad) fprintf(stderr, "\n bits %d mask rep %d: %d of %zu wrong\n", n, rep, bad, N);
        }
        free(p), free(r), free(d);
    }
}

/* 64 and 32 compared bits at the top: random values and edges; 64 bits is exact everywhere, 32 bits
 * outside the band [-2^32, 0) and one-sided inside it. */
static void test_drelu_random_and_edges(void)
{
    const uint64_t edges[] = {0, 1, (uint64_t)-1, 2, (uint64_t)-2, (1ULL << 62), (1ULL << 63) - 1, 1ULL << 63,
                              (1ULL << 63) + 1, (uint64_t)-(1LL << 40), 1ULL << 40, (uint64_t)-(1LL << 32),
                              (uint64_t)-(1LL << 32) - 1, 1ULL << 32};
    size_t ne = sizeof edges / sizeof edges[0], N = 6000;
    uint64_t *p = malloc(8 * N), *r = malloc(8 * N);
    uint8_t *d = malloc(N);
    for (size_t i = 0; i < N; i++) {
        p[i] = i < 20 * ne ? edges[i % ne] : i % 2 ? rnd64() : (uint64_t)((int64_t)(rnd64() % 200001) - 100000);
        r[i] = rnd64();
    }
    drelu_run(64, 64, N, p, r, 1, d);
    int bad = 0;
    for (size_t i = 0; i < N; i++) bad += d[i] != drelu_ref(p[i], 64);
    CU_ASSERT_EQUAL(bad, 0);
    drelu_run(32, 64, N, p, r, 2, d);
    bad = 0;
    for (size_t i = 0; i < N; i++) {
        int64_t v = (int64_t)p[i];
        int in_band = v >= -((int64_t)1 << 32) && v < 0, far = v >= (int64_t)((1ULL << 63) - (1ULL << 32));
        if (!in_band && !far) bad += d[i] != drelu_ref(p[i], 64);
        /* in the band either answer; p >= 0 never reads as negative: */
        if (v >= 0 && !far) bad += d[i] != 1;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(p), free(r), free(d);
}

/* Windows [high - bits, high): values aligned to the window's low end are exact (no borrow from the
 * ignored bits), inside |p| < 2^(high-1) DReLU is the sign of p; just outside, the sign of the wrapped
 * value; bits above high never matter. */
static void test_windows(void)
{
    const int win[][2] = {{16, 16}, {16, 24}, {16, 40}, {20, 63}, {12, 64}, {40, 48}, {8, 30}};
    for (size_t w = 0; w < sizeof win / sizeof win[0]; w++) {
        int bits = win[w][0], high = win[w][1], lo = high - bits;
        size_t N = 4000;
        uint64_t *p = malloc(8 * N), *r = malloc(8 * N);
        uint8_t *d = malloc(N);
        uint64_t top = 1ULL << (high - 1); /* 2^(high-1) */
        for (size_t i = 0; i < N; i++) {
            uint64_t v;
            switch (i % 6) {
            case 0: v = top - (1ULL << lo); break;          /* largest positive inside */
            case 1: v = (uint64_t)0 - top; break;            /* most negative inside */
            case 2: v = top; break;                          /* just outside: wraps to negative */
            case 3: v = (uint64_t)0 - top - (1ULL << lo); break; /* just outside below: wraps positive */
            default: v = (rnd64() % top) & ~((1ULL << lo) - 1); if (i % 2) v = (uint64_t)0 - v - (1ULL << lo);
            }
            if (high < 64) v += rnd64() << high; /* garbage above the window */
            p[i] = v;
            r[i] = rnd64();
        }
        drelu_run(bits, high, N, p, r, 1, d);
        int bad = 0;
        for (size_t i = 0; i < N; i++) bad += d[i] != drelu_ref(p[i], high);
        CU_ASSERT_EQUAL(bad, 0);
        if (bad) fprintf(stderr, "\n window [%d, %d): %d of %zu wrong\n", lo, high, bad, N);
        /* unaligned values: the error is one-sided (p >= 0 inside the range always reads 1) */
        for (size_t i = 0; i < N; i++) p[i] = rnd64() % (top / 2) + ((rnd64() % 2) ? 0 : (uint64_t)0 - top / 2);
        drelu_run(bits, high, N, p, r, 1, d);
        bad = 0;
        for (size_t i = 0; i < N; i++) {
            int64_t v = (int64_t)(p[i] << (64 - high)) >> (64 - high);
            if (v >= 0) bad += d[i] != 1;
            if (v < -((int64_t)1 << lo)) bad += d[i] != 0;
        }
        CU_ASSERT_EQUAL(bad, 0);
        free(p), free(r), free(d);
    }
}

/* Party shares: a random split. */
static void share(uint64_t x, uint64_t *a, uint64_t *b)
{
    *a = rnd64();
    *b = x - *a;
}

/* Patches of k elements x (k per gate, n gates) through the whole select gate as the runtime runs it:
 * x̂ = x + r, p̂ = sum x̂ - 1, keys on sum r, shares of t and t·r, y_e = select. Returns the wrong count
 * (want: y = x when sum x > 0, else 0; k = 1 is ReLU). */
static int select_check(int bits, int k, size_t n, const uint64_t *x)
{
    size_t ne = n * (size_t)k, ks = pinas_drelu_key_size(bits);
    uint64_t *r = malloc(8 * ne), *xh = malloc(8 * ne), *rp = calloc(n, 8), *ph = malloc(8 * n);
    uint8_t *k0 = malloc(ks * n), *k1 = malloc(ks * n), *t = malloc(n), *e0 = malloc(n), *e1 = malloc(n);
    for (size_t q = 0; q < ne; q++) {
        r[q] = rnd64();
        xh[q] = x[q] + r[q];
        rp[q / (size_t)k] += r[q];
    }
    for (size_t g = 0; g < n; g++) {
        ph[g] = (uint64_t)0 - 1;
        for (int j = 0; j < k; j++) ph[g] += xh[g * (size_t)k + (size_t)j];
    }
    pinas_drelu_gen(prg, bits, 64, n, rp, k0, k1, t, 1);
    pinas_drelu_eval(0, bits, 64, k0, n, ph, e0, 1);
    pinas_drelu_eval(1, bits, 64, k1, n, ph, e1, 1);
    int bad = 0;
    for (size_t g = 0; g < n; g++) {
        int bh = e0[g] ^ e1[g]; /* opened: DReLU xor t */
        uint64_t t0, t1, sum = 0;
        share(t[g], &t0, &t1);
        for (int j = 0; j < k; j++) sum += x[g * (size_t)k + (size_t)j];
        int64_t v = (int64_t)(sum - 1), band = bits < 64 ? (int64_t)1 << (64 - bits) : 0;
        if (v >= -band && v < 0) continue; /* the reduced-bit band: either answer (test_drelu_random_and_edges) */
        for (int j = 0; j < k; j++) {
            size_t q = g * (size_t)k + (size_t)j;
            uint64_t r0, r1, tr0, tr1;
            share(r[q], &r0, &r1);
            share(t[g] * r[q], &tr0, &tr1);
            uint64_t y = pinas_select_share(0, bh, xh[q], r0, t0, tr0) + pinas_select_share(1, bh, xh[q], r1, t1, tr1);
            bad += y != ((int64_t)sum > 0 ? x[q] : 0);
        }
    }
    free(r), free(xh), free(rp), free(ph), free(k0), free(k1), free(t), free(e0), free(e1);
    return bad;
}

static void test_relu_and_patch_gate(void)
{
    for (int k = 1; k <= 16; k += (k < 4 ? 1 : 6)) {
        size_t n = 700;
        uint64_t *x = malloc(8 * n * (size_t)k);
        for (size_t q = 0; q < n * (size_t)k; q++)
            x[q] = q % 7 == 0 ? rnd64() >> 2 : (uint64_t)((int64_t)(rnd64() % 2001) - 1000);
        for (size_t q = 0; q < 3 * (size_t)k; q++) x[q] = 0; /* sum 0: dropped */
        CU_ASSERT_EQUAL(select_check(64, k, n, x), 0);
        CU_ASSERT_EQUAL(select_check(32, k, n, x), 0); /* outside the 2^32 band below 0 */
        free(x);
    }
}

/* Maxpool's pairwise max through the ReLU gate: max(a, b) = b + ReLU(a - b), two tree levels for 4. */
static void test_maxpool_pairs(void)
{
    size_t n = 500;
    uint64_t *v = malloc(8 * 4 * n), *d = malloc(8 * 2 * n), *m = malloc(8 * 2 * n);
    for (size_t q = 0; q < 4 * n; q++) v[q] = (uint64_t)((int64_t)(rnd64() % 20001) - 10000);
    for (int level = 0; level < 2; level++) {
        size_t P = level == 0 ? 2 * n : n;
        const uint64_t *in = level == 0 ? v : m;
        for (size_t q = 0; q < P; q++) d[q] = in[2 * q] - in[2 * q + 1];
        /* the ReLU of each difference through the gate, then + b */
        size_t ks = pinas_drelu_key_size(64);
        uint64_t *r = malloc(8 * P), *ph = malloc(8 * P), *o = malloc(8 * P);
        uint8_t *k0 = malloc(ks * P), *k1 = malloc(ks * P), *t = malloc(P), *e0 = malloc(P), *e1 = malloc(P);
        for (size_t q = 0; q < P; q++) {
            r[q] = rnd64();
            ph[q] = d[q] + r[q];
        }
        pinas_drelu_gen(prg, 64, 64, P, r, k0, k1, t, 2);
        pinas_drelu_eval(0, 64, 64, k0, P, ph, e0, 2);
        pinas_drelu_eval(1, 64, 64, k1, P, ph, e1, 2);
        for (size_t q = 0; q < P; q++) {
            uint64_t r0, r1, t0, t1, tr0, tr1;
            share(r[q], &r0, &r1);
            share(t[q], &t0, &t1);
            share(t[q] * r[q], &tr0, &tr1);
            int bh = e0[q] ^ e1[q];
            o[q] = pinas_select_share(0, bh, ph[q], r0, t0, tr0) + pinas_select_share(1, bh, ph[q], r1, t1, tr1);
        }
        for (size_t q = 0; q < P; q++) m[q] = in[2 * q + 1] + o[q];
        free(r), free(ph), free(o), free(k0), free(k1), free(t), free(e0), free(e1);
    }
    int bad = 0;
    for (size_t w = 0; w < n; w++) {
        int64_t mx = (int64_t)v[4 * w];
        for (int j = 1; j < 4; j++)
            if ((int64_t)v[4 * w + j] > mx) mx = (int64_t)v[4 * w + j];
        bad += (int64_t)m[w] != mx;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(v), free(d), free(m);
}

/* Issue 14's targets: ReLU material per element per party (r, t, t·r shares + one key) <= 1,100 B at
 * 64 bits and <= 600 B at 32, by the formula and as the dealer lays it out for a ReLU node. */
static void test_key_sizes(void)
{
    CU_ASSERT_EQUAL(pinas_drelu_key_size(64), 952);
    CU_ASSERT_EQUAL(pinas_drelu_key_size(32), 440);
    CU_ASSERT_EQUAL(pinas_drelu_key_size(8), 56);
    for (int b = 8; b <= 64; b++) CU_ASSERT_EQUAL(pinas_drelu_key_size(b), 56 + 16 * (size_t)(b - 8));
    CU_ASSERT(24 + pinas_drelu_key_size(64) <= 1100);
    CU_ASSERT(24 + pinas_drelu_key_size(32) <= 600);
    const int widths[] = {64, 32};
    for (int w = 0; w < 2; w++) {
        pinas_net_builder *b = pinas_nb_create("relu", 4, 8, 8, 256);
        int x = pinas_nb_act(b, "a", 0, &(pinas_cand){.kind = PINAS_CAND_RELU}, 1);
        pinas_nb_flatten(b, "f", x);
        pinas_net *net = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_nb_finish(ctx, b, "relu", &net), PINAS_OK);
        pinas_mpc_params p;
        pinas_mpc_params_default(&p);
        p.cmp_bits = widths[w];
        pinas_mpc_prep *p0 = NULL, *p1 = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_mpc_deal(ctx, net, &p, NULL, &p0, &p1), PINAS_OK);
        uint64_t per = pinas_mpc_prep_node_bytes(p0, 1) / 256;
        CU_ASSERT_EQUAL(pinas_mpc_prep_node_bytes(p0, 1), 256 * (24 + pinas_drelu_key_size(widths[w])));
        CU_ASSERT_EQUAL(pinas_mpc_prep_node_bytes(p1, 1), pinas_mpc_prep_node_bytes(p0, 1));
        CU_ASSERT(per <= (widths[w] == 64 ? 1100u : 600u));
        pinas_mpc_prep_free(p0);
        pinas_mpc_prep_free(p1);
        pinas_net_free(net);
    }
}

/* Keys, t and evaluations are bit-identical for every thread count (the randomness is drawn per chunk
 * of 4,096 gates, never per thread). */
static void test_threads_deterministic(void)
{
    size_t n = 3 * 4096 + 123, ks = pinas_drelu_key_size(40);
    uint64_t *r = malloc(8 * n), *ph = malloc(8 * n);
    for (size_t i = 0; i < n; i++) r[i] = rnd64(), ph[i] = rnd64();
    uint8_t seed[16] = {7, 1, 4};
    uint8_t *ref[4] = {NULL}, *refe = NULL;
    const int th[] = {1, 2, 3, 8};
    for (int q = 0; q < 4; q++) {
        pinas_prg *g = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_prg_create(ctx, seed, &g), PINAS_OK);
        uint8_t *k0 = malloc(ks * n), *k1 = malloc(ks * n), *t = malloc(n), *e = malloc(n);
        pinas_drelu_gen(g, 40, 56, n, r, k0, k1, t, th[q]);
        CU_ASSERT_EQUAL(pinas_prg_blocks(g), pinas_drelu_gen_prg_blocks(n));
        pinas_drelu_eval(1, 40, 56, k1, n, ph, e, th[q]);
        if (q == 0) {
            ref[0] = k0, ref[1] = k1, ref[2] = t, refe = e;
        } else {
            CU_ASSERT(memcmp(k0, ref[0], ks * n) == 0);
            CU_ASSERT(memcmp(k1, ref[1], ks * n) == 0);
            CU_ASSERT(memcmp(t, ref[2], n) == 0);
            CU_ASSERT(memcmp(e, refe, n) == 0);
            free(k0), free(k1), free(t), free(e);
        }
        pinas_prg_free(g);
    }
    free(ref[0]), free(ref[1]), free(ref[2]), free(refe), free(r), free(ph);
}

/* A corrupted key (a flipped correction word, or random bytes) evaluates to a wrong result for many
 * gates, without crashing. */
static void test_corrupted_key(void)
{
    size_t n = 512, ks = pinas_drelu_key_size(64);
    uint64_t *r = malloc(8 * n), *ph = malloc(8 * n);
    uint8_t *k0 = malloc(ks * n), *k1 = malloc(ks * n), *t = malloc(n), *e0 = malloc(n), *e1 = malloc(n);
    for (size_t i = 0; i < n; i++) r[i] = rnd64(), ph[i] = rnd64();
    pinas_drelu_gen(prg, 64, 64, n, r, k0, k1, t, 1);
    pinas_drelu_eval(0, 64, 64, k0, n, ph, e0, 1);
    int bad = 0;
    for (size_t i = 0; i < n; i++) { /* flip one bit of the first level's seed correction and of the leaf correction */
        k1[i * ks + 40] ^= 0x10;
        k1[i * ks + ks - 16 + (i % 16)] ^= 0xff;
    }
    pinas_drelu_eval(1, 64, 64, k1, n, ph, e1, 1);
    for (size_t i = 0; i < n; i++) bad += (e0[i] ^ e1[i] ^ t[i]) != drelu_ref(ph[i] - r[i], 64);
    CU_ASSERT(bad > (int)n / 8);
    pinas_prg_bytes(prg, k1, ks * n); /* garbage keys: any bits, no crash */
    pinas_drelu_eval(1, 64, 64, k1, n, ph, e1, 2);
    for (size_t i = 0; i < n; i++) CU_ASSERT(e1[i] <= 1);
    free(r), free(ph), free(k0), free(k1), free(t), free(e0), free(e1);
}

/* A private inference honours a node's window (pinas_mpc_layer_bits {id, cmp_bits, cmp_high}):
 * input -> relu -> flatten, 16 values of magnitude 1.5 .. 100 at frac_bits 16. Window [16, 40) is exact
 * for them; window [4, 20) reads bit 19 as the sign, so |x| >= 8 (2^19 ulps) wraps, as documented. The
 * counters equal the cost model's for that width. */
static void test_window_end_to_end(void)
{
    pinas_net_builder *b = pinas_nb_create("win", 1, 4, 4, 16);
    int x = pinas_nb_act(b, "a", 0, &(pinas_cand){.kind = PINAS_CAND_RELU}, 1);
    pinas_nb_flatten(b, "f", x);
    pinas_net *net = NULL;
    pinas_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nb_finish(ctx, b, "win", &net), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, net, 1, &m), PINAS_OK);
    float in[16], out[16];
    for (int i = 0; i < 16; i++) in[i] = (float)((i % 2 ? -1 : 1) * (1.5 + 6.6 * i));
    const int win[2][2] = {{24, 40}, {16, 20}};
    for (int w = 0; w < 2; w++) {
        pinas_mpc_params p;
        pinas_mpc_params_default(&p);
        pinas_mpc_layer_bits lb[] = {{"a", win[w][0], win[w][1]}};
        pinas_mpc_deal_opts o = {.layer_bits = lb, .n_layer_bits = 1};
        pinas_mpc_report *rep = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_mpc_infer_loopback(ctx, m, in, 1, &p, &o, out, &rep), PINAS_OK);
        int bad = 0;
        for (int i = 0; i < 16; i++) {
            float want = in[i] > 0 ? in[i] : 0;
            if (w == 1) { /* the sign of x mod 2^20 ulps, x·2^16 in [-2^19, 2^19) */
                int64_t v = (int64_t)(in[i] * 65536.0f);
                int64_t wv = (int64_t)((uint64_t)v << 44) >> 44;
                want = wv >= 0 ? in[i] : 0;
            }
            bad += fabsf(out[i] - want) > 1e-3f;
        }
        CU_ASSERT_EQUAL(bad, 0);
        pinas_mpc_params q = p;
        q.cmp_bits = win[w][0];
        q.cmp_high = win[w][1];
        pinas_mpc_cost c;
        CU_ASSERT_EQUAL_FATAL(pinas_mpc_cost_node(ctx, net, 1, -1, &q, &c), PINAS_OK);
        CU_ASSERT(pinas_mpc_counts_equal(&c.online, &rep->layers[0].measured.online));
        CU_ASSERT(pinas_mpc_counts_equal(&c.offline, &rep->layers[0].measured.offline));
        CU_ASSERT_EQUAL(c.online.aes_blocks[0], 16 * (uint64_t)(win[w][0] - 7));
        CU_ASSERT_EQUAL(c.online.rounds, 2);
        pinas_mpc_report_free(rep);
    }
    pinas_mpc_layer_bits badw[] = {{"a", 24, 20}}; /* top below the width */
    pinas_mpc_deal_opts o = {.layer_bits = badw, .n_layer_bits = 1};
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    TU_ASSERT_ERR(ctx, pinas_mpc_deal(ctx, net, &p, &o, &p0, &p1), "cmp_high");
    p.cmp_high = 65;
    TU_ASSERT_ERR(ctx, pinas_mpc_params_check(ctx, &p), "cmp_high");
    pinas_model_free(m);
    pinas_net_free(net);
}

int main(void)
{
    ctx = pinas_ctx_create();
    if (pinas_prg_create_os(ctx, &prg) != PINAS_OK) return 1;
    tu_test t[] = {{"drelu keys exhaustive on small windows", test_drelu_exhaustive},
                   {"drelu keys: random and edge values, 64 and 32 bits", test_drelu_random_and_edges},
                   {"comparison windows [high - bits, high)", test_windows},
                   {"relu and patch select gates (k up to 16)", test_relu_and_patch_gate},
                   {"maxpool pairwise max through the gate", test_maxpool_pairs},
                   {"key sizes within issue 14's targets", test_key_sizes},
                   {"bit-identical for every thread count", test_threads_deterministic},
                   {"corrupted keys give wrong results, no crash", test_corrupted_key},
                   {"a node's window through a private inference", test_window_end_to_end}};
    int rc = tu_run("crypto_fss", t, 9);
    pinas_prg_free(prg);
    pinas_ctx_free(ctx);
    return rc;
}
