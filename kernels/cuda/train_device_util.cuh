// Device helpers shared by the SE, loss and optimiser kernels (CUDA translation units only): float32
// or bfloat16 storage read/written as float, 4-element vector loads, and a deterministic block sum.
// Convention: activations are `float` or `Bf16` (raw bits); all math is float32; a block reduction always
// combines values in the same order for a given block size (no atomics), so results are reproducible.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo::kernels::cuda::train_detail {

struct Bf16 {
  uint16_t bits;
};

__device__ __forceinline__ float load_f(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load_f(const Bf16* p, int64_t i) { return bf16_bits_to_float(p[i].bits); }
__device__ __forceinline__ void store_f(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f(Bf16* p, int64_t i, float v) { p[i].bits = float_to_bf16_bits(v); }

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
__host__ __device__ inline bool aligned16(const void* p) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// True when a pointer allows the 4-element vector path for element type T.
template <typename T>
__host__ __device__ inline bool vec4_aligned(const void* p) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0;
}

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

}  // namespace pneumo::kernels::cuda::train_detail
