/* Datasets: CIFAR-10/100, MNIST/Fashion-MNIST (IDX), image folders, a learnable synthetic set; train/val split, seeded augmenting loaders. */
#define _GNU_SOURCE
#include "imagefolder.h"
#include "train_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct pinas_dataset {
    char name[16];
    int c, h, w, num_classes;
    uint8_t *x[2];      /* [0] training set, [1] test set: n * C*H*W bytes, CHW planar as in CIFAR */
    int32_t *y[2];
    int n[2];
    int *perm;          /* permutation of the training set: TRAIN = perm[0..n_tr), VAL = the rest */
    int n_tr;
    float mean[3], std[3];
    int flip, crop_pad;     /* augmentation of in-memory sets */
    tr_imagefolder *folder; /* imagefolder: decoded per item; x[] unused */
};

static int split_size(const pinas_dataset *d, pinas_split s)
{
    switch (s) {
    case PINAS_SPLIT_TRAIN_ALL: return d->n[0];
    case PINAS_SPLIT_TRAIN: return d->n_tr;
    case PINAS_SPLIT_VAL: return d->n[0] - d->n_tr;
    case PINAS_SPLIT_TEST: return d->n[1];
    }
    return 0;
}

/* Index into x[set] of item i of split s. */
static int split_index(const pinas_dataset *d, pinas_split s, int i, int *set)
{
    *set = s == PINAS_SPLIT_TEST;
    switch (s) {
    case PINAS_SPLIT_TRAIN: return d->perm[i];
    case PINAS_SPLIT_VAL: return d->perm[d->n_tr + i];
    default: return i;
    }
}

const char *tr_split_name(pinas_split s)
{
    static const char *names[] = {"train_all", "train", "val", "test"};
    return (unsigned)s < 4 ? names[s] : "?";
}

void pinas_data_opts_from_cfg(const pinas_cfg_data *c, uint64_t seed, pinas_data_opts *o)
{
    memset(o, 0, sizeof *o);
    o->dataset = c->dataset_name;
    o->path = c->path;
    o->synthetic_train = (int)c->synthetic_train;
    o->synthetic_test = (int)c->synthetic_test;
    o->synthetic_classes = c->synthetic_classes;
    o->synthetic_size = c->synthetic_size;
    o->val_fraction = c->val_fraction;
    o->seed = seed;
    o->train_images = (int)c->train_images;
    o->test_images = (int)c->test_images;
    o->pad = c->pad;
    o->resize = c->resize;
    o->eval_resize = c->eval_resize;
    o->scale_min = c->scale_min;
    o->channels = c->channels;
    o->flip = c->flip == PINAS_FLIP_AUTO ? 0 : c->flip == PINAS_FLIP_ON ? 1 : -1;
    /* The config says -1 = auto, 0 = none; the loader 0 = auto, -1 = none. */
    o->crop_pad = c->crop_pad < 0 ? 0 : c->crop_pad == 0 ? -1 : c->crop_pad;
    /* The config parser guarantees n_mean == n_std <= PINAS_CFG_MAX_CHANNELS. */
    o->n_norm = c->n_mean;
    for (int k = 0; k < c->n_mean; k++) {
        o->mean[k] = (float)c->mean[k];
        o->std[k] = (float)c->std[k];
    }
}

const char *pinas_data_default_path(const char *dataset)
{
    if (!dataset) return NULL;
    if (!strcmp(dataset, "fashion-mnist")) return "/usr/share/datasets/fashion-mnist";
    if (!strcmp(dataset, "mnist")) return "data/mnist";
    if (!strcmp(dataset, "cifar10")) return "data/cifar-10-batches-bin";
    if (!strcmp(dataset, "cifar100")) return "data/cifar-100-binary";
    if (!strcmp(dataset, "imagefolder")) return "data/imagenet";
    return NULL;
}

void pinas_dataset_free(pinas_dataset *d)
{
    if (!d) return;
    for (int k = 0; k < 2; k++) {
        free(d->x[k]);
        free(d->y[k]);
    }
    free(d->perm);
    tr_imagefolder_free(d->folder);
    free(d);
}

static pinas_status alloc_set(pinas_ctx *ctx, pinas_dataset *d, int set, int n)
{
    size_t img = (size_t)d->c * d->h * d->w;
    d->x[set] = malloc((size_t)n * img);
    d->y[set] = malloc((size_t)n * sizeof(int32_t));
    if (!d->x[set] || !d->y[set]) return pinas_error(ctx, PINAS_ENOMEM, "out of memory for %d images of %zu bytes", n, img);
    d->n[set] = n;
    return PINAS_OK;
}

/* ------------------------------------------------------------------ synthetic */

/* Each class is an oriented grating of its own frequency and colour plus a coloured blob at its
 * own place; each image jitters phase, amplitude, position and colour and adds pixel noise. A
 * convolutional net must combine orientation, frequency and colour to separate classes, so a
 * small net learns it well above chance but not instantly, and capacity differences show. */
typedef struct {
    double theta, freq, col[3], bx, by;
} syn_class;

static void syn_image(const pinas_dataset *d, const syn_class *k, pinas_rng *r, uint8_t *out)
{
    int S = d->h, W = d->w;
    double phase = pinas_rng_unif(r) * 6.283185307179586, amp = 0.6 + 0.4 * pinas_rng_unif(r);
    double dx = (pinas_rng_unif(r) - 0.5) * 0.25 * W, dy = (pinas_rng_unif(r) - 0.5) * 0.25 * S;
    double rad = 0.12 * S * (0.8 + 0.4 * pinas_rng_unif(r));
    double col[3];
    for (int c = 0; c < 3; c++) col[c] = k->col[c] + 0.15 * (pinas_rng_unif(r) - 0.5);
    double ct = cos(k->theta), st = sin(k->theta);
    for (int c = 0; c < d->c; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < W; x++) {
                double u = ((x - dx) * ct + (y - dy) * st) / W;
                double g = amp * sin(6.283185307179586 * k->freq * u + phase);
                double bx = x - k->bx * W - dx, by = y - k->by * S - dy;
                double blob = exp(-(bx * bx + by * by) / (2 * rad * rad));
                double v = 0.5 + 0.22 * g * (2 * col[c] - 1) + 0.3 * blob * (2 * col[(c + 1) % 3] - 1) + 0.18 * tr_rng_normal(r);
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                out[((size_t)c * S + y) * W + x] = (uint8_t)(v * 255.0 + 0.5);
            }
}

static pinas_status load_synthetic(pinas_ctx *ctx, const pinas_data_opts *o, pinas_dataset *d)
{
    if (o->synthetic_train < 2 || o->synthetic_test < 1 || o->synthetic_classes < 2 || o->synthetic_size < 4)
        return pinas_error(ctx, PINAS_EINVAL,
                           "synthetic dataset: need train >= 2, test >= 1, classes >= 2 and size >= 4 (got %d, %d, %d, %d)",
                           o->synthetic_train, o->synthetic_test, o->synthetic_classes, o->synthetic_size);
    snprintf(d->name, sizeof d->name, "synthetic");
    d->c = 3;
    d->h = d->w = o->synthetic_size;
    d->num_classes = o->synthetic_classes;
    syn_class *cls = calloc((size_t)d->num_classes, sizeof *cls);
    if (!cls) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_rng r = {tr_seed_mix(o->seed, 1, 0, 0)};
    for (int k = 0; k < d->num_classes; k++) {
        /* Spread orientations evenly (jittered) so that neighbouring classes differ in more than colour. */
        cls[k].theta = 3.141592653589793 * ((k + 0.3 * pinas_rng_unif(&r)) / d->num_classes);
        cls[k].freq = 1.0 + (double)pinas_rng_below(&r, 3) + 0.5 * pinas_rng_unif(&r);
        for (int c = 0; c < 3; c++) cls[k].col[c] = pinas_rng_unif(&r);
        cls[k].bx = 0.25 + 0.5 * pinas_rng_unif(&r);
        cls[k].by = 0.25 + 0.5 * pinas_rng_unif(&r);
    }
    pinas_status s = PINAS_OK;
    int counts[2] = {o->synthetic_train, o->synthetic_test};
    size_t img = (size_t)d->c * d->h * d->w;
    for (int set = 0; set < 2 && !s; set++) {
        if ((s = alloc_set(ctx, d, set, counts[set]))) break;
        pinas_rng ri = {tr_seed_mix(o->seed, 2, (uint64_t)set, 0)};
        for (int i = 0; i < counts[set]; i++) {
            int label = (int)pinas_rng_below(&ri, (uint64_t)d->num_classes);
            d->y[set][i] = label;
            syn_image(d, &cls[label], &ri, d->x[set] + (size_t)i * img);
        }
    }
    free(cls);
    return s;
}

/* ------------------------------------------------------------------ CIFAR */

/* Appends the records of one CIFAR binary file to set `set`. label_bytes: 1 (CIFAR-10) or 2
 * (CIFAR-100: coarse, fine; the fine label is used). */
static pinas_status read_cifar_file(pinas_ctx *ctx, pinas_dataset *d, int set, const char *path, int label_bytes)
{
    const size_t img = 3072, rec = img + (size_t)label_bytes;
    struct stat st;
    if (stat(path, &st) != 0)
        return pinas_error(ctx, PINAS_EIO, "%s: cannot open: %s (data.path must be the directory of the CIFAR-%d binary version)",
                           path, strerror(errno), d->num_classes);
    if (!S_ISREG(st.st_mode)) return pinas_error(ctx, PINAS_EIO, "%s: not a regular file", path);
    size_t size = (size_t)st.st_size;
    if (size == 0 || size % rec)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: %zu bytes is not a whole number of %zu-byte CIFAR-%d records (truncated or wrong file?)",
                           path, size, rec, d->num_classes);
    int n = (int)(size / rec), old = d->n[set];
    uint8_t *nx = realloc(d->x[set], (size_t)(old + n) * img);
    if (nx) d->x[set] = nx;
    int32_t *ny = realloc(d->y[set], (size_t)(old + n) * sizeof(int32_t));
    if (ny) d->y[set] = ny;
    if (!nx || !ny) return pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory for %d records", path, n);
    FILE *f = fopen(path, "rb");
    if (!f) return pinas_error(ctx, PINAS_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t lab[2];
    pinas_status s = PINAS_OK;
    for (int i = 0; i < n && !s; i++) {
        if (fread(lab, 1, (size_t)label_bytes, f) != (size_t)label_bytes ||
            fread(d->x[set] + (size_t)(old + i) * img, 1, img, f) != img) {
            s = pinas_error(ctx, PINAS_EIO, "%s: read failed at record %d", path, i);
            break;
        }
        int label = lab[label_bytes - 1];
        if (label >= d->num_classes)
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: record %d: label %d out of range for CIFAR-%d", path, i, label, d->num_classes);
        d->y[set][old + i] = label;
    }
    fclose(f);
    if (!s) d->n[set] = old + n;
    return s;
}

static pinas_status load_cifar(pinas_ctx *ctx, const pinas_data_opts *o, pinas_dataset *d, int classes)
{
    if (!o->path || !*o->path) return pinas_error(ctx, PINAS_EINVAL, "data.path: the directory of the CIFAR binary files is not set");
    snprintf(d->name, sizeof d->name, "cifar%d", classes);
    d->c = 3;
    d->h = d->w = 32;
    d->num_classes = classes;
    static const char *const train10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
    static const char *const train100[] = {"train.bin"};
    const char *const *train = classes == 10 ? train10 : train100;
    int n_train = classes == 10 ? 5 : 1, lb = classes == 10 ? 1 : 2;
    const char *test = classes == 10 ? "test_batch.bin" : "test.bin";
    pinas_status s = PINAS_OK;
    for (int k = 0; k <= n_train && !s; k++) {
        char *p = pinas_path_join(o->path, k < n_train ? train[k] : test);
        if (!p) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        s = read_cifar_file(ctx, d, k < n_train ? 0 : 1, p, lb);
        free(p);
    }
    return s;
}

/* ------------------------------------------------------------------ MNIST / Fashion-MNIST */

static pinas_status load_idx(pinas_ctx *ctx, const pinas_data_opts *o, pinas_dataset *d)
{
    snprintf(d->name, sizeof d->name, "%s", o->dataset);
    d->c = 1;
    d->num_classes = 10;
    static const char *const files[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                                            {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    int limits[2] = {o->train_images, o->test_images};
    pinas_status s = PINAS_OK;
    for (int set = 0; set < 2 && !s; set++) {
        tr_idx_set t;
        if ((s = tr_idx_load(ctx, o->path, files[set][0], files[set][1], limits[set], d->num_classes, &t))) break;
        if (set == 1 && (t.h != d->h || t.w != d->w)) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s/%s: test images are %dx%d, training images %dx%d", o->path, files[1][0], t.h, t.w, d->h, d->w);
            tr_idx_set_free(&t);
            break;
        }
        d->h = t.h;
        d->w = t.w;
        d->x[set] = t.x;
        d->y[set] = t.y;
        d->n[set] = t.n;
    }
    return s;
}

/* ------------------------------------------------------------------ image folders */

static pinas_status load_imagefolder(pinas_ctx *ctx, const pinas_data_opts *o, pinas_dataset *d)
{
    tr_imagefolder_opts fo = {.root = o->path, .size = o->resize > 0 ? o->resize : 224, .resize = o->eval_resize,
                              .scale_min = o->scale_min, .flip = o->flip >= 0};
    pinas_status s = tr_imagefolder_open(ctx, &fo, &d->folder);
    if (s) return s;
    snprintf(d->name, sizeof d->name, "imagefolder");
    d->c = 3;
    d->h = d->w = fo.size;
    d->num_classes = tr_imagefolder_num_classes(d->folder);
    d->n[0] = tr_imagefolder_count(d->folder, 0);
    d->n[1] = tr_imagefolder_count(d->folder, 1);
    if (o->train_images > 0 && o->train_images < d->n[0]) d->n[0] = o->train_images;
    if (o->test_images > 0 && o->test_images < d->n[1]) d->n[1] = o->test_images;
    if (d->n[1] < 1) return pinas_error(ctx, PINAS_EINVAL, "%s/val: no image (the val folder is the test split)", o->path);
    return PINAS_OK;
}

/* ------------------------------------------------------------------ load-time transforms */

/* Bilinear sample of an 8-bit plane at (fy, fx) with edge clamping. */
static double bilinear_u8(const uint8_t *p, int h, int w, double fy, double fx)
{
    if (fy < 0) fy = 0;
    if (fx < 0) fx = 0;
    int y0 = (int)fy, x0 = (int)fx;
    if (y0 > h - 1) y0 = h - 1;
    if (x0 > w - 1) x0 = w - 1;
    int y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
    double ay = fy - y0, ax = fx - x0;
    if (ay > 1) ay = 1;
    if (ax > 1) ax = 1;
    double top = p[(size_t)y0 * w + x0] * (1 - ax) + p[(size_t)y0 * w + x1] * ax;
    double bot = p[(size_t)y1 * w + x0] * (1 - ax) + p[(size_t)y1 * w + x1] * ax;
    return top * (1 - ay) + bot * ay;
}

/* Pads (zeros), resizes (bilinear, half-pixel centres) and converts channels of an in-memory set,
 * image by image, in one pass per set. */
static pinas_status transform_sets(pinas_ctx *ctx, const pinas_data_opts *o, pinas_dataset *d)
{
    if (o->pad < 0 || o->pad > 256) return pinas_error(ctx, PINAS_EINVAL, "data.pad: expected 0..256 pixels, got %d", o->pad);
    if (o->resize < 0 || o->resize > 4096) return pinas_error(ctx, PINAS_EINVAL, "data.resize: expected 0..4096 pixels, got %d", o->resize);
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return pinas_error(ctx, PINAS_EINVAL, "data.channels: expected 0 (the dataset's), 1 or 3, got %d", o->channels);
    int c0 = d->c, h0 = d->h, w0 = d->w, hp = h0 + 2 * o->pad, wp = w0 + 2 * o->pad;
    int c1 = o->channels ? o->channels : c0, h1 = o->resize ? o->resize : hp, w1 = o->resize ? o->resize : wp;
    if (c1 == c0 && h1 == h0 && w1 == w0) return PINAS_OK;
    size_t in_img = (size_t)c0 * h0 * w0, out_img = (size_t)c1 * h1 * w1, plane = (size_t)h1 * w1;
    double *acc = malloc(plane * sizeof(double));
    if (!acc) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s = PINAS_OK;
    for (int set = 0; set < 2 && !s; set++) {
        uint8_t *nx = malloc((size_t)d->n[set] * out_img + 1);
        if (!nx) {
            s = pinas_error(ctx, PINAS_ENOMEM, "out of memory for %d transformed images", d->n[set]);
            break;
        }
        for (int i = 0; i < d->n[set]; i++) {
            const uint8_t *src = d->x[set] + (size_t)i * in_img;
            uint8_t *dst = nx + (size_t)i * out_img;
            /* Each output channel: one input channel, or the mean of all when going to grey. */
            for (int c = 0; c < c1; c++) {
                int from = c0 == 1 ? 0 : c1 == 1 ? -1 : c;
                for (size_t k = 0; k < plane; k++) acc[k] = 0;
                for (int ci = 0; ci < c0; ci++) {
                    if (from >= 0 && ci != from) continue;
                    const uint8_t *p = src + (size_t)ci * h0 * w0;
                    for (int y = 0; y < h1; y++)
                        for (int x = 0; x < w1; x++) {
                            /* Position in the padded image, then in the source. */
                            double fy = (y + 0.5) * hp / h1 - 0.5 - o->pad, fx = (x + 0.5) * wp / w1 - 0.5 - o->pad;
                            double v = (fy < -0.5 || fy > h0 - 0.5 || fx < -0.5 || fx > w0 - 0.5) ? 0.0 : bilinear_u8(p, h0, w0, fy, fx);
                            acc[(size_t)y * w1 + x] += v;
                        }
                }
                double div = from >= 0 ? 1.0 : (double)c0;
                for (size_t k = 0; k < plane; k++) {
                    double v = acc[k] / div + 0.5;
                    dst[(size_t)c * plane + k] = (uint8_t)(v > 255 ? 255 : v);
                }
            }
        }
        free(d->x[set]);
        d->x[set] = nx;
    }
    free(acc);
    if (!s) {
        d->c = c1;
        d->h = h1;
        d->w = w1;
    }
    return s;
}

/* Keeps the first `limit` images of a set (CIFAR and the synthetic set; IDX reads only those). */
static void limit_set(pinas_dataset *d, int set, int limit)
{
    if (limit > 0 && limit < d->n[set]) d->n[set] = limit;
}

/* ------------------------------------------------------------------ common */

static void compute_stats(pinas_dataset *d)
{
    size_t plane = (size_t)d->h * d->w, img = plane * d->c;
    for (int c = 0; c < d->c && c < 3; c++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < d->n[0]; i++) {
            const uint8_t *p = d->x[0] + (size_t)i * img + (size_t)c * plane;
            for (size_t k = 0; k < plane; k++) {
                double v = p[k] / 255.0;
                s += v;
                s2 += v * v;
            }
        }
        double n = (double)d->n[0] * plane, m = s / n, var = s2 / n - m * m;
        d->mean[c] = (float)m;
        d->std[c] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
    }
}

pinas_status pinas_dataset_load(pinas_ctx *ctx, const pinas_data_opts *opts, pinas_dataset **out)
{
    *out = NULL;
    if (!opts->dataset) return pinas_error(ctx, PINAS_EINVAL, "data.dataset: not set");
    if (!(opts->val_fraction > 0 && opts->val_fraction < 1))
        return pinas_error(ctx, PINAS_EINVAL, "data.val_fraction: expected a number in (0, 1), got %g", opts->val_fraction);
    if (opts->n_norm < 0) return pinas_error(ctx, PINAS_EINVAL, "data.mean, data.std: expected two lists of the same length, 1 or 3 values");
    for (int c = 0; c < opts->n_norm; c++)
        if (!(opts->std[c] > 0)) return pinas_error(ctx, PINAS_EINVAL, "data.std[%d]: expected a positive number, got %g", c, opts->std[c]);
    pinas_data_opts oo = *opts;
    const pinas_data_opts *o = &oo;
    if (!oo.path || !*oo.path) oo.path = pinas_data_default_path(oo.dataset);
    pinas_dataset *d = calloc(1, sizeof *d);
    if (!d) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    pinas_status s;
    int digits = 0;
    if (strcmp(o->dataset, "synthetic") == 0) s = load_synthetic(ctx, o, d);
    else if (strcmp(o->dataset, "cifar10") == 0) s = load_cifar(ctx, o, d, 10);
    else if (strcmp(o->dataset, "cifar100") == 0) s = load_cifar(ctx, o, d, 100);
    else if (strcmp(o->dataset, "mnist") == 0 || strcmp(o->dataset, "fashion-mnist") == 0) {
        s = load_idx(ctx, o, d);
        digits = o->dataset[0] == 'm';
    } else if (strcmp(o->dataset, "imagefolder") == 0) s = load_imagefolder(ctx, o, d);
    else s = pinas_error(ctx, PINAS_EINVAL, "data.dataset: \"%s\" is not one of synthetic, cifar10, cifar100, mnist, fashion-mnist, imagefolder", o->dataset);
    if (!s && !d->folder) {
        limit_set(d, 0, o->train_images);
        limit_set(d, 1, o->test_images);
        s = transform_sets(ctx, o, d);
    } else if (!s && (o->pad || o->channels)) {
        s = pinas_error(ctx, PINAS_EINVAL, "data.pad / data.channels: not for imagefolder (its images are cropped to data.resize, in RGB)");
    }
    /* Digits carry their orientation: a flipped 2 is no 2. */
    d->flip = o->flip ? o->flip > 0 : !digits;
    d->crop_pad = o->crop_pad > 0 ? o->crop_pad : o->crop_pad < 0 ? 0 : (d->h / 8 > 0 ? d->h / 8 : 1);
    if (!s && d->n[0] < 2) s = pinas_error(ctx, PINAS_EINVAL, "%s: the training set needs at least 2 images for a train/val split", d->name);
    if (!s && o->n_norm > 0 && o->n_norm != 1 && o->n_norm != d->c)
        s = pinas_error(ctx, PINAS_EINVAL, "data.mean: %d values for %d-channel images", o->n_norm, d->c);
    if (!s) {
        d->perm = malloc((size_t)d->n[0] * sizeof(int));
        if (!d->perm) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (s) {
        pinas_dataset_free(d);
        return s;
    }
    /* The TRAIN/VAL split: a seeded permutation, each side at least one image. */
    pinas_rng r = {tr_seed_mix(o->seed, 3, 0, 0)};
    for (int i = 0; i < d->n[0]; i++) d->perm[i] = i;
    for (int i = d->n[0] - 1; i > 0; i--) {
        int j = (int)pinas_rng_below(&r, (uint64_t)i + 1), t = d->perm[i];
        d->perm[i] = d->perm[j];
        d->perm[j] = t;
    }
    int n_val = (int)(d->n[0] * o->val_fraction + 0.5);
    if (n_val < 1) n_val = 1;
    if (n_val > d->n[0] - 1) n_val = d->n[0] - 1;
    d->n_tr = d->n[0] - n_val;
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    if (o->n_norm > 0) {
        for (int c = 0; c < d->c && c < 3; c++) {
            d->mean[c] = o->mean[o->n_norm == 1 ? 0 : c];
            d->std[c] = o->std[o->n_norm == 1 ? 0 : c];
        }
    } else if (d->folder) {
        memcpy(d->mean, imagenet_mean, sizeof d->mean);
        memcpy(d->std, imagenet_std, sizeof d->std);
    } else {
        compute_stats(d);
    }
    *out = d;
    return PINAS_OK;
}

void pinas_dataset_get_info(const pinas_dataset *d, pinas_dataset_info *out)
{
    memset(out, 0, sizeof *out);
    out->name = d->name;
    out->c = d->c;
    out->h = d->h;
    out->w = d->w;
    out->num_classes = d->num_classes;
    for (int s = 0; s < 4; s++) out->n[s] = split_size(d, (pinas_split)s);
    memcpy(out->mean, d->mean, sizeof d->mean);
    memcpy(out->std, d->std, sizeof d->std);
}

/* Rounded to float precision in decimal, so that meta.json reads cleanly and round-trips to the same float. */
static double float_for_json(float v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    return strtod(buf, NULL);
}

pinas_status pinas_dataset_fill_meta(pinas_ctx *ctx, const pinas_dataset *d, const pinas_net *arch, pinas_model_meta *m)
{
    if (d->c > PINAS_META_MAX_CHANNELS || d->c > 3)
        return pinas_error(ctx, PINAS_EINVAL, "dataset %s: %d channels; meta.json holds at most 3", d->name, d->c);
    pinas_status s = pinas_model_meta_set_str(ctx, &m->name, pinas_net_name(arch));
    if (s) return s;
    if ((s = pinas_model_meta_set_input(ctx, m, d->c, d->h, d->w))) return s;
    m->num_classes = d->num_classes;
    for (int c = 0; c < d->c; c++) {
        m->mean[c] = float_for_json(d->mean[c]);
        m->std[c] = float_for_json(d->std[c]);
    }
    return PINAS_OK;
}


/* Normalised float image (CHW) of item `idx` of `set`, optionally cropped (shift oy, ox from the
 * padded origin) and flipped. */
static void make_image(const pinas_dataset *d, int set, int idx, float *out, int pad, int oy, int ox, int flip)
{
    size_t plane = (size_t)d->h * d->w;
    const uint8_t *src = d->x[set] + (size_t)idx * plane * d->c;
    for (int c = 0; c < d->c; c++) {
        float m = d->mean[c], inv = 1.0f / d->std[c];
        const uint8_t *p = src + (size_t)c * plane;
        float *q = out + (size_t)c * plane;
        if (!pad && !flip) {
            for (size_t k = 0; k < plane; k++) q[k] = (p[k] * (1.0f / 255.0f) - m) * inv;
            continue;
        }
        for (int y = 0; y < d->h; y++) {
            int sy = y + oy - pad;
            for (int x = 0; x < d->w; x++) {
                int sx = (flip ? d->w - 1 - x : x) + ox - pad;
                q[(size_t)y * d->w + x] =
                    (sy < 0 || sy >= d->h || sx < 0 || sx >= d->w) ? 0.0f : (p[(size_t)sy * d->w + sx] * (1.0f / 255.0f) - m) * inv;
            }
        }
    }
}

/* Item `idx` of `set` as a normalised float image; aug (may be NULL) draws the augmentation. */
static pinas_status item_image(pinas_ctx *ctx, const pinas_dataset *d, int set, int idx, pinas_rng *aug, float *out)
{
    if (d->folder) {
        pinas_status s = tr_imagefolder_image(ctx, d->folder, set, idx, aug, out);
        if (s) return s;
        size_t plane = (size_t)d->h * d->w;
        for (int c = 0; c < d->c; c++) {
            float m = d->mean[c], inv = 1.0f / d->std[c], *q = out + (size_t)c * plane;
            for (size_t k = 0; k < plane; k++) q[k] = (q[k] - m) * inv;
        }
        return PINAS_OK;
    }
    if (!aug) {
        make_image(d, set, idx, out, 0, 0, 0, 0);
        return PINAS_OK;
    }
    int pad = d->crop_pad;
    int oy = pad ? (int)pinas_rng_below(aug, (uint64_t)(2 * pad + 1)) : 0, ox = pad ? (int)pinas_rng_below(aug, (uint64_t)(2 * pad + 1)) : 0;
    int flip = (int)(pinas_rng_next(aug) >> 63) && d->flip;
    make_image(d, set, idx, out, pad, oy, ox, flip);
    return PINAS_OK;
}

/* The augmentation draws item_image makes for an in-memory image, without the image: another rank's
 * element of a sharded batch, so that every rank's draws stay those of the unsharded loader. */
static void skip_augment(const pinas_dataset *d, pinas_rng *aug)
{
    if (!aug || d->folder) return;
    int pad = d->crop_pad;
    if (pad) {
        (void)pinas_rng_below(aug, (uint64_t)(2 * pad + 1));
        (void)pinas_rng_below(aug, (uint64_t)(2 * pad + 1));
    }
    (void)pinas_rng_next(aug);
}

static int item_label(const pinas_dataset *d, int set, int idx)
{
    return d->folder ? tr_imagefolder_label(d->folder, set, idx) : d->y[set][idx];
}

pinas_status pinas_dataset_get_f32(pinas_ctx *ctx, const pinas_dataset *d, pinas_split split, int start, int n, float *x, int64_t *y)
{
    int total = split_size(d, split);
    if (start < 0 || n < 0 || start + n > total)
        return pinas_error(ctx, PINAS_EINVAL, "%s: images [%d, %d) requested, the %s split has %d", d->name, start, start + n,
                           tr_split_name(split), total);
    size_t img = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < n; i++) {
        int set, idx = split_index(d, split, start + i, &set);
        pinas_status s = item_image(ctx, d, set, idx, NULL, x + (size_t)i * img);
        if (s) return s;
        if (y) y[i] = item_label(d, set, idx);
    }
    return PINAS_OK;
}

/* ------------------------------------------------------------------ loader */

struct pinas_loader {
    const pinas_dataset *d;
    pinas_split split;
    pinas_loader_opts o;
    int n, epoch, pos, started;
    int last_global;        /* global size of the last batch returned */
    int *order;
    float *xbuf;
    int64_t *ybuf;
    pinas_rng aug;
    char device[32];
};

pinas_status pinas_loader_create(pinas_ctx *ctx, const pinas_dataset *d, pinas_split split, const pinas_loader_opts *o,
                                 pinas_loader **out)
{
    *out = NULL;
    if ((unsigned)split > PINAS_SPLIT_TEST) return pinas_error(ctx, PINAS_EINVAL, "loader: unknown split %d", (int)split);
    if (o->batch_size < 1) return pinas_error(ctx, PINAS_EINVAL, "loader: batch size must be positive, got %d", o->batch_size);
    int n = split_size(d, split);
    if (n < 1) return pinas_error(ctx, PINAS_EINVAL, "loader: the %s split of %s is empty", tr_split_name(split), d->name);
    if (o->world > 1) {
        if (o->rank < 0 || o->rank >= o->world) return pinas_error(ctx, PINAS_EINVAL, "loader: rank %d out of a world of %d", o->rank, o->world);
        int b = o->batch_size < n ? o->batch_size : n, last = n % b;
        /* Every rank needs at least one element of every batch it steps on. */
        if (b < o->world || (!o->drop_last && last && last < o->world))
            return pinas_error(ctx, PINAS_EINVAL,
                               "loader: the %s split of %s (%d images) in global batches of %d leaves a batch of %d, fewer than the %d "
                               "ranks; change train.batch_size or the split's size",
                               tr_split_name(split), d->name, n, o->batch_size, b < o->world ? b : last, o->world);
    }
    pinas_loader *l = calloc(1, sizeof *l);
    if (!l) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    l->d = d;
    l->split = split;
    l->o = *o;
    l->n = n;
    l->epoch = -1;
    int b = o->batch_size < n ? o->batch_size : n;
    l->order = malloc((size_t)n * sizeof(int));
    l->xbuf = malloc((size_t)b * d->c * d->h * d->w * sizeof(float));
    l->ybuf = malloc((size_t)b * sizeof(int64_t));
    snprintf(l->device, sizeof l->device, "%s", pinas_ctx_device(ctx));
    if (!l->order || !l->xbuf || !l->ybuf) {
        pinas_loader_free(l);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory for a loader of batch %d", b);
    }
    *out = l;
    return PINAS_OK;
}

void pinas_loader_free(pinas_loader *l)
{
    if (!l) return;
    free(l->order);
    free(l->xbuf);
    free(l->ybuf);
    free(l);
}

int pinas_loader_n_batches(const pinas_loader *l)
{
    int b = l->o.batch_size;
    if (l->o.drop_last && l->n >= b) return l->n / b;
    return (l->n + b - 1) / b;
}

int pinas_loader_last_global(const pinas_loader *l) { return l->last_global; }

void pinas_loader_start_epoch(pinas_loader *l, int epoch)
{
    l->epoch = epoch;
    l->pos = 0;
    l->started = 1;
    for (int i = 0; i < l->n; i++) l->order[i] = i;
    if (l->o.shuffle) {
        pinas_rng r = {tr_seed_mix(l->o.seed, 4, (uint64_t)l->split, (uint64_t)epoch)};
        for (int i = l->n - 1; i > 0; i--) {
            int j = (int)pinas_rng_below(&r, (uint64_t)i + 1), t = l->order[i];
            l->order[i] = l->order[j];
            l->order[j] = t;
        }
    }
    l->aug.s = tr_seed_mix(l->o.seed, 5, (uint64_t)l->split, (uint64_t)epoch);
}

pinas_status pinas_loader_next(pinas_ctx *ctx, pinas_loader *l, pt_tensor **x, pt_tensor **y)
{
    *x = *y = NULL;
    if (!l->started) pinas_loader_start_epoch(l, l->epoch + 1);
    int b = l->o.batch_size, left = l->n - l->pos;
    if (left <= 0 || (l->o.drop_last && left < b && l->n >= b)) {
        /* End of the epoch: the next call starts the following one. */
        l->started = 0;
        return PINAS_OK;
    }
    if (b > left) b = left;
    const pinas_dataset *d = l->d;
    size_t img = (size_t)d->c * d->h * d->w;
    int world = l->o.world > 1 ? l->o.world : 1, mine = 0;
    for (int i = 0; i < b; i++) {
        if (i % world != l->o.rank % world) {
            skip_augment(d, l->o.augment ? &l->aug : NULL);
            continue;
        }
        int set, idx = split_index(d, l->split, l->order[l->pos + i], &set);
        pinas_status s = item_image(ctx, d, set, idx, l->o.augment ? &l->aug : NULL, l->xbuf + (size_t)mine * img);
        if (s) return s;
        l->ybuf[mine++] = item_label(d, set, idx);
    }
    l->pos += b;
    l->last_global = b;
    b = mine;
    int64_t xs[4] = {b, d->c, d->h, d->w}, ys[1] = {b};
    pt_tensor *tx = NULL, *ty = NULL;
    if (pt_from_f32(l->xbuf, 4, xs, &tx) || pt_from_i64(l->ybuf, 1, ys, &ty)) {
        pt_free(tx);
        return pinas_torch_error(ctx, "loader: making a batch");
    }
    if (strcmp(l->device, "cpu") != 0) {
        pt_tensor *dx = NULL, *dy = NULL;
        int rc = pt_to_device(tx, l->device, &dx) || pt_to_device(ty, l->device, &dy);
        pt_free(tx);
        pt_free(ty);
        if (rc) {
            pt_free(dx);
            return pinas_torch_error(ctx, "loader: moving a batch to the device");
        }
        tx = dx;
        ty = dy;
    }
    *x = tx;
    *y = ty;
    return PINAS_OK;
}
