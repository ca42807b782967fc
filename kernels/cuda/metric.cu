// CUDA Dice counts (see metric_kernels.h): blocks of one mask each reduce integer counts (warp shuffles, then
// shared memory) and add them with 64-bit integer atomics, which are exact, so the result is deterministic.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/metric_kernels.h"

namespace pneumo::kernels::cuda {

namespace {

__global__ void dice_counts_kernel(DType pred_dt, const void* pred, float pred_threshold, DType truth_dt,
                                   const void* truth, float truth_threshold, int64_t hw,
                                   unsigned long long* out) {
  const int64_t m = blockIdx.x;
  unsigned int inter = 0, np = 0, nt = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; i < hw;
       i += static_cast<int64_t>(gridDim.y) * blockDim.x) {
    const bool p = load_mask_value(pred_dt, pred, m * hw + i) > pred_threshold;
    const bool t = load_mask_value(truth_dt, truth, m * hw + i) > truth_threshold;
    inter += p && t;
    np += p;
    nt += t;
  }
  for (int off = 16; off > 0; off >>= 1) {
    inter += __shfl_down_sync(0xffffffffu, inter, off);
    np += __shfl_down_sync(0xffffffffu, np, off);
    nt += __shfl_down_sync(0xffffffffu, nt, off);
  }
  __shared__ unsigned int warp_sums[3][kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    warp_sums[0][warp] = inter;
    warp_sums[1][warp] = np;
    warp_sums[2][warp] = nt;
  }
  __syncthreads();
  if (threadIdx.x < 3) {
    unsigned long long s = 0;
    for (int i = 0; i < kThreads / 32; ++i) s += warp_sums[threadIdx.x][i];
    if (s) atomicAdd(out + 3 * m + threadIdx.x, s);
  }
}

}  // namespace

void dice_counts(DType pred_dt, const void* pred, float pred_threshold, DType truth_dt, const void* truth,
                 float truth_threshold, int64_t n, int64_t hw, int64_t* out, cudaStream_t stream) {
  for (DType dt : {pred_dt, truth_dt})
    PNEUMO_CHECK(dt == DType::U8 || dt == DType::F32 || dt == DType::BF16 || dt == DType::F16,
                 "dice_counts: mask dtype ", dtype_name(dt), " is not supported (U8, F32, BF16, F16)");
  PNEUMO_CHECK(n >= 0 && n < (int64_t{1} << 31) && hw >= 0, "dice_counts: bad sizes n=", n, " hw=", hw);
  if (n == 0) return;
  PNEUMO_CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(3 * n) * sizeof(int64_t), stream));
  if (hw == 0) return;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>((hw + kThreads * 16 - 1) / (kThreads * 16), 64));
  dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(chunks));
  dice_counts_kernel<<<grid, kThreads, 0, stream>>>(pred_dt, pred, pred_threshold, truth_dt, truth, truth_threshold,
                                                    hw, reinterpret_cast<unsigned long long*>(out));
  PNEUMO_LAUNCH_CHECK("dice_counts");
}

}  // namespace pneumo::kernels::cuda
