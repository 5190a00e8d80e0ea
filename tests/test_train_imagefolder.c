/* Tests for image-folder datasets (train/imagefolder.c): scanning, PNG/JPEG decoding, resize/crop transforms, errors. */
#define _GNU_SOURCE
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "imagefolder.h"
#include "testutil.h"

static pinas_ctx *ctx;

/* ---------------------------------------------------------------- helpers */

/* A path under the test directory; static buffers rotated over 8 slots. */
static const char *P(const char *fmt, ...)
{
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7], rel[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(b, sizeof bufs[0], "%s/%s", tu_tmpdir(), rel);
    return b;
}

static void mkdirs(const char *path) { CU_ASSERT_EQUAL_FATAL(pinas_mkdir_p(ctx, path), PINAS_OK); }

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    CU_ASSERT_EQUAL(fread(b, 1, *n, fp), *n);
    fclose(fp);
    return b;
}

/* Writes the first half of src to dst. */
static void write_half(const char *src, const char *dst)
{
    size_t n;
    unsigned char *b = read_bytes(src, &n);
    write_bytes(dst, b, n / 2);
    free(b);
}

/* Rows of bytes exactly as PNG stores them (16-bit samples big-endian, sub-byte samples packed). */
static void write_png_ex(const char *path, int w, int h, int ct, int bd, const unsigned char *data, int interlace,
                         const png_color *pal, int npal, const unsigned char *trns, int ntrns)
{
    FILE *fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    if (setjmp(png_jmpbuf(png))) {
        CU_FAIL("libpng could not write the test image");
        png_destroy_write_struct(&png, &info);
        free(rows);
        fclose(fp);
        return;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bd, ct, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    int ch = ct == PNG_COLOR_TYPE_RGB ? 3 : ct == PNG_COLOR_TYPE_RGBA ? 4 : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t rb = ((size_t)w * (size_t)ch * (size_t)bd + 7) / 8;
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + (size_t)y * rb;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    fclose(fp);
}

static void write_png(const char *path, int w, int h, int ct, int bd, const unsigned char *data)
{
    write_png_ex(path, w, h, ct, bd, data, 0, NULL, 0, NULL, 0);
}

/* Compresses packed pixels of format pf (TJPF_RGB or TJPF_CMYK) and writes the JPEG. */
static void write_jpeg(const char *path, int w, int h, const unsigned char *px, int pf, int subsamp, int quality)
{
    tjhandle tj = tjInitCompress();
    CU_ASSERT_PTR_NOT_NULL_FATAL(tj);
    unsigned char *jb = NULL;
    unsigned long jn = 0;
    int rc = tjCompress2(tj, px, w, 0, h, pf, &jb, &jn, subsamp, quality, 0);
    if (rc) fprintf(stderr, "tjCompress2: %s\n", tjGetErrorStr2(tj));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    write_bytes(path, jb, jn);
    tjFree(jb);
    tjDestroy(tj);
}

static tr_imagefolder *open_ok(const char *root, int size, int resize, double smin, int flip)
{
    tr_imagefolder_opts o = {.root = root, .size = size, .resize = resize, .scale_min = smin, .flip = flip};
    tr_imagefolder *f = NULL;
    pinas_status s = tr_imagefolder_open(ctx, &o, &f);
    if (s) fprintf(stderr, "\n  %s\n", pinas_errmsg(ctx));
    CU_ASSERT_EQUAL(s, PINAS_OK);
    return f;
}

/* Index of the item of `set` whose path ends with "/<suffix>", or -1. */
static int find(const tr_imagefolder *f, int set, const char *suffix)
{
    size_t ls = strlen(suffix);
    for (int i = 0; i < tr_imagefolder_count(f, set); i++) {
        const char *p = tr_imagefolder_path(f, set, i);
        size_t lp = strlen(p);
        if (lp > ls && p[lp - ls - 1] == '/' && !strcmp(p + lp - ls, suffix)) return i;
    }
    return -1;
}

/* Decodes the item ending with suffix (must succeed); out holds 3 * size * size floats. */
static int decode_ok(const tr_imagefolder *f, int set, const char *suffix, pinas_rng *rng, float *out)
{
    int i = find(f, set, suffix);
    CU_ASSERT(i >= 0);
    if (i < 0) return 0;
    pinas_status s = tr_imagefolder_image(ctx, f, set, i, rng, out);
    if (s) fprintf(stderr, "\n  %s: %s\n", suffix, pinas_errmsg(ctx));
    CU_ASSERT_EQUAL(s, PINAS_OK);
    return s == PINAS_OK;
}

/* Counts values of out (CHW, size x size) that differ from want(c, y, x) by more than tol. */
#define COUNT_BAD(out, size, tol, want_expr)                                                   \
    ({                                                                                         \
        int bad_ = 0;                                                                          \
        for (int c = 0; c < 3; c++)                                                            \
            for (int y = 0; y < (size); y++)                                                   \
                for (int x = 0; x < (size); x++) {                                             \
                    double w_ = (want_expr), g_ = (out)[(c * (size) + y) * (size) + x];        \
                    if (fabs(g_ - w_) > (tol)) {                                               \
                        if (bad_ < 3) fprintf(stderr, "\n  [%d][%d][%d]: got %.6f want %.6f", c, y, x, g_, w_); \
                        bad_++;                                                                \
                    }                                                                          \
                }                                                                              \
        bad_;                                                                                  \
    })

static unsigned char pix(int x, int y, int c) { return (unsigned char)((x * 29 + y * 7 + c * 61 + 3) & 255); }

/* RGB test pattern w x h, packed. Caller frees. */
static unsigned char *pattern(int w, int h)
{
    unsigned char *b = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) b[(y * w + x) * 3 + c] = pix(x, y, c);
    return b;
}

/* ---------------------------------------------------------------- tests */

static void test_scan(void)
{
    /* c_cls is created before b_cls: the order must still be by name. Contents are not images: open reads none. */
    mkdirs(P("scan/train/c_cls"));
    mkdirs(P("scan/train/b_cls/sub.png")); /* a directory named like an image: ignored */
    mkdirs(P("scan/train/.hidden_cls"));
    mkdirs(P("scan/val/c_cls"));
    mkdirs(P("scan/val/b_cls"));
    tu_write(P("scan/train/c_cls/b.png"), "x");
    tu_write(P("scan/train/c_cls/a.JPG"), "x");
    tu_write(P("scan/train/c_cls/.hidden.png"), "x");
    tu_write(P("scan/train/c_cls/readme.txt"), "x");
    tu_write(P("scan/train/c_cls/png"), "x");
    tu_write(P("scan/train/b_cls/z.jpeg"), "x");
    tu_write(P("scan/train/b_cls/y.Png"), "x");
    tu_write(P("scan/train/b_cls/sub.png/inner.png"), "x"); /* not recursive */
    tu_write(P("scan/train/notes.txt"), "x");
    tu_write(P("scan/train/.hidden_cls/h.png"), "x");
    tu_write(P("scan/val/c_cls/q.jpeg"), "x");
    tu_write(P("scan/val/b_cls/v.PNG"), "x");
    tu_write(P("scan/val/b_cls/w.gif"), "x");
    CU_ASSERT_EQUAL(symlink("b.png", P("scan/train/c_cls/C.png")), 0);       /* followed */
    CU_ASSERT_EQUAL(symlink("missing.png", P("scan/train/c_cls/d.png")), 0); /* dangling: ignored */

    for (int slash = 0; slash < 2; slash++) {
        char root[1024];
        snprintf(root, sizeof root, "%s%s", P("scan"), slash ? "//" : "");
        tr_imagefolder *f = open_ok(root, 8, 0, 0, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(tr_imagefolder_num_classes(f), 2);
        CU_ASSERT_STRING_EQUAL(tr_imagefolder_class_name(f, 0), "b_cls");
        CU_ASSERT_STRING_EQUAL(tr_imagefolder_class_name(f, 1), "c_cls");
        CU_ASSERT_PTR_NULL(tr_imagefolder_class_name(f, 2));
        CU_ASSERT_PTR_NULL(tr_imagefolder_class_name(f, -1));
        const char *want[5] = {"train/b_cls/y.Png", "train/b_cls/z.jpeg", "train/c_cls/C.png", "train/c_cls/a.JPG", "train/c_cls/b.png"};
        const int want_lab[5] = {0, 0, 1, 1, 1};
        CU_ASSERT_EQUAL_FATAL(tr_imagefolder_count(f, 0), 5);
        for (int i = 0; i < 5; i++) {
            CU_ASSERT_STRING_EQUAL(tr_imagefolder_path(f, 0, i), P("scan/%s", want[i]));
            CU_ASSERT_EQUAL(tr_imagefolder_label(f, 0, i), want_lab[i]);
        }
        CU_ASSERT_EQUAL_FATAL(tr_imagefolder_count(f, 1), 2);
        CU_ASSERT_STRING_EQUAL(tr_imagefolder_path(f, 1, 0), P("scan/val/b_cls/v.PNG"));
        CU_ASSERT_EQUAL(tr_imagefolder_label(f, 1, 0), 0);
        CU_ASSERT_STRING_EQUAL(tr_imagefolder_path(f, 1, 1), P("scan/val/c_cls/q.jpeg"));
        CU_ASSERT_EQUAL(tr_imagefolder_label(f, 1, 1), 1);
        /* Out of range. */
        CU_ASSERT_EQUAL(tr_imagefolder_count(f, 2), 0);
        CU_ASSERT_EQUAL(tr_imagefolder_label(f, 0, 5), -1);
        CU_ASSERT_EQUAL(tr_imagefolder_label(f, 1, -1), -1);
        CU_ASSERT_PTR_NULL(tr_imagefolder_path(f, 0, 5));
        CU_ASSERT_PTR_NULL(tr_imagefolder_path(f, 3, 0));
        float out[3 * 8 * 8];
        TU_ASSERT_ERR(ctx, tr_imagefolder_image(ctx, f, 0, 5, NULL, out), "item 5 out of range (the set has 5)");
        TU_ASSERT_ERR(ctx, tr_imagefolder_image(ctx, f, 2, 0, NULL, out), "set 2");
        tr_imagefolder_free(f);
    }
    tr_imagefolder_free(NULL);
    CU_ASSERT_EQUAL(tr_imagefolder_count(NULL, 0), 0);
    CU_ASSERT_EQUAL(tr_imagefolder_num_classes(NULL), 0);
}

/* PNG variants decoded with the identity (or a pure crop) transform: exact pixel / 255. */
static void test_png_exact(void)
{
    mkdirs(P("png/train/a"));
    mkdirs(P("png/val"));
    int dims[4][2] = {{6, 6}, {8, 6}, {9, 6}, {6, 9}};
    for (int k = 0; k < 4; k++) {
        unsigned char *b = pattern(dims[k][0], dims[k][1]);
        write_png(P("png/train/a/rgb_%dx%d.png", dims[k][0], dims[k][1]), dims[k][0], dims[k][1], PNG_COLOR_TYPE_RGB, 8, b);
        free(b);
    }
    unsigned char *b = pattern(6, 6);
    write_png_ex(P("png/train/a/interlaced.png"), 6, 6, PNG_COLOR_TYPE_RGB, 8, b, 1, NULL, 0, NULL, 0);
    free(b);
    /* grey 8 and 16 bits, grey 4 bits packed, RGBA (alpha dropped), RGB 16 bits (high byte), palette + tRNS. */
    unsigned char g8[36], g16[72], g4[6 * 3], rgba[6 * 6 * 4], rgb16[6 * 6 * 6], pal[36];
    png_color palette[4] = {{10, 20, 30}, {200, 100, 0}, {0, 255, 128}, {77, 77, 77}};
    unsigned char trns[4] = {0, 128, 255, 7};
    memset(g4, 0, sizeof g4);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) {
            int i = y * 6 + x;
            g8[i] = pix(x, y, 0);
            g16[2 * i] = pix(x, y, 1);
            g16[2 * i + 1] = (unsigned char)(i * 37); /* low byte: dropped */
            g4[y * 3 + x / 2] |= (unsigned char)(((x + y) & 15) << (x % 2 ? 0 : 4));
            for (int c = 0; c < 3; c++) {
                rgba[4 * i + c] = pix(x, y, c);
                rgb16[6 * i + 2 * c] = pix(x, y, c);
                rgb16[6 * i + 2 * c + 1] = (unsigned char)(255 - i);
            }
            rgba[4 * i + 3] = (unsigned char)(i * 7); /* includes alpha 0 */
            pal[i] = (unsigned char)((x + 2 * y) & 3);
        }
    write_png(P("png/train/a/grey8.png"), 6, 6, PNG_COLOR_TYPE_GRAY, 8, g8);
    write_png(P("png/train/a/grey16.png"), 6, 6, PNG_COLOR_TYPE_GRAY, 16, g16);
    write_png(P("png/train/a/grey4.png"), 6, 6, PNG_COLOR_TYPE_GRAY, 4, g4);
    write_png(P("png/train/a/rgba.png"), 6, 6, PNG_COLOR_TYPE_RGBA, 8, rgba);
    write_png(P("png/train/a/rgb16.png"), 6, 6, PNG_COLOR_TYPE_RGB, 16, rgb16);
    write_png_ex(P("png/train/a/palette.png"), 6, 6, PNG_COLOR_TYPE_PALETTE, 8, pal, 0, palette, 4, trns, 4);

    tr_imagefolder *f = open_ok(P("png"), 6, 6, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(tr_imagefolder_count(f, 0), 11);
    CU_ASSERT_EQUAL(tr_imagefolder_count(f, 1), 0); /* val may be empty */
    float out[3 * 36];
    const double tol = 1e-7;
    /* The shorter side is already 6: a centre crop only, at Python's round-half-even offsets. */
    if (decode_ok(f, 0, "rgb_6x6.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x, y, c) / 255.0f), 0);
    if (decode_ok(f, 0, "rgb_8x6.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x + 1, y, c) / 255.0f), 0);
    if (decode_ok(f, 0, "rgb_9x6.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x + 2, y, c) / 255.0f), 0); /* round(1.5) = 2 */
    if (decode_ok(f, 0, "rgb_6x9.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x, y + 2, c) / 255.0f), 0);
    if (decode_ok(f, 0, "interlaced.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x, y, c) / 255.0f), 0);
    if (decode_ok(f, 0, "grey8.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x, y, 0) / 255.0f), 0);
    if (decode_ok(f, 0, "grey16.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x, y, 1) / 255.0f), 0);
    if (decode_ok(f, 0, "grey4.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, ((x + y) & 15) * 17 / 255.0f), 0);
    if (decode_ok(f, 0, "rgba.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x, y, c) / 255.0f), 0);
    if (decode_ok(f, 0, "rgb16.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, pix(x, y, c) / 255.0f), 0);
    if (decode_ok(f, 0, "palette.png", NULL, out)) {
        const png_color *pc;
#define PAL_C(x, y, c) (pc = &palette[((x) + 2 * (y)) & 3], (c) == 0 ? pc->red : (c) == 1 ? pc->green : pc->blue)
        CU_ASSERT_EQUAL(COUNT_BAD(out, 6, tol, PAL_C(x, y, c) / 255.0f), 0);
#undef PAL_C
    }
    /* Grey: R = G = B exactly. */
    if (decode_ok(f, 0, "grey8.png", NULL, out))
        for (int k = 0; k < 36; k++) CU_ASSERT(out[k] == out[36 + k] && out[k] == out[72 + k]);
    tr_imagefolder_free(f);
    /* resize 0 = round(224 * 8 / 7) = 256: a 256 x 256 image is only centre-cropped, at offset 16. */
    mkdirs(P("png256/train/a"));
    mkdirs(P("png256/val/a"));
    b = pattern(256, 256);
    write_png(P("png256/val/a/big.png"), 256, 256, PNG_COLOR_TYPE_RGB, 8, b);
    free(b);
    tu_write(P("png256/train/a/unused.png"), "x");
    f = open_ok(P("png256"), 224, 0, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    float *big = malloc(3 * 224 * 224 * sizeof *big);
    if (decode_ok(f, 1, "big.png", NULL, big)) CU_ASSERT_EQUAL(COUNT_BAD(big, 224, tol, pix(x + 16, y + 16, c) / 255.0f), 0);
    free(big);
    tr_imagefolder_free(f);
}

/* Resampling values: torch's half-pixel bilinear when upscaling, PIL's widened (antialiased) filter when downscaling. */
static void test_resize(void)
{
    mkdirs(P("rs/train/a"));
    mkdirs(P("rs/val/a"));
    /* 4x4 -> 8x8 upscale. */
    unsigned char up[4 * 4 * 3];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            up[(y * 4 + x) * 3] = (unsigned char)(x * 60);
            up[(y * 4 + x) * 3 + 1] = (unsigned char)(y * 50 + 20);
            up[(y * 4 + x) * 3 + 2] = (unsigned char)((x * 37 + y * 53) % 256);
        }
    write_png(P("rs/train/a/up.png"), 4, 4, PNG_COLOR_TYPE_RGB, 8, up);
    /* 24x24 columns alternating 255 / 0 (even columns white) -> 8x8. */
    unsigned char cb[24 * 24 * 3];
    for (int y = 0; y < 24; y++)
        for (int x = 0; x < 24; x++)
            for (int c = 0; c < 3; c++) cb[(y * 24 + x) * 3 + c] = x % 2 ? 0 : 255;
    write_png(P("rs/train/a/checker.png"), 24, 24, PNG_COLOR_TYPE_RGB, 8, cb);
    /* 16x16 ramps -> 8x8: R = 10x + 5 along x, G = 10y + 5 along y, B constant. */
    unsigned char rp[16 * 16 * 3];
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            rp[(y * 16 + x) * 3] = (unsigned char)(10 * x + 5);
            rp[(y * 16 + x) * 3 + 1] = (unsigned char)(10 * y + 5);
            rp[(y * 16 + x) * 3 + 2] = 77;
        }
    write_png(P("rs/val/a/ramp.png"), 16, 16, PNG_COLOR_TYPE_RGB, 8, rp);
    /* A constant 20x10 colour through resize 10 + crop 8 stays that colour. */
    unsigned char cst[20 * 10 * 3];
    for (int k = 0; k < 200; k++) {
        cst[3 * k] = 250;
        cst[3 * k + 1] = 3;
        cst[3 * k + 2] = 128;
    }
    write_png(P("rs/val/a/const.png"), 20, 10, PNG_COLOR_TYPE_RGB, 8, cst);

    tr_imagefolder *f = open_ok(P("rs"), 8, 8, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    float out[3 * 64];
    if (decode_ok(f, 0, "up.png", NULL, out)) {
        /* Reference: PyTorch upsample_bilinear2d, align_corners=False: src = (dst + 0.5) / 2 - 0.5, clamped at 0. */
        int bad = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++) {
                    double sy = fmax((y + 0.5) / 2 - 0.5, 0), sx = fmax((x + 0.5) / 2 - 0.5, 0);
                    int y0 = (int)sy, x0 = (int)sx, y1 = y0 < 3 ? y0 + 1 : 3, x1 = x0 < 3 ? x0 + 1 : 3;
                    double ly = sy - y0, lx = sx - x0;
#define U(yy, xx) up[((yy) * 4 + (xx)) * 3 + c]
                    double want = ((1 - ly) * ((1 - lx) * U(y0, x0) + lx * U(y0, x1)) + ly * ((1 - lx) * U(y1, x0) + lx * U(y1, x1))) / 255;
#undef U
                    bad += fabs(out[(c * 8 + y) * 8 + x] - want) > 1e-5;
                }
        CU_ASSERT_EQUAL(bad, 0);
    }
    if (decode_ok(f, 0, "checker.png", NULL, out)) {
        /* 3x down: plain bilinear would sample single columns (0 or 1); the widened triangle averages
         * weights 1/3 2/3 1 2/3 1/3 over columns 3x-1 .. 3x+3: 5/9 or 4/9 inside the image. */
        int bad = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 8; y++)
                for (int x = 1; x < 7; x++) bad += fabs(out[(c * 8 + y) * 8 + x] - ((3 * x + 1) % 2 ? 4.0 / 9 : 5.0 / 9)) > 1e-5;
        CU_ASSERT_EQUAL(bad, 0);
    }
    if (decode_ok(f, 1, "ramp.png", NULL, out)) {
        /* 2x down of a linear ramp: symmetric weights give the mean of the pair, 20 i + 10, away from the edges. */
        int bad = 0;
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                if (x >= 1 && x <= 6) bad += fabs(out[y * 8 + x] - (20 * x + 10) / 255.0) > 1e-5;
                if (y >= 1 && y <= 6) bad += fabs(out[64 + y * 8 + x] - (20 * y + 10) / 255.0) > 1e-5;
                bad += fabs(out[128 + y * 8 + x] - 77 / 255.0) > 1e-5;
            }
        CU_ASSERT_EQUAL(bad, 0);
        /* PIL's edge weights (0.75, 0.75, 0.25 over pixels 0..2): (3.75 + 11.25 + 6.25) / 1.75. */
        CU_ASSERT_DOUBLE_EQUAL(out[3 * 8], 21.25 / 1.75 / 255.0, 1e-5);
    }
    tr_imagefolder_free(f);
    f = open_ok(P("rs"), 8, 10, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (decode_ok(f, 1, "const.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 8, 1e-5, (c == 0 ? 250 : c == 1 ? 3 : 128) / 255.0), 0);
    tr_imagefolder_free(f);
}

static void test_jpeg(void)
{
    mkdirs(P("jpg/train/a"));
    mkdirs(P("jpg/val/a"));
    const int W = 40, H = 30;
    unsigned char *rgb = malloc((size_t)W * H * 4);
    for (int k = 0; k < W * H; k++) {
        rgb[3 * k] = 200;
        rgb[3 * k + 1] = 100;
        rgb[3 * k + 2] = 50;
    }
    write_jpeg(P("jpg/train/a/c420.jpg"), W, H, rgb, TJPF_RGB, TJSAMP_420, 95);
    write_jpeg(P("jpg/train/a/c444.JPEG"), W, H, rgb, TJPF_RGB, TJSAMP_444, 90);
    write_jpeg(P("jpg/train/a/is_jpeg.png"), W, H, rgb, TJPF_RGB, TJSAMP_444, 90); /* the magic bytes decide */
    for (int k = 0; k < W * H * 3; k++) rgb[k] = 90;
    write_jpeg(P("jpg/train/a/grey.jpg"), W, H, rgb, TJPF_RGB, TJSAMP_GRAY, 95);
    for (int k = 0; k < W * H; k++) { /* Adobe CMYK (YCCK): R = C' K' / 255 as PIL converts it */
        rgb[4 * k] = 200;
        rgb[4 * k + 1] = 150;
        rgb[4 * k + 2] = 100;
        rgb[4 * k + 3] = 128;
    }
    write_jpeg(P("jpg/val/a/cmyk.jpg"), W, H, rgb, TJPF_CMYK, TJSAMP_444, 95);
    unsigned char *pp = pattern(16, 16);
    write_png(P("jpg/val/a/is_png.jpg"), 16, 16, PNG_COLOR_TYPE_RGB, 8, pp);
    free(pp);
    free(rgb);

    tr_imagefolder *f = open_ok(P("jpg"), 16, 0, 0, 0); /* resize 0 = round(16 * 8 / 7) = 18: a real downscale + crop */
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    float out[3 * 256];
    const double tol = 3 / 255.0;
    if (decode_ok(f, 0, "c420.jpg", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 16, tol, (c == 0 ? 200 : c == 1 ? 100 : 50) / 255.0), 0);
    if (decode_ok(f, 0, "c444.JPEG", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 16, tol, (c == 0 ? 200 : c == 1 ? 100 : 50) / 255.0), 0);
    if (decode_ok(f, 0, "is_jpeg.png", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 16, tol, (c == 0 ? 200 : c == 1 ? 100 : 50) / 255.0), 0);
    if (decode_ok(f, 0, "grey.jpg", NULL, out)) {
        CU_ASSERT_EQUAL(COUNT_BAD(out, 16, tol, 90 / 255.0), 0);
        for (int k = 0; k < 256; k++) CU_ASSERT(out[k] == out[256 + k] && out[k] == out[512 + k]);
    }
    if (decode_ok(f, 1, "cmyk.jpg", NULL, out))
        CU_ASSERT_EQUAL(COUNT_BAD(out, 16, tol, (c == 0 ? 200 : c == 1 ? 150 : 100) * 128 / 255.0 / 255.0), 0);
    tr_imagefolder_free(f);
    f = open_ok(P("jpg"), 16, 16, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (decode_ok(f, 1, "is_png.jpg", NULL, out)) CU_ASSERT_EQUAL(COUNT_BAD(out, 16, 1e-7, pix(x, y, c) / 255.0f), 0);
    tr_imagefolder_free(f);
}

static int is_mirror(const float *a, const float *b, int size)
{
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                if (a[(c * size + y) * size + x] != b[(c * size + y) * size + size - 1 - x]) return 0;
    return 1;
}

static void test_random_crop(void)
{
    mkdirs(P("rrc/train/a"));
    mkdirs(P("rrc/val"));
    /* 40x30 left-right gradient: R = 6x, G = 100, B = 255 - 6x. */
    const int W = 40, H = 30, S = 16;
    unsigned char g[40 * 30 * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            g[(y * W + x) * 3] = (unsigned char)(6 * x);
            g[(y * W + x) * 3 + 1] = 100;
            g[(y * W + x) * 3 + 2] = (unsigned char)(255 - 6 * x);
        }
    write_png(P("rrc/train/a/grad.png"), W, H, PNG_COLOR_TYPE_RGB, 8, g);
    unsigned char *sq = pattern(S, S);
    write_png(P("rrc/train/a/square.png"), S, S, PNG_COLOR_TYPE_RGB, 8, sq);
    free(sq);

    tr_imagefolder *f0 = open_ok(P("rrc"), S, 0, 0, 0), *f1 = open_ok(P("rrc"), S, 0, 0, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f1);
    int ig = find(f0, 0, "grad.png");
    CU_ASSERT_FATAL(ig >= 0);
    float a[3 * 256], b[3 * 256], first[3 * 256];
    int distinct = 0, mirrored = 0, same = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        pinas_rng r1 = {seed}, r2 = {seed};
        CU_ASSERT_EQUAL_FATAL(tr_imagefolder_image(ctx, f0, 0, ig, &r1, a), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(tr_imagefolder_image(ctx, f0, 0, ig, &r2, b), PINAS_OK);
        CU_ASSERT(memcmp(a, b, sizeof a) == 0); /* same seed, same output */
        CU_ASSERT_EQUAL(r1.s, r2.s);
        if (seed == 1) memcpy(first, a, sizeof a);
        else distinct += memcmp(first, a, sizeof a) != 0;
        /* The content of any crop of the gradient: columns constant, R rising, G constant, R + B = 1. */
        int bad = 0;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int k = y * S + x;
                bad += fabs(a[k] - a[x]) > 1e-5;
                bad += x > 0 && a[k] < a[k - 1] - 1e-6;
                bad += fabs(a[256 + k] - 100 / 255.0) > 1e-5;
                bad += fabs(a[k] + a[512 + k] - 1) > 1e-5;
            }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(a[S - 1] > a[0]); /* a crop is at least 3/4 * sqrt(0.08) of the width, never one column */
        /* With flip on, the same seed draws the same crop, then flips or not. */
        pinas_rng r3 = {seed};
        CU_ASSERT_EQUAL_FATAL(tr_imagefolder_image(ctx, f1, 0, ig, &r3, b), PINAS_OK);
        if (memcmp(a, b, sizeof a) == 0) same++;
        else if (is_mirror(a, b, S)) mirrored++;
    }
    CU_ASSERT(distinct >= 30);
    CU_ASSERT(same > 5);
    CU_ASSERT(mirrored > 5);
    CU_ASSERT_EQUAL(same + mirrored, 40);
    tr_imagefolder_free(f0);
    tr_imagefolder_free(f1);

    /* scale_min = 1 on a square image: every try fails or takes the whole image, so the crop is the identity. */
    tr_imagefolder *f = open_ok(P("rrc"), S, 0, 1.0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        pinas_rng r = {seed};
        if (decode_ok(f, 0, "square.png", &r, a)) CU_ASSERT_EQUAL(COUNT_BAD(a, S, 1e-7, pix(x, y, c) / 255.0f), 0);
    }
    tr_imagefolder_free(f);
}

/* Several threads decoding the same folder, each with its own context, agree with a serial run. */
typedef struct {
    const tr_imagefolder *f;
    float *out;
    int fails;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *t = p;
    pinas_ctx *c = pinas_ctx_create();
    int n = tr_imagefolder_count(t->f, 0);
    for (int rep = 0; rep < 4; rep++)
        for (int i = 0; i < n; i++) {
            pinas_rng r = {(uint64_t)i + 1};
            t->fails += tr_imagefolder_image(c, t->f, 0, i, NULL, t->out + (size_t)(2 * i) * 3 * 64) != PINAS_OK;
            t->fails += tr_imagefolder_image(c, t->f, 0, i, &r, t->out + (size_t)(2 * i + 1) * 3 * 64) != PINAS_OK;
        }
    pinas_ctx_free(c);
    return NULL;
}

static void test_threads(void)
{
    tr_imagefolder *f = open_ok(P("jpg"), 8, 0, 0, 1); /* written by test_jpeg */
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int n = tr_imagefolder_count(f, 0);
    CU_ASSERT_FATAL(n >= 4);
    size_t per = (size_t)2 * n * 3 * 64;
    float *ref = malloc(per * sizeof *ref);
    thr_arg serial = {f, ref, 0};
    thr_main(&serial);
    CU_ASSERT_EQUAL(serial.fails, 0);
    pthread_t th[4];
    thr_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (thr_arg){f, malloc(per * sizeof(float)), 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, thr_main, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        CU_ASSERT_EQUAL(args[t].fails, 0);
        CU_ASSERT(memcmp(args[t].out, ref, per * sizeof(float)) == 0);
        free(args[t].out);
    }
    free(ref);
    tr_imagefolder_free(f);
}

/* Decoding item `name` of bad/train/a must fail with a message naming the file and containing needle. */
static void expect_decode_err(const tr_imagefolder *f, const char *name, const char *needle)
{
    int i = find(f, 0, name);
    CU_ASSERT_FATAL(i >= 0);
    float out[3 * 64];
    pinas_rng r = {1};
    for (int t = 0; t < 2; t++) {
        pinas_status s = tr_imagefolder_image(ctx, f, 0, i, t ? &r : NULL, out);
        TU_ASSERT_ERR(ctx, s, tr_imagefolder_path(f, 0, i));
        TU_ASSERT_ERR(ctx, s, needle);
    }
}

static void test_decode_errors(void)
{
    mkdirs(P("bad/train/a"));
    mkdirs(P("bad/val"));
    /* Noise, so that half of each file ends inside the pixel data. */
    unsigned char *noise = malloc(64 * 64 * 3);
    uint64_t st = 7;
    for (int k = 0; k < 64 * 64 * 3; k++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        noise[k] = (unsigned char)(st >> 56);
    }
    write_png(P("bad/full.png"), 64, 64, PNG_COLOR_TYPE_RGB, 8, noise);
    write_half(P("bad/full.png"), P("bad/train/a/trunc.png"));
    write_jpeg(P("bad/full.jpg"), 64, 64, noise, TJPF_RGB, TJSAMP_420, 90);
    write_half(P("bad/full.jpg"), P("bad/train/a/trunc.jpg"));
    free(noise);
    /* A flipped byte in the middle of the PNG's IDAT: its CRC fails. */
    size_t n;
    unsigned char *b = read_bytes(P("bad/full.png"), &n);
    b[n / 2] ^= 0x55;
    write_bytes(P("bad/train/a/crc.png"), b, n);
    free(b);
    tu_write(P("bad/train/a/garbage.jpg"), "this is not an image at all");
    tu_write(P("bad/train/a/empty.png"), "");
    write_bytes(P("bad/train/a/header.jpg"), "\xff\xd8\xff\xe0 definitely not JFIF", 24);
    unsigned char *wide = calloc(40000 * 3, 1);
    write_png(P("bad/train/a/wide.png"), 40000, 1, PNG_COLOR_TYPE_RGB, 8, wide);
    free(wide);
    tu_write(P("bad/train/a/gone.png"), "x");

    tr_imagefolder *f = open_ok(P("bad"), 8, 0, 0, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(unlink(P("bad/train/a/gone.png")), 0); /* removed after the scan */
    expect_decode_err(f, "trunc.png", "truncated PNG");
    expect_decode_err(f, "trunc.jpg", "truncated JPEG");
    expect_decode_err(f, "crc.png", "CRC");
    expect_decode_err(f, "garbage.jpg", "not a JPEG or PNG image (starts with bytes 74 68 69 73");
    expect_decode_err(f, "empty.png", "empty file");
    expect_decode_err(f, "header.jpg", "corrupt JPEG");
    expect_decode_err(f, "wide.png", "40000x1");
    expect_decode_err(f, "gone.png", "cannot open");
    tr_imagefolder_free(f);
}

static void open_err(const char *root, int size, int resize, double smin, const char *needle1, const char *needle2)
{
    tr_imagefolder_opts o = {.root = root, .size = size, .resize = resize, .scale_min = smin};
    tr_imagefolder *f = (tr_imagefolder *)&o; /* must be reset to NULL */
    pinas_status s = tr_imagefolder_open(ctx, &o, &f);
    TU_ASSERT_ERR(ctx, s, needle1);
    if (needle2) TU_ASSERT_ERR(ctx, s, needle2);
    CU_ASSERT_PTR_NULL(f);
    tr_imagefolder_free(f);
}

static void test_open_errors(void)
{
    char want[1200];
    open_err(P("nothing_here"), 8, 0, 0, P("nothing_here"), "cannot open");
    mkdirs(P("e1/train/a"));
    tu_write(P("e1/train/a/x.png"), "x");
    open_err(P("e1"), 8, 0, 0, P("e1/val"), "cannot open"); /* missing ROOT/val */
    mkdirs(P("e2/val/a"));
    open_err(P("e2"), 8, 0, 0, P("e2/train"), "cannot open"); /* missing ROOT/train */
    mkdirs(P("e3/train"));
    mkdirs(P("e3/val"));
    tu_write(P("e3/train/x.png"), "x");
    mkdirs(P("e3/train/.git"));
    open_err(P("e3"), 8, 0, 0, P("e3/train"), "no class sub-directories");
    mkdirs(P("e4/train/cat"));
    mkdirs(P("e4/train/dog"));
    mkdirs(P("e4/val"));
    tu_write(P("e4/train/dog/d.png"), "x");
    tu_write(P("e4/train/cat/readme.txt"), "x");
    tu_write(P("e4/train/cat/.x.png"), "x");
    snprintf(want, sizeof want, "%s: empty class folder (no .jpg/.jpeg/.png file)", P("e4/train/cat"));
    open_err(P("e4"), 8, 0, 0, want, NULL);
    mkdirs(P("e5/train/cat"));
    mkdirs(P("e5/val/cat"));
    mkdirs(P("e5/val/zebra"));
    tu_write(P("e5/train/cat/c.png"), "x");
    tu_write(P("e5/val/cat/c.png"), "x");
    tu_write(P("e5/val/zebra/z.png"), "x");
    snprintf(want, sizeof want, "%s: class not in %s", P("e5/val/zebra"), P("e5/train"));
    open_err(P("e5"), 8, 0, 0, want, NULL);
    mkdirs(P("e6/train/cat"));
    mkdirs(P("e6/val/cat"));
    tu_write(P("e6/train/cat/c.png"), "x");
    snprintf(want, sizeof want, "%s: empty class folder", P("e6/val/cat"));
    open_err(P("e6"), 8, 0, 0, want, NULL); /* an empty val class is an error too */
    tu_write(P("e7"), "a file");
    open_err(P("e7"), 8, 0, 0, P("e7"), "not a directory");
    /* Options. */
    open_err(P("e6"), 0, 0, 0, "output size 0", NULL);
    open_err(P("e6"), 8, 7, 0, "evaluation resize 7", NULL);
    open_err(P("e6"), 8, 0, 1.5, "scale_min 1.5", NULL);
    open_err(NULL, 8, 0, 0, "no root directory", NULL);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    const tu_test tests[] = {
        {"scan: sorted classes and files, labels, hidden/non-image files ignored", test_scan},
        {"PNG: RGB, interlaced, grey 4/8/16, RGBA, RGB16, palette; exact values and centre crop", test_png_exact},
        {"resize: half-pixel bilinear up, antialiased down", test_resize},
        {"JPEG: constant colours (420, 444, grey, CMYK), magic bytes decide", test_jpeg},
        {"random-resized crop: seeded, content-preserving, flip mirrors", test_random_crop},
        {"threads decode concurrently and agree with a serial run", test_threads},
        {"decode errors name the file: truncated, CRC, garbage, empty, huge, missing", test_decode_errors},
        {"open errors name the path: missing dirs, empty class, unknown val class, options", test_open_errors},
    };
    int rc = tu_run("train_imagefolder", tests, (int)(sizeof tests / sizeof tests[0]));
    pinas_ctx_free(ctx);
    return rc;
}
