/* FSS: DReLU keys -- a distributed comparison function with 1-bit outputs and early termination
 * (Boyle et al. 2021, eprint 2020/1392, Fig. 3, over Z_2; the last 7 levels folded into one block as
 * in SIGMA, Gupta et al. 2023) -- giving each party an XOR share of DReLU(p) xor t for a dealer bit t. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <openssl/crypto.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* Key layout (L = cmp_bits - 1 - NU tree levels over the top bits of the n = cmp_bits - 1 compared bits):
 *   s0[16] | tL cw mask u64 | tR cw mask u64 | v cw mask u64 (bit 63: the party's offset bit c_b) |
 *   L x s_cw[16] | cw_final[16]
 * Bit i of a mask belongs to level i. The PRG G is fixed-key AES in Matyas-Meyer-Oseas mode,
 * H(x) = AES_k(x) xor x, with a tweak xored into the seed's high word: tweak `side` (0, 1) gives that
 * child: its bit 0 is the control bit t, bit 1 the value bit v, the rest (bits 0-1 cleared) the child
 * seed (126 bits); tweak 2 at the last level gives the 128-bit leaf block whose bit j covers the
 * leaf j of the last NU = 7 input bits. */

#define NU 7
#define K_TL 16
#define K_TR 24
#define K_V 32
#define K_LV 40
#define GEN_STEP 4096  /* gates per randomness chunk of key generation (one seed from the caller's PRG) */
#define EVAL_STEP 1024 /* gates per parallel task of evaluation */
#define CHUNK 64       /* gates evaluated level by level together, so that AES calls cover many blocks */

static const uint8_t fixed_key[16] = {0x70, 0x69, 0x6e, 0x61, 0x73, 0x2d, 0x64, 0x63,
                                      0x66, 0x2d, 0x66, 0x69, 0x78, 0x65, 0x64, 0x31}; /* "pinas-dcf-fixed1" */

static int levels(int cmp_bits) { return cmp_bits - 1 - NU; }

size_t pinas_drelu_key_size(int cmp_bits) { return K_LV + 16 * (size_t)levels(cmp_bits) + 16; }

uint64_t pinas_drelu_eval_aes_blocks(int cmp_bits) { return (uint64_t)levels(cmp_bits) + 1; }

uint64_t pinas_drelu_gen_prg_blocks(size_t count) { return (count + GEN_STEP - 1) / GEN_STEP; }

/* per gate: 2 blocks of the chunk PRG (root seeds), 4 per level (both parties, both sides), 2 leaves */
uint64_t pinas_drelu_gen_aes_blocks(int cmp_bits, size_t count)
{
    return (uint64_t)count * (2 + 4 * (uint64_t)levels(cmp_bits) + 2);
}

/* The fixed-key hash runs on AES-NI directly: it is called on a few blocks at a time in key
 * generation, where the EVP call overhead would dominate. (The CTR-mode PRG in prg.c uses EVP.) */
#define EXPAND_STEP(i, rcon)                                                    \
    do {                                                                        \
        __m128i t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k, rcon), 0xff); \
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                             \
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                             \
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                             \
        k = _mm_xor_si128(k, t);                                                \
        ek->rk[i] = k;                                                          \
    } while (0)

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


static const __m128i *key_lv(const uint8_t *key, int i) { return (const __m128i *)(const void *)(key + K_LV + 16 * (size_t)i); }

/* The compared bits of v: window [high - cmp_bits, high); the sign is bit high - 1, the DCF input the
 * cmp_bits - 1 bits below it. */
static uint64_t win_low(uint64_t v, int cmp_bits, int high)
{
    return (v >> (high - cmp_bits)) & ((1ULL << (cmp_bits - 1)) - 1);
}
static int win_msb(uint64_t v, int high) { return (int)((v >> (high - 1)) & 1); }

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static int leaf_bit(__m128i w, unsigned j)
{
    uint64_t part = (uint64_t)_mm_cvtsi128_si64(j < 64 ? w : _mm_unpackhi_epi64(w, w));
    return (int)((part >> (j & 63)) & 1);
}

/* Gates [0, cn) of one generation group (cn <= CHUNK): rnd holds 32 random bytes per gate (two root
 * seeds; bit 0 of the first word is t, of the third the offset bit c_0). alpha: the DCF points;
 * rh: MSB of each mask. Writes both keys and t. */
static void gen_group(const aes_key *e, int cmp_bits, size_t cn, const uint8_t *rnd, const uint64_t *alpha,
                      const uint8_t *rh, uint8_t *k0, uint8_t *k1, size_t ks, uint8_t *tout)
{
    const int L = levels(cmp_bits), n = cmp_bits - 1;
    const __m128i clear2 = _mm_set_epi64x(-1, ~3LL), tw1 = _mm_set_epi64x(1, 0), tw2 = _mm_set_epi64x(2, 0);
    __m128i s[2][CHUNK], in[4 * CHUNK], ob[4 * CHUNK];
    uint8_t t[2][CHUNK], vd[CHUNK];
    uint64_t tl[CHUNK], tr[CHUNK], vm[CHUNK];
    for (size_t c = 0; c < cn; c++) {
        uint64_t w0 = get64(rnd + 32 * c), w2 = get64(rnd + 32 * c + 16);
        tout[c] = (uint8_t)(w0 & 1);
        s[0][c] = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(rnd + 32 * c)), clear2);
        s[1][c] = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(rnd + 32 * c + 16)), clear2);
        t[0][c] = 0;
        t[1][c] = 1;
        vd[c] = 0;
        tl[c] = tr[c] = 0;
        uint64_t c0 = (w2 & 1), c1 = c0 ^ tout[c] ^ rh[c]; /* c_0 xor c_1 = t xor MSB(r) */
        vm[c] = c0 << 63 | c1 << 62;                        /* split below */
        _mm_storeu_si128((__m128i *)(void *)(k0 + c * ks), s[0][c]);
        _mm_storeu_si128((__m128i *)(void *)(k1 + c * ks), s[1][c]);
    }
    uint64_t vk[CHUNK];
    for (size_t c = 0; c < cn; c++) vk[c] = 0;
    for (int i = 0; i < L; i++) {
        for (size_t c = 0; c < cn; c++)
            for (int b = 0; b < 2; b++) {
                in[4 * c + 2 * b] = s[b][c];
                in[4 * c + 2 * b + 1] = _mm_xor_si128(s[b][c], tw1);
            }
        pinas_aes128_ecb(e, in, ob, 4 * cn);
        for (size_t c = 0; c < cn; c++) {
            int a = (int)((alpha[c] >> (n - 1 - i)) & 1), keep = a, lose = 1 - a;
            __m128i cs[2][2];
            int ct[2][2], cv[2][2];
            for (int b = 0; b < 2; b++)
                for (int side = 0; side < 2; side++) {
                    __m128i o = _mm_xor_si128(ob[4 * c + 2 * b + side], in[4 * c + 2 * b + side]);
                    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(o);
                    ct[b][side] = (int)(lo & 1);
                    cv[b][side] = (int)((lo >> 1) & 1);
                    cs[b][side] = _mm_and_si128(o, clear2);
                }
            __m128i scw = _mm_xor_si128(cs[0][lose], cs[1][lose]);
            int vcw = vd[c] ^ cv[0][lose] ^ cv[1][lose] ^ a; /* the lost subtree is below alpha iff a = 1 */
            vd[c] = (uint8_t)(vd[c] ^ cv[0][keep] ^ cv[1][keep] ^ vcw);
            int tlcw = ct[0][0] ^ ct[1][0] ^ a ^ 1, trcw = ct[0][1] ^ ct[1][1] ^ a, tkcw = a ? trcw : tlcw;
            tl[c] |= (uint64_t)tlcw << i;
            tr[c] |= (uint64_t)trcw << i;
            vk[c] |= (uint64_t)vcw << i;
            _mm_storeu_si128((__m128i *)(void *)(k0 + c * ks + K_LV + 16 * (size_t)i), scw);
            _mm_storeu_si128((__m128i *)(void *)(k1 + c * ks + K_LV + 16 * (size_t)i), scw);
            for (int b = 0; b < 2; b++) {
                s[b][c] = t[b][c] ? _mm_xor_si128(cs[b][keep], scw) : cs[b][keep];
                t[b][c] = (uint8_t)(ct[b][keep] ^ (t[b][c] & tkcw));
            }
        }
    }
    for (size_t c = 0; c < cn; c++)
        for (int b = 0; b < 2; b++) in[2 * c + b] = _mm_xor_si128(s[b][c], tw2);
    pinas_aes128_ecb(e, in, ob, 2 * cn);
    for (size_t c = 0; c < cn; c++) {
        /* on the path t_0 xor t_1 = 1: cw_final makes the two leaf blocks differ by 1[j < alpha_low] xor V */
        unsigned al = (unsigned)(alpha[c] & ((1u << NU) - 1));
        uint64_t lo = al >= 64 ? ~0ULL : (al ? (1ULL << al) - 1 : 0), hi = al > 64 ? (1ULL << (al - 64)) - 1 : 0;
        __m128i lt = _mm_set_epi64x((long long)hi, (long long)lo), vall = _mm_set1_epi64x(-(long long)vd[c]);
        __m128i l0 = _mm_xor_si128(ob[2 * c], in[2 * c]), l1 = _mm_xor_si128(ob[2 * c + 1], in[2 * c + 1]);
        __m128i cw = _mm_xor_si128(_mm_xor_si128(l0, l1), _mm_xor_si128(lt, vall));
        _mm_storeu_si128((__m128i *)(void *)(k0 + c * ks + K_LV + 16 * (size_t)L), cw);
        _mm_storeu_si128((__m128i *)(void *)(k1 + c * ks + K_LV + 16 * (size_t)L), cw);
        uint64_t v = vk[c];
        put64(k0 + c * ks + K_TL, tl[c]);
        put64(k1 + c * ks + K_TL, tl[c]);
        put64(k0 + c * ks + K_TR, tr[c]);
        put64(k1 + c * ks + K_TR, tr[c]);
        put64(k0 + c * ks + K_V, v | (vm[c] >> 63) << 63);
        put64(k1 + c * ks + K_V, v | ((vm[c] >> 62) & 1) << 63);
    }
    OPENSSL_cleanse(s, sizeof s);
    OPENSSL_cleanse(in, sizeof in);
    OPENSSL_cleanse(ob, sizeof ob);
    OPENSSL_cleanse(vm, sizeof vm);
}

/* One randomness chunk: expands its seed (AES-128-CTR keyed by it, 2 blocks per gate) and generates. */
static void gen_chunk(int cmp_bits, int high, const uint8_t seed[16], size_t cn, const uint64_t *r, uint8_t *k0,
                      uint8_t *k1, size_t ks, uint8_t *t)
{
    const aes_key *e = fixed_aes();
    aes_key ck;
    pinas_aes128_expand(&ck, seed);
    __m128i ctr[2 * CHUNK];
    uint8_t rnd[32 * CHUNK], rh[CHUNK];
    uint64_t alpha[CHUNK];
    for (size_t g0 = 0; g0 < cn; g0 += CHUNK) {
        size_t gn = cn - g0 < CHUNK ? cn - g0 : CHUNK;
        for (size_t j = 0; j < 2 * gn; j++) ctr[j] = _mm_set_epi64x(0, (long long)(2 * g0 + j));
        pinas_aes128_ecb(&ck, ctr, rnd, 2 * gn);
        for (size_t c = 0; c < gn; c++) {
            alpha[c] = win_low(r[g0 + c], cmp_bits, high);
            rh[c] = (uint8_t)win_msb(r[g0 + c], high);
        }
        gen_group(e, cmp_bits, gn, rnd, alpha, rh, k0 + g0 * ks, k1 + g0 * ks, ks, t + g0);
    }
    OPENSSL_cleanse(&ck, sizeof ck);
    OPENSSL_cleanse(rnd, sizeof rnd);
    OPENSSL_cleanse(alpha, sizeof alpha);
    OPENSSL_cleanse(rh, sizeof rh);
}

uint64_t pinas_drelu_gen(pinas_prg *prg, int cmp_bits, int cmp_high, size_t count, const uint64_t *r, uint8_t *k0,
                         uint8_t *k1, uint8_t *t, int threads)
{
    size_t nch = (count + GEN_STEP - 1) / GEN_STEP, ks = pinas_drelu_key_size(cmp_bits);
    int high = cmp_high ? cmp_high : 64;
    uint8_t stack_seeds[16 * 4], *seeds = nch <= 4 ? stack_seeds : malloc(16 * nch);
    if (!seeds) { /* out of memory: one chunk seed at a time, serially; the same keys */
        uint8_t one[16];
        for (size_t c = 0; c < nch; c++) {
            size_t c0 = c * GEN_STEP, cn = count - c0 < GEN_STEP ? count - c0 : GEN_STEP;
            pinas_prg_bytes(prg, one, 16);
            gen_chunk(cmp_bits, high, one, cn, r + c0, k0 + c0 * ks, k1 + c0 * ks, ks, t + c0);
        }
        OPENSSL_cleanse(one, sizeof one);
        return pinas_drelu_gen_aes_blocks(cmp_bits, count);
    }
    if (nch) pinas_prg_bytes(prg, seeds, 16 * nch);
    (void)threads;
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) schedule(dynamic, 1) if (nch > 1)
    for (size_t c = 0; c < nch; c++) {
        size_t c0 = c * GEN_STEP, cn = count - c0 < GEN_STEP ? count - c0 : GEN_STEP;
        gen_chunk(cmp_bits, high, seeds + 16 * c, cn, r + c0, k0 + c0 * ks, k1 + c0 * ks, ks, t + c0);
    }
    OPENSSL_cleanse(seeds, 16 * nch);
    if (seeds != stack_seeds) free(seeds);
    return pinas_drelu_gen_aes_blocks(cmp_bits, count);
}

/* Gates [0, cn) (cn <= CHUNK) of party b: out[c] = this party's bit of DReLU(p) xor t. */
static void eval_group(const aes_key *e, int b, int cmp_bits, int high, const uint8_t *keys, size_t ks, size_t cn,
                       const uint64_t *phat, uint8_t *out)
{
    const int L = levels(cmp_bits), n = cmp_bits - 1;
    const __m128i clear2 = _mm_set_epi64x(-1, ~3LL), tw2 = _mm_set_epi64x(2, 0);
    __m128i s[CHUNK], in[CHUNK], ob[CHUNK];
    uint64_t x[CHUNK];
    uint8_t t[CHUNK], v[CHUNK];
    for (size_t c = 0; c < cn; c++) {
        s[c] = _mm_loadu_si128((const __m128i *)(const void *)(keys + c * ks));
        x[c] = win_low(phat[c], cmp_bits, high);
        t[c] = (uint8_t)b;
        v[c] = 0;
    }
    for (int i = 0; i < L; i++) {
        int shift = n - 1 - i;
        for (size_t c = 0; c < cn; c++) {
            in[c] = _mm_xor_si128(s[c], _mm_set_epi64x((long long)((x[c] >> shift) & 1), 0));
            /* the records are a key apart: the hardware prefetcher does not follow; two levels ahead */
            __builtin_prefetch(keys + c * ks + K_LV + 16 * (size_t)(i + 2));
        }
        pinas_aes128_ecb(e, in, ob, cn);
        for (size_t c = 0; c < cn; c++) {
            const uint8_t *key = keys + c * ks;
            int side = (int)((x[c] >> shift) & 1);
            __m128i o = _mm_xor_si128(ob[c], in[c]);
            uint64_t lo = (uint64_t)_mm_cvtsi128_si64(o), tm = (uint64_t)0 - t[c];
            uint64_t tcw = get64(key + (side ? K_TR : K_TL)), vcw = get64(key + K_V);
            __m128i scw = _mm_and_si128(_mm_loadu_si128(key_lv(key, i)), _mm_set1_epi64x((long long)tm));
            v[c] = (uint8_t)(v[c] ^ ((lo >> 1) & 1) ^ (t[c] & (vcw >> i) & 1));
            s[c] = _mm_and_si128(_mm_xor_si128(o, scw), clear2);
            t[c] = (uint8_t)((lo & 1) ^ (t[c] & (tcw >> i) & 1));
        }
    }
    for (size_t c = 0; c < cn; c++) in[c] = _mm_xor_si128(s[c], tw2);
    pinas_aes128_ecb(e, in, ob, cn);
    for (size_t c = 0; c < cn; c++) {
        const uint8_t *key = keys + c * ks;
        __m128i cw = _mm_and_si128(_mm_loadu_si128(key_lv(key, L)), _mm_set1_epi64x(-(long long)t[c]));
        __m128i w = _mm_xor_si128(_mm_xor_si128(ob[c], in[c]), cw);
        int bit = v[c] ^ leaf_bit(w, (unsigned)(x[c] & ((1u << NU) - 1))) ^ (int)(get64(key + K_V) >> 63);
        if (b == 0) bit ^= 1 ^ win_msb(phat[c], high); /* the public part of DReLU: 1 - MSB(p̂) */
        out[c] = (uint8_t)bit;
    }
    OPENSSL_cleanse(s, sizeof s);
    OPENSSL_cleanse(v, sizeof v);
}

uint64_t pinas_drelu_eval(int b, int cmp_bits, int cmp_high, const uint8_t *keys, size_t count, const uint64_t *phat,
                          uint8_t *out, int threads)
{
    const aes_key *e = fixed_aes();
    size_t ks = pinas_drelu_key_size(cmp_bits), ntask = (count + EVAL_STEP - 1) / EVAL_STEP;
    int high = cmp_high ? cmp_high : 64;
    (void)threads;
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) schedule(dynamic, 1) if (ntask > 1)
    for (size_t q = 0; q < ntask; q++) {
        size_t q0 = q * EVAL_STEP, qn = count - q0 < EVAL_STEP ? count - q0 : EVAL_STEP;
        for (size_t c0 = q0; c0 < q0 + qn; c0 += CHUNK) {
            size_t cn = q0 + qn - c0 < CHUNK ? q0 + qn - c0 : CHUNK;
            eval_group(e, b, cmp_bits, high, keys + c0 * ks, ks, cn, phat + c0, out + c0);
        }
    }
    return (uint64_t)count * pinas_drelu_eval_aes_blocks(cmp_bits);
}

uint64_t pinas_select_share(int b, int bh, uint64_t xh, uint64_t r, uint64_t t, uint64_t tr)
{
    /* b·x with b = bh xor t = bh + t - 2 bh t and x = x̂ - r:
     * bh x̂ - bh r + (1 - 2 bh)(t x̂ - t r); party 0 adds the public bh x̂ */
    uint64_t m = (uint64_t)0 - (uint64_t)bh, y = t * xh - tr;
    y = (y ^ m) - m; /* (1 - 2 bh) y */
    return y - (r & m) + (b == 0 ? (xh & m) : 0);
}
