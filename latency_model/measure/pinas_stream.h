/* A real stream of private inferences against the end-to-end model (latency_model/pinas_e2e.h):
 * `pinas stream`. Part of the measurement layer (library pinas_latency_model_measure).
 *
 * What runs, all in this process:
 *  - a dealer thread makes one inference's preprocessing at a time (pinas_mpc_deal_files, both
 *    parties' files of batch 1) into a client-side store: a private temporary directory holding at
 *    most K = floor(S / the client file's bytes) unclaimed sets. It works exactly when the model's
 *    dealer does: while stored + in flight < K + requests waiting for a set, and until every request
 *    has one. With `link` set, each made set is then "shipped" by a link thread that sleeps
 *    max(server, client file bytes) / bandwidth + RTT of that network profile (a rate limiter: the
 *    files are local), one set at a time, while the dealer makes the next; without it the files are
 *    in the store as soon as they are written (loopback; T_xfer = 0).
 *  - the store starts full (K sets made before the clock starts, as the model's start_full).
 *  - requests arrive on the simulation's seeded Poisson schedule (pinas_e2e_poisson_arrivals): an
 *    arrival thread claims a stored set for each at its arrival time or queues it (FIFO) for the next
 *    delivered one.
 *  - the server (the calling thread) serves requests one at a time in arrival order: loads the two
 *    files and runs both parties over loopback TCP in two threads (pinas_mpc_loopback_pair +
 *    pinas_mpc_party_run, as `pinas infer` does in its processes), on a seeded random input, then
 *    deletes the set. Latency = result time - arrival time.
 * Measured: the dealer's seconds per set (T_gen; the sets made while the stream runs, else the
 * initial fill's), the link's seconds per set (T_xfer), the online seconds per request (L_on), the
 * file sizes. The prediction re-runs the simulation on the run's own arrival times with those
 * measured means (and, separately, with the cost model's figures for the hw/net profiles). */
#ifndef PINAS_STREAM_H
#define PINAS_STREAM_H

#include "pinas_common.h"
#include "pinas_e2e.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *model_dir;       /* a decided model dir (net.json, weights, meta.json) */
    long requests;               /* K >= 1 */
    double rate_per_s;           /* Poisson rate, > 0 */
    double client_storage_bytes; /* S >= 0 (INFINITY: every request's set is made before the start) */
    uint64_t seed;               /* arrivals and inputs */
    const char *link;            /* NULL: loopback, no emulation; else a network profile whose bandwidth
                                  * and RTT the link thread emulates (also the cost model's net) */
    const char *hw;              /* the cost model's hardware profile (NULL: "cpu") */
    const char *tmpdir;          /* where the store's directory is made (NULL: $TMPDIR, else /tmp) */
    int timeout_ms;              /* per private inference (0: 60000) */
} pinas_stream_opts;

typedef struct {
    /* What was measured, in the simulation's record: n = n_measured = the requests, capacity = K, the
     * latency arrival -> logits (mean, p50, p99, max), the share whose set came after their arrival,
     * the storage (unclaimed sets x client bytes over [first, last arrival]: time-average and max), the
     * server's busy share. */
    pinas_e2e_result run;
    double client_set_bytes, server_set_bytes; /* one set's files */
    long gen_samples;             /* sets timed for T_gen */
    pinas_e2e_costs measured;     /* mean T_gen, T_xfer, L_on measured; the file sizes */
    pinas_e2e_result predicted;   /* the simulation with `measured` on this run's arrivals */
    pinas_e2e_costs model;        /* the cost model's per-inference costs (hw, link or loopback) */
    pinas_e2e_result model_predicted; /* the simulation with `model` on this run's arrivals */
    double wall_s;                /* the run, from the first arrival's clock start to the last result */
} pinas_stream_result;

/* Runs the stream above and the two predictions. Errors: the model dir's, a profile's, the runtime's
 * (naming the request or the set), PINAS_EINVAL for requests < 1, rate <= 0, S < 0. The store's
 * directory and files are removed on return, success or not. Shows no progress and prints nothing. */
pinas_status pinas_stream_run(pinas_ctx *ctx, const pinas_stream_opts *o, pinas_stream_result *out) PINAS_WUR;

/* {"requests", "capacity", "client_set_bytes", "server_set_bytes", "measured": pinas_e2e_result_to_json
 *  of `run`, "measured_costs": {...},
 *  "gen_samples", "predicted": pinas_e2e_result_to_json, "predicted_error": predicted mean / measured
 *  mean - 1, "model_costs", "model_predicted", "model_error", "wall_s"}. New; caller frees. */
cJSON *pinas_stream_result_to_json(const pinas_stream_result *r);

#ifdef __cplusplus
}
#endif
#endif
