/* Data-parallel runs: the launch environment, the process group (through the shim's c10d calls) and
 * the local launcher of --nproc. */
#define _GNU_SOURCE
#include "pinas_dist.h"
#include "train_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct pinas_dist_group {
    pt_dist *pt;
    int rank, world;
};

/* An integer environment variable: 1 when set (value in *out), 0 when unset, -1 when malformed. */
static int env_int(const char *name, long lo, long hi, long *out)
{
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *out = x;
    return 1;
}

/* The first host of a Slurm node list: "n[01-04,07],m" -> "n01". */
static void slurm_first_host(const char *list, char *out, size_t n)
{
    size_t i = 0, o = 0;
    int in_br = 0;
    for (; list[i] && o + 1 < n; i++) {
        char c = list[i];
        if (c == '[') {
            in_br = 1;
            continue;
        }
        if (in_br && (c == '-' || c == ',' || c == ']')) break;
        if (!in_br && c == ',') break;
        out[o++] = c;
    }
    out[o] = 0;
}

static pinas_status bad_var(pinas_ctx *ctx, const char *name)
{
    return pinas_error(ctx, PINAS_EINVAL, "environment: %s=\"%s\" is not a valid value", name, getenv(name));
}

/* Reads the rank, world and local rank from three variables; 0 when the first two are unset. */
static int read_triple(pinas_ctx *ctx, const char *vr, const char *vw, const char *vl, pinas_dist *d, pinas_status *s)
{
    long r = 0, w = 1, l = 0;
    int hr = env_int(vr, 0, 1 << 20, &r), hw = env_int(vw, 1, 1 << 20, &w), hl = env_int(vl, 0, 1 << 20, &l);
    if (hr == 0 && hw == 0) return 0;
    if (hr < 0 || hr == 0) *s = hr < 0 ? bad_var(ctx, vr) : pinas_error(ctx, PINAS_EINVAL, "environment: %s is set but %s is not", vw, vr);
    else if (hw <= 0) *s = hw < 0 ? bad_var(ctx, vw) : pinas_error(ctx, PINAS_EINVAL, "environment: %s is set but %s is not", vr, vw);
    else if (hl < 0) *s = bad_var(ctx, vl);
    else if (r >= w) *s = pinas_error(ctx, PINAS_EINVAL, "environment: %s=%ld is not below %s=%ld", vr, r, vw, w);
    d->rank = (int)r;
    d->world = (int)w;
    d->local_rank = (int)l;
    return 1;
}

pinas_status pinas_dist_from_env(pinas_ctx *ctx, const char *device, double timeout_s, pinas_dist *d)
{
    memset(d, 0, sizeof *d);
    d->world = 1;
    d->port = PINAS_DIST_DEFAULT_PORT;
    d->timeout_ms = (int64_t)((timeout_s > 0 ? timeout_s : 300) * 1000);
    snprintf(d->backend, sizeof d->backend, "%s", device && !strncmp(device, "cuda", 4) ? "nccl" : "gloo");
    snprintf(d->addr, sizeof d->addr, "127.0.0.1");
    snprintf(d->source, sizeof d->source, "single");
    pinas_status s = PINAS_OK;
    if (read_triple(ctx, "RANK", "WORLD_SIZE", "LOCAL_RANK", d, &s)) {
        snprintf(d->source, sizeof d->source, "env");
    } else if (!s && read_triple(ctx, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", d, &s)) {
        snprintf(d->source, sizeof d->source, "slurm");
        const char *ip = getenv("SLURM_LAUNCH_NODE_IPADDR"), *nl = getenv("SLURM_NODELIST");
        if (ip && *ip) snprintf(d->addr, sizeof d->addr, "%s", ip);
        else if (nl && *nl) slurm_first_host(nl, d->addr, sizeof d->addr);
    } else if (!s && read_triple(ctx, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", d, &s)) {
        snprintf(d->source, sizeof d->source, "openmpi");
    }
    if (s) return s;
    const char *ma = getenv("MASTER_ADDR");
    if (ma && *ma) snprintf(d->addr, sizeof d->addr, "%s", ma);
    long port = 0;
    int hp = env_int("MASTER_PORT", 1, 65535, &port);
    if (hp < 0) return bad_var(ctx, "MASTER_PORT");
    if (hp) d->port = (int)port;
    return PINAS_OK;
}

void pinas_dist_set_device(pinas_ctx *ctx, const pinas_dist *d, const char *device)
{
    char dev[32];
    if (d && d->world > 1 && device && !strcmp(device, "cuda")) {
        snprintf(dev, sizeof dev, "cuda:%d", d->local_rank);
        device = dev;
    }
    pinas_ctx_set_device(ctx, device);
}

/* ------------------------------------------------------------ the group */

static pinas_status dist_fail(pinas_ctx *ctx, const char *what)
{
    return pinas_error(ctx, PINAS_EPEER, "%s: %s", what, pt_errmsg());
}

pinas_status pinas_dist_group_create(pinas_ctx *ctx, const pinas_dist *d, pinas_dist_group **out)
{
    *out = NULL;
    if (!pt_dist_backend_built(d->backend))
        return pinas_error(ctx, PINAS_EUNSUPPORTED, "data-parallel backend %s is not in this build (nccl needs a CUDA libtorch)", d->backend);
    pinas_dist_group *g = calloc(1, sizeof *g);
    if (!g) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    g->rank = d->rank;
    g->world = d->world;
    if (pt_dist_create(d->backend, d->addr, d->port, d->rank, d->world, d->timeout_ms, &g->pt)) {
        free(g);
        return dist_fail(ctx, "data-parallel rendezvous");
    }
    *out = g;
    return PINAS_OK;
}

void pinas_dist_group_free(pinas_dist_group *g)
{
    if (!g) return;
    pt_dist_free(g->pt);
    free(g);
}

pinas_status pinas_dist_group_close(pinas_ctx *ctx, pinas_dist_group *g)
{
    if (!g) return PINAS_OK;
    pinas_status s = pinas_dist_barrier(ctx, g);
    pinas_dist_group_free(g);
    return s;
}

int pinas_dist_rank(const pinas_dist_group *g) { return g ? g->rank : 0; }
int pinas_dist_world(const pinas_dist_group *g) { return g ? g->world : 1; }
int pinas_dist_is_writer(const pinas_dist_group *g) { return !g || g->rank == 0; }

pinas_status pinas_dist_average_grads(pinas_ctx *ctx, pinas_dist_group *g, pt_tensor *const *params, int n, int64_t local_batch,
                                      int64_t global_batch)
{
    if (!g) return PINAS_OK;
    if (global_batch < 1) return pinas_error(ctx, PINAS_EINVAL, "data-parallel: empty global batch");
    if (pt_dist_allreduce_grads(g->pt, params, n, (double)local_batch / (double)global_batch)) return dist_fail(ctx, "data-parallel");
    return PINAS_OK;
}

pinas_status pinas_dist_sum(pinas_ctx *ctx, pinas_dist_group *g, double *v, int n)
{
    if (!g || n < 1) return PINAS_OK;
    return pt_dist_allreduce_f64(g->pt, v, n) ? dist_fail(ctx, "data-parallel") : PINAS_OK;
}

pinas_status pinas_dist_broadcast(pinas_ctx *ctx, pinas_dist_group *g, pt_tensor *const *ts, int n)
{
    if (!g || n < 1) return PINAS_OK;
    return pt_dist_broadcast(g->pt, ts, n, 0) ? dist_fail(ctx, "data-parallel") : PINAS_OK;
}

pinas_status pinas_dist_barrier(pinas_ctx *ctx, pinas_dist_group *g)
{
    if (!g) return PINAS_OK;
    return pt_dist_barrier(g->pt) ? dist_fail(ctx, "data-parallel") : PINAS_OK;
}

double pinas_dist_comm_seconds(const pinas_dist_group *g) { return g ? pt_dist_comm_seconds(g->pt) : 0; }

/* ------------------------------------------------------------ the local launcher */

static volatile sig_atomic_t launch_signal;

static void launch_on_signal(int sig) { launch_signal = sig; }

/* A TCP port free on the loopback right now (the kernel's pick). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0) port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void launch_child(int rank, int nproc, int port, char *const *argv)
{
    char v[32];
    snprintf(v, sizeof v, "%d", rank);
    setenv("RANK", v, 1);
    setenv("LOCAL_RANK", v, 1);
    snprintf(v, sizeof v, "%d", nproc);
    setenv("WORLD_SIZE", v, 1);
    setenv("LOCAL_WORLD_SIZE", v, 1);
    snprintf(v, sizeof v, "%d", port);
    setenv("MASTER_PORT", v, 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    execv(argv[0], argv);
    fprintf(stderr, "pinas: rank %d: cannot run %s: %s\n", rank, argv[0], strerror(errno));
    _exit(127);
}

static void describe_exit(int st, char *buf, size_t n)
{
    if (WIFEXITED(st)) snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(buf, n, "stopped (status %d)", st);
}

/* Waits for every child; forwards signals; after the first failure gives the others `grace`
 * seconds, then SIGTERM. *failed gets the first failing rank (-1: none), *fst its wait status. */
static void launch_wait(pid_t *pids, int nproc, double grace, int *failed, int *fst)
{
    int left = nproc;
    double deadline = -1;
    *failed = -1;
    while (left > 0) {
        if (launch_signal) {
            int sig = launch_signal;
            launch_signal = 0;
            for (int r = 0; r < nproc; r++)
                if (pids[r] > 0) kill(pids[r], sig);
        }
        int st = 0;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            for (int r = 0; r < nproc; r++)
                if (pids[r] == p) {
                    pids[r] = 0;
                    left--;
                    if (*failed < 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                        *failed = r;
                        *fst = st;
                        deadline = pinas_now() + grace;
                    }
                }
            continue;
        }
        if (p < 0 && errno != EINTR) break;
        if (deadline > 0 && pinas_now() > deadline) {
            for (int r = 0; r < nproc; r++)
                if (pids[r] > 0) kill(pids[r], SIGTERM);
            deadline = pinas_now() + 30;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

pinas_status pinas_dist_launch(pinas_ctx *ctx, int nproc, char *const *argv, double timeout_s)
{
    if (nproc < 1 || nproc > 4096) return pinas_error(ctx, PINAS_EINVAL, "--nproc must be in [1, 4096], got %d", nproc);
    int port = free_port();
    if (port < 0) return pinas_error(ctx, PINAS_EIO, "launcher: no free TCP port on 127.0.0.1: %s", strerror(errno));
    pid_t *pids = calloc((size_t)nproc, sizeof *pids);
    if (!pids) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    struct sigaction sa = {.sa_handler = launch_on_signal}, old[3];
    sigemptyset(&sa.sa_mask);
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);
    fflush(NULL);
    pinas_status s = PINAS_OK;
    for (int r = 0; r < nproc && !s; r++) {
        pid_t p = fork();
        if (p == 0) {
            for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
            launch_child(r, nproc, port, argv);
        }
        if (p < 0) s = pinas_error(ctx, PINAS_EIO, "launcher: fork of rank %d failed: %s", r, strerror(errno));
        else pids[r] = p;
    }
    if (s) /* the ranks already started find no peer and time out; stop them now */
        for (int r = 0; r < nproc; r++)
            if (pids[r] > 0) kill(pids[r], SIGTERM);
    int failed = -1, st = 0;
    launch_wait(pids, nproc, timeout_s + 10, &failed, &st);
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
    free(pids);
    if (!s && failed >= 0) {
        char how[96];
        describe_exit(st, how, sizeof how);
        s = pinas_error(ctx, PINAS_EPEER, "rank %d of %d %s (port %d)", failed, nproc, how, port);
    }
    return s;
}
