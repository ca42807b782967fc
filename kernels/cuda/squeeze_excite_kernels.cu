// Fused squeeze-excite on NHWC, CUDA (contract in squeeze_excite_kernels.h). Forward: (1) per-(n, split, c)
// partial sums of x over a range of pixels, one warp reading 32 x W consecutive channels of a pixel;
// (2) the pool finished in a fixed order; FC1 one warp per hidden unit (shuffle sums); (3) FC2 + sigmoid,
// one thread per channel; (4) y = x * gate, vectorised. Backward: (1) partial sums of x and dy*x in one pass;
// (2)-(3) the gate recomputed, with dz2; then dz1 (a warp per hidden unit) and dpooled (a thread per
// channel); weight gradients summed over samples in order (one thread per weight); dx = dy * gate +
// dpooled / HW, vectorised.
// No atomics anywhere: every sum has a fixed order, so the results are bit-reproducible.
#include "kernels/cuda/squeeze_excite_kernels.h"

#include <algorithm>

#include "kernels/cuda/cuda_util.cuh"

namespace pneumo::kernels::cuda {
namespace {


// Channels per thread in the pool and scale passes: 4 for both dtypes (16 bytes of float32, 8 of bfloat16).
// For bfloat16, 4 beat 8 channels (16 bytes) on an H200 (4x256x256x256: forward 0.136 vs 0.152 ms, backward
// 0.193 vs 0.267 ms; bench/results/h200-se-bf16-width-*.json), so only the 4-wide path is kept.
template <typename T>
constexpr int kSeWidth = 4;
__device__ __forceinline__ void se_load(const float* p, int64_t i, float* out) { load4(p, i, out); }
__device__ __forceinline__ void se_store(float* p, int64_t i, const float* v) { store4(p, i, v); }
__device__ __forceinline__ void se_load(const Bf16* p, int64_t i, float* out) { load4(p, i, out); }
__device__ __forceinline__ void se_store(Bf16* p, int64_t i, const float* v) { store4(p, i, v); }

constexpr int kPoolLanes = 32;  // threads across channels
constexpr int kPoolRows = 8;    // threads across pixels
constexpr int kTargetBlocks = 1024;

struct SeLayout {
  int64_t splits, rows_per_split;
  size_t partial_x, partial_dyx, pooled, dgate, gate, dz2, dpooled, z1, h, dz1, total;
};

// vec_width: channels per pool thread (kSeWidth<T>); the pixel splits are chosen so that
// the pool grid has about kTargetBlocks blocks whatever the channel-group count.
SeLayout se_layout(int64_t N, int64_t HW, int64_t C, int64_t R, int vec_width) {
  SeLayout L{};
  const int64_t groups = (C + kPoolLanes * vec_width - 1) / (kPoolLanes * vec_width);
  int64_t splits = (kTargetBlocks + N * groups - 1) / (N * groups);
  splits = std::max<int64_t>(1, std::min(splits, (HW + 63) / 64));  // at least 64 pixels per split
  L.rows_per_split = (HW + splits - 1) / splits;
  L.splits = (HW + L.rows_per_split - 1) / L.rows_per_split;
  size_t off = 0;
  auto take = [&](size_t floats) {
    size_t at = off;
    off += align256(floats * sizeof(float));
    return at;
  };
  L.partial_x = take(N * L.splits * C);
  L.partial_dyx = take(N * L.splits * C);
  L.pooled = take(N * C);
  L.dgate = take(N * C);
  L.gate = take(N * C);
  L.dz2 = take(N * C);
  L.dpooled = take(N * C);
  L.z1 = take(N * R);
  L.h = take(N * R);
  L.dz1 = take(N * R);
  L.total = off;
  return L;
}

// Partial sums over pixels [s * rows, (s+1) * rows) of sample n for the block's channels:
// partial_x[n, s, c] = sum x; partial_dyx[n, s, c] = sum dy * x (when dy is given). Each thread owns
// W = kSeWidth<T> consecutive channels, read as one vector when `vec`.
template <typename T>
__global__ void se_pool_kernel(const T* __restrict__ x, const T* __restrict__ dy, int64_t HW, int64_t C,
                               int64_t splits, int64_t rows, bool vec, float* __restrict__ partial_x,
                               float* __restrict__ partial_dyx) {
  constexpr int W = kSeWidth<T>;
  __shared__ float sx[kPoolRows][kPoolLanes * W];
  __shared__ float sdyx[kPoolRows][kPoolLanes * W];
  const int64_t n = blockIdx.z, s = blockIdx.y;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kPoolLanes * W + threadIdx.x * W;
  const int64_t p_begin = s * rows, p_end = min(HW, p_begin + rows);
  float ax[W], adyx[W];
  for (int k = 0; k < W; ++k) ax[k] = adyx[k] = 0.0f;
  if (c0 < C) {
    const int64_t base = n * HW * C;
    for (int64_t p = p_begin + threadIdx.y; p < p_end; p += kPoolRows) {
      const int64_t i = base + p * C + c0;
      float xv[W], dv[W];
      if (vec) {
        se_load(x, i, xv);
        if (dy) se_load(dy, i, dv);
      } else {
        for (int k = 0; k < W; ++k) {
          const bool in = c0 + k < C;
          xv[k] = in ? load_f(x, i + k) : 0.0f;
          dv[k] = in && dy ? load_f(dy, i + k) : 0.0f;
        }
      }
      for (int k = 0; k < W; ++k) {
        ax[k] += xv[k];
        if (dy) adyx[k] += dv[k] * xv[k];
      }
    }
  }
  for (int k = 0; k < W; ++k) {
    sx[threadIdx.y][threadIdx.x * W + k] = ax[k];
    sdyx[threadIdx.y][threadIdx.x * W + k] = adyx[k];
  }
  __syncthreads();
  // Thread row 0 sums the kPoolRows partials of each of its channels in order.
  if (threadIdx.y == 0 && c0 < C) {
    for (int k = 0; k < W && c0 + k < C; ++k) {
      float tx = 0.0f, tdyx = 0.0f;
      for (int r = 0; r < kPoolRows; ++r) {
        tx += sx[r][threadIdx.x * W + k];
        tdyx += sdyx[r][threadIdx.x * W + k];
      }
      const int64_t o = (n * splits + s) * C + c0 + k;
      partial_x[o] = tx;
      if (dy) partial_dyx[o] = tdyx;
    }
  }
}

__device__ __forceinline__ float act_forward(int act, float z) { return act == 0 ? fmaxf(z, 0.0f) : z * sigmoidf_(z); }
__device__ __forceinline__ float act_grad(int act, float z) {
  if (act == 0) return z > 0.0f ? 1.0f : 0.0f;
  const float s = sigmoidf_(z);
  return s * (1.0f + z * (1.0f - s));
}

// The small per-sample work is spread over many blocks (grid y = sample) so that a deep layer (C = 2048,
// R = 128) does not run on N blocks: FC1 one warp per hidden unit, FC2 and the channel-wise steps one thread
// per channel. Every sum runs in a fixed order.
constexpr int kFcThreads = 256;
constexpr int kFcWarps = kFcThreads / 32;

// Finishes the pool: pooled[n, c] = (sum_s partial_x[n, s, c]) / HW and, with partial_dyx (backward),
// dgate[n, c] = sum_s partial_dyx[n, s, c]. Block (32 channels, 8 split rows): each thread sums every 8th
// split, then thread row 0 adds the 8 row sums in order: short dependency chains, a fixed order.
__global__ void se_finish_pool_kernel(const float* __restrict__ partial_x, const float* __restrict__ partial_dyx,
                                      int64_t HW, int64_t C, int64_t splits, float* __restrict__ pooled,
                                      float* __restrict__ dgate) {
  __shared__ float sx[8][33], sd[8][33];
  const int64_t n = blockIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float ax = 0.0f, ad = 0.0f;
  if (c < C) {
    for (int64_t k = threadIdx.y; k < splits; k += 8) {
      ax += partial_x[(n * splits + k) * C + c];
      if (partial_dyx) ad += partial_dyx[(n * splits + k) * C + c];
    }
  }
  sx[threadIdx.y][threadIdx.x] = ax;
  sd[threadIdx.y][threadIdx.x] = ad;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  float tx = 0.0f, td = 0.0f;
  for (int r = 0; r < 8; ++r) {
    tx += sx[r][threadIdx.x];
    td += sd[r][threadIdx.x];
  }
  pooled[n * C + c] = tx / static_cast<float>(HW);
  if (partial_dyx) dgate[n * C + c] = td;
}

// For the block's 8 hidden units (a warp each): z1 = W1 pooled + b1 and h = act(z1).
template <typename T>
__global__ void se_fc1_kernel(const float* __restrict__ pooled, const T* __restrict__ w1, const T* __restrict__ b1,
                              int64_t C, int64_t R, int act, float* __restrict__ z1, float* __restrict__ h) {
  extern __shared__ float pooled_s[];
  const int64_t n = blockIdx.y;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) pooled_s[c] = pooled[n * C + c];
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kFcWarps + (threadIdx.x >> 5);
  if (r >= R) return;
  float z = 0.0f;
  for (int64_t c = lane; c < C; c += 32) z += load_f(w1, r * C + c) * pooled_s[c];
  z = warp_sum(z);
  if (lane == 0) {
    z += load_f(b1, r);
    z1[n * R + r] = z;
    h[n * R + r] = act_forward(act, z);
  }
}

// gate[n, c] = sigmoid(W2 h + b2) for the block's 256 channels; with dgate (backward) also
// dz2[n, c] = dgate * g * (1 - g), dgate = sum_hw dy x.
template <typename T>
__global__ void se_fc2_kernel(const float* __restrict__ h, const T* __restrict__ w2, const T* __restrict__ b2,
                              const float* __restrict__ dgate, int64_t C, int64_t R, float* __restrict__ gate,
                              float* __restrict__ dz2) {
  extern __shared__ float h_s[];
  const int64_t n = blockIdx.y;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) h_s[r] = h[n * R + r];
  __syncthreads();
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float z = load_f(b2, c);
  for (int64_t r = 0; r < R; ++r) z += load_f(w2, c * R + r) * h_s[r];
  const float g = sigmoidf_(z);
  gate[n * C + c] = g;
  if (dgate) dz2[n * C + c] = dgate[n * C + c] * g * (1.0f - g);
}

// Backward, one warp per hidden unit: dz1[n, r] = (sum_c W2[c, r] dz2[n, c]) * act'(z1[n, r]).
template <typename T>
__global__ void se_dh_kernel(const float* __restrict__ dz2, const float* __restrict__ z1, const T* __restrict__ w2,
                             int64_t C, int64_t R, int act, float* __restrict__ dz1) {
  const int64_t n = blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kFcWarps + (threadIdx.x >> 5);
  if (r >= R) return;
  float dh = 0.0f;
  for (int64_t c = lane; c < C; c += 32) dh += load_f(w2, c * R + r) * dz2[n * C + c];
  dh = warp_sum(dh);
  if (lane == 0) dz1[n * R + r] = dh * act_grad(act, z1[n * R + r]);
}

// Backward, one thread per channel: dpooled[n, c] / HW = (sum_r W1[r, c] dz1[n, r]) / HW.
template <typename T>
__global__ void se_dpooled_kernel(const float* __restrict__ dz1, const T* __restrict__ w1, int64_t HW, int64_t C,
                                  int64_t R, float* __restrict__ dpooled) {
  extern __shared__ float dz1_s[];
  const int64_t n = blockIdx.y;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) dz1_s[r] = dz1[n * R + r];
  __syncthreads();
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float dp = 0.0f;
  for (int64_t r = 0; r < R; ++r) dp += load_f(w1, r * C + c) * dz1_s[r];
  dpooled[n * C + c] = dp / static_cast<float>(HW);
}

// out = a * gate[n, c] (+ add[n, c]) over one sample per blockIdx.y (forward: a = x; backward: a = dy, add =
// dpooled / HW). Indices inside a sample are 32-bit (HWC < 2^31 is checked on the host): the channel of an
// element is a 32-bit modulo, cheap next to the memory traffic.
template <typename T>
__global__ void se_scale_kernel(const T* __restrict__ a, const float* __restrict__ gate,
                                const float* __restrict__ add, uint32_t HWC, uint32_t C, bool vec,
                                T* __restrict__ out) {
  constexpr int W = kSeWidth<T>;
  const int64_t n = blockIdx.y;
  const T* an = a + n * HWC;
  T* on = out + n * HWC;
  const float* gn = gate + n * C;
  const float* dn = add ? add + n * C : nullptr;
  const uint32_t stride = gridDim.x * blockDim.x;
  const uint32_t tid = blockIdx.x * blockDim.x + threadIdx.x;
  if (vec) {
    for (uint32_t u = tid; u < HWC / W; u += stride) {
      const uint32_t j = u * W, c = j % C;  // C % W == 0: channels c..c+W-1 of one pixel
      float v[W];
      se_load(an, j, v);
      for (int k = 0; k < W; ++k) v[k] = dn ? v[k] * gn[c + k] + dn[c + k] : v[k] * gn[c + k];
      se_store(on, j, v);
    }
    return;
  }
  for (uint32_t j = tid; j < HWC; j += stride) {
    const uint32_t c = j % C;
    store_f(on, j, dn ? load_f(an, j) * gn[c] + dn[c] : load_f(an, j) * gn[c]);
  }
}

// One thread per weight: sums over the N samples in order.
template <typename T>
__global__ void se_weight_grad_kernel(const float* __restrict__ pooled, const float* __restrict__ h,
                                      const float* __restrict__ dz2, const float* __restrict__ dz1, int64_t N,
                                      int64_t C, int64_t R, T* __restrict__ dw1, T* __restrict__ db1,
                                      T* __restrict__ dw2, T* __restrict__ db2) {
  const int64_t total = 2 * R * C + R + C;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    if (i < R * C) {  // dw1[r, c] = sum_n dz1[n, r] pooled[n, c]
      const int64_t r = i / C, c = i % C;
      for (int64_t n = 0; n < N; ++n) s += dz1[n * R + r] * pooled[n * C + c];
      store_f(dw1, i, s);
    } else if (i < 2 * R * C) {  // dw2[c, r] = sum_n dz2[n, c] h[n, r]
      const int64_t j = i - R * C, c = j / R, r = j % R;
      for (int64_t n = 0; n < N; ++n) s += dz2[n * C + c] * h[n * R + r];
      store_f(dw2, j, s);
    } else if (i < 2 * R * C + R) {
      const int64_t r = i - 2 * R * C;
      for (int64_t n = 0; n < N; ++n) s += dz1[n * R + r];
      store_f(db1, r, s);
    } else {
      const int64_t c = i - 2 * R * C - R;
      for (int64_t n = 0; n < N; ++n) s += dz2[n * C + c];
      store_f(db2, c, s);
    }
  }
}

int elementwise_blocks(int64_t work) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((work + 255) / 256, 65535 * 8)));
}

template <typename T>
void se_run(bool backward, const void* x_, const void* dy_, const void* w1_, const void* b1_, const void* w2_,
            const void* b2_, int64_t N, int64_t HW, int64_t C, int64_t R, int act, void* out_, void* dw1, void* db1,
            void* dw2, void* db2, void* workspace, cudaStream_t stream) {
  const T* x = static_cast<const T*>(x_);
  const T* dy = static_cast<const T*>(dy_);
  constexpr int W = kSeWidth<T>;
  const SeLayout L = se_layout(N, HW, C, R, W);
  char* ws = static_cast<char*>(workspace);
  auto F = [&](size_t off) { return reinterpret_cast<float*>(ws + off); };
  const bool vec = C % W == 0 && aligned16(x) && aligned16(dy) &&
                   aligned16(out_);
  const dim3 pool_grid(static_cast<unsigned>((C + kPoolLanes * W - 1) / (kPoolLanes * W)),
                       static_cast<unsigned>(L.splits), static_cast<unsigned>(N));
  se_pool_kernel<T><<<pool_grid, dim3(kPoolLanes, kPoolRows), 0, stream>>>(
      x, backward ? dy : nullptr, HW, C, L.splits, L.rows_per_split, vec, F(L.partial_x), F(L.partial_dyx));
  PNEUMO_LAUNCH_CHECK("se_pool_kernel");
  const T* w1 = static_cast<const T*>(w1_);
  const T* w2 = static_cast<const T*>(w2_);
  const unsigned r_blocks = static_cast<unsigned>((R + kFcWarps - 1) / kFcWarps);
  const unsigned c_blocks = static_cast<unsigned>((C + kFcThreads - 1) / kFcThreads);
  se_finish_pool_kernel<<<dim3(static_cast<unsigned>((C + 31) / 32), static_cast<unsigned>(N)), dim3(32, 8), 0,
                          stream>>>(F(L.partial_x), backward ? F(L.partial_dyx) : nullptr, HW, C, L.splits,
                                    F(L.pooled), F(L.dgate));
  PNEUMO_LAUNCH_CHECK("se_finish_pool_kernel");
  se_fc1_kernel<T><<<dim3(r_blocks, static_cast<unsigned>(N)), kFcThreads, C * sizeof(float), stream>>>(
      F(L.pooled), w1, static_cast<const T*>(b1_), C, R, act, F(L.z1), F(L.h));
  PNEUMO_LAUNCH_CHECK("se_fc1_kernel");
  se_fc2_kernel<T><<<dim3(c_blocks, static_cast<unsigned>(N)), kFcThreads, R * sizeof(float), stream>>>(
      F(L.h), w2, static_cast<const T*>(b2_), backward ? F(L.dgate) : nullptr, C, R, F(L.gate), F(L.dz2));
  PNEUMO_LAUNCH_CHECK("se_fc2_kernel");
  if (backward) {
    se_dh_kernel<T><<<dim3(r_blocks, static_cast<unsigned>(N)), kFcThreads, 0, stream>>>(F(L.dz2), F(L.z1), w2, C, R,
                                                                                          act, F(L.dz1));
    PNEUMO_LAUNCH_CHECK("se_dh_kernel");
    se_dpooled_kernel<T><<<dim3(c_blocks, static_cast<unsigned>(N)), kFcThreads, R * sizeof(float), stream>>>(
        F(L.dz1), w1, HW, C, R, F(L.dpooled));
    PNEUMO_LAUNCH_CHECK("se_dpooled_kernel");
  }
  if (backward) {
    se_weight_grad_kernel<T><<<elementwise_blocks(2 * R * C + R + C), 256, 0, stream>>>(
        F(L.pooled), F(L.h), F(L.dz2), F(L.dz1), N, C, R, static_cast<T*>(dw1), static_cast<T*>(db1),
        static_cast<T*>(dw2), static_cast<T*>(db2));
    PNEUMO_LAUNCH_CHECK("se_weight_grad_kernel");
  }
  const int64_t per_sample = HW * C;
  const int64_t units = vec ? per_sample / W : per_sample;
  const dim3 scale_grid(static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((units + 255) / 256,
                                                                                      std::max<int64_t>(1, 2048 / N)))),
                        static_cast<unsigned>(N));
  se_scale_kernel<T><<<scale_grid, 256, 0, stream>>>(backward ? dy : x, F(L.gate), backward ? F(L.dpooled) : nullptr,
                                                     static_cast<uint32_t>(per_sample), static_cast<uint32_t>(C), vec,
                                                     static_cast<T*>(out_));
  PNEUMO_LAUNCH_CHECK("se_scale_kernel");
}

void check_args(DType dt, int64_t N, int64_t HW, int64_t C, int64_t R, int act) {
  PNEUMO_CHECK(dt == DType::F32 || dt == DType::BF16, "squeeze_excite (CUDA): dtype ", dtype_name(dt),
               " not supported (F32, BF16)");
  PNEUMO_CHECK(act == 0 || act == 1, "squeeze_excite: activation code ", act);
  PNEUMO_CHECK(N > 0 && HW > 0 && C > 0 && R > 0 && N <= 65535 && HW <= 65535 * 64 && HW * C < (int64_t(1) << 31),
               "squeeze_excite (CUDA): sizes N ", N, " HW ", HW, " C ", C, " R ", R,
               " (N <= 65535 and H*W*C < 2^31 per sample)");
  PNEUMO_CHECK(C <= 12288 && R <= 12288, "squeeze_excite (CUDA): C ", C, " / R ", R,
               " above 12288 (the pooled vector lives in 48 KB of shared memory)");
}

}  // namespace

size_t squeeze_excite_workspace_bytes(int64_t batch, int64_t hw, int64_t channels, int64_t reduced) {
  return std::max(se_layout(batch, hw, channels, reduced, 4).total, se_layout(batch, hw, channels, reduced, 8).total);
}

void squeeze_excite_forward(DType dt, const void* x, const void* w1, const void* b1, const void* w2, const void* b2,
                            int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act_code, void* y,
                            void* workspace, cudaStream_t stream) {
  const int act = static_cast<int>(act_code);
  check_args(dt, batch, hw, channels, reduced, act);
  if (dt == DType::F32)
    se_run<float>(false, x, nullptr, w1, b1, w2, b2, batch, hw, channels, reduced, act, y, nullptr, nullptr, nullptr,
                  nullptr, workspace, stream);
  else
    se_run<Bf16>(false, x, nullptr, w1, b1, w2, b2, batch, hw, channels, reduced, act, y, nullptr, nullptr, nullptr,
                 nullptr, workspace, stream);
}

void squeeze_excite_backward(DType dt, const void* x, const void* dy, const void* w1, const void* b1, const void* w2,
                             const void* b2, int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act_code,
                             void* dx, void* dw1, void* db1, void* dw2, void* db2, void* workspace,
                             cudaStream_t stream) {
  const int act = static_cast<int>(act_code);
  check_args(dt, batch, hw, channels, reduced, act);
  if (dt == DType::F32)
    se_run<float>(true, x, dy, w1, b1, w2, b2, batch, hw, channels, reduced, act, dx, dw1, db1, dw2, db2, workspace,
                  stream);
  else
    se_run<Bf16>(true, x, dy, w1, b1, w2, b2, batch, hw, channels, reduced, act, dx, dw1, db1, dw2, db2, workspace,
                 stream);
}

}  // namespace pneumo::kernels::cuda
