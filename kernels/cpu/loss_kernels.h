// CPU reference of the training losses (the oracle for the CUDA path), formula for formula as the
// reference solution (seed/SOLUTION-FACTS.md). Convention: the loss and every statistic are in the
// accumulation dtype `acc` = F64 for F64 logits, F32 otherwise; `grad_loss` (the upstream gradient of the
// scalar loss) is in `acc` too. Backward WRITES dlogits (same dtype as logits). Targets get no gradient.
//  - binary loss, kind Bce: BCE-with-logits, mean over n elements (numerically stable form);
//    kind Focal: focal = BCE_e * exp(gamma * logsigmoid(-x * (2t - 1))), mean.
//  - soft dice over `batch` samples of `per_sample` elements: p = sigmoid(x),
//    dice_i = (sum p t + s) / (sum p^2 + sum t^2 + s), score = sum_i 2 dice_i / B,
//    loss = 1 - clamp(score, 0, 1 - 1e-7). `stats` holds [num_0, den_0, ..., num_{B-1}, den_{B-1}, score]
//    (2B + 1 values) written by forward and read by backward; the clamp passes the gradient only where
//    0 <= score <= 1 - 1e-7 (PyTorch's clamp backward).
#pragma once
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/op_codes.h"

namespace pneumo::kernels::cpu {

void binary_loss_forward(DType dt, BinaryLoss kind, double gamma, const void* logits, const void* targets, int64_t n,
                         void* loss);
void binary_loss_backward(DType dt, BinaryLoss kind, double gamma, const void* logits, const void* targets, int64_t n,
                          const void* grad_loss, void* dlogits);

void soft_dice_forward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                       double smooth, void* stats, void* loss);
void soft_dice_backward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                        const void* stats, const void* grad_loss, void* dlogits);

}  // namespace pneumo::kernels::cpu
