/* Golden files of the cost model's formats: a LUT (tests/golden/lut.json, as `pinas predict --lut` and
 * the search write it), a cpu, an fpga and a network profile (tests/golden/profile-*.json, as
 * `pinas calibrate`, pinas_cost_hw_fpga_create and pinas_cost_link_create write them). Each is read
 * and its values checked, then written again by its writer byte for byte. PINAS_UPDATE_GOLDEN=1
 * rewrites them instead (after a deliberate format change, or a version bump: the LUT's header names
 * the pinas version). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_cost.h"
#include "testutil.h"

static pinas_ctx *ctx;
static int update;

#define GOLDEN "tests/golden/"

/* The values the golden profiles hold: round binary fractions, exact through JSON. */
static pinas_cpu_params cpu_golden; /* filled by golden_cpu_params */

/* Two measured shapes (given out of order: the writer sorts them). */
static const pinas_cpu_shape golden_shapes[2] = {
    {.prim = PINAS_CPU_RELU, .party = 1, .f = {1, 0, 4096, 1024, 1024, 0, 0}, .s = 0.000125, .nodes = 6},
    {.prim = PINAS_CPU_CONV, .party = 0, .f = {1, 589824, 0, 4096, 4096, 2304, 36864}, .s = 6.103515625e-05, .nodes = 12},
};
static const char *const golden_spaces[1] = {"golden-space"};

/* Per class, party and feature (some zero: absent from the file). */
static void golden_cpu_params(void)
{
    memset(&cpu_golden, 0, sizeof cpu_golden);
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++)
        for (int q = 0; q < 2; q++) {
            for (int f = 0; f < PINAS_CPU_N_FEAT; f++)
                if ((k + f + q) % 3) { /* short decimals: what cJSON writes reads back to the same double */
                    char d[32];
                    snprintf(d, sizeof d, "%de-%d", 1 + k + 2 * q + f, 6 + f);
                    cpu_golden.coef[k][q][f] = strtod(d, NULL);
                }
            cpu_golden.fit_mape[k][q] = 0.5 + k + q;
            cpu_golden.fit_rows[k][q] = 10 + k;
        }
    cpu_golden.coef[PINAS_CPU_RELU][0][PINAS_CPU_F_CALL] = cpu_golden.coef[PINAS_CPU_RELU][1][PINAS_CPU_F_CALL] = 0.000244140625;
    cpu_golden.aes_blocks_per_s = 4e8;
    cpu_golden.ring_macs_per_s = 2e10;
    cpu_golden.shapes = golden_shapes;
    cpu_golden.n_shapes = 2;
    cpu_golden.spaces = golden_spaces;
    cpu_golden.n_spaces = 1;
}
static const pinas_cpu_calibration cpu_golden_cal = {
    .date = "2024-05-01T12:00:00Z", .machine = "x86_64", .cpu_model = "Golden CPU 3000", .pinas_version = "0.1.0",
    .git = "0123456789ab", .clock = "thread-cpu", .shield = "sched_fifo", .nets = 11, .reps = 5, .seconds = 30.5, .frac_bits = 16, .cmp_bits = 64,
};
static const pinas_fpga_params fpga_golden = {
    .clock_hz = 250e6, .dsp = 1728, .dsp_util = 0.75, .dsp_per_mac = 16, .aes_cores = 8, .cmp_units = 64, .elem_lanes = 64,
    .onchip_bytes = 4e6, .ddr_Bps = 19.2e9, .host_Bps = 4e9, .pipeline_cycles = 200, .overlap = 1,
};

/* Writes j as pinas_json_save does and compares the bytes with the golden file (or replaces it). */
static void check_bytes(const cJSON *j, const char *name)
{
    char golden[256];
    snprintf(golden, sizeof golden, GOLDEN "%s", name);
    const char *path = update ? golden : tu_path(name);
    CU_ASSERT_EQUAL_FATAL(pinas_json_save(ctx, path, j), PINAS_OK);
    if (update) return;
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CU_ASSERT_EQUAL_FATAL(pinas_file_read(ctx, golden, &a, &na), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_file_read(ctx, path, &b, &nb), PINAS_OK);
    if (na != nb || memcmp(a, b, na) != 0) {
        fprintf(stderr, "\n  %s: written again it differs from %s (diff them; PINAS_UPDATE_GOLDEN=1 if the change is meant)\n", path,
                golden);
        CU_FAIL("golden bytes");
    }
    free(a);
    free(b);
}

static void test_profile_cpu(void)
{
    golden_cpu_params();
    pinas_cost_hw *hw = NULL, *made = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_create(ctx, &cpu_golden, &cpu_golden_cal, &made), PINAS_OK);
    cJSON *j = pinas_cost_hw_to_json(made);
    check_bytes(j, "profile-cpu.json"); /* the writer gives the golden file */
    cJSON_Delete(j);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, GOLDEN "profile-cpu.json", &hw), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(pinas_cost_hw_name(hw), "cpu");
    CU_ASSERT_EQUAL(pinas_cost_hw_kind(hw), PINAS_HW_CPU);
    CU_ASSERT_STRING_EQUAL(pinas_cost_hw_fitted(hw), "2024-05-01T12:00:00Z");
    pinas_cpu_params p;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_cpu_params(ctx, hw, &p), PINAS_OK);
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++)
        for (int q = 0; q < 2; q++) {
            for (int f = 0; f < PINAS_CPU_N_FEAT; f++) CU_ASSERT_EQUAL(p.coef[k][q][f], cpu_golden.coef[k][q][f]);
            CU_ASSERT_EQUAL(p.fit_mape[k][q], cpu_golden.fit_mape[k][q]);
            CU_ASSERT_EQUAL(p.fit_rows[k][q], cpu_golden.fit_rows[k][q]);
        }
    CU_ASSERT_STRING_EQUAL(pinas_cost_hw_cpu_model(hw), "Golden CPU 3000");
    CU_ASSERT_EQUAL(p.aes_blocks_per_s, 4e8);
    CU_ASSERT_EQUAL(p.ring_macs_per_s, 2e10);
    CU_ASSERT_EQUAL_FATAL(p.n_shapes, 2);
    CU_ASSERT_EQUAL(p.shapes[0].prim, PINAS_CPU_CONV); /* sorted by class */
    CU_ASSERT_EQUAL(p.shapes[0].s, 6.103515625e-05);
    CU_ASSERT_EQUAL(p.shapes[0].nodes, 12);
    CU_ASSERT_EQUAL(p.shapes[1].f[PINAS_CPU_F_AES], 4096);
    CU_ASSERT_EQUAL_FATAL(p.n_spaces, 1);
    CU_ASSERT_STRING_EQUAL(p.spaces[0], "golden-space");
    j = pinas_cost_hw_to_json(hw); /* what the reader keeps is the file */
    check_bytes(j, "profile-cpu.json");
    cJSON_Delete(j);
    TU_ASSERT_ERR(ctx, pinas_cost_hw_fpga_params(ctx, hw, &(pinas_fpga_params){0}), "is not an fpga profile");
    pinas_cost_hw_free(hw);
    pinas_cost_hw_free(made);
}

static void test_profile_fpga(void)
{
    pinas_cost_hw *hw = NULL, *made = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_fpga_create(ctx, "fpga-golden", &fpga_golden, &made), PINAS_OK);
    cJSON *j = pinas_cost_hw_to_json(made);
    check_bytes(j, "profile-fpga.json");
    cJSON_Delete(j);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, GOLDEN "profile-fpga.json", &hw), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_hw_kind(hw), PINAS_HW_FPGA);
    CU_ASSERT_PTR_NULL(pinas_cost_hw_fitted(hw));
    pinas_fpga_params b;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_fpga_params(ctx, hw, &b), PINAS_OK);
    CU_ASSERT_EQUAL(b.clock_hz, 250e6);
    CU_ASSERT_EQUAL(b.dsp, 1728);
    CU_ASSERT_EQUAL(b.dsp_util, 0.75);
    CU_ASSERT_EQUAL(b.dsp_per_mac, 16);
    CU_ASSERT_EQUAL(b.aes_cores, 8);
    CU_ASSERT_EQUAL(b.cmp_units, 64);
    CU_ASSERT_EQUAL(b.elem_lanes, 64);
    CU_ASSERT_EQUAL(b.onchip_bytes, 4e6);
    CU_ASSERT_DOUBLE_EQUAL(b.ddr_Bps, 19.2e9, 1e-3);
    CU_ASSERT_EQUAL(b.host_Bps, 4e9);
    CU_ASSERT_EQUAL(b.pipeline_cycles, 200);
    CU_ASSERT_EQUAL(b.overlap, 1);
    j = pinas_cost_hw_to_json(hw);
    check_bytes(j, "profile-fpga.json");
    cJSON_Delete(j);
    pinas_cost_hw_free(hw);
    pinas_cost_hw_free(made);
}

static void test_profile_link(void)
{
    pinas_cost_link *l = NULL, *made = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_create(ctx, "link-golden", 125e6, 0.5e-3, &made), PINAS_OK);
    cJSON *j = pinas_cost_link_to_json(made);
    check_bytes(j, "profile-link.json");
    cJSON_Delete(j);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, GOLDEN "profile-link.json", &l), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(pinas_cost_link_name(l), "link-golden");
    CU_ASSERT_EQUAL(pinas_cost_link_bandwidth(l), 125e6); /* 1000 Mbit/s */
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_link_rtt(l), 0.5e-3, 1e-18);
    j = pinas_cost_link_to_json(l);
    check_bytes(j, "profile-link.json");
    cJSON_Delete(j);
    pinas_cost_link *c = pinas_cost_link_clone(l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(pinas_cost_link_rtt(c), pinas_cost_link_rtt(l));
    pinas_cost_link_free(c);
    pinas_cost_link_free(l);
    pinas_cost_link_free(made);
}

/* The LUT of tests/golden/tiny_space.json (two open slots: a1 over four activations, p1 over two
 * pools; a2 decided) under the golden cpu and network profiles. */
static void test_lut(void)
{
    pinas_net *sp = NULL;
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, GOLDEN "tiny_space.json", &sp), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, GOLDEN "profile-cpu.json", &hw), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, GOLDEN "profile-link.json", &link), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_cost_lut *built = NULL, *lut = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, sp, hw, link, &p, &built), PINAS_OK);
    cJSON *j = pinas_cost_lut_to_json(built);
    check_bytes(j, "lut.json"); /* the builder and writer give the golden file */
    cJSON_Delete(j);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_load(ctx, GOLDEN "lut.json", &lut), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cost_lut_check(ctx, lut, sp), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(pinas_cost_lut_hw(lut), "cpu");
    CU_ASSERT_STRING_EQUAL(pinas_cost_lut_link(lut), "link-golden");
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_n_slots(lut), 2);
    CU_ASSERT_EQUAL(pinas_cost_lut_slot_node(lut, 0), pinas_net_find(sp, "a1"));
    CU_ASSERT_EQUAL(pinas_cost_lut_slot_node(lut, 1), pinas_net_find(sp, "p1"));
    CU_ASSERT_EQUAL(pinas_cost_lut_n_cands(lut, 0), 4);
    CU_ASSERT_EQUAL(pinas_cost_lut_n_cands(lut, 1), 2);
    /* Every value read is the one built, to the 15 digits cJSON writes. */
    double f = pinas_cost_lut_fixed_ms(built);
    CU_ASSERT(f > 0);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_fixed_ms(lut), f, 1e-14 * f);
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < pinas_cost_lut_n_cands(lut, k); c++) {
            double v = pinas_cost_lut_cand_ms(built, k, c);
            CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, k, c), v, 1e-14 * v);
        }
    /* relu on 4x8x8 = 256 elements: each party's compute is the sum of its coefficients times the
     * node's features, the node's the busier party's, plus the network's share */
    pinas_cost_row row;
    int a1 = pinas_net_find(sp, "a1");
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict_node(ctx, sp, a1, 0, hw, link, &p, &row), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_cpu_prim_of(sp, a1, &pinas_net_node(sp, a1)->cands[0]), PINAS_CPU_RELU);
    double party[2];
    for (int q = 0; q < 2; q++) {
        double fe[PINAS_CPU_N_FEAT];
        pinas_cpu_features(sp, a1, &pinas_net_node(sp, a1)->cands[0], 1, &row.counts, q, fe);
        CU_ASSERT_EQUAL(fe[PINAS_CPU_F_IN], 256);
        CU_ASSERT_EQUAL(fe[PINAS_CPU_F_AES], (double)row.counts.online.aes_blocks[q]);
        party[q] = 0;
        for (int f = 0; f < PINAS_CPU_N_FEAT; f++) party[q] += cpu_golden.coef[PINAS_CPU_RELU][q][f] * fe[f];
        CU_ASSERT_DOUBLE_EQUAL(row.compute_party_s[q], party[q], 1e-15);
    }
    CU_ASSERT(party[0] > 2.4e-4 && party[1] > 2.4e-4);
    CU_ASSERT_DOUBLE_EQUAL(row.compute_s, party[0] > party[1] ? party[0] : party[1], 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(pinas_cost_lut_cand_ms(lut, 0, 0), row.online_s * 1e3, 1e-12);
    /* identity is free; relu costs more than poly (a comparison against a multiplication) */
    CU_ASSERT_EQUAL(pinas_cost_lut_cand_ms(lut, 0, 3), 0);
    CU_ASSERT(pinas_cost_lut_cand_ms(lut, 0, 0) > pinas_cost_lut_cand_ms(lut, 0, 1));
    j = pinas_cost_lut_to_json(lut); /* read and written again: the same bytes */
    check_bytes(j, "lut.json");
    cJSON_Delete(j);
    pinas_cost_lut_free(built);
    pinas_cost_lut_free(lut);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(sp);
}

int main(void)
{
    ctx = pinas_ctx_create();
    golden_cpu_params();
    update = getenv("PINAS_UPDATE_GOLDEN") && *getenv("PINAS_UPDATE_GOLDEN") == '1';
    /* profiles first: the LUT is built on them */
    tu_test tests[] = {
        {"golden cpu profile: read, values, written back", test_profile_cpu},
        {"golden fpga profile: read, values, written back", test_profile_fpga},
        {"golden network profile: read, values, written back", test_profile_link},
        {"golden LUT: built, read, values, written back", test_lut},
    };
    int rc = tu_run("latency_model_golden", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
