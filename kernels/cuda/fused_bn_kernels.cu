// Fused BatchNorm kernels (see fused_bn_kernels.h). Reductions: a block owns (sample, row chunk, channel
// tile); its threads are lanes_c channel vectors x lanes_r rows, so a block reads whole consecutive rows
// (contiguous memory) with 16-byte loads; per-thread float sums, a fixed-order tree over the row lanes, one
// partial per (sample, chunk, channel) in scratch, then per-(sample, channel) sums over the chunks (a block
// per sample and 32 channels) and a per-channel finish over the samples, in double, in a fixed order.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/fused_bn_kernels.h"

namespace pneumo::kernels::cuda {
namespace {

constexpr int64_t kTargetBlocks = 1024;  // reduce grid target: a few waves on an H100/H200, shape-only
constexpr int kMinRowsPerThread = 8;

struct Geometry {
  int lanes_c = 1, lanes_r = 1, tiles = 1;
  int64_t chunks = 1, chunk_rows = 1;
};

// vec must divide c (the launchers take the vector path only then): with c < vec there would be no lane.
Geometry geometry(int64_t n, int64_t hw, int64_t c, int vec) {
  Geometry g;
  const int64_t cv = c / vec;
  PNEUMO_CHECK(cv >= 1 && c % vec == 0, "kernels::cuda::fused_bn: ", c, " channels in vectors of ", vec);
  g.lanes_c = static_cast<int>(std::min<int64_t>(cv, 32));
  g.lanes_r = kThreads / g.lanes_c;
  g.tiles = static_cast<int>((cv + g.lanes_c - 1) / g.lanes_c);
  const int64_t max_chunks = std::max<int64_t>(1, hw / (int64_t{kMinRowsPerThread} * g.lanes_r));
  const int64_t want = std::max<int64_t>(1, (kTargetBlocks + n * g.tiles - 1) / (n * g.tiles));
  g.chunks = std::min(want, max_chunks);
  g.chunk_rows = (hw + g.chunks - 1) / g.chunks;
  g.chunks = (hw + g.chunk_rows - 1) / g.chunk_rows;
  return g;
}

template <typename T>
bool vec_ok(int64_t c, std::initializer_list<const void*> ptrs) {
  if (c % kVecWidth<T> != 0) return false;
  for (const void* p : ptrs)
    if (p && reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

template <typename T, int V>
__device__ __forceinline__ void ldv(const T* p, int64_t i, float* out) {
  if constexpr (V == 1)
    out[0] = load_f(p, i);
  else
    load_vec(p, i, out);
}
template <typename T, int V>
__device__ __forceinline__ void stv(T* p, int64_t i, const float* v) {
  if constexpr (V == 1)
    store_f(p, i, v[0]);
  else
    store_vec(p, i, v);
}

__device__ __forceinline__ float relu_keep_nan(float v) { return v > 0.0f || v != v ? v : 0.0f; }

enum Mode : int { kStats = 0, kBackward = 1 };

// kStats: a0 = sum (x - x[row 0]), a1 = sum (x - x[row 0])^2.
// kBackward: dpre = relu ? dy * (y > 0) : dy; a0 = sum dpre, a1 = sum dpre * (x - mean); dres = dpre.
template <typename T, int V, int MODE>
__global__ void __launch_bounds__(kThreads) fused_bn_reduce_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                                                                   const T* __restrict__ y, T* __restrict__ dres,
                                                                   int64_t hw, int64_t c, int lanes_c, int lanes_r,
                                                                   int64_t chunks, int64_t chunk_rows,
                                                                   const float* __restrict__ mean, bool relu,
                                                                   float* __restrict__ p0, float* __restrict__ p1) {
  __shared__ float red0[kThreads * V], red1[kThreads * V];
  const int t = threadIdx.x, lc = t % lanes_c, lr = t / lanes_c;
  const int64_t k0 = (static_cast<int64_t>(blockIdx.y) * lanes_c + lc) * V;
  const bool active = lr < lanes_r && k0 < c;
  const int64_t s = blockIdx.x / chunks, ch = blockIdx.x % chunks;
  const int64_t r0 = ch * chunk_rows, r1 = min(hw, r0 + chunk_rows);
  float a0[V], a1[V], ref[V];
#pragma unroll
  for (int j = 0; j < V; ++j) a0[j] = a1[j] = ref[j] = 0.0f;
  if (active) {
    if constexpr (MODE == kStats)
      ldv<T, V>(x, k0, ref);
    else
#pragma unroll
      for (int j = 0; j < V; ++j) ref[j] = mean[k0 + j];
    for (int64_t r = r0 + lr; r < r1; r += lanes_r) {
      const int64_t i = (s * hw + r) * c + k0;
      float xv[V];
      ldv<T, V>(x, i, xv);
      if constexpr (MODE == kStats) {
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float d = xv[j] - ref[j];
          a0[j] += d;
          a1[j] += d * d;
        }
      } else {
        float g[V], yv[V];
        ldv<T, V>(dy, i, g);
        if (relu) {
          ldv<T, V>(y, i, yv);
#pragma unroll
          for (int j = 0; j < V; ++j) g[j] = yv[j] > 0.0f ? g[j] : 0.0f;
        }
        if (dres) stv<T, V>(dres, i, g);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          a0[j] += g[j];
          a1[j] += g[j] * (xv[j] - ref[j]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < V; ++j) {
    red0[t * V + j] = a0[j];
    red1[t * V + j] = a1[j];
  }
  __syncthreads();
  int top = 1;
  while (top < lanes_r) top <<= 1;
  for (int step = top >> 1; step > 0; step >>= 1) {
    if (active && lr < step && lr + step < lanes_r) {
      const int o = (t + step * lanes_c) * V;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        red0[t * V + j] += red0[o + j];
        red1[t * V + j] += red1[o + j];
      }
    }
    __syncthreads();
  }
  if (active && lr == 0) {
    const int64_t base = static_cast<int64_t>(blockIdx.x) * c + k0;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      p0[base + j] = red0[t * V + j];
      p1[base + j] = red1[t * V + j];
    }
  }
}

// Per-(sample, channel) sums of the chunk partials, in double: grid (n, ceil(c / 32)), 32 channels x 8 chunk
// slices per block (coalesced 128-byte reads), the 8 slices added in a fixed order. Keeps the per-channel
// finish short however many chunks there are.
__global__ void fused_bn_sample_sums_kernel(int64_t c, int64_t chunks, const float* __restrict__ p0,
                                            const float* __restrict__ p1, double* __restrict__ q0,
                                            double* __restrict__ q1) {
  __shared__ double r0[8][32], r1[8][32];
  const int lane = threadIdx.x & 31, slice = threadIdx.x >> 5;
  const int64_t s = blockIdx.x, k = static_cast<int64_t>(blockIdx.y) * 32 + lane;
  double a0 = 0, a1 = 0;
  if (k < c)
    for (int64_t ch = slice; ch < chunks; ch += 8) {
      const int64_t j = (s * chunks + ch) * c + k;
      a0 += p0[j];
      a1 += p1[j];
    }
  r0[slice][lane] = a0;
  r1[slice][lane] = a1;
  __syncthreads();
  if (slice == 0 && k < c) {
    double t0 = 0, t1 = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      t0 += r0[i][lane];
      t1 += r1[i][lane];
    }
    q0[s * c + k] = t0;
    q1[s * c + k] = t1;
  }
}

// q0 = per-sample sums of (x - x[row 0]), q1 of their squares.
template <typename T>
__global__ void fused_bn_stats_finish_kernel(const T* __restrict__ x, int64_t n, int64_t hw, int64_t c,
                                             const double* __restrict__ q0, const double* __restrict__ q1,
                                             float* __restrict__ mean, float* __restrict__ var,
                                             float* __restrict__ sample_sum) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= c) return;
  const double ref = load_f(x, k);
  double s1 = 0, s2 = 0;
  for (int64_t s = 0; s < n; ++s) {
    const double ss = q0[s * c + k];
    s2 += q1[s * c + k];
    if (sample_sum) sample_sum[s * c + k] = static_cast<float>(ss + static_cast<double>(hw) * ref);
    s1 += ss;
  }
  const double rows = static_cast<double>(n * hw), m1 = s1 / rows;
  if (mean) mean[k] = static_cast<float>(ref + m1);
  if (var) var[k] = static_cast<float>(fmax(0.0, s2 / rows - m1 * m1));
}

// q0 = per-sample sums of dpre, q1 of dpre * (x - mean).
__global__ void fused_bn_backward_sums_kernel(int64_t n, int64_t c, const double* __restrict__ q0,
                                              const double* __restrict__ q1, const float* __restrict__ var, float eps,
                                              bool per_sample, float* __restrict__ s0, float* __restrict__ s1) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= c) return;
  const double invstd = 1.0 / sqrt(static_cast<double>(var[k]) + eps);
  double t0 = 0, t1 = 0;
  for (int64_t s = 0; s < n; ++s) {
    const double a0 = q0[s * c + k], a1 = q1[s * c + k];
    if (per_sample) {
      s0[s * c + k] = static_cast<float>(a0);
      s1[s * c + k] = static_cast<float>(a1 * invstd);
    }
    t0 += a0;
    t1 += a1;
  }
  if (!per_sample) {
    s0[k] = static_cast<float>(t0);
    s1[k] = static_cast<float>(t1 * invstd);
  }
}

__global__ void fused_bn_pool_kernel(const float* __restrict__ sample_sum, int64_t n, int64_t hw, int64_t c,
                                     const float* __restrict__ mean, const float* __restrict__ var, float eps,
                                     const float* __restrict__ w, const float* __restrict__ b,
                                     float* __restrict__ pooled) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * c) return;
  const int64_t k = i % c;
  const float invstd = 1.0f / sqrtf(var[k] + eps);
  pooled[i] = (sample_sum[i] / static_cast<float>(hw) - mean[k]) * invstd * (w ? w[k] : 1.0f) + (b ? b[k] : 0.0f);
}

// The elementwise kernels use the reduce layout (lanes_c channel vectors x lanes_r rows per block, grid
// (row chunks, channel tiles)), so each thread keeps the per-channel constants of its V channels in
// registers for all its rows: no per-block prologue, no shared memory, any channel count.
struct RowLayout {
  int lanes_c, lanes_r;
  int64_t chunk_rows;
};

// y = relu?(gate * (x * scale + shift) + residual).
template <typename T, int V>
__global__ void __launch_bounds__(kThreads) fused_bn_apply_kernel(const T* __restrict__ x, int64_t rows, int64_t hw,
                                                                  int64_t c, RowLayout L,
                                                                  const float* __restrict__ mean,
                                                                  const float* __restrict__ var, float eps,
                                                                  const float* __restrict__ w,
                                                                  const float* __restrict__ b,
                                                                  const float* __restrict__ gate,
                                                                  const T* __restrict__ residual, bool relu,
                                                                  T* __restrict__ y) {
  const int t = threadIdx.x, lc = t % L.lanes_c, lr = t / L.lanes_c;
  const int64_t k0 = (static_cast<int64_t>(blockIdx.y) * L.lanes_c + lc) * V;
  if (lr >= L.lanes_r || k0 >= c) return;
  float scale[V], shift[V], g[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const float sc = (w ? w[k0 + j] : 1.0f) / sqrtf(var[k0 + j] + eps);
    scale[j] = sc;
    shift[j] = (b ? b[k0 + j] : 0.0f) - mean[k0 + j] * sc;
    g[j] = 1.0f;
  }
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * L.chunk_rows, r1 = min(rows, r0 + L.chunk_rows);
  int64_t sample = -1;
#pragma unroll 2
  for (int64_t r = r0 + lr; r < r1; r += L.lanes_r) {
    const int64_t i = r * c + k0;
    if (gate && r / hw != sample) {
      sample = r / hw;
#pragma unroll
      for (int j = 0; j < V; ++j) g[j] = gate[sample * c + k0 + j];
    }
    float v[V], res[V];
    ldv<T, V>(x, i, v);
    if (residual) ldv<T, V>(residual, i, res);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float z = (v[j] * scale[j] + shift[j]) * g[j];
      if (residual) z += res[j];
      v[j] = relu ? relu_keep_nan(z) : z;
    }
    stv<T, V>(y, i, v);
  }
}

// dx (+)= A * (g * dpre + dpool / hw) + P * (x - mean) + Q: A = w invstd, P = -A invstd dweight / rows,
// Q = -A dbias / rows (P = Q = 0 in evaluation mode).
template <typename T, int V>
__global__ void __launch_bounds__(kThreads) fused_bn_backward_data_kernel(
    const T* __restrict__ dy, const T* __restrict__ y, const T* __restrict__ x, int64_t rows, int64_t hw, int64_t c,
    RowLayout L, const float* __restrict__ mean, const float* __restrict__ var, float eps,
    const float* __restrict__ w, const float* __restrict__ gate, const float* __restrict__ dpool,
    const float* __restrict__ dbias, const float* __restrict__ dweight, bool relu, bool training, bool accumulate,
    T* __restrict__ dx) {
  const int t = threadIdx.x, lc = t % L.lanes_c, lr = t / L.lanes_c;
  const int64_t k0 = (static_cast<int64_t>(blockIdx.y) * L.lanes_c + lc) * V;
  if (lr >= L.lanes_r || k0 >= c) return;
  const float inv_rows = 1.0f / static_cast<float>(rows), inv_hw = 1.0f / static_cast<float>(hw);
  float A[V], P[V], M[V], Q[V], g[V], e[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t k = k0 + j;
    const float invstd = 1.0f / sqrtf(var[k] + eps), a = (w ? w[k] : 1.0f) * invstd;
    A[j] = a;
    M[j] = mean[k];
    P[j] = training ? -a * invstd * dweight[k] * inv_rows : 0.0f;
    Q[j] = training ? -a * dbias[k] * inv_rows : 0.0f;
    g[j] = 1.0f;
    e[j] = Q[j];
  }
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * L.chunk_rows, r1 = min(rows, r0 + L.chunk_rows);
  int64_t sample = -1;
#pragma unroll 2
  for (int64_t r = r0 + lr; r < r1; r += L.lanes_r) {
    const int64_t i = r * c + k0;
    if ((gate || dpool) && r / hw != sample) {
      sample = r / hw;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        g[j] = gate ? gate[sample * c + k0 + j] : 1.0f;
        e[j] = (dpool ? A[j] * dpool[sample * c + k0 + j] * inv_hw : 0.0f) + Q[j];
      }
    }
    float d[V], xv[V], yv[V], out[V];
    ldv<T, V>(dy, i, d);
    if (relu) ldv<T, V>(y, i, yv);
    if (training) ldv<T, V>(x, i, xv);
    if (accumulate) ldv<T, V>(dx, i, out);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float dp = relu && !(yv[j] > 0.0f) ? 0.0f : d[j];
      float v = A[j] * dp * g[j] + e[j];
      if (training) v += P[j] * (xv[j] - M[j]);
      out[j] = accumulate ? out[j] + v : v;
    }
    stv<T, V>(dx, i, out);
  }
}

__global__ void fused_bn_backward_finish_kernel(int64_t n, int64_t hw, int64_t c, const float* __restrict__ s0,
                                                const float* __restrict__ s1, const float* __restrict__ gate,
                                                const float* __restrict__ dpool, const float* __restrict__ sample_sum,
                                                const float* __restrict__ mean, const float* __restrict__ var,
                                                float eps, const float* __restrict__ w, const float* __restrict__ b,
                                                float* __restrict__ dgate, float* __restrict__ dbias,
                                                float* __restrict__ dweight) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= c) return;
  const int64_t ns = gate || dpool ? n : 1;
  const double invstd = 1.0 / sqrt(static_cast<double>(var[k]) + eps);
  const double wk = w ? w[k] : 1.0, bk = b ? b[k] : 0.0;
  double db = 0, dw = 0;
  for (int64_t s = 0; s < ns; ++s) {
    const int64_t j = s * c + k;
    const double a0 = s0[j], a1 = s1[j], g = gate ? gate[j] : 1.0;
    if (dgate) dgate[j] = static_cast<float>(wk * a1 + bk * a0);
    db += g * a0;
    dw += g * a1;
    if (dpool) {
      const double xhat_sum = (static_cast<double>(sample_sum[j]) - static_cast<double>(hw) * mean[k]) * invstd;
      db += dpool[j];
      dw += dpool[j] / static_cast<double>(hw) * xhat_sum;
    }
  }
  if (dbias) dbias[k] = static_cast<float>(db);
  if (dweight) dweight[k] = static_cast<float>(dw);
}

// The reduce pass, then its per-(sample, channel) double sums in q0 = scratch + 2 n chunks c floats, q1 after
// it (scratch layout: float partials p0, p1 [n chunks c] each, then double q0, q1 [n c] each).
template <typename T, int V, int MODE>
void launch_reduce(const T* x, const T* dy, const T* y, T* dres, int64_t n, int64_t hw, int64_t c, const float* mean,
                   bool relu, float* scratch, const double** q0, const double** q1, cudaStream_t stream) {
  const Geometry g = geometry(n, hw, c, V);
  const dim3 grid(static_cast<unsigned>(n * g.chunks), static_cast<unsigned>(g.tiles));
  float* p0 = scratch;
  float* p1 = scratch + n * g.chunks * c;
  fused_bn_reduce_kernel<T, V, MODE><<<grid, kThreads, 0, stream>>>(x, dy, y, dres, hw, c, g.lanes_c, g.lanes_r,
                                                                    g.chunks, g.chunk_rows, mean, relu, p0, p1);
  PNEUMO_LAUNCH_CHECK("fused_bn_reduce_kernel");
  double* d0 = reinterpret_cast<double*>(scratch + 2 * n * g.chunks * c);
  double* d1 = d0 + n * c;
  fused_bn_sample_sums_kernel<<<dim3(static_cast<unsigned>(n), static_cast<unsigned>((c + 31) / 32)), kThreads, 0,
                                stream>>>(c, g.chunks, p0, p1, d0, d1);
  PNEUMO_LAUNCH_CHECK("fused_bn_sample_sums_kernel");
  *q0 = d0;
  *q1 = d1;
}

// Row chunks of the elementwise kernels: about kTargetBlocks * 2 blocks, at least 4 rows per thread.
RowLayout row_layout(int64_t rows, int64_t c, int vec, dim3* grid) {
  const Geometry g = geometry(1, rows, c, vec);
  RowLayout L{g.lanes_c, g.lanes_r, 1};
  const int64_t max_chunks = std::max<int64_t>(1, rows / (int64_t{4} * g.lanes_r));
  const int64_t chunks = std::min(max_chunks, std::max<int64_t>(1, 2 * kTargetBlocks / g.tiles));
  L.chunk_rows = (rows + chunks - 1) / chunks;
  *grid = dim3(static_cast<unsigned>((rows + L.chunk_rows - 1) / L.chunk_rows), static_cast<unsigned>(g.tiles));
  return L;
}

void check_shape(const char* what, int64_t n, int64_t hw, int64_t c) {
  PNEUMO_CHECK(n > 0 && hw > 0 && c > 0, "kernels::cuda::", what, ": empty input [", n, ", ", hw, ", ", c, "]");
  // Division, not n * hw * c / c, which overflows first (undefined, and folded away by the compiler).
  PNEUMO_CHECK(hw <= INT64_MAX / n && c <= INT64_MAX / (n * hw), "kernels::cuda::", what, ": size overflow");
}


}  // namespace

int64_t fused_bn_scratch_floats(DType dt, int64_t n, int64_t hw, int64_t c) {
  const int vec = dt == DType::BF16 ? kVecWidth<Bf16> : kVecWidth<float>;
  // The vector geometry only where the launchers can take it: C = 3 in float32 has no 4-wide lane.
  int64_t chunks = geometry(n, hw, c, 1).chunks;
  if (c % vec == 0) chunks = std::max(chunks, geometry(n, hw, c, vec).chunks);
  return 2 * n * chunks * c + 4 * n * c;  // float partials, then the double per-sample sums (8-byte aligned)
}

void fused_bn_statistics(DType dt, const void* x, int64_t n, int64_t hw, int64_t c, float* mean, float* var,
                         float* sample_sum, float* scratch, cudaStream_t stream) {
  check_shape("fused_bn_statistics", n, hw, c);
  dispatch_f32_bf16(dt, "fused_bn_statistics", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x);
    const double *q0 = nullptr, *q1 = nullptr;
    if (vec_ok<T>(c, {x}))
      launch_reduce<T, kVecWidth<T>, kStats>(xp, nullptr, nullptr, nullptr, n, hw, c, nullptr, false, scratch, &q0, &q1,
                                             stream);
    else
      launch_reduce<T, 1, kStats>(xp, nullptr, nullptr, nullptr, n, hw, c, nullptr, false, scratch, &q0, &q1, stream);
    fused_bn_stats_finish_kernel<T><<<blocks_exact(c), kThreads, 0, stream>>>(xp, n, hw, c, q0, q1, mean, var,
                                                                               sample_sum);
    PNEUMO_LAUNCH_CHECK("fused_bn_stats_finish_kernel");
  });
}

void fused_bn_pool(const float* sample_sum, int64_t n, int64_t hw, int64_t c, const float* mean, const float* var,
                   double eps, const float* w, const float* b, float* pooled, cudaStream_t stream) {
  check_shape("fused_bn_pool", n, hw, c);
  fused_bn_pool_kernel<<<blocks_exact(n * c), kThreads, 0, stream>>>(sample_sum, n, hw, c, mean, var,
                                                                      static_cast<float>(eps), w, b, pooled);
  PNEUMO_LAUNCH_CHECK("fused_bn_pool_kernel");
}

void fused_bn_apply(DType dt, const void* x, int64_t n, int64_t hw, int64_t c, const float* mean, const float* var,
                    double eps, const float* w, const float* b, const float* gate, const void* residual, bool relu,
                    void* y, cudaStream_t stream) {
  check_shape("fused_bn_apply", n, hw, c);
  const int64_t rows = n * hw;
  dispatch_f32_bf16(dt, "fused_bn_apply", [&](auto tag) {
    using T = decltype(tag);
    const T *xp = static_cast<const T*>(x), *rp = static_cast<const T*>(residual);
    T* yp = static_cast<T*>(y);
    dim3 grid;
    if (vec_ok<T>(c, {x, residual, y})) {
      constexpr int V = kVecWidth<T>;
      const RowLayout L = row_layout(rows, c, V, &grid);
      fused_bn_apply_kernel<T, V><<<grid, kThreads, 0, stream>>>(xp, rows, hw, c, L, mean, var, static_cast<float>(eps),
                                                                 w, b, gate, rp, relu, yp);
    } else {
      const RowLayout L = row_layout(rows, c, 1, &grid);
      fused_bn_apply_kernel<T, 1><<<grid, kThreads, 0, stream>>>(xp, rows, hw, c, L, mean, var, static_cast<float>(eps),
                                                                 w, b, gate, rp, relu, yp);
    }
    PNEUMO_LAUNCH_CHECK("fused_bn_apply_kernel");
  });
}

void fused_bn_backward_reduce(DType dt, const void* dy, const void* y, const void* x, int64_t n, int64_t hw, int64_t c,
                              const float* mean, const float* var, double eps, bool relu, bool per_sample, float* s0,
                              float* s1, void* dres, float* scratch, cudaStream_t stream) {
  check_shape("fused_bn_backward_reduce", n, hw, c);
  PNEUMO_CHECK(!relu || y, "kernels::cuda::fused_bn_backward_reduce: the ReLU mask needs the forward output y");
  dispatch_f32_bf16(dt, "fused_bn_backward_reduce", [&](auto tag) {
    using T = decltype(tag);
    const T *dyp = static_cast<const T*>(dy), *yp = static_cast<const T*>(y), *xp = static_cast<const T*>(x);
    T* dr = static_cast<T*>(dres);
    const double *q0 = nullptr, *q1 = nullptr;
    if (vec_ok<T>(c, {dy, relu ? y : nullptr, x, dres}))
      launch_reduce<T, kVecWidth<T>, kBackward>(xp, dyp, yp, dr, n, hw, c, mean, relu, scratch, &q0, &q1, stream);
    else
      launch_reduce<T, 1, kBackward>(xp, dyp, yp, dr, n, hw, c, mean, relu, scratch, &q0, &q1, stream);
    fused_bn_backward_sums_kernel<<<blocks_exact(c), kThreads, 0, stream>>>(n, c, q0, q1, var, static_cast<float>(eps),
                                                                            per_sample, s0, s1);
    PNEUMO_LAUNCH_CHECK("fused_bn_backward_sums_kernel");
  });
}

void fused_bn_backward_finish(int64_t n, int64_t hw, int64_t c, const float* s0, const float* s1, const float* gate,
                              const float* dpool, const float* sample_sum, const float* mean, const float* var,
                              double eps, const float* w, const float* b, float* dgate, float* dbias, float* dweight,
                              cudaStream_t stream) {
  check_shape("fused_bn_backward_finish", n, hw, c);
  PNEUMO_CHECK(!dgate || gate || dpool, "kernels::cuda::fused_bn_backward_finish: dgate needs per-sample sums");
  PNEUMO_CHECK(!dpool || sample_sum, "kernels::cuda::fused_bn_backward_finish: dpool needs the sample sums");
  fused_bn_backward_finish_kernel<<<blocks_exact(c), kThreads, 0, stream>>>(
      n, hw, c, s0, s1, gate, dpool, sample_sum, mean, var, static_cast<float>(eps), w, b, dgate, dbias, dweight);
  PNEUMO_LAUNCH_CHECK("fused_bn_backward_finish_kernel");
}

void fused_bn_backward_data(DType dt, const void* dy, const void* y, const void* x, int64_t n, int64_t hw, int64_t c,
                            const float* mean, const float* var, double eps, const float* w, const float* gate,
                            const float* dpool, const float* dbias, const float* dweight, bool relu, bool training,
                            bool accumulate, void* dx, cudaStream_t stream) {
  check_shape("fused_bn_backward_data", n, hw, c);
  PNEUMO_CHECK(!relu || y, "kernels::cuda::fused_bn_backward_data: the ReLU mask needs the forward output y");
  PNEUMO_CHECK(!training || (dbias && dweight), "kernels::cuda::fused_bn_backward_data: training needs dbias, dweight");
  const int64_t rows = n * hw;
  dispatch_f32_bf16(dt, "fused_bn_backward_data", [&](auto tag) {
    using T = decltype(tag);
    const T *dyp = static_cast<const T*>(dy), *yp = static_cast<const T*>(y), *xp = static_cast<const T*>(x);
    T* dxp = static_cast<T*>(dx);
    dim3 grid;
    if (vec_ok<T>(c, {dy, relu ? y : nullptr, x, dx})) {
      constexpr int V = kVecWidth<T>;
      const RowLayout L = row_layout(rows, c, V, &grid);
      fused_bn_backward_data_kernel<T, V><<<grid, kThreads, 0, stream>>>(
          dyp, yp, xp, rows, hw, c, L, mean, var, static_cast<float>(eps), w, gate, dpool, dbias, dweight, relu,
          training, accumulate, dxp);
    } else {
      const RowLayout L = row_layout(rows, c, 1, &grid);
      fused_bn_backward_data_kernel<T, 1><<<grid, kThreads, 0, stream>>>(
          dyp, yp, xp, rows, hw, c, L, mean, var, static_cast<float>(eps), w, gate, dpool, dbias, dweight, relu,
          training, accumulate, dxp);
    }
    PNEUMO_LAUNCH_CHECK("fused_bn_backward_data_kernel");
  });
}

}  // namespace pneumo::kernels::cuda
