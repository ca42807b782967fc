// CUDA Dice counts of the competition metric (kernels/cuda/metric.cu), same contract as dice_counts in
// kernels/cpu/data_kernels.h: raw device pointers + sizes + a stream, mask dtypes U8, F32, BF16, F16 chosen
// at run time, foreground = value > threshold. Integer counts: deterministic.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

// Dice counts of n masks of hw pixels: out (device, 3n int64) = (|pred & truth|, |pred|, |truth|) per mask.
void dice_counts(DType pred_dt, const void* pred, float pred_threshold, DType truth_dt, const void* truth,
                 float truth_threshold, int64_t n, int64_t hw, int64_t* out, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
