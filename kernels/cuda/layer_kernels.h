// CUDA kernels for the nn layers (BatchNorm, pooling, resizing, dropout, padding), the fast twins of
// kernels/cpu/layer_kernels.h: raw pointers + sizes + stream, activation dtype F32 or BF16 chosen at run time
// (float math inside). BatchNorm statistics, weights and running buffers are always float32. Reductions are
// deterministic: per-block partial sums reduced in a fixed order, no float atomics; backward passes of
// pooling/resizing gather instead of scattering.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/layer_shapes.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

// `scratch` must hold batch_norm_scratch_floats(rows, channels) floats (device memory).
int64_t batch_norm_scratch_floats(int64_t rows, int64_t channels);
void batch_norm_statistics(DType dt, const void* x, int64_t rows, int64_t channels, float* mean, float* var,
                           float* scratch, cudaStream_t stream);
void batch_norm_apply(DType dt, const void* x, int64_t rows, int64_t channels, const float* mean, const float* var,
                      double eps, const float* weight, const float* bias, void* y, cudaStream_t stream);
void batch_norm_backward_reduce(DType dt, const void* dy, const void* x, int64_t rows, int64_t channels,
                                const float* mean, const float* var, double eps, float* sum_dy, float* sum_dy_xhat,
                                float* scratch, cudaStream_t stream);
void batch_norm_backward_data(DType dt, const void* dy, const void* x, int64_t rows, int64_t channels,
                              const float* mean, const float* var, double eps, const float* weight,
                              const float* sum_dy, const float* sum_dy_xhat, bool training, void* dx,
                              cudaStream_t stream);
void batch_norm_update_running(const float* mean, const float* var, float* running_mean, float* running_var,
                               int64_t channels, double momentum, int64_t count, cudaStream_t stream);

void max_pool2d_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kernel,
                        int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* y, int32_t* argmax,
                        cudaStream_t stream);
void max_pool2d_backward(DType dt, const void* dy, const int32_t* argmax, int64_t n, int64_t h, int64_t w, int64_t c,
                         int64_t kernel, int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* dx,
                         cudaStream_t stream);

void upsample_nearest2x_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, void* y,
                                cudaStream_t stream);
void upsample_nearest2x_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t c, void* dx,
                                 cudaStream_t stream);

// Axis tables (see make_linear_axis) already on the device, as floats: per output i0, i1 (int32), l0, l1;
// per input the transpose start (int32, in+1), out_index (int32), weight (float).
struct DeviceLinearAxis {
  const int32_t *i0, *i1;
  const float *l0, *l1;
  const int32_t *start, *out_index;
  const float* weight;
};
void resize_bilinear_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c,
                             const DeviceLinearAxis& ay, const DeviceLinearAxis& ax, int64_t oh, int64_t ow, void* y,
                             cudaStream_t stream);
void resize_bilinear_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t c,
                              const DeviceLinearAxis& ay, const DeviceLinearAxis& ax, int64_t oh, int64_t ow, void* dx,
                              cudaStream_t stream);

// philox_state: nullable device pointer to {seed, offset base} (a draw inside a CUDA Graph, read at replay).
void dropout(DType dt, const void* x, void* y, int64_t count, uint64_t seed, uint64_t offset, double p,
             const int64_t* philox_state, cudaStream_t stream);
void drop_connect(DType dt, const void* x, void* y, int64_t rows, int64_t row_size, uint64_t seed, uint64_t offset,
                  double p, const int64_t* philox_state, cudaStream_t stream);

// y [n, h+top+bottom, w+left+right, c] = x zero-padded; crop is its adjoint (y [n, h-top-bottom, ...]).
void pad_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
            int64_t left, int64_t right, void* y, cudaStream_t stream);
void crop_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
             int64_t left, int64_t right, void* y, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
