/* Measurements in a child process (fork) that sends its figures back over a pipe: a fresh heap on
 * fresh physical pages for every pass, so one pass's luck of placement is not every pass's. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A message on the pipe: this header, then len bytes. */
enum { MSG_END = 0, MSG_DATA = 1, MSG_ERROR = 2 };
typedef struct {
    int tag, status;
    size_t len;
} msg_head;

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 1: all n bytes read; 0: end of stream or an error first. */
static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

static int send_msg(int fd, int tag, int status, const void *a, size_t na, const void *b, size_t nb)
{
    msg_head h = {tag, status, na + nb};
    return write_all(fd, &h, sizeof h) || (na && write_all(fd, a, na)) || (nb && write_all(fd, b, nb)) ? -1 : 0;
}

int measure_child_send(int fd, const void *a, size_t na, const void *b, size_t nb) { return send_msg(fd, MSG_DATA, 0, a, na, b, nb); }

/* The next message: 1 and *buf (owned) of *len bytes; 0 at the child's end; a negative pinas_status
 * (the child's error, or a broken pipe: then *vanished = 1) with ctx's error set. */
static int child_recv(pinas_ctx *ctx, int fd, void **buf, size_t *len, int *vanished)
{
    *buf = NULL;
    *len = 0;
    msg_head h;
    if (!read_all(fd, &h, sizeof h)) {
        *vanished = 1;
        return pinas_error(ctx, PINAS_EIO, "measure: the measuring child process stopped before reporting");
    }
    if (h.tag == MSG_END) return 0;
    if (h.len > ((size_t)1 << 34)) return pinas_error(ctx, PINAS_EIO, "measure: a message of %zu bytes from the measuring child", h.len);
    char *b = malloc(h.len + 1);
    if (!b) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!read_all(fd, b, h.len)) {
        free(b);
        *vanished = 1;
        return pinas_error(ctx, PINAS_EIO, "measure: the measuring child process stopped midway through a message");
    }
    b[h.len] = 0;
    if (h.tag == MSG_ERROR) {
        pinas_status s = pinas_error(ctx, h.status < 0 ? (pinas_status)h.status : PINAS_EIO, "%s", b);
        free(b);
        return s;
    }
    *buf = b;
    *len = h.len;
    return 1;
}

/* Every message of the child to take(), until its end. */
static pinas_status take_all(pinas_ctx *ctx, int fd, measure_take_fn take, void *user, int *vanished)
{
    void *buf;
    size_t len;
    int r;
    pinas_status s = PINAS_OK;
    while (!s && (r = child_recv(ctx, fd, &buf, &len, vanished)) != 0) {
        if (r < 0) return (pinas_status)r;
        s = take(ctx, buf, len, user);
        free(buf);
    }
    return s;
}

pinas_status measure_in_child(pinas_ctx *ctx, measure_child_fn child, measure_take_fn take, void *user)
{
    int fds[2];
    if (pipe(fds) != 0) return pinas_error(ctx, PINAS_EIO, "measure: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return pinas_error(ctx, PINAS_EIO, "measure: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        pinas_status s = child(ctx, fds[1], user);
        const char *msg = s ? pinas_errmsg(ctx) : "";
        int bad = s ? send_msg(fds[1], MSG_ERROR, s, msg, strlen(msg), NULL, 0) : send_msg(fds[1], MSG_END, 0, NULL, 0, NULL, 0);
        _exit(bad ? 3 : 0); /* no atexit handlers, no stdio buffers of the parent flushed twice */
    }
    close(fds[1]);
    int vanished = 0;
    pinas_status s = take_all(ctx, fds[0], take, user, &vanished);
    int stopped = s && !vanished; /* an error of ours or the child's: its further work is not wanted */
    if (stopped) kill(pid, SIGKILL);
    close(fds[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    /* a child killed by a signal we did not send is the cause of a stream that broke off */
    if (!stopped && WIFSIGNALED(ws))
        s = pinas_error(ctx, PINAS_EIO, "measure: the measuring child process died of signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    else if (!s && (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0))
        s = pinas_error(ctx, PINAS_EIO, "measure: the measuring child process exited with status %d", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    return s;
}
