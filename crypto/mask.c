/* The per-model weight-mask file: the seed the conv/linear masks A are expanded from, kept 0600 beside the prep files. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define MASK_MAGIC "PINASMSK"
#define MASK_FILE_BYTES 32 /* magic | u64 arch hash | seed[16] */

static pinas_status mask_read(pinas_ctx *ctx, pinas_mpc_mask *m)
{
    char *buf = NULL;
    size_t len = 0;
    pinas_status s = pinas_file_read(ctx, m->path, &buf, &len);
    if (s) return s;
    uint64_t h = 0;
    if (len == MASK_FILE_BYTES) memcpy(&h, buf + 8, 8);
    if (len != MASK_FILE_BYTES || memcmp(buf, MASK_MAGIC, 8) != 0 || h != m->arch_hash)
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: not a weight-mask file of this model", m->path);
    else
        memcpy(m->seed, buf + 16, 16);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return s;
}

static pinas_status mask_make(pinas_ctx *ctx, pinas_mpc_mask *m)
{
    uint8_t f[MASK_FILE_BYTES];
    memcpy(f, MASK_MAGIC, 8);
    memcpy(f + 8, &m->arch_hash, 8);
    pinas_status s = pinas_os_random(ctx, f + 16, 16);
    if (!s) s = pinas_file_write_atomic(ctx, m->path, f, sizeof f, 0600);
    if (!s) memcpy(m->seed, f + 16, 16);
    OPENSSL_cleanse(f, sizeof f);
    return s;
}

pinas_status pinas_mpc_mask_open(pinas_ctx *ctx, const char *dir, uint64_t arch_hash, int fresh, pinas_mpc_mask **out)
{
    *out = NULL;
    pinas_mpc_mask *m = calloc(1, sizeof *m);
    if (!m) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    m->arch_hash = arch_hash;
    m->path = pinas_strfmt("%s/%016llx.mask", dir, (unsigned long long)arch_hash);
    pinas_status s = !m->path ? pinas_error(ctx, PINAS_ENOMEM, "out of memory")
                     : (!fresh && pinas_path_exists(m->path)) ? mask_read(ctx, m)
                                                               : mask_make(ctx, m);
    if (s) {
        pinas_mpc_mask_free(m);
        return s;
    }
    *out = m;
    return PINAS_OK;
}

const char *pinas_mpc_mask_path(const pinas_mpc_mask *m) { return m->path; }

void pinas_mpc_mask_free(pinas_mpc_mask *m)
{
    if (!m) return;
    OPENSSL_cleanse(m->seed, sizeof m->seed);
    free(m->path);
    free(m);
}
