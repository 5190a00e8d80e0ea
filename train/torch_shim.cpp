// The libtorch shim: every body guarded, errors kept in a thread-local buffer, handles opaque.
#include "torch_shim.h"

#include <torch/torch.h>

#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>

/* c10d: Gloo always (Debian's libtorch has it; the headers come from libgloo-dev), NCCL only in a
 * CUDA build of libtorch (CMake defines PINAS_WITH_NCCL there), so the CPU build never needs NCCL. */
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(PINAS_WITH_NCCL)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

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

#define PT_GUARD(...)                                                                                                 \
    try {                                                                                                              \
        __VA_ARGS__;                                                                                                   \
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

/* ------------------------------------------------------------------ devices, conversions */

static c10::Device parse_device(const char *device)
{
    std::string d = device ? device : "cpu";
    if (d == "cpu") return c10::Device(c10::kCPU);
    if (d == "cuda" || d.rfind("cuda:", 0) == 0) {
        if (!torch::cuda::is_available())
            throw std::runtime_error("device \"" + d + "\" requested, but this libtorch has no CUDA support or no GPU is present");
        return c10::Device(d);
    }
    throw std::runtime_error("unknown device \"" + d + "\" (cpu, cuda)");
}

static at::Tensor opt_tensor(const pt_tensor *t) { return t ? t->t : at::Tensor(); }

int pt_device_check(const char *device) { PT_GUARD((void)parse_device(device)) }

int pt_to_device(const pt_tensor *t, const char *device, pt_tensor **out) { PT_NEW(t->t.to(parse_device(device))) }

int pt_cuda_synchronize(void)
{
    PT_GUARD({
        if (torch::cuda::is_available()) torch::cuda::synchronize();
    })
}

int pt_from_i64(const int64_t *data, int ndim, const int64_t *shape, pt_tensor **out)
{
    *out = nullptr;
    PT_GUARD({
        std::vector<int64_t> s(shape, shape + ndim);
        at::Tensor t = torch::from_blob(const_cast<int64_t *>(data), s, torch::kInt64).clone();
        *out = new pt_tensor{t};
    })
}

int pt_to_i64(const pt_tensor *t, int64_t *out, size_t numel)
{
    PT_GUARD({
        at::Tensor c = t->t.detach().to(torch::kCPU, torch::kInt64).contiguous();
        if ((size_t)c.numel() != numel)
            throw std::runtime_error("pt_to_i64: tensor has " + std::to_string(c.numel()) + " elements, buffer " +
                                     std::to_string(numel));
        std::memcpy(out, c.data_ptr<int64_t>(), numel * sizeof(int64_t));
    })
}

int pt_copy_from_f32(pt_tensor *t, const float *data, size_t numel)
{
    PT_GUARD({
        if ((size_t)t->t.numel() != numel)
            throw std::runtime_error("pt_copy_from_f32: tensor has " + std::to_string(t->t.numel()) + " elements, buffer " +
                                     std::to_string(numel));
        at::NoGradGuard ng;
        at::Tensor src = torch::from_blob(const_cast<float *>(data), t->t.sizes(), torch::kFloat32);
        t->t.copy_(src);
    })
}

int pt_copy_(pt_tensor *dst, const pt_tensor *src)
{
    PT_GUARD({
        at::NoGradGuard ng;
        dst->t.copy_(src->t);
    })
}

int pt_fill_(pt_tensor *t, double v)
{
    PT_GUARD({
        at::NoGradGuard ng;
        t->t.fill_(v);
    })
}

int pt_ref(const pt_tensor *t, pt_tensor **out) { PT_NEW(t->t) }
int pt_clone(const pt_tensor *t, pt_tensor **out) { PT_NEW(t->t.clone()) }
int pt_detach(const pt_tensor *t, pt_tensor **out) { PT_NEW(t->t.detach()) }
int pt_reshape(const pt_tensor *t, int ndim, const int64_t *shape, pt_tensor **out)
{
    PT_NEW(t->t.reshape(std::vector<int64_t>(shape, shape + ndim)))
}

/* ------------------------------------------------------------------ generators */

struct pt_gen {
    at::Generator g;
};

int pt_gen_create(uint64_t seed, pt_gen **out)
{
    *out = nullptr;
    PT_GUARD({ *out = new pt_gen{at::make_generator<at::CPUGeneratorImpl>(seed)}; })
}

void pt_gen_free(pt_gen *g) { delete g; }

int pt_gen_state_size(const pt_gen *g, size_t *n) { PT_GUARD(*n = (size_t)g->g.get_state().numel()) }

int pt_gen_get_state(const pt_gen *g, uint8_t *buf, size_t n)
{
    PT_GUARD({
        at::Tensor s = g->g.get_state().contiguous();
        if ((size_t)s.numel() != n)
            throw std::runtime_error("generator state has " + std::to_string(s.numel()) + " bytes, buffer " + std::to_string(n));
        std::memcpy(buf, s.data_ptr<uint8_t>(), n);
    })
}

int pt_gen_set_state(pt_gen *g, const uint8_t *buf, size_t n)
{
    PT_GUARD({
        at::Tensor s = torch::from_blob(const_cast<uint8_t *>(buf), {(int64_t)n}, torch::kUInt8).clone();
        std::lock_guard<std::mutex> lock(g->g.mutex());
        g->g.set_state(s);
    })
}

int pt_normal_(pt_tensor *t, double mean, double std, pt_gen *g)
{
    PT_GUARD({
        at::NoGradGuard ng;
        // ATen's kernels lock the generator themselves (its mutex is not recursive).
        if (t->t.device().is_cpu()) {
            t->t.normal_(mean, std, g->g);
        } else {
            at::Tensor c = at::empty(t->t.sizes(), t->t.options().device(c10::kCPU));
            c.normal_(mean, std, g->g);
            t->t.copy_(c);
        }
    })
}

int pt_uniform_(pt_tensor *t, double lo, double hi, pt_gen *g)
{
    PT_GUARD({
        at::NoGradGuard ng;
        at::Tensor c = t->t.device().is_cpu() ? t->t : at::empty(t->t.sizes(), t->t.options().device(c10::kCPU));
        c.uniform_(lo, hi, g->g);
        if (!t->t.device().is_cpu()) t->t.copy_(c);
    })
}

/* ------------------------------------------------------------------ layers */

int pt_conv2d(const pt_tensor *x, const pt_tensor *w, const pt_tensor *b, int stride, int pad, int groups, pt_tensor **out)
{
    PT_NEW(torch::conv2d(x->t, w->t, opt_tensor(b), {stride, stride}, {pad, pad}, {1, 1}, groups))
}

int pt_batch_norm(const pt_tensor *x, const pt_tensor *w, const pt_tensor *b, pt_tensor *running_mean, pt_tensor *running_var,
                  int training, double momentum, double eps, pt_tensor **out)
{
    PT_NEW(torch::batch_norm(x->t, opt_tensor(w), opt_tensor(b), opt_tensor(running_mean), opt_tensor(running_var), training != 0,
                             momentum, eps, at::globalContext().userEnabledCuDNN()))
}

int pt_linear(const pt_tensor *x, const pt_tensor *w, const pt_tensor *b, pt_tensor **out)
{
    PT_NEW(torch::linear(x->t, w->t, opt_tensor(b)))
}

int pt_relu(const pt_tensor *x, pt_tensor **out) { PT_NEW(torch::relu(x->t)) }

int pt_max_pool2d(const pt_tensor *x, int kh, int kw, int stride, int pad, pt_tensor **out)
{
    PT_NEW(torch::max_pool2d(x->t, {kh, kw}, {stride, stride}, {pad, pad}))
}

int pt_avg_pool2d(const pt_tensor *x, int kh, int kw, int stride, int pad, int ceil_mode, int count_include_pad, pt_tensor **out)
{
    PT_NEW(torch::avg_pool2d(x->t, {kh, kw}, {stride, stride}, {pad, pad}, ceil_mode != 0, count_include_pad != 0))
}

int pt_global_avg_pool(const pt_tensor *x, pt_tensor **out)
{
    PT_GUARD({
        *out = nullptr;
        if (x->t.dim() != 4) throw std::runtime_error("global_avg_pool: expected a 4-d input, got " + std::to_string(x->t.dim()) + "-d");
        *out = new pt_tensor{x->t.mean({2, 3}, true)};
    })
}

// x * upsample(1[avgpool_phxpw(x) > 0]): one sign per patch, taken on the patch mean (ceil mode, so a
// partial last patch has its own sign). The mask is a constant, so the gradient flows through x only.
static at::Tensor patch_relu(const at::Tensor &x, int ph, int pw)
{
    if (x.dim() != 4) throw std::runtime_error("patch_relu: expected a 4-d input, got " + std::to_string(x.dim()) + "-d");
    if (ph < 1 || pw < 1) throw std::runtime_error("patch_relu: patch size must be positive");
    int64_t h = x.size(2), w = x.size(3);
    at::Tensor m;
    {
        at::NoGradGuard ng;
        m = torch::avg_pool2d(x.detach(), {ph, pw}, {ph, pw}, {0, 0}, true, false).gt(0).to(x.scalar_type());
        m = m.repeat_interleave(ph, 2).repeat_interleave(pw, 3);
        if (m.size(2) != h || m.size(3) != w) m = m.narrow(2, 0, h).narrow(3, 0, w);
    }
    return x * m;
}

int pt_patch_relu(const pt_tensor *x, int ph, int pw, pt_tensor **out) { PT_NEW(patch_relu(x->t, ph, pw)) }

// s*w0*x^2 + w1*x + b, with w0, w1, b of shape [1] or [C] (per channel of a [B, C, ...] input).
static at::Tensor poly(const at::Tensor &x, const at::Tensor &w0, const at::Tensor &w1, const at::Tensor &b, double s)
{
    if (w0.dim() != 1 || w1.sizes() != w0.sizes() || b.sizes() != w0.sizes())
        throw std::runtime_error("poly: w0, w1 and b must be 1-d of the same size");
    int64_t m = w0.size(0);
    std::vector<int64_t> shp(x.dim(), 1);
    if (m != 1) {
        if (x.dim() < 2 || x.size(1) != m)
            throw std::runtime_error("poly: " + std::to_string(m) + " per-channel coefficients for an input with " +
                                     (x.dim() < 2 ? std::string("no channel dim") : std::to_string(x.size(1)) + " channels"));
        shp[1] = m;
    }
    at::Tensor a0 = w0.view(shp), a1 = w1.view(shp), c = b.view(shp);
    return (a0 * s) * x * x + a1 * x + c;
}

int pt_poly(const pt_tensor *x, const pt_tensor *w0, const pt_tensor *w1, const pt_tensor *b, double s, pt_tensor **out)
{
    PT_NEW(poly(x->t, w0->t, w1->t, b->t, s))
}

// sum_k w[k] * ys[k]: the DARTS mixed op, accumulated in order so that one-hot weights give the chosen
// output exactly (1*y + 0*z == y for finite z).
int pt_mix(const pt_tensor *const *ys, int n, const pt_tensor *weights, pt_tensor **out)
{
    PT_GUARD({
        *out = nullptr;
        if (n < 1) throw std::runtime_error("mix: no inputs");
        if (weights->t.dim() != 1 || weights->t.size(0) != n)
            throw std::runtime_error("mix: " + std::to_string(n) + " inputs but weights of shape " + c10::str(weights->t.sizes()));
        at::Tensor acc = ys[0]->t * weights->t[0];
        for (int k = 1; k < n; k++) acc = acc + ys[k]->t * weights->t[k];
        *out = new pt_tensor{acc};
    })
}

int pt_gumbel_softmax_gen(const pt_tensor *a, double tau, int hard, pt_gen *g, pt_tensor **out)
{
    PT_GUARD({
        *out = nullptr;
        if (!(tau > 0)) throw std::runtime_error("gumbel_softmax: temperature must be positive");
        at::Tensor e = at::empty(a->t.sizes(), a->t.options().device(c10::kCPU).requires_grad(false));
        e.exponential_(1, g->g);
        at::Tensor gumbels = -e.log();
        if (!a->t.device().is_cpu()) gumbels = gumbels.to(a->t.device());
        at::Tensor y = torch::softmax((a->t + gumbels) / tau, -1);
        if (hard) {
            at::Tensor idx = std::get<1>(y.max(-1, true));
            at::Tensor oh = torch::zeros_like(y).scatter_(-1, idx, 1.0);
            y = oh - y.detach() + y;
        }
        *out = new pt_tensor{y};
    })
}

int pt_argmax(const pt_tensor *a, int64_t *out) { PT_GUARD(*out = a->t.argmax().item<int64_t>()) }

/* ------------------------------------------------------------------ losses */

int pt_cross_entropy(const pt_tensor *logits, const pt_tensor *y, double label_smoothing, pt_tensor **out)
{
    PT_NEW(torch::nn::functional::cross_entropy(logits->t, y->t,
                                                torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing)))
}

int pt_kd_loss(const pt_tensor *logits, const pt_tensor *teacher, double temperature, pt_tensor **out)
{
    PT_GUARD({
        *out = nullptr;
        if (!(temperature > 0)) throw std::runtime_error("kd_loss: temperature must be positive");
        if (logits->t.sizes() != teacher->t.sizes())
            throw std::runtime_error("kd_loss: student logits " + c10::str(logits->t.sizes()) + " vs teacher " +
                                     c10::str(teacher->t.sizes()));
        at::Tensor lp = torch::log_softmax(logits->t / temperature, 1);
        at::Tensor tp = torch::softmax(teacher->t.detach() / temperature, 1);
        at::Tensor kl = torch::kl_div(lp, tp, at::Reduction::Sum) / logits->t.size(0);
        *out = new pt_tensor{kl * (temperature * temperature)};
    })
}

int pt_count_correct(const pt_tensor *logits, const pt_tensor *y, int64_t *out)
{
    PT_GUARD({
        if (logits->t.dim() != 2 || y->t.dim() != 1 || logits->t.size(0) != y->t.size(0))
            throw std::runtime_error("count_correct: logits " + c10::str(logits->t.sizes()) + " and labels " + c10::str(y->t.sizes()) +
                                     " do not match");
        *out = logits->t.detach().argmax(1).eq(y->t).sum().item<int64_t>();
    })
}

/* ------------------------------------------------------------------ optimizers */

struct pt_optim {
    std::unique_ptr<torch::optim::Optimizer> o;
    int kind; // 0 SGD, 1 Adam
};

static std::vector<at::Tensor> tensor_list(const pt_tensor *const *params, int n)
{
    if (n < 0) throw std::runtime_error("negative parameter count");
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int i = 0; i < n; i++) {
        if (!params[i]) throw std::runtime_error("parameter #" + std::to_string(i) + " is NULL");
        if (!params[i]->t.is_leaf()) throw std::runtime_error("parameter #" + std::to_string(i) + " is not a leaf tensor");
        v.push_back(params[i]->t);
    }
    return v;
}

int pt_optim_sgd(const pt_tensor *const *params, int n, double lr, double momentum, double weight_decay, int nesterov,
                 pt_optim **out)
{
    *out = nullptr;
    PT_GUARD({
        auto opts = torch::optim::SGDOptions(lr).momentum(momentum).weight_decay(weight_decay).nesterov(nesterov != 0);
        auto o = std::make_unique<torch::optim::SGD>(tensor_list(params, n), opts);
        *out = new pt_optim{std::move(o), 0};
    })
}

int pt_optim_adam(const pt_tensor *const *params, int n, double lr, double beta1, double beta2, double eps, double weight_decay,
                  pt_optim **out)
{
    *out = nullptr;
    PT_GUARD({
        auto opts = torch::optim::AdamOptions(lr).betas(std::make_tuple(beta1, beta2)).eps(eps).weight_decay(weight_decay);
        auto o = std::make_unique<torch::optim::Adam>(tensor_list(params, n), opts);
        *out = new pt_optim{std::move(o), 1};
    })
}

void pt_optim_free(pt_optim *o) { delete o; }

int pt_optim_add_group(pt_optim *o, const pt_tensor *const *params, int n, double lr, double weight_decay)
{
    PT_GUARD({
        std::unique_ptr<torch::optim::OptimizerOptions> opts;
        if (o->kind == 0) {
            auto s = static_cast<const torch::optim::SGDOptions &>(o->o->defaults());
            opts = std::make_unique<torch::optim::SGDOptions>(s.lr(lr).weight_decay(weight_decay));
        } else {
            auto a = static_cast<const torch::optim::AdamOptions &>(o->o->defaults());
            opts = std::make_unique<torch::optim::AdamOptions>(a.lr(lr).weight_decay(weight_decay));
        }
        o->o->add_param_group(torch::optim::OptimizerParamGroup(tensor_list(params, n), std::move(opts)));
    })
}

int pt_optim_n_groups(const pt_optim *o, int *out) { PT_GUARD(*out = (int)o->o->param_groups().size()) }

int pt_optim_set_lr(pt_optim *o, int group, double lr)
{
    PT_GUARD({
        auto &groups = o->o->param_groups();
        if (group >= (int)groups.size()) throw std::runtime_error("optimizer has no group " + std::to_string(group));
        for (int g = 0; g < (int)groups.size(); g++)
            if (group < 0 || g == group) groups[g].options().set_lr(lr);
    })
}

int pt_optim_get_lr(const pt_optim *o, int group, double *out)
{
    PT_GUARD({
        const auto &groups = o->o->param_groups();
        if (group < 0 || group >= (int)groups.size()) throw std::runtime_error("optimizer has no group " + std::to_string(group));
        *out = groups[group].options().get_lr();
    })
}

int pt_optim_step(pt_optim *o) { PT_GUARD({ o->o->step(); }) }

int pt_optim_clip_grad_norm(pt_optim *o, double max_norm, double *total)
{
    PT_GUARD({
        std::vector<at::Tensor> v;
        for (auto &g : o->o->param_groups())
            for (auto &p : g.params())
                if (p.grad().defined()) v.push_back(p);
        double t = v.empty() ? 0.0 : torch::nn::utils::clip_grad_norm_(v, max_norm);
        if (total) *total = t;
    })
}

int pt_optim_zero_grad(pt_optim *o)
{
    PT_GUARD({
        for (auto &g : o->o->param_groups())
            for (auto &p : g.params())
                if (p.grad().defined()) p.mutable_grad() = at::Tensor();
    })
}

int pt_optim_save(const pt_optim *o, uint8_t **buf, size_t *len)
{
    *buf = nullptr;
    *len = 0;
    PT_GUARD({
        torch::serialize::OutputArchive ar;
        o->o->save(ar);
        std::ostringstream os;
        ar.save_to(os);
        std::string s = os.str();
        uint8_t *b = (uint8_t *)std::malloc(s.size() ? s.size() : 1);
        if (!b) throw std::bad_alloc();
        std::memcpy(b, s.data(), s.size());
        *buf = b;
        *len = s.size();
    })
}

int pt_optim_load(pt_optim *o, const uint8_t *buf, size_t len)
{
    PT_GUARD({
        std::istringstream is(std::string((const char *)buf, len));
        // Momentum buffers and moments go to the device of the parameters (a CUDA run resumes on CUDA).
        c10::optional<c10::Device> dev;
        for (auto &g : o->o->param_groups())
            if (!g.params().empty()) {
                dev = g.params()[0].device();
                break;
            }
        torch::serialize::InputArchive ar;
        ar.load_from(is, dev);
        o->o->load(ar);
        // load() restores per-parameter state only; the groups' options (lr, weight decay, ...) are in the
        // archive too, so read them back as well for an exact resume.
        torch::serialize::InputArchive pga;
        ar.read("param_groups", pga);
        std::vector<std::pair<std::vector<std::string>, std::unique_ptr<torch::optim::OptimizerOptions>>> saved;
        if (o->kind == 0)
            torch::optim::detail::serialize<torch::optim::SGDOptions>(pga, saved);
        else
            torch::optim::detail::serialize<torch::optim::AdamOptions>(pga, saved);
        auto &groups = o->o->param_groups();
        if (saved.size() != groups.size()) throw std::runtime_error("optimizer state has a different number of parameter groups");
        for (size_t i = 0; i < saved.size(); i++) groups[i].set_options(std::move(saved[i].second));
    })
}

/* ------------------------------------------------------------------ named tensors */

int pt_save_named(const char *path, const char *const *names, const pt_tensor *const *ts, int n)
{
    PT_GUARD({
        torch::serialize::OutputArchive ar;
        for (int i = 0; i < n; i++) ar.write(names[i], ts[i]->t.detach().cpu());
        ar.save_to(std::string(path));
    })
}

int pt_load_named(const char *path, const char *name, pt_tensor **out)
{
    *out = nullptr;
    PT_GUARD({
        torch::serialize::InputArchive ar;
        ar.load_from(std::string(path));
        at::Tensor t;
        if (!ar.try_read(name, t)) throw std::runtime_error(std::string(path) + ": no tensor named \"" + name + "\"");
        *out = new pt_tensor{t};
    })
}

} // extern "C"

/* ------------------------------------------------------------------ data-parallel (c10d) */

/* A c10d process group over a TCPStore rendezvous, with a heartbeat so that a failed collective can
 * name the rank that died or stalled. The store is hosted by rank 0. */
struct pt_dist {
    int rank = 0, world = 1;
    std::string addr, backend;
    int port = 0;
    std::chrono::milliseconds timeout{300000};
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroup> pg;
    std::atomic<int64_t> seq{0};          /* collectives entered */
    std::atomic<bool> stop{false};
    std::thread hb;
    double comm_s = 0;
    ~pt_dist()
    {
        stop = true;
        if (hb.joinable()) hb.join();
    }
};

static std::string dist_key(const char *what, int r) { return std::string("pinas/") + what + "/" + std::to_string(r); }

static c10::intrusive_ptr<c10d::Store> dist_client(const std::string &addr, int port, std::chrono::milliseconds timeout)
{
    c10d::TCPStoreOptions so;
    so.port = (std::uint16_t)port;
    so.isServer = false;
    so.waitWorkers = false;
    so.timeout = timeout;
    return c10::make_intrusive<c10d::TCPStore>(addr, so);
}

/* Every 300 ms: bump this rank's heartbeat and publish how many collectives it has entered. Uses
 * its own store connection; stops quietly when the store is gone. */
static void dist_heartbeat(pt_dist *d)
{
    try {
        auto st = dist_client(d->addr, d->port, d->timeout);
        int64_t published = -1;
        while (!d->stop) {
            st->add(dist_key("hb", d->rank), 1);
            int64_t q = d->seq.load();
            if (q != published) {
                std::string v = std::to_string(q);
                st->set(dist_key("seq", d->rank), std::vector<uint8_t>(v.begin(), v.end()));
                published = q;
            }
            for (int i = 0; i < 6 && !d->stop; i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    } catch (...) {
    }
}

/* Which rank is to blame for a failed collective: the ranks whose heartbeat stopped (dead or
 * frozen), else those behind this rank's collective count (stalled), else the rendezvous host when
 * the store cannot be reached. */
static std::string dist_diagnose(pt_dist *d)
{
    try {
        auto st = dist_client(d->addr, d->port, std::chrono::milliseconds(3000));
        std::vector<int64_t> h0(d->world), h1(d->world);
        for (int r = 0; r < d->world; r++) h0[r] = st->add(dist_key("hb", r), 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        for (int r = 0; r < d->world; r++) h1[r] = st->add(dist_key("hb", r), 0);
        std::string dead, behind;
        int64_t mine = d->seq.load();
        for (int r = 0; r < d->world; r++) {
            if (r == d->rank) continue;
            if (h1[r] == h0[r]) {
                dead += (dead.empty() ? "" : ", ") + std::to_string(r);
                continue;
            }
            int64_t q = -1;
            if (st->check({dist_key("seq", r)})) {
                auto v = st->get(dist_key("seq", r));
                q = std::stoll(std::string(v.begin(), v.end()));
            }
            if (q < mine) behind += (behind.empty() ? "" : ", ") + std::to_string(r) + " (at collective " + std::to_string(q) + ")";
        }
        if (!dead.empty()) return "rank " + dead + " died or froze (no heartbeat)";
        if (!behind.empty()) return "rank " + behind + " stalled before collective " + std::to_string(mine);
        return "no rank is known to have failed";
    } catch (...) {
        return "rank 0 (hosting the rendezvous store at " + d->addr + ":" + std::to_string(d->port) + ") is unreachable";
    }
}

/* Runs one collective; on failure the error names the rank to blame, then the backend's message. */
template <class F> static void dist_run(pt_dist *d, const char *what, F &&f)
{
    d->seq++;
    auto t0 = std::chrono::steady_clock::now();
    try {
        auto w = f();
        w->wait();
    } catch (const std::exception &e) {
        std::string m = e.what();
        size_t nl = m.find('\n');
        if (nl != std::string::npos) m.resize(nl);
        throw std::runtime_error("rank " + std::to_string(d->rank) + ": " + what + " failed: " + dist_diagnose(d) + " [" + d->backend + ": " + m + "]");
    }
    d->comm_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

static c10::intrusive_ptr<c10d::ProcessGroup> dist_make_pg(pt_dist *d)
{
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("pinas/pg", d->store);
#if defined(PINAS_WITH_NCCL)
    if (d->backend == "nccl") {
        /* Without blocking wait NCCL's wait() ignores the timeout and a dead peer hangs the rank. */
        setenv("NCCL_BLOCKING_WAIT", "1", 0);
        auto o = c10d::ProcessGroupNCCL::Options::create();
        o->timeout = d->timeout;
        return c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, d->rank, d->world, o);
    }
#endif
    if (d->backend != "gloo") throw std::runtime_error("backend " + d->backend + " is not in this libtorch build (gloo is; nccl needs CUDA libtorch)");
    auto o = c10d::ProcessGroupGloo::Options::create(d->timeout);
    /* Loopback rendezvous stays on loopback; otherwise the address this host resolves to. */
    bool local = d->addr == "127.0.0.1" || d->addr == "localhost";
    o->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                               : c10d::ProcessGroupGloo::createDefaultDevice());
    o->threads = 1;
    return c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, d->rank, d->world, o);
}

/* The ranks that have not joined the rendezvous (for a timed-out start). */
static std::string dist_missing(pt_dist *d)
{
    std::string m;
    try {
        for (int r = 0; r < d->world; r++)
            if (!d->store->check({dist_key("join", r)})) m += (m.empty() ? "" : ", ") + std::to_string(r);
    } catch (...) {
        return "?";
    }
    return m.empty() ? "none" : m;
}

static void dist_join(pt_dist *d)
{
    c10d::TCPStoreOptions so;
    so.port = (std::uint16_t)d->port;
    so.isServer = d->rank == 0;
    so.waitWorkers = false;
    so.timeout = d->timeout;
    try {
        d->store = c10::make_intrusive<c10d::TCPStore>(d->addr, so);
    } catch (const std::exception &e) {
        std::string m = e.what();
        m.resize(std::min(m.find('\n'), m.size()));
        throw std::runtime_error("rank " + std::to_string(d->rank) + ": cannot reach the rendezvous store at " + d->addr + ":" +
                                 std::to_string(d->port) + (d->rank == 0 ? " (hosting it)" : " (hosted by rank 0)") + ": " + m);
    }
    std::string one = "1";
    d->store->set(dist_key("join", d->rank), std::vector<uint8_t>(one.begin(), one.end()));
    /* A watchdog over the process group's connection: if the backend hangs past the timeout, fail. */
    auto done = std::make_shared<std::promise<c10::intrusive_ptr<c10d::ProcessGroup>>>();
    auto fut = done->get_future();
    std::thread([d, done]() {
        try {
            done->set_value(dist_make_pg(d));
        } catch (...) {
            try {
                done->set_exception(std::current_exception());
            } catch (...) {
            }
        }
    }).detach();
    auto grace = d->timeout + std::chrono::milliseconds(5000);
    std::string why;
    if (fut.wait_for(grace) != std::future_status::ready) why = "timed out";
    else
        try {
            d->pg = fut.get();
        } catch (const std::exception &e) {
            why = e.what();
            why.resize(std::min(why.find('\n'), why.size()));
        }
    if (!why.empty())
        throw std::runtime_error("rank " + std::to_string(d->rank) + ": rendezvous of " + std::to_string(d->world) + " ranks at " + d->addr + ":" +
                                 std::to_string(d->port) + " failed after " + std::to_string(d->timeout.count() / 1000) +
                                 " s; ranks not joined: " + dist_missing(d) + " [" + why + "]");
}

extern "C" {

int pt_dist_create(const char *backend, const char *addr, int port, int rank, int world, int64_t timeout_ms, pt_dist **out)
{
    *out = nullptr;
    PT_GUARD({
        if (world < 1 || rank < 0 || rank >= world) throw std::runtime_error("rank " + std::to_string(rank) + " out of a world of " + std::to_string(world));
        if (port < 1 || port > 65535) throw std::runtime_error("rendezvous port " + std::to_string(port) + " out of range");
        std::unique_ptr<pt_dist> d(new pt_dist);
        d->rank = rank;
        d->world = world;
        d->addr = addr;
        d->port = port;
        d->backend = backend;
        d->timeout = std::chrono::milliseconds(timeout_ms);
        dist_join(d.get());
        d->hb = std::thread(dist_heartbeat, d.get());
        *out = d.release();
    })
}

void pt_dist_free(pt_dist *d) { delete d; }

int pt_dist_backend_built(const char *backend)
{
    std::string b = backend ? backend : "";
#if defined(PINAS_WITH_NCCL)
    if (b == "nccl") return 1;
#endif
    return b == "gloo";
}

/* Flattens ts into one bucket, all-reduces (sum) it and copies the sums back. */
static void dist_allreduce_bucket(pt_dist *d, const std::vector<at::Tensor> &ts, const char *what)
{
    if (ts.empty()) return;
    std::vector<at::Tensor> flat;
    flat.reserve(ts.size());
    for (auto &t : ts) flat.push_back(t.detach().reshape({-1}));
    std::vector<at::Tensor> bucket{at::cat(flat)};
    dist_run(d, what, [&]() { return d->pg->allreduce(bucket); });
    int64_t off = 0;
    for (auto &t : ts) {
        int64_t n = t.numel();
        t.detach().copy_(bucket[0].narrow(0, off, n).view_as(t));
        off += n;
    }
}

int pt_dist_allreduce_grads(pt_dist *d, pt_tensor *const *params, int n, double scale)
{
    PT_GUARD({
        std::vector<at::Tensor> gs;
        for (int i = 0; i < n; i++) {
            at::Tensor g = params[i]->t.grad();
            if (!g.defined()) continue;
            if (scale != 1.0) g.mul_(scale);
            gs.push_back(g);
        }
        dist_allreduce_bucket(d, gs, "all-reduce of gradients");
    })
}

int pt_dist_allreduce_f64(pt_dist *d, double *v, int n)
{
    PT_GUARD({
        at::Tensor t = torch::from_blob(v, {n}, torch::kFloat64).clone();
        if (d->backend == "nccl") t = t.to(torch::kCUDA);
        std::vector<at::Tensor> one{t};
        dist_run(d, "all-reduce of statistics", [&]() { return d->pg->allreduce(one); });
        at::Tensor c = one[0].cpu().contiguous();
        std::memcpy(v, c.data_ptr<double>(), (size_t)n * sizeof(double));
    })
}

int pt_dist_broadcast(pt_dist *d, pt_tensor *const *ts, int n, int root)
{
    PT_GUARD({
        for (int i = 0; i < n; i++) {
            std::vector<at::Tensor> one{ts[i]->t.detach()};
            c10d::BroadcastOptions bo;
            bo.rootRank = root;
            dist_run(d, "broadcast", [&]() { return d->pg->broadcast(one, bo); });
        }
    })
}

int pt_dist_barrier(pt_dist *d)
{
    PT_GUARD({
        /* A one-element all-reduce: the same timeout and diagnosis as every other collective. */
        double one = 1;
        at::Tensor t = torch::from_blob(&one, {1}, torch::kFloat64).clone();
        if (d->backend == "nccl") t = t.to(torch::kCUDA);
        std::vector<at::Tensor> v{t};
        dist_run(d, "barrier", [&]() { return d->pg->allreduce(v); });
    })
}

double pt_dist_comm_seconds(const pt_dist *d) { return d ? d->comm_s : 0; }

} // extern "C"
