/* Z_2^64 ring arithmetic: fixed-point encoding, local share truncation, and the ring GEMM kernels. */
#define _GNU_SOURCE
#include "mpc_internal.h"
#include "pinas_mpc.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t pinas_ring_encode(double x, int f)
{
    double lim = ldexp(1.0, 62 - f);
    if (x != x) x = 0; /* NaN encodes as 0 rather than as undefined behaviour */
    if (x > lim) x = lim;
    if (x < -lim) x = -lim;
    return (uint64_t)(int64_t)llround(ldexp(x, f));
}

double pinas_ring_decode(uint64_t v, int f) { return ldexp((double)(int64_t)v, -f); }

/* Party 0 shifts its share; party 1 shifts the negation. With x = x0 + x1 and u = -x1, x0 - u = x
 * as integers unless the shares straddle the wrap, which happens with probability |x|/2^64 over the
 * uniform share; otherwise the sum is floor(x0/2^f) - floor(u/2^f), i.e. floor(x/2^f) + {0, 1}. */
void pinas_ring_trunc_share(uint64_t *v, size_t n, int f, int party)
{
    if (party == 0) {
        for (size_t i = 0; i < n; i++) v[i] = ring_trunc_share1(v[i], f, 0);
    } else {
        for (size_t i = 0; i < n; i++) v[i] = ring_trunc_share1(v[i], f, 1);
    }
}

/* Below this many elements a thread team costs more than it saves. */
#define TRUNC_PAR_MIN (1 << 16)

void pinas_ring_trunc_share_mt(uint64_t *v, size_t n, int f, int party, int threads)
{
    if (threads <= 1 || n < TRUNC_PAR_MIN) {
        pinas_ring_trunc_share(v, n, f, party);
        return;
    }
    size_t chunk = (n + (size_t)threads - 1) / (size_t)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) {
        size_t a = (size_t)t * chunk, b = a + chunk < n ? a + chunk : n;
        if (a < b) pinas_ring_trunc_share(v + a, b - a, f, party);
    }
}

/* ------------------------------------------------------------------ integer kernel */

#define MR 8
#define NR 16
#define KC 256
#define NC 512

static int have_avx512(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    }
    return cached;
}

/* acc[MR][NR] = sum_kk Ap[kk][MR] * Bp[kk][NR], AVX-512 (vpmullq): 16 accumulators of 8 lanes. */
__attribute__((target("avx512f,avx512dq"))) static void kernel_avx512(int kc, const uint64_t *Ap, const uint64_t *Bp,
                                                                         uint64_t *acc)
{
    __m512i c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_si512();
    for (int kk = 0; kk < kc; kk++) {
        __m512i b0 = _mm512_loadu_si512((const void *)(Bp + kk * NR));
        __m512i b1 = _mm512_loadu_si512((const void *)(Bp + kk * NR + 8));
        const uint64_t *a = Ap + kk * MR;
        for (int r = 0; r < MR; r++) {
            __m512i av = _mm512_set1_epi64((long long)a[r]);
            c[r][0] = _mm512_add_epi64(c[r][0], _mm512_mullo_epi64(av, b0));
            c[r][1] = _mm512_add_epi64(c[r][1], _mm512_mullo_epi64(av, b1));
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_si512((void *)(acc + r * NR), c[r][0]);
        _mm512_storeu_si512((void *)(acc + r * NR + 8), c[r][1]);
    }
}

static void kernel_scalar(int kc, const uint64_t *Ap, const uint64_t *Bp, uint64_t *acc)
{
    memset(acc, 0, sizeof(uint64_t) * MR * NR);
    for (int kk = 0; kk < kc; kk++)
        for (int r = 0; r < MR; r++) {
            uint64_t a = Ap[kk * MR + r];
            for (int j = 0; j < NR; j++) acc[r * NR + j] += a * Bp[kk * NR + j];
        }
}

static void gemm_int(int m, int n, int k, const uint64_t *A, int lda, const uint64_t *B, int ldb, uint64_t *C, int ldc,
                     int accumulate)
{
    if (!accumulate)
        for (int i = 0; i < m; i++) memset(C + (size_t)i * ldc, 0, sizeof(uint64_t) * (size_t)n);
    if (k == 0 || m == 0 || n == 0) return;
    int avx = have_avx512();
    uint64_t *Bp = aligned_alloc(64, sizeof(uint64_t) * KC * NC);
    uint64_t *Ap = aligned_alloc(64, sizeof(uint64_t) * KC * MR);
    uint64_t acc[MR * NR] __attribute__((aligned(64)));
    if (!Bp || !Ap) { /* out of memory: fall back to the plain triple loop, still correct */
        free(Bp);
        free(Ap);
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) {
                uint64_t a = A[(size_t)i * lda + p];
                for (int j = 0; j < n; j++) C[(size_t)i * ldc + j] += a * B[(size_t)p * ldb + j];
            }
        return;
    }
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        int npan = (nc + NR - 1) / NR;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            /* pack B[pc:pc+kc, jc:jc+nc] into NR-wide panels, zero padded */
            for (int pn = 0; pn < npan; pn++) {
                int j0 = jc + pn * NR, nr = n - j0 < NR ? n - j0 : NR;
                uint64_t *dst = Bp + (size_t)pn * KC * NR;
                for (int kk = 0; kk < kc; kk++) {
                    const uint64_t *src = B + (size_t)(pc + kk) * ldb + j0;
                    memcpy(dst + kk * NR, src, sizeof(uint64_t) * nr);
                    if (nr < NR) memset(dst + kk * NR + nr, 0, sizeof(uint64_t) * (NR - nr));
                }
            }
            for (int ic = 0; ic < m; ic += MR) {
                int mr = m - ic < MR ? m - ic : MR;
                for (int kk = 0; kk < kc; kk++)
                    for (int r = 0; r < MR; r++) Ap[kk * MR + r] = r < mr ? A[(size_t)(ic + r) * lda + pc + kk] : 0;
                for (int pn = 0; pn < npan; pn++) {
                    int j0 = jc + pn * NR, nr = n - j0 < NR ? n - j0 : NR;
                    if (avx)
                        kernel_avx512(kc, Ap, Bp + (size_t)pn * KC * NR, acc);
                    else
                        kernel_scalar(kc, Ap, Bp + (size_t)pn * KC * NR, acc);
                    for (int r = 0; r < mr; r++) {
                        uint64_t *c = C + (size_t)(ic + r) * ldc + j0;
                        for (int j = 0; j < nr; j++) c[j] += acc[r * NR + j];
                    }
                }
            }
        }
    }
    free(Bp);
    free(Ap);
}

/* ------------------------------------------------------------------ dgemm on 16-bit limbs */

/* General operands: C = sum_{i+j<=3} (A_i B_j) << 16(i+j); each limb product is exact in double while
 * k * 2^32 < 2^53. One dgemm per limb of A against the concatenated limbs of B it pairs with. */
static int gemm_limbs(int m, int n, int k, const uint64_t *A, int lda, const uint64_t *B, int ldb, uint64_t *C, int ldc,
                      int accumulate)
{
    if (k >= (1 << 21) || m <= 0 || n <= 0 || k <= 0) return -1;
    size_t mk = (size_t)m * k, kn4 = (size_t)k * n * 4, mn4 = (size_t)m * n * 4;
    double *Al = calloc(mk, sizeof(double)), *Bl = calloc(kn4, sizeof(double)), *D = malloc(sizeof(double) * mn4);
    if (!Al || !Bl || !D) {
        free(Al);
        free(Bl);
        free(D);
        return -1;
    }
    /* Bl: [k][4n], limb j of B[p][c] at column j*n + c */
    for (int p = 0; p < k; p++)
        for (int c = 0; c < n; c++) {
            uint64_t v = B[(size_t)p * ldb + c];
            for (int j = 0; j < 4; j++) Bl[(size_t)p * 4 * n + (size_t)j * n + c] = (double)((v >> (16 * j)) & 0xffff);
        }
    if (!accumulate)
        for (int i = 0; i < m; i++) memset(C + (size_t)i * ldc, 0, sizeof(uint64_t) * (size_t)n);
    for (int li = 0; li < 4; li++) {
        int nl = 4 - li; /* limbs of B that pair with limb li of A */
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) Al[(size_t)i * k + p] = (double)((A[(size_t)i * lda + p] >> (16 * li)) & 0xffff);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nl * n, k, 1.0, Al, k, Bl, 4 * n, 0.0, D, nl * n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < nl; j++) {
                const double *d = D + (size_t)i * nl * n + (size_t)j * n;
                uint64_t *c = C + (size_t)i * ldc;
                int sh = 16 * (li + j);
                for (int q = 0; q < n; q++) c[q] += (uint64_t)d[q] << sh;
            }
    }
    free(Al);
    free(Bl);
    free(D);
    return 0;
}

/* A small and signed: one dgemm of A against the four 16-bit limbs of B, exact while
 * k * 2^(a_bits + 16) < 2^53. */
static int gemm_small_a(int m, int n, int k, const uint64_t *A, int lda, int a_bits, const uint64_t *B, int ldb,
                        uint64_t *C, int ldc, int accumulate)
{
    if (a_bits < 1 || a_bits > 36 || (double)k * ldexp(1.0, a_bits + 16) >= ldexp(1.0, 53)) return -1;
    if (m <= 0 || n <= 0 || k <= 0) return -1;
    size_t mk = (size_t)m * k, kn4 = (size_t)k * n * 4, mn4 = (size_t)m * n * 4;
    double *Ad = calloc(mk, sizeof(double)), *Bl = calloc(kn4, sizeof(double)), *D = malloc(sizeof(double) * mn4);
    if (!Ad || !Bl || !D) {
        free(Ad);
        free(Bl);
        free(D);
        return -1;
    }
    for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++) Ad[(size_t)i * k + p] = (double)(int64_t)A[(size_t)i * lda + p];
    for (int p = 0; p < k; p++) {
        const uint64_t *b = B + (size_t)p * ldb;
        double *o = Bl + (size_t)p * 4 * n;
        for (int c = 0; c < n; c++) {
            uint64_t v = b[c];
            o[c] = (double)(v & 0xffff);
            o[n + c] = (double)((v >> 16) & 0xffff);
            o[2 * n + c] = (double)((v >> 32) & 0xffff);
            o[3 * n + c] = (double)(v >> 48);
        }
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, 4 * n, k, 1.0, Ad, k, Bl, 4 * n, 0.0, D, 4 * n);
    for (int i = 0; i < m; i++) {
        const double *d = D + (size_t)i * 4 * n;
        uint64_t *c = C + (size_t)i * ldc;
        for (int q = 0; q < n; q++) {
            uint64_t v = (uint64_t)(int64_t)d[q] + ((uint64_t)(int64_t)d[n + q] << 16) +
                         ((uint64_t)(int64_t)d[2 * n + q] << 32) + ((uint64_t)(int64_t)d[3 * n + q] << 48);
            c[q] = accumulate ? c[q] + v : v;
        }
    }
    free(Ad);
    free(Bl);
    free(D);
    return 0;
}

void pinas_ring_gemm_with(pinas_gemm_kind kind, int m, int n, int k, const uint64_t *A, int lda, int a_bits,
                          const uint64_t *B, int ldb, uint64_t *C, int ldc, int accumulate)
{
    if (kind == PINAS_GEMM_DGEMM_LIMBS && gemm_limbs(m, n, k, A, lda, B, ldb, C, ldc, accumulate) == 0) return;
    if (kind == PINAS_GEMM_DGEMM_SMALL_A && gemm_small_a(m, n, k, A, lda, a_bits, B, ldb, C, ldc, accumulate) == 0)
        return;
    gemm_int(m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

/* The kernels were compared with `pinas bench conv` (figures in the README): on this machine (AMD EPYC,
 * AVX-512DQ) the integer kernel reaches 18-40 GMAC/s on ResNet-18's conv shapes against 0.8-2.1 GMAC/s
 * for dgemm on 16-bit limbs with general operands and 2.2-5.8 GMAC/s with small weights (4 limb
 * products instead of 10), so it is used for both. Without AVX-512DQ the limb dgemm is used. */
void pinas_ring_gemm(int m, int n, int k, const uint64_t *A, int lda, const uint64_t *B, int ldb, uint64_t *C,
                     int ldc, int accumulate)
{
    if (have_avx512())
        gemm_int(m, n, k, A, lda, B, ldb, C, ldc, accumulate);
    else if (gemm_limbs(m, n, k, A, lda, B, ldb, C, ldc, accumulate) != 0)
        gemm_int(m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

void pinas_ring_gemm_small_a(int m, int n, int k, const uint64_t *A, int lda, int a_bits, const uint64_t *B, int ldb,
                             uint64_t *C, int ldc, int accumulate)
{
    if (have_avx512() || gemm_small_a(m, n, k, A, lda, a_bits, B, ldb, C, ldc, accumulate) != 0)
        gemm_int(m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

/* ------------------------------------------------------------------ on several threads */

/* Below this many multiply-adds a product runs on the calling thread alone. */
#define GEMM_PAR_MIN ((int64_t)1 << 18)

static void gemm_one(int small, int m, int n, int k, const uint64_t *A, int lda, int a_bits, const uint64_t *B, int ldb,
                     uint64_t *C, int ldc, int accumulate)
{
    if (small)
        pinas_ring_gemm_small_a(m, n, k, A, lda, a_bits, B, ldb, C, ldc, accumulate);
    else
        pinas_ring_gemm(m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

/* C split along its larger dimension into one block per thread (whole MR rows or NR columns), each
 * block the one-thread product of its rows of A or columns of B: every entry is computed by exactly
 * the same sequence of operations as without threads, so the result does not depend on the count. */
static void gemm_split(int threads, int small, int m, int n, int k, const uint64_t *A, int lda, int a_bits,
                       const uint64_t *B, int ldb, uint64_t *C, int ldc, int accumulate)
{
    int by_rows = m >= n, unit = by_rows ? MR : NR, dim = by_rows ? m : n, blocks = (dim + unit - 1) / unit;
    int t = threads < blocks ? threads : blocks;
    (void)have_avx512(); /* its cache is filled here, not raced for by the team */
    if (t <= 1 || (int64_t)m * n * k < GEMM_PAR_MIN) {
        gemm_one(small, m, n, k, A, lda, a_bits, B, ldb, C, ldc, accumulate);
        return;
    }
#pragma omp parallel for num_threads(t) schedule(static)
    for (int q = 0; q < t; q++) {
        int b0 = (int)((int64_t)blocks * q / t) * unit, b1 = (int)((int64_t)blocks * (q + 1) / t) * unit;
        if (b1 > dim) b1 = dim;
        if (b1 <= b0) continue;
        if (by_rows)
            gemm_one(small, b1 - b0, n, k, A + (size_t)b0 * lda, lda, a_bits, B, ldb, C + (size_t)b0 * ldc, ldc, accumulate);
        else
            gemm_one(small, m, b1 - b0, k, A, lda, a_bits, B + b0, ldb, C + b0, ldc, accumulate);
    }
}

void pinas_ring_gemm_mt(int threads, int m, int n, int k, const uint64_t *A, int lda, const uint64_t *B, int ldb,
                        uint64_t *C, int ldc, int accumulate)
{
    gemm_split(threads, 0, m, n, k, A, lda, 0, B, ldb, C, ldc, accumulate);
}

void pinas_ring_gemm_small_a_mt(int threads, int m, int n, int k, const uint64_t *A, int lda, int a_bits,
                                const uint64_t *B, int ldb, uint64_t *C, int ldc, int accumulate)
{
    gemm_split(threads, 1, m, n, k, A, lda, a_bits, B, ldb, C, ldc, accumulate);
}

double pinas_mpc_input_limit(int frac_bits, int products)
{
    return products ? ldexp(1.0, 44 - 2 * frac_bits) : ldexp(1.0, 62 - frac_bits);
}

pinas_status pinas_mpc_input_check(pinas_ctx *ctx, const float *x, int64_t n, int c, int h, int w, int frac_bits,
                                   int products)
{
    double lim = pinas_mpc_input_limit(frac_bits, products);
    int64_t chw = (int64_t)c * h * w;
    for (int64_t q = 0; q < n; q++) {
        if (isfinite(x[q]) && fabs(x[q]) <= lim) continue;
        int64_t b = q / chw, r = q % chw;
        char at[96];
        snprintf(at, sizeof at, "input x[%lld, %lld, %lld, %lld]", (long long)b, (long long)(r / ((int64_t)h * w)),
                 (long long)(r / w % h), (long long)(r % w));
        if (!isfinite(x[q]))
            return pinas_error(ctx, PINAS_EINVAL, "%s is %s: inputs must be finite numbers", at,
                               isnan(x[q]) ? "NaN" : x[q] > 0 ? "+Inf" : "-Inf");
        return pinas_error(ctx, PINAS_EINVAL,
                           "%s = %g is outside the range the fixed-point encoding supports at frac_bits %d (|x| <= %g; "
                           "larger inputs overflow or break the truncation after a layer): normalise the input, or "
                           "lower frac_bits",
                           at, (double)x[q], frac_bits, lim);
    }
    return PINAS_OK;
}
