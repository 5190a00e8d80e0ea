/* Internals shared by the cost model's files (not a public header). */
#ifndef PINAS_COST_INTERNAL_H
#define PINAS_COST_INTERNAL_H
#include "pinas_cost.h"

typedef struct {
    double relu_a, relu_b;       /* per-call and per-element constants, in `unit_s` */
    double poly_a, poly_b;
    double maxpool_factor;       /* maxpool = factor x ReLU formula on the pool's input elements */
    double avgpool_a, avgpool_b;
    double unit_s;               /* seconds per unit of the constants */
} pasnet_params;

struct pinas_cost_hw {
    char name[64];
    char fitted[64];             /* "calibration.date", "" when absent */
    char cpu_model[128];         /* "calibration.cpu_model" of a cpu profile, "" when absent */
    pinas_hw_kind kind;
    cJSON *json;                 /* the profile as loaded (kept for to_json and LUT headers) */
    pinas_cpu_params cpu;        /* cpu.shapes and cpu.spaces point into the two below */
    pinas_cpu_shape *shapes;     /* owned, sorted */
    char **space_names;          /* owned, cpu.n_spaces of them */
    pinas_fpga_params fpga;
    pasnet_params pasnet;
};

struct pinas_cost_link {
    char name[64];
    double bandwidth;            /* bytes per second */
    double rtt;                  /* seconds */
    cJSON *json;
};

/* The measured shapes (shapes.c). */
/* Replaces hw's shapes and space names with sorted copies of these, pointed to by hw->cpu. */
pinas_status cost_shapes_copy(pinas_ctx *ctx, pinas_cost_hw *hw, const pinas_cpu_shape *shapes, int n_shapes,
                              const char *const *spaces, int n_spaces) PINAS_WUR;
/* Reads the optional "shapes" and "spaces" of a cpu profile into hw (errors name where and the entry). */
pinas_status cost_shapes_parse(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_hw *hw) PINAS_WUR;
/* Adds "spaces" and "shapes" to a profile's JSON (nothing when p has none). */
void cost_shapes_to_json(const pinas_cpu_params *p, cJSON *j);
/* Frees hw's shapes and space names. */
void cost_shapes_free(pinas_cost_hw *hw);

/* Work of one node for the batch, derived from the IR (shapes) and the protocol counts. */
typedef struct {
    double in_elems, out_elems;  /* elements entering / leaving, whole batch */
    double cmp;                  /* comparisons */
    double weights;              /* parameters held by the node */
} node_work;
void cost_node_work(const pinas_net *net, int node, const pinas_cand *c, int batch, node_work *w);

/* Compute seconds for each profile kind. */
/* cpu: each party's compute (party_s) and the dealer's offline compute. */
void cost_cpu_compute(const pinas_cpu_params *cp, const pinas_net *net, int node, const pinas_cand *c, int batch,
                      const pinas_mpc_cost *counts, double party_s[2], double *offline_compute_s);
/* The session's cost beyond its nodes (pinas_mpc_cost_net minus the nodes' sum) priced on the network:
 * handshake and output reveal online, the setup round offline. arch must be decided. */
pinas_status cost_session_row(pinas_ctx *ctx, const pinas_net *arch, const pinas_cost_link *link, const pinas_mpc_params *p,
                              pinas_cost_row *out) PINAS_WUR;
#endif
