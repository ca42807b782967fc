// The reference solution's losses as fused differentiable ops (seed/SOLUTION-FACTS.md, formula for formula).
// Each returns a scalar (shape []) in the accumulation dtype: float32 for F32/BF16 logits, float64 for F64
// (so the float64 gradient check runs through the same code). Targets get no gradient; they are cast to
// the logits' dtype (masks and labels are 0/1, exact in bfloat16) and must have the logits' numel.
//  - bce_with_logits: mean of max(x,0) - x t + log(1 + exp(-|x|)).
//  - focal_loss: mean of BCE_e * exp(gamma * logsigmoid(-x (2t - 1))) (the reference form, gamma 2).
//  - soft_dice_loss: per sample (dim 0) p = sigmoid(x): dice_i = (sum p t + s) / (sum p^2 + sum t^2 + s);
//    score = sum_i 2 dice_i / B; loss = 1 - clamp(score, 0, 1 - 1e-7); zero gradient where clamped.
#pragma once
#include "autograd/variable.h"

namespace pneumo::nn {

ag::Variable bce_with_logits(const ag::Variable& logits, const Tensor& targets);
ag::Variable focal_loss(const ag::Variable& logits, const Tensor& targets, double gamma = 2.0);
ag::Variable soft_dice_loss(const ag::Variable& logits, const Tensor& targets, double smooth = 0.01);

// The accumulation dtype of a loss on `logits_dtype` logits.
DType loss_dtype(DType logits_dtype);

}  // namespace pneumo::nn
