// CPU reference convolution, NHWC activations and KRSC weights, F32/F64. Per sample and group:
// im2col into [OH*OW, R*S*Cg] then the blocked GEMM (kernels::cpu::gemm); ungrouped convs take the columns
// in L2-sized chunks of positions; 1x1 stride-1 unpadded ungrouped convs are one GEMM over the whole batch;
// depthwise-style convs (one input channel per group) use direct loops; F32 grouped convs with k == c use
// the direct AVX-512 kernels of conv_grouped.h where the CPU has AVX-512 (all three passes), and F32
// stride-1 ungrouped k x k convs the implicit GEMMs of conv_implicit.h (no columns at all). Backward
// data is a GEMM into the column buffer followed by a GATHER col2im (each input element sums its own contributions in a fixed
// order, so results do not depend on the thread count).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/conv_grouped.h"
#include "kernels/cpu/conv_implicit.h"
#include "kernels/cpu/profile.h"
#include "kernels/cpu/host_memory.h"
#include "kernels/cpu/float_dispatch.h"
#include "kernels/cpu/layer_kernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/tensor_kernels.h"

namespace pneumo::kernels::cpu {
namespace {

bool is_pointwise(const ConvShape& cs) {
  return cs.r == 1 && cs.s == 1 && cs.stride_h == 1 && cs.stride_w == 1 && cs.pad_top == 0 && cs.pad_left == 0 &&
         cs.oh == cs.h && cs.ow == cs.w;
}

// col[p - p0, (r*S + s)*Cg + c] = x[ih, iw, g*Cg + c] (0 outside the input), p = oh*OW + ow in [p0, p1).
template <typename T>
void im2col(const ConvShape& cs, const T* x_sample, int64_t group, T* col, int64_t p0, int64_t p1) {
  PNEUMO_CPU_SCOPE("conv im2col");
  const int64_t cg = cs.c_per_group(), row = cs.r * cs.s * cg;
#pragma omp parallel for schedule(static) if (worth_parallel((p1 - p0) * row))
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t oh = p / cs.ow, ow = p % cs.ow;
    T* dst = col + (p - p0) * row;
    for (int64_t r = 0; r < cs.r; ++r) {
      const int64_t ih = oh * cs.stride_h - cs.pad_top + r * cs.dilation_h;
      for (int64_t s = 0; s < cs.s; ++s) {
        const int64_t iw = ow * cs.stride_w - cs.pad_left + s * cs.dilation_w;
        T* d = dst + (r * cs.s + s) * cg;
        if (ih >= 0 && ih < cs.h && iw >= 0 && iw < cs.w) {
          const T* src = x_sample + (ih * cs.w + iw) * cs.c + group * cg;
          for (int64_t c = 0; c < cg; ++c) d[c] = src[c];  // a loop, not memcpy: groups copy 4..32 values
        } else {
          std::fill(d, d + cg, T(0));
        }
      }
    }
  }
}

// The output position along one axis that input index i meets through kernel tap t, or -1.
inline int64_t tap_source(int64_t i, int64_t t, int64_t pad, int64_t dilation, int64_t stride, int64_t out) {
  const int64_t num = i + pad - t * dilation;
  if (num < 0 || num % stride != 0) return -1;
  const int64_t o = num / stride;
  return o < out ? o : -1;
}

// dx[ih, iw, g*Cg + c] = sum over taps of col[p, (r*S + s)*Cg + c] (gather form of col2im).
template <typename T>
void col2im_gather(const ConvShape& cs, const T* col, int64_t group, T* dx_sample) {
  PNEUMO_CPU_SCOPE("conv col2im");
  const int64_t cg = cs.c_per_group(), row = cs.r * cs.s * cg;
  // Sums in double: summing in float moved TrainFidelity's worst step from 0.77 % to 1.26 % (bound 1 %).
#pragma omp parallel for schedule(static) if (worth_parallel(cs.h * cs.w * row))
  for (int64_t ih = 0; ih < cs.h; ++ih) {
    std::vector<double> acc(cg);
    for (int64_t iw = 0; iw < cs.w; ++iw) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t r = 0; r < cs.r; ++r) {
        const int64_t oh = tap_source(ih, r, cs.pad_top, cs.dilation_h, cs.stride_h, cs.oh);
        if (oh < 0) continue;
        for (int64_t s = 0; s < cs.s; ++s) {
          const int64_t ow = tap_source(iw, s, cs.pad_left, cs.dilation_w, cs.stride_w, cs.ow);
          if (ow < 0) continue;
          const T* src = col + (oh * cs.ow + ow) * row + (r * cs.s + s) * cg;
          for (int64_t c = 0; c < cg; ++c) acc[c] += static_cast<double>(src[c]);
        }
      }
      T* dst = dx_sample + (ih * cs.w + iw) * cs.c + group * cg;
      for (int64_t c = 0; c < cg; ++c) dst[c] = static_cast<T>(acc[c]);
    }
  }
}

// Weight [K, R, S, 1] -> [R*S, K] so the inner loops over output channels are contiguous.
template <typename T>
std::vector<T> transpose_depthwise_weight(const ConvShape& cs, const T* w) {
  const int64_t taps = cs.r * cs.s;
  std::vector<T> wt(taps * cs.k);
  for (int64_t k = 0; k < cs.k; ++k)
    for (int64_t t = 0; t < taps; ++t) wt[t * cs.k + k] = w[k * taps + t];
  return wt;
}

// Accumulates in T: at most kh*kw (<= 49) products per output, and the inner loop stays vectorisable.
template <typename T>
void depthwise_forward(const ConvShape& cs, const T* x, const T* w, T* y) {
  const int64_t kg = cs.k_per_group();
  const std::vector<T> wt = transpose_depthwise_weight(cs, w);
#pragma omp parallel for schedule(static) if (worth_parallel(cs.n * cs.oh * cs.ow * cs.k * cs.r * cs.s))
  for (int64_t nh = 0; nh < cs.n * cs.oh; ++nh) {
    const int64_t n = nh / cs.oh, oh = nh % cs.oh;
    std::vector<T> acc(cs.k);
    for (int64_t ow = 0; ow < cs.ow; ++ow) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t r = 0; r < cs.r; ++r) {
        const int64_t ih = oh * cs.stride_h - cs.pad_top + r * cs.dilation_h;
        if (ih < 0 || ih >= cs.h) continue;
        for (int64_t s = 0; s < cs.s; ++s) {
          const int64_t iw = ow * cs.stride_w - cs.pad_left + s * cs.dilation_w;
          if (iw < 0 || iw >= cs.w) continue;
          const T* xp = x + ((n * cs.h + ih) * cs.w + iw) * cs.c;
          const T* wp = wt.data() + (r * cs.s + s) * cs.k;
          T* a = acc.data();
          if (kg == 1) {
            for (int64_t k = 0; k < cs.k; ++k) a[k] += xp[k] * wp[k];
          } else {
            for (int64_t k = 0; k < cs.k; ++k) a[k] += xp[k / kg] * wp[k];
          }
        }
      }
      std::copy(acc.begin(), acc.end(), y + ((n * cs.oh + oh) * cs.ow + ow) * cs.k);
    }
  }
}

template <typename T>
void depthwise_backward_data(const ConvShape& cs, const T* dy, const T* w, T* dx) {
  const int64_t kg = cs.k_per_group();
  const std::vector<T> wt = transpose_depthwise_weight(cs, w);
#pragma omp parallel for schedule(static) if (worth_parallel(cs.n * cs.h * cs.w * cs.k * cs.r * cs.s))
  for (int64_t nh = 0; nh < cs.n * cs.h; ++nh) {
    const int64_t n = nh / cs.h, ih = nh % cs.h;
    std::vector<T> acc(cs.c);
    for (int64_t iw = 0; iw < cs.w; ++iw) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t r = 0; r < cs.r; ++r) {
        const int64_t oh = tap_source(ih, r, cs.pad_top, cs.dilation_h, cs.stride_h, cs.oh);
        if (oh < 0) continue;
        for (int64_t s = 0; s < cs.s; ++s) {
          const int64_t ow = tap_source(iw, s, cs.pad_left, cs.dilation_w, cs.stride_w, cs.ow);
          if (ow < 0) continue;
          const T* dyp = dy + ((n * cs.oh + oh) * cs.ow + ow) * cs.k;
          const T* wp = wt.data() + (r * cs.s + s) * cs.k;
          T* a = acc.data();
          if (kg == 1) {
            for (int64_t k = 0; k < cs.k; ++k) a[k] += dyp[k] * wp[k];
          } else {
            for (int64_t k = 0; k < cs.k; ++k) a[k / kg] += dyp[k] * wp[k];
          }
        }
      }
      std::copy(acc.begin(), acc.end(), dx + ((n * cs.h + ih) * cs.w + iw) * cs.c);
    }
  }
}

template <typename T>
void depthwise_backward_weight(const ConvShape& cs, const T* dy, const T* x, T* dw) {
  const int64_t kg = cs.k_per_group(), taps = cs.r * cs.s;
#pragma omp parallel for schedule(static) if (worth_parallel(cs.n * cs.oh * cs.ow * cs.k * cs.r * cs.s))
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t r = t / cs.s, s = t % cs.s;
    std::vector<double> acc(cs.k, 0.0);
    for (int64_t n = 0; n < cs.n; ++n)
      for (int64_t oh = 0; oh < cs.oh; ++oh) {
        const int64_t ih = oh * cs.stride_h - cs.pad_top + r * cs.dilation_h;
        if (ih < 0 || ih >= cs.h) continue;
        for (int64_t ow = 0; ow < cs.ow; ++ow) {
          const int64_t iw = ow * cs.stride_w - cs.pad_left + s * cs.dilation_w;
          if (iw < 0 || iw >= cs.w) continue;
          const T* xp = x + ((n * cs.h + ih) * cs.w + iw) * cs.c;
          const T* dyp = dy + ((n * cs.oh + oh) * cs.ow + ow) * cs.k;
          double* a = acc.data();
          if (kg == 1) {  // plain depthwise: no index division, so the loop vectorises
            for (int64_t k = 0; k < cs.k; ++k) a[k] += static_cast<double>(dyp[k]) * static_cast<double>(xp[k]);
          } else {
            for (int64_t k = 0; k < cs.k; ++k) a[k] += static_cast<double>(dyp[k]) * static_cast<double>(xp[k / kg]);
          }
        }
      }
    for (int64_t k = 0; k < cs.k; ++k) dw[k * taps + t] = static_cast<T>(acc[k]);
  }
}

// Grouped convolutions (ResNeXt: 32 groups of 4..32 channels) make GEMMs too small for the GEMM's own
// threads (it splits M blocks; a backward-weight GEMM of 4 rows is one block), so for groups > 1 the
// threads take whole (sample, group) pairs instead, each with its own column buffer; every pair is
// computed the same way whatever the thread count.
inline bool by_group(const ConvShape& cs) { return cs.groups > 1; }

// fn(item, col) for item in [0, items), each thread with its own uninitialised column buffer of col_elems
// elements; threads only when `parallel` (otherwise one buffer, in order).
template <typename T, typename Fn>
void with_columns(int64_t items, int64_t col_elems, bool parallel, Fn fn) {
  if (!parallel) {
    HostBuffer<T> col(col_elems);
    for (int64_t i = 0; i < items; ++i) fn(i, col.data());
    return;
  }
#pragma omp parallel
  {
    HostBuffer<T> col(col_elems);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < items; ++i) fn(i, col.data());
  }
}

// Output positions per im2col chunk of an ungrouped convolution: about 1 MiB of F32 columns, so the
// columns the GEMM reads back are still in L2 (a whole 256x256 sample's columns are 75 MB), and at least
// two GEMM M blocks for the threads. Chunks are balanced (256 positions: one chunk, not 224 + 32).
int64_t column_chunk(int64_t row, int64_t positions) {
  const int64_t want = std::max<int64_t>(224, (int64_t{1} << 18) / row);
  if (positions <= 2 * want) return positions;
  const int64_t chunks = (positions + want - 1) / want;
  return (positions + chunks - 1) / chunks;
}

// fn(n, p0, p1, col) for each sample n and chunk [p0, p1) of its output positions, in order, col holding
// that chunk's im2col rows (ungrouped convolutions).
template <typename T, typename Fn>
void for_column_chunks(const ConvShape& cs, const T* x, Fn&& fn) {
  const int64_t row = cs.r * cs.s * cs.c, positions = cs.oh * cs.ow, chunk = column_chunk(row, positions);
  HostBuffer<T> col(chunk * row);
  for (int64_t n = 0; n < cs.n; ++n)
    for (int64_t p0 = 0; p0 < positions; p0 += chunk) {
      const int64_t p1 = std::min(positions, p0 + chunk);
      im2col(cs, x + n * cs.h * cs.w * cs.c, 0, col.data(), p0, p1);
      fn(n, p0, p1, static_cast<const T*>(col.data()));
    }
}

template <typename T>
void gemm_forward(DType dt, const ConvShape& cs, const T* x, const T* w, T* y) {
  const int64_t cg = cs.c_per_group(), kg = cs.k_per_group(), row = cs.r * cs.s * cg, positions = cs.oh * cs.ow;
  const bool pointwise = is_pointwise(cs);
  if (cs.groups == 1 && pointwise) {  // NHWC: the whole batch is one [N*H*W, C] matrix, one GEMM
    gemm(dt, false, true, cs.n * positions, cs.k, cs.c, 1.0, x, cs.c, w, cs.c, 0.0, y, cs.k);
    return;
  }
  if (cs.groups == 1) {
    for_column_chunks(cs, x, [&](int64_t n, int64_t p0, int64_t p1, const T* col) {
      gemm(dt, false, true, p1 - p0, cs.k, row, 1.0, col, row, w, row, 0.0, y + (n * positions + p0) * cs.k, cs.k);
    });
    return;
  }
  auto one = [&](int64_t n, int64_t g, T* col) {
    const T* x_n = x + n * cs.h * cs.w * cs.c;
    const T* a = x_n + g * cg;
    int64_t lda = cs.c;
    if (!pointwise) {
      im2col(cs, x_n, g, col, 0, positions);
      a = col;
      lda = row;
    }
    gemm(dt, false, true, positions, kg, row, 1.0, a, lda, w + g * kg * row, row, 0.0, y + n * positions * cs.k + g * kg,
         cs.k);
  };
  const bool par = by_group(cs) && worth_parallel(cs.n * positions * cs.k * row);
  with_columns<T>(cs.n * cs.groups, pointwise ? 0 : positions * row, par,
                  [&](int64_t ng, T* col) { one(ng / cs.groups, ng % cs.groups, col); });
}

template <typename T>
void gemm_backward_data(DType dt, const ConvShape& cs, const T* dy, const T* w, T* dx) {
  const int64_t cg = cs.c_per_group(), kg = cs.k_per_group(), row = cs.r * cs.s * cg, positions = cs.oh * cs.ow;
  const bool pointwise = is_pointwise(cs);
  if (cs.groups == 1 && pointwise) {
    gemm(dt, false, false, cs.n * positions, cs.c, cs.k, 1.0, dy, cs.k, w, cs.c, 0.0, dx, cs.c);
    return;
  }
  auto one = [&](int64_t n, int64_t g, T* col) {
    const T* dy_n = dy + n * positions * cs.k;
    T* dx_n = dx + n * cs.h * cs.w * cs.c;
    if (pointwise) {
      gemm(dt, false, false, positions, cg, kg, 1.0, dy_n + g * kg, cs.k, w + g * kg * row, row, 0.0, dx_n + g * cg,
           cs.c);
    } else {
      gemm(dt, false, false, positions, row, kg, 1.0, dy_n + g * kg, cs.k, w + g * kg * row, row, 0.0, col, row);
      col2im_gather(cs, col, g, dx_n);
    }
  };
  const bool par = by_group(cs) && worth_parallel(cs.n * positions * cs.k * row);
  with_columns<T>(cs.n * cs.groups, pointwise ? 0 : positions * row, par,
                  [&](int64_t ng, T* col) { one(ng / cs.groups, ng % cs.groups, col); });
}

// dw = dy^T x of an ungrouped 1x1 conv with very few outputs (the segmentation head, 16 -> 1). As a GEMM it
// is one mostly-empty register tile per K block, K = all N*H*W positions: 57 ms for 262144 positions
// (0.1 GFLOP/s, measured). Here fixed chunks of positions make partial sums in double, added in chunk order,
// so the result does not depend on the thread count.
template <typename T>
void narrow_pointwise_weight(const ConvShape& cs, const T* dy, const T* x, T* dw) {
  constexpr int64_t kChunk = 4096;
  const int64_t positions = cs.n * cs.h * cs.w, chunks = (positions + kChunk - 1) / kChunk, kc = cs.k * cs.c;
  std::vector<double> part(chunks * kc, 0.0);
#pragma omp parallel for schedule(static) if (worth_parallel(positions * kc))
  for (int64_t ch = 0; ch < chunks; ++ch) {
    double* acc = part.data() + ch * kc;
    for (int64_t p = ch * kChunk; p < std::min(positions, (ch + 1) * kChunk); ++p)
      for (int64_t k = 0; k < cs.k; ++k) {
        const double d = static_cast<double>(dy[p * cs.k + k]);
        const T* xp = x + p * cs.c;
        double* a = acc + k * cs.c;
        for (int64_t c = 0; c < cs.c; ++c) a[c] += d * static_cast<double>(xp[c]);
      }
  }
  for (int64_t i = 0; i < kc; ++i) {
    double sum = 0.0;
    for (int64_t ch = 0; ch < chunks; ++ch) sum += part[ch * kc + i];
    dw[i] = static_cast<T>(sum);
  }
}

template <typename T>
void gemm_backward_weight(DType dt, const ConvShape& cs, const T* dy, const T* x, T* dw) {
  const int64_t cg = cs.c_per_group(), kg = cs.k_per_group(), row = cs.r * cs.s * cg, positions = cs.oh * cs.ow;
  const bool pointwise = is_pointwise(cs);
  if (cs.groups == 1 && pointwise && cs.k <= 2) return narrow_pointwise_weight(cs, dy, x, dw);
  if (cs.groups == 1 && pointwise) {  // dw = dy^T x over all N*H*W positions at once
    gemm(dt, true, false, cs.k, cs.c, cs.n * positions, 1.0, dy, cs.k, x, cs.c, 0.0, dw, cs.c);
    return;
  }
  if (cs.groups == 1) {  // chunks of positions in order, accumulated into dw
    for_column_chunks(cs, x, [&](int64_t n, int64_t p0, int64_t p1, const T* col) {
      gemm(dt, true, false, cs.k, row, p1 - p0, 1.0, dy + (n * positions + p0) * cs.k, cs.k, col, row,
           n == 0 && p0 == 0 ? 0.0 : 1.0, dw, row);
    });
    return;
  }
  auto one_group = [&](int64_t g, T* col) {  // samples in order: dw accumulates over n
    for (int64_t n = 0; n < cs.n; ++n) {
      const T* x_n = x + n * cs.h * cs.w * cs.c;
      const T* dy_n = dy + n * positions * cs.k;
      const T* b = x_n + g * cg;
      int64_t ldb = cs.c;
      if (!pointwise) {
        im2col(cs, x_n, g, col, 0, positions);
        b = col;
        ldb = row;
      }
      gemm(dt, true, false, kg, row, positions, 1.0, dy_n + g * kg, cs.k, b, ldb, n == 0 ? 0.0 : 1.0,
           dw + g * kg * row, row);
    }
  };
  with_columns<T>(cs.groups, pointwise ? 0 : positions * row,
                  by_group(cs) && worth_parallel(cs.n * positions * cs.k * row), one_group);
}

// Profile label of a convolution: its kind (depthwise, grouped, 1x1 or k x k) and pass.
const char* conv_label(const ConvShape& cs, int pass) {
  static const char* const names[4][3] = {{"conv_fwd depthwise", "conv_dgrad depthwise", "conv_wgrad depthwise"},
                                           {"conv_fwd grouped", "conv_dgrad grouped", "conv_wgrad grouped"},
                                           {"conv_fwd 1x1", "conv_dgrad 1x1", "conv_wgrad 1x1"},
                                           {"conv_fwd kxk", "conv_dgrad kxk", "conv_wgrad kxk"}};
  const int kind = cs.c_per_group() == 1 ? 0 : cs.groups > 1 ? 1 : is_pointwise(cs) ? 2 : 3;
  return names[kind][pass];
}

void check_shape(const ConvShape& cs) {
  PNEUMO_CHECK(cs.groups > 0 && cs.c % cs.groups == 0 && cs.k % cs.groups == 0, "conv2d: channels ", cs.c, " -> ",
               cs.k, " not divisible by groups ", cs.groups);
  PNEUMO_CHECK(cs.n > 0 && cs.oh > 0 && cs.ow > 0 && cs.r > 0 && cs.s > 0, "conv2d: empty shape");
}

}  // namespace

void conv2d_forward(DType dt, const ConvShape& cs, const void* x, const void* w, void* y) {
  check_shape(cs);
  PNEUMO_CPU_SCOPE(conv_label(cs, 0));
  dispatch_float(dt, "conv2d_forward", [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, float>) {  // the AVX-512 paths, where they apply
      const float *xf = static_cast<const float*>(x), *wf = static_cast<const float*>(w);
      float* yf = static_cast<float*>(y);
      if (grouped_direct_applies(cs)) return grouped_direct_forward(cs, xf, wf, yf);
      if (implicit_conv_applies(cs)) return implicit_conv_forward(cs, xf, wf, yf);
    }
    if (cs.c_per_group() == 1)
      depthwise_forward(cs, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(y));
    else
      gemm_forward(dt, cs, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(y));
  });
}

void conv2d_backward_data(DType dt, const ConvShape& cs, const void* dy, const void* w, void* dx) {
  check_shape(cs);
  PNEUMO_CPU_SCOPE(conv_label(cs, 1));
  dispatch_float(dt, "conv2d_backward_data", [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, float>) {  // the AVX-512 paths, where they apply
      const float *dyf = static_cast<const float*>(dy), *wf = static_cast<const float*>(w);
      float* dxf = static_cast<float*>(dx);
      if (grouped_direct_applies(cs)) return grouped_direct_backward_data(cs, dyf, wf, dxf);
      if (implicit_conv_applies(cs)) return implicit_conv_backward_data(cs, dyf, wf, dxf);
    }
    if (cs.c_per_group() == 1)
      depthwise_backward_data(cs, static_cast<const T*>(dy), static_cast<const T*>(w), static_cast<T*>(dx));
    else
      gemm_backward_data(dt, cs, static_cast<const T*>(dy), static_cast<const T*>(w), static_cast<T*>(dx));
  });
}

void conv2d_backward_weight(DType dt, const ConvShape& cs, const void* dy, const void* x, void* dw) {
  check_shape(cs);
  PNEUMO_CPU_SCOPE(conv_label(cs, 2));
  dispatch_float(dt, "conv2d_backward_weight", [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, float>) {  // the AVX-512 paths, where they apply
      const float *dyf = static_cast<const float*>(dy), *xf = static_cast<const float*>(x);
      float* dwf = static_cast<float*>(dw);
      if (grouped_direct_applies(cs)) return grouped_direct_backward_weight(cs, dyf, xf, dwf);
      if (implicit_conv_applies(cs)) return implicit_conv_backward_weight(cs, dyf, xf, dwf);
    }
    if (cs.c_per_group() == 1)
      depthwise_backward_weight(cs, static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<T*>(dw));
    else
      gemm_backward_weight(dt, cs, static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<T*>(dw));
  });
}

}  // namespace pneumo::kernels::cpu
