/* Predictions: protocol counts of a node (from the runtime's analytic accounting) priced under a
 * hardware and a network profile, per node and for whole nets. */
#define _GNU_SOURCE
#include "cost_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double dmax(double a, double b) { return a > b ? a : b; }
static double elems_of(const pinas_node *n) { return (double)n->c * n->h * n->w; }

void cost_node_work(const pinas_net *net, int node, const pinas_cand *c, int batch, node_work *w)
{
    const pinas_node *n = pinas_net_node(net, node);
    memset(w, 0, sizeof *w);
    w->out_elems = elems_of(n) * batch;
    for (int k = 0; k < n->n_inputs; k++) w->in_elems += elems_of(pinas_net_node(net, n->inputs[k])) * batch;
    if (n->op == PINAS_OP_INPUT) w->in_elems = w->out_elems;
    w->weights = (double)pinas_node_params(net, node);
    if (!c) return;
    if (c->kind == PINAS_CAND_RELU) {
        w->cmp = w->in_elems;
    } else if (c->kind == PINAS_CAND_PATCH_RELU) {
        w->cmp = (double)n->c * ((n->h + c->ph - 1) / c->ph) * ((n->w + c->pw - 1) / c->pw) * batch;
    } else if (c->kind == PINAS_CAND_MAXPOOL) {
        w->cmp = w->out_elems * (n->kh * n->kw - 1);
    }
}

static double umax2(const uint64_t v[2]) { return (double)(v[0] > v[1] ? v[0] : v[1]); }

int pinas_cpu_prim_of(const pinas_net *net, int node, const pinas_cand *c)
{
    const pinas_node *n = pinas_net_node(net, node);
    if (!c && pinas_node_is_slot(n)) c = pinas_node_chosen(n);
    switch (n->op) {
    case PINAS_OP_INPUT: return PINAS_CPU_INPUT;
    case PINAS_OP_CONV2D: return n->groups > 1 ? PINAS_CPU_DWCONV : PINAS_CPU_CONV;
    case PINAS_OP_LINEAR: return PINAS_CPU_LINEAR;
    case PINAS_OP_ADD: return PINAS_CPU_ADD;
    case PINAS_OP_GLOBAL_AVGPOOL: return PINAS_CPU_GAP;
    case PINAS_OP_ACT:
        if (!c) return -1;
        return c->kind == PINAS_CAND_RELU ? PINAS_CPU_RELU : c->kind == PINAS_CAND_POLY ? PINAS_CPU_POLY
             : c->kind == PINAS_CAND_PATCH_RELU ? PINAS_CPU_PATCH : -1; /* identity: a view */
    case PINAS_OP_POOL:
        if (!c) return -1;
        return c->kind == PINAS_CAND_MAXPOOL ? PINAS_CPU_MAXPOOL : PINAS_CPU_AVGPOOL;
    default: return -1; /* batchnorm is folded into its conv; flatten is a view */
    }
}

void pinas_cpu_features(const pinas_net *net, int node, const pinas_cand *c, int batch, const pinas_mpc_cost *counts, int party,
                        double f[PINAS_CPU_N_FEAT])
{
    node_work w;
    const pinas_node *n = pinas_net_node(net, node);
    if (!c && pinas_node_is_slot(n)) c = pinas_node_chosen(n);
    cost_node_work(net, node, c, batch > 0 ? batch : 1, &w);
    f[PINAS_CPU_F_CALL] = 1;
    f[PINAS_CPU_F_MACS] = (double)counts->online.ring_macs[party & 1];
    f[PINAS_CPU_F_AES] = (double)counts->online.aes_blocks[party & 1];
    f[PINAS_CPU_F_IN] = w.in_elems;
    f[PINAS_CPU_F_OUT] = w.out_elems;
    f[PINAS_CPU_F_WEIGHTS] = f[PINAS_CPU_F_COLS] = 0;
    if (n->op == PINAS_OP_CONV2D || n->op == PINAS_OP_LINEAR) {
        const pinas_node *in = pinas_net_node(net, n->inputs[0]);
        int g = n->op == PINAS_OP_CONV2D && n->groups > 0 ? n->groups : 1;
        double k = n->op == PINAS_OP_CONV2D ? (double)n->kh * n->kw : 1;
        double cin = (double)in->c * in->h * in->w / (n->op == PINAS_OP_LINEAR ? 1 : (double)in->h * in->w);
        f[PINAS_CPU_F_WEIGHTS] = (double)n->c * cin / g * k;
        f[PINAS_CPU_F_COLS] = cin * k * (n->op == PINAS_OP_LINEAR ? 1 : (double)n->h * n->w) * (batch > 0 ? batch : 1);
    } else if (n->op == PINAS_OP_POOL) {
        f[PINAS_CPU_F_COLS] = w.out_elems * n->kh * n->kw; /* the windows' reads */
    }
}

double pinas_cost_cpu_fit(const pinas_cpu_params *p, int prim, int party, const double f[PINAS_CPU_N_FEAT])
{
    if (prim < 0 || prim >= PINAS_CPU_N_PRIM) return 0;
    double t = 0;
    for (int k = 0; k < PINAS_CPU_N_FEAT; k++) t += p->coef[prim][party & 1][k] * f[k];
    return t > 0 ? t : 0;
}

double pinas_cost_cpu_party(const pinas_cpu_params *p, int prim, int party, const double f[PINAS_CPU_N_FEAT])
{
    const pinas_cpu_shape *e = p->n_shapes ? pinas_cpu_shape_find(p, prim, party, f) : NULL;
    return e ? e->s : pinas_cost_cpu_fit(p, prim, party, f);
}

void cost_cpu_compute(const pinas_cpu_params *cp, const pinas_net *net, int node, const pinas_cand *c, int batch,
                      const pinas_mpc_cost *counts, double party_s[2], double *offline_compute_s)
{
    int prim = pinas_cpu_prim_of(net, node, c);
    for (int q = 0; q < 2; q++) {
        double f[PINAS_CPU_N_FEAT];
        pinas_cpu_features(net, node, c, batch, counts, q, f);
        party_s[q] = pinas_cost_cpu_party(cp, prim, q, f);
    }
    /* Preprocessing: the dealer's AES and ring work, and the client's input-independent products. */
    *offline_compute_s = (double)counts->offline.aes_blocks[0] / cp->aes_blocks_per_s +
                         (double)(counts->offline.ring_macs[0] + counts->offline.ring_macs[1]) / cp->ring_macs_per_s;
}

/* PASNet's constants: only gated operators carry latency. */
static double pasnet_compute(const pasnet_params *pp, const pinas_cand *c, const node_work *w)
{
    if (!c) return 0;
    double N = w->in_elems; /* PASNet's N is per sample; for a batch the element term scales with it, the
                             * per-call term does not */
    double v = 0;
    switch (c->kind) {
    case PINAS_CAND_RELU: v = pp->relu_b * N + pp->relu_a; break;
    case PINAS_CAND_POLY: v = pp->poly_b * N + pp->poly_a; break;
    case PINAS_CAND_PATCH_RELU: v = pp->relu_b * w->cmp + pp->relu_a; break;
    case PINAS_CAND_MAXPOOL: v = pp->maxpool_factor * (pp->relu_b * N + pp->relu_a); break;
    case PINAS_CAND_AVGPOOL: v = pp->avgpool_b * N + pp->avgpool_a; break;
    default: v = 0; break;
    }
    return v * pp->unit_s;
}

void pinas_fpga_schedule_work(const pinas_fpga_params *b, double macs, double aes, double cmp, double elems,
                              double working_set, double io_bytes, pinas_fpga_schedule *out)
{
    memset(out, 0, sizeof *out);
    int lanes = (int)floor(b->dsp * b->dsp_util / b->dsp_per_mac);
    if (lanes < 1) lanes = 1;
    out->mac_cycles = ceil(macs / lanes);
    out->aes_cycles = ceil(aes / b->aes_cores);
    out->cmp_cycles = ceil(cmp / b->cmp_units);
    out->elem_cycles = ceil(elems / b->elem_lanes);
    double cyc = dmax(dmax(out->mac_cycles, out->aes_cycles), dmax(out->cmp_cycles, out->elem_cycles));
    /* The blocks are pipelined against each other (AES feeds the comparison units, the MAC array
     * streams while the element lanes post-process), so the slowest one sets the pace; a node that
     * does anything pays the pipeline fill once. */
    if (cyc > 0) cyc += b->pipeline_cycles;
    out->compute_s = cyc / b->clock_hz;
    /* Data that does not fit on chip streams from DDR (read once, written once), overlapped with compute. */
    out->ddr_s = working_set > b->onchip_bytes ? 2 * working_set / b->ddr_Bps : 0;
    out->host_s = io_bytes / b->host_Bps;
    out->total_s = dmax(out->compute_s, out->ddr_s) + out->host_s;
}

static void fpga_compute(const pinas_fpga_params *b, const node_work *w, const pinas_node *n, const pinas_cand *c,
                         const pinas_mpc_cost *counts, double *online_s, double *offline_s)
{
    pinas_fpga_schedule s;
    /* Element-wise work: masking/opening inputs and rescaling outputs touch every element in and out;
     * views (input, flatten, identity) and folded batchnorm touch nothing. */
    int view = n->op == PINAS_OP_INPUT || n->op == PINAS_OP_FLATTEN || n->op == PINAS_OP_BATCHNORM || (c && c->kind == PINAS_CAND_IDENTITY);
    double elems = view ? 0 : w->in_elems + w->out_elems;
    if (view) {
        *online_s = *offline_s = 0;
        return;
    }
    /* Working set: activations in and out, weights, and this party's key material streamed for the node. */
    double ws = 8 * (w->in_elems + w->out_elems + w->weights) + umax2(counts->offline.bytes);
    double io = (double)counts->online.bytes[0] + (double)counts->online.bytes[1];
    pinas_fpga_schedule_work(b, umax2(counts->online.ring_macs), umax2(counts->online.aes_blocks), w->cmp, elems, ws, io, &s);
    *online_s = s.total_s;
    /* The dealer runs on the same kind of board; its output goes to the host to be shipped. */
    pinas_fpga_schedule_work(b, (double)counts->offline.ring_macs[0] + (double)counts->offline.ring_macs[1],
                             (double)counts->offline.aes_blocks[0], 0, 0, 0,
                             (double)counts->offline.bytes[0] + (double)counts->offline.bytes[1], &s);
    *offline_s = s.total_s;
}

pinas_status pinas_cost_predict_node(pinas_ctx *ctx, const pinas_net *net, int node, int cand, const pinas_cost_hw *hw,
                                     const pinas_cost_link *link, const pinas_mpc_params *p, pinas_cost_row *out)
{
    memset(out, 0, sizeof *out);
    if (node < 0 || node >= pinas_net_n_nodes(net)) return pinas_error(ctx, PINAS_EINVAL, "node index %d out of range", node);
    const pinas_node *n = pinas_net_node(net, node);
    const pinas_cand *c = NULL;
    if (pinas_node_is_slot(n)) {
        if (cand >= 0) {
            if (cand >= n->n_cands)
                return pinas_error(ctx, PINAS_EINVAL, "node %s: candidate %d out of range (%d candidates)", n->id, cand, n->n_cands);
            c = &n->cands[cand];
        } else {
            c = pinas_node_chosen(n);
            if (!c) return pinas_error(ctx, PINAS_EINVAL, "node %s: slot is open; pick a candidate to price", n->id);
        }
    } else if (cand >= 0) {
        return pinas_error(ctx, PINAS_EINVAL, "node %s: %s is not a slot; it has no candidates", n->id, pinas_op_name(n->op));
    }
    snprintf(out->id, sizeof out->id, "%s", n->id);
    if (c) pinas_cand_name(c, out->op, sizeof out->op);
    else snprintf(out->op, sizeof out->op, "%s", pinas_op_name(n->op));
    out->node = node;
    out->cand = c ? (int)(c - n->cands) : -1;
    int batch = p->batch > 0 ? p->batch : 1;
    pinas_status s = pinas_mpc_cost_node(ctx, net, node, c ? out->cand : -1, p, &out->counts);
    if (s) return pinas_error_prefix(ctx, s, "pricing node %s", n->id);
    node_work w;
    cost_node_work(net, node, c, batch, &w);
    const pinas_mpc_counts *on = &out->counts.online;
    double xfer = umax2(on->bytes) / link->bandwidth; /* full duplex: both parties send at once */
    double rtt = (double)on->rounds * link->rtt;
    /* Offline: preprocessing material shipped by the dealer to both parties at once, plus the
     * session setup (masked weights) the server sends. */
    double off_xfer = umax2(out->counts.offline.bytes) / link->bandwidth + umax2(out->counts.setup.bytes) / link->bandwidth;
    double off_compute = 0;
    switch (hw->kind) {
    case PINAS_HW_CPU:
        cost_cpu_compute(&hw->cpu, net, node, c, batch, &out->counts, out->compute_party_s, &off_compute);
        out->compute_s = dmax(out->compute_party_s[0], out->compute_party_s[1]); /* the parties run at once */
        out->comm_s = xfer + rtt;
        out->online_s = out->compute_s + out->comm_s;
        out->offline_s = off_compute + off_xfer;
        break;
    case PINAS_HW_FPGA:
        fpga_compute(&hw->fpga, &w, n, c, &out->counts, &out->compute_s, &off_compute);
        /* Double buffering hides the transfer behind compute (or the reverse); each round still waits an RTT. */
        out->online_s = (hw->fpga.overlap ? dmax(out->compute_s, xfer) : out->compute_s + xfer) + rtt;
        out->comm_s = out->online_s - out->compute_s;
        out->offline_s = off_compute + off_xfer;
        break;
    case PINAS_HW_PASNET:
        out->compute_s = pasnet_compute(&hw->pasnet, c, &w);
        out->comm_s = 0;
        out->online_s = out->compute_s;
        out->offline_s = 0;
        break;
    }
    return PINAS_OK;
}

static void row_add(pinas_cost_row *acc, const pinas_cost_row *r)
{
    pinas_mpc_cost_add(&acc->counts, &r->counts);
    acc->compute_s += r->compute_s;
    acc->compute_party_s[0] += r->compute_party_s[0];
    acc->compute_party_s[1] += r->compute_party_s[1];
    acc->comm_s += r->comm_s;
    acc->online_s += r->online_s;
    acc->offline_s += r->offline_s;
}

static void counts_sub(pinas_mpc_counts *a, const pinas_mpc_counts *b)
{
    for (int q = 0; q < 2; q++) {
        a->bytes[q] -= b->bytes[q];
        a->aes_blocks[q] -= b->aes_blocks[q];
        a->ring_macs[q] -= b->ring_macs[q];
    }
    a->rounds -= b->rounds;
}

pinas_status cost_session_row(pinas_ctx *ctx, const pinas_net *arch, const pinas_cost_link *link, const pinas_mpc_params *p,
                              pinas_cost_row *out)
{
    memset(out, 0, sizeof *out);
    pinas_mpc_cost net_cost, sum, c;
    memset(&sum, 0, sizeof sum);
    pinas_status s = pinas_mpc_cost_net(ctx, arch, p, &net_cost);
    for (int i = 0; i < pinas_net_n_nodes(arch) && !s; i++) {
        s = pinas_mpc_cost_node(ctx, arch, i, -1, p, &c);
        if (!s) pinas_mpc_cost_add(&sum, &c);
    }
    if (s) return pinas_error_prefix(ctx, s, "session cost of %s", pinas_net_name(arch));
    counts_sub(&net_cost.online, &sum.online);
    counts_sub(&net_cost.offline, &sum.offline);
    counts_sub(&net_cost.setup, &sum.setup);
    snprintf(out->id, sizeof out->id, "(session)");
    snprintf(out->op, sizeof out->op, "session");
    out->node = -1;
    out->cand = -1;
    out->counts = net_cost;
    /* Handshake and output reveal: communication only. */
    out->comm_s = (double)net_cost.online.rounds * link->rtt + umax2(net_cost.online.bytes) / link->bandwidth;
    out->online_s = out->comm_s;
    out->offline_s = (double)net_cost.setup.rounds * link->rtt + umax2(net_cost.setup.bytes) / link->bandwidth +
                     umax2(net_cost.offline.bytes) / link->bandwidth;
    return PINAS_OK;
}

static int row_is_empty(const pinas_cost_row *r)
{
    const pinas_mpc_counts *cs[3] = {&r->counts.online, &r->counts.offline, &r->counts.setup};
    for (int k = 0; k < 3; k++)
        if (cs[k]->rounds || cs[k]->bytes[0] || cs[k]->bytes[1] || cs[k]->aes_blocks[0] || cs[k]->aes_blocks[1] || cs[k]->ring_macs[0] ||
            cs[k]->ring_macs[1])
            return 0;
    return r->online_s == 0 && r->offline_s == 0;
}

/* Node i's parameters: p, with the comparison window of the layer_bits entry naming it. */
static void node_params(const pinas_net *net, int i, const pinas_mpc_params *p, const pinas_mpc_layer_bits *lb, int n_lb,
                        pinas_mpc_params *out)
{
    *out = *p;
    for (int j = 0; j < n_lb; j++)
        if (!strcmp(lb[j].id, pinas_net_node(net, i)->id)) {
            out->cmp_bits = lb[j].cmp_bits;
            out->cmp_high = lb[j].cmp_high ? lb[j].cmp_high : 64;
        }
}

pinas_status pinas_cost_predict(pinas_ctx *ctx, const pinas_net *net, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                const pinas_mpc_params *p, pinas_cost_prediction **out)
{
    return pinas_cost_predict_layers(ctx, net, hw, link, p, NULL, 0, out);
}

pinas_status pinas_cost_predict_layers(pinas_ctx *ctx, const pinas_net *net, const pinas_cost_hw *hw, const pinas_cost_link *link,
                                       const pinas_mpc_params *p, const pinas_mpc_layer_bits *lb, int n_lb,
                                       pinas_cost_prediction **out)
{
    *out = NULL;
    if (pinas_net_n_open(net) > 0)
        return pinas_error(ctx, PINAS_EINVAL, "%s: %d slots are still open; predict needs a decided architecture (or use --lut for a space)",
                           pinas_net_name(net), pinas_net_n_open(net));
    pinas_cost_prediction *pr = calloc(1, sizeof *pr);
    int n = pinas_net_n_nodes(net);
    if (pr) pr->rows = calloc((size_t)n + 1, sizeof *pr->rows);
    if (!pr || !pr->rows) {
        pinas_cost_prediction_free(pr);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    snprintf(pr->hw, sizeof pr->hw, "%s", hw->name);
    snprintf(pr->link, sizeof pr->link, "%s", link->name);
    pr->params = *p;
    snprintf(pr->total.id, sizeof pr->total.id, "total");
    snprintf(pr->total.op, sizeof pr->total.op, "total");
    pr->total.node = -1;
    pr->total.cand = -1;
    /* Node 0 (the input) is listed only when sharing the client's input costs anything. */
    for (int i = 0; i < n; i++) {
        pinas_cost_row *r = &pr->rows[pr->n_rows];
        pinas_mpc_params pi;
        node_params(net, i, p, lb, n_lb, &pi);
        pinas_status s = pinas_cost_predict_node(ctx, net, i, -1, hw, link, &pi, r);
        if (s) {
            pinas_cost_prediction_free(pr);
            return s;
        }
        if (i == 0 && row_is_empty(r)) continue;
        row_add(&pr->total, r);
        pr->n_rows++;
    }
    /* What the session adds beyond the nodes (handshake, output reveal, setup round), when anything. */
    pinas_cost_row *r = &pr->rows[pr->n_rows];
    pinas_status s = hw->kind == PINAS_HW_PASNET ? PINAS_OK : cost_session_row(ctx, net, link, p, r);
    if (s) {
        pinas_cost_prediction_free(pr);
        return s;
    }
    if (hw->kind != PINAS_HW_PASNET && !row_is_empty(r)) {
        row_add(&pr->total, r);
        pr->n_rows++;
    }
    *out = pr;
    return PINAS_OK;
}

void pinas_cost_prediction_free(pinas_cost_prediction *pr)
{
    if (!pr) return;
    free(pr->rows);
    free(pr);
}

static cJSON *pair(uint64_t a, uint64_t b)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)a));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)b));
    return arr;
}

cJSON *pinas_cost_row_to_json(const pinas_cost_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "op", r->op);
    cJSON_AddNumberToObject(o, "compute_ms", r->compute_s * 1e3);
    if (r->compute_party_s[0] > 0 || r->compute_party_s[1] > 0) /* cpu profile: [server, client] */
        cJSON_AddItemToObject(o, "compute_party_ms",
                              cJSON_CreateDoubleArray((double[]){r->compute_party_s[0] * 1e3, r->compute_party_s[1] * 1e3}, 2));
    cJSON_AddNumberToObject(o, "comm_ms", r->comm_s * 1e3);
    cJSON_AddNumberToObject(o, "online_ms", r->online_s * 1e3);
    cJSON_AddNumberToObject(o, "offline_ms", r->offline_s * 1e3);
    cJSON_AddNumberToObject(o, "rounds", (double)r->counts.online.rounds);
    cJSON_AddItemToObject(o, "online_bytes", pair(r->counts.online.bytes[0], r->counts.online.bytes[1]));
    cJSON_AddItemToObject(o, "offline_bytes", pair(r->counts.offline.bytes[0], r->counts.offline.bytes[1]));
    cJSON_AddItemToObject(o, "setup_bytes", pair(r->counts.setup.bytes[0], r->counts.setup.bytes[1]));
    cJSON_AddItemToObject(o, "aes_blocks", pair(r->counts.online.aes_blocks[0], r->counts.online.aes_blocks[1]));
    cJSON_AddItemToObject(o, "ring_macs", pair(r->counts.online.ring_macs[0], r->counts.online.ring_macs[1]));
    cJSON_AddItemToObject(o, "dealer_aes_blocks", cJSON_CreateNumber((double)r->counts.offline.aes_blocks[0]));
    cJSON_AddItemToObject(o, "dealer_ring_macs", cJSON_CreateNumber((double)r->counts.offline.ring_macs[0]));
    return o;
}

cJSON *pinas_cost_prediction_to_json(const pinas_cost_prediction *pr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "hw", pr->hw);
    cJSON_AddStringToObject(o, "net", pr->link);
    cJSON *m = cJSON_AddObjectToObject(o, "mpc");
    cJSON_AddNumberToObject(m, "frac_bits", pr->params.frac_bits);
    cJSON_AddNumberToObject(m, "cmp_bits", pr->params.cmp_bits);
    cJSON_AddNumberToObject(m, "batch", pr->params.batch);
    cJSON_AddStringToObject(o, "pinas_version", PINAS_VERSION);
    cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
    for (int i = 0; i < pr->n_rows; i++) cJSON_AddItemToArray(nodes, pinas_cost_row_to_json(&pr->rows[i]));
    cJSON_AddItemToObject(o, "total", pinas_cost_row_to_json(&pr->total));
    return o;
}
