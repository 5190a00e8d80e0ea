/* Tests for the FPGA scheduler (latency_model/predict.c): per-block cycle counts, monotonicity in every
 * board resource, and the shipped boards. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_cost.h"
#include "testutil.h"
#include "testutil_net.h"

static pinas_ctx *ctx;

static pinas_fpga_params board(void)
{
    pinas_fpga_params b = {0};
    b.clock_hz = 300e6;
    b.dsp = 1000;
    b.dsp_util = 0.8;
    b.dsp_per_mac = 8;
    b.aes_cores = 16;
    b.cmp_units = 64;
    b.elem_lanes = 64;
    b.onchip_bytes = 1e6;
    b.ddr_Bps = 10e9;
    b.host_Bps = 4e9;
    b.pipeline_cycles = 100;
    b.overlap = 1;
    return b;
}

static void test_block_cycles(void)
{
    pinas_fpga_params b = board();
    pinas_fpga_schedule s;
    /* 1000 DSPs * 0.8 / 8 per lane = 100 MAC lanes. */
    pinas_fpga_schedule_work(&b, 1050, 33, 130, 129, 5e5, 8e6, &s);
    CU_ASSERT_DOUBLE_EQUAL(s.mac_cycles, 11, 0);  /* ceil(1050 / 100) */
    CU_ASSERT_DOUBLE_EQUAL(s.aes_cycles, 3, 0);   /* ceil(33 / 16) */
    CU_ASSERT_DOUBLE_EQUAL(s.cmp_cycles, 3, 0);   /* ceil(130 / 64) */
    CU_ASSERT_DOUBLE_EQUAL(s.elem_cycles, 3, 0);  /* ceil(129 / 64) */
    CU_ASSERT_DOUBLE_EQUAL(s.compute_s, (11 + 100) / 300e6, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(s.ddr_s, 0, 0);        /* 0.5 MB fits in 1 MB on chip */
    CU_ASSERT_DOUBLE_EQUAL(s.host_s, 8e6 / 4e9, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(s.total_s, s.compute_s + s.host_s, 1e-15);

    /* AES-bound node that spills: 3 MB working set streams in and out of DDR. */
    pinas_fpga_schedule_work(&b, 0, 16000, 0, 0, 3e6, 0, &s);
    CU_ASSERT_DOUBLE_EQUAL(s.mac_cycles, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(s.aes_cycles, 1000, 0);
    CU_ASSERT_DOUBLE_EQUAL(s.compute_s, 1100 / 300e6, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(s.ddr_s, 6e6 / 10e9, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(s.total_s, 6e6 / 10e9, 1e-15); /* DDR-bound: max(compute, ddr) */

    /* No work: no pipeline fill either. */
    pinas_fpga_schedule_work(&b, 0, 0, 0, 0, 0, 0, &s);
    CU_ASSERT_DOUBLE_EQUAL(s.total_s, 0, 0);

    /* Fewer DSPs than one lane still gives one lane. */
    b.dsp = 4;
    pinas_fpga_schedule_work(&b, 10, 0, 0, 0, 0, 0, &s);
    CU_ASSERT_DOUBLE_EQUAL(s.mac_cycles, 10, 0);
}

static double rnd(uint64_t *st)
{
    *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*st >> 11) / 9007199254740992.0;
}

/* b with resource r doubled (0 MACs, 1 AES cores, 2 comparison units, 3 element lanes, 4 clock,
 * 5 on-chip memory - times onchip_factor -, 6 DDR, 7 host link); r < 0: b itself. */
static pinas_fpga_params grown(pinas_fpga_params b, int r, double onchip_factor)
{
    switch (r) {
    case 0: b.dsp *= 2; break;
    case 1: b.aes_cores *= 2; break;
    case 2: b.cmp_units *= 2; break;
    case 3: b.elem_lanes *= 2; break;
    case 4: b.clock_hz *= 2; break;
    case 5: b.onchip_bytes *= onchip_factor; break;
    case 6: b.ddr_Bps *= 2; break;
    case 7: b.host_Bps *= 2; break;
    default: break;
    }
    return b;
}

/* Doubling any resource never makes any node slower. */
static void test_monotone_in_resources(void)
{
    uint64_t st = 42;
    for (int trial = 0; trial < 300; trial++) {
        double macs = floor(rnd(&st) * 1e7), aes = floor(rnd(&st) * 1e6), cmp = floor(rnd(&st) * 1e5), el = floor(rnd(&st) * 1e6);
        double ws = rnd(&st) * 4e6, io = rnd(&st) * 1e7;
        pinas_fpga_params b = board();
        pinas_fpga_schedule base, s;
        pinas_fpga_schedule_work(&b, macs, aes, cmp, el, ws, io, &base);
        for (int r = 0; r < 8; r++) {
            pinas_fpga_params m = grown(b, r, 2);
            pinas_fpga_schedule_work(&m, macs, aes, cmp, el, ws, io, &s);
            if (s.total_s > base.total_s * (1 + 1e-12)) {
                fprintf(stderr, "\n  resource %d doubled: %g s > %g s\n", r, s.total_s, base.total_s);
                CU_FAIL("not monotone");
            }
        }
        /* and more work never costs less */
        pinas_fpga_schedule_work(&b, macs * 2, aes, cmp, el, ws, io, &s);
        CU_ASSERT(s.total_s >= base.total_s);
    }
}

/* The same holds for whole nets through the predictor: a ResNet-20 (width 8, 16x16) priced per node. */
static void test_monotone_whole_net(void)
{
    static const char *const act[] = {"relu"};
    pinas_net *net = tu_resnet(ctx, 20, 8, NULL, 16, 10, act, 1, NULL, 0);
    pinas_cost_link *link = NULL;
    /* A fast link, so that the board (not the network) sets the pace. */
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_create(ctx, "fast", 100e9, 1e-6, &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_fpga_params b = board();
    b.onchip_bytes = 64e3; /* small enough that the larger layers spill to DDR */
    double base_online = 0, base_offline = 0;
    for (int r = -1; r < 8; r++) {
        pinas_fpga_params m = grown(b, r, 4);
        pinas_cost_hw *hw = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_fpga_create(ctx, "sweep", &m, &hw), PINAS_OK);
        pinas_cost_prediction *pr = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_cost_predict(ctx, net, hw, link, &p, &pr), PINAS_OK);
        if (r < 0) {
            base_online = pr->total.online_s;
            base_offline = pr->total.offline_s;
            CU_ASSERT(base_online > 0 && base_offline > 0);
        } else {
            CU_ASSERT(pr->total.online_s <= base_online * (1 + 1e-12));
            CU_ASSERT(pr->total.offline_s <= base_offline * (1 + 1e-12));
            /* the MAC array (convs), the clock, DDR (the ReLUs' keys stream from it) and the host link
             * are on the critical path of some node of this net */
            if ((r == 0 || r == 4 || r == 6 || r == 7) && !(pr->total.online_s < base_online)) {
                fprintf(stderr, "\n  resource %d doubled: online %g s, base %g s\n", r, pr->total.online_s, base_online);
                CU_FAIL("resource not on any critical path");
            }
        }
        for (int i = 0; i < pr->n_rows; i++) CU_ASSERT(pr->rows[i].online_s >= pr->rows[i].compute_s - 1e-15);
        pinas_cost_prediction_free(pr);
        pinas_cost_hw_free(hw);
    }
    pinas_cost_link_free(link);
    pinas_net_free(net);
}

static void test_shipped_boards(void)
{
    pinas_cost_hw *z = NULL, *u = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "fpga-zcu104", &z), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "fpga-u250", &u), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_hw_kind(z), PINAS_HW_FPGA);
    pinas_fpga_params bz, bu;
    CU_ASSERT_EQUAL(pinas_cost_hw_fpga_params(ctx, z, &bz), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_hw_fpga_params(ctx, u, &bu), PINAS_OK);
    CU_ASSERT_EQUAL(bz.dsp, 1728);
    CU_ASSERT_EQUAL(bu.dsp, 12288);
    CU_ASSERT_DOUBLE_EQUAL(bz.clock_hz, 300e6, 1);
    /* The datacenter card has at least the edge board's resources, so it is never slower. */
    CU_ASSERT(bu.dsp >= bz.dsp && bu.aes_cores >= bz.aes_cores && bu.cmp_units >= bz.cmp_units && bu.onchip_bytes >= bz.onchip_bytes &&
              bu.ddr_Bps >= bz.ddr_Bps && bu.host_Bps >= bz.host_Bps);
    /* Every board parameter documents its source. */
    cJSON *j = pinas_cost_hw_to_json(z);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "sources");
    CU_ASSERT(cJSON_IsObject(src));
    const char *keys[] = {"dsp", "onchip_mb", "clock_mhz", "dsp_per_mac", "aes_cores", "cmp_units", "ddr_gb_per_s", "host_gb_per_s"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) CU_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(src, keys[k])));
    cJSON_Delete(j);
    /* A cpu-kind query on an fpga profile is refused with the profile's name. */
    pinas_cost_hw *p = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "pasnet", &p), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_cost_hw_fpga_params(ctx, p, &bz), "pasnet is not an fpga profile");
    pinas_cost_hw_free(p);
    pinas_cost_hw_free(z);
    pinas_cost_hw_free(u);
}

static void test_create_validates(void)
{
    pinas_fpga_params b = board();
    pinas_cost_hw *hw = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_fpga_create(ctx, "mine", &b, &hw), PINAS_OK);
    pinas_fpga_params back;
    CU_ASSERT_EQUAL(pinas_cost_hw_fpga_params(ctx, hw, &back), PINAS_OK);
    CU_ASSERT(back.dsp == b.dsp && back.aes_cores == b.aes_cores && back.clock_hz == b.clock_hz && back.onchip_bytes == b.onchip_bytes &&
              back.ddr_Bps == b.ddr_Bps && back.host_Bps == b.host_Bps && back.overlap == b.overlap);
    CU_ASSERT_STRING_EQUAL(pinas_cost_hw_name(hw), "mine");
    pinas_cost_hw_free(hw);
    b.aes_cores = 0;
    TU_ASSERT_ERR(ctx, pinas_cost_hw_fpga_create(ctx, "bad", &b, &hw), "fpga profile bad");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test tests[] = {
        {"per-block cycle counts", test_block_cycles},
        {"monotone in every resource", test_monotone_in_resources},
        {"whole nets: monotone in every resource", test_monotone_whole_net},
        {"shipped boards load, with sources", test_shipped_boards},
        {"custom boards are validated", test_create_validates},
    };
    int rc = tu_run("latency_model_fpga", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
