// Reads element i of a mask or probability map of any dtype the data kernels accept (U8, F32, BF16, F16)
// as float, so RLE encoding and Dice threshold the same value the same way.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo::kernels::cuda {

__device__ __forceinline__ float load_mask_value(DType dt, const void* p, int64_t i) {
  switch (dt) {
    case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(p)[i]);
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return bf16_bits_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_bits_to_float(static_cast<const uint16_t*>(p)[i]);
    default: return 0.0f;
  }
}

}  // namespace pneumo::kernels::cuda
