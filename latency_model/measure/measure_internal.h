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
/* Pass `pass` over o->spaces, in a child process of its own (measure_in_child): their covering
 * architectures at batch 1 and o->max_batch; per exact shape (class, party, features) the median of
 * the measured nodes, appended to acc. Progress: one step per run. */
pinas_status measure_space_pass(pinas_ctx *ctx, const pinas_measure_calib_opts *o, int pass, pinas_progress *pg, int *step,
                                measure_shape_list *acc) PINAS_WUR;
/* The passes' entries of one shape made one: the least of the passes' medians (the passes are
 * minutes apart: a slow spell of the VM host during one is outvoted, as in the sweep). Sorted. */
pinas_status measure_space_finish(pinas_ctx *ctx, measure_shape_list *acc) PINAS_WUR;

/* Measurements in a child process (fork): child(ctx, fd, user) runs in the child and sends its
 * figures with measure_child_send; here, take(ctx, buf, len, user) gets each message as it comes
 * (buf valid during the call). A child's error comes back as this one's (its message); a child that
 * dies is reported. Why: on this VM where a process's pages land moves a net's compute by up to
 * 35 % (cache and TLB conflicts of the placement: the same speed probe ran at 0.75x or 0.95x of the
 * profile's in alternate processes, and an architecture 30 % slow in both passes of one process was
 * not in the next), so measurements compared by their least (passes) must each draw their own
 * placement: each pass runs in a child of its own, its heap, preprocessing and the runtime's buffers
 * on fresh pages. */
typedef pinas_status (*measure_child_fn)(pinas_ctx *ctx, int fd, void *user);
typedef pinas_status (*measure_take_fn)(pinas_ctx *ctx, const void *buf, size_t len, void *user);
pinas_status measure_in_child(pinas_ctx *ctx, measure_child_fn child, measure_take_fn take, void *user) PINAS_WUR;
/* One message of a's na bytes then b's nb bytes. 0, or -1 when the pipe broke. */
int measure_child_send(int fd, const void *a, size_t na, const void *b, size_t nb);

/* The host-memory gate's options checked; errors name `who` (hostmem.c). */
pinas_status measure_host_opts_check(pinas_ctx *ctx, const pinas_measure_host_opts *o, const char *who) PINAS_WUR;
/* {free_page_reporting, checks, disturbed_checks, waits, waited_s, disturbed_passes, median_ns?,
 * min_ns?, max_ns?}. New. */
cJSON *measure_host_log_json(const pinas_measure_host_log *lg, int disturbed_passes);

/* qsort comparator of doubles, ascending. */
int measure_cmp_double(const void *a, const void *b);
/* The median of v[0..n) (n >= 1; sorts v). */
double measure_median(double *v, int n);
#endif
