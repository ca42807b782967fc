// Autograd nodes of the layer ops (see layer_functions.h); the computation is tensor/layer_ops.h.
#include "autograd/layer_functions.h"

#include "kernels/check.h"

namespace pneumo::ag {
namespace {

bool needs(const Node& n, size_t i) { return i < n.next.size() && n.next[i].valid(); }

// ---- convolution ----
struct Conv2dNode : Node {
  layer_ops::Conv2dGeometry geometry;
  Tensor x, w;  // x kept only when w needs a gradient, w only when x does
  Shape x_shape, w_shape;
  const char* name() const override { return "conv2d"; }
  void release() override { x = w = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    std::vector<Tensor> none;
    return backward_into(g, none);
  }
  // x's gradient is added into the sum lent for it (a tensor used twice: cuDNN's beta = 1 where enabled).
  std::vector<Tensor> backward_into(const std::vector<Tensor>& g, std::vector<Tensor>& into) override {
    Tensor dx, dw;
    Tensor* dx_into = !into.empty() && into[0].defined() ? &into[0] : nullptr;
    if (needs(*this, 0)) dx = layer_ops::conv2d_backward_data(g[0], w, x_shape, geometry, dx_into);
    if (needs(*this, 1)) dw = layer_ops::conv2d_backward_weight(g[0], x, w_shape, geometry);
    return {dx, dw};
  }
};

// ---- BatchNorm ----
// What the BatchNorm nodes share: their inputs are x, then weight and bias when defined.
struct BatchNormNodeBase : Node {
  Tensor x, mean, var, weight;
  double eps = 0;
  bool training = true;
  bool has_weight = false, has_bias = false;
  // The gradients of the inputs, each only where the input needs one.
  std::vector<Tensor> input_grads(Tensor dx, Tensor dweight, Tensor dbias) const {
    std::vector<Tensor> out{std::move(dx)};
    if (has_weight) out.push_back(needs(*this, out.size()) ? std::move(dweight) : Tensor());
    if (has_bias) out.push_back(needs(*this, out.size()) ? std::move(dbias) : Tensor());
    return out;
  }
  bool needs_params() const {
    return (has_weight && needs(*this, 1)) || (has_bias && needs(*this, has_weight ? 2 : 1));
  }
};

struct BatchNormNode : BatchNormNodeBase {
  const char* name() const override { return "batch_norm"; }
  void release() override { x = mean = var = weight = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    if (!needs(*this, 0) && !needs_params()) return input_grads(Tensor(), Tensor(), Tensor());
    layer_ops::BatchNormGrads r = layer_ops::batch_norm_backward(g[0], x, mean, var, eps, weight, training, needs(*this, 0));
    return input_grads(r.dx, r.dweight, r.dbias);
  }
};

// ---- fused BatchNorm + ReLU, BatchNorm + swish, bottleneck tail ----
struct BatchNormReluNode : BatchNormNodeBase {
  Tensor y;  // this op's output (the ReLU mask)
  const char* name() const override { return "batch_norm_relu"; }
  void release() override { x = y = mean = var = weight = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    PNEUMO_CHECK(x.defined(), "batch_norm_relu backward: saved tensors were released (retain_graph?)");
    if (!g[0].defined()) return input_grads(Tensor(), Tensor(), Tensor());
    layer_ops::FusedBnGrads r =
        layer_ops::fused_bn_backward(g[0], y, x, mean, var, eps, weight, true, training, needs(*this, 0));
    return input_grads(r.dx, r.dweight, r.dbias);
  }
};

struct BatchNormSwishNode : BatchNormNodeBase {
  Tensor bias;  // the BatchNorm output is formed again from x
  const char* name() const override { return "batch_norm_swish"; }
  void release() override { x = mean = var = weight = bias = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    PNEUMO_CHECK(x.defined(), "batch_norm_swish backward: saved tensors were released (retain_graph?)");
    if (!g[0].defined()) return input_grads(Tensor(), Tensor(), Tensor());
    layer_ops::BnSwishGrads r =
        layer_ops::bn_swish_backward(g[0], x, mean, var, eps, weight, bias, training, needs(*this, 0));
    return input_grads(r.dx, r.dweight, r.dbias);
  }
};

struct BottleneckTailNode : Node {
  Tensor x, y, mean, var, sample_sum, weight, bias, w1, w2;
  layer_ops::TailSaved saved;
  double eps = 0;
  bool training = true;
  kernels::Activation act = kernels::Activation::Relu;
  const char* name() const override { return "bottleneck_tail"; }
  void release() override {
    x = y = mean = var = sample_sum = weight = bias = w1 = w2 = Tensor();
    saved = layer_ops::TailSaved();
  }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    PNEUMO_CHECK(x.defined(), "bottleneck_tail backward: saved tensors were released (retain_graph?)");
    if (!g[0].defined()) return std::vector<Tensor>(8);
    layer_ops::TailGrads r =
        layer_ops::bottleneck_tail_backward(g[0], y, x, mean, var, sample_sum, eps, weight, bias, w1, w2, act, saved,
                                            training);
    // Inputs: x, weight, bias, w1, b1, w2, b2, residual.
    return {r.dx, r.dweight, r.dbias, r.dw1, r.db1, r.dw2, r.db2, r.dresidual};
  }
};

struct UpsampleConcatNode : Node {
  int64_t cx = 0;
  const char* name() const override { return "upsample2x_concat"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    if (!g[0].defined()) return {Tensor(), Tensor()};
    layer_ops::UpsampleConcatGrads r = layer_ops::upsample2x_concat_backward(g[0], cx, needs(*this, 0), needs(*this, 1));
    return {r.dx, r.dskip};
  }
};

// ---- pooling / resizing / dropout ----
struct MaxPoolNode : Node {
  Tensor argmax;
  Shape x_shape;
  int64_t kernel = 0, stride = 0, padding = 0;
  const char* name() const override { return "max_pool2d"; }
  void release() override { argmax = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {layer_ops::max_pool2d_backward(g[0], argmax, x_shape, kernel, stride, padding)};
  }
};

struct UpsampleNearestNode : Node {
  const char* name() const override { return "upsample_nearest2x"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {layer_ops::upsample_nearest2x_backward(g[0])};
  }
};

struct ResizeBilinearNode : Node {
  Shape x_shape;
  bool align_corners = false;
  const char* name() const override { return "resize_bilinear"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {layer_ops::resize_bilinear_backward(g[0], x_shape, align_corners)};
  }
};

struct DropoutNode : Node {
  bool per_sample = false;
  double p = 0;
  uint64_t seed = 0, offset = 0;
  Tensor state;  // a CUDA Graph's draw: the forward's and the backward's kernels read the same values
  const char* name() const override { return per_sample ? "drop_connect" : "dropout"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {per_sample ? layer_ops::drop_connect(g[0], p, seed, offset, state)
                       : layer_ops::dropout(g[0], p, seed, offset, state)};
  }
};

// ---- squeeze-excite ----
class SqueezeExciteNode : public Node {
 public:
  SqueezeExciteNode(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, kernels::Activation act)
      : x_(std::move(x)), w1_(std::move(w1)), b1_(std::move(b1)), w2_(std::move(w2)), b2_(std::move(b2)), act_(act) {}
  const char* name() const override { return "SqueezeExcite"; }
  void release() override { x_ = w1_ = b1_ = w2_ = b2_ = Tensor(); }

  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    PNEUMO_CHECK(x_.defined(), "squeeze_excite backward: saved tensors were released (retain_graph?)");
    Tensor dy = grads[0];
    if (!dy.defined()) dy = Tensor::zeros(x_.shape(), x_.dtype(), x_.device());
    layer_ops::SqueezeExciteGrads g = layer_ops::squeeze_excite_backward(x_, dy, w1_, b1_, w2_, b2_, act_);
    return {g.dx, g.dw1, g.db1, g.dw2, g.db2};
  }

 private:
  Tensor x_, w1_, b1_, w2_, b2_;
  kernels::Activation act_;
};

}  // namespace

Variable conv2d(const Variable& x, const Variable& w, const layer_ops::Conv2dGeometry& geometry) {
  Tensor y = layer_ops::conv2d_forward(x.value(), w.value(), geometry);
  if (!any_requires_grad({x, w})) return Variable(y);
  auto n = std::make_shared<Conv2dNode>();
  n->geometry = geometry;
  n->x_shape = x.shape();
  n->w_shape = w.shape();
  if (w.requires_grad()) n->x = x.value();
  if (x.requires_grad()) n->w = w.value();
  return record1(n, {x, w}, y);
}

namespace {

// x, then weight and bias when defined: the input order of both BatchNorm nodes' backward.
std::vector<Variable> bn_inputs(const Variable& x, const Variable& weight, const Variable& bias) {
  std::vector<Variable> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  return inputs;
}

// Records y, a BatchNorm op's output, on node `n`, which saves x, the statistics and the weight (when a
// gradient is needed at all).
Variable record_bn(const std::shared_ptr<BatchNormNodeBase>& n, const Variable& x, const Variable& weight,
                   const Variable& bias, const Tensor& mean, const Tensor& var, double eps, bool training,
                   const Tensor& y) {
  std::vector<Variable> inputs = bn_inputs(x, weight, bias);
  if (!any_requires_grad(inputs)) return Variable(y);
  n->x = x.value();
  // The running buffers change in place on later training steps; the backward must see today's values.
  n->mean = training ? mean : mean.clone();
  n->var = training ? var : var.clone();
  n->weight = weight.defined() ? weight.value() : Tensor();
  n->eps = eps;
  n->training = training;
  n->has_weight = weight.defined();
  n->has_bias = bias.defined();
  return record1(n, inputs, y);
}

Tensor value_or_none(const Variable& v) { return v.defined() ? v.value() : Tensor(); }

}  // namespace

Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                    const Tensor& var, double eps, bool training) {
  Tensor y = layer_ops::batch_norm_apply(x.value(), mean, var, eps, value_or_none(weight), value_or_none(bias));
  return record_bn(std::make_shared<BatchNormNode>(), x, weight, bias, mean, var, eps, training, y);
}

Variable batch_norm_relu(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                         const Tensor& var, double eps, bool training) {
  auto n = std::make_shared<BatchNormReluNode>();
  n->y = layer_ops::fused_bn_apply(x.value(), mean, var, eps, value_or_none(weight), value_or_none(bias), Tensor(),
                                   Tensor(), true);
  return record_bn(n, x, weight, bias, mean, var, eps, training, n->y);
}

Variable batch_norm_swish(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                          const Tensor& var, double eps, bool training) {
  auto n = std::make_shared<BatchNormSwishNode>();
  n->bias = value_or_none(bias);
  Tensor y = layer_ops::bn_swish_forward(x.value(), mean, var, eps, value_or_none(weight), n->bias);
  return record_bn(n, x, weight, bias, mean, var, eps, training, y);
}

Variable bottleneck_tail(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                         const Tensor& var, const Tensor& sample_sum, double eps, bool training, const Variable& w1,
                         const Variable& b1, const Variable& w2, const Variable& b2, kernels::Activation act,
                         const Variable& residual) {
  PNEUMO_CHECK(weight.defined() && bias.defined() && w1.defined() && b1.defined() && w2.defined() && b2.defined() &&
                   residual.defined(),
               "bottleneck_tail: every input must be defined");
  layer_ops::TailSaved saved;
  Tensor y = layer_ops::bottleneck_tail_forward(x.value(), mean, var, sample_sum, eps, weight.value(), bias.value(),
                                                w1.value(), b1.value(), w2.value(), b2.value(), act,
                                                residual.value(), &saved);
  const std::vector<Variable> inputs{x, weight, bias, w1, b1, w2, b2, residual};
  if (!any_requires_grad(inputs)) return Variable(y);
  auto n = std::make_shared<BottleneckTailNode>();
  n->x = x.value();
  n->y = y;
  n->mean = training ? mean : mean.clone();
  n->var = training ? var : var.clone();
  n->sample_sum = sample_sum;
  n->weight = weight.value();
  n->bias = bias.value();
  n->w1 = w1.value();
  n->w2 = w2.value();
  n->saved = saved;
  n->eps = eps;
  n->training = training;
  n->act = act;
  return record1(n, inputs, y);
}

Variable upsample2x_concat(const Variable& x, const Variable& skip) {
  Tensor y = layer_ops::upsample2x_concat_forward(x.value(), skip.value());
  if (!any_requires_grad({x, skip})) return Variable(y);
  auto n = std::make_shared<UpsampleConcatNode>();
  n->cx = x.shape()[3];
  return record1(n, {x, skip}, y);
}

Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  layer_ops::PoolResult r = layer_ops::max_pool2d_forward(x.value(), kernel, stride, padding, ceil_mode);
  if (!any_requires_grad({x})) return Variable(r.y);
  auto n = std::make_shared<MaxPoolNode>();
  n->argmax = r.argmax;
  n->x_shape = x.shape();
  n->kernel = kernel;
  n->stride = stride;
  n->padding = padding;
  return record1(n, {x}, r.y);
}

Variable dropout(const Variable& x, double p, uint64_t seed, uint64_t offset, bool per_sample,
                 const Tensor& philox_state) {
  Tensor y = per_sample ? layer_ops::drop_connect(x.value(), p, seed, offset, philox_state)
                        : layer_ops::dropout(x.value(), p, seed, offset, philox_state);
  if (!any_requires_grad({x})) return Variable(y);
  auto n = std::make_shared<DropoutNode>();
  n->per_sample = per_sample;
  n->p = p;
  n->seed = seed;
  n->offset = offset;
  n->state = philox_state;
  return record1(n, {x}, y);
}

Variable upsample_nearest2x(const Variable& x) {
  Tensor y = layer_ops::upsample_nearest2x_forward(x.value());
  if (!any_requires_grad({x})) return Variable(y);
  return record1(std::make_shared<UpsampleNearestNode>(), {x}, y);
}

Variable resize_bilinear(const Variable& x, int64_t out_h, int64_t out_w, bool align_corners) {
  Tensor y = layer_ops::resize_bilinear_forward(x.value(), out_h, out_w, align_corners);
  if (!any_requires_grad({x})) return Variable(y);
  auto n = std::make_shared<ResizeBilinearNode>();
  n->x_shape = x.shape();
  n->align_corners = align_corners;
  return record1(n, {x}, y);
}

Variable squeeze_excite(const Variable& x, const Variable& w1, const Variable& b1, const Variable& w2,
                        const Variable& b2, kernels::Activation act) {
  Tensor y = layer_ops::squeeze_excite_forward(x.value(), w1.value(), b1.value(), w2.value(), b2.value(), act);
  std::vector<Variable> inputs{x, w1, b1, w2, b2};
  if (!any_requires_grad(inputs)) return Variable(y);
  auto node = std::make_shared<SqueezeExciteNode>(x.value(), w1.value(), b1.value(), w2.value(), b2.value(), act);
  return record1(node, inputs, y);
}

}  // namespace pneumo::ag
