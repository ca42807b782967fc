// CPU reference (the oracle) of the fused BatchNorm kernels of kernels/cuda/fused_bn_kernels.h:
// BatchNorm + ReLU, and the SE-ResNeXt bottleneck tail out = relu(gate[n,c] * BN(x) + residual) with the
// BN statistics and the squeeze-excite pool in one pass. Activations NHWC viewed as [n, hw, c].
// Activation dtype F32, F64 or BF16 (storage only: every value is read into double, outputs rounded once);
// statistics, parameters, gates and [n, c] sums are F64 for F64 activations and F32 otherwise (the CUDA
// contract). Sums run in double in a fixed order. Nullable pointers are marked; absent weight/bias are 1/0.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo::kernels::cpu {

// mean, var [c] (biased variance); sample_sum [n, c] = sum over hw of x (nullable: the SE pool).
void fused_bn_statistics(DType dt, const void* x, int64_t n, int64_t hw, int64_t c, void* mean, void* var,
                         void* sample_sum);

// pooled [n, c] = mean over hw of BN(x) = (sample_sum / hw - mean) * invstd * w + b.
void fused_bn_pool(DType dt, const void* sample_sum, int64_t n, int64_t hw, int64_t c, const void* mean,
                   const void* var, double eps, const void* w, const void* b, void* pooled);

// y = act(gate[n,c] * ((x - mean) * invstd * w + b) + residual); act = ReLU when relu, else identity.
// w, b, gate [n, c], residual (activation dtype, shape of x) nullable.
void fused_bn_apply(DType dt, const void* x, int64_t n, int64_t hw, int64_t c, const void* mean, const void* var,
                    double eps, const void* w, const void* b, const void* gate, const void* residual, bool relu,
                    void* y);

// dpre = relu ? dy * (y > 0) : dy, y the forward's output (only read when relu). Writes
// s0 = sum dpre, s1 = sum dpre * xhat, per [n, c] when per_sample, else per [c]; dres = dpre (nullable:
// the residual's gradient, written in the same pass).
void fused_bn_backward_reduce(DType dt, const void* dy, const void* y, const void* x, int64_t n, int64_t hw, int64_t c,
                              const void* mean, const void* var, double eps, bool relu, bool per_sample, void* s0,
                              void* s1, void* dres);

// From the reduce's sums (per [n, c] when gate or dpool is given, else per [c]); every output nullable:
//   dgate[n,c] = w * s1 + b * s0                                    (d loss / d gate)
//   dbias[c]   = sum_n (g * s0 + dpool)                              (g = gate or 1, dpool absent = 0)
//   dweight[c] = sum_n (g * s1 + dpool / hw * xhat_sum[n,c]),  xhat_sum = (sample_sum - hw * mean) * invstd
// where dpool [n, c] is the gradient reaching the pooled BN output (the SE input).
void fused_bn_backward_finish(DType dt, int64_t n, int64_t hw, int64_t c, const void* s0, const void* s1,
                              const void* gate, const void* dpool, const void* sample_sum, const void* mean,
                              const void* var, double eps, const void* w, const void* b, void* dgate, void* dbias,
                              void* dweight);

// dz = dpre * g + dpool / hw;  dx = w * invstd * (dz - [training] (dbias + xhat * dweight) / (n * hw)),
// written, or added to dx when accumulate. gate, dpool, w nullable; dbias/dweight read only when training.
void fused_bn_backward_data(DType dt, const void* dy, const void* y, const void* x, int64_t n, int64_t hw, int64_t c,
                            const void* mean, const void* var, double eps, const void* w, const void* gate,
                            const void* dpool, const void* dbias, const void* dweight, bool relu, bool training,
                            bool accumulate, void* dx);

}  // namespace pneumo::kernels::cpu
