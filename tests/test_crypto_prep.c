/* Tests for crypto/prep.c, crypto/mask.c and the parties' checks: the preprocessing file round trip (mode
 * 0600, format 5: a tagged header and per-node sections read one at a time (HMAC-SHA256 under the dealer
 * key for the header, Poly1305 under per-node keys for the sections; see crypto/prep.c) under the dealer
 * key), forged fields rejected, the streaming dealer, the dealer key file, its header against a golden
 * file (tests/golden/prep-header.bin), corrupt, truncated, spliced and foreign files rejected naming the
 * node, the weight-mask file, mismatched models and sessions refused; and the chi-square
 * uniformity of what the client receives (>= 1 MB). */
#define _GNU_SOURCE
#include "mpc_internal.h"
#include "testutil.h"
#include "testutil_net.h"

#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pinas_ctx *ctx;
static const uint8_t KEY[PINAS_MPC_DEALER_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static pinas_net *tiny(pinas_cand_kind act)
{
    pinas_net *n = NULL;
    CU_ASSERT_FATAL(pinas_net_load(ctx, "tests/golden/tiny_space.json", &n) == PINAS_OK);
    for (int i = 0; i < pinas_net_n_nodes(n); i++) {
        const pinas_node *nd = pinas_net_node(n, i);
        if (!pinas_node_is_slot(nd)) continue;
        int c = pinas_node_find_cand(nd, nd->op == PINAS_OP_POOL ? PINAS_CAND_MAXPOOL : act);
        CU_ASSERT_FATAL(pinas_net_decide(ctx, n, i, c < 0 ? 0 : c) == PINAS_OK);
    }
    return n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    CU_ASSERT(fread(b, 1, *len, f) == *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
}

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Format 4's layout (crypto/prep.c): header of 96 fixed bytes + 32 per node + 8, padded to 64; its tag
 * (64 with padding); then per node a section whose file offset the node's record holds at +16. */
static size_t hdr_len(const uint8_t *buf) { uint32_t n; memcpy(&n, buf + 52, 4); return (96 + 32 * (size_t)n + 8 + 63) / 64 * 64; }
static uint64_t sec_off(const uint8_t *buf, int node) { return rd64(buf + 96 + 32 * (size_t)node + 16); }
static uint64_t mat_len(const uint8_t *buf, int node) { return rd64(buf + 96 + 32 * (size_t)node + 8); }

/* The round trip, node by node: each node's material and the dealer's counts read back as dealt. */
static void check_roundtrip(const pinas_mpc_prep *a, const pinas_mpc_prep *c)
{
    CU_ASSERT(c->data == NULL && c->file != NULL); /* read node by node, never whole */
    CU_ASSERT_EQUAL(pinas_mpc_prep_party(c), pinas_mpc_prep_party(a));
    CU_ASSERT_EQUAL(pinas_mpc_prep_total_bytes(c), pinas_mpc_prep_total_bytes(a));
    CU_ASSERT(memcmp(c->session, a->session, 16) == 0 && c->mask_id == a->mask_id && c->cmp_high == a->cmp_high);
    for (int i = 0; i < a->n_nodes; i++) {
        CU_ASSERT_FATAL(prep_fetch(ctx, c, i) == PINAS_OK);
        CU_ASSERT_EQUAL(c->len[i], a->len[i]);
        CU_ASSERT_EQUAL(c->node_bits[i], a->node_bits[i]);
        CU_ASSERT_EQUAL(c->node_high[i], a->node_high[i]);
        CU_ASSERT(a->len[i] == 0 || memcmp(prep_node(c, i), prep_node(a, i), a->len[i]) == 0);
        CU_ASSERT(pinas_mpc_counts_equal(&c->node_dealer[i].offline, &a->node_dealer[i].offline));
    }
    CU_ASSERT(pinas_mpc_prep_read_seconds(c) > 0);
}

static void test_roundtrip_and_corruption(void)
{
    pinas_net *net = tiny(PINAS_CAND_RELU);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 2;
    pinas_mpc_prep *a = NULL, *b = NULL, *c = NULL, *a2 = NULL, *b2 = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, net, &p, NULL, &a, &b) == PINAS_OK);
    const char *path = tu_path("server.prep"), *path2 = tu_path("server2.prep");
    CU_ASSERT_FATAL(pinas_mpc_prep_save(ctx, a, path, KEY) == PINAS_OK);
    struct stat st;
    CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, path, KEY, &c) == PINAS_OK);
    CU_ASSERT_EQUAL(pinas_mpc_prep_batch(c), 2);
    CU_ASSERT_EQUAL(pinas_mpc_prep_hash(c), pinas_mpc_arch_hash(net, &p));
    check_roundtrip(a, c);
    CU_ASSERT(pinas_mpc_prep_verify(ctx, c) == PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_save(ctx, c, tu_path("again.prep"), KEY), "not held in memory");
    pinas_mpc_prep_free(c);
    c = NULL;
    /* a second dealer run of the same model: sections of the same size, another session */
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, net, &p, NULL, &a2, &b2) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_prep_save(ctx, a2, path2, KEY) == PINAS_OK);

    size_t len, len2;
    uint8_t *buf = slurp(path, &len), *buf2 = slurp(path2, &len2);
    CU_ASSERT_FATAL(len == len2);
    const char *bad = tu_path("bad.prep");
    /* one flipped bit in node 3's material: the header opens, node 3 is refused by index */
    uint64_t o3 = sec_off(buf, 3);
    CU_ASSERT_FATAL(mat_len(buf, 3) > 100);
    buf[o3 + 77] ^= 0x10;
    spit(bad, buf, len);
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, bad, KEY, &c) == PINAS_OK);
    CU_ASSERT(prep_fetch(ctx, c, 1) == PINAS_OK);
    TU_ASSERT_ERR(ctx, prep_fetch(ctx, c, 3), "bad.prep: node 3: authentication failed");
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_verify(ctx, c), "node 3: authentication failed");
    pinas_mpc_prep_free(c);
    c = NULL;
    buf[o3 + 77] ^= 0x10;
    /* the dealer's count of a node altered (it sits in the section): refused too */
    buf[o3 + mat_len(buf, 3)] ^= 1;
    spit(bad, buf, len);
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, bad, KEY, &c) == PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_verify(ctx, c), "node 3: authentication failed");
    pinas_mpc_prep_free(c);
    c = NULL;
    buf[o3 + mat_len(buf, 3)] ^= 1;
    /* node 3's section taken from another genuine file of the same key: bound to its own header */
    uint8_t *mix = malloc(len);
    memcpy(mix, buf, len);
    memcpy(mix + o3, buf2 + o3, sec_off(buf, 4) - o3);
    spit(bad, mix, len);
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, bad, KEY, &c) == PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_verify(ctx, c), "node 3: authentication failed");
    pinas_mpc_prep_free(c);
    c = NULL;
    /* two sections of one file swapped (nodes 2 and 6 carry no material: sections of the same size) */
    CU_ASSERT_FATAL(mat_len(buf, 2) == 0 && mat_len(buf, 6) == 0);
    memcpy(mix, buf, len);
    memcpy(mix + sec_off(buf, 2), buf + sec_off(buf, 6), 64);
    memcpy(mix + sec_off(buf, 6), buf + sec_off(buf, 2), 64);
    spit(bad, mix, len);
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, bad, KEY, &c) == PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_verify(ctx, c), "node 2: authentication failed");
    pinas_mpc_prep_free(c);
    c = NULL;
    free(mix);
    /* a flipped bit in the header: refused before a field is parsed */
    buf[20] ^= 4;
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "bad.prep: authentication failed");
    buf[20] ^= 4;
    /* truncated: named by the first node it cuts */
    spit(bad, buf, (size_t)sec_off(buf, 4) + 10);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "bad.prep: truncated: node 4's section ends at byte");
    spit(bad, buf, len - 100);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "truncated: node 10's section");
    spit(bad, buf, hdr_len(buf) + 20);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "truncated");
    /* padded */
    uint8_t *pad = calloc(1, len + 64);
    memcpy(pad, buf, len);
    spit(bad, pad, len + 64);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "64 bytes past the last node's section");
    free(pad);
    /* not a preprocessing file */
    uint8_t text[80];
    memset(text, ' ', sizeof text);
    memcpy(text, "{\"format\": \"pinas-net/1\"}", 25);
    spit(bad, text, sizeof text);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "not a preprocessing file");
    /* another version */
    buf[8] = 99;
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "version 99");
    /* a file of the previous format (one tag over the whole file): named by its version */
    buf[8] = 3;
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "format version 3; this pinas reads 5: re-run pinas dealer");
    /* and of format 4 (sections under HMAC-SHA256) */
    buf[8] = 4;
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "format version 4; this pinas reads 5: re-run pinas dealer");
    buf[8] = PINAS_MPC_PREP_VERSION;
    /* the right file under another key */
    uint8_t other[PINAS_MPC_DEALER_KEY_BYTES];
    memcpy(other, KEY, sizeof other);
    other[31] ^= 1;
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, other, &c), "not made by the holder of this dealer key");
    CU_ASSERT(c == NULL);
    free(buf);
    free(buf2);
    pinas_mpc_prep_free(a);
    pinas_mpc_prep_free(b);
    pinas_mpc_prep_free(a2);
    pinas_mpc_prep_free(b2);
    pinas_net_free(net);
}

/* Rewrites the header's tag of a file image under KEY (a forger who holds the key, or a dealer's bug:
 * the reader's field checks must hold on their own). */
static void retag(uint8_t *buf)
{
    unsigned tl = 0;
    size_t hl = hdr_len(buf);
    HMAC(EVP_sha256(), KEY, sizeof KEY, buf, hl, buf + hl, &tl);
    CU_ASSERT_EQUAL(tl, 32);
}

/* Self-consistent forged files (tag valid) with out-of-range fields: each rejected naming the file
 * and the field, before any of it is used (65 or 0 comparison bits and 64 fractional bits reached
 * undefined shifts in dcf.c and ring.c). */
static void test_forged_fields_rejected(void)
{
    pinas_net *net = tiny(PINAS_CAND_RELU);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_prep *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, net, &p, NULL, &a, &b) == PINAS_OK);
    const char *path = tu_path("forge.prep"), *bad = tu_path("forged.prep");
    CU_ASSERT_FATAL(pinas_mpc_prep_save(ctx, b, path, KEY) == PINAS_OK);
    size_t len;
    uint8_t *orig = slurp(path, &len), *buf = malloc(len);
    struct { size_t off; uint32_t v; const char *msg; } cases[] = {
        {44, 64, "header: mpc.frac_bits: expected an integer in [4, 18], got 64"},
        {44, 0, "header: mpc.frac_bits: expected an integer in [4, 18], got 0"},
        {44, 19, "mpc.frac_bits"},
        {48, 65, "header: mpc.cmp_bits: expected an integer in [8, 64], got 65"},
        {48, 0, "header: mpc.cmp_bits: expected an integer in [8, 64], got 0"},
        {48, 0xFFFFFFFFu, "mpc.cmp_bits"},
        {80, 65, "cmp_high = 65"},
        {40, 0, "header: batch: expected an integer in [1, 1048576], got 0"},
        {40, 0x80000000u, "batch"},
        {96 + 3 * 32, 65, "node 3: cmp_bits: expected an integer in [8, 64], got 65"},
        {96 + 1 * 32, 0, "node 1: cmp_bits: expected an integer in [8, 64], got 0"},
        {96 + 3 * 32 + 4, 70, "node 3: cmp_bits: comparison window top cmp_high = 70"},
        {96 + 3 * 32 + 8, 8, "node 3: section of 8 bytes"},
        {96 + 5 * 32 + 16, 4096, "node 5: section of"},
        {96 + 11 * 32, 8, "sections add up to"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(buf, orig, len);
        put_u32(buf + cases[k].off, cases[k].v);
        retag(buf);
        spit(bad, buf, len);
        TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), cases[k].msg);
        CU_ASSERT(c == NULL);
        CU_ASSERT(strstr(pinas_errmsg(ctx), bad) != NULL);
    }
    /* untagged forgeries never get that far */
    memcpy(buf, orig, len);
    put_u32(buf + 48, 65);
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, KEY, &c), "authentication failed");
    /* the same widths in memory (a prep not from a file) are refused by the plan, naming the node */
    b->node_bits[3] = 65;
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_check(ctx, b, net, 1), "cmp_bits: expected an integer in [8, 64], got 65");
    p.frac_bits = 64;
    TU_ASSERT_ERR(ctx, pinas_mpc_cost_net(ctx, net, &p, &(pinas_mpc_cost){0}), "mpc.frac_bits");
    p.frac_bits = 16;
    p.cmp_bits = 0;
    pinas_mpc_prep *x = NULL, *y = NULL;
    TU_ASSERT_ERR(ctx, pinas_mpc_deal(ctx, net, &p, NULL, &x, &y), "mpc.cmp_bits");
    free(orig);
    free(buf);
    pinas_mpc_prep_free(a);
    pinas_mpc_prep_free(b);
    pinas_net_free(net);
}

/* The streaming dealer: both files written, the dealer's summary holds no material (a party refuses
 * it), the files load and verify; a failing second file leaves neither target replaced. */
static void test_streaming_dealer(void)
{
    pinas_net *net = tiny(PINAS_CAND_RELU);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 2;
    char *f0 = pinas_path_join(tu_tmpdir(), "s0.prep"), *f1 = pinas_path_join(tu_tmpdir(), "s1.prep");
    pinas_mpc_prep *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal_files(ctx, net, &p, NULL, f0, f1, KEY, &a, &b) == PINAS_OK);
    CU_ASSERT(a->data == NULL && a->file == NULL);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_check(ctx, a, net, 0), "holds no material");
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, f0, KEY, &c) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, f1, KEY, &d) == PINAS_OK);
    CU_ASSERT(pinas_mpc_prep_verify(ctx, c) == PINAS_OK && pinas_mpc_prep_verify(ctx, d) == PINAS_OK);
    CU_ASSERT(memcmp(c->session, d->session, 16) == 0 && memcmp(c->session, a->session, 16) == 0);
    CU_ASSERT(pinas_mpc_prep_check(ctx, c, net, 0) == PINAS_OK && pinas_mpc_prep_check(ctx, d, net, 1) == PINAS_OK);
    CU_ASSERT_EQUAL(pinas_mpc_prep_total_bytes(c), pinas_mpc_prep_total_bytes(a));
    for (int i = 0; i < a->n_nodes; i++)
        CU_ASSERT(pinas_mpc_counts_equal(&c->node_dealer[i].offline, &a->node_dealer[i].offline));
    CU_ASSERT(pinas_mpc_prep_max_node_bytes(c) > 0 && pinas_mpc_prep_max_node_bytes(c) < pinas_mpc_prep_total_bytes(c));
    /* the client's target cannot be written (a directory in its place): the server's file stays the old one */
    size_t l0 = 0, l0b = 0;
    uint8_t *before = slurp(f0, &l0);
    char *dir = pinas_path_join(tu_tmpdir(), "blocked.prep");
    CU_ASSERT_FATAL(pinas_mkdir_p(ctx, dir) == PINAS_OK);
    pinas_mpc_prep *x = NULL, *y = NULL;
    CU_ASSERT(pinas_mpc_deal_files(ctx, net, &p, NULL, f0, dir, KEY, &x, &y) != PINAS_OK);
    CU_ASSERT(x == NULL && y == NULL);
    uint8_t *after = slurp(f0, &l0b);
    CU_ASSERT(l0 == l0b && memcmp(before, after, l0) == 0);
    free(before), free(after), free(dir);
    pinas_mpc_prep_free(a), pinas_mpc_prep_free(b), pinas_mpc_prep_free(c), pinas_mpc_prep_free(d);
    free(f0), free(f1);
    pinas_net_free(net);
}

/* The dealer key file: written 0600, read back; a group-readable or malformed one refused naming it. */
static void test_dealer_key_file(void)
{
    const char *kp = tu_path("dealer.key");
    uint8_t k1[PINAS_MPC_DEALER_KEY_BYTES], k2[PINAS_MPC_DEALER_KEY_BYTES];
    CU_ASSERT_FATAL(pinas_mpc_dealer_keygen(ctx, kp) == PINAS_OK);
    struct stat st;
    CU_ASSERT(stat(kp, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 65);
    CU_ASSERT_FATAL(pinas_mpc_dealer_key_load(ctx, kp, k1) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_dealer_keygen(ctx, kp) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_dealer_key_load(ctx, kp, k2) == PINAS_OK);
    CU_ASSERT(memcmp(k1, k2, sizeof k1) != 0); /* fresh from the OS */
    chmod(kp, 0640);
    TU_ASSERT_ERR(ctx, pinas_mpc_dealer_key_load(ctx, kp, k1), "readable by group or others");
    CU_ASSERT(strstr(pinas_errmsg(ctx), kp) != NULL);
    spit(kp, (const uint8_t *)"0123zz\n", 7);
    chmod(kp, 0600);
    TU_ASSERT_ERR(ctx, pinas_mpc_dealer_key_load(ctx, kp, k1), "expected 64 hex digits");
    TU_ASSERT_ERR(ctx, pinas_mpc_dealer_key_load(ctx, tu_path("no.key"), k1), "cannot open");
}

/* ------------------------------------------------------------------ the header's golden file */

#define GOLDEN_HEADER "tests/golden/prep-header.bin"

/* The fixed key material of the golden file: weight-mask seed 00..0f, session id 10..1f. */
static void golden_seed(uint8_t seed[16], uint8_t session[16])
{
    for (int i = 0; i < 16; i++) seed[i] = (uint8_t)i, session[i] = (uint8_t)(16 + i);
}

/* Writes DIR/<hash>.mask holding `seed` (the format pinas_mpc_mask_open reads) and opens it. */
static pinas_mpc_mask *mask_with_seed(const char *dir, uint64_t hash, const uint8_t seed[16])
{
    uint8_t f[32];
    memcpy(f, "PINASMSK", 8);
    memcpy(f + 8, &hash, 8);
    memcpy(f + 16, seed, 16);
    char path[512];
    snprintf(path, sizeof path, "%s/%016llx.mask", dir, (unsigned long long)hash);
    spit(path, f, sizeof f);
    pinas_mpc_mask *m = NULL;
    CU_ASSERT_FATAL(pinas_mpc_mask_open(ctx, dir, hash, 0, &m) == PINAS_OK);
    return m;
}

/* The server's header of the all-relu tiny net (maxpool), batch 2, default parameters, dealt with the
 * golden seed and given the golden session id: what the dealer writes for that key material. */
static uint8_t *dealt_header(const pinas_net *net, size_t *len)
{
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 2;
    uint8_t seed[16], session[16];
    golden_seed(seed, session);
    pinas_mpc_mask *mask = mask_with_seed(tu_tmpdir(), pinas_mpc_arch_hash(net, &p), seed);
    pinas_mpc_deal_opts o = {.mask = mask};
    pinas_mpc_prep *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, net, &p, &o, &a, &b) == PINAS_OK);
    memcpy(a->session, session, 16); /* the one field drawn from the OS */
    *len = prep_header_len(a->n_nodes);
    uint8_t *h = malloc(*len);
    prep_header_write(a, h);
    pinas_mpc_prep_free(a);
    pinas_mpc_prep_free(b);
    pinas_mpc_mask_free(mask);
    return h;
}

/* Every field of the golden header, as literals (a change to the format, the architecture hash or
 * the mask id shows here) and as what the runtime computes for the net (material sizes: the plan's);
 * the dealer reproduces the file byte for byte, and so does writing back what was read. The dealer's
 * per-node counts live in the node sections (formats 4 and 5), not here. Set PINAS_UPDATE_GOLDEN=1 to
 * rewrite the file after an intended format change (or a change of the gates' key sizes). */
static void test_golden_header(void)
{
    pinas_net *net = tiny(PINAS_CAND_RELU);
    size_t dl = 0, gl = 0;
    uint8_t *dealt = dealt_header(net, &dl);
    if (getenv("PINAS_UPDATE_GOLDEN")) spit(GOLDEN_HEADER, dealt, dl);
    uint8_t *golden = slurp(GOLDEN_HEADER, &gl);
    CU_ASSERT_EQUAL_FATAL(gl, 512); /* 96 fixed + 11 nodes x 32 + 8, padded to 64 */
    CU_ASSERT_EQUAL(dl, gl);
    CU_ASSERT(dl == gl && memcmp(dealt, golden, gl) == 0);

    pinas_mpc_prep pp = {0};
    CU_ASSERT_FATAL(prep_header_read(ctx, golden, gl, GOLDEN_HEADER, &pp) == PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 2;
    uint8_t seed[16], session[16];
    golden_seed(seed, session);
    CU_ASSERT(memcmp(golden, "PINASPRE", 8) == 0);
    CU_ASSERT_EQUAL(golden[8], 5);
    CU_ASSERT_EQUAL(golden[8], PINAS_MPC_PREP_VERSION);
    CU_ASSERT_EQUAL(pp.party, 0);
    CU_ASSERT_EQUAL(pp.hash, 0x419c07b5b1fdc71fULL);
    CU_ASSERT_EQUAL(pp.hash, pinas_mpc_arch_hash(net, &p));
    CU_ASSERT(memcmp(pp.session, session, 16) == 0);
    CU_ASSERT_EQUAL(pp.batch, 2);
    CU_ASSERT_EQUAL(pp.frac_bits, 16);
    CU_ASSERT_EQUAL(pp.cmp_bits, 64);
    CU_ASSERT_EQUAL(pp.cmp_high, 64);
    CU_ASSERT_EQUAL(pp.n_nodes, 11);
    CU_ASSERT_EQUAL(pp.n_nodes, pinas_net_n_nodes(net));
    CU_ASSERT_EQUAL(pp.mask_id, 0x6e7719143777fa9eULL);
    CU_ASSERT_EQUAL(pp.mask_id, mask_id_of(seed, pp.hash));
    CU_ASSERT(memcmp(pp.mask_seed, seed, 16) == 0);
    /* per node: comparison window, material bytes (the plan's), section offset and size */
    uint64_t total = 0, off = gl + 64;
    for (int i = 0; i < pp.n_nodes; i++) {
        pinas_mpc_cost c;
        CU_ASSERT_FATAL(pinas_mpc_cost_node(ctx, net, i, -1, &p, &c) == PINAS_OK);
        const uint8_t *r = golden + 96 + 32 * (size_t)i;
        CU_ASSERT_EQUAL(pp.node_bits[i], 64);
        CU_ASSERT_EQUAL(pp.node_high[i], 64);
        CU_ASSERT_EQUAL(pp.len[i], i ? c.offline.bytes[0] : 0);
        CU_ASSERT_EQUAL(rd64(r + 16), off);
        CU_ASSERT_EQUAL(rd64(r + 24), (pp.len[i] + 48 + 63) / 64 * 64);
        CU_ASSERT_EQUAL(pp.off[i], total);
        total = (total + pp.len[i] + 63) / 64 * 64;
        off += rd64(r + 24);
    }
    CU_ASSERT_EQUAL(pp.data_len, total);
    CU_ASSERT_EQUAL(rd64(golden + 96 + 11 * 32), off - gl - 64);
    for (size_t q = 84; q < 96; q++) CU_ASSERT_EQUAL(golden[q], 0); /* reserved */
    for (size_t q = 96 + 11 * 32 + 8; q < gl; q++) CU_ASSERT_EQUAL(golden[q], 0); /* padding */
    uint8_t *again = malloc(gl);
    prep_header_write(&pp, again);
    CU_ASSERT(memcmp(again, golden, gl) == 0);
    /* a header cut short or of another version is refused by name */
    pinas_mpc_prep q = {0};
    TU_ASSERT_ERR(ctx, prep_header_read(ctx, golden, 200, "h", &q), "truncated header");
    golden[8] = 3; /* one tag over the whole file */
    TU_ASSERT_ERR(ctx, prep_header_read(ctx, golden, gl, "h", &q), "format version 3; this pinas reads 5");
    free(q.node_bits), free(q.node_high), free(q.off), free(q.len), free(q.node_dealer);
    free(pp.node_bits), free(pp.node_high), free(pp.off), free(pp.len), free(pp.node_dealer);
    free(again);
    free(golden);
    free(dealt);
    pinas_net_free(net);
}

/* Format 5's section tags, recomputed from the layout in crypto/prep.c with OpenSSL alone: node i's
 * key is HMAC-SHA256(dealer key, "PINAS-PREP5-NODE" | header tag | u32 i), its tag Poly1305 under it
 * over the material and the dealer's two counts, then 16 zero bytes. */
static void test_section_tags(void)
{
    pinas_net *net = tiny(PINAS_CAND_RELU);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_prep *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, net, &p, NULL, &a, &b) == PINAS_OK);
    const char *path = tu_path("tags.prep");
    CU_ASSERT_FATAL(pinas_mpc_prep_save(ctx, b, path, KEY) == PINAS_OK);
    size_t len, hl;
    uint8_t *buf = slurp(path, &len);
    hl = hdr_len(buf);
    uint32_t n;
    memcpy(&n, buf + 52, 4);
    int checked = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t mlen = rd64(buf + 96 + 32 * (size_t)i + 8), off = rd64(buf + 96 + 32 * (size_t)i + 16);
        CU_ASSERT_FATAL(off + mlen + 48 <= len);
        uint8_t msg[16 + 32 + 4], nk[32], tag[16];
        memcpy(msg, "PINAS-PREP5-NODE", 16);
        memcpy(msg + 16, buf + hl, 32);
        memcpy(msg + 48, &i, 4);
        unsigned kl = 0;
        HMAC(EVP_sha256(), KEY, sizeof KEY, msg, sizeof msg, nk, &kl);
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
        EVP_MAC_CTX *mc = EVP_MAC_CTX_new(mac);
        size_t tl = 0;
        int ok = EVP_MAC_init(mc, nk, 32, NULL) && EVP_MAC_update(mc, buf + off, (size_t)mlen + 16) && EVP_MAC_final(mc, tag, &tl, 16);
        CU_ASSERT(ok && tl == 16);
        CU_ASSERT(memcmp(buf + off + mlen + 16, tag, 16) == 0);
        for (int q = 0; q < 16; q++) CU_ASSERT_EQUAL(buf[off + mlen + 32 + q], 0);
        checked += mlen > 0;
        EVP_MAC_CTX_free(mc);
        EVP_MAC_free(mac);
    }
    CU_ASSERT(checked >= 5);
    free(buf);
    pinas_mpc_prep_free(a);
    pinas_mpc_prep_free(b);
    pinas_net_free(net);
}

/* The weight-mask file: made 0600 on first use, the same mask after, a fresh one on request, refused
 * for another model; the dealer refuses a mask of another model. */
static void test_mask_file(void)
{
    pinas_net *n1 = tiny(PINAS_CAND_RELU), *n2 = tiny(PINAS_CAND_POLY);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    const char *dir = tu_path("masks");
    CU_ASSERT_FATAL(pinas_mkdir_p(ctx, dir) == PINAS_OK);
    uint64_t h1 = pinas_mpc_arch_hash(n1, &p), h2 = pinas_mpc_arch_hash(n2, &p);
    pinas_mpc_mask *m = NULL, *m2 = NULL;
    CU_ASSERT_FATAL(pinas_mpc_mask_open(ctx, dir, h1, 0, &m) == PINAS_OK);
    struct stat st;
    CU_ASSERT(stat(pinas_mpc_mask_path(m), &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
    CU_ASSERT_FATAL(pinas_mpc_mask_open(ctx, dir, h1, 0, &m2) == PINAS_OK);
    CU_ASSERT(memcmp(m->seed, m2->seed, 16) == 0);
    pinas_mpc_deal_opts o = {.mask = m};
    pinas_mpc_prep *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, n1, &p, &o, &a, &b) == PINAS_OK);
    uint64_t id = pinas_mpc_prep_mask_id(a);
    CU_ASSERT_EQUAL(id, pinas_mpc_prep_mask_id(b));
    CU_ASSERT_EQUAL(id, mask_id_of(m->seed, h1));
    pinas_mpc_prep_free(a), pinas_mpc_prep_free(b);
    pinas_mpc_mask_free(m2);
    CU_ASSERT_FATAL(pinas_mpc_mask_open(ctx, dir, h1, 1, &m2) == PINAS_OK); /* fresh */
    CU_ASSERT(memcmp(m->seed, m2->seed, 16) != 0);
    pinas_mpc_mask_free(m2);
    /* the file of n1 renamed to n2's name is another model's */
    char p2[512];
    snprintf(p2, sizeof p2, "%s/%016llx.mask", dir, (unsigned long long)h2);
    CU_ASSERT(rename(pinas_mpc_mask_path(m), p2) == 0);
    m2 = NULL;
    TU_ASSERT_ERR(ctx, pinas_mpc_mask_open(ctx, dir, h2, 0, &m2), "not a weight-mask file of this model");
    CU_ASSERT(m2 == NULL);
    TU_ASSERT_ERR(ctx, pinas_mpc_deal(ctx, n2, &p, &o, &a, &b), "another model");
    CU_ASSERT(a == NULL && b == NULL);
    pinas_mpc_mask_free(m);
    pinas_mpc_mask_free(NULL);
    pinas_net_free(n1), pinas_net_free(n2);
}

/* A model dir as the dealer and the client read it: the architecture and meta.json's mpc section. */
static void test_arch_load(void)
{
    pinas_net *n = tiny(PINAS_CAND_RELU);
    pinas_model *m = NULL;
    CU_ASSERT_FATAL(pinas_model_random(ctx, n, 3, &m) == PINAS_OK);
    m->meta.frac_bits = 12;
    m->meta.cmp_bits = 40;
    const char *dir = tu_path("archdir");
    CU_ASSERT_FATAL(pinas_model_save(ctx, dir, m) == PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_net *got = NULL;
    CU_ASSERT_FATAL(pinas_mpc_arch_load(ctx, dir, &got, &p) == PINAS_OK);
    CU_ASSERT_EQUAL(p.frac_bits, 12);
    CU_ASSERT_EQUAL(p.cmp_bits, 40);
    CU_ASSERT_EQUAL(pinas_net_hash(got), pinas_net_hash(n));
    pinas_net_free(got);
    /* without meta.json the parameters stay as they were */
    char mp[512];
    snprintf(mp, sizeof mp, "%s/meta.json", dir);
    CU_ASSERT(unlink(mp) == 0);
    pinas_mpc_params_default(&p);
    CU_ASSERT_FATAL(pinas_mpc_arch_load(ctx, dir, &got, &p) == PINAS_OK);
    CU_ASSERT_EQUAL(p.frac_bits, PINAS_FRAC_BITS_DEFAULT);
    CU_ASSERT_EQUAL(p.cmp_bits, PINAS_CMP_BITS_DEFAULT);
    pinas_net_free(got);
    /* a bad meta.json is named */
    tu_write(mp, "{\"format\": \"pinas-model/1\", \"mpc\": {\"frac_bits\": 99}}");
    got = (pinas_net *)1;
    TU_ASSERT_ERR(ctx, pinas_mpc_arch_load(ctx, dir, &got, &p), "meta.json");
    CU_ASSERT(got == NULL);
    TU_ASSERT_ERR(ctx, pinas_mpc_arch_load(ctx, tu_path("nowhere"), &got, &p), "net.json");
    pinas_model_free(m);
    pinas_net_free(n);
}

/* ------------------------------------------------------------------ two parties with a tap */

typedef struct {
    int role, port;
    pinas_chan *listener;
    const pinas_model *model;
    const pinas_net *net;
    const pinas_mpc_prep *prep;
    const float *x;
    float *logits;
    pinas_status s;
    char err[512];
    uint64_t hist[256], bytes;
} job;

static void tap(void *user, uint32_t tag, const void *payload, size_t len)
{
    job *j = user;
    if (tag >= 0xFFFF0000u && tag != 0xFFFF0002u) return; /* handshake and the output share are structured */
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++) j->hist[p[i]]++;
    j->bytes += len;
}

static void *run(void *arg)
{
    job *j = arg;
    pinas_ctx *c = pinas_ctx_create();
    pinas_chan *ch = j->listener;
    if (j->role == 0) {
        j->s = pinas_chan_accept(c, ch, 5000, "client", &(pinas_chan_auth){.insecure = 1});
    } else {
        char hp[32];
        snprintf(hp, sizeof hp, "127.0.0.1:%d", j->port);
        j->s = pinas_chan_connect(c, hp, 5000, "server", &(pinas_chan_auth){.insecure = 1}, &ch);
        if (!j->s) pinas_chan_set_tap(ch, tap, j);
    }
    if (!j->s) {
        pinas_mpc_party_args a = {.role = j->role, .model = j->model, .net = j->net, .prep = j->prep, .x = j->x,
                                  .logits = j->logits, .timeout_ms = 5000};
        j->s = pinas_mpc_party_run(c, ch, &a, NULL);
    }
    if (j->s) snprintf(j->err, sizeof j->err, "%s", pinas_errmsg(c));
    pinas_chan_free(ch); /* the listener too, for the server: a failing party closes at once */
    pinas_ctx_free(c);
    return NULL;
}

static void pair(const pinas_model *ms, const pinas_net *nc, const pinas_mpc_prep *p0, const pinas_mpc_prep *p1,
                 const float *x, float *lg, job *js, job *jc)
{
    pinas_chan *l = NULL;
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    *js = (job){.role = 0, .listener = l, .model = ms, .prep = p0};
    *jc = (job){.role = 1, .port = pinas_chan_port(l), .net = nc, .prep = p1, .x = x, .logits = lg};
    pthread_t a, b;
    pthread_create(&a, NULL, run, js);
    pthread_create(&b, NULL, run, jc);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
}

static void test_mismatches_refused(void)
{
    pinas_net *n1 = tiny(PINAS_CAND_RELU), *n2 = tiny(PINAS_CAND_POLY);
    pinas_model *m1 = NULL, *m2 = NULL;
    CU_ASSERT_FATAL(pinas_model_random(ctx, n1, 1, &m1) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_model_random(ctx, n2, 1, &m2) == PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_prep *a = NULL, *b = NULL, *a2 = NULL, *b2 = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, n1, &p, NULL, &a, &b) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, n1, &p, NULL, &a2, &b2) == PINAS_OK);
    float x[3 * 8 * 8] = {0}, lg[4];
    job js, jc;
    /* preprocessing for another model: the server refuses before talking */
    pair(m2, n2, a, b, x, lg, &js, &jc);
    CU_ASSERT(js.s != PINAS_OK && strstr(js.err, "another model") != NULL);
    CU_ASSERT(jc.s != PINAS_OK);
    /* the client's file instead of the server's */
    pair(m1, n1, b, b, x, lg, &js, &jc);
    CU_ASSERT(js.s != PINAS_OK && strstr(js.err, "party 1") != NULL);
    CU_ASSERT(jc.s != PINAS_OK);
    /* files of two different dealer runs: the handshake catches the session id */
    pair(m1, n1, a, b2, x, lg, &js, &jc);
    CU_ASSERT(js.s != PINAS_OK && strstr(js.err, "session id") != NULL);
    CU_ASSERT(jc.s != PINAS_OK && strstr(jc.err, "session id") != NULL);
    /* the matching pair works */
    pair(m1, n1, a, b, x, lg, &js, &jc);
    CU_ASSERT(js.s == PINAS_OK && jc.s == PINAS_OK);
    pinas_mpc_prep_free(a), pinas_mpc_prep_free(b), pinas_mpc_prep_free(a2), pinas_mpc_prep_free(b2);
    pinas_model_free(m1), pinas_model_free(m2);
    pinas_net_free(n1), pinas_net_free(n2);
}

/* What the client receives (the server's masked openings and its masked weights W - A; not the handshake
 * or the logits share, which the client may know) looks uniform: chi-square over byte values, 255
 * degrees of freedom, below the 0.999 quantile (330.5), on >= 1 MB. */
static void test_client_view_uniform(void)
{
    pinas_net *n = tiny(PINAS_CAND_RELU);
    pinas_model *m = NULL;
    CU_ASSERT_FATAL(pinas_model_random(ctx, n, 5, &m) == PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 256;
    pinas_mpc_prep *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, n, &p, NULL, &a, &b) == PINAS_OK);
    float *x = malloc(sizeof(float) * 256 * 192), lg[256 * 4];
    for (int i = 0; i < 256 * 192; i++) x[i] = (float)((i % 17) - 8) * 0.25f; /* structured input */
    job js, jc;
    pair(m, n, a, b, x, lg, &js, &jc);
    CU_ASSERT_FATAL(js.s == PINAS_OK && jc.s == PINAS_OK);
    double e = (double)jc.bytes / 256, chi = 0;
    for (int v = 0; v < 256; v++) chi += (jc.hist[v] - e) * (jc.hist[v] - e) / e;
    fprintf(stderr, "\n  client received %llu bytes; chi-square %.1f (255 dof, 0.999 quantile 330.5)\n",
            (unsigned long long)jc.bytes, chi);
    CU_ASSERT(jc.bytes >= 1000000);
    CU_ASSERT(chi < 330.5);
    free(x);
    pinas_mpc_prep_free(a), pinas_mpc_prep_free(b);
    pinas_model_free(m);
    pinas_net_free(n);
}

/* frac_bits is bounded per net by the elements it truncates: a 32x32 ResNet-18 allows 18, an ImageNet-sized
 * one 17, and the dealer refuses above the net's bound naming it. */
static void test_frac_bits_bound_per_net(void)
{
    const char *relu[] = {"relu"}, *maxp[] = {"maxpool"};
    pinas_net *small = tu_resnet(ctx, 18, 0, "cifar", 32, 10, relu, 1, maxp, 1);
    pinas_net *big = tu_resnet(ctx, 18, 0, "imagenet", 224, 1000, relu, 1, maxp, 1);
    pinas_net *tn = tiny(PINAS_CAND_RELU);
    CU_ASSERT_EQUAL(pinas_mpc_frac_bits_bound(ctx, tn), PINAS_FRAC_BITS_MAX);
    CU_ASSERT_EQUAL(pinas_mpc_frac_bits_bound(ctx, small), 18);
    CU_ASSERT_EQUAL(pinas_mpc_frac_bits_bound(ctx, big), 17);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.frac_bits = 18;
    pinas_mpc_prep *a = NULL, *b = NULL;
    TU_ASSERT_ERR(ctx, pinas_mpc_deal(ctx, big, &p, NULL, &a, &b), "frac_bits 18 is above what the ring supports for net");
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT(strstr(pinas_errmsg(ctx), "allow at most 17") != NULL);
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, tn, &p, NULL, &a, &b) == PINAS_OK);
    pinas_mpc_prep_free(a);
    pinas_mpc_prep_free(b);
    pinas_net_free(small);
    pinas_net_free(big);
    pinas_net_free(tn);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"prep file: round trip, 0600, corruption rejected", test_roundtrip_and_corruption},
                   {"prep file: forged fields rejected naming file and field", test_forged_fields_rejected},
                   {"streaming dealer: files verified, summary holds no material, both or neither", test_streaming_dealer},
                   {"dealer key file: 0600, fresh, mode and format checked", test_dealer_key_file},
                   {"prep header: golden file, every field, written back byte for byte", test_golden_header},
                   {"prep format 5: Poly1305 section tags under per-node keys", test_section_tags},
                   {"weight-mask file: 0600, kept, fresh, another model's refused", test_mask_file},
                   {"model dir: architecture and mpc parameters", test_arch_load},
                   {"mismatched model, party or session refused", test_mismatches_refused},
                   {"client's received bytes pass chi-square", test_client_view_uniform},
                   {"frac_bits bounded per net, refused above it", test_frac_bits_bound_per_net}};
    int rc = tu_run("crypto_prep", t, 11);
    pinas_ctx_free(ctx);
    return rc;
}
