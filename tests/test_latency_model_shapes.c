/* Measured shapes of a cpu profile (`pinas calibrate --space`): a node whose class, party and
 * features equal an entry's is priced at the entry, every other node at its class's fit; the table
 * survives the JSON round trip exactly; malformed entries are refused naming the entry; --fit-only
 * drops the table. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_cost.h"
#include "pinas_mpc.h"
#include "pinas_net.h"
#include "testutil.h"

static pinas_ctx *ctx;

/* A profile where every class costs 1 us per call and 1 ns per element in, nothing else. */
static void flat_params(pinas_cpu_params *p)
{
    memset(p, 0, sizeof *p);
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++)
        for (int q = 0; q < 2; q++) {
            p->coef[k][q][PINAS_CPU_F_CALL] = 1e-6;
            p->coef[k][q][PINAS_CPU_F_IN] = 1e-9;
            p->fit_mape[k][q] = NAN;
        }
    p->aes_blocks_per_s = 1e8;
    p->ring_macs_per_s = 1e10;
}

/* conv3x3 (3 -> 8) -> relu -> conv1x1 (8 -> 8) -> relu -> gap -> linear, 8x8 inputs. */
static pinas_net *small_net(int side)
{
    pinas_cand relu = {.kind = PINAS_CAND_RELU};
    pinas_net_builder *b = pinas_nb_create("shapes-net", 3, side, side, 4);
    int x = pinas_nb_conv(b, "c1", 0, 8, 3, 1, 1, 1);
    x = pinas_nb_act(b, "r1", x, &relu, 1);
    x = pinas_nb_conv(b, "c2", x, 8, 1, 1, 0, 1);
    x = pinas_nb_act(b, "r2", x, &relu, 1);
    x = pinas_nb_global_avgpool(b, "gap", x);
    x = pinas_nb_flatten(b, "flat", x);
    pinas_nb_linear(b, "fc", x, 4, 1);
    pinas_net *net = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nb_finish(ctx, b, "shapes net", &net), PINAS_OK);
    return net;
}

static int node_of(const pinas_net *net, const char *id)
{
    for (int i = 0; i < pinas_net_n_nodes(net); i++)
        if (!strcmp(pinas_net_node(net, i)->id, id)) return i;
    CU_FAIL_FATAL("no such node");
    return -1;
}

/* The features of node `id` of net for party q at batch 1. */
static void features(const pinas_net *net, const char *id, int q, double f[PINAS_CPU_N_FEAT])
{
    pinas_mpc_params mp;
    pinas_mpc_params_default(&mp);
    pinas_mpc_cost counts;
    int i = node_of(net, id);
    CU_ASSERT_EQUAL_FATAL(pinas_mpc_cost_node(ctx, net, i, -1, &mp, &counts), PINAS_OK);
    pinas_cpu_features(net, i, NULL, 1, &counts, q, f);
}

static const pinas_cost_row *row_of(const pinas_cost_prediction *pr, const char *id)
{
    for (int r = 0; r < pr->n_rows; r++)
        if (!strcmp(pr->rows[r].id, id)) return &pr->rows[r];
    CU_FAIL_FATAL("no such row");
    return NULL;
}

static void test_pricing(void)
{
    pinas_net *net = small_net(8), *other = small_net(16);
    pinas_cpu_params p;
    flat_params(&p);
    pinas_cpu_shape sh[3];
    memset(sh, 0, sizeof sh);
    sh[0].prim = PINAS_CPU_RELU, sh[0].party = 1, sh[0].s = 0.25, sh[0].nodes = 3; /* r1, client */
    features(net, "r1", 1, sh[0].f);
    sh[1].prim = PINAS_CPU_CONV, sh[1].party = 0, sh[1].s = 0.5, sh[1].nodes = 1; /* c2, server */
    features(net, "c2", 0, sh[1].f);
    sh[2] = sh[1]; /* the same features under another class: not c2's */
    sh[2].prim = PINAS_CPU_DWCONV, sh[2].s = 0.75;
    p.shapes = sh;
    p.n_shapes = 3;
    const char *sp[1] = {"shapes-net"};
    p.spaces = sp;
    p.n_spaces = 1;
    pinas_cost_hw *hw = NULL, *back = NULL, *fit = NULL;
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_create(ctx, &p, NULL, &hw), PINAS_OK);
    sh[0].s = 99; /* the profile keeps its own copy */
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_create(ctx, "l", 1e9, 1e-4, &link), PINAS_OK);
    pinas_mpc_params mp;
    pinas_mpc_params_default(&mp);
    pinas_cost_prediction *pr = NULL, *pr2 = NULL, *pf = NULL, *po = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, net, hw, link, &mp, &pr), PINAS_OK);
    CU_ASSERT_EQUAL(row_of(pr, "r1")->compute_party_s[1], 0.25);
    CU_ASSERT_EQUAL(row_of(pr, "c2")->compute_party_s[0], 0.5);
    double f[PINAS_CPU_N_FEAT];
    features(net, "r1", 0, f); /* the server's r1 is not in the table: the fit */
    pinas_cpu_params got;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_params(ctx, hw, &got), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(row_of(pr, "r1")->compute_party_s[0], pinas_cost_cpu_fit(&got, PINAS_CPU_RELU, 0, f), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(row_of(pr, "r1")->compute_party_s[0], 1e-6 + 1e-9 * f[PINAS_CPU_F_IN], 1e-15);
    CU_ASSERT_PTR_NULL(pinas_cpu_shape_find(&got, PINAS_CPU_RELU, 0, f));
    /* the same class on another shape (16x16 inputs): the fit */
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, other, hw, link, &mp, &po), PINAS_OK);
    CU_ASSERT(row_of(po, "r1")->compute_party_s[1] < 0.01);
    CU_ASSERT(row_of(po, "c2")->compute_party_s[0] < 0.01);
    /* JSON round trip: the same prices */
    cJSON *j = pinas_cost_hw_to_json(hw);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_from_json(ctx, j, "round trip", &back), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, net, back, link, &mp, &pr2), PINAS_OK);
    for (int r = 0; r < pr->n_rows; r++)
        for (int q = 0; q < 2; q++) CU_ASSERT_EQUAL(pr->rows[r].compute_party_s[q], pr2->rows[r].compute_party_s[q]);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_params(ctx, back, &got), PINAS_OK);
    CU_ASSERT_EQUAL(got.n_shapes, 3);
    CU_ASSERT_EQUAL_FATAL(got.n_spaces, 1);
    CU_ASSERT_STRING_EQUAL(got.spaces[0], "shapes-net");
    /* fit only: every node at its fit */
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_fit_only(ctx, back, &fit), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, net, fit, link, &mp, &pf), PINAS_OK);
    CU_ASSERT(row_of(pf, "r1")->compute_party_s[1] < 0.01);
    CU_ASSERT(row_of(pf, "c2")->compute_party_s[0] < 0.01);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_params(ctx, fit, &got), PINAS_OK);
    CU_ASSERT_EQUAL(got.n_shapes, 0);
    cJSON *jf = pinas_cost_hw_to_json(fit);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(jf, "shapes"));
    cJSON_Delete(jf);
    cJSON_Delete(j);
    pinas_cost_prediction_free(pr), pinas_cost_prediction_free(pr2), pinas_cost_prediction_free(pf), pinas_cost_prediction_free(po);
    pinas_cost_hw_free(hw), pinas_cost_hw_free(back), pinas_cost_hw_free(fit);
    pinas_cost_link_free(link);
    pinas_net_free(net), pinas_net_free(other);
}

/* A profile whose shapes entry is replaced by `entry` must be refused with `needle`. */
static void refuse(const char *entry, const char *needle)
{
    pinas_cpu_params p;
    flat_params(&p);
    pinas_cost_hw *hw = NULL, *bad = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_create(ctx, &p, NULL, &hw), PINAS_OK);
    cJSON *j = pinas_cost_hw_to_json(hw);
    cJSON *arr = cJSON_Parse(entry);
    CU_ASSERT_PTR_NOT_NULL_FATAL(arr);
    cJSON_AddItemToObject(j, "shapes", arr);
    TU_ASSERT_ERR(ctx, pinas_cost_hw_from_json(ctx, j, "bad.json", &bad), needle);
    CU_ASSERT_PTR_NULL(bad);
    cJSON_Delete(j);
    pinas_cost_hw_free(hw);
}

static void test_malformed(void)
{
    const char *ok = "[\"relu\", \"server\", [1, 0, 64, 64, 64, 0, 0], 1e-05, 2]";
    char two[256];
    snprintf(two, sizeof two, "[%s, [\"reluu\", \"server\", [1, 0, 64, 64, 64, 0, 0], 1e-05, 2]]", ok);
    refuse(two, "bad.json: shapes[1]: expected [class");
    refuse("[[\"relu\", \"both\", [1, 0, 64, 64, 64, 0, 0], 1e-05, 2]]", "shapes[0]: expected [class");
    refuse("[[\"relu\", \"client\", [1, 0, 64, 64, 64, 0], 1e-05, 2]]", "shapes[0]: expected [class");
    refuse("[[\"relu\", \"client\", [1, 0, -64, 64, 64, 0, 0], 1e-05, 2]]", "shapes[0]: feature aes");
    refuse("[[\"relu\", \"client\", [1, 0, 64, 64, 64, 0, 0], 0, 2]]", "shapes[0]: seconds");
    refuse("[[\"relu\", \"client\", [1, 0, 64, 64, 64, 0, 0], 1e-05, 0]]", "shapes[0]: nodes");
    refuse("{}", "bad.json: shapes: expected an array");
    snprintf(two, sizeof two, "[%s, %s]", ok, ok);
    refuse(two, "a relu server shape is given twice");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test tests[] = {
        {"measured shapes price their nodes, the fit the rest; JSON round trip; fit only", test_pricing},
        {"malformed shapes are refused naming the entry", test_malformed},
    };
    int rc = tu_run("latency_model_shapes", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
