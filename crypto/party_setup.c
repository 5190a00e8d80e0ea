/* One party's session start: the server's encoded parameters, the handshake, the client's mask cache, the setup message. */
#define _GNU_SOURCE
#include "party_internal.h"

#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ server weights */

static int bits_of(uint64_t v)
{
    int64_t x = (int64_t)v;
    uint64_t a = x < 0 ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x;
    int b = 0;
    while (b < 64 && (a >> b)) b++;
    return b;
}

/* Encodes conv/linear weights with the following batchnorm folded in: W' = W·γ/sqrt(var+eps),
 * b' = (b - μ)·γ/sqrt(var+eps) + β. */
static pinas_status server_weights(eng *e)
{
    const pinas_model *m = e->model;
    for (int i = 0; i < e->pl.n_nodes; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        const pinas_node *n = pinas_net_node(e->net, i);
        if (pn->kind == PL_MATMUL) {
            size_t rows = (size_t)pn->groups * pn->M, K = (size_t)pn->K;
            const float *w = pinas_model_param(m, i, "weight"), *b = n->bias ? pinas_model_param(m, i, "bias") : NULL;
            if (!w) return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: weight missing", n->id);
            const float *g = NULL, *be = NULL, *mu = NULL, *var = NULL;
            double eps = 0;
            if (pn->bn_node >= 0) {
                g = pinas_model_param(m, pn->bn_node, "weight");
                be = pinas_model_param(m, pn->bn_node, "bias");
                mu = pinas_model_param(m, pn->bn_node, "running_mean");
                var = pinas_model_param(m, pn->bn_node, "running_var");
                eps = pinas_net_node(e->net, pn->bn_node)->eps;
                if (!g || !be || !mu || !var)
                    return pinas_error(e->ctx, PINAS_EFORMAT, "node %s: batchnorm parameters missing",
                                       pinas_net_node(e->net, pn->bn_node)->id);
            }
            e->W[i] = malloc(8 * rows * K);
            e->bias[i] = (b || g) ? malloc(8 * rows) : NULL;
            if (!e->W[i] || ((b || g) && !e->bias[i])) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
            int mb = 1;
            for (size_t r = 0; r < rows; r++) {
                double sc = g ? g[r] / sqrt((double)var[r] + eps) : 1.0;
                for (size_t q = 0; q < K; q++) {
                    uint64_t v = pinas_ring_encode(w[r * K + q] * sc, e->f);
                    e->W[i][r * K + q] = v;
                    int bb = bits_of(v);
                    if (bb > mb) mb = bb;
                }
                if (e->bias[i]) {
                    double bv = b ? b[r] : 0.0;
                    if (g) bv = (bv - mu[r]) * sc + be[r];
                    e->bias[i][r] = pinas_ring_encode(bv, 2 * e->f);
                }
            }
            e->wbits[i] = mb + 1;
        }
    }
    return PINAS_OK;
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

static char *cache_path(const eng *e)
{
    return pinas_strfmt("%s/%016llx-%016llx.masked", e->mask_cache, (unsigned long long)e->pp->hash,
                        (unsigned long long)e->pp->mask_id);
}

/* Loads W - A for this model and mask when cached and intact (else leaves e->cached NULL: the server
 * then sends it). File: "PINASMWT" | u64 arch hash | u64 mask id | u64 bytes | data | SHA-256. */
void eng_cache_load(eng *e)
{
    size_t want = eng_masked_bytes(e);
    if (!e->mask_cache || want == 0) return;
    char *path = cache_path(e), *buf = NULL;
    size_t len = 0;
    pinas_ctx *quiet = pinas_ctx_create(); /* a missing or bad cache is not an error: it is refilled */
    if (quiet && pinas_file_read(quiet, path, &buf, &len) == PINAS_OK && len == 32 + want + 32 &&
        memcmp(buf, "PINASMWT", 8) == 0) {
        uint64_t h, id, n;
        memcpy(&h, buf + 8, 8);
        memcpy(&id, buf + 16, 8);
        memcpy(&n, buf + 24, 8);
        uint8_t dig[32];
        unsigned dl = 0;
        EVP_Digest(buf, 32 + want, dig, &dl, EVP_sha256(), NULL);
        if (h == e->pp->hash && id == e->pp->mask_id && n == want && CRYPTO_memcmp(dig, buf + 32 + want, 32) == 0) {
            e->cached = malloc(want);
            if (e->cached) memcpy(e->cached, buf + 32, want);
        }
    }
    if (buf) OPENSSL_cleanse(buf, len);
    free(buf);
    free(path);
    pinas_ctx_free(quiet);
}

static pinas_status cache_save(eng *e, const uint64_t *masked, size_t bytes)
{
    if (!e->mask_cache || bytes == 0) return PINAS_OK;
    uint8_t *buf = malloc(32 + bytes + 32);
    if (!buf) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    memcpy(buf, "PINASMWT", 8);
    uint64_t n = bytes;
    memcpy(buf + 8, &e->pp->hash, 8);
    memcpy(buf + 16, &e->pp->mask_id, 8);
    memcpy(buf + 24, &n, 8);
    memcpy(buf + 32, masked, bytes);
    unsigned dl = 0;
    EVP_Digest(buf, 32 + bytes, buf + 32 + bytes, &dl, EVP_sha256(), NULL);
    char *path = cache_path(e);
    pinas_status s = pinas_mkdir_p(e->ctx, e->mask_cache);
    if (!s) s = pinas_file_write_atomic(e->ctx, path, buf, 32 + bytes + 32, 0600);
    free(path);
    OPENSSL_cleanse(buf, 32 + bytes + 32);
    free(buf);
    return s;
}

/* The masked weights W - A of every matmul node, in node order, and the poly coefficients: the server
 * sends them in one message (the masked weights only when the client does not have them cached); the
 * client precomputes (W - A)·cols(B) + C1 before it touches its input. */
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

/* Server: W - A of every matmul node (A expanded from the mask seed by the same request sequence as
 * the dealer's; skipped when the client has them cached), then the poly coefficients. */
static pinas_status server_setup_msg(eng *e, int send_masked, uint64_t *msg)
{
    pinas_prg *mask = NULL;
    pinas_status s = pinas_prg_create(e->ctx, e->pp->mask_seed, &mask);
    size_t o = 0, a_len = 1;
    for (int i = 0; i < e->pl.n_nodes; i++)
        if (e->pl.nodes[i].kind == PL_MATMUL) {
            size_t mk = (size_t)e->pl.nodes[i].groups * e->pl.nodes[i].M * e->pl.nodes[i].K;
            if (mk > a_len) a_len = mk;
        }
    uint64_t *A = malloc(8 * a_len);
    if (!A && !s) s = pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    for (int i = 0; i < e->pl.n_nodes && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind == PL_MATMUL) {
            size_t mk = (size_t)pn->groups * pn->M * pn->K;
            pinas_prg_bytes(mask, A, 8 * mk); /* the same request sequence as the dealer's */
            if (send_masked)
                for (size_t q = 0; q < mk; q++) msg[o + q] = e->W[i][q] - A[q];
            if (send_masked) o += mk;
        }
    }
    for (int i = 0; i < e->pl.n_nodes && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind == PL_POLY) {
            size_t c = (size_t)pn->poly_channels;
            memcpy(msg + o, e->pa[i], 8 * c);
            memcpy(msg + o + c, e->pw1[i], 8 * c);
            memcpy(msg + o + 2 * c, e->pb[i], 8 * c);
            o += 3 * c;
        }
    }
    if (A) OPENSSL_cleanse(A, 8 * a_len);
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

/* Client: takes the setup message apart (masked weights from it or from the cache, poly coefficients). */
static pinas_status client_setup_msg(eng *e, int send_masked, const uint64_t *msg, size_t mb)
{
    const uint64_t *masked = send_masked ? msg : e->cached;
    pinas_status s = send_masked ? cache_save(e, msg, mb) : PINAS_OK;
    size_t o = 0, op = send_masked ? mb / 8 : 0;
    for (int i = 0; i < e->pl.n_nodes && !s; i++) {
        const pl_node *pn = &e->pl.nodes[i];
        if (pn->kind == PL_MATMUL) {
            s = client_product(e, i, pn, masked + o);
            o += (size_t)pn->groups * pn->M * pn->K;
        } else if (pn->kind == PL_POLY) {
            size_t c = (size_t)pn->poly_channels;
            e->pa[i] = malloc(8 * c);
            e->pw1[i] = malloc(8 * c);
            e->pb[i] = malloc(8 * c);
            if (!e->pa[i] || !e->pw1[i] || !e->pb[i]) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
            memcpy(e->pa[i], msg + op, 8 * c);
            memcpy(e->pw1[i], msg + op + c, 8 * c);
            memcpy(e->pb[i], msg + op + 2 * c, 8 * c);
            op += 3 * c;
        }
    }
    return s;
}

pinas_status eng_setup(eng *e, size_t *total_out)
{
    size_t mb = eng_masked_bytes(e), pb = poly_bytes(e);
    int send_masked = e->role == 0 ? !e->peer_has_masked : e->cached == NULL;
    size_t total = (send_masked ? mb : 0) + pb;
    *total_out = total;
    uint64_t *msg = malloc(total ? total : 8);
    if (!msg) return pinas_error(e->ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    pinas_chan_set_layer(e->ch, "setup");
    if (e->role == 0) {
        s = server_setup_msg(e, send_masked, msg);
        if (!s) s = eng_send(e, TAG_SETUP, msg, total);
    } else {
        s = eng_recv(e, TAG_SETUP, msg, total);
        if (!s) s = client_setup_msg(e, send_masked, msg, mb);
    }
    OPENSSL_cleanse(msg, total);
    free(msg);
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
