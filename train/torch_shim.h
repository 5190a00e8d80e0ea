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

#ifdef __cplusplus
}
#endif
#endif
