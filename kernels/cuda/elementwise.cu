// Elementwise CUDA kernels behind tensor/ops.h (contract and op codes: kernels/cuda/tensor_kernels.h, mirroring
// kernels/cpu/tensor_kernels.h): fill, cast, binary, affine/axpy, unary and its backward, the expand
// broadcasts, pitched row copies and the Philox random fills. Convention: every floating dtype is computed in
// float32 and loaded/stored through the round-to-nearest-even conversions of kernels/dtype.h, so a bf16/f16
// result rounds exactly as the CPU oracle's does. One kernel per storage type; the op is a run-time switch.
// Elementwise kernels take a 16-byte vector path when every pointer they touch is 16-byte aligned (views
// may not be) and finish the last n % V elements with scalar accesses.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/tensor_kernels.h"
#include "kernels/philox.h"

namespace pneumo::kernels::cuda {
namespace {

// Conversions of casts, as the CPU oracle does them: float -> U8 rounds to nearest and clamps to [0, 255];
// float -> I32/I64 truncates toward zero (saturating here, NaN -> 0, where the CPU's out-of-range behaviour
// is undefined); integer -> float rounds to nearest; integer -> U8 clamps; I64 -> I32 wraps.
template <typename D>
__device__ __forceinline__ D convert_float_to(float f) {
  if constexpr (std::is_same_v<D, uint8_t>) {
    return f != f ? 0 : static_cast<uint8_t>(fminf(fmaxf(rintf(f), 0.f), 255.f));
  } else if constexpr (std::is_same_v<D, int32_t>) {
    return __float2int_rz(f);
  } else if constexpr (std::is_same_v<D, int64_t>) {
    return __float2ll_rz(f);
  } else {
    return from_float<D>(f);
  }
}
template <typename D>
__device__ __forceinline__ D convert_int_to(int64_t v) {
  if constexpr (std::is_same_v<D, uint8_t>) {
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
  } else if constexpr (std::is_same_v<D, int32_t> || std::is_same_v<D, int64_t>) {
    return static_cast<D>(v);
  } else {
    return from_float<D>(static_cast<float>(v));
  }
}
template <typename S, typename D>
__device__ __forceinline__ D convert(S s) {
  if constexpr (kIsFloatStorage<S>) {
    return convert_float_to<D>(to_float(s));
  } else {
    return convert_int_to<D>(static_cast<int64_t>(s));
  }
}


constexpr int kFull = 0, kScalar = 1, kChannel = 2;  // ops::Broadcast

__device__ __forceinline__ float apply_binary(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    default: return a / b;
  }
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float apply_unary(int op, float x) {
  switch (op) {
    case 0: return -x;
    case 1: return expf(x);
    case 2: return logf(x);
    case 3: return sqrtf(x);
    case 4: return fabsf(x);
    case 5: return x > 0.0f ? x : 0.0f;
    case 6: return sigmoid(x);
    case 7: return tanhf(x);
    default: return x / (1.0f + expf(-x));
  }
}

// dx for dy given x and/or y = f(x) (only what the op needs is read).
__device__ __forceinline__ float apply_unary_backward(int op, float x, float y, float dy) {
  switch (op) {
    case 0: return -dy;
    case 1: return dy * y;
    case 2: return dy / x;
    case 3: return dy * 0.5f / y;
    case 4: return x > 0.0f ? dy : (x < 0.0f ? -dy : 0.0f);
    case 5: return x > 0.0f ? dy : 0.0f;
    case 6: return dy * y * (1.0f - y);
    case 7: return dy * (1.0f - y * y);
    default: {
      const float s = sigmoid(x);
      return dy * (s + x * s * (1.0f - s));
    }
  }
}

// ---- elementwise kernels --------------------------------------------------------------------------
template <typename U>
__global__ void fill_kernel(U* out, int64_t n, U value, bool vec) {
  for_each_element<U>(
      n, vec, [&](int64_t i) { out[i] = value; },
      [&](int64_t u) {
        Pack<U> p;
#pragma unroll
        for (int k = 0; k < Pack<U>::kSize; ++k) p.v[k] = value;
        store_pack(out, u, p);
      });
}

// Casts move groups of 8 elements: 16-byte accesses for 2/4/8-byte types, one 8-byte access for U8.
constexpr int kCastGroup = 8;
template <typename T>
struct alignas(16) CastGroup {
  T v[kCastGroup];
};
template <typename T>
__device__ __forceinline__ void load_group(const T* p, CastGroup<T>& g) {
  constexpr int kBytes = kCastGroup * sizeof(T);
  if constexpr (kBytes >= 16) {
#pragma unroll
    for (int j = 0; j < kBytes / 16; ++j) reinterpret_cast<uint4*>(g.v)[j] = reinterpret_cast<const uint4*>(p)[j];
  } else {
    *reinterpret_cast<uint2*>(g.v) = *reinterpret_cast<const uint2*>(p);
  }
}
template <typename T>
__device__ __forceinline__ void store_group(T* p, const CastGroup<T>& g) {
  constexpr int kBytes = kCastGroup * sizeof(T);
  if constexpr (kBytes >= 16) {
#pragma unroll
    for (int j = 0; j < kBytes / 16; ++j) reinterpret_cast<uint4*>(p)[j] = reinterpret_cast<const uint4*>(g.v)[j];
  } else {
    *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(g.v);
  }
}

template <typename S, typename D>
__device__ __forceinline__ void cast_elements(const S* src, D* dst, int64_t n, bool vec) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t start = 0;
  if (vec) {
    const int64_t groups = n / kCastGroup;
    for (int64_t g = tid; g < groups; g += stride) {
      CastGroup<S> in;
      CastGroup<D> out;
      load_group(src + g * kCastGroup, in);
#pragma unroll
      for (int k = 0; k < kCastGroup; ++k) out.v[k] = convert<S, D>(in.v[k]);
      store_group(dst + g * kCastGroup, out);
    }
    start = groups * kCastGroup;
  }
  for (int64_t i = start + tid; i < n; i += stride) dst[i] = convert<S, D>(src[i]);
}

// One kernel per source type; the destination type is a run-time switch (uniform across the grid).
template <typename S>
__global__ void cast_kernel(const S* src, DType dst_dt, void* dst, int64_t n, bool vec) {
  switch (dst_dt) {
    case DType::F32: cast_elements(src, static_cast<float*>(dst), n, vec); break;
    case DType::BF16: cast_elements(src, static_cast<Bf16*>(dst), n, vec); break;
    case DType::F16: cast_elements(src, static_cast<F16*>(dst), n, vec); break;
    case DType::U8: cast_elements(src, static_cast<uint8_t*>(dst), n, vec); break;
    case DType::I32: cast_elements(src, static_cast<int32_t*>(dst), n, vec); break;
    case DType::I64: cast_elements(src, static_cast<int64_t*>(dst), n, vec); break;
    default: break;  // F64 rejected on the host
  }
}

template <typename T>
__global__ void binary_kernel(int op, const T* a, int a_mode, const T* b, int b_mode, T* out, int64_t n,
                              int64_t channels, bool vec) {
  constexpr int V = Pack<T>::kSize;
  const float a_scalar = a_mode == kScalar ? to_float(a[0]) : 0.0f;
  const float b_scalar = b_mode == kScalar ? to_float(b[0]) : 0.0f;
  auto operand = [&](const T* p, int mode, float s, int64_t i) {
    return mode == kFull ? to_float(p[i]) : mode == kScalar ? s : to_float(p[i % channels]);
  };
  for_each_element<T>(
      n, vec,
      [&](int64_t i) { out[i] = from_float<T>(apply_binary(op, operand(a, a_mode, a_scalar, i), operand(b, b_mode, b_scalar, i))); },
      [&](int64_t u) {
        Pack<T> pa, pb, po;
        if (a_mode == kFull) pa = load_pack(a, u);
        if (b_mode == kFull) pb = load_pack(b, u);
        int64_t c = (a_mode == kChannel || b_mode == kChannel) ? (u * V) % channels : 0;
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const float av = a_mode == kFull ? to_float(pa.v[k]) : a_mode == kScalar ? a_scalar : to_float(a[c]);
          const float bv = b_mode == kFull ? to_float(pb.v[k]) : b_mode == kScalar ? b_scalar : to_float(b[c]);
          po.v[k] = from_float<T>(apply_binary(op, av, bv));
          if (++c == channels) c = 0;
        }
        store_pack(out, u, po);
      });
}

// out = alpha * x + beta (axpy: out == a, x == b, beta == 0, plus a). Separately rounded multiply and add
// (no FMA contraction) to round as the CPU does.
template <typename T>
__global__ void affine_kernel(const T* x, const T* addend, T* out, int64_t n, float alpha, float beta, bool vec) {
  auto f = [&](float xv, float addv) { return __fadd_rn(__fadd_rn(__fmul_rn(alpha, xv), beta), addv); };
  for_each_element<T>(
      n, vec, [&](int64_t i) { out[i] = from_float<T>(f(to_float(x[i]), addend ? to_float(addend[i]) : 0.0f)); },
      [&](int64_t u) {
        Pack<T> px = load_pack(x, u), pa, po;
        if (addend) pa = load_pack(addend, u);
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k)
          po.v[k] = from_float<T>(f(to_float(px.v[k]), addend ? to_float(pa.v[k]) : 0.0f));
        store_pack(out, u, po);
      });
}

template <typename T>
__global__ void unary_kernel(int op, const T* x, T* out, int64_t n, bool vec) {
  for_each_element<T>(
      n, vec, [&](int64_t i) { out[i] = from_float<T>(apply_unary(op, to_float(x[i]))); },
      [&](int64_t u) {
        Pack<T> px = load_pack(x, u), po;
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k) po.v[k] = from_float<T>(apply_unary(op, to_float(px.v[k])));
        store_pack(out, u, po);
      });
}

// sigmoid/tanh without a saved output (16-bit activations): the derivative from x in float32 without forming
// 1 - y: sigmoid' = e / (1 + e)^2, e = exp(-|x|); tanh' = 4 e / (1 + e)^2, e = exp(-2|x|).
__device__ __forceinline__ float unary_backward_at(int op, bool have_y, float x, float y, float dy) {
  if (!have_y && (op == 6 || op == 7)) {
    const float e = expf(op == 6 ? -fabsf(x) : -2.0f * fabsf(x));
    const float d = e / ((1.0f + e) * (1.0f + e));
    return dy * (op == 6 ? d : 4.0f * d);
  }
  return apply_unary_backward(op, x, y, dy);
}

template <typename T>
__global__ void unary_backward_kernel(int op, const T* x, const T* y, const T* dy, T* dx, int64_t n, bool vec) {
  for_each_element<T>(
      n, vec,
      [&](int64_t i) {
        const float xv = x ? to_float(x[i]) : 0.0f, yv = y ? to_float(y[i]) : 0.0f;
        dx[i] = from_float<T>(unary_backward_at(op, y != nullptr, xv, yv, to_float(dy[i])));
      },
      [&](int64_t u) {
        Pack<T> px, py, pd = load_pack(dy, u), po;
        if (x) px = load_pack(x, u);
        if (y) py = load_pack(y, u);
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k) {
          const float xv = x ? to_float(px.v[k]) : 0.0f, yv = y ? to_float(py.v[k]) : 0.0f;
          po.v[k] = from_float<T>(unary_backward_at(op, y != nullptr, xv, yv, to_float(pd.v[k])));
        }
        store_pack(dx, u, po);
      });
}

// out[b, p, c] = src[b, c] * scale for out viewed as [batch, inner, channels]; covers expand_channels
// (batch 1, src [C]), expand_hw (src [N, C]) and expand_scalar (channels 1, inner n).
template <typename T>
__global__ void expand_kernel(const T* src, int64_t inner, int64_t channels, T* out, int64_t n, double scale,
                              bool vec) {
  const int64_t per_batch = inner * channels;
  // The product in double, rounded once to float (then to T), exactly as the CPU oracle does.
  auto value = [&](int64_t b, int64_t c) {
    return from_float<T>(static_cast<float>(scale * static_cast<double>(to_float(src[b * channels + c]))));
  };
  for_each_element<T>(
      n, vec, [&](int64_t i) { out[i] = value(i / per_batch, i % channels); },
      [&](int64_t u) {
        const int64_t i0 = u * Pack<T>::kSize;
        int64_t b = i0 / per_batch, r = i0 - b * per_batch, c = i0 % channels;
        Pack<T> po;
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k) {
          po.v[k] = value(b, c);
          if (++c == channels) c = 0;
          if (++r == per_batch) r = 0, ++b;
        }
        store_pack(out, u, po);
      });
}

template <typename U>
__global__ void copy_rows_kernel(const char* src, int64_t src_pitch, char* dst, int64_t dst_pitch,
                                 int64_t units_per_row, int64_t rows) {
  const int64_t total = units_per_row * rows;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / units_per_row, u = i - r * units_per_row;
    reinterpret_cast<U*>(dst + r * dst_pitch)[u] = reinterpret_cast<const U*>(src + r * src_pitch)[u];
  }
}

// Uniform: fma(range, u, lo); normal: fma(stddev, z, mean): one rounding, exactly as the CPU oracle's
// std::fma, so uniform draws are bit-identical across backends.
template <typename T>
__global__ void random_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, float a, float b, bool normal) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t idx = static_cast<uint64_t>(i);
    const float v = normal ? __fmaf_rn(b, philox_normal_at(seed, offset, idx), a)
                           : __fmaf_rn(b, philox_uniform_at(seed, offset, idx), a);
    out[i] = from_float<T>(v);
  }
}
}  // namespace

void fill(DType dt, void* out, int64_t n, double value, cudaStream_t stream) {
  check_count("fill", n);
  if (n == 0) return;
  const size_t es = dtype_size(dt);
  uint64_t bits = 0;
  switch (dt) {
    case DType::F32: bits = float_to_bits(static_cast<float>(value)); break;
    case DType::BF16: bits = float_to_bf16_bits(static_cast<float>(value)); break;
    case DType::F16: bits = float_to_f16_bits(static_cast<float>(value)); break;
    case DType::U8: bits = static_cast<uint8_t>(std::min(255.0, std::max(0.0, std::nearbyint(value)))); break;
    case DType::I32: bits = static_cast<uint32_t>(static_cast<int32_t>(value)); break;
    case DType::I64: bits = static_cast<uint64_t>(static_cast<int64_t>(value)); break;
    default: PNEUMO_FAIL("kernels::cuda::fill: dtype ", dtype_name(dt), " is CPU-only");
  }
  bool same_bytes = true;
  for (size_t k = 1; k < es; ++k) same_bytes &= ((bits >> (8 * k)) & 0xff) == (bits & 0xff);
  if (same_bytes) {  // zero, and the 0xFF poison pattern
    PNEUMO_CUDA_CHECK(cudaMemsetAsync(out, static_cast<int>(bits & 0xff), static_cast<size_t>(n) * es, stream));
    return;
  }
  const int blocks = blocks_for(aligned16(out) ? vector_work(n, es) : n);
  const bool vec = aligned16(out);
  switch (es) {
    case 2: fill_kernel<uint16_t><<<blocks, kThreads, 0, stream>>>(static_cast<uint16_t*>(out), n, static_cast<uint16_t>(bits), vec); break;
    case 4: fill_kernel<uint32_t><<<blocks, kThreads, 0, stream>>>(static_cast<uint32_t*>(out), n, static_cast<uint32_t>(bits), vec); break;
    default: fill_kernel<uint64_t><<<blocks, kThreads, 0, stream>>>(static_cast<uint64_t*>(out), n, bits, vec); break;
  }
  PNEUMO_LAUNCH_CHECK("fill_kernel");
}

namespace {
template <typename T>
__global__ void increment_kernel(T* out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] += 1;
}
}  // namespace

void increment(DType dt, void* out, int64_t n, cudaStream_t stream) {
  check_count("increment", n);
  if (n == 0) return;
  PNEUMO_CHECK(dt == DType::I64 || dt == DType::I32, "increment: dtype ", dtype_name(dt),
               " is not an integer counter (I32/I64)");
  if (dt == DType::I64)
    increment_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<int64_t*>(out), n);
  else
    increment_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<int32_t*>(out), n);
  PNEUMO_LAUNCH_CHECK("increment_kernel");
}

void cast(DType src_dt, const void* src, DType dst_dt, void* dst, int64_t n, cudaStream_t stream) {
  check_count("cast", n);
  dispatch_any(dst_dt, "cast", [](auto) {});  // rejects F64 as a destination
  dispatch_any(src_dt, "cast", [&](auto tag) {
    using S = decltype(tag);
    if (n == 0) return;
    if (src_dt == dst_dt) {
      if (src != dst)
        PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(S), cudaMemcpyDeviceToDevice, stream));
      return;
    }
    const bool vec = aligned16(src) && aligned16(dst);
    cast_kernel<S><<<blocks_for(vec ? n / kCastGroup + n % kCastGroup : n), kThreads, 0, stream>>>(
        static_cast<const S*>(src), dst_dt, dst, n, vec);
    PNEUMO_LAUNCH_CHECK("cast_kernel");
  });
}

void binary(DType dt, BinaryOp op_code, const void* a, Broadcast a_code, const void* b, Broadcast b_code, void* out,
            int64_t n, int64_t channels, cudaStream_t stream) {
  const int op = static_cast<int>(op_code), a_mode = static_cast<int>(a_code), b_mode = static_cast<int>(b_code);
  check_count("binary", n);
  PNEUMO_CHECK(op >= 0 && op <= 3, "kernels::cuda::binary: unknown op code ", op);
  PNEUMO_CHECK(a_mode >= 0 && a_mode <= 2 && b_mode >= 0 && b_mode <= 2, "kernels::cuda::binary: bad broadcast modes ",
               a_mode, ", ", b_mode);
  PNEUMO_CHECK((a_mode != kChannel && b_mode != kChannel) || channels > 0,
               "kernels::cuda::binary: per-channel broadcast needs channels > 0, got ", channels);
  dispatch_float(dt, "binary", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const bool vec = aligned16(out) && (a_mode != kFull || aligned16(a)) && (b_mode != kFull || aligned16(b));
    binary_kernel<T><<<blocks_for(vec ? vector_work(n, sizeof(T)) : n), kThreads, 0, stream>>>(
        op, static_cast<const T*>(a), a_mode, static_cast<const T*>(b), b_mode, static_cast<T*>(out), n, channels, vec);
    PNEUMO_LAUNCH_CHECK("binary_kernel");
  });
}

void affine(DType dt, const void* x, void* out, int64_t n, double alpha, double beta, cudaStream_t stream) {
  check_count("affine", n);
  dispatch_float(dt, "affine", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const bool vec = aligned16(x) && aligned16(out);
    affine_kernel<T><<<blocks_for(vec ? vector_work(n, sizeof(T)) : n), kThreads, 0, stream>>>(
        static_cast<const T*>(x), nullptr, static_cast<T*>(out), n, static_cast<float>(alpha), static_cast<float>(beta), vec);
    PNEUMO_LAUNCH_CHECK("affine_kernel");
  });
}

void axpy(DType dt, void* a, const void* b, int64_t n, double alpha, cudaStream_t stream) {
  check_count("axpy", n);
  dispatch_float(dt, "axpy", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const bool vec = aligned16(a) && aligned16(b);
    affine_kernel<T><<<blocks_for(vec ? vector_work(n, sizeof(T)) : n), kThreads, 0, stream>>>(
        static_cast<const T*>(b), static_cast<const T*>(a), static_cast<T*>(a), n, static_cast<float>(alpha), 0.0f, vec);
    PNEUMO_LAUNCH_CHECK("axpy_kernel");
  });
}

void unary(DType dt, UnaryOp op_code, const void* x, void* out, int64_t n, cudaStream_t stream) {
  const int op = static_cast<int>(op_code);
  check_count("unary", n);
  PNEUMO_CHECK(op >= 0 && op <= 8, "kernels::cuda::unary: unknown op code ", op);
  dispatch_float(dt, "unary", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const bool vec = aligned16(x) && aligned16(out);
    unary_kernel<T><<<blocks_for(vec ? vector_work(n, sizeof(T)) : n), kThreads, 0, stream>>>(
        op, static_cast<const T*>(x), static_cast<T*>(out), n, vec);
    PNEUMO_LAUNCH_CHECK("unary_kernel");
  });
}

void unary_backward(DType dt, UnaryOp op_code, const void* x, const void* y, const void* dy, void* dx, int64_t n,
                    cudaStream_t stream) {
  const int op = static_cast<int>(op_code);
  check_count("unary_backward", n);
  PNEUMO_CHECK(op >= 0 && op <= 8, "kernels::cuda::unary_backward: unknown op code ", op);
  // Which of x / y each op reads (see the formulas in apply_unary_backward; sigmoid/tanh given only x take
  // the derivative from x, and the kernel tells that case by y == nullptr).
  const UnaryBackwardReads reads = unary_backward_reads(op_code, x != nullptr, y != nullptr);
  const bool needs_x = reads.x, needs_y = reads.y;
  PNEUMO_CHECK(!needs_x || x, "kernels::cuda::unary_backward: op ", op, " needs the input x");
  PNEUMO_CHECK(!needs_y || y, "kernels::cuda::unary_backward: op ", op, " needs the output y");
  if (!needs_x) x = nullptr;
  if (!needs_y) y = nullptr;
  dispatch_float(dt, "unary_backward", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const bool vec = aligned16(dy) && aligned16(dx) && (!x || aligned16(x)) && (!y || aligned16(y));
    unary_backward_kernel<T><<<blocks_for(vec ? vector_work(n, sizeof(T)) : n), kThreads, 0, stream>>>(
        op, static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(dy), static_cast<T*>(dx), n, vec);
    PNEUMO_LAUNCH_CHECK("unary_backward_kernel");
  });
}

namespace {
void expand(DType dt, const char* what, const void* src, int64_t batch, int64_t inner, int64_t channels, void* out,
            double scale, cudaStream_t stream) {
  PNEUMO_CHECK(batch >= 0 && inner >= 0 && channels >= 0, "kernels::cuda::", what, ": bad sizes ", batch, " x ",
               inner, " x ", channels);
  dispatch_float(dt, what, [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = batch * inner * channels;
    if (n == 0) return;
    const bool vec = aligned16(out);
    expand_kernel<T><<<blocks_for(vec ? vector_work(n, sizeof(T)) : n), kThreads, 0, stream>>>(
        static_cast<const T*>(src), inner, channels, static_cast<T*>(out), n, scale, vec);
    PNEUMO_LAUNCH_CHECK("expand_kernel");
  });
}
}  // namespace

void expand_channels(DType dt, const void* v, int64_t rows, int64_t channels, void* out, double scale,
                     cudaStream_t stream) {
  expand(dt, "expand_channels", v, 1, rows, channels, out, scale, stream);
}

void expand_hw(DType dt, const void* nc, int64_t batch, int64_t hw, int64_t channels, void* out, double scale,
               cudaStream_t stream) {
  expand(dt, "expand_hw", nc, batch, hw, channels, out, scale, stream);
}

void expand_scalar(DType dt, const void* s, int64_t n, void* out, double scale, cudaStream_t stream) {
  expand(dt, "expand_scalar", s, 1, n, 1, out, scale, stream);
}

void copy_rows(const void* src, int64_t src_pitch, void* dst, int64_t dst_pitch, int64_t width, int64_t rows,
               cudaStream_t stream) {
  PNEUMO_CHECK(width >= 0 && rows >= 0 && src_pitch >= width && dst_pitch >= width,
               "kernels::cuda::copy_rows: bad sizes width ", width, " rows ", rows, " pitches ", src_pitch, ", ", dst_pitch);
  if (width == 0 || rows == 0) return;
  if (width == src_pitch && width == dst_pitch) {
    PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(width * rows), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  const uintptr_t all = reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst) |
                        static_cast<uintptr_t>(src_pitch) | static_cast<uintptr_t>(dst_pitch) |
                        static_cast<uintptr_t>(width);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  if ((all & 15u) == 0) {
    copy_rows_kernel<uint4><<<blocks_for(width / 16 * rows), kThreads, 0, stream>>>(s, src_pitch, d, dst_pitch, width / 16, rows);
  } else if ((all & 3u) == 0) {
    copy_rows_kernel<uint32_t><<<blocks_for(width / 4 * rows), kThreads, 0, stream>>>(s, src_pitch, d, dst_pitch, width / 4, rows);
  } else if ((all & 1u) == 0) {
    copy_rows_kernel<uint16_t><<<blocks_for(width / 2 * rows), kThreads, 0, stream>>>(s, src_pitch, d, dst_pitch, width / 2, rows);
  } else {
    copy_rows_kernel<uint8_t><<<blocks_for(width * rows), kThreads, 0, stream>>>(s, src_pitch, d, dst_pitch, width, rows);
  }
  PNEUMO_LAUNCH_CHECK("copy_rows_kernel");
}

void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi,
                    cudaStream_t stream) {
  check_count("random_uniform", n);
  dispatch_float(dt, "random_uniform", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    random_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<T*>(out), n, seed, offset, lo, hi - lo, false);
    PNEUMO_LAUNCH_CHECK("random_kernel(uniform)");
  });
}

void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev,
                   cudaStream_t stream) {
  check_count("random_normal", n);
  dispatch_float(dt, "random_normal", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    random_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<T*>(out), n, seed, offset, mean, stddev, true);
    PNEUMO_LAUNCH_CHECK("random_kernel(normal)");
  });
}

}  // namespace pneumo::kernels::cuda
