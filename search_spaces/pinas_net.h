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

/* Size limits every net obeys: checked when a net is read, built or generated (so nothing that
 * takes a pinas_net needs its own overflow checks). With them, C*H*W of any node, a flatten, and a
 * conv's im2col rows ((C_in/groups)*kh*kw) fit an int, and any count times a batch of up to 2^20
 * images fits an int64. */
#define PINAS_NET_MAX_DIM (1 << 16)               /* each of C, H, W of a net file's input */
#define PINAS_NET_MAX_ELEMS (1 << 28)             /* C*H*W of any node's output (per image) */
#define PINAS_NET_MAX_MACS ((int64_t)1 << 40)     /* the whole net's MACs per image */
#define PINAS_NET_MAX_CLASSES (1 << 20)           /* num_classes */
#define PINAS_NET_MAX_WINDOW 1024                 /* kernel, stride and padding of conv2d and pool */
#define PINAS_NET_MAX_PATCH 64                    /* patch_relu:HxW, each of H and W */

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
/* A random architecture of a space: every open slot decided uniformly, in node order, by one
 * pinas_rng seeded with `seed` (candidate pinas_rng_below(rng, n_cands) per open slot). The one
 * sampler of architectures: the latency validation and `pinas model random --arch random` use it, so
 * a seed names the same architecture everywhere. *out: new (a decided clone); caller frees with
 * pinas_net_free; NULL on error (out of memory). */
pinas_status pinas_net_random_arch(pinas_ctx *ctx, const pinas_net *space, uint64_t seed, pinas_net **out) PINAS_WUR;
/* A baseline architecture of a space: "all-relu" decides every open act slot on relu and every open
 * pool slot on maxpool; "all-poly" on poly and avgpool. An error names a slot that lacks the
 * candidate (PINAS_EINVAL; also for another kind). *out: new (a decided clone); caller frees with
 * pinas_net_free; NULL on error. (The search's baselines, pinas_nas_baseline, are these.) */
pinas_status pinas_net_baseline_arch(pinas_ctx *ctx, const pinas_net *space, const char *kind, pinas_net **out) PINAS_WUR;
/* Index of the candidate of the given kind in slot n; -1 if the slot lacks it. */
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
 * index of an earlier node (0 is the input). Each adder returns the new node's index, or -1 once
 * the builder has failed (out of memory, an id that is empty, "input" or too long, more than
 * PINAS_MAX_CANDS candidates); the first failure is sticky and reported by pinas_nb_finish, so a
 * sequence of adds needs no checks in between. Every adder accepts b == NULL (it returns -1, and
 * pinas_nb_finish(ctx, NULL, ...) reports out of memory), so even pinas_nb_create needs no check.
 * Shapes are inferred and every node validated at finish, with the same rules and messages as a net
 * file. The ids and candidate arrays passed in are copied. Example:
 *
 *     pinas_net_builder *b = pinas_nb_create("tiny", 3, 8, 8, 10);
 *     int x = pinas_nb_conv(b, "conv", 0, 4, 3, 1, 1, 1);
 *     x = pinas_nb_act(b, "act", x, &relu, 1);
 *     x = pinas_nb_global_avgpool(b, "gap", x);
 *     pinas_nb_linear(b, "fc", x, 10, 1);
 *     if (pinas_nb_finish(ctx, b, "tiny", &net)) ...   // b is freed either way
 */
typedef struct pinas_net_builder pinas_net_builder;

/* A new builder for a net with input [c, h, w] and num_classes outputs; NULL when out of memory. */
pinas_net_builder *pinas_nb_create(const char *name, int c, int h, int w, int num_classes);
/* A node with the defaults of a node file: stride 1, groups 1, eps 1e-5, poly scale 1, poly
 * parameters shared by the slot (poly_per_channel 0), no bias, one input `in`, choice -1 (open),
 * no candidates. Set the remaining fields and pass it to pinas_nb_node. */
pinas_node pinas_nb_node_init(const char *id, pinas_op op, int in);
/* Any node, copied from proto (inputs, op, fields as in pinas_node; the output shape is inferred). */
int pinas_nb_node(pinas_net_builder *b, const pinas_node *proto);
/* A k x k convolution without bias. */
int pinas_nb_conv(pinas_net_builder *b, const char *id, int in, int out_c, int k, int stride, int pad, int groups);
int pinas_nb_batchnorm(pinas_net_builder *b, const char *id, int in);
/* An open act slot over n candidates, poly settings as pinas_nb_node_init (for others, set
 * poly_scale / poly_per_channel on a node from pinas_nb_node_init). */
int pinas_nb_act(pinas_net_builder *b, const char *id, int in, const pinas_cand *cands, int n);
/* An open pool slot over n candidates (maxpool / avgpool), k x k kernel. */
int pinas_nb_pool(pinas_net_builder *b, const char *id, int in, int k, int stride, int pad, const pinas_cand *cands, int n);
int pinas_nb_add(pinas_net_builder *b, const char *id, int x, int y);
int pinas_nb_linear(pinas_net_builder *b, const char *id, int in, int out_features, int bias);
int pinas_nb_flatten(pinas_net_builder *b, const char *id, int in);
int pinas_nb_global_avgpool(pinas_net_builder *b, const char *id, int in);
/* Validates and hands over the net (*out: new; caller frees with pinas_net_free; NULL on error);
 * `where` names the net in messages (NULL: its name). Always frees b. */
pinas_status pinas_nb_finish(pinas_ctx *ctx, pinas_net_builder *b, const char *where, pinas_net **out) PINAS_WUR;
/* Frees an unfinished builder; NULL is a no-op. */
void pinas_nb_free(pinas_net_builder *b);

/* ------------------------------------------------------------ backbone generators */

/* The widest first stage a compact space may ask for (later stages multiply it by up to 8). */
#define PINAS_SPACE_MAX_WIDTH 4096

typedef struct {
    const char *backbone;   /* "resnet", "vgg", "mobilenetv2" */
    int depth;              /* resnet: 18, 34 (basic blocks, 4 stages) or 6n+2 = 8, 14, 20, 32, 44, 56, 110 (CIFAR, 3 stages of n blocks); vgg: 16;
                               mobilenetv2: none (0); 0 = resnet 18, vgg 16 */
    int width;              /* channels of the first stage, 1..PINAS_SPACE_MAX_WIDTH; 0 = the backbone's default */
    const char *stem;       /* "cifar" (3x3 conv, no pool), "cifar-pool" (3x3 conv + a 2x2/2 pool slot; resnet only) or "imagenet"
                               (7x7/2 conv + 3x3/2 max-pool; mobilenetv2: a stride-2 first conv; not vgg); NULL = from input size */
    int in_c, in_h, in_w;   /* 1..PINAS_NET_MAX_DIM each; 0 = 3, 32, 32 */
    int num_classes;        /* 1..PINAS_NET_MAX_CLASSES; 0 = 10 */
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

/* meta.json of a model dir, as a typed record. One reader (pinas_model_meta_from_json /
 * pinas_model_meta_read) and one writer (pinas_model_meta_to_json / pinas_model_meta_write) in
 * search_spaces/model.c; nothing else reads or writes meta.json by key.
 *
 * On disk (keys in this order; "?" marks a key written only when present):
 *   {"format": "pinas-model/1", "name": ..., "input": [C, H, W], "num_classes": N,
 *    "normalize": {"mean": [...C], "std": [...C]},   inputs to the net are already normalised
 *    "accuracy": number or null, "dataset"?: "...", "train"?: {...the training summary...},
 *    "mpc": {"frac_bits": 16, "cmp_bits": 64, "layers"?: [{"id", "cmp_bits", "cmp_high"}, ...]},
 *    "predicted_latency": {"<hw>/<net>": {"online_ms", "offline_ms", "total_ms", "compute_ms",
 *                          "comm_ms", "rounds", "online_bytes", "preprocessing_bytes"}, ...},
 *    "source": "...", "config"?: {...}, "exported_from"?: {"run_dir", "candidate", "sweep"?, "arch"},
 *    ...any other keys, kept as they were read}
 * A file written by pinas_model_meta_write and read back is written again byte for byte.
 *
 * Ownership: every pointer in the record is owned by it (malloc'd strings, arrays, cJSON values)
 * and released by pinas_model_meta_free. Set strings with pinas_model_meta_set_str (or assign a
 * pinas_strdup'd string to a NULL field). A NaN double is written as null. */

/* The most input channels a meta.json may describe (benchmark nets are wide; images have 1 or 3). */
#define PINAS_META_MAX_CHANNELS (1 << 20)

/* One priced (hardware, network) profile pair of "predicted_latency", per inference of one sample. */
typedef struct {
    char *profile;          /* "<hw>/<net>", e.g. "cpu/lan"; owned */
    double online_ms, offline_ms, total_ms, compute_ms, comm_ms;
    int64_t rounds, online_bytes, preprocessing_bytes;   /* bytes: both parties together */
} pinas_meta_latency;

/* "train": how the weights were trained (written by pinas_train_model). */
typedef struct {
    int present;            /* 0: no "train" key */
    char *phase;            /* "train", "finetune-2", ...; owned */
    int epochs, batch_size;
    double lr;
    int cosine;             /* "schedule": 1 = "cosine", 0 = "constant" */
    double momentum;
    int nesterov;
    double weight_decay, label_smoothing;
    int augment;
    double grad_clip;       /* written only when > 0 */
    char *teacher;          /* knowledge distillation's teacher model dir; NULL = none (then
                             * teacher, kd_alpha and kd_temperature are not written); owned */
    double kd_alpha, kd_temperature;
    uint64_t seed;
    char *eval_split;       /* "test", "val", ...; owned */
    double eval_loss, train_loss, train_acc;   /* NaN = null */
} pinas_meta_train;

/* One slot decision of "exported_from.arch": {"<slot id>": "<candidate>"}. */
typedef struct {
    char *slot, *choice;    /* owned */
} pinas_meta_choice;

/* "exported_from": the search run and candidate an exported model came from (pinas export). */
typedef struct {
    int present;            /* 0: no "exported_from" key */
    char *run_dir;          /* owned */
    int candidate;
    char *sweep_key;        /* "lambda" or "target_ms"; NULL = no "sweep" key; owned */
    double sweep_value;
    int n_arch;
    pinas_meta_choice *arch;/* n_arch decisions, in slot order; owned */
} pinas_meta_export;

/* One node's comparison window in "mpc.layers" (bit cutting, nas/pinas_bitcut.h): the node's
 * comparisons look at bits [cmp_high - cmp_bits, cmp_high) of the ring element (the sign is bit
 * cmp_high - 1). On disk {"id": "...", "cmp_bits": B, "cmp_high": H}; B in [PINAS_CMP_BITS_MIN,
 * PINAS_CMP_BITS_MAX], H in [B, 64]; the id must name a node of the net. */
typedef struct {
    char *id;               /* owned */
    int cmp_bits, cmp_high;
} pinas_meta_layer_bits;

typedef struct {
    char *name;             /* owned */
    int input[3];           /* C, H, W */
    int num_classes;
    double *mean, *std;     /* input[0] values each (normalisation); owned; set the shape with
                             * pinas_model_meta_set_input, which (re)allocates them */
    double accuracy;        /* in [0, 1]; NaN = not measured (null) */
    char *dataset;          /* NULL = no "dataset" key; owned */
    pinas_meta_train train;
    int frac_bits, cmp_bits;/* "mpc" */
    int n_layer_bits;       /* "mpc.layers": per-node windows (written only when n_layer_bits > 0;
                             * nodes not listed use cmp_bits with cmp_high 64) */
    pinas_meta_layer_bits *layer_bits;   /* owned */
    int n_latency;
    pinas_meta_latency *latency;   /* "predicted_latency", in file order; owned */
    char *source;           /* "" when unknown; owned */
    cJSON *config;          /* the effective run config (pinas train); opaque, never read by
                             * code; NULL = absent; owned */
    pinas_meta_export exported_from;
    cJSON *extra;           /* other keys, kept as read (an object, or NULL); owned */
} pinas_model_meta;

/* An empty record: no strings (name and source are written as ""), input [0, 0, 0], mean 0 and
 * std 1 per channel, accuracy NaN, mpc from PINAS_FRAC_BITS_DEFAULT / PINAS_CMP_BITS_DEFAULT
 * (common/pinas_config.h), no latency, train, config, exported_from or extra keys. Never fails. */
void pinas_model_meta_init(pinas_model_meta *m);
/* Releases everything the record owns and leaves it as pinas_model_meta_init does; NULL is a no-op. */
void pinas_model_meta_free(pinas_model_meta *m);
/* The default record of a decided or open net: name, input and num_classes from the net, mean 0
 * and std 1 per channel, the rest as pinas_model_meta_init, source "". *m is overwritten (not
 * freed first). Errors: more than PINAS_META_MAX_CHANNELS input channels, out of memory. */
pinas_status pinas_model_meta_default(pinas_ctx *ctx, const pinas_net *net, pinas_model_meta *m) PINAS_WUR;
/* Deep copy of src into *dst (overwritten, not freed first). */
pinas_status pinas_model_meta_copy(pinas_ctx *ctx, const pinas_model_meta *src, pinas_model_meta *dst) PINAS_WUR;
/* Replaces the owned string *field (e.g. &m->source) with a copy of value (NULL allowed). */
pinas_status pinas_model_meta_set_str(pinas_ctx *ctx, char **field, const char *value) PINAS_WUR;
/* Sets input = [c, h, w] and reallocates mean (0) and std (1) to c values each. Errors: c outside
 * [1, PINAS_META_MAX_CHANNELS], out of memory. */
pinas_status pinas_model_meta_set_input(pinas_ctx *ctx, pinas_model_meta *m, int c, int h, int w) PINAS_WUR;
/* Releases what x owns and zeroes it (present 0: no "exported_from"); NULL is a no-op. */
void pinas_meta_export_free(pinas_meta_export *x);
/* Adds (or replaces in place, when a row of the same profile exists) a predicted_latency row; the
 * row's profile string is copied. */
pinas_status pinas_model_meta_set_latency(pinas_ctx *ctx, pinas_model_meta *m, const pinas_meta_latency *row) PINAS_WUR;
/* Adds (or replaces in place, when the node is listed) the "mpc.layers" entry of node `id` (copied).
 * Errors (PINAS_EINVAL): cmp_bits or cmp_high out of the ranges of pinas_meta_layer_bits. */
pinas_status pinas_model_meta_set_layer_bits(pinas_ctx *ctx, pinas_model_meta *m, const char *id, int cmp_bits,
                                             int cmp_high) PINAS_WUR;
/* The row of profile "<hw>/<net>", or NULL. Borrowed. */
const pinas_meta_latency *pinas_model_meta_latency(const pinas_model_meta *m, const char *profile);

/* Reads a parsed meta.json object (json is not modified; *out is overwritten, and left empty on
 * error). With net (may be NULL), missing "name", "input", "num_classes", "normalize", "mpc",
 * "predicted_latency", "accuracy" and "source" take pinas_model_meta_default's values, and the
 * present ones must agree with the net (input, num_classes). Without a net, "input" and
 * "num_classes" are required. Validation: format "pinas-model/1"; num_classes >= 1; normalize with
 * input[0] numbers each, std > 0; accuracy a number or null; mpc.frac_bits in
 * [PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX], mpc.cmp_bits in [PINAS_CMP_BITS_MIN,
 * PINAS_CMP_BITS_MAX] (absent: the defaults); every field of "train", "predicted_latency" and
 * "exported_from" of its type; unknown keys inside those objects and "mpc" are errors (unknown
 * top-level keys are kept in `extra`). Errors (PINAS_EFORMAT, or PINAS_EINVAL for a value of the
 * wrong type or range) name `where` and the field:
 * "<where>: mpc.cmp_bits: expected an integer in [8, 64], got 3". */
pinas_status pinas_model_meta_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, const pinas_net *net,
                                        pinas_model_meta *out) PINAS_WUR;
/* Loads the file at path and reads it as pinas_model_meta_from_json (errors name the file). */
pinas_status pinas_model_meta_read(pinas_ctx *ctx, const char *path, const pinas_net *net, pinas_model_meta *out) PINAS_WUR;
/* The JSON form (key order and numbers as described above). New; caller frees with cJSON_Delete;
 * NULL when out of memory. */
cJSON *pinas_model_meta_to_json(const pinas_model_meta *m);
/* Writes the JSON form to path atomically (temporary file + rename). */
pinas_status pinas_model_meta_write(pinas_ctx *ctx, const char *path, const pinas_model_meta *m) PINAS_WUR;
/* The "predicted_latency" object of n rows ({"<hw>/<net>": {...}, ...}): also the "latency" of a
 * search's metrics.json. New; caller frees with cJSON_Delete. */
cJSON *pinas_model_meta_latency_json(const pinas_meta_latency *rows, int n);

/* A decided architecture with its weights: what `pinas export`, `pinas train` and `pinas model
 * random` write and the 2PC runtime reads. On disk, a directory with net.json (explicit form, every
 * slot decided), weights.safetensors (F32 tensors named "<node id>.<param>", see
 * pinas_node_param_specs: every WEIGHT and BUFFER spec) and meta.json (pinas_model_meta). */
typedef struct {
    pinas_net *net;          /* owned */
    pinas_tensors *weights;  /* owned */
    pinas_model_meta meta;   /* owned; agrees with net (input, num_classes) */
} pinas_model;

/* Loads and validates a model dir: every slot decided, every weight present with the right dtype
 * and shape (errors name the file and the tensor), meta.json read by pinas_model_meta_from_json
 * with the net. *out: new; caller frees. */
pinas_status pinas_model_load(pinas_ctx *ctx, const char *dir, pinas_model **out) PINAS_WUR;
/* Writes the three files atomically each (temporary file + rename), creating dir. */
pinas_status pinas_model_save(pinas_ctx *ctx, const char *dir, const pinas_model *m) PINAS_WUR;
/* Takes ownership of net (decided) and weights, and moves the contents of *meta into the model
 * (meta may be NULL: pinas_model_meta_default). *meta is left empty (as pinas_model_meta_init), so
 * calling pinas_model_meta_free on it afterwards is harmless. The meta's input and num_classes must
 * agree with the net; its mpc values must be in range. On error everything given is freed. */
pinas_status pinas_model_create(pinas_ctx *ctx, pinas_net *net, pinas_tensors *weights, pinas_model_meta *meta,
                                pinas_model **out) PINAS_WUR;
/* Random weights for a decided net (He-normal convs and linears, BN with random positive
 * statistics, poly w0=0.005 w1=1 b=0 plus noise), deterministic in seed; meta is the default
 * with source "random". */
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
/* Called after node i (>= 1) ran over the batch: in = its first input's values, out = its own
 * ([batch, C, H, W] each, borrowed for the call). A non-zero return stops the forward and is
 * returned (leave the message on ctx). */
typedef pinas_status (*pinas_plain_tap_fn)(pinas_ctx *ctx, void *user, int node, const float *in, const float *out, int batch);
/* pinas_plain_forward, calling tap after every node (the values a node sees: bit cutting measures
 * the pre-activation range of each slot with it). Errors: as pinas_plain_forward, or tap's. */
pinas_status pinas_plain_forward_tap(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch, float *logits,
                                     pinas_plain_tap_fn tap, void *user) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
