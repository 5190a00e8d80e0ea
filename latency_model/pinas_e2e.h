/* pinas end-to-end latency: a seeded discrete-event simulation of a stream of private inferences
 * whose preprocessing a dealer makes on the fly into a client-side store of bounded size.
 *
 * Judging private inference by its online phase alone is optimistic: the client can keep the
 * preprocessing of only a few inferences, so under a steady stream of requests the offline phase
 * (the dealer making and shipping each inference's keys and triples) comes back onto the critical
 * path. This module prices that. It is part of the cost model library (no libtorch, no runtime).
 *
 * ================================================================ the model (exactly)
 *
 * Inputs (pinas_e2e_params): L_on (online latency of one inference), T_gen (the dealer's compute for
 * one inference's preprocessing), T_xfer (shipping it), B (the client's bytes of one inference's
 * preprocessing), S (the client's storage budget in bytes), the arrivals, N inferences.
 *
 *  - Arrivals: a Poisson process of rate R per second (exponential gaps from pinas_rng seeded with
 *    `seed`; the first arrival is one gap after t = 0), or the n times of a trace (seconds,
 *    non-decreasing).
 *  - Store: K = floor(S / B) sets of preprocessing fit on the client (S = INFINITY: unbounded). A
 *    budget below one set (K = 0) is not an error: nothing is kept ahead and every inference waits
 *    for a set made for it on demand. The store starts full (start_full = 1, the steady state of an
 *    idle client) or empty.
 *  - Dealer: one generator making one set at a time in T_gen, then a link shipping one set at a time
 *    in T_xfer (FIFO; the link ships set c while the dealer already makes set c+1). The dealer->server
 *    and dealer->client transfers of a set run in parallel: T_xfer = max(server bytes, client bytes)
 *    / bandwidth + one RTT (pinas_e2e_costs_from_prediction). The dealer starts a set whenever it is
 *    idle and stored + in_flight < K + waiting, where in_flight counts sets being made or shipped and
 *    waiting counts arrived inferences that hold no set yet; it stops once N sets exist in total
 *    (the initial store included), since no later inference will need one.
 *  - Claiming: an arriving inference takes a stored set at once; otherwise it queues (FIFO) for the
 *    next delivered set. A claimed set leaves the store (it is the inference's own from then on), so
 *    the store holds at most K sets and "storage used" counts unclaimed sets only.
 *  - Server: runs one online phase at a time, FIFO in arrival order: inference i starts at
 *    max(its set's claim time, the end of inference i-1) and ends L_on later. Its latency is end -
 *    arrival (arrival -> logits). It "waited for preprocessing" when its set came after its arrival.
 *  - Statistics: over inferences w..N-1 where w = floor(warmup_frac * N) (the warm-up is dropped):
 *    mean, p50, p99 (nearest rank) latency, the share that waited; storage: time-average and max of
 *    stored sets x B over [arrival of inference w, arrival of inference N-1].
 *  Defaults (pinas_e2e_params_default): N = 20000, warmup_frac = 0.1, start_full = 1, seed 1.
 *
 * Closed forms the tests check: S = INFINITY and a low rate -> mean = L_on; K = 0 and a low rate ->
 * mean = T_gen + T_xfer + L_on; S = INFINITY, Poisson -> the server is an M/D/1 queue: mean = L_on +
 * rho / (2 mu (1 - rho)), mu = 1 / L_on, rho = R L_on (pinas_e2e_md1_mean). */
#ifndef PINAS_E2E_H
#define PINAS_E2E_H

#include "pinas_common.h"
#include "pinas_cost.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PINAS_E2E_DEFAULT_N 20000
#define PINAS_E2E_DEFAULT_WARMUP 0.1

/* What one inference costs (seconds, bytes): from the cost model (pinas_e2e_costs_from_prediction)
 * or measured (pinas stream). */
typedef struct {
    double online_s;       /* L_on */
    double gen_s;          /* T_gen: dealer compute of one inference's preprocessing */
    double xfer_s;         /* T_xfer: shipping it to both parties (in parallel) */
    double client_bytes;   /* B: the client's share of one inference's preprocessing */
    double server_bytes;   /* the server's share (priced into xfer_s; not bounded by the budget) */
} pinas_e2e_costs;

/* The simulation's inputs: a typed record. */
typedef struct {
    pinas_e2e_costs costs;
    double storage_bytes;  /* S, >= 0; INFINITY = unbounded */
    double rate_per_s;     /* Poisson rate (> 0) when trace is NULL */
    const double *trace;   /* arrival times in seconds, non-decreasing (borrowed), or NULL */
    long n_trace;          /* entries of trace */
    long n;                /* inferences simulated (Poisson); ignored with a trace (n = n_trace) */
    double warmup_frac;    /* in [0, 1): share of the first inferences left out of the statistics */
    int start_full;        /* 1: the store holds K sets at t = 0; 0: it starts empty */
    uint64_t seed;         /* of the arrival process */
} pinas_e2e_params;

/* The simulation's output. Times in seconds, storage in bytes. */
typedef struct {
    long n;                /* inferences simulated */
    long n_measured;       /* after the warm-up */
    long capacity;         /* K: sets the budget holds (capped at n) */
    double mean_s, p50_s, p99_s, max_s;
    double waited_share;   /* in [0, 1]: inferences whose set came after their arrival */
    double storage_mean_bytes, storage_max_bytes;
    double server_util;    /* measured inferences x L_on / the measured span (rho); NaN when the span is 0 */
} pinas_e2e_result;

/* Defaults: zero costs, S = INFINITY, rate 0.1/s, no trace, n = PINAS_E2E_DEFAULT_N, warm-up
 * PINAS_E2E_DEFAULT_WARMUP, start_full 1, seed 1. */
void pinas_e2e_params_default(pinas_e2e_params *p);

/* Runs the simulation above. Errors (PINAS_EINVAL, naming the field): negative or non-finite costs,
 * client_bytes <= 0 with a finite budget, S < 0, rate <= 0 without a trace, n < 1, a trace that
 * decreases, warmup_frac outside [0, 1). Deterministic for a given record. O(n log n). */
pinas_status pinas_e2e_simulate(pinas_ctx *ctx, const pinas_e2e_params *p, pinas_e2e_result *out) PINAS_WUR;

/* The Poisson arrival times the simulation uses for (seed, rate): out[0..n) (seconds, increasing;
 * the first one gap after 0). `pinas stream` issues its requests on the same schedule. */
void pinas_e2e_poisson_arrivals(uint64_t seed, double rate_per_s, long n, double *out);

/* The M/D/1 mean sojourn time L_on + rho / (2 mu (1 - rho)) (mu = 1/L_on, rho = rate L_on): the
 * simulation's mean with unbounded storage under Poisson arrivals. INFINITY when rho >= 1. */
double pinas_e2e_md1_mean(double online_s, double rate_per_s);

/* mean_s, p50_s, p99_s (nearest rank) and max_s of lat[0..n) (n >= 1; lat is sorted in place): the
 * statistics of the simulation and of `pinas stream`'s measurements. Other fields untouched. */
void pinas_e2e_latency_stats(double *lat, long n, pinas_e2e_result *out);

/* Reads a trace file: one arrival time in seconds per line (blank lines and lines starting with
 * '#' skipped), non-decreasing, >= 0. Errors name the file and line. *times: new (malloc); caller
 * frees with free(). */
pinas_status pinas_e2e_trace_load(pinas_ctx *ctx, const char *path, double **times, long *n) PINAS_WUR;

/* The costs of one inference from a prediction of a decided net (pinas_cost_predict) and the link it
 * was priced on: L_on = total online; T_gen = the dealer's compute (each row's offline seconds less
 * the transfers the cost model adds to it); T_xfer = max(total server, client preprocessing bytes) /
 * bandwidth + RTT; B = the client's (party 1's) preprocessing bytes. The session setup (masked
 * weights) is paid once per session, not per inference, and is left out. */
void pinas_e2e_costs_from_prediction(const pinas_cost_prediction *pr, const pinas_cost_link *link, pinas_e2e_costs *out);

/* "2GB", "512 MiB", "100000", "inf": bytes. Units B, KB, MB, GB, TB (powers of 1000) and KiB, MiB,
 * GiB, TiB (powers of 1024), case-insensitive, optional space; "inf"/"unlimited" = INFINITY.
 * Errors name `what` (e.g. "--client-storage") and the text. */
pinas_status pinas_e2e_parse_bytes(pinas_ctx *ctx, const char *what, const char *text, double *bytes) PINAS_WUR;
/* "6/min", "0.5/s", "100/h", "2/sec", "10/hour": arrivals per second (> 0). Errors as above. */
pinas_status pinas_e2e_parse_rate(pinas_ctx *ctx, const char *what, const char *text, double *per_s) PINAS_WUR;

/* {"n", "n_measured", "capacity", "mean_ms", "p50_ms", "p99_ms", "max_ms", "waited_share",
 *  "storage_mean_bytes", "storage_max_bytes", "server_util"}. New; caller frees with cJSON_Delete. */
cJSON *pinas_e2e_result_to_json(const pinas_e2e_result *r);
/* {"online_ms", "gen_ms", "xfer_ms", "client_bytes", "server_bytes"}. New. */
cJSON *pinas_e2e_costs_to_json(const pinas_e2e_costs *c);

#ifdef __cplusplus
}
#endif
#endif
