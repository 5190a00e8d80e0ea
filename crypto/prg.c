/* Pseudorandomness: AES-128 in counter mode through OpenSSL EVP (AES-NI), seeds from the OS. */
#define _GNU_SOURCE
#include "pinas_mpc.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct pinas_prg {
    EVP_CIPHER_CTX *ev;
    uint64_t blocks;
};

pinas_status pinas_os_random(pinas_ctx *ctx, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t got = getrandom(p, len, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return pinas_error(ctx, PINAS_EIO, "getrandom: %s", strerror(errno));
        }
        p += got;
        len -= (size_t)got;
    }
    return PINAS_OK;
}

pinas_status pinas_prg_create(pinas_ctx *ctx, const uint8_t seed[16], pinas_prg **out)
{
    *out = NULL;
    pinas_prg *g = calloc(1, sizeof *g);
    if (!g) return pinas_error(ctx, PINAS_ENOMEM, "out of memory (PRG)");
    uint8_t iv[16] = {0};
    g->ev = EVP_CIPHER_CTX_new();
    if (!g->ev || EVP_EncryptInit_ex(g->ev, EVP_aes_128_ctr(), NULL, seed, iv) != 1) {
        pinas_prg_free(g);
        return pinas_error(ctx, PINAS_EINTERNAL, "OpenSSL: cannot initialise AES-128-CTR");
    }
    *out = g;
    return PINAS_OK;
}

pinas_status pinas_prg_create_os(pinas_ctx *ctx, pinas_prg **out)
{
    uint8_t seed[16];
    pinas_status s = pinas_os_random(ctx, seed, sizeof seed);
    if (s == PINAS_OK) s = pinas_prg_create(ctx, seed, out);
    OPENSSL_cleanse(seed, sizeof seed);
    return s;
}

void pinas_prg_free(pinas_prg *g)
{
    if (!g) return;
    EVP_CIPHER_CTX_free(g->ev); /* clears the expanded key */
    free(g);
}

/* Every request consumes whole blocks (the tail of the last one is discarded), so the number of
 * AES blocks a request costs is ceil(len/16), independent of earlier requests: the cost model can
 * count per node. */
void pinas_prg_bytes(pinas_prg *g, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t whole = len & ~(size_t)15;
    int outl = 0;
    memset(p, 0, whole);
    for (size_t off = 0; off < whole;) {
        size_t step = whole - off > (1u << 30) ? (1u << 30) : whole - off;
        EVP_EncryptUpdate(g->ev, p + off, &outl, p + off, (int)step);
        off += step;
    }
    if (len > whole) {
        uint8_t tail[16] = {0};
        EVP_EncryptUpdate(g->ev, tail, &outl, tail, 16);
        memcpy(p + whole, tail, len - whole);
        OPENSSL_cleanse(tail, sizeof tail);
    }
    g->blocks += (len + 15) / 16;
}

uint64_t pinas_prg_blocks(const pinas_prg *g) { return g ? g->blocks : 0; }
