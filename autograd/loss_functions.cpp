// Argument checks and autograd nodes of the fused losses (see loss_functions.h); the computation is
// tensor/loss_ops.h. The scalar upstream gradient stays on the device.
#include "autograd/loss_functions.h"

#include "kernels/check.h"
#include "tensor/loss_ops.h"

namespace pneumo::ag {
namespace {

using kernels::BinaryLoss;
using loss_ops::loss_dtype;

Tensor prepare_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  check_defined(op, targets);
  PNEUMO_CHECK(logits.numel() > 0, op, ": empty logits ", shape_str(logits.shape()));
  PNEUMO_CHECK(targets.numel() == logits.numel(), op, ": targets ", shape_str(targets.shape()),
               " do not match logits ", shape_str(logits.shape()));
  PNEUMO_CHECK(is_floating(logits.dtype()), op, ": logits must be floating, got ", dtype_name(logits.dtype()));
  Tensor t = targets.to(logits.device()).to(logits.dtype());
  return t;
}

Tensor scalar_grad(const Tensor& g, const Tensor& like) {
  if (!g.defined()) return Tensor::zeros({}, like.dtype(), like.device());
  PNEUMO_CHECK(g.numel() == 1, "loss backward: upstream gradient must be a scalar, got ", shape_str(g.shape()));
  return g.to(like.device()).to(like.dtype());
}

// ---- BCE / focal ----
class BinaryLossNode : public Node {
 public:
  BinaryLossNode(BinaryLoss kind, double gamma, Tensor x, Tensor t) : kind_(kind), gamma_(gamma), x_(x), t_(t) {}
  const char* name() const override { return kind_ == BinaryLoss::Bce ? "BceWithLogits" : "FocalLoss"; }
  void release() override { x_ = t_ = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    PNEUMO_CHECK(x_.defined(), name(), " backward: saved tensors were released (retain_graph?)");
    Tensor g = scalar_grad(grads[0], Tensor::empty({}, loss_dtype(x_.dtype()), x_.device()));
    return {loss_ops::binary_loss_backward(kind_, gamma_, x_, t_, g)};
  }

 private:
  BinaryLoss kind_;
  double gamma_;
  Tensor x_, t_;
};

Variable binary_loss(const char* op, BinaryLoss kind, double gamma, const Variable& logits, const Tensor& targets) {
  const Tensor& x = logits.value();
  Tensor t = prepare_targets(op, x, targets);
  Tensor loss = loss_ops::binary_loss_forward(kind, gamma, x, t);
  if (!any_requires_grad({logits})) return Variable(loss);
  return record1(std::make_shared<BinaryLossNode>(kind, gamma, x, t), {logits}, loss);
}

// ---- soft dice ----
class SoftDiceNode : public Node {
 public:
  SoftDiceNode(Tensor x, Tensor t, Tensor stats, int64_t batch) : x_(x), t_(t), stats_(stats), batch_(batch) {}
  const char* name() const override { return "SoftDiceLoss"; }
  void release() override { x_ = t_ = stats_ = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    PNEUMO_CHECK(x_.defined(), "soft dice backward: saved tensors were released (retain_graph?)");
    Tensor g = scalar_grad(grads[0], stats_);
    return {loss_ops::soft_dice_backward(x_, t_, stats_, batch_, g)};
  }

 private:
  Tensor x_, t_, stats_;
  int64_t batch_;
};

}  // namespace

Variable bce_with_logits(const Variable& logits, const Tensor& targets) {
  return binary_loss("bce_with_logits", BinaryLoss::Bce, 0.0, logits, targets);
}

Variable focal_loss(const Variable& logits, const Tensor& targets, double gamma) {
  return binary_loss("focal_loss", BinaryLoss::Focal, gamma, logits, targets);
}

Variable soft_dice_loss(const Variable& logits, const Tensor& targets, double smooth) {
  const Tensor& x = logits.value();
  PNEUMO_CHECK(x.dim() >= 1 && x.size(0) > 0, "soft_dice_loss: logits need a batch dimension, got ",
               shape_str(x.shape()));
  Tensor t = prepare_targets("soft_dice_loss", x, targets);
  PNEUMO_CHECK(targets.dim() >= 1 && targets.size(0) == x.size(0), "soft_dice_loss: targets ",
               shape_str(targets.shape()), " and logits ", shape_str(x.shape()), " differ in batch size");
  const int64_t batch = x.size(0);
  loss_ops::SoftDice r = loss_ops::soft_dice_forward(x, t, batch, smooth);
  if (!any_requires_grad({logits})) return Variable(r.loss);
  return record1(std::make_shared<SoftDiceNode>(x, t, r.stats, batch), {logits}, r.loss);
}

}  // namespace pneumo::ag
