// CUDA fast path of the fused squeeze-excite block on NHWC activations; same contract as
// kernels/cpu/squeeze_excite_kernels.h (act ReLU or swish; W1 [reduced, channels], W2 [channels, reduced];
// backward recomputes the gate and writes dx, dW1, db1, dW2, db2). x, dy, y, dx and the weights share one
// dtype, F32 or BF16; all math and sums are float32. Reductions are deterministic: fixed partial sums per
// (sample, pixel split, channel) then a fixed-order finish; no atomics. `workspace` is device memory of at
// least squeeze_excite_workspace_bytes(...) bytes (256-byte aligned).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/op_codes.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

size_t squeeze_excite_workspace_bytes(int64_t batch, int64_t hw, int64_t channels, int64_t reduced);

void squeeze_excite_forward(DType dt, const void* x, const void* w1, const void* b1, const void* w2, const void* b2,
                            int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act, void* y,
                            void* workspace, cudaStream_t stream);

void squeeze_excite_backward(DType dt, const void* x, const void* dy, const void* w1, const void* b1, const void* w2,
                             const void* b2, int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act,
                             void* dx, void* dw1, void* db1, void* dw2, void* db2, void* workspace,
                             cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
