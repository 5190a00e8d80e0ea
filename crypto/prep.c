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

/* File layout, format 5 (little endian), made to be read and verified one node at a time:
 *   header: "PINASPRE" | u32 version | u32 party | u64 arch hash | u8 session[16] | u32 batch |
 *     u32 frac_bits | u32 cmp_bits | u32 n_nodes | u64 weight-mask id | u8 weight-mask seed[16] (server
 *     only) | u32 cmp_high | u8 0[12] | n_nodes x (u32 cmp_bits | u32 cmp_high | u64 material bytes |
 *     u64 section offset | u64 section bytes) | u64 data bytes | zero padding to 64
 *   header tag: HMAC-SHA256(dealer key, header) | u8 0[32]
 *   per node, in order (64-byte aligned): material | u64 dealer AES blocks | u64 dealer ring MACs |
 *     tag: Poly1305(node key, material | the two counts) | u8 0[16] | zero padding to 64, where
 *     node key = HMAC-SHA256(dealer key, "PINAS-PREP5-NODE" | header tag | u32 node index)
 * The header tag is checked (constant time) before any field is parsed; a node's tag when the node
 * is read, so a section moved from another file or node, altered or cut is refused naming it. The
 * dealer's counts sit in the sections because the dealer learns them only while it generates.
 * Format 4 tagged each section with HMAC-SHA256 (~1.7 GB/s here): reading and verifying a section sat
 * inside the online phase, and took most of ResNet-18's. Poly1305 runs at ~10 GB/s. It is a one-time
 * authenticator: each key may tag one message. The node key is a PRF of the header tag (which covers
 * the session id, 16 random bytes per dealer run, and the party) and the node index, so every (file,
 * node) has its own key, and the dealer tags each node of a file once. A section moved to another
 * node or file is checked under another key. */

#define HDR_FIXED 96
#define NODE_REC 32
#define TAG_BLOCK 64 /* the header tag, padded */
#define SEC_TRAILER 48 /* counts (16) and tag (32) */

static uint64_t align64(uint64_t v) { return (v + 63) & ~(uint64_t)63; }
static uint64_t sec_bytes(uint64_t len) { return align64(len + SEC_TRAILER); }

/* Material buffers run to gigabytes: 2 MB pages cut the page faults of filling them (and the TLB
 * misses of the key evaluation's strided reads). */
static uint8_t *big_alloc(size_t len)
{
    const size_t huge = 2u << 20;
    if (len < huge) return aligned_alloc(64, len ? align64(len) : 64);
    size_t l = (len + huge - 1) & ~(huge - 1);
    uint8_t *p = aligned_alloc(huge, l);
    if (p) madvise(p, l, MADV_HUGEPAGE);
    return p;
}

static pinas_status prep_tables(pinas_ctx *ctx, pinas_mpc_prep *pp, size_t nn)
{
    pp->node_bits = calloc(nn, sizeof *pp->node_bits);
    pp->node_high = calloc(nn, sizeof *pp->node_high);
    pp->off = calloc(nn, sizeof *pp->off);
    pp->len = calloc(nn, sizeof *pp->len);
    pp->node_dealer = calloc(nn, sizeof *pp->node_dealer);
    if (!pp->node_bits || !pp->node_high || !pp->off || !pp->len || !pp->node_dealer)
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    return PINAS_OK;
}

/* The scalar fields and per-node tables for a plan; no material. */
static pinas_status prep_shell(pinas_ctx *ctx, const pl_plan *pl, int party, pinas_mpc_prep **out)
{
    *out = NULL;
    pinas_mpc_prep *pp = calloc(1, sizeof *pp);
    if (!pp) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pp->party = party;
    pp->batch = pl->batch;
    pp->frac_bits = pl->frac_bits;
    pp->n_nodes = pl->n_nodes;
    pp->cmp_high = 64;
    if (prep_tables(ctx, pp, (size_t)pl->n_nodes)) {
        pinas_mpc_prep_free(pp);
        return PINAS_ENOMEM;
    }
    uint64_t total = 0;
    for (int i = 0; i < pl->n_nodes; i++) {
        pp->node_bits[i] = pl->nodes[i].cmp_bits;
        pp->node_high[i] = pl->nodes[i].cmp_high;
        pp->off[i] = total;
        pp->len[i] = pl_prep_bytes(&pl->nodes[i], party);
        total = align64(total + pp->len[i]);
    }
    pp->data_len = total;
    *out = pp;
    return PINAS_OK;
}

pinas_status prep_alloc(pinas_ctx *ctx, const pl_plan *pl, int party, pinas_mpc_prep **out)
{
    pinas_status s = prep_shell(ctx, pl, party, out);
    if (s) return s;
    pinas_mpc_prep *pp = *out;
    pp->data = big_alloc(pp->data_len);
    if (!pp->data) {
        *out = NULL;
        pinas_mpc_prep_free(pp);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory: preprocessing needs %.1f MB for party %d",
                           pp->data_len / 1e6, party);
    }
    return PINAS_OK;
}

pinas_status prep_alloc_shell(pinas_ctx *ctx, const pl_plan *pl, int party, pinas_mpc_prep **out)
{
    return prep_shell(ctx, pl, party, out);
}

static void file_close(prep_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    if (f->buf) OPENSSL_cleanse(f->buf, f->cap);
    free(f->buf);
    OPENSSL_cleanse(f->key, sizeof f->key);
    free(f->foff);
    free(f->path);
    free(f);
}

void pinas_mpc_prep_free(pinas_mpc_prep *pp)
{
    if (!pp) return;
    if (pp->data) OPENSSL_cleanse(pp->data, pp->data_len);
    free(pp->data);
    file_close(pp->file);
    free(pp->node_bits);
    free(pp->node_high);
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
uint64_t pinas_mpc_prep_max_node_bytes(const pinas_mpc_prep *pp)
{
    uint64_t m = 0;
    for (int i = 0; i < pp->n_nodes; i++)
        if (pp->len[i] > m) m = pp->len[i];
    return m;
}
void pinas_mpc_prep_params(const pinas_mpc_prep *pp, pinas_mpc_params *out)
{
    pinas_mpc_params_default(out);
    out->frac_bits = pp->frac_bits;
    out->cmp_bits = pp->cmp_bits;
    out->cmp_high = pp->cmp_high;
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
    put32(h + 80, (uint32_t)pp->cmp_high);
    uint64_t o = hl + TAG_BLOCK;
    for (int i = 0; i < pp->n_nodes; i++) {
        uint8_t *r = h + HDR_FIXED + (size_t)i * NODE_REC;
        put32(r, (uint32_t)pp->node_bits[i]);
        put32(r + 4, (uint32_t)pp->node_high[i]);
        put64(r + 8, pp->len[i]);
        put64(r + 16, o);
        put64(r + 24, sec_bytes(pp->len[i]));
        o += sec_bytes(pp->len[i]);
    }
    put64(h + HDR_FIXED + (size_t)pp->n_nodes * NODE_REC, o - hl - TAG_BLOCK);
}

/* HMAC-SHA256 under key over the n pieces p[i] of l[i] bytes (OpenSSL EVP_MAC). 0 on success. */
static int prep_mac(const uint8_t *key, int n, const void *const *p, const size_t *l, uint8_t tag[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mc = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM prm[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0), OSSL_PARAM_END};
    size_t out = 0;
    int ok = mc && EVP_MAC_init(mc, key, PINAS_MPC_DEALER_KEY_BYTES, prm);
    for (int i = 0; ok && i < n; i++)
        for (size_t o = 0; ok && o < l[i]; o += (size_t)1 << 30) /* update takes any size; chunks keep it portable */
            ok = EVP_MAC_update(mc, (const uint8_t *)p[i] + o, l[i] - o < ((size_t)1 << 30) ? l[i] - o : (size_t)1 << 30);
    ok = ok && EVP_MAC_final(mc, tag, &out, 32) && out == 32;
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}

/* A node section's tag (32 bytes: Poly1305's 16, then zeros) under node i's one-time key (above): over
 * the material and the dealer's counts. 0 on success. */
static int sec_mac(const uint8_t *key, const uint8_t htag[32], int i, const uint8_t *mat, uint64_t len,
                   const uint8_t counts[16], uint8_t tag[32])
{
    uint8_t idx[4], nk[32];
    put32(idx, (uint32_t)i);
    const void *p[3] = {"PINAS-PREP5-NODE", htag, idx};
    size_t l[3] = {16, 32, 4};
    if (prep_mac(key, 3, p, l, nk)) return -1;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    EVP_MAC_CTX *mc = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t out = 0;
    int ok = mc && EVP_MAC_init(mc, nk, sizeof nk, NULL);
    for (uint64_t o = 0; ok && o < len; o += (uint64_t)1 << 30)
        ok = EVP_MAC_update(mc, mat + o, len - o < ((uint64_t)1 << 30) ? (size_t)(len - o) : (size_t)1 << 30);
    ok = ok && EVP_MAC_update(mc, counts, 16) && EVP_MAC_final(mc, tag, &out, 16) && out == 16;
    memset(tag + 16, 0, 16);
    OPENSSL_cleanse(nk, sizeof nk);
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ writing, node by node */

struct prep_writer {
    pinas_file_atomic *f;
    char *path;
    const pinas_mpc_prep *pp; /* the header fields and sizes (borrowed) */
    uint8_t key[PINAS_MPC_DEALER_KEY_BYTES], htag[32];
    int next;                 /* the node expected next */
};

void prep_writer_abort(prep_writer *w)
{
    if (!w) return;
    pinas_file_atomic_abort(w->f);
    OPENSSL_cleanse(w->key, sizeof w->key);
    free(w->path);
    free(w);
}

pinas_status prep_writer_open(pinas_ctx *ctx, const pinas_mpc_prep *pp, const char *path,
                              const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES], prep_writer **out)
{
    *out = NULL;
    prep_writer *w = calloc(1, sizeof *w);
    size_t hl = prep_header_len(pp->n_nodes);
    uint8_t *h = malloc(hl + TAG_BLOCK);
    if (!w || !h || !(w->path = strdup(path))) {
        free(h);
        if (w) free(w->path);
        free(w);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    w->pp = pp;
    memcpy(w->key, key, sizeof w->key);
    prep_header_write(pp, h);
    const void *pc[1] = {h};
    size_t lc[1] = {hl};
    pinas_status s = PINAS_OK;
    if (prep_mac(key, 1, pc, lc, w->htag)) s = pinas_error(ctx, PINAS_EINTERNAL, "%s: HMAC-SHA256 failed (OpenSSL)", path);
    memset(h + hl, 0, TAG_BLOCK);
    memcpy(h + hl, w->htag, 32);
    if (!s) s = pinas_file_atomic_open(ctx, path, PINAS_FILE_SECRET, &w->f);
    if (!s) s = pinas_file_atomic_write(ctx, w->f, h, hl + TAG_BLOCK);
    free(h);
    if (s) {
        prep_writer_abort(w);
        return s;
    }
    *out = w;
    return PINAS_OK;
}

pinas_status prep_writer_node(pinas_ctx *ctx, prep_writer *w, int i, const uint8_t *mat, const pinas_mpc_cost *work)
{
    if (i != w->next || i >= w->pp->n_nodes)
        return pinas_error(ctx, PINAS_EINTERNAL, "%s: node %d written out of order (expected %d)", w->path, i, w->next);
    uint64_t len = w->pp->len[i];
    uint8_t tr[SEC_TRAILER + 64] = {0};
    put64(tr, work ? work->offline.aes_blocks[0] : 0);
    put64(tr + 8, work ? work->offline.ring_macs[0] : 0);
    if (sec_mac(w->key, w->htag, i, mat, len, tr, tr + 16))
        return pinas_error(ctx, PINAS_EINTERNAL, "%s: HMAC-SHA256 or Poly1305 failed (OpenSSL)", w->path);
    pinas_status s = pinas_file_atomic_write(ctx, w->f, mat, (size_t)len);
    if (!s) s = pinas_file_atomic_write(ctx, w->f, tr, (size_t)(sec_bytes(len) - len));
    if (!s) w->next++;
    return s;
}

pinas_status prep_writer_commit(pinas_ctx *ctx, prep_writer *w)
{
    pinas_status s = w->next == w->pp->n_nodes
                         ? pinas_file_atomic_commit(ctx, w->f)
                         : pinas_error(ctx, PINAS_EINTERNAL, "%s: %d of %d nodes written", w->path, w->next, w->pp->n_nodes);
    if (w->next == w->pp->n_nodes) w->f = NULL; /* the commit frees f, whether it succeeds or not */
    prep_writer_abort(w);
    return s;
}

pinas_status pinas_mpc_prep_save(pinas_ctx *ctx, const pinas_mpc_prep *pp, const char *path,
                                 const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES])
{
    if (!pp->data)
        return pinas_error(ctx, PINAS_EINVAL, "%s: this preprocessing is read from a file, not held in memory", path);
    prep_writer *w = NULL;
    pinas_status s = prep_writer_open(ctx, pp, path, key, &w);
    for (int i = 0; !s && i < pp->n_nodes; i++)
        s = prep_writer_node(ctx, w, i, pp->data + pp->off[i], pp->node_dealer ? &pp->node_dealer[i] : NULL);
    if (!s) return prep_writer_commit(ctx, w);
    prep_writer_abort(w);
    return s;
}

/* ------------------------------------------------------------------ reading */

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* A u32 field as an int for the range checks (values past INT_MAX stay out of every range). */
static int int_field(uint32_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

/* The version check's message: older files are refused by name. */
static pinas_status version_error(pinas_ctx *ctx, const char *where, uint32_t v)
{
    return pinas_error(ctx, PINAS_EFORMAT,
                       "%s: preprocessing format version %u; this pinas reads %d: re-run pinas dealer (format 5 is read "
                       "and verified node by node, each section under its own Poly1305 key)",
                       where, v, PINAS_MPC_PREP_VERSION);
}

/* The per-node records: windows, sizes and the section framing. */
static pinas_status header_nodes(pinas_ctx *ctx, const uint8_t *h, const char *where, pinas_mpc_prep *pp)
{
    uint32_t nn = (uint32_t)pp->n_nodes;
    uint64_t total = 0, o = prep_header_len(pp->n_nodes) + TAG_BLOCK;
    for (uint32_t i = 0; i < nn; i++) {
        const uint8_t *r = h + HDR_FIXED + (size_t)i * NODE_REC;
        char field[48];
        snprintf(field, sizeof field, "node %u: cmp_bits", i);
        if (pinas_mpc_cmp_window_check(ctx, field, int_field(get32(r)), int_field(get32(r + 4))))
            return pinas_error_prefix(ctx, PINAS_EFORMAT, "%s", where);
        pp->node_bits[i] = (int)get32(r);
        pp->node_high[i] = (int)get32(r + 4);
        pp->len[i] = get64(r + 8);
        if (pp->len[i] > ((uint64_t)1 << 48) || get64(r + 16) != o || get64(r + 24) != sec_bytes(pp->len[i]))
            return pinas_error(ctx, PINAS_EFORMAT, "%s: node %u: section of %llu bytes at %llu does not follow the one before",
                               where, i, (unsigned long long)pp->len[i], (unsigned long long)get64(r + 16));
        pp->off[i] = total;
        total = align64(total + pp->len[i]);
        o += sec_bytes(pp->len[i]);
    }
    uint64_t want = o - prep_header_len(pp->n_nodes) - TAG_BLOCK;
    if (get64(h + HDR_FIXED + (size_t)nn * NODE_REC) != want)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: sections add up to %llu bytes, header says %llu", where,
                           (unsigned long long)want, (unsigned long long)get64(h + HDR_FIXED + (size_t)nn * NODE_REC));
    pp->data_len = total;
    return PINAS_OK;
}

pinas_status prep_header_read(pinas_ctx *ctx, const uint8_t *h, size_t len, const char *where, pinas_mpc_prep *pp)
{
    if (len < HDR_FIXED || memcmp(h, PINAS_MPC_PREP_MAGIC, 8) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: not a preprocessing file (bad magic)", where);
    if (get32(h + 8) != PINAS_MPC_PREP_VERSION) return version_error(ctx, where, get32(h + 8));
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
    pp->cmp_high = int_field(get32(h + 80));
    if (pinas_mpc_params_check(ctx, &(pinas_mpc_params){.frac_bits = pp->frac_bits, .cmp_bits = pp->cmp_bits,
                                                         .cmp_high = pp->cmp_high, .batch = pp->batch, .timeout_ms = 1,
                                                         .threads = 1}))
        return pinas_error_prefix(ctx, PINAS_EFORMAT, "%s: header", where);
    pinas_status s = prep_tables(ctx, pp, nn);
    return s ? s : header_nodes(ctx, h, where, pp);
}

/* Reads and authenticates the header of an open file of fsize bytes: the fixed part first (to learn
 * the node count), then the rest and its tag, checked before any field is parsed. *h: new
 * (prep_header_len bytes + TAG_BLOCK); caller frees. */
static pinas_status read_header(pinas_ctx *ctx, int fd, uint64_t fsize, const char *path, const uint8_t *key, uint8_t **h)
{
    uint8_t fixed[HDR_FIXED] = {0};
    *h = NULL;
    if (fsize < 12 || pread_all(fd, fixed, fsize < HDR_FIXED ? 12 : HDR_FIXED, 0))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: not a preprocessing file (truncated: %llu bytes)", path,
                           (unsigned long long)fsize);
    if (memcmp(fixed, PINAS_MPC_PREP_MAGIC, 8) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: not a preprocessing file (bad magic)", path);
    if (get32(fixed + 8) != PINAS_MPC_PREP_VERSION) return version_error(ctx, path, get32(fixed + 8));
    uint32_t nn = get32(fixed + 52);
    if (fsize < HDR_FIXED + TAG_BLOCK || get32(fixed + 12) > 1 || nn == 0 || nn > 1000000)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: corrupt or truncated header (%llu bytes, party %u, %u nodes)", path,
                           (unsigned long long)fsize, get32(fixed + 12), nn);
    size_t hl = prep_header_len((int)nn);
    if (fsize < hl + TAG_BLOCK)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated (%llu bytes, the header alone needs %zu)", path,
                           (unsigned long long)fsize, hl + TAG_BLOCK);
    *h = malloc(hl + TAG_BLOCK);
    if (!*h) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    uint8_t tag[32];
    const void *pc[1] = {*h};
    size_t lc[1] = {hl};
    if (pread_all(fd, *h, hl + TAG_BLOCK, 0)) return pinas_error(ctx, PINAS_EIO, "%s: cannot read the header", path);
    if (prep_mac(key, 1, pc, lc, tag)) return pinas_error(ctx, PINAS_EINTERNAL, "%s: HMAC-SHA256 failed (OpenSSL)", path);
    if (CRYPTO_memcmp(tag, *h + hl, 32) != 0)
        return pinas_error(ctx, PINAS_EFORMAT,
                           "%s: authentication failed: the file was not made by the holder of this dealer key, or its "
                           "header was altered or corrupted since (HMAC-SHA256 differs; check --dealer-key)",
                           path);
    return PINAS_OK;
}

/* After the header: the file must hold every section; a short file names the first node cut. */
static pinas_status check_size(pinas_ctx *ctx, const pinas_mpc_prep *pp, uint64_t fsize, const char *path)
{
    uint64_t end = prep_header_len(pp->n_nodes) + TAG_BLOCK;
    for (int i = 0; i < pp->n_nodes; i++) {
        end += sec_bytes(pp->len[i]);
        if (end > fsize)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated: node %d's section ends at byte %llu, the file has %llu bytes",
                               path, i, (unsigned long long)end, (unsigned long long)fsize);
    }
    if (fsize > end)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: %llu bytes past the last node's section (padded or appended to)", path,
                           (unsigned long long)(fsize - end));
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
    uint8_t *h = NULL;
    pinas_mpc_prep *pp = calloc(1, sizeof *pp);
    prep_file *f = calloc(1, sizeof *f);
    if (f) f->fd = -1; /* the caller's fd is closed below, once, on error */
    pinas_status s = pp && f ? read_header(ctx, fd, (uint64_t)st.st_size, path, key, &h)
                             : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = prep_header_read(ctx, h, prep_header_len((int)get32(h + 52)), path, pp); /* authenticated */
    if (!s) s = check_size(ctx, pp, (uint64_t)st.st_size, path);
    if (!s && (!(f->path = strdup(path)) || !(f->foff = calloc((size_t)pp->n_nodes, sizeof *f->foff))))
        s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        memcpy(f->htag, h + prep_header_len(pp->n_nodes), 32);
        for (int i = 0; i < pp->n_nodes; i++) {
            f->foff[i] = get64(h + HDR_FIXED + (size_t)i * NODE_REC + 16); /* checked */
            if (sec_bytes(pp->len[i]) > f->maxsec) f->maxsec = (size_t)sec_bytes(pp->len[i]); /* bounded by the file size */
        }
        memcpy(f->key, key, sizeof f->key);
        f->fd = fd;
        f->cur = -1;
        pp->file = f;
    }
    free(h);
    if (s) {
        close(fd);
        file_close(f);
        pinas_mpc_prep_free(pp);
        return s;
    }
    *out = pp;
    return PINAS_OK;
}

pinas_status prep_fetch(pinas_ctx *ctx, const pinas_mpc_prep *pp, int i)
{
    prep_file *f = pp->file;
    if (!f || f->cur == i) return PINAS_OK;
    uint64_t len = pp->len[i], need = sec_bytes(len);
    f->cur = -1;
    if (need > f->cap) { /* once, at the largest section's size: the buffer is the same whichever node comes first */
        if (f->buf) OPENSSL_cleanse(f->buf, f->cap);
        free(f->buf);
        f->cap = 0;
        size_t want = f->maxsec > need ? f->maxsec : (size_t)need;
        if (!(f->buf = big_alloc(want)))
            return pinas_error(ctx, PINAS_ENOMEM, "%s: node %d: out of memory (%.1f MB)", f->path, i, want / 1e6);
        f->cap = want;
    }
    double t0 = pinas_now();
    uint8_t tag[32];
    if (pread_all(f->fd, f->buf, (size_t)(len + SEC_TRAILER), f->foff[i]))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: node %d: cannot read its section (truncated since it was opened?)",
                           f->path, i);
    if (sec_mac(f->key, f->htag, i, f->buf, len, f->buf + len, tag))
        return pinas_error(ctx, PINAS_EINTERNAL, "%s: HMAC-SHA256 or Poly1305 failed (OpenSSL)", f->path);
    if (CRYPTO_memcmp(tag, f->buf + len + 16, 32) != 0)
        return pinas_error(ctx, PINAS_EFORMAT,
                           "%s: node %d: authentication failed: its section was altered, corrupted or taken from another "
                           "file or node (its Poly1305 tag differs)",
                           f->path, i);
    pp->node_dealer[i].offline.aes_blocks[0] = get64(f->buf + len);
    pp->node_dealer[i].offline.ring_macs[0] = get64(f->buf + len + 8);
    f->read_s += pinas_now() - t0;
    f->cur = i;
    return PINAS_OK;
}

size_t prep_scratch_room(const pinas_mpc_prep *pp, int i)
{
    const prep_file *f = pp->file;
    uint64_t used = f ? sec_bytes(pp->len[i]) : 0;
    return f && f->maxsec > used ? f->maxsec - (size_t)used : 0;
}

uint8_t *prep_scratch(const pinas_mpc_prep *pp, int i, size_t bytes)
{
    const prep_file *f = pp->file;
    if (!f || f->cur != i || f->cap < f->maxsec || bytes > prep_scratch_room(pp, i)) return NULL;
    return f->buf + sec_bytes(pp->len[i]);
}

pinas_status pinas_mpc_prep_verify(pinas_ctx *ctx, const pinas_mpc_prep *pp)
{
    double t = pp->file ? pp->file->read_s : 0; /* a check before the run, not the run's reading */
    pinas_status s = PINAS_OK;
    for (int i = 0; i < pp->n_nodes && !s; i++) s = prep_fetch(ctx, pp, i);
    if (pp->file) pp->file->read_s = t;
    return s;
}

double pinas_mpc_prep_read_seconds(const pinas_mpc_prep *pp) { return pp->file ? pp->file->read_s : 0; }
double pinas_mpc_prep_gen_seconds(const pinas_mpc_prep *pp) { return pp->gen_s; }

/* ------------------------------------------------------------------ the dealer key */

pinas_status pinas_mpc_dealer_key_load(pinas_ctx *ctx, const char *path, uint8_t key[PINAS_MPC_DEALER_KEY_BYTES])
{
    return pinas_mpc_key_file_read(ctx, "dealer key", path, "make one with `pinas dealer --new-dealer-key FILE`", key);
}

pinas_status pinas_mpc_dealer_keygen(pinas_ctx *ctx, const char *path) { return pinas_mpc_key_file_write(ctx, path); }
