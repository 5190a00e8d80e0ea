// The libtorch shim: every body guarded, errors kept in a thread-local buffer, handles opaque.
#include "torch_shim.h"

#include <torch/torch.h>

#include <cstring>
#include <exception>
#include <string>

struct pt_tensor {
    at::Tensor t;
};

static thread_local char pt_err[2048];

static void set_err(const char *what)
{
    std::snprintf(pt_err, sizeof pt_err, "%s", what ? what : "unknown error");
}

// c10::Error messages carry a C++ backtrace after the first line; keep the first line only.
static void set_err_c10(const c10::Error &e)
{
    std::string m = e.what_without_backtrace();
    set_err(m.c_str());
}

#define PT_GUARD(body)                                                                                                 \
    try {                                                                                                              \
        body;                                                                                                          \
        return 0;                                                                                                      \
    } catch (const c10::Error &e) {                                                                                    \
        set_err_c10(e);                                                                                                \
    } catch (const std::exception &e) {                                                                                \
        set_err(e.what());                                                                                             \
    } catch (...) {                                                                                                    \
        set_err("unknown C++ exception");                                                                              \
    }                                                                                                                  \
    return -1;

extern "C" {

const char *pt_errmsg(void) { return pt_err; }

void pt_free(pt_tensor *t) { delete t; }

int pt_manual_seed(uint64_t seed) { PT_GUARD(torch::manual_seed(seed)) }

int pt_set_threads(int n) { PT_GUARD(if (n > 0) at::set_num_threads(n)) }

int pt_cuda_available(void)
{
    try {
        return torch::cuda::is_available() ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

int pt_from_f32(const float *data, int ndim, const int64_t *shape, pt_tensor **out)
{
    *out = nullptr;
    PT_GUARD({
        std::vector<int64_t> s(shape, shape + ndim);
        at::Tensor t = torch::from_blob(const_cast<float *>(data), s, torch::kFloat32).clone();
        *out = new pt_tensor{t};
    })
}

int pt_to_f32(const pt_tensor *t, float *out, size_t numel)
{
    PT_GUARD({
        at::Tensor c = t->t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
        if ((size_t)c.numel() != numel)
            throw std::runtime_error("pt_to_f32: tensor has " + std::to_string(c.numel()) + " elements, buffer " +
                                     std::to_string(numel));
        std::memcpy(out, c.data_ptr<float>(), numel * sizeof(float));
    })
}

int pt_numel(const pt_tensor *t, int64_t *out) { PT_GUARD(*out = t->t.numel()) }

int pt_shape(const pt_tensor *t, int *ndim, int64_t *shape, int max_dims)
{
    PT_GUARD({
        *ndim = (int)t->t.dim();
        for (int i = 0; i < *ndim && i < max_dims; i++) shape[i] = t->t.size(i);
    })
}

} // extern "C"
