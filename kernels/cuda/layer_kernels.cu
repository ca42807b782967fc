// CUDA layer kernels (see layer_kernels.h): BatchNorm, max pool, nearest/bilinear resize, dropout, padding.
// Convention: activations are F32 (float) or BF16 (Bf16 bits), loaded to float and stored with
// round-to-nearest-even; BatchNorm statistics and parameters are float. Every kernel is a grid-stride loop
// with 64-bit indices; one instantiation per storage type, the op variant is a run-time argument.
// Determinism: per-channel reductions write per-row-block partials, then one thread per channel sums them
// in block order; pooling/resizing backward passes gather (each input element sums its own contributions).
#include "kernels/cuda/layer_kernels.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/philox.h"

namespace pneumo::kernels::cuda {
namespace {

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// ---------------------------------------------------------------------------------------------------
// BatchNorm

// Row blocks depend only on the row count, so the summation order (and the result) is fixed for a shape.
int64_t bn_row_blocks(int64_t rows) { return std::min<int64_t>((rows + 255) / 256, 1024); }
constexpr int kChannelTile = 32, kRowLanes = 8;

enum BnTerm { kSumX = 0, kSumSquaredDeviation = 1, kSumDyAndDyDeviation = 2 };

// partial[b * C + c] (and partial2 for kSumDyAndDyDeviation) = sum over rows of block b of the term.
template <typename T>
__global__ void bn_partials_kernel(const T* x, const T* dy, int64_t rows, int64_t channels, int64_t rows_per_block,
                                   const float* mean, int term, float* partial, float* partial2) {
  __shared__ float s1[kRowLanes][kChannelTile];
  __shared__ float s2[kRowLanes][kChannelTile];
  const int64_t c = blockIdx.x * static_cast<int64_t>(kChannelTile) + threadIdx.x;
  const int64_t r0 = blockIdx.y * rows_per_block, r1 = min(rows, r0 + rows_per_block);
  float a1 = 0.f, a2 = 0.f;
  if (c < channels) {
    const float m = term == kSumX ? 0.f : mean[c];
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const int64_t i = r * channels + c;
      if (term == kSumX) {
        a1 += load_f(x, i);
      } else if (term == kSumSquaredDeviation) {
        const float d = load_f(x, i) - m;
        a1 += d * d;
      } else {
        const float g = load_f(dy, i);
        a1 += g;
        a2 += g * (load_f(x, i) - m);
      }
    }
  }
  s1[threadIdx.y][threadIdx.x] = a1;
  s2[threadIdx.y][threadIdx.x] = a2;
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    float t1 = 0.f, t2 = 0.f;
    for (int l = 0; l < kRowLanes; ++l) {
      t1 += s1[l][threadIdx.x];
      t2 += s2[l][threadIdx.x];
    }
    partial[blockIdx.y * channels + c] = t1;
    if (partial2) partial2[blockIdx.y * channels + c] = t2;
  }
}

// out[c] = scale * sum_b partial[b * C + c], summed in double in block order.
__global__ void bn_finalize_kernel(const float* partial, int64_t blocks, int64_t channels, double scale, float* out) {
  GRID_STRIDE(c, channels) {
    double s = 0;
    for (int64_t b = 0; b < blocks; ++b) s += partial[b * channels + c];
    out[c] = static_cast<float>(s * scale);
  }
}

// sum_dy_xhat[c] = partial2 sum * invstd (the deviation sum was taken before scaling).
__global__ void bn_finalize_backward_kernel(const float* partial, const float* partial2, int64_t blocks,
                                            int64_t channels, const float* var, float eps, float* sum_dy,
                                            float* sum_dy_xhat) {
  GRID_STRIDE(c, channels) {
    double s1 = 0, s2 = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      s1 += partial[b * channels + c];
      s2 += partial2[b * channels + c];
    }
    sum_dy[c] = static_cast<float>(s1);
    sum_dy_xhat[c] = static_cast<float>(s2 / sqrt(static_cast<double>(var[c]) + eps));
  }
}

template <typename T>
__global__ void bn_apply_kernel(const T* x, int64_t n, int64_t channels, const float* mean, const float* var, float eps,
                                const float* weight, const float* bias, T* y) {
  GRID_STRIDE(i, n) {
    const int64_t c = i % channels;
    float v = (load_f(x, i) - mean[c]) * (1.0f / sqrtf(var[c] + eps));
    if (weight) v *= weight[c];
    if (bias) v += bias[c];
    store_f(y, i, v);
  }
}

template <typename T>
__global__ void bn_backward_data_kernel(const T* dy, const T* x, int64_t n, int64_t channels, int64_t rows,
                                        const float* mean, const float* var, float eps, const float* weight,
                                        const float* sum_dy, const float* sum_dy_xhat, bool training, T* dx) {
  const float inv_rows = 1.0f / static_cast<float>(rows);
  GRID_STRIDE(i, n) {
    const int64_t c = i % channels;
    const float invstd = 1.0f / sqrtf(var[c] + eps);
    float g = load_f(dy, i);
    if (training) {
      const float xhat = (load_f(x, i) - mean[c]) * invstd;
      g -= (sum_dy[c] + xhat * sum_dy_xhat[c]) * inv_rows;
    }
    store_f(dx, i, (weight ? weight[c] : 1.0f) * invstd * g);
  }
}

__global__ void bn_update_running_kernel(const float* mean, const float* var, float* rm, float* rv, int64_t channels,
                                         float momentum, float unbias) {
  GRID_STRIDE(c, channels) {
    rm[c] = (1.f - momentum) * rm[c] + momentum * mean[c];
    rv[c] = (1.f - momentum) * rv[c] + momentum * var[c] * unbias;
  }
}

template <typename T>
void bn_partials(const T* x, const T* dy, int64_t rows, int64_t channels, const float* mean, int term, float* partial,
                 float* partial2, cudaStream_t stream) {
  const int64_t blocks = bn_row_blocks(rows), rows_per_block = (rows + blocks - 1) / blocks;
  const dim3 grid(static_cast<unsigned>((channels + kChannelTile - 1) / kChannelTile), static_cast<unsigned>(blocks));
  bn_partials_kernel<T><<<grid, dim3(kChannelTile, kRowLanes), 0, stream>>>(x, dy, rows, channels, rows_per_block, mean,
                                                                            term, partial, partial2);
  PNEUMO_LAUNCH_CHECK("bn_partials_kernel");
}

// ---------------------------------------------------------------------------------------------------
// Pooling and resizing

template <typename T>
__global__ void max_pool_forward_kernel(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kernel,
                                        int64_t stride, int64_t pad, int64_t oh, int64_t ow, T* y, int32_t* argmax) {
  GRID_STRIDE(i, n * oh * ow * c) {
    const int64_t ch = i % c, px = (i / c) % ow, py = (i / (c * ow)) % oh, b = i / (c * ow * oh);
    const int64_t y0 = py * stride - pad, x0 = px * stride - pad;
    const int64_t ys = max(y0, int64_t{0}), ye = min(y0 + kernel, h), xs = max(x0, int64_t{0}), xe = min(x0 + kernel, w);
    float best = -INFINITY;
    int32_t arg = static_cast<int32_t>(ys * w + xs);
    for (int64_t iy = ys; iy < ye; ++iy)
      for (int64_t ix = xs; ix < xe; ++ix) {
        const float v = load_f(x, ((b * h + iy) * w + ix) * c + ch);
        if (v > best || isnan(v)) {  // first maximum; a NaN wins (PyTorch)
          best = v;
          arg = static_cast<int32_t>(iy * w + ix);
        }
      }
    store_f(y, i, best);
    argmax[i] = arg;
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(const T* dy, const int32_t* argmax, int64_t n, int64_t h, int64_t w, int64_t c,
                                         int64_t kernel, int64_t stride, int64_t pad, int64_t oh, int64_t ow, T* dx) {
  GRID_STRIDE(i, n * h * w * c) {
    const int64_t ch = i % c, ix = (i / c) % w, iy = (i / (c * w)) % h, b = i / (c * w * h);
    const int64_t ny = iy + pad - kernel + 1, nx = ix + pad - kernel + 1;
    const int64_t py0 = ny <= 0 ? 0 : (ny + stride - 1) / stride, py1 = min(oh - 1, (iy + pad) / stride);
    const int64_t px0 = nx <= 0 ? 0 : (nx + stride - 1) / stride, px1 = min(ow - 1, (ix + pad) / stride);
    const int32_t self = static_cast<int32_t>(iy * w + ix);
    float acc = 0.f;
    for (int64_t py = py0; py <= py1; ++py)
      for (int64_t px = px0; px <= px1; ++px) {
        const int64_t o = ((b * oh + py) * ow + px) * c + ch;
        if (argmax[o] == self) acc += load_f(dy, o);
      }
    store_f(dx, i, acc);
  }
}

template <typename T>
__global__ void upsample_nearest2x_forward_kernel(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, T* y) {
  GRID_STRIDE(i, n * 4 * h * w * c) {
    const int64_t ch = i % c, ox = (i / c) % (2 * w), oy = (i / (c * 2 * w)) % (2 * h), b = i / (c * 4 * w * h);
    y[i] = x[((b * h + oy / 2) * w + ox / 2) * c + ch];
  }
}

template <typename T>
__global__ void upsample_nearest2x_backward_kernel(const T* dy, int64_t n, int64_t h, int64_t w, int64_t c, T* dx) {
  GRID_STRIDE(i, n * h * w * c) {
    const int64_t ch = i % c, ix = (i / c) % w, iy = (i / (c * w)) % h, b = i / (c * w * h);
    const int64_t base = ((b * 2 * h + 2 * iy) * 2 * w + 2 * ix) * c + ch, row = 2 * w * c;
    store_f(dx, i, (load_f(dy, base) + load_f(dy, base + c)) + (load_f(dy, base + row) + load_f(dy, base + row + c)));
  }
}

template <typename T>
__global__ void resize_bilinear_forward_kernel(const T* x, int64_t n, int64_t h, int64_t w, int64_t c,
                                               DeviceLinearAxis ay, DeviceLinearAxis ax, int64_t oh, int64_t ow, T* y) {
  GRID_STRIDE(i, n * oh * ow * c) {
    const int64_t ch = i % c, ox = (i / c) % ow, oy = (i / (c * ow)) % oh, b = i / (c * ow * oh);
    const int64_t r0 = (b * h + ay.i0[oy]) * w, r1 = (b * h + ay.i1[oy]) * w;
    const int64_t c0 = ax.i0[ox], c1 = ax.i1[ox];
    const float wx0 = ax.l0[ox], wx1 = ax.l1[ox];
    const float top = wx0 * load_f(x, (r0 + c0) * c + ch) + wx1 * load_f(x, (r0 + c1) * c + ch);
    const float bottom = wx0 * load_f(x, (r1 + c0) * c + ch) + wx1 * load_f(x, (r1 + c1) * c + ch);
    store_f(y, i, ay.l0[oy] * top + ay.l1[oy] * bottom);
  }
}

template <typename T>
__global__ void resize_bilinear_backward_kernel(const T* dy, int64_t n, int64_t h, int64_t w, int64_t c,
                                                DeviceLinearAxis ay, DeviceLinearAxis ax, int64_t oh, int64_t ow,
                                                T* dx) {
  GRID_STRIDE(i, n * h * w * c) {
    const int64_t ch = i % c, ix = (i / c) % w, iy = (i / (c * w)) % h, b = i / (c * w * h);
    float acc = 0.f;
    for (int32_t jy = ay.start[iy]; jy < ay.start[iy + 1]; ++jy) {
      const int64_t row = (b * oh + ay.out_index[jy]) * ow;
      const float wy = ay.weight[jy];
      for (int32_t jx = ax.start[ix]; jx < ax.start[ix + 1]; ++jx)
        acc += wy * ax.weight[jx] * load_f(dy, (row + ax.out_index[jx]) * c + ch);
    }
    store_f(dx, i, acc);
  }
}

// ---------------------------------------------------------------------------------------------------
// Dropout and padding

template <typename T>
__global__ void dropout_kernel(const T* x, T* y, int64_t n, int64_t row_size, uint64_t seed, uint64_t offset, double p,
                               float scale, const int64_t* state) {
  // row_size == 1: elementwise; otherwise one draw per row (drop-connect). The comparison is in double as
  // on the CPU, so both backends keep exactly the same elements. `state` (a CUDA Graph's draw): read here,
  // at run time, so each replay draws with the values written before it.
  if (state) {
    seed = static_cast<uint64_t>(state[0]);
    offset += static_cast<uint64_t>(state[1]);
  }
  GRID_STRIDE(i, n) {
    const uint64_t draw = static_cast<uint64_t>(row_size == 1 ? i : i / row_size);
    const bool keep = static_cast<double>(philox_uniform_at(seed, offset, draw)) > p;
    store_f(y, i, keep ? load_f(x, i) * scale : 0.f);
  }
}

template <typename T>
__global__ void pad_kernel(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t left,
                           int64_t ph, int64_t pw, T* y) {
  GRID_STRIDE(i, n * ph * pw * c) {
    const int64_t ch = i % c, ox = (i / c) % pw, oy = (i / (c * pw)) % ph, b = i / (c * pw * ph);
    const int64_t iy = oy - top, ix = ox - left;
    y[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[((b * h + iy) * w + ix) * c + ch] : T{};  // +0 in both storage types
  }
}

template <typename T>
__global__ void crop_kernel(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t left,
                            int64_t oh, int64_t ow, T* y) {
  GRID_STRIDE(i, n * oh * ow * c) {
    const int64_t ch = i % c, ox = (i / c) % ow, oy = (i / (c * ow)) % oh, b = i / (c * ow * oh);
    y[i] = x[((b * h + oy + top) * w + ox + left) * c + ch];
  }
}

}  // namespace

// ---- BatchNorm entry points ----

int64_t batch_norm_scratch_floats(int64_t rows, int64_t channels) { return 2 * bn_row_blocks(rows) * channels; }

void batch_norm_statistics(DType dt, const void* x, int64_t rows, int64_t channels, float* mean, float* var,
                           float* scratch, cudaStream_t stream) {
  const int64_t blocks = bn_row_blocks(rows);
  dispatch_f32_bf16(dt, "batch_norm_statistics", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x);
    bn_partials<T>(xp, nullptr, rows, channels, nullptr, kSumX, scratch, nullptr, stream);
    bn_finalize_kernel<<<blocks_for(channels, kMaxGridBlocks), kThreads, 0, stream>>>(scratch, blocks, channels, 1.0 / rows, mean);
    PNEUMO_LAUNCH_CHECK("bn_finalize_kernel");
    bn_partials<T>(xp, nullptr, rows, channels, mean, kSumSquaredDeviation, scratch, nullptr, stream);
    bn_finalize_kernel<<<blocks_for(channels, kMaxGridBlocks), kThreads, 0, stream>>>(scratch, blocks, channels, 1.0 / rows, var);
    PNEUMO_LAUNCH_CHECK("bn_finalize_kernel");
  });
}

void batch_norm_apply(DType dt, const void* x, int64_t rows, int64_t channels, const float* mean, const float* var,
                      double eps, const float* weight, const float* bias, void* y, cudaStream_t stream) {
  const int64_t n = rows * channels;
  dispatch_f32_bf16(dt, "batch_norm_apply", [&](auto tag) {
    using T = decltype(tag);
    bn_apply_kernel<T><<<blocks_for(n, kMaxGridBlocks), kThreads, 0, stream>>>(static_cast<const T*>(x), n, channels, mean, var,
                                                               static_cast<float>(eps), weight, bias, static_cast<T*>(y));
    PNEUMO_LAUNCH_CHECK("bn_apply_kernel");
  });
}

void batch_norm_backward_reduce(DType dt, const void* dy, const void* x, int64_t rows, int64_t channels,
                                const float* mean, const float* var, double eps, float* sum_dy, float* sum_dy_xhat,
                                float* scratch, cudaStream_t stream) {
  const int64_t blocks = bn_row_blocks(rows);
  dispatch_f32_bf16(dt, "batch_norm_backward_reduce", [&](auto tag) {
    using T = decltype(tag);
    bn_partials<T>(static_cast<const T*>(x), static_cast<const T*>(dy), rows, channels, mean, kSumDyAndDyDeviation,
                   scratch, scratch + blocks * channels, stream);
    bn_finalize_backward_kernel<<<blocks_for(channels, kMaxGridBlocks), kThreads, 0, stream>>>(
        scratch, scratch + blocks * channels, blocks, channels, var, static_cast<float>(eps), sum_dy, sum_dy_xhat);
    PNEUMO_LAUNCH_CHECK("bn_finalize_backward_kernel");
  });
}

void batch_norm_backward_data(DType dt, const void* dy, const void* x, int64_t rows, int64_t channels,
                              const float* mean, const float* var, double eps, const float* weight,
                              const float* sum_dy, const float* sum_dy_xhat, bool training, void* dx,
                              cudaStream_t stream) {
  const int64_t n = rows * channels;
  dispatch_f32_bf16(dt, "batch_norm_backward_data", [&](auto tag) {
    using T = decltype(tag);
    bn_backward_data_kernel<T><<<blocks_for(n, kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(dy), static_cast<const T*>(x), n, channels, rows, mean, var, static_cast<float>(eps),
        weight, sum_dy, sum_dy_xhat, training, static_cast<T*>(dx));
    PNEUMO_LAUNCH_CHECK("bn_backward_data_kernel");
  });
}

void batch_norm_update_running(const float* mean, const float* var, float* running_mean, float* running_var,
                               int64_t channels, double momentum, int64_t count, cudaStream_t stream) {
  PNEUMO_CHECK(count > 1, "batch_norm: the unbiased variance needs more than one value per channel, got ", count);
  bn_update_running_kernel<<<blocks_for(channels, kMaxGridBlocks), kThreads, 0, stream>>>(
      mean, var, running_mean, running_var, channels, static_cast<float>(momentum),
      static_cast<float>(static_cast<double>(count) / static_cast<double>(count - 1)));
  PNEUMO_LAUNCH_CHECK("bn_update_running_kernel");
}

// ---- pooling / resizing ----

void max_pool2d_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kernel,
                        int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* y, int32_t* argmax,
                        cudaStream_t stream) {
  PNEUMO_CHECK(h * w < INT32_MAX, "max_pool2d: plane too large for int32 indices");
  dispatch_f32_bf16(dt, "max_pool2d_forward", [&](auto tag) {
    using T = decltype(tag);
    max_pool_forward_kernel<T><<<blocks_for(n * oh * ow * c, kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(x), n, h, w, c, kernel, stride, pad, oh, ow, static_cast<T*>(y), argmax);
    PNEUMO_LAUNCH_CHECK("max_pool_forward_kernel");
  });
}

void max_pool2d_backward(DType dt, const void* dy, const int32_t* argmax, int64_t n, int64_t h, int64_t w, int64_t c,
                         int64_t kernel, int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* dx,
                         cudaStream_t stream) {
  dispatch_f32_bf16(dt, "max_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    max_pool_backward_kernel<T><<<blocks_for(n * h * w * c, kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(dy), argmax, n, h, w, c, kernel, stride, pad, oh, ow, static_cast<T*>(dx));
    PNEUMO_LAUNCH_CHECK("max_pool_backward_kernel");
  });
}

void upsample_nearest2x_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, void* y,
                                cudaStream_t stream) {
  dispatch_f32_bf16(dt, "upsample_nearest2x_forward", [&](auto tag) {
    using T = decltype(tag);
    upsample_nearest2x_forward_kernel<T><<<blocks_for(n * 4 * h * w * c, kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(x), n, h, w, c, static_cast<T*>(y));
    PNEUMO_LAUNCH_CHECK("upsample_nearest2x_forward_kernel");
  });
}

void upsample_nearest2x_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t c, void* dx,
                                 cudaStream_t stream) {
  dispatch_f32_bf16(dt, "upsample_nearest2x_backward", [&](auto tag) {
    using T = decltype(tag);
    upsample_nearest2x_backward_kernel<T><<<blocks_for(n * h * w * c, kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(dy), n, h, w, c, static_cast<T*>(dx));
    PNEUMO_LAUNCH_CHECK("upsample_nearest2x_backward_kernel");
  });
}

void resize_bilinear_forward(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c,
                             const DeviceLinearAxis& ay, const DeviceLinearAxis& ax, int64_t oh, int64_t ow, void* y,
                             cudaStream_t stream) {
  dispatch_f32_bf16(dt, "resize_bilinear_forward", [&](auto tag) {
    using T = decltype(tag);
    resize_bilinear_forward_kernel<T><<<blocks_for(n * oh * ow * c, kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(x), n, h, w, c, ay, ax, oh, ow, static_cast<T*>(y));
    PNEUMO_LAUNCH_CHECK("resize_bilinear_forward_kernel");
  });
}

void resize_bilinear_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t c,
                              const DeviceLinearAxis& ay, const DeviceLinearAxis& ax, int64_t oh, int64_t ow, void* dx,
                              cudaStream_t stream) {
  dispatch_f32_bf16(dt, "resize_bilinear_backward", [&](auto tag) {
    using T = decltype(tag);
    resize_bilinear_backward_kernel<T><<<blocks_for(n * h * w * c, kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(dy), n, h, w, c, ay, ax, oh, ow, static_cast<T*>(dx));
    PNEUMO_LAUNCH_CHECK("resize_bilinear_backward_kernel");
  });
}

// ---- dropout / padding ----

void dropout(DType dt, const void* x, void* y, int64_t count, uint64_t seed, uint64_t offset, double p,
             const int64_t* philox_state, cudaStream_t stream) {
  dispatch_f32_bf16(dt, "dropout", [&](auto tag) {
    using T = decltype(tag);
    dropout_kernel<T><<<blocks_for(count, kMaxGridBlocks), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), count, 1,
                                                                  seed, offset, p, static_cast<float>(1.0 / (1.0 - p)),
                                                                  philox_state);
    PNEUMO_LAUNCH_CHECK("dropout_kernel");
  });
}

void drop_connect(DType dt, const void* x, void* y, int64_t rows, int64_t row_size, uint64_t seed, uint64_t offset,
                  double p, const int64_t* philox_state, cudaStream_t stream) {
  const int64_t n = rows * row_size;
  dispatch_f32_bf16(dt, "drop_connect", [&](auto tag) {
    using T = decltype(tag);
    // row_size 1 would read as elementwise, which is the same thing for one element per row.
    dropout_kernel<T><<<blocks_for(n, kMaxGridBlocks), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n, row_size,
                                                              seed, offset, p, static_cast<float>(1.0 / (1.0 - p)),
                                                              philox_state);
    PNEUMO_LAUNCH_CHECK("dropout_kernel (drop_connect)");
  });
}

void pad_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
            int64_t left, int64_t right, void* y, cudaStream_t stream) {
  const int64_t ph = h + top + bottom, pw = w + left + right;
  dispatch_f32_bf16(dt, "pad_hw", [&](auto tag) {
    using T = decltype(tag);
    pad_kernel<T><<<blocks_for(n * ph * pw * c, kMaxGridBlocks), kThreads, 0, stream>>>(static_cast<const T*>(x), n, h, w, c, top, left,
                                                                        ph, pw, static_cast<T*>(y));
    PNEUMO_LAUNCH_CHECK("pad_kernel");
  });
}

void crop_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
             int64_t left, int64_t right, void* y, cudaStream_t stream) {
  const int64_t oh = h - top - bottom, ow = w - left - right;
  dispatch_f32_bf16(dt, "crop_hw", [&](auto tag) {
    using T = decltype(tag);
    crop_kernel<T><<<blocks_for(n * oh * ow * c, kMaxGridBlocks), kThreads, 0, stream>>>(static_cast<const T*>(x), n, h, w, c, top, left,
                                                                         oh, ow, static_cast<T*>(y));
    PNEUMO_LAUNCH_CHECK("crop_kernel");
  });
}

}  // namespace pneumo::kernels::cuda
