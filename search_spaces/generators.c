/* Backbone generators: expand a compact space (ResNet, VGG-16, MobileNetV2) into the explicit node list. */
#define _GNU_SOURCE
#include "net_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The generator's view of the public builder: the candidate lists every slot of the space gets. */
typedef struct {
    pinas_net_builder *nb;
    pinas_cand act[PINAS_MAX_CANDS], pool[PINAS_MAX_CANDS];
    int n_act, n_pool;
    double poly_scale;
    int poly_per_channel;
    int in_h, in_w;
} builder;

static int conv(builder *b, const char *id, int in, int out_c, int k, int stride, int pad, int groups)
{
    return pinas_nb_conv(b->nb, id, in, out_c, k, stride, pad, groups);
}

static int bn(builder *b, const char *id, int in) { return pinas_nb_batchnorm(b->nb, id, in); }

static int act(builder *b, const char *id, int in)
{
    pinas_node n = pinas_nb_node_init(id, PINAS_OP_ACT, in);
    n.n_cands = b->n_act;
    memcpy(n.cands, b->act, sizeof b->act);
    n.poly_scale = b->poly_scale;
    n.poly_per_channel = b->poly_per_channel;
    return pinas_nb_node(b->nb, &n);
}

static int pool(builder *b, const char *id, int in, int k, int stride, int pad)
{
    return pinas_nb_pool(b->nb, id, in, k, stride, pad, b->pool, b->n_pool);
}

static int add2(builder *b, const char *id, int x, int y) { return pinas_nb_add(b->nb, id, x, y); }

static int head(builder *b, int in, int num_classes)
{
    int gi = pinas_nb_global_avgpool(b->nb, "head.gap", in);
    return pinas_nb_linear(b->nb, "head.fc", gi, num_classes, 1);
}

/* conv -> bn -> act, named <p>.conv, <p>.bn, <p>.act (or with a suffix k: conv1, bn1, act1). */
static int conv_bn_act(builder *b, const char *p, const char *k, int in, int out_c, int ks, int stride, int groups, int with_act)
{
    char id[PINAS_MAX_ID];
    snprintf(id, sizeof id, "%s.conv%s", p, k);
    int x = conv(b, id, in, out_c, ks, stride, ks / 2, groups);
    snprintf(id, sizeof id, "%s.bn%s", p, k);
    x = bn(b, id, x);
    if (!with_act) return x;
    snprintf(id, sizeof id, "%s.act%s", p, k);
    return act(b, id, x);
}

/* imagenet: 7x7/2 conv + 3x3/2 pool; 0: CIFAR's 3x3 conv; 2: CIFAR's conv + a 2x2/2 pool slot. */
static int stem(builder *b, int imagenet, int width)
{
    int x = imagenet == 1 ? conv(b, "stem.conv", 0, width, 7, 2, 3, 1) : conv(b, "stem.conv", 0, width, 3, 1, 1, 1);
    x = bn(b, "stem.bn", x);
    x = act(b, "stem.act", x);
    if (imagenet == 1) x = pool(b, "stem.pool", x, 3, 2, 1);
    else if (imagenet == 2) x = pool(b, "stem.pool", x, 2, 2, 0);
    return x;
}

static int basic_block(builder *b, const char *p, int in, int in_c, int out_c, int stride)
{
    int x = conv_bn_act(b, p, "1", in, out_c, 3, stride, 1, 1);
    x = conv_bn_act(b, p, "2", x, out_c, 3, 1, 1, 0);
    int sc = in;
    char id[PINAS_MAX_ID];
    if (stride != 1 || in_c != out_c) {
        snprintf(id, sizeof id, "%s.down.conv", p);
        sc = conv(b, id, in, out_c, 1, stride, 0, 1);
        snprintf(id, sizeof id, "%s.down.bn", p);
        sc = bn(b, id, sc);
    }
    snprintf(id, sizeof id, "%s.add", p);
    x = add2(b, id, x, sc);
    snprintf(id, sizeof id, "%s.act2", p);
    return act(b, id, x);
}

static pinas_status gen_resnet(pinas_ctx *ctx, builder *b, const pinas_space_opts *o, int imagenet)
{
    int blocks4[2][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}};
    int stages, nblocks[4], width = o->width;
    if (o->depth == 18 || o->depth == 34) {
        stages = 4;
        memcpy(nblocks, blocks4[o->depth == 34], sizeof nblocks);
        if (!width) width = 64;
    } else if (o->depth >= 8 && o->depth <= 110 && (o->depth - 2) % 6 == 0) {
        stages = 3;
        for (int s = 0; s < 3; s++) nblocks[s] = (o->depth - 2) / 6;
        if (!width) width = 16;
    } else {
        return pinas_error(ctx, PINAS_EINVAL, "backbone resnet: depth %d not supported (18 or 34; or 6n+2 from 8 to 110: 8, 14, 20, 32, 44, 56, 110)", o->depth);
    }
    int x = stem(b, imagenet, width), c = width;
    for (int s = 0; s < stages; s++) {
        int oc = width << s;
        for (int k = 0; k < nblocks[s]; k++) {
            char p[32];
            snprintf(p, sizeof p, "l%d.%d", s + 1, k);
            x = basic_block(b, p, x, c, oc, (s > 0 && k == 0) ? 2 : 1);
            c = oc;
        }
    }
    head(b, x, o->num_classes);
    return PINAS_OK;
}

static pinas_status gen_vgg(pinas_ctx *ctx, builder *b, const pinas_space_opts *o)
{
    if (o->depth && o->depth != 16) return pinas_error(ctx, PINAS_EINVAL, "backbone vgg: depth %d not supported (16)", o->depth);
    static const int cfg[] = {1, 1, 0, 2, 2, 0, 4, 4, 4, 0, 8, 8, 8, 0, 8, 8, 8, 0};
    int width = o->width ? o->width : 64, x = 0, stage = 1, k = 0, hh = b->in_h, ww = b->in_w;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        char p[32];
        if (cfg[i] == 0) {
            snprintf(p, sizeof p, "s%d.pool", stage);
            if (hh >= 2 && ww >= 2) { /* small inputs skip the late pools */
                x = pool(b, p, x, 2, 2, 0);
                hh /= 2;
                ww /= 2;
            }
            stage++;
            k = 0;
            continue;
        }
        snprintf(p, sizeof p, "s%d.%d", stage, k++);
        x = conv_bn_act(b, p, "", x, width * cfg[i], 3, 1, 1, 1);
    }
    head(b, x, o->num_classes);
    return PINAS_OK;
}

static pinas_status gen_mobilenetv2(pinas_ctx *ctx, builder *b, const pinas_space_opts *o, int imagenet)
{
    (void)ctx;
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int width = o->width ? o->width : 32;
    double m = width / 32.0;
    int x = conv_bn_act(b, "stem", "", 0, width, 3, imagenet ? 2 : 1, 1, 1), c = width, blk = 0;
    for (int s = 0; s < 7; s++) {
        int oc = (int)(cfg[s][1] * m + 0.5);
        if (oc < 1) oc = 1;
        for (int k = 0; k < cfg[s][2]; k++) {
            int stride = k == 0 ? cfg[s][3] : 1;
            if (!imagenet && s == 1 && k == 0) stride = 1; /* CIFAR variant keeps 32x32 longer */
            char p[32];
            snprintf(p, sizeof p, "b%d", blk++);
            int hid = c * cfg[s][0], y = x;
            if (cfg[s][0] != 1) y = conv_bn_act(b, p, "1", y, hid, 1, 1, 1, 1);
            y = conv_bn_act(b, p, "2", y, hid, 3, stride, hid, 1);
            y = conv_bn_act(b, p, "3", y, oc, 1, 1, 1, 0);
            if (stride == 1 && c == oc) {
                char id[PINAS_MAX_ID];
                snprintf(id, sizeof id, "%s.add", p);
                y = add2(b, id, y, x);
            }
            x = y;
            c = oc;
        }
    }
    int last = (int)(1280 * (m > 1 ? m : 1) + 0.5);
    x = conv_bn_act(b, "last", "", x, last, 1, 1, 1, 1);
    head(b, x, o->num_classes);
    return PINAS_OK;
}

static pinas_status parse_cands(pinas_ctx *ctx, const char *const *names, int n, const char *what, pinas_cand *out, int *nout)
{
    if (n > PINAS_MAX_CANDS) return pinas_error(ctx, PINAS_EINVAL, "%s: at most %d candidates", what, PINAS_MAX_CANDS);
    for (int i = 0; i < n; i++) {
        if (pinas_cand_parse(names[i], &out[i]))
            return pinas_error(ctx, PINAS_EINVAL, "%s[%d]: unknown candidate \"%s\" (relu, poly, identity, patch_relu:HxW, maxpool, avgpool)", what,
                               i, names[i]);
        int is_pool = out[i].kind == PINAS_CAND_MAXPOOL || out[i].kind == PINAS_CAND_AVGPOOL;
        if (is_pool != (strcmp(what, "pool") == 0))
            return pinas_error(ctx, PINAS_EINVAL, "%s[%d]: \"%s\" does not belong in %s slots", what, i, names[i], what);
    }
    *nout = n;
    return PINAS_OK;
}

/* The stem from its name: 0 CIFAR, 1 ImageNet, 2 CIFAR with a pool slot; -1 when unknown. */
static int stem_kind(const char *stem, int h)
{
    if (!stem) return h > 64;
    if (strcmp(stem, "cifar") == 0) return 0;
    if (strcmp(stem, "imagenet") == 0) return 1;
    if (strcmp(stem, "cifar-pool") == 0) return 2;
    return -1;
}

/* Fields out of range, or given where the backbone has no use for them, are errors: a generator
 * never replaces or drops a value it was given (0 asks for the default). */
static pinas_status check_opts(pinas_ctx *ctx, const pinas_space_opts *o, int stem)
{
    if (!o->backbone) return pinas_error(ctx, PINAS_EINVAL, "backbone: missing");
    const int dims[3] = {o->in_c, o->in_h, o->in_w};
    for (int d = 0; d < 3; d++)
        if (dims[d] < 0 || dims[d] > PINAS_NET_MAX_DIM)
            return pinas_error(ctx, PINAS_EINVAL, "input[%d]: expected an integer in [1, %d], got %d", d, PINAS_NET_MAX_DIM, dims[d]);
    if (o->width < 0 || o->width > PINAS_SPACE_MAX_WIDTH)
        return pinas_error(ctx, PINAS_EINVAL, "width: expected an integer in [1, %d], got %d", PINAS_SPACE_MAX_WIDTH, o->width);
    if (o->num_classes < 0 || o->num_classes > PINAS_NET_MAX_CLASSES)
        return pinas_error(ctx, PINAS_EINVAL, "num_classes: expected an integer in [1, %d], got %d", PINAS_NET_MAX_CLASSES, o->num_classes);
    if (o->depth < 0) return pinas_error(ctx, PINAS_EINVAL, "depth: expected a positive integer, got %d", o->depth);
    if (!isfinite(o->poly_scale)) return pinas_error(ctx, PINAS_EINVAL, "poly_scale: expected a finite number");
    if (strcmp(o->backbone, "mobilenetv2") == 0 && o->depth)
        return pinas_error(ctx, PINAS_EINVAL, "backbone mobilenetv2: depth %d given, but MobileNetV2 has a fixed depth (remove \"depth\"; "
                           "\"width\" scales it)", o->depth);
    if (strcmp(o->backbone, "vgg") == 0 && o->stem && stem != 0)
        return pinas_error(ctx, PINAS_EINVAL, "backbone vgg: stem \"%s\" not supported (VGG-16 has no stem; remove \"stem\")", o->stem);
    if (strcmp(o->backbone, "mobilenetv2") == 0 && stem == 2)
        return pinas_error(ctx, PINAS_EINVAL, "backbone mobilenetv2: stem \"cifar-pool\" not supported (\"cifar\" or \"imagenet\")");
    return PINAS_OK;
}

pinas_status pinas_net_generate(pinas_ctx *ctx, const pinas_space_opts *o, pinas_net **out)
{
    *out = NULL;
    builder b = {0};
    static const char *const def_act[] = {"relu"}, *const def_pool[] = {"maxpool"};
    pinas_status s = parse_cands(ctx, o->n_act ? o->act : def_act, o->n_act ? o->n_act : 1, "act", b.act, &b.n_act);
    if (!s) s = parse_cands(ctx, o->n_pool ? o->pool : def_pool, o->n_pool ? o->n_pool : 1, "pool", b.pool, &b.n_pool);
    if (s) return s;
    b.poly_scale = o->poly_scale != 0 ? o->poly_scale : 1.0;
    b.poly_per_channel = o->poly_per_channel;
    int c = o->in_c ? o->in_c : 3, h = o->in_h ? o->in_h : 32, w = o->in_w ? o->in_w : 32;
    int imagenet = stem_kind(o->stem, h);
    if (imagenet < 0) return pinas_error(ctx, PINAS_EINVAL, "stem: \"%s\" is not one of \"cifar\", \"cifar-pool\", \"imagenet\"", o->stem);
    if ((s = check_opts(ctx, o, imagenet))) return s;
    b.in_h = h;
    b.in_w = w;
    int nc = o->num_classes ? o->num_classes : 10;
    pinas_space_opts oo = *o;
    oo.num_classes = nc;
    if (!oo.depth && strcmp(o->backbone, "resnet") == 0) oo.depth = 18;
    /* `where` keeps the requested depth in messages; the net's own name is the backbone's. */
    char where[PINAS_MAX_ID], name[PINAS_MAX_ID];
    snprintf(where, sizeof where, "%.40s%d-%s", o->backbone, oo.depth, imagenet == 1 ? "imagenet" : imagenet == 2 ? "cifar-pool" : "cifar");
    snprintf(name, sizeof name, "%s", where);
    int vgg = strcmp(o->backbone, "vgg") == 0, mnv2 = strcmp(o->backbone, "mobilenetv2") == 0;
    if (vgg) snprintf(name, sizeof name, "vgg16-%s", imagenet == 1 ? "imagenet" : "cifar");
    if (mnv2) snprintf(name, sizeof name, "mobilenetv2-%s", imagenet == 1 ? "imagenet" : "cifar");
    b.nb = pinas_nb_create(name, c, h, w, nc);
    if (!b.nb) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (strcmp(o->backbone, "resnet") == 0) s = gen_resnet(ctx, &b, &oo, imagenet);
    else if (vgg) {
        if (!oo.depth) oo.depth = 16;
        s = gen_vgg(ctx, &b, &oo);
    } else if (mnv2) {
        s = gen_mobilenetv2(ctx, &b, &oo, imagenet == 1);
    } else {
        static const char *const known[] = {"resnet", "vgg", "mobilenetv2"};
        const char *dym = pinas_did_you_mean(o->backbone, known, 3);
        s = pinas_error(ctx, PINAS_EINVAL, "backbone: \"%s\" is not one of resnet, vgg, mobilenetv2%s%s%s", o->backbone,
                        dym ? " (did you mean \"" : "", dym ? dym : "", dym ? "\"?)" : "");
    }
    if (s) {
        pinas_nb_free(b.nb);
        return s;
    }
    return pinas_nb_finish(ctx, b.nb, where, out);
}
