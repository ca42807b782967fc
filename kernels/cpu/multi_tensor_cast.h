// CPU twin of kernels::cuda::multi_tensor_cast_bf16 (kernels/cuda/optim_kernels.h): bf16 copies of a list
// of float32 tensors, round to nearest even (kernels/dtype.h float_to_bf16_bits), bit-identical to the CUDA
// kernel and to Tensor::to(BF16).
#pragma once
#include <cstdint>

namespace pneumo::kernels::cpu {

void multi_tensor_cast_bf16(const float* const* src, uint16_t* const* dst, const int64_t* sizes, int count);

}  // namespace pneumo::kernels::cpu
