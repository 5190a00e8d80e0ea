/* Counters and per-layer reports: their arithmetic, their JSON form (written and read back), and merging the parties' views. */
#define _GNU_SOURCE
#include "mpc_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void pinas_mpc_counts_add(pinas_mpc_counts *acc, const pinas_mpc_counts *c)
{
    for (int p = 0; p < 2; p++) {
        acc->bytes[p] += c->bytes[p];
        acc->aes_blocks[p] += c->aes_blocks[p];
        acc->ring_macs[p] += c->ring_macs[p];
    }
    acc->rounds += c->rounds;
}

void pinas_mpc_cost_add(pinas_mpc_cost *acc, const pinas_mpc_cost *c)
{
    pinas_mpc_counts_add(&acc->online, &c->online);
    pinas_mpc_counts_add(&acc->offline, &c->offline);
    pinas_mpc_counts_add(&acc->setup, &c->setup);
}

int pinas_mpc_counts_equal(const pinas_mpc_counts *a, const pinas_mpc_counts *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

void pinas_mpc_report_free(pinas_mpc_report *r)
{
    if (!r) return;
    free(r->layers);
    free(r);
}

void pinas_mpc_report_merge(pinas_mpc_report *client, const pinas_mpc_report *server)
{
    if (!client || !server || client->n_layers != server->n_layers) return;
    for (int l = 0; l < client->n_layers; l++) {
        pinas_mpc_counts *c = &client->layers[l].measured.online;
        const pinas_mpc_counts *sv = &server->layers[l].measured.online;
        c->aes_blocks[0] = sv->aes_blocks[0];
        c->ring_macs[0] = sv->ring_macs[0];
        client->layers[l].party[0] = server->layers[l].party[0];
    }
}

void report_retotal(pinas_mpc_report *r)
{
    memset(&r->totals, 0, sizeof r->totals);
    for (int l = 0; l < r->n_layers; l++) pinas_mpc_cost_add(&r->totals, &r->layers[l].measured);
    pinas_mpc_counts_add(&r->totals.setup, &r->session);
}

/* ------------------------------------------------------------------ JSON out */

cJSON *pinas_mpc_counts_json(const pinas_mpc_counts *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "bytes", cJSON_CreateDoubleArray((double[]){(double)c->bytes[0], (double)c->bytes[1]}, 2));
    cJSON_AddNumberToObject(o, "rounds", (double)c->rounds);
    cJSON_AddItemToObject(o, "aes_blocks",
                          cJSON_CreateDoubleArray((double[]){(double)c->aes_blocks[0], (double)c->aes_blocks[1]}, 2));
    cJSON_AddItemToObject(o, "ring_macs",
                          cJSON_CreateDoubleArray((double[]){(double)c->ring_macs[0], (double)c->ring_macs[1]}, 2));
    return o;
}

static cJSON *cost_json(const pinas_mpc_cost *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "online", pinas_mpc_counts_json(&c->online));
    cJSON_AddItemToObject(o, "offline", pinas_mpc_counts_json(&c->offline));
    cJSON_AddItemToObject(o, "setup", pinas_mpc_counts_json(&c->setup));
    return o;
}

static int times_known(const pinas_mpc_node_times *t) { return t->wall_s > 0 || t->cpu_s > 0; }

static cJSON *times_json(const pinas_mpc_node_times *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "wall_ms", t->wall_s * 1e3);
    cJSON_AddNumberToObject(o, "cpu_ms", t->cpu_s * 1e3);
    cJSON_AddNumberToObject(o, "comm_ms", t->comm_s * 1e3);
    cJSON_AddNumberToObject(o, "comm_cpu_ms", t->comm_cpu_s * 1e3);
    cJSON_AddNumberToObject(o, "wait_ms", t->wait_s * 1e3);
    cJSON_AddNumberToObject(o, "prep_ms", t->prep_s * 1e3);
    return o;
}

cJSON *pinas_mpc_report_json(const pinas_mpc_report *r)
{
    cJSON *o = cJSON_CreateObject(), *ls = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < r->n_layers; i++) {
        const pinas_mpc_layer_report *l = &r->layers[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", l->id);
        cJSON_AddNumberToObject(j, "online_ms", l->online_s * 1e3);
        for (int p = 0; p < 2; p++)
            if (times_known(&l->party[p])) cJSON_AddItemToObject(j, p ? "client" : "server", times_json(&l->party[p]));
        cJSON_AddNumberToObject(j, "prep_bytes_server", (double)l->measured.offline.bytes[0]);
        cJSON_AddNumberToObject(j, "prep_bytes_client", (double)l->measured.offline.bytes[1]);
        cJSON_AddNumberToObject(j, "sent_bytes_server", (double)l->measured.online.bytes[0]);
        cJSON_AddNumberToObject(j, "sent_bytes_client", (double)l->measured.online.bytes[1]);
        cJSON_AddNumberToObject(j, "rounds", (double)l->measured.online.rounds);
        cJSON_AddItemToObject(j, "measured", cost_json(&l->measured));
        cJSON_AddItemToArray(ls, j);
    }
    cJSON *t = cost_json(&r->totals);
    cJSON_AddNumberToObject(t, "online_s", r->online_s);
    cJSON_AddNumberToObject(t, "offline_s", r->offline_s);
    cJSON_AddItemToObject(o, "totals", t);
    cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)r->peak_rss);
    cJSON_AddNumberToObject(o, "prep_read_s", r->prep_read_s);
    cJSON_AddNumberToObject(o, "threads", r->threads);
    return o;
}

/* ------------------------------------------------------------------ JSON in */

/* A non-negative integer count (exact below 2^53, as the writer's doubles are). */
static pinas_status count_at(pinas_ctx *ctx, const cJSON *v, const char *where, const char *what, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: %s: expected a non-negative integer", where, what);
    *out = (uint64_t)v->valuedouble;
    return PINAS_OK;
}

static pinas_status pair_at(pinas_ctx *ctx, const cJSON *o, const char *key, const char *where, const char *what,
                            uint64_t out[2])
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: %s.%s: expected [server, client]", where, what, key);
    pinas_status s = count_at(ctx, cJSON_GetArrayItem(a, 0), where, what, &out[0]);
    return s ? s : count_at(ctx, cJSON_GetArrayItem(a, 1), where, what, &out[1]);
}

static pinas_status counts_from_json(pinas_ctx *ctx, const cJSON *o, const char *where, const char *what,
                                     pinas_mpc_counts *c)
{
    if (!cJSON_IsObject(o)) return pinas_error(ctx, PINAS_EFORMAT, "%s: %s: expected an object of counts", where, what);
    pinas_status s = pair_at(ctx, o, "bytes", where, what, c->bytes);
    if (!s) s = count_at(ctx, cJSON_GetObjectItemCaseSensitive(o, "rounds"), where, what, &c->rounds);
    if (!s) s = pair_at(ctx, o, "aes_blocks", where, what, c->aes_blocks);
    if (!s) s = pair_at(ctx, o, "ring_macs", where, what, c->ring_macs);
    return s;
}

static pinas_status cost_from_json(pinas_ctx *ctx, const cJSON *o, const char *where, const char *what, pinas_mpc_cost *c)
{
    static const char *parts[] = {"online", "offline", "setup"};
    pinas_mpc_counts *dst[] = {&c->online, &c->offline, &c->setup};
    pinas_status s = PINAS_OK;
    for (int k = 0; k < 3 && !s; k++) {
        char *w = pinas_strfmt("%s.%s", what, parts[k]);
        s = counts_from_json(ctx, cJSON_GetObjectItemCaseSensitive(o, parts[k]), where, w ? w : what, dst[k]);
        free(w);
    }
    return s;
}

static double num_or_zero(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void times_from_json(const cJSON *o, pinas_mpc_node_times *t)
{
    t->wall_s = num_or_zero(o, "wall_ms") / 1e3;
    t->cpu_s = num_or_zero(o, "cpu_ms") / 1e3;
    t->comm_s = num_or_zero(o, "comm_ms") / 1e3;
    t->comm_cpu_s = num_or_zero(o, "comm_cpu_ms") / 1e3;
    t->wait_s = num_or_zero(o, "wait_ms") / 1e3;
    t->prep_s = num_or_zero(o, "prep_ms") / 1e3;
}

static pinas_status layer_from_json(pinas_ctx *ctx, const cJSON *l, const char *where, int i, pinas_mpc_layer_report *out)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(l, "id");
    if (!cJSON_IsString(id)) return pinas_error(ctx, PINAS_EFORMAT, "%s: layers[%d]: no \"id\"", where, i);
    snprintf(out->id, sizeof out->id, "%s", id->valuestring);
    out->online_s = num_or_zero(l, "online_ms") / 1e3;
    for (int p = 0; p < 2; p++) /* absent in older reports, or for a party not merged in: zeros */
        times_from_json(cJSON_GetObjectItemCaseSensitive(l, p ? "client" : "server"), &out->party[p]);
    char *w = pinas_strfmt("layers[%d] (%s).measured", i, out->id);
    pinas_status s = cost_from_json(ctx, cJSON_GetObjectItemCaseSensitive(l, "measured"), where, w ? w : "measured",
                                    &out->measured);
    free(w);
    return s;
}

pinas_status pinas_mpc_report_from_json(pinas_ctx *ctx, const cJSON *j, const char *where, pinas_mpc_report **out)
{
    *out = NULL;
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(j, "layers"), *t = cJSON_GetObjectItemCaseSensitive(j, "totals");
    if (!cJSON_IsArray(ls) || !cJSON_IsObject(t))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: not a pinas report (expected \"layers\" and \"totals\")", where);
    pinas_mpc_report *r = calloc(1, sizeof *r);
    int n = cJSON_GetArraySize(ls);
    if (r) r->layers = calloc((size_t)n + 1, sizeof *r->layers);
    if (!r || !r->layers) {
        free(r);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    pinas_status s = PINAS_OK;
    const cJSON *l;
    cJSON_ArrayForEach(l, ls)
    {
        s = layer_from_json(ctx, l, where, r->n_layers, &r->layers[r->n_layers]);
        if (s) break;
        r->n_layers++;
    }
    if (!s) s = cost_from_json(ctx, t, where, "totals", &r->totals);
    if (s) {
        pinas_mpc_report_free(r);
        return s;
    }
    r->online_s = num_or_zero(t, "online_s");
    r->offline_s = num_or_zero(t, "offline_s");
    double rss = num_or_zero(j, "peak_rss_bytes"); /* absent in reports of older versions: 0, unknown */
    r->peak_rss = rss > 0 && rss < 9007199254740992.0 ? (uint64_t)rss : 0;
    r->prep_read_s = num_or_zero(j, "prep_read_s");
    r->threads = (int)num_or_zero(j, "threads");
    /* the session's counts are what the totals hold beyond the rows (see make_report in party.c) */
    pinas_mpc_cost rows = {0};
    for (int i = 0; i < r->n_layers; i++) pinas_mpc_cost_add(&rows, &r->layers[i].measured);
    r->session.rounds = r->totals.setup.rounds - rows.setup.rounds;
    for (int p = 0; p < 2; p++) {
        r->session.bytes[p] = r->totals.setup.bytes[p] - rows.setup.bytes[p];
        r->session.aes_blocks[p] = r->totals.setup.aes_blocks[p] - rows.setup.aes_blocks[p];
        r->session.ring_macs[p] = r->totals.setup.ring_macs[p] - rows.setup.ring_macs[p];
    }
    *out = r;
    return PINAS_OK;
}

pinas_status pinas_mpc_report_load(pinas_ctx *ctx, const char *path, pinas_mpc_report **out)
{
    *out = NULL;
    cJSON *j = NULL;
    pinas_status s = pinas_json_load(ctx, path, &j);
    if (!s) s = pinas_mpc_report_from_json(ctx, j, path, out);
    cJSON_Delete(j);
    return s;
}

/* VmHWM of /proc/self/status: the peak of this process image, reset by exec. getrusage's ru_maxrss is
 * not: Linux carries the pre-exec image's peak over, so a party forked from a large parent (pinas
 * infer) would report its parent's size. ru_maxrss is the fallback where /proc is missing. */
uint64_t pinas_mpc_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb) return (uint64_t)kb * 1024;
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0;
}
