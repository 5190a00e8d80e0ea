/* Internals shared by the train/ sources: the seeded stream, IDX reading, split names, and tnet /
 * optimizer handles for checkpoints. Files: torch_err.c (shim errors, device setup), data*.c and
 * imagefolder.c (datasets, loaders), tnet.c (nets in libtorch), loss.c, optim.c, schedule.c,
 * trainer.c (the epoch loop), checkpoint.c, run.c (models and `pinas train`). */
#ifndef PINAS_TRAIN_INTERNAL_H
#define PINAS_TRAIN_INTERNAL_H

#include "pinas_train.h"

#include <math.h>

/* Data generation, split permutations, shuffling and augmentation draw from common's pinas_rng
 * (never for secrets). */

/* A seed derived from a base seed and up to three labels, so that streams for different purposes
 * (content, split, epoch order) never overlap. */
static inline uint64_t tr_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    pinas_rng r = {seed ^ 0x5851f42d4c957f2dULL};
    uint64_t h = pinas_rng_next(&r);
    r.s ^= a * 0x9e3779b97f4a7c15ULL;
    h ^= pinas_rng_next(&r);
    r.s ^= b * 0xc2b2ae3d27d4eb4fULL;
    h ^= pinas_rng_next(&r);
    r.s ^= c * 0x165667b19e3779f9ULL;
    return h ^ pinas_rng_next(&r);
}

/* Standard normal (Box-Muller; one value per call, simple and deterministic). */
static inline double tr_rng_normal(pinas_rng *r)
{
    double u1 = pinas_rng_unif(r), u2 = pinas_rng_unif(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* One IDX image file and its label file (MNIST layout): n images of h x w bytes, labels < num_classes. */
typedef struct {
    int n, h, w;
    uint8_t *x;  /* n * h * w */
    int32_t *y;
} tr_idx_set;

/* Reads dir/images and dir/labels (each as given, or with ".gz" appended when that exists; gzip or
 * plain). limit > 0 keeps the first `limit` records. Errors name the file: missing, wrong magic,
 * counts that differ, truncated or corrupt data, a label out of range. */
pinas_status tr_idx_load(pinas_ctx *ctx, const char *dir, const char *images, const char *labels, int limit, int num_classes,
                         tr_idx_set *out) PINAS_WUR;
void tr_idx_set_free(tr_idx_set *set);

/* "train_all", "train", "val", "test" ("?" when out of range): the split's name in logs and meta.json. Static string. */
const char *tr_split_name(pinas_split s);

/* The tnet's private generator (init and Gumbel noise), saved in checkpoints. Borrowed. */
pt_gen *tr_tnet_gen(const pinas_tnet *t);
/* Borrowed handle of the underlying optimizer. */
pt_optim *tr_optim_handle(const pinas_optim *o);

#endif
