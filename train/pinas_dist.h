/* Data-parallel runs: the rank/world record from the launch environment, the c10d process group over
 * it (Gloo on CPU, NCCL on CUDA), gradient all-reduce, and the local launcher behind --nproc. */
#ifndef PINAS_DIST_H
#define PINAS_DIST_H

#include "pinas_common.h"
#include "torch_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the rendezvous goes when MASTER_PORT is not set (torchrun's default). */
#define PINAS_DIST_DEFAULT_PORT 29500

/* One process's place in a data-parallel run. world = 1: a single process (no group is made). */
typedef struct {
    int rank, world, local_rank;
    char addr[256];        /* rendezvous host (rank 0 hosts the TCP store there) */
    int port;
    int64_t timeout_ms;    /* every collective and the rendezvous fail after this long */
    char backend[8];       /* "gloo" (CPU) or "nccl" (device cuda; CUDA builds only) */
    char source[16];       /* which variables it came from: "env", "slurm", "openmpi" or "single" */
} pinas_dist;

/* Fills d from the environment, first match wins:
 *   torchrun-style: RANK, WORLD_SIZE, LOCAL_RANK (default 0), MASTER_ADDR (default 127.0.0.1),
 *                   MASTER_PORT (default PINAS_DIST_DEFAULT_PORT);
 *   Slurm (srun):   SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; the address MASTER_ADDR, else
 *                   SLURM_LAUNCH_NODE_IPADDR, else the first host of SLURM_NODELIST (a plain or
 *                   "prefix[a-b,c]" list); the port MASTER_PORT or the default;
 *   Open MPI:       OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK; the address
 *                   MASTER_ADDR or 127.0.0.1, the port MASTER_PORT or the default;
 *   none:           rank 0 of a world of 1.
 * backend: "nccl" when device starts with "cuda", else "gloo". timeout_s > 0 sets the timeout.
 * A malformed value (not a number, rank >= world) is PINAS_EINVAL naming the variable. */
pinas_status pinas_dist_from_env(pinas_ctx *ctx, const char *device, double timeout_s, pinas_dist *d) PINAS_WUR;

/* Applies the config's device for this rank to ctx: a bare "cuda" becomes "cuda:<local_rank>" in a
 * data-parallel run (one GPU per local rank, as NCCL needs); anything else is set as it is. d may be
 * NULL (a single process). */
void pinas_dist_set_device(pinas_ctx *ctx, const pinas_dist *d, const char *device);

/* A live process group. Opaque; owned by its creator. */
typedef struct pinas_dist_group pinas_dist_group;

/* Joins the group of d (world > 1). Blocks until every rank has joined; after d->timeout_ms fails
 * with PINAS_EPEER naming the ranks that did not join. A backend this build lacks (nccl without
 * CUDA libtorch) is PINAS_EUNSUPPORTED. *out: new; free with pinas_dist_group_free. */
pinas_status pinas_dist_group_create(pinas_ctx *ctx, const pinas_dist *d, pinas_dist_group **out) PINAS_WUR;
/* Leaves the group: a last barrier (so that rank 0's store outlives every other rank's use of it),
 * then frees. NULL is a no-op. A failed barrier is PINAS_EPEER (the group is freed anyway). */
pinas_status pinas_dist_group_close(pinas_ctx *ctx, pinas_dist_group *g) PINAS_WUR;
/* Frees without the barrier (after an error). NULL is a no-op. */
void pinas_dist_group_free(pinas_dist_group *g);
/* Rank and world of g; a NULL group is rank 0 of 1. */
int pinas_dist_rank(const pinas_dist_group *g);
int pinas_dist_world(const pinas_dist_group *g);
/* 1 when this process writes the run's files (rank 0, or no group). */
int pinas_dist_is_writer(const pinas_dist_group *g);

/* Makes the gradients of params[0..n) those of the global batch: scales each by
 * local_batch / global_batch and sums over the ranks (one flattened bucket). No-op for a NULL group.
 * A failed or timed-out collective is PINAS_EPEER with a message naming the rank to blame. */
pinas_status pinas_dist_average_grads(pinas_ctx *ctx, pinas_dist_group *g, pt_tensor *const *params, int n, int64_t local_batch,
                                      int64_t global_batch) PINAS_WUR;
/* Sums v[0..n) over the ranks in place (no-op for a NULL group). */
pinas_status pinas_dist_sum(pinas_ctx *ctx, pinas_dist_group *g, double *v, int n) PINAS_WUR;
/* Overwrites ts[0..n) with rank 0's values (no-op for a NULL group). */
pinas_status pinas_dist_broadcast(pinas_ctx *ctx, pinas_dist_group *g, pt_tensor *const *ts, int n) PINAS_WUR;
/* Waits for every rank (no-op for a NULL group). */
pinas_status pinas_dist_barrier(pinas_ctx *ctx, pinas_dist_group *g) PINAS_WUR;
/* Seconds spent in collectives so far (0 for a NULL group). */
double pinas_dist_comm_seconds(const pinas_dist_group *g);

/* Runs nproc local workers: argv (argv[0] = the program to exec, NULL-terminated) in nproc child
 * processes with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port)
 * set, forwarding SIGINT/SIGTERM/SIGHUP to them, and waits for all. When one fails, the others get
 * timeout_s + 10 s to fail on their own (they name the rank) and are then terminated. PINAS_OK when
 * every worker exits 0; else PINAS_EPEER naming the first rank that failed and how (exit status or
 * signal). */
pinas_status pinas_dist_launch(pinas_ctx *ctx, int nproc, char *const *argv, double timeout_s) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
