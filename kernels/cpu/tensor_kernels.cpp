// CPU reference kernels for tensor/ops.h. Float math is done in the element type's natural precision
// (float for F32, double for F64); F32 sums accumulate in double so the oracle is tighter than the GPU.
// BF16/F16 elementwise ops are computed by converting to float and rounding back (round to nearest even).
#include "kernels/cpu/tensor_kernels.h"

#include <cmath>
#include <cstring>

#include "kernels/check.h"
#include "kernels/cpu/profile.h"
#include "kernels/philox.h"

namespace pneumo::kernels::cpu {
namespace {

// Loads and stores through float/double for every dtype the CPU supports.
inline double load(DType dt, const void* p, int64_t i) {
  switch (dt) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F64: return static_cast<const double*>(p)[i];
    case DType::BF16: return bf16_bits_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_bits_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::U8: return static_cast<const uint8_t*>(p)[i];
    case DType::I32: return static_cast<const int32_t*>(p)[i];
    case DType::I64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
  }
  return 0;
}
inline void store(DType dt, void* p, int64_t i, double v) {
  switch (dt) {
    case DType::F32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::F64: static_cast<double*>(p)[i] = v; break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = float_to_bf16_bits(static_cast<float>(v)); break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = float_to_f16_bits(static_cast<float>(v)); break;
    case DType::U8: {
      double r = std::nearbyint(v);
      static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(r < 0 ? 0 : (r > 255 ? 255 : r));
      break;
    }
    case DType::I32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::I64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
  }
}

// Elementwise math in T (float or double); 16-bit floats use float.
template <typename T>
inline T unary_op(int op, T x) {
  switch (op) {
    case 0: return -x;
    case 1: return std::exp(x);
    case 2: return std::log(x);
    case 3: return std::sqrt(x);
    case 4: return std::fabs(x);
    case 5: return x > T(0) ? x : T(0);
    case 6: return T(1) / (T(1) + std::exp(-x));
    case 7: return std::tanh(x);
    case 8: return x / (T(1) + std::exp(-x));
  }
  return x;
}
template <typename T>
inline T unary_grad(int op, T x, T y, T dy) {
  switch (op) {
    case 0: return -dy;
    case 1: return dy * y;
    case 2: return dy / x;
    case 3: return dy * T(0.5) / y;
    case 4: return x > T(0) ? dy : (x < T(0) ? -dy : T(0));
    case 5: return x > T(0) ? dy : T(0);
    case 6: return dy * y * (T(1) - y);
    case 7: return dy * (T(1) - y * y);
    case 8: {
      T s = T(1) / (T(1) + std::exp(-x));
      return dy * (s + x * s * (T(1) - s));
    }
  }
  return dy;
}
// sigmoid' and tanh' from x without forming 1 - y (no cancellation near saturation):
// sigmoid'(x) = e / (1 + e)^2 with e = exp(-|x|); tanh'(x) = 4 e / (1 + e)^2 with e = exp(-2|x|).
template <typename T>
inline T saturating_grad_from_x(int op, T x, T dy) {
  const T e = std::exp(op == 6 ? -std::fabs(x) : T(-2) * std::fabs(x));
  const T d = e / ((T(1) + e) * (T(1) + e));
  return dy * (op == 6 ? d : T(4) * d);
}
template <typename T>
inline T binary_op(int op, T a, T b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
  }
  return a;
}
inline int64_t bidx(int mode, int64_t i, int64_t channels) { return mode == 0 ? i : (mode == 1 ? 0 : i % channels); }

template <typename T>
void binary_t(int op, const T* a, int am, const T* b, int bm, T* out, int64_t n, int64_t c) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = binary_op<T>(op, a[bidx(am, i, c)], b[bidx(bm, i, c)]);
}

void check_float(DType dt, const char* what) {
  PNEUMO_CHECK(is_floating(dt), what, ": dtype ", dtype_name(dt), " is not a floating type");
}

}  // namespace

void fill(DType dt, void* out, int64_t n, double value) {
  PNEUMO_CPU_SCOPE("fill");
  if (dt == DType::F32) {
    float v = static_cast<float>(value);
    float* o = static_cast<float*>(out);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
    return;
  }
  for (int64_t i = 0; i < n; ++i) store(dt, out, i, value);
}

void increment(DType dt, void* out, int64_t n) {
  if (dt == DType::I64) {
    for (int64_t i = 0; i < n; ++i) static_cast<int64_t*>(out)[i] += 1;
  } else {
    PNEUMO_CHECK(dt == DType::I32, "increment: dtype ", dtype_name(dt), " is not an integer counter (I32/I64)");
    for (int64_t i = 0; i < n; ++i) static_cast<int32_t*>(out)[i] += 1;
  }
}

void cast(DType sdt, const void* src, DType ddt, void* dst, int64_t n) {
  PNEUMO_CPU_SCOPE("cast");
  if (sdt == ddt) {
    std::memcpy(dst, src, static_cast<size_t>(n) * dtype_size(sdt));
    return;
  }
  if (sdt == DType::I64 && ddt == DType::I32) {  // exact integer path
    for (int64_t i = 0; i < n; ++i) static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(static_cast<const int64_t*>(src)[i]);
    return;
  }
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) store(ddt, dst, i, load(sdt, src, i));
}

void binary(DType dt, BinaryOp op_code, const void* a, Broadcast a_mode, const void* b, Broadcast b_mode, void* out,
            int64_t n, int64_t c) {
  PNEUMO_CPU_SCOPE("binary");
  const int op = static_cast<int>(op_code), am = static_cast<int>(a_mode), bm = static_cast<int>(b_mode);
  check_float(dt, "binary");
  if (dt == DType::F32)
    return binary_t<float>(op, static_cast<const float*>(a), am, static_cast<const float*>(b), bm, static_cast<float*>(out), n, c);
  if (dt == DType::F64)
    return binary_t<double>(op, static_cast<const double*>(a), am, static_cast<const double*>(b), bm, static_cast<double*>(out), n, c);
  for (int64_t i = 0; i < n; ++i)
    store(dt, out, i, binary_op<float>(op, static_cast<float>(load(dt, a, bidx(am, i, c))), static_cast<float>(load(dt, b, bidx(bm, i, c)))));
}

void affine(DType dt, const void* x, void* out, int64_t n, double alpha, double beta) {
  PNEUMO_CPU_SCOPE("affine");
  check_float(dt, "affine");
  if (dt == DType::F32) {
    const float* xi = static_cast<const float*>(x);
    float* o = static_cast<float*>(out);
    float al = static_cast<float>(alpha), be = static_cast<float>(beta);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) o[i] = al * xi[i] + be;
    return;
  }
  if (dt == DType::F64) {
    for (int64_t i = 0; i < n; ++i) static_cast<double*>(out)[i] = alpha * static_cast<const double*>(x)[i] + beta;
    return;
  }
  for (int64_t i = 0; i < n; ++i) store(dt, out, i, static_cast<float>(alpha) * static_cast<float>(load(dt, x, i)) + static_cast<float>(beta));
}

void axpy(DType dt, void* a, const void* b, int64_t n, double alpha) {
  PNEUMO_CPU_SCOPE("axpy");
  check_float(dt, "axpy");
  if (dt == DType::F32) {
    float* ai = static_cast<float*>(a);
    const float* bi = static_cast<const float*>(b);
    float al = static_cast<float>(alpha);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) ai[i] += al * bi[i];
    return;
  }
  if (dt == DType::F64) {
    for (int64_t i = 0; i < n; ++i) static_cast<double*>(a)[i] += alpha * static_cast<const double*>(b)[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    store(dt, a, i, static_cast<float>(load(dt, a, i)) + static_cast<float>(alpha) * static_cast<float>(load(dt, b, i)));
}

namespace {
// float32 loops with the op a template constant, so its switch folds away and the loop vectorises
// (a per-element switch kept ReLU and its backward at about 10 % of a CPU training step).
template <int OP>
void unary_f32(const float* x, float* o, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) o[i] = unary_op<float>(OP, x[i]);
}
template <int OP>
void unary_backward_f32(const float* x, const float* y, const float* dy, float* dx, int64_t n, bool y_from_x) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) {
    const float xv = x ? x[i] : 0.f;
    dx[i] = y_from_x ? saturating_grad_from_x<float>(OP, xv, dy[i]) : unary_grad<float>(OP, xv, y ? y[i] : 0.f, dy[i]);
  }
}
template <template <int> class Fn, typename... A>
void with_unary_op(int op, A... a) {
  switch (op) {
    case 0: return Fn<0>::run(a...);
    case 1: return Fn<1>::run(a...);
    case 2: return Fn<2>::run(a...);
    case 3: return Fn<3>::run(a...);
    case 4: return Fn<4>::run(a...);
    case 5: return Fn<5>::run(a...);
    case 6: return Fn<6>::run(a...);
    case 7: return Fn<7>::run(a...);
    default: return Fn<8>::run(a...);
  }
}
template <int OP>
struct UnaryF32 {
  static void run(const float* x, float* o, int64_t n) { unary_f32<OP>(x, o, n); }
};
template <int OP>
struct UnaryBackwardF32 {
  static void run(const float* x, const float* y, const float* dy, float* dx, int64_t n, bool y_from_x) {
    unary_backward_f32<OP>(x, y, dy, dx, n, y_from_x);
  }
};
}  // namespace

void unary(DType dt, UnaryOp op_code, const void* x, void* out, int64_t n) {
  PNEUMO_CPU_SCOPE("unary");
  const int op = static_cast<int>(op_code);
  check_float(dt, "unary");
  if (dt == DType::F32) {
    with_unary_op<UnaryF32>(op, static_cast<const float*>(x), static_cast<float*>(out), n);
    return;
  }
  if (dt == DType::F64) {
    for (int64_t i = 0; i < n; ++i) static_cast<double*>(out)[i] = unary_op<double>(op, static_cast<const double*>(x)[i]);
    return;
  }
  for (int64_t i = 0; i < n; ++i) store(dt, out, i, unary_op<float>(op, static_cast<float>(load(dt, x, i))));
}

void unary_backward(DType dt, UnaryOp op_code, const void* x, const void* y, const void* dy, void* dx, int64_t n) {
  PNEUMO_CPU_SCOPE("unary_backward");
  const int op = static_cast<int>(op_code);
  check_float(dt, "unary_backward");
  auto get = [&](const void* p, int64_t i) { return p ? load(dt, p, i) : 0.0; };
  // sigmoid/tanh without a saved output: the derivative from x (see ops::unary_backward).
  const bool y_from_x = (op == 6 || op == 7) && unary_backward_reads(op_code, x != nullptr, y != nullptr).x;
  if (dt == DType::F64) {
    for (int64_t i = 0; i < n; ++i)
      static_cast<double*>(dx)[i] = y_from_x ? saturating_grad_from_x<double>(op, get(x, i), get(dy, i))
                                             : unary_grad<double>(op, get(x, i), get(y, i), get(dy, i));
    return;
  }
  if (dt == DType::F32) {
    with_unary_op<UnaryBackwardF32>(op, static_cast<const float*>(x), static_cast<const float*>(y),
                                    static_cast<const float*>(dy), static_cast<float*>(dx), n, y_from_x);
    return;
  }
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) {
    const float xv = static_cast<float>(get(x, i)), dyv = static_cast<float>(get(dy, i));
    store(dt, dx, i, y_from_x ? saturating_grad_from_x<float>(op, xv, dyv)
                              : unary_grad<float>(op, xv, static_cast<float>(get(y, i)), dyv));
  }
}

void sum_all(DType dt, const void* x, int64_t n, void* out) {
  PNEUMO_CPU_SCOPE("sum_all");
  double acc = 0;
#pragma omp parallel for reduction(+ : acc) schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) acc += load(dt, x, i);
  store(dt, out, 0, acc);
}

void sum_channels(DType dt, const void* x, int64_t rows, int64_t channels, void* out) {
  PNEUMO_CPU_SCOPE("sum_channels");
#pragma omp parallel for schedule(static) if (rows * channels > 65536)
  for (int64_t c = 0; c < channels; ++c) {
    double acc = 0;
    for (int64_t r = 0; r < rows; ++r) acc += load(dt, x, r * channels + c);
    store(dt, out, c, acc);
  }
}

void sum_hw(DType dt, const void* x, int64_t batch, int64_t hw, int64_t channels, void* out) {
  PNEUMO_CPU_SCOPE("sum_hw");
#pragma omp parallel for collapse(2) schedule(static) if (batch * hw * channels > 65536)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < channels; ++c) {
      double acc = 0;
      for (int64_t p = 0; p < hw; ++p) acc += load(dt, x, (b * hw + p) * channels + c);
      store(dt, out, b * channels + c, acc);
    }
}

void expand_channels(DType dt, const void* v, int64_t rows, int64_t channels, void* out, double scale) {
  PNEUMO_CPU_SCOPE("expand_channels");
#pragma omp parallel for schedule(static) if (rows * channels > 65536)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) store(dt, out, r * channels + c, scale * load(dt, v, c));
}

void expand_hw(DType dt, const void* nc, int64_t batch, int64_t hw, int64_t channels, void* out, double scale) {
  PNEUMO_CPU_SCOPE("expand_hw");
#pragma omp parallel for collapse(2) schedule(static) if (batch * hw * channels > 65536)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t c = 0; c < channels; ++c)
        store(dt, out, (b * hw + p) * channels + c, scale * load(dt, nc, b * channels + c));
}

void expand_scalar(DType dt, const void* s, int64_t n, void* out, double scale) {
  PNEUMO_CPU_SCOPE("expand_scalar");
  fill(dt, out, n, scale * load(dt, s, 0));
}

void copy_rows(const void* src, int64_t src_pitch, void* dst, int64_t dst_pitch, int64_t width, int64_t rows) {
  PNEUMO_CPU_SCOPE("copy_rows");
#pragma omp parallel for schedule(static) if (rows * width > (1 << 20))
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, static_cast<size_t>(width));
}

// fma: bit-identical to the CUDA kernels, whose compiler contracts a * b + c into one fused operation.
void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  PNEUMO_CPU_SCOPE("random_uniform");
  check_float(dt, "random_uniform");
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i)
    store(dt, out, i, std::fma(hi - lo, philox_uniform_at(seed, offset, static_cast<uint64_t>(i)), lo));
}

void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev) {
  PNEUMO_CPU_SCOPE("random_normal");
  check_float(dt, "random_normal");
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i)
    store(dt, out, i, std::fma(stddev, philox_normal_at(seed, offset, static_cast<uint64_t>(i)), mean));
}

}  // namespace pneumo::kernels::cpu
