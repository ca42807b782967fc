// Fused BatchNorm at the tensor level (issue 12 part 2, items 2 and 3): BatchNorm + ReLU, and the
// SE-ResNeXt bottleneck tail relu(SE-gate * BN(x) + residual) with the SE pool taken from the statistics
// pass. Kernels: kernels/{cpu,cuda}/fused_bn_kernels.h. Activations NHWC, F32/F64 (and BF16 storage) on
// the CPU, F32/BF16 on CUDA; statistics, BN parameters, gates: F64 for F64 activations, F32 otherwise.
// SE weights have the activation dtype (nn casts the float32 masters), as for layer_ops::squeeze_excite.
#pragma once
#include <cstdint>

#include "kernels/op_codes.h"
#include "tensor/tensor.h"

namespace pneumo::layer_ops {

// The switch of the networks' BatchNorm+ReLU and bottleneck tails: PNEUMO_FUSED_BN=1 turns the fused
// path on (read once). Default OFF: the CUDA kernels have not yet run on a GPU (docs/gpu-status.md).
bool fused_bn_enabled();
void set_fused_bn_enabled(bool on);  // tests and tools

struct FusedBnStatistics {
  Tensor mean, var;   // [C] (biased variance), when moments
  Tensor sample_sum;  // [N, C] = sum over H, W of x, when sample_sums (the SE pool)
};
// ONE read of x.
FusedBnStatistics fused_bn_statistics(const Tensor& x, bool moments, bool sample_sums);

// relu?(gate[n,c] * ((x - mean) / sqrt(var + eps) * weight + bias) + residual) in one pass; weight, bias,
// gate [N, C] (statistics dtype) and residual (x's shape and dtype) may be undefined.
Tensor fused_bn_apply(const Tensor& x, const Tensor& mean, const Tensor& var, double eps, const Tensor& weight,
                      const Tensor& bias, const Tensor& gate, const Tensor& residual, bool relu);

struct FusedBnGrads {
  Tensor dx, dweight, dbias;
};
// Backward of fused_bn_apply without gate/residual, from the forward's OUTPUT y (the ReLU mask; read only
// when relu) and x: one reduce and one elementwise pass. With dx_into (x's shape, dtype, device) dx is
// added to it (and returned as it) instead of being allocated.
FusedBnGrads fused_bn_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& mean,
                               const Tensor& var, double eps, const Tensor& weight, bool relu, bool training,
                               bool need_dx, Tensor* dx_into = nullptr);

// ---- bottleneck tail: y = relu(gate * BN(x) + residual), gate = sigmoid(W2 act(W1 pooled + b1) + b2),
// pooled = mean over H, W of BN(x) (from the statistics pass's sample sums). w1 [R, 1, 1, C] or [R, C],
// w2 [C, 1, 1, R] or [C, R] (1x1 convs, KRSC), b1 [R], b2 [C].
struct TailSaved {
  Tensor pooled, hidden_pre, hidden, gate;  // [N, C], [N, R], [N, R], [N, C], statistics dtype
};
Tensor bottleneck_tail_forward(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& sample_sum,
                               double eps, const Tensor& weight, const Tensor& bias, const Tensor& w1,
                               const Tensor& b1, const Tensor& w2, const Tensor& b2, kernels::Activation act,
                               const Tensor& residual, TailSaved* saved);
struct TailGrads {
  Tensor dx, dweight, dbias, dw1, db1, dw2, db2, dresidual;
};
// One reduce pass (writes dresidual on the way), the [N, C] SE backward, one elementwise pass.
TailGrads bottleneck_tail_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& mean,
                                   const Tensor& var, const Tensor& sample_sum, double eps, const Tensor& weight,
                                   const Tensor& bias, const Tensor& w1, const Tensor& w2, kernels::Activation act,
                                   const TailSaved& saved, bool training);

// ---- BatchNorm + swish (EfficientNet), keeping only x: swish(BN(x)) is formed by the unfused ops
// (layer_ops::batch_norm_apply, then ops::unary Swish), and the backward forms BN(x) again from x and the
// statistics instead of reading a saved copy -- one activation-sized tensor less per BatchNorm + swish for
// one more elementwise pass in the backward. Values are those of the unfused ops, bit for bit.
Tensor bn_swish_forward(const Tensor& x, const Tensor& mean, const Tensor& var, double eps, const Tensor& weight,
                        const Tensor& bias);
struct BnSwishGrads {
  Tensor dx, dweight, dbias;
};
BnSwishGrads bn_swish_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                               const Tensor& weight, const Tensor& bias, bool training, bool need_dx);

// ---- the UNet decoder's upsample + concat (issue 12 part 2 item 5a; kernels/{cpu,cuda}/fused_upsample_kernels.h):
// concat(upsample_nearest2x(x), skip) written in one pass, the backward reading the slices of its gradient.
// Switch: PNEUMO_FUSED_CONCAT=1 (read once); default OFF until a GPU run verifies the CUDA kernels.
bool fused_concat_enabled();
void set_fused_concat_enabled(bool on);
// x [N, H, W, Cx], skip [N, 2H, 2W, Cs] of x's dtype and device -> [N, 2H, 2W, Cx + Cs].
Tensor upsample2x_concat_forward(const Tensor& x, const Tensor& skip);
struct UpsampleConcatGrads {
  Tensor dx, dskip;
};
// dy [N, 2H, 2W, Cx + Cs] -> dx [N, H, W, Cx] (2x2 block sums of the first Cx channels), dskip (the rest).
UpsampleConcatGrads upsample2x_concat_backward(const Tensor& dy, int64_t cx, bool need_dx, bool need_dskip);

}  // namespace pneumo::layer_ops
