/* Image-folder datasets: scanning ROOT/{train,val}/<class>/, decoding JPEG/PNG, and torchvision's crop/resize transforms. */
#define _GNU_SOURCE
#include "imagefolder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#define IF_MAX_SIDE 32768

/* The items of one set: full paths packed in one arena (offsets stay valid when it grows). */
typedef struct {
    char *arena;
    size_t len, cap;
    size_t *off;
    int *label;
    int n, cap_n;
} if_set;

struct tr_imagefolder {
    char *root;
    int size, resize, flip;
    double scale_min;
    char **classes; /* sorted by strcmp */
    int num_classes;
    if_set set[2];
};

/* ---------------------------------------------------------------- scanning */

typedef struct {
    char **v;
    int n, cap;
} strvec;

static int sv_push(strvec *s, const char *x)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(x))) return -1;
    s->n++;
    return 0;
}

static void sv_free(strvec *s)
{
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

/* Lists the non-hidden sub-directories (want_dirs) or image files (!want_dirs) of dir, sorted by strcmp.
 * d_type saves a stat per file (1.28 M of them for ImageNet); links and unknown types are stat'ed. */
static pinas_status list_dir(pinas_ctx *ctx, const char *dir, int want_dirs, strvec *out)
{
    DIR *d = opendir(dir);
    if (!d) return pinas_error(ctx, PINAS_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    pinas_status s = PINAS_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) s = pinas_error(ctx, PINAS_EIO, "%s: cannot read directory: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !has_image_ext(e->d_name)) continue;
        int is_dir = e->d_type == DT_DIR, is_reg = e->d_type == DT_REG;
        if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
            char *p = pinas_path_join(dir, e->d_name);
            struct stat st;
            if (!p) {
                s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory", dir);
                break;
            }
            if (stat(p, &st) == 0) { /* a dangling link is neither */
                is_dir = S_ISDIR(st.st_mode);
                is_reg = S_ISREG(st.st_mode);
            }
            free(p);
        }
        if (want_dirs ? !is_dir : !is_reg) continue;
        if (sv_push(out, e->d_name)) {
            s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory listing the directory", dir);
            break;
        }
    }
    closedir(d);
    if (s == PINAS_OK && out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return s;
}

static int set_add(if_set *st, const char *dir, const char *name, int label)
{
    size_t need = strlen(dir) + 1 + strlen(name) + 1;
    if (st->len + need > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (st->len + need > cap) cap *= 2;
        char *a = realloc(st->arena, cap);
        if (!a) return -1;
        st->arena = a;
        st->cap = cap;
    }
    if (st->n == st->cap_n) {
        if (st->n == INT_MAX) return -1;
        int cap = st->cap_n ? (st->cap_n > INT_MAX / 2 ? INT_MAX : st->cap_n * 2) : 1024;
        size_t *off = realloc(st->off, (size_t)cap * sizeof *off);
        if (!off) return -1;
        st->off = off;
        int *lab = realloc(st->label, (size_t)cap * sizeof *lab);
        if (!lab) return -1;
        st->label = lab;
        st->cap_n = cap;
    }
    st->off[st->n] = st->len;
    st->label[st->n] = label;
    st->n++;
    st->len += (size_t)sprintf(st->arena + st->len, "%s/%s", dir, name) + 1;
    return 0;
}

/* Adds the images of setdir/cname with the given label. */
static pinas_status scan_class(pinas_ctx *ctx, if_set *st, const char *setdir, const char *cname, int label)
{
    char *dir = pinas_path_join(setdir, cname);
    if (!dir) return pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory", setdir);
    strvec files = {0};
    pinas_status s = list_dir(ctx, dir, 0, &files);
    if (s == PINAS_OK && files.n == 0) s = pinas_error(ctx, PINAS_EFORMAT, "%s: empty class folder (no .jpg/.jpeg/.png file)", dir);
    for (int i = 0; s == PINAS_OK && i < files.n; i++)
        if (set_add(st, dir, files.v[i], label))
            s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory (or more than %d images)", dir, INT_MAX);
    sv_free(&files);
    free(dir);
    return s;
}

static pinas_status need_dir(pinas_ctx *ctx, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return pinas_error(ctx, PINAS_EIO, "%s: cannot open: %s (an image folder needs ROOT/train/<class>/ and ROOT/val/<class>/)", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return pinas_error(ctx, PINAS_EIO, "%s: not a directory", path);
    return PINAS_OK;
}

pinas_status tr_imagefolder_open(pinas_ctx *ctx, const tr_imagefolder_opts *o, tr_imagefolder **out)
{
    if (out) *out = NULL;
    if (!o || !out || !o->root || !o->root[0]) return pinas_error(ctx, PINAS_EINVAL, "imagefolder: no root directory given");
    if (o->size < 1 || o->size > IF_MAX_SIDE) return pinas_error(ctx, PINAS_EINVAL, "imagefolder %s: output size %d is not in 1..%d", o->root, o->size, IF_MAX_SIDE);
    int resize = o->resize ? o->resize : (int)lround(o->size * 8.0 / 7.0);
    if (resize < o->size || resize > 4 * IF_MAX_SIDE)
        return pinas_error(ctx, PINAS_EINVAL, "imagefolder %s: evaluation resize %d must be in %d..%d (at least the crop size %d)", o->root, resize,
                           o->size, 4 * IF_MAX_SIDE, o->size);
    double smin = o->scale_min == 0 ? 0.08 : o->scale_min;
    if (!(smin > 0 && smin <= 1)) return pinas_error(ctx, PINAS_EINVAL, "imagefolder %s: scale_min %g is not in (0, 1]", o->root, o->scale_min);

    tr_imagefolder *f = calloc(1, sizeof *f);
    if (!f || !(f->root = strdup(o->root))) {
        free(f);
        return pinas_error(ctx, PINAS_ENOMEM, "imagefolder %s: out of memory", o->root);
    }
    for (size_t l = strlen(f->root); l > 1 && f->root[l - 1] == '/'; l--) f->root[l - 1] = 0;
    f->size = o->size;
    f->resize = resize;
    f->scale_min = smin;
    f->flip = o->flip != 0;

    char *train = pinas_path_join(f->root, "train"), *val = pinas_path_join(f->root, "val");
    strvec cls = {0}, vcls = {0};
    pinas_status s = (train && val) ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "imagefolder %s: out of memory", f->root);
    if (s == PINAS_OK) s = need_dir(ctx, f->root);
    if (s == PINAS_OK) s = need_dir(ctx, train);
    if (s == PINAS_OK) s = need_dir(ctx, val);
    if (s == PINAS_OK) s = list_dir(ctx, train, 1, &cls);
    if (s == PINAS_OK && cls.n == 0) s = pinas_error(ctx, PINAS_EFORMAT, "%s: no class sub-directories", train);
    if (s == PINAS_OK) s = list_dir(ctx, val, 1, &vcls);
    /* Checked before the (long) scan of the training files. */
    int *vlab = s == PINAS_OK ? calloc((size_t)vcls.n + 1, sizeof *vlab) : NULL;
    if (s == PINAS_OK && !vlab) s = pinas_error(ctx, PINAS_ENOMEM, "imagefolder %s: out of memory", f->root);
    for (int v = 0; s == PINAS_OK && v < vcls.n; v++) {
        char **hit = bsearch(&vcls.v[v], cls.v, (size_t)cls.n, sizeof *cls.v, cmp_str);
        if (!hit) s = pinas_error(ctx, PINAS_EFORMAT, "%s/%s: class not in %s", val, vcls.v[v], train);
        else vlab[v] = (int)(hit - cls.v);
    }
    for (int k = 0; s == PINAS_OK && k < cls.n; k++) s = scan_class(ctx, &f->set[0], train, cls.v[k], k);
    for (int v = 0; s == PINAS_OK && v < vcls.n; v++) s = scan_class(ctx, &f->set[1], val, vcls.v[v], vlab[v]);
    free(vlab);
    sv_free(&vcls);
    f->classes = cls.v; /* owned by f from here on, freed with it */
    f->num_classes = cls.n;
    free(train);
    free(val);
    if (s != PINAS_OK) {
        tr_imagefolder_free(f);
        return s;
    }
    *out = f;
    return PINAS_OK;
}

void tr_imagefolder_free(tr_imagefolder *f)
{
    if (!f) return;
    for (int k = 0; k < f->num_classes; k++) free(f->classes[k]);
    free(f->classes);
    for (int t = 0; t < 2; t++) {
        free(f->set[t].arena);
        free(f->set[t].off);
        free(f->set[t].label);
    }
    free(f->root);
    free(f);
}

int tr_imagefolder_count(const tr_imagefolder *f, int set) { return f && (set == 0 || set == 1) ? f->set[set].n : 0; }

int tr_imagefolder_num_classes(const tr_imagefolder *f) { return f ? f->num_classes : 0; }

const char *tr_imagefolder_class_name(const tr_imagefolder *f, int k) { return f && k >= 0 && k < f->num_classes ? f->classes[k] : NULL; }

int tr_imagefolder_label(const tr_imagefolder *f, int set, int i)
{
    return i >= 0 && i < tr_imagefolder_count(f, set) ? f->set[set].label[i] : -1;
}

const char *tr_imagefolder_path(const tr_imagefolder *f, int set, int i)
{
    return i >= 0 && i < tr_imagefolder_count(f, set) ? f->set[set].arena + f->set[set].off[i] : NULL;
}

/* ---------------------------------------------------------------- decoding */

/* A decoded image: packed RGB, 8 bits per sample. */
typedef struct {
    unsigned char *px;
    int w, h;
} if_img;

static pinas_status read_file(pinas_ctx *ctx, const char *path, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pinas_error(ctx, PINAS_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pinas_error(ctx, PINAS_EIO, "%s: not a readable regular file", path);
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return pinas_error(ctx, PINAS_EIO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break; /* shrank while reading: decode what is there */
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = got;
    return PINAS_OK;
}

static int contains_ci(const char *hay, const char *needle) { return hay && strcasestr(hay, needle) != NULL; }

static pinas_status bad_dims(pinas_ctx *ctx, const char *path, const char *kind, long w, long h)
{
    return pinas_error(ctx, PINAS_EFORMAT, "%s: %s image is %ldx%ld; each side must be 1..%d", path, kind, w, h, IF_MAX_SIDE);
}

static pinas_status decode_jpeg(pinas_ctx *ctx, const char *path, const unsigned char *buf, size_t len, if_img *im)
{
    if (len > ULONG_MAX) return pinas_error(ctx, PINAS_EFORMAT, "%s: JPEG file too large", path);
    tjhandle tj = tjInitDecompress();
    if (!tj) return pinas_error(ctx, PINAS_ENOMEM, "%s: cannot start the JPEG decoder: %s", path, tjGetErrorStr2(NULL));
    pinas_status s = PINAS_OK;
    int w = 0, h = 0, sub = 0, cs = 0;
    unsigned char *px = NULL;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &sub, &cs) != 0) {
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: corrupt JPEG: %s", path, tjGetErrorStr2(tj));
        goto done;
    }
    if (w < 1 || h < 1) { /* a header cut short can parse "successfully" with a warning and no size */
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: corrupt JPEG: no image size in the header (%s)", path, tjGetErrorStr2(tj));
        goto done;
    }
    if (w > IF_MAX_SIDE || h > IF_MAX_SIDE) {
        s = bad_dims(ctx, path, "JPEG", w, h);
        goto done;
    }
    /* libjpeg cannot convert CMYK to RGB; take CMYK and convert below. */
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    size_t npix = (size_t)w * (size_t)h;
    px = malloc(npix * (cmyk ? 4 : 3));
    if (!px) {
        s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory for a %dx%d image", path, w, h);
        goto done;
    }
    if (tjDecompress2(tj, buf, (unsigned long)len, px, w, 0, h, cmyk ? TJPF_CMYK : TJPF_RGB, 0) != 0) {
        const char *msg = tjGetErrorStr2(tj);
        /* Warnings such as "extraneous bytes before marker" leave a complete image (PIL accepts those); a
         * premature end leaves grey where data is missing. */
        if (tjGetErrorCode(tj) == TJERR_FATAL || contains_ci(msg, "premature end")) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: corrupt or truncated JPEG: %s", path, msg);
            goto done;
        }
    }
    if (cmyk) /* Adobe's inverted CMYK as PIL converts it: R = C' * K' / 255; in place, front to back */
        for (size_t p = 0; p < npix; p++) {
            unsigned c = px[4 * p], m = px[4 * p + 1], y = px[4 * p + 2], k = px[4 * p + 3];
            px[3 * p] = (unsigned char)((c * k + 127) / 255);
            px[3 * p + 1] = (unsigned char)((m * k + 127) / 255);
            px[3 * p + 2] = (unsigned char)((y * k + 127) / 255);
        }
    im->px = px;
    im->w = w;
    im->h = h;
    px = NULL;
done:
    free(px);
    tjDestroy(tj);
    return s;
}

/* libpng state. Everything that changes between setjmp and longjmp lives here, outside png_run's frame. */
typedef struct {
    const unsigned char *buf;
    size_t len, pos;
    png_structp png;
    png_infop info;
    unsigned char *px;
    png_bytep *rows;
    png_uint_32 w, h;
    int channels;
    char msg[200];
} png_job;

static void png_err_fn(png_structp png, png_const_charp msg)
{
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg)
{
    (void)png; /* e.g. "iCCP: known incorrect sRGB profile": harmless, and the library never prints */
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep data, size_t n)
{
    png_job *j = png_get_io_ptr(png);
    if (n > j->len - j->pos) png_error(png, "unexpected end of file (truncated)");
    memcpy(data, j->buf + j->pos, n);
    j->pos += n;
}

/* 0: ok; 1: libpng error (j->msg); 2: bad dimensions; 3: out of memory. */
static int png_run(png_job *j)
{
    if (setjmp(png_jmpbuf(j->png))) return 1;
    png_set_read_fn(j->png, j, png_read_mem);
    png_read_info(j->png, j->info);
    j->w = png_get_image_width(j->png, j->info);
    j->h = png_get_image_height(j->png, j->info);
    if (j->w < 1 || j->h < 1 || j->w > IF_MAX_SIDE || j->h > IF_MAX_SIDE) return 2;
    int ct = png_get_color_type(j->png, j->info);
    png_set_expand(j->png); /* palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha (dropped below) */
    if (png_get_bit_depth(j->png, j->info) == 16) png_set_strip_16(j->png); /* the high byte, as PIL */
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(j->png);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    j->channels = png_get_channels(j->png, j->info);
    size_t rb = png_get_rowbytes(j->png, j->info);
    if ((j->channels != 3 && j->channels != 4) || png_get_bit_depth(j->png, j->info) != 8 || rb != (size_t)j->w * (size_t)j->channels)
        png_error(j->png, "unsupported PNG layout");
    j->px = malloc(rb * j->h);
    j->rows = malloc(j->h * sizeof *j->rows);
    if (!j->px || !j->rows) return 3;
    for (png_uint_32 y = 0; y < j->h; y++) j->rows[y] = j->px + y * rb;
    png_read_image(j->png, j->rows);
    png_read_end(j->png, NULL); /* checks the rest up to IEND: a file cut after the pixels is still truncated */
    return 0;
}

static pinas_status decode_png(pinas_ctx *ctx, const char *path, const unsigned char *buf, size_t len, if_img *im)
{
    png_job *j = calloc(1, sizeof *j);
    if (!j) return pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory", path);
    j->buf = buf;
    j->len = len;
    pinas_status s = PINAS_OK;
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_err_fn, png_warn_fn);
    if (j->png) j->info = png_create_info_struct(j->png);
    if (!j->png || !j->info) {
        s = pinas_error(ctx, PINAS_ENOMEM, "%s: cannot start the PNG decoder", path);
    } else {
        int r = png_run(j);
        if (r == 1) s = pinas_error(ctx, PINAS_EFORMAT, "%s: corrupt or truncated PNG: %s", path, j->msg);
        else if (r == 2) s = bad_dims(ctx, path, "PNG", (long)j->w, (long)j->h);
        else if (r == 3) s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory for a %lux%lu image", path, (unsigned long)j->w, (unsigned long)j->h);
    }
    if (s == PINAS_OK) {
        size_t npix = (size_t)j->w * j->h;
        if (j->channels == 4) /* drop alpha in place, front to back */
            for (size_t p = 0; p < npix; p++) memmove(j->px + 3 * p, j->px + 4 * p, 3);
        im->px = j->px;
        im->w = (int)j->w;
        im->h = (int)j->h;
        j->px = NULL;
    }
    png_destroy_read_struct(j->png ? &j->png : NULL, j->info ? &j->info : NULL, NULL);
    free(j->px);
    free(j->rows);
    free(j);
    return s;
}

static pinas_status decode(pinas_ctx *ctx, const char *path, if_img *im)
{
    unsigned char *buf;
    size_t len;
    pinas_status s = read_file(ctx, path, &buf, &len);
    if (s) return s;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) s = decode_jpeg(ctx, path, buf, len, im);
    else if (len >= 8 && !memcmp(buf, png_sig, 8)) s = decode_png(ctx, path, buf, len, im);
    else if (len == 0) s = pinas_error(ctx, PINAS_EFORMAT, "%s: empty file (expected a JPEG or PNG image)", path);
    else {
        char hex[3 * 8 + 1] = "";
        for (size_t k = 0, at = 0; k < len && k < 8; k++) at += (size_t)sprintf(hex + at, "%s%02x", k ? " " : "", buf[k]);
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: not a JPEG or PNG image (starts with bytes %s)", path, hex);
    }
    free(buf);
    return s;
}

/* ---------------------------------------------------------------- resampling */

/* Weights of a 1-D resize of input samples [in0, in0 + in_len) to out_total samples, for outputs
 * [out_first, out_first + count): PIL's bilinear, a triangle of radius max(scale, 1) input pixels around the
 * half-pixel centre (i + 0.5) * scale, normalised over the samples inside the input. */
typedef struct {
    int *lo, *n, k;
    float *w;
} if_coeffs;

static int coeffs_make(if_coeffs *c, int in0, int in_len, int out_total, int out_first, int count)
{
    double scale = (double)in_len / out_total, fs = scale > 1 ? scale : 1, support = fs;
    c->k = (int)ceil(support) * 2 + 1;
    c->lo = malloc((size_t)count * sizeof *c->lo);
    c->n = malloc((size_t)count * sizeof *c->n);
    c->w = malloc((size_t)count * (size_t)c->k * sizeof *c->w);
    if (!c->lo || !c->n || !c->w) return -1;
    for (int i = 0; i < count; i++) {
        double center = (out_first + i + 0.5) * scale, ww = 0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_len) xmax = in_len;
        if (xmax - xmin > c->k) xmax = xmin + c->k;
        float *w = c->w + (size_t)i * c->k;
        for (int x = xmin; x < xmax; x++) {
            double t = fabs((x - center + 0.5) / fs);
            w[x - xmin] = (float)(t < 1 ? 1 - t : 0);
            ww += w[x - xmin];
        }
        for (int x = 0; x < xmax - xmin; x++) w[x] = ww > 0 ? (float)(w[x] / ww) : 0;
        c->lo[i] = in0 + xmin;
        c->n[i] = xmax - xmin;
    }
    return 0;
}

static void coeffs_free(if_coeffs *c)
{
    free(c->lo);
    free(c->n);
    free(c->w);
}

/* Resamples the image through cx (columns) and cy (rows) into out, CHW size x size in [0, 1]; flip mirrors columns. */
static pinas_status resample(pinas_ctx *ctx, const char *path, const if_img *im, const if_coeffs *cx, const if_coeffs *cy, int size,
                             int flip, float *out)
{
    int r0 = cy->lo[0], r1 = cy->lo[size - 1] + cy->n[size - 1]; /* rows used: lo and lo + n never decrease */
    size_t row = (size_t)size * 3;
    float *tmp = malloc((size_t)(r1 - r0) * row * sizeof *tmp);
    if (!tmp) return pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory resizing", path);
    for (int y = r0; y < r1; y++) {
        const unsigned char *src = im->px + (size_t)y * im->w * 3;
        float *t = tmp + (size_t)(y - r0) * row;
        for (int x = 0; x < size; x++) {
            const float *w = cx->w + (size_t)x * cx->k;
            const unsigned char *p = src + (size_t)cx->lo[x] * 3;
            float a = 0, b = 0, c = 0;
            for (int k = 0; k < cx->n[x]; k++, p += 3) {
                a += w[k] * p[0];
                b += w[k] * p[1];
                c += w[k] * p[2];
            }
            t[3 * x] = a;
            t[3 * x + 1] = b;
            t[3 * x + 2] = c;
        }
    }
    size_t plane = (size_t)size * size;
    for (int y = 0; y < size; y++) {
        const float *w = cy->w + (size_t)y * cy->k;
        const float *t0 = tmp + (size_t)(cy->lo[y] - r0) * row;
        for (int x = 0; x < size; x++) {
            float acc[3] = {0, 0, 0};
            const float *t = t0 + 3 * x;
            for (int k = 0; k < cy->n[y]; k++, t += row)
                for (int ch = 0; ch < 3; ch++) acc[ch] += w[k] * t[ch];
            size_t o = (size_t)y * size + (size_t)(flip ? size - 1 - x : x);
            for (int ch = 0; ch < 3; ch++) {
                float v = acc[ch] / 255.0f;
                out[ch * plane + o] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        }
    }
    free(tmp);
    return PINAS_OK;
}

/* torchvision RandomResizedCrop.get_params with scale (smin, 1), ratio (3/4, 4/3); Python's round is half-even. */
static void random_crop(pinas_rng *rng, int W, int H, double smin, int *top, int *left, int *ch, int *cw)
{
    double area = (double)W * H, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int t = 0; t < 10; t++) {
        double ta = area * (smin + (1 - smin) * pinas_rng_unif(rng));
        double ar = exp(lr0 + (lr1 - lr0) * pinas_rng_unif(rng));
        double w = nearbyint(sqrt(ta * ar)), h = nearbyint(sqrt(ta / ar));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            *cw = (int)w;
            *ch = (int)h;
            *top = (int)pinas_rng_below(rng, (uint64_t)(H - *ch + 1));
            *left = (int)pinas_rng_below(rng, (uint64_t)(W - *cw + 1));
            return;
        }
    }
    double in_ratio = (double)W / H;
    *cw = W;
    *ch = H;
    if (in_ratio < 3.0 / 4.0) *ch = (int)nearbyint(W / (3.0 / 4.0));
    else if (in_ratio > 4.0 / 3.0) *cw = (int)nearbyint(H * (4.0 / 3.0));
    *top = (H - *ch) / 2;
    *left = (W - *cw) / 2;
}

pinas_status tr_imagefolder_image(pinas_ctx *ctx, const tr_imagefolder *f, int set, int i, pinas_rng *rng, float *out)
{
    if (!f || !out) return pinas_error(ctx, PINAS_EINVAL, "imagefolder: no folder or no output buffer");
    if (set != 0 && set != 1) return pinas_error(ctx, PINAS_EINVAL, "imagefolder %s: set %d is neither 0 (train) nor 1 (val)", f->root, set);
    if (i < 0 || i >= f->set[set].n)
        return pinas_error(ctx, PINAS_EINVAL, "imagefolder %s/%s: item %d out of range (the set has %d)", f->root, set ? "val" : "train", i, f->set[set].n);
    const char *path = tr_imagefolder_path(f, set, i);
    if_img im = {0};
    pinas_status s = decode(ctx, path, &im);
    if (s) return s;
    int W = im.w, H = im.h, size = f->size, top, left, ch, cw, flip = 0;
    if_coeffs cx = {0}, cy = {0};
    int bad;
    if (rng) {
        random_crop(rng, W, H, f->scale_min, &top, &left, &ch, &cw);
        flip = f->flip && pinas_rng_unif(rng) < 0.5;
        bad = coeffs_make(&cx, left, cw, size, 0, size) || coeffs_make(&cy, top, ch, size, 0, size);
    } else {
        /* Resize(resize): short side -> resize, long side -> int(resize * long / short); then CenterCrop(size). */
        int R = f->resize, rw, rh;
        if (W <= H) {
            rw = R;
            rh = (int)((double)((int64_t)R * H) / W);
        } else {
            rh = R;
            rw = (int)((double)((int64_t)R * W) / H);
        }
        top = (int)nearbyint((rh - size) / 2.0);
        left = (int)nearbyint((rw - size) / 2.0);
        bad = coeffs_make(&cx, 0, W, rw, left, size) || coeffs_make(&cy, 0, H, rh, top, size);
    }
    if (bad) s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory resizing", path);
    else s = resample(ctx, path, &im, &cx, &cy, size, flip, out);
    coeffs_free(&cx);
    coeffs_free(&cy);
    free(im.px);
    return s;
}
