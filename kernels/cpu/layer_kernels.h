// CPU reference kernels for the nn layers (convolution, BatchNorm, pooling, resizing, dropout, padding): raw pointers
// and sizes, dtype F32 or F64 chosen at run time. Layout NHWC, conv weights KRSC. Every kernel WRITES its
// output (no accumulation into it); reductions run in a fixed order (deterministic for any thread count).
// BatchNorm statistics and parameters have the activation's dtype here (F32 or F64).
#pragma once
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/layer_shapes.h"

namespace pneumo::kernels::cpu {

// Convolution: im2col + the blocked GEMM per group and sample, or a direct loop when each group has one
// input channel (depthwise). Asymmetric padding is read from pad_top/pad_left and the output size.
void conv2d_forward(DType dt, const ConvShape& cs, const void* x, const void* w, void* y);
void conv2d_backward_data(DType dt, const ConvShape& cs, const void* dy, const void* w, void* dx);
void conv2d_backward_weight(DType dt, const ConvShape& cs, const void* dy, const void* x, void* dw);

// BatchNorm over `rows` = N*H*W rows of `channels` values. var is the biased (population) variance.
void batch_norm_statistics(DType dt, const void* x, int64_t rows, int64_t channels, void* mean, void* var);
// y = (x - mean) / sqrt(var + eps) * weight + bias; weight/bias may be null (1 and 0).
void batch_norm_apply(DType dt, const void* x, int64_t rows, int64_t channels, const void* mean, const void* var,
                      double eps, const void* weight, const void* bias, void* y);
// sum_dy[c] = sum dy; sum_dy_xhat[c] = sum dy * (x - mean) / sqrt(var + eps).
void batch_norm_backward_reduce(DType dt, const void* dy, const void* x, int64_t rows, int64_t channels,
                                const void* mean, const void* var, double eps, void* sum_dy, void* sum_dy_xhat);
// training: dx = w * invstd * (dy - sum_dy / rows - xhat * sum_dy_xhat / rows); eval: dx = w * invstd * dy.
void batch_norm_backward_data(DType dt, const void* dy, const void* x, int64_t rows, int64_t channels,
                              const void* mean, const void* var, double eps, const void* weight,
                              const void* sum_dy, const void* sum_dy_xhat, bool training, void* dx);
// running = (1 - momentum) * running + momentum * batch, the variance unbiased by count / (count - 1).
void batch_norm_update_running(DType dt, const void* mean, const void* var, void* running_mean, void* running_var,
                               int64_t channels, double momentum, int64_t count);

// Max pool with -inf padding; argmax[i] = ih * w + iw of the first maximum of output element i (a NaN counts
// as a maximum, as in PyTorch). Every window must overlap the input (pad <= kernel / 2, PyTorch's rule).
// Backward gathers: each input element sums the dy of the windows whose argmax it is.
void max_pool2d_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kernel,
                        int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* y, int32_t* argmax);
void max_pool2d_backward(DType dt, const void* dy, const int32_t* argmax, int64_t n, int64_t h, int64_t w, int64_t c,
                         int64_t kernel, int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* dx);

// Nearest x2: y[n, oh, ow] = x[n, oh / 2, ow / 2]; backward sums each 2x2 block.
void upsample_nearest2x_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, void* y);
void upsample_nearest2x_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t c, void* dx);

// Bilinear resize with precomputed axis tables (make_linear_axis); backward gathers through the transposes.
void resize_bilinear_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, const LinearAxis& ay,
                             const LinearAxis& ax, int64_t oh, int64_t ow, void* y);
void resize_bilinear_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t c,
                              const LinearAxis& ay, const LinearAxis& ax, int64_t oh, int64_t ow, void* dx);

// Dropout: y[i] = x[i] / (1 - p) if philox_uniform_at(seed, offset, i) > p else 0. The same call on dy gives
// the backward (the mask is recomputed, never stored). philox_state (nullable; two I64 in the kernel's
// memory, the draw's state inside a CUDA Graph: tensor/graph_random.h): seed = state[0] and
// offset = state[1] + offset instead.
void dropout(DType dt, const void* x, void* y, int64_t count, uint64_t seed, uint64_t offset, double p,
             const int64_t* philox_state);
// Drop-connect: row r (a whole sample of row_size elements) kept, scaled by 1/(1 - p), iff
// philox_uniform_at(seed, offset, r) > p; zeroed otherwise. Backward: the same call on dy.
void drop_connect(DType dt, const void* x, void* y, int64_t rows, int64_t row_size, uint64_t seed, uint64_t offset,
                  double p, const int64_t* philox_state);

// y [n, h+top+bottom, w+left+right, c] = x zero-padded; crop is its adjoint (y [n, h-top-bottom, ...]).
// Any dtype (rows are copied as bytes).
void pad_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
            int64_t left, int64_t right, void* y);
void crop_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
             int64_t left, int64_t right, void* y);

}  // namespace pneumo::kernels::cpu
