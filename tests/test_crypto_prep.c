/* Tests for crypto/prep.c and the parties' checks: the preprocessing file round trip (mode 0600), corrupt,
 * truncated and foreign files rejected, mismatched models and sessions refused; and the chi-square
 * uniformity of what the client receives (>= 1 MB). */
#define _GNU_SOURCE
#include "pinas_mpc.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static pinas_ctx *ctx;

static pinas_net *tiny(pinas_cand_kind act)
{
    pinas_net *n = NULL;
    CU_ASSERT_FATAL(pinas_net_load(ctx, "tests/golden/tiny_space.json", &n) == PINAS_OK);
    for (int i = 0; i < pinas_net_n_nodes(n); i++) {
        const pinas_node *nd = pinas_net_node(n, i);
        if (!pinas_node_is_slot(nd)) continue;
        int c = pinas_node_find_cand(nd, nd->op == PINAS_OP_POOL ? PINAS_CAND_MAXPOOL : act);
        CU_ASSERT_FATAL(pinas_net_decide(ctx, n, i, c < 0 ? 0 : c) == PINAS_OK);
    }
    return n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    CU_ASSERT(fread(b, 1, *len, f) == *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
}

static void test_roundtrip_and_corruption(void)
{
    pinas_net *net = tiny(PINAS_CAND_RELU);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 2;
    pinas_mpc_prep *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, net, &p, NULL, 0, &a, &b) == PINAS_OK);
    const char *path = tu_path("server.prep");
    CU_ASSERT_FATAL(pinas_mpc_prep_save(ctx, a, path) == PINAS_OK);
    struct stat st;
    CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CU_ASSERT_FATAL(pinas_mpc_prep_load(ctx, path, &c) == PINAS_OK);
    CU_ASSERT_EQUAL(pinas_mpc_prep_party(c), 0);
    CU_ASSERT_EQUAL(pinas_mpc_prep_batch(c), 2);
    CU_ASSERT_EQUAL(pinas_mpc_prep_hash(c), pinas_mpc_arch_hash(net, &p));
    CU_ASSERT_EQUAL(pinas_mpc_prep_total_bytes(c), pinas_mpc_prep_total_bytes(a));
    pinas_mpc_prep_free(c);
    c = NULL;

    size_t len;
    uint8_t *buf = slurp(path, &len);
    const char *bad = tu_path("bad.prep");
    /* one flipped bit in the material */
    buf[len / 2] ^= 0x10;
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, &c), "checksum");
    buf[len / 2] ^= 0x10;
    /* truncated */
    spit(bad, buf, len - 100);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, &c), "truncated");
    /* not a preprocessing file */
    uint8_t text[80];
    memset(text, ' ', sizeof text);
    memcpy(text, "{\"format\": \"pinas-net/1\"}", 25);
    spit(bad, text, sizeof text);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, &c), "not a preprocessing file");
    /* another version */
    buf[8] = 99;
    spit(bad, buf, len);
    TU_ASSERT_ERR(ctx, pinas_mpc_prep_load(ctx, bad, &c), "version");
    CU_ASSERT(c == NULL);
    free(buf);
    pinas_mpc_prep_free(a);
    pinas_mpc_prep_free(b);
    pinas_net_free(net);
}

/* ------------------------------------------------------------------ two parties with a tap */

typedef struct {
    int role, port;
    pinas_chan *listener;
    const pinas_model *model;
    const pinas_net *net;
    const pinas_mpc_prep *prep;
    const float *x;
    float *logits;
    pinas_status s;
    char err[512];
    uint64_t hist[256], bytes;
} job;

static void tap(void *user, uint32_t tag, const void *payload, size_t len)
{
    job *j = user;
    if (tag >= 0xFFFF0000u && tag != 0xFFFF0002u) return; /* handshake and the output share are structured */
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++) j->hist[p[i]]++;
    j->bytes += len;
}

static void *run(void *arg)
{
    job *j = arg;
    pinas_ctx *c = pinas_ctx_create();
    pinas_chan *ch = j->listener;
    if (j->role == 0) {
        j->s = pinas_chan_accept(c, ch, 5000, "client");
    } else {
        char hp[32];
        snprintf(hp, sizeof hp, "127.0.0.1:%d", j->port);
        j->s = pinas_chan_connect(c, hp, 5000, "server", &ch);
        if (!j->s) pinas_chan_set_tap(ch, tap, j);
    }
    if (!j->s) {
        pinas_mpc_party_args a = {.role = j->role, .model = j->model, .net = j->net, .prep = j->prep, .x = j->x,
                                  .logits = j->logits, .timeout_ms = 5000};
        j->s = pinas_mpc_party_run(c, ch, &a, NULL);
    }
    if (j->s) snprintf(j->err, sizeof j->err, "%s", pinas_errmsg(c));
    pinas_chan_free(ch); /* the listener too, for the server: a failing party closes at once */
    pinas_ctx_free(c);
    return NULL;
}

static void pair(const pinas_model *ms, const pinas_net *nc, const pinas_mpc_prep *p0, const pinas_mpc_prep *p1,
                 const float *x, float *lg, job *js, job *jc)
{
    pinas_chan *l = NULL;
    CU_ASSERT_FATAL(pinas_chan_listen(ctx, "127.0.0.1:0", &l) == PINAS_OK);
    *js = (job){.role = 0, .listener = l, .model = ms, .prep = p0};
    *jc = (job){.role = 1, .port = pinas_chan_port(l), .net = nc, .prep = p1, .x = x, .logits = lg};
    pthread_t a, b;
    pthread_create(&a, NULL, run, js);
    pthread_create(&b, NULL, run, jc);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
}

static void test_mismatches_refused(void)
{
    pinas_net *n1 = tiny(PINAS_CAND_RELU), *n2 = tiny(PINAS_CAND_POLY);
    pinas_model *m1 = NULL, *m2 = NULL;
    CU_ASSERT_FATAL(pinas_model_random(ctx, n1, 1, &m1) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_model_random(ctx, n2, 1, &m2) == PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_mpc_prep *a = NULL, *b = NULL, *a2 = NULL, *b2 = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, n1, &p, NULL, 0, &a, &b) == PINAS_OK);
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, n1, &p, NULL, 0, &a2, &b2) == PINAS_OK);
    float x[3 * 8 * 8] = {0}, lg[4];
    job js, jc;
    /* preprocessing for another model: the server refuses before talking */
    pair(m2, n2, a, b, x, lg, &js, &jc);
    CU_ASSERT(js.s != PINAS_OK && strstr(js.err, "another model") != NULL);
    CU_ASSERT(jc.s != PINAS_OK);
    /* the client's file instead of the server's */
    pair(m1, n1, b, b, x, lg, &js, &jc);
    CU_ASSERT(js.s != PINAS_OK && strstr(js.err, "party 1") != NULL);
    CU_ASSERT(jc.s != PINAS_OK);
    /* files of two different dealer runs: the handshake catches the session id */
    pair(m1, n1, a, b2, x, lg, &js, &jc);
    CU_ASSERT(js.s != PINAS_OK && strstr(js.err, "session id") != NULL);
    CU_ASSERT(jc.s != PINAS_OK && strstr(jc.err, "session id") != NULL);
    /* the matching pair works */
    pair(m1, n1, a, b, x, lg, &js, &jc);
    CU_ASSERT(js.s == PINAS_OK && jc.s == PINAS_OK);
    pinas_mpc_prep_free(a), pinas_mpc_prep_free(b), pinas_mpc_prep_free(a2), pinas_mpc_prep_free(b2);
    pinas_model_free(m1), pinas_model_free(m2);
    pinas_net_free(n1), pinas_net_free(n2);
}

/* What the client receives (the server's masked openings and its masked weights W - A; not the handshake
 * or the logits share, which the client may know) looks uniform: chi-square over byte values, 255
 * degrees of freedom, below the 0.999 quantile (330.5), on >= 1 MB. */
static void test_client_view_uniform(void)
{
    pinas_net *n = tiny(PINAS_CAND_RELU);
    pinas_model *m = NULL;
    CU_ASSERT_FATAL(pinas_model_random(ctx, n, 5, &m) == PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = 256;
    pinas_mpc_prep *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(pinas_mpc_deal(ctx, n, &p, NULL, 0, &a, &b) == PINAS_OK);
    float *x = malloc(sizeof(float) * 256 * 192), lg[256 * 4];
    for (int i = 0; i < 256 * 192; i++) x[i] = (float)((i % 17) - 8) * 0.25f; /* structured input */
    job js, jc;
    pair(m, n, a, b, x, lg, &js, &jc);
    CU_ASSERT_FATAL(js.s == PINAS_OK && jc.s == PINAS_OK);
    double e = (double)jc.bytes / 256, chi = 0;
    for (int v = 0; v < 256; v++) chi += (jc.hist[v] - e) * (jc.hist[v] - e) / e;
    fprintf(stderr, "\n  client received %llu bytes; chi-square %.1f (255 dof, 0.999 quantile 330.5)\n",
            (unsigned long long)jc.bytes, chi);
    CU_ASSERT(jc.bytes >= 1000000);
    CU_ASSERT(chi < 330.5);
    free(x);
    pinas_mpc_prep_free(a), pinas_mpc_prep_free(b);
    pinas_model_free(m);
    pinas_net_free(n);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"prep file: round trip, 0600, corruption rejected", test_roundtrip_and_corruption},
                   {"mismatched model, party or session refused", test_mismatches_refused},
                   {"client's received bytes pass chi-square", test_client_view_uniform}};
    int rc = tu_run("crypto_prep", t, 3);
    pinas_ctx_free(ctx);
    return rc;
}
