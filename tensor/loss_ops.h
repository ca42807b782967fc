// Tensor-level fused losses without autograd (kernels/{cpu,cuda}/loss_kernels.h): validation-free dispatch
// of the forward and backward passes; the argument checks and the autograd nodes are autograd/loss_functions.h.
// The loss, the Dice statistics and the upstream gradient are in the accumulation dtype loss_dtype(logits):
// float32 for F32/BF16 logits, float64 for F64. On CUDA the upstream gradient stays on the device (no host
// synchronisation). Targets have the logits' dtype, device and numel.
#pragma once
#include <cstdint>

#include "kernels/op_codes.h"
#include "tensor/tensor.h"

namespace pneumo::loss_ops {

// The accumulation dtype of a loss on `logits_dtype` logits.
DType loss_dtype(DType logits_dtype);

// Mean over all elements of BCE-with-logits or focal (gamma); returns a scalar (shape []).
Tensor binary_loss_forward(kernels::BinaryLoss kind, double gamma, const Tensor& x, const Tensor& t);
// dlogits for the scalar upstream gradient `g` (shape [], loss dtype, x's device).
Tensor binary_loss_backward(kernels::BinaryLoss kind, double gamma, const Tensor& x, const Tensor& t, const Tensor& g);

// Soft Dice over `batch` samples (dim 0): the loss (shape []) and the statistics [2 * batch + 1] its
// backward reads.
struct SoftDice {
  Tensor loss, stats;
};
SoftDice soft_dice_forward(const Tensor& x, const Tensor& t, int64_t batch, double smooth);
Tensor soft_dice_backward(const Tensor& x, const Tensor& t, const Tensor& stats, int64_t batch, const Tensor& g);

}  // namespace pneumo::loss_ops
