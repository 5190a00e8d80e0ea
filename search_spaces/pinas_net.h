/* The net IR: one network description read by the trainer, the cost model and the 2PC runtime. */
#ifndef PINAS_NET_H
#define PINAS_NET_H

#include "pinas_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PINAS_NET_FORMAT "pinas-net/1"
#define PINAS_MAX_CANDS 8
#define PINAS_MAX_ID 128

typedef enum {
    PINAS_OP_INPUT = 0,     /* node 0 of every net; id "input" */
    PINAS_OP_CONV2D,
    PINAS_OP_BATCHNORM,
    PINAS_OP_LINEAR,
    PINAS_OP_ACT,           /* a slot over activation candidates */
    PINAS_OP_POOL,          /* a slot over maxpool / avgpool */
    PINAS_OP_ADD,
    PINAS_OP_FLATTEN,
    PINAS_OP_GLOBAL_AVGPOOL,
    PINAS_OP_COUNT
} pinas_op;

typedef enum {
    PINAS_CAND_RELU = 0,
    PINAS_CAND_POLY,        /* s*w0*x^2 + w1*x + b, trainable w0, w1, b */
    PINAS_CAND_PATCH_RELU,  /* one sign per ph x pw patch (ceil mode), taken on the patch mean */
    PINAS_CAND_IDENTITY,
    PINAS_CAND_MAXPOOL,
    PINAS_CAND_AVGPOOL,     /* count_include_pad semantics: always divides by kh*kw */
} pinas_cand_kind;

typedef struct {
    pinas_cand_kind kind;
    int ph, pw;             /* patch size, PATCH_RELU only */
} pinas_cand;

/* One node. A read-only view for users of the IR: obtain with pinas_net_node(). Shapes are per
 * sample (C, H, W); flat tensors have H = W = 1. */
typedef struct {
    char id[PINAS_MAX_ID];
    pinas_op op;
    int n_inputs;
    int inputs[2];          /* indices of earlier nodes */
    int c, h, w;            /* output shape, inferred */
    /* conv2d */
    int out_channels, kh, kw, stride, pad, groups, bias;  /* bias also used by linear */
    /* linear */
    int out_features;
    /* batchnorm */
    double eps;
    /* act / pool slots */
    int n_cands;
    pinas_cand cands[PINAS_MAX_CANDS];
    int choice;             /* index into cands, or -1 while the slot is open */
    double poly_scale;      /* act: the s in s*w0*x^2 (default 1) */
    int poly_per_channel;   /* act: w0, w1, b per channel (1) or one per slot (0) */
    /* pool: kh, kw, stride, pad are shared with conv2d */
} pinas_node;

typedef struct pinas_net pinas_net;

/* Loads a net file (explicit node list or compact backbone form) and validates it. Errors name
 * the file and the node id. *out: new; caller frees with pinas_net_free. */
pinas_status pinas_net_load(pinas_ctx *ctx, const char *path, pinas_net **out) PINAS_WUR;
/* Same from parsed JSON; `where` names the source in messages. */
pinas_status pinas_net_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_net **out) PINAS_WUR;
/* The space of a run config ("space"): an inline net object, or a path relative to the config file's
 * directory, then to the working directory. *out: new; caller frees. */
pinas_status pinas_net_load_config_space(pinas_ctx *ctx, const pinas_config *cfg, pinas_net **out) PINAS_WUR;
/* The explicit form, every node with its inferred shape. New; caller frees with cJSON_Delete. */
cJSON *pinas_net_to_json(const pinas_net *net);
/* Writes the explicit form atomically. */
pinas_status pinas_net_save(pinas_ctx *ctx, const pinas_net *net, const char *path) PINAS_WUR;
/* Deep copy; NULL when out of memory. */
pinas_net *pinas_net_clone(const pinas_net *net);
/* pinas_net_free(NULL) is a no-op. */
void pinas_net_free(pinas_net *net);

const char *pinas_net_name(const pinas_net *net);
int pinas_net_num_classes(const pinas_net *net);
int pinas_net_n_nodes(const pinas_net *net);
/* Borrowed; valid until the net is freed. i in [0, n_nodes). */
const pinas_node *pinas_net_node(const pinas_net *net, int i);
/* Index of the node with this id, or -1. */
int pinas_net_find(const pinas_net *net, const char *id);
/* The output node is the last one. */
int pinas_net_output(const pinas_net *net);

/* Op and candidate names as in JSON ("conv2d", "relu", "patch_relu:2x2", ...). */
const char *pinas_op_name(pinas_op op);
/* Writes the candidate name into buf (at least 32 bytes). Returns buf. */
const char *pinas_cand_name(const pinas_cand *c, char *buf, size_t n);
/* Parses "relu", "poly", "identity", "patch_relu:HxW", "maxpool", "avgpool". 0 on success. */
int pinas_cand_parse(const char *s, pinas_cand *out);

/* 1 for act and pool nodes. */
int pinas_node_is_slot(const pinas_node *n);
/* 1 for a slot whose choice is still open (more than one candidate, none chosen). */
int pinas_node_is_open(const pinas_node *n);
/* The chosen candidate of a slot (the only one when there is a single candidate), or NULL if open. */
const pinas_cand *pinas_node_chosen(const pinas_node *n);
/* Number of open slots. An architecture has none. */
int pinas_net_n_open(const pinas_net *net);
/* Decides slot `node` on candidate `cand` (index). Errors name the node. */
pinas_status pinas_net_decide(pinas_ctx *ctx, pinas_net *net, int node, int cand) PINAS_WUR;
/* Decides slot `node` on the candidate of the given kind; -1 if the slot lacks it. */
int pinas_node_find_cand(const pinas_node *n, pinas_cand_kind kind);

/* Per-sample counters. */
int64_t pinas_node_macs(const pinas_net *net, int i);
int64_t pinas_node_params(const pinas_net *net, int i);
/* Elements entering an act slot (C*H*W); 0 for other nodes. */
int64_t pinas_node_act_elems(const pinas_net *net, int i);
/* Comparisons the node needs as decided: relu -> elements, patch_relu -> patches, others 0.
 * An open act slot that has relu among its candidates counts as relu (the all-ReLU bound). */
int64_t pinas_node_relu_count(const pinas_net *net, int i);
int64_t pinas_net_macs(const pinas_net *net);
int64_t pinas_net_params(const pinas_net *net);
int64_t pinas_net_relu_count(const pinas_net *net);

/* Parameter tensors of a node, with the names used in weights.safetensors ("<id>.weight", ...).
 * Poly activation parameters (w0, w1, b) appear on act nodes that have a poly candidate; an open
 * slot also has "<id>.alpha" [n_cands] (kind ARCH). BN running statistics are kind BUFFER. */
typedef enum { PINAS_PARAM_WEIGHT = 0, PINAS_PARAM_BUFFER = 1, PINAS_PARAM_ARCH = 2 } pinas_param_kind;
typedef struct {
    char name[PINAS_MAX_ID + 24];
    pinas_param_kind kind;
    int ndim;
    int64_t shape[4];
} pinas_param_spec;
/* Fills up to max specs for node i; returns how many the node has (may exceed max). */
int pinas_node_param_specs(const pinas_net *net, int i, pinas_param_spec *out, int max);

/* A 64-bit hash of the canonical explicit JSON (for handshakes and preprocessing files). */
uint64_t pinas_net_hash(const pinas_net *net);

/* ------------------------------------------------------------ building a net in code
 *
 * The one way to build a net in code (the backbone generators, benchmark and calibration nets all
 * use it; no library code writes a net as a JSON string). Nodes are appended in order; `in` is the
 * index of an earlier node (0 is the input). Each adder returns the new node's index, or -1 after
 * an allocation failure; failures are sticky and reported by pinas_nb_finish, so a sequence of adds
 * needs no checks in between. Shapes are inferred and every node validated at finish, with the
 * same rules and messages as a net file. */
typedef struct pinas_net_builder pinas_net_builder;

/* A new builder for a net with input [c, h, w] and num_classes outputs; NULL when out of memory. */
pinas_net_builder *pinas_nb_create(const char *name, int c, int h, int w, int num_classes);
/* Any node, copied from proto (inputs, op, fields as in pinas_node; `choice` -1 leaves slots open).
 * pinas_nb_node_init fills the defaults of a node file: stride 1, groups 1, eps 1e-5, poly scale 1,
 * one input `in`, choice -1. */
pinas_node pinas_nb_node_init(const char *id, pinas_op op, int in);
int pinas_nb_node(pinas_net_builder *b, const pinas_node *proto);
int pinas_nb_conv(pinas_net_builder *b, const char *id, int in, int out_c, int k, int stride, int pad, int groups);
int pinas_nb_batchnorm(pinas_net_builder *b, const char *id, int in);
/* An act slot over n candidates (poly scale 1, poly parameters per channel). */
int pinas_nb_act(pinas_net_builder *b, const char *id, int in, const pinas_cand *cands, int n);
/* A pool slot over n candidates (maxpool / avgpool), k x k kernel. */
int pinas_nb_pool(pinas_net_builder *b, const char *id, int in, int k, int stride, int pad, const pinas_cand *cands, int n);
int pinas_nb_add(pinas_net_builder *b, const char *id, int x, int y);
int pinas_nb_linear(pinas_net_builder *b, const char *id, int in, int out_features, int bias);
int pinas_nb_flatten(pinas_net_builder *b, const char *id, int in);
int pinas_nb_global_avgpool(pinas_net_builder *b, const char *id, int in);
/* Validates and hands over the net (*out: new; caller frees); `where` names the net in messages.
 * Always frees b. */
pinas_status pinas_nb_finish(pinas_ctx *ctx, pinas_net_builder *b, const char *where, pinas_net **out) PINAS_WUR;
/* Frees an unfinished builder; NULL is a no-op. */
void pinas_nb_free(pinas_net_builder *b);

/* ------------------------------------------------------------ backbone generators */

typedef struct {
    const char *backbone;   /* "resnet", "vgg", "mobilenetv2" */
    int depth;              /* resnet: 18, 34 (basic blocks, 4 stages) or 6n+2 = 8, 14, 20, 32, 44, 56, 110 (CIFAR, 3 stages of n blocks); vgg: 16 */
    int width;              /* channels of the first stage; 0 = the backbone's default */
    const char *stem;       /* "cifar" (3x3 conv, no pool), "cifar-pool" (3x3 conv + a 2x2/2 pool slot; resnet) or "imagenet" (7x7/2 conv + 3x3/2 max-pool); NULL = from input size */
    int in_c, in_h, in_w;
    int num_classes;
    const char *const *act; /* candidate names for every act slot */
    int n_act;
    const char *const *pool;/* candidate names for every pool slot (default {"maxpool"}) */
    int n_pool;
    double poly_scale;      /* 0 = 1.0 */
    int poly_per_channel;
} pinas_space_opts;

/* Expands a backbone into the explicit node list. */
pinas_status pinas_net_generate(pinas_ctx *ctx, const pinas_space_opts *opts, pinas_net **out) PINAS_WUR;

/* ------------------------------------------------------------ model dirs */

#define PINAS_MODEL_FORMAT "pinas-model/1"

/* A decided architecture with its weights: what `pinas export`, `pinas train` and `pinas model
 * random` write and the 2PC runtime reads. On disk, a directory with net.json (explicit form, every
 * slot decided), weights.safetensors (F32 tensors named "<node id>.<param>", see
 * pinas_node_param_specs: every WEIGHT and BUFFER spec) and meta.json:
 *   {"format": "pinas-model/1", "name": ..., "input": [C,H,W], "num_classes": N,
 *    "normalize": {"mean": [...C], "std": [...C]},   inputs to the net are already normalised
 *    "accuracy": number or null,  "mpc": {"frac_bits": 16, "cmp_bits": 64},
 *    "predicted_latency": {...}, "source": "..."}  (other keys are kept as they are) */
typedef struct {
    pinas_net *net;          /* owned */
    pinas_tensors *weights;  /* owned */
    cJSON *meta;             /* owned; an object */
} pinas_model;

/* Loads and validates a model dir: every slot decided, every weight present with the right dtype
 * and shape (errors name the file and the tensor), meta.json well-formed. *out: new; caller frees. */
pinas_status pinas_model_load(pinas_ctx *ctx, const char *dir, pinas_model **out) PINAS_WUR;
/* Writes the three files atomically each (temporary file + rename), creating dir. */
pinas_status pinas_model_save(pinas_ctx *ctx, const char *dir, const pinas_model *m) PINAS_WUR;
/* Takes ownership of net (decided), weights and meta (meta may be NULL: a default is made).
 * Validates like pinas_model_load. On error the arguments are freed. */
pinas_status pinas_model_create(pinas_ctx *ctx, pinas_net *net, pinas_tensors *weights, cJSON *meta,
                                pinas_model **out) PINAS_WUR;
/* Random weights for a decided net (He-normal convs and linears, BN with random positive
 * statistics, poly w0=0.005 w1=1 b=0 plus noise), deterministic in seed. */
pinas_status pinas_model_random(pinas_ctx *ctx, const pinas_net *net, uint64_t seed, pinas_model **out) PINAS_WUR;
/* pinas_model_free(NULL) is a no-op. */
void pinas_model_free(pinas_model *m);
/* Hash of the net and every weight byte (handshakes, preprocessing files). */
uint64_t pinas_model_hash(const pinas_model *m);
/* Borrowed F32 data of weight "<node id>.<suffix>", or NULL when absent. */
const float *pinas_model_param(const pinas_model *m, int node, const char *suffix);

/* ------------------------------------------------------------ plaintext execution */

/* Runs the decided net in float (BN in inference mode) on x [batch, C, H, W] (normalised), writing
 * logits [batch, num_classes]. Uses OpenBLAS for conv (im2col) and linear. */
pinas_status pinas_plain_forward(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch,
                                 float *logits) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
