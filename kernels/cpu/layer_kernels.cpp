// CPU reference kernels for BatchNorm, pooling, resizing and dropout (see layer_kernels.h). F32/F64, sums in
// double; per-channel reductions split the rows into fixed blocks of kBlockRows combined in order, so the
// result is the same for any thread count.
#include "kernels/cpu/layer_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/profile.h"
#include "kernels/cpu/float_dispatch.h"
#include "kernels/cpu/parallel.h"
#include "kernels/philox.h"

namespace pneumo::kernels::cpu {
namespace {

constexpr int64_t kBlockRows = 256;

// out[c] = sum over rows of term(row, c), in double, deterministic.
template <typename Term>
void channel_sums(int64_t rows, int64_t channels, Term&& term, std::vector<double>& out) {
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<double> partial(blocks * channels, 0.0);
#pragma omp parallel for schedule(static) if (worth_parallel(rows * channels))
  for (int64_t b = 0; b < blocks; ++b) {
    double* p = partial.data() + b * channels;
    const int64_t end = std::min(rows, (b + 1) * kBlockRows);
    for (int64_t r = b * kBlockRows; r < end; ++r)
      for (int64_t c = 0; c < channels; ++c) p[c] += term(r, c);
  }
  out.assign(channels, 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t c = 0; c < channels; ++c) out[c] += partial[b * channels + c];
}

// F32 BatchNorm loops over a block of rows, compiled for AVX-512, AVX2 and plain x86-64 and picked when the
// program loads (GCC function multiversioning; the default build targets generic x86-64). Same arithmetic
// as the generic paths: double per element, each channel summed over rows in order.
#define PNEUMO_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

PNEUMO_CPU_CLONES void rows_sum_f32(const float* __restrict x, int64_t nrows, int64_t channels, double* __restrict p) {
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t c = 0; c < channels; ++c) p[c] += static_cast<double>(x[r * channels + c]);
}
PNEUMO_CPU_CLONES void rows_sq_f32(const float* __restrict x, int64_t nrows, int64_t channels,
                                   const double* __restrict mean, double* __restrict p) {
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const double d = static_cast<double>(x[r * channels + c]) - mean[c];
      p[c] += d * d;
    }
}
// p1 += dy, p2 += dy * (x - mean) in one pass.
PNEUMO_CPU_CLONES void rows_dy_f32(const float* __restrict dy, const float* __restrict x, int64_t nrows,
                                   int64_t channels, const double* __restrict mean, double* __restrict p1,
                                   double* __restrict p2) {
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const double g = static_cast<double>(dy[r * channels + c]);
      p1[c] += g;
      p2[c] += g * (static_cast<double>(x[r * channels + c]) - mean[c]);
    }
}
// y = k1 * x + k0, or with a second input: y = k1 * x + k2 * x2 + k0 (in double, rounded once).
PNEUMO_CPU_CLONES void rows_affine_f32(const float* __restrict x, const float* __restrict x2, int64_t nrows,
                                       int64_t channels, const double* __restrict k1, const double* __restrict k2,
                                       const double* __restrict k0, float* __restrict y) {
  for (int64_t r = 0; r < nrows; ++r) {
    const float* xr = x + r * channels;
    float* yr = y + r * channels;
    if (x2 == nullptr) {
      for (int64_t c = 0; c < channels; ++c) yr[c] = static_cast<float>(static_cast<double>(xr[c]) * k1[c] + k0[c]);
    } else {
      const float* x2r = x2 + r * channels;
      for (int64_t c = 0; c < channels; ++c)
        yr[c] = static_cast<float>(static_cast<double>(xr[c]) * k1[c] + static_cast<double>(x2r[c]) * k2[c] + k0[c]);
    }
  }
}

// out1[c] (and out2[c]) = sums over all rows of block(r0, nrows, p1, p2)'s per-block partials, combined in
// block order as channel_sums does.
template <typename Block>
void block_sums(int64_t rows, int64_t channels, Block&& block, std::vector<double>& out1, std::vector<double>* out2) {
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<double> partial(blocks * channels * 2, 0.0);
#pragma omp parallel for schedule(static) if (worth_parallel(rows * channels))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kBlockRows;
    block(r0, std::min(rows, r0 + kBlockRows) - r0, partial.data() + b * channels,
          partial.data() + (blocks + b) * channels);
  }
  out1.assign(channels, 0.0);
  if (out2) out2->assign(channels, 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t c = 0; c < channels; ++c) {
      out1[c] += partial[b * channels + c];
      if (out2) (*out2)[c] += partial[(blocks + b) * channels + c];
    }
}

// Rows in parallel blocks for an elementwise F32 loop fn(r0, nrows).
template <typename Fn>
void row_blocks(int64_t rows, int64_t channels, Fn&& fn) {
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
#pragma omp parallel for schedule(static) if (worth_parallel(rows * channels))
  for (int64_t b = 0; b < blocks; ++b) fn(b * kBlockRows, std::min(rows, (b + 1) * kBlockRows) - b * kBlockRows);
}

template <typename T>
std::vector<double> invstd_of(const T* var, int64_t channels, double eps) {
  std::vector<double> out(channels);
  for (int64_t c = 0; c < channels; ++c) out[c] = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
  return out;
}

}  // namespace

void batch_norm_statistics(DType dt, const void* x_, int64_t rows, int64_t channels, void* mean_, void* var_) {
  PNEUMO_CPU_SCOPE("batch_norm_statistics");
  PNEUMO_CHECK(rows > 0, "batch_norm: no rows");
  dispatch_float(dt, "batch_norm_statistics", [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_);
    std::vector<double> sum, sq;
    if constexpr (std::is_same_v<T, float>) {
      block_sums(
          rows, channels,
          [&](int64_t r0, int64_t n, double* p, double*) { rows_sum_f32(x + r0 * channels, n, channels, p); }, sum,
          nullptr);
    } else {
      channel_sums(rows, channels, [&](int64_t r, int64_t c) { return static_cast<double>(x[r * channels + c]); }, sum);
    }
    for (auto& v : sum) v /= static_cast<double>(rows);
    // Two passes (mean, then squared deviations): no cancellation for large means.
    if constexpr (std::is_same_v<T, float>) {
      block_sums(
          rows, channels,
          [&](int64_t r0, int64_t n, double* p, double*) { rows_sq_f32(x + r0 * channels, n, channels, sum.data(), p); },
          sq, nullptr);
    } else {
      channel_sums(
          rows, channels,
          [&](int64_t r, int64_t c) {
            const double d = static_cast<double>(x[r * channels + c]) - sum[c];
            return d * d;
          },
          sq);
    }
    T* mean = static_cast<T*>(mean_);
    T* var = static_cast<T*>(var_);
    for (int64_t c = 0; c < channels; ++c) {
      mean[c] = static_cast<T>(sum[c]);
      var[c] = static_cast<T>(sq[c] / static_cast<double>(rows));
    }
  });
}

void batch_norm_apply(DType dt, const void* x_, int64_t rows, int64_t channels, const void* mean_, const void* var_,
                      double eps, const void* weight_, const void* bias_, void* y_) {
  PNEUMO_CPU_SCOPE("batch_norm_apply");
  dispatch_float(dt, "batch_norm_apply", [&](auto zero) {
    using T = decltype(zero);
    const T *x = static_cast<const T*>(x_), *mean = static_cast<const T*>(mean_);
    const T *weight = static_cast<const T*>(weight_), *bias = static_cast<const T*>(bias_);
    T* y = static_cast<T*>(y_);
    const std::vector<double> invstd = invstd_of(static_cast<const T*>(var_), channels, eps);
    if constexpr (std::is_same_v<T, float>) {  // y = x * scale + shift, both per channel in double
      std::vector<double> scale(channels), shift(channels);
      for (int64_t c = 0; c < channels; ++c) {
        scale[c] = invstd[c] * (weight ? static_cast<double>(weight[c]) : 1.0);
        shift[c] = (bias ? static_cast<double>(bias[c]) : 0.0) - static_cast<double>(mean[c]) * scale[c];
      }
      row_blocks(rows, channels, [&](int64_t r0, int64_t n) {
        rows_affine_f32(x + r0 * channels, nullptr, n, channels, scale.data(), nullptr, shift.data(), y + r0 * channels);
      });
      return;
    }
#pragma omp parallel for schedule(static) if (worth_parallel(rows * channels))
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < channels; ++c) {
        double v = (static_cast<double>(x[r * channels + c]) - static_cast<double>(mean[c])) * invstd[c];
        if (weight) v *= static_cast<double>(weight[c]);
        if (bias) v += static_cast<double>(bias[c]);
        y[r * channels + c] = static_cast<T>(v);
      }
  });
}

void batch_norm_backward_reduce(DType dt, const void* dy_, const void* x_, int64_t rows, int64_t channels,
                                const void* mean_, const void* var_, double eps, void* sum_dy_, void* sum_dy_xhat_) {
  PNEUMO_CPU_SCOPE("batch_norm_backward_reduce");
  dispatch_float(dt, "batch_norm_backward_reduce", [&](auto zero) {
    using T = decltype(zero);
    const T *dy = static_cast<const T*>(dy_), *x = static_cast<const T*>(x_), *mean = static_cast<const T*>(mean_);
    const std::vector<double> invstd = invstd_of(static_cast<const T*>(var_), channels, eps);
    std::vector<double> s1, s2;
    if constexpr (std::is_same_v<T, float>) {
      std::vector<double> mean_d(mean, mean + channels);
      block_sums(
          rows, channels,
          [&](int64_t r0, int64_t n, double* p1, double* p2) {
            rows_dy_f32(dy + r0 * channels, x + r0 * channels, n, channels, mean_d.data(), p1, p2);
          },
          s1, &s2);
    } else {
      channel_sums(rows, channels, [&](int64_t r, int64_t c) { return static_cast<double>(dy[r * channels + c]); }, s1);
      channel_sums(
          rows, channels,
          [&](int64_t r, int64_t c) {
            const int64_t i = r * channels + c;
            return static_cast<double>(dy[i]) * (static_cast<double>(x[i]) - static_cast<double>(mean[c]));
          },
          s2);
    }
    T* sum_dy = static_cast<T*>(sum_dy_);
    T* sum_dy_xhat = static_cast<T*>(sum_dy_xhat_);
    for (int64_t c = 0; c < channels; ++c) {
      sum_dy[c] = static_cast<T>(s1[c]);
      sum_dy_xhat[c] = static_cast<T>(s2[c] * invstd[c]);
    }
  });
}

void batch_norm_backward_data(DType dt, const void* dy_, const void* x_, int64_t rows, int64_t channels,
                              const void* mean_, const void* var_, double eps, const void* weight_,
                              const void* sum_dy_, const void* sum_dy_xhat_, bool training, void* dx_) {
  PNEUMO_CPU_SCOPE("batch_norm_backward_data");
  dispatch_float(dt, "batch_norm_backward_data", [&](auto zero) {
    using T = decltype(zero);
    const T *dy = static_cast<const T*>(dy_), *x = static_cast<const T*>(x_), *mean = static_cast<const T*>(mean_);
    const T* weight = static_cast<const T*>(weight_);
    const T *sum_dy = static_cast<const T*>(sum_dy_), *sum_dy_xhat = static_cast<const T*>(sum_dy_xhat_);
    T* dx = static_cast<T*>(dx_);
    const std::vector<double> invstd = invstd_of(static_cast<const T*>(var_), channels, eps);
    const double inv_rows = 1.0 / static_cast<double>(rows);
    if constexpr (std::is_same_v<T, float>) {
      // dx = k1 * dy + k2 * x + k0: the formula below expanded per channel, in double.
      std::vector<double> k1(channels), k2(channels, 0.0), k0(channels, 0.0);
      for (int64_t c = 0; c < channels; ++c) {
        k1[c] = (weight ? static_cast<double>(weight[c]) : 1.0) * invstd[c];
        if (training) {
          const double t = static_cast<double>(sum_dy_xhat[c]) * invstd[c] * inv_rows;
          k2[c] = -k1[c] * t;
          k0[c] = k1[c] * (static_cast<double>(mean[c]) * t - static_cast<double>(sum_dy[c]) * inv_rows);
        }
      }
      row_blocks(rows, channels, [&](int64_t r0, int64_t n) {
        rows_affine_f32(dy + r0 * channels, training ? x + r0 * channels : nullptr, n, channels, k1.data(), k2.data(),
                        k0.data(), dx + r0 * channels);  // eval: x is not read (as below)
      });
      return;
    }
#pragma omp parallel for schedule(static) if (worth_parallel(rows * channels))
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t i = r * channels + c;
        const double scale = (weight ? static_cast<double>(weight[c]) : 1.0) * invstd[c];
        double g = static_cast<double>(dy[i]);
        if (training) {
          const double xhat = (static_cast<double>(x[i]) - static_cast<double>(mean[c])) * invstd[c];
          g -= (static_cast<double>(sum_dy[c]) + xhat * static_cast<double>(sum_dy_xhat[c])) * inv_rows;
        }
        dx[i] = static_cast<T>(scale * g);
      }
  });
}

void batch_norm_update_running(DType dt, const void* mean_, const void* var_, void* running_mean_, void* running_var_,
                               int64_t channels, double momentum, int64_t count) {
  PNEUMO_CPU_SCOPE("batch_norm_update_running");
  PNEUMO_CHECK(count > 1, "batch_norm: the unbiased variance needs more than one value per channel, got ", count);
  dispatch_float(dt, "batch_norm_update_running", [&](auto zero) {
    using T = decltype(zero);
    const T *mean = static_cast<const T*>(mean_), *var = static_cast<const T*>(var_);
    T *rm = static_cast<T*>(running_mean_), *rv = static_cast<T*>(running_var_);
    const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
    for (int64_t c = 0; c < channels; ++c) {
      rm[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rm[c]) + momentum * static_cast<double>(mean[c]));
      rv[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rv[c]) +
                             momentum * static_cast<double>(var[c]) * unbias);
    }
  });
}

void max_pool2d_forward(DType dt, const void* x_, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kernel,
                        int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* y_, int32_t* argmax) {
  PNEUMO_CPU_SCOPE("max_pool2d_forward");
  PNEUMO_CHECK(h * w < std::numeric_limits<int32_t>::max(), "max_pool2d: plane too large for int32 indices");
  dispatch_float(dt, "max_pool2d_forward", [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_);
    T* y = static_cast<T*>(y_);
#pragma omp parallel for schedule(static) if (worth_parallel(n * oh * ow * c * kernel * kernel))
    for (int64_t nh = 0; nh < n * oh; ++nh) {
      const int64_t b = nh / oh, py = nh % oh;
      std::vector<T> best(c);
      std::vector<int32_t> arg(c);
      for (int64_t px = 0; px < ow; ++px) {
        const int64_t y0 = py * stride - pad, x0 = px * stride - pad;
        const int64_t ys = std::max<int64_t>(y0, 0), ye = std::min(y0 + kernel, h);
        const int64_t xs = std::max<int64_t>(x0, 0), xe = std::min(x0 + kernel, w);
        // As PyTorch: start at -inf with the first in-window index; a larger value or a NaN takes over.
        std::fill(best.begin(), best.end(), -std::numeric_limits<T>::infinity());
        std::fill(arg.begin(), arg.end(), static_cast<int32_t>(ys * w + xs));
        for (int64_t iy = ys; iy < ye; ++iy)
          for (int64_t ix = xs; ix < xe; ++ix) {
            const T* xp = x + ((b * h + iy) * w + ix) * c;
            for (int64_t ch = 0; ch < c; ++ch)
              if (xp[ch] > best[ch] || std::isnan(xp[ch])) {
                best[ch] = xp[ch];
                arg[ch] = static_cast<int32_t>(iy * w + ix);
              }
          }
        const int64_t o = ((b * oh + py) * ow + px) * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          y[o + ch] = best[ch];
          argmax[o + ch] = arg[ch];
        }
      }
    }
  });
}

void max_pool2d_backward(DType dt, const void* dy_, const int32_t* argmax, int64_t n, int64_t h, int64_t w, int64_t c,
                         int64_t kernel, int64_t stride, int64_t pad, int64_t oh, int64_t ow, void* dx_) {
  PNEUMO_CPU_SCOPE("max_pool2d_backward");
  dispatch_float(dt, "max_pool2d_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* dy = static_cast<const T*>(dy_);
    T* dx = static_cast<T*>(dx_);
    // Output windows covering input index i along an axis: o*stride - pad <= i <= o*stride - pad + kernel - 1.
    auto first_window = [&](int64_t i) {
      const int64_t num = i + pad - kernel + 1;
      return num <= 0 ? int64_t{0} : (num + stride - 1) / stride;
    };
#pragma omp parallel for schedule(static) if (worth_parallel(n * h * w * c * kernel * kernel))
    for (int64_t nh = 0; nh < n * h; ++nh) {
      const int64_t b = nh / h, iy = nh % h;
      const int64_t py0 = first_window(iy), py1 = std::min(oh - 1, (iy + pad) / stride);
      std::vector<double> acc(c);
      for (int64_t ix = 0; ix < w; ++ix) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const int64_t px0 = first_window(ix), px1 = std::min(ow - 1, (ix + pad) / stride);
        const int32_t self = static_cast<int32_t>(iy * w + ix);
        for (int64_t py = py0; py <= py1; ++py)
          for (int64_t px = px0; px <= px1; ++px) {
            const int64_t o = ((b * oh + py) * ow + px) * c;
            for (int64_t ch = 0; ch < c; ++ch)
              if (argmax[o + ch] == self) acc[ch] += static_cast<double>(dy[o + ch]);
          }
        T* dxp = dx + ((b * h + iy) * w + ix) * c;
        for (int64_t ch = 0; ch < c; ++ch) dxp[ch] = static_cast<T>(acc[ch]);
      }
    }
  });
}

void upsample_nearest2x_forward(DType dt, const void* x_, int64_t n, int64_t h, int64_t w, int64_t c, void* y_) {
  PNEUMO_CPU_SCOPE("upsample_nearest2x_forward");
  dispatch_float(dt, "upsample_nearest2x_forward", [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_);
    T* y = static_cast<T*>(y_);
#pragma omp parallel for schedule(static) if (worth_parallel(n * h * w * c * 4))
    for (int64_t nh = 0; nh < n * 2 * h; ++nh) {
      const int64_t b = nh / (2 * h), oy = nh % (2 * h);
      for (int64_t ox = 0; ox < 2 * w; ++ox) {
        const T* src = x + ((b * h + oy / 2) * w + ox / 2) * c;
        std::copy(src, src + c, y + ((b * 2 * h + oy) * 2 * w + ox) * c);
      }
    }
  });
}

void upsample_nearest2x_backward(DType dt, const void* dy_, int64_t n, int64_t h, int64_t w, int64_t c, void* dx_) {
  PNEUMO_CPU_SCOPE("upsample_nearest2x_backward");
  dispatch_float(dt, "upsample_nearest2x_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* dy = static_cast<const T*>(dy_);
    T* dx = static_cast<T*>(dx_);
#pragma omp parallel for schedule(static) if (worth_parallel(n * h * w * c * 4))
    for (int64_t nh = 0; nh < n * h; ++nh) {
      const int64_t b = nh / h, iy = nh % h;
      for (int64_t ix = 0; ix < w; ++ix) {
        T* d = dx + ((b * h + iy) * w + ix) * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          double acc = 0;
          for (int64_t dyy = 0; dyy < 2; ++dyy)
            for (int64_t dxx = 0; dxx < 2; ++dxx)
              acc += static_cast<double>(dy[((b * 2 * h + 2 * iy + dyy) * 2 * w + 2 * ix + dxx) * c + ch]);
          d[ch] = static_cast<T>(acc);
        }
      }
    }
  });
}

void resize_bilinear_forward(DType dt, const void* x_, int64_t n, int64_t h, int64_t w, int64_t c,
                             const LinearAxis& ay, const LinearAxis& ax, int64_t oh, int64_t ow, void* y_) {
  PNEUMO_CPU_SCOPE("resize_bilinear_forward");
  dispatch_float(dt, "resize_bilinear_forward", [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_);
    T* y = static_cast<T*>(y_);
#pragma omp parallel for schedule(static) if (worth_parallel(n * oh * ow * c * 4))
    for (int64_t nh = 0; nh < n * oh; ++nh) {
      const int64_t b = nh / oh, oy = nh % oh;
      const T* r0 = x + (b * h + ay.i0[oy]) * w * c;
      const T* r1 = x + (b * h + ay.i1[oy]) * w * c;
      const double wy0 = ay.l0[oy], wy1 = ay.l1[oy];
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t c0 = ax.i0[ox] * c, c1 = ax.i1[ox] * c;
        const double wx0 = ax.l0[ox], wx1 = ax.l1[ox];
        T* out = y + ((b * oh + oy) * ow + ox) * c;
        for (int64_t ch = 0; ch < c; ++ch)
          out[ch] = static_cast<T>(wy0 * (wx0 * static_cast<double>(r0[c0 + ch]) + wx1 * static_cast<double>(r0[c1 + ch])) +
                                   wy1 * (wx0 * static_cast<double>(r1[c0 + ch]) + wx1 * static_cast<double>(r1[c1 + ch])));
      }
    }
  });
}

void resize_bilinear_backward(DType dt, const void* dy_, int64_t n, int64_t h, int64_t w, int64_t c,
                              const LinearAxis& ay, const LinearAxis& ax, int64_t oh, int64_t ow, void* dx_) {
  PNEUMO_CPU_SCOPE("resize_bilinear_backward");
  dispatch_float(dt, "resize_bilinear_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* dy = static_cast<const T*>(dy_);
    T* dx = static_cast<T*>(dx_);
#pragma omp parallel for schedule(static) if (worth_parallel(n * oh * ow * c * 4))
    for (int64_t nh = 0; nh < n * h; ++nh) {
      const int64_t b = nh / h, iy = nh % h;
      std::vector<double> acc(c);
      for (int64_t ix = 0; ix < w; ++ix) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int32_t jy = ay.start[iy]; jy < ay.start[iy + 1]; ++jy) {
          const int64_t oy = ay.out_index[jy];
          const double wy = ay.weight[jy];
          for (int32_t jx = ax.start[ix]; jx < ax.start[ix + 1]; ++jx) {
            const double wgt = wy * ax.weight[jx];
            const T* g = dy + ((b * oh + oy) * ow + ax.out_index[jx]) * c;
            for (int64_t ch = 0; ch < c; ++ch) acc[ch] += wgt * static_cast<double>(g[ch]);
          }
        }
        T* d = dx + ((b * h + iy) * w + ix) * c;
        for (int64_t ch = 0; ch < c; ++ch) d[ch] = static_cast<T>(acc[ch]);
      }
    }
  });
}

void dropout(DType dt, const void* x_, void* y_, int64_t count, uint64_t seed, uint64_t offset, double p,
             const int64_t* philox_state) {
  PNEUMO_CPU_SCOPE("dropout");
  if (philox_state) {
    seed = static_cast<uint64_t>(philox_state[0]);
    offset += static_cast<uint64_t>(philox_state[1]);
  }
  dispatch_float(dt, "dropout", [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_);
    T* y = static_cast<T*>(y_);
    const double scale = 1.0 / (1.0 - p);
#pragma omp parallel for schedule(static) if (worth_parallel(count))
    for (int64_t i = 0; i < count; ++i)
      y[i] = philox_uniform_at(seed, offset, static_cast<uint64_t>(i)) > p ? static_cast<T>(static_cast<double>(x[i]) * scale)
                                                                          : T(0);
  });
}

void drop_connect(DType dt, const void* x_, void* y_, int64_t rows, int64_t row_size, uint64_t seed, uint64_t offset,
                  double p, const int64_t* philox_state) {
  PNEUMO_CPU_SCOPE("drop_connect");
  if (philox_state) {
    seed = static_cast<uint64_t>(philox_state[0]);
    offset += static_cast<uint64_t>(philox_state[1]);
  }
  dispatch_float(dt, "drop_connect", [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_);
    T* y = static_cast<T*>(y_);
    const double scale = 1.0 / (1.0 - p);
    for (int64_t r = 0; r < rows; ++r) {
      const bool keep = philox_uniform_at(seed, offset, static_cast<uint64_t>(r)) > p;
#pragma omp parallel for schedule(static) if (worth_parallel(row_size))
      for (int64_t i = 0; i < row_size; ++i)
        y[r * row_size + i] = keep ? static_cast<T>(static_cast<double>(x[r * row_size + i]) * scale) : T(0);
    }
  });
}

void pad_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
            int64_t left, int64_t right, void* y) {
  PNEUMO_CPU_SCOPE("pad_hw");
  const size_t es = dtype_size(dt);
  const int64_t ph = h + top + bottom, pw = w + left + right;
  std::memset(y, 0, static_cast<size_t>(n * ph * pw * c) * es);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < h; ++i)
      std::memcpy(static_cast<char*>(y) + (((b * ph + i + top) * pw + left) * c) * es,
                  static_cast<const char*>(x) + ((b * h + i) * w * c) * es, w * c * es);
}

void crop_hw(DType dt, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t top, int64_t bottom,
             int64_t left, int64_t right, void* y) {
  PNEUMO_CPU_SCOPE("crop_hw");
  const size_t es = dtype_size(dt);
  const int64_t oh = h - top - bottom, ow = w - left - right;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < oh; ++i)
      std::memcpy(static_cast<char*>(y) + ((b * oh + i) * ow * c) * es,
                  static_cast<const char*>(x) + (((b * h + i + top) * w + left) * c) * es, ow * c * es);
}

}  // namespace pneumo::kernels::cpu
