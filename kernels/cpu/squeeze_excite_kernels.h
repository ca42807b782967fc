// CPU reference of the fused squeeze-excite block on NHWC activations (the oracle for the CUDA path):
//   pooled[n,c] = mean_hw x;  h = act(W1 pooled + b1);  gate = sigmoid(W2 h + b2);  y = x * gate[n,c].
// W1 is [reduced, channels] (a 1x1 conv in KRSC), W2 is [channels, reduced]. act: Activation::Relu or Swish.
// Backward recomputes the gate from x and writes (does not accumulate) dx, dW1, db1, dW2, db2.
// dtypes F32/F64 (x and weights the same dtype); sums accumulate in double.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/op_codes.h"

namespace pneumo::kernels::cpu {

void squeeze_excite_forward(DType dt, const void* x, const void* w1, const void* b1, const void* w2, const void* b2,
                            int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act, void* y);

void squeeze_excite_backward(DType dt, const void* x, const void* dy, const void* w1, const void* b1, const void* w2,
                             const void* b2, int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act,
                             void* dx, void* dw1, void* db1, void* dw2, void* db2);

}  // namespace pneumo::kernels::cpu
