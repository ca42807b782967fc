// Tensor-level layer ops without autograd (convolution, BatchNorm, pooling, resizing, dropout, padding, the
// fused squeeze-excite): validate
// shapes/dtypes/devices in the entry point (pneumo::Error naming the op and shapes), then dispatch to
// kernels/cpu (F32, F64) or kernels/cuda (F32, BF16; cuDNN for convolution).
// Conventions: NHWC activations, KRSC conv weights [k, r, s, c/groups]; BatchNorm statistics, weights and
// running buffers are F32 (F64 when the activations are F64) whatever the activation dtype.
#pragma once
#include <cstdint>

#include "kernels/layer_shapes.h"
#include "kernels/op_codes.h"
#include "tensor/tensor.h"

namespace pneumo::layer_ops {

// Padding may be asymmetric (TF "same"); PyTorch's symmetric padding p is top = bottom = left = right = p.
struct Conv2dGeometry {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// Validates x [N,H,W,C] against weight [K,R,S,C/groups] and the geometry; returns the full kernel shape.
kernels::ConvShape conv2d_shape(const Shape& x, const Shape& weight, const Conv2dGeometry& geometry);
Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Conv2dGeometry& geometry);
// With dx_into (x_shape, dy's dtype and device): the data gradient is added to it, and it is returned. With
// kernels::dgrad_accumulate() on and symmetric padding, the sum is formed in the convolution's own pass
// (cuDNN beta = 1; the CPU's bf16 rounds the float32 sum once, as cuDNN does); otherwise the gradient is made
// and then added (in bf16 rounded before the add). float32 values are the same either way.
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& weight, const Shape& x_shape, const Conv2dGeometry& geometry,
                            Tensor* dx_into = nullptr);
Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& weight_shape,
                              const Conv2dGeometry& geometry);

// Per-channel batch mean and biased variance over N, H, W.
struct MomentPair {
  Tensor mean, var;
};
MomentPair batch_norm_statistics(const Tensor& x);
// (x - mean) / sqrt(var + eps) * weight + bias; weight/bias may be undefined.
Tensor batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& var, double eps, const Tensor& weight,
                        const Tensor& bias);
struct BatchNormGrads {
  Tensor dx, dweight, dbias;
};
// `training`: mean/var are the batch statistics (dx includes their dependence on x); otherwise the running ones.
BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                                   const Tensor& weight, bool training, bool need_dx);
// In place: running = (1 - momentum) * running + momentum * batch (variance unbiased by count/(count-1)).
void batch_norm_update_running(const Tensor& mean, const Tensor& var, Tensor& running_mean, Tensor& running_var,
                               double momentum, int64_t count);

struct PoolResult {
  Tensor y, argmax;  // argmax: I32, index ih*W+iw within the sample's plane
};
Shape max_pool2d_shape(const Shape& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode);
PoolResult max_pool2d_forward(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Shape& x_shape, int64_t kernel, int64_t stride,
                           int64_t padding);

Tensor upsample_nearest2x_forward(const Tensor& x);
Tensor upsample_nearest2x_backward(const Tensor& dy);
Tensor resize_bilinear_forward(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners);
Tensor resize_bilinear_backward(const Tensor& dy, const Shape& x_shape, bool align_corners);

// Masks from Philox (seed, offset): recomputed identically by the backward (call again on dy). With
// philox_state (I64 {seed, offset base} on x's device: a draw inside a CUDA Graph, tensor/graph_random.h)
// the kernel draws with seed = state[0] and offset = state[1] + offset, read when it runs.
Tensor dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& philox_state = Tensor());
Tensor drop_connect(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& philox_state = Tensor());

// Zero padding / cropping of H and W (NHWC); used for asymmetric conv padding on CUDA.
Tensor pad_hw(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);
Tensor crop_hw(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);

// The fused squeeze-excite block (kernels/{cpu,cuda}/squeeze_excite_kernels.h), x NHWC [N, H, W, C]:
// y = x * sigmoid(W2 act(W1 mean_hw(x) + b1) + b2). w1 [R, C] or [R,1,1,C]; w2 [C, R] or [C,1,1,R]; b1 [R];
// b2 [C]; all of x's dtype and device (F32/F64 on the CPU, F32/BF16 on CUDA). Backward recomputes the gate.
Tensor squeeze_excite_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                              kernels::Activation act);
struct SqueezeExciteGrads {
  Tensor dx, dw1, db1, dw2, db2;
};
SqueezeExciteGrads squeeze_excite_backward(const Tensor& x, const Tensor& dy, const Tensor& w1, const Tensor& b1,
                                           const Tensor& w2, const Tensor& b2, kernels::Activation act);

}  // namespace pneumo::layer_ops
