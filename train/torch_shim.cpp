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

#define PT_NEW(expr) PT_GUARD({ *out = nullptr; *out = new pt_tensor{(expr)}; })

int pt_zeros(int ndim, const int64_t *shape, pt_tensor **out)
{
    PT_NEW(torch::zeros(std::vector<int64_t>(shape, shape + ndim), torch::kFloat32))
}
int pt_add(const pt_tensor *a, const pt_tensor *b, pt_tensor **out) { PT_NEW(a->t + b->t) }
int pt_mul(const pt_tensor *a, const pt_tensor *b, pt_tensor **out) { PT_NEW(a->t * b->t) }
int pt_mul_scalar(const pt_tensor *a, double s, pt_tensor **out) { PT_NEW(a->t * s) }
int pt_add_scalar(const pt_tensor *a, double s, pt_tensor **out) { PT_NEW(a->t + s) }
int pt_pow_scalar(const pt_tensor *a, double e, pt_tensor **out) { PT_NEW(a->t.pow(e)) }
int pt_sum(const pt_tensor *a, pt_tensor **out) { PT_NEW(a->t.sum()) }
int pt_softmax(const pt_tensor *a, int dim, pt_tensor **out) { PT_NEW(torch::softmax(a->t, dim)) }
int pt_gumbel_softmax(const pt_tensor *a, double tau, int hard, pt_tensor **out)
{
    PT_NEW(torch::nn::functional::gumbel_softmax(a->t, torch::nn::functional::GumbelSoftmaxFuncOptions().tau(tau).hard(hard != 0).dim(-1)))
}
int pt_item(const pt_tensor *a, double *out) { PT_GUARD(*out = a->t.item<double>()) }

int pt_set_requires_grad(pt_tensor *t, int on) { PT_GUARD(t->t.requires_grad_(on != 0)) }
int pt_backward(const pt_tensor *loss) { PT_GUARD(loss->t.backward()) }
int pt_grad(const pt_tensor *t, pt_tensor **out)
{
    PT_GUARD({
        *out = nullptr;
        at::Tensor g = t->t.grad();
        if (g.defined()) *out = new pt_tensor{g.detach().clone()};
    })
}
int pt_zero_grad(pt_tensor *t)
{
    PT_GUARD({
        if (t->t.grad().defined()) t->t.mutable_grad() = at::Tensor();
    })
}
int pt_set_grad_enabled(int on, int *prev)
{
    PT_GUARD({
        if (prev) *prev = at::GradMode::is_enabled();
        at::GradMode::set_enabled(on != 0);
    })
}

} // extern "C"
