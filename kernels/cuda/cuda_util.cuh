// The one utility header of every CUDA translation unit (.cu) in kernels/cuda and augment/ (nvcc only); its
// host half, kernels/cuda/cuda_util.h, is what the host-only launchers (.cpp) include:
//  - storage types: `float`, `Bf16`, `F16` (raw 16-bit patterns), read as float and written with the
//    round-to-nearest-even conversions of kernels/dtype.h, so every backend rounds alike;
//  - launch helpers: kThreads, blocks_for (grid-stride kernels, capped grid), blocks_exact (one thread per
//    item, uncapped), stream_device, check_count;
//  - dtype dispatch on the host: dispatch_float (F32/BF16/F16), dispatch_f32_bf16, dispatch_any;
//  - vector loads: 16-byte Pack<T>, 4- and 8-wide float conversions, alignment tests;
//  - deterministic warp/block sums (fixed order, no atomics) and small math (sigmoidf_, align256).
// Mask/probability reads of any dtype (load_mask_value) live here too, shared by RLE and Dice.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/cuda_util.h"

namespace pneumo::kernels::cuda {

// ---- storage types (Bf16, F16: kernels/cuda/cuda_util.h) -----------------------------------------
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(Bf16 v) { return bf16_bits_to_float(v.bits); }
__device__ __forceinline__ float to_float(F16 v) { return f16_bits_to_float(v.bits); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ Bf16 from_float<Bf16>(float v) { return Bf16{float_to_bf16_bits(v)}; }
template <>
__device__ __forceinline__ F16 from_float<F16>(float v) { return F16{float_to_f16_bits(v)}; }

template <typename T>
constexpr bool kIsFloatStorage = std::is_same_v<T, float> || std::is_same_v<T, Bf16> || std::is_same_v<T, F16>;

// Element i of a float32 / bfloat16 array as float, and back.
__device__ __forceinline__ float load_f(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load_f(const Bf16* p, int64_t i) { return bf16_bits_to_float(p[i].bits); }
__device__ __forceinline__ void store_f(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f(Bf16* p, int64_t i, float v) { p[i].bits = float_to_bf16_bits(v); }

// Element i of a mask or probability map of any dtype the data kernels accept (U8, F32, BF16, F16) as
// float, so RLE encoding and Dice threshold the same value the same way.
__device__ __forceinline__ float load_mask_value(DType dt, const void* p, int64_t i) {
  switch (dt) {
    case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(p)[i]);
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return bf16_bits_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_bits_to_float(static_cast<const uint16_t*>(p)[i]);
    default: return 0.0f;
  }
}

// ---- vector loads ---------------------------------------------------------------------------------
// 16 bytes of T, loaded and stored as one uint4.
template <typename T>
union Pack {
  static constexpr int kSize = 16 / sizeof(T);
  uint4 raw;
  T v[kSize];
};
template <typename T>
__device__ __forceinline__ Pack<T> load_pack(const T* p, int64_t unit) {
  Pack<T> r;
  r.raw = reinterpret_cast<const uint4*>(p)[unit];
  return r;
}
template <typename T>
__device__ __forceinline__ void store_pack(T* p, int64_t unit, const Pack<T>& v) {
  reinterpret_cast<uint4*>(p)[unit] = v.raw;
}

// Grid-stride walk over n elements: `pack(u)` for each whole 16-byte unit when `vec`, then `scalar(i)`
// for the remaining elements (all of them when !vec).
template <typename T, typename ScalarFn, typename PackFn>
__device__ __forceinline__ void for_each_element(int64_t n, bool vec, ScalarFn scalar, PackFn pack) {
  constexpr int V = Pack<T>::kSize;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t start = 0;
  if (vec) {
    const int64_t units = n / V;
    for (int64_t u = tid; u < units; u += stride) pack(u);
    start = units * V;
  }
  for (int64_t i = start + tid; i < n; i += stride) scalar(i);
}

// Four consecutive elements starting at p[i] (i a multiple of 4, p 16-byte (float) / 8-byte (bf16) aligned).
__device__ __forceinline__ void load4(const float* p, int64_t i, float out[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p + i);
  out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
}
__device__ __forceinline__ void load4(const Bf16* p, int64_t i, float out[4]) {
  const uint2 v = *reinterpret_cast<const uint2*>(p + i);
  out[0] = bf16_bits_to_float(static_cast<uint16_t>(v.x & 0xffffu));
  out[1] = bf16_bits_to_float(static_cast<uint16_t>(v.x >> 16));
  out[2] = bf16_bits_to_float(static_cast<uint16_t>(v.y & 0xffffu));
  out[3] = bf16_bits_to_float(static_cast<uint16_t>(v.y >> 16));
}
__device__ __forceinline__ void store4(float* p, int64_t i, const float v[4]) {
  *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store4(Bf16* p, int64_t i, const float v[4]) {
  uint2 r;
  r.x = static_cast<uint32_t>(float_to_bf16_bits(v[0])) | (static_cast<uint32_t>(float_to_bf16_bits(v[1])) << 16);
  r.y = static_cast<uint32_t>(float_to_bf16_bits(v[2])) | (static_cast<uint32_t>(float_to_bf16_bits(v[3])) << 16);
  *reinterpret_cast<uint2*>(p + i) = r;
}

// 16 bytes of T as floats: 4 float32 or 8 bfloat16 (kVecWidth<T>) at p[i], i a multiple of the width and
// p 16-byte aligned.
template <typename T>
constexpr int kVecWidth = 16 / static_cast<int>(sizeof(T));
__device__ __forceinline__ void load_vec(const float* p, int64_t i, float out[4]) { load4(p, i, out); }
__device__ __forceinline__ void store_vec(float* p, int64_t i, const float v[4]) { store4(p, i, v); }
__device__ __forceinline__ void load_vec(const Bf16* p, int64_t i, float out[8]) {
  const uint4 v = *reinterpret_cast<const uint4*>(p + i);
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  for (int k = 0; k < 4; ++k) {
    out[2 * k] = bf16_bits_to_float(static_cast<uint16_t>(w[k] & 0xffffu));
    out[2 * k + 1] = bf16_bits_to_float(static_cast<uint16_t>(w[k] >> 16));
  }
}
__device__ __forceinline__ void store_vec(Bf16* p, int64_t i, const float v[8]) {
  uint32_t w[4];
  for (int k = 0; k < 4; ++k)
    w[k] = static_cast<uint32_t>(float_to_bf16_bits(v[2 * k])) |
           (static_cast<uint32_t>(float_to_bf16_bits(v[2 * k + 1])) << 16);
  *reinterpret_cast<uint4*>(p + i) = make_uint4(w[0], w[1], w[2], w[3]);
}

// True when a pointer allows the 4-element vector path for element type T.
template <typename T>
__host__ __device__ inline bool vec4_aligned(const void* p) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0;
}

// ---- deterministic sums ---------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;  // lane 0 holds the sum
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); the result is valid in thread 0.
// `scratch` holds 32 floats of shared memory. Fixed order: lanes, then warps.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = threadIdx.x < warps ? scratch[threadIdx.x] : 0.0f;
  if (warp == 0) v = warp_sum(v);
  return v;
}

__device__ __forceinline__ float sigmoidf_(float z) { return 1.0f / (1.0f + expf(-z)); }

inline size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace pneumo::kernels::cuda
