/* FSS: the distributed comparison function of Boyle et al. 2021 (eprint 2020/1392, Fig. 3) and the
 * sign-select gate (ReLU, DReLU, patch ReLU) built on one DCF key. */
#define _GNU_SOURCE
#include "pinas_mpc.h"

#include <openssl/crypto.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* Key layout (n levels, payload of m ring elements, nb = ceil(m/2) AES blocks of payload):
 *   s0[16] | tL mask u64 | tR mask u64 | n x (s_cw[16] | v_cw[8m]) | cw_final[8m]
 * The PRG G is fixed-key AES in Matyas-Meyer-Oseas mode, H(x) = AES_k(x) xor x, on the seed with a
 * tweak xored into its high word: tweak side*(nb+1) is the child seed (its low bit is the control
 * bit t), side*(nb+1)+1+j the j-th payload block; the final conversion uses tweaks 2(nb+1)+j. */

typedef struct { uint64_t lo, hi; } blk;

#define MAX_M 257 /* payload elements: a 16x16 patch plus one */
#define MAX_NB ((MAX_M + 1) / 2)

static const uint8_t fixed_key[16] = {0x70, 0x69, 0x6e, 0x61, 0x73, 0x2d, 0x64, 0x63,
                                      0x66, 0x2d, 0x66, 0x69, 0x78, 0x65, 0x64, 0x31}; /* "pinas-dcf-fixed1" */

static int nblocks(int m) { return (m + 1) / 2; }

size_t pinas_dcf_key_size(int n, int m) { return 32 + (size_t)n * (16 + 8 * (size_t)m) + 8 * (size_t)m; }

uint64_t pinas_dcf_eval_aes_blocks(int n, int m) { return (uint64_t)n * (1 + nblocks(m)) + nblocks(m); }

uint64_t pinas_dcf_gen_aes_blocks(int n, int m) { return 2 * (2 * (uint64_t)n * (1 + nblocks(m)) + nblocks(m)); }

uint64_t pinas_sign_gen_aes_blocks(int cmp_bits, int k) { return pinas_dcf_gen_aes_blocks(cmp_bits - 1, k + 1); }
uint64_t pinas_sign_eval_aes_blocks(int cmp_bits, int k) { return pinas_dcf_eval_aes_blocks(cmp_bits - 1, k + 1); }

/* The fixed-key hash runs on AES-NI directly: it is called on a few blocks at a time in key
 * generation, where the EVP call overhead would dominate. (The CTR-mode PRG in prg.c uses EVP.) */
typedef struct { __m128i rk[11]; } aes_key;

#define EXPAND_STEP(i, rcon)                                                    \
    do {                                                                        \
        __m128i t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k, rcon), 0xff); \
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                             \
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                             \
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                             \
        k = _mm_xor_si128(k, t);                                                \
        ek->rk[i] = k;                                                          \
    } while (0)

void pinas_aes128_expand(aes_key *ek, const uint8_t key[16]);
void pinas_aes128_expand(aes_key *ek, const uint8_t key[16])
{
    __m128i k = _mm_loadu_si128((const __m128i *)(const void *)key);
    ek->rk[0] = k;
    EXPAND_STEP(1, 0x01);
    EXPAND_STEP(2, 0x02);
    EXPAND_STEP(3, 0x04);
    EXPAND_STEP(4, 0x08);
    EXPAND_STEP(5, 0x10);
    EXPAND_STEP(6, 0x20);
    EXPAND_STEP(7, 0x40);
    EXPAND_STEP(8, 0x80);
    EXPAND_STEP(9, 0x1b);
    EXPAND_STEP(10, 0x36);
}

/* VAES (AVX-512): 4 blocks per instruction, 4 registers interleaved. Returns the blocks done. */
__attribute__((target("avx512f,vaes"))) static size_t aes_vaes(const aes_key *ek, const void *in, void *out, size_t n)
{
    __m512i rk[11];
    for (int r = 0; r < 11; r++) rk[r] = _mm512_broadcast_i32x4(ek->rk[r]);
    const uint8_t *src = in;
    uint8_t *dst = out;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i b[4];
        for (int j = 0; j < 4; j++) b[j] = _mm512_xor_si512(_mm512_loadu_si512(src + (i + 4 * j) * 16), rk[0]);
        for (int r = 1; r < 10; r++)
            for (int j = 0; j < 4; j++) b[j] = _mm512_aesenc_epi128(b[j], rk[r]);
        for (int j = 0; j < 4; j++) _mm512_storeu_si512(dst + (i + 4 * j) * 16, _mm512_aesenclast_epi128(b[j], rk[10]));
    }
    return i;
}

static int have_vaes(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vaes");
    }
    return cached;
}

/* out[i] = AES_k(in[i]), 8 blocks interleaved to fill the AES pipeline (VAES first where present). */
void pinas_aes128_ecb(const aes_key *ek, const void *in, void *out, size_t n);
void pinas_aes128_ecb(const aes_key *ek, const void *in, void *out, size_t n)
{
    const __m128i *src = in;
    __m128i *dst = out;
    size_t i = n >= 16 && have_vaes() ? aes_vaes(ek, in, out, n) : 0;
    for (; i + 8 <= n; i += 8) {
        __m128i b[8];
        for (int j = 0; j < 8; j++) b[j] = _mm_xor_si128(_mm_loadu_si128(src + i + j), ek->rk[0]);
        for (int r = 1; r < 10; r++)
            for (int j = 0; j < 8; j++) b[j] = _mm_aesenc_si128(b[j], ek->rk[r]);
        for (int j = 0; j < 8; j++) _mm_storeu_si128(dst + i + j, _mm_aesenclast_si128(b[j], ek->rk[10]));
    }
    for (; i < n; i++) {
        __m128i b = _mm_xor_si128(_mm_loadu_si128(src + i), ek->rk[0]);
        for (int r = 1; r < 10; r++) b = _mm_aesenc_si128(b, ek->rk[r]);
        _mm_storeu_si128(dst + i, _mm_aesenclast_si128(b, ek->rk[10]));
    }
}

static const aes_key *fixed_aes(void)
{
    static aes_key k;
    static int ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) { /* idempotent: racing threads write the same value */
        aes_key t;
        pinas_aes128_expand(&t, fixed_key);
        k = t;
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return &k;
}

/* out[i] = AES(in[i]) xor in[i] */
static void mmo(const aes_key *e, const blk *in, blk *out, size_t n)
{
    pinas_aes128_ecb(e, in, out, n);
    for (size_t i = 0; i < n; i++) {
        out[i].lo ^= in[i].lo;
        out[i].hi ^= in[i].hi;
    }
}

static void convert_final(const aes_key *e, blk s, int m, uint64_t *v)
{
    int nb = nblocks(m);
    blk in[MAX_NB], out[MAX_NB];
    for (int j = 0; j < nb; j++) {
        in[j] = s;
        in[j].hi ^= (uint64_t)(2 * (nb + 1) + j);
    }
    mmo(e, in, out, (size_t)nb);
    memcpy(v, out, 8 * (size_t)m);
}

/* Key generation from two given root seeds (low bit cleared here). */
static void dcf_gen_seeded(const blk seeds[2], int n, int m, uint64_t alpha, const uint64_t *beta, uint8_t *k0,
                           uint8_t *k1)
{
    const aes_key *e = fixed_aes();
    int nb = nblocks(m), per = 1 + nb;
    blk s[2] = {seeds[0], seeds[1]};
    s[0].lo &= ~1ULL;
    s[1].lo &= ~1ULL;
    int t[2] = {0, 1};
    uint64_t V[MAX_M] = {0}, vcw[MAX_M];
    memcpy(k0, &s[0], 16);
    memcpy(k1, &s[1], 16);
    uint64_t tLm = 0, tRm = 0;
    size_t rec = 16 + 8 * (size_t)m;
    blk in[4 * (MAX_NB + 1)], ob[4 * (MAX_NB + 1)]; /* [party][side][per] */
    for (int i = 0; i < n; i++) {
        int a = (int)((alpha >> (n - 1 - i)) & 1);
        for (int b = 0; b < 2; b++)
            for (int side = 0; side < 2; side++)
                for (int j = 0; j < per; j++) {
                    blk *p = &in[(b * 2 + side) * per + j];
                    *p = s[b];
                    p->hi ^= (uint64_t)(side * (nb + 1) + j);
                }
        mmo(e, in, ob, (size_t)4 * per);
        blk cs[2][2];
        int ct[2][2];
        const uint64_t *vv[2][2];
        for (int b = 0; b < 2; b++)
            for (int side = 0; side < 2; side++) {
                blk *o = &ob[(b * 2 + side) * per];
                ct[b][side] = (int)(o[0].lo & 1);
                cs[b][side] = o[0];
                cs[b][side].lo &= ~1ULL;
                vv[b][side] = (const uint64_t *)(const void *)(o + 1);
            }
        int keep = a, lose = 1 - a;
        blk scw = {cs[0][lose].lo ^ cs[1][lose].lo, cs[0][lose].hi ^ cs[1][lose].hi};
        uint64_t sign = t[1] ? (uint64_t)-1 : 1;
        for (int j = 0; j < m; j++) {
            vcw[j] = sign * (vv[1][lose][j] - vv[0][lose][j] - V[j]);
            if (a) vcw[j] += sign * beta[j]; /* the lost (left) subtree lies entirely below alpha */
            V[j] = V[j] - vv[1][keep][j] + vv[0][keep][j] + sign * vcw[j];
        }
        int tLcw = ct[0][0] ^ ct[1][0] ^ a ^ 1, tRcw = ct[0][1] ^ ct[1][1] ^ a;
        tLm |= (uint64_t)tLcw << i;
        tRm |= (uint64_t)tRcw << i;
        uint8_t *r0 = k0 + 32 + (size_t)i * rec, *r1 = k1 + 32 + (size_t)i * rec;
        memcpy(r0, &scw, 16);
        memcpy(r1, &scw, 16);
        memcpy(r0 + 16, vcw, 8 * (size_t)m);
        memcpy(r1 + 16, vcw, 8 * (size_t)m);
        int tkcw = a ? tRcw : tLcw;
        for (int b = 0; b < 2; b++) {
            blk ns = cs[b][keep];
            if (t[b]) {
                ns.lo ^= scw.lo;
                ns.hi ^= scw.hi;
            }
            t[b] = ct[b][keep] ^ (t[b] & tkcw);
            s[b] = ns;
        }
    }
    memcpy(k0 + 16, &tLm, 8);
    memcpy(k1 + 16, &tLm, 8);
    memcpy(k0 + 24, &tRm, 8);
    memcpy(k1 + 24, &tRm, 8);
    uint64_t c0[MAX_M + 1], c1[MAX_M + 1], fin[MAX_M];
    convert_final(e, s[0], m, c0);
    convert_final(e, s[1], m, c1);
    uint64_t sign = t[1] ? (uint64_t)-1 : 1;
    for (int j = 0; j < m; j++) fin[j] = sign * (c1[j] - c0[j] - V[j]);
    memcpy(k0 + 32 + (size_t)n * rec, fin, 8 * (size_t)m);
    memcpy(k1 + 32 + (size_t)n * rec, fin, 8 * (size_t)m);
    OPENSSL_cleanse(s, sizeof s);
    OPENSSL_cleanse(V, 8 * (size_t)m);
    OPENSSL_cleanse(ob, sizeof(blk) * 4 * (size_t)per);
}

void pinas_dcf_gen(pinas_prg *prg, int n, int m, uint64_t alpha, const uint64_t *beta, uint8_t *k0, uint8_t *k1)
{
    blk s[2];
    pinas_prg_bytes(prg, s, sizeof s);
    dcf_gen_seeded(s, n, m, alpha, beta, k0, k1);
    OPENSSL_cleanse(s, sizeof s);
}

#define CHUNK 64

/* The ReLU case (payload of 2 ring elements, one AES block): the same algorithm on 128-bit registers,
 * without the generic loops; this is the hot loop of every ReLU and maxpool. */
static uint64_t dcf_eval_m2(int b, int m, int n, const uint8_t *keys, size_t stride, size_t count, const uint64_t *xs,
                            uint64_t *out, size_t out_stride)
{
    const aes_key *e = fixed_aes();
    const size_t rec = 16 + 8 * (size_t)m; /* m = 1 (DReLU) or 2 (ReLU): one payload block either way */
    __m128i *in = aligned_alloc(64, sizeof(__m128i) * CHUNK * 2), *ob = aligned_alloc(64, sizeof(__m128i) * CHUNK * 2);
    __m128i s[CHUNK], V[CHUNK];
    uint64_t t[CHUNK], aes = 0;
    const __m128i tw[2][2] = {{_mm_set_epi64x(0, 0), _mm_set_epi64x(1, 0)}, {_mm_set_epi64x(2, 0), _mm_set_epi64x(3, 0)}};
    const __m128i clear_lsb = _mm_set_epi64x(-1, ~1LL), lsb = _mm_set_epi64x(0, 1);
    for (size_t c0 = 0; c0 < count; c0 += CHUNK) {
        size_t cn = count - c0 < CHUNK ? count - c0 : CHUNK;
        for (size_t c = 0; c < cn; c++) {
            s[c] = _mm_loadu_si128((const __m128i *)(const void *)(keys + (c0 + c) * stride));
            t[c] = (uint64_t)b;
            V[c] = _mm_setzero_si128();
        }
        for (int i = 0; i < n; i++) {
            int shift = n - 1 - i;
            for (size_t c = 0; c < cn; c++) {
                int side = (int)((xs[c0 + c] >> shift) & 1);
                in[2 * c] = _mm_xor_si128(s[c], tw[side][0]);
                in[2 * c + 1] = _mm_xor_si128(s[c], tw[side][1]);
                /* two levels ahead: see dcf_eval_strided (4.0x faster than none on 1M keys) */
                __builtin_prefetch(keys + (c0 + c) * stride + 32 + (size_t)(i + 2) * rec);
            }
            pinas_aes128_ecb(e, in, ob, cn * 2);
            aes += cn * 2;
            for (size_t c = 0; c < cn; c++) {
                const uint8_t *key = keys + (c0 + c) * stride;
                int side = (int)((xs[c0 + c] >> shift) & 1);
                __m128i o0 = _mm_xor_si128(ob[2 * c], in[2 * c]), o1 = _mm_xor_si128(ob[2 * c + 1], in[2 * c + 1]);
                __m128i tm = _mm_set1_epi64x(-(long long)t[c]);
                const __m128i *r = (const __m128i *)(const void *)(key + 32 + (size_t)i * rec);
                __m128i vraw = m == 2 ? _mm_loadu_si128(r + 1) : _mm_loadl_epi64(r + 1);
                __m128i scw = _mm_and_si128(_mm_loadu_si128(r), tm), vcw = _mm_and_si128(vraw, tm);
                uint64_t tbits;
                memcpy(&tbits, key + 16 + 8 * side, 8);
                uint64_t nt = ((uint64_t)_mm_cvtsi128_si64(o0) & 1) ^ (t[c] & (tbits >> i) & 1);
                s[c] = _mm_and_si128(_mm_xor_si128(o0, scw), clear_lsb);
                __m128i add = _mm_add_epi64(o1, vcw);
                V[c] = b ? _mm_sub_epi64(V[c], add) : _mm_add_epi64(V[c], add);
                t[c] = nt;
            }
        }
        for (size_t c = 0; c < cn; c++) in[c] = _mm_xor_si128(s[c], tw[1][1]); /* final tweak 2(nb+1) = 4 */
        for (size_t c = 0; c < cn; c++) in[c] = _mm_xor_si128(in[c], _mm_set_epi64x(3 ^ 4, 0));
        pinas_aes128_ecb(e, in, ob, cn);
        aes += cn;
        for (size_t c = 0; c < cn; c++) {
            const uint8_t *fin = keys + (c0 + c) * stride + 32 + (size_t)n * rec;
            __m128i cv = _mm_xor_si128(ob[c], in[c]);
            const __m128i *fp = (const __m128i *)(const void *)fin;
            __m128i f = _mm_and_si128(m == 2 ? _mm_loadu_si128(fp) : _mm_loadl_epi64(fp), _mm_set1_epi64x(-(long long)t[c]));
            __m128i add = _mm_add_epi64(cv, f);
            __m128i v = b ? _mm_sub_epi64(V[c], add) : _mm_add_epi64(V[c], add);
            if (m == 2)
                _mm_storeu_si128((__m128i *)(void *)(out + (c0 + c) * out_stride), v);
            else
                _mm_storel_epi64((__m128i *)(void *)(out + (c0 + c) * out_stride), v);
        }
    }
    (void)lsb;
    OPENSSL_cleanse(s, sizeof s);
    free(in);
    free(ob);
    return aes;
}

/* Batched evaluation, level by level over a chunk of keys so that each AES call covers many blocks
 * (OpenSSL pipelines them). Keys at `keys + i*stride`. Returns the AES blocks evaluated. */
static uint64_t dcf_eval_strided(int b, int n, int m, const uint8_t *keys, size_t stride, size_t count,
                                 const uint64_t *xs, uint64_t *out, size_t out_stride)
{
    if (m <= 2) return dcf_eval_m2(b, m, n, keys, stride, count, xs, out, out_stride);
    const aes_key *e = fixed_aes();
    int nb = nblocks(m), per = 1 + nb;
    size_t rec = 16 + 8 * (size_t)m;
    blk *in = malloc(sizeof(blk) * CHUNK * per), *ob = malloc(sizeof(blk) * CHUNK * per);
    blk *s = malloc(sizeof(blk) * CHUNK);
    uint8_t *t = malloc(CHUNK);
    uint64_t aes = 0;
    uint64_t sign = b ? (uint64_t)-1 : 1;
    for (size_t c0 = 0; c0 < count; c0 += CHUNK) {
        size_t cn = count - c0 < CHUNK ? count - c0 : CHUNK;
        for (size_t c = 0; c < cn; c++) {
            memcpy(&s[c], keys + (c0 + c) * stride, 16);
            t[c] = (uint8_t)b;
            uint64_t *V = out + (c0 + c) * out_stride;
            for (int j = 0; j < m; j++) V[j] = 0;
        }
        for (int i = 0; i < n; i++) {
            int shift = n - 1 - i;
            for (size_t c = 0; c < cn; c++) {
                int side = (int)((xs[c0 + c] >> shift) & 1);
                blk *p = in + c * per;
                uint64_t tw = (uint64_t)(side * (nb + 1));
                /* the records are a key-size apart: the hardware prefetcher does not follow, so
                 * fetch the record two levels ahead (one level ahead leaves the loads exposed) */
                __builtin_prefetch(keys + (c0 + c) * stride + 32 + (size_t)(i + 2) * rec);
                __builtin_prefetch(keys + (c0 + c) * stride + 32 + (size_t)(i + 2) * rec + rec - 1);
                for (int j = 0; j < per; j++) {
                    p[j].lo = s[c].lo;
                    p[j].hi = s[c].hi ^ (tw + (uint64_t)j);
                }
            }
            pinas_aes128_ecb(e, in, ob, cn * per);
            aes += cn * per;
            for (size_t c = 0; c < cn; c++) {
                const uint8_t *key = keys + (c0 + c) * stride;
                int side = (int)((xs[c0 + c] >> shift) & 1);
                const blk *o = ob + c * per, *p = in + c * per;
                uint64_t tmask = (uint64_t)0 - t[c];
                const uint64_t *r = (const uint64_t *)(const void *)(key + 32 + (size_t)i * rec);
                const uint64_t *hdr = (const uint64_t *)(const void *)(key + 16);
                uint64_t lo = o[0].lo ^ p[0].lo, hi = o[0].hi ^ p[0].hi;
                uint64_t nt = (lo & 1) ^ (t[c] & (hdr[side] >> i) & 1);
                s[c].lo = (lo ^ (r[0] & tmask)) & ~1ULL;
                s[c].hi = hi ^ (r[1] & tmask);
                uint64_t *V = out + (c0 + c) * out_stride;
                const uint64_t *vo = (const uint64_t *)(const void *)(o + 1), *vi = (const uint64_t *)(const void *)(p + 1);
                for (int j = 0; j < m; j++) V[j] += sign * ((vo[j] ^ vi[j]) + (r[2 + j] & tmask));
                t[c] = (uint8_t)nt;
            }
        }
        /* final conversion */
        for (size_t c = 0; c < cn; c++)
            for (int j = 0; j < nb; j++) {
                in[c * nb + j] = s[c];
                in[c * nb + j].hi ^= (uint64_t)(2 * (nb + 1) + j);
            }
        mmo(e, in, ob, cn * nb);
        aes += cn * nb;
        for (size_t c = 0; c < cn; c++) {
            const uint8_t *fin = keys + (c0 + c) * stride + 32 + (size_t)n * rec;
            const uint64_t *cv = (const uint64_t *)(void *)(ob + c * nb);
            uint64_t *V = out + (c0 + c) * out_stride;
            for (int j = 0; j < m; j++) {
                uint64_t f;
                memcpy(&f, fin + 8 * j, 8);
                V[j] += sign * (cv[j] + (t[c] ? f : 0));
            }
        }
    }
    OPENSSL_cleanse(s, sizeof(blk) * CHUNK);
    free(in);
    free(ob);
    free(s);
    free(t);
    return aes;
}

uint64_t pinas_dcf_eval(int b, int n, int m, const uint8_t *keys, size_t count, const uint64_t *xs, uint64_t *out)
{
    return dcf_eval_strided(b, n, m, keys, pinas_dcf_key_size(n, m), count, xs, out, (size_t)m);
}

/* ------------------------------------------------------------------ sign-select gate */

/* For p̂ = p + r_p: MSB(p) = MSB(p̂) xor MSB(r_p) xor borrow, borrow = 1[p̂_low < r_low] on the 63 low bits
 * (here: on bits 62 .. 64-cmp_bits, ignoring the rest). d = 1 - MSB(p) = c xor t with public
 * c = 1 - MSB(p̂) and secret t = MSB(r_p) xor borrow = r_h + (1 - 2 r_h) borrow. The DCF payload
 * (1-2r_h)(1, r_1..r_k) and constant shares of r_h (1, r_1..r_k) give shares of t and t·r_j; then
 * d = t (c = 0) or 1 - t (c = 1), and d·r_j = t·r_j or r_j - t·r_j. Gate key: DCF key | const[m]. */

size_t pinas_sign_key_size(int cmp_bits, int k) { return pinas_dcf_key_size(cmp_bits - 1, k + 1) + 8 * (size_t)(k + 1); }

static uint64_t low_bits(uint64_t v, int cmp_bits)
{
    int n = cmp_bits - 1;
    return (v >> (64 - cmp_bits)) & ((1ULL << n) - 1);
}

/* Randomness per gate: two root seeds (32 bytes) and m constant shares (8m bytes). */
static void sign_gen_one(const uint8_t *rnd, int cmp_bits, int k, uint64_t r_p, const uint64_t *r, uint8_t *k0,
                         uint8_t *k1)
{
    int m = k + 1, n = cmp_bits - 1;
    uint64_t beta[MAX_M], cst[MAX_M];
    uint64_t rh = r_p >> 63, sgn = rh ? (uint64_t)-1 : 1;
    beta[0] = sgn;
    cst[0] = rh;
    for (int j = 0; j < k; j++) {
        beta[1 + j] = sgn * r[j];
        cst[1 + j] = rh * r[j];
    }
    blk seeds[2];
    memcpy(seeds, rnd, 32);
    dcf_gen_seeded(seeds, n, m, low_bits(r_p, cmp_bits), beta, k0, k1);
    size_t ds = pinas_dcf_key_size(n, m);
    for (int j = 0; j < m; j++) {
        uint64_t sh, other;
        memcpy(&sh, rnd + 32 + 8 * j, 8);
        other = cst[j] - sh;
        memcpy(k0 + ds + 8 * j, &sh, 8);
        memcpy(k1 + ds + 8 * j, &other, 8);
    }
    OPENSSL_cleanse(cst, sizeof cst);
    OPENSSL_cleanse(seeds, sizeof seeds);
}

void pinas_sign_gen(pinas_prg *prg, int cmp_bits, int k, uint64_t r_p, const uint64_t *r, uint8_t *k0, uint8_t *k1)
{
    pinas_sign_gen_batch(prg, cmp_bits, k, 1, &r_p, r, k0, k1);
}

void pinas_sign_gen_batch(pinas_prg *prg, int cmp_bits, int k, size_t count, const uint64_t *r_p, const uint64_t *r,
                          uint8_t *k0, uint8_t *k1)
{
    size_t per = 32 + 8 * (size_t)(k + 1), ks = pinas_sign_key_size(cmp_bits, k);
    size_t step = 4096;
    uint8_t *rnd = malloc(per * step);
    if (!rnd) { /* out of memory: draw per gate; slower, same keys' distribution */
        uint8_t one[32 + 8 * MAX_M];
        for (size_t i = 0; i < count; i++) {
            pinas_prg_bytes(prg, one, per);
            sign_gen_one(one, cmp_bits, k, r_p[i], r + i * (size_t)k, k0 + i * ks, k1 + i * ks);
        }
        return;
    }
    for (size_t i0 = 0; i0 < count; i0 += step) {
        size_t cn = count - i0 < step ? count - i0 : step;
        pinas_prg_bytes(prg, rnd, per * cn);
        for (size_t i = 0; i < cn; i++)
            sign_gen_one(rnd + i * per, cmp_bits, k, r_p[i0 + i], r + (i0 + i) * (size_t)k, k0 + (i0 + i) * ks,
                         k1 + (i0 + i) * ks);
    }
    OPENSSL_cleanse(rnd, per * step);
    free(rnd);
}

/* PRG blocks pinas_sign_gen_batch draws for `count` gates. */
uint64_t pinas_sign_gen_prg_blocks(int k, size_t count)
{
    size_t per = 32 + 8 * (size_t)(k + 1), step = 4096;
    uint64_t blocks = 0;
    for (size_t i0 = 0; i0 < count; i0 += step) {
        size_t cn = count - i0 < step ? count - i0 : step;
        blocks += (per * cn + 15) / 16;
    }
    return blocks;
}

uint64_t pinas_sign_eval(int b, int cmp_bits, int k, const uint8_t *keys, size_t count, const uint64_t *phat,
                         const uint64_t *rsh, uint64_t *out)
{
    int m = k + 1, n = cmp_bits - 1;
    size_t ks = pinas_sign_key_size(cmp_bits, k), ds = pinas_dcf_key_size(n, m);
    uint64_t *xs = calloc(count ? count : 1, sizeof(uint64_t));
    for (size_t i = 0; i < count; i++) xs[i] = low_bits(phat[i], cmp_bits);
    uint64_t aes = dcf_eval_strided(b, n, m, keys, ks, count, xs, out, (size_t)m);
    free(xs);
    for (size_t i = 0; i < count; i++) {
        uint64_t *o = out + i * m;
        const uint8_t *cst = keys + i * ks + ds;
        for (int j = 0; j < m; j++) {
            uint64_t c;
            memcpy(&c, cst + 8 * j, 8);
            o[j] += c;
        }
        if (!(phat[i] >> 63)) { /* c = 1 - MSB(p̂) = 1: d = 1 - t, d·r_j = r_j - t·r_j */
            o[0] = (b == 0 ? 1 : 0) - o[0];
            for (int j = 0; j < k; j++) o[1 + j] = rsh[i * k + j] - o[1 + j];
        }
    }
    return aes;
}
