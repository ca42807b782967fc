// Differentiable layer functions on Variables (namespace pneumo::nn::F), the building blocks of nn/layers.h.
// Convention: activations are NHWC, conv weights KRSC ([out, kh, kw, in/groups]). Mixed precision: on CUDA
// the activations may be BF16; conv/linear weights are cast to the activation dtype inside the call (the
// float32 parameters stay the masters, their gradients come back float32), BatchNorm parameters and
// running statistics stay float32. On the CPU everything is F32 (or F64 for gradient checks).
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/functions.h"
#include "autograd/variable.h"
#include "kernels/op_codes.h"
#include "tensor/generator.h"
#include "tensor/layer_ops.h"

namespace pneumo::nn::F {

using ag::Variable;

// Stride, padding (possibly asymmetric, TF "same"), dilation and groups; defined in tensor/layer_ops.h:
// stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dilation_h, dilation_w, groups.
using Conv2dGeometry = layer_ops::Conv2dGeometry;
// Symmetric geometry (PyTorch nn.Conv2d arguments).
Conv2dGeometry conv_geometry(int64_t stride, int64_t padding, int64_t dilation = 1, int64_t groups = 1);

// TF/efficientnet-pytorch "same" padding along one axis: total = max((ceil(in/stride)-1)*stride +
// (kernel-1)*dilation + 1 - in, 0); before = total/2, after = total - before (the extra row goes after).
struct SamePadding {
  int64_t before = 0, after = 0;
};
SamePadding tf_same_padding(int64_t input_size, int64_t kernel, int64_t stride, int64_t dilation);

// Output shape [N, OH, OW, K] of conv2d; throws pneumo::Error naming the shapes when they do not fit.
Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dGeometry& geometry);

// x [N, H, W, C], weight [K, kh, kw, C/groups], bias [K] or undefined -> [N, OH, OW, K].
Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias, const Conv2dGeometry& geometry);

// BatchNorm over N, H, W per channel C (last dim). weight/bias [C] may be undefined (1 and 0).
//  training: normalise with the batch statistics (biased variance); if running_mean/var are given, update
//    them as PyTorch does: running = (1 - m) * running + m * batch, with the UNBIASED batch variance.
//    momentum < 0 selects the cumulative (SWA recalibration) average: m = b / (n + b), where b is this
//    batch's sample count and n = *cumulative_samples (required then), which is advanced by b.
//  evaluation: normalise with running_mean/var (required).
// Statistics are float32 (float64 for F64 inputs) whatever the activation dtype.
Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                    Tensor* running_var, bool training, double momentum, double eps,
                    int64_t* cumulative_samples = nullptr);

// The fused BatchNorm path (issue 12; switch layer_ops::fused_bn_enabled(), PNEUMO_FUSED_BN=1): same
// arguments and running-statistics policy as batch_norm, statistics from ONE read of x.
//  batch_norm_relu: relu(batch_norm(x)) as one op that saves its output, not the BatchNorm output;
//  bottleneck_tail: relu(se(batch_norm(x)) + residual) with the SE pool taken from the statistics pass and
//    the gate, residual and ReLU applied in the normalising pass; w1, b1, w2, b2 the SE parameters
//    (float32 masters; cast to x's dtype here), act its hidden activation.
Variable batch_norm_relu(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                         Tensor* running_var, bool training, double momentum, double eps,
                         int64_t* cumulative_samples = nullptr);
//  batch_norm_swish: swish(batch_norm(x)) keeping only x (the BatchNorm output is formed again in the
//    backward); the unfused statistics and values, bit for bit.
Variable batch_norm_swish(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                          Tensor* running_var, bool training, double momentum, double eps,
                          int64_t* cumulative_samples = nullptr);
Variable bottleneck_tail(const Variable& x, const Variable& weight, const Variable& bias, Tensor* running_mean,
                         Tensor* running_var, bool training, double momentum, double eps, int64_t* cumulative_samples,
                         const Variable& w1, const Variable& b1, const Variable& w2, const Variable& b2,
                         kernels::Activation act, const Variable& residual);

// Max pool, square window, padding counts as -inf; ceil_mode as PyTorch (a window must start inside the
// input or the left padding). Backward sends each gradient to the first maximum of its window.
Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride, int64_t padding = 0, bool ceil_mode = false);
Shape max_pool2d_output_shape(const Shape& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode);

// [N, H, W, C] -> [N, 1, 1, C] (mean over H, W).
Variable global_avg_pool(const Variable& x);

// x [N, in] or [N, 1, 1, in], weight [out, in], bias [out] or undefined -> [N, out].
Variable linear(const Variable& x, const Variable& weight, const Variable& bias);

// Elementwise dropout: each element kept with probability 1 - p and scaled by 1/(1 - p). The mask is
// recomputed from (generator seed, offset) in backward, never stored. Identity when !training or p == 0.
Variable dropout(const Variable& x, double p, bool training, Generator& generator);
// Stochastic depth as efficientnet-pytorch's drop_connect: each SAMPLE (dim 0) kept with probability 1 - p,
// kept samples scaled by 1/(1 - p).
Variable drop_connect(const Variable& x, double p, bool training, Generator& generator);

// Nearest-neighbour x2 ([N, H, W, C] -> [N, 2H, 2W, C]), as nn.Upsample(scale_factor=2, mode="nearest").
Variable upsample_nearest2x(const Variable& x);
// Bilinear resize to [N, out_h, out_w, C], as F.interpolate(mode="bilinear", size=..., align_corners=...).
Variable resize_bilinear(const Variable& x, int64_t out_h, int64_t out_w, bool align_corners);

// Concatenation along channels (the decoder's skip connections).
Variable concat(const std::vector<Variable>& parts);

inline Variable relu(const Variable& x) { return ag::relu(x); }
inline Variable sigmoid(const Variable& x) { return ag::sigmoid(x); }
inline Variable swish(const Variable& x) { return ag::swish(x); }  // saves only x (memory-efficient)

}  // namespace pneumo::nn::F
