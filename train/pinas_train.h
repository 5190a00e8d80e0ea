/* pinas training engine: datasets, the net IR in libtorch (supernets), losses, optimizers, trainer, checkpoints. */
#ifndef PINAS_TRAIN_H
#define PINAS_TRAIN_H

#include "pinas_common.h"
#include "pinas_config.h"
#include "pinas_dist.h"
#include "pinas_net.h"
#include "torch_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Conventions. Every function that can fail returns pinas_status and leaves the message on ctx
 * (libtorch failures become PINAS_ETORCH with the shim's message). Handles are opaque; every
 * _free(NULL) is a harmless no-op. pt_tensor handles returned through out-pointers are new: the
 * caller frees them with pt_free. Handles returned as plain pointers are borrowed. */

/* Converts the shim's last error (pt_errmsg) into a ctx error "what: <torch message>"; returns
 * PINAS_ETORCH. For code that calls the pt_ functions directly. */
pinas_status pinas_torch_error(pinas_ctx *ctx, const char *what);

/* Applies the ctx's threads (0 = libtorch's default) and checks its device: "cuda" without a CUDA
 * libtorch or GPU is a clear error. Call once before training. */
pinas_status pinas_torch_setup(pinas_ctx *ctx) PINAS_WUR;

/* ================================================================ datasets */

/* Splits. TRAIN_ALL is the whole training set; TRAIN and VAL partition it (a seeded permutation,
 * VAL gets data.val_fraction of it) for bi-level search: weights on TRAIN, alphas on VAL. TEST is
 * the held-out test set, used only for reporting accuracy. */
typedef enum { PINAS_SPLIT_TRAIN_ALL = 0, PINAS_SPLIT_TRAIN = 1, PINAS_SPLIT_VAL = 2, PINAS_SPLIT_TEST = 3 } pinas_split;

typedef struct {
    const char *dataset;    /* "synthetic", "cifar10", "cifar100", "mnist", "fashion-mnist" or "imagefolder" */
    const char *path;       /* NULL or "" = the dataset's default location (pinas_data_default_path).
                             * CIFAR: directory of the binary files (data_batch_1..5.bin + test_batch.bin, or train.bin + test.bin);
                             * mnist / fashion-mnist: directory of the four IDX files (train-images-idx3-ubyte[.gz], ...);
                             * imagefolder: ROOT with ROOT/train/<class>/ and ROOT/val/<class>/ (val is the test split) */
    int synthetic_train;    /* synthetic: training images */
    int synthetic_test;     /* synthetic: test images */
    int synthetic_classes;  /* synthetic: classes (>= 2) */
    int synthetic_size;     /* synthetic: height = width */
    double val_fraction;    /* share of the training set in VAL, in (0, 1) */
    uint64_t seed;          /* synthetic content and the TRAIN/VAL permutation */
    int train_images;       /* > 0: keep only the first N training images (0 = all) */
    int test_images;        /* > 0: keep only the first N test images (0 = all) */
    int pad;                /* in-memory sets: zero pixels added on each side at load (28x28 -> 32x32 with 2) */
    int resize;             /* in-memory sets: bilinear resize to resize x resize after padding (0 = keep);
                             * imagefolder: the output (crop) size (0 = 224) */
    int eval_resize;        /* imagefolder: evaluation resizes the shorter side to this before the centre crop (0 = resize*8/7) */
    double scale_min;       /* imagefolder: random-resized crop keeps [scale_min, 1] of the area (0 = 0.08) */
    int channels;           /* 0 = the dataset's own; 3 replicates a grey channel, 1 averages RGB */
    int flip;               /* augmentation flips horizontally: 0 = the dataset's default (not for digits), 1 = yes, -1 = no */
    int crop_pad;           /* augmentation's random-crop zero padding: 0 = max(1, H/8), -1 = no crop, > 0 pixels */
    int n_norm;             /* 0: mean/std from the training set (imagefolder: ImageNet's); else 1 or 3 given values */
    float mean[PINAS_CFG_MAX_CHANNELS], std[PINAS_CFG_MAX_CHANNELS];
} pinas_data_opts;

/* Where a dataset is read from when data.path is empty: fashion-mnist from Debian's
 * dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist), mnist from data/mnist, CIFAR
 * from data/cifar-10-batches-bin or data/cifar-100-binary, imagefolder from data/imagenet. NULL for
 * the synthetic set. Static string. */
const char *pinas_data_default_path(const char *dataset);

/* An in-memory dataset (uint8 CHW images + labels) with its normalisation statistics. Immutable
 * after loading, so several loaders (and threads) may read it at once. */
typedef struct pinas_dataset pinas_dataset;

typedef struct {
    const char *name;       /* "synthetic", "cifar10", "cifar100", "mnist", "fashion-mnist", "imagefolder"; borrowed */
    int c, h, w;
    int num_classes;
    int n[4];               /* images per split, indexed by pinas_split */
    float mean[3], std[3];  /* per channel, of the training set, in [0,1] pixel units (first c used) */
} pinas_dataset_info;

/* Fills opts from a config's data section and the run's seed (cfg->seed). Strings are borrowed from
 * data (they live as long as the config). */
void pinas_data_opts_from_cfg(const pinas_cfg_data *data, uint64_t seed, pinas_data_opts *opts);
/* Loads (CIFAR, IDX: reads and validates every record, then pads / resizes / converts channels;
 * synthetic: generates deterministically from seed; imagefolder: lists the files, which are decoded
 * batch by batch). Errors name the file and the record. *out: new; caller frees. */
pinas_status pinas_dataset_load(pinas_ctx *ctx, const pinas_data_opts *opts, pinas_dataset **out) PINAS_WUR;
void pinas_dataset_free(pinas_dataset *d);
void pinas_dataset_get_info(const pinas_dataset *d, pinas_dataset_info *out);
/* The fields of a model's meta.json that come from the data: name (arch's), input [C, H, W] and
 * num_classes (the dataset's) and normalize (the training set's statistics, as doubles). The other
 * fields of m are left as they are. Errors: more channels than PINAS_META_MAX_CHANNELS, out of
 * memory. */
pinas_status pinas_dataset_fill_meta(pinas_ctx *ctx, const pinas_dataset *d, const pinas_net *arch, pinas_model_meta *m) PINAS_WUR;
/* Copies images [start, start+n) of a split, normalised (no augmentation), into x
 * [n, C, H, W] floats and their labels into y (may be NULL). For the plaintext reference and for
 * private inference of test images. Out of range is PINAS_EINVAL. */
pinas_status pinas_dataset_get_f32(pinas_ctx *ctx, const pinas_dataset *d, pinas_split split, int start, int n, float *x,
                                   int64_t *y) PINAS_WUR;

/* A seeded mini-batch loader over one split. The order of an epoch and its augmentation are a
 * pure function of (seed, epoch), so a resumed run sees exactly the batches of an uninterrupted
 * one; no loader state needs saving. Augmentation of in-memory sets: random crop with crop_pad
 * pixels of zero padding (default max(1, H/8): 4 on 32x32, 2 on 16x16; zero in normalised space,
 * i.e. padding with the mean) and, where the dataset allows it (data.flip; not for digits), a
 * horizontal flip with probability 1/2. imagefolder: random-resized crop + flip for training, resize
 * + centre crop otherwise; a file that fails to decode is an error naming it. */
typedef struct pinas_loader pinas_loader;
typedef struct {
    int batch_size;
    int shuffle;            /* 0: dataset order */
    int augment;            /* crop + flip */
    int drop_last;          /* skip a last incomplete batch */
    uint64_t seed;
    /* Data-parallel shard (DistributedSampler semantics): every rank draws the same seeded order and
     * batches of batch_size (the GLOBAL batch), and rank `rank` of `world` keeps the elements rank,
     * rank + world, ... of each. world 0 or 1: the whole batch. Augmentation draws are those of the
     * unsharded loader for in-memory sets (imagefolder: each rank draws its own). */
    int rank, world;
} pinas_loader_opts;

/* The loader borrows d, which must outlive it. Batches are made on the ctx's device. */
pinas_status pinas_loader_create(pinas_ctx *ctx, const pinas_dataset *d, pinas_split split, const pinas_loader_opts *opts,
                                 pinas_loader **out) PINAS_WUR;
void pinas_loader_free(pinas_loader *l);
/* Batches per epoch. */
int pinas_loader_n_batches(const pinas_loader *l);
/* The global size of the batch the last pinas_loader_next returned (all ranks' elements together;
 * equals that batch's size without sharding). */
int pinas_loader_last_global(const pinas_loader *l);
/* Starts epoch `epoch` (0-based): fixes the order and augmentation of its batches. */
void pinas_loader_start_epoch(pinas_loader *l, int epoch);
/* The next batch of the current epoch: *x float [B, C, H, W] (normalised), *y int64 [B]; both new.
 * At the end of the epoch *x = *y = NULL and PINAS_OK. Starting a new epoch after the end (or
 * calling next without start_epoch) continues with the following epoch. */
pinas_status pinas_loader_next(pinas_ctx *ctx, pinas_loader *l, pt_tensor **x, pt_tensor **y) PINAS_WUR;

/* ================================================================ networks in libtorch */

/* A libtorch network built from a pinas_net. An open act slot computes sum_k softmax(alpha)_k *
 * op_k(x) over its candidates (relu; poly s*w0*x^2 + w1*x + b; patch_relu:HxW = x *
 * upsample(1[avgpool_HxW(x) > 0]) in ceil mode; identity); an open pool slot mixes maxpool and
 * avgpool the same way. A decided slot runs its chosen op alone and has no alpha. */
typedef struct pinas_tnet pinas_tnet;

/* Builds the network (a private copy of net) on the ctx's device with seeded initialisation:
 * convs He-normal (fan_out), linears PyTorch's default uniform, BN weight 1 bias 0 (running stats
 * 0 / 1), poly w0=0.005 w1=1 b=0, alphas 1e-3 * N(0,1). Same seed, same weights. */
pinas_status pinas_tnet_create(pinas_ctx *ctx, const pinas_net *net, uint64_t seed, pinas_tnet **out) PINAS_WUR;
void pinas_tnet_free(pinas_tnet *t);
/* The network it was built from. Borrowed. */
const pinas_net *pinas_tnet_net(const pinas_tnet *t);

/* Forward pass: x float [B, C, H, W] on any device (moved to the net's device when needed).
 * train=1: BN uses batch statistics and updates its running stats; with Gumbel mode on, slot
 * mixtures use Gumbel-softmax noise drawn from the net's own generator. train=0: BN running stats,
 * plain softmax(alpha) mixtures. *logits [B, num_classes]: new. Grad mode is the thread's. */
pinas_status pinas_tnet_forward(pinas_ctx *ctx, pinas_tnet *t, const pt_tensor *x, int train, pt_tensor **logits) PINAS_WUR;

/* The architecture parameters: one alpha tensor [n_cands] per open slot, in node order. */
int pinas_tnet_n_alphas(const pinas_tnet *t);
/* Borrowed handle of alpha k (requires grad); *node (may be NULL) gets its slot's node index. */
pt_tensor *pinas_tnet_alpha(pinas_tnet *t, int k, int *node);
/* The current mixing weights of alpha k, softmax(alpha), as n_cands floats (for reports). */
pinas_status pinas_tnet_alpha_probs(pinas_ctx *ctx, pinas_tnet *t, int k, float *out) PINAS_WUR;
/* Overwrites alpha k with n_cands values (keeps its gradient flag). */
pinas_status pinas_tnet_set_alpha(pinas_ctx *ctx, pinas_tnet *t, int k, const float *vals) PINAS_WUR;

/* The trainable weight parameters (conv, BN affine, linear, poly w0/w1/b), in node order; not the
 * alphas, not BN running statistics. */
int pinas_tnet_n_weights(const pinas_tnet *t);
/* Borrowed handle of weight k; *name (may be NULL) gets "<node id>.<param>" (borrowed). */
pt_tensor *pinas_tnet_weight(pinas_tnet *t, int k, const char **name);
/* Borrowed array of all weight handles (n_weights of them), for optimizers. */
pt_tensor *const *pinas_tnet_weights(pinas_tnet *t);
/* Borrowed array of all alpha handles (n_alphas of them). */
pt_tensor *const *pinas_tnet_alphas(pinas_tnet *t);

/* Gumbel-softmax mixtures in training forwards (on = 0: plain softmax). tau > 0; hard = 1 gives
 * straight-through one-hot weights. */
void pinas_tnet_set_gumbel(pinas_tnet *t, int on, double tau, int hard);

/* The argmax architecture: a clone of the net with every open slot decided on its largest alpha
 * (ties: the lower index). *out: new; caller frees with pinas_net_free. */
pinas_status pinas_tnet_derive(pinas_ctx *ctx, const pinas_tnet *t, pinas_net **out) PINAS_WUR;

/* Exports tensors named per pinas_node_param_specs, as F32 on the CPU. arch = NULL: every
 * WEIGHT, BUFFER and ARCH tensor of the net itself. arch given: the WEIGHT and BUFFER tensors of
 * arch, which must be the same net with (some) slots decided (e.g. from pinas_tnet_derive); poly
 * parameters are exported only where arch keeps poly. *out: new; caller frees. */
pinas_status pinas_tnet_export(pinas_ctx *ctx, const pinas_tnet *t, const pinas_net *arch, pinas_tensors **out) PINAS_WUR;
/* Loads every WEIGHT and BUFFER tensor of the net from w (and ARCH tensors when w has them).
 * strict = 1: a missing tensor is an error; 0: missing ones keep their values. A tensor of the
 * wrong dtype or shape is always an error naming it. */
pinas_status pinas_tnet_load(pinas_ctx *ctx, pinas_tnet *t, const pinas_tensors *w, int strict) PINAS_WUR;
/* Builds a tnet from a model dir (its net and weights). */
pinas_status pinas_tnet_from_model(pinas_ctx *ctx, const pinas_model *m, pinas_tnet **out) PINAS_WUR;

/* ================================================================ losses and metrics */

/* Mean cross-entropy of logits [B, K] against labels y int64 [B], with label smoothing in [0, 1).
 * *loss: a new 0-dim tensor (differentiable). */
pinas_status pinas_loss_ce(pinas_ctx *ctx, const pt_tensor *logits, const pt_tensor *y, double label_smoothing,
                           pt_tensor **loss) PINAS_WUR;
/* Knowledge distillation: (1 - alpha) * CE(logits, y; smoothing) + alpha * T^2 * KL(softmax(teacher/T)
 * || softmax(logits/T)) (batch mean). teacher is treated as a constant. */
pinas_status pinas_loss_kd(pinas_ctx *ctx, const pt_tensor *logits, const pt_tensor *teacher, const pt_tensor *y,
                           double label_smoothing, double alpha, double temperature, pt_tensor **loss) PINAS_WUR;
/* Number of rows whose argmax equals the label. */
pinas_status pinas_count_correct(pinas_ctx *ctx, const pt_tensor *logits, const pt_tensor *y, int64_t *correct) PINAS_WUR;

/* Accuracy (fraction in [0,1]) and mean CE loss of t (eval mode, no grad) over a whole split. */
pinas_status pinas_evaluate(pinas_ctx *ctx, pinas_tnet *t, const pinas_dataset *d, pinas_split split, int batch_size,
                            double *accuracy, double *loss) PINAS_WUR;

/* ================================================================ optimizers */

/* An optimizer over parameter groups. Parameters are borrowed handles (the optimizer keeps its
 * own references to the same tensors, so freeing the handles later is fine). */
typedef struct pinas_optim pinas_optim;

typedef struct {
    double lr;
    double momentum;        /* 0 = plain SGD */
    double weight_decay;
    int nesterov;           /* needs momentum > 0 */
    double grad_clip;       /* > 0: each step first scales the gradients to a joint 2-norm <= grad_clip */
} pinas_sgd_opts;

typedef struct {
    double lr;
    double beta1, beta2;    /* 0 = 0.9, 0.999 */
    double eps;             /* 0 = 1e-8 */
    double weight_decay;    /* L2 added to the gradient, as torch.optim.Adam */
} pinas_adam_opts;

/* The first group holds params[0..n). */
pinas_status pinas_optim_sgd(pinas_ctx *ctx, pt_tensor *const *params, int n, const pinas_sgd_opts *o, pinas_optim **out) PINAS_WUR;
pinas_status pinas_optim_adam(pinas_ctx *ctx, pt_tensor *const *params, int n, const pinas_adam_opts *o, pinas_optim **out) PINAS_WUR;
/* Adds a group with its own lr and weight decay (other options as the first group). */
pinas_status pinas_optim_add_group(pinas_ctx *ctx, pinas_optim *o, pt_tensor *const *params, int n, double lr,
                                   double weight_decay) PINAS_WUR;
void pinas_optim_free(pinas_optim *o);
int pinas_optim_n_groups(const pinas_optim *o);
/* Sets the lr of group g (g = -1: every group). */
pinas_status pinas_optim_set_lr(pinas_ctx *ctx, pinas_optim *o, int g, double lr) PINAS_WUR;
double pinas_optim_lr(const pinas_optim *o, int g);
pinas_status pinas_optim_step(pinas_ctx *ctx, pinas_optim *o) PINAS_WUR;
/* Drops the gradients of every parameter of the optimizer. */
pinas_status pinas_optim_zero_grad(pinas_ctx *ctx, pinas_optim *o) PINAS_WUR;

/* Cosine annealing: lr_min + (lr_max - lr_min) * (1 + cos(pi * step / total)) / 2; step clamped to
 * [0, total]. */
double pinas_cosine_lr(double lr_max, double lr_min, int64_t step, int64_t total);

/* ================================================================ checkpoints */

/* Writes atomically (one safetensors file) everything a bit-identical resume needs: every tensor
 * of t (weights, BN statistics, alphas), t's generator state, the state of each optimizer (momentum
 * buffers, Adam moments, lrs), the epoch and `extra` (any JSON the caller wants back; may be
 * NULL). */
pinas_status pinas_checkpoint_save(pinas_ctx *ctx, const char *path, const pinas_tnet *t, pinas_optim *const *optims,
                                   int n_optims, int epoch, const cJSON *extra) PINAS_WUR;
/* Restores t and the optimizers (created the same way as when saving) in place. *epoch gets the
 * saved epoch; *extra (may be NULL) a new cJSON (NULL when none was saved); caller frees. A
 * checkpoint of another net or optimizer layout is an error naming what differs. */
pinas_status pinas_checkpoint_load(pinas_ctx *ctx, const char *path, pinas_tnet *t, pinas_optim *const *optims,
                                   int n_optims, int *epoch, cJSON **extra) PINAS_WUR;

/* ================================================================ trainer */

typedef struct {
    int epochs;
    int batch_size;
    double lr;              /* initial lr */
    double lr_min;          /* cosine floor (default 0) */
    int cosine;             /* 1 = cosine over all steps, 0 = constant */
    double momentum, weight_decay;
    int nesterov;
    double label_smoothing;
    double grad_clip;       /* > 0: gradient-norm clipping of every step (torch's clip_grad_norm_) */
    const char *teacher;    /* model dir of a KD teacher, or NULL / "" */
    double kd_alpha, kd_temperature;
    int augment;
    pinas_split train_split;/* usually TRAIN_ALL (pinas train) */
    pinas_split eval_split; /* usually TEST */
    int max_steps;          /* per epoch, 0 = all batches (for benchmarks and quick tests) */
    uint64_t seed;          /* data order and augmentation */
    const char *run_dir;    /* log.jsonl and checkpoint/<phase>.safetensors go here; NULL = none */
    const char *phase;      /* label in log lines and the checkpoint name ("train", "finetune-3") */
    int resume;             /* continue from run_dir's checkpoint of this phase when present */
    FILE *progress;         /* progress bar stream (NULL = stderr) */
    /* Data-parallel: the group this process trains in (borrowed; NULL = alone). batch_size is then
     * the global batch: each rank takes its shard, weight gradients are averaged over the global
     * batch by all-reduce before every step, BN uses each rank's local batch statistics (DDP's
     * default; the running statistics saved are rank 0's), evaluation runs on every rank over the
     * whole split, and only rank 0 writes log lines and checkpoints. */
    pinas_dist_group *dist;
} pinas_train_opts;

/* Fills opts from a config's train section, data.augment and the run's seed (cfg->seed);
 * train_split TRAIN_ALL, eval_split TEST, phase "train", run_dir NULL, teacher NULL when none.
 * Strings are borrowed from train (they live as long as the config). */
void pinas_train_opts_from_cfg(const pinas_cfg_train *train, const pinas_cfg_data *data, uint64_t seed,
                               pinas_train_opts *opts);

typedef struct {
    int epochs_run;         /* epochs trained in this call (0 when resumed at the end) */
    double train_loss;      /* mean loss of the last epoch */
    double train_acc;       /* running accuracy of the last epoch */
    double eval_acc;        /* accuracy on eval_split after the last epoch */
    double eval_loss;
    double seconds;
} pinas_train_result;

/* Trains t (any net: weights only, alphas untouched) with SGD + (cosine) schedule, optional KD,
 * an evaluation, a log line and an atomic checkpoint after every epoch; resumes from the
 * checkpoint when opts->resume. result may be NULL. */
pinas_status pinas_train_tnet(pinas_ctx *ctx, pinas_tnet *t, const pinas_dataset *d, const pinas_train_opts *opts,
                              pinas_train_result *result) PINAS_WUR;

/* Trains a decided architecture and returns it as a model: initial weights from `init` (may be
 * NULL: seeded init with opts->seed; a supernet export for fine-tuning), then pinas_train_tnet.
 * The model's meta is a copy of `base` (may be NULL: pinas_model_meta_init; not modified, e.g. its
 * mpc, predicted_latency, source and config are kept) with the fields of pinas_dataset_fill_meta,
 * accuracy (on eval_split), dataset and train (the options and the last epoch's losses) set.
 * *out: new; caller frees with pinas_model_free. */
pinas_status pinas_train_model(pinas_ctx *ctx, const pinas_net *arch, const pinas_tensors *init, const pinas_dataset *d,
                               const pinas_train_opts *opts, const pinas_model_meta *base, pinas_model **out) PINAS_WUR;

/* What `pinas train` does, as one call (the CLI only parses arguments and prints the result). */
typedef struct {
    const char *config_path;    /* the config's file: errors and meta.json's source name it */
    const char *arch_path;      /* a decided pinas-net/1 file; NULL = the config's space (then decided) */
    const char *model_dir;      /* NULL = <out_dir>/<name>/model */
    int resume;                 /* continue from the run dir's checkpoint */
    FILE *progress;             /* progress bar stream (NULL = stderr) */
    /* Data-parallel (NULL or world 1: this process alone): joins the group of this record, trains
     * as pinas_train_opts.dist says, and only rank 0 writes config.json, the log, checkpoints and
     * the model dir. Borrowed. */
    const pinas_dist *dist;
} pinas_train_run_opts;

typedef struct {
    char *run_dir, *model_dir;  /* owned; freed by pinas_train_run_result_free */
    char *net;                  /* the trained net's name; owned */
    double accuracy;            /* on the test split */
    int epochs;
} pinas_train_run_result;

/* Applies the config's seed, threads and device to ctx, loads the architecture (every slot must be
 * decided) and the dataset, writes <out_dir>/<name>/config.json (the effective config + git_rev),
 * trains with the config's train section (log.jsonl and checkpoint/train.safetensors in the run
 * dir) and saves the model dir; its meta.json records mpc (the config's), the source command, the
 * effective config and the training. *res is filled on success (free with
 * pinas_train_run_result_free) and left empty on error. */
pinas_status pinas_train_run(pinas_ctx *ctx, const pinas_config *cfg, const pinas_train_run_opts *o,
                             pinas_train_run_result *res) PINAS_WUR;
/* Frees the strings of res and zeroes it; NULL is a no-op. */
void pinas_train_run_result_free(pinas_train_run_result *res);

/* Appends one JSON object as a line to path (created when absent; the line is written with a single
 * write so concurrent appenders do not interleave). */
pinas_status pinas_train_log_append(pinas_ctx *ctx, const char *path, const cJSON *obj) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
