/* The parties' channel: TCP with framed messages, timeouts, and full-duplex exchange (poll). */
#define _GNU_SOURCE
#include "pinas_mpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_MAGIC 0x31534e50u /* "PNS1" */

typedef struct {
    uint32_t magic, tag;
    uint64_t len, seq;
} frame;

struct pinas_chan {
    int lfd, fd, port, timeout_ms;
    char peer[48], addr[160], layer[160];
    uint64_t sent, recvd, seq_out, seq_in;
    pinas_chan_tap_fn tap;
    void *tap_user;
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
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0) {
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

pinas_status pinas_chan_accept(pinas_ctx *ctx, pinas_chan *c, int timeout_ms, const char *peer_name)
{
    snprintf(c->peer, sizeof c->peer, "%s", peer_name ? peer_name : "peer");
    struct pollfd p = {.fd = c->lfd, .events = POLLIN};
    int rc;
    do rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return pinas_error(ctx, PINAS_EPEER, "peer %s did not connect to %s within %.1f s", c->peer, c->addr,
                           timeout_ms / 1000.0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = rc > 0 ? accept4(c->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC) : -1;
    if (fd < 0) return pinas_error(ctx, PINAS_EIO, "accept on %s: %s", c->addr, strerror(errno));
    char h[64] = "?";
    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, NULL, 0, NI_NUMERICHOST);
    snprintf(c->addr, sizeof c->addr, "%s", h);
    close(c->lfd);
    c->lfd = -1;
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    tune(fd);
    return PINAS_OK;
}

pinas_status pinas_chan_connect(pinas_ctx *ctx, const char *hostport, int timeout_ms, const char *peer_name,
                                pinas_chan **out)
{
    *out = NULL;
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
        return pinas_error(ctx, PINAS_EPEER, "peer %s at %s: cannot connect within %.1f s: %s",
                           peer_name ? peer_name : "peer", hostport, timeout_ms / 1000.0, strerror(err));
    pinas_chan *c = chan_new();
    if (!c) {
        close(fd);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    snprintf(c->peer, sizeof c->peer, "%s", peer_name ? peer_name : "peer");
    snprintf(c->addr, sizeof c->addr, "%s", hostport);
    tune(fd);
    *out = c;
    return PINAS_OK;
}

void pinas_chan_free(pinas_chan *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    if (c->lfd >= 0) close(c->lfd);
    free(c);
}

void pinas_chan_set_timeout(pinas_chan *c, int timeout_ms) { c->timeout_ms = timeout_ms; }
void pinas_chan_set_layer(pinas_chan *c, const char *layer) { snprintf(c->layer, sizeof c->layer, "%s", layer); }
uint64_t pinas_chan_bytes_sent(const pinas_chan *c) { return c->sent; }
uint64_t pinas_chan_bytes_recv(const pinas_chan *c) { return c->recvd; }

static pinas_status peer_err(pinas_ctx *ctx, pinas_chan *c, const char *what)
{
    return pinas_error(ctx, PINAS_EPEER, "peer %s (%s), layer %s: %s", c->peer, c->addr, c->layer, what);
}

/* Moves a header + payload out and a header + payload in, whichever is ready, until both are done.
 * Either direction may be absent. A silence of timeout_ms in the middle of a transfer is an error. */
static pinas_status xfer(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, const void *sbuf, size_t slen, int do_send,
                         void *rbuf, size_t rlen, int do_recv)
{
    if (c->fd < 0) return peer_err(ctx, c, "not connected");
    frame sh = {FRAME_MAGIC, tag, slen, c->seq_out}, rh;
    size_t sdone = 0, rdone = 0, stotal = do_send ? sizeof sh + slen : 0, rtotal = do_recv ? sizeof rh : 0;
    int header_ok = 0;
    while (sdone < stotal || rdone < rtotal) {
        struct pollfd p = {.fd = c->fd, .events = (short)((sdone < stotal ? POLLOUT : 0) | (rdone < rtotal ? POLLIN : 0))};
        int rc = poll(&p, 1, c->timeout_ms);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return peer_err(ctx, c, strerror(errno));
        if (rc == 0) {
            char m[160];
            snprintf(m, sizeof m, "timed out after %.1f s waiting to %s", c->timeout_ms / 1000.0,
                     rdone < rtotal ? "receive" : "send");
            return peer_err(ctx, c, m);
        }
        if (sdone < stotal && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            const uint8_t *src;
            size_t avail;
            if (sdone < sizeof sh) {
                src = (const uint8_t *)&sh + sdone;
                avail = sizeof sh - sdone;
            } else {
                src = (const uint8_t *)sbuf + (sdone - sizeof sh);
                avail = stotal - sdone;
            }
            ssize_t w = send(c->fd, src, avail, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                char m[160];
                snprintf(m, sizeof m, "send failed: %s (the peer died or closed the connection)", strerror(errno));
                return peer_err(ctx, c, m);
            }
            if (w > 0) sdone += (size_t)w;
        }
        if (rdone < rtotal && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
            uint8_t *dst;
            size_t want;
            if (rdone < sizeof rh) {
                dst = (uint8_t *)&rh + rdone;
                want = sizeof rh - rdone;
            } else {
                dst = (uint8_t *)rbuf + (rdone - sizeof rh);
                want = rtotal - rdone;
            }
            ssize_t r = recv(c->fd, dst, want, 0);
            if (r == 0) return peer_err(ctx, c, "connection closed (the peer exited or died)");
            if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                char m[160];
                snprintf(m, sizeof m, "receive failed: %s", strerror(errno));
                return peer_err(ctx, c, m);
            }
            if (r > 0) rdone += (size_t)r;
            if (!header_ok && rdone == sizeof rh) {
                char m[200];
                if (rh.magic != FRAME_MAGIC) {
                    snprintf(m, sizeof m, "garbage received (bad frame magic 0x%08x)", rh.magic);
                    return peer_err(ctx, c, m);
                }
                if (rh.tag != tag || rh.len != rlen || rh.seq != c->seq_in) {
                    snprintf(m, sizeof m,
                             "unexpected message (tag %u, %llu bytes, #%llu; expected tag %u, %zu bytes, #%llu): "
                             "the parties disagree on the protocol",
                             rh.tag, (unsigned long long)rh.len, (unsigned long long)rh.seq, tag, rlen,
                             (unsigned long long)c->seq_in);
                    return peer_err(ctx, c, m);
                }
                header_ok = 1;
                rtotal = sizeof rh + rlen;
            }
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
