// CPU reference of the fused squeeze-excite block (see squeeze_excite_kernels.h): straightforward loops,
// double accumulation, OpenMP over (sample, channel) for the two passes over the activation.
#include "kernels/cpu/squeeze_excite_kernels.h"

#include <cmath>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/profile.h"

namespace pneumo::kernels::cpu {
namespace {

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
double activate(int act, double z) { return act == 0 ? (z > 0 ? z : 0.0) : z * sigmoid(z); }
double activate_grad(int act, double z) {
  if (act == 0) return z > 0 ? 1.0 : 0.0;
  double s = sigmoid(z);
  return s * (1.0 + z * (1.0 - s));
}

// Per-sample intermediate values of the block, recomputed wherever they are needed.
struct SeState {
  std::vector<double> pooled, z1, h, gate;  // [N*C], [N*rd], [N*rd], [N*C]
};

// The block's small MLP on pooled values already in s.pooled.
template <typename T>
void gate_from_pooled(SeState& s, const T* w1, const T* b1, const T* w2, const T* b2, int64_t N, int64_t C, int64_t R,
                      int act) {
  s.z1.assign(N * R, 0.0);
  s.h.assign(N * R, 0.0);
  s.gate.assign(N * C, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t r = 0; r < R; ++r) {
      double z = static_cast<double>(b1[r]);
      for (int64_t c = 0; c < C; ++c) z += static_cast<double>(w1[r * C + c]) * s.pooled[n * C + c];
      s.z1[n * R + r] = z;
      s.h[n * R + r] = activate(act, z);
    }
    for (int64_t c = 0; c < C; ++c) {
      double z = static_cast<double>(b2[c]);
      for (int64_t r = 0; r < R; ++r) z += static_cast<double>(w2[c * R + r]) * s.h[n * R + r];
      s.gate[n * C + c] = sigmoid(z);
    }
  }
}

template <typename T>
SeState compute_gate(const T* x, const T* w1, const T* b1, const T* w2, const T* b2, int64_t N, int64_t HW,
                     int64_t C, int64_t R, int act) {
  SeState s;
  s.pooled.assign(N * C, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    double* p = &s.pooled[n * C];
    for (int64_t i = 0; i < HW; ++i) {
      const T* row = x + (n * HW + i) * C;
      for (int64_t c = 0; c < C; ++c) p[c] += static_cast<double>(row[c]);
    }
    for (int64_t c = 0; c < C; ++c) p[c] /= static_cast<double>(HW);
  }
  gate_from_pooled(s, w1, b1, w2, b2, N, C, R, act);
  return s;
}

template <typename T>
void forward_impl(const T* x, const T* w1, const T* b1, const T* w2, const T* b2, int64_t N, int64_t HW, int64_t C,
                  int64_t R, int act, T* y) {
  SeState s = compute_gate(x, w1, b1, w2, b2, N, HW, C, R, act);
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < N * HW; ++row) {
    const double* g = &s.gate[(row / HW) * C];
    for (int64_t c = 0; c < C; ++c) y[row * C + c] = static_cast<T>(static_cast<double>(x[row * C + c]) * g[c]);
  }
}

template <typename T>
void backward_impl(const T* x, const T* dy, const T* w1, const T* b1, const T* w2, const T* b2, int64_t N, int64_t HW,
                   int64_t C, int64_t R, int act, T* dx, T* dw1, T* db1, T* dw2, T* db2) {
  // One pass over x and dy: the pooled input (as compute_gate sums it) and d gate[n,c] = sum_hw dy * x.
  SeState s;
  s.pooled.assign(N * C, 0.0);
  std::vector<double> dgate(N * C, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    double* p = &s.pooled[n * C];
    double* d = &dgate[n * C];
    for (int64_t i = 0; i < HW; ++i) {
      const int64_t base = (n * HW + i) * C;
      for (int64_t c = 0; c < C; ++c) {
        p[c] += static_cast<double>(x[base + c]);
        d[c] += static_cast<double>(dy[base + c]) * static_cast<double>(x[base + c]);
      }
    }
    for (int64_t c = 0; c < C; ++c) p[c] /= static_cast<double>(HW);
  }
  gate_from_pooled(s, w1, b1, w2, b2, N, C, R, act);
  std::vector<double> dz2(N * C), dz1(N * R), dpooled(N * C);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      double g = s.gate[n * C + c];
      dz2[n * C + c] = dgate[n * C + c] * g * (1.0 - g);
    }
    for (int64_t r = 0; r < R; ++r) {
      double dh = 0.0;
      for (int64_t c = 0; c < C; ++c) dh += static_cast<double>(w2[c * R + r]) * dz2[n * C + c];
      dz1[n * R + r] = dh * activate_grad(act, s.z1[n * R + r]);
    }
    for (int64_t c = 0; c < C; ++c) {
      double dp = 0.0;
      for (int64_t r = 0; r < R; ++r) dp += static_cast<double>(w1[r * C + c]) * dz1[n * R + r];
      dpooled[n * C + c] = dp / static_cast<double>(HW);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    double db = 0.0;
    for (int64_t n = 0; n < N; ++n) db += dz1[n * R + r];
    db1[r] = static_cast<T>(db);
    for (int64_t c = 0; c < C; ++c) {
      double dw = 0.0;
      for (int64_t n = 0; n < N; ++n) dw += dz1[n * R + r] * s.pooled[n * C + c];
      dw1[r * C + c] = static_cast<T>(dw);
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    double db = 0.0;
    for (int64_t n = 0; n < N; ++n) db += dz2[n * C + c];
    db2[c] = static_cast<T>(db);
    for (int64_t r = 0; r < R; ++r) {
      double dw = 0.0;
      for (int64_t n = 0; n < N; ++n) dw += dz2[n * C + c] * s.h[n * R + r];
      dw2[c * R + r] = static_cast<T>(dw);
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < N * HW; ++row) {
    const int64_t n = row / HW;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = row * C + c;
      dx[i] = static_cast<T>(static_cast<double>(dy[i]) * s.gate[n * C + c] + dpooled[n * C + c]);
    }
  }
}

}  // namespace

void squeeze_excite_forward(DType dt, const void* x, const void* w1, const void* b1, const void* w2, const void* b2,
                            int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act_code, void* y) {
  PNEUMO_CPU_SCOPE("squeeze_excite_forward");
  const int act = static_cast<int>(act_code);
  PNEUMO_CHECK(act == 0 || act == 1, "squeeze_excite: activation code ", act, " (0 ReLU, 1 swish)");
  if (dt == DType::F32) {
    forward_impl(static_cast<const float*>(x), static_cast<const float*>(w1), static_cast<const float*>(b1),
                 static_cast<const float*>(w2), static_cast<const float*>(b2), batch, hw, channels, reduced, act,
                 static_cast<float*>(y));
  } else if (dt == DType::F64) {
    forward_impl(static_cast<const double*>(x), static_cast<const double*>(w1), static_cast<const double*>(b1),
                 static_cast<const double*>(w2), static_cast<const double*>(b2), batch, hw, channels, reduced, act,
                 static_cast<double*>(y));
  } else {
    PNEUMO_FAIL("squeeze_excite (CPU): dtype ", dtype_name(dt), " not supported (F32, F64)");
  }
}

void squeeze_excite_backward(DType dt, const void* x, const void* dy, const void* w1, const void* b1, const void* w2,
                             const void* b2, int64_t batch, int64_t hw, int64_t channels, int64_t reduced, Activation act_code,
                             void* dx, void* dw1, void* db1, void* dw2, void* db2) {
  PNEUMO_CPU_SCOPE("squeeze_excite_backward");
  const int act = static_cast<int>(act_code);
  PNEUMO_CHECK(act == 0 || act == 1, "squeeze_excite: activation code ", act, " (0 ReLU, 1 swish)");
  if (dt == DType::F32) {
    using T = float;
    backward_impl(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<const T*>(w1),
                  static_cast<const T*>(b1), static_cast<const T*>(w2), static_cast<const T*>(b2), batch, hw, channels,
                  reduced, act, static_cast<T*>(dx), static_cast<T*>(dw1), static_cast<T*>(db1), static_cast<T*>(dw2),
                  static_cast<T*>(db2));
  } else if (dt == DType::F64) {
    using T = double;
    backward_impl(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<const T*>(w1),
                  static_cast<const T*>(b1), static_cast<const T*>(w2), static_cast<const T*>(b2), batch, hw, channels,
                  reduced, act, static_cast<T*>(dx), static_cast<T*>(dw1), static_cast<T*>(db1), static_cast<T*>(dw2),
                  static_cast<T*>(db2));
  } else {
    PNEUMO_FAIL("squeeze_excite (CPU): dtype ", dtype_name(dt), " not supported (F32, F64)");
  }
}

}  // namespace pneumo::kernels::cpu
