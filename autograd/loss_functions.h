// The reference solution's losses as fused differentiable ops (seed/SOLUTION-FACTS.md, formula for formula),
// one autograd node each over tensor/loss_ops.h. Each returns a scalar (shape []) in the accumulation dtype:
// float32 for F32/BF16 logits, float64 for F64 (so the float64 gradient check runs through the same code).
// Targets get no gradient; they are cast to the logits' dtype and device and must have the logits' numel.
// nn/losses.h is the public face of these (nn::bce_with_logits, nn::focal_loss, nn::soft_dice_loss).
#pragma once
#include "autograd/variable.h"

namespace pneumo::ag {

Variable bce_with_logits(const Variable& logits, const Tensor& targets);
Variable focal_loss(const Variable& logits, const Tensor& targets, double gamma);
Variable soft_dice_loss(const Variable& logits, const Tensor& targets, double smooth);

}  // namespace pneumo::ag
