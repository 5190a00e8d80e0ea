/* The host-memory check and gate: how fast this host serves freshly mapped memory now, and waiting
 * for it to be its usual self before a measurement (see pinas_measure.h). */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum {
    HM_CHUNK = 2 << 20, /* bytes per timed chunk */
    HM_CHUNKS = 32,     /* 64 MB mapped */
    HM_READS = 16384,   /* random reads per chunk and round */
    HM_ROUNDS = 3,
};

/* The least of HM_ROUNDS rounds of HM_READS random reads and a stream over one chunk, in seconds of
 * thread CPU time. The read addresses do not depend on the values read, so the reads overlap as a
 * kernel's do: the figure follows the cost of reaching the pages (TLB, page walks), not one load's
 * latency. */
static double time_chunk(const uint64_t *c, uint64_t *rng)
{
    volatile uint64_t sink = 0;
    double best = INFINITY;
    const size_t words = HM_CHUNK / sizeof *c;
    for (int r = 0; r < HM_ROUNDS; r++) {
        uint64_t x = *rng, s = 0;
        double t0 = pinas_thread_cpu();
        for (int i = 0; i < HM_READS; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s += c[(x % (words / 8)) * 8];
        }
        for (size_t i = 0; i < words; i += 8) s += c[i];
        double t = pinas_thread_cpu() - t0;
        sink += s;
        *rng = x;
        if (t < best) best = t;
    }
    (void)sink;
    return best;
}

pinas_status pinas_measure_host_memory(pinas_ctx *ctx, pinas_measure_hostmem *out)
{
    memset(out, 0, sizeof *out);
    double t0 = pinas_now();
    size_t n = (size_t)HM_CHUNK * HM_CHUNKS;
    uint64_t *b = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return pinas_error(ctx, PINAS_ENOMEM, "host-memory check: mapping %zu MB failed", n >> 20);
    for (size_t i = 0; i < n / sizeof *b; i += 512) b[i] = i; /* every 4 KB page faulted in */
    double t[HM_CHUNKS];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int c = 0; c < HM_CHUNKS; c++) t[c] = time_chunk(b + (size_t)c * (HM_CHUNK / sizeof *b), &rng);
    munmap(b, n);
    qsort(t, HM_CHUNKS, sizeof *t, measure_cmp_double);
    out->ns = t[HM_CHUNKS / 2] / HM_READS * 1e9;
    out->fast_ns = t[0] / HM_READS * 1e9;
    out->seconds = pinas_now() - t0;
    return PINAS_OK;
}

int pinas_measure_host_disturbed(const pinas_measure_hostmem *m, double ref_ns, double tol_pct)
{
    double f = 1 + tol_pct / 100;
    return m->ns > m->fast_ns * f || (ref_ns > 0 && m->ns > ref_ns * f);
}

/* 1 when the file holds a virtio device id of 5 (the balloon) and its features string has bit 5
 * (VIRTIO_BALLOON_F_REPORTING) set. */
static int balloon_reports(const char *dev)
{
    char path[512], id[32] = "", feat[256] = "";
    snprintf(path, sizeof path, "/sys/bus/virtio/devices/%s/device", dev);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(id, sizeof id, f) != NULL;
    fclose(f);
    if (!ok || strtol(id, NULL, 0) != 5) return 0;
    snprintf(path, sizeof path, "/sys/bus/virtio/devices/%s/features", dev);
    f = fopen(path, "r");
    if (!f) return 0;
    ok = fgets(feat, sizeof feat, f) != NULL;
    fclose(f);
    return ok && strlen(feat) > 5 && feat[5] == '1';
}

int pinas_measure_free_page_reporting(void)
{
    DIR *d = opendir("/sys/bus/virtio/devices");
    if (!d) return 0;
    int on = 0;
    for (struct dirent *e; !on && (e = readdir(d));)
        if (e->d_name[0] != '.') on = balloon_reports(e->d_name);
    closedir(d);
    return on;
}

void pinas_measure_host_opts_default(pinas_measure_host_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tol_pct = 15;
    o->max_wait_s = 0;
    o->step_s = 10;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Folds one check into the log. */
static void log_check(pinas_measure_host_log *lg, const pinas_measure_hostmem *m, int disturbed)
{
    if (!lg->checks || m->ns < lg->min_ns) lg->min_ns = m->ns;
    if (!lg->checks || m->ns > lg->max_ns) lg->max_ns = m->ns;
    if (lg->checks < PINAS_MEASURE_HOST_KEEP) lg->ns[lg->checks] = m->ns;
    lg->checks++;
    lg->disturbed_checks += disturbed;
}

pinas_status pinas_measure_host_gate(pinas_ctx *ctx, const pinas_measure_host_opts *o, int wait, pinas_measure_host_log *lg, int *disturbed)
{
    *disturbed = 0;
    if (!(o->tol_pct > 0)) return PINAS_OK;
    for (int waited = 0;; waited = 1) {
        /* a slow check is checked again at once: a spell lasts minutes, a hiccup does not */
        pinas_measure_hostmem m;
        for (int again = 0; again < 2; again++) {
            pinas_status s = pinas_measure_host_memory(ctx, &m);
            if (s) return s;
            *disturbed = pinas_measure_host_disturbed(&m, o->ref_ns, o->tol_pct);
            log_check(lg, &m, *disturbed);
            if (!*disturbed) break;
        }
        if (!*disturbed || !wait || lg->waited_s + o->step_s > o->max_wait_s) return PINAS_OK;
        if (!waited) {
            char ref[48] = "";
            if (o->ref_ns > 0) snprintf(ref, sizeof ref, ", the profile's %.2f", o->ref_ns);
            lg->waits++;
            pinas_warn(ctx, "host memory slow (%.2f ns per read; its fastest chunk %.2f%s): waiting up to %.0f s for it to recover", m.ns,
                       m.fast_ns, ref, o->max_wait_s - lg->waited_s);
        }
        sleep_s(o->step_s);
        lg->waited_s += o->step_s;
    }
}

double pinas_measure_host_log_median(const pinas_measure_host_log *lg)
{
    int n = lg->checks < PINAS_MEASURE_HOST_KEEP ? lg->checks : PINAS_MEASURE_HOST_KEEP;
    if (!n) return 0;
    double v[PINAS_MEASURE_HOST_KEEP];
    memcpy(v, lg->ns, (size_t)n * sizeof *v);
    return measure_median(v, n);
}

pinas_status measure_host_opts_check(pinas_ctx *ctx, const pinas_measure_host_opts *o, const char *who)
{
    if (!(o->tol_pct >= 0 && o->tol_pct <= 100))
        return pinas_error(ctx, PINAS_EINVAL, "%s: the host-memory tolerance must be in [0, 100] %%, got %g", who, o->tol_pct);
    if (!(o->max_wait_s >= 0 && o->max_wait_s <= 3600))
        return pinas_error(ctx, PINAS_EINVAL, "%s: the longest wait for the host must be in [0, 3600] s, got %g", who, o->max_wait_s);
    if (!(o->step_s > 0 && o->step_s <= 600))
        return pinas_error(ctx, PINAS_EINVAL, "%s: the host check's interval must be in (0, 600] s, got %g", who, o->step_s);
    if (!(o->ref_ns >= 0 && o->ref_ns < 1e6)) return pinas_error(ctx, PINAS_EINVAL, "%s: host reference %g ns out of range", who, o->ref_ns);
    return PINAS_OK;
}

cJSON *measure_host_log_json(const pinas_measure_host_log *lg, int disturbed_passes)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddBoolToObject(h, "free_page_reporting", pinas_measure_free_page_reporting());
    cJSON_AddNumberToObject(h, "checks", lg->checks);
    cJSON_AddNumberToObject(h, "disturbed_checks", lg->disturbed_checks);
    cJSON_AddNumberToObject(h, "waits", lg->waits);
    cJSON_AddNumberToObject(h, "waited_s", lg->waited_s);
    cJSON_AddNumberToObject(h, "disturbed_passes", disturbed_passes);
    if (lg->checks) {
        cJSON_AddNumberToObject(h, "median_ns", pinas_measure_host_log_median(lg));
        cJSON_AddNumberToObject(h, "min_ns", lg->min_ns);
        cJSON_AddNumberToObject(h, "max_ns", lg->max_ns);
    }
    return h;
}

double pinas_measure_host_ref_of(pinas_ctx *ctx, const char *path)
{
    pinas_cost_hw *old = NULL;
    pinas_cpu_params cp;
    double ns = 0;
    if (access(path, R_OK) == 0 && !pinas_cost_hw_load(ctx, path, &old) && !pinas_cost_hw_cpu_params(ctx, old, &cp)) {
        const char *fitted = pinas_cost_hw_cpu_model(old);
        if (fitted && *fitted && !pinas_machine_mismatch(path, fitted, NULL, NULL, 0)) ns = cp.host_memory_ns;
    }
    pinas_error_clear(ctx);
    pinas_cost_hw_free(old);
    return ns;
}
