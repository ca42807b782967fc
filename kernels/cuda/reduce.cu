// Reduction CUDA kernels behind tensor/ops.h (contract: kernels/cuda/tensor_kernels.h): sum_all,
// sum_channels, sum_hw. Two fixed-order passes through a per-(device, stream) float workspace:
// deterministic, no atomics.
#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/tensor_kernels.h"

namespace pneumo::kernels::cuda {
namespace {

// Stores a float result as dtype dt (reductions write float partials or the final dtype).
__device__ __forceinline__ void store_from_float(DType dt, void* dst, int64_t i, float f) {
  switch (dt) {
    case DType::F32: static_cast<float*>(dst)[i] = f; break;
    case DType::BF16: static_cast<Bf16*>(dst)[i] = from_float<Bf16>(f); break;
    case DType::F16: static_cast<F16*>(dst)[i] = from_float<F16>(f); break;
    default: break;  // reductions are floating only (checked on the host)
  }
}


// ---- reductions -----------------------------------------------------------------------------------
constexpr int kReduceThreads = 256;
constexpr int64_t kWorkspaceFloats = int64_t(1) << 20;  // 4 MiB per (device, stream), allocated once
constexpr int64_t kTargetReduceBlocks = 1024;

// Sum of a block's values in shared memory by a fixed tree; result in s[0].
__device__ __forceinline__ float block_tree_sum(float* s, float v) {
  s[threadIdx.x] = v;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
    __syncthreads();
  }
  return s[0];
}

// Pass 1 of sum_all: block b sums a fixed grid-stride subset and writes out[b] (dtype out_dt).
template <typename T>
__global__ void __launch_bounds__(kReduceThreads) sum_all_kernel(const T* x, int64_t n, bool vec, DType out_dt,
                                                                 void* out) {
  __shared__ float s[kReduceThreads];
  float acc = 0.0f;
  for_each_element<T>(
      n, vec, [&](int64_t i) { acc += to_float(x[i]); },
      [&](int64_t u) {
        Pack<T> p = load_pack(x, u);
        float part = 0.0f;
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k) part += to_float(p.v[k]);
        acc += part;
      });
  const float total = block_tree_sum(s, acc);
  if (threadIdx.x == 0) store_from_float(out_dt, out, blockIdx.x, total);
}

// Column sums of x viewed as [batch, rows, channels] (row-major). Block (g, tile, b) sums rows
// [g * rows_per_chunk, ...) of batch b and writes out[(b * gridDim.x + g) * channels + c] (dtype out_dt).
// Threads read consecutive addresses: with U = channels / W units of W channels (W = 16-byte vectors or
// 1) and U <= 256, the block covers R = 256 / U rows at once, so small C (NHWC) stays coalesced; the R
// row lanes are then combined by a fixed tree. With U > 256 each block takes 256 units of one tile.
template <typename T, int W>
__device__ __forceinline__ void column_sum_body(float (*partial)[kReduceThreads], const T* x, int64_t batch,
                                                int64_t rows, int64_t channels, int64_t rows_per_chunk,
                                                DType out_dt, void* out) {
  const int t = threadIdx.x;
  const int64_t units = channels / W;
  const bool narrow = units <= kReduceThreads;
  const int64_t lanes = narrow ? kReduceThreads / units : 1;  // rows read at once
  const int64_t unit = narrow ? t % units : static_cast<int64_t>(blockIdx.y) * kReduceThreads + t;
  const int64_t lane = narrow ? t / units : 0;
  const bool active = narrow ? t < lanes * units : unit < units;
  const int64_t g = blockIdx.x;
  const int64_t row_begin = g * rows_per_chunk, row_end = min(rows, row_begin + rows_per_chunk);
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    float acc[W];
#pragma unroll
    for (int k = 0; k < W; ++k) acc[k] = 0.0f;
    if (active) {
      const T* base = x + b * rows * channels + unit * W;
#pragma unroll 4
      for (int64_t r = row_begin + lane; r < row_end; r += lanes) {
        if constexpr (W == 1) {
          acc[0] += to_float(base[r * channels]);
        } else {
          Pack<T> p = load_pack(base + r * channels, 0);
#pragma unroll
          for (int k = 0; k < W; ++k) acc[k] += to_float(p.v[k]);
        }
      }
    }
    const int64_t out_base = (b * gridDim.x + g) * channels;
    if (narrow) {
#pragma unroll
      for (int k = 0; k < W; ++k) partial[k][t] = acc[k];
      __syncthreads();
      for (int64_t live = lanes; live > 1;) {  // fold lanes [half, live) onto [0, live - half)
        const int64_t half = (live + 1) / 2;
        if (t < (live - half) * units) {
#pragma unroll
          for (int k = 0; k < W; ++k) partial[k][t] += partial[k][t + half * units];
        }
        __syncthreads();
        live = half;
      }
      for (int64_t c = t; c < channels; c += kReduceThreads)
        store_from_float(out_dt, out, out_base + c, partial[c % W][c / W]);
      __syncthreads();
    } else if (active) {
#pragma unroll
      for (int k = 0; k < W; ++k) store_from_float(out_dt, out, out_base + unit * W + k, acc[k]);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kReduceThreads) column_sum_kernel(const T* x, int64_t batch, int64_t rows,
                                                                    int64_t channels, int64_t rows_per_chunk,
                                                                    bool vec, DType out_dt, void* out) {
  __shared__ float partial[Pack<T>::kSize][kReduceThreads];
  if (vec)
    column_sum_body<T, Pack<T>::kSize>(partial, x, batch, rows, channels, rows_per_chunk, out_dt, out);
  else
    column_sum_body<T, 1>(partial, x, batch, rows, channels, rows_per_chunk, out_dt, out);
}


// Scratch for the first pass of reductions: one buffer per (device, stream), allocated on first use and
// kept for the life of the process (work on one stream is ordered, so reuse across calls is safe). A
// cuda::Graph's stream gets one too, 4 MiB per graph that reduces, kept after the graph is gone.
float* reduction_workspace(cudaStream_t stream) {
  static std::mutex mutex;
  static auto* buffers = new std::map<std::pair<int, cudaStream_t>, float*>();  // never freed: see above
  const int device = stream_device(stream);
  std::lock_guard<std::mutex> lock(mutex);
  float*& p = (*buffers)[{device, stream}];
  if (!p) {
    DeviceGuard guard(device);  // cudaMalloc allocates on the current device, which need not be the stream's
    PNEUMO_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), kWorkspaceFloats * sizeof(float)));
  }
  return p;
}

struct ColumnSumPlan {
  bool vec = false;
  int64_t tiles = 1;
  int64_t lanes = 1;
};
template <typename T>
ColumnSumPlan plan_column_sum(const T* x, int64_t channels) {
  ColumnSumPlan p;
  const int64_t v = Pack<T>::kSize;
  p.vec = aligned16(x) && channels % v == 0;
  const int64_t units = p.vec ? channels / v : channels;
  if (units <= kReduceThreads) {
    p.lanes = kReduceThreads / units;
  } else {
    p.tiles = (units + kReduceThreads - 1) / kReduceThreads;
  }
  return p;
}

template <typename T>
void launch_column_sum(const T* x, int64_t batch, int64_t rows, int64_t channels, int64_t chunks,
                       int64_t rows_per_chunk, const ColumnSumPlan& plan, DType out_dt, void* out,
                       cudaStream_t stream) {
  PNEUMO_CHECK(plan.tiles <= 65535, "kernels::cuda: too many channels for a column sum: ", channels);
  dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(plan.tiles),
            static_cast<unsigned>(std::min<int64_t>(batch, 65535)));
  column_sum_kernel<T><<<grid, kReduceThreads, 0, stream>>>(x, batch, rows, channels, rows_per_chunk, plan.vec,
                                                            out_dt, out);
  PNEUMO_LAUNCH_CHECK("column_sum_kernel");
}

// out[b, c] = sum over r of x[b, r, c]; sum_channels is batch 1, sum_hw is batch N.
void column_sums(DType dt, const char* what, const void* x, int64_t batch, int64_t rows, int64_t channels,
                 void* out, cudaStream_t stream) {
  PNEUMO_CHECK(batch >= 0 && rows >= 0 && channels >= 0, "kernels::cuda::", what, ": bad sizes batch ", batch,
               " rows ", rows, " channels ", channels);
  dispatch_float(dt, what, [&](auto tag) {
    using T = decltype(tag);
    if (batch * channels == 0) return;
    if (rows == 0) {
      PNEUMO_CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(batch * channels) * sizeof(T), stream));
      return;
    }
    const T* xt = static_cast<const T*>(x);
    const ColumnSumPlan plan = plan_column_sum(xt, channels);
    // Enough blocks to fill the GPU, at least ~16 row steps per thread, and partials that fit the workspace.
    int64_t chunks = std::max<int64_t>(1, kTargetReduceBlocks / (batch * plan.tiles));
    chunks = std::min(chunks, std::max<int64_t>(1, rows / (plan.lanes * 16)));
    chunks = std::min(chunks, std::max<int64_t>(1, kWorkspaceFloats / (batch * channels)));
    chunks = std::min<int64_t>(chunks, 65535);
    const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
    chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    if (chunks == 1) {
      launch_column_sum(xt, batch, rows, channels, 1, rows, plan, dt, out, stream);
      return;
    }
    float* partial = reduction_workspace(stream);
    launch_column_sum(xt, batch, rows, channels, chunks, rows_per_chunk, plan, DType::F32, partial, stream);
    const ColumnSumPlan plan2 = plan_column_sum(static_cast<const float*>(partial), channels);
    launch_column_sum(static_cast<const float*>(partial), batch, chunks, channels, 1, chunks, plan2, dt, out, stream);
  });
}

}  // namespace

void sum_all(DType dt, const void* x, int64_t n, void* out, cudaStream_t stream) {
  check_count("sum_all", n);
  dispatch_float(dt, "sum_all", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) {
      PNEUMO_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T), stream));
      return;
    }
    const T* xt = static_cast<const T*>(x);
    const bool vec = aligned16(x);
    // ~16 vector loads per thread before the grid grows, at most kTargetReduceBlocks partials.
    const int64_t per_block = kReduceThreads * 16 * static_cast<int64_t>(Pack<T>::kSize);
    const int64_t blocks = std::min(kTargetReduceBlocks, std::max<int64_t>(1, (n + per_block - 1) / per_block));
    if (blocks == 1) {
      sum_all_kernel<T><<<1, kReduceThreads, 0, stream>>>(xt, n, vec, dt, out);
      PNEUMO_LAUNCH_CHECK("sum_all_kernel");
      return;
    }
    float* partial = reduction_workspace(stream);
    sum_all_kernel<T><<<static_cast<unsigned>(blocks), kReduceThreads, 0, stream>>>(xt, n, vec, DType::F32, partial);
    PNEUMO_LAUNCH_CHECK("sum_all_kernel");
    const ColumnSumPlan plan = plan_column_sum(static_cast<const float*>(partial), 1);
    launch_column_sum(static_cast<const float*>(partial), 1, blocks, 1, 1, blocks, plan, dt, out, stream);
  });
}

void sum_channels(DType dt, const void* x, int64_t rows, int64_t channels, void* out, cudaStream_t stream) {
  column_sums(dt, "sum_channels", x, 1, rows, channels, out, stream);
}

void sum_hw(DType dt, const void* x, int64_t batch, int64_t hw, int64_t channels, void* out, cudaStream_t stream) {
  column_sums(dt, "sum_hw", x, batch, hw, channels, out, stream);
}

}  // namespace pneumo::kernels::cuda
