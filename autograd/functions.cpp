// Autograd nodes for the ops of tensor/ops.h. Each node saves only what its backward reads, computes input
// gradients only for inputs that need them, and reduces gradients of broadcast operands to their shape.
#include "autograd/functions.h"

#include "kernels/check.h"

namespace pneumo::ag {
namespace {

using ops::Broadcast;

bool needs(const Node& n, size_t i) { return i < n.next.size() && n.next[i].valid(); }

// The gradient of a broadcast operand: sum over what it was broadcast across.
Tensor reduce_to(const Tensor& g, Broadcast kind, const Shape& shape) {
  switch (kind) {
    case Broadcast::Full: return g;
    case Broadcast::Scalar: return ops::sum(g).reshape(shape);
    case Broadcast::Channel: return ops::sum_channels(g);
  }
  return g;
}

struct BinaryNode : Node {
  ops::BinaryOp op;
  Broadcast a_kind, b_kind;
  Shape a_shape, b_shape;
  Tensor a, b;  // saved only for mul/div
  const char* name() const override { return ops::binary_name(op); }
  void release() override { a = b = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    const Tensor& dy = grads[0];
    Tensor da, db;
    switch (op) {
      case ops::BinaryOp::Add:
        if (needs(*this, 0)) da = reduce_to(dy, a_kind, a_shape);
        if (needs(*this, 1)) db = reduce_to(dy, b_kind, b_shape);
        break;
      case ops::BinaryOp::Sub:
        if (needs(*this, 0)) da = reduce_to(dy, a_kind, a_shape);
        if (needs(*this, 1)) db = ops::affine(reduce_to(dy, b_kind, b_shape), -1.0, 0.0);
        break;
      case ops::BinaryOp::Mul:
        if (needs(*this, 0)) da = reduce_to(ops::mul(dy, b), a_kind, a_shape);
        if (needs(*this, 1)) db = reduce_to(ops::mul(dy, a), b_kind, b_shape);
        break;
      case ops::BinaryOp::Div:
        if (needs(*this, 0)) da = reduce_to(ops::div(dy, b), a_kind, a_shape);
        if (needs(*this, 1)) {  // d(a/b)/db = -a / b^2
          Tensor t = ops::div(ops::mul(dy, a), ops::mul(b, b));
          db = ops::affine(reduce_to(t, b_kind, b_shape), -1.0, 0.0);
        }
        break;
    }
    return {da, db};
  }
};

Variable binary(ops::BinaryOp op, const Variable& a, const Variable& b) {
  Tensor out = ops::binary(op, a.value(), b.value());
  if (!any_requires_grad({a, b})) return Variable(out);
  auto n = std::make_shared<BinaryNode>();
  n->op = op;
  n->a_kind = ops::broadcast_kind(a.value(), out.shape());
  n->b_kind = ops::broadcast_kind(b.value(), out.shape());
  n->a_shape = a.shape();
  n->b_shape = b.shape();
  // mul: da = dy*b, db = dy*a; div: da = dy/b, db = -dy*a/b^2. Keep only what the needed gradients read.
  if (op == ops::BinaryOp::Mul) {
    if (a.requires_grad()) n->b = b.value();
    if (b.requires_grad()) n->a = a.value();
  } else if (op == ops::BinaryOp::Div) {
    n->b = b.value();
    if (b.requires_grad()) n->a = a.value();
  }
  return record1(n, {a, b}, out);
}

struct AffineNode : Node {
  double alpha = 1;
  const char* name() const override { return "affine"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return {ops::affine(g[0], alpha, 0.0)}; }
};

struct UnaryNode : Node {
  ops::UnaryOp op;
  Tensor x, y;
  const char* name() const override { return ops::unary_name(op); }
  void release() override { x = y = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return {ops::unary_backward(op, x, y, g[0])}; }
};

struct ExpandNode : Node {  // backward of the reductions: broadcast the gradient back
  enum Kind { All, Channels, HW } kind;
  Shape in_shape;
  double scale = 1;
  const char* name() const override { return kind == All ? "sum" : (kind == Channels ? "sum_channels" : "sum_hw"); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    switch (kind) {
      case All: return {ops::expand_scalar(g[0], in_shape, scale)};
      case Channels: return {ops::expand_channels(g[0], in_shape, scale)};
      case HW: return {ops::expand_hw(g[0], in_shape, scale)};
    }
    return {Tensor()};
  }
};

Variable reduction(ExpandNode::Kind kind, const Variable& x, Tensor out, double scale) {
  if (!any_requires_grad({x})) return Variable(out);
  auto n = std::make_shared<ExpandNode>();
  n->kind = kind;
  n->in_shape = x.shape();
  n->scale = scale;
  return record1(n, {x}, out);
}

struct MatmulNode : Node {
  Tensor a, b;
  bool ta = false, tb = false;
  const char* name() const override { return "matmul"; }
  void release() override { a = b = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    const Tensor& dc = g[0];
    Tensor da, db;
    if (!ta && !tb) {
      if (needs(*this, 0)) da = ops::matmul(dc, b, false, true);
      if (needs(*this, 1)) db = ops::matmul(a, dc, true, false);
    } else if (ta && !tb) {
      if (needs(*this, 0)) da = ops::matmul(b, dc, false, true);
      if (needs(*this, 1)) db = ops::matmul(a, dc, false, false);
    } else if (!ta && tb) {
      if (needs(*this, 0)) da = ops::matmul(dc, b, false, false);
      if (needs(*this, 1)) db = ops::matmul(dc, a, true, false);
    } else {
      if (needs(*this, 0)) da = ops::matmul(b, dc, true, true);
      if (needs(*this, 1)) db = ops::matmul(dc, a, true, true);
    }
    return {da, db};
  }
};

struct ReshapeNode : Node {
  Shape in_shape;
  const char* name() const override { return "reshape"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return {g[0].reshape(in_shape)}; }
};

struct ConcatNode : Node {
  std::vector<int64_t> sizes;
  const char* name() const override { return "concat_channels"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return ops::split_channels(g[0], sizes); }
};

struct SplitNode : Node {
  const char* name() const override { return "split_channels"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    std::vector<Tensor> parts;
    for (size_t i = 0; i < g.size(); ++i)
      parts.push_back(g[i].defined() ? g[i] : Tensor::zeros(output_shapes[i], output_dtypes[i], output_device));
    return {ops::concat_channels(parts)};
  }
};

struct CastNode : Node {
  DType from;
  const char* name() const override { return "cast"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return {g[0].to(from)}; }
};

}  // namespace

Variable add(const Variable& a, const Variable& b) { return binary(ops::BinaryOp::Add, a, b); }
Variable sub(const Variable& a, const Variable& b) { return binary(ops::BinaryOp::Sub, a, b); }
Variable mul(const Variable& a, const Variable& b) { return binary(ops::BinaryOp::Mul, a, b); }
Variable div(const Variable& a, const Variable& b) { return binary(ops::BinaryOp::Div, a, b); }

Variable affine(const Variable& x, double alpha, double beta) {
  Tensor out = ops::affine(x.value(), alpha, beta);
  if (!any_requires_grad({x})) return Variable(out);
  auto n = std::make_shared<AffineNode>();
  n->alpha = alpha;
  return record1(n, {x}, out);
}
Variable scale(const Variable& x, double alpha) { return affine(x, alpha, 0.0); }

Variable unary(ops::UnaryOp op, const Variable& x) {
  Tensor y = ops::unary(op, x.value());
  if (!any_requires_grad({x})) return Variable(y);
  auto n = std::make_shared<UnaryNode>();
  n->op = op;
  switch (op) {
    case ops::UnaryOp::Neg: break;
    case ops::UnaryOp::Log:
    case ops::UnaryOp::Abs:
    case ops::UnaryOp::Relu:
    case ops::UnaryOp::Swish: n->x = x.value(); break;  // swish recomputes sigmoid from x: y is not kept
    case ops::UnaryOp::Sigmoid:
    case ops::UnaryOp::Tanh:  // 16-bit y loses 1 - y (and 1 - y^2) near saturation: keep x instead
      if (dtype_size(x.dtype()) == 2)
        n->x = x.value();
      else
        n->y = y;
      break;
    default: n->y = y; break;
  }
  return record1(n, {x}, y);
}
Variable neg(const Variable& x) { return unary(ops::UnaryOp::Neg, x); }
Variable exp(const Variable& x) { return unary(ops::UnaryOp::Exp, x); }
Variable log(const Variable& x) { return unary(ops::UnaryOp::Log, x); }
Variable sqrt(const Variable& x) { return unary(ops::UnaryOp::Sqrt, x); }
Variable abs(const Variable& x) { return unary(ops::UnaryOp::Abs, x); }
Variable relu(const Variable& x) { return unary(ops::UnaryOp::Relu, x); }
Variable sigmoid(const Variable& x) { return unary(ops::UnaryOp::Sigmoid, x); }
Variable tanh(const Variable& x) { return unary(ops::UnaryOp::Tanh, x); }
Variable swish(const Variable& x) { return unary(ops::UnaryOp::Swish, x); }

Variable sum(const Variable& x) { return reduction(ExpandNode::All, x, ops::sum(x.value()), 1.0); }
Variable mean(const Variable& x) {
  PNEUMO_CHECK(x.numel() > 0, "mean of an empty tensor");
  double s = 1.0 / static_cast<double>(x.numel());
  return reduction(ExpandNode::All, x, ops::affine(ops::sum(x.value()), s, 0.0), s);
}
Variable sum_channels(const Variable& x) { return reduction(ExpandNode::Channels, x, ops::sum_channels(x.value()), 1.0); }
Variable sum_hw(const Variable& x) { return reduction(ExpandNode::HW, x, ops::sum_hw(x.value()), 1.0); }
Variable mean_hw(const Variable& x) {
  PNEUMO_CHECK(x.value().dim() == 4 && x.shape()[1] * x.shape()[2] > 0, "mean_hw expects non-empty NHWC, got ",
               shape_str(x.shape()));
  double s = 1.0 / static_cast<double>(x.shape()[1] * x.shape()[2]);
  return reduction(ExpandNode::HW, x, ops::affine(ops::sum_hw(x.value()), s, 0.0), s);
}

Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b) {
  Tensor out = ops::matmul(a.value(), b.value(), trans_a, trans_b);
  if (!any_requires_grad({a, b})) return Variable(out);
  auto n = std::make_shared<MatmulNode>();
  n->ta = trans_a;
  n->tb = trans_b;
  if (b.requires_grad()) n->a = a.value();
  if (a.requires_grad()) n->b = b.value();
  return record1(n, {a, b}, out);
}

Variable reshape(const Variable& x, const Shape& shape) {
  Tensor out = x.value().reshape(shape);
  if (!any_requires_grad({x})) return Variable(out);
  auto n = std::make_shared<ReshapeNode>();
  n->in_shape = x.shape();
  return record1(n, {x}, out);
}

Variable concat_channels(const std::vector<Variable>& parts) {
  std::vector<Tensor> values;
  for (const Variable& p : parts) values.push_back(p.value());
  Tensor out = ops::concat_channels(values);
  if (!any_requires_grad(parts)) return Variable(out);
  auto n = std::make_shared<ConcatNode>();
  for (const Tensor& v : values) n->sizes.push_back(v.shape().back());
  return record1(n, parts, out);
}

std::vector<Variable> split_channels(const Variable& x, const std::vector<int64_t>& sizes) {
  std::vector<Tensor> outs = ops::split_channels(x.value(), sizes);
  return record(std::make_shared<SplitNode>(), {x}, std::move(outs));
}

Variable cast(const Variable& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = x.value().to(dtype);
  if (!any_requires_grad({x})) return Variable(out);
  auto n = std::make_shared<CastNode>();
  n->from = x.dtype();
  return record1(n, {x}, out);
}

Variable cast_precomputed(const Variable& x, Tensor out) {
  PNEUMO_CHECK(out.defined() && out.shape() == x.shape() && out.device() == x.device(),
               "cast_precomputed: ", shape_str(out.shape()), " on ", out.device().str(), " for ", shape_str(x.shape()),
               " on ", x.device().str());
  if (out.dtype() == x.dtype()) return x;
  if (!any_requires_grad({x})) return Variable(out);
  auto n = std::make_shared<CastNode>();
  n->from = x.dtype();
  return record1(n, {x}, std::move(out));
}

}  // namespace pneumo::ag
