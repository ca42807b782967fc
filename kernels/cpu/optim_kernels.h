// CPU optimiser kernels over a list of float32 tensors (see kernels/optim_update.h for the arithmetic):
// one step of Adam/AdamW/SGD, and the two halves of clipping by global norm.
#pragma once
#include <cstdint>

#include "kernels/optim_update.h"

namespace pneumo::kernels::cpu {

// With `capturable`, the step-dependent scalars come from it (the tensors' own are ignored) and its step
// counts advance: the CPU twin of the CUDA capturable step.
void optimizer_step(const OptimTensor* tensors, int count, const OptimHyper& hyper,
                    const OptimCapturable* capturable = nullptr);

// Sum of squares of every element of every tensor, accumulated in double.
double multi_tensor_sum_squares(const float* const* tensors, const int64_t* sizes, int count);
// tensor *= scale for every tensor.
void multi_tensor_scale(float* const* tensors, const int64_t* sizes, int count, float scale);

}  // namespace pneumo::kernels::cpu
