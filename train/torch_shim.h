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

#ifdef __cplusplus
}
#endif
#endif
