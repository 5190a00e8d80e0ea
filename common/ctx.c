/* The pinas context: error message, seed, threads, device and log sink, passed down explicitly. */
#define _GNU_SOURCE
#include "pinas_common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#define PINAS_ERRMSG_MAX 2048

struct pinas_ctx {
    char err[PINAS_ERRMSG_MAX];
    uint64_t seed;
    int threads;
    char device[32];
    pinas_log_level level;
    pinas_log_fn log_fn;
    void *log_user;
};

const char *pinas_status_str(pinas_status s)
{
    switch (s) {
    case PINAS_OK: return "ok";
    case PINAS_EINVAL: return "invalid input";
    case PINAS_EIO: return "I/O error";
    case PINAS_ENOMEM: return "out of memory";
    case PINAS_EFORMAT: return "bad file format";
    case PINAS_ESHAPE: return "shape mismatch";
    case PINAS_EPEER: return "peer failure";
    case PINAS_ETORCH: return "libtorch error";
    case PINAS_EUNSUPPORTED: return "unsupported";
    case PINAS_EINTERNAL: return "internal error";
    }
    return "unknown status";
}

static void stderr_sink(void *user, pinas_log_level level, const char *msg)
{
    (void)user;
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (level == PINAS_LOG_INFO)
        fprintf(stderr, "%s\n", msg);
    else
        fprintf(stderr, "%s: %s\n", names[level < 4 ? level : 3], msg);
}

pinas_ctx *pinas_ctx_create(void)
{
    pinas_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->threads = 1;
    strcpy(c->device, "cpu");
    c->level = PINAS_LOG_INFO;
    c->log_fn = stderr_sink;
    return c;
}

void pinas_ctx_free(pinas_ctx *ctx) { free(ctx); }

const char *pinas_errmsg(const pinas_ctx *ctx) { return ctx ? ctx->err : "no context"; }

pinas_status pinas_error(pinas_ctx *ctx, pinas_status code, const char *fmt, ...)
{
    if (!ctx) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return code;
}

pinas_status pinas_error_prefix(pinas_ctx *ctx, pinas_status code, const char *fmt, ...)
{
    if (!ctx) return code;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[PINAS_ERRMSG_MAX];
    memcpy(old, ctx->err, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof ctx->err - 3) n = sizeof ctx->err - 3;
    memcpy(ctx->err, prefix, n);
    memcpy(ctx->err + n, ": ", 2);
    size_t room = sizeof ctx->err - n - 3, ol = strlen(old);
    if (ol > room) ol = room;
    memcpy(ctx->err + n + 2, old, ol);
    ctx->err[n + 2 + ol] = 0;
    return code;
}

void pinas_error_clear(pinas_ctx *ctx)
{
    if (ctx) ctx->err[0] = 0;
}

void pinas_ctx_set_seed(pinas_ctx *ctx, uint64_t seed) { ctx->seed = seed; }
uint64_t pinas_ctx_seed(const pinas_ctx *ctx) { return ctx->seed; }
void pinas_ctx_set_threads(pinas_ctx *ctx, int threads) { ctx->threads = threads > 0 ? threads : 1; }
int pinas_ctx_threads(const pinas_ctx *ctx) { return ctx->threads; }
void pinas_ctx_set_device(pinas_ctx *ctx, const char *device)
{
    snprintf(ctx->device, sizeof ctx->device, "%s", device ? device : "cpu");
}
const char *pinas_ctx_device(const pinas_ctx *ctx) { return ctx->device; }

void pinas_ctx_set_log_level(pinas_ctx *ctx, pinas_log_level level) { ctx->level = level; }
pinas_log_level pinas_ctx_log_level(const pinas_ctx *ctx) { return ctx ? ctx->level : PINAS_LOG_INFO; }
void pinas_ctx_set_log_fn(pinas_ctx *ctx, pinas_log_fn fn, void *user)
{
    ctx->log_fn = fn ? fn : stderr_sink;
    ctx->log_user = fn ? user : NULL;
}

void pinas_log(pinas_ctx *ctx, pinas_log_level level, const char *fmt, ...)
{
    if (!ctx || level < ctx->level) return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx->log_user, level, msg);
}

double pinas_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

char *pinas_machine_cpu_model(char *buf, size_t n)
{
    if (!n) return buf;
    buf[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t len = strcspn(v, "\n");
        while (len && v[len - 1] == ' ') len--;
        snprintf(buf, n, "%.*s", (int)len, v);
        break;
    }
    if (f) fclose(f);
    struct utsname u;
    if (!buf[0] && uname(&u) == 0) snprintf(buf, n, "%s", u.machine);
    return buf;
}

double pinas_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

uint64_t pinas_fnv1a64(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int pinas_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int *prev = malloc((lb + 1) * sizeof *prev), *cur = malloc((lb + 1) * sizeof *cur);
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return 1 << 20;
    }
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        int *t = prev;
        prev = cur;
        cur = t;
    }
    int d = prev[lb];
    free(prev);
    free(cur);
    return d;
}

const char *pinas_did_you_mean(const char *word, const char *const *candidates, int n)
{
    const char *best = NULL;
    int bestd = 1 << 20;
    for (int i = 0; i < n; i++) {
        int d = pinas_edit_distance(word, candidates[i]);
        if (d < bestd) {
            bestd = d;
            best = candidates[i];
        }
    }
    int limit = (int)strlen(word) / 3 + 1;
    if (limit > 3) limit = 3;
    return best && bestd <= limit ? best : NULL;
}
