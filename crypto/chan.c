/* The parties' channel: TCP with TLS 1.3 (mutual: PSK or certificates) by default, framed messages, a silence
 * timeout and a total deadline per message, full-duplex exchange (poll). */
#define _GNU_SOURCE
#include "pinas_mpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FRAME_MAGIC 0x31534e50u /* "PNS1" */

typedef struct {
    uint32_t magic, tag;
    uint64_t len, seq;
} frame;

struct pinas_chan {
    int lfd, fd, port, timeout_ms;
    char peer[48], addr[160], layer[160];
    uint64_t sent, recvd, seq_out, seq_in, wire_sent, wire_recv;
    pinas_chan_tap_fn tap;
    void *tap_user;
    /* TLS (NULL ssl: plain TCP) */
    SSL_CTX *sctx;
    SSL *ssl;
    int tls_failed;       /* a fatal TLS error happened: no close_notify */
    int psk_mismatch;     /* server: the last client presented another PSK identity */
    uint8_t psk[32];
    char psk_id[40];
    char security[160];
};

void pinas_chan_set_tap(pinas_chan *c, pinas_chan_tap_fn fn, void *user)
{
    c->tap = fn;
    c->tap_user = user;
}

static pinas_chan *chan_new(void)
{
    pinas_chan *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->lfd = c->fd = -1;
    c->timeout_ms = 30000;
    snprintf(c->peer, sizeof c->peer, "peer");
    snprintf(c->layer, sizeof c->layer, "handshake");
    snprintf(c->security, sizeof c->security, "plain TCP (--insecure: no authentication, no integrity)");
    return c;
}

static pinas_status split_hostport(pinas_ctx *ctx, const char *hp, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = hp ? strrchr(hp, ':') : NULL;
    if (!colon || colon == hp || !colon[1] || (size_t)(colon - hp) >= hn || strlen(colon + 1) >= pn)
        return pinas_error(ctx, PINAS_EINVAL, "\"%s\": expected HOST:PORT", hp ? hp : "");
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = 0;
    snprintf(port, pn, "%s", colon + 1);
    return PINAS_OK;
}

static void tune(int fd)
{
    int one = 1, buf = 8 << 20;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Milliseconds left until `deadline` (pinas_now seconds), capped at cap_ms; 0 when past. */
static int ms_left(double deadline, int cap_ms)
{
    double left = (deadline - pinas_now()) * 1000;
    if (left <= 0) return 0;
    return left < cap_ms ? (int)left + 1 : cap_ms;
}

/* ------------------------------------------------------------------ TLS: keys, contexts, handshake */

/* The newest OpenSSL error as text (and clears the queue). */
static const char *ssl_reason(char *buf, size_t n)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0) last = e;
    if (!last) return snprintf(buf, n, "%s", errno ? strerror(errno) : "connection closed"), buf;
    const char *r = ERR_reason_error_string(last);
    snprintf(buf, n, "%s", r ? r : "unknown TLS error");
    return buf;
}

pinas_status pinas_chan_psk_load(pinas_ctx *ctx, const char *path, uint8_t key[32])
{
    return pinas_mpc_key_file_read(ctx, "psk file", path, "`pinas keygen --psk FILE`", key);
}

static const unsigned char TLS13_AES128GCM[2] = {0x13, 0x01};

static SSL_SESSION *psk_session(SSL *ssl, const uint8_t *key)
{
    const SSL_CIPHER *ciph = SSL_CIPHER_find(ssl, TLS13_AES128GCM);
    SSL_SESSION *s = ciph ? SSL_SESSION_new() : NULL;
    if (s && (!SSL_SESSION_set1_master_key(s, key, 32) || !SSL_SESSION_set_cipher(s, ciph) ||
              !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION))) {
        SSL_SESSION_free(s);
        s = NULL;
    }
    return s;
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen, SSL_SESSION **sess)
{
    pinas_chan *c = SSL_get_app_data(ssl);
    const SSL_CIPHER *ciph = SSL_CIPHER_find(ssl, TLS13_AES128GCM);
    *id = NULL, *idlen = 0, *sess = NULL;
    if (!ciph || (md && md != SSL_CIPHER_get_handshake_digest(ciph))) return 1; /* no PSK for that hash */
    *sess = psk_session(ssl, c->psk);
    *id = (const unsigned char *)c->psk_id;
    *idlen = strlen(c->psk_id);
    return *sess != NULL;
}

static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
    pinas_chan *c = SSL_get_app_data(ssl);
    *sess = NULL;
    if (idlen != strlen(c->psk_id) || memcmp(id, c->psk_id, idlen) != 0) {
        c->psk_mismatch = 1;
        return 1; /* not ours: the handshake fails (no certificate to fall back on) */
    }
    *sess = psk_session(ssl, c->psk);
    return *sess != NULL;
}

/* The PSK's public identity: a hash of the key (so a wrong key is named as such, and reveals nothing). */
static void psk_identity(pinas_chan *c)
{
    uint8_t d[32];
    unsigned dl = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    EVP_DigestUpdate(m, "pinas psk identity", 18);
    EVP_DigestUpdate(m, c->psk, 32);
    EVP_DigestFinal_ex(m, d, &dl);
    EVP_MD_CTX_free(m);
    int o = snprintf(c->psk_id, sizeof c->psk_id, "pinas-");
    for (int i = 0; i < 8; i++) o += snprintf(c->psk_id + o, sizeof c->psk_id - (size_t)o, "%02x", d[i]);
}

static pinas_status cert_setup(pinas_ctx *ctx, SSL_CTX *sc, const pinas_chan_auth *a)
{
    char r[256];
    pinas_status s = pinas_mpc_secret_file_check(ctx, "key file", a->key_file);
    if (s) return s;
    if (SSL_CTX_use_certificate_chain_file(sc, a->cert_file) != 1)
        return pinas_error(ctx, PINAS_EFORMAT, "certificate %s: %s", a->cert_file, ssl_reason(r, sizeof r));
    if (SSL_CTX_use_PrivateKey_file(sc, a->key_file, SSL_FILETYPE_PEM) != 1)
        return pinas_error(ctx, PINAS_EFORMAT, "key file %s: %s", a->key_file, ssl_reason(r, sizeof r));
    if (SSL_CTX_check_private_key(sc) != 1)
        return pinas_error(ctx, PINAS_EINVAL, "key file %s does not match certificate %s", a->key_file, a->cert_file);
    if (SSL_CTX_load_verify_locations(sc, a->peer_ca_file, NULL) != 1)
        return pinas_error(ctx, PINAS_EFORMAT, "peer CA %s: %s", a->peer_ca_file, ssl_reason(r, sizeof r));
    SSL_CTX_set_verify(sc, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return PINAS_OK;
}

pinas_status pinas_chan_auth_check(pinas_ctx *ctx, const pinas_chan_auth *a)
{
    int certs = a->cert_file || a->key_file || a->peer_ca_file;
    if (a->insecure && (a->psk_file || certs))
        return pinas_error(ctx, PINAS_EINVAL, "insecure (plain TCP) was asked together with a PSK or certificates");
    if (a->insecure) return PINAS_OK;
    if (a->psk_file && certs) return pinas_error(ctx, PINAS_EINVAL, "give either a PSK or certificates, not both");
    if (certs && !(a->cert_file && a->key_file && a->peer_ca_file))
        return pinas_error(ctx, PINAS_EINVAL, "certificate authentication needs a certificate, its key and the peer's CA");
    if (!a->psk_file && !certs)
        return pinas_error(ctx, PINAS_EINVAL,
                           "no authentication for the channel: give a PSK file (both parties the same key) or a "
                           "certificate, its key and the peer's CA; plain TCP only when asked for explicitly");
    return PINAS_OK;
}

/* The TLS 1.3 context of channel c (the TCP listener is the TLS server, whatever the party's role). */
static pinas_status tls_setup(pinas_ctx *ctx, pinas_chan *c, const pinas_chan_auth *a, int server)
{
    SSL_CTX_free(c->sctx);
    c->sctx = NULL;
    c->psk_id[0] = 0;
    pinas_status s = pinas_chan_auth_check(ctx, a);
    if (s || a->insecure) return s;
    c->sctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c->sctx) return pinas_error(ctx, PINAS_ENOMEM, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(c->sctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(c->sctx, TLS1_3_VERSION);
    SSL_CTX_set_num_tickets(c->sctx, 0);                            /* one session per connection, no resumption */
    SSL_CTX_clear_options(c->sctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT); /* no fake ChangeCipherSpec */
    SSL_CTX_set_mode(c->sctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (a->psk_file) {
        s = pinas_chan_psk_load(ctx, a->psk_file, c->psk);
        if (s) return s;
        psk_identity(c);
        /* the PSK is bound to SHA-256: only suites with that hash can use it */
        SSL_CTX_set_ciphersuites(c->sctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
        if (server) SSL_CTX_set_psk_find_session_callback(c->sctx, psk_find_cb);
        else SSL_CTX_set_psk_use_session_callback(c->sctx, psk_use_cb);
        return PINAS_OK;
    }
    s = cert_setup(ctx, c->sctx, a);
    if (s) {
        SSL_CTX_free(c->sctx);
        c->sctx = NULL;
    }
    return s;
}

/* Why a handshake failed, for the message. */
static void handshake_why(pinas_chan *c, int server, char *m, size_t n)
{
    char r[256];
    ssl_reason(r, sizeof r);
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (c->psk_mismatch)
        snprintf(m, n, "it holds another PSK (the parties' PSK files differ)");
    else if (v != X509_V_OK)
        snprintf(m, n, "its certificate is not accepted: %s (check --peer-ca)", X509_verify_cert_error_string(v));
    else
        snprintf(m, n, "TLS handshake failed: %s (%s)", r,
                 server ? "does the client hold the same PSK, or a certificate signed by our --peer-ca?"
                        : "does the server hold the same PSK, or a certificate signed by our --peer-ca?");
}

/* Runs the TLS handshake on c->fd until done or `deadline`. On failure m says why. */
static int tls_handshake(pinas_chan *c, int server, double deadline, char *m, size_t n)
{
    c->ssl = SSL_new(c->sctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) return snprintf(m, n, "cannot create a TLS session"), -1;
    SSL_set_app_data(c->ssl, c);
    c->psk_mismatch = 0;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
        if (r == 1) break;
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            c->tls_failed = 1;
            handshake_why(c, server, m, n);
            return -1;
        }
        struct pollfd p = {.fd = c->fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
        int left = ms_left(deadline, 1 << 30), rc = left ? poll(&p, 1, left) : 0;
        if (rc == 0) {
            c->tls_failed = 1;
            return snprintf(m, n, "TLS handshake not complete within its deadline"), -1;
        }
    }
    const char *mode = c->psk_id[0] ? "pre-shared key" : "certificates";
    snprintf(c->security, sizeof c->security, "%s %s, mutual authentication by %s", SSL_get_version(c->ssl),
             SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)), mode);
    return 0;
}

const char *pinas_chan_security(const pinas_chan *c) { return c->security; }

/* ------------------------------------------------------------------ connection set-up */

pinas_status pinas_chan_listen(pinas_ctx *ctx, const char *hostport, pinas_chan **out)
{
    *out = NULL;
    char host[128], port[32];
    pinas_status s = split_hostport(ctx, hostport, host, sizeof host, port, sizeof port);
    if (s) return s;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) return pinas_error(ctx, PINAS_EIO, "listen %s: %s", hostport, gai_strerror(rc));
    pinas_chan *c = chan_new();
    if (!c) {
        freeaddrinfo(ai);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4) < 0) {
        int e = errno;
        freeaddrinfo(ai);
        if (fd >= 0) close(fd);
        free(c);
        return pinas_error(ctx, PINAS_EIO, "listen %s: %s", hostport, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    c->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    c->lfd = fd;
    snprintf(c->addr, sizeof c->addr, "%s", hostport);
    *out = c;
    return PINAS_OK;
}

int pinas_chan_port(const pinas_chan *c) { return c ? c->port : 0; }

/* Drops the current connection (a refused peer). */
static void drop(pinas_chan *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->tls_failed = 0;
}

pinas_status pinas_chan_accept(pinas_ctx *ctx, pinas_chan *c, int timeout_ms, const char *peer_name,
                               const pinas_chan_auth *auth)
{
    snprintf(c->peer, sizeof c->peer, "%s", peer_name ? peer_name : "peer");
    char listen_addr[160], last[512] = "";
    snprintf(listen_addr, sizeof listen_addr, "%s", c->addr);
    pinas_status s = tls_setup(ctx, c, auth, 1);
    if (s) return s;
    c->timeout_ms = timeout_ms;
    double deadline = pinas_now() + timeout_ms / 1000.0;
    /* Accept until one peer authenticates: others are refused (a TLS alert, a warning here), so a stray or
     * hostile connection cannot take the slot; after that the listener closes and later ones are refused. */
    for (;;) {
        struct pollfd p = {.fd = c->lfd, .events = POLLIN};
        int left = ms_left(deadline, 1 << 30), rc = left ? poll(&p, 1, left) : 0;
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0)
            return pinas_error(ctx, PINAS_EPEER, "peer %s did not connect%s to %s within %.1f s%s%s", c->peer,
                               c->sctx ? " and authenticate" : "", listen_addr, timeout_ms / 1000.0,
                               last[0] ? "; last refused: " : "", last);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = rc > 0 ? accept4(c->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC) : -1;
        if (fd < 0) return pinas_error(ctx, PINAS_EIO, "accept on %s: %s", listen_addr, strerror(errno));
        char h[64] = "?";
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, NULL, 0, NI_NUMERICHOST);
        snprintf(c->addr, sizeof c->addr, "%s", h);
        c->fd = fd;
        tune(fd);
        if (!c->sctx) break;
        char why[300];
        if (tls_handshake(c, 1, pinas_now() + timeout_ms / 1000.0, why, sizeof why) == 0) break;
        snprintf(last, sizeof last, "a connection from %s: %s", h, why);
        pinas_warn(ctx, "peer %s: refused %s", c->peer, last);
        drop(c);
    }
    close(c->lfd);
    c->lfd = -1;
    return PINAS_OK;
}

static pinas_status tcp_connect(pinas_ctx *ctx, const char *hostport, int timeout_ms, const char *peer, int *out)
{
    char host[128], port[32];
    pinas_status s = split_hostport(ctx, hostport, host, sizeof host, port, sizeof port);
    if (s) return s;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) return pinas_error(ctx, PINAS_EIO, "connect %s: %s", hostport, gai_strerror(rc));
    double t0 = pinas_now();
    int fd = -1, err = 0;
    /* The peer may not be listening yet: retry until the timeout. */
    for (;;) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        err = errno;
        if (fd >= 0) close(fd);
        fd = -1;
        if ((pinas_now() - t0) * 1000 > timeout_ms) break;
        usleep(20000);
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return pinas_error(ctx, PINAS_EPEER, "peer %s at %s: cannot connect within %.1f s: %s", peer, hostport,
                           timeout_ms / 1000.0, strerror(err));
    *out = fd;
    return PINAS_OK;
}

pinas_status pinas_chan_connect(pinas_ctx *ctx, const char *hostport, int timeout_ms, const char *peer_name,
                                const pinas_chan_auth *auth, pinas_chan **out)
{
    *out = NULL;
    pinas_chan *c = chan_new();
    if (!c) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    snprintf(c->peer, sizeof c->peer, "%s", peer_name ? peer_name : "peer");
    snprintf(c->addr, sizeof c->addr, "%s", hostport);
    c->timeout_ms = timeout_ms;
    pinas_status s = tls_setup(ctx, c, auth, 0);
    if (!s) s = tcp_connect(ctx, hostport, timeout_ms, c->peer, &c->fd);
    if (!s) tune(c->fd);
    char why[300];
    if (!s && c->sctx && tls_handshake(c, 0, pinas_now() + timeout_ms / 1000.0, why, sizeof why) != 0)
        s = pinas_error(ctx, PINAS_EPEER, "peer %s at %s: %s", c->peer, hostport, why);
    if (s) {
        pinas_chan_free(c);
        return s;
    }
    *out = c;
    return PINAS_OK;
}

void pinas_chan_free(pinas_chan *c)
{
    if (!c) return;
    if (c->ssl && !c->tls_failed && SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl); /* close_notify, not waited for */
    SSL_free(c->ssl);
    SSL_CTX_free(c->sctx);
    if (c->fd >= 0) close(c->fd);
    if (c->lfd >= 0) close(c->lfd);
    OPENSSL_cleanse(c->psk, sizeof c->psk);
    free(c);
}

void pinas_chan_set_timeout(pinas_chan *c, int timeout_ms) { c->timeout_ms = timeout_ms; }
void pinas_chan_set_layer(pinas_chan *c, const char *layer) { snprintf(c->layer, sizeof c->layer, "%s", layer); }
uint64_t pinas_chan_bytes_sent(const pinas_chan *c) { return c->sent; }
uint64_t pinas_chan_bytes_recv(const pinas_chan *c) { return c->recvd; }

void pinas_chan_wire_bytes(const pinas_chan *c, uint64_t *sent, uint64_t *recvd)
{
    *sent = c->ssl ? BIO_number_written(SSL_get_wbio(c->ssl)) : c->wire_sent;
    *recvd = c->ssl ? BIO_number_read(SSL_get_rbio(c->ssl)) : c->wire_recv;
}

static pinas_status peer_err(pinas_ctx *ctx, pinas_chan *c, const char *what)
{
    return pinas_error(ctx, PINAS_EPEER, "peer %s (%s), layer %s: %s", c->peer, c->addr, c->layer, what);
}

/* ------------------------------------------------------------------ framed transfer */

/* One non-blocking send or receive, plain or TLS: returns bytes moved (> 0), 0 when it would block
 * (*want: the poll event to wait for) or -1 on an error (m says what). */
static ssize_t io_move(pinas_chan *c, int out, void *buf, size_t n, short *want, char *m, size_t mn)
{
    if (!c->ssl) {
        errno = 0;
        ssize_t r = out ? send(c->fd, buf, n, MSG_NOSIGNAL) : recv(c->fd, buf, n, 0);
        if (r > 0) {
            *(out ? &c->wire_sent : &c->wire_recv) += (uint64_t)r;
            return r;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return *want = out ? POLLOUT : POLLIN, 0;
        if (r == 0) return snprintf(m, mn, "connection closed (the peer exited or died)"), -1;
        return snprintf(m, mn, "%s failed: %s%s", out ? "send" : "receive", strerror(errno),
                        out ? " (the peer died or closed the connection)" : ""), -1;
    }
    ERR_clear_error();
    errno = 0;
    int r = out ? SSL_write(c->ssl, buf, (int)(n > (1u << 30) ? 1u << 30 : n))
                : SSL_read(c->ssl, buf, (int)(n > (1u << 30) ? 1u << 30 : n));
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return *want = POLLIN, 0;
    if (e == SSL_ERROR_WANT_WRITE) return *want = POLLOUT, 0;
    c->tls_failed = e != SSL_ERROR_ZERO_RETURN;
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0))
        return snprintf(m, mn, "connection closed (the peer exited or died)"), -1;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return snprintf(m, mn, "connection lost: %s (the peer died or closed the connection)", strerror(errno)), -1;
    unsigned long le = ERR_peek_last_error();
    char r2[256];
    ssl_reason(r2, sizeof r2);
    if (ERR_GET_REASON(le) == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)
        return snprintf(m, mn, "TLS record failed authentication (%s): the stream was altered in transit", r2), -1;
    return snprintf(m, mn, "TLS error: %s (the peer rejected our data, or the stream was altered in transit)", r2), -1;
}

typedef struct {
    frame sh, rh;
    const void *sbuf;
    void *rbuf;
    size_t sdone, rdone, stotal, rtotal, rlen;
    uint32_t tag;
    int header_ok;
} xfer_state;

/* Checks the received header once complete; returns 0 or -1 with m set. */
static int check_header(pinas_chan *c, xfer_state *x, char *m, size_t mn)
{
    if (x->rh.magic != FRAME_MAGIC) return snprintf(m, mn, "garbage received (bad frame magic 0x%08x)", x->rh.magic), -1;
    if (x->rh.tag != x->tag || x->rh.len != x->rlen || x->rh.seq != c->seq_in)
        return snprintf(m, mn,
                        "unexpected message (tag %u, %llu bytes, #%llu; expected tag %u, %zu bytes, #%llu): "
                        "the parties disagree on the protocol",
                        x->rh.tag, (unsigned long long)x->rh.len, (unsigned long long)x->rh.seq, x->tag, x->rlen,
                        (unsigned long long)c->seq_in), -1;
    x->header_ok = 1;
    x->rtotal = sizeof x->rh + x->rlen;
    return 0;
}

/* One step each way that has something left; *progress set when bytes moved; *want: events to poll. */
static int xfer_step(pinas_chan *c, xfer_state *x, int *progress, short *want, char *m, size_t mn)
{
    if (x->sdone < x->stotal) {
        int hdr = x->sdone < sizeof x->sh;
        uint8_t *src = hdr ? (uint8_t *)&x->sh + x->sdone : (uint8_t *)x->sbuf + (x->sdone - sizeof x->sh);
        short w = 0;
        ssize_t r = io_move(c, 1, src, hdr ? sizeof x->sh - x->sdone : x->stotal - x->sdone, &w, m, mn);
        if (r < 0) return -1;
        x->sdone += (size_t)r;
        *progress |= r > 0;
        *want |= w;
    }
    if (x->rdone < x->rtotal) {
        int hdr = x->rdone < sizeof x->rh;
        uint8_t *dst = hdr ? (uint8_t *)&x->rh + x->rdone : (uint8_t *)x->rbuf + (x->rdone - sizeof x->rh);
        short w = 0;
        ssize_t r = io_move(c, 0, dst, hdr ? sizeof x->rh - x->rdone : x->rtotal - x->rdone, &w, m, mn);
        if (r < 0) return -1;
        x->rdone += (size_t)r;
        *progress |= r > 0;
        *want |= w;
        if (!x->header_ok && x->rdone == sizeof x->rh && check_header(c, x, m, mn)) return -1;
    }
    return 0;
}

/* Moves a header + payload out and a header + payload in, whichever is ready, until both are done.
 * Either direction may be absent. Two limits: a silence of timeout_ms, and a total deadline of
 * timeout_ms + (both payloads) at PINAS_CHAN_FLOOR_BPS, so a peer dripping bytes is cut off too. */
static pinas_status xfer(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, const void *sbuf, size_t slen, int do_send,
                         void *rbuf, size_t rlen, int do_recv)
{
    if (c->fd < 0) return peer_err(ctx, c, "not connected");
    xfer_state x = {.sh = {FRAME_MAGIC, tag, slen, c->seq_out}, .sbuf = sbuf, .rbuf = rbuf, .rlen = rlen, .tag = tag};
    x.stotal = do_send ? sizeof x.sh + slen : 0;
    x.rtotal = do_recv ? sizeof x.rh : 0;
    double budget = c->timeout_ms / 1000.0 + (double)((do_send ? slen : 0) + (do_recv ? rlen : 0)) / PINAS_CHAN_FLOOR_BPS;
    double deadline = pinas_now() + budget;
    char m[400];
    while (x.sdone < x.stotal || x.rdone < x.rtotal) {
        int progress = 0;
        short want = 0;
        if (xfer_step(c, &x, &progress, &want, m, sizeof m)) return peer_err(ctx, c, m);
        if (x.sdone >= x.stotal && x.rdone >= x.rtotal) break;
        int left = ms_left(deadline, c->timeout_ms), rc = 0;
        if (left > 0 && progress) continue;
        if (left > 0) {
            struct pollfd p = {.fd = c->fd, .events = want};
            rc = poll(&p, 1, left);
            if (rc < 0 && errno == EINTR) continue;
            if (rc < 0) return peer_err(ctx, c, strerror(errno));
        }
        if (rc == 0 && left > 0 && left >= c->timeout_ms) {
            snprintf(m, sizeof m, "timed out after %.1f s waiting to %s", c->timeout_ms / 1000.0,
                     x.rdone < x.rtotal ? "receive" : "send");
            return peer_err(ctx, c, m);
        }
        if (rc == 0) {
            snprintf(m, sizeof m,
                     "message of %zu bytes not complete within its deadline of %.1f s (timeout %.1f s + size at %.0f "
                     "MB/s): the peer is too slow or stalling",
                     (do_send ? slen : 0) + (do_recv ? rlen : 0), budget, c->timeout_ms / 1000.0, PINAS_CHAN_FLOOR_BPS / 1e6);
            return peer_err(ctx, c, m);
        }
    }
    if (do_send) {
        c->seq_out++;
        c->sent += slen;
    }
    if (do_recv) {
        c->seq_in++;
        c->recvd += rlen;
        if (c->tap) c->tap(c->tap_user, tag, rbuf, rlen);
    }
    return PINAS_OK;
}

pinas_status pinas_chan_send(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, const void *buf, size_t len)
{
    return xfer(ctx, c, tag, buf, len, 1, NULL, 0, 0);
}

pinas_status pinas_chan_recv(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, void *buf, size_t len)
{
    return xfer(ctx, c, tag, NULL, 0, 0, buf, len, 1);
}

pinas_status pinas_chan_exchange(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, const void *sbuf, size_t slen,
                                 void *rbuf, size_t rlen)
{
    return xfer(ctx, c, tag, sbuf, slen, 1, rbuf, rlen, 1);
}
