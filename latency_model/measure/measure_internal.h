/* Internals shared by the measurement layer's files (not a public header). */
#ifndef PINAS_MEASURE_INTERNAL_H
#define PINAS_MEASURE_INTERNAL_H
#include "pinas_measure.h"

/* The default bench (pinas_measure_bench_fn): one-operator private inferences for relu, poly,
 * patch_relu, maxpool and conv (and their "base:" harness); local share additions, the dealer's
 * AES-CTR expansion (prg) and ring products (gemm) timed in process. */
pinas_status measure_runtime_bench(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p, double *best_s,
                                   pinas_mpc_cost *counts, void *user) PINAS_WUR;

/* Round trip of one exchange and stream bandwidth between the runtime's two party threads over
 * this host's loopback. */
pinas_status measure_loopback(pinas_ctx *ctx, double *rtt_s, double *bandwidth_Bps) PINAS_WUR;

/* Calibration on spaces (calib_spaces.c). */
/* How many architectures cover every candidate of every open slot of the space (its widest slot). */
int measure_space_archs(const pinas_net *space);
typedef struct {
    pinas_cpu_shape *v; /* owned (free) */
    int n, cap;
} measure_shape_list;
/* Pass `pass` over o->spaces: their covering architectures at batch 1 and o->max_batch; per exact
 * shape (class, party, features) the median of the measured nodes, appended to acc. Progress: one
 * step per run. */
pinas_status measure_space_pass(pinas_ctx *ctx, const pinas_measure_calib_opts *o, int pass, pinas_progress *pg, int *step,
                                measure_shape_list *acc) PINAS_WUR;
/* The passes' entries of one shape made one: the least of the passes' medians (the passes are
 * minutes apart: a slow spell of the VM host during one is outvoted, as in the sweep). Sorted. */
pinas_status measure_space_finish(pinas_ctx *ctx, measure_shape_list *acc) PINAS_WUR;

/* qsort comparator of doubles, ascending. */
int measure_cmp_double(const void *a, const void *b);
/* The median of v[0..n) (n >= 1; sorts v). */
double measure_median(double *v, int n);
#endif
