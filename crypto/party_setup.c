/* One party's session start: the server's encoded parameters, the handshake, the client's mask cache, the setup messages. */
#define _GNU_SOURCE
#include "party_internal.h"

#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ server weights */

static int bits_of(uint64_t v)
{
    int64_t x = (int64_t)v;
    uint64_t a = x < 0 ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x;
    int b = 0;
    while (b < 64 && (a >> b)) b++;
    return b;
}

/* The batchnorm folded into matmul node i (pn->bn_node): scale γ/sqrt(var+eps) and shift inputs.
 * All NULL without one. */
typedef struct {
    const float *g, *be, *mu, *var;
    double eps;
} folded_bn;

static pinas_status node_bn(eng *e, const pl_node *pn, folded_bn *bn)
{
    memset(bn, 0, sizeof *bn);
    if (pn->bn_node < 0) return PINAS_OK;
    bn->g = pinas_model_param(e->model, pn->bn_node, "weight");
    bn->be = pinas_model_param(e->model, pn->bn_node, "bias");
    bn->mu = pinas_model_param(e->model, pn->bn_node, "running_mean");
    bn->var = pinas_model_param(e->model, pn->bn_node, "running_var");
    bn->eps = pinas_net_node(e->net, pn->bn_node)->eps;
    if (!bn->g || !bn->be || !bn->mu || !bn->var)
        return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: batchnorm parameters missing", pinas_net_node(e->net, pn->bn_node)->id);
    return PINAS_OK;
}

/* Encodes matmul node i's weights with the following batchnorm folded in, W' = W·γ/sqrt(var+eps), into
 * W (groups·M·K). The server keeps only the float model and encodes a node's weights when it sends
 * them in setup and again when the node runs, into one scratch buffer (e->wbuf), instead of holding
 * every node's encoding. wbits (may be NULL): the largest bit length of an entry, plus one. */
pinas_status eng_node_weights(eng *e, int i, uint64_t *W, int *wbits)
{
    const pl_node *pn = &e->pl.nodes[i];
    const pinas_node *n = pinas_net_node(e->net, i);
    const float *w = pinas_model_param(e->model, i, "weight");
    if (!w) return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: weight missing", n->id);
    folded_bn bn;
    pinas_status s = node_bn(e, pn, &bn);
    if (s) return s;
    int64_t rows = (int64_t)pn->groups * pn->M;
    size_t K = (size_t)pn->K;
    int mb = 1;
    double two_f = ldexp(1.0, e->f);
#pragma omp parallel for num_threads(e->pl.threads) schedule(static) reduction(max : mb) if (e->pl.threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        double sc = bn.g ? bn.g[r] / sqrt((double)bn.var[r] + bn.eps) : 1.0;
        uint64_t *o = W + (size_t)r * K;
        const float *x = w + (size_t)r * K;
        for (size_t q = 0; q < K; q++) o[q] = ring_encode_scaled(x[q] * sc * two_f); /* = pinas_ring_encode(x·sc, f) */
        if (wbits)
            for (size_t q = 0; q < K; q++) {
                int bb = bits_of(o[q]);
                if (bb > mb) mb = bb;
            }
    }
    if (wbits) *wbits = mb + 1;
    return PINAS_OK;
}

uint64_t *eng_weights_at(eng *e, int i)
{
    const pl_node *pn = &e->pl.nodes[i];
    if (e->wbuf) return e->wbuf;
    return (uint64_t *)(void *)prep_scratch(e->pp, i, 8 * (size_t)pn->groups * pn->M * pn->K);
}

/* The server's biases (with the batchnorm folded in: b' = (b - μ)·γ/sqrt(var+eps) + β, 2f bits) and
 * its weight scratch, the size of the largest matmul node's weights. */
static pinas_status server_weights(eng *e)
{
    size_t cap = 0;
    for (int i = 0; i < e->pl.n_nodes; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        const pinas_node *n = pinas_net_node(e->net, i);
        if (pn->kind != PL_MATMUL) continue;
        size_t rows = (size_t)pn->groups * pn->M, mk = rows * (size_t)pn->K;
        if (mk > cap) cap = mk;
        const float *b = n->bias ? pinas_model_param(e->model, i, "bias") : NULL;
        if (!pinas_model_param(e->model, i, "weight")) return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: weight missing", n->id);
        folded_bn bn;
        pinas_status s = node_bn(e, pn, &bn);
        if (s) return s;
        if (!b && !bn.g) continue;
        e->bias[i] = malloc(8 * rows);
        if (!e->bias[i]) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        for (size_t r = 0; r < rows; r++) {
            double bv = b ? b[r] : 0.0;
            if (bn.g) bv = (bv - bn.mu[r]) * (bn.g[r] / sqrt((double)bn.var[r] + bn.eps)) + bn.be[r];
            e->bias[i][r] = pinas_ring_encode(bv, 2 * e->f);
        }
    }
    e->wcap = cap;
    e->wbuf = malloc(8 * (cap ? cap : 1));
    return e->wbuf ? PINAS_OK : pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------ handshake and setup */

void pinas_mpc_hello_encode(const pinas_mpc_hello *h, uint8_t out[HANDSHAKE_BYTES])
{
    memset(out, 0, HANDSHAKE_BYTES);
    memcpy(out, "PINASHS1", 8);
    memcpy(out + 8, &h->version, 4);
    memcpy(out + 12, &h->role, 4);
    memcpy(out + 16, &h->batch, 4);
    memcpy(out + 20, &h->n_nodes, 4);
    memcpy(out + 24, &h->hash, 8);
    memcpy(out + 32, h->session, 16);
    memcpy(out + 48, &h->mask_id, 8);
    out[56] = h->flags;
}

pinas_status pinas_mpc_hello_check(pinas_ctx *ctx, const pinas_mpc_hello *mine, const uint8_t *theirs, size_t n,
                                   pinas_mpc_hello *out, char *why, size_t wn)
{
    const char *peer = mine->role == 0 ? "client" : "server";
    uint32_t want_role = 1 - mine->role;
    pinas_mpc_hello t = {0};
    snprintf(why, wn, "invalid handshake");
    if (n != HANDSHAKE_BYTES)
        return pinas_error(ctx, PINAS_EPEER, "peer %s, layer handshake: %zu bytes, expected %d", peer, n, HANDSHAKE_BYTES);
    if (memcmp(theirs, "PINASHS1", 8) != 0)
        return pinas_error(ctx, PINAS_EPEER, "peer %s, layer handshake: not a pinas party (bad handshake magic)", peer);
    memcpy(&t.version, theirs + 8, 4);
    memcpy(&t.role, theirs + 12, 4);
    memcpy(&t.batch, theirs + 16, 4);
    memcpy(&t.n_nodes, theirs + 20, 4);
    memcpy(&t.hash, theirs + 24, 8);
    memcpy(t.session, theirs + 32, 16);
    memcpy(&t.mask_id, theirs + 48, 8);
    t.flags = theirs[56];
    int reserved_zero = 1;
    for (int k = 57; k < HANDSHAKE_BYTES; k++) reserved_zero &= theirs[k] == 0;
    snprintf(why, wn, "protocol version %u", mine->version);
    if (t.version != mine->version)
        return pinas_error(ctx, PINAS_EPEER, "peer %s, layer handshake: protocol version %u, ours is %u", peer, t.version, mine->version);
    snprintf(why, wn, "role %u, expected %u", t.role, want_role);
    if (t.role != want_role)
        return pinas_error(ctx, PINAS_EPEER, "peer %s, layer handshake: role %u (0x%08x), expected %u (%s)%s", peer, t.role, t.role,
                           want_role, peer, t.role == mine->role ? ": both parties claim the same role" : "");
    snprintf(why, wn, "model hash differs (another model or fixed point)");
    if (t.hash != mine->hash || t.n_nodes != mine->n_nodes)
        return pinas_error(ctx, PINAS_EPEER,
                           "peer %s, layer handshake: model hash mismatch (ours %016llx with %u nodes, theirs %016llx with "
                           "%u nodes): both parties need the same model and fixed-point parameters",
                           peer, (unsigned long long)mine->hash, mine->n_nodes, (unsigned long long)t.hash, t.n_nodes);
    snprintf(why, wn, "preprocessing session id differs");
    if (memcmp(t.session, mine->session, 16) != 0)
        return pinas_error(ctx, PINAS_EPEER,
                           "peer %s, layer handshake: preprocessing session id differs: the two preprocessing files come "
                           "from different dealer runs",
                           peer);
    snprintf(why, wn, "batch %u, expected %u", t.batch, mine->batch);
    if (t.batch != mine->batch)
        return pinas_error(ctx, PINAS_EPEER, "peer %s, layer handshake: batch %u, ours is %u", peer, t.batch, mine->batch);
    snprintf(why, wn, "weight masks differ");
    if (t.mask_id != mine->mask_id)
        return pinas_error(ctx, PINAS_EPEER, "peer %s, layer handshake: the preprocessing files use different weight masks", peer);
    snprintf(why, wn, "invalid flags or reserved bytes");
    /* only the client may set the flag (it holds W - A for this mask) */
    if (t.flags > (mine->role == 0 ? 1 : 0) || !reserved_zero)
        return pinas_error(ctx, PINAS_EPEER, "peer %s, layer handshake: invalid flags or reserved bytes (0x%02x)", peer, t.flags);
    why[0] = 0;
    if (out) *out = t;
    return PINAS_OK;
}

/* The client speaks first; the server checks every field before it answers, so that nothing of the
 * server's (not even its session id) goes to a peer that does not hold the matching preprocessing.
 * Counted as one round (the cost model's figure): the two messages are each other's reply. */
pinas_status eng_handshake(eng *e)
{
    uint8_t mine[HANDSHAKE_BYTES], theirs[HANDSHAKE_BYTES];
    pinas_mpc_hello me = {.version = PINAS_MPC_PROTOCOL_VERSION, .role = (uint32_t)e->role, .batch = (uint32_t)e->batch,
                          .n_nodes = (uint32_t)e->pl.n_nodes, .hash = e->pp->hash, .mask_id = e->pp->mask_id,
                          .flags = (uint8_t)(e->role == 1 && e->cached != NULL)}; /* the client has W - A for this mask */
    memcpy(me.session, e->pp->session, 16);
    pinas_mpc_hello_encode(&me, mine);
    pinas_chan_set_layer(e->ch, "handshake");
    pinas_status s;
    char why[HANDSHAKE_BYTES - 8] = "";
    if (e->role == 1) {
        s = pinas_chan_send(e->ctx, e->ch, TAG_HANDSHAKE, mine, sizeof mine);
        if (!s) s = pinas_chan_recv(e->ctx, e->ch, TAG_HANDSHAKE, theirs, sizeof theirs);
        if (!s && memcmp(theirs, "PINASREJ", 8) == 0) {
            theirs[HANDSHAKE_BYTES - 1] = 0;
            for (int k = 8; k < HANDSHAKE_BYTES - 1; k++) /* the peer's text: printable only */
                if (theirs[k] && (theirs[k] < 32 || theirs[k] > 126)) theirs[k] = '?';
            s = pinas_error(e->ctx, PINAS_EPEER, "peer server, layer handshake: the server refused our handshake: %s",
                            (const char *)theirs + 8);
        }
        if (!s) s = pinas_mpc_hello_check(e->ctx, &me, theirs, sizeof theirs, NULL, why, sizeof why);
    } else {
        s = pinas_chan_recv(e->ctx, e->ch, TAG_HANDSHAKE, theirs, sizeof theirs);
        if (!s) s = pinas_mpc_hello_check(e->ctx, &me, theirs, sizeof theirs, NULL, why, sizeof why);
        if (!s) {
            s = pinas_chan_send(e->ctx, e->ch, TAG_HANDSHAKE, mine, sizeof mine);
        } else if (why[0]) { /* refused: tell the client why, and nothing of ours */
            uint8_t rej[HANDSHAKE_BYTES] = {0};
            memcpy(rej, "PINASREJ", 8);
            snprintf((char *)rej + 8, HANDSHAKE_BYTES - 8, "%s", why);
            pinas_ctx *quiet = pinas_ctx_create(); /* keeps our own error on e->ctx */
            if (quiet) (void)!pinas_chan_send(quiet, e->ch, TAG_HANDSHAKE, rej, sizeof rej);
            pinas_ctx_free(quiet);
        }
    }
    e->cur.rounds++;
    e->cur.bytes[0] += sizeof mine;
    e->cur.bytes[1] += sizeof mine;
    if (!s && e->role == 0) e->peer_has_masked = theirs[56] != 0;
    return s;
}

/* ------------------------------------------------------------------ the client's mask cache */

/* The cache file of W - A for one model and mask: "PINASMWT" | u64 arch hash | u64 mask id | u64 bytes
 * | data (every matmul node's W - A, in node order) | SHA-256 of everything before it. Read and written
 * node by node: the client never holds more than one node's masked weights. */
#define CACHE_HEAD 32

static char *cache_path(const eng *e)
{
    return pinas_strfmt("%s/%016llx-%016llx.masked", e->mask_cache, (unsigned long long)e->pp->hash,
                        (unsigned long long)e->pp->mask_id);
}

static void cache_head(const eng *e, size_t bytes, uint8_t h[CACHE_HEAD])
{
    uint64_t n = bytes;
    memcpy(h, "PINASMWT", 8);
    memcpy(h + 8, &e->pp->hash, 8);
    memcpy(h + 16, &e->pp->mask_id, 8);
    memcpy(h + 24, &n, 8);
}

/* SHA-256 of the first n bytes of f (from its start), read in bounded chunks; 0 on a short read. */
static int cache_digest(FILE *f, size_t n, uint8_t dig[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *chunk = malloc(1u << 20);
    int ok = md && chunk && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && fseek(f, 0, SEEK_SET) == 0;
    while (ok && n > 0) {
        size_t k = n < (1u << 20) ? n : (1u << 20);
        ok = fread(chunk, 1, k, f) == k && EVP_DigestUpdate(md, chunk, k) == 1;
        n -= k;
    }
    unsigned dl = 0;
    ok = ok && EVP_DigestFinal_ex(md, dig, &dl) == 1;
    if (chunk) OPENSSL_cleanse(chunk, 1u << 20);
    free(chunk);
    EVP_MD_CTX_free(md);
    return ok;
}

/* Checks the cache of W - A for this model and mask (header and digest, streamed) and keeps it open at
 * its data in e->cached, which setup then reads node by node; a missing or bad cache leaves e->cached
 * NULL (the server then sends W - A, and the cache is rewritten): not an error. */
void eng_cache_load(eng *e)
{
    size_t want = eng_masked_bytes(e);
    if (!e->mask_cache || want == 0) return;
    char *path = cache_path(e);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f) return;
    uint8_t head[CACHE_HEAD], mine[CACHE_HEAD], dig[32], tag[32];
    struct stat st;
    cache_head(e, want, mine);
    int ok = fstat(fileno(f), &st) == 0 && (size_t)st.st_size == CACHE_HEAD + want + 32 &&
             fread(head, 1, CACHE_HEAD, f) == CACHE_HEAD && memcmp(head, mine, CACHE_HEAD) == 0 &&
             cache_digest(f, CACHE_HEAD + want, dig) && fread(tag, 1, 32, f) == 32 && CRYPTO_memcmp(dig, tag, 32) == 0 &&
             fseek(f, CACHE_HEAD, SEEK_SET) == 0;
    if (ok) e->cached = f;
    else fclose(f);
}

/* A cache being written as the server's W - A arrives (nothing when the client keeps no cache). */
typedef struct {
    pinas_file_atomic *f;
    EVP_MD_CTX *md;
} cache_writer;

static pinas_status cache_put(eng *e, cache_writer *w, const void *data, size_t n)
{
    if (!w->f) return PINAS_OK;
    if (EVP_DigestUpdate(w->md, data, n) != 1) return pinas_error(e->ctx, PINAS_EINTERNAL, "SHA-256 failed");
    return pinas_file_atomic_write(e->ctx, w->f, data, n);
}

static pinas_status cache_begin(eng *e, cache_writer *w)
{
    memset(w, 0, sizeof *w);
    size_t bytes = eng_masked_bytes(e);
    if (!e->mask_cache || bytes == 0) return PINAS_OK;
    char *path = cache_path(e);
    pinas_status s = path ? pinas_mkdir_p(e->ctx, e->mask_cache) : pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_file_atomic_open(e->ctx, path, 0600, &w->f);
    free(path);
    w->md = s ? NULL : EVP_MD_CTX_new();
    if (!s && (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1))
        s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    uint8_t head[CACHE_HEAD];
    cache_head(e, bytes, head);
    if (!s) s = cache_put(e, w, head, sizeof head);
    return s;
}

/* Commits the cache (ok) or removes its temporary file; frees w either way. */
static pinas_status cache_end(eng *e, cache_writer *w, int ok)
{
    pinas_status s = PINAS_OK;
    if (w->f && ok) {
        uint8_t dig[32];
        unsigned dl = 0;
        s = EVP_DigestFinal_ex(w->md, dig, &dl) == 1 ? PINAS_OK : pinas_error(e->ctx, PINAS_EINTERNAL, "SHA-256 failed");
        if (!s) s = pinas_file_atomic_write(e->ctx, w->f, dig, sizeof dig);
        if (!s) s = pinas_file_atomic_commit(e->ctx, w->f);
        else pinas_file_atomic_abort(w->f);
    } else {
        pinas_file_atomic_abort(w->f);
    }
    EVP_MD_CTX_free(w->md);
    memset(w, 0, sizeof *w);
    return s;
}

/* ------------------------------------------------------------------ the setup messages */

/* The masked weights W - A, one message per matmul node in node order (none when the client has them
 * cached), then one message with the poly coefficients: a one-way stream from the server, counted as
 * one round, that neither party holds whole. The client computes (W - A)·cols(B) + C1 of each node as
 * it arrives, before it touches its input. */
size_t eng_masked_bytes(const eng *e)
{
    size_t t = 0;
    for (int i = 0; i < e->pl.n_nodes; i++)
        if (e->pl.nodes[i].kind == PL_MATMUL) t += 8 * (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K;
    return t;
}

static size_t poly_bytes(const eng *e)
{
    size_t t = 0;
    for (int i = 0; i < e->pl.n_nodes; i++)
        if (e->pl.nodes[i].kind == PL_POLY) t += 8 * 3 * (size_t)e->pl.nodes[i].poly_channels;
    return t;
}

/* A's expansion in chunks of this many elements (even: every chunk but a node's last is whole AES
 * blocks, so the chunks draw exactly the stream of the dealer's one request per node). */
#define MASK_CHUNK ((size_t)1 << 16)

/* Server: node i's W - A into e->wbuf (A expanded from the mask seed by the same request sequence as
 * the dealer's), and its weight bits into e->wbits[i]. */
static pinas_status server_masked(eng *e, int i, pinas_prg *mask, uint64_t *A)
{
    const pl_node *pn = &e->pl.nodes[i];
    size_t mk = (size_t)pn->groups * pn->M * pn->K;
    pinas_status s = eng_node_weights(e, i, e->wbuf, &e->wbits[i]);
    for (size_t o = 0; o < mk && !s; o += MASK_CHUNK) {
        size_t k = mk - o < MASK_CHUNK ? mk - o : MASK_CHUNK;
        pinas_prg_bytes(mask, A, 8 * k);
        for (size_t q = 0; q < k; q++) e->wbuf[o + q] -= A[q];
    }
    return s;
}

/* Server: the setup messages (W - A node by node unless the client has them cached, then the poly
 * coefficients). */
static pinas_status server_setup(eng *e, int send_masked, uint64_t *poly)
{
    pinas_prg *mask = NULL;
    pinas_status s = pinas_prg_create(e->ctx, e->pp->mask_seed, &mask);
    uint64_t *A = malloc(8 * MASK_CHUNK);
    if (!A && !s) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    size_t o = 0;
    for (int i = 0; i < e->pl.n_nodes && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind == PL_MATMUL) {
            s = server_masked(e, i, mask, A); /* the weight bits are needed even when nothing is sent */
            if (!s && send_masked) s = eng_send(e, TAG_SETUP, e->wbuf, 8 * (size_t)pn->groups * pn->M * pn->K);
        } else if (pn->kind == PL_POLY) {
            size_t c = (size_t)pn->poly_channels;
            memcpy(poly + o, e->pa[i], 8 * c);
            memcpy(poly + o + c, e->pw1[i], 8 * c);
            memcpy(poly + o + 2 * c, e->pb[i], 8 * c);
            o += 3 * c;
        }
    }
    if (!s) s = eng_send(e, TAG_SETUP, poly, 8 * o);
    int fits = 1; /* does the preprocessing's layer buffer hold every node's weights after its section? */
    for (int i = 0; i < e->pl.n_nodes; i++)
        if (e->pl.nodes[i].kind == PL_MATMUL)
            fits &= prep_scratch_room(e->pp, i) >= 8 * (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K;
    if (fits && e->wbuf) { /* then the online phase encodes them there (eng_weights_at) and the scratch goes */
        OPENSSL_cleanse(e->wbuf, 8 * e->wcap);
        free(e->wbuf);
        e->wbuf = NULL;
        e->wcap = 0;
    }
    if (A) OPENSSL_cleanse(A, 8 * MASK_CHUNK);
    free(A);
    pinas_prg_free(mask);
    return s;
}

/* Client: (W - A)·cols(B) + C1 for matmul node i, before the input is touched. */
static pinas_status client_product(eng *e, int i, const pl_node *pn, const uint64_t *masked)
{
    size_t mn = (size_t)pn->groups * pn->M * pn->N;
    pinas_status s = prep_fetch(e->ctx, e->pp, i); /* from a file: this node's section alone, verified */
    if (s) return pinas_error_prefix(e->ctx, s, "client: node %s", pinas_net_node(e->net, i)->id);
    const uint64_t *B = (const uint64_t *)(const void *)prep_node(e->pp, i), *C1 = B + pn->n_in;
    uint64_t *cols = malloc(8 * (size_t)pn->K * (size_t)pn->N);
    e->Y1[i] = malloc(8 * (mn ? mn : 1));
    if (!cols || !e->Y1[i]) {
        free(cols);
        return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    }
    memcpy(e->Y1[i], C1, 8 * mn);
    for (int g = 0; g < pn->groups; g++) {
        mm_cols(e->net, i, pn, B, g, cols);
        pinas_ring_gemm_mt(e->pl.threads, pn->M, (int)pn->N, pn->K, masked + (size_t)g * pn->M * pn->K, pn->K, cols,
                           (int)pn->N, e->Y1[i] + (size_t)g * pn->M * pn->N, (int)pn->N, 1);
    }
    free(cols);
    return PINAS_OK;
}

/* Client: node i's W - A, from the server (then into the cache being written) or from the cache. */
static pinas_status client_masked(eng *e, int send_masked, cache_writer *cw, uint64_t *buf, size_t bytes)
{
    if (!send_masked)
        return fread(buf, 1, bytes, e->cached) == bytes
                   ? PINAS_OK
                   : pinas_error(e->ctx, PINAS_EIO, "mask cache in %s: short read (the file changed while in use)",
                                 e->mask_cache);
    pinas_status s = eng_recv(e, TAG_SETUP, buf, bytes);
    return s ? s : cache_put(e, cw, buf, bytes);
}

/* Client: the setup messages, node by node (masked weights from them or from the cache), each matmul
 * node's product as its masked weights arrive, then the poly coefficients. */
static pinas_status client_setup(eng *e, int send_masked, uint64_t *poly, size_t pb)
{
    size_t cap = 1;
    for (int i = 0; i < e->pl.n_nodes; i++)
        if (e->pl.nodes[i].kind == PL_MATMUL && (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K > cap)
            cap = (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K;
    cache_writer cw = {0};
    uint64_t *masked = malloc(8 * cap);
    pinas_status s = masked ? PINAS_OK : pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    if (!s && send_masked) s = cache_begin(e, &cw);
    for (int i = 0; i < e->pl.n_nodes && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind != PL_MATMUL) continue;
        s = client_masked(e, send_masked, &cw, masked, 8 * (size_t)pn->groups * pn->M * pn->K);
        if (!s) s = client_product(e, i, pn, masked);
    }
    if (!s) s = eng_recv(e, TAG_SETUP, poly, pb);
    size_t o = 0;
    for (int i = 0; i < e->pl.n_nodes && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind != PL_POLY) continue;
        size_t c = (size_t)pn->poly_channels;
        e->pa[i] = malloc(8 * c);
        e->pw1[i] = malloc(8 * c);
        e->pb[i] = malloc(8 * c);
        if (!e->pa[i] || !e->pw1[i] || !e->pb[i]) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        if (s) break;
        memcpy(e->pa[i], poly + o, 8 * c);
        memcpy(e->pw1[i], poly + o + c, 8 * c);
        memcpy(e->pb[i], poly + o + 2 * c, 8 * c);
        o += 3 * c;
    }
    pinas_status sc = cache_end(e, &cw, !s);
    if (masked) OPENSSL_cleanse(masked, 8 * cap);
    free(masked);
    return s ? s : sc;
}

pinas_status eng_setup(eng *e, size_t *total_out)
{
    size_t mb = eng_masked_bytes(e), pb = poly_bytes(e);
    int send_masked = e->role == 0 ? !e->peer_has_masked : e->cached == NULL;
    *total_out = (send_masked ? mb : 0) + pb;
    uint64_t *poly = malloc(pb ? pb : 8);
    if (!poly) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    pinas_chan_set_layer(e->ch, "setup");
    uint64_t rounds = e->cur.rounds;
    pinas_status s = e->role == 0 ? server_setup(e, send_masked, poly) : client_setup(e, send_masked, poly, pb);
    e->cur.rounds = rounds + 1; /* the messages flow one way, none waits for a reply: one round */
    free(poly);
    return s;
}

static pinas_status server_poly(eng *e)
{
    for (int i = 0; i < e->pl.n_nodes; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind != PL_POLY) continue;
        const pinas_node *n = pinas_net_node(e->net, i);
        const float *w0 = pinas_model_param(e->model, i, "w0"), *w1 = pinas_model_param(e->model, i, "w1"),
                    *b = pinas_model_param(e->model, i, "b");
        if (!w0 || !w1 || !b) return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: poly parameters w0, w1, b missing", n->id);
        size_t c = (size_t)pn->poly_channels;
        e->pa[i] = malloc(8 * c);
        e->pw1[i] = malloc(8 * c);
        e->pb[i] = malloc(8 * c);
        if (!e->pa[i] || !e->pw1[i] || !e->pb[i]) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
        for (size_t q = 0; q < c; q++) {
            e->pa[i][q] = pinas_ring_encode(n->poly_scale * w0[q], e->f);
            e->pw1[i][q] = pinas_ring_encode(w1[q], e->f);
            e->pb[i][q] = pinas_ring_encode(b[q], 2 * e->f);
        }
    }
    return PINAS_OK;
}


pinas_status eng_server_params(eng *e)
{
    pinas_status s = server_weights(e);
    return s ? s : server_poly(e);
}
