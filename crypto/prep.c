/* Preprocessing material: in-memory layout, and the 0600 file each party reads (authenticated by the dealer key). */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* File layout (little endian):
 *   "PINASPRE" | u32 version | u32 party | u64 arch hash | u8 session[16] | u32 batch | u32 frac_bits |
 *   u32 cmp_bits | u32 n_nodes | u64 weight-mask id | u8 weight-mask seed[16] (server only) | n_nodes x (u32 cmp_bits | u32 0 | u64 bytes | u64 dealer AES | u64 dealer MACs) |
 *   u64 data bytes | zero padding to 64 | data (each node's material, 64-byte aligned) |
 *   HMAC-SHA256(dealer key, all before) */

#define HDR_FIXED 80
#define NODE_REC 32

static uint64_t align64(uint64_t v) { return (v + 63) & ~(uint64_t)63; }

/* Material buffers run to gigabytes: 2 MB pages cut the page faults of filling them (and the TLB
 * misses of the DCF evaluation's key-strided reads). */
static uint8_t *big_alloc(size_t len)
{
    const size_t huge = 2u << 20;
    if (len < huge) return aligned_alloc(64, len ? align64(len) : 64);
    size_t l = (len + huge - 1) & ~(huge - 1);
    uint8_t *p = aligned_alloc(huge, l);
    if (p) madvise(p, l, MADV_HUGEPAGE);
    return p;
}

pinas_status prep_alloc(pinas_ctx *ctx, const pl_plan *pl, int party, pinas_mpc_prep **out)
{
    *out = NULL;
    pinas_mpc_prep *pp = calloc(1, sizeof *pp);
    if (!pp) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pp->party = party;
    pp->batch = pl->batch;
    pp->frac_bits = pl->frac_bits;
    pp->n_nodes = pl->n_nodes;
    pp->node_bits = calloc((size_t)pl->n_nodes, sizeof *pp->node_bits);
    pp->off = calloc((size_t)pl->n_nodes, sizeof *pp->off);
    pp->len = calloc((size_t)pl->n_nodes, sizeof *pp->len);
    pp->node_dealer = calloc((size_t)pl->n_nodes, sizeof *pp->node_dealer);
    if (!pp->node_bits || !pp->off || !pp->len || !pp->node_dealer) {
        pinas_mpc_prep_free(pp);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    uint64_t total = 0;
    for (int i = 0; i < pl->n_nodes; i++) {
        pp->node_bits[i] = pl->nodes[i].cmp_bits;
        pp->off[i] = total;
        pp->len[i] = pl_prep_bytes(&pl->nodes[i], party);
        total = align64(total + pp->len[i]);
    }
    pp->data_len = total;
    pp->data = big_alloc(total);
    if (!pp->data) {
        pinas_mpc_prep_free(pp);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory: preprocessing needs %.1f MB for party %d",
                           total / 1e6, party);
    }
    *out = pp;
    return PINAS_OK;
}

void pinas_mpc_prep_free(pinas_mpc_prep *pp)
{
    if (!pp) return;
    if (pp->data) OPENSSL_cleanse(pp->data, pp->data_len);
    free(pp->data);
    free(pp->node_bits);
    free(pp->off);
    free(pp->len);
    free(pp->node_dealer);
    OPENSSL_cleanse(pp->session, sizeof pp->session);
    OPENSSL_cleanse(pp->mask_seed, sizeof pp->mask_seed);
    free(pp);
}

int pinas_mpc_prep_party(const pinas_mpc_prep *pp) { return pp->party; }
uint64_t pinas_mpc_prep_mask_id(const pinas_mpc_prep *pp) { return pp->mask_id; }
int pinas_mpc_prep_batch(const pinas_mpc_prep *pp) { return pp->batch; }
uint64_t pinas_mpc_prep_hash(const pinas_mpc_prep *pp) { return pp->hash; }
uint64_t pinas_mpc_prep_node_bytes(const pinas_mpc_prep *pp, int node)
{
    return node >= 0 && node < pp->n_nodes ? pp->len[node] : 0;
}
uint64_t pinas_mpc_prep_total_bytes(const pinas_mpc_prep *pp)
{
    uint64_t t = 0;
    for (int i = 0; i < pp->n_nodes; i++) t += pp->len[i];
    return t;
}
void pinas_mpc_prep_params(const pinas_mpc_prep *pp, pinas_mpc_params *out)
{
    pinas_mpc_params_default(out);
    out->frac_bits = pp->frac_bits;
    out->cmp_bits = pp->cmp_bits;
    out->batch = pp->batch;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

size_t prep_header_len(int n_nodes) { return (size_t)align64(HDR_FIXED + (uint64_t)n_nodes * NODE_REC + 8); }

void prep_header_write(const pinas_mpc_prep *pp, uint8_t *h)
{
    size_t hl = prep_header_len(pp->n_nodes);
    memset(h, 0, hl);
    memcpy(h, PINAS_MPC_PREP_MAGIC, 8);
    put32(h + 8, PINAS_MPC_PREP_VERSION);
    put32(h + 12, (uint32_t)pp->party);
    put64(h + 16, pp->hash);
    memcpy(h + 24, pp->session, 16);
    put32(h + 40, (uint32_t)pp->batch);
    put32(h + 44, (uint32_t)pp->frac_bits);
    put32(h + 48, (uint32_t)pp->cmp_bits);
    put32(h + 52, (uint32_t)pp->n_nodes);
    put64(h + 56, pp->mask_id);
    memcpy(h + 64, pp->mask_seed, 16);
    for (int i = 0; i < pp->n_nodes; i++) {
        uint8_t *r = h + HDR_FIXED + (size_t)i * NODE_REC;
        put32(r, (uint32_t)pp->node_bits[i]);
        put64(r + 8, pp->len[i]);
        put64(r + 16, pp->node_dealer ? pp->node_dealer[i].offline.aes_blocks[0] : 0);
        put64(r + 24, pp->node_dealer ? pp->node_dealer[i].offline.ring_macs[0] : 0);
    }
    put64(h + HDR_FIXED + (size_t)pp->n_nodes * NODE_REC, pp->data_len);
}

/* HMAC-SHA256 under key of h[hl] then d[dl] (OpenSSL EVP_MAC). 0 on success. */
static int prep_mac(const uint8_t *key, const uint8_t *h, size_t hl, const uint8_t *d, size_t dl, uint8_t tag[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mc = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM prm[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0), OSSL_PARAM_END};
    size_t out = 0;
    int ok = mc && EVP_MAC_init(mc, key, PINAS_MPC_DEALER_KEY_BYTES, prm) && EVP_MAC_update(mc, h, hl);
    for (size_t o = 0; ok && o < dl; o += (size_t)1 << 30) /* update takes any size; chunks keep it portable */
        ok = EVP_MAC_update(mc, d + o, dl - o < ((size_t)1 << 30) ? dl - o : (size_t)1 << 30);
    ok = ok && EVP_MAC_final(mc, tag, &out, 32) && out == 32;
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}

pinas_status pinas_mpc_prep_save(pinas_ctx *ctx, const pinas_mpc_prep *pp, const char *path,
                                 const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES])
{
    size_t hl = prep_header_len(pp->n_nodes);
    uint8_t *h = malloc(hl), tag[32];
    if (!h) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    prep_header_write(pp, h);
    pinas_status s = PINAS_OK;
    if (prep_mac(key, h, hl, pp->data, pp->data_len, tag))
        s = pinas_error(ctx, PINAS_EINTERNAL, "%s: HMAC-SHA256 failed (OpenSSL)", path);
    pinas_file_atomic *f = NULL;
    if (!s) s = pinas_file_atomic_open(ctx, path, PINAS_FILE_SECRET, &f);
    if (!s) s = pinas_file_atomic_write(ctx, f, h, hl);
    if (!s) s = pinas_file_atomic_write(ctx, f, pp->data, pp->data_len);
    if (!s) s = pinas_file_atomic_write(ctx, f, tag, sizeof tag);
    if (!s) s = pinas_file_atomic_commit(ctx, f);
    else pinas_file_atomic_abort(f);
    free(h);
    return s;
}

static int read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* A u32 field as an int for the range checks (values past INT_MAX stay out of every range). */
static int int_field(uint32_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

pinas_status prep_header_read(pinas_ctx *ctx, const uint8_t *h, size_t len, const char *where, pinas_mpc_prep *pp)
{
    if (len < HDR_FIXED || memcmp(h, PINAS_MPC_PREP_MAGIC, 8) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: not a preprocessing file (bad magic)", where);
    if (get32(h + 8) != PINAS_MPC_PREP_VERSION)
        return pinas_error(ctx, PINAS_EFORMAT,
                           "%s: preprocessing format version %u, this pinas reads version %d only (version 3 files are "
                           "authenticated with a dealer key: run `pinas dealer --dealer-key FILE` again)",
                           where, get32(h + 8), PINAS_MPC_PREP_VERSION);
    uint32_t party = get32(h + 12), nn = get32(h + 52);
    if (party > 1 || nn == 0 || nn > 1000000)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: corrupt header (party %u, %u nodes)", where, party, nn);
    if (len < prep_header_len((int)nn)) return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated header", where);
    pp->party = (int)party;
    pp->hash = get64(h + 16);
    memcpy(pp->session, h + 24, 16);
    pp->batch = int_field(get32(h + 40));
    pp->frac_bits = int_field(get32(h + 44));
    pp->cmp_bits = int_field(get32(h + 48));
    pp->n_nodes = (int)nn;
    pp->mask_id = get64(h + 56);
    memcpy(pp->mask_seed, h + 64, 16);
    pp->data_len = get64(h + HDR_FIXED + (size_t)nn * NODE_REC);
    if (pinas_mpc_params_check(ctx, &(pinas_mpc_params){.frac_bits = pp->frac_bits, .cmp_bits = pp->cmp_bits,
                                                         .batch = pp->batch, .timeout_ms = 1, .threads = 1}))
        return pinas_error_prefix(ctx, PINAS_EFORMAT, "%s: header", where);
    pp->node_bits = calloc(nn, sizeof *pp->node_bits);
    pp->off = calloc(nn, sizeof *pp->off);
    pp->len = calloc(nn, sizeof *pp->len);
    pp->node_dealer = calloc(nn, sizeof *pp->node_dealer);
    if (!pp->node_bits || !pp->off || !pp->len || !pp->node_dealer) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    uint64_t total = 0;
    for (uint32_t i = 0; i < nn; i++) {
        const uint8_t *r = h + HDR_FIXED + (size_t)i * NODE_REC;
        uint32_t nb = get32(r);
        char field[48];
        snprintf(field, sizeof field, "node %u: cmp_bits", i);
        if (pinas_mpc_cmp_bits_check(ctx, field, int_field(nb)))
            return pinas_error_prefix(ctx, PINAS_EFORMAT, "%s", where);
        pp->node_bits[i] = (int)nb;
        pp->len[i] = get64(r + 8);
        pp->node_dealer[i].offline.aes_blocks[0] = get64(r + 16);
        pp->node_dealer[i].offline.ring_macs[0] = get64(r + 24);
        pp->off[i] = total;
        if (pp->len[i] > pp->data_len || total + pp->len[i] > pp->data_len)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: node %u: section of %llu bytes runs past the data", where, i,
                               (unsigned long long)pp->len[i]);
        total = align64(total + pp->len[i]);
    }
    if (total != pp->data_len)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: sections add up to %llu bytes, header says %llu", where,
                           (unsigned long long)total, (unsigned long long)pp->data_len);
    return PINAS_OK;
}

/* Reads the header of an open file of fsize bytes: the fixed part first (to learn the node count),
 * then the rest. *h: new (prep_header_len bytes); caller frees. */
static pinas_status read_header(pinas_ctx *ctx, int fd, uint64_t fsize, const char *path, uint8_t **h, size_t *hl)
{
    uint8_t fixed[HDR_FIXED];
    *h = NULL;
    if (fsize < HDR_FIXED + 8 + 32 || read_all(fd, fixed, HDR_FIXED))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: not a preprocessing file (truncated: %llu bytes)", path,
                           (unsigned long long)fsize);
    uint32_t nn = get32(fixed + 52);
    if (memcmp(fixed, PINAS_MPC_PREP_MAGIC, 8) != 0 || get32(fixed + 8) != PINAS_MPC_PREP_VERSION || get32(fixed + 12) > 1 ||
        nn == 0 || nn > 1000000) {
        pinas_mpc_prep probe = {0}; /* for its message */
        return prep_header_read(ctx, fixed, HDR_FIXED, path, &probe);
    }
    *hl = prep_header_len((int)nn);
    if (fsize < *hl + 32)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated (%llu bytes, header alone needs %zu)", path,
                           (unsigned long long)fsize, *hl + 32);
    *h = malloc(*hl);
    if (!*h) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    memcpy(*h, fixed, HDR_FIXED);
    if (read_all(fd, *h + HDR_FIXED, *hl - HDR_FIXED)) return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated header", path);
    return PINAS_OK;
}

/* Reads the material and the tag, and checks the tag (HMAC-SHA256 under key) over header and material. */
static pinas_status read_data(pinas_ctx *ctx, int fd, const char *path, const uint8_t *key, const uint8_t *h, size_t hl,
                              pinas_mpc_prep *pp)
{
    uint8_t want[32], got[32];
    if (read_all(fd, pp->data, pp->data_len) || read_all(fd, want, 32))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated data", path);
    if (prep_mac(key, h, hl, pp->data, pp->data_len, got))
        return pinas_error(ctx, PINAS_EINTERNAL, "%s: HMAC-SHA256 failed (OpenSSL)", path);
    if (CRYPTO_memcmp(want, got, 32) != 0)
        return pinas_error(ctx, PINAS_EFORMAT,
                           "%s: authentication failed: the file was not made by the holder of this dealer key, or was "
                           "altered or corrupted since (HMAC-SHA256 differs; check --dealer-key)",
                           path);
    return PINAS_OK;
}

pinas_status pinas_mpc_prep_load(pinas_ctx *ctx, const char *path, const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES],
                                 pinas_mpc_prep **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pinas_error(ctx, PINAS_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pinas_error(ctx, PINAS_EIO, "%s: not a regular file", path);
    }
    uint64_t fsize = (uint64_t)st.st_size;
    uint8_t *h = NULL;
    size_t hl = 0;
    pinas_mpc_prep *pp = calloc(1, sizeof *pp);
    pinas_status s = pp ? read_header(ctx, fd, fsize, path, &h, &hl) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        /* framing only, before the tag is checked: the data length must be what the file holds */
        pp->data_len = get64(h + HDR_FIXED + (size_t)get32(h + 52) * NODE_REC);
        if (pp->data_len != fsize - hl - 32)
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: truncated or padded: header says %llu data bytes, file holds %llu", path,
                            (unsigned long long)pp->data_len, (unsigned long long)(fsize - hl - 32));
    }
    if (!s && !(pp->data = big_alloc(pp->data_len)))
        s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory (%.1f MB)", path, pp->data_len / 1e6);
    if (!s) s = read_data(ctx, fd, path, key, h, hl, pp);
    if (!s) s = prep_header_read(ctx, h, hl, path, pp); /* authenticated: now every field is read and checked */
    close(fd);
    free(h);
    if (s) {
        pinas_mpc_prep_free(pp);
        return s;
    }
    *out = pp;
    return PINAS_OK;
}

/* ------------------------------------------------------------------ the dealer key */

pinas_status pinas_mpc_dealer_key_load(pinas_ctx *ctx, const char *path, uint8_t key[PINAS_MPC_DEALER_KEY_BYTES])
{
    return pinas_mpc_key_file_read(ctx, "dealer key", path, "make one with `pinas dealer --new-dealer-key FILE`", key);
}

pinas_status pinas_mpc_dealer_keygen(pinas_ctx *ctx, const char *path) { return pinas_mpc_key_file_write(ctx, path); }
