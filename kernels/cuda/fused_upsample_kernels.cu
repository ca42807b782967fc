// Fused nearest x2 upsampling + channel concat (see fused_upsample_kernels.h). Grid-stride over units of V
// elements: V = 16 bytes of T (8 bf16 / 4 float) when both channel counts are multiples of it and the
// pointers are 16-byte aligned, so a unit never straddles the x / skip boundary; V = 1 otherwise. The
// backward sums its 2x2 block in the CUDA upsample backward's order ((a + b) + (c + d)), in float32.
#include <initializer_list>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/fused_upsample_kernels.h"

namespace pneumo::kernels::cuda {
namespace {

template <typename T, int V>
__device__ __forceinline__ void copy_unit(T* dst, const T* src) {
  if constexpr (V == 1)
    *dst = *src;
  else
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
}

template <typename T, int V>
__global__ void upsample2x_concat_forward_kernel(const T* __restrict__ x, const T* __restrict__ skip, int64_t n,
                                                 int64_t h, int64_t w, int64_t cx, int64_t cs, T* __restrict__ y) {
  const int64_t ct = cx + cs, units = n * 4 * h * w * ct / V;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = u * V, k = i % ct, p = i / ct;  // p: output pixel (b, oy, ox)
    if (k < cx) {
      const int64_t ox = p % (2 * w), oy = (p / (2 * w)) % (2 * h), b = p / (4 * h * w);
      copy_unit<T, V>(y + i, x + ((b * h + oy / 2) * w + ox / 2) * cx + k);
    } else {
      copy_unit<T, V>(y + i, skip + p * cs + (k - cx));
    }
  }
}

template <typename T, int V>
__global__ void upsample2x_concat_dx_kernel(const T* __restrict__ dy, int64_t n, int64_t h, int64_t w, int64_t cx,
                                            int64_t cs, T* __restrict__ dx) {
  const int64_t ct = cx + cs, units = n * h * w * cx / V;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = u * V, k = i % cx, ix = (i / cx) % w, iy = (i / (cx * w)) % h, b = i / (cx * w * h);
    const int64_t base = ((b * 2 * h + 2 * iy) * 2 * w + 2 * ix) * ct + k, row = 2 * w * ct;
    if constexpr (V == 1) {
      store_f(dx, i, (load_f(dy, base) + load_f(dy, base + ct)) + (load_f(dy, base + row) + load_f(dy, base + row + ct)));
    } else {
      float a[V], b2[V], c2[V], d[V];
      load_vec(dy, base, a);
      load_vec(dy, base + ct, b2);
      load_vec(dy, base + row, c2);
      load_vec(dy, base + row + ct, d);
#pragma unroll
      for (int j = 0; j < V; ++j) a[j] = (a[j] + b2[j]) + (c2[j] + d[j]);
      store_vec(dx, i, a);
    }
  }
}

template <typename T, int V>
__global__ void upsample2x_concat_dskip_kernel(const T* __restrict__ dy, int64_t pixels, int64_t cx, int64_t cs,
                                               T* __restrict__ dskip) {
  const int64_t units = pixels * cs / V;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = u * V;
    copy_unit<T, V>(dskip + i, dy + (i / cs) * (cx + cs) + cx + i % cs);
  }
}

template <typename T>
bool vec_ok(int64_t cx, int64_t cs, std::initializer_list<const void*> ptrs) {
  constexpr int V = kVecWidth<T>;
  if (cx % V != 0 || cs % V != 0) return false;
  for (const void* p : ptrs)
    if (p && reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

}  // namespace

void upsample2x_concat_forward(DType dt, const void* x, const void* skip, int64_t n, int64_t h, int64_t w, int64_t cx,
                               int64_t cs, void* y, cudaStream_t stream) {
  const int64_t total = n * 4 * h * w * (cx + cs);
  dispatch_f32_bf16(dt, "upsample2x_concat_forward", [&](auto tag) {
    using T = decltype(tag);
    const T *xp = static_cast<const T*>(x), *sp = static_cast<const T*>(skip);
    T* yp = static_cast<T*>(y);
    if (vec_ok<T>(cx, cs, {x, skip, y})) {
      constexpr int V = kVecWidth<T>;
      upsample2x_concat_forward_kernel<T, V><<<blocks_for(total / V, kMaxGridBlocks), kThreads, 0, stream>>>(
          xp, sp, n, h, w, cx, cs, yp);
    } else {
      upsample2x_concat_forward_kernel<T, 1><<<blocks_for(total, kMaxGridBlocks), kThreads, 0, stream>>>(
          xp, sp, n, h, w, cx, cs, yp);
    }
    PNEUMO_LAUNCH_CHECK("upsample2x_concat_forward_kernel");
  });
}

void upsample2x_concat_backward(DType dt, const void* dy, int64_t n, int64_t h, int64_t w, int64_t cx, int64_t cs,
                                void* dx, void* dskip, cudaStream_t stream) {
  dispatch_f32_bf16(dt, "upsample2x_concat_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* d = static_cast<const T*>(dy);
    const bool vec = vec_ok<T>(cx, cs, {dy, dx, dskip});
    constexpr int V = kVecWidth<T>;
    if (dx) {
      const int64_t total = n * h * w * cx;
      if (vec)
        upsample2x_concat_dx_kernel<T, V><<<blocks_for(total / V, kMaxGridBlocks), kThreads, 0, stream>>>(
            d, n, h, w, cx, cs, static_cast<T*>(dx));
      else
        upsample2x_concat_dx_kernel<T, 1><<<blocks_for(total, kMaxGridBlocks), kThreads, 0, stream>>>(
            d, n, h, w, cx, cs, static_cast<T*>(dx));
      PNEUMO_LAUNCH_CHECK("upsample2x_concat_dx_kernel");
    }
    if (dskip) {
      const int64_t pixels = n * 4 * h * w;
      if (vec)
        upsample2x_concat_dskip_kernel<T, V><<<blocks_for(pixels * cs / V, kMaxGridBlocks), kThreads, 0, stream>>>(
            d, pixels, cx, cs, static_cast<T*>(dskip));
      else
        upsample2x_concat_dskip_kernel<T, 1><<<blocks_for(pixels * cs, kMaxGridBlocks), kThreads, 0, stream>>>(
            d, pixels, cx, cs, static_cast<T*>(dskip));
      PNEUMO_LAUNCH_CHECK("upsample2x_concat_dskip_kernel");
    }
  });
}

}  // namespace pneumo::kernels::cuda
