/* Tests for crypto/chan.c: framing, full-duplex exchange of large messages, the errors a dead, silent,
 * dripping or garbage-sending peer produces (each naming the peer and the layer), and TLS 1.3 with a PSK or
 * certificates (crypto/chan_keys.c makes them): a wrong key is refused, a stray connection does not take the
 * listener's slot. */
#define _GNU_SOURCE
#include "pinas_mpc.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static pinas_ctx *ctx;
static const pinas_chan_auth plain = {.insecure = 1};

typedef struct {
    int port, mode; /* mode: 0 echo-exchange big, 1 close at once, 2 garbage, 3 silent, 4 wrong tag, 5 drip */
    size_t n;
    pinas_status s;
    const pinas_chan_auth *auth; /* NULL: plain */
    char err[512];
} peer_job;

static void *peer(void *arg)
{
    peer_job *j = arg;
    pinas_ctx *c = pinas_ctx_create();
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", j->port);
    if (j->mode == 2 || j->mode == 5) { /* a raw socket writing junk, or dripping a valid frame header */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && j->mode == 2) {
            char junk[64];
            memset(junk, 0x5a, sizeof junk);
            if (write(fd, junk, sizeof junk) < 0) j->s = PINAS_EIO;
            usleep(300000);
        } else if (j->mode == 5) { /* one byte every 200 ms: never silent for the 250 ms timeout */
            uint8_t hdr[24] = {0x50, 0x4e, 0x53, 0x31, 1, 0, 0, 0, 8};
            for (size_t k = 0; k < sizeof hdr; k++) {
                if (write(fd, hdr + k, 1) != 1) break;
                usleep(200000);
            }
        }
        close(fd);
        pinas_ctx_free(c);
        return NULL;
    }
    pinas_chan *ch = NULL;
    j->s = pinas_chan_connect(c, hp, 5000, "server", j->auth ? j->auth : &plain, &ch);
    if (j->s) snprintf(j->err, sizeof j->err, "%s", pinas_errmsg(c));
    if (!j->s) {
        if (j->mode == 0) {
            uint8_t *a = malloc(j->n), *b = malloc(j->n);
            for (size_t i = 0; i < j->n; i++) a[i] = (uint8_t)(i * 7 + 1);
            j->s = pinas_chan_exchange(c, ch, 5, a, j->n, b, j->n);
            for (size_t i = 0; i < j->n && !j->s; i++)
                if (b[i] != (uint8_t)(i * 3)) j->s = PINAS_EINTERNAL;
            free(a);
            free(b);
        } else if (j->mode == 3) {
            usleep(1500000);
        } else if (j->mode == 4) {
            uint64_t v = 1;
            j->s = pinas_chan_send(c, ch, 99, &v, 8);
            usleep(300000);
        }
    }
    pinas_chan_free(ch);
    pinas_ctx_free(c);
    return NULL;
}

static pinas_chan *serve(peer_job *j, pthread_t *t)
{
    pinas_chan *l = NULL;
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    j->port = pinas_chan_port(l);
    pthread_create(t, NULL, peer, j);
    CU_ASSERT_FATAL(pinas_chan_accept(ctx, l, 5000, "client", j->auth ? j->auth : &plain) == PINAS_OK);
    pinas_chan_set_layer(l, "l1.0.act1");
    return l;
}

/* 32 MB each way at the same time: with blocking send-then-receive both sides would deadlock. */
static void test_full_duplex(void)
{
    peer_job j = {.mode = 0, .n = 32u << 20};
    pthread_t t;
    pinas_chan *c = serve(&j, &t);
    uint8_t *a = malloc(j.n), *b = malloc(j.n);
    for (size_t i = 0; i < j.n; i++) a[i] = (uint8_t)(i * 3);
    CU_ASSERT(pinas_chan_exchange(ctx, c, 5, a, j.n, b, j.n) == PINAS_OK);
    int ok = 1;
    for (size_t i = 0; i < j.n; i++) ok &= b[i] == (uint8_t)(i * 7 + 1);
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL(pinas_chan_bytes_sent(c), j.n);
    CU_ASSERT_EQUAL(pinas_chan_bytes_recv(c), j.n);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(j.s, PINAS_OK);
    pinas_chan_free(c);
    free(a);
    free(b);
}

static void test_peer_closed(void)
{
    peer_job j = {.mode = 1};
    pthread_t t;
    pinas_chan *c = serve(&j, &t);
    uint64_t v;
    pinas_status s = pinas_chan_recv(ctx, c, 1, &v, 8);
    TU_ASSERT_ERR(ctx, s, "peer client");
    TU_ASSERT_ERR(ctx, s, "layer l1.0.act1");
    TU_ASSERT_ERR(ctx, s, "closed");
    CU_ASSERT_EQUAL(s, PINAS_EPEER);
    pthread_join(t, NULL);
    pinas_chan_free(c);
}

static void test_garbage(void)
{
    peer_job j = {.mode = 2};
    pthread_t t;
    pinas_chan *l = NULL;
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    j.port = pinas_chan_port(l);
    pthread_create(&t, NULL, peer, &j);
    CU_ASSERT_FATAL(pinas_chan_accept(ctx, l, 5000, "client", &plain) == PINAS_OK);
    pinas_chan_set_layer(l, "stem.act");
    uint64_t v;
    pinas_status s = pinas_chan_recv(ctx, l, 1, &v, 8);
    TU_ASSERT_ERR(ctx, s, "garbage");
    TU_ASSERT_ERR(ctx, s, "layer stem.act");
    pthread_join(t, NULL);
    pinas_chan_free(l);
}

static void test_timeout(void)
{
    peer_job j = {.mode = 3};
    pthread_t t;
    pinas_chan *c = serve(&j, &t);
    pinas_chan_set_timeout(c, 300);
    uint64_t v;
    double t0 = pinas_now();
    pinas_status s = pinas_chan_recv(ctx, c, 1, &v, 8);
    double dt = pinas_now() - t0;
    TU_ASSERT_ERR(ctx, s, "timed out");
    TU_ASSERT_ERR(ctx, s, "peer client");
    CU_ASSERT(dt >= 0.25 && dt < 1.2);
    pthread_join(t, NULL);
    pinas_chan_free(c);
}

static void test_wrong_message(void)
{
    peer_job j = {.mode = 4};
    pthread_t t;
    pinas_chan *c = serve(&j, &t);
    uint64_t v;
    pinas_status s = pinas_chan_recv(ctx, c, 7, &v, 8);
    TU_ASSERT_ERR(ctx, s, "unexpected message");
    pthread_join(t, NULL);
    pinas_chan_free(c);
}

static void test_connect_refused(void)
{
    pinas_chan *c = NULL;
    double t0 = pinas_now();
    pinas_status s = pinas_chan_connect(ctx, "127.0.0.1:1", 300, "server", &plain, &c);
    TU_ASSERT_ERR(ctx, s, "peer server");
    CU_ASSERT(pinas_now() - t0 < 2);
    CU_ASSERT(c == NULL);
    s = pinas_chan_connect(ctx, "nocolon", 300, "server", &plain, &c);
    TU_ASSERT_ERR(ctx, s, "HOST:PORT");
}

/* A peer dripping one byte every 0.8 timeout: the silence timeout never fires, the total deadline does. */
static void test_drip(void)
{
    peer_job j = {.mode = 5};
    pthread_t t;
    pinas_chan *l = NULL;
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    j.port = pinas_chan_port(l);
    pthread_create(&t, NULL, peer, &j);
    CU_ASSERT_FATAL(pinas_chan_accept(ctx, l, 5000, "client", &plain) == PINAS_OK);
    pinas_chan_set_layer(l, "handshake");
    pinas_chan_set_timeout(l, 250);
    uint64_t v;
    double t0 = pinas_now();
    pinas_status s = pinas_chan_recv(ctx, l, 1, &v, 8);
    double dt = pinas_now() - t0;
    TU_ASSERT_ERR(ctx, s, "deadline");
    TU_ASSERT_ERR(ctx, s, "peer client");
    CU_ASSERT(dt >= 0.24 && dt < 0.8);
    pthread_join(t, NULL);
    pinas_chan_free(l);
}

/* TLS with a PSK: 4 MB each way, the security string, wire bytes above the payload; then a peer with
 * another key is refused (both sides say so) and the listener keeps its slot for the right peer. */
static void test_tls_psk(void)
{
    const char *k1 = tu_path("a.psk"), *k2 = tu_path("b.psk");
    CU_ASSERT_FATAL(pinas_chan_keygen_psk(ctx, k1) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_chan_keygen_psk(ctx, k2) == PINAS_OK);
    struct stat st;
    CU_ASSERT(stat(k1, &st) == 0 && (st.st_mode & 0777) == 0600);
    pinas_chan_auth a1 = {.psk_file = k1}, a2 = {.psk_file = k2};
    peer_job j = {.mode = 0, .n = 4u << 20, .auth = &a1};
    pthread_t t;
    pinas_chan *c = serve(&j, &t);
    CU_ASSERT(strstr(pinas_chan_security(c), "TLSv1.3") != NULL);
    CU_ASSERT(strstr(pinas_chan_security(c), "pre-shared key") != NULL);
    uint8_t *a = malloc(j.n), *b = malloc(j.n);
    for (size_t i = 0; i < j.n; i++) a[i] = (uint8_t)(i * 3);
    CU_ASSERT(pinas_chan_exchange(ctx, c, 5, a, j.n, b, j.n) == PINAS_OK);
    int ok = 1;
    for (size_t i = 0; i < j.n; i++) ok &= b[i] == (uint8_t)(i * 7 + 1);
    CU_ASSERT(ok);
    uint64_t ws, wr;
    pinas_chan_wire_bytes(c, &ws, &wr);
    CU_ASSERT(ws > j.n && ws < j.n + j.n / 100 + 4096);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(j.s, PINAS_OK);
    pinas_chan_free(c);
    free(a);
    free(b);

    /* a wrong key first, then the right one: the listener refuses the first and accepts the second */
    pinas_chan *l = NULL;
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    peer_job bad = {.mode = 1, .port = pinas_chan_port(l), .auth = &a2}, good = {.mode = 1, .port = bad.port, .auth = &a1};
    pthread_t tb, tg;
    pthread_create(&tb, NULL, peer, &bad);
    usleep(100000); /* the wrong one is first in the listener's backlog */
    pthread_create(&tg, NULL, peer, &good);
    CU_ASSERT(pinas_chan_accept(ctx, l, 5000, "client", &a1) == PINAS_OK);
    pthread_join(tb, NULL);
    pthread_join(tg, NULL);
    CU_ASSERT(bad.s != PINAS_OK && strstr(bad.err, "peer server") != NULL);
    CU_ASSERT_EQUAL(good.s, PINAS_OK);
    pinas_chan_free(l);

    /* a wrong key alone: the listener gives up at its timeout, naming the refused connection */
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    bad.port = pinas_chan_port(l);
    pthread_create(&tb, NULL, peer, &bad);
    pinas_status s = pinas_chan_accept(ctx, l, 600, "client", &a1);
    TU_ASSERT_ERR(ctx, s, "peer client");
    TU_ASSERT_ERR(ctx, s, "another PSK");
    pthread_join(tb, NULL);
    pinas_chan_free(l);
}

/* TLS with certificates from pinas_chan_keygen_certs; a certificate from another CA is refused. */
static void test_tls_certs(void)
{
    char d1[512], d2[512], f[6][600];
    snprintf(d1, sizeof d1, "%s", tu_path("pki1"));
    snprintf(d2, sizeof d2, "%s", tu_path("pki2"));
    CU_ASSERT_FATAL(pinas_chan_keygen_certs(ctx, d1, 2) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_chan_keygen_certs(ctx, d2, 2) == PINAS_OK);
    const char *names[6] = {"server.crt", "server.key", "client.crt", "client.key", "ca.crt", "ca.key"};
    for (int i = 0; i < 6; i++) snprintf(f[i], sizeof f[i], "%s/%s", d1, names[i]);
    struct stat st;
    CU_ASSERT(stat(f[1], &st) == 0 && (st.st_mode & 0777) == 0600);
    pinas_chan_auth as = {.cert_file = f[0], .key_file = f[1], .peer_ca_file = f[4]};
    pinas_chan_auth ac = {.cert_file = f[2], .key_file = f[3], .peer_ca_file = f[4]};
    peer_job j = {.mode = 0, .n = 1u << 16, .auth = &ac};
    pthread_t t;
    pinas_chan *c = serve(&j, &t);
    CU_ASSERT(strstr(pinas_chan_security(c), "certificates") != NULL);
    uint8_t *a = malloc(j.n), *b = malloc(j.n);
    for (size_t i = 0; i < j.n; i++) a[i] = (uint8_t)(i * 3);
    CU_ASSERT(pinas_chan_exchange(ctx, c, 5, a, j.n, b, j.n) == PINAS_OK);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(j.s, PINAS_OK);
    pinas_chan_free(c);
    free(a);
    free(b);

    /* the client trusts another CA: it refuses the server's certificate */
    char ca2[600];
    snprintf(ca2, sizeof ca2, "%s/ca.crt", d2);
    pinas_chan_auth other = {.cert_file = f[2], .key_file = f[3], .peer_ca_file = ca2};
    pinas_chan *l = NULL;
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    peer_job bad = {.mode = 1, .port = pinas_chan_port(l), .auth = &other};
    pthread_create(&t, NULL, peer, &bad);
    pinas_status s = pinas_chan_accept(ctx, l, 600, "client", &as);
    TU_ASSERT_ERR(ctx, s, "peer client");
    pthread_join(t, NULL);
    CU_ASSERT(bad.s != PINAS_OK && strstr(bad.err, "certificate") != NULL);
    if (!strstr(bad.err, "certificate")) fprintf(stderr, "\n  client: %s\n", bad.err);
    pinas_chan_free(l);

    /* a key readable by others, no authentication, both kinds at once */
    chmod(f[1], 0644);
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_chan_accept(ctx, l, 100, "client", &as), "readable by others");
    pinas_chan_auth none = {0}, both = {.psk_file = f[1], .cert_file = f[0], .key_file = f[1], .peer_ca_file = f[4]};
    TU_ASSERT_ERR(ctx, pinas_chan_accept(ctx, l, 100, "client", &none), "no authentication");
    TU_ASSERT_ERR(ctx, pinas_chan_accept(ctx, l, 100, "client", &both), "not both");
    pinas_chan_free(l);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"full-duplex exchange of 32 MB each way", test_full_duplex},
                   {"peer closed: error names peer and layer", test_peer_closed},
                   {"garbage from the peer", test_garbage},
                   {"silent peer: timeout", test_timeout},
                   {"unexpected message kind", test_wrong_message},
                   {"connect: refused, bad address", test_connect_refused},
                   {"dripping peer: total deadline", test_drip},
                   {"TLS 1.3 with a PSK; a wrong key is refused", test_tls_psk},
                   {"TLS 1.3 with certificates; another CA is refused", test_tls_certs}};
    int rc = tu_run("crypto_channel", t, 9);
    pinas_ctx_free(ctx);
    return rc;
}
