/* Tests for nas/derive.c and nas/naive.c: argmax derivation (one-hot and tied mixing weights, through a real supernet), baselines, naive archs at a latency budget. */
#define _GNU_SOURCE
#include "pinas_nas.h"
#include "pinas_train.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define SPACE "search_spaces/spaces/quickstart.json"

static pinas_net *load_space(pinas_ctx *ctx)
{
    pinas_net *n = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, SPACE, &n), PINAS_OK);
    return n;
}

static const char *choice(const pinas_net *net, const char *id, char *buf)
{
    const pinas_node *nd = pinas_net_node(net, pinas_net_find(net, id));
    const pinas_cand *c = pinas_node_chosen(nd);
    return c ? pinas_cand_name(c, buf, 32) : "open";
}

static void test_one_hot_probs(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_net *space = load_space(ctx);
    /* Slots in node order: stem.act, stem.pool, b1.act1, b1.act2, b2.act1, b2.act2. */
    const char *ids[] = {"stem.act", "stem.pool", "b1.act1", "b1.act2", "b2.act1", "b2.act2"};
    int nodes[6];
    float p[6][3] = {{0, 1, 0}, {0, 1, 0}, {0, 0, 1}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    const float *probs[6];
    for (int i = 0; i < 6; i++) {
        nodes[i] = pinas_net_find(space, ids[i]);
        CU_ASSERT_FATAL(nodes[i] > 0);
        probs[i] = p[i];
    }
    pinas_net *arch = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nas_derive(ctx, space, 6, nodes, probs, &arch), PINAS_OK);
    char b[32];
    CU_ASSERT_STRING_EQUAL(choice(arch, "stem.act", b), "poly");
    CU_ASSERT_STRING_EQUAL(choice(arch, "stem.pool", b), "avgpool");
    CU_ASSERT_STRING_EQUAL(choice(arch, "b1.act1", b), "patch_relu:2x2");
    CU_ASSERT_STRING_EQUAL(choice(arch, "b1.act2", b), "relu");
    CU_ASSERT_STRING_EQUAL(choice(arch, "b2.act1", b), "poly");
    CU_ASSERT_STRING_EQUAL(choice(arch, "b2.act2", b), "patch_relu:2x2");
    CU_ASSERT_EQUAL(pinas_net_n_open(arch), 0);
    CU_ASSERT_EQUAL(pinas_net_n_open(space), 6); /* the space is left as it was */
    /* ReLUs: b1.act2 is relu over 16x8x8; patch relus count one per 2x2 patch: 16x4x4 (b1.act1) + 32x2x2 (b2.act2). */
    CU_ASSERT_EQUAL(pinas_net_relu_count(arch), 16 * 8 * 8 + 16 * 4 * 4 + 32 * 2 * 2);
    cJSON *aj = pinas_nas_arch_json(arch);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(aj, "stem.pool")->valuestring, "avgpool");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(aj), 6);
    cJSON_Delete(aj);
    pinas_net_free(arch);
    pinas_net_free(space);
    pinas_ctx_free(ctx);
}

static void test_ties_and_errors(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_net *space = load_space(ctx);
    const char *ids[] = {"stem.act", "stem.pool", "b1.act1", "b1.act2", "b2.act1", "b2.act2"};
    int nodes[6];
    float tie[3] = {0.2f, 0.4f, 0.4f}, flat[3] = {1.0f / 3, 1.0f / 3, 1.0f / 3};
    const float *probs[6] = {tie, flat, flat, flat, flat, flat};
    for (int i = 0; i < 6; i++) nodes[i] = pinas_net_find(space, ids[i]);
    pinas_net *arch = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nas_derive(ctx, space, 6, nodes, probs, &arch), PINAS_OK);
    char b[32];
    CU_ASSERT_STRING_EQUAL(choice(arch, "stem.act", b), "poly"); /* tie between 1 and 2: the lower index */
    CU_ASSERT_STRING_EQUAL(choice(arch, "stem.pool", b), "maxpool");
    CU_ASSERT_STRING_EQUAL(choice(arch, "b2.act2", b), "relu");
    pinas_net_free(arch);
    /* A slot left out. */
    TU_ASSERT_ERR(ctx, pinas_nas_derive(ctx, space, 5, nodes, probs, &arch), "slot b2.act2 has no mixing weights");
    CU_ASSERT_PTR_NULL(arch);
    /* A node that is not a slot. */
    int bad[1] = {pinas_net_find(space, "b1.conv1")};
    TU_ASSERT_ERR(ctx, pinas_nas_derive(ctx, space, 1, bad, probs, &arch), "b1.conv1 is not an open slot");
    pinas_net_free(space);
    pinas_ctx_free(ctx);
}

static void test_baselines(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_net *space = load_space(ctx), *relu = NULL, *poly = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nas_baseline(ctx, space, "all-relu", &relu), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_nas_baseline(ctx, space, "all-poly", &poly), PINAS_OK);
    char b[32];
    CU_ASSERT_STRING_EQUAL(choice(relu, "stem.pool", b), "maxpool");
    CU_ASSERT_STRING_EQUAL(choice(relu, "b2.act1", b), "relu");
    CU_ASSERT_STRING_EQUAL(choice(poly, "stem.pool", b), "avgpool");
    CU_ASSERT_STRING_EQUAL(choice(poly, "b2.act1", b), "poly");
    CU_ASSERT_EQUAL(pinas_net_relu_count(relu), pinas_net_relu_count(space));
    CU_ASSERT_EQUAL(pinas_net_relu_count(poly), 0);
    pinas_net_free(relu);
    pinas_net_free(poly);
    TU_ASSERT_ERR(ctx, pinas_nas_baseline(ctx, space, "all-identity", &relu), "all-identity");
    CU_ASSERT_PTR_NULL(relu);
    /* A space whose slot lacks poly has no all-poly baseline; the message names the slot. */
    cJSON *j = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_json_parse(ctx,
                                           "{\"format\": \"pinas-net/1\", \"input\": [1, 4, 4], \"num_classes\": 2, \"nodes\": ["
                                           "{\"id\": \"c\", \"op\": \"conv2d\", \"out_channels\": 2, \"kernel\": 3, \"padding\": 1},"
                                           "{\"id\": \"a\", \"op\": \"act\", \"candidates\": [\"relu\", \"identity\"]},"
                                           "{\"id\": \"g\", \"op\": \"global_avgpool\"}, {\"id\": \"f\", \"op\": \"linear\", \"out_features\": 2}]}",
                                           "inline", &j),
                          PINAS_OK);
    pinas_net *small = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_from_json(ctx, j, "inline", &small), PINAS_OK);
    cJSON_Delete(j);
    TU_ASSERT_ERR(ctx, pinas_nas_baseline(ctx, small, "all-poly", &poly), "slot a has no poly candidate");
    pinas_net_free(small);
    pinas_net_free(space);
    pinas_ctx_free(ctx);
}

/* Through a real supernet: one-hot alphas written into the tnet give the same architecture from
 * pinas_nas_derive (over the tnet's softmax probabilities) and from the trainer's own argmax. */
static void test_supernet_one_hot(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_net *space = load_space(ctx);
    pinas_tnet *t = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_create(ctx, space, 7, &t), PINAS_OK);
    int n = pinas_tnet_n_alphas(t);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    int nodes[6];
    float *probs[6];
    for (int k = 0; k < n; k++) {
        pt_tensor *a = pinas_tnet_alpha(t, k, &nodes[k]);
        CU_ASSERT_PTR_NOT_NULL(a);
        int nc = pinas_net_node(space, nodes[k])->n_cands;
        float v[PINAS_MAX_CANDS] = {0};
        v[(k + 1) % nc] = 8.0f; /* one-hot in logit space */
        CU_ASSERT_EQUAL(pinas_tnet_set_alpha(ctx, t, k, v), PINAS_OK);
        probs[k] = calloc((size_t)nc, sizeof(float));
        CU_ASSERT_EQUAL(pinas_tnet_alpha_probs(ctx, t, k, probs[k]), PINAS_OK);
        CU_ASSERT(probs[k][(k + 1) % nc] > 0.99f);
    }
    pinas_net *mine = NULL, *theirs = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nas_derive(ctx, space, n, nodes, (const float *const *)probs, &mine), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_derive(ctx, t, &theirs), PINAS_OK);
    for (int k = 0; k < n; k++) {
        const pinas_node *a = pinas_net_node(mine, nodes[k]), *b = pinas_net_node(theirs, nodes[k]);
        CU_ASSERT_EQUAL(a->choice, (k + 1) % a->n_cands);
        CU_ASSERT_EQUAL(a->choice, b->choice);
        free(probs[k]);
    }
    CU_ASSERT_EQUAL(pinas_net_hash(mine), pinas_net_hash(theirs));
    /* The derived net's weights export with poly parameters only where poly was kept. */
    pinas_tensors *w = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_tnet_export(ctx, t, mine, &w), PINAS_OK);
    pinas_tensor_view v;
    CU_ASSERT_EQUAL(pinas_tensors_find(w, "stem.act.w0", &v), 0);  /* stem.act -> candidate 1 = poly */
    CU_ASSERT_EQUAL(pinas_tensors_find(w, "b1.act1.w0", &v), -1); /* b1.act1 -> candidate 0 = relu */
    CU_ASSERT_EQUAL(pinas_tensors_find(w, "stem.act.alpha", &v), -1);
    pinas_tensors_free(w);
    pinas_net_free(mine);
    pinas_net_free(theirs);
    pinas_tnet_free(t);
    pinas_net_free(space);
    pinas_ctx_free(ctx);
}

/* Slot k of the LUT decided on relu/maxpool? */
static int upgraded_at(const pinas_net *arch, const pinas_cost_lut *lut, int k)
{
    const pinas_cand *c = pinas_node_chosen(pinas_net_node(arch, pinas_cost_lut_slot_node(lut, k)));
    return c->kind == PINAS_CAND_RELU || c->kind == PINAS_CAND_MAXPOOL;
}

static void test_naive(void)
{
    pinas_ctx *ctx = pinas_ctx_create();
    pinas_net *space = load_space(ctx);
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    pinas_cost_lut *lut = NULL;
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_hw_load(ctx, "cpu", &hw), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_link_load(ctx, "lan", &link), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_build(ctx, space, hw, link, &p, &lut), PINAS_OK);
    int n = pinas_cost_lut_n_slots(lut);
    pinas_net *relu = NULL, *poly = NULL;
    double lr = 0, lp = 0;
    CU_ASSERT_EQUAL_FATAL(pinas_nas_baseline(ctx, space, "all-relu", &relu), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_nas_baseline(ctx, space, "all-poly", &poly), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_latency(ctx, lut, relu, &lr), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_cost_lut_latency(ctx, lut, poly, &lp), PINAS_OK);
    CU_ASSERT(lp < lr);
    for (int b = 0; b <= 10; b++) {
        double budget = lp + (lr - lp) * b / 10.0;
        pinas_net *fk = NULL, *rnd = NULL, *rnd2 = NULL;
        int kf = -1, kr = -1;
        double mf = 0, mr = 0, t = 0;
        CU_ASSERT_EQUAL_FATAL(pinas_nas_naive(ctx, space, lut, "first-k", "poly", budget, 1, &fk, &kf, &mf), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_nas_naive(ctx, space, lut, "random", "poly", budget, 7 + (uint64_t)b, &rnd, &kr, &mr), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_nas_naive(ctx, space, lut, "random", "poly", budget, 7 + (uint64_t)b, &rnd2, NULL, NULL), PINAS_OK);
        /* Under the budget, and the reported latency is the LUT's. */
        CU_ASSERT(mf <= budget * (1 + 1e-12));
        CU_ASSERT(mr <= budget * (1 + 1e-12));
        CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, lut, fk, &t), PINAS_OK);
        CU_ASSERT_DOUBLE_EQUAL(t, mf, 1e-12);
        CU_ASSERT_EQUAL(pinas_net_n_open(fk), 0);
        /* first-k: exactly the first kf slots upgraded, and the next one would not fit. */
        for (int k = 0; k < n; k++) CU_ASSERT_EQUAL(upgraded_at(fk, lut, k), k < kf);
        if (b == 0) CU_ASSERT_EQUAL(kf, 0);
        if (b == 10) CU_ASSERT_EQUAL(kf, n);
        /* random: as many upgrades as reported, the same for the same seed, and maximal: no
         * further single upgrade fits. */
        int cnt = 0;
        for (int k = 0; k < n; k++) cnt += upgraded_at(rnd, lut, k);
        CU_ASSERT_EQUAL(cnt, kr);
        cJSON *a = pinas_nas_arch_json(rnd), *a2 = pinas_nas_arch_json(rnd2);
        CU_ASSERT(cJSON_Compare(a, a2, 1));
        cJSON_Delete(a);
        cJSON_Delete(a2);
        for (int k = 0; k < n; k++) {
            if (upgraded_at(rnd, lut, k)) continue;
            const pinas_node *nd = pinas_net_node(space, pinas_cost_lut_slot_node(lut, k));
            int j = pinas_node_find_cand(nd, nd->op == PINAS_OP_POOL ? PINAS_CAND_MAXPOOL : PINAS_CAND_RELU);
            /* pinas_net_decide only decides open slots: rebuild from the space with rnd's choices. */
            pinas_net *alt = pinas_net_clone(space);
            for (int q = 0; q < n; q++) {
                int node = pinas_cost_lut_slot_node(lut, q);
                const pinas_node *rq = pinas_net_node(rnd, node);
                int cq = q == k ? j : (int)(pinas_node_chosen(rq) - rq->cands);
                CU_ASSERT_EQUAL(pinas_net_decide(ctx, alt, node, cq), PINAS_OK);
            }
            double tl = 0;
            CU_ASSERT_EQUAL(pinas_cost_lut_latency(ctx, lut, alt, &tl), PINAS_OK);
            CU_ASSERT(tl > budget);
            pinas_net_free(alt);
        }
        pinas_net_free(fk);
        pinas_net_free(rnd);
        pinas_net_free(rnd2);
    }
    pinas_net *x = NULL;
    TU_ASSERT_ERR(ctx, pinas_nas_naive(ctx, space, lut, "last-k", NULL, lr, 1, &x, NULL, NULL), "expected \"first-k\" or \"random\"");
    TU_ASSERT_ERR(ctx, pinas_nas_naive(ctx, space, lut, "first-k", "relu", lr, 1, &x, NULL, NULL), "expected \"cheapest\" or \"poly\"");
    CU_ASSERT_PTR_NULL(x);
    /* In this space (relu, poly, patch_relu:2x2) poly is each act slot's cheapest candidate and avgpool the
     * pool's, so both bases give the same architectures. */
    for (int b = 0; b <= 4; b++) {
        double budget = lp + (lr - lp) * b / 4.0;
        pinas_net *a1 = NULL, *a2 = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_nas_naive(ctx, space, lut, "first-k", "cheapest", budget, 1, &a1, NULL, NULL), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_nas_naive(ctx, space, lut, "first-k", "poly", budget, 1, &a2, NULL, NULL), PINAS_OK);
        cJSON *j1 = pinas_nas_arch_json(a1), *j2 = pinas_nas_arch_json(a2);
        CU_ASSERT(cJSON_Compare(j1, j2, 1));
        cJSON_Delete(j1);
        cJSON_Delete(j2);
        pinas_net_free(a1);
        pinas_net_free(a2);
    }
    CU_ASSERT_PTR_NULL(x);
    pinas_net_free(relu);
    pinas_net_free(poly);
    pinas_cost_lut_free(lut);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(space);
    pinas_ctx_free(ctx);
}

int main(void)
{
    tu_test tests[] = {{"one-hot probabilities", test_one_hot_probs},
                       {"ties and errors", test_ties_and_errors},
                       {"baselines", test_baselines},
                       {"supernet one-hot alphas", test_supernet_one_hot},
                       {"naive first-k and random archs at a budget", test_naive}};
    return tu_run("nas_derive", tests, (int)(sizeof tests / sizeof tests[0]));
}
