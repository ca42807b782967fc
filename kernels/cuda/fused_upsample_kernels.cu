// Fused nearest x2 upsampling + channel concat (see fused_upsample_kernels.h). Grid-stride, one output
// element per step; the backward sums its 2x2 block in the CUDA upsample backward's order ((a + b) + (c + d)).
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/fused_upsample_kernels.h"

namespace pneumo::kernels::cuda {
namespace {

template <typename T>
__global__ void upsample2x_concat_forward_kernel(const T* __restrict__ x, const T* __restrict__ skip, int64_t n,
                                                 int64_t h, int64_t w, int64_t cx, int64_t cs, T* __restrict__ y) {
  const int64_t ct = cx + cs, total = n * 4 * h * w * ct;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = i % ct, p = i / ct;  // p: output pixel (b, oy, ox)
    if (k < cx) {
      const int64_t ox = p % (2 * w), oy = (p / (2 * w)) % (2 * h), b = p / (4 * h * w);
      y[i] = x[((b * h + oy / 2) * w + ox / 2) * cx + k];
    } else {
      y[i] = skip[p * cs + (k - cx)];
    }
  }
}

template <typename T>
__global__ void upsample2x_concat_dx_kernel(const T* __restrict__ dy, int64_t n, int64_t h, int64_t w, int64_t cx,
                                            int64_t cs, T* __restrict__ dx) {
  const int64_t ct = cx + cs, total = n * h * w * cx;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = i % cx, ix = (i / cx) % w, iy = (i / (cx * w)) % h, b = i / (cx * w * h);
    const int64_t base = ((b * 2 * h + 2 * iy) * 2 * w + 2 * ix) * ct + k, row = 2 * w * ct;
    store_f(dx, i, (load_f(dy, base) + load_f(dy, base + ct)) + (load_f(dy, base + row) + load_f(dy, base + row + ct)));
  }
}

template <typename T>
__global__ void upsample2x_concat_dskip_kernel(const T* __restrict__ dy, int64_t pixels, int64_t cx, int64_t cs,
                                               T* __restrict__ dskip) {
  const int64_t total = pixels * cs;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dskip[i] = dy[(i / cs) * (cx + cs) + cx + i % cs];
}

}  // namespace

void upsample2x_concat_forward(DType dt, const void* x, const void* skip, int64_t n, int64_t h, int64_t w, int64_t cx,
                               int64_t cs, void* y, cudaStream_t stream) {
  dispatch_f32_bf16(dt, "upsample2x_concat_forward", [&](auto tag) {
    using T = decltype(tag);
    upsample2x_concat_forward_kernel<T><<<blocks_for(n * 4 * h * w * (cx + cs), kMaxGridBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(skip), n, h, w, cx, cs, static_cast<T*>(y));
    PNEUMO_LAUNCH_CHECK("upsample2x_concat_forward_kernel");
  });
}

void upsample2x_concat_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t cx, int64_t cs,
                                void* dx, void* dskip, cudaStream_t stream) {
  dispatch_f32_bf16(dt, "upsample2x_concat_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* d = static_cast<const T*>(dy);
    if (dx) {
      upsample2x_concat_dx_kernel<T><<<blocks_for(n * h * w * cx, kMaxGridBlocks), kThreads, 0, stream>>>(
          d, n, h, w, cx, cs, static_cast<T*>(dx));
      PNEUMO_LAUNCH_CHECK("upsample2x_concat_dx_kernel");
    }
    if (dskip) {
      upsample2x_concat_dskip_kernel<T><<<blocks_for(n * 4 * h * w * cs, kMaxGridBlocks), kThreads, 0, stream>>>(
          d, n * 4 * h * w, cx, cs, static_cast<T*>(dskip));
      PNEUMO_LAUNCH_CHECK("upsample2x_concat_dskip_kernel");
    }
  });
}

}  // namespace pneumo::kernels::cuda
