// Tensor-level layer ops: checks in the entry points, then the CPU reference kernels or the CUDA ones.
// Conventions: see layer_ops.h (NHWC, KRSC, float32 BatchNorm statistics).
#include "tensor/layer_ops.h"

#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/check.h"
#include "kernels/math_mode.h"
#include "kernels/cpu/layer_kernels.h"
#include "kernels/cpu/squeeze_excite_kernels.h"
#include "tensor/allocator.h"
#include "tensor/cuda_runtime.h"
#include "tensor/dispatch.h"
#include "tensor/ops.h"

#if PNEUMO_WITH_CUDA
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/layer_kernels.h"
#include "kernels/cuda/squeeze_excite_kernels.h"
#endif

namespace pneumo::layer_ops {
namespace {

void check_nhwc(const char* op, const Tensor& x) {
  check_defined(op, x);
  PNEUMO_CHECK(x.dim() == 4, op, ": expected an NHWC tensor [N, H, W, C], got ", shape_str(x.shape()));
}

// F32/F64 on the CPU, F32/BF16 on CUDA.
void check_activation_dtype(const char* op, const Tensor& x) {
  if (x.is_cuda())
    PNEUMO_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::BF16, op, ": CUDA supports F32 and BF16, got ",
                 dtype_name(x.dtype()), " for ", shape_str(x.shape()));
  else
    PNEUMO_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, op, ": CPU supports F32 and F64, got ",
                 dtype_name(x.dtype()), " for ", shape_str(x.shape()));
}

// The dtype BatchNorm statistics and parameters must have for activations of dtype `dt`.
DType statistics_dtype(DType dt) { return dt == DType::F64 ? DType::F64 : DType::F32; }

void check_channel_vector(const char* op, const char* what, const Tensor& v, const Tensor& x) {
  if (!v.defined()) return;
  PNEUMO_CHECK(v.dim() == 1 && v.size(0) == x.size(-1), op, ": ", what, " must be [", x.size(-1), "], got ",
               shape_str(v.shape()), " for input ", shape_str(x.shape()));
  PNEUMO_CHECK(v.dtype() == statistics_dtype(x.dtype()), op, ": ", what, " must be ",
               dtype_name(statistics_dtype(x.dtype())), " for ", dtype_name(x.dtype()), " input, got ",
               dtype_name(v.dtype()));
  check_same_device(op, x, v);
}

#if PNEUMO_WITH_CUDA
kernels::cuda::WorkspaceAllocator cuda_workspace() {
  kernels::cuda::WorkspaceAllocator a;
  a.allocate = &cuda_memory::allocate;
  a.release = &cuda_memory::release;
  return a;
}
using dispatch::stream_of;
#endif
#if !PNEUMO_WITH_CUDA
using dispatch::no_cuda;
#endif

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// CPU bfloat16, the rounding-point twin of the CUDA path (docs/gpu-status.md, "CPU bf16 path"): BF16
// operands are widened to float32, the float32 CPU kernel runs, and each output stored in the activation
// dtype is rounded to bfloat16 once -- where the CUDA kernels round (bf16 in, float32 math, bf16 out).
// Statistics and BatchNorm parameter gradients stay float32, as on CUDA.
bool cpu_bf16(const Tensor& t) { return t.defined() && !t.is_cuda() && t.dtype() == DType::BF16; }
Tensor widen(const Tensor& t) { return t.defined() && t.dtype() == DType::BF16 ? t.to(DType::F32) : t; }
Tensor round_bf16(const Tensor& t) { return t.defined() ? t.to(DType::BF16) : t; }

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Convolution

kernels::ConvShape conv2d_shape(const Shape& x, const Shape& w, const Conv2dGeometry& g) {
  PNEUMO_CHECK(x.size() == 4, "conv2d: input must be NHWC [N, H, W, C], got ", shape_str(x));
  PNEUMO_CHECK(w.size() == 4, "conv2d: weight must be KRSC [K, kh, kw, C/groups], got ", shape_str(w));
  PNEUMO_CHECK(g.groups >= 1 && g.stride_h >= 1 && g.stride_w >= 1 && g.dilation_h >= 1 && g.dilation_w >= 1 &&
                   g.pad_top >= 0 && g.pad_bottom >= 0 && g.pad_left >= 0 && g.pad_right >= 0,
               "conv2d: bad geometry (stride ", g.stride_h, "x", g.stride_w, ", dilation ", g.dilation_h, "x",
               g.dilation_w, ", groups ", g.groups, ", padding t", g.pad_top, " b", g.pad_bottom, " l", g.pad_left,
               " r", g.pad_right, ")");
  kernels::ConvShape cs;
  cs.n = x[0];
  cs.h = x[1];
  cs.w = x[2];
  cs.c = x[3];
  cs.k = w[0];
  cs.r = w[1];
  cs.s = w[2];
  PNEUMO_CHECK(cs.c % g.groups == 0 && cs.k % g.groups == 0, "conv2d: input ", shape_str(x), " and weight ",
               shape_str(w), ": channels ", cs.c, " and ", cs.k, " must be divisible by groups ", g.groups);
  PNEUMO_CHECK(w[3] * g.groups == cs.c, "conv2d: weight ", shape_str(w), " expects ", w[3] * g.groups,
               " input channels (", w[3], " per group x ", g.groups, " groups), input ", shape_str(x), " has ", cs.c);
  const int64_t span_h = (cs.r - 1) * g.dilation_h + 1, span_w = (cs.s - 1) * g.dilation_w + 1;
  const int64_t padded_h = cs.h + g.pad_top + g.pad_bottom, padded_w = cs.w + g.pad_left + g.pad_right;
  PNEUMO_CHECK(padded_h >= span_h && padded_w >= span_w, "conv2d: input ", shape_str(x), " padded to ", padded_h, "x",
               padded_w, " is smaller than the dilated kernel ", span_h, "x", span_w);
  cs.oh = (padded_h - span_h) / g.stride_h + 1;
  cs.ow = (padded_w - span_w) / g.stride_w + 1;
  cs.stride_h = g.stride_h;
  cs.stride_w = g.stride_w;
  cs.pad_top = g.pad_top;
  cs.pad_bottom = g.pad_bottom;
  cs.pad_left = g.pad_left;
  cs.pad_right = g.pad_right;
  cs.dilation_h = g.dilation_h;
  cs.dilation_w = g.dilation_w;
  cs.groups = g.groups;
  return cs;
}

namespace {

bool symmetric(const kernels::ConvShape& cs) { return cs.pad_top == cs.pad_bottom && cs.pad_left == cs.pad_right; }

#if PNEUMO_WITH_CUDA

// cuDNN takes symmetric padding only: pad the input explicitly by the asymmetric parts.
kernels::ConvShape unpadded(const kernels::ConvShape& cs) {
  kernels::ConvShape u = cs;
  u.h += cs.pad_top + cs.pad_bottom;
  u.w += cs.pad_left + cs.pad_right;
  u.pad_top = u.pad_bottom = u.pad_left = u.pad_right = 0;
  return u;
}
#endif

void check_conv_operands(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a);
  check_defined(op, b);
  check_activation_dtype(op, a);
  check_same_dtype(op, a, b);
  check_same_device(op, a, b);
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Conv2dGeometry& g) {
  PNEUMO_OP_SCOPE("conv2d_forward", x);
  if (cpu_bf16(x)) return round_bf16(conv2d_forward(widen(x), widen(w), g));
  check_conv_operands("conv2d", x, w);
  const kernels::ConvShape cs = conv2d_shape(x.shape(), w.shape(), g);
  Tensor y = Tensor::empty({cs.n, cs.oh, cs.ow, cs.k}, x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::conv2d_forward(x.dtype(), cs, x.raw_data(), w.raw_data(), y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  const int dev = x.device().index;
  if (symmetric(cs)) {
    kernels::cuda::conv2d_forward_cudnn(x.dtype(), cs, x.raw_data(), w.raw_data(), y.raw_data(), dev, stream_of(x),
                                        cuda_workspace());
  } else {
    Tensor xp = pad_hw(x, cs.pad_top, cs.pad_bottom, cs.pad_left, cs.pad_right);
    kernels::cuda::conv2d_forward_cudnn(x.dtype(), unpadded(cs), xp.raw_data(), w.raw_data(), y.raw_data(), dev,
                                        stream_of(x), cuda_workspace());
  }
  return y;
#else
  no_cuda("conv2d");
#endif
}

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dGeometry& g,
                            Tensor* dx_into) {
  PNEUMO_OP_SCOPE("conv2d_backward_data", dy);
  if (dx_into) {
    check_defined("conv2d_backward_data (accumulated gradient)", *dx_into);
    check_same_dtype("conv2d_backward_data (accumulated gradient)", dy, *dx_into);
    check_same_device("conv2d_backward_data (accumulated gradient)", dy, *dx_into);
    PNEUMO_CHECK(dx_into->shape() == x_shape, "conv2d_backward_data: the gradient to add to is ",
                 shape_str(dx_into->shape()), ", the input ", shape_str(x_shape));
  }
  // Summed in the convolution's pass: where cuDNN can (symmetric padding), on both backends alike.
  const bool in_pass = dx_into && kernels::dgrad_accumulate() && symmetric(conv2d_shape(x_shape, w.shape(), g));
  if (cpu_bf16(dy)) {
    Tensor d = conv2d_backward_data(widen(dy), widen(w), x_shape, g);
    if (!dx_into) return round_bf16(d);
    if (in_pass) {  // float32 sum, rounded once
      ops::add_(d, widen(*dx_into));
      dx_into->copy_from(round_bf16(d));
    } else {
      ops::add_(*dx_into, round_bf16(d));
    }
    return *dx_into;
  }
  check_conv_operands("conv2d_backward_data", dy, w);
  const kernels::ConvShape cs = conv2d_shape(x_shape, w.shape(), g);
  PNEUMO_CHECK(dy.shape() == Shape({cs.n, cs.oh, cs.ow, cs.k}), "conv2d_backward_data: gradient ",
               shape_str(dy.shape()), " does not match the output [", cs.n, ", ", cs.oh, ", ", cs.ow, ", ", cs.k, "]");
#if PNEUMO_WITH_CUDA
  if (dy.is_cuda() && symmetric(cs)) {
    Tensor dx = in_pass ? *dx_into : Tensor::empty(x_shape, dy.dtype(), dy.device());
    kernels::cuda::conv2d_backward_data_cudnn(dy.dtype(), cs, dy.raw_data(), w.raw_data(), dx.raw_data(),
                                              dy.device().index, stream_of(dy), cuda_workspace(), in_pass);
    if (dx_into && !in_pass) ops::add_(*dx_into, dx);
    return dx_into ? *dx_into : dx;
  }
#endif
  Tensor dx;
  if (!dy.is_cuda()) {
    dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
    kernels::cpu::conv2d_backward_data(dy.dtype(), cs, dy.raw_data(), w.raw_data(), dx.raw_data());
  } else {
#if PNEUMO_WITH_CUDA
    const kernels::ConvShape u = unpadded(cs);
    Tensor dxp = Tensor::empty({u.n, u.h, u.w, u.c}, dy.dtype(), dy.device());
    kernels::cuda::conv2d_backward_data_cudnn(dy.dtype(), u, dy.raw_data(), w.raw_data(), dxp.raw_data(),
                                              dy.device().index, stream_of(dy), cuda_workspace());
    dx = crop_hw(dxp, cs.pad_top, cs.pad_bottom, cs.pad_left, cs.pad_right);
#else
    no_cuda("conv2d_backward_data");
#endif
  }
  if (!dx_into) return dx;
  ops::add_(*dx_into, dx);  // float32 and float64: the same one addition as in the convolution's pass
  return *dx_into;
}

Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape, const Conv2dGeometry& g) {
  PNEUMO_OP_SCOPE("conv2d_backward_weight", dy);
  if (cpu_bf16(dy)) return round_bf16(conv2d_backward_weight(widen(dy), widen(x), w_shape, g));
  check_conv_operands("conv2d_backward_weight", dy, x);
  const kernels::ConvShape cs = conv2d_shape(x.shape(), w_shape, g);
  PNEUMO_CHECK(dy.shape() == Shape({cs.n, cs.oh, cs.ow, cs.k}), "conv2d_backward_weight: gradient ",
               shape_str(dy.shape()), " does not match the output [", cs.n, ", ", cs.oh, ", ", cs.ow, ", ", cs.k, "]");
  Tensor dw = Tensor::empty(w_shape, dy.dtype(), dy.device());
  if (!dy.is_cuda()) {
    kernels::cpu::conv2d_backward_weight(dy.dtype(), cs, dy.raw_data(), x.raw_data(), dw.raw_data());
    return dw;
  }
#if PNEUMO_WITH_CUDA
  const int dev = dy.device().index;
  if (symmetric(cs)) {
    kernels::cuda::conv2d_backward_weight_cudnn(dy.dtype(), cs, dy.raw_data(), x.raw_data(), dw.raw_data(), dev,
                                                stream_of(dy), cuda_workspace());
  } else {
    Tensor xp = pad_hw(x, cs.pad_top, cs.pad_bottom, cs.pad_left, cs.pad_right);
    kernels::cuda::conv2d_backward_weight_cudnn(dy.dtype(), unpadded(cs), dy.raw_data(), xp.raw_data(), dw.raw_data(),
                                                dev, stream_of(dy), cuda_workspace());
  }
  return dw;
#else
  no_cuda("conv2d_backward_weight");
#endif
}

// ---------------------------------------------------------------------------------------------------
// BatchNorm

MomentPair batch_norm_statistics(const Tensor& x) {
  PNEUMO_OP_SCOPE("batch_norm_statistics", x);
  if (cpu_bf16(x)) return batch_norm_statistics(widen(x));
  check_nhwc("batch_norm", x);
  check_activation_dtype("batch_norm", x);
  const int64_t c = x.size(3), rows = x.numel() / c;
  PNEUMO_CHECK(rows > 0, "batch_norm: empty input ", shape_str(x.shape()));
  const DType sd = statistics_dtype(x.dtype());
  MomentPair m{Tensor::empty({c}, sd, x.device()), Tensor::empty({c}, sd, x.device())};
  if (!x.is_cuda()) {
    kernels::cpu::batch_norm_statistics(x.dtype(), x.raw_data(), rows, c, m.mean.raw_data(), m.var.raw_data());
    return m;
  }
#if PNEUMO_WITH_CUDA
  Tensor scratch = Tensor::empty({kernels::cuda::batch_norm_scratch_floats(rows, c)}, DType::F32, x.device());
  kernels::cuda::batch_norm_statistics(x.dtype(), x.raw_data(), rows, c, m.mean.data<float>(), m.var.data<float>(),
                                       scratch.data<float>(), stream_of(x));
  return m;
#else
  no_cuda("batch_norm");
#endif
}

Tensor batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& var, double eps, const Tensor& weight,
                        const Tensor& bias) {
  PNEUMO_OP_SCOPE("batch_norm_apply", x);
  if (cpu_bf16(x)) return round_bf16(batch_norm_apply(widen(x), mean, var, eps, weight, bias));
  check_nhwc("batch_norm", x);
  check_activation_dtype("batch_norm", x);
  check_defined("batch_norm", mean);
  check_defined("batch_norm", var);
  check_channel_vector("batch_norm", "mean", mean, x);
  check_channel_vector("batch_norm", "var", var, x);
  check_channel_vector("batch_norm", "weight", weight, x);
  check_channel_vector("batch_norm", "bias", bias, x);
  const int64_t c = x.size(3), rows = x.numel() / c;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::batch_norm_apply(x.dtype(), x.raw_data(), rows, c, mean.raw_data(), var.raw_data(), eps,
                                   weight.defined() ? weight.raw_data() : nullptr,
                                   bias.defined() ? bias.raw_data() : nullptr, y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::batch_norm_apply(x.dtype(), x.raw_data(), rows, c, mean.data<float>(), var.data<float>(), eps,
                                  ptr_or_null<float>(weight), ptr_or_null<float>(bias), y.raw_data(), stream_of(x));
  return y;
#else
  no_cuda("batch_norm");
#endif
}

BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                                   const Tensor& weight, bool training, bool need_dx) {
  PNEUMO_OP_SCOPE("batch_norm_backward", dy);
  if (cpu_bf16(x)) {
    BatchNormGrads g = batch_norm_backward(widen(dy), widen(x), mean, var, eps, weight, training, need_dx);
    g.dx = round_bf16(g.dx);
    return g;
  }
  check_nhwc("batch_norm_backward", x);
  check_defined("batch_norm_backward", dy);
  PNEUMO_CHECK(dy.shape() == x.shape(), "batch_norm_backward: gradient ", shape_str(dy.shape()), " vs input ",
               shape_str(x.shape()));
  check_same_dtype("batch_norm_backward", dy, x);
  check_same_device("batch_norm_backward", dy, x);
  check_channel_vector("batch_norm_backward", "mean", mean, x);
  check_channel_vector("batch_norm_backward", "var", var, x);
  check_channel_vector("batch_norm_backward", "weight", weight, x);
  const int64_t c = x.size(3), rows = x.numel() / c;
  const DType sd = statistics_dtype(x.dtype());
  BatchNormGrads g;
  g.dweight = Tensor::empty({c}, sd, x.device());
  g.dbias = Tensor::empty({c}, sd, x.device());
  if (need_dx) g.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::batch_norm_backward_reduce(x.dtype(), dy.raw_data(), x.raw_data(), rows, c, mean.raw_data(),
                                             var.raw_data(), eps, g.dbias.raw_data(), g.dweight.raw_data());
    if (need_dx)
      kernels::cpu::batch_norm_backward_data(x.dtype(), dy.raw_data(), x.raw_data(), rows, c, mean.raw_data(),
                                             var.raw_data(), eps, weight.defined() ? weight.raw_data() : nullptr,
                                             g.dbias.raw_data(), g.dweight.raw_data(), training, g.dx.raw_data());
    return g;
  }
#if PNEUMO_WITH_CUDA
  Tensor scratch = Tensor::empty({kernels::cuda::batch_norm_scratch_floats(rows, c)}, DType::F32, x.device());
  kernels::cuda::batch_norm_backward_reduce(x.dtype(), dy.raw_data(), x.raw_data(), rows, c, mean.data<float>(),
                                            var.data<float>(), eps, g.dbias.data<float>(), g.dweight.data<float>(),
                                            scratch.data<float>(), stream_of(x));
  if (need_dx)
    kernels::cuda::batch_norm_backward_data(x.dtype(), dy.raw_data(), x.raw_data(), rows, c, mean.data<float>(),
                                            var.data<float>(), eps, ptr_or_null<float>(weight), g.dbias.data<float>(),
                                            g.dweight.data<float>(), training, g.dx.raw_data(), stream_of(x));
  return g;
#else
  no_cuda("batch_norm_backward");
#endif
}

void batch_norm_update_running(const Tensor& mean, const Tensor& var, Tensor& running_mean, Tensor& running_var,
                               double momentum, int64_t count) {
  PNEUMO_OP_SCOPE("batch_norm_update_running", mean);
  const char* op = "batch_norm (running statistics)";
  check_defined(op, running_mean);
  check_defined(op, running_var);
  PNEUMO_CHECK(running_mean.shape() == mean.shape() && running_var.shape() == var.shape(), op, ": running_mean ",
               shape_str(running_mean.shape()), " / running_var ", shape_str(running_var.shape()),
               " do not match the batch statistics ", shape_str(mean.shape()));
  check_same_dtype(op, running_mean, mean);
  check_same_dtype(op, running_var, var);
  check_same_device(op, running_mean, mean);
  check_same_device(op, running_var, var);
  PNEUMO_CHECK(count > 1, "batch_norm: expected more than 1 value per channel when training, got ", count);
  PNEUMO_CHECK(momentum >= 0 && momentum <= 1, op, ": momentum ", momentum, " outside [0, 1]");
  const int64_t c = mean.numel();
  if (!mean.is_cuda()) {
    kernels::cpu::batch_norm_update_running(mean.dtype(), mean.raw_data(), var.raw_data(), running_mean.raw_data(),
                                            running_var.raw_data(), c, momentum, count);
    return;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::batch_norm_update_running(mean.data<float>(), var.data<float>(), running_mean.data<float>(),
                                           running_var.data<float>(), c, momentum, count, stream_of(mean));
#else
  no_cuda(op);
#endif
}

// ---------------------------------------------------------------------------------------------------
// Pooling

Shape max_pool2d_shape(const Shape& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  PNEUMO_CHECK(x.size() == 4, "max_pool2d: input must be NHWC [N, H, W, C], got ", shape_str(x));
  PNEUMO_CHECK(kernel >= 1 && stride >= 1 && padding >= 0, "max_pool2d: bad kernel ", kernel, " stride ", stride,
               " padding ", padding);
  PNEUMO_CHECK(padding <= kernel / 2, "max_pool2d: padding ", padding, " must be at most half the kernel ", kernel);
  auto out_size = [&](int64_t in) {
    const int64_t span = in + 2 * padding - kernel;
    PNEUMO_CHECK(span >= 0, "max_pool2d: input ", shape_str(x), " padded by ", padding, " is smaller than the kernel ",
                 kernel);
    int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    // PyTorch: the last window must start inside the input or the left padding.
    if (ceil_mode && (out - 1) * stride >= in + padding) --out;
    return out;
  };
  return {x[0], out_size(x[1]), out_size(x[2]), x[3]};
}

PoolResult max_pool2d_forward(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  PNEUMO_OP_SCOPE("max_pool2d_forward", x);
  if (cpu_bf16(x)) {
    PoolResult r = max_pool2d_forward(widen(x), kernel, stride, padding, ceil_mode);
    r.y = round_bf16(r.y);
    return r;
  }
  check_nhwc("max_pool2d", x);
  check_activation_dtype("max_pool2d", x);
  const Shape os = max_pool2d_shape(x.shape(), kernel, stride, padding, ceil_mode);
  PoolResult r{Tensor::empty(os, x.dtype(), x.device()), Tensor::empty(os, DType::I32, x.device())};
  if (!x.is_cuda()) {
    kernels::cpu::max_pool2d_forward(x.dtype(), x.raw_data(), x.size(0), x.size(1), x.size(2), x.size(3), kernel,
                                     stride, padding, os[1], os[2], r.y.raw_data(), r.argmax.data<int32_t>());
    return r;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::max_pool2d_forward(x.dtype(), x.raw_data(), x.size(0), x.size(1), x.size(2), x.size(3), kernel,
                                    stride, padding, os[1], os[2], r.y.raw_data(), r.argmax.data<int32_t>(),
                                    stream_of(x));
  return r;
#else
  no_cuda("max_pool2d");
#endif
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Shape& xs, int64_t kernel, int64_t stride,
                           int64_t padding) {
  PNEUMO_OP_SCOPE("max_pool2d_backward", dy);
  if (cpu_bf16(dy)) return round_bf16(max_pool2d_backward(widen(dy), argmax, xs, kernel, stride, padding));
  check_nhwc("max_pool2d_backward", dy);
  PNEUMO_CHECK(argmax.shape() == dy.shape() && argmax.dtype() == DType::I32, "max_pool2d_backward: argmax ",
               shape_str(argmax.shape()), " must be I32 shaped like the gradient ", shape_str(dy.shape()));
  PNEUMO_CHECK(xs.size() == 4 && xs[0] == dy.size(0) && xs[3] == dy.size(3), "max_pool2d_backward: input ",
               shape_str(xs), " vs gradient ", shape_str(dy.shape()));
  Tensor dx = Tensor::empty(xs, dy.dtype(), dy.device());
  if (!dy.is_cuda()) {
    kernels::cpu::max_pool2d_backward(dy.dtype(), dy.raw_data(), argmax.data<int32_t>(), xs[0], xs[1], xs[2], xs[3],
                                      kernel, stride, padding, dy.size(1), dy.size(2), dx.raw_data());
    return dx;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::max_pool2d_backward(dy.dtype(), dy.raw_data(), argmax.data<int32_t>(), xs[0], xs[1], xs[2], xs[3],
                                     kernel, stride, padding, dy.size(1), dy.size(2), dx.raw_data(), stream_of(dy));
  return dx;
#else
  no_cuda("max_pool2d_backward");
#endif
}

// ---------------------------------------------------------------------------------------------------
// Resizing

Tensor upsample_nearest2x_forward(const Tensor& x) {
  PNEUMO_OP_SCOPE("upsample_nearest2x_forward", x);
  if (cpu_bf16(x)) return round_bf16(upsample_nearest2x_forward(widen(x)));
  check_nhwc("upsample_nearest2x", x);
  check_activation_dtype("upsample_nearest2x", x);
  const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  Tensor y = Tensor::empty({n, 2 * h, 2 * w, c}, x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::upsample_nearest2x_forward(x.dtype(), x.raw_data(), n, h, w, c, y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::upsample_nearest2x_forward(x.dtype(), x.raw_data(), n, h, w, c, y.raw_data(), stream_of(x));
  return y;
#else
  no_cuda("upsample_nearest2x");
#endif
}

Tensor upsample_nearest2x_backward(const Tensor& dy) {
  PNEUMO_OP_SCOPE("upsample_nearest2x_backward", dy);
  if (cpu_bf16(dy)) return round_bf16(upsample_nearest2x_backward(widen(dy)));
  check_nhwc("upsample_nearest2x_backward", dy);
  const int64_t n = dy.size(0), h = dy.size(1) / 2, w = dy.size(2) / 2, c = dy.size(3);
  PNEUMO_CHECK(dy.size(1) % 2 == 0 && dy.size(2) % 2 == 0, "upsample_nearest2x_backward: odd gradient ",
               shape_str(dy.shape()));
  Tensor dx = Tensor::empty({n, h, w, c}, dy.dtype(), dy.device());
  if (!dy.is_cuda()) {
    kernels::cpu::upsample_nearest2x_backward(dy.dtype(), dy.raw_data(), n, h, w, c, dx.raw_data());
    return dx;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::upsample_nearest2x_backward(dy.dtype(), dy.raw_data(), n, h, w, c, dx.raw_data(), stream_of(dy));
  return dx;
#else
  no_cuda("upsample_nearest2x_backward");
#endif
}

namespace {

#if PNEUMO_WITH_CUDA
// Device copies of the axis tables, cached per (in, out, align_corners, device): two small tensors each.
struct DeviceAxisTables {
  Tensor ints, floats;
  kernels::cuda::DeviceLinearAxis view;
};
const kernels::cuda::DeviceLinearAxis& device_axis(int64_t in, int64_t out, bool align_corners, Device device) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int64_t, bool, int>, DeviceAxisTables> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_tuple(in, out, align_corners, device.index);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second.view;
  const kernels::LinearAxis a = kernels::make_linear_axis(in, out, align_corners);
  std::vector<float> ints, floats;  // integers below 2^24 are exact as floats
  for (auto v : a.i0) ints.push_back(static_cast<float>(v));
  for (auto v : a.i1) ints.push_back(static_cast<float>(v));
  for (auto v : a.start) ints.push_back(static_cast<float>(v));
  for (auto v : a.out_index) ints.push_back(static_cast<float>(v));
  for (auto v : a.l0) floats.push_back(static_cast<float>(v));
  for (auto v : a.l1) floats.push_back(static_cast<float>(v));
  for (auto v : a.weight) floats.push_back(static_cast<float>(v));
  PNEUMO_CHECK(in < (1 << 24) && out < (1 << 24), "resize_bilinear: size too large");
  DeviceAxisTables t;
  t.ints = Tensor::from_vector(ints, {static_cast<int64_t>(ints.size())}, DType::I32, device);
  t.floats = Tensor::from_vector(floats, {static_cast<int64_t>(floats.size())}, DType::F32, device);
  const int32_t* ip = t.ints.data<int32_t>();
  const float* fp = t.floats.data<float>();
  t.view.i0 = ip;
  t.view.i1 = ip + out;
  t.view.start = ip + 2 * out;
  t.view.out_index = ip + 2 * out + in + 1;
  t.view.l0 = fp;
  t.view.l1 = fp + out;
  t.view.weight = fp + 2 * out;
  return cache.emplace(key, std::move(t)).first->second.view;
}
#endif

void check_resize_sizes(const Shape& x, int64_t oh, int64_t ow) {
  PNEUMO_CHECK(oh >= 1 && ow >= 1, "resize_bilinear: output size ", oh, "x", ow, " for input ", shape_str(x));
  PNEUMO_CHECK(x[1] >= 1 && x[2] >= 1, "resize_bilinear: empty input ", shape_str(x));
}

}  // namespace

Tensor resize_bilinear_forward(const Tensor& x, int64_t oh, int64_t ow, bool align_corners) {
  PNEUMO_OP_SCOPE("resize_bilinear_forward", x);
  if (cpu_bf16(x)) return round_bf16(resize_bilinear_forward(widen(x), oh, ow, align_corners));
  check_nhwc("resize_bilinear", x);
  check_activation_dtype("resize_bilinear", x);
  check_resize_sizes(x.shape(), oh, ow);
  const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  Tensor y = Tensor::empty({n, oh, ow, c}, x.dtype(), x.device());
  if (!x.is_cuda()) {
    const kernels::LinearAxis ay = kernels::make_linear_axis(h, oh, align_corners);
    const kernels::LinearAxis ax = kernels::make_linear_axis(w, ow, align_corners);
    kernels::cpu::resize_bilinear_forward(x.dtype(), x.raw_data(), n, h, w, c, ay, ax, oh, ow, y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  const auto ay = device_axis(h, oh, align_corners, x.device());
  const auto ax = device_axis(w, ow, align_corners, x.device());
  kernels::cuda::resize_bilinear_forward(x.dtype(), x.raw_data(), n, h, w, c, ay, ax, oh, ow, y.raw_data(),
                                         stream_of(x));
  return y;
#else
  no_cuda("resize_bilinear");
#endif
}

Tensor resize_bilinear_backward(const Tensor& dy, const Shape& xs, bool align_corners) {
  PNEUMO_OP_SCOPE("resize_bilinear_backward", dy);
  if (cpu_bf16(dy)) return round_bf16(resize_bilinear_backward(widen(dy), xs, align_corners));
  check_nhwc("resize_bilinear_backward", dy);
  PNEUMO_CHECK(xs.size() == 4 && xs[0] == dy.size(0) && xs[3] == dy.size(3), "resize_bilinear_backward: input ",
               shape_str(xs), " vs gradient ", shape_str(dy.shape()));
  check_resize_sizes(xs, dy.size(1), dy.size(2));
  const int64_t n = xs[0], h = xs[1], w = xs[2], c = xs[3], oh = dy.size(1), ow = dy.size(2);
  Tensor dx = Tensor::empty(xs, dy.dtype(), dy.device());
  if (!dy.is_cuda()) {
    const kernels::LinearAxis ay = kernels::make_linear_axis(h, oh, align_corners);
    const kernels::LinearAxis ax = kernels::make_linear_axis(w, ow, align_corners);
    kernels::cpu::resize_bilinear_backward(dy.dtype(), dy.raw_data(), n, h, w, c, ay, ax, oh, ow, dx.raw_data());
    return dx;
  }
#if PNEUMO_WITH_CUDA
  const auto ay = device_axis(h, oh, align_corners, dy.device());
  const auto ax = device_axis(w, ow, align_corners, dy.device());
  kernels::cuda::resize_bilinear_backward(dy.dtype(), dy.raw_data(), n, h, w, c, ay, ax, oh, ow, dx.raw_data(),
                                          stream_of(dy));
  return dx;
#else
  no_cuda("resize_bilinear_backward");
#endif
}

// ---------------------------------------------------------------------------------------------------
// Dropout

namespace {
// The draw's {seed, offset base} where given (a CUDA Graph's draw), else null.
const int64_t* philox_state_of(const char* op, const Tensor& state, const Tensor& x) {
  if (!state.defined()) return nullptr;
  PNEUMO_CHECK(state.dtype() == DType::I64 && state.numel() == 2, op, ": the Philox state must be I64 {seed, offset}, got ",
               dtype_name(state.dtype()), " ", shape_str(state.shape()));
  check_same_device(op, x, state);
  return state.data<int64_t>();
}
}  // namespace

Tensor dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& philox_state) {
  PNEUMO_OP_SCOPE("dropout", x);
  if (cpu_bf16(x)) return round_bf16(dropout(widen(x), p, seed, offset, philox_state));
  check_defined("dropout", x);
  check_activation_dtype("dropout", x);
  PNEUMO_CHECK(p >= 0 && p < 1, "dropout: probability ", p, " outside [0, 1)");
  const int64_t* state = philox_state_of("dropout", philox_state, x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::dropout(x.dtype(), x.raw_data(), y.raw_data(), x.numel(), seed, offset, p, state);
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::dropout(x.dtype(), x.raw_data(), y.raw_data(), x.numel(), seed, offset, p, state, stream_of(x));
  return y;
#else
  no_cuda("dropout");
#endif
}

Tensor drop_connect(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& philox_state) {
  PNEUMO_OP_SCOPE("drop_connect", x);
  if (cpu_bf16(x)) return round_bf16(drop_connect(widen(x), p, seed, offset, philox_state));
  check_defined("drop_connect", x);
  check_activation_dtype("drop_connect", x);
  PNEUMO_CHECK(x.dim() >= 1 && x.size(0) > 0, "drop_connect: needs a batch dimension, got ", shape_str(x.shape()));
  PNEUMO_CHECK(p >= 0 && p < 1, "drop_connect: probability ", p, " outside [0, 1)");
  const int64_t rows = x.size(0), row_size = x.numel() / rows;
  const int64_t* state = philox_state_of("drop_connect", philox_state, x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::drop_connect(x.dtype(), x.raw_data(), y.raw_data(), rows, row_size, seed, offset, p, state);
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::drop_connect(x.dtype(), x.raw_data(), y.raw_data(), rows, row_size, seed, offset, p, state,
                              stream_of(x));
  return y;
#else
  no_cuda("drop_connect");
#endif
}

// ---------------------------------------------------------------------------------------------------
// Padding (CUDA path of asymmetric convolution; the CPU conv kernels read padding directly)

Tensor pad_hw(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  PNEUMO_OP_SCOPE("pad_hw", x);
  check_nhwc("pad_hw", x);
  PNEUMO_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pad_hw: negative padding");
  const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  Tensor y = Tensor::empty({n, h + top + bottom, w + left + right, c}, x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::pad_hw(x.dtype(), x.raw_data(), n, h, w, c, top, bottom, left, right, y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::pad_hw(x.dtype(), x.raw_data(), n, h, w, c, top, bottom, left, right, y.raw_data(), stream_of(x));
  return y;
#else
  no_cuda("pad_hw");
#endif
}

Tensor crop_hw(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  PNEUMO_OP_SCOPE("crop_hw", x);
  check_nhwc("crop_hw", x);
  const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  PNEUMO_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0 && h - top - bottom >= 1 && w - left - right >= 1,
               "crop_hw: cannot crop ", shape_str(x.shape()), " by t", top, " b", bottom, " l", left, " r", right);
  const int64_t oh = h - top - bottom, ow = w - left - right;
  Tensor y = Tensor::empty({n, oh, ow, c}, x.dtype(), x.device());
  if (!x.is_cuda()) {
    kernels::cpu::crop_hw(x.dtype(), x.raw_data(), n, h, w, c, top, bottom, left, right, y.raw_data());
    return y;
  }
#if PNEUMO_WITH_CUDA
  kernels::cuda::crop_hw(x.dtype(), x.raw_data(), n, h, w, c, top, bottom, left, right, y.raw_data(), stream_of(x));
  return y;
#else
  no_cuda("crop_hw");
#endif
}

// ---------------------------------------------------------------------------------------------------
// Squeeze-excite (fused)

namespace {
struct SeDims {
  int64_t batch, hw, channels, reduced;
};

SeDims check_se(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2) {
  PNEUMO_CHECK(x.dim() == 4, "squeeze_excite: x must be NHWC [N, H, W, C], got ", shape_str(x.shape()));
  const int64_t C = x.size(3);
  PNEUMO_CHECK(w1.dim() == 2 || (w1.dim() == 4 && w1.size(1) == 1 && w1.size(2) == 1),
               "squeeze_excite: fc1 weight must be [R, C] or [R, 1, 1, C], got ", shape_str(w1.shape()));
  const int64_t R = w1.size(0);
  PNEUMO_CHECK(w1.numel() == R * C && w1.size(-1) == C, "squeeze_excite: fc1 weight ", shape_str(w1.shape()),
               " does not match ", C, " channels of x ", shape_str(x.shape()));
  PNEUMO_CHECK(w2.numel() == C * R && w2.size(0) == C && w2.size(-1) == R &&
                   (w2.dim() == 2 || (w2.dim() == 4 && w2.size(1) == 1 && w2.size(2) == 1)),
               "squeeze_excite: fc2 weight must be [C, R] or [C, 1, 1, R] = [", C, ", ", R, "], got ",
               shape_str(w2.shape()));
  PNEUMO_CHECK(b1.numel() == R && b1.dim() == 1, "squeeze_excite: fc1 bias must be [", R, "], got ",
               shape_str(b1.shape()));
  PNEUMO_CHECK(b2.numel() == C && b2.dim() == 1, "squeeze_excite: fc2 bias must be [", C, "], got ",
               shape_str(b2.shape()));
  for (const Tensor* t : {&w1, &b1, &w2, &b2}) {
    check_same_device("squeeze_excite", x, *t);
    check_same_dtype("squeeze_excite", x, *t);
  }
  PNEUMO_CHECK(x.size(1) * x.size(2) > 0 && C > 0 && R > 0, "squeeze_excite: empty input ", shape_str(x.shape()));
  return {x.size(0), x.size(1) * x.size(2), C, R};
}

}  // namespace

Tensor squeeze_excite_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                              kernels::Activation act) {
  PNEUMO_OP_SCOPE("squeeze_excite_forward", x);
  if (cpu_bf16(x))
    return round_bf16(squeeze_excite_forward(widen(x), widen(w1), widen(b1), widen(w2), widen(b2), act));
  const SeDims d = check_se(x, w1, b1, w2, b2);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    Tensor ws = dispatch::scratch(kernels::cuda::squeeze_excite_workspace_bytes(d.batch, d.hw, d.channels, d.reduced),
                                  x.device());
    kernels::cuda::squeeze_excite_forward(x.dtype(), x.raw_data(), w1.raw_data(), b1.raw_data(), w2.raw_data(),
                                          b2.raw_data(), d.batch, d.hw, d.channels, d.reduced, act, y.raw_data(),
                                          ws.raw_data(), stream_of(x));
#else
    PNEUMO_FAIL("squeeze_excite: CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::squeeze_excite_forward(x.dtype(), x.raw_data(), w1.raw_data(), b1.raw_data(), w2.raw_data(),
                                         b2.raw_data(), d.batch, d.hw, d.channels, d.reduced, act, y.raw_data());
  }
  return y;
}

SqueezeExciteGrads squeeze_excite_backward(const Tensor& x, const Tensor& dy, const Tensor& w1, const Tensor& b1,
                                           const Tensor& w2, const Tensor& b2, kernels::Activation act) {
  PNEUMO_OP_SCOPE("squeeze_excite_backward", x);
  if (cpu_bf16(x)) {
    SqueezeExciteGrads g = squeeze_excite_backward(widen(x), widen(dy), widen(w1), widen(b1), widen(w2), widen(b2), act);
    for (Tensor* t : {&g.dx, &g.dw1, &g.db1, &g.dw2, &g.db2}) *t = round_bf16(*t);
    return g;
  }
  check_same_dtype("squeeze_excite backward", x, dy);
  const SeDims d = check_se(x, w1, b1, w2, b2);
  SqueezeExciteGrads g;
  g.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  g.dw1 = Tensor::empty(w1.shape(), w1.dtype(), x.device());
  g.db1 = Tensor::empty(b1.shape(), b1.dtype(), x.device());
  g.dw2 = Tensor::empty(w2.shape(), w2.dtype(), x.device());
  g.db2 = Tensor::empty(b2.shape(), b2.dtype(), x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    Tensor ws = dispatch::scratch(kernels::cuda::squeeze_excite_workspace_bytes(d.batch, d.hw, d.channels, d.reduced),
                                  x.device());
    kernels::cuda::squeeze_excite_backward(x.dtype(), x.raw_data(), dy.raw_data(), w1.raw_data(), b1.raw_data(),
                                           w2.raw_data(), b2.raw_data(), d.batch, d.hw, d.channels, d.reduced, act,
                                           g.dx.raw_data(), g.dw1.raw_data(), g.db1.raw_data(), g.dw2.raw_data(),
                                           g.db2.raw_data(), ws.raw_data(), stream_of(x));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::squeeze_excite_backward(x.dtype(), x.raw_data(), dy.raw_data(), w1.raw_data(), b1.raw_data(),
                                          w2.raw_data(), b2.raw_data(), d.batch, d.hw, d.channels, d.reduced, act,
                                          g.dx.raw_data(), g.dw1.raw_data(), g.db1.raw_data(), g.dw2.raw_data(),
                                          g.db2.raw_data());
  }
  return g;
}

}  // namespace pneumo::layer_ops
