// Fused losses on CUDA (contract in loss_kernels.h). BCE/focal: a grid-stride pass computing each element's
// loss into per-block partial sums, one block finishing them in order and dividing by n; backward one
// elementwise pass. Dice: one pass over (sample, split) tiles for sum p t, sum p^2, sum t^2; a block per
// sample finishing (num, den), one thread the score and the clamped loss; backward one elementwise pass. The
// grid shapes depend only on the sizes (never on the device), so the sums are bit-reproducible.
#include "kernels/cuda/loss_kernels.h"

#include <algorithm>

#include "kernels/cuda/cuda_util.cuh"

namespace pneumo::kernels::cuda {
namespace {

constexpr int kMaxPartials = 1024;
constexpr float kDiceClampMax = 1.0f - 1e-7f;

__device__ __forceinline__ float softplusf_(float z) { return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z))); }

// Elementwise loss (value) and d loss / d x (grad) as on the CPU (loss_kernels.h), in float32.
__device__ __forceinline__ void binary_element(int kind, float gamma, float x, float t, float* value, float* grad) {
  const float bce = softplusf_(x) - x * t;
  const float dbce = sigmoidf_(x) - t;
  if (kind == 0) {
    *value = bce;
    *grad = dbce;
    return;
  }
  const float sign = 2.0f * t - 1.0f;
  const float z = -x * sign;
  const float w = expf(gamma * -softplusf_(-z));
  *value = bce * w;
  *grad = dbce * w + bce * w * gamma * sigmoidf_(-z) * (-sign);
}

int partial_blocks(int64_t n) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads * 8 - 1) / (kThreads * 8), kMaxPartials)));
}

// Grid-stride over 4-element units when `vec` (then n % 4 == 0), else over elements.
template <typename T>
__global__ void binary_loss_partial_kernel(int kind, float gamma, const T* __restrict__ x, const T* __restrict__ t,
                                           int64_t n, bool vec, float* __restrict__ partial) {
  __shared__ float scratch[32];
  float s = 0.0f;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  float v, g;
  if (vec) {
    for (int64_t u = tid; u < n / 4; u += stride) {
      float xv[4], tv[4];
      load4(x, u * 4, xv);
      load4(t, u * 4, tv);
      for (int k = 0; k < 4; ++k) {
        binary_element(kind, gamma, xv[k], tv[k], &v, &g);
        s += v;
      }
    }
  } else {
    for (int64_t i = tid; i < n; i += stride) {
      binary_element(kind, gamma, load_f(x, i), load_f(t, i), &v, &g);
      s += v;
    }
  }
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block: sum of `count` partials in a fixed order, times `scale`.
__global__ void finish_sum_kernel(const float* __restrict__ partial, int count, float scale, float* __restrict__ out) {
  __shared__ float scratch[32];
  float s = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s * scale;
}

template <typename T>
__global__ void binary_loss_backward_kernel(int kind, float gamma, const T* __restrict__ x, const T* __restrict__ t,
                                            int64_t n, bool vec, const float* __restrict__ grad_loss,
                                            T* __restrict__ dx) {
  const float scale = *grad_loss / static_cast<float>(n);
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  float v, g;
  if (vec) {
    for (int64_t u = tid; u < n / 4; u += stride) {
      float xv[4], tv[4], out[4];
      load4(x, u * 4, xv);
      load4(t, u * 4, tv);
      for (int k = 0; k < 4; ++k) {
        binary_element(kind, gamma, xv[k], tv[k], &v, &g);
        out[k] = g * scale;
      }
      store4(dx, u * 4, out);
    }
    return;
  }
  for (int64_t i = tid; i < n; i += stride) {
    binary_element(kind, gamma, load_f(x, i), load_f(t, i), &v, &g);
    store_f(dx, i, g * scale);
  }
}

// ---- dice ----
struct DiceLayout {
  int64_t splits, chunk;
};
DiceLayout dice_layout(int64_t B, int64_t M) {
  int64_t splits = std::max<int64_t>(1, std::min<int64_t>(kMaxPartials / std::max<int64_t>(B, 1), (M + 4095) / 4096));
  int64_t chunk = (M + splits - 1) / splits;
  chunk = (chunk + 3) / 4 * 4;  // keeps every tile 4-aligned for the vector path
  return {(M + chunk - 1) / chunk, chunk};
}

template <typename T>
__global__ void dice_partial_kernel(const T* __restrict__ x, const T* __restrict__ t, int64_t M, int64_t chunk,
                                    bool vec, float* __restrict__ partial) {
  __shared__ float scratch[32];
  const int64_t b = blockIdx.y, s = blockIdx.x, splits = gridDim.x;
  const int64_t begin = b * M + s * chunk, end = b * M + min(M, (s + 1) * chunk);
  float pt = 0.0f, pp = 0.0f, tt = 0.0f;
  if (vec) {
    for (int64_t i = begin + threadIdx.x * 4; i < end; i += blockDim.x * 4) {
      float xv[4], tv[4];
      load4(x, i, xv);
      load4(t, i, tv);
      for (int k = 0; k < 4; ++k) {
        const float p = sigmoidf_(xv[k]);
        pt += p * tv[k];
        pp += p * p;
        tt += tv[k] * tv[k];
      }
    }
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const float p = sigmoidf_(load_f(x, i)), tv = load_f(t, i);
      pt += p * tv;
      pp += p * p;
      tt += tv * tv;
    }
  }
  pt = block_sum(pt, scratch);
  pp = block_sum(pp, scratch);
  tt = block_sum(tt, scratch);
  if (threadIdx.x == 0) {
    float* o = partial + (b * splits + s) * 3;
    o[0] = pt, o[1] = pp, o[2] = tt;
  }
}

// One block per sample: its splits' partials summed in a fixed order -> num = sum p t + s,
// den = sum p^2 + sum t^2 + s.
__global__ void dice_sample_kernel(const float* __restrict__ partial, int64_t splits, float smooth,
                                   float* __restrict__ stats) {
  __shared__ float scratch[32];
  const int64_t b = blockIdx.x;
  float pt = 0.0f, pp = 0.0f, tt = 0.0f;
  for (int64_t s = threadIdx.x; s < splits; s += blockDim.x) {
    const float* o = partial + (b * splits + s) * 3;
    pt += o[0], pp += o[1], tt += o[2];
  }
  pt = block_sum(pt, scratch);
  pp = block_sum(pp, scratch);
  tt = block_sum(tt, scratch);
  if (threadIdx.x == 0) {
    stats[2 * b] = pt + smooth;
    stats[2 * b + 1] = pp + tt + smooth;
  }
}

// One thread: score = sum_b 2 num_b / den_b / B in order, and the clamped loss.
__global__ void dice_score_kernel(int64_t B, float* __restrict__ stats, float* __restrict__ loss) {
  if (threadIdx.x != 0) return;
  float score = 0.0f;
  for (int64_t b = 0; b < B; ++b) score += 2.0f * (stats[2 * b] / stats[2 * b + 1]);
  score /= static_cast<float>(B);
  stats[2 * B] = score;
  *loss = 1.0f - fminf(fmaxf(score, 0.0f), kDiceClampMax);
}

// One sample per blockIdx.y: its num/den are read once; 32-bit indices inside the sample (M < 2^31).
template <typename T>
__global__ void dice_backward_kernel(const T* __restrict__ x, const T* __restrict__ t, int64_t B, uint32_t M,
                                     bool vec, const float* __restrict__ stats, const float* __restrict__ grad_loss,
                                     T* __restrict__ dx) {
  const int64_t b = blockIdx.y;
  const float score = stats[2 * B];
  const bool passes = score >= 0.0f && score <= kDiceClampMax;
  const float outer = passes ? -2.0f * *grad_loss / static_cast<float>(B) : 0.0f;
  const float num = stats[2 * b], den = stats[2 * b + 1];
  const float coef = outer / (den * den), two_num = 2.0f * num;
  const T* xb = x + b * M;
  const T* tb = t + b * M;
  T* db = dx + b * M;
  const uint32_t stride = gridDim.x * blockDim.x, tid = blockIdx.x * blockDim.x + threadIdx.x;
  if (vec) {
    for (uint32_t u = tid; u < M / 4; u += stride) {
      float xv[4], tv[4], out[4];
      load4(xb, u * 4, xv);
      load4(tb, u * 4, tv);
      for (int k = 0; k < 4; ++k) {
        const float p = sigmoidf_(xv[k]);
        out[k] = coef * (tv[k] * den - two_num * p) * p * (1.0f - p);
      }
      store4(db, u * 4, out);
    }
    return;
  }
  for (uint32_t j = tid; j < M; j += stride) {
    const float p = sigmoidf_(load_f(xb, j)), tv = load_f(tb, j);
    store_f(db, j, coef * (tv * den - two_num * p) * p * (1.0f - p));
  }
}

template <typename T>
bool vec_ok(int64_t n, const void* a, const void* b, const void* c) {
  return n % 4 == 0 && vec4_aligned<T>(a) && vec4_aligned<T>(b) &&
         vec4_aligned<T>(c);
}

void check_dtype(const char* op, DType dt) {
  PNEUMO_CHECK(dt == DType::F32 || dt == DType::BF16, op, " (CUDA): dtype ", dtype_name(dt), " not supported (F32, BF16)");
}

}  // namespace

size_t binary_loss_workspace_bytes(int64_t) { return kMaxPartials * sizeof(float); }

void binary_loss_forward(DType dt, BinaryLoss kind_code, double gamma, const void* logits, const void* targets, int64_t n,
                         float* loss, void* workspace, cudaStream_t stream) {
  const int kind = static_cast<int>(kind_code);
  check_dtype("binary loss", dt);
  PNEUMO_CHECK(n > 0 && (kind == 0 || kind == 1), "binary loss (CUDA): n ", n, " kind ", kind);
  float* partial = static_cast<float*>(workspace);
  const int blocks = partial_blocks(n);
  if (dt == DType::F32)
    binary_loss_partial_kernel<float><<<blocks, kThreads, 0, stream>>>(
        kind, static_cast<float>(gamma), static_cast<const float*>(logits), static_cast<const float*>(targets), n,
        vec_ok<float>(n, logits, targets, nullptr), partial);
  else
    binary_loss_partial_kernel<Bf16><<<blocks, kThreads, 0, stream>>>(
        kind, static_cast<float>(gamma), static_cast<const Bf16*>(logits), static_cast<const Bf16*>(targets), n,
        vec_ok<Bf16>(n, logits, targets, nullptr), partial);
  PNEUMO_LAUNCH_CHECK("binary_loss_partial_kernel");
  finish_sum_kernel<<<1, kThreads, 0, stream>>>(partial, blocks, static_cast<float>(1.0 / static_cast<double>(n)), loss);
  PNEUMO_LAUNCH_CHECK("finish_sum_kernel");
}

void binary_loss_backward(DType dt, BinaryLoss kind_code, double gamma, const void* logits, const void* targets, int64_t n,
                          const float* grad_loss, void* dlogits, cudaStream_t stream) {
  const int kind = static_cast<int>(kind_code);
  check_dtype("binary loss", dt);
  const int blocks = blocks_for(n % 4 == 0 ? n / 4 : n, kMaxGridBlocks);
  if (dt == DType::F32)
    binary_loss_backward_kernel<float><<<blocks, kThreads, 0, stream>>>(
        kind, static_cast<float>(gamma), static_cast<const float*>(logits), static_cast<const float*>(targets), n,
        vec_ok<float>(n, logits, targets, dlogits), grad_loss, static_cast<float*>(dlogits));
  else
    binary_loss_backward_kernel<Bf16><<<blocks, kThreads, 0, stream>>>(
        kind, static_cast<float>(gamma), static_cast<const Bf16*>(logits), static_cast<const Bf16*>(targets), n,
        vec_ok<Bf16>(n, logits, targets, dlogits), grad_loss, static_cast<Bf16*>(dlogits));
  PNEUMO_LAUNCH_CHECK("binary_loss_backward_kernel");
}

size_t soft_dice_workspace_bytes(int64_t batch, int64_t per_sample) {
  return static_cast<size_t>(batch * dice_layout(batch, per_sample).splits * 3) * sizeof(float);
}

void soft_dice_forward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                       double smooth, float* stats, float* loss, void* workspace, cudaStream_t stream) {
  check_dtype("soft dice", dt);
  PNEUMO_CHECK(batch > 0 && batch <= 65535 && per_sample > 0, "soft dice (CUDA): batch ", batch, " per sample ",
               per_sample);
  const DiceLayout L = dice_layout(batch, per_sample);
  float* partial = static_cast<float*>(workspace);
  const dim3 grid(static_cast<unsigned>(L.splits), static_cast<unsigned>(batch));
  const bool vec = per_sample % 4 == 0;
  if (dt == DType::F32) {
    const bool v = vec && vec4_aligned<float>(logits) && vec4_aligned<float>(targets);
    dice_partial_kernel<float><<<grid, kThreads, 0, stream>>>(static_cast<const float*>(logits),
                                                             static_cast<const float*>(targets), per_sample, L.chunk, v,
                                                             partial);
  } else {
    const bool v = vec && vec4_aligned<Bf16>(logits) && vec4_aligned<Bf16>(targets);
    dice_partial_kernel<Bf16><<<grid, kThreads, 0, stream>>>(static_cast<const Bf16*>(logits),
                                                            static_cast<const Bf16*>(targets), per_sample, L.chunk, v,
                                                            partial);
  }
  PNEUMO_LAUNCH_CHECK("dice_partial_kernel");
  dice_sample_kernel<<<static_cast<unsigned>(batch), kThreads, 0, stream>>>(partial, L.splits,
                                                                           static_cast<float>(smooth), stats);
  PNEUMO_LAUNCH_CHECK("dice_sample_kernel");
  dice_score_kernel<<<1, 32, 0, stream>>>(batch, stats, loss);
  PNEUMO_LAUNCH_CHECK("dice_score_kernel");
}

void soft_dice_backward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                        const float* stats, const float* grad_loss, void* dlogits, cudaStream_t stream) {
  check_dtype("soft dice", dt);
  PNEUMO_CHECK(batch > 0 && batch <= 65535 && per_sample > 0 && per_sample < (int64_t(1) << 31),
               "soft dice (CUDA): batch ", batch, " per sample ", per_sample);
  const bool vec4 = per_sample % 4 == 0;
  const int64_t units = vec4 ? per_sample / 4 : per_sample;
  const dim3 grid(static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((units + kThreads - 1) / kThreads,
                                                                                 std::max<int64_t>(1, 2048 / batch)))),
                  static_cast<unsigned>(batch));
  if (dt == DType::F32) {
    const bool v = vec4 && vec4_aligned<float>(logits) && vec4_aligned<float>(targets) &&
                   vec4_aligned<float>(dlogits);
    dice_backward_kernel<float><<<grid, kThreads, 0, stream>>>(
        static_cast<const float*>(logits), static_cast<const float*>(targets), batch,
        static_cast<uint32_t>(per_sample), v, stats, grad_loss, static_cast<float*>(dlogits));
  } else {
    const bool v = vec4 && vec4_aligned<Bf16>(logits) && vec4_aligned<Bf16>(targets) &&
                   vec4_aligned<Bf16>(dlogits);
    dice_backward_kernel<Bf16><<<grid, kThreads, 0, stream>>>(
        static_cast<const Bf16*>(logits), static_cast<const Bf16*>(targets), batch,
        static_cast<uint32_t>(per_sample), v, stats, grad_loss, static_cast<Bf16*>(dlogits));
  }
  PNEUMO_LAUNCH_CHECK("dice_backward_kernel");
}

}  // namespace pneumo::kernels::cuda
