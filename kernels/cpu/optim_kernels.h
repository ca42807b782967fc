// CPU optimiser kernels over a list of float32 tensors (see kernels/optim_update.h for the arithmetic):
// one step of Adam/AdamW/SGD, and the two halves of clipping by global norm.
#pragma once
#include <cstdint>

#include "kernels/optim_update.h"

namespace pneumo::kernels::cpu {

void optimizer_step(const OptimTensor* tensors, int count, const OptimHyper& hyper);

// Sum of squares of every element of every tensor, accumulated in double.
double multi_tensor_sum_squares(const float* const* tensors, const int64_t* sizes, int count);
// tensor *= scale for every tensor.
void multi_tensor_scale(float* const* tensors, const int64_t* sizes, int count, float scale);

}  // namespace pneumo::kernels::cpu
