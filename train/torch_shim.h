/* A C API over libtorch (the only C++ in pinas): opaque handles, status returns, guarded bodies. */
#ifndef PINAS_TORCH_SHIM_H
#define PINAS_TORCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function returns 0 on success or -1 when libtorch (or anything in the body) threw; the
 * message is then in pt_errmsg(), a thread-local buffer owned by the shim (never freed by callers,
 * overwritten by the next failure on the same thread). */
typedef struct pt_tensor pt_tensor; /* an owned reference to an at::Tensor */

const char *pt_errmsg(void);

/* Frees a tensor handle. pt_free(NULL) is a harmless no-op. */
void pt_free(pt_tensor *t);

/* Seeds libtorch's CPU (and CUDA) generators. */
int pt_manual_seed(uint64_t seed);
/* Sets intra-op threads (0 = leave libtorch's default). */
int pt_set_threads(int n);
/* 1 if this libtorch build can use CUDA and a device is present. */
int pt_cuda_available(void);

/* A new float32 CPU tensor holding a copy of data (row-major, shape[ndim]); caller frees. */
int pt_from_f32(const float *data, int ndim, const int64_t *shape, pt_tensor **out);
/* Copies a tensor (any device, converted to float32, contiguous) into out, which must hold
 * exactly numel floats. */
int pt_to_f32(const pt_tensor *t, float *out, size_t numel);
/* Number of elements and shape (up to max_dims entries written). */
int pt_numel(const pt_tensor *t, int64_t *out);
int pt_shape(const pt_tensor *t, int *ndim, int64_t *shape, int max_dims);

/* Element-wise and reduction ops used across modules. Each returns a new tensor; caller frees. */
int pt_zeros(int ndim, const int64_t *shape, pt_tensor **out);
int pt_add(const pt_tensor *a, const pt_tensor *b, pt_tensor **out);
int pt_mul(const pt_tensor *a, const pt_tensor *b, pt_tensor **out);
int pt_mul_scalar(const pt_tensor *a, double s, pt_tensor **out);
int pt_add_scalar(const pt_tensor *a, double s, pt_tensor **out);
int pt_pow_scalar(const pt_tensor *a, double e, pt_tensor **out);
/* Sum of all elements (a 0-dim tensor). */
int pt_sum(const pt_tensor *a, pt_tensor **out);
/* softmax along dim. */
int pt_softmax(const pt_tensor *a, int dim, pt_tensor **out);
/* Gumbel-softmax along the last dim with temperature tau; hard=1 gives straight-through one-hot. */
int pt_gumbel_softmax(const pt_tensor *a, double tau, int hard, pt_tensor **out);
/* Value of a one-element tensor. */
int pt_item(const pt_tensor *a, double *out);

/* Autograd. */
int pt_set_requires_grad(pt_tensor *t, int on);
int pt_backward(const pt_tensor *loss);
/* The gradient of a leaf (a new handle), or *out = NULL when it has none. */
int pt_grad(const pt_tensor *t, pt_tensor **out);
/* Zeroes (drops) the gradient of a leaf. */
int pt_zero_grad(pt_tensor *t);
/* Enables or disables grad mode on this thread; returns the previous state in *prev (may be NULL). */
int pt_set_grad_enabled(int on, int *prev);

/* ---------------------------------------------------------------- devices and conversions */

/* 0 when the device string ("cpu", "cuda", "cuda:N") is usable; -1 with a clear message when cuda
 * is asked for but libtorch has no CUDA or no GPU is present. */
int pt_device_check(const char *device);
/* A new handle on `device` (the same tensor when already there); caller frees. */
int pt_to_device(const pt_tensor *t, const char *device, pt_tensor **out);
/* Waits for queued CUDA work (a no-op without CUDA); for timing. */
int pt_cuda_synchronize(void);
/* A new int64 CPU tensor holding a copy of data; caller frees. */
int pt_from_i64(const int64_t *data, int ndim, const int64_t *shape, pt_tensor **out);
/* Copies a tensor, converted to int64, into out (exactly numel entries). */
int pt_to_i64(const pt_tensor *t, int64_t *out, size_t numel);
/* Overwrites t in place (no autograd record) with numel floats; numel must equal t's. t keeps its
 * identity, so optimizers holding it see the new values. */
int pt_copy_from_f32(pt_tensor *t, const float *data, size_t numel);
/* dst.copy_(src) without autograd record (broadcasting, device and dtype conversion allowed). */
int pt_copy_(pt_tensor *dst, const pt_tensor *src);
/* Fills t in place (no autograd record). */
int pt_fill_(pt_tensor *t, double v);
/* A second handle to the same tensor (same storage, same autograd node); caller frees it. */
int pt_ref(const pt_tensor *t, pt_tensor **out);
/* New tensors; caller frees. clone copies storage (and stays in the graph); detach shares storage
 * without the graph; reshape may share storage. */
int pt_clone(const pt_tensor *t, pt_tensor **out);
int pt_detach(const pt_tensor *t, pt_tensor **out);
int pt_reshape(const pt_tensor *t, int ndim, const int64_t *shape, pt_tensor **out);

/* ---------------------------------------------------------------- generators */

/* A private CPU random generator (mt19937, libtorch's), so that initialisation and Gumbel noise
 * never depend on global RNG state. Owned by the caller; pt_gen_free(NULL) is a no-op. */
typedef struct pt_gen pt_gen;
int pt_gen_create(uint64_t seed, pt_gen **out);
void pt_gen_free(pt_gen *g);
/* The serialised state (for checkpoints): its size in bytes, a copy into buf (n = that size), and a
 * restore. */
int pt_gen_state_size(const pt_gen *g, size_t *n);
int pt_gen_get_state(const pt_gen *g, uint8_t *buf, size_t n);
int pt_gen_set_state(pt_gen *g, const uint8_t *buf, size_t n);
/* In-place initialisation from g (no autograd record); works for tensors on any device. */
int pt_normal_(pt_tensor *t, double mean, double std, pt_gen *g);
int pt_uniform_(pt_tensor *t, double lo, double hi, pt_gen *g);

/* ---------------------------------------------------------------- layers (each returns a new tensor) */

/* x [B, Cin, H, W], w [Cout, Cin/groups, kh, kw], b [Cout] or NULL. Square stride and padding. */
int pt_conv2d(const pt_tensor *x, const pt_tensor *w, const pt_tensor *b, int stride, int pad, int groups, pt_tensor **out);
/* Batch norm. w, b may be NULL. training = 1 uses batch statistics and updates running_mean and
 * running_var in place (with `momentum`, PyTorch's convention); 0 uses the running statistics. */
int pt_batch_norm(const pt_tensor *x, const pt_tensor *w, const pt_tensor *b, pt_tensor *running_mean, pt_tensor *running_var,
                  int training, double momentum, double eps, pt_tensor **out);
/* x [B, in] (or [..., in]), w [out, in], b [out] or NULL. */
int pt_linear(const pt_tensor *x, const pt_tensor *w, const pt_tensor *b, pt_tensor **out);
int pt_relu(const pt_tensor *x, pt_tensor **out);
int pt_max_pool2d(const pt_tensor *x, int kh, int kw, int stride, int pad, pt_tensor **out);
int pt_avg_pool2d(const pt_tensor *x, int kh, int kw, int stride, int pad, int ceil_mode, int count_include_pad, pt_tensor **out);
/* Mean over H and W, keeping them: [B, C, H, W] -> [B, C, 1, 1]. */
int pt_global_avg_pool(const pt_tensor *x, pt_tensor **out);
/* patch_relu:phxpw: x * upsample(1[avgpool_phxpw(x) > 0]) with ceil-mode patches; gradient through x. */
int pt_patch_relu(const pt_tensor *x, int ph, int pw, pt_tensor **out);
/* s*w0*x^2 + w1*x + b; w0, w1, b of shape [1] (per slot) or [C] (per channel of x [B, C, ...]). */
int pt_poly(const pt_tensor *x, const pt_tensor *w0, const pt_tensor *w1, const pt_tensor *b, double s, pt_tensor **out);
/* sum_k weights[k] * ys[k] (weights 1-d of size n), accumulated in order k = 0..n-1. */
int pt_mix(const pt_tensor *const *ys, int n, const pt_tensor *weights, pt_tensor **out);
/* Gumbel-softmax along the last dim with noise from g (drawn on the CPU); hard = straight-through. */
int pt_gumbel_softmax_gen(const pt_tensor *a, double tau, int hard, pt_gen *g, pt_tensor **out);
/* Index of the largest element (flattened; ties: the first). */
int pt_argmax(const pt_tensor *a, int64_t *out);

/* ---------------------------------------------------------------- losses */

/* Mean cross-entropy of logits [B, K] against int64 labels [B] with label smoothing; a 0-dim tensor. */
int pt_cross_entropy(const pt_tensor *logits, const pt_tensor *y, double label_smoothing, pt_tensor **out);
/* T^2 * KL(softmax(teacher/T) || softmax(logits/T)), summed over classes, mean over the batch;
 * the teacher is detached. */
int pt_kd_loss(const pt_tensor *logits, const pt_tensor *teacher, double temperature, pt_tensor **out);
/* Rows of logits [B, K] whose argmax equals y [B]. */
int pt_count_correct(const pt_tensor *logits, const pt_tensor *y, int64_t *out);

/* ---------------------------------------------------------------- optimizers */

/* An optimizer over parameter groups; it keeps its own references to the parameter tensors, so
 * the handles passed in stay owned by the caller. pt_optim_free(NULL) is a no-op. */
typedef struct pt_optim pt_optim;
/* SGD (momentum, dampening 0, Nesterov, L2 weight decay) over params[0..n) as group 0. */
int pt_optim_sgd(const pt_tensor *const *params, int n, double lr, double momentum, double weight_decay, int nesterov,
                 pt_optim **out);
/* Adam (weight decay as L2 on the gradient, like torch.optim.Adam). */
int pt_optim_adam(const pt_tensor *const *params, int n, double lr, double beta1, double beta2, double eps, double weight_decay,
                  pt_optim **out);
void pt_optim_free(pt_optim *o);
/* A further group with its own lr and weight decay; other options copied from the defaults. */
int pt_optim_add_group(pt_optim *o, const pt_tensor *const *params, int n, double lr, double weight_decay);
int pt_optim_n_groups(const pt_optim *o, int *out);
/* group = -1: every group. */
int pt_optim_set_lr(pt_optim *o, int group, double lr);
int pt_optim_get_lr(const pt_optim *o, int group, double *out);
int pt_optim_step(pt_optim *o);
/* torch.nn.utils.clip_grad_norm_ over every parameter of every group that has a gradient: scales the
 * gradients so that their joint 2-norm is at most max_norm; *total (may be NULL) gets the norm before. */
int pt_optim_clip_grad_norm(pt_optim *o, double max_norm, double *total);
/* Drops the gradients of every parameter. */
int pt_optim_zero_grad(pt_optim *o);
/* The optimizer's full state (groups, options, momentum buffers / moments) as bytes in a new
 * malloc'ed *buf (caller frees with free()); and its restore into an optimizer made the same way. */
int pt_optim_save(const pt_optim *o, uint8_t **buf, size_t *len);
int pt_optim_load(pt_optim *o, const uint8_t *buf, size_t len);

/* ---------------------------------------------------------------- named tensors (libtorch archive format) */

/* Writes n named tensors (copied to the CPU) to path in libtorch's archive format. Not atomic:
 * pinas files use safetensors (common/); this is for exchange with C++ libtorch code. */
int pt_save_named(const char *path, const char *const *names, const pt_tensor *const *ts, int n);
/* Reads the tensor `name` from such a file; a new handle. */
int pt_load_named(const char *path, const char *name, pt_tensor **out);

/* ---------------------------------------------------------------- data-parallel (c10d) */

/* A member of a c10d process group: `backend` "gloo" (CPU tensors) or "nccl" (CUDA tensors; only in a
 * CUDA build of libtorch), rendezvous through a TCPStore at addr:port that rank 0 hosts. Blocks until
 * all `world` ranks have joined; fails after timeout_ms naming the ranks that did not join (a watchdog
 * covers a backend that hangs while connecting). Every collective below waits at most timeout_ms; a
 * failure's message names the rank to blame (no heartbeat: died or frozen; behind: stalled; the store
 * gone: rank 0). Owned by the caller; pt_dist_free(NULL) is a no-op. Free it on every rank only after
 * a last collective (rank 0's store must outlive the others' use of it). */
typedef struct pt_dist pt_dist;
int pt_dist_create(const char *backend, const char *addr, int port, int rank, int world, int64_t timeout_ms, pt_dist **out);
void pt_dist_free(pt_dist *d);
/* 1 when this build has the backend ("gloo" always; "nccl" with CUDA libtorch), else 0. */
int pt_dist_backend_built(const char *backend);
/* Scales the gradients of params[0..n) by `scale`, then sums them over the ranks in place, as one
 * flattened bucket; parameters without a gradient are skipped (they must be the same on every
 * rank). With scale = local batch / global batch the result is the global batch's mean gradient. */
int pt_dist_allreduce_grads(pt_dist *d, pt_tensor *const *params, int n, double scale);
/* Sums v[0..n) over the ranks in place. */
int pt_dist_allreduce_f64(pt_dist *d, double *v, int n);
/* Overwrites ts[0..n) (no autograd record) with root's values. */
int pt_dist_broadcast(pt_dist *d, pt_tensor *const *ts, int n, int root);
/* Waits until every rank gets here (under the timeout). */
int pt_dist_barrier(pt_dist *d);
/* Seconds this rank has spent in collectives so far (for the all-reduce share of a step). */
double pt_dist_comm_seconds(const pt_dist *d);

#ifdef __cplusplus
}
#endif
#endif
