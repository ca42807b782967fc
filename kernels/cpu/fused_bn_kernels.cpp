// CPU oracle of the fused BatchNorm kernels (see fused_bn_kernels.h). Plain loops in double, parallel over
// channels or samples only where each thread owns its outputs, so results do not depend on the thread count.
#include "kernels/cpu/fused_bn_kernels.h"

#include <cmath>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/parallel.h"

namespace pneumo::kernels::cpu {
namespace {

// Storage element <-> double; BF16 is held as its 16-bit pattern and rounded to nearest even on store.
struct Bf16Bits {
  uint16_t bits;
};
inline double ld(const float* p, int64_t i) { return p[i]; }
inline double ld(const double* p, int64_t i) { return p[i]; }
inline double ld(const Bf16Bits* p, int64_t i) { return bf16_bits_to_float(p[i].bits); }
inline void st(float* p, int64_t i, double v) { p[i] = static_cast<float>(v); }
inline void st(double* p, int64_t i, double v) { p[i] = v; }
inline void st(Bf16Bits* p, int64_t i, double v) { p[i].bits = float_to_bf16_bits(static_cast<float>(v)); }

// fn(T{}, S{}): T the activation storage, S the statistics type.
template <typename Fn>
void dispatch(DType dt, const char* what, Fn&& fn) {
  if (dt == DType::F32)
    fn(float{}, float{});
  else if (dt == DType::F64)
    fn(double{}, double{});
  else if (dt == DType::BF16)
    fn(Bf16Bits{}, float{});
  else
    PNEUMO_FAIL(what, ": CPU fused BatchNorm supports F32, F64 and BF16, got ", dtype_name(dt));
}

template <typename S>
double at_or(const void* p, int64_t i, double fallback) {
  return p ? static_cast<double>(static_cast<const S*>(p)[i]) : fallback;
}

template <typename S>
std::vector<double> invstd_of(const void* var, int64_t c, double eps) {
  std::vector<double> r(c);
  for (int64_t k = 0; k < c; ++k) r[k] = 1.0 / std::sqrt(static_cast<double>(static_cast<const S*>(var)[k]) + eps);
  return r;
}

}  // namespace

void fused_bn_statistics(DType dt, const void* x_, int64_t n, int64_t hw, int64_t c, void* mean_, void* var_,
                         void* sample_sum_) {
  PNEUMO_CHECK(n > 0 && hw > 0 && c > 0, "fused_bn_statistics: empty input [", n, ", ", hw, ", ", c, "]");
  dispatch(dt, "fused_bn_statistics", [&](auto t0, auto s0) {
    using T = decltype(t0);
    using S = decltype(s0);
    const T* x = static_cast<const T*>(x_);
    const double rows = static_cast<double>(n * hw);
    // Row-major per-sample channel sums (each sample by one thread), combined in sample order; then the
    // squared deviations from the mean the same way (two reads: the exact reference, no cancellation).
    std::vector<double> ss(n * c, 0.0), sq(n * c, 0.0), mean(c, 0.0);
#pragma omp parallel for schedule(static) if (n > 1 && worth_parallel(n * hw * c))
    for (int64_t s = 0; s < n; ++s) {
      double* acc = &ss[s * c];
      for (int64_t r = 0; r < hw; ++r)
        for (int64_t k = 0; k < c; ++k) acc[k] += ld(x, (s * hw + r) * c + k);
    }
    for (int64_t s = 0; s < n; ++s)
      for (int64_t k = 0; k < c; ++k) mean[k] += ss[s * c + k];
    for (int64_t k = 0; k < c; ++k) mean[k] /= rows;
#pragma omp parallel for schedule(static) if (n > 1 && worth_parallel(n * hw * c))
    for (int64_t s = 0; s < n; ++s) {
      double* acc = &sq[s * c];
      for (int64_t r = 0; r < hw; ++r)
        for (int64_t k = 0; k < c; ++k) {
          const double d = ld(x, (s * hw + r) * c + k) - mean[k];
          acc[k] += d * d;
        }
    }
    for (int64_t k = 0; k < c; ++k) {
      double v = 0;
      for (int64_t s = 0; s < n; ++s) {
        v += sq[s * c + k];
        if (sample_sum_) static_cast<S*>(sample_sum_)[s * c + k] = static_cast<S>(ss[s * c + k]);
      }
      if (mean_) static_cast<S*>(mean_)[k] = static_cast<S>(mean[k]);
      if (var_) static_cast<S*>(var_)[k] = static_cast<S>(v / rows);
    }
  });
}

void fused_bn_pool(DType dt, const void* sample_sum, int64_t n, int64_t hw, int64_t c, const void* mean,
                   const void* var, double eps, const void* w, const void* b, void* pooled) {
  dispatch(dt, "fused_bn_pool", [&](auto, auto s0) {
    using S = decltype(s0);
    const std::vector<double> invstd = invstd_of<S>(var, c, eps);
    for (int64_t s = 0; s < n; ++s)
      for (int64_t k = 0; k < c; ++k) {
        const double m = at_or<S>(sample_sum, s * c + k, 0) / static_cast<double>(hw);
        const double v = (m - at_or<S>(mean, k, 0)) * invstd[k] * at_or<S>(w, k, 1) + at_or<S>(b, k, 0);
        static_cast<S*>(pooled)[s * c + k] = static_cast<S>(v);
      }
  });
}

void fused_bn_apply(DType dt, const void* x_, int64_t n, int64_t hw, int64_t c, const void* mean, const void* var,
                    double eps, const void* w, const void* b, const void* gate, const void* residual_, bool relu,
                    void* y_) {
  dispatch(dt, "fused_bn_apply", [&](auto t0, auto s0) {
    using T = decltype(t0);
    using S = decltype(s0);
    const T* x = static_cast<const T*>(x_);
    const T* residual = static_cast<const T*>(residual_);
    T* y = static_cast<T*>(y_);
    const std::vector<double> invstd = invstd_of<S>(var, c, eps);
    std::vector<double> scale(c), shift(c), g(n * c, 1.0);
    for (int64_t k = 0; k < c; ++k) {
      scale[k] = invstd[k] * at_or<S>(w, k, 1);
      shift[k] = at_or<S>(b, k, 0) - at_or<S>(mean, k, 0) * scale[k];
    }
    if (gate)
      for (int64_t j = 0; j < n * c; ++j) g[j] = at_or<S>(gate, j, 1);
#pragma omp parallel for schedule(static) if (worth_parallel(n * hw * c))
    for (int64_t r = 0; r < n * hw; ++r) {
      const double* gs = &g[(r / hw) * c];
      for (int64_t k = 0; k < c; ++k) {
        const int64_t i = r * c + k;
        double v = (ld(x, i) * scale[k] + shift[k]) * gs[k];
        if (residual) v += ld(residual, i);
        if (relu && !(v > 0) && v == v) v = 0.0;  // NaN propagates, as relu(x) = max(x, 0) in PyTorch
        st(y, i, v);
      }
    }
  });
}

void fused_bn_backward_reduce(DType dt, const void* dy_, const void* y_, const void* x_, int64_t n, int64_t hw, int64_t c,
                              const void* mean, const void* var, double eps, bool relu, bool per_sample, void* s0_,
                              void* s1_, void* dres_) {
  dispatch(dt, "fused_bn_backward_reduce", [&](auto t0, auto z0) {
    using T = decltype(t0);
    using S = decltype(z0);
    const T *dy = static_cast<const T*>(dy_), *y = static_cast<const T*>(y_), *x = static_cast<const T*>(x_);
    T* dres = static_cast<T*>(dres_);
    S *s0 = static_cast<S*>(s0_), *s1 = static_cast<S*>(s1_);
    const std::vector<double> invstd = invstd_of<S>(var, c, eps);
    std::vector<double> m(c), a0(n * c, 0.0), a1(n * c, 0.0);
    for (int64_t k = 0; k < c; ++k) m[k] = at_or<S>(mean, k, 0);
    // Row-major per-sample sums (one thread per sample), combined in sample order.
#pragma omp parallel for schedule(static) if (n > 1 && worth_parallel(n * hw * c))
    for (int64_t s = 0; s < n; ++s) {
      double *p0 = &a0[s * c], *p1 = &a1[s * c];
      for (int64_t r = 0; r < hw; ++r)
        for (int64_t k = 0; k < c; ++k) {
          const int64_t i = (s * hw + r) * c + k;
          double d = ld(dy, i);
          if (relu && !(ld(y, i) > 0)) d = 0;
          if (dres) st(dres, i, d);
          p0[k] += d;
          p1[k] += d * (ld(x, i) - m[k]);
        }
    }
    for (int64_t k = 0; k < c; ++k) {
      double t0s = 0, t1s = 0;
      for (int64_t s = 0; s < n; ++s) {
        if (per_sample) {
          s0[s * c + k] = static_cast<S>(a0[s * c + k]);
          s1[s * c + k] = static_cast<S>(a1[s * c + k] * invstd[k]);
        }
        t0s += a0[s * c + k];
        t1s += a1[s * c + k];
      }
      if (!per_sample) {
        s0[k] = static_cast<S>(t0s);
        s1[k] = static_cast<S>(t1s * invstd[k]);
      }
    }
  });
}

void fused_bn_backward_finish(DType dt, int64_t n, int64_t hw, int64_t c, const void* s0, const void* s1,
                              const void* gate, const void* dpool, const void* sample_sum, const void* mean,
                              const void* var, double eps, const void* w, const void* b, void* dgate, void* dbias,
                              void* dweight) {
  dispatch(dt, "fused_bn_backward_finish", [&](auto, auto z0) {
    using S = decltype(z0);
    const bool per_sample = gate || dpool;
    const int64_t ns = per_sample ? n : 1;
    PNEUMO_CHECK(!dgate || per_sample, "fused_bn_backward_finish: dgate needs per-sample sums (a gate)");
    PNEUMO_CHECK(!dpool || sample_sum, "fused_bn_backward_finish: dpool needs the sample sums");
    const std::vector<double> invstd = invstd_of<S>(var, c, eps);
    for (int64_t k = 0; k < c; ++k) {
      double db = 0, dw = 0;
      for (int64_t s = 0; s < ns; ++s) {
        const int64_t j = s * c + k;
        const double a0 = at_or<S>(s0, j, 0), a1 = at_or<S>(s1, j, 0), g = at_or<S>(gate, j, 1);
        if (dgate) static_cast<S*>(dgate)[j] = static_cast<S>(at_or<S>(w, k, 1) * a1 + at_or<S>(b, k, 0) * a0);
        db += g * a0;
        dw += g * a1;
        if (dpool) {
          const double dp = at_or<S>(dpool, j, 0);
          const double xhat_sum =
              (at_or<S>(sample_sum, j, 0) - static_cast<double>(hw) * at_or<S>(mean, k, 0)) * invstd[k];
          db += dp;
          dw += dp / static_cast<double>(hw) * xhat_sum;
        }
      }
      if (dbias) static_cast<S*>(dbias)[k] = static_cast<S>(db);
      if (dweight) static_cast<S*>(dweight)[k] = static_cast<S>(dw);
    }
  });
}

void fused_bn_backward_data(DType dt, const void* dy_, const void* y_, const void* x_, int64_t n, int64_t hw, int64_t c,
                            const void* mean, const void* var, double eps, const void* w, const void* gate,
                            const void* dpool, const void* dbias, const void* dweight, bool relu, bool training,
                            bool accumulate, void* dx_) {
  dispatch(dt, "fused_bn_backward_data", [&](auto t0, auto z0) {
    using T = decltype(t0);
    using S = decltype(z0);
    const T *dy = static_cast<const T*>(dy_), *y = static_cast<const T*>(y_), *x = static_cast<const T*>(x_);
    T* dx = static_cast<T*>(dx_);
    const std::vector<double> invstd = invstd_of<S>(var, c, eps);
    const double rows = static_cast<double>(n * hw);
    // dx = A (g dpre + dpool / hw) - [training] A (dbias + xhat dweight) / rows, A = w invstd.
    std::vector<double> A(c), M(c), P(c, 0.0), Q(c, 0.0), g(n * c, 1.0), e(n * c, 0.0);
    for (int64_t k = 0; k < c; ++k) {
      A[k] = at_or<S>(w, k, 1) * invstd[k];
      M[k] = at_or<S>(mean, k, 0);
      if (training) {
        P[k] = -A[k] * invstd[k] * at_or<S>(dweight, k, 0) / rows;
        Q[k] = -A[k] * at_or<S>(dbias, k, 0) / rows;
      }
    }
    for (int64_t j = 0; j < n * c; ++j) {
      g[j] = at_or<S>(gate, j, 1);
      e[j] = A[j % c] * at_or<S>(dpool, j, 0) / static_cast<double>(hw) + Q[j % c];
    }
#pragma omp parallel for schedule(static) if (worth_parallel(n * hw * c))
    for (int64_t r = 0; r < n * hw; ++r) {
      const double *gs = &g[(r / hw) * c], *es = &e[(r / hw) * c];
      for (int64_t k = 0; k < c; ++k) {
        const int64_t i = r * c + k;
        double d = ld(dy, i);
        if (relu && !(ld(y, i) > 0)) d = 0;
        double v = A[k] * d * gs[k] + es[k];
        if (training) v += P[k] * (ld(x, i) - M[k]);
        if (accumulate) v += ld(dx, i);
        st(dx, i, v);
      }
    }
  });
}

}  // namespace pneumo::kernels::cpu
