// The losses of nn/losses.h: thin forwards to the fused differentiable ops of autograd/loss_functions.h
// (autograd nodes) over tensor/loss_ops.h (CPU/CUDA dispatch).
#include "nn/losses.h"

#include "autograd/loss_functions.h"
#include "tensor/loss_ops.h"

namespace pneumo::nn {

DType loss_dtype(DType logits_dtype) { return loss_ops::loss_dtype(logits_dtype); }

ag::Variable bce_with_logits(const ag::Variable& logits, const Tensor& targets) {
  return ag::bce_with_logits(logits, targets);
}

ag::Variable focal_loss(const ag::Variable& logits, const Tensor& targets, double gamma) {
  return ag::focal_loss(logits, targets, gamma);
}

ag::Variable soft_dice_loss(const ag::Variable& logits, const Tensor& targets, double smooth) {
  return ag::soft_dice_loss(logits, targets, smooth);
}

}  // namespace pneumo::nn
