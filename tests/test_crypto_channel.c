/* Tests for crypto/chan.c: framing, full-duplex exchange of large messages, and the errors a dead, silent or
 * garbage-sending peer produces (each naming the peer and the layer). */
#define _GNU_SOURCE
#include "pinas_mpc.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pinas_ctx *ctx;

typedef struct {
    int port, mode; /* mode: 0 echo-exchange big, 1 close at once, 2 garbage, 3 silent, 4 wrong tag */
    size_t n;
    pinas_status s;
} peer_job;

static void *peer(void *arg)
{
    peer_job *j = arg;
    pinas_ctx *c = pinas_ctx_create();
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", j->port);
    if (j->mode == 2) { /* a raw socket writing junk */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            char junk[64];
            memset(junk, 0x5a, sizeof junk);
            if (write(fd, junk, sizeof junk) < 0) j->s = PINAS_EIO;
            usleep(300000);
        }
        close(fd);
        pinas_ctx_free(c);
        return NULL;
    }
    pinas_chan *ch = NULL;
    j->s = pinas_chan_connect(c, hp, 5000, "server", &ch);
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
    CU_ASSERT_FATAL(pinas_chan_accept(ctx, l, 5000, "client") == PINAS_OK);
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
    CU_ASSERT_FATAL(pinas_chan_accept(ctx, l, 5000, "client") == PINAS_OK);
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
    pinas_status s = pinas_chan_connect(ctx, "127.0.0.1:1", 300, "server", &c);
    TU_ASSERT_ERR(ctx, s, "peer server");
    CU_ASSERT(pinas_now() - t0 < 2);
    CU_ASSERT(c == NULL);
    s = pinas_chan_connect(ctx, "nocolon", 300, "server", &c);
    TU_ASSERT_ERR(ctx, s, "HOST:PORT");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"full-duplex exchange of 32 MB each way", test_full_duplex},
                   {"peer closed: error names peer and layer", test_peer_closed},
                   {"garbage from the peer", test_garbage},
                   {"silent peer: timeout", test_timeout},
                   {"unexpected message kind", test_wrong_message},
                   {"connect: refused, bad address", test_connect_refused}};
    int rc = tu_run("crypto_channel", t, 6);
    pinas_ctx_free(ctx);
    return rc;
}
