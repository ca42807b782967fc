// The standard layers (see layers.h): construction with PyTorch's default initialisation and forward
// through nn/functional.h. Convention: NHWC activations, KRSC conv weights.
#include "nn/layers.h"

#include "kernels/check.h"
#include "nn/init.h"
#include "nn/squeeze_excite.h"
#include "tensor/cuda_graph.h"
#include "tensor/fused_bn_ops.h"

namespace pneumo::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
               int64_t dilation, int64_t groups, bool bias, Generator* generator)
    : in_channels_(in_channels),
      out_channels_(out_channels),
      kernel_(kernel),
      stride_(stride),
      padding_(padding),
      dilation_(dilation),
      groups_(groups),
      has_bias_(bias) {
  PNEUMO_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0 && stride > 0 && padding >= 0 && dilation > 0 &&
                   groups > 0,
               "Conv2d(", in_channels, ", ", out_channels, ", kernel ", kernel, ", stride ", stride, ", padding ",
               padding, ", dilation ", dilation, ", groups ", groups, "): bad arguments");
  PNEUMO_CHECK(in_channels % groups == 0 && out_channels % groups == 0, "Conv2d: channels ", in_channels, " -> ",
               out_channels, " not divisible by groups ", groups);
  Generator& gen = generator ? *generator : default_generator();
  Variable& w = register_parameter("weight", Tensor::empty({out_channels, kernel, kernel, in_channels / groups}));
  Tensor b;
  if (bias) b = register_parameter("bias", Tensor::empty({out_channels})).mutable_value();
  init::conv_linear_default_(w.mutable_value(), bias ? &b : nullptr, gen);
}

std::shared_ptr<Conv2d> Conv2d::tf_same(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                                        int64_t dilation, int64_t groups, bool bias, Generator* generator) {
  auto conv = std::make_shared<Conv2d>(in_channels, out_channels, kernel, stride, 0, dilation, groups, bias, generator);
  conv->same_padding_ = true;
  return conv;
}

Variable& Conv2d::bias() {
  PNEUMO_CHECK(has_bias_, "Conv2d(", in_channels_, ", ", out_channels_, ") was built without bias");
  return parameters_.at(1).second;
}

F::Conv2dGeometry Conv2d::geometry_for(int64_t h, int64_t w) const {
  F::Conv2dGeometry g = F::conv_geometry(stride_, padding_, dilation_, groups_);
  if (same_padding_) {
    const F::SamePadding ph = F::tf_same_padding(h, kernel_, stride_, dilation_);
    const F::SamePadding pw = F::tf_same_padding(w, kernel_, stride_, dilation_);
    g.pad_top = ph.before;
    g.pad_bottom = ph.after;
    g.pad_left = pw.before;
    g.pad_right = pw.after;
  }
  return g;
}

Variable Conv2d::forward(const Variable& x) {
  PNEUMO_CHECK(x.defined() && x.shape().size() == 4, type_name(), ": expected an NHWC input, got ",
               x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  return F::conv2d(x, weight(), has_bias_ ? bias() : Variable(), geometry_for(x.shape()[1], x.shape()[2]));
}

BatchNorm2d::BatchNorm2d(int64_t channels, double eps, double momentum)
    : channels_(channels), eps_(eps), momentum_(momentum) {
  PNEUMO_CHECK(channels > 0 && eps > 0 && momentum >= 0 && momentum <= 1, "BatchNorm2d(", channels, ", eps ", eps,
               ", momentum ", momentum, "): bad arguments");
  register_parameter("weight", Tensor::full({channels}, 1.0));
  register_parameter("bias", Tensor::zeros({channels}));
  register_buffer("running_mean", Tensor::zeros({channels}));
  register_buffer("running_var", Tensor::full({channels}, 1.0));
  register_buffer("num_batches_tracked", Tensor::scalar(0, DType::I64));
}

void BatchNorm2d::set_cumulative_average(bool on) {
  cumulative_ = on;
  cumulative_samples_ = 0;
}

void BatchNorm2d::reset_running_stats() {
  running_mean().zero_();
  running_var().fill_(1.0);
  num_batches_tracked().zero_();
  cumulative_samples_ = 0;
}

void BatchNorm2d::track_batch() {
  if (training_) {
    // On the device, without a read back: a CUDA Graph replay advances it too.
    num_batches_tracked().increment_();
    // The cumulative momentum b / (n + b) is computed from a host count: a replay would repeat it.
    PNEUMO_CHECK(!cumulative_ || cuda::capturing_graph() == nullptr,
                 "BatchNorm2d: cumulative averaging (SWA recalibration) inside a CUDA Graph capture");
  }
}

namespace {
void check_bn_input(const Variable& x, int64_t channels) {
  PNEUMO_CHECK(x.defined() && x.shape().size() == 4 && x.shape()[3] == channels, "BatchNorm2d(", channels,
               "): expected NHWC input with ", channels, " channels, got ",
               x.defined() ? shape_str(x.shape()) : std::string("undefined"));
}
}  // namespace

// One of F::batch_norm, batch_norm_relu, batch_norm_swish on x with this module's parameters and policy.
Variable BatchNorm2d::normalize(BatchNormFn fn, const Variable& x) {
  check_bn_input(x, channels_);
  track_batch();
  return fn(x, weight(), bias(), &running_mean(), &running_var(), training_, cumulative_ ? -1.0 : momentum_, eps_,
            &cumulative_samples_);
}

Variable BatchNorm2d::forward(const Variable& x) { return normalize(&F::batch_norm, x); }

Variable BatchNorm2d::forward_relu(const Variable& x) {
  return layer_ops::fused_bn_enabled() ? normalize(&F::batch_norm_relu, x) : F::relu(forward(x));
}

Variable BatchNorm2d::forward_swish(const Variable& x) {
  return layer_ops::fused_bn_enabled() ? normalize(&F::batch_norm_swish, x) : F::swish(forward(x));
}

Variable BatchNorm2d::forward_tail(const Variable& x, Module& se, const Variable& residual) {
  auto* sq = dynamic_cast<SqueezeExcite*>(&se);
  if (!layer_ops::fused_bn_enabled() || !sq || sq->channels() != channels_)
    return F::relu(ag::add(se.forward(forward(x)), residual));
  check_bn_input(x, channels_);
  track_batch();
  return F::bottleneck_tail(x, weight(), bias(), &running_mean(), &running_var(), training_,
                            cumulative_ ? -1.0 : momentum_, eps_, &cumulative_samples_,
                            sq->reduce().weight(), sq->reduce().bias(), sq->expand().weight(), sq->expand().bias(),
                            static_cast<kernels::Activation>(sq->activation()), residual);
}

Variable FusingSequential::forward(const Variable& x) {
  Variable y = x;
  for (size_t i = 0; i < size(); ++i) {
    auto* bn = dynamic_cast<BatchNorm2d*>(&at(i));
    if (bn && i + 1 < size() && dynamic_cast<ReLU*>(&at(i + 1))) {
      y = bn->forward_relu(y);
      ++i;
    } else {
      y = at(i).forward(y);
    }
  }
  return y;
}

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator* generator)
    : in_features_(in_features), out_features_(out_features), has_bias_(bias) {
  PNEUMO_CHECK(in_features > 0 && out_features > 0, "Linear(", in_features, ", ", out_features, "): bad sizes");
  Generator& gen = generator ? *generator : default_generator();
  Variable& w = register_parameter("weight", Tensor::empty({out_features, in_features}));
  Tensor b;
  if (bias) b = register_parameter("bias", Tensor::empty({out_features})).mutable_value();
  init::conv_linear_default_(w.mutable_value(), bias ? &b : nullptr, gen);
}

Variable& Linear::bias() {
  PNEUMO_CHECK(has_bias_, "Linear(", in_features_, ", ", out_features_, ") was built without bias");
  return parameters_.at(1).second;
}

Variable Linear::forward(const Variable& x) { return F::linear(x, weight(), has_bias_ ? bias() : Variable()); }

Dropout::Dropout(double p, Generator* generator) : p_(p), generator_(generator) {
  PNEUMO_CHECK(p >= 0 && p < 1, "Dropout(", p, "): probability outside [0, 1)");
}

Variable Dropout::forward(const Variable& x) {
  return F::dropout(x, p_, training_, generator_ ? *generator_ : default_generator());
}

}  // namespace pneumo::nn
