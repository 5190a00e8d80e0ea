/* Tests for predictions and the LUT (latency_model/predict.c, lut.c, profiles.c): the network formula,
 * LUT lookups equal whole-net predictions, JSON round trip, the plain arrays E[latency] reads. (E[latency]
 * itself is tested with the search, tests/test_nas_latency_loss.c.) */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_cost.h"
#include "testutil_cost.h"

static pinas_ctx *ctx;

static pinas_cost_hw *cpu_profile(void) { return tu_cpu_profile(ctx); }

static pinas_net *space(void) { return tu_r20_all_cands(ctx); }

/* online = compute + rounds * RTT + max(bytes) / bandwidth, per node, for every profile pair. */
static void test_network_formula(void)
{
    pinas_net *sp = space();
    pinas_net *arch = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 5, &arch), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_n_open(arch), 0);
    pinas_cost_hw *hw = cpu_profile();
    pinas_cost_link *lan = NULL, *wan = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "lan", &lan), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "wan", &wan), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_bandwidth(lan), 125e6, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_rtt(lan), 0.5e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_bandwidth(wan), 12.5e6, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_rtt(wan), 40e-3, 1e-15);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_prediction *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, arch, hw, lan, &p, &a), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, arch, hw, wan, &p, &b), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(a->n_rows, b->n_rows);
    double sum = 0;
    int relu_rows = 0;
    for (int i = 0; i < a->n_rows; i++) {
        const pinas_cost_row *r = &a->rows[i], *w = &b->rows[i];
        const pinas_mpc_counts *c = &r->counts.online;
        double mb = (double)(c->bytes[0] > c->bytes[1] ? c->bytes[0] : c->bytes[1]);
        CU_ASSERT_DOUBLE_EQUAL(r->comm_s, c->rounds * 0.5e-3 + mb / 125e6, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(w->comm_s, c->rounds * 40e-3 + mb / 12.5e6, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(r->online_s, r->compute_s + r->comm_s, 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(r->compute_s, w->compute_s, 0); /* the network does not change compute */
        if (strcmp(r->op, "relu") == 0) {
            /* relu compute: each party's call + per-element cost; the node's is the busier party's */
            const pinas_node *n = pinas_net_node(arch, r->node);
            CU_ASSERT_DOUBLE_EQUAL(r->compute_s, 1e-4 + 1e-7 * n->c * n->h * n->w, 1e-15);
            CU_ASSERT_DOUBLE_EQUAL(r->compute_party_s[0], 1e-4 + 1e-7 * n->c * n->h * n->w, 1e-15);
            CU_ASSERT_DOUBLE_EQUAL(r->compute_party_s[1], 5e-5 + 5e-8 * n->c * n->h * n->w, 1e-15);
            CU_ASSERT(c->rounds >= 1);
            relu_rows++;
        }
        sum += r->online_s;
    }
    CU_ASSERT_DOUBLE_EQUAL(a->total.online_s, sum, 1e-12);
    CU_ASSERT(b->total.online_s > a->total.online_s);
    /* JSON form */
    cJSON *j = pinas_cost_prediction_to_json(a);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), a->n_rows);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "total"), "online_ms")->valuedouble,
                           a->total.online_s * 1e3, 1e-9);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(j, "hw")->valuestring, "cpu-test");
    cJSON_Delete(j);
    pinas_cost_prediction_free(a);
    pinas_cost_prediction_free(b);
    /* An open space cannot be predicted as a whole. */
    TU_ASSERT_ERR(ctx, pinas_cost_predict(ctx, sp, hw, lan, &p, &a), "slots are still open");
    /* ... but a single candidate can. */
    int slot = -1;
    for (int i = 0; i < pinas_net_n_nodes(sp) && slot < 0; i++)
        if (pinas_node_is_open(pinas_net_node(sp, i))) slot = i;
    pinas_cost_row row;
    TU_ASSERT_ERR(ctx, pinas_cost_predict_node(ctx, sp, slot, -1, hw, lan, &p, &row), "slot is open");
    CU_ASSERT_EQUAL(pinas_cost_predict_node(ctx, sp, slot, 1, hw, lan, &p, &row), PINAS_OK);
    CU_ASSERT_EQUAL(row.cand, 1);
    TU_ASSERT_ERR(ctx, pinas_cost_predict_node(ctx, sp, 1, 0, hw, lan, &p, &row), "is not a slot");
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(lan);
    pinas_cost_link_free(wan);
    pinas_net_free(arch);
    pinas_net_free(sp);
}

static void test_lut_matches_predict(void)
{
    pinas_net *sp = space();
    const char *hws[] = {"cpu-test", "fpga-zcu104", "fpga-u250", "pasnet"};
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "lan", &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    for (int h = 0; h < 4; h++) {
        pinas_cost_hw *hw = NULL;
        if (h == 0) hw = cpu_profile();
        else CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, hws[h], &hw), PINAS_OK);
        pinas_cost_lut *lut = NULL, *back = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, sp, hw, link, &p, &lut), PINAS_OK);
        CU_ASSERT_EQUAL(pinas_cost_lut_n_slots(lut), pinas_net_n_open(sp));
        CU_ASSERT_EQUAL(pinas_cost_lut_check(ctx, lut, sp), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_save(ctx, lut, tu_path("lut.json")), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_load(ctx, tu_path("lut.json"), &back), PINAS_OK);
        CU_ASSERT_STRING_EQUAL(pinas_cost_lut_hw(back), hws[h]);
        CU_ASSERT_STRING_EQUAL(pinas_cost_lut_link(back), "lan");
        for (int t = 0; t < 6; t++) {
            pinas_net *arch = NULL;
            CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 100 + t, &arch), PINAS_OK);
            pinas_cost_prediction *pr = NULL;
            CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, arch, hw, link, &p, &pr), PINAS_OK);
            double a, b;
            CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, lut, arch, &a), PINAS_OK);
            CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, back, arch, &b), PINAS_OK);
            double want = pr->total.online_s * 1e3;
            if (fabs(a - want) > 1e-9 * want + 1e-12 || fabs(b - want) > 1e-9 * want + 1e-12) {
                fprintf(stderr, "\n  %s arch %d: LUT %.12g / loaded %.12g, predict %.12g ms\n", hws[h], t, a, b, want);
                CU_FAIL("LUT latency differs from the whole-net prediction");
            }
            pinas_cost_prediction_free(pr);
            pinas_net_free(arch);
        }
        /* The header names the profiles, the protocol parameters and the version. */
        cJSON *j = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_json_load(ctx, tu_path("lut.json"), &j), PINAS_OK);
        const cJSON *hd = cJSON_GetObjectItemCaseSensitive(j, "header");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(hd, "pinas_version")->valuestring, PINAS_VERSION);
        CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(hd, "mpc"), "frac_bits")->valueint, p.frac_bits);
        CU_ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(hd, "hw_profile")));
        const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "slots"), 0);
        CU_ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(s0, "shape")));
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s0, "candidates"), 0), "op")->valuestring,
                               "relu");
        cJSON_Delete(j);
        pinas_cost_lut_free(lut);
        pinas_cost_lut_free(back);
        pinas_cost_hw_free(hw);
    }
    pinas_cost_link_free(link);
    pinas_net_free(sp);
}

static void test_lut_errors(void)
{
    pinas_net *sp = space();
    pinas_cost_hw *hw = cpu_profile();
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_create(ctx, "custom", 1e9, 1e-4, &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_lut *lut = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, sp, hw, link, &p, &lut), PINAS_OK);
    /* Another space (wider) does not match. */
    const char *act[] = {"relu", "poly"};
    pinas_space_opts o = {0};
    o.backbone = "resnet";
    o.depth = 20;
    o.width = 8;
    o.stem = "imagenet";
    o.in_c = 3;
    o.in_h = o.in_w = 16;
    o.num_classes = 10;
    o.act = act;
    o.n_act = 2;
    const char *pool[] = {"maxpool", "avgpool"};
    o.pool = pool;
    o.n_pool = 2;
    pinas_net *other = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_generate(ctx, &o, &other), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_cost_lut_check(ctx, lut, other), "shape 4x8x8, the net's node has 8x8x8");
    int choices[64] = {0};
    choices[0] = 9;
    TU_ASSERT_ERR(ctx, pinas_cost_lut_latency_choices(ctx, lut, choices, &(double){0}), "choice 9 out of range");
    TU_ASSERT_ERR(ctx, pinas_cost_lut_latency(ctx, lut, sp, &(double){0}), "slot is still open");
    tu_write(tu_path("bad.json"), "{\"format\": \"pinas-lut/1\", \"header\": {}, \"fixed\": {}, \"slots\": []}");
    pinas_cost_lut *bad = NULL;
    TU_ASSERT_ERR(ctx, pinas_cost_lut_load(ctx, tu_path("bad.json"), &bad), "bad.json: header.pinas_version");
    pinas_net_free(other);
    pinas_cost_lut_free(lut);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(sp);
}

/* The arrays E[latency] reads agree with the LUT, built or loaded; the range spans the cheapest and the
 * dearest architecture. */
static void test_lut_arrays(void)
{
    pinas_net *sp = space();
    pinas_cost_hw *hw = cpu_profile();
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "wan", &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_lut *lut = NULL, *back = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, sp, hw, link, &p, &lut), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_save(ctx, lut, tu_path("arrays-lut.json")), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_load(ctx, tu_path("arrays-lut.json"), &back), PINAS_OK);
    const pinas_cost_lut *luts[2] = {lut, back};
    for (int t = 0; t < 2; t++) {
        const pinas_cost_lut_arrays *a = pinas_cost_lut_get_arrays(luts[t]);
        CU_ASSERT_EQUAL_FATAL(a->n_slots, pinas_cost_lut_n_slots(lut));
        CU_ASSERT_STRING_EQUAL(a->space, pinas_net_name(sp));
        CU_ASSERT_EQUAL(a->fixed_ms, (float)pinas_cost_lut_fixed_ms(lut));
        for (int k = 0; k < a->n_slots; k++) {
            CU_ASSERT_EQUAL(a->node[k], pinas_cost_lut_slot_node(lut, k));
            CU_ASSERT_STRING_EQUAL(a->id[k], pinas_net_node(sp, a->node[k])->id);
            CU_ASSERT_EQUAL_FATAL(a->n_cands[k], pinas_cost_lut_n_cands(lut, k));
            for (int j = 0; j < a->n_cands[k]; j++) CU_ASSERT_EQUAL(a->cand_ms[k][j], (float)pinas_cost_lut_cand_ms(lut, k, j));
        }
    }
    /* every slot at its cheapest / dearest candidate */
    int ns = pinas_cost_lut_n_slots(lut), lo_ch[64], hi_ch[64];
    CU_ASSERT_FATAL(ns <= 64);
    for (int k = 0; k < ns; k++) {
        lo_ch[k] = hi_ch[k] = 0;
        for (int j = 1; j < pinas_cost_lut_n_cands(lut, k); j++) {
            if (pinas_cost_lut_cand_ms(lut, k, j) < pinas_cost_lut_cand_ms(lut, k, lo_ch[k])) lo_ch[k] = j;
            if (pinas_cost_lut_cand_ms(lut, k, j) > pinas_cost_lut_cand_ms(lut, k, hi_ch[k])) hi_ch[k] = j;
        }
    }
    double lo, hi, want_lo, want_hi;
    pinas_cost_lut_range(lut, &lo, &hi);
    CU_ASSERT_EQUAL(pinas_cost_lut_latency_choices(ctx, lut, lo_ch, &want_lo), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_lut_latency_choices(ctx, lut, hi_ch, &want_hi), PINAS_OK);
    CU_ASSERT_DOUBLE_EQUAL(lo, want_lo, 1e-9 * want_lo);
    CU_ASSERT_DOUBLE_EQUAL(hi, want_hi, 1e-9 * want_hi);
    CU_ASSERT(lo < hi);
    pinas_cost_lut_free(lut);
    pinas_cost_lut_free(back);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(sp);
}

static void test_profiles(void)
{
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *l = NULL;
    TU_ASSERT_ERR(ctx, pinas_cost_hw_load(ctx, "fpga-zcu14", &hw), "did you mean \"fpga-zcu104\"");
    TU_ASSERT_ERR(ctx, pinas_cost_hw_load(ctx, "lan", &hw), "is a network profile");
    TU_ASSERT_ERR(ctx, pinas_cost_link_load(ctx, "pasnet", &l), "expected \"network\"");
    TU_ASSERT_ERR(ctx, pinas_cost_link_load(ctx, "lann", &l), "did you mean \"lan\"");
    tu_write(tu_path("net.json"), "{\"format\": \"pinas-profile/1\", \"kind\": \"network\", \"name\": \"dc\", \"bandwidth_mbit_per_s\": 10000, \"rtt_ms\": 0.1}");
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, tu_path("net.json"), &l), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(pinas_cost_link_name(l), "dc");
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_bandwidth(l), 1.25e9, 1);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_rtt(l), 1e-4, 1e-15);
    pinas_cost_link_free(l);
    tu_write(tu_path("bad.json"), "{\"format\": \"pinas-profile/1\", \"kind\": \"network\", \"name\": \"x\", \"bandwidth_mbit_per_s\": -1, \"rtt_ms\": 1}");
    TU_ASSERT_ERR(ctx, pinas_cost_link_load(ctx, tu_path("bad.json"), &l), "bad.json: bandwidth_mbit_per_s");
    tu_write(tu_path("cpu.json"), "{\"format\": \"pinas-profile/1\", \"kind\": \"cpu\", \"name\": \"c\", \"primitives\": {}}");
    TU_ASSERT_ERR(ctx, pinas_cost_hw_load(ctx, tu_path("cpu.json"), &hw), "cpu.json: model: expected \"party-cpu\"");
    tu_write(tu_path("cpu.json"), "{\"format\": \"pinas-profile/1\", \"kind\": \"cpu\", \"name\": \"c\", \"model\": \"party-cpu\", \"primitives\": {}}");
    TU_ASSERT_ERR(ctx, pinas_cost_hw_load(ctx, tu_path("cpu.json"), &hw), "cpu.json: primitives.conv2d: missing");
    tu_write(tu_path("v2.json"), "{\"format\": \"pinas-profile/2\", \"kind\": \"cpu\", \"name\": \"c\"}");
    TU_ASSERT_ERR(ctx, pinas_cost_hw_load(ctx, tu_path("v2.json"), &hw), "format: expected \"pinas-profile/1\"");
    const char *shipped[] = {"cpu", "fpga-zcu104", "fpga-u250", "pasnet"};
    for (int k = 0; k < 4; k++) {
        pinas_status s = pinas_cost_hw_load(ctx, shipped[k], &hw);
        if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
        CU_ASSERT_EQUAL(s, PINAS_OK);
        if (!s) CU_ASSERT_STRING_EQUAL(pinas_cost_hw_name(hw), shipped[k]);
        pinas_cost_hw_free(hw);
    }
    const char *nets[] = {"loopback", "lan", "wan"};
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(pinas_cost_link_load(ctx, nets[k], &l), PINAS_OK);
        pinas_cost_link_free(l);
    }
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    tu_test tests[] = {
        {"profiles: shipped, custom, errors", test_profiles},
        {"network formula per node", test_network_formula},
        {"LUT lookups equal whole-net predictions", test_lut_matches_predict},
        {"LUT errors", test_lut_errors},
        {"the plain arrays of the LUT", test_lut_arrays},
    };
    int rc = tu_run("latency_model_lut", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
