// CUDA fused BatchNorm (issue 12 part 2, items 2 and 3): the fast twins of kernels/cpu/fused_bn_kernels.h,
// same contract (read it there), activations NHWC viewed as [n, hw, c], dtype F32 or BF16, statistics,
// parameters, gates and [n, c] sums float32.
//  - statistics: ONE read of x (shifted sums, shift = the first row) gives mean, var and, for the SE pool,
//    the per-sample sums; apply: ONE pass y = relu(gate * BN(x) + residual), ReLU/gate/residual optional;
//  - backward: ONE reduce pass (dy, the saved output y for the ReLU mask, x; writes the residual's gradient
//    on the way) and ONE elementwise pass (may accumulate into dx); the [c]/[n, c] finishing is tiny.
// 16-byte vector I/O whenever c is a multiple of the vector width and the pointers are 16-byte aligned.
// Deterministic: per-(sample, row chunk, channel) partial sums reduced in a fixed order, no atomics; the
// chunking depends only on the shape, so results are identical on every GPU.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

// Floats of device scratch that fused_bn_statistics and fused_bn_backward_reduce need.
int64_t fused_bn_scratch_floats(DType dt, int64_t n, int64_t hw, int64_t c);

void fused_bn_statistics(DType dt, const void* x, int64_t n, int64_t hw, int64_t c, float* mean, float* var,
                         float* sample_sum, float* scratch, cudaStream_t stream);
void fused_bn_pool(const float* sample_sum, int64_t n, int64_t hw, int64_t c, const float* mean, const float* var,
                   double eps, const float* w, const float* b, float* pooled, cudaStream_t stream);
void fused_bn_apply(DType dt, const void* x, int64_t n, int64_t hw, int64_t c, const float* mean, const float* var,
                    double eps, const float* w, const float* b, const float* gate, const void* residual, bool relu,
                    void* y, cudaStream_t stream);
void fused_bn_backward_reduce(DType dt, const void* dy, const void* y, const void* x, int64_t n, int64_t hw, int64_t c,
                              const float* mean, const float* var, double eps, bool relu, bool per_sample, float* s0,
                              float* s1, void* dres, float* scratch, cudaStream_t stream);
void fused_bn_backward_finish(int64_t n, int64_t hw, int64_t c, const float* s0, const float* s1, const float* gate,
                              const float* dpool, const float* sample_sum, const float* mean, const float* var,
                              double eps, const float* w, const float* b, float* dgate, float* dbias, float* dweight,
                              cudaStream_t stream);
void fused_bn_backward_data(DType dt, const void* dy, const void* y, const void* x, int64_t n, int64_t hw, int64_t c,
                            const float* mean, const float* var, double eps, const float* w, const float* gate,
                            const float* dpool, const float* dbias, const float* dweight, bool relu, bool training,
                            bool accumulate, void* dx, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
