/* Protocol accounting (latency_model/predict.c over crypto's analytic counts) against the runtime's
 * measured counters: per operator (every layer of every net) and for whole networks (all-ReLU, all-poly,
 * mixed, patch), exactly. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pinas_cost.h"
#include "testutil.h"
#include "testutil_net.h"

static pinas_ctx *ctx;

/* ResNet-20, width 4, 16x16 input with the ImageNet stem (so that there is a max/avg pool slot). */
static pinas_net *space(void)
{
    static const char *const act[] = {"relu", "poly", "patch_relu:2x2", "identity"}, *const pool[] = {"maxpool", "avgpool"};
    return tu_resnet(ctx, 20, 4, "imagenet", 16, 10, act, 4, pool, 2);
}

static void print_counts(const char *what, const pinas_mpc_counts *c)
{
    fprintf(stderr, "    %-10s bytes %llu/%llu rounds %llu aes %llu/%llu macs %llu/%llu\n", what, (unsigned long long)c->bytes[0],
            (unsigned long long)c->bytes[1], (unsigned long long)c->rounds, (unsigned long long)c->aes_blocks[0],
            (unsigned long long)c->aes_blocks[1], (unsigned long long)c->ring_macs[0], (unsigned long long)c->ring_macs[1]);
}

static int same(const char *id, const char *part, const pinas_mpc_counts *pred, const pinas_mpc_counts *meas)
{
    if (pinas_mpc_counts_equal(pred, meas)) return 1;
    fprintf(stderr, "\n  %s %s: accounting and runtime differ\n", id, part);
    print_counts("predicted", pred);
    print_counts("measured", meas);
    return 0;
}

/* Per-node comparison windows (bit cutting): every slot of the arch gets its own (cmp_bits,
 * cmp_high), cycling over widths and tops, into lb (ids borrowed from arch). Returns the count. */
static int mixed_windows(const pinas_net *arch, pinas_mpc_layer_bits *lb)
{
    static const int bits[] = {12, 20, 31, 44, 57, 64}, high[] = {64, 52, 40, 48, 60, 64};
    int n = 0;
    for (int i = 0; i < pinas_net_n_nodes(arch); i++) {
        if (!pinas_node_is_slot(pinas_net_node(arch, i))) continue;
        pinas_mpc_layer_bits e = {pinas_net_node(arch, i)->id, bits[n % 6], high[n % 6]};
        lb[n++] = e;
    }
    return n;
}

/* kind: 0 all-ReLU + maxpool, 1 all-poly + avgpool, 2 mixed (random), 3 all patch_relu:2x2 + maxpool.
 * windows: every slot with its own comparison window (mixed per-layer bits). */
static void check_arch_w(int kind, int batch, int cmp_bits, int windows)
{
    pinas_net *sp = space(), *arch = NULL;
    if (kind == 2) {
        CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 11, &arch), PINAS_OK);
    } else {
        arch = pinas_net_clone(sp);
        for (int i = 0; i < pinas_net_n_nodes(sp); i++) {
            const pinas_node *n = pinas_net_node(sp, i);
            if (!pinas_node_is_open(n)) continue;
            pinas_cand_kind want = n->op == PINAS_OP_POOL ? (kind == 1 ? PINAS_CAND_AVGPOOL : PINAS_CAND_MAXPOOL)
                                                          : (kind == 0 ? PINAS_CAND_RELU : kind == 1 ? PINAS_CAND_POLY : PINAS_CAND_PATCH_RELU);
            CU_ASSERT_EQUAL_FATAL(pinas_net_decide(ctx, arch, i, pinas_node_find_cand(n, want)), PINAS_OK);
        }
    }
    pinas_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_model_random(ctx, arch, 3 + kind, &m), PINAS_OK);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    p.batch = batch;
    p.cmp_bits = cmp_bits;
    size_t nx = (size_t)batch * 3 * 16 * 16;
    float *x = malloc(nx * sizeof *x), *logits = malloc((size_t)batch * 10 * sizeof *logits);
    for (size_t i = 0; i < nx; i++) x[i] = (float)sin((double)i * 0.37);
    pinas_mpc_report *rep = NULL;
    pinas_mpc_layer_bits *lb = calloc((size_t)pinas_net_n_nodes(arch), sizeof *lb);
    int n_lb = windows ? mixed_windows(arch, lb) : 0;
    pinas_mpc_deal_opts opts = {.layer_bits = lb, .n_layer_bits = n_lb};
    pinas_status s = pinas_mpc_infer_loopback(ctx, m, x, batch, &p, &opts, logits, &rep);
    if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);

    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "fpga-zcu104", &hw), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "loopback", &link), PINAS_OK);
    pinas_cost_prediction *pr = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_cost_predict_layers(ctx, arch, hw, link, &p, lb, n_lb, &pr), PINAS_OK);

    /* Per operator: every measured layer equals the accounting of its node. */
    int matched = 0, ops_seen[16] = {0};
    for (int l = 0; l < rep->n_layers; l++) {
        const pinas_mpc_layer_report *L = &rep->layers[l];
        /* The runtime reports the logits the server reveals as layer "output": the session row's online part. */
        const char *want = strcmp(L->id, "output") == 0 ? "(session)" : L->id;
        int r = 0;
        while (r < pr->n_rows && strcmp(pr->rows[r].id, want) != 0) r++;
        if (r == pr->n_rows) {
            /* A layer the prediction does not list must cost nothing. */
            pinas_mpc_counts zero = {0};
            CU_ASSERT(same(L->id, "(unlisted)", &zero, &L->measured.online));
            continue;
        }
        const pinas_cost_row *row = &pr->rows[r];
        CU_ASSERT(same(L->id, "online", &row->counts.online, &L->measured.online));
        CU_ASSERT(same(L->id, "preprocessing", &row->counts.offline, &L->measured.offline));
        matched++;
        if (row->node >= 0) ops_seen[pinas_net_node(arch, row->node)->op]++;
    }
    CU_ASSERT(matched >= pinas_net_n_nodes(arch) / 2);
    CU_ASSERT(ops_seen[PINAS_OP_CONV2D] > 0 && ops_seen[PINAS_OP_ACT] > 0 && ops_seen[PINAS_OP_POOL] > 0 && ops_seen[PINAS_OP_LINEAR] > 0);
    /* Every node that costs anything appears in the runtime's report. */
    for (int r = 0; r < pr->n_rows; r++) {
        const pinas_cost_row *row = &pr->rows[r];
        if (row->node < 0) continue;
        const pinas_mpc_counts *c = &row->counts.online;
        if (!c->rounds && !c->bytes[0] && !c->bytes[1] && !c->ring_macs[0] && !c->ring_macs[1]) continue;
        int found = 0;
        for (int l = 0; l < rep->n_layers; l++) found |= strcmp(rep->layers[l].id, row->id) == 0;
        if (!found) fprintf(stderr, "\n  node %s costs something but the runtime reports no layer for it\n", row->id);
        CU_ASSERT(found);
    }
    /* Whole network: the totals (nodes + session) equal the runtime's totals. */
    CU_ASSERT(same("whole net", "online", &pr->total.counts.online, &rep->totals.online));
    CU_ASSERT(same("whole net", "preprocessing", &pr->total.counts.offline, &rep->totals.offline));
    CU_ASSERT(same("whole net", "setup", &pr->total.counts.setup, &rep->totals.setup));
    pinas_mpc_cost net_cost;
    CU_ASSERT_EQUAL(pinas_mpc_cost_net(ctx, arch, &p, &net_cost), PINAS_OK);
    if (!n_lb) CU_ASSERT(same("cost_net", "online", &net_cost.online, &rep->totals.online));
    /* the windows change what the slots cost: the plain prediction no longer matches the runtime */
    if (n_lb) CU_ASSERT(!pinas_mpc_counts_equal(&net_cost.offline, &rep->totals.offline));
    free(lb);

    pinas_cost_prediction_free(pr);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_mpc_report_free(rep);
    free(x);
    free(logits);
    pinas_model_free(m);
    pinas_net_free(arch);
    pinas_net_free(sp);
}

static void check_arch(int kind, int batch, int cmp_bits) { check_arch_w(kind, batch, cmp_bits, 0); }

static void test_all_relu(void) { check_arch(0, 1, 64); }
static void test_all_poly(void) { check_arch(1, 1, 64); }
static void test_mixed(void) { check_arch(2, 2, 64); }
static void test_patch(void) { check_arch(3, 1, 64); }
/* Protocol parameters change the counts: fewer comparison bits (smaller keys, fewer AES blocks). */
static void test_cmp_bits(void) { check_arch(0, 1, 24); }
static void test_patch_cmp_bits(void) { check_arch(3, 2, 40); }
/* Mixed per-layer windows (bit cutting's mpc.layers): every row and the totals still equal the runtime. */
static void test_windows_mixed(void) { check_arch_w(2, 2, 64, 1); }
static void test_windows_relu(void) { check_arch_w(0, 1, 48, 1); }
static void test_windows_patch(void) { check_arch_w(3, 1, 64, 1); }

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    tu_test tests[] = {
        {"all-ReLU + maxpool", test_all_relu},
        {"all-poly + avgpool", test_all_poly},
        {"mixed (batch 2)", test_mixed},
        {"patch_relu:2x2 + maxpool", test_patch},
        {"all-ReLU, cmp_bits 24", test_cmp_bits},
        {"patch, cmp_bits 40, batch 2", test_patch_cmp_bits},
        {"mixed arch, mixed per-layer windows, batch 2", test_windows_mixed},
        {"all-ReLU + maxpool, mixed per-layer windows", test_windows_relu},
        {"patch_relu:2x2 + maxpool, mixed per-layer windows", test_windows_patch},
    };
    int rc = tu_run("latency_model_accounting", tests, sizeof tests / sizeof tests[0]);
    pinas_ctx_free(ctx);
    return rc;
}
