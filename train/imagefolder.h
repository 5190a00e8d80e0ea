/* Image-folder datasets: ROOT/train/CLASS/FILE and ROOT/val/CLASS/FILE, JPEG (libturbojpeg) and PNG (libpng), decoded on demand. */
#ifndef PINAS_TRAIN_IMAGEFOLDER_H
#define PINAS_TRAIN_IMAGEFOLDER_H

#include "train_internal.h"

typedef struct tr_imagefolder tr_imagefolder;

typedef struct {
    const char *root;     /* ROOT (copied by open) */
    int size;             /* output images are 3 x size x size, 1..32768 */
    int resize;           /* evaluation: the shorter side is resized to this, then a centre crop of size; 0 = round(size * 8 / 7)
                           * (256 for 224); must be >= size */
    double scale_min;     /* training: random-resized crop area fraction in [scale_min, 1] (torchvision's 0.08 by default when 0) */
    int flip;             /* training: horizontal flip with probability 1/2 */
} tr_imagefolder_opts;

/* Scans ROOT/train and ROOT/val. Classes = the sub-directories of ROOT/train sorted by name (strcmp); label = index.
 * Files are every regular file (symbolic links followed) directly in a class dir whose name ends .jpg/.jpeg/.png
 * (case-insensitive), sorted by name (strcmp); items are ordered class by class. Other files, anything whose name
 * starts with '.', and sub-directories of class dirs are ignored. Errors (each naming the path): ROOT, ROOT/train or
 * ROOT/val missing; no class dirs; a class dir with no image ("ROOT/train/cat: empty class folder (no .jpg/.jpeg/.png
 * file)"); a class in val that is not in train ("ROOT/val/zebra: class not in ROOT/train"); val may lack a class of
 * train. Opens no image file: corruption is found at decode time. *out is new; free with tr_imagefolder_free. */
pinas_status tr_imagefolder_open(pinas_ctx *ctx, const tr_imagefolder_opts *o, tr_imagefolder **out) PINAS_WUR;
/* tr_imagefolder_free(NULL) is a no-op. */
void tr_imagefolder_free(tr_imagefolder *f);
/* Number of items of a set (0 = train, 1 = val); 0 for another set. */
int tr_imagefolder_count(const tr_imagefolder *f, int set);
int tr_imagefolder_num_classes(const tr_imagefolder *f);
/* Name of class k (its directory name); NULL when out of range. Borrowed. */
const char *tr_imagefolder_class_name(const tr_imagefolder *f, int k);
/* Label of item i of a set; -1 when out of range. */
int tr_imagefolder_label(const tr_imagefolder *f, int set, int i);
/* Full path of item i of a set ("ROOT/train/<class>/<file>"); NULL when out of range. Borrowed. */
const char *tr_imagefolder_path(const tr_imagefolder *f, int set, int i);

/* Decodes item i of set into out: 3 x size x size floats in [0, 1], CHW, RGB (grey and palette images expanded to
 * RGB, alpha dropped, 16-bit PNG reduced to its high byte as PIL does, CMYK/YCCK JPEG converted as PIL does).
 * The format is told by the magic bytes, not the extension.
 * rng == NULL: the evaluation transform (torchvision Resize(resize) + CenterCrop(size): the shorter side resized to
 * `resize`, the longer to floor(resize * long / short), centre crop at round-half-even offsets).
 * rng != NULL: torchvision RandomResizedCrop(size, scale=(scale_min, 1), ratio=(3/4, 4/3)) (up to 10 tries, then the
 * centre-crop fallback), then a horizontal flip with probability 1/2 when o->flip.
 * Resampling is PIL's bilinear: a separable triangle filter with half-pixel centres (align_corners=False) that
 * widens when downscaling (antialiased, i.e. area-like averaging); an identity resize copies exactly.
 * Errors name the file: unreadable, not a JPEG/PNG, corrupt or truncated data (a JPEG that decodes with a
 * non-fatal libjpeg warning other than premature end of data is accepted, as PIL does), a side of 0 or > 32768.
 * Thread-safe for different out buffers and contexts (no shared state). */
pinas_status tr_imagefolder_image(pinas_ctx *ctx, const tr_imagefolder *f, int set, int i, pinas_rng *rng, float *out) PINAS_WUR;

#endif
