// Differentiable layer ops on Variables: one autograd Node each, over the dispatching ops of
// tensor/layer_ops.h. They differentiate exactly the tensor op they wrap; policy (casting float32 master
// weights to the activation dtype, bias addition, BatchNorm running statistics, the training flag and the
// random generator) belongs to the callers in nn/functional.h. Each node keeps only what its backward reads
// (conv: x and/or w; BatchNorm: x and the [C] statistics; max pool: the I32 argmax; dropout: only the Philox
// seed/offset, the mask is recomputed; squeeze-excite: x and the weights, the gate is recomputed).
#pragma once
#include <cstdint>

#include "autograd/variable.h"
#include "kernels/op_codes.h"
#include "tensor/fused_bn_ops.h"
#include "tensor/layer_ops.h"

namespace pneumo::ag {

// x [N, H, W, C], w [K, kh, kw, C/groups] of x's dtype -> [N, OH, OW, K] (no bias).
Variable conv2d(const Variable& x, const Variable& w, const layer_ops::Conv2dGeometry& geometry);

// (x - mean) / sqrt(var + eps) * weight + bias with the given statistics (weight/bias may be undefined).
// `training`: mean/var are x's batch statistics, so dx includes their dependence on x; otherwise they are
// constants (the running ones; the node keeps a copy, as the buffers change in place later).
Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                    const Tensor& var, double eps, bool training);

// relu(batch_norm(...)) as ONE op (layer_ops::fused_bn_apply). The node keeps x, the statistics and its own
// OUTPUT (the ReLU mask; the next layer keeps that tensor anyway), not the BatchNorm output.
Variable batch_norm_relu(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                         const Tensor& var, double eps, bool training);

// swish(batch_norm(...)) as ONE op (layer_ops::bn_swish_forward): the node keeps x, the statistics and the
// parameters, and forms the BatchNorm output again in the backward instead of keeping it.
Variable batch_norm_swish(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                          const Tensor& var, double eps, bool training);

// The SE-ResNeXt bottleneck tail relu(gate * BN(x) + residual), gate = sigmoid(W2 act(W1 pooled + b1) + b2),
// pooled = mean_hw BN(x) computed from sample_sum ([N, C] sums of x from the statistics pass), as ONE op
// (layer_ops::bottleneck_tail_forward). weight/bias (BN) float32 (F64 for F64 x); w1, b1, w2, b2 of x's dtype.
// Keeps x, its output, the statistics and the [N, C] SE intermediates.
Variable bottleneck_tail(const Variable& x, const Variable& weight, const Variable& bias, const Tensor& mean,
                         const Tensor& var, const Tensor& sample_sum, double eps, bool training, const Variable& w1,
                         const Variable& b1, const Variable& w2, const Variable& b2, kernels::Activation act,
                         const Variable& residual);

// concat(upsample_nearest2x(x), skip) along channels as ONE op (layer_ops::upsample2x_concat_forward): no
// upsampled intermediate, and the backward reads the slices of the gradient. The node keeps nothing.
Variable upsample2x_concat(const Variable& x, const Variable& skip);

Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode);
Variable upsample_nearest2x(const Variable& x);
Variable resize_bilinear(const Variable& x, int64_t out_h, int64_t out_w, bool align_corners);

// Dropout (per element) or drop-connect (per sample, `per_sample`) with the Philox mask of (seed, offset),
// or of the device state philox_state (layer_ops::dropout), which the node keeps for its backward.
Variable dropout(const Variable& x, double p, uint64_t seed, uint64_t offset, bool per_sample,
                 const Tensor& philox_state = Tensor());

// The fused squeeze-excite block: y = x * sigmoid(W2 act(W1 mean_hw(x) + b1) + b2); all of x's dtype.
Variable squeeze_excite(const Variable& x, const Variable& w1, const Variable& b1, const Variable& w2,
                        const Variable& b2, kernels::Activation act);

}  // namespace pneumo::ag
