/* A TTY-aware progress bar with ETA; plain, rate-limited lines when the output is not a terminal. */
#define _GNU_SOURCE
#include "pinas_common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pinas_progress {
    FILE *out;
    int tty, quiet;
    char *label;
    int64_t total, done;
    double start, last_print;
    double plain_every_s;
    char status[256];
};

void pinas_format_duration(double s, char *buf, size_t n)
{
    if (s < 0 || s != s) s = 0;
    if (s < 60)
        snprintf(buf, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

pinas_progress *pinas_progress_create(pinas_ctx *ctx, FILE *out, const char *label, int64_t total)
{
    pinas_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->out = out ? out : stderr;
    p->tty = isatty(fileno(p->out));
    p->quiet = pinas_ctx_log_level(ctx) >= PINAS_LOG_QUIET;
    p->label = pinas_strdup(label ? label : "");
    p->total = total;
    p->start = pinas_now();
    p->last_print = -1e9;
    p->plain_every_s = 10.0;
    return p;
}

static void render(pinas_progress *p, int final)
{
    double now = pinas_now(), el = now - p->start;
    char eta[16] = "?", elapsed[16];
    pinas_format_duration(el, elapsed, sizeof elapsed);
    if (p->done > 0 && p->total > 0) pinas_format_duration(el / (double)p->done * (double)(p->total - p->done), eta, sizeof eta);
    if (p->tty) {
        char bar[31];
        int width = 30, fill = p->total > 0 ? (int)(width * (double)p->done / (double)p->total) : 0;
        if (fill > width) fill = width;
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(p->out, "\r\033[K%s [%s] %lld/%lld %s %s%s%s", p->label, bar, (long long)p->done, (long long)p->total,
                p->status, final ? "in " : "ETA ", final ? elapsed : eta, final ? "\n" : "");
    } else {
        fprintf(p->out, "%s %lld/%lld %s elapsed %s%s%s\n", p->label, (long long)p->done, (long long)p->total, p->status,
                elapsed, final ? "" : " ETA ", final ? "" : eta);
    }
    fflush(p->out);
    p->last_print = now;
}

void pinas_progress_update(pinas_progress *p, int64_t done, const char *status)
{
    if (!p) return;
    p->done = done;
    if (status) snprintf(p->status, sizeof p->status, "%s", status);
    if (p->quiet) return;
    double now = pinas_now();
    if (p->tty ? now - p->last_print >= 0.1 : now - p->last_print >= p->plain_every_s) render(p, 0);
}

void pinas_progress_finish(pinas_progress *p)
{
    if (!p) return;
    if (!p->quiet) render(p, 1);
    free(p->label);
    free(p);
}
