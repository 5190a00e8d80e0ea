/* Tests for the net IR (search_spaces/): load/save round trip, golden form, validation errors, counters, generators,
 * the net builder, the seeded architecture sampler and the config space. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pinas_config.h"
#include "pinas_net.h"
#include "testutil.h"

static pinas_ctx *ctx;

static pinas_net *gen_nc(const char *backbone, int depth, const char *stem, int h, int nc)
{
    const char *act[] = {"relu", "poly"};
    pinas_space_opts o = {.backbone = backbone, .depth = depth, .stem = stem, .in_c = 3, .in_h = h, .in_w = h, .num_classes = nc,
                          .act = act, .n_act = 2};
    pinas_net *n = NULL;
    pinas_status s = pinas_net_generate(ctx, &o, &n);
    if (s) fprintf(stderr, "generate %s%d: %s\n", backbone, depth, pinas_errmsg(ctx));
    CU_ASSERT_EQUAL(s, PINAS_OK);
    return n;
}

static pinas_net *gen(const char *backbone, int depth, const char *stem, int h) { return gen_nc(backbone, depth, stem, h, 10); }

static void test_counts(void)
{
    pinas_net *r18 = gen("resnet", 18, "cifar", 32);
    CU_ASSERT_EQUAL(pinas_net_relu_count(r18), 557056);
    double macs = (double)pinas_net_macs(r18);
    CU_ASSERT(macs > 0.56e9 * 0.99 && macs < 0.56e9 * 1.01);
    CU_ASSERT_EQUAL(pinas_net_n_open(r18), 17);
    /* parameters: the standard 11.17 M plus 3 poly parameters per slot */
    CU_ASSERT_EQUAL(pinas_net_params(r18), 11173962 + 17 * 3);
    pinas_net *r32 = gen("resnet", 32, "cifar", 32);
    CU_ASSERT_EQUAL(pinas_net_relu_count(r32), 303104);
    pinas_net *r20 = gen("resnet", 20, NULL, 32);
    CU_ASSERT_EQUAL(pinas_net_relu_count(r20), 16384 * 7 + 8192 * 6 + 4096 * 6);
    /* decided all-poly has no ReLUs; patch_relu counts patches */
    for (int i = 0; i < pinas_net_n_nodes(r20); i++)
        if (pinas_node_is_open(pinas_net_node(r20, i))) CU_ASSERT_EQUAL(pinas_net_decide(ctx, r20, i, 1), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_relu_count(r20), 0);
    CU_ASSERT_EQUAL(pinas_net_n_open(r20), 0);
    pinas_net_free(r18);
    pinas_net_free(r32);
    pinas_net_free(r20);
}

static void test_generators(void)
{
    pinas_net *n = gen("resnet", 34, "imagenet", 224);
    CU_ASSERT_EQUAL_FATAL(n != NULL, 1);
    int pool = pinas_net_find(n, "stem.pool");
    CU_ASSERT(pool > 0);
    CU_ASSERT_EQUAL(pinas_net_node(n, pool)->h, 56);
    double macs = (double)pinas_net_macs(n);
    CU_ASSERT(macs > 3.6e9 * 0.97 && macs < 3.6e9 * 1.03); /* ResNet-34 ImageNet: 3.6 GMACs */
    pinas_net_free(n);
    n = gen("resnet", 18, "imagenet", 224);
    macs = (double)pinas_net_macs(n);
    CU_ASSERT(macs > 1.82e9 * 0.98 && macs < 1.82e9 * 1.02); /* ResNet-18 ImageNet: 1.82 GMACs */
    pinas_net_free(n);
    n = gen("resnet", 56, "cifar", 32);
    CU_ASSERT(pinas_net_macs(n) > 0.125e9 * 0.97 && pinas_net_macs(n) < 0.127e9 * 1.03);
    pinas_net_free(n);
    n = gen("vgg", 16, "cifar", 32);
    macs = (double)pinas_net_macs(n);
    CU_ASSERT(macs > 0.313e9 * 0.98 && macs < 0.315e9 * 1.02); /* VGG-16 CIFAR: 0.314 GMACs */
    CU_ASSERT(pinas_net_find(n, "s5.pool") > 0);
    CU_ASSERT_EQUAL(pinas_net_n_open(n), 13); /* 13 act slots; pool slots have one candidate by default */
    pinas_net_free(n);
    n = gen_nc("mobilenetv2", 0, "imagenet", 224, 1000);
    macs = (double)pinas_net_macs(n);
    CU_ASSERT(macs > 0.30e9 * 0.98 && macs < 0.30e9 * 1.02); /* MobileNetV2 1.0, 1000 classes: 300 MMACs, 3.50 M params */
    double params = (double)pinas_net_params(n);
    CU_ASSERT(params > 3.50e6 * 0.97 && params < 3.50e6 * 1.03);
    pinas_net_free(n);
    n = gen("mobilenetv2", 0, "cifar", 32);
    CU_ASSERT_EQUAL(pinas_net_node(n, pinas_net_output(n))->c, 10);
    pinas_net_free(n);
}

static void test_round_trip_and_golden(void)
{
    pinas_net *a;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, "tests/golden/tiny_space.json", &a), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_n_nodes(a), 11);
    CU_ASSERT_EQUAL(pinas_net_macs(a), 9232);
    CU_ASSERT_EQUAL(pinas_net_params(a), 299);
    CU_ASSERT_EQUAL(pinas_net_relu_count(a), 256);
    CU_ASSERT_EQUAL(pinas_net_n_open(a), 2);
    const pinas_node *a2 = pinas_net_node(a, pinas_net_find(a, "a2"));
    CU_ASSERT_EQUAL(pinas_node_chosen(a2)->kind, PINAS_CAND_POLY);
    /* the explicit form is exactly the golden file */
    const char *p = tu_path("tiny_saved.json");
    CU_ASSERT_EQUAL_FATAL(pinas_net_save(ctx, a, p), PINAS_OK);
    char *got, *want;
    CU_ASSERT_EQUAL_FATAL(pinas_file_read(ctx, p, &got, NULL), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_file_read(ctx, "tests/golden/tiny_net_expanded.json", &want, NULL), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    free(want);
    pinas_net *b;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, p, &b), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_hash(a), pinas_net_hash(b));
    /* a decision changes the hash; patch_relu counts one comparison per 2x2 patch */
    int a1 = pinas_net_find(b, "a1");
    CU_ASSERT_EQUAL(pinas_net_decide(ctx, b, a1, 2), PINAS_OK);
    CU_ASSERT_NOT_EQUAL(pinas_net_hash(a), pinas_net_hash(b));
    CU_ASSERT_EQUAL(pinas_net_relu_count(b), 4 * 4 * 4);
    TU_ASSERT_ERR(ctx, pinas_net_decide(ctx, b, a1, 9), "node a1: candidate #9 out of range");
    TU_ASSERT_ERR(ctx, pinas_net_decide(ctx, b, 1, 0), "node c1: conv2d is not a slot");
    /* a compact space round-trips through the explicit form */
    pinas_net *r = gen("resnet", 20, "cifar", 32), *r2 = NULL;
    cJSON *j = pinas_net_to_json(r);
    CU_ASSERT_EQUAL(pinas_net_from_json(ctx, j, "mem", &r2), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_hash(r), pinas_net_hash(r2));
    cJSON_Delete(j);
    pinas_net_free(r);
    pinas_net_free(r2);
    pinas_net_free(a);
    pinas_net_free(b);
}

/* Loads tiny_space.json with one node replaced (by id) with `node_json`. */
static pinas_status load_variant(const char *id, const char *node_json)
{
    cJSON *j;
    if (pinas_json_load(ctx, "tests/golden/tiny_space.json", &j)) return PINAS_EIO;
    cJSON *nodes = cJSON_GetObjectItem(j, "nodes"), *n;
    int k = 0;
    cJSON_ArrayForEach(n, nodes)
    {
        if (!strcmp(cJSON_GetObjectItem(n, "id")->valuestring, id)) break;
        k++;
    }
    cJSON_ReplaceItemInArray(nodes, k, cJSON_Parse(node_json));
    pinas_net *net = NULL;
    pinas_status s = pinas_net_from_json(ctx, j, "space.json", &net);
    pinas_net_free(net);
    cJSON_Delete(j);
    return s;
}

static void test_validation_errors(void)
{
    TU_ASSERT_ERR(ctx, load_variant("b1", "{\"id\": \"b1\", \"op\": \"batchnorn\"}"),
                  "space.json: node b1: unknown op \"batchnorn\" (did you mean \"batchnorm\"?)");
    TU_ASSERT_ERR(ctx, load_variant("b1", "{\"id\": \"b1\", \"op\": \"batchnorm\", \"inputs\": [\"zz\"]}"),
                  "space.json: node b1: input \"zz\" is not a node defined before it");
    TU_ASSERT_ERR(ctx, load_variant("b1", "{\"id\": \"b1\", \"op\": \"batchnorm\", \"inputs\": [\"a1\"]}"), "node b1: input \"a1\" is not a node defined before it");
    TU_ASSERT_ERR(ctx, load_variant("s", "{\"id\": \"s\", \"op\": \"add\", \"inputs\": [\"c2\", \"a1\"]}"),
                  "space.json: node s: add of c2 [4, 4, 4] and a1 [4, 8, 8]: shapes differ");
    TU_ASSERT_ERR(ctx, load_variant("a1", "{\"id\": \"a1\", \"op\": \"act\", \"candidates\": [\"relu\", \"sigmoid\"]}"),
                  "space.json: node a1: unknown candidate \"sigmoid\"");
    TU_ASSERT_ERR(ctx, load_variant("a1", "{\"id\": \"a1\", \"op\": \"act\", \"candidates\": [\"relu\", \"maxpool\"]}"),
                  "node a1: candidate maxpool does not belong in an act slot");
    TU_ASSERT_ERR(ctx, load_variant("a1", "{\"id\": \"a1\", \"op\": \"act\", \"candidates\": [\"relu\"], \"choice\": \"poly\"}"),
                  "node a1: choice \"poly\" is not among its candidates");
    TU_ASSERT_ERR(ctx, load_variant("b1", "{\"id\": \"c1\", \"op\": \"batchnorm\"}"), "node c1: id used twice");
    TU_ASSERT_ERR(ctx, load_variant("c2", "{\"id\": \"c2\", \"op\": \"conv2d\", \"out_channels\": 4}"), "node c2.kernel: missing");
    TU_ASSERT_ERR(ctx, load_variant("c2", "{\"id\": \"c2\", \"op\": \"conv2d\", \"out_channels\": 4, \"kernel\": 9}"),
                  "node c2: kernel 9x9 larger than padded input 4x4");
    TU_ASSERT_ERR(ctx, load_variant("c2", "{\"id\": \"c2\", \"op\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"paddin\": 1}"),
                  "node c2: unknown key \"paddin\" (did you mean \"padding\"?)");
    TU_ASSERT_ERR(ctx, load_variant("c2", "{\"id\": \"c2\", \"op\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1, \"shape\": [4, 2, 2]}"),
                  "node c2: shape [4, 2, 2] disagrees with the inferred [4, 4, 4]");
    TU_ASSERT_ERR(ctx, load_variant("fc", "{\"id\": \"fc\", \"op\": \"linear\", \"out_features\": 5}"),
                  "node fc: the last node gives [5, 1, 1] but num_classes is 4");
    TU_ASSERT_ERR(ctx, load_variant("g", "{\"id\": \"g\", \"op\": \"conv2d\", \"out_channels\": 3, \"kernel\": 1, \"groups\": 2}"),
                  "node g: groups 2 does not divide");
    TU_ASSERT_ERR(ctx, load_variant("c1", "{\"id\": \"c1\", \"op\": \"conv2d\", \"out_channels\": \"four\", \"kernel\": 3}"),
                  "space.json: node c1.out_channels: expected an integer in [1, 1048576], got \"four\"");
    cJSON *j = cJSON_Parse("{\"format\": \"pinas-net/2\"}");
    pinas_net *n = NULL;
    TU_ASSERT_ERR(ctx, pinas_net_from_json(ctx, j, "f.json", &n), "f.json: format: \"pinas-net/2\" is not supported");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"format\": \"pinas-net/1\", \"backbone\": \"resnt\", \"depth\": 18}");
    TU_ASSERT_ERR(ctx, pinas_net_from_json(ctx, j, "f.json", &n), "backbone: \"resnt\" is not one of resnet, vgg, mobilenetv2 (did you mean \"resnet\"?)");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"format\": \"pinas-net/1\", \"backbone\": \"resnet\", \"depth\": 19}");
    TU_ASSERT_ERR(ctx, pinas_net_from_json(ctx, j, "f.json", &n), "f.json: backbone resnet: depth 19 not supported");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"format\": \"pinas-net/1\", \"backbone\": \"resnet\", \"depth\": 20, \"act\": [\"relu\", \"gelu\"]}");
    TU_ASSERT_ERR(ctx, pinas_net_from_json(ctx, j, "f.json", &n), "act[1]: unknown candidate \"gelu\"");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"format\": \"pinas-net/1\", \"backbone\": \"resnet\", \"depth\": 20, \"act\": [\"relu\", \"poly\"], \"choices\": {\"stem.act\": \"poly\"}}");
    CU_ASSERT_EQUAL(pinas_net_from_json(ctx, j, "f.json", &n), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_node_chosen(pinas_net_node(n, pinas_net_find(n, "stem.act")))->kind, PINAS_CAND_POLY);
    pinas_net_free(n);
    cJSON_Delete(j);
    pinas_cand c;
    CU_ASSERT_EQUAL(pinas_cand_parse("patch_relu:4x2", &c), 0);
    CU_ASSERT_EQUAL(c.ph, 4);
    CU_ASSERT_EQUAL(c.pw, 2);
    CU_ASSERT_NOT_EQUAL(pinas_cand_parse("patch_relu:0x2", &c), 0);
    CU_ASSERT_NOT_EQUAL(pinas_cand_parse("patch_relu:2x2x", &c), 0);
}

/* Parses `text` as a net file named f.json; returns the status, frees any net. */
static pinas_status from_text(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    pinas_net *n = NULL;
    pinas_status s = pinas_net_from_json(ctx, j, "f.json", &n);
    pinas_net_free(n);
    cJSON_Delete(j);
    return s;
}

#define COMPACT "{\"format\": \"pinas-net/1\", \"backbone\": "

/* Issue 12: compact fields are range-checked like the explicit form; nothing is silently replaced. */
static void test_compact_ranges(void)
{
    /* 0 and 2^40 channels used to become 3 */
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"input\": [0, 32, 32]}"),
                  "f.json: input[0]: expected an integer in [1, 65536], got 0");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"input\": [1099511627776, 32, 32]}"),
                  "f.json: input[0]: expected an integer in [1, 65536], got 1099511627776");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"input\": [3, -32, 32]}"), "f.json: input[1]: expected an integer");
    /* fuzz finding: a huge number was cast to an integer (undefined) before the range check */
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"input\": [3, 1e300, 32]}"),
                  "f.json: input[1]: expected an integer in [1, 65536], got 1.0000000000000001e+300");
    TU_ASSERT_ERR(ctx, from_text("{\"format\": \"pinas-net/1\", \"input\": [3, 8, 8], \"num_classes\": 3, \"nodes\": ["
                                 "{\"id\": \"p\", \"op\": \"pool\", \"kernel\": [2, -1e300]}, {\"id\": \"f\", \"op\": \"flatten\"}]}"),
                  "f.json: node p.kernel[1]: expected an integer in [1, 1024], got -1.0000000000000001e+300");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"input\": [3, 32]}"), "f.json: input: expected an array of 3 integers");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"input\": [3, 32.5, 32]}"), "f.json: input[1]: expected an integer");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"input\": [3, 65536, 65536]}"),
                  "f.json: input: [3, 65536, 65536] has more than 268435456 elements");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 0}"), "f.json: depth: expected an integer in [1, 1000], got 0");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"width\": 0}"), "f.json: width: expected an integer in [1, 4096]");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"width\": 65536}"), "f.json: width: expected an integer in [1, 4096]");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"num_classes\": 0}"), "f.json: num_classes: expected an integer in [1, 1048576]");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"num_classes\": 2097152}"), "f.json: num_classes: expected an integer");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"widht\": 8}"), "f.json: unknown key \"widht\" (did you mean \"width\"?)");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"poly_scale\": 0}"), "f.json: poly_scale: 0 is not supported");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"resnet\", \"depth\": 20, \"name\": \"" /* 130 characters */
                                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"),
                  "f.json: name: expected 1 to 127 characters, got 130");
    /* values a backbone would ignore are errors too */
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"mobilenetv2\", \"depth\": 18}"), "f.json: backbone mobilenetv2: depth 18 given");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"mobilenetv2\", \"stem\": \"cifar-pool\"}"), "stem \"cifar-pool\" not supported");
    TU_ASSERT_ERR(ctx, from_text(COMPACT "\"vgg\", \"stem\": \"imagenet\"}"), "f.json: backbone vgg: stem \"imagenet\" not supported");
    /* compact keys in an explicit net would be ignored */
    TU_ASSERT_ERR(ctx, from_text("{\"format\": \"pinas-net/1\", \"input\": [3, 8, 8], \"num_classes\": 4, \"depth\": 20, \"nodes\": "
                                 "[{\"id\": \"g\", \"op\": \"global_avgpool\"}, {\"id\": \"fc\", \"op\": \"linear\", \"out_features\": 4}]}"),
                  "f.json: \"depth\" belongs to the compact form");
    /* the README's default depth for resnet is 18 */
    cJSON *j = cJSON_Parse(COMPACT "\"resnet\", \"stem\": \"cifar\"}");
    pinas_net *n = NULL;
    CU_ASSERT_EQUAL(pinas_net_from_json(ctx, j, "f.json", &n), PINAS_OK);
    if (n) CU_ASSERT_STRING_EQUAL(pinas_net_name(n), "resnet18-cifar");
    if (n) CU_ASSERT_EQUAL(pinas_net_relu_count(n), 557056);
    pinas_net_free(n);
    cJSON_Delete(j);
    /* the C entry point checks the same ranges */
    pinas_space_opts o = {.backbone = "resnet", .depth = 20, .in_c = -3};
    TU_ASSERT_ERR(ctx, pinas_net_generate(ctx, &o, &n), "input[0]: expected an integer in [1, 65536], got -3");
    o = (pinas_space_opts){.backbone = "resnet", .depth = 20, .width = 100000};
    TU_ASSERT_ERR(ctx, pinas_net_generate(ctx, &o, &n), "width: expected an integer in [1, 4096], got 100000");
    CU_ASSERT_PTR_NULL(n);
}

/* Issue 12: sizes are bounded in the IR, so C*H*W, flatten and MACs cannot overflow downstream. */
static void test_size_limits(void)
{
    /* 4096 x 256 x 256 is 2^28 elements (allowed), a 3x3 conv 4096 -> 4096 on it is 9.9e12 MACs */
    TU_ASSERT_ERR(ctx, from_text("{\"format\": \"pinas-net/1\", \"input\": [4096, 256, 256], \"num_classes\": 4, \"nodes\": ["
                                 "{\"id\": \"c\", \"op\": \"conv2d\", \"out_channels\": 4096, \"kernel\": 3, \"padding\": 1},"
                                 "{\"id\": \"g\", \"op\": \"global_avgpool\"}, {\"id\": \"fc\", \"op\": \"linear\", \"out_features\": 4}]}"),
                  "f.json: node c: the net exceeds 1099511627776 MACs per image");
    TU_ASSERT_ERR(ctx, from_text("{\"format\": \"pinas-net/1\", \"input\": [3, 8, 8], \"num_classes\": 4, \"nodes\": ["
                                 "{\"id\": \"c\", \"op\": \"conv2d\", \"out_channels\": 1048576, \"kernel\": 1024, \"padding\": 1000},"
                                 "{\"id\": \"g\", \"op\": \"global_avgpool\"}, {\"id\": \"fc\", \"op\": \"linear\", \"out_features\": 4}]}"),
                  "node c: output [1048576, 985, 985] has more than 268435456 elements");
    TU_ASSERT_ERR(ctx, from_text("{\"format\": \"pinas-net/1\", \"input\": [3, 65536, 65536], \"num_classes\": 4, \"nodes\": ["
                                 "{\"id\": \"f\", \"op\": \"flatten\"}, {\"id\": \"fc\", \"op\": \"linear\", \"out_features\": 4}]}"),
                  "f.json: input: [3, 65536, 65536] has more than 268435456 elements");
    /* a window larger than its input was accepted when C's division truncated -1/2 to 0 */
    TU_ASSERT_ERR(ctx, from_text("{\"format\": \"pinas-net/1\", \"input\": [3, 1, 1], \"num_classes\": 3, \"nodes\": ["
                                 "{\"id\": \"p\", \"op\": \"pool\", \"kernel\": 2}, {\"id\": \"f\", \"op\": \"flatten\"}]}"),
                  "f.json: node p: pool window 2x2 larger than input 1x1");
    TU_ASSERT_ERR(ctx, from_text("{\"format\": \"pinas-net/1\", \"input\": [3, 2, 2], \"num_classes\": 3, \"nodes\": ["
                                 "{\"id\": \"c\", \"op\": \"conv2d\", \"out_channels\": 3, \"kernel\": 3, \"stride\": 2},"
                                 "{\"id\": \"f\", \"op\": \"flatten\"}]}"),
                  "f.json: node c: kernel 3x3 larger than padded input 2x2");
    /* the builder: the same limits, whatever ints a caller passes */
    pinas_net *n = NULL;
    pinas_net_builder *b = pinas_nb_create("big", 1 << 30, 1 << 30, 1 << 30, 10);
    pinas_nb_linear(b, "fc", pinas_nb_global_avgpool(b, "g", 0), 10, 1);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, b, NULL, &n), "big: input: [1073741824, 1073741824, 1073741824] has more than");
    b = pinas_nb_create("pad", 3, 8, 8, 10);
    pinas_nb_linear(b, "fc", pinas_nb_global_avgpool(b, "g", pinas_nb_conv(b, "c", 0, 4, 3, 1, 1 << 30, 1)), 10, 1);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, b, NULL, &n), "pad: node c: conv2d needs");
    b = pinas_nb_create("patch", 3, 8, 8, 3);
    pinas_cand huge = {.kind = PINAS_CAND_PATCH_RELU, .ph = 1 << 30, .pw = 2};
    pinas_nb_linear(b, "fc", pinas_nb_global_avgpool(b, "g", pinas_nb_act(b, "a", 0, &huge, 1)), 3, 1);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, b, NULL, &n), "patch: node a: candidate patch_relu:1073741824x2 out of range");
    b = pinas_nb_create("wide", 1 << 21, 16, 16, 1 << 20);
    pinas_nb_flatten(b, "f", 0);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, b, NULL, &n), "wide: input: [2097152, 16, 16] has more than");
    CU_ASSERT_PTR_NULL(n);
}

static void test_param_specs(void)
{
    pinas_net *a;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, "tests/golden/tiny_space.json", &a), PINAS_OK);
    pinas_param_spec sp[8];
    int k = pinas_node_param_specs(a, pinas_net_find(a, "a1"), sp, 8);
    CU_ASSERT_EQUAL_FATAL(k, 4); /* w0, w1, b, alpha */
    CU_ASSERT_STRING_EQUAL(sp[0].name, "a1.w0");
    CU_ASSERT_EQUAL(sp[3].kind, PINAS_PARAM_ARCH);
    CU_ASSERT_EQUAL(sp[3].shape[0], 4);
    k = pinas_node_param_specs(a, pinas_net_find(a, "a2"), sp, 8);
    CU_ASSERT_EQUAL_FATAL(k, 3);
    CU_ASSERT_EQUAL(sp[0].shape[0], 4); /* per channel */
    k = pinas_node_param_specs(a, pinas_net_find(a, "b1"), sp, 8);
    CU_ASSERT_EQUAL_FATAL(k, 4);
    CU_ASSERT_STRING_EQUAL(sp[2].name, "b1.running_mean");
    CU_ASSERT_EQUAL(sp[2].kind, PINAS_PARAM_BUFFER);
    k = pinas_node_param_specs(a, pinas_net_find(a, "c1"), sp, 8);
    CU_ASSERT_EQUAL_FATAL(k, 1);
    CU_ASSERT_EQUAL(sp[0].shape[1], 3);
    CU_ASSERT_EQUAL(sp[0].shape[3], 3);
    pinas_net_free(a);
}

/* The builder gives the same net as its JSON form, node for node; its failures are sticky and reported
 * once, by finish. */
static void test_builder(void)
{
    pinas_cand relu = {.kind = PINAS_CAND_RELU}, two[2] = {{.kind = PINAS_CAND_MAXPOOL}, {.kind = PINAS_CAND_AVGPOOL}};
    pinas_cand acts[2] = {{.kind = PINAS_CAND_POLY}, {.kind = PINAS_CAND_PATCH_RELU, .ph = 2, .pw = 2}};
    pinas_net_builder *b = pinas_nb_create("built", 3, 8, 8, 10);
    int x = pinas_nb_conv(b, "conv", 0, 4, 3, 1, 1, 1);
    CU_ASSERT_EQUAL(x, 1);
    x = pinas_nb_batchnorm(b, "bn", x);
    int a = pinas_nb_act(b, "act", x, acts, 2);
    pinas_node n = pinas_nb_node_init("act2", PINAS_OP_ACT, a);
    n.n_cands = 1;
    n.cands[0] = relu;
    n.poly_scale = 0.5;
    int a2 = pinas_nb_node(b, &n);
    int sum = pinas_nb_add(b, "add", a, a2);
    x = pinas_nb_pool(b, "pool", sum, 2, 2, 0, two, 2);
    x = pinas_nb_flatten(b, "flat", x);
    CU_ASSERT_EQUAL(pinas_nb_linear(b, "fc", x, 10, 1), 8);
    pinas_net *built = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_nb_finish(ctx, b, NULL, &built), PINAS_OK);
    const char *js = "{\"format\": \"pinas-net/1\", \"name\": \"built\", \"input\": [3, 8, 8], \"num_classes\": 10, \"nodes\": ["
                     "{\"id\": \"conv\", \"op\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1},"
                     "{\"id\": \"bn\", \"op\": \"batchnorm\"},"
                     "{\"id\": \"act\", \"op\": \"act\", \"candidates\": [\"poly\", \"patch_relu:2x2\"]},"
                     "{\"id\": \"act2\", \"op\": \"act\", \"poly_scale\": 0.5},"
                     "{\"id\": \"add\", \"op\": \"add\", \"inputs\": [\"act\", \"act2\"]},"
                     "{\"id\": \"pool\", \"op\": \"pool\", \"kernel\": 2, \"candidates\": [\"maxpool\", \"avgpool\"]},"
                     "{\"id\": \"flat\", \"op\": \"flatten\"}, {\"id\": \"fc\", \"op\": \"linear\", \"out_features\": 10}]}";
    cJSON *j = cJSON_Parse(js);
    pinas_net *parsed = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_from_json(ctx, j, "inline", &parsed), PINAS_OK);
    cJSON_Delete(j);
    cJSON *ja = pinas_net_to_json(built), *jb = pinas_net_to_json(parsed);
    char *ta = cJSON_PrintUnformatted(ja), *tb = cJSON_PrintUnformatted(jb);
    CU_ASSERT_STRING_EQUAL(ta, tb);
    CU_ASSERT_EQUAL(pinas_net_hash(built), pinas_net_hash(parsed));
    CU_ASSERT_EQUAL(pinas_net_node(built, 6)->h, 4);
    free(ta);
    free(tb);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    pinas_net_free(built);
    pinas_net_free(parsed);

    /* A bad id makes every later add fail; finish reports the first failure and frees the builder. */
    b = pinas_nb_create("bad", 3, 8, 8, 10);
    CU_ASSERT_EQUAL(pinas_nb_conv(b, "input", 0, 4, 3, 1, 1, 1), -1);
    CU_ASSERT_EQUAL(pinas_nb_global_avgpool(b, "g", 0), -1);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, b, "bad net", &built), "bad net: a node id must be non-empty");
    CU_ASSERT_PTR_NULL(built);
    /* Validation at finish: the same rules and messages as a net file. */
    b = pinas_nb_create("shapes", 3, 8, 8, 10);
    x = pinas_nb_conv(b, "c", 0, 4, 3, 1, 1, 1);
    pinas_nb_linear(b, "fc", x, 10, 1);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, b, "shapes", &built), "node fc: linear input c has shape [4, 8, 8]");
    pinas_cand many[PINAS_MAX_CANDS + 1];
    b = pinas_nb_create("many", 3, 8, 8, 3);
    CU_ASSERT_EQUAL(pinas_nb_act(b, "a", 0, many, PINAS_MAX_CANDS + 1), -1);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, b, "many", &built), "node a: too many candidates");
    /* NULL builders (out of memory at create) are accepted everywhere. */
    CU_ASSERT_EQUAL(pinas_nb_conv(NULL, "c", 0, 4, 3, 1, 1, 1), -1);
    TU_ASSERT_ERR(ctx, pinas_nb_finish(ctx, NULL, "x", &built), "out of memory");
    pinas_nb_free(NULL);
    b = pinas_nb_create("unfinished", 3, 8, 8, 3);
    pinas_nb_conv(b, "c", 0, 4, 3, 1, 1, 1);
    pinas_nb_free(b);
}

/* The seeded sampler: deterministic in the seed, every open slot decided, roughly uniform, decided
 * slots kept. */
static void test_random_arch(void)
{
    pinas_net *sp = gen("resnet", 20, "cifar", 32);
    CU_ASSERT_EQUAL(pinas_net_decide(ctx, sp, pinas_net_find(sp, "stem.act"), 1), PINAS_OK);
    pinas_net *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 42, &a), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 42, &b), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, 43, &c), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_n_open(a), 0);
    CU_ASSERT_EQUAL(pinas_net_hash(a), pinas_net_hash(b));
    CU_ASSERT_NOT_EQUAL(pinas_net_hash(a), pinas_net_hash(c));
    CU_ASSERT_EQUAL(pinas_node_chosen(pinas_net_node(a, pinas_net_find(a, "stem.act")))->kind, PINAS_CAND_POLY);
    /* The first open slot takes pinas_rng_below(seed 42, 2). */
    pinas_rng rng = {42};
    int first = -1;
    for (int i = 0; i < pinas_net_n_nodes(sp) && first < 0; i++)
        if (pinas_node_is_open(pinas_net_node(sp, i))) first = i;
    CU_ASSERT_EQUAL(pinas_net_node(a, first)->choice, (int)pinas_rng_below(&rng, 2));
    int relu = 0, total = 0;
    for (uint64_t seed = 0; seed < 50; seed++) {
        pinas_net *r = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, seed, &r), PINAS_OK);
        for (int i = 0; i < pinas_net_n_nodes(sp); i++)
            if (pinas_node_is_open(pinas_net_node(sp, i))) {
                relu += pinas_node_chosen(pinas_net_node(r, i))->kind == PINAS_CAND_RELU;
                total++;
            }
        pinas_net_free(r);
    }
    CU_ASSERT(relu > total * 4 / 10 && relu < total * 6 / 10);
    pinas_net_free(a);
    pinas_net_free(b);
    pinas_net_free(c);
    pinas_net_free(sp);
}

/* `pinas model random --arch random --seed S` writes the architecture pinas_net_random_arch gives for
 * seed S: one sampler for the command line and the latency validation. */
static void test_random_arch_cli(void)
{
    const char *pinas = PINAS_BUILD_DIR "/pinas";
    if (access(pinas, X_OK) != 0) {
        fprintf(stderr, "\n  (%s not built: the command-line half is checked by tests/e2e_cli.sh)\n", pinas);
        return;
    }
    tu_write(tu_path("rspace.json"),
             "{\"format\": \"pinas-net/1\", \"backbone\": \"resnet\", \"depth\": 8, \"width\": 4, \"input\": [3, 8, 8],"
             " \"act\": [\"relu\", \"poly\", \"identity\"], \"pool\": [\"maxpool\", \"avgpool\"], \"stem\": \"cifar-pool\"}");
    pinas_net *sp = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, tu_path("rspace.json"), &sp), PINAS_OK);
    for (int seed = 0; seed < 4; seed++) {
        char cmd[1024], dir[64];
        snprintf(dir, sizeof dir, "rmodel%d", seed);
        snprintf(cmd, sizeof cmd, "%s --quiet model random %s --arch random --seed %d --out %s >/dev/null", pinas, tu_path("rspace.json"), seed,
                 tu_path(dir));
        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
        char netp[1024];
        snprintf(netp, sizeof netp, "%s/net.json", tu_path(dir));
        pinas_net *cli = NULL, *lib = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_net_load(ctx, netp, &cli), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_net_random_arch(ctx, sp, (uint64_t)seed, &lib), PINAS_OK);
        for (int i = 0; i < pinas_net_n_nodes(sp); i++) {
            if (!pinas_node_is_open(pinas_net_node(sp, i))) continue;
            char x[32], y[32];
            pinas_cand_name(pinas_node_chosen(pinas_net_node(lib, i)), x, sizeof x);
            pinas_cand_name(pinas_node_chosen(pinas_net_node(cli, pinas_net_find(cli, pinas_net_node(sp, i)->id))), y, sizeof y);
            CU_ASSERT_STRING_EQUAL(x, y);
        }
        pinas_net_free(cli);
        pinas_net_free(lib);
    }
    pinas_net_free(sp);
}

/* The space of a typed config: inline, or a path relative to the config file. */
static void test_config_space(void)
{
    tu_write(tu_path("cspace.json"), "{\"format\": \"pinas-net/1\", \"backbone\": \"resnet\", \"depth\": 8, \"width\": 4}");
    tu_write(tu_path("run.json"), "{\"space\": \"cspace.json\"}");
    pinas_config *cfg = NULL;
    pinas_net *net = NULL;
    pinas_status s = pinas_config_load(ctx, tu_path("run.json"), NULL, 0, &cfg);
    if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_load_config_space(ctx, cfg, &net), PINAS_OK);
    if (net) CU_ASSERT_STRING_EQUAL(pinas_net_name(net), "resnet8-cifar");
    pinas_net_free(net);
    pinas_config_free(cfg);
    tu_write(tu_path("run2.json"), "{\"space\": {\"format\": \"pinas-net/1\", \"backbone\": \"vgg\", \"width\": 2}}");
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, tu_path("run2.json"), NULL, 0, &cfg), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_net_load_config_space(ctx, cfg, &net), PINAS_OK);
    if (net) CU_ASSERT_STRING_EQUAL(pinas_net_name(net), "vgg16-cifar");
    pinas_net_free(net);
    pinas_config_free(cfg);
    tu_write(tu_path("run3.json"), "{\"space\": \"no-such-space.json\"}");
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, tu_path("run3.json"), NULL, 0, &cfg), PINAS_OK);
    TU_ASSERT_ERR(ctx, pinas_net_load_config_space(ctx, cfg, &net), "space: \"no-such-space.json\" not found");
    pinas_config_free(cfg);
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test t[] = {{"ReLU and MAC counts", test_counts},
                   {"backbone generators", test_generators},
                   {"round trip and golden explicit form", test_round_trip_and_golden},
                   {"validation errors name the node", test_validation_errors},
                   {"compact spaces are range-checked (issue 12)", test_compact_ranges},
                   {"size limits keep counts from overflowing (issue 12)", test_size_limits},
                   {"parameter specs", test_param_specs},
                   {"the net builder", test_builder},
                   {"the seeded architecture sampler", test_random_arch},
                   {"model random --arch random = the library sampler", test_random_arch_cli},
                   {"the space of a typed config", test_config_space}};
    int rc = tu_run("search_spaces_ir", t, (int)(sizeof t / sizeof t[0]));
    pinas_ctx_free(ctx);
    return rc;
}
