/* Tests for crypto/report.c: a party's report written as JSON and read back unchanged, the parties'
 * views merged, malformed reports refused by field. */
#define _GNU_SOURCE
#include "mpc_internal.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static pinas_ctx *ctx;

static void counts_fill(pinas_mpc_counts *c, uint64_t base)
{
    for (int p = 0; p < 2; p++) {
        c->bytes[p] = base + 1 + p;
        c->aes_blocks[p] = base + 10 + p;
        c->ring_macs[p] = base + 100 + p;
    }
    c->rounds = base % 7 + 1;
}

/* A report as pinas_mpc_party_run makes it: rows, the session, and totals = rows + session. */
static pinas_mpc_report *made_report(uint64_t base)
{
    pinas_mpc_report *r = calloc(1, sizeof *r);
    r->n_layers = 3;
    r->layers = calloc(3, sizeof *r->layers);
    const char *ids[] = {"c1", "a1", "output"};
    for (int l = 0; l < 3; l++) {
        snprintf(r->layers[l].id, sizeof r->layers[l].id, "%s", ids[l]);
        r->layers[l].online_s = 0.001 * (l + 1);
        counts_fill(&r->layers[l].measured.online, base + 1000 * l);
        counts_fill(&r->layers[l].measured.offline, base + 1000 * l + 300);
        counts_fill(&r->layers[l].measured.setup, base + 1000 * l + 600);
    }
    counts_fill(&r->session, base + 7);
    r->online_s = 0.25;
    r->offline_s = 1.5;
    report_retotal(r);
    return r;
}

static char *text(const pinas_mpc_report *r)
{
    cJSON *j = pinas_mpc_report_json(r);
    char *t = cJSON_Print(j);
    cJSON_Delete(j);
    return t;
}

/* JSON -> report -> JSON is the identity, and the session comes back from the totals. */
static void test_roundtrip(void)
{
    pinas_mpc_report *r = made_report(5), *back = NULL;
    cJSON *j = pinas_mpc_report_json(r);
    cJSON_AddStringToObject(j, "role", "client"); /* other keys (the party's) are ignored */
    CU_ASSERT_FATAL(pinas_mpc_report_from_json(ctx, j, "r.json", &back) == PINAS_OK);
    CU_ASSERT_EQUAL(back->n_layers, 3);
    CU_ASSERT_STRING_EQUAL(back->layers[2].id, "output");
    CU_ASSERT(pinas_mpc_counts_equal(&back->session, &r->session));
    for (int l = 0; l < 3; l++) {
        CU_ASSERT(pinas_mpc_counts_equal(&back->layers[l].measured.online, &r->layers[l].measured.online));
        CU_ASSERT(pinas_mpc_counts_equal(&back->layers[l].measured.offline, &r->layers[l].measured.offline));
        CU_ASSERT(pinas_mpc_counts_equal(&back->layers[l].measured.setup, &r->layers[l].measured.setup));
    }
    CU_ASSERT_DOUBLE_EQUAL(back->offline_s, 1.5, 0);
    char *a = text(r), *b = text(back);
    CU_ASSERT_STRING_EQUAL(a, b);
    free(a), free(b);
    /* through a file */
    const char *path = tu_path("report.json");
    CU_ASSERT_FATAL(pinas_json_save(ctx, path, j) == PINAS_OK);
    pinas_mpc_report *f = NULL;
    CU_ASSERT_FATAL(pinas_mpc_report_load(ctx, path, &f) == PINAS_OK);
    CU_ASSERT(pinas_mpc_counts_equal(&f->totals.setup, &r->totals.setup));
    pinas_mpc_report_free(f);
    cJSON_Delete(j);
    pinas_mpc_report_free(back);
    pinas_mpc_report_free(r);
    pinas_mpc_report_free(NULL);
}

/* The server's own online work goes into the client's rows; nothing else changes, the totals neither. */
static void test_merge(void)
{
    pinas_mpc_report *c = made_report(5), *s = made_report(50000), *orig = made_report(5);
    pinas_mpc_report_merge(c, s);
    for (int l = 0; l < 3; l++) {
        const pinas_mpc_counts *m = &c->layers[l].measured.online, *sv = &s->layers[l].measured.online,
                               *o = &orig->layers[l].measured.online;
        CU_ASSERT_EQUAL(m->aes_blocks[0], sv->aes_blocks[0]);
        CU_ASSERT_EQUAL(m->ring_macs[0], sv->ring_macs[0]);
        CU_ASSERT_EQUAL(m->aes_blocks[1], o->aes_blocks[1]);
        CU_ASSERT_EQUAL(m->ring_macs[1], o->ring_macs[1]);
        CU_ASSERT(m->bytes[0] == o->bytes[0] && m->bytes[1] == o->bytes[1] && m->rounds == o->rounds);
        CU_ASSERT(pinas_mpc_counts_equal(&c->layers[l].measured.offline, &orig->layers[l].measured.offline));
    }
    CU_ASSERT(pinas_mpc_counts_equal(&c->totals.online, &orig->totals.online));
    /* re-totalled, the totals hold the server's work too */
    report_retotal(c);
    uint64_t want = 0;
    for (int l = 0; l < 3; l++) want += s->layers[l].measured.online.aes_blocks[0];
    CU_ASSERT_EQUAL(c->totals.online.aes_blocks[0], want);
    /* reports of different nets are not merged */
    pinas_mpc_report *short_r = made_report(9);
    short_r->n_layers = 2;
    pinas_mpc_report_merge(orig, short_r);
    CU_ASSERT_EQUAL(orig->layers[0].measured.online.aes_blocks[0], 5 + 10); /* unchanged */
    pinas_mpc_report_free(short_r);
    pinas_mpc_report_free(c), pinas_mpc_report_free(s), pinas_mpc_report_free(orig);
}

/* A malformed report names what is wrong. */
static void test_malformed(void)
{
    pinas_mpc_report *r = made_report(5), *back = NULL;
    cJSON *j = pinas_mpc_report_json(r);
    cJSON *o = cJSON_CreateObject();
    TU_ASSERT_ERR(ctx, pinas_mpc_report_from_json(ctx, o, "x.json", &back), "x.json: not a pinas report");
    cJSON *l1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "layers"), 1);
    cJSON *on = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(l1, "measured"), "online");
    cJSON_ReplaceItemInObject(on, "rounds", cJSON_CreateNumber(-1));
    TU_ASSERT_ERR(ctx, pinas_mpc_report_from_json(ctx, j, "x.json", &back), "layers[1] (a1).measured.online");
    cJSON_ReplaceItemInObject(on, "rounds", cJSON_CreateNumber(1));
    cJSON_ReplaceItemInObject(on, "bytes", cJSON_CreateString("many"));
    TU_ASSERT_ERR(ctx, pinas_mpc_report_from_json(ctx, j, "x.json", &back), "online.bytes: expected [server, client]");
    CU_ASSERT(back == NULL);
    TU_ASSERT_ERR(ctx, pinas_mpc_report_load(ctx, tu_path("missing.json"), &back), "missing.json");
    cJSON_Delete(o);
    cJSON_Delete(j);
    pinas_mpc_report_free(r);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"report JSON round trip", test_roundtrip},
                   {"merging the parties' views", test_merge},
                   {"malformed reports named", test_malformed}};
    int rc = tu_run("crypto_report", t, 3);
    pinas_ctx_free(ctx);
    return rc;
}
