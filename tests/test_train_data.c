/* Tests for datasets and loaders (train/data.c, train/data_idx.c): CIFAR and IDX readers on files written here, transforms, synthetic set, split, augmentation. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "pinas_train.h"
#include "testutil.h"

static pinas_ctx *ctx;

/* Record i of file f: label (i*3 + f) % classes, pixel k = (i*7 + k + f*31) & 255. */
static void write_cifar(const char *name, int f, int n, int label_bytes, int classes, int bad_label)
{
    FILE *fp = fopen(tu_path(name), "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    for (int i = 0; i < n; i++) {
        uint8_t lab = (uint8_t)((i * 3 + f) % classes);
        if (bad_label && i == n - 1) lab = (uint8_t)(classes + 2);
        if (label_bytes == 2) fputc(lab / 5, fp); /* coarse label: ignored */
        fputc(lab, fp);
        for (int k = 0; k < 3072; k++) fputc((i * 7 + k + f * 31) & 255, fp);
    }
    fclose(fp);
}

static pinas_data_opts cifar_opts(const char *kind)
{
    pinas_data_opts o = {.dataset = kind, .path = tu_tmpdir(), .val_fraction = 0.25, .seed = 3};
    return o;
}

static void test_cifar10(void)
{
    const char *names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    for (int f = 0; f < 6; f++) write_cifar(names[f], f, f < 5 ? 3 : 2, 1, 10, 0);
    pinas_data_opts o = cifar_opts("cifar10");
    pinas_dataset *d = NULL;
    pinas_status s = pinas_dataset_load(ctx, &o, &d);
    if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    CU_ASSERT_STRING_EQUAL(di.name, "cifar10");
    CU_ASSERT_EQUAL(di.c, 3);
    CU_ASSERT_EQUAL(di.h, 32);
    CU_ASSERT_EQUAL(di.num_classes, 10);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TRAIN_ALL], 15);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TEST], 2);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_VAL], 4); /* round(15 * 0.25) */
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TRAIN], 11);
    /* Statistics by direct computation over the 15 training records. */
    for (int c = 0; c < 3; c++) {
        double sum = 0, sq = 0;
        for (int f = 0; f < 5; f++)
            for (int i = 0; i < 3; i++)
                for (int k = c * 1024; k < (c + 1) * 1024; k++) {
                    double v = ((i * 7 + k + f * 31) & 255) / 255.0;
                    sum += v;
                    sq += v * v;
                }
        double n = 15 * 1024.0, m = sum / n;
        CU_ASSERT_DOUBLE_EQUAL(di.mean[c], m, 1e-5);
        CU_ASSERT_DOUBLE_EQUAL(di.std[c], sqrt(sq / n - m * m), 1e-5);
    }
    /* Record 1 of the test file, normalised. */
    float *x = malloc(2 * 3072 * sizeof(float));
    int64_t y[2];
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 0, 2, x, y), PINAS_OK);
    CU_ASSERT_EQUAL(y[0], 5 % 10);
    CU_ASSERT_EQUAL(y[1], (3 + 5) % 10);
    for (int k = 0; k < 3072; k += 511) {
        int c = k / 1024;
        double want = (((7 + k + 5 * 31) & 255) / 255.0 - di.mean[c]) / di.std[c];
        CU_ASSERT_DOUBLE_EQUAL(x[3072 + k], want, 1e-5);
    }
    /* Out of range requests name the split. */
    TU_ASSERT_ERR(ctx, pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 1, 2, x, y), "the test split has 2");
    free(x);
    pinas_dataset_free(d);

    /* A truncated file: one byte short. */
    FILE *fp = fopen(tu_path("data_batch_4.bin"), "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(ftruncate(fileno(fp), 3 * 3073 - 1), 0);
    fclose(fp);
    s = pinas_dataset_load(ctx, &o, &d);
    CU_ASSERT_EQUAL(s, PINAS_EFORMAT);
    TU_ASSERT_ERR(ctx, s, "data_batch_4.bin: 9218 bytes is not a whole number of 3073-byte");
    CU_ASSERT_PTR_NULL(d);
    /* A missing file. */
    remove(tu_path("data_batch_4.bin"));
    s = pinas_dataset_load(ctx, &o, &d);
    CU_ASSERT_EQUAL(s, PINAS_EIO);
    TU_ASSERT_ERR(ctx, s, "data_batch_4.bin: cannot open");
    /* A label out of range. */
    write_cifar("data_batch_4.bin", 3, 3, 1, 10, 1);
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "data_batch_4.bin: record 2: label 12 out of range");
    /* An empty file. */
    fclose(fopen(tu_path("data_batch_4.bin"), "wb"));
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "data_batch_4.bin: 0 bytes");
    for (int f = 0; f < 6; f++) remove(tu_path(names[f]));
}

static void test_cifar100(void)
{
    write_cifar("train.bin", 0, 4, 2, 100, 0);
    write_cifar("test.bin", 1, 3, 2, 100, 0);
    pinas_data_opts o = cifar_opts("cifar100");
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    CU_ASSERT_EQUAL(di.num_classes, 100);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TRAIN_ALL], 4);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TEST], 3);
    int64_t y[3];
    float *x = malloc(3 * 3072 * sizeof(float));
    CU_ASSERT_EQUAL(pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 0, 3, x, y), PINAS_OK);
    CU_ASSERT_EQUAL(y[2], (6 + 1) % 100); /* the fine label (second byte) */
    free(x);
    pinas_dataset_free(d);
    /* A CIFAR-10 sized record in a CIFAR-100 file is caught by the record size. */
    write_cifar("train.bin", 0, 4, 1, 10, 0);
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "3074-byte CIFAR-100 records");
    remove(tu_path("train.bin"));
    remove(tu_path("test.bin"));
    o.dataset = "svhn";
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "data.dataset: \"svhn\" is not one of");
}

static pinas_dataset *synthetic(uint64_t seed, int n_train, int size)
{
    pinas_data_opts o = {.dataset = "synthetic", .synthetic_train = n_train, .synthetic_test = 50, .synthetic_classes = 4,
                         .synthetic_size = size, .val_fraction = 0.5, .seed = seed};
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    return d;
}

static uint64_t image_hash(const float *x, size_t n) { return pinas_fnv1a64(x, n * sizeof(float), PINAS_FNV_INIT); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_synthetic_and_split(void)
{
    pinas_dataset *a = synthetic(11, 60, 8), *b = synthetic(11, 60, 8), *c = synthetic(12, 60, 8);
    size_t img = 3 * 8 * 8;
    float *xa = malloc(60 * img * sizeof(float)), *xb = malloc(60 * img * sizeof(float)), *xc = malloc(60 * img * sizeof(float));
    int64_t ya[60], yb[60];
    CU_ASSERT_EQUAL(pinas_dataset_get_f32(ctx, a, PINAS_SPLIT_TRAIN_ALL, 0, 60, xa, ya), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_dataset_get_f32(ctx, b, PINAS_SPLIT_TRAIN_ALL, 0, 60, xb, yb), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_dataset_get_f32(ctx, c, PINAS_SPLIT_TRAIN_ALL, 0, 60, xc, NULL), PINAS_OK);
    CU_ASSERT_EQUAL(memcmp(xa, xb, 60 * img * sizeof(float)), 0); /* same seed, same data */
    CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof ya), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(xa, xc, 60 * img * sizeof(float)), 0);
    int seen[4] = {0};
    for (int i = 0; i < 60; i++) {
        CU_ASSERT(ya[i] >= 0 && ya[i] < 4);
        seen[ya[i] & 3]++;
    }
    for (int k = 0; k < 4; k++) CU_ASSERT(seen[k] > 0);
    /* Normalised with the training statistics: per-channel mean 0, std 1 over the training set. */
    for (int ch = 0; ch < 3; ch++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < 60; i++)
            for (int k = 0; k < 64; k++) {
                double v = xa[i * img + ch * 64 + k];
                s += v;
                s2 += v * v;
            }
        CU_ASSERT_DOUBLE_EQUAL(s / 3840, 0.0, 1e-4);
        CU_ASSERT_DOUBLE_EQUAL(s2 / 3840, 1.0, 1e-3);
    }
    /* TRAIN and VAL partition TRAIN_ALL. */
    pinas_dataset_info di;
    pinas_dataset_get_info(a, &di);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TRAIN] + di.n[PINAS_SPLIT_VAL], 60);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_VAL], 30);
    uint64_t all[60], parts[60];
    for (int i = 0; i < 60; i++) all[i] = image_hash(xa + i * img, img);
    CU_ASSERT_EQUAL(pinas_dataset_get_f32(ctx, a, PINAS_SPLIT_TRAIN, 0, 30, xb, NULL), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_dataset_get_f32(ctx, a, PINAS_SPLIT_VAL, 0, 30, xb + 30 * img, NULL), PINAS_OK);
    for (int i = 0; i < 60; i++) parts[i] = image_hash(xb + i * img, img);
    CU_ASSERT_NOT_EQUAL(memcmp(all, parts, sizeof all), 0); /* permuted, not the identity */
    qsort(all, 60, sizeof all[0], cmp_u64);
    qsort(parts, 60, sizeof parts[0], cmp_u64);
    CU_ASSERT_EQUAL(memcmp(all, parts, sizeof all), 0);
    for (int i = 1; i < 60; i++) CU_ASSERT(all[i] != all[i - 1]); /* every image distinct */
    free(xa);
    free(xb);
    free(xc);
    pinas_dataset_free(a);
    pinas_dataset_free(b);
    pinas_dataset_free(c);
}

/* Reads a whole epoch of a loader into x (n images) and y. Returns the number of images. */
static int read_epoch(pinas_loader *l, int epoch, float *x, int64_t *y, size_t img)
{
    pinas_loader_start_epoch(l, epoch);
    int n = 0;
    for (;;) {
        pt_tensor *bx = NULL, *by = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_loader_next(ctx, l, &bx, &by), PINAS_OK);
        if (!bx) break;
        int64_t b = 0;
        pt_numel(by, &b);
        CU_ASSERT_EQUAL(pt_to_f32(bx, x + (size_t)n * img, (size_t)b * img), 0);
        CU_ASSERT_EQUAL(pt_to_i64(by, y + n, (size_t)b), 0);
        n += (int)b;
        pt_free(bx);
        pt_free(by);
    }
    return n;
}

static void test_loader(void)
{
    pinas_dataset *d = synthetic(5, 40, 8);
    size_t img = 3 * 8 * 8;
    float *x1 = malloc(50 * img * sizeof(float)), *x2 = malloc(50 * img * sizeof(float)), *ref = malloc(50 * img * sizeof(float));
    int64_t y1[50], y2[50], yr[50];
    CU_ASSERT_EQUAL(pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 0, 50, ref, yr), PINAS_OK);
    /* Plain loader = dataset order; 50 images in batches of 16: 16, 16, 16, 2. */
    pinas_loader_opts lo = {.batch_size = 16, .seed = 9};
    pinas_loader *l = NULL, *l2 = NULL, *la = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TEST, &lo, &l), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_loader_n_batches(l), 4);
    CU_ASSERT_EQUAL(read_epoch(l, 0, x1, y1, img), 50);
    CU_ASSERT_EQUAL(memcmp(x1, ref, 50 * img * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(y1, yr, sizeof y1), 0);
    pinas_loader_free(l);
    /* drop_last: 3 full batches. */
    lo.drop_last = 1;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TEST, &lo, &l), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_loader_n_batches(l), 3);
    CU_ASSERT_EQUAL(read_epoch(l, 0, x1, y1, img), 48);
    pinas_loader_free(l);
    /* Shuffled: a function of (seed, epoch) only. */
    lo.drop_last = 0;
    lo.shuffle = 1;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TEST, &lo, &l), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TEST, &lo, &l2), PINAS_OK);
    read_epoch(l, 0, x1, y1, img);
    read_epoch(l, 1, x1, y1, img);
    read_epoch(l, 2, x1, y1, img); /* l has run epochs 0..2, l2 jumps straight to 2 */
    read_epoch(l2, 2, x2, y2, img);
    CU_ASSERT_EQUAL(memcmp(x1, x2, 50 * img * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(y1, y2, sizeof y1), 0);
    read_epoch(l2, 3, x2, y2, img);
    CU_ASSERT_NOT_EQUAL(memcmp(x1, x2, 50 * img * sizeof(float)), 0);
    /* Augmented: same order and labels as the plain shuffled loader; every image a flipped, shifted
     * (zero-padded) copy of its source, found by search. */
    lo.augment = 1;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TEST, &lo, &la), PINAS_OK);
    read_epoch(la, 2, x2, y2, img);
    CU_ASSERT_EQUAL(memcmp(y1, y2, sizeof y1), 0);
    int changed = 0, matched = 0, pad = 1; /* 8 / 8 */
    for (int i = 0; i < 50; i++) {
        const float *src = x1 + i * img, *aug = x2 + i * img;
        if (memcmp(src, aug, img * sizeof(float))) changed++;
        int ok = 0;
        for (int flip = 0; flip < 2 && !ok; flip++)
            for (int oy = 0; oy <= 2 * pad && !ok; oy++)
                for (int ox = 0; ox <= 2 * pad && !ok; ox++) {
                    int good = 1;
                    for (int c = 0; c < 3 && good; c++)
                        for (int yy = 0; yy < 8 && good; yy++)
                            for (int xx = 0; xx < 8 && good; xx++) {
                                int sy = yy + oy - pad, sx = (flip ? 7 - xx : xx) + ox - pad;
                                float want = (sy < 0 || sy > 7 || sx < 0 || sx > 7) ? 0.0f : src[c * 64 + sy * 8 + sx];
                                good = aug[c * 64 + yy * 8 + xx] == want;
                            }
                    ok = good;
                }
        matched += ok;
    }
    CU_ASSERT_EQUAL(matched, 50);
    CU_ASSERT(changed > 25); /* 17 of 18 crop/flip combinations change the image */
    /* Errors. */
    pinas_loader_free(l);
    lo.batch_size = 0;
    TU_ASSERT_ERR(ctx, pinas_loader_create(ctx, d, PINAS_SPLIT_TEST, &lo, &l), "batch size must be positive");
    CU_ASSERT_PTR_NULL(l);
    free(x1);
    free(x2);
    free(ref);
    pinas_loader_free(l);
    pinas_loader_free(l2);
    pinas_loader_free(la);
    pinas_dataset_free(d);
}

/* ------------------------------------------------------------ IDX (MNIST / Fashion-MNIST) */

/* Image i, pixel k of an h x w IDX set: (i * 13 + k * 5 + salt) & 255; label (i + salt) % 10. */
static void idx_bytes(uint8_t *buf, int n, int h, int w, int salt, int images, int bad_label)
{
    uint8_t *p = buf;
    int ndims = images ? 3 : 1;
    *p++ = 0, *p++ = 0, *p++ = 8, *p++ = (uint8_t)ndims;
    uint32_t dims[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    for (int k = 0; k < ndims; k++) {
        *p++ = (uint8_t)(dims[k] >> 24), *p++ = (uint8_t)(dims[k] >> 16), *p++ = (uint8_t)(dims[k] >> 8), *p++ = (uint8_t)dims[k];
    }
    for (int i = 0; i < n; i++) {
        if (!images) {
            *p++ = (uint8_t)(bad_label && i == n - 1 ? 10 : (i + salt) % 10);
            continue;
        }
        for (int k = 0; k < h * w; k++) *p++ = (uint8_t)((i * 13 + k * 5 + salt) & 255);
    }
}

/* Writes the file gzipped (gz) or plain, keeping only the first `keep` bytes when keep >= 0. */
static void write_idx(const char *dir, const char *name, int n, int h, int w, int salt, int images, int gz, int bad_label, long keep)
{
    size_t len = 4 + (images ? 12 : 4) + (size_t)n * (images ? (size_t)h * w : 1);
    uint8_t *buf = malloc(len);
    idx_bytes(buf, n, h, w, salt, images, bad_label);
    char path[512];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        gzwrite(f, buf, (unsigned)len);
        gzclose(f);
        if (keep >= 0) CU_ASSERT_EQUAL(truncate(path, keep), 0);
    } else {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fwrite(buf, 1, keep >= 0 && (size_t)keep < len ? (size_t)keep : len, f);
        fclose(f);
    }
    free(buf);
}

static void write_idx_set(const char *dir, int gz)
{
    write_idx(dir, "train-images-idx3-ubyte", 12, 6, 5, 0, 1, gz, 0, -1);
    write_idx(dir, "train-labels-idx1-ubyte", 12, 0, 0, 0, 0, gz, 0, -1);
    write_idx(dir, "t10k-images-idx3-ubyte", 4, 6, 5, 7, 1, gz, 0, -1);
    write_idx(dir, "t10k-labels-idx1-ubyte", 4, 0, 0, 7, 0, gz, 0, -1);
}

static void test_idx(void)
{
    char dir[512];
    for (int gz = 0; gz < 2; gz++) {
        snprintf(dir, sizeof dir, "%s/idx%d", tu_tmpdir(), gz);
        CU_ASSERT_EQUAL_FATAL(pinas_mkdir_p(ctx, dir), PINAS_OK);
        write_idx_set(dir, gz);
        pinas_data_opts o = {.dataset = gz ? "fashion-mnist" : "mnist", .path = dir, .val_fraction = 0.25, .seed = 1};
        pinas_dataset *d = NULL;
        pinas_status s = pinas_dataset_load(ctx, &o, &d);
        if (s) fprintf(stderr, "%s\n", pinas_errmsg(ctx));
        CU_ASSERT_EQUAL_FATAL(s, PINAS_OK);
        pinas_dataset_info di;
        pinas_dataset_get_info(d, &di);
        CU_ASSERT_EQUAL(di.c, 1);
        CU_ASSERT_EQUAL(di.h, 6);
        CU_ASSERT_EQUAL(di.w, 5);
        CU_ASSERT_EQUAL(di.num_classes, 10);
        CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TRAIN_ALL], 12);
        CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TEST], 4);
        double sum = 0, sq = 0;
        for (int i = 0; i < 12; i++)
            for (int k = 0; k < 30; k++) {
                double v = ((i * 13 + k * 5) & 255) / 255.0;
                sum += v;
                sq += v * v;
            }
        double m = sum / 360, sd = sqrt(sq / 360 - m * m);
        CU_ASSERT_DOUBLE_EQUAL(di.mean[0], m, 1e-5);
        CU_ASSERT_DOUBLE_EQUAL(di.std[0], sd, 1e-5);
        float x[2 * 30];
        int64_t y[2];
        CU_ASSERT_EQUAL_FATAL(pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 2, 2, x, y), PINAS_OK);
        CU_ASSERT_EQUAL(y[0], (2 + 7) % 10);
        CU_ASSERT_EQUAL(y[1], (3 + 7) % 10);
        for (int k = 0; k < 30; k++) CU_ASSERT_DOUBLE_EQUAL(x[30 + k], (((3 * 13 + k * 5 + 7) & 255) / 255.0 - m) / sd, 1e-4);
        pinas_dataset_free(d);
    }

    /* Subsets, padding and channel replication: 6x5 -> pad 1 -> 8x7, three identical channels. */
    pinas_data_opts o = {.dataset = "fashion-mnist", .path = dir, .val_fraction = 0.25, .seed = 1,
                         .train_images = 8, .test_images = 3, .pad = 1, .channels = 3, .n_norm = 1, .mean = {0.5f}, .std = {0.25f}};
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    CU_ASSERT_EQUAL(di.c, 3);
    CU_ASSERT_EQUAL(di.h, 8);
    CU_ASSERT_EQUAL(di.w, 7);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TRAIN_ALL], 8);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TEST], 3);
    CU_ASSERT_DOUBLE_EQUAL(di.mean[2], 0.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(di.std[1], 0.25, 1e-7);
    float x[3 * 56];
    int64_t y;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_get_f32(ctx, d, PINAS_SPLIT_TEST, 1, 1, x, &y), PINAS_OK);
    for (int c = 0; c < 3; c++)
        for (int yy = 0; yy < 8; yy++)
            for (int xx = 0; xx < 7; xx++) {
                int inside = yy >= 1 && yy <= 6 && xx >= 1 && xx <= 5;
                double px = inside ? ((13 + ((yy - 1) * 5 + xx - 1) * 5 + 7) & 255) / 255.0 : 0.0;
                CU_ASSERT_DOUBLE_EQUAL(x[(c * 8 + yy) * 7 + xx], (px - 0.5) / 0.25, 1e-4);
            }
    pinas_dataset_free(d);

    /* Resizing to 12x10 (2x) keeps the mean brightness of a constant region; digits default to no flips. */
    o = (pinas_data_opts){.dataset = "mnist", .path = dir, .val_fraction = 0.25, .seed = 1, .crop_pad = -1, .resize = 12};
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    pinas_dataset_get_info(d, &di);
    CU_ASSERT_EQUAL(di.h, 12);
    CU_ASSERT_EQUAL(di.w, 12);
    /* No flip and no crop for digits: augmented batches equal plain ones. */
    pinas_loader *la = NULL, *lp = NULL;
    pinas_loader_opts lo = {.batch_size = 9, .shuffle = 0, .augment = 1, .seed = 5};
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TRAIN_ALL, &lo, &la), PINAS_OK);
    lo.augment = 0;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TRAIN_ALL, &lo, &lp), PINAS_OK);
    pt_tensor *xa = NULL, *ya = NULL, *xp = NULL, *yp = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_next(ctx, la, &xa, &ya), PINAS_OK);
    CU_ASSERT_EQUAL_FATAL(pinas_loader_next(ctx, lp, &xp, &yp), PINAS_OK);
    float *fa = malloc(9 * 144 * sizeof(float)), *fp = malloc(9 * 144 * sizeof(float));
    CU_ASSERT_EQUAL(pt_to_f32(xa, fa, 9 * 144), 0);
    CU_ASSERT_EQUAL(pt_to_f32(xp, fp, 9 * 144), 0);
    CU_ASSERT_EQUAL(memcmp(fa, fp, 9 * 144 * sizeof(float)), 0);
    free(fa);
    free(fp);
    pt_free(xa);
    pt_free(ya);
    pt_free(xp);
    pt_free(yp);
    pinas_loader_free(la);
    pinas_loader_free(lp);
    pinas_dataset_free(d);

    /* Errors name the file. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad", tu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(pinas_mkdir_p(ctx, bad), PINAS_OK);
    o = (pinas_data_opts){.dataset = "fashion-mnist", .path = bad, .val_fraction = 0.25, .seed = 1};
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "train-images-idx3-ubyte: no such file");
    write_idx_set(bad, 1);
    write_idx(bad, "train-labels-idx1-ubyte", 12, 0, 0, 0, 0, 1, 1, -1); /* last label 10 */
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "train-labels-idx1-ubyte.gz: record 11: label 10 out of range");
    write_idx(bad, "train-labels-idx1-ubyte", 11, 0, 0, 0, 0, 1, 0, -1); /* 11 labels for 12 images */
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "has 12 images but");
    write_idx_set(bad, 1);
    write_idx(bad, "t10k-images-idx3-ubyte", 4, 6, 5, 7, 1, 1, 0, 40); /* a gzip cut short */
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "t10k-images-idx3-ubyte.gz");
    CU_ASSERT_PTR_NULL(d);
    char gzp[600];
    snprintf(gzp, sizeof gzp, "%s/t10k-images-idx3-ubyte.gz", bad);
    unlink(gzp);
    write_idx(bad, "t10k-images-idx3-ubyte", 4, 6, 5, 7, 1, 0, 0, 16 + 30 * 3 + 7); /* a plain file cut short */
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "t10k-images-idx3-ubyte: truncated");
    write_idx(bad, "t10k-images-idx3-ubyte", 4, 6, 5, 7, 0, 0, 0, -1); /* a label file where images belong */
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "not an IDX file of unsigned bytes with 3 dimensions");
    o.channels = 2;
    write_idx(bad, "t10k-images-idx3-ubyte", 4, 6, 5, 7, 1, 0, 0, -1);
    TU_ASSERT_ERR(ctx, pinas_dataset_load(ctx, &o, &d), "data.channels");
}

/* The real Fashion-MNIST of Debian's dataset-fashion-mnist, when installed: sizes and labels. */
static void test_fashion_mnist_package(void)
{
    const char *dir = pinas_data_default_path("fashion-mnist");
    char p[512];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "\n  %s missing (install dataset-fashion-mnist): skipped\n", p);
        return;
    }
    pinas_data_opts o = {.dataset = "fashion-mnist", .val_fraction = 0.1, .seed = 1};
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TRAIN_ALL], 60000);
    CU_ASSERT_EQUAL(di.n[PINAS_SPLIT_TEST], 10000);
    CU_ASSERT_EQUAL(di.h, 28);
    CU_ASSERT_DOUBLE_EQUAL(di.mean[0], 0.2860, 2e-3); /* the published Fashion-MNIST mean / std */
    CU_ASSERT_DOUBLE_EQUAL(di.std[0], 0.3530, 2e-3);
    pinas_dataset_free(d);
}

/* The config's data and train sections map onto the loader's and trainer's options (the config's
 * crop_pad -1 = auto / 0 = none is the loader's 0 / -1; flip; normalisation; an empty teacher). */
static void test_opts_from_cfg(void)
{
    const char *sets[] = {"data.crop_pad=0", "data.flip=off", "data.mean=[0.5, 0.25, 0.125]", "data.std=[0.5, 0.5, 2]",
                          "data.dataset=cifar100", "seed=9", "train.schedule=constant", "data.augment=false", "train.grad_clip=2"};
    pinas_config *c = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, NULL, sets, 9, &c), PINAS_OK);
    pinas_data_opts d;
    pinas_data_opts_from_cfg(&c->data, c->seed, &d);
    CU_ASSERT_STRING_EQUAL(d.dataset, "cifar100");
    CU_ASSERT_STRING_EQUAL(d.path, "");
    CU_ASSERT_EQUAL(d.seed, 9);
    CU_ASSERT_EQUAL(d.crop_pad, -1);
    CU_ASSERT_EQUAL(d.flip, -1);
    CU_ASSERT_EQUAL(d.n_norm, 3);
    CU_ASSERT_DOUBLE_EQUAL(d.mean[2], 0.125, 0);
    CU_ASSERT_DOUBLE_EQUAL(d.std[2], 2, 0);
    CU_ASSERT_EQUAL(d.synthetic_train, 2000);
    CU_ASSERT_DOUBLE_EQUAL(d.val_fraction, 0.5, 0);
    pinas_train_opts t;
    pinas_train_opts_from_cfg(&c->train, &c->data, c->seed, &t);
    CU_ASSERT_EQUAL(t.epochs, 10);
    CU_ASSERT_EQUAL(t.batch_size, 64);
    CU_ASSERT_EQUAL(t.cosine, 0);
    CU_ASSERT_EQUAL(t.nesterov, 1);
    CU_ASSERT_EQUAL(t.augment, 0);
    CU_ASSERT_DOUBLE_EQUAL(t.grad_clip, 2, 0);
    CU_ASSERT_PTR_NULL(t.teacher);
    CU_ASSERT_EQUAL(t.seed, 9);
    CU_ASSERT_EQUAL(t.train_split, PINAS_SPLIT_TRAIN_ALL);
    CU_ASSERT_EQUAL(t.eval_split, PINAS_SPLIT_TEST);
    CU_ASSERT_STRING_EQUAL(t.phase, "train");
    pinas_config_free(c);
    /* The defaults: crop_pad auto, flip by dataset, normalisation from the data, cosine. */
    CU_ASSERT_EQUAL_FATAL(pinas_config_load(ctx, NULL, NULL, 0, &c), PINAS_OK);
    pinas_data_opts_from_cfg(&c->data, c->seed, &d);
    CU_ASSERT_EQUAL(d.crop_pad, 0);
    CU_ASSERT_EQUAL(d.flip, 0);
    CU_ASSERT_EQUAL(d.n_norm, 0);
    pinas_train_opts_from_cfg(&c->train, &c->data, c->seed, &t);
    CU_ASSERT_EQUAL(t.cosine, 1);
    CU_ASSERT_EQUAL(t.augment, 1);
    pinas_config_free(c);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    const tu_test tests[] = {
        {"CIFAR-10 reader, statistics, truncated/missing files", test_cifar10},
        {"CIFAR-100 reader", test_cifar100},
        {"synthetic set is deterministic; train/val split", test_synthetic_and_split},
        {"loader order, drop_last, seeded shuffle, augmentation", test_loader},
        {"IDX reader (gzip and plain), subsets, pad/resize/channels, no flips for digits, errors", test_idx},
        {"Debian's Fashion-MNIST", test_fashion_mnist_package},
        {"data and train options from the config's records", test_opts_from_cfg},
    };
    int rc = tu_run("train_data", tests, (int)(sizeof tests / sizeof tests[0]));
    pinas_ctx_free(ctx);
    return rc;
}
