/* IDX files (MNIST, Fashion-MNIST): gzipped or plain, read through zlib, checked record by record. */
#define _GNU_SOURCE
#include "train_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Opens path, or path + ".gz" when path does not exist (gzread reads plain files unchanged). */
static pinas_status idx_open(pinas_ctx *ctx, const char *dir, const char *base, gzFile *f, char **used)
{
    *f = NULL;
    *used = NULL;
    char *p = pinas_path_join(dir, base), *pgz = pinas_strfmt("%s/%s.gz", dir, base);
    if (!p || !pgz) {
        free(p);
        free(pgz);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    char *use = pinas_path_exists(pgz) ? pgz : pinas_path_exists(p) ? p : NULL;
    if (!use) {
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: no such file (nor %s.gz; data.path must be the directory of the IDX files)", p, base);
        free(p);
        free(pgz);
        return s;
    }
    struct stat st;
    if (stat(use, &st) != 0 || !S_ISREG(st.st_mode)) {
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: not a regular file", use);
        free(p);
        free(pgz);
        return s;
    }
    *f = gzopen(use, "rb");
    *used = pinas_strdup(use);
    free(p);
    free(pgz);
    if (!*f || !*used) {
        if (*f) gzclose(*f);
        *f = NULL;
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: cannot open: %s", *used ? *used : base, strerror(errno ? errno : ENOMEM));
        free(*used);
        *used = NULL;
        return s;
    }
    return PINAS_OK;
}

/* Reads exactly n bytes; a short read is a truncated or corrupt file. */
static pinas_status idx_read(pinas_ctx *ctx, gzFile f, const char *path, void *buf, size_t n, const char *what)
{
    uint8_t *b = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, b, chunk);
        if (got <= 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            if (got < 0 || zerr < 0)
                return pinas_error(ctx, PINAS_EFORMAT, "%s: corrupt compressed data while reading %s: %s", path, what, msg);
            return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated: the file ends inside %s", path, what);
        }
        b += got;
        n -= (size_t)got;
    }
    return PINAS_OK;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* The header: magic 0x0000 08 <ndims>, then ndims big-endian sizes. */
static pinas_status idx_header(pinas_ctx *ctx, gzFile f, const char *path, int ndims, uint32_t *dims)
{
    uint8_t h[16];
    pinas_status s = idx_read(ctx, f, path, h, 4, "the header");
    if (s) return s;
    if (h[0] != 0 || h[1] != 0 || h[2] != 0x08 || h[3] != ndims)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: not an IDX file of unsigned bytes with %d dimension%s (magic %02x %02x %02x %02x)", path,
                           ndims, ndims == 1 ? "" : "s", h[0], h[1], h[2], h[3]);
    if ((s = idx_read(ctx, f, path, h, (size_t)4 * ndims, "the header"))) return s;
    for (int k = 0; k < ndims; k++) dims[k] = be32(h + 4 * k);
    return PINAS_OK;
}

pinas_status tr_idx_load(pinas_ctx *ctx, const char *dir, const char *images, const char *labels, int limit, int num_classes,
                         tr_idx_set *out)
{
    memset(out, 0, sizeof *out);
    gzFile fi = NULL, fl = NULL;
    char *pi = NULL, *pl = NULL;
    uint32_t di[3] = {0}, dl[1] = {0};
    pinas_status s = idx_open(ctx, dir, images, &fi, &pi);
    if (!s) s = idx_open(ctx, dir, labels, &fl, &pl);
    if (!s) s = idx_header(ctx, fi, pi, 3, di);
    if (!s) s = idx_header(ctx, fl, pl, 1, dl);
    if (!s && (di[1] < 1 || di[2] < 1 || di[1] > 4096 || di[2] > 4096))
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: image size %ux%u is out of range (1..4096)", pi, di[1], di[2]);
    if (!s && di[0] != dl[0])
        s = pinas_error(ctx, PINAS_EFORMAT, "%s has %u images but %s has %u labels", pi, di[0], pl, dl[0]);
    if (!s && di[0] < 1) s = pinas_error(ctx, PINAS_EFORMAT, "%s: no images", pi);
    if (!s && di[0] > (1u << 28)) s = pinas_error(ctx, PINAS_EFORMAT, "%s: %u images is implausible (corrupt header?)", pi, di[0]);
    if (!s) {
        int n = (int)di[0];
        if (limit > 0 && limit < n) n = limit;
        size_t img = (size_t)di[1] * di[2];
        out->n = n;
        out->h = (int)di[1];
        out->w = (int)di[2];
        out->x = malloc((size_t)n * img);
        out->y = malloc((size_t)n * sizeof(int32_t));
        uint8_t *lab = malloc((size_t)n);
        if (!out->x || !out->y || !lab) s = pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory for %d images", pi, n);
        if (!s) s = idx_read(ctx, fi, pi, out->x, (size_t)n * img, "the images");
        if (!s) s = idx_read(ctx, fl, pl, lab, (size_t)n, "the labels");
        for (int i = 0; i < n && !s; i++) {
            if (lab[i] >= num_classes)
                s = pinas_error(ctx, PINAS_EFORMAT, "%s: record %d: label %d out of range (%d classes)", pl, i, lab[i], num_classes);
            out->y[i] = lab[i];
        }
        free(lab);
    }
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    free(pi);
    free(pl);
    if (s) tr_idx_set_free(out);
    return s;
}

void tr_idx_set_free(tr_idx_set *set)
{
    free(set->x);
    free(set->y);
    memset(set, 0, sizeof *set);
}
