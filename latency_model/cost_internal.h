/* Internals shared by the cost model's files (not a public header). */
#ifndef PINAS_COST_INTERNAL_H
#define PINAS_COST_INTERNAL_H
#include "pinas_cost.h"

/* The primitives the cpu profile is fitted on. Work units: elements entering the operator (relu,
 * poly, patch_relu, local), pairs compared (maxpool: its online ring ops), ring multiply-adds of the
 * busier party (linear). */
typedef enum {
    CPU_RELU = 0,
    CPU_POLY,
    CPU_PATCH,
    CPU_MAXPOOL,
    CPU_LINEAR,
    CPU_LOCAL,
    CPU_N_PRIM
} cpu_prim;

extern const char *const cpu_prim_names[CPU_N_PRIM];

typedef struct {
    double a[CPU_N_PRIM];        /* seconds per call */
    double b[CPU_N_PRIM];        /* seconds per unit of work */
    double r2[CPU_N_PRIM];
    double aes_blocks_per_s;     /* dealer AES throughput (offline) */
    double ring_macs_per_s;      /* dealer ring multiply-add throughput (offline) */
} cpu_params;

typedef struct {
    double relu_a, relu_b;       /* per-call and per-element constants, in `unit_s` */
    double poly_a, poly_b;
    double maxpool_factor;       /* maxpool = factor x ReLU formula on the pool's input elements */
    double avgpool_a, avgpool_b;
    double unit_s;               /* seconds per unit of the constants */
} pasnet_params;

struct pinas_cost_hw {
    char name[64];
    pinas_hw_kind kind;
    cJSON *json;                 /* the profile as loaded (kept for to_json and LUT headers) */
    cpu_params cpu;
    pinas_fpga_params fpga;
    pasnet_params pasnet;
};

struct pinas_cost_link {
    char name[64];
    double bandwidth;            /* bytes per second */
    double rtt;                  /* seconds */
    cJSON *json;
};

/* Work of one node for the batch, derived from the IR (shapes) and the protocol counts. */
typedef struct {
    double in_elems, out_elems;  /* elements entering / leaving, whole batch */
    double cmp;                  /* comparisons */
    double weights;              /* parameters held by the node */
} node_work;
void cost_node_work(const pinas_net *net, int node, const pinas_cand *c, int batch, node_work *w);

/* Compute seconds for each profile kind. */
void cost_cpu_compute(const cpu_params *cp, const pinas_node *n, const pinas_cand *c, const node_work *w,
                      const pinas_mpc_cost *counts, double *online_s, double *offline_compute_s);
/* The session's cost beyond its nodes (pinas_mpc_cost_net minus the nodes' sum) priced on the network:
 * handshake and output reveal online, the setup round offline. arch must be decided. */
pinas_status cost_session_row(pinas_ctx *ctx, const pinas_net *arch, const pinas_cost_link *link, const pinas_mpc_params *p,
                              pinas_cost_row *out);
#endif
