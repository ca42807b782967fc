// See conv_grouped.h.
#include "kernels/cpu/conv_grouped.h"

#include <immintrin.h>

// _mm512_permutexvar_ps passes _mm512_undefined_ps() as its (fully masked-off) source: GCC 12 warns about it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <vector>

#include "kernels/cpu/host_memory.h"

namespace pneumo::kernels::cpu {
namespace {

// For groups of cg < 16 channels: perm[j] spreads input j of each group over all of the group's lanes
// (lane l takes lane l - l % cg + j).
__attribute__((target("avx512f"))) inline void lane_perms(int64_t cg, __m512i* perm) {
  if (cg >= 16) return;
  for (int64_t j = 0; j < cg; ++j) {
    alignas(64) int lanes[16];
    for (int l = 0; l < 16; ++l) lanes[l] = static_cast<int>(l - l % cg + j);
    perm[j] = _mm512_load_si512(lanes);
  }
}

// One row of output pixels: out[p, c] = sum_t sum_j in_t[(c / cg) * cg + j] * wt[(t * cg + j) * C + c],
// in_t = src[p * taps + t] (a pixel of C channels) or nullptr for a tap outside the input.
__attribute__((target("avx512f"))) void grouped_row_avx512(int64_t width, int64_t C, int64_t cg, int64_t taps,
                                                            const float* const* src, const float* wt, float* out) {
  __m512i perm[16];
  lane_perms(cg, perm);
  for (int64_t p = 0; p < width; ++p) {
    const float* const* sp = src + p * taps;
    float* o = out + p * C;
    for (int64_t c0 = 0; c0 < C; c0 += 128) {
      __m512 acc[8];
#pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) acc[v] = _mm512_setzero_ps();
      for (int64_t t = 0; t < taps; ++t) {
        const float* xs = sp[t];
        if (xs == nullptr) continue;
        const float* wk = wt + t * cg * C + c0;
        if (cg < 16) {
          __m512 xv[8];
#pragma GCC unroll 8
          for (int v = 0; v < 8; ++v) xv[v] = _mm512_loadu_ps(xs + c0 + 16 * v);
          for (int64_t j = 0; j < cg; ++j) {
            const float* wj = wk + j * C;
#pragma GCC unroll 8
            for (int v = 0; v < 8; ++v)
              acc[v] = _mm512_fmadd_ps(_mm512_permutexvar_ps(perm[j], xv[v]), _mm512_loadu_ps(wj + 16 * v), acc[v]);
          }
        } else {
#pragma GCC unroll 8
          for (int v = 0; v < 8; ++v) {
            const float* xg = xs + (c0 + 16 * v) / cg * cg;
            for (int64_t j = 0; j < cg; ++j)
              acc[v] = _mm512_fmadd_ps(_mm512_set1_ps(xg[j]), _mm512_loadu_ps(wk + j * C + 16 * v), acc[v]);
          }
        }
      }
#pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) _mm512_storeu_ps(o + c0 + 16 * v, acc[v]);
    }
  }
}

// Weight gradient over the pixels of one output row, channels [c0, c0 + 64):
// acc[(t * cg + j) * 64 + c - c0] += dy[p, c] * in_t[(c / cg) * cg + j], pixels in order.
__attribute__((target("avx512f"))) void grouped_wgrad_row_avx512(int64_t width, int64_t C, int64_t cg, int64_t taps,
                                                                  int64_t c0, const float* dy,
                                                                  const float* const* src, float* acc) {
  __m512i perm[16];
  lane_perms(cg, perm);
  for (int64_t p = 0; p < width; ++p) {
    __m512 g[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) g[v] = _mm512_loadu_ps(dy + p * C + c0 + 16 * v);
    for (int64_t t = 0; t < taps; ++t) {
      const float* xs = src[p * taps + t];
      if (xs == nullptr) continue;
      float* at = acc + t * cg * 64;
      if (cg < 16) {
        __m512 xv[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) xv[v] = _mm512_loadu_ps(xs + c0 + 16 * v);
        for (int64_t j = 0; j < cg; ++j)
#pragma GCC unroll 4
          for (int v = 0; v < 4; ++v) {
            float* a = at + j * 64 + 16 * v;
            _mm512_store_ps(a, _mm512_fmadd_ps(g[v], _mm512_permutexvar_ps(perm[j], xv[v]), _mm512_load_ps(a)));
          }
      } else {
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
          const float* xg = xs + (c0 + 16 * v) / cg * cg;
          for (int64_t j = 0; j < cg; ++j) {
            float* a = at + j * 64 + 16 * v;
            _mm512_store_ps(a, _mm512_fmadd_ps(g[v], _mm512_set1_ps(xg[j]), _mm512_load_ps(a)));
          }
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

// src[ow * taps + t] = the input pixel that output (n, oh, ow) reads through tap t, or nullptr (padding).
void forward_sources(const ConvShape& cs, const float* x, int64_t n, int64_t oh, const float** src) {
  const int64_t taps = cs.r * cs.s;
  for (int64_t ow = 0; ow < cs.ow; ++ow)
    for (int64_t r = 0; r < cs.r; ++r)
      for (int64_t s = 0; s < cs.s; ++s) {
        const int64_t ih = oh * cs.stride_h - cs.pad_top + r * cs.dilation_h;
        const int64_t iw = ow * cs.stride_w - cs.pad_left + s * cs.dilation_w;
        const bool in = ih >= 0 && ih < cs.h && iw >= 0 && iw < cs.w;
        src[ow * taps + r * cs.s + s] = in ? x + ((n * cs.h + ih) * cs.w + iw) * cs.c : nullptr;
      }
}

}  // namespace

bool grouped_direct_applies(const ConvShape& cs) {
  static const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  const int64_t cg = cs.c_per_group();
  return avx512 && cs.groups > 1 && cs.k == cs.c && cs.c % 128 == 0 &&
         (cg == 2 || cg == 4 || cg == 8 || cg % 16 == 0);
}

void grouped_direct_forward(const ConvShape& cs, const float* x, const float* w, float* y) {
  const int64_t C = cs.c, cg = cs.c_per_group(), taps = cs.r * cs.s;
  std::vector<float> wt(taps * cg * C);  // wt[t][j][k] = w[k][t][j]
  for (int64_t k = 0; k < C; ++k)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t j = 0; j < cg; ++j) wt[(t * cg + j) * C + k] = w[(k * taps + t) * cg + j];
#pragma omp parallel
  {
    std::vector<const float*> src(cs.ow * taps);
#pragma omp for schedule(static)
    for (int64_t nh = 0; nh < cs.n * cs.oh; ++nh) {
      const int64_t n = nh / cs.oh, oh = nh % cs.oh;
      forward_sources(cs, x, n, oh, src.data());
      grouped_row_avx512(cs.ow, C, cg, taps, src.data(), wt.data(), y + nh * cs.ow * C);
    }
  }
}

void grouped_direct_backward_data(const ConvShape& cs, const float* dy, const float* w, float* dx) {
  const int64_t C = cs.c, cg = cs.c_per_group(), taps = cs.r * cs.s;
  std::vector<float> wd(taps * cg * C);  // wd[t][j][c] = w[(c / cg) * cg + j][t][c % cg]
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t j = 0; j < cg; ++j) wd[(t * cg + j) * C + c] = w[((c / cg * cg + j) * taps + t) * cg + c % cg];
#pragma omp parallel
  {
    std::vector<const float*> src(cs.w * taps);
#pragma omp for schedule(static)
    for (int64_t nh = 0; nh < cs.n * cs.h; ++nh) {
      const int64_t n = nh / cs.h, ih = nh % cs.h;
      for (int64_t iw = 0; iw < cs.w; ++iw)
        for (int64_t r = 0; r < cs.r; ++r) {
          const int64_t oh = tap_source(ih, r, cs.pad_top, cs.dilation_h, cs.stride_h, cs.oh);
          for (int64_t s = 0; s < cs.s; ++s) {
            const int64_t ow = tap_source(iw, s, cs.pad_left, cs.dilation_w, cs.stride_w, cs.ow);
            src[iw * taps + r * cs.s + s] = oh >= 0 && ow >= 0 ? dy + ((n * cs.oh + oh) * cs.ow + ow) * C : nullptr;
          }
        }
      grouped_row_avx512(cs.w, C, cg, taps, src.data(), wd.data(), dx + nh * cs.w * C);
    }
  }
}

}  // namespace pneumo::kernels::cpu

namespace pneumo::kernels::cpu {

void grouped_direct_backward_weight(const ConvShape& cs, const float* dy, const float* x, float* dw) {
  const int64_t C = cs.c, cg = cs.c_per_group(), taps = cs.r * cs.s, chunks = C / 64;
  // Threads take whole 64-channel chunks, each summing every pixel in order: no cross-thread sums, so the
  // result does not depend on the thread count.
#pragma omp parallel
  {
    std::vector<const float*> src(cs.ow * taps);
    HostBuffer<float> acc_buf(taps * cg * 64);  // 64-byte aligned
    float* acc = acc_buf.data();
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t c0 = chunk * 64;
      std::fill(acc, acc + taps * cg * 64, 0.f);
      for (int64_t nh = 0; nh < cs.n * cs.oh; ++nh) {
        const int64_t n = nh / cs.oh, oh = nh % cs.oh;
        forward_sources(cs, x, n, oh, src.data());
        grouped_wgrad_row_avx512(cs.ow, C, cg, taps, c0, dy + nh * cs.ow * C, src.data(), acc);
      }
      for (int64_t c = c0; c < c0 + 64; ++c)  // dw[c][t][j] (KRSC)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t j = 0; j < cg; ++j) dw[(c * taps + t) * cg + j] = acc[(t * cg + j) * 64 + c - c0];
    }
  }
}

}  // namespace pneumo::kernels::cpu
