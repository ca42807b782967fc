// Fused BatchNorm dispatch (see fused_bn_ops.h): checks, then the CPU oracle or the CUDA kernels. The SE
// MLP of the bottleneck tail runs on [N, C] tensors with the ordinary tensor ops, in the statistics dtype.
#include "tensor/fused_bn_ops.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/check.h"
#include "kernels/cpu/fused_bn_kernels.h"
#include "kernels/cpu/fused_upsample_kernels.h"
#include "tensor/dispatch.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"

#if PNEUMO_WITH_CUDA
#include "kernels/cuda/fused_bn_kernels.h"
#include "kernels/cuda/fused_upsample_kernels.h"
#endif

namespace pneumo::layer_ops {
namespace {

std::atomic<int> g_fused{-1}, g_fused_concat{-1};

bool env_switch(std::atomic<int>& cached, const char* name) {
  int v = cached.load();
  if (v < 0) {
    const char* e = std::getenv(name);
    v = e && std::strcmp(e, "1") == 0 ? 1 : 0;
    cached.store(v);
  }
  return v == 1;
}

DType stats_dtype(DType dt) { return dt == DType::F64 ? DType::F64 : DType::F32; }

struct Dims {
  int64_t n, hw, c;
};

Dims check_x(const char* op, const Tensor& x) {
  check_defined(op, x);
  PNEUMO_CHECK(x.dim() == 4, op, ": expected an NHWC tensor [N, H, W, C], got ", shape_str(x.shape()));
  if (x.is_cuda())
    PNEUMO_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::BF16, op, ": CUDA supports F32 and BF16, got ",
                 dtype_name(x.dtype()));
  else
    PNEUMO_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64 || x.dtype() == DType::BF16, op,
                 ": CPU supports F32, F64 and BF16, got ", dtype_name(x.dtype()));
  const Dims d{x.size(0), x.size(1) * x.size(2), x.size(3)};
  PNEUMO_CHECK(d.n > 0 && d.hw > 0 && d.c > 0, op, ": empty input ", shape_str(x.shape()));
  return d;
}

// A statistics-dtype tensor of `numel` elements (a [C] vector or an [N, C] table), or undefined.
void check_stat(const char* op, const char* what, const Tensor& v, const Tensor& x, int64_t numel) {
  if (!v.defined()) return;
  PNEUMO_CHECK(v.numel() == numel, op, ": ", what, " must have ", numel, " elements, got ", shape_str(v.shape()),
               " for input ", shape_str(x.shape()));
  PNEUMO_CHECK(v.dtype() == stats_dtype(x.dtype()), op, ": ", what, " must be ", dtype_name(stats_dtype(x.dtype())),
               " for ", dtype_name(x.dtype()), " input, got ", dtype_name(v.dtype()));
  check_same_device(op, x, v);
}

void check_like_x(const char* op, const char* what, const Tensor& v, const Tensor& x) {
  if (!v.defined()) return;
  PNEUMO_CHECK(v.shape() == x.shape(), op, ": ", what, " ", shape_str(v.shape()), " vs input ", shape_str(x.shape()));
  check_same_dtype(op, v, x);
  check_same_device(op, v, x);
}

const void* raw(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }
void* raw_mut(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }
#if PNEUMO_WITH_CUDA
const float* f32(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
float* f32_mut(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
#endif

// Per-sample [N, C] sums of dpre and dpre*xhat (or per channel [C]), writing dres when defined.
void backward_reduce(const Tensor& dy, const Tensor& y, const Tensor& x, const Dims& d, const Tensor& mean,
                     const Tensor& var, double eps, bool relu, bool per_sample, const Tensor& s0, const Tensor& s1,
                     const Tensor& dres) {
  if (!x.is_cuda()) {
    kernels::cpu::fused_bn_backward_reduce(x.dtype(), dy.raw_data(), raw(y), x.raw_data(), d.n, d.hw, d.c,
                                           mean.raw_data(), var.raw_data(), eps, relu, per_sample, s0.raw_data(),
                                           s1.raw_data(), raw_mut(dres));
    return;
  }
#if PNEUMO_WITH_CUDA
  Tensor scratch = Tensor::empty({kernels::cuda::fused_bn_scratch_floats(x.dtype(), d.n, d.hw, d.c)}, DType::F32,
                                 x.device());
  kernels::cuda::fused_bn_backward_reduce(x.dtype(), dy.raw_data(), raw(y), x.raw_data(), d.n, d.hw, d.c, f32(mean),
                                          f32(var), eps, relu, per_sample, f32_mut(s0), f32_mut(s1), raw_mut(dres),
                                          scratch.data<float>(), dispatch::stream_of(x));
#else
  dispatch::no_cuda("fused_bn_backward");
#endif
}

void backward_finish(const Tensor& x, const Dims& d, const Tensor& s0, const Tensor& s1, const Tensor& gate,
                     const Tensor& dpool, const Tensor& sample_sum, const Tensor& mean, const Tensor& var, double eps,
                     const Tensor& w, const Tensor& b, const Tensor& dgate, const Tensor& dbias,
                     const Tensor& dweight) {
  if (!x.is_cuda()) {
    kernels::cpu::fused_bn_backward_finish(x.dtype(), d.n, d.hw, d.c, s0.raw_data(), s1.raw_data(), raw(gate),
                                           raw(dpool), raw(sample_sum), mean.raw_data(), var.raw_data(), eps, raw(w),
                                           raw(b), raw_mut(dgate), raw_mut(dbias), raw_mut(dweight));
    return;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::fused_bn_backward_finish(d.n, d.hw, d.c, f32(s0), f32(s1), f32(gate), f32(dpool), f32(sample_sum),
                                          f32(mean), f32(var), eps, f32(w), f32(b), f32_mut(dgate), f32_mut(dbias),
                                          f32_mut(dweight), dispatch::stream_of(x));
#else
  dispatch::no_cuda("fused_bn_backward");
#endif
}

void backward_data(const Tensor& dy, const Tensor& y, const Tensor& x, const Dims& d, const Tensor& mean,
                   const Tensor& var, double eps, const Tensor& w, const Tensor& gate, const Tensor& dpool,
                   const Tensor& dbias, const Tensor& dweight, bool relu, bool training, bool accumulate,
                   const Tensor& dx) {
  if (!x.is_cuda()) {
    kernels::cpu::fused_bn_backward_data(x.dtype(), dy.raw_data(), raw(y), x.raw_data(), d.n, d.hw, d.c,
                                         mean.raw_data(), var.raw_data(), eps, raw(w), raw(gate), raw(dpool),
                                         raw(dbias), raw(dweight), relu, training, accumulate, dx.raw_data());
    return;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::fused_bn_backward_data(x.dtype(), dy.raw_data(), raw(y), x.raw_data(), d.n, d.hw, d.c, f32(mean),
                                        f32(var), eps, f32(w), f32(gate), f32(dpool), f32(dbias), f32(dweight), relu,
                                        training, accumulate, dx.raw_data(), dispatch::stream_of(x));
#else
  dispatch::no_cuda("fused_bn_backward");
#endif
}

ops::UnaryOp unary_of(kernels::Activation act) {
  return act == kernels::Activation::Swish ? ops::UnaryOp::Swish : ops::UnaryOp::Relu;
}

}  // namespace

bool fused_bn_enabled() { return env_switch(g_fused, "PNEUMO_FUSED_BN"); }
void set_fused_bn_enabled(bool on) { g_fused.store(on ? 1 : 0); }
bool fused_concat_enabled() { return env_switch(g_fused_concat, "PNEUMO_FUSED_CONCAT"); }
void set_fused_concat_enabled(bool on) { g_fused_concat.store(on ? 1 : 0); }

FusedBnStatistics fused_bn_statistics(const Tensor& x, bool moments, bool sample_sums) {
  const char* op = "fused_bn_statistics";
  const Dims d = check_x(op, x);
  const DType sd = stats_dtype(x.dtype());
  FusedBnStatistics r;
  if (moments) {
    r.mean = Tensor::empty({d.c}, sd, x.device());
    r.var = Tensor::empty({d.c}, sd, x.device());
  }
  if (sample_sums) r.sample_sum = Tensor::empty({d.n, d.c}, sd, x.device());
  if (!x.is_cuda()) {
    kernels::cpu::fused_bn_statistics(x.dtype(), x.raw_data(), d.n, d.hw, d.c, raw_mut(r.mean), raw_mut(r.var),
                                      raw_mut(r.sample_sum));
    return r;
  }
#if PNEUMO_WITH_CUDA
  Tensor scratch = Tensor::empty({kernels::cuda::fused_bn_scratch_floats(x.dtype(), d.n, d.hw, d.c)}, DType::F32,
                                 x.device());
  kernels::cuda::fused_bn_statistics(x.dtype(), x.raw_data(), d.n, d.hw, d.c, f32_mut(r.mean), f32_mut(r.var),
                                     f32_mut(r.sample_sum), scratch.data<float>(), dispatch::stream_of(x));
  return r;
#else
  dispatch::no_cuda(op);
#endif
}

Tensor fused_bn_apply(const Tensor& x, const Tensor& mean, const Tensor& var, double eps, const Tensor& weight,
                      const Tensor& bias, const Tensor& gate, const Tensor& residual, bool relu) {
  const char* op = "fused_bn_apply";
  const Dims d = check_x(op, x);
  check_defined(op, mean);
  check_defined(op, var);
  check_stat(op, "mean", mean, x, d.c);
  check_stat(op, "var", var, x, d.c);
  check_stat(op, "weight", weight, x, d.c);
  check_stat(op, "bias", bias, x, d.c);
  check_stat(op, "gate", gate, x, d.n * d.c);
  check_like_x(op, "residual", residual, x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::fused_bn_apply(x.dtype(), x.raw_data(), d.n, d.hw, d.c, mean.raw_data(), var.raw_data(), eps,
                                 raw(weight), raw(bias), raw(gate), raw(residual), relu, y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::fused_bn_apply(x.dtype(), x.raw_data(), d.n, d.hw, d.c, f32(mean), f32(var), eps, f32(weight),
                                f32(bias), f32(gate), raw(residual), relu, y.raw_data(), dispatch::stream_of(x));
  return y;
#else
  dispatch::no_cuda(op);
#endif
}

FusedBnGrads fused_bn_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& mean,
                               const Tensor& var, double eps, const Tensor& weight, bool relu, bool training,
                               bool need_dx, Tensor* dx_into) {
  const char* op = "fused_bn_backward";
  const Dims d = check_x(op, x);
  check_like_x(op, "gradient", dy, x);
  check_defined(op, dy);
  if (relu) {
    check_defined(op, y);
    check_like_x(op, "output", y, x);
  }
  check_stat(op, "mean", mean, x, d.c);
  check_stat(op, "var", var, x, d.c);
  check_stat(op, "weight", weight, x, d.c);
  if (dx_into) check_like_x(op, "accumulated gradient", *dx_into, x);
  const DType sd = stats_dtype(x.dtype());
  FusedBnGrads g;
  Tensor s0 = Tensor::empty({d.c}, sd, x.device()), s1 = Tensor::empty({d.c}, sd, x.device());
  backward_reduce(dy, y, x, d, mean, var, eps, relu, false, s0, s1, Tensor());
  // Without a gate, dbias = s0 and dweight = s1 (the finish kernel would copy them).
  g.dbias = s0;
  g.dweight = s1;
  if (need_dx) {
    g.dx = dx_into ? *dx_into : Tensor::empty(x.shape(), x.dtype(), x.device());
    backward_data(dy, y, x, d, mean, var, eps, weight, Tensor(), Tensor(), s0, s1, relu, training, dx_into != nullptr,
                  g.dx);
  }
  return g;
}

Tensor bottleneck_tail_forward(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& sample_sum,
                               double eps, const Tensor& weight, const Tensor& bias, const Tensor& w1,
                               const Tensor& b1, const Tensor& w2, const Tensor& b2, kernels::Activation act,
                               const Tensor& residual, TailSaved* saved) {
  const char* op = "bottleneck_tail";
  const Dims d = check_x(op, x);
  check_defined(op, sample_sum);
  check_stat(op, "sample_sum", sample_sum, x, d.n * d.c);
  for (const Tensor* t : {&mean, &var, &w1, &b1, &w2, &b2, &residual}) check_defined(op, *t);
  const int64_t r = b1.numel();
  PNEUMO_CHECK(w1.numel() == r * d.c && w2.numel() == d.c * r && b2.numel() == d.c, op, ": SE weights w1 ",
               shape_str(w1.shape()), ", b1 ", shape_str(b1.shape()), ", w2 ", shape_str(w2.shape()), ", b2 ",
               shape_str(b2.shape()), " do not fit ", d.c, " channels");
  for (const Tensor* t : {&w1, &b1, &w2, &b2}) {
    check_same_dtype(op, *t, x);
    check_same_device(op, *t, x);
  }
  const DType sd = stats_dtype(x.dtype());
  TailSaved s;
  // pooled = mean_hw BN(x), from the statistics pass's per-sample sums: no extra read of x.
  s.pooled = Tensor::empty({d.n, d.c}, sd, x.device());
  check_stat(op, "mean", mean, x, d.c);
  check_stat(op, "var", var, x, d.c);
  check_stat(op, "weight", weight, x, d.c);
  check_stat(op, "bias", bias, x, d.c);
  if (!x.is_cuda()) {
    kernels::cpu::fused_bn_pool(x.dtype(), sample_sum.raw_data(), d.n, d.hw, d.c, mean.raw_data(), var.raw_data(), eps,
                                raw(weight), raw(bias), s.pooled.raw_data());
  } else {
#if PNEUMO_WITH_CUDA
    kernels::cuda::fused_bn_pool(f32(sample_sum), d.n, d.hw, d.c, f32(mean), f32(var), eps, f32(weight), f32(bias),
                                 f32_mut(s.pooled), dispatch::stream_of(x));
#else
    dispatch::no_cuda(op);
#endif
  }
  const Tensor w1s = w1.to(sd).reshape({r, d.c}), w2s = w2.to(sd).reshape({d.c, r});
  s.hidden_pre = ops::add(ops::matmul(s.pooled, w1s, false, true), b1.to(sd));
  s.hidden = ops::unary(unary_of(act), s.hidden_pre);
  s.gate = ops::unary(ops::UnaryOp::Sigmoid, ops::add(ops::matmul(s.hidden, w2s, false, true), b2.to(sd)));
  Tensor y = fused_bn_apply(x, mean, var, eps, weight, bias, s.gate, residual, true);
  if (saved) *saved = s;
  return y;
}

TailGrads bottleneck_tail_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& mean,
                                   const Tensor& var, const Tensor& sample_sum, double eps, const Tensor& weight,
                                   const Tensor& bias, const Tensor& w1, const Tensor& w2, kernels::Activation act,
                                   const TailSaved& saved, bool training) {
  const char* op = "bottleneck_tail_backward";
  const Dims d = check_x(op, x);
  check_defined(op, dy);
  check_defined(op, y);
  check_like_x(op, "gradient", dy, x);
  check_like_x(op, "output", y, x);
  const DType sd = stats_dtype(x.dtype());
  const int64_t r = saved.hidden.size(1);
  TailGrads g;
  Tensor s0 = Tensor::empty({d.n, d.c}, sd, x.device()), s1 = Tensor::empty({d.n, d.c}, sd, x.device());
  g.dresidual = Tensor::empty(x.shape(), x.dtype(), x.device());
  backward_reduce(dy, y, x, d, mean, var, eps, true, true, s0, s1, g.dresidual);
  // d loss / d gate, then the SE MLP backward on [N, C] down to the pooled BN output.
  Tensor dgate = Tensor::empty({d.n, d.c}, sd, x.device());
  backward_finish(x, d, s0, s1, saved.gate, Tensor(), Tensor(), mean, var, eps, weight, bias, dgate, Tensor(),
                  Tensor());
  const Tensor w1s = w1.to(sd).reshape({r, d.c}), w2s = w2.to(sd).reshape({d.c, r});
  const Tensor dlogit = ops::unary_backward(ops::UnaryOp::Sigmoid, Tensor(), saved.gate, dgate);
  const Tensor dh_pre =
      ops::unary_backward(unary_of(act), saved.hidden_pre, saved.hidden, ops::matmul(dlogit, w2s, false, false));
  const Tensor dpool = ops::matmul(dh_pre, w1s, false, false);
  g.dw2 = ops::matmul(dlogit, saved.hidden, true, false).to(w2.dtype()).reshape(w2.shape());
  g.db2 = ops::sum_channels(dlogit).to(w2.dtype());
  g.dw1 = ops::matmul(dh_pre, saved.pooled, true, false).to(w1.dtype()).reshape(w1.shape());
  g.db1 = ops::sum_channels(dh_pre).to(w1.dtype());
  g.dbias = Tensor::empty({d.c}, sd, x.device());
  g.dweight = Tensor::empty({d.c}, sd, x.device());
  backward_finish(x, d, s0, s1, saved.gate, dpool, sample_sum, mean, var, eps, weight, bias, Tensor(), g.dbias,
                  g.dweight);
  g.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  backward_data(dy, y, x, d, mean, var, eps, weight, saved.gate, dpool, g.dbias, g.dweight, true, training, false,
                g.dx);
  return g;
}

Tensor upsample2x_concat_forward(const Tensor& x, const Tensor& skip) {
  const char* op = "upsample2x_concat";
  const Dims d = check_x(op, x);
  check_defined(op, skip);
  PNEUMO_CHECK(skip.dim() == 4 && skip.size(0) == x.size(0) && skip.size(1) == 2 * x.size(1) &&
                   skip.size(2) == 2 * x.size(2),
               op, ": skip ", shape_str(skip.shape()), " does not match the x2 upsampling of ", shape_str(x.shape()));
  check_same_dtype(op, skip, x);
  check_same_device(op, skip, x);
  const int64_t h = x.size(1), w = x.size(2), cs = skip.size(3);
  Tensor y = Tensor::empty({d.n, 2 * h, 2 * w, d.c + cs}, x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::upsample2x_concat_forward(x.dtype(), x.raw_data(), skip.raw_data(), d.n, h, w, d.c, cs, y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::upsample2x_concat_forward(x.dtype(), x.raw_data(), skip.raw_data(), d.n, h, w, d.c, cs, y.raw_data(),
                                           dispatch::stream_of(x));
  return y;
#else
  dispatch::no_cuda(op);
#endif
}

UpsampleConcatGrads upsample2x_concat_backward(const Tensor& dy, int64_t cx, bool need_dx, bool need_dskip) {
  const char* op = "upsample2x_concat_backward";
  const Dims d = check_x(op, dy);
  PNEUMO_CHECK(dy.size(1) % 2 == 0 && dy.size(2) % 2 == 0 && cx > 0 && cx < d.c, op, ": gradient ",
               shape_str(dy.shape()), " with ", cx, " upsampled channels");
  const int64_t h = dy.size(1) / 2, w = dy.size(2) / 2, cs = d.c - cx;
  UpsampleConcatGrads g;
  if (need_dx) g.dx = Tensor::empty({d.n, h, w, cx}, dy.dtype(), dy.device());
  if (need_dskip) g.dskip = Tensor::empty({d.n, 2 * h, 2 * w, cs}, dy.dtype(), dy.device());
  if (!need_dx && !need_dskip) return g;
  if (!dy.is_cuda()) {
    kernels::cpu::upsample2x_concat_backward(dy.dtype(), dy.raw_data(), d.n, h, w, cx, cs, raw_mut(g.dx),
                                             raw_mut(g.dskip));
    return g;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::upsample2x_concat_backward(dy.dtype(), dy.raw_data(), d.n, h, w, cx, cs, raw_mut(g.dx),
                                            raw_mut(g.dskip), dispatch::stream_of(dy));
  return g;
#else
  dispatch::no_cuda(op);
#endif
}

Tensor bn_swish_forward(const Tensor& x, const Tensor& mean, const Tensor& var, double eps, const Tensor& weight,
                        const Tensor& bias) {
  PNEUMO_OP_SCOPE("bn_swish_forward", x);
  return ops::unary(ops::UnaryOp::Swish, batch_norm_apply(x, mean, var, eps, weight, bias));
}

BnSwishGrads bn_swish_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                               const Tensor& weight, const Tensor& bias, bool training, bool need_dx) {
  PNEUMO_OP_SCOPE("bn_swish_backward", dy);
  const Tensor z = batch_norm_apply(x, mean, var, eps, weight, bias);  // the BatchNorm output, formed again
  const BatchNormGrads g =
      batch_norm_backward(ops::unary_backward(ops::UnaryOp::Swish, z, Tensor(), dy), x, mean, var, eps, weight,
                          training, need_dx);
  return {g.dx, g.dweight, g.dbias};
}

}  // namespace pneumo::layer_ops
