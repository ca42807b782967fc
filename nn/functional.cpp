// Differentiable layer functions: each records one autograd Node that keeps exactly what its backward needs
// (conv: x and/or w; BatchNorm: x and the [C] statistics; max pool: the I32 argmax; dropout: only the Philox
// seed/offset, the mask is recomputed). Convention: NHWC, KRSC; weights are cast to the activation dtype here
// so float32 master parameters receive float32 gradients through the cast's backward.
#include "nn/functional.h"

#include <cmath>

#include "kernels/check.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"

namespace pneumo::nn::F {
namespace {

bool needs(const ag::Node& n, size_t i) { return i < n.next.size() && n.next[i].valid(); }

void check_var(const char* op, const char* what, const Variable& v) {
  PNEUMO_CHECK(v.defined(), op, ": ", what, " is undefined");
  check_defined(op, v.value());
}

// The parameter as the activation dtype (BF16 activations, F32 master weights); recorded, so the gradient
// flows back to the float32 parameter.
Variable as_dtype(const Variable& v, DType dt) { return v.dtype() == dt ? v : ag::cast(v, dt); }

// ---- convolution ----
struct Conv2dNode : ag::Node {
  Conv2dGeometry geometry;
  Tensor x, w;  // x kept only when w needs a gradient, w only when x does
  Shape x_shape, w_shape;
  const char* name() const override { return "conv2d"; }
  void release() override { x = w = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dx, dw;
    if (needs(*this, 0)) dx = layer_ops::conv2d_backward_data(g[0], w, x_shape, geometry);
    if (needs(*this, 1)) dw = layer_ops::conv2d_backward_weight(g[0], x, w_shape, geometry);
    return {dx, dw};
  }
};

// ---- BatchNorm ----
struct BatchNormNode : ag::Node {
  Tensor x, mean, var, weight;
  double eps = 0;
  bool training = true;
  bool has_weight = false, has_bias = false;
  const char* name() const override { return "batch_norm"; }
  void release() override { x = mean = var = weight = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    // Inputs are x, then weight and bias when defined.
    const size_t wi = 1, bi = has_weight ? 2 : 1;
    const bool need_params = (has_weight && needs(*this, wi)) || (has_bias && needs(*this, bi));
    std::vector<Tensor> out(1 + (has_weight ? 1 : 0) + (has_bias ? 1 : 0));
    if (!needs(*this, 0) && !need_params) return out;
    layer_ops::BatchNormGrads grads =
        layer_ops::batch_norm_backward(g[0], x, mean, var, eps, weight, training, needs(*this, 0));
    out[0] = grads.dx;
    if (has_weight && needs(*this, wi)) out[wi] = grads.dweight;
    if (has_bias && needs(*this, bi)) out[bi] = grads.dbias;
    return out;
  }
};

// ---- pooling / resizing / dropout ----
struct MaxPoolNode : ag::Node {
  Tensor argmax;
  Shape x_shape;
  int64_t kernel = 0, stride = 0, padding = 0;
  const char* name() const override { return "max_pool2d"; }
  void release() override { argmax = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {layer_ops::max_pool2d_backward(g[0], argmax, x_shape, kernel, stride, padding)};
  }
};

struct UpsampleNearestNode : ag::Node {
  const char* name() const override { return "upsample_nearest2x"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {layer_ops::upsample_nearest2x_backward(g[0])};
  }
};

struct ResizeBilinearNode : ag::Node {
  Shape x_shape;
  bool align_corners = false;
  const char* name() const override { return "resize_bilinear"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {layer_ops::resize_bilinear_backward(g[0], x_shape, align_corners)};
  }
};

struct DropoutNode : ag::Node {
  bool per_sample = false;
  double p = 0;
  uint64_t seed = 0, offset = 0;
  const char* name() const override { return per_sample ? "drop_connect" : "dropout"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {per_sample ? layer_ops::drop_connect(g[0], p, seed, offset) : layer_ops::dropout(g[0], p, seed, offset)};
  }
};

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
  const Variable w = as_dtype(weight, x.dtype());
  Tensor y = layer_ops::conv2d_forward(x.value(), w.value(), geometry);
  Variable out;
  if (!ag::any_requires_grad({x, w})) {
    out = Variable(y);
  } else {
    auto n = std::make_shared<Conv2dNode>();
    n->geometry = geometry;
    n->x_shape = x.shape();
    n->w_shape = w.shape();
    if (w.requires_grad()) n->x = x.value();
    if (x.requires_grad()) n->w = w.value();
    out = ag::record1(n, {x, w}, y);
  }
  if (bias.defined()) {
    PNEUMO_CHECK(bias.shape() == Shape({weight.shape()[0]}), "conv2d: bias ", shape_str(bias.shape()),
                 " does not match weight ", shape_str(weight.shape()));
    out = ag::add(out, as_dtype(bias, x.dtype()));
  }
  return out;
}

Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                    Tensor* running_var, bool training, double momentum, double eps, int64_t* cumulative_samples) {
  check_var("batch_norm", "input", x);
  PNEUMO_CHECK(x.value().dim() == 4, "batch_norm: expected NHWC [N, H, W, C], got ", shape_str(x.shape()));
  PNEUMO_CHECK(eps > 0, "batch_norm: eps must be positive, got ", eps);
  PNEUMO_CHECK((running_mean == nullptr) == (running_var == nullptr),
               "batch_norm: give both running_mean and running_var or neither");
  const Tensor& xv = x.value();
  const Tensor wv = weight.defined() ? weight.value() : Tensor();
  const Tensor bv = bias.defined() ? bias.value() : Tensor();
  Tensor mean, var;
  if (training) {
    layer_ops::MomentPair m = layer_ops::batch_norm_statistics(xv);
    mean = m.mean;
    var = m.var;
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
  Tensor y = layer_ops::batch_norm_apply(xv, mean, var, eps, wv, bv);
  std::vector<Variable> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  if (!ag::any_requires_grad(inputs)) return Variable(y);
  auto n = std::make_shared<BatchNormNode>();
  n->x = xv;
  // The running buffers change in place on later training steps; the backward must see today's values.
  n->mean = training ? mean : mean.clone();
  n->var = training ? var : var.clone();
  n->weight = wv;
  n->eps = eps;
  n->training = training;
  n->has_weight = weight.defined();
  n->has_bias = bias.defined();
  return ag::record1(n, inputs, y);
}

Shape max_pool2d_output_shape(const Shape& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  return layer_ops::max_pool2d_shape(x, kernel, stride, padding, ceil_mode);
}

Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  check_var("max_pool2d", "input", x);
  layer_ops::PoolResult r = layer_ops::max_pool2d_forward(x.value(), kernel, stride, padding, ceil_mode);
  if (!ag::any_requires_grad({x})) return Variable(r.y);
  auto n = std::make_shared<MaxPoolNode>();
  n->argmax = r.argmax;
  n->x_shape = x.shape();
  n->kernel = kernel;
  n->stride = stride;
  n->padding = padding;
  return ag::record1(n, {x}, r.y);
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
  const uint64_t seed = generator.seed(), offset = generator.next_offset();
  Tensor y = per_sample ? layer_ops::drop_connect(x.value(), p, seed, offset)
                        : layer_ops::dropout(x.value(), p, seed, offset);
  if (!ag::any_requires_grad({x})) return Variable(y);
  auto n = std::make_shared<DropoutNode>();
  n->per_sample = per_sample;
  n->p = p;
  n->seed = seed;
  n->offset = offset;
  return ag::record1(n, {x}, y);
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
  Tensor y = layer_ops::upsample_nearest2x_forward(x.value());
  if (!ag::any_requires_grad({x})) return Variable(y);
  return ag::record1(std::make_shared<UpsampleNearestNode>(), {x}, y);
}

Variable resize_bilinear(const Variable& x, int64_t out_h, int64_t out_w, bool align_corners) {
  check_var("resize_bilinear", "input", x);
  Tensor y = layer_ops::resize_bilinear_forward(x.value(), out_h, out_w, align_corners);
  if (!ag::any_requires_grad({x})) return Variable(y);
  auto n = std::make_shared<ResizeBilinearNode>();
  n->x_shape = x.shape();
  n->align_corners = align_corners;
  return ag::record1(n, {x}, y);
}

Variable concat(const std::vector<Variable>& parts) { return ag::concat_channels(parts); }

}  // namespace pneumo::nn::F
