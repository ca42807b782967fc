// Differentiable layer functions: the module-level policy (argument checks, casting weights to the activation
// dtype so float32 master parameters receive float32 gradients through the cast's backward, bias addition,
// BatchNorm running statistics, the training flag and the generator) over the autograd ops of
// autograd/layer_functions.h, which hold the nodes. Convention: NHWC, KRSC.
#include "nn/functional.h"

#include <cmath>

#include "autograd/layer_functions.h"
#include "kernels/check.h"
#include "nn/weight_cast.h"
#include "tensor/cuda_graph.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"

namespace pneumo::nn::F {
namespace {

void check_var(const char* op, const char* what, const Variable& v) {
  PNEUMO_CHECK(v.defined(), op, ": ", what, " is undefined");
  check_defined(op, v.value());
}

// The parameter as the activation dtype (BF16 activations, F32 master weights); recorded, so the gradient
// flows back to the float32 parameter.
// Precast once per step when a WeightCastScope is active (nn/weight_cast.h).
Variable as_dtype(const Variable& v, DType dt) { return cast_for_forward(v, dt); }

}  // namespace

Conv2dGeometry conv_geometry(int64_t stride, int64_t padding, int64_t dilation, int64_t groups) {
  Conv2dGeometry g;
  g.stride_h = g.stride_w = stride;
  g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = padding;
  g.dilation_h = g.dilation_w = dilation;
  g.groups = groups;
  return g;
}

SamePadding tf_same_padding(int64_t input_size, int64_t kernel, int64_t stride, int64_t dilation) {
  PNEUMO_CHECK(input_size >= 1 && kernel >= 1 && stride >= 1 && dilation >= 1, "tf_same_padding: input ", input_size,
               " kernel ", kernel, " stride ", stride, " dilation ", dilation);
  const int64_t out = (input_size + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - input_size, 0);
  return {total / 2, total - total / 2};
}

Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dGeometry& geometry) {
  const kernels::ConvShape cs = layer_ops::conv2d_shape(x, weight, geometry);
  return {cs.n, cs.oh, cs.ow, cs.k};
}

Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias, const Conv2dGeometry& geometry) {
  check_var("conv2d", "input", x);
  check_var("conv2d", "weight", weight);
  Variable out = ag::conv2d(x, as_dtype(weight, x.dtype()), geometry);
  if (bias.defined()) {
    PNEUMO_CHECK(bias.shape() == Shape({weight.shape()[0]}), "conv2d: bias ", shape_str(bias.shape()),
                 " does not match weight ", shape_str(weight.shape()));
    out = ag::add(out, as_dtype(bias, x.dtype()));
  }
  return out;
}

namespace {

struct Moments {
  Tensor mean, var, sample_sum;
};

// The statistics a BatchNorm forward normalises with, and the running-buffer update (see batch_norm).
// fused: one-pass kernels (layer_ops::fused_bn_statistics), with the [N, C] sample sums when sample_sums.
Moments batch_norm_moments(const Variable& x, Tensor* running_mean, Tensor* running_var, bool training,
                           double momentum, double eps, int64_t* cumulative_samples, bool fused, bool sample_sums) {
  check_var("batch_norm", "input", x);
  PNEUMO_CHECK(x.value().dim() == 4, "batch_norm: expected NHWC [N, H, W, C], got ", shape_str(x.shape()));
  PNEUMO_CHECK(eps > 0, "batch_norm: eps must be positive, got ", eps);
  PNEUMO_CHECK((running_mean == nullptr) == (running_var == nullptr),
               "batch_norm: give both running_mean and running_var or neither");
  const Tensor& xv = x.value();
  Moments r;
  Tensor mean, var;
  if (fused && (training || sample_sums)) {
    layer_ops::FusedBnStatistics s = layer_ops::fused_bn_statistics(xv, training, sample_sums);
    mean = s.mean;
    var = s.var;
    r.sample_sum = s.sample_sum;
  }
  if (training) {
    if (!fused) {
      layer_ops::MomentPair m = layer_ops::batch_norm_statistics(xv);
      mean = m.mean;
      var = m.var;
    }
    if (running_mean) {
      const int64_t count = xv.numel() / xv.size(3);
      double factor = momentum;
      if (momentum < 0) {  // cumulative average over samples (SWA's bn_update): b / (n + b)
        PNEUMO_CHECK(cumulative_samples != nullptr, "batch_norm: momentum < 0 (cumulative average) needs a sample counter");
        const int64_t b = xv.size(0);
        factor = static_cast<double>(b) / static_cast<double>(*cumulative_samples + b);
        *cumulative_samples += b;
      }
      layer_ops::batch_norm_update_running(mean, var, *running_mean, *running_var, factor, count);
    }
  } else {
    PNEUMO_CHECK(running_mean && running_mean->defined() && running_var && running_var->defined(),
                 "batch_norm: evaluation mode needs running_mean and running_var (input ", shape_str(x.shape()), ")");
    mean = *running_mean;
    var = *running_var;
  }
  r.mean = mean;
  r.var = var;
  return r;
}

}  // namespace

Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                    Tensor* running_var, bool training, double momentum, double eps, int64_t* cumulative_samples) {
  const Moments m = batch_norm_moments(x, running_mean, running_var, training, momentum, eps, cumulative_samples,
                                       false, false);
  return ag::batch_norm(x, weight, bias, m.mean, m.var, eps, training);
}

Variable batch_norm_relu(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                         Tensor* running_var, bool training, double momentum, double eps, int64_t* cumulative_samples) {
  const Moments m = batch_norm_moments(x, running_mean, running_var, training, momentum, eps, cumulative_samples,
                                       true, false);
  return ag::batch_norm_relu(x, weight, bias, m.mean, m.var, eps, training);
}

Variable batch_norm_swish(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                          Tensor* running_var, bool training, double momentum, double eps, int64_t* cumulative_samples) {
  const Moments m = batch_norm_moments(x, running_mean, running_var, training, momentum, eps, cumulative_samples,
                                       false, false);
  return ag::batch_norm_swish(x, weight, bias, m.mean, m.var, eps, training);
}

Variable bottleneck_tail(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                         Tensor* running_var, bool training, double momentum, double eps, int64_t* cumulative_samples,
                         const Variable& w1, const Variable& b1, const Variable& w2, const Variable& b2,
                         kernels::Activation act, const Variable& residual) {
  check_var("bottleneck_tail", "residual", residual);
  const Moments m = batch_norm_moments(x, running_mean, running_var, training, momentum, eps, cumulative_samples,
                                       true, true);
  const DType dt = x.dtype();
  return ag::bottleneck_tail(x, weight, bias, m.mean, m.var, m.sample_sum, eps, training, as_dtype(w1, dt),
                             as_dtype(b1, dt), as_dtype(w2, dt), as_dtype(b2, dt), act, residual);
}

Shape max_pool2d_output_shape(const Shape& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  return layer_ops::max_pool2d_shape(x, kernel, stride, padding, ceil_mode);
}

Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  check_var("max_pool2d", "input", x);
  return ag::max_pool2d(x, kernel, stride, padding, ceil_mode);
}

Variable global_avg_pool(const Variable& x) {
  check_var("global_avg_pool", "input", x);
  PNEUMO_CHECK(x.value().dim() == 4, "global_avg_pool: expected NHWC [N, H, W, C], got ", shape_str(x.shape()));
  const Shape s = x.shape();
  return ag::reshape(ag::mean_hw(x), {s[0], 1, 1, s[3]});
}

Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  check_var("linear", "input", x);
  check_var("linear", "weight", weight);
  const Shape& s = x.shape();
  PNEUMO_CHECK(s.size() == 2 || (s.size() == 4 && s[1] == 1 && s[2] == 1), "linear: input must be [N, in] or [N, 1, 1, in], got ",
               shape_str(s));
  PNEUMO_CHECK(weight.shape().size() == 2 && weight.shape()[1] == s.back(), "linear: weight ", shape_str(weight.shape()),
               " does not take input ", shape_str(s));
  const Variable x2 = s.size() == 2 ? x : ag::reshape(x, {s[0], s[3]});
  Variable y = ag::matmul(x2, as_dtype(weight, x.dtype()), false, true);
  if (bias.defined()) {
    PNEUMO_CHECK(bias.shape() == Shape({weight.shape()[0]}), "linear: bias ", shape_str(bias.shape()),
                 " does not match weight ", shape_str(weight.shape()));
    y = ag::add(y, as_dtype(bias, x.dtype()));
  }
  return y;
}

namespace {
Variable random_mask(const Variable& x, double p, bool training, Generator& generator, bool per_sample) {
  const char* op = per_sample ? "drop_connect" : "dropout";
  check_var(op, "input", x);
  PNEUMO_CHECK(p >= 0 && p < 1, op, ": probability ", p, " outside [0, 1)");
  if (!training || p == 0) return x;
  // In a CUDA Graph the kernels read the seed and offset base from the device, written before each replay.
  if (cuda::Graph* graph = cuda::capturing_graph()) {
    const GraphRandom::Draw d = graph->random().next(generator, x.device());
    return ag::dropout(x, p, generator.seed(), d.offset, per_sample, d.state);
  }
  const uint64_t seed = generator.seed(), offset = generator.next_offset();
  return ag::dropout(x, p, seed, offset, per_sample);
}
}  // namespace

Variable dropout(const Variable& x, double p, bool training, Generator& generator) {
  return random_mask(x, p, training, generator, false);
}

Variable drop_connect(const Variable& x, double p, bool training, Generator& generator) {
  return random_mask(x, p, training, generator, true);
}

Variable upsample_nearest2x(const Variable& x) {
  check_var("upsample_nearest2x", "input", x);
  return ag::upsample_nearest2x(x);
}

Variable resize_bilinear(const Variable& x, int64_t out_h, int64_t out_w, bool align_corners) {
  check_var("resize_bilinear", "input", x);
  return ag::resize_bilinear(x, out_h, out_w, align_corners);
}

Variable concat(const std::vector<Variable>& parts) { return ag::concat_channels(parts); }

}  // namespace pneumo::nn::F
